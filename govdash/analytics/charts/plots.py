"""Chart builders: a DataFrame in, a plotly figure out, styled to read on screen and in print."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd
import plotly.graph_objects as go

from govdash.analytics.charts.style import (
    AXIS_LINE_COLOUR,
    BLACK_LIST_COLOUR,
    DEFAULT_HEIGHT,
    HEATMAP_SCALE,
    HIGHLIGHT_EDGE,
    HIGHLIGHT_FILL,
    HIGHLIGHT_OUTLINE,
    LINE_DASHES,
    MAX_MONTH_LABELS,
    MONTH_FORMAT,
    MUTED_COLOUR,
    NOTE_LEGEND,
    OTHER_UNITS_COLOUR,
    PALETTE,
    RED_LIST_COLOUR,
    ROW_HEIGHT,
    SEQUENTIAL_BLUES,
    TEXT_COLOUR,
    TOP_MARGIN,
    ChartContext,
    Highlight,
    apply_print_style,
    format_value,
    hover_format,
)
from govdash.analytics.metrics import rates as metrics
from govdash.i18n import t

# Units one ranking chart draws: a city's 19,000 compounds cannot be read as bars (nor drawn in
# reasonable time); with more, the chart draws the first and the last MAX_CHART_UNITS // 2 of
# its order, and the page says so in its title. Its table and downloads keep every unit.
MAX_CHART_UNITS = 30


def chart_ends(
    frame: pd.DataFrame, key: pd.Series, *, ascending: bool, limit: int | None = None
) -> tuple[pd.DataFrame, int]:
    """(the rows a ranking chart ordered by `key` draws, how many it could draw): rows with a
    key, ordered as the chart orders them (stable), all of them up to `limit`, else the first
    and last limit // 2 (limit: MAX_CHART_UNITS unless given). The chart builders order their
    rows the same way, so they draw these rows in the same order as among all of them."""
    limit = MAX_CHART_UNITS if limit is None else limit
    known = key.notna().to_numpy()
    ordered = frame[known].assign(_chart_order=key[known].to_numpy())
    ordered = ordered.sort_values("_chart_order", ascending=ascending, kind="mergesort")
    ordered = ordered.drop(columns="_chart_order")
    if len(ordered) <= limit:
        return ordered, len(ordered)
    half = limit // 2
    return pd.concat([ordered.iloc[:half], ordered.iloc[len(ordered) - half :]]), len(ordered)


def _empty_figure(title: str, context: ChartContext, lang: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(
        text=t("state.empty", lang),
        x=0.5,
        y=0.5,
        xref="paper",
        yref="paper",
        showarrow=False,
        font={"size": 16, "color": MUTED_COLOUR},
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return apply_print_style(fig, title, context, lang)


def _horizontal_height(rows: int) -> int:
    return max(DEFAULT_HEIGHT - 120, rows * ROW_HEIGHT + TOP_MARGIN + 90)


def _values(frame: pd.DataFrame, column: str) -> list[object]:
    return [None if pd.isna(value) else value for value in frame[column].tolist()]


def _is_monthly(values: pd.Series) -> bool:
    """Datetimes that all fall on the first instant of a month: a monthly series."""
    if not pd.api.types.is_datetime64_any_dtype(values.dtype):
        return False
    stamps = pd.DatetimeIndex(values.dropna())
    return len(stamps) > 0 and bool(((stamps.day == 1) & (stamps.normalize() == stamps)).all())


def _rows_range(labels: Sequence[object]) -> list[float]:
    """The y range of a chart with one category row per label: exactly the rows. Plotly pads
    an axis with markers by 5% of its span, which in a chart of 125 units is 7 empty rows
    at the top and the bottom."""
    return [-0.5, len(dict.fromkeys(labels)) - 0.5]


def _time_axis(values: pd.Series) -> dict[str, object]:
    """Axis settings that keep dates language-neutral: plotly would print "Jan 2024"."""
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return {"type": "date", "tickformat": "%Y-%m-%d"}
    if values.map(lambda value: isinstance(value, str)).all():
        # "2024-01" would otherwise be read as a date and labelled in English.
        return {"type": "category"}
    return {}


def _between(earlier: pd.Timestamp, later: pd.Timestamp) -> pd.Timestamp:
    return earlier + (later - earlier) / 2


def _month_axis(
    fig: go.Figure, months: pd.Series, highlight: Highlight | None, over_bars: bool = False
) -> None:
    """Every monthly axis alike: labels 2025-03 in every language, at most MAX_MONTH_LABELS
    of them counted back from the last month (so the latest month is always labelled), hover
    in the same format, and the `highlight` shaded, named in the note legend under the axis."""
    stamps = pd.DatetimeIndex(months.dropna()).sort_values().unique()
    first, last = stamps[0], stamps[-1]
    count = (last.year - first.year) * 12 + last.month - first.month + 1
    step = max(1, math.ceil(count / MAX_MONTH_LABELS))
    month = pd.DateOffset(months=1)
    fig.update_xaxes(
        type="date",
        tickformat=MONTH_FORMAT,
        hoverformat=MONTH_FORMAT,
        dtick=f"M{step}",
        tick0=last,
        ticklabelmode="instant",
        range=[_between(first - month, first), _between(last, last + month)],
        showgrid=False,
    )
    fig.update_traces(xhoverformat=MONTH_FORMAT)
    if highlight is None:
        return
    # The months the selected period touches, each drawn as its point ± half a month.
    chosen_first = pd.Timestamp(highlight.start).to_period("M").to_timestamp()
    chosen_last = pd.Timestamp(highlight.end).to_period("M").to_timestamp()
    # Behind lines a shaded band; bars would hide a band, so around them an outline.
    fig.add_vrect(
        x0=_between(chosen_first - month, chosen_first),
        x1=_between(chosen_last, chosen_last + month),
        fillcolor="rgba(0, 0, 0, 0)" if over_bars else HIGHLIGHT_FILL,
        line=(
            {"color": HIGHLIGHT_OUTLINE, "width": 2.5}
            if over_bars
            else {"color": HIGHLIGHT_EDGE, "width": 1, "dash": "dot"}
        ),
        layer="above" if over_bars else "below",
        name=highlight.label,
        showlegend=True,
        legend=NOTE_LEGEND,
    )
    fig.update_layout(showlegend=True)


def line_trend(
    df: pd.DataFrame,
    x: str,
    ys: dict[str, str],
    *,
    title: str,
    context: ChartContext,
    lang: str = "zh",
    x_title: str = "",
    y_title: str = "",
    percent: bool = False,
    decimals: int = 0,
    highlight: Highlight | None = None,
) -> go.Figure:
    """One line per column in `ys` ({column: legend label}) over `x`, sorted by `x`.

    A monthly `x` (month-start datetimes) gets the shared month axis; `highlight` shades a
    span of it (the selected period) with a legend entry.
    """
    if df.empty:
        return _empty_figure(title, context, lang)
    frame = df.sort_values(x)
    fig = go.Figure()
    for index, (column, label) in enumerate(ys.items()):
        fig.add_trace(
            go.Scatter(
                x=frame[x].tolist(),
                y=_values(frame, column),
                name=label,
                mode="lines+markers",
                line={
                    "color": PALETTE[index % len(PALETTE)],
                    "dash": LINE_DASHES[index % len(LINE_DASHES)],
                    "width": 2.5,
                },
                marker={"size": 7},
                showlegend=len(ys) > 1,
                hovertemplate=f"%{{x}}<br>{label}: %{{y:{hover_format(percent, decimals)}}}<extra></extra>",
            )
        )
    if _is_monthly(frame[x]):
        fig.update_xaxes(title_text=x_title)
        _month_axis(fig, frame[x], highlight)
    else:
        fig.update_xaxes(title_text=x_title, **_time_axis(frame[x]))
    fig.update_yaxes(title_text=y_title, rangemode="tozero")
    if percent:
        fig.update_yaxes(tickformat=".0%")
    return apply_print_style(fig, title, context, lang)


def bar_ranking(
    df: pd.DataFrame,
    label_col: str,
    value_col: str,
    *,
    title: str,
    context: ChartContext,
    lang: str = "zh",
    value_title: str = "",
    label_title: str = "",
    percent: bool = False,
    decimals: int = 0,
    higher_is_better: bool = True,
    red_black_size: int | None = None,
) -> go.Figure:
    """Horizontal bars, best at the top, each labelled with its value.

    With `red_black_size`, the best N form the 红榜 and the worst N the 黑榜 (half the units
    each when there are fewer than 2N, as metrics.red_black_size); the rest are grey.
    """
    frame = df.dropna(subset=[value_col])
    if frame.empty:
        return _empty_figure(title, context, lang)
    best_first = frame.sort_values(
        value_col, ascending=not higher_is_better, kind="mergesort"
    ).reset_index(drop=True)
    labels = best_first[label_col].astype(str).tolist()

    def bar(part: pd.DataFrame, name: str, colour: str, pattern: str = "") -> go.Bar:
        values = part[value_col].tolist()
        return go.Bar(
            x=values,
            y=part[label_col].astype(str).tolist(),
            orientation="h",
            name=name,
            marker={
                "color": colour,
                "line": {"color": BLACK_LIST_COLOUR, "width": 0.5},
                "pattern": {"shape": pattern, "fgcolor": "#FFFFFF", "size": 6},
            },
            text=[format_value(v, percent=percent, decimals=decimals) for v in values],
            textposition="outside",
            cliponaxis=False,
            hovertemplate=f"%{{y}}: %{{x:{hover_format(percent, decimals)}}}<extra></extra>",
        )

    fig = go.Figure()
    if red_black_size:
        size = metrics.red_black_size(len(best_first), red_black_size)
        red = best_first.iloc[:size]
        black = best_first.iloc[max(size, len(best_first) - size) :]
        middle = best_first.iloc[size : max(size, len(best_first) - size)]
        if not red.empty:
            fig.add_trace(bar(red, t("label.red_list", lang), RED_LIST_COLOUR))
        if not middle.empty:
            fig.add_trace(bar(middle, t("label.other_units", lang), OTHER_UNITS_COLOUR))
        if not black.empty:
            fig.add_trace(bar(black, t("label.black_list", lang), BLACK_LIST_COLOUR, "/"))
        fig.update_layout(showlegend=True)
    else:
        fig.add_trace(bar(best_first, value_title, PALETTE[0]))
        fig.update_layout(showlegend=False)
    # Categories listed bottom-up, so reversing puts the best unit on top.
    fig.update_yaxes(
        categoryorder="array",
        categoryarray=list(reversed(labels)),
        title_text=label_title,
        showgrid=False,
    )
    fig.update_xaxes(title_text=value_title, rangemode="tozero")
    if percent:
        fig.update_xaxes(tickformat=".0%")
    fig.update_layout(height=_horizontal_height(len(labels)), bargap=0.25)
    return apply_print_style(fig, title, context, lang)


def box_from_quartiles(
    df: pd.DataFrame,
    group_col: str,
    *,
    title: str,
    context: ChartContext,
    lang: str = "zh",
    value_title: str = "",
    group_title: str = "",
    quantile_cols: Sequence[str] = ("p10", "p25", "p50", "p75", "p90"),
) -> go.Figure:
    """Boxes drawn from precomputed quantiles: box P25–P75, line at P50, whiskers P10–P90."""
    if df.empty:
        return _empty_figure(title, context, lang)
    p10, p25, p50, p75, p90 = quantile_cols
    fig = go.Figure(
        go.Box(
            x=df[group_col].astype(str).tolist(),
            q1=df[p25].tolist(),
            median=df[p50].tolist(),
            q3=df[p75].tolist(),
            lowerfence=df[p10].tolist(),
            upperfence=df[p90].tolist(),
            name=t("label.box_legend", lang),
            marker={"color": PALETTE[0]},
            line={"color": PALETTE[0], "width": 2},
            fillcolor="rgba(0, 114, 178, 0.25)",
            boxpoints=False,
            showlegend=True,
        )
    )
    fig.update_xaxes(title_text=group_title, type="category")
    fig.update_yaxes(title_text=value_title, rangemode="tozero")
    return apply_print_style(fig, title, context, lang)


def heatmap(
    df: pd.DataFrame,
    x: str,
    y: str,
    z: str,
    *,
    title: str,
    context: ChartContext,
    lang: str = "zh",
    x_title: str = "",
    y_title: str = "",
    z_title: str = "",
    x_order: Sequence[object] | None = None,
    y_order: Sequence[object] | None = None,
    percent: bool = False,
    show_values: bool = False,
) -> go.Figure:
    """A grid of `z` over `x` × `y` (long format in, one row per cell); missing cells are blank."""
    if df.empty:
        return _empty_figure(title, context, lang)
    grid = df.pivot_table(index=y, columns=x, values=z, aggfunc="sum")
    if x_order is not None:
        grid = grid.reindex(columns=list(x_order))
    if y_order is not None:
        grid = grid.reindex(index=list(y_order))
    matrix = [[None if pd.isna(v) else v for v in row] for row in grid.to_numpy().tolist()]
    value_format = ".0%" if percent else ",.0f"
    fig = go.Figure(
        go.Heatmap(
            x=[str(v) for v in grid.columns],
            y=[str(v) for v in grid.index],
            z=matrix,
            colorscale=HEATMAP_SCALE,
            colorbar={"title": {"text": z_title, "side": "right"}, "tickformat": value_format},
            texttemplate=f"%{{z:{value_format}}}" if show_values else None,
            hovertemplate=f"%{{y}} · %{{x}}: %{{z:{value_format}}}<extra></extra>",
            xgap=1,
            ygap=1,
        )
    )
    fig.update_xaxes(title_text=x_title, type="category", showgrid=False)
    # First row of the order at the top, as in a table.
    fig.update_yaxes(title_text=y_title, type="category", autorange="reversed", showgrid=False)
    return apply_print_style(fig, title, context, lang)


def stacked_share(
    df: pd.DataFrame,
    x: str,
    parts: dict[str, str],
    *,
    title: str,
    context: ChartContext,
    lang: str = "zh",
    x_title: str = "",
    y_title: str | None = None,
    normalise: bool = True,
    highlight: Highlight | None = None,
) -> go.Figure:
    """Stacked bars of `parts` ({column: label}, in order) per `x`; as shares if `normalise`.

    A monthly `x` gets the shared month axis, and `highlight` as in `line_trend`."""
    if df.empty:
        return _empty_figure(title, context, lang)
    frame = df.sort_values(x)
    monthly = _is_monthly(frame[x])
    x_values = frame[x].tolist() if monthly else frame[x].astype(str).tolist()
    counts = frame[list(parts)].astype(float).fillna(0.0)
    totals = counts.sum(axis=1)
    values = counts.div(totals.where(totals > 0), axis=0).fillna(0.0) if normalise else counts
    shades = _ordered_shades(len(parts))
    fig = go.Figure()
    for index, (column, label) in enumerate(parts.items()):
        column_values = values[column].tolist()
        text = [
            format_value(v, percent=True) if normalise and v >= 0.05 else "" for v in column_values
        ]
        fig.add_trace(
            go.Bar(
                x=x_values,
                y=column_values,
                name=label,
                marker={"color": shades[index], "line": {"color": "#FFFFFF", "width": 0.5}},
                text=text,
                textposition="inside",
                insidetextanchor="middle",
                textfont={"color": "#FFFFFF" if index >= len(parts) / 2 else TEXT_COLOUR},
                customdata=counts[column].tolist(),
                hovertemplate=(
                    f"%{{x}} · {label}: %{{y:.1%}}（%{{customdata:,.0f}}）<extra></extra>"
                    if normalise
                    else f"%{{x}} · {label}: %{{y:,.0f}}<extra></extra>"
                ),
            )
        )
    # Labels that would need a tiny font are hidden rather than shrunk.
    fig.update_layout(
        barmode="stack", showlegend=True, uniformtext_minsize=11, uniformtext_mode="hide"
    )
    if monthly:
        fig.update_xaxes(title_text=x_title)
        _month_axis(fig, frame[x], highlight, over_bars=True)
    else:
        fig.update_xaxes(title_text=x_title, type="category")
    axis_title = y_title if y_title is not None else (t("axis.share", lang) if normalise else "")
    fig.update_yaxes(title_text=axis_title)
    if normalise:
        fig.update_yaxes(tickformat=".0%", range=[0, 1])
    return apply_print_style(fig, title, context, lang)


def _ordered_shades(count: int) -> list[str]:
    if count <= 1:
        return [SEQUENTIAL_BLUES[3]]
    last = len(SEQUENTIAL_BLUES) - 1
    return [SEQUENTIAL_BLUES[round(i * last / (count - 1))] for i in range(count)]


def interval_dots(
    df: pd.DataFrame,
    label_col: str,
    rate_col: str,
    low_col: str,
    high_col: str,
    *,
    n_col: str,
    min_sample: int,
    title: str,
    context: ChartContext,
    lang: str = "zh",
    value_title: str = "",
    label_title: str = "",
) -> go.Figure:
    """Rates (fractions) with 95% interval bars, highest on top; units with n < `min_sample`
    are drawn hollow and labelled 样本不足."""
    frame = df.dropna(subset=[rate_col])
    if frame.empty:
        return _empty_figure(title, context, lang)
    ordered = frame.sort_values(rate_col, ascending=False, kind="mergesort")
    labels = ordered[label_col].astype(str).tolist()
    small = ~(ordered[n_col] >= min_sample)  # an unknown n counts as too small
    fig = go.Figure()
    for is_small, part in ((False, ordered[~small]), (True, ordered[small])):
        if part.empty:
            continue
        rates = part[rate_col].astype(float)
        name = (
            t("label.small_sample_legend", lang, min_sample=min_sample)
            if is_small
            else t("label.sufficient_sample", lang)
        )
        fig.add_trace(
            go.Scatter(
                x=rates.tolist(),
                y=part[label_col].astype(str).tolist(),
                name=name,
                mode="markers",
                marker={
                    "symbol": "circle-open" if is_small else "circle",
                    "size": 10,
                    "color": MUTED_COLOUR if is_small else PALETTE[0],
                    "line": {"width": 2},
                },
                error_x={
                    "type": "data",
                    "symmetric": False,
                    "array": (part[high_col].astype(float) - rates).clip(lower=0).tolist(),
                    "arrayminus": (rates - part[low_col].astype(float)).clip(lower=0).tolist(),
                    "color": MUTED_COLOUR if is_small else PALETTE[0],
                    "thickness": 1.5,
                    "width": 4,
                },
                customdata=list(
                    zip(
                        part[low_col].tolist(),
                        part[high_col].tolist(),
                        part[n_col].tolist(),
                        strict=True,
                    )
                ),
                hovertemplate=(
                    "%{y}: %{x:.1%}<br>"
                    + t("label.interval_95", lang)
                    + " %{customdata[0]:.1%}–%{customdata[1]:.1%}<br>n = %{customdata[2]:,}"
                    + "<extra></extra>"
                ),
            )
        )
        if is_small:
            # The word sits past the interval's upper end so it never covers the bar.
            fig.add_trace(
                go.Scatter(
                    x=part[[rate_col, high_col]].astype(float).max(axis=1).tolist(),
                    y=part[label_col].astype(str).tolist(),
                    mode="text",
                    text=["  " + t("label.small_sample", lang)] * len(part),
                    textposition="middle right",
                    textfont={"color": MUTED_COLOUR, "size": 12},
                    cliponaxis=False,
                    showlegend=False,
                    hoverinfo="skip",
                )
            )
    fig.update_yaxes(
        categoryorder="array",
        categoryarray=list(reversed(labels)),
        title_text=label_title,
        range=_rows_range(labels),
    )
    fig.update_xaxes(title_text=value_title, tickformat=".0%", range=[0, 1.12])
    fig.update_layout(height=_horizontal_height(len(labels)), showlegend=True)
    return apply_print_style(fig, title, context, lang)


def profile_vs_average(
    df: pd.DataFrame,
    item_col: str,
    unit_col: str,
    average_col: str,
    *,
    title: str,
    context: ChartContext,
    lang: str = "zh",
    unit_label: str | None = None,
    average_label: str | None = None,
    value_title: str = "",
    percent: bool = True,
    decimals: int = 0,
) -> go.Figure:
    """One unit's value per item as bars, the street average as a black tick on each bar."""
    if df.empty:
        return _empty_figure(title, context, lang)
    items = df[item_col].astype(str).tolist()
    unit_values = _values(df, unit_col)
    hover = hover_format(percent, decimals)
    unit_name = unit_label or t("label.this_unit", lang)
    average_name = average_label or t("label.street_average", lang)
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            x=unit_values,
            y=items,
            orientation="h",
            name=unit_name,
            marker={"color": PALETTE[4], "line": {"color": PALETTE[0], "width": 1}},
            text=[format_value(v, percent=percent, decimals=decimals) for v in unit_values],
            textposition="outside",
            cliponaxis=False,
            hovertemplate=f"%{{y}} · {unit_name}: %{{x:{hover}}}<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=_values(df, average_col),
            y=items,
            mode="markers",
            name=average_name,
            marker={
                "symbol": "line-ns-open",
                "size": 22,
                "color": BLACK_LIST_COLOUR,
                "line": {"width": 3, "color": BLACK_LIST_COLOUR},
            },
            hovertemplate=f"%{{y}} · {average_name}: %{{x:{hover}}}<extra></extra>",
        )
    )
    fig.update_yaxes(
        categoryorder="array",
        categoryarray=list(reversed(items)),
        showgrid=False,
        range=_rows_range(items),
    )
    fig.update_xaxes(title_text=value_title, rangemode="tozero")
    if percent:
        fig.update_xaxes(tickformat=".0%")
    fig.update_layout(height=_horizontal_height(len(items)), showlegend=True)
    return apply_print_style(fig, title, context, lang)


