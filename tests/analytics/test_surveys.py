"""Survey queries: the wave rule, household-weighted roll-ups by hand arithmetic, and more."""

from __future__ import annotations

import json
import math
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

from govdash.analytics.queries import surveys
from govdash.analytics.queries.filters import Filters
from tests.analytics.warehouse_data import (
    build_main,
    expected_tickets,
    open_db,
    select,
    shipped_config,
)

CONFIG = shipped_config()
YEAR_2025 = Filters.for_year(2025)
OVERALL = "总体满意度"


@pytest.fixture(scope="module")
def main(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[duckdb.DuckDBPyConnection, pd.DataFrame]]:
    db, rows = build_main(tmp_path_factory.mktemp("surveys"))
    con = open_db(db)
    yield con, expected_tickets(rows)
    con.close()


def wilson(p: float, n: float, z: float = 1.96) -> tuple[float, float]:
    """Written out again here from the textbook formula."""
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def row_of(frame: pd.DataFrame, unit: str, item: str = OVERALL) -> pd.Series:
    found = frame[(frame["unit"] == unit) & (frame["item"] == item)]
    assert len(found) == 1, (unit, item, found)
    return found.iloc[0]


@pytest.mark.parametrize(
    ("filters", "waves"),
    [
        (YEAR_2025, [202501]),
        (Filters.for_quarter(2025, 2), [202501]),  # surveyed 20 May – 10 June
        (Filters.for_month(2025, 6), [202501]),
        (Filters.for_quarter(2025, 1), []),  # before the survey went out
        (Filters.for_year(2024), [202402]),
        (Filters.for_range(date(2024, 7, 1), date(2025, 6, 30)), [202402, 202501]),
        (Filters.for_quarter(2023, 3), [202302]),  # undated: its half-year, July–December
        (Filters.for_quarter(2023, 1), []),
    ],
)
def test_a_period_holds_the_waves_it_overlaps(
    main: Any, filters: Filters, waves: list[int]
) -> None:
    con, _ = main
    assert surveys.wave_keys_in_period(con, filters) == waves


def test_community_rate_weights_compounds_by_households(main: Any) -> None:
    con, _ = main
    rates = surveys.survey_item_rates(con, YEAR_2025, CONFIG, "community")
    east = row_of(rates, "东社区")
    # 东一小区: 100 households, 8 of 10 satisfied, mean 4.0
    # 东二小区: 300 households, 1 of 4 satisfied, mean 2.25
    assert east["rate"] == pytest.approx((100 * 0.8 + 300 * 0.25) / 400)  # 0.3875, pooled 9/14
    assert east["mean_score"] == pytest.approx((100 * 4.0 + 300 * 2.25) / 400)  # 2.6875
    assert east["satisfaction_index"] == pytest.approx((2.6875 - 1) / 4 * 100)
    assert (east["n"], east["satisfied"], east["respondents"]) == (14, 9, 14)
    assert east["households"] == 400
    assert east["response_rate"] == pytest.approx(14 / 400)
    assert bool(east["is_small_sample"]) and east["sample_label"] == "样本不足"
    effective_n = 400**2 / (100**2 / 10 + 300**2 / 4)
    assert east["effective_n"] == pytest.approx(effective_n)
    low, high = wilson(0.3875, effective_n)
    assert (east["wilson_low"], east["wilson_high"]) == pytest.approx((low, high))
    assert east["parent"] == "甲街道"
    west = row_of(rates, "西社区")
    # 西一小区 answered (200 households, 30 of 40); 西二小区 (400 households) did not.
    assert west["rate"] == pytest.approx(0.75)
    assert west["mean_score"] == pytest.approx(3.875)
    assert west["households"] == 600
    assert west["response_rate"] == pytest.approx(40 / 600)
    assert not bool(west["is_small_sample"])
    assert west["effective_n"] == pytest.approx(40)
    assert "南社区" not in set(rates["unit"])  # no answers in 2025


