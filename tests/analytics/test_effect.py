"""The 治理成效 estimators on panels made here, checked against planted effects and hand sums.

The robust before/after figure is compared with Callaway–Sant'Anna and imputation estimates
written out here with numpy, with the published mpdta results, and with a planted dynamic
effect over 200 simulated staggered panels; the plain TWFE comparison with an explicit
least-squares fit on compound and month dummies and the CRV1 formula written out here; the
stratified difference with a tiny example computed by hand.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from govdash.analytics.metrics.effect import (
    EFFECT_METRICS,
    NEVER,
    NOT_YET,
    REFERENCE_BIN,
    difference_in_differences,
    localise_strata,
    robust_effect,
    size_band,
    size_band_labels,
    stratified_difference,
    twfe_event_study,
)
from govdash.analytics.queries.effect import (
    before_after,
    compound_register,
    compound_ticket_figures,
    cross_section_groups,
    effect_report,
    panel_onsets,
    register_coverage,
)
from govdash.analytics.queries.filters import Filters
from tests.analytics.effect_simulation import staggered_panel, true_average_effect
from tests.analytics.warehouse_data import build, build_main, open_db, shipped_config
from tests.conftest import TICKET_HEADER, ticket_row, ticket_sheet, write_csv, write_xlsx

MONTHS = 36
WINDOW = 12


def synthetic_panel(
    effect: float, seed: int = 7, treated: int = 40, never: int = 40
) -> pd.DataFrame:
    """Compound × month: compound level + month shock + noise, plus `effect` in a signed
    compound's months after its signing month (signings spread over months 6–30)."""
    rng = np.random.default_rng(seed)
    month_shock = rng.normal(0, 2, MONTHS)
    rows = []
    for unit in range(treated + never):
        level = rng.normal(70, 8)
        onset = float(rng.integers(6, 31)) if unit < treated else math.nan
        tickets = rng.integers(5, 60)
        for period in range(MONTHS):
            after = not math.isnan(onset) and period > onset
            value = level + month_shock[period] + rng.normal(0, 3) + (effect if after else 0.0)
            rows.append(
                {
                    "unit": f"c{unit:03d}",
                    "period": 24_000 + period,
                    "onset": 24_000 + onset,
                    "outcome": value,
                    "tickets": int(tickets + rng.integers(0, 5)),
                }
            )
    return pd.DataFrame(rows)


def did_sample(panel: pd.DataFrame) -> pd.DataFrame:
    """The rows the module docstring says the comparison uses, selected here by hand."""
    relative = panel["period"] - panel["onset"]
    signed = panel["onset"].notna()
    keep_signed = signed & (relative.abs() <= WINDOW) & (relative != 0)
    treated_rows = panel[keep_signed]
    both = treated_rows.groupby("unit")["period"].transform(
        lambda p: (
            ((p - treated_rows.loc[p.index, "onset"]) < 0).any()
            and ((p - treated_rows.loc[p.index, "onset"]) > 0).any()
        )
    )
    treated_rows = treated_rows[both.astype(bool)]
    control = panel[~signed & panel["period"].isin(set(treated_rows["period"]))]
    return pd.concat([treated_rows, control])


def dummy_fit(sample: pd.DataFrame, weights: np.ndarray | None = None) -> tuple[float, float]:
    """β and its CRV1 standard error from explicit dummies (compound effects not counted in K,
    every month effect counted)."""
    after = (sample["onset"].notna() & (sample["period"] > sample["onset"])).to_numpy(float)
    units = pd.get_dummies(sample["unit"], dtype=float).to_numpy()
    months = pd.get_dummies(sample["period"], dtype=float).to_numpy()[:, 1:]
    design = np.column_stack([after, units, months])
    y = sample["outcome"].to_numpy(float)
    w = np.ones(len(y)) if weights is None else weights
    root = np.sqrt(w)
    coefficients, *_ = np.linalg.lstsq(design * root[:, None], y * root, rcond=None)
    residual = y - design @ coefficients
    others = design[:, 1:]
    gamma, *_ = np.linalg.lstsq(others * root[:, None], after * root, rcond=None)
    after_tilde = after - others @ gamma
    clusters = sample["unit"].to_numpy()
    scores = pd.Series(w * after_tilde * residual).groupby(clusters).sum().to_numpy()
    groups, n = len(set(clusters)), len(y)
    # fixest's convention (pyfixest ssc k_fixef="nonnested"): compound effects, nested in
    # the clusters, are not counted; every month effect is (T, not T − 1, once they are gone).
    k = 1 + months.shape[1] + 1
    variance = (scores**2).sum() / (w * after_tilde**2).sum() ** 2
    variance *= groups / (groups - 1) * (n - 1) / (n - k)
    return float(coefficients[0]), math.sqrt(variance)


@pytest.mark.parametrize("planted", [5.0, 0.0])
def test_the_interval_covers_the_planted_effect(planted: float) -> None:
    estimate = difference_in_differences(synthetic_panel(planted), "outcome", WINDOW)
    assert estimate.low < planted < estimate.high
    assert estimate.n_treated == 40 and estimate.n_control == 40
    assert estimate.high - estimate.low < 3  # informative, not a uselessly wide interval


def test_a_large_effect_is_told_from_zero() -> None:
    estimate = difference_in_differences(synthetic_panel(5.0), "outcome", WINDOW)
    assert estimate.low > 0


def test_shuffled_rows_give_the_same_estimate() -> None:
    panel = synthetic_panel(5.0)
    shuffled = panel.sample(frac=1.0, random_state=3).reset_index(drop=True)
    first = difference_in_differences(panel, "outcome", WINDOW, weight="tickets")
    second = difference_in_differences(shuffled, "outcome", WINDOW, weight="tickets")
    assert second.estimate == pytest.approx(first.estimate, abs=1e-9)
    assert second.std_error == pytest.approx(first.std_error, rel=1e-9)


