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

import pandas as pd
import plotly.graph_objects as go
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter

from govdash.analytics.charts.style import DEFAULT_HEIGHT, MUTED_COLOUR, PRINT_TEMPLATE
from govdash.i18n import t

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


# --- CSV -----------------------------------------------------------------------------------


def to_csv_bytes(df: pd.DataFrame, provenance: Provenance, lang: str = "zh") -> bytes:
    """UTF-8 CSV with a BOM (Excel reads Chinese right); provenance rows '# …' after a blank row."""
    assert_no_personal_data(df, lang)
    buffer = io.StringIO()
    _neutralise_frame(df).to_csv(buffer, index=False, lineterminator="\r\n")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([])
    for line in provenance.lines(lang):
        writer.writerow(["# " + line])
    return buffer.getvalue().encode("utf-8-sig")


# --- XLSX ----------------------------------------------------------------------------------


def to_xlsx_bytes(
    df: pd.DataFrame, provenance: Provenance, lang: str = "zh", sheet_name: str = ""
) -> bytes:
    """A workbook: the table (styled header, fitted widths) with provenance below it, and the
    provenance again on a second sheet. Every text cell is neutralised: no formulas."""
    assert_no_personal_data(df, lang)
    footer_rows = len(provenance.lines(lang)) + 2
    if len(df) + footer_rows > EXCEL_MAX_ROWS:
        raise ValueError(t("export.too_many_rows", lang, rows=len(df), limit=EXCEL_MAX_ROWS))
    # Write-only mode streams rows: 50k rows take seconds instead of half a minute.
    workbook = Workbook(write_only=True)
    about_title = t("export.about_sheet", lang)
    sheet = workbook.create_sheet(
        _sheet_title(sheet_name or t("export.data_sheet", lang), avoid=about_title)
    )
    frame = _neutralise_frame(df)
    headers = [str(column) for column in frame.columns]
    for index, width in enumerate(_column_widths(headers, frame), start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    sheet.freeze_panes = "A2"

    sheet.append([_styled(sheet, header, _HEADER_STYLE) for header in headers])
    converters = [_xlsx_converter(frame[column]) for column in frame.columns]
    for row in frame.itertuples(index=False, name=None):
        sheet.append([convert(value) for convert, value in zip(converters, row, strict=True)])
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


def _xlsx_converter(series: pd.Series) -> Callable[[object], object]:
    """How one column's values become cells; text was neutralised beforehand."""
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return _datetime_cell
    return _plain_cell


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


def _column_widths(headers: list[str], frame: pd.DataFrame) -> list[float]:
    sample = frame.head(500)  # enough rows to size a column
    widths = []
    for index, header in enumerate(headers):
        cells = [_display_width(_render_for_width(v)) for v in sample.iloc[:, index]]
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
    rows: int
    scope: str = "district"


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
                "rows": record.rows,
                "bytes": len(data),
                "scope": record.scope,
            },
            method=record.method,
        )
        return data

    return run
