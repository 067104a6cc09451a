"""The evaluation's inputs from a real warehouse (analytics.evaluation_data), end to end.

Sheets are written here, loaded by the real loader, gathered by `evaluation_input` and run
through the engine; totals are checked against arithmetic done in this file.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import duckdb
import pandas as pd
import pytest

from govdash.analytics.metrics import evaluation as ev
from govdash.analytics.queries import evaluation as evaluation_queries
from govdash.analytics.queries.evaluation import available_years, evaluation_input
from govdash.analytics.queries.filters import Filters
from govdash.analytics.queries.units import unit_table
from tests.analytics.warehouse_data import (
    REGISTER_HEADER,
    SURVEY_HEADER,
    TICKET_HEADER,
    build,
    open_db,
    shipped_config,
)
from tests.conftest import write_xlsx

CONFIG = shipped_config()
REGISTER = [
    ["甲街道", "东社区", "东一小区", 100, "安居物业"],
    ["甲街道", "东社区", "东二小区", 300, "乐家物业"],
    ["甲街道", "西社区", "西一小区", 200, "安居物业"],
]
# Each evaluator gives this share of every indicator's points: trimmed mean (0.9 + 0.8 +
# 0.8) / 3 = 5/6 of the points.
EVALUATOR_SHARES = {"王一": 1.0, "李二": 0.9, "张三": 0.8, "赵四": 0.8, "刘五": 0.6}
EVALUATION_HEADER = [
    "年度",
    "被考评单位",
    "单位类型",
    "评委",
    *[i.name for i in CONFIG.indicators if i.source == "evaluator"],
    "加分",
    "扣分",
    "一票否决",
]


def ticket(
    number: int, community: str, compound: str, resolved: str, satisfaction: str
) -> list[Any]:
    day = f"2025-03-{number % 28 + 1:02d}"
    return [
        f"T{number:04d}",
        "小程序/APP",
        "求助",
        "水电维修",
        "一般",
        community,
        compound,
        "",
        f"{day} 09:00",
        f"{day} 09:10",
        f"{day} 15:00",
        "已办结",
        "是",
        "是",
        resolved,
        satisfaction,
        "",
        "水管漏水",
    ]


def ticket_rows() -> list[list[Any]]:
    rows = []
    # 东一小区: 10 valid callbacks, all contacted, 9 resolved; 8 满意, 1 基本满意, 1 不满意.
    east_one = ["满意"] * 8 + ["基本满意", "不满意"]
    for i, satisfaction in enumerate(east_one):
        rows.append(ticket(i, "东社区", "东一小区", "否" if i == 9 else "是", satisfaction))
    # 东二小区: 5 valid callbacks, all contacted, 4 resolved; 4 满意, 1 不满意.
    for i in range(5):
        rows.append(
            ticket(
                100 + i,
                "东社区",
                "东二小区",
                "否" if i == 4 else "是",
                "不满意" if i == 4 else "满意",
            )
        )
    return rows


def survey_rows() -> list[list[Any]]:
    rows: list[list[Any]] = []
    # 东一小区: 40 respondents, 34 satisfied (4–5); 东二小区: 30 respondents, 24 satisfied.
    for compound, overall in (
        ("东一小区", [5] * 20 + [4] * 14 + [2] * 6),
        ("东二小区", [4] * 24 + [3] * 6),
    ):
        for score in overall:
            rows.append(
                [
                    f"Q{len(rows) + 1:04d}",
                    "2025年上半年",
                    "东社区",
                    compound,
                    "2025-05-20",
                    4,
                    score,
                    "",
                ]
            )
    return rows


def evaluation_rows() -> list[list[Any]]:
    points = [i.points for i in CONFIG.indicators if i.source == "evaluator"]
    rows = []
    for name, share in EVALUATOR_SHARES.items():
        scores = [round(share * p, 2) for p in points]
        rows.append([2025, "东一小区", "小区", name, *scores, 1, None, None])
        rows.append(
            [2025, "东社区", "社区", name, *[round(0.8 * p, 2) for p in points], None, None, None]
        )
    return rows


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    folder = tmp_path_factory.mktemp("evaluation")
    files = [
        write_xlsx(folder / "台账.xlsx", {"台账": [REGISTER_HEADER, *REGISTER]}),
        write_xlsx(folder / "工单.xlsx", {"工单": [TICKET_HEADER, *ticket_rows()]}),
        write_xlsx(folder / "问卷.xlsx", {"问卷": [SURVEY_HEADER, *survey_rows()]}),
        write_xlsx(folder / "考评.xlsx", {"考评": [EVALUATION_HEADER, *evaluation_rows()]}),
    ]
    con = open_db(build(folder, files))
    yield con
    con.close()


def test_a_compound_total_by_hand(warehouse: duckdb.DuckDBPyConnection) -> None:
    inputs = evaluation_input(warehouse, CONFIG, 2025, "compound")
    assert set(inputs.units) == {"东一小区", "东二小区", "西一小区"}
    assert len(inputs.scores) == 5 * 10
    assert not inputs.scores["evaluator"].isin(list(EVALUATOR_SHARES)).any()  # pseudonyms
    result = ev.evaluate(inputs, CONFIG)
    row = result.table.set_index("unit").loc["东一小区"]
    evaluator_points = 45 * (0.9 + 0.8 + 0.8) / 3  # 37.5
    response = 6 * 1.0  # 10 of 10 contacted: 响应率 1.0 ≥ target
    resolution = 12 * (0.9 - 0.6) / (0.95 - 0.6)  # 9 of 10 resolved
    satisfaction = 12 * ((8 + 0.9 * 1) / 10 - 0.6) / (0.95 - 0.6)  # (8 + 0.9) / 10 = 0.89
    survey = 25 * (34 / 40 - 0.6) / (0.95 - 0.6)  # 0.85
    bonus = 1
    expected = evaluator_points + response + resolution + satisfaction + survey + bonus
    assert row["total"] == pytest.approx(expected)  # 82.5857…
    assert row["grade"] == "良好"
    assert row["解决率"] == pytest.approx(resolution)
    assert row["is_eligible"]
    assert row["survey_respondents"] == 40
    assert row["parent"] == "东社区"
    # 东二小区 was not scored by evaluators; 西一小区 has no data at all.
    table = result.table.set_index("unit")
    assert not table.loc["东二小区", "is_eligible"]
    assert table.loc["东二小区", "missing_indicators"].startswith("党组织与党建联建")
    assert "样本不足（问卷 0 人" in table.loc["西一小区", "ineligible_reason"]
    # The sole eligible 良好 unit takes the first prize (the first tier has at least one).
    assert table.loc["东一小区", "award"] == "一等奖"
    breakdown = result.breakdown.set_index(["unit", "indicator"])
    assert breakdown.loc[("东一小区", "解决率"), "evidence"] == "解决率 0.900（n=10 次回访）"
    # Last year's ranking as year over year reads it, the scores grouped in the warehouse:
    # the same figures from scores with two decimals (not exact in binary), to the last bit.
    grouped = evaluation_queries.ranking_result(warehouse, CONFIG, 2025, "compound")
    pd.testing.assert_frame_equal(grouped.table, result.ranking().table)
    assert grouped.table.set_index("unit").loc["东一小区", "total"] == pytest.approx(expected)


def test_a_community_rolls_its_compounds_up_by_households(
    warehouse: duckdb.DuckDBPyConnection,
) -> None:
    inputs = evaluation_input(warehouse, CONFIG, 2025, "community")
    assert set(inputs.units) == {"东社区", "西社区"}
    metrics = inputs.metrics.set_index("unit")
    # 东一小区 100 households, 东二小区 300.
    resolution = (100 * 0.9 + 300 * 0.8) / 400  # 0.825
    satisfaction = (100 * 0.89 + 300 * 0.8) / 400  # 0.8225
    survey = (100 * 0.85 + 300 * 0.8) / 400  # 0.8125
    assert metrics.loc["东社区", "resolution_rate"] == pytest.approx(resolution)
    assert metrics.loc["东社区", "survey_satisfaction_rate"] == pytest.approx(survey)
    assert metrics.loc["东社区", "survey_respondents"] == 70
    assert metrics.loc["东社区", "parent"] == "甲街道"
    # The survey module weights compounds by households the same way.
    surveyed = unit_table(warehouse, Filters.for_year(2025), CONFIG, "community").set_index("unit")
    assert metrics.loc["东社区", "survey_satisfaction_rate"] == pytest.approx(
        surveyed.loc["东社区", "survey_satisfaction_rate"]
    )
    result = ev.evaluate(inputs, CONFIG)
    row = result.table.set_index("unit").loc["东社区"]
    expected = (
        45 * 0.8  # every evaluator gave 0.8 of the points
        + 6 * 1.0
        + 12 * (resolution - 0.6) / 0.35
        + 12 * (satisfaction - 0.6) / 0.35
        + 25 * (survey - 0.6) / 0.35
    )
    assert row["total"] == pytest.approx(expected)  # 72.52…
    assert row["grade"] == "合格"
    assert (
        "2 个小区按户数加权"
        in result.breakdown.set_index(["unit", "indicator"]).loc[("东社区", "解决率"), "evidence"]
    )


def test_a_property_company_takes_its_compounds_values(
    warehouse: duckdb.DuckDBPyConnection,
) -> None:
    inputs = evaluation_input(warehouse, CONFIG, 2025, "property_company")
    assert set(inputs.units) == {"安居物业", "乐家物业"}
    metrics = inputs.metrics.set_index("unit")
    # 安居物业: 东一小区 (tickets) and 西一小区 (none): 东一小区's rate alone.
    assert metrics.loc["安居物业", "resolution_rate"] == pytest.approx(0.9)
    assert metrics.loc["乐家物业", "resolution_rate"] == pytest.approx(0.8)
    assert inputs.scores.empty


def test_available_years(warehouse: duckdb.DuckDBPyConnection) -> None:
    assert available_years(warehouse) == [2025]
    assert available_years(warehouse, "community") == [2025]
    assert available_years(warehouse, "property_company") == []
    with pytest.raises(ValueError):
        available_years(warehouse, "street")


def test_a_year_without_evaluation_has_no_scores(warehouse: duckdb.DuckDBPyConnection) -> None:
    inputs = evaluation_input(warehouse, CONFIG, 2024, "compound")
    assert inputs.scores.empty and inputs.adjustments.empty
    result = ev.evaluate(inputs, CONFIG)
    assert not result.table["is_eligible"].any()
    assert (result.table["award"] == "").all()


def test_a_compound_name_used_in_two_communities_is_told_apart(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    folder = tmp_path_factory.mktemp("duplicate-names")
    register = [
        ["甲街道", "东社区", "幸福小区", 100, "安居物业"],
        ["甲街道", "西社区", "幸福小区", 200, "安居物业"],
    ]
    points = [round(0.8 * i.points, 2) for i in CONFIG.indicators if i.source == "evaluator"]
    scores = [[2025, "幸福小区", "小区", name, *points, None, None, None] for name in "甲乙丙"]
    files = [
        write_xlsx(folder / "台账.xlsx", {"台账": [REGISTER_HEADER, *register]}),
        write_xlsx(folder / "考评.xlsx", {"考评": [EVALUATION_HEADER, *scores]}),
    ]
    con = open_db(build(folder, files))
    try:
        inputs = evaluation_input(con, CONFIG, 2025, "compound")
    finally:
        con.close()
    assert inputs.units == ("幸福小区（东社区）", "幸福小区（西社区）")
    assert any("幸福小区" in note for note in inputs.notes)
    result = ev.evaluate(inputs, CONFIG)
    # The sheet's bare name matches neither: it is ranked on its own, without metrics.
    table = result.table.set_index("unit")
    assert set(table.index) == {"幸福小区", "幸福小区（东社区）", "幸福小区（西社区）"}
    assert table.loc["幸福小区", "total"] == pytest.approx(0.8 * 45)
    assert "问卷满意率" in table.loc["幸福小区", "missing_indicators"]
    assert any("幸福小区" in warning for warning in result.warnings)
    with pytest.raises(ValueError):
        evaluation_input(con, CONFIG, 2025, "street")


@pytest.mark.parametrize("name_hash", ["hash", "length"])  # "length": names of a length collide
def test_scores_read_as_hashes_are_the_names_scored(
    warehouse: duckdb.DuckDBPyConnection, name_hash: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The year's scores leave the warehouse as hashes of their names and the names once each;
    row for row they are the scores the sheet gave, and where two names share a hash (the five
    pseudonyms all have one length) they are read as names, never merged."""
    monkeypatch.setattr(evaluation_queries, "NAME_HASH", name_hash)
    as_text = []
    read_as_text = evaluation_queries._scores_as_text
    monkeypatch.setattr(
        evaluation_queries,
        "_scores_as_text",
        lambda *args: as_text.append(1) or read_as_text(*args),
    )
    scores = evaluation_queries.evaluator_scores(warehouse, 2025, "compound")
    assert as_text == ([1] if name_hash == "length" else [])
    assert all(isinstance(scores[c].dtype, pd.CategoricalDtype) for c in ("unit", "indicator"))
    points = {i.name: i.points for i in CONFIG.indicators if i.source == "evaluator"}
    # By hand: per evaluator (pseudonymised: five distinct ones) each indicator's share × points.
    expected = sorted(
        (indicator, round(share * p, 2))
        for share in EVALUATOR_SHARES.values()
        for indicator, p in points.items()
    )
    got = sorted(zip(scores["indicator"].astype(str), scores["score"], strict=True))
    assert got == [(i, pytest.approx(s)) for i, s in expected]
    assert set(scores["unit"].astype(str)) == {"东一小区"}
    assert scores["evaluator"].astype(str).nunique() == len(EVALUATOR_SHARES)
    per_evaluator = scores.groupby(scores["evaluator"].astype(str))["score"].sum()
    shares = sorted(share * sum(points.values()) for share in EVALUATOR_SHARES.values())
    assert sorted(per_evaluator) == [pytest.approx(s, abs=0.05) for s in shares]
    assert scores["year"].tolist() == [2025] * len(scores)
