"""Read xlsx, xls and CSV files into tables of text cells, keeping Excel's row numbers."""

from __future__ import annotations

import codecs
import csv
import functools
import io
import queue
import re
import struct
import tempfile
import xml.etree.ElementTree as ElementTree
import zipfile
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import fastexcel
import numpy as np
import pyarrow as pa

from govdash.etl.errors import LoadError
from govdash.etl.numbers import PaddingFormat, padding_format, untrusted_number_text

SPREADSHEET_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".ods", ".csv", ".txt")
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP_MAGIC = b"PK\x03\x04"


@dataclass(frozen=True)
class ReadLimits:
    """What a file may cost before it is parsed; each limit is a key of the config's [loader]."""

    max_rows: int = 5_000_000  # loader.max_rows_per_file
    max_unzipped_bytes: float = 4096e6  # loader.max_unzipped_mb
    max_compression_ratio: float = 200.0  # loader.max_compression_ratio


# Excel's error values: a formula that failed. fastexcel reads an error cell as empty, which
# would turn a broken 办结时间 into an open ticket; the reader puts the code back instead.
EXCEL_ERRORS = (
    "#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A", "#GETTING_DATA",
    "#SPILL!", "#CALC!", "#FIELD!", "#BLOCKED!", "#UNKNOWN!", "#CONNECT!", "#BUSY!", "#PYTHON!",
)  # fmt: skip


def too_many_rows(count: int, limit: int, counts: dict[str, int] | None = None) -> str:
    """The refusal for a file over loader.max_rows_per_file, saying what to do."""
    where = ""
    if counts and len(counts) > 1:
        where = "（" + "、".join(f"“{name}” {rows:,} 行" for name, rows in counts.items()) + "）"
    return (
        f"文件有 {count:,} 行{where}，超过每个文件 {limit:,} 行的上限（配置项 "
        "loader.max_rows_per_file），整个文件未加载。请按月份或社区拆分成几个文件后分别加载，"
        "或请管理员在配置文件中调高该上限。"
    )


Override = tuple[int, int, str]  # table row, table column, the text to use instead


@dataclass
class RawSheet:
    """One sheet's cells as text columns c0..cN; row i of the table is Excel row first_row + i."""

    name: str
    table: pa.Table
    first_row: int = 1
    merged: list[tuple[int, int, int, int]] = field(default_factory=list)  # r0, c0, r1, c1; 0-based
    hidden: bool = False
    # Finds the number cells of 16+ integer digits (numbers.py) where that costs a pass over
    # the file (.xlsx); other readers have put them in the table already.
    find_long_numbers: Callable[[], list[Override]] | None = None
    _long_numbers: list[Override] | None = None

    def long_numbers(self) -> list[Override]:
        """The long-number cells, found once."""
        if self._long_numbers is None:
            self._long_numbers = self.find_long_numbers() if self.find_long_numbers else []
        return self._long_numbers


def read_file(path: Path, limits: ReadLimits | int, csv_sheet_name: str = "") -> Iterator[RawSheet]:
    """Yield the sheets of a spreadsheet file; raise LoadError when it is not readable at all.

    A CSV's one sheet is named `csv_sheet_name` (the original file's stem), else the path's.
    `limits` may be a bare row limit. A file over a limit is refused before it is parsed.
    """
    if isinstance(limits, int):
        limits = ReadLimits(max_rows=limits)
    if _check_file(path, limits):
        yield read_csv(path, limits.max_rows, csv_sheet_name or path.stem)
        return
    yield from read_workbook(path, limits)


def read_parts(
    path: Path, limits: ReadLimits, csv_sheet_name: str = "", chunk_rows: int | None = None
) -> Iterator[SheetParts]:
    """As read_file, with each sheet in parts: a CSV's in parts of `chunk_rows` rows (default
    CSV_CHUNK_ROWS) so that no more of it is in memory at once, a workbook's sheet whole."""
    if _check_file(path, limits):
        yield csv_parts(path, limits.max_rows, csv_sheet_name or path.stem, chunk_rows)
        return
    for sheet in read_workbook(path, limits):
        yield SheetParts(sheet)


def _check_file(path: Path, limits: ReadLimits) -> bool:
    """Refuse a file that cannot be a spreadsheet or costs too much (LoadError); True for a CSV."""
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
        return True
    if suffix not in (".xlsx", ".xlsm", ".xls", ".ods"):
        raise LoadError(
            name, f"不支持的文件类型“{path.suffix}”；请提供 .xlsx、.xls、.ods 或 .csv 文件。"
        )
    if head.startswith(_OLE_MAGIC) and _is_encrypted(path):
        raise LoadError(
            name, "工作簿设有打开密码（已加密），无法读取；请在 Excel 中取消密码后另存再上传。"
        )
    if not (head.startswith(_ZIP_MAGIC) or head.startswith(_OLE_MAGIC)):
        raise LoadError(
            name,
            "文件内容不是 Excel 工作簿（可能是改了扩展名的图片、文档或其他文件）。"
            "请在 Excel 中打开原表格，另存为 .xlsx 后再加载。",
        )
    if head.startswith(_ZIP_MAGIC):
        check_archive(path, name, limits)
    return False


# Parts smaller than this may compress as well as they like: they cost nothing to parse.
_RATIO_CHECK_BYTES = 16 << 20


