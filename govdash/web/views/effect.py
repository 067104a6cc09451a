"""治理成效: did compounds do better after signing? Before/after (robust estimate, event study,
diagnostics, the plain TWFE figure as a labelled comparison), with/without."""

import calendar
import math
from dataclasses import replace
from datetime import date

import pandas as pd
import streamlit as st

from govdash.analytics.charts.style import ChartContext
from govdash.analytics.metrics.rates import without_negative_zero, without_negative_zeros
from govdash.analytics.queries.filters import Filters
from govdash.analytics.reports.export import localised_table
from govdash.core.access import VIEW
from govdash.i18n import t
from govdash.web.auth import require
from govdash.web.cache import active_config, query, together
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
)

language = lang()
require(VIEW, language)
config = active_config()
filters = require_data()
st.title(t("page.governance_effect", language))
st.caption(f"{t('provenance.filters', language)}：{describe_filters(filters)}")
st.markdown(t("effect.intro", language))
controls = st.container()
# Shown at once, before the estimators are imported (pyfixest: seconds on a server's first
# visit) and the report is computed; st.spinner would wait 0.5 s before showing anything.
waiting = st.empty()
waiting.status(t("effect.computing", language), state="running")

from govdash.analytics.charts.plots import difference_dots, event_study  # noqa: E402
from govdash.analytics.metrics.effect import (  # noqa: E402
    EFFECT_METRICS,
    ESTIMATED,
    METRICS_BY_NAME,
    NO_DATA,
    localise_strata,
)
from govdash.analytics.queries import effect as effect_queries  # noqa: E402
from govdash.analytics.queries.effect import (  # noqa: E402
    TREATMENTS,
    EffectReport,
    before_after_report,
    every_month,
    joined,
    with_without,
)
from govdash.etl.fields import FIELDS, KIND_LABELS, REGISTER  # noqa: E402

# The overview's names for the same figures.
METRIC_LABELS = {
    "response_median_minutes": "kpi.response_p50",
    "response_p90_minutes": "kpi.response_p90",
    "response_on_time_rate": "kpi.on_time_response_rate",
    "resolution_on_time_rate": "kpi.on_time_resolution_rate",
    "response_rate": "kpi.contact_rate",
    "resolution_rate": "kpi.resolution_rate",
    "satisfaction_rate": "kpi.satisfaction_rate",
    "survey_satisfaction_rate": "kpi.survey_satisfaction_rate",
}
DEFAULT_METRIC = "satisfaction_rate"


def metric_row(table: pd.DataFrame, metric: str) -> pd.Series:
    """The summary row of one metric (the tables hold one row per metric)."""
    row = table.set_index("metric").loc[metric]
    assert isinstance(row, pd.Series)
    return row


def metric_label(name: str, in_sentence: bool = False) -> str:
    label = t(METRIC_LABELS[name], language)
    # English: a metric named inside a sentence is not capitalised ("median first response").
    return label[0].lower() + label[1:] if in_sentence and language == "en" else label


def unit_label(name: str) -> str:
    scale = METRICS_BY_NAME[name].scale
    return t("unit.minutes" if scale == 1 else "unit.percentage_points", language)


def number(value: float) -> str:
    return "—" if math.isnan(value) else f"{without_negative_zero(value, 1):,.1f}"