def test_street_and_company_roll_ups(main: Any) -> None:
    con, _ = main
    street = row_of(surveys.survey_item_rates(con, YEAR_2025, CONFIG, "street"), "甲街道")
    assert street["rate"] == pytest.approx((100 * 0.8 + 300 * 0.25 + 200 * 0.75) / 600)
    assert street["households"] == 1000  # 西二小区 counts for the response rate
    assert street["respondents"] == 54
    assert street["response_rate"] == pytest.approx(54 / 1000)
    company = row_of(
        surveys.survey_item_rates(con, YEAR_2025, CONFIG, "property_company"), "安居物业"
    )
    assert company["rate"] == pytest.approx((100 * 0.8 + 200 * 0.75) / 300)
    everything = row_of(surveys.survey_item_rates(con, YEAR_2025, CONFIG, "all"), "全部")
    assert everything["rate"] == pytest.approx(street["rate"])


def test_compound_rates_count_only_answers_given(main: Any) -> None:
    con, _ = main
    rates = surveys.survey_item_rates(con, YEAR_2025, CONFIG, "compound")
    service = row_of(rates, "东一小区", "客户服务")
    assert (service["n"], service["satisfied"], service["rate"]) == (6, 3, 0.5)
    assert service["respondents"] == 10
    overall = row_of(rates, "东一小区")
    assert (overall["rate"], overall["effective_n"]) == (0.8, 10)
    low, high = wilson(0.8, 10)
    assert (round(overall["wilson_low"], 4), round(overall["wilson_high"], 4)) == (0.4902, 0.9433)
    assert overall["wilson_low"] == pytest.approx(low) and overall["wilson_high"] == pytest.approx(
        high
    )
    assert overall["parent"] == "东社区"
    assert rates["item"].tolist()[:2] == ["客户服务", "总体满意度"]  # config order


def test_several_waves_pool_answers_and_average_the_response_rate(main: Any) -> None:
    con, _ = main
    year_to_june = Filters.for_range(date(2024, 7, 1), date(2025, 6, 30))
    east_one = row_of(surveys.survey_item_rates(con, year_to_june, CONFIG, "compound"), "东一小区")
    assert (east_one["n"], east_one["satisfied"]) == (15, 11)  # 5 + 10 answers, 3 + 8 satisfied
    assert east_one["respondents"] == 15
    assert east_one["response_rate"] == pytest.approx(15 / 2 / 100)  # two waves, 100 households


def test_place_filters_narrow_the_survey(main: Any) -> None:
    con, _ = main
    company = YEAR_2025.with_selection(property_company=["安居物业"])
    units = set(surveys.survey_item_rates(con, company, CONFIG, "compound")["unit"])
    assert units == {"东一小区", "西一小区"}  # a survey sheet has no company column
    east = YEAR_2025.with_selection(community=["东社区"])
    assert set(surveys.survey_item_rates(con, east, CONFIG, "community")["unit"]) == {"东社区"}


def test_roll_up_by_hand_with_missing_households() -> None:
    counts = pd.DataFrame(
        [
            # street, community, compound, company, households, respondents, item, n, satisfied, score_sum
            ("s", "c1", "a", "p", 100.0, 10, "总体满意度", 10, 5, 35.0),
            ("s", "c1", "b", "p", None, 20, "总体满意度", 20, 20, 90.0),  # no household count
            ("s", "c2", "d", "p", None, 4, "总体满意度", 4, 1, 10.0),
            ("s", "c2", "e", "p", 0.0, 6, "总体满意度", 6, 6, 30.0),
            ("s", "c3", "f", None, 50.0, 0, None, 0, 0, 0.0),  # no answers at all
        ],
        columns=[
            *("street", "community", "compound", "property_company", "households"),
            *("respondents", "item", "n", "satisfied", "score_sum"),
        ],
    )
    rates = surveys.roll_up_item_rates(counts, "community", CONFIG)
    c1 = row_of(rates, "c1")
    # Only compound a carries a weight; b's answers still count in n.
    assert c1["rate"] == pytest.approx(0.5) and bool(c1["is_household_weighted"])
    assert (c1["n"], c1["respondents"], c1["households"]) == (30, 30, 100)
    c2 = row_of(rates, "c2")
    # No answering compound has households: pooled (1 + 6) / (4 + 6).
    assert c2["rate"] == pytest.approx(0.7) and not bool(c2["is_household_weighted"])
    assert c2["mean_score"] == pytest.approx(40 / 10)
    assert math.isnan(c2["response_rate"])  # households 0 + unknown
    assert "c3" not in set(rates["unit"])
    street = row_of(surveys.roll_up_item_rates(counts, "street", CONFIG), "s")
    assert street["households"] == 150
    assert street["rate"] == pytest.approx(0.5)  # only a is weighted


