"""Time every dashboard page (the page script run through AppTest), cold and warm, per warehouse.

Cold: results and built figures forgotten, a fresh AppTest (the process has run one page
before, so imports are not counted), the connection to the snapshot kept: opening it is paid
once per load and server process and printed on its own line. Warm: the same session run again (cached queries). Each page is timed twice in
the same run: `raw` with the stored aggregates switched off (every query reads the tickets,
as before agg_units) and `agg` as shipped, with the ratio raw ÷ agg. Wall seconds and the
process's CPU seconds (all DuckDB threads) are printed side by side: on a shared machine the
CPU figure is the stable one. Targets (issue 15): ≤ 1 s cold at 1M, ≤ 2 s cold and ≤ 0.5 s
warm at 10M.

    .venv/bin/python bench/bench_pages.py --db data/warehouse.duckdb [--db /path/to/1M.duckdb]
    .venv/bin/python bench/bench_pages.py --tickets 1000000      # builds it with govdash demo

A warehouse without aggregates (made before agg_units) gets them built in a copy first
(`--build-aggregates`, the loader's own build), so old benchmark warehouses can be reused.

Baseline against new code in the same run: `--baseline-code DIR` (a checkout of the code to
compare, e.g. `git worktree add` or `git archive main | tar -x -C DIR`) times every page with
that code too, in a child process per warehouse (its own bench_pages.py, so its own app), and
prints both with the ratio. A page that fails (an exception, or memory: `--memory-gb` caps the
address space of this process and the child, so a page that would exhaust the machine fails
here instead of being killed with its neighbours) is reported as failed and the run goes on:

    .venv/bin/python bench/bench_pages.py --db 1M.duckdb --db 10M.duckdb --modes agg \
        --baseline-code /tmp/base --memory-gb 16

Every timing above keeps results in memory only (the results the server keeps on this
machine's disk are switched off: govdash.web.cache.RESULTS_ON_DISK), so cold means computed.
`--first-visit` then times what the first visitor after a load gets: `govdash warm` (which
`govdash load` runs after publishing) in a child process, timed, then each page's default view
(no filters in the address) in a fresh session, with results computed (memory and disk empty
of them) and after the warm-up (read from disk), with the ratio. It writes the warm-up's
results into the warehouse's folder of local copies, as a load does.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Built warehouses (demo ones, copies given aggregates) go here, outside the checkout.
RESULTS = Path(tempfile.gettempdir()) / "govdash-bench"
PAGES = ("overview", "response", "satisfaction", "effect", "evaluation", "data")
PARAMS = {"period": "year", "start": "2025-01-01", "end": "2025-12-31"}
MODES = ("raw", "agg")


def _app(db: Path, params: bool = True):  # type: ignore[no-untyped-def]
    from streamlit.testing.v1 import AppTest

    os.environ["GOVDASH_DB"] = str(db)
    app = AppTest.from_file(str(ROOT / "govdash" / "web" / "app.py"), default_timeout=900)
    for key, value in PARAMS.items() if params else ():
        app.query_params[key] = value
    return app


@contextmanager
def _on_disk(enabled: bool) -> Iterator[None]:
    """The pages' results kept on this machine's disk (as served) or in memory only."""
    from govdash.web import cache

    kept = getattr(cache, "RESULTS_ON_DISK", None)
    if kept is None:  # code from before the results were kept on disk
        yield
        return
    cache.RESULTS_ON_DISK = enabled
    try:
        yield
    finally:
        cache.RESULTS_ON_DISK = kept


def _clear() -> None:
    """Forget every result and built figure; keep the connection to the snapshot open, as a
    server does once one page has read that snapshot (its cost: `open_cost`)."""
    import streamlit as st

    from govdash.web import cache

    st.cache_data.clear()  # code from before results were kept as bytes (--baseline-code)
    if hasattr(cache, "forget_results"):
        cache.forget_results()
    else:
        cache._shared.clear()


def open_cost(db: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of opening the app's connection to the warehouse's current snapshot,
    paid once per snapshot and server process, by the first page read after a load."""
    import streamlit as st

    from govdash.web import cache

    os.environ["GOVDASH_DB"] = str(db)
    st.cache_resource.clear()
    started, cpu = time.perf_counter(), time.process_time()
    cache._connection(cache.warehouse_version())
    return time.perf_counter() - started, time.process_time() - cpu


