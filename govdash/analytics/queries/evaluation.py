"""Gathers one year's evaluation inputs from the warehouse for govdash.analytics.metrics.evaluation.

Evaluator scores and adjustments come from evaluation_scores / evaluation_adjustments at the
chosen level (the scores through Arrow: a city's year is over a million rows). Metric values
come from the existing read side: `units.unit_table` at compound level for the calendar year
(tickets accepted in it; survey waves overlapping it, see govdash.analytics.queries.surveys),
read as `compound_rates` (the same rows and numbers, the survey's overall item only) where the
stored aggregates answer, rolled up to communities and property companies by household-weighted
means of their compounds (`evaluation.roll_up_metrics`). Units to rank are the register's
units of the level; units that were scored but are not in the register are added by the
engine (and lack metric indicators).

The 年度考评 page caches one `EvaluationPage` per year, level, scope and locked rounds: the
result without its score rows (sentences are built from compact arrays when read), last
year's table, the method comparison, the robustness bands (where they are cheap: see
`robustness_at_once`) and the score sources.

Scope: with a street or community scope, metrics come from that scope's data only and the
units ranked are the scope's units (its compounds, its communities, the property companies
of its compounds); scores of other units are not read into the result.

Online scores: the locked rounds of govdash.core.rounds (`final_scores`, evaluators under the
loader's pseudonyms) join the workbook scores as one set, each row with its `source` (工作簿,
or 在线评分第N轮). Where the same evaluator scored the same unit and indicator in both, the
online score (the later, deliberate one) is used and a note says so. Callers that cache pass
the locked scores in (`online`), so a lock changes the cache key; without them they are read
from the rounds file beside the warehouse the connection reads.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from govdash.analytics.metrics.evaluation import (
    ADJUSTMENT_COLUMNS,
    LEVELS,
    SCORE_COLUMNS,
    EvaluationInput,
    EvaluationResult,
    MethodComparison,
    RobustnessResult,
    StoredScores,
    YearRanking,
    compare_methods,
    empty_scores,
    evaluate,
    evaluate_stored,
    indicator_names,
    rank_stored,
    robustness,
    roll_up_metrics,
    year_over_year,
)
from govdash.analytics.queries.aggregated import STORED_FIGURES, aggregate_rows
from govdash.analytics.queries.filters import Filters, bound_parameters, run_query
from govdash.analytics.queries.surveys import survey_item_rates
from govdash.analytics.queries.tickets import finish_ticket_stats
from govdash.analytics.queries.units import (
    AGGREGATE_KEYS,
    composite_score,
    unit_table,
    with_survey,
)
from govdash.core.access import Scope
from govdash.core.config import Config
from govdash.core.lake import cursor, reader_folder
from govdash.core.rounds import RoundStore, rounds_path_in
from govdash.i18n import t

T = TypeVar("T")

WORKBOOK_SOURCE = "工作簿"
ONLINE_SOURCE = "在线评分第{round}轮"
_ONLINE = re.compile(r"在线评分第(\d+)轮")


def source_label(source: str, lang: str = "zh") -> str:
    """A score's `source` (工作簿 or 在线评分第N轮) in `lang`."""
    if source == WORKBOOK_SOURCE:
        return t("evaluation.source_workbook", lang)
    online = _ONLINE.fullmatch(source)
    if online:
        return t("evaluation.source_online", lang, round=online.group(1))
    return source


ONLINE_COLUMNS = [
    "round_id",
    "year",
    "level",
    "unit",
    "evaluator",
    "indicator",
    "score",
    "locked_at",
]

# Compound → property company, from the register (unit_table's compound rows carry no company).
_COMPANIES_SQL = """SELECT community, compound, any_value(street) AS street,
        any_value(property_company) AS property_company
    FROM compounds WHERE compound IS NOT NULL GROUP BY community, compound"""


def warehouse_folder(con: duckdb.DuckDBPyConnection) -> Path | None:
    """The installation folder of the warehouse `con` reads (a lake reader's, or a database
    file's folder); None for a database in memory."""
    folder = reader_folder(con)
    if folder is not None:
        return folder
    row = con.execute(
        "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
    ).fetchone()
    return Path(str(row[0])).parent if row and row[0] else None


def online_scores(
    con: duckdb.DuckDBPyConnection, year: int | None = None, level: str | None = None
) -> pd.DataFrame:
    """Locked rounds' scores (ONLINE_COLUMNS) from the rounds file beside the warehouse `con`
    reads ($GOVDASH_ROUNDS, else rounds.sqlite3 in its folder); empty without one."""
    folder = warehouse_folder(con)
    if folder is None:
        return pd.DataFrame(columns=ONLINE_COLUMNS)
    return RoundStore(rounds_path_in(folder)).final_scores(year, level)


