"""Readers in several processes and threads, through the app's read path, while loads publish
new snapshots in another process and one load is killed: no read error, no torn state."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from govdash.core.warehouse import current_snapshot
from tests.conftest import snapshot, ticket_row, ticket_sheet, write_csv
from tests.etl.test_atomicity import PROJECT, _load_started, cli_env, generated_tickets_csv

BASELINE = 3
LOADS = [10, 20, 30]  # tickets per file, each a new set of ids
READER_PROCESSES = 2
THREADS_PER_READER = 2

LOADER = """
import sys
from pathlib import Path
from govdash.etl.load import load_paths
from govdash.core.config import load_config
db = Path(sys.argv[1])
for name in sys.argv[2:]:
    report = load_paths([Path(name)], db, load_config())
    assert report.ok, report.files[0].error
"""


def _states() -> set[tuple[int, int, int, int]]:
    """Every state a reader may see: the baseline, then after each load (computed here)."""
    states = set()
    tickets = BASELINE
    for batches, added in enumerate([0, *LOADS], start=1):
        tickets += added
        states.add((tickets, tickets, batches, tickets))
    return states


def _wait_for(condition, what: str, limit: float = 120) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.01)


def test_readers_never_fail_nor_see_a_torn_warehouse_while_loads_run_and_die(tmp_path, load):
    base = write_csv(tmp_path / "in" / "base.csv",
                     ticket_sheet(*(ticket_row(f"BASE-{i}") for i in range(BASELINE))), "utf-8")  # fmt: skip
    report, db = load(base)
    assert report.ok
    files = [
        write_csv(tmp_path / "in" / f"load{n}.csv",
                  ticket_sheet(*(ticket_row(f"L{n}-{i:03d}") for i in range(count))), "utf-8")
        for n, count in enumerate(LOADS)
    ]  # fmt: skip
    big = generated_tickets_csv(tmp_path / "in" / "big.csv", 50_000)
    stop = tmp_path / "stop"
    outs = [tmp_path / f"reader{i}.json" for i in range(READER_PROCESSES)]
    env = {**cli_env(), "PYTHONPATH": str(PROJECT)}
    readers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.etl.concurrency_reader", str(db), str(stop), str(out),
             str(THREADS_PER_READER)],
            cwd=PROJECT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        for out in outs
    ]  # fmt: skip
    try:
        _wait_for(lambda: all(Path(f"{out}.ready").exists() for out in outs), "readers ready")

        loader = subprocess.run(
            [sys.executable, "-c", LOADER, str(db), *map(str, files)],
            cwd=PROJECT, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert loader.returncode == 0, loader.stderr
        last_good = current_snapshot(db)
        before_kill = snapshot(db)

        killed = subprocess.Popen(
            [sys.executable, "-m", "govdash", "load", str(big), "--db", str(db)],
            cwd=PROJECT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            _wait_for(lambda: _load_started(db, 0) or killed.poll() is not None,
                      "the killed load under way")  # fmt: skip
            assert killed.poll() is None, "the load ended before it could be killed"
            os.kill(killed.pid, signal.SIGKILL)
        finally:
            killed.wait(timeout=60)
        assert killed.returncode == -signal.SIGKILL
        assert current_snapshot(db) == last_good
        assert snapshot(db) == before_kill
        final = max(_states())[0]
        _wait_for(lambda: all(Path(f"{out}.saw-{final}").exists() for out in outs),
                  "every reader process reading the last published snapshot")  # fmt: skip
    finally:
        stop.touch()
        for reader in readers:
            _, err = reader.communicate(timeout=120)
            assert reader.returncode == 0, err.decode()[-2000:]

    valid = _states()
    seen_versions = set()
    for out in outs:
        result = json.loads(out.read_text(encoding="utf-8"))
        assert result["errors"] == []
        assert result["reads"] > 0
        for cached, direct in result["states"]:
            assert tuple(cached) in valid and tuple(direct) in valid, (cached, direct)
            seen_versions.add(tuple(direct))
    assert max(valid) in seen_versions  # the last load was picked up without a restart
    assert len(seen_versions) >= 2