def test_compound_rates_by_hand() -> None:
    """Compound rows, each its own unit, with the values worked out by hand: a compound's
    rate is its own (households or not), its Wilson interval that of its n, its response rate
    respondents ÷ (households × waves); the same name in two communities is two units, ordered
    by unit, the config's item order, item, then as the rows name them."""
    counts = pd.DataFrame(
        [
            # street, community, compound, company, households, respondents, item, n, satisfied, score_sum
            ("s", "c1", "a", "p", 100.0, 10, "总体满意度", 10, 5, 35.0),
            ("s", "c1", "a", "p", 100.0, 10, "环境卫生", 8, 6, 30.0),
            ("s", "c1", "b", "p", None, 20, "总体满意度", 20, 20, 90.0),  # no household count
            ("s", "c1", "b", "p", None, 20, "环境卫生", 0, 0, 0.0),  # blank answers only
            ("s", "c1", "z", "p", 0.0, 6, "总体满意度", 6, 3, 18.0),  # 0 households
            ("s", "c2", "a", "p", 40.0, 4, "总体满意度", 4, 1, 10.0),  # the same name elsewhere
            ("s", None, "f", None, 50.0, 3, "总体满意度", 3, 3, 15.0),  # no community
            ("s", None, "g", None, 50.0, 0, None, 0, 0, 0.0),  # no answers at all
        ],
        columns=[
            *("street", "community", "compound", "property_company", "households"),
            *("respondents", "item", "n", "satisfied", "score_sum"),
        ],
    )
    rows = surveys.roll_up_item_rates(counts, "compound", CONFIG, waves=2)
    assert list(zip(rows["unit"], rows["parent"].fillna("-"), rows["item"], strict=True)) == [
        ("a", "c1", "环境卫生"),  # the config's item order: 环境卫生 before 总体满意度
        ("a", "c1", "总体满意度"),
        ("a", "c2", "总体满意度"),
        ("b", "c1", "总体满意度"),
        ("f", "-", "总体满意度"),
        ("z", "c1", "总体满意度"),
    ]
    a_c2 = rows.iloc[2]
    assert (a_c2["rate"], a_c2["mean_score"], a_c2["response_rate"]) == (0.25, 2.5, 4 / 80)
    low, high = wilson(0.25, 4)
    assert a_c2["wilson_low"] == pytest.approx(low) and a_c2["wilson_high"] == pytest.approx(high)
    assert bool(a_c2["is_household_weighted"]) and a_c2["effective_n"] == pytest.approx(4)
    b = rows.iloc[3]  # pooled: no household count
    assert (b["rate"], b["n"], bool(b["is_household_weighted"])) == (1.0, 20, False)
    z = rows.iloc[5]
    assert z["rate"] == 0.5 and not bool(z["is_household_weighted"])
    assert math.isnan(z["response_rate"])
    # a compound × item twice is one unit × item (their counts added)
    twice = pd.concat([counts.iloc[:1], counts], ignore_index=True)
    added = surveys.roll_up_item_rates(twice, "compound", CONFIG, waves=2)
    assert (added.iloc[1]["n"], added.iloc[1]["satisfied"]) == (20, 10)
    pd.testing.assert_frame_equal(
        added.drop(index=1).reset_index(drop=True), rows.drop(index=1).reset_index(drop=True)
    )