def available_years(
    con: duckdb.DuckDBPyConnection, level: str | None = None, online: pd.DataFrame | None = None
) -> list[int]:
    """Years with evaluator scores or adjustments (at `level`, else at any level) in the
    warehouse or in a locked online round, newest first."""
    if level is not None and level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    sql = """SELECT year FROM evaluation_scores WHERE $level IS NULL OR unit_level = $level
        UNION SELECT year FROM evaluation_adjustments WHERE $level IS NULL OR unit_level = $level
        ORDER BY year DESC"""
    frame = run_query(con, sql, {"level": level})
    locked = online_scores(con, level=level) if online is None else online
    if level is not None and not locked.empty:
        locked = locked[locked["level"] == level]
    years = {int(year) for year in frame["year"]} | {int(year) for year in locked["year"]}
    return sorted(years, reverse=True)


def _arrow_query(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    params: dict[str, object],
    categorical: tuple[str, ...] = (),
) -> pd.DataFrame:
    """Like run_query, through Arrow: text columns arrive as Arrow-backed `str` columns without
    a Python string per row, and the columns named in `categorical` as pandas categoricals
    (Arrow's dictionary encoding). On `con` itself (a lake reader's bare cursor would not
    resolve its tables)."""
    table = _arrow_table(con, sql, params)
    for name in categorical:
        at = table.schema.get_field_index(name)
        table = table.set_column(at, name, pc.dictionary_encode(table.column(at)))
    return table.to_pandas()


def _arrow_table(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, object]) -> pa.Table:
    """The statement's rows as an Arrow table. (No `warnings.catch_warnings` around it: the
    filters it swaps are the process's, and `evaluation_page` reads two years on two threads.
    DuckDB 1.5.5, which pyproject pins, does not warn here.)"""
    table = con.execute(sql, bound_parameters(sql, params)).to_arrow_table()
    assert table is not None  # a statement that returns rows
    return table


# The names of a year's scores (unit, evaluator, indicator) leave the warehouse as this SQL
# function's 64-bit hash of each row's name, beside one row per distinct name: a city's year is
# 1–2M rows of a few thousand names, and handing DuckDB's strings to Python cost more than
# everything else the read does (1.8M rows: 0.43 s of strings against 0.08 s of hashes).
NAME_HASH = "hash"
SCORE_NAMES = ("unit", "evaluator", "indicator")


def evaluator_scores(con: duckdb.DuckDBPyConnection, year: int, level: str) -> pd.DataFrame:
    """year, unit, evaluator, indicator, score of one year and level (in no particular order:
    the engine sorts what it needs, and sorting a million rows here would cost more than the
    rest of the read); unit, evaluator and indicator are categoricals, their categories in no
    particular order. Read as hashes of the names and the names once each (`NAME_HASH`); where
    two names of a column share a hash, read as the names themselves."""
    rows = "FROM evaluation_scores WHERE year = $year AND unit_level = $level"
    params: dict[str, object] = {"year": year, "level": level}
    hashed = ", ".join(f"CAST({NAME_HASH}({c}) AS UBIGINT) AS {c}" for c in SCORE_NAMES)
    table = _arrow_table(con, f"SELECT {hashed}, score {rows}", params)
    columns: dict[str, object] = {"year": np.full(table.num_rows, year, dtype=np.int32)}
    for name in SCORE_NAMES:
        named = _named_hashes(con, rows, params, name, table.column(name).to_numpy())
        if named is None:  # two names share a hash: never merge them, read the names
            return _scores_as_text(con, rows, params)
        columns[name] = named
    columns["score"] = table.column("score").to_numpy().astype(float)
    return pd.DataFrame(columns)[["year", *SCORE_COLUMNS]]


def _named_hashes(
    con: duckdb.DuckDBPyConnection,
    rows: str,
    params: dict[str, object],
    column: str,
    hashes: npt.NDArray[np.uint64],
) -> pd.Categorical[Any] | None:
    """The categorical of `column`'s names from their hashes (`hashes`, one a row of `rows`),
    the distinct names read once with their hashes; None where two names share a hash or a
    row's hash has no name (the caller then reads the names)."""
    # The names made distinct first, then hashed (a few thousand), not every row hashed again.
    sql = f"""SELECT CAST({NAME_HASH}(name) AS UBIGINT) AS h, name
        FROM (SELECT DISTINCT {column} AS name {rows})"""
    distinct = _arrow_table(con, sql, params)
    keys = distinct.column("h").to_numpy()
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    if len(keys) > 1 and bool((keys[1:] == keys[:-1]).any()):
        return None
    names = np.asarray(distinct.column("name").to_pylist(), dtype=object)[order]
    at = np.minimum(np.searchsorted(keys, hashes), max(len(keys) - 1, 0))
    if len(hashes) and (not len(keys) or not bool((keys[at] == hashes).all())):
        return None
    named = np.array([name is not None for name in names.tolist()], dtype=bool)
    code_of = np.full(len(names), -1, dtype=np.int64)
    code_of[named] = np.arange(int(named.sum()))
    categories = pd.Index(names[named].tolist(), dtype="str")
    return pd.Categorical.from_codes(code_of[at], dtype=pd.CategoricalDtype(categories))


