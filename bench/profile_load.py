"""Where a load's time goes: CPU and wall seconds per phase of `govdash load`, in one process.

    .venv/bin/python bench/profile_load.py FILE [--memory-mb N] [--plan]

Phases: reading and staging (of which the SHA-256 and the inserts of the staged parts),
cleaning (each statement of the Cleaner), duplicates, notes, upsert, derived fields (each step)
and the stored figures. With --plan, the cleaning statement is also EXPLAINed (planning only)
and its hash joins counted: DuckDB 1.5 planned every IN list of six or more constants as a
join of its own, which made the statement slow to run and hungry for memory on any file.
The figures are measured, not asserted; CPU seconds (user + system, all threads) say more than
wall seconds on a shared machine. Run it with another venv's python to profile another DuckDB.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import resource
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

from govdash.core.config import load_config
from govdash.etl import aggregates, derive
from govdash.etl import clean as clean_module
from govdash.etl import load as load_module

Totals = defaultdict[str, list[float]]


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _timed(totals: Totals, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    def run(*args: Any, **kwargs: Any) -> Any:
        cpu, wall = _cpu(), time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            entry = totals[name]
            entry[0] += _cpu() - cpu
            entry[1] += time.perf_counter() - wall
            entry[2] += 1

    return run


class _Statements:
    """The cleaner's connection, timing each statement (and EXPLAINing the big one)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, totals: Totals, plan: bool) -> None:
        self._con, self._totals, self._plan = con, totals, plan

    def execute(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        label = "  clean: " + " ".join(sql.split()[:6])[:60]
        if self._plan and sql.lstrip().startswith("CREATE OR REPLACE TEMP TABLE parsed_"):
            query = sql.split(" AS\n", 1)[1]
            explained = _timed(self._totals, "  clean: EXPLAIN (planning only)", self._con.execute)
            text = "\n".join(str(row[1]) for row in explained("EXPLAIN " + query, *args).fetchall())
            joins = len(re.findall(r"HASH_JOIN|Hash Join", text))  # 1.5 and 2.0 spellings
            print(f"cleaning plan: {joins} hash joins")
        return _timed(self._totals, label, self._con.execute)(sql, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--memory-mb", type=int, help="the loader's memory limit (config default)")
    parser.add_argument("--plan", action="store_true", help="EXPLAIN the cleaning statement too")
    args = parser.parse_args()

    totals: Totals = defaultdict(lambda: [0.0, 0.0, 0])
    load, cleaner = load_module, clean_module.Cleaner
    load._stage_one = _timed(totals, "stage (read)", load._stage_one)  # type: ignore[assignment]
    load.file_sha256 = _timed(totals, "  sha256", load.file_sha256)  # type: ignore[assignment]
    load._stage_part = _timed(totals, "  insert parts", load._stage_part)  # type: ignore[assignment]
    original_clean = cleaner.clean

    def clean(
        self: clean_module.Cleaner, kind: str, stage: str, present: set[str], *rest: Any
    ) -> None:
        con = self.con
        self.con = _Statements(con, totals, args.plan)  # type: ignore[assignment]
        try:
            _timed(totals, "clean", original_clean)(self, kind, stage, present, *rest)
        finally:
            self.con = con

    cleaner.clean = clean  # type: ignore[method-assign]
    cleaner.separate_duplicates = _timed(totals, "duplicates", cleaner.separate_duplicates)  # type: ignore[method-assign]
    cleaner.collect_notes = _timed(totals, "notes", cleaner.collect_notes)  # type: ignore[method-assign]
    for kind, upsert in list(load.UPSERTS.items()):
        load.UPSERTS[kind] = _timed(totals, f"upsert {kind}", upsert)
    load._record_rejections = _timed(totals, "record rejections", load._record_rejections)  # type: ignore[assignment]
    derive.derive = _timed(totals, "derived fields", derive.derive)  # type: ignore[assignment]
    for step in ("_fill_places", "_as_of", "_statuses", "_repeats"):
        setattr(derive, step, _timed(totals, f"  derive.{step}", getattr(derive, step)))
    aggregates.refresh = _timed(totals, "stored figures", aggregates.refresh)  # type: ignore[assignment]

    config = load_config()
    if args.memory_mb:
        config = dataclasses.replace(config, memory_limit_mb=args.memory_mb)
    with tempfile.TemporaryDirectory(prefix="govdash-profile-") as folder:
        cpu, wall = _cpu(), time.perf_counter()
        report = load.load_paths(
            [args.file], Path(folder) / "warehouse.duckdb", config, keep_raw=False, fresh=True
        )
        cpu, wall = _cpu() - cpu, time.perf_counter() - wall
    print(
        f"duckdb {duckdb.__version__}, {args.file.name}, memory limit {config.memory_limit_mb} MB"
    )
    for file in report.files:
        print(
            f"  rows loaded {file.rows_loaded:,}, rejected {file.rows_rejected:,}, error {file.error}"
        )
    print(f"  {'CPU s':>8} {'wall s':>8}  calls  phase")
    for name, (phase_cpu, phase_wall, calls) in totals.items():
        print(f"  {phase_cpu:8.2f} {phase_wall:8.2f}  {int(calls):5}  {name}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  {cpu:8.2f} {wall:8.2f}         load_paths in all; peak RSS {peak:,.0f} MB")


if __name__ == "__main__":
    main()
