"""The annual evaluation (评优评先, DOMAIN.md §5) as pure functions of DataFrames and the Config.

One year and one level (compound, community or property company) at a time: `evaluate` turns
evaluator scores, adjustments and metric values into points per indicator, totals, grades,
ranks and awards, and keeps where every number came from. Beside it: the entropy-weight and
TOPSIS alternatives (`compare_methods`), weight robustness (`robustness`), what-if weights
(`rescore`, `rank_changes`), year over year (`year_over_year`) and the 红黑榜 (`red_black`).

At a city's scale (20,000 compounds, over a million score rows a year) nothing here loops in
Python per unit or per row: units, indicators and evaluators become integer codes once, the
scores are sorted once (one packed int64 key) and aggregated over runs; sentences are
assembled column-wise from each distinct value's text; robustness ranks all draws × units with
row-wise sorts of packed keys. The sentences and the long score frame are built when first
read (a page shows one unit's), and a pickled result carries only the arrays they come from.

The rules this module decides (DOMAIN.md leaves them open); `rules_text` prints them:

- Evaluator indicators: per unit × indicator the trimmed mean (one highest and one lowest
  score dropped; equal scores are dropped in evaluator order) when at least
  config.trim_from_evaluators evaluators scored it, else the plain mean. An evaluator's
  repeated rows for one unit × indicator are averaged first. Disputed: max − min of the
  scores (before trimming) > config.disagreement_share × the indicator's points.
- Metric indicators: points = points_max × clamp((x − floor) ÷ (target − floor), 0, 1).
- A missing indicator scores 0 points (its column shows NaN) and makes the unit ineligible
  (缺少指标). A survey indicator with fewer than config.min_sample respondents still scores
  its points but makes the unit ineligible (样本不足).
- 加分/扣分/一票否决 belong to the unit, usually repeated on every evaluator's row: bonus and
  penalty are the mean of the values evaluators recorded (blank = not recorded), the bonus then
  capped at config.max_bonus; one evaluator's 一票否决 is enough (that is what the words mean).
- Total = Σ points + bonus − penalty. Totals are compared rounded to TOTAL_DECIMALS decimals.
- Grades by config.grades (total ≥ cut-off, highest first), below all of them NOT_PASSED;
  一票否决 gives NOT_PASSED whatever the total.
- rank: equal totals share the smallest rank (1, 2, 2, 4), over all units. `position` is the
  order after the tie-break: total, then the subtotals of config.tie_break blocks in turn, then
  the unit name (a name decides nothing: such units are "fully tied"). `tie_note` says which
  block decided an order.
- Awards go to the award pool: eligible units whose grade is one of the top AWARD_GRADE_COUNT
  grades of config.grades (优秀, 良好 by default), in `position` order. With N pool units and
  cumulative shares S₁ ≤ S₂ ≤ … of config.awards, tier t ends at pool position
  k_t = round-half-up(N × S_t), never below k_{t−1}, never above N; the first tier has at least
  one unit whenever N > 0. Units fully tied across a tier boundary all get the higher award.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

from govdash.analytics.metrics.rates import indicator_points, red_black_size
from govdash.core.config import Config, Indicator

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

LEVELS = ("compound", "community", "property_company")
NOT_PASSED = "不合格"
VETO = "一票否决"
SMALL_SAMPLE = "样本不足"
MISSING = "缺少指标"
AWARD_GRADE_COUNT = 2  # awards go to the top two grades of config.grades (优秀, 良好)
TOTAL_DECIMALS = 6  # totals and subtotals are compared at this precision
WEIGHT_TOLERANCE = 1e-6

# Config indicator (source, metric) → metrics column; the same as govdash.analytics.queries.units
# COMPOSITE_SOURCES (a test keeps them in step; that module talks to DuckDB, this one does not).
METRIC_COLUMNS: dict[tuple[str, str], str] = {
    ("tickets", "response_rate"): "response_rate",
    ("tickets", "resolution_rate"): "resolution_rate",
    ("tickets", "satisfaction_rate"): "satisfaction_rate",
    ("survey", "satisfaction_rate"): "survey_satisfaction_rate",
}
# Metrics column → the count behind it (shown as n beside the value).
METRIC_N_COLUMNS = {
    "response_rate": "callback_n",
    "resolution_rate": "callback_n",
    "satisfaction_rate": "callback_n",
    "survey_satisfaction_rate": "survey_n",
}
RATE_COLUMNS = tuple(METRIC_N_COLUMNS)

SCORE_COLUMNS = ["unit", "evaluator", "indicator", "score"]
ADJUSTMENT_COLUMNS = ["unit", "evaluator", "bonus", "penalty", "is_veto", "note"]
METRIC_INPUT_COLUMNS = [
    "unit",
    "parent",
    "households",
    "response_rate",
    "resolution_rate",
    "satisfaction_rate",
    "callback_n",
    "survey_satisfaction_rate",
    "survey_n",
    "survey_respondents",
]
# Columns of EvaluationResult.table around the per-indicator and per-block columns.
TABLE_LEADING_COLUMNS = ["position", "rank", "unit", "parent", "households"]
TABLE_TRAILING_COLUMNS = [
    "bonus",
    "penalty",
    "total",
    "grade",
    "award",
    "tie_note",
    "is_veto",
    "is_eligible",
    "ineligible_reason",
    "missing_indicators",
    "survey_respondents",
    "is_small_sample",
    "is_disputed",
    "disputed_indicators",
    "adjustment_note",
]
BLOCK_SUFFIX = "小计"
EVALUATOR_DETAIL_COLUMNS = [
    "unit",
    "block",
    "indicator",
    "points_max",
    "evaluators",
    "method",
    "aggregate",
    "low",
    "high",
    "score_range",
    "is_disputed",
    "trimmed_low_evaluator",
    "trimmed_high_evaluator",
    "scores_text",
]
EVALUATOR_SCORE_COLUMNS = ["unit", "indicator", "evaluator", "score", "is_trimmed"]
BREAKDOWN_COLUMNS = [
    "unit",
    "block",
    "indicator",
    "source",
    "value",
    "n",
    "points_max",
    "share",
    "points",
    "is_missing",
    "evidence",
    "explanation",
]
ROBUSTNESS_COLUMNS = [
    "unit",
    "rank",
    "award",
    "median_rank",
    "rank_p05",
    "rank_p95",
    "is_in_award_pool",
    "pool_position",
    "pool_position_p05",
    "pool_position_p95",
    "best_award",
    "worst_award",
    "same_award_share",
    "crosses_tier",
]


# --- inputs and results -------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class EvaluationInput:
    """One year's inputs at one level.

    scores: SCORE_COLUMNS (a `year` column may be there too), evaluator-scored indicators on
    the scale of each indicator's config points. adjustments: ADJUSTMENT_COLUMNS. metrics: one
    row per unit with METRIC_INPUT_COLUMNS (rates 0–1, NaN where unknown); optional
    `<rate>_compounds` and `<rate>_weighting` columns describe a roll-up (see
    `roll_up_metrics`). units: the units to rank; units with scores or adjustments are added;
    when empty, the metrics' units are used. notes: what the data layer wants shown.
    """

    year: int | None
    level: str
    scores: pd.DataFrame
    adjustments: pd.DataFrame
    metrics: pd.DataFrame
    units: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, got {self.level!r}")
        object.__setattr__(self, "units", tuple(str(unit) for unit in self.units))
        object.__setattr__(self, "notes", tuple(self.notes))
        for name, columns in (
            ("scores", SCORE_COLUMNS),
            ("adjustments", ADJUSTMENT_COLUMNS),
            ("metrics", ["unit"]),
        ):
            missing = [c for c in columns if c not in getattr(self, name).columns]
            if missing:
                raise ValueError(f"{name} lacks columns {missing}")


def empty_scores() -> pd.DataFrame:
    return pd.DataFrame(
        {c: pd.Series(dtype=float if c == "score" else object) for c in SCORE_COLUMNS}
    )


def empty_adjustments() -> pd.DataFrame:
    kinds = {"bonus": float, "penalty": float, "is_veto": "boolean"}
    return pd.DataFrame(
        {c: pd.Series(dtype=kinds.get(c, object)) for c in ADJUSTMENT_COLUMNS}  # type: ignore[call-overload]
    )


@dataclass(frozen=True, eq=False)
class EvaluationResult:
    """What `evaluate` and `rescore` return.

    table: one row per unit in `position` order; columns `table_columns(config)`.
    breakdown: per unit × indicator (BREAKDOWN_COLUMNS): the raw value and its n, points and a
        sentence saying where the points came from (e.g. "响应率 0.962（n=412 次回访）→ …").
    evaluator_detail: per unit × evaluator indicator (EVALUATOR_DETAIL_COLUMNS), on the scale
        evaluators scored on (config points): the aggregate, what was trimmed, is_disputed.
    evaluator_scores: the scores used, one row per unit × indicator × evaluator, is_trimmed.
    weights: the maximum points of each indicator this result used.
    shares: unit × indicator achievement 0–1 (points ÷ maximum points), NaN where missing;
        `rescore` and `robustness` re-weight it.
    unit_facts: per unit (index) the facts that do not depend on weights.
    warnings: input rows the engine could not use, and the data layer's notes.

    The sentences (breakdown, evaluator_detail, evidence) and the long evaluator_scores are
    built from compact arrays when first read, and not pickled: a city's are hundreds of
    megabytes, a page shows one unit's (`unit_breakdown`, `unit_evaluator_detail`), and only
    a report needs them all. `ranking()` keeps what year over year reads.
    """

    inputs: EvaluationInput
    config: Config
    weights: dict[str, float]
    table: pd.DataFrame
    shares: pd.DataFrame
    unit_facts: pd.DataFrame
    parts: _Parts | None = field(default=None, repr=False)
    warnings: tuple[str, ...] = ()
    _built: dict[str, pd.DataFrame] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_built"] = {}  # rebuilt when read
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    @property
    def year(self) -> int | None:
        return self.inputs.year

    @property
    def level(self) -> str:
        return self.inputs.level

    def _once(self, name: str, build: Callable[[], pd.DataFrame]) -> pd.DataFrame:
        if name not in self._built:
            self._built[name] = build()
        return self._built[name]

    def _all_units(self) -> IntArray:
        return np.arange(len(self.shares), dtype=np.int64) if self.parts else np.zeros(0, np.int64)

    @property
    def evidence(self) -> pd.DataFrame:
        """Per indicator × unit: block, source, value, n, floor, target, share, evidence."""
        return self._once(
            "evidence", lambda: _evidence_frame(self.parts, self.config, self.shares, None)
        )

    @property
    def breakdown(self) -> pd.DataFrame:
        return self._once(
            "breakdown", lambda: _breakdown(self.evidence, self.table, self.weights)
        )

    @property
    def evaluator_detail(self) -> pd.DataFrame:
        return self._once("detail", lambda: _detail_frame(self.parts, None))

    @property
    def evaluator_scores(self) -> pd.DataFrame:
        return self._once("scores", lambda: _scores_frame(self.parts))

    def unit_breakdown(self, unit: str) -> pd.DataFrame:
        """The breakdown's rows of one unit (what `breakdown` holds for it), built alone."""
        rows = self._unit_rows(unit)
        evidence = _evidence_frame(self.parts, self.config, self.shares, rows)
        return _breakdown(evidence, self.table, self.weights)

    def unit_evaluator_detail(self, unit: str) -> pd.DataFrame:
        """The evaluator_detail rows of one unit, built alone."""
        return _detail_frame(self.parts, self._unit_rows(unit))

    def _unit_rows(self, unit: str) -> IntArray:
        found = self.shares.index.get_indexer(pd.Index([unit])) if self.parts else np.array([-1])
        return found[found >= 0].astype(np.int64)

    def ranking(self) -> YearRanking:
        """What year over year reads of this result (`YearRanking`)."""
        by_unit = self.table.set_index("unit").reindex(self.shares.index)
        return YearRanking(
            year=self.year,
            level=self.level,
            table=_ranking_frame(
                self.shares.index.to_numpy(object),
                by_unit["total"].to_numpy(float),
                by_unit["rank"].to_numpy(np.int64),
                by_unit["grade"].to_numpy(object),
            ),
        )


RANKING_COLUMNS = ["unit", "total", "rank", "grade"]


