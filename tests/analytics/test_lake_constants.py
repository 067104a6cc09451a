"""Filter values with quotes, backslashes, semicolons and NUL characters against the lake.

DuckLake writes a filter's string constants into the SQL it sends to its catalog (to prune
data files by their min/max statistics). Quotes, backslashes and semicolons come back exact,
with an SQLite and with a PostgreSQL catalog; a NUL would cut that SQL (DuckDB's parser stops
at it), so the read side sends it as U+FFFD (filters.bound_parameters): the query selects
nothing instead of failing. Place names with those characters are loaded by the real loader.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from govdash.analytics.queries import tickets, units
from govdash.analytics.queries.filters import Filters
from govdash.core.lake import CATALOG_ENV, DATA_PATH_ENV
from govdash.core.warehouse import connect_readonly, current_snapshot
from govdash.etl.load import load_paths
from tests.analytics.warehouse_data import (
    REGISTER_HEADER,
    TICKET_HEADER,
    clean_environment,
    shipped_config,
)
from tests.conftest import write_csv, write_xlsx

CONFIG = shipped_config()
QUARTER = Filters.for_quarter(2025, 1)
# (street, community, compound, households, property company)
PLACES = [
    ("甲街道", "东社区", "王家'老宅", 100, "安居物业"),
    ("甲街道", "东社区", "C:\\一号院\\", 200, "O'Neil物业"),
    ("甲街道", "西社区", "西区; DROP TABLE tickets; --", 300, "安居物业"),
    ("乙街道", "南'社区", "x'); DELETE FROM ducklake_snapshot; --", 400, "乐家\\物业"),
    ("乙街道", "南'社区", "南一小区", 500, "乐家\\物业"),
]
COUNTS = (3, 5, 7, 2, 4)  # tickets per compound, all in 2025 Q1


def _ticket_rows() -> list[list[str]]:
    rows: list[list[str]] = []
    start = datetime(2025, 1, 6, 9, 0)
    for (_, community, compound, _, company), count in zip(PLACES, COUNTS, strict=True):
        for _ in range(count):
            accepted = start + timedelta(days=len(rows))
            rows.append(
                [f"Q{len(rows):03d}", "12345转办", "求助", "电梯", "一般", community, compound,
                 company, f"{accepted:%Y-%m-%d %H:%M}",
                 f"{accepted + timedelta(minutes=20):%Y-%m-%d %H:%M}",
                 f"{accepted + timedelta(hours=5):%Y-%m-%d %H:%M}", "已办结", "是", "是", "是",
                 "满意", "", "电梯问题"]
            )  # fmt: skip
    return rows


def _ids_of(compound: str) -> list[str]:
    return sorted(row[0] for row in _ticket_rows() if row[6] == compound)


def _build(folder: Path) -> Path:
    files = [
        write_xlsx(folder / "台账.xlsx", {"台账": [REGISTER_HEADER, *[list(p) for p in PLACES]]}),
        write_csv(folder / "工单.csv", [TICKET_HEADER, *_ticket_rows()], "utf-8-sig"),
    ]
    db = folder / "w.duckdb"
    report = load_paths(files, db, CONFIG)
    assert [f.error for f in report.files] == [None, None]
    assert all(f.rows_rejected == 0 for f in report.files)
    return db


@pytest.fixture(params=["sqlite", "postgres"])
def warehouse(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    with clean_environment():
        if request.param == "postgres":
            dsn = request.getfixturevalue("pg_catalog")
            monkeypatch.setenv(CATALOG_ENV, f"postgres:{dsn}")
            monkeypatch.setenv(DATA_PATH_ENV, str(tmp_path / "shared"))
        return _build(tmp_path)


def test_quotes_backslashes_and_semicolons_select_exactly_their_rows(warehouse: Path) -> None:
    expected = Counter[str]()
    by_company = Counter[str]()
    for (_, _, compound, _, company), count in zip(PLACES, COUNTS, strict=True):
        expected[compound] += count
        by_company[company] += count
    con = connect_readonly(warehouse)
    try:
        for compound, count in expected.items():
            chosen = QUARTER.with_selection(compound=[compound])
            assert tickets.ticket_kpis(con, chosen, CONFIG).tickets == count, compound
            rows = tickets.ticket_rows(con, QUARTER, CONFIG, compound)
            assert sorted(rows["ticket_id"]) == _ids_of(compound)
        for company, count in by_company.items():
            chosen = QUARTER.with_selection(property_company=[company])
            assert tickets.ticket_kpis(con, chosen, CONFIG).tickets == count, company
        both = QUARTER.with_selection(community=["南'社区"], street=["乙街道"])
        table = units.unit_table(con, both, CONFIG, "compound")
        assert dict(zip(table["unit"], table["tickets"], strict=True)) == {
            PLACES[3][2]: COUNTS[3],
            PLACES[4][2]: COUNTS[4],
        }
    finally:
        con.close()


def test_a_nul_character_selects_nothing_and_changes_nothing(warehouse: Path) -> None:
    snapshot = current_snapshot(warehouse)
    con = connect_readonly(warehouse)
    try:
        for value in ("王家'老宅\x00", "\x00", "a\x00'; DROP TABLE tickets; --"):
            chosen = QUARTER.with_selection(compound=[value])
            assert tickets.ticket_kpis(con, chosen, CONFIG).tickets == 0
            assert tickets.ticket_rows(con, QUARTER, CONFIG, value).empty
            assert units.unit_table(con, chosen, CONFIG, "compound").empty
        # with a real name beside it, the real name's rows are still found
        chosen = QUARTER.with_selection(compound=["\x00", PLACES[0][2]])
        assert tickets.ticket_kpis(con, chosen, CONFIG).tickets == COUNTS[0]
        assert con.execute("SELECT count(*) FROM tickets").fetchone() == (sum(COUNTS),)
    finally:
        con.close()
    assert current_snapshot(warehouse) == snapshot
