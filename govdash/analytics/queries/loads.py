"""Queries that return DataFrames; every value is bound, every identifier a code constant."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import duckdb
import pandas as pd

from govdash.analytics.queries.aggregated import accepted_bounds, backlog_rows
from govdash.analytics.queries.filters import Filters, run_query
from govdash.analytics.queries.surveys import (
    _picked_responses_cte,
    wave_keys_in_period,
    wave_labels,
)
from govdash.core.access import TICKET_ROWS, requires

WAREHOUSE_TABLES = (
    "compounds",
    "tickets",
    "survey_responses",
    "survey_answers",
    "evaluation_scores",
    "evaluation_adjustments",
    "load_batches",
    "rejected_rows",
)


def table_counts(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    rows = []
    for table in WAREHOUSE_TABLES:
        count = con.execute(f"SELECT count(*) FROM {table}").fetchone()
        rows.append({"table": table, "rows": int(count[0]) if count else 0})
    return pd.DataFrame(rows)


def load_history(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    found = con.execute(
        """SELECT count(*) FROM duckdb_columns()
           WHERE table_name = 'load_batches' AND column_name = 'loaded_by'"""
    ).fetchone()
    # Versions published before loaded_by existed have no such column: their actor is unknown.
    loaded_by = "loaded_by" if found and found[0] else "CAST(NULL AS VARCHAR)"
    return con.execute(
        f"""SELECT batch_id, loaded_at, {loaded_by} AS loaded_by, file_name, kinds, rows_loaded,
                  rows_rejected, rows_inserted, rows_updated, rows_unchanged, rows_skipped,
                  array_to_string(sheets_used, '、') AS sheets_used,
                  array_to_string(sheets_skipped, '、') AS sheets_skipped
           FROM load_batches ORDER BY batch_id DESC"""
    ).df()


def warehouse_info(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    return {
        str(k): str(v) for k, v in con.execute("SELECT key, value FROM warehouse_info").fetchall()
    }


def data_period(con: duckdb.DuckDBPyConnection) -> tuple[date | None, date | None]:
    """First and last day with tickets or survey data."""
    row = con.execute(  # each column's least and greatest: 0.5 ms, where a union took 6
        """SELECT least(min(surveyed_on), make_date(min(wave_year), 1, 1)),
               greatest(max(surveyed_on), make_date(max(wave_year), 1, 1))
        FROM survey_responses"""
    ).fetchone()
    days = [day for day in (row or ()) if day is not None]
    tickets = accepted_bounds(con)
    if tickets is not None:
        days += [tickets[0].date(), tickets[1].date()]
    return (min(days), max(days)) if days else (None, None)


@requires(TICKET_ROWS)
def rejected_rows(con: duckdb.DuckDBPyConnection, batch_id: int | None = None) -> pd.DataFrame:
    """Rejected rows with their reasons, for the clerk who fixes the file (newest batch first)."""
    return con.execute(
        """SELECT batch_id, file_name, sheet, row_number, column_name, raw_value, reason
           FROM rejected_rows
           WHERE $batch IS NULL OR batch_id = $batch
           ORDER BY batch_id DESC, file_name, sheet, row_number, column_name""",
        {"batch": batch_id},
    ).df()


# --- which batches a figure used -----------------------------------------------------------------

# The kinds of warehouse rows a figure can be computed from, and the default of a figure that
# does not say (tickets of the period, tickets open at its end, its survey waves, the register).
SOURCE_KINDS = ("tickets", "backlog", "surveys", "previous_wave", "register", "evaluation")
DEFAULT_SOURCES = ("tickets", "backlog", "surveys", "register")
# Evaluation levels → the register column that names such a unit (a code constant, never text
# from a widget).
_EVALUATION_UNIT_COLUMNS = {
    "compound": "compound",
    "community": "community",
    "property_company": "property_company",
}

_Fragment = tuple[str, dict[str, object]] | None


def _ticket_batches(
    con: duckdb.DuckDBPyConnection, filters: Filters, level: str | None
) -> _Fragment:
    where, params = filters.ticket_where("t")
    return f"SELECT t.batch_id FROM tickets AS t WHERE {where}", params


def _backlog_batches(
    con: duckdb.DuckDBPyConnection, filters: Filters, level: str | None
) -> _Fragment:
    backlog, params = backlog_rows(con, filters)
    return f"SELECT t.batch_id FROM {backlog}", params


def _survey_batches_of(filters: Filters, wave_keys: list[int]) -> _Fragment:
    if not wave_keys:
        return None
    # The picked rows carry their batch (a response is one row: the loader upserts on its id),
    # so no second pass over a city's survey_responses is needed to look it up.
    picked, params = _picked_responses_cte(filters)
    sql = f"SELECT batch_id FROM (WITH {picked} SELECT batch_id FROM picked)"
    return sql, params | {"wave_keys": wave_keys}


def _survey_batches(
    con: duckdb.DuckDBPyConnection, filters: Filters, level: str | None
) -> _Fragment:
    return _survey_batches_of(filters, wave_keys_in_period(con, filters))


def _previous_wave_batches(
    con: duckdb.DuckDBPyConnection, filters: Filters, level: str | None
) -> _Fragment:
    """The wave before the period's latest, which the wave comparison sets beside it."""
    in_period = wave_keys_in_period(con, filters)
    earlier = [key for key in wave_labels(con) if in_period and key < in_period[-1]]
    return _survey_batches_of(filters, earlier[-1:])


