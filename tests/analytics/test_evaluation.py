"""The evaluation engine (govdash.analytics.metrics.evaluation) against hand arithmetic and invariants."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pandas.testing import assert_frame_equal

from govdash.analytics.metrics import evaluation as ev
from govdash.analytics.queries import units
from govdash.core.config import Config, load_config
from tests.analytics.warehouse_data import clean_environment, shipped_config

CONFIG = shipped_config()

# A small indicator system for hand arithmetic: 2 evaluator indicators, 2 metric indicators.
SMALL_TOML = """
[evaluation]
tie_break = ["诉求办理", "居民满意度", "党建引领"]

[evaluation.awards]
"一等奖" = 0.2
"二等奖" = 0.3
"三等奖" = 0.5

[[evaluation.indicators]]
block = "党建引领"
name = "组织建设"
points = 20
source = "evaluator"

[[evaluation.indicators]]
block = "服务质量巡查"
name = "巡查"
points = 20
source = "evaluator"

[[evaluation.indicators]]
block = "诉求办理"
name = "解决率"
points = 30
source = "tickets"
metric = "resolution_rate"
floor = 0.6
target = 0.9

[[evaluation.indicators]]
block = "居民满意度"
name = "问卷满意率"
points = 30
source = "survey"
metric = "satisfaction_rate"
floor = 0.6
target = 0.9
"""

EVALUATORS = ["评委A", "评委B", "评委C", "评委D", "评委E"]


def config_from(tmp_path: Path, text: str, name: str = "small.toml") -> Config:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with clean_environment():
        return load_config(path)


@pytest.fixture
def small_config(tmp_path: Path) -> Config:
    return config_from(tmp_path, SMALL_TOML)


def score_rows(unit: str, indicator: str, scores: list[float]) -> list[dict[str, Any]]:
    return [
        {"unit": unit, "evaluator": who, "indicator": indicator, "score": score}
        for who, score in zip(EVALUATORS, scores, strict=False)
    ]


def metric_row(
    unit: str,
    resolution: float = math.nan,
    survey: float = math.nan,
    respondents: int = 40,
    callbacks: int = 50,
    households: float = 100.0,
) -> dict[str, Any]:
    return {
        "unit": unit,
        "parent": "东社区",
        "households": households,
        "response_rate": math.nan,
        "resolution_rate": resolution,
        "satisfaction_rate": math.nan,
        "callback_n": callbacks,
        "survey_satisfaction_rate": survey,
        "survey_n": respondents,
        "survey_respondents": respondents,
    }


def adjustment_row(
    unit: str,
    evaluator: str,
    bonus: float | None = None,
    penalty: float | None = None,
    veto: bool | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    return {
        "unit": unit,
        "evaluator": evaluator,
        "bonus": bonus,
        "penalty": penalty,
        "is_veto": veto,
        "note": note,
    }


def worked_example() -> ev.EvaluationInput:
    """4 units, 5 evaluators. The expected numbers are worked out in test_worked_example."""
    scores = [
        *score_rows("甲", "组织建设", [18, 19, 20, 17, 12]),
        *score_rows("甲", "巡查", [19, 19, 19, 19, 19]),
        *score_rows("乙", "组织建设", [16, 17, 18, 17, 17]),
        *score_rows("乙", "巡查", [18, 18, 18, 18, 18]),
        *score_rows("丙", "组织建设", [15, 16, 16, 16, 20]),
        *score_rows("丙", "巡查", [17, 17, 17, 17, 17]),
        *score_rows("丁", "组织建设", [12, 14, 10, 13, 11]),
        # 丁 has no 巡查 scores at all.
    ]
    adjustments = [
        *[adjustment_row("甲", who, bonus=7) for who in EVALUATORS],  # capped at 5
        adjustment_row("丙", "评委C", bonus=2, note="全员保洁日组织得力"),  # recorded once
        *[adjustment_row("丁", who, penalty=1) for who in EVALUATORS],
    ]
    metrics = [
        metric_row("甲", resolution=0.90, survey=0.84),
        metric_row("乙", resolution=0.84, survey=0.83),
        metric_row("丙", resolution=0.87, survey=0.80),
        metric_row("丁", resolution=0.75, survey=0.90, respondents=20),
    ]
    return ev.EvaluationInput(
        year=2025,
        level="compound",
        scores=pd.DataFrame(scores),
        adjustments=pd.DataFrame(adjustments),
        metrics=pd.DataFrame(metrics),
        units=("甲", "乙", "丙", "丁"),
    )


def test_worked_example(small_config: Config) -> None:
    result = ev.evaluate(worked_example(), small_config)
    table = result.table.set_index("unit")
    # 组织建设, 5 evaluators ≥ trim_from_evaluators (5): drop one highest and one lowest.
    #   甲 12 17 18 19 20 → (17 + 18 + 19) / 3 = 18;  乙 16 17 17 17 18 → 17
    #   丙 15 16 16 16 20 → 16;                       丁 10 11 12 13 14 → 12
    # 巡查: 甲 19, 乙 18, 丙 17, 丁 none (0 points, 缺少指标).
    # 解决率 30 × (x − 0.6) / 0.3: 甲 0.90 → 30, 乙 0.84 → 24, 丙 0.87 → 27, 丁 0.75 → 15.
    # 问卷满意率 likewise: 甲 0.84 → 24, 乙 0.83 → 23, 丙 0.80 → 20, 丁 0.90 → 30.
    expected_points = {
        "甲": (18, 19, 30, 24),
        "乙": (17, 18, 24, 23),
        "丙": (16, 17, 27, 20),
        "丁": (12, math.nan, 15, 30),
    }
    for unit, points in expected_points.items():
        got = table.loc[unit, ["组织建设", "巡查", "解决率", "问卷满意率"]].to_numpy(float)
        np.testing.assert_allclose(got, points, rtol=0, atol=1e-9)
    # 加分: 甲 recorded 7 → capped at 5; 丙 2 (one evaluator wrote it); 丁 扣分 1.
    # Totals: 甲 91 + 5 = 96; 乙 82; 丙 80 + 2 = 82; 丁 57 − 1 = 56.
    assert table["bonus"].to_dict() == {"甲": 5.0, "乙": 0.0, "丙": 2.0, "丁": 0.0}
    assert table["penalty"].to_dict() == {"甲": 0.0, "乙": 0.0, "丙": 0.0, "丁": 1.0}
    assert table["total"].to_numpy(float) == pytest.approx([96, 82, 82, 56])
    # Equal totals share a rank; the tie-break (诉求办理 first) puts 丙 (27) before 乙 (24).
    assert result.table["unit"].tolist() == ["甲", "丙", "乙", "丁"]
    assert result.table["rank"].tolist() == [1, 2, 2, 4]
    assert result.table["position"].tolist() == [1, 2, 3, 4]
    assert "诉求办理小计 27.00 > 24.00" in table.loc["丙", "tie_note"]
    assert table.loc["乙", "tie_note"] == table.loc["丙", "tie_note"]
    assert table.loc["甲", "tie_note"] == ""
    # Grades: 优秀 ≥ 85, 良好 ≥ 80, 合格 ≥ 60.
    assert table["grade"].to_dict() == {"甲": "优秀", "乙": "良好", "丙": "良好", "丁": "不合格"}
    # 丁: no 巡查 and 20 respondents (< 30): not eligible.
    assert not table.loc["丁", "is_eligible"]
    assert (
        table.loc["丁", "ineligible_reason"] == "样本不足（问卷 20 人，少于 30 人）；缺少指标：巡查"
    )
    assert table.loc["丁", "missing_indicators"] == "巡查"
    assert table[["is_eligible"]].loc[["甲", "乙", "丙"]].all().all()
    # Award pool 甲, 丙, 乙 (N = 3), shares 0.2/0.3/0.5 cumulative 0.2/0.5/1.0:
    # ends round(0.6) → at least 1, round(1.5) = 2, round(3.0) = 3.
    assert table["award"].to_dict() == {"甲": "一等奖", "丙": "二等奖", "乙": "三等奖", "丁": ""}
    # Block subtotals.
    assert table.loc["甲", "党建引领小计"] == pytest.approx(18)
    assert table.loc["丁", "服务质量巡查小计"] == 0
    # Disagreement: 甲 组织建设 ranges 12..20 = 8 > 0.3 × 20 = 6.
    assert table.loc["甲", "disputed_indicators"] == "组织建设"
    assert table.loc["丙", "disputed_indicators"] == ""  # 15..20 = 5 ≤ 6
    assert "上限 5" in table.loc["甲", "adjustment_note"]
    assert "全员保洁日组织得力" in table.loc["丙", "adjustment_note"]


def test_worked_example_evaluator_detail(small_config: Config) -> None:
    result = ev.evaluate(worked_example(), small_config)
    detail = result.evaluator_detail.set_index(["unit", "indicator"])
    row = detail.loc[("甲", "组织建设")]
    assert row["aggregate"] == pytest.approx(18)
    assert (row["low"], row["high"], row["score_range"]) == (12, 20, 8)
    assert (row["trimmed_low_evaluator"], row["trimmed_high_evaluator"]) == ("评委E", "评委C")
    assert row["scores_text"] == "（12）、17、18、19、（20）"
    assert bool(row["is_disputed"])
    assert row["evaluators"] == 5
    # Equal scores at the edge: the first and last in evaluator order are dropped.
    ties = result.evaluator_scores
    ties = ties[(ties["unit"] == "甲") & (ties["indicator"] == "巡查")]
    assert ties.loc[ties["is_trimmed"], "evaluator"].tolist() == ["评委A", "评委E"]
    assert ("丁", "巡查") not in detail.index
    assert set(detail.columns) == set(ev.EVALUATOR_DETAIL_COLUMNS) - {"unit", "indicator"}


def test_one_evaluators_repeated_scores_count_once_as_their_mean(small_config: Config) -> None:
    base = worked_example()
    # 评委A scored 甲's 组织建设 twice (18, then 14): once, as (18 + 14) / 2 = 16.
    extra = pd.DataFrame(score_rows("甲", "组织建设", [14]))
    inputs = ev.EvaluationInput(
        2025, "compound", pd.concat([base.scores, extra], ignore_index=True),
        base.adjustments, base.metrics, base.units,
    )  # fmt: skip
    result = ev.evaluate(inputs, small_config)
    row = result.evaluator_detail.set_index(["unit", "indicator"]).loc[("甲", "组织建设")]
    # 12 16 17 19 20: five evaluators, the lowest and highest dropped: (16 + 17 + 19) / 3.
    assert row["evaluators"] == 5
    assert row["aggregate"] == pytest.approx(52 / 3)
    assert row["scores_text"] == "（12）、16、17、19、（20）"
    used = result.evaluator_scores
    assert used[(used["unit"] == "甲") & (used["evaluator"] == "评委A")]["score"].tolist() == [
        16.0,
        19.0,
    ]


@pytest.mark.parametrize("key_count", [10, 10**12])  # counted in an array / by hashing
def test_repeated_keys_are_found_however_many_keys_there_could_be(key_count: int) -> None:
    assert ev._has_repeats(np.array([3, 7, 3], dtype=np.int64), key_count)
    assert not ev._has_repeats(np.array([3, 7, 9], dtype=np.int64), key_count)
    assert not ev._has_repeats(np.zeros(0, dtype=np.int64), key_count)


def test_scores_as_categoricals_rank_as_the_same_scores_as_text(small_config: Config) -> None:
    """The warehouse hands the scores' names over as categoricals, in the order they come: the
    same result as the names as text, whatever the categories' order."""
    base = worked_example()
    coded = base.scores.copy()
    for column in ("unit", "evaluator", "indicator"):
        names = sorted(set(coded[column]), reverse=True)  # not the texts' order
        coded[column] = pd.Categorical(coded[column], categories=[*names, "未用"])
    text = ev.evaluate(base, small_config)
    categorical = ev.evaluate(
        ev.EvaluationInput(2025, "compound", coded, base.adjustments, base.metrics, base.units),
        small_config,
    )
    assert_frame_equal(categorical.table, text.table)
    assert_frame_equal(categorical.evaluator_detail, text.evaluator_detail)
    assert_frame_equal(categorical.evaluator_scores, text.evaluator_scores)
    assert categorical.warnings == text.warnings


