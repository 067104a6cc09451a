"""Shared builders for the tests: spreadsheets written in code, real loads into tmp_path."""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import xlwt
from openpyxl.utils.cell import range_boundaries

from govdash.core.config import Config, load_config
from govdash.core.warehouse import connect_readonly
from govdash.etl.load import LoadReport, load_paths

pytest_plugins = ["tests.pg"]  # pg_server, pg_catalog: a throwaway PostgreSQL cluster

Rows = Sequence[Sequence[Any]]
TABLES = (
    "compounds",
    "tickets",
    "survey_responses",
    "survey_answers",
    "evaluation_scores",
    "evaluation_adjustments",
    "load_batches",
    "rejected_rows",
    "warehouse_info",
)

# --- spreadsheets ------------------------------------------------------------------------------


def write_xlsx(
    path: Path,
    sheets: dict[str, Rows],
    merges: dict[str, list[str]] | None = None,
    number_formats: dict[str, dict[str, str]] | None = None,
) -> Path:
    """An .xlsx with one sheet per entry; rows start at A1; `merges` are ranges like "A2:A3".

    A `None` cell stays empty. Merged ranges keep only their top-left value, as Excel does.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for name, rows in sheets.items():
        sheet = workbook.create_sheet(name)
        for r, row in enumerate(rows, start=1):
            for c, value in enumerate(row, start=1):
                if value is not None:
                    sheet.cell(row=r, column=c, value=value)
        for cell_range in (merges or {}).get(name, []):
            sheet.merge_cells(cell_range)
        for ref, number_format in (number_formats or {}).get(name, {}).items():
            sheet[ref].number_format = number_format
    workbook.save(path)
    return path


def write_xls(
    path: Path, sheets: dict[str, Rows], merges: dict[str, list[str]] | None = None
) -> Path:
    """A legacy .xls (BIFF8, via xlwt); `merges` as in write_xlsx (the top-left value is kept)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    workbook = xlwt.Workbook(encoding="utf-8")
    date_style = xlwt.easyxf(num_format_str="yyyy-mm-dd hh:mm")
    for name, rows in sheets.items():
        sheet = workbook.add_sheet(name)
        merged_cells: dict[tuple[int, int], tuple[int, int, int, int]] = {}
        for cell_range in (merges or {}).get(name, []):
            c0, r0, c1, r1 = range_boundaries(cell_range)
            merged_cells[(r0 - 1, c0 - 1)] = (r0 - 1, r1 - 1, c0 - 1, c1 - 1)
        covered = {
            (r, c)
            for r0, r1, c0, c1 in merged_cells.values()
            for r in range(r0, r1 + 1)
            for c in range(c0, c1 + 1)
        }
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                if (r, c) in merged_cells:
                    r0, r1, c0, c1 = merged_cells[(r, c)]
                    sheet.write_merge(r0, r1, c0, c1, value)
                elif value is not None and (r, c) not in covered:
                    if isinstance(value, datetime):
                        sheet.write(r, c, value, date_style)
                    else:
                        sheet.write(r, c, value)
    workbook.save(str(path))
    return path


