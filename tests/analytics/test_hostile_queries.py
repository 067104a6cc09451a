"""Hostile URL parameters through Filters into every query function: no error, no change to the
warehouse, and nothing selected that the warehouse does not hold."""

from __future__ import annotations

import hashlib
import sqlite3
from contextlib import closing
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from govdash.analytics.queries import surveys, tickets, units
from govdash.analytics.queries.filters import SELECTION_COLUMNS, Filters
from govdash.core.warehouse import lake_of
from tests.analytics.warehouse_data import build_main, open_db, shipped_config

CONFIG = shipped_config()
DEFAULT_END = date(2025, 3, 31)
HOSTILE = [
    "'; DROP TABLE tickets; --",
    '" OR 1=1 --',
    "x'); DELETE FROM compounds WHERE ('1'='1",
    "东一小区' OR '1'='1",
    "1; ATTACH '/tmp/evil.duckdb' AS evil; --",
    "COPY tickets TO '/tmp/leak.csv'",
    "$community",
    "?",
    "\\'; SELECT 1; --",
    "a\x00b",
    "\u202e东一小区\u202c",
    "𠀀𪚥🏠",
    "％２７",
    "SELECT * FROM tickets",
    "x" * 199,
    "y" * 5000,
    "",
]
LEVELS = ("community", "compound", "property_company")


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db, _ = build_main(tmp_path_factory.mktemp("hostile"))
    return db


def _digest(db: Path) -> str:
    """The warehouse's content: the catalog's rows (SQLite's own dump) and every data file."""
    lake = lake_of(db)
    digest = hashlib.sha256()
    with closing(sqlite3.connect(f"file:{lake.target}?mode=ro", uri=True)) as catalog:
        for line in catalog.iterdump():
            digest.update(line.encode())
    for path in sorted(Path(lake.data_path).rglob("*")):
        if path.is_file():
            digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def _size(result: Any) -> int:
    if isinstance(result, pd.DataFrame):
        return len(result)
    frames = [v for v in vars(result).values() if isinstance(v, pd.DataFrame)]
    return sum(len(f) for f in frames)


def _every_query(con: Any, filters: Filters, unit: str) -> dict[str, Any]:
    results: dict[str, Any] = {
        "kpis": tickets.ticket_kpis(con, filters, CONFIG),
        "monthly_trend": tickets.monthly_trend(con, filters, CONFIG),
        "percentile_trend": tickets.percentile_trend(con, filters, CONFIG),
        "response_distribution": tickets.response_distribution(con, filters, CONFIG, "category"),
        "backlog_aging": tickets.backlog_aging(con, filters, CONFIG),
        "longest_open": tickets.longest_open(con, filters, CONFIG),
        "weekday_hour_volume": tickets.weekday_hour_volume(con, filters, CONFIG),
        "repeat_requests": tickets.repeat_requests(con, filters, CONFIG),
        "ticket_rows": tickets.ticket_rows(con, filters, CONFIG, unit),
        "callback_trend": surveys.callback_satisfaction_trend(con, filters, CONFIG),
        "comment_words": surveys.comment_words(con, filters, CONFIG),
    }
    for level in LEVELS:
        results[f"unit_table/{level}"] = units.unit_table(con, filters, CONFIG, level)
        if level != "compound":  # a compound's next step is its tickets (ticket_rows)
            results[f"drill_down/{level}"] = units.drill_down(con, filters, CONFIG, level, unit)
        results[f"item_rates/{level}"] = surveys.survey_item_rates(con, filters, CONFIG, level)
        results[f"profile/{level}"] = surveys.unit_profile(con, filters, CONFIG, level, unit)
        results[f"wave_change/{level}"] = surveys.wave_change(con, filters, CONFIG, level)
    return results


@pytest.mark.parametrize("value", HOSTILE, ids=[f"hostile-{i}" for i in range(len(HOSTILE))])
def test_hostile_filter_values_select_nothing_and_change_nothing(warehouse, value):
    before = _digest(warehouse)
    params: dict[str, str | list[str]] = {name: [value] for name in SELECTION_COLUMNS}
    params.update({"period": "quarter", "start": "2025-01-01"})
    filters = Filters.from_query_params(params, DEFAULT_END)
    assert filters.start == date(2025, 1, 1)
    con = open_db(warehouse)
    try:
        results = _every_query(con, filters, value)
        assert results["ticket_rows"].empty  # no compound is called that
        kept = [getattr(filters, name) for name in SELECTION_COLUMNS]
        if all(selection == (value,) for selection in kept):
            assert results["kpis"].tickets == 0
            for name, result in results.items():
                if name.startswith(("unit_table", "item_rates", "profile")):
                    assert _size(result) == 0, name
        else:  # empty and overlong values are dropped (test_filters): the whole quarter
            assert kept == [()] * len(SELECTION_COLUMNS)
            whole = tickets.ticket_kpis(con, Filters.for_quarter(2025, 1), CONFIG)
            assert results["kpis"].tickets == whole.tickets > 0
        # The warehouse answers as before: the tables are all there, with their rows.
        assert con.execute("SELECT count(*) FROM tickets").fetchone()[0] > 0
        assert con.execute("SELECT count(*) FROM compounds").fetchone()[0] > 0
    finally:
        con.close()
    assert _digest(warehouse) == before
    assert not Path("/tmp/leak.csv").exists()


@pytest.mark.parametrize("value", HOSTILE[:6], ids=[f"hostile-{i}" for i in range(6)])
def test_hostile_period_parameters_fall_back_to_the_default(warehouse, value):
    filters = Filters.from_query_params(
        {"period": value, "start": value, "end": value}, DEFAULT_END
    )
    assert filters == Filters.default(DEFAULT_END)
    con = open_db(warehouse)
    try:
        assert tickets.ticket_kpis(con, filters, CONFIG).tickets >= 0
    finally:
        con.close()
