"""Lasting sign-in for local accounts: server-side sessions behind a signed, expiring cookie.

A Streamlit script cannot set a cookie, so a sign-in takes one hop through a server route:

1. The sign-in form checks the password and `start`s a session: a random token (kept by the
   server only as its SHA-256, with the user and the expiry) and a one-time ticket that may be
   redeemed once within `TICKET_SECONDS`.
2. The browser is sent to the route with the ticket; `redeem` exchanges it for the cookie
   value — the token signed with itsdangerous (HttpOnly, SameSite=Lax, Path = the app's base
   path, Secure over https) — and the route sends the browser back to the page it came from.
3. Every run of the app looks the cookie's token up (`username`): a deleted row ends the
   session at once, wherever the cookie was copied to. Sign-out deletes the row; a password
   change or a removed account deletes every row of that user (`end_all`).

The store is SQLite in WAL mode beside the accounts file (`sessions.sqlite3`, mode 0600), so
several server processes on one machine share it; the signing key is a private file beside
it (`session.key`), created on first use and kept across restarts.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import datetime, timedelta
from pathlib import Path

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner

from govdash.core.files import write_ahead
from govdash.core.warehouse import data_dir

SESSIONS_ENV = "GOVDASH_SESSIONS"
COOKIE_NAME = "govdash_session"
TICKET_SECONDS = 60
ROUTE_PREFIX = "_govdash"  # the app's own routes: /<base>/_govdash/session, …/sign-out
_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    token_hash TEXT PRIMARY KEY,
    sign_in_id TEXT NOT NULL,
    username TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    ticket_hash TEXT UNIQUE,
    ticket_expires_at TEXT
);
CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions (username);
"""


def sessions_path(db_path: Path) -> Path:
    """$GOVDASH_SESSIONS, else `sessions.sqlite3` in the warehouse's folder (beside the
    accounts); the signing key `session.key` lies beside it."""
    return Path(os.environ.get(SESSIONS_ENV) or data_dir(db_path) / "sessions.sqlite3")


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now().replace(microsecond=0)


def _private_file(path: Path, content: str) -> None:
    """Create `path` with mode 0600 unless it exists (a second process may win the race)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(descriptor, "w") as handle:
        handle.write(content)


class SessionStore:
    """Sessions of local sign-ins: start, redeem a ticket, look up, end."""

    def __init__(self, path: Path, hours: float = 12.0) -> None:
        self.path = Path(path)
        self.lifetime = timedelta(hours=hours)
        self.key_path = self.path.with_name("session.key")

    # --- the signing key and the database ---------------------------------------------------
    def _signer(self) -> TimestampSigner:
        if not self.key_path.exists():
            _private_file(self.key_path, secrets.token_hex(32))
        key = self.key_path.read_text().strip()
        if len(key) < 32:
            raise OSError(f"登录会话的签名密钥 {self.key_path} 不完整")
        return TimestampSigner(key, salt="govdash-session")

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        if not self.path.exists():
            _private_file(self.path, "")
        with closing(sqlite3.connect(self.path, timeout=10, isolation_level=None)) as con:
            con.execute("PRAGMA busy_timeout=10000")
            write_ahead(con, 10)  # the server's workers may open a new file at once
            con.executescript(_SCHEMA)
            yield con

    # --- signing in ----------------------------------------------------------------------
    def start(self, username: str) -> tuple[str, str]:
        """A new session for `username`: (token, ticket). The token stays with the server
        session that signed in; the ticket is what the browser carries to the cookie route."""
        token = secrets.token_urlsafe(32)
        ticket = secrets.token_urlsafe(32)
        now = _now()
        with self._connect() as con:
            con.execute("DELETE FROM sessions WHERE expires_at < ?", (now.isoformat(),))
            con.execute(
                "INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    _digest(token),
                    secrets.token_hex(8),
                    username,
                    now.isoformat(),
                    (now + self.lifetime).isoformat(),
                    _digest(ticket),
                    (now + timedelta(seconds=TICKET_SECONDS)).isoformat(),
                ),
            )
        return token, ticket

    def redeem(self, ticket: str) -> str | None:
        """The signed cookie value for a valid, unused, unexpired ticket (once), else None.

        The token itself never travels in a URL: the ticket names the session, and the
        cookie carries a token made for it here, replacing the one the form kept."""
        if not ticket or len(ticket) > 200:
            return None
        now = _now().isoformat()
        token = secrets.token_urlsafe(32)
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            row = con.execute(
                "SELECT token_hash FROM sessions WHERE ticket_hash = ? AND ticket_expires_at >= ?"
                " AND expires_at >= ?",
                (_digest(ticket), now, now),
            ).fetchone()
            if row is None:
                con.execute("ROLLBACK")
                return None
            # A second row for the browser's cookie; the form's token keeps serving the
            # session that signed in until it reloads.
            con.execute(
                "INSERT INTO sessions (token_hash, sign_in_id, username, created_at, expires_at)"
                " SELECT ?, sign_in_id, username, created_at, expires_at FROM sessions"
                " WHERE token_hash = ?",
                (_digest(token), row[0]),
            )
            con.execute(
                "UPDATE sessions SET ticket_hash = NULL, ticket_expires_at = NULL"
                " WHERE token_hash = ?",
                (row[0],),
            )
            con.execute("COMMIT")
        return self._signer().sign(token).decode()

    # --- each run ------------------------------------------------------------------------
    def token_from_cookie(self, cookie: str | None) -> str | None:
        """The token inside a cookie whose signature is ours and not older than a session."""
        if not cookie or len(cookie) > 500:
            return None
        try:
            raw = self._signer().unsign(cookie, max_age=int(self.lifetime.total_seconds()))
        except (BadSignature, SignatureExpired):
            return None
        return raw.decode()

    def username(self, token: str | None) -> str | None:
        """Whose session `token` is, while it is live; None once ended or expired."""
        if not token or not self.path.exists():
            return None
        with self._connect() as con:
            row = con.execute(
                "SELECT username FROM sessions WHERE token_hash = ? AND expires_at >= ?",
                (_digest(token), _now().isoformat()),
            ).fetchone()
        return str(row[0]) if row else None

    # --- signing out ---------------------------------------------------------------------
    def end(self, token: str | None) -> None:
        """End the sign-in `token` belongs to: the form's token and the cookie's alike."""
        if not token or not self.path.exists():
            return
        with self._connect() as con:
            con.execute(
                "DELETE FROM sessions WHERE sign_in_id IN"
                " (SELECT sign_in_id FROM sessions WHERE token_hash = ?)",
                (_digest(token),),
            )

    def end_all(self, username: str) -> int:
        """End every session of `username` (a password change, a removed account)."""
        if not self.path.exists():
            return 0
        with self._connect() as con:
            return con.execute("DELETE FROM sessions WHERE username = ?", (username,)).rowcount
