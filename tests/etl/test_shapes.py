"""Messy sheet shapes real offices produce: each test states the layout and the exact result."""

from __future__ import annotations

from datetime import datetime

import pytest

from govdash.etl.readers import read_file
from tests.conftest import (
    TICKET_HEADER,
    only_file,
    rejections,
    rows,
    ticket_row,
    ticket_sheet,
    write_csv,
    write_xls,
    write_xlsx,
)

BASIC = (
    "SELECT ticket_id, category, priority, compound, accepted_at, first_response_at, closed_at, "
    "source_sheet, source_row FROM tickets ORDER BY ticket_id"
)
BAD_ACCEPTED = "无法识别的受理时间（应为日期时间，如 2024-03-05 14:30）"
CLOSE_BEFORE_ACCEPT = "办结时间早于受理时间"


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2024, 3, day, hour, minute)


@pytest.mark.parametrize(
    ("blank_above", "title_rows"),
    [(0, 1), (0, 2), (2, 1)],
    ids=["one-title-row", "two-title-rows", "blank-rows-then-title"],
)
def test_title_rows_above_the_header(tmp_path, load, blank_above, title_rows):
    titles = [["2024年锦绣社区工单台账"], ["填报单位：锦绣社区", "统计周期：2024年3月"]][
        :title_rows
    ]
    top = [[None]] * blank_above + titles
    data = ticket_sheet(
        ticket_row("GD001"),
        ticket_row("GD002", closed="2024-03-05 08:00"),  # closed before it was accepted
        ticket_row("GD003", accepted="2024-03-06 08:00", responded="2024-03-06 08:20", closed=None),
    )
    title_row = blank_above + 1
    path = write_xlsx(
        tmp_path / "in" / "3月工单.xlsx",
        {"3月": top + data},
        merges={"3月": [f"A{title_row}:G{title_row}"]},
    )

    report, db = load(path)

    header_row = blank_above + title_rows + 1
    file = only_file(report)
    assert (file.rows_read, file.rows_loaded, file.rows_rejected, file.rows_skipped) == (3, 2, 1, 0)
    assert rows(db, BASIC) == [
        (
            "GD001",
            "水电维修",
            "一般",
            "锦绣花园",
            at(5, 9),
            at(5, 9, 10),
            at(5, 15),
            "3月",
            header_row + 1,
        ),
        (
            "GD003",
            "水电维修",
            "一般",
            "锦绣花园",
            at(6, 8),
            at(6, 8, 20),
            None,
            "3月",
            header_row + 3,
        ),
    ]
    assert rejections(db) == [
        ("3月工单.xlsx", "3月", header_row + 2, "办结时间", "2024-03-05 08:00", CLOSE_BEFORE_ACCEPT)
    ]


TWO_ROW_TOP = ["工单编号", "问题类别", "紧急程度", "小区", "时间节点", None, None, "状态"]
TWO_ROW_BOTTOM = [None, None, None, None, "受理时间", "首次响应时间", "办结时间", None]
TWO_ROW_DATA = [
    [
        "GD101",
        "电梯",
        "特急",
        "锦绣花园",
        "2024-03-05 09:00",
        "2024-03-05 09:04",
        "2024-03-05 11:00",
        "已办结",
    ],
    [
        "GD102",
        "绿化养护",
        "一般",
        "锦绣花园",
        "2024-03-05 10:00",
        "2024-03-05 09:00",
        None,
        "处理中",
    ],
    ["GD103", "噪音扰民", "紧急", "翠竹苑", "2024-03-07 22:00", None, None, "已派单"],
]


def _two_row_expected(db):
    assert rows(
        db,
        "SELECT ticket_id, category, priority, compound, accepted_at, first_response_at, "
        "closed_at, status, source_row FROM tickets ORDER BY ticket_id",
    ) == [
        ("GD101", "电梯", "特急", "锦绣花园", at(5, 9), at(5, 9, 4), at(5, 11), "已办结", 4),
        ("GD103", "噪音扰民", "紧急", "翠竹苑", at(7, 22), None, None, "已派单", 6),
    ]


