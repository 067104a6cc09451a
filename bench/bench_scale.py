"""Measure loads at city scale: a big CSV into a fresh warehouse, then 1,000 rows into it.

For each code tree given (``--code LABEL=DIR``; the default is this checkout as ``after``),
in a fresh subprocess each, under ``/usr/bin/time``:

1. ``bulk``: the CSV(s) loaded into a fresh warehouse (peak RSS, wall, CPU seconds);
2. ``small``: a 1,000-row CSV (700 new tickets in the newest month, 300 closing updates of
   open tickets, written from the warehouse itself) loaded into the warehouse of step 1,
   with the seconds spent copying the published file (copy-on-write publishing: DuckLake
   removes it) and in ``finalize`` (the derived fields) timed inside the load.

The table at the end puts the code trees side by side with their ratios. The machine is
shared, so CPU seconds are printed beside wall seconds. Not a test: it asserts nothing.

    .venv/bin/python bench/bench_scale.py --csv /work/scratch-lake/data/t1M.csv \
        --code before=/tmp/scale-main --code after=.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent

# Big files: the loader's own limits would refuse a 3.8 GB, 10M-row CSV.
CONFIG = """[loader]
max_upload_mb = 100000
max_rows_per_file = 100000000
"""

SMALL_COLUMNS = (
    "ticket_id, channel, request_type, category, priority, district, street, community, "
    "compound, grid, building, property_company, accepted_at, first_response_at, arrived_at, "
    "closed_at, status, is_valid_callback, is_contacted, is_resolved, callback_satisfaction, "
    "description, committed_hours"
)


def _one(args: argparse.Namespace) -> None:
    """Inside the measured subprocess: one load, with the copy and finalize timed."""
    import govdash.core.warehouse as warehouse
    import govdash.etl.load as loader
    from govdash.core.config import load_config

    spent = {"copy": 0.0, "finalize": 0.0}
    # A tree with copy-on-write publishing copies the published file (shutil.copyfile in
    # core/warehouse.py); the lake has no such copy (0 s).
    copying = getattr(warehouse, "shutil", None)
    copyfile = copying.copyfile if copying is not None else None
    finalize = loader.finalize

    def timed_copy(*a: Any, **k: Any) -> Any:
        started = time.perf_counter()
        try:
            return copyfile(*a, **k)
        finally:
            spent["copy"] += time.perf_counter() - started

    def timed_finalize(*a: Any, **k: Any) -> Any:
        started = time.perf_counter()
        try:
            return finalize(*a, **k)
        finally:
            spent["finalize"] += time.perf_counter() - started

    if copying is not None:
        copying.copyfile = timed_copy
    loader.finalize = timed_finalize  # type: ignore[assignment]
    started, cpu = time.perf_counter(), time.process_time()
    report = loader.load_paths(
        [Path(p) for p in args.files], Path(args.db), load_config(args.config), keep_raw=False
    )
    result = {
        "seconds": time.perf_counter() - started,
        "cpu": time.process_time() - cpu,
        "copy": spent["copy"],
        "finalize": spent["finalize"],
        "rows_loaded": sum(f.rows_loaded for f in report.files),
        "errors": [f.error for f in report.files if f.error],
        "module": loader.__file__,
    }
    print("RESULT " + json.dumps(result, ensure_ascii=False), flush=True)


def _measured(code: Path, files: list[Path], db: Path, config: Path, log: Path) -> dict[str, Any]:
    """Run one load in a fresh process under /usr/bin/time; its figures and the inner timings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVDASH_")}
    env["PYTHONPATH"] = str(code.resolve())
    command = ["/usr/bin/time", "-f", "TIME %e %U %S %M", sys.executable, __file__, "_one",
               "--db", str(db), "--config", str(config), *map(str, files)]  # fmt: skip
    with log.open("w") as out:
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=env, check=False)
    text = log.read_text(errors="replace")
    figures: dict[str, Any] = {"returncode": done.returncode, "log": str(log)}
    for line in text.splitlines():
        if line.startswith("TIME "):
            wall, user, system, kb = line.split()[1:5]
            figures.update(
                wall=float(wall), cpu=float(user) + float(system), peak_mb=int(kb) / 1024
            )
        elif line.startswith("RESULT "):
            figures.update(json.loads(line[len("RESULT ") :]))
    if done.returncode != 0:
        figures["tail"] = text.splitlines()[-5:]
    return figures


