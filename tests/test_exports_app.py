"""What users download, through Streamlit's AppTest: every file the pages offer is named and
headed in the page language, the XLSX is formatted as a report, its sources name only the load
batches behind it, and the on-screen tables are rounded as the files are.

Download buttons build their file when clicked (a callable); the test catches each callable as
the page registers it, with its file name, and builds the file itself. Expected figures are
computed here from the generated rows with pandas (tests/analytics/warehouse_data.py).
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import openpyxl
import pandas as pd
import pytest
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Dataframe

from govdash.core.config import load_config
from govdash.core.warehouse import connect_readonly
from govdash.etl.demo import write_demo
from govdash.etl.load import load_paths
from tests.analytics.warehouse_data import (
    REGISTER,
    REGISTER_HEADER,
    SURVEY_HEADER,
    TICKET_HEADER,
    build,
    clean_environment,
    expected_tickets,
    generate_tickets,
    select,
    survey_rows,
)
from tests.conftest import write_csv, write_xlsx

ROOT = Path(__file__).resolve().parent.parent
PAGES = ("overview", "response", "satisfaction", "effect", "evaluation", "data", "admin")
MARCH = {"period": "month", "start": "2025-03-01", "end": "2025-03-31"}
CJK = re.compile(r"[\u4e00-\u9fff]")
CODE_WORD = re.compile(r"\b[a-z]+_[a-z]+")  # monthly_volume, red_black_list …
CODE_NAME = re.compile(r"[a-z][a-z0-9_]*")
UNSAFE = re.compile(r'[<>:"/\\|?*\x00-\x1f]')
IMAGES = (".png", ".svg", ".pdf")
TICKET_FILES = ("工单_2024-12至2025-02.csv", "工单_2025-03.csv")

pytestmark = pytest.mark.usefixtures("fresh_streamlit_caches")

Build = Callable[[], Any]


# --- catching the downloads ----------------------------------------------------------------------


@pytest.fixture
def offered(monkeypatch: pytest.MonkeyPatch) -> dict[str, tuple[str, Build]]:
    """file id → (file name, the callable that builds the file), as pages register them."""
    found: dict[str, tuple[str, Build]] = {}
    original = MediaFileManager.add_deferred

    def spy(self: MediaFileManager, data: Build, mimetype: Any, coordinates: str, **kw: Any) -> str:
        file_id = original(self, data, mimetype, coordinates, **kw)
        found[file_id] = (str(kw.get("file_name") or ""), data)
        return file_id

    monkeypatch.setattr(MediaFileManager, "add_deferred", spy)
    return found


def downloads(app: AppTest, offered: dict[str, tuple[str, Build]]) -> dict[str, tuple[str, Build]]:
    """The page's download buttons: key → (file name, build)."""
    return {str(b.key): offered[b.proto.deferred_file_id] for b in app.download_button}


def _app(db: Path, monkeypatch: pytest.MonkeyPatch, params: dict[str, str]) -> AppTest:
    monkeypatch.setenv("GOVDASH_DB", str(db))
    monkeypatch.delenv("GOVDASH_CONFIG", raising=False)
    app = AppTest.from_file(str(ROOT / "govdash" / "web" / "app.py"), default_timeout=180)
    for key, value in params.items():
        app.query_params[key] = value
    return app.run()


def _page(app: AppTest, page: str) -> AppTest:
    app.switch_page(f"views/{page}.py").run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def xlsx_sheet(data: bytes) -> Any:
    return openpyxl.load_workbook(io.BytesIO(data)).worksheets[0]