def test_two_row_header_with_merged_parent_cells(tmp_path, load):
    sheet = [["2024年3月工单明细"], TWO_ROW_TOP, TWO_ROW_BOTTOM, *TWO_ROW_DATA]
    merges = ["A1:H1", "A2:A3", "B2:B3", "C2:C3", "D2:D3", "E2:G2", "H2:H3"]
    path = write_xlsx(tmp_path / "in" / "两行表头.xlsx", {"工单": sheet}, merges={"工单": merges})

    report, db = load(path)

    file = only_file(report)
    assert (file.rows_read, file.rows_loaded, file.rows_rejected) == (3, 2, 1)
    assert file.sheets[0].unused_columns == []
    _two_row_expected(db)
    assert rejections(db) == [
        ("两行表头.xlsx", "工单", 5, "首次响应时间", "2024-03-05 09:00", "首次响应时间早于受理时间")
    ]


def test_two_row_header_without_merge_information_in_csv(tmp_path, load):
    path = write_csv(
        tmp_path / "in" / "两行表头.csv",
        [["2024年3月工单明细"], TWO_ROW_TOP, TWO_ROW_BOTTOM, *TWO_ROW_DATA],
        "utf-8-sig",
    )

    report, db = load(path)

    file = only_file(report)
    assert (file.rows_read, file.rows_loaded, file.rows_rejected) == (3, 2, 1)
    _two_row_expected(db)
    assert [r[2:4] for r in rejections(db)] == [(5, "首次响应时间")]


def test_blank_rows_in_the_middle_are_skipped_and_row_numbers_kept(tmp_path, load):
    sheet = ticket_sheet(
        ticket_row("GD001"),
        [None] * 7,
        ["  ", None, " ", None, None, None, None],  # spaces only: still a blank row
        ticket_row(
            "GD002",
            accepted="2024-03-05 10:00",
            responded="2024-03-05 10:05",
            closed="2024-03-05 12:00",
        ),
        ticket_row("GD003", accepted="2024-03-05 10:00", responded=None, closed="2024-03-04 18:00"),
        [None] * 7,
        ticket_row("GD004", accepted="2024-03-08 07:30", responded=None, closed=None),
    )
    path = write_xlsx(tmp_path / "in" / "空行.xlsx", {"Sheet1": sheet})

    report, db = load(path)

    file = only_file(report)
    assert (file.rows_read, file.rows_loaded, file.rows_rejected, file.rows_skipped) == (7, 3, 1, 3)
    assert rows(db, "SELECT ticket_id, source_row, accepted_at FROM tickets ORDER BY 1") == [
        ("GD001", 2, at(5, 9)),
        ("GD002", 5, at(5, 10)),
        ("GD004", 8, at(8, 7, 30)),
    ]
    assert rejections(db) == [
        ("空行.xlsx", "Sheet1", 6, "办结时间", "2024-03-04 18:00", CLOSE_BEFORE_ACCEPT)
    ]


def test_an_empty_line_in_a_csv_keeps_the_row_numbers(tmp_path, load):
    path = tmp_path / "in" / "空行.csv"
    path.parent.mkdir(parents=True)
    path.write_text(
        "工单编号,问题类别,受理时间\r\n"
        "GD001,水电维修,2024-03-05 09:00\r\n"
        "\r\n"
        "GD002,电梯,2024-02-30 10:00\r\n"
        "GD003,电梯,2024-03-05 11:00\r\n",
        encoding="utf-8",
    )

    report, db = load(path)

    assert only_file(report).rows_skipped == 1
    assert [r[2:5] for r in rejections(db)] == [(4, "受理时间", "2024-02-30 10:00")]
    assert rows(db, "SELECT ticket_id, source_row FROM tickets ORDER BY 1") == [
        ("GD001", 2),
        ("GD003", 5),
    ]


def test_footer_rows_are_skipped_not_loaded_nor_rejected(tmp_path, load):
    sheet = ticket_sheet(
        ticket_row("GD001"),
        ticket_row("GD002"),
        ticket_row("GD003"),
        ["合计", "3 件", None, None, None, None, None],
        [None, "小计：3"],  # the footer word in the second column
        ["制表人：张敏", None, None, "审核人：刘洋"],
        ["审核人：刘洋"],
        [None, None, "日期：2024年3月31日"],
    )
    path = write_xlsx(tmp_path / "in" / "合计.xlsx", {"3月": sheet})

    report, db = load(path)

    file = only_file(report)
    assert (file.rows_read, file.rows_loaded, file.rows_rejected, file.rows_skipped) == (8, 3, 0, 5)
    assert file.reasons == {}
    assert rows(db, "SELECT ticket_id FROM tickets ORDER BY 1") == [
        ("GD001",),
        ("GD002",),
        ("GD003",),
    ]
    assert rejections(db) == []
    assert rows(db, "SELECT rows_skipped, rows_loaded, rows_rejected FROM load_batches") == [
        (5, 3, 0)
    ]


