"""Files analysts take away (CSV, XLSX, PNG, SVG), each stamped with filters, sources and time."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import csv
import html
import io
import logging
import math
import os
import re
import shutil
import threading
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter

from govdash.analytics.charts.style import DEFAULT_HEIGHT, MUTED_COLOUR, PRINT_TEMPLATE
from govdash.i18n import CATALOG, column_label, t

DEFAULT_BROWSER_PATH = "/usr/bin/chromium"
IMAGE_WIDTH = 1000
IMAGE_TIMEOUT_SECONDS = 90.0
EXCEL_MAX_ROWS = 1_048_576

# Column names that carry personal data (PIPL): exact names after trimming and lower-casing.
PERSONAL_COLUMNS: frozenset[str] = frozenset(
    {
        "caller_hash",
        "phone",
        "phone_hash",
        "mobile",
        "telephone",
        "name",
        "contact_name",
        "contact_phone",
        "resident_name",
        "owner_name",
        "id_number",
        "id_card",
        "room",
        "room_number",
        "联系人",
        "联系电话",
        "联系方式",
        "电话",
        "手机",
        "手机号",
        "姓名",
        "业主姓名",
        "报修人",
        "身份证",
        "身份证号",
        "房号",
        "房间号",
    }
)
# Any column whose name holds one of these words is personal too (e.g. resident_phone, 业主电话).
_PERSONAL_NAME_TOKENS = ("phone", "mobile", "caller", "电话", "手机", "身份证", "姓名", "房号")
# Digit boundaries keep long ticket or batch numbers from matching.
_PHONE_PATTERN = r"(?<!\d)1[3-9]\d{9}(?!\d)"
_ID_NUMBER_PATTERN = r"(?<![\dXx])\d{17}[\dXx](?![\dXx\d])"
_PERSONAL_VALUE_PATTERNS: tuple[tuple[str, str], ...] = (
    ("export.kind_phone", _PHONE_PATTERN),
    ("export.kind_id_number", _ID_NUMBER_PATTERN),
)

# OWASP CSV injection: a cell starting with these is read by spreadsheets as a formula.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

_INVALID_SHEET_CHARACTERS = re.compile(r"[\[\]:*?/\\]")


class PersonalDataError(ValueError):
    """An export that would carry personal data; the message says which column (never the value)."""


class ImageExportError(RuntimeError):
    """A chart could not be rendered to an image; the message says what to do."""


@dataclass(frozen=True)
class Provenance:
    """Where an exported table or chart came from, printed under it."""

    filters_text: str
    sources: list[str] = field(default_factory=list)
    generated_at: datetime = field(default_factory=datetime.now)
    config_fingerprint: str = ""

    def lines(self, lang: str = "zh") -> list[str]:
        """One line for the filters, one per source, then the time and the config fingerprint."""

        def line(label_key: str, value: str) -> str:
            return t("provenance.line", lang, label=t(label_key, lang), value=value)

        not_recorded = t("provenance.not_recorded", lang)
        result = [line("provenance.filters", self.filters_text or t("filter.none", lang))]
        for source in self.sources or [not_recorded]:
            result.append(line("provenance.sources", source))
        result.append(line("provenance.generated_at", self.generated_at.strftime("%Y-%m-%d %H:%M")))
        result.append(line("provenance.config", self.config_fingerprint or not_recorded))
        return result


# --- personal-data guard -------------------------------------------------------------------


def is_personal_column(column: object) -> bool:
    """Whether a column name marks personal data (exact names, or a telling word inside)."""
    name = unicodedata.normalize("NFKC", str(column)).strip().lower()
    return name in PERSONAL_COLUMNS or any(token in name for token in _PERSONAL_NAME_TOKENS)


def assert_no_personal_data(df: pd.DataFrame, lang: str = "zh") -> None:
    """Raise PersonalDataError if `df` has a personal column or a phone / ID number in a cell."""
    for column in df.columns:
        if is_personal_column(column):
            raise PersonalDataError(t("export.personal_column", lang, column=column))
    for column in df.columns:
        text = _text_cells(df[column])
        if text is None:
            continue
        for kind_key, pattern in _PERSONAL_VALUE_PATTERNS:
            hits = text.str.contains(pattern, regex=True, na=False)
            if bool(hits.any()):
                row = int(hits.to_numpy().argmax()) + 1
                raise PersonalDataError(
                    t("export.personal_value", lang, row=row, column=column, kind=t(kind_key, lang))
                )


def _text_cells(series: pd.Series) -> pd.Series | None:
    """The cells a phone or ID number could hide in, as text: strings and integers."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_float_dtype(dtype):
        return None
    if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
        return None
    if pd.api.types.is_integer_dtype(dtype):
        return series.astype("string")
    return series.map(_cell_as_text).astype("string")


