"""Everything one month's bulletin (月度通报) reads from the warehouse, in one call.

The figures come from the read side the pages use — `tickets.ticket_kpis` (this month, last
month, the same month last year), `units.unit_table` (the 三率 of every unit, this month and
last), `tickets.repeat_requests`, `tickets.monthly_trend` — so the bulletin and the overview
never disagree. Only the backlog per unit is new SQL here: the pages show the backlog of a
selection, not of every unit at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb
import pandas as pd

from govdash.analytics.queries.aggregated import backlog_rows
from govdash.analytics.queries.filters import Filters, run_query
from govdash.analytics.queries.loads import load_history
from govdash.analytics.queries.tickets import (
    RepeatRequests,
    TicketKpis,
    _overdue_condition,  # one definition of "overdue at the reference time"
    as_of,
    monthly_trend,
    reference_time,
    repeat_requests,
    ticket_kpis,
)
from govdash.analytics.queries.units import UNIT_LEVELS, unit_table
from govdash.core.access import Scope
from govdash.core.config import Config

BULLETIN_LEVELS = ("community", "compound", "property_company")
TREND_MONTHS = 12
BACKLOG_COLUMNS = ["unit", "parent", "backlog", "overdue", "longest_overdue_days"]


@dataclass(frozen=True)
class BulletinData:
    """One month's figures for the bulletin (all limited to the filters' scope)."""

    filters: Filters  # the month
    level: str
    kpis: TicketKpis
    previous_kpis: TicketKpis  # last month (环比)
    last_year_kpis: TicketKpis  # the same month last year (同比)
    units: pd.DataFrame  # unit_table of the month
    previous_units: pd.DataFrame  # unit_table of last month (change of rank)
    backlog: pd.DataFrame  # BACKLOG_COLUMNS, units with tickets open at the month's end
    repeats: RepeatRequests
    trend: pd.DataFrame  # monthly_trend of the TREND_MONTHS months ending with the month
    trend_window: Filters
    history: pd.DataFrame  # load_history: the data sources
    version: str  # the warehouse version file the figures were read from
    as_of: datetime | None
    reference_at: datetime  # when "open at the month's end" and "overdue" were judged


def month_filters(year: int, month: int, scope: Scope | None = None) -> Filters:
    """The calendar month, limited to `scope`; a clear error for an impossible month."""
    if not 1 <= month <= 12:
        raise ValueError(f"月份应为 1 到 12，实际为 {month}")
    return Filters.for_month(year, month).within(scope or Scope.district())


def warehouse_version_name(con: duckdb.DuckDBPyConnection) -> str:
    """The warehouse snapshot `con` reads, "数据快照 #n" ("" when it reads no lake)."""
    attached = con.execute(
        "SELECT count(*) FROM duckdb_databases() WHERE database_name = 'lake' AND type = 'ducklake'"
    ).fetchone()
    if not attached or not attached[0]:
        return ""
    row = con.execute("SELECT id FROM lake.current_snapshot()").fetchone()
    return f"数据快照 #{row[0]}" if row and row[0] is not None else ""


def backlog_by_unit(
    con: duckdb.DuckDBPyConnection, filters: Filters, config: Config, level: str
) -> pd.DataFrame:
    """Per unit of `level`: tickets open at the period's end (backlog), how many of them are
    past their resolution limit then (overdue), and how many days the longest is past it.

    Open and overdue are judged as the overview's KPI cards judge them (backlog_rows,
    the reference time = the period's end or the data's as-of time, if earlier). Units without
    open tickets are not listed. Sorted by overdue, then backlog, largest first.
    """
    if level not in UNIT_LEVELS:
        raise ValueError(f"level must be one of {sorted(UNIT_LEVELS)}, got {level!r}")
    unit_column, parent_column, parent_in_key = UNIT_LEVELS[level]
    if parent_column is None:
        parent, keys = "CAST(NULL AS VARCHAR)", "unit"
    elif parent_in_key:
        parent, keys = f"t.{parent_column}", "unit, parent"
    else:
        parent, keys = f"any_value(t.{parent_column})", "unit"
    backlog, params = backlog_rows(con, filters)
    overdue = _overdue_condition("t")
    sql = f"""SELECT t.{unit_column} AS unit, {parent} AS parent, count(*) AS backlog,
               count(*) FILTER (WHERE {overdue}) AS overdue,
               max(CASE WHEN {overdue} THEN date_diff('second',
                   t.accepted_at + to_seconds(CAST(t.resolution_limit_hours * 3600 AS BIGINT)),
                   $reference_at) / 86400.0 END) AS longest_overdue_days
        FROM {backlog} AND t.{unit_column} IS NOT NULL
        GROUP BY {keys}
        ORDER BY overdue DESC, backlog DESC, unit"""
    params["reference_at"] = reference_time(con, filters)
    frame = run_query(con, sql, params)
    for column in ("backlog", "overdue"):
        frame[column] = frame[column].astype("int64")
    frame["longest_overdue_days"] = frame["longest_overdue_days"].astype("Float64").astype(float)
    return frame[BACKLOG_COLUMNS].reset_index(drop=True)


def bulletin_data(
    con: duckdb.DuckDBPyConnection, filters: Filters, config: Config, level: str = "community"
) -> BulletinData:
    """The figures of the month `filters` names (a month filter, with the account's scope)."""
    if filters.period_kind != "month":
        raise ValueError("the bulletin is monthly: pass Filters.for_month(...)")
    if level not in BULLETIN_LEVELS:
        raise ValueError(f"level must be one of {BULLETIN_LEVELS}, got {level!r}")
    previous = filters.previous()
    last_year = Filters.for_month(filters.start.year - 1, filters.start.month).within(filters.scope)
    window = filters.trend_window(TREND_MONTHS)
    return BulletinData(
        filters=filters,
        level=level,
        kpis=ticket_kpis(con, filters, config),
        previous_kpis=ticket_kpis(con, previous, config),
        last_year_kpis=ticket_kpis(con, last_year, config),
        units=unit_table(con, filters, config, level),
        previous_units=unit_table(con, previous, config, level),
        backlog=backlog_by_unit(con, filters, config, level),
        repeats=repeat_requests(con, filters, config, top=config.bulletin_hot_spots),
        trend=monthly_trend(con, window, config),
        trend_window=window,
        history=load_history(con),
        version=warehouse_version_name(con),
        as_of=as_of(con),
        reference_at=reference_time(con, filters),
    )
