"""A CSV read in parts (issue 15): rows, row numbers, rejections and duplicates come out as
the generated file says, whichever part a row falls in, and as a read in one part gives.

The parts are made small here (a few rows); in a load they are readers.CSV_CHUNK_ROWS rows.
"""

from __future__ import annotations

import codecs
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from govdash.core.config import Config
from govdash.etl import load, readers
from govdash.etl.clean import duplicate_reason
from govdash.etl.fields import TICKETS
from govdash.etl.load import FileReport, load_paths
from govdash.etl.readers import csv_parts, read_csv
from tests.conftest import rows, snapshot, text_hits, write_csv

CHUNK = 7  # rows per part; the first part is readers._HEAD_ROWS (64) rows
HEADER = [
    "工单编号",
    "问题类别",
    "紧急程度",
    "小区",
    "受理时间",
    "首次响应时间",
    "办结时间",
    "联系电话",
]
TITLE = ["2024年锦绣街道工单台账"]
BAD_DATE = "无法识别的受理时间（应为日期时间，如 2024-03-05 14:30）"
NO_ID = "缺少工单编号"
SHEET = "三月工单"
START = datetime(2024, 3, 1, 8, 0)


@dataclass
class Expected:
    """What the file holds, worked out as it is written (not by the loader's code)."""

    lines: list[Sequence[object]] = field(default_factory=list)  # one per line; [] = empty line
    loaded: dict[str, tuple[datetime, int]] = field(default_factory=dict)  # id → accepted, line
    rejected: set[tuple[int, str, str]] = field(default_factory=set)  # line, column, reason
    conflict: tuple[int, ...] = ()  # lines of the ID on two rows that disagree
    repeated: tuple[int, ...] = ()  # lines of the record listed twice
    phones: list[str] = field(default_factory=list)

    def add(self, row: Sequence[object]) -> int:
        self.lines.append(row)
        return len(self.lines)  # the line the row is written on


def tickets_file(data_rows: int, empty_line_at: int | None = None) -> Expected:
    """A title, a header, `data_rows` tickets, a footer. Among them: an impossible date and a
    missing ID in later parts, an ID on two disagreeing rows (first part and a later one),
    one record listed twice, and optionally an empty line (which Python's csv keeps)."""
    expected = Expected()
    expected.add(TITLE)
    expected.add(HEADER)
    conflict_lines: list[int] = []
    repeated_lines: list[int] = []
    for i in range(data_rows):
        if empty_line_at is not None and len(expected.lines) + 1 == empty_line_at:
            expected.add([])
        accepted = START + timedelta(hours=i)
        phone = f"1390{i:07d}"
        expected.phones.append(phone)
        ticket = f"GD{i:05d}"
        row: list[object] = [
            ticket,
            "水电维修" if i % 2 else "电梯",
            "一般",
            f"小区{i % 5}",
            accepted.strftime("%Y-%m-%d %H:%M"),
            (accepted + timedelta(minutes=10)).strftime("%Y-%m-%d %H:%M"),
            (accepted + timedelta(hours=5)).strftime("%Y-%m-%d %H:%M"),
            phone,
        ]
        line = len(expected.lines) + 1
        if i == 95:  # an impossible date, in a later part
            row[4] = "2024-02-30 10:00"
            expected.rejected.add((line, "受理时间", BAD_DATE))
        elif i == 170:
            row[0] = None
            expected.rejected.add((line, "工单编号", NO_ID))
        elif i in (37, 147):  # one ID, two acceptance times: two tickets, neither loads
            row[0] = "GD-DUP"
            conflict_lines.append(line)
            expected.rejected.add((line, "工单编号", duplicate_reason(TICKETS)))
        elif i in (66, 127):  # the same record twice (re-listed): loads once, the last row
            row[0] = "GD-SAME"
            row[4:7] = ["2024-05-01 08:00", "2024-05-01 08:30", "2024-05-01 12:00"]
            repeated_lines.append(line)
            expected.loaded["GD-SAME"] = (datetime(2024, 5, 1, 8, 0), line)
        else:
            expected.loaded[ticket] = (accepted, line)
        expected.add(row)
    expected.add(["合计", f"共{data_rows}条"])
    expected.conflict = tuple(conflict_lines)
    expected.repeated = tuple(repeated_lines)
    return expected


