"""总览: headline KPIs against the previous period, the monthly trend, 红黑榜 and drill-down."""

import math

import pandas as pd
import streamlit as st

from govdash.analytics.charts.plots import bar_ranking, line_trend
from govdash.analytics.charts.style import ChartContext
from govdash.analytics.metrics.rates import difference
from govdash.analytics.queries.surveys import survey_item_rates
from govdash.analytics.queries.tickets import monthly_trend, ticket_kpis, ticket_rows
from govdash.analytics.queries.units import drill_down, red_black_list, unit_table
from govdash.analytics.reports.export import localised_table
from govdash.core.access import TICKET_ROWS, VIEW, can
from govdash.i18n import t
from govdash.web.auth import require
from govdash.web.cache import active_config, query
from govdash.web.ui import (
    Download,
    chart_block,
    describe_filters,
    empty_state,
    labelled,
    lang,
    require_data,
    show_table,
)

language = lang()
principal = require(VIEW, language)
config = active_config()
filters = require_data()
st.title(t("page.overview", language))
st.caption(f"{t('provenance.filters', language)}：{describe_filters(filters)}")

kpis = query(ticket_kpis, filters)
previous = query(ticket_kpis, filters.previous())
survey = query(survey_item_rates, filters, level="all")
survey_before = query(survey_item_rates, filters.previous(), level="all")


def _overall(frame: pd.DataFrame) -> tuple[float, int]:
    rows = frame[frame["item"] == config.overall_item] if not frame.empty else frame
    if rows.empty:
        return math.nan, 0
    return float(rows["rate"].iloc[0]), int(rows["n"].iloc[0])


def _pct(value: float) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:.1%}"


def _num(value: float, unit: str = "") -> str:
    return "—" if value is None or math.isnan(value) else f"{value:,.1f}{unit}"


def _delta_points(now: float, before: float) -> str | None:
    change = difference(now, before)
    return None if change is None or math.isnan(change) else f"{change * 100:+.1f} pp"


def _delta_count(now: float, before: float) -> str | None:
    if now is None or before is None or math.isnan(now) or math.isnan(before):
        return None
    return f"{now - before:+,.1f}" if isinstance(now, float) else f"{now - before:+,}"


if kpis.tickets == 0 and survey.empty:
    empty_state()
    st.stop()