def check_archive(path: Path, name: str, limits: ReadLimits) -> None:
    """Refuse a damaged xlsx, or one that would unpack to too much ("zip bomb"), before parsing.

    Reads only the zip's central directory: the sizes it declares for each part.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            parts = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
        raise LoadError(
            name,
            "文件已损坏或不完整（压缩包目录无法读取，常见于下载或拷贝中断）。"
            f"请在 Excel 中重新打开原表格并另存为 .xlsx 后再加载（{_short(error)}）。",
        ) from error
    total = sum(part.file_size for part in parts)
    if total > limits.max_unzipped_bytes:
        raise LoadError(
            name,
            f"工作簿解压后有 {total / 1e6:,.0f} MB，超过上限 {limits.max_unzipped_bytes / 1e6:,.0f} MB"
            "（配置项 loader.max_unzipped_mb），未解析。文件可能被恶意构造（“压缩炸弹”）或过大；"
            "请确认文件来源，或把数据拆分成几个文件后分别加载。",
        )
    for part in parts:
        ratio = part.file_size / max(part.compress_size, 1)
        if part.file_size > _RATIO_CHECK_BYTES and ratio > limits.max_compression_ratio:
            raise LoadError(
                name,
                f"工作簿中的“{part.filename}”压缩比为 {ratio:,.0f} 倍（解压后 "
                f"{part.file_size / 1e6:,.0f} MB），远超正常表格，超过上限 "
                f"{limits.max_compression_ratio:g} 倍（配置项 loader.max_compression_ratio），未解析。"
                "文件可能被恶意构造（“压缩炸弹”）；请确认文件来源，在 Excel 中打开并另存后再加载。",
            )


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


def read_workbook(path: Path, limits: ReadLimits | int) -> Iterator[RawSheet]:
    """All sheets of a workbook, refused whole when its rows exceed the limit.

    The sheet XML is scanned first (layout, error cells, row count), so an oversized file is
    refused before calamine parses it; the sheets then load on two threads.
    """
    if isinstance(limits, int):
        limits = ReadLimits(max_rows=limits)
    name = path.name
    try:
        reader = fastexcel.read_excel(str(path))
        sheet_names = reader.sheet_names
    except Exception as error:
        raise LoadError(
            name, f"无法打开工作簿，文件可能已损坏或不完整（{_short(error)}）。"
        ) from error
    layout = (
        _XlsxLayout(path, limits.max_rows) if path.suffix.lower() in (".xlsx", ".xlsm") else None
    )
    # A reader is not safe to share between threads ("Already borrowed"), and opening one
    # parses the shared strings: readers are lent out one per running job and given back.
    idle: queue.SimpleQueue[fastexcel.ExcelReader] = queue.SimpleQueue()
    idle.put(reader)

    def load(index: int) -> tuple[pa.Table, bool]:
        try:
            try:
                lent = idle.get_nowait()
            except queue.Empty:
                lent = fastexcel.read_excel(str(path))
            try:
                sheet = lent.load_sheet(
                    index, header_row=None, dtypes="string", n_rows=limits.max_rows + 1
                )
                return sheet.to_arrow(), sheet.visible != "visible"
            finally:
                idle.put(lent)
        except Exception as error:
            if "empty" in str(error).lower():
                return pa.table({}), False
            raise LoadError(
                name, f"读取失败，文件可能已损坏（{_short(error)}）。", sheet_names[index]
            ) from error

    # A legacy .xls holds its error cells in one BIFF stream: read it once, not per sheet.
    suffix = path.suffix.lower()
    other_cells: dict[int, BiffSheetCells] = {}
    if suffix == ".xls":
        other_cells = _xls_cells(path)
    elif suffix == ".ods":
        other_cells = ods_cells(path)

    def place(index: int) -> SheetLayout:
        if layout is not None:
            return layout.sheet_layout(index)
        return _xls_layout(path, index, other_cells.get(index))

    def check(layouts: list[SheetLayout]) -> None:
        counts = {
            sheet_name: found.rows
            for sheet_name, found in zip(sheet_names, layouts, strict=True)
            if found.rows is not None
        }
        if sum(counts.values()) > limits.max_rows:
            raise LoadError(name, too_many_rows(sum(counts.values()), limits.max_rows, counts))

    # Where the sheets' declared used ranges are within the limit, the XML scan runs beside
    # calamine's parse; otherwise it runs first, so an oversized file is refused unparsed.
    declared = [layout.declared_rows(i) for i in range(len(sheet_names))] if layout else []
    known = [rows for rows in declared if rows is not None]
    overlap = bool(known) and len(known) == len(sheet_names) and sum(known) <= limits.max_rows
    with ThreadPoolExecutor(max_workers=2) as pool:
        placing = [pool.submit(place, i) for i in range(len(sheet_names))]
        if not overlap:
            check([job.result() for job in placing])
        jobs = [pool.submit(load, i) for i in range(len(sheet_names))]
        layouts = [job.result() for job in placing]
        if overlap:
            check(layouts)  # a sheet whose declared range understated its rows
        total = 0
        for index, (sheet_name, job, found) in enumerate(
            zip(sheet_names, jobs, layouts, strict=True)
        ):
            table, hidden = job.result()
            total += table.num_rows
            if total > limits.max_rows:  # .xls, whose rows were not counted beforehand
                raise LoadError(name, too_many_rows(total, limits.max_rows), sheet_name)
            table = table.rename_columns([f"c{i}" for i in range(table.num_columns)])
            table = _with_error_codes(table, found.errors)
            table = _with_overrides(table, found.overrides)
            finder = (
                functools.partial(layout.long_numbers, index, found.first_row, found.first_col)
                if layout is not None
                else None
            )
            yield RawSheet(sheet_name, table, found.first_row, found.merged, hidden, finder)


@dataclass
class SheetLayout:
    """What the sheet XML says that fastexcel does not: used-range start, merges, errors, rows."""

    first_row: int = 1
    merged: list[tuple[int, int, int, int]] = field(default_factory=list)
    errors: list[tuple[int, int, str]] = field(default_factory=list)  # table row, column, code
    rows: int | None = None  # rows holding a value, when counted
    # Number cells read as the clerk saw them (table row, column, text): zero-padded codes
    # (000124) and numbers too long to trust (2.025030100000123E+18), see numbers.py.
    overrides: list[tuple[int, int, str]] = field(default_factory=list)
    first_col: int = 0  # the used range's first column (0-based): table column 0


def _with_error_codes(table: pa.Table, errors: list[tuple[int, int, str]]) -> pa.Table:
    """Put back the error codes (#N/A, #DIV/0! …) of cells fastexcel read as empty."""
    by_column: dict[int, list[tuple[int, str]]] = {}
    for row, column, code in errors:
        if 0 <= row < table.num_rows and 0 <= column < table.num_columns:
            by_column.setdefault(column, []).append((row, code))
    for column, cells in by_column.items():
        values = table.column(column).to_pylist()
        for row, code in cells:
            if values[row] is None:
                values[row] = code
        table = table.set_column(column, f"c{column}", pa.array(values, pa.string()))
    return table


def _with_overrides(table: pa.Table, overrides: list[Override]) -> pa.Table:
    """Replace the text of the cells numbers.py says were shown differently."""
    by_column: dict[int, list[tuple[int, str]]] = {}
    for row, column, text in overrides:
        if 0 <= row < table.num_rows and 0 <= column < table.num_columns:
            by_column.setdefault(column, []).append((row, text))
    for column, cells in by_column.items():
        values = table.column(column).to_pylist()
        for row, text in cells:
            values[row] = text
        table = table.set_column(column, f"c{column}", pa.array(values, pa.string()))
    return table


# pa.array() and pa.scalar() on Python or NumPy values import pandas on first use (half a
# second, a tenth of a 100k-row load); arrays built from buffers do not.


def int_range(start: int, count: int) -> pa.Array:
    """start, start+1, … as an int64 array (row numbers)."""
    values = np.arange(start, start + count, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), count, [None, pa.py_buffer(values)])


