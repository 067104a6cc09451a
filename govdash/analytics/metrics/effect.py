"""治理成效: did compounds do better once they signed (or became 红色物业)? Estimators (pure).

Two comparisons, both observational (DOMAIN.md §1: signing is not assigned at random):

- With versus without (cross-section, the chosen period): each compound's figure over the
  period; the difference of means between compounds that had signed before the period and
  compounds that had not, taken within each stratum (compound type × size band) and combined
  weighted by the stratum's number of compounds. Strata lacking two compounds on either side are
  left out (no variance). Interval: normal, from the stratum variances (Welch form).
- Before and after (difference-in-differences on a compound × month panel, all months of the
  data): y = compound effect + month effect + β · after + ε, where `after` marks a signed
  compound's months 1…W after its signing month and its months −W…−1 are its "before"; the
  signing month itself (part before, part after) is left out. Compounds that never signed are
  the comparison, and a signed compound's own months before signing serve as not-yet-signed
  comparison for the others. Each compound-month is weighted by the count behind its figure
  (tickets, the rate's denominator, survey answers), so β is a per-ticket change. Standard
  errors are clustered by compound (statsmodels CRV1, t with G − 1 degrees of freedom). The
  event study replaces β · after by one coefficient per month relative to signing (−W…W,
  reference −1; half-years for the survey) and tests the months before signing jointly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from itertools import pairwise

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats

from govdash.i18n import t

Z_95 = 1.959963984540054
REFERENCE_BIN = -1
SURVEY_BIN_MONTHS = 6  # surveys come in half-year waves: the event study bins by half-year
UNKNOWN_STRATUM = "（未填写）"
UNKNOWN_SIZE = "户数未知"
ALL_STRATA = "全部"

# Estimate statuses.
ESTIMATED = "estimated"
TOO_SMALL = "too_small"  # fewer compounds on a side than config.effect_min_compounds
NO_DATA = "no_data"


@dataclass(frozen=True)
class EffectMetric:
    name: str  # column of the panels
    source: str  # tickets | survey
    weight: str  # the count behind the figure: weights a compound-month in the before/after fit
    scale: float  # shown in points (rates × 100) or minutes
    higher_is_better: bool


EFFECT_METRICS: tuple[EffectMetric, ...] = (
    EffectMetric("response_median_minutes", "tickets", "tickets", 1.0, False),
    EffectMetric("response_p90_minutes", "tickets", "tickets", 1.0, False),
    EffectMetric("response_on_time_rate", "tickets", "response_on_time_n", 100.0, True),
    EffectMetric("resolution_on_time_rate", "tickets", "resolution_on_time_n", 100.0, True),
    EffectMetric("response_rate", "tickets", "callback_recorded_n", 100.0, True),
    EffectMetric("resolution_rate", "tickets", "callback_recorded_n", 100.0, True),
    EffectMetric("satisfaction_rate", "tickets", "callback_n", 100.0, True),
    EffectMetric("survey_satisfaction_rate", "survey", "n", 100.0, True),
)
METRICS_BY_NAME = {metric.name: metric for metric in EFFECT_METRICS}


@dataclass(frozen=True)
class Estimate:
    """A difference with its 95% interval; n are compounds (observations: rows used)."""

    estimate: float
    low: float
    high: float
    std_error: float
    n_treated: int
    n_control: int
    n_observations: int

    @property
    def is_estimated(self) -> bool:
        return not math.isnan(self.estimate)

    def scaled(self, factor: float) -> Estimate:
        return replace(
            self,
            estimate=self.estimate * factor,
            low=self.low * factor,
            high=self.high * factor,
            std_error=self.std_error * factor,
        )


def _no_estimate(n_treated: int = 0, n_control: int = 0, n_observations: int = 0) -> Estimate:
    return Estimate(math.nan, math.nan, math.nan, math.nan, n_treated, n_control, n_observations)


# --- with versus without: the stratified difference --------------------------------------------


def size_band_labels(bands: Sequence[int]) -> list[str]:
    """Labels of the household bands cut at `bands`: (100, 300) → <100, 100–299, ≥300."""
    edges = list(bands)
    if not edges:
        return [ALL_STRATA]
    labels = [f"<{edges[0]}"]
    labels += [f"{low}–{high - 1}" for low, high in pairwise(edges)]
    return [*labels, f"≥{edges[-1]}"]


def size_band(households: pd.Series, bands: Sequence[int]) -> pd.Series:
    """Each compound's household band (labels of size_band_labels); unknown counts → 户数未知."""
    labels = size_band_labels(bands)
    values = pd.to_numeric(households, errors="coerce").astype(float)
    index = np.searchsorted(np.asarray(bands, dtype=float), values.to_numpy(), side="right")
    banded = pd.Series([labels[i] for i in index], index=households.index, dtype=object)
    return banded.where(values.notna(), UNKNOWN_SIZE)


