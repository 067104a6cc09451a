"""`govdash migrate`: an old release's single-file warehouse (a version file behind the
`warehouse.duckdb` link) into the lake, in one snapshot, with its stored aggregates built."""

from __future__ import annotations

from pathlib import Path

import duckdb

from govdash.core.warehouse import connect_readonly, current_snapshot, lake_of, legacy_warehouse
from govdash.etl import aggregates
from govdash.etl.migrate import migrate
from tests.analytics.warehouse_data import build_main, clean_environment, shipped_config

CONFIG = shipped_config()


def _tables(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[object, ...]]]:
    names = [
        str(name)
        for (name,) in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
            "ORDER BY 1"
        ).fetchall()
    ]
    return {name: con.execute(f'SELECT * FROM "{name}" ORDER BY ALL').fetchall() for name in names}


def _old_release(source: Path, folder: Path) -> Path:
    """An old release's layout made of `source`'s tables: `warehouse.duckdb` → a version file
    written by this DuckDB, from before the stored aggregates (no agg_* tables)."""
    versions = folder / "warehouse.duckdb.versions"
    versions.mkdir(parents=True)
    version = versions / "v1.duckdb"
    con = connect_readonly(source)
    try:
        con.execute(f"ATTACH '{version}' AS old")
        for name in _tables(con):
            if not name.startswith("agg_"):
                con.execute(f'CREATE TABLE old."{name}" AS SELECT * FROM lake."{name}"')
        con.execute("DELETE FROM old.warehouse_info WHERE key LIKE 'aggregates%'")
        con.execute("DETACH old")
    finally:
        con.close()
    link = folder / "warehouse.duckdb"
    link.symlink_to(Path("warehouse.duckdb.versions") / "v1.duckdb")
    return link


def test_an_old_warehouse_moves_into_one_snapshot_with_its_aggregates(tmp_path: Path) -> None:
    source, _ = build_main(tmp_path / "source")
    db = _old_release(source, tmp_path / "old" / "data")
    old_file = legacy_warehouse(db)
    assert old_file is not None and current_snapshot(db) is None
    with clean_environment():
        snapshot = migrate(old_file, db, CONFIG, actor="迁移测试")
    assert current_snapshot(db) == snapshot
    assert legacy_warehouse(db) is None  # the lake is there now
    assert old_file.is_file()  # the old file stays
    found = lake_of(db).snapshot(snapshot)
    assert found is not None and found.message == "migrate"
    before, after = connect_readonly(source), connect_readonly(db)
    try:
        wanted, moved = _tables(before), _tables(after)
        assert moved.keys() == wanted.keys()
        for name, rows in wanted.items():
            if name != "warehouse_info":
                assert moved[name] == rows, name
        assert len(moved["tickets"]) > 400 and len(moved["agg_units"]) > 50
        # the aggregates, built by the migration, are what the loads had stored
        assert aggregates.current(after)
        assert dict(moved["warehouse_info"])["aggregates_version"] == (
            aggregates.AGGREGATES_VERSION
        )
    finally:
        before.close()
        after.close()
