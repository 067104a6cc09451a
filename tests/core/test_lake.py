"""The DuckLake warehouse: offline extensions, WAL catalog, configuration from the environment,
readers pinned to a snapshot — embedded (SQLite) and with a real PostgreSQL catalog."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import duckdb
import pytest

from govdash.core import lake as lake_module
from govdash.core.lake import CATALOG_ENV, DATA_PATH_ENV, Lake, LakeError, cursor
from govdash.core.warehouse import (
    LegacyWarehouseError,
    SnapshotNotFoundError,
    connect_readonly,
    lake_of,
)


def _commit(lake: Lake, statements: list[str], message: str) -> None:
    with lake.writer(memory_limit_mb=256) as con:
        con.execute("BEGIN")
        for sql in statements:
            con.execute(sql)
        con.execute(f"CALL lake.set_commit_message('test', '{message}')")
        con.execute("COMMIT")


def _embedded(tmp_path: Path) -> Lake:
    return Lake.from_location(tmp_path / "data" / "warehouse.duckdb", environ={})


def test_the_embedded_lake_lives_beside_the_warehouse_location(tmp_path: Path) -> None:
    lake = _embedded(tmp_path)
    assert (lake.kind, lake.target) == ("sqlite", str(tmp_path / "data" / "warehouse.sqlite"))
    assert lake.data_path == f"{tmp_path / 'data' / 'warehouse.files'}/"
    # naming the catalog file itself means the same installation
    assert Lake.from_location(tmp_path / "data" / "warehouse.sqlite", environ={}) == lake


def test_the_replica_lake_comes_from_the_environment(tmp_path: Path) -> None:
    env = {CATALOG_ENV: "postgres:dbname=gd host=db user=gd", DATA_PATH_ENV: "/mnt/lake"}
    lake = Lake.from_location(tmp_path / "warehouse.duckdb", environ=env)
    assert (lake.kind, lake.target, lake.data_path) == (
        "postgres",
        "dbname=gd host=db user=gd",
        "/mnt/lake/",
    )
    assert lake.url == "ducklake:postgres:dbname=gd host=db user=gd"
    relative = Lake.from_location(tmp_path / "w.duckdb", environ={**env, DATA_PATH_ENV: "shared"})
    assert relative.data_path == f"{Path.cwd() / 'shared'}/"  # stored absolute, never relative


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({CATALOG_ENV: "postgres:dbname=gd password=secret"}, "PGPASSWORD"),
        ({CATALOG_ENV: "postgres:dbname=gd user=gd"}, DATA_PATH_ENV),
        ({CATALOG_ENV: "mysql:db"}, "无法识别"),
    ],
)
def test_a_catalog_setting_that_cannot_work_is_refused_with_a_reason(
    tmp_path: Path, env: dict[str, str], words: str
) -> None:
    with pytest.raises(LakeError, match=words):
        Lake.from_location(tmp_path / "warehouse.duckdb", environ=env)


def test_the_sqlite_catalog_is_created_in_wal_mode(tmp_path: Path) -> None:
    lake = _embedded(tmp_path)
    assert lake.current_snapshot() is None
    _commit(lake, ["CREATE TABLE t (n INTEGER)", "INSERT INTO t VALUES (1)"], "first")
    with sqlite3.connect(lake.target) as catalog:
        assert catalog.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert lake.current_snapshot() == 1  # snapshot 0 is DuckLake's empty catalog


def test_extensions_load_from_the_wheels_with_autoloading_off(tmp_path: Path) -> None:
    for name in ("sqlite", "postgres"):
        link = lake_module.extension_path(name)
        assert link.name == f"{name}_scanner.duckdb_extension"  # the entry point's name
        assert link.resolve().name == f"{name}.duckdb_extension"
        assert f"duckdb_extension_{name}" in str(link.resolve())
    con = lake_module.connect(("ducklake", "sqlite"))
    try:
        settings = dict(
            con.execute(
                "SELECT name, value FROM duckdb_settings() WHERE name IN "
                "('autoinstall_known_extensions', 'autoload_known_extensions')"
            ).fetchall()
        )
        assert settings == {
            "autoinstall_known_extensions": "false",
            "autoload_known_extensions": "false",
        }
        loaded = {
            r[0]
            for r in con.execute(
                "SELECT extension_name FROM duckdb_extensions() WHERE loaded"
            ).fetchall()
        }
        assert {"ducklake", "sqlite_scanner"} <= loaded
        assert "postgres_scanner" not in loaded  # nothing loads by itself
    finally:
        con.close()


def test_a_fresh_process_loads_them_without_any_network(tmp_path: Path) -> None:
    """In a child with no proxy and an unroutable one set: LOAD reads only the wheel files."""
    script = (
        "from govdash.core.lake import Lake; from pathlib import Path; "
        f"lake = Lake.from_location(Path({str(tmp_path / 'w.duckdb')!r}), environ={{}}); "
        "w = lake.writer(); con = w.__enter__(); con.execute('CREATE OR REPLACE TABLE t AS SELECT 42 AS n'); "
        "w.__exit__(None, None, None); "
        "print(lake.reader().execute('SELECT n FROM t').fetchone()[0])"
    )
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {
        "PATH": "/usr/bin:/bin",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "TMPDIR": str(temp),
    }

    def run() -> list[Path]:
        found = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
        )
        assert found.returncode == 0, found.stderr
        assert found.stdout.strip() == "42"
        return sorted(temp.glob("govdash-duckdb-ext-*"))

    # The extensions' links: one folder for every process of this user, nothing left per process.
    first = run()
    assert len(first) == 1 and (first[0].stat().st_mode & 0o777) == 0o700
    assert run() == first
    assert (first[0] / "sqlite_scanner.duckdb_extension").resolve().is_file()
    # A folder others may write in is not used: the process makes its own and removes it.
    first[0].chmod(0o777)
    assert run() == first


def _pinned_reader_check(lake: Lake) -> None:
    _commit(lake, ["CREATE TABLE t (n INTEGER)", "INSERT INTO t SELECT * FROM range(10)"], "one")
    first = lake.current_snapshot()
    assert first is not None
    reader = lake.reader()  # pinned to `first`
    try:
        _commit(
            lake, ["INSERT INTO t SELECT * FROM range(10, 25)", "DELETE FROM t WHERE n < 3"], "two"
        )
        second = lake.current_snapshot()
        assert second is not None and second > first
        # the open reader still sees the first snapshot: 0..9, sum 45
        assert reader.execute("SELECT count(*), sum(n) FROM t").fetchone() == (10, 45)
        # so does a cursor handed out by lake.cursor (bare cursors do not inherit USE lake)
        assert cursor(reader).execute("SELECT count(*) FROM t").fetchone() == (10,)
        assert reader.cursor().execute("SELECT count(*) FROM lake.t").fetchone() == (10,)
    finally:
        reader.close()
    now = lake.reader()
    try:  # 3..24: 22 rows, sum 300 - 3 = 297
        assert now.execute("SELECT count(*), sum(n) FROM t").fetchone() == (22, 297)
    finally:
        now.close()
    old = lake.reader(first)  # time travel: re-opened after the later commit
    try:
        assert old.execute("SELECT count(*), sum(n) FROM t").fetchone() == (10, 45)
    finally:
        old.close()
    for pinned, expected in ((first, (10, 45)), (second, (22, 297))):  # from local copies
        local = lake.reader(pinned, local_copies=True)
        try:
            assert cursor(local).execute("SELECT count(*), sum(n) FROM t").fetchone() == expected
            assert local.execute(
                "SELECT count(*) FROM duckdb_databases() WHERE database_name LIKE 'govdash_local%'"
            ).fetchone() == (1,)
        finally:
            local.close()
    messages = [(s.snapshot_id, s.message) for s in lake.snapshots()]
    assert messages == [(first, "one"), (second, "two")]


def test_a_reader_pinned_to_a_snapshot_keeps_seeing_it_after_later_commits(tmp_path: Path) -> None:
    _pinned_reader_check(_embedded(tmp_path))


def test_the_same_with_a_postgresql_catalog(tmp_path: Path, pg_catalog: str) -> None:
    lake = Lake.from_location(
        tmp_path / "warehouse.duckdb",
        environ={CATALOG_ENV: f"postgres:{pg_catalog}", DATA_PATH_ENV: str(tmp_path / "shared")},
    )
    assert lake.current_snapshot() is None
    _pinned_reader_check(lake)
    assert sorted(p.suffix for p in (tmp_path / "shared").rglob("*.parquet"))  # data outside PG
    assert not (tmp_path / "warehouse.sqlite").exists()


def _kinds(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Each table name of the reader's own database → the database its view reads."""
    found = {}
    for name, sql in con.execute(
        "SELECT view_name, sql FROM duckdb_views() WHERE database_name = 'memory' AND NOT internal"
    ).fetchall():
        found[name] = "lake" if " lake.main." in sql else "local"
    return found