def dumbbell(
    df: pd.DataFrame,
    label_col: str,
    before_col: str,
    after_col: str,
    *,
    title: str,
    context: ChartContext,
    lang: str = "zh",
    before_label: str | None = None,
    after_label: str | None = None,
    value_title: str = "",
    percent: bool = True,
    decimals: int = 0,
) -> go.Figure:
    """Two values per unit joined by a line (before → after, wave → wave), largest gain on top."""
    frame = df.dropna(subset=[before_col, after_col])
    if frame.empty:
        return _empty_figure(title, context, lang)
    ordered = frame.assign(_change=frame[after_col] - frame[before_col]).sort_values(
        "_change", ascending=False, kind="mergesort"
    )
    labels = ordered[label_col].astype(str).tolist()
    hover = hover_format(percent, decimals)
    before_name = before_label or t("label.before", lang)
    after_name = after_label or t("label.after", lang)
    line_x: list[object] = []
    line_y: list[object] = []
    for label, before, after in zip(
        labels, ordered[before_col].tolist(), ordered[after_col].tolist(), strict=True
    ):
        line_x += [before, after, None]
        line_y += [label, label, None]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=line_x,
            y=line_y,
            mode="lines",
            line={"color": OTHER_UNITS_COLOUR, "width": 3},
            showlegend=False,
            hoverinfo="skip",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=ordered[before_col].tolist(),
            y=labels,
            mode="markers",
            name=before_name,
            marker={
                "symbol": "circle-open",
                "size": 11,
                "color": MUTED_COLOUR,
                "line": {"width": 2},
            },
            hovertemplate=f"%{{y}} · {before_name}: %{{x:{hover}}}<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=ordered[after_col].tolist(),
            y=labels,
            mode="markers",
            name=after_name,
            marker={"symbol": "circle", "size": 11, "color": PALETTE[0]},
            hovertemplate=f"%{{y}} · {after_name}: %{{x:{hover}}}<extra></extra>",
        )
    )
    fig.update_yaxes(
        categoryorder="array", categoryarray=list(reversed(labels)), range=_rows_range(labels)
    )
    fig.update_xaxes(title_text=value_title)
    if percent:
        fig.update_xaxes(tickformat=".0%")
    fig.update_layout(height=_horizontal_height(len(labels)), showlegend=True)
    return apply_print_style(fig, title, context, lang)


