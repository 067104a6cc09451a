"""The 治理成效 page through AppTest: the demo data's planted effect, issue 14's staggered
signings through the real loader, and a register without dates.

The demo warehouse is built by `govdash demo`'s generator and the real loader. The expected
before/after figures for the median first response are computed here from the raw ticket rows
with pandas: the robust headline with the Callaway–Sant'Anna estimator written out in
tests/analytics/test_effect.py, the TWFE comparison with an explicit dummy regression — not
with the product's SQL or estimators.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from scipy import stats
from streamlit.testing.v1 import AppTest

from govdash.core.config import load_config
from govdash.etl.demo import write_demo
from govdash.etl.load import load_paths
from tests.analytics.test_effect import (
    did_sample,
    dummy_fit,
    hand_robust,
    staggered_warehouse,
)
from tests.analytics.warehouse_data import build_main, clean_environment, open_db

ROOT = Path(__file__).resolve().parent.parent
YEAR_2025 = {"period": "year", "start": "2025-01-01", "end": "2025-12-31"}
WINDOW = 12


pytestmark = pytest.mark.usefixtures("fresh_streamlit_caches")


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("effect-demo")
    db = folder / "warehouse.duckdb"
    with clean_environment():
        report = load_paths(write_demo(folder / "demo"), db, load_config())
    assert not [f.error for f in report.files if f.error]
    return db


def _page(
    db: Path, monkeypatch: pytest.MonkeyPatch, config: Path | None = None, **choices: str
) -> AppTest:
    monkeypatch.setenv("GOVDASH_DB", str(db))
    if config is None:
        monkeypatch.delenv("GOVDASH_CONFIG", raising=False)
    else:
        monkeypatch.setenv("GOVDASH_CONFIG", str(config))
    app = AppTest.from_file(str(ROOT / "govdash" / "web" / "app.py"), default_timeout=180)
    for key, value in YEAR_2025.items():
        app.query_params[key] = value
    app.run()
    app.switch_page("views/effect.py").run()
    if "metric" in choices:
        app.selectbox(key="effect_metric").set_value(choices["metric"]).run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def _sentences(app: AppTest) -> list[str]:
    return [m.value for m in app.markdown if m.value.startswith("**")]


def median_response_cells(db: Path) -> pd.DataFrame:
    """Compound-month median first response with ticket counts and onsets, from the raw rows."""
    con = open_db(db)
    try:
        tickets = con.execute(
            "SELECT community, compound, accepted_at, response_minutes FROM tickets"
        ).df()
        register = con.execute(
            "SELECT community, compound, has_joint_agreement, agreement_signed_on FROM compounds"
        ).df()
    finally:
        con.close()
    tickets["period"] = tickets["accepted_at"].dt.year * 12 + tickets["accepted_at"].dt.month - 1
    joined = tickets.merge(register, on=["community", "compound"])
    cells = (
        joined.groupby(["community", "compound", "period"])
        .agg(tickets=("accepted_at", "size"), outcome=("response_minutes", "median"))
        .reset_index()
    )
    signed_on = pd.to_datetime(register["agreement_signed_on"])
    register["onset"] = (signed_on.dt.year * 12 + signed_on.dt.month - 1).astype(float)
    never = (register["has_joint_agreement"] == False) & signed_on.isna()  # noqa: E712
    usable = register[signed_on.notna() | never]
    cells = cells.merge(usable[["community", "compound", "onset"]], on=["community", "compound"])
    cells["unit"] = cells["community"] + "/" + cells["compound"]
    return cells.dropna(subset=["outcome"])


def expected_median_response(db: Path) -> tuple[float, float, float, int, int]:
    """TWFE β, 95% low and high, signed and never-signed compounds, from the raw rows."""
    sample = did_sample(median_response_cells(db))
    beta, error = dummy_fit(sample, sample["tickets"].to_numpy(float))
    treated = sample.loc[sample["onset"].notna(), "unit"].nunique()
    control = sample.loc[sample["onset"].isna(), "unit"].nunique()
    half = stats.t.ppf(0.975, treated + control - 1) * error
    return beta, beta - half, beta + half, treated, control


def test_the_planted_effect_on_response_times_is_read_out(
    demo_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    robust = hand_robust(median_response_cells(demo_db), "never")
    beta, low, high, _, _ = expected_median_response(demo_db)
    # The demo plants responses 20% faster after signing: a few minutes off the median.
    assert -8 < robust < -2 and -6 < beta < -2 and high < 0
    app = _page(demo_db, monkeypatch, metric="response_median_minutes")
    sentence = _sentences(app)[0]
    assert sentence.startswith("**签约后首次响应中位数平均降低 ")
    assert f"降低 {abs(robust):.1f} 分钟" in sentence
    # The plain TWFE figure is there, labelled as a comparison only.
    comparison = next(c.value for c in app.caption if "传统双向固定效应" in c.value)
    assert f"估计为 {beta:.1f} 分钟（95%区间 {low:.1f} 至 {high:.1f}）" in comparison
    assert "仅供" in comparison and "不作为结论" in comparison
    assert any("区间不含 0" in m.value for m in app.markdown)
    assert any("观察性比较" in info.value and "不是对照试验" in info.value for info in app.info)


def test_the_satisfaction_sentence_and_the_event_study_chart(
    demo_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = _page(demo_db, monkeypatch)
    first = _sentences(app)[0]
    match = re.search(
        r"签约后满意率平均提高 ([\d.]+) 个百分点（95%区间 (-?[\d.]+) 至 (-?[\d.]+)；n = (\d+) 个签约小区",
        first,
    )
    assert match, first
    amount, low, high = (float(match.group(i)) for i in (1, 2, 3))
    assert low <= amount <= high and 0 < amount < 10
    figures = [json.loads(chart.proto.spec) for chart in app.get("plotly_chart")]
    figure = next(f for f in figures if "事件研究" in f["layout"]["title"]["text"])
    assert "n = " in figure["layout"]["title"]["subtitle"]["text"]
    months = sorted(x for trace in figure["data"] for x in trace.get("x", []))
    # The signing month itself (part before, part after) is not part of the comparison.
    assert months == [m for m in range(-WINDOW, WINDOW + 1) if m != 0]
    reference = next(trace for trace in figure["data"] if trace["name"].startswith("参照期"))
    assert reference["x"] == [-1] and reference["y"] == [0]
    # The cross-section sentence names the period and both sides' n; its chart draws the same
    # combined difference on top of the strata.
    cross = next(s for s in _sentences(app) if s.startswith("**2025年，签约小区的满意率"))
    cross_amount = re.search(r"平均(高|低) ([\d.]+) 个百分点", cross)
    assert cross_amount
    strata = next(f for f in figures if "分层" in f["layout"]["title"]["text"])
    combined = next(trace for trace in strata["data"] if trace["name"].startswith("合并"))
    sign = 1 if cross_amount.group(1) == "高" else -1
    assert f"{abs(combined['x'][0]):.1f}" == cross_amount.group(2)
    assert sign * combined["x"][0] > 0


def test_the_first_metrics_path_comes_with_the_report_and_another_is_fitted_when_chosen(
    demo_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page's first event path is fitted with the report, on its panels (built once); a
    metric chosen later is fitted on panels of its own. Its path covers months −12…12 around
    signing, the signing month left out."""
    from govdash.analytics.queries import effect

    built: list[str] = []
    build = effect.before_after_panels

    def counted(*args: object) -> effect.Panels:
        built.append("panels")
        return build(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(effect, "before_after_panels", counted)
    monkeypatch.setattr(effect, "ALL_METRICS_AT_ONCE_ROWS", 0)  # a city's panel: no summary yet
    app = _page(demo_db, monkeypatch)
    assert len(built) == 1  # the report's, which the first metric's path is fitted on too
    app.selectbox(key="effect_metric").set_value("response_median_minutes").run()
    assert not app.exception, [e.value for e in app.exception]
    assert len(built) == 2  # `before_after`'s, for the metric chosen later
    figures = [json.loads(chart.proto.spec) for chart in app.get("plotly_chart")]
    figure = next(f for f in figures if "事件研究" in f["layout"]["title"]["text"])
    months = sorted(x for trace in figure["data"] for x in trace.get("x", []))
    assert months == [m for m in range(-WINDOW, WINDOW + 1) if m != 0]


def test_english_reads_the_same_numbers(demo_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = _page(demo_db, monkeypatch)
    chinese = re.search(r"提高 ([\d.]+) 个百分点", _sentences(app)[0])
    app.radio(key="lang").set_value("en").run()
    assert not app.exception
    english = _sentences(app)[0]
    assert english.startswith("**After signing, satisfaction rate rose by ")
    assert chinese and f"rose by {chinese.group(1)} percentage points" in english
    assert any("not a controlled experiment" in info.value for info in app.info)


def test_too_few_compounds_are_said_not_drawn(
    demo_db: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[effect]\nmin_compounds = 500\n", encoding="utf-8")
    app = _page(demo_db, monkeypatch, config=config)
    assert not app.get("plotly_chart")
    texts = [info.value for info in app.info]
    assert any(
        "组太小" in text and "500" in text and "effect.min_compounds" in text for text in texts
    )


def test_a_register_without_signing_dates_says_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, _ = build_main(tmp_path)  # register: 街道, 社区, 小区名称, 户数, 物业企业 only
    monkeypatch.setenv("GOVDASH_DB", str(db))
    monkeypatch.delenv("GOVDASH_CONFIG", raising=False)
    app = AppTest.from_file(str(ROOT / "govdash" / "web" / "app.py"), default_timeout=120)
    app.query_params["period"] = "month"
    app.query_params["start"] = "2025-03-01"
    app.query_params["end"] = "2025-03-31"
    app.run()
    app.switch_page("views/effect.py").run()
    assert not app.exception, [e.value for e in app.exception]
    warnings = " ".join(w.value for w in app.warning)
    assert "党建联建签约日期" in warnings
    assert "签约日期、联建日期" in warnings
    assert "小区台账" in warnings and "是否签订党建联建协议" in warnings
    assert not app.get("plotly_chart")


def test_the_survey_rate_compares_half_year_waves(
    demo_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = _page(demo_db, monkeypatch, metric="survey_satisfaction_rate")
    assert _sentences(app)[0].startswith("**签约后问卷满意率平均")
    figures = [json.loads(chart.proto.spec) for chart in app.get("plotly_chart")]
    figure = next(f for f in figures if "事件研究" in f["layout"]["title"]["text"])
    assert "半年" in figure["layout"]["xaxis"]["title"]["text"]
    periods = sorted(x for trace in figure["data"] for x in trace.get("x", []))
    assert periods == [-2, -1, 0, 1]


def test_staggered_signings_through_the_loader_are_recovered_on_the_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, truth = staggered_warehouse(tmp_path)
    app = _page(db, monkeypatch, metric="response_median_minutes")
    sentence = _sentences(app)[0]
    match = re.search(
        r"平均降低 ([\d.]+) 分钟（95%区间 (-?[\d.]+) 至 (-?[\d.]+)；n = 60 个签约小区，对照 20 个小区",
        sentence,
    )
    assert match, sentence
    amount, low, high = (float(match.group(i)) for i in (1, 2, 3))
    assert abs(-amount - truth) < 0.05 * abs(truth)
    assert low <= truth <= high
    captions = " ".join(c.value for c in app.caption)
    assert "60 个有数据的签约小区中 0 个" in captions
    twfe = re.search(r"传统双向固定效应.*?估计为 (-?[\d.]+) 分钟", captions)
    assert twfe and abs(float(twfe.group(1)) - truth) > 0.05 * abs(truth)
    assert any("方法说明" in e.label for e in app.expander)


def test_the_page_fits_the_shown_metric_and_every_metric_when_the_summary_is_asked(
    demo_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each metric's before/after fit reads a city's whole panel: the first view fits the
    metric it shows (a ticket metric: the survey waves are not read), and the eight only when
    the summary table is switched on (the survey metrics on the waves). That table's median
    first response row holds the robust figure computed here from the raw rows."""
    from govdash.analytics.metrics.effect import EFFECT_METRICS
    from govdash.analytics.queries import effect

    fitted: list[str] = []
    waves: dict[str, int] = {}
    fit = effect.estimate_before_after

    def counted(panels: effect.Panels, metric: Any, *args: Any, **kwargs: Any) -> Any:
        fitted.append(metric.name)
        waves[metric.source] = len(panels.waves)
        return fit(panels, metric, *args, **kwargs)

    monkeypatch.setattr(effect, "estimate_before_after", counted)
    monkeypatch.setattr(effect, "ALL_METRICS_AT_ONCE_ROWS", 0)  # a city's panel
    app = _page(demo_db, monkeypatch)
    assert fitted == ["satisfaction_rate"] and waves == {"tickets": 0}
    assert "**各指标前后对比**" not in [m.value for m in app.markdown]
    assert any("打开开关可逐一估计全部 8 项指标" in c.value for c in app.caption)
    app.toggle(key="effect_all_metrics").set_value(True).run()
    assert not app.exception, [e.value for e in app.exception]
    assert sorted(fitted[1:]) == sorted(metric.name for metric in EFFECT_METRICS)
    assert waves["survey"] > 0
    _shows_the_summary_table(app, demo_db)


def _shows_the_summary_table(app: Any, demo_db: Path) -> None:
    """The "各指标前后对比" table: a row per metric, its median first response row the robust
    figure from the raw rows."""
    from govdash.analytics.metrics.effect import EFFECT_METRICS

    assert "**各指标前后对比**" in [m.value for m in app.markdown]
    table = next(d.value for d in app.dataframe if "签约前均值" in d.value.columns)
    assert len(table) == len(EFFECT_METRICS)
    row = table[table["指标"] == "首次响应中位数"]
    robust = hand_robust(median_response_cells(demo_db), "never")
    assert float(row["差异"].iloc[0]) == pytest.approx(robust, abs=1e-6)


def test_a_districts_page_shows_every_metrics_summary_at_once(
    demo_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Up to ALL_METRICS_AT_ONCE_ROWS panel rows (the demo's district) the summary table's
    eight fits are cheap: the switch starts on and the table is there on first view, fitted
    in the same report as the shown metric's figures (one build of the panels, each metric
    fitted once), its median first response row the robust figure from the raw rows."""
    from govdash.analytics.metrics.effect import EFFECT_METRICS
    from govdash.analytics.queries import effect

    fitted: list[str] = []
    built: list[int] = []
    fit, build = effect.estimate_before_after, effect.before_after_panels

    def counted_fit(panels: effect.Panels, metric: Any, *args: Any, **kwargs: Any) -> Any:
        fitted.append(metric.name)
        assert len(panels.waves) > 0  # the survey waves read with the tickets' months
        return fit(panels, metric, *args, **kwargs)

    def counted_build(*args: Any) -> effect.Panels:
        panels = build(*args)
        built.append(len(panels.monthly))
        return panels

    monkeypatch.setattr(effect, "estimate_before_after", counted_fit)
    monkeypatch.setattr(effect, "before_after_panels", counted_build)
    app = _page(demo_db, monkeypatch)
    assert app.toggle(key="effect_all_metrics").value is True
    _shows_the_summary_table(app, demo_db)
    assert sorted(fitted) == sorted(metric.name for metric in EFFECT_METRICS)
    assert len(built) == 1 and built[0] <= effect.ALL_METRICS_AT_ONCE_ROWS


def test_the_panels_rows_not_the_compounds_decide_the_summary_at_once(
    demo_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo's 125 compounds over three years of months: a limit of rows below its panel's
    (but above its compounds) leaves the summary to its switch; the shown metric is fitted,
    a ticket metric, so the survey waves are not read."""
    from govdash.analytics.queries import effect

    fitted: list[str] = []
    waves: list[int] = []
    fit = effect.estimate_before_after

    def counted(panels: effect.Panels, metric: Any, *args: Any, **kwargs: Any) -> Any:
        fitted.append(metric.name)
        waves.append(len(panels.waves))
        return fit(panels, metric, *args, **kwargs)

    monkeypatch.setattr(effect, "estimate_before_after", counted)
    monkeypatch.setattr(effect, "ALL_METRICS_AT_ONCE_ROWS", 1_000)
    app = _page(demo_db, monkeypatch)
    assert fitted == ["satisfaction_rate"] and waves == [0]
    assert app.toggle(key="effect_all_metrics").value is False
    assert "**各指标前后对比**" not in [m.value for m in app.markdown]


def test_another_period_reads_only_its_with_without_half(
    demo_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The before/after comparison reads every month whatever the period: the page keeps it
    once for every period (a city's panels and fits are seconds), so another year computes
    only its with/without comparison, and draws the same event study."""
    from govdash.analytics.queries import effect

    built: list[object] = []
    crossed: list[object] = []
    build, sides = effect.before_after_panels, effect.cross_section_groups

    def panels(*args: object) -> effect.Panels:
        built.append(args[1])
        return build(*args)  # type: ignore[arg-type]

    def groups(*args: object) -> pd.Series:  # each with/without comparison's sides
        crossed.append(args[1])
        return sides(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(effect, "before_after_panels", panels)
    monkeypatch.setattr(effect, "cross_section_groups", groups)

    def event_study(app: AppTest) -> Any:
        figures = [json.loads(chart.proto.spec) for chart in app.get("plotly_chart")]
        return next(f["data"] for f in figures if "事件研究" in f["layout"]["title"]["text"])

    this_year = _page(demo_db, monkeypatch)
    app = AppTest.from_file(str(ROOT / "govdash" / "web" / "app.py"), default_timeout=180)
    for key, value in {"period": "year", "start": "2024-01-01", "end": "2024-12-31"}.items():
        app.query_params[key] = value
    app.run()
    app.switch_page("views/effect.py").run()
    assert not app.exception, [e.value for e in app.exception]
    assert len(built) == 1 and len(crossed) == 2  # the panels once, each year's comparison
    assert [c.start.year for c in crossed] == [2025, 2024]  # type: ignore[attr-defined]
    assert event_study(app) == event_study(this_year)