@pytest.mark.parametrize("weighted", [False, True])
def test_the_estimate_and_error_equal_an_explicit_dummy_regression(weighted: bool) -> None:
    panel = synthetic_panel(5.0, seed=11)
    sample = did_sample(panel)
    weights = sample["tickets"].to_numpy(float) if weighted else None
    expected, expected_error = dummy_fit(sample, weights)
    estimate = difference_in_differences(
        panel, "outcome", WINDOW, weight="tickets" if weighted else None
    )
    assert estimate.estimate == pytest.approx(expected, abs=1e-7)
    assert estimate.std_error == pytest.approx(expected_error, rel=1e-6)
    assert estimate.n_observations == len(sample)


def test_never_signed_controls_are_required() -> None:
    only_signed = synthetic_panel(5.0, never=0)
    estimate = difference_in_differences(only_signed, "outcome", WINDOW)
    assert not estimate.is_estimated and estimate.n_control == 0


def test_the_robust_path_is_flat_before_and_at_the_effect_after() -> None:
    study = robust_effect(synthetic_panel(5.0, seed=1), "outcome", WINDOW).events
    events = study.table
    # The signing month is left out of the robust comparison (part before, part after).
    assert list(events["relative"]) == [r for r in range(-WINDOW, WINDOW + 1) if r != 0]
    reference = events[events["is_reference"]]
    assert reference["relative"].tolist() == [REFERENCE_BIN]
    assert reference[["estimate", "low", "high"]].to_numpy().tolist() == [[0.0, 0.0, 0.0]]
    before = events[events["relative"] < -1]
    after = events[events["relative"] >= 1]
    # Every figure is measured against the month before signing, whose own noise shifts them
    # all alike: the jump from before to after is the planted effect.
    assert after["estimate"].mean() - before["estimate"].mean() == pytest.approx(5.0, abs=1.0)
    assert before["estimate"].std() < 1.0
    covered = ((after["low"] < 5.0) & (after["high"] > 5.0)).mean()
    assert covered >= 0.75
    assert (events["low"] <= events["estimate"]).all()
    assert (events["estimate"] <= events["high"]).all()
    assert study.pre_periods == WINDOW - 1
    assert study.pre_trend_p > 0.05


def test_a_trend_before_signing_is_flagged() -> None:
    panel = synthetic_panel(0.0, seed=3)
    relative = panel["period"] - panel["onset"]
    # Signed compounds improving steadily before they sign: 1 point a month up to signing.
    panel["outcome"] += np.where(relative.between(-WINDOW, -1), relative + WINDOW, 0.0)
    assert robust_effect(panel, "outcome", WINDOW).events.pre_trend_p < 0.001
    assert twfe_event_study(panel, "outcome", WINDOW).pre_trend_p < 0.001


def test_half_year_bins_for_surveys() -> None:
    events = robust_effect(synthetic_panel(5.0, seed=3), "outcome", WINDOW, bin_months=6)
    table = events.events.table
    assert list(table["relative"]) == [-2, -1, 0, 1]
    assert table.loc[table["relative"] == 1, "estimate"].iloc[0] == pytest.approx(5.0, abs=1.5)
    twfe = twfe_event_study(synthetic_panel(5.0, seed=3), "outcome", WINDOW, bin_months=6)
    assert list(twfe.table["relative"]) == [-2, -1, 0, 1]


# --- the robust figure against estimators written out here -----------------------------------


def unbalanced(panel: pd.DataFrame, seed: int = 5) -> pd.DataFrame:
    """A fifth of the compound-months dropped at random (months without tickets)."""
    rng = np.random.default_rng(seed)
    return panel[rng.random(len(panel)) > 0.2].reset_index(drop=True)


def _dummies(frame: pd.DataFrame) -> tuple[np.ndarray, list[object], list[object]]:
    units = sorted(frame["unit"].unique())
    months = sorted(frame["period"].unique())
    design = np.column_stack(
        [
            (frame["unit"].to_numpy()[:, None] == np.array(units)[None, :]).astype(float),
            (frame["period"].to_numpy()[:, None] == np.array(months)[None, 1:]).astype(float),
        ]
    )
    return design, units, months


def _wls(
    frame: pd.DataFrame, weights: np.ndarray
) -> tuple[dict[object, float], dict[object, float]]:
    """Compound and month effects of a weighted two-way fit (first month's effect 0)."""
    design, units, months = _dummies(frame)
    root = np.sqrt(weights)
    solution, *_ = np.linalg.lstsq(
        design * root[:, None], frame["outcome"].to_numpy(float) * root, rcond=None
    )
    unit_effect = dict(zip(units, solution[: len(units)], strict=True))
    month_effect = {months[0]: 0.0} | dict(zip(months[1:], solution[len(units) :], strict=True))
    return unit_effect, month_effect


def hand_robust(panel: pd.DataFrame, control: str, weight: str | None = "tickets") -> float:
    """The ticket-weighted ATT over signed compound-months 1…WINDOW after signing, by hand.

    never: Callaway–Sant'Anna against never-signed compounds — (y − y at the compound's last
    month before signing) − (the same change in the never-signed compounds' month effects).
    not_yet: imputation — y minus compound + month effects fitted on every row not yet signed.
    """
    frame = panel.copy()
    frame["w"] = frame[weight].astype(float) if weight else 1.0
    relative = frame["period"] - frame["onset"]
    signed = frame["onset"].notna()
    frame = frame[~signed | (relative.abs() <= WINDOW) & (relative != 0)]
    never = frame[frame["onset"].isna()]
    frame = frame[frame["period"].isin(set(never["period"]))]
    relative = frame["period"] - frame["onset"]
    before = frame[relative < 0]
    after = frame[relative.between(1, WINDOW)]
    usable = set(before["unit"]) & set(after["unit"])
    after = after[after["unit"].isin(usable)]
    if control == NEVER:
        _, month_effect = _wls(never, never["w"].to_numpy())
        base = before.loc[before.groupby("unit")["period"].idxmax()].set_index("unit")
        change = after["outcome"].to_numpy() - base.loc[after["unit"], "outcome"].to_numpy()
        trend = np.array(
            [
                month_effect[t] - month_effect[base.loc[u, "period"]]
                for u, t in zip(after["unit"], after["period"], strict=True)
            ]
        )
        effects = change - trend
    else:
        untreated = pd.concat([never, before[before["unit"].isin(usable)]])
        unit_effect, month_effect = _wls(untreated, untreated["w"].to_numpy())
        imputed = np.array(
            [
                unit_effect[u] + month_effect[t]
                for u, t in zip(after["unit"], after["period"], strict=True)
            ]
        )
        effects = after["outcome"].to_numpy() - imputed
    return float(np.average(effects, weights=after["w"]))


