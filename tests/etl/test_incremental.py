"""Derived fields computed for the changed rows only leave what a full recompute leaves.

Files written here: a register, three ticket files (new tickets of known callers inside the
repeat window, closing updates of open tickets, a corrected acceptance time, a correction that
lowers the as-of time) and a register that adds a compound the tickets already name. Loaded
one by one (each load derives only what it changed) and all at once, the two warehouses must
hold the same rows; and each ticket's repeat flag, statuses and places must be what pandas
computes from the raw rows, with the SLA rule of these tickets (一般: 30 minutes, 72 hours).
"""

from __future__ import annotations

import random
import re
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

import govdash.etl.derive as derive
from govdash.analytics.queries.aggregated import accepted_bounds
from govdash.analytics.queries.loads import data_period
from govdash.core.config import load_config
from govdash.core.warehouse import KEY_ENV, current_snapshot, lake_of
from govdash.etl.load import load_paths, work_connection
from tests.conftest import rows, snapshot, write_csv

HEADER = ["工单编号", "问题类别", "紧急程度", "社区", "小区", "受理时间", "首次响应时间", "办结时间",
          "联系电话"]  # fmt: skip
REGISTER_HEADER = ["街道", "社区", "小区名称", "户数", "物业企业"]
REGISTER = [
    ("甲街道", "东社区", "东一小区", 100, "安居物业"),
    ("甲街道", "东社区", "东二小区", 300, ""),
    ("甲街道", "西社区", "西一小区", 200, "乐家物业"),
]
ADDED = ("乙街道", "北社区", "北一小区", 150, "北辰物业")  # in the second register only
COMPOUNDS = ["东一小区", "东二小区", "西一小区", "北一小区", "无名小区"]  # 无名: never registered
CATEGORIES = ["水电维修", "电梯", "环境卫生"]
PHONES = [f"1380013{n:04d}" for n in range(6)]
EDGE_PHONE = "13900139000"  # the window-edge tickets: no other call of this caller
WINDOW = timedelta(days=30)
RESPOND, RESOLVE = timedelta(minutes=30), timedelta(hours=72)
FORMAT = "%Y-%m-%d %H:%M"


def _ticket(rng: random.Random, ticket_id: str, accepted: datetime, phone: str | None,
            category: str, open_: bool = False, responded: bool = True) -> dict:  # fmt: skip
    compound = rng.choice(COMPOUNDS)
    return {
        "id": ticket_id,
        "category": category,
        "community": None if rng.random() < 0.6 else "自报社区",  # blank: from the register
        "compound": compound,
        "accepted": accepted,
        # late or on time, both sides of the 30-minute limit
        "responded": accepted + timedelta(minutes=rng.choice([5, 29, 31, 90]))
        if responded
        else None,
        "closed": None if open_ else accepted + timedelta(hours=rng.choice([2, 71, 73, 100])),
        "phone": phone,
    }


def _cells(t: dict) -> list:
    return [
        t["id"], t["category"], "一般", t["community"], t["compound"],
        t["accepted"].strftime(FORMAT),
        t["responded"].strftime(FORMAT) if t["responded"] else None,
        t["closed"].strftime(FORMAT) if t["closed"] else None,
        t["phone"],
    ]  # fmt: skip