def localise_strata(strata: pd.DataFrame, language: str) -> pd.DataFrame:
    """Stratum labels with the page's words for a blank type, an unknown size and "all"; the
    compound types themselves are the register's own values and stay as written."""
    if strata.empty:
        return strata
    words = {
        UNKNOWN_STRATUM: t("effect.stratum.unknown", language),
        UNKNOWN_SIZE: t("effect.stratum.unknown_size", language),
        ALL_STRATA: t("effect.stratum.all", language),
    }
    labelled = strata.copy()
    labelled["stratum"] = [
        " · ".join(words.get(part, part) for part in str(label).split(" · "))
        for label in labelled["stratum"]
    ]
    return labelled


STRATUM_COLUMNS = [
    "stratum",
    "n_treated",
    "mean_treated",
    "n_control",
    "mean_control",
    "difference",
    "low",
    "high",
    "weight",
    "is_used",
]


def stratified_difference(
    units: pd.DataFrame,
    value: str,
    treated: str = "is_treated",
    strata: Sequence[str] = ("compound_type", "size_band"),
) -> tuple[Estimate, pd.DataFrame]:
    """Treated minus control mean of `value`, within strata, combined by stratum size.

    One row per unit; `treated` is boolean; rows with a missing value are left out. A stratum is
    used when each side has two or more units; its weight is its number of units ÷ the units
    of all used strata. Variance Σ w² (s²_t ÷ n_t + s²_c ÷ n_c); 95% interval ± 1.96 SE.
    Returns the estimate (n = units in used strata) and a table per stratum with each used
    stratum's own difference and 95% interval.
    """
    frame = units.dropna(subset=[value]).copy()
    if frame.empty:
        return _no_estimate(), pd.DataFrame(columns=STRATUM_COLUMNS)
    key = frame[list(strata)].astype(object).where(frame[list(strata)].notna(), UNKNOWN_STRATUM)
    frame["stratum"] = key.astype(str).agg(" · ".join, axis=1) if strata else ALL_STRATA
    frame["side"] = np.where(frame[treated].astype(bool), "treated", "control")
    stats = frame.groupby(["stratum", "side"])[value].agg(["count", "mean", "var"]).unstack("side")
    table = pd.DataFrame(index=stats.index)
    for side in ("treated", "control"):
        for stat, name in (("count", "n"), ("mean", "mean"), ("var", "var")):
            column = (stat, side)
            table[f"{name}_{side}"] = stats[column] if column in stats.columns else np.nan
    table["n_treated"] = table["n_treated"].fillna(0).astype("int64")
    table["n_control"] = table["n_control"].fillna(0).astype("int64")
    table["difference"] = table["mean_treated"] - table["mean_control"]
    table["is_used"] = (table["n_treated"] >= 2) & (table["n_control"] >= 2)
    stratum_error = np.sqrt(
        table["var_treated"] / table["n_treated"] + table["var_control"] / table["n_control"]
    ).where(table["is_used"])
    table["low"] = table["difference"] - Z_95 * stratum_error
    table["high"] = table["difference"] + Z_95 * stratum_error
    size = (table["n_treated"] + table["n_control"]).where(table["is_used"], 0)
    total = float(size.sum())
    table["weight"] = size / total if total > 0 else 0.0
    table = table.reset_index().sort_values("stratum", kind="stable").reset_index(drop=True)
    used = table[table["is_used"]]
    if used.empty:
        return _no_estimate(
            int(table["n_treated"].sum()), int(table["n_control"].sum()), len(frame)
        ), table[STRATUM_COLUMNS]
    weights = used["weight"].to_numpy()
    estimate = float(np.sum(weights * used["difference"].to_numpy()))
    variance = float(
        np.sum(
            weights**2
            * (
                used["var_treated"].to_numpy() / used["n_treated"].to_numpy()
                + used["var_control"].to_numpy() / used["n_control"].to_numpy()
            )
        )
    )
    error = math.sqrt(variance)
    result = Estimate(
        estimate,
        estimate - Z_95 * error,
        estimate + Z_95 * error,
        error,
        int(used["n_treated"].sum()),
        int(used["n_control"].sum()),
        int(used["n_treated"].sum() + used["n_control"].sum()),
    )
    return result, table[STRATUM_COLUMNS]


# --- before and after: difference-in-differences and the event study ---------------------------


def month_number(day: date | pd.Timestamp) -> int:
    """Months since year 0, so consecutive months differ by 1."""
    return int(day.year) * 12 + int(day.month) - 1


