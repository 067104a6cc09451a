"""Exports: values and provenance read back, formulas neutralised, personal data refused."""

from __future__ import annotations

import io
import json
import struct
import unicodedata
from datetime import date, datetime
from pathlib import Path

import openpyxl
import pandas as pd
import plotly.graph_objects as go
import pytest

from govdash.analytics.charts.plots import bar_ranking
from govdash.analytics.charts.style import ChartContext
from govdash.analytics.reports import export
from govdash.analytics.reports.export import (
    COUNT,
    DATETIME,
    MONTH,
    ONE_DECIMAL,
    PERCENT,
    PERCENT_CHANGE,
    TWO_DECIMALS,
    ColumnFormat,
    ExportRecord,
    PersonalDataError,
    Provenance,
    assert_no_personal_data,
    column_format,
    export_file_name,
    figure_title,
    figure_to_image,
    localised_table,
    neutralise_cell,
    recorded_export,
    safe_file_stem,
    screen_values,
    to_csv_bytes,
    to_xlsx_bytes,
)

PROVENANCE = Provenance(
    filters_text="街道=锦江街道；社区=全部",
    sources=[
        "批次 3：工单_2024.csv（2026-11-20 10:00）",
        "批次 4：问卷_2024.xlsx（2026-11-21 09:30）",
    ],
    generated_at=datetime(2026, 11, 22, 8, 5),
    config_fingerprint="3f2a9c0d11be",
)
EXPECTED_LINES_ZH = [
    "筛选条件：街道=锦江街道；社区=全部",
    "数据来源：批次 3：工单_2024.csv（2026-11-20 10:00）",
    "数据来源：批次 4：问卷_2024.xlsx（2026-11-21 09:30）",
    "生成时间：2026-11-22 08:05",
    "配置指纹：3f2a9c0d11be",
]


def sample_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "小区": ["锦绣花园", "和平里", "=1+1"],
            "工单量": [120, 45, 3],
            "满意率": [0.925, 0.8, 1.0],
            "备注": ["+拨打", "  -减", "@sum"],
        }
    )


# --- provenance and neutralisation ---------------------------------------------------------


def test_provenance_lines_in_both_languages() -> None:
    assert PROVENANCE.lines("zh") == EXPECTED_LINES_ZH
    english = PROVENANCE.lines("en")
    assert english[0] == "Filters: 街道=锦江街道；社区=全部"
    assert english[-2] == "Generated at: 2026-11-22 08:05"
    bare = Provenance("", [], datetime(2026, 1, 2, 3, 4), "")
    assert bare.lines("zh") == [
        "筛选条件：未筛选",
        "数据来源：未记录",
        "生成时间：2026-01-02 03:04",
        "配置指纹：未记录",
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+8613800000000", "'+8613800000000"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ('   =HYPERLINK("x")', '\'   =HYPERLINK("x")'),
        ("锦绣花园", "锦绣花园"),
        ("a=b", "a=b"),
        ("", ""),
        (-5, -5),
        (3.5, 3.5),
        (None, None),
    ],
)
def test_neutralise_cell(value: object, expected: object) -> None:
    assert neutralise_cell(value) == expected


# --- CSV -----------------------------------------------------------------------------------


def test_csv_reads_back_with_values_and_provenance_footer() -> None:
    data = to_csv_bytes(sample_frame(), PROVENANCE, "zh")
    assert data.startswith(b"\xef\xbb\xbf"), "UTF-8 BOM so Excel reads Chinese"

    table = pd.read_csv(io.BytesIO(data), encoding="utf-8-sig", nrows=3)
    assert list(table.columns) == ["小区", "工单量", "满意率", "备注"]
    assert table["小区"].tolist() == ["锦绣花园", "和平里", "'=1+1"]
    assert table["工单量"].tolist() == [120, 45, 3]
    assert table["满意率"].tolist() == [0.925, 0.8, 1.0]
    assert table["备注"].tolist() == ["'+拨打", "'  -减", "'@sum"]

    lines = data.decode("utf-8-sig").splitlines()
    assert lines[4] == "", "a blank row separates the table from the provenance"
    footer = [line.strip('"') for line in lines[5:]]
    assert footer == ["# " + line for line in EXPECTED_LINES_ZH]