@pytest.mark.parametrize("control", [NEVER, NOT_YET])
def test_the_robust_att_equals_the_estimator_written_out(control: str) -> None:
    panel = unbalanced(staggered_panel(4))
    result = robust_effect(panel, "outcome", WINDOW, "tickets", control, with_events=False)
    # pyfixest demeans iteratively to its default tolerance: equal to about 1e-6.
    assert result.estimate.estimate == pytest.approx(hand_robust(panel, control), abs=1e-5)
    assert result.estimate.n_control == 20
    assert result.diagnostics.signed == 60
    assert result.estimate.n_treated + result.diagnostics.left_out == 60


def test_compounds_without_a_month_before_signing_are_counted_out() -> None:
    panel = staggered_panel(2)
    relative = panel["period"] - panel["onset"]
    # Three signed compounds lose every month before signing; one cohort keeps one compound.
    gone = panel["unit"].isin(["c020", "c021", "c022"]) & (relative < 0)
    result = robust_effect(panel[~gone], "outcome", WINDOW, "tickets", with_events=False)
    diagnostics = result.diagnostics
    assert (diagnostics.signed, diagnostics.left_out) == (60, 3)
    assert result.estimate.n_treated == 57
    assert diagnostics.left_out_share == pytest.approx(3 / 60)
    cohorts = diagnostics.cohorts.set_index("cohort")
    first = 24_000 + 12
    assert cohorts.loc[first, "n_compounds"] == 2 and cohorts.loc[first, "n_used"] == 0
    assert cohorts.loc[first + 1, "n_used"] == 1
    assert diagnostics.small_cohorts == 1  # the cohort with one compound left; none empty
    assert diagnostics.thin_months(20) == 0 and diagnostics.thin_months(21) > 0


def test_mpdta_matches_the_published_callaway_santanna_results() -> None:
    """The minimum-wage panel of Callaway and Sant'Anna (2021), shipped offline by moderndid.
    Never-treated controls, yearly data (the first treated year counts as treated): the R
    `did` package and its ports report a simple ATT of −0.039951 (analytic SE 0.012034) and the
    dynamic effects −0.0199, −0.0510, −0.1373, −0.1008 for years 0–3 after treatment."""
    from moderndid import load_mpdta

    data = load_mpdta().to_pandas()
    panel = pd.DataFrame(
        {
            "unit": data["countyreal"],
            "period": data["year"],
            "onset": data["first.treat"].where(data["first.treat"] > 0).astype(float),
            "lemp": data["lemp"],
        }
    )
    result = robust_effect(panel, "lemp", window=10, first_after=0)
    assert result.estimate.estimate == pytest.approx(-0.039951, abs=5e-7)
    assert result.estimate.std_error == pytest.approx(0.012034, abs=5e-7)
    assert (result.estimate.n_treated, result.estimate.n_control) == (191, 309)
    path = result.events.table.set_index("relative")["estimate"]
    assert [round(path[e], 4) for e in range(4)] == [-0.0199, -0.0510, -0.1373, -0.1008]


def _coverage(slope: float, draws: int) -> tuple[float, float, float]:
    """(mean truth, mean bias, share of 95% intervals covering the truth) over seeded draws."""
    truths, biases, covered = [], [], []
    for seed in range(draws):
        panel = staggered_panel(1000 + seed, slope)
        truth = true_average_effect(panel) if slope else 0.0
        found = robust_effect(panel, "outcome", WINDOW, "tickets", with_events=False).estimate
        truths.append(truth)
        biases.append(found.estimate - truth)
        covered.append(found.low <= truth <= found.high)
    return float(np.mean(truths)), float(np.mean(biases)), float(np.mean(covered))


@pytest.mark.slow
def test_a_planted_dynamic_effect_is_recovered_with_honest_intervals() -> None:
    """Issue 14's setting: staggered signings, −0.6 per month since signing up to 12 months.
    The plain TWFE figure is biased toward zero here (bench/bench_effect.py prints both)."""
    truth, bias, coverage = _coverage(-0.6, 200)
    assert truth == pytest.approx(-3.75, abs=0.2)
    assert abs(bias) < 0.05 * abs(truth)
    assert coverage >= 0.90


@pytest.mark.slow
def test_with_no_effect_the_intervals_cover_zero_at_the_nominal_rate() -> None:
    _, bias, coverage = _coverage(0.0, 200)
    assert abs(bias) < 0.1
    assert 0.90 <= coverage <= 0.99


# --- with versus without --------------------------------------------------------------------


def tiny_units() -> pd.DataFrame:
    rows = [
        ("A", True, 10.0),
        ("A", True, 12.0),
        ("A", False, 7.0),
        ("A", False, 9.0),
        ("A", False, 8.0),
        ("B", True, 20.0),
        ("B", True, 22.0),
        ("B", True, 24.0),
        ("B", False, 18.0),
        ("B", False, 16.0),
        ("C", True, 5.0),  # one treated compound: no variance, stratum left out
        ("C", False, 1.0),
        ("C", False, 2.0),
        ("A", False, None),  # no figure: not counted
    ]
    return pd.DataFrame(rows, columns=["compound_type", "is_treated", "value"])


def test_the_stratified_difference_by_hand() -> None:
    estimate, strata = stratified_difference(tiny_units(), "value", strata=["compound_type"])
    # A: 11 − 8 = 3 over 5 compounds; B: 22 − 17 = 5 over 5; equal weights → 4.
    assert estimate.estimate == pytest.approx(4.0)
    # Var = ¼ (2/2 + 1/3) + ¼ (4/3 + 2/2) = 11/12
    assert estimate.std_error == pytest.approx(math.sqrt(11 / 12))
    assert estimate.low == pytest.approx(4.0 - 1.959964 * math.sqrt(11 / 12), abs=1e-5)
    assert (estimate.n_treated, estimate.n_control) == (5, 5)
    by_stratum = strata.set_index("stratum")
    assert by_stratum["is_used"].to_dict() == {"A": True, "B": True, "C": False}
    assert by_stratum.loc["A", "weight"] == pytest.approx(0.5)
    assert by_stratum.loc["C", "weight"] == 0
    assert by_stratum.loc["A", "low"] == pytest.approx(3 - 1.959964 * math.sqrt(4 / 3), abs=1e-5)
    assert math.isnan(by_stratum.loc["C", "low"])