def _scores_as_text(
    con: duckdb.DuckDBPyConnection, rows: str, params: dict[str, object]
) -> pd.DataFrame:
    """evaluator_scores read with the names themselves (dictionary-encoded after)."""
    sql = f"SELECT year, unit, evaluator, indicator, score {rows}"
    frame = _arrow_query(con, sql, params, SCORE_NAMES)
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


# What the evaluation reads of unit_table's compound rows (roll_up_metrics, the units).
RATE_TABLE_COLUMNS = [
    "unit",
    "parent",
    "compounds",
    "households",
    "response_rate",
    "resolution_rate",
    "satisfaction_rate",
    "callback_n",
    "survey_satisfaction_rate",
    "survey_n",
    "survey_respondents",
    "survey_is_small_sample",
    "composite",
]


def compound_rates(
    con: duckdb.DuckDBPyConnection, filters: Filters, config: Config
) -> pd.DataFrame | None:
    """unit_table(con, filters, config, "compound")[RATE_TABLE_COLUMNS] — the same rows in the
    same order, the same numbers (a test holds them equal) — read more cheaply: the tickets'
    figures from the stored aggregates as unit_table reads them, and the survey's counts of
    config.overall_item only (unit_table rolls up every item, over a million answer rows at a
    city's scale, and keeps one). None where the stored aggregates cannot answer `filters`:
    then read unit_table itself."""
    stored = aggregate_rows(con, filters, AGGREGATE_KEYS["compound"])
    if stored is None:  # (stored rows answer only where the survey's stored counts are ready too)
        return None
    register_where, register_params = filters.place_where("reg")
    sql = f"""WITH ticket_stats AS (
        SELECT a.compound AS unit, a.community AS parent, {STORED_FIGURES}
        FROM agg_units AS a WHERE {stored.where} AND a.compound IS NOT NULL),
    register AS (
        SELECT compound AS unit, community AS parent, count(*) AS compounds,
               sum(households) AS households
        FROM compounds AS reg WHERE {register_where} AND compound IS NOT NULL
        GROUP BY unit, parent)
    SELECT coalesce(r.unit, s.unit) AS unit, coalesce(r.parent, s.parent) AS parent,
           coalesce(r.compounds, 0) AS compounds, r.households,
           s.* EXCLUDE (unit, parent)
    FROM register AS r FULL OUTER JOIN ticket_stats AS s
        ON s.unit = r.unit AND s.parent IS NOT DISTINCT FROM r.parent"""
    frame = finish_ticket_stats(run_query(con, sql, dict(stored.params) | register_params), config)
    frame["compounds"] = frame["compounds"].astype("int64")
    frame["households"] = frame["households"].astype("Float64").astype(float)
    frame = with_survey(
        frame, survey_item_rates(con, filters, config, "compound", config.overall_item), config
    )
    frame["composite"] = composite_score(frame, config)
    frame = frame.sort_values(["composite", "unit"], ascending=[False, True], na_position="last")
    return frame[RATE_TABLE_COLUMNS].reset_index(drop=True)


def compound_metrics(
    con: duckdb.DuckDBPyConnection,
    config: Config,
    year: int,
    scope: Scope | None = None,
    rates_only: bool = False,
) -> tuple[pd.DataFrame, list[str]]:
    """Per compound of the year: `unit_table` at compound level plus its street and property
    company from the register, and is_registered. rates_only: only RATE_TABLE_COLUMNS of
    unit_table (what the evaluation reads; `compound_rates`, much cheaper at a city's scale).

    A compound name used in several communities is renamed "小区（社区）" so each row has its
    own unit; evaluation sheets name units without their community, so such scores cannot be
    matched and the returned notes say so.
    """
    filters = Filters.for_year(year).within(scope or Scope.district())
    table = compound_rates(con, filters, config) if rates_only else None
    if table is None:
        table = unit_table(con, filters, config, "compound")
        if rates_only:
            table = table[RATE_TABLE_COLUMNS]
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


