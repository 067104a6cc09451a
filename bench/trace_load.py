"""A load's memory over time, phase by phase: `govdash load FILE --timings` in a child process,
its RSS sampled every --every seconds beside the progress lines, and the peak at the end.

    .venv/bin/python bench/trace_load.py --db /tmp/t/data/warehouse.duckdb FILE [FILE ...] \
        [--config bench.toml] [--every 2]

Each line starts with the seconds since the start: `RSS <MB>` samples with the size of the
loader's scratch folders in the lake's data folder (`scratch <MB>`: its scratch database and
DuckDB's spill files, `.govdash-load-*`), and `| <line>` for the
loader's own output (the phases: reading, cleaning, writing, derived fields and stored
figures, publishing). Not a test: it asserts nothing. Session 8 found with it where a 10M-row
CSV's memory went (staging while reading, then the derived fields).
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path


def rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS"):
                    return int(line.split()[1]) / 1024
    except FileNotFoundError:
        return None
    return None


def scratch_mb(folder: Path) -> float:
    """The bytes of every loader scratch folder under `folder` (files vanish while walked)."""
    total = 0
    for scratch in folder.glob(".govdash-load-*"):
        for path in scratch.rglob("*"):
            with contextlib.suppress(FileNotFoundError):
                total += path.stat().st_size if path.is_file() else 0
    return total / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--config", type=Path)
    parser.add_argument("--every", type=float, default=2.0, help="seconds between samples")
    args = parser.parse_args()
    command = [sys.executable, "-m", "govdash", "load", *map(str, args.files),
               "--db", str(args.db), "--timings"]  # fmt: skip
    if args.config:
        command += ["--config", str(args.config)]
    started = time.monotonic()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = peak_scratch = 0.0
    # The scratch folders are in the lake's folder (Lake.scratch: beside the catalog).
    folders = {args.db.parent, *args.db.parent.glob("*")} if args.db.parent.exists() else set()

    def sample() -> None:
        nonlocal peak, peak_scratch
        while child.poll() is None:
            found = rss_mb(child.pid)
            scratch = sum(scratch_mb(f) for f in folders if f.is_dir())
            peak_scratch = max(peak_scratch, scratch)
            if found is not None:
                peak = max(peak, found)
                print(
                    f"{time.monotonic() - started:8.1f}s RSS {found:7.0f} MB"
                    f"  scratch {scratch:7.0f} MB",
                    flush=True,
                )
            time.sleep(args.every)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    assert child.stdout is not None
    for line in child.stdout:
        print(f"{time.monotonic() - started:8.1f}s | {line.rstrip()}", flush=True)
    child.wait()
    sampler.join(timeout=args.every + 1)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(
        f"exit {child.returncode}; {time.monotonic() - started:.1f} s; "
        f"CPU {usage.ru_utime + usage.ru_stime:.1f} s; peak RSS {peak:,.0f} MB; "
        f"peak scratch {peak_scratch:,.0f} MB"
    )


if __name__ == "__main__":
    main()