def test_the_stratified_difference_ignores_row_order() -> None:
    units = tiny_units()
    first, _ = stratified_difference(units, "value", strata=["compound_type"])
    second, _ = stratified_difference(
        units.sample(frac=1.0, random_state=5), "value", strata=["compound_type"]
    )
    assert second.estimate == pytest.approx(first.estimate)
    assert second.std_error == pytest.approx(first.std_error)


def test_no_usable_stratum_gives_no_estimate() -> None:
    units = tiny_units()
    estimate, _ = stratified_difference(
        units[units["compound_type"] == "C"], "value", strata=["compound_type"]
    )
    assert not estimate.is_estimated


def test_size_bands() -> None:
    assert size_band_labels([100, 300, 1000]) == ["<100", "100–299", "300–999", "≥1000"]
    households = pd.Series([30, 100, 299, 300, 1500, None])
    assert size_band(households, [100, 300, 1000]).tolist() == [
        "<100",
        "100–299",
        "100–299",
        "300–999",
        "≥1000",
        "户数未知",
    ]


def test_stratum_labels_in_english_keep_the_register_types() -> None:
    units = pd.DataFrame(
        {
            "compound_type": ["商品房", "商品房", "商品房", "商品房", None, None, None, None],
            "households": [50, 60, 70, 80, None, None, None, None],
            "is_treated": [True, True, False, False] * 2,
            "value": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
        }
    )
    units["size_band"] = size_band(units["households"], [100])
    _, strata = stratified_difference(units, "value")
    assert sorted(localise_strata(strata, "en")["stratum"]) == [
        "(blank) · households unknown",
        "商品房 · <100",
    ]
    assert sorted(localise_strata(strata, "zh")["stratum"]) == sorted(strata["stratum"])
    assert sorted(strata["stratum"]) == sorted(["（未填写） · 户数未知", "商品房 · <100"])


def test_each_compound_has_a_side_in_the_period() -> None:
    register = pd.DataFrame(
        {
            "unit": ["early", "inside", "later", "no", "yes-undated", "unknown"],
            "is_flagged": pd.array([True, True, True, False, True, None], dtype="boolean"),
            "treated_on": pd.to_datetime(
                ["2023-05-01", "2025-03-01", "2026-02-01", None, None, None]
            ),
        }
    )
    groups = cross_section_groups(register, Filters.for_year(2025))
    assert groups.tolist() == ["treated", "during", "control", "control", "treated", "unknown"]
    onsets = panel_onsets(register).set_index("unit")["onset"]
    assert onsets.index.tolist() == ["early", "inside", "later", "no"]
    assert onsets["early"] == 2023 * 12 + 4 and math.isnan(onsets["no"])
    assert date(2025, 3, 1).year * 12 + 2 == onsets["inside"]


# --- the warehouse side, through the real loader -------------------------------------------


def test_register_dates_under_an_alias_and_compound_months_from_the_loader(
    tmp_path: Path,
) -> None:
    register = [
        ["社区", "小区名称", "小区类型", "户数", "是否签订党建联建协议", "签约日期"],
        ["东社区", "甲小区", "商品房物管小区", 250, "是", "2024年6月15日"],
        ["东社区", "乙小区", "商品房物管小区", 90, "是", None],
        ["西社区", "丙小区", "单位院落", 120, "否", None],
        ["西社区", "丁小区", "单位院落", 60, None, None],
    ]
    minutes = {"甲小区": [4, 9, 30], "乙小区": [12], "丙小区": [7, 8], "丁小区": [20, 40, 60, 90]}
    rows = []
    for compound, values in minutes.items():
        for index, value in enumerate(values):
            month = 5 if index % 2 == 0 else 7
            accepted = datetime(2024, month, 3 + index, 9, 0)
            rows.append(
                ticket_row(
                    f"{compound}-{index}",
                    accepted=f"{accepted:%Y-%m-%d %H:%M}",
                    responded=f"{accepted + timedelta(minutes=value):%Y-%m-%d %H:%M}",
                    closed=f"{accepted + timedelta(hours=5):%Y-%m-%d %H:%M}",
                    compound=compound,
                )
            )
    db = build(
        tmp_path,
        [
            write_xlsx(tmp_path / "台账.xlsx", {"小区台账": register}),
            write_xlsx(tmp_path / "工单.xlsx", {"工单": ticket_sheet(*rows)}),
        ],
    )
    config = shipped_config()
    con = open_db(db)
    try:
        year = Filters.for_year(2024)
        loaded = compound_register(con, year, "agreement").set_index("compound")
        assert loaded.loc["甲小区", "treated_on"] == pd.Timestamp("2024-06-15")
        assert register_coverage(con, "agreement") == (4, 3, 1)
        groups = cross_section_groups(loaded, year)
        assert groups.to_dict() == {
            "甲小区": "during",
            "乙小区": "treated",
            "丙小区": "control",
            "丁小区": "unknown",
        }
        assert cross_section_groups(loaded, Filters.for_year(2025))["甲小区"] == "treated"
        monthly = compound_ticket_figures(con, year, config, by_month=True)
    finally:
        con.close()
    # Expected per compound-month, straight from the minutes written above.
    expected = {}
    for compound, values in minutes.items():
        community = "东社区" if compound in ("甲小区", "乙小区") else "西社区"
        for month in (5, 7):
            chosen = [v for i, v in enumerate(values) if (5 if i % 2 == 0 else 7) == month]
            if chosen:
                expected[(f"{community}/{compound}", month)] = (
                    len(chosen),
                    float(np.median(chosen)),
                )
    got = {
        (row.unit, row.month.month): (row.tickets, row.response_median_minutes)
        for row in monthly.itertuples()
    }
    assert got == expected


# --- issue 14 through the real loader: staggered signings, a response time that falls ---------

