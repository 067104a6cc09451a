"""The 月度通报 block of 总览 through AppTest: which month, which scope, the two downloads,
and the figures they are built from (the same as the command's, read through the query gate)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from govdash.analytics.queries.bulletin import month_filters
from govdash.core.access import Scope
from govdash.core.accounts import AccountStore
from govdash.web.bulletin import bulletin_month
from tests.analytics.warehouse_data import build_main, open_db, shipped_config

CONFIG = shipped_config()

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.usefixtures("fresh_streamlit_caches")


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_main(tmp_path_factory.mktemp("bulletin-page"))[0]


def _overview(db: Path, monkeypatch: pytest.MonkeyPatch, params: dict[str, str]) -> AppTest:
    monkeypatch.setenv("GOVDASH_DB", str(db))
    monkeypatch.delenv("GOVDASH_CONFIG", raising=False)
    app = AppTest.from_file(str(ROOT / "govdash" / "web" / "app.py"), default_timeout=90)
    for key, value in params.items():
        app.query_params[key] = value
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


@pytest.mark.parametrize(
    ("params", "month"),
    [
        ({"period": "month", "start": "2025-02-01", "end": "2025-02-28"}, "2025年2月"),
        # A year that runs past the data: the last month with tickets.
        ({"period": "year", "start": "2025-01-01", "end": "2025-12-31"}, "2025年3月"),
    ],
)
def test_the_overview_offers_the_months_bulletin(
    db: Path, monkeypatch: pytest.MonkeyPatch, params: dict[str, str], month: str
) -> None:
    app = _overview(db, monkeypatch, params)
    assert "月度通报" in [header.value for header in app.subheader]
    assert any(f"通报月份：{month}；范围：全区" in caption.value for caption in app.caption)
    assert app.get("download_button")[0].proto.label == "生成月度通报（Word）"
    labels = [button.proto.label for button in app.get("download_button")]
    assert "生成月度通报（Word）" in labels and "生成月度通报（PDF）" in labels
    assert app.radio(key="bulletin_level").value == "community"


def test_the_month_is_the_periods_end_within_the_data() -> None:
    from datetime import date

    from govdash.analytics.queries.filters import Filters

    assert bulletin_month(Filters.for_year(2025), date(2025, 3, 31)) == month_filters(2025, 3)
    assert bulletin_month(Filters.for_quarter(2024, 4), date(2025, 3, 31)) == month_filters(
        2024, 12
    )


def test_a_community_account_gets_its_communitys_bulletin(
    db: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GOVDASH_ACCOUNTS", str(tmp_path / "accounts.json"))
    monkeypatch.setenv("GOVDASH_AUDIT", str(tmp_path / "audit.sqlite3"))
    monkeypatch.setenv("GOVDASH_SESSIONS", str(tmp_path / "sessions.sqlite3"))
    AccountStore(tmp_path / "accounts.json").add(
        "东社区书记", "correct horse battery", "viewer", Scope("community", "东社区")
    )
    app = _overview(
        db, monkeypatch, {"period": "month", "start": "2025-03-01", "end": "2025-03-31"}
    )
    app.text_input(key="auth_username").input("东社区书记")
    app.text_input(key="auth_password").input("correct horse battery")
    app.button[0].click().run()
    assert not app.exception, [e.value for e in app.exception]
    assert any("通报月份：2025年3月；范围：东社区（社区）" in c.value for c in app.caption)


def test_showing_the_overview_reads_none_of_the_bulletins_figures(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The month's figures are read when a bulletin button is clicked (cache.deferred; the
    browser test downloads one), not on every visit to 总览: they cost more than the rest of
    the page at a city's size."""
    import govdash.analytics.queries.bulletin as bulletin

    calls: list[object] = []
    real = bulletin.warehouse_version_name  # read by bulletin_data alone

    def counted(con: object) -> str:
        calls.append(con)
        return real(con)  # type: ignore[arg-type]

    monkeypatch.setattr(bulletin, "warehouse_version_name", counted)
    con = open_db(db)
    try:
        assert len(bulletin.bulletin_data(con, month_filters(2025, 3), CONFIG).units) > 0
    finally:
        con.close()
    assert len(calls) == 1  # the counter counts
    calls.clear()
    app = _overview(db, monkeypatch, {"period": "month", "start": "2025-03-01", "end": "2025-03-31"})
    labels = [button.proto.label for button in app.get("download_button")]
    assert "生成月度通报（Word）" in labels
    assert calls == []