def constant_text(value: str, count: int) -> pa.Array:
    """`value` repeated `count` times, as a string array."""
    data = value.encode("utf-8")
    offsets = np.array([0, len(data)], dtype=np.int32)
    single = pa.Array.from_buffers(
        pa.string(), 1, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )
    indices = np.zeros(count, dtype=np.int32)
    index = pa.Array.from_buffers(pa.int32(), count, [None, pa.py_buffer(indices)])
    return pa.DictionaryArray.from_arrays(index, single).cast(pa.string())


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


_ERROR_CELL = re.compile(rb"<(?:\w+:)?c ([^>]*?\bt=\"e\"[^>]*)>(.*?)</(?:\w+:)?c>", re.S)
_REF = re.compile(rb"\br=\"([A-Z]+)(\d+)\"")
_VALUE = re.compile(rb"<(?:\w+:)?v>([^<]*)</")
_ROW_END = b"</row>"
_SHEET_DATA = re.compile(rb"<(\w+:)?sheetData\b")


@functools.cache
def _long_number(prefix: bytes) -> re.Pattern[bytes]:
    """A value with 16+ integer digits or an exponent: worth a closer look (numbers.py).

    Written with the literal `<v>` (namespace prefix included) first, which lets the regex
    engine skip ahead: a third of the time of a pattern with an optional prefix group.
    """
    return re.compile(b"<" + re.escape(prefix) + rb"v>(-?\d(?:\d{15}|[\d.]*[eE])[^<]*)</")


_TYPE = re.compile(rb"\bt=\"([a-zA-Z]+)\"")
_STYLE = re.compile(rb"\bs=\"(\d+)\"")
_DIMENSION = re.compile(
    rb"<(?:\w+:)?dimension ref=\"\$?([A-Z]+)\$?(\d+)(?::\$?([A-Z]+)\$?(\d+))?\""
)


