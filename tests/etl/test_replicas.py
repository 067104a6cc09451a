"""Replicas: the warehouse's catalog in a real PostgreSQL (a throwaway cluster), its data files
on a shared path, one loader and reader processes as separate app replicas would be.

Readers must only ever see whole loads (every snapshot's ticket count equals the sum of its
batches' inserted rows, and the count a snapshot has is the one its loads give), a SIGKILLed
loader leaves the last snapshot, and the figures equal the embedded warehouse's on the same
files.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from govdash.analytics.queries.filters import Filters
from govdash.analytics.queries.tickets import ticket_kpis
from govdash.core.config import Config
from govdash.core.lake import CATALOG_ENV, DATA_PATH_ENV
from govdash.core.warehouse import connect_readonly, current_snapshot, lake_of
from govdash.etl.load import load_paths
from tests.analytics.warehouse_data import (
    REGISTER,
    REGISTER_HEADER,
    SURVEY_HEADER,
    TICKET_HEADER,
    generate_tickets,
    survey_rows,
)
from tests.conftest import write_csv, write_xlsx
from tests.etl.test_atomicity import generated_tickets_csv

PROJECT = Path(__file__).resolve().parents[2]
KEY = "a shared phone-hash key for both warehouses, 0123456789abcdef"
BATCH_ROWS = 3_000

READER = """
import json, sys, time
from pathlib import Path
from govdash.core.warehouse import lake_of

db, stop, out, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4]
lake = lake_of(db)
seen, errors, reads = {}, [], 0
con, pinned = None, None
SQL = '''SELECT (SELECT count(*) FROM tickets),
                (SELECT coalesce(sum(rows_inserted), 0) FROM load_batches),
                (SELECT count(*) FROM load_batches)'''
last = False
while True:
    last = stop.exists()  # one more read after the loader is done, then out
    try:
        n = lake.current_snapshot()
        if n is not None:
            if mode == "reattach" or n != pinned:  # a new app process / a new load seen
                if con is not None:
                    con.close()
                con, pinned = lake.reader(n), n
            tickets, inserted, batches = con.execute(SQL).fetchone()
            seen.setdefault(str(n), [tickets, inserted, batches])
            if seen[str(n)] != [tickets, inserted, batches]:
                errors.append(f"snapshot {n} changed: {seen[str(n)]} then {tickets}")
            if tickets != inserted:
                errors.append(f"torn snapshot {n}: {tickets} tickets, batches say {inserted}")
            reads += 1
    except Exception as error:
        errors.append(f"{type(error).__name__}: {error}")
    if last:
        break
    time.sleep(0.01)
