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

import atexit
import contextlib
import fcntl
import hashlib
import importlib.util
import json
import logging
import os
import secrets
import shutil
import sqlite3
import stat
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

CATALOG_ENV = "GOVDASH_CATALOG"
DATA_PATH_ENV = "GOVDASH_DATA_PATH"
ALIAS = "lake"
# A reader's own in-memory database: its default, and every cursor's. It holds one row saying
# what the reader reads, and (`Lake.reader(local_copies=True)`) a view per table: of its local
# copy or of the lake.
LOCAL = "memory"
READER_INFO = f"{LOCAL}.govdash_reader.info"
CATALOG_SUFFIX = ".sqlite"
FILES_SUFFIX = ".files"
# The machine-local folder of the tables' local copies (`_localise`), beside the installation.
LOCAL_SUFFIX = ".local"
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
            _links_folder = _links_home()
        link = _links_folder / f"{_ENTRY_NAMES[name]}.duckdb_extension"
        if link.exists():  # made by this process or another of this installation: its file
            return link
        # Missing, or left dangling by an upgrade. Another process may be making the same
        # link: made under a name of our own, then renamed over, so a reader sees the old
        # link or the new one, never none.
        partial = _links_folder / f".{link.name}.{os.getpid()}.{threading.get_ident()}"
        partial.unlink(missing_ok=True)
        os.symlink(_extension_file(name), partial)
        os.replace(partial, link)
        return link


def _links_home() -> Path:
    """One folder of links per user and DuckDB installation, shared by this user's processes (a
    folder per process was left behind by every process, hundreds a day on a busy server).
    Used only if it is the user's own and nobody else can write in it; else a folder of the
    process's own, removed at exit."""
    installation = hashlib.blake2b(duckdb.__file__.encode(), digest_size=6).hexdigest()
    shared = Path(tempfile.gettempdir()) / f"govdash-duckdb-ext-{os.getuid()}-{installation}"
    try:
        shared.mkdir(mode=0o700, exist_ok=True)
        found = shared.lstat()
        mine = stat.S_ISDIR(found.st_mode) and found.st_uid == os.getuid()
        if mine and not found.st_mode & 0o022:
            return shared
    except OSError:
        pass
    own = Path(tempfile.mkdtemp(prefix="govdash-duckdb-ext-"))
    atexit.register(shutil.rmtree, own, True)
    return own


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
    # This machine's folder of local copies of the lake's tables (`Lake.reader(local_copies=…)`)
    local: Path | None = field(default=None, compare=False)

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
        local = folder / f"{stem}{LOCAL_SUFFIX}"
        if not catalog:
            files = folder / f"{stem}{FILES_SUFFIX}"
            return cls(
                "sqlite", str(folder / f"{stem}{CATALOG_SUFFIX}"), f"{files}/", folder, local
            )
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
        return cls(kind, target.strip(), data.rstrip("/") + "/", folder, local)

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
        self, snapshot: int | None = None, local_copies: bool = False
    ) -> duckdb.DuckDBPyConnection:
        """A read-only connection pinned to `snapshot` (default: the current one).

        Unqualified table names read that snapshot; take cursors with `cursor(con)` (a bare
        `con.cursor()` does not inherit `USE` and must name `lake.` itself). Raises
        FileNotFoundError when nothing is published.

        With `local_copies`, every table but the biggest is read from a DuckDB file of this
        machine holding it as it is at that snapshot (`_localise`: built by the first reader
        that needs it, then shared by every process through the page cache), and the rest from
        the lake: a page's queries then skip DuckLake's catalog lookups, 5–8 ms per table scan
        whatever its size, and read native storage instead of Parquet.
        """
        return self._reader(snapshot, local_copies)[0]

    def prepare_local_copies(self, snapshot: int | None = None) -> LocalCopies:
        """Build (or find) the local copies of `snapshot` (default: the current one), so the
        first page read after a load does not pay for them (`govdash load`)."""
        con, copies = self._reader(snapshot, local_copies=True)
        con.close()
        assert copies is not None
        return copies

    def _reader(
        self, snapshot: int | None, local_copies: bool
    ) -> tuple[duckdb.DuckDBPyConnection, LocalCopies | None]:
        if snapshot is None:
            snapshot = self.current_snapshot()
            if snapshot is None:
                raise FileNotFoundError(
                    f"数据仓库不存在：{self.describe()}（请先运行 govdash load 或 govdash demo）"
                )
        con = connect(self._extensions())
        copies = None
        try:
            self._attach(con, read_only=True, snapshot=snapshot)
            # What the connection reads, for code that has only the connection (the rounds
            # file beside the installation: `reader_folder`).
            # Which database its table names resolve in, for its cursors (`cursor`).
            names = LOCAL if local_copies else ALIAS
            con.execute(f"CREATE SCHEMA {READER_INFO.rsplit('.', 1)[0]}")
            con.execute(
                f"""CREATE TABLE {READER_INFO} AS
                SELECT $folder AS folder, $snapshot AS snapshot, $names AS names""",
                {"folder": str(self.scratch), "snapshot": int(snapshot), "names": names},
            )
            if local_copies:
                copies = _localise(con, self, int(snapshot))
            con.execute(f"USE {names}")
        except BaseException:
            con.close()
            raise
        return con, copies

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
    inherit `USE`): in the lake, or in a reader's local database (`Lake.reader(local_copies=…)`)."""
    handed = con.cursor()
    # Asked on the cursor, never on `con`: the app's threads share `con`, and a DuckDB
    # connection runs one statement at a time.
    try:
        found = handed.execute(f"SELECT names FROM {READER_INFO}").fetchone()
    except duckdb.CatalogException:  # not a reader's connection
        found = None
    handed.execute(f"USE {found[0] if found else ALIAS}")
    return handed


