"""Rejected rows: where (file, sheet, Excel row, column as written), what (raw value) and why."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import pytest

from govdash.core.config import load_config
from govdash.etl.load import format_report, load_paths
from tests.conftest import CHINESE_REASON, rejections, rows, write_csv, write_xlsx

BAD_DATE = "无法识别的受理时间（应为日期时间，如 2024-03-05 14:30）"
EARLY = "受理时间早于配置的最早日期，不合理"
FUTURE = "受理时间晚于当前时间，不合理"
RESPONSE_FIRST = "首次响应时间早于受理时间"
CLOSE_FIRST = "办结时间早于受理时间"
NO_ID = "缺少工单编号"
# Unknown classification words load (issue 13, item 3): the row is kept under 未归类.
CATEGORY_NOTE = "未知的问题类别，计入“未归类”"
PRIORITY_NOTE = "未知的紧急程度，计入“未归类”"
SCORE = "评分应为 1–5 的整数，或“非常满意/满意/基本满意/不满意/非常不满意”"
ABOVE_POINTS = "得分超出该指标的分值范围（0 到满分）"

TICKETS_FILE = "3月工单.xlsx"
# Headers written with aliases: a rejection must name the column as the file names it.
TICKET_HEADER = ["工单号", "报修类别", "紧急程度", "小区", "报修时间", "响应时间", "完成时间"]
TICKET_ROWS = [
    [
        "GD001",
        "水电维修",
        "一般",
        "锦绣花园",
        "2024-03-05 09:00",
        "2024-03-05 09:10",
        "2024-03-05 15:00",
    ],
    ["GD002", "水电维修", "一般", "锦绣花园", "2025-02-30 10:00", None, None],
    ["GD003", "电梯", "特急", "锦绣花园", "2024-03-05 09:00", datetime(2024, 3, 5, 8, 30), None],
    ["GD004", "电梯", "特急", "锦绣花园", "2024-03-05 09:00", None, "2024-03-04 18:00"],
    [None, "水电维修", "一般", "锦绣花园", "2024-03-05 09:00", None, None],
    ["GD006", "外星人入侵", "一般", "锦绣花园", "2024-03-05 09:00", None, None],
    ["GD007", "电梯", "十万火急", "锦绣花园", "2024-03-05 09:00", None, None],
    ["GD008", "电梯", "一般", "锦绣花园", "2099-01-01 09:00", None, None],
    ["GD009", "电梯", "一般", "锦绣花园", "1999-12-31 09:00", None, None],
    [
        "GD010",
        "电梯",
        "一般",
        "锦绣花园",
        "2024-03-05 09:00",
        "2024-03-05 08:30",
        "2024-03-05 08:00",
    ],
    ["GD011", "绿化", "紧急", "翠竹苑", "2024-03-06 09:00", "2024-03-06 09:05", None],
]
# (sheet row, column, raw value, reason); the title is row 1, the header row 2.
TICKET_REJECTIONS = {
    "impossible-date": (4, "报修时间", "2025-02-30 10:00", BAD_DATE),
    "response-before-acceptance": (5, "响应时间", "2024-03-05 08:30:00", RESPONSE_FIRST),
    "close-before-acceptance": (6, "完成时间", "2024-03-04 18:00", CLOSE_FIRST),
    "missing-ticket-id": (7, "工单号", None, NO_ID),
    "date-in-the-future": (10, "报修时间", "2099-01-01 09:00", FUTURE),
    "date-before-earliest": (11, "报修时间", "1999-12-31 09:00", EARLY),
    "two-problems-response": (12, "响应时间", "2024-03-05 08:30", RESPONSE_FIRST),
    "two-problems-close": (12, "完成时间", "2024-03-05 08:00", CLOSE_FIRST),
}

SURVEY_FILE = "问卷.csv"
SURVEY_ROWS = [
    ["问卷编号", "调查批次", "小区", "环境卫生", "总体满意度"],
    ["WJ1", "2024年度", "锦绣花园", 4, 5],
    ["WJ2", "2024年度", "锦绣花园", 4, 6],
    ["WJ3", "2024年度", "锦绣花园", 4, 0],
    ["WJ4", "2024年度", "锦绣花园", 4, 3.5],
    ["WJ5", "2024年度", "锦绣花园", "十分满意", 5],
]
SURVEY_REJECTIONS = {
    "score-6": (3, "总体满意度", "6", SCORE),
    "score-0": (4, "总体满意度", "0", SCORE),
    "score-3.5": (5, "总体满意度", "3.5", SCORE),
    "score-unknown-word": (6, "环境卫生", "十分满意", SCORE),
}

EVALUATION_FILE = "考评.xlsx"
EVALUATION_ROWS = [
    ["年度", "被考评单位", "单位类型", "评委", "指标", "得分", "加分"],
    [2024, "锦绣花园", "小区", "张伟", "绿化", 4, None],
    [2024, "锦绣花园", "小区", "张伟", "绿化养护率", 4, None],
    [2024, "锦绣花园", "小区", "李娜", "绿化", 6, None],
    [2024, "锦绣花园", "小区", "王芳", "绿化", -1, None],
    [2024, "锦绣花园", "小区", "刘洋", "绿化", "良", None],
    [2024, "锦绣花园", "小区", "赵磊", "绿化", 3, 7],
    [2024, "锦绣花园", "小区", None, "绿化", 3, None],
]
EVALUATION_REJECTIONS = {
    "unknown-indicator": (3, "指标", "绿化养护率", "未知的考评指标（不在配置的指标体系中）"),
    "above-points": (4, "得分", "6", ABOVE_POINTS),
    "negative-score": (5, "得分", "-1", ABOVE_POINTS),
    "not-a-number": (6, "得分", "良", "无法识别的得分（应为数字）"),
    "bonus-above-cap": (7, "加分", "7", "加分应在 0 到 5 之间"),
    "missing-evaluator": (8, "评委", None, "缺少评委"),
}


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """One load of three files with known bad rows, shared by the checks below."""
    folder = tmp_path_factory.mktemp("rejections")
    tickets = write_xlsx(
        folder / "in" / TICKETS_FILE,
        {"3月": [["2024年3月工单台账"], TICKET_HEADER, *TICKET_ROWS]},
        merges={"3月": ["A1:G1"]},
    )
    survey = write_csv(folder / "in" / SURVEY_FILE, SURVEY_ROWS, "gb18030")
    evaluation = write_xlsx(folder / "in" / EVALUATION_FILE, {"长表": EVALUATION_ROWS})
    db = folder / "data" / "warehouse.duckdb"
    with pytest.MonkeyPatch.context() as patch:
        for name in ("GOVDASH_CONFIG", "GOVDASH_HASH_KEY", "GOVDASH_DB"):
            patch.delenv(name, raising=False)
        report = load_paths([tickets, survey, evaluation], db, load_config())
    return report, db


@pytest.mark.parametrize("case", list(TICKET_REJECTIONS))
def test_ticket_rejection(loaded, case):
    _, db = loaded
    assert (TICKETS_FILE, "3月", *TICKET_REJECTIONS[case]) in rejections(db)


@pytest.mark.parametrize("case", list(SURVEY_REJECTIONS))
def test_survey_rejection(loaded, case):
    _, db = loaded
    assert (SURVEY_FILE, "问卷", *SURVEY_REJECTIONS[case]) in rejections(db)


@pytest.mark.parametrize("case", list(EVALUATION_REJECTIONS))
def test_evaluation_rejection(loaded, case):
    _, db = loaded
    assert (EVALUATION_FILE, "长表", *EVALUATION_REJECTIONS[case]) in rejections(db)


def test_nothing_else_is_rejected_and_every_reason_is_chinese(loaded):
    _, db = loaded
    expected = sorted(
        [(TICKETS_FILE, "3月", *r) for r in TICKET_REJECTIONS.values()]
        + [(SURVEY_FILE, "问卷", *r) for r in SURVEY_REJECTIONS.values()]
        + [(EVALUATION_FILE, "长表", *r) for r in EVALUATION_REJECTIONS.values()],
        key=repr,
    )
    got = rejections(db)
    assert sorted(got, key=repr) == expected
    assert all(CHINESE_REASON.search(r[5]) for r in got)
    assert rows(db, "SELECT DISTINCT kind FROM rejected_rows ORDER BY 1") == [
        ("evaluation",),
        ("survey",),
        ("tickets",),
    ]


def test_rejected_rows_are_not_loaded(loaded):
    _, db = loaded
    assert rows(db, "SELECT ticket_id FROM tickets ORDER BY 1") == [
        ("GD001",),
        ("GD006",),
        ("GD007",),
        ("GD011",),
    ]
    assert rows(db, "SELECT response_id FROM survey_responses") == [("WJ1",)]
    assert rows(db, "SELECT source_row, indicator, score FROM evaluation_scores") == [
        (2, "绿化", 4.0)
    ]


def test_the_summary_counts_rejected_rows_and_reasons(loaded):
    report, db = loaded
    tickets, survey, evaluation = report.files
    assert report.ok
    # A row with two problems is one rejected row and two reasons.
    assert (tickets.rows_read, tickets.rows_loaded, tickets.rows_rejected) == (11, 4, 7)
    assert tickets.reasons == Counter(r[3] for r in TICKET_REJECTIONS.values())
    assert (survey.rows_read, survey.rows_loaded, survey.rows_rejected) == (5, 1, 4)
    assert survey.reasons == Counter({SCORE: 4})
    assert (evaluation.rows_read, evaluation.rows_loaded, evaluation.rows_rejected) == (7, 1, 6)
    assert evaluation.reasons == Counter(r[3] for r in EVALUATION_REJECTIONS.values())
    assert rows(
        db, "SELECT file_name, rows_loaded, rows_rejected FROM load_batches ORDER BY 1"
    ) == [
        (TICKETS_FILE, 4, 7),
        (EVALUATION_FILE, 1, 6),
        (SURVEY_FILE, 1, 4),
    ]
    text = format_report(report)
    assert "加载 4 行，拒收 7 行" in text
    assert f"{CLOSE_FIRST}：2 处" in text


def test_unknown_classification_words_load_under_unclassified(loaded):
    """A category or priority the vocabulary does not know is no reason to lose the ticket:
    it loads under 未归类 with the word kept, and the summary counts it."""
    report, db = loaded
    tickets = report.files[0]
    assert tickets.notes == Counter(
        {("报修类别", "外星人入侵", CATEGORY_NOTE): 1, ("紧急程度", "十万火急", PRIORITY_NOTE): 1}
    )
    assert rows(
        db,
        "SELECT ticket_id, category, priority, unmapped_values FROM tickets "
        "WHERE ticket_id IN ('GD006', 'GD007') ORDER BY 1",
    ) == [
        ("GD006", "未归类", "一般", {"category": "外星人入侵"}),
        ("GD007", "电梯", "未归类", {"priority": "十万火急"}),
    ]
    text = format_report(report)
    assert f"报修类别“外星人入侵”：1 行，{CATEGORY_NOTE}" in text
    assert f"紧急程度“十万火急”：1 行，{PRIORITY_NOTE}" in text
