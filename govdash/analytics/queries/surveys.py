"""Survey queries: item satisfaction rates with household-weighted roll-ups, profiles, wave change,
callback satisfaction and comment words.

Which survey rows a period holds (the rule every survey query uses): whole waves, never part
of one. A wave (wave_year, wave_index) spans the dates its responses were surveyed on
(min to max of surveyed_on); where no response of the wave has a date, it spans its half-year
(wave_index 1 = 1 Jan–30 Jun, 2 = 1 Jul–31 Dec of wave_year). A wave belongs to a period when
that span overlaps the period. So a year holds both of its half-year waves, a quarter or month
the wave fielded in it (or the half-year wave of an undated survey), and respondents ÷
households stays a per-wave rate: with several waves in a period it is the mean per wave.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
import stat
import tempfile
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from govdash.analytics.metrics.rates import rate, survey_index, wilson_bounds
from govdash.analytics.queries.aggregated import aggregate_rows, aggregates_ready
from govdash.analytics.queries.filters import (
    PLACE_COLUMNS,
    Filters,
    bound_parameters,
    run_query,
)
from govdash.analytics.queries.tickets import ticket_scope_cte
from govdash.core.config import Config
from govdash.etl.aggregates import SURVEY_SCORES

# Survey roll-up levels → (unit column, parent column, whether the parent is part of the
# unit's key) of the per-compound rows: a compound is known by community + name.
SURVEY_LEVELS: dict[str, tuple[str, str | None, bool]] = {
    "compound": ("compound", "community", True),
    "community": ("community", "street", False),
    "street": ("street", None, False),
    "property_company": ("property_company", None, False),
    "all": ("", None, False),
}
ALL_UNITS = "全部"
SMALL_SAMPLE_LABEL = "样本不足"
SATISFACTION_LEVELS = ("满意", "基本满意", "不满意")
# Level → the stored aggregate column counting it (govdash.etl.aggregates).
STORED_SATISFACTION = {"满意": "satisfied", "基本满意": "basic_satisfied", "不满意": "dissatisfied"}

ITEM_RATE_COLUMNS = [
    "unit",
    "parent",
    "item",
    "n",
    "satisfied",
    "rate",
    "wilson_low",
    "wilson_high",
    "mean_score",
    "satisfaction_index",
    "respondents",
    "households",
    "response_rate",
    "is_small_sample",
    "sample_label",
    "effective_n",
    "is_household_weighted",
]


# --- waves ------------------------------------------------------------------------------------


def wave_keys_in_period(con: duckdb.DuckDBPyConnection, filters: Filters) -> list[int]:
    """The waves (wave_year × 100 + wave_index) a period holds, oldest first (module rule)."""
    sql = """SELECT wave_year * 100 + wave_index AS wave_key
        FROM survey_responses
        WHERE wave_year IS NOT NULL AND wave_index IS NOT NULL
        GROUP BY wave_year, wave_index
        HAVING coalesce(min(surveyed_on),
                        make_date(wave_year, CASE WHEN wave_index >= 2 THEN 7 ELSE 1 END, 1))
                   <= $period_end
           AND coalesce(max(surveyed_on),
                        CASE WHEN wave_index >= 2 THEN make_date(wave_year, 12, 31)
                             ELSE make_date(wave_year, 6, 30) END)
                   >= $period_start
        ORDER BY wave_key"""
    params = {"period_start": filters.start, "period_end": filters.end}
    return [int(key) for key in run_query(con, sql, params)["wave_key"]]


def wave_labels(con: duckdb.DuckDBPyConnection) -> dict[int, str]:
    """Every wave's key and its label as the sheets wrote it (the commonest spelling)."""
    frame = con.execute(
        """SELECT wave_year * 100 + wave_index AS wave_key, mode(wave) AS wave
        FROM survey_responses WHERE wave_year IS NOT NULL AND wave_index IS NOT NULL
        GROUP BY 1 ORDER BY 1"""
    ).df()
    return {
        int(key): str(label) for key, label in zip(frame["wave_key"], frame["wave"], strict=True)
    }


# --- per-compound counts and the household-weighted roll-up -----------------------------------


def _picked_responses_cte(filters: Filters) -> tuple[str, dict[str, object]]:
    """CTE `picked`: responses of the chosen waves in the place selection, with the register's
    street and property company (a survey sheet has no company column), and the batch that
    wrote each."""
    place_where, params = filters.place_where("resp")
    sql = f"""responses AS (
        SELECT r.response_id, r.batch_id, r.comment, coalesce(r.street, reg.street) AS street,
               r.community, r.compound, reg.property_company,
               r.wave_year * 100 + r.wave_index AS wave_key
        FROM survey_responses AS r
        LEFT JOIN compounds AS reg ON reg.compound = r.compound AND reg.community = r.community
        WHERE (r.wave_year * 100 + r.wave_index) = ANY($wave_keys)),
    picked AS (SELECT * FROM responses AS resp WHERE {place_where})"""
    return sql, params


