"""What asking for the lake's current snapshot and opening a reader pinned to it cost.

* ``remembered``: `Lake.current_snapshot()` while the catalog did not change (SQLite: two
  stats of the catalog and its WAL);
* ``asked``: the same with the remembered answer dropped, so the per-process DuckDB watcher
  asks the catalog (SQLite through DuckDB's sqlite extension, PostgreSQL by postgres_query);
* ``reader``: `Lake.reader(n)` (ATTACH … SNAPSHOT_VERSION n) and a first query, as a page
  process does once per new snapshot.

Minimum and median of the repeats, wall and CPU. Not a test: it asserts nothing.

    .venv/bin/python bench/bench_snapshot.py --db /path/to/data/warehouse.duckdb
    GOVDASH_CATALOG='postgres:…' GOVDASH_DATA_PATH=… .venv/bin/python bench/bench_snapshot.py --db x
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from govdash.core import lake as lake_module
from govdash.core.warehouse import lake_of


def _timed(step: Callable[[], object], repeat: int) -> tuple[float, float, float]:
    walls, cpus = [], []
    for _ in range(repeat):
        started, cpu = time.perf_counter(), time.process_time()
        step()
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu)
    return min(walls), statistics.median(walls), min(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--query", default="SELECT count(*) FROM tickets", help="the first query")
    args = parser.parse_args()
    lake = lake_of(args.db)
    snapshot = lake.current_snapshot()
    if snapshot is None:
        parser.error(f"no published snapshot at {lake.describe()}")

    def asked() -> object:
        lake_module._SEEN.clear()
        return lake.current_snapshot()

    def reader() -> object:
        con = lake.reader(snapshot)
        try:
            return con.execute(args.query).fetchone()
        finally:
            con.close()

    print(f"{lake.describe()}, snapshot #{snapshot}; seconds: min wall, median wall, min CPU")
    for name, step, repeat in (
        ("remembered", lake.current_snapshot, args.repeat),
        ("asked", asked, args.repeat),
        ("reader", reader, max(3, args.repeat // 20)),
    ):
        low, middle, cpu = _timed(step, repeat)
        print(f"{name:<11} {low * 1000:9.3f} ms {middle * 1000:9.3f} ms {cpu * 1000:9.3f} ms")


if __name__ == "__main__":
    main()
