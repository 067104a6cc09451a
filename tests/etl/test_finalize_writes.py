"""Finalize rewrites only the ticket rows whose derived fields change.

A load is one lake transaction: every row a statement of finalize rewrites (and every old
version of a work table it replaces) is held until COMMIT. A 10M-row first load used to
rewrite all 10M rows to set their statuses, which held ~1 GB more than the load's memory
limit. New tickets are now written with their statuses at the as-of time reached so far, and
finalize rewrites a row only where its stored fields differ from a full recompute.

The counts expected here are worked out by hand from the files (SLA rule of 一般: 30 minutes
to respond, 72 hours to resolve; the shipped repeat window), and the stored fields are checked
against the same reasoning.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

import govdash.etl.derive as derive
from govdash.core.config import Config, load_config
from govdash.core.warehouse import KEY_ENV
from govdash.etl.load import load_paths
from tests.conftest import rows, write_csv

HEADER = ["工单编号", "问题类别", "紧急程度", "社区", "小区", "受理时间", "首次响应时间", "办结时间",
          "联系电话"]  # fmt: skip
FORMAT = "%Y-%m-%d %H:%M"
START = datetime(2025, 3, 3, 9, 0)
MINUTE, HOUR = timedelta(minutes=1), timedelta(hours=1)


def _row(ticket_id: str, category: str, accepted: datetime, phone: str,
         responded: datetime | None, closed: datetime | None) -> list[str]:  # fmt: skip
    def text(moment: datetime | None) -> str:
        return moment.strftime(FORMAT) if moment else ""

    return [ticket_id, category, "一般", "东社区", "东一小区", text(accepted), text(responded),
            text(closed), phone]  # fmt: skip


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, int]]:
    counts: list[dict[str, int]] = []
    real = derive.derive

    def counted(con: duckdb.DuckDBPyConnection, config: Config) -> dict[str, int]:
        written = real(con, config)
        counts.append(written)
        return written

    monkeypatch.setattr(derive, "derive", counted)
    return counts


def test_finalize_rewrites_only_the_rows_whose_derived_fields_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, "a-phone-hash-key-for-this-test")
    config = load_config(None)
    window = timedelta(days=config.repeat_window_days)
    counts = _counting(monkeypatch)
    c_at = START + timedelta(days=2)
    b_at = START + window - timedelta(days=1)
    last = b_at + timedelta(days=1)  # D: the first file's latest moment, its as-of time
    first = write_csv(
        tmp_path / "in" / "1.csv",
        [
            HEADER,
            # A and its repeat B (same caller and category, inside the window)
            _row("A", "电梯", START, "13800138000", START + MINUTE * 5, START + HOUR * 2),
            _row("B", "电梯", b_at, "13800138000", b_at + timedelta(minutes=40), None),
            # the same caller, another category: no repeat
            _row("C", "水电维修", c_at, "13800138000", c_at + MINUTE * 10, c_at + HOUR * 80),
            # open, not responded, accepted at the as-of time: not yet due on both
            _row("D", "环境卫生", last, "13900139000", None, None),
        ],
        "utf-8-sig",
    )
    db = tmp_path / "w" / "warehouse.duckdb"
    assert load_paths([first], db, config, keep_raw=False).ok
    # The first load: only B's repeat flag differs from how the rows were written.
    assert counts == [{"places": 0, "statuses": 0, "repeats": 1}]
    stored = {
        r[0]: r[1:]
        for r in rows(
            db, "SELECT ticket_id, is_repeat, response_status, resolution_status FROM tickets"
        )
    }
    assert stored == {
        "A": (False, "on_time", "on_time"),
        "B": (True, "late", "not_yet_due"),  # open: its 72 hours end after the as-of time
        "C": (False, "on_time", "late"),
        "D": (False, "not_yet_due", "not_yet_due"),
    }
    # A later ticket moves the as-of time four days on: B's 72 hours and D's limits ran out
    # (two rows rewritten); F itself is written right.
    later = last + timedelta(days=4)
    second = write_csv(
        tmp_path / "in" / "2.csv",
        [HEADER, _row("F", "电梯", later, "13700137000", later, later)],
        "utf-8-sig",
    )
    assert load_paths([second], db, config, keep_raw=False).ok
    assert counts[1] == {"places": 0, "statuses": 2, "repeats": 0}
    stored = {
        r[0]: r[1:]
        for r in rows(
            db,
            """SELECT ticket_id, response_status, resolution_status FROM tickets
            WHERE ticket_id IN ('B', 'D', 'F')""",
        )
    }
    assert stored == {
        "B": ("late", "late"),
        "D": ("late", "late"),
        "F": ("on_time", "on_time"),
    }


REGISTER_HEADER = ["街道", "社区", "小区名称", "户数", "物业企业"]
PLACES = "SELECT ticket_id, community, street, property_company FROM tickets ORDER BY ticket_id"


def _blank_community(ticket_id: str, compound: str, accepted: datetime) -> list[str]:
    done = accepted + HOUR
    return [ticket_id, "电梯", "一般", "", compound, accepted.strftime(FORMAT),
            done.strftime(FORMAT), done.strftime(FORMAT), "13800138000"]  # fmt: skip


def test_a_ticket_is_written_with_the_places_its_register_gives_and_not_rewritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blank places are filled from the register as the ticket is written (finalize writes
    none of them); a compound the register names only later in the same load is filled by
    finalize (those rows alone); a reload of the same file compares the places as the file
    has them: unchanged."""
    monkeypatch.setenv(KEY_ENV, "a-phone-hash-key-for-this-test")
    config = load_config(None)
    counts = _counting(monkeypatch)
    register = write_csv(
        tmp_path / "in" / "台账.csv",
        [REGISTER_HEADER, ("甲街道", "东社区", "东一小区", 100, "安居物业")],
        "utf-8-sig",
    )
    later_register = write_csv(
        tmp_path / "in" / "台账-新.csv",
        [REGISTER_HEADER, ("甲街道", "东社区", "东一小区", 100, "安居物业"),
         ("乙街道", "北社区", "北一小区", 150, "北辰物业")],
        "utf-8-sig",
    )  # fmt: skip
    tickets = write_csv(
        tmp_path / "in" / "工单.csv",
        [
            HEADER,
            _blank_community("A", "东一小区", START),
            _blank_community("B", "东一小区", START + HOUR * 3),
            _blank_community("C", "北一小区", START + HOUR * 5),  # registered by the later file
            _blank_community("D", "无名小区", START + HOUR * 7),  # never registered
        ],
        "utf-8-sig",
    )
    db = tmp_path / "w" / "warehouse.duckdb"
    report = load_paths([register, tickets, later_register], db, config, keep_raw=False)
    assert report.ok
    # A and B were written with 东一小区's places; only C, named by the later register, is
    # written again by finalize.
    assert counts[0]["places"] == 1
    assert rows(db, PLACES) == [
        ("A", "东社区", "甲街道", "安居物业"),
        ("B", "东社区", "甲街道", "安居物业"),
        ("C", "北社区", "乙街道", "北辰物业"),
        ("D", None, None, None),
    ]
    relisted = write_csv(
        tmp_path / "in" / "工单-续.csv",
        [
            HEADER,
            _blank_community("A", "东一小区", START),
            _blank_community("B", "东一小区", START + HOUR * 3),
            _blank_community("E", "东一小区", START + HOUR * 9),
        ],
        "utf-8-sig",
    )
    again = load_paths([relisted], db, config, keep_raw=False)
    assert again.ok
    file = again.files[0]
    assert (file.rows_inserted, file.rows_updated, file.rows_unchanged) == (1, 0, 2)
    assert counts[1]["places"] == 0
    assert rows(db, PLACES)[-1] == ("E", "东社区", "甲街道", "安居物业")
