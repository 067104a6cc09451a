"""How many people one `govdash serve` holds: N users at once, each opening 总览 → 响应时效 → 满意度.

The server is started as users start it (`python -m govdash serve --db … --port …`, no accounts:
single-user; --accounts signs every user in) on the demo warehouse (`govdash demo`, ~65k tickets) or, with --big, a 1M-ticket
one; both are built once under --workdir. Users are browserless websocket clients
(bench/streamlit_client.py; tests/browser/test_bench_client.py checks they get the elements
chromium shows). For each N a fresh server gets one user alone first (cold caches), then
--bursts bursts of N users in a row, every user a new session opening the three pages for 2025.
Per burst it prints p50/p90/max seconds per page, errors, the server's CPU seconds (psutil on
its pid and its children — with --workers N, the workers and nginx: user + system) in total and
per user-page, its RSS (summed the same way), and the load average; then the
drift: each burst's p90 and CPU per user-page over the first burst's. With --workers 2 or more
a warm-up burst (--warmup) first reaches the workers the cold user did not.

    .venv/bin/python bench/bench_concurrency.py                     # demo warehouse, N = 1 4 8 16 32
    .venv/bin/python bench/bench_concurrency.py --big --users 8 32  # 1M tickets
    .venv/bin/python bench/bench_concurrency.py --workers 2 --users 8 16 20  # 2 processes, nginx
    .venv/bin/python bench/bench_concurrency.py --gc-stats --server-env STREAMLIT_SERVER_DISCONNECTED_SESSION_TTL=120
    git archive main | tar -x -C /tmp/main-tree      # before/after in one run, servers taking turns:
    .venv/bin/python bench/bench_concurrency.py --code before=/tmp/main-tree --code after=. --users 1 20

With --code the server runs another tree's code (its folder first on the server's PYTHONPATH,
started there); for each N the trees take turns, and the report adds each tree's p90 and CPU
per user-page over the first tree's, burst by burst.

Wall times depend on what else runs on the machine; CPU seconds per user-page much less so.
It asserts nothing; results also go to bench/results/concurrency-<date>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import psutil

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from streamlit_client import PageLoad, open_pages  # noqa: E402

PAGES = (("", "总览"), ("response", "响应时效"), ("satisfaction", "满意度"))
YEAR_2025 = {"period": "year", "start": "2025-01-01", "end": "2025-12-31"}
BIG_TICKETS = 1_000_000
START_TIMEOUT_S = 180.0
# Variables that would point the server at another installation or switch sign-in on.
GOVDASH_ENV = (
    "GOVDASH_DB",
    "GOVDASH_CONFIG",
    "GOVDASH_HASH_KEY",
    "GOVDASH_ACCOUNTS",
    "GOVDASH_AUDIT",
    "GOVDASH_SESSIONS",
)


# --- the warehouse and the server ------------------------------------------------------------


def warehouse(workdir: Path, tickets: int | None) -> Path:
    """`govdash demo` into WORKDIR/<size>/ once; later runs reuse it."""
    folder = workdir / (f"tickets-{tickets}" if tickets else "demo")
    db = folder / "warehouse.duckdb"
    if not db.exists():
        print(
            f"building the warehouse: govdash demo {'--tickets ' + str(tickets) if tickets else ''} → {db}"
        )
        command = [
            sys.executable,
            "-m",
            "govdash",
            "demo",
            "--db",
            str(db),
            "--out",
            str(folder / "files"),
        ]
        if tickets:
            command += ["--tickets", str(tickets)]
        subprocess.run(command, check=True, cwd=ROOT, env=_clean_env(), stdout=subprocess.DEVNULL)
    return db


def _clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in GOVDASH_ENV}
    env.update(extra or {})
    return env


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _healthy(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as answer:
            return bool(answer.read().strip() == b"ok")
    except OSError:
        return False


@dataclass
class Server:
    base: str
    process: psutil.Process
    gc_file: Path | None

    def _tree(self) -> list[psutil.Process]:
        """The server and, with --workers N > 1, its workers and nginx."""
        return [self.process, *self.process.children(recursive=True)]

    def cpu_seconds(self) -> float:
        total = 0.0
        for process in self._tree():
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                total += times.user + times.system
        return total

    def rss_mb(self) -> float:
        total = 0.0
        for process in self._tree():
            with contextlib.suppress(psutil.Error):
                total += process.memory_info().rss
        return total / 2**20

    def gc_report(self) -> dict[str, object] | None:
        """The collector's totals from bench/serve_instrumented.py (--gc-stats), else None."""
        if self.gc_file is None:
            return None
        before = self.gc_file.stat().st_mtime_ns if self.gc_file.exists() else 0
        os.kill(self.process.pid, signal.SIGUSR1)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.gc_file.exists() and self.gc_file.stat().st_mtime_ns != before:
                with contextlib.suppress(json.JSONDecodeError):
                    return dict(json.loads(self.gc_file.read_text(encoding="utf-8")))
            time.sleep(0.1)
        return None


