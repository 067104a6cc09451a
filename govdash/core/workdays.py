"""Working days on the official calendar: public holidays and their make-up working days (调休).

12345 limits are often set in working days (办结时限 5 个工作日). Which days are working days is
decided each year by the State Council's notice; the chinesecalendar package carries those
notices (2004–2026 in release 1.11). A year the package lacks — or one a street wants to state
itself — is written in the config (`[[calendar.years]]`: year, holidays, workdays), which wins
over the package. A year neither knows is refused with a message naming it: guessing Monday to
Friday would put deadlines inside the Spring Festival.

A limit of N working days ends at the end of the Nth working day after the day of acceptance
(the day of acceptance does not count, whatever the hour): accepted Friday 26 September 2025,
5 working days → Sunday 28 September (a make-up day), 29, 30 September, 9 and 10 October: due at
the end of 10 October.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

import chinese_calendar


class CalendarError(ValueError):
    """A day whose year no calendar knows; the message names the year and what to do."""


@dataclass(frozen=True)
class StatedYear:
    """A year's arrangement written in the config: its public holidays (weekdays off) and its
    make-up working days (weekend days worked)."""

    year: int
    holidays: frozenset[date] = field(default_factory=frozenset)
    workdays: frozenset[date] = field(default_factory=frozenset)


def library_years() -> tuple[int, int]:
    """The first and last year chinesecalendar knows."""
    years = [day.year for day in chinese_calendar.constants.holidays]
    return min(years), max(years)


def is_working_day(day: date, stated: Mapping[int, StatedYear] | None = None) -> bool:
    """Whether `day` is a working day: the config's statement of its year, else the library's."""
    chosen = (stated or {}).get(day.year)
    if chosen is not None:
        if day in chosen.workdays:
            return True
        if day in chosen.holidays:
            return False
        return day.weekday() < 5
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        first, last = library_years()
        raise CalendarError(
            f"{day.year} 年的法定节假日和调休安排未知：chinesecalendar 只收录 {first}–{last} 年，"
            f"配置文件中也没有写明 {day.year} 年。请按国务院办公厅当年的放假通知，在配置文件中加上 "
            f"[[calendar.years]]，写明 year = {day.year}、holidays（放假的工作日）和 workdays"
            "（调休上班的周末），再重新加载。"
        ) from None


def working_days_after(day: date, stated: Mapping[int, StatedYear] | None = None) -> Iterator[date]:
    """The working days after `day`, in order (without end; stops with CalendarError at a year
    no calendar knows)."""
    current = day
    while True:
        current += timedelta(days=1)
        if is_working_day(current, stated):
            yield current


def working_deadline(
    accepted_at: datetime, working_days: int, stated: Mapping[int, StatedYear] | None = None
) -> datetime:
    """The end (24:00) of the `working_days`-th working day after the day of acceptance."""
    if working_days < 1:
        raise ValueError("a limit in working days is at least 1")
    for count, day in enumerate(working_days_after(accepted_at.date(), stated), start=1):
        if count == working_days:
            return datetime.combine(day + timedelta(days=1), time())
    raise AssertionError("unreachable")  # the generator has no end


def working_day_table(
    first: date, last: date, ahead: int, stated: Mapping[int, StatedYear] | None = None
) -> list[date]:
    """The working days from `first` to `last`, and the `ahead` working days after `last` (so
    that every deadline of a day in the span can be looked up)."""
    days = []
    current = first
    while current <= last:
        if is_working_day(current, stated):
            days.append(current)
        current += timedelta(days=1)
    for count, day in enumerate(working_days_after(last, stated), start=1):
        if count > ahead:
            break
        days.append(day)
    return days