def _stored_counts_ctes(
    filters: Filters, config: Config, item_where: str
) -> tuple[str, dict[str, object]]:
    """CTEs `respondents` and `answers` of compound_item_counts, per set of waves (set_id),
    from the stored per-wave counts (govdash.etl.aggregates): the same responses picked the
    same way (the register gives the street where the response has none, and the company),
    counted per compound beforehand, the answers with one column per score
    (agg_survey_items)."""
    place_where, params = filters.place_where("resp")

    def picked(table: str) -> str:  # the stored rows of each set's waves in the selection
        return f"""(SELECT * FROM (
            SELECT ws.set_id, s.* EXCLUDE (street), coalesce(s.street, reg.street) AS street,
                   reg.property_company
            FROM {table} AS s
            JOIN wave_sets AS ws ON ws.wave_key = s.wave_key
            LEFT JOIN compounds AS reg
                ON reg.compound = s.compound AND reg.community = s.community) AS resp
            WHERE {place_where})"""

    scores = [f"score_{score}" for score in SURVEY_SCORES]
    satisfied = [f"score_{s}" for s in SURVEY_SCORES if s >= config.satisfied_min_score]
    weighted = [f"{score} * score_{score}" for score in SURVEY_SCORES]
    sql = f"""respondents AS (
        SELECT set_id, community, compound, any_value(street) AS street,
               any_value(property_company) AS property_company,
               CAST(sum(respondents) AS BIGINT) AS respondents
        FROM {picked("agg_survey_respondents")} GROUP BY set_id, community, compound),
    answers AS (
        SELECT set_id, community, compound, item,
               CAST(sum({" + ".join(scores)}) AS BIGINT) AS n,
               CAST(sum({" + ".join(satisfied) or "0"}) AS BIGINT) AS satisfied,
               sum({" + ".join(weighted)}) AS score_sum
        FROM {picked("agg_survey_items")} WHERE {item_where}
        GROUP BY set_id, community, compound, item)"""
    return sql, params


def _counts_query(
    con: duckdb.DuckDBPyConnection,
    filters: Filters,
    config: Config,
    wave_sets: list[list[int]],
    item: str | None = None,
) -> tuple[str, str, dict[str, object]]:
    """compound_item_counts' query of each set of waves as (CTEs, SELECT, parameters):
    `WITH {CTEs} {SELECT}` gives its rows, unordered, each with its set's position in
    `wave_sets` (set_id). Counted from the stored per-wave counts when they are current, else
    from the responses."""
    item_where = "TRUE" if item is None else "item = $only_item"
    if aggregates_ready(con):
        counts, params = _stored_counts_ctes(filters, config, item_where)
    else:
        picked, params = _picked_responses_cte(filters)
        counts = f"""{picked},
    picked_sets AS (
        SELECT ws.set_id, p.* FROM picked AS p JOIN wave_sets AS ws ON ws.wave_key = p.wave_key),
    respondents AS (
        SELECT set_id, community, compound, any_value(street) AS street,
               any_value(property_company) AS property_company, count(*) AS respondents
        FROM picked_sets GROUP BY set_id, community, compound),
    answers AS (
        SELECT p.set_id, p.community, p.compound, a.item, count(*) AS n,
               count(*) FILTER (WHERE a.score >= $satisfied_min_score) AS satisfied,
               sum(a.score) AS score_sum
        FROM picked_sets AS p JOIN survey_answers AS a ON a.response_id = p.response_id
        WHERE {item_where}
        GROUP BY p.set_id, p.community, p.compound, a.item)"""
    register_where, register_params = filters.place_where("reg")
    sets = f"""wave_sets AS (
        SELECT unnest($set_ids) AS set_id, unnest($set_waves) AS wave_key),
    sets AS (SELECT unnest(range({len(wave_sets)})) AS set_id)"""
    ctes = f"""{sets},
    {counts},
    register AS (
        SELECT street, community, compound, property_company, households
        FROM compounds AS reg WHERE {register_where}),
    units AS (
        SELECT coalesce(g.set_id, s.set_id) AS set_id,
               coalesce(g.street, s.street) AS street,
               coalesce(g.community, s.community) AS community,
               coalesce(g.compound, s.compound) AS compound,
               coalesce(g.property_company, s.property_company) AS property_company,
               g.households, coalesce(s.respondents, 0) AS respondents
        FROM (SELECT * FROM register CROSS JOIN sets) AS g
        FULL OUTER JOIN respondents AS s
            ON g.set_id = s.set_id AND g.compound = s.compound
           AND g.community IS NOT DISTINCT FROM s.community)"""
    select = """SELECT u.*, a.item, coalesce(a.n, 0) AS n,
           coalesce(a.satisfied, 0) AS satisfied,
           CAST(coalesce(a.score_sum, 0) AS DOUBLE) AS score_sum
    FROM units AS u LEFT JOIN answers AS a
        ON a.set_id = u.set_id AND a.compound = u.compound
       AND a.community IS NOT DISTINCT FROM u.community"""
    params = params | register_params
    set_waves = [key for keys in wave_sets for key in keys]
    params["set_ids"] = [i for i, keys in enumerate(wave_sets) for _ in keys]
    params["set_waves"] = set_waves
    params["wave_keys"] = sorted(set(set_waves))  # the responses of any set
    params["satisfied_min_score"] = config.satisfied_min_score
    params["only_item"] = item
    return ctes, select, params