def _cell_as_text(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _assert_figure_has_no_personal_data(fig: go.Figure, lang: str) -> None:
    texts: list[str] = []
    for trace in fig.data:
        for attribute in ("x", "y", "text", "hovertext", "customdata", "name", "labels"):
            value = getattr(trace, attribute, None)
            texts.extend(_flatten_text(value))
    texts.extend(_flatten_text([a.text for a in fig.layout.annotations]))
    texts.extend(_flatten_text([fig.layout.title.text, fig.layout.title.subtitle.text]))
    assert_no_personal_data(pd.DataFrame({"figure_text": pd.Series(texts, dtype="object")}), lang)


def _flatten_text(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, int) and not isinstance(value, bool):
        return [str(value)]
    if isinstance(value, Iterable) and not isinstance(value, (bytes, dict)):
        flat: list[str] = []
        for item in value:
            flat.extend(_flatten_text(item))
        return flat
    return []


# --- cells ---------------------------------------------------------------------------------


def neutralise_cell(value: object) -> object:
    """Prefix an apostrophe to text a spreadsheet would run as a formula; other values unchanged."""
    if not isinstance(value, str):
        return value
    if value.lstrip(" ").startswith(_FORMULA_PREFIXES):
        return "'" + value
    return value


def _neutralise_frame(df: pd.DataFrame) -> pd.DataFrame:
    frame = df.copy()
    frame.columns = [str(neutralise_cell(str(column))) for column in frame.columns]
    for position in range(frame.shape[1]):
        series = frame.iloc[:, position]
        dtype = series.dtype
        if (
            pd.api.types.is_numeric_dtype(dtype)
            or pd.api.types.is_bool_dtype(dtype)
            or pd.api.types.is_datetime64_any_dtype(dtype)
            or pd.api.types.is_timedelta64_dtype(dtype)
        ):
            continue
        frame.isetitem(position, series.astype(object).map(neutralise_cell).to_numpy())
    return frame


# --- column formats ------------------------------------------------------------------------


@dataclass(frozen=True)
class ColumnFormat:
    """How a column is shown: on screen, in an XLSX cell (a real number with a number format)
    and in a CSV (full precision; see to_csv_bytes).

    kind: "percent" (a fraction shown as 92.5%), "number" (`decimals` places), "count" (a
    whole number with thousands separators), "month" (2025-03), "date" or "datetime".
    `signed` shows + before a positive change.
    """

    kind: Literal["percent", "number", "count", "month", "date", "datetime"]
    decimals: int = 0
    signed: bool = False

    @property
    def excel(self) -> str:
        """The XLSX number format."""
        if self.kind == "month":
            return "yyyy-mm"
        if self.kind == "date":
            return "yyyy-mm-dd"
        if self.kind == "datetime":
            return "yyyy-mm-dd hh:mm"
        if self.kind == "count":
            return "#,##0"
        places = "." + "0" * self.decimals if self.decimals else ""
        body = f"0{places}%" if self.kind == "percent" else f"#,##0{places}"
        # Zero gets its own section, so a change of 0 shows without a sign.
        return f"+{body};-{body};{body}" if self.signed else body

    def rounded(self, value: float) -> float:
        """`value` at the precision shown (a percentage to `decimals` places of the percent);
        never −0.0."""
        places = self.decimals + 2 if self.kind == "percent" else self.decimals
        return round(value, places) + 0.0

    def text(self, value: object) -> str:
        """The value as shown (for column widths and on-screen checks)."""
        if value is None or value is pd.NA or value is pd.NaT:
            return ""
        if isinstance(value, float) and math.isnan(value):
            return ""
        if self.kind in ("month", "date", "datetime") and isinstance(value, (date, datetime)):
            pattern = {"month": "%Y-%m", "date": "%Y-%m-%d", "datetime": "%Y-%m-%d %H:%M"}
            return value.strftime(pattern[self.kind])
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return str(value)
        sign = "+" if self.signed else ""
        if self.kind == "percent":
            return f"{value * 100:{sign},.{self.decimals}f}%"
        if self.kind == "count":
            return f"{value:{sign},.0f}"
        return f"{value:{sign},.{self.decimals}f}"


PERCENT = ColumnFormat("percent", 1)
PERCENT_CHANGE = ColumnFormat("percent", 1, signed=True)
ONE_DECIMAL = ColumnFormat("number", 1)
TWO_DECIMALS = ColumnFormat("number", 2)
TWO_DECIMALS_CHANGE = ColumnFormat("number", 2, signed=True)
THREE_DECIMALS = ColumnFormat("number", 3)
WHOLE_CHANGE = ColumnFormat("number", 0, signed=True)
COUNT = ColumnFormat("count")
MONTH = ColumnFormat("month")
DATE = ColumnFormat("date")
DATETIME = ColumnFormat("datetime")

# Column (code) names whose format the naming rules in column_format would not give.
NAMED_FORMATS: dict[str, ColumnFormat] = {
    "rate": PERCENT,
    "share": PERCENT,
    "wilson_low": PERCENT,
    "wilson_high": PERCENT,
    "three_rate_composite": PERCENT,
    "weight": PERCENT,
    "change": PERCENT_CHANGE,  # wave_change: current − previous rate
    "composite": ONE_DECIMAL,
    "satisfaction_index": ONE_DECIMAL,
    "effective_n": ONE_DECIMAL,
    "tickets_per_100_households": ONE_DECIMAL,
    "age_days": ONE_DECIMAL,
    "estimate": ONE_DECIMAL,
    "low": ONE_DECIMAL,
    "high": ONE_DECIMAL,
    "twfe_estimate": ONE_DECIMAL,
    "twfe_low": ONE_DECIMAL,
    "twfe_high": ONE_DECIMAL,
    "difference": ONE_DECIMAL,
    "mean_treated": ONE_DECIMAL,
    "mean_control": ONE_DECIMAL,
    "mean_before": ONE_DECIMAL,
    "mean_after": ONE_DECIMAL,
    "mean_score": TWO_DECIMALS,
    "total": TWO_DECIMALS,
    "total_before": TWO_DECIMALS,
    "total_after": TWO_DECIMALS,
    "points": TWO_DECIMALS,
    "points_max": TWO_DECIMALS,
    "aggregate": TWO_DECIMALS,
    "total_change": TWO_DECIMALS_CHANGE,
    "rank_change": WHOLE_CHANGE,
    "moved_by": WHOLE_CHANGE,
    "spearman": THREE_DECIMALS,
    "kendall": THREE_DECIMALS,
    "entropy_score": THREE_DECIMALS,
    "topsis_closeness": THREE_DECIMALS,
    "month": MONTH,
}
_COUNT_NAMES = frozenset(
    {"n", "count", "tickets", "households", "respondents", "comments", "overdue", "repeats"}
    | {"satisfied", "evaluators"}
)
_PERCENTILE = re.compile(r"(response|resolution)_p\d{2}")
FORMATS_ATTR = "govdash_column_formats"


def column_format(name: str) -> ColumnFormat | None:
    """The format a column of this (code) name takes, from the naming conventions of the
    queries: *_rate and *_share are fractions, *_minutes / *_hours / P10…P90 times to one
    decimal, *_n and the like counts, *_at timestamps, *_on dates, month a month."""
    if name in NAMED_FORMATS:
        return NAMED_FORMATS[name]
    if name.endswith(("_rate", "_share")):
        return PERCENT
    if name.endswith(("_minutes", "_hours")) or _PERCENTILE.fullmatch(name):
        return ONE_DECIMAL
    if name.endswith("_at"):
        return DATETIME
    if name.endswith("_on"):
        return DATE
    if (
        name in _COUNT_NAMES
        or name.endswith(("_n", "_tickets"))
        or name.startswith(("n_", "rows_", "tickets_"))
    ):
        return COUNT
    return None


def header_label(name: str, lang: str = "zh") -> str:
    """A column's header in `lang`: ``column.<name>``, else the report's ``report.col_<name>``,
    else the name itself."""
    for key in (f"column.{name}", f"report.col_{name}"):
        if key in CATALOG:
            return t(key, lang)
    return column_label(name, lang)


def localised_table(
    frame: pd.DataFrame,
    lang: str = "zh",
    labels: Mapping[str, str] | None = None,
    formats: Mapping[str, ColumnFormat] | None = None,
) -> pd.DataFrame:
    """`frame` as it is shown and downloaded: headers in `lang` (`labels` first, then the
    catalog) and each column's format, found from its code name (`formats` first, then
    column_format), kept in the frame's attrs for the XLSX and the on-screen table."""
    chosen = dict(labels or {})
    given = dict(formats or {})
    names = {str(c): chosen.get(str(c)) or header_label(str(c), lang) for c in frame.columns}
    found: dict[str, ColumnFormat] = dict(frame.attrs.get(FORMATS_ATTR, {}))
    for code, shown in names.items():
        fmt = given.get(code) or column_format(code)
        if fmt is not None:
            found[shown] = fmt
    table = frame.rename(columns=names)
    table.attrs[FORMATS_ATTR] = found
    return table


def column_formats(frame: pd.DataFrame) -> dict[str, ColumnFormat]:
    """Each column's format: kept by localised_table, else from a code name, else timestamps
    from their type. Columns without one are written as they are."""
    kept: Mapping[str, ColumnFormat] = frame.attrs.get(FORMATS_ATTR, {})
    formats: dict[str, ColumnFormat] = {}
    for column in frame.columns:
        name = str(column)
        fmt = kept.get(name) or column_format(name)
        if fmt is None and pd.api.types.is_datetime64_any_dtype(frame[column].dtype):
            fmt = DATETIME
        if fmt is not None:
            formats[name] = fmt
    return formats


def screen_values(series: pd.Series, fmt: ColumnFormat) -> pd.Series:
    """A number column as an on-screen table holds it for a printf format: percentages for a
    fraction (a format cannot multiply), and 0 for what would show as ±0.0. Other values keep
    their precision; the format rounds what is shown."""
    values = pd.to_numeric(series, errors="coerce").astype(float)
    if fmt.kind == "percent":
        values = values * 100.0
    return values.where(values.round(fmt.decimals) != 0, 0.0)


def _is_bool_column(series: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(series.dtype):
        return True
    if series.dtype != object:
        return False
    values = series.dropna()
    return not values.empty and all(isinstance(v, (bool, np.bool_)) for v in values)


def _yes_no(value: object, lang: str) -> object:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return t("report.yes" if bool(value) else "report.no", lang)


def _as_month(value: object) -> object:
    if isinstance(value, (datetime, date)):
        return date(value.year, value.month, 1)
    if isinstance(value, str):
        try:
            parsed = pd.Timestamp(value)
        except ValueError:
            return value
        return date(parsed.year, parsed.month, 1)
    return value


# --- file names ------------------------------------------------------------------------------

# Characters Windows refuses in a file name, and its reserved device names.
_UNSAFE_FILE_CHARACTERS = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]')
_RESERVED_FILE_NAMES = re.compile(r"(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?", re.IGNORECASE)
MAX_FILE_STEM = 120  # characters; leaves room for a folder in Windows' 260-character paths
_HTML_TAG = re.compile(r"<[^>]*>")


def safe_file_stem(text: str) -> str:
    """`text` as a file name without suffix that Windows, macOS and Linux all accept: no
    <>:"/\\|?* or control characters, no reserved device name, no trailing dot or space,
    whitespace collapsed, at most MAX_FILE_STEM characters."""
    stem = _UNSAFE_FILE_CHARACTERS.sub("_", unicodedata.normalize("NFC", text))
    stem = re.sub(r"\s+", " ", stem).strip()
    stem = re.sub(r"_+", "_", stem)[:MAX_FILE_STEM].rstrip(" .")
    stem = stem.strip("_ ") or "export"
    if _RESERVED_FILE_NAMES.fullmatch(stem):
        stem = "_" + stem
    return stem


def export_file_name(title: str, period: str, suffix: str) -> str:
    """E.g. "月度工单量_2025年3月.xlsx": what the file holds, then its period."""
    parts = [part for part in (title, period) if part and part.strip()]
    stem = safe_file_stem("_".join(part.strip() for part in parts))
    return f"{stem}.{suffix}"


def figure_title(fig: go.Figure | None) -> str:
    """A chart's title as plain text ("" without one)."""
    if fig is None or fig.layout.title.text is None:
        return ""
    return re.sub(r"\s+", " ", _HTML_TAG.sub(" ", str(fig.layout.title.text))).strip()


# --- CSV -----------------------------------------------------------------------------------


def to_csv_bytes(
    df: pd.DataFrame,
    provenance: Provenance,
    lang: str = "zh",
    formats: Mapping[str, ColumnFormat] | None = None,
) -> bytes:
    """UTF-8 CSV with a BOM (Excel reads Chinese right); provenance rows '# …' after a blank row.

    Numbers keep their full precision (rates as fractions, times unrounded): a CSV is what an
    analyst computes with, and it cannot carry a number format, so rounding it would only lose
    digits; the XLSX is the report, rounded and formatted as the page shows. Months are written
    2025-03 and true/false as 是/否 (yes/no), as the page says them.
    """
    assert_no_personal_data(df, lang)
    chosen = column_formats(df) if formats is None else dict(formats)
    frame = df.copy()
    for position, column in enumerate(df.columns):
        series = df.iloc[:, position]
        fmt = chosen.get(str(column))
        if _is_bool_column(series):
            frame.isetitem(position, [_yes_no(v, lang) for v in series.astype(object)])
        elif fmt is not None and fmt.kind == "month":
            frame.isetitem(position, [MONTH.text(_as_month(v)) for v in series.astype(object)])
    buffer = io.StringIO()
    _neutralise_frame(frame).to_csv(buffer, index=False, lineterminator="\r\n")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([])
    for line in provenance.lines(lang):
        writer.writerow(["# " + line])
    return buffer.getvalue().encode("utf-8-sig")


# --- XLSX ----------------------------------------------------------------------------------


def to_xlsx_bytes(
    df: pd.DataFrame,
    provenance: Provenance,
    lang: str = "zh",
    sheet_name: str = "",
    formats: Mapping[str, ColumnFormat] | None = None,
) -> bytes:
    """A workbook laid out as a report: the table with a styled, frozen header row, numbers
    rounded to what the page shows and carrying a number format (rates as percentages, times
    to one decimal, months as 2025-03), columns as wide as their content (CJK counts double),
    true/false as 是/否; the provenance below it and again on a second sheet. `formats` maps a
    header to its ColumnFormat (default: column_formats). Every text cell is neutralised: no
    formulas."""
    assert_no_personal_data(df, lang)
    footer_rows = len(provenance.lines(lang)) + 2
    if len(df) + footer_rows > EXCEL_MAX_ROWS:
        raise ValueError(t("export.too_many_rows", lang, rows=len(df), limit=EXCEL_MAX_ROWS))
    chosen = column_formats(df) if formats is None else dict(formats)
    # Write-only mode streams rows: 50k rows take seconds instead of half a minute.
    workbook = Workbook(write_only=True)
    about_title = t("export.about_sheet", lang)
    sheet = workbook.create_sheet(
        _sheet_title(sheet_name or t("export.data_sheet", lang), avoid=about_title)
    )
    frame = _neutralise_frame(df)
    headers = [str(column) for column in df.columns]
    writers = [
        _cell_writer(sheet, frame.iloc[:, position], chosen.get(header), lang)
        for position, header in enumerate(headers)
    ]
    for index, width in enumerate(_column_widths(headers, frame, writers), start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    sheet.freeze_panes = "A2"

    sheet.append([_styled(sheet, neutralise_cell(header), _HEADER_STYLE) for header in headers])
    for row in frame.itertuples(index=False, name=None):
        sheet.append([writer.cell(value) for writer, value in zip(writers, row, strict=True)])
    sheet.append([])
    for line in provenance.lines(lang):
        sheet.append([_styled(sheet, neutralise_cell(line), _PROVENANCE_STYLE)])

    lines = provenance.lines(lang)
    about = workbook.create_sheet(about_title)
    about.column_dimensions["A"].width = min(100, max(_display_width(line) for line in lines) + 2)
    about.append([_styled(about, t("export.about_heading", lang), _ABOUT_HEADING_STYLE)])
    for line in lines:
        about.append([neutralise_cell(line)])

    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


_HEADER_STYLE: dict[str, Any] = {
    "font": Font(bold=True, color="FFFFFF"),
    "fill": PatternFill("solid", fgColor="1F4E79"),
    "border": Border(bottom=Side(style="thin", color="1F4E79")),
    "alignment": Alignment(horizontal="center", vertical="center", wrap_text=True),
}
_PROVENANCE_STYLE: dict[str, Any] = {"font": Font(italic=True, color="595959")}
_ABOUT_HEADING_STYLE: dict[str, Any] = {"font": Font(bold=True, size=13)}


def _styled(sheet: Any, value: object, style: dict[str, Any]) -> WriteOnlyCell:
    cell = WriteOnlyCell(sheet, value=value)
    for name, setting in style.items():
        setattr(cell, name, setting)
    return cell


def _sheet_title(name: str, avoid: str) -> str:
    title = _INVALID_SHEET_CHARACTERS.sub("_", name).strip("'")[:31] or "Sheet1"
    return title if title != avoid else (title + "_1")[:31]


@dataclass(frozen=True)
class _CellWriter:
    """How one column's values become cells: the value as written and its number format."""

    sheet: Any
    convert: Callable[[object], object]
    number_format: str | None = None
    fmt: ColumnFormat | None = None

    def value(self, raw: object) -> object:
        return self.convert(raw)

    def cell(self, raw: object) -> object:
        value = self.convert(raw)
        if value is None or self.number_format is None:
            return value
        cell = WriteOnlyCell(self.sheet, value=value)
        cell.number_format = self.number_format
        return cell

    def text(self, raw: object) -> str:
        """The value as Excel shows it, for the column's width."""
        value = self.convert(raw)
        if self.fmt is not None:
            return self.fmt.text(value)
        return _render_for_width(value)


def _cell_writer(sheet: Any, series: pd.Series, fmt: ColumnFormat | None, lang: str) -> _CellWriter:
    """Text was neutralised beforehand; booleans become 是/否 (yes/no)."""
    if _is_bool_column(series):
        return _CellWriter(sheet, lambda v: _yes_no(v, lang))
    if fmt is None:
        if pd.api.types.is_datetime64_any_dtype(series.dtype):
            return _CellWriter(sheet, _datetime_cell)
        return _CellWriter(sheet, _plain_cell)
    if fmt.kind == "month":
        return _CellWriter(sheet, lambda v: _as_month(_datetime_cell(v) or v), fmt.excel, fmt)
    if fmt.kind in ("date", "datetime"):
        return _CellWriter(sheet, _datetime_cell, fmt.excel, fmt)
    return _CellWriter(sheet, lambda v: _number_cell(v, fmt), fmt.excel, fmt)


def _number_cell(value: object, fmt: ColumnFormat) -> object:
    plain = _plain_cell(value)
    if isinstance(plain, bool) or not isinstance(plain, (int, float)):
        return plain
    if fmt.kind == "count":
        return int(plain) if float(plain).is_integer() else plain
    return fmt.rounded(float(plain))


def _datetime_cell(value: object) -> object:
    if value is None or value is pd.NaT or not isinstance(value, (datetime, date)):
        return None
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, datetime) and value.tzinfo is not None:
        value = value.replace(tzinfo=None)  # Excel has no time zones; keep the wall time shown
    return value


def _plain_cell(value: object) -> object:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (datetime, pd.Timestamp)):
        return _datetime_cell(value)
    if isinstance(value, (str, int, float, bool, date, time)):
        return value
    if isinstance(value, Decimal):
        return float(value)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return neutralise_cell(str(value))


