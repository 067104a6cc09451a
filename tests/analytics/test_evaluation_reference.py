"""The vectorised evaluation engine against a straightforward reference, on many units.

A warehouse is built by the real loader from sheets written here: 60 compounds in three
communities, scored by three to seven evaluators each (so some are trimmed and some are
not), with blank scores, an indicator nobody scored, units with identical inputs (ties,
some across an award boundary), 加分 recorded by one or by all evaluators (one over the cap),
扣分, a 一票否决, compounds without tickets (缺少指标) and with too few survey respondents
(样本不足). The reference recomputes every unit's points, total, grade, rank, order and award
from the rows generated here, one unit at a time in plain Python, following DOMAIN.md §5 and
the rules in govdash.analytics.metrics.evaluation's docstring, and never calls the engine.

Beside it: one unit's breakdown and evaluator detail built alone equal its rows of the whole
result; last year's ranking from the scores grouped in the warehouse equals the table the rows
give; the page's cached object keeps no score rows and pickles without the sentences;
compound_rates equals unit_table's compound rows; the packed rank sort equals counting.
"""

from __future__ import annotations

import dataclasses
import math
import pickle
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from govdash.analytics.metrics import evaluation as ev
from govdash.analytics.queries import evaluation as evaluation_queries
from govdash.analytics.queries.evaluation import (
    RATE_TABLE_COLUMNS,
    compound_rates,
    evaluation_input,
    evaluation_page,
    evaluation_result,
    merged_scores,
    ranking_result,
    score_sources,
)
from govdash.analytics.queries.filters import Filters
from govdash.analytics.queries.units import unit_table
from govdash.core.access import Scope
from govdash.core.config import Config
from tests.analytics.test_evaluation_data import EVALUATION_HEADER, ticket
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
EVALUATOR_INDICATORS = [i for i in CONFIG.indicators if i.source == "evaluator"]
EVALUATORS = ["王一", "李二", "张三", "赵四", "刘五", "陈六", "孙七"]
COMMUNITIES = {"东社区": "甲街道", "西社区": "甲街道", "南社区": "乙街道"}
NO_ONLINE = pd.DataFrame(
    columns=["round_id", "year", "level", "unit", "evaluator", "indicator", "score", "locked_at"]
)


@dataclass
class Unit:
    """One compound as generated: what each evaluator wrote, its tickets and survey."""

    name: str
    community: str
    households: int
    scores: dict[str, dict[str, float | None]] = field(default_factory=dict)
    adjustments: dict[str, tuple[float | None, float | None, bool]] = field(default_factory=dict)
    tickets: list[tuple[bool, str]] = field(default_factory=list)  # (resolved, 满意度)
    survey: list[int] = field(default_factory=list)  # 总体满意度 of each respondent


def half_points(rng: random.Random, points: float, share: float) -> float:
    """A score near share × points on the half-point grid (exact in binary floating point)."""
    value = share * points + rng.uniform(-0.2, 0.2) * points
    return min(max(round(value * 2) / 2, 0.0), float(points))


