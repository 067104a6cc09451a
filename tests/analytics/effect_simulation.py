"""Simulated staggered signings with an effect that grows after signing (issue 14's panel).

Shared by tests/analytics/test_effect.py and bench/bench_effect.py. Each draw: 80 compounds,
20 never signed, 60 signing two a month over 30 months, in a 48-month panel; compound levels,
a common trend, ticket counts that differ by compound and month, noise that shrinks with the
tickets behind a figure, and an effect of `slope` per month since signing, up to 12 months.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

MONTHS = 48
FIRST_SIGNING = 12  # months 12…41: 30 signing months
NEVER_SIGNED = 20
SIGNED = 60
SLOPE = -0.6
CAP = 12
WINDOW = 12
PERIOD_ZERO = 24_000  # month numbers as the warehouse counts them (year × 12 + month − 1)


def planted_effect(relative: np.ndarray, slope: float = SLOPE, cap: int = CAP) -> np.ndarray:
    """The planted effect at `relative` months since signing: slope × min(r, cap) from month 1,
    half a month's worth in the signing month, 0 before (and for never-signed rows, NaN)."""
    relative = np.asarray(relative, dtype=float)
    effect = slope * np.minimum(relative, cap)
    effect = np.where(relative == 0, slope / 2, effect)
    return np.where(np.nan_to_num(relative, nan=-1.0) >= 0, effect, 0.0)


def staggered_panel(seed: int, slope: float = SLOPE) -> pd.DataFrame:
    """unit, period, onset (NaN = never signed), outcome, tickets, effect (the planted one)."""
    rng = np.random.default_rng(seed)
    units = NEVER_SIGNED + SIGNED
    trend = np.cumsum(rng.normal(0.05, 0.4, MONTHS))
    level = rng.normal(30.0, 6.0, units)
    size = rng.lognormal(3.0, 0.5, units)
    onset = np.full(units, np.nan)
    onset[NEVER_SIGNED:] = FIRST_SIGNING + np.arange(SIGNED) // 2
    unit_index = np.repeat(np.arange(units), MONTHS)
    period = np.tile(np.arange(MONTHS), units)
    tickets = rng.poisson(size[unit_index])
    relative = period - onset[unit_index]
    effect = planted_effect(relative, slope)
    noise = rng.normal(0.0, 1.5, len(period)) / np.sqrt(np.maximum(tickets, 1) / 20.0)
    outcome = level[unit_index] + trend[period] + effect + noise
    frame = pd.DataFrame(
        {
            "unit": [f"c{u:03d}" for u in unit_index],
            "period": PERIOD_ZERO + period,
            "onset": PERIOD_ZERO + onset[unit_index],
            "outcome": outcome,
            "tickets": tickets,
            "effect": effect,
        }
    )
    return frame[frame["tickets"] > 0].reset_index(drop=True)


def true_average_effect(panel: pd.DataFrame, window: int = WINDOW) -> float:
    """The ticket-weighted planted effect over signed compound-months 1…window after signing:
    what the before/after figure should recover."""
    relative = panel["period"] - panel["onset"]
    after = panel[relative.between(1, window)]
    return float(np.average(after["effect"], weights=after["tickets"]))
