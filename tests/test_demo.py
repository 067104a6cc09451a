"""The demo data set: deterministic, the right shape, and as messy as promised."""

from __future__ import annotations

import csv
import re
import unicodedata
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from python_calamine import CalamineWorkbook

from govdash.etl import demo
from govdash.etl.demo import PLANTED_DEFECTS, write_demo

Sheets = dict[str, list[tuple[Any, ...]]]

SMALL_TICKETS = 600
# One month: no survey wave or evaluation yet, so it writes in a second or two while still
# drawing tickets at the default rate.
SHORT_AS_OF = datetime(2023, 1, 31, 18, 0)
FULL_NAMES = [
    "小区台账.xlsx",
    "工单_2023.xlsx",
    "工单_2024.csv",
    "工单_2025.xlsx",
    "满意度调查_2023-2024.xlsx",
    "满意度调查_2025.csv",
    "年度考评评分_2023.xlsx",
    "年度考评评分_2024.xlsx",
    "年度考评评分_2025.xlsx",
]
TICKET_FILES = ("工单_2023.xlsx", "工单_2024.csv", "工单_2025.xlsx")
HEADER_ROW = {
    "工单_2023.xlsx": 3,
    "满意度调查_2023-2024.xlsx": 2,
    "年度考评评分_2023.xlsx": 2,
    "年度考评评分_2024.xlsx": 2,
    "年度考评评分_2025.xlsx": 2,
}


def read_cells(path: Path) -> Sheets:
    """Every sheet's cell values, blank = "" (CSV: one sheet named ""), trailing blanks cut.

    Workbooks are read with calamine rather than openpyxl: same values, many times faster.
    """
    if path.suffix == ".csv":
        encoding = "gbk" if path.name == "工单_2024.csv" else "utf-8-sig"
        with path.open(encoding=encoding, newline="") as handle:
            return {"": [tuple(row) for row in csv.reader(handle)]}
    workbook = CalamineWorkbook.from_path(str(path))
    sheets: Sheets = {}
    for name in workbook.sheet_names:
        rows = workbook.get_sheet_by_name(name).to_python(skip_empty_area=False)
        trimmed = []
        for row in rows:
            values = list(row)
            while values and values[-1] == "":
                values.pop()
            trimmed.append(tuple(values))
        sheets[name] = trimmed
    return sheets


def read_all(paths: list[Path]) -> dict[str, Sheets]:
    return {path.name: read_cells(path) for path in paths}


def clean(header: Any) -> str:
    return re.sub(r"\s", "", str(header))


def records(rows: list[tuple[Any, ...]], header_row: int) -> list[dict[str, Any]]:
    """Rows below a one-row header as dicts keyed by the cleaned header; blank rows skipped."""
    header = [clean(h) for h in rows[header_row - 1]]
    found = []
    for row in rows[header_row:]:
        if any(v != "" for v in row):
            padded = list(row) + [""] * (len(header) - len(row))
            found.append(dict(zip(header, padded, strict=False)))
    return found


def as_int(value: Any) -> int:
    return int(float(unicodedata.normalize("NFKC", str(value)).strip()))


def register_records(cells: dict[str, Sheets]) -> list[dict[str, Any]]:
    sheet = cells["小区台账.xlsx"]["小区台账"]
    header_row = next(i for i, row in enumerate(sheet, start=1) if "小区名称" in row)
    return [r for r in records(sheet, header_row) if isinstance(r["序号"], float)]


def ticket_rows(sheets: Sheets, name: str) -> list[tuple[Any, ...]]:
    """Data rows of one ticket file, without titles, headers, blank and footer rows."""
    first_data_row = HEADER_ROW.get(name, 1) + 1
    rows = []
    for title, sheet in sheets.items():
        if title == "说明":
            continue
        rows += [
            r for r in sheet[first_data_row - 1 :] if any(v != "" for v in r) and r[0] != "合计"
        ]
    return rows


def header_of(rows: list[tuple[Any, ...]], header_row: int) -> list[str]:
    """Cleaned header; under a two-row header a child names its column, else the parent."""
    bottom = [clean(h) for h in rows[header_row - 1]]
    if header_row < 2 or "受理时间" not in bottom:
        return bottom
    top = [clean(h) for h in rows[header_row - 2]] + [""] * len(bottom)
    return [b or t for b, t in zip(bottom, top, strict=False)]


