"""`govdash serve` with the garbage collector's work on record (bench_concurrency.py --gc-stats).

Runs exactly what `python -m govdash serve ARGS` runs, in this process, after installing a
`gc.callbacks` hook that adds up the time of each generation's collections. On SIGUSR1 it writes
those totals, the collections counted by `gc.get_stats()`, the objects the collector tracks
(`len(gc.get_objects())`) and the frozen ones to the JSON file named by GOVDASH_BENCH_GC_FILE.

    GOVDASH_BENCH_GC_FILE=/tmp/gc.json python bench/serve_instrumented.py serve --db … --port …

GOVDASH_BENCH_NO_FREEZE=1 turns `gc.freeze()` into a no-op first, to measure the server without
it (serve.py freezes the objects alive after start-up).
"""

from __future__ import annotations

import gc
import json
import os
import signal
import sys
import time
from pathlib import Path

seconds = [0.0, 0.0, 0.0]
_started: dict[int, float] = {}


def _on_gc(phase: str, info: dict[str, int]) -> None:
    generation = info["generation"]
    if phase == "start":
        _started[generation] = time.perf_counter()
    elif generation in _started:
        seconds[generation] += time.perf_counter() - _started.pop(generation)


def _write(signum: int, frame: object) -> None:
    report = {
        "gc_seconds": seconds,
        "collections": [stats["collections"] for stats in gc.get_stats()],
        "tracked_objects": len(gc.get_objects()),
        "frozen_objects": gc.get_freeze_count(),
    }
    target = Path(os.environ["GOVDASH_BENCH_GC_FILE"])
    scratch = target.with_suffix(".tmp")
    scratch.write_text(json.dumps(report), encoding="utf-8")
    os.replace(scratch, target)


def main() -> int:
    if os.environ.get("GOVDASH_BENCH_NO_FREEZE") == "1":
        gc.freeze = lambda: None  # type: ignore[assignment]
    gc.callbacks.append(_on_gc)
    signal.signal(signal.SIGUSR1, _write)
    from govdash.cli import main as govdash

    return govdash(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