def test_a_units_parent_is_the_one_its_first_compound_names() -> None:
    """A community whose compounds name two streets (a register slip) is one unit, under the
    street its first compound by name names, whatever the rows' order."""
    counts = pd.DataFrame(
        [
            (None, "c1", "a", "p", 10.0, 5, "总体满意度", 5, 5, 25.0),
            ("s2", "c1", "b", "p", 10.0, 5, "总体满意度", 5, 0, 5.0),
            ("s1", "c1", "c", "p", 10.0, 5, "总体满意度", 5, 5, 25.0),
        ],
        columns=list(surveys.COUNTS_COLUMNS),
    )
    for order in ([0, 1, 2], [2, 1, 0], [2, 0, 1]):
        rates = surveys.roll_up_item_rates(counts.iloc[order], "community", CONFIG)
        assert list(rates["parent"]) == ["s2"] and rates.iloc[0]["rate"] == pytest.approx(2 / 3)
        assert rates.iloc[0]["households"] == 30 and rates.iloc[0]["respondents"] == 15


def test_unit_profile_against_the_street(main: Any) -> None:
    con, _ = main
    profile = surveys.unit_profile(con, YEAR_2025, CONFIG, "compound", "东一小区").set_index("item")
    assert profile.loc[OVERALL, "unit_rate"] == 0.8
    assert profile.loc[OVERALL, "n"] == 10
    assert profile.loc[OVERALL, "street_average_rate"] == pytest.approx(305 / 600)
    # 客户服务: 东一 3/6 (100 households), 东二 0/4 (300), 西一 40/40 (200)
    assert profile.loc["客户服务", "unit_rate"] == 0.5
    assert profile.loc["客户服务", "street_average_rate"] == pytest.approx((50 + 0 + 200) / 600)
    assert profile.loc["客户服务", "street_n"] == 50
    assert bool(profile.loc[OVERALL, "is_small_sample"])


def test_wave_change_compares_with_the_wave_before(main: Any) -> None:
    con, _ = main
    change = surveys.wave_change(con, YEAR_2025, CONFIG, "compound")
    east_one = row_of(change, "东一小区")
    assert (east_one["previous_wave"], east_one["current_wave"]) == ("2024年下半年", "2025年上半年")
    assert (east_one["previous_rate"], east_one["current_rate"]) == (0.6, 0.8)
    assert east_one["change"] == pytest.approx(0.2)
    assert (east_one["previous_n"], east_one["current_n"]) == (5, 10)
    west_one = row_of(change, "西一小区")
    assert math.isnan(west_one["previous_rate"]) and west_one["previous_n"] == 0
    assert surveys.wave_change(con, Filters.for_quarter(2025, 1), CONFIG, "compound").empty


