"""Filters: period labels and arithmetic, URL round trips, hostile input, WHERE fragments."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from govdash.analytics.queries.filters import (
    PERIOD_KINDS,
    SELECTION_COLUMNS,
    Filters,
    available_periods,
    bound_parameters,
)
from govdash.core.access import Scope

HOSTILE = "'; DROP TABLE tickets; --"
DEFAULT_END = date(2025, 3, 31)


def test_labels_in_chinese_and_english() -> None:
    assert Filters.for_year(2025).label() == "2025年"
    assert Filters.for_quarter(2025, 3).label() == "2025年第3季度"
    assert Filters.for_month(2025, 3).label() == "2025年3月"
    assert Filters.for_range(date(2025, 1, 1), date(2025, 3, 31)).label() == (
        "2025-01-01 至 2025-03-31"
    )
    assert Filters.for_quarter(2025, 3).label("en") == "2025 Q3"
    assert Filters.for_month(2025, 3).label("en") == "2025-03"


def test_calendar_periods_have_their_true_bounds() -> None:
    assert (Filters.for_quarter(2024, 1).start, Filters.for_quarter(2024, 1).end) == (
        date(2024, 1, 1),
        date(2024, 3, 31),
    )
    february = Filters.for_month(2024, 2)  # a leap year
    assert february.end == date(2024, 2, 29)
    assert february.end_exclusive == date(2024, 3, 1)


@pytest.mark.parametrize(
    ("current", "previous"),
    [
        (Filters.for_year(2025), Filters.for_year(2024)),
        (Filters.for_quarter(2025, 1), Filters.for_quarter(2024, 4)),
        (Filters.for_quarter(2025, 3), Filters.for_quarter(2025, 2)),
        (Filters.for_month(2025, 1), Filters.for_month(2024, 12)),
        (Filters.for_month(2024, 3), Filters.for_month(2024, 2)),
        (
            Filters.for_range(date(2025, 1, 10), date(2025, 1, 19)),
            Filters.for_range(date(2024, 12, 31), date(2025, 1, 9)),
        ),
    ],
)
def test_previous_period(current: Filters, previous: Filters) -> None:
    assert current.previous() == previous


def test_previous_keeps_the_selection() -> None:
    chosen = Filters.for_month(2025, 1).with_selection(community=["东社区"], category=["电梯"])
    assert chosen.previous().community == ("东社区",)
    assert chosen.previous().category == ("电梯",)


def test_invalid_filters_built_in_code_are_refused() -> None:
    with pytest.raises(ValueError):
        Filters(date(2025, 1, 5), date(2025, 1, 31), "month")
    with pytest.raises(ValueError):
        Filters(date(2025, 2, 1), date(2025, 1, 1), "range")
    with pytest.raises(ValueError):
        Filters(date(2025, 1, 1), date(2025, 1, 1), "week")
    with pytest.raises(ValueError):
        Filters.for_month(2025, 1).with_selection(district=["x"])


def test_selections_are_canonical() -> None:
    a = Filters.for_month(2025, 1).with_selection(community=[" 西社区", "东社区", "东社区", ""])
    b = Filters.for_month(2025, 1).with_selection(community=["东社区", "西社区"])
    assert a == b
    assert a.community == ("东社区", "西社区")


def test_to_query_params_lists_only_what_is_chosen() -> None:
    chosen = Filters.for_quarter(2025, 3).with_selection(community=["东社区", "西社区"])
    assert chosen.to_query_params() == {
        "period": "quarter",
        "start": "2025-07-01",
        "end": "2025-09-30",
        "community": ["东社区", "西社区"],
    }


selection_values = st.lists(st.text(min_size=1, max_size=12), max_size=3)


@st.composite
def any_filters(draw: st.DrawFn) -> Filters:
    kind = draw(st.sampled_from(PERIOD_KINDS))
    day = draw(st.dates(min_value=date(1950, 1, 1), max_value=date(2100, 12, 31)))
    if kind == "range":
        end = draw(st.dates(min_value=day, max_value=date(2100, 12, 31)))
        base = Filters.for_range(day, end)
    else:
        base = Filters.for_period(kind, day)
    return base.with_selection(**{name: draw(selection_values) for name in SELECTION_COLUMNS})


@given(any_filters())
@settings(max_examples=200, deadline=None)
def test_query_params_round_trip(filters: Filters) -> None:
    assert Filters.from_query_params(filters.to_query_params(), DEFAULT_END) == filters


def test_missing_params_give_the_month_of_the_default_end() -> None:
    assert Filters.from_query_params({}, DEFAULT_END) == Filters.for_month(2025, 3)


@pytest.mark.parametrize(
    "params",
    [
        {"period": HOSTILE, "start": HOSTILE, "end": HOSTILE},
        {"period": "year", "start": "2025-13-45"},
        {"period": "range", "start": "9999-12-31", "end": "0001-01-01"},
        {"period": 2025, "start": 20250101, "end": None},
        {"period": ["year", HOSTILE], "start": ["2025-01-01"]},
        {"start": b"2025-01-01", "community": b"x"},
        {"period": "x" * 100_000, "start": "2" * 100_000},
        {"community": {"nested": ["dict"]}, "category": [1, None, 2.5, ["deep"]]},
        {"period": "month", "start": "２０２５-01-01"},
    ],
)
def test_malformed_params_fall_back_to_defaults(params: dict[str, Any]) -> None:
    filters = Filters.from_query_params(params, DEFAULT_END)
    assert filters.period_kind in PERIOD_KINDS
    assert filters.start <= filters.end
    assert filters.category == ()


def test_wrong_container_types_never_raise() -> None:
    assert Filters.from_query_params(None, DEFAULT_END) == Filters.for_month(2025, 3)  # type: ignore[arg-type]
    assert Filters.from_query_params(["period", "year"], DEFAULT_END).period_kind == "month"  # type: ignore[arg-type]
    assert Filters.from_query_params({}, date(1, 1, 1)).period_kind == "month"


def test_reversed_range_is_put_in_order() -> None:
    filters = Filters.from_query_params(
        {"period": "range", "start": "2025-03-01", "end": "2025-01-01"}, DEFAULT_END
    )
    assert (filters.start, filters.end) == (date(2025, 1, 1), date(2025, 3, 1))


def test_calendar_kinds_take_their_bounds_from_start() -> None:
    filters = Filters.from_query_params(
        {"period": "quarter", "start": "2025-08-15", "end": "2027-01-01"}, DEFAULT_END
    )
    assert filters == Filters.for_quarter(2025, 3)


def test_hostile_values_are_kept_as_values_and_overlong_ones_dropped() -> None:
    filters = Filters.from_query_params(
        {"community": [HOSTILE, "东社区", "x" * 5000], "compound": "y" * 201}, DEFAULT_END
    )
    assert filters.community == (HOSTILE, "东社区")
    assert filters.compound == ()


@given(
    st.dictionaries(
        st.one_of(st.sampled_from(["period", "start", "end", *SELECTION_COLUMNS]), st.text()),
        st.one_of(
            st.text(),
            st.lists(st.one_of(st.text(), st.integers(), st.none())),
            st.integers(),
            st.none(),
            st.binary(),
            st.dates().map(str),
        ),
    )
)
@settings(max_examples=300, deadline=None)
def test_no_params_ever_raise_or_reach_sql_text(params: dict[str, Any]) -> None:
    filters = Filters.from_query_params(params, DEFAULT_END)
    sql, values = filters.ticket_where("t")
    # The SQL is the same as for placeholder values: nothing from the URL is in its text.
    placeholder = filters.with_selection(
        **{name: ["x"] for name in SELECTION_COLUMNS if getattr(filters, name)}
    )
    assert sql == placeholder.ticket_where("t")[0]
    assert set(re.findall(r"\$(\w+)", sql)) == set(values)


def test_ticket_where_binds_every_value() -> None:
    filters = Filters.for_month(2025, 3).with_selection(
        community=[HOSTILE], category=["电梯"], channel=["12345转办"]
    )
    sql, params = filters.ticket_where("t")
    assert HOSTILE not in sql and "电梯" not in sql
    assert sql == (
        "t.accepted_at >= $start AND t.accepted_at < $end_exclusive"
        " AND t.community = ANY($community) AND t.category = ANY($category)"
        " AND t.channel = ANY($channel)"
    )
    assert params["community"] == [HOSTILE]
    assert str(params["start"]) == "2025-03-01 00:00:00"
    assert str(params["end_exclusive"]) == "2025-04-01 00:00:00"


def test_place_where_ignores_ticket_only_selections() -> None:
    filters = Filters.for_year(2025).with_selection(street=["甲街道"], category=["电梯"])
    sql, params = filters.place_where("reg")
    assert sql == "reg.street = ANY($street)"
    assert params == {"street": ["甲街道"]}
    assert Filters.for_year(2025).place_where("reg") == ("TRUE", {})


def test_alias_must_be_an_identifier() -> None:
    with pytest.raises(ValueError):
        Filters.for_year(2025).ticket_where("t; DROP TABLE tickets")
    assert Filters.for_year(2025).ticket_where("")[0].startswith("accepted_at >= $start")


def test_bound_parameters_keep_only_the_named_ones() -> None:
    assert bound_parameters("SELECT $a, $b", {"a": 1, "b": 2, "c": 3}) == {"a": 1, "b": 2}
    with pytest.raises(KeyError):
        bound_parameters("SELECT $missing", {})


def test_available_periods_cover_the_data_newest_first() -> None:
    periods = available_periods(date(2024, 11, 15), date(2025, 2, 10))
    assert [p.label() for p in periods["year"]] == ["2025年", "2024年"]
    assert [p.label() for p in periods["quarter"]] == ["2025年第1季度", "2024年第4季度"]
    assert [p.label() for p in periods["month"]] == [
        "2025年2月",
        "2025年1月",
        "2024年12月",
        "2024年11月",
    ]


# --- trend windows -------------------------------------------------------------------------------


def test_month_count_and_span_label() -> None:
    assert Filters.for_month(2025, 3).month_count == 1
    assert Filters.for_quarter(2025, 1).month_count == 3
    assert Filters.for_year(2024).month_count == 12
    assert Filters.for_range(date(2025, 1, 15), date(2025, 2, 3)).month_count == 2
    assert Filters.for_range(date(2023, 11, 30), date(2025, 1, 1)).month_count == 15
    assert Filters.for_month(2025, 3).span_label() == "2025-03"
    assert Filters.for_range(date(2024, 4, 1), date(2025, 3, 31)).span_label() == (
        "2024-04 – 2025-03"
    )
    assert Filters.for_range(date(2024, 4, 2), date(2025, 3, 31)).span_label() == (
        "2024-04-02 – 2025-03-31"
    )
    assert Filters.for_range(date(2024, 2, 1), date(2024, 2, 28)).span_label() == (
        "2024-02-01 – 2024-02-28"  # 2024 is a leap year: the 28th is not February's end
    )


@pytest.mark.parametrize(
    ("selected", "first", "last"),
    [
        # shorter than a year: 12 months up to the period's end
        (Filters.for_month(2025, 3), date(2024, 4, 1), date(2025, 3, 31)),
        (Filters.for_month(2025, 1), date(2024, 2, 1), date(2025, 1, 31)),
        (Filters.for_quarter(2025, 2), date(2024, 7, 1), date(2025, 6, 30)),
        (
            Filters.for_range(date(2025, 3, 10), date(2025, 3, 20)),
            date(2024, 4, 1),
            date(2025, 3, 20),  # the window ends where the selection ends
        ),
        # a year, or up to 24 months: 24 months (the year before beside it)
        (Filters.for_year(2025), date(2024, 1, 1), date(2025, 12, 31)),
        (
            Filters.for_range(date(2024, 1, 15), date(2025, 6, 30)),
            date(2023, 7, 1),
            date(2025, 6, 30),
        ),
        # longer than 24 months: the selection's own months, none cut
        (
            Filters.for_range(date(2022, 2, 10), date(2025, 1, 31)),
            date(2022, 2, 1),
            date(2025, 1, 31),
        ),
    ],
)
def test_trend_window(selected: Filters, first: date, last: date) -> None:
    window = selected.trend_window()
    assert (window.start, window.end, window.period_kind) == (first, last, "range")
    assert window.start <= selected.start and window.end == selected.end


def test_trend_window_keeps_scope_and_selections() -> None:
    scope = Scope("community", "东社区")
    selected = (
        Filters.for_month(2025, 3)
        .within(scope)
        .with_selection(compound=["东一小区"], category=["电梯"], channel=["12345转办"])
    )
    window = selected.trend_window()
    assert window.scope == scope
    assert (window.compound, window.category, window.channel) == (
        ("东一小区",),
        ("电梯",),
        ("12345转办",),
    )
    _, params = window.ticket_where("t")
    assert params["start"] == datetime(2024, 4, 1)
    assert params["end_exclusive"] == datetime(2025, 4, 1)
    assert params["scope_name"] == "东社区" and params["compound"] == ["东一小区"]


def test_trend_window_starts_no_earlier_than_the_data_but_never_cuts_the_selection() -> None:
    march = Filters.for_month(2025, 3)
    assert march.trend_window(earliest=date(2024, 12, 17)).start == date(2024, 12, 1)
    assert march.trend_window(earliest=date(2020, 1, 1)).start == date(2024, 4, 1)
    # data that begins inside (or after) the selected period leaves the period whole
    year = Filters.for_year(2025)
    assert year.trend_window(earliest=date(2025, 5, 3)).start == date(2025, 1, 1)
    assert march.trend_window(earliest=date(2025, 9, 1)).start == date(2025, 3, 1)


def test_trend_window_of_a_chosen_length() -> None:
    march = Filters.for_month(2025, 3)
    assert march.trend_window(6).start == date(2024, 10, 1)
    assert march.trend_window(24).start == date(2023, 4, 1)
    # never shorter than the selection itself
    assert Filters.for_year(2025).trend_window(3).start == date(2025, 1, 1)
