"""Chart builders: trace types and values, titles and axes in both languages, the print style."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
import pytest

from govdash.analytics.charts import plots, style
from govdash.analytics.charts.style import ChartContext
from govdash.i18n import t

ROOT = Path(__file__).resolve().parents[2]
CONTEXT = ChartContext(period_label="2024年", n=1234, filters_text="街道=锦江街道")


def assert_print_style(fig: go.Figure, title: str, lang: str = "zh") -> None:
    assert fig.layout.title.text == title
    subtitle = fig.layout.title.subtitle.text
    assert t("label.period", lang, period=CONTEXT.period_label) in subtitle
    assert "n = 1,234" in subtitle
    template = fig.layout.template
    assert template.layout.paper_bgcolor == "#FFFFFF"
    assert "Noto Sans CJK SC" in template.layout.font.family
    assert template.layout.xaxis.gridcolor == style.GRID_COLOUR
    assert tuple(template.layout.colorway) == plots.PALETTE


def test_long_titles_get_a_smaller_font_to_fit_half_a_page() -> None:
    assert style.title_font_size("短标题") == 19
    long_english = "Monthly on-time rates and three-rate composite"  # 46 units
    assert style.title_font_size(long_english) == int(19 * 40 / 46)
    assert (
        style.title_font_size("各社区按类别统计的首次响应时长分布与办结时长分布对比") == 14  # 52
    )  # 50
    assert style.title_font_size("x" * 400) == 13


def test_the_top_margin_holds_title_subtitle_and_legend() -> None:
    """A legend of three long names needs two rows at 340 px, and room above the plot."""
    df = pd.DataFrame({"m": pd.to_datetime(["2024-01-01"]), "a": [1], "b": [2], "c": [3]})
    names = {"a": "On-time response rate", "b": "On-time resolution rate", "c": "Composite"}
    fig = plots.line_trend(
        df, "m", names, title="Monthly on-time rates and three-rate composite", context=CONTEXT
    )
    # 40 px of symbol + 7 px per character: 187 + 201 > 340 px, so 201 + 103 go on a second row.
    assert fig.layout.margin.t >= 12 + 28 + 26 + 2 * 24 + 16
    single = plots.line_trend(df, "m", {"a": "率"}, title="短", context=CONTEXT)
    assert single.layout.margin.t < fig.layout.margin.t


def test_import_sets_the_default_template_and_turns_mathjax_off() -> None:
    # A fresh interpreter: other tests may already have imported streamlit here.
    code = (
        "import plotly.io as pio, govdash.analytics.charts.plots; "
        "print(pio.templates.default, pio.defaults.mathjax)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert result.stdout.split() == [style.TEMPLATE_NAME, "False"]
    assert style.TEMPLATE_NAME in pio.templates


def test_figures_keep_the_print_template_when_streamlit_is_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import streamlit  # noqa: F401  - importing it registers the "streamlit" template

    monkeypatch.setattr(pio.templates, "default", "streamlit")
    fig = plots.line_trend(
        pd.DataFrame({"month": ["2024-01"], "tickets": [5]}),
        "month",
        {"tickets": "工单量"},
        title="趋势",
        context=CONTEXT,
    )
    # The figure carries the light template itself, so an export is not black.
    assert fig.layout.template.layout.paper_bgcolor == "#FFFFFF"
    assert fig.layout.template.layout.plot_bgcolor == "#FFFFFF"
    assert fig.layout.template != pio.templates["streamlit"]
    assert fig.to_dict()["layout"]["template"]["layout"]["font"]["family"] == style.FONT_FAMILY


@pytest.mark.parametrize("default", ["plotly", style.TEMPLATE_NAME, "streamlit"])
def test_the_print_template_goes_in_as_assigning_it_would(
    monkeypatch: pytest.MonkeyPatch, default: str
) -> None:
    import streamlit  # noqa: F401  - registers the "streamlit" template

    monkeypatch.setattr(pio.templates, "default", default)
    bars = go.Bar(x=[1, 2], y=["甲", "乙"], orientation="h")
    assigned = go.Figure(bars).update_layout(template=style.PRINT_TEMPLATE, height=300)
    fig = style.set_print_template(go.Figure(bars)).update_layout(height=300)
    assert fig.to_json() == assigned.to_json()
    # Each figure holds its own copy: changing one figure's template leaves the next alone.
    fig.layout.template.layout.paper_bgcolor = "#000000"
    assert style.set_print_template(go.Figure()).layout.template.layout.paper_bgcolor == "#FFFFFF"
    assert style.PRINT_TEMPLATE.layout.paper_bgcolor == "#FFFFFF"
    # Validation is back on for what is set afterwards.
    with pytest.raises(ValueError):
        fig.update_layout(height="tall")


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_line_trend(lang: str) -> None:
    df = pd.DataFrame(
        {
            "month": ["2024-03", "2024-01", "2024-02"],
            "p50": [14.0, 12.0, 13.0],
            "p90": [60.0, 40.0, 50.0],
        }
    )
    title = t("chart.response_percentile_trend", lang)
    fig = plots.line_trend(
        df,
        "month",
        {"p50": t("label.p50", lang), "p90": t("label.p90", lang)},
        title=title,
        context=CONTEXT,
        lang=lang,
        x_title=t("axis.month", lang),
        y_title=t("axis.response_minutes", lang),
    )
    assert [type(trace) for trace in fig.data] == [go.Scatter, go.Scatter]
    assert list(fig.data[0].x) == ["2024-01", "2024-02", "2024-03"]
    assert list(fig.data[0].y) == [12.0, 13.0, 14.0]
    assert list(fig.data[1].y) == [40.0, 50.0, 60.0]
    assert [trace.name for trace in fig.data] == [t("label.p50", lang), t("label.p90", lang)]
    assert fig.data[0].line.dash != fig.data[1].line.dash, "lines differ without colour"
    assert fig.layout.xaxis.title.text == t("axis.month", lang)
    assert fig.layout.yaxis.title.text == t("axis.response_minutes", lang)
    # Month strings stay categories; plotly would otherwise print English month names.
    assert fig.layout.xaxis.type == "category"
    assert_print_style(fig, title, lang)


def test_line_trend_percent_and_dates() -> None:
    df = pd.DataFrame({"month": pd.to_datetime(["2024-01-01", "2024-02-01"]), "rate": [0.5, 0.75]})
    fig = plots.line_trend(
        df, "month", {"rate": "满意率"}, title="回访", context=CONTEXT, percent=True
    )
    assert fig.layout.yaxis.tickformat == ".0%"
    assert fig.layout.xaxis.tickformat == "%Y-%m"
    assert ":.1%" in fig.data[0].hovertemplate


def test_bar_ranking_with_fewer_than_twice_the_list_size() -> None:
    """Three units and lists of five: one red, one black, the middle one grey."""
    df = pd.DataFrame({"unit": ["甲", "乙", "丙"], "rate": [0.7, 0.9, 0.8]})
    fig = plots.bar_ranking(df, "unit", "rate", title="红黑榜", context=CONTEXT, red_black_size=5)
    assert [(trace.name, list(trace.y)) for trace in fig.data] == [
        (t("label.red_list"), ["乙"]),
        (t("label.other_units"), ["丙"]),
        (t("label.black_list"), ["甲"]),
    ]


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_bar_ranking_red_black(lang: str) -> None:
    df = pd.DataFrame(
        {"unit": [f"小区{i}" for i in range(7)], "rate": [0.5, 0.9, 0.7, 0.6, 0.8, 0.95, 0.55]}
    )
    title = t("chart.red_black_list", lang)
    fig = plots.bar_ranking(
        df,
        "unit",
        "rate",
        title=title,
        context=CONTEXT,
        lang=lang,
        value_title=t("axis.satisfaction_rate", lang),
        percent=True,
        red_black_size=2,
    )
    assert [type(trace) for trace in fig.data] == [go.Bar, go.Bar, go.Bar]
    red, middle, black = fig.data
    assert red.name == t("label.red_list", lang)
    assert black.name == t("label.black_list", lang)
    assert middle.name == t("label.other_units", lang)
    assert list(red.y) == ["小区5", "小区1"]
    assert list(red.x) == [0.95, 0.9]
    assert list(black.y) == ["小区6", "小区0"]
    assert list(middle.y) == ["小区4", "小区2", "小区3"]
    assert all(trace.orientation == "h" for trace in fig.data)
    assert list(red.text) == ["95.0%", "90.0%"]
    # Best at the top: plotly lists categories bottom-up.
    assert list(fig.layout.yaxis.categoryarray) == [
        "小区0",
        "小区6",
        "小区3",
        "小区2",
        "小区4",
        "小区1",
        "小区5",
    ]
    assert red.marker.color == style.RED_LIST_COLOUR
    assert black.marker.pattern.shape == "/", "black list is hatched for greyscale print"
    assert fig.layout.xaxis.tickformat == ".0%"
    assert fig.layout.xaxis.title.text == t("axis.satisfaction_rate", lang)
    assert_print_style(fig, title, lang)


def test_bar_ranking_lower_is_better_and_counts() -> None:
    df = pd.DataFrame({"word": ["电梯", "漏水", "停车"], "count": [30, 1200, 7]})
    fig = plots.bar_ranking(
        df,
        "word",
        "count",
        title=t("chart.comment_words"),
        context=CONTEXT,
        value_title=t("axis.word_count"),
    )
    assert len(fig.data) == 1
    assert list(fig.data[0].y) == ["漏水", "电梯", "停车"]
    assert list(fig.data[0].text) == ["1,200", "30", "7"]
    assert fig.layout.showlegend is False

    slow = plots.bar_ranking(
        pd.DataFrame({"unit": ["甲", "乙"], "minutes": [40.0, 10.0]}),
        "unit",
        "minutes",
        title="响应",
        context=CONTEXT,
        higher_is_better=False,
    )
    assert list(slow.data[0].y) == ["乙", "甲"]


def test_box_from_quartiles() -> None:
    df = pd.DataFrame(
        {
            "community": ["锦绣社区", "和平社区"],
            "p10": [3.0, 4.0],
            "p25": [8.0, 9.0],
            "p50": [15.0, 18.0],
            "p75": [30.0, 35.0],
            "p90": [60.0, 80.0],
        }
    )
    title = t("chart.response_distribution", group=t("level.community"))
    fig = plots.box_from_quartiles(
        df, "community", title=title, context=CONTEXT, value_title=t("axis.response_minutes")
    )
    assert len(fig.data) == 1
    box = fig.data[0]
    assert isinstance(box, go.Box)
    assert list(box.x) == ["锦绣社区", "和平社区"]
    assert list(box.q1) == [8.0, 9.0]
    assert list(box.median) == [15.0, 18.0]
    assert list(box.q3) == [30.0, 35.0]
    assert list(box.lowerfence) == [3.0, 4.0]
    assert list(box.upperfence) == [60.0, 80.0]
    assert box.name == t("label.box_legend")
    assert fig.layout.yaxis.title.text == "首次响应时长（分钟）"
    assert_print_style(fig, "首次响应时长分布（按社区）")


def test_heatmap_orders_and_fills_grid() -> None:
    days = [t(f"weekday.{d}") for d in (1, 2)]
    df = pd.DataFrame(
        {"weekday": [days[1], days[0], days[0]], "hour": [9, 9, 10], "tickets": [4, 2, 7]}
    )
    fig = plots.heatmap(
        df,
        "hour",
        "weekday",
        "tickets",
        title=t("chart.weekday_hour"),
        context=CONTEXT,
        x_title=t("axis.hour"),
        y_title=t("axis.weekday"),
        y_order=days,
        x_order=[9, 10, 11],
    )
    cell = fig.data[0]
    assert isinstance(cell, go.Heatmap)
    assert list(cell.y) == ["周一", "周二"]
    assert list(cell.x) == ["9", "10", "11"]
    assert [list(row) for row in cell.z] == [[2.0, 7.0, None], [4.0, None, None]]
    assert fig.layout.xaxis.title.text == "时段（时）"
    assert fig.layout.yaxis.title.text == "星期"
    assert_print_style(fig, "工单受理时间分布（星期 × 时段）")


def test_stacked_share_normalises_rows() -> None:
    df = pd.DataFrame({"month": ["2024-02", "2024-01"], "young": [3, 1], "old": [1, 3]})
    parts = {"young": t("aging.0_1", "en"), "old": t("aging.over_7", "en")}
    fig = plots.stacked_share(
        df,
        "month",
        parts,
        title=t("chart.backlog_aging", "en"),
        context=CONTEXT,
        lang="en",
        x_title=t("axis.month", "en"),
    )
    assert [type(trace) for trace in fig.data] == [go.Bar, go.Bar]
    assert [trace.name for trace in fig.data] == ["0–1 days", "Over 7 days"]
    assert list(fig.data[0].x) == ["2024-01", "2024-02"]
    assert list(fig.data[0].y) == [0.25, 0.75]
    assert list(fig.data[1].y) == [0.75, 0.25]
    assert list(fig.data[0].text) == ["25.0%", "75.0%"]
    assert fig.layout.barmode == "stack"
    assert fig.layout.yaxis.tickformat == ".0%"
    assert fig.layout.yaxis.title.text == "Share"
    assert fig.data[0].marker.color != fig.data[1].marker.color
    assert_print_style(fig, "Backlog aging", "en")


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_interval_dots_marks_small_samples(lang: str) -> None:
    df = pd.DataFrame(
        {
            "unit": ["小区A", "小区B", "小区C"],
            "rate": [0.8, 0.6, 0.9],
            "low": [0.7, 0.5, 0.6],
            "high": [0.88, 0.7, 0.98],
            "n": [120, 200, 12],
        }
    )
    fig = plots.interval_dots(
        df,
        "unit",
        "rate",
        "low",
        "high",
        n_col="n",
        min_sample=30,
        title=t("chart.response_rate", lang),
        context=CONTEXT,
        lang=lang,
        value_title=t("axis.response_rate", lang),
    )
    sufficient, small, small_label = fig.data
    assert list(sufficient.y) == ["小区A", "小区B"]
    assert sufficient.marker.symbol == "circle"
    assert list(sufficient.error_x.array) == pytest.approx([0.08, 0.1])
    assert list(sufficient.error_x.arrayminus) == pytest.approx([0.1, 0.1])
    assert list(small.y) == ["小区C"]
    assert small.marker.symbol == "circle-open"
    assert small.name == t("label.small_sample_legend", lang, min_sample=30)
    assert small_label.mode == "text"
    assert [text.strip() for text in small_label.text] == [t("state.small_sample", lang)]
    assert list(fig.layout.yaxis.categoryarray) == ["小区B", "小区A", "小区C"]
    assert fig.layout.xaxis.tickformat == ".0%"
    assert fig.layout.xaxis.title.text == t("axis.response_rate", lang)
    assert_print_style(fig, t("chart.response_rate", lang), lang)


def test_profile_vs_average() -> None:
    df = pd.DataFrame(
        {"item": ["客户服务", "秩序维护"], "unit_rate": [0.8, 0.7], "street_rate": [0.75, 0.78]}
    )
    title = t("chart.profile_vs_average", unit="锦绣花园")
    fig = plots.profile_vs_average(
        df, "item", "unit_rate", "street_rate", title=title, context=CONTEXT, unit_label="锦绣花园"
    )
    bar, average = fig.data
    assert isinstance(bar, go.Bar) and isinstance(average, go.Scatter)
    assert bar.name == "锦绣花园"
    assert average.name == "街道平均"
    assert list(bar.x) == [0.8, 0.7]
    assert list(average.x) == [0.75, 0.78]
    assert list(bar.text) == ["80.0%", "70.0%"]
    assert fig.layout.xaxis.tickformat == ".0%"
    assert_print_style(fig, "锦绣花园与街道平均对比")


def test_dumbbell_orders_by_change() -> None:
    df = pd.DataFrame({"unit": ["甲", "乙"], "before": [0.5, 0.6], "after": [0.55, 0.9]})
    fig = plots.dumbbell(
        df,
        "unit",
        "before",
        "after",
        title=t("chart.wave_change"),
        context=CONTEXT,
        before_label=t("label.previous_wave"),
        after_label=t("label.current_wave"),
    )
    _, before, after = fig.data
    assert list(before.y) == ["乙", "甲"]
    assert list(after.x) == [0.9, 0.55]
    assert [before.name, after.name] == ["上一批次", "本批次"]


def test_chart_ends_keep_the_highest_and_lowest_in_the_charts_order() -> None:
    # 40 units, rates written out by hand: ties (0.5 twice, 0.2 twice) keep the frame's order,
    # a unit without a rate is never drawn nor counted.
    rates = [0.5, 0.9, None, 0.5, 0.1] + [0.3] * 33 + [0.2, 0.2]
    frame = pd.DataFrame({"unit": [f"u{i:02d}" for i in range(40)], "rate": rates})
    drawn, total = plots.chart_ends(frame, frame["rate"], ascending=False)
    assert total == 39
    assert plots.MAX_CHART_UNITS == 30
    # Highest first: u01 (0.9), u00 and u03 (0.5, in frame order), then the 0.3s in order.
    top = ["u01", "u00", "u03"] + [f"u{i:02d}" for i in range(5, 17)]
    # The last 15: eleven 0.3s (u27…u37), the two 0.2s in frame order, u04 (0.1) last.
    bottom = [f"u{i:02d}" for i in range(26, 38)] + ["u38", "u39", "u04"]
    assert drawn["unit"].tolist() == top + bottom
    # The bar chart draws them in the same order (best on top: categories listed bottom-up).
    figure = plots.bar_ranking(drawn, "unit", "rate", title="参与率", context=CONTEXT)
    assert list(figure.layout.yaxis.categoryarray) == list(reversed(top + bottom))


def test_chart_ends_draw_everything_up_to_the_limit() -> None:
    frame = pd.DataFrame({"unit": ["甲", "乙", "丙"], "before": [0.5, 0.6, 0.4],
                          "after": [0.55, 0.9, 0.2]})  # fmt: skip
    drawn, total = plots.chart_ends(
        frame, frame["after"] - frame["before"], ascending=False, limit=2
    )
    assert total == 3
    assert drawn["unit"].tolist() == ["乙", "丙"]  # +0.30 and −0.20, the ends of the order
    drawn, total = plots.chart_ends(frame, frame["after"] - frame["before"], ascending=False)
    assert (total, drawn["unit"].tolist()) == (3, ["乙", "甲", "丙"])


def test_empty_frame_gives_the_empty_state() -> None:
    empty = pd.DataFrame({"month": [], "tickets": []})
    for fig in (
        plots.line_trend(empty, "month", {"tickets": "工单量"}, title="趋势", context=CONTEXT),
        plots.bar_ranking(empty, "month", "tickets", title="趋势", context=CONTEXT),
    ):
        assert len(fig.data) == 0
        assert fig.layout.annotations[0].text == t("state.empty")
        assert_print_style(fig, "趋势")


def test_format_value() -> None:
    assert style.format_value(0.1234, percent=True) == "12.3%"
    assert style.format_value(1234.5, decimals=1) == "1,234.5"
    assert style.format_value(float("nan")) == ""
    assert style.subtitle_text(ChartContext("2024年第1季度", 5), "en") == (
        "Period: 2024年第1季度 · n = 5"
    )


def test_event_study_marks_signing_reference_and_sides() -> None:
    frame = pd.DataFrame(
        {
            "relative": [-2, -1, 0, 1],
            "estimate": [0.5, 0.0, 3.0, 4.0],
            "low": [-1.0, 0.0, 1.0, 2.5],
            "high": [2.0, 0.0, 5.0, 5.5],
            "n_treated": [8, 9, 9, 7],
            "is_reference": [False, True, False, False],
        }
    )
    fig = plots.event_study(frame, title="事件研究", context=CONTEXT, signing_label="签约")
    assert_print_style(fig, "事件研究")
    traces = {trace.name: trace for trace in fig.data}
    before, after = traces[t("label.before")], traces[t("label.after")]
    assert list(before.x) == [-2] and list(after.x) == [0, 1]
    assert list(after.error_y.array) == [2.0, 1.5]  # high − estimate
    assert list(after.error_y.arrayminus) == [2.0, 1.5]  # estimate − low
    reference = traces[t("label.reference_period")]
    assert list(reference.x) == [-1] and list(reference.y) == [0.0]
    assert [shape.x0 for shape in fig.layout.shapes if shape.type == "line"].count(-0.5) == 1
    assert [a.text for a in fig.layout.annotations] == ["签约"]


def test_difference_dots_put_the_combined_row_on_top() -> None:
    frame = pd.DataFrame(
        {"group": ["甲", "乙"], "d": [1.0, -2.0], "low": [0.0, -4.0], "high": [2.0, 0.5]}
    )
    fig = plots.difference_dots(
        frame,
        "group",
        "d",
        "low",
        "high",
        title="差异",
        context=CONTEXT,
        combined=("合并", 0.2, -0.8, 1.2),
    )
    assert_print_style(fig, "差异")
    assert list(fig.layout.yaxis.categoryarray) == ["乙", "甲", "合并"]  # drawn bottom-up
    combined = next(trace for trace in fig.data if trace.name == "合并")
    assert list(combined.x) == [0.2] and combined.marker.symbol == "diamond"
    assert list(combined.error_x.arrayminus) == pytest.approx([1.0])


# --- monthly axes, the selected period, legends ---------------------------------------------------

TWELVE_MONTHS = pd.date_range("2024-04-01", "2025-03-01", freq="MS")
MARCH_SELECTED = style.Highlight(date(2025, 3, 1), date(2025, 3, 31), "所选期间：2025年3月")


def _trend_frame(months: pd.DatetimeIndex) -> pd.DataFrame:
    return pd.DataFrame({"month": months, "tickets": range(10, 10 + len(months))})


def test_a_monthly_trend_labels_months_alike_and_shades_the_selected_period() -> None:
    fig = plots.line_trend(
        _trend_frame(TWELVE_MONTHS),
        "month",
        {"tickets": "工单量"},
        title="月度工单量趋势",
        context=CONTEXT,
        highlight=MARCH_SELECTED,
    )
    (line,) = fig.data
    assert [pd.Timestamp(x) for x in line.x] == list(TWELVE_MONTHS)
    assert list(line.y) == list(range(10, 22))
    assert line.showlegend is False  # one line: its name is the title
    axis = fig.layout.xaxis
    assert (axis.type, axis.tickformat, axis.hoverformat) == ("date", "%Y-%m", "%Y-%m")
    assert line.xhoverformat == "%Y-%m"
    # 12 months, at most 7 labels: every second month, counted back from the last.
    assert axis.dtick == "M2" and pd.Timestamp(axis.tick0) == pd.Timestamp("2025-03-01")
    # Half a month of room either side of the first and last points.
    assert [pd.Timestamp(v) for v in axis.range] == [
        pd.Timestamp("2024-03-16 12:00"),  # March 2024 has 31 days
        pd.Timestamp("2025-03-16 12:00"),
    ]
    (band,) = fig.layout.shapes
    # From halfway between 1 February and 1 March (28 days: the 15th) to halfway between
    # 1 March and 1 April (31 days: the 16th at noon).
    assert pd.Timestamp(band.x0) == pd.Timestamp("2025-02-15")
    assert pd.Timestamp(band.x1) == pd.Timestamp("2025-03-16 12:00")
    assert (band.layer, band.name, band.legend, band.showlegend) == (
        "below",
        "所选期间：2025年3月",
        "legend2",
        True,
    )
    # The note legend sits under the axis, in a bottom margin grown to hold it.
    assert fig.layout.legend2.y < 0 and fig.layout.legend2.yanchor == "top"
    assert fig.layout.margin.b >= 70 + style.NOTE_ROW_PX


def test_a_longer_window_labels_fewer_months_and_shades_a_quarter() -> None:
    months = pd.date_range("2024-01-01", "2025-12-01", freq="MS")
    quarter = style.Highlight(date(2025, 10, 1), date(2025, 12, 31), "Selected period: 2025 Q4")
    fig = plots.line_trend(
        _trend_frame(months).assign(other=1.0),
        "month",
        {"tickets": "Tickets", "other": "Other"},
        title="t",
        context=CONTEXT,
        lang="en",
        highlight=quarter,
    )
    assert fig.layout.xaxis.dtick == "M4"  # ceil(24 / 7)
    (band,) = fig.layout.shapes
    assert pd.Timestamp(band.x0) == pd.Timestamp("2025-09-16")  # 30 days in September
    assert pd.Timestamp(band.x1) == pd.Timestamp("2025-12-16 12:00")
    assert [trace.showlegend for trace in fig.data] == [True, True]


def test_month_strings_and_other_dates_are_not_month_axes() -> None:
    days = pd.DataFrame({"day": pd.to_datetime(["2024-01-05", "2024-01-06"]), "v": [1, 2]})
    fig = plots.line_trend(days, "day", {"v": "v"}, title="t", context=CONTEXT)
    assert fig.layout.xaxis.tickformat == "%Y-%m-%d" and not fig.layout.shapes


def test_stacked_monthly_bars_outline_the_selected_period() -> None:
    frame = pd.DataFrame({"month": TWELVE_MONTHS, "满意": 3, "不满意": 1})
    fig = plots.stacked_share(
        frame,
        "month",
        {"满意": "满意", "不满意": "不满意"},
        title="回访满意率趋势",
        context=CONTEXT,
        highlight=MARCH_SELECTED,
    )
    assert [pd.Timestamp(x) for x in fig.data[0].x] == list(TWELVE_MONTHS)
    assert list(fig.data[0].y) == [0.75] * 12
    assert fig.layout.xaxis.tickformat == "%Y-%m"
    (outline,) = fig.layout.shapes
    # Bars would hide a band: an outline drawn above them, no fill.
    assert outline.layer == "above" and outline.fillcolor == "rgba(0, 0, 0, 0)"
    assert outline.line.color == style.HIGHLIGHT_OUTLINE
    assert pd.Timestamp(outline.x0) == pd.Timestamp("2025-02-15")


def test_the_legend_rows_follow_plotlys_grid() -> None:
    """Entries that do not fit side by side are laid out in cells as wide as the widest."""
    frame = _trend_frame(TWELVE_MONTHS).assign(a=1.0, b=2.0, c=3.0)
    short = {"a": "甲", "b": "乙", "c": "丙"}  # 3 × (40 + 14) px: one row
    wide = {"a": "及时响应率", "b": "按时办结率", "c": "一个相当长的图例名称用来占满一行"}
    one_row = plots.line_trend(frame, "month", short, title="t", context=CONTEXT)
    # 110 + 110 + 264 px > 340 px: cells of 264 + 6 px, one per row, three rows.
    grid = plots.line_trend(frame, "month", wide, title="t", context=CONTEXT)
    assert style._legend_rows(one_row) == 1
    assert style._legend_rows(grid) == 3
    header = 12 + style.TITLE_LINE_PX + style.SUBTITLE_PX
    assert grid.layout.margin.t == header + 3 * style.LEGEND_ROW_PX + 16


@pytest.mark.parametrize("units", [3, 125])
def test_the_legend_sits_just_above_the_plot_however_tall_the_chart(units: int) -> None:
    """A legend placed at a fraction of the plot's height climbs onto the title in a tall
    chart (125 units: 3,700 px); it is pinned a few pixels above the plot instead."""
    df = pd.DataFrame(
        {
            "unit": [f"小区{i:03d}" for i in range(units)],
            "rate": [0.5 + (i % 5) / 10 for i in range(units)],
            "n": [10 if i % 2 else 100 for i in range(units)],
        }
    ).assign(low=lambda f: f.rate - 0.1, high=lambda f: f.rate + 0.05)
    fig = plots.interval_dots(
        df, "unit", "rate", "low", "high", n_col="n", min_sample=30, title="t", context=CONTEXT
    )
    plot_height = fig.layout.height - fig.layout.margin.t - fig.layout.margin.b
    assert fig.layout.legend.yanchor == "bottom"
    assert (fig.layout.legend.y - 1) * plot_height == pytest.approx(style.LEGEND_GAP_PX)
    # Exactly one row per unit: plotly would pad 5% of the span (7 empty rows at 125).
    assert list(fig.layout.yaxis.range) == [-0.5, units - 0.5]


def test_styling_twice_does_not_grow_the_margins() -> None:
    fig = plots.line_trend(
        _trend_frame(TWELVE_MONTHS),
        "month",
        {"tickets": "工单量"},
        title="t",
        context=CONTEXT,
        highlight=MARCH_SELECTED,
    )
    margins = (fig.layout.margin.t, fig.layout.margin.b)
    style.fit_header(fig)
    assert (fig.layout.margin.t, fig.layout.margin.b) == margins


def test_labels_never_show_minus_zero() -> None:
    assert style.format_value(-0.04, decimals=1) == "0.0"
    assert style.format_value(-0.0) == "0"
    assert style.format_value(-0.0004, percent=True) == "0.0%"
    assert style.format_value(-0.06, decimals=1) == "-0.1"
    assert style.format_value(-0.0006, percent=True) == "-0.1%"
