"""总览: headline KPIs against the previous period, the monthly trend, 红黑榜 and drill-down."""

import math

import pandas as pd
import streamlit as st

from govdash.analytics.charts.plots import bar_ranking, line_trend
from govdash.analytics.charts.style import ChartContext
from govdash.analytics.queries.surveys import survey_item_rates_now_and_before
from govdash.analytics.queries.tickets import monthly_trend, ticket_kpis, ticket_rows
from govdash.analytics.queries.units import (
    CHILD_LEVEL,
    drill_down,
    ranking_candidates,
    red_black_list,
    unit_table,
)
from govdash.analytics.reports.export import localised_table
from govdash.core.access import TICKET_ROWS, VIEW, can
from govdash.i18n import t
from govdash.web.auth import require, signed_in_fragment
from govdash.web.bulletin import bulletin_block
from govdash.web.cache import active_config, query, shared
from govdash.web.ui import (
    Download,
    chart_block,
    chart_figure,
    describe_filters,
    empty_state,
    labelled,
    lang,
    metric_card,
    require_data,
    show_table,
    trend,
)

language = lang()
principal = require(VIEW, language)
config = active_config()
filters = require_data()
st.title(t("page.overview", language))
st.caption(f"{t('provenance.filters', language)}：{describe_filters(filters)}")

kpis = query(ticket_kpis, filters)
previous = query(ticket_kpis, filters.previous())
survey, survey_before = query(
    survey_item_rates_now_and_before,
    filters,
    filters.previous(),
    level="all",
    item=config.overall_item,
)


def _overall(frame: pd.DataFrame) -> tuple[float, int]:
    rows = frame[frame["item"] == config.overall_item] if not frame.empty else frame
    if rows.empty:
        return math.nan, 0
    return float(rows["rate"].iloc[0]), int(rows["n"].iloc[0])


def _pct(value: float) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:.1%}"


def _num(value: float, unit: str = "") -> str:
    return "—" if value is None or math.isnan(value) else f"{value:,.1f}{unit}"


# A period without tickets or surveys still shows its trend: the months around it may hold
# data, and that is the context a clerk needs.
period_is_empty = kpis.tickets == 0 and survey.empty

survey_rate, survey_n = _overall(survey)
survey_rate_before, _ = _overall(survey_before)
minutes = t("unit.minutes", language)
n_text = t("label.n", language, n=f"{kpis.tickets:,}")
callback_text = t("label.n", language, n=f"{kpis.callback_n:,}")
# (label key, value shown, now, before, kind, note). Kinds: counts and times change in their
# own unit at the value's precision; rates in percentage points at one decimal.
COUNT, ONE_PLACE, RATE = "count", "one_place", "rate"
cards: list[tuple[str, str, float, float, str, str]] = [
    ("kpi.ticket_count", f"{kpis.tickets:,}", kpis.tickets, previous.tickets, COUNT, n_text),
    (
        "kpi.tickets_per_100_households",
        _num(kpis.tickets_per_100_households),
        kpis.tickets_per_100_households,
        previous.tickets_per_100_households,
        ONE_PLACE,
        t("label.n", language, n=f"{kpis.households or 0:,} {t('unit.households', language)}"),
    ),
    (
        "kpi.response_p50",
        _num(kpis.response_median_minutes, f" {minutes}"),
        kpis.response_median_minutes,
        previous.response_median_minutes,
        ONE_PLACE,
        n_text,
    ),
    (
        "kpi.response_p90",
        _num(kpis.response_p90_minutes, f" {minutes}"),
        kpis.response_p90_minutes,
        previous.response_p90_minutes,
        ONE_PLACE,
        n_text,
    ),
    (
        "kpi.on_time_response_rate",
        _pct(kpis.response_on_time_rate),
        kpis.response_on_time_rate,
        previous.response_on_time_rate,
        RATE,
        t("label.n", language, n=f"{kpis.response_on_time_n:,}"),
    ),
    (
        "kpi.on_time_resolution_rate",
        _pct(kpis.resolution_on_time_rate),
        kpis.resolution_on_time_rate,
        previous.resolution_on_time_rate,
        RATE,
        t("label.n", language, n=f"{kpis.resolution_on_time_n:,}"),
    ),
    (
        "kpi.contact_rate",
        _pct(kpis.response_rate),
        kpis.response_rate,
        previous.response_rate,
        RATE,
        callback_text,
    ),
    (
        "kpi.resolution_rate",
        _pct(kpis.resolution_rate),
        kpis.resolution_rate,
        previous.resolution_rate,
        RATE,
        callback_text,
    ),
    (
        "kpi.satisfaction_rate",
        _pct(kpis.satisfaction_rate),
        kpis.satisfaction_rate,
        previous.satisfaction_rate,
        RATE,
        callback_text,
    ),
    (
        "kpi.three_rate_composite",
        _pct(kpis.three_rate_composite),
        kpis.three_rate_composite,
        previous.three_rate_composite,
        RATE,
        callback_text,
    ),
    (
        "kpi.survey_satisfaction_rate",
        _pct(survey_rate),
        survey_rate,
        survey_rate_before,
        RATE,
        t("label.n", language, n=f"{survey_n:,}"),
    ),
    (
        "kpi.backlog",
        f"{kpis.backlog:,}",
        kpis.backlog,
        previous.backlog,
        COUNT,
        f"{t('kpi.overdue', language)} {kpis.backlog_overdue:,}",
    ),
]
lower_is_better = {
    "kpi.response_p50",
    "kpi.response_p90",
    "kpi.backlog",
    "kpi.ticket_count",
    "kpi.tickets_per_100_households",
}
if period_is_empty:
    st.info(t("overview.period_empty", language, period=filters.label(language)))
