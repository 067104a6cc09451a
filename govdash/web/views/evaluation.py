"""年度考评: the year's ranking, where each score came from, its robustness, and what-if weights."""

import hashlib
import pickle
from dataclasses import replace
from datetime import date

import pandas as pd
import streamlit as st

from govdash.analytics.charts.plots import bar_ranking, rank_bands
from govdash.analytics.charts.style import ChartContext
from govdash.analytics.metrics.evaluation import (
    default_weights,
    normalised_weights,
    rank_changes,
    red_black,
    rescore,
    robustness,
    rules_text,
)
from govdash.analytics.queries.evaluation import (
    available_years,
    evaluation_page,
    source_label,
)
from govdash.analytics.queries.filters import Filters
from govdash.analytics.queries.loads import batches_used
from govdash.analytics.reports.evaluation_report import (
    PDF_MIME,
    XLSX_MIME,
    report_file_name,
    report_pdf,
    report_workbook,
)
from govdash.analytics.reports.export import localised_table
from govdash.analytics.reports.pdf import pdf_export_available
from govdash.core.access import EVALUATION
from govdash.i18n import t
from govdash.web.auth import require
from govdash.web.cache import active_config, deferred, query, warehouse_version
from govdash.web.keys import EVALUATION_LEVEL_KEY, EVALUATION_YEAR_KEY
from govdash.web.rounds import round_store
from govdash.web.ui import (
    Download,
    chart_block,
    chart_figure,
    describe_filters,
    download_buttons,
    labelled,
    lang,
    provenance_later,
    recorded,
    show_table,
)

# Where a robustness computed on request is kept for the session: (what it is of, the result).
ROBUSTNESS_STATE = "evaluation_robustness"

language = lang()
principal = require(EVALUATION, language)
scope = principal.scope
config = active_config()
st.title(t("page.evaluation", language))
if warehouse_version() is None:
    st.info(t("state.no_warehouse", language))
    st.stop()

levels = ("compound", "community", "property_company")
left, right = st.columns(2)
level = right.radio(
    t("evaluation.level", language),
    levels,
    horizontal=True,
    key=labelled(EVALUATION_LEVEL_KEY),
    format_func=lambda code: t(f"level.{code}", language),
)
# Locked online rounds join the workbook scores; passing them in keys the cache on them, so a
# lock or a reopen shows at once.
online = round_store().final_scores(level=level)
years = query(available_years, level=level, online=online)
if not years:
    st.info(t("evaluation.no_scores", language))
    st.stop()
year = left.selectbox(t("evaluation.year", language), years, key=EVALUATION_YEAR_KEY)
filters = Filters.for_year(int(year)).within(scope)
# One cached call: the ranking, last year's beside it, methods and robustness (the page keeps
# only what it shows; a unit's sentences are built when it is chosen).
with st.spinner(t("evaluation.computing", language)):
    page = query(
        evaluation_page,
        year=int(year),
        level=level,
        scope=scope,
        online=online,
        with_previous=year - 1 in years,
    )
result, previous = page.result, page.previous
if result.table.empty:
    st.info(t("state.empty", language))
    st.stop()
table = result.table
level_name = t(f"level.{level}", language)
context = ChartContext(filters.label(language), len(table), "")
# The rows behind the figures: the year's scores at this level and the tickets, surveys and
# register its metric indicators come from; with last year's result beside it, that year too.
EVALUATION_SOURCES = ("evaluation", "tickets", "surveys", "register")
this_year = Download(sources=EVALUATION_SOURCES, level=level)
both_years = Download(
    sources=EVALUATION_SOURCES,
    level=level,
    filters=Filters.for_range(date(int(year) - 1, 1, 1), date(int(year), 12, 31)).within(scope)
    if previous is not None
    else None,
)

# --- the ranking -------------------------------------------------------------------------------
st.subheader(t("evaluation.ranking", language))
st.caption(
    t(
        "evaluation.ranking_caption",
        language,
        year=year,
        level=level_name,
        n=len(table),
        eligible=int(table["is_eligible"].sum()),
        fingerprint=config.fingerprint,
    )
)
ranking = table[["rank", "unit", "total", "grade", "award", "is_eligible", "ineligible_reason"]]
if page.change is not None:
    change = page.change[["unit", "rank_change", "total_change"]]
    ranking = ranking.merge(change, on="unit", how="left")