# --- local copies ------------------------------------------------------------------------------
#
# Every scan of a lake table runs DuckLake's catalog queries (5–8 ms of CPU through the sqlite
# extension, whatever the table's size), and DuckDB 1.5.5 reads Parquet slower than its own
# storage. So a reader with `local_copies` reads every table but the biggest from a DuckDB file
# on this machine: one file per table and content, `<table>-<key>.duckdb` in `Lake.local`.
#
# The key names the table's content at the snapshot: its DuckLake uuid (new when a table is
# created again), the last snapshot that changed it (id and commit time) and its data and delete
# files' count and bytes. DuckLake names every table a snapshot changes in that snapshot's
# changes (`snapshots()`; its conflict detection relies on it), inlined rows and inlined deletes
# too, which change no file. So a load writes new files for the tables it changed only, and
# every other table's file is reused from the snapshot before: a 1,000-row load of tickets into
# a city rebuilds `agg_units` (~5–8 s of CPU at 10M) and the small bookkeeping tables, not the
# surveys and scores (~25 s).
#
# A file is built under an exclusive lock of the folder (the second process waits, then finds
# it), written under a temporary name, checkpointed and closed, then renamed: a half-written file
# never has a final name. A manifest per snapshot (`snapshot-<lake>-<n>.json`) lists its files;
# the builder keeps the newest two snapshots' files and the ones it attaches, and removes the
# rest and any temporary file (no other builder runs meanwhile). Processes that still read a
# removed file keep it open (Linux). A reader whose files are all there attaches them under a
# shared lock, which no cleanup runs through. Any failure (disk full, no permission, a file
# DuckDB refuses) leaves that table a view of the lake, with a warning in the log.

# Which tables are copied: every one but the biggest. A table is left in the lake when it holds
# more than a third of the lake's Parquet bytes (the tickets: 97 % at 1M, 64 % at 10M; the
# next biggest, a city's `agg_units` and survey answers, ~11 % each) or more than 256 MB of it
# (a copy takes ~3× its Parquet bytes on disk and ~0.3 s of CPU per MB to write) — unless it
# is under 8 MB, which is cheap to copy whatever its share (a small district's tickets). The
# tickets also change with every load, so copying a city's would rebuild the biggest file on
# every load.
LOCAL_SHARE = 1 / 3
LOCAL_MAX_PARQUET_BYTES = 256 << 20
LOCAL_ALWAYS_PARQUET_BYTES = 8 << 20
# What is in a file and how it is written; a change of either gives every table a new file.
_LOCAL_FORMAT = f"govdash-local-1/duckdb-{duckdb.__version__}"
_KEEP_SNAPSHOTS = 2
# DuckDB's memory while it builds copies, in the server's process when no `govdash load` built
# them first. Measured at 10M (agg_units and the survey answers): the process peaks at ~1.0–1.1
# GB without a limit, ~0.74 GB with 512 MB at the same CPU, ~0.43 GB with 256 MB at 1.5× it.
_BUILD_MEMORY = "512MB"
_log = logging.getLogger(__name__)


