"""`govdash effect`: the before/after figure from the shell, on a warehouse the real loader built.

The warehouse (tests/analytics/test_effect.py `staggered_warehouse`) plants a staggered signing
and a first response that falls by 4 minutes per month since signing; the true ticket-weighted
effect is computed there from the rows written, not by the product.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from govdash.cli import main
from tests.analytics.test_effect import staggered_warehouse
from tests.analytics.warehouse_data import clean_environment


@pytest.fixture(scope="module")
def staggered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    return staggered_warehouse(tmp_path_factory.mktemp("cli-effect"))


def run(capsys: pytest.CaptureFixture[str], *arguments: str) -> tuple[int, str, str]:
    with clean_environment():
        code = main(["effect", *arguments])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_json_recovers_the_planted_effect(
    staggered: tuple[Path, float], capsys: pytest.CaptureFixture[str]
) -> None:
    db, truth = staggered
    code, out, _ = run(
        capsys,
        "--outcome",
        "response_median_minutes",
        "--treatment",
        "agreement",
        "--format",
        "json",
        "--db",
        str(db),
    )
    assert code == 0
    document = json.loads(out)
    assert {"estimate", "low", "high", "n_treated", "n_control", "n_observations"} <= set(document)
    assert document["method"] == "robust" and document["window"] == 12
    assert abs(document["estimate"] - truth) < 0.05 * abs(truth)
    assert document["low"] <= truth <= document["high"]
    assert (document["n_treated"], document["n_control"]) == (60, 20)
    # Compound-months: 20 never-signed × 54 months, and per signed compound its base month
    # and its 12 months after signing.
    assert document["n_observations"] == 20 * 54 + 60 * (1 + 12)
    path = {row["relative"]: row for row in document["event_time"]}
    assert sorted(path) == [r for r in range(-12, 13) if r != 0]
    assert path[-1]["is_reference"] and path[-1]["estimate"] == 0
    assert path[12]["estimate"] == pytest.approx(-48, abs=3)
    assert 0 <= document["pre_trend_p"] <= 1


def test_csv_twfe_and_window(
    staggered: tuple[Path, float], capsys: pytest.CaptureFixture[str]
) -> None:
    db, _ = staggered
    code, out, _ = run(
        capsys,
        "--outcome",
        "response_median_minutes",
        "--treatment",
        "agreement",
        "--method",
        "twfe",
        "--window",
        "6",
        "--db",
        str(db),
    )
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    overall = rows[0]
    assert overall["part"] == "overall" and overall["method"] == "twfe"
    events = [row for row in rows[1:] if row["part"] == "event_time"]
    assert sorted(int(row["relative"]) for row in events) == list(range(-6, 7))
    # Within 6 months the planted effect averages 4 × 3.5 = 14 minutes; the plain TWFE figure
    # with staggered signings falls short of it.
    estimate = float(overall["estimate"])
    assert -14 < estimate < 0
    assert int(overall["n_treated"]) == 60 and int(overall["n_control"]) == 20
    code, out, _ = run(
        capsys,
        "--outcome",
        "response_median_minutes",
        "--treatment",
        "agreement",
        "--window",
        "6",
        "--db",
        str(db),
    )
    robust = next(csv.DictReader(io.StringIO(out)))
    assert float(robust["estimate"]) == pytest.approx(-14, abs=0.7)


def test_what_cannot_be_estimated_is_said(
    staggered: tuple[Path, float], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db, _ = staggered
    code, out, err = run(
        capsys, "--outcome", "nonsense", "--treatment", "agreement", "--db", str(db)
    )
    assert code == 2 and not out
    assert "没有这个指标" in err and "resolution_on_time_rate" in err
    # No 红色物业认定日期 in this register: nothing to compare.
    code, out, err = run(
        capsys, "--outcome", "response_median_minutes", "--treatment", "red_pm", "--db", str(db)
    )
    assert code == 1 and not out
    assert "没有任何小区填写签约（认定）日期" in err
    code, _, err = run(
        capsys,
        "--outcome",
        "response_median_minutes",
        "--treatment",
        "agreement",
        "--db",
        str(tmp_path / "missing.duckdb"),
    )
    assert code == 1 and "数据仓库不存在" in err
    with pytest.raises(SystemExit) as exit_info:
        run(capsys, "--outcome", "response_rate", "--treatment", "agreement", "--method", "x")
    assert exit_info.value.code == 2