# compound_item_counts' columns, and the order of its rows.
COUNTS_COLUMNS = (
    *("street", "community", "compound", "property_company", "households"),
    *("respondents", "item", "n", "satisfied", "score_sum"),
)
COUNTS_ORDER = "community, compound, item"


def compound_item_counts(
    con: duckdb.DuckDBPyConnection,
    filters: Filters,
    config: Config,
    wave_keys: list[int],
    item: str | None = None,
) -> pd.DataFrame:
    """Per compound (register compounds of the selection, plus surveyed ones it lacks) × item:
    street, community, compound, property_company, households, respondents, item, n,
    satisfied, score_sum, ordered by community, compound, item. Compounds without answers
    have one row with item missing. With `item`, the answers of that item only (the other
    items' rows are never built)."""
    ctes, select, params = _counts_query(con, filters, config, [wave_keys], item)
    sql = f"WITH {ctes} SELECT * EXCLUDE (set_id) FROM ({select}) ORDER BY {COUNTS_ORDER}"
    frame = _frame_through_arrow(con, sql, params)
    for column in ("respondents", "n", "satisfied"):
        frame[column] = frame[column].astype("int64")
    frame["households"] = frame["households"].astype("Float64").astype(float)
    frame["score_sum"] = frame["score_sum"].astype(float)
    return frame


def _frame_through_arrow(
    con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, object]
) -> pd.DataFrame:
    """`run_query`'s frame, taken through Arrow: pandas builds its strings (a city's ~170k
    rows × 5 place and item columns) from Arrow's buffers ~2× cheaper than from DuckDB's own
    conversion. Column for column the same frame: a text column without a single value,
    which DuckDB hands over as objects (None), is made so here too."""
    table = con.execute(sql, bound_parameters(sql, params)).to_arrow_table()
    frame = table.to_pandas()
    for name, column in zip(table.column_names, table.columns, strict=True):
        text = pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
        if text and column.null_count == len(column):
            frame[name] = pd.Series([None] * len(frame), index=frame.index, dtype=object)
    return frame


def _roll_up_query(level: str) -> str:
    """The roll-up of relation `counts` (compound_item_counts' columns and the set of waves
    each row counts, set_id) to `level`, as CTEs and a SELECT: per set × unit × item answered,
    the sums the rates are made of (roll_up_item_rates), the unit's respondents and
    households, ordered by set, then as the rates are shown (unit, the config's item order,
    item, parent). A unit's parent, where its compounds name several (a register slip), is
    the one its first compound by name names."""
    unit_column, parent_column, parent_in_key = SURVEY_LEVELS[level]
    unit = "CAST($all_units AS VARCHAR)" if level == "all" else unit_column
    if parent_column is None:
        keyed = f"SELECT {unit} AS unit, CAST(NULL AS VARCHAR) AS parent, * FROM counts"
    elif parent_in_key:  # the compound's community is part of what the unit is
        keyed = f"SELECT {unit} AS unit, {parent_column} AS parent, * FROM counts"
    else:
        keyed = f"""SELECT k.*, p.parent FROM (SELECT {unit} AS unit, * FROM counts) AS k
        JOIN (SELECT set_id, {unit} AS unit,
                     coalesce(arg_min({parent_column}, compound), any_value({parent_column}))
                         AS parent
              FROM counts GROUP BY 1, 2) AS p
          ON p.set_id = k.set_id AND p.unit IS NOT DISTINCT FROM k.unit"""
    return f"""keyed AS (SELECT * FROM ({keyed}) WHERE unit IS NOT NULL),
    unit_compounds AS (
        SELECT set_id, unit, parent, any_value(respondents) AS respondents,
               any_value(households) AS households
        FROM keyed GROUP BY set_id, unit, parent, community, compound),
    totals AS (
        SELECT set_id, unit, parent, CAST(sum(respondents) AS BIGINT) AS respondents,
               CAST(sum(households) AS DOUBLE) AS households
        FROM unit_compounds GROUP BY set_id, unit, parent),
    weighted AS (
        SELECT *, CASE WHEN households > 0 THEN CAST(households AS DOUBLE) END AS w
        FROM keyed WHERE item IS NOT NULL AND n > 0),
    sums AS (
        SELECT set_id, unit, parent, item, CAST(sum(n) AS BIGINT) AS n,
               CAST(sum(satisfied) AS BIGINT) AS satisfied,
               CAST(sum(score_sum) AS DOUBLE) AS score_sum,
               coalesce(sum(w), 0) AS w, coalesce(sum(w * satisfied / n), 0) AS w_rate,
               coalesce(sum(w * score_sum / n), 0) AS w_mean,
               coalesce(sum(w * w / n), 0) AS w_kish
        FROM weighted GROUP BY set_id, unit, parent, item)
    SELECT s.set_id, s.unit, s.parent, s.item, s.n, s.satisfied, s.score_sum, s.w, s.w_rate,
           s.w_mean, s.w_kish, t.respondents, t.households
    FROM sums AS s JOIN totals AS t
        ON t.set_id = s.set_id AND t.unit = s.unit AND t.parent IS NOT DISTINCT FROM s.parent
    ORDER BY s.set_id, s.unit,
             coalesce(list_position($item_order, s.item), len($item_order) + 1),
             s.item, s.parent"""


