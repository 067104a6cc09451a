"""Small state files kept beside the warehouse (accounts, mapping profiles): one writer at a
time through a lock file, and a replacement that a crash can never leave half written."""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold `path`'s lock file (`<name>.lock` beside it, mode 0600) for a read-modify-write;
    other processes wait."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.with_name(path.name + ".lock")
    descriptor = os.open(lock, os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_json(path: Path, document: Any, mode: int = 0o600) -> None:
    """Replace `path` with `document` as indented UTF-8 JSON: written to a private file beside
    it, synced, then renamed over it, so readers see the old file or the new one, never a part."""
    partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(document, handle, ensure_ascii=False, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.chmod(path, mode)


@contextmanager
def state_database(path: Path, schema: str) -> Iterator[sqlite3.Connection]:
    """A SQLite state file (audit log, scoring rounds) shared by processes: made 0600 if new,
    WAL, waiting up to 30 s for a writer, autocommit, `schema` applied (idempotent DDL)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    with closing(sqlite3.connect(path, timeout=WAIT_SECONDS, isolation_level=None)) as con:
        con.execute(f"PRAGMA busy_timeout = {WAIT_SECONDS * 1000}")
        write_ahead(con, WAIT_SECONDS)
        con.executescript(schema)
        yield con


WAIT_SECONDS = 30  # how long a state file's user waits for another process's writer


def write_ahead(con: sqlite3.Connection, seconds: float) -> None:
    """Switch the file to WAL (kept in the file: a no-op once done). Processes opening a new
    file at once (the server's workers, the first audit events) each try the switch, and
    SQLite answers one of two such switches "database is locked" at once, without waiting
    (it would deadlock): that one tries again until the switch is done or `seconds` pass."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            con.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)
