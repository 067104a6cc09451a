"""Chart builders: a DataFrame in, a plotly figure out, styled to read on screen and in print."""

from __future__ import annotations

import math
import pickle
import unicodedata
from dataclasses import dataclass
from datetime import date

import plotly.graph_objects as go
import plotly.io as pio

from govdash.analytics.metrics.rates import without_negative_zero
from govdash.i18n import t

TEMPLATE_NAME = "govdash_print"
FONT_FAMILY = (
    "Noto Sans CJK SC, Noto Sans SC, Source Han Sans SC, PingFang SC, "
    "Microsoft YaHei, WenQuanYi Micro Hei, sans-serif"
)
TEXT_COLOUR = "#222222"
MUTED_COLOUR = "#595959"
GRID_COLOUR = "#D9D9D9"
AXIS_LINE_COLOUR = "#8C8C8C"

# Okabe–Ito: distinguishable with the common colour-vision deficiencies. Yellow is last
# because it nearly vanishes on white paper.
PALETTE: tuple[str, ...] = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#D55E00",  # vermillion
    "#56B4E9",  # sky blue
    "#CC79A7",  # reddish purple
    "#000000",  # black
    "#F0E442",  # yellow
)
# Lines also differ by dash so a greyscale print still tells them apart.
LINE_DASHES: tuple[str, ...] = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
# Red list is a deep red (mid grey in print); the black list is near-black and hatched,
# so the two stay apart without colour.
RED_LIST_COLOUR = "#B2182B"
BLACK_LIST_COLOUR = "#262626"
OTHER_UNITS_COLOUR = "#BFBFBF"
# Light to dark blue for ordered parts (e.g. aging buckets): order survives greyscale.
SEQUENTIAL_BLUES: tuple[str, ...] = (
    "#C6DBEF",
    "#9ECAE1",
    "#6BAED6",
    "#4292C6",
    "#2171B5",
    "#08519C",
    "#08306B",
)
HEATMAP_SCALE = "Blues"
# The selected period on a trend: a light band behind the lines, edged so it still shows on
# a greyscale print (the fill alone is a pale grey there).
HIGHLIGHT_FILL = "rgba(0, 114, 178, 0.13)"
HIGHLIGHT_EDGE = "rgba(0, 114, 178, 0.55)"
HIGHLIGHT_OUTLINE = "#D55E00"  # around bars, which would hide a band: vermillion, mid grey in print
# Month labels on every monthly axis, in every language (plotly would print "Mar 2025").
MONTH_FORMAT = "%Y-%m"
MAX_MONTH_LABELS = 7  # month labels that fit a half-page chart side by side, unrotated

DEFAULT_HEIGHT = 520
ROW_HEIGHT = 28  # per bar in horizontal charts
TOP_MARGIN = 110  # room for title, subtitle and a horizontal legend of one row
# Charts often sit in half a page (about 480 px wide); titles and legends are laid out so
# they fit there (see fit_header).
TITLE_WIDTH = 40  # display units that fit on one title line at 19 px (a CJK character counts 2)
TITLE_FONT_PX = 19
LEGEND_WIDTH_PX = 340  # the plot area of a half-page chart
TITLE_LINE_PX = 28
SUBTITLE_PX = 26
LEGEND_ROW_PX = 24
LEGEND_SYMBOL_PX = 40  # plotly's symbol and padding before an entry's text
LEGEND_CHAR_PX = 7.0  # per display unit of text at 13 px (a CJK character counts 2)
LEGEND_GAP_PX = 6  # between legend entries, and between the legend and the plot
NOTE_LEGEND = "legend2"  # a second legend under the x axis, for notes like the shaded period
NOTE_ROW_PX = 28


@dataclass(frozen=True)
class ChartContext:
    """What every chart states about itself: the period, how many records, which filters."""

    period_label: str
    n: int
    filters_text: str = ""


@dataclass(frozen=True)
class Highlight:
    """A span of a time axis to shade (the selected period on a trend) and its legend text."""

    start: date
    end: date  # inclusive
    label: str


