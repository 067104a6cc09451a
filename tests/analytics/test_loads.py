"""Which load batches a figure used (queries.loads.batches_used), on a warehouse of several files.

The files are split in the test by month, wave and place, so the batches each filter should name
are known from how the rows were written, not from the product's SQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from govdash.analytics.queries.filters import Filters
from govdash.analytics.queries.loads import batches_used
from govdash.core.access import Scope
from tests.analytics.test_evaluation_data import EVALUATION_HEADER
from tests.analytics.warehouse_data import (
    CLOSED_STATUSES,
    REGISTER,
    REGISTER_HEADER,
    SURVEY_HEADER,
    TICKET_HEADER,
    Ticket,
    build,
    generate_tickets,
    open_db,
    shipped_config,
    survey_rows,
)
from tests.conftest import write_csv, write_xlsx

MARCH = datetime(2025, 3, 1)
# 王 scores 东一小区 (东社区) in one file, 李 scores 西一小区 (西社区) in another.
EVALUATOR_COLUMNS = len(EVALUATION_HEADER) - 4 - 3


def _scores(unit: str, evaluator: str) -> list[Any]:
    points = [i.points * 0.8 for i in shipped_config().indicators if i.source == "evaluator"]
    assert len(points) == EVALUATOR_COLUMNS
    return [2025, unit, "小区", evaluator, *points, None, None, None]


TICKETS = generate_tickets()
EARLY = [t for t in TICKETS if t.accepted_at < MARCH]
LATE = [t for t in TICKETS if t.accepted_at >= MARCH]
# One ticket of the early file is re-exported, changed, with the March file: the March load
# wins, so its row carries the March batch. The old file keeps the others.
RESENT = next(t for t in EARLY if t.status not in CLOSED_STATUSES)
# A file holding only that ticket, loaded first and entirely replaced later.
ONLY_RESENT = "旧导出.csv"
WAVE_2024 = "2024年下半年"

# Batch numbers follow the load order below.
BATCH = {
    "register": 1,
    ONLY_RESENT: 2,
    "early": 3,
    "late": 4,
    "survey_2024": 5,
    "survey_other": 6,
    "east_scores": 7,
    "west_scores": 8,
}


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("batches")
    responded = RESENT.responded_at or RESENT.accepted_at + timedelta(minutes=10)
    resent = replace(
        RESENT, status="已办结", responded_at=responded, closed_at=responded + timedelta(hours=1)
    )
    surveys = survey_rows()
    files = [
        write_xlsx(folder / "台账.xlsx", {"台账": [REGISTER_HEADER, *[list(r) for r in REGISTER]]}),
        write_csv(folder / ONLY_RESENT, [TICKET_HEADER, RESENT.row()], "utf-8-sig"),
        write_csv(folder / "工单_1-2月.csv", [TICKET_HEADER, *[t.row() for t in EARLY]], "utf-8"),
        write_csv(
            folder / "工单_3月.csv",
            [TICKET_HEADER, *[t.row() for t in LATE], resent.row()],
            "utf-8",
        ),
        write_xlsx(
            folder / "问卷_2024.xlsx",
            {"问卷": [SURVEY_HEADER, *[r for r in surveys if r[1] == WAVE_2024]]},
        ),
        write_xlsx(
            folder / "问卷_其他.xlsx",
            {"问卷": [SURVEY_HEADER, *[r for r in surveys if r[1] != WAVE_2024]]},
        ),
        write_xlsx(
            folder / "考评_东.xlsx", {"考评": [EVALUATION_HEADER, _scores("东一小区", "王")]}
        ),
        write_xlsx(
            folder / "考评_西.xlsx", {"考评": [EVALUATION_HEADER, _scores("西一小区", "李")]}
        ),
    ]
    return build(folder, files)


@pytest.fixture(scope="module")
def con(db: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = open_db(db)
    yield connection
    connection.close()


def used(con: duckdb.DuckDBPyConnection, filters: Filters, *sources: str, **kw: Any) -> set[int]:
    frame = (
        batches_used(con, filters, tuple(sources), **kw) if sources else batches_used(con, filters)
    )
    return set(frame["batch_id"].astype(int))


def test_the_batches_are_numbered_in_load_order(con: duckdb.DuckDBPyConnection) -> None:
    names = dict(con.execute("SELECT batch_id, file_name FROM load_batches").fetchall())
    assert names[BATCH[ONLY_RESENT]] == ONLY_RESENT
    assert names[BATCH["late"]] == "工单_3月.csv"
    assert names[BATCH["west_scores"]] == "考评_西.xlsx"


def file_of(ticket: Ticket) -> int:
    """The batch a ticket's row comes from: the re-exported one from the March file."""
    return BATCH["late"] if ticket is RESENT or ticket.accepted_at >= MARCH else BATCH["early"]


