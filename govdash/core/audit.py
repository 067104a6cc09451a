"""The audit log of dashboard events: sign-ins, exports, loads, config changes; append-only.

Why not in the warehouse: a warehouse write copies the whole current version and publishes a
new one (govdash.core.warehouse), which is right for a load and absurd for a sign-in or a download.
So the loader records its actor inside the version it publishes (`load_batches.loaded_by`),
and every event — loads included, failed ones too — is also appended here: a SQLite file in
WAL mode beside the warehouse link (`data/audit.sqlite3`, or $GOVDASH_AUDIT), mode 0600, safe
for several app processes and the CLI writing at once. Triggers refuse UPDATE and DELETE.
"""

from __future__ import annotations

import getpass
import json
import os
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from govdash.core.files import state_database
from govdash.core.warehouse import data_dir

if TYPE_CHECKING:  # pandas costs half a second to import; the loader never needs it here
    import pandas as pd

AUDIT_ENV = "GOVDASH_AUDIT"
ACTIONS = (
    "sign_in",
    "sign_in_failed",
    "sign_in_refused",
    "sign_out",
    "export",
    "load",
    "config_changed",
    "account_added",
    "account_removed",
    "password_changed",
    "profile_saved",
    "profile_renamed",
    "profile_deleted",
    "profile_imported",
    "values_remapped",
    "figures_refreshed",  # govdash.etl.settle: stale quarters and years, as their own snapshot
    # online scoring rounds (govdash.core.rounds); score values are never written here
    "round_opened",
    "round_changed",
    "round_saved",
    "round_submitted",
    "round_reminded",
    "round_locked",
    "round_reopened",
    # govdash backup / restore (govdash.core.backup): the archive, never its contents
    "backup",
    "restore",
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_events (
    event_id   INTEGER PRIMARY KEY AUTOINCREMENT,
    at         TEXT NOT NULL,              -- local time, ISO 8601, seconds
    actor      TEXT NOT NULL,              -- account name, OIDC identity or OS user
    action     TEXT NOT NULL,
    method     TEXT,                       -- local, oidc, single_user, cli
    target     TEXT,                       -- file, export name, account…
    detail     TEXT                        -- JSON
);
CREATE INDEX IF NOT EXISTS audit_events_actor ON audit_events (action, actor, at);
CREATE TRIGGER IF NOT EXISTS audit_events_no_update BEFORE UPDATE ON audit_events
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_events_no_delete BEFORE DELETE ON audit_events
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""
MAX_TEXT = 500


def os_user() -> str:
    """The OS account running a command (the actor of CLI loads, exports and account changes)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"


def audit_path(db_path: Path) -> Path:
    """$GOVDASH_AUDIT, else `audit.sqlite3` in the warehouse's folder."""
    return Path(os.environ.get(AUDIT_ENV) or data_dir(db_path) / "audit.sqlite3")


@dataclass(frozen=True)
class SignInLimit:
    """At most `attempts` failed sign-ins per name within `window`; then wait."""

    attempts: int = 5
    window: timedelta = timedelta(minutes=15)


class AuditLog:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        with state_database(self.path, _SCHEMA) as con:
            yield con

    def record(
        self,
        actor: str,
        action: str,
        target: str | None = None,
        detail: Mapping[str, Any] | None = None,
        method: str | None = None,
        at: datetime | None = None,
    ) -> None:
        if action not in ACTIONS:
            raise ValueError(f"unknown audit action {action!r}")
        when = (at or datetime.now()).replace(microsecond=0).isoformat(sep=" ")
        text = json.dumps(dict(detail or {}), ensure_ascii=False, default=str)
        with self._connect() as con:
            con.execute(
                "INSERT INTO audit_events (at, actor, action, method, target, detail) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (when, actor[:MAX_TEXT], action, method, (target or "")[:MAX_TEXT] or None, text),
            )

    def events(self, limit: int = 5000, action: str | None = None) -> pd.DataFrame:
        """The newest events first: event_id, at, actor, action, method, target, detail."""
        import pandas as pd

        columns = ["event_id", "at", "actor", "action", "method", "target", "detail"]
        if not self.path.exists():
            return pd.DataFrame(columns=columns)
        with self._connect() as con:
            rows = con.execute(
                "SELECT event_id, at, actor, action, method, target, detail FROM audit_events "
                "WHERE ? IS NULL OR action = ? ORDER BY event_id DESC LIMIT ?",
                (action, action, limit),
            ).fetchall()
        return pd.DataFrame(rows, columns=columns)

    def failed_sign_ins(self, username: str, since: datetime) -> list[datetime]:
        """Times of failed sign-ins of `username` since `since` and since its last success."""
        if not self.path.exists():
            return []
        with self._connect() as con:
            rows = con.execute(
                """SELECT at FROM audit_events
                   WHERE action = 'sign_in_failed' AND actor = ? AND at >= ?
                     AND event_id > coalesce((SELECT max(event_id) FROM audit_events
                                              WHERE action = 'sign_in' AND actor = ?), 0)
                   ORDER BY at""",
                (username[:MAX_TEXT], since.replace(microsecond=0).isoformat(sep=" "), username),
            ).fetchall()
        return [datetime.fromisoformat(row[0]) for row in rows]

    def locked_until(
        self, username: str, limit: SignInLimit, now: datetime | None = None
    ) -> datetime | None:
        """When `username` may try again, or None if it may try now."""
        moment = now or datetime.now()
        failures = self.failed_sign_ins(username, moment - limit.window)
        if len(failures) < limit.attempts:
            return None
        return failures[-limit.attempts] + limit.window

    def has_event(self, action: str) -> bool:
        """Whether `action` was ever recorded (without reading the events into pandas)."""
        if not self.path.exists():
            return False
        with self._connect() as con:
            row = con.execute(
                "SELECT 1 FROM audit_events WHERE action = ? LIMIT 1", (action,)
            ).fetchone()
        return row is not None

    def last_detail(self, action: str) -> dict[str, Any] | None:
        found = self.events(limit=1, action=action)
        if found.empty:
            return None
        value = json.loads(str(found["detail"].iloc[0]) or "{}")
        return value if isinstance(value, dict) else None


def file_owner(path: Path) -> str:
    """The OS user owning `path` (who last put a config file in place, as far as we can tell)."""
    try:
        import pwd

        return pwd.getpwuid(Path(path).stat().st_uid).pw_name
    except (ImportError, KeyError, OSError):
        return "?"


def record_config_in_force(
    log: AuditLog, source_path: str, fingerprint: str, settings: Mapping[str, str]
) -> bool:
    """Record `config_changed` when this config differs from the last one recorded.

    The detail keeps the flattened settings, so the next change can say which keys moved.
    Returns whether an event was written.
    """
    last = log.last_detail("config_changed")
    if last is not None and last.get("fingerprint") == fingerprint:
        return False
    before = last.get("settings", {}) if last else {}
    before = before if isinstance(before, dict) else {}
    changed = sorted(
        key for key in set(settings) | set(before) if settings.get(key) != before.get(key)
    )
    log.record(
        file_owner(Path(source_path)),
        "config_changed",
        target=source_path,
        detail={
            "fingerprint": fingerprint,
            "previous": last.get("fingerprint") if last else None,
            "changed": changed if last else ["（首次记录 / first record）"],
            "settings": dict(settings),
        },
        method="config",
    )
    return True