class _XlsxLayout:
    """Reads what fastexcel does not report: where the used range starts, the merged cells,
    the error cells, and how many rows hold a value.

    Streams each sheet's XML once without parsing it; the merged-cell list follows the cell
    data, and the first non-empty cell gives the row offset of the table fastexcel returns.
    """

    def __init__(self, path: Path, max_rows: int | None = None) -> None:
        self.path = path
        self.max_rows = max_rows
        self.parts: list[str] = []
        self.padded: dict[int, PaddingFormat] = {}  # cell style index → its padding format
        try:
            with zipfile.ZipFile(path) as archive:
                self.parts = _sheet_parts(archive)
                self.padded = _padded_styles(archive)
        except (zipfile.BadZipFile, KeyError, OSError):
            self.parts = []
        self._padded_cell = (
            re.compile(
                rb"<(?:\w+:)?c ([^>]*?\bs=\"(?:"
                + b"|".join(str(i).encode() for i in sorted(self.padded))
                + rb")\"[^>]*)>(?:<(?:\w+:)?f[^>]*/>|<(?:\w+:)?f[^>]*>[^<]*</(?:\w+:)?f>)?"
                rb"<(?:\w+:)?v>([^<]*)</"
            )
            if self.padded
            else None
        )

    def sheet_layout(self, index: int) -> SheetLayout:
        if index >= len(self.parts):
            return SheetLayout()
        first_row: int | None = None
        first_col: int | None = None
        merged_raw: list[tuple[int, int, int, int]] = []
        errors_raw: dict[tuple[int, int], str] = {}
        overrides_raw: dict[tuple[int, int], str] = {}
        row_ends = 0  # closed <row> elements: an upper bound of the rows holding a value
        previous = b""
        tail = b""
        in_cells = True
        scanning = True
        with zipfile.ZipFile(self.path) as archive, archive.open(self.parts[index]) as stream:
            while chunk := stream.read(1 << 20):
                row_ends += (previous[-5:] + chunk).count(_ROW_END)
                previous = chunk
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
                    if b't="e"' in cells:
                        for match in _ERROR_CELL.finditer(cells):
                            ref = _REF.search(match.group(1))
                            value = _VALUE.search(match.group(2))
                            if ref is not None and value is not None:
                                key = (int(ref.group(2)), _column_index(ref.group(1)))
                                errors_raw[key] = value.group(1).decode("utf-8", "replace")
                    if self._padded_cell is not None:
                        self._padded_overrides(cells, overrides_raw)
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
                # A cell may run across two chunks: keep enough to see it whole next time.
                tail = data[-4096:] if in_cells else data
        first_row = first_row or 1
        first_col = first_col or 0
        merged = [
            (r0 - (first_row - 1), c0 - first_col, r1 - (first_row - 1), c1 - first_col)
            for r0, c0, r1, c1 in merged_raw
        ]
        errors = [(r - first_row, c - first_col, code) for (r, c), code in errors_raw.items()]
        overrides = [(r - first_row, c - first_col, t) for (r, c), t in overrides_raw.items()]
        rows = row_ends
        if self.max_rows is not None and row_ends > self.max_rows:
            rows = self._rows_with_values(index)  # rows that are only formatting do not count
        return SheetLayout(first_row, merged, errors, rows, overrides, first_col)

    def _padded_overrides(self, cells: bytes, found: dict[tuple[int, int], str]) -> None:
        """Number cells whose format pads them with zeros, as the format shows them."""
        assert self._padded_cell is not None
        for match in self._padded_cell.finditer(cells):
            attributes = match.group(1)
            kind = _TYPE.search(attributes)
            ref = _REF.search(attributes)
            style = _STYLE.search(attributes)
            if ref is None or style is None or (kind and kind.group(1) != b"n"):
                continue
            try:
                value = float(match.group(2))
            except ValueError:
                continue
            shown = self.padded[int(style.group(1))].show(value)
            if shown is not None:
                found[(int(ref.group(2)), _column_index(ref.group(1)))] = shown

    def long_numbers(self, index: int, first_row: int, first_col: int) -> list[Override]:
        """Number cells of 16+ integer digits, as numbers.py hands them on (table positions).

        A second pass over the sheet XML, made only when an ID column holds such digits: the
        scan costs about a tenth of a large sheet's read, which ordinary files need not pay.
        """
        if index >= len(self.parts):
            return []
        found: dict[tuple[int, int], str] = {}
        tail = b""
        pattern: re.Pattern[bytes] | None = None
        with zipfile.ZipFile(self.path) as archive, archive.open(self.parts[index]) as stream:
            while chunk := stream.read(1 << 22):
                cells = tail + chunk
                if pattern is None:
                    namespace = _SHEET_DATA.search(cells)
                    if namespace is None:
                        tail = cells[-4096:]
                        continue
                    pattern = _long_number(namespace.group(1) or b"")
                for match in pattern.finditer(cells):
                    start = max(
                        cells.rfind(b"<c ", 0, match.start()), cells.rfind(b":c ", 0, match.start())
                    )
                    if start < 0:
                        continue
                    attributes = cells[start : cells.find(b">", start)]
                    kind = _TYPE.search(attributes)
                    ref = _REF.search(attributes)
                    if ref is None or (kind and kind.group(1) != b"n"):
                        continue  # text, shared strings and formula strings are exact as written
                    text = untrusted_number_text(match.group(1).decode("ascii"))
                    if text is not None:
                        found[(int(ref.group(2)), _column_index(ref.group(1)))] = text
                tail = cells[-4096:]
        return [(r - first_row, c - first_col, text) for (r, c), text in found.items()]

    def declared_rows(self, index: int) -> int | None:
        """Rows in the used range the sheet declares (<dimension ref="A1:V1003"/>), if any.

        An upper bound of the rows holding a value in files written by Excel, WPS and the
        usual libraries; nothing stops a hand-made file from understating it.
        """
        if index >= len(self.parts):
            return None
        with zipfile.ZipFile(self.path) as archive, archive.open(self.parts[index]) as stream:
            head = stream.read(4096)
        found = _DIMENSION.search(head)
        if found is None:
            return None
        return int(found.group(4) or found.group(2)) - int(found.group(2)) + 1

    def _rows_with_values(self, index: int) -> int:
        count = 0
        rest = b""
        with zipfile.ZipFile(self.path) as archive, archive.open(self.parts[index]) as stream:
            while chunk := stream.read(1 << 22):
                pieces = (rest + chunk).split(_ROW_END)
                rest = pieces.pop()
                count += sum(1 for piece in pieces if b"v>" in piece or b"is>" in piece)
        return count


def _padded_styles(archive: zipfile.ZipFile) -> dict[int, PaddingFormat]:
    """Cell style indexes (the `s` of a cell) whose number format pads with zeros."""
    try:
        styles = archive.read("xl/styles.xml")
    except KeyError:
        return {}
    if b"numFmt " not in styles and b":numFmt " not in styles:
        return {}  # only custom formats (id 164 on) pad: Excel's built-in ones do not
    try:
        root = ElementTree.fromstring(styles)
    except ElementTree.ParseError:
        return {}
    codes: dict[str, PaddingFormat] = {}
    for element in root.iter():
        if element.tag.rsplit("}", 1)[-1] == "numFmt":
            found = padding_format(element.get("formatCode", ""))
            if found is not None:
                codes[element.get("numFmtId", "")] = found
    if not codes:
        return {}
    padded: dict[int, PaddingFormat] = {}
    for element in root.iter():
        if element.tag.rsplit("}", 1)[-1] == "cellXfs":
            for index, xf in enumerate(e for e in element if e.tag.rsplit("}", 1)[-1] == "xf"):
                code = codes.get(xf.get("numFmtId", ""))
                if code is not None:
                    padded[index] = code
    return padded


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


def _xls_layout(path: Path, index: int, cells: BiffSheetCells | None) -> SheetLayout:
    """Legacy .xls and .ods: python-calamine knows the range start and (for .xls) the merged
    cells; the error cells (read as empty by calamine) and the number cells shown otherwise
    (zero-padded codes, numbers too long to trust) come from the file itself."""
    try:
        from python_calamine import CalamineWorkbook

        sheet = CalamineWorkbook.from_path(str(path)).get_sheet_by_index(index)
        start_row, start_col = sheet.start or (0, 0)
        merged = [
            (r0 - start_row, c0 - start_col, r1 - start_row, c1 - start_col)
            for (r0, c0), (r1, c1) in (sheet.merged_cell_ranges or [])
        ]
    except Exception:
        return SheetLayout()
    found = cells or BiffSheetCells()
    merged += [
        (r0 - start_row, c0 - start_col, r1 - start_row, c1 - start_col)
        for r0, c0, r1, c1 in found.merged
    ]
    errors = [(row - start_row, col - start_col, code) for row, col, code in found.errors]
    overrides = [(row - start_row, col - start_col, text) for row, col, text in found.overrides]
    return SheetLayout(start_row + 1, merged, errors, None, overrides)


