"""响应时效: distributions, P50/P90 trends, on-time rates, backlog aging, volume heatmap, repeats."""

import streamlit as st

from govdash.analytics.charts.plots import bar_ranking, box_from_quartiles, heatmap, line_trend
from govdash.analytics.charts.style import ChartContext
from govdash.analytics.queries.tickets import (
    backlog_aging,
    longest_open,
    monthly_trend,
    percentile_trend,
    repeat_requests,
    response_distribution,
    ticket_kpis,
    weekday_hour_volume,
)
from govdash.analytics.reports.export import localised_table
from govdash.core.access import TICKET_ROWS, VIEW, can
from govdash.i18n import t
from govdash.web.auth import require, signed_in_fragment
from govdash.web.cache import active_config, query
from govdash.web.ui import (
    Download,
    chart_block,
    chart_figure,
    describe_filters,
    download_buttons,
    labelled,
    lang,
    require_data,
    show_table,
    trend,
)

language = lang()
principal = require(VIEW, language)
config = active_config()
filters = require_data()
st.title(t("page.response", language))
st.caption(f"{t('provenance.filters', language)}：{describe_filters(filters)}")
period = filters.label(language)
filters_text = describe_filters(filters)


def context(n: int) -> ChartContext:
    return ChartContext(period, int(n), filters_text)


# How many tickets the period holds: "no data" and "groups too small to publish" are
# different causes and get different sentences.
period_tickets = query(ticket_kpis, filters).tickets


def explain_empty(hidden_key: str, **values: object) -> None:
    if period_tickets == 0:
        st.info(t("response.no_tickets", language, period=period))
    else:
        st.info(
            t(
                hidden_key,
                language,
                tickets=f"{period_tickets:,}",
                n=config.min_group_size,
                **values,
            )
        )


def tickets_download(title_key: str, **values: object) -> Download:
    """Files named in the page language, their sources the period's tickets."""
    return Download(t(title_key, language, **values), sources=("tickets",))


# --- distributions: a fragment (the grouping reruns only this part) ------------------------------
GROUPS = ("category", "priority", "property_company", "community", "compound")


@signed_in_fragment
def distributions() -> None:
    """First-response and resolution times by the chosen grouping. Choosing another grouping
    reruns only this part of the page (st.fragment)."""
    by = st.radio(
        t("response.group_by", language),
        GROUPS,
        horizontal=True,
        key=labelled("response_by"),
        format_func=lambda g: t(f"filter.{g}", language),
    )
    st.subheader(t("chart.response_distribution", language, group=t(f"filter.{by}", language)))
    distribution = query(response_distribution, filters, by=by)
    if distribution.empty:
        explain_empty("response.groups_hidden", group=t(f"filter.{by}", language))
    else:
        group = t(f"filter.{by}", language)
        # (measure, title key, axis key): first response in minutes, resolution in hours
        halves = (
            ("response", "response.first_response_by", "axis.response_minutes"),
            ("resolution", "response.resolution_by", "axis.resolution_hours"),
        )
        for column, (measure, title_key, axis_key) in zip(st.columns(2), halves, strict=True):
            with column:
                figure = chart_figure(
                    box_from_quartiles,
                    distribution,
                    "group_name",
                    quantile_cols=[f"{measure}_p{q}" for q in (10, 25, 50, 75, 90)],
                    title=t(title_key, language, group=group),
                    context=context(distribution[f"{measure}_n"].sum()),
                    lang=language,
                    value_title=t(axis_key, language),
                    group_title=group,
                )
                chart_block(
                    figure,
                    distribution,
                    f"{measure}_by_{by}",
                    filters,
                    download=tickets_download(f"file.{measure}_by", group=group),
                )


distributions()

# --- P50/P90 and on-time trends: the months up to the period's end, the period shaded ----------
st.subheader(t("chart.response_percentile_trend", language))
months = trend(filters)
percentiles = query(percentile_trend, months.window)
monthly = query(monthly_trend, months.window)
if percentiles.empty or percentiles["response_n"].sum() == 0:
    st.info(t("state.trend_empty", language, window=months.window.span_label()))
