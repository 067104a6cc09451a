"""Unit tables, the composite, the 红黑榜 and the drill-down."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest

from govdash.analytics.queries import units
from govdash.analytics.queries.filters import Filters
from tests.analytics.warehouse_data import (
    build_main,
    expected_tickets,
    open_db,
    register_frame,
    select,
    shipped_config,
)

CONFIG = shipped_config()
Q1 = Filters.for_quarter(2025, 1)
YEAR_2025 = Filters.for_year(2025)


@pytest.fixture(scope="module")
def main(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[duckdb.DuckDBPyConnection, pd.DataFrame]]:
    db, rows = build_main(tmp_path_factory.mktemp("units"))
    con = open_db(db)
    yield con, expected_tickets(rows)
    con.close()


@pytest.mark.parametrize(
    ("level", "column"),
    [("community", "community"), ("compound", "compound"), ("property_company", "company")],
)
def test_unit_table_matches_an_independent_computation(main: Any, level: str, column: str) -> None:
    con, frame = main
    table = units.unit_table(con, Q1, CONFIG, level).set_index("unit")
    rows = select(frame, Q1.start, Q1.end)
    register = register_frame()
    register = register[register[column] != ""]
    households = register.groupby(column)["households"].sum()
    assert set(table.index) == set(households.index)
    for unit, group in rows[rows[column] != ""].groupby(column):
        row = table.loc[unit]
        assert row["tickets"] == len(group)
        assert row["households"] == households[unit]
        assert row["tickets_per_100_households"] == pytest.approx(
            len(group) / households[unit] * 100
        )
        responses = group.response_minutes.dropna()
        assert row["response_median_minutes"] == pytest.approx(responses.quantile(0.5))
        assert row["response_p90_minutes"] == pytest.approx(responses.quantile(0.9))
        counted = group[group.response_status.isin(["on_time", "late"])]
        assert row["response_on_time_n"] == len(counted)
        assert row["response_on_time_rate"] == pytest.approx(
            (counted.response_status == "on_time").mean()
        )
        base = group[group.valid_callback == "是"]
        assert row["callback_n"] == len(base)
        satisfaction = (
            (base.satisfaction == "满意").sum() + 0.9 * (base.satisfaction == "基本满意").sum()
        ) / len(base)
        assert row["satisfaction_rate"] == pytest.approx(satisfaction)
        assert row["resolution_rate"] == pytest.approx((base.resolved == "是").mean())
    # No survey wave lies in the first quarter.
    assert table["survey_satisfaction_rate"].isna().all()
    assert (table["survey_n"] == 0).all()


def test_unit_table_parents_and_register_counts(main: Any) -> None:
    con, _ = main
    compounds = units.unit_table(con, Q1, CONFIG, "compound").set_index("unit")
    assert compounds.loc["东二小区", "parent"] == "东社区"
    communities = units.unit_table(con, Q1, CONFIG, "community").set_index("unit")
    assert communities.loc["西社区", "parent"] == "甲街道"
    assert communities.loc["东社区", "compounds"] == 2
    companies = units.unit_table(con, Q1, CONFIG, "property_company").set_index("unit")
    assert companies.loc["乐家物业", "households"] == 900
    assert companies["parent"].isna().all()


def test_unit_table_carries_the_household_weighted_survey_rate(main: Any) -> None:
    con, _ = main
    table = units.unit_table(con, YEAR_2025, CONFIG, "community").set_index("unit")
    assert table.loc["东社区", "survey_satisfaction_rate"] == pytest.approx(0.3875)
    assert table.loc["东社区", "survey_respondents"] == 14
    assert bool(table.loc["东社区", "survey_is_small_sample"])
    assert table.loc["西社区", "survey_satisfaction_rate"] == pytest.approx(0.75)
    assert not bool(table.loc["西社区", "survey_is_small_sample"])
    assert math.isnan(table.loc["南社区", "survey_satisfaction_rate"])


def test_unit_table_is_sorted_by_composite(main: Any) -> None:
    con, _ = main
    table = units.unit_table(con, Q1, CONFIG, "compound")
    known = table["composite"].dropna()
    assert known.tolist() == sorted(known, reverse=True)
    assert ((known >= 0) & (known <= 100)).all()


def test_composite_by_hand() -> None:
    table = pd.DataFrame(
        {
            "response_rate": [0.9, 1.0, np.nan],
            "resolution_rate": [0.775, 0.5, np.nan],
            "satisfaction_rate": [0.95, 0.6, np.nan],
            "survey_satisfaction_rate": [0.6, 0.95, 0.95],
            "survey_is_small_sample": [False, True, False],
        }
    )
    composite = units.composite_score(table, CONFIG)
    # Row 0: 响应率 (0.9−0.8)/0.2 × 6 = 3; 解决率 (0.775−0.6)/0.35 × 12 = 6; 满意率 12;
    # survey 0.6 is the floor: 0 of 25. (3 + 6 + 12 + 0) / 55 × 100.
    assert composite[0] == pytest.approx(21 / 55 * 100)
    # Row 1: 6 + 0 + 0, the survey is a small sample and does not count: 6 / 30.
    assert composite[1] == pytest.approx(6 / 30 * 100)
    # Row 2: only the survey: 25 / 25.
    assert composite[2] == pytest.approx(100)


def table_for_lists() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "unit": ["a", "b", "c", "d", "e", "f", "g"],
            "three_rate_composite": [0.9, 0.8, 0.8, 0.5, 0.7, 0.99, np.nan],
            "callback_n": [10, 10, 10, 10, 10, 3, 50],
            "tickets": [20, 20, 20, 20, 20, 20, 20],
        }
    )


def test_red_black_list() -> None:
    red, black = units.red_black_list(table_for_lists(), "three_rate_composite", 2, 5)
    # f has too few callbacks, g no value. Ties (b, c) go by name.
    assert red[["rank", "unit"]].values.tolist() == [[1, "a"], [2, "b"]]
    assert black[["rank", "unit"]].values.tolist() == [[1, "d"], [2, "e"]]


def test_red_black_list_never_repeats_a_unit_and_handles_lower_is_better() -> None:
    table = table_for_lists()
    red, black = units.red_black_list(table, "three_rate_composite", 5, 5)
    # Five eligible units and n = 5: two on each side, the middle one on neither.
    assert red["unit"].tolist() == ["a", "b"]
    assert black["unit"].tolist() == ["d", "e"]
    lower = table.assign(response_median_minutes=[5.0, 10, 15, 20, 25, 30, 35])
    fast, slow = units.red_black_list(
        lower, "response_median_minutes", 1, 5, higher_is_better=False
    )
    assert fast["unit"].tolist() == ["a"] and slow["unit"].tolist() == ["g"]  # by tickets
    with pytest.raises(ValueError):
        units.red_black_list(table, "no_such_metric", 1, 5)


def test_drill_down_from_street_to_communities_to_compounds(main: Any) -> None:
    con, frame = main
    street = units.drill_down(con, Q1, CONFIG, "street", "甲街道")
    assert street.child_level == "community"
    assert set(street.table["unit"]) == {"东社区", "西社区"}
    assert street.filters.street == ("甲街道",)
    community = units.drill_down(con, Q1, CONFIG, "community", "东社区")
    assert set(community.table["unit"]) == {"东一小区", "东二小区"}
    east_one = community.table.set_index("unit").loc["东一小区", "tickets"]
    assert east_one == len(select(frame, Q1.start, Q1.end, compound=["东一小区"]))
    company = units.drill_down(con, Q1, CONFIG, "property_company", "乐家物业")
    assert set(company.table["unit"]) == {"西二小区", "南一小区"}
    with pytest.raises(ValueError):
        units.drill_down(con, Q1, CONFIG, "compound", "东一小区")


def test_unit_table_of_an_empty_selection(main: Any) -> None:
    con, _ = main
    hostile = Q1.with_selection(community=["'; DROP TABLE compounds; --"])
    assert units.unit_table(con, hostile, CONFIG, "community").empty
    future = units.unit_table(con, Filters.for_year(2030), CONFIG, "community")
    assert (future["tickets"] == 0).all() and len(future) == 3
    assert future["composite"].isna().all()
    with pytest.raises(ValueError):
        units.unit_table(con, Q1, CONFIG, "street; DROP")


def test_ranking_candidates_need_a_value_and_enough_records() -> None:
    table = table_for_lists()
    # f has 3 callbacks (< 5), g no value: the rest take part.
    assert units.ranking_candidates(table, "three_rate_composite", 5)["unit"].tolist() == [
        "a",
        "b",
        "c",
        "d",
        "e",
    ]
    assert units.ranking_candidates(table, "three_rate_composite", 11).empty
    # A metric without its own count needs tickets.
    lower = table.assign(response_median_minutes=[5.0, 10, 15, 20, 25, 30, 35])
    assert len(units.ranking_candidates(lower, "response_median_minutes", 20)) == 7
    assert units.ranking_candidates(lower, "response_median_minutes", 21).empty
    with pytest.raises(ValueError):
        units.ranking_candidates(table, "no_such_metric", 5)