@contextlib.contextmanager
def running_server(
    db: Path,
    log: Path,
    env: dict[str, str],
    gc_stats: bool,
    workers: int = 1,
    code: Path = ROOT,
) -> Iterator[Server]:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    serve = ["serve", "--db", str(db), "--port", str(port), "--host", "127.0.0.1"]
    serve += ["--workers", str(workers)]
    gc_file = log.with_suffix(".gc.json") if gc_stats else None
    if gc_file is not None:
        gc_file.unlink(missing_ok=True)
        env = {**env, "GOVDASH_BENCH_GC_FILE": str(gc_file)}
        command = [sys.executable, str(BENCH / "serve_instrumented.py"), *serve]
    else:
        command = [sys.executable, "-m", "govdash", *serve]
    if code != ROOT:  # another tree's govdash before the installed (editable) one
        env = {
            **env,
            "PYTHONPATH": os.pathsep.join(filter(None, (str(code), env.get("PYTHONPATH")))),
        }
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            cwd=code,
            env=_clean_env(env),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _healthy(base):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-3000:]
                raise SystemExit(f"govdash serve did not start (see {log}):\n{tail}")
            time.sleep(0.3)
        yield Server(base, psutil.Process(process.pid), gc_file)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


# --- a burst ---------------------------------------------------------------------------------


@dataclass
class Burst:
    label: str
    users: int
    code: str = ""
    seconds: dict[str, list[float]] = field(default_factory=dict)  # page title → per user
    errors: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    cpu_s: float = 0.0
    rss_mb: float = 0.0
    load_avg: float = 0.0
    elements: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    gc: dict[str, object] | None = None
    split: str = ""  # users per worker, busiest first ("10/10"; "" with one worker)

    @property
    def cpu_per_user_page(self) -> float:
        return self.cpu_s / (self.users * len(PAGES))

    def p(self, title: str, q: float) -> float:
        values = sorted(self.seconds[title])
        if len(values) == 1:
            return values[0]
        return float(statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1])


async def _users(base: str, cookies: list[str | None]) -> list[list[PageLoad]]:
    names = [name for name, _ in PAGES]
    return list(
        await asyncio.gather(*(open_pages(base, names, YEAR_2025, cookie=c) for c in cookies))
    )


# --- signed-in users (--accounts) --------------------------------------------------------------

BENCH_USER = "bench-admin"


def accounts_env(workdir: Path, db: Path) -> dict[str, str]:
    """An account file, session store and audit log of the benchmark's own (the warehouse's
    folder keeps none: its single-user runs stay single-user), with one admin account."""
    folder = workdir / "accounts"
    folder.mkdir(parents=True, exist_ok=True)
    env = {
        "GOVDASH_ACCOUNTS": str(folder / "accounts.json"),
        "GOVDASH_SESSIONS": str(folder / "sessions.sqlite3"),
        "GOVDASH_AUDIT": str(folder / "audit.sqlite3"),
    }
    if not (folder / "accounts.json").exists():
        command = [sys.executable, "-m", "govdash", "users", "add", BENCH_USER, "--role", "admin"]
        subprocess.run(
            [*command, "--password-stdin", "--db", str(db)],
            input=f"{secrets.token_urlsafe(16)}\n",
            text=True,
            check=True,
            cwd=ROOT,
            env=_clean_env(env),
            stdout=subprocess.DEVNULL,
        )
    return env


