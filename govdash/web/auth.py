"""Sign-in (OIDC through st.login, or local accounts), the session's principal, page guards.

Three modes, decided on every run:
- OIDC: Streamlit's [auth] in .streamlit/secrets.toml; st.user's claims map to a role and
  scope by the config's [[access.oidc_rules]].
- Local accounts: `govdash users add` wrote data/accounts.json; a sign-in form checks the
  Argon2 hash; failed attempts are counted in the audit log and rate-limited per name. A
  sign-in lasts across reloads and pasted links through a server-side session and a signed
  cookie (govdash/core/sessions.py; the cookie is set by a route of govdash/web/server.py).
- Single-user: neither is set up and none is expected; one local user may do everything,
  under a banner. If accounts are configured or expected but unreadable, every page is
  refused (govdash/core/signin.py) — never open access.
"""

from __future__ import annotations

import contextlib
import functools
import html
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlencode

import streamlit as st
from streamlit import config as streamlit_config

from govdash.core.access import (
    Principal,
    can,
    principal_from_claims,
    single_user,
)
from govdash.core.accounts import AccountError, AccountStore, accounts_path
from govdash.core.audit import AuditLog, SignInLimit, audit_path, os_user, record_config_in_force
from govdash.core.sessions import COOKIE_NAME, ROUTE_PREFIX, SessionStore, sessions_path
from govdash.core.signin import SignInUnavailable, local_accounts
from govdash.core.warehouse import default_db_path
from govdash.i18n import t
from govdash.web.cache import active_config
from govdash.web.keys import PRINCIPAL_KEY, TOKEN_KEY

SIGN_IN_LIMIT = SignInLimit()
_REDIRECT_KEY = "auth_redirect"  # where the browser goes next: the cookie route
_RECORDED_KEY = "auth_sign_in_recorded"
_NEXT_KEY = "auth_next"  # the page (and query) the address named when sign-in was asked for

RequestedPage = Callable[[], str]  # the URL path (and query) of the page the link named


def audit_log() -> AuditLog:
    return AuditLog(audit_path(default_db_path()))


def account_store() -> AccountStore:
    return AccountStore(accounts_path(default_db_path()))


def session_store() -> SessionStore:
    return SessionStore(sessions_path(default_db_path()), active_config().session_hours)


def base_path() -> str:
    """The app's URL prefix: "" or "/dashboard" (server.baseUrlPath)."""
    value = str(streamlit_config.get_option("server.baseUrlPath") or "").strip("/")
    return f"/{value}" if value else ""


def _route(name: str, **params: str) -> str:
    query = f"?{urlencode(params, quote_via=quote)}" if params else ""
    return f"{base_path()}/{ROUTE_PREFIX}/{name}{query}"


def _follow_redirect() -> None:
    """Send the browser on to a pending route (setting or deleting the sign-in cookie).

    A script cannot set cookies or navigate; a meta refresh in markdown can (st.html strips
    meta tags). Where there is no browser (AppTest), the text is inert."""
    target = st.session_state.pop(_REDIRECT_KEY, None)
    if isinstance(target, str):
        st.markdown(
            f'<meta http-equiv="refresh" content="0; url={html.escape(target, quote=True)}">',
            unsafe_allow_html=True,
        )


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


def authenticate(lang: str, requested_page: RequestedPage) -> Principal:
    """The principal of this session; shows the sign-in page and stops when there is none.

    `requested_page` tells which page the browser's URL named, so that a sign-in goes on to
    the page a pasted link pointed at."""
    _follow_redirect()
    _note_config()
    if st.user.get("is_logged_in", False):
        principal = _oidc_principal(lang)
    else:
        principal = _local_principal(lang, requested_page)
    if principal.method != "single_user" and not st.session_state.get(_RECORDED_KEY):
        if principal.method == "oidc":  # local sign-ins are recorded by the form
            audit_log().record(principal.name, "sign_in", detail=_who(principal), method="oidc")
        st.session_state[_RECORDED_KEY] = True
    st.session_state[PRINCIPAL_KEY] = principal
    return principal


def still_signed_in() -> bool:
    """Whether this session's principal still holds, as authenticate would find it now.

    For an st.fragment's rerun, which skips app.py (where authenticate checks the sign-in
    every run): a removed account, a changed role or an ended session count there too."""
    principal = current_principal()
    if principal is None:
        return False
    if principal.method == "single_user":
        return True
    if principal.method == "oidc":
        return bool(st.user.get("is_logged_in", False))
    try:
        store = local_accounts(
            default_db_path(), active_config().require_sign_in, oidc_configured()
        )
    except SignInUnavailable:
        return False
    account = _session_account(store)
    return account is not None and account.principal() == principal


