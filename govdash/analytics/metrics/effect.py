"""治理成效: did compounds do better once they signed (or became 红色物业)? Estimators (pure).

Two comparisons, both observational (DOMAIN.md §1: signing is not assigned at random):

- With versus without (cross-section, the chosen period): each compound's figure over the
  period; the difference of means between compounds that had signed before the period and
  compounds that had not, taken within each stratum (compound type × size band) and combined
  weighted by the stratum's number of compounds. Strata lacking two compounds on either side are
  left out (no variance). Interval: normal, from the stratum variances (Welch form).
- Before and after, on a compound × month panel over all months of the data. The headline is
  heterogeneity-robust (`robust_effect`): every signed compound-month 1…W after signing is
  compared with what its compound would have shown without signing — its own level before
  signing moved by the month effects of compounds that have not signed — and the differences
  are averaged over compounds × months after signing, each compound-month weighted by the count
  behind its figure (tickets, the rate's denominator; survey answers), so the ATT is a
  per-ticket change. With never-signed controls (the default) these are Callaway and
  Sant'Anna's group-time effects against never-treated units with the month before signing as
  base; with not-yet-signed controls, the imputation estimator of Borusyak, Jaravel and
  Spiess. Both are Gardner's two-stage fit as pyfixest's `did2s` defines it, errors clustered
  by compound, computed here in time linear in compound-months (`_two_stage`).
  The event path gives the same average per month relative to signing, and its months before
  signing are tested jointly (pre-trend). The plain two-way fixed-effects regression with one
  "after" dummy (`difference_in_differences`, pyfixest `feols`'s fit, computed directly) is
  kept as a labelled comparison: with staggered signing and effects that grow, already-signed
  compounds serve as controls for later signers and pull it toward zero (Goodman-Bacon 2021).
"""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from itertools import pairwise
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import special
from scipy.sparse import coo_matrix

from govdash.i18n import t

if TYPE_CHECKING:  # pyfixest is imported where a fit needs it: seconds to import (numba)
    from pyfixest.estimation.models.feols_ import Feols