SIGNED_COMPOUNDS = 60
NEVER_COMPOUNDS = 20
FIRST_MONTH = (2022, 4)  # 12 months before the first signing (2023-04)
PANEL_MONTHS = 54  # to 2026-09: 12 months after the last signing (2025-09)


def _month(index: int) -> tuple[int, int]:
    total = FIRST_MONTH[0] * 12 + FIRST_MONTH[1] - 1 + index
    return total // 12, total % 12 + 1


def staggered_warehouse(folder: Path) -> tuple[Path, float]:
    """A register with 党建联建签约日期 (60 compounds signing two a month from 2023-04 to
    2025-09, 20 marked 否) and tickets whose first response falls by 4 minutes per month since
    signing (up to 48), loaded by the real loader. Returns the warehouse and the true
    ticket-weighted effect on the median first response over months 1–12 after signing."""
    rng = np.random.default_rng(14)
    register = [["社区", "小区名称", "户数", "是否签订党建联建协议", "党建联建签约日期"]]
    onsets: dict[str, int | None] = {}
    for index in range(SIGNED_COMPOUNDS + NEVER_COMPOUNDS):
        name = f"联建{index:02d}小区"
        if index < SIGNED_COMPOUNDS:
            onset = 12 + index // 2
            year, month = _month(onset)
            register.append(["东社区", name, 300, "是", f"{year}-{month:02d}-15"])
            onsets[name] = onset
        else:
            register.append(["西社区", name, 300, "否", None])
            onsets[name] = None
    shock = rng.integers(-10, 11, PANEL_MONTHS)
    tickets = []
    effects: list[tuple[int, float]] = []
    for index, (name, onset) in enumerate(onsets.items()):
        base = 120 + 3 * (index % 10)
        for month_index in range(PANEL_MONTHS):
            year, month = _month(month_index)
            count = int(rng.integers(5, 11))
            relative = None if onset is None else month_index - onset
            effect = 4 * min(relative, 12) if relative is not None and relative >= 1 else 0
            if relative is not None and 1 <= relative <= 12:
                effects.append((count, -effect))
            for ticket in range(count):
                accepted = datetime(year, month, 1 + 2 * ticket, 9, 0)
                minutes = base + int(shock[month_index]) + int(rng.integers(0, 21)) - effect
                tickets.append(
                    ticket_row(
                        f"T{index:02d}{month_index:02d}{ticket:02d}",
                        accepted=f"{accepted:%Y-%m-%d %H:%M}",
                        responded=f"{accepted + timedelta(minutes=minutes):%Y-%m-%d %H:%M}",
                        closed=f"{accepted + timedelta(hours=6):%Y-%m-%d %H:%M}",
                        compound=name,
                    )
                )
    db = build(
        folder,
        [
            write_xlsx(folder / "台账.xlsx", {"小区台账": register}),
            write_csv(folder / "工单.csv", [TICKET_HEADER, *tickets], "utf-8-sig"),
        ],
    )
    counts = np.array([count for count, _ in effects], dtype=float)
    truth = float(np.average([effect for _, effect in effects], weights=counts))
    return db, truth


@pytest.fixture(scope="module")
def staggered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    return staggered_warehouse(tmp_path_factory.mktemp("staggered"))


def test_the_planted_staggered_effect_is_recovered_through_the_loader(
    staggered: tuple[Path, float],
) -> None:
    db, truth = staggered
    assert truth == pytest.approx(-26.0, abs=1.0)  # 4 minutes × 6.5 months on average
    everything = Filters.for_range(date(1900, 1, 1), date(2999, 12, 31))
    con = open_db(db)
    try:
        robust = before_after(
            con, everything, shipped_config(), "agreement", "response_median_minutes"
        )
        twfe = before_after(
            con, everything, shipped_config(), "agreement", "response_median_minutes", "twfe"
        )
    finally:
        con.close()
    found = robust.estimate
    assert abs(found.estimate - truth) < 0.05 * abs(truth)
    assert found.low <= truth <= found.high
    assert (found.n_treated, found.n_control) == (60, 20)
    assert robust.diagnostics is not None and robust.diagnostics.left_out == 0
    assert robust.events.pre_trend_p > 0.01
    after = robust.events.table.set_index("relative")["estimate"]
    # The path follows the planted −4 minutes a month since signing.
    assert [round(after[month] / -4) for month in (1, 6, 12)] == [1, 6, 12]
    # The plain TWFE figure misses by more than the 5% the robust one keeps to.
    assert abs(twfe.estimate.estimate - truth) > 0.05 * abs(truth)


def test_the_report_draws_the_asked_metrics_path_on_its_own_panels(
    staggered: tuple[Path, float],
) -> None:
    """The page's first event path comes with the report: the planted −4 minutes a month since
    signing, the same table as `before_after` fits on panels of its own, and the report's
    figures are those of a report that draws no path."""
    db, _ = staggered
    year = Filters.for_range(date(2025, 1, 1), date(2025, 12, 31))
    metric = "response_median_minutes"
    con = open_db(db)
    try:
        drawn = effect_report(con, year, shipped_config(), "agreement", path_for=(metric,))
        plain = effect_report(con, year, shipped_config(), "agreement")
        alone = before_after(con, year, shipped_config(), "agreement", metric)
        with pytest.raises(ValueError, match="unknown metrics"):
            effect_report(con, year, shipped_config(), "agreement", path_for=("no_such",))
    finally:
        con.close()
    assert set(drawn.paths) == {metric} and plain.paths == {}
    path = drawn.paths[metric].table.set_index("relative")["estimate"]
    assert [round(path[month] / -4) for month in (1, 6, 12)] == [1, 6, 12]
    pd.testing.assert_frame_equal(drawn.paths[metric].table, alone.events.table, check_exact=True)
    assert drawn.paths[metric].pre_trend_p == alone.events.pre_trend_p
    pd.testing.assert_frame_equal(drawn.before_after, plain.before_after, check_exact=True)
    pd.testing.assert_frame_equal(drawn.cross_section, plain.cross_section, check_exact=True)


