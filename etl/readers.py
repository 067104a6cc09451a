"""Read xlsx, xls and CSV files into tables of text cells, keeping Excel's row numbers."""

from __future__ import annotations

import codecs
import csv
import io
import re
import tempfile
import threading
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import fastexcel
import pyarrow as pa
from charset_normalizer import from_bytes

from etl.errors import LoadError

SPREADSHEET_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".csv", ".txt")
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP_MAGIC = b"PK\x03\x04"


@dataclass
class RawSheet:
    """One sheet's cells as text columns c0..cN; row i of the table is Excel row first_row + i."""

    name: str
    table: pa.Table
    first_row: int = 1
    merged: list[tuple[int, int, int, int]] = field(default_factory=list)  # r0, c0, r1, c1; 0-based
    hidden: bool = False


def read_file(path: Path, max_rows: int, csv_sheet_name: str = "") -> Iterator[RawSheet]:
    """Yield the sheets of a spreadsheet file; raise LoadError when it is not readable at all.

    A CSV's one sheet is named `csv_sheet_name` (the original file's stem), else the path's.
    """
    name = path.name
    if path.stat().st_size == 0:
        raise LoadError(name, "文件是空的（0 字节）。")
    head = path.read_bytes()[:8] if path.stat().st_size < 8 else _head(path)
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        if head.startswith(_ZIP_MAGIC) or head.startswith(_OLE_MAGIC):
            raise LoadError(
                name, "扩展名是 CSV，但内容是 Excel 工作簿；请把扩展名改为 .xlsx 或 .xls。"
            )
        yield read_csv(path, max_rows, csv_sheet_name or path.stem)
        return
    if suffix not in (".xlsx", ".xlsm", ".xls"):
        raise LoadError(name, f"不支持的文件类型“{path.suffix}”；请提供 .xlsx、.xls 或 .csv 文件。")
    if head.startswith(_OLE_MAGIC) and _is_encrypted(path):
        raise LoadError(
            name, "工作簿设有打开密码（已加密），无法读取；请在 Excel 中取消密码后另存再上传。"
        )
    if not (head.startswith(_ZIP_MAGIC) or head.startswith(_OLE_MAGIC)):
        raise LoadError(name, "文件内容不是 Excel 工作簿（可能是改了扩展名的其他文件）。")
    yield from read_workbook(path, max_rows)


