"""Lasting sign-in sessions (govdash/core/sessions.py) and the cookie route's redirect target,
on a real SQLite store in tmp_path."""

from __future__ import annotations

import os
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from govdash.core import sessions as sessions_module
from govdash.core.sessions import TICKET_SECONDS, SessionStore


@pytest.fixture
def store(tmp_path: Path) -> SessionStore:
    return SessionStore(tmp_path / "sessions.sqlite3", hours=2)


def _at(monkeypatch: pytest.MonkeyPatch, moment: datetime) -> None:
    monkeypatch.setattr(sessions_module, "_now", lambda: moment)


def test_a_ticket_gives_one_cookie_whose_token_names_the_user(store: SessionStore) -> None:
    token, ticket = store.start("li")
    assert store.username(token) == "li"
    cookie = store.redeem(ticket)
    assert cookie is not None and token not in cookie and ticket not in cookie
    assert store.redeem(ticket) is None, "a ticket is redeemed once"
    assert store.username(store.token_from_cookie(cookie)) == "li"
    with sqlite3.connect(store.path) as con:
        stored = [value for row in con.execute("SELECT * FROM sessions") for value in row]
    assert token not in stored and ticket not in stored, "only hashes are kept"
    assert os.stat(store.path).st_mode & 0o777 == 0o600
    assert os.stat(store.key_path).st_mode & 0o777 == 0o600


def test_a_tampered_or_foreign_cookie_names_nobody(store: SessionStore, tmp_path: Path) -> None:
    _, ticket = store.start("li")
    cookie = store.redeem(ticket)
    assert cookie is not None
    token = store.token_from_cookie(cookie)
    assert token is not None
    forged = cookie.replace(token, token[:-1] + ("A" if token[-1] != "A" else "B"))
    assert store.token_from_cookie(forged) is None
    other = SessionStore(tmp_path / "other" / "sessions.sqlite3")  # another installation's key
    assert other.token_from_cookie(cookie) is None
    assert store.username(None) is None and store.token_from_cookie("x" * 600) is None


def test_sign_out_ends_the_form_session_and_the_cookie_alike(store: SessionStore) -> None:
    token, ticket = store.start("li")
    other_token, other_ticket = store.start("li")  # the same user in another browser
    cookie_token = store.token_from_cookie(store.redeem(ticket))
    store.end(cookie_token)
    assert store.username(token) is None and store.username(cookie_token) is None
    assert store.username(other_token) == "li", "another sign-in of the same user stays"
    assert store.end_all("li") == 1
    assert store.username(other_token) is None
    assert store.redeem(other_ticket) is None


def test_sessions_and_tickets_expire(store: SessionStore, monkeypatch: pytest.MonkeyPatch) -> None:
    start = datetime(2026, 3, 2, 9, 0)
    _at(monkeypatch, start)
    token, _ = store.start("li")
    late_token, late_ticket = store.start("wang")
    _at(monkeypatch, start + timedelta(seconds=TICKET_SECONDS + 1))
    assert store.redeem(late_ticket) is None, "a ticket lives a minute"
    assert store.username(late_token) == "wang"
    _at(monkeypatch, start + timedelta(hours=2, seconds=1))
    assert store.username(token) is None, "a session lives session_hours"