def _files(folder: Path) -> tuple[list[Path], list[dict]]:
    """The files in load order, and every ticket version in that order (last one wins)."""
    rng = random.Random(15)
    start = datetime(2025, 1, 1, 8, 0)
    first: list[dict] = []
    for n in range(160):  # gaps of 0–60 days between a caller's calls: both sides of 30
        accepted = start + timedelta(minutes=rng.randrange(0, 80 * 24 * 60))
        phone = rng.choice([*PHONES, None])  # some tickets without a phone: never repeats
        first.append(_ticket(rng, f"A{n:03d}", accepted, phone, rng.choice(CATEGORIES),
                             open_=rng.random() < 0.25, responded=rng.random() < 0.85))  # fmt: skip
    # Two tickets of one caller and category exactly 30 days apart (the window's edge) and
    # one a minute later than that.
    edge = datetime(2025, 2, 3, 9, 0)
    first += [
        _ticket(rng, "E1", edge, EDGE_PHONE, "电梯"),
        _ticket(rng, "E2", edge + WINDOW, EDGE_PHONE, "电梯"),
        _ticket(rng, "E3", edge + WINDOW + WINDOW + timedelta(minutes=1), EDGE_PHONE, "电梯"),
    ]
    second: list[dict] = []
    for n in range(60):  # known callers, between their earlier calls: successors flip
        accepted = start + timedelta(minutes=rng.randrange(20 * 24 * 60, 85 * 24 * 60))
        second.append(_ticket(rng, f"B{n:03d}", accepted, rng.choice(PHONES),
                              rng.choice(CATEGORIES), open_=rng.random() < 0.3))  # fmt: skip
    open_first = [t for t in first if t["closed"] is None]
    for t in open_first[:12]:  # closing updates of open tickets
        closed = dict(t, closed=t["accepted"] + timedelta(hours=rng.choice([5, 80])))
        if closed["responded"] is None:
            closed["responded"] = t["accepted"] + timedelta(minutes=10)
        second.append(closed)
    source = next(t for t in first if t["closed"] is not None and t["phone"] is not None)
    moved = dict(source, accepted=source["accepted"] - timedelta(days=20))  # corrected time
    moved["responded"] = moved["accepted"] + timedelta(minutes=10)
    moved["closed"] = moved["accepted"] + timedelta(hours=3)
    second.append(moved)
    # The newest ticket, so far: it sets the as-of time; a correction then brings it back.
    latest = _ticket(rng, "L1", datetime(2025, 4, 20, 10, 0), PHONES[1], "电梯")
    latest["closed"] = latest["accepted"] + timedelta(days=9)
    second.append(latest)
    # Open, accepted the day before: late against the as-of time of the 9-day closing,
    # not yet due again once the correction brings the as-of time back.
    second.append(_ticket(rng, "N1", datetime(2025, 4, 19, 20, 0), None, "电梯", open_=True,
                          responded=False))  # fmt: skip
    third = [dict(latest, closed=latest["accepted"] + timedelta(hours=2))]
    files = [
        write_csv(folder / "台账.csv", [REGISTER_HEADER, *REGISTER], "utf-8-sig"),
        write_csv(folder / "1-3月.csv", [HEADER, *map(_cells, first)], "utf-8-sig"),
        write_csv(folder / "补录.csv", [HEADER, *map(_cells, second)], "utf-8-sig"),
        write_csv(folder / "台账-新.csv", [REGISTER_HEADER, *REGISTER, ADDED], "utf-8-sig"),
        write_csv(folder / "更正.csv", [HEADER, *map(_cells, third)], "utf-8-sig"),
    ]
    return files, first + second + third


def _expected(versions: list[dict]) -> pd.DataFrame:
    """Repeat flags, statuses and places from the raw rows, with pandas."""
    frame = pd.DataFrame(versions).drop_duplicates("id", keep="last").set_index("id")
    moments = frame[["accepted", "responded", "closed"]].max(axis=1)
    as_of = moments.max()
    ordered = frame.sort_values(["accepted"]).reset_index()
    ordered = ordered.sort_values(["accepted", "id"])
    previous = ordered.groupby(["phone", "category"])["accepted"].shift()
    ordered["is_repeat"] = ordered["phone"].notna() & ((ordered["accepted"] - previous) <= WINDOW)
    frame["is_repeat"] = ordered.set_index("id")["is_repeat"]

    def response(t: pd.Series) -> str:
        if pd.notna(t["responded"]):
            return "on_time" if t["responded"] - t["accepted"] <= RESPOND else "late"
        return "late" if t["accepted"] + RESPOND < as_of else "not_yet_due"

    def resolution(t: pd.Series) -> str:
        if pd.notna(t["closed"]):
            return "on_time" if t["closed"] - t["accepted"] <= RESOLVE else "late"
        return "late" if t["accepted"] + RESOLVE < as_of else "not_yet_due"

    frame["response_status"] = frame.apply(response, axis=1)
    frame["resolution_status"] = frame.apply(resolution, axis=1)
    register = {r[2]: r for r in [*REGISTER, ADDED]}
    frame["community"] = [
        c if isinstance(c, str) else (register[k][1] if k in register else None)
        for c, k in zip(frame["community"], frame["compound"], strict=True)
    ]
    frame["property_company"] = [
        (register[k][4] or None) if k in register else None for k in frame["compound"]
    ]
    frame.attrs["as_of"] = as_of
    return frame


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None  # pandas keeps a blank as NaN


