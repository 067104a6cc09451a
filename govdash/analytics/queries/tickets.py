"""Ticket queries: KPIs, trends, distributions, backlog and drill-down lists for the pages."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time

import duckdb
import numpy as np
import pandas as pd

from govdash.analytics.metrics.rates import (
    AGING_LABELS,
    add_three_rates,
    aging_bucket,
    hide_small_groups,
    rate,
)
from govdash.analytics.queries.aggregated import (
    STORED_FIGURES,
    AggregateRows,
    accepted_bounds,
    aggregate_rows,
    aggregates_ready,
    backlog_rows,
    distribution_rows,
    repeat_months,
)
from govdash.analytics.queries.filters import (
    PLACE_COLUMNS,
    SELECTION_COLUMNS,
    Filters,
    bound_parameters,
    run_query,
)
from govdash.core.access import TICKET_ROWS, requires
from govdash.core.config import Config

# The figures' SQL is defined once, with the stored aggregates (re-exported for the queries).
from govdash.etl.aggregates import BLANK_GROUP as BLANK_GROUP
from govdash.etl.aggregates import DISTRIBUTION_COLUMNS as DISTRIBUTION_COLUMNS
from govdash.etl.aggregates import (
    DISTRIBUTION_NAMES,
    REPEAT_COUNTS,
    distribution_sql,
    scope_cte,
)
from govdash.etl.aggregates import TICKET_AGGREGATES as TICKET_AGGREGATES
from govdash.etl.aggregates import UNPACK_QUANTILES as UNPACK_QUANTILES

MAX_LIST_ROWS = 10_000


def ticket_scope_cte(filters: Filters) -> tuple[str, dict[str, object]]:
    """CTEs `callback_batches` and `scope`: the period's tickets plus in_callback_base (the
    ticket counts towards the 三率) and is_callback_fallback (its file had no callback
    columns, so the fallback rule applies). The same text builds the stored aggregates."""
    where, params = filters.ticket_where("t")
    return scope_cte(where), params


COUNT_COLUMNS = (
    "tickets",
    "repeat_tickets",
    "response_on_time",
    "response_on_time_n",
    "resolution_on_time",
    "resolution_on_time_n",
    "callback_n",
    "callback_fallback_n",
    "callback_recorded_n",
    "satisfied",
    "basic_satisfied",
)


# The counts the 三率 are computed from (add_three_rates), and the figures they give.
THREE_RATE_INPUTS = (
    "contacted",
    "resolved",
    "satisfied",
    "basic_satisfied",
    "callback_n",
    "callback_recorded_n",
)
THREE_RATES = ("response_rate", "resolution_rate", "satisfaction_rate", "three_rate_composite")
# What each of them is computed from (DOMAIN.md §4: 响应率 and 解决率 over the callbacks that
# record them, 满意率 over every valid callback; the composite from all three).
_THREE_RATE_OWN_INPUTS = {
    "response_rate": ("contacted", "callback_recorded_n"),
    "resolution_rate": ("resolved", "callback_recorded_n"),
    "satisfaction_rate": ("satisfied", "basic_satisfied", "callback_n"),
    "three_rate_composite": THREE_RATE_INPUTS,
}
_QUANTILE_FIGURES = (
    "response_median_minutes",
    "response_p90_minutes",
    "resolution_median_hours",
    "resolution_p90_hours",
)
# The stored columns each figure finish_ticket_stats gives is computed from.
FIGURE_INPUTS: dict[str, tuple[str, ...]] = {
    **{column: (column,) for column in (*COUNT_COLUMNS, "contacted", "resolved")},
    **{column: (column,) for column in _QUANTILE_FIGURES},
    "response_on_time_rate": ("response_on_time", "response_on_time_n"),
    "resolution_on_time_rate": ("resolution_on_time", "resolution_on_time_n"),
    **_THREE_RATE_OWN_INPUTS,
}


def finish_ticket_stats(
    frame: pd.DataFrame, config: Config, figures: Iterable[str] | None = None
) -> pd.DataFrame:
    """Zero-fill counts and add the on-time rates and the 三率 to per-group ticket counts.

    figures: only these figures (FIGURE_INPUTS' names) are finished, from their inputs only
    (the frame may lack the others' columns, which stay as they are or absent): a city's
    1.2M compound-months cost 0.6 s to finish whole where a fit reads two figures."""
    wanted = set(FIGURE_INPUTS) if figures is None else set(figures)
    unknown = sorted(wanted - set(FIGURE_INPUTS))
    if unknown:
        raise ValueError(f"not a ticket figure: {unknown}")
    inputs = {column for figure in wanted for column in FIGURE_INPUTS[figure]}
    result = frame.copy(deep=False)  # copy-on-write: the caller's frame never changes
    for column in COUNT_COLUMNS:
        if column in inputs:
            result[column] = result[column].fillna(0).astype("int64")
    for column in ("contacted", "resolved", *_QUANTILE_FIGURES):
        if column in inputs:
            result[column] = result[column].astype("Float64").astype(float)
    for kind in ("response", "resolution"):
        if f"{kind}_on_time_rate" in wanted:
            result[f"{kind}_on_time_rate"] = rate(
                result[f"{kind}_on_time"], result[f"{kind}_on_time_n"]
            )
    rates = wanted & set(THREE_RATES)
    absent = [column for column in THREE_RATE_INPUTS if column not in result.columns]
    if rates and not absent:
        result = add_three_rates(result, config)
    elif rates:  # the rates asked for from their own inputs (the others' come out NaN, unkept)
        rated = add_three_rates(result.assign(**dict.fromkeys(absent, np.nan)), config)
        for name in sorted(rates):
            result[name] = rated[name]
    return result


def as_of(con: duckdb.DuckDBPyConnection) -> datetime | None:
    """The warehouse's as-of time: the latest ticket timestamp, set by the loader."""
    row = con.execute("SELECT value FROM warehouse_info WHERE key = 'as_of'").fetchone()
    if row is None or row[0] is None:
        return None
    try:
        return datetime.fromisoformat(str(row[0]))
    except ValueError:
        return None


def reference_time(con: duckdb.DuckDBPyConnection, filters: Filters) -> datetime:
    """When "at period end" is measured: the period's end, or the as-of time if earlier."""
    period_end = datetime.combine(filters.end_exclusive, time())
    known = as_of(con)
    return min(period_end, known) if known is not None else period_end


def ticket_date_range(con: duckdb.DuckDBPyConnection) -> tuple[date, date] | None:
    """First and last day with an accepted ticket, for the period picker; None when empty."""
    found = accepted_bounds(con)
    return None if found is None else (found[0].date(), found[1].date())


def filter_options(
    con: duckdb.DuckDBPyConnection, filters: Filters | None = None
) -> dict[str, list[str]]:
    """Values for each multi-select. Communities narrow to the chosen streets, compounds to the
    chosen streets and communities, so the pickers cascade. Only places (and ticket codes) in
    the filters' scope are offered: the register's and the tickets'.

    The tickets' places and codes come from the combinations the loader keeps
    (agg_ticket_places; agg_ticket_codes, per street and community) where the stored
    aggregates are current, else from the tickets."""
    street_where = "street = ANY($street)" if filters and filters.street else "TRUE"
    community_where = "community = ANY($community)" if filters and filters.community else "TRUE"
    params: dict[str, object] = {}
    scope_where = "TRUE"
    if filters:
        params = {"street": list(filters.street), "community": list(filters.community)}
        scope_where, scope_params = filters.scope_where("")
        params |= scope_params
    narrowing = {"street": [], "community": ["street"], "compound": ["street", "community"]}
    narrowing["property_company"] = narrowing["compound"]
    where = {"street": street_where, "community": community_where}
    stored = aggregates_ready(con)
    places, codes = ("agg_ticket_places", "agg_ticket_codes") if stored else ("tickets", "tickets")
    lists = []
    for column in PLACE_COLUMNS:
        condition = " AND ".join([where[c] for c in narrowing[column]] or ["TRUE"])
        lists.append(
            f"""(SELECT list(DISTINCT {column} ORDER BY {column}) FROM (
                SELECT {column} FROM compounds WHERE {scope_where} AND {condition}
                UNION SELECT DISTINCT {column} FROM {places}
                    WHERE {scope_where} AND {condition})) AS {column}"""
        )
    sql = f"""WITH codes AS (SELECT DISTINCT category, priority, channel FROM {codes}
            WHERE {scope_where})
    SELECT
        {", ".join(lists)},
        (SELECT list(DISTINCT category ORDER BY category) FROM codes) AS category,
        (SELECT list(DISTINCT priority ORDER BY priority) FROM codes) AS priority,
        (SELECT list(DISTINCT channel ORDER BY channel) FROM codes) AS channel"""
    row = con.execute(sql, bound_parameters(sql, params)).fetchone()
    names = SELECTION_COLUMNS
    if row is None:
        return {name: [] for name in names}
    return {
        name: [str(v) for v in (values or []) if v is not None]
        for name, values in zip(names, row, strict=True)
    }


# --- KPIs -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TicketKpis:
    """The headline numbers of a period and selection (rates are 0–1, NaN when n = 0)."""

    period_label: str
    as_of: datetime | None
    tickets: int
    repeat_tickets: int
    households: int | None  # of the register's compounds in the place selection
    compounds: int
    tickets_per_100_households: float
    response_median_minutes: float
    response_p90_minutes: float
    resolution_median_hours: float
    resolution_p90_hours: float
    response_on_time_rate: float  # on time ÷ (on time + late); open overdue tickets are late
    response_on_time_n: int
    resolution_on_time_rate: float
    resolution_on_time_n: int
    response_rate: float  # 响应率
    resolution_rate: float  # 解决率
    satisfaction_rate: float  # 满意率 = (满意 + k × 基本满意) ÷ N
    three_rate_composite: float  # 三率综合
    callback_n: int  # N of the 三率
    callback_fallback_n: int  # of N, closed tickets with a 满意度 from files without callbacks
    backlog: int  # open at period end
    backlog_overdue: int  # of the backlog, past the resolution limit at period end


def _overdue_condition(alias: str) -> str:
    return (
        f"{alias}.accepted_at + to_seconds(CAST({alias}.resolution_limit_hours * 3600 AS BIGINT))"
        " < $reference_at"
    )


def ticket_kpis(con: duckdb.DuckDBPyConnection, filters: Filters, config: Config) -> TicketKpis:
    stored = aggregate_rows(con, filters)
    if stored is None:
        scope, params = ticket_scope_cte(filters)
        stats = f"""{scope},
    stats AS (SELECT {UNPACK_QUANTILES} FROM (SELECT {TICKET_AGGREGATES} FROM scope))"""
    else:  # the period's stored row; none when it had no tickets (then NULLs, as raw)
        params = dict(stored.params)
        stats = f"""stats AS (
        SELECT {STORED_FIGURES} FROM (SELECT 1) AS one
        LEFT JOIN agg_units AS a ON {stored.where})"""
    backlog, backlog_params = backlog_rows(con, filters)
    place_where, place_params = filters.place_where("reg")
    sql = f"""WITH {stats},
    backlog AS (
        SELECT count(*) AS backlog,
               count(*) FILTER (WHERE {_overdue_condition("t")}) AS backlog_overdue
        FROM {backlog}),
    register AS (
        SELECT sum(households) AS households, count(*) AS compounds
        FROM compounds AS reg WHERE {place_where})
    SELECT * FROM stats, backlog, register"""
    params = params | backlog_params | place_params
    params["reference_at"] = reference_time(con, filters)
    frame = finish_ticket_stats(run_query(con, sql, params), config)
    row = frame.iloc[0]
    households = None if pd.isna(row["households"]) else int(row["households"])
    return TicketKpis(
        period_label=filters.label(),
        as_of=as_of(con),
        tickets=int(row["tickets"]),
        repeat_tickets=int(row["repeat_tickets"]),
        households=households,
        compounds=int(row["compounds"]),
        tickets_per_100_households=float(
            rate(row["tickets"] * 100, households if households is not None else np.nan)
        ),
        response_median_minutes=float(row["response_median_minutes"]),
        response_p90_minutes=float(row["response_p90_minutes"]),
        resolution_median_hours=float(row["resolution_median_hours"]),
        resolution_p90_hours=float(row["resolution_p90_hours"]),
        response_on_time_rate=float(row["response_on_time_rate"]),
        response_on_time_n=int(row["response_on_time_n"]),
        resolution_on_time_rate=float(row["resolution_on_time_rate"]),
        resolution_on_time_n=int(row["resolution_on_time_n"]),
        response_rate=float(row["response_rate"]),
        resolution_rate=float(row["resolution_rate"]),
        satisfaction_rate=float(row["satisfaction_rate"]),
        three_rate_composite=float(row["three_rate_composite"]),
        callback_n=int(row["callback_n"]),
        callback_fallback_n=int(row["callback_fallback_n"]),
        backlog=int(row["backlog"]),
        backlog_overdue=int(row["backlog_overdue"]),
    )


# --- trends -----------------------------------------------------------------------------------

_MONTHS = """months AS (
    SELECT unnest(range(date_trunc('month', $start), $end_exclusive, INTERVAL 1 MONTH)) AS month)"""

# The timing and 三率 figures every per-month and per-unit table carries, in this order.
TICKET_FIGURE_COLUMNS = [
    "response_median_minutes",
    "response_p90_minutes",
    "resolution_median_hours",
    "resolution_p90_hours",
    "response_on_time_rate",
    "response_on_time_n",
    "resolution_on_time_rate",
    "resolution_on_time_n",
    "response_rate",
    "resolution_rate",
    "satisfaction_rate",
    "three_rate_composite",
    "callback_n",
]
TREND_COLUMNS = ["month", "tickets", "repeat_tickets", *TICKET_FIGURE_COLUMNS]


def monthly_trend(con: duckdb.DuckDBPyConnection, filters: Filters, config: Config) -> pd.DataFrame:
    """One row per calendar month of the period (months without tickets included, zero)."""
    stored = aggregate_rows(con, filters, per_month=True)
    if stored is None:
        scope, params = ticket_scope_cte(filters)
        stats = f"""{scope},
    stats AS (
        SELECT {UNPACK_QUANTILES} FROM (
            SELECT date_trunc('month', accepted_at) AS month, {TICKET_AGGREGATES}
            FROM scope GROUP BY 1))"""
    else:
        stats, params = _stored_months(stored, filters)
    sql = f"""WITH {stats}, {_MONTHS}
    SELECT months.month, stats.* EXCLUDE (month)
    FROM months LEFT JOIN stats ON stats.month = months.month
    ORDER BY month"""
    frame = finish_ticket_stats(run_query(con, sql, params), config)
    return frame[TREND_COLUMNS]


def _stored_months(stored: AggregateRows, filters: Filters) -> tuple[str, dict[str, object]]:
    """CTE `stats` of the stored month rows (month as the raw queries' date_trunc gives it)
    and the parameters with the period's own (for the `months` CTE)."""
    _, params = filters.ticket_where("t")
    sql = f"""stats AS (
        SELECT CAST(a.period_start AS TIMESTAMP) AS month, {STORED_FIGURES}
        FROM agg_units AS a WHERE {stored.where})"""
    return sql, params | stored.params


def percentile_trend(
    con: duckdb.DuckDBPyConnection, filters: Filters, config: Config
) -> pd.DataFrame:
    """month, response_p50_minutes, response_p90_minutes, resolution_p50_hours,
    resolution_p90_hours, response_n, resolution_n (n = tickets with a measured time)."""
    stored = aggregate_rows(con, filters, per_month=True)
    if stored is None:
        where, params = filters.ticket_where("t")
        stats = f"""stats AS (
        SELECT date_trunc('month', accepted_at) AS month,
               quantile_cont(response_minutes, [0.5, 0.9]) AS rq,
               quantile_cont(resolution_hours, [0.5, 0.9]) AS hq,
               count(response_minutes) AS response_n,
               count(resolution_hours) AS resolution_n
        FROM tickets AS t WHERE {where} GROUP BY 1)"""
    else:  # the same quantiles and counts, stored per month
        stats, params = _stored_months(stored, filters)
        stats = f"""{stats.replace("stats AS", "stored AS", 1)},
    stats AS (
        SELECT month, [response_median_minutes, response_p90_minutes] AS rq,
               [resolution_median_hours, resolution_p90_hours] AS hq, response_n, resolution_n
        FROM stored)"""
    sql = f"""WITH {_MONTHS}, {stats}
    SELECT months.month,
           rq[1] AS response_p50_minutes, rq[2] AS response_p90_minutes,
           hq[1] AS resolution_p50_hours, hq[2] AS resolution_p90_hours,
           coalesce(response_n, 0) AS response_n, coalesce(resolution_n, 0) AS resolution_n
    FROM months LEFT JOIN stats ON stats.month = months.month
    ORDER BY months.month"""
    return _as_float_columns(run_query(con, sql, params), ("_p50_", "_p90_"))


def _as_float_columns(frame: pd.DataFrame, markers: tuple[str, ...]) -> pd.DataFrame:
    """Nullable numbers as plain float columns (NaN for missing), which charts and tests expect."""
    for column in frame.columns:
        if any(marker in column for marker in markers):
            frame[column] = frame[column].astype("Float64").astype(float)
    return frame


def response_distribution(
    con: duckdb.DuckDBPyConnection, filters: Filters, config: Config, by: str
) -> pd.DataFrame:
    """Per group: tickets, and p10/p25/p50/p75/p90 of response minutes and resolution hours.

    Columns: group_name, tickets, response_n, response_p10 … response_p90, resolution_n,
    resolution_p10 … resolution_p90. Groups with fewer tickets than config.min_group_size are
    left out (DOMAIN.md §6). Sorted by tickets, largest first.
    """
    column = DISTRIBUTION_COLUMNS.get(by)
    if column is None:
        raise ValueError(f"by must be one of {sorted(DISTRIBUTION_COLUMNS)}, got {by!r}")
    names = DISTRIBUTION_NAMES
    stored = distribution_rows(con, filters, by)
    if stored is None:
        where, params = filters.ticket_where("t")
        sql = f"{distribution_sql(column, where)} ORDER BY tickets DESC, group_name"
    else:  # the district's quarter or year, stored by the same SQL
        where, params = stored
        quantiles = ", ".join(
            f"{prefix}_{name}" for prefix in ("response", "resolution") for name in names
        )
        sql = f"""SELECT group_name, tickets, response_n, resolution_n, {quantiles}
        FROM agg_distributions AS d WHERE {where}
        ORDER BY tickets DESC, group_name"""
    params["blank_group"] = BLANK_GROUP
    frame = _as_float_columns(run_query(con, sql, params), ("_p",))
    columns = ["group_name", "tickets", "response_n"]
    columns += [f"response_{n}" for n in names] + ["resolution_n"]
    columns += [f"resolution_{n}" for n in names]
    return hide_small_groups(frame[columns], "tickets", config.min_group_size)


# --- backlog ----------------------------------------------------------------------------------


def backlog_aging(con: duckdb.DuckDBPyConnection, filters: Filters, config: Config) -> pd.DataFrame:
    """Tickets open at period end by age at period end: bucket, tickets, overdue (all 4 rows)."""
    backlog, params = backlog_rows(con, filters)
    sql = f"""SELECT least(floor(greatest(
                date_diff('second', t.accepted_at, $reference_at), 0) / 86400.0), 7) AS age_days,
               count(*) AS tickets,
               count(*) FILTER (WHERE {_overdue_condition("t")}) AS overdue
        FROM {backlog} GROUP BY 1"""
    params["reference_at"] = reference_time(con, filters)
    counts = run_query(con, sql, params)
    counts["bucket"] = [aging_bucket(float(days)) for days in counts["age_days"]]
    summed = counts.groupby("bucket")[["tickets", "overdue"]].sum()
    summed = summed.reindex(list(AGING_LABELS), fill_value=0)
    frame = summed.reset_index().rename(columns={"index": "bucket"})
    frame["tickets"] = frame["tickets"].astype("int64")
    frame["overdue"] = frame["overdue"].astype("int64")
    return frame[["bucket", "tickets", "overdue"]]


@requires(TICKET_ROWS)
def longest_open(
    con: duckdb.DuckDBPyConnection, filters: Filters, config: Config, limit: int = 20
) -> pd.DataFrame:
    """The tickets open longest at period end: ticket_id, community, compound,
    property_company, category, priority, accepted_at, age_days, status, is_overdue."""
    backlog, params = backlog_rows(con, filters)
    sql = f"""SELECT t.ticket_id, t.community, t.compound, t.property_company, t.category,
               t.priority, t.accepted_at,
               date_diff('second', t.accepted_at, $reference_at) / 86400.0 AS age_days,
               t.status, {_overdue_condition("t")} AS is_overdue
        FROM {backlog}
        ORDER BY age_days DESC, t.ticket_id
        LIMIT $limit"""
    params["reference_at"] = reference_time(con, filters)
    params["limit"] = max(0, min(int(limit), MAX_LIST_ROWS))
    return run_query(con, sql, params)


# --- volume patterns --------------------------------------------------------------------------


def weekday_hour_volume(
    con: duckdb.DuckDBPyConnection, filters: Filters, config: Config
) -> pd.DataFrame:
    """Tickets by weekday (1 = Monday … 7 = Sunday) and hour 0–23; all 168 cells, zeros kept."""
    where, params = filters.ticket_where("t")
    sql = f"""WITH cells AS (
            SELECT weekday, hour FROM range(1, 8) AS w(weekday), range(0, 24) AS h(hour)),
        counts AS (
            SELECT isodow(t.accepted_at) AS weekday, hour(t.accepted_at) AS hour,
                   count(*) AS tickets
            FROM tickets AS t WHERE {where} GROUP BY ALL)
    SELECT cells.weekday, cells.hour, coalesce(counts.tickets, 0) AS tickets
    FROM cells LEFT JOIN counts ON counts.weekday = cells.weekday AND counts.hour = cells.hour
    ORDER BY cells.weekday, cells.hour"""
    frame = run_query(con, sql, params)
    return frame.astype({"weekday": "int64", "hour": "int64", "tickets": "int64"})


@dataclass(frozen=True)
class RepeatRequests:
    """Repeat requests (same caller and category within the window; DOMAIN.md §4).

    Both frames: tickets, tickets_with_caller, repeats, repeat_share = repeats ÷
    tickets_with_caller (a repeat can only be seen where the caller is known). Groups with
    fewer tickets than config.min_group_size are left out.
    """

    by_category: pd.DataFrame  # category, …
    top_compounds: pd.DataFrame  # community, compound, … (most repeats first)


def repeat_requests(
    con: duckdb.DuckDBPyConnection, filters: Filters, config: Config, top: int = 10
) -> RepeatRequests:
    stored = repeat_months(con, filters)
    if stored is None:
        where, params = filters.ticket_where("t")
        sql = f"""SELECT grouping(t.category) = 1 AS is_compound_row,
               t.category, t.community, t.compound, {REPEAT_COUNTS}
        FROM tickets AS t WHERE {where}
        GROUP BY GROUPING SETS ((t.category), (t.community, t.compound))"""
    else:  # the months' stored counts, summed (a category's rows over every community)
        where, params = stored
        sql = f"""SELECT is_compound_row, category, community, compound,
               CAST(sum(tickets) AS BIGINT) AS tickets,
               CAST(sum(tickets_with_caller) AS BIGINT) AS tickets_with_caller,
               CAST(sum(repeats) AS BIGINT) AS repeats
        FROM (SELECT t.is_compound_row, t.category,
                     CASE WHEN t.is_compound_row THEN t.community END AS community, t.compound,
                     t.tickets, t.tickets_with_caller, t.repeats
              FROM agg_repeats AS t WHERE {where})
        GROUP BY ALL"""
    frame = run_query(con, sql, params)
    counts = ["tickets", "tickets_with_caller", "repeats"]
    for column in counts:
        frame[column] = frame[column].astype("int64")
    compound_rows = frame["is_compound_row"].astype(bool)
    by_category = frame.loc[~compound_rows, ["category", *counts]]
    by_compound = frame.loc[compound_rows, ["community", "compound", *counts]]
    by_compound = by_compound[by_compound["compound"].notna()]
    result = []
    for part in (by_category, by_compound):
        part = part.copy()
        part["repeat_share"] = rate(part["repeats"], part["tickets_with_caller"])
        result.append(hide_small_groups(part, "tickets", config.min_group_size))
    categories = result[0].sort_values(["repeats", "category"], ascending=[False, True])
    compounds = result[1].sort_values(
        ["repeats", "repeat_share", "compound", "community"], ascending=[False, False, True, True]
    )
    return RepeatRequests(
        by_category=categories.reset_index(drop=True),
        top_compounds=compounds.head(max(0, top)).reset_index(drop=True),
    )


# --- drill-down -------------------------------------------------------------------------------

TICKET_ROW_COLUMNS = """t.ticket_id, t.accepted_at, t.channel, t.request_type, t.category,
    t.priority, t.building, t.status, t.first_response_at, t.closed_at, t.response_minutes,
    t.resolution_hours, t.response_status, t.resolution_status, t.is_valid_callback,
    t.callback_satisfaction, t.is_repeat"""


@requires(TICKET_ROWS)
def ticket_rows(
    con: duckdb.DuckDBPyConnection,
    filters: Filters,
    config: Config,
    compound: str,
    limit: int = 500,
) -> pd.DataFrame:
    """One compound's tickets in the period, newest first; no caller hash, no free text."""
    where, params = filters.ticket_where("t")
    sql = f"""SELECT {TICKET_ROW_COLUMNS}
        FROM tickets AS t WHERE {where} AND t.compound = $drill_compound
        ORDER BY t.accepted_at DESC, t.ticket_id
        LIMIT $limit"""
    params["drill_compound"] = compound if isinstance(compound, str) else ""
    params["limit"] = max(0, min(int(limit), MAX_LIST_ROWS))
    return run_query(con, sql, params)