@pytest.mark.parametrize(
    ("filters", "waves"),
    [
        (Filters.for_quarter(2025, 2), [202402, 202501]),  # the latest and the one before
        (Filters.for_range(date(2024, 7, 1), date(2025, 6, 30)), [202402, 202501]),
        (Filters.for_year(2024), [202302, 202402]),  # 2024年下半年 and 2023年下半年
        (
            Filters.for_range(date(2024, 7, 1), date(2025, 6, 30)).with_selection(
                community=["东社区"]
            ),
            [202402, 202501],
        ),
        (Filters.for_quarter(2025, 1), []),  # no wave
    ],
)
@pytest.mark.parametrize("level", ["compound", "community", "property_company"])
def test_satisfaction_rates_equal_item_rates_and_wave_change(
    main: Any, monkeypatch: pytest.MonkeyPatch, filters: Filters, waves: list[int], level: str
) -> None:
    """The 满意度 page's one call gives exactly what the two queries give of its item, every
    set of waves it needs (the period's waves, the latest one and the one before it) counted
    and rolled up by one query; an item's rows are those of every item's frame."""
    con, _ = main
    read: list[list[tuple[int, ...]]] = []
    of_sets = surveys._item_rates_of_sets

    def counted(*args: Any, **kwargs: Any) -> list[pd.DataFrame]:
        read.append([tuple(keys) for keys in args[4]])
        return of_sets(*args, **kwargs)

    for item in (OVERALL, "客户服务"):
        expected_rates = surveys.survey_item_rates(con, filters, CONFIG, level, item)
        expected_change = surveys.wave_change(con, filters, CONFIG, level, item)
        read.clear()
        with monkeypatch.context() as patch:
            patch.setattr(surveys, "_item_rates_of_sets", counted)
            rates, change, in_period = surveys.satisfaction_rates(con, filters, CONFIG, level, item)
        pd.testing.assert_frame_equal(rates, expected_rates, check_exact=True)
        pd.testing.assert_frame_equal(change, expected_change, check_exact=True)
        assert in_period == surveys.wave_keys_in_period(con, filters)
        sets = [tuple(in_period), *[(key,) for key in waves]]
        assert read == [list(dict.fromkeys(sets))]  # each set once, by one query
        every_item = surveys.survey_item_rates(con, filters, CONFIG, level)
        of_item = every_item[every_item["item"] == item].reset_index(drop=True)
        pd.testing.assert_frame_equal(rates, of_item, check_dtype=not of_item.empty)
        every_change = surveys.wave_change(con, filters, CONFIG, level)
        of_item = every_change[every_change["item"] == item].reset_index(drop=True)
        pd.testing.assert_frame_equal(change, of_item, check_dtype=False)
        assert set(rates["item"]) <= {item} and set(change["item"]) <= {item}
    if (
        filters == Filters.for_quarter(2025, 2) and level == "compound"
    ):  # 东一小区: 8 of 10 satisfied, after 3 of 5
        east_one = row_of(change, "东一小区", "客户服务")
        assert row_of(rates, "东一小区", "客户服务")["rate"] == 0.5  # 3 of 6
        east_one = row_of(surveys.wave_change(con, filters, CONFIG, level, OVERALL), "东一小区")
        assert (east_one["previous_rate"], east_one["current_rate"]) == (0.6, 0.8)


@pytest.mark.parametrize(
    "selection",
    [{}, {"community": ["东社区"]}, {"street": ["甲街道"]}],
    ids=["all", "community", "street"],
)
@pytest.mark.parametrize("level", list(surveys.SURVEY_LEVELS))
def test_the_warehouse_roll_up_equals_the_roll_up_of_the_counts(
    main: Any, selection: dict[str, Any], level: str
) -> None:
    """The one query that counts and rolls up in the warehouse gives the rates
    roll_up_item_rates makes of compound_item_counts' frame: every wave set, selection and
    level (units, parents, order, dtypes)."""
    con, _ = main
    filters = Filters.for_range(date(2023, 1, 1), date(2025, 12, 31)).with_selection(**selection)
    waves = surveys.wave_keys_in_period(con, filters)
    assert len(waves) >= 3
    answered = 0
    for keys in [waves, *[[key] for key in waves], waves[-2:], []]:
        counts = surveys.compound_item_counts(con, filters, CONFIG, keys)
        expected = surveys.roll_up_item_rates(counts, level, CONFIG, len(keys))
        found = surveys._item_rates(con, filters, CONFIG, level, keys)
        pd.testing.assert_frame_equal(found, expected)
        answered += len(found)
    assert answered > 0


