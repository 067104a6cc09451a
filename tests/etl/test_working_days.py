"""Limits in working days through the real loader: the deadlines of 2025's National Day and
Spring Festival weeks, counted by hand, decide on time or late; a year no calendar knows stops
the file with a message naming it."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from govdash.core.config import Config, load_config
from govdash.etl.load import load_paths
from tests.conftest import rows, write_xlsx

HEADER = [
    "工单编号",
    "诉求类型",
    "问题类别",
    "紧急程度",
    "小区",
    "受理时间",
    "首次响应时间",
    "办结时间",
]
RULES = (
    '[[sla]]\nrequest_type = "投诉"\nrespond_minutes = 1440\nresolve_working_days = 5\n'
    "[[sla]]\nrespond_minutes = 30\nresolve_hours = 72\n"
)
# (ticket, type, accepted, closed, deadline counted by hand, on time?)
CASES = [
    # Fri 26 Sep: 28 (make-up), 29, 30 Sep, 9, 10 Oct; 168 calendar hours would end on 3 Oct.
    ("W1", "投诉", "2025-09-26 10:00", "2025-10-09 12:00", datetime(2025, 10, 11), True),
    ("W2", "投诉", "2025-09-26 10:00", "2025-10-11 01:00", datetime(2025, 10, 11), False),
    # Fri 24 Jan: 26 (make-up), 27 Jan, 5, 6, 7 Feb.
    ("W3", "投诉", "2025-01-24 16:00", "2025-02-07 18:00", datetime(2025, 2, 8), True),
    # Tue 30 Sep: 9, 10, 11 (Sat, make-up), 13, 14 Oct.
    ("W4", "投诉", "2025-09-30 09:00", "2025-10-14 23:00", datetime(2025, 10, 15), True),
    # Not a complaint: 72 clock hours, holidays or not.
    ("W5", "求助", "2025-09-30 09:00", "2025-10-03 10:00", datetime(2025, 10, 3, 9), False),
]


@pytest.fixture
def working_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.delenv("GOVDASH_CONFIG", raising=False)
    monkeypatch.delenv("GOVDASH_HASH_KEY", raising=False)
    path = tmp_path / "govdash.toml"
    path.write_text(RULES, encoding="utf-8")
    return load_config(path)


def _sheet(folder: Path, cases: list[tuple[str, str, str, str]]) -> Path:
    body = [
        [ticket, kind, "水电维修", "一般", "锦绣花园", accepted, accepted[:-2] + "30", closed]
        for ticket, kind, accepted, closed in cases
    ]
    return write_xlsx(folder / "工单.xlsx", {"工单": [HEADER, *body]})


def test_working_day_limits_decide_on_time(tmp_path: Path, working_config: Config) -> None:
    db = tmp_path / "data" / "warehouse.duckdb"
    sheet = _sheet(tmp_path, [(c[0], c[1], c[2], c[3]) for c in CASES])
    report = load_paths([sheet], db, working_config)
    assert report.files[0].error is None and report.files[0].rows_rejected == 0
    found = {
        ticket: (hours, status)
        for ticket, hours, status in rows(
            db, "SELECT ticket_id, resolution_limit_hours, resolution_status FROM tickets"
        )
    }
    for ticket, _, accepted, _, deadline, on_time in CASES:
        hours = (deadline - datetime.fromisoformat(accepted)).total_seconds() / 3600
        assert found[ticket][0] == pytest.approx(hours), ticket
        assert found[ticket][1] == ("on_time" if on_time else "late"), ticket


def test_a_year_no_calendar_knows_refuses_the_file(tmp_path: Path, working_config: Config) -> None:
    db = tmp_path / "data" / "warehouse.duckdb"
    sheet = _sheet(tmp_path, [("X1", "投诉", "2003-06-02 10:00", "2003-06-03 10:00")])
    report = load_paths([sheet], db, working_config)
    error = report.files[0].error or ""
    assert "2003 年的法定节假日和调休安排未知" in error and "[[calendar.years]]" in error
    assert not db.exists() or rows(db, "SELECT count(*) FROM tickets") == [(0,)]
