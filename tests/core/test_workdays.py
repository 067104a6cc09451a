"""Working days against calendars counted by hand: 2025's Spring Festival and National Day with
their make-up days (调休), a year stated in the config, and a year nobody knows."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from govdash.core.config import ConfigError, load_config
from govdash.core.workdays import (
    CalendarError,
    StatedYear,
    is_working_day,
    working_day_table,
    working_deadline,
)

# The State Council's 2025 arrangement, as printed: Spring Festival off 28 January – 4 February,
# worked Sunday 26 January and Saturday 8 February; National Day and Mid-Autumn off 1–8 October,
# worked Sunday 28 September and Saturday 11 October.


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2025, 1, 26), True),  # Sunday, make-up day
        (date(2025, 1, 27), True),
        (date(2025, 1, 28), False),
        (date(2025, 2, 4), False),  # Tuesday, still the holiday
        (date(2025, 2, 5), True),
        (date(2025, 2, 8), True),  # Saturday, make-up day
        (date(2025, 2, 9), False),
        (date(2025, 9, 27), False),  # Saturday
        (date(2025, 9, 28), True),  # Sunday, make-up day
        (date(2025, 10, 1), False),
        (date(2025, 10, 8), False),  # Wednesday, still the holiday
        (date(2025, 10, 9), True),
        (date(2025, 10, 11), True),  # Saturday, make-up day
        (date(2025, 10, 12), False),
    ],
)
def test_2025_holidays_and_make_up_days(day: date, working: bool) -> None:
    assert is_working_day(day) is working


@pytest.mark.parametrize(
    ("accepted", "days", "due"),
    [
        # Fri 26 Sep: 28 (Sun, make-up), 29, 30 Sep, 9, 10 Oct → the end of 10 October.
        (datetime(2025, 9, 26, 10, 0), 5, datetime(2025, 10, 11)),
        # Tue 30 Sep: 9, 10, 11 (Sat, make-up) Oct → the end of 11 October.
        (datetime(2025, 9, 30, 23, 50), 3, datetime(2025, 10, 12)),
        # Accepted on a holiday: 9 October is the first working day after it.
        (datetime(2025, 10, 3, 8, 0), 1, datetime(2025, 10, 10)),
        # Fri 24 Jan: 26 (Sun, make-up), 27 Jan, 5, 6, 7 Feb → the end of 7 February.
        (datetime(2025, 1, 24, 16, 0), 5, datetime(2025, 2, 8)),
        # Fri 7 Feb: 8 (Sat, make-up), 10 Feb → the end of 10 February.
        (datetime(2025, 2, 7, 9, 0), 2, datetime(2025, 2, 11)),
        # An ordinary week: Mon 10 Mar + 5 → Mon 17 Mar.
        (datetime(2025, 3, 10, 9, 0), 5, datetime(2025, 3, 18)),
    ],
)
def test_deadlines_in_working_days(accepted: datetime, days: int, due: datetime) -> None:
    assert working_deadline(accepted, days) == due


def test_a_year_stated_in_the_config_is_used_and_wins() -> None:
    stated = {
        2027: StatedYear(
            2027,
            holidays=frozenset({date(2027, 1, 1)}),
            workdays=frozenset({date(2027, 1, 2)}),
        ),
        2025: StatedYear(2025, holidays=frozenset({date(2025, 3, 10)})),  # a local holiday
    }
    # Thu 31 Dec 2026 (library), Fri 1 Jan 2027 off, Sat 2 Jan worked, Mon 4 Jan.
    assert working_deadline(datetime(2026, 12, 31, 9, 0), 2, stated) == datetime(2027, 1, 5)
    assert not is_working_day(date(2025, 3, 10), stated)
    assert is_working_day(date(2025, 1, 26), stated) is False  # stated 2025 replaces the library


def test_a_year_nobody_knows_is_named() -> None:
    with pytest.raises(
        CalendarError, match=r"2028 年的法定节假日和调休安排未知.*\[\[calendar\.years\]\]"
    ):
        is_working_day(date(2028, 5, 1))
    # Late December needs the next year's first working days.
    with pytest.raises(CalendarError, match="2027 年"):
        working_day_table(date(2026, 12, 28), date(2026, 12, 31), 5)


def test_the_config_states_years_and_limits(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("GOVDASH_CONFIG", raising=False)
    good = tmp_path / "good.toml"
    good.write_text(
        '[[sla]]\nrequest_type = "投诉"\nrespond_minutes = 1440\nresolve_working_days = 5\n'
        "[[sla]]\nrespond_minutes = 30\nresolve_days = 3\n"
        '[[calendar.years]]\nyear = 2027\nholidays = ["2027-01-01"]\nworkdays = [2027-02-06]\n',
        encoding="utf-8",
    )
    config = load_config(good)
    assert [rule.describe() for rule in config.sla] == [
        "投诉：响应 24 小时，办结 5 个工作日",
        "其余：响应 30 分钟，办结 3 个自然日",
    ]
    assert config.sla[1].resolve_hours == 72
    assert config.calendar_years[2027].workdays == frozenset({date(2027, 2, 6)})
    for text, key in (
        (
            "[[sla]]\nrespond_minutes = 30\nresolve_hours = 72\nresolve_working_days = 5\n",
            "resolve_hours/resolve_days/resolve_working_days",
        ),
        ("[[sla]]\nrespond_minutes = 30\nresolve_working_days = 0\n", "resolve_working_days"),
        (
            '[[calendar.years]]\nyear = 2027\nholidays = ["2026-12-31"]\n',
            "calendar.years[1].holidays",
        ),
    ):
        bad = tmp_path / "bad.toml"
        bad.write_text(text, encoding="utf-8")
        with pytest.raises(
            ConfigError, match=key.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")
        ):
            load_config(bad)