@contextmanager
def _mode(mode: str) -> Iterator[None]:
    """`raw`: the stored aggregates switched off for every query; `agg`: as shipped."""
    from govdash.analytics.queries import aggregated, effect, surveys, tickets

    readers = (aggregated, effect, surveys, tickets)  # each holds the name aggregates_ready
    ready = aggregated.aggregates_ready
    if mode == "raw":
        for module in readers:
            module.aggregates_ready = lambda con: False  # type: ignore[attr-defined]
    try:
        yield
    finally:
        for module in readers:
            module.aggregates_ready = ready  # type: ignore[attr-defined]


def _timed(app) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    started, cpu = time.perf_counter(), time.process_time()
    app.run()
    return time.perf_counter() - started, time.process_time() - cpu


Timing = tuple[float, float, float, float]  # cold wall, cold CPU, warm wall, warm CPU


def _cells(figure: Timing | str) -> str:
    if isinstance(figure, str):
        return f"{figure[:31]:>32}"
    return f"{figure[0]:>8.2f}/{figure[1]:<7.2f}{figure[2]:>8.2f}/{figure[3]:<7.2f}"


# A page's row as this script prints it: name, then cold and warm wall/CPU per mode.
_ROW = re.compile(r"^(\w+)\s+([\d.]+)/([\d.]+)\s+([\d.]+)/([\d.]+)")


def baseline_timings(code: Path, db: Path, args: argparse.Namespace) -> dict[str, Timing | str]:
    """Each page's agg-mode timing with the code in `code` (its own bench_pages.py, run in a
    child process on the same warehouse); a page the child could not time is "failed"."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVDASH_")}
    env["PYTHONPATH"] = str(code)
    found: dict[str, Timing | str] = {}
    for page in args.pages:  # one child per page: a page that dies takes only itself
        command = [sys.executable, str(code / "bench" / "bench_pages.py"), "--db", str(db),
                   "--modes", "agg", "--repeat", str(args.repeat), "--pages", page,
                   "--work", str(RESULTS / "baseline")]  # fmt: skip
        done = subprocess.run(command, env=env, cwd=code, capture_output=True, text=True)
        row = next((m for line in done.stdout.splitlines() if (m := _ROW.match(line))), None)
        if row and row.group(1) == page:
            found[page] = tuple(float(row.group(i)) for i in range(2, 6))  # type: ignore[assignment]
        else:
            error = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
            found[page] = f"failed: {error[:60]}"
    return found


def compare(
    db: Path,
    args: argparse.Namespace,
    results: dict[str, dict[str, Timing | str]],
    pages: list[str],
    target: float,
) -> None:
    """The baseline code's table beside this code's (agg mode), with cold and warm ratios."""
    base = baseline_timings(args.baseline_code, db, args)
    print(f"\n{db}: baseline code {args.baseline_code} against this checkout (agg), wall / CPU")
    print(f"{'page':<14}{'base cold':>16}{'base warm':>16}{'new cold':>16}{'new warm':>16}"
          f"{'cold base÷new':>15}{'warm base÷new':>15}")  # fmt: skip
    for page in pages:
        old, new = base.get(page, "failed: not run"), results[page].get("agg", "not timed")
        ratios = ""
        if not isinstance(old, str) and not isinstance(new, str):
            ratios = f"{old[0] / new[0]:>15.1f}{old[2] / new[2]:>15.1f}"
        mark = "met" if not isinstance(new, str) and new[0] <= target else "NOT MET"
        print(f"{page:<14}{_cells(old)}{_cells(new)}{ratios}   new cold ≤ {target:g} s: {mark}",
              flush=True)  # fmt: skip


def _check(app, page: str) -> None:  # type: ignore[no-untyped-def]
    """Raise unless the run drew the page itself, for someone: not an exception, not the
    sign-in form or the refusal to serve (a warehouse whose folder holds accounts, or whose
    audit log says it did, is not served to a session nobody signed in to, and timing that
    page would print a figure of a few milliseconds)."""
    from govdash.web.keys import PRINCIPAL_KEY

    if app.exception:
        raise RuntimeError(f"{page}: {app.exception[0].value}")
    if PRINCIPAL_KEY not in app.session_state:
        shown = [box.value for box in app.error] or ["the sign-in form"]
        raise RuntimeError(f"{page}: served to nobody signed in: {shown[0]}")


def time_page(db: Path, page: str, repeat: int) -> Timing:
    """(cold wall, cold CPU, best warm wall, its CPU) seconds for one page."""
    _clear()
    app = _app(db)
    cold, cold_cpu = _timed(app)  # the default page (overview), which builds the sidebar too
    if page != "overview":
        _clear()
        started, cpu = time.perf_counter(), time.process_time()
        app.switch_page(f"views/{page}.py").run()
        cold, cold_cpu = time.perf_counter() - started, time.process_time() - cpu
    _check(app, page)
    warm = min(_timed(app) for _ in range(repeat))
    return cold, cold_cpu, warm[0], warm[1]


def first_view(db: Path, page: str) -> tuple[float, float]:
    """(wall, CPU) seconds of `page`'s default view in a fresh session, results forgotten."""
    _clear()
    app = _app(db, params=False)
    started, cpu = time.perf_counter(), time.process_time()
    app.switch_page(f"views/{page}.py").run()
    spent = time.perf_counter() - started, time.process_time() - cpu
    _check(app, page)
    return spent