@dataclass(frozen=True, eq=False)
class YearRanking:
    """What year over year (`year_over_year`, the report's comparison) reads of a year: its
    year and level and per unit (sorted by name) the total, rank and grade (RANKING_COLUMNS).
    `EvaluationResult.ranking()` of a whole result; `rank_stored` computes it alone, without
    the sentences, facts, tie-break and awards a year shown needs (the page's year before)."""

    year: int | None
    level: str
    table: pd.DataFrame


def _ranking_frame(
    units: np.ndarray, total: FloatArray, rank: IntArray, grade: npt.ArrayLike
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "unit": units,
            "total": np.asarray(total, dtype=float),
            "rank": np.asarray(rank, dtype=np.int64),
            "grade": np.asarray(grade, dtype=object),
        }
    )


def indicator_names(config: Config) -> list[str]:
    return [indicator.name for indicator in config.indicators]


def block_names(config: Config) -> list[str]:
    """Blocks in the order they first appear in the indicator system."""
    return list(dict.fromkeys(indicator.block for indicator in config.indicators))


def block_column(block: str) -> str:
    return f"{block}{BLOCK_SUFFIX}"


def table_columns(config: Config) -> list[str]:
    return [
        *TABLE_LEADING_COLUMNS,
        *indicator_names(config),
        *[block_column(block) for block in block_names(config)],
        *TABLE_TRAILING_COLUMNS,
    ]


def default_weights(config: Config) -> dict[str, float]:
    return {indicator.name: float(indicator.points) for indicator in config.indicators}


def normalised_weights(weights: Mapping[str, float], config: Config) -> dict[str, float]:
    """Slider values scaled so they sum to the config's total (100), ready for `rescore`;
    indicators left out keep their config points before scaling."""
    chosen = {**default_weights(config), **{k: float(v) for k, v in weights.items()}}
    total = sum(chosen.values())
    if total <= 0:
        raise ValueError("各指标分值之和应大于 0")
    expected = sum(default_weights(config).values())
    return {name: value * expected / total for name, value in chosen.items()}


def award_grades(config: Config) -> tuple[str, ...]:
    return tuple(config.grades)[:AWARD_GRADE_COUNT]


# --- the evaluation -------------------------------------------------------------------------


def evaluate(
    inputs: EvaluationInput, config: Config, weights: Mapping[str, float] | None = None
) -> EvaluationResult:
    """Points, totals, grades, ranks and awards of one year's inputs (rules: module docstring).

    weights: maximum points per indicator (default: the config's); must sum to the config's
    total (100 by default). Evaluator scores are on the config's scale and re-scaled.
    """
    chosen = _checked_weights(config, weights)
    notes: list[str] = list(inputs.notes)
    units = _unit_list(inputs)
    core = _evaluator_core(inputs.scores, units, config, notes)
    return _evaluated(inputs, config, chosen, units, core, notes)


def _evaluated(
    inputs: EvaluationInput,
    config: Config,
    chosen: dict[str, float],
    units: list[str],
    core: _EvaluatorCore,
    notes: list[str],
) -> EvaluationResult:
    """The result of `units` (sorted) whose evaluator indicators `core` holds."""
    metric_values = _metric_values(inputs.metrics, units)
    shares = _shares(units, config, core.runs.shares, metric_values)
    facts = _unit_facts(units, inputs, config, shares, core.runs.disputed_matrix, metric_values)
    table = _finish(config, chosen, shares, facts)
    return EvaluationResult(
        inputs=inputs,
        config=config,
        weights=chosen,
        table=table,
        shares=shares,
        unit_facts=facts,
        parts=_Parts(
            units=np.array(units, dtype=object),
            names=np.array(indicator_names(config), dtype=object),
            blocks=np.array([i.block for i in config.indicators], dtype=object),
            points=np.array([float(i.points) for i in config.indicators], dtype=float),
            core=core,
            metric_values=metric_values,
        ),
        warnings=tuple(notes),
    )


def rescore(result: EvaluationResult, weights: Mapping[str, float]) -> EvaluationResult:
    """The same inputs under other maximum points per indicator (for the page's sliders).

    `weights` names some or all indicators; those left out keep their current points. The
    points must sum to the config's total. Only the weighting is redone, so it is fast.
    """
    merged = {**result.weights, **{name: float(value) for name, value in weights.items()}}
    unknown = set(weights) - set(result.weights)
    if unknown:
        raise ValueError(f"未知指标：{'、'.join(sorted(unknown))}")
    chosen = _checked_weights(result.config, merged)
    table = _finish(result.config, chosen, result.shares, result.unit_facts)
    return replace(result, weights=chosen, table=table)


@dataclass(frozen=True, eq=False)
class StoredScores:
    """A year's evaluator scores at one level as the warehouse sorts them, for
    `evaluate_stored`: one row per score of one of the config's evaluator indicators that is
    a number, sorted by unit, indicator (config order), score and evaluator, each row its
    unit's code into `unit_names`, its indicator's position in config.indicators, its
    evaluator's code into `evaluator_names` (both sorted as Python sorts text) and its score.
    unit_names: every unit a score row names, a number or not (`evaluate` ranks those too).
    The rows left out (an indicator none of the config's evaluator indicators, or no number)
    apart: their unit's and evaluator's codes, indicator name and whether the score is blank.
    One score per unit × evaluator × indicator (the loader keeps one per year × level × unit ×
    evaluator × indicator)."""

    unit_names: np.ndarray
    evaluator_names: np.ndarray
    unit: IntArray
    indicator: IntArray
    evaluator: IntArray
    score: FloatArray
    left_unit: IntArray = field(default_factory=lambda: np.zeros(0, np.int64))
    left_evaluator: IntArray = field(default_factory=lambda: np.zeros(0, np.int64))
    left_indicator: np.ndarray = field(default_factory=lambda: np.zeros(0, object))
    left_blank: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, bool))

    def of_units(self, units: set[str]) -> StoredScores:
        """The scores of `units` only (a scope's), their units coded anew."""
        named = np.array([unit in units for unit in self.unit_names.tolist()], dtype=bool)
        code_of = np.cumsum(named, dtype=np.int64) - 1
        kept, left = named[self.unit], named[self.left_unit]
        return replace(
            self,
            unit_names=self.unit_names[named],
            unit=code_of[self.unit[kept]],
            indicator=self.indicator[kept],
            evaluator=self.evaluator[kept],
            score=self.score[kept],
            left_unit=code_of[self.left_unit[left]],
            left_evaluator=self.left_evaluator[left],
            left_indicator=self.left_indicator[left],
            left_blank=self.left_blank[left],
        )


def evaluate_stored(
    inputs: EvaluationInput, stored: StoredScores, config: Config
) -> EvaluationResult:
    """What `evaluate(inputs with the stored scores' rows, config)` gives — the same table,
    breakdown, evaluator detail, scores and warnings, to the last bit (each unit × indicator
    is added up in the order `evaluate` adds its rows) — from scores the warehouse has coded
    and sorted (`StoredScores`): a city's million score rows are neither read into Python as
    text nor sorted there. `inputs.scores` is not read (the stored scores are the scores)."""
    notes: list[str] = list(inputs.notes)
    units, core = _stored_core(inputs, stored, config, notes)
    return _evaluated(inputs, config, _checked_weights(config, None), units, core, notes)


def rank_stored(inputs: EvaluationInput, stored: StoredScores, config: Config) -> YearRanking:
    """`evaluate_stored(inputs, stored, config).ranking()` — the same totals, ranks and grades,
    to the last bit (the same shares, adjustments and sums) — without what only a year shown
    needs: no facts' or evidence sentences, tie-break, awards or table (a city's year before:
    0.22–0.33 → 0.14–0.18 s)."""
    units, core = _stored_core(inputs, stored, config, [])
    metric_values = _metric_values(inputs.metrics, units)
    shares = _shares(units, config, core.runs.shares, metric_values)
    bonus, penalty, is_veto, _ = _adjustment_columns(inputs.adjustments, config, units)
    total = _points_and_total(config, _checked_weights(config, None), shares, bonus, penalty)[2]
    return YearRanking(
        year=inputs.year,
        level=inputs.level,
        table=_ranking_frame(
            np.array(units, dtype=object),
            total,
            _min_ranks(total)[0],
            _grades(total, is_veto, config),
        ),
    )


def _stored_core(
    inputs: EvaluationInput, stored: StoredScores, config: Config, notes: list[str]
) -> tuple[list[str], _EvaluatorCore]:
    """The units (sorted) and evaluator core of stored scores, the notes on those left out."""
    units = sorted(set(_unit_list(inputs)) | set(stored.unit_names.tolist()))
    known = {i.name for i in _evaluator_indicators(config)}
    unknown = sorted({str(name) for name in stored.left_indicator.tolist()} - known)
    _score_notes(notes, unknown, int(stored.left_blank.sum()))
    position = pd.Index(units).get_indexer(pd.Index(stored.unit_names.tolist(), dtype=object))
    unit = np.asarray(position, dtype=np.int64)[stored.unit]
    # Both lists are sorted as Python sorts, so the warehouse's order is this module's.
    core = _sorted_core(
        unit, stored.indicator, stored.evaluator, stored.score, stored.evaluator_names,
        len(units), config, notes,
    )  # fmt: skip
    return units, core


def _checked_weights(config: Config, weights: Mapping[str, float] | None) -> dict[str, float]:
    base = default_weights(config)
    if weights is None:
        return base
    unknown = set(weights) - set(base)
    if unknown:
        raise ValueError(f"未知指标：{'、'.join(sorted(unknown))}")
    chosen = {name: float(weights.get(name, points)) for name, points in base.items()}
    bad = [name for name, value in chosen.items() if not math.isfinite(value) or value < 0]
    if bad:
        raise ValueError(f"指标分值应为非负数：{'、'.join(bad)}")
    expected = sum(base.values())
    if abs(sum(chosen.values()) - expected) > WEIGHT_TOLERANCE * max(expected, 1):
        raise ValueError(f"各指标分值之和应为 {expected:g}，实际为 {sum(chosen.values()):g}")
    return chosen


def _unit_list(inputs: EvaluationInput) -> list[str]:
    listed = list(inputs.units) or [str(u) for u in inputs.metrics["unit"].dropna()]
    extra = _distinct_texts(inputs.scores["unit"])
    extra += _distinct_texts(inputs.adjustments["unit"])
    return sorted(set(listed) | set(extra))


def _distinct_texts(values: pd.Series) -> list[str]:
    """str() of the distinct values that are not missing, each computed once (a city's scores
    repeat a few thousand names over a million rows; a categorical's are its codes')."""
    _, distinct = pd.factorize(values)  # missing values are left out (coded −1)
    texts = np.asarray(distinct, dtype=object)
    return [str(value) for value in texts[~pd.isna(texts)].tolist()]


def _text_codes(values: pd.Series) -> tuple[IntArray, np.ndarray]:
    """Per value the code of str(value) (as `.astype(object).map(str)` gives it) and the
    distinct texts the codes index (an object array), computed once per distinct value."""
    codes, distinct = pd.factorize(values, use_na_sentinel=False)
    texts = np.array([str(value) for value in np.asarray(distinct, dtype=object)], dtype=object)
    merged, unique = pd.factorize(texts)  # two values may print alike (1 and "1")
    found = np.asarray(merged, dtype=np.int64)[np.asarray(codes, dtype=np.int64)]
    return found, np.asarray(unique, dtype=object)


def _as_text(values: pd.Series) -> np.ndarray:
    """str() of every value (as `.astype(object).map(str)`), computed once per distinct value."""
    codes, texts = _text_codes(values)
    return texts[codes]


def _formatted(values: npt.ArrayLike, spec: str) -> np.ndarray:
    """format(value, spec) of every value (an object array), formatted once per distinct value
    (distinct by bit pattern, so −0.0 and NaN print as a row-by-row f-string prints them)."""
    array = np.asarray(values)
    if array.dtype.kind == "f":
        array = array.astype(np.float64)
        codes, distinct = pd.factorize(array.view(np.int64))
        numbers = np.asarray(distinct, dtype=np.int64).view(np.float64)
    else:
        codes, numbers = pd.factorize(array)
    texts = np.array([format(value, spec) for value in numbers.tolist()], dtype=object)
    return texts[np.asarray(codes, dtype=np.int64)] if len(array) else np.zeros(0, dtype=object)