def test_repeated_header_rows_are_skipped(tmp_path, load):
    # Two months pasted one under the other, each with its header.
    sheet = ticket_sheet(
        ticket_row("GD001"),
        ticket_row("GD002"),
        TICKET_HEADER,
        ticket_row("GD003", accepted="2024-04-01 09:00", responded=None, closed=None),
    )
    path = write_xlsx(tmp_path / "in" / "两个月.xlsx", {"Sheet1": sheet})

    report, db = load(path)

    file = only_file(report)
    assert (file.rows_read, file.rows_loaded, file.rows_rejected, file.rows_skipped) == (4, 3, 0, 1)
    assert rows(db, "SELECT ticket_id, source_row FROM tickets ORDER BY 1") == [
        ("GD001", 2),
        ("GD002", 3),
        ("GD003", 5),
    ]


def test_merged_cells_in_the_data_area_fill_each_row(tmp_path, load):
    # 小区 written once and merged down over that compound's tickets.
    sheet = ticket_sheet(
        ticket_row("GD001"),
        ticket_row("GD002", compound=None),
        ticket_row("GD003", compound=None, closed="2024-03-05 08:00"),
        ticket_row("GD004", compound="翠竹苑"),
    )
    path = write_xlsx(
        tmp_path / "in" / "合并.xlsx", {"Sheet1": sheet}, merges={"Sheet1": ["D2:D4"]}
    )

    report, db = load(path)

    assert only_file(report).rows_loaded == 3
    assert rows(db, "SELECT ticket_id, compound FROM tickets ORDER BY 1") == [
        ("GD001", "锦绣花园"),
        ("GD002", "锦绣花园"),
        ("GD004", "翠竹苑"),
    ]
    assert [r[2:5] for r in rejections(db)] == [(4, "办结时间", "2024-03-05 08:00")]


def test_a_table_that_starts_below_and_right_of_a1(tmp_path, load):
    # Row 1 and column A empty; the title merged over B2:H2; a merge in the data area.
    header = [None, *TICKET_HEADER, "状态"]
    sheet = [
        [],
        [None, "2024年3月工单"],
        header,
        [None, *ticket_row("GD001"), "已办结"],
        [None, *ticket_row("GD002", compound=None), "已办结"],
        [None, *ticket_row("GD003", closed="2024-03-05 08:00"), "已办结"],
        [None, *ticket_row("GD004", closed=None), None],
    ]
    path = write_xlsx(
        tmp_path / "in" / "偏移.xlsx",
        {"Sheet1": sheet},
        merges={"Sheet1": ["B2:I2", "E4:E5", "I4:I6"]},
    )

    report, db = load(path)

    assert only_file(report).rows_loaded == 3
    assert rows(db, "SELECT ticket_id, compound, status, source_row FROM tickets ORDER BY 1") == [
        ("GD001", "锦绣花园", "已办结", 4),
        ("GD002", "锦绣花园", "已办结", 5),
        ("GD004", "锦绣花园", None, 7),
    ]
    assert [r[2:5] for r in rejections(db)] == [(6, "办结时间", "2024-03-05 08:00")]


