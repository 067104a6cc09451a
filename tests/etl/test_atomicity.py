"""A load publishes all or nothing, survives SIGKILL, and never disturbs a running reader."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest

import govdash.etl.load as loader
from govdash.cli import main as cli_main
from govdash.core.lake import cursor as lake_cursor
from govdash.core.warehouse import connect_readonly, current_snapshot, lake_of
from tests.conftest import (
    TABLES,
    only_file,
    rows,
    snapshot,
    ticket_row,
    ticket_sheet,
    write_csv,
    write_xlsx,
)

PROJECT = Path(__file__).resolve().parents[2]
CONTENT_TABLES = [t for t in TABLES if t != "warehouse_info"]


def generated_tickets_csv(path: Path, count: int) -> Path:
    """A ticket CSV of `count` rows, one a minute from 2024-01-01, written fast by DuckDB."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    try:
        con.execute(
            f"""COPY (
            SELECT 'BIG' || lpad(CAST(i AS VARCHAR), 7, '0') AS "工单编号",
                ['水电维修', '电梯', '绿化养护', '环境卫生'][i % 4 + 1] AS "问题类别",
                '一般' AS "紧急程度", '小区' || (i % 50) AS "小区",
                strftime(TIMESTAMP '2024-01-01' + to_minutes(i), '%Y-%m-%d %H:%M') AS "受理时间",
                strftime(TIMESTAMP '2024-01-01' + to_minutes(i + 7), '%Y-%m-%d %H:%M')
                    AS "首次响应时间",
                '楼道灯不亮' AS "问题描述"
            FROM range({int(count)}) AS t(i)) TO '{path}' (HEADER, DELIMITER ',')"""
        )
    finally:
        con.close()
    return path


def cli_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("GOVDASH_")}


def catalog_digest(db: Path) -> str:
    """The catalog's committed content (SQLite's own dump: WAL pages included)."""
    import sqlite3

    with sqlite3.connect(lake_of(db).target) as catalog:
        return hashlib.sha256("\n".join(catalog.iterdump()).encode()).hexdigest()


def scratch_folders(db: Path) -> list[Path]:
    """The loader's private spill folders in the data folder (gone after every load)."""
    return sorted(db.parent.glob(".govdash-load-*"))


def data_files(db: Path) -> list[Path]:
    return sorted(Path(lake_of(db).data_path).rglob("*.parquet"))


def _first_load(tmp_path, load):
    path = write_xlsx(
        tmp_path / "in" / "1月.xlsx",
        {
            "1月": ticket_sheet(
                ticket_row("GD001"),
                ticket_row("GD002", closed=None),
                ticket_row("GD003", closed="2024-03-05 08:00"),  # rejected
            )
        },
    )
    report, db = load(path)
    assert only_file(report).rows_loaded == 2
    return db


def test_a_load_that_raises_midway_leaves_the_published_warehouse(tmp_path, load, monkeypatch):
    db = _first_load(tmp_path, load)
    published = current_snapshot(db)
    digest = catalog_digest(db)
    before = snapshot(db)

    def broken_finalize(con, config):
        con.execute("DELETE FROM tickets")  # half the work done, then a crash
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(loader, "finalize", broken_finalize)
    second = write_xlsx(tmp_path / "in" / "2月.xlsx", {"2月": ticket_sheet(ticket_row("GD010"))})
    with pytest.raises(RuntimeError, match="disk on fire"):
        load(second)

    assert current_snapshot(db) == published
    assert catalog_digest(db) == digest  # the catalog is exactly as it was
    assert snapshot(db) == before
    assert scratch_folders(db) == []

    monkeypatch.undo()
    report, _ = load(second)
    assert report.ok
    assert rows(db, "SELECT ticket_id FROM tickets ORDER BY 1") == [
        ("GD001",),
        ("GD002",),
        ("GD010",),
    ]
    assert current_snapshot(db) == (published or 0) + 1
    assert scratch_folders(db) == []


def test_a_file_whose_write_fails_leaves_no_trace_and_the_next_file_loads(
    tmp_path, load, monkeypatch
):
    db = _first_load(tmp_path, load)
    before = snapshot(db, CONTENT_TABLES)
    original = loader.UPSERTS["survey"]
    calls = []

    def fail_first_time(con, config, batch_id):
        counts = original(con, config, batch_id)  # responses and answers written …
        calls.append(batch_id)
        if len(calls) == 1:
            raise RuntimeError("connection lost")  # … then the file fails
        return counts

    monkeypatch.setitem(loader.UPSERTS, "survey", fail_first_time)
    header = ["问卷编号", "调查批次", "小区", "总体满意度"]
    failing = write_csv(
        tmp_path / "in" / "问卷A.csv",
        [header, ["WJA1", "2024年度", "锦绣花园", 5], ["WJA2", "2024年度", "锦绣花园", 9]],
        "utf-8",
    )
    good = write_csv(
        tmp_path / "in" / "问卷B.csv", [header, ["WJB1", "2024年度", "翠竹苑", 4]], "utf-8"
    )

    report, _ = load(failing, good)

    assert not report.ok
    assert "问卷A.csv" in report.files[0].error
    assert "本文件未写入任何数据" in report.files[0].error
    assert report.files[1].error is None
    assert rows(db, "SELECT response_id FROM survey_responses") == [("WJB1",)]
    assert rows(db, "SELECT response_id, item, score FROM survey_answers") == [
        ("WJB1", "总体满意度", 4)
    ]
    assert rows(db, "SELECT file_name FROM load_batches ORDER BY batch_id") == [
        ("1月.xlsx",),
        ("问卷B.csv",),
    ]
    assert rows(db, "SELECT DISTINCT file_name FROM rejected_rows") == [("1月.xlsx",)]
    after = snapshot(db, ["tickets", "compounds", "evaluation_scores"])
    assert after == {k: before[k] for k in after}