def test_csv_neutralises_categorical_and_header_text() -> None:
    frame = pd.DataFrame({"=类别": pd.Categorical(["=cmd|' /C calc'!A0", "电梯"]), "件数": [-1, 2]})
    table = pd.read_csv(io.BytesIO(to_csv_bytes(frame, PROVENANCE)), encoding="utf-8-sig", nrows=2)
    assert list(table.columns) == ["'=类别", "件数"]
    assert table["'=类别"].tolist() == ["'=cmd|' /C calc'!A0", "电梯"]
    assert table["件数"].tolist() == [-1, 2], "numbers are not text and stay as they are"


def test_csv_does_not_change_the_callers_frame() -> None:
    frame = sample_frame()
    to_csv_bytes(frame, PROVENANCE)
    pd.testing.assert_frame_equal(frame, sample_frame())


# --- XLSX ----------------------------------------------------------------------------------


def test_xlsx_reads_back_with_provenance_and_no_formulas() -> None:
    data = to_xlsx_bytes(sample_frame(), PROVENANCE, "zh", sheet_name="工单汇总")
    workbook = openpyxl.load_workbook(io.BytesIO(data))
    assert workbook.sheetnames == ["工单汇总", "说明"]
    sheet = workbook["工单汇总"]

    assert [cell.value for cell in sheet[1]] == ["小区", "工单量", "满意率", "备注"]
    assert sheet["A1"].font.bold
    assert sheet.freeze_panes == "A2"
    assert sheet.column_dimensions["A"].width >= 10, "CJK names get wide columns"
    assert [cell.value for cell in sheet[2]] == ["锦绣花园", 120, 0.925, "'+拨打"]
    assert sheet["A4"].value == "'=1+1"
    for row in sheet.iter_rows():
        for cell in row:
            assert cell.data_type != "f", f"{cell.coordinate} holds a formula"

    footer = [sheet.cell(row=row, column=1).value for row in range(6, 6 + len(EXPECTED_LINES_ZH))]
    assert sheet["A5"].value is None
    assert footer == EXPECTED_LINES_ZH

    about = workbook["说明"]
    about_lines = [row[0] for row in about.iter_rows(values_only=True)]
    assert about_lines == ["导出说明", *EXPECTED_LINES_ZH]


def test_xlsx_in_english_and_with_awkward_values() -> None:
    frame = pd.DataFrame(
        {
            "unit": ["A", None],
            "rate": [float("nan"), 0.5],
            "loaded_at": pd.to_datetime(["2024-03-05 14:30", None]),
        }
    )
    data = to_xlsx_bytes(frame, PROVENANCE, "en", sheet_name="a/b:c")
    workbook = openpyxl.load_workbook(io.BytesIO(data))
    assert workbook.sheetnames == ["a_b_c", "About"]
    sheet = workbook["a_b_c"]
    assert [cell.value for cell in sheet[2]] == ["A", None, datetime(2024, 3, 5, 14, 30)]
    assert [cell.value for cell in sheet[3]] == [None, 0.5, None]
    assert sheet.cell(row=5, column=1).value == "Filters: 街道=锦江街道；社区=全部"


def test_xlsx_refuses_more_rows_than_excel_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export, "EXCEL_MAX_ROWS", 8)
    with pytest.raises(ValueError, match="CSV"):
        to_xlsx_bytes(sample_frame(), PROVENANCE)  # 3 rows + 5 provenance lines + 2 spacer


# --- a report's formatting ---------------------------------------------------------------------

# What a trend query returns (code names), with values whose rounding is known by hand.
REPORT_ROWS = {
    "month": [datetime(2025, 2, 1), datetime(2025, 3, 1)],
    "tickets": [1234, 7],
    "response_median_minutes": [12.345, 7.96],
    "response_on_time_rate": [0.92549, 0.5],
    "change": [0.01234, -0.00004],  # a change of rates; the second rounds to 0.0%
    "is_small_sample": [True, False],
    "unit": ["东一小区锦绣花园", "A"],
}


def report_frame() -> pd.DataFrame:
    return localised_table(pd.DataFrame(REPORT_ROWS), "zh")


def display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def test_localised_table_names_columns_in_the_language_and_keeps_their_formats() -> None:
    frame = report_frame()
    assert list(frame.columns) == [
        "月份",
        "工单量",
        "首次响应中位数（分钟）",
        "及时响应率",
        "变化",
        "样本不足",
        "单位",
    ]
    english = localised_table(pd.DataFrame(REPORT_ROWS), "en", labels={"unit": "Compound"})
    assert english.columns[0] == "Month" and english.columns[-1] == "Compound"
    assert export.column_formats(english)["On-time response rate"] == PERCENT


