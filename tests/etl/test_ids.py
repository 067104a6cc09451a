"""IDs are text, exactly (issue 13, item 7): long numbers refused, zero padding honoured in every
file kind, and two rows never collapse into one ID silently."""

from __future__ import annotations

import pytest
import xlwt

from govdash.etl.numbers import PaddingFormat, padding_format, untrusted_number_text
from tests.conftest import rejections, rows, write_csv, write_xlsx
from tests.etl.corpus import SHEET_END, SHEET_START, _header_xml, _text, xlsx_from_xml
from tests.etl.ods import write_ods

HEADER = ["工单编号", "受理时间", "小区"]
TYPED_A, TYPED_B = 2025030100000123456, 2025030100000123457
LONG_ID_MESSAGE = "Excel 只保留 15 位有效数字"


def _ids(db) -> list[str]:
    return [ticket_id for (ticket_id,) in rows(db, "SELECT ticket_id FROM tickets ORDER BY 1")]


def test_two_long_numbers_typed_in_excel_are_refused_not_merged(tmp_path, load):
    # Excel keeps a double: both numbers become 2025030100000122880 in the file.
    assert float(TYPED_A) == float(TYPED_B)
    sheet = [
        HEADER,
        [float(TYPED_A), "2024-03-05 09:00", "锦绣花园"],
        [float(TYPED_B), "2024-03-06 09:00", "锦绣花园"],
        [str(TYPED_A + 2), "2024-03-07 09:00", "锦绣花园"],  # typed as text: exact
        ["GD-4", "2024-03-08 09:00", "锦绣花园"],
    ]
    report, db = load(write_xlsx(tmp_path / "in" / "热线.xlsx", {"工单": sheet}))

    file = report.files[0]
    assert (file.rows_loaded, file.rows_rejected, file.rows_inserted) == (2, 2, 2)
    assert _ids(db) == ["2025030100000123458", "GD-4"]
    refused = rejections(db)
    assert [(row, column) for _, _, row, column, _, _ in refused] == [
        (2, "工单编号"),
        (3, "工单编号"),
    ]
    for *_, raw, reason in refused:
        assert raw == "2.025030100000123E+18"
        assert LONG_ID_MESSAGE in reason and "文本" in reason
    assert "2025030100000122880" not in str(rows(db, "SELECT * FROM tickets"))


def test_a_long_number_in_a_csv_saved_by_excel_is_refused(tmp_path, load):
    # Excel writes what it shows: a 19-digit number in a General cell is 2.02503E+18.
    sheet = [
        HEADER,
        ["2.02503E+18", "2024-03-05 09:00", "锦绣花园"],
        ["GD-2", "2024-03-05 09:00", None],
    ]
    report, db = load(write_csv(tmp_path / "in" / "热线.csv", sheet, "utf-8-sig"))

    assert (report.files[0].rows_loaded, report.files[0].rows_rejected) == (1, 1)
    ((*_, raw, reason),) = rejections(db)
    assert raw == "2.02503E+18" and LONG_ID_MESSAGE in reason
    assert _ids(db) == ["GD-2"]


def test_digits_the_file_still_holds_are_recovered(tmp_path, load):
    """A program wrote the exact integer into the sheet XML: no double holds it, so the file
    still has the digits. An integer a double does hold exactly (…122880) may be a rounded
    one, and is refused."""
    body = (
        _header_xml(HEADER)
        + '<row r="2"><c r="A2"><v>2025030100000123456</v></c>'
        + _text("B2", "2024-03-05 09:00") + "</row>"
        + '<row r="3"><c r="A3"><v>2025030100000122880</v></c>'
        + _text("B3", "2024-03-05 09:00") + "</row>"
        + '<row r="4"><c r="A4" t="n"><v>123456789012345</v></c>'  # 15 digits: exact
        + _text("B4", "2024-03-05 09:00") + "</row>"
    )  # fmt: skip
    path = xlsx_from_xml(
        tmp_path / "in" / "系统导出.xlsx", "工单", [SHEET_START, body.encode(), SHEET_END]
    )
    report, db = load(path)

    assert _ids(db) == ["123456789012345", "2025030100000123456"]
    assert [(row, raw) for _, _, row, _, raw, _ in rejections(db)] == [(3, "2.025030100000123E+18")]
    assert report.files[0].rows_rejected == 1