# BIFF error codes (MS-XLS 2.5.10 BErr) and the records that can hold an error value.
_BIFF_ERRORS = {
    0x00: "#NULL!", 0x07: "#DIV/0!", 0x0F: "#VALUE!", 0x17: "#REF!", 0x1D: "#NAME?",
    0x24: "#NUM!", 0x2A: "#N/A", 0x2B: "#GETTING_DATA",
}  # fmt: skip
_BOUNDSHEET, _BOF, _EOF, _FORMULA, _BOOLERR = 0x0085, 0x0809, 0x000A, 0x0006, 0x0205
_FORMAT, _XF, _NUMBER, _RK, _MULRK = 0x041E, 0x00E0, 0x0203, 0x027E, 0x00BD


@dataclass
class BiffSheetCells:
    """What calamine does not report about a sheet's cells, 0-based (row, column, …)."""

    errors: list[tuple[int, int, str]] = field(default_factory=list)
    overrides: list[tuple[int, int, str]] = field(default_factory=list)
    merged: list[tuple[int, int, int, int]] = field(default_factory=list)


def _xls_cells(path: Path) -> dict[int, BiffSheetCells]:
    """Per sheet index, the error cells and the number cells shown otherwise."""
    try:
        import olefile

        with olefile.OleFileIO(str(path)) as ole:
            name = "Workbook" if ole.exists("Workbook") else "Book"
            stream = ole.openstream(name).read()
    except Exception:
        return {}
    return biff_cells(stream)


def biff_error_cells(stream: bytes) -> dict[int, list[tuple[int, int, str]]]:
    """Error cells of a BIFF5/8 workbook stream: BOOLERR records with the error flag, and
    FORMULA records whose cached result is an error."""
    return {index: cells.errors for index, cells in biff_cells(stream).items() if cells.errors}


def _rk_value(raw: int) -> float:
    """An RK number (MS-XLS 2.5.217): a 30-bit integer or the high bits of a double, maybe ÷100."""
    if raw & 2:
        value = float(struct.unpack("<i", struct.pack("<I", raw & 0xFFFFFFFC))[0] >> 2)
    else:
        value = struct.unpack("<d", struct.pack("<Q", (raw & 0xFFFFFFFC) << 32))[0]
    return value / 100 if raw & 1 else value


def _biff_formats(stream: bytes, end: int) -> dict[int, PaddingFormat]:
    """XF index → padding format, from the FORMAT and XF records of the globals substream."""
    codes: dict[int, PaddingFormat] = {}
    xf_formats: list[int] = []
    position = 0
    while position + 4 <= min(end, len(stream)):
        kind, size = struct.unpack_from("<HH", stream, position)
        body = stream[position + 4 : position + 4 + size]
        position += 4 + size
        if kind == _FORMAT and len(body) >= 5:
            number, length, flags = struct.unpack_from("<HHB", body, 0)
            raw = body[5 : 5 + length * (2 if flags & 1 else 1)]
            text = raw.decode("utf-16-le" if flags & 1 else "latin-1", errors="replace")
            found = padding_format(text)
            if found is not None:
                codes[number] = found
        elif kind == _XF and len(body) >= 4:
            xf_formats.append(struct.unpack_from("<H", body, 2)[0])
        elif kind == _EOF:
            break
    return {i: codes[f] for i, f in enumerate(xf_formats) if f in codes}


def biff_cells(stream: bytes) -> dict[int, BiffSheetCells]:
    """Per sheet of a BIFF5/8 workbook stream: error cells (BOOLERR with the error flag,
    FORMULA with an error result) and number cells (NUMBER, RK, MULRK, FORMULA results) whose
    format pads with zeros or whose value is too long to trust (numbers.py)."""
    starts: list[int] = []
    position = 0
    while position + 4 <= len(stream):  # the globals substream lists where each sheet starts
        kind, size = struct.unpack_from("<HH", stream, position)
        if kind == _BOUNDSHEET and size >= 4:
            starts.append(struct.unpack_from("<I", stream, position + 4)[0])
        position += 4 + size
        if kind == _EOF:
            break
    padded = _biff_formats(stream, position)
    found: dict[int, BiffSheetCells] = {}

    def number(row: int, col: int, xf: int, value: float, cells: BiffSheetCells) -> None:
        text = untrusted_number_text(repr(value))
        if text is None and xf in padded:
            text = padded[xf].show(value)
        if text is not None:
            cells.overrides.append((row, col, text))

    for index, position in enumerate(starts):
        cells = BiffSheetCells()
        first = True
        while position + 4 <= len(stream):
            kind, size = struct.unpack_from("<HH", stream, position)
            body = stream[position + 4 : position + 4 + size]
            position += 4 + size
            if first and kind != _BOF:
                break  # not where BOUNDSHEET said: leave this sheet's cells unknown
            first = False
            if kind == _EOF:
                break
            code: int | None = None
            if kind == _BOOLERR and len(body) >= 8 and body[7] == 1:
                code = body[6]
            elif kind == _FORMULA and len(body) >= 14:
                if body[12:14] == b"\xff\xff":
                    if body[6] == 2:
                        code = body[8]  # a cached result of type 2 (error) carries its code
                else:
                    row, col, xf = struct.unpack_from("<HHH", body, 0)
                    number(row, col, xf, struct.unpack_from("<d", body, 6)[0], cells)
            elif kind == _NUMBER and len(body) >= 14:
                row, col, xf = struct.unpack_from("<HHH", body, 0)
                number(row, col, xf, struct.unpack_from("<d", body, 6)[0], cells)
            elif kind == _RK and len(body) >= 10:
                row, col, xf, raw = struct.unpack_from("<HHHI", body, 0)
                number(row, col, xf, _rk_value(raw), cells)
            elif kind == _MULRK and len(body) >= 6:
                row, col = struct.unpack_from("<HH", body, 0)
                for offset in range(4, len(body) - 2, 6):
                    xf, raw = struct.unpack_from("<HI", body, offset)
                    number(row, col, xf, _rk_value(raw), cells)
                    col += 1
            if code is not None:
                row, col = struct.unpack_from("<HH", body, 0)
                cells.errors.append((row, col, _BIFF_ERRORS.get(code, "#VALUE!")))
        if cells.errors or cells.overrides:
            found[index] = cells
    return found


_ODS_TABLE = "{urn:oasis:names:tc:opendocument:xmlns:table:1.0}"
_ODS_OFFICE = "{urn:oasis:names:tc:opendocument:xmlns:office:1.0}"
_ODS_NUMERIC = ("float", "percentage", "currency")
_PADDED_TEXT = re.compile(r"(\D*?)(0+\d*)(\D*)")