def test_xlsx_is_formatted_as_a_report() -> None:
    data = to_xlsx_bytes(report_frame(), PROVENANCE, "zh", sheet_name="月度工单量")
    sheet = openpyxl.load_workbook(io.BytesIO(data))["月度工单量"]
    header = [cell.value for cell in sheet[1]]
    assert header[0] == "月份"
    assert sheet.freeze_panes == "A2"
    assert all(cell.font.bold and cell.fill.fgColor.rgb.endswith("1F4E79") for cell in sheet[1])

    # Months are real dates shown as 2025-03, not text and not a time of day.
    month = sheet["A3"]
    assert (month.value, month.number_format) == (datetime(2025, 3, 1), "yyyy-mm")
    # Counts are whole numbers with thousands separators.
    assert (sheet["B2"].value, sheet["B2"].number_format) == (1234, "#,##0")
    # Times are rounded to the one decimal the page shows, and stay numbers.
    assert (sheet["C2"].value, sheet["C2"].number_format) == (12.3, "#,##0.0")
    assert sheet["C3"].value == 8.0
    # Rates are fractions with a percent format: 92.5%, never text.
    assert (sheet["D2"].value, sheet["D2"].number_format) == (0.925, "0.0%")
    assert isinstance(sheet["D2"].value, float) and sheet["D3"].value == 0.5
    # A change carries its sign, and a change that rounds to nothing is 0, not −0.0.
    assert (sheet["E2"].value, sheet["E2"].number_format) == (0.012, "+0.0%;-0.0%;0.0%")
    assert sheet["E3"].value == 0 and str(sheet["E3"].value) != "-0.0"
    assert [sheet["F2"].value, sheet["F3"].value] == ["是", "否"]

    # Widths fit the widest of header and shown values; a CJK character counts two.
    widths = {
        cell.column_letter: sheet.column_dimensions[cell.column_letter].width for cell in sheet[1]
    }
    assert widths["C"] == display_width("首次响应中位数（分钟）") + 2
    assert widths["G"] == display_width("东一小区锦绣花园") + 2
    assert widths["A"] == 8 + 2, "a short column keeps the minimum of 8"


def test_xlsx_in_english_says_yes_and_no() -> None:
    frame = localised_table(pd.DataFrame({"is_overdue": [True, None, False]}), "en")
    sheet = openpyxl.load_workbook(io.BytesIO(to_xlsx_bytes(frame, PROVENANCE, "en"))).worksheets[0]
    assert [sheet.cell(row=r, column=1).value for r in (1, 2, 3, 4)] == [
        "Overdue",
        "yes",
        None,
        "no",
    ]


def test_csv_keeps_full_precision_and_says_months_and_booleans_as_the_page_does() -> None:
    data = to_csv_bytes(report_frame(), PROVENANCE, "zh")
    table = pd.read_csv(io.BytesIO(data), encoding="utf-8-sig", nrows=2, dtype=str)
    assert table["月份"].tolist() == ["2025-02", "2025-03"]
    assert table["首次响应中位数（分钟）"].tolist() == ["12.345", "7.96"]
    assert table["及时响应率"].tolist() == ["0.92549", "0.5"]
    assert table["样本不足"].tolist() == ["是", "否"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("response_on_time_rate", PERCENT),
        ("repeat_share", PERCENT),
        ("wilson_low", PERCENT),
        ("change", PERCENT_CHANGE),
        ("response_p90_minutes", ONE_DECIMAL),
        ("resolution_p25", ONE_DECIMAL),
        ("resolution_median_hours", ONE_DECIMAL),
        ("total", TWO_DECIMALS),
        ("callback_n", COUNT),
        ("tickets_with_caller", COUNT),
        ("month", MONTH),
        ("accepted_at", DATETIME),
        ("unit", None),
        ("rank", None),
    ],
)
def test_column_formats_follow_the_query_naming(name: str, expected: ColumnFormat | None) -> None:
    assert column_format(name) == expected