@pytest.mark.parametrize(
    ("filters", "reads"),  # the sets of waves read (by one query)
    [
        (Filters.for_month(2025, 6), 1),  # May and June both hold the survey of 20 May–10 June
        (YEAR_2025, 2),  # 2024 holds another wave
        (Filters.for_month(2025, 6).with_selection(community=["东社区"]), 1),
    ],
)
def test_rates_now_and_before_equal_two_calls(
    main: Any, monkeypatch: pytest.MonkeyPatch, filters: Filters, reads: int
) -> None:
    """总览's period and the one before: the frames survey_item_rates gives for each, both
    periods' waves read by one query, and once when they hold the same waves."""
    con, _ = main
    previous = filters.previous()
    read: list[int] = []
    of_sets = surveys._item_rates_of_sets

    def counted(*args: Any, **kwargs: Any) -> list[pd.DataFrame]:
        read.append(len(args[4]))
        return of_sets(*args, **kwargs)

    for item in (None, OVERALL):  # 总览 asks for its overall item only
        expected_now = surveys.survey_item_rates(con, filters, CONFIG, "all", item)
        expected_before = surveys.survey_item_rates(con, previous, CONFIG, "all", item)
        read.clear()
        with monkeypatch.context() as patch:
            patch.setattr(surveys, "_item_rates_of_sets", counted)
            now, before = surveys.survey_item_rates_now_and_before(
                con, filters, previous, CONFIG, "all", item
            )
        pd.testing.assert_frame_equal(now, expected_now, check_exact=True)
        pd.testing.assert_frame_equal(before, expected_before, check_exact=True)
        assert read == [reads]  # one query: the two periods' waves, or one set when the same
        if reads == 1:  # the same waves: the same rates (东一 8/10 … in June and in May)
            pd.testing.assert_frame_equal(before, now, check_exact=True)
            assert not now.empty
        else:
            assert row_of(before, "全部")["n"] == 5  # 2024年下半年: 东一小区's five answers
        assert set(now["item"]) == (
            {OVERALL} if item else set(CONFIG.survey_items) & set(now["item"])
        )
    assert len(set(expected_now["item"])) == 1


@pytest.mark.parametrize(
    "filters",
    [YEAR_2025, Filters.for_year(2024), Filters.for_quarter(2025, 1)],  # Q1: no wave, no item
    ids=["2025", "2024", "no-wave"],
)
def test_counts_read_through_arrow_equal_duckdbs_own_frame(
    main: Any, monkeypatch: pytest.MonkeyPatch, filters: Filters
) -> None:
    """The per-compound counts taken through Arrow are the frame DuckDB's own conversion
    gives, dtypes included (a text column with no value at all is objects, not strings)."""
    con, _ = main
    wave_keys = surveys.wave_keys_in_period(con, filters)
    through_arrow = surveys.compound_item_counts(con, filters, CONFIG, wave_keys)
    monkeypatch.setattr(surveys, "_frame_through_arrow", surveys.run_query)
    plain = surveys.compound_item_counts(con, filters, CONFIG, wave_keys)
    pd.testing.assert_frame_equal(through_arrow, plain, check_exact=True)
    assert len(plain) >= 3 and (plain["item"].isna().all() == (not wave_keys))


def test_callback_satisfaction_trend(main: Any) -> None:
    con, frame = main
    trend = surveys.callback_satisfaction_trend(con, Filters.for_quarter(2025, 1), CONFIG)
    assert len(trend) == 9  # 3 months × 3 answers
    for month in (1, 2, 3):
        end = (pd.Timestamp(2025, month, 1) + pd.offsets.MonthEnd(0)).date()
        rows = select(frame, date(2025, month, 1), end)
        rated = rows[(rows.valid_callback == "是") & (rows.satisfaction != "")]
        got = trend[trend["month"] == pd.Timestamp(2025, month, 1)].set_index("satisfaction")
        for level in ("满意", "基本满意", "不满意"):
            count = int((rated.satisfaction == level).sum())
            assert got.loc[level, "tickets"] == count
            assert got.loc[level, "share"] == pytest.approx(count / len(rated))