def test_fewer_evaluators_than_the_trim_threshold_take_the_plain_mean(
    small_config: Config,
) -> None:
    inputs = ev.EvaluationInput(
        2025,
        "compound",
        pd.DataFrame(score_rows("甲", "组织建设", [12, 20, 19])),
        ev.empty_adjustments(),
        pd.DataFrame([metric_row("甲", 0.9, 0.9)]),
    )
    result = ev.evaluate(inputs, small_config)
    detail = result.evaluator_detail.iloc[0]
    assert detail["aggregate"] == pytest.approx(17)  # (12 + 20 + 19) / 3
    assert detail["method"] == "平均"
    assert detail["trimmed_low_evaluator"] == ""
    assert not result.evaluator_scores["is_trimmed"].any()


def test_breakdown_says_where_each_number_came_from(small_config: Config) -> None:
    result = ev.evaluate(worked_example(), small_config)
    breakdown = result.breakdown.set_index(["unit", "indicator"])
    resolution = breakdown.loc[("乙", "解决率")]
    assert resolution["value"] == pytest.approx(0.84)
    assert resolution["n"] == 50
    assert resolution["points"] == pytest.approx(24)
    assert resolution["explanation"].startswith("解决率 0.840（n=50 次回访）")
    survey = breakdown.loc[("丁", "问卷满意率")]
    assert "20 人作答" in survey["evidence"]
    missing = breakdown.loc[("丁", "巡查")]
    assert bool(missing["is_missing"]) and math.isnan(missing["points"])
    assert "缺少指标" in missing["explanation"]
    trimmed = breakdown.loc[("甲", "组织建设")]
    assert "去掉最高 20（评委C）与最低 12（评委E）后平均 18.00/20" in trimmed["evidence"]
    assert list(result.breakdown.columns) == ev.BREAKDOWN_COLUMNS