@pytest.mark.parametrize("control", [NEVER, NOT_YET])
def test_the_direct_two_stage_fit_equals_pyfixests_did2s(control: str) -> None:
    """The two-stage fit computed here (linear in compound-months) against pyfixest's did2s
    on the same rows: the ATT, the event path and their clustered GMM covariance agree to
    pyfixest's demeaning tolerance; and the ATT equals the estimator written out (exactly,
    where pyfixest's iterative demeaning stops at about 1e-6)."""
    from govdash.analytics.metrics.effect import (
        AFTER,
        PERIOD_BIN,
        _robust_design,
        _two_stage,
        _two_stage_pyfixest,
    )

    panel = unbalanced(staggered_panel(5))
    frame, _ = _robust_design(panel, "outcome", WINDOW, "tickets", control, 1, 1)
    fit = frame[~frame["is_treated"] | frame["is_after"]]
    fit = fit.assign(after=fit["is_after"].astype(int))
    events = frame.assign(period_bin=frame["bin"].where(frame["is_treated"], REFERENCE_BIN))
    for rows, regressor in ((fit, AFTER), (events, PERIOD_BIN)):
        direct = _two_stage(rows, "outcome", regressor)
        reference = _two_stage_pyfixest(rows, "outcome", regressor)
        assert direct[2] == [str(name) for name in reference[2]]
        assert direct[3] == reference[3]
        np.testing.assert_allclose(direct[0], reference[0], rtol=0, atol=1e-4)
        np.testing.assert_allclose(
            direct[1], reference[1], rtol=0, atol=1e-4 * np.abs(reference[1]).max()
        )
    att = _two_stage(fit, "outcome", AFTER)[0][0]
    assert att == pytest.approx(hand_robust(panel, control), abs=1e-9)


@pytest.mark.parametrize("control", [NEVER, NOT_YET])
def test_the_att_and_event_path_on_one_first_stage_equal_their_own_fits(control: str) -> None:
    """robust_effect fits the first stage once, on the whole design, for the ATT and the event
    path: its ATT equals the two-stage fit on the ATT's own rows (untreated and after), with
    the same error and compounds, and its event path the path fitted alone."""
    from govdash.analytics.metrics import effect as metrics

    panel = unbalanced(staggered_panel(7))
    frame, _ = metrics._robust_design(panel, "outcome", WINDOW, "tickets", control, 1, 1)
    fit = frame[~frame["is_treated"] | frame["is_after"]]
    fit = fit.assign(after=fit["is_after"].astype(int))
    # Never-signed controls: the design has rows the ATT leaves out (a signed compound's
    # months before its base); not yet signed: every treated row is after signing.
    assert (len(fit) < len(frame)) == (control == NEVER)
    coefficients, covariance, _, clusters = metrics._two_stage(fit, "outcome", metrics.AFTER)
    assert clusters == fit["unit"].nunique() == frame["unit"].nunique()
    result = robust_effect(panel, "outcome", WINDOW, "tickets", control)
    assert result.estimate.estimate == pytest.approx(coefficients[0], rel=1e-12)
    assert result.estimate.std_error == pytest.approx(math.sqrt(covariance[0, 0]), rel=1e-12)
    assert result.estimate.n_observations == len(fit)
    low, high = metrics._interval(coefficients[0], math.sqrt(covariance[0, 0]), clusters)
    assert (result.estimate.low, result.estimate.high) == pytest.approx((low, high), rel=1e-12)
    if control == NEVER:
        path = metrics._event_path(frame, "outcome")
        pd.testing.assert_frame_equal(result.events.table, path.table, check_exact=True)
        assert result.events.pre_trend_p == path.pre_trend_p


def test_the_month_products_dense_and_sparse_give_the_same_fits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The two-way fits' months × months products, through the dense compound × month table
    (small panels) or the sparse one (a table over DENSE_CROSS_CELLS): the same robust ATT,
    event path and TWFE figure to rounding."""
    from govdash.analytics.metrics import effect as metrics

    panel = unbalanced(staggered_panel(3))
    dense = robust_effect(panel, "outcome", WINDOW, "tickets")
    dense_twfe = difference_in_differences(panel, "outcome", WINDOW, "tickets")
    monkeypatch.setattr(metrics, "DENSE_CROSS_CELLS", 0)
    sparse = robust_effect(panel, "outcome", WINDOW, "tickets")
    sparse_twfe = difference_in_differences(panel, "outcome", WINDOW, "tickets")
    for a, b in ((dense.estimate, sparse.estimate), (dense_twfe, sparse_twfe)):
        assert (a.estimate, a.std_error) == pytest.approx((b.estimate, b.std_error), rel=1e-10)
        assert a.estimate != 0 and a.std_error > 0
    pd.testing.assert_frame_equal(dense.events.table, sparse.events.table, rtol=1e-10)


@pytest.mark.parametrize("weight", [None, "tickets"])
def test_the_direct_twfe_fit_equals_pyfixests_feols(weight: str | None) -> None:
    """The TWFE comparison solved here (exact two-way effects, CRV1 by compound) against
    pyfixest's feols with the same small-sample factors, on an unbalanced staggered panel."""
    from govdash.analytics.metrics.effect import _feols, _twfe_after, panel_sample

    panel = unbalanced(staggered_panel(6))
    sample = panel_sample(panel, "outcome", WINDOW, keep_signing_month=False, weight=weight)
    data = sample.assign(
        y=sample["outcome"].astype(float),
        after=(sample["is_treated_unit"] & (sample["relative"] >= 1)).astype(float),
        w=sample[weight].astype(float) if weight else 1.0,
    )
    coefficient, error = _twfe_after(data)
    fit = _feols(data, "y ~ after | unit + period")
    assert coefficient == pytest.approx(float(fit.coef()["after"]), abs=1e-6)
    assert error == pytest.approx(float(fit.se()["after"]), rel=1e-5)


