"""Gathers one year's evaluation inputs from the warehouse for govdash.analytics.metrics.evaluation.

Evaluator scores and adjustments come from evaluation_scores / evaluation_adjustments at the
chosen level. Metric values come from the existing read side: `units.unit_table` at compound
level for the calendar year (tickets accepted in it; survey waves overlapping it, see
govdash.analytics.queries.surveys), rolled up to communities and property companies by household-weighted
means of their compounds (`evaluation.roll_up_metrics`). Units to rank are the register's
units of the level; units that were scored but are not in the register are added by the
engine (and lack metric indicators).

Scope: with a street or community scope, metrics come from that scope's data only and the
units ranked are the scope's units (its compounds, its communities, the property companies
of its compounds); scores of other units are not read into the result.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from govdash.analytics.metrics.evaluation import (
    ADJUSTMENT_COLUMNS,
    LEVELS,
    SCORE_COLUMNS,
    EvaluationInput,
    EvaluationResult,
    evaluate,
    roll_up_metrics,
)
from govdash.analytics.queries.filters import Filters, run_query
from govdash.analytics.queries.units import unit_table
from govdash.core.access import Scope
from govdash.core.config import Config

# Compound → property company, from the register (unit_table's compound rows carry no company).
_COMPANIES_SQL = """SELECT community, compound, any_value(street) AS street,
        any_value(property_company) AS property_company
    FROM compounds WHERE compound IS NOT NULL GROUP BY community, compound"""


def available_years(con: duckdb.DuckDBPyConnection, level: str | None = None) -> list[int]:
    """Years with evaluator scores or adjustments (at `level`, else at any level), newest first."""
    if level is not None and level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    sql = """SELECT year FROM evaluation_scores WHERE $level IS NULL OR unit_level = $level
        UNION SELECT year FROM evaluation_adjustments WHERE $level IS NULL OR unit_level = $level
        ORDER BY year DESC"""
    frame = run_query(con, sql, {"level": level})
    return [int(year) for year in frame["year"]]


def evaluator_scores(con: duckdb.DuckDBPyConnection, year: int, level: str) -> pd.DataFrame:
    """year, unit, evaluator, indicator, score of one year and level."""
    sql = """SELECT year, unit, evaluator, indicator, score FROM evaluation_scores
        WHERE year = $year AND unit_level = $level ORDER BY unit, indicator, evaluator"""
    frame = run_query(con, sql, {"year": year, "level": level})
    frame["score"] = frame["score"].astype(float)
    return frame[["year", *SCORE_COLUMNS]]


def evaluation_adjustments(con: duckdb.DuckDBPyConnection, year: int, level: str) -> pd.DataFrame:
    """unit, evaluator, bonus, penalty, is_veto, note of one year and level."""
    sql = """SELECT unit, evaluator, bonus, penalty, is_veto, note FROM evaluation_adjustments
        WHERE year = $year AND unit_level = $level ORDER BY unit, evaluator"""
    frame = run_query(con, sql, {"year": year, "level": level})
    for column in ("bonus", "penalty"):
        frame[column] = frame[column].astype("Float64").astype(float)
    frame["is_veto"] = frame["is_veto"].astype("boolean")
    return frame[ADJUSTMENT_COLUMNS]


def compound_metrics(
    con: duckdb.DuckDBPyConnection, config: Config, year: int, scope: Scope | None = None
) -> tuple[pd.DataFrame, list[str]]:
    """Per compound of the year: `unit_table` at compound level plus its street and property
    company from the register, and is_registered.

    A compound name used in several communities is renamed "小区（社区）" so each row has its
    own unit; evaluation sheets name units without their community, so such scores cannot be
    matched and the returned notes say so.
    """
    filters = Filters.for_year(year).within(scope or Scope.district())
    table = unit_table(con, filters, config, "compound")
    companies = run_query(con, _COMPANIES_SQL, {}).rename(
        columns={"community": "parent", "compound": "unit"}
    )
    table["_parent"] = table["parent"].astype(object).where(table["parent"].notna(), "")
    companies["_parent"] = companies["parent"].astype(object).where(companies["parent"].notna(), "")
    table = table.merge(
        companies[["unit", "_parent", "street", "property_company"]],
        on=["unit", "_parent"],
        how="left",
    ).drop(columns="_parent")
    table["is_registered"] = table["compounds"] > 0
    notes: list[str] = []
    repeated = table["unit"].duplicated(keep=False)
    if repeated.any():
        names = sorted(set(table.loc[repeated, "unit"]))
        table.loc[repeated, "unit"] = [
            f"{unit}（{parent}）"
            for unit, parent in zip(
                table.loc[repeated, "unit"], table.loc[repeated, "parent"], strict=True
            )
        ]
        notes.append(
            f"小区名称在多个社区重复，已标注社区以区分：{'、'.join(names)}；"
            "评分表只写小区名称时无法对应到其中哪一个"
        )
    return table, notes


def evaluation_input(
    con: duckdb.DuckDBPyConnection,
    config: Config,
    year: int,
    level: str,
    scope: Scope | None = None,
) -> EvaluationInput:
    """The evaluation inputs of `year` at `level` (compound, community or property_company),
    limited to `scope` (the whole district when None)."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    scope = scope or Scope.district()
    compounds, notes = compound_metrics(con, config, year, scope)
    metrics = roll_up_metrics(compounds, level, config)
    registered = compounds[compounds["is_registered"]]
    if level == "compound":
        units = registered["unit"]
    elif level == "community":
        units = registered["parent"]
    else:
        units = registered["property_company"]
    names = tuple(sorted({str(unit) for unit in units.dropna()}))
    scores = evaluator_scores(con, year, level)
    adjustments = evaluation_adjustments(con, year, level)
    if scope.is_restricted:  # only the scope's units; the engine must not add the others
        scores = scores[scores["unit"].isin(names)].reset_index(drop=True)
        adjustments = adjustments[adjustments["unit"].isin(names)].reset_index(drop=True)
        metrics = metrics[metrics["unit"].isin(names)].reset_index(drop=True)
    return EvaluationInput(
        year=year,
        level=level,
        scores=scores,
        adjustments=adjustments,
        metrics=metrics,
        units=names,
        notes=tuple(notes),
    )


def evaluation_result(
    con: duckdb.DuckDBPyConnection,
    config: Config,
    year: int,
    level: str,
    scope: Scope | None = None,
) -> EvaluationResult:
    """The year's ranking at one level under the config's weights (what the page caches),
    among the units of `scope` (the whole district when None)."""
    return evaluate(evaluation_input(con, config, year, level, scope), config)