def _text_column(texts: npt.ArrayLike) -> pd.api.extensions.ExtensionArray:
    """An object array of str as the `str` column pandas would infer for it (built through
    Arrow, which is several times faster than pandas' inference for a million rows)."""
    return pd.array(pa.array(np.asarray(texts, dtype=object), type=pa.string()), dtype="str")


def _taken(codes: npt.ArrayLike, names: npt.ArrayLike) -> pd.api.extensions.ExtensionArray:
    """names[codes] as a `str` column (Arrow take: no Python string per row)."""
    dictionary = pa.array(np.asarray(names, dtype=object), type=pa.string())
    return pd.array(dictionary.take(pa.array(np.asarray(codes, dtype=np.int64))), dtype="str")


def _joined(
    parts: Sequence[np.ndarray | str], where: npt.NDArray[np.bool_] | None = None
) -> np.ndarray:
    """Row-wise concatenation of object arrays of str (and str, repeated); "" where `where`
    is False."""
    total: Any = parts[0]
    for part in parts[1:]:
        total = total + part
    if where is not None:
        total = np.where(where, total, "")
    return np.asarray(total, dtype=object)


def _evaluator_indicators(config: Config) -> list[Indicator]:
    return [indicator for indicator in config.indicators if indicator.source == "evaluator"]


@dataclass(frozen=True, eq=False)
class _EvaluatorCore:
    """The evaluator indicators as arrays. Rows (the scores used) sorted by unit, indicator,
    score, evaluator: codes into the unit list, config.indicators and `evaluator_names`.
    Groups (one per unit × indicator scored): their first row and size; `runs` what the
    groups give (`_run_figures`: per row whether trimmed, per group the aggregate, whether
    trimmed and disputed, and the matrices over units × config.indicators)."""

    evaluator_names: np.ndarray
    unit: npt.NDArray[np.int32]
    indicator: npt.NDArray[np.int16]
    evaluator: npt.NDArray[np.int32]
    score: FloatArray
    first: IntArray
    sizes: IntArray
    runs: _RunFigures


@dataclass(frozen=True, eq=False)
class _Parts:
    """What a result's sentences and long frames are built from: the units (sorted names, the
    order of `shares`), the indicators' names, blocks and config points (config order), the
    evaluator core and the metric values (index unit)."""

    units: np.ndarray
    names: np.ndarray
    blocks: np.ndarray
    points: FloatArray
    core: _EvaluatorCore
    metric_values: pd.DataFrame