def signed_in_cookie(env: dict[str, str]) -> str:
    """A session cookie for the benchmark's account, made as the sign-in form and its cookie
    route make one (a ticket, redeemed), so every page run checks it as it checks a browser's."""
    from govdash.core.sessions import COOKIE_NAME, SessionStore

    store = SessionStore(Path(env["GOVDASH_SESSIONS"]))
    _, ticket = store.start(BENCH_USER)
    cookie = store.redeem(ticket)
    if cookie is None:
        raise SystemExit("!!! the session store refused a fresh ticket")
    return f"{COOKIE_NAME}={cookie}"


def burst(
    server: Server, label: str, users: int, accounts: dict[str, str] | None, code: str = ""
) -> Burst:
    result = Burst(label, users, code, {title: [] for _, title in PAGES})
    cookies = [signed_in_cookie(accounts) if accounts else None for _ in range(users)]
    cpu_before = server.cpu_seconds()
    started = time.perf_counter()
    every_user = asyncio.run(_users(server.base, cookies))
    result.wall_s = time.perf_counter() - started
    if not server.process.is_running() or server.process.status() == psutil.STATUS_ZOMBIE:
        raise SystemExit(f"!!! the server died during {label} of N={users}: see its log")
    result.cpu_s = server.cpu_seconds() - cpu_before
    result.rss_mb = server.rss_mb()
    result.load_avg = os.getloadavg()[0]
    titles = dict(PAGES)
    for loads in every_user:
        for load in loads:
            title = titles[load.page]
            result.seconds[title].append(load.seconds)
            result.elements.setdefault(title, load.counts())
            if not load.ok:
                result.errors.append(f"{title}: {load.error or 'an exception on the page'}")
            elif not load.counts()[0]:
                result.errors.append(f"{title}: no charts (the sign-in page? {load.headings[:2]})")
            elif load.counts() != result.elements[title]:
                result.errors.append(
                    f"{title}: elements {load.counts()} ≠ {result.elements[title]}"
                )
    result.gc = server.gc_report()
    per_worker = Counter(loads[0].worker for loads in every_user if loads and loads[0].worker)
    result.split = "/".join(str(n) for _, n in per_worker.most_common())
    return result


# --- report ----------------------------------------------------------------------------------


def _gc_cells(current: Burst, previous: Burst | None) -> str:
    if current.gc is None:
        return ""
    spent = list(current.gc["gc_seconds"])  # type: ignore[call-overload]
    before = list(previous.gc["gc_seconds"]) if previous and previous.gc else [0.0, 0.0, 0.0]  # type: ignore[call-overload]
    full = float(spent[2]) - float(before[2])
    young = sum(float(s) for s in spent[:2]) - sum(float(s) for s in before[:2])
    return f"{full:>8.1f}{young:>8.1f}{int(current.gc['tracked_objects']) / 1000:>8.0f}k"  # type: ignore[call-overload]