def test_table_columns_are_as_documented(small_config: Config) -> None:
    result = ev.evaluate(worked_example(), small_config)
    assert list(result.table.columns) == ev.table_columns(small_config)
    assert ev.table_columns(small_config)[5:11] == [
        "组织建设",
        "巡查",
        "解决率",
        "问卷满意率",
        "党建引领小计",
        "服务质量巡查小计",
    ]


def test_a_unit_only_in_the_scores_is_ranked_and_flagged(small_config: Config) -> None:
    inputs = worked_example()
    extra = pd.DataFrame(score_rows("戊", "组织建设", [20, 20, 20, 20, 20]))
    inputs = ev.EvaluationInput(
        2025,
        "compound",
        pd.concat([inputs.scores, extra], ignore_index=True),
        inputs.adjustments,
        inputs.metrics,
        inputs.units,
    )
    table = ev.evaluate(inputs, small_config).table.set_index("unit")
    assert table.loc["戊", "total"] == pytest.approx(20)
    assert table.loc["戊", "missing_indicators"] == "巡查、解决率、问卷满意率"


def test_unknown_indicators_are_reported_not_scored(small_config: Config) -> None:
    inputs = worked_example()
    extra = pd.DataFrame(score_rows("甲", "不存在的指标", [1, 1, 1, 1, 1]))
    inputs = ev.EvaluationInput(
        2025,
        "compound",
        pd.concat([inputs.scores, extra], ignore_index=True),
        inputs.adjustments,
        inputs.metrics,
        inputs.units,
    )
    result = ev.evaluate(inputs, small_config)
    assert any("不存在的指标" in note for note in result.warnings)
    assert result.table.set_index("unit").loc["甲", "total"] == pytest.approx(96)


@pytest.mark.parametrize(
    ("pool", "expected"),
    [
        (0, (0, 0, 0)),
        (1, (1, 0, 0)),  # round(0.1) = 0, but the first prize has at least one unit
        (3, (1, 0, 1)),  # ends: 1, round(0.9) = 1, round(1.8) = 2
        (4, (1, 0, 1)),  # ends: 1, round(1.2) = 1, round(2.4) = 2
        (5, (1, 1, 1)),  # ends: round(0.5) = 1, round(1.5) = 2, round(3.0) = 3
        (10, (1, 2, 3)),  # exact: 0.1 + 0.2 must not round to 3.0000000000000004 → 4
        (25, (3, 5, 7)),  # ends: round(2.5) = 3, round(7.5) = 8, round(15) = 15
    ],
)
def test_award_counts(pool: int, expected: tuple[int, int, int]) -> None:
    assert tuple(ev.award_counts(pool, CONFIG).values()) == expected