@dataclass
class LocalCopies:
    """What `_localise` did for one reader: which tables it reads from local files (`copied`:
    table → file), of those the ones it built now (`built`), the tables read from the lake
    (`views`) and the seconds it took."""

    copied: dict[str, Path] = field(default_factory=dict)
    built: list[str] = field(default_factory=list)
    views: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass(frozen=True)
class _Plan:
    name: str
    file: Path | None  # None: read from the lake
    alias: str = ""  # the database name its file is attached as


def _localise(con: duckdb.DuckDBPyConnection, lake: Lake, snapshot: int) -> LocalCopies:
    """In the reader's own database (its default, which cursors share), a view per lake table:
    of its local copy at this snapshot (built when missing) or of the lake."""
    started = time.perf_counter()
    plans = _plans(con, lake, snapshot)
    done = LocalCopies()
    wanted = [p for p in plans if p.file is not None]
    attached: dict[str, Path] = {}
    if wanted and lake.local is not None:
        try:
            attached = _attach_copies(con, lake, snapshot, wanted, done)
        except (OSError, duckdb.Error) as error:  # the folder or its lock cannot be used
            _log.warning("本地副本不可用，改为直接读取数据仓库（%s）：%s", lake.local, error)
    for plan in plans:
        quoted = _quoted(plan.name)
        if plan.name in attached:
            source = f"{plan.alias}.main.{quoted}"
            done.copied[plan.name] = attached[plan.name]
        else:
            source = f"{ALIAS}.main.{quoted}"
            done.views.append(plan.name)
        con.execute(f"CREATE VIEW {LOCAL}.main.{quoted} AS FROM {source}")
    done.seconds = time.perf_counter() - started
    return done


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _plans(con: duckdb.DuckDBPyConnection, lake: Lake, snapshot: int) -> list[_Plan]:
    """Every table of the snapshot, with the file of its local copy when it is to be copied."""
    tables = con.execute(
        f"""SELECT table_name, table_id, table_uuid::VARCHAR, file_count, file_size_bytes,
            delete_file_count, delete_file_size_bytes
        FROM ducklake_table_info('{ALIAS}') ORDER BY table_name"""
    ).fetchall()
    total = sum(int(t[4] or 0) + int(t[6] or 0) for t in tables)
    # The last snapshot (≤ this one) that names each table among its changes: by id (inserts,
    # deletes, inlined rows, alterations, compaction) or by name (creation).
    last: dict[str, tuple[int, str]] = {}
    for snapshot_id, moment, changes in con.execute(
        f"""SELECT snapshot_id, snapshot_time::VARCHAR, changes FROM {ALIAS}.snapshots()
        WHERE snapshot_id <= $n ORDER BY snapshot_id""",
        {"n": snapshot},
    ).fetchall():
        for values in (changes or {}).values():
            for value in values or ():
                last[str(value)] = (int(snapshot_id), str(moment))
    plans = []
    for index, (name, table_id, uuid, files, size, deletes, delete_size) in enumerate(tables):
        parquet = int(size or 0) + int(delete_size or 0)
        limit = min(max(total * LOCAL_SHARE, LOCAL_ALWAYS_PARQUET_BYTES), LOCAL_MAX_PARQUET_BYTES)
        if lake.local is None or parquet > limit:
            plans.append(_Plan(str(name), None))
            continue
        changed = max(last.get(str(table_id), (-1, "")), last.get(f"main.{name}", (-1, "")))
        material = [_LOCAL_FORMAT, lake.identity, uuid, int(table_id), str(name), *changed]
        material += [int(files or 0), int(size or 0), int(deletes or 0), int(delete_size or 0)]
        key = hashlib.sha256(json.dumps(material).encode()).hexdigest()[:24]
        plans.append(
            _Plan(str(name), lake.local / f"{name}-{key}.duckdb", f"govdash_local_{index}")
        )
    return plans


@contextmanager
def _folder_lock(folder: Path, exclusive: bool) -> Iterator[None]:
    descriptor = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(descriptor)  # releases the lock


def _manifest(lake: Lake, snapshot: int) -> Path:
    assert lake.local is not None
    catalog = hashlib.sha256(lake.identity.encode()).hexdigest()[:12]
    return lake.local / f"snapshot-{catalog}-{snapshot}.json"