def test_a_months_tickets_name_only_that_months_files(con: duckdb.DuckDBPyConnection) -> None:
    assert used(con, Filters.for_month(2025, 3), "tickets") == {BATCH["late"]}
    for month in (1, 2):
        expected = {
            file_of(t)
            for t in TICKETS
            if (t.accepted_at.year, t.accepted_at.month) == (2025, month)
        }
        assert used(con, Filters.for_month(2025, month), "tickets") == expected
    # January holds the re-exported ticket, so both files; February only the early one.
    assert RESENT.accepted_at.month == 1
    assert used(con, Filters.for_month(2025, 2), "tickets") == {BATCH["early"]}
    assert used(con, Filters.for_quarter(2025, 1), "tickets") == {BATCH["early"], BATCH["late"]}
    assert used(con, Filters.for_month(2023, 1), "tickets") == set()


def test_a_file_whose_rows_were_all_replaced_is_not_named(con: duckdb.DuckDBPyConnection) -> None:
    month = Filters.for_month(RESENT.accepted_at.year, RESENT.accepted_at.month)
    resent_in = used(con, month, "tickets")
    assert BATCH[ONLY_RESENT] not in resent_in
    assert BATCH["late"] in resent_in, "the re-exported ticket now comes from the March file"


def test_the_backlog_names_the_files_of_tickets_still_open(con: duckdb.DuckDBPyConnection) -> None:
    end = datetime(2025, 4, 1)
    still_open = [
        t
        for t in TICKETS
        if t is not RESENT
        and t.accepted_at < end
        and t.closed_at is None
        and t.status not in CLOSED_STATUSES
    ]
    expected = {file_of(t) for t in still_open}
    assert expected == {BATCH["early"], BATCH["late"]}, "the data must leave early tickets open"
    assert used(con, Filters.for_month(2025, 3), "backlog") == expected


def test_the_register_and_the_default_sources(con: duckdb.DuckDBPyConnection) -> None:
    march = Filters.for_month(2025, 3)
    assert used(con, march, "register") == {BATCH["register"]}
    # Tickets of March, those open at its end, no survey wave in March, and the register.
    assert used(con, march) == {BATCH["register"], BATCH["early"], BATCH["late"]}


def test_surveys_name_the_files_of_the_periods_waves(con: duckdb.DuckDBPyConnection) -> None:
    autumn = Filters.for_quarter(2024, 4)
    assert used(con, autumn, "surveys") == {BATCH["survey_2024"]}
    spring = Filters.for_quarter(2025, 2)
    assert used(con, spring, "surveys") == {BATCH["survey_other"]}
    # The wave comparison sets the 2025 wave beside the one before it: 2024年下半年.
    assert used(con, spring, "previous_wave") == {BATCH["survey_2024"]}
    assert used(con, Filters.for_month(2025, 3), "surveys", "previous_wave") == set()


def test_places_and_scope_narrow_the_sources(con: duckdb.DuckDBPyConnection) -> None:
    south = Filters.for_month(2025, 3).with_selection(community=["南社区"])
    expected = {BATCH["late"]} if any(t.community == "南社区" for t in LATE) else set()
    assert used(con, south, "tickets") == expected
    spring = Filters.for_quarter(2025, 2).within(Scope("community", "南社区"))
    assert used(con, spring, "surveys") == set(), "南社区 answered no survey in 2025"
    assert used(con, spring, "register") == {BATCH["register"]}


def test_evaluation_rows_by_year_level_and_scope(con: duckdb.DuckDBPyConnection) -> None:
    year = Filters.for_year(2025)
    both = {BATCH["east_scores"], BATCH["west_scores"]}
    assert used(con, year, "evaluation", level="compound") == both
    assert used(con, Filters.for_year(2024), "evaluation", level="compound") == set()
    assert used(con, year, "evaluation", level="community") == set()
    east = year.within(Scope("community", "东社区"))
    assert used(con, east, "evaluation", level="compound") == {BATCH["east_scores"]}
    with pytest.raises(ValueError, match="level"):
        batches_used(con, year, ("evaluation",))


def test_the_rows_are_load_historys(con: duckdb.DuckDBPyConnection) -> None:
    frame = batches_used(con, Filters.for_month(2025, 3), ("tickets", "register"))
    assert frame["batch_id"].tolist() == [BATCH["late"], BATCH["register"]], "newest first"
    assert frame["file_name"].tolist() == ["工单_3月.csv", "台账.xlsx"]
    assert {"loaded_at", "kinds", "rows_loaded"} <= set(frame.columns)
    with pytest.raises(ValueError, match="unknown sources"):
        batches_used(con, Filters.for_month(2025, 3), ("everything",))
