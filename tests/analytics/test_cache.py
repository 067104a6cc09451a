"""The query gate of analytics/cache.py: permissions and the session's scope, server-side."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.analytics.warehouse_data import build_main

pytestmark = pytest.mark.usefixtures("fresh_streamlit_caches")


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_main(tmp_path_factory.mktemp("gate"))[0]


def _script(role: str, scope: str, call: str) -> AppTest:
    """A one-off app: a principal in session state (as views/_auth.py puts it), then `call`."""

    def app(role: str, scope: str, call: str) -> None:
        import streamlit as st  # the script runs on its own: it imports what it uses

        from govdash.analytics.queries.filters import Filters
        from govdash.analytics.queries.tickets import longest_open, ticket_kpis
        from govdash.core.access import Principal, Scope
        from govdash.web.cache import query

        if role:
            st.session_state["principal"] = Principal("x", role, Scope.parse(scope))
        march = Filters.for_month(2025, 3)
        calls = {
            "kpis_in_scope": lambda: query(ticket_kpis, march.within(Scope.parse(scope))),
            "kpis_unscoped": lambda: query(ticket_kpis, march),
            "kpis_other_scope": lambda: query(
                ticket_kpis, march.within(Scope("community", "西社区"))
            ),
            "longest_open": lambda: query(longest_open, march.within(Scope.parse(scope))),
        }
        try:
            st.write(f"ok {calls[call]().__class__.__name__}")
        except PermissionError as error:
            st.write(f"refused: {error}")

    return AppTest.from_function(app, args=(role, scope, call), default_timeout=60)


@pytest.mark.parametrize(
    ("role", "scope", "call", "allowed"),
    [
        ("viewer", "community:东社区", "kpis_in_scope", True),
        ("viewer", "community:东社区", "kpis_unscoped", False),
        ("viewer", "community:东社区", "kpis_other_scope", False),
        ("viewer", "district", "longest_open", False),
        ("evaluator", "district", "longest_open", False),
        ("admin", "district", "longest_open", True),
        ("admin", "street:甲街道", "kpis_unscoped", False),
        ("", "district", "kpis_in_scope", False),  # no principal at all
    ],
)
def test_the_gate_allows_only_the_sessions_role_and_scope(
    db: Path, monkeypatch: pytest.MonkeyPatch, role: str, scope: str, call: str, allowed: bool
) -> None:
    monkeypatch.setenv("GOVDASH_DB", str(db))
    app = _script(role, scope, call).run()
    assert not app.exception, [e.value for e in app.exception]
    said = app.markdown[0].value
    assert said.startswith("ok") is allowed, said


def test_every_caller_gets_a_copy_of_its_own_of_a_kept_result(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Results are kept once per process (as the bytes they were pickled to) and handed to
    every caller: one caller emptying its frame changes nothing another caller gets, in the
    same run or the next."""

    def app() -> None:
        import pickle

        import streamlit as st

        from govdash.analytics.queries.filters import Filters
        from govdash.analytics.queries.tickets import longest_open
        from govdash.core.access import Principal, Scope
        from govdash.web.cache import query

        st.session_state["principal"] = Principal("x", "admin", Scope.district())
        year = Filters.for_year(2025)
        first = query(longest_open, year)
        before = pickle.dumps(first)
        rows = len(first)
        first.drop(first.index, inplace=True)  # a caller changing what it was handed
        second = query(longest_open, year)
        same = pickle.dumps(second) == before
        st.write(f"{rows} {len(second)} {same} {second is first}")

    app_test = AppTest.from_function(app, default_timeout=60)
    monkeypatch.setenv("GOVDASH_DB", str(db))
    for _ in range(2):  # computed, then read back from this process's memory
        app_test.run()
        assert not app_test.exception, [e.value for e in app_test.exception]
        rows, again, same, shared = app_test.markdown[-1].value.split()
        assert int(rows) > 0 and again == rows and same == "True" and shared == "False"
