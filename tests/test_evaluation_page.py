"""The 年度考评 page through Streamlit's AppTest, on a warehouse holding evaluation scores.

The warehouse is the one the report tests build with the real loader; what the page shows is
compared with the engine run here on the same warehouse (evaluation_result, rescore,
rank_changes), not with numbers the page computed.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from govdash.analytics.metrics import evaluation as engine
from govdash.analytics.metrics.evaluation import (
    EvaluationResult,
    default_weights,
    normalised_weights,
    rank_changes,
    rescore,
    year_over_year,
)
from govdash.analytics.queries import evaluation as queries
from govdash.analytics.queries.evaluation import evaluation_result
from tests.analytics.test_report import UNITS, build_evaluation_warehouse
from tests.analytics.warehouse_data import open_db, shipped_config

ROOT = Path(__file__).resolve().parent.parent
CONFIG = shipped_config()
MOVED_SLIDER = "问卷满意率"


pytestmark = pytest.mark.usefixtures("fresh_streamlit_caches")


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_evaluation_warehouse(tmp_path_factory.mktemp("evaluation-page"))


@pytest.fixture(scope="module")
def results(db: Path) -> tuple[EvaluationResult, EvaluationResult]:
    con = open_db(db)
    try:
        return (
            evaluation_result(con, CONFIG, 2025, "compound"),
            evaluation_result(con, CONFIG, 2024, "compound"),
        )
    finally:
        con.close()


def _page(db: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("GOVDASH_DB", str(db))
    monkeypatch.delenv("GOVDASH_CONFIG", raising=False)
    app = AppTest.from_file(str(ROOT / "govdash" / "web" / "app.py"), default_timeout=120).run()
    app.switch_page("views/evaluation.py").run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def _frame_with(app: AppTest, column: str) -> pd.DataFrame | None:
    """The one dataframe on the page that has `column` (None when there is none)."""
    found = [frame.value for frame in app.dataframe if column in frame.value.columns]
    assert len(found) <= 1, f"{len(found)} dataframes have {column}"
    return found[0] if found else None


def test_the_ranking_is_the_engines(
    db: Path, results: tuple[EvaluationResult, EvaluationResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    current, previous = results
    app = _page(db, monkeypatch)
    assert app.title[0].value == "年度考评"
    assert app.selectbox(key="evaluation_year").value == 2025
    ranking = _frame_with(app, "不可参评原因")
    assert ranking is not None
    table = current.table
    assert ranking["单位"].tolist() == table["unit"].tolist()
    assert sorted(ranking["单位"]) == sorted(UNITS)
    assert ranking["名次"].tolist() == table["rank"].tolist()
    assert ranking["总分"].tolist() == table["total"].tolist()
    assert ranking["等次"].tolist() == table["grade"].tolist()
    assert ranking["奖项"].tolist() == table["award"].tolist()
    assert ranking["可参评"].tolist() == table["is_eligible"].tolist()
    change = year_over_year(current, previous.ranking())
    assert ranking["名次变化"].tolist() == change["rank_change"].tolist()
    assert any("参评单位 4 个，其中符合评优条件 3 个" in c.value for c in app.caption)


def test_moving_a_weight_slider_moves_the_units_rescore_says(
    db: Path, results: tuple[EvaluationResult, EvaluationResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    current = results[0]
    app = _page(db, monkeypatch)
    moved_by = "名次变动（正数为上升）"
    assert _frame_with(app, moved_by) is None  # default weights: nothing moved
    slider = app.slider(key=f"weight_{MOVED_SLIDER}")
    assert slider.value == default_weights(CONFIG)[MOVED_SLIDER]
    slider.set_value(0.0).run()
    assert not app.exception, [e.value for e in app.exception]

    chosen = {**default_weights(CONFIG), MOVED_SLIDER: 0.0}
    expected = rank_changes(current, rescore(current, normalised_weights(chosen, CONFIG)))
    expected = expected[expected["moved_by"] != 0].reset_index(drop=True)
    assert len(expected) >= 2, "the test data must hold units that swap places"
    shown = _frame_with(app, moved_by)
    assert shown is not None
    headers = {
        "unit": "单位",
        "rank_before": "原名次",
        "rank_after": "新名次",
        "moved_by": moved_by,
    }
    assert shown[list(headers.values())].astype(object).values.tolist() == (
        expected[list(headers)].astype(object).values.tolist()
    )
    assert shown["新总分"].tolist() == pytest.approx(expected["total_after"].tolist())
    # The ranking itself keeps the configured weights.
    ranking = _frame_with(app, "不可参评原因")
    assert ranking is not None
    assert ranking["单位"].tolist() == current.table["unit"].tolist()


def test_the_report_downloads_are_offered(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = _page(db, monkeypatch)
    assert any(s.value == "下载考评报告" for s in app.subheader)
    assert app.download_button(key="evaluation_report_xlsx").label == "下载考评报告（XLSX）"
    assert app.download_button(key="evaluation_report_pdf").label == "下载考评报告（PDF）"


ROBUSTNESS = engine.robustness  # the engine's own, whatever a test counts
MEDIAN_RANK = "名次中位数"  # the robustness table's column, as the page shows it
ROBUSTNESS_COLUMNS = {
    "unit": "单位",
    "median_rank": MEDIAN_RANK,
    "rank_p05": "名次 5% 分位",
    "rank_p95": "名次 95% 分位",
    "crosses_tier": "跨越奖项分界",
}


def _robustness_shown(app: AppTest, current: EvaluationResult) -> None:
    """The page's robustness table holds the engine's bands of `current`, row for row."""
    shown = _frame_with(app, MEDIAN_RANK)
    assert shown is not None
    expected = ROBUSTNESS(current, CONFIG).table
    assert shown[list(ROBUSTNESS_COLUMNS.values())].astype(object).values.tolist() == (
        expected[list(ROBUSTNESS_COLUMNS)].astype(object).values.tolist()
    )


def test_a_districts_robustness_is_shown_at_once(
    db: Path, results: tuple[EvaluationResult, EvaluationResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = _page(db, monkeypatch)
    _robustness_shown(app, results[0])
    assert not [b for b in app.button if b.key == "evaluation_robust_run"]


def test_a_citys_robustness_is_computed_when_asked_and_kept_for_the_session(
    db: Path, results: tuple[EvaluationResult, EvaluationResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Four units × 1,000 draws stand for a city's 20,000 compounds: nothing is computed at once.
    monkeypatch.setattr(queries, "ROBUSTNESS_AT_ONCE_CELLS", 3 * CONFIG.robustness_draws)
    computed = []

    def counted(*args: object, **kwargs: object) -> engine.RobustnessResult:
        computed.append(1)
        return ROBUSTNESS(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(engine, "robustness", counted)
    app = _page(db, monkeypatch)
    assert _frame_with(app, MEDIAN_RANK) is None
    assert any("点击“计算排名稳健性”" in c.value for c in app.caption)
    assert computed == []
    app.button(key="evaluation_robust_run").click().run()
    assert not app.exception, [e.value for e in app.exception]
    _robustness_shown(app, results[0])
    assert computed == [1]
    # Another run of the page (a slider moved) shows it again without computing it again.
    app.slider(key=f"weight_{MOVED_SLIDER}").set_value(0.0).run()
    assert not app.exception, [e.value for e in app.exception]
    _robustness_shown(app, results[0])
    assert computed == [1]