def _build_template() -> go.layout.Template:
    template = go.layout.Template(pio.templates["plotly_white"])
    axis = {
        "gridcolor": GRID_COLOUR,
        "linecolor": AXIS_LINE_COLOUR,
        "zerolinecolor": AXIS_LINE_COLOUR,
        "showline": True,
        "ticks": "outside",
        "tickcolor": AXIS_LINE_COLOUR,
        "title": {"font": {"size": 14, "color": TEXT_COLOUR}, "standoff": 10},
        "tickfont": {"size": 13, "color": TEXT_COLOUR},
        "automargin": True,
    }
    template.layout.update(
        font={"family": FONT_FAMILY, "size": 14, "color": TEXT_COLOUR},
        paper_bgcolor="#FFFFFF",
        plot_bgcolor="#FFFFFF",
        colorway=list(PALETTE),
        title={
            "font": {"size": TITLE_FONT_PX, "color": TEXT_COLOUR},
            "x": 0.0,
            "xref": "container",
            "xanchor": "left",
            "y": 1.0,
            "yref": "container",
            "yanchor": "top",
            "pad": {"l": 14, "t": 12},
            "subtitle": {"font": {"size": 13, "color": MUTED_COLOUR}},
        },
        legend={
            "orientation": "h",
            "x": 0.0,
            "xanchor": "left",
            "y": 1.02,
            "yanchor": "bottom",
            "font": {"size": 13},
            "bgcolor": "rgba(255,255,255,0)",
        },
        margin={"l": 70, "r": 40, "t": TOP_MARGIN, "b": 70},
        hoverlabel={"font": {"family": FONT_FAMILY, "size": 13}},
        xaxis=axis,
        yaxis=axis,
        height=DEFAULT_HEIGHT,
    )
    return template


PRINT_TEMPLATE = _build_template()
pio.templates[TEMPLATE_NAME] = PRINT_TEMPLATE
pio.templates.default = TEMPLATE_NAME
# The default would load MathJax from a CDN during export; the network is closed in
# deployment. (plotly 7.1's to_image skips a falsy value, so export.py also passes
# mathjax=False to kaleido itself.)
pio.defaults.mathjax = False
# The template as a figure holds it once assigned: validated, its keys in plotly's order.
_ASSIGNED_TEMPLATE = pickle.dumps(go.layout.Template(PRINT_TEMPLATE).to_plotly_json())


def set_print_template(fig: go.Figure) -> go.Figure:
    """Give `fig` the print template, as `fig.update_layout(template=PRINT_TEMPLATE)` would;
    returns `fig`.

    Assigning it that way validates the whole template again for every figure (its trace
    defaults for some thirty trace types: ~20 ms, a third of building a chart). It was
    validated once, above; a copy of the result goes in unvalidated, as plotly puts in its
    default template (BaseFigure._initialize_layout_template)."""
    layout = fig.layout
    validate = layout._validate
    layout._validate = False
    try:
        layout.template = pickle.loads(_ASSIGNED_TEMPLATE)
    finally:
        layout._validate = validate
    return fig


def subtitle_text(context: ChartContext, lang: str = "zh") -> str:
    """The line under the title: period and number of records, carried into exported images."""
    parts = [
        t("label.period", lang, period=context.period_label),
        t("label.n", lang, n=f"{context.n:,}"),
    ]
    return t("label.subtitle_separator", lang).join(parts)


def apply_print_style(
    fig: go.Figure, title: str, context: ChartContext, lang: str = "zh"
) -> go.Figure:
    """Give `fig` the print template, a title and the period · n subtitle; returns `fig`."""
    # The template is set on the figure itself: `import streamlit` switches the global
    # default to a template whose colours only a browser fills in (exports come out black).
    set_print_template(fig).update_layout(
        title={
            "text": title,
            "font": {"size": title_font_size(title)},
            "subtitle": {"text": subtitle_text(context, lang)},
        },
    )
    return fit_header(fig)