Path(out).write_text(json.dumps({"seen": seen, "errors": errors, "reads": reads}))
"""


def _environment(pg_catalog: str, shared: Path) -> dict[str, str]:
    return {CATALOG_ENV: f"postgres:{pg_catalog}", DATA_PATH_ENV: str(shared)}


def _child_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVDASH_")}
    return {**env, **extra, "GOVDASH_HASH_KEY": KEY}


@pytest.fixture
def replica(
    tmp_path: Path, pg_catalog: str, config: Config, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, dict[str, str]]:
    """A replica installation: its local folder, and the environment naming the shared lake
    (set after `config`, which clears any GOVDASH_* setting from the environment)."""
    env = _environment(pg_catalog, tmp_path / "shared")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("GOVDASH_HASH_KEY", KEY)
    return tmp_path / "replica" / "warehouse.duckdb", env


def test_a_loader_and_two_reader_processes_see_only_whole_snapshots(
    replica: tuple[Path, dict[str, str]], tmp_path: Path, config: Config
) -> None:
    db, env = replica
    files = []
    for batch in range(4):  # distinct new tickets: every load inserts BATCH_ROWS
        path = generated_tickets_csv(tmp_path / "in" / f"all{batch}.csv", BATCH_ROWS)
        text = path.read_text(encoding="utf-8").replace("BIG", f"B{batch}-")
        path.write_text(text, encoding="utf-8")
        files.append(path)
    first = load_paths(files[:1], db, config, keep_raw=False)
    assert first.ok and first.snapshot == current_snapshot(db)
    assert not (db.parent / "warehouse.sqlite").exists()  # nothing of the lake is local
    stop = tmp_path / "stop"
    readers = [
        subprocess.Popen(
            [sys.executable, "-c", READER, str(db), str(stop), str(tmp_path / f"r{i}.json"), mode],
            cwd=PROJECT,
            env=_child_env(env),
        )
        for i, mode in enumerate(("keep", "reattach"))
    ]
    try:
        loader = subprocess.run(
            [sys.executable, "-m", "govdash", "load", *map(str, files[1:]), "--db", str(db)],
            cwd=PROJECT,
            env=_child_env(env),
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert loader.returncode == 0, loader.stdout + loader.stderr
    finally:
        stop.touch()
        for process in readers:
            process.wait(timeout=300)
    final = current_snapshot(db)
    assert final == (first.snapshot or 0) + 1  # the three files: one load, one snapshot
    for i in range(2):
        result = json.loads((tmp_path / f"r{i}.json").read_text())
        assert result["errors"] == []
        assert result["reads"] > 0
        # every snapshot seen holds whole loads only: 1 file, then all 4
        allowed = {
            str(first.snapshot): [BATCH_ROWS, BATCH_ROWS, 1],
            str(final): [4 * BATCH_ROWS, 4 * BATCH_ROWS, 4],
        }
        assert {n: allowed.get(n) for n in result["seen"]} == result["seen"]
        assert str(final) in result["seen"]  # the last read came after the load
    messages = [(s.snapshot_id, s.message, s.extra.get("batches")) for s in lake_of(db).snapshots()]
    assert messages[-1] == (final, "load", [2, 3, 4])


def test_a_loader_killed_mid_load_leaves_the_last_snapshot(
    replica: tuple[Path, dict[str, str]], tmp_path: Path, config: Config
) -> None:
    db, env = replica
    small = write_csv(
        tmp_path / "in" / "small.csv",
        [TICKET_HEADER, *[t.row() for t in generate_tickets(40)]],
        "utf-8-sig",
    )
    assert load_paths([small], db, config, keep_raw=False).ok
    published = current_snapshot(db)
    with connect_readonly(db) as con:
        before = con.execute("SELECT count(*), sum(hash(ticket_id)) FROM tickets").fetchone()
    shared = tmp_path / "shared"
    files_before = len(list(shared.rglob("*.parquet")))
    big = generated_tickets_csv(tmp_path / "in" / "big.csv", 200_000)
    # DuckDB 1.5.5 cleans 200k rows in more than the default 1 GB: the killed loader gets 3 GB
    roomy = tmp_path / "roomy.toml"
    roomy.write_text("[loader]\nmemory_limit_mb = 3072\n", encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, "-m", "govdash", "load", str(big), "--db", str(db)],
        cwd=PROJECT,
        env={**_child_env(env), "GOVDASH_CONFIG": str(roomy)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 600
        # the load's transaction has written Parquet files to the shared path, not committed
        while len(list(shared.rglob("*.parquet"))) <= files_before:
            assert process.poll() is None, "the load ended before it could be killed"
            assert time.monotonic() < deadline, "the moment to kill never came"
            time.sleep(0.005)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert current_snapshot(db) == published
    with connect_readonly(db) as con:
        assert con.execute("SELECT count(*), sum(hash(ticket_id)) FROM tickets").fetchone() == before
    more = generated_tickets_csv(tmp_path / "in" / "more.csv", 50)
    assert load_paths([more], db, config, keep_raw=False).ok  # the next loader is fine
    assert current_snapshot(db) == (published or 0) + 1
    with connect_readonly(db) as con:
        assert con.execute("SELECT count(*) FROM tickets").fetchone() == (before[0] + 50,)


def _files(folder: Path) -> list[Path]:
    tickets = generate_tickets()
    return [
        write_xlsx(folder / "台账.xlsx", {"台账": [REGISTER_HEADER, *[list(r) for r in REGISTER]]}),
        write_csv(folder / "工单.csv", [TICKET_HEADER, *[t.row() for t in tickets]], "utf-8-sig"),
        write_xlsx(folder / "问卷.xlsx", {"问卷": [SURVEY_HEADER, *survey_rows()]}),
    ]


CONTENT = {
    "tickets": "SELECT * EXCLUDE (batch_id) FROM tickets ORDER BY ticket_id",
    "compounds": "SELECT * EXCLUDE (batch_id) FROM compounds ORDER BY ALL",
    "survey_responses": "SELECT * EXCLUDE (batch_id) FROM survey_responses ORDER BY ALL",
    "survey_answers": "SELECT * FROM survey_answers ORDER BY ALL",
    "rejected_rows": "SELECT * FROM rejected_rows ORDER BY ALL",
    "load_batches": "SELECT * EXCLUDE (loaded_at, loaded_by) FROM load_batches ORDER BY ALL",
    "as_of": "SELECT value FROM warehouse_info WHERE key = 'as_of'",
}


def _content(db: Path, snapshot: int | None = None) -> dict[str, list[tuple]]:
    with connect_readonly(db, snapshot) as con:
        return {name: con.execute(sql).fetchall() for name, sql in CONTENT.items()}


def test_the_figures_equal_the_embedded_warehouses_on_the_same_files(
    replica: tuple[Path, dict[str, str]],
    tmp_path: Path,
    config: Config,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db, env = replica
    files = _files(tmp_path / "in")
    assert load_paths(files[:2], db, config, keep_raw=False).ok
    assert load_paths(files[2:], db, config, keep_raw=False).ok
    on_postgres = _content(db)
    exported_at = current_snapshot(db)
    year = Filters.for_year(2025)
    with connect_readonly(db) as con:
        kpis_postgres = ticket_kpis(con, year, config)

    with monkeypatch.context() as local:  # the same files into the embedded default
        for name in env:
            local.delenv(name)
        embedded = tmp_path / "embedded" / "warehouse.duckdb"
        assert load_paths(files[:2], embedded, config, keep_raw=False).ok
        assert load_paths(files[2:], embedded, config, keep_raw=False).ok
        assert (embedded.parent / "warehouse.sqlite").is_file()
        assert _content(embedded) == on_postgres
        with connect_readonly(embedded) as con:
            assert ticket_kpis(con, year, config) == kpis_postgres
    assert on_postgres["tickets"] and on_postgres["survey_answers"] and on_postgres["compounds"]

    # An export made at `exported_at`, reproduced after another load changed the warehouse.
    later = write_csv(
        tmp_path / "in" / "later.csv",
        [TICKET_HEADER, *[t.row() for t in generate_tickets(30, seed=99)]],
        "utf-8-sig",
    )
    assert load_paths([later], db, config, keep_raw=False).ok
    assert current_snapshot(db) == (exported_at or 0) + 1
    assert _content(db) != on_postgres
    assert _content(db, exported_at) == on_postgres
    with connect_readonly(db, exported_at) as con:
        assert ticket_kpis(con, year, config) == kpis_postgres