def test_one_sheet_per_month_and_sheets_without_data(tmp_path, load):
    january = ticket_sheet(
        ticket_row(
            "GD001",
            accepted="2024-01-10 09:00",
            responded="2024-01-10 09:05",
            closed="2024-01-10 17:00",
        ),
        ticket_row("GD002", accepted="2024-01-31 20:00", responded="2024-01-31 20:10", closed=None),
    )
    february = ticket_sheet(
        # GD002 re-listed with its later state: the later sheet wins, one record.
        ticket_row(
            "GD002",
            accepted="2024-01-31 20:00",
            responded="2024-01-31 20:10",
            closed="2024-02-01 10:00",
        ),
        ticket_row("GD003", accepted="2024-02-30 09:00"),
        ticket_row(
            "GD004",
            accepted="2024-02-14 09:00",
            responded="2024-02-14 09:30",
            closed="2024-02-14 10:00",
        ),
    )
    notes = [["填表说明"], ["1. 受理时间请填写到分钟", "2. 问题类别见附表"]]
    path = write_xlsx(
        tmp_path / "in" / "2024年工单.xlsx",
        {"1月": january, "2月": february, "说明": notes, "空表": []},
    )

    report, db = load(path)

    file = only_file(report)
    assert [(s.name, s.kind, s.rows_read, s.skipped_reason) for s in file.sheets] == [
        ("1月", "tickets", 2, ""),
        ("2月", "tickets", 3, ""),
        ("说明", None, 0, "未找到可识别的表头"),
        ("空表", None, 0, "空工作表"),
    ]
    assert (file.rows_read, file.rows_loaded, file.rows_rejected, file.rows_skipped) == (5, 4, 1, 0)
    assert (file.rows_inserted, file.rows_updated, file.rows_unchanged) == (3, 0, 0)
    assert rows(
        db, "SELECT ticket_id, closed_at, source_sheet, source_row FROM tickets ORDER BY 1"
    ) == [
        ("GD001", datetime(2024, 1, 10, 17), "1月", 2),
        ("GD002", datetime(2024, 2, 1, 10), "2月", 2),
        ("GD004", datetime(2024, 2, 14, 10), "2月", 4),
    ]
    [rejected] = rejections(db)
    assert rejected[:5] == ("2024年工单.xlsx", "2月", 3, "受理时间", "2024-02-30 09:00")
    assert rows(db, "SELECT sheets_used, sheets_skipped FROM load_batches") == [
        (["1月", "2月"], ["说明", "空表"])
    ]


def test_a_workbook_with_several_sheets_always_reads(tmp_path):
    # Sheets are read on two threads; a shared fastexcel reader failed at random with
    # "Already borrowed" (about one read in three for four small sheets).
    months = [f"{m}月" for m in range(1, 5)]
    path = write_xlsx(
        tmp_path / "in" / "全年.xlsx",
        {m: ticket_sheet(*(ticket_row(f"GD{i}-{m}") for i in range(3))) for m in months},
    )
    for _ in range(40):
        assert [s.name for s in read_file(path, 1000)] == months


def test_serial_real_and_text_dates_parse_to_the_same_instant(tmp_path, load):
    # 45356 is 2024-03-05 in Excel's 1900 system; .5 is noon, 14:30 is 14.5/24 of a day.
    forms = {
        "GD01": datetime(2024, 3, 5, 14, 30),
        "GD02": 45356 + 14.5 / 24,
        "GD03": "2024年3月5日 14:30",
        "GD04": "2024/3/5 14:30",
        "GD05": "2024-03-05T14:30",
        "GD06": "2024-03-05 14:30:00",
        "GD07": "2024年3月5日14时30分",
        "GD08": "2024.3.5 14:30",
        "GD09": "45356.604166666664",  # a serial that arrived as text
    }
    sheet = ticket_sheet(
        *(
            ticket_row(key, accepted=value, responded=None, closed=None)
            for key, value in forms.items()
        ),
        ticket_row("GD10", accepted=45356.5, responded=45356.5 + 5 / 1440, closed=45357),
    )
    path = write_xlsx(tmp_path / "in" / "日期.xlsx", {"3月": sheet})

    report, db = load(path)

    assert only_file(report).rows_rejected == 0
    got = dict(rows(db, "SELECT ticket_id, accepted_at FROM tickets WHERE ticket_id != 'GD10'"))
    assert got == dict.fromkeys(forms, datetime(2024, 3, 5, 14, 30))
    assert rows(
        db, "SELECT accepted_at, first_response_at, closed_at FROM tickets WHERE ticket_id = 'GD10'"
    ) == [(datetime(2024, 3, 5, 12), datetime(2024, 3, 5, 12, 5), datetime(2024, 3, 6))]


def test_full_width_characters_in_headers_and_values(tmp_path, load):
    header = [
        "工单编号：",
        "问题类别",
        "紧急程度　",
        "小区（院落）",
        "楼栋",
        "受理时间（北京时间）",
        "办结时间",
    ]
    sheet = [
        header,
        [
            "ＧＤ００１",
            "水电维修",
            "一般",
            "锦绣花园（一期）",
            "３栋",
            "２０２４－０３－０５　１４：３０",
            "２０２４／３／５　１６：００",
        ],
        [
            "ＧＤ００２",
            "电梯",
            "特急",
            "锦绣花园（一期）",
            "１２栋",
            "２０２４年３月６日　８：０５",
            None,
        ],
    ]
    path = write_xlsx(tmp_path / "in" / "全角.xlsx", {"Sheet1": sheet})

    report, db = load(path)

    assert only_file(report).rows_loaded == 2
    assert rows(
        db,
        "SELECT ticket_id, priority, compound, building, accepted_at, closed_at FROM tickets ORDER BY 1",
    ) == [
        ("GD001", "一般", "锦绣花园(一期)", "3栋", at(5, 14, 30), at(5, 16)),
        ("GD002", "特急", "锦绣花园(一期)", "12栋", at(6, 8, 5), None),
    ]