def generate_units() -> list[Unit]:
    rng = random.Random(20250615)
    units: list[Unit] = []
    specs: list[Unit] = []
    for index in range(48):
        community = list(COMMUNITIES)[index % 3]
        unit = Unit(f"{community[0]}苑{index:02d}号院", community, rng.randrange(80, 900))
        share = rng.uniform(0.55, 1.0)
        for evaluator in EVALUATORS[: rng.choice([3, 4, 5, 6, 7, 7])]:
            row: dict[str, float | None] = {}
            for indicator in EVALUATOR_INDICATORS:
                blank = rng.random() < 0.06  # an evaluator left this one out
                row[indicator.name] = None if blank else half_points(rng, indicator.points, share)
            if all(v is None for v in row.values()):
                row[EVALUATOR_INDICATORS[0].name] = 1.0
            unit.scores[evaluator] = row
        if index % 11 != 5:  # a few compounds without any ticket
            count = rng.randrange(8, 20)
            good = rng.uniform(0.5, 1.0)
            unit.tickets = [
                (rng.random() < good, rng.choice(["满意"] * 6 + ["基本满意"] * 2 + ["不满意"]))
                for _ in range(count)
            ]
        respondents = rng.choice([12, 25, 31, 40, 45]) if index % 7 else 0
        unit.survey = [rng.choice([5, 5, 4, 4, 4, 3, 2]) for _ in range(respondents)]
        specs.append(unit)
    # The best scores, so that the award pool is not empty and ties can reach it.
    for unit in specs[:6]:
        for row in unit.scores.values():
            for indicator in EVALUATOR_INDICATORS:
                row[indicator.name] = float(indicator.points) - (0.5 if rng.random() < 0.3 else 0)
        unit.tickets = [(True, "满意")] * 12 + [(True, "基本满意")]
        unit.survey = [5] * 38 + [4] * 4
    specs[1].scores = {e: dict(specs[0].scores[e]) for e in specs[0].scores}  # tied at the top
    specs[1].tickets, specs[1].survey = list(specs[0].tickets), list(specs[0].survey)
    # Nobody scored one indicator of this unit: 缺少指标.
    for row in specs[7].scores.values():
        row[EVALUATOR_INDICATORS[2].name] = None
    # 加分 by every evaluator, by one evaluator, at the cap (the loader refuses more); 扣分;
    # 一票否决; different values from two evaluators.
    for name in specs[2].scores:
        specs[2].adjustments[name] = (2.0, None, False)
    specs[4].adjustments[next(iter(specs[4].scores))] = (3.0, None, False)
    for name in specs[5].scores:
        specs[5].adjustments[name] = (5.0, None, False)
    for name in specs[9].scores:
        specs[9].adjustments[name] = (None, 1.5, False)
    specs[3].adjustments[next(iter(specs[3].scores))] = (None, None, True)
    two = list(specs[12].scores)[:2]
    specs[12].adjustments[two[0]] = (1.0, 0.5, False)
    specs[12].adjustments[two[1]] = (2.0, None, False)
    # Ties: copies of a unit under other names (identical inputs, identical totals).
    for source, copies in ((2, 1), (3, 2), (10, 1), (17, 1), (30, 2)):
        for copy in range(copies):
            twin = specs[source]
            specs.append(
                Unit(
                    f"{twin.name}乙{copy}",
                    twin.community,
                    twin.households + 1,
                    {e: dict(r) for e, r in twin.scores.items()},
                    dict(twin.adjustments),
                    list(twin.tickets),
                    list(twin.survey),
                )
            )
    units.extend(specs)
    return units


UNITS = generate_units()


def sheets(folder: Path) -> list[Path]:
    register = [
        [COMMUNITIES[u.community], u.community, u.name, u.households, "安居物业"] for u in UNITS
    ]
    tickets, surveys, scores = [], [], []
    for unit in UNITS:
        for resolved, satisfaction in unit.tickets:
            number = len(tickets)
            tickets.append(
                ticket(number, unit.community, unit.name, "是" if resolved else "否", satisfaction)
            )
        for overall in unit.survey:
            number = f"Q{len(surveys) + 1:05d}"
            surveys.append([number, "2025年上半年", unit.community, unit.name, "2025-05-20", 4,
                            overall, ""])  # fmt: skip
        for evaluator, row in unit.scores.items():
            bonus, penalty, veto = unit.adjustments.get(evaluator, (None, None, False))
            values = [row[i.name] for i in EVALUATOR_INDICATORS]
            scores.append([2025, unit.name, "小区", evaluator, *values, bonus, penalty,
                           "是" if veto else None])  # fmt: skip
    return [
        write_xlsx(folder / "台账.xlsx", {"台账": [REGISTER_HEADER, *register]}),
        write_xlsx(folder / "工单.xlsx", {"工单": [TICKET_HEADER, *tickets]}),
        write_xlsx(folder / "问卷.xlsx", {"问卷": [SURVEY_HEADER, *surveys]}),
        write_xlsx(folder / "考评.xlsx", {"考评": [EVALUATION_HEADER, *scores]}),
    ]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    folder = tmp_path_factory.mktemp("reference")
    con = open_db(build(folder, sheets(folder)))
    yield con
    con.close()


@pytest.fixture(scope="module")
def result(warehouse: duckdb.DuckDBPyConnection) -> ev.EvaluationResult:
    return evaluation_result(warehouse, CONFIG, 2025, "compound", online=NO_ONLINE)


# --- the reference -------------------------------------------------------------------------------