def _display_width(text: str) -> int:
    """Characters as Excel columns count them: CJK and full-width characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def _column_widths(
    headers: list[str], frame: pd.DataFrame, writers: list[_CellWriter]
) -> list[float]:
    """Each column as wide as its header or its widest value as shown (CJK counts double)."""
    sample = frame.head(500)  # enough rows to size a column
    widths = []
    for index, header in enumerate(headers):
        cells = [_display_width(writers[index].text(v)) for v in sample.iloc[:, index]]
        widths.append(float(min(60, max(8, _display_width(header), *cells) + 2)))
    return widths


def _render_for_width(value: object) -> str:
    if isinstance(value, (datetime, pd.Timestamp)):
        return "yyyy-mm-dd hh:mm:ss"
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return "" if value is None or value is pd.NA else str(value)


# --- images --------------------------------------------------------------------------------

FOOTER_FONT_SIZE = 11
FOOTER_LINE_HEIGHT = 16  # pixels per footer line at FOOTER_FONT_SIZE
FOOTER_PADDING = 14


def with_provenance_footer(fig: go.Figure, provenance: Provenance, lang: str = "zh") -> go.Figure:
    """A copy of `fig`, taller, with the provenance lines in a footer at its bottom edge."""
    copy = go.Figure(fig)
    lines = provenance.lines(lang)
    footer_height = FOOTER_LINE_HEIGHT * len(lines) + FOOTER_PADDING
    template_layout = PRINT_TEMPLATE.layout
    bottom = copy.layout.margin.b
    if bottom is None:
        bottom = template_layout.margin.b if template_layout.margin.b is not None else 70
    height = copy.layout.height or template_layout.height or DEFAULT_HEIGHT
    new_bottom = bottom + footer_height
    copy.add_annotation(
        text="<br>".join(html.escape(line, quote=False) for line in lines),
        xref="paper",
        yref="paper",
        x=0,
        y=0,
        xanchor="left",
        yanchor="bottom",
        # From the plot area's bottom edge down to just above the figure's bottom edge.
        yshift=-(new_bottom - FOOTER_PADDING // 2),
        align="left",
        showarrow=False,
        font={"size": FOOTER_FONT_SIZE, "color": MUTED_COLOUR},
    )
    copy.update_layout(margin={"b": new_bottom}, height=height + footer_height)
    return copy


def image_export_available() -> bool:
    """Whether a Chromium for kaleido is installed (pages can hide PNG/SVG buttons if not)."""
    path = os.environ.get("BROWSER_PATH") or DEFAULT_BROWSER_PATH
    return os.path.exists(path) or shutil.which("chromium") is not None


def figure_to_image(
    fig: go.Figure,
    fmt: Literal["png", "svg"],
    provenance: Provenance,
    lang: str = "zh",
    *,
    width: int | None = None,
    scale: float | None = None,
) -> bytes:
    """PNG or SVG bytes of a copy of `fig` with the provenance footer; `fig` is left unchanged."""
    if fmt not in ("png", "svg"):
        raise ValueError(f"fmt must be 'png' or 'svg', not {fmt!r}")
    _assert_figure_has_no_personal_data(fig, lang)
    stamped = with_provenance_footer(fig, provenance, lang)
    options = {
        "format": fmt,
        "width": width or stamped.layout.width or IMAGE_WIDTH,
        "height": stamped.layout.height,
        # PNGs are pasted into reports: twice the pixels keeps them sharp when printed.
        "scale": scale if scale is not None else (2.0 if fmt == "png" else 1.0),
    }
    return _RENDERER.render(stamped.to_dict(), options, lang)


class _ImageRenderer:
    """One headless Chromium, opened on first use and kept for later exports.

    kaleido is called directly rather than through plotly.io.to_image because plotly 7.1
    drops `defaults.mathjax = False` (it only forwards truthy values), so each export would
    load MathJax from a CDN; and because a browser kept open turns a ~3-8 s export into
    well under a second. Exports are serialised by a lock; a failure closes the browser
    so the next export starts a fresh one. `kaleido.get_chrome` is never used.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._kaleido: Any = None

    def render(self, figure: dict[str, Any], options: dict[str, Any], lang: str) -> bytes:
        with self._lock:
            try:
                loop, browser = self._ensure_open(lang)
                future = asyncio.run_coroutine_threadsafe(
                    browser.calc_fig(figure, opts=options), loop
                )
                result: bytes = future.result(IMAGE_TIMEOUT_SECONDS + 30)
                return result
            except ImageExportError:
                self._close()
                raise
            except Exception as error:
                self._close()
                raise ImageExportError(
                    t("export.image_failed", lang, reason=type(error).__name__)
                ) from error

    def _ensure_open(self, lang: str) -> tuple[asyncio.AbstractEventLoop, Any]:
        if self._loop is not None and self._kaleido is not None:
            return self._loop, self._kaleido
        os.environ.setdefault("BROWSER_PATH", DEFAULT_BROWSER_PATH)
        if not image_export_available():
            raise ImageExportError(t("export.browser_missing", lang))
        import kaleido  # deferred: only image export needs it

        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="govdash-image-export", daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread

        async def open_browser() -> Any:
            browser = kaleido.Kaleido(n=1, timeout=IMAGE_TIMEOUT_SECONDS, mathjax=False)
            await browser.open()
            return browser

        self._kaleido = asyncio.run_coroutine_threadsafe(open_browser(), loop).result(
            IMAGE_TIMEOUT_SECONDS
        )
        return loop, self._kaleido

    def _close(self) -> None:
        loop, thread, browser = self._loop, self._thread, self._kaleido
        self._loop = self._thread = self._kaleido = None
        if loop is None:
            return
        if browser is not None:
            # A broken browser may fail to close; it is dropped either way.
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(browser.close(), loop).result(15)
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(5)
            if not thread.is_alive():
                loop.close()

    def close(self) -> None:
        with self._lock:
            self._close()


