"""在线打分: an evaluator scores the units of a round, each score saved as it is typed."""

import math

import pandas as pd
import streamlit as st

from govdash.analytics.queries.evaluation import unit_figures
from govdash.core.access import EVALUATION
from govdash.core.rounds import STATUS_LABELS, SUBMITTED, Round, RoundError
from govdash.i18n import t
from govdash.web.auth import require
from govdash.web.cache import query, warehouse_version
from govdash.web.rounds import round_store
from govdash.web.ui import lang

language = lang()
principal = require(EVALUATION, language)
st.title(t("page.scoring", language))
if principal.role != "evaluator":
    st.info(t("scoring.not_evaluator", language))
    st.stop()
store = round_store()
rounds = store.my_rounds(principal)
if not rounds:
    st.info(t("scoring.no_rounds", language))
    st.stop()

MESSAGE_KEY = "scoring_message"


def _show_message() -> None:
    message = st.session_state.pop(MESSAGE_KEY, None)
    if isinstance(message, tuple):
        kind, text = message
        (st.error if kind == "error" else st.success)(text)


def _score_key(round_: Round, unit: str, indicator: str) -> str:
    return f"score_{round_.round_id}_{unit}_{indicator}"


def _save_score(round_: Round, unit: str, indicator: str, saved: float | None) -> None:
    """on_change of a score: save it at once, or put the saved value back and say why."""
    key = _score_key(round_, unit, indicator)
    value = st.session_state.get(key)
    try:
        store.save_score(principal, round_.round_id, unit, indicator, value)
    except (RoundError, PermissionError) as error:
        st.session_state[key] = saved
        st.session_state[MESSAGE_KEY] = ("error", str(error))
        return
    st.session_state[MESSAGE_KEY] = ("success", t("scoring.saved", language, indicator=indicator))


def _save_comment(round_: Round, unit: str) -> None:
    try:
        store.save_comment(
            principal,
            round_.round_id,
            unit,
            str(st.session_state.get(f"comment_{round_.round_id}_{unit}") or ""),
        )
    except (RoundError, PermissionError) as error:
        st.session_state[MESSAGE_KEY] = ("error", str(error))


def _submit(round_: Round, unit: str) -> None:
    try:
        store.submit(principal, round_.round_id, unit)
    except (RoundError, PermissionError) as error:
        st.session_state[MESSAGE_KEY] = ("error", str(error))
        return
    st.session_state[MESSAGE_KEY] = ("success", t("scoring.submitted", language, unit=unit))


round_ = st.selectbox(
    t("scoring.round", language),
    rounds,
    format_func=lambda r: r.label(),
    key="scoring_round",
)
units = store.my_units(principal, round_.round_id)
submitted = int((units["status"] == SUBMITTED).sum())
if round_.is_locked:
    st.info(t("scoring.locked", language, at=round_.locked_at or ""))
else:
    late = round_.is_past_deadline()
    (st.warning if late else st.caption)(
        t(
            "scoring.deadline_late" if late else "scoring.deadline",
            language,
            deadline=round_.deadline.isoformat(),
            submitted=submitted,
            n=len(units),
        )
    )
    for reminder in store.my_reminders(principal, round_.round_id)[:3]:
        st.warning(
            t(
                "scoring.reminder",
                language,
                by=reminder.reminded_by,
                at=reminder.reminded_at,
                message=reminder.message,
            ),
            icon=":material/notifications:",
        )
_show_message()
if units.empty:
    st.info(t("scoring.no_units", language))
    st.stop()

# Options are the bare unit names: a label that changed with the unit's status would make a
# new widget on every first score and send the evaluator back to the first unit.
with st.expander(t("scoring.units_status", language, submitted=submitted, n=len(units))):
    st.dataframe(
        pd.DataFrame(
            {
                t("scoring.unit", language): units["unit"],
                t("scoring.status", language): [
                    t(f"scoring.status_{status}", language) for status in units["status"]
                ],
            }
        ),
        hide_index=True,
        width="stretch",
        key="scoring_units",
    )