@dataclass
class Expected:
    points: dict[str, float]  # per indicator; NaN where missing
    subtotals: dict[str, float]
    aggregates: dict[str, tuple[int, str, float, float, float, bool]]
    bonus: float
    penalty: float
    veto: bool
    small: bool
    missing: list[str]
    total: float = 0.0
    grade: str = ""
    rank: int = 0
    award: str = ""

    @property
    def eligible(self) -> bool:
        return not (self.veto or self.small or self.missing)


def expected_unit(unit: Unit) -> Expected:
    points: dict[str, float] = {}
    aggregates = {}
    for indicator in CONFIG.indicators:
        if indicator.source == "evaluator":
            given = [r[indicator.name] for r in unit.scores.values()]
            values = sorted(v for v in given if v is not None)
            if not values:
                points[indicator.name] = math.nan
                continue
            trimmed = len(values) >= CONFIG.trim_from_evaluators
            kept = values[1:-1] if trimmed else values
            mean = sum(kept) / len(kept)
            spread = values[-1] - values[0]
            disputed = spread > CONFIG.disagreement_share * indicator.points + 1e-9
            method = "去掉一个最高分和一个最低分后平均" if trimmed else "平均"
            aggregates[indicator.name] = (len(values), method, mean, values[0], values[-1],
                                          disputed)  # fmt: skip
            points[indicator.name] = mean
            continue
        value = metric_value(unit, indicator.metric or "", indicator.source)
        if value is None:
            points[indicator.name] = math.nan
            continue
        assert indicator.floor is not None and indicator.target is not None
        fraction = (value - indicator.floor) / (indicator.target - indicator.floor)
        points[indicator.name] = indicator.points * min(max(fraction, 0.0), 1.0)
    subtotals: dict[str, float] = {}
    for indicator in CONFIG.indicators:
        earned = points[indicator.name]
        subtotals[indicator.block] = subtotals.get(indicator.block, 0.0) + (
            0.0 if math.isnan(earned) else earned
        )
    bonuses = [b for b, _, _ in unit.adjustments.values() if b is not None]
    penalties = [p for _, p, _ in unit.adjustments.values() if p is not None]
    bonus = min(sum(bonuses) / len(bonuses), CONFIG.max_bonus) if bonuses else 0.0
    penalty = sum(penalties) / len(penalties) if penalties else 0.0
    veto = any(v for _, _, v in unit.adjustments.values())
    expected = Expected(
        points=points,
        subtotals=subtotals,
        aggregates=aggregates,
        bonus=bonus,
        penalty=penalty,
        veto=veto,
        small=len(unit.survey) < CONFIG.min_sample,
        missing=[name for name, value in points.items() if math.isnan(value)],
    )
    expected.total = sum(subtotals.values()) + bonus - penalty
    expected.grade = grade_of(expected.total, veto)
    return expected


def metric_value(unit: Unit, metric: str, source: str) -> float | None:
    if source == "survey":
        if not unit.survey:
            return None
        return sum(1 for s in unit.survey if s >= CONFIG.satisfied_min_score) / len(unit.survey)
    if not unit.tickets:
        return None
    count = len(unit.tickets)
    if metric == "response_rate":
        return 1.0  # every generated ticket was contacted
    if metric == "resolution_rate":
        return sum(1 for resolved, _ in unit.tickets if resolved) / count
    satisfied = sum(1 for _, s in unit.tickets if s == "满意")
    basic = sum(1 for _, s in unit.tickets if s == "基本满意")
    return (satisfied + CONFIG.basic_satisfied_weight * basic) / count


def grade_of(total: float, veto: bool) -> str:
    if veto:
        return ev.NOT_PASSED
    for name, cut in CONFIG.grades.items():
        if round(total, 6) >= cut:
            return name
    return ev.NOT_PASSED