def _evaluator_core(
    scores: pd.DataFrame, units: list[str], config: Config, notes: list[str]
) -> _EvaluatorCore:
    """The evaluator indicators on integer codes: units, indicators and evaluators become
    codes once (per distinct value), the rows are sorted once so each unit × indicator is one
    contiguous run, lowest score first (then by evaluator), and the aggregates are sums over
    runs (numpy), not a Python call per group."""
    names = indicator_names(config)
    indicators = {i.name: i for i in _evaluator_indicators(config)}
    width = len(names)
    unit_code, unit_texts = _text_codes(scores["unit"])
    indicator_code, indicator_texts = _text_codes(scores["indicator"])
    evaluator_code, evaluator_texts = _text_codes(scores["evaluator"])
    score = pd.to_numeric(scores["score"], errors="coerce").to_numpy(float)
    unknown = sorted(set(indicator_texts.tolist()) - set(indicators))
    _score_notes(notes, unknown, int(np.isnan(score).sum()))
    # Codes that sort as the texts do: units by their place in the sorted unit list,
    # indicators by their place in the config, evaluators by name.
    position_of = {name: i for i, name in enumerate(units)}
    unit_of = np.array([position_of.get(t, -1) for t in unit_texts.tolist()], dtype=np.int64)
    order_of = {name: i for i, name in enumerate(names)}
    indicator_of = np.array(
        [order_of[t] if t in indicators else -1 for t in indicator_texts.tolist()], dtype=np.int64
    )
    evaluator_names = np.array(sorted(evaluator_texts.tolist()), dtype=object)
    evaluator_rank = {name: i for i, name in enumerate(evaluator_names.tolist())}
    evaluator_of = np.array([evaluator_rank[t] for t in evaluator_texts.tolist()], dtype=np.int64)
    unit, indicator = unit_of[unit_code], indicator_of[indicator_code]
    evaluator = evaluator_of[evaluator_code]
    kept = (indicator >= 0) & ~np.isnan(score) & (unit >= 0)
    if not kept.all():
        unit, indicator, evaluator, score = unit[kept], indicator[kept], evaluator[kept], score[kept]
    evaluators_count = max(len(evaluator_names), 1)
    key = (unit * width + indicator) * evaluators_count + evaluator
    # One evaluator's repeated scores of a unit's indicator: their mean (pandas' mean, as before).
    if _has_repeats(key, len(units) * width * evaluators_count):
        means = pd.Series(score).groupby(key, sort=False).mean()
        key = means.index.to_numpy(np.int64)
        score = means.to_numpy(float)
        evaluator = key % evaluators_count
        indicator = (key // evaluators_count) % width
        unit = key // evaluators_count // width
    order = _score_order(unit, indicator, score, evaluator, len(units), width)
    return _sorted_core(
        unit[order], indicator[order], evaluator[order], score[order], evaluator_names,
        len(units), config, notes,
    )  # fmt: skip


def _score_notes(notes: list[str], unknown: Sequence[str], blank: int) -> None:
    """The notes on score rows left out: indicators not in the config, rows with no number."""
    if unknown:
        notes.append(f"评分表中的指标不在配置的评委打分指标中，未计分：{'、'.join(unknown)}")
    if blank:
        notes.append(f"{blank} 条评分没有数值，未计分")


def _sorted_core(
    unit: IntArray,
    indicator: IntArray,
    evaluator: IntArray,
    score: FloatArray,
    evaluator_names: np.ndarray,
    units: int,
    config: Config,
    notes: list[str],
) -> _EvaluatorCore:
    """The core of score rows already sorted by unit, indicator, score, evaluator (codes into
    the sorted unit list, config.indicators and the sorted `evaluator_names`), one a unit ×
    indicator × evaluator; notes the scores outside their indicator's range."""
    points_by_order = np.array([float(i.points) for i in config.indicators], dtype=float)
    points = points_by_order[indicator]
    outside = int(((score < 0) | (score > points + 1e-9)).sum())
    if outside:
        notes.append(f"{outside} 条评分超出 0 到该指标分值的范围，已按原值计入")
    count = len(score)
    starts = np.ones(count, dtype=bool)
    if count:
        starts[1:] = (unit[1:] != unit[:-1]) | (indicator[1:] != indicator[:-1])
    first = np.flatnonzero(starts)
    sizes = np.diff(np.r_[first, count]).astype(np.int64)
    return _EvaluatorCore(
        evaluator_names=evaluator_names,
        unit=unit.astype(np.int32),
        indicator=indicator.astype(np.int16),
        evaluator=evaluator.astype(np.int32),
        score=score,
        first=first.astype(np.int64),
        sizes=sizes,
        runs=_run_figures(score, first, sizes, unit[first], indicator[first], units, config),
    )


@dataclass(frozen=True, eq=False)
class _RunFigures:
    """What a unit × indicator run of scores (lowest first) gives: per score is_trimmed; per
    run trims, aggregate, disputed; matrices over units × config.indicators of shares,
    aggregates, evaluators (number of scores) and disputed."""

    is_trimmed: npt.NDArray[np.bool_]
    trims: npt.NDArray[np.bool_]
    aggregate: FloatArray
    disputed: npt.NDArray[np.bool_]
    shares: FloatArray
    aggregates: FloatArray
    evaluators: IntArray
    disputed_matrix: npt.NDArray[np.bool_]


def _run_figures(
    score: FloatArray,
    first: IntArray,
    sizes: IntArray,
    run_unit: IntArray,
    run_indicator: IntArray,
    units: int,
    config: Config,
) -> _RunFigures:
    """The trimmed means and disputes of runs of `score` (run r: `sizes[r]` scores from
    `first[r]`, lowest first, of unit `run_unit[r]` × config indicator `run_indicator[r]`), added
    up over runs in the order the scores stand (numpy), not a Python call per run."""
    count = len(score)
    group = np.repeat(np.arange(len(first), dtype=np.int64), sizes)
    position = np.arange(count) - first[group]
    size = sizes[group]
    is_trimmed = (size >= config.trim_from_evaluators) & ((position == 0) | (position == size - 1))
    trims = sizes >= config.trim_from_evaluators
    last = first + sizes - 1
    if count:
        sums = np.add.reduceat(score, first)
        trimmed_sums = np.add.reduceat(np.where(is_trimmed, score, 0.0), first)
    else:
        sums = trimmed_sums = np.zeros(0)
    aggregate = (sums - trimmed_sums) / np.where(trims, sizes - 2, sizes)
    points_by_order = np.array([float(i.points) for i in config.indicators], dtype=float)
    points_max = points_by_order[run_indicator]
    disputed = (score[last] - score[first]) > config.disagreement_share * points_max + 1e-9
    shape = (units, len(config.indicators))
    shares = np.full(shape, np.nan)
    shares[run_unit, run_indicator] = aggregate / points_max
    aggregates = np.full(shape, np.nan)
    aggregates[run_unit, run_indicator] = aggregate
    counts = np.zeros(shape, dtype=np.int64)
    counts[run_unit, run_indicator] = sizes
    disputed_matrix = np.zeros(shape, dtype=bool)
    disputed_matrix[run_unit, run_indicator] = disputed
    return _RunFigures(
        is_trimmed=is_trimmed,
        trims=trims,
        aggregate=aggregate,
        disputed=disputed,
        shares=shares,
        aggregates=aggregates,
        evaluators=counts,
        disputed_matrix=disputed_matrix,
    )


def _has_repeats(keys: IntArray, key_count: int) -> bool:
    """Whether a key (0 ≤ key < key_count) occurs twice: counted in an array of key_count
    where that is not much more than the keys (one unit × indicator × evaluator each), else
    by hashing."""
    if key_count <= 4 * len(keys) + 1024:
        return bool(len(keys)) and int(np.bincount(keys, minlength=1).max()) > 1
    return bool(pd.Series(keys).duplicated().any())


def _score_order(
    unit: IntArray, indicator: IntArray, score: FloatArray, evaluator: IntArray, units: int,
    width: int,
) -> IntArray:
    """The order of the rows by unit, indicator, score, evaluator (each row's key is unique):
    one argsort of a packed int64 key (score as its rank among the distinct scores) where it
    fits, else np.lexsort of the four."""
    codes, distinct = pd.factorize(score)  # a few dozen distinct scores over a million rows
    rank_of = np.empty(len(distinct), dtype=np.int64)
    rank_of[np.argsort(np.asarray(distinct, dtype=float), kind="stable")] = np.arange(len(distinct))
    scores = max(len(distinct), 1)
    evaluators = int(evaluator.max()) + 1 if len(evaluator) else 1
    if float(units) * width * scores * evaluators >= 2.0**62:
        return np.lexsort((evaluator, score, indicator, unit))
    key = (unit * width + indicator) * scores
    key += rank_of[np.asarray(codes, dtype=np.int64)]
    key *= evaluators
    key += evaluator
    return np.argsort(key)


def _groups_of(core: _EvaluatorCore, rows: IntArray | None) -> IntArray:
    """The groups (unit × indicator runs) of the units at `rows` (positions in the unit list),
    all of them for None; in order."""
    if rows is None:
        return np.arange(len(core.first), dtype=np.int64)
    group_unit = core.unit[core.first]
    return np.flatnonzero(np.isin(group_unit, rows)).astype(np.int64)


def _detail_frame(parts: _Parts | None, rows: IntArray | None) -> pd.DataFrame:
    """evaluator_detail (EVALUATOR_DETAIL_COLUMNS) of the units at `rows` (None: all)."""
    if parts is None:
        return _empty_frame(EVALUATOR_DETAIL_COLUMNS)
    core = parts.core
    groups = _groups_of(core, rows)
    texts = _group_texts(parts, groups)
    return pd.DataFrame(
        {
            "unit": _taken(texts.unit, parts.units),
            "block": _taken(texts.indicator, parts.blocks),
            "indicator": _taken(texts.indicator, parts.names),
            "points_max": texts.points_max,
            "evaluators": texts.sizes,
            "method": texts.method,
            "aggregate": texts.aggregate,
            "low": texts.low,
            "high": texts.high,
            "score_range": texts.score_range,
            "is_disputed": texts.disputed,
            "trimmed_low_evaluator": _text_column(texts.low_evaluator),
            "trimmed_high_evaluator": _text_column(texts.high_evaluator),
            "scores_text": _text_column(texts.scores_text),
        }
    )[EVALUATOR_DETAIL_COLUMNS]


@dataclass(frozen=True)
class _GroupTexts:
    """Per group (unit × evaluator indicator) what the detail and the sentence show."""

    unit: IntArray
    indicator: IntArray
    points_max: FloatArray
    sizes: IntArray
    trims: npt.NDArray[np.bool_]
    method: np.ndarray
    aggregate: FloatArray
    low: FloatArray
    high: FloatArray
    score_range: FloatArray
    disputed: npt.NDArray[np.bool_]
    low_evaluator: np.ndarray
    high_evaluator: np.ndarray
    scores_text: np.ndarray


def _group_texts(parts: _Parts, groups: IntArray) -> _GroupTexts:
    core = parts.core
    first, sizes = core.first[groups], core.sizes[groups]
    last = first + sizes - 1
    trims = core.runs.trims[groups]
    indicator = core.indicator[first].astype(np.int64)
    low, high = core.score[first], core.score[last]
    return _GroupTexts(
        unit=core.unit[first].astype(np.int64),
        indicator=indicator,
        points_max=parts.points[indicator],
        trims=trims,
        sizes=sizes,
        method=np.where(trims, "去掉一个最高分和一个最低分后平均", "平均"),
        aggregate=core.runs.aggregate[groups],
        low=low,
        high=high,
        score_range=high - low,
        disputed=core.runs.disputed[groups],
        low_evaluator=np.where(trims, core.evaluator_names[core.evaluator[first]], ""),
        high_evaluator=np.where(trims, core.evaluator_names[core.evaluator[last]], ""),
        scores_text=_run_texts(core, first, sizes),
    )


def _scores_frame(parts: _Parts | None) -> pd.DataFrame:
    """evaluator_scores (EVALUATOR_SCORE_COLUMNS), by unit, indicator, evaluator."""
    if parts is None:
        return _empty_frame(EVALUATOR_SCORE_COLUMNS)
    core = parts.core
    used = np.lexsort((core.evaluator, core.indicator, core.unit))
    return pd.DataFrame(
        {
            "unit": _taken(core.unit[used], parts.units),
            "indicator": _taken(core.indicator[used], parts.names),
            "evaluator": _taken(core.evaluator[used], core.evaluator_names),
            "score": core.score[used],
            "is_trimmed": core.runs.is_trimmed[used],
        }
    )


_FRAME_KINDS = {
    "points_max": float, "evaluators": "int64", "aggregate": float, "low": float,
    "high": float, "score_range": float, "is_disputed": bool, "score": float,
    "is_trimmed": bool, "value": float, "n": "int64", "floor": float, "target": float,
    "share": float, "points": float, "is_missing": bool,
}  # fmt: skip


def _empty_frame(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {c: pd.Series(dtype=_FRAME_KINDS.get(c, "str")) for c in columns}  # type: ignore[call-overload]
    )


def _run_texts(core: _EvaluatorCore, first: IntArray, sizes: IntArray) -> np.ndarray:
    """Per run (first row, size), its scores as "3、（2.5）、4" (trimmed ones in brackets):
    every score's text once, all joined into one string, each run's text a slice of it."""
    total = int(sizes.sum())
    if total == 0:
        return np.zeros(len(first), dtype=object) if len(first) == 0 else np.full(
            len(first), "", dtype=object
        )
    offsets = np.cumsum(np.r_[0, sizes[:-1]])
    rows = np.repeat(first - offsets, sizes) + np.arange(total)
    plain = _formatted(core.score[rows], "g")
    texts = np.where(core.runs.is_trimmed[rows], "（" + plain + "）", plain)
    lengths = np.fromiter((len(text) for text in texts.tolist()), dtype=np.int64, count=total)
    begins = np.r_[0, np.cumsum(lengths + 1)[:-1]]  # each text and the 、 after it
    whole = "、".join(texts.tolist())
    lasts = offsets + sizes - 1
    ends = begins[lasts] + lengths[lasts]
    return np.array(
        [whole[a:b] for a, b in zip(begins[offsets].tolist(), ends.tolist(), strict=True)],
        dtype=object,
    )


def _evaluator_sentences(texts: _GroupTexts) -> np.ndarray:
    """Per unit × indicator, e.g. "5 位评委，去掉最高 4（评委-B）与最低 2（评委-A）后平均
    3.00/5；评分 （2）、3、3、3、（4）；评委分歧（极差 2）"."""
    if len(texts.sizes) == 0:
        return np.zeros(0, dtype=object)
    trims = texts.trims
    mean = _formatted(texts.aggregate, ".2f") + "/" + _formatted(texts.points_max, "g")
    trimmed = _joined(
        [
            "，去掉最高 " + _formatted(texts.high, "g"),
            "（" + np.asarray(texts.high_evaluator, dtype=object) + "）与最低 ",
            _formatted(texts.low, "g"),
            "（" + np.asarray(texts.low_evaluator, dtype=object) + "）后平均 " + mean,
        ],
        trims,
    )
    plain = np.where(trims, "", "平均 " + mean)
    split = _joined(["；评委分歧（极差 ", _formatted(texts.score_range, "g"), "）"], texts.disputed)
    head = _formatted(texts.sizes, "d") + " 位评委"
    return _joined([head, plain, trimmed, "；评分 " + texts.scores_text, split])


def _metric_indicators(config: Config) -> list[tuple[Indicator, str]]:
    found = []
    for indicator in config.indicators:
        column = METRIC_COLUMNS.get((indicator.source, indicator.metric or ""))
        if column is not None:
            found.append((indicator, column))
    return found


def _metric_values(metrics: pd.DataFrame, units: list[str]) -> pd.DataFrame:
    """Per unit (index, in `units` order): the metric columns, numbers as numbers."""
    frame = metrics.copy()
    frame["unit"] = _text_column(_as_text(frame["unit"]))
    duplicated = sorted(set(frame.loc[frame["unit"].duplicated(), "unit"]))
    if duplicated:
        raise ValueError(f"metrics 中同一单位有多行：{'、'.join(duplicated)}")
    frame = frame.set_index("unit").reindex(units)
    for column in (*RATE_COLUMNS, "households"):
        frame[column] = _numbers(frame, column)
    for column in ("callback_n", "survey_n", "survey_respondents"):
        frame[column] = _numbers(frame, column).fillna(0).astype("int64")
    if "parent" not in frame.columns:
        frame["parent"] = None
    return frame


def _metric_sentences(frame: pd.DataFrame, config: Config) -> dict[str, np.ndarray]:
    """Per metric indicator, per row of `frame` (metric values), where its value came from,
    e.g. "响应率 0.962（n=412 次回访）"; "无数据" where there is none."""
    evidence: dict[str, np.ndarray] = {}
    for indicator, column in _metric_indicators(config):
        values = frame[column].to_numpy(float)
        if len(values) == 0:
            evidence[indicator.name] = np.zeros(0, dtype=object)
            continue
        n = _formatted(frame[METRIC_N_COLUMNS[column]].to_numpy(np.int64), "d")
        suffix = _roll_up_suffix(frame, column)
        value = f"{indicator.name} " + _formatted(values, ".3f")
        parts: list[np.ndarray | str]
        if column == "survey_satisfaction_rate":
            respondents = _formatted(frame["survey_respondents"].to_numpy(np.int64), "d")
            parts = [value, "（", respondents, " 人作答，n=", n, " 份有效答案", suffix, "）"]
        else:
            parts = [value, "（n=", n, " 次回访", suffix, "）"]
        evidence[indicator.name] = np.where(np.isnan(values), "无数据", _joined(parts)).astype(
            object
        )
    return evidence


def _numbers(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame.columns:
        return pd.Series(np.nan, index=frame.index, dtype=float)
    return pd.to_numeric(frame[column], errors="coerce").astype(float)


def _roll_up_suffix(frame: pd.DataFrame, column: str) -> np.ndarray:
    """Per unit "；3 个小区按户数加权" where the rate is a roll-up, else ""."""
    counts, ways = f"{column}_compounds", f"{column}_weighting"
    if counts not in frame.columns:
        return np.full(len(frame), "", dtype=object)
    number = pd.to_numeric(frame[counts], errors="coerce").to_numpy(float)
    way = frame[ways] if ways in frame.columns else pd.Series([""] * len(frame), dtype=object)
    codes, distinct = pd.factorize(way.to_numpy(object), use_na_sentinel=False)
    truthy = np.array([bool(w) for w in distinct.tolist()], dtype=bool)[codes]
    texts = np.array([str(w) for w in distinct.tolist()], dtype=object)[codes]
    known = ~np.isnan(number)
    whole = np.zeros(len(number), dtype=np.int64)
    whole[known] = number[known].astype(np.int64)  # int(count), as before
    shown = known & (whole != 0) & truthy
    if not shown.any():
        return np.full(len(frame), "", dtype=object)
    return _joined(["；" + _formatted(whole, "d"), " 个小区", texts], shown)


def _shares(
    units: list[str],
    config: Config,
    evaluator_shares: FloatArray,
    metric_values: pd.DataFrame,
) -> pd.DataFrame:
    metric_columns = dict(_metric_indicators(config))
    columns: dict[str, FloatArray] = {}
    for j, indicator in enumerate(config.indicators):
        if indicator.source == "evaluator":
            columns[indicator.name] = evaluator_shares[:, j]
        elif indicator in metric_columns:
            assert indicator.floor is not None and indicator.target is not None
            values = metric_values[metric_columns[indicator]].to_numpy(float)
            columns[indicator.name] = indicator_points(
                values, indicator.floor, indicator.target, 1.0
            )
        else:
            columns[indicator.name] = np.full(len(units), np.nan)
    return pd.DataFrame(columns, index=pd.Index(units, name="unit"), dtype=float)


def _listed_names(flags: npt.NDArray[np.bool_], names: list[str]) -> np.ndarray:
    """Per row "a、b" of the names whose column is True (in column order)."""
    text = np.full(flags.shape[0], "", dtype=object)
    for j, name in enumerate(names):
        column = flags[:, j]
        if column.any():
            text = np.where(column, np.where(text == "", name, text + ("、" + name)), text)
    return np.asarray(text, dtype=object)


def _unit_facts(
    units: list[str],
    inputs: EvaluationInput,
    config: Config,
    shares: pd.DataFrame,
    disputed_matrix: npt.NDArray[np.bool_],
    metric_values: pd.DataFrame,
) -> pd.DataFrame:
    facts = pd.DataFrame(index=pd.Index(units, name="unit"))
    facts["parent"] = (
        metric_values["parent"].astype(object).where(metric_values["parent"].notna(), None)
    )
    facts["households"] = metric_values["households"].to_numpy(float)
    bonus, penalty, is_veto, note = _adjustment_columns(inputs.adjustments, config, units)
    facts["bonus"] = bonus
    facts["penalty"] = penalty
    facts["is_veto"] = is_veto
    facts["adjustment_note"] = note
    has_survey = any(i.source == "survey" for i in config.indicators)
    respondents = metric_values["survey_respondents"].to_numpy()
    facts["survey_respondents"] = respondents.astype("int64")
    is_small = (respondents < config.min_sample) & has_survey
    facts["is_small_sample"] = is_small
    names = list(shares.columns)
    missing = _listed_names(shares.isna().to_numpy(bool), names)
    facts["missing_indicators"] = _text_column(missing)
    disputed = _listed_names(disputed_matrix, names)
    facts["disputed_indicators"] = pd.Series(disputed, index=facts.index, dtype=object)
    facts["is_disputed"] = disputed != ""
    is_veto = facts["is_veto"].to_numpy(bool)
    veto = np.where(is_veto, VETO, "").astype(object)
    small = _joined(
        [
            f"{SMALL_SAMPLE}（问卷 ",
            _formatted(facts["survey_respondents"].to_numpy(np.int64), "d"),
            f" 人，少于 {config.min_sample} 人）",
        ],
        np.asarray(is_small, dtype=bool),
    ) if len(units) else np.zeros(0, dtype=object)  # fmt: skip
    absent = np.where(missing != "", f"{MISSING}：" + missing, "").astype(object)
    reasons = veto
    for part in (small, absent):
        reasons = np.where(part == "", reasons, np.where(reasons == "", part, reasons + "；" + part))
    facts["ineligible_reason"] = _text_column(np.asarray(reasons, dtype=object))
    facts["is_eligible"] = facts["ineligible_reason"] == ""
    return facts


def _adjustment_columns(
    adjustments: pd.DataFrame, config: Config, units: list[str]
) -> tuple[FloatArray, FloatArray, npt.NDArray[np.bool_], pd.Series]:
    """Per unit of `units`: bonus, penalty (0 where none), is_veto and the adjustment note."""
    per_unit = _adjustments_per_unit(adjustments, config).reindex(units)
    return (
        per_unit["bonus"].fillna(0.0).to_numpy(float),
        per_unit["penalty"].fillna(0.0).to_numpy(float),
        per_unit["is_veto"].fillna(False).to_numpy(bool),
        per_unit["adjustment_note"].fillna("").astype(object),
    )


def _adjustments_per_unit(adjustments: pd.DataFrame, config: Config) -> pd.DataFrame:
    """Per unit: bonus (mean of recorded values, capped), penalty, is_veto, adjustment_note."""
    frame = adjustments[ADJUSTMENT_COLUMNS].copy()
    frame["unit"] = frame["unit"].astype(object).map(str)
    frame["bonus"] = pd.to_numeric(frame["bonus"], errors="coerce").astype(float)
    frame["penalty"] = pd.to_numeric(frame["penalty"], errors="coerce").astype(float)
    frame["is_veto"] = frame["is_veto"].astype("boolean").fillna(False).astype(bool)
    # Per unit (sorted by name, rows in their order), on plain arrays: the sums, counts and
    # distinct values of every unit at once (numpy per unit costs ~70 µs, a city's thousands
    # of units a fifth of a second); Python only writes each unit's sentence.
    names = frame["unit"].to_numpy(object)
    order = np.argsort(names, kind="stable")
    names = names[order]
    evaluators = frame["evaluator"].to_numpy(object)[order]
    remarks = frame["note"].to_numpy(object)[order]
    vetoes = frame["is_veto"].to_numpy(bool)[order]
    starts = ends = np.zeros(0, dtype=np.int64)
    if len(names):
        starts = np.flatnonzero(np.r_[True, names[1:] != names[:-1]]).astype(np.int64)
        ends = np.r_[starts[1:], len(names)].astype(np.int64)
    group = np.repeat(np.arange(len(starts), dtype=np.int64), ends - starts)
    bonuses = frame["bonus"].to_numpy(float)[order]
    penalties = frame["penalty"].to_numpy(float)[order]
    bonus_mean, bonus_distinct = _recorded_means(bonuses, group)
    penalty_mean, penalty_distinct = _recorded_means(penalties, group)
    has_veto = np.bincount(group[vetoes], minlength=len(starts)) > 0
    remarked = np.bincount(group[~pd.isna(remarks)], minlength=len(starts)) > 0
    rows = []
    for index, (first, last) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
        unit = names[first]
        recorded_bonus = bonus_mean[index]
        bonus = min(recorded_bonus, config.max_bonus)
        penalty = penalty_mean[index]
        is_veto = bool(has_veto[index])
        parts = []
        if recorded_bonus:
            part = f"加分 {bonus:g}"
            if recorded_bonus > config.max_bonus:
                part += f"（记录 {recorded_bonus:g}，上限 {config.max_bonus:g}）"
            if bonus_distinct[index] > 1:
                values = _distinct_values(bonuses[first:last])
                part += f"（各评委记录不一：{'、'.join(f'{v:g}' for v in values)}，取平均）"
            parts.append(part)
        if penalty:
            part = f"扣分 {penalty:g}"
            if penalty_distinct[index] > 1:
                values = _distinct_values(penalties[first:last])
                part += f"（各评委记录不一：{'、'.join(f'{v:g}' for v in values)}，取平均）"
            parts.append(part)
        if is_veto:
            vetoers = evaluators[first:last][vetoes[first:last]]
            parts.append(f"{VETO}（{'、'.join(sorted({str(e) for e in vetoers}))}）")
        if remarked[index]:
            notes = sorted(
                {str(n) for n in remarks[first:last] if not _missing(n) and str(n).strip()}
            )
            if notes:
                parts.append("备注：" + "；".join(notes))
        rows.append((unit, bonus, penalty, is_veto, "；".join(parts)))
    return pd.DataFrame(
        rows, columns=["unit", "bonus", "penalty", "is_veto", "adjustment_note"]
    ).set_index("unit")


def _recorded_means(values: FloatArray, group: IntArray) -> tuple[list[float], IntArray]:
    """Per group (`group`: each row's, ascending, 0…n−1 all present): the mean of the values
    recorded (not NaN), summed by ndarray.sum as before (its pairwise order is not
    reduceat's), 0.0 where none; and how many distinct values were recorded (as np.unique
    counts them)."""
    count = int(group[-1]) + 1 if len(group) else 0
    given = ~np.isnan(values)
    kept, kept_group = values[given], group[given]
    counts = np.bincount(kept_group, minlength=count)
    bounds = np.r_[0, np.cumsum(counts)].tolist()
    means = [
        float(kept[bounds[g] : bounds[g + 1]].sum() / number) if number else 0.0
        for g, number in enumerate(counts.tolist())
    ]
    by_value = np.lexsort((kept, kept_group))
    ordered, ordered_group = kept[by_value], kept_group[by_value]
    new = np.ones(len(ordered), dtype=bool)
    if len(ordered):
        new[1:] = (ordered_group[1:] != ordered_group[:-1]) | (ordered[1:] != ordered[:-1])
    distinct = np.bincount(ordered_group[new], minlength=count).astype(np.int64)
    return means, distinct


def _distinct_values(values: FloatArray) -> list[float]:
    """The distinct recorded (not NaN) values, ascending."""
    return sorted(np.unique(values[~np.isnan(values)]))


def _missing(value: Any) -> bool:
    """What Series.dropna drops: None, NaN, NA, NaT."""
    return value is None or bool(pd.isna(value))


EVIDENCE_COLUMNS = [
    "unit", "block", "indicator", "source", "value", "n", "floor", "target", "share", "evidence",
]  # fmt: skip


def _evidence_frame(
    parts: _Parts | None, config: Config, shares: pd.DataFrame, rows: IntArray | None
) -> pd.DataFrame:
    """Long per indicator × unit (indicator by indicator, units in order) for the units at
    `rows` (None: all): block, source, value (a rate, or the evaluators' aggregate on their
    scale), n (callbacks, survey answers or evaluators), share and evidence."""
    if parts is None:
        return _empty_frame(EVIDENCE_COLUMNS)
    core = parts.core
    chosen = np.arange(len(parts.units), dtype=np.int64) if rows is None else rows
    count = len(chosen)
    width = len(config.indicators)
    texts = _group_texts(parts, _groups_of(core, rows))
    said = np.full((count, width), "无评委评分", dtype=object)
    said[np.searchsorted(chosen, texts.unit), texts.indicator] = _evaluator_sentences(texts)
    metric_values = parts.metric_values.iloc[chosen]
    metric_text = _metric_sentences(metric_values, config)
    metric_columns = dict(_metric_indicators(config))
    values: list[FloatArray] = []
    counts: list[IntArray] = []
    sentences: list[np.ndarray] = []
    for j, indicator in enumerate(config.indicators):
        if indicator.source == "evaluator":
            values.append(core.runs.aggregates[chosen, j])
            counts.append(core.runs.evaluators[chosen, j])
            sentences.append(said[:, j])
            continue
        sentences.append(np.asarray(metric_text[indicator.name], dtype=object))
        column = metric_columns.get(indicator)
        if column is None:
            values.append(np.full(count, np.nan))
            counts.append(np.zeros(count, dtype=np.int64))
        else:
            values.append(metric_values[column].to_numpy(float))
            counts.append(metric_values[METRIC_N_COLUMNS[column]].to_numpy(np.int64))
    indicator_index = np.repeat(np.arange(width, dtype=np.int64), count)
    floors = np.array(
        [math.nan if i.floor is None else i.floor for i in config.indicators], dtype=float
    )
    targets = np.array(
        [math.nan if i.target is None else i.target for i in config.indicators], dtype=float
    )
    sources = np.array([i.source for i in config.indicators], dtype=object)
    return pd.DataFrame(
        {
            "unit": _taken(np.tile(chosen, width), parts.units),
            "block": _taken(indicator_index, parts.blocks),
            "indicator": _taken(indicator_index, parts.names),
            "source": _taken(indicator_index, sources),
            "value": np.concatenate(values) if values else np.zeros(0),
            "n": np.concatenate(counts).astype("int64") if counts else np.zeros(0, np.int64),
            "floor": floors[indicator_index],
            "target": targets[indicator_index],
            "share": shares[list(parts.names)].to_numpy(float)[chosen].T.ravel(),
            "evidence": _text_column(
                np.concatenate(sentences) if sentences else np.zeros(0, object)
            ),
        }
    )


def _finish(
    config: Config,
    weights: dict[str, float],
    shares: pd.DataFrame,
    facts: pd.DataFrame,
) -> pd.DataFrame:
    """Weighting, totals, grades, ranks, tie-break and awards (eligibility is in `facts`).

    Works on arrays and builds the table once: the page's sliders call this on every move.
    """
    names = indicator_names(config)
    bonus = facts["bonus"].to_numpy(float)
    penalty = facts["penalty"].to_numpy(float)
    points, filled, total = _points_and_total(config, weights, shares, bonus, penalty)
    columns: dict[str, Any] = {
        "unit": shares.index.to_numpy(object),
        "parent": facts["parent"].to_numpy(object),
        "households": facts["households"].to_numpy(float),
    }
    for j, name in enumerate(names):
        columns[name] = points[:, j]
    for block in block_names(config):
        members = [j for j, i in enumerate(config.indicators) if i.block == block]
        columns[block_column(block)] = filled[:, members].sum(axis=1)
    is_veto = facts["is_veto"].to_numpy(bool)
    columns.update(
        {
            "bonus": bonus,
            "penalty": penalty,
            "total": total,
            "is_veto": is_veto,
            "grade": _grades(total, is_veto, config),
            "rank": _min_ranks(total)[0],
        }
    )
    for column in (
        "is_eligible",
        "ineligible_reason",
        "missing_indicators",
        "survey_respondents",
        "is_small_sample",
        "is_disputed",
        "disputed_indicators",
        "adjustment_note",
    ):
        columns[column] = facts[column].to_numpy()
    keys = _sort_keys(config)
    # Units arrive sorted by name, so their index is the last (name) key of the order.
    key_values = [np.round(np.asarray(columns[key], dtype=float), TOTAL_DECIMALS) for key in keys]
    order = np.lexsort([np.arange(len(total)), *[-v for v in reversed(key_values)]])
    table = pd.DataFrame({name: np.asarray(values)[order] for name, values in columns.items()})
    table["position"] = np.arange(1, len(table) + 1, dtype="int64")
    # One note per tie, the same string object for every unit in it (an object column, not
    # copied per unit: a city's tie of 300 compounds has a note of 9,000 characters).
    table["tie_note"] = pd.Series(_tie_notes(table, config, keys), index=table.index, dtype=object)
    table["award"] = _awards(table, config, keys)
    return table[table_columns(config)]


def _points_and_total(
    config: Config,
    weights: dict[str, float],
    shares: pd.DataFrame,
    bonus: FloatArray,
    penalty: FloatArray,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per unit × indicator the points (NaN where missing) and the same with 0 for NaN; per
    unit the total (Σ points + bonus − penalty)."""
    names = indicator_names(config)
    weight = np.array([weights[name] for name in names], dtype=float)
    points = shares[names].to_numpy(float) * weight
    filled = np.nan_to_num(points, nan=0.0)
    return points, filled, filled.sum(axis=1) + bonus - penalty


def _sort_keys(config: Config) -> list[str]:
    """What orders units: the total, then the tie-break blocks' subtotals."""
    return ["total", *[block_column(block) for block in config.tie_break]]


def _key_values(table: pd.DataFrame, keys: list[str]) -> list[FloatArray]:
    return [np.round(table[key].to_numpy(float), TOTAL_DECIMALS) for key in keys]


def _key_matrix(table: pd.DataFrame, keys: list[str]) -> FloatArray:
    if len(table) == 0:
        return np.empty((0, len(keys)))
    return np.column_stack(_key_values(table, keys))


def _grade(total: float, is_veto: bool, config: Config) -> str:
    if is_veto:
        return NOT_PASSED
    rounded = round(float(total), TOTAL_DECIMALS)
    for name, cut in config.grades.items():
        if rounded >= cut:
            return name
    return NOT_PASSED


def _grades(total: FloatArray, is_veto: npt.NDArray[np.bool_], config: Config) -> list[str]:
    """`_grade` of every unit: compared on arrays where the total lies over 1e-6 from every
    cut-off (rounding to TOTAL_DECIMALS moves it by at most 5e-7, so the comparison is the
    same), by `_grade` itself for the rest (and for totals that are not finite)."""
    grades = np.full(len(total), NOT_PASSED, dtype=object)
    undecided = ~np.asarray(is_veto, dtype=bool)
    near = ~np.isfinite(total)
    for cut in config.grades.values():
        near |= np.abs(total - float(cut)) <= 1e-6
    for name, cut in config.grades.items():
        passed = undecided & ~near & (total >= float(cut))
        grades[passed] = name
        undecided &= ~passed
    for i in np.flatnonzero(near).tolist():
        grades[i] = _grade(float(total[i]), bool(is_veto[i]), config)
    return grades.tolist()


def _min_ranks(values: npt.ArrayLike) -> IntArray:
    """Per row, rank 1 = highest; equal values (at TOTAL_DECIMALS) share the smallest rank
    (1, 2, 2, 4). Sorting, not pairwise comparison, so many draws × units stay cheap."""
    return _ranks_and_pool_positions(values, None)[0].astype(np.int64)


def _ranks_and_pool_positions(
    values: npt.ArrayLike, pool: IntArray | None
) -> tuple[npt.NDArray[np.integer], npt.NDArray[np.integer] | None]:
    """`_min_ranks` of every row, and (pool given: column indices) the same ranks of the pool's
    columns among themselves.

    Each value (rounded to TOTAL_DECIMALS, as an integer count of 10⁻⁶) and its column index
    are packed into one int64, so a plain row-wise np.sort (vectorised, no argsort) orders the
    values highest first with their columns, and a tie run's rank is its first position.
    Where the values are not finite or too spread to pack, the same ranks come from argsort."""
    matrix = np.atleast_2d(np.asarray(values, dtype=float))
    rows, width = matrix.shape
    if width == 0:
        empty = np.zeros(matrix.shape, dtype=np.int64)
        return empty, (None if pool is None else np.zeros((rows, len(pool)), dtype=np.int64))
    # np.round(x, d) is rint(x × 10^d) ÷ 10^d: equal rounded values ⇔ equal rint(x × 10^d).
    scale = 10.0**TOTAL_DECIMALS
    top, bottom = float(np.rint(matrix.max() * scale)), float(np.rint(matrix.min() * scale))
    bits = max(int(width).bit_length(), 1)
    spread = top - bottom if math.isfinite(top) and math.isfinite(bottom) else math.inf
    if not spread < 2.0 ** min(62 - bits, 52):  # NaN, ±inf, or too spread to pack
        return _ranks_by_argsort(matrix, pool)
    ranks = np.empty((rows, width), dtype=np.int32)  # (a city's units fit in 32 bits)
    chosen = None if pool is None else np.asarray(pool, dtype=np.int64)
    positions = None if chosen is None else np.empty((rows, len(chosen)), dtype=np.int32)
    # A block of draws at a time: its temporaries stay in cache and are reused.
    for start in range(0, rows, RANK_BLOCK_ROWS):
        block = slice(start, min(start + RANK_BLOCK_ROWS, rows))
        counts = matrix[block] * scale
        np.rint(counts, out=counts)
        np.subtract(top, counts, out=counts)  # ≥ 0, highest value first
        ranks[block] = _packed_ranks(counts, bits)
        if positions is not None and chosen is not None:
            positions[block] = _packed_ranks(counts[:, chosen], bits)
    return ranks, positions


RANK_BLOCK_ROWS = 64


def _packed_ranks(counts: FloatArray, bits: int) -> npt.NDArray[np.int32]:
    """Min ranks (1 = the smallest count) along each row of non-negative whole numbers held as
    floats, each packed with its column index (`bits` wide) into one int64 and sorted."""
    rows, width = counts.shape
    packed = counts.astype(np.int64)
    packed <<= bits
    packed |= np.arange(width, dtype=np.int64)
    packed.sort(axis=1)
    columns = (packed & ((1 << bits) - 1)).astype(np.int32)
    packed >>= bits  # the values in order
    starts = np.ones(packed.shape, dtype=bool)
    np.not_equal(packed[:, 1:], packed[:, :-1], out=starts[:, 1:])
    del packed
    first = np.multiply(starts, np.arange(1, width + 1, dtype=np.int32))  # 1-based
    del starts
    np.maximum.accumulate(first, axis=1, out=first)  # each tie run's start
    ranks = np.empty((rows, width), dtype=np.int32)  # (a city's units fit in 32 bits)
    np.put_along_axis(ranks, columns, first, axis=1)
    return ranks


def _ranks_by_argsort(
    matrix: FloatArray, pool: IntArray | None
) -> tuple[IntArray, IntArray | None]:
    """`_ranks_and_pool_positions` for values that cannot be packed (NaN, ±inf, huge spread)."""

    def ranked(values: FloatArray) -> IntArray:
        rounded = np.round(values, TOTAL_DECIMALS)
        if rounded.shape[1] == 0:
            return np.zeros(rounded.shape, dtype=np.int64)
        order = np.argsort(-rounded, axis=1, kind="stable")
        ordered = np.take_along_axis(rounded, order, axis=1)
        starts = np.ones(rounded.shape, dtype=bool)
        starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
        index = np.broadcast_to(np.arange(rounded.shape[1]), rounded.shape)
        first = np.maximum.accumulate(np.where(starts, index, 0), axis=1)
        ranks = np.empty(rounded.shape, dtype=np.int64)
        np.put_along_axis(ranks, order, first + 1, axis=1)
        return ranks

    return ranked(matrix), None if pool is None else ranked(matrix[:, pool])


def _tie_notes(table: pd.DataFrame, config: Config, keys: list[str]) -> list[str]:
    """For units sharing a total: how the tie-break blocks ordered them (in position order)."""
    values = _key_matrix(table, keys)
    notes = [""] * len(table)
    if len(table) < 2:
        return notes
    units = table["unit"].tolist()
    ranks = table["rank"].tolist()
    # Runs of equal totals (the table is in position order); only ties need words.
    same = values[1:, 0] == values[:-1, 0]
    begins = np.flatnonzero(np.r_[True, ~same])
    ends = np.r_[begins[1:], len(table)] - 1
    tied = ends > begins
    if not tied.any():
        return notes
    # Python floats, not numpy scalars: a city's ties are thousands of pairs.
    rows = values.tolist()
    for start, end in zip(begins[tied].tolist(), ends[tied].tolist(), strict=True):
        if end > start:
            steps = []
            for a in range(start, end):
                b = a + 1
                first, second = rows[a], rows[b]
                decided = next((k for k in range(1, len(keys)) if first[k] != second[k]), None)
                if decided is None:
                    steps.append(
                        f"{units[a]} 与 {units[b]} 各比较板块亦相同，完全并列（按名称列出）"
                    )
                else:
                    steps.append(
                        f"{units[a]} 先于 {units[b]}（{keys[decided]} {first[decided]:.2f} > "
                        f"{second[decided]:.2f}）"
                    )
            order_text = "、".join(config.tie_break) or "（未配置比较板块）"
            note = (
                f"总分 {rows[start][0]:.2f} 并列第 {ranks[start]} 名，"
                f"依次比较 {order_text} 小计：" + "；".join(steps)
            )
            for i in range(start, end + 1):
                notes[i] = note
    return notes


def award_counts(pool_size: int, config: Config) -> dict[str, int]:
    """How many units of an award pool of `pool_size` get each award (rule: module docstring).

    With the default shares: 1 → 1/0/0, 3 → 1/0/1, 4 → 1/0/1, 10 → 1/2/3, 25 → 3/5/7.
    """
    counts: dict[str, int] = {}
    previous = 0
    cumulative = 0.0
    for index, (name, share) in enumerate(config.awards.items()):
        cumulative += share
        end = math.floor(round(pool_size * cumulative, 9) + 0.5)
        if index == 0 and pool_size > 0 and share > 0:
            end = max(end, 1)
        end = min(max(end, previous), pool_size)
        counts[name] = end - previous
        previous = end
    return counts


def _tier_ends(pool_size: int, config: Config) -> IntArray:
    """Last pool position of each award tier (cumulative counts)."""
    counts = list(award_counts(pool_size, config).values())
    return np.cumsum(np.array(counts, dtype=np.int64))


def _tiers_of_positions(positions: npt.ArrayLike, ends: IntArray) -> IntArray:
    """Award tier index of 1-based pool positions; len(ends) means no award."""
    return np.searchsorted(ends, np.asarray(positions), side="left").astype(np.int64)


def _in_award_pool(table: pd.DataFrame, config: Config) -> npt.NDArray[np.bool_]:
    return (table["is_eligible"] & table["grade"].isin(award_grades(config))).to_numpy(bool)


def _awards(table: pd.DataFrame, config: Config, keys: list[str]) -> list[str]:
    """Awards by position within the pool; fully tied units share the best award of them."""
    names = list(config.awards)
    pool_index = np.flatnonzero(_in_award_pool(table, config))
    ends = _tier_ends(len(pool_index), config)
    tiers = _tiers_of_positions(np.arange(1, len(pool_index) + 1), ends)
    values = _key_matrix(table, keys)
    best_of_key: dict[tuple[float, ...], int] = {}
    for i, tier in zip(pool_index, tiers, strict=True):
        key = tuple(values[i].tolist())
        best_of_key[key] = min(best_of_key.get(key, len(names)), int(tier))
    awards = [""] * len(table)
    for i in pool_index:
        tier = best_of_key[tuple(values[i].tolist())]
        awards[i] = names[tier] if tier < len(names) else ""
    return awards


def _breakdown(
    evidence: pd.DataFrame, table: pd.DataFrame, weights: dict[str, float]
) -> pd.DataFrame:
    """The evidence with this weighting's points and a sentence ending in them."""
    codes, names = pd.factorize(evidence["indicator"])
    weight_of = np.array([weights[name] for name in np.asarray(names, dtype=object)], dtype=float)
    points_max = weight_of[codes] if len(codes) else np.zeros(0)
    share = evidence["share"].to_numpy(float)
    points = share * points_max
    is_missing = np.isnan(share)
    text = evidence["evidence"].to_numpy(object)
    source = evidence["source"].to_numpy(object)
    explanation = np.empty(len(evidence), dtype=object)
    top = _formatted(points_max, "g")
    got = _formatted(points, ".2f")
    missing = is_missing
    scored = ~missing & (source == "evaluator")
    metric = ~missing & ~scored
    explanation[missing] = text[missing] + " → 0/" + top[missing] + f" 分（{MISSING}）"
    explanation[scored] = _joined([text[scored], " → ", got[scored], "/", top[scored], " 分"])
    if metric.any():
        floor = _formatted(evidence["floor"].to_numpy(float)[metric], "g")
        target = _formatted(evidence["target"].to_numpy(float)[metric], "g")
        formula = _joined([" × clamp((x − ", floor, ") ÷ (", target, " − ", floor, "), 0, 1)"])
        explanation[metric] = _joined(
            [text[metric], " → ", top[metric], formula, " = ", got[metric], " 分"]
        )
    rows = pd.Index(table["unit"]).get_indexer(evidence["unit"])
    order = np.argsort(table["position"].to_numpy(np.int64)[rows], kind="stable")
    frame = evidence.assign(
        points_max=points_max,
        points=points,
        is_missing=is_missing,
        explanation=_text_column(explanation),
    )
    return frame.take(order)[BREAKDOWN_COLUMNS].reset_index(drop=True)


# --- levels ---------------------------------------------------------------------------------


def roll_up_metrics(compound_metrics: pd.DataFrame, level: str, config: Config) -> pd.DataFrame:
    """Metric inputs of communities or property companies from their compounds' values.

    compound_metrics: one row per compound with unit (the compound), parent (its community),
    property_company, households and METRIC_INPUT_COLUMNS' rates and counts. Each rate of a
    unit is the household-weighted mean Σ h_c x_c ÷ Σ h_c over its compounds that have the rate
    and a household count (DOMAIN.md §4); where none has a household count, the mean weighted
    by the rate's n. Counts (callback_n, survey_n, survey_respondents, households) are summed;
    `<rate>_compounds` says how many compounds made each rate and `<rate>_weighting` how.
    For level "compound" the rows come back as they are (with those two columns filled).
    """
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    frame = compound_metrics.copy()
    for column in (*RATE_COLUMNS, "households"):
        frame[column] = _numbers(frame, column)
    for column in ("callback_n", "survey_n", "survey_respondents"):
        frame[column] = _numbers(frame, column).fillna(0)
    if level == "compound":
        for column in RATE_COLUMNS:
            frame[f"{column}_compounds"] = frame[column].notna().astype("int64")
            frame[f"{column}_weighting"] = ""
        frame["compounds"] = 1
        for column in ("callback_n", "survey_n", "survey_respondents"):
            frame[column] = frame[column].astype("int64")
        frame["survey_is_small_sample"] = frame["survey_respondents"] < config.min_sample
        return frame.reset_index(drop=True)
    key = "parent" if level == "community" else "property_company"
    frame = frame[frame[key].notna()].copy()
    frame["_unit"] = frame[key].astype(object).map(str)
    household = frame["households"].where(frame["households"] > 0)
    grouped = frame.groupby("_unit", sort=True)
    result = pd.DataFrame(index=pd.Index(sorted(frame["_unit"].unique()), name="unit"))
    has_street = level == "community" and "street" in frame.columns
    result["parent"] = grouped["street"].first().astype(object) if has_street else None
    result["compounds"] = grouped.size().astype("int64")
    known = grouped["households"].count()
    result["households"] = grouped["households"].sum().where(known > 0)
    for column in ("callback_n", "survey_n", "survey_respondents"):
        result[column] = grouped[column].sum().astype("int64")
    for column in RATE_COLUMNS:
        has_value = frame[column].notna()
        by_households = _weighted_mean(frame, column, household.where(has_value))
        n_weight = frame[METRIC_N_COLUMNS[column]].where(
            has_value & (frame[METRIC_N_COLUMNS[column]] > 0)
        )
        by_n = _weighted_mean(frame, column, n_weight)
        use_households = by_households.notna()
        result[column] = by_households.where(use_households, by_n)
        contributing = np.where(
            use_households.reindex(result.index, fill_value=False),
            (has_value & household.notna()).groupby(frame["_unit"]).sum().reindex(result.index),
            (has_value & n_weight.notna()).groupby(frame["_unit"]).sum().reindex(result.index),
        )
        result[f"{column}_compounds"] = np.where(result[column].notna(), contributing, 0).astype(
            "int64"
        )
        result[f"{column}_weighting"] = np.where(
            use_households.reindex(result.index, fill_value=False), "按户数加权", "按样本量加权"
        )
    result["survey_is_small_sample"] = result["survey_respondents"] < config.min_sample
    return result.reset_index()


def _weighted_mean(frame: pd.DataFrame, column: str, weight: pd.Series) -> pd.Series:
    """Σ w x ÷ Σ w per frame["_unit"], NaN where no row has a weight."""
    usable = weight.notna() & frame[column].notna()
    w = weight.where(usable, 0.0)
    numerator = (w * frame[column].fillna(0.0)).groupby(frame["_unit"]).sum()
    denominator = w.groupby(frame["_unit"]).sum()
    return numerator / denominator.where(denominator > 0)


# --- alternatives: entropy weights and TOPSIS -----------------------------------------------


def achievement_matrix(result: EvaluationResult) -> pd.DataFrame:
    """Unit × indicator achievement 0–1 (points ÷ maximum points), missing as 0, in the
    result's position order: the common input of the alternative methods."""
    units = result.table["unit"].tolist()
    return result.shares.reindex(units).fillna(0.0)


def entropy_weights(matrix: pd.DataFrame) -> pd.Series:
    """熵权法: weights of the columns (indicators, higher is better) from how much they vary.

    Each column is min–max normalised, p_ij = x_ij ÷ Σ_i x_ij, e_j = −Σ_i p_ij ln p_ij ÷ ln m
    (0 ln 0 = 0), d_j = 1 − e_j, w_j = d_j ÷ Σ d. A column that does not vary carries no
    information (weight 0); when none varies, the weights are equal.
    """
    values = matrix.to_numpy(float)
    count, width = values.shape
    if width == 0:
        return pd.Series(dtype=float)
    normalised = _min_max(values)
    totals = normalised.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(totals > 0, normalised / np.where(totals > 0, totals, 1.0), 0.0)
        plogp = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    entropy = -plogp.sum(axis=0) / math.log(count) if count > 1 else np.ones(width)
    entropy = np.where(totals > 0, entropy, 1.0)
    diversity = np.clip(1.0 - entropy, 0.0, None)
    total = diversity.sum()
    weights = diversity / total if total > 0 else np.full(width, 1.0 / width)
    return pd.Series(weights, index=matrix.columns, name="entropy_weight")


def _min_max(values: FloatArray) -> FloatArray:
    low = values.min(axis=0) if len(values) else np.zeros(values.shape[1])
    span = (values.max(axis=0) - low) if len(values) else np.zeros(values.shape[1])
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(span > 0, (values - low) / np.where(span > 0, span, 1.0), 0.0)


def entropy_scores(matrix: pd.DataFrame, weights: pd.Series) -> pd.Series:
    """Σ_j w_j × min–max-normalised x_ij per row (0–1)."""
    normalised = _min_max(matrix.to_numpy(float))
    scores = normalised @ weights.reindex(matrix.columns).fillna(0.0).to_numpy(float)
    return pd.Series(scores, index=matrix.index, name="entropy_score")


def topsis(matrix: pd.DataFrame, weights: pd.Series | Mapping[str, float]) -> pd.Series:
    """TOPSIS closeness 0–1 of each row to the ideal (all columns higher-is-better).

    Columns are vector-normalised (x ÷ √Σx²) and multiplied by the weights (normalised to sum
    1); D⁺/D⁻ are Euclidean distances to the column-wise best and worst; closeness =
    D⁻ ÷ (D⁺ + D⁻), 0.5 where a row is as far from both (all rows equal).
    """
    values = matrix.to_numpy(float)
    weight = pd.Series(weights, dtype=float).reindex(matrix.columns).fillna(0.0).to_numpy(float)
    if weight.sum() > 0:
        weight = weight / weight.sum()
    norms = np.sqrt((values**2).sum(axis=0))
    with np.errstate(divide="ignore", invalid="ignore"):
        normalised = np.where(norms > 0, values / np.where(norms > 0, norms, 1.0), 0.0)
    weighted = normalised * weight
    if len(values) == 0:
        return pd.Series(dtype=float, name="topsis_closeness")
    best = weighted.max(axis=0)
    worst = weighted.min(axis=0)
    to_best = np.sqrt(((weighted - best) ** 2).sum(axis=1))
    to_worst = np.sqrt(((weighted - worst) ** 2).sum(axis=1))
    spread = to_best + to_worst
    with np.errstate(divide="ignore", invalid="ignore"):
        closeness = np.where(spread > 0, to_worst / np.where(spread > 0, spread, 1.0), 0.5)
    return pd.Series(closeness, index=matrix.index, name="topsis_closeness")


def average_ranks(values: npt.ArrayLike) -> FloatArray:
    """Ranks 1 = smallest, ties sharing the mean of their ranks (as Spearman's ρ needs)."""
    x = np.asarray(values, dtype=float)
    order = np.argsort(x, kind="stable")
    ordered = x[order]
    starts = np.r_[True, ordered[1:] != ordered[:-1]]
    group = np.cumsum(starts) - 1
    first = np.flatnonzero(starts)
    last = np.r_[first[1:], len(x)] - 1
    mean_rank = (first + last) / 2 + 1
    ranks = np.empty(len(x))
    ranks[order] = mean_rank[group]
    return ranks


def spearman(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """Spearman's ρ (Pearson correlation of average ranks); NaN when either side is constant."""
    x, y = average_ranks(a), average_ranks(b)
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    return float(np.corrcoef(x, y)[0, 1])


def kendall_tau_b(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """Kendall's τ-b (ties corrected); NaN when either side is constant.

    The pair counts come from sorting (O(n log n): a city's 20,000 compounds would need 200
    million pairs written out): concordant − discordant pairs, and the pairs not tied in x and
    in y. Up to PAIRWISE_UNITS units the τ is formed as counting every pair formed it
    (C ÷ √(Tx × Ty)); past it as scipy.stats.kendalltau(variant="b") forms it, so the figures
    are what they were to the last bit. Values that are not finite: every pair counted."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        return _kendall_tau_b_pairwise(x, y)
    difference, pairs, x_ties, y_ties = _kendall_counts(x, y)
    if len(x) > PAIRWISE_UNITS:
        if x_ties == pairs or y_ties == pairs:
            return math.nan
        tau = difference / np.sqrt(pairs - x_ties) / np.sqrt(pairs - y_ties)
        return float(np.minimum(1.0, max(-1.0, tau)))
    return float(difference) / math.sqrt(float(pairs - x_ties) * float(pairs - y_ties))


def _kendall_tau_b_pairwise(x: FloatArray, y: FloatArray) -> float:
    upper = np.triu_indices(len(x), k=1)
    dx = np.sign(x[:, None] - x[None, :])[upper]
    dy = np.sign(y[:, None] - y[None, :])[upper]
    concordance = float((dx * dy).sum())
    untied_x, untied_y = float(np.count_nonzero(dx)), float(np.count_nonzero(dy))
    return concordance / math.sqrt(untied_x * untied_y)


PAIRWISE_UNITS = 3000


def _kendall_counts(x: FloatArray, y: FloatArray) -> tuple[int, int, int, int]:
    """(concordant − discordant pairs, all pairs, pairs tied in x, pairs tied in y), counted as
    scipy counts them: sorted by x then y, the discordant pairs are the inversions of y."""
    order = np.lexsort((y, x))
    xs, ys = x[order], y[order]
    x_rank = np.cumsum(np.r_[True, xs[1:] != xs[:-1]])
    y_dense = np.unique(ys, return_inverse=True)[1].reshape(-1).astype(np.int64)
    discordant = _inversions(y_dense)
    joint = np.r_[True, (x_rank[1:] != x_rank[:-1]) | (y_dense[1:] != y_dense[:-1]), True]
    runs = np.diff(np.flatnonzero(joint)).astype(np.int64)
    joint_ties = int((runs * (runs - 1) // 2).sum())
    x_ties, y_ties = _tied_pairs(x_rank), _tied_pairs(y_dense)
    pairs = len(x) * (len(x) - 1) // 2
    return pairs - x_ties - y_ties + joint_ties - 2 * discordant, pairs, x_ties, y_ties


def _tied_pairs(ranks: IntArray) -> int:
    counts = np.bincount(ranks).astype(np.int64)
    counts = counts[counts > 1]
    return int((counts * (counts - 1) // 2).sum())


def _inversions(values: IntArray) -> int:
    """Pairs i < j with values[i] > values[j] (non-negative integers): a bottom-up merge sort
    whose every level is counted for all blocks at once (searchsorted on block-offset keys)."""
    current = np.asarray(values, dtype=np.int64)
    count = len(current)
    if count < 2:
        return 0
    span = int(current.max()) + 1
    index = np.arange(count, dtype=np.int64)
    found = 0
    width = 1
    while width < count:
        block = index // (2 * width)
        in_left = (index % (2 * width)) < width
        keys = block * span + current
        left = keys[in_left]  # sorted: blocks in order, each half sorted
        right, right_block = keys[~in_left], block[~in_left]
        block_end = np.searchsorted(left, (right_block + 1) * span, side="left")
        not_greater = np.searchsorted(left, right, side="right")
        found += int((block_end - not_greater).sum())
        # Each block is two sorted runs: a stable (merging) sort joins them in one pass.
        current = np.sort(keys, kind="stable") % span
        width *= 2
    return found


@dataclass(frozen=True, eq=False)
class MethodComparison:
    """ranks: unit, expert_rank, entropy_score, entropy_rank, topsis_closeness, topsis_rank (in
    the result's position order). correlations: method_a, method_b, spearman, kendall.
    entropy_weights / expert_weights: per indicator, summing to 1."""

    ranks: pd.DataFrame
    correlations: pd.DataFrame
    entropy_weights: pd.Series
    expert_weights: pd.Series


METHOD_LABELS = {"expert": "专家权重", "entropy": "熵权法", "topsis": "TOPSIS"}


def compare_methods(result: EvaluationResult) -> MethodComparison:
    """The expert ranking beside entropy-weight and TOPSIS rankings of the same units.

    All three work on the achievement matrix (`achievement_matrix`). The expert rank is the
    result's rank (with 加分/扣分); entropy and TOPSIS use the indicators only. TOPSIS uses the
    expert weights, so it differs from the expert rank by how it aggregates, the entropy
    method by its weights. Equal scores share a rank (1, 2, 2, 4).
    """
    matrix = achievement_matrix(result)
    weights = entropy_weights(matrix)
    expert = pd.Series(result.weights, dtype=float).reindex(matrix.columns)
    expert = expert / expert.sum() if expert.sum() > 0 else expert
    entropy_score = entropy_scores(matrix, weights)
    closeness = topsis(matrix, expert)
    ranks = pd.DataFrame(
        {
            "unit": result.table["unit"].to_numpy(),
            "expert_rank": result.table["rank"].to_numpy(np.int64),
            "entropy_score": entropy_score.to_numpy(float),
            "entropy_rank": _min_ranks(entropy_score.to_numpy(float))[0],
            "topsis_closeness": closeness.to_numpy(float),
            "topsis_rank": _min_ranks(closeness.to_numpy(float))[0],
        }
    )
    pairs = [("expert", "entropy"), ("expert", "topsis"), ("entropy", "topsis")]
    rows = []
    for a, b in pairs:
        x, y = ranks[f"{a}_rank"].to_numpy(float), ranks[f"{b}_rank"].to_numpy(float)
        rows.append((a, b, spearman(x, y), kendall_tau_b(x, y)))
    correlations = pd.DataFrame(rows, columns=["method_a", "method_b", "spearman", "kendall"])
    return MethodComparison(ranks, correlations, weights, expert.rename("expert_weight"))


# --- robustness -----------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class RobustnessResult:
    """table: ROBUSTNESS_COLUMNS, one row per unit in the result's position order.

    Ranks are over all units (1, 2, 2, 4 for ties) in each draw; rank_p05/median/p95 are
    empirical quantiles (values that occurred). Pool positions rank the base result's award
    pool among themselves; best_award/worst_award are the awards of pool_position_p05/p95
    ("" = none); crosses_tier: that band spans more than one award tier (including none), so
    a winner might lose or change tier, or a near-miss might win. same_award_share: share of
    draws in which the unit's pool position gives its base award.
    """

    table: pd.DataFrame
    draws: int
    spread: float
    seed: int
    weights: pd.DataFrame = field(repr=False)  # draws × indicator maximum points


def perturbed_weights(
    weights: Mapping[str, float], draws: int, spread: float, seed: int
) -> pd.DataFrame:
    """draws × indicator: each weight × U(1 − spread, 1 + spread), rescaled so every draw's
    weights sum to the same total as `weights` (100 by default)."""
    names = list(weights)
    base = np.array([weights[name] for name in names], dtype=float)
    rng = np.random.default_rng(seed)
    factors = rng.uniform(1.0 - spread, 1.0 + spread, size=(draws, len(names)))
    drawn = base * factors
    sums = drawn.sum(axis=1, keepdims=True)
    drawn = drawn * (base.sum() / np.where(sums > 0, sums, 1.0))
    return pd.DataFrame(drawn, columns=names)


def robustness(result: EvaluationResult, config: Config | None = None) -> RobustnessResult:
    """Rank stability under perturbed weights: config.robustness_draws draws (seeded with
    config.robustness_seed), each indicator's maximum points × U(1 ± config.robustness_spread),
    renormalised, every unit's points re-scored proportionally and re-ranked (vectorised)."""
    settings = config or result.config
    table = result.table
    names = indicator_names(result.config)
    drawn = perturbed_weights(
        {name: result.weights[name] for name in names},
        settings.robustness_draws,
        settings.robustness_spread,
        settings.robustness_seed,
    )
    shares = result.shares.reindex(table["unit"].tolist())[names].fillna(0.0).to_numpy(float)
    adjustment = (table["bonus"] - table["penalty"]).to_numpy(float)
    totals = drawn.to_numpy(float) @ shares.T  # draws × units
    totals += adjustment
    in_pool = _in_award_pool(table, result.config)
    pool_index = np.flatnonzero(in_pool)
    ranks, pool_positions = _ranks_and_pool_positions(totals, pool_index)
    quantiles = _empirical_quantiles(ranks)
    ends = _tier_ends(len(pool_index), result.config)
    award_names = [*result.config.awards, ""]
    frame = pd.DataFrame(
        {
            "unit": table["unit"].to_numpy(),
            "rank": table["rank"].to_numpy(np.int64),
            "award": table["award"].to_numpy(),
            "median_rank": quantiles[1],
            "rank_p05": quantiles[0],
            "rank_p95": quantiles[2],
            "is_in_award_pool": in_pool,
        }
    )
    for column in ("pool_position", "pool_position_p05", "pool_position_p95"):
        frame[column] = pd.array([pd.NA] * len(frame), dtype="Int64")
    frame["best_award"] = ""
    frame["worst_award"] = ""
    frame["same_award_share"] = np.nan
    frame["crosses_tier"] = False
    if len(pool_index):
        assert pool_positions is not None
        positions = pool_positions
        low, _, high = _empirical_quantiles(positions)
        base_positions = _min_ranks(table["total"].to_numpy(float)[pool_index])[0]
        base_tiers = np.array(
            [award_names.index(a) for a in table["award"].to_numpy()[pool_index]], dtype=np.int64
        )
        draw_tiers = _tiers_of_positions(positions, ends)
        low_tier = _tiers_of_positions(low, ends)
        high_tier = _tiers_of_positions(high, ends)
        frame.loc[pool_index, "pool_position"] = base_positions
        frame.loc[pool_index, "pool_position_p05"] = low
        frame.loc[pool_index, "pool_position_p95"] = high
        frame.loc[pool_index, "best_award"] = [award_names[t] for t in low_tier]
        frame.loc[pool_index, "worst_award"] = [award_names[t] for t in high_tier]
        frame.loc[pool_index, "same_award_share"] = (draw_tiers == base_tiers).mean(axis=0)
        frame.loc[pool_index, "crosses_tier"] = low_tier != high_tier
    frame["crosses_tier"] = frame["crosses_tier"].astype(bool)
    return RobustnessResult(
        table=frame[ROBUSTNESS_COLUMNS],
        draws=settings.robustness_draws,
        spread=settings.robustness_spread,
        seed=settings.robustness_seed,
        weights=drawn,
    )


def _empirical_quantiles(
    ranks: npt.NDArray[np.integer],
) -> tuple[IntArray, IntArray, IntArray]:
    """5%, 50% and 95% of each column, as ranks that occurred (inverted CDF): each column's
    draws sorted (one vectorised sort of the transposed matrix), then the order statistics
    np.quantile(method="inverted_cdf") picks — found by asking it for the indices of 0…n−1."""
    draws, width = ranks.shape
    if width == 0 or draws == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    picks = np.quantile(np.arange(draws), [0.05, 0.5, 0.95], method="inverted_cdf")
    by_unit = np.ascontiguousarray(ranks.T)
    by_unit.sort(axis=1)
    low, middle, high = (by_unit[:, int(pick)].astype(np.int64) for pick in picks)
    return low, middle, high


# --- what-if, year over year, 红黑榜 ---------------------------------------------------------


def rank_changes(before: EvaluationResult, after: EvaluationResult) -> pd.DataFrame:
    """unit, rank_before, rank_after, moved_by (rank_before − rank_after: positive = up),
    total_before, total_after, award_before, award_after; in `after`'s order, then units only
    in `before`."""
    left = before.table[["unit", "rank", "total", "award"]]
    right = after.table[["unit", "rank", "total", "award", "position"]]
    merged = right.merge(left, on="unit", how="outer", suffixes=("_after", "_before"))
    merged = merged.sort_values(["position", "unit"], na_position="last", kind="stable")
    for column in ("rank_before", "rank_after"):
        merged[column] = merged[column].astype("Int64")
    merged["moved_by"] = merged["rank_before"] - merged["rank_after"]
    columns = ["unit", "rank_before", "rank_after", "moved_by", "total_before", "total_after"]
    return merged[[*columns, "award_before", "award_after"]].reset_index(drop=True)


def year_over_year(current: EvaluationResult, previous: YearRanking) -> pd.DataFrame:
    """Per unit of `current`: unit, total, previous_total, total_change, rank, previous_rank,
    rank_change (previous_rank − rank: positive = moved up), grade, previous_grade. Previous
    values and changes are NaN (NA) for a unit new this year."""
    now = current.table[["unit", "total", "rank", "grade"]]
    before = previous.table[RANKING_COLUMNS].rename(
        columns={"total": "previous_total", "rank": "previous_rank", "grade": "previous_grade"}
    )
    merged = now.merge(before, on="unit", how="left")
    merged["total_change"] = merged["total"] - merged["previous_total"]
    merged["previous_rank"] = merged["previous_rank"].astype("Int64")
    merged["rank"] = merged["rank"].astype("Int64")
    merged["rank_change"] = merged["previous_rank"] - merged["rank"]
    columns = ["unit", "total", "previous_total", "total_change", "rank", "previous_rank"]
    return merged[[*columns, "rank_change", "grade", "previous_grade"]]


def red_black(result: EvaluationResult, n: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """红黑榜: the top n and bottom n eligible units by total (tie-break order), n defaulting
    to config.red_black_list_size, or half the eligible units when there are fewer than 2n
    (metrics.red_black_size). The black list never repeats a red-list unit. Both keep the
    table's columns and add list_rank (1 = best on the red list, 1 = worst on the black)."""
    eligible = result.table[result.table["is_eligible"]]
    wanted = result.config.red_black_list_size if n is None else n
    count = red_black_size(len(eligible), wanted)
    red = eligible.head(count)
    black = eligible.drop(index=red.index).iloc[::-1].head(count)
    return _listed(red), _listed(black)


def _listed(frame: pd.DataFrame) -> pd.DataFrame:
    listed = frame.reset_index(drop=True).copy()
    listed.insert(0, "list_rank", np.arange(1, len(listed) + 1, dtype="int64"))
    return listed


# --- the rules, for the report --------------------------------------------------------------


def rules_text(config: Config) -> list[str]:
    """The evaluation rules in force, one sentence each, to print beside the ranking."""
    grades = "，".join(f"{name} ≥ {cut:g}" for name, cut in config.grades.items())
    awards = "，".join(f"{name} {share:.0%}" for name, share in config.awards.items())
    return [
        f"指标体系满分 {sum(i.points for i in config.indicators):g} 分，共 {len(config.indicators)} 项指标。",
        f"评委打分项：评委 ≥ {config.trim_from_evaluators} 人时去掉一个最高分和一个最低分后取平均，"
        f"否则取平均；评委极差超过该指标分值的 {config.disagreement_share:.0%} 标记为“评委分歧”。",
        "数据指标：得分 = 分值 × clamp((实际值 − 起评值) ÷ (目标值 − 起评值), 0, 1)。",
        f"问卷有效样本少于 {config.min_sample} 人标“{SMALL_SAMPLE}”，缺少任一指标标“{MISSING}”"
        f"（该项计 0 分），二者均不参与评奖。",
        f"总分 = 各指标得分之和 + 加分（上限 {config.max_bonus:g} 分）− 扣分；加扣分取各评委所记数值的平均。"
        f"任一评委标记“{VETO}”即定为{NOT_PASSED}且不参与评奖。",
        f"等次：{grades}，其余为{NOT_PASSED}。",
        f"奖项在符合条件的{'/'.join(award_grades(config))}单位中按名次依次评定：{awards}；"
        "人数按累计比例四舍五入，一等奖至少 1 名。",
        "总分相同名次并列（如 1、2、2、4）；排序与评奖时依次比较"
        f"{'、'.join(config.tie_break) or '（未配置）'}板块小计，仍相同者完全并列，跨奖项分界时同获较高奖项。",
    ]