def write_small_csv(db: Path, path: Path, rows: int = 1000) -> dict[str, int]:
    """`rows` tickets from the warehouse: 70% new ones in its newest month (copies of stored
    ones an hour later), 30% open ones closed a day after their last step."""
    return _write_copies(
        db,
        path,
        rows,
        newest="date_trunc('month', max(accepted_at))",
        new_id="'BENCH'",
        shift="INTERVAL 1 HOUR",
        new_where="accepted_at >= $newest",
        open_where="TRUE",
    )


def write_day_csv(db: Path, path: Path, rows: int = 1000, day: int = 1) -> dict[str, int]:
    """A day's `rows` tickets: 70% new ones `day` days past the newest stored ticket (copies of
    the last 20 days' tickets, numbered after the city's ids), so the as-of time advances as in
    a daily load, and 30% closings of the newest open tickets. Ids keep the stored numbering
    (GD…), so the file's key range is the recent part of the warehouse, as a real day's is."""
    return _write_copies(
        db,
        path,
        rows,
        newest="max(accepted_at)",
        new_id=f"'GD9' || strftime($newest + INTERVAL {int(day)} DAY, '%Y%m%d')",
        shift=f"($newest - accepted_at) + INTERVAL {int(day)} DAY",
        new_where="accepted_at >= $newest - INTERVAL 20 DAY AND ticket_id LIKE 'GD%'",
        open_where="ticket_id LIKE 'GD%'",
    )


def _write_copies(
    db: Path,
    path: Path,
    rows: int,
    *,
    newest: str,
    new_id: str,
    shift: str,
    new_where: str,
    open_where: str,
) -> dict[str, int]:
    """A CSV of `rows` tickets: 70% copies of stored tickets matching `new_where` (`$newest`:
    the `newest` aggregate over all tickets), moved by `shift` and numbered `new_id` + a
    six-digit count; 30% the newest open tickets matching `open_where`, closed a day after
    their last step."""
    new, closing = rows * 7 // 10, rows - rows * 7 // 10
    con = _read(db)
    try:
        found = con.execute(f"SELECT {newest} FROM tickets").fetchone()
        con.execute(
            f"""COPY (
            SELECT * REPLACE ({new_id} || lpad(CAST(row_number() OVER () AS VARCHAR), 6, '0')
                       AS ticket_id,
                   accepted_at + {shift} AS accepted_at,
                   first_response_at + {shift} AS first_response_at,
                   arrived_at + {shift} AS arrived_at,
                   closed_at + {shift} AS closed_at)
            FROM (SELECT {SMALL_COLUMNS} FROM tickets
                  WHERE {new_where} ORDER BY hash(ticket_id) LIMIT {new})
            UNION ALL
            SELECT * REPLACE (greatest(accepted_at, first_response_at, arrived_at)
                   + INTERVAL 1 DAY AS closed_at, '已办结' AS status)
            FROM (SELECT {SMALL_COLUMNS} FROM tickets
                  WHERE is_open AND closed_at IS NULL AND {open_where}
                  ORDER BY accepted_at DESC LIMIT {closing})
            ) TO '{path}' (HEADER, DELIMITER ',')""",
            {"newest": found[0] if found else None},
        )
        counts = con.execute(f"SELECT count(*) FROM read_csv('{path}')").fetchone()
    finally:
        con.close()
    return {"rows": int(counts[0]) if counts else 0}


def _read(db: Path) -> Any:
    """The warehouse of either tree read-only: a DuckLake (this checkout's reader, pinned to
    its current snapshot) or a single published file."""
    import duckdb

    try:
        from govdash.core.warehouse import connect_readonly, lake_of
    except ImportError:  # run by a tree before the lake
        return duckdb.connect(str(db.resolve()), read_only=True)
    if lake_of(db).current_snapshot() is not None:
        return connect_readonly(db)
    return duckdb.connect(str(db.resolve()), read_only=True)


def split_by_month(csv: Path, folder: Path) -> list[Path]:
    """The CSV as one file per month of acceptance (written once, reused)."""
    import duckdb

    done = folder / ".done"
    if not done.exists():
        folder.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(config={"memory_limit": "1GB", "preserve_insertion_order": False})
        try:
            header = con.execute(
                f"SELECT * FROM read_csv('{csv}', all_varchar = true) LIMIT 0"
            ).description
            names = [column[0] for column in header]
            accepted = next(n for n in ("accepted_at", "受理时间") if n in names)
            con.execute(
                f"""COPY (SELECT *, substr("{accepted}", 1, 7) AS month
                    FROM read_csv('{csv}', all_varchar = true))
                TO '{folder}' (FORMAT csv, HEADER, PARTITION_BY (month), OVERWRITE_OR_IGNORE)"""
            )
        finally:
            con.close()
        done.touch()
    return sorted(folder.glob("month=*/*.csv"))


