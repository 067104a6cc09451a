"""The 治理成效 estimators on panels made here, checked against planted effects and hand sums.

The difference-in-differences is compared with an explicit least-squares fit on compound and
month dummies (numpy), and its standard error with the CRV1 formula written out here; the
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
    REFERENCE_BIN,
    difference_in_differences,
    event_study,
    localise_strata,
    size_band,
    size_band_labels,
    stratified_difference,
)
from govdash.analytics.queries.effect import (
    compound_register,
    compound_ticket_figures,
    cross_section_groups,
    panel_onsets,
    register_coverage,
)
from govdash.analytics.queries.filters import Filters
from tests.analytics.warehouse_data import build, open_db, shipped_config
from tests.conftest import ticket_row, ticket_sheet, write_xlsx

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
    """β and its CRV1 standard error from explicit dummies (compound effects not counted in K)."""
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
    k = 1 + months.shape[1]
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


def test_the_event_study_is_flat_before_and_at_the_effect_after() -> None:
    study = event_study(synthetic_panel(5.0, seed=3), "outcome", WINDOW)
    events = study.table
    assert list(events["relative"]) == list(range(-WINDOW, WINDOW + 1))
    reference = events[events["is_reference"]]
    assert reference["relative"].tolist() == [REFERENCE_BIN]
    assert reference[["estimate", "low", "high"]].to_numpy().tolist() == [[0.0, 0.0, 0.0]]
    before = events[events["relative"] < -1]
    after = events[events["relative"] >= 1]
    # Every coefficient is measured against the one reference month, whose own noise shifts
    # them all alike: so the jump from before to after is the planted effect, and the months
    # before lie flat around the reference.
    assert after["estimate"].mean() - before["estimate"].mean() == pytest.approx(5.0, abs=0.5)
    assert before["estimate"].std() < 1.0
    covered = ((after["low"] < 5.0) & (after["high"] > 5.0)).mean()
    assert covered >= 0.75  # 95% intervals: most months cover the planted effect
    assert (events["low"] <= events["estimate"]).all()
    assert (events["estimate"] <= events["high"]).all()
    # No trend before signing was planted: the joint test of the 11 earlier months passes.
    assert study.pre_periods == WINDOW - 1
    assert study.pre_trend_p > 0.05


def test_a_trend_before_signing_is_flagged() -> None:
    panel = synthetic_panel(0.0, seed=3)
    relative = panel["period"] - panel["onset"]
    # Signed compounds improving steadily before they sign: 1 point a month up to signing.
    panel["outcome"] += np.where(relative.between(-WINDOW, -1), relative + WINDOW, 0.0)
    study = event_study(panel, "outcome", WINDOW)
    assert study.pre_trend_p < 0.001


def test_half_year_bins_for_surveys() -> None:
    events = event_study(synthetic_panel(5.0, seed=3), "outcome", WINDOW, bin_months=6).table
    assert list(events["relative"]) == [-2, -1, 0, 1]
    assert events.loc[events["relative"] == 1, "estimate"].iloc[0] == pytest.approx(5.0, abs=1.5)


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