def test_stray_spaces_and_line_breaks_in_headers_and_values(tmp_path, load):
    header = [
        " 工单编号 ",
        "问题\n类别",
        "紧急程度",
        " 小区",
        "受理\n时间",
        "首次响应\r\n时间 ",
        "办结时间",
        "问题描述",
    ]
    sheet = [
        header,
        [
            " GD001 ",
            "水电维修 ",
            " 一般",
            "锦绣花园  ",
            " 2024-03-05 09:00 ",
            "2024-03-05  09:10",
            None,
            "楼道灯\n不亮，\n请尽快处理 ",
        ],
        ["GD002\n", "\t电梯", "紧急", " 锦绣  花园 ", "2024-03-05 10:00", None, None, None],
    ]
    path = write_xlsx(tmp_path / "in" / "空格.xlsx", {"Sheet1": sheet})

    report, db = load(path)

    file = only_file(report)
    assert (file.rows_loaded, file.rows_rejected) == (2, 0)
    assert file.sheets[0].unused_columns == []
    assert rows(
        db,
        "SELECT ticket_id, category, priority, compound, accepted_at, first_response_at, description "
        "FROM tickets ORDER BY 1",
    ) == [
        (
            "GD001",
            "水电维修",
            "一般",
            "锦绣花园",
            at(5, 9),
            at(5, 9, 10),
            "楼道灯 不亮， 请尽快处理",
        ),
        ("GD002", "电梯", "紧急", "锦绣 花园", at(5, 10), None, None),
    ]


BOOLEAN_SPELLINGS = [
    ("是", True),
    ("否", False),
    ("√", True),
    ("×", False),
    ("Y", True),
    ("N", False),
    ("y", True),
    ("n", False),
    (1, True),
    (0, False),
    ("1", True),
    ("0", False),
    (True, True),
    (False, False),
    ("Ｙ", True),
    (" 是 ", True),
    (None, None),
]


def test_boolean_spellings(tmp_path, load):
    header = [*TICKET_HEADER, "是否有效回访", "是否联系", "是否解决"]
    body = [
        [*ticket_row(f"GD{n:02d}"), written, written, written]
        for n, (written, _) in enumerate(BOOLEAN_SPELLINGS)
    ]
    body.append([*ticket_row("GD99"), "可能", "是", "否"])
    path = write_xlsx(tmp_path / "in" / "回访.xlsx", {"回访": [header, *body]})

    report, db = load(path)

    file = only_file(report)
    # An answer that is neither yes nor no loads as not given (the ticket is kept).
    assert (file.rows_loaded, file.rows_rejected) == (len(BOOLEAN_SPELLINGS) + 1, 0)
    got = rows(
        db, "SELECT ticket_id, is_valid_callback, is_contacted, is_resolved FROM tickets ORDER BY 1"
    )
    assert got == [
        *(
            (f"GD{n:02d}", expected, expected, expected)
            for n, (_, expected) in enumerate(BOOLEAN_SPELLINGS)
        ),
        ("GD99", None, True, False),
    ]
    assert rejections(db) == []
    assert file.notes == {
        ("是否有效回访", "可能", "未知的是否有效回访取值，按未填写处理（不计入相应比率）"): 1
    }


CSV_DESCRIPTION = {
    "gbk": "楼道灯不亮，请尽快维修",
    "gb18030": "楼道灯不亮，住户姓名含生僻字“䶮”和“𠀀”",
    "utf-8": "楼道灯不亮，住户姓名含生僻字“䶮”和“𠀀”",
    "utf-8-sig": "楼道灯不亮，住户姓名含生僻字“䶮”和“𠀀”",
}