def rank_bands(
    df: pd.DataFrame,
    label_col: str,
    rank_col: str,
    low_col: str,
    high_col: str,
    *,
    title: str,
    context: ChartContext,
    lang: str = "zh",
    flag_col: str | None = None,
    rank_title: str = "",
) -> go.Figure:
    """Each unit's rank with its 5–95% band under perturbed weights; flagged units stand out.

    Rank 1 is at the top; a flagged unit (an award whose band crosses a tier boundary) is
    drawn in the red-list colour with a hollow marker so it also reads in greyscale.
    """
    if df.empty:
        return _empty_figure(title, context, lang)
    frame = df.sort_values(rank_col, ascending=False)
    flagged = frame[flag_col].astype(bool) if flag_col else pd.Series(False, index=frame.index)
    figure = go.Figure()
    for is_flagged, part in ((False, frame[~flagged]), (True, frame[flagged])):
        if part.empty:
            continue
        figure.add_trace(
            go.Scatter(
                x=_values(part, rank_col),
                y=_values(part, label_col),
                mode="markers",
                marker={
                    "size": 9,
                    "color": RED_LIST_COLOUR if is_flagged else TEXT_COLOUR,
                    "symbol": "diamond-open" if is_flagged else "circle",
                },
                error_x={
                    "type": "data",
                    "symmetric": False,
                    "array": (part[high_col] - part[rank_col]).tolist(),
                    "arrayminus": (part[rank_col] - part[low_col]).tolist(),
                    "color": MUTED_COLOUR,
                    "thickness": 1.5,
                },
                name=t("label.crosses_tier" if is_flagged else "label.rank_band", lang),
            )
        )
    figure.update_xaxes(title_text=rank_title or t("axis.rank", lang), autorange="reversed")
    figure.update_yaxes(
        type="category",
        categoryorder="array",
        categoryarray=_values(frame, label_col),
        range=_rows_range(_values(frame, label_col)),
    )
    figure.update_layout(height=_horizontal_height(len(frame)))
    return apply_print_style(figure, title, context, lang)


