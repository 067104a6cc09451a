"""A warehouse built by the real loader reads the same with and without local copies: every
table's rows, and the page figures computed from them (`Lake.reader(local_copies=True)`)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from govdash.analytics.queries import surveys, tickets
from govdash.analytics.queries.filters import Filters
from govdash.cli import main as cli_main
from govdash.core import lake as lake_module
from govdash.core.lake import cursor
from govdash.core.warehouse import lake_of
from tests.analytics.warehouse_data import (
    REGISTER,
    REGISTER_HEADER,
    TICKET_HEADER,
    build_main,
    clean_environment,
    expected_tickets,
    generate_tickets,
    select,
    shipped_config,
)
from tests.conftest import write_csv, write_xlsx

CONFIG = shipped_config()
FILTERS = [Filters.for_year(2025), Filters.for_quarter(2025, 1), Filters.for_month(2025, 3)]


Readers = dict[str, duckdb.DuckDBPyConnection]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    db, generated = build_main(tmp_path_factory.mktemp("local"))
    return db, expected_tickets(generated)


@pytest.fixture(scope="module")
def readers(built: tuple[Path, pd.DataFrame]) -> Iterator[Readers]:
    """The lake alone; every table copied (all are under 8 MB of Parquet here); and, with no
    floor, only the share rule: a table over a third of the Parquet bytes left in the lake."""
    lake = lake_of(built[0])
    found = {"lake": lake.reader(), "local": lake.reader(local_copies=True)}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(lake_module, "LOCAL_ALWAYS_PARQUET_BYTES", 0)
        found["mixed"] = lake.reader(local_copies=True)
    try:
        yield found
    finally:
        for con in found.values():
            con.close()


def _from_lake(con: duckdb.DuckDBPyConnection) -> list[str]:
    views = con.execute(
        "SELECT view_name, sql FROM duckdb_views() WHERE database_name = 'memory' AND NOT internal"
    ).fetchall()
    return sorted(name for name, sql in views if " lake.main." in sql)


def test_every_table_reads_the_same_rows_from_its_local_copy(readers: Readers) -> None:
    names = [r[0] for r in readers["lake"].execute("SHOW TABLES").fetchall()]
    assert _from_lake(readers["local"]) == []
    parquet = "coalesce(file_size_bytes, 0) + coalesce(delete_file_size_bytes, 0)"
    info = f"SELECT table_name, {parquet} FROM ducklake_table_info('lake')"
    sizes = readers["lake"].execute(info).fetchall()
    total = sum(size for _, size in sizes)
    biggest = sorted(name for name, size in sizes if size > total / 3)
    assert "tickets" in biggest and len(biggest) < len(sizes)
    assert _from_lake(readers["mixed"]) == biggest
    for name in names:  # the same rows, table by table
        query = f'SELECT * FROM "{name}" ORDER BY ALL'
        lakeside = cursor(readers["lake"]).execute(query).df()
        for kind in ("local", "mixed"):
            pd.testing.assert_frame_equal(cursor(readers[kind]).execute(query).df(), lakeside)


def _same(a: object, b: object) -> None:
    if isinstance(a, float) and isinstance(b, float):
        assert (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-12)
    else:
        assert a == b


@pytest.mark.parametrize("filters", FILTERS, ids=["2025", "2025Q1", "2025-03"])
@pytest.mark.parametrize("kind", ["local", "mixed"])
def test_the_figures_are_the_same_with_and_without_local_copies(
    readers: Readers, built: tuple[Path, pd.DataFrame], kind: str, filters: Filters
) -> None:
    lakeside, local = cursor(readers["lake"]), cursor(readers[kind])
    kpis = tickets.ticket_kpis(local, filters, CONFIG)
    expected = tickets.ticket_kpis(lakeside, filters, CONFIG)
    for field in dataclasses.fields(expected):
        _same(getattr(kpis, field.name), getattr(expected, field.name))
    # and they are the generated tickets' (counted with pandas, not the warehouse's SQL)
    assert kpis.tickets == len(select(built[1], filters.start, filters.end)) > 0
    for level in surveys.SURVEY_LEVELS:
        pd.testing.assert_frame_equal(
            surveys.survey_item_rates(local, filters, CONFIG, level),
            surveys.survey_item_rates(lakeside, filters, CONFIG, level),
        )
    pd.testing.assert_frame_equal(
        tickets.monthly_trend(local, filters, CONFIG),
        tickets.monthly_trend(lakeside, filters, CONFIG),
    )


def test_local_copies_live_in_the_installation_folder(readers: Readers) -> None:
    files = {
        Path(r[0]).parent
        for r in readers["local"]
        .execute("SELECT path FROM duckdb_databases() WHERE database_name LIKE 'govdash_local_%'")
        .fetchall()
    }
    assert len(files) == 1 and next(iter(files)).name == "w.local"


def test_govdash_load_builds_the_new_snapshots_copies_unless_told_not_to(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """After a load the CLI builds this machine's copies of the new snapshot, so the first page
    read does not; `--no-local-copies` leaves them to the server."""
    register = write_xlsx(
        tmp_path / "台账.xlsx", {"台账": [REGISTER_HEADER, *[list(r) for r in REGISTER]]}
    )
    db = tmp_path / "data" / "warehouse.duckdb"
    with clean_environment():
        assert cli_main(["load", str(register), "--db", str(db), "--no-local-copies"]) == 0
        assert not (tmp_path / "data" / "warehouse.local").exists()
        tickets_file = write_csv(
            tmp_path / "工单.csv",
            [TICKET_HEADER, *[t.row() for t in generate_tickets(60)]],
            "utf-8-sig",
        )
        capsys.readouterr()
        assert cli_main(["load", str(tickets_file), "--db", str(db)]) == 0
    said = capsys.readouterr().out
    lake = lake_of(db)
    snapshot = lake.current_snapshot()
    assert f"本地副本（快照 #{snapshot}" in said
    assert lake.local is not None and list(lake.local.glob(f"snapshot-*-{snapshot}.json"))
    # the server's reader finds them all: nothing left to build
    copies = lake.prepare_local_copies(snapshot)
    assert copies.built == [] and "tickets" in copies.copied  # 60 tickets: under 8 MB
    assert copies.views == []