else:
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
        for column, (key, value, now, before, kind, note) in zip(
            columns, cards[start : start + 4], strict=False
        ):
            metric_card(
                column,
                t(key, language),
                value,
                now,
                before,
                decimals=0 if kind == COUNT else 1,
                scale=100.0 if kind == RATE else 1.0,
                suffix=" pp" if kind == RATE else "",
                lower_is_better=key in lower_is_better,
                note=note,
            )

# --- 月度通报: the month's bulletin as Word or PDF (govdash/web/bulletin.py) -------------------------
bulletin_block(filters, language)

# --- monthly trend: the months up to the period's end, the period itself shaded -----------------
st.subheader(t("chart.monthly_trend", language))
months = trend(filters)
monthly = query(monthly_trend, months.window)
if monthly.empty or monthly["tickets"].sum() == 0:
    st.info(t("state.trend_empty", language, window=months.window.span_label()))
else:
    context = months.context(monthly["tickets"].sum())
    left, right = st.columns(2)
    with left:
        figure = chart_figure(
            line_trend,
            monthly,
            "month",
            {"tickets": t("kpi.ticket_count", language)},
            title=t("chart.monthly_trend", language),
            context=context,
            lang=language,
            x_title=t("axis.month", language),
            y_title=t("axis.ticket_count", language),
            highlight=months.highlight,
        )
        chart_block(
            figure,
            monthly,
            "monthly_volume",
            months.window,
            download=months.download(t("file.monthly_volume", language)),
        )
    with right:
        figure = chart_figure(
            line_trend,
            monthly,
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
            highlight=months.highlight,
        )
        chart_block(
            figure,
            monthly,
            "monthly_rates",
            months.window,
            download=months.download(t("file.monthly_rates", language)),
        )

# --- 红黑榜, the unit table and the drill-down: a fragment ----------------------------------------
LEVELS = ("community", "compound", "property_company")


def in_sentence(name: str) -> str:
    """A level's name inside an English sentence is not capitalised ("only one community")."""
    return name.lower() if language == "en" else name


def _compare(child_level: str) -> None:
    st.session_state["overview_level"] = child_level


def explain_no_list(units: pd.DataFrame, level: str) -> None:
    """Why there is no 红黑榜, with what to do: one unit cannot be ranked against itself (the
    level below can), and units under the minimum of records are not published."""
    level_name = in_sentence(t(f"level.{level}", language))
    taking_part = ranking_candidates(units, "composite", config.min_group_size)
    if len(units) == 1:
        unit = str(units["unit"].iloc[0])
        child = CHILD_LEVEL.get(level)
        if child is None:
            st.info(t("overview.one_unit_lowest", language, level=level_name, unit=unit))
            return
        child_name = in_sentence(t(f"level.{child}", language))
        st.info(t("overview.one_unit", language, level=level_name, unit=unit, child=child_name))
        st.button(
            t("overview.compare_children", language, child=child_name),
            key="compare_children",
            on_click=_compare,
            args=(child,),
        )
    elif int(units["callback_n"].sum()) == 0:
        st.info(t("overview.no_callbacks", language, period=filters.label(language)))
    elif taking_part.empty:
        st.info(t("overview.too_few", language, n=config.min_group_size, level=level_name))
    else:
        st.info(
            t(
                "overview.one_eligible",
                language,
                n=config.min_group_size,
                level=level_name,
                unit=("、" if language == "zh" else ", ").join(taking_part["unit"].astype(str)),
                units=len(units),
            )
        )


@signed_in_fragment
def units_section() -> None:
    """红黑榜, the unit table and its drill-down. The level, a row chosen and the drill boxes
    rerun only this part (st.fragment), not the cards and trends above it."""
    st.subheader(t("chart.red_black_list", language))
    level = st.radio(
        t("filter.level", language),
        LEVELS,
        horizontal=True,
        key=labelled("overview_level"),
        format_func=lambda code: t(f"level.{code}", language),
    )
    units = query(unit_table, filters, level=level)
    if units.empty:
        empty_state()
        return
    size = config.red_black_list_size
    red, black = shared(red_black_list, units, "composite", size, config.min_group_size)
    if red.empty:
        explain_no_list(units, level)
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
        figure = chart_figure(
            bar_ranking,
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
                return
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


if not period_is_empty:
    units_section()