def signed_in_fragment(body: Callable[..., Any]) -> Callable[..., Any]:
    """`st.fragment` whose every rerun first checks the sign-in (`still_signed_in`): a
    fragment's rerun skips app.py, which checks it on every full run. An ended session
    reruns the whole app, which then asks for the sign-in."""

    @functools.wraps(body)
    def checked(*args: Any, **kwargs: Any) -> Any:
        if not still_signed_in():
            st.rerun(scope="app")
        return body(*args, **kwargs)

    return st.fragment(checked)


def _who(principal: Principal) -> dict[str, str]:
    return {"role": principal.role, "scope": principal.scope.to_text()}


def _local_principal(lang: str, requested_page: RequestedPage) -> Principal:
    try:
        store = local_accounts(
            default_db_path(), active_config().require_sign_in, oidc_configured()
        )
    except SignInUnavailable as error:
        _forget_sign_in()
        st.title(t("app.title", lang))
        st.error(t("auth.unavailable", lang, error=error))
        st.stop()
        raise AssertionError("unreachable") from error  # st.stop() raises
    if store is None and not oidc_configured():
        _forget_sign_in()
        return single_user(os_user())
    account = _session_account(store)
    if account is not None:
        return account.principal()
    _forget_sign_in()
    # Only a session's first run knows the page the address named (later reruns come from
    # the form), so the way back is taken then.
    if _NEXT_KEY not in st.session_state:
        st.session_state[_NEXT_KEY] = _next_path(requested_page)
    _sign_in_page(lang, store)
    st.stop()
    raise AssertionError("unreachable")  # st.stop() raises


def _session_account(store: AccountStore | None) -> Any:
    """The account of this session's live sign-in (its own token, else the browser's cookie),
    re-read every run: a removed account, a changed role or an ended session count at once."""
    if store is None:
        return None
    sessions = session_store()
    token = st.session_state.get(TOKEN_KEY)
    username = sessions.username(token) if isinstance(token, str) else None
    if username is None:
        token = sessions.token_from_cookie(st.context.cookies.get(COOKIE_NAME))
        username = sessions.username(token)
    try:
        account = store.get(username) if username else None
    except AccountError as error:
        st.error(str(error))
        st.stop()
    if account is not None:
        st.session_state[TOKEN_KEY] = token
    return account


def _forget_sign_in() -> None:
    for key in (TOKEN_KEY, PRINCIPAL_KEY, _RECORDED_KEY):
        st.session_state.pop(key, None)


def _next_path(requested_page: RequestedPage) -> str:
    """Where to go after signing in: the page and query string the browser's URL named."""
    query = urlencode(
        [(key, value) for key in st.query_params for value in st.query_params.get_all(key)]
    )
    return f"{base_path()}/{requested_page()}" + (f"?{query}" if query else "")


def _sign_in_page(lang: str, store: AccountStore | None) -> None:
    has_accounts = store is not None
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
    if store is None:
        return
    st.caption(t("auth.sign_in_help", lang))
    with st.form("sign_in", clear_on_submit=False):
        username = st.text_input(t("auth.username", lang), key="auth_username", max_chars=64)
        password = st.text_input(
            t("auth.password", lang), type="password", key="auth_password", max_chars=256
        )
        submitted = st.form_submit_button(t("auth.submit", lang), type="primary")
    if submitted:
        next_path = str(st.session_state.get(_NEXT_KEY) or f"{base_path()}/")
        _try_sign_in(lang, store, username.strip(), password, next_path)


def _try_sign_in(
    lang: str, store: AccountStore, username: str, password: str, next_path: str
) -> None:
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
    token, ticket = session_store().start(account.username)
    st.session_state[TOKEN_KEY] = token
    st.session_state[_RECORDED_KEY] = True
    # The browser fetches its lasting cookie from the route and comes back to the page.
    st.session_state[_REDIRECT_KEY] = _route("session", ticket=ticket, next=next_path)
    st.session_state.pop(_NEXT_KEY, None)
    with contextlib.suppress(KeyError):
        del st.session_state["auth_password"]
    st.rerun()


def sign_out() -> None:
    """End the sign-in on the server at once, then have the browser delete its cookie."""
    principal = current_principal()
    if principal is not None:
        audit_log().record(principal.name, "sign_out", method=principal.method)
    token = st.session_state.get(TOKEN_KEY)
    if isinstance(token, str):
        session_store().end(token)
        st.session_state[_REDIRECT_KEY] = _route("sign-out")
    _forget_sign_in()
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
