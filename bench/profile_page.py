"""Where one page run's time goes: warm page runs (cached queries), or cold (--cold), under pyinstrument.

The page runs through AppTest in this process (its script thread is profiled), as bench_pages.py runs it; the first run fills
the caches and is not profiled, then --runs warm runs are. Prints pyinstrument's call tree
(frames under --min-share of the time hidden) and writes an HTML report beside the results.

    .venv/bin/python bench/profile_page.py --db /tmp/govdash-bench/demo/warehouse.duckdb --page response
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from pyinstrument import Profiler

ROOT = Path(__file__).resolve().parent.parent
YEAR_2025 = {"period": "year", "start": "2025-01-01", "end": "2025-12-31"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--page", default="overview", help="a file name under views/, no .py")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--all", action="store_true", help="every frame, library ones too")
    parser.add_argument(
        "--cold",
        action="store_true",
        help="clear the results and figures before each run (bench_pages.py's cold: the "
        "connection to the snapshot stays open)",
    )
    args = parser.parse_args()

    from streamlit.testing.v1 import AppTest

    from govdash.web import cache

    if args.cold:  # computed: not read from the results another process stored on disk
        cache.RESULTS_ON_DISK = False
    os.environ["GOVDASH_DB"] = str(args.db.resolve())
    app = AppTest.from_file(str(ROOT / "govdash" / "web" / "app.py"), default_timeout=300)
    for key, value in YEAR_2025.items():
        app.query_params[key] = value
    app.run()
    if args.page != "overview":
        app.switch_page(f"views/{args.page}.py").run()
    if app.exception:
        raise SystemExit(f"{args.page}: {app.exception[0].value}")

    # AppTest runs the page on a thread of its own: profile that thread's runs.
    from streamlit.testing.v1.local_script_runner import LocalScriptRunner

    profiler = Profiler(interval=0.001)
    run_thread = LocalScriptRunner._run_script_thread

    def profiled(runner: LocalScriptRunner) -> None:
        profiler.start()
        try:
            run_thread(runner)
        finally:
            profiler.stop()

    LocalScriptRunner._run_script_thread = profiled  # type: ignore[method-assign]
    for _ in range(args.runs):
        if args.cold:
            cache.forget_results()
        app.run()
    print(f"{args.page}: {args.runs} {'cold' if args.cold else 'warm'} runs")
    print(profiler.output_text(color=False, show_all=args.all, time="percent_of_total"))


if __name__ == "__main__":
    main()