def evaluation_units(
    con: duckdb.DuckDBPyConnection,
    config: Config,
    year: int,
    level: str,
    scope: Scope | None = None,
) -> pd.DataFrame:
    """The register's units of `level` in `scope`, as the evaluation names them: unit, parent,
    and the communities and streets each lies in (lists; for a property company, those of its
    compounds) — what an online round is opened on and recusals are decided by."""
    _check_level(level)
    compounds, _ = compound_metrics(con, config, year, scope)
    registered = compounds[compounds["is_registered"]].copy()
    key = {"compound": "unit", "community": "parent", "property_company": "property_company"}[level]
    registered = registered[registered[key].notna()]
    rows = []
    for unit, group in registered.groupby(key, sort=True):
        parent = (
            group["parent"].iloc[0]
            if level == "compound"
            else group["street"].dropna().iloc[0]
            if level == "community" and group["street"].notna().any()
            else None
        )
        rows.append(
            {
                "unit": str(unit),
                "parent": None if parent is None or pd.isna(parent) else str(parent),
                "communities": sorted({str(c) for c in group["parent"].dropna()}),
                "streets": sorted({str(s) for s in group["street"].dropna()}),
            }
        )
    return pd.DataFrame(rows, columns=["unit", "parent", "communities", "streets"])


def _repeated(text: str, count: int) -> pd.api.extensions.ExtensionArray:
    """`text` `count` times as a categorical (one code a row, no string a row)."""
    return pd.Categorical.from_codes(
        np.zeros(count, dtype=np.int8), dtype=pd.CategoricalDtype([text])
    )


