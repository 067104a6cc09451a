"""Fix-up workbooks: the rejected rows of a load handed back to the clerk as they were, and read
back into the same batch once corrected.

The workbook has, per sheet of the original file that had rejections, the original header
row(s) and each rejected row with every original column and value, then two columns: 原行号 (the
row in the original file) and 拒收原因. The offending cells are filled red and carry the reason as
a comment. Personal data (names, phone and ID numbers, rooms, ages, evaluator names) is not
exported: those cells are left empty and, when the workbook comes back, filled again from the
original kept in data/raw at the same row. A hidden sheet names the original (by content hash),
so an upload of the corrected workbook loads its rows into the original batch: the rows that now
load leave rejected_rows, the batch's counts are recounted, nothing is counted twice however
often the workbook is uploaded.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
from openpyxl import Workbook
from openpyxl.comments import Comment
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter

from govdash.core.config import Config
from govdash.core.warehouse import connect_readonly, raw_dir
from govdash.etl.errors import LoadError
from govdash.etl.fields import PERSONAL
from govdash.etl.locate import LocatedSheet
from govdash.etl.readers import RawSheet, ReadLimits, read_file
from govdash.etl.scrub import scrub_sql

META_SHEET = "_govdash_fixup"
GUIDE_SHEET = "填写说明"
ROW_HEADER = "原行号"
REASON_HEADER = "拒收原因"
FORMAT_VERSION = 1
_BAD = PatternFill("solid", fgColor="FFC7CE")
_HEADER = PatternFill("solid", fgColor="D9E1F2")
FREE_TEXT_FIELDS = ("description", "comment", "note")


class FixupError(LoadError):
    """A fix-up workbook that cannot be made or read back; the message says why, in Chinese."""


@dataclass(frozen=True)
class FixupMeta:
    """What the hidden sheet says: which original the rows come from."""

    source_sha256: str
    source_name: str
    batch_id: int
    sheets: dict[str, int] = field(default_factory=dict)  # sheet → columns of the original

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": FORMAT_VERSION,
                "source_sha256": self.source_sha256,
                "source_name": self.source_name,
                "batch_id": self.batch_id,
                "sheets": self.sheets,
            },
            ensure_ascii=False,
        )


def read_meta(sheets: list[RawSheet]) -> FixupMeta | None:
    """The fix-up metadata of a workbook, or None for an ordinary file."""
    found = next((s for s in sheets if s.name == META_SHEET), None)
    if found is None or found.table.num_rows == 0 or found.table.num_columns == 0:
        return None
    try:
        data = json.loads(str(found.table.column("c0")[0].as_py()))
        return FixupMeta(
            str(data["source_sha256"]),
            str(data["source_name"]),
            int(data["batch_id"]),
            {str(k): int(v) for k, v in dict(data["sheets"]).items()},
        )
    except (ValueError, KeyError, TypeError) as error:
        raise FixupError("", f"待改正工作簿的隐藏说明页已损坏（{error}），请重新下载。") from error


def original_path(db_path: Path, sha256: str) -> Path | None:
    """The original kept for rebuilds (data/raw/<sha256>.<suffix>), if it is still there."""
    folder = raw_dir(db_path)
    return next(iter(sorted(folder.glob(f"{sha256}.*"))), None) if folder.is_dir() else None


def fixup_available(db_path: Path, batch_id: int) -> bool:
    """Whether the original of a batch is still kept, so its rows to fix can be handed back."""
    con = connect_readonly(db_path)
    try:
        found = con.execute(
            "SELECT file_sha256 FROM load_batches WHERE batch_id = $b", {"b": batch_id}
        ).fetchone()
    finally:
        con.close()
    return found is not None and original_path(db_path, str(found[0])) is not None


def _limits(config: Config) -> ReadLimits:
    return ReadLimits(
        max_rows=config.max_rows_per_file,
        max_unzipped_bytes=config.max_unzipped_mb * 1e6,
        max_compression_ratio=config.max_compression_ratio,
    )


def _scrubbed(texts: list[str]) -> list[str]:
    """Free text as the warehouse keeps it (personal data masked): nothing leaves unscrubbed."""
    if not texts:
        return []
    con = duckdb.connect()
    try:
        found = con.execute(
            f"SELECT {scrub_sql('t')} FROM (SELECT unnest($texts) AS t, generate_subscripts($texts, 1) AS i) ORDER BY i",
            {"texts": texts},
        ).fetchall()
    finally:
        con.close()
    return [str(row[0]) for row in found]


Locate = Callable[[RawSheet, Path], LocatedSheet | None]


def fixup_workbook(
    db_path: Path,
    config: Config,
    batch_id: int,
    locate: Locate,
) -> tuple[str, bytes]:
    """(file name, .xlsx bytes) of the rejected rows of a batch, ready for the clerk to correct.

    `locate(sheet, path) -> LocatedSheet | None` reads a sheet of the original as the load did
    (the loader passes its own, with the mapping profiles).
    """
    con = connect_readonly(db_path)
    try:
        batch = con.execute(
            "SELECT file_name, file_sha256 FROM load_batches WHERE batch_id = $b", {"b": batch_id}
        ).fetchone()
        problems = con.execute(
            """SELECT sheet, row_number, column_name, reason FROM rejected_rows
            WHERE batch_id = $b ORDER BY sheet, row_number, column_name""",
            {"b": batch_id},
        ).fetchall()
    finally:
        con.close()
    if batch is None:
        raise FixupError("", f"没有批次 {batch_id}。")
    file_name, sha256 = str(batch[0]), str(batch[1])
    if not problems:
        raise FixupError(file_name, "这个批次没有拒收的行。")
    source = original_path(db_path, sha256)
    if source is None:
        raise FixupError(
            file_name,
            "原始文件已不在 data/raw 中，无法生成待改正工作簿；请在原文件中按拒收记录修改。",
        )
    sheets = {s.name: s for s in read_file(source, _limits(config), Path(file_name).stem)}
    by_sheet: dict[str, dict[int, list[tuple[str, str]]]] = {}
    for sheet, row, column, reason in problems:
        by_sheet.setdefault(str(sheet), {}).setdefault(int(row), []).append(
            (str(column), str(reason))
        )

    workbook = Workbook()
    guide = workbook.active
    guide.title = GUIDE_SHEET
    for line in (
        f"本工作簿列出“{file_name}”（批次 {batch_id}）中被拒收的行，保留原表头和原值。",
        "请改正标红的单元格（鼠标移到单元格上可看到原因），保存后在“数据管理”页上传本文件，改正的行会并入原批次。",
        f"不要改动表头、工作表名称和“{ROW_HEADER}”列；“{REASON_HEADER}”列只作说明，上传时不读取。",
        "个人信息（姓名、电话、证件号、房号等）不随本文件导出，相应单元格留空；上传时按原行号从原文件补回。",
        "仍有问题的行会继续留在拒收记录中；同一文件重复上传不会重复计数。",
    ):
        guide.append([line])
    guide.column_dimensions["A"].width = 110
    meta_sheets: dict[str, int] = {}
    for sheet_name, rows in by_sheet.items():
        raw = sheets.get(sheet_name)
        located = locate(raw, source) if raw is not None else None
        if raw is None or located is None:
            continue
        meta_sheets[sheet_name] = raw.table.num_columns
        _write_sheet(workbook, raw, located, rows)
    if not meta_sheets:
        raise FixupError(file_name, "原始文件中找不到被拒收行所在的工作表，无法生成待改正工作簿。")
    meta = workbook.create_sheet(META_SHEET)
    meta["A1"] = FixupMeta(sha256, file_name, batch_id, meta_sheets).to_json()
    meta.sheet_state = "veryHidden"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return f"{Path(file_name).stem}_待改正.xlsx", buffer.getvalue()


def _write_sheet(
    workbook: Workbook,
    raw: RawSheet,
    located: LocatedSheet,
    rows: dict[int, list[tuple[str, str]]],
) -> None:
    sheet = workbook.create_sheet(raw.name[:31])
    width = raw.table.num_columns
    header_start = located.data_start - located.header_rows
    table = raw.table
    personal = {j for j, spec in located.columns.items() if spec.parse == PERSONAL}
    free_text = {j for j, spec in located.columns.items() if spec.name in FREE_TEXT_FIELDS}
    for offset in range(located.header_rows):
        header = [table.column(f"c{j}")[header_start + offset].as_py() for j in range(width)]
        first = offset == 0
        sheet.append([*header, ROW_HEADER if first else None, REASON_HEADER if first else None])
        for j in range(width + 2):
            cell = sheet.cell(row=offset + 1, column=j + 1)
            cell.font = Font(bold=True)
            cell.fill = _HEADER
    for r0, c0, r1, c1 in raw.merged:  # a two-row header's merged parents
        if header_start <= r0 and r1 < located.data_start:
            sheet.merge_cells(
                start_row=r0 - header_start + 1,
                start_column=c0 + 1,
                end_row=r1 - header_start + 1,
                end_column=c1 + 1,
            )
    for j in personal:
        note = "个人信息不导出：上传时按原行号从原文件补回"
        sheet.cell(row=1, column=j + 1).comment = Comment(note, "govdash")
    headers = {text: j for j, text in enumerate(located.flat_headers) if text}
    picked = sorted(rows)
    indexes = [row - raw.first_row for row in picked]
    texts = {
        j: _scrubbed(
            [
                "" if v is None else str(v)
                for v in table.column(f"c{j}").take(pa.array(indexes)).to_pylist()
            ]
        )
        for j in free_text
    }
    for position, (row, index) in enumerate(zip(picked, indexes, strict=True)):
        values: list[object] = []
        for j in range(width):
            if j in personal:
                values.append(None)
            elif j in free_text:
                values.append(texts[j][position] or None)
            else:
                values.append(table.column(f"c{j}")[index].as_py())
        reasons = "；".join(dict.fromkeys(f"{column}：{reason}" for column, reason in rows[row]))
        sheet.append([*values, row, reasons])
        excel_row = sheet.max_row
        for column, reason in rows[row]:
            at = headers.get(column)
            if at is None:
                continue
            cell = sheet.cell(row=excel_row, column=at + 1)
            cell.fill = _BAD
            cell.comment = Comment(reason, "govdash")
    for j in range(width + 2):
        letter = get_column_letter(j + 1)
        sheet.column_dimensions[letter].width = 40 if j == width + 1 else 16
        for cell in sheet[letter][located.header_rows :]:
            cell.number_format = "@"  # typed IDs stay text: no digits lost this time


def restore_personal(
    fixup: RawSheet, original: RawSheet, located: LocatedSheet, row_numbers: list[int | None]
) -> RawSheet:
    """The fix-up sheet with its personal columns filled from the original's same rows."""
    personal = [j for j, spec in located.columns.items() if spec.parse == PERSONAL]
    table = fixup.table
    for j in personal:
        if j >= table.num_columns or j >= original.table.num_columns:
            continue
        source = original.table.column(f"c{j}").to_pylist()
        values = table.column(f"c{j}").to_pylist()
        for index, row in enumerate(row_numbers):
            if row is not None and 0 <= row - original.first_row < len(source):
                values[index] = source[row - original.first_row]
        table = table.set_column(j, f"c{j}", pa.array(values, pa.string()))
    return RawSheet(fixup.name, table, fixup.first_row, fixup.merged, fixup.hidden)
