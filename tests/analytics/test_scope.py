"""An account's scope limits every query, whatever the selections say (real loader, pandas)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import duckdb
import pandas as pd
import pytest

from govdash.analytics.queries.filters import Filters
from govdash.analytics.queries.surveys import survey_item_rates
from govdash.analytics.queries.tickets import (
    backlog_aging,
    filter_options,
    monthly_trend,
    ticket_kpis,
)
from govdash.analytics.queries.units import unit_table
from govdash.core.access import Scope
from tests.analytics.warehouse_data import (
    REGISTER,
    build_main,
    expected_tickets,
    open_db,
    select,
    shipped_config,
)

CONFIG = shipped_config()
Q1 = Filters.for_quarter(2025, 1)
EAST = Scope("community", "东社区")
STREET_A = Scope("street", "甲街道")


@pytest.fixture(scope="module")
def main(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[duckdb.DuckDBPyConnection, pd.DataFrame]]:
    db, rows = build_main(tmp_path_factory.mktemp("scope"))
    con = open_db(db)
    yield con, expected_tickets(rows)
    con.close()


def _communities(scope: Scope) -> list[str]:
    column = 0 if scope.level == "street" else 1
    return sorted({row[1] for row in REGISTER if row[column] == scope.name})


@pytest.mark.parametrize("scope", [EAST, STREET_A, Scope("community", "南社区")])
def test_kpis_and_trends_count_only_the_scope(
    main: tuple[duckdb.DuckDBPyConnection, pd.DataFrame], scope: Scope
) -> None:
    con, frame = main
    expected = select(frame, date(2025, 1, 1), date(2025, 3, 31), community=_communities(scope))
    assert 0 < len(expected) < len(select(frame, date(2025, 1, 1), date(2025, 3, 31)))
    scoped = Q1.within(scope)
    assert ticket_kpis(con, scoped, CONFIG).tickets == len(expected)
    assert int(monthly_trend(con, scoped, CONFIG)["tickets"].sum()) == len(expected)
    compounds = unit_table(con, scoped, CONFIG, "compound")
    assert set(compounds["parent"]) <= set(_communities(scope))
    assert int(compounds["tickets"].fillna(0).sum()) == len(expected)


def test_a_selection_outside_the_scope_selects_nothing(
    main: tuple[duckdb.DuckDBPyConnection, pd.DataFrame],
) -> None:
    con, frame = main
    west = select(frame, date(2025, 1, 1), date(2025, 3, 31), community=["西社区"])
    assert len(west) > 0
    asking = Q1.with_selection(community=["西社区"])
    assert ticket_kpis(con, asking, CONFIG).tickets == len(west)
    outside = asking.within(EAST)
    assert ticket_kpis(con, outside, CONFIG).tickets == 0
    assert int(backlog_aging(con, outside, CONFIG)["tickets"].sum()) == 0
    assert unit_table(con, outside, CONFIG, "compound")["tickets"].fillna(0).sum() == 0
    assert survey_item_rates(con, outside, CONFIG, level="all")["n"].fillna(0).sum() == 0
    # URL params cannot carry a scope, so a link cannot widen one either.
    from_url = Filters.from_query_params(
        {"period": "quarter", "start": "2025-01-01", "community": "西社区", "scope": "district"},
        default_end=date(2025, 3, 31),
        scope=EAST,
    )
    assert from_url.scope == EAST and from_url.community == ("西社区",)
    assert ticket_kpis(con, from_url, CONFIG).tickets == 0
    assert "scope" not in from_url.to_query_params()


def test_a_restricted_scope_survives_every_copy_and_cannot_be_changed() -> None:
    scoped = Q1.within(EAST)
    copies = [
        scoped.previous(),
        scoped.with_selection(community=["西社区"]),
        scoped.narrowed("compound", "东一小区"),
        scoped.without_places(),
        scoped.within(EAST),
    ]
    assert all(copy.scope == EAST for copy in copies)
    for wider in (Scope.district(), Scope("community", "西社区"), STREET_A):
        with pytest.raises(PermissionError):
            scoped.within(wider)
    where, params = scoped.place_where("reg")
    assert where == "reg.community = $scope_name" and params == {"scope_name": "东社区"}


def test_the_pickers_offer_only_the_scope(
    main: tuple[duckdb.DuckDBPyConnection, pd.DataFrame],
) -> None:
    con, _ = main
    options = filter_options(con, Q1.within(STREET_A))
    rows = [row for row in REGISTER if row[0] == "甲街道"]
    assert options["street"] == ["甲街道"]
    assert options["community"] == sorted({row[1] for row in rows})
    assert options["compound"] == sorted({row[2] for row in rows})
    assert options["property_company"] == sorted({row[4] for row in rows if row[4]})
