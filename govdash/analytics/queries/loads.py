"""Queries that return DataFrames; every value is bound, every identifier a code constant."""

from __future__ import annotations

from datetime import date

import duckdb
import pandas as pd

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
    row = con.execute(
        """SELECT min(d), max(d) FROM (
               SELECT CAST(accepted_at AS DATE) AS d FROM tickets
               UNION ALL SELECT surveyed_on FROM survey_responses
               UNION ALL SELECT make_date(wave_year, 1, 1) FROM survey_responses)"""
    ).fetchone()
    if row is None:
        return None, None
    return row[0], row[1]


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