def _roll_up_params(level: str, config: Config) -> dict[str, object]:
    params: dict[str, object] = {"item_order": list(config.survey_items)}
    if level == "all":
        params["all_units"] = ALL_UNITS
    return params


def roll_up_item_rates(
    counts: pd.DataFrame, level: str, config: Config, waves: int = 1
) -> pd.DataFrame:
    """Item rates per unit from per-compound counts (as `compound_item_counts` returns).

    Rolling compounds up to a community, street or company weights each compound by its
    households (DOMAIN.md §4): rate = Σ h_c × (satisfied_c ÷ n_c) ÷ Σ h_c over the compounds
    that answered the item and have a household count; the mean score likewise. The Wilson
    interval uses the Kish effective sample size (Σ h_c)² ÷ Σ (h_c² ÷ n_c), which is n for
    one compound. A unit where no answering compound has a household count falls back to the
    pooled rate Σ satisfied ÷ Σ n (is_household_weighted False). n and satisfied are raw
    answer counts. respondents ÷ (households × waves) is the mean per-wave response rate.

    The roll-up is the SQL the warehouse queries run (`_roll_up_query`), here over the frame.
    """
    if level not in SURVEY_LEVELS:
        raise ValueError(f"level must be one of {sorted(SURVEY_LEVELS)}, got {level!r}")
    frame = counts[[*COUNTS_COLUMNS]].assign(set_id=0)
    with duckdb.connect() as con:
        con.register("counts_frame", frame)
        sql = f"WITH counts AS (SELECT * FROM counts_frame), {_roll_up_query(level)}"
        sums = _frame_through_arrow(con, sql, _roll_up_params(level, config))
    return _item_rates_of_sums(sums, config, waves)


def _item_rates_of_sums(sums: pd.DataFrame, config: Config, waves: int) -> pd.DataFrame:
    """roll_up_item_rates' frame from `_roll_up_query`'s rows (in their order): the weighted
    rate, mean score and Kish effective n where a compound of the unit carries a household
    count, else the pooled ones; the Wilson interval, the index and the response rate."""
    if sums.empty:
        return _empty_item_rates()
    n = sums["n"].to_numpy(dtype=np.int64)
    satisfied = sums["satisfied"].to_numpy(dtype=np.int64)
    score_sum = sums["score_sum"].to_numpy(dtype=float)
    w = sums["w"].to_numpy(dtype=float)
    is_weighted = w > 0
    result = pd.DataFrame(
        {
            "unit": sums["unit"].astype(object),
            "parent": sums["parent"].astype(object).where(sums["parent"].notna(), None),
            "item": sums["item"].astype(object),
            "n": n,
            "satisfied": satisfied,
        }
    )
    result["rate"] = np.where(is_weighted, rate(sums["w_rate"], w), rate(satisfied, n))
    result["mean_score"] = np.where(is_weighted, rate(sums["w_mean"], w), rate(score_sum, n))
    result["effective_n"] = np.where(is_weighted, rate(w**2, sums["w_kish"]), n.astype(float))
    low, high = wilson_bounds(result["rate"] * result["effective_n"], result["effective_n"])
    result["wilson_low"] = low
    result["wilson_high"] = high
    result["satisfaction_index"] = survey_index(result["mean_score"])
    result["respondents"] = sums["respondents"].to_numpy(dtype=np.int64)
    result["households"] = sums["households"].astype("Float64").astype(float)
    result["response_rate"] = rate(result["respondents"], result["households"] * max(waves, 1))
    result["is_small_sample"] = result["respondents"] < config.min_sample
    result["sample_label"] = np.where(result["is_small_sample"], SMALL_SAMPLE_LABEL, "")
    result["is_household_weighted"] = is_weighted
    return result[ITEM_RATE_COLUMNS]