survey_rate, survey_n = _overall(survey)
survey_rate_before, _ = _overall(survey_before)
minutes = t("unit.minutes", language)
n_text = t("label.n", language, n=f"{kpis.tickets:,}")
cards = [
    ("kpi.ticket_count", f"{kpis.tickets:,}", _delta_count(kpis.tickets, previous.tickets), n_text),
    (
        "kpi.tickets_per_100_households",
        _num(kpis.tickets_per_100_households),
        _delta_count(kpis.tickets_per_100_households, previous.tickets_per_100_households),
        t("label.n", language, n=f"{kpis.households or 0:,} {t('unit.households', language)}"),
    ),
    (
        "kpi.response_p50",
        _num(kpis.response_median_minutes, f" {minutes}"),
        _delta_count(kpis.response_median_minutes, previous.response_median_minutes),
        n_text,
    ),
    (
        "kpi.response_p90",
        _num(kpis.response_p90_minutes, f" {minutes}"),
        _delta_count(kpis.response_p90_minutes, previous.response_p90_minutes),
        n_text,
    ),
    (
        "kpi.on_time_response_rate",
        _pct(kpis.response_on_time_rate),
        _delta_points(kpis.response_on_time_rate, previous.response_on_time_rate),
        t("label.n", language, n=f"{kpis.response_on_time_n:,}"),
    ),
    (
        "kpi.on_time_resolution_rate",
        _pct(kpis.resolution_on_time_rate),
        _delta_points(kpis.resolution_on_time_rate, previous.resolution_on_time_rate),
        t("label.n", language, n=f"{kpis.resolution_on_time_n:,}"),
    ),
    (
        "kpi.contact_rate",
        _pct(kpis.response_rate),
        _delta_points(kpis.response_rate, previous.response_rate),
        t("label.n", language, n=f"{kpis.callback_n:,}"),
    ),
    (
        "kpi.resolution_rate",
        _pct(kpis.resolution_rate),
        _delta_points(kpis.resolution_rate, previous.resolution_rate),
        t("label.n", language, n=f"{kpis.callback_n:,}"),
    ),
    (
        "kpi.satisfaction_rate",
        _pct(kpis.satisfaction_rate),
        _delta_points(kpis.satisfaction_rate, previous.satisfaction_rate),
        t("label.n", language, n=f"{kpis.callback_n:,}"),
    ),
    (
        "kpi.three_rate_composite",
        _pct(kpis.three_rate_composite),
        _delta_points(kpis.three_rate_composite, previous.three_rate_composite),
        t("label.n", language, n=f"{kpis.callback_n:,}"),
    ),
    (
        "kpi.survey_satisfaction_rate",
        _pct(survey_rate),
        _delta_points(survey_rate, survey_rate_before),
        t("label.n", language, n=f"{survey_n:,}"),
    ),
    (
        "kpi.backlog",
        f"{kpis.backlog:,}",
        _delta_count(kpis.backlog, previous.backlog),
        f"{t('kpi.overdue', language)} {kpis.backlog_overdue:,}",
    ),
]
inverse = {
    "kpi.response_p50",
    "kpi.response_p90",
    "kpi.backlog",
    "kpi.ticket_count",
    "kpi.tickets_per_100_households",
}
st.caption(
    t(
        "overview.cards_caption",
        language,
        period=filters.label(language),
        previous=filters.previous().label(language),
    )
)
for start in range(0, len(cards), 4):
    columns = st.columns(4)
    for column, (key, value, delta, note) in zip(columns, cards[start : start + 4], strict=False):
        column.metric(
            t(key, language),
            value,
            delta=delta,
            help=note,
            delta_color="inverse" if key in inverse else "normal",
            border=True,
        )
        column.caption(note)

# --- monthly trend -----------------------------------------------------------------------------
st.subheader(t("chart.monthly_trend", language))
trend = query(monthly_trend, filters)
if trend.empty or trend["tickets"].sum() == 0:
    empty_state()
else:
    context = ChartContext(
        filters.label(language), int(trend["tickets"].sum()), describe_filters(filters)
    )
    left, right = st.columns(2)
    with left:
        figure = line_trend(
            trend,
            "month",
            {"tickets": t("kpi.ticket_count", language)},
            title=t("chart.monthly_trend", language),
            context=context,
            lang=language,
            x_title=t("axis.month", language),
            y_title=t("axis.ticket_count", language),
        )
        chart_block(
            figure,
            trend,
            "monthly_volume",
            filters,
            download=Download(t("file.monthly_volume", language), sources=("tickets",)),
        )
    with right:
        figure = line_trend(
            trend,
            "month",
            {
                "response_on_time_rate": t("kpi.on_time_response_rate", language),
                "resolution_on_time_rate": t("kpi.on_time_resolution_rate", language),
                "three_rate_composite": t("kpi.three_rate_composite", language),
            },
            title=t("overview.rates_trend", language),
            context=context,
            lang=language,
            x_title=t("axis.month", language),
            y_title=t("axis.rate", language),
            percent=True,
        )
        chart_block(
            figure,
            trend,
            "monthly_rates",
            filters,
            download=Download(t("file.monthly_rates", language), sources=("tickets",)),
        )

# --- 红黑榜 and the unit table ------------------------------------------------------------------
st.subheader(t("chart.red_black_list", language))
levels = ("community", "compound", "property_company")
level = st.radio(
    t("filter.level", language),
    levels,
    horizontal=True,
    key=labelled("overview_level"),
    format_func=lambda code: t(f"level.{code}", language),
)
units = query(unit_table, filters, level=level)
if units.empty:
    empty_state()
    st.stop()
