"""The one module that owns Streamlit caching: a read-only connection and results per version.

Results are cached per warehouse version — (catalog, snapshot id): every load publishes a new
snapshot — so a new load invalidates them without a restart, and per config fingerprint. Each
connection is pinned to its snapshot, so every query of a page run sees one whole load. What pages build from those
results (figures, tables as shown) is cached too, per version and per everything it is built
from (`shared`), so a second user with the same filters gets it without rebuilding.

Query results are also kept on this machine's disk (`_result_bytes`), under the same key:
every server process reads what another computed, a restart keeps them, and after a load
`govdash warm` (govdash/web/warm.py) computes each page's first view ahead of its visitors.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import pickle
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import diskcache
import duckdb
import pandas as pd
import streamlit as st
from streamlit.runtime.scriptrunner import add_script_run_ctx, get_script_run_ctx

from govdash.analytics.queries.filters import Filters
from govdash.core.access import REQUIRED_PERMISSION, Principal, Scope, can
from govdash.core.config import CONFIG_ENV, Config, load_config
from govdash.core.lake import Lake, cursor
from govdash.core.warehouse import default_db_path, lake_of


class WarehouseVersion(NamedTuple):
    """What the caches are keyed on: which catalog, and which snapshot of it."""

    catalog: str
    snapshot: int

    def __str__(self) -> str:
        return f"{self.catalog}#{self.snapshot}"


# A PostgreSQL catalog is asked at most once a second per process (a page run makes ~20
# queries); SQLite's answer costs microseconds and is read every time.
_PG_MEMO_SECONDS = 1.0
_memo: dict[str, tuple[float, int | None]] = {}
_memo_lock = threading.Lock()


def warehouse_version() -> WarehouseVersion | None:
    """The snapshot now published; a new load changes it, which invalidates the caches."""
    lake = _lake()
    if lake.embedded:
        snapshot = lake.current_snapshot()
    else:
        now = time.monotonic()
        with _memo_lock:
            seen = _memo.get(lake.identity)
            if seen is None or now - seen[0] >= _PG_MEMO_SECONDS:
                seen = (now, lake.current_snapshot())
                _memo[lake.identity] = seen
        snapshot = seen[1]
    return None if snapshot is None else WarehouseVersion(lake.identity, snapshot)


def _lake() -> Lake:
    return lake_of(default_db_path())


# Pinned connections read every table but the biggest (the tickets) from this machine's local
# copies of the snapshot (Lake.reader(local_copies=True)): DuckDB files shared by every worker
# through the page cache, built once per changed table after a load (by `govdash load`, or by
# the first worker that opens the snapshot). False reads everything from the lake.
LOCAL_COPIES = True


@st.cache_resource(max_entries=2, show_spinner=False)
def _connection(version: WarehouseVersion) -> duckdb.DuckDBPyConnection:
    """A read-only connection pinned to `version`'s snapshot; take cursors with `cursor()`."""
    lake = _lake()
    if lake.identity != version.catalog:  # $GOVDASH_CATALOG changed under a running process
        raise RuntimeError(f"warehouse catalog changed: {version.catalog} → {lake.identity}")
    return lake.reader(version.snapshot, local_copies=LOCAL_COPIES)


def snapshot_stamp() -> tuple[int, str] | None:
    """(snapshot id, its commit time "yyyy-mm-dd hh:mm") of the warehouse pages read now:
    exports stamp it, and `govdash rank/report --snapshot N` re-opens it."""
    version = warehouse_version()
    return None if version is None else _snapshot_stamp(version)


def _snapshot_stamp(version: WarehouseVersion) -> tuple[int, str]:
    moment = _committed_at(version)
    if isinstance(moment, datetime) and moment.tzinfo is not None:
        moment = moment.astimezone().replace(tzinfo=None)
    return version.snapshot, f"{moment:%Y-%m-%d %H:%M}" if moment else "?"


@st.cache_data(max_entries=8, show_spinner=False)
def _committed_at(version: WarehouseVersion) -> datetime | None:
    """When `version`'s snapshot was committed (DuckLake's own time, to the microsecond)."""
    handed = cursor(_connection(version))
    try:
        row = handed.execute(
            "SELECT snapshot_time FROM lake.snapshots() WHERE snapshot_id = $n",
            {"n": version.snapshot},
        ).fetchone()
    finally:
        handed.close()
    return row[0] if row and isinstance(row[0], datetime) else None


def _config_stamp() -> tuple[str, float]:
    path = os.environ.get(CONFIG_ENV, "")
    return path, (Path(path).stat().st_mtime if path and Path(path).is_file() else 0.0)


@st.cache_resource(max_entries=4, show_spinner=False)
def _config(path: str, modified: float) -> Config:
    return load_config(path or None)