def _row(label: str, step: str, figures: dict[str, Any]) -> str:
    if "wall" not in figures:
        return (
            f"{label:<8} {step:<7} failed (exit {figures.get('returncode')}), see {figures['log']}"
        )
    ok = "" if figures.get("returncode") == 0 and not figures.get("errors") else "  FAILED"
    return (
        f"{label:<8} {step:<7} {figures['wall']:8.1f} {figures['cpu']:8.1f} "
        f"{figures['peak_mb']:9.0f} {figures.get('copy', 0):8.2f} {figures.get('finalize', 0):9.2f} "
        f"{figures.get('rows_loaded', 0):>11,}{ok}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--csv", type=Path, action="append", required=True, help="big CSV(s)")
    parser.add_argument("--code", action="append", default=[], help="LABEL=DIR of a code tree")
    parser.add_argument("--workdir", type=Path, help="keeps the warehouses (default: a temp dir)")
    parser.add_argument("--small-rows", type=int, default=1000)
    parser.add_argument("--skip-bulk", action="store_true", help="reuse the workdir's warehouses")
    parser.add_argument("--split-months", action="store_true", help="one file per month")
    parser.add_argument(
        "--small-shape",
        choices=("copies", "day"),
        default="copies",
        help="the small file: copies an hour later (write_small_csv) or a day's new tickets "
        "and closings (write_day_csv: the as-of time advances)",
    )
    args = parser.parse_args(argv)
    codes = [tuple(c.split("=", 1)) for c in args.code] or [("after", str(PROJECT_ROOT))]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="govdash-scale-"))
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "bench.toml"
    config.write_text(CONFIG, encoding="utf-8")
    results: dict[str, dict[str, dict[str, Any]]] = {}
    inputs: list[Path] = list(args.csv)
    if args.split_months:
        inputs = [f for csv in args.csv for f in split_by_month(csv, workdir / "split" / csv.stem)]
        print(f"{len(inputs)} monthly files", flush=True)
    for label, code in codes:
        folder = workdir / label
        db = folder / "data" / "warehouse.duckdb"
        if not args.skip_bulk:
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            bulk = _measured(Path(code), inputs, db, config, folder / "bulk.log")
            results.setdefault(label, {})["bulk"] = bulk
            print(_row(label, "bulk", bulk), flush=True)
        small_csv = folder / "small.csv"
        if db.exists() or db.with_suffix(".sqlite").exists():  # a file, or a lake's catalog
            write = write_day_csv if args.small_shape == "day" else write_small_csv
            write(db, small_csv, args.small_rows)
            small = _measured(Path(code), [small_csv], db, config, folder / "small.log")
            results.setdefault(label, {})["small"] = small
            print(_row(label, "small", small), flush=True)
    shape = f" as {len(inputs)} monthly files" if args.split_months else ""
    print(f"\ninput: {', '.join(map(str, args.csv))}{shape}; load average {os.getloadavg()[0]:.1f}")
    print(f"{'code':<8} {'step':<7} {'wall s':>8} {'CPU s':>8} {'peak MB':>9} {'copy s':>8} "
          f"{'finalize':>9} {'rows':>11}")  # fmt: skip
    for label, steps in results.items():
        for step, figures in steps.items():
            print(_row(label, step, figures))
    if len(codes) == 2:
        first, second = codes[0][0], codes[1][0]
        for step in ("bulk", "small"):
            a, b = results.get(first, {}).get(step, {}), results.get(second, {}).get(step, {})
            if "wall" in a and "wall" in b:
                print(
                    f"{step}: {second}/{first} wall {b['wall'] / a['wall']:.2f}×, "
                    f"CPU {b['cpu'] / a['cpu']:.2f}×, peak RSS {b['peak_mb'] / a['peak_mb']:.2f}×"
                )
    for label, _ in codes:
        small = results.get(label, {}).get("small", {})
        if small.get("seconds"):
            print(
                f"{label}: the publish copy is {small['copy']:.2f} s of the "
                f"{small['seconds']:.2f} s load of {small.get('rows_loaded', 0):,} rows "
                f"({small['copy'] / small['seconds']:.0%}), finalize {small['finalize']:.2f} s"
            )
    (workdir / "results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False))
    print(f"figures: {workdir / 'results.json'}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_one":
        inner = argparse.ArgumentParser()
        inner.add_argument("_one")
        inner.add_argument("--db", required=True)
        inner.add_argument("--config", required=True)
        inner.add_argument("files", nargs="+")
        _one(inner.parse_args())
    else:
        sys.exit(main())