DERIVED = """SELECT ticket_id, is_repeat, response_status, resolution_status, community, street,
    property_company FROM tickets ORDER BY ticket_id"""


@pytest.mark.parametrize("chunk_rows", [derive.CHUNK_ROWS, 7])  # 7: a step per month or less
def test_loads_one_by_one_leave_what_one_load_of_the_same_files_leaves(
    tmp_path, config, monkeypatch, chunk_rows
):
    monkeypatch.setenv(KEY_ENV, "the-same-phone-hash-key-for-both")
    monkeypatch.setattr(derive, "CHUNK_ROWS", chunk_rows)
    files, versions = _files(tmp_path / "in")
    one_by_one = tmp_path / "step" / "warehouse.duckdb"
    states = []
    for path in files:
        report = load_paths([path], one_by_one, config, keep_raw=False)
        assert report.ok, report.files[0].error
        states.append(
            rows(one_by_one, "SELECT resolution_status FROM tickets WHERE ticket_id = 'N1'")
        )
    assert states[2:] == [[("late",)], [("late",)], [("not_yet_due",)]]
    all_at_once = tmp_path / "once" / "warehouse.duckdb"
    assert load_paths(files, all_at_once, config, keep_raw=False).ok

    every_column = "SELECT * FROM tickets ORDER BY ticket_id"
    assert rows(one_by_one, every_column) == rows(all_at_once, every_column)
    info = "SELECT * FROM warehouse_info WHERE key != 'updated_at' ORDER BY key"
    assert rows(one_by_one, info) == rows(all_at_once, info)
    bounds = [_kept_bounds(db) for db in (one_by_one, all_at_once)]
    first, last = min(t["accepted"] for t in versions), max(t["accepted"] for t in versions)
    assert bounds == [(first, last)] * 2

    expected = _expected(versions)
    found = {r[0]: r[1:] for r in rows(one_by_one, DERIVED)}
    assert sorted(found) == sorted(expected.index)
    register = {r[2]: r for r in [*REGISTER, ADDED]}
    for ticket_id, t in expected.iterrows():
        street = register[t["compound"]][0] if t["compound"] in register else None
        assert found[ticket_id] == (
            t["is_repeat"],
            t["response_status"],
            t["resolution_status"],
            _text(t["community"]),
            street,
            _text(t["property_company"]),
        ), ticket_id
    # The data exercises what it is meant to: repeats on both sides, flags the second file
    # flipped, open tickets late and not yet due, places filled by the second register.
    assert 10 < expected["is_repeat"].sum() < len(expected) - 10
    assert (found["E1"][0], found["E2"][0], found["E3"][0]) == (False, True, False)
    assert {"late", "not_yet_due"} <= set(
        expected.loc[expected["closed"].isna(), "resolution_status"]
    )
    assert any(v[3] == "北社区" for v in found.values())
    as_of = rows(one_by_one, "SELECT value FROM warehouse_info WHERE key = 'as_of'")[0][0]
    assert datetime.fromisoformat(as_of) == expected.attrs["as_of"]


def _kept_bounds(db: Path) -> tuple[datetime, datetime] | None:
    """The first and last acceptance time the last load kept (derive's BOUNDS_KEY)."""
    con = lake_of(db).reader()
    try:
        kept = derive.stored_bounds(con)
    finally:
        con.close()
    assert kept is not None and kept[0] is not None and kept[1] is not None
    return datetime.fromisoformat(kept[0]), datetime.fromisoformat(kept[1])


def _at(text: str) -> datetime:
    return datetime.strptime(text, FORMAT)