PADDED = [124, 7, 35]
EXPECTED_PADDED = ["000007", "000035", "000124"]


def _padded_rows() -> list[list]:
    return [HEADER, *[[n, f"2024-03-0{i + 5} 09:00", "锦绣花园"] for i, n in enumerate(PADDED)]]


def test_a_zero_padded_xlsx_and_its_csv_give_the_same_ids(tmp_path, load, config):
    sheet = _padded_rows()
    xlsx = write_xlsx(
        tmp_path / "in" / "工单.xlsx",
        {"工单": sheet},
        number_formats={"工单": {f"A{r}": "000000" for r in range(2, 5)}},
    )
    # Excel's "Save as CSV" writes the cells as they are displayed.
    csv_rows = [sheet[0], *[[f"{row[0]:06d}", *row[1:]] for row in sheet[1:]]]
    csv = write_csv(tmp_path / "in2" / "工单.csv", csv_rows, "utf-8-sig")

    _, db = load(xlsx)
    assert _ids(db) == EXPECTED_PADDED
    report, _ = load(csv)
    assert (report.files[0].rows_inserted, report.files[0].rows_unchanged) == (0, 3)
    assert _ids(db) == EXPECTED_PADDED


def test_a_format_with_a_prefix_shows_the_prefix(tmp_path, load):
    sheet = [HEADER, [77, "2024-03-05 09:00", "锦绣花园"]]
    path = write_xlsx(
        tmp_path / "in" / "工单.xlsx", {"工单": sheet}, number_formats={"工单": {"A2": '"GD"0000'}}
    )
    _, db = load(path)
    assert _ids(db) == ["GD0077"]


def test_a_zero_padded_legacy_xls_gives_the_same_ids(tmp_path, load):
    path = tmp_path / "in" / "工单.xls"
    path.parent.mkdir(parents=True)
    workbook = xlwt.Workbook(encoding="utf-8")
    sheet = workbook.add_sheet("工单")
    padded = xlwt.easyxf(num_format_str="000000")
    # and a long number, refused as in .xlsx
    data = [*_padded_rows(), [float(TYPED_A), "2024-03-09 09:00", "锦绣花园"]]
    for r, row in enumerate(data):
        for c, value in enumerate(row):
            sheet.write(r, c, value, padded if r and c == 0 else xlwt.Style.default_style)
    workbook.save(str(path))

    report, db = load(path)
    assert _ids(db) == EXPECTED_PADDED
    assert [(row, raw) for _, _, row, _, raw, _ in rejections(db)] == [(5, "2.025030100000123E+18")]
    assert report.files[0].rows_rejected == 1


def test_a_zero_padded_ods_gives_the_same_ids(tmp_path, load):
    sheet = [*_padded_rows(), [float(TYPED_A), "2024-03-09 09:00", "锦绣花园"]]
    path = write_ods(
        tmp_path / "in" / "工单.ods", {"工单": sheet}, padded={"工单": {(1, 0), (2, 0), (3, 0)}}
    )

    _report, db = load(path)
    assert _ids(db) == EXPECTED_PADDED
    assert [(row, raw) for _, _, row, _, raw, _ in rejections(db)] == [(5, "2.025030100000123E+18")]


def test_rows_disagreeing_under_one_id_are_all_rejected_and_named(tmp_path, load):
    sheet = [
        HEADER,
        ["GD-1", "2024-03-05 09:00", "锦绣花园"],
        ["GD-2", "2024-03-05 10:00", "锦绣花园"],
        ["GD-1", "2024-03-09 09:00", "翠竹苑"],  # another ticket under the same number
        ["GD-3", "2024-03-05 11:00", "锦绣花园"],
    ]
    report, db = load(write_xlsx(tmp_path / "in" / "工单.xlsx", {"3月": sheet}))

    file = report.files[0]
    assert (file.rows_loaded, file.rows_rejected) == (2, 2)
    assert _ids(db) == ["GD-2", "GD-3"]
    assert [(row, raw) for _, _, row, _, raw, _ in rejections(db)] == [(2, "GD-1"), (4, "GD-1")]
    (duplicate,) = file.duplicates
    assert (duplicate.key, duplicate.places, duplicate.conflict) == (
        "GD-1",
        (("3月", 2), ("3月", 4)),
        True,
    )
    from govdash.etl.load import format_report

    assert "· GD-1：工作表“3月”第 2、4 行" in format_report(report)


