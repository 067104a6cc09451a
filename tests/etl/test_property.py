"""Junk under a valid header: the loader never raises, and every row is accounted for."""

from __future__ import annotations

import uuid
from datetime import datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from govdash.etl.load import load_paths
from tests.conftest import TICKET_HEADER, rows, ticket_row, write_csv, write_xlsx

HEADER = [*TICKET_HEADER, "是否有效回访", "联系电话", "问题描述"]
# Characters openpyxl can store (no control characters or lone surrogates).
PRINTABLE = st.characters(blacklist_categories=("Cc", "Cs", "Co", "Cn"))
FULL_WIDTH = st.text(st.characters(min_codepoint=0xFF01, max_codepoint=0xFF5E), max_size=20)
DATE_LIKE = st.sampled_from(
    [
        "2024-03-05 09:00",
        "2025-02-30 10:00",
        "2024年3月5日 14:30",
        "2024/13/40",
        "0",
        "-1",
        "99999999",
    ]
)
CELL = st.one_of(
    st.none(),
    st.text(PRINTABLE, max_size=30),
    st.integers(min_value=-(10**15), max_value=10**15),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.datetimes(min_value=datetime(1900, 3, 1), max_value=datetime(2200, 1, 1)),
    FULL_WIDTH,
    st.text(PRINTABLE, min_size=1, max_size=8).map(lambda s: (s * 1000)[:2000]),  # very long
    st.text(PRINTABLE, max_size=20).map(lambda s: "=" + s),
    st.sampled_from(["合计", "制表人：张敏", "工单编号", " ", "是", "√", "外星人", "特急"]),
    DATE_LIKE,
)
JUNK_ROW = st.lists(CELL, min_size=len(HEADER), max_size=len(HEADER))
PROPERTY = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _check_accounting(report, db, written):
    assert report.ok, report.files[0].error
    file = report.files[0]
    assert file.rows_loaded + file.rows_rejected + file.rows_skipped == written
    assert file.rows_read == written
    rejected_rows = {r for (r,) in rows(db, "SELECT DISTINCT row_number FROM rejected_rows")}
    assert len(rejected_rows) == file.rows_rejected
    assert rejected_rows <= set(range(2, written + 2))
    loaded_rows = {r for (r,) in rows(db, "SELECT source_row FROM tickets")}
    assert loaded_rows <= set(range(2, written + 2)) - rejected_rows


@PROPERTY
@given(junk=st.lists(JUNK_ROW, min_size=1, max_size=8))
def test_junk_cells_in_a_workbook_never_break_the_load(tmp_path, config, junk):
    folder = tmp_path / uuid.uuid4().hex
    # The last row is valid, so the sheet's used range ends where the written rows end.
    last = [*ticket_row("GD-LAST"), "是", "13812345678", "楼道灯不亮"]
    data = [*junk, last]
    path = write_xlsx(folder / "junk.xlsx", {"Sheet1": [HEADER, *data]})

    report = load_paths([path], folder / "warehouse.duckdb", config)

    _check_accounting(report, folder / "warehouse.duckdb", len(data))


CSV_TEXT = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Co", "Cn")), max_size=40)
CSV_CELL = st.one_of(st.none(), CSV_TEXT, DATE_LIKE, FULL_WIDTH, st.just('"'), st.just(",,"))


@settings(PROPERTY, max_examples=12)
@given(
    junk=st.lists(
        st.lists(CSV_CELL, min_size=len(HEADER), max_size=len(HEADER)), min_size=1, max_size=8
    ),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "gb18030"]),
)
def test_junk_cells_in_a_csv_never_break_the_load(tmp_path, config, junk, encoding):
    folder = tmp_path / uuid.uuid4().hex
    last = [*ticket_row("GD-LAST"), "是", "13812345678", "楼道灯不亮"]
    data = [*junk, last]
    path = write_csv(folder / "junk.csv", [HEADER, *data], encoding)

    report = load_paths([path], folder / "warehouse.duckdb", config)

    _check_accounting(report, folder / "warehouse.duckdb", len(data))
