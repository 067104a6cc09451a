"""The SLA limits of each ticket, as SQL: clock-time rules as numbers, working-day rules through
a table of the official calendar's working days (govdash.core.workdays).

A working-day limit becomes, per ticket, the hours from acceptance to the end of its Nth
working day, so every later use of `response_limit_minutes` and `resolution_limit_hours`
(on-time status, overdue backlog) needs no change.
"""

from __future__ import annotations

from datetime import date

import duckdb

from govdash.core.config import Config
from govdash.core.workdays import working_day_table
from govdash.etl.clean import literal

WORKDAYS_TABLE = "gd_workdays"


def sla_case(config: Config, which: str) -> str:
    """The SQL of the SLA table: the first rule matching a ticket's priority and type wins.

    `which` is "respond" (minutes) or "resolve" (hours)."""
    arms = []
    for rule in config.sla:
        conditions = []
        if rule.priority:
            conditions.append(f"priority = {literal(rule.priority)}")
        if rule.request_type:
            conditions.append(f"request_type = {literal(rule.request_type)}")
        working = rule.respond_working_days if which == "respond" else rule.resolve_working_days
        if working is not None:
            hours = f"gd_working_hours(accepted_at, {int(working)})"
            value = f"({hours} * 60)" if which == "respond" else hours
        else:
            number = rule.respond_minutes if which == "respond" else rule.resolve_hours
            value = f"{float(number or 0):g}"
        arms.append(f"WHEN {' AND '.join(conditions) or 'TRUE'} THEN {value}")
    return "CASE " + " ".join(arms) + " END"


def prepare_working_days(con: duckdb.DuckDBPyConnection, config: Config, source: str) -> None:
    """Where a rule is in working days: the working days from the first day accepted in
    `source` (a table) to the deadlines of the last, and the macro gd_working_hours(ts, n).

    Raises CalendarError naming a year no calendar knows (the file is then not loaded)."""
    needed = [
        days
        for rule in config.sla
        for days in (rule.respond_working_days, rule.resolve_working_days)
        if days is not None
    ]
    if not needed:
        return
    row = con.execute(
        f"SELECT CAST(min(accepted_at) AS DATE), CAST(max(accepted_at) AS DATE) FROM {source}"
    ).fetchone()
    first: date | None = row[0] if row else None
    last: date | None = row[1] if row else None
    days = (
        working_day_table(first, last, max(needed), config.calendar_years)
        if first is not None and last is not None
        else []
    )
    con.execute(f"CREATE OR REPLACE TEMP TABLE {WORKDAYS_TABLE} (day DATE, ordinal BIGINT)")
    if days:
        con.execute(
            f"INSERT INTO {WORKDAYS_TABLE} SELECT unnest($days), unnest(range(1, $n + 1))",
            {"days": days, "n": len(days)},
        )
    # The ordinal of the last working day on or before the day of acceptance (0 before the
    # first), plus n, is the deadline's working day; the limit ends at the end of that day.
    con.execute(
        f"""CREATE OR REPLACE TEMP MACRO gd_working_hours(ts, n) AS (
            date_diff('second', ts, CAST((
                SELECT w.day FROM {WORKDAYS_TABLE} AS w WHERE w.ordinal = n + coalesce((
                    SELECT max(v.ordinal) FROM {WORKDAYS_TABLE} AS v
                    WHERE v.day <= CAST(ts AS DATE)), 0)
            ) + INTERVAL 1 DAY AS TIMESTAMP)) / 3600.0)"""
    )
