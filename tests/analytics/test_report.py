"""The evaluation report (govdash.analytics.reports.evaluation_report) and the `govdash rank` / `govdash report` commands.

A warehouse is built by the real loader from sheets written here (4 compounds scored by 5
evaluators, tickets, surveys and a register, plus last year's scores); the engine ranks it and
the files are read back: openpyxl for the workbook, poppler's pdftotext and pdfinfo for the PDF.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import openpyxl
import pandas as pd
import pytest

from govdash.analytics.metrics import evaluation as ev
from govdash.analytics.queries.evaluation import evaluation_result
from govdash.analytics.queries.loads import load_history
from govdash.analytics.reports.evaluation_report import (
    PSEUDONYM,
    RANK_CSV_COLUMNS,
    ranking_csv,
    report_pdf,
    report_title,
    report_workbook,
)
from govdash.analytics.reports.export import PersonalDataError, Provenance
from tests.analytics.test_evaluation_data import EVALUATION_HEADER, ticket
from tests.analytics.warehouse_data import (
    REGISTER_HEADER,
    SURVEY_HEADER,
    TICKET_HEADER,
    build,
    open_db,
    shipped_config,
)
from tests.conftest import write_xlsx

CONFIG = shipped_config()
EVALUATOR_INDICATORS = [i for i in CONFIG.indicators if i.source == "evaluator"]
# (street, community, compound, households, company); the compounds are the units ranked.
REGISTER = [
    ["甲街道", "东社区", "东一小区", 100, "安居物业"],
    ["甲街道", "东社区", "东二小区", 300, "乐家物业"],
    ["甲街道", "西社区", "西一小区", 200, "安居物业"],
    ["甲街道", "西社区", "西二小区", 400, "乐家物业"],
]
UNITS = [row[2] for row in REGISTER]
# Share of each indicator's points a unit earns from evaluators, and each evaluator's lean:
# 王一 is generous and 刘五 harsh, so they are the ones trimmed.
UNIT_SHARES = {"东一小区": 0.9, "东二小区": 0.6, "西一小区": 0.8, "西二小区": 0.95}
EVALUATOR_LEAN = {"王一": 0.05, "李二": 0.0, "张三": -0.02, "赵四": 0.01, "刘五": -0.25}
# Survey: (respondents, satisfied) per compound. 西一小区 has too few (样本不足).
SURVEYS = {"东一小区": (40, 34), "东二小区": (40, 39), "西一小区": (20, 18), "西二小区": (35, 24)}
# Tickets: (resolved of 10, 满意 of 10; the rest 不满意).
TICKETS = {"东一小区": (9, 8), "东二小区": (10, 10), "西一小区": (8, 7), "西二小区": (7, 6)}
ADJUSTMENTS = {"西二小区": (2, None)}  # 加分 2
LAST_YEAR_SHARES = {"东一小区": 0.7, "东二小区": 0.9, "西二小区": 0.8}  # 西一小区 is new


def evaluation_rows(year: int, shares: dict[str, float]) -> list[list[Any]]:
    rows = []
    for unit, share in shares.items():
        bonus, penalty = ADJUSTMENTS.get(unit, (None, None)) if year == 2025 else (None, None)
        for evaluator, lean in EVALUATOR_LEAN.items():
            scores = [
                round(min(max(share + lean, 0.0), 1.0) * i.points, 2) for i in EVALUATOR_INDICATORS
            ]
            rows.append([year, unit, "小区", evaluator, *scores, bonus, penalty, None])
    return rows


def ticket_rows() -> list[list[Any]]:
    rows = []
    for index, (_, community, compound, _, _) in enumerate(REGISTER):
        resolved, satisfied = TICKETS[compound]
        for i in range(10):
            rows.append(
                ticket(
                    index * 100 + i,
                    community,
                    compound,
                    "是" if i < resolved else "否",
                    "满意" if i < satisfied else "不满意",
                )
            )
    return rows


def survey_rows() -> list[list[Any]]:
    rows: list[list[Any]] = []
    for _, community, compound, _, _ in REGISTER:
        respondents, satisfied = SURVEYS[compound]
        for i in range(respondents):
            overall = 5 if i < satisfied else 2
            number = f"Q{len(rows) + 1:04d}"
            rows.append([number, "2025年上半年", community, compound, "2025-05-20", 4, overall, ""])
    return rows


def build_evaluation_warehouse(folder: Path) -> Path:
    """The warehouse every report and page test uses (real loader, files written here)."""
    header = [*EVALUATION_HEADER]
    files = [
        write_xlsx(folder / "台账.xlsx", {"台账": [REGISTER_HEADER, *REGISTER]}),
        write_xlsx(folder / "工单.xlsx", {"工单": [TICKET_HEADER, *ticket_rows()]}),
        write_xlsx(folder / "问卷.xlsx", {"问卷": [SURVEY_HEADER, *survey_rows()]}),
        write_xlsx(
            folder / "考评2024.xlsx", {"考评": [header, *evaluation_rows(2024, LAST_YEAR_SHARES)]}
        ),
        write_xlsx(
            folder / "考评2025.xlsx", {"考评": [header, *evaluation_rows(2025, UNIT_SHARES)]}
        ),
    ]
    return build(folder, files)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_evaluation_warehouse(tmp_path_factory.mktemp("report"))


@pytest.fixture(scope="module")
def warehouse(db: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    con = open_db(db)
    yield con
    con.close()


@pytest.fixture(scope="module")
def results(
    warehouse: duckdb.DuckDBPyConnection,
) -> tuple[ev.EvaluationResult, ev.EvaluationResult, pd.DataFrame]:
    current = evaluation_result(warehouse, CONFIG, 2025, "compound")
    previous = evaluation_result(warehouse, CONFIG, 2024, "compound")
    return current, previous, load_history(warehouse)


PROVENANCE = Provenance(
    filters_text="2025年度 · 小区",
    sources=["批次 1：台账.xlsx"],
    generated_at=datetime(2026, 1, 15, 9, 30),
    config_fingerprint=CONFIG.fingerprint,
)


@pytest.fixture(scope="module")
def workbook(
    results: tuple[ev.EvaluationResult, ev.EvaluationResult, pd.DataFrame],
) -> openpyxl.Workbook:
    current, previous, history = results
    data = report_workbook(current, CONFIG, PROVENANCE, "zh", previous.ranking(), batches=history)
    return openpyxl.load_workbook(io.BytesIO(data))


def exact(value: float) -> float:
    return round(float(value), ev.TOTAL_DECIMALS)


def rows_of(sheet: Any, header_row: int = 1) -> list[dict[str, Any]]:
    """The table that starts at `header_row`, down to its first blank row."""
    header = [cell.value for cell in sheet[header_row]]
    rows = []
    for values in sheet.iter_rows(min_row=header_row + 1, values_only=True):
        if all(value is None for value in values):
            break
        rows.append(dict(zip(header, values, strict=True)))
    return rows


# --- the data the tests stand on -------------------------------------------------------------------


def test_the_warehouse_gives_the_ranking_the_report_needs(
    results: tuple[ev.EvaluationResult, ev.EvaluationResult, pd.DataFrame],
) -> None:
    current, previous, _ = results
    table = current.table.set_index("unit")
    assert sorted(table.index) == sorted(UNITS)
    assert len(current.evaluator_scores) == 4 * 5 * len(EVALUATOR_INDICATORS)
    assert current.evaluator_scores["is_trimmed"].sum() == 4 * 2 * len(EVALUATOR_INDICATORS)
    assert table.loc["西一小区", "ineligible_reason"].startswith("样本不足")
    assert table.loc["西二小区", "bonus"] == 2
    assert (current.table["award"] != "").any()
    # Last year 西一小区 was in the register but not scored: ranked, not eligible.
    assert sorted(previous.table["unit"]) == sorted(UNITS)
    assert (
        "党组织与党建联建" in previous.table.set_index("unit").loc["西一小区", "missing_indicators"]
    )


# --- the workbook --------------------------------------------------------------------------------


def test_the_workbook_has_every_sheet(workbook: openpyxl.Workbook) -> None:
    assert workbook.sheetnames == [
        "排名",
        "得分构成",
        "评委评分",
        "方法与稳健性",
        "配置",
        "数据来源",
        "说明",
    ]


def test_the_ranking_sheet_equals_the_engine(
    workbook: openpyxl.Workbook,
    results: tuple[ev.EvaluationResult, ev.EvaluationResult, pd.DataFrame],
) -> None:
    current, previous, _ = results
    rows = rows_of(workbook["排名"])
    table = current.table
    assert [row["单位"] for row in rows] == table["unit"].tolist()
    # Written at the precision the engine ranks at (TOTAL_DECIMALS), exactly.
    assert [row["总分"] for row in rows] == [exact(v) for v in table["total"]]
    assert [row["名次"] for row in rows] == table["rank"].tolist()
    assert [row["等次"] for row in rows] == table["grade"].tolist()
    assert [row["奖项"] or "" for row in rows] == table["award"].tolist()
    assert [row["可参评"] == "是" for row in rows] == table["is_eligible"].tolist()
    assert [row["不可参评原因"] or "" for row in rows] == table["ineligible_reason"].tolist()
    for block in ev.block_names(CONFIG):
        assert [row[f"{block}小计"] for row in rows] == [exact(v) for v in table[f"{block}小计"]]
    last_year = previous.table.set_index("unit")
    for row in rows:
        unit = row["单位"]
        if unit in last_year.index:
            assert row["上年名次"] == last_year.loc[unit, "rank"]
            assert row["名次变化（正数为上升）"] == last_year.loc[unit, "rank"] - row["名次"]
            assert row["总分变化"] == pytest.approx(row["总分"] - last_year.loc[unit, "total"])
        else:
            assert row["上年名次"] is None and row["名次变化（正数为上升）"] is None


def test_the_breakdown_sheet_has_every_unit_and_indicator(
    workbook: openpyxl.Workbook,
    results: tuple[ev.EvaluationResult, ev.EvaluationResult, pd.DataFrame],
) -> None:
    current = results[0]
    rows = rows_of(workbook["得分构成"])
    assert len(rows) == len(UNITS) * len(CONFIG.indicators)
    points = current.breakdown.set_index(["unit", "indicator"])["points"]
    for row in rows:
        assert row["得分"] == pytest.approx(points.loc[(row["单位"], row["指标"])], nan_ok=True)
        assert row["计分依据"]
    sums: dict[str, float] = {}
    for row in rows:
        sums[row["单位"]] = sums.get(row["单位"], 0.0) + (row["得分"] or 0.0)
    table = current.table.set_index("unit")
    for unit, total in sums.items():
        adjustment = table.loc[unit, "bonus"] - table.loc[unit, "penalty"]
        assert total + adjustment == pytest.approx(table.loc[unit, "total"])


def test_trimmed_scores_are_marked(
    workbook: openpyxl.Workbook,
    results: tuple[ev.EvaluationResult, ev.EvaluationResult, pd.DataFrame],
) -> None:
    current = results[0]
    sheet = workbook["评委评分"]
    assert "去掉" in sheet["A1"].value  # the line that says how to read the sheet
    rows = rows_of(sheet, header_row=2)
    assert len(rows) == len(current.evaluator_scores)
    shown_trimmed = {
        (row["单位"], row["指标"], row["评委（化名）"], row["评分"])
        for row in rows
        if row["是否去掉"] == "是"
    }
    scores = current.evaluator_scores
    expected = {
        (unit, indicator, evaluator, score)
        for unit, indicator, evaluator, score in scores.loc[
            scores["is_trimmed"], ["unit", "indicator", "evaluator", "score"]
        ].itertuples(index=False, name=None)
    }
    assert shown_trimmed == expected
    # The trimmed are the generous and the harsh evaluator of each unit × indicator.
    assert len(expected) == 4 * 2 * len(EVALUATOR_INDICATORS)
    for row_number, row in enumerate(rows, start=3):
        cell = sheet.cell(row=row_number, column=7)  # 评分
        grey = cell.fill.fgColor.rgb.endswith("D9D9D9")
        assert grey == (row["是否去掉"] == "是")
        assert bool(cell.font.strike) == grey
    assert all(PSEUDONYM.fullmatch(row["评委（化名）"]) for row in rows)


def test_the_config_sheet_lists_everything_behind_the_numbers(
    workbook: openpyxl.Workbook,
) -> None:
    sheet = workbook["配置"]
    assert sheet["A1"].value == "指标体系"
    indicators = rows_of(sheet, header_row=2)
    assert [(row["指标"], row["分值"]) for row in indicators] == [
        (i.name, i.points) for i in CONFIG.indicators
    ]
    assert [row["下限"] for row in indicators] == [i.floor for i in CONFIG.indicators]
    assert [row["目标"] for row in indicators] == [i.target for i in CONFIG.indicators]
    text = "\n".join(str(v) for row in sheet.iter_rows(values_only=True) for v in row if v)
    for needle in (
        CONFIG.fingerprint,
        CONFIG.source_path,
        "、".join(CONFIG.tie_break),
        f"评委 ≥ {CONFIG.trim_from_evaluators} 人时去掉一个最高分和一个最低分",
        *CONFIG.grades,
        *CONFIG.awards,
    ):
        assert needle in text, needle
    settings = {row[0]: row[1] for row in sheet.iter_rows(values_only=True) if row[0]}
    assert settings["问卷最少有效样本（人）"] == str(CONFIG.min_sample)
    assert settings["满意率中“基本满意”的折算系数 k"] == f"{CONFIG.basic_satisfied_weight:g}"


def test_methods_sources_and_about(
    workbook: openpyxl.Workbook,
    results: tuple[ev.EvaluationResult, ev.EvaluationResult, pd.DataFrame],
) -> None:
    current, _, history = results
    methods = workbook["方法与稳健性"]
    values = [v for row in methods.iter_rows(values_only=True) for v in row if v is not None]
    assert "Spearman ρ" in values and "Kendall τ-b" in values and "跨越奖项分界" in values
    ranks = rows_of(methods, header_row=2)
    assert [row["专家权重名次"] for row in ranks] == current.table["rank"].tolist()
    sources = rows_of(workbook["数据来源"])
    assert [row["文件"] for row in sources] == history.sort_values("batch_id")["file_name"].tolist()
    about = [row[0] for row in workbook["说明"].iter_rows(values_only=True) if row[0]]
    assert about[0] == report_title(current) == "2025年度 小区 评优评先考评报告"
    assert f"配置指纹：{CONFIG.fingerprint}" in about
    assert "筛选条件：2025年度 · 小区" in about


def assert_no_formula(book: openpyxl.Workbook) -> None:
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate)
                if isinstance(cell.value, str):
                    assert not cell.value.startswith(("=", "+", "-", "@")), cell.value


def test_no_cell_is_a_formula(workbook: openpyxl.Workbook) -> None:
    assert_no_formula(workbook)


def handmade_result(units: list[str], evaluator: str = "评委-0A1B2C") -> ev.EvaluationResult:
    scores = pd.DataFrame(
        [(unit, evaluator, i.name, i.points * 0.8) for unit in units for i in EVALUATOR_INDICATORS],
        columns=ev.SCORE_COLUMNS,
    )
    inputs = ev.EvaluationInput(
        year=2025,
        level="compound",
        scores=scores,
        adjustments=ev.empty_adjustments(),
        metrics=pd.DataFrame({"unit": units}),
        units=tuple(units),
    )
    return ev.evaluate(inputs, CONFIG)


def test_text_a_spreadsheet_would_run_is_neutralised() -> None:
    result = handmade_result(['=HYPERLINK("http://x","点我")', "+东三小区", "@西三小区"])
    data = report_workbook(result, CONFIG, PROVENANCE)
    book = openpyxl.load_workbook(io.BytesIO(data))
    units = [row["单位"] for row in rows_of(book["排名"])]
    assert sorted(units) == sorted(['\'=HYPERLINK("http://x","点我")', "'+东三小区", "'@西三小区"])
    assert_no_formula(book)


def test_an_evaluator_without_a_pseudonym_blocks_the_report() -> None:
    result = handmade_result(["东三小区"], evaluator="王一")
    with pytest.raises(PersonalDataError):
        report_workbook(result, CONFIG, PROVENANCE)


def test_a_report_refuses_a_config_other_than_the_results() -> None:
    other = shipped_config()
    changed = type(other)(**{**other.__dict__, "raw": {**other.raw, "extra": 1}})
    result = handmade_result(["东三小区"])
    assert changed.fingerprint != CONFIG.fingerprint
    with pytest.raises(ValueError, match="不一致"):
        report_workbook(result, changed, PROVENANCE)


# --- the PDF -------------------------------------------------------------------------------------


def pdf_text(path: Path) -> str:
    tool = shutil.which("pdftotext")
    assert tool, "pdftotext is missing: run scripts/install-browser.sh (poppler-utils)"
    return subprocess.run(
        [tool, "-layout", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout


def pdf_pages(path: Path) -> int:
    tool = shutil.which("pdfinfo")
    assert tool, "pdfinfo is missing: run scripts/install-browser.sh (poppler-utils)"
    info = subprocess.run([tool, str(path)], capture_output=True, text=True, check=True).stdout
    found = re.search(r"^Pages:\s+(\d+)", info, re.M)
    assert found, info
    return int(found.group(1))


def test_the_pdf_is_an_a4_report_naming_every_unit(
    results: tuple[ev.EvaluationResult, ev.EvaluationResult, pd.DataFrame], tmp_path: Path
) -> None:
    current, previous, history = results
    data = report_pdf(current, CONFIG, PROVENANCE, "zh", previous.ranking(), batches=history)
    assert data.startswith(b"%PDF")
    path = tmp_path / "report.pdf"
    path.write_bytes(data)
    assert pdf_pages(path) >= 1
    text = pdf_text(path)
    for unit in UNITS:
        assert unit in text, unit
    for needle in (
        "2025年度 小区 评优评先考评报告",
        "一、考评排名",
        "二、图表",
        "三、方法对比与排名稳健性",
        "四、计分规则与指标体系",
        "五、数据来源与说明",
        CONFIG.fingerprint,
        "考评2025.xlsx",  # a load batch
        "第 1 页，共",
    ):
        assert needle in text, needle
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True).stdout
    assert "A4" in info


# --- the commands --------------------------------------------------------------------------------


COMMAND = [sys.executable, "-c", "from govdash.cli import main; raise SystemExit(main())"]


def govdash(*args: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("GOVDASH_")}
    return subprocess.run(
        [*COMMAND, *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=environment,
        timeout=300,
    )


RANK_HEADERS_ZH = ["名次", "单位", "总分", "等次", "奖项", "可参评", "不可参评原因"]


def test_rank_prints_the_engines_table_as_csv(
    db: Path, results: tuple[ev.EvaluationResult, ev.EvaluationResult, pd.DataFrame]
) -> None:
    done = govdash("rank", "--year", "2025", "--level", "compound", "--db", str(db))
    assert done.returncode == 0, done.stderr
    assert not done.stdout.startswith("\ufeff"), "a pipe gets plain UTF-8, no BOM"
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert list(rows[0]) == RANK_HEADERS_ZH
    assert len(RANK_CSV_COLUMNS) == len(RANK_HEADERS_ZH)
    table = results[0].table
    assert [row["单位"] for row in rows] == table["unit"].tolist()
    assert [float(row["总分"]) for row in rows] == table["total"].tolist(), "full precision"
    assert [int(row["名次"]) for row in rows] == table["rank"].tolist()
    assert [row["等次"] for row in rows] == table["grade"].tolist()
    assert [row["奖项"] for row in rows] == table["award"].tolist()
    assert [row["可参评"] for row in rows] == [
        "是" if eligible else "否" for eligible in table["is_eligible"]
    ]
    assert [row["不可参评原因"] for row in rows] == table["ineligible_reason"].tolist()
    assert done.stdout == ranking_csv(results[0])


def test_rank_to_a_file_opens_in_excel_with_its_chinese(
    db: Path, results: tuple[ev.EvaluationResult, ev.EvaluationResult, pd.DataFrame], tmp_path: Path
) -> None:
    out = tmp_path / "排名" / "2025年小区考评排名.csv"
    done = govdash("rank", "--year", "2025", "--db", str(db), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(out)
    data = out.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf"), "Excel needs the BOM to read UTF-8"
    assert data[3:].decode("utf-8") == ranking_csv(results[0])
    # Redirected to a file, stdout is a file too: the same bytes.
    redirected = tmp_path / "redirected.csv"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("GOVDASH_")}
    with redirected.open("wb") as handle:
        subprocess.run(
            [*COMMAND, "rank", "--year", "2025", "--db", str(db)],
            stdout=handle,
            env=environment,
            check=True,
            timeout=300,
        )
    assert redirected.read_bytes() == data


def test_rank_in_english(
    db: Path, results: tuple[ev.EvaluationResult, ev.EvaluationResult, pd.DataFrame]
) -> None:
    done = govdash("rank", "--year", "2025", "--db", str(db), "--lang", "en")
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert list(rows[0]) == [
        "Rank",
        "Unit",
        "Total",
        "Grade",
        "Award",
        "Eligible",
        "Why not eligible",
    ]
    assert [row["Eligible"] for row in rows] == [
        "yes" if eligible else "no" for eligible in results[0].table["is_eligible"]
    ]


def test_rank_of_a_year_without_scores_fails_with_a_message(db: Path) -> None:
    done = govdash("rank", "--year", "2019", "--level", "compound", "--db", str(db))
    assert done.returncode == 1
    assert done.stdout == ""
    assert "2019 年没有小区层级的考评评分数据" in done.stderr
    assert "2025、2024" in done.stderr


def test_report_writes_xlsx_and_pdf_by_suffix(db: Path, tmp_path: Path) -> None:
    xlsx = tmp_path / "out" / "考评.xlsx"
    done = govdash(
        "report", "--year", "2025", "--level", "compound", "--db", str(db), "--out", str(xlsx)
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(xlsx)
    book = openpyxl.load_workbook(xlsx)
    assert [row["单位"] for row in rows_of(book["排名"])][:1] != []
    pdf = tmp_path / "考评.pdf"
    done = govdash(
        "report", "--year", "2025", "--level", "compound", "--db", str(db), "--out", str(pdf)
    )
    assert done.returncode == 0, done.stderr
    assert pdf.read_bytes().startswith(b"%PDF")
    assert "2025年度 小区 评优评先考评报告" in pdf_text(pdf)
    done = govdash("report", "--year", "2025", "--db", str(db), "--out", str(tmp_path / "x.docx"))
    assert done.returncode == 2
    assert ".xlsx 或 .pdf" in done.stderr
    assert not (tmp_path / "x.docx").exists()
