"""After a load: every page's first view computed once into this machine's stored results.

A page's first view after a load reads the new snapshot cold: at a city's size several CPU
seconds a page (bench/bench_pages.py). `govdash warm` (run by `govdash load` and `govdash
migrate` after they publish, and by the data page after an upload) runs each page as its
visitors will see it first, the default filters of a scope, through the app itself
(Streamlit's AppTest on govdash/web/app.py): the results land in the store every server
process reads (govdash.web.cache), under the keys a visitor's run will look up. No number is
computed differently: the same page code computes them, and a visitor with other filters
computes those as before. 年度考评 is also run at its other levels and for the year before
(EVALUATION_YEARS_AHEAD), the views an evaluation meeting opens next.

Whose views: single-user mode has one (the whole district). With local accounts, each
account scope's (the widest first, up to `server.warm_scopes`), signed in the way a visitor
is: a server-side session of an account of that scope (the most permitted), ended when done,
so the pages see exactly that account's principal. OIDC sessions cannot be made here; their
first visitors compute the views, as without a warm-up.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from govdash.analytics.metrics.evaluation import LEVELS as EVALUATION_LEVELS
from govdash.core.access import EVALUATION, ROLES, VIEW, Principal, can, single_user
from govdash.core.accounts import Account
from govdash.core.audit import os_user
from govdash.core.config import CONFIG_ENV, Config
from govdash.core.lake import LakeError
from govdash.core.sessions import SessionStore, sessions_path
from govdash.core.signin import SignInUnavailable, local_accounts
from govdash.core.warehouse import DB_ENV, connect_readonly, lake_of
from govdash.web.keys import EVALUATION_LEVEL_KEY, EVALUATION_YEAR_KEY, PRINCIPAL_KEY, TOKEN_KEY

APP = Path(__file__).resolve().parent / "app.py"
# The pages whose first view is computed ahead (app.PAGES' data pages; scoring, rounds, data
# and admin are forms and lists, quick at any size).
EVALUATION_PAGE = "views/evaluation.py"
PAGES = (
    ("views/overview.py", VIEW),
    ("views/response.py", VIEW),
    ("views/satisfaction.py", VIEW),
    ("views/effect.py", VIEW),
    (EVALUATION_PAGE, EVALUATION),
)
# 年度考评's views its visitors open next, computed after the page's first view: each level
# (an award category of its own) in each of its latest years with scores, this many of them
# (an evaluation meeting sets this year's ranking beside last year's). At a city's size a
# year's view is seconds of computing, so only these.
EVALUATION_YEARS_AHEAD = 2
# A page run may take this long at a city's size before it counts as failed.
PAGE_TIMEOUT_SECONDS = 900

Say = Callable[[str], None]


@dataclass
class Warmed:
    """What `warm` did: the scopes and pages computed, and what went wrong."""

    scopes: list[str] = field(default_factory=list)
    pages: int = 0
    further: int = 0  # 年度考评's other levels and years (EVALUATION_YEARS_AHEAD)
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    snapshot: int | None = None
    already: bool = False  # the snapshot was warmed under this config before


@dataclass(frozen=True)
class _Visitor:
    principal: Principal
    username: str | None  # the account signed in as; None in single-user mode


def worth_warming(db_path: Path, config: Config) -> bool:
    """Whether `warm` is switched on and the warehouse holds enough tickets for its pages'
    first views to be slow (`server.warm_min_tickets`)."""
    if not config.warming:
        return False
    if not config.warm_min_tickets:
        return True
    try:
        con = connect_readonly(db_path)
    except (OSError, duckdb.Error, LakeError):
        return False
    try:
        found = con.execute("SELECT count(*) FROM tickets").fetchone()
    except duckdb.Error:
        return False
    finally:
        con.close()
    return found is not None and found[0] >= config.warm_min_tickets


def warm_command(db_path: Path, config: Config) -> list[str] | None:
    """The `govdash warm` command for this warehouse and config; None when not worth it."""
    if not worth_warming(db_path, config):
        return None
    command = [sys.executable, "-m", "govdash", "warm", "--db", str(db_path)]
    return command + (["--config", config.source_path] if config.source_path else [])


def warm_in_background(db_path: Path, config: Config) -> bool:
    """`govdash warm` in a process of its own, not waited for (after an upload on the data
    page: the clerk's page returns at once, and a later visitor finds the views computed).
    Whether it was started."""
    command = warm_command(db_path, config)
    if command is None:
        return False
    subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return True


def visitors(db_path: Path, config: Config) -> list[_Visitor]:
    """Whose first views to compute: one per scope, the widest scopes first, at most
    `config.warm_scopes`; each as the most permitted account of that scope."""
    store = local_accounts(db_path, config.require_sign_in)
    if store is None:
        return [_Visitor(single_user(os_user()), None)]
    best: dict[str, Account] = {}
    counts: dict[str, int] = {}
    for account in store.accounts():
        scope = account.scope.to_text()
        counts[scope] = counts.get(scope, 0) + 1
        held = best.get(scope)
        if held is None or ROLES.index(account.role) > ROLES.index(held.role):
            best[scope] = account
    levels = ("district", "street", "community")
    order = sorted(
        best.values(),
        key=lambda a: (levels.index(a.scope.level), -counts[a.scope.to_text()], a.scope.to_text()),
    )
    return [_Visitor(a.principal(), a.username) for a in order[: config.warm_scopes]]


def warmed_marker(snapshot: str, fingerprint: str) -> str:
    """The store's key saying that `snapshot`'s pages were warmed under that config."""
    return f"warmed {snapshot} {fingerprint}"


@contextlib.contextmanager
def _one_at_a_time(folder: Path) -> Iterator[None]:
    """One warm-up per machine at a time: a second (the server's, started by the same load)
    waits, then finds the snapshot warmed."""
    with open(folder / "warm.lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def warm(db_path: Path, config: Config, say: Say, again: bool = False) -> Warmed:
    """Run every page's first view for each of `visitors`; its results are then stored.
    Nothing when this snapshot was warmed under this config already (unless `again`)."""
    from streamlit import logger as streamlit_logger

    # Streamlit's notes about running without a server are not for the clerk reading this.
    streamlit_logger.set_log_level("error")
    from streamlit.testing.v1 import AppTest

    from govdash.web import cache

    done = Warmed()
    if not config.warming:
        return done
    os.environ[DB_ENV] = str(db_path)
    if config.source_path:
        os.environ[CONFIG_ENV] = config.source_path
    started = time.perf_counter()
    try:
        who = visitors(db_path, config)
    except SignInUnavailable as error:
        done.warnings.append(f"⚠ 未预热页面：无法确认账号（{error}）")
        return done
    store, folder, version = (
        cache._result_store(),
        cache.results_folder(),
        cache.warehouse_version(),
    )
    if store is None or folder is None or version is None:
        done.warnings.append("⚠ 未预热页面：本机无法保存页面结果（见服务日志）")
        return done
    marker = cache.stored_key(warmed_marker(str(version), cache.config_fingerprint()), version)
    done.snapshot = version.snapshot
    with _one_at_a_time(folder):
        if not again and store.get(marker) is not None:
            done.already = True
            return done
        sessions = SessionStore(sessions_path(db_path), config.session_hours)
        for visitor in who:
            _warm_one(AppTest, visitor, sessions, done, say)
        cache.settle_stores()  # the results on disk before the marker says they are
        if not done.warnings:
            store.set(marker, "、".join(done.scopes), tag=str(version.snapshot))
    done.seconds = time.perf_counter() - started
    return done


def _warm_one(
    app_test: Any, visitor: _Visitor, sessions: SessionStore, done: Warmed, say: Say
) -> None:
    scope = visitor.principal.scope.label("zh")
    say(f"预热页面（{scope}）…")
    app = app_test.from_file(str(APP), default_timeout=PAGE_TIMEOUT_SECONDS)
    token = None
    if visitor.username is not None:
        token, _ = sessions.start(visitor.username)
        app.session_state[TOKEN_KEY] = token
    try:
        for page, permission in PAGES:
            if not can(visitor.principal, permission):
                continue
            app.switch_page(page).run()
            if PRINCIPAL_KEY not in app.session_state:  # the sign-in page: not a view
                done.warnings.append(f"⚠ 未预热（{scope}）：页面要求登录")
                break
            if _ran(app, page, scope, done):
                done.pages += 1
        else:  # every page was drawn for the visitor (no sign-in form)
            if can(visitor.principal, EVALUATION):
                done.further += _evaluation_views(app, scope, done)
    except RuntimeError as error:  # AppTest's timeout
        done.warnings.append(f"⚠ 预热（{scope}）未完成：{error}")
    finally:
        sessions.end(token)
    done.scopes.append(scope)


def _ran(app: Any, page: str, scope: str, done: Warmed) -> bool:
    """Whether the run just made drew its page; a warning when it raised."""
    if not app.exception:
        return True
    message = app.exception[0].message.splitlines()[0]
    done.warnings.append(f"⚠ 预热 {page}（{scope}）时出错：{message}")
    return False


def _evaluation_views(app: Any, scope: str, done: Warmed) -> int:
    """年度考评 at each level, in each of that level's latest EVALUATION_YEARS_AHEAD years, as a
    visitor's choice of level and year runs it; how many views beyond the page's first view.
    The page is run again only where the choice differs from the view just drawn."""
    page = EVALUATION_PAGE
    app.switch_page(page).run()
    levels = [radio for radio in app.radio if radio.key == EVALUATION_LEVEL_KEY]
    if app.exception or not levels:  # an error (warned of above), or no warehouse
        return 0
    first = (levels[0].value, 0)
    views = 0
    for level in EVALUATION_LEVELS:
        if app.radio(key=EVALUATION_LEVEL_KEY).value != level:
            app.radio(key=EVALUATION_LEVEL_KEY).set_value(level).run()
            if not _ran(app, page, scope, done):
                continue
        for index in range(EVALUATION_YEARS_AHEAD):
            years = [box for box in app.selectbox if box.key == EVALUATION_YEAR_KEY]
            if not years or index >= len(years[0].options):  # no scores, or fewer years
                break
            if years[0].index != index:
                years[0].select_index(index).run()
                if not _ran(app, page, scope, done):
                    continue
            views += (level, index) != first
    return views


def watch_and_warm(db_path: Path, config: Config, every_seconds: float = 30.0) -> None:
    """For `govdash serve`: a thread that runs `govdash warm` (at low priority) whenever the
    warehouse has a snapshot this machine has not warmed: soon after start, and after each
    load, whichever machine loaded it (replicas sharing a PostgreSQL catalog warm themselves).

    It first looks a few seconds after start (a server that refuses to start exits before),
    and is stopped at exit: a thread left inside DuckDB while the interpreter shuts down
    aborts the process ("FATAL: exception not rethrown"), and a warm-up child is ended."""
    stop = threading.Event()
    running: list[subprocess.Popen[bytes]] = []

    def watch() -> None:
        lake, seen = lake_of(db_path), None
        while not stop.wait(every_seconds if seen is not None else _FIRST_LOOK_SECONDS):
            try:
                snapshot = lake.current_snapshot()
            except (LakeError, OSError, duckdb.Error):
                snapshot = None
            if snapshot is None or snapshot == seen:
                continue
            seen = snapshot
            try:
                command = warm_command(db_path, config)
            except Exception:  # an unreadable warehouse: the pages say why, and this goes on
                command = None
            if command is None or stop.is_set():
                continue
            child = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            running.append(child)
            # Visitors' pages first (set from here: preexec_fn is unsafe in a process with
            # threads, as a server is).
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, child.pid, 10)
            child.wait()
            running.remove(child)

    thread = threading.Thread(target=watch, name="govdash-warm", daemon=True)

    def stopped() -> None:
        stop.set()
        for child in list(running):
            with contextlib.suppress(OSError):
                child.terminate()
        thread.join(timeout=10)

    atexit.register(stopped)
    thread.start()


# How long `govdash serve` waits before its first look at the warehouse.
_FIRST_LOOK_SECONDS = 5.0