def reference() -> tuple[dict[str, Expected], list[str]]:
    """Every unit's expected figures, and the units in expected position order."""
    found = {unit.name: expected_unit(unit) for unit in UNITS}

    def order_key(name: str) -> tuple[Any, ...]:
        e = found[name]
        blocks = [-round(e.subtotals.get(b, 0.0), 6) for b in CONFIG.tie_break]
        return (-round(e.total, 6), *blocks, name)

    order = sorted(found, key=order_key)
    for e in found.values():
        e.rank = 1 + sum(1 for o in found.values() if round(o.total, 6) > round(e.total, 6))
    award_grades = list(CONFIG.grades)[:2]
    pool = [n for n in order if found[n].eligible and found[n].grade in award_grades]
    ends, cumulative, previous = [], 0.0, 0
    for index, share in enumerate(CONFIG.awards.values()):
        cumulative += share
        end = math.floor(len(pool) * cumulative + 0.5 + 1e-12)
        if index == 0 and pool:
            end = max(end, 1)
        end = min(max(end, previous), len(pool))
        ends.append(end)
        previous = end
    names = list(CONFIG.awards)
    tier_of = {}
    for position, name in enumerate(pool):
        tier = next((t for t, end in enumerate(ends) if position < end), len(names))
        tier_of[name] = tier
    for name in pool:  # fully tied units share the best award among them
        best = min(tier_of[o] for o in pool if order_key(o)[:-1] == order_key(name)[:-1])
        found[name].award = names[best] if best < len(names) else ""
    return found, order


# --- the tests -------------------------------------------------------------------------------------


def test_the_data_has_what_the_reference_is_meant_to_cover() -> None:
    found, order = reference()
    totals = [round(found[n].total, 6) for n in order]
    assert len(UNITS) == 55
    assert len(set(totals)) < len(totals)  # ties
    assert any(e.veto for e in found.values())
    assert any(e.small for e in found.values()) and any(e.missing for e in found.values())
    assert any(m == "平均" for e in found.values() for _, m, *_ in e.aggregates.values())
    assert any(m != "平均" for e in found.values() for _, m, *_ in e.aggregates.values())
    assert {e.award for e in found.values()} >= {*CONFIG.awards, ""}
    assert any(e.bonus == CONFIG.max_bonus for e in found.values())
    # 9 units in the award pool: tiers end at 1, 3 and 5; this pair holds places 3 and 4.
    pool = [n for n in order if found[n].eligible and found[n].grade in list(CONFIG.grades)[:2]]
    pair = ["南苑02号院", "南苑02号院乙0"]
    assert [pool.index(n) + 1 for n in pair] == [3, 4]
    assert [found[n].award for n in pair] == ["二等奖", "二等奖"]


def test_every_unit_matches_the_reference(result: ev.EvaluationResult) -> None:
    found, order = reference()
    table = result.table.set_index("unit")
    assert result.table["unit"].tolist() == order
    for name, expected in found.items():
        row = table.loc[name]
        for indicator, value in expected.points.items():
            if math.isnan(value):
                assert math.isnan(row[indicator]), (name, indicator)
            else:
                assert row[indicator] == pytest.approx(value, abs=1e-9), (name, indicator)
        assert row["total"] == pytest.approx(expected.total, abs=1e-9), name
        assert (row["bonus"], row["penalty"]) == pytest.approx((expected.bonus, expected.penalty))
        assert bool(row["is_veto"]) == expected.veto, name
        assert row["grade"] == expected.grade, name
        assert int(row["rank"]) == expected.rank, name
        assert row["award"] == expected.award, name
        assert bool(row["is_eligible"]) == expected.eligible, name
        assert bool(row["is_small_sample"]) == expected.small, name
        listed = row["missing_indicators"].split("、") if row["missing_indicators"] else []
        assert listed == expected.missing, name


def test_evaluator_detail_matches_the_reference(result: ev.EvaluationResult) -> None:
    found, _ = reference()
    detail = result.evaluator_detail
    assert len(detail) == sum(len(e.aggregates) for e in found.values())
    for row in detail.itertuples():
        count, method, mean, low, high, disputed = found[row.unit].aggregates[row.indicator]
        assert (row.evaluators, row.method, row.low, row.high) == (count, method, low, high)
        assert row.aggregate == pytest.approx(mean, abs=1e-12)
        assert bool(row.is_disputed) == disputed
    scores = result.evaluator_scores
    trimmed = scores.groupby(["unit", "indicator"])["is_trimmed"].sum()
    for (unit, indicator), count in trimmed.items():
        method = found[str(unit)].aggregates[str(indicator)][1]
        assert count == (0 if method == "平均" else 2)