def print_table(runs: list[list[Burst]], gc_stats: bool) -> None:
    titles = [title for _, title in PAGES]
    codes = any(b.code for bursts in runs for b in bursts)
    width = max((len(b.code) for bursts in runs for b in bursts), default=0) + 1 if codes else 0
    head = f"{'code':<{width}}" if codes else ""
    head += f"{'N':>3} {'burst':<7}" + "".join(f"{t + ' p50/p90/max s':>24}" for t in titles)
    head += f"{'err':>5}{'wall s':>8}{'CPU s':>8}{'CPU s/page':>11}{'RSS MB':>8}{'load':>6}"
    head += f"{'users/worker':>13}"
    if gc_stats:
        head += f"{'gc2 s':>8}{'gc0+1 s':>8}{'objects':>9}"
    print("\n" + head)
    for bursts in runs:
        previous: Burst | None = None
        for b in bursts:
            row = (f"{b.code:<{width}}" if codes else "") + f"{b.users:>3} {b.label:<7}"
            for t in titles:
                row += f"{f'{b.p(t, 0.5):.2f} / {b.p(t, 0.9):.2f} / {max(b.seconds[t]):.2f}':>24}"
            row += f"{len(b.errors):>5}{b.wall_s:>8.1f}{b.cpu_s:>8.1f}{b.cpu_per_user_page:>11.3f}"
            row += f"{b.rss_mb:>8.0f}{b.load_avg:>6.1f}{b.split:>13}"
            if gc_stats:
                row += _gc_cells(b, previous)
            print(row)
            previous = b
    print("\ndrift: burst k ÷ burst 1 (p90 per page; server CPU per user-page)")
    print(
        (f"{'code':<{width}}" if codes else "")
        + f"{'N':>3} {'burst':<7}"
        + "".join(f"{t + ' p90':>12}" for t in titles)
        + f"{'CPU/page':>10}"
    )
    for bursts in runs:
        first = next((b for b in bursts if b.label == "burst 1"), None)
        if first is None:
            continue
        for b in bursts:
            if b.label.startswith("burst") and b is not first:
                row = (f"{b.code:<{width}}" if codes else "") + f"{b.users:>3} {b.label:<7}"
                row += "".join(f"{b.p(t, 0.9) / first.p(t, 0.9):>12.2f}" for t in titles)
                row += f"{b.cpu_per_user_page / first.cpu_per_user_page:>10.2f}"
                print(row)
    if codes:
        print_ratios(runs)
    errors = [e for bursts in runs for b in bursts for e in b.errors]
    for error in sorted(set(errors))[:20]:
        print(f"!!! {errors.count(error)}× {error}")


