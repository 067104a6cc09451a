"""`govdash serve` with the garbage collector's work on record (bench_concurrency.py --gc-stats).

Runs exactly what `python -m govdash serve ARGS` runs, in this process, after installing a
`gc.callbacks` hook that adds up the CPU time (the collecting thread's) of each generation's collections. On SIGUSR1 it writes
those totals, the collections counted by `gc.get_stats()`, the objects the collector tracks
(`len(gc.get_objects())`) and the frozen ones to the JSON file named by GOVDASH_BENCH_GC_FILE.

    GOVDASH_BENCH_GC_FILE=/tmp/gc.json python bench/serve_instrumented.py serve --db … --port …

GOVDASH_BENCH_NO_FREEZE=1 turns `gc.freeze()` into a no-op first, to measure the server without
it (serve.py freezes the objects alive after start-up). GOVDASH_BENCH_GC_THRESHOLD="700,10,10"
sets the collector's thresholds and makes serve.py's own `gc.set_threshold` a no-op.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import sys
import time
from collections import Counter
from pathlib import Path

seconds = [0.0, 0.0, 0.0]
_started: dict[int, float] = {}


def _on_gc(phase: str, info: dict[str, int]) -> None:
    generation = info["generation"]
    if phase == "start":
        _started[generation] = time.thread_time()
    elif generation in _started:
        seconds[generation] += time.thread_time() - _started.pop(generation)


def _write(signum: int, frame: object) -> None:
    alive = gc.get_objects()
    kinds = Counter(f"{type(item).__module__}.{type(item).__qualname__}" for item in alive)
    report = {
        "top_types": kinds.most_common(12),
        "gc_seconds": seconds,
        "collections": [stats["collections"] for stats in gc.get_stats()],
        "tracked_objects": len(alive),
        "frozen_objects": gc.get_freeze_count(),
        "threshold": gc.get_threshold(),
    }
    target = Path(os.environ["GOVDASH_BENCH_GC_FILE"])
    scratch = target.with_suffix(".tmp")
    scratch.write_text(json.dumps(report), encoding="utf-8")
    os.replace(scratch, target)


def main() -> int:
    if os.environ.get("GOVDASH_BENCH_NO_FREEZE") == "1":
        gc.freeze = lambda: None  # type: ignore[assignment]
    threshold = os.environ.get("GOVDASH_BENCH_GC_THRESHOLD")
    if threshold:
        gc.set_threshold(*(int(part) for part in threshold.split(",")))
        gc.set_threshold = lambda *args: None  # type: ignore[assignment]
    gc.callbacks.append(_on_gc)
    signal.signal(signal.SIGUSR1, _write)
    from govdash.cli import main as govdash

    return govdash(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