def test_the_first_and_last_acceptance_times_follow_every_load(tmp_path, config):
    """Each load keeps the first and last acceptance time over all tickets — what every page's
    date range reads instead of the tickets: widened by new tickets, and where a correction
    moves the earliest or the latest ticket, the next one in its month, or in another month;
    a file that changes nothing keeps them. A warehouse whose last file was loaded by a loader
    that does not keep them is read from the tickets."""
    ids = ["B1", "B2", "B3", "B4", "B0", "B00", "B5", "B6"]
    loads = [  # (ticket, acceptance time) of each file, and the bounds after it, by hand
        ([("B1", "2025-03-10 09:00"), ("B2", "2025-03-20 09:00"), ("B3", "2025-05-05 10:00"),
          ("B4", "2025-05-25 10:00")], ("2025-03-10 09:00", "2025-05-25 10:00")),
        ([("B0", "2025-02-01 08:00"), ("B00", "2025-02-10 08:00"), ("B5", "2025-06-30 23:00"),
          ("B6", "2025-06-15 12:00")], ("2025-02-01 08:00", "2025-06-30 23:00")),
        ([("B0", "2025-03-15 08:00")], ("2025-02-10 08:00", "2025-06-30 23:00")),
        ([("B5", "2025-04-01 08:00")], ("2025-02-10 08:00", "2025-06-15 12:00")),
        ([("B00", "2025-04-02 08:00"), ("B6", "2025-04-03 08:00")],
         ("2025-03-10 09:00", "2025-05-25 10:00")),
        ([("B3", "2025-05-05 10:00")], ("2025-03-10 09:00", "2025-05-25 10:00")),
    ]  # fmt: skip
    assert sorted({t for file, _ in loads for t, _ in file}) == sorted(ids)
    db = tmp_path / "data" / "warehouse.duckdb"
    closed: dict[str, str] = {}
    for n, (tickets, (first, last)) in enumerate(loads):
        cells = []
        for ticket_id, accepted in tickets:
            at = _at(accepted)
            closed[ticket_id] = (at + timedelta(hours=2)).strftime(FORMAT)
            cells.append([ticket_id, "电梯", "一般", "东社区", "东一小区", accepted,
                          (at + timedelta(minutes=10)).strftime(FORMAT), closed[ticket_id],
                          None])  # fmt: skip
        path = write_csv(tmp_path / "in" / f"{n}.csv", [HEADER, *cells], "utf-8-sig")
        assert load_paths([path], db, config, keep_raw=False).ok
        found = rows(db, "SELECT min(accepted_at), max(accepted_at) FROM tickets")[0]
        assert found == (_at(first), _at(last)), n
        assert _kept_bounds(db) == found, n
        con = lake_of(db).reader()
        try:
            assert accepted_bounds(con) == found
            assert data_period(con) == (found[0].date(), found[1].date())
        finally:
            con.close()
    with work_connection(db, config) as con:
        con.execute("BEGIN")  # never committed
        con.execute(  # a file another loader recorded, which took the first ticket away
            """INSERT INTO load_batches SELECT * REPLACE (batch_id + 1 AS batch_id)
            FROM load_batches WHERE batch_id = (SELECT max(batch_id) FROM load_batches)"""
        )
        con.execute("DELETE FROM tickets WHERE ticket_id = 'B1'")
        assert derive.stored_bounds(con) is None
        assert accepted_bounds(con) == (_at("2025-03-15 08:00"), _at("2025-05-25 10:00"))
        con.execute("ROLLBACK")


def test_each_incremental_load_matches_a_full_recompute_of_its_warehouse(tmp_path, config):
    """After every load, recomputing everything (as a changed repeat window forces) changes
    no row: what the load derived for its changes was already the full answer."""
    files, _ = _files(tmp_path / "in")
    db = tmp_path / "data" / "warehouse.duckdb"
    for path in files:
        assert load_paths([path], db, config, keep_raw=False).ok
        before = rows(db, "SELECT * FROM tickets ORDER BY ticket_id")
        with work_connection(db, config) as con:
            con.execute("BEGIN")  # recomputed inside a transaction that is never committed
            con.execute("DELETE FROM warehouse_info WHERE key = $k", {"k": derive.WINDOW_KEY})
            derive.derive(con, config)  # no record of changes: everything, month by month
            after = con.execute("SELECT * FROM tickets ORDER BY ticket_id").fetchall()
            con.execute("ROLLBACK")
        assert after == before, path.name


def test_a_changed_repeat_window_recomputes_every_flag(tmp_path, config):
    files, versions = _files(tmp_path / "in")
    db = tmp_path / "data" / "warehouse.duckdb"
    assert load_paths(files[:3], db, config, keep_raw=False).ok
    wider = tmp_path / "wider.toml"
    wider.write_text("[tickets]\nrepeat_window_days = 45\n", encoding="utf-8")
    assert load_paths(files[3:], db, load_config(wider), keep_raw=False).ok

    frame = pd.DataFrame(versions).drop_duplicates("id", keep="last")
    frame = frame.sort_values(["accepted", "id"])
    previous = frame.groupby(["phone", "category"])["accepted"].shift()
    frame["is_repeat"] = frame["phone"].notna() & (
        (frame["accepted"] - previous) <= timedelta(days=45)
    )
    expected = dict(zip(frame["id"], frame["is_repeat"], strict=True))
    found = dict(rows(db, "SELECT ticket_id, is_repeat FROM tickets"))
    assert found == expected
    assert found["E3"] is True  # 30 days and a minute after E2: a repeat within 45 days


