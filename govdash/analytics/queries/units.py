"""Per-unit tables (community, compound, property company), the 红黑榜 and the drill-down."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from govdash.analytics.metrics.rates import indicator_points, rate, red_black_size
from govdash.analytics.queries.aggregated import STORED_FIGURES, aggregate_rows
from govdash.analytics.queries.filters import Filters, run_query
from govdash.analytics.queries.surveys import survey_item_rates
from govdash.analytics.queries.tickets import (
    TICKET_AGGREGATES,
    TICKET_FIGURE_COLUMNS,
    UNPACK_QUANTILES,
    finish_ticket_stats,
    ticket_scope_cte,
)
from govdash.core.config import Config

# Ranking level → (unit column, parent column, whether the parent is part of the unit's key).
# A compound is known by community + name; a community by its name, its street shown beside
# it. Identifiers in SQL come only from this table.
UNIT_LEVELS: dict[str, tuple[str, str | None, bool]] = {
    "community": ("community", "street", False),
    "compound": ("compound", "community", True),
    "property_company": ("property_company", None, False),
}
# The place columns a unit's tickets are grouped by (its key), to find its stored aggregates.
AGGREGATE_KEYS: dict[str, tuple[str, ...]] = {
    "community": ("community",),
    "compound": ("community", "compound"),
    "property_company": ("property_company",),
}
# Drill-down: a chosen unit's level → the level of its children (also the level a 红黑榜 of
# one unit offers instead).
CHILD_LEVEL = {"street": "community", "community": "compound", "property_company": "compound"}

# Config indicator (source, metric) → unit_table column feeding the composite.
COMPOSITE_SOURCES = {
    ("tickets", "response_rate"): "response_rate",
    ("tickets", "resolution_rate"): "resolution_rate",
    ("tickets", "satisfaction_rate"): "satisfaction_rate",
    ("survey", "satisfaction_rate"): "survey_satisfaction_rate",
}
# Which count backs each rankable metric: red_black_list needs min_records of it.
RECORDS_FOR_METRIC = {
    "composite": "callback_n",
    "three_rate_composite": "callback_n",
    "response_rate": "callback_n",
    "resolution_rate": "callback_n",
    "satisfaction_rate": "callback_n",
    "response_on_time_rate": "response_on_time_n",
    "resolution_on_time_rate": "resolution_on_time_n",
    "survey_satisfaction_rate": "survey_respondents",
}
DEFAULT_RECORDS = "tickets"

UNIT_TABLE_COLUMNS = [
    "unit",
    "parent",
    "compounds",
    "households",
    "tickets",
    "tickets_per_100_households",
    "repeat_tickets",
    *TICKET_FIGURE_COLUMNS,
    "survey_satisfaction_rate",
    "survey_n",
    "survey_respondents",
    "survey_is_small_sample",
    "composite",
]


def unit_table(
    con: duckdb.DuckDBPyConnection, filters: Filters, config: Config, level: str
) -> pd.DataFrame:
    """One row per unit of `level` (community, compound or property_company).

    Units are the register's compounds in the place selection grouped to the level, plus
    units that appear only in tickets; a unit without a name (e.g. tickets of self-governed
    compounds at company level) is left out. Columns: see UNIT_TABLE_COLUMNS. Survey columns
    come from `surveys.survey_item_rates` for config.overall_item (household-weighted, the
    survey period rule of that module). `composite` is described in `composite_score`.
    Sorted by composite, best first.
    """
    if level not in UNIT_LEVELS:
        raise ValueError(f"level must be one of {sorted(UNIT_LEVELS)}, got {level!r}")
    unit_column, parent_column, parent_in_key = UNIT_LEVELS[level]
    if parent_column is None:
        parent, keys, join = "CAST(NULL AS VARCHAR)", "unit", "s.unit = r.unit"
    elif parent_in_key:
        parent, keys = parent_column, "unit, parent"
        join = "s.unit = r.unit AND s.parent IS NOT DISTINCT FROM r.parent"
    else:
        # A community in two streets shows the first street by name (any_value would show
        # whichever the scan met first, which changes with the files' row order).
        parent, keys, join = f"min({parent_column})", "unit", "s.unit = r.unit"
    # The stored rows grouped by the unit's key (a community's parent is its first street).
    stored = aggregate_rows(con, filters, AGGREGATE_KEYS[level])
    if stored is None:
        scope, params = ticket_scope_cte(filters)
        stats = f"""{scope},
    ticket_stats AS (
        SELECT {UNPACK_QUANTILES} FROM (
            SELECT {unit_column} AS unit, {parent} AS parent, {TICKET_AGGREGATES}
            FROM scope WHERE {unit_column} IS NOT NULL GROUP BY {keys}))"""
    else:
        params = dict(stored.params)
        stored_parent = {None: "CAST(NULL AS VARCHAR)", "street": "a.parent_street"}.get(
            parent_column, f"a.{parent_column}"
        )
        stats = f"""ticket_stats AS (
        SELECT a.{unit_column} AS unit, {stored_parent} AS parent, {STORED_FIGURES}
        FROM agg_units AS a WHERE {stored.where} AND a.{unit_column} IS NOT NULL)"""
    register_where, register_params = filters.place_where("reg")
    sql = f"""WITH {stats},
    register AS (
        SELECT {unit_column} AS unit, {parent} AS parent, count(*) AS compounds,
               sum(households) AS households
        FROM compounds AS reg WHERE {register_where} AND {unit_column} IS NOT NULL
        GROUP BY {keys})
    SELECT coalesce(r.unit, s.unit) AS unit, coalesce(r.parent, s.parent) AS parent,
           coalesce(r.compounds, 0) AS compounds, r.households,
           s.* EXCLUDE (unit, parent)
    FROM register AS r FULL OUTER JOIN ticket_stats AS s ON {join}"""
    frame = finish_ticket_stats(run_query(con, sql, params | register_params), config)
    frame["compounds"] = frame["compounds"].astype("int64")
    frame["households"] = frame["households"].astype("Float64").astype(float)
    frame["tickets_per_100_households"] = rate(frame["tickets"] * 100, frame["households"])
    # with_survey reads the overall item's rows alone. A compound is its own group, so counting
    # that item's answers alone gives it the same figures, bit for bit; a community's or
    # company's sums over its compounds are left to the roll-up of every item, whose float
    # sums the other items' rows take part in (pandas' grouped sums).
    item = config.overall_item if level == "compound" else None
    frame = with_survey(frame, survey_item_rates(con, filters, config, level, item), config)
    frame["composite"] = composite_score(frame, config)
    frame = frame.sort_values(["composite", "unit"], ascending=[False, True], na_position="last")
    return frame[UNIT_TABLE_COLUMNS].reset_index(drop=True)


def with_survey(frame: pd.DataFrame, item_rates: pd.DataFrame, config: Config) -> pd.DataFrame:
    """`frame`'s units with their overall survey columns (`item_rates` of survey_item_rates)."""
    overall = item_rates[item_rates["item"] == config.overall_item]
    survey = overall.rename(
        columns={
            "rate": "survey_satisfaction_rate",
            "n": "survey_n",
            "respondents": "survey_respondents",
            "is_small_sample": "survey_is_small_sample",
        }
    )[
        [
            "unit",
            "parent",
            "survey_satisfaction_rate",
            "survey_n",
            "survey_respondents",
            "survey_is_small_sample",
        ]
    ]
    # Parents compare as text so a missing parent matches a missing parent.
    left = frame.assign(_parent=frame["parent"].astype(object).where(frame["parent"].notna(), ""))
    right = survey.assign(
        _parent=survey["parent"].astype(object).where(survey["parent"].notna(), "")
    ).drop(columns="parent")
    merged = left.merge(right, on=["unit", "_parent"], how="left").drop(columns="_parent")
    merged["survey_n"] = merged["survey_n"].fillna(0).astype("int64")
    merged["survey_respondents"] = merged["survey_respondents"].fillna(0).astype("int64")
    merged["survey_is_small_sample"] = (
        merged["survey_is_small_sample"].astype("boolean").fillna(True).astype(bool)
    )
    merged["survey_satisfaction_rate"] = merged["survey_satisfaction_rate"].astype(float)
    return merged


