"""Every page through Streamlit's AppTest, on a warehouse built by the real loader.

The KPI values are checked against numbers computed in the test from the generated rows
(tests/analytics/warehouse_data.py computes them with pandas, not with the product's SQL).
"""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Dataframe

from tests.analytics.warehouse_data import build_main, expected_tickets, select

ROOT = Path(__file__).resolve().parent.parent
PAGES = ("overview", "response", "satisfaction", "effect", "evaluation", "data", "admin")
MARCH = {"period": "month", "start": "2025-03-01", "end": "2025-03-31"}


pytestmark = pytest.mark.usefixtures("fresh_streamlit_caches")


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    folder = tmp_path_factory.mktemp("app")
    db, tickets = build_main(folder)
    return db, expected_tickets(tickets)


def _app(db: Path, monkeypatch: pytest.MonkeyPatch, params: dict[str, str]) -> AppTest:
    monkeypatch.setenv("GOVDASH_DB", str(db))
    monkeypatch.delenv("GOVDASH_CONFIG", raising=False)
    app = AppTest.from_file(str(ROOT / "govdash" / "web" / "app.py"), default_timeout=60)
    for key, value in params.items():
        app.query_params[key] = value
    return app.run()


def _param(app: AppTest, name: str) -> list[str]:
    value = app.query_params[name]
    return list(value) if isinstance(value, list) else [value]


def _metrics(app: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in app.metric}


@pytest.mark.parametrize("page", PAGES)
def test_every_page_runs_without_an_exception(
    warehouse: tuple[Path, object], monkeypatch: pytest.MonkeyPatch, page: str
) -> None:
    app = _app(warehouse[0], monkeypatch, MARCH)
    app.switch_page(f"views/{page}.py").run()
    assert not app.exception, [e.value for e in app.exception]
    assert app.title, "every page has a title"


def test_overview_kpis_equal_an_independent_computation(
    warehouse: tuple[Path, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    db, frame = warehouse
    march = select(frame, date(2025, 3, 1), date(2025, 3, 31))
    responded = march.dropna(subset=["response_minutes"])
    judged = march[march.response_status.isin(["on_time", "late"])]
    app = _app(db, monkeypatch, MARCH)
    metrics = _metrics(app)
    assert metrics["工单量"] == f"{len(march):,}"
    assert metrics["首次响应中位数"] == f"{responded.response_minutes.median():,.1f} 分钟"
    on_time = (judged.response_status == "on_time").mean()
    assert metrics["及时响应率"] == f"{on_time:.1%}"
    households = 100 + 300 + 200 + 400 + 500
    assert metrics["每百户工单量"] == f"{len(march) / households * 100:,.1f}"


def test_a_community_filter_changes_the_numbers(
    warehouse: tuple[Path, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    db, frame = warehouse
    app = _app(db, monkeypatch, MARCH)
    app.multiselect(key="f_community").select("东社区").run()
    east = select(frame, date(2025, 3, 1), date(2025, 3, 31), community=["东社区"])
    assert _metrics(app)["工单量"] == f"{len(east):,}"
    assert _param(app, "community") == ["东社区"]


def test_the_filters_come_from_the_url(
    warehouse: tuple[Path, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    db, frame = warehouse
    app = _app(db, monkeypatch, {**MARCH, "community": "西社区"})
    west = select(frame, date(2025, 3, 1), date(2025, 3, 31), community=["西社区"])
    assert _metrics(app)["工单量"] == f"{len(west):,}"


def test_an_empty_selection_shows_a_sentence(
    warehouse: tuple[Path, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    db, frame = warehouse
    march = select(frame, date(2025, 3, 1), date(2025, 3, 31))
    pairs = {(c, p) for c in frame.category.unique() for p in frame.compound.unique()}
    empty = sorted(pairs - set(zip(march.category, march.compound, strict=True)))
    assert empty, "the generated data must hold a category and compound without March tickets"
    category, compound = empty[0]
    app = _app(db, monkeypatch, {**MARCH, "category": category, "compound": compound})
    # Each page names what is missing: no data at all, no tickets in the month, no survey wave.
    sentences = {
        "overview": "没有数据",
        "response": "2025年3月没有符合筛选条件的工单",
        "satisfaction": "2025年3月没有问卷调查批次",
    }
    for page, sentence in sentences.items():
        app.switch_page(f"views/{page}.py").run()
        assert not app.exception, [e.value for e in app.exception]
        assert any(sentence in info.value for info in app.info), (page, app.info)


def test_the_language_switch_changes_the_labels(
    warehouse: tuple[Path, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = _app(warehouse[0], monkeypatch, MARCH)
    assert app.title[0].value == "总览"
    app.radio(key="lang").set_value("en").run()
    assert app.title[0].value == "Overview"
    assert "Tickets" in _metrics(app)
    assert _param(app, "lang") == ["en"]


def test_without_a_warehouse_the_pages_say_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = _app(tmp_path / "none.duckdb", monkeypatch, {})
    assert not app.exception
    assert "govdash demo" in app.info[0].value


RAW_NAME = re.compile(r"[a-z][a-z0-9_]*")


def _shown_headers(frame: Dataframe) -> list[str]:
    """The headers a reader sees: a column_config label where there is one, else the name."""
    config = json.loads(frame.proto.columns or "{}")
    order = list(frame.proto.column_order) or [str(c) for c in frame.value.columns]
    return [str(config.get(name, {}).get("label") or name) for name in order]


@pytest.mark.parametrize("language", ["zh", "en"])
@pytest.mark.parametrize("page", PAGES)
def test_every_table_speaks_the_page_language(
    warehouse: tuple[Path, object], monkeypatch: pytest.MonkeyPatch, page: str, language: str
) -> None:
    """No table on a page (and so no CSV/XLSX behind a chart) shows a column's code name."""
    params = {"period": "year", "start": "2025-01-01", "end": "2025-12-31", "lang": language}
    app = _app(warehouse[0], monkeypatch, params)
    app.switch_page(f"views/{page}.py").run()
    assert not app.exception, [e.value for e in app.exception]
    raw = {
        name
        for frame in app.dataframe
        for name in _shown_headers(frame)
        if RAW_NAME.fullmatch(name)
    }
    assert raw == set(), f"{page} ({language}) shows code names: {sorted(raw)}"