def _megabytes(setting: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+) (\w+)", setting).groups()  # type: ignore[union-attr]
    return float(number) * {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30}[unit] / 1e6


def test_the_memory_setting_reaches_the_loaders_connection(tmp_path, monkeypatch):
    # Not the default (1024). On DuckDB 1.5.5 the cleaning statement alone needs ~750 MB of
    # buffer whatever the file's size (its plan holds ~130 hash joins), so 300 no longer loads.
    small = tmp_path / "small.toml"
    small.write_text("[loader]\nmemory_limit_mb = 1536\n", encoding="utf-8")
    config = load_config(small)
    seen: dict[str, str] = {}
    real = derive.derive

    def spy(con, chosen):
        for name in ("memory_limit", "temp_directory", "preserve_insertion_order"):
            seen[name] = str(con.execute(f"SELECT current_setting('{name}')").fetchone()[0])
        real(con, chosen)

    monkeypatch.setattr(derive, "derive", spy)
    files, _ = _files(tmp_path / "in")
    db = tmp_path / "data" / "warehouse.duckdb"
    assert load_paths(files[1:2], db, config, keep_raw=False).ok
    assert _megabytes(seen["memory_limit"]) == pytest.approx(1536, rel=0.05)  # shown as "1.4 GiB"
    assert seen["preserve_insertion_order"] == "False"
    scratch = Path(seen["temp_directory"]).parent
    assert scratch.name.startswith(".govdash-load-")
    assert scratch.parent == db.parent  # a private folder in the data folder
    assert not scratch.exists()  # removed once the load is done


def test_the_scratch_folder_is_removed_when_a_load_fails(tmp_path, config):
    db = tmp_path / "data" / "warehouse.duckdb"
    with pytest.raises(RuntimeError, match="disk on fire"), work_connection(db, config) as con:
        con.execute("CREATE TEMP TABLE t AS SELECT range AS i FROM range(10)")
        setting = con.execute("SELECT current_setting('temp_directory')").fetchone()[0]
        spill = Path(str(setting)).parent  # the scratch folder: work database and spills
        assert spill.is_dir() and (spill / "work.duckdb").is_file()
        raise RuntimeError("disk on fire")
    assert not spill.exists()
    assert list(db.parent.glob(".govdash-load-*")) == []