def test_comment_words(main: Any) -> None:
    con, _ = main
    words = surveys.comment_words(con, YEAR_2025, CONFIG)
    found = {row.word: (row.count, row.comments) for row in words.itertuples()}
    # 6 × 电梯维修太慢 (东一), 5 × 电梯故障多 (西一); 绿化 and 停车位 are in too few comments.
    assert found == {"电梯": (11, 11), "维修": (6, 6), "太慢": (6, 6), "故障": (5, 5)}
    assert words["word"].iloc[0] == "电梯"
    earlier = surveys.comment_words(con, Filters.for_year(2024), CONFIG)
    assert dict(zip(earlier["word"], earlier["count"], strict=True))["电梯"] == 5
    assert surveys.comment_words(con, Filters.for_quarter(2025, 1), CONFIG).empty


def test_comment_words_without_jieba_count_bigrams(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(surveys, "_tokenizer", lambda: None)
    words = surveys.count_comment_words(["电梯坏了 [电话]"] * 5 + ["电梯"], min_comments=5)
    found = dict(zip(words["word"], words["count"], strict=True))
    assert found == {"电梯": 6, "梯坏": 5, "坏了": 5}


def test_empty_period_gives_empty_frames(main: Any) -> None:
    con, _ = main
    nothing = Filters.for_quarter(2025, 1)
    assert surveys.survey_item_rates(con, nothing, CONFIG, "community").empty
    assert surveys.unit_profile(con, nothing, CONFIG, "community", "东社区").empty
    hostile = YEAR_2025.with_selection(community=["'; DROP TABLE survey_answers; --"])
    assert surveys.survey_item_rates(con, hostile, CONFIG, "compound").empty
    assert con.execute("SELECT count(*) FROM survey_answers").fetchone()[0] > 0


def test_unknown_levels_are_refused(main: Any) -> None:
    con, _ = main
    with pytest.raises(ValueError):
        surveys.survey_item_rates(con, YEAR_2025, CONFIG, "building; DROP")


ROOT = Path(__file__).resolve().parents[2]


# A process that cuts one text with the tokenizer _tokenizer() gives and prints what it holds.
# With FAIL_INITIALIZE, jieba's own loading (its marshal cache) raises: the copy must serve.
_CUT_SCRIPT = """
import json, os, jieba
if os.environ.get("FAIL_INITIALIZE"):
    def refuse(*args, **kwargs):
        raise RuntimeError("jieba.initialize called")
    jieba.Tokenizer.initialize = refuse
from govdash.analytics.queries.surveys import _tokenizer
cutter = _tokenizer()
print(json.dumps([cutter.dt.total, len(cutter.dt.FREQ), cutter.lcut("电梯经常坏希望物业尽快修理停车管理")]))
"""


def _cut(cache: Path, script: str = _CUT_SCRIPT, fail_initialize: bool = False) -> Any:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    env.pop("FAIL_INITIALIZE", None)
    if fail_initialize:
        env["FAIL_INITIALIZE"] = "1"
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, cwd=ROOT
    )
    if done.returncode:
        return done.stderr.strip().splitlines()[-1]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_word_cutter_loads_jiebas_dictionary_from_a_private_copy(tmp_path: Path) -> None:
    """jieba's dictionary is kept pickled in the user's cache (a quarter of jieba's own load
    time) and cuts exactly as jieba's own loading does; a copy others may write is not read."""
    pytest.importorskip("jieba")
    plain = _cut(tmp_path / "unused", "import json, jieba; jieba.initialize(); d = jieba.dt; "
                 "print(json.dumps([d.total, len(d.FREQ), "
                 "jieba.lcut('电梯经常坏希望物业尽快修理停车管理')]))")  # fmt: skip
    first = _cut(tmp_path)  # jieba's own loading, then the copy is written
    (copy,) = (tmp_path / "govdash").glob("jieba-*.pickle")
    assert stat.S_IMODE(copy.parent.stat().st_mode) == 0o700
    assert not stat.S_IMODE(copy.stat().st_mode) & 0o077
    second = _cut(tmp_path, fail_initialize=True)  # from the copy alone
    assert first == second == plain
    assert plain[1] > 300_000 and "电梯" in plain[2]
    copy.chmod(0o666)
    assert "jieba.initialize called" in _cut(tmp_path, fail_initialize=True)
