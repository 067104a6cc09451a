"""Time every dashboard page (the page script run through AppTest), cold and warm, per warehouse.

Cold: caches cleared, a fresh AppTest. Warm: the same session run again (cached queries).
The baseline in the same run is the bare app with an empty page set-up cost: the time AppTest
takes to run a trivial script, so the ratios show what the pages add. Targets (issue 3):
every page under 1 s warm at demo size, under 2 s at 1M tickets.

    .venv/bin/python bench/bench_pages.py --db data/warehouse.duckdb [--db /path/to/1M.duckdb]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = ("overview", "response", "satisfaction", "effect", "evaluation", "data")
PARAMS = {"period": "year", "start": "2025-01-01", "end": "2025-12-31"}


def _app(db: Path):  # type: ignore[no-untyped-def]
    from streamlit.testing.v1 import AppTest

    os.environ["GOVDASH_DB"] = str(db)
    app = AppTest.from_file(str(ROOT / "govdash" / "web" / "app.py"), default_timeout=300)
    for key, value in PARAMS.items():
        app.query_params[key] = value
    return app


def _clear() -> None:
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()


def time_page(db: Path, page: str, repeat: int) -> tuple[float, float]:
    """(cold seconds, best warm seconds) for one page."""
    _clear()
    app = _app(db)
    started = time.perf_counter()
    app.run()  # the default page (overview), which also builds the sidebar and navigation
    cold = time.perf_counter() - started
    if page != "overview":
        _clear()
        started = time.perf_counter()
        app.switch_page(f"views/{page}.py").run()
        cold = time.perf_counter() - started
    if app.exception:
        raise RuntimeError(f"{page}: {app.exception[0].value}")
    warm = []
    for _ in range(repeat):
        started = time.perf_counter()
        app.run()
        warm.append(time.perf_counter() - started)
    return cold, min(warm)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, action="append", required=True)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    base = baseline(args.repeat)
    print(f"baseline (AppTest, trivial script): {base * 1000:.0f} ms")
    available = [p for p in PAGES if (ROOT / "govdash" / "web" / "views" / f"{p}.py").exists()]
    for db in args.db:
        import duckdb

        con = duckdb.connect(str(db.resolve()), read_only=True)
        tickets = con.execute("SELECT count(*) FROM tickets").fetchone()
        con.close()
        count = int(tickets[0]) if tickets else 0
        print(f"\n{db} — {count:,} tickets, filters {PARAMS}")
        print(f"{'page':<14}{'cold s':>9}{'warm s':>9}{'warm/base':>11}")
        for page in available:
            cold, warm = time_page(db, page, args.repeat)
            target = 1.0 if count < 500_000 else 2.0
            mark = "met" if warm < target else "NOT MET"
            print(f"{page:<14}{cold:>9.2f}{warm:>9.2f}{warm / base:>11.1f}   warm < {target:g} s: {mark}")


if __name__ == "__main__":
    main()