def _register_batches(
    con: duckdb.DuckDBPyConnection, filters: Filters, level: str | None
) -> _Fragment:
    where, params = filters.place_where("reg")
    return f"SELECT reg.batch_id FROM compounds AS reg WHERE {where}", params


def _evaluation_batches(
    con: duckdb.DuckDBPyConnection, filters: Filters, level: str | None
) -> _Fragment:
    """Evaluator scores and adjustments of the filters' years at `level`, of the scope's units."""
    if level not in _EVALUATION_UNIT_COLUMNS:
        raise ValueError(f"evaluation sources need a level of {sorted(_EVALUATION_UNIT_COLUMNS)}")
    scope, params = filters.scope_where("reg")
    in_scope = f"""unit IN (SELECT reg.{_EVALUATION_UNIT_COLUMNS[level]} FROM compounds AS reg
        WHERE {scope})"""
    condition = "year BETWEEN $first_year AND $last_year AND unit_level = $level"
    if filters.scope.is_restricted:
        condition += f" AND {in_scope}"
    sql = f"""SELECT batch_id FROM evaluation_scores WHERE {condition}
        UNION ALL SELECT batch_id FROM evaluation_adjustments WHERE {condition}"""
    years = {"first_year": filters.start.year, "last_year": filters.end.year, "level": level}
    return sql, params | years


_SOURCES: dict[str, Callable[[duckdb.DuckDBPyConnection, Filters, str | None], _Fragment]] = {
    "tickets": _ticket_batches,
    "backlog": _backlog_batches,
    "surveys": _survey_batches,
    "previous_wave": _previous_wave_batches,
    "register": _register_batches,
    "evaluation": _evaluation_batches,
}


def batches_used(
    con: duckdb.DuckDBPyConnection,
    filters: Filters,
    sources: tuple[str, ...] = DEFAULT_SOURCES,
    level: str | None = None,
) -> pd.DataFrame:
    """The load batches behind a figure: the batch_id of every row it reads, for each kind of
    row in `sources` (SOURCE_KINDS) under `filters` (period, selections and scope) the way the
    figure's own query picks them; `level` names the unit level of "evaluation" rows. The rows
    of load_history, newest first.

    A row carries the batch that last wrote it, so a batch whose rows were all replaced by a
    later load is not listed, nor is a file of another period, place or kind.
    """
    unknown = sorted(set(sources) - set(SOURCE_KINDS))
    if unknown:
        raise ValueError(f"unknown sources {unknown}; choose from {SOURCE_KINDS}")
    parts: list[str] = []
    params: dict[str, object] = {}
    for kind in dict.fromkeys(sources):
        fragment = _SOURCES[kind](con, filters, level)
        if fragment is not None:
            parts.append(fragment[0])
            params |= fragment[1]
    history = load_history(con)
    if not parts:
        return history.iloc[0:0]
    union = "\n        UNION ".join(f"({part})" for part in parts)
    used = run_query(
        con, f"SELECT DISTINCT batch_id FROM ({union}) WHERE batch_id IS NOT NULL", params
    )
    chosen = set(used["batch_id"].astype("int64"))
    return history[history["batch_id"].isin(chosen)].reset_index(drop=True)