@pytest.mark.parametrize(
    ("fmt", "value", "text"),
    [
        (PERCENT, 0.92549, "92.5%"),
        (PERCENT_CHANGE, 0.0123, "+1.2%"),
        (ONE_DECIMAL, 1234.56, "1,234.6"),
        (COUNT, 1234567, "1,234,567"),
        (MONTH, date(2025, 3, 1), "2025-03"),
        (DATETIME, datetime(2025, 3, 5, 14, 30, 59), "2025-03-05 14:30"),
    ],
)
def test_a_format_writes_values_as_the_page_shows_them(
    fmt: ColumnFormat, value: object, text: str
) -> None:
    assert fmt.text(value) == text


def test_on_screen_values_are_percentages_and_never_minus_zero() -> None:
    values = screen_values(pd.Series([0.92549, -0.0004, None, 1]), PERCENT)
    assert values.iloc[0] == pytest.approx(92.549), "the format rounds; the value keeps its digits"
    assert values.iloc[1] == 0 and str(values.iloc[1]) == "0.0"
    assert pd.isna(values.iloc[2]) and values.iloc[3] == 100
    assert screen_values(pd.Series([-0.04, -0.06]), ONE_DECIMAL).tolist() == [0.0, -0.06]


# --- file names ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "period", "suffix", "expected"),
    [
        ("月度工单量", "2025年3月", "xlsx", "月度工单量_2025年3月.xlsx"),
        ("Monthly tickets", "2025-03", "csv", "Monthly tickets_2025-03.csv"),
        (
            "首次响应 P50 / P90",
            "2025-01-01 至 2025-03-31",
            "png",
            "首次响应 P50 _ P90_2025-01-01 至 2025-03-31.png",
        ),
        ('a<b>:"c"|d?*', "", "svg", "a_b_c_d.svg"),
        ("con", "", "csv", "_con.csv"),
        ("trailing. ", "", "csv", "trailing.csv"),
        ("", "", "xlsx", "export.xlsx"),
    ],
)
def test_file_names_are_safe_on_windows(
    title: str, period: str, suffix: str, expected: str
) -> None:
    assert export_file_name(title, period, suffix) == expected


def test_a_long_title_is_cut_to_a_name_windows_accepts() -> None:
    stem = safe_file_stem("很长的标题" * 60)
    assert len(stem) == export.MAX_FILE_STEM
    assert not any(ch in stem for ch in '<>:"/\\|?*')


def test_a_figures_title_as_plain_text() -> None:
    fig = go.Figure(layout={"title": {"text": "月度<br>工单量  趋势"}})
    assert figure_title(fig) == "月度 工单量 趋势"
    assert figure_title(None) == ""


# --- personal data -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "column",
    [
        "caller_hash",
        "phone",
        "name",
        "contact_name",
        "id_number",
        "room",
        "Phone ",
        "联系电话",
        "业主电话",
    ],
)
def test_personal_columns_are_refused(column: str) -> None:
    frame = pd.DataFrame({"小区": ["锦绣花园"], column: ["x"]})
    with pytest.raises(PersonalDataError, match="个人信息"):
        assert_no_personal_data(frame)
    for build in (
        lambda: to_csv_bytes(frame, PROVENANCE),
        lambda: to_xlsx_bytes(frame, PROVENANCE),
    ):
        with pytest.raises(PersonalDataError):
            build()


@pytest.mark.parametrize(
    ("cell", "kind"),
    [
        ("请回电 13812345678", "手机号"),
        ("51010719900101123X", "身份证号"),
        ("身份证 510107199001011234 已核", "身份证号"),
    ],
)
def test_personal_values_are_refused_without_echoing_them(cell: str, kind: str) -> None:
    frame = pd.DataFrame({"备注": ["正常", cell]})
    with pytest.raises(PersonalDataError) as raised:
        to_csv_bytes(frame, PROVENANCE)
    message = str(raised.value)
    assert kind in message and "第 2 行" in message and "备注" in message
    assert "1381234" not in message and "5101071990" not in message


def test_phone_number_stored_as_integer_is_refused() -> None:
    with pytest.raises(PersonalDataError):
        assert_no_personal_data(pd.DataFrame({"号码": [13812345678]}))


def test_ordinary_tables_pass_the_guard() -> None:
    frame = pd.DataFrame(
        {
            "工单编号": ["GD202403150001", "20240315123456789012"],  # long ids are not phones
            "小区名称": ["锦绣花园", "和平里"],
            "工单量": [12345678901, 3],  # a count, not text
            "满意率": [0.9, 0.8],
            "是否联系": [True, False],
        }
    )
    frame["工单量"] = frame["工单量"].astype("float64")
    assert_no_personal_data(frame)