unit = st.selectbox(
    t("scoring.unit", language), units["unit"].tolist(), key=f"scoring_unit_{round_.round_id}"
)
form = store.my_form(principal, round_.round_id, unit)
st.caption(
    t(
        "scoring.form_caption",
        language,
        status=STATUS_LABELS[form.status]
        if language == "zh"
        else t("scoring.status_" + form.status, language),
        step=f"{round_.score_step:g}",
    )
)
decimals = max(0, -math.floor(math.log10(round_.score_step))) if round_.score_step < 1 else 0
left, right = st.columns([3, 2])
with left:
    for indicator in round_.indicators:
        key = _score_key(round_, unit, indicator.name)
        if key not in st.session_state:
            st.session_state[key] = form.scores[indicator.name]
        st.number_input(
            t("scoring.indicator", language, name=indicator.name, points=f"{indicator.points:g}"),
            min_value=0.0,
            max_value=float(indicator.points),
            step=float(round_.score_step),
            format=f"%.{decimals}f",
            key=key,
            help=f"{indicator.block} · {indicator.help}" if indicator.help else indicator.block,
            placeholder=t("scoring.not_scored", language),
            on_change=_save_score,
            args=(round_, unit, indicator.name, form.scores[indicator.name]),
            disabled=round_.is_locked,
        )
    comment_key = f"comment_{round_.round_id}_{unit}"
    if comment_key not in st.session_state:
        st.session_state[comment_key] = form.comment
    st.text_area(
        t("scoring.comment", language),
        key=comment_key,
        max_chars=2000,
        on_change=_save_comment,
        args=(round_, unit),
        disabled=round_.is_locked,
    )
    if not round_.is_locked:
        st.button(
            t("scoring.resubmit" if form.status == SUBMITTED else "scoring.submit", language),
            type="primary",
            key=f"scoring_submit_{round_.round_id}_{unit}",
            on_click=_submit,
            args=(round_, unit),
            disabled=not form.is_complete,
        )
        if not form.is_complete:
            st.caption(t("scoring.incomplete", language))

with right:
    st.markdown(f"**{t('scoring.figures', language, year=round_.year)}**")
    figures = (
        query(unit_figures, year=round_.year, level=round_.level, scope=principal.scope)
        if warehouse_version() is not None
        else None
    )
    row = figures[figures["unit"] == unit] if isinstance(figures, pd.DataFrame) else pd.DataFrame()
    if row.empty:
        st.caption(t("scoring.no_figures", language))
    else:
        values = row.iloc[0]

        def shown(value: float, percent: bool = True) -> str:
            if value is None or pd.isna(value):
                return "—"
            return f"{value:.1%}" if percent else f"{value:,.0f}"

        facts = pd.DataFrame(
            [
                (t("kpi.ticket_count", language), shown(values["tickets"], percent=False)),
                (t("kpi.on_time_response_rate", language), shown(values["response_on_time_rate"])),
                (
                    t("kpi.on_time_resolution_rate", language),
                    shown(values["resolution_on_time_rate"]),
                ),
                (t("kpi.contact_rate", language), shown(values["response_rate"])),
                (t("kpi.resolution_rate", language), shown(values["resolution_rate"])),
                (t("kpi.satisfaction_rate", language), shown(values["satisfaction_rate"])),
                (t("kpi.three_rate_composite", language), shown(values["three_rate_composite"])),
                (t("scoring.callbacks", language), shown(values["callback_n"], percent=False)),
                (
                    t("kpi.survey_satisfaction_rate", language),
                    shown(values["survey_satisfaction_rate"]),
                ),
                (t("scoring.survey_n", language), shown(values["survey_n"], percent=False)),
            ],
            columns=[t("scoring.figure", language), t("scoring.value", language)],
        )
        st.dataframe(facts, hide_index=True, width="stretch", key="scoring_figures")
        st.caption(t("scoring.figures_caption", language))