def first_visit(db: Path, pages: list[str], target: float) -> None:
    """`govdash warm` timed, then each page's default view computed and after the warm-up."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVDASH_")}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "govdash", "warm", "--db", str(db)], env=env,
                          cwd=ROOT, capture_output=True, text=True)  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    print(f"\ngovdash warm (after a load): {time.perf_counter() - started:.1f} s wall, "
          f"{cpu:.1f} s CPU, exit {done.returncode}: {done.stdout.strip().splitlines()[-1:]}")  # fmt: skip
    print(f"{'page':<14}{'computed':>16}{'after warm':>16}{'CPU ratio':>11}   (default view)")
    for page in pages:
        with _on_disk(False):
            computed = first_view(db, page)
        with _on_disk(True):
            warmed = first_view(db, page)
        mark = "met" if warmed[0] <= target else "NOT MET"
        print(f"{page:<14}{computed[0]:>8.2f}/{computed[1]:<7.2f}{warmed[0]:>8.2f}/"
              f"{warmed[1]:<7.2f}{computed[1] / max(warmed[1], 1e-9):>11.1f}"
              f"   after warm ≤ {target:g} s: {mark}", flush=True)  # fmt: skip


def baseline(repeat: int) -> float:
    """AppTest's own cost of running a near-empty script."""
    from streamlit.testing.v1 import AppTest

    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "empty.py"
        script.write_text("import streamlit as st\nst.title('x')\n", encoding="utf-8")
        app = AppTest.from_file(str(script))
        app.run()
        runs = []
        for _ in range(repeat):
            started = time.perf_counter()
            app.run()
            runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def host_speed(repeat: int) -> tuple[float, float]:
    """This machine's speed at what pages do, best of `repeat`: (seconds to argsort 2M int64
    and factorize 2M names of 20,000; seconds of a 2M-step Python loop). The same host has
    run the same page at twice the time hours apart; compare page figures from different
    runs only where these agree."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(2026)
    keys = rng.integers(0, 1 << 40, 2_000_000)
    names = pd.Series(np.array([f"小区{i:05d}" for i in range(20_000)], dtype=object)[
        rng.integers(0, 20_000, 2_000_000)])  # fmt: skip
    numeric, python = [], []
    for _ in range(max(1, repeat)):
        started = time.perf_counter()
        np.argsort(keys)
        pd.factorize(names)
        numeric.append(time.perf_counter() - started)
        started = time.perf_counter()
        total = 0
        for i in range(2_000_000):
            total += i
        python.append(time.perf_counter() - started)
    return min(numeric), min(python)


def demo_warehouse(tickets: int) -> Path:
    """A `govdash demo --tickets N` warehouse under RESULTS (built once, then reused)."""
    folder = RESULTS / f"pages-{tickets}"
    db = folder / "warehouse.duckdb"
    if not db.exists() and not _is_lake(db):
        folder.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("GOVDASH_")}
        env["GOVDASH_DB"] = str(db)
        command = [sys.executable, "-m", "govdash", "demo", "--tickets", str(tickets),
                   "--out", str(folder / "files")]  # fmt: skip
        subprocess.run(command, check=True, env=env, cwd=ROOT)
    return db


def _is_lake(db: Path) -> bool:
    from govdash.core.warehouse import lake_of

    return lake_of(db).current_snapshot() is not None


def _read(db: Path):  # type: ignore[no-untyped-def]
    """The warehouse read-only: a DuckLake at its current snapshot, or an old single file."""
    import duckdb

    from govdash.core.warehouse import connect_readonly

    if _is_lake(db):
        return connect_readonly(db)
    return duckdb.connect(str(db.resolve()), read_only=True)


def with_aggregates(db: Path) -> Path:
    """The warehouse itself when it holds current aggregates, else a copy in which the
    loader's full build made them (printed with its cost)."""
    import duckdb

    from govdash.analytics.queries.aggregated import aggregates_ready
    from govdash.etl import aggregates
    from govdash.etl.load import ensure_schema

    con = _read(db)
    try:
        ready = aggregates_ready(con)
    except duckdb.Error:
        ready = False
    finally:
        con.close()
    if ready or _is_lake(db):  # a lake's loads build its aggregates
        return db
    copy = RESULTS / f"{db.stem}-agg.duckdb"
    if not copy.exists():
        RESULTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(db.resolve(), copy)
        con = duckdb.connect(str(copy), config={"memory_limit": "1024MB",
                                                "preserve_insertion_order": False})  # fmt: skip
        con.execute("SET enable_progress_bar = false")
        started, cpu = time.perf_counter(), time.process_time()
        ensure_schema(con)
        aggregates.build_all(con)
        con.execute("CHECKPOINT")
        con.close()
        print(f"built aggregates in a copy, {copy}: "
              f"{time.perf_counter() - started:.1f} s wall, {time.process_time() - cpu:.1f} s CPU")  # fmt: skip
    return copy


