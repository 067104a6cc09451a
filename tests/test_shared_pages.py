"""What pages build once and share (govdash/web/cache.py `shared`, ui.chart_figure): a second
session with the same filters, language and scope gets the first session's figures without
rebuilding them; another language, another scope or other data gets figures of its own.

Expected values are counted here from the generated rows with pandas
(tests/analytics/warehouse_data.py), not with the product's SQL.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

import govdash.analytics.charts.plots as plots
from govdash.web import cache
from tests.analytics.warehouse_data import build_main, expected_tickets

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "govdash" / "web" / "app.py"
MARCH = {"period": "month", "start": "2025-03-01", "end": "2025-03-31"}
STREET_VIEWER_CONFIG = """
[access]
identity_claim = "email"

[[access.oidc_rules]]
claim = "email"
value = "*@jia.example.gov.cn"
role = "viewer"
scope = "street:甲街道"
"""

pytestmark = pytest.mark.usefixtures("fresh_streamlit_caches")


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    db, tickets = build_main(tmp_path_factory.mktemp("shared"))
    return db, expected_tickets(tickets)


@pytest.fixture
def line_trend_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each title line_trend is asked to draw. The pages import the builder by name on every
    run, so they get this counting one; it keeps the builder's module and name, which is what
    the shared cache keys it by."""
    calls: list[str] = []
    original: Callable[..., Any] = plots.line_trend

    @functools.wraps(original)
    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(str(kwargs.get("title")))
        return original(*args, **kwargs)

    monkeypatch.setattr(plots, "line_trend", counting)
    return calls


def _session(
    db: Path, monkeypatch: pytest.MonkeyPatch, user: dict[str, Any] | None = None, **params: str
) -> AppTest:
    monkeypatch.setenv("GOVDASH_DB", str(db))
    app = AppTest.from_file(str(APP), default_timeout=90)
    if user is not None:
        app.user = user
    for key, value in {**MARCH, **params}.items():
        app.query_params[key] = value
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def _figure(app: AppTest, name: str) -> dict[str, Any]:
    for chart in app.get("plotly_chart"):
        if chart.proto.id.endswith(f"-chart_{name}"):
            return dict(json.loads(chart.proto.spec))
    raise AssertionError(f"no chart {name!r}")


def _counted(figure: dict[str, Any], tickets: pd.DataFrame) -> tuple[list[int], list[int]]:
    """The monthly volume the figure draws, and the tickets accepted in each of its months."""
    months = [str(x)[:7] for x in figure["data"][0]["x"]]
    per_month = tickets.groupby(tickets.accepted_at.dt.strftime("%Y-%m")).size()
    return list(figure["data"][0]["y"]), [int(per_month.get(month, 0)) for month in months]


def test_a_second_session_gets_the_first_sessions_figures_without_rebuilding_them(
    warehouse: tuple[Path, pd.DataFrame],
    monkeypatch: pytest.MonkeyPatch,
    line_trend_calls: list[str],
) -> None:
    db, tickets = warehouse
    monkeypatch.delenv("GOVDASH_CONFIG", raising=False)
    first = _session(db, monkeypatch)
    assert line_trend_calls == ["月度工单量趋势", "及时率与三率综合月度趋势"]
    drawn, counted = _counted(_figure(first, "monthly_volume"), tickets)
    assert drawn == counted and sum(counted) > 0

    second = _session(db, monkeypatch)
    assert len(line_trend_calls) == 2, "the second session rebuilt a figure"
    for name in ("monthly_volume", "monthly_rates"):
        assert _figure(second, name) == _figure(first, name)

    english = _session(db, monkeypatch, lang="en")
    assert line_trend_calls[2:] == [
        "Monthly ticket volume",
        "Monthly on-time rates and three-rate composite",
    ]
    assert _figure(english, "monthly_volume")["data"][0]["y"] == drawn