def test_one_units_sentences_built_alone_are_its_rows_of_the_whole(
    result: ev.EvaluationResult,
) -> None:
    for unit in [UNITS[0].name, UNITS[7].name, UNITS[3].name, "没有这个小区"]:
        whole = result.breakdown[result.breakdown["unit"] == unit].reset_index(drop=True)
        assert_frame_equal(result.unit_breakdown(unit), whole)
        detail = result.evaluator_detail
        assert_frame_equal(
            result.unit_evaluator_detail(unit),
            detail[detail["unit"] == unit].reset_index(drop=True),
        )


def test_rescore_rebuilds_the_sentences_with_its_own_weights(result: ev.EvaluationResult) -> None:
    weights = {**result.weights, "响应率": 2.0, "解决率": 16.0}
    again = ev.rescore(result, weights)
    row = again.breakdown[(again.breakdown["unit"] == UNITS[0].name)].set_index("indicator")
    assert row.loc["解决率", "points_max"] == 16.0
    assert row.loc["解决率", "explanation"].startswith(row.loc["解决率", "evidence"] + " → 16 ×")
    assert_frame_equal(again.evaluator_detail, result.evaluator_detail)


def test_the_pages_cached_object_is_slim_and_keeps_the_figures(
    warehouse: duckdb.DuckDBPyConnection, result: ev.EvaluationResult
) -> None:
    page = evaluation_page(warehouse, CONFIG, 2025, "compound", online=NO_ONLINE)
    assert page.result.inputs.scores.empty and page.previous is None and page.change is None
    assert_frame_equal(page.result.table, result.table)
    _ = page.result.breakdown  # built on reading ...
    copy = pickle.loads(pickle.dumps(page))
    assert copy.result._built == {}  # ... and not pickled
    assert_frame_equal(copy.result.breakdown, result.breakdown)
    assert_frame_equal(copy.robust.table, ev.robustness(result, CONFIG).table)
    counted = {
        (unit.name, evaluator): sum(v is not None for v in row.values())
        for unit in UNITS
        for evaluator, row in unit.scores.items()
    }
    assert len(page.sources) == len(counted)
    assert set(page.sources["source"]) == {"工作簿"}
    # Evaluators arrive under pseudonyms: compare each unit's counts as a multiset.
    for unit in UNITS:
        shown = sorted(page.sources.loc[page.sources["unit"] == unit.name, "indicators"])
        assert shown == sorted(counted[(unit.name, e)] for e in unit.scores)