def test_a_load_that_fails_is_not_replayed_by_rebuild(tmp_path, load, monkeypatch):
    db = _first_load(tmp_path, load)
    before = snapshot(db, ["tickets"])

    def broken_finalize(con, config):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(loader, "finalize", broken_finalize)
    second = write_xlsx(tmp_path / "in" / "2月.xlsx", {"2月": ticket_sheet(ticket_row("GD010"))})
    with pytest.raises(RuntimeError):
        load(second)
    monkeypatch.undo()

    assert cli_main(["rebuild", "--db", str(db)]) == 0
    assert snapshot(db, ["tickets"]) == before


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory):
    return generated_tickets_csv(tmp_path_factory.mktemp("big") / "big.csv", 300_000)


def _load_started(db: Path, files_before: int) -> bool:
    return bool(scratch_folders(db))


def _load_writing(db: Path, files_before: int) -> bool:
    """The load's transaction has written Parquet files (not yet committed)."""
    return len(data_files(db)) > files_before


@pytest.mark.parametrize(
    "moment",
    [_load_started, _load_writing],
    ids=["while-reading", "while-writing-the-new-snapshot"],
)
def test_a_load_killed_with_sigkill_leaves_the_old_warehouse(tmp_path, load, big_csv, moment):
    db = _first_load(tmp_path, load)
    published = current_snapshot(db)
    before = snapshot(db)
    files_before = len(data_files(db))

    process = subprocess.Popen(
        [sys.executable, "-m", "govdash", "load", str(big_csv), "--db", str(db)],
        cwd=PROJECT,
        env=cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 240
        while not moment(db, files_before):
            assert process.poll() is None, "the load ended before it could be killed"
            assert time.monotonic() < deadline, "the moment to kill never came"
            time.sleep(0.005)
        assert process.poll() is None, "the load ended before it could be killed"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert scratch_folders(db)  # the dead loader's spill folder is still there

    assert current_snapshot(db) == published
    assert snapshot(db) == before
    con = connect_readonly(db)
    try:
        assert con.execute("SELECT count(*) FROM tickets").fetchone() == (2,)
    finally:
        con.close()

    next_file = write_csv(tmp_path / "in" / "2月.csv", ticket_sheet(ticket_row("GD010")), "utf-8")
    report, _ = load(next_file)
    assert report.ok
    assert current_snapshot(db) == (published or 0) + 1
    assert rows(db, "SELECT ticket_id FROM tickets ORDER BY 1") == [
        ("GD001",),
        ("GD002",),
        ("GD010",),
    ]
    assert scratch_folders(db) == []  # the next load cleared the dead one's spill folder


def test_a_reader_keeps_working_while_a_load_publishes(tmp_path, load):
    db = _first_load(tmp_path, load)
    medium = generated_tickets_csv(tmp_path / "in" / "medium.csv", 10_000)
    reader = connect_readonly(db)
    errors: list[BaseException] = []
    counts: list[int] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            try:
                cursor = lake_cursor(reader)
                (count,) = cursor.execute(
                    "SELECT count(*) FROM tickets t JOIN load_batches b USING (batch_id)"
                ).fetchone()
                counts.append(count)
                cursor.close()
            except BaseException as error:
                errors.append(error)

    threads = [threading.Thread(target=poll) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "govdash", "load", str(medium), "--db", str(db)],
            cwd=PROJECT,
            env=cli_env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        stop.set()
        for thread in threads:
            thread.join()

    try:
        assert result.returncode == 0, result.stdout + result.stderr
        assert errors == []
        assert counts, "the reader never ran"
        assert set(counts) == {2}  # the open connection keeps the snapshot it opened
        # While the old connection still lives, a new one opens the new snapshot.
        fresh = connect_readonly(db)
        try:
            assert fresh.execute("SELECT count(*) FROM tickets").fetchone() == (10_002,)
            assert fresh.execute(
                "SELECT count(*) FROM tickets WHERE ticket_id LIKE 'BIG%'"
            ).fetchone() == (10_000,)
        finally:
            fresh.close()
        assert reader.execute("SELECT count(*) FROM tickets").fetchone() == (2,)
    finally:
        reader.close()


def test_two_loads_at_once_both_land(tmp_path, load):
    db = _first_load(tmp_path, load)
    files = [
        write_csv(
            tmp_path / "in" / f"{name}.csv",
            ticket_sheet(*(ticket_row(f"{name}-{i}") for i in range(3))),
            "utf-8",
        )
        for name in ("A", "B")
    ]

    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "govdash", "load", str(path), "--db", str(db)],
            cwd=PROJECT,
            env=cli_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for path in files
    ]
    for process in processes:
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err.decode()

    # The second writer waits for the first and starts from its snapshot: no lost update.
    assert rows(db, "SELECT left(ticket_id, 2), count(*) FROM tickets GROUP BY 1 ORDER BY 1") == [
        ("A-", 3),
        ("B-", 3),
        ("GD", 2),
    ]
    assert rows(db, "SELECT count(*) FROM load_batches") == [(3,)]