def test_a_narrower_scope_never_gets_a_wider_scopes_figures(
    warehouse: tuple[Path, pd.DataFrame], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The whole district's figure is built first; a street viewer with the same address then
    gets its street's counts, not the cached district ones."""
    db, tickets = warehouse
    config = tmp_path / "govdash.toml"
    config.write_text(STREET_VIEWER_CONFIG, encoding="utf-8")
    monkeypatch.setenv("GOVDASH_CONFIG", str(config))
    district = _session(db, monkeypatch)  # no sign-in: single-user, the whole district
    drawn, counted = _counted(_figure(district, "monthly_volume"), tickets)
    assert drawn == counted

    viewer = {"is_logged_in": True, "email": "wang@jia.example.gov.cn"}
    street = _session(db, monkeypatch, user=viewer)
    street_tickets = tickets[tickets.street == "甲街道"]
    street_drawn, street_counted = _counted(_figure(street, "monthly_volume"), street_tickets)
    assert street_drawn == street_counted
    assert sum(street_drawn) < sum(drawn), "the street's figure shows the district's tickets"


def test_the_cache_key_tells_frames_apart_by_values_and_column_formats() -> None:
    """Streamlit's own hash of a frame leaves out its attrs (the columns' formats, which
    change a table as shown) and samples big frames: the shared cache's key does neither."""
    version = cache.WarehouseVersion("sqlite:/srv/w.sqlite", 1)
    frame = pd.DataFrame({"month": ["2025-03", "2025-04"], "rate": [0.5, 0.25]})

    def key(value: pd.DataFrame, **options: Any) -> str | None:
        return cache._key(plots.line_trend, (value,), {"lang": "zh"}, version=version, **options)

    assert key(frame) == key(frame.copy())
    assert key(frame) != key(frame.assign(rate=[0.5, 0.26]))
    formatted = frame.copy()
    formatted.attrs["formats"] = {"rate": "percent"}
    assert key(formatted) != key(frame)
    assert key(frame) != cache._key(plots.line_trend, (frame,), {"lang": "en"}, version=version), (
        "the language is part of the key"
    )
    for other in (version._replace(snapshot=2), version._replace(catalog="sqlite:/srv/x.sqlite")):
        assert key(frame) != cache._key(
            plots.line_trend, (frame,), {"lang": "zh"}, version=other
        ), "a new snapshot, or another catalog, is a new key"
    big = pd.DataFrame({"n": range(cache._LARGEST_SHARED_ROWS + 1)})
    assert key(big) is None, "a frame this big is built, never kept"
    with pytest.raises(TypeError, match="module-level function"):
        cache._key(lambda: None, (), {}, version=version)


def test_the_effect_page_shows_its_status_at_once_and_clears_it(
    warehouse: tuple[Path, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The running status goes out before the estimators are imported and the report is
    computed, and is gone when the page is done."""
    db, _ = warehouse
    monkeypatch.delenv("GOVDASH_CONFIG", raising=False)
    app = _session(db, monkeypatch)
    app.switch_page("views/effect.py").run()
    assert not app.exception, [e.value for e in app.exception]
    assert not app.status, "the status is still shown after the report came"
    assert [t.value for t in app.title] == ["治理成效"]
    assert app.radio(key="effect_treatment").value is not None


def test_a_shared_figure_is_the_built_figure_itself_with_its_dict_made_once() -> None:
    """The builder's figure becomes the shared one (no validated copy of every trace): it is
    the same object, draws what an independently built figure draws, and its dict (asked by
    st.plotly_chart on every run) is made once."""
    import plotly.graph_objects as go

    from govdash.web.ui import SharedFigure, _shared_figure

    built: list[go.Figure] = []

    def builder(values: list[int]) -> go.Figure:
        figure = go.Figure(go.Bar(x=[f"小区{v}" for v in values], y=values))
        figure.update_layout(title="各小区工单量")
        built.append(figure)
        return figure

    shared = _shared_figure(builder, [3, 1, 2])
    assert isinstance(shared, SharedFigure) and shared is built[0]
    plain = go.Figure(go.Bar(x=["小区3", "小区1", "小区2"], y=[3, 1, 2]))
    plain.update_layout(title="各小区工单量")
    assert shared.to_dict() == plain.to_dict()
    assert shared.to_dict() is shared.to_dict()


def test_a_table_shows_a_missing_text_as_a_dash_and_leaves_numbers_alone() -> None:
    """st.dataframe writes a missing text as "None" (English, and no name): a table of the
    pages shows "—" there; numbers, mixed columns and the frame itself are untouched."""
    from govdash.web.ui import NO_TEXT, table_view

    frame = pd.DataFrame(
        {
            "property_company": ["安居物业", None, pd.NA],
            "age_days": [1.5, float("nan"), 3.0],
            "mixed": ["甲", 2, None],
            "community": pd.Series(["东社区", None, "西社区"], dtype="str"),
        }
    )
    shown, _ = table_view(frame, "zh")
    assert shown["property_company"].tolist() == ["安居物业", NO_TEXT, NO_TEXT]
    assert shown["community"].tolist() == ["东社区", NO_TEXT, "西社区"]
    assert shown["age_days"].isna().tolist() == [False, True, False]
    assert shown["mixed"].tolist()[:2] == ["甲", 2] and shown["mixed"].isna().tolist()[2]
    assert frame["property_company"].isna().sum() == 2  # the frame is not changed