def ods_cells(path: Path) -> dict[int, BiffSheetCells]:
    """Per sheet of an OpenDocument spreadsheet (.ods, LibreOffice and WPS): merged ranges,
    error cells, and number cells shown otherwise (0-based, absolute positions).

    LibreOffice writes each cell's value and, beside it, the text it displays: a padded code
    shows as 000124 there, a 19-digit number typed as a number as 2.02503E+18.
    """
    found: dict[int, BiffSheetCells] = {}
    try:
        with zipfile.ZipFile(path) as archive, archive.open("content.xml") as stream:
            sheet_index = -1
            row = 0
            cells = BiffSheetCells()
            for event, element in ElementTree.iterparse(stream, events=("start", "end")):
                tag = element.tag
                if tag == f"{_ODS_TABLE}table":
                    if event == "start":
                        sheet_index += 1
                        row = 0
                        cells = BiffSheetCells()
                    elif cells.errors or cells.overrides or cells.merged:
                        found[sheet_index] = cells
                    continue
                if tag != f"{_ODS_TABLE}table-row" or event != "end":
                    continue
                repeat_rows = int(element.get(f"{_ODS_TABLE}number-rows-repeated", "1"))
                column = 0
                for cell in element:
                    if not cell.tag.endswith(("table-cell", "covered-table-cell")):
                        continue
                    repeat = int(cell.get(f"{_ODS_TABLE}number-columns-repeated", "1"))
                    if cell.tag == f"{_ODS_TABLE}table-cell" and len(cell):
                        _ods_cell(cell, row, column, cells)
                    column += repeat
                row += repeat_rows
                element.clear()
    except (zipfile.BadZipFile, KeyError, OSError, ElementTree.ParseError, ValueError):
        return {}
    return found


def _ods_cell(cell: ElementTree.Element, row: int, column: int, cells: BiffSheetCells) -> None:
    span_columns = int(cell.get(f"{_ODS_TABLE}number-columns-spanned", "1"))
    span_rows = int(cell.get(f"{_ODS_TABLE}number-rows-spanned", "1"))
    if span_columns > 1 or span_rows > 1:
        cells.merged.append((row, column, row + span_rows - 1, column + span_columns - 1))
    shown = "\n".join("".join(p.itertext()) for p in cell if p.tag.endswith("}p"))
    if cell.get(f"{_ODS_TABLE}formula") and (shown in EXCEL_ERRORS or shown.startswith("Err:")):
        cells.errors.append((row, column, shown if shown in EXCEL_ERRORS else "#VALUE!"))
        return
    if cell.get(f"{_ODS_OFFICE}value-type") not in _ODS_NUMERIC:
        return
    literal = cell.get(f"{_ODS_OFFICE}value", "")
    text = untrusted_number_text(literal)
    if text is None:
        try:
            value = float(literal)
        except ValueError:
            return
        padded = _PADDED_TEXT.fullmatch(shown.strip())
        if (
            padded is not None
            and value == int(value)
            and int(padded.group(2)) == int(value)
            and len(padded.group(2)) > len(str(int(value)))
        ):
            text = shown.strip()
    if text is not None:
        cells.overrides.append((row, column, text))


# --- CSV -------------------------------------------------------------------------------------

_SAMPLE_BYTES = 1 << 20


def _sample_is_utf8(sample: bytes) -> bool:
    """The first megabyte is UTF-8 (it may end inside a character)."""
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as error:
        return error.start >= len(sample) - 3 and error.reason == "unexpected end of data"
    return True


def _decode_line(line: bytes) -> str | None:
    """One line as UTF-8 where it is valid UTF-8, else as GB18030 (what Excel saves as GBK).

    Files pasted together from two exports mix both. Chinese text in GBK is almost never
    valid UTF-8, so the order decides nothing wrongly; GB18030 on a UTF-8 line would give
    plausible-looking nonsense (锦绣花园 → 閿︾唬鑺卞洯) without any error.
    """
    if line.isascii():
        return line.decode("ascii")
    utf8 = _utf8_or_none(line)
    if utf8 is not None:
        return utf8
    try:
        return line.decode("gb18030")
    except UnicodeDecodeError:
        return None


def _utf8_or_none(line: bytes) -> str | None:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        return None


class _NotUtf8(Exception):
    """DuckDB met a byte sequence that is not UTF-8."""


# A CSV is read in parts of this many rows: memory follows the part, not the file. Measured
# on a 1M-row CSV with DuckDB capped at 256 MB, staging peaked at 1,049 MB RSS with parts of
# 500k rows, 731 MB with 200k, 575 MB with 100k (and took half the CPU: no batches joined).
CSV_CHUNK_ROWS = 100_000
# The first part is never shorter: the header search looks at the first rows (locate.py).
_HEAD_ROWS = 64


@dataclass
class SheetParts:
    """A sheet in parts: `head` (the first rows, where the header is searched) and the parts
    after it, each a RawSheet of the same c0..cN columns whose first_row says where it starts.

    A workbook's sheet is one part. `rest` holds the file open: close it when not read through.
    """

    head: RawSheet
    rest: Generator[RawSheet, None, None] = field(default_factory=lambda: _no_parts())

    def close(self) -> None:
        self.rest.close()


def _no_parts() -> Generator[RawSheet, None, None]:
    yield from ()


def read_csv(path: Path, max_rows: int, sheet_name: str = "") -> RawSheet:
    """A CSV as one table of text columns c0, c1, … with one row per line as Excel numbers them."""
    parts = csv_parts(path, max_rows, sheet_name)
    tables = [parts.head.table, *(part.table for part in parts.rest)]
    table = pa.concat_tables(tables, promote_options="default") if len(tables) > 1 else tables[0]
    return RawSheet(parts.head.name, table, 1, [])