def _attach_copies(
    con: duckdb.DuckDBPyConnection,
    lake: Lake,
    snapshot: int,
    wanted: list[_Plan],
    done: LocalCopies,
) -> dict[str, Path]:
    """Attach the local copies of `wanted` (building the missing ones): table → file."""
    assert lake.local is not None
    folder = lake.local
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    manifest = _manifest(lake, snapshot)
    with _folder_lock(folder, exclusive=False):
        if manifest.exists() and all(p.file is not None and p.file.exists() for p in wanted):
            return _attach_files(con, wanted)
    with _folder_lock(folder, exclusive=True), _memory_capped(con, _BUILD_MEMORY):
        usable = []
        for plan in wanted:
            assert plan.file is not None
            if not plan.file.exists():
                try:
                    _build(con, plan.name, plan.file)
                except (OSError, duckdb.Error) as error:
                    _log.warning(
                        "表 %s 的本地副本未能生成，改为直接读取数据仓库：%s", plan.name, error
                    )
                    continue
                done.built.append(plan.name)
            usable.append(plan)
        _write_manifest(manifest, snapshot, [p.file for p in usable if p.file is not None])
        attached = _attach_files(con, usable)
        _clean(lake, keep=set(attached.values()))
        return attached


@contextmanager
def _memory_capped(con: duckdb.DuckDBPyConnection, limit: str) -> Iterator[None]:
    """DuckDB's memory limit of `con` for a while, then its default again (a reader has no
    limit of its own, and is not yet shared while it is being opened)."""
    con.execute(f"SET memory_limit = '{limit}'")
    try:
        yield
    finally:
        con.execute("RESET memory_limit")


def _build(con: duckdb.DuckDBPyConnection, name: str, file: Path) -> None:
    """`name` as the reader sees it, into `file`: written under a temporary name beside it,
    checkpointed, closed and synced, then renamed (a half-written copy never has the name)."""
    partial = file.with_name(f".{file.name}.{os.getpid()}.{secrets.token_hex(4)}.partial")
    alias = "govdash_local_build"
    try:
        con.execute(f"ATTACH '{_quote(str(partial))}' AS {alias}")
        try:
            con.execute(
                f"CREATE TABLE {alias}.main.{_quoted(name)} AS FROM {ALIAS}.main.{_quoted(name)}"
            )
            con.execute(f"CHECKPOINT {alias}")
        finally:
            con.execute(f"DETACH {alias}")
        if Path(f"{partial}.wal").exists():  # not all of it in the file: never use it
            raise OSError(f"{partial}.wal left after CHECKPOINT")
        os.chmod(partial, 0o600)
        descriptor = os.open(partial, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.replace(partial, file)
    finally:
        for leftover in (partial, Path(f"{partial}.wal")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()


def _attach_files(con: duckdb.DuckDBPyConnection, plans: list[_Plan]) -> dict[str, Path]:
    attached: dict[str, Path] = {}
    for plan in plans:
        assert plan.file is not None
        try:
            con.execute(f"ATTACH '{_quote(str(plan.file))}' AS {plan.alias} (READ_ONLY)")
        except duckdb.Error as error:
            _log.warning("表 %s 的本地副本无法打开，改为直接读取数据仓库：%s", plan.name, error)
            continue
        attached[plan.name] = plan.file
    return attached


def _write_manifest(manifest: Path, snapshot: int, files: list[Path]) -> None:
    partial = manifest.with_name(f".{manifest.name}.{os.getpid()}.partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump({"snapshot": snapshot, "files": [f.name for f in files]}, handle)
    os.replace(partial, manifest)


def _clean(lake: Lake, keep: set[Path]) -> None:
    """Under the folder's exclusive lock: remove every copy that neither the newest snapshots'
    manifests (per catalog) nor this reader name, and every temporary file."""
    assert lake.local is not None
    folder = lake.local
    manifests: dict[str, list[tuple[int, Path]]] = {}
    for path in folder.glob("snapshot-*-*.json"):
        catalog, _, number = path.stem.removeprefix("snapshot-").rpartition("-")
        if number.isdigit():
            manifests.setdefault(catalog, []).append((int(number), path))
    names = {path.name for path in keep}
    for found in manifests.values():
        found.sort(reverse=True)
        for _, path in found[_KEEP_SNAPSHOTS:]:
            path.unlink(missing_ok=True)
        for _, path in found[:_KEEP_SNAPSHOTS]:
            try:
                names.update(json.loads(path.read_text()).get("files", []))
            except (OSError, ValueError):
                path.unlink(missing_ok=True)
    for path in folder.iterdir():
        stale = path.name.endswith(".partial") or (
            path.suffix in (".duckdb", ".wal") and path.name not in names
        )
        if stale:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


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