def panel_sample(
    panel: pd.DataFrame,
    outcome: str,
    window: int,
    keep_signing_month: bool,
    weight: str | None = None,
) -> pd.DataFrame:
    """The rows a before/after comparison uses, with `relative` months and `is_treated_unit`.

    panel: unit, period (month number), onset (month number of signing; NaN = never signed),
    outcome. Signed units keep their months −window…window (the signing month only if asked)
    and count only with at least one month before and one after; never-signed units keep the
    months that signed units are observed in.
    """
    columns = ["unit", "period", "onset", outcome] + ([weight] if weight else [])
    frame = panel.dropna(subset=[outcome])[list(dict.fromkeys(columns))].copy()
    if weight:
        frame = frame[frame[weight] > 0]
    frame["is_treated_unit"] = frame["onset"].notna()
    frame["relative"] = (frame["period"] - frame["onset"]).where(frame["is_treated_unit"])
    treated = frame[frame["is_treated_unit"] & (frame["relative"].abs() <= window)]
    if not keep_signing_month:
        treated = treated[treated["relative"] != 0]
    sides = treated.groupby("unit")["relative"].agg(["min", "max"])
    both = sides.index[(sides["min"] <= -1) & (sides["max"] >= 1)]
    treated = treated[treated["unit"].isin(both)]
    control = frame[~frame["is_treated_unit"] & frame["period"].isin(set(treated["period"]))]
    return pd.concat([treated, control], ignore_index=True)


def _group_means(values: np.ndarray, codes: np.ndarray, weights: np.ndarray) -> np.ndarray:
    groups = int(codes.max()) + 1
    weighted = values * weights[:, None]
    totals = np.column_stack(
        [
            np.bincount(codes, weights=weighted[:, j], minlength=groups)
            for j in range(values.shape[1])
        ]
    )
    return totals / np.bincount(codes, weights=weights, minlength=groups)[:, None]


def _absorb_two_ways(
    values: np.ndarray, units: np.ndarray, periods: np.ndarray, weights: np.ndarray
) -> np.ndarray:
    """Columns with the compound and month effects projected out (weighted), by alternating
    demeaning until the group means vanish (the method of reghdfe; exact at convergence)."""
    result = values.astype(float).copy()
    scale = max(float(np.abs(result).max()), 1.0)
    for _ in range(10_000):
        unit_means = _group_means(result, units, weights)
        result -= unit_means[units]
        period_means = _group_means(result, periods, weights)
        result -= period_means[periods]
        if max(np.abs(unit_means).max(), np.abs(period_means).max()) < 1e-11 * scale:
            break
    return result


@dataclass(frozen=True)
class _Fit:
    coefficients: np.ndarray
    covariance: np.ndarray  # cluster-robust, small-sample factor included
    clusters: int

    @property
    def errors(self) -> np.ndarray:
        return np.sqrt(np.diag(self.covariance))

    def intervals(self) -> np.ndarray:
        """Rows low and high of the 95% intervals: t with clusters − 1 degrees of freedom."""
        half = float(stats.t.ppf(0.975, max(self.clusters - 1, 1))) * self.errors
        return np.vstack([self.coefficients - half, self.coefficients + half])

    def joint_p_value(self, columns: Sequence[int]) -> float:
        """Wald test that the given coefficients are all 0: F(q, clusters − 1)."""
        chosen = list(columns)
        if not chosen:
            return math.nan
        b = self.coefficients[chosen]
        v = self.covariance[np.ix_(chosen, chosen)]
        statistic = float(b @ np.linalg.pinv(v) @ b) / len(chosen)
        return float(stats.f.sf(statistic, len(chosen), max(self.clusters - 1, 1)))


def _two_way_fit(
    sample: pd.DataFrame, outcome: str, regressors: pd.DataFrame, weight: str | None
) -> _Fit:
    """(W)LS of outcome on regressors + compound and month effects, clustered by compound.

    Both sets of effects are absorbed (same slopes as dummies, by Frisch–Waugh–Lovell) and
    statsmodels fits the slopes with CRV1 cluster-robust errors; its small-sample factor is
    then widened to count the month effects as estimated parameters, while compound effects,
    nested in the clusters, are not counted (Stata's xtreg, fe convention). Intervals use t
    with compounds − 1 degrees of freedom. Codes are sorted, so nothing depends on the row
    order.
    """
    unit_codes, _ = pd.factorize(sample["unit"], sort=True)
    period_codes, _ = pd.factorize(sample["period"], sort=True)
    n = len(sample)
    weights = np.ones(n) if weight is None else sample[weight].to_numpy(dtype=float)
    values = np.column_stack(
        [sample[outcome].to_numpy(dtype=float), regressors.to_numpy(dtype=float)]
    )
    absorbed = _absorb_two_ways(values, unit_codes, period_codes, weights)
    k = regressors.shape[1]
    fit = sm.WLS(absorbed[:, 0], absorbed[:, 1:], weights=weights, hasconst=False).fit(
        cov_type="cluster", cov_kwds={"groups": unit_codes}, use_t=True
    )
    month_effects = int(period_codes.max())
    widen = (n - k) / max(n - k - month_effects, 1)
    return _Fit(
        np.asarray(fit.params), np.asarray(fit.cov_params()) * widen, int(unit_codes.max()) + 1
    )