def test_fully_tied_units_across_an_award_boundary_both_get_the_higher_award(
    small_config: Config,
) -> None:
    # Two identical units: N = 2, ends max(1, round(0.4)) = 1, round(1.0) = 1, round(2) = 2.
    scores = [*score_rows("甲", "组织建设", [18] * 5), *score_rows("甲", "巡查", [18] * 5)]
    scores += [*score_rows("乙", "组织建设", [18] * 5), *score_rows("乙", "巡查", [18] * 5)]
    inputs = ev.EvaluationInput(
        2025,
        "compound",
        pd.DataFrame(scores),
        ev.empty_adjustments(),
        pd.DataFrame([metric_row("甲", 0.9, 0.9), metric_row("乙", 0.9, 0.9)]),
    )
    table = ev.evaluate(inputs, small_config).table
    assert table["rank"].tolist() == [1, 1]
    assert table["award"].tolist() == ["一等奖", "一等奖"]
    assert "完全并列" in table["tie_note"].iloc[0]


# --- invariants ------------------------------------------------------------------------------


def random_inputs(
    seed: int, count: int, config: Config = CONFIG, evaluators: int = 5
) -> ev.EvaluationInput:
    """Random inputs for the default indicator system (no adjustments)."""
    rng = np.random.default_rng(seed)
    names = [f"单位{i:03d}" for i in range(count)]
    scores = []
    for indicator in config.indicators:
        if indicator.source != "evaluator":
            continue
        for unit in names:
            for e in range(evaluators):
                share = rng.uniform(0.5, 1.0)
                scores.append(
                    {
                        "unit": unit,
                        "evaluator": f"评委{e}",
                        "indicator": indicator.name,
                        "score": round(share * indicator.points, 1),
                    }
                )
    metrics = pd.DataFrame(
        {
            "unit": names,
            "parent": "东社区",
            "households": rng.integers(30, 2000, count).astype(float),
            "response_rate": rng.uniform(0.8, 1.0, count),
            "resolution_rate": rng.uniform(0.6, 1.0, count),
            "satisfaction_rate": rng.uniform(0.6, 1.0, count),
            "callback_n": rng.integers(10, 500, count),
            "survey_satisfaction_rate": rng.uniform(0.5, 1.0, count),
            "survey_n": rng.integers(30, 100, count),
            "survey_respondents": rng.integers(30, 100, count),
        }
    )
    return ev.EvaluationInput(
        2025, "compound", pd.DataFrame(scores), ev.empty_adjustments(), metrics, tuple(names)
    )


def best_and_rest_inputs(shares: list[list[float]], config: Config = CONFIG) -> ev.EvaluationInput:
    """Unit "最佳" scores full marks and hits every target; the others score `shares` of it
    (each < 1), so 最佳 is strictly best on every indicator."""
    units_ = ["最佳", *[f"其他{i}" for i in range(len(shares))]]
    scores = []
    metric_rows = []
    for u, unit in enumerate(units_):
        row = metric_row(unit, respondents=50)
        for j, indicator in enumerate(config.indicators):
            share = 1.0 if u == 0 else shares[u - 1][j]
            if indicator.source == "evaluator":
                scores.append(
                    {
                        "unit": unit,
                        "evaluator": "评委A",
                        "indicator": indicator.name,
                        "score": share * indicator.points,
                    }
                )
            else:
                assert indicator.floor is not None and indicator.target is not None
                value = indicator.floor + share * (indicator.target - indicator.floor)
                column = ev.METRIC_COLUMNS[(indicator.source, indicator.metric or "")]
                row[column] = value
        metric_rows.append(row)
    return ev.EvaluationInput(
        2025, "compound", pd.DataFrame(scores), ev.empty_adjustments(), pd.DataFrame(metric_rows)
    )


SHARE_ROWS = st.lists(
    st.lists(
        st.floats(0.0, 0.95, allow_nan=False),
        min_size=len(CONFIG.indicators),
        max_size=len(CONFIG.indicators),
    ),
    min_size=1,
    max_size=6,
)


@given(SHARE_ROWS)
@settings(max_examples=40, deadline=None)
def test_a_unit_best_on_every_indicator_ranks_first_under_all_three_methods(
    shares: list[list[float]],
) -> None:
    result = ev.evaluate(best_and_rest_inputs(shares), CONFIG)
    comparison = ev.compare_methods(result)
    ranks = comparison.ranks.set_index("unit")
    for column in ("expert_rank", "entropy_rank", "topsis_rank"):
        assert ranks.loc["最佳", column] == 1
        assert (ranks.drop(index="最佳")[column] > 1).all(), column


@given(SHARE_ROWS, st.integers(0, 5))
@settings(max_examples=30, deadline=None)
def test_veto_means_not_passed_and_no_award_whatever_the_score(
    shares: list[list[float]], vetoed: int
) -> None:
    inputs = best_and_rest_inputs(shares)
    unit = inputs.metrics["unit"].iloc[vetoed % len(inputs.metrics)]
    adjustments = pd.DataFrame(
        [adjustment_row(unit, "评委A", bonus=5, veto=True), adjustment_row(unit, "评委B")]
    )
    inputs = ev.EvaluationInput(2025, "compound", inputs.scores, adjustments, inputs.metrics)
    table = ev.evaluate(inputs, CONFIG).table.set_index("unit")
    assert table.loc[unit, "grade"] == "不合格"
    assert table.loc[unit, "award"] == ""
    assert not table.loc[unit, "is_eligible"]
    assert table.loc[unit, "ineligible_reason"].startswith("一票否决")


@given(st.lists(st.integers(0, 6), min_size=1, max_size=30))
def test_equal_totals_share_the_smallest_rank(totals: list[int]) -> None:
    expected = pd.Series(totals, dtype=float).rank(method="min", ascending=False)
    got = ev._min_ranks(np.array(totals, dtype=float))[0]
    assert got.tolist() == expected.astype(int).tolist()