def write_csv(path: Path, rows: Rows, encoding: str, delimiter: str = ",") -> Path:
    """A CSV in the given encoding ("utf-8-sig" writes the BOM Excel writes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        for row in rows:
            writer.writerow(["" if value is None else value for value in row])
    return path


# --- a minimal valid ticket sheet ----------------------------------------------------------------

TICKET_HEADER = ["工单编号", "问题类别", "紧急程度", "小区", "受理时间", "首次响应时间", "办结时间"]


def ticket_row(
    ticket_id: str,
    accepted: Any = "2024-03-05 09:00",
    responded: Any = "2024-03-05 09:10",
    closed: Any = "2024-03-05 15:00",
    category: Any = "水电维修",
    priority: Any = "一般",
    compound: Any = "锦绣花园",
) -> list[Any]:
    """One row under TICKET_HEADER; each test overrides only what it is about."""
    return [ticket_id, category, priority, compound, accepted, responded, closed]


def ticket_sheet(*rows: Sequence[Any], header: Sequence[Any] = TICKET_HEADER) -> list[list[Any]]:
    return [list(header), *[list(row) for row in rows]]


# --- reading the warehouse -----------------------------------------------------------------------


def rows(
    db_path: Path, sql: str, params: dict[str, Any] | Sequence[Any] | None = None
) -> list[tuple]:
    """Run a query on the current snapshot, read-only, and close the connection."""
    con = connect_readonly(db_path)
    try:
        return (
            con.execute(sql, params).fetchall() if params is not None else con.sql(sql).fetchall()
        )
    finally:
        con.close()


def snapshot(db_path: Path, tables: Iterable[str] = TABLES) -> dict[str, list[tuple]]:
    """Every row of every table, sorted, to compare whole warehouses."""
    con = connect_readonly(db_path)
    try:
        return {
            table: sorted(con.sql(f"SELECT * FROM {table}").fetchall(), key=repr)
            for table in tables
        }
    finally:
        con.close()


def varchar_columns(db_path: Path) -> list[tuple[str, str]]:
    """(table, column) for every text column (and text list) of every table in the warehouse."""
    return [
        (str(table), str(column))
        for table, column in rows(
            db_path,
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_catalog = 'lake' AND data_type IN ('VARCHAR', 'VARCHAR[]') ORDER BY ALL",
        )
    ]


def text_hits(
    db_path: Path, needles: Iterable[str] = (), patterns: Iterable[str] = ()
) -> list[tuple[str, str, str]]:
    """(table, column, value) of every text value holding a needle or matching a regex."""
    needles, patterns = list(needles), list(patterns)
    columns = varchar_columns(db_path)
    con = connect_readonly(db_path)
    try:
        hits: list[tuple[str, str, str]] = []
        conditions = []
        if needles:
            conditions.append("len(list_filter($needles, lambda n: contains(v, n))) > 0")
        if patterns:
            conditions.append("len(list_filter($patterns, lambda p: regexp_matches(v, p))) > 0")
        params = {k: v for k, v in (("needles", needles), ("patterns", patterns)) if v}
        for table, column in columns:
            found = con.execute(
                f"""SELECT v FROM (SELECT CAST("{column}" AS VARCHAR) AS v FROM "{table}")
                WHERE {" OR ".join(conditions) or "false"}""",
                params,
            ).fetchall()
            hits.extend((table, column, str(v)) for (v,) in found)
        return hits
    finally:
        con.close()


def rejections(db_path: Path) -> list[tuple[str, str, int, str, str | None, str]]:
    """(file, sheet, Excel row, column as written, raw value, reason), sorted."""
    return rows(
        db_path,
        "SELECT file_name, sheet, row_number, column_name, raw_value, reason "
        "FROM rejected_rows ORDER BY sheet, row_number, column_name",
    )


def only_file(report: LoadReport) -> Any:
    """The single FileReport of a one-file load, after checking it loaded."""
    assert len(report.files) == 1
    file = report.files[0]
    assert file.error is None, file.error
    return file


CHINESE_REASON = re.compile(r"[\u4e00-\u9fff]")


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def config(monkeypatch: pytest.MonkeyPatch) -> Config:
    """The shipped defaults; no user config or hash key leaks in from the environment."""
    monkeypatch.delenv("GOVDASH_CONFIG", raising=False)
    monkeypatch.delenv("GOVDASH_HASH_KEY", raising=False)
    monkeypatch.delenv("GOVDASH_DB", raising=False)
    monkeypatch.delenv("GOVDASH_CATALOG", raising=False)  # the embedded lake, unless a test
    monkeypatch.delenv("GOVDASH_DATA_PATH", raising=False)  # names the PostgreSQL one
    return load_config()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "warehouse.duckdb"


@pytest.fixture
def load(config: Config, db_path: Path) -> Callable[..., tuple[LoadReport, Path]]:
    """load(*files, **load_paths_options) → (report, db_path), always the same warehouse."""

    def run(*files: Path, **options: Any) -> tuple[LoadReport, Path]:
        chosen = options.pop("config", config)
        return load_paths(list(files), db_path, chosen, **options), db_path

    return run


@pytest.fixture
def fresh_streamlit_caches() -> Iterator[None]:
    """Empty Streamlit's caches around a test that runs pages (AppTest) or cached queries.

    Results are kept in memory only, as if no page had ever been computed: a test of the
    results kept on disk (tests/test_results_cache.py) switches them on itself."""
    import streamlit as st

    from govdash.web import cache

    st.cache_data.clear()
    st.cache_resource.clear()  # connections, and the results kept in memory (cache.py)
    kept, cache.RESULTS_ON_DISK = cache.RESULTS_ON_DISK, False
    yield
    cache.RESULTS_ON_DISK = kept
    st.cache_data.clear()
    st.cache_resource.clear()