def _empty_item_rates() -> pd.DataFrame:
    text = {"unit", "parent", "item", "sample_label"}
    flags = {"is_small_sample", "is_household_weighted"}
    counts = {"n", "satisfied", "respondents"}
    return pd.DataFrame(
        {
            column: pd.Series(
                dtype=object
                if column in text
                else bool
                if column in flags
                else "int64"
                if column in counts
                else float
            )
            for column in ITEM_RATE_COLUMNS
        }
    )


def _item_rates(
    con: duckdb.DuckDBPyConnection,
    filters: Filters,
    config: Config,
    level: str,
    wave_keys: list[int],
    item: str | None = None,
) -> pd.DataFrame:
    """survey_item_rates of these waves (`_item_rates_of_sets` of one set)."""
    return _item_rates_of_sets(con, filters, config, level, [wave_keys], item)[0]


def _item_rates_of_sets(
    con: duckdb.DuckDBPyConnection,
    filters: Filters,
    config: Config,
    level: str,
    wave_sets: list[list[int]],
    item: str | None = None,
) -> list[pd.DataFrame]:
    """survey_item_rates of each set of waves, counted and rolled up by one query in the
    warehouse: only the units' rows come out (a city's district is 9 rows, not its 20,000
    compounds × items), and the stored counts are read once for every set."""
    ctes, select, params = _counts_query(con, filters, config, wave_sets, item)
    sql = f"""WITH {ctes},
    counts AS ({select}),
    {_roll_up_query(level)}"""
    sums = _frame_through_arrow(con, sql, params | _roll_up_params(level, config))
    set_ids = sums["set_id"].to_numpy()
    return [
        _item_rates_of_sums(
            sums[set_ids == i].drop(columns="set_id").reset_index(drop=True), config, len(keys)
        )
        for i, keys in enumerate(wave_sets)
    ]


def survey_item_rates(
    con: duckdb.DuckDBPyConnection,
    filters: Filters,
    config: Config,
    level: str,
    item: str | None = None,
) -> pd.DataFrame:
    """Per unit × item of the period's waves (see the module rule).

    level: compound, community, street, property_company or all. Columns: unit, parent
    (community of a compound, street of a community), item, n (non-blank answers), satisfied
    (scores ≥ config.satisfied_min_score), rate, wilson_low, wilson_high, mean_score,
    satisfaction_index (0–100), respondents, households, response_rate, is_small_sample
    (respondents < config.min_sample), sample_label ("样本不足" or ""), effective_n,
    is_household_weighted. Units with no answers have no rows. With `item`, that item's rows
    only, counted from its answers alone (cheaper than rolling up every item). The rates are
    roll_up_item_rates' of compound_item_counts' frame.
    """
    if level not in SURVEY_LEVELS:
        raise ValueError(f"level must be one of {sorted(SURVEY_LEVELS)}, got {level!r}")
    return _item_rates(con, filters, config, level, wave_keys_in_period(con, filters), item)


