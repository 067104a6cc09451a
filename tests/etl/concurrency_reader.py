"""A dashboard-like reader process for the concurrency test: threads query the warehouse the
way the app does (govdash.web.cache) until told to stop, and record what they saw.

Run as `python -m tests.etl.concurrency_reader DB STOP_FILE OUT_FILE THREADS`.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import duckdb


def consistency(con: duckdb.DuckDBPyConnection) -> tuple[int, int, int, int]:
    """(tickets, tickets the batches say they inserted, batches, batch rows) of one version."""
    row = con.execute(
        """SELECT (SELECT count(*) FROM tickets),
                  (SELECT coalesce(sum(rows_inserted), 0) FROM load_batches),
                  (SELECT count(*) FROM load_batches),
                  (SELECT count(*) FROM tickets t JOIN load_batches b USING (batch_id))"""
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2]), int(row[3])


def main(db: str, stop_file: str, out_file: str, threads: int) -> None:
    os.environ["GOVDASH_DB"] = db
    import streamlit as st
    from streamlit.logger import set_log_level

    # Outside a server every session-state read from a thread logs a warning; the test reads
    # stderr only at the end, so a full pipe would stall this process.
    set_log_level("error")

    from govdash.core.access import Principal, Scope
    from govdash.core.lake import cursor as lake_cursor
    from govdash.web import cache  # the app's read path: version-keyed connection and results

    # The query gate wants a signed-in principal, as a dashboard session has (govdash/web/auth.py).
    st.session_state["principal"] = Principal("reader", "admin", Scope.district())

    from tests.etl.concurrency_reader import consistency as importable_consistency

    seen: list[Any] = []
    errors: list[str] = []
    lock = threading.Lock()

    def poll() -> None:
        reads = 0
        while not Path(stop_file).exists():
            try:
                # Cached per version, as the pages read (by the function's importable name:
                # run with -m this module is __main__, whose functions the cache refuses) …
                cached = cache.query(importable_consistency)
                # … and uncached, on a fresh cursor of the same version-keyed connection.
                version = cache.warehouse_version()
                cursor = lake_cursor(cache._connection(version))
                try:
                    direct = consistency(cursor)
                finally:
                    cursor.close()
                with lock:
                    seen.append([list(cached), list(direct)])
                reads += 1
                if reads == 1:
                    Path(out_file + ".ready").touch()
                Path(f"{out_file}.saw-{direct[0]}").touch()  # the test waits for the last load
                time.sleep(0.002)  # leave the loader some of the two cores
            except Exception as error:  # every error is a failure of the test
                with lock:
                    errors.append(f"{type(error).__name__}: {error}")

    workers = [threading.Thread(target=poll) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    states = sorted({tuple(tuple(x) for x in pair) for pair in seen})
    Path(out_file).write_text(
        json.dumps({"reads": len(seen), "errors": errors[:20], "states": states}),
        encoding="utf-8",
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