@pytest.fixture
def small_floor(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables under 1 MB of Parquet always copied (8 MB as shipped), so that a table of a few
    MB written here is left in the lake, as a city's tickets are."""
    monkeypatch.setattr(lake_module, "LOCAL_ALWAYS_PARQUET_BYTES", 1 << 20)


def _two_tables(lake: Lake) -> None:
    _commit(
        lake,
        [
            "CREATE TABLE small AS SELECT range AS n FROM range(5)",  # 0..4
            # md5 text does not compress: ~6 MB of Parquet, all but all of the lake
            "CREATE TABLE big AS SELECT range AS n, md5(range::VARCHAR) || md5((-range)::VARCHAR)"
            " AS pad FROM range(100000)",
        ],
        "one",
    )


def test_a_reader_with_local_copies_reads_the_same_snapshot_from_a_local_file(
    tmp_path: Path,
    small_floor: None,
) -> None:
    """`local_copies`: every table but the biggest read from a DuckDB file of its own in the
    installation's `.local` folder, the biggest from the lake; both at the pinned snapshot,
    for the connection and for its cursors, also after a later commit."""
    lake = _embedded(tmp_path)
    _two_tables(lake)
    first = lake.current_snapshot()
    assert lake.local == tmp_path / "data" / "warehouse.local"
    reader = lake.reader(local_copies=True)
    try:
        _commit(lake, ["INSERT INTO small VALUES (100)", "DELETE FROM big WHERE n < 10"], "two")
        assert _kinds(reader) == {"small": "local", "big": "lake"}
        files = sorted(p.name for p in lake.local.glob("*.duckdb"))
        assert len(files) == 1 and files[0].startswith("small-")
        with duckdb.connect(str(lake.local / files[0]), read_only=True) as copy:
            assert copy.execute("SELECT sum(n) FROM small").fetchone() == (10,)
        assert reader.execute("SELECT current_database()").fetchone() != ("lake",)
        # the build's memory cap is lifted again: the reader has DuckDB's default
        default = duckdb.connect().execute("SELECT current_setting('memory_limit')").fetchone()
        assert reader.execute("SELECT current_setting('memory_limit')").fetchone() == default
        # what it reads, for code that has only the connection (the rounds file's folder)
        assert lake_module.reader_folder(reader) == tmp_path / "data"
        assert lake_module.reader_folder(cursor(reader)) == tmp_path / "data"
        for handed in (reader, cursor(reader)):  # the first snapshot, from both kinds
            assert handed.execute("SELECT count(*), sum(n) FROM small").fetchone() == (5, 10)
            assert handed.execute("SELECT count(*), min(n) FROM big").fetchone() == (100000, 0)
    finally:
        reader.close()
    assert first is not None and lake.current_snapshot() == first + 1
    later = lake.reader(local_copies=True)
    try:
        assert cursor(later).execute("SELECT count(*), sum(n) FROM small").fetchone() == (6, 110)
        assert cursor(later).execute("SELECT count(*), min(n) FROM big").fetchone() == (99990, 10)
    finally:
        later.close()
    old = lake.reader(first, local_copies=True)  # time travel reads its own copy
    try:
        assert cursor(old).execute("SELECT count(*), sum(n) FROM small").fetchone() == (5, 10)
    finally:
        old.close()


def test_a_load_gets_new_copies_of_the_tables_it_changed_and_reuses_the_others(
    tmp_path: Path,
    small_floor: None,
) -> None:
    """One file per table and content: a commit that changes one table (here by a few rows,
    which DuckLake inlines into its catalog and so changes no data file) gets that table a new
    file, and the other table's file is the same file, not built again. The newest two
    snapshots' files are kept, older ones removed."""
    lake = _embedded(tmp_path)
    _commit(
        lake,
        ["CREATE TABLE a AS FROM range(1000) t(n)", "CREATE TABLE b AS FROM range(2000) t(n)",
         "CREATE TABLE c AS SELECT range AS n, md5(range::VARCHAR) AS pad FROM range(200000)"],
        "one",
    )  # fmt: skip
    one = lake.prepare_local_copies()
    assert sorted(one.built) == ["a", "b"] and one.views == ["c"]
    b_file = one.copied["b"]
    b_inode = b_file.stat().st_ino
    assert lake.prepare_local_copies().built == []  # found, not built again
    _commit(lake, ["INSERT INTO a VALUES (-1), (-2)"], "two: two rows, inlined")
    assert sorted(lake.reader().execute("FROM ducklake_list_files('lake', 'a')").fetchall()) == (
        sorted(lake.reader(1).execute("FROM ducklake_list_files('lake', 'a')").fetchall())
    )  # no new data file: only the catalog knows of the two rows
    two = lake.prepare_local_copies()
    assert two.built == ["a"]
    assert two.copied["b"] == b_file and b_file.stat().st_ino == b_inode
    assert two.copied["a"] != one.copied["a"]
    reader = lake.reader(local_copies=True)
    try:
        assert reader.execute("SELECT count(*), sum(n) FROM a").fetchone() == (1002, 499497)
    finally:
        reader.close()
    _commit(lake, ["DELETE FROM b WHERE n >= 1000"], "three")
    three = lake.prepare_local_copies()
    assert three.built == ["b"] and three.copied["a"] == two.copied["a"]
    # the newest two snapshots' files are kept; the first's copy of `a` is gone
    assert not one.copied["a"].exists()
    assert two.copied["a"].exists() and b_file.exists() and three.copied["b"].exists()
    assert len(list(lake.local.glob("snapshot-*.json"))) == 2


def test_an_interrupted_build_is_never_used(tmp_path: Path, small_floor: None) -> None:
    """A build killed before its rename leaves only a temporary file: the next reader builds the
    copy again (the leftover removed), and a reader never takes a temporary file for a copy."""
    lake = _embedded(tmp_path)
    _two_tables(lake)
    con = lake.reader()
    plans = lake_module._plans(con, lake, lake.current_snapshot() or 0)
    con.close()
    small = next(p.file for p in plans if p.name == "small")
    assert small is not None
    small.parent.mkdir(parents=True)
    # what a killed build leaves: the copy under its temporary name, a wrong one here
    leftover = small.with_name(f".{small.name}.123.abcd1234.partial")
    with duckdb.connect(str(leftover)) as partial:
        partial.execute("CREATE TABLE small AS SELECT 999 AS n")
    copies = lake.prepare_local_copies()
    assert copies.built == ["small"] and copies.copied["small"] == small
    assert not leftover.exists()
    reader = lake.reader(local_copies=True)
    try:
        assert reader.execute("SELECT count(*), sum(n) FROM small").fetchone() == (5, 10)
    finally:
        reader.close()


def test_copies_that_cannot_be_built_fall_back_to_the_lake(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A folder that cannot be written (no permission, a full disk): every table is read from
    the lake, with a warning in the log, and the figures are the lake's."""
    lake = _embedded(tmp_path)
    _two_tables(lake)
    assert lake.local is not None
    lake.local.write_text("not a folder")  # mkdir and every write in it fail
    with caplog.at_level("WARNING", logger="govdash.core.lake"):
        reader = lake.reader(local_copies=True)
    try:
        assert _kinds(reader) == {"small": "lake", "big": "lake"}
        assert reader.execute("SELECT count(*), sum(n) FROM small").fetchone() == (5, 10)
    finally:
        reader.close()
    assert "本地副本不可用" in caplog.text


_OPEN_TWICE = """
import json, sys, time
from pathlib import Path
from govdash.core import lake as lake_module
from govdash.core.lake import Lake
lake_module.LOCAL_ALWAYS_PARQUET_BYTES = 1 << 20  # as the test's small_floor
lake = Lake.from_location(Path(sys.argv[1]), environ={})
go = Path(sys.argv[2])
while not go.exists():
    time.sleep(0.01)
copies = lake.prepare_local_copies()
con = lake.reader(local_copies=True)
print(json.dumps({"built": copies.built, "copied": {k: str(v) for k, v in copies.copied.items()},
                  "sum": con.execute("SELECT sum(n) FROM small").fetchone()[0]}))
"""


def test_two_processes_opening_the_same_snapshot_share_one_build(
    tmp_path: Path, small_floor: None
) -> None:
    lake = _embedded(tmp_path)
    _commit(
        lake,
        [f"CREATE TABLE t{i} AS SELECT range AS n FROM range({i * 1000})" for i in range(1, 7)]
        + ["CREATE TABLE small AS SELECT range AS n FROM range(5)",
           "CREATE TABLE big AS SELECT range AS n, md5(range::VARCHAR) AS pad FROM range(300000)"],
        "one",
    )  # fmt: skip
    go = tmp_path / "go"
    children = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                _OPEN_TWICE,
                str(tmp_path / "data" / "warehouse.duckdb"),
                str(go),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    go.touch()
    found = []
    for child in children:
        out, err = child.communicate(timeout=300)
        assert child.returncode == 0, err
        found.append(json.loads(out))
    copied = {"small", *(f"t{i}" for i in range(1, 7))}
    # every copy built once, by one of them; both read the same files
    assert sorted(found[0]["built"] + found[1]["built"]) == sorted(copied)
    assert found[0]["copied"] == found[1]["copied"] and set(found[0]["copied"]) == copied
    assert [f["sum"] for f in found] == [10, 10]
    assert lake.local is not None
    assert len(list(lake.local.glob("*.duckdb"))) == len(copied)
    assert not list(lake.local.glob("*.partial"))


def test_connect_readonly_names_a_missing_snapshot_and_an_old_warehouse(tmp_path: Path) -> None:
    db = tmp_path / "data" / "warehouse.duckdb"
    with pytest.raises(FileNotFoundError, match="govdash load"):
        connect_readonly(db)
    _commit(lake_of(db), ["CREATE TABLE t AS SELECT 1 AS n"], "x")
    with pytest.raises(SnapshotNotFoundError, match="#7"):
        connect_readonly(db, 7)
    # an old release's link into its versions folder, with no lake beside it
    old = tmp_path / "old" / "warehouse.duckdb"
    version = old.with_name("warehouse.duckdb.versions") / "v1.duckdb"
    version.parent.mkdir(parents=True)
    duckdb.connect(str(version)).close()
    old.symlink_to(Path("warehouse.duckdb.versions") / "v1.duckdb")
    with pytest.raises(LegacyWarehouseError, match="govdash migrate"):
        connect_readonly(old)


def _locks_held(path: str) -> list[tuple[str, str, str]]:
    """(kind, first byte, last byte) of every POSIX lock this process holds on `path`."""
    inode = str(os.stat(path).st_ino)
    held = []
    for line in Path("/proc/locks").read_text().splitlines():
        parts = line.split()  # "1: POSIX  ADVISORY  READ 1234 08:01:5678 128 128"
        mine = parts[1] == "POSIX" and parts[4] == str(os.getpid())
        if mine and parts[5].rsplit(":", 1)[-1] == inode:
            held.append((parts[3], parts[6], parts[7]))
    return sorted(held)


def test_asking_for_the_current_snapshot_leaves_an_open_reader_its_catalog_locks(
    tmp_path: Path,
) -> None:
    """SQLite's locks belong to the process: a second SQLite library (Python's sqlite3) that
    opens and closes the catalog takes away the locks DuckDB's SQLite holds for a reader (its
    snapshot's read mark, the WAL index's DMS lock) — then another process may rebuild the WAL
    index the reader has mapped (SIGBUS). current_snapshot asks through DuckDB's SQLite."""
    lake = _embedded(tmp_path)
    _commit(lake, ["CREATE TABLE t AS SELECT 1 AS n"], "one")
    shm = lake.target + "-shm"
    reader = lake.reader()
    try:
        reader.execute("BEGIN")
        assert reader.execute("SELECT count(*) FROM t").fetchone() == (1,)
        held = _locks_held(shm)
        assert ("READ", "128", "128") in held  # the DMS lock: "this WAL index is in use"
        _commit(lake, ["INSERT INTO t VALUES (2)"], "two")  # in this process, another connection
        assert lake.current_snapshot() == 2
        assert _locks_held(shm) == held
        lake_module._SEEN.clear()  # asked again through the catalog, not the remembered answer
        assert lake.current_snapshot() == 2
        assert _locks_held(shm) == held
        # what the process must not do: Python's sqlite3 on the same catalog
        with closing(sqlite3.connect(f"file:{lake.target}?mode=ro", uri=True)) as other:
            assert other.execute("SELECT max(snapshot_id) FROM ducklake_snapshot").fetchone() == (
                2,
            )
        assert _locks_held(shm) == []  # the reader's locks are gone
    finally:
        reader.close()
