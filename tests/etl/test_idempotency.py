"""Loading the same content again changes nothing; a re-exported month updates in place."""

from __future__ import annotations

import shutil
from datetime import datetime

from govdash.etl.load import format_report, load_paths
from tests.conftest import (
    TABLES,
    TICKET_HEADER,
    only_file,
    rows,
    snapshot,
    ticket_row,
    ticket_sheet,
    write_csv,
    write_xlsx,
)

# The moment of the last write, by definition different on every load.
CONTENT_TABLES = [t for t in TABLES if t != "warehouse_info"]
INFO_WITHOUT_CLOCK = "SELECT * FROM warehouse_info WHERE key != 'updated_at' ORDER BY key"
PER_TICKET = "SELECT ticket_id, count(*) FROM tickets GROUP BY 1 ORDER BY 1"


def _march(tmp_path, name="3月工单.xlsx", **overrides):
    tickets = {
        "GD001": ticket_row("GD001", closed=None),
        "GD002": ticket_row(
            "GD002",
            accepted="2024-03-06 10:00",
            responded="2024-03-06 10:20",
            closed="2024-03-07 10:00",
        ),
        "GD003": ticket_row(
            "GD003",
            category="电梯",
            priority="特急",
            accepted="2024-03-07 08:00",
            responded="2024-03-07 08:03",
            closed="2024-03-07 12:00",
        ),
        "GD004": ticket_row("GD004", closed="2024-03-05 08:00"),  # rejected every time
    }
    tickets.update(overrides)
    return write_xlsx(
        tmp_path / "in" / name, {"3月": ticket_sheet(*(r for r in tickets.values() if r))}
    )


