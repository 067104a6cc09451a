"""The warehouse as a DuckLake: catalog in a database, data in Parquet files, snapshots.

The one module that loads DuckDB's extensions and knows where the catalog and the data files
are. Two deployments, one code path (only the ATTACH differs):

* embedded (the zero-setup default): the catalog is an SQLite file beside the warehouse
  location (`data/warehouse.sqlite` for `data/warehouse.duckdb`), the Parquet files in the
  folder beside it (`data/warehouse.files/`). SQLite runs in WAL mode — set with Python's
  sqlite3 when the file is created, before DuckDB attaches — so a reader's open transaction
  never holds up a load's commit (DESIGN §2: 5.9 s vs 0.35 s).
* replicas: `GOVDASH_CATALOG=postgres:<libpq dsn>` and `GOVDASH_DATA_PATH=<shared folder>`.
  The DSN carries no password: libpq (which the postgres extension is) reads `PGPASSWORD` or
  `~/.pgpass` itself, so no secret is ever written to a file of ours.

Extensions are loaded offline from their wheels (`duckdb-extension-*`), with DuckDB's
auto-install and auto-load off. The sqlite and postgres binaries export their entry point as
`<name>_scanner_duckdb_cpp_init` while DuckDB derives it from the file name, so they are
loaded through a link named `<name>_scanner.duckdb_extension` in a private temporary folder.

One load = one lake transaction = one snapshot. Readers attach the lake READ_ONLY at one
snapshot (`SNAPSHOT_VERSION n`), so every query of a page run — or of an export — sees the
same whole state, and a later load never changes what an open reader sees. Cursors of a
DuckDB connection do not inherit `USE lake` (DESIGN §3: "Table with name tickets does not
exist"); `cursor()` here hands out cursors that have it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

CATALOG_ENV = "GOVDASH_CATALOG"
DATA_PATH_ENV = "GOVDASH_DATA_PATH"
ALIAS = "lake"
# A reader's own in-memory database: its default, and every cursor's. It holds one row saying
# what the reader reads, and (`Lake.reader(local_bytes=…)`) the local copies.
LOCAL = "memory"
READER_INFO = f"{LOCAL}.govdash_reader.info"
CATALOG_SUFFIX = ".sqlite"
FILES_SUFFIX = ".files"
# DuckDB derives an extension's entry point from its file name; these two binaries are named
# after the extension but export `<name>_scanner_duckdb_cpp_init`.
_ENTRY_NAMES = {"postgres": "postgres_scanner", "sqlite": "sqlite_scanner"}
_LINKS_LOCK = threading.Lock()
_links_folder: Path | None = None


class LakeError(RuntimeError):
    """The warehouse's catalog or data path cannot be used; the message, in Chinese, says why."""


def _extension_file(name: str) -> Path:
    spec = importlib.util.find_spec(f"duckdb_extension_{name}")
    if spec is None or not spec.submodule_search_locations:
        raise LakeError(
            f"缺少 DuckDB 扩展 duckdb-extension-{name}=={duckdb.__version__}："
            "请重新安装 govdash（pip install -e .）。"
        )
    base = Path(next(iter(spec.submodule_search_locations)))
    found = base / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
    if not found.is_file():
        raise LakeError(
            f"DuckDB 扩展 {name} 与 DuckDB {duckdb.__version__} 版本不符（未找到 {found}）："
            "duckdb 与 duckdb-extension-* 须为同一版本。"
        )
    return found


def extension_path(name: str) -> Path:
    """The file to LOAD for extension `name` (a link with the entry point's name where needed)."""
    global _links_folder
    if name not in _ENTRY_NAMES:
        return _extension_file(name)
    with _LINKS_LOCK:
        if _links_folder is None or not _links_folder.is_dir():
            _links_folder = Path(tempfile.mkdtemp(prefix="govdash-duckdb-ext-"))
        link = _links_folder / f"{_ENTRY_NAMES[name]}.duckdb_extension"
        if not link.exists():
            os.symlink(_extension_file(name), link)
        return link


