"""评分轮次: an admin opens a scoring round, assigns evaluators and recusals, follows progress,
reminds, locks (the scores then join the annual evaluation) or reopens, and exports it."""

from datetime import date, datetime, timedelta

import pandas as pd
import streamlit as st

from govdash.analytics.queries.evaluation import evaluation_units
from govdash.analytics.queries.loads import data_period
from govdash.analytics.reports.round_export import round_csv, round_workbook
from govdash.core.access import ADMIN
from govdash.core.rounds import RoundError, RoundIndicator, evaluator_scope
from govdash.i18n import t
from govdash.web.auth import account_store, oidc_configured, require
from govdash.web.cache import active_config, query, warehouse_version
from govdash.web.rounds import evaluator_accounts, pseudonym, round_store
from govdash.web.ui import labelled, lang, recorded

XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
LEVELS = ("compound", "community", "property_company")
MESSAGE_KEY = "rounds_message"

language = lang()
principal = require(ADMIN, language)
config = active_config()
store = round_store()
st.title(t("page.rounds", language))
st.caption(t("rounds.intro", language))


def _done(text: str) -> None:
    st.session_state[MESSAGE_KEY] = ("success", text)


def _failed(error: Exception) -> None:
    st.session_state[MESSAGE_KEY] = ("error", str(error))


message = st.session_state.pop(MESSAGE_KEY, None)
if isinstance(message, tuple):
    (st.error if message[0] == "error" else st.success)(message[1])

# --- open a round ------------------------------------------------------------------------------
indicators = [
    RoundIndicator(i.name, i.block, i.points, i.help)
    for i in config.indicators
    if i.source == "evaluator"
]
rounds = store.rounds(principal)
with st.expander(t("rounds.open_heading", language), expanded=not rounds):
    if warehouse_version() is None:
        st.info(t("state.no_warehouse", language))
    else:
        _, last = query(data_period)
        left, middle, right = st.columns(3)
        year = left.number_input(
            t("evaluation.year", language),
            min_value=2000,
            max_value=2100,
            value=(last or date.today()).year,
            step=1,
            key="rounds_open_year",
        )
        level = middle.radio(
            t("evaluation.level", language),
            LEVELS,
            key=labelled("rounds_open_level"),
            format_func=lambda code: t(f"level.{code}", language),
        )
        deadline = right.date_input(
            t("rounds.deadline", language),
            value=date.today() + timedelta(days=14),
            key="rounds_open_deadline",
        )
        title = st.text_input(t("rounds.title", language), key="rounds_open_title", max_chars=100)
        st.dataframe(
            pd.DataFrame(
                [(i.block, i.name, i.points, i.help) for i in indicators],
                columns=[
                    t(f"rounds.indicator_{c}", language)
                    for c in ("block", "name", "points", "help")
                ],
            ),
            hide_index=True,
            width="stretch",
            key="rounds_open_indicators",
        )
        st.caption(
            t(
                "rounds.open_caption",
                language,
                step=f"{config.round_score_step:g}",
                scope=principal.scope.label(language),
            )
        )
        if st.button(t("rounds.open_button", language), type="primary", key="rounds_open_button"):
            units = query(evaluation_units, year=int(year), level=level, scope=principal.scope)
            try:
                opened = store.open_round(
                    principal,
                    int(year),
                    level,
                    indicators,
                    units,
                    deadline if isinstance(deadline, date) else date.today(),
                    config.round_score_step,
                    title,
                )
            except (RoundError, PermissionError) as error:
                _failed(error)
            else:
                st.session_state["rounds_round"] = opened.round_id
                _done(t("rounds.opened", language, label=opened.label(), units=len(units)))
            st.rerun()

if not rounds:
    st.info(t("rounds.none", language))
    st.stop()

# --- the chosen round --------------------------------------------------------------------------
ids = [r.round_id for r in rounds]
if st.session_state.get("rounds_round") not in ids:
    st.session_state["rounds_round"] = ids[0]
