"""Metric arithmetic of DOMAIN.md §4, as pure functions of numbers and DataFrames (no I/O)."""

from __future__ import annotations

import math
from typing import overload

import numpy as np
import numpy.typing as npt
import pandas as pd

from govdash.core.config import Config

FloatArray = npt.NDArray[np.float64]

# Backlog aging buckets (DOMAIN.md §4): upper bound in days (exclusive) and label, in order.
AGING_BUCKETS: tuple[tuple[float, str], ...] = (
    (1.0, "0–1天"),
    (3.0, "1–3天"),
    (7.0, "3–7天"),
    (math.inf, ">7天"),
)
AGING_LABELS = tuple(label for _, label in AGING_BUCKETS)


def red_black_size(units: int, n: int) -> int:
    """Length of each side of a 红黑榜 of `units` units: n, or half the units (rounded down)
    when there are fewer than 2n, so the two lists are equally long and never share a unit."""
    return max(0, min(int(n), int(units) // 2))


def _as_float(value: float | None) -> float:
    return math.nan if value is None else float(value)


def wilson_bounds(
    successes: npt.ArrayLike, n: npt.ArrayLike, z: float = 1.96
) -> tuple[FloatArray, FloatArray]:
    """Wilson score interval, element-wise; NaN where n is 0 or unknown.

    `successes` may be fractional (a weighted rate × an effective sample size).
    """
    count = np.asarray(n, dtype=float)
    hits = np.asarray(successes, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        safe_n = np.where(count > 0, count, np.nan)
        p = hits / safe_n
        z2 = z * z
        denominator = 1 + z2 / safe_n
        centre = (p + z2 / (2 * safe_n)) / denominator
        half = z / denominator * np.sqrt(np.maximum(p * (1 - p) / safe_n + z2 / (4 * safe_n**2), 0))
        low = np.clip(centre - half, 0.0, 1.0)
        high = np.clip(centre + half, 0.0, 1.0)
    return low, high


def wilson_interval(successes: float, n: float, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of successes/n (8/10 → 0.4902, 0.9433); (NaN, NaN) for n = 0."""
    low, high = wilson_bounds(successes, n, z)
    return float(low), float(high)


def _three_rate_arrays(
    contacted: npt.ArrayLike,
    resolved: npt.ArrayLike,
    satisfied: npt.ArrayLike,
    basic_satisfied: npt.ArrayLike,
    n: npt.ArrayLike,
    config: Config,
    recorded_n: npt.ArrayLike,
) -> dict[str, FloatArray]:
    count = np.asarray(n, dtype=float)
    recorded = np.asarray(recorded_n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        safe_n = np.where(count > 0, count, np.nan)
        safe_recorded = np.where(recorded > 0, recorded, np.nan)
        response = np.asarray(contacted, dtype=float) / safe_recorded
        resolution = np.asarray(resolved, dtype=float) / safe_recorded
        satisfaction = (
            np.asarray(satisfied, dtype=float)
            + config.basic_satisfied_weight * np.asarray(basic_satisfied, dtype=float)
        ) / safe_n
    weights = config.three_rate_weights
    composite = (
        weights["response"] * response
        + weights["resolution"] * resolution
        + weights["satisfaction"] * satisfaction
    )
    return {
        "response_rate": response,
        "resolution_rate": resolution,
        "satisfaction_rate": satisfaction,
        "three_rate_composite": composite,
    }


def three_rates(
    contacted: float | None,
    resolved: float | None,
    satisfied: float | None,
    basic_satisfied: float | None,
    n: float | None,
    config: Config,
    recorded_n: float | None = None,
) -> dict[str, float]:
    """The 12345 三率 over N valid callbacks (DOMAIN.md §4).

    响应率 = contacted ÷ N; 解决率 = resolved ÷ N; 满意率 = (满意 + k × 基本满意) ÷ N with
    k = config.basic_satisfied_weight; 三率综合 = the config's weighted sum. A count given as
    None (not recorded at all) makes its rate and the composite NaN; N = 0 makes all NaN.
    `recorded_n` (default N) is the part of N from sheets that record 是否联系/是否解决: where
    N also holds fallback tickets (closed, with a 满意度, from sheets without callback
    columns), 响应率 and 解决率 are taken over the tickets that could record them.
    Keys: response_rate, resolution_rate, satisfaction_rate, three_rate_composite, n.
    """
    count = _as_float(n) if n is not None else 0.0
    arrays = _three_rate_arrays(
        _as_float(contacted),
        _as_float(resolved),
        _as_float(satisfied),
        _as_float(basic_satisfied),
        count,
        config,
        count if recorded_n is None else _as_float(recorded_n),
    )
    rates = {name: float(value) for name, value in arrays.items()}
    rates["n"] = float(n or 0)
    return rates


def add_three_rates(
    frame: pd.DataFrame,
    config: Config,
    contacted: str = "contacted",
    resolved: str = "resolved",
    satisfied: str = "satisfied",
    basic_satisfied: str = "basic_satisfied",
    n: str = "callback_n",
    recorded_n: str | None = "callback_recorded_n",
) -> pd.DataFrame:
    """`three_rates` for every row of a frame of counts; adds the four rate columns."""
    count = frame[n].fillna(0).astype(float)
    recorded = count if recorded_n is None else frame[recorded_n].fillna(0).astype(float)
    arrays = _three_rate_arrays(
        frame[contacted].astype(float),
        frame[resolved].astype(float),
        frame[satisfied].astype(float),
        frame[basic_satisfied].astype(float),
        count,
        config,
        recorded,
    )
    result = frame.copy(deep=False)  # copy-on-write: the caller's frame never changes
    for name, values in arrays.items():
        result[name] = values
    return result


def rate(numerator: npt.ArrayLike, denominator: npt.ArrayLike) -> FloatArray:
    """numerator ÷ denominator element-wise, NaN where the denominator is 0 or missing."""
    bottom = np.asarray(denominator, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(numerator, dtype=float) / np.where(bottom > 0, bottom, np.nan)


@overload
def survey_index(mean_score: float) -> float: ...
@overload
def survey_index(mean_score: pd.Series) -> pd.Series: ...
def survey_index(mean_score: float | pd.Series) -> float | pd.Series:
    """Satisfaction index 0–100 from a mean 1–5 score: (mean − 1) ÷ 4 × 100."""
    return (mean_score - 1) / 4 * 100


def change(current: float | None, previous: float | None) -> float | None:
    """Relative change (current − previous) ÷ |previous|, e.g. 0.25 for 80 → 100.

    None when either value is missing or previous is 0 (no meaningful ratio). For rates use
    `difference` (percentage points) instead.
    """
    if current is None or previous is None:
        return None
    if math.isnan(current) or math.isnan(previous) or previous == 0:
        return None
    return (current - previous) / abs(previous)


def difference(current: float | None, previous: float | None) -> float | None:
    """Absolute change current − previous (for rates: in points of the rate); None if missing."""
    if current is None or previous is None or math.isnan(current) or math.isnan(previous):
        return None
    return current - previous


def without_negative_zero(value: float, decimals: int) -> float:
    """`value`, or 0.0 when it rounds to zero at `decimals` places: a figure shown as "−0.0"
    would read as a fall that did not happen."""
    return 0.0 if round(value, decimals) == 0 else value


def without_negative_zeros(frame: pd.DataFrame, decimals: int = 4) -> pd.DataFrame:
    """A copy of `frame` whose float values that round to zero at `decimals` places are 0.0:
    a table shows −1e-14 (a difference of two equal totals) as "-0"."""
    result = frame.copy()
    for column in result.columns:
        values = result[column]
        if pd.api.types.is_float_dtype(values.dtype):
            rounds_to_zero = values.round(decimals).eq(0).fillna(False).astype(bool)
            result[column] = values.mask(rounds_to_zero, 0.0)
    return result


def shown_difference(
    current: float | None, previous: float | None, decimals: int, scale: float = 1.0
) -> float | None:
    """(current − previous) × `scale` rounded to the `decimals` places it is shown with; 0.0
    (never −0.0) when the change rounds to zero, so the page can show it as no change.
    None when either value is missing. E.g. rates 0.8234 → 0.8231, scale 100, 1 place: 0.0."""
    change = difference(current, previous)
    if change is None:
        return None
    return without_negative_zero(round(change * scale, decimals), decimals)


def aging_bucket(days: float) -> str:
    """Backlog aging bucket of an age in days: 0–1, 1–3, 3–7, >7 (lower bound inclusive)."""
    if math.isnan(days):
        raise ValueError("age in days is NaN")
    for upper, label in AGING_BUCKETS:
        if days < upper:
            return label
    return AGING_BUCKETS[-1][1]


def hide_small_groups(frame: pd.DataFrame, n_column: str, min_size: int) -> pd.DataFrame:
    """Rows with at least `min_size` records (DOMAIN.md §6: publish no group under 5)."""
    keep = frame[n_column].fillna(0) >= min_size
    return frame.loc[keep].reset_index(drop=True)


def indicator_points(
    value: npt.ArrayLike, floor: float, target: float, points: float
) -> FloatArray:
    """Points of a metric indicator: points × clamp((x − floor) ÷ (target − floor), 0, 1)."""
    x = np.asarray(value, dtype=float)
    return points * np.clip((x - floor) / (target - floor), 0.0, 1.0)