def write(path: Path, expected: Expected, encoding: str) -> Path:
    return write_csv(path, expected.lines, encoding)


@pytest.fixture
def small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readers, "CSV_CHUNK_ROWS", CHUNK)


def load_one(path: Path, db_path: Path, config: Config) -> FileReport:
    report = load_paths([path], db_path, config)
    assert len(report.files) == 1
    file = report.files[0]
    assert file.error is None, file.error
    return file


@pytest.fixture
def staged_parts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The row count of every part the loader stages, in order."""
    seen: list[int] = []
    stage_part = load._stage_part

    def counted(con: duckdb.DuckDBPyConnection, rows: load.StagedRows, table: pa.Table) -> int:
        seen.append(stage_part(con, rows, table))
        return seen[-1]

    monkeypatch.setattr(load, "_stage_part", counted)
    return seen


def check_warehouse(db_path: Path, expected: Expected) -> None:
    loaded = rows(db_path, "SELECT ticket_id, accepted_at, source_sheet, source_row FROM tickets")
    assert {t: (a, r) for t, a, _, r in loaded} == expected.loaded
    assert len(loaded) == len(expected.loaded)  # one row per ticket
    assert {s for _, _, s, _ in loaded} == {SHEET}
    found = rows(db_path, "SELECT row_number, column_name, reason, sheet FROM rejected_rows")
    assert {(r, c, why) for r, c, why, _ in found} == expected.rejected
    assert len(found) == len(expected.rejected)
    # Personal data: the phone numbers were read (caller_hash) but none is stored.
    assert text_hits(db_path, needles=expected.phones) == []
    hashed = rows(db_path, "SELECT count(caller_hash), count(DISTINCT caller_hash) FROM tickets")
    assert hashed == [(len(expected.loaded), len(expected.loaded))]


@pytest.mark.parametrize(
    ("encoding", "empty_line_at"),
    [
        pytest.param("utf-8-sig", None, id="utf8-bom"),
        pytest.param("gbk", None, id="gbk"),
        pytest.param("utf-8", 120, id="empty-line"),
    ],
)
def test_a_csv_in_many_parts_loads_every_row_where_the_file_has_it(
    tmp_path: Path,
    config: Config,
    small_parts: None,
    staged_parts: list[int],
    encoding: str,
    empty_line_at: int | None,
) -> None:
    expected = tickets_file(200, empty_line_at)
    path = write(tmp_path / f"{SHEET}.csv", expected, encoding)
    db_path = tmp_path / "chunked" / "warehouse.duckdb"
    file = load_one(path, db_path, config)
    # It was staged in parts: the first from the header (row 3) to row 64, then CHUNK rows
    # at a time, the last part what is left.
    rest = len(expected.lines) - 64
    assert staged_parts == [62] + [CHUNK] * (rest // CHUNK) + (
        [rest % CHUNK] if rest % CHUNK else []
    )
    check_warehouse(db_path, expected)
    duplicates = {d.key: d for d in file.duplicates}
    assert set(duplicates) == {"GD-DUP", "GD-SAME"}
    assert duplicates["GD-DUP"].conflict
    assert [row for _, row in duplicates["GD-DUP"].places] == list(expected.conflict)
    assert not duplicates["GD-SAME"].conflict
    assert [row for _, row in duplicates["GD-SAME"].places] == list(expected.repeated)


def test_parts_give_the_warehouse_one_part_gives(
    tmp_path: Path, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOVDASH_HASH_KEY", "one key for both warehouses")
    expected = tickets_file(150)
    path = write(tmp_path / f"{SHEET}.csv", expected, "gbk")
    whole = tmp_path / "whole" / "warehouse.duckdb"
    load_one(path, whole, config)
    monkeypatch.setattr(readers, "CSV_CHUNK_ROWS", CHUNK)
    chunked = tmp_path / "chunked" / "warehouse.duckdb"
    load_one(path, chunked, config)
    check_warehouse(whole, expected)
    ignored = {"loaded_at"}  # what a load stamps: its time
    for table in ("tickets", "rejected_rows"):
        columns = [c for (c,) in rows(whole, f"SELECT column_name FROM (DESCRIBE {table})")]
        kept = ", ".join(f'"{c}"' for c in columns if c not in ignored)
        assert snapshot(whole, [f"(SELECT {kept} FROM {table})"]) == snapshot(
            chunked, [f"(SELECT {kept} FROM {table})"]
        )


def test_parts_are_numbered_as_the_file_and_add_up_to_the_whole(tmp_path: Path) -> None:
    expected = tickets_file(120)
    path = write(tmp_path / "t.csv", expected, "utf-8-sig")
    parts = csv_parts(path, 10_000, "t", chunk_rows=CHUNK)
    pieces = [parts.head, *parts.rest]
    assert [p.table.num_rows for p in pieces[:2]] == [64, CHUNK]
    assert sum(p.table.num_rows for p in pieces) == len(expected.lines)
    line = 1
    for piece in pieces:
        assert piece.first_row == line
        for offset, cells in enumerate(piece.table.to_pylist()):
            written = expected.lines[line - 1 + offset]
            assert cells["c0"] == (None if written[0] is None else str(written[0]))
        line += piece.table.num_rows
    whole = read_csv(path, 10_000, "t").table
    assert whole.to_pylist() == [r for p in pieces for r in p.table.to_pylist()]


@pytest.mark.parametrize("empty_line", [False, True], ids=["duckdb", "python-csv"])
def test_a_file_that_stops_being_utf8_further_down_is_read_on_where_it_changed(
    tmp_path: Path, empty_line: bool
) -> None:
    """More than the 1 MB sample of UTF-8, then GBK lines (files pasted together). With an
    empty line the file is read by Python's csv (which keeps it), else by DuckDB."""
    lines = ["编号,小区,受理时间".encode()]
    expected: list[list[str | None]] = [["编号", "小区", "受理时间"]]
    for i in range(32_000):
        if empty_line and i == 10:
            lines.append(b"")
            expected.append([None, None, None])
        text = f"GD{i:06d},锦绣花园{i % 7},2024-03-01 08:00"
        gbk = 28_000 <= i < 28_010
        lines.append(text.encode("gbk" if gbk else "utf-8"))
        expected.append(list(text.split(",")))
    path = tmp_path / "mixed.csv"
    path.write_bytes(codecs.BOM_UTF8 + b"\r\n".join(lines) + b"\r\n")
    assert path.stat().st_size > (1 << 20)
    parts = csv_parts(path, 100_000, "mixed", chunk_rows=4096)
    pieces = [parts.head, *parts.rest]
    got = [[r.get("c0"), r.get("c1"), r.get("c2")] for p in pieces for r in p.table.to_pylist()]
    assert got == expected
    assert [p.first_row for p in pieces] == [1 + 4096 * k for k in range(len(pieces))]


