"""账号与审计: local accounts (names, roles, scopes; never hashes) and the audit log (admins only)."""

import json

import pandas as pd
import streamlit as st

from govdash.analytics.queries.loads import load_history
from govdash.core.access import ADMIN
from govdash.core.audit import ACTIONS
from govdash.i18n import t
from govdash.web.auth import account_store, audit_log, require
from govdash.web.cache import query, warehouse_version
from govdash.web.ui import lang


def _readable(text: object) -> str:
    """The JSON detail as `key: value` pairs; a config's full settings stay in the log only."""
    try:
        detail = json.loads(str(text))
    except ValueError:
        return str(text)
    if not isinstance(detail, dict):
        return str(text)
    return "；".join(
        f"{key}: {'、'.join(map(str, value)) if isinstance(value, list) else value}"
        for key, value in detail.items()
        if key != "settings" and value not in (None, "", [])
    )


language = lang()
require(ADMIN, language)
st.title(t("page.admin", language))

audit_tab, loads_tab, accounts_tab = st.tabs(
    [t(k, language) for k in ("admin.audit", "admin.loads", "admin.accounts")]
)

with audit_tab:
    log = audit_log()
    st.caption(t("admin.audit_help", language, path=log.path))
    action = st.selectbox(
        t("admin.action", language),
        [None, *ACTIONS],
        format_func=lambda a: t("admin.all_actions", language) if a is None else a,
        key="audit_action",
    )
    events = log.events(action=action)
    events["detail"] = events["detail"].map(_readable)
    if events.empty:
        st.info(t("state.empty", language))
    else:
        st.dataframe(
            events.rename(columns=lambda c: t(f"audit.{c}", language)),
            hide_index=True,
            width="stretch",
            key="audit_table",
        )

with loads_tab:
    if warehouse_version() is None:
        st.info(t("state.no_warehouse", language))
    else:
        history = query(load_history)
        st.dataframe(
            history[
                ["batch_id", "loaded_at", "loaded_by", "file_name", "rows_loaded", "rows_rejected"]
            ].rename(columns=lambda c: t(f"history.{c}", language)),
            hide_index=True,
            width="stretch",
            key="audit_loads",
        )

with accounts_tab:
    store = account_store()
    st.caption(t("admin.accounts_help", language, path=store.path))
    accounts = store.accounts()
    if not accounts:
        st.info(t("admin.no_accounts", language))
    else:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        t("account.username", language): a.username,
                        t("account.role", language): t(f"role.{a.role}", language),
                        t("account.scope", language): a.scope.label(language),
                        t("account.created_at", language): a.created_at,
                        t("account.updated_at", language): a.updated_at,
                    }
                    for a in accounts
                ]
            ),
            hide_index=True,
            width="stretch",
            key="accounts_table",
        )