def csv_parts(
    path: Path, max_rows: int, sheet_name: str = "", chunk_rows: int | None = None
) -> SheetParts:
    """A CSV in parts of `chunk_rows` rows (default CSV_CHUNK_ROWS), in file order.

    UTF-8 (with or without BOM) is read by DuckDB, which checks every byte; a file that is
    not UTF-8 throughout is decoded line by line (UTF-8 where valid, else GB18030) into a
    UTF-8 copy first. A file refused for its encoding or its size raises LoadError, also
    while the parts are read (a refusal found further down the file).
    """
    name = path.name
    with path.open("rb") as handle:
        sample = handle.read(_SAMPLE_BYTES)
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
        text_sample = sample.decode("utf-16", errors="ignore")
    elif _sample_is_utf8(sample):
        encoding = "utf-8"
        text_sample = sample.decode("utf-8-sig", errors="ignore")
    else:
        encoding = "gb18030"  # line by line: UTF-8 where valid, else GB18030
        text_sample = "\n".join(
            _decode_line(line) or "" for line in sample.removeprefix(codecs.BOM_UTF8).split(b"\n")
        )
    delimiter = _sniff_delimiter(text_sample)
    width = max(
        (len(row) for row in csv.reader(io.StringIO(text_sample), delimiter=delimiter)), default=0
    )
    if width == 0:
        raise LoadError(name, "文件中没有任何数据。")
    temporaries: list[Path] = []
    try:
        if encoding == "utf-16":
            temporaries.append(_transcode(path, encoding))
        elif encoding == "gb18030":
            temporaries.append(_transcode_lines(path, name))
    except UnicodeDecodeError as error:
        for temporary in temporaries:
            temporary.unlink(missing_ok=True)
        raise LoadError(
            name, f"文件中有无法按 {encoding} 解码的字符（{error}）；请另存为“CSV UTF-8”。"
        ) from error
    tables = _csv_tables(path, name, encoding, delimiter, width, chunk_rows, temporaries)
    parts = _parts(tables, sheet_name or path.stem, chunk_rows or CSV_CHUNK_ROWS, max_rows, name)
    try:
        head = next(parts, None)
    except BaseException:
        parts.close()
        raise
    if head is None:  # no records at all (blank lines only)
        empty = pa.table({f"c{i}": pa.array([], pa.string()) for i in range(width)})
        return SheetParts(RawSheet(sheet_name or path.stem, empty, 1, []))
    return SheetParts(head, parts)


def _parts(
    tables: Iterator[pa.Table], sheet_name: str, chunk_rows: int, max_rows: int, name: str
) -> Generator[RawSheet, None, None]:
    """The tables cut into parts of chunk_rows rows (the first at least _HEAD_ROWS), numbered."""
    pending: list[pa.Table] = []
    held = 0
    start = 0  # records before the next part
    target = max(chunk_rows, _HEAD_ROWS)
    try:
        for table in tables:
            if table.num_rows == 0:
                continue
            pending.append(table)
            held += table.num_rows
            if start + held > max_rows:
                raise LoadError(name, _over_limit(max_rows))
            while held >= target:
                joined = _joined(pending)
                part, rest = joined.slice(0, target), joined.slice(target)
                yield RawSheet(sheet_name, part, start + 1, [])
                start += target
                pending, held = ([rest] if rest.num_rows else []), rest.num_rows
                target = max(chunk_rows, 1)
        if held:
            yield RawSheet(sheet_name, _joined(pending), start + 1, [])
    finally:
        if isinstance(tables, Generator):
            tables.close()


def _joined(tables: list[pa.Table]) -> pa.Table:
    if len(tables) == 1:
        return tables[0]
    return pa.concat_tables(tables, promote_options="default")


def _over_limit(max_rows: int) -> str:
    return too_many_rows(max_rows + 1, max_rows).replace(
        f"文件有 {max_rows + 1:,} 行", f"文件有超过 {max_rows:,} 行"
    )


def _csv_tables(
    path: Path,
    name: str,
    encoding: str,
    delimiter: str,
    width: int,
    chunk_rows: int | None,
    temporaries: list[Path],
) -> Generator[pa.Table, None, None]:
    """The file's records as tables in file order, whatever reader ends up reading them.

    A file that turns out not to be UTF-8 further down (DuckDB refuses the bytes) is
    transcoded line by line and read on from the record where DuckDB stopped; the records
    before it were valid UTF-8, so they are the same in the copy.
    """
    done = 0  # records handed on
    source = temporaries[-1] if temporaries else path
    try:
        while True:
            try:
                for table in _text_tables(source, delimiter, width, chunk_rows, done):
                    done += table.num_rows
                    yield table
                return
            except _NotUtf8 as error:
                if temporaries:  # a transcoded copy is UTF-8 throughout
                    raise LoadError(
                        name, f"文件中有无法按 {encoding} 解码的字符；请另存为“CSV UTF-8”。"
                    ) from error
                temporaries.append(_transcode_lines(path, name))
                source = temporaries[-1]
    except UnicodeDecodeError as error:
        raise LoadError(
            name, f"文件中有无法按 {encoding} 解码的字符（{error}）；请另存为“CSV UTF-8”。"
        ) from error
    finally:
        for temporary in temporaries:
            temporary.unlink(missing_ok=True)


def _text_tables(
    path: Path, delimiter: str, width: int, chunk_rows: int | None, skip: int
) -> Iterator[pa.Table]:
    """A UTF-8 CSV's records after the first `skip`, through DuckDB where its records line up
    with the file's lines, else through Python.

    DuckDB drops empty lines, which would shift every row number after them. When it finds
    as many records as the file has lines, nothing was dropped (and no quoted cell spans
    lines); otherwise, if the file has empty lines, Python's csv module reads it, which keeps
    them. A file DuckDB's reader refuses part way is read on by Python from where it stopped.
    """
    if _has_empty_lines(path):
        lines = _count_lines(path)
        try:
            records = _duckdb_count(path, delimiter, width)
        except duckdb.Error as error:
            if "unicode" in str(error).lower():
                raise _NotUtf8 from error
            records = -1
        if records not in (lines, lines + 1):
            yield from _python_tables(path, delimiter, chunk_rows, skip)
            return  # (DuckDB's count does not look at every byte: Python finds what is not UTF-8)
    done = 0
    try:
        for batch in _duckdb_batches(path, delimiter, width, chunk_rows):
            table = pa.Table.from_batches([batch])
            if done + table.num_rows <= skip:
                done += table.num_rows
                continue
            if done < skip:
                table = table.slice(skip - done)
                done = skip
            done += table.num_rows
            yield table
    except _STREAM_ERRORS as error:  # DuckDB's error reaches the stream as Arrow's
        if "unicode" in str(error).lower():
            raise _NotUtf8 from error
        yield from _python_tables(path, delimiter, chunk_rows, max(done, skip))