size = config.red_black_list_size
red, black = red_black_list(units, "composite", size, config.min_group_size)
if red.empty:
    st.info(t("overview.too_few", language, n=config.min_group_size))
else:
    ranked = pd.concat(
        [
            red.assign(list=t("label.red_list", language)),
            black.assign(list=t("label.black_list", language)),
        ]
    )
    context = ChartContext(
        filters.label(language), int(ranked["tickets"].sum()), describe_filters(filters)
    )
    figure = bar_ranking(
        pd.concat([red, black]).drop_duplicates("unit"),
        "unit",
        "composite",
        title=t("chart.red_black_list", language),
        context=context,
        lang=language,
        value_title=t("overview.composite", language),
        label_title=t(f"level.{level}", language),
        decimals=1,
        red_black_size=size,
    )
    chart_block(
        figure,
        ranked[
            [
                "list",
                "rank",
                "unit",
                "composite",
                "tickets",
                "three_rate_composite",
                "survey_satisfaction_rate",
            ]
        ],
        "red_black_list",
        filters,
        columns={"unit": t(f"level.{level}", language)},
        download=Download(
            t("file.red_black_list", language, level=t(f"level.{level}", language)),
            sources=("tickets", "surveys", "register"),
        ),
    )

st.subheader(t("overview.units", language))
shown = units[
    [
        "unit",
        "parent",
        "households",
        "tickets",
        "tickets_per_100_households",
        "response_median_minutes",
        "response_p90_minutes",
        "response_on_time_rate",
        "resolution_on_time_rate",
        "three_rate_composite",
        "callback_n",
        "survey_satisfaction_rate",
        "survey_n",
        "composite",
    ]
]
event = show_table(
    shown,
    key="unit_table",
    labels={
        "unit": t(f"level.{level}", language),
        "response_on_time_rate": t("kpi.on_time_response_rate", language),
        "resolution_on_time_rate": t("kpi.on_time_resolution_rate", language),
        "three_rate_composite": t("kpi.three_rate_composite", language),
        "survey_satisfaction_rate": t("kpi.survey_satisfaction_rate", language),
        "composite": t("overview.composite", language),
    },
    on_select="rerun",
    selection_mode="single-row",
)
selected = event.selection.rows if event and event.selection else []
chosen_unit = st.selectbox(
    t("overview.drill", language),
    ["", *units["unit"].tolist()],  # "" (not None) so the choice survives a language switch
    index=(selected[0] + 1) if selected else 0,
    key=labelled(f"drill_{level}"),
    format_func=lambda u: u or t("overview.choose_unit", language),
)
may_see_tickets = can(principal, TICKET_ROWS)
if chosen_unit:
    if level == "compound" and not may_see_tickets:
        st.caption(t("auth.ticket_rows_hidden", language))
    elif level == "compound":
        tickets = query(ticket_rows, filters, compound=chosen_unit)
        st.markdown(f"**{chosen_unit}** · {t('label.n', language, n=len(tickets))}")
        show_table(localised_table(tickets, language), key="drill_tickets")
    else:
        down = query(drill_down, filters, level=level, unit=chosen_unit)
        st.markdown(f"**{chosen_unit}** → {t(f'level.{down.child_level}', language)}")
        show_table(
            localised_table(
                down.table[shown.columns],
                language,
                {"unit": t(f"level.{down.child_level}", language)},
            ),
            key="drill_children",
            on_select="rerun",
            selection_mode="single-row",
        )
        if not may_see_tickets:
            st.caption(t("auth.ticket_rows_hidden", language))
            st.stop()
        compound = st.selectbox(
            t("overview.drill_compound", language),
            ["", *down.table["unit"].tolist()],
            key=labelled(f"drill_compound_{chosen_unit}"),
            format_func=lambda u: u or t("overview.choose_unit", language),
        )
        if compound:
            tickets = query(ticket_rows, down.filters, compound=compound)
            st.markdown(f"**{compound}** · {t('label.n', language, n=len(tickets))}")
            show_table(localised_table(tickets, language), key="drill_compound_tickets")