# --- images --------------------------------------------------------------------------------

needs_chromium = pytest.mark.skipif(
    not export.image_export_available(),
    reason="Chromium is not installed (apt-get install chromium fonts-noto-cjk)",
)


def ranking_figure() -> go.Figure:
    return bar_ranking(
        pd.DataFrame({"unit": ["锦绣花园", "和平里", "光明院落"], "rate": [0.9, 0.7, 0.8]}),
        "unit",
        "rate",
        title="问卷满意率",
        context=ChartContext("2024年", 321, "街道=锦江街道"),
        percent=True,
    )


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@needs_chromium
def test_png_export_decodes_and_is_stamped() -> None:
    fig = ranking_figure()
    before = fig.to_dict()
    data = figure_to_image(fig, "png", PROVENANCE, "zh")
    width, height = png_size(data)
    stamped_height = export.with_provenance_footer(fig, PROVENANCE).layout.height
    assert (width, height) == (2 * export.IMAGE_WIDTH, 2 * stamped_height)
    assert fig.to_dict() == before, "the caller's figure is not changed"
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - PIL is optional; IHDR was checked above
        return
    image = Image.open(io.BytesIO(data))
    image.load()
    assert image.size == (width, height)
    # A light template: the top-left corner is white, not the black of "streamlit".
    assert image.convert("RGB").getpixel((5, 5)) == (255, 255, 255)


@needs_chromium
def test_svg_export_carries_the_provenance_text() -> None:
    data = figure_to_image(ranking_figure(), "svg", PROVENANCE, "zh")
    text = data.decode("utf-8")
    assert "<svg" in text
    for line in EXPECTED_LINES_ZH:
        assert line in text
    assert "统计期：2024年" in text and "n = 321" in text


def test_footer_is_added_to_a_copy() -> None:
    fig = ranking_figure()
    stamped = export.with_provenance_footer(fig, PROVENANCE, "en")
    assert len(fig.layout.annotations) == 0
    footer = stamped.layout.annotations[-1].text
    assert footer.split("<br>") == PROVENANCE.lines("en")
    assert stamped.layout.height > (fig.layout.height or 0)
    assert stamped.layout.margin.b > 70


def test_image_export_refuses_personal_data_before_rendering() -> None:
    fig = go.Figure(go.Bar(x=["13812345678"], y=[1]))
    with pytest.raises(PersonalDataError):
        figure_to_image(fig, "png", PROVENANCE)


def test_missing_browser_is_a_clear_error_not_a_download(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export, "image_export_available", lambda: False)
    monkeypatch.setattr(export, "_RENDERER", export._ImageRenderer())
    with pytest.raises(export.ImageExportError, match="Chromium"):
        figure_to_image(ranking_figure(), "svg", PROVENANCE, "zh")


# --- who exported what ---------------------------------------------------------------------------


def test_an_export_is_recorded_when_built_and_a_refused_one_is_not(tmp_path: Path) -> None:
    from govdash.core.audit import AuditLog

    log = AuditLog(tmp_path / "audit.sqlite3")
    frame = sample_frame()
    record = ExportRecord(
        "王芳",
        "local",
        "monthly_volume",
        "csv",
        PROVENANCE.filters_text,
        len(frame),
        "community:东社区",
        "月度工单量_2025年3月.csv",
    )
    build = recorded_export(lambda: to_csv_bytes(frame, PROVENANCE, "zh"), record, log)
    assert log.events().empty, "nothing is recorded before the file is built"
    data = build()
    assert data == to_csv_bytes(frame, PROVENANCE, "zh")
    events = log.events()
    assert events[["actor", "action", "method", "target"]].values.tolist() == [
        ["王芳", "export", "local", "monthly_volume.csv"]
    ]
    assert json.loads(events["detail"].iloc[0]) == {
        "name": "monthly_volume",
        "format": "csv",
        "filters": "街道=锦江街道；社区=全部",
        "rows": 3,
        "bytes": len(data),
        "scope": "community:东社区",
        "file": "月度工单量_2025年3月.csv",
    }
    personal = pd.DataFrame({"联系电话": ["13800000000"]})
    refused = recorded_export(lambda: to_csv_bytes(personal, PROVENANCE, "zh"), record, log)
    with pytest.raises(PersonalDataError):
        refused()
    assert len(log.events()) == 1