def active_config() -> Config:
    """The config in force (re-read when $GOVDASH_CONFIG's file changes)."""
    return _config(*_config_stamp())


def _check_access(
    function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    """Server-side: the session's principal may run `function`, and only within its scope.

    Pages set st.session_state["principal"] (govdash/web/auth.py) before any query. A function
    marked with govdash.core.access.requires needs that permission; every Filters or Scope passed
    must carry exactly the principal's scope, so no widget or URL can widen it.
    """
    principal = st.session_state.get("principal")
    if not isinstance(principal, Principal):
        raise PermissionError("no signed-in principal in this session")
    needed = getattr(function, REQUIRED_PERMISSION, None)
    if needed is not None and not can(principal, needed):
        raise PermissionError(f"{principal.role} may not run {function.__qualname__}")
    for value in (*args, *kwargs.values()):
        scope = value.scope if isinstance(value, Filters) else value
        if isinstance(scope, Scope) and scope != principal.scope:
            raise PermissionError(
                f"query scope {scope.to_text()} is not the session's {principal.scope.to_text()}"
            )


def query(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run `function(cursor, *args, config=?, **kwargs)` on the current version, cached.

    Functions whose signature takes `config` get the active config. None without a warehouse.
    Refused (PermissionError) when the session's principal may not run it (`_check_access`).
    """
    _check_access(function, args, kwargs)
    version = warehouse_version()
    if version is None:
        return None
    key = _key(function, args, kwargs, version=version, fingerprint=config_fingerprint())
    if key is None:  # arguments that cannot be pickled: run it, uncached
        return _run(version, function, args, kwargs)
    return _cached(key, version, function, args, kwargs)


def together(*calls: Callable[[], Any]) -> list[Any]:
    """The results of `calls`, in order, run side by side: each but the last on a thread of its
    own carrying this script run's context (so the session's principal, its scope checks and
    the caches behave as on the script's thread: Streamlit's multithreading guide), the last on
    this thread. For a page's independent cached queries (`query` thunks) whose work is mostly
    DuckDB's, Arrow's and numpy's, which run outside Python's global lock: on two cores they
    overlap. The first exception raised by any is raised here once all have finished."""
    context = get_script_run_ctx()
    results: list[Any] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(at: int) -> None:
        try:
            results[at] = calls[at]()
        except BaseException as error:  # handed to the script's thread, raised there
            errors.append(error)

    helpers = [
        threading.Thread(target=run, args=(at,), name=f"govdash-together-{at}", daemon=True)
        for at in range(len(calls) - 1)
    ]
    for helper in helpers:
        if context is not None:
            add_script_run_ctx(helper, context)
        helper.start()
    if calls:
        run(len(calls) - 1)
    for helper in helpers:
        helper.join()
    if errors:
        raise errors[0]
    return results


def deferred(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[[], Any]:
    """`query(function, *args, **kwargs)`, run only when the returned callable is called.

    For what only a download needs (its file is built when the button is clicked, on a server
    thread outside the page script, where there is no session): the session's access and scope
    are checked now, and the warehouse version and config are taken now, so the file holds
    what the page showed even after a later load. The result is cached like `query`'s.
    """
    _check_access(function, args, kwargs)
    version = warehouse_version()
    if version is None:
        raise FileNotFoundError("数据仓库不存在（请先加载数据）")
    key = _key(function, args, kwargs, version=version, fingerprint=config_fingerprint())
    config = active_config()

    def run() -> Any:
        if key is None:
            return _run(version, function, args, kwargs, config)
        return _cached(key, version, function, args, kwargs, config)

    return run


def config_fingerprint() -> str:
    """The active config's fingerprint, computed once per config file version."""
    return _fingerprint(*_config_stamp())


@st.cache_resource(max_entries=4, show_spinner=False)
def _fingerprint(path: str, modified: float) -> str:
    return _config(path, modified).fingerprint


def _cached(
    key: str,
    version: WarehouseVersion,
    function: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    settings: Config | None = None,
) -> Any:
    """`function`'s result under `key`: from this process's memory, else this machine's disk,
    else computed (and kept in both). Every caller, the first included, gets its own copy
    unpickled from the same bytes, so the figures and tables built from it (keyed by its
    pickled bytes, `_key`) are built once, not once for the first caller and again for the rest."""
    data = _result_bytes(key, version, function, args, kwargs, settings)
    try:
        return pickle.loads(data)
    except _UNPICKLING_ERRORS as error:  # only bytes read from disk can be unreadable
        _logger.warning("a stored page result could not be read: %s", error)
        _result_bytes.clear(key, version, function, args, kwargs, settings)
        store = _result_store()
        if store is not None:
            _forget_stored(store, stored_key(key, version))
        return pickle.loads(_result_bytes(key, version, function, args, kwargs, settings))


# Arguments named with a leading underscore are not hashed by Streamlit: `key` stands for them.
# A result is kept as the bytes it was pickled to (bytes cannot be changed, so one object can
# be handed to every caller). Streamlit's data cache would pickle what it keeps once more, as
# long again as the first pickling (年度考评 of a city's year, 84 MB: 0.3 s of a cold page and of
# a page read from disk), and copy bytes on every read (0.06 s of that page's every rerun).
@st.cache_resource(max_entries=512, show_spinner=False)
def _result_bytes(
    key: str,
    _version: WarehouseVersion,
    _function: Callable[..., Any],
    _args: tuple[Any, ...],
    _kwargs: dict[str, Any],
    _settings: Config | None = None,
) -> bytes:
    store = _result_store()
    on_disk = "" if store is None else stored_key(key, _version)
    if store is not None:
        found = _stored_bytes(store, on_disk)
        if found is not None:
            return found
    started = time.perf_counter()
    data = pickle.dumps(
        _run(_version, _function, _args, _kwargs, _settings), protocol=pickle.HIGHEST_PROTOCOL
    )
    if store is not None and time.perf_counter() - started >= _STORE_SECONDS:
        _store_later(store, on_disk, data, _version)
    return data


def forget_results() -> None:
    """Forget the results and built figures this process keeps in memory (those on this
    machine's disk stay, their writes finished first): where tests and benchmarks that count
    or time computing start."""
    settle_stores()
    _result_bytes.clear()
    _shared.clear()


def _run(
    version: WarehouseVersion,
    function: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    config: Config | None = None,
) -> Any:
    """`function` on a cursor of `version`'s connection, with `config` (default: the active
    one; `key` holds its fingerprint) where its signature takes one."""
    handed = cursor(_connection(version))
    try:
        if "config" in function.__code__.co_varnames[: function.__code__.co_argcount]:
            return function(handed, *args, config=config or active_config(), **kwargs)
        return function(handed, *args, **kwargs)
    finally:
        handed.close()


# --- results on this machine's disk -------------------------------------------------------

# False: results are kept in this process's memory only (bench/bench_pages.py's cold runs).
RESULTS_ON_DISK = True
# Results quicker than this to compute are computed again rather than read from disk (reading
# costs ~1 ms and a file), and bigger ones are not kept (a drill-down's whole ticket list).
_STORE_SECONDS = 0.02
_STORE_BYTES = 256 * 1024 * 1024
RESULTS_FOLDER = "results"  # inside the lake's folder of local copies (Lake.local)
_logger = logging.getLogger(__name__)
# Anything the store can raise: a full or read-only disk, a damaged index, a killed writer.
_STORE_ERRORS = (OSError, sqlite3.Error, diskcache.Timeout, EOFError, ValueError)
# What unpickling damaged bytes, or bytes of classes since changed, can raise.
_UNPICKLING_ERRORS = (pickle.UnpicklingError, EOFError, ValueError, AttributeError, ImportError,
                      TypeError, IndexError, KeyError)  # fmt: skip


def results_folder() -> Path | None:
    """Where this machine keeps the pages' results for the current warehouse (None: nowhere)."""
    local = _lake().local
    return None if local is None else local / RESULTS_FOLDER


def _result_store() -> diskcache.Cache | None:
    """The store of the current warehouse's results, or None when it is off or unusable."""
    if not RESULTS_ON_DISK:
        return None
    size_mb = active_config().results_cache_mb
    folder = results_folder()
    if not size_mb or folder is None:
        return None
    return _open_store(str(folder), size_mb)


@st.cache_resource(max_entries=4, show_spinner=False)
def _open_store(folder: str, size_mb: int) -> diskcache.Cache | None:
    try:
        Path(folder).mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(folder, 0o700)  # results of every scope: only the service may read them
        # The oldest stored go first beyond the limit (earlier snapshots' results, which no
        # key names any more); a read writes nothing, so workers do not queue on the index.
        return diskcache.Cache(
            folder,
            size_limit=size_mb * 1024 * 1024,
            eviction_policy="least-recently-stored",
            timeout=5,
        )
    except _STORE_ERRORS as error:
        _logger.warning("page results are not kept on disk (%s): %s", folder, error)
        return None


def stored_key(key: str, version: WarehouseVersion) -> str:
    """`key` on disk, where it outlives both the catalog and the program, so with two more
    parts: the snapshot's commit time (a rebuilt or restored warehouse at the same path numbers
    its snapshots again, and its #n must not be shown what an earlier #n stored) and the
    program's own code (an upgraded release computes its own results, never reads the old
    release's, whose columns or definitions may differ)."""
    moment = _committed_at(version)
    return f"{key} {moment.isoformat() if moment else ''} {code_fingerprint()}"


@functools.cache
def code_fingerprint() -> str:
    """A digest of every source file of the installed program (~80 files: milliseconds, once
    per process)."""
    package = Path(__file__).resolve().parent.parent
    digest = hashlib.blake2b(digest_size=12)
    for path in sorted(package.rglob("*")):
        if path.suffix in (".py", ".sql", ".toml") and path.is_file():
            digest.update(str(path.relative_to(package)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _stored_bytes(store: diskcache.Cache, key: str) -> bytes | None:
    """The pickled result stored under `key`, or None (not there, or the store unreadable:
    computed again). Unpickled by `_cached`, which forgets it when that fails."""
    try:
        data = store.get(key)
    except _STORE_ERRORS as error:
        _logger.warning("a stored page result could not be read: %s", error)
        return None
    return data if isinstance(data, bytes) else None


def _forget_stored(store: diskcache.Cache, key: str) -> None:
    try:
        store.delete(key)
    except _STORE_ERRORS as error:
        _logger.warning("an unreadable page result could not be removed: %s", error)


# A computed result is written to disk on a thread of its own, so the visitor who computed it
# does not wait for the write (年度考评 of a city's year, 84 MB: 0.18 s). The threads are not
# daemons: a process that ends (`govdash warm`, a worker stopped) finishes its writes first.
_writes: list[threading.Thread] = []
_writes_lock = threading.Lock()


def _store_later(store: diskcache.Cache, key: str, data: bytes, version: WarehouseVersion) -> None:
    writer = threading.Thread(
        target=_store_result, args=(store, key, data, version), name="govdash-store"
    )
    with _writes_lock:  # started before it is listed: settle_stores joins only started ones
        _writes[:] = [w for w in _writes if w.is_alive()]
        writer.start()
        _writes.append(writer)


def settle_stores() -> None:
    """Wait until the results this process is writing to disk are written."""
    with _writes_lock:
        pending = list(_writes)
    for writer in pending:
        writer.join()


def _store_result(store: diskcache.Cache, key: str, data: bytes, version: WarehouseVersion) -> None:
    if len(data) > _STORE_BYTES:
        return
    try:
        store.set(key, data, tag=str(version.snapshot))
    except _STORE_ERRORS as error:
        _logger.warning("a page result could not be stored: %s", error)


# Frames bigger than this (a drill-down's ticket list, not a chart's table) are built, never
# kept: each would hold its size in memory per entry, and pickling it for the key would cost
# much of what keeping it saves.
_LARGEST_SHARED_ROWS = 10_000


def _key(
    function: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    version: WarehouseVersion | None = None,
    fingerprint: str = "",
) -> str | None:
    """A digest of the warehouse version (the current one unless given), the config's
    fingerprint, `function`'s name and everything the arguments hold, frames with their
    values, index and attrs.

    Pickled bytes, not Streamlit's hash of the arguments: that hash samples big frames, leaves
    out a frame's attrs (which carry the columns' formats) and costs ~20× more (~2 ms for a
    chart's arguments). Equal values pickled differently only cost a rebuild; different values
    never share a key. None when something cannot be pickled or a frame is too big.
    """
    for value in (*args, *kwargs.values()):
        if isinstance(value, pd.DataFrame) and len(value) > _LARGEST_SHARED_ROWS:
            return None
    if version is None:
        version = warehouse_version()
    parts = (str(version), fingerprint, *_importable(function), args, kwargs)
    try:
        data = pickle.dumps(parts, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError):
        return None
    return hashlib.blake2b(data, digest_size=20).hexdigest()


def _importable(function: Callable[..., Any]) -> tuple[str, str]:
    """`function`'s module and name, which key its results: a page script's own function or a
    lambda has no name that tells it apart (and its closure would not be part of the key)."""
    name = function.__qualname__
    if function.__module__ == "__main__" or "<" in name:
        raise TypeError(f"a cached call needs a module-level function, not {name}")
    return function.__module__, name


def shared(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """`function(*args, **kwargs)` built once per warehouse version and arguments, the same
    object handed to every session: for pure, module-level builders (a chart's figure, a
    table as shown) whose result nobody changes afterwards. Everything the result depends on
    must be an argument (the language, titles, the frame, the stamp with the filters and so
    the account's scope), which is what keys it."""
    key = _key(function, args, kwargs)
    if key is None:
        return function(*args, **kwargs)
    return _shared(key, function, args, kwargs)


# A page's worth of figures, tables as shown and provenance lines is ~20 entries: this holds
# the pages of ~25 filter choices, languages or scopes at once (the oldest go first).
@st.cache_resource(max_entries=512, show_spinner=False)
def _shared(
    key: str, _function: Callable[..., Any], _args: tuple[Any, ...], _kwargs: dict[str, Any]
) -> Any:
    return _function(*_args, **_kwargs)