@pytest.mark.parametrize("seen_at_most", [1 << 26, 0])  # keys flagged in an array / hashed
def test_workbook_scores_as_categoricals_merge_and_count_as_text(
    seen_at_most: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The warehouse's scores arrive with categorical names (in the order they come, not the
    texts'); merged with locked online scores and counted per source, the same as text."""
    monkeypatch.setattr(evaluation_queries, "SEEN_KEYS_AT_MOST", seen_at_most)
    rows = [
        ("乙小区", "评委2", "组织建设", 18.0),
        ("乙小区", "评委2", "巡查", 17.0),
        ("甲小区", "评委1", "组织建设", 16.0),
        ("甲小区", "评委1", "巡查", 15.0),
        ("甲小区", "评委2", "巡查", 14.0),
    ]
    text = pd.DataFrame(rows, columns=["unit", "evaluator", "indicator", "score"])
    text.insert(0, "year", 2025)
    coded = text.copy()
    for column in ("unit", "evaluator", "indicator"):
        coded[column] = pd.Categorical(coded[column], categories=sorted(set(coded[column]))[::-1])
    online = pd.DataFrame(
        [(1, 2025, "compound", "甲小区", "评委1", "巡查", 19.0)],
        columns=["round_id", "year", "level", "unit", "evaluator", "indicator", "score"],
    )
    # By hand: 甲小区 评委1 has 组织建设 from the workbook and 巡查 from round 1 (replacing 15);
    # 甲小区 评委2 one indicator; 乙小区 评委2 two; rows sorted by unit, evaluator, source.
    expected = pd.DataFrame(
        {
            "unit": pd.array(["乙小区", "甲小区", "甲小区", "甲小区"], dtype="str"),
            "evaluator": pd.array(["评委2", "评委1", "评委1", "评委2"], dtype="str"),
            "source": pd.array(["工作簿", "在线评分第1轮", "工作簿", "工作簿"], dtype="str"),
            "indicators": np.array([2, 1, 1, 1], dtype="int64"),
        }
    )
    for books in (text, coded):
        merged, notes = merged_scores(books, online)
        assert len(merged) == 5 and any("以在线评分为准" in note for note in notes)
        replaced = merged[(merged["unit"] == "甲小区") & (merged["evaluator"] == "评委1")]
        assert replaced.set_index("indicator")["score"].to_dict() == {
            "巡查": 19.0,
            "组织建设": 16.0,
        }
        assert_frame_equal(score_sources(merged), expected)
        alone, _ = merged_scores(books, online.iloc[:0])
        workbook_only = expected.iloc[[0, 2, 3]].reset_index(drop=True)
        workbook_only.loc[0:, "indicators"] = [2, 2, 1]
        assert_frame_equal(score_sources(alone), workbook_only)


def test_last_years_ranking_matches_the_reference(
    warehouse: duckdb.DuckDBPyConnection, result: ev.EvaluationResult
) -> None:
    """What year over year reads of a year — computed alone from the scores as stored
    (`ranking_result`), and kept of a whole result (`ranking`) — is every unit's total, rank
    and grade as the reference works them out, the units in name order."""
    found, _ = reference()
    alone = ranking_result(warehouse, CONFIG, 2025, "compound", online=NO_ONLINE)
    for ranking in (alone, result.ranking()):
        assert (ranking.year, ranking.level) == (2025, "compound")
        assert list(ranking.table.columns) == ev.RANKING_COLUMNS
        assert ranking.table["unit"].tolist() == sorted(found)
        for row in ranking.table.itertuples(index=False):
            expected = found[row.unit]
            assert row.total == pytest.approx(expected.total, abs=1e-9), row.unit
            assert (row.rank, row.grade) == (expected.rank, expected.grade), row.unit
    assert_frame_equal(alone.table, result.ranking().table, check_exact=True)
    change = ev.year_over_year(result, alone)
    assert (change["rank_change"] == 0).all() and (change["total_change"] == 0).all()
    assert change["previous_grade"].tolist() == change["grade"].tolist()


def _same_results(stored: ev.EvaluationResult, rows: ev.EvaluationResult) -> None:
    """Every figure and sentence of two results equal, to the last bit."""
    assert stored.warnings == rows.warnings
    for name in ("table", "shares", "unit_facts", "breakdown", "evaluator_detail",
                 "evaluator_scores"):  # fmt: skip
        assert_frame_equal(getattr(stored, name), getattr(rows, name), check_exact=True)


# A config whose evaluator indicators are not the ones the scores were loaded under: one renamed
# (the stored scores of the old name are left out and named in a note) and one worth fewer points
# than evaluators gave (the scores above them are counted and noted). Points still add up.
RENAMED = dataclasses.replace(
    CONFIG,
    indicators=tuple(
        dataclasses.replace(i, name=f"{i.name}（新）") if i.name == EVALUATOR_INDICATORS[3].name
        else dataclasses.replace(i, points=2.0) if i.name == EVALUATOR_INDICATORS[0].name
        else dataclasses.replace(i, points=i.points + 3.0) if i.name == "问卷满意率"
        else i
        for i in CONFIG.indicators
    ),
)  # fmt: skip


@pytest.mark.parametrize("config", [CONFIG, RENAMED], ids=["config", "renamed"])
@pytest.mark.parametrize(
    "scope", [None, Scope("community", "东社区"), Scope("street", "乙街道")], ids=str
)
def test_the_scores_sorted_where_stored_give_the_result_the_rows_give(
    warehouse: duckdb.DuckDBPyConnection,
    result: ev.EvaluationResult,
    config: Config,
    scope: Scope | None,
) -> None:
    """The year's result from the scores coded and sorted by DuckDB (`evaluation_result` with
    the workbook's scores alone) is the one the score rows give (`evaluate` of
    `evaluation_input`): every figure and sentence, trimmed and plain means, disputes, ties and
    awards, the notes on scores left out, for the district and for a scope's units only; last
    year's ranking as year over year reads it is its table. With a locked online score, the
    rows merged with it."""
    assert result.table["is_disputed"].any() and not result.table["is_disputed"].all()
    stored = evaluation_result(warehouse, config, 2025, "compound", scope, online=NO_ONLINE)
    inputs = evaluation_input(warehouse, config, 2025, "compound", scope, online=NO_ONLINE)
    rows = ev.evaluate(inputs, config)
    if scope is None and config is CONFIG:
        assert_frame_equal(stored.table, result.table)
    elif scope is not None:
        assert 0 < len(stored.table) < len(result.table)
    if config is RENAMED:  # the notes are the rows' own
        assert any(EVALUATOR_INDICATORS[3].name in note for note in rows.warnings)
        assert any("超出 0 到该指标分值的范围" in note for note in rows.warnings)
    assert stored.inputs.scores.empty and "source" in stored.inputs.scores.columns
    _same_results(stored, rows)
    grouped = ranking_result(warehouse, config, 2025, "compound", scope, online=NO_ONLINE)
    assert_frame_equal(grouped.table, rows.ranking().table, check_exact=True)
    assert_frame_equal(
        ev.year_over_year(result, grouped), ev.year_over_year(result, rows.ranking())
    )
    unit = rows.table["unit"].iloc[0]
    first = EVALUATOR_INDICATORS[1].name
    online = pd.DataFrame(
        [(1, 2025, "compound", unit, "评委-在线", first, 0.0, "2026-01-05")],
        columns=NO_ONLINE.columns,
    )
    merged = ranking_result(warehouse, config, 2025, "compound", scope, online=online)
    expected = ev.evaluate(
        evaluation_input(warehouse, config, 2025, "compound", scope, online=online), config
    )
    assert_frame_equal(merged.table, expected.ranking().table)
    now, before = (r.table.set_index("unit")[first].fillna(-1) for r in (expected, rows))
    changed = now != before.reindex(now.index)
    assert changed.tolist().count(True) == 1 and bool(changed[unit])


@pytest.mark.parametrize("seen_at_most", [1 << 26, 0])  # keys counted in an array / sorted
@pytest.mark.parametrize("scope", [None, Scope("street", "乙街道")], ids=str)
def test_the_page_counts_each_evaluators_indicators_as_the_rows_do(
    warehouse: duckdb.DuckDBPyConnection,
    scope: Scope | None,
    seen_at_most: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The indicators each evaluator scored, counted in the scores as stored — those the
    evaluation leaves out too (an indicator the config no longer has) — are what the rows
    give (`score_sources`)."""
    monkeypatch.setattr(evaluation_queries, "SEEN_KEYS_AT_MOST", seen_at_most)
    for config in (CONFIG, RENAMED):
        page = evaluation_page(warehouse, config, 2025, "compound", scope, online=NO_ONLINE)
        inputs = evaluation_input(warehouse, config, 2025, "compound", scope, online=NO_ONLINE)
        assert len(page.sources) > 0
        assert_frame_equal(page.sources, score_sources(inputs.scores))


def test_a_name_the_stored_reading_cannot_match_falls_back_to_the_rows(
    warehouse: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the names sent back to code the rows do not find one unit's rows (as a name
    DuckDB's parameters could not carry would), the scores are not read short: the year is
    evaluated from its rows, every unit and score in it."""
    expected = ev.evaluate(
        evaluation_input(warehouse, CONFIG, 2025, "compound", online=NO_ONLINE), CONFIG
    )
    bound = evaluation_queries.bound_parameters
    lost = UNITS[0].name

    def mangled(sql: str, params: dict[str, object]) -> dict[str, object]:
        found = bound(sql, params)
        if "units" in found:
            found["units"] = [f"{u}\ufffd" if u == lost else u for u in found["units"]]
        return found

    monkeypatch.setattr(evaluation_queries, "bound_parameters", mangled)
    assert evaluation_queries.stored_scores(warehouse, 2025, "compound", CONFIG) is None
    _same_results(
        evaluation_result(warehouse, CONFIG, 2025, "compound", online=NO_ONLINE), expected
    )
    assert lost in set(expected.evaluator_scores["unit"])
    page = evaluation_page(warehouse, CONFIG, 2025, "compound", online=NO_ONLINE)
    assert_frame_equal(page.sources, score_sources(expected.inputs.scores))
    grouped = ranking_result(warehouse, CONFIG, 2025, "compound", online=NO_ONLINE)
    assert_frame_equal(grouped.table, expected.ranking().table)


def test_stored_scores_with_blanks_and_unknown_indicators_give_what_the_rows_give() -> None:
    """`evaluate_stored` on scores coded and sorted by hand here (Python's order), with rows it
    must leave out — no number, an indicator not in the config, a unit with nothing else — is
    `evaluate` on the same rows: figures, sentences and notes."""
    rng = random.Random(5)
    names = [i.name for i in EVALUATOR_INDICATORS]
    rows = []
    for unit in ("乙苑", "甲苑", "丙苑", "Z栋", "a栋"):
        for evaluator in rng.sample(["评委-B", "评委-A", "评委-C", "评委-D", "评委-E"], 4):
            for indicator in [*names, "旧指标"]:
                blank = rng.random() < 0.1
                rows.append((unit, evaluator, indicator,
                             math.nan if blank else float(rng.randrange(0, 12)) / 2))  # fmt: skip
    rows.append(("丁苑", "评委-A", "旧指标", 3.0))  # its only row is left out
    scores = pd.DataFrame(rows, columns=ev.SCORE_COLUMNS)
    metrics = pd.DataFrame({"unit": ["甲苑", "乙苑", "戊苑"]})
    inputs = ev.EvaluationInput(2025, "compound", scores, ev.empty_adjustments(), metrics)
    expected = ev.evaluate(inputs, CONFIG)
    assert any("旧指标" in note for note in expected.warnings)
    assert any("没有数值" in note for note in expected.warnings)
    unit_names, evaluator_names = sorted(set(scores["unit"])), sorted(set(scores["evaluator"]))
    position = {name: j for j, name in enumerate(ev.indicator_names(CONFIG))}
    used = scores[scores["indicator"].isin(names) & scores["score"].notna()]
    ordered = sorted(
        (unit_names.index(u), position[i], s, evaluator_names.index(e))
        for u, e, i, s in used.itertuples(index=False)
    )
    left = scores.drop(used.index)
    stored = ev.StoredScores(
        unit_names=np.array(unit_names, dtype=object),
        evaluator_names=np.array(evaluator_names, dtype=object),
        unit=np.array([r[0] for r in ordered], dtype=np.int64),
        indicator=np.array([r[1] for r in ordered], dtype=np.int64),
        evaluator=np.array([r[3] for r in ordered], dtype=np.int64),
        score=np.array([r[2] for r in ordered], dtype=float),
        left_unit=np.array([unit_names.index(u) for u in left["unit"]], dtype=np.int64),
        left_evaluator=np.array(
            [evaluator_names.index(e) for e in left["evaluator"]], dtype=np.int64
        ),
        left_indicator=left["indicator"].to_numpy(object),
        left_blank=left["score"].isna().to_numpy(bool),
    )
    without_rows = dataclasses.replace(inputs, scores=ev.empty_scores())
    _same_results(ev.evaluate_stored(without_rows, stored, CONFIG), expected)
    assert "丁苑" in set(expected.table["unit"])
    ranking = ev.rank_stored(without_rows, stored, CONFIG)
    assert_frame_equal(ranking.table, expected.ranking().table, check_exact=True)


def test_compound_rates_are_unit_tables_compound_rows(warehouse: duckdb.DuckDBPyConnection) -> None:
    filters = Filters.for_year(2025)
    fast = compound_rates(warehouse, filters, CONFIG)
    assert fast is not None
    whole = unit_table(warehouse, filters, CONFIG, "compound")[RATE_TABLE_COLUMNS]
    assert_frame_equal(fast, whole, check_exact=True)


def test_packed_ranks_equal_counting_higher_values() -> None:
    rng = np.random.default_rng(7)
    totals = np.round(rng.random((40, 300)) * 8) / 2 + rng.choice([0.0, 1e-7, 3e-7], (40, 300))
    pool = np.flatnonzero(rng.random(300) < 0.5)
    ranks, positions = ev._ranks_and_pool_positions(totals, pool)
    rounded = np.round(totals, ev.TOTAL_DECIMALS)
    counted = 1 + (rounded[:, None, :] > rounded[:, :, None]).sum(axis=2)
    assert (ranks == counted).all()
    in_pool = rounded[:, pool]
    assert positions is not None
    assert (positions == 1 + (in_pool[:, None, :] > in_pool[:, :, None]).sum(axis=2)).all()
    spread = totals.copy()
    spread[0, 0] = np.inf  # not packable: the argsort path gives the same counts
    fallback, _ = ev._ranks_and_pool_positions(spread, pool)
    assert (fallback[1:] == counted[1:]).all()