left, right = controls.columns(2)
treatment = left.radio(
    t("effect.treatment", language),
    tuple(TREATMENTS),
    horizontal=True,
    key=labelled("effect_treatment"),
    format_func=lambda code: t(f"effect.treatment.{code}", language),
)
names = [metric.name for metric in EFFECT_METRICS]
metric = right.selectbox(
    t("effect.metric", language),
    names,
    index=names.index(DEFAULT_METRIC),
    key=labelled("effect_metric"),
    format_func=metric_label,
)
# The report fits the chosen metric's before/after figures and event path (one build of the
# panels; at a city's size each metric's fits cost half a second or more), and every metric's
# for the summary table where the panel is small enough for that to be cheap; elsewhere every
# metric's when the summary is asked for (all_metrics_block). The before/after half reads
# every month whatever the period: it is kept once for every period (every_month).
# The two halves are independent: computed side by side (`together`), mostly outside Python's
# lock, they overlap on a second core.
halves = together(
    lambda: query(with_without, filters, treatment=treatment),
    lambda: query(
        before_after_report,
        every_month(filters),
        treatment=treatment,
        path_for=(metric,),
        before_after_for=(metric,),
        every_metric_up_to=effect_queries.ALL_METRICS_AT_ONCE_ROWS,
    ),
)
report: EffectReport = joined(*halves)
waiting.empty()
side = t(f"effect.side.{treatment}", language)
event_short = t(f"effect.event_short.{treatment}", language)
flag_column, date_column = TREATMENTS[treatment]
fields = {field.name: field for field in FIELDS[REGISTER]}
register_sheet = KIND_LABELS[REGISTER]


def missing_text(key: str, column: str) -> str:
    field = fields[column]
    return t(
        key,
        language,
        column=field.label,
        aliases="、".join(field.aliases) if language == "zh" else ", ".join(field.aliases),
        compounds=f"{report.register_compounds:,}",
        side=side,
        sheet=register_sheet,
    )


def panel_download_filters() -> Filters | None:
    """The page's selections over the months before/after compares (all the data's months,
    not the period filter): the rows behind its figures."""
    if not report.panel_first or not report.panel_last:
        return None
    last: date = report.panel_last
    end = date(last.year, last.month, calendar.monthrange(last.year, last.month)[1])
    return replace(filters, start=report.panel_first, end=end, period_kind="range")


def panel_period() -> str | None:
    if not report.panel_first or not report.panel_last:
        return None
    return f"{report.panel_first:%Y-%m}–{report.panel_last:%Y-%m}"


def status_text(row: pd.Series) -> str:
    key = "effect.no_data" if row["status"] == NO_DATA else "effect.too_small"
    return t(
        key,
        language,
        side=side,
        treated=int(row["n_treated"]),
        control=int(row["n_control"]),
        minimum=report.min_compounds,
    )


def significance(row: pd.Series) -> str:
    excludes_zero = row["low"] > 0 or row["high"] < 0
    return t("effect.significant" if excludes_zero else "effect.not_significant", language)


def effect_columns(frame: pd.DataFrame) -> dict[str, str]:
    return {c: t(f"effect.column.{c}", language) for c in frame.columns}


def summary_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The summary in the page language: labelled metrics, units and results."""
    shown = frame.copy()
    shown.insert(1, "unit", [unit_label(name) for name in shown["metric"]])
    shown["metric"] = [metric_label(name) for name in shown["metric"]]
    shown["status"] = [t(f"effect.status.{status}", language) for status in shown["status"]]
    return localised_table(shown, language, effect_columns(shown))


def summary_block(title_key: str, frame: pd.DataFrame, name: str, download: Download) -> None:
    """Every metric's result in one table, with its downloads."""
    st.markdown(f"**{t(title_key, language)}**")
    shown = summary_table(without_negative_zeros(frame))
    show_table(shown, key=name)
    download_buttons(name, shown, filters, download=download)


def metric_sources(name: str) -> tuple[str, ...]:
    """The rows one metric is computed from: its tickets or survey answers, and the register
    (who signed, and when)."""
    rows = "surveys" if METRICS_BY_NAME[name].source == "survey" else "tickets"
    return (rows, "register")


ALL_SOURCES = ("tickets", "surveys", "register")


