"""Word lists and score ranges the cleaning statement tests per cell.

Cleaning writes its constant lists as list_contains and a score's 1–5 range as a range and a
whole-number test (DuckDB 1.5 planned every IN list of six or more constants as a join of its
own); these pin what those lists mean, cell by cell, where no other test looked.
"""

from __future__ import annotations

from tests.conftest import only_file, rejections, rows, write_csv

SCORE_REASON = "评分应为 1–5 的整数，或“非常满意/满意/基本满意/不满意/非常不满意”"


def test_a_survey_score_is_a_whole_number_from_1_to_5_written_in_any_form(tmp_path, load):
    header = ["问卷编号", "调查批次", "小区", "总体满意度"]
    cells = {
        "WJ01": ("5.0", 5),
        "WJ02": ("1", 1),
        "WJ03": ("3.00", 3),
        "WJ04": ("4.5", None),
        "WJ05": ("0", None),
        "WJ06": ("6", None),
        "WJ07": ("-1", None),
        "WJ08": ("2.01", None),
        "WJ09": ("满意", 4),
    }
    path = write_csv(
        tmp_path / "in" / "问卷.csv",
        [header, *([key, "2024年上半年", "锦绣花园", cell] for key, (cell, _) in cells.items())],
        "utf-8-sig",
    )

    report, db = load(path)

    file = only_file(report)
    accepted = {key: score for key, (_, score) in cells.items() if score is not None}
    refused = [(key, cell) for key, (cell, score) in cells.items() if score is None]
    assert (file.rows_loaded, file.rows_rejected) == (len(accepted), len(refused))
    assert dict(rows(db, "SELECT response_id, score FROM survey_answers")) == accepted
    # Rows 2… of the CSV follow the header in row 1, in the order written.
    row_of = {key: index + 2 for index, key in enumerate(cells)}
    assert rejections(db) == sorted(
        ("问卷.csv", "问卷", row_of[key], "总体满意度", cell, SCORE_REASON) for key, cell in refused
    )


def test_words_for_no_property_company_are_stored_empty_and_only_as_whole_cells(tmp_path, load):
    no_company = ["无", "暂无", "无物业", "自管", "自治", "/", "-", "—", "／"]
    companies = ["无锡物业", "自管委员会物业", "暂无名物业"]  # names holding such a word
    header = ["小区", "户数", "物业企业"]
    names = [f"小区{i}" for i in range(len(no_company) + len(companies))]
    path = write_csv(
        tmp_path / "in" / "台账.csv",
        [
            header,
            *([name, 100, cell] for name, cell in zip(names, no_company + companies, strict=True)),
        ],
        "utf-8-sig",
    )

    report, db = load(path)

    assert only_file(report).rows_loaded == len(names)
    expected = dict(zip(names, [None] * len(no_company) + companies, strict=True))
    assert dict(rows(db, "SELECT compound, property_company FROM compounds")) == expected


def test_an_unknown_word_is_kept_only_on_its_own_row(tmp_path, load):
    header = ["工单编号", "来源渠道", "问题类别", "状态", "是否解决", "小区", "受理时间"]
    path = write_csv(
        tmp_path / "in" / "工单.csv",
        [
            header,
            ["G1", "12345转办", "电梯", "已办结", "是", "锦绣花园", "2024-03-05 09:00"],
            ["G2", "信鸽", "电梯", "已办结", "是", "锦绣花园", "2024-03-05 09:00"],
            ["G3", "12345转办", "电梯", "办好了", "大概", "锦绣花园", "2024-03-05 09:00"],
        ],
        "utf-8-sig",
    )

    report, db = load(path)

    assert only_file(report).rows_loaded == 3
    found = rows(
        db,
        "SELECT ticket_id, channel, status, is_resolved, unmapped_values FROM tickets ORDER BY 1",
    )
    assert found == [
        ("G1", "12345转办", "已办结", True, {}),
        ("G2", "未归类", "已办结", True, {"channel": "信鸽"}),
        ("G3", "12345转办", "未归类", None, {"status": "办好了", "is_resolved": "大概"}),
    ]
    assert dict(only_file(report).notes) == {
        ("来源渠道", "信鸽", "未知的来源渠道，计入“未归类”"): 1,
        ("状态", "办好了", "未知的工单状态，计入“未归类”"): 1,
        ("是否解决", "大概", "未知的是否解决取值，按未填写处理（不计入相应比率）"): 1,
    }