def test_loading_the_same_file_twice_changes_nothing(tmp_path, load):
    path = _march(tmp_path)
    first, db = load(path)
    assert only_file(first).batch_id == 1
    before = snapshot(db, CONTENT_TABLES)
    info_before = rows(db, INFO_WITHOUT_CLOCK)

    second, _ = load(path)

    file = only_file(second)
    assert file.already_loaded_as == 1
    assert file.batch_id is None
    assert (file.rows_read, file.rows_loaded, file.rows_rejected, file.rows_inserted) == (
        0,
        0,
        0,
        0,
    )
    assert snapshot(db, CONTENT_TABLES) == before
    assert rows(db, INFO_WITHOUT_CLOCK) == info_before
    assert rows(db, "SELECT batch_id FROM load_batches") == [(1,)]
    assert rows(db, "SELECT count(*) FROM rejected_rows") == [(1,)]
    assert "与批次 1 内容相同" in format_report(second)
    manifest = (db.parent / "raw" / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(manifest) == 1


def test_the_same_content_under_another_name_in_one_load(tmp_path, load):
    path = _march(tmp_path)
    copy = tmp_path / "in" / "3月工单(副本).xlsx"
    shutil.copyfile(path, copy)

    report, db = load(path, copy)

    assert [f.batch_id for f in report.files] == [1, None]
    assert report.files[1].already_loaded_as == 1
    assert rows(db, PER_TICKET) == [("GD001", 1), ("GD002", 1), ("GD003", 1)]
    assert rows(db, "SELECT count(*) FROM rejected_rows") == [(1,)]


def test_a_re_export_updates_changed_rows_and_inserts_new_ones(tmp_path, load):
    load(_march(tmp_path))
    re_export = _march(
        tmp_path,
        "3月工单-重新导出.xlsx",
        GD001=ticket_row("GD001", closed="2024-03-05 18:30"),  # 办结时间 filled in
        GD005=ticket_row("GD005", accepted="2024-03-09 09:00", responded=None, closed=None),
    )

    report, db = load(re_export)

    file = only_file(report)
    assert (file.rows_inserted, file.rows_updated, file.rows_unchanged) == (1, 1, 2)
    assert (file.rows_loaded, file.rows_rejected) == (4, 1)
    assert rows(db, PER_TICKET) == [
        ("GD001", 1),
        ("GD002", 1),
        ("GD003", 1),
        ("GD005", 1),
    ]
    assert rows(
        db,
        "SELECT ticket_id, closed_at, is_open, resolution_hours, batch_id FROM tickets ORDER BY 1",
    ) == [
        ("GD001", datetime(2024, 3, 5, 18, 30), False, 9.5, 2),
        ("GD002", datetime(2024, 3, 7, 10), False, 24.0, 1),
        ("GD003", datetime(2024, 3, 7, 12), False, 4.0, 1),
        ("GD005", None, True, None, 2),
    ]
    assert rows(
        db,
        "SELECT batch_id, rows_inserted, rows_updated, rows_unchanged FROM load_batches ORDER BY 1",
    ) == [(1, 3, 0, 0), (2, 1, 1, 2)]


def test_a_re_saved_file_with_identical_rows_changes_no_record(tmp_path, load):
    first = write_csv(
        tmp_path / "in" / "a.csv", ticket_sheet(ticket_row("GD001"), ticket_row("GD002")), "utf-8"
    )
    _, db = load(first)
    before = snapshot(db, ["tickets"])
    # The same rows saved by another program: other bytes, other encoding, same values.
    second = write_csv(
        tmp_path / "in" / "b.csv", ticket_sheet(ticket_row("GD002"), ticket_row("GD001")), "gb18030"
    )

    report, _ = load(second)

    file = only_file(report)
    assert file.already_loaded_as is None
    assert (file.rows_inserted, file.rows_updated, file.rows_unchanged) == (0, 0, 2)
    assert snapshot(db, ["tickets"]) == before


def test_the_same_ticket_in_two_files_counts_once(tmp_path, load):
    january = write_xlsx(
        tmp_path / "in" / "1月.xlsx",
        {"1月": ticket_sheet(ticket_row("GD001"), ticket_row("GD002", closed=None))},
    )
    # A ticket accepted in January and still listed in February's sheet, unchanged.
    february = write_xlsx(
        tmp_path / "in" / "2月.xlsx",
        {"2月": ticket_sheet(ticket_row("GD002", closed=None), ticket_row("GD003"))},
    )

    report, db = load(january, february)

    assert [(f.rows_inserted, f.rows_updated, f.rows_unchanged) for f in report.files] == [
        (2, 0, 0),
        (1, 0, 1),
    ]
    assert rows(db, PER_TICKET) == [("GD001", 1), ("GD002", 1), ("GD003", 1)]
    assert rows(db, "SELECT source_sheet FROM tickets WHERE ticket_id = 'GD002'") == [("1月",)]


def test_a_re_exported_survey_replaces_its_answers(tmp_path, load):
    header = ["问卷编号", "调查批次", "小区", "客户服务", "环境卫生", "总体满意度"]
    load(
        write_csv(
            tmp_path / "in" / "v1.csv",
            [
                header,
                ["WJ1", "2024年度", "锦绣花园", 4, 2, 3],
                ["WJ2", "2024年度", "锦绣花园", 5, 5, 5],
            ],
            "utf-8",
        )
    )

    report, db = load(
        write_csv(
            tmp_path / "in" / "v2.csv",
            [
                header,
                ["WJ1", "2024年度", "锦绣花园", None, 2, 5],
                ["WJ2", "2024年度", "锦绣花园", 5, 5, 5],
            ],
            "utf-8",
        )
    )

    file = only_file(report)
    assert (file.rows_inserted, file.rows_updated, file.rows_unchanged) == (0, 1, 1)
    assert sorted(rows(db, "SELECT response_id, item, score FROM survey_answers")) == [
        ("WJ1", "总体满意度", 5),
        ("WJ1", "环境卫生", 2),
        ("WJ2", "客户服务", 5),
        ("WJ2", "总体满意度", 5),
        ("WJ2", "环境卫生", 5),
    ]
    assert rows(db, "SELECT response_id, count(*) FROM survey_responses GROUP BY 1 ORDER BY 1") == [
        ("WJ1", 1),
        ("WJ2", 1),
    ]


PHONE_HEADER = [*TICKET_HEADER, "联系电话"]
DERIVED = (
    "SELECT ticket_id, response_status, resolution_status, is_repeat, community "
    "FROM tickets ORDER BY 1"
)


LATER = ("2024-03-20 10:00", "2024-03-20 10:05", "2024-03-20 12:00")  # accepted, responded, closed


def _calls(*rows_with_phone):
    return ticket_sheet(*rows_with_phone, header=PHONE_HEADER)


def test_a_later_load_updates_the_derived_state_of_earlier_tickets(tmp_path, load, config):
    # March: GD001 open and unanswered ten minutes after it came in (as-of 09:10).
    march = write_xlsx(
        tmp_path / "in" / "3月.xlsx",
        {
            "工单": _calls(
                [*ticket_row("GD001", responded=None, closed=None), "13812345678"],
                [*ticket_row("GD002", accepted="2024-03-05 09:05", closed=None), "13900001111"],
            )
        },
    )
    _, db = load(march)
    assert rows(db, DERIVED) == [
        ("GD001", "not_yet_due", "not_yet_due", False, None),
        ("GD002", "on_time", "not_yet_due", False, None),
    ]
    # April: the same caller again about the same thing (a repeat), the as-of time moves past
    # GD001's and GD002's limits, and the register names the compound's community.
    april = write_xlsx(
        tmp_path / "in" / "4月.xlsx",
        {"工单": _calls([*ticket_row("GD003", *LATER), "138 1234 5678"])},
    )
    register = write_xlsx(
        tmp_path / "in" / "台账.xlsx",
        {"台账": [["社区", "小区", "户数"], ["锦绣社区", "锦绣花园", 800]]},
    )
    load(april, register)
    expected = [
        ("GD001", "late", "late", False, "锦绣社区"),
        ("GD002", "on_time", "late", False, "锦绣社区"),
        ("GD003", "on_time", "on_time", True, "锦绣社区"),
    ]
    assert rows(db, DERIVED) == expected
    # The same three files loaded at once into a new warehouse give the same state.
    load_paths([march, april, register], tmp_path / "together" / "w.duckdb", config)
    assert rows(tmp_path / "together" / "w.duckdb", DERIVED) == expected
    # A re-export of GD003 with another caller's number: no longer a repeat.
    again = write_xlsx(
        tmp_path / "in" / "4月_更正.xlsx",
        {"工单": _calls([*ticket_row("GD003", *LATER), "13700002222"])},
    )
    load(again)
    assert rows(db, DERIVED)[2] == ("GD003", "on_time", "on_time", False, "锦绣社区")
