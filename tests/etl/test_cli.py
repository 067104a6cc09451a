"""`python -m govdash load|rebuild`: exit codes, what it prints, and a rebuild from the originals."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from msoffcrypto.format.ooxml import OOXMLFile

from govdash.cli import main as cli_main
from govdash.core.warehouse import current_snapshot
from tests.conftest import (
    TABLES,
    rows,
    snapshot,
    ticket_row,
    ticket_sheet,
    write_csv,
    write_xlsx,
)

PROJECT = Path(__file__).resolve().parents[2]


def run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVDASH_")}
    return subprocess.run(
        [sys.executable, "-m", "govdash", *map(str, args)],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _good_files(folder: Path) -> tuple[Path, Path]:
    tickets = write_xlsx(
        folder / "工单.xlsx",
        {
            "3月": ticket_sheet(
                ticket_row("GD001"),
                ticket_row("GD002", closed="2024-03-05 08:00"),
                ticket_row("GD003"),
            ),
            "说明": [["填表说明"]],
        },
    )
    survey = write_csv(
        folder / "问卷.csv",
        [
            ["问卷编号", "调查批次", "小区", "总体满意度"],
            ["WJ1", "2024年度", "锦绣花园", 5],
            ["WJ2", "2024年度", "锦绣花园", 4],
        ],
        "gb18030",
    )
    return tickets, survey


def test_load_of_good_files_exits_0_and_prints_what_it_did(tmp_path):
    tickets, survey = _good_files(tmp_path / "in")
    db = tmp_path / "data" / "warehouse.duckdb"

    result = run_cli("load", tickets, survey, "--db", db)

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "✓ 工单.xlsx（工单，批次 1" in out
    assert "使用的工作表：3月（3 行）" in out
    assert "跳过的工作表：说明（未找到可识别的表头）" in out
    assert "加载 2 行，拒收 1 行" in out
    assert "办结时间早于受理时间：1 处" in out
    assert "✓ 问卷.csv（满意度问卷，批次 2" in out
    assert "加载 2 行，拒收 0 行" in out
    assert "合计：2/2 个文件成功，加载 4 行，拒收 1 行。" in out
    assert rows(db, "SELECT count(*) FROM tickets") == [(2,)]


def test_load_of_a_folder_with_a_bad_file_exits_non_zero_and_loads_the_good_ones(tmp_path):
    folder = tmp_path / "in"
    _good_files(folder)
    (folder / "备忘录.xlsx").write_text("这不是工作簿，只是改了扩展名的文本。\n", encoding="utf-8")
    (folder / "损坏.xlsx").write_bytes(b"PK\x03\x04" + random.Random(7).randbytes(4096))
    (folder / "~$工单.xlsx").write_bytes(b"\x05lock")  # Excel's lock file: not a data file
    db = tmp_path / "data" / "warehouse.duckdb"

    result = run_cli("load", folder, "--db", db)

    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "✗ 文件“备忘录.xlsx”" in output
    assert "✗ 文件“损坏.xlsx”" in output
    # Excel's lock file is named among the skipped files, not loaded or failed.
    assert "✗ 文件“~$" not in output
    assert "~$工单.xlsx：Excel 打开文件时生成的临时锁文件，不是数据" in output
    assert "合计：2/4 个文件成功" in output
    assert rows(db, "SELECT ticket_id FROM tickets ORDER BY 1") == [("GD001",), ("GD003",)]
    assert rows(db, "SELECT response_id FROM survey_responses ORDER BY 1") == [("WJ1",), ("WJ2",)]
    assert sorted(rows(db, "SELECT file_name FROM load_batches")) == [("工单.xlsx",), ("问卷.csv",)]


def _encrypted_workbook(path: Path) -> Path:
    plain = write_xlsx(path.with_name("plain.xlsx"), {"3月": ticket_sheet(ticket_row("GD001"))})
    with plain.open("rb") as source, path.open("wb") as target:
        OOXMLFile(source).encrypt("1234", target)
    plain.unlink()
    return path


REFUSED = {
    "empty-file": (lambda p: p.write_bytes(b""), "空.csv", "文件是空的"),
    "workbook-named-csv": (
        lambda p: write_xlsx(p.with_suffix(".xlsx"), {"S": [["a"]]}).rename(p),
        "工单.csv",
        "内容是 Excel 工作簿",
    ),
    "text-named-xlsx": (
        lambda p: p.write_text("备忘", encoding="utf-8"),
        "备忘.xlsx",
        "不是 Excel 工作簿",
    ),
    "damaged-zip": (
        lambda p: p.write_bytes(b"PK\x03\x04" + random.Random(7).randbytes(2048)),
        "损坏.xlsx",
        "文件已损坏或不完整",
    ),
    "password-protected": (_encrypted_workbook, "加密.xlsx", "工作簿设有打开密码"),
    "unsupported-type": (lambda p: p.write_bytes(b"%PDF-1.4"), "报告.pdf", "不支持的文件类型"),
    "no-known-header": (
        lambda p: write_xlsx(p, {"S": [["序号", "备注"], [1, "无"]]}),
        "杂表.xlsx",
        "没有找到可识别的表头",
    ),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_file_that_cannot_be_loaded_says_why_and_writes_nothing(tmp_path, load, case):
    make, name, message = REFUSED[case]
    path = tmp_path / "in" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    make(path)
    good = write_csv(tmp_path / "in" / "好.csv", ticket_sheet(ticket_row("GD001")), "utf-8")

    report, db = load(path, good)

    assert not report.ok
    assert report.files[0].error.startswith(f"文件“{name}”")
    assert message in report.files[0].error
    assert report.files[1].error is None
    assert rows(db, "SELECT file_name FROM load_batches") == [("好.csv",)]
    assert not (db.parent / "raw" / f"{report.files[0].sha256}{path.suffix}").exists()


def test_load_of_a_path_that_does_not_exist(tmp_path):
    result = run_cli("load", tmp_path / "nowhere.xlsx", "--db", tmp_path / "w.duckdb")
    assert result.returncode == 1
    assert "找不到文件或文件夹" in result.stderr


def test_rebuild_reproduces_the_warehouse_from_the_kept_originals(tmp_path, load, db_path):
    db = db_path
    folder = tmp_path / "in"
    tickets, _ = _good_files(folder)
    survey = write_xlsx(
        folder / "问卷.xlsx",
        {
            "问卷": [
                ["问卷编号", "调查批次", "小区", "环境卫生", "总体满意度"],
                ["WJ1", "2024年度", "锦绣花园", 4, 5],
                ["WJ2", "2024年度", "锦绣花园", 9, 4],
            ]
        },
    )
    re_export = write_xlsx(
        folder / "工单-重新导出.xlsx",
        {"3月": ticket_sheet(ticket_row("GD001", closed="2024-03-06 09:00"), ticket_row("GD004"))},
    )
    assert load(tickets, survey)[0].ok
    assert load(re_export, tickets)[0].ok  # tickets: already loaded, skipped
    assert (db.parent / "raw" / "manifest.jsonl").read_text(encoding="utf-8").count("\n") == 3
    published = current_snapshot(db)
    content = [t for t in TABLES if t not in ("load_batches", "warehouse_info")]
    before = snapshot(db, content)
    batches = "SELECT * EXCLUDE (loaded_at) FROM load_batches ORDER BY batch_id"
    batches_before = rows(db, batches)
    info = "SELECT * FROM warehouse_info WHERE key != 'updated_at' ORDER BY key"
    info_before = rows(db, info)

    result = run_cli("rebuild", "--db", db)

    assert result.returncode == 0, result.stderr
    assert current_snapshot(db) == (published or 0) + 1  # the rebuild is one new snapshot
    assert snapshot(db, content) == before
    assert rows(db, batches) == batches_before
    assert rows(db, info) == info_before
    assert rows(db, "SELECT ticket_id, closed_at, batch_id FROM tickets ORDER BY 1") == [
        ("GD001", datetime(2024, 3, 6, 9), 3),
        ("GD003", datetime(2024, 3, 5, 15), 1),
        ("GD004", datetime(2024, 3, 5, 15), 3),
    ]
    assert rows(db, "SELECT count(*) FROM rejected_rows") == [(2,)]


def test_rebuild_keeps_the_sheet_name_of_a_csv(tmp_path, config, db_path, load):
    survey = write_csv(
        tmp_path / "in" / "问卷.csv",
        [["问卷编号", "调查批次", "总体满意度"], ["WJ1", "2024年度", 5], ["WJ2", "2024年度", 7]],
        "utf-8-sig",
    )
    load(survey)
    before = rows(db_path, "SELECT source_sheet FROM survey_responses") + rows(
        db_path, "SELECT sheet FROM rejected_rows"
    )
    assert before == [("问卷",), ("问卷",)]

    assert cli_main(["rebuild", "--db", str(db_path)]) == 0

    after = rows(db_path, "SELECT source_sheet FROM survey_responses") + rows(
        db_path, "SELECT sheet FROM rejected_rows"
    )
    assert after == before


def test_rebuild_reports_the_original_file_names(tmp_path, config, db_path, load, capsys):
    tickets = write_xlsx(
        tmp_path / "in" / "3月工单.xlsx", {"3月": ticket_sheet(ticket_row("GD001"))}
    )
    load(tickets)
    capsys.readouterr()

    assert cli_main(["rebuild", "--db", str(db_path)]) == 0

    out = capsys.readouterr().out
    assert "✓ 3月工单.xlsx" in out
    assert "00000" not in out