@pytest.mark.parametrize("encoding", list(CSV_DESCRIPTION))
def test_csv_in_the_encodings_excel_saves(tmp_path, load, encoding):
    description = CSV_DESCRIPTION[encoding]
    header = [*TICKET_HEADER, "问题描述"]
    path = write_csv(
        tmp_path / "in" / f"工单-{encoding}.csv",
        [
            header,
            [*ticket_row("GD001", compound="锦绣花园"), description],
            [*ticket_row("GD002", accepted="2024年2月30日 10:00"), "无"],
            [*ticket_row("GD003", compound="翠竹苑", closed=None), None],
        ],
        encoding,
    )
    if encoding == "utf-8-sig":
        assert path.read_bytes().startswith(b"\xef\xbb\xbf")

    report, db = load(path)

    file = only_file(report)
    assert (file.rows_read, file.rows_loaded, file.rows_rejected) == (3, 2, 1)
    assert rows(
        db, "SELECT ticket_id, compound, description, closed_at FROM tickets ORDER BY 1"
    ) == [
        ("GD001", "锦绣花园", description, at(5, 15)),
        ("GD003", "翠竹苑", None, None),
    ]
    assert rejections(db) == [
        (
            f"工单-{encoding}.csv",
            f"工单-{encoding}",
            3,
            "受理时间",
            "2024年2月30日 10:00",
            BAD_ACCEPTED,
        )
    ]


def test_small_gbk_csv_whose_only_chinese_is_at_the_end(tmp_path, load):
    # English headers (an export from a ticket system); only the last row's callback is filled.
    path = tmp_path / "in" / "tickets.csv"
    path.parent.mkdir(parents=True)
    text = (
        "ticket_id,accepted_at,is_valid_callback\r\n"
        "GD001,2024-03-05 09:00,\r\n"
        "GD002,2024-03-05 10:00,是\r\n"
    )
    path.write_bytes(text.encode("gbk"))

    report, db = load(path)

    only_file(report)
    assert rows(db, "SELECT ticket_id, is_valid_callback FROM tickets ORDER BY 1") == [
        ("GD001", None),
        ("GD002", True),
    ]


def test_a_gbk_csv_larger_than_the_sniffing_sample(tmp_path, load):
    from govdash.etl.readers import _SAMPLE_BYTES

    header = [*TICKET_HEADER, "问题描述"]
    body = [[*ticket_row(f"GD{i:06d}"), "楼道灯不亮请尽快维修"] for i in range(11_000)]
    path = tmp_path / "in" / "大文件.csv"
    for padding in range(120):  # shift the rows until the 1 MiB cut splits a character
        body[0][-1] = "楼道灯不亮请尽快维修" + "x" * padding
        write_csv(path, [header, *body], "gbk")
        sample = path.read_bytes()[:_SAMPLE_BYTES]
        if sample[-1] >= 0x80 and len(sample.decode("gbk", errors="ignore").encode("gbk")) < len(
            sample
        ):
            break
    else:
        pytest.fail("could not place the cut inside a character")
    assert path.stat().st_size > _SAMPLE_BYTES

    report, db = load(path)

    assert only_file(report).rows_loaded == 11_000
    assert rows(db, "SELECT compound, count(*) FROM tickets GROUP BY 1") == [("锦绣花园", 11_000)]


def test_a_utf8_export_with_gbk_rows_appended_after_the_sample(tmp_path, load):
    # Over a megabyte of UTF-8 rows, so the sniffed sample is clean UTF-8, then rows another
    # office appended from Excel's plain "CSV" (GBK) and an empty line between the two.
    from govdash.etl.readers import _SAMPLE_BYTES

    header = [*TICKET_HEADER, "问题描述"]
    first = [[*ticket_row(f"U{i:06d}"), "楼道灯不亮请尽快维修"] for i in range(9_000)]
    later = [[*ticket_row(f"G{i:03d}", compound="幸福家园"), "电梯停运"] for i in range(3)]
    utf8 = write_csv(tmp_path / "u.csv", [header, *first], "utf-8-sig").read_bytes()
    gbk = write_csv(tmp_path / "g.csv", later, "gbk").read_bytes()
    assert len(utf8) > _SAMPLE_BYTES
    path = tmp_path / "in" / "合并导出.csv"
    path.parent.mkdir()
    path.write_bytes(utf8 + b"\r\n" + gbk)

    report, db = load(path)

    assert only_file(report).rows_loaded == 9_003
    assert rows(db, "SELECT compound, count(*) FROM tickets GROUP BY 1 ORDER BY 1") == [
        ("幸福家园", 3),
        ("锦绣花园", 9_000),
    ]
    # Row numbers as Excel shows them: header 1, data 2…9001, the empty line 9002.
    assert rows(
        db,
        "SELECT ticket_id, source_row FROM tickets "
        "WHERE ticket_id IN ('U000000', 'U008999', 'G000', 'G002') ORDER BY source_row",
    ) == [("U000000", 2), ("U008999", 9_001), ("G000", 9_003), ("G002", 9_005)]