columns = {
    c: t(f"column.{c}", language)
    for c in ("rank", "unit", "total", "grade", "award", "rank_change", "total_change")
}
columns |= {
    "is_eligible": t("column.eligible", language),
    "ineligible_reason": t("column.reason", language),
}
figure = chart_figure(
    bar_ranking,
    table.head(30),
    "unit",
    "total",
    title=t("evaluation.ranking_chart", language),
    context=context,
    lang=language,
    value_title=t("column.total", language),
    label_title=level_name,
    decimals=2,
)
chart_block(
    figure,
    ranking,
    f"evaluation_{year}_{level}",
    filters,
    columns=columns,
    download=replace(both_years, title=t("file.evaluation_ranking", language, level=level_name)),
)

# --- where each score came from ------------------------------------------------------------------
st.subheader(t("evaluation.breakdown", language))
unit = st.selectbox(
    t("evaluation.choose_unit", language), table["unit"].tolist(), key=f"evaluation_unit_{level}"
)
breakdown = result.unit_breakdown(unit)
show_table(
    localised_table(
        breakdown[["block", "indicator", "points", "points_max", "explanation"]], language
    ),
    key="evaluation_breakdown",
)
detail = result.unit_evaluator_detail(unit)
st.caption(t("evaluation.evaluators", language))
show_table(
    localised_table(
        detail[["indicator", "points_max", "method", "aggregate", "scores_text", "is_disputed"]],
        language,
    ),
    key="evaluation_evaluators",
)
# Workbook and online scores are one set; each evaluator's source is shown.
if "source" in result.inputs.scores.columns:
    own = page.sources[page.sources["unit"] == unit]
    if not own.empty:
        st.caption(t("evaluation.sources", language))
        counted = own[["evaluator", "source", "indicators"]].reset_index(drop=True)
        counted["source"] = [source_label(s, language) for s in counted["source"]]
        show_table(
            localised_table(
                counted,
                language,
                labels={
                    "source": t("evaluation.col_source", language),
                    "indicators": t("evaluation.col_indicators", language),
                },
            ),
            key="evaluation_sources",
        )
    notes = [
        note for note in result.warnings if note.startswith("评分来源") or "以在线评分为准" in note
    ]
    for note in notes:
        st.caption(note)

# --- three methods and robustness ------------------------------------------------------------
st.subheader(t("evaluation.methods", language))
methods = page.methods
correlations = methods.correlations.assign(
    method_a=[t(f"method.{m}", language) for m in methods.correlations["method_a"]],
    method_b=[t(f"method.{m}", language) for m in methods.correlations["method_b"]],
)
show_table(localised_table(correlations, language), key="evaluation_correlations", width="content")
with st.expander(t("label.numbers", language)):
    show_table(localised_table(methods.ranks, language), key="evaluation_method_ranks")

st.subheader(
    t(
        "evaluation.robustness",
        language,
        draws=config.robustness_draws,
        spread=round(config.robustness_spread * 100),
    )
)
# A city's robustness (every unit re-ranked in every draw) is computed when asked, from the
# result the page holds, and kept for this session's later runs of the same ranking.
robust = page.robust
if robust is None:
    asked = (
        str(warehouse_version()),
        config.fingerprint,
        scope.to_text(),  # (another account signed in to this session sees its own)
        int(year),
        level,
        hashlib.blake2b(pickle.dumps(online), digest_size=16).hexdigest(),
    )
    held = st.session_state.get(ROBUSTNESS_STATE)
    if held is not None and held[0] == asked:
        robust = held[1]
    elif st.button(t("evaluation.robust_run", language), key="evaluation_robust_run"):
        with st.spinner(t("evaluation.robust_computing", language)):
            robust = robustness(result, config)
        st.session_state[ROBUSTNESS_STATE] = (asked, robust)
    else:
        st.caption(
            t(
                "evaluation.robust_deferred",
                language,
                n=len(table),
                level=level_name,
                draws=config.robustness_draws,
            )
        )