def _head(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(8)


def _is_encrypted(path: Path) -> bool:
    try:
        import msoffcrypto

        with path.open("rb") as handle:
            return bool(msoffcrypto.OfficeFile(handle).is_encrypted())
    except Exception:
        return False


def read_workbook(path: Path, max_rows: int) -> Iterator[RawSheet]:
    """All sheets of a workbook; sheets and their layout scans run on two threads."""
    name = path.name
    try:
        reader = fastexcel.read_excel(str(path))
        sheet_names = reader.sheet_names
    except Exception as error:
        raise LoadError(
            name, f"无法打开工作簿，文件可能已损坏或不完整（{_short(error)}）。"
        ) from error
    layout = _XlsxLayout(path) if path.suffix.lower() != ".xls" else None

    local = threading.local()

    def load(index: int) -> tuple[pa.Table, bool]:
        try:
            # A reader is not safe to share between threads ("Already borrowed"), and opening
            # one parses the shared strings: one reader per worker thread.
            if not hasattr(local, "reader"):
                local.reader = fastexcel.read_excel(str(path))
            sheet = local.reader.load_sheet(
                index, header_row=None, dtypes="string", n_rows=max_rows
            )
            return sheet.to_arrow(), sheet.visible != "visible"
        except Exception as error:
            if "empty" in str(error).lower():
                return pa.table({}), False
            raise LoadError(
                name, f"读取失败，文件可能已损坏（{_short(error)}）。", sheet_names[index]
            ) from error

    def place(index: int) -> tuple[int, list[tuple[int, int, int, int]]]:
        return layout.sheet_layout(index) if layout is not None else _xls_layout(path, index)

    with ThreadPoolExecutor(max_workers=2) as pool:
        jobs = [(pool.submit(load, i), pool.submit(place, i)) for i in range(len(sheet_names))]
        for sheet_name, (table_job, layout_job) in zip(sheet_names, jobs, strict=True):
            table, hidden = table_job.result()
            first_row, merged = layout_job.result()
            table = table.rename_columns([f"c{i}" for i in range(table.num_columns)])
            yield RawSheet(sheet_name, table, first_row, merged, hidden=hidden)


def _short(error: Exception) -> str:
    return str(error).splitlines()[0][:200] if str(error) else type(error).__name__


_LAYOUT_SCAN_ROWS = 500
_CELL_REF = re.compile(rb"<(?:\w+:)?c r=\"([A-Z]+)(\d+)\"[^>]*?(?<!/)>")
_MERGE_REF = re.compile(rb"<(?:\w+:)?mergeCell ref=\"([A-Z]+)(\d+):([A-Z]+)(\d+)\"")


def _column_index(letters: bytes) -> int:
    index = 0
    for letter in letters:
        index = index * 26 + (letter - 64)
    return index - 1


class _XlsxLayout:
    """Reads what fastexcel does not report: where the used range starts and the merged cells.

    Streams each sheet's XML once without parsing it; the merged-cell list follows the cell
    data, and the first non-empty cell gives the row offset of the table fastexcel returns.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.parts: list[str] = []
        try:
            with zipfile.ZipFile(path) as archive:
                self.parts = _sheet_parts(archive)
        except (zipfile.BadZipFile, KeyError, OSError):
            self.parts = []

    def sheet_layout(self, index: int) -> tuple[int, list[tuple[int, int, int, int]]]:
        if index >= len(self.parts):
            return 1, []
        first_row: int | None = None
        first_col: int | None = None
        merged_raw: list[tuple[int, int, int, int]] = []
        tail = b""
        in_cells = True
        scanning = True
        with zipfile.ZipFile(self.path) as archive, archive.open(self.parts[index]) as stream:
            while chunk := stream.read(1 << 20):
                data = tail + chunk
                if in_cells:
                    cut = data.find(b"</sheetData>")
                    cells = data if cut < 0 else data[:cut]
                    # The offset is settled by the first rows; past them only look for the end.
                    for match in _CELL_REF.finditer(cells) if scanning else ():
                        end = match.end()
                        if cells[end : end + 4] == b"</c>":
                            continue  # a styled but empty cell
                        row = int(match.group(2))
                        col = _column_index(match.group(1))
                        first_row = row if first_row is None else min(first_row, row)
                        first_col = col if first_col is None else min(first_col, col)
                        if row > first_row + _LAYOUT_SCAN_ROWS:
                            scanning = False
                            break
                    if cut >= 0:
                        in_cells = False
                        data = data[cut:]
                if not in_cells:
                    for match in _MERGE_REF.finditer(data):
                        merged_raw.append(
                            (
                                int(match.group(2)) - 1,
                                _column_index(match.group(1)),
                                int(match.group(4)) - 1,
                                _column_index(match.group(3)),
                            )
                        )
                    data = data[data.rfind(b"<") :] if b"<" in data else b""
                tail = data[-256:] if in_cells else data
        first_row = first_row or 1
        first_col = first_col or 0
        merged = [
            (r0 - (first_row - 1), c0 - first_col, r1 - (first_row - 1), c1 - first_col)
            for r0, c0, r1, c1 in merged_raw
        ]
        return first_row, merged


def _sheet_parts(archive: zipfile.ZipFile) -> list[str]:
    """Paths of the worksheet XML parts in workbook order."""
    workbook = archive.read("xl/workbook.xml")
    rels = archive.read("xl/_rels/workbook.xml.rels")
    targets = {
        rid.decode(): target.decode()
        for rid, target in re.findall(
            rb"<Relationship [^>]*?Id=\"([^\"]+)\"[^>]*?Target=\"([^\"]+)\"", rels
        )
    }
    targets.update(
        {
            rid.decode(): target.decode()
            for target, rid in re.findall(
                rb"<Relationship [^>]*?Target=\"([^\"]+)\"[^>]*?Id=\"([^\"]+)\"", rels
            )
        }
    )
    parts = []
    for rid in re.findall(rb"<(?:\w+:)?sheet [^>]*?r:id=\"([^\"]+)\"", workbook):
        target = targets.get(rid.decode(), "")
        target = target.lstrip("/")
        parts.append(target if target.startswith("xl/") else f"xl/{target}")
    return parts


def _xls_layout(path: Path, index: int) -> tuple[int, list[tuple[int, int, int, int]]]:
    """Legacy .xls: python-calamine knows the range start and the merged cells."""
    try:
        from python_calamine import CalamineWorkbook

        sheet = CalamineWorkbook.from_path(str(path)).get_sheet_by_index(index)
        start_row, start_col = sheet.start or (0, 0)
        merged = [
            (r0 - start_row, c0 - start_col, r1 - start_row, c1 - start_col)
            for (r0, c0), (r1, c1) in (sheet.merged_cell_ranges or [])
        ]
        return start_row + 1, merged
    except Exception:
        return 1, []


# --- CSV -------------------------------------------------------------------------------------

_SAMPLE_BYTES = 1 << 20


def detect_encoding(sample: bytes, complete: bool = True) -> str:
    """UTF-8 (with or without BOM), UTF-16, or the Chinese code pages Excel saves (GBK/GB18030).

    `complete` says the sample is the whole file; otherwise its end may cut a character in two,
    which must not count against an encoding.
    """
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    for encoding in ("utf-8", "gb18030"):
        try:
            sample.decode(encoding)
            return encoding
        except UnicodeDecodeError as error:
            if not complete and error.start >= len(sample) - 4:
                try:
                    sample[: error.start].decode(encoding)
                    return encoding
                except UnicodeDecodeError:
                    pass
    guess = from_bytes(sample).best()
    return guess.encoding if guess is not None else "gb18030"


def read_csv(path: Path, max_rows: int, sheet_name: str = "") -> RawSheet:
    name = path.name
    with path.open("rb") as handle:
        sample = handle.read(_SAMPLE_BYTES)
    complete = len(sample) < _SAMPLE_BYTES
    encoding = detect_encoding(sample, complete)
    try:
        text_sample = sample.decode(
            encoding, errors="strict" if len(sample) < _SAMPLE_BYTES else "ignore"
        )
    except UnicodeDecodeError as error:
        raise LoadError(
            name, f"无法识别文件的文字编码（试过 {encoding}）；请用 Excel 另存为“CSV UTF-8”。"
        ) from error
    delimiter = _sniff_delimiter(text_sample)
    width = max(
        (len(row) for row in csv.reader(io.StringIO(text_sample), delimiter=delimiter)), default=0
    )
    if width == 0:
        raise LoadError(name, "文件中没有任何数据。")
    source = path
    temporary: Path | None = None
    if encoding not in ("utf-8", "utf-8-sig"):
        temporary = _transcode(path, encoding)
        source = temporary
    try:
        if _has_empty_lines(source):  # DuckDB's reader drops them, which shifts row numbers
            table = _python_csv(source, delimiter, max_rows)
        else:
            table = _duckdb_csv(source, delimiter, width, max_rows)
    except duckdb.Error:
        table = _python_csv(source, delimiter, max_rows)
    except UnicodeDecodeError as error:
        raise LoadError(
            name, f"文件中有无法按 {encoding} 解码的字符（{error}）；请另存为“CSV UTF-8”。"
        ) from error
    finally:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
    return RawSheet(sheet_name or path.stem, table, 1, [])


def _has_empty_lines(path: Path) -> bool:
    """True when a line is empty (bytes.find runs at memory speed, so this costs little)."""
    tail = b""
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 24):
            data = tail + chunk
            if b"\n\n" in data or b"\n\r\n" in data:
                return True
            tail = data[-2:]
    return False


def _sniff_delimiter(text: str) -> str:
    lines = [line for line in text.splitlines()[:50] if line.strip()]
    best, best_score = ",", -1
    for candidate in (",", "\t", ";", "|"):
        counts = sorted(line.count(candidate) for line in lines)
        score = counts[len(counts) // 2] if counts else 0
        if score > best_score:
            best, best_score = candidate, score
    return best


def _transcode(path: Path, encoding: str) -> Path:
    handle, name = tempfile.mkstemp(suffix=".csv", prefix="govdash-")
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    with open(handle, "wb", closefd=True) as out, path.open("rb") as source:
        while chunk := source.read(1 << 22):
            out.write(decoder.decode(chunk).encode("utf-8"))
        out.write(decoder.decode(b"", final=True).encode("utf-8"))
    return Path(name)


def _duckdb_csv(path: Path, delimiter: str, width: int, max_rows: int) -> pa.Table:
    columns = {f"c{i}": "VARCHAR" for i in range(width)}
    con = duckdb.connect()
    try:
        relation = con.read_csv(
            str(path),
            header=False,
            delimiter=delimiter,
            quotechar='"',
            escapechar='"',
            columns=columns,
            null_padding=True,
            auto_detect=False,
            encoding="utf-8",
            strict_mode=False,
        )
        return relation.limit(max_rows).to_arrow_table()
    finally:
        con.close()


def _python_csv(path: Path, delimiter: str, max_rows: int) -> pa.Table:
    """Slow but forgiving path for CSVs DuckDB's reader refuses (ragged quoting and the like)."""
    with path.open("r", encoding="utf-8-sig", newline="") as handle:
        rows = []
        for index, row in enumerate(csv.reader(handle, delimiter=delimiter)):
            if index >= max_rows:
                break
            rows.append(row)
    width = max((len(row) for row in rows), default=0)
    columns = {
        f"c{i}": pa.array([row[i] if i < len(row) else None for row in rows], pa.string())
        for i in range(width)
    }
    return pa.table(columns)