class _DropCloseNoise(logging.Filter):
    """choreographer logs a traceback when it reads Chromium's "{bye}" on close; it is harmless."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("JSONError decoding message")


logging.getLogger("choreographer.channels.pipe").addFilter(_DropCloseNoise())
_RENDERER = _ImageRenderer()
atexit.register(_RENDERER.close)


def close_image_renderer() -> None:
    """Close the Chromium kept for image export (it reopens on the next export)."""
    _RENDERER.close()


# --- who exported what ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportRecord:
    """One export for the audit log: who, what (chart or table name), format, filters, rows."""

    actor: str
    method: str
    name: str
    file_format: str
    filters_text: str
    rows: int | Callable[[], int]  # or counted once the file is built (a deferred download)
    scope: str = "district"
    file_name: str = ""  # the name the file was downloaded under


class AuditSink(Protocol):
    """What records exports: govdash.core.audit.AuditLog."""

    def record(
        self,
        actor: str,
        action: str,
        target: str | None = None,
        detail: Mapping[str, Any] | None = None,
        method: str | None = None,
        at: datetime | None = None,
    ) -> None: ...


def recorded_export(
    build: Callable[[], bytes], record: ExportRecord, audit: AuditSink
) -> Callable[[], bytes]:
    """`build`, which on success also appends `record` to `audit` (an AuditLog).

    Only a file that was built is recorded; an export refused (e.g. by the personal-data
    guard) raises before anything is written to the log.
    """

    def run() -> bytes:
        data = build()
        audit.record(
            record.actor,
            "export",
            target=f"{record.name}.{record.file_format}",
            detail={
                "name": record.name,
                "format": record.file_format,
                "filters": record.filters_text,
                "rows": record.rows() if callable(record.rows) else record.rows,
                "bytes": len(data),
                "scope": record.scope,
                **({"file": record.file_name} if record.file_name else {}),
            },
            method=record.method,
        )
        return data

    return run
