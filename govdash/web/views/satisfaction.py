"""满意度: survey item rates with intervals, unit profiles, wave change, callbacks, comments."""

import pandas as pd
import streamlit as st

from govdash.analytics.charts.plots import (
    MAX_CHART_UNITS,
    bar_ranking,
    chart_ends,
    dumbbell,
    interval_dots,
    profile_vs_average,
    stacked_share,
)
from govdash.analytics.charts.style import ChartContext
from govdash.analytics.queries.surveys import (
    callback_satisfaction_trend,
    comment_words,
    satisfaction_rates,
    unit_profile,
)
from govdash.core.access import VIEW
from govdash.i18n import t
from govdash.web.auth import require, signed_in_fragment
from govdash.web.cache import active_config, query, together
from govdash.web.ui import (
    Download,
    chart_block,
    chart_figure,
    describe_filters,
    empty_state,
    labelled,
    lang,
    require_data,
    trend,
)

language = lang()
require(VIEW, language)
config = active_config()
filters = require_data()
st.title(t("page.satisfaction", language))
st.caption(f"{t('provenance.filters', language)}：{describe_filters(filters)}")
period = filters.label(language)
filters_text = describe_filters(filters)
st.caption(t("satisfaction.period_rule", language))


def context(n: int) -> ChartContext:
    return ChartContext(period, int(n), filters_text)