def survey_item_rates_now_and_before(
    con: duckdb.DuckDBPyConnection,
    filters: Filters,
    previous: Filters,
    config: Config,
    level: str,
    item: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`survey_item_rates(level, item)` of `filters` and of `previous` (总览's period and the
    one before it), the same frames. Periods holding the same waves in the same places (two
    months of one half-year's survey) give the same rates: they are read and rolled up once;
    in the same places, both periods' waves are read by one query."""
    if level not in SURVEY_LEVELS:
        raise ValueError(f"level must be one of {sorted(SURVEY_LEVELS)}, got {level!r}")
    now_waves = wave_keys_in_period(con, filters)
    before_waves = wave_keys_in_period(con, previous)
    if previous.place_where("p") != filters.place_where("p"):
        return (
            _item_rates(con, filters, config, level, now_waves, item),
            _item_rates(con, previous, config, level, before_waves, item),
        )
    if before_waves == now_waves:
        now = _item_rates(con, filters, config, level, now_waves, item)
        return now, now.copy()
    now, before = _item_rates_of_sets(con, filters, config, level, [now_waves, before_waves], item)
    return now, before


def unit_profile(
    con: duckdb.DuckDBPyConnection, filters: Filters, config: Config, level: str, unit: str
) -> pd.DataFrame:
    """One unit's item rates beside the household-weighted average of its street(s).

    Columns: item, unit_rate, n, wilson_low, wilson_high, respondents, is_small_sample,
    street_average_rate, street_n. The street average covers every compound of the streets
    the unit lies in (other place selections dropped), in the same waves.
    """
    if level not in PLACE_COLUMNS:
        raise ValueError(f"level must be one of {PLACE_COLUMNS}, got {level!r}")
    wave_keys = wave_keys_in_period(con, filters)
    own = _item_rates(con, filters.narrowed(level, unit), config, "all", wave_keys)
    streets = _streets_of(con, level, unit)
    street_filters = replace(filters.without_places(), street=tuple(streets))
    street = (
        _item_rates(con, street_filters, config, "all", wave_keys)
        if streets
        else _empty_item_rates()
    )
    own = own.rename(columns={"rate": "unit_rate"})[
        ["item", "unit_rate", "n", "wilson_low", "wilson_high", "respondents", "is_small_sample"]
    ]
    street = street.rename(columns={"rate": "street_average_rate", "n": "street_n"})[
        ["item", "street_average_rate", "street_n"]
    ]
    profile = own.merge(street, on="item", how="left")
    profile["street_n"] = profile["street_n"].fillna(0).astype("int64")
    return profile


def _streets_of(con: duckdb.DuckDBPyConnection, level: str, unit: str) -> list[str]:
    """The streets a unit lies in, from the register (and, for places, the survey sheets)."""
    if level == "street":
        return [unit]
    column = {"community": "community", "compound": "compound"}.get(level, "property_company")
    sql = f"SELECT DISTINCT street FROM compounds WHERE {column} = $unit AND street IS NOT NULL"
    if column != "property_company":  # survey sheets carry no company column
        sql += f""" UNION SELECT DISTINCT street FROM survey_responses
            WHERE {column} = $unit AND street IS NOT NULL"""
    frame = run_query(con, f"SELECT street FROM ({sql}) ORDER BY street", {"unit": unit})
    return [str(street) for street in frame["street"]]


def wave_change(
    con: duckdb.DuckDBPyConnection,
    filters: Filters,
    config: Config,
    level: str,
    item: str | None = None,
) -> pd.DataFrame:
    """Item rates of the period's latest wave against the wave before it (in the warehouse).

    Columns: unit, parent, item, previous_wave, current_wave, previous_rate, current_rate,
    change (current − previous, in points of the rate), previous_n, current_n. Empty when the
    period holds no wave. With `item`, that item's rows only.
    """
    rates_of = _WaveRates(con, filters, config, level, item)
    return _wave_change(con, rates_of, wave_keys_in_period(con, filters))


class SatisfactionRates(NamedTuple):
    """What the 满意度 page shows of one item at one level (`satisfaction_rates`)."""

    rates: pd.DataFrame  # survey_item_rates(level, item)
    changes: pd.DataFrame  # wave_change(level, item)
    waves: list[int]  # the period's waves (none: no survey in the period)


def satisfaction_rates(
    con: duckdb.DuckDBPyConnection, filters: Filters, config: Config, level: str, item: str
) -> SatisfactionRates:
    """`survey_item_rates(level, item)` and `wave_change(level, item)` of the period at once
    (the 满意度 page shows both, one item at a time): each set of waves (the period's, the
    latest one's and the one before it) is counted and rolled up once, of that item's answers
    only (a city's compound level is 20,000 rows an item, not 180,000). The frames equal
    those two functions'."""
    if level not in SURVEY_LEVELS:
        raise ValueError(f"level must be one of {sorted(SURVEY_LEVELS)}, got {level!r}")
    in_period = wave_keys_in_period(con, filters)
    labels = wave_labels(con) if in_period else {}
    rates_of = _WaveRates(con, filters, config, level, item)
    rates_of.read([in_period, *[[key] for key in _compared_waves(labels, in_period)]])
    rates = rates_of(in_period)
    return SatisfactionRates(rates, _wave_change(con, rates_of, in_period, labels), in_period)


def _compared_waves(labels: dict[int, str], in_period: list[int]) -> list[int]:
    """The waves the wave change compares: the one before the period's latest (in the
    warehouse), if any, and that latest one."""
    if not in_period:
        return []
    current = in_period[-1]
    earlier = [key for key in labels if key < current]
    return [*earlier[-1:], current]


class _WaveRates:
    """Item rates of a level (of one item, or every item) for a set of waves, each set counted
    and rolled up once (the response rate is per wave of the set, as survey_item_rates
    computes it)."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        filters: Filters,
        config: Config,
        level: str,
        item: str | None = None,
    ) -> None:
        self.con, self.filters, self.config = con, filters, config
        self.level, self.item = level, item
        self.done: dict[tuple[int, ...], pd.DataFrame] = {}

    def read(self, wave_sets: list[list[int]]) -> None:
        """The rates of every set not yet read, by one query."""
        missing = list(
            dict.fromkeys(tuple(keys) for keys in wave_sets if tuple(keys) not in self.done)
        )
        if missing:
            frames = _item_rates_of_sets(
                self.con,
                self.filters,
                self.config,
                self.level,
                [list(k) for k in missing],
                self.item,
            )
            self.done.update(zip(missing, frames, strict=True))

    def __call__(self, wave_keys: list[int]) -> pd.DataFrame:
        self.read([wave_keys])
        return self.done[tuple(wave_keys)]


def _wave_change(
    con: duckdb.DuckDBPyConnection,
    rates_of: _WaveRates,
    in_period: list[int],
    labels: dict[int, str] | None = None,
) -> pd.DataFrame:
    columns = ["unit", "parent", "item", "previous_wave", "current_wave", "previous_rate"]
    columns += ["current_rate", "change", "previous_n", "current_n"]
    if not in_period:
        return pd.DataFrame({column: [] for column in columns})
    labels = wave_labels(con) if labels is None else labels
    compared = _compared_waves(labels, in_period)
    current = compared[-1]
    previous = compared[0] if len(compared) == 2 else None
    rates_of.read([[key] for key in compared])  # both waves by one query
    frames = [rates_of([key])[["unit", "parent", "item", "rate", "n"]] for key in compared]
    current_rates = frames[-1].rename(columns={"rate": "current_rate", "n": "current_n"})
    if len(frames) == 2:
        previous_rates = frames[0].rename(columns={"rate": "previous_rate", "n": "previous_n"})
        merged = previous_rates.merge(current_rates, on=["unit", "parent", "item"], how="outer")
    else:
        merged = current_rates.assign(previous_rate=np.nan, previous_n=0)
    merged["previous_wave"] = labels.get(previous, "") if previous is not None else None
    merged["current_wave"] = labels.get(current, "")
    merged["change"] = merged["current_rate"] - merged["previous_rate"]
    for column in ("previous_n", "current_n"):
        merged[column] = merged[column].fillna(0).astype("int64")
    return merged[columns].reset_index(drop=True)


# --- ticket callbacks -------------------------------------------------------------------------


def callback_satisfaction_trend(
    con: duckdb.DuckDBPyConnection, filters: Filters, config: Config
) -> pd.DataFrame:
    """Callback 满意度 per month, long form: month, satisfaction (满意/基本满意/不满意),
    tickets, share (of the month's answered callbacks in the 三率 base). Every month × level
    is present; share is NaN in a month without answers."""
    stored = aggregate_rows(con, filters, per_month=True)
    if stored is None or tuple(SATISFACTION_LEVELS) != tuple(STORED_SATISFACTION):
        scope, params = ticket_scope_cte(filters)
        counts = f"""{scope},
    counts AS (
        SELECT date_trunc('month', accepted_at) AS month, callback_satisfaction AS satisfaction,
               count(*) AS tickets
        FROM scope WHERE in_callback_base AND callback_satisfaction IS NOT NULL
        GROUP BY ALL)"""
    else:  # the same counts, stored per month (one column per level)
        _, params = filters.ticket_where("t")
        params |= stored.params
        pick = " ".join(f"WHEN '{w}' THEN a.{c}" for w, c in STORED_SATISFACTION.items())
        counts = f"""counts AS (
        SELECT CAST(a.period_start AS TIMESTAMP) AS month, level.satisfaction,
               CASE level.satisfaction {pick} END AS tickets
        FROM agg_units AS a CROSS JOIN (SELECT unnest($levels) AS satisfaction) AS level
        WHERE {stored.where})"""
    sql = f"""WITH {counts},
    months AS (
        SELECT unnest(range(date_trunc('month', $start), $end_exclusive, INTERVAL 1 MONTH))
            AS month),
    levels AS (SELECT unnest($levels) AS satisfaction, generate_subscripts($levels, 1) AS ord)
    SELECT months.month, levels.satisfaction, coalesce(counts.tickets, 0) AS tickets
    FROM months CROSS JOIN levels
    LEFT JOIN counts ON counts.month = months.month AND counts.satisfaction = levels.satisfaction
    ORDER BY months.month, levels.ord"""
    params["levels"] = list(SATISFACTION_LEVELS)
    frame = run_query(con, sql, params)
    frame["tickets"] = frame["tickets"].astype("int64")
    month_total = frame.groupby("month")["tickets"].transform("sum")
    frame["share"] = rate(frame["tickets"], month_total)
    return frame


# --- comments ---------------------------------------------------------------------------------

COMMENT_STOP_WORDS = frozenset(
    """小区 物业 希望 建议 没有 一些 一下 非常 比较 可以 能够 进行 还是 就是 但是 因为 所以 如果
    我们 你们 他们 大家 这个 那个 这些 那些 什么 怎么 目前 现在 已经 问题 情况 有点 有些 太多
    还有 以及 并且 而且 或者 不是 没有 不能 不会 需要 应该 及时 希望能 谢谢 感谢 满意 一般 其他
    无意见 意见 无""".split()
)
_PLACEHOLDER = re.compile(r"\[[^\]]{0,8}\]")  # the loader's scrubbed markers: [电话] [房号] …
_CJK_WORD = re.compile(r"[\u4e00-\u9fff]{2,}")


def _tokenizer() -> Any:
    """jieba's word cutter, or None where jieba is not installed (CJK bigrams are used then)."""
    try:
        import jieba
    except ImportError:  # pragma: no cover - depends on the environment
        return None
    jieba.setLogLevel(logging.WARNING)
    if not jieba.dt.initialized:
        _load_dictionary(jieba)
    return jieba


def _dictionary_copy(jieba: Any) -> Path:
    """Where the process-once copy of jieba's default dictionary is kept: a private folder of
    the user's cache, the name telling the jieba release and the dictionary file apart."""
    source = Path(jieba.__file__).parent / jieba.DEFAULT_DICT_NAME
    found = source.stat()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    name = f"jieba-{jieba.__version__}-{found.st_size}-{found.st_mtime_ns}.pickle"
    return base / "govdash" / name


def _is_private(path: Path) -> bool:
    """`path` belongs to this user and nobody else may write it (a pickle is only read from
    such a file: loading one runs what it holds)."""
    found = path.lstat()
    kind = stat.S_ISREG(found.st_mode) or stat.S_ISDIR(found.st_mode)
    return kind and found.st_uid == os.getuid() and not found.st_mode & 0o022


def _load_dictionary(jieba: Any) -> None:
    """jieba's default dictionary (~500,000 words with their counts) into its word cutter,
    which cuts exactly as jieba.initialize() would have it. jieba reads it from a marshal
    cache, ~0.8 CPU s once per process (the first 满意度 page a server shows); the same two
    objects pickled load ~3× faster, so they are kept so, beside the user's other caches."""
    tokenizer = jieba.dt
    if tokenizer.dictionary != jieba.DEFAULT_DICT:
        tokenizer.initialize()
        return
    with tokenizer.lock:
        if tokenizer.initialized:
            return
        copy = _dictionary_copy(jieba)
        try:
            if _is_private(copy.parent) and _is_private(copy):
                with copy.open("rb") as source:
                    tokenizer.FREQ, tokenizer.total = pickle.load(source)
                tokenizer.initialized = True
                return
        except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError):
            pass
        tokenizer.initialize()
        try:
            copy.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not _is_private(copy.parent):
                return
            handle, written = tempfile.mkstemp(dir=copy.parent, suffix=".part")
            with os.fdopen(handle, "wb") as target:
                pickle.dump((tokenizer.FREQ, tokenizer.total), target, pickle.HIGHEST_PROTOCOL)
            os.replace(written, copy)
        except OSError:  # no cache folder: jieba's own cache serves the next process
            pass


def comment_words(
    con: duckdb.DuckDBPyConnection, filters: Filters, config: Config, top: int = 30
) -> pd.DataFrame:
    """The commonest words of the period's survey comments: word, count (occurrences),
    comments (comments using it). Words in fewer than config.min_group_size comments are
    left out (DOMAIN.md §6), as are stop words and the loader's scrub markers."""
    wave_keys = wave_keys_in_period(con, filters)
    picked, params = _picked_responses_cte(filters)
    # Identical comments ("无", "满意", templates) are cut into words once.
    sql = f"""WITH {picked}
        SELECT comment, count(*) AS copies FROM picked
        WHERE comment IS NOT NULL AND trim(comment) <> '' GROUP BY comment"""
    params["wave_keys"] = wave_keys
    comments = run_query(con, sql, params)
    return count_comment_words(
        comments["comment"].astype(str).tolist(),
        min_comments=config.min_group_size,
        top=top,
        copies=comments["copies"].astype(int).tolist(),
    )


def count_comment_words(
    comments: list[str], min_comments: int, top: int = 30, copies: list[int] | None = None
) -> pd.DataFrame:
    """Word counts of free-text comments (pure; see `comment_words`); `copies` says how many
    times each comment was given (default once each)."""
    jieba = _tokenizer()
    occurrences: Counter[str] = Counter()
    used_in: Counter[str] = Counter()
    for comment, times in zip(comments, copies or [1] * len(comments), strict=True):
        text = _PLACEHOLDER.sub(" ", comment)
        if jieba is not None:
            tokens = [t for t in jieba.lcut(text) if _CJK_WORD.fullmatch(t)]
        else:
            tokens = [
                run[i : i + 2] for run in _CJK_WORD.findall(text) for i in range(len(run) - 1)
            ]
        words = [t for t in tokens if t not in COMMENT_STOP_WORDS]
        for word in words:
            occurrences[word] += times
        for word in set(words):
            used_in[word] += times
    rows = [
        (word, count, used_in[word])
        for word, count in occurrences.items()
        if used_in[word] >= min_comments
    ]
    rows.sort(key=lambda row: (-row[1], row[0]))
    frame = pd.DataFrame(rows[: max(0, top)], columns=["word", "count", "comments"])
    return frame.astype({"word": object, "count": "int64", "comments": "int64"})