def test_a_ticket_listed_again_in_a_later_sheet_loads_once_and_is_reported(tmp_path, load):
    march = [[*HEADER, "办结时间"], ["GD-1", "2024-03-30 09:00", "锦绣花园", None]]
    april = [[*HEADER, "办结时间"], ["GD-1", "2024-03-30 09:00", "锦绣花园", "2024-04-02 10:00"]]
    report, db = load(write_xlsx(tmp_path / "in" / "工单.xlsx", {"3月": march, "4月": april}))

    file = report.files[0]
    assert (file.rows_loaded, file.rows_rejected, file.rows_inserted) == (2, 0, 1)
    assert rows(db, "SELECT ticket_id, CAST(closed_at AS VARCHAR) FROM tickets") == [
        ("GD-1", "2024-04-02 10:00:00")
    ]
    (duplicate,) = file.duplicates
    assert (duplicate.places, duplicate.conflict) == ((("3月", 2), ("4月", 2)), False)


def test_survey_rows_disagreeing_under_one_id_are_rejected(tmp_path, load):
    sheet = [
        ["问卷编号", "调查批次", "小区", "总体满意度"],
        ["WJ1", "2024年度", "锦绣花园", 5],
        ["WJ1", "2024年度", "锦绣花园", 2],
        ["WJ2", "2024年度", "锦绣花园", 4],
        ["WJ2", "2024年度", "锦绣花园", 4],  # the same answer sheet typed twice
    ]
    report, db = load(write_csv(tmp_path / "in" / "问卷.csv", sheet, "gb18030"))

    assert [(row, raw) for _, _, row, _, raw, _ in rejections(db)] == [(2, "WJ1"), (3, "WJ1")]
    assert rows(db, "SELECT response_id FROM survey_responses") == [("WJ2",)]
    assert [(d.key, d.conflict) for d in report.files[0].duplicates] == [
        ("WJ1", True),
        ("WJ2", False),
    ]


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("000000", PaddingFormat("", 6, "")),
        ('"GD"0000', PaddingFormat("GD", 4, "")),
        ("\\G\\D00000", PaddingFormat("GD", 5, "")),
        ("000000;[Red]-000000", PaddingFormat("", 6, "")),
        ("[$-804]00000000", PaddingFormat("", 8, "")),
        ("0000号", PaddingFormat("", 4, "号")),
        ("0", None),
        ("0.00", None),
        ("#,##0", None),
        ("0%", None),
        ("yyyy-mm-dd", None),
        ("00:00", None),
        ("@", None),
        ("General", None),
    ],
)
def test_padding_formats(code, expected):
    assert padding_format(code) == expected


@pytest.mark.parametrize(
    ("literal", "expected"),
    [
        ("124", None),
        ("123456789012345", None),  # 15 digits: a double holds them
        ("45356.375", None),
        ("2.025030100000123e+18", "2.025030100000123E+18"),
        ("2.02503010000012E+18", "2.02503010000012E+18"),
        ("1234567890123456", "1.234567890123456E+15"),  # 16 digits: Excel keeps 15
        ("2025030100000123456", "2025030100000123456"),  # no double holds it: exact
        ("1e-05", None),
        ("text", None),
        # Past the largest double (openpyxl writes 1.7976931348623155e+308 so): as written.
        ("1.797693134862316E+308", "1.797693134862316E+308"),
        ("-1e999", "-1E999"),
        ("1" * 400, "1" * 400),
    ],
)
def test_untrusted_numbers(literal, expected):
    assert untrusted_number_text(literal) == expected


def test_padding_shows_only_whole_non_negative_numbers():
    padded = PaddingFormat("", 6, "")
    assert [padded.show(v) for v in (124.0, 0.0, 12.5, -3.0)] == ["000124", "000000", None, None]