def main() -> None:
    global RESULTS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, action="append", default=[])
    parser.add_argument("--tickets", type=int, action="append", default=[])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pages", nargs="+", default=list(PAGES))
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--work", type=Path, default=RESULTS, help="where built warehouses go")
    parser.add_argument("--baseline-code", type=Path, help="a checkout to time beside this one")
    parser.add_argument("--memory-gb", type=float, help="cap the address space (GiB)")
    parser.add_argument("--first-visit", action="store_true",
                        help="time govdash warm and each page's first view after it")  # fmt: skip
    args = parser.parse_args()
    if args.memory_gb:  # inherited by the baseline's child processes
        limit = int(args.memory_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    RESULTS = args.work
    RESULTS.mkdir(parents=True, exist_ok=True)
    warehouses = [with_aggregates(db) for db in [*args.db, *map(demo_warehouse, args.tickets)]]
    if not warehouses:
        parser.error("give --db PATH or --tickets N")
    base = baseline(args.repeat)
    print(f"baseline (AppTest, trivial script): {base * 1000:.0f} ms")
    numeric, python = host_speed(args.repeat)
    print(f"host speed: argsort + factorize of 2M {numeric:.2f} s, 2M-step Python loop "
          f"{python:.2f} s (compare runs only where these agree)")  # fmt: skip
    available = [p for p in args.pages if (ROOT / "govdash" / "web" / "views" / f"{p}.py").exists()]
    for db in warehouses:

        con = _read(db)
        found = con.execute("SELECT count(*) FROM tickets").fetchone()
        con.close()
        count = int(found[0]) if found else 0
        with _on_disk(False):
            try:
                time_page(db, "overview", 1)  # imports and first-run costs, not counted
            except RuntimeError as error:
                sys.exit(f"{db}: {error}")
        print(f"\n{db} — {count:,} tickets, filters {PARAMS}; seconds, wall / CPU")
        opened = min(open_cost(db) for _ in range(max(1, args.repeat)))
        print(f"opening a new snapshot (once per load and server process): "
              f"{opened[0]:.2f}/{opened[1]:.2f}")  # fmt: skip
        header = "".join(f"{m + ' cold':>16}{m + ' warm':>16}" for m in args.modes)
        print(f"{'page':<14}{header}{'cold raw÷agg':>14}")
        target = 1.0 if count < 5_000_000 else 2.0
        results: dict[str, dict[str, Timing | str]] = {}
        for page in available:
            figures: dict[str, Timing | str] = {}
            for mode in args.modes:
                with _mode(mode), _on_disk(False):
                    try:
                        figures[mode] = time_page(db, page, args.repeat)
                    except (RuntimeError, MemoryError) as error:
                        figures[mode] = f"failed: {str(error).splitlines()[0][:60]}"
            results[page] = figures
            cells = "".join(_cells(f) for f in figures.values())
            done = [f for f in figures.values() if not isinstance(f, str)]
            ratio = (
                f"{done[0][0] / done[1][0]:>14.1f}" if len(figures) == 2 and len(done) == 2 else ""
            )
            last = figures[args.modes[-1]]
            mark = "NOT MET" if isinstance(last, str) or last[0] > target else "met"
            print(f"{page:<14}{cells}{ratio}   {args.modes[-1]} cold ≤ {target:g} s: {mark}",
                  flush=True)  # fmt: skip
        if args.baseline_code:
            compare(db, args, results, available, target)
        if args.first_visit:
            first_visit(db, available, target)


if __name__ == "__main__":
    main()