def test_a_file_over_the_row_limit_further_down_is_refused_whole(
    tmp_path: Path, config: Config, small_parts: None
) -> None:
    small = dataclasses.replace(config, max_rows_per_file=150)
    db_path = tmp_path / "data" / "warehouse.duckdb"
    load_one(write(tmp_path / "first.csv", tickets_file(40), "utf-8-sig"), db_path, small)
    before = snapshot(db_path)
    path = write(tmp_path / f"{SHEET}.csv", tickets_file(200), "utf-8-sig")
    report = load_paths([path], db_path, small)
    error = report.files[0].error
    assert error is not None and "超过每个文件 150 行的上限" in error
    assert report.files[0].batch_id is None
    assert snapshot(db_path) == before  # the parts read before the refusal left nothing


def test_a_staged_part_is_let_go_once_it_is_in_the_table(tmp_path: Path, config: Config) -> None:
    """Staging runs inside the load's one transaction. Each part must be released as soon as it
    is inserted: a view registered and dropped there keeps its Arrow table until COMMIT, which
    held every part of a 10M-row CSV in memory at once (6.7 GB)."""
    import gc
    import weakref

    con = duckdb.connect(config={"temp_directory": str(tmp_path / "spill")})  # parts beside it
    rows = load._stage_table(con, TICKETS, config)
    con.execute("BEGIN")
    alive = []
    for start in (0, 3, 6):
        part = pa.table(
            {"ticket_id": [f"T{n}" for n in range(start, start + 3)], "_seq": [start] * 3}
        )
        assert load._stage_part(con, rows, part) == 3
        alive.append(weakref.ref(part))
        del part
    rows.ready()  # the last part's write done, the view over the parts created
    gc.collect()
    assert [ref() for ref in alive] == [None, None, None]
    assert rows.scratch.execute(
        f"SELECT count(*), min(ticket_id) FROM {rows.table}"
    ).fetchone() == (9, "T0")
    con.execute("COMMIT")
    rows.drop()