def connect(
    extensions: tuple[str, ...], config: Mapping[str, Any] | None = None, database: str = ":memory:"
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with `extensions` loaded from their wheels; nothing from the network.

    DuckDB checks an extension's signature on every LOAD (0.2–0.6 s each on this machine, per
    connection). Here each file is LOADed with that check once per process; later connections
    load the same file — unchanged since (device, inode, size, mtime) — without repeating it.
    """
    settings: dict[str, Any] = {
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
    }
    settings.update(config or {})
    files = [extension_path(name) for name in extensions]
    settings["allow_unsigned_extensions"] = all(_VERIFIED.get(f) == _identity(f) for f in files)
    con = duckdb.connect(database, config=settings)
    try:
        for path in files:
            stamp = _identity(path)
            con.execute(f"LOAD '{_quote(str(path))}'")
            if not settings["allow_unsigned_extensions"]:
                _VERIFIED[path] = stamp  # DuckDB checked its signature just now
    except BaseException:
        con.close()
        raise
    return con


_VERIFIED: dict[Path, tuple[int, int, int, int]] = {}


def _identity(path: Path) -> tuple[int, int, int, int]:
    found = path.stat()  # follows the link to the wheel's file
    return found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns


def _quote(text: str) -> str:
    return text.replace("'", "''")


@dataclass(frozen=True)
class Snapshot:
    snapshot_id: int
    time: datetime
    message: str | None
    extra: dict[str, Any]


@dataclass(frozen=True)
class Lake:
    """Where one warehouse's catalog and data files are, and how to open it."""

    kind: str  # "sqlite" or "postgres"
    target: str  # the SQLite file (absolute) or the libpq DSN
    data_path: str  # absolute folder of the Parquet files, ending in "/"
    scratch: Path  # a local folder for the loader's lock and spills

    # --- where ---------------------------------------------------------------------------

    @classmethod
    def from_location(cls, location: Path, environ: Mapping[str, str] | None = None) -> Lake:
        """The lake of the warehouse named by `location` (see core/warehouse.py).

        `GOVDASH_CATALOG` (`postgres:<dsn>` or `sqlite:<file>`) and `GOVDASH_DATA_PATH` name
        a shared lake; otherwise the embedded one beside the location.
        """
        env = os.environ if environ is None else environ
        location = Path(os.path.abspath(location))
        folder = location.parent
        stem = location.stem if location.suffix in (".duckdb", CATALOG_SUFFIX) else location.name
        catalog = (env.get(CATALOG_ENV) or "").strip()
        data = (env.get(DATA_PATH_ENV) or "").strip()
        if not catalog:
            files = folder / f"{stem}{FILES_SUFFIX}"
            return cls("sqlite", str(folder / f"{stem}{CATALOG_SUFFIX}"), f"{files}/", folder)
        kind, _, target = catalog.partition(":")
        if kind not in ("postgres", "sqlite") or not target.strip():
            raise LakeError(
                f"环境变量 {CATALOG_ENV} 的值“{catalog}”无法识别：应为 postgres:<连接串>"
                "（如 postgres:dbname=govdash host=db user=govdash，密码放在 PGPASSWORD 或 "
                "~/.pgpass，不写在这里）或 sqlite:<目录文件路径>。"
            )
        if kind == "postgres" and "password" in target.lower().replace(" ", ""):
            raise LakeError(
                f"环境变量 {CATALOG_ENV} 中含有密码：请删去 password=…，改用 PGPASSWORD 环境变量"
                "或 ~/.pgpass 文件提供密码（不要把密码写进配置或命令行）。"
            )
        if kind == "sqlite":
            target = os.path.abspath(target)
        if not data:
            if kind == "postgres":
                raise LakeError(
                    f"已设置 {CATALOG_ENV}（PostgreSQL 目录），还须设置 {DATA_PATH_ENV}："
                    "各服务器共享的数据文件目录（如 /mnt/govdash-lake/）。"
                )
            data = str(Path(target).with_suffix(FILES_SUFFIX))
        if "://" not in data:
            data = os.path.abspath(data)
        return cls(kind, target.strip(), data.rstrip("/") + "/", folder)

    @property
    def identity(self) -> str:
        """Names the catalog (part of the app's cache key, with the snapshot id)."""
        return f"{self.kind}:{self.target}"

    @property
    def url(self) -> str:
        return f"ducklake:{self.kind}:{self.target}"

    @property
    def embedded(self) -> bool:
        return self.kind == "sqlite"

    def describe(self) -> str:
        """For `govdash status` and messages: where it is, without anything secret."""
        return f"{self.identity}（数据文件 {self.data_path}）"

    # --- opening -------------------------------------------------------------------------

    def _extensions(self) -> tuple[str, ...]:
        return ("ducklake", self.kind)

    def _attach(
        self, con: duckdb.DuckDBPyConnection, read_only: bool, snapshot: int | None = None
    ) -> None:
        options = [f"DATA_PATH '{_quote(self.data_path)}'"]
        if self.embedded:
            # The files folder is beside the catalog by definition: a restored or moved
            # installation opens where it now is (DuckLake stores the path it was created with).
            options.append("OVERRIDE_DATA_PATH TRUE")
        if read_only:
            options.append("READ_ONLY")
        if snapshot is not None:
            options.append(f"SNAPSHOT_VERSION {int(snapshot)}")
        try:
            con.execute(f"ATTACH '{_quote(self.url)}' AS {ALIAS} ({', '.join(options)})")
        except duckdb.Error as error:
            raise LakeError(f"无法打开数据仓库 {self.describe()}：{error}") from error

    def exists(self) -> bool:
        """Whether a catalog is there (a published warehouse needs a snapshot beyond 0)."""
        return self.current_snapshot() is not None

    def create(self) -> None:
        """Prepare a new catalog: the SQLite file in WAL mode (before DuckDB first attaches it,
        which creates DuckLake's tables) and the data folder. Harmless when they exist."""
        if self.embedded:
            catalog_file = Path(self.target)
            if not catalog_file.exists():
                catalog_file.parent.mkdir(parents=True, exist_ok=True)
                with contextlib.closing(sqlite3.connect(catalog_file)) as catalog:
                    catalog.execute("PRAGMA journal_mode=WAL")
                os.chmod(catalog_file, 0o600)
        if "://" not in self.data_path:
            Path(self.data_path).mkdir(parents=True, exist_ok=True)

    @contextmanager
    def writer(
        self, memory_limit_mb: int = 1024, temp_directory: Path | None = None
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection with the lake attached and in use (`USE lake`), memory-capped.

        Beyond `memory_limit_mb` DuckDB spills to `temp_directory` (default: a folder beside
        the catalog, removed afterwards). The caller owns the transaction.
        """
        self.create()
        scratch = temp_directory or Path(
            tempfile.mkdtemp(prefix=".govdash-load-", dir=self.scratch)
        )
        scratch.mkdir(parents=True, exist_ok=True)
        try:
            # The loader's own tables (staged and cleaned rows) live in a scratch database FILE,
            # so DuckDB can evict them under memory_limit; an in-memory one cannot.
            con = connect(
                self._extensions(),
                {
                    "memory_limit": f"{memory_limit_mb}MB",
                    "temp_directory": str(scratch / "spill"),
                    "preserve_insertion_order": False,
                },
                database=str(scratch / "work.duckdb"),
            )
            try:
                self._attach(con, read_only=False)
                con.execute(f"USE {ALIAS}")
                yield con
            finally:
                con.close()
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def reader(
        self, snapshot: int | None = None, local_bytes: int = 0
    ) -> duckdb.DuckDBPyConnection:
        """A read-only connection pinned to `snapshot` (default: the current one).

        Unqualified table names read that snapshot; take cursors with `cursor(con)` (a bare
        `con.cursor()` does not inherit `USE` and must name `lake.` itself). Raises
        FileNotFoundError when nothing is published.

        With `local_bytes`, the smallest tables are copied once into the connection's own
        in-memory database while they fit in that much memory, and the others are views of the
        lake there (`_localise`): a page's queries of the copied tables (the per-period
        aggregates, the register, surveys and scores of a district) then skip DuckLake's catalog
        lookups, which cost 5–8 ms per table scan whatever its size. The copies are of the same
        pinned snapshot.
        """
        if snapshot is None:
            snapshot = self.current_snapshot()
            if snapshot is None:
                raise FileNotFoundError(
                    f"数据仓库不存在：{self.describe()}（请先运行 govdash load 或 govdash demo）"
                )
        con = connect(self._extensions())
        try:
            self._attach(con, read_only=True, snapshot=snapshot)
            # What the connection reads, for code that has only the connection (the rounds
            # file beside the installation: `reader_folder`).
            # Which database its table names resolve in, for its cursors (`cursor`).
            names = LOCAL if local_bytes > 0 else ALIAS
            con.execute(f"CREATE SCHEMA {READER_INFO.rsplit('.', 1)[0]}")
            con.execute(
                f"""CREATE TABLE {READER_INFO} AS
                SELECT $folder AS folder, $snapshot AS snapshot, $names AS names""",
                {"folder": str(self.scratch), "snapshot": int(snapshot), "names": names},
            )
            if local_bytes > 0:
                _localise(con, local_bytes)
            con.execute(f"USE {names}")
        except BaseException:
            con.close()
            raise
        return con

    # --- snapshots -----------------------------------------------------------------------

    def current_snapshot(self) -> int | None:
        """The newest snapshot id, or None when no load was ever published.

        Asked on a DuckDB connection kept per process and catalog (`_watched_snapshot`), for
        SQLite too: the catalog must never be opened by Python's own sqlite3 in a process that
        has DuckDB's sqlite extension on it (see `_watched_snapshot`). Snapshot 0 is the empty
        catalog DuckLake creates on first attach: not a warehouse yet.
        """
        if not self.embedded:
            found = _watched_snapshot(self)
            return found if found else None
        # SQLite: a commit writes the catalog's WAL (or, checkpointed, the file itself), so
        # while neither changed the last answer stands (a stat costs microseconds, the query
        # milliseconds). Stamped before asking: a commit during the question changes the stamp.
        stamp = _file_stamp(self.target)
        if stamp[0] is None:
            return None
        now = time.monotonic()
        with _WATCH_LOCK:
            seen = _SEEN.get(self.identity)
        if seen is not None and seen[0] == stamp and now - seen[1] < _SEEN_SECONDS:
            return seen[2]
        found = _watched_snapshot(self) or None
        with _WATCH_LOCK:
            _SEEN[self.identity] = (stamp, now, found)
        return found

    def release(self) -> None:
        """Close this process's connection that watches the catalog (`current_snapshot`):
        before the catalog file is opened by another SQLite library (the backup's copy)."""
        with _WATCH_LOCK:
            watcher = _WATCHERS.pop(self.identity, None)
            if watcher is not None:
                watcher.close()

    def snapshots(self) -> list[Snapshot]:
        """Every snapshot still kept, oldest first, with its commit message and extra info."""
        if self.current_snapshot() is None:
            return []
        con = connect(self._extensions())
        try:
            self._attach(con, read_only=True)
            rows = con.execute(
                f"""SELECT snapshot_id, snapshot_time, commit_message, commit_extra_info
                FROM {ALIAS}.snapshots() WHERE snapshot_id > 0 ORDER BY snapshot_id"""
            ).fetchall()
        finally:
            con.close()
        return [Snapshot(int(r[0]), _naive(r[1]), r[2], _extra(r[3])) for r in rows]

    def snapshot(self, snapshot_id: int) -> Snapshot | None:
        return next((s for s in self.snapshots() if s.snapshot_id == snapshot_id), None)


def reader_folder(con: duckdb.DuckDBPyConnection) -> Path | None:
    """The installation folder of the warehouse a reader (`Lake.reader`) reads — where its
    accounts, rounds and audit files are — or None for another connection."""
    try:
        found = con.execute(f"SELECT folder FROM {READER_INFO}").fetchone()
    except duckdb.CatalogException:
        return None
    return Path(str(found[0])) if found else None


def cursor(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """A cursor of a lake connection that resolves table names as `con` does (cursors do not
    inherit `USE`): in the lake, or in a reader's local database (`Lake.reader(local_bytes=…)`)."""
    handed = con.cursor()
    # Asked on the cursor, never on `con`: the app's threads share `con`, and a DuckDB
    # connection runs one statement at a time.
    try:
        found = handed.execute(f"SELECT names FROM {READER_INFO}").fetchone()
    except duckdb.CatalogException:  # not a reader's connection
        found = None
    handed.execute(f"USE {found[0] if found else ALIAS}")
    return handed


# What a table's Parquet bytes may become in memory, at most (measured: 20× for a district's
# tables, 35× for a city's scores and surveys). A table is copied only if this much still fits.
_MEMORY_PER_PARQUET_BYTE = 40


def _localise(con: duckdb.DuckDBPyConnection, local_bytes: int) -> None:
    """In the reader's own in-memory database (its default, which cursors share): copies of the
    lake's smallest tables while they fit in `local_bytes` of memory, views of the lake for the
    rest. A table takes ~10–40× its Parquet size in memory (at 10M tickets the register, scores
    and surveys would take 1.2 GB), so a table is copied only when its estimate fits what is
    left, and kept only when DuckDB's count of its memory says it did."""
    tables = con.execute(
        f"""SELECT table_name, file_size_bytes + delete_file_size_bytes AS size
        FROM ducklake_table_info('{ALIAS}') ORDER BY size, table_name"""
    ).fetchall()
    full = False
    for name, size in tables:
        quoted = '"' + str(name).replace('"', '""') + '"'
        source = f"{ALIAS}.main.{quoted}"
        if not full:
            full = _memory_used(con) + int(size or 0) * _MEMORY_PER_PARQUET_BYTE > local_bytes
        if not full:
            con.execute(f"CREATE TABLE {quoted} AS FROM {source}")
            full = _memory_used(con) > local_bytes
            if not full:
                continue
            con.execute(f"DROP TABLE {quoted}")
        con.execute(f"CREATE VIEW {quoted} AS FROM {source}")


def _memory_used(con: duckdb.DuckDBPyConnection) -> int:
    found = con.execute("SELECT sum(memory_usage_bytes) FROM duckdb_memory()").fetchone()
    return int(found[0]) if found and found[0] is not None else 0


def _naive(moment: Any) -> datetime:
    if isinstance(moment, datetime) and moment.tzinfo is not None:
        return moment.astimezone().replace(tzinfo=None)
    return moment if isinstance(moment, datetime) else datetime.fromisoformat(str(moment))


def _extra(text: Any) -> dict[str, Any]:
    if not text:
        return {}
    try:
        found = json.loads(str(text))
    except ValueError:
        return {"text": str(text)}
    return found if isinstance(found, dict) else {"value": found}


# One DuckDB connection per process and catalog answers "which snapshot is current" (a few
# catalogs at most: a test run opens hundreds, a server one).
#
# Why not Python's sqlite3 for the SQLite catalog, which answers in microseconds: it is a second
# copy of SQLite in the process beside the one inside DuckDB's sqlite extension, and SQLite's
# locks are POSIX advisory locks, which belong to the process: when one copy closes its file
# descriptor of the catalog (or of its -shm), every lock the process holds on that file is gone,
# the other copy's too ("How To Corrupt An SQLite Database File", §2.2.1). Measured here: a
# reader holding a snapshot's read lock and the WAL index's DMS lock holds no lock at all after
# one sqlite3 open + close of the catalog. Then another process's next connection finds no
# user of the WAL index, truncates and rebuilds it while the reader has it mapped: SIGBUS in
# the reader (tests/etl/test_concurrency.py, once), or a checkpoint over pages it still reads.
_WATCHERS: dict[str, duckdb.DuckDBPyConnection] = {}
_WATCH_LOCK = threading.Lock()
_MAX_WATCHERS = 8
# SQLite: the catalog's and its WAL's (inode, size, mtime) when last asked, when, and the
# answer. Asked again after a second anyway, should two commits ever leave the same stamps.
_SEEN: dict[str, tuple[tuple[Any, ...], float, int | None]] = {}
_SEEN_SECONDS = 1.0


def _file_stamp(target: str) -> tuple[Any, ...]:
    stamps: list[Any] = []
    for name in (target, target + "-wal"):
        try:
            found = os.stat(name)
        except FileNotFoundError:
            stamps.append(None)
            continue
        stamps.append((found.st_ino, found.st_size, found.st_mtime_ns))
    return tuple(stamps)


def _watched_snapshot(lake: Lake) -> int | None:
    with _WATCH_LOCK:
        con = _WATCHERS.pop(lake.identity, None)  # re-inserted below: the newest used last
        try:
            if con is None:
                con = _watcher(lake)
            if lake.embedded:
                try:
                    latest = con.execute(
                        "SELECT max(snapshot_id) FROM catalog.ducklake_snapshot"
                    ).fetchone()
                except duckdb.CatalogException:  # no DuckLake tables yet: attach anew later
                    con.close()
                    return None
            else:
                there = con.execute(
                    "SELECT there FROM postgres_query('catalog', "
                    "'SELECT to_regclass(''ducklake_snapshot'') IS NOT NULL AS there')"
                ).fetchone()
                if not there or not there[0]:
                    con.close()
                    return None
                latest = con.execute(
                    "SELECT latest FROM postgres_query('catalog', "
                    "'SELECT max(snapshot_id) AS latest FROM ducklake_snapshot')"
                ).fetchone()
            # DuckDB's sqlite extension keeps the SQLite read transaction (a WAL read mark: a
            # writer cannot restart the WAL meanwhile) until the connection's next statement.
            con.execute("SELECT 1").fetchall()
        except duckdb.Error as error:
            if con is not None:
                con.close()
            raise LakeError(f"无法读取数据仓库目录 {lake.identity}：{error}") from error
        _WATCHERS[lake.identity] = con
        while len(_WATCHERS) > _MAX_WATCHERS:
            _WATCHERS.pop(next(iter(_WATCHERS))).close()
    return None if latest is None or latest[0] is None else int(latest[0])


def _watcher(lake: Lake) -> duckdb.DuckDBPyConnection:
    con = connect((lake.kind,))
    kind = "sqlite" if lake.embedded else "postgres"
    try:
        con.execute(f"ATTACH '{_quote(lake.target)}' AS catalog (TYPE {kind}, READ_ONLY)")
    except duckdb.Error as error:
        con.close()
        raise LakeError(f"无法连接数据仓库目录 {lake.identity}：{error}") from error
    return con