def test_the_memory_setting_is_checked_and_changes_no_fingerprint(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[loader]\nmemory_limit_mb = 16\n", encoding="utf-8")
    with pytest.raises(ValueError, match="memory_limit_mb"):
        load_config(bad)
    other = tmp_path / "other.toml"
    other.write_text("[loader]\nmemory_limit_mb = 4096\n", encoding="utf-8")
    assert load_config(other).memory_limit_mb == 4096
    assert load_config(other).fingerprint == load_config().fingerprint
    assert load_config().memory_limit_mb == 1024


def test_steps_cover_consecutive_months_up_to_the_row_budget(monkeypatch):
    monkeypatch.setattr(derive, "CHUNK_ROWS", 5)
    con = duckdb.connect()
    try:
        # rows per month: 2024-11: 2, 2024-12: 2, 2025-01: 3, (none in February), 2025-03: 1,
        # 2025-04: 9 (over the budget on its own)
        counts = {"2024-11": 2, "2024-12": 2, "2025-01": 3, "2025-03": 1, "2025-04": 9}
        values = [f"('{month}-{day + 1:02d} 08:00')" for month, n in counts.items()
                  for day in range(n)]  # fmt: skip
        con.execute(f"CREATE TABLE t AS SELECT CAST(v AS TIMESTAMP) AS accepted_at "
                    f"FROM (VALUES {', '.join(values)}) AS r(v)")  # fmt: skip
        found = derive._chunks(con, "SELECT accepted_at FROM t")
    finally:
        con.close()
    assert found == [
        (datetime(2024, 11, 1), datetime(2025, 1, 1)),  # 2 + 2; with January's 3 over 5
        (datetime(2025, 1, 1), datetime(2025, 2, 1)),
        (datetime(2025, 3, 1), datetime(2025, 4, 1)),  # February is not covered
        (datetime(2025, 4, 1), datetime(2025, 5, 1)),
    ]


def test_a_load_failing_between_derive_steps_leaves_the_published_warehouse(
    tmp_path, config, monkeypatch
):
    """derive runs its steps one by one inside the load's transaction: a failure after some
    of them (places and statuses written, repeat flags not) publishes none of it."""
    files, _ = _files(tmp_path / "in")
    db = tmp_path / "data" / "warehouse.duckdb"
    assert load_paths(files[:2], db, config, keep_raw=False).ok
    published = current_snapshot(db)
    before = snapshot(db)

    def broken(con, window):
        raise RuntimeError("power cut")

    monkeypatch.setattr(derive, "_repeats", broken)
    with pytest.raises(RuntimeError, match="power cut"):
        load_paths(files[2:], db, config, keep_raw=False)
    assert current_snapshot(db) == published
    assert snapshot(db) == before
    assert list(db.parent.glob(".govdash-load-*")) == []  # the spill folder is gone
    assert lake_of(db).snapshots()[-1].snapshot_id == published

    monkeypatch.undo()
    assert load_paths(files[2:], db, config, keep_raw=False).ok
    assert rows(db, "SELECT count(*) FROM tickets WHERE ticket_id = 'N1'") == [(1,)]


def test_an_advancing_as_of_time_reaches_an_old_open_ticket_loaded_later(tmp_path, config):
    """The as-of time's advance looks only from the earliest not-yet-due ticket on (stored in
    warehouse_info), so a city's history is not read at every load. A later load may bring an
    open ticket older than that (O0, accepted the evening before the earliest one): it moves
    the start back, and the next advance (a file of April only) still makes it late."""
    folder = tmp_path / "in"
    folder.mkdir()
    at = datetime(2025, 3, 10, 9, 0)
    waiting = {"id": "T1", "category": "电梯", "community": None, "compound": "东一小区",
               "accepted": at, "responded": None, "closed": None, "phone": None}  # fmt: skip
    closed = dict(waiting, id="T2", accepted=at + timedelta(minutes=30),
                  responded=at + timedelta(minutes=40), closed=at + timedelta(hours=1))  # fmt: skip
    older = dict(waiting, id="O0", accepted=at - timedelta(hours=13))
    april = dict(closed, id="T3", accepted=datetime(2025, 4, 20, 9, 0),
                 responded=datetime(2025, 4, 20, 9, 10), closed=datetime(2025, 4, 20, 12, 0))  # fmt: skip
    files = [
        write_csv(folder / "台账.csv", [REGISTER_HEADER, *REGISTER], "utf-8-sig"),
        write_csv(folder / "1.csv", [HEADER, _cells(waiting), _cells(closed)], "utf-8-sig"),
        write_csv(folder / "2.csv", [HEADER, _cells(older)], "utf-8-sig"),
        write_csv(folder / "3.csv", [HEADER, _cells(april)], "utf-8-sig"),
    ]
    db = tmp_path / "data" / "warehouse.duckdb"
    start = f"SELECT value FROM warehouse_info WHERE key = '{derive.WAITING_KEY}'"
    statuses = """SELECT ticket_id, response_status, resolution_status FROM tickets
        WHERE ticket_id IN ('T1', 'O0') ORDER BY ticket_id"""
    assert load_paths(files[:2], db, config, keep_raw=False).ok
    # as of 10:00 on the 10th: T1's 30 minutes to respond are past, its 72 hours to close not
    assert rows(db, statuses) == [("T1", "late", "not_yet_due")]
    assert rows(db, start) == [(str(at),)]
    assert load_paths([files[2]], db, config, keep_raw=False).ok
    # O0: 13 hours old at the same as-of time: responding late, closing not yet due (72 h)
    assert rows(db, statuses) == [("O0", "late", "not_yet_due"), ("T1", "late", "not_yet_due")]
    assert rows(db, start) == [(str(older["accepted"]),)]
    assert load_paths([files[3]], db, config, keep_raw=False).ok
    assert rows(db, statuses) == [("O0", "late", "late"), ("T1", "late", "late")]
    assert rows(db, start) == [(str(april["closed"]),)]  # none waits: the as-of time