def merged_scores(workbook: pd.DataFrame, online: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Workbook and locked online scores as one set with a `source` column; an online score
    replaces the workbook score of the same unit, evaluator and indicator. Notes say how many
    came from where (and how many were replaced). Text columns come back as `str` columns
    where there are online scores, as they are (categoricals, say) where there are none."""
    books = workbook.assign(source=_repeated(WORKBOOK_SOURCE, len(workbook)))
    if online.empty:
        return books, []
    books = books.astype({c: "str" for c in ("unit", "evaluator", "indicator", "source")})
    typed = online.assign(
        source=[ONLINE_SOURCE.format(round=int(r)) for r in online["round_id"]],
        score=online["score"].astype(float),
    )[["year", *SCORE_COLUMNS, "source"]]
    key = ["unit", "evaluator", "indicator"]
    replaced = books.merge(typed[key], on=key, how="inner")
    kept = books.merge(typed[key], on=key, how="left", indicator=True)
    kept = kept[kept["_merge"] == "left_only"].drop(columns="_merge")
    merged = pd.concat([kept, typed], ignore_index=True)
    merged = merged.sort_values(["unit", "indicator", "evaluator"], kind="stable")
    notes = []
    for source, part in typed.groupby("source", sort=True):
        notes.append(
            f"评分来源：{source}（已锁定）{len(part)} 条，{part['evaluator'].nunique()} 位评委"
        )
    if len(kept):
        notes.append(
            f"评分来源：{WORKBOOK_SOURCE} {len(kept)} 条，{kept['evaluator'].nunique()} 位评委"
        )
    if len(replaced):
        notes.append(
            f"{len(replaced)} 条工作簿评分与在线评分为同一评委、同一单位和指标，以在线评分为准"
        )
    return merged.reset_index(drop=True), notes


def evaluation_input(
    con: duckdb.DuckDBPyConnection,
    config: Config,
    year: int,
    level: str,
    scope: Scope | None = None,
    online: pd.DataFrame | None = None,
) -> EvaluationInput:
    """The evaluation inputs of `year` at `level` (compound, community or property_company),
    limited to `scope` (the whole district when None). `online`: locked round scores
    (ONLINE_COLUMNS, any years and levels); None reads them from beside the warehouse."""
    _check_level(level)
    scope = scope or Scope.district()
    # The units' figures (DuckDB's work mostly) on a cursor of their own beside the scores.
    with ThreadPoolExecutor(max_workers=1) as beside:
        units = beside.submit(_closing, _unit_inputs, cursor(con), config, year, level, scope)
        scores, sources = merged_scores(
            evaluator_scores(con, year, level), _locked(con, year, level, online)
        )
        adjustments = evaluation_adjustments(con, year, level)
        metrics, names, notes = units.result()
    notes.extend(sources)
    if scope.is_restricted:  # only the scope's units; the engine must not add the others
        scores = _of_units(scores, names)
        adjustments = _of_units(adjustments, names)
    return EvaluationInput(
        year=year,
        level=level,
        scores=scores,
        adjustments=adjustments,
        metrics=metrics,
        units=names,
        notes=tuple(notes),
    )


def _unit_inputs(
    con: duckdb.DuckDBPyConnection, config: Config, year: int, level: str, scope: Scope
) -> tuple[pd.DataFrame, tuple[str, ...], list[str]]:
    """The metric inputs of the units of `level` in `scope` (rolled up from their compounds),
    the registered units' names, sorted, and the notes to show."""
    _check_level(level)
    compounds, notes = compound_metrics(con, config, year, scope, rates_only=True)
    metrics = roll_up_metrics(compounds, level, config)
    registered = compounds[compounds["is_registered"]]
    if level == "compound":
        units = registered["unit"]
    elif level == "community":
        units = registered["parent"]
    else:
        units = registered["property_company"]
    names = tuple(sorted({str(unit) for unit in units.dropna()}))
    if scope.is_restricted:
        metrics = _of_units(metrics, names)
    return metrics, names, notes


def _of_units(frame: pd.DataFrame, names: tuple[str, ...]) -> pd.DataFrame:
    """The rows of `frame` whose unit is one of `names` (a scope's units), numbered anew."""
    return frame[frame["unit"].isin(names)].reset_index(drop=True)


def _check_level(level: str) -> None:
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")


def _locked(
    con: duckdb.DuckDBPyConnection, year: int, level: str, online: pd.DataFrame | None
) -> pd.DataFrame:
    """The locked online scores of `year` and `level` (of `online`, else read)."""
    locked = online_scores(con, year, level) if online is None else online
    return locked[(locked["year"] == year) & (locked["level"] == level)]


def evaluation_result(
    con: duckdb.DuckDBPyConnection,
    config: Config,
    year: int,
    level: str,
    scope: Scope | None = None,
    online: pd.DataFrame | None = None,
) -> EvaluationResult:
    """The year's ranking at one level under the config's weights (what the page caches),
    among the units of `scope` (the whole district when None), with the locked online scores
    (`online`, else read from beside the warehouse).

    Where the scores are the workbook's alone, they are coded and sorted where they are stored
    (`stored_scores`, `evaluate_stored`): a city's year of 1–2M score rows is sorted by DuckDB,
    outside Python's global lock, instead of read into pandas, coded and sorted there — the
    same result as `evaluate(evaluation_input(...))`, which a test holds it to (the 50M city's
    year alone: 0.58–0.63 s against 0.78–0.91 s; in the 年度考评 page, whose other threads
    already keep both cores busy, about the same CPU and time as before). With locked online
    scores, the rows merged with them (`evaluation_input`)."""
    _check_level(level)
    scope = scope or Scope.district()
    locked = _locked(con, year, level, online)
    return _year_result(con, config, year, level, scope, locked)[0]


def ranking_result(
    con: duckdb.DuckDBPyConnection,
    config: Config,
    year: int,
    level: str,
    scope: Scope | None = None,
    online: pd.DataFrame | None = None,
) -> YearRanking:
    """`evaluation_result(...).ranking()`, what year over year reads of last year, computed
    on `con` alone (the page computes it on a thread beside the year it shows): from the
    workbook's scores as stored, only the totals, ranks and grades (`rank_stored`)."""
    _check_level(level)
    scope = scope or Scope.district()
    locked = _locked(con, year, level, online)
    found = _stored_reading(con, config, year, level, scope, locked, beside=False)
    if found is not None:
        return rank_stored(*found, config)
    return evaluate(evaluation_input(con, config, year, level, scope, locked), config).ranking()


def _year_result(
    con: duckdb.DuckDBPyConnection,
    config: Config,
    year: int,
    level: str,
    scope: Scope,
    locked: pd.DataFrame,
) -> tuple[EvaluationResult, StoredScores | None]:
    """The year's result, and the workbook's scores as stored where it was read from them
    (`_stored_reading`); else from the rows, merged with the `locked` online scores
    (`evaluation_input`), and None."""
    found = _stored_reading(con, config, year, level, scope, locked, beside=True)
    if found is not None:
        return evaluate_stored(*found, config), found[1]
    return evaluate(evaluation_input(con, config, year, level, scope, locked), config), None


def _stored_reading(
    con: duckdb.DuckDBPyConnection,
    config: Config,
    year: int,
    level: str,
    scope: Scope,
    locked: pd.DataFrame,
    beside: bool,
) -> tuple[EvaluationInput, StoredScores] | None:
    """The year's inputs with the workbook's scores as stored (`_stored_input`), where they
    are the scores — no `locked` online score — and the stored reading was not refused; else
    None (the caller reads the rows). beside: the units' figures (DuckDB's work mostly) on a
    cursor of their own beside the scores, else after them on `con`."""
    if not locked.empty:
        return None
    if not beside:
        return _stored_input(
            con, config, year, level, scope, lambda: _unit_inputs(con, config, year, level, scope)
        )
    with ThreadPoolExecutor(max_workers=1) as pool:
        units = pool.submit(_closing, _unit_inputs, cursor(con), config, year, level, scope)
        return _stored_input(con, config, year, level, scope, units.result)


UnitInputs = tuple[pd.DataFrame, tuple[str, ...], list[str]]


def _stored_input(
    con: duckdb.DuckDBPyConnection,
    config: Config,
    year: int,
    level: str,
    scope: Scope,
    unit_inputs: Callable[[], UnitInputs],
) -> tuple[EvaluationInput, StoredScores] | None:
    """The inputs of the workbook's scores as stored (`stored_scores`): the units' figures
    `unit_inputs()` gives (`_unit_inputs`'s) and the scores, of the scope's units; None where
    `stored_scores` is (`unit_inputs()` is still waited for)."""
    stored = stored_scores(con, year, level, config)
    adjustments = evaluation_adjustments(con, year, level)
    metrics, names, notes = unit_inputs()
    if stored is None:
        return None
    if scope.is_restricted:  # only the scope's units; the engine must not add the others
        adjustments = _of_units(adjustments, names)
        stored = stored.of_units(set(names))
    inputs = EvaluationInput(
        year=year,
        level=level,
        scores=empty_scores().assign(source=pd.Series(dtype=object)),  # the page's columns
        adjustments=adjustments,
        metrics=metrics,
        units=names,
        notes=tuple(notes),
    )
    return inputs, stored


def stored_scores(
    con: duckdb.DuckDBPyConnection, year: int, level: str, config: Config
) -> StoredScores | None:
    """The year's workbook scores at `level`, coded and sorted by DuckDB (`StoredScores`; 1.4M
    rows of a city's year: 0.2 s, on DuckDB's threads): the names leave once each, sorted
    here, and go back as the lists the rows are coded against, so codes and order are
    Python's. The rows the evaluation leaves out (an indicator not in the config, a score that
    is not a number) are read apart: none, usually. None where the rows read are not all the
    year's (a name the lists could not carry as stored: the caller reads the rows instead)."""
    params: dict[str, object] = {"year": year, "level": level}
    rows = "FROM evaluation_scores WHERE year = $year AND unit_level = $level"
    names = {
        column: sorted(_arrow_table(con, f"SELECT DISTINCT {column} {rows}", params)
                       .column(column).to_pylist())
        for column in ("unit", "evaluator")
    }  # fmt: skip
    positions = {name: j for j, name in enumerate(indicator_names(config))}
    known = [i.name for i in config.indicators if i.source == "evaluator"]
    params |= {
        "units": names["unit"],
        "evaluators": names["evaluator"],
        "known": known,
        "positions": [positions[name] for name in known],
    }
    # Codes narrower than DuckDB's BIGINT: its sort compares fewer bytes (0.17 against 0.23 s).
    scored = _arrow_table(
        con,
        """SELECT unit_code::INTEGER AS unit_no, indicator_code::SMALLINT AS indicator_no,
            evaluator_code::INTEGER AS evaluator_no, score
        FROM evaluation_scores
        JOIN (SELECT unnest($units) AS unit, unnest(range(len($units))) AS unit_code)
            USING (unit)
        JOIN (SELECT unnest($evaluators) AS evaluator,
                     unnest(range(len($evaluators))) AS evaluator_code) USING (evaluator)
        JOIN (SELECT unnest($known) AS indicator, unnest($positions) AS indicator_code)
            USING (indicator)
        WHERE year = $year AND unit_level = $level AND NOT isnan(score)
        ORDER BY unit_no, indicator_no, score, evaluator_no""",
        params,
    )
    left = _arrow_table(
        con,
        f"""SELECT unit, evaluator, indicator, isnan(score) AS blank {rows}
            AND (NOT list_contains($known, indicator) OR isnan(score))""",
        params,
    )
    total = _arrow_table(con, f"SELECT count(*) AS n {rows}", params).column("n")[0].as_py()
    if scored.num_rows + left.num_rows != total:  # a name the join did not find: never drop it
        return None
    code_of = {
        column: {name: code for code, name in enumerate(names[column])}
        for column in ("unit", "evaluator")
    }
    return StoredScores(
        unit_names=np.asarray(names["unit"], dtype=object),
        evaluator_names=np.asarray(names["evaluator"], dtype=object),
        unit=scored.column("unit_no").to_numpy().astype(np.int64),
        indicator=scored.column("indicator_no").to_numpy().astype(np.int64),
        evaluator=scored.column("evaluator_no").to_numpy().astype(np.int64),
        score=scored.column("score").to_numpy().astype(float),
        left_unit=np.array(
            [code_of["unit"][name] for name in left.column("unit").to_pylist()], dtype=np.int64
        ),
        left_evaluator=np.array(
            [code_of["evaluator"][name] for name in left.column("evaluator").to_pylist()],
            dtype=np.int64,
        ),
        left_indicator=np.asarray(left.column("indicator").to_pylist(), dtype=object),
        left_blank=np.asarray(left.column("blank").to_pylist(), dtype=bool),
    )


FIGURE_COLUMNS = [
    "unit",
    "parent",
    "households",
    "tickets",
    "tickets_per_100_households",
    "response_on_time_rate",
    "resolution_on_time_rate",
    "response_rate",
    "resolution_rate",
    "satisfaction_rate",
    "three_rate_composite",
    "callback_n",
    "survey_satisfaction_rate",
    "survey_n",
]


def unit_figures(
    con: duckdb.DuckDBPyConnection,
    config: Config,
    year: int,
    level: str,
    scope: Scope | None = None,
) -> pd.DataFrame:
    """The year's figures of every unit of `level` as 总览 shows them (unit_table), named as the
    evaluation names units (compounds whose name repeats carry their community): what an
    evaluator sees beside a scoring form. FIGURE_COLUMNS."""
    _check_level(level)
    if level == "compound":
        table, _ = compound_metrics(con, config, year, scope)
    else:
        table = unit_table(
            con, Filters.for_year(year).within(scope or Scope.district()), config, level
        )
    return table[FIGURE_COLUMNS].reset_index(drop=True)


# --- what the 年度考评 page keeps ------------------------------------------------------------------

SOURCE_COUNT_COLUMNS = ["unit", "evaluator", "source", "indicators"]


@dataclass(frozen=True, eq=False)
class EvaluationPage:
    """What the 年度考评 page shows of one year and level, computed once and cached whole (so a
    rerun only reads it back): the result, its method comparison and robustness, and year over
    year against the previous year.

    result: the EvaluationResult, but its inputs keep no score rows (`inputs.scores` is empty,
        with its columns): the page shows only how many indicators each evaluator scored per
        source (`sources`), and a city's scores are over a million rows. Its evaluator_scores,
        adjustments, breakdown and detail stay (the report downloads need them).
    previous: last year's ranking (what year over year and the report's comparison read), or
        None.
    sources: SOURCE_COUNT_COLUMNS, per unit × evaluator × source the number of distinct
        indicators scored; empty when the scores carry no `source`.
    robust: robustness(result), or None where it is not computed at once
        (`robustness_at_once`): the page computes it from `result` when asked.
    change: year_over_year(result, previous), or None.
    """

    result: EvaluationResult
    previous: YearRanking | None
    sources: pd.DataFrame
    methods: MethodComparison
    robust: RobustnessResult | None
    change: pd.DataFrame | None


# Robustness re-ranks every unit in every draw. A district's few hundred units × 1,000 draws
# cost milliseconds, so the page shows it at once; a city's 20,000 compounds × 1,000 draws cost
# over a CPU second (a fifth of a cold 年度考评 at 10M tickets) for a section an evaluator reads
# when checking the ranking, so the page computes it when asked, from the result it holds.
ROBUSTNESS_AT_ONCE_CELLS = 2_000_000


def robustness_at_once(units: int, config: Config) -> bool:
    """Whether `evaluation_page` computes the robustness of `units` units with the page:
    draws × units ≤ ROBUSTNESS_AT_ONCE_CELLS."""
    return units * config.robustness_draws <= ROBUSTNESS_AT_ONCE_CELLS


def evaluation_page(
    con: duckdb.DuckDBPyConnection,
    config: Config,
    year: int,
    level: str,
    scope: Scope | None = None,
    online: pd.DataFrame | None = None,
    with_previous: bool = False,
) -> EvaluationPage:
    """The page's figures of `year` at `level` (see EvaluationPage); with_previous: compare with
    `year` − 1 too (the caller knows whether that year has scores). The robustness is left
    out (None) where `robustness_at_once` says it is too costly to compute unasked.

    The year before is computed beside the year shown, on a second thread with a cursor of its
    own (`con` must be a warehouse reader's, as `lake.cursor` takes), and only as far as year
    over year reads it: its ranking (`ranking_result`). Reading is DuckDB's, Arrow's and
    numpy's work, most of it outside Python's global lock, so on two cores the threads overlap
    (10M city, 2025 beside 2024, the page cold in bench_pages, the two ways alternated on one
    host: 4.99, 5.02 s against 5.88, 6.02 s with the year before computed after it). Where
    the scores are the workbook's alone, the indicators each evaluator scored are counted in
    the scores as stored (`stored_sources`)."""
    locked = _locked(con, year, level, online)
    scope = scope or Scope.district()
    with ThreadPoolExecutor(max_workers=1) as beside:
        earlier = (
            beside.submit(
                _closing, ranking_result, cursor(con), config, year - 1, level, scope, online
            )
            if with_previous
            else None
        )
        result, stored = _year_result(con, config, year, level, scope, locked)
        sources = score_sources(result.inputs.scores) if stored is None else stored_sources(stored)
        # while the year before may still be computed
        methods = compare_methods(result)
        robust = robustness(result, config) if robustness_at_once(len(result.table), config) else None
        previous = earlier.result() if earlier is not None else None
    slim = replace(result, inputs=replace(result.inputs, scores=result.inputs.scores.iloc[:0]))
    return EvaluationPage(
        result=slim,
        previous=previous,
        sources=sources,
        methods=methods,
        robust=robust,
        change=year_over_year(result, previous) if previous is not None else None,
    )


def _closing(query: Callable[..., T], con: duckdb.DuckDBPyConnection, *args: Any) -> T:
    """query(con, *args) on a cursor of its own, closed after."""
    try:
        return query(con, *args)
    finally:
        con.close()


def stored_sources(stored: StoredScores) -> pd.DataFrame:
    """score_sources of the workbook's scores as stored (every one from WORKBOOK_SOURCE): the
    loader keeps one score per year × level × unit × evaluator × indicator, so the rows of a
    unit × evaluator, used or left out, are its distinct indicators; counted on their codes."""
    evaluators = max(len(stored.evaluator_names), 1)
    keys = np.concatenate(
        [stored.unit * evaluators + stored.evaluator,
         stored.left_unit * evaluators + stored.left_evaluator]
    )  # fmt: skip
    space = len(stored.unit_names) * evaluators
    if space <= SEEN_KEYS_AT_MOST:  # one count a possible key: no sorting of rows
        counted = np.bincount(keys, minlength=space)
        groups = np.flatnonzero(counted)
        counts = counted[groups]
    else:
        groups, counts = np.unique(keys, return_counts=True)
    return pd.DataFrame(
        {
            "unit": _named(stored.unit_names, groups // evaluators),
            "evaluator": _named(stored.evaluator_names, groups % evaluators),
            "source": _named(np.array([WORKBOOK_SOURCE], dtype=object), groups * 0),
            "indicators": counts.astype("int64"),
        }
    )


def _named(names: np.ndarray, codes: npt.NDArray[np.int64]) -> pd.api.extensions.ExtensionArray:
    """The `str` column of names[codes], taken by Arrow: no Python string a row (140,000 rows
    at 50M: 4 ms, where one a row took 20)."""
    return pd.array(pa.array(names.tolist(), pa.string()).take(codes), dtype="str")


# score_sources marks the unit × evaluator × source × indicator keys seen in an array of one
# flag a key where there are at most this many keys (64 MB), else hashes the rows' keys.
SEEN_KEYS_AT_MOST = 1 << 26


def score_sources(scores: pd.DataFrame) -> pd.DataFrame:
    """Per unit × evaluator × source (SOURCE_COUNT_COLUMNS, sorted by them): how many distinct
    indicators that evaluator scored for the unit from that source, counted on integer codes
    (a string group-by over a million rows costs a second)."""
    if "source" not in scores.columns or scores.empty:
        return pd.DataFrame(
            {
                c: pd.Series(dtype="int64" if c == "indicators" else "str")
                for c in SOURCE_COUNT_COLUMNS
            }
        )
    keys = ["unit", "evaluator", "source", "indicator"]
    codes, names = [], []
    for column in keys:
        code, distinct = _sorted_text_codes(scores[column])
        codes.append(code)
        names.append(distinct)
    sizes = [max(len(n), 1) for n in names]
    combined = np.zeros(len(scores), dtype=np.int64)
    for code, size in zip(codes, sizes, strict=True):
        combined = combined * size + code
    known = np.ones(len(scores), dtype=bool)
    for code in codes:
        known &= code >= 0
    space = sizes[0] * sizes[1] * sizes[2] * sizes[3]
    if space <= SEEN_KEYS_AT_MOST:  # one flag a possible key: no hashing or sorting of rows
        seen = np.zeros(space, dtype=bool)
        seen[combined[known]] = True
        distinct_rows = np.flatnonzero(seen)
    else:
        distinct_rows = np.asarray(pd.unique(combined[known]))  # hashing, not sorting
    groups, counts = np.unique(distinct_rows // sizes[3], return_counts=True)
    source = groups % sizes[2]
    evaluator = groups // sizes[2] % sizes[1]
    unit = groups // sizes[2] // sizes[1]
    return pd.DataFrame(
        {
            "unit": pd.array(names[0][unit], dtype="str"),
            "evaluator": pd.array(names[1][evaluator], dtype="str"),
            "source": pd.array(names[2][source], dtype="str"),
            "indicators": counts.astype("int64"),
        }
    )


def _sorted_text_codes(values: pd.Series) -> tuple[npt.NDArray[np.int64], np.ndarray]:
    """Per value the code of str(value) among the distinct texts sorted (−1 where missing),
    and those texts: factorized on the values (a categorical's codes as they are), the few
    distinct texts sorted after (a categorical's own order is not the texts')."""
    code, distinct = pd.factorize(values)
    texts = np.array([str(value) for value in np.asarray(distinct, dtype=object)], dtype=object)
    names, inverse = np.unique(texts, return_inverse=True)  # two values may print alike
    code = np.asarray(code, dtype=np.int64)
    return np.where(code >= 0, inverse.astype(np.int64)[code], -1), names.astype(object)
