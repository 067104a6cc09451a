"""Chart builders: a DataFrame in, a plotly figure out, styled to read on screen and in print."""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass

import plotly.graph_objects as go
import plotly.io as pio

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


@dataclass(frozen=True)
class ChartContext:
    """What every chart states about itself: the period, how many records, which filters."""

    period_label: str
    n: int
    filters_text: str = ""


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
    fig.update_layout(
        template=PRINT_TEMPLATE,
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


def _legend_rows(fig: go.Figure) -> int:
    """Rows a horizontal legend takes in a half-page chart (an estimate from its labels)."""
    if fig.layout.showlegend is False:
        return 0
    names = [str(trace.name) for trace in fig.data if trace.name and trace.showlegend is not False]
    forced = fig.layout.showlegend is True or any(trace.showlegend is True for trace in fig.data)
    if not names or (len(names) == 1 and not forced):
        return 0
    rows, used = 1, 0.0
    for name in names:
        entry = 40 + 7.0 * display_width(name)
        if used and used + entry > LEGEND_WIDTH_PX:
            rows, used = rows + 1, 0.0
        used += entry
    return rows


def fit_header(fig: go.Figure) -> go.Figure:
    """Make the top margin hold the title, the subtitle and the legend's rows, so the
    legend (drawn just above the plot) never covers the subtitle; returns `fig`."""
    rows = _legend_rows(fig)
    needed = 12 + TITLE_LINE_PX + SUBTITLE_PX + rows * LEGEND_ROW_PX + 16
    current = fig.layout.margin.t
    fig.update_layout(margin={"t": max(int(needed), int(current or 0), TOP_MARGIN - 30)})
    return fig


def format_value(value: object, *, percent: bool = False, decimals: int = 0) -> str:
    """A value as a chart label: 12.3% for rates (given as fractions), 1,234 otherwise."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    number = float(value)  # type: ignore[arg-type]
    if percent:
        return f"{number:.{max(decimals, 1)}%}"
    return f"{number:,.{decimals}f}"


def hover_format(percent: bool, decimals: int) -> str:
    return f".{max(decimals, 1)}%" if percent else f",.{decimals}f"