def test_utf16_tab_separated_text_export(tmp_path, load):
    # Excel's "Unicode text" export: UTF-16 with BOM, tab-separated, saved as .txt.
    path = write_csv(
        tmp_path / "in" / "导出.txt",
        ticket_sheet(ticket_row("GD001"), ticket_row("GD002", closed=None)),
        "utf-16",
        delimiter="\t",
    )

    report, db = load(path)

    assert only_file(report).rows_loaded == 2
    assert rows(db, "SELECT ticket_id, compound, closed_at FROM tickets ORDER BY 1") == [
        ("GD001", "锦绣花园", at(5, 15)),
        ("GD002", "锦绣花园", None),
    ]


def test_legacy_xls_with_title_row_and_merged_header(tmp_path, load):
    sheet = [
        ["2024年锦绣社区工单台账"],
        TWO_ROW_TOP,
        TWO_ROW_BOTTOM,
        [
            "GD101",
            "电梯",
            "特急",
            "锦绣花园",
            datetime(2024, 3, 5, 9, 0),
            45356 + 9 / 24 + 4 / 1440,
            "2024-03-05 11:00",
            "已办结",
        ],
        [
            "GD102",
            "电梯",
            "一般",
            "锦绣花园",
            datetime(2024, 3, 5, 10, 0),
            None,
            "2024-03-05 08:00",
            "处理中",
        ],
        ["GD103", "噪音扰民", "紧急", "翠竹苑", "2024年3月7日 22:00", None, None, "已派单"],
        ["合计", "3"],
    ]
    merges = ["A1:H1", "A2:A3", "B2:B3", "C2:C3", "D2:D3", "E2:G2", "H2:H3"]
    path = write_xls(tmp_path / "in" / "老版本.xls", {"3月": sheet}, merges={"3月": merges})

    report, db = load(path)

    file = only_file(report)
    assert (file.rows_read, file.rows_loaded, file.rows_rejected, file.rows_skipped) == (4, 2, 1, 1)
    assert rows(
        db,
        "SELECT ticket_id, category, accepted_at, first_response_at, closed_at, status, source_row "
        "FROM tickets ORDER BY 1",
    ) == [
        ("GD101", "电梯", at(5, 9), at(5, 9, 4), at(5, 11), "已办结", 4),
        ("GD103", "噪音扰民", at(7, 22), None, None, "已派单", 6),
    ]
    assert rejections(db) == [
        ("老版本.xls", "3月", 5, "办结时间", "2024-03-05 08:00", CLOSE_BEFORE_ACCEPT)
    ]


ALIAS_HEADERS = {
    "chinese-aliases": [
        "工单号",
        "项目名称",
        "物业公司",
        "报修类别",
        "报修时间",
        "响应时间",
        "完成时间",
        "回访满意度",
        "电话",
        "报修人",
    ],
    "english-names": [
        "ticket_id",
        "compound",
        "property_company",
        "category",
        "accepted_at",
        "first_response_at",
        "closed_at",
        "callback_satisfaction",
        "phone",
        "contact_name",
    ],
}


@pytest.mark.parametrize("header_set", list(ALIAS_HEADERS))
def test_headers_by_alias_and_by_english_field_name(tmp_path, load, header_set):
    header = ALIAS_HEADERS[header_set]
    sheet = [
        header,
        [
            "GD001",
            "锦绣花园",
            "蓉城物业",
            "房屋渗漏",
            "2024-03-05 09:00",
            "2024-03-05 09:20",
            "2024-03-06 09:00",
            "基本满意",
            "13812345678",
            "陈静",
        ],
        ["GD002", "翠竹苑", "安居物业", "停车", "2024-03-05 11:00", None, None, None, None, None],
    ]
    path = write_xlsx(tmp_path / "in" / f"{header_set}.xlsx", {"Sheet1": sheet})

    report, db = load(path)

    file = only_file(report)
    assert file.kinds == ["tickets"]
    assert (file.rows_loaded, file.rows_rejected) == (2, 0)
    assert file.sheets[0].unused_columns == []
    assert rows(
        db,
        "SELECT ticket_id, compound, property_company, category, accepted_at, first_response_at, "
        "closed_at, callback_satisfaction, caller_hash IS NOT NULL FROM tickets ORDER BY 1",
    ) == [
        (
            "GD001",
            "锦绣花园",
            "蓉城物业",
            "房屋渗漏",
            at(5, 9),
            at(5, 9, 20),
            at(6, 9),
            "基本满意",
            True,
        ),
        ("GD002", "翠竹苑", "安居物业", "停车管理", at(5, 11), None, None, None, False),
    ]


