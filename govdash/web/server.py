"""The server `govdash serve` runs: Streamlit's app with the sign-in routes under the base path.

`streamlit run server.py` finds `app` (an `st.App`) and serves it with uvicorn. Streamlit
mounts its own routes under `server.baseUrlPath`, but routes given here are mounted exactly
as written, so they carry the prefix themselves; so do their redirects and cookies (a cookie
with `Path=/` would go to every app on the host).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import streamlit as st
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from streamlit import config as streamlit_config

from govdash.core.config import load_config
from govdash.core.sessions import COOKIE_NAME, ROUTE_PREFIX, SessionStore, sessions_path
from govdash.core.warehouse import default_db_path


def base_path() -> str:
    """The URL prefix, "" or "/dashboard" (Streamlit's server.baseUrlPath, normalised)."""
    value = str(streamlit_config.get_option("server.baseUrlPath") or "").strip("/")
    return f"/{value}" if value else ""


def app_root() -> str:
    return f"{base_path()}/"


def cookie_path() -> str:
    """The cookie's Path: the prefix itself ("/dashboard" matches /dashboard and everything
    under it, not /dashboard2), "/" at the root."""
    return base_path() or "/"


def safe_next(target: str | None) -> str:
    """`target` if it is a path inside this app (no scheme, host or '//' escape), else the
    app's root: a sign-in must not send the browser to another site."""
    root = app_root()
    if not target or "\\" in target or any(ord(ch) < 32 for ch in target):
        return root
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return root
    if not (target == base_path() or target.startswith(root)):
        return root
    return target


def _store() -> SessionStore:
    return SessionStore(sessions_path(default_db_path()), load_config().session_hours)


def _is_https(request: Request) -> bool:
    # uvicorn rewrites the scheme from X-Forwarded-Proto for trusted proxies only
    # (FORWARDED_ALLOW_IPS, set by govdash serve --forwarded-allow-ips).
    return request.url.scheme == "https"


async def redeem_ticket(request: Request) -> Response:
    """Exchange a one-time sign-in ticket for the session cookie, then go where the link said."""
    store = _store()
    cookie = store.redeem(request.query_params.get("ticket", ""))
    response = RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    response.headers["Cache-Control"] = "no-store"
    if cookie is not None:
        response.set_cookie(
            COOKIE_NAME,
            cookie,
            max_age=int(store.lifetime.total_seconds()),
            path=cookie_path(),
            secure=_is_https(request),
            httponly=True,
            samesite="lax",
        )
    return response


async def sign_out(request: Request) -> Response:
    """End the cookie's session on the server and delete the browser's copy."""
    store = _store()
    store.end(store.token_from_cookie(request.cookies.get(COOKIE_NAME)))
    response = RedirectResponse(app_root(), status_code=303)
    response.headers["Cache-Control"] = "no-store"
    response.delete_cookie(
        COOKIE_NAME, path=cookie_path(), secure=_is_https(request), httponly=True, samesite="lax"
    )
    return response


def routes() -> list[Route]:
    prefix = f"{base_path()}/{ROUTE_PREFIX}"
    return [
        Route(f"{prefix}/session", redeem_ticket, methods=["GET"]),
        Route(f"{prefix}/sign-out", sign_out, methods=["GET"]),
    ]


app = st.App("app.py", routes=routes())