def difference_in_differences(
    panel: pd.DataFrame, outcome: str, window: int = 12, weight: str | None = None
) -> Estimate:
    """β of the two-way fixed-effects regression (module docstring) with its clustered 95%
    interval; n_treated = signed units with months on both sides, n_control = never-signed
    units, n_observations = unit-months used. With `weight` (a count column, e.g. the rate's
    denominator) each unit-month counts in proportion to it: the per-ticket effect."""
    sample = panel_sample(panel, outcome, window, keep_signing_month=False, weight=weight)
    treated_units = int(sample.loc[sample["is_treated_unit"], "unit"].nunique())
    control_units = int(sample.loc[~sample["is_treated_unit"], "unit"].nunique())
    if treated_units == 0 or control_units == 0 or sample["unit"].nunique() < 3:
        return _no_estimate(treated_units, control_units, len(sample))
    after = (sample["is_treated_unit"] & (sample["relative"] >= 1)).astype(float)
    fit = _two_way_fit(sample, outcome, after.to_frame("after"), weight)
    intervals = fit.intervals()
    return Estimate(
        float(fit.coefficients[0]),
        float(intervals[0][0]),
        float(intervals[1][0]),
        float(fit.errors[0]),
        treated_units,
        control_units,
        len(sample),
    )


EVENT_COLUMNS = ["relative", "estimate", "low", "high", "n_treated", "is_reference"]


@dataclass(frozen=True)
class EventStudy:
    """table: EVENT_COLUMNS, one row per relative period. pre_trend_p: p-value of the joint
    test that every period before the reference is 0 (a small value warns that signed and
    comparison compounds were already drifting apart before signing); NaN with none."""

    table: pd.DataFrame
    pre_trend_p: float
    pre_periods: int


def event_study(
    panel: pd.DataFrame,
    outcome: str,
    window: int = 12,
    bin_months: int = 1,
    weight: str | None = None,
) -> EventStudy:
    """One coefficient per period relative to signing, −window…window, reference −1.

    With bin_months > 1 (half-yearly surveys) months are grouped: relative bin =
    floor(relative month ÷ bin_months), so bin −1 holds the bin_months before signing; only
    whole bins within the window are kept (−12…11 months → bins −2…1 for half-years).
    Table columns: relative (bin), estimate, low, high (95%, clustered by compound), n_treated
    (signed units observed in that bin), is_reference (the −1 row: 0 by construction).
    """
    sample = panel_sample(panel, outcome, window, keep_signing_month=True, weight=weight)
    if bin_months > 1:
        last = (window // bin_months) * bin_months  # first month of an incomplete bin
        sample = sample[~(sample["relative"] >= last)]
    treated = sample["is_treated_unit"]
    if not treated.any() or (~treated).sum() == 0:
        return EventStudy(pd.DataFrame(columns=EVENT_COLUMNS), math.nan, 0)
    bins = np.floor(sample["relative"] / bin_months)
    present = sorted(int(b) for b in bins[treated].unique())
    estimated = [b for b in present if b != REFERENCE_BIN]
    regressors = pd.DataFrame(
        {f"bin_{b}": (treated & (bins == b)).astype(float) for b in estimated}, index=sample.index
    )
    fit = _two_way_fit(sample, outcome, regressors, weight)
    intervals = fit.intervals()
    counts = sample[treated].groupby(bins[treated])["unit"].nunique()
    rows = [
        {
            "relative": b,
            "estimate": float(fit.coefficients[i]),
            "low": float(intervals[0][i]),
            "high": float(intervals[1][i]),
            "n_treated": int(counts.get(b, 0)),
            "is_reference": False,
        }
        for i, b in enumerate(estimated)
    ]
    if REFERENCE_BIN in present:
        rows.append(
            {
                "relative": REFERENCE_BIN,
                "estimate": 0.0,
                "low": 0.0,
                "high": 0.0,
                "n_treated": int(counts.get(REFERENCE_BIN, 0)),
                "is_reference": True,
            }
        )
    frame = pd.DataFrame(rows, columns=EVENT_COLUMNS).sort_values("relative")
    frame["relative"] = frame["relative"].astype("int64")
    before = [i for i, b in enumerate(estimated) if b < REFERENCE_BIN]
    return EventStudy(frame.reset_index(drop=True), fit.joint_p_value(before), len(before))