def test_staged_rows_are_dropped_before_the_load_commits(
    tmp_path: Path, config: Config, small_parts: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The staged rows live outside the load's lake transaction and are gone before its COMMIT:
    a table dropped inside that transaction stays (memory, then spill files) until the COMMIT,
    ~50 GB for a 50M-row file. While staged, the table is its own transaction's alone (never
    committed, so no other transaction's snapshot can keep it: a second connection does not
    see it); by finalize (every file written, before the COMMIT) that transaction is over (its
    cursor closed, the table rolled back) and the scratch database holds no staged table."""
    expected = tickets_file(200)
    path = write(tmp_path / f"{SHEET}.csv", expected, "utf-8")
    staged: list[load.StagedRows] = []
    stage_part = load._stage_part

    def staged_tables(con: duckdb.DuckDBPyConnection) -> list[tuple[str]]:
        other = con.cursor()  # another connection to the scratch database, in autocommit
        try:
            return other.execute(
                """SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()
                AND starts_with(table_name, 'gd_stage_')"""
            ).fetchall()
        finally:
            other.close()

    def recorded(con: duckdb.DuckDBPyConnection, rows: load.StagedRows, table: pa.Table) -> int:
        if rows not in staged:
            staged.append(rows)
        count = stage_part(con, rows, table)
        rows.ready()  # the parts written so far, and the view over them
        found = rows.scratch.execute(f"SELECT count(*) FROM {rows.table}").fetchone()
        assert found is not None and found[0] == rows.num_rows  # its own cursor sees them
        assert staged_tables(con) == []  # nobody else does
        return count

    seen: dict[str, object] = {}
    finalize = load.finalize

    def checked(con: duckdb.DuckDBPyConnection, config: Config) -> None:
        seen["tables"] = staged_tables(con)
        closed = []
        for one in staged:
            try:
                one.scratch.execute("SELECT 1")
                closed.append(False)
            except duckdb.ConnectionException:
                closed.append(True)
        seen["closed"] = closed
        finalize(con, config)

    monkeypatch.setattr(load, "_stage_part", recorded)
    monkeypatch.setattr(load, "finalize", checked)
    load_one(path, tmp_path / "warehouse.duckdb", config)
    assert len(staged) == 1  # one kind: tickets
    assert seen == {"tables": [], "closed": [True]}
    check_warehouse(tmp_path / "warehouse.duckdb", expected)


def test_cleaned_rows_are_a_scratch_file_not_kept_until_the_load_commits(
    tmp_path: Path, config: Config, small_parts: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cleaning writes its parsed rows to a Parquet file in the load's scratch folder, on
    the staged rows' own cursor, not to a table of the load's lake transaction (a table made
    there stays until its COMMIT, ~1 GB per million rows). While the file's rows are written,
    parsed_tickets is a view of that file holding every row the cleaning parsed (the ID on two
    disagreeing rows still in it, the re-listed record twice) and ok_tickets its good rows less
    the disagreeing ID; by finalize (before the COMMIT) the view and the file are gone, and the
    transaction made no parsed table at all."""
    expected = tickets_file(200)
    path = write(tmp_path / f"{SHEET}.csv", expected, "utf-8")
    seen: dict[str, object] = {}
    upsert = load.UPSERTS[TICKETS]

    def scratch_files(con: duckdb.DuckDBPyConnection) -> list[Path]:
        found = con.execute("SELECT current_setting('temp_directory')").fetchone()
        assert found is not None
        return sorted(Path(str(found[0])).parent.glob("*.parquet"))

    def temp_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
        found = con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE temporary ORDER BY table_name"
        ).fetchall()
        return [str(name) for (name,) in found]

    def watched(
        con: duckdb.DuckDBPyConnection, config: Config, batch_id: int
    ) -> tuple[int, int, int]:
        files = scratch_files(con)
        seen["files"] = len(files)
        seen["in file"] = duckdb.sql(
            f"SELECT count(*), count(DISTINCT ticket_id) FROM read_parquet('{files[0]}')"
        ).fetchone()
        seen["parsed is"] = con.execute(
            "SELECT count(*) FROM duckdb_views() WHERE temporary AND view_name = 'parsed_tickets'"
        ).fetchone()
        seen["ok"] = con.execute(
            "SELECT count(*), count(DISTINCT ticket_id), count(*) FILTER (ticket_id = 'GD-DUP') "
            "FROM ok_tickets"
        ).fetchone()
        seen["tables while writing"] = temp_tables(con)
        return upsert(con, config, batch_id)

    finalize = load.finalize

    def checked(con: duckdb.DuckDBPyConnection, config: Config) -> None:
        seen["files at finalize"] = scratch_files(con)
        seen["views at finalize"] = con.execute(
            "SELECT view_name FROM duckdb_views() WHERE temporary "
            "AND regexp_matches(view_name, '^(parsed|good|ok)_')"
        ).fetchall()
        seen["tables at finalize"] = temp_tables(con)
        finalize(con, config)

    monkeypatch.setitem(load.UPSERTS, TICKETS, watched)
    monkeypatch.setattr(load, "finalize", checked)
    load_one(path, tmp_path / "warehouse.duckdb", config)
    # Parsed: the 200 data rows (title, header and footer skipped): 2 rejected for their cells,
    # 2 with the disagreeing ID, 2 of the re-listed record; 197 distinct IDs (one missing).
    assert seen["files"] == 1
    assert seen["in file"] == (200, 197)
    assert seen["parsed is"] == (1,)  # a view (of the file), not a table
    # Good: 200 less the 2 rejected and the 2 disagreeing rows; the re-listed record twice.
    assert seen["ok"] == (196, 195, 0)
    for tables in (seen["tables while writing"], seen["tables at finalize"]):
        assert isinstance(tables, list)
        assert not [t for t in tables if t.startswith(("parsed_", "gd_stage_"))], tables
    assert seen["files at finalize"] == []
    assert seen["views at finalize"] == []
    check_warehouse(tmp_path / "warehouse.duckdb", expected)


