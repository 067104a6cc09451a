"""The annual evaluation (评优评先, DOMAIN.md §5) as pure functions of DataFrames and the Config.

One year and one level (compound, community or property company) at a time: `evaluate` turns
evaluator scores, adjustments and metric values into points per indicator, totals, grades,
ranks and awards, and keeps where every number came from. Beside it: the entropy-weight and
TOPSIS alternatives (`compare_methods`), weight robustness (`robustness`), what-if weights
(`rescore`, `rank_changes`), year over year (`year_over_year`) and the 红黑榜 (`red_black`).

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
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from analytics.metrics import indicator_points
from govdash.config import Config, Indicator

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

# Config indicator (source, metric) → metrics column; the same as analytics.units
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
    return pd.DataFrame({c: pd.Series(dtype=float if c == "score" else object) for c in SCORE_COLUMNS})


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
    """

    inputs: EvaluationInput
    config: Config
    weights: dict[str, float]
    table: pd.DataFrame
    breakdown: pd.DataFrame
    evaluator_detail: pd.DataFrame
    evaluator_scores: pd.DataFrame
    shares: pd.DataFrame
    unit_facts: pd.DataFrame
    evidence: pd.DataFrame = field(repr=False)
    warnings: tuple[str, ...] = ()

    @property
    def year(self) -> int | None:
        return self.inputs.year

    @property
    def level(self) -> str:
        return self.inputs.level


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
    evaluator_scores, detail, evaluator_shares, evaluator_evidence = _evaluator_part(
        inputs.scores, units, config, notes
    )
    metric_values, metric_evidence = _metric_part(inputs.metrics, units, config, notes)
    shares = _shares(units, config, evaluator_shares, metric_values)
    facts = _unit_facts(units, inputs, config, shares, detail, metric_values)
    evidence = _evidence_frame(
        units, config, shares, detail, metric_values, evaluator_evidence, metric_evidence
    )
    table, breakdown = _finish(config, chosen, shares, facts, evidence)
    return EvaluationResult(
        inputs=inputs,
        config=config,
        weights=chosen,
        table=table,
        breakdown=breakdown,
        evaluator_detail=detail,
        evaluator_scores=evaluator_scores,
        shares=shares,
        unit_facts=facts,
        evidence=evidence,
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
    table, breakdown = _finish(
        result.config, chosen, result.shares, result.unit_facts, result.evidence
    )
    return EvaluationResult(
        inputs=result.inputs,
        config=result.config,
        weights=chosen,
        table=table,
        breakdown=breakdown,
        evaluator_detail=result.evaluator_detail,
        evaluator_scores=result.evaluator_scores,
        shares=result.shares,
        unit_facts=result.unit_facts,
        evidence=result.evidence,
        warnings=result.warnings,
    )


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
    extra = [str(u) for u in inputs.scores["unit"].dropna()]
    extra += [str(u) for u in inputs.adjustments["unit"].dropna()]
    return sorted(set(listed) | set(extra))


def _evaluator_indicators(config: Config) -> list[Indicator]:
    return [indicator for indicator in config.indicators if indicator.source == "evaluator"]


def _evaluator_part(
    scores: pd.DataFrame, units: list[str], config: Config, notes: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The long scores with is_trimmed, the per unit × indicator detail, the shares (unit ×
    indicator, evaluator indicators only) and an evidence sentence per unit × indicator."""
    indicators = {i.name: i for i in _evaluator_indicators(config)}
    frame = scores[SCORE_COLUMNS].copy()
    frame["unit"] = frame["unit"].astype(object).map(str)
    frame["indicator"] = frame["indicator"].astype(object).map(str)
    frame["evaluator"] = frame["evaluator"].astype(object).map(str)
    frame["score"] = pd.to_numeric(frame["score"], errors="coerce").astype(float)
    unknown = sorted(set(frame["indicator"]) - set(indicators))
    if unknown:
        notes.append(f"评分表中的指标不在配置的评委打分指标中，未计分：{'、'.join(unknown)}")
    blank = int(frame["score"].isna().sum())
    if blank:
        notes.append(f"{blank} 条评分没有数值，未计分")
    frame = frame[frame["indicator"].isin(list(indicators)) & frame["score"].notna()]
    frame = frame.groupby(["unit", "indicator", "evaluator"], as_index=False, sort=False)[
        "score"
    ].mean()
    points = frame["indicator"].map({n: i.points for n, i in indicators.items()}).astype(float)
    outside = int(((frame["score"] < 0) | (frame["score"] > points + 1e-9)).sum())
    if outside:
        notes.append(f"{outside} 条评分超出 0 到该指标分值的范围，已按原值计入")
    frame = frame.sort_values(["unit", "indicator", "score", "evaluator"], kind="stable")
    frame = frame.reset_index(drop=True)
    group = frame.groupby(["unit", "indicator"], sort=False)
    order = group.cumcount().to_numpy()
    size = group["score"].transform("size").to_numpy()
    is_trimmed = (size >= config.trim_from_evaluators) & ((order == 0) | (order == size - 1))
    frame["is_trimmed"] = is_trimmed
    kept = frame[~frame["is_trimmed"]].groupby(["unit", "indicator"], sort=False)["score"]
    text = frame["score"].map(lambda s: f"{s:g}")
    frame["_text"] = text.where(~frame["is_trimmed"], "（" + text + "）")
    low_evaluator = frame[frame["is_trimmed"] & (order == 0)].set_index(["unit", "indicator"])
    high_evaluator = frame[frame["is_trimmed"] & (order == size - 1)].set_index(
        ["unit", "indicator"]
    )
    detail = group.agg(
        evaluators=("score", "size"),
        low=("score", "min"),
        high=("score", "max"),
        scores_text=("_text", "、".join),
    )
    detail["aggregate"] = kept.mean()
    detail["trimmed_low_evaluator"] = low_evaluator["evaluator"]
    detail["trimmed_high_evaluator"] = high_evaluator["evaluator"]
    detail = detail.reset_index()
    detail["block"] = detail["indicator"].map({n: i.block for n, i in indicators.items()})
    detail["points_max"] = detail["indicator"].map({n: i.points for n, i in indicators.items()})
    detail["points_max"] = detail["points_max"].astype(float)
    detail["score_range"] = detail["high"] - detail["low"]
    detail["is_disputed"] = (
        detail["score_range"] > config.disagreement_share * detail["points_max"] + 1e-9
    )
    trimmed = detail["evaluators"] >= config.trim_from_evaluators
    detail["method"] = np.where(trimmed, "去掉一个最高分和一个最低分后平均", "平均")
    for column in ("trimmed_low_evaluator", "trimmed_high_evaluator"):
        detail[column] = detail[column].astype(object).where(detail[column].notna(), "")
    detail["evaluators"] = detail["evaluators"].astype("int64")
    detail = detail[detail["unit"].isin(units)]
    indicator_order = {name: i for i, name in enumerate(indicator_names(config))}
    detail = detail.assign(_order=detail["indicator"].map(indicator_order))
    detail = detail.sort_values(["unit", "_order"]).drop(columns="_order")
    detail = detail[EVALUATOR_DETAIL_COLUMNS].reset_index(drop=True)

    shares = detail.pivot(index="unit", columns="indicator", values="aggregate")
    shares = shares.div(pd.Series({n: i.points for n, i in indicators.items()}), axis=1)
    evidence = detail.assign(evidence=[_evaluator_sentence(row) for row in detail.itertuples()])
    evidence = evidence.pivot(index="unit", columns="indicator", values="evidence")
    used = frame[frame["unit"].isin(units)][EVALUATOR_SCORE_COLUMNS]
    used = used.assign(_order=used["indicator"].map(indicator_order))
    used = used.sort_values(["unit", "_order", "evaluator"]).drop(columns="_order")
    return used.reset_index(drop=True), detail, shares, evidence


def _evaluator_sentence(row: Any) -> str:
    text = f"{row.evaluators} 位评委"
    if row.method == "平均":
        text += f"平均 {row.aggregate:.2f}/{row.points_max:g}"
    else:
        text += (
            f"，去掉最高 {row.high:g}（{row.trimmed_high_evaluator}）与最低 {row.low:g}"
            f"（{row.trimmed_low_evaluator}）后平均 {row.aggregate:.2f}/{row.points_max:g}"
        )
    text += f"；评分 {row.scores_text}"
    if row.is_disputed:
        text += f"；评委分歧（极差 {row.score_range:g}）"
    return text


def _metric_indicators(config: Config) -> list[tuple[Indicator, str]]:
    found = []
    for indicator in config.indicators:
        column = METRIC_COLUMNS.get((indicator.source, indicator.metric or ""))
        if column is not None:
            found.append((indicator, column))
    return found


def _metric_part(
    metrics: pd.DataFrame, units: list[str], config: Config, notes: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per unit: the metric columns (index unit), and an evidence sentence per indicator."""
    frame = metrics.copy()
    frame["unit"] = frame["unit"].astype(object).map(str)
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
    evidence = pd.DataFrame(index=pd.Index(units, name="unit"))
    for indicator, column in _metric_indicators(config):
        values = frame[column].to_numpy(float)
        n = frame[METRIC_N_COLUMNS[column]].to_numpy()
        suffix = _roll_up_suffix(frame, column)
        sentences = []
        for i, value in enumerate(values):
            if math.isnan(value):
                sentences.append("无数据")
            elif column == "survey_satisfaction_rate":
                respondents = int(frame["survey_respondents"].iloc[i])
                sentences.append(
                    f"{indicator.name} {value:.3f}（{respondents} 人作答，n={n[i]} 份有效答案"
                    f"{suffix[i]}）"
                )
            else:
                sentences.append(f"{indicator.name} {value:.3f}（n={n[i]} 次回访{suffix[i]}）")
        evidence[indicator.name] = sentences
    return frame, evidence


def _numbers(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame.columns:
        return pd.Series(np.nan, index=frame.index, dtype=float)
    return pd.to_numeric(frame[column], errors="coerce").astype(float)


def _roll_up_suffix(frame: pd.DataFrame, column: str) -> list[str]:
    counts, ways = f"{column}_compounds", f"{column}_weighting"
    if counts not in frame.columns:
        return [""] * len(frame)
    result = []
    for count, way in zip(frame[counts], frame.get(ways, [""] * len(frame)), strict=True):
        if pd.isna(count) or int(count) == 0:
            result.append("")
        else:
            result.append(f"；{int(count)} 个小区{way or '按户数加权'}")
    return result


def _shares(
    units: list[str],
    config: Config,
    evaluator_shares: pd.DataFrame,
    metric_values: pd.DataFrame,
) -> pd.DataFrame:
    shares = pd.DataFrame(index=pd.Index(units, name="unit"), dtype=float)
    metric_columns = dict(_metric_indicators(config))
    for indicator in config.indicators:
        if indicator.source == "evaluator":
            column = evaluator_shares.get(indicator.name)
            shares[indicator.name] = (
                column.reindex(units).to_numpy(float) if column is not None else np.nan
            )
        elif indicator in metric_columns:
            assert indicator.floor is not None and indicator.target is not None
            values = metric_values[metric_columns[indicator]].to_numpy(float)
            shares[indicator.name] = indicator_points(values, indicator.floor, indicator.target, 1.0)
        else:
            shares[indicator.name] = np.nan
    return shares


def _unit_facts(
    units: list[str],
    inputs: EvaluationInput,
    config: Config,
    shares: pd.DataFrame,
    detail: pd.DataFrame,
    metric_values: pd.DataFrame,
) -> pd.DataFrame:
    facts = pd.DataFrame(index=pd.Index(units, name="unit"))
    facts["parent"] = metric_values["parent"].astype(object).where(metric_values["parent"].notna(), None)
    facts["households"] = metric_values["households"].to_numpy(float)
    adjustments = _adjustments_per_unit(inputs.adjustments, config).reindex(units)
    facts["bonus"] = adjustments["bonus"].fillna(0.0).to_numpy(float)
    facts["penalty"] = adjustments["penalty"].fillna(0.0).to_numpy(float)
    facts["is_veto"] = adjustments["is_veto"].fillna(False).to_numpy(bool)
    facts["adjustment_note"] = adjustments["adjustment_note"].fillna("").astype(object)
    has_survey = any(i.source == "survey" for i in config.indicators)
    respondents = metric_values["survey_respondents"].to_numpy()
    facts["survey_respondents"] = respondents.astype("int64")
    facts["is_small_sample"] = (respondents < config.min_sample) & has_survey
    missing = shares.isna()
    facts["missing_indicators"] = [
        "、".join(name for name in shares.columns if row[name]) for _, row in missing.iterrows()
    ]
    disputed = detail[detail["is_disputed"]].groupby("unit", sort=False)["indicator"].agg("、".join)
    facts["disputed_indicators"] = disputed.reindex(units).fillna("").astype(object)
    facts["is_disputed"] = facts["disputed_indicators"] != ""
    reasons = []
    for unit in units:
        parts = []
        if facts.at[unit, "is_veto"]:
            parts.append(VETO)
        if facts.at[unit, "is_small_sample"]:
            parts.append(
                f"{SMALL_SAMPLE}（问卷 {facts.at[unit, 'survey_respondents']} 人，"
                f"少于 {config.min_sample} 人）"
            )
        if facts.at[unit, "missing_indicators"]:
            parts.append(f"{MISSING}：{facts.at[unit, 'missing_indicators']}")
        reasons.append("；".join(parts))
    facts["ineligible_reason"] = reasons
    facts["is_eligible"] = facts["ineligible_reason"] == ""
    return facts


def _adjustments_per_unit(adjustments: pd.DataFrame, config: Config) -> pd.DataFrame:
    """Per unit: bonus (mean of recorded values, capped), penalty, is_veto, adjustment_note."""
    frame = adjustments[ADJUSTMENT_COLUMNS].copy()
    frame["unit"] = frame["unit"].astype(object).map(str)
    frame["bonus"] = pd.to_numeric(frame["bonus"], errors="coerce").astype(float)
    frame["penalty"] = pd.to_numeric(frame["penalty"], errors="coerce").astype(float)
    frame["is_veto"] = frame["is_veto"].astype("boolean").fillna(False).astype(bool)
    rows = []
    for unit, group in frame.groupby("unit", sort=True):
        bonus_values = sorted(group["bonus"].dropna().unique())
        penalty_values = sorted(group["penalty"].dropna().unique())
        recorded_bonus = float(group["bonus"].dropna().mean()) if bonus_values else 0.0
        bonus = min(recorded_bonus, config.max_bonus)
        penalty = float(group["penalty"].dropna().mean()) if penalty_values else 0.0
        is_veto = bool(group["is_veto"].any())
        parts = []
        if recorded_bonus:
            part = f"加分 {bonus:g}"
            if recorded_bonus > config.max_bonus:
                part += f"（记录 {recorded_bonus:g}，上限 {config.max_bonus:g}）"
            if len(bonus_values) > 1:
                part += f"（各评委记录不一：{'、'.join(f'{v:g}' for v in bonus_values)}，取平均）"
            parts.append(part)
        if penalty:
            part = f"扣分 {penalty:g}"
            if len(penalty_values) > 1:
                part += f"（各评委记录不一：{'、'.join(f'{v:g}' for v in penalty_values)}，取平均）"
            parts.append(part)
        if is_veto:
            vetoers = group.loc[group["is_veto"], "evaluator"].astype(str)
            parts.append(f"{VETO}（{'、'.join(sorted(set(vetoers)))}）")
        notes = sorted({str(n) for n in group["note"].dropna() if str(n).strip()})
        if notes:
            parts.append("备注：" + "；".join(notes))
        rows.append((unit, bonus, penalty, is_veto, "；".join(parts)))
    return pd.DataFrame(
        rows, columns=["unit", "bonus", "penalty", "is_veto", "adjustment_note"]
    ).set_index("unit")


def _evidence_frame(
    units: list[str],
    config: Config,
    shares: pd.DataFrame,
    detail: pd.DataFrame,
    metric_values: pd.DataFrame,
    evaluator_evidence: pd.DataFrame,
    metric_evidence: pd.DataFrame,
) -> pd.DataFrame:
    """Long per unit × indicator: block, source, value (a rate, or the evaluators' aggregate on
    their scale), n (callbacks, survey answers or evaluators), share and evidence."""
    metric_columns = dict(_metric_indicators(config))
    aggregates = detail.set_index(["unit", "indicator"])
    frames = []
    for indicator in config.indicators:
        if indicator.source == "evaluator":
            column = evaluator_evidence.get(indicator.name)
            sentences = (
                column.reindex(units).fillna("无评委评分")
                if column is not None
                else pd.Series("无评委评分", index=units)
            )
            keys = pd.MultiIndex.from_arrays([units, [indicator.name] * len(units)])
            found = aggregates.reindex(keys)
            value = found["aggregate"].to_numpy(float)
            n = found["evaluators"].fillna(0).to_numpy(float)
        else:
            sentences = metric_evidence.get(indicator.name, pd.Series("无数据", index=units))
            column_name = metric_columns.get(indicator)
            if column_name is None:
                value = np.full(len(units), np.nan)
                n = np.zeros(len(units))
            else:
                value = metric_values[column_name].to_numpy(float)
                n = metric_values[METRIC_N_COLUMNS[column_name]].to_numpy(float)
        frames.append(
            pd.DataFrame(
                {
                    "unit": units,
                    "block": indicator.block,
                    "indicator": indicator.name,
                    "source": indicator.source,
                    "value": value,
                    "n": n.astype("int64"),
                    "floor": indicator.floor if indicator.floor is not None else np.nan,
                    "target": indicator.target if indicator.target is not None else np.nan,
                    "share": shares[indicator.name].to_numpy(float),
                    "evidence": np.asarray(sentences.to_numpy(), dtype=object),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _finish(
    config: Config,
    weights: dict[str, float],
    shares: pd.DataFrame,
    facts: pd.DataFrame,
    evidence: pd.DataFrame,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Weighting, totals, grades, ranks, tie-break and awards (eligibility is in `facts`)."""
    names = indicator_names(config)
    weight = pd.Series(weights, dtype=float).reindex(names)
    points = shares[names] * weight
    filled = points.fillna(0.0)
    table = pd.DataFrame(index=shares.index)
    table["parent"] = facts["parent"]
    table["households"] = facts["households"]
    for name in names:
        table[name] = points[name]
    for block in block_names(config):
        members = [i.name for i in config.indicators if i.block == block]
        table[block_column(block)] = filled[members].sum(axis=1)
    table["bonus"] = facts["bonus"]
    table["penalty"] = facts["penalty"]
    table["total"] = filled.sum(axis=1) + facts["bonus"] - facts["penalty"]
    table["is_veto"] = facts["is_veto"]
    table["grade"] = [
        _grade(total, veto, config)
        for total, veto in zip(table["total"], table["is_veto"], strict=True)
    ]
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
        table[column] = facts[column]
    table["rank"] = _min_ranks(table["total"].to_numpy(float)[None, :])[0]
    keys = _sort_keys(config)
    table = table.reset_index()
    ordering = pd.DataFrame(
        {f"_k{i}": -values for i, values in enumerate(_key_values(table, keys))}
    )
    ordering["_unit"] = table["unit"].to_numpy()
    order = ordering.sort_values([*ordering.columns], kind="stable").index
    table = table.loc[order].reset_index(drop=True)
    table["position"] = np.arange(1, len(table) + 1, dtype="int64")
    table["tie_note"] = _tie_notes(table, config, keys)
    table["award"] = _awards(table, config, keys)
    table = table[table_columns(config)]
    return table, _breakdown(evidence, table, weights)


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


def _min_ranks(values: npt.ArrayLike) -> IntArray:
    """Per row, rank 1 = highest; equal values (at TOTAL_DECIMALS) share the smallest rank
    (1, 2, 2, 4). Sorting, not pairwise comparison, so many draws × units stay cheap."""
    rounded = np.round(np.atleast_2d(np.asarray(values, dtype=float)), TOTAL_DECIMALS)
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


def _tie_notes(table: pd.DataFrame, config: Config, keys: list[str]) -> list[str]:
    """For units sharing a total: how the tie-break blocks ordered them (in position order)."""
    values = _key_matrix(table, keys)
    notes = [""] * len(table)
    units = table["unit"].tolist()
    start = 0
    while start < len(table):
        end = start
        while end + 1 < len(table) and values[end + 1, 0] == values[start, 0]:
            end += 1
        if end > start:
            steps = []
            for a in range(start, end):
                b = a + 1
                decided = next((k for k in range(1, len(keys)) if values[a, k] != values[b, k]), None)
                if decided is None:
                    steps.append(f"{units[a]} 与 {units[b]} 各比较板块亦相同，完全并列（按名称列出）")
                else:
                    steps.append(
                        f"{units[a]} 先于 {units[b]}（{keys[decided]} {values[a, decided]:.2f} > "
                        f"{values[b, decided]:.2f}）"
                    )
            order_text = "、".join(config.tie_break) or "（未配置比较板块）"
            note = (
                f"总分 {values[start, 0]:.2f} 并列第 {table['rank'].iloc[start]} 名，"
                f"依次比较 {order_text} 小计：" + "；".join(steps)
            )
            for i in range(start, end + 1):
                notes[i] = note
        start = end + 1
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
    frame = evidence.copy()
    frame["points_max"] = frame["indicator"].map(weights).astype(float)
    frame["points"] = frame["share"] * frame["points_max"]
    frame["is_missing"] = frame["share"].isna()
    explanations = []
    for row in frame.itertuples():
        if row.is_missing:
            explanations.append(f"{row.evidence} → 0/{row.points_max:g} 分（{MISSING}）")
        elif row.source == "evaluator":
            explanations.append(f"{row.evidence} → {row.points:.2f}/{row.points_max:g} 分")
        else:
            explanations.append(
                f"{row.evidence} → {row.points_max:g} × clamp((x − {row.floor:g}) ÷ "
                f"({row.target:g} − {row.floor:g}), 0, 1) = {row.points:.2f} 分"
            )
    frame["explanation"] = explanations
    position = dict(zip(table["unit"], table["position"], strict=True))
    frame["_position"] = frame["unit"].map(position)
    frame = frame.sort_values("_position", kind="stable")
    return frame[BREAKDOWN_COLUMNS].reset_index(drop=True)