def parse_time(value: Any) -> datetime:
    """The time forms the demo writes: Excel datetimes, serial numbers, four text forms."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, float):
        return datetime(1899, 12, 30) + timedelta(days=value)
    year, month, day, hour, minute = (int(n) for n in re.findall(r"\d+", str(value))[:5])
    return datetime(year, month, day, hour, minute)


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_demo(tmp_path_factory.mktemp("full"), seed=2026, tickets=SMALL_TICKETS)


@pytest.fixture(scope="module")
def full_cells(full: list[Path]) -> dict[str, Sheets]:
    return read_all(full)


@pytest.fixture(scope="module")
def short(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_demo(tmp_path_factory.mktemp("short"), seed=2026, as_of=SHORT_AS_OF)


def test_files_written_in_load_order(full: list[Path]) -> None:
    assert [p.name for p in full] == FULL_NAMES
    assert all(p.is_file() for p in full)


def test_same_seed_same_cells(
    full: list[Path], full_cells: dict[str, Sheets], tmp_path: Path
) -> None:
    again = write_demo(tmp_path, seed=2026, tickets=SMALL_TICKETS)
    assert [p.name for p in again] == [p.name for p in full]
    assert read_all(again) == full_cells


def test_different_seed_different_cells(short: list[Path], tmp_path: Path) -> None:
    other = read_all(write_demo(tmp_path, seed=2027, as_of=SHORT_AS_OF))
    first = read_all(short)
    assert first.keys() == other.keys()
    for name in first:
        assert first[name] != other[name], name


def test_rewrite_replaces_demo_files_only(tmp_path: Path) -> None:
    write_demo(tmp_path, seed=1, tickets=200, as_of=SHORT_AS_OF)
    keep = tmp_path / "工单_北区.csv"  # not a demo file name: must survive
    keep.write_text("x", encoding="utf-8")
    paths = write_demo(tmp_path, seed=2, tickets=300, as_of=SHORT_AS_OF)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [*(p.name for p in paths), keep.name]
    )
    assert len(ticket_rows(read_cells(paths[1]), paths[1].name)) == 300


def test_register_shape(full_cells: dict[str, Sheets]) -> None:
    rows = register_records(full_cells)
    assert 100 <= len(rows) <= 200
    assert len({r["社区"] for r in rows}) == 7
    assert all(30 <= as_int(r["户数"]) <= 2000 for r in rows)
    assert len({r["小区名称"].strip() for r in rows}) == len(rows)
    companies = {r["物业企业"] for r in rows} - {"", "无"}
    assert 8 <= len(companies) <= 14
    assert all(name.endswith("(模拟)") for name in companies)
    spellings = {str(r["是否签订党建联建协议"]) for r in rows}
    assert {"是", "否"} < spellings  # and other spellings besides


def test_about_one_ticket_per_household_per_year(short: list[Path]) -> None:
    cells = read_all(short)
    households = sum(as_int(r["户数"]) for r in register_records(cells))
    tickets = ticket_rows(cells["工单_2023.xlsx"], "工单_2023.xlsx")
    years = (SHORT_AS_OF - datetime(2023, 1, 1)).total_seconds() / (365.25 * 86400)
    assert 0.5 <= len(tickets) / households / years <= 2


def test_exact_ticket_count_plus_two_cross_file_duplicates(full_cells: dict[str, Sheets]) -> None:
    rows = [row for name in TICKET_FILES for row in ticket_rows(full_cells[name], name)]
    ids = [unicodedata.normalize("NFKC", str(r[0])) for r in rows]
    missing = ids.count("")
    distinct = set(ids) - {""}
    assert missing == 3  # one planted per ticket file
    assert len(distinct) + missing == SMALL_TICKETS
    assert len(rows) == SMALL_TICKETS + 2
    assert all(re.fullmatch(r"GD\d{13}", i) for i in distinct)


def test_survey_waves_every_year(full_cells: dict[str, Sheets]) -> None:
    waves = set()
    for title, sheet in full_cells["满意度调查_2023-2024.xlsx"].items():
        assert {r["调查批次"] for r in records(sheet, 2)} == {title}
        waves.add(title)
    waves |= {r["调查批次"] for r in records(full_cells["满意度调查_2025.csv"][""], 1)}
    assert waves == {f"{y}年{h}" for y in (2023, 2024, 2025) for h in ("上半年", "下半年")}


def test_survey_samples_and_answers(full_cells: dict[str, Sheets]) -> None:
    rows = records(full_cells["满意度调查_2025.csv"][""], 1)
    per_compound: dict[str, int] = defaultdict(int)
    for r in rows:
        per_compound[r["小区"]] += 1
    short_samples = sum(n < 30 for n in per_compound.values())
    assert 0 < short_samples < len(per_compound) / 2  # some 样本不足, most not
    answers = {r["总体满意度"] for r in rows}
    words = answers - {"", "1", "2", "3", "4", "5", "6"}
    assert words and words <= {"非常满意", "满意", "基本满意", "不满意", "非常不满意"}
    assert "" in {r["停车管理"] for r in rows}


def test_five_to_nine_evaluators_per_unit(full_cells: dict[str, Sheets]) -> None:
    for name in FULL_NAMES[-3:]:
        rows = records(full_cells[name]["考评评分"], 2)
        evaluators: dict[str, set[str]] = defaultdict(set)
        for r in rows:
            evaluators[r["被考评单位"]].add(r["评委"])
        assert len(evaluators) > 100, name
        assert all(5 <= len(e) <= 9 for e in evaluators.values()), name
        assert {r["单位类型"] for r in rows} == {"小区", "社区", "物业企业"}


def test_gbk_csv_is_not_utf8(full: list[Path]) -> None:
    raw = (full[0].parent / "工单_2024.csv").read_bytes()
    assert raw.decode("gbk").startswith("工单号,")
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")


def test_2023_workbook_has_merged_two_row_header(tmp_path: Path) -> None:
    paths = write_demo(tmp_path, seed=3, tickets=60, as_of=SHORT_AS_OF)
    workbook = openpyxl.load_workbook(paths[1])  # not read-only: merged ranges are needed
    assert workbook.sheetnames[0] == "说明"
    sheet = workbook["1月"]
    ranges = [(r.min_row, r.max_row, r.min_col, r.max_col) for r in sheet.merged_cells.ranges]
    assert any(r[:2] == (2, 3) for r in ranges)  # a header merged down over both rows
    assert any(r[:2] == (2, 2) and r[3] > r[2] for r in ranges)  # a parent over children
    assert sheet.cell(2, 14).value == "时间节点"
    assert sheet.cell(3, 14).value == "受理时间"


def test_planted_defects_sit_where_documented(full_cells: dict[str, Sheets]) -> None:
    assert len([d for d in PLANTED_DEFECTS if d.file.startswith("工单_")]) == 15
    for defect in PLANTED_DEFECTS:
        rows = full_cells[defect.file][defect.sheet]
        header = header_of(rows, HEADER_ROW.get(defect.file, 1))
        aliases = demo.TICKET_ALIASES if defect.file == "工单_2024.csv" else {}
        row = list(rows[defect.row - 1]) + [""] * len(header)
        value = row[header.index(aliases.get(defect.column, defect.column))]
        if defect.kind == "closed_before_accepted":
            accepted = row[header.index(aliases.get("受理时间", "受理时间"))]
            assert parse_time(value) < parse_time(accepted), defect
        elif isinstance(value, float):
            assert value == float(defect.value), defect
        else:
            assert value == defect.value, defect


def test_streamed_csv_for_big_ticket_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo, "BIG_TICKETS", 1000)  # take the streaming path cheaply
    paths = write_demo(tmp_path, seed=5, tickets=2500, as_of=datetime(2023, 3, 31, 18))
    assert [p.name for p in paths] == ["小区台账.xlsx", "工单_2023.csv"]
    with paths[1].open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert tuple(rows[0]) == demo.TICKET_COLUMNS
    assert len(rows) == 1 + 2500
    assert len({r[0] for r in rows[1:]}) == 2500
    accepted = [r[demo.TICKET_COLUMNS.index("受理时间")] for r in rows[1:]]
    assert min(accepted) >= "2023-01-01" and max(accepted) < "2023-03-31 18:00"