else:
    left, right = st.columns(2)
    with left:
        figure = chart_figure(
            line_trend,
            percentiles,
            "month",
            {"response_p50_minutes": "P50", "response_p90_minutes": "P90"},
            title=t("chart.response_percentile_trend", language),
            context=months.context(percentiles["response_n"].sum()),
            lang=language,
            x_title=t("axis.month", language),
            y_title=t("axis.response_minutes", language),
            highlight=months.highlight,
        )
        chart_block(
            figure,
            percentiles,
            "response_percentiles",
            months.window,
            download=months.download(t("file.response_percentiles", language)),
        )
    with right:
        figure = chart_figure(
            line_trend,
            monthly,
            "month",
            {
                "response_on_time_rate": t("kpi.on_time_response_rate", language),
                "resolution_on_time_rate": t("kpi.on_time_resolution_rate", language),
            },
            title=t("response.on_time_trend", language),
            context=months.context(monthly["tickets"].sum()),
            lang=language,
            x_title=t("axis.month", language),
            y_title=t("axis.rate", language),
            percent=True,
            highlight=months.highlight,
        )
        chart_block(
            figure,
            monthly,
            "on_time_rates",
            months.window,
            download=months.download(t("file.on_time_rates", language)),
        )
    st.caption(t("response.on_time_note", language))
    rules = t(
        "response.rules",
        language,
        rules=("；" if language == "zh" else "; ").join(r.describe(language) for r in config.sla),
    )
    if any(rule.uses_working_days for rule in config.sla):
        rules += " " + t("response.rules_working_days", language)
    st.caption(rules)

# --- backlog aging and the heatmap -----------------------------------------------------------
left, right = st.columns(2)
with left:
    st.subheader(t("chart.backlog_aging", language))
    aging = query(backlog_aging, filters)
    if aging["tickets"].sum() == 0:
        st.info(t("response.no_backlog", language, period=period))
    else:
        figure = chart_figure(
            bar_ranking,
            aging.iloc[::-1],
            "bucket",
            "tickets",
            title=t("chart.backlog_aging", language),
            context=context(aging["tickets"].sum()),
            lang=language,
            value_title=t("axis.ticket_count", language),
            label_title=t("axis.aging_bucket", language),
        )
        chart_block(
            figure,
            aging,
            "backlog_aging",
            filters,
            download=Download(t("file.backlog_aging", language), sources=("backlog",)),
        )
with right:
    st.subheader(t("chart.weekday_hour", language))
    volume = query(weekday_hour_volume, filters)
    if volume["tickets"].sum() == 0:
        st.info(t("response.no_tickets", language, period=period))
    else:
        volume = volume.assign(
            weekday_name=volume["weekday"].map(lambda d: t(f"weekday.{d}", language))
        )
        figure = chart_figure(
            heatmap,
            volume,
            "hour",
            "weekday_name",
            "tickets",
            title=t("chart.weekday_hour", language),
            context=context(volume["tickets"].sum()),
            lang=language,
            x_title=t("axis.hour", language),
            y_title=t("axis.weekday", language),
            z_title=t("axis.ticket_count", language),
            y_order=[t(f"weekday.{d}", language) for d in range(1, 8)],
        )
        chart_block(
            figure,
            volume,
            "weekday_hour",
            filters,
            download=tickets_download("file.weekday_hour"),
        )

# --- repeat requests and the longest open -----------------------------------------------------
st.subheader(t("chart.repeat_requests", language, days=config.repeat_window_days))
repeats = query(repeat_requests, filters)
if repeats.by_category.empty:
    explain_empty("response.repeats_hidden")
else:
    st.caption(t("response.repeat_note", language, days=config.repeat_window_days))
    figure = chart_figure(
        bar_ranking,
        repeats.by_category,
        "category",
        "repeat_share",
        title=t("chart.repeat_requests", language, days=config.repeat_window_days),
        context=context(repeats.by_category["tickets_with_caller"].sum()),
        lang=language,
        value_title=t("axis.repeat_share", language),
        label_title=t("filter.category", language),
        percent=True,
        decimals=1,
        higher_is_better=False,
    )
    chart_block(
        figure,
        repeats.by_category,
        "repeat_requests",
        filters,
        download=tickets_download("file.repeat_requests"),
    )
    show_table(localised_table(repeats.top_compounds, language), key="repeat_compounds")

st.subheader(t("chart.longest_open", language))
if not can(principal, TICKET_ROWS):
    st.caption(t("auth.ticket_rows_hidden", language))
    st.stop()
oldest = query(longest_open, filters)
if oldest.empty:
    st.info(t("response.no_backlog", language, period=period))
else:
    oldest = localised_table(oldest, language)
    show_table(oldest, key="longest_open")
    download_buttons(
        "longest_open",
        oldest,
        filters,
        download=Download(t("file.longest_open", language), sources=("backlog",)),
    )