def event_study(
    df: pd.DataFrame,
    *,
    title: str,
    context: ChartContext,
    lang: str = "zh",
    x_title: str = "",
    y_title: str = "",
    decimals: int = 1,
    signing_label: str = "",
) -> go.Figure:
    """Coefficients by period relative to signing with 95% interval bars (columns relative,
    estimate, low, high, n_treated, is_reference); zero line, signing marked between −1 and 0.

    Before signing is drawn hollow and grey, after solid blue, the reference period as a
    diamond at zero, so the three read apart in greyscale too.
    """
    if df.empty:
        return _empty_figure(title, context, lang)
    frame = df.sort_values("relative")
    hover = (
        f"%{{x}}: %{{y:,.{decimals}f}}<br>"
        + t("label.interval_95", lang)
        + f" %{{customdata[0]:,.{decimals}f}} – %{{customdata[1]:,.{decimals}f}}"
        + "<br>n = %{customdata[2]:,}<extra></extra>"
    )
    fig = go.Figure()
    parts = (
        (frame[(frame["relative"] < 0) & ~frame["is_reference"]], t("label.before", lang), False),
        (frame[frame["relative"] >= 0], t("label.after", lang), True),
    )
    for part, name, is_after in parts:
        if part.empty:
            continue
        colour = PALETTE[0] if is_after else MUTED_COLOUR
        fig.add_trace(
            go.Scatter(
                x=part["relative"].tolist(),
                y=part["estimate"].tolist(),
                mode="markers",
                name=name,
                marker={
                    "symbol": "circle" if is_after else "circle-open",
                    "size": 9,
                    "color": colour,
                    "line": {"width": 2},
                },
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": (part["high"] - part["estimate"]).clip(lower=0).tolist(),
                    "arrayminus": (part["estimate"] - part["low"]).clip(lower=0).tolist(),
                    "color": colour,
                    "thickness": 1.5,
                    "width": 3,
                },
                customdata=list(
                    zip(
                        part["low"].tolist(),
                        part["high"].tolist(),
                        part["n_treated"].tolist(),
                        strict=True,
                    )
                ),
                hovertemplate=hover,
            )
        )
    reference = frame[frame["is_reference"]]
    if not reference.empty:
        fig.add_trace(
            go.Scatter(
                x=reference["relative"].tolist(),
                y=[0.0] * len(reference),
                mode="markers",
                name=t("label.reference_period", lang),
                marker={"symbol": "diamond", "size": 10, "color": TEXT_COLOUR},
                hovertemplate="%{x}: " + t("label.reference_period", lang) + "<extra></extra>",
            )
        )
    fig.add_hline(y=0, line={"color": AXIS_LINE_COLOUR, "width": 1})
    fig.add_vline(x=-0.5, line={"color": RED_LIST_COLOUR, "width": 1.5, "dash": "dash"})
    if signing_label:
        fig.add_annotation(
            x=-0.5,
            y=1,
            yref="paper",
            text=signing_label,
            showarrow=False,
            xanchor="left",
            yanchor="top",
            xshift=4,
            font={"color": RED_LIST_COLOUR, "size": 13},
        )
    fig.update_xaxes(title_text=x_title, dtick=1 if len(frame) <= 13 else 2, zeroline=False)
    fig.update_yaxes(title_text=y_title, zeroline=False)
    fig.update_layout(showlegend=True)
    return apply_print_style(fig, title, context, lang)


