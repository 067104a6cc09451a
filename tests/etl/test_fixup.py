"""Fix-up workbooks (issue 13, item 5): the rejected rows come back as they were, the clerk
corrects two cells with openpyxl, and the corrected rows load into the same batch, once."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest

from govdash.core.audit import AuditLog
from govdash.etl.fixup import META_SHEET, REASON_HEADER, ROW_HEADER, FixupError
from govdash.etl.load import fixup_for_batch, format_report, load_paths
from govdash.etl.rebuild import rebuild
from tests.conftest import TABLES, rows, snapshot, write_xlsx

HEADER = ["工单编号", "受理时间", "办结时间", "联系人", "联系电话", "问题描述", "问题类别"]
MARCH = [
    ["GD1", "2025-03-01 09:00", "2025-03-01 12:00", "陈静", "13812345678", "漏水", "房屋渗漏"],
    ["GD2", "2025-02-30 09:00", "2025-03-02 12:00", "李建国", "13912345678", "灯坏了请回电13912345678", "公共设施"],
    ["GD3", "2025-03-03 09:00", "2025-03-03 08:00", "王秀英", "13712345678", "噪音", "噪音扰民"],
    ["GD4", "2025-03-04 09:00", "2025-03-04 18:00", "赵敏", "13612345678", "停车", "停车管理"],
    ["GD5", "2025-03-05 09:00", "2025-03-04 18:00", "钱多多", "13512345678", "电梯", "电梯"],
]  # fmt: skip
# A second sheet with a two-row header (时间节点 merged over its three columns).
APRIL_TOP = ["工单编号", "时间节点", None, None, "问题类别", "联系电话"]
APRIL_BOTTOM = [None, "受理时间", "首次响应时间", "办结时间", None, None]
APRIL = [
    ["GD6", "2025-04-01 09:00", "2025-04-01 09:10", "2025-04-01 12:00", "电梯", "13412345678"],
    ["GD7", "2025-04-02 09:00", "2025-04-02 08:50", "2025-04-02 12:00", "电梯", "13312345678"],
]
NAMES = ["陈静", "李建国", "王秀英", "赵敏", "钱多多"]
PHONES = ["13912345678", "13712345678", "13512345678", "13312345678"]


def _original(folder: Path) -> Path:
    return write_xlsx(
        folder / "3-4月工单.xlsx",
        {
            "3月": [["2025年3月工单台账"], HEADER, *MARCH],
            "4月": [APRIL_TOP, APRIL_BOTTOM, *APRIL],
        },
        merges={"3月": ["A1:G1"], "4月": ["B1:D1", "A1:A2", "E1:E2", "F1:F2"]},
    )


@pytest.fixture
def loaded(tmp_path, config):
    db = tmp_path / "data" / "warehouse.duckdb"
    report = load_paths([_original(tmp_path / "in")], db, config)
    file = report.files[0]
    assert (file.rows_loaded, file.rows_rejected) == (3, 4)
    return db


def _cells(data: bytes) -> list[str]:
    workbook = openpyxl.load_workbook(io.BytesIO(data))
    return [
        str(cell.value)
        for sheet in workbook.worksheets
        if sheet.title != META_SHEET
        for row in sheet.iter_rows()
        for cell in row
        if cell.value is not None
    ]


def test_the_rows_to_fix_come_back_as_they_were(loaded, config):
    name, data = fixup_for_batch(loaded, config, 1, actor="王芳")

    assert name == "3-4月工单_待改正.xlsx"
    workbook = openpyxl.load_workbook(io.BytesIO(data))
    assert workbook.sheetnames == ["填写说明", "3月", "4月", META_SHEET]
    assert workbook[META_SHEET].sheet_state == "veryHidden"
    march = [list(r) for r in workbook["3月"].iter_rows(values_only=True)]
    assert march[0] == [*HEADER, ROW_HEADER, REASON_HEADER]
    # Rows 4, 5 and 7 of the original (the title is row 1, the header row 2), every column,
    # the personal ones left empty, the free text masked.
    assert [row[:7] + row[7:8] for row in march[1:]] == [
        ["GD2", "2025-02-30 09:00", "2025-03-02 12:00", None, None, "灯坏了请回电[电话]", "公共设施", 4],
        ["GD3", "2025-03-03 09:00", "2025-03-03 08:00", None, None, "噪音", "噪音扰民", 5],
        ["GD5", "2025-03-05 09:00", "2025-03-04 18:00", None, None, "电梯", "电梯", 7],
    ]  # fmt: skip
    assert march[1][8] == "受理时间：无法识别的受理时间（应为日期时间，如 2024-03-05 14:30）"
    marked = {
        (c.coordinate, c.comment.text)
        for row in workbook["3月"].iter_rows(min_row=2)
        for c in row
        if c.comment is not None
    }
    assert marked == {
        ("B2", "无法识别的受理时间（应为日期时间，如 2024-03-05 14:30）"),
        ("C3", "办结时间早于受理时间"),
        ("C4", "办结时间早于受理时间"),
    }
    assert workbook["3月"]["B2"].fill.fgColor.rgb.endswith("FFC7CE")
    april = [list(r) for r in workbook["4月"].iter_rows(values_only=True)]
    assert april[0][:6] == APRIL_TOP and april[1][:6] == APRIL_BOTTOM
    assert "B1:D1" in {str(r) for r in workbook["4月"].merged_cells.ranges}
    assert april[2][:5] == APRIL[1][:5] and april[2][5] is None and april[2][6] == 4
    assert not [c for c in _cells(data) if any(p in c for p in [*NAMES, *PHONES])]
    exported = AuditLog(loaded.parent / "audit.sqlite3").events(action="export")
    assert json.loads(exported.iloc[0]["detail"])["name"] == "fixup_workbook"


def test_two_corrected_cells_load_into_the_same_batch_once(loaded, config, tmp_path):
    _, data = fixup_for_batch(loaded, config, 1)
    workbook = openpyxl.load_workbook(io.BytesIO(data))
    workbook["3月"]["B2"] = "2025-02-28 09:00"  # GD2: a real date
    workbook["4月"]["C3"] = "2025-04-02 09:20"  # GD7: responded after acceptance
    fixed = tmp_path / "改好了.xlsx"
    workbook.save(fixed)

    report = load_paths([fixed], loaded, config)

    file = report.files[0]
    assert file.error is None, file.error
    assert (file.batch_id, file.rows_loaded, file.rows_rejected) == (1, 2, 2)
    assert "改正的行并入批次 1“3-4月工单.xlsx”" in format_report(report)
    assert rows(
        loaded, "SELECT ticket_id, batch_id, source_sheet, source_row FROM tickets ORDER BY 1"
    ) == [
        ("GD1", 1, "3月", 3), ("GD2", 1, "3月", 4), ("GD4", 1, "3月", 6),
        ("GD6", 1, "4月", 3), ("GD7", 1, "4月", 4),
    ]  # fmt: skip
    assert rows(
        loaded, "SELECT sheet, row_number, column_name, raw_value FROM rejected_rows ORDER BY 2"
    ) == [("3月", 5, "办结时间", "2025-03-03 08:00"), ("3月", 7, "办结时间", "2025-03-04 18:00")]
    assert rows(loaded, "SELECT batch_id, rows_loaded, rows_rejected FROM load_batches") == [
        (1, 5, 2)
    ]
    # The phone came back from the original: GD2's caller is hashed with the warehouse's key.
    key = (loaded.parent / "hash.key").read_text().strip()
    expected = hashlib.sha256(f"{key}|13912345678".encode()).hexdigest()
    assert rows(loaded, "SELECT caller_hash FROM tickets WHERE ticket_id = 'GD2'") == [(expected,)]

    state = snapshot(loaded, [t for t in TABLES if t != "warehouse_info"])
    again = load_paths([fixed], loaded, config)
    assert (again.files[0].rows_inserted, again.files[0].rows_unchanged) == (0, 2)
    assert snapshot(loaded, [t for t in TABLES if t != "warehouse_info"]) == state

    rebuilt = rebuild(loaded, config)
    assert rebuilt.ok
    content = [t for t in TABLES if t not in ("warehouse_info", "load_batches")]
    assert snapshot(loaded, content) == {k: v for k, v in state.items() if k in content}
    assert rows(loaded, "SELECT batch_id, rows_loaded, rows_rejected FROM load_batches") == [
        (1, 5, 2)
    ]


def test_a_fixup_of_a_file_no_longer_loaded_is_refused_with_a_reason(loaded, config, tmp_path):
    _, data = fixup_for_batch(loaded, config, 1)
    path = tmp_path / "改好了.xlsx"
    path.write_bytes(data)
    other = tmp_path / "other" / "warehouse.duckdb"

    report = load_paths([path], other, config)

    assert "数据仓库中已没有该文件的加载批次" in report.files[0].error


def test_a_batch_without_rejections_has_nothing_to_fix(tmp_path, config):
    db = tmp_path / "data" / "warehouse.duckdb"
    load_paths([write_xlsx(tmp_path / "in" / "好.xlsx", {"S": [HEADER, MARCH[0]]})], db, config)
    with pytest.raises(FixupError, match="没有拒收的行"):
        fixup_for_batch(db, config, 1)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVDASH_")}
    return subprocess.run(
        [sys.executable, "-m", "govdash", *args],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip


def test_govdash_fixup_writes_each_batch_s_rows_to_fix(loaded, tmp_path):
    out = tmp_path / "待改正"
    ran = _cli("fixup", "--db", str(loaded), "--out", str(out), "--as", "王芳")

    assert ran.returncode == 0, ran.stderr
    written = out / "3-4月工单_待改正.xlsx"
    assert ran.stdout.strip() == f"✓ 批次 1（3-4月工单.xlsx）：4 行待改正 → {written}"
    workbook = openpyxl.load_workbook(written)
    assert [r[0] for r in workbook["3月"].iter_rows(min_row=2, values_only=True)] == [
        "GD2",
        "GD3",
        "GD5",
    ]
    assert [r[0] for r in workbook["4月"].iter_rows(min_row=3, values_only=True)] == ["GD7"]
    assert not [c for c in _cells(written.read_bytes()) if any(p in c for p in [*NAMES, *PHONES])]
    exported = AuditLog(loaded.parent / "audit.sqlite3").events(action="export")
    assert exported.iloc[0]["actor"] == "王芳" and exported.iloc[0]["method"] == "cli"

    none = _cli("fixup", "--db", str(loaded), "--batch", "9", "--out", str(out))
    assert none.returncode == 1 and "批次 9 没有拒收的行" in none.stderr

    for kept in (loaded.parent / "raw").glob("*.xlsx"):
        kept.unlink()
    gone = _cli("fixup", "--db", str(loaded), "--out", str(tmp_path / "again"))
    assert gone.returncode == 1 and "原始文件已不在 raw/ 中" in gone.stderr
    assert not (tmp_path / "again" / written.name).exists()