def test_a_part_whose_write_fails_fails_its_file_and_leaves_the_warehouse(
    tmp_path: Path, config: Config, small_parts: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A part is written beside the reading of the next: a write that fails (here the disk
    full at the third part) fails its file with the error, loads nothing of it, leaves the
    published warehouse as it was and no staged files behind; the next load goes through."""
    import pyarrow.parquet as pq

    db = tmp_path / "warehouse.duckdb"
    first = tickets_file(200)
    load_one(write(tmp_path / f"{SHEET}.csv", first, "utf-8"), db, config)
    before = snapshot(db)
    (tmp_path / "again").mkdir()
    second = write(tmp_path / "again" / f"{SHEET}.csv", tickets_file(200), "utf-8-sig")
    real = pq.write_table
    written: list[Path] = []

    def full_disk(table: pa.Table, where: Path, *args: object, **kwargs: object) -> None:
        written.append(Path(where))
        if len(written) == 3:
            raise OSError(28, "No space left on device")
        real(table, where, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pq, "write_table", full_disk)
    report = load_paths([second], db, config)
    assert len(written) >= 3  # the failure came from a part past the first
    assert not report.ok and report.files[0].error is not None
    assert "No space left on device" in report.files[0].error
    assert snapshot(db) == before
    check_warehouse(db, first)
    assert not any(path.parent.exists() for path in written)  # the staged parts are gone
    monkeypatch.setattr(pq, "write_table", real)
    assert load_paths([second], db, config).ok