def test_numeric_ticket_ids_keep_their_digits(tmp_path, load):
    # Clerks often type 工单编号 as a number; it must not become "20240305001.0".
    path = write_xlsx(
        tmp_path / "in" / "数字编号.xlsx",
        {"Sheet1": ticket_sheet(ticket_row(20240305001), ticket_row(20240305002))},
    )

    report, db = load(path)

    assert only_file(report).rows_loaded == 2
    assert rows(db, "SELECT ticket_id FROM tickets ORDER BY 1") == [
        ("20240305001",),
        ("20240305002",),
    ]


def test_unused_columns_are_reported(tmp_path, load):
    header = [*TICKET_HEADER, "备用列", "经办人签字"]
    path = write_xlsx(
        tmp_path / "in" / "多余列.xlsx",
        {"Sheet1": [header, [*ticket_row("GD001"), "x", "y"]]},
    )

    report, _ = load(path)

    assert only_file(report).sheets[0].unused_columns == ["备用列", "经办人签字"]


# Cells as clerks leave them: odd spaces (leading, trailing, doubled, tabs, the ideographic and
# the no-break space) and full-width letters, digits and brackets, each alone in a row of clean
# cells, in the first, a middle or the last text column.
ODD_CELLS = [
    " 第一网格", "第一网格 ", "第一  网格", "第一\t网格", "\u3000第一网格", "第一\u00a0网格",
    "第１网格", "ＡＢ网格", "网格（一）", "  ", "\t", "甲\u3000\u3000乙",
]  # fmt: skip


def _tidied(cell: str) -> str | None:
    """What the loader keeps of a cell (README: full-width ASCII to half width, runs of
    whitespace to one space, trimmed; nothing left is empty), written out here: NFKC takes
    exactly the full-width forms and the two odd spaces these cells hold to ASCII."""
    import unicodedata

    text = " ".join(unicodedata.normalize("NFKC", cell).split())
    return text or None


def test_an_odd_cell_is_tidied_whichever_column_and_its_clean_neighbours_are_kept(
    tmp_path, load
):
    """The cleaning tests a row's cells at once for anything to tidy, then each cell of a row
    that has some: every odd cell is tidied wherever it stands, a clean cell beside it is kept
    as written (a space inside a name too), and a row with nothing odd is kept as written."""
    header = [*TICKET_HEADER, "网格", "承办单位", "办理人备注"]
    columns = ("compound", "grid", "handling_unit")
    clean = {"compound": "锦绣 花园", "grid": "第二网格", "handling_unit": "物业 服务中心"}
    data, expected = [], {}
    for i, odd in enumerate(ODD_CELLS):
        for column in columns:
            cells = dict(clean, **{column: odd})
            ticket = f"GD{i:02d}{columns.index(column)}"
            row = ticket_row(ticket, compound=cells["compound"])
            data.append([*row, cells["grid"], cells["handling_unit"], ""])
            expected[ticket] = tuple(
                _tidied(cells[c]) if c == column else cells[c] for c in columns
            )
    data.append([*ticket_row("GD-CLEAN", compound=clean["compound"]), clean["grid"],
                 clean["handling_unit"], ""])  # fmt: skip
    expected["GD-CLEAN"] = tuple(clean[c] for c in columns)
    report, db = load(write_csv(tmp_path / "网格.csv", ticket_sheet(*data, header=header), "utf-8"))
    assert report.ok, report.files[0].error
    found = rows(db, "SELECT ticket_id, compound, grid, handling_unit FROM tickets")
    assert {ticket: tuple(values) for ticket, *values in found} == expected
    assert len(found) == len(expected)
