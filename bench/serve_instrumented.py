"""`govdash serve` with the garbage collector's work on record (bench_concurrency.py --gc-stats).

Runs exactly what `python -m govdash serve ARGS` runs, in this process, after installing a
`gc.callbacks` hook that adds up the CPU time (the collecting thread's) of each generation's collections. On SIGUSR1 it writes
those totals, the collections counted by `gc.get_stats()`, the objects the collector tracks
(`len(gc.get_objects())`) and the frozen ones to the JSON file named by GOVDASH_BENCH_GC_FILE.

    GOVDASH_BENCH_GC_FILE=/tmp/gc.json python bench/serve_instrumented.py serve --db … --port …

GOVDASH_BENCH_GC_FREEZE=1 imports what the pages import and calls `gc.freeze()` before serving;
GOVDASH_BENCH_GC_THRESHOLD="700,10,10" sets the collector's thresholds. Both were measured for
the README's "How many users one server holds"; neither helped enough to keep in the product.
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


def _preload_and_freeze() -> None:
    """Import the modules app.py and the page scripts import (read from their source), collect,
    and move every object alive out of the collector's sight."""
    import ast
    import contextlib
    import importlib

    web = Path(__file__).resolve().parent.parent / "govdash" / "web"
    names: set[str] = set()
    for script in [web / "app.py", *sorted((web / "views").glob("*.py"))]:
        for node in ast.walk(ast.parse(script.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module)
    for name in sorted(names):
        with contextlib.suppress(Exception):
            importlib.import_module(name)
    gc.collect()
    gc.freeze()


def main() -> int:
    if os.environ.get("GOVDASH_BENCH_GC_FREEZE") == "1":
        _preload_and_freeze()
    threshold = os.environ.get("GOVDASH_BENCH_GC_THRESHOLD")
    if threshold:
        gc.set_threshold(*(int(part) for part in threshold.split(",")))
    gc.callbacks.append(_on_gc)
    signal.signal(signal.SIGUSR1, _write)
    from govdash.cli import main as govdash

    return govdash(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
