"""Sign-in (OIDC through st.login, or local accounts), the session's principal, page guards.

Three modes, decided on every run:
- OIDC: Streamlit's [auth] in .streamlit/secrets.toml; st.user's claims map to a role and
  scope by the config's [[access.oidc_rules]].
- Local accounts: `govdash users add` wrote data/accounts.json; a sign-in form checks the
  Argon2 hash; failed attempts are counted in the audit log and rate-limited per name.
- Single-user: neither is set up; one local user may do everything, under a banner.
"""

from __future__ import annotations

import contextlib
from typing import Any

import streamlit as st

from govdash.core.access import (
    Principal,
    can,
    principal_from_claims,
    single_user,
)
from govdash.core.accounts import AccountError, AccountStore, accounts_path
from govdash.core.audit import AuditLog, SignInLimit, audit_path, os_user, record_config_in_force
from govdash.core.warehouse import default_db_path
from govdash.i18n import t
from govdash.web.cache import active_config

SIGN_IN_LIMIT = SignInLimit()
PRINCIPAL_KEY = "principal"
_LOCAL_USER_KEY = "auth_local_user"
_RECORDED_KEY = "auth_sign_in_recorded"


def audit_log() -> AuditLog:
    return AuditLog(audit_path(default_db_path()))


def account_store() -> AccountStore:
    return AccountStore(accounts_path(default_db_path()))


def current_principal() -> Principal | None:
    value = st.session_state.get(PRINCIPAL_KEY)
    return value if isinstance(value, Principal) else None


def oidc_configured() -> bool:
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets.toml at all
        return False


def _oidc_principal(lang: str) -> Principal:
    """The principal of an OIDC session, or a refusal page (the claims grant no access)."""
    claims: dict[str, Any] = st.user.to_dict()
    config = active_config()
    identity_claim = config.identity_claim
    principal = principal_from_claims(claims, config.oidc_rules, identity_claim)
    identity = str(claims.get(identity_claim) or claims.get("sub") or "?")
    if principal is None:
        if not st.session_state.get(_RECORDED_KEY):
            audit_log().record(
                identity, "sign_in_refused", detail={"claims": sorted(claims)}, method="oidc"
            )
            st.session_state[_RECORDED_KEY] = True
        st.title(t("app.title", lang))
        st.error(t("auth.oidc_refused", lang, identity=identity))
        if st.button(t("auth.sign_out", lang), key="auth_sign_out_refused"):
            st.logout()
        st.stop()
    return principal


_CONFIGS_RECORDED: set[str] = set()  # per process: (log, fingerprint) already checked


def _note_config() -> None:
    config = active_config()
    log = audit_log()
    key = f"{log.path}|{config.fingerprint}"
    if key not in _CONFIGS_RECORDED:
        record_config_in_force(log, config.source_path, config.fingerprint, config.settings())
        _CONFIGS_RECORDED.add(key)


def authenticate(lang: str) -> Principal:
    """The principal of this session; shows the sign-in page and stops when there is none."""
    _note_config()
    if st.user.get("is_logged_in", False):
        principal = _oidc_principal(lang)
    else:
        principal = _local_principal(lang)
    if principal.method != "single_user" and not st.session_state.get(_RECORDED_KEY):
        if principal.method == "oidc":  # local sign-ins are recorded by the form
            audit_log().record(principal.name, "sign_in", detail=_who(principal), method="oidc")
        st.session_state[_RECORDED_KEY] = True
    st.session_state[PRINCIPAL_KEY] = principal
    return principal


def _who(principal: Principal) -> dict[str, str]:
    return {"role": principal.role, "scope": principal.scope.to_text()}