def test_a_report_of_one_metric_holds_the_full_reports_figures_for_it(
    staggered: tuple[Path, float], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page fits the metric it shows: a report asked for one metric's before/after figures
    has exactly the full report's row, event path and diagnostics for it, and every metric's
    with/without comparison; for a ticket metric it reads no survey panel."""
    from govdash.analytics.queries import effect

    db, _ = staggered
    year = Filters.for_range(date(2025, 1, 1), date(2025, 12, 31))
    metric = "response_median_minutes"
    surveys: list[object] = []
    read = effect.compound_survey_figures

    def counted(*args: object, **kwargs: object) -> pd.DataFrame:
        surveys.append(args[3])  # the wave keys: None for the panel of every wave
        return read(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(effect, "compound_survey_figures", counted)
    con = open_db(db)
    try:
        full = effect_report(con, year, shipped_config(), "agreement", path_for=(metric,))
        assert None in surveys  # the full report fits the survey metric too
        surveys.clear()
        one = effect_report(
            con,
            year,
            shipped_config(),
            "agreement",
            path_for=(metric,),
            before_after_for=(metric,),
        )
        with pytest.raises(ValueError, match="unknown metrics"):
            effect_report(con, year, shipped_config(), "agreement", before_after_for=("nope",))
        span = con.execute("SELECT min(accepted_at), max(accepted_at) FROM tickets").fetchone()
    finally:
        con.close()
    assert None not in surveys and len(surveys) == 1  # the period's waves only
    assert list(one.before_after["metric"]) == [metric]
    assert len(full.before_after) == 8
    row = full.before_after[full.before_after["metric"] == metric].reset_index(drop=True)
    pd.testing.assert_frame_equal(one.before_after, row, check_exact=True)
    pd.testing.assert_frame_equal(one.cross_section, full.cross_section, check_exact=True)
    pd.testing.assert_frame_equal(
        one.paths[metric].table, full.paths[metric].table, check_exact=True
    )
    assert set(one.diagnostics) == {metric}
    pd.testing.assert_frame_equal(
        one.diagnostics[metric].cohorts, full.diagnostics[metric].cohorts, check_exact=True
    )
    assert (one.panel_first, one.panel_last) == (full.panel_first, full.panel_last)
    assert span is not None
    assert (one.panel_first, one.panel_last) == (
        span[0].date().replace(day=1),
        span[1].date().replace(day=1),
    )


def test_a_survey_metrics_report_reads_the_ticket_panels_rows_only(
    staggered: tuple[Path, float], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A report fitting a survey metric alone reads the monthly ticket panel's rows (its size
    and span) without its figures, and holds the full report's figures for the metric; where
    the panel is small enough to fit every metric at once, the figures are read after all and
    every metric is fitted as in the full report."""
    from govdash.analytics.queries import effect

    db, _ = staggered
    year = Filters.for_range(date(2025, 1, 1), date(2025, 12, 31))
    metric = "survey_satisfaction_rate"
    figures: list[bool] = []
    read = effect._stored_monthly_panel

    def counted(*args: object, **kwargs: object) -> pd.DataFrame | None:
        asked = args[3] if len(args) > 3 else ()
        assert isinstance(asked, tuple)
        figures.append(set(asked) == set(effect.PANEL_FIGURES) if asked else False)
        return read(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(effect, "_stored_monthly_panel", counted)
    config = shipped_config()
    con = open_db(db)
    try:
        full = effect_report(con, year, config, "agreement", path_for=(metric,))
        assert figures == [True]
        figures.clear()
        one = effect_report(
            con, year, config, "agreement", path_for=(metric,), before_after_for=(metric,)
        )
        assert figures == [False]  # the rows only
        figures.clear()
        every = effect_report(
            con,
            year,
            config,
            "agreement",
            path_for=(metric,),
            before_after_for=(metric,),
            every_metric_up_to=10**9,
        )
        assert figures == [False, True]  # small enough: the figures after all
    finally:
        con.close()
    row = full.before_after[full.before_after["metric"] == metric].reset_index(drop=True)
    pd.testing.assert_frame_equal(one.before_after, row, check_exact=True)
    pd.testing.assert_frame_equal(one.paths[metric].table, full.paths[metric].table)
    assert (one.panel_first, one.panel_last) == (full.panel_first, full.panel_last)
    assert one.panel_first is not None and one.panel_last is not None
    pd.testing.assert_frame_equal(every.before_after, full.before_after, check_exact=True)


def test_a_ticket_metrics_panel_reads_what_its_figures_are_made_of(
    staggered: tuple[Path, float], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The monthly panel read for one ticket metric (its figure and weight) has the same rows
    and, for those two, the same numbers as the panel of every figure; a report fitting that
    metric alone reads only them and holds the full report's figures for it."""
    from govdash.analytics.queries import effect

    db, _ = staggered
    config = shipped_config()
    year = Filters.for_range(date(2025, 1, 1), date(2025, 12, 31))
    everything = Filters.for_range(date(1900, 1, 1), date(2999, 12, 31))
    ticket_metrics = [m for m in EFFECT_METRICS if m.source == "tickets"]
    asked: list[tuple[str, ...]] = []
    read = effect._stored_monthly_panel

    def recorded(*args: object, **kwargs: object) -> pd.DataFrame | None:
        asked.append(tuple(args[3]) if len(args) > 3 else ())  # type: ignore[arg-type]
        return read(*args, **kwargs)  # type: ignore[arg-type]

    con = open_db(db)
    try:
        whole = effect._stored_monthly_panel(con, everything, config, effect.PANEL_FIGURES)
        assert whole is not None and len(whole) > 1000
        for metric in ticket_metrics:
            names = list(dict.fromkeys((metric.name, metric.weight)))
            alone = effect._stored_monthly_panel(con, everything, config, tuple(names))
            assert alone is not None
            assert list(alone.columns) == ["position", "period", *names]
            pd.testing.assert_frame_equal(
                alone, whole[["position", "period", *names]], check_exact=True
            )
        with pytest.raises(ValueError, match="not a panel figure"):
            effect._stored_monthly_panel(con, everything, config, ("tickets", "多余"))
        full = effect_report(con, year, config, "agreement", path_for=("satisfaction_rate",))
        monkeypatch.setattr(effect, "_stored_monthly_panel", recorded)
        one = effect_report(
            con,
            year,
            config,
            "agreement",
            path_for=("satisfaction_rate",),
            before_after_for=("satisfaction_rate",),
        )
    finally:
        con.close()
    assert asked == [("satisfaction_rate", "callback_n")]
    row = full.before_after[full.before_after["metric"] == "satisfaction_rate"]
    pd.testing.assert_frame_equal(one.before_after, row.reset_index(drop=True), check_exact=True)
    pd.testing.assert_frame_equal(
        one.paths["satisfaction_rate"].table, full.paths["satisfaction_rate"].table
    )


def test_each_ticket_figure_is_finished_from_the_inputs_it_names() -> None:
    """finish_ticket_stats asked for one figure reads only that figure's inputs (FIGURE_INPUTS:
    the other columns are absent) and gives it as it gives it among all of them: random
    counts, every input non-zero (so 基本满意, weighted in 满意率, is exercised). The panel's
    figures are among them."""
    from govdash.analytics.queries import effect
    from govdash.analytics.queries.tickets import FIGURE_INPUTS, finish_ticket_stats

    assert set(effect.PANEL_FIGURES) <= set(FIGURE_INPUTS)
    config = shipped_config()
    rng = np.random.default_rng(15)
    size = 300
    frame = pd.DataFrame(
        {c: rng.integers(1, 40, size).astype(float) for c in effect._COMPOUND_FIGURES}
    )
    frame["callback_n"] += 40  # more callbacks than any count of answers
    frame["callback_recorded_n"] = frame["callback_n"] - rng.integers(0, 5, size)
    frame.loc[::7, ["response_on_time", "satisfied"]] = math.nan  # a month without them
    whole = finish_ticket_stats(frame, config)
    assert set(FIGURE_INPUTS) <= set(whole.columns)
    for figure, inputs in FIGURE_INPUTS.items():
        alone = finish_ticket_stats(frame[list(dict.fromkeys(inputs))], config, (figure,))
        pd.testing.assert_series_equal(alone[figure], whole[figure], check_exact=True)
        assert whole[figure].notna().all(), figure
    with pytest.raises(ValueError, match="not a ticket figure"):
        finish_ticket_stats(frame, config, ("tickets", "多余"))


def test_the_panels_read_by_register_position_equal_those_read_by_name(
    staggered: tuple[Path, float], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A city's compound-months are fetched as register positions, not names: the same rows in
    the same order with the same figures as the names' query gives, and so the same report to
    the bit; the survey rows' positions name the compounds the names' query names."""
    from govdash.analytics.queries import effect

    db, _ = staggered
    config = shipped_config()
    year = Filters.for_range(date(2025, 1, 1), date(2025, 12, 31))
    everything = Filters.for_range(date(1900, 1, 1), date(2999, 12, 31))
    con = open_db(db)
    try:
        register = compound_register(con, year, "agreement")
        assert effect._stored_monthly_panel(con, everything, config, ("tickets",)) is not None
        by_position = effect.before_after_panels(con, year, config, register)
        positioned = effect_report(con, year, config, "agreement", path_for=("satisfaction_rate",))
        monkeypatch.setattr(effect, "_stored_monthly_panel", lambda *args: None)
        by_name = effect.before_after_panels(con, year, config, register)
        named = effect_report(con, year, config, "agreement", path_for=("satisfaction_rate",))
    finally:
        con.close()
    assert len(by_position.monthly) > 1000 and "month" not in by_position.monthly
    pd.testing.assert_frame_equal(
        by_position.monthly, by_name.monthly[list(by_position.monthly.columns)], check_exact=True
    )
    pd.testing.assert_frame_equal(
        by_position.waves, by_name.waves[list(by_position.waves.columns)], check_exact=True
    )
    pd.testing.assert_frame_equal(positioned.before_after, named.before_after, check_exact=True)
    pd.testing.assert_frame_equal(
        positioned.paths["satisfaction_rate"].table,
        named.paths["satisfaction_rate"].table,
        check_exact=True,
    )


def test_survey_rows_by_register_position_are_the_rows_by_name(tmp_path: Path) -> None:
    """The survey figures keyed by register position: the same rows, in the same order, with
    the same counts as those keyed by name, each position naming its row's compound."""
    from govdash.analytics.queries import effect

    db, _ = build_main(tmp_path)
    everything = Filters.for_range(date(1900, 1, 1), date(2999, 12, 31))
    con = open_db(db)
    try:
        register = compound_register(con, everything, "agreement")
        survey = effect.compound_survey_figures(
            con, everything, shipped_config(), None, positions=True
        )
        named = effect.compound_survey_figures(con, everything, shipped_config(), None)
    finally:
        con.close()
    assert len(survey) == len(named) > 2
    assert list(register["unit"].to_numpy()[survey["position"]]) == list(named["unit"])
    pd.testing.assert_frame_equal(
        survey.drop(columns="position"), named.drop(columns="unit"), check_exact=True
    )


@pytest.mark.parametrize("control", [NEVER, NOT_YET])
def test_the_event_paths_second_stage_per_period_equals_the_dense_one(
    control: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The event path's second stage taken period by period (no rows × periods dummies) gives
    the dense design's figures (to 1e-12: the same terms, added up in row order instead of
    BLAS's) while the weights are halves of counts, and the dense design is used for any
    other weights."""
    from govdash.analytics.metrics import effect as metrics

    panel = synthetic_panel(-5.0, seed=11)
    frame, _ = metrics._robust_design(panel, "outcome", WINDOW, "tickets", control, 1, 1)
    frame = frame.copy()
    frame.loc[frame.index[::7], "w"] = frame.loc[frame.index[::7], "w"] / 2  # halves too
    assert metrics._sums_exactly(frame["w"].to_numpy(float))
    assert not metrics._sums_exactly(frame["w"].to_numpy(float) * 0.3)
    binned = metrics._event_path(frame, "outcome")
    monkeypatch.setattr(metrics, "_sums_exactly", lambda w: False)
    dense = metrics._event_path(frame, "outcome")
    # Never-signed controls: months −12…12 but the signing month; not yet signed: the
    # reference and the months after (its months before come from the never-signed fit).
    periods, before = (2 * WINDOW, WINDOW - 1) if control == NEVER else (WINDOW + 1, 0)
    assert len(binned.table) == periods and binned.pre_periods == before
    pd.testing.assert_frame_equal(binned.table, dense.table, check_exact=False, rtol=1e-12)
    assert binned.pre_trend_p == pytest.approx(dense.pre_trend_p, rel=1e-12, nan_ok=True)