def diagnostics_block(name: str) -> None:
    """Signing cohorts, compounds left out, thin comparison months: what a careful reader
    checks beside the robust figure."""
    found = report.diagnostics.get(name)
    if found is None or found.cohorts.empty:
        return
    used = found.cohorts[found.cohorts["n_used"] > 0]
    share = found.left_out_share
    st.caption(
        t(
            "effect.cohorts",
            language,
            cohorts=len(used),
            smallest=int(used["n_used"].min()) if len(used) else 0,
            largest=int(used["n_used"].max()) if len(used) else 0,
            left_out=found.left_out,
            signed=found.signed,
            share=f"{share:.0%}" if not math.isnan(share) else "—",
            side=side,
            event_short=event_short,
        )
    )
    if found.small_cohorts:
        st.warning(
            t(
                "effect.small_cohorts",
                language,
                count=found.small_cohorts,
                cohorts=len(used),
                event_short=event_short,
            )
        )
    thin = found.thin_months(report.min_compounds)
    if thin:
        st.warning(
            t(
                "effect.thin_controls",
                language,
                months=thin,
                minimum=report.min_compounds,
                side=side,
                event_short=event_short,
            )
        )
    with st.expander(t("effect.cohort_table", language, event_short=event_short)):
        table = found.cohorts.assign(
            cohort=[f"{month // 12}-{month % 12 + 1:02d}" for month in found.cohorts["cohort"]]
        )
        show_table(
            localised_table(table, language, effect_columns(table)),
            key=f"effect_cohorts_{name}",
        )


def all_metrics_block() -> None:
    """Every metric's before/after figure in one table: from the page's report where its
    panel was small enough to fit them all at once (ALL_METRICS_AT_ONCE_ROWS), else fitted
    when asked for (eight fits on a city's whole panel, which the figures above do not need)."""
    at_once = len(report.before_after) == len(EFFECT_METRICS)
    if not st.toggle(t("effect.all_metrics", language), value=at_once, key="effect_all_metrics"):
        st.caption(t("effect.all_metrics_note", language))
        return
    every = report.before_after
    if not at_once:
        with st.spinner(t("effect.computing_all", language)):
            every = query(before_after_report, every_month(filters), treatment=treatment)
            every = every.before_after
    summary_block(
        "effect.summary_before_after",
        every,
        "effect_before_after",
        Download(
            t("file.effect_before_after", language, event_short=event_short),
            sources=ALL_SOURCES,
            filters=panel_download_filters(),
            period=panel_period(),
        ),
    )


st.info(t("effect.caveat", language))
if report.register_flags == 0 and report.register_dates == 0:
    st.warning(missing_text("effect.missing_flags", flag_column))
    st.warning(missing_text("effect.missing_dates", date_column))
    st.stop()

# --- before and after ----------------------------------------------------------------------------
st.subheader(t("effect.before_after", language))
if report.register_dates == 0:
    st.warning(missing_text("effect.missing_dates", date_column))