def ends_title(title: str, drawn: pd.DataFrame, total: int, key: str = "chart.ends_title") -> str:
    """The chart's title, saying so when it draws only the two ends of its order (chart_ends)."""
    if len(drawn) == total:
        return title
    return t(key, language, title=title, n=MAX_CHART_UNITS // 2, total=f"{total:,}")


def ends_note(drawn: pd.DataFrame, total: int) -> None:
    if len(drawn) < total:
        st.caption(t("chart.ends_note", language, n=MAX_CHART_UNITS // 2, total=f"{total:,}"))


SURVEYS = ("surveys", "register")  # the period's waves; households from the register
# The callback answers as the warehouse holds them → their names in the page language.
CALLBACK_LABELS = {
    "满意": "callback.satisfied",
    "基本满意": "callback.basically_satisfied",
    "不满意": "callback.dissatisfied",
}


@signed_in_fragment
def unit_profile_section(rates: pd.DataFrame, level: str) -> None:
    """One unit's items against the street average, of the units that answered the chosen
    item. Choosing another unit reruns only this part of the page (st.fragment)."""
    unit = st.selectbox(
        t(f"level.{level}", language),
        sorted(rates["unit"].astype(str).unique()),
        key=f"profile_unit_{level}",
    )
    st.subheader(t("chart.profile_vs_average", language, unit=unit))
    profile = query(unit_profile, filters, level=level, unit=unit)
    if profile.empty:
        empty_state()
    else:
        figure = chart_figure(
            profile_vs_average,
            profile,
            "item",
            "unit_rate",
            "street_average_rate",
            title=t("satisfaction.profile_title", language, unit=unit),
            context=context(profile["n"].max()),
            lang=language,
            unit_label=unit,
            value_title=t("axis.satisfaction_rate", language),
        )
        chart_block(
            figure,
            profile,
            "unit_profile",
            filters,
            download=Download(t("file.unit_profile", language, unit=unit), sources=SURVEYS),
        )


levels = ("compound", "community", "property_company")
level = st.radio(
    t("filter.level", language),
    levels,
    horizontal=True,
    key=labelled("satisfaction_level"),
    format_func=lambda code: t(f"level.{code}", language),
)
items = list(config.survey_items)
item = st.selectbox(
    t("axis.item", language), items, index=items.index(config.overall_item), key="satisfaction_item"
)
# The chosen item's rates and wave change (each set of waves read once) beside the period's
# comment words, which the page shows last: the first is DuckDB's work, the second mostly the
# word cutter's, so on a second core they overlap (`together`).
(rates, changes, waves), words = together(
    lambda: query(satisfaction_rates, filters, level=level, item=item),
    lambda: query(comment_words, filters),
)

st.subheader(t("chart.survey_item_rates", language))
chosen = rates.copy()
if not waves:
    st.info(t("satisfaction.no_wave", language, period=period))
elif chosen.empty:
    st.info(t("satisfaction.no_item", language, item=item))
else:
    chosen["label"] = chosen["unit"].astype(str)
    # A city's compounds cannot be drawn as 19,000 rows: the highest and lowest rates are,
    # the table below keeps every unit.
    drawn, total = chart_ends(chosen, chosen["rate"], ascending=False)
    figure = chart_figure(
        interval_dots,
        drawn,
        "label",
        "rate",
        "wilson_low",
        "wilson_high",
        n_col="respondents",
        min_sample=config.min_sample,
        title=ends_title(t("satisfaction.item_title", language, item=item), drawn, total),
        context=context(chosen["n"].sum()),
        lang=language,
        value_title=t("axis.satisfaction_rate", language),
        label_title=t(f"level.{level}", language),
    )
    chart_block(
        figure,
        chosen.drop(columns=["label"]),
        "survey_item_rates",
        filters,
        download=Download(
            t("file.survey_item_rates", language, item=item, level=t(f"level.{level}", language)),
            sources=SURVEYS,
        ),
    )
    ends_note(drawn, total)
    small = int(chosen["is_small_sample"].sum())
    if small:
        st.caption(t("satisfaction.small_note", language, n=small, minimum=config.min_sample))

    st.subheader(t("chart.response_rate", language))
    participation = chosen[["unit", "respondents", "households", "response_rate"]].dropna(
        subset=["response_rate"]
    )
    if participation.empty:
        st.info(t("satisfaction.no_households", language))
    else:
        drawn, total = chart_ends(participation, participation["response_rate"], ascending=False)
        figure = chart_figure(
            bar_ranking,
            drawn,
            "unit",
            "response_rate",
            title=ends_title(t("chart.response_rate", language), drawn, total),
            context=context(participation["respondents"].sum()),
            lang=language,
            value_title=t("axis.response_rate", language),
            label_title=t(f"level.{level}", language),
            percent=True,
            decimals=1,
        )
        chart_block(
            figure,
            participation,
            "survey_response_rate",
            filters,
            download=Download(
                t("file.survey_response_rate", language, level=t(f"level.{level}", language)),
                sources=SURVEYS,
            ),
        )
        ends_note(drawn, total)

    unit_profile_section(rates, level)

st.subheader(t("chart.wave_change", language))
if not waves:
    st.info(t("satisfaction.no_wave", language, period=period))
else:
    chosen = changes.dropna(subset=["previous_rate", "current_rate"])
    if not changes.empty and changes["previous_wave"].isna().all():
        st.info(t("satisfaction.no_previous_wave", language, wave=changes["current_wave"].iloc[0]))
    elif chosen.empty:
        st.info(t("satisfaction.no_item", language, item=item))
    else:
        first = chosen.iloc[0]
        drawn, total = chart_ends(
            chosen, chosen["current_rate"] - chosen["previous_rate"], ascending=False
        )
        figure = chart_figure(
            dumbbell,
            drawn,
            "unit",
            "previous_rate",
            "current_rate",
            title=ends_title(
                t("satisfaction.wave_title", language, item=item),
                drawn,
                total,
                "chart.ends_change_title",
            ),
            context=context(chosen["current_n"].sum()),
            lang=language,
            before_label=str(first["previous_wave"]),
            after_label=str(first["current_wave"]),
            value_title=t("axis.satisfaction_rate", language),
        )
        chart_block(
            figure,
            chosen,
            "wave_change",
            filters,
            download=Download(
                t("file.wave_change", language, item=item, level=t(f"level.{level}", language)),
                sources=(*SURVEYS, "previous_wave"),
            ),
        )
        ends_note(drawn, total)

left, right = st.columns(2)
with left:
    st.subheader(t("chart.callback_satisfaction", language))
    months = trend(filters)
    callbacks = query(callback_satisfaction_trend, months.window)
    if callbacks.empty or callbacks["tickets"].sum() == 0:
        st.info(t("satisfaction.no_callbacks", language, window=months.window.span_label()))
    else:
        wide = callbacks.pivot_table(
            index="month", columns="satisfaction", values="tickets", aggfunc="sum", fill_value=0
        ).reset_index()
        parts = {name: name for name in ("满意", "基本满意", "不满意") if name in wide.columns}
        figure = chart_figure(
            stacked_share,
            wide,
            "month",
            parts,
            title=t("chart.callback_satisfaction", language),
            context=months.context(callbacks["tickets"].sum()),
            lang=language,
            x_title=t("axis.month", language),
            highlight=months.highlight,
        )
        chart_block(
            figure,
            wide,
            "callback_satisfaction",
            months.window,
            columns={name: t(CALLBACK_LABELS[name], language) for name in parts},
            download=months.download(t("file.callback_satisfaction", language)),
        )
with right:
    st.subheader(t("chart.comment_words", language))
    if words.empty:
        st.info(t("satisfaction.no_comments", language))
    else:
        figure = chart_figure(
            bar_ranking,
            words.head(20),
            "word",
            "count",
            title=t("chart.comment_words", language),
            context=context(int(words["comments"].max())),
            lang=language,
            value_title=t("axis.word_count", language),
            label_title=t("axis.word", language),
        )
        chart_block(
            figure,
            pd.DataFrame(words),
            "comment_words",
            filters,
            download=Download(t("file.comment_words", language), sources=("surveys",)),
        )
