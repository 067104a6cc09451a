"""Which stored aggregate rows (agg_units) answer a query exactly, or None: then it reads the tickets.

The loader stores per-period figures (govdash.etl.aggregates) for whole months, quarters and
years, grouped by fixed combinations of place columns. A query can read them when its filters
are "aggregatable": a whole calendar period (or, for a monthly series, whole months), no
category, priority or channel selection, at most one unit per place selection, and the scope's
column, the selected places and the query's own grouping columns together equal one stored
grouping — quantiles do not add up, so one stored row must be exactly one result row. A
period a load marked stale (too big to recompute within the load) is read raw until the
settle stores it; a monthly series with a stale month, too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time

import duckdb

from govdash.analytics.queries.filters import (
    PLACE_COLUMNS,
    SELECTION_COLUMNS,
    TICKET_ONLY_COLUMNS,
    Filters,
    month_start,
    period_bounds,
)
from govdash.etl.aggregates import (
    AGGREGATES_VERSION,
    AS_OF_KEY,
    DISTRIBUTION_KINDS,
    FIGURE_COLUMNS,
    GROUPING_BY_COLUMNS,
    VERSION_KEY,
    open_until,
)
from govdash.etl.derive import stored_bounds

# The stored figures, as select items over alias `a`.
STORED_FIGURES = ", ".join(f"a.{column}" for column in FIGURE_COLUMNS)


@dataclass(frozen=True)
class AggregateRows:
    """A WHERE fragment over `agg_units AS a` selecting the rows that answer a query, and its
    parameters (all named agg_…, so they never collide with a query's own)."""

    where: str
    params: dict[str, object]


def aggregates_ready(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the warehouse holds aggregates of this definition made at its current as-of
    time (a warehouse from before them, or written by another release, is read raw)."""
    rows = con.execute(
        "SELECT key, value FROM warehouse_info WHERE key IN ('as_of', $version, $as_of)",
        {"version": VERSION_KEY, "as_of": AS_OF_KEY},
    ).fetchall()
    info = {str(key): value for key, value in rows}
    return (
        info.get(VERSION_KEY) == AGGREGATES_VERSION
        and info.get(AS_OF_KEY) is not None
        and info.get(AS_OF_KEY) == info.get("as_of")
    )


def _stale(con: duckdb.DuckDBPyConnection, params: dict[str, object]) -> bool:
    """Whether the period's stored rows (a monthly series: any of its months') wait for a
    refresh (govdash.etl.aggregates)."""
    last = params.get("agg_last", params["agg_first"])
    found = con.execute(
        """SELECT count(*) FROM agg_stale_periods
        WHERE period_kind = $agg_kind AND period_start BETWEEN $agg_first AND $agg_last""",
        {"agg_kind": params["agg_kind"], "agg_first": params["agg_first"], "agg_last": last},
    ).fetchone()
    return bool(found and found[0])


def accepted_bounds(con: duckdb.DuckDBPyConnection) -> tuple[datetime, datetime] | None:
    """The first and last acceptance time over all tickets; None when there are none.

    As each load keeps them (govdash.etl.derive's BOUNDS_KEY, 1 ms); in a warehouse no load
    of this release has written, with current stored figures, looked for only in the first and
    last months that hold tickets (stored month rows, and months waiting for the settle): a few
    row groups each (0.05 s at 50M tickets, on every page's sidebar), where min and max over
    every ticket read a city's whole history (~0.8 CPU s). A month of those found empty falls
    back to the scan."""
    kept = stored_bounds(con)
    if kept is not None:
        first, last = kept
        if first is None or last is None:
            return None
        return datetime.fromisoformat(first), datetime.fromisoformat(last)
    if aggregates_ready(con):
        months = con.execute(
            """SELECT min(m), max(m) FROM (
                SELECT period_start AS m FROM agg_units
                WHERE period_kind = 'month' AND level = 'district'
                UNION ALL SELECT period_start FROM agg_stale_periods WHERE period_kind = 'month')"""
        ).fetchone()
        if months is not None and months[0] is not None:
            found = con.execute(
                """SELECT
                    (SELECT min(accepted_at) FROM tickets
                     WHERE accepted_at >= $first AND accepted_at < $first + INTERVAL 1 MONTH),
                    (SELECT max(accepted_at) FROM tickets
                     WHERE accepted_at >= $last AND accepted_at < $last + INTERVAL 1 MONTH)""",
                {"first": months[0], "last": months[1]},
            ).fetchone()
            if found is not None and found[0] is not None and found[1] is not None:
                return found[0], found[1]
    row = con.execute("SELECT min(accepted_at), max(accepted_at) FROM tickets").fetchone()
    return None if row is None or row[0] is None else (row[0], row[1])


def _whole_months(filters: Filters) -> bool:
    """Whether the filters span whole calendar months (the first day of one to the last of
    another)."""
    return filters.start.day == 1 and period_bounds("month", filters.end)[1] == filters.end


def _whole_period(filters: Filters) -> str | None:
    """The calendar period kind the filters span exactly (a range may be one), else None."""
    if filters.period_kind != "range":
        return filters.period_kind
    for kind in ("month", "quarter", "year"):
        if period_bounds(kind, filters.start) == (filters.start, filters.end):
            return kind
    return None


def aggregate_rows(
    con: duckdb.DuckDBPyConnection,
    filters: Filters,
    group_by: tuple[str, ...] = (),
    per_month: bool = False,
) -> AggregateRows | None:
    """The agg_units rows answering `filters` grouped by the place columns `group_by` —
    one row per group (per month, with `per_month`, over the filters' whole months) — or None
    when the filters are not aggregatable or the warehouse has no current aggregates."""
    if any(getattr(filters, name) for name in TICKET_ONLY_COLUMNS):
        return None
    params: dict[str, object] = {}
    if per_month:
        if not _whole_months(filters):
            return None
        period = "a.period_kind = $agg_kind AND a.period_start BETWEEN $agg_first AND $agg_last"
        params |= {
            "agg_kind": "month",
            "agg_first": filters.start,
            "agg_last": month_start(filters.end),
        }
    else:
        kind = _whole_period(filters)
        if kind is None:
            return None
        period = "a.period_kind = $agg_kind AND a.period_start = $agg_first"
        params |= {"agg_kind": kind, "agg_first": filters.start}
    equal: dict[str, str] = {}
    for name in PLACE_COLUMNS:
        values = getattr(filters, name)
        if len(values) > 1:
            return None
        if values:
            equal[name] = values[0]
    if filters.scope.is_restricted:
        column, scope_name = filters.scope.level, filters.scope.name
        if scope_name is None or column not in PLACE_COLUMNS:
            return None
        if equal.get(column, scope_name) != scope_name:
            return None  # a selection outside the scope: the raw query's empty answer
        equal[column] = scope_name
    level = GROUPING_BY_COLUMNS.get(frozenset(equal) | frozenset(group_by))
    if level is None or not aggregates_ready(con) or _stale(con, params):
        return None
    conditions = [period, "a.level = $agg_level"]
    params["agg_level"] = level
    for column, value in sorted(equal.items()):  # column names come from PLACE_COLUMNS
        conditions.append(f"a.{column} = $agg_{column}")
        params[f"agg_{column}"] = value
    return AggregateRows(" AND ".join(conditions), params)


def backlog_rows(con: duckdb.DuckDBPyConnection, filters: Filters) -> tuple[str, dict[str, object]]:
    """`FROM` text (alias t, with its WHERE) of the tickets open at the period's end with the
    filters' scope and selections, and its parameters: the stored rows of that month end
    (agg_open) when the period ends at a month's end and the stored figures are current —
    a few thousand rows where the tickets' condition reads every ticket accepted before the
    end (a city's history) — else the tickets (Filters.backlog_where)."""
    end = datetime.combine(filters.end_exclusive, time())
    if end.day == 1 and aggregates_ready(con):
        row = con.execute("SELECT value FROM warehouse_info WHERE key = 'as_of'").fetchone()
        until = open_until(None if row is None or row[0] is None else str(row[0]))
        if until is not None:
            where, params = filters.selection_where("t")
            # Past the as-of time's month, the tickets open at any end are those open now.
            params["open_end"] = min(end, until)
            return f"agg_open AS t WHERE t.end_at = $open_end AND {where}", params
    where, params = filters.backlog_where("t")
    return f"tickets AS t WHERE {where}", params


# The selections the stored repeat counts can answer: each row lies within a street and a
# community (a compound's rows have no category, a category's no compound).
REPEAT_SELECTIONS = ("street", "community")


def repeat_months(
    con: duckdb.DuckDBPyConnection, filters: Filters
) -> tuple[str, dict[str, object]] | None:
    """WHERE text over `agg_repeats AS t` of the stored months answering the filters (whole
    months, none waiting for the settle; street and community selections and scopes only) and
    its parameters, or None: then the tickets are read."""
    others = [c for c in (*PLACE_COLUMNS, *TICKET_ONLY_COLUMNS) if c not in REPEAT_SELECTIONS]
    if any(getattr(filters, name) for name in others):
        return None
    if filters.scope.is_restricted and filters.scope.level not in REPEAT_SELECTIONS:
        return None
    if not _whole_months(filters):
        return None
    months = {"agg_kind": "month", "agg_first": filters.start, "agg_last": month_start(filters.end)}
    if not aggregates_ready(con) or _stale(con, months):
        return None
    where, params = filters.selection_where("t")
    params |= months
    return f"t.month BETWEEN $agg_first AND $agg_last AND {where}", params


def distribution_rows(
    con: duckdb.DuckDBPyConnection, filters: Filters, by: str
) -> tuple[str, dict[str, object]] | None:
    """WHERE text over `agg_distributions AS d` of the stored distribution answering the
    filters (the district's whole quarter or year, no selection) grouped by `by`, and its
    parameters, or None: then the tickets are read."""
    if filters.scope.is_restricted or any(getattr(filters, c) for c in SELECTION_COLUMNS):
        return None
    kind = _whole_period(filters)
    if kind not in DISTRIBUTION_KINDS or not aggregates_ready(con):
        return None
    params: dict[str, object] = {"agg_kind": kind, "agg_first": filters.start}
    if _stale(con, params):
        return None
    params["agg_by"] = by
    where = "d.period_kind = $agg_kind AND d.period_start = $agg_first AND d.by_column = $agg_by"
    return where, params