def file_headers(name: str, data: bytes) -> list[str]:
    if name.endswith(".csv"):
        return next(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    return [str(cell.value) for cell in xlsx_sheet(data)[1] if cell.value is not None]


def shown_headers(frame: Dataframe) -> list[str]:
    """The headers a reader sees: a column_config label where there is one, else the name."""
    config = json.loads(frame.proto.columns or "{}")
    return [str(config.get(str(c), {}).get("label") or c) for c in frame.value.columns]


def hidden_columns(frame: Dataframe) -> list[str]:
    """Columns of the table that its column_config hides (a None config hides a column)."""
    config = json.loads(frame.proto.columns or "{}")
    return [str(c) for c in frame.value.columns if config.get(str(c), {}).get("hidden")]


def display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


# --- every download of every page, in both languages -------------------------------------------


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo warehouse: every page has something to show (evaluation, effect, rejected rows)."""
    folder = tmp_path_factory.mktemp("exports-demo")
    db = folder / "warehouse.duckdb"
    with clean_environment():
        report = load_paths(write_demo(folder / "demo"), db, load_config())
    assert not [f.error for f in report.files if f.error]
    return db


def walk(
    db: Path, monkeypatch: pytest.MonkeyPatch, offered: dict[str, tuple[str, Build]], lang: str
) -> tuple[dict[str, list[str]], dict[str, tuple[str, Build]]]:
    """Every page of 2025: on-screen headers per page, and every download (key → name, build)."""
    app = _app(
        db,
        monkeypatch,
        {"period": "year", "start": "2025-01-01", "end": "2025-12-31", "lang": lang},
    )
    tables: dict[str, list[str]] = {}
    files: dict[str, tuple[str, Build]] = {}
    for page in PAGES:
        _page(app, page)
        tables[page] = [h for frame in app.dataframe for h in shown_headers(frame)]
        hidden = {str(frame.key): hidden_columns(frame) for frame in app.dataframe}
        assert not any(hidden.values()), f"{page}: columns hidden on screen: {hidden}"
        files |= downloads(app, offered)
    return tables, files


def test_every_download_in_chinese_is_named_and_headed_in_chinese(
    demo_db: Path, monkeypatch: pytest.MonkeyPatch, offered: dict[str, tuple[str, Build]]
) -> None:
    tables, files = walk(demo_db, monkeypatch, offered, "zh")
    assert len(files) >= 60, sorted(files)  # every page offers its downloads
    for page, headers in tables.items():
        english = [h for h in headers if not CJK.search(h)]
        assert english == [], f"{page}: on-screen headers not in Chinese: {english}"
    for key, (name, build_file) in files.items():
        stem, _, suffix = name.rpartition(".")
        assert suffix in ("png", "svg", "csv", "xlsx", "pdf", "docx"), (key, name)
        # What the file holds comes first (then the period): that part is Chinese.
        assert CJK.search(stem.split("_")[0]), f"{key}: the file name {name!r} is not Chinese"
        assert not CODE_WORD.search(stem), f"{key}: {name!r} carries a code name"
        assert not UNSAFE.search(name) and name == name.strip(), f"{key}: {name!r}"
        if name.endswith((*IMAGES, ".docx")) or key.startswith("template_"):
            continue  # images need Chromium; templates are the loader's own headers; the
            # bulletin is a document (tests/test_bulletin.py reads it)
        headers = file_headers(name, build_file())
        english = [h for h in headers if not CJK.search(h)]
        assert headers and english == [], f"{key} ({name}): headers not in Chinese: {english}"


def test_every_download_in_english_is_named_and_headed_in_english(
    demo_db: Path, monkeypatch: pytest.MonkeyPatch, offered: dict[str, tuple[str, Build]]
) -> None:
    tables, files = walk(demo_db, monkeypatch, offered, "en")
    for page, headers in tables.items():
        code = [h for h in headers if CODE_NAME.fullmatch(h)]
        assert code == [], f"{page}: on-screen headers are code names: {code}"
    for key, (name, build_file) in files.items():
        if key.startswith("bulletin_"):
            # The bulletin is the street's Chinese document (通报) in either language.
            assert name.endswith(("月通报.docx", "月通报.pdf")), (key, name)
            continue
        stem = name.rpartition(".")[0]
        assert re.search(r"[A-Za-z]{3}", stem) and not CODE_WORD.search(stem), (key, name)
        assert not UNSAFE.search(name), (key, name)
        if name.endswith((*IMAGES, ".docx")) or key.startswith(("template_", "evaluation_report_")):
            continue  # the report's block columns are the indicator system's own (Chinese) names
        headers = file_headers(name, build_file())
        wrong = [h for h in headers if CODE_NAME.fullmatch(h) or CJK.search(h)]
        assert headers and wrong == [], f"{key} ({name}): headers not in English: {wrong}"


# --- a warehouse of two ticket files: formats, values and sources ----------------------------------


@pytest.fixture(scope="module")
def two_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """Register, tickets of December–February and of March in two files, and the surveys."""
    folder = tmp_path_factory.mktemp("exports-two-files")
    tickets = generate_tickets()
    early = [t.row() for t in tickets if t.accepted_at < datetime(2025, 3, 1)]
    late = [t.row() for t in tickets if t.accepted_at >= datetime(2025, 3, 1)]
    files = [
        write_xlsx(folder / "台账.xlsx", {"台账": [REGISTER_HEADER, *[list(r) for r in REGISTER]]}),
        write_csv(folder / TICKET_FILES[0], [TICKET_HEADER, *early], "utf-8-sig"),
        write_csv(folder / TICKET_FILES[1], [TICKET_HEADER, *late], "utf-8-sig"),
        write_xlsx(folder / "问卷.xlsx", {"问卷": [SURVEY_HEADER, *survey_rows()]}),
    ]
    return build(folder, files), expected_tickets(tickets)


def batch_lines(db: Path, *files: str) -> list[str]:
    """The provenance lines: the warehouse snapshot the export was made from, then these
    files' batches in batch order."""
    con = connect_readonly(db)
    try:
        rows = con.execute(
            "SELECT batch_id, file_name, loaded_at FROM load_batches ORDER BY batch_id"
        ).fetchall()
        snapshot, made = con.execute(
            "SELECT snapshot_id, snapshot_time FROM lake.snapshots() "
            "WHERE snapshot_id = (SELECT max(snapshot_id) FROM lake.snapshots())"
        ).fetchone()
    finally:
        con.close()
    made = made.astimezone().replace(tzinfo=None)
    return [f"数据来源：数据快照 #{snapshot}（{made:%Y-%m-%d %H:%M}）"] + [
        f"数据来源：批次 {batch}：{name}（{loaded_at:%Y-%m-%d %H:%M}）"
        for batch, name, loaded_at in rows
        if name in files
    ]


def footer(sheet: Any, label: str) -> list[str]:
    return [
        str(row[0])
        for row in sheet.iter_rows(values_only=True)
        if row and isinstance(row[0], str) and row[0].startswith(f"{label}：")
    ]


def test_the_monthly_xlsx_reads_back_as_a_report(
    two_files: tuple[Path, pd.DataFrame],
    monkeypatch: pytest.MonkeyPatch,
    offered: dict[str, tuple[str, Build]],
) -> None:
    db, frame = two_files
    march = select(frame, date(2025, 3, 1), date(2025, 3, 31))
    judged = march[march.response_status.isin(["on_time", "late"])]
    on_time = float((judged.response_status == "on_time").mean())
    median = float(march.response_minutes.median())
    app = _app(db, monkeypatch, MARCH)
    files = downloads(app, offered)
    name, build_file = files["download_monthly_volume_xlsx"]
    # A trend holds the months up to March (from the first month with data): named after them.
    assert name == "月度工单量_2024-12–2025-03.xlsx"
    sheet = xlsx_sheet(build_file())
    assert sheet.title == "月度工单量"
    header = [cell.value for cell in sheet[1]]
    column = {title: index + 1 for index, title in enumerate(header) if title}
    row = next(
        r for r in range(2, sheet.max_row + 1) if sheet.cell(r, 1).value == datetime(2025, 3, 1)
    )

    def cell(title: str) -> Any:
        return sheet.cell(row, column[title])

    assert cell("月份").number_format == "yyyy-mm"
    assert (cell("工单量").value, cell("工单量").number_format) == (len(march), "#,##0")
    assert cell("及时响应率").value == pytest.approx(round(on_time, 3), abs=1e-12)
    assert cell("及时响应率").number_format == "0.0%"
    assert cell("首次响应中位数（分钟）").value == pytest.approx(round(median, 1), abs=1e-12)
    assert cell("首次响应中位数（分钟）").number_format == "#,##0.0"
    assert sheet.freeze_panes == "A2" and sheet["A1"].font.bold
    width = sheet.column_dimensions[
        openpyxl.utils.get_column_letter(column["首次响应中位数（分钟）"])
    ]
    assert width.width == display_width("首次响应中位数（分钟）") + 2


def test_sources_name_only_the_batches_a_figure_used(
    two_files: tuple[Path, pd.DataFrame],
    monkeypatch: pytest.MonkeyPatch,
    offered: dict[str, tuple[str, Build]],
) -> None:
    db, _ = two_files
    app = _app(db, monkeypatch, MARCH)
    files = downloads(app, offered)
    # 红黑榜: the units come from the register, their figures from March's tickets (no survey
    # wave in March): not the December–February file, not the survey file.
    name, build_file = files["download_red_black_list_xlsx"]
    assert name == "红黑榜（社区）_2025年3月.xlsx"
    assert footer(xlsx_sheet(build_file()), "数据来源") == batch_lines(
        db, "台账.xlsx", TICKET_FILES[1]
    )
    csv_name, build_csv = files["download_red_black_list_csv"]
    assert csv_name == "红黑榜（社区）_2025年3月.csv"
    lines = build_csv().decode("utf-8-sig").splitlines()
    assert [line.strip('"# ') for line in lines if "数据来源" in line] == batch_lines(
        db, "台账.xlsx", TICKET_FILES[1]
    )

    # The response page's backlog holds tickets still open from earlier months too.
    _page(app, "response")
    files = downloads(app, offered)
    _, build_file = files["download_repeat_requests_xlsx"]
    assert footer(xlsx_sheet(build_file()), "数据来源") == batch_lines(db, TICKET_FILES[1])
    _, build_file = files["download_backlog_aging_xlsx"]
    assert footer(xlsx_sheet(build_file()), "数据来源") == batch_lines(db, *TICKET_FILES)


def test_a_page_looks_up_its_sources_only_when_a_file_is_made(
    two_files: tuple[Path, pd.DataFrame],
    monkeypatch: pytest.MonkeyPatch,
    offered: dict[str, tuple[str, Build]],
) -> None:
    """The batches behind a download (a scan of the period's rows, ~0.3 s a page at a city's
    size) are looked up when its button is clicked, not on every page run; the file still
    names them."""
    import govdash.analytics.queries.loads as loads

    calls: list[object] = []
    real = loads._SOURCES["tickets"]

    def counted(*args: Any) -> Any:
        calls.append(args)
        return real(*args)

    monkeypatch.setitem(loads._SOURCES, "tickets", counted)
    db, _ = two_files
    app = _page(_app(db, monkeypatch, MARCH), "response")
    files = downloads(app, offered)
    assert "download_repeat_requests_xlsx" in files
    assert calls == []
    _, build_file = files["download_repeat_requests_xlsx"]
    assert footer(xlsx_sheet(build_file()), "数据来源") == batch_lines(db, TICKET_FILES[1])
    assert len(calls) == 1


# The trend charts of each page: (page, download key, file title). Each shows the months up to
# the selected period's end, so its rows come from every ticket file of those months.
TREND_DOWNLOADS = (
    ("overview", "monthly_volume", "月度工单量"),
    ("overview", "monthly_rates", "月度及时率与三率"),
    ("response", "response_percentiles", "响应与办结时长P50和P90"),
    ("response", "on_time_rates", "及时响应率与按时办结率"),
    ("satisfaction", "callback_satisfaction", "回访满意度"),
)


def test_trend_downloads_name_the_batches_of_the_whole_window(
    two_files: tuple[Path, pd.DataFrame],
    monkeypatch: pytest.MonkeyPatch,
    offered: dict[str, tuple[str, Build]],
) -> None:
    """March selected: its own figures come from the March file alone, but a trend chart shows
    December–March, so its files name both ticket files (and neither the register nor the
    survey file), are stamped with the window and write its months as 2024-12 … 2025-03."""
    db, frame = two_files
    both = batch_lines(db, *TICKET_FILES)
    assert len(both) == 3 and batch_lines(db, TICKET_FILES[1]) == [both[0], both[2]]
    months = ["2024-12", "2025-01", "2025-02", "2025-03"]
    counts = {
        month: len(rows) for month, rows in frame.groupby(frame.accepted_at.dt.strftime("%Y-%m"))
    }
    assert sorted(counts) == months  # the data really spans the window's four months
    app = _app(db, monkeypatch, MARCH)
    seen = set()
    for page, key, title in TREND_DOWNLOADS:
        if page != "overview":
            _page(app, page)
        files = downloads(app, offered)
        # On screen too, the trend tables' months read 2025-03.
        monthly = [d for d in app.dataframe if "月份" in d.value.columns]
        assert monthly, page
        for table in monthly:
            config = json.loads(table.proto.columns)
            assert config["月份"]["type_config"]["format"] == "YYYY-MM", page
        name, build_xlsx = files[f"download_{key}_xlsx"]
        assert name == f"{title}_2024-12–2025-03.xlsx", key
        sheet = xlsx_sheet(build_xlsx())
        assert footer(sheet, "数据来源") == both, key
        assert footer(sheet, "筛选条件")[0].startswith("筛选条件：2024-12-01 至 2025-03-31"), key
        # The month column: real dates shown as yyyy-mm, one row per month of the window.
        header = [cell.value for cell in sheet[1]]
        column = header.index("月份") + 1
        cells = [sheet.cell(row, column) for row in range(2, 2 + len(months))]
        dates = [datetime(2024, 12, 1), *(datetime(2025, m, 1) for m in (1, 2, 3))]
        assert [c.value for c in cells] == dates, key
        assert {c.number_format for c in cells} == {"yyyy-mm"}, key
        csv_name, build_csv = files[f"download_{key}_csv"]
        assert csv_name == f"{title}_2024-12–2025-03.csv", key
        lines = build_csv().decode("utf-8-sig").splitlines()
        table = [line for line in lines if line and not line.lstrip('"').startswith("#")]
        rows = list(csv.DictReader(table))
        assert [row["月份"] for row in rows] == months, key
        assert [line.strip('"# ') for line in lines if "数据来源" in line] == both, key
        if key == "monthly_volume":
            assert [int(row["工单量"]) for row in rows] == [counts[m] for m in months]
        seen.add(key)
    assert seen == {key for _, key, _ in TREND_DOWNLOADS}


def test_survey_downloads_name_the_survey_file(
    two_files: tuple[Path, pd.DataFrame],
    monkeypatch: pytest.MonkeyPatch,
    offered: dict[str, tuple[str, Build]],
) -> None:
    db, _ = two_files
    spring = {"period": "quarter", "start": "2025-04-01", "end": "2025-06-30"}
    app = _page(_app(db, monkeypatch, spring), "satisfaction")
    files = downloads(app, offered)
    name, build_file = files["download_survey_item_rates_xlsx"]
    assert name == "“总体满意度”满意率（小区）_2025年第2季度.xlsx"
    sheet = xlsx_sheet(build_file())
    assert footer(sheet, "数据来源") == batch_lines(db, "台账.xlsx", "问卷.xlsx")
    header = [cell.value for cell in sheet[1]]
    rate = sheet.cell(2, header.index("满意率") + 1)
    assert rate.number_format == "0.0%" and isinstance(rate.value, float)
    small = {sheet.cell(r, header.index("样本不足") + 1).value for r in range(2, 5)}
    assert small <= {"是", "否"} and small


def test_on_screen_unit_table_is_headed_and_rounded_as_the_page_reads(
    two_files: tuple[Path, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    db, frame = two_files
    app = _app(db, monkeypatch, MARCH)
    table = next(d for d in app.dataframe if d.key == "unit_table")
    config = json.loads(table.proto.columns)
    assert shown_headers(table)[:5] == ["社区", "上级单位", "户数", "工单量", "每百户工单量"]
    assert config["response_on_time_rate"]["label"] == "及时响应率"
    assert config["response_on_time_rate"]["type_config"]["format"] == "%.1f%%"
    assert config["response_median_minutes"]["type_config"]["format"] == "%.1f"
    assert config["tickets"]["type_config"]["format"] == "localized"
    march = select(frame, date(2025, 3, 1), date(2025, 3, 31))
    shown = table.value.set_index("unit")
    for community, rows in march.groupby("community"):
        judged = rows[rows.response_status.isin(["on_time", "late"])]
        percent = 100 * float((judged.response_status == "on_time").mean())
        assert shown.loc[community, "response_on_time_rate"] == pytest.approx(percent), community
        assert shown.loc[community, "tickets"] == len(rows)


def test_the_chart_numbers_on_screen_are_percentages(
    two_files: tuple[Path, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    db, frame = two_files
    app = _app(db, monkeypatch, MARCH)
    # The numbers behind the monthly charts (plain tables carry no key in AppTest).
    table = next(d for d in app.dataframe if {"月份", "及时响应率"} <= set(d.value.columns))
    config = json.loads(table.proto.columns)
    assert config["及时响应率"]["type_config"]["format"] == "%.1f%%"
    assert config["月份"]["type_config"]["format"] == "YYYY-MM"
    march = select(frame, date(2025, 3, 1), date(2025, 3, 31))
    judged = march[march.response_status.isin(["on_time", "late"])]
    row = table.value[table.value["月份"] == pd.Timestamp("2025-03-01")].iloc[0]
    assert row["及时响应率"] == pytest.approx(
        100 * float((judged.response_status == "on_time").mean())
    )