chosen_id = st.selectbox(
    t("rounds.choose", language),
    ids,
    format_func=lambda i: next(r.label() for r in rounds if r.round_id == i),
    key="rounds_round",
)
round_ = next(r for r in rounds if r.round_id == chosen_id)
level_name = t(f"level.{round_.level}", language)
if round_.is_locked:
    st.success(
        t(
            "rounds.locked_state",
            language,
            year=round_.year,
            level=level_name,
            by=round_.locked_by or "",
            at=round_.locked_at or "",
        )
    )
else:
    st.info(
        t(
            "rounds.open_state",
            language,
            year=round_.year,
            level=level_name,
            deadline=round_.deadline.isoformat(),
            late=t("rounds.past_deadline", language) if round_.is_past_deadline() else "",
        )
    )
scopes = evaluator_accounts()
units = store.units(principal, round_.round_id)

# --- evaluators and recusals ----------------------------------------------------------------------
st.subheader(t("rounds.evaluators", language))
assigned = store.assignments(principal, round_.round_id, scopes)
if assigned.empty:
    st.caption(t("rounds.no_evaluators", language))
else:
    shown = assigned.drop(columns="recused_units").rename(
        columns={c: t(f"rounds.col_{c}", language) for c in assigned.columns}
    )
    st.dataframe(shown, hide_index=True, width="stretch", key="rounds_assignments")
if not round_.is_locked:
    communities = sorted({c for cs in units["communities"] for c in cs})
    candidates = [name for name in scopes if name not in set(assigned["evaluator"])]
    add_left, add_middle, add_right = st.columns([2, 2, 1])
    with add_left:
        if oidc_configured():
            typed = st.text_input(t("rounds.oidc_identity", language), key="rounds_assign_identity")
        else:
            typed = ""
        picked = st.selectbox(
            t("rounds.assign_evaluator", language),
            ["", *candidates],
            format_func=lambda n: n or t("overview.choose_unit", language),
            key="rounds_assign_evaluator",
        )
    affiliation = add_middle.selectbox(
        t("rounds.affiliation", language),
        ["", *communities],
        format_func=lambda c: c or t("rounds.no_affiliation", language),
        key="rounds_assign_affiliation",
    )
    if add_right.button(t("rounds.assign_button", language), key="rounds_assign_button"):
        name = (typed or picked or "").strip()
        try:
            evaluator_scope(account_store(), name, oidc_configured())
            recused = store.assign(principal, round_.round_id, name, affiliation or None)
        except (RoundError, PermissionError) as error:
            _failed(error)
        else:
            _done(t("rounds.assigned", language, name=name, recused="、".join(recused) or "—"))
        st.rerun()
    if not assigned.empty:
        with st.expander(t("rounds.recusal_heading", language)):
            who = st.selectbox(
                t("rounds.col_evaluator", language),
                assigned["evaluator"].tolist(),
                key="rounds_recuse_evaluator",
            )
            which = st.multiselect(
                t("rounds.recuse_units", language),
                units["unit"].tolist(),
                key="rounds_recuse_units",
            )
            reason = st.text_input(
                t("rounds.recuse_reason", language), key="rounds_recuse_reason", max_chars=200
            )
            left, right = st.columns(2)
            if left.button(t("rounds.recuse_button", language), key="rounds_recuse_button"):
                try:
                    store.recuse(principal, round_.round_id, who, which, reason)
                except (RoundError, PermissionError) as error:
                    _failed(error)
                else:
                    _done(t("rounds.recused", language, name=who, units="、".join(which)))
                st.rerun()
            if right.button(
                t("rounds.unassign_button", language, name=who), key="rounds_unassign_button"
            ):
                store.unassign(principal, round_.round_id, who)
                _done(t("rounds.unassigned", language, name=who))
                st.rerun()