def composite_score(table: pd.DataFrame, config: Config) -> pd.Series:
    """0–100: the metric indicators of the config's evaluation system, scored as in the annual
    evaluation (points × clamp((x − floor) ÷ (target − floor), 0, 1)) and divided by the
    points of the indicators the unit has data for. A survey rate under the minimum sample
    does not count. NaN when no indicator has data."""
    earned = np.zeros(len(table))
    possible = np.zeros(len(table))
    for indicator in config.indicators:
        column = COMPOSITE_SOURCES.get((indicator.source, indicator.metric or ""))
        if column is None or indicator.floor is None or indicator.target is None:
            continue
        values = table[column].astype(float).to_numpy()
        if column == "survey_satisfaction_rate":
            values = np.where(table["survey_is_small_sample"].to_numpy(bool), np.nan, values)
        points = indicator_points(values, indicator.floor, indicator.target, indicator.points)
        known = ~np.isnan(values)
        earned += np.where(known, points, 0.0)
        possible += np.where(known, indicator.points, 0.0)
    return pd.Series(rate(earned * 100, possible), index=table.index, name="composite")


def red_black_list(
    table: pd.DataFrame,
    metric: str,
    n: int,
    min_records: int,
    higher_is_better: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """红黑榜: the best n and the worst n units on `metric` (pure).

    Only units with at least `min_records` of the count behind the metric
    (RECORDS_FOR_METRIC, else tickets) and a value for it take part; pass at least
    config.min_group_size (DOMAIN.md §6). Each list holds n units, or half the eligible units
    when there are fewer than 2n (metrics.red_black_size), so neither side is ever empty while
    two units take part, and the black list never repeats a unit of the red list.
    Both frames keep the table's columns and add rank (1 = best on the red list, 1 = worst on
    the black list). Ties are broken by unit name, so the lists are stable.
    """
    eligible = ranking_candidates(table, metric, min_records)
    best_first = eligible.sort_values(
        [metric, "unit"], ascending=[not higher_is_better, True], kind="stable"
    )
    count = red_black_size(len(best_first), n)
    red = best_first.head(count)
    rest = best_first.drop(index=red.index)
    worst_first = rest.sort_values(
        [metric, "unit"], ascending=[higher_is_better, True], kind="stable"
    )
    black = worst_first.head(count)
    return _ranked(red), _ranked(black)


def ranking_candidates(table: pd.DataFrame, metric: str, min_records: int) -> pd.DataFrame:
    """The units that may take part in a 红黑榜 on `metric`: a value for it, and at least
    `min_records` of the count behind it (RECORDS_FOR_METRIC, else tickets). Pure."""
    if metric not in table.columns:
        raise ValueError(f"unknown metric column: {metric!r}")
    eligible = table[table[metric].notna()]
    records = records_for(table, metric)
    if records in eligible.columns:
        eligible = eligible[eligible[records].fillna(0) >= max(min_records, 0)]
    return eligible


def records_for(table: pd.DataFrame, metric: str) -> str:
    """The count column a unit needs enough of to be ranked on `metric`."""
    records = RECORDS_FOR_METRIC.get(metric, DEFAULT_RECORDS)
    return records if records in table.columns else DEFAULT_RECORDS


def _ranked(frame: pd.DataFrame) -> pd.DataFrame:
    result = frame.reset_index(drop=True).copy()
    result.insert(0, "rank", np.arange(1, len(result) + 1, dtype="int64"))
    return result


@dataclass(frozen=True)
class DrillDown:
    """The children of a chosen unit: their level, the narrowed filters and their table."""

    child_level: str
    filters: Filters
    table: pd.DataFrame


def drill_down(
    con: duckdb.DuckDBPyConnection, filters: Filters, config: Config, level: str, unit: str
) -> DrillDown:
    """Street → its communities; community or property company → its compounds.

    For a compound, the next step is its tickets: `tickets.ticket_rows`.
    """
    child = CHILD_LEVEL.get(level)
    if child is None:
        raise ValueError(f"level must be one of {sorted(CHILD_LEVEL)}, got {level!r}")
    narrowed = filters.narrowed(level, unit)
    return DrillDown(child, narrowed, unit_table(con, narrowed, config, child))