def difference_dots(
    df: pd.DataFrame,
    label_col: str,
    value_col: str,
    low_col: str,
    high_col: str,
    *,
    title: str,
    context: ChartContext,
    lang: str = "zh",
    value_title: str = "",
    label_title: str = "",
    decimals: int = 1,
    combined: tuple[str, float, float, float] | None = None,
) -> go.Figure:
    """Differences with 95% interval bars, one row per group, a zero line; `combined`
    (label, value, low, high) is drawn on top as a black diamond."""
    frame = df.dropna(subset=[value_col])
    if frame.empty and combined is None:
        return _empty_figure(title, context, lang)
    labels = frame[label_col].astype(str).tolist()
    hover = (
        f"%{{y}}: %{{x:,.{decimals}f}}<br>"
        + t("label.interval_95", lang)
        + f" %{{customdata[0]:,.{decimals}f}} – %{{customdata[1]:,.{decimals}f}}<extra></extra>"
    )

    def dots(part: pd.DataFrame, name: str, colour: str, symbol: str, size: int) -> go.Scatter:
        values = part[value_col].astype(float)
        return go.Scatter(
            x=values.tolist(),
            y=part[label_col].astype(str).tolist(),
            mode="markers",
            name=name,
            marker={"symbol": symbol, "size": size, "color": colour},
            error_x={
                "type": "data",
                "symmetric": False,
                "array": (part[high_col].astype(float) - values).clip(lower=0).fillna(0).tolist(),
                "arrayminus": (values - part[low_col].astype(float))
                .clip(lower=0)
                .fillna(0)
                .tolist(),
                "color": colour,
                "thickness": 1.5,
                "width": 4,
            },
            customdata=list(zip(part[low_col].tolist(), part[high_col].tolist(), strict=True)),
            hovertemplate=hover,
        )

    fig = go.Figure()
    if not frame.empty:
        fig.add_trace(dots(frame, t("label.by_group", lang), PALETTE[0], "circle", 9))
    if combined is not None:
        label, value, low, high = combined
        labels = [label, *labels]
        row = pd.DataFrame(
            {label_col: [label], value_col: [value], low_col: [low], high_col: [high]}
        )
        fig.add_trace(dots(row, label, TEXT_COLOUR, "diamond", 12))
    fig.add_vline(x=0, line={"color": AXIS_LINE_COLOUR, "width": 1})
    fig.update_yaxes(
        categoryorder="array",
        categoryarray=list(reversed(labels)),
        title_text=label_title,
        range=_rows_range(labels),
    )
    fig.update_xaxes(title_text=value_title, zeroline=False)
    fig.update_layout(height=_horizontal_height(len(labels)), showlegend=True)
    return apply_print_style(fig, title, context, lang)