def _local_principal(lang: str) -> Principal:
    store = account_store()
    try:
        has_accounts = store.has_accounts()
        username = st.session_state.get(_LOCAL_USER_KEY)
        # Re-read every run: a removed account or a changed role takes effect at once.
        account = store.get(username) if isinstance(username, str) else None
    except AccountError as error:
        st.session_state.pop(PRINCIPAL_KEY, None)
        st.error(t("auth.accounts_broken", lang, error=error))
        st.stop()
    if account is not None:
        return account.principal()
    st.session_state.pop(_LOCAL_USER_KEY, None)
    st.session_state.pop(PRINCIPAL_KEY, None)
    if not has_accounts and not oidc_configured():
        return single_user(os_user())
    _sign_in_page(lang, store, has_accounts)
    st.stop()
    raise AssertionError("unreachable")  # st.stop() raises


def _sign_in_page(lang: str, store: AccountStore, has_accounts: bool) -> None:
    st.title(t("app.title", lang))
    st.subheader(t("auth.sign_in_title", lang))
    if oidc_configured():
        if st.button(t("auth.oidc_button", lang), type="primary", key="auth_oidc"):
            provider = active_config().oidc_provider
            if provider:
                st.login(provider)
            else:
                st.login()
        if has_accounts:
            st.caption(t("auth.or_local", lang))
    if not has_accounts:
        return
    st.caption(t("auth.sign_in_help", lang))
    with st.form("sign_in", clear_on_submit=False):
        username = st.text_input(t("auth.username", lang), key="auth_username", max_chars=64)
        password = st.text_input(
            t("auth.password", lang), type="password", key="auth_password", max_chars=256
        )
        submitted = st.form_submit_button(t("auth.submit", lang), type="primary")
    if submitted:
        _try_sign_in(lang, store, username.strip(), password)


def _try_sign_in(lang: str, store: AccountStore, username: str, password: str) -> None:
    if not username or not password:
        st.error(t("auth.empty", lang))
        return
    log = audit_log()
    until = log.locked_until(username, SIGN_IN_LIMIT)
    if until is not None:
        log.record(username, "sign_in_refused", detail={"locked_until": until}, method="local")
        st.error(t("auth.locked", lang, until=f"{until:%H:%M}"))
        return
    account = store.verify(username, password)
    if account is None:
        log.record(username, "sign_in_failed", method="local")
        minutes = int(SIGN_IN_LIMIT.window.total_seconds() // 60)
        st.error(t("auth.failed", lang, attempts=SIGN_IN_LIMIT.attempts, minutes=minutes))
        return
    principal = account.principal()
    log.record(principal.name, "sign_in", detail=_who(principal), method="local")
    st.session_state[_LOCAL_USER_KEY] = account.username
    st.session_state[_RECORDED_KEY] = True
    with contextlib.suppress(KeyError):
        del st.session_state["auth_password"]
    st.rerun()


def sign_out() -> None:
    principal = current_principal()
    if principal is not None:
        audit_log().record(principal.name, "sign_out", method=principal.method)
    for key in (_LOCAL_USER_KEY, PRINCIPAL_KEY, _RECORDED_KEY):
        st.session_state.pop(key, None)
    if principal is not None and principal.method == "oidc":
        st.logout()


def account_box(principal: Principal, lang: str) -> None:
    """Who is signed in (or the single-user banner), in the sidebar."""
    if principal.method == "single_user":
        st.warning(t("auth.single_user", lang), icon=":material/person:")
        return
    st.caption(
        t(
            "auth.signed_in_as",
            lang,
            name=principal.name,
            role=t(f"role.{principal.role}", lang),
            scope=principal.scope.label(lang),
        )
    )
    if st.button(t("auth.sign_out", lang), key="auth_sign_out"):
        sign_out()
        st.rerun()


def require(permission: str, lang: str) -> Principal:
    """The principal, if it may use a page needing `permission`; else a refusal and stop.

    Pages a role may not use are not in its navigation either; this is for a URL that
    reaches one anyway.
    """
    principal = current_principal()
    if not can(principal, permission):
        role = t(f"role.{principal.role}", lang) if principal else "—"
        st.error(t("auth.refused", lang, role=role))
        st.stop()
    assert principal is not None
    return principal