def print_ratios(runs: list[list[Burst]]) -> None:
    """Each tree over the first tree (--code), the same N and burst: p90 per page, CPU per
    user-page. Below 1 is better."""
    titles = [title for _, title in PAGES]
    first_code = runs[0][0].code
    base = {(b.users, b.label): b for bursts in runs for b in bursts if b.code == first_code}
    others = [b for bursts in runs for b in bursts if b.code != first_code]
    if not others:
        return
    width = max(len(b.code) for b in others) + 1
    print(f"\nratios: each code ÷ {first_code} (p90 per page; server CPU per user-page)")
    print(
        f"{'code':<{width}}{'N':>3} {'burst':<7}"
        + "".join(f"{t + ' p90':>12}" for t in titles)
        + f"{'CPU/page':>10}"
    )
    for b in others:
        before = base.get((b.users, b.label))
        if before is None:
            continue
        row = f"{b.code:<{width}}{b.users:>3} {b.label:<7}"
        row += "".join(f"{b.p(t, 0.9) / before.p(t, 0.9):>12.2f}" for t in titles)
        row += f"{b.cpu_per_user_page / before.cpu_per_user_page:>10.2f}"
        print(row)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, nargs="+", default=[1, 4, 8, 16, 32])
    parser.add_argument("--bursts", type=int, default=3, help="bursts in a row per server (3)")
    parser.add_argument("--big", action="store_true", help=f"{BIG_TICKETS:,} tickets, not the demo")
    parser.add_argument("--db", type=Path, help="an existing warehouse instead of a built one")
    parser.add_argument(
        "--workdir", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "govdash-bench"
    )
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="environment for the server, e.g. STREAMLIT_SERVER_DISCONNECTED_SESSION_TTL=120",
    )
    parser.add_argument(
        "--gc-stats",
        action="store_true",
        help="serve through bench/serve_instrumented.py and report the collector's time",
    )
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="with --gc-stats: import what the pages import and gc.freeze() before serving",
    )
    parser.add_argument(
        "--gc-threshold",
        metavar="G0,G1,G2",
        help="with --gc-stats: the collector's thresholds (Python's default 700,10,10)",
    )
    parser.add_argument(
        "--accounts",
        action="store_true",
        help="sign-in on: one admin account, every user with a session cookie of its own",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="govdash serve --workers N: N server processes behind nginx (CPU and RSS summed)",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        metavar="N",
        help="a burst of N users after the cold user, not counted in the drift (default: 4 per "
        "worker with --workers 2 or more, whose balancer hashes a random cookie, so one user "
        "warms one worker only; else none)",
    )
    parser.add_argument(
        "--code",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="serve this tree's code (repeat to compare, e.g. before=/tmp/main-tree after=.)",
    )
    parser.add_argument("--results-dir", type=Path, default=BENCH / "results")
    args = parser.parse_args()
    warmup = (
        args.warmup if args.warmup is not None else (4 * args.workers if args.workers > 1 else 0)
    )
    trees = [
        (name, Path(folder).resolve()) for name, folder in (c.split("=", 1) for c in args.code)
    ]
    for name, folder in trees:
        if not (folder / "govdash" / "__main__.py").exists():
            parser.error(f"--code {name}={folder}: no govdash/__main__.py there")
    if args.workers > 1 and args.gc_stats:
        parser.error("--gc-stats instruments one server process: use it with --workers 1")

    args.workdir.mkdir(parents=True, exist_ok=True)
    db = args.db or warehouse(args.workdir, BIG_TICKETS if args.big else None)
    env = dict(item.split("=", 1) for item in args.server_env)
    accounts = accounts_env(args.workdir, db) if args.accounts else None
    env.update(accounts or {})
    if args.gc_freeze:
        if not args.gc_stats:
            parser.error("--gc-freeze needs --gc-stats (the instrumented launcher)")
        env["GOVDASH_BENCH_GC_FREEZE"] = "1"
    if args.gc_threshold:
        if not args.gc_stats:
            parser.error("--gc-threshold needs --gc-stats (the instrumented launcher)")
        env["GOVDASH_BENCH_GC_THRESHOLD"] = args.gc_threshold
    print(
        f"warehouse {db}; server env {env or '-'}; workers {args.workers}; "
        f"{psutil.cpu_count()} cores; "
        f"load average {os.getloadavg()[0]:.1f}; python {platform.python_version()}"
    )
    runs: list[list[Burst]] = []
    for users in args.users:
        for name, folder in trees or [("", ROOT)]:
            log = args.workdir / f"server-{users}{'-' + name if name else ''}.log"
            with running_server(db, log, env, args.gc_stats, args.workers, folder) as server:
                bursts = [burst(server, "cold 1", 1, accounts, name)]
                if warmup:  # the first sessions of the workers the cold user did not reach
                    bursts.append(burst(server, "warm-up", warmup, accounts, name))
                for index in range(1, args.bursts + 1):
                    bursts.append(burst(server, f"burst {index}", users, accounts, name))
                first = bursts[0]
                print(
                    f"{name + ' ' if name else ''}N={users}: "
                    + ", ".join(f"{t} {c}" for t, c in first.elements.items())
                    + " (charts, metrics, downloads)"
                )
            runs.append(bursts)
            print_table(runs[-1:], args.gc_stats)
    print("\n=== all runs ===")
    print_table(runs, args.gc_stats)

    args.results_dir.mkdir(parents=True, exist_ok=True)
    out = args.results_dir / f"concurrency-{datetime.now():%Y%m%d-%H%M%S}.json"
    out.write_text(
        json.dumps(
            {
                "db": str(db),
                "server_env": env,
                "workers": args.workers,
                "code": {name: str(folder) for name, folder in trees},
                "runs": [[asdict(b) for b in r] for r in runs],
            },
            ensure_ascii=False,
            indent=1,
        ),
        encoding="utf-8",
    )
    print(f"\nresults: {out}")


if __name__ == "__main__":
    main()