# --- progress and reminders ---------------------------------------------------------------------
st.subheader(t("rounds.progress", language))
per_evaluator, per_unit = store.progress(
    principal, round_.round_id, config.trim_from_evaluators, scopes
)
st.dataframe(
    per_evaluator.rename(
        columns={c: t(f"rounds.col_{c}", language) for c in per_evaluator.columns}
    ),
    hide_index=True,
    width="stretch",
    key="rounds_progress_evaluators",
)
short = per_unit[per_unit["is_short"]]
if not short.empty:
    st.warning(
        t(
            "rounds.short_units",
            language,
            n=config.trim_from_evaluators,
            units="、".join(f"{r.unit}（{r.submitted}）" for r in short.itertuples()),
        )
    )
with st.expander(t("rounds.units_progress", language)):
    st.dataframe(
        per_unit.rename(columns={c: t(f"rounds.col_{c}", language) for c in per_unit.columns}),
        hide_index=True,
        width="stretch",
        key="rounds_progress_units",
    )
if not round_.is_locked and not per_evaluator.empty:
    unfinished = per_evaluator.loc[
        per_evaluator["submitted"] < per_evaluator["units"], "evaluator"
    ].tolist()
    with st.expander(t("rounds.remind_heading", language)):
        st.caption(t("rounds.remind_caption", language))
        whom = st.multiselect(
            t("rounds.remind_whom", language),
            per_evaluator["evaluator"].tolist(),
            default=unfinished,
            key="rounds_remind_whom",
        )
        text = st.text_area(
            t("rounds.remind_message", language),
            value=t(
                "rounds.remind_default",
                language,
                label=round_.label(),
                deadline=round_.deadline.isoformat(),
            ),
            key="rounds_remind_message",
        )
        if st.button(t("rounds.remind_button", language), key="rounds_remind_button"):
            try:
                reminded = store.remind(principal, round_.round_id, whom, text)
            except (RoundError, PermissionError) as error:
                _failed(error)
            else:
                _done(t("rounds.reminded", language, names="、".join(reminded)))
            st.rerun()

# --- lock, reopen, export ----------------------------------------------------------------------
st.subheader(t("rounds.lock_heading", language))
if not round_.is_locked:
    drafts = (
        int(per_evaluator["drafts"].sum() + per_evaluator["not_started"].sum())
        if not per_evaluator.empty
        else 0
    )
    st.caption(t("rounds.lock_caption", language, left_out=drafts))
    confirmed = st.checkbox(t("rounds.lock_confirm", language), key="rounds_lock_confirm")
    if st.button(
        t("rounds.lock_button", language),
        type="primary",
        disabled=not confirmed,
        key="rounds_lock_button",
    ):
        try:
            count = store.lock(principal, round_.round_id, pseudonym)
        except (RoundError, PermissionError) as error:
            _failed(error)
        else:
            _done(t("rounds.locked", language, n=count))
        st.rerun()
else:
    reason = st.text_input(
        t("rounds.reopen_reason", language), key="rounds_reopen_reason", max_chars=200
    )
    if st.button(t("rounds.reopen_button", language), key="rounds_reopen_button"):
        try:
            store.reopen(principal, round_.round_id, reason)
        except (RoundError, PermissionError) as error:
            _failed(error)
        else:
            _done(t("rounds.reopened", language))
        st.rerun()
    scores = store.final_scores(round_.year, round_.level)
    scores = scores[scores["round_id"] == round_.round_id]
    comments = store.final_comments(principal, round_.round_id, pseudonym)
    xlsx_column, csv_column = st.columns(2)
    name = f"round_{round_.round_id}"
    xlsx_column.download_button(
        t("rounds.export_xlsx", language),
        data=recorded(
            lambda: round_workbook(round_, scores, comments, datetime.now()),
            name,
            "xlsx",
            round_.label(),
            len(scores),
        ),
        file_name=f"{name}.xlsx",
        mime=XLSX_MIME,
        on_click="ignore",
        key="rounds_export_xlsx",
    )
    csv_column.download_button(
        t("rounds.export_csv", language),
        data=recorded(lambda: round_csv(scores), name, "csv", round_.label(), len(scores)),
        file_name=f"{name}.csv",
        mime="text/csv",
        on_click="ignore",
        key="rounds_export_csv",
    )