Z_95 = 1.959963984540054
# pyfixest's fits run with every warning silenced. `warnings.catch_warnings` swaps the
# process's filters, not the thread's: two fits at once (two sessions of one server, or a
# page's halves side by side) could restore each other's "ignore" for good. One at a time.
_QUIET_FIT = threading.Lock()
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
    if strata:
        joined = key[strata[0]].astype(str)
        for part in strata[1:]:
            joined = joined + " · " + key[part].astype(str)
        frame["stratum"] = joined
    else:
        frame["stratum"] = ALL_STRATA
    frame["side"] = np.where(frame[treated].astype(bool), "treated", "control")
    stats = frame.groupby(["stratum", "side"])[value].agg(["count", "mean", "var"]).unstack("side")
    # The table's columns as arrays, made into a frame once (column by column, the frame's
    # own arithmetic on the same numbers: a fifth of the cost, eight metrics a page).
    columns: dict[str, np.ndarray] = {}
    for side in ("treated", "control"):
        for stat, name in (("count", "n"), ("mean", "mean"), ("var", "var")):
            found = (stat, side) in stats.columns
            values = stats[(stat, side)].to_numpy(float) if found else np.full(len(stats), np.nan)
            if name == "n":
                values = np.nan_to_num(values, nan=0.0).astype("int64")
            columns[f"{name}_{side}"] = values
    n_treated, n_control = columns["n_treated"], columns["n_control"]
    difference = columns["mean_treated"] - columns["mean_control"]
    is_used = (n_treated >= 2) & (n_control >= 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        spread = columns["var_treated"] / n_treated + columns["var_control"] / n_control
        stratum_error = np.where(is_used, np.sqrt(spread), np.nan)
    size = np.where(is_used, n_treated + n_control, 0)
    total = float(size.sum())
    columns |= {
        "difference": difference,
        "is_used": is_used,
        "low": difference - Z_95 * stratum_error,
        "high": difference + Z_95 * stratum_error,
        "weight": size / total if total > 0 else np.zeros(len(size)),
    }
    table = pd.DataFrame(columns, index=stats.index)
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


# --- before and after: the robust estimator, the TWFE comparison, the event study -------------


def month_number(day: date | pd.Timestamp) -> int:
    """Months since year 0, so consecutive months differ by 1."""
    return int(day.year) * 12 + int(day.month) - 1


ROBUST = "robust"
TWFE = "twfe"
METHODS = (ROBUST, TWFE)
NEVER = "never"  # comparison: never-signed compounds only (Callaway–Sant'Anna's default)
NOT_YET = "not_yet"  # … and signed compounds' months before they sign (imputation)
CONTROLS = (NEVER, NOT_YET)
FIRST_AFTER = 1  # the signing month itself is part before, part after: left out
MIN_COHORT_COMPOUNDS = 2  # a signing cohort with fewer compounds: its own effects rest on one


def window_rows(panel: pd.DataFrame, outcome: str, window: int, weight: str | None) -> pd.DataFrame:
    """Rows with a figure (and a positive count), `relative` months, signed rows within ±window:
    what the before/after estimators start from. A report fitting several of them on one
    metric computes it once and hands it to each (`rows=`); nothing changes it."""
    columns = ["unit", "period", "onset", outcome] + ([weight] if weight else [])
    # The few columns first: dropping rows from the panel's every column cost more.
    frame = panel[list(dict.fromkeys(columns))].dropna(subset=[outcome])
    if weight:
        frame = frame[frame[weight] > 0]
    frame["is_treated_unit"] = frame["onset"].notna()
    frame["relative"] = (frame["period"] - frame["onset"]).where(frame["is_treated_unit"])
    keep = ~frame["is_treated_unit"] | (frame["relative"].abs() <= window)
    return frame[keep]


def panel_sample(
    panel: pd.DataFrame,
    outcome: str,
    window: int,
    keep_signing_month: bool,
    weight: str | None = None,
    rows: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The rows a before/after comparison uses, with `relative` months and `is_treated_unit`.

    panel: unit, period (month number), onset (month number of signing; NaN = never signed),
    outcome. Signed units keep their months −window…window (the signing month only if asked)
    and count only with at least one month before and one after; never-signed units keep the
    months that signed units are observed in. rows: window_rows of the same arguments, when
    already computed.
    """
    frame = window_rows(panel, outcome, window, weight) if rows is None else rows
    treated = frame[frame["is_treated_unit"]]
    if not keep_signing_month:
        treated = treated[treated["relative"] != 0]
    sides = treated.groupby("unit")["relative"].agg(["min", "max"])
    both = sides.index[(sides["min"] <= -1) & (sides["max"] >= 1)]
    treated = treated[treated["unit"].isin(both)]
    control = frame[~frame["is_treated_unit"] & frame["period"].isin(set(treated["period"]))]
    return pd.concat([treated, control], ignore_index=True)


EVENT_COLUMNS = ["relative", "estimate", "low", "high", "n_treated", "is_reference"]
COHORT_COLUMNS = ["cohort", "n_compounds", "n_used"]


@dataclass(frozen=True)
class EventStudy:
    """table: EVENT_COLUMNS, one row per relative period. pre_trend_p: p-value of the joint
    test that every period before the reference is 0 (a small value warns that signed and
    comparison compounds were already drifting apart before signing); NaN with none."""

    table: pd.DataFrame
    pre_trend_p: float
    pre_periods: int


def _no_events() -> EventStudy:
    return EventStudy(pd.DataFrame(columns=EVENT_COLUMNS), math.nan, 0)


@dataclass(frozen=True)
class Diagnostics:
    """What a careful reader checks beside the robust figure.

    cohorts: COHORT_COLUMNS, one row per signing month (cohort, a month number): signed
    compounds with data, and those the estimate uses. small_cohorts: cohorts using fewer than
    MIN_COHORT_COMPOUNDS compounds. signed / left_out: signed compounds with data in the window,
    and those left out for want of months on both sides of signing (or, with never-signed
    controls, a month before signing in a month the comparison compounds cover).
    controls_per_month: never-signed compounds with data in each month that has signed
    compound-months after signing (their month effects carry the comparison).
    """

    cohorts: pd.DataFrame
    small_cohorts: int
    signed: int
    left_out: int
    never_signed: int
    controls_per_month: pd.Series

    def thin_months(self, minimum: int) -> int:
        """Months after signing whose never-signed comparison has fewer than `minimum`."""
        return int((self.controls_per_month < minimum).sum())

    @property
    def left_out_share(self) -> float:
        return self.left_out / self.signed if self.signed else math.nan


@dataclass(frozen=True)
class RobustEffect:
    """The heterogeneity-robust before/after figure: the overall ATT, its event-time path, and
    the diagnostics."""

    estimate: Estimate
    events: EventStudy
    diagnostics: Diagnostics
    control: str


def _bins(relative: pd.Series, bin_months: int) -> pd.Series:
    return np.floor(relative / bin_months).astype("int64")


def _robust_design(
    panel: pd.DataFrame,
    outcome: str,
    window: int,
    weight: str | None,
    control: str,
    bin_months: int,
    first_after: int,
    rows: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, Diagnostics]:
    """Rows for the two-stage fit and the diagnostics.

    Columns added: w (the weight, 1 without one), bin (relative period: months, or half-years
    for surveys), is_treated (rows the first stage must not see), is_after (months
    FIRST_AFTER…window after signing: the rows the ATT averages). Only months in which
    never-signed compounds have data are kept, so every month effect is estimated.

    Never-signed controls: a signed compound's rows, except those of its last period with data
    before signing (its base: −1 when observed), are "treated": its own level comes from the
    base alone and month effects from never-signed compounds alone, which is Callaway and
    Sant'Anna's ATT(g, t) against never-treated units with base period g − 1. Not-yet-signed
    controls: only months after signing are treated, so months before signing also inform the
    month effects (the imputation estimator of Borusyak, Jaravel and Spiess).
    """
    if control not in CONTROLS:
        raise ValueError(f"control must be one of {CONTROLS}, got {control!r}")
    frame = window_rows(panel, outcome, window, weight) if rows is None else rows
    # The rows' fate is decided on whole columns and the frame cut once (each cut of a city's
    # 700,000 compound-months copied every column).
    unit, period = frame["unit"].to_numpy(), frame["period"].to_numpy()
    relative = frame["relative"].to_numpy(float)  # NaN: a never-signed compound
    is_treated_unit = frame["is_treated_unit"].to_numpy(bool)
    keep = ~((relative >= 0) & (relative <= first_after - 1))
    if bin_months > 1:
        keep &= ~(relative >= (window // bin_months) * bin_months)  # an incomplete last bin
    never_periods = pd.unique(period[keep & ~is_treated_unit])
    signed = keep & is_treated_unit
    signed_units = frame.loc[signed, ["unit", "onset"]].drop_duplicates("unit")
    keep &= pd.Index(never_periods).get_indexer(period) >= 0
    bins = np.where(
        is_treated_unit,
        np.floor(np.nan_to_num(relative, nan=0.0) / bin_months).astype("int64"),
        0,
    )
    before = keep & is_treated_unit & (relative < 0)
    base_bin = pd.Series(bins[before]).groupby(unit[before]).max()
    has_after = pd.unique(unit[keep & is_treated_unit & (relative >= first_after)])
    used = base_bin.index.intersection(pd.Index(has_after))
    keep &= ~is_treated_unit | (pd.Index(used).get_indexer(unit) >= 0)
    frame = frame[keep].copy()
    frame["w"] = frame[weight].astype(float) if weight else 1.0
    frame["bin"] = bins[keep]
    treated = frame["is_treated_unit"]
    if control == NEVER:
        is_base = frame["bin"] == frame["unit"].map(base_bin)
        frame["is_treated"] = treated & ~(is_base & (frame["relative"] < 0))
    else:
        frame["is_treated"] = treated & (frame["relative"] >= 0)
    frame["is_after"] = treated & frame["relative"].between(first_after, window)
    cohorts = (
        signed_units.assign(is_used=signed_units["unit"].isin(used))
        .groupby("onset")["is_used"]
        .agg(["size", "sum"])
        .reset_index()
    )
    cohorts.columns = pd.Index(COHORT_COLUMNS)
    cohorts = cohorts.astype("int64")
    diagnostics = Diagnostics(
        cohorts=cohorts,
        small_cohorts=int(
            ((cohorts["n_used"] > 0) & (cohorts["n_used"] < MIN_COHORT_COMPOUNDS)).sum()
        ),
        signed=len(signed_units),
        left_out=len(signed_units) - len(used),
        never_signed=int(frame.loc[~treated, "unit"].nunique()),
        controls_per_month=frame[~treated]
        .groupby("period")["unit"]
        .nunique()
        .reindex(sorted(set(frame.loc[frame["is_after"], "period"])), fill_value=0),
    )
    return frame, diagnostics


def _singleton_split(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Untreated rows alone in their compound or month, split into two rows of half weight:
    the positions of the rows to fit (every row of `frame`, then those alone once more) and
    their weights.

    pyfixest drops singleton fixed effects before the first stage, which would leave a signed
    compound whose level rests on one base month unimputed; two half-weight copies fit the
    same (weighted least squares sums w·e²) and add the same cluster score.
    """
    w = frame["w"].to_numpy(float)
    untreated = ~frame["is_treated"].to_numpy(bool)
    units = pd.factorize(frame["unit"])[0]
    periods = pd.factorize(frame["period"])[0]
    if (units < 0).any() or (periods < 0).any():  # a missing compound or month: no group
        counted = frame.assign(untreated=untreated.astype(int))
        alone_rows = (
            untreated
            & (
                counted.groupby("unit")["untreated"].transform("sum").eq(1)
                | counted.groupby("period")["untreated"].transform("sum").eq(1)
            ).to_numpy()
        )
    else:  # the untreated rows of each compound and month, counted
        per_unit = np.bincount(units, untreated)
        per_period = np.bincount(periods, untreated)
        alone_rows = untreated & ((per_unit[units] == 1) | (per_period[periods] == 1))
    alone = np.flatnonzero(alone_rows)
    positions = np.concatenate([np.arange(len(frame)), alone])
    weights = np.where(alone_rows, w / 2, w)
    return positions, np.concatenate([weights, weights[alone]])


def _without_singletons(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame`'s rows as _singleton_split fits them (pyfixest's did2s is given these)."""
    positions, weights = _singleton_split(frame)
    return frame.iloc[positions].reset_index(drop=True).assign(w=weights)


class _FirstStage:
    """Gardner's first stage on one design's rows (`_robust_design`): compound and month
    effects fitted by weighted least squares on the untreated rows, and every row's outcome
    less them. The ATT and the event path of a design are second stages over the same
    untreated rows (`fit`), so a report fits this once for both (at a city's 700,000
    compound-months the first stage is a third of a fit)."""

    def __init__(self, frame: pd.DataFrame, outcome: str) -> None:
        self.frame, self.outcome = frame, outcome
        self.positions, self.w = _singleton_split(frame)
        y = frame[outcome].to_numpy(float)[self.positions]
        untreated = ~frame["is_treated"].to_numpy(bool)[self.positions]
        self.fe = _TwoWay(
            frame["unit"].to_numpy()[self.positions],
            frame["period"].to_numpy()[self.positions],
            np.where(untreated, self.w, 0.0),
        )
        self.first = y
        if self.fe.complete:
            fe = self.fe
            alpha, lam = fe.solve(fe.by_unit(fe.weights * y), fe.by_period(fe.weights * y))
            self.first = y - alpha[fe.units] - lam[fe.periods]

    def fit(
        self, regressor: str, values: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, list[str], int]:
        """The second stage on `regressor` — AFTER: `values` is each row's 0/1 after;
        PERIOD_BIN: each row's relative period, one dummy per period but the reference — and
        its GMM covariance clustered by compound, which counts the first stage's own
        estimation error. Returns coefficients, covariance, their names (pyfixest's: "after",
        "period_bin::-3") and the number of compounds.

        The ATT is fitted on the whole design: a row whose regressors are all 0 (a signed
        compound's month before its base, with never-signed controls) adds nothing to the
        second stage's normal equations, to the first stage's influence or to a compound's
        score, and its first-stage weight is 0 (it is treated), so the figures are those of
        the untreated and after rows alone (did2s's second stage has no intercept)."""
        fe = self.fe
        if not fe.complete:
            # A compound or month without untreated rows has no fitted effect (pyfixest: NaN).
            rows = self.frame.assign(**{regressor: values})
            return _two_stage_pyfixest(rows, self.outcome, regressor)
        values, first = values[self.positions], self.first
        if regressor == PERIOD_BIN and _sums_exactly(self.w):
            second_stage = _binned_second_stage(values, self.w, first, fe)
        else:
            second_stage = _dense_second_stage(values, regressor, self.w, first, fe)
        coefficients, normal, influence_units, influence_months, second_scores, names = second_stage
        # Covariance: per compound, its second-stage score less the first stage's part in it.
        first_scores = fe.weights * first
        per_cell = coo_matrix(
            (first_scores, (fe.units, fe.periods)), shape=(fe.n_units, fe.n_periods)
        ).tocsr()
        correction = (
            fe.by_unit(first_scores)[:, None] * influence_units + per_cell @ influence_months
        )
        scores = second_scores - correction
        inverse = np.linalg.inv(normal)
        covariance = inverse @ (scores.T @ scores) @ inverse
        # Every compound has an untreated row (the first stage is complete): all are clusters.
        return coefficients, covariance, names, fe.n_units


def _two_stage(
    frame: pd.DataFrame, outcome: str, regressor: str
) -> tuple[np.ndarray, np.ndarray, list[str], int]:
    """Gardner's two-stage estimator, as pyfixest's `did2s` defines it: compound and month
    effects fitted by weighted least squares on the untreated rows; the second stage regresses
    what is left of every row on `regressor` (AFTER: the 0/1 column `after`; PERIOD_BIN: one
    dummy per relative period of `period_bin` but the reference); the GMM covariance clustered
    by compound, which counts the first stage's own estimation error (`_FirstStage`).

    Computed here rather than by `pf.did2s`, which builds the compound dummies as a dense
    matrix and loops over compounds scanning every row (rows × compounds: minutes at 2,000
    compounds, out of reach at 20,000). The first stage's normal equations are solved exactly
    by eliminating the compound effects (a months × months system), so the cost is linear in
    compound-months; the figures equal pyfixest's to its demeaning tolerance
    (tests/analytics/test_effect.py compares the two).
    """
    return _FirstStage(frame, outcome).fit(regressor, frame[regressor].to_numpy())


_SecondStage = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]


def _dense_second_stage(
    values: np.ndarray, regressor: str, w: np.ndarray, first: np.ndarray, fe: _TwoWay
) -> _SecondStage:
    """The second stage on the dense design: coefficients, the normal matrix, the first
    stage's influence on them (per compound, per month), each compound's second-stage score,
    and the coefficients' names."""
    design, names = _second_stage_design(values, regressor)
    weighted = design * w[:, None]
    normal = design.T @ weighted
    coefficients = np.linalg.solve(normal, weighted.T @ first)
    second = first - design @ coefficients
    influence_units, influence_months = fe.solve(fe.by_unit(weighted), fe.by_period(weighted))
    scores = fe.by_unit(weighted * second[:, None])
    return coefficients, normal, influence_units, influence_months, scores, names


def _sums_exactly(w: np.ndarray) -> bool:
    """Whether every sum of the weights is exact in any order: halves of whole counts (the
    rates' denominators, halved by _without_singletons) whose total stays within 2⁵²."""
    doubled = w * 2.0
    return bool(np.all(doubled == np.floor(doubled)) and np.sum(np.abs(w)) < 2.0**52)


def _binned_second_stage(
    bins: np.ndarray, w: np.ndarray, first: np.ndarray, fe: _TwoWay
) -> _SecondStage:
    """_dense_second_stage for one dummy per relative period, without the rows × periods
    dummies: each row has at most one, so the dense products are sums of each row's own
    term, here taken per period (and compound) in row order. The same figures to 1e-12: the
    sums of weights are exact in any order (`_sums_exactly`), and the weighted residuals are
    added up per period in row order rather than in the order BLAS takes a product of the
    dense dummies (a city's event path: rows × periods of mostly zeros, 230 MB at 50M
    tickets, filled and multiplied for a few dozen sums)."""
    bins = bins.astype("int64", copy=False)
    levels = np.array(sorted(int(b) for b in np.unique(bins) if b != REFERENCE_BIN), dtype="int64")
    names = [f"{PERIOD_BIN}::{level}" for level in levels]
    k = len(levels)
    column = np.searchsorted(levels, bins)
    rows = np.flatnonzero(bins != REFERENCE_BIN)
    column = column[rows]
    normal = np.diag(np.bincount(column, w[rows], minlength=k))
    moments = np.bincount(column, w[rows] * first[rows], minlength=k)
    coefficients = np.linalg.solve(normal, moments)
    second = first.copy()
    second[rows] = first[rows] - coefficients[column]
    units = fe.units[rows] * k + column
    periods = fe.periods[rows] * k + column
    by_unit = np.bincount(units, w[rows], minlength=fe.n_units * k).reshape(fe.n_units, k)
    by_period = np.bincount(periods, w[rows], minlength=fe.n_periods * k)
    influence_units, influence_months = fe.solve(by_unit, by_period.reshape(fe.n_periods, k))
    scores = np.bincount(units, w[rows] * second[rows], minlength=fe.n_units * k)
    return (
        coefficients,
        normal,
        influence_units,
        influence_months,
        scores.reshape(fe.n_units, k),
        names,
    )


# The compound × month table's size up to which _TwoWay multiplies it dense (64 MB of floats).
DENSE_CROSS_CELLS = 8_000_000


class _TwoWay:
    """Weighted least squares on compound and month effects, solved exactly: the normal
    equations [[D_u, C], [C', D_t]] (α, λ) = (b_u, b_t) with the compound effects eliminated
    (a months × months system), the first month's effect fixed at 0 (as the model matrix of
    pyfixest's covariance has it). Rows of weight 0 take no part in the fit."""

    def __init__(
        self, units: np.ndarray | pd.Series, periods: np.ndarray | pd.Series, weights: np.ndarray
    ) -> None:
        self.units, unit_names = pd.factorize(units)
        self.periods, period_names = pd.factorize(periods, sort=True)
        self.n_units, self.n_periods = len(unit_names), len(period_names)
        self.weights = weights
        self.unit_weight = self.by_unit(weights)
        self.period_weight = self.by_period(weights)
        self.complete = bool((self.unit_weight > 0).all() and (self.period_weight > 0).all())
        fitted = weights > 0
        self.cross = coo_matrix(
            (weights[fitted], (self.units[fitted], self.periods[fitted])),
            shape=(self.n_units, self.n_periods),
        ).tocsr()
        if self.complete:
            self.schur = np.diag(self.period_weight) - self._month_products(fitted)

    def _month_products(self, fitted: np.ndarray) -> np.ndarray:
        """C' D_u⁻¹ C (months × months): through the dense compound × month table where it is
        small (one BLAS product: a city's 16,000 compounds × 60 months in 7 ms, where the
        sparse product takes 56 ms), else the sparse one."""
        if self.n_units * self.n_periods > DENSE_CROSS_CELLS:
            scaled = self.cross.multiply(1.0 / self.unit_weight[:, None]).tocsr()
            return np.asarray((self.cross.T @ scaled).todense())
        cells = self.units[fitted] * self.n_periods + self.periods[fitted]
        dense = np.bincount(
            cells, self.weights[fitted], minlength=self.n_units * self.n_periods
        ).reshape(self.n_units, self.n_periods)
        return dense.T @ (dense / self.unit_weight[:, None])

    def by_unit(self, values: np.ndarray) -> np.ndarray:
        """Sums per compound (of each column)."""
        if values.ndim == 1:
            return np.bincount(self.units, values, minlength=self.n_units)
        return np.stack([self.by_unit(column) for column in values.T], axis=1)

    def by_period(self, values: np.ndarray) -> np.ndarray:
        """Sums per month (of each column)."""
        if values.ndim == 1:
            return np.bincount(self.periods, values, minlength=self.n_periods)
        return np.stack([self.by_period(column) for column in values.T], axis=1)

    def solve(
        self, unit_side: np.ndarray, period_side: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(α, λ) of the normal equations for the right-hand sides given (vectors or columns)."""
        unit_weight = self.unit_weight if unit_side.ndim == 1 else self.unit_weight[:, None]
        reduced = period_side - self.cross.T @ (unit_side / unit_weight)
        months = np.zeros(np.shape(period_side), dtype=float)
        try:
            months[1:] = np.linalg.solve(self.schur[1:, 1:], reduced[1:])
        except np.linalg.LinAlgError:
            months[1:] = np.linalg.lstsq(self.schur[1:, 1:], reduced[1:], rcond=None)[0]
        return (unit_side - self.cross @ months) / unit_weight, months

    def residuals(self, values: np.ndarray) -> np.ndarray:
        """`values` (rows, or rows × columns) less their fitted compound and month effects."""
        weighted = values * (self.weights if values.ndim == 1 else self.weights[:, None])
        alpha, lam = self.solve(self.by_unit(weighted), self.by_period(weighted))
        return values - alpha[self.units] - lam[self.periods]


AFTER = "after"
PERIOD_BIN = "period_bin"


def _second_stage_design(values: np.ndarray, regressor: str) -> tuple[np.ndarray, list[str]]:
    """The second stage's regressors as a dense rows × k matrix, and pyfixest's names
    (`values`: each row's 0/1 after, or its relative period)."""
    if regressor == AFTER:
        return values.astype(float)[:, None], [AFTER]
    if regressor != PERIOD_BIN:
        raise ValueError(f"regressor must be {AFTER} or {PERIOD_BIN}, got {regressor!r}")
    bins = values.astype("int64")
    levels = sorted(int(b) for b in np.unique(bins) if b != REFERENCE_BIN)
    design = (bins[:, None] == np.array(levels, dtype="int64")[None, :]).astype(float)
    return design, [f"{PERIOD_BIN}::{level}" for level in levels]


def _two_stage_pyfixest(
    frame: pd.DataFrame, outcome: str, regressor: str
) -> tuple[np.ndarray, np.ndarray, list[str], int]:
    """The same figures from pyfixest's `did2s` (rows × compounds: small panels only)."""
    data = _without_singletons(frame)
    data = data.assign(y=data[outcome].astype(float), treat=data["is_treated"].astype(int))
    second_stage = f"~ {AFTER}" if regressor == AFTER else f"~ i({PERIOD_BIN}, ref={REFERENCE_BIN})"
    import pyfixest as pf

    with _QUIET_FIT, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = pf.did2s(
            data,
            yname="y",
            first_stage="~ 0 | unit + period",
            second_stage=second_stage,
            treatment="treat",
            cluster="unit",
            weights="w",
        )
    names = list(fit._coefnames)
    return (
        np.asarray(fit._beta_hat, dtype=float),
        np.asarray(fit._vcov, dtype=float),
        names,
        int(frame["unit"].nunique()),
    )


def _bin_of(name: str) -> int:
    """The period of a coefficient named by pyfixest's i(): "period_bin::-3" (or "::-3.0")."""
    return int(float(name.split("::")[1]))


def _interval(estimate: float, error: float, clusters: int) -> tuple[float, float]:
    # scipy.special's functions, which stats.t.ppf and stats.f.sf call: importing scipy.stats
    # costs a second and a half on a page's first visit.
    half = float(special.stdtrit(max(clusters - 1, 1), 0.975)) * error
    return estimate - half, estimate + half


def _joint_p_value(coefficients: np.ndarray, covariance: np.ndarray, clusters: int) -> float:
    """Wald test that the coefficients are all 0: F(q, clusters − 1)."""
    if not len(coefficients):
        return math.nan
    statistic = float(coefficients @ np.linalg.pinv(covariance) @ coefficients) / len(coefficients)
    return float(special.fdtrc(len(coefficients), max(clusters - 1, 1), statistic))


def _event_path(frame: pd.DataFrame, outcome: str, stage: _FirstStage | None = None) -> EventStudy:
    """One robust figure per relative period (ticket-weighted over the signed compounds in it),
    the reference period at 0, and the joint test of the periods before the reference.
    stage: the first stage of this design, when already fitted (for its ATT)."""
    is_treated = frame["is_treated"].to_numpy(bool)
    bins = np.where(is_treated, frame["bin"].to_numpy("int64"), REFERENCE_BIN)
    present = sorted(int(b) for b in np.unique(bins[is_treated]))
    if not present:
        return _no_events()
    stage = stage or _FirstStage(frame, outcome)
    coefficients, covariance, names, clusters = stage.fit(PERIOD_BIN, bins)
    index = {_bin_of(name): i for i, name in enumerate(names)}
    treated = frame[frame["is_treated_unit"]]
    counts = treated.groupby("bin")["unit"].nunique()
    found = [(b, index[b]) for b in present if b in index]
    return _event_table(found, coefficients, covariance, clusters, counts, reference=True)


def robust_effect(
    panel: pd.DataFrame,
    outcome: str,
    window: int = 12,
    weight: str | None = None,
    control: str = NEVER,
    bin_months: int = 1,
    first_after: int = FIRST_AFTER,
    with_events: bool = True,
    rows: pd.DataFrame | None = None,
) -> RobustEffect:
    """The average effect on signed compound-months first_after…window after signing, robust
    to effects that differ by signing month and grow with time since signing. first_after is
    1 for months (the signing month is part before, part after); 0 where the signing period
    counts as treated, as in yearly data.

    Each signed compound-month is compared with what its compound would have shown without
    signing: its own level (from its months before signing) moved by the month effects of the
    comparison compounds. The ATT is the average of those differences over compounds × months
    after signing, each weighted by `weight` (the rate's denominator), so it is a per-ticket
    change; n_treated = signed compounds used, n_control = never-signed compounds, observations
    = compound-months. Interval: t with compounds − 1 degrees of freedom on the GMM standard
    error clustered by compound. The event path is the same average per period relative to
    signing, against the base period; with not-yet-signed controls its months before signing
    come from the never-signed comparison (their months before signing are its controls).
    with_events=False skips the path (simulations need the ATT alone). rows: window_rows of
    the same panel, outcome, window and weight, when already computed.
    """
    frame, diagnostics = _robust_design(
        panel, outcome, window, weight, control, bin_months, first_after, rows
    )
    treated_units = int(frame.loc[frame["is_treated_unit"], "unit"].nunique())
    control_units = diagnostics.never_signed
    # The ATT's compound-months: the untreated ones and those it averages (after).
    is_after = frame["is_after"].to_numpy(bool)
    observations = int((~frame["is_treated"].to_numpy(bool) | is_after).sum())
    if treated_units == 0 or control_units < 2 or not is_after.any():
        return RobustEffect(
            _no_estimate(treated_units, control_units, observations),
            _no_events(),
            diagnostics,
            control,
        )
    # One first stage for the ATT and the event path (_FirstStage.fit: the ATT's on the whole
    # design is the ATT's on its own rows).
    stage = _FirstStage(frame, outcome)
    coefficients, covariance, names, clusters = stage.fit(AFTER, is_after.astype(int))
    i = names.index("after")
    error = math.sqrt(covariance[i, i])
    low, high = _interval(float(coefficients[i]), error, clusters)
    estimate = Estimate(
        float(coefficients[i]), low, high, error, treated_units, control_units, observations
    )
    if not with_events:
        events = _no_events()
    elif control == NEVER:
        events = _event_path(frame, outcome, stage)
    else:
        never_frame, _ = _robust_design(
            panel, outcome, window, weight, NEVER, bin_months, first_after, rows
        )
        placebo = _event_path(never_frame, outcome)
        after = _event_path(frame, outcome, stage)
        table = pd.concat(
            [
                placebo.table[placebo.table["relative"] <= REFERENCE_BIN],
                after.table[after.table["relative"] > REFERENCE_BIN],
            ],
            ignore_index=True,
        )
        events = EventStudy(table, placebo.pre_trend_p, placebo.pre_periods)
    return RobustEffect(estimate, events, diagnostics, control)


def difference_in_differences(
    panel: pd.DataFrame,
    outcome: str,
    window: int = 12,
    weight: str | None = None,
    sample: pd.DataFrame | None = None,
) -> Estimate:
    """The plain two-way fixed-effects figure, kept as a labelled comparison: β of
    y = compound effect + month effect + β · after (months 1…window after signing; months
    −window…−1 before; the signing month left out), least squares weighted by `weight`,
    CRV1 errors clustered by compound (pyfixest; compound effects, nested in the clusters, are
    not counted in the small-sample factor), t with compounds − 1 degrees of freedom. With
    staggered signing and effects that grow it is biased toward zero: already-signed compounds
    serve as controls for later signers. n_treated = signed units with months on both sides,
    n_control = never-signed units, n_observations = unit-months used. sample: panel_sample of
    the same arguments (signing month left out), when already computed."""
    if sample is None:
        sample = panel_sample(panel, outcome, window, keep_signing_month=False, weight=weight)
    treated_units = int(sample.loc[sample["is_treated_unit"], "unit"].nunique())
    control_units = int(sample.loc[~sample["is_treated_unit"], "unit"].nunique())
    if treated_units == 0 or control_units == 0 or sample["unit"].nunique() < 3:
        return _no_estimate(treated_units, control_units, len(sample))
    data = sample.assign(
        y=sample[outcome].astype(float),
        after=(sample["is_treated_unit"] & (sample["relative"] >= 1)).astype(float),
        w=sample[weight].astype(float) if weight else 1.0,
    )
    coefficient, error = _twfe_after(data)
    low, high = _interval(coefficient, error, treated_units + control_units)
    return Estimate(coefficient, low, high, error, treated_units, control_units, len(sample))


def _twfe_after(data: pd.DataFrame) -> tuple[float, float]:
    """β of `after` in y = compound effect + month effect + β · after (weights w) and its CRV1
    error clustered by compound, with fixest's small-sample factors as pyfixest's
    ssc(k_adj=True, k_fixef="nonnested", G_adj=True) has them: G/(G − 1) · (n − 1)/(n − K),
    K = 1 + the months (compound effects, nested in the clusters, are not counted).

    By Frisch–Waugh–Lovell on exactly solved two-way effects (_TwoWay): linear in
    compound-months, where pyfixest's feols demeans iteratively; pyfixest is used only when
    `after` is spanned by the effects (no estimate to make)."""
    w = data["w"].to_numpy(float)
    fe = _TwoWay(data["unit"], data["period"], w)
    after = data["after"].to_numpy(float)
    if fe.complete:
        columns = fe.residuals(np.column_stack([data["y"].to_numpy(float), after]))
        y_tilde, after_tilde = columns[:, 0], columns[:, 1]
        denominator = float(np.sum(w * after_tilde**2))
    if not fe.complete or denominator <= 1e-9 * float(np.sum(w * after**2)):
        fit = _feols(data, "y ~ after | unit + period")
        return float(fit.coef()["after"]), float(fit.se()["after"])
    coefficient = float(np.sum(w * after_tilde * y_tilde)) / denominator
    residual = y_tilde - coefficient * after_tilde
    scores = fe.by_unit(w * after_tilde * residual)
    groups, n, k = fe.n_units, len(data), 1 + fe.n_periods
    variance = float(np.sum(scores**2)) / denominator**2
    variance *= groups / (groups - 1) * (n - 1) / (n - k)
    return coefficient, math.sqrt(variance)


def _feols(data: pd.DataFrame, formula: str) -> Feols:
    import pyfixest as pf
    from pyfixest.estimation.models.feols_ import Feols

    with _QUIET_FIT, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = pf.feols(
            formula,
            data=data,
            weights="w",
            vcov={"CRV1": "unit"},
            ssc=pf.ssc(k_adj=True, k_fixef="nonnested", G_adj=True),
            fixef_rm="none",
        )
    assert isinstance(fit, Feols)
    return fit


def twfe_event_study(
    panel: pd.DataFrame,
    outcome: str,
    window: int = 12,
    bin_months: int = 1,
    weight: str | None = None,
) -> EventStudy:
    """The classic event study (one coefficient per period relative to signing in a two-way
    fixed-effects regression, −window…window, reference −1), for the TWFE comparison only:
    with staggered signing its coefficients mix periods (Sun and Abraham 2021)."""
    sample = panel_sample(panel, outcome, window, keep_signing_month=True, weight=weight)
    if bin_months > 1:
        last = (window // bin_months) * bin_months
        sample = sample[~(sample["relative"] >= last)]
    treated = sample["is_treated_unit"]
    if not treated.any() or (~treated).sum() == 0:
        return _no_events()
    bins = _bins(sample["relative"].fillna(0), bin_months).where(treated, REFERENCE_BIN)
    data = sample.assign(
        y=sample[outcome].astype(float),
        period_bin=bins,
        w=sample[weight].astype(float) if weight else 1.0,
    )
    fit = _feols(data, f"y ~ i(period_bin, ref={REFERENCE_BIN}) | unit + period")
    coefficients = np.asarray(fit._beta_hat, dtype=float)
    covariance = np.asarray(fit._vcov, dtype=float)
    names = list(fit._coefnames)
    clusters = int(sample["unit"].nunique())
    counts = sample[treated].groupby(bins[treated])["unit"].nunique()
    found = [(_bin_of(name), i) for i, name in enumerate(names)]
    reference = REFERENCE_BIN in counts.index
    return _event_table(found, coefficients, covariance, clusters, counts, reference=reference)


def _event_table(
    found: list[tuple[int, int]],
    coefficients: np.ndarray,
    covariance: np.ndarray,
    clusters: int,
    counts: pd.Series,
    *,
    reference: bool,
) -> EventStudy:
    """The event study from each period's coefficient (`found`: period, coefficient index):
    its interval, treated compounds, the reference period at 0 when `reference`, and the
    joint test of the periods before the reference."""
    rows = []
    before: list[int] = []
    for b, i in found:
        low, high = _interval(float(coefficients[i]), math.sqrt(covariance[i, i]), clusters)
        rows.append(
            {
                "relative": b,
                "estimate": float(coefficients[i]),
                "low": low,
                "high": high,
                "n_treated": int(counts.get(b, 0)),
                "is_reference": False,
            }
        )
        if b < REFERENCE_BIN:
            before.append(i)
    if reference:
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
    table = pd.DataFrame(rows, columns=EVENT_COLUMNS).sort_values("relative")
    table["relative"] = table["relative"].astype("int64")
    p_value = _joint_p_value(coefficients[before], covariance[np.ix_(before, before)], clusters)
    return EventStudy(table.reset_index(drop=True), p_value, len(before))