def display_width(text: str) -> int:
    """Width in half-width units: a CJK (wide or full-width) character counts 2."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def title_font_size(text: str, width: int = TITLE_WIDTH) -> int:
    """The title's font size: 19 px, smaller for titles longer than `width` display units so
    they fit half a page on one line (plotly does not wrap titles), never below 13 px."""
    units = display_width(text)
    return TITLE_FONT_PX if units <= width else max(13, int(TITLE_FONT_PX * width / units))


def _legend_names(fig: go.Figure, legend: str) -> list[str]:
    """The entries of one legend ("legend", "legend2" …): traces and shapes that show in it."""
    names = [
        str(trace.name)
        for trace in fig.data
        if trace.name and trace.showlegend is not False and (trace.legend or "legend") == legend
    ]
    names += [
        str(shape.name)
        for shape in fig.layout.shapes
        if shape.showlegend and shape.name and (shape.legend or "legend") == legend
    ]
    return names


def _legend_rows(fig: go.Figure) -> int:
    """Rows the horizontal legend above the plot takes in a half-page chart, estimated from
    its labels the way plotly lays it out: one row when every entry fits side by side, else
    a grid whose cells are all as wide as the widest entry."""
    if fig.layout.showlegend is False:
        return 0
    names = _legend_names(fig, "legend")
    forced = fig.layout.showlegend is True or any(trace.showlegend is True for trace in fig.data)
    if not names or (len(names) == 1 and not forced):
        return 0
    widths = [LEGEND_SYMBOL_PX + LEGEND_CHAR_PX * display_width(name) for name in names]
    if sum(widths) + LEGEND_GAP_PX * (len(widths) - 1) < LEGEND_WIDTH_PX:
        return 1
    per_row = max(1, int((LEGEND_WIDTH_PX + LEGEND_GAP_PX) // (max(widths) + LEGEND_GAP_PX)))
    return math.ceil(len(widths) / per_row)


def _height(fig: go.Figure) -> int:
    return int(fig.layout.height or PRINT_TEMPLATE.layout.height or DEFAULT_HEIGHT)


def fit_header(fig: go.Figure) -> go.Figure:
    """Make the top margin hold the title, the subtitle and the legend's rows, and pin the
    legend a few pixels above the plot, so it never covers the title or subtitle however
    tall the chart is (a fraction of the plot's height would reach the title in a tall
    chart); a note legend ("legend2", e.g. what a shaded band means) goes under the x axis.
    Returns `fig`."""
    rows = _legend_rows(fig)
    needed = 12 + TITLE_LINE_PX + SUBTITLE_PX + rows * LEGEND_ROW_PX + 16
    top = max(int(needed), int(fig.layout.margin.t or 0), TOP_MARGIN - 30)
    base = int(PRINT_TEMPLATE.layout.margin.b or 70)
    bottom = int(fig.layout.margin.b or base)
    has_note = bool(_legend_names(fig, NOTE_LEGEND))
    if has_note:  # (max, so that styling a figure twice does not add the row twice)
        bottom = max(bottom, base + NOTE_ROW_PX)
    plot_height = max(_height(fig) - top - bottom, 60)
    # Paper coordinates measure the plot area, which keeps its height when an export adds a
    # footer below it; so do these positions.
    fig.update_layout(
        margin={"t": top, "b": bottom},
        legend={"y": 1 + LEGEND_GAP_PX / plot_height, "yanchor": "bottom"},
    )
    if has_note:
        fig.update_layout(
            {
                NOTE_LEGEND: {
                    "orientation": "h",
                    "x": 0.0,
                    "xanchor": "left",
                    "y": -(bottom - NOTE_ROW_PX + 4) / plot_height,
                    "yanchor": "top",
                    "font": {"size": 13},
                    "bgcolor": "rgba(255,255,255,0)",
                }
            }
        )
    return fig


def format_value(value: object, *, percent: bool = False, decimals: int = 0) -> str:
    """A value as a chart label: 12.3% for rates (given as fractions), 1,234 otherwise.

    A value that rounds to zero at the shown precision is labelled 0, never −0."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    number = float(value)  # type: ignore[arg-type]
    if percent:
        shown = max(decimals, 1)
        return f"{without_negative_zero(number, shown + 2):.{shown}%}"
    return f"{without_negative_zero(number, decimals):,.{decimals}f}"


def hover_format(percent: bool, decimals: int) -> str:
    return f".{max(decimals, 1)}%" if percent else f",.{decimals}f"