def test_units_with_identical_inputs_share_a_rank() -> None:
    inputs = random_inputs(7, 5)
    twin_scores = inputs.scores[inputs.scores["unit"] == "单位002"].assign(unit="单位002乙")
    twin_metrics = inputs.metrics[inputs.metrics["unit"] == "单位002"].assign(unit="单位002乙")
    inputs = ev.EvaluationInput(
        2025,
        "compound",
        pd.concat([inputs.scores, twin_scores], ignore_index=True),
        inputs.adjustments,
        pd.concat([inputs.metrics, twin_metrics], ignore_index=True),
    )
    table = ev.evaluate(inputs, CONFIG).table.set_index("unit")
    assert table.loc["单位002", "rank"] == table.loc["单位002乙", "rank"]
    assert table["rank"].tolist().count(table.loc["单位002", "rank"]) == 2


@given(st.integers(0, 2**32 - 1))
@settings(max_examples=15, deadline=None)
def test_shuffling_the_input_rows_changes_nothing(seed: int) -> None:
    base = worked_example()
    rng = np.random.default_rng(seed)

    def shuffled(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.iloc[rng.permutation(len(frame))].reset_index(drop=True)

    other = ev.EvaluationInput(
        2025,
        "compound",
        shuffled(base.scores),
        shuffled(base.adjustments),
        shuffled(base.metrics),
        tuple(rng.permutation(list(base.units))),
    )
    with clean_environment():
        config = load_config()
    first, second = ev.evaluate(base, config), ev.evaluate(other, config)
    assert_frame_equal(first.table, second.table)
    assert_frame_equal(first.breakdown, second.breakdown)
    assert_frame_equal(first.evaluator_detail, second.evaluator_detail)
    assert_frame_equal(first.evaluator_scores, second.evaluator_scores)


# --- what-if ----------------------------------------------------------------------------------


def test_rescore_with_the_default_weights_reproduces_the_result() -> None:
    result = ev.evaluate(random_inputs(3, 40), CONFIG)
    again = ev.rescore(result, ev.default_weights(CONFIG))
    assert_frame_equal(again.table, result.table)
    assert_frame_equal(again.breakdown, result.breakdown)


def test_rescore_scales_points_and_reranks(small_config: Config) -> None:
    result = ev.evaluate(worked_example(), small_config)
    # 组织建设 20 → 10, 巡查 20 → 30: points scale by 0.5 and 1.5.
    after = ev.rescore(result, {"组织建设": 10, "巡查": 30})
    table = after.table.set_index("unit")
    assert table.loc["甲", "组织建设"] == pytest.approx(9)  # 18 / 20 × 10
    assert table.loc["甲", "巡查"] == pytest.approx(28.5)  # 19 / 20 × 30
    # 乙: 8.5 + 27 + 24 + 23 = 82.5; 丙: 8 + 25.5 + 27 + 20 + 2 = 82.5; still tied.
    assert table.loc["乙", "total"] == pytest.approx(82.5)
    assert table.loc["丙", "total"] == pytest.approx(82.5)
    assert after.weights["组织建设"] == 10
    changes = ev.rank_changes(result, after).set_index("unit")
    assert changes.loc["甲", "moved_by"] == 0
    assert list(changes.columns) == [
        "rank_before",
        "rank_after",
        "moved_by",
        "total_before",
        "total_after",
        "award_before",
        "award_after",
    ]
    # The evaluators' own aggregates do not change with the weights.
    assert_frame_equal(after.evaluator_detail, result.evaluator_detail)


def test_rank_changes_counts_moves_up_as_positive(small_config: Config) -> None:
    result = ev.evaluate(worked_example(), small_config)
    # All weight on 问卷满意率 but 1 point each elsewhere: 丁 (0.90 → full marks) moves up.
    after = ev.rescore(result, {"组织建设": 1, "巡查": 1, "解决率": 1, "问卷满意率": 97})
    changes = ev.rank_changes(result, after).set_index("unit")
    # 丁: 12/20 + 0 + 0.5 + 97 − 1 = 97.1 (rank 1, from 4); 甲: 0.9 + 0.95 + 1 + 77.6 + 5.
    assert changes.loc["丁", "rank_after"] == 1
    assert changes.loc["丁", "moved_by"] == 3
    assert changes.loc["丁", "total_after"] == pytest.approx(0.6 + 0.5 + 97 - 1)


def test_rescore_rejects_weights_that_do_not_sum_to_the_total(small_config: Config) -> None:
    result = ev.evaluate(worked_example(), small_config)
    with pytest.raises(ValueError, match="之和应为 100"):
        ev.rescore(result, {"组织建设": 30})
    with pytest.raises(ValueError, match="未知指标"):
        ev.rescore(result, {"没有这个": 0})


def test_normalised_weights_scale_sliders_to_the_total(small_config: Config) -> None:
    weights = ev.normalised_weights({"组织建设": 40}, small_config)  # 40 + 20 + 30 + 30 = 120
    assert weights == pytest.approx(
        {"组织建设": 40 / 1.2, "巡查": 20 / 1.2, "解决率": 25.0, "问卷满意率": 25.0}
    )
    result = ev.rescore(ev.evaluate(worked_example(), small_config), weights)
    assert sum(result.weights.values()) == pytest.approx(100)


# --- robustness ---------------------------------------------------------------------------------


def test_robustness_is_reproducible_for_a_seed_and_differs_for_another(
    tmp_path: Path,
) -> None:
    result = ev.evaluate(random_inputs(11, 30), CONFIG)
    first = ev.robustness(result)
    again = ev.robustness(result)
    assert_frame_equal(first.table, again.table)
    assert_frame_equal(first.weights, again.weights)
    other = ev.robustness(result, config_from(tmp_path, "[evaluation]\nrobustness_seed = 7\n"))
    assert not first.weights.equals(other.weights)
    assert not first.table.equals(other.table)
    assert (first.draws, first.spread, first.seed) == (1000, 0.2, 2026)
    assert list(first.table.columns) == ev.ROBUSTNESS_COLUMNS


def test_perturbed_weights_stay_within_the_spread_and_sum_to_the_total() -> None:
    weights = ev.default_weights(CONFIG)
    drawn = ev.perturbed_weights(weights, 500, 0.2, 1)
    assert drawn.sum(axis=1).to_numpy() == pytest.approx(100)
    ratio = drawn / pd.Series(weights)
    # Before renormalising each factor is in [0.8, 1.2]; the sum factor is too, so ≤ 1.5×.
    assert ratio.min().min() >= 0.8 / 1.2 - 1e-12
    assert ratio.max().max() <= 1.2 / 0.8 + 1e-12
    assert ratio.std().min() > 0.05


def test_robustness_without_spread_reproduces_the_ranks(tmp_path: Path) -> None:
    result = ev.evaluate(random_inputs(5, 25), CONFIG)
    config = config_from(tmp_path, "[evaluation]\nrobustness_spread = 0.0\nrobustness_draws = 50\n")
    table = ev.robustness(result, config).table
    assert (table["median_rank"] == table["rank"]).all()
    assert (table["rank_p05"] == table["rank"]).all()
    assert (table["rank_p95"] == table["rank"]).all()
    assert not table["crosses_tier"].any()
    pool = table[table["is_in_award_pool"]]
    assert (pool["best_award"] == pool["award"]).all()
    assert (pool["same_award_share"] == 1.0).all()


def test_robustness_marks_a_winner_whose_band_crosses_a_tier(small_config: Config) -> None:
    # 乙 and 丙 are tied at 82 (丙 二等奖 by the tie-break, 乙 三等奖): any weight change
    # separates them either way, so both bands cross the 二等奖/三等奖 boundary; 甲 (96) and
    # 丁 (not in the pool) do not.
    result = ev.evaluate(worked_example(), small_config)
    table = ev.robustness(result).table.set_index("unit")
    assert table["crosses_tier"].to_dict() == {"甲": False, "丙": True, "乙": True, "丁": False}
    assert table.loc["丙", "best_award"] == "二等奖"
    assert table.loc["乙", "worst_award"] == "三等奖"
    assert 0 < table.loc["乙", "same_award_share"] < 1
    assert pd.isna(table.loc["丁", "pool_position"])


def test_robustness_ranks_match_a_draw_by_draw_computation(tmp_path: Path) -> None:
    config = config_from(tmp_path, "[evaluation]\nrobustness_draws = 40\nrobustness_seed = 3\n")
    result = ev.evaluate(random_inputs(9, 12), CONFIG)
    robust = ev.robustness(result, config)
    shares = result.shares.reindex(result.table["unit"]).fillna(0.0)
    adjustment = (result.table["bonus"] - result.table["penalty"]).to_numpy()
    ranks = []
    for _, weights in robust.weights.iterrows():  # one draw at a time, with pandas' ranking
        totals = (shares * weights).sum(axis=1).to_numpy() + adjustment
        ranks.append(pd.Series(totals.round(6)).rank(method="min", ascending=False).to_numpy())
    by_draw = np.array(ranks)
    expected = np.quantile(by_draw, [0.05, 0.5, 0.95], axis=0, method="inverted_cdf")
    assert robust.table["rank_p05"].tolist() == expected[0].astype(int).tolist()
    assert robust.table["median_rank"].tolist() == expected[1].astype(int).tolist()
    assert robust.table["rank_p95"].tolist() == expected[2].astype(int).tolist()


# --- alternatives ---------------------------------------------------------------------------


def test_entropy_weights_by_hand() -> None:
    # A = 1, 2, 3 → min–max 0, ½, 1 → p = 0, ⅓, ⅔; C = 0, 0, 1 → p = 0, 0, 1 (e = 0);
    # B is constant: no information, weight 0.
    matrix = pd.DataFrame({"A": [1.0, 2.0, 3.0], "B": [5.0, 5.0, 5.0], "C": [0.0, 0.0, 1.0]})
    e_a = -(1 / 3 * math.log(1 / 3) + 2 / 3 * math.log(2 / 3)) / math.log(3)
    d_a, d_c = 1 - e_a, 1.0
    weights = ev.entropy_weights(matrix)
    assert weights["A"] == pytest.approx(d_a / (d_a + d_c))
    assert weights["B"] == 0
    assert weights["C"] == pytest.approx(d_c / (d_a + d_c))
    assert ev.entropy_weights(pd.DataFrame({"A": [1.0, 1.0], "B": [2.0, 2.0]})).tolist() == [
        0.5,
        0.5,
    ]


def test_topsis_by_hand() -> None:
    # Column norms are 1; weighted rows (0.75, 0) and (0, 0.25); ideal (0.75, 0.25), worst 0.
    matrix = pd.DataFrame({"A": [1.0, 0.0], "B": [0.0, 1.0]})
    closeness = ev.topsis(matrix, {"A": 3, "B": 1})
    assert closeness.tolist() == pytest.approx([0.75, 0.25])
    assert ev.topsis(pd.DataFrame({"A": [1.0, 1.0]}), {"A": 1}).tolist() == [0.5, 0.5]


def test_rank_correlations_match_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(4)
    for _ in range(20):
        a = rng.integers(0, 8, 25).astype(float)
        b = a + rng.integers(-3, 4, 25)
        assert ev.spearman(a, b) == pytest.approx(stats.spearmanr(a, b).statistic)
        assert ev.kendall_tau_b(a, b) == pytest.approx(stats.kendalltau(a, b).statistic)
    assert math.isnan(ev.spearman([1, 1, 1], [1, 2, 3]))


def test_compare_methods_frames() -> None:
    result = ev.evaluate(random_inputs(2, 30), CONFIG)
    comparison = ev.compare_methods(result)
    assert list(comparison.ranks.columns) == [
        "unit",
        "expert_rank",
        "entropy_score",
        "entropy_rank",
        "topsis_closeness",
        "topsis_rank",
    ]
    assert comparison.ranks["unit"].tolist() == result.table["unit"].tolist()
    assert comparison.correlations[["method_a", "method_b"]].values.tolist() == [
        ["expert", "entropy"],
        ["expert", "topsis"],
        ["entropy", "topsis"],
    ]
    assert comparison.correlations[["spearman", "kendall"]].abs().le(1).all().all()
    assert comparison.entropy_weights.sum() == pytest.approx(1)
    assert comparison.expert_weights["问卷满意率"] == pytest.approx(0.25)


# --- levels, year over year, 红黑榜, rules ------------------------------------------------------


def test_roll_up_weights_compounds_by_households() -> None:
    compounds = pd.DataFrame(
        [
            {**metric_row("东一", 0.9, 0.85, respondents=40, households=100), "street": "甲街道"},
            {**metric_row("东二", 0.8, 0.80, respondents=30, households=300), "street": "甲街道"},
            {**metric_row("东三", math.nan, math.nan, 0, 0, households=50), "street": "甲街道"},
            {
                **metric_row("西一", 0.7, 0.9, respondents=10, households=math.nan),
                "parent": "西社区",
            },
        ]
    )
    compounds["property_company"] = ["安居物业", "乐家物业", "安居物业", "安居物业"]
    community = ev.roll_up_metrics(compounds, "community", CONFIG).set_index("unit")
    east = community.loc["东社区"]
    assert east["resolution_rate"] == pytest.approx((100 * 0.9 + 300 * 0.8) / 400)
    assert east["survey_satisfaction_rate"] == pytest.approx((100 * 0.85 + 300 * 0.8) / 400)
    assert east["resolution_rate_compounds"] == 2
    assert (east["households"], east["compounds"], east["survey_respondents"]) == (450, 3, 70)
    assert east["parent"] == "甲街道"
    assert not east["survey_is_small_sample"]
    # 西社区: no household count, so the rate is weighted by its n (one compound: its own).
    west = community.loc["西社区"]
    assert west["resolution_rate"] == pytest.approx(0.7)
    assert west["resolution_rate_weighting"] == "按样本量加权"
    assert bool(west["survey_is_small_sample"])
    company = ev.roll_up_metrics(compounds, "property_company", CONFIG).set_index("unit")
    # 安居物业: 东一 (100 households, 0.9) and 东三 (no rate); 西一 has no household count.
    assert company.loc["安居物业", "resolution_rate"] == pytest.approx(0.9)
    assert company.loc["乐家物业", "resolution_rate"] == pytest.approx(0.8)


def test_year_over_year(small_config: Config) -> None:
    current = ev.evaluate(worked_example(), small_config)
    previous_inputs = worked_example()
    previous_inputs = ev.EvaluationInput(
        2024,
        "compound",
        previous_inputs.scores[previous_inputs.scores["unit"] != "乙"],
        previous_inputs.adjustments.iloc[0:0],
        previous_inputs.metrics[previous_inputs.metrics["unit"] != "乙"],
    )
    previous = ev.evaluate(previous_inputs, small_config)
    # Last year without adjustments: 甲 91 (1), 丙 80 (2), 丁 57 (3).
    change = ev.year_over_year(current, previous.ranking()).set_index("unit")
    assert change.loc["甲", "total_change"] == pytest.approx(96 - 91)
    assert change.loc["丙", "rank_change"] == 0  # 2 → 2
    assert change.loc["丁", "rank_change"] == -1  # 3 → 4
    assert pd.isna(change.loc["乙", "previous_total"])
    assert pd.isna(change.loc["乙", "rank_change"])


def test_red_black_lists_take_eligible_units_only(small_config: Config) -> None:
    result = ev.evaluate(worked_example(), small_config)
    # 丁 is not eligible; of the three eligible (甲 > 丙 > 乙) each list takes one, so a
    # list of two cannot put 丙 on the red list and leave the black list short.
    red, black = ev.red_black(result, 2)
    assert red["unit"].tolist() == ["甲"]
    assert black["unit"].tolist() == ["乙"]
    assert red["list_rank"].tolist() == [1]
    red_default, black_default = ev.red_black(result)  # config.red_black_list_size = 5
    assert (red_default["unit"].tolist(), black_default["unit"].tolist()) == (["甲"], ["乙"])
    assert len(ev.red_black(result, 0)[0]) == 0


def test_rules_text_prints_the_tie_break_order(small_config: Config) -> None:
    text = "\n".join(ev.rules_text(small_config))
    assert "诉求办理、居民满意度、党建引领" in text
    assert "上限 5 分" in text


def test_metric_columns_are_the_unit_tables() -> None:
    assert ev.METRIC_COLUMNS == units.COMPOSITE_SOURCES


def test_kendall_tau_b_equals_the_pairs_counted_out() -> None:
    """τ-b = (concordant − discordant) ÷ √((pairs untied in x) × (pairs untied in y)), every
    pair written out, with ties on either side and both."""
    rng = np.random.default_rng(9)
    for _ in range(10):
        a = rng.integers(0, 6, 30).astype(float)
        b = a + rng.integers(-2, 3, 30)
        signs = [
            (np.sign(a[i] - a[j]), np.sign(b[i] - b[j]))
            for i in range(len(a))
            for j in range(i + 1, len(a))
        ]
        concordance = sum(sx * sy for sx, sy in signs)
        untied_a = sum(1 for sx, _ in signs if sx != 0)
        untied_b = sum(1 for _, sy in signs if sy != 0)
        expected = concordance / math.sqrt(untied_a * untied_b)
        assert ev.kendall_tau_b(a, b) == pytest.approx(expected, abs=1e-12)
        with pytest.MonkeyPatch.context() as patch:  # the count for many units, on the same
            patch.setattr(ev, "PAIRWISE_UNITS", 2)
            assert ev.kendall_tau_b(a, b) == pytest.approx(expected, abs=1e-12)
    assert math.isnan(ev.kendall_tau_b([2, 2, 2], [1, 2, 3]))


def _adjustments_one_unit_at_a_time(frame: pd.DataFrame, config: Config) -> pd.DataFrame:
    """The module rule for 加分/扣分/一票否决, written out per unit with plain Python lists."""
    rows = []
    for unit in sorted({str(u) for u in frame["unit"]}):
        own = frame[frame["unit"].astype(str) == unit]
        bonuses = [float(b) for b in own["bonus"] if not pd.isna(b)]
        penalties = [float(p) for p in own["penalty"] if not pd.isna(p)]
        # The mean as numpy sums an array of the recorded values (its pairwise order).
        recorded = float(np.array(bonuses).sum() / len(bonuses)) if bonuses else 0.0
        bonus = min(recorded, config.max_bonus)
        penalty = float(np.array(penalties).sum() / len(penalties)) if penalties else 0.0
        vetoes = zip(own["evaluator"], own["is_veto"], strict=True)
        vetoers = sorted({str(e) for e, v in vetoes if not pd.isna(v) and bool(v)})
        parts = []
        if recorded:
            part = f"加分 {bonus:g}"
            if recorded > config.max_bonus:
                part += f"（记录 {recorded:g}，上限 {config.max_bonus:g}）"
            if len(set(bonuses)) > 1:
                listed = "、".join(f"{v:g}" for v in sorted(set(bonuses)))
                part += f"（各评委记录不一：{listed}，取平均）"
            parts.append(part)
        if penalty:
            part = f"扣分 {penalty:g}"
            if len(set(penalties)) > 1:
                listed = "、".join(f"{v:g}" for v in sorted(set(penalties)))
                part += f"（各评委记录不一：{listed}，取平均）"
            parts.append(part)
        if vetoers:
            parts.append(f"一票否决（{'、'.join(vetoers)}）")
        notes = sorted({str(n) for n in own["note"] if isinstance(n, str) and n.strip()})
        if notes:
            parts.append("备注：" + "；".join(notes))
        rows.append((unit, bonus, penalty, bool(vetoers), "；".join(parts)))
    return pd.DataFrame(
        rows, columns=["unit", "bonus", "penalty", "is_veto", "adjustment_note"]
    ).set_index("unit")


ADJUSTMENT_VALUES = st.sampled_from([math.nan, 0.0, 0.1, 0.2, 0.7, 1.5, 3.3, 6.0, 2.5])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 12),
            st.integers(0, 6),
            ADJUSTMENT_VALUES,
            ADJUSTMENT_VALUES,
            st.sampled_from([True, False, None]),
            st.sampled_from([None, "", " ", "整改到位", "表扬"]),
        ),
        max_size=120,
    )
)
def test_adjustments_of_many_units_at_once_are_each_units_own(rows: list[tuple[Any, ...]]) -> None:
    frame = pd.DataFrame(
        {
            "unit": [f"小区{u}" for u, *_ in rows],
            "evaluator": [f"评委{e}" for _, e, *_ in rows],
            "bonus": [r[2] for r in rows],
            "penalty": [r[3] for r in rows],
            "is_veto": pd.array([r[4] for r in rows], dtype="boolean"),
            "note": pd.Series([r[5] for r in rows], dtype=object),
        },
        columns=ev.ADJUSTMENT_COLUMNS,
    )
    assert_frame_equal(
        ev._adjustments_per_unit(frame, CONFIG),
        _adjustments_one_unit_at_a_time(frame, CONFIG),
        check_exact=True,
        check_dtype=False,  # (no rows: the expected frame's columns are object)
        check_index_type=False,
    )


def test_grades_of_many_units_at_once_are_each_units_own_at_the_cut_offs() -> None:
    cuts = np.array([float(cut) for cut in CONFIG.grades.values()])
    # Totals at, just over and just under every cut-off (where rounding to 6 decimals decides),
    # and ones that are not finite, each with and without 一票否决.
    offsets = np.array([0.0, 4e-7, 5e-7, 6e-7, 1e-6, 1.1e-6, 0.01])
    near = (cuts[:, None] + np.r_[offsets, -offsets][None, :]).ravel()
    total = np.r_[near, [math.nan, math.inf, -math.inf, 0.0, 100.0]]
    total = np.r_[total, total]
    is_veto = np.r_[np.zeros(len(total) // 2, bool), np.ones(len(total) // 2, bool)]
    expected = []
    for value, veto in zip(total.tolist(), is_veto.tolist(), strict=True):
        rounded = round(value, 6)
        passed = [name for name, cut in CONFIG.grades.items() if rounded >= cut]
        expected.append(ev.NOT_PASSED if veto or not passed else passed[0])
    assert ev._grades(total, is_veto, CONFIG) == expected
    assert expected.count(ev.NOT_PASSED) > len(total) // 2  # (the vetoed half and more)