if robust is not None:
    bands = robust.table
    flagged = int(bands["crosses_tier"].sum())
    st.caption(t("evaluation.robust_note", language, n=flagged))
    figure = chart_figure(
        rank_bands,
        bands.sort_values("rank").head(40),
        "unit",
        "median_rank",
        "rank_p05",
        "rank_p95",
        title=t(
            "evaluation.robustness",
            language,
            draws=config.robustness_draws,
            spread=round(config.robustness_spread * 100),
        ),
        context=context,
        lang=language,
        flag_col="crosses_tier",
    )
    chart_block(
        figure,
        bands,
        f"robustness_{year}_{level}",
        filters,
        download=replace(this_year, title=t("file.robustness", language, level=level_name)),
    )

# --- what-if weights --------------------------------------------------------------------------
st.subheader(t("evaluation.whatif", language))
defaults = default_weights(config)
chosen: dict[str, float] = {}
slider_columns = st.columns(4)
for index, (name, points) in enumerate(defaults.items()):
    chosen[name] = slider_columns[index % 4].slider(
        name, 0.0, 40.0, float(points), 0.5, key=f"weight_{name}"
    )
if sum(chosen.values()) > 0 and chosen != defaults:
    whatif = rescore(result, normalised_weights(chosen, config))
    moved = rank_changes(result, whatif)
    moved = moved[moved["moved_by"] != 0]
    st.caption(t("evaluation.whatif_moved", language))
    if moved.empty:
        st.info(t("evaluation.whatif_none", language))
    else:
        show_table(localised_table(moved, language), key="evaluation_moved")

# --- 红黑榜 and the rules ------------------------------------------------------------------------
st.subheader(t("evaluation.red_black", language))
red, black = red_black(result, config.red_black_list_size)
listed = pd.concat(
    [
        red.assign(list=t("label.red_list", language)),
        black.assign(list=t("label.black_list", language)),
    ]
)
if listed.empty:
    st.info(t("state.empty", language))
else:
    shown = localised_table(
        listed[["list", "list_rank", "unit", "total", "grade"]],
        language,
        {"unit": level_name},
    )
    show_table(shown, key="evaluation_red_black")
    download_buttons(
        f"red_black_{year}_{level}",
        shown,
        filters,
        download=replace(
            this_year, title=t("file.evaluation_red_black", language, level=level_name)
        ),
    )
with st.expander(t("evaluation.rules", language)):
    for line in rules_text(config):
        st.markdown(f"- {line}")

# --- the report to take away ---------------------------------------------------------------------
st.subheader(t("evaluation.report", language))
st.caption(t("evaluation.report_caption", language))
# The batches behind the report are looked up when a report is made, not on every page run.
report_source = provenance_later(filters, both_years)
report_batches = deferred(
    batches_used, both_years.filters or filters, both_years.sources, both_years.level
)
report_filters = describe_filters(filters)
xlsx_column, pdf_column = st.columns(2)
xlsx_column.download_button(
    t("evaluation.report_xlsx", language),
    data=recorded(
        lambda: report_workbook(
            result, config, report_source(), language, previous, batches=report_batches()
        ),
        f"evaluation_report_{year}_{level}",
        "xlsx",
        report_filters,
        len(result.table),
    ),
    file_name=report_file_name(result, "xlsx", language),
    mime=XLSX_MIME,
    on_click="ignore",
    key="evaluation_report_xlsx",
)
if pdf_export_available():
    pdf_column.download_button(
        t("evaluation.report_pdf", language),
        data=recorded(
            lambda: report_pdf(
                result, config, report_source(), language, previous, batches=report_batches()
            ),
            f"evaluation_report_{year}_{level}",
            "pdf",
            report_filters,
            len(result.table),
        ),
        file_name=report_file_name(result, "pdf", language),
        mime=PDF_MIME,
        on_click="ignore",
        key="evaluation_report_pdf",
    )
else:
    pdf_column.caption(t("evaluation.report_pdf_unavailable", language))
