"""Metric arithmetic (govdash.analytics.metrics.rates) against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from govdash.analytics.metrics import rates as metrics
from govdash.analytics.metrics.rates import (
    AGING_LABELS,
    add_three_rates,
    aging_bucket,
    change,
    difference,
    hide_small_groups,
    indicator_points,
    survey_index,
    three_rates,
    wilson_bounds,
    wilson_interval,
)
from tests.analytics.warehouse_data import shipped_config

CONFIG = shipped_config()


def test_wilson_interval_of_8_out_of_10_is_the_textbook_value() -> None:
    low, high = wilson_interval(8, 10)
    assert (round(low, 4), round(high, 4)) == (0.4902, 0.9433)


@pytest.mark.parametrize(
    ("successes", "n", "expected"),
    [
        (0, 10, (0.0, 0.2775)),  # never below 0
        (10, 10, (0.7225, 1.0)),  # never above 1
        (50, 100, (0.4038, 0.5962)),
    ],
)
def test_wilson_interval_at_the_edges(
    successes: int, n: int, expected: tuple[float, float]
) -> None:
    low, high = wilson_interval(successes, n)
    assert (round(low, 4), round(high, 4)) == expected


def test_wilson_interval_without_answers_is_nan() -> None:
    low, high = wilson_interval(0, 0)
    assert math.isnan(low) and math.isnan(high)


def test_wilson_bounds_work_element_wise() -> None:
    low, high = wilson_bounds([8, 0, 5], [10, 0, 5])
    assert round(low[0], 4) == 0.4902 and round(high[0], 4) == 0.9433
    assert math.isnan(low[1]) and math.isnan(high[1])
    assert high[2] == 1.0


def test_three_rates_with_basic_satisfied_weighted_by_k() -> None:
    # N = 20: 18 contacted, 15 resolved, 10 满意, 5 基本满意, 5 不满意; k = 0.9.
    rates = three_rates(18, 15, 10, 5, 20, CONFIG)
    assert rates["response_rate"] == pytest.approx(0.9)
    assert rates["resolution_rate"] == pytest.approx(0.75)
    assert rates["satisfaction_rate"] == pytest.approx((10 + 0.9 * 5) / 20)  # 0.725
    assert rates["three_rate_composite"] == pytest.approx(0.2 * 0.9 + 0.4 * 0.75 + 0.4 * 0.725)
    assert rates["n"] == 20


def test_three_rates_follow_the_config_weights() -> None:
    config = shipped_config()
    custom = type(config)(
        **{
            **{f: getattr(config, f) for f in config.__dataclass_fields__},
            "basic_satisfied_weight": 0.5,
            "three_rate_weights": {"response": 0.5, "resolution": 0.25, "satisfaction": 0.25},
        }
    )
    rates = three_rates(10, 5, 4, 2, 10, custom)
    assert rates["satisfaction_rate"] == pytest.approx(0.5)
    assert rates["three_rate_composite"] == pytest.approx(0.5 * 1.0 + 0.25 * 0.5 + 0.25 * 0.5)


def test_three_rates_without_callbacks_are_nan_not_zero() -> None:
    rates = three_rates(0, 0, 0, 0, 0, CONFIG)
    assert all(math.isnan(rates[k]) for k in ("response_rate", "satisfaction_rate"))
    unrecorded = three_rates(None, None, 3, 1, 4, CONFIG)
    assert math.isnan(unrecorded["response_rate"]) and math.isnan(unrecorded["resolution_rate"])
    assert unrecorded["satisfaction_rate"] == pytest.approx(3.9 / 4)
    assert math.isnan(unrecorded["three_rate_composite"])


def test_three_rates_take_contact_and_resolution_over_the_recording_tickets() -> None:
    # N = 4, but only 1 ticket came from a sheet that records 是否联系/是否解决.
    rates = three_rates(1, 1, 2, 1, 4, CONFIG, recorded_n=1)
    assert rates["response_rate"] == 1.0 and rates["resolution_rate"] == 1.0
    assert rates["satisfaction_rate"] == pytest.approx(2.9 / 4)


def test_add_three_rates_matches_the_scalar_function_row_by_row() -> None:
    frame = pd.DataFrame(
        {
            "contacted": [18.0, np.nan, 0.0],
            "resolved": [15.0, np.nan, 0.0],
            "satisfied": [10, 3, 0],
            "basic_satisfied": [5, 1, 0],
            "callback_n": [20, 4, 0],
            "callback_recorded_n": [20, 0, 0],
        }
    )
    result = add_three_rates(frame, CONFIG)
    first = three_rates(18, 15, 10, 5, 20, CONFIG)
    assert result.loc[0, "three_rate_composite"] == pytest.approx(first["three_rate_composite"])
    assert math.isnan(result.loc[1, "response_rate"])
    assert result.loc[1, "satisfaction_rate"] == pytest.approx(3.9 / 4)
    assert result.loc[2, ["response_rate", "satisfaction_rate"]].isna().all()


def test_survey_index_maps_1_to_0_and_5_to_100() -> None:
    assert survey_index(1.0) == 0.0
    assert survey_index(5.0) == 100.0
    assert survey_index(3.875) == pytest.approx(71.875)
    series = survey_index(pd.Series([1.0, 3.0]))
    assert series.tolist() == [0.0, 50.0]


def test_change_is_relative_and_difference_absolute() -> None:
    assert change(100, 80) == pytest.approx(0.25)
    assert change(60, 80) == pytest.approx(-0.25)
    assert change(5, 0) is None
    assert change(None, 3) is None
    assert change(float("nan"), 3) is None
    assert difference(0.8, 0.6) == pytest.approx(0.2)
    assert difference(0.8, float("nan")) is None


@pytest.mark.parametrize(
    ("days", "bucket"),
    [
        (0, "0–1天"),
        (0.99, "0–1天"),
        (1, "1–3天"),
        (2.5, "1–3天"),
        (3, "3–7天"),
        (6.99, "3–7天"),
        (7, ">7天"),
        (400, ">7天"),
        (-0.1, "0–1天"),
    ],
)
def test_aging_buckets_include_their_lower_bound(days: float, bucket: str) -> None:
    assert aging_bucket(days) == bucket
    assert bucket in AGING_LABELS


def test_aging_bucket_refuses_nan() -> None:
    with pytest.raises(ValueError):
        aging_bucket(float("nan"))


def test_hide_small_groups_drops_groups_under_the_minimum() -> None:
    frame = pd.DataFrame({"unit": ["a", "b", "c", "d"], "n": [5, 4, None, 12]})
    kept = hide_small_groups(frame, "n", 5)
    assert kept["unit"].tolist() == ["a", "d"]
    assert kept.index.tolist() == [0, 1]


def test_indicator_points_are_linear_between_floor_and_target() -> None:
    points = indicator_points([0.5, 0.6, 0.775, 0.95, 1.0, np.nan], 0.6, 0.95, 12)
    assert points[:5].tolist() == pytest.approx([0, 0, 6, 12, 12])
    assert math.isnan(points[5])


@pytest.mark.parametrize(
    ("units", "n", "expected"), [(20, 5, 5), (10, 5, 5), (9, 5, 4), (3, 5, 1), (1, 5, 0), (0, 5, 0)]
)
def test_red_black_size_balances_short_lists(units: int, n: int, expected: int) -> None:
    assert metrics.red_black_size(units, n) == expected


@pytest.mark.parametrize(
    ("value", "decimals", "expected"),
    [(-0.04, 1, 0.0), (-0.0, 0, 0.0), (0.04, 1, 0.0), (-0.05001, 1, -0.05001), (3.2, 0, 3.2)],
)
def test_without_negative_zero(value: float, decimals: int, expected: float) -> None:
    result = metrics.without_negative_zero(value, decimals)
    assert result == expected
    assert math.copysign(1.0, result) == math.copysign(1.0, expected)  # −0.0 == 0.0 otherwise


def test_shown_difference_is_zero_when_the_change_rounds_to_zero() -> None:
    # Rates 0.8234 → 0.8231 are −0.03 points: shown with one place, no change at all.
    change = metrics.shown_difference(0.8231, 0.8234, decimals=1, scale=100)
    assert change == 0.0 and math.copysign(1.0, change) == 1.0
    assert metrics.shown_difference(0.8231, 0.8294, decimals=1, scale=100) == pytest.approx(-0.6)
    assert metrics.shown_difference(12, 12, decimals=0) == 0.0
    assert metrics.shown_difference(112, 90, decimals=0) == 22.0
    assert metrics.shown_difference(25.04, 25.0, decimals=1) == 0.0
    assert metrics.shown_difference(math.nan, 3.0, decimals=1) is None
    assert metrics.shown_difference(None, 3.0, decimals=1) is None


def test_without_negative_zeros_in_a_table() -> None:
    frame = pd.DataFrame(
        {
            "change": [-1e-14, -0.00004, 0.5, np.nan, -0.2],
            "nullable": pd.array([-1e-9, None, 2.0, 0.0, -0.0], dtype="Float64"),
            "name": ["a", "b", "c", "d", "e"],
        }
    )
    cleaned = metrics.without_negative_zeros(frame)
    signs = [math.copysign(1.0, v) for v in cleaned["change"] if not math.isnan(v)]
    assert signs == [1.0, 1.0, 1.0, -1.0]
    assert cleaned["change"].tolist()[:3] == [0.0, 0.0, 0.5] and cleaned["change"].iloc[4] == -0.2
    nullable = cleaned["nullable"]
    assert nullable.isna().tolist() == [False, True, False, False, False]
    assert [math.copysign(1.0, float(v)) for v in nullable.dropna()] == [1.0] * 4
    assert cleaned["name"].tolist() == frame["name"].tolist()
    assert frame["change"].iloc[0] == -1e-14  # the input is left alone