_STREAM_ERRORS = (duckdb.Error, pa.ArrowException, OSError)


def _count_lines(path: Path) -> int:
    count = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 24):
            count += chunk.count(b"\n")
    return count


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
    try:
        with open(handle, "wb", closefd=True) as out, path.open("rb") as source:
            while chunk := source.read(1 << 22):
                out.write(decoder.decode(chunk).encode("utf-8"))
            out.write(decoder.decode(b"", final=True).encode("utf-8"))
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


def _decode_block(block: bytes) -> list[str | None]:
    """The lines of `block`, each decoded as _decode_line decodes it, a block at a time.

    A newline byte is never part of a multi-byte character in UTF-8 or GB18030, so the
    GB18030 reading of the block splits into the same lines as the bytes; a line that is
    valid UTF-8 takes its UTF-8 reading instead.
    """
    try:
        return list(block.decode("utf-8").split("\n"))
    except UnicodeDecodeError:
        pass
    try:
        as_gb = block.decode("gb18030").split("\n")
    except UnicodeDecodeError:  # some line is neither: find which, line by line
        return [_decode_line(line) for line in block.split(b"\n")]
    lines = block.split(b"\n")
    return [
        gb if line.isascii() else (_utf8_or_none(line) or gb)
        for line, gb in zip(lines, as_gb, strict=True)
    ]


def _transcode_lines(path: Path, name: str) -> Path:
    """A UTF-8 copy, each line decoded by _decode_line; refuses lines neither encoding reads."""
    handle, temporary = tempfile.mkstemp(suffix=".csv", prefix="govdash-")
    undecodable: list[int] = []
    number = 0
    rest = b""
    with open(handle, "wb", closefd=True) as out, path.open("rb") as source:
        first = True
        while True:
            chunk = source.read(1 << 22)
            data = rest + chunk
            if first:
                data = data.removeprefix(codecs.BOM_UTF8)
                first = False
            cut = data.rfind(b"\n") if chunk else len(data)
            if cut < 0:  # no line ends in this chunk yet
                rest = data
                continue
            block, rest = data[:cut], data[cut + 1 :]
            if block or chunk:
                decoded = _decode_block(block)
                for index, text in enumerate(decoded):
                    if text is None:
                        undecodable.append(number + index + 1)
                number += len(decoded)
                body = "\n".join(text or "" for text in decoded)
                out.write((body + ("\n" if chunk else "")).encode("utf-8"))
            if not chunk:
                break
    if undecodable:
        Path(temporary).unlink(missing_ok=True)
        shown = "、".join(str(n) for n in undecodable[:5]) + ("等" if len(undecodable) > 5 else "")
        raise LoadError(
            name,
            f"第 {shown} 行（共 {len(undecodable)} 行）含有无法识别的字符：既不是 UTF-8 也不是 "
            "GBK/GB18030 编码，文件可能已损坏或混入了其他编码的内容，整个文件未加载。"
            "请用 Excel 打开后另存为“CSV UTF-8（逗号分隔）”再加载。",
        )
    return Path(temporary)


def _duckdb_relation(
    con: duckdb.DuckDBPyConnection, path: Path, delimiter: str, width: int
) -> duckdb.DuckDBPyRelation:
    return con.read_csv(
        str(path),
        header=False,
        delimiter=delimiter,
        quotechar='"',
        escapechar='"',
        columns={f"c{i}": "VARCHAR" for i in range(width)},
        null_padding=True,
        auto_detect=False,
        encoding="utf-8",
        strict_mode=False,
    )


def _reader_connection() -> duckdb.DuckDBPyConnection:
    # Results come in file order (DuckDB's default), which the row numbers rely on.
    return duckdb.connect(config={"preserve_insertion_order": True})


def _duckdb_batches(
    path: Path, delimiter: str, width: int, chunk_rows: int | None
) -> Iterator[pa.RecordBatch]:
    """The records as Arrow batches, streamed in file order (DuckDB parses ahead on its
    threads, holding a few batches, not the file)."""
    con = _reader_connection()
    try:
        reader = _duckdb_relation(con, path, delimiter, width).to_arrow_reader(
            max(1, min(chunk_rows or CSV_CHUNK_ROWS, 1 << 17))
        )
        yield from reader
    finally:
        con.close()


def _duckdb_count(path: Path, delimiter: str, width: int) -> int:
    con = _reader_connection()
    try:
        rows = _duckdb_relation(con, path, delimiter, width).aggregate("count(*)").fetchall()
        return int(rows[0][0])
    finally:
        con.close()


def _python_tables(
    path: Path, delimiter: str, chunk_rows: int | None, skip: int
) -> Iterator[pa.Table]:
    """Slow but forgiving path for CSVs DuckDB's reader refuses (ragged quoting and the like),
    and for files with empty lines (kept, so rows keep their numbers); in parts."""
    size = max(1, chunk_rows or CSV_CHUNK_ROWS)
    with path.open("r", encoding="utf-8-sig", newline="") as handle:
        rows: list[list[str]] = []
        try:
            for index, row in enumerate(csv.reader(handle, delimiter=delimiter)):
                if index < skip:
                    continue
                rows.append(row)
                if len(rows) >= size:
                    yield _rows_table(rows)
                    rows = []
        except UnicodeDecodeError as error:  # the rows before it are handed on
            raise _NotUtf8 from error
        if rows:
            yield _rows_table(rows)


def _rows_table(rows: list[list[str]]) -> pa.Table:
    width = max((len(row) for row in rows), default=0)
    return pa.table(
        {
            f"c{i}": pa.array([row[i] if i < len(row) else None for row in rows], pa.string())
            for i in range(width)
        }
    )
