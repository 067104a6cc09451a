"""LibreOffice and WPS users (issue 13, item 8): .ods loads as .xlsx does, a folder's summary
names every file it left out, and files re-saved by a real LibreOffice load with the same figures."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import datetime
from pathlib import Path

import pytest

from govdash.core.config import load_config
from govdash.etl.load import format_report, load_paths
from tests.conftest import rows, write_xlsx
from tests.etl.ods import write_ods
from tests.etl.test_cli import run_cli

# A title row, a two-row header with 时间节点 merged over three columns, 小区 merged over two
# data rows, and a padded 工单编号 column: what a clerk's monthly workbook looks like.
TITLE = ["2024年3月锦绣社区工单台账", None, None, None, None, None]
PARENT = ["工单编号", "小区", "问题类别", "时间节点", None, None]
CHILD = [None, None, None, "受理时间", "首次响应时间", "办结时间"]
DATA = [
    [101, "锦绣花园", "水电维修", datetime(2024, 3, 5, 9), datetime(2024, 3, 5, 9, 20), datetime(2024, 3, 5, 15)],
    [102, None, "电梯", datetime(2024, 3, 6, 10), datetime(2024, 3, 6, 10, 5), None],
    [103, "翠竹苑", "漏水", datetime(2024, 3, 7, 8, 30), None, datetime(2024, 3, 9, 8, 30)],
    [104, "翠竹苑", "电梯", datetime(2024, 3, 8, 8, 30), None, datetime(2024, 3, 8, 8)],  # closed first
]  # fmt: skip
REGISTER = [
    ["社区", "小区名称", "小区类型", "户数", "物业企业"],
    ["锦绣社区", "锦绣花园", "商品房物管小区", 320, "蓝天物业"],
    ["锦绣社区", "翠竹苑", "老旧自治院落", 86, "无"],
]
SHEET = [TITLE, PARENT, CHILD, *DATA]
TICKETS_SQL = """SELECT ticket_id, compound, category, CAST(accepted_at AS VARCHAR),
    CAST(first_response_at AS VARCHAR), CAST(closed_at AS VARCHAR), community, property_company
    FROM tickets ORDER BY ticket_id"""
EXPECTED_TICKETS = [
    ("000101", "锦绣花园", "水电维修", "2024-03-05 09:00:00", "2024-03-05 09:20:00",
     "2024-03-05 15:00:00", "锦绣社区", "蓝天物业"),
    ("000102", "锦绣花园", "电梯", "2024-03-06 10:00:00", "2024-03-06 10:05:00", None,
     "锦绣社区", "蓝天物业"),
    ("000103", "翠竹苑", "房屋渗漏", "2024-03-07 08:30:00", None, "2024-03-09 08:30:00",
     "锦绣社区", None),
]  # fmt: skip


def _figures(db: Path) -> dict[str, list[tuple]]:
    return {
        "tickets": rows(db, TICKETS_SQL),
        "compounds": rows(db, "SELECT community, compound, households FROM compounds ORDER BY 2"),
        "rejected": rows(db, "SELECT sheet, row_number, column_name FROM rejected_rows ORDER BY 2"),
    }


def _xlsx(path: Path, merged_data: bool = True) -> Path:
    sheet = [list(row) for row in SHEET]
    merges = ["A1:F1", "D2:F2", "A2:A3", "B2:B3", "C2:C3"]
    if merged_data:
        merges.append("B4:B5")
    else:
        sheet[4][1] = "锦绣花园"
    return write_xlsx(
        path,
        {"3月": sheet, "台账": REGISTER},
        merges={"3月": merges},
        number_formats={"3月": {f"A{r}": "000000" for r in range(4, 8)}},
    )


def _ods(path: Path) -> Path:
    spans = [(0, 0, 1, 6), (1, 3, 1, 3), (1, 0, 2, 1), (1, 1, 2, 1), (1, 2, 2, 1), (3, 1, 2, 1)]
    sheet = [list(row) for row in SHEET]
    sheet[4][1] = "锦绣花园"  # covered by the merge: written into the merged range's top cell
    return write_ods(
        path,
        {"3月": sheet, "台账": REGISTER},
        padded={"3月": {(r, 0) for r in range(3, 7)}},
        merges={"3月": spans},
    )


def test_an_ods_workbook_loads_as_the_same_xlsx_does(tmp_path, config):
    figures = {}
    for name, build in (("xlsx", _xlsx), ("ods", _ods)):
        db = tmp_path / name / "warehouse.duckdb"
        report = load_paths([build(tmp_path / "in" / f"工单.{name}")], db, config)
        file = report.files[0]
        assert file.error is None, file.error
        assert file.kinds == ["register", "tickets"]
        assert (file.rows_loaded, file.rows_rejected) == (5, 1)
        figures[name] = _figures(db)
    assert figures["ods"] == figures["xlsx"]
    assert figures["ods"]["tickets"] == EXPECTED_TICKETS
    assert figures["ods"]["rejected"] == [("3月", 7, "办结时间")]


def test_a_folder_summary_names_every_file_it_left_out(tmp_path):
    folder = tmp_path / "来件"
    _ods(folder / "工单.ods")
    (folder / "说明.docx").write_bytes(b"PK\x03\x04 not a spreadsheet")
    (folder / "~$工单.xlsx").write_bytes(b"\x05lock")
    (folder / "旧表.et").write_bytes(b"\xd0\xcf\x11\xe0")
    (folder / "备注.txt").write_text("这是说明", encoding="utf-8")
    (folder / "子目录").mkdir()
    (folder / "子目录" / "照片.jpg").write_bytes(b"\xff\xd8\xff")
    db = tmp_path / "data" / "warehouse.duckdb"

    result = run_cli("load", folder, "--db", db)

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "✓ 工单.ods（小区台账、工单，批次 1" in out
    assert "跳过的文件（5 个）：" in out
    for name, reason in (
        ("说明.docx", "不是表格文件（.docx）"),
        ("~$工单.xlsx", "临时锁文件"),
        ("旧表.et", "WPS 表格格式（.et），请在 WPS 中“另存为”.xlsx"),
        ("备注.txt", "请把扩展名改为 .csv"),
        ("照片.jpg", "不是表格文件（.jpg）"),
    ):
        line = next(line for line in out.splitlines() if name in line)
        assert reason in line, line
    assert rows(db, "SELECT count(*) FROM tickets") == [(3,)]  # and one rejected


def test_a_folder_with_nothing_loadable_says_what_it_skipped_and_fails(tmp_path):
    folder = tmp_path / "来件"
    folder.mkdir()
    (folder / "工单.numbers").write_bytes(b"PK\x03\x04")
    (folder / "工单.xlsb").write_bytes(b"PK\x03\x04")

    result = run_cli("load", folder, "--db", tmp_path / "data" / "warehouse.duckdb")

    assert result.returncode == 1
    assert "没有找到可加载的文件（.xlsx、.xlsm、.xls、.ods、.csv）" in result.stdout
    assert "工单.numbers：Apple Numbers 格式" in result.stdout
    assert "工单.xlsb：Excel 二进制工作簿（.xlsb）" in result.stdout


def test_the_summary_of_an_upload_with_no_files_says_so(tmp_path, config):
    report = load_paths([], tmp_path / "data" / "warehouse.duckdb", config)
    assert "没有找到可加载的文件" in format_report(report)


# --- a real LibreOffice ------------------------------------------------------------------------

SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")
# LibreOffice's CSV filter: separator ",", quote '"', character set (76 UTF-8, 85 GB18030).
CSV_FILTERS = {
    "utf8.csv": "csv:Text - txt - csv (StarCalc):44,34,76",
    "gb18030.csv": "csv:Text - txt - csv (StarCalc):44,34,85",
}


def _resave(source: Path, target_format: str, out: Path, profile: Path) -> Path:
    assert SOFFICE is not None
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [SOFFICE, f"-env:UserInstallation={profile.as_uri()}", "--headless", "--convert-to",
         target_format, "--outdir", str(out), str(source)],
        check=True, capture_output=True, timeout=180, env={**os.environ, "HOME": str(profile)},
    )  # fmt: skip
    (converted,) = out.iterdir()
    return converted


@pytest.mark.skipif(SOFFICE is None, reason="LibreOffice is installed by scripts/install-office.sh")
def test_files_resaved_by_libreoffice_load_with_the_original_figures(tmp_path):
    config = load_config()
    # Merged cells in the data area are left out: a CSV cannot say which rows a merge covered.
    original = _xlsx(tmp_path / "in" / "工单.xlsx", merged_data=False)
    original_db = tmp_path / "original" / "warehouse.duckdb"
    assert load_paths([original], original_db, config).ok
    expected = _figures(original_db)
    assert expected["tickets"] == EXPECTED_TICKETS

    profile = tmp_path / "libreoffice-profile"
    targets = {"ods": "ods", "xlsx": "xlsx:Calc MS Excel 2007 XML", "xls": "xls", **CSV_FILTERS}
    for name, target in targets.items():
        resaved = _resave(original, target, tmp_path / "resaved" / name, profile)
        db = tmp_path / f"db-{name}" / "warehouse.duckdb"
        if name.endswith(".csv"):
            # A CSV holds the first sheet only: the register goes in as the workbook it was.
            assert load_paths(
                [write_xlsx(tmp_path / "in" / "台账.xlsx", {"台账": REGISTER})], db, config
            ).ok
        report = load_paths([resaved], db, config)
        assert report.ok, (name, report.files[0].error)
        got = _figures(db)
        assert got["tickets"] == expected["tickets"], name
        assert got["compounds"] == expected["compounds"], name
        assert [r[1:] for r in got["rejected"]] == [r[1:] for r in expected["rejected"]], name