else:
    row = metric_row(report.before_after, metric)
    if row["status"] != ESTIMATED:
        st.info(status_text(row))
    else:
        key = "effect.increase" if row["estimate"] >= 0 else "effect.decrease"
        sentence = t(
            key,
            language,
            event=t(f"effect.event.{treatment}", language),
            metric=metric_label(metric, in_sentence=True),
            amount=number(abs(row["estimate"])),
            unit=unit_label(metric),
            low=number(row["low"]),
            high=number(row["high"]),
            treated=int(row["n_treated"]),
            side=side,
            control=int(row["n_control"]),
            observations=f"{int(row['n_observations']):,}",
        )
        st.markdown(f"**{sentence}** {significance(row)}")
        if not math.isnan(row["twfe_estimate"]):
            st.caption(
                t(
                    "effect.twfe_comparison",
                    language,
                    event_short=event_short,
                    estimate=number(row["twfe_estimate"]),
                    unit=unit_label(metric),
                    low=number(row["twfe_low"]),
                    high=number(row["twfe_high"]),
                )
            )
        study = report.paths[metric]
        events = study.table
        is_survey = METRICS_BY_NAME[metric].source == "survey"
        span = (
            f"{report.panel_first:%Y-%m} – {report.panel_last:%Y-%m}"
            if report.panel_first and report.panel_last
            else ""
        )
        figure = chart_figure(
            event_study,
            events,
            title=t(
                "effect.event_title", language, metric=metric_label(metric), event_short=event_short
            ),
            context=ChartContext(
                span, int(row["n_treated"] + row["n_control"]), describe_filters(filters)
            ),
            lang=language,
            x_title=t(
                "effect.axis.relative_half_year" if is_survey else "effect.axis.relative_month",
                language,
                event_short=event_short,
            ),
            y_title=t("effect.axis.difference", language, unit=unit_label(metric)),
            signing_label=t(f"effect.signing.{treatment}", language),
        )
        chart_block(
            figure,
            events,
            f"effect_event_{metric}",
            filters,
            columns=effect_columns(events),
            download=Download(
                t(
                    "file.effect_event",
                    language,
                    metric=metric_label(metric),
                    event_short=event_short,
                ),
                sources=metric_sources(metric),
                filters=panel_download_filters(),
                period=panel_period(),
            ),
        )
        if study is not None and study.pre_periods:
            trend_key = (
                "effect.pre_trend_ok" if study.pre_trend_p >= 0.05 else "effect.pre_trend_warning"
            )
            trend = t(trend_key, language, periods=study.pre_periods, p=f"{study.pre_trend_p:.2f}")
            if study.pre_trend_p >= 0.05:
                st.caption(trend)
            else:
                st.warning(trend)
        diagnostics_block(metric)
    st.caption(
        t(
            "effect.window_note",
            language,
            first=f"{report.panel_first:%Y-%m}" if report.panel_first else "—",
            last=f"{report.panel_last:%Y-%m}" if report.panel_last else "—",
            side=side,
            event_short=event_short,
            window=report.window_months,
        )
    )
    all_metrics_block()
    with st.expander(t("effect.method_title", language)):
        st.markdown(t("effect.method_note", language, window=report.window_months))

# --- with versus without -------------------------------------------------------------------------
st.subheader(t("effect.cross_section", language))
row = metric_row(report.cross_section, metric)
if row["status"] != ESTIMATED:
    st.info(status_text(row))
else:
    key = "effect.cross_higher" if row["estimate"] >= 0 else "effect.cross_lower"
    sentence = t(
        key,
        language,
        period=filters.label(language),
        side=side,
        metric=metric_label(metric, in_sentence=True),
        amount=number(abs(row["estimate"])),
        unit=unit_label(metric),
        low=number(row["low"]),
        high=number(row["high"]),
        treated=int(row["n_treated"]),
        control=int(row["n_control"]),
    )
    st.markdown(f"**{sentence}** {significance(row)}")
    strata = localise_strata(report.strata.get(metric, pd.DataFrame()), language)
    used = strata[strata["is_used"]] if not strata.empty else strata
    figure = chart_figure(
        difference_dots,
        used,
        "stratum",
        "difference",
        "low",
        "high",
        title=t("effect.cross_title", language, metric=metric_label(metric), side=side),
        context=ChartContext(
            filters.label(language),
            int(row["n_treated"] + row["n_control"]),
            describe_filters(filters),
        ),
        lang=language,
        value_title=t("effect.axis.difference", language, unit=unit_label(metric)),
        label_title=t("effect.column.stratum", language),
        combined=(t("effect.combined", language), row["estimate"], row["low"], row["high"]),
    )
    chart_block(
        figure,
        strata,
        f"effect_strata_{metric}",
        filters,
        columns=effect_columns(strata),
        download=Download(
            t("file.effect_strata", language, metric=metric_label(metric), side=side),
            sources=metric_sources(metric),
        ),
    )
st.caption(
    t(
        "effect.cross_note",
        language,
        period=filters.label(language),
        side=side,
        event_short=event_short,
        during=report.cross_excluded_during,
    )
)
summary_block(
    "effect.summary_cross_section",
    report.cross_section,
    "effect_cross_section",
    Download(t("file.effect_cross_section", language, side=side), sources=ALL_SOURCES),
)
