"""Online scoring rounds: who may do what, drafts, submissions, recusals, progress, the lock,
and the evaluation they feed — equal to the one from the same scores loaded from a workbook."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import openpyxl
import pandas as pd
import pytest

from govdash.analytics.queries.evaluation import (
    available_years,
    evaluation_page,
    evaluation_result,
    evaluation_units,
)
from govdash.core.access import Principal, Scope
from govdash.core.accounts import AccountStore
from govdash.core.audit import AuditLog
from govdash.core.config import load_config
from govdash.core.rounds import (
    DRAFT,
    NOT_STARTED,
    SUBMITTED,
    RoundError,
    RoundIndicator,
    RoundStore,
    evaluator_pseudonym,
    evaluator_scope,
    rounds_path,
)
from govdash.core.warehouse import connect_readonly, hash_key
from govdash.etl.load import load_paths
from tests.analytics.test_evaluation_data import EVALUATION_HEADER
from tests.analytics.test_report import REGISTER, survey_rows, ticket_rows
from tests.analytics.warehouse_data import REGISTER_HEADER, SURVEY_HEADER, TICKET_HEADER
from tests.conftest import write_xlsx

ADMIN = Principal("李主任", "admin", Scope.district())
STREET_ADMIN = Principal("乙街道管理员", "admin", Scope("street", "乙街道"))
VIEWER = Principal("王查看", "viewer", Scope.district())
EVALUATORS = ("王一", "李二", "张三", "赵四", "刘五")
LEAN = {"王一": 0.1, "李二": 0.0, "张三": -0.05, "赵四": 0.05, "刘五": -0.3}
SHARES = {"东一小区": 0.9, "东二小区": 0.6, "西一小区": 0.8, "西二小区": 0.95}
KEY = "a-test-key-shared-by-both-warehouses"


def evaluator(name: str, scope: Scope | None = None) -> Principal:
    return Principal(name, "evaluator", scope or Scope.district())


@pytest.fixture(scope="module")
def config() -> Any:
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("GOVDASH_CONFIG", raising=False)
        return load_config()


def indicators(config: Any) -> list[RoundIndicator]:
    return [
        RoundIndicator(i.name, i.block, i.points, i.help)
        for i in config.indicators
        if i.source == "evaluator"
    ]


def score(unit: str, name: str, points: float) -> float:
    """A score in steps of 0.5 from the unit's share and the evaluator's lean."""
    share = min(max(SHARES[unit] + LEAN[name], 0.0), 1.0)
    return min(points, round(share * points * 2) / 2)


# --- a small store, no warehouse -------------------------------------------------------------------

UNITS = pd.DataFrame(
    {
        "unit": ["东一小区", "东二小区", "西一小区", "南一小区"],
        "parent": ["东社区", "东社区", "西社区", "南社区"],
        "communities": [["东社区"], ["东社区"], ["西社区"], ["南社区"]],
        "streets": [["甲街道"], ["甲街道"], ["甲街道"], ["乙街道"]],
    }
)


@pytest.fixture
def store(tmp_path: Path) -> RoundStore:
    return RoundStore(tmp_path / "rounds.sqlite3", AuditLog(tmp_path / "audit.sqlite3"))


@pytest.fixture
def opened(store: RoundStore, config: Any) -> int:
    round_ = store.open_round(
        ADMIN, 2025, "compound", indicators(config), UNITS, date(2025, 12, 20), 0.5
    )
    return round_.round_id


def test_only_an_admin_opens_and_manages_rounds(
    store: RoundStore, config: Any, opened: int
) -> None:
    for someone in (VIEWER, evaluator("王一")):
        with pytest.raises(PermissionError):
            store.open_round(
                someone, 2024, "compound", indicators(config), UNITS, date(2025, 1, 1), 0.5
            )
        with pytest.raises(PermissionError):
            store.assign(someone, opened, "王一")
        with pytest.raises(PermissionError):
            store.progress(someone, opened, 5)
        with pytest.raises(PermissionError):
            store.lock(someone, opened, str)
    with pytest.raises(PermissionError):  # a street admin cannot manage a district round
        store.assign(STREET_ADMIN, opened, "王一")
    with pytest.raises(RoundError, match="已有第1轮"):
        store.open_round(ADMIN, 2025, "compound", indicators(config), UNITS, date(2025, 1, 1), 0.5)


def test_an_evaluator_reads_and_writes_only_their_own_forms(store: RoundStore, opened: int) -> None:
    store.assign(ADMIN, opened, "王一")
    store.assign(ADMIN, opened, "李二")
    wang, li = evaluator("王一"), evaluator("李二")
    store.save_score(wang, opened, "东一小区", "环境卫生", 4.5)
    assert store.my_form(wang, opened, "东一小区").scores["环境卫生"] == 4.5
    assert store.my_form(li, opened, "东一小区").scores["环境卫生"] is None  # not 王一's
    with pytest.raises(PermissionError):  # not assigned
        store.my_form(evaluator("张三"), opened, "东一小区")
    with pytest.raises(PermissionError):  # an admin is not an evaluator
        store.save_score(ADMIN, opened, "东一小区", "环境卫生", 3)
    with pytest.raises(PermissionError):  # the name alone is not enough: the role is needed
        store.my_form(Principal("王一", "viewer"), opened, "东一小区")
    with pytest.raises(PermissionError):  # no such unit in the round
        store.save_score(wang, opened, "北一小区", "环境卫生", 3)


def test_scores_are_validated_on_entry(store: RoundStore, opened: int) -> None:
    store.assign(ADMIN, opened, "王一")
    wang = evaluator("王一")
    with pytest.raises(RoundError, match="0 到 5 分之间"):
        store.save_score(wang, opened, "东一小区", "环境卫生", 5.5)
    with pytest.raises(RoundError, match="0 到 5 分之间"):
        store.save_score(wang, opened, "东一小区", "环境卫生", -0.5)
    with pytest.raises(RoundError, match=r"以 0\.5 分为单位"):
        store.save_score(wang, opened, "东一小区", "环境卫生", 3.3)
    with pytest.raises(RoundError, match="没有“卫生”"):
        store.save_score(wang, opened, "东一小区", "卫生", 3)
    assert store.my_form(wang, opened, "东一小区").status == NOT_STARTED  # nothing was saved


def test_drafts_submission_and_editing_until_the_lock(
    store: RoundStore, opened: int, config: Any
) -> None:
    store.assign(ADMIN, opened, "王一")
    wang = evaluator("王一")
    names = [i.name for i in indicators(config)]
    store.save_score(wang, opened, "东一小区", names[0], 3)
    assert store.my_form(wang, opened, "东一小区").status == DRAFT
    with pytest.raises(RoundError, match="还有指标没有打分"):
        store.submit(wang, opened, "东一小区")
    for name in names[1:]:
        store.save_score(wang, opened, "东一小区", name, 2)
    assert store.submit(wang, opened, "东一小区").status == SUBMITTED
    store.save_score(wang, opened, "东一小区", names[0], 2.5)  # still editable, still submitted
    assert store.my_form(wang, opened, "东一小区").status == SUBMITTED
    store.save_score(wang, opened, "东一小区", names[0], None)  # incomplete again: a draft
    assert store.my_form(wang, opened, "东一小区").status == DRAFT
    store.save_score(wang, opened, "东一小区", names[0], 2.5)
    store.submit(wang, opened, "东一小区")
    store.save_score(wang, opened, "东二小区", names[0], 1)  # a draft, never submitted
    store.save_comment(wang, opened, "东一小区", "公示及时")
    assert store.lock(ADMIN, opened, lambda name: f"评委-{name}") == len(names)
    final = store.final_scores(2025, "compound")
    assert set(final["unit"]) == {"东一小区"}  # the draft is left out
    assert final.set_index("indicator").loc[names[0], "score"] == 2.5
    assert set(final["evaluator"]) == {"评委-王一"}
    with pytest.raises(RoundError, match=r"已于 .* 锁定"):
        store.save_score(wang, opened, "东一小区", names[0], 3)
    with pytest.raises(RoundError, match="理由"):
        store.reopen(ADMIN, opened, " ")
    store.reopen(ADMIN, opened, "评委补交")
    assert store.final_scores(2025, "compound").empty  # out of the evaluation until locked again
    store.save_score(wang, opened, "东一小区", names[0], 3)


def test_recusals_by_community_by_hand_and_by_scope(store: RoundStore, opened: int) -> None:
    assert store.assign(ADMIN, opened, "王一", "东社区") == ["东一小区", "东二小区"]
    store.assign(ADMIN, opened, "李二")
    with pytest.raises(RoundError, match="回避理由"):
        store.recuse(ADMIN, opened, "李二", ["西一小区"], "")
    store.recuse(ADMIN, opened, "李二", ["西一小区"], "曾任该小区物业项目经理")
    assert list(store.my_units(evaluator("王一"), opened)["unit"]) == ["南一小区", "西一小区"]
    li_street = evaluator("李二", Scope("street", "甲街道"))  # cannot see 南一小区's data
    assert list(store.my_units(li_street, opened)["unit"]) == ["东一小区", "东二小区"]
    with pytest.raises(PermissionError, match="回避"):
        store.save_score(evaluator("王一"), opened, "东一小区", "环境卫生", 3)
    table = store.assignments(ADMIN, opened, {"李二": Scope("street", "甲街道")}).set_index(
        "evaluator"
    )
    assert (
        table.loc["王一", "recused"]
        == "东一小区（评委所属社区：东社区）；东二小区（评委所属社区：东社区）"
    )
    assert table.loc["李二", "recused"] == "西一小区（曾任该小区物业项目经理）"
    assert table.loc["李二", "outside_scope"] == "南一小区"
    assert table["units"].to_dict() == {"王一": 2, "李二": 2}
    store.withdraw_recusal(ADMIN, opened, "李二", "西一小区")
    assert "西一小区" in list(store.my_units(evaluator("李二"), opened)["unit"])


def test_progress_reminders_and_the_audit_log(
    store: RoundStore, opened: int, config: Any, tmp_path: Path
) -> None:
    names = [i.name for i in indicators(config)]
    store.assign(ADMIN, opened, "王一")
    store.assign(ADMIN, opened, "李二", "南社区")
    wang = evaluator("王一")
    for name in names:
        store.save_score(wang, opened, "东一小区", name, 1)
    store.submit(wang, opened, "东一小区")
    store.save_score(wang, opened, "东二小区", names[0], 1)
    late = datetime(2025, 12, 21, 9, 0)
    per_evaluator, per_unit = store.progress(ADMIN, opened, 5, now=late)
    rows = per_evaluator.set_index("evaluator")
    assert rows.loc["王一", ["units", "submitted", "drafts", "not_started"]].tolist() == [
        4,
        1,
        1,
        2,
    ]
    assert rows.loc["李二", ["units", "submitted", "not_started"]].tolist() == [3, 0, 3]
    assert rows["is_late"].tolist() == [True, True]
    assert not store.progress(ADMIN, opened, 5, now=late - timedelta(days=2))[0]["is_late"].any()
    units = per_unit.set_index("unit")
    assert units.loc["东一小区", ["evaluators", "submitted"]].tolist() == [2, 1]
    assert units.loc["南一小区", "evaluators"] == 1  # 李二 belongs to 南社区
    assert units["is_short"].all()  # nobody has 5 evaluators
    assert "score" not in per_evaluator.columns and "score" not in per_unit.columns

    store.remind(ADMIN, opened, ["李二"], "请于 12 月 20 日前完成打分")
    reminders = store.my_reminders(evaluator("李二"), opened)
    assert [(r.reminded_by, r.message) for r in reminders] == [
        ("李主任", "请于 12 月 20 日前完成打分")
    ]
    assert store.my_reminders(wang, opened) == []
    assert store.progress(ADMIN, opened, 5)[0].set_index("evaluator").loc["李二", "reminders"] == 1

    events = AuditLog(tmp_path / "audit.sqlite3").events()
    actions = events["action"].value_counts().to_dict()
    assert actions["round_opened"] == 1
    assert actions["round_saved"] == len(names) + 1
    assert actions["round_submitted"] == 1
    assert actions["round_reminded"] == 1
    saved = events[events["action"] == "round_saved"]
    assert set(saved["actor"]) == {"王一"}
    assert not saved["detail"].str.contains('"score"').any()  # values never reach the log


def test_the_rounds_file_is_private(store: RoundStore, opened: int) -> None:
    assert oct(store.path.stat().st_mode & 0o777) == "0o600"
    with sqlite3.connect(store.path) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_evaluators_are_local_evaluator_accounts_or_oidc_identities(tmp_path: Path) -> None:
    accounts = AccountStore(tmp_path / "accounts.json")
    accounts.add("王一", "a long password", "evaluator", Scope("street", "甲街道"))
    accounts.add("李查看", "a long password", "viewer", Scope.district())
    assert evaluator_scope(accounts, "王一", False) == Scope("street", "甲街道")
    with pytest.raises(RoundError, match="不是评委"):
        evaluator_scope(accounts, "李查看", True)
    with pytest.raises(RoundError, match="govdash users add 张三 --role evaluator"):
        evaluator_scope(accounts, "张三", False)
    assert evaluator_scope(accounts, "zhang.san@jiajie.gov.cn", True) is None


# --- against the loader and the evaluation --------------------------------------------------------


def _workbook_rows(config: Any) -> list[list[Any]]:
    rows = []
    for unit in SHARES:
        for name in EVALUATORS:
            scores = [score(unit, name, i.points) for i in indicators(config)]
            rows.append([2025, unit, "小区", name, *scores, None, None, None])
    return rows


def _load(folder: Path, with_scores: bool, config: Any) -> Path:
    files = [
        write_xlsx(folder / "台账.xlsx", {"台账": [REGISTER_HEADER, *REGISTER]}),
        write_xlsx(folder / "工单.xlsx", {"工单": [TICKET_HEADER, *ticket_rows()]}),
        write_xlsx(folder / "问卷.xlsx", {"问卷": [SURVEY_HEADER, *survey_rows()]}),
    ]
    if with_scores:
        files.append(
            write_xlsx(folder / "考评.xlsx", {"考评": [EVALUATION_HEADER, *_workbook_rows(config)]})
        )
    db = folder / "data" / "warehouse.duckdb"
    report = load_paths(files, db, config)
    assert all(f.error is None and f.rows_rejected == 0 for f in report.files)
    return db


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory, config: Any) -> Iterator[tuple[Path, Path]]:
    """Two warehouses with one hash key: the scores as a workbook, and no scores (online)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GOVDASH_HASH_KEY", KEY)
        for name in ("GOVDASH_DB", "GOVDASH_ROUNDS", "GOVDASH_AUDIT", "GOVDASH_ACCOUNTS"):
            patch.delenv(name, raising=False)
        workbook = _load(tmp_path_factory.mktemp("workbook"), True, config)
        online = _load(tmp_path_factory.mktemp("online"), False, config)
        yield workbook, online


def _score_online(db: Path, config: Any, names: tuple[str, ...] = EVALUATORS) -> int:
    store = RoundStore(rounds_path(db), AuditLog(db.parent / "audit.sqlite3"))
    con = connect_readonly(db)
    try:
        units = evaluation_units(con, config, 2025, "compound")
    finally:
        con.close()
    round_ = store.open_round(
        ADMIN, 2025, "compound", indicators(config), units, date(2026, 1, 15), 0.5
    )
    for name in names:
        store.assign(ADMIN, round_.round_id, name)
        for unit in store.my_units(evaluator(name), round_.round_id)["unit"]:
            for indicator in indicators(config):
                store.save_score(
                    evaluator(name), round_.round_id, unit, indicator.name,
                    score(unit, name, indicator.points),
                )  # fmt: skip
            store.submit(evaluator(name), round_.round_id, unit)
    store.lock(ADMIN, round_.round_id, lambda name: evaluator_pseudonym(name, hash_key(db)))
    return round_.round_id


def test_the_pseudonym_is_the_loaders(sites: tuple[Path, Path]) -> None:
    workbook, _ = sites
    con = connect_readonly(workbook)
    try:
        loaded = {
            row[0]
            for row in con.execute("SELECT DISTINCT evaluator FROM evaluation_scores").fetchall()
        }
    finally:
        con.close()
    assert loaded == {evaluator_pseudonym(name, KEY) for name in EVALUATORS}


def test_a_locked_round_ranks_as_the_same_scores_from_a_workbook(
    sites: tuple[Path, Path], config: Any
) -> None:
    workbook, online = sites
    con = connect_readonly(online)
    try:
        assert available_years(con, "compound") == []
        before = evaluation_result(con, config, 2025, "compound")
    finally:
        con.close()
    assert before.evaluator_scores.empty
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GOVDASH_HASH_KEY", KEY)
        patch.delenv("GOVDASH_ROUNDS", raising=False)
        _score_online(online, config)
        results, sources = [], []
        for db in (workbook, online):
            con = connect_readonly(db)
            try:
                assert available_years(con, "compound") == [2025]
                results.append(evaluation_result(con, config, 2025, "compound"))
                sources.append(evaluation_page(con, config, 2025, "compound").sources)
            finally:
                con.close()
    from_workbook, from_round = results
    columns = ["position", "rank", "unit", "total", "grade", "award", "is_eligible"]
    pd.testing.assert_frame_equal(from_workbook.table[columns], from_round.table[columns])
    pd.testing.assert_frame_equal(
        from_workbook.evaluator_scores, from_round.evaluator_scores, check_like=True
    )
    pd.testing.assert_frame_equal(from_workbook.evaluator_detail, from_round.evaluator_detail)
    assert set(from_round.inputs.scores["source"]) == {"在线评分第1轮"}
    assert [set(frame["source"]) for frame in sources] == [{"工作簿"}, {"在线评分第1轮"}]
    assert [frame["indicators"].sum() for frame in sources] == [200, 200]
    assert any(
        note.startswith("评分来源：在线评分第1轮（已锁定）200 条，5 位评委")
        for note in from_round.warnings
    )


def test_online_and_workbook_scores_are_one_set(
    tmp_path: Path, config: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOVDASH_HASH_KEY", KEY)
    monkeypatch.delenv("GOVDASH_ROUNDS", raising=False)
    db = _load(tmp_path, True, config)
    LEAN["孙六"] = 0.0
    try:
        # 孙六 scores online; 王一 scores online too, replacing the workbook's 王一.
        _score_online(db, config, ("孙六", "王一"))
    finally:
        del LEAN["孙六"]
    con = connect_readonly(db)
    try:
        result = evaluation_result(con, config, 2025, "compound")
    finally:
        con.close()
    scores = result.inputs.scores
    per_evaluator = scores.groupby("evaluator")["source"].agg(set)
    assert per_evaluator[evaluator_pseudonym("孙六", KEY)] == {"在线评分第1轮"}
    assert per_evaluator[evaluator_pseudonym("王一", KEY)] == {"在线评分第1轮"}
    assert per_evaluator[evaluator_pseudonym("李二", KEY)] == {"工作簿"}
    assert len(scores) == 4 * 6 * 10  # six evaluators, no duplicate of 王一
    assert result.evaluator_detail["evaluators"].eq(6).all()
    assert any("40 条工作簿评分与在线评分为同一评委" in note for note in result.warnings)


# --- the command ------------------------------------------------------------------------------


def _govdash(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GOVDASH_")}
    return subprocess.run(
        [sys.executable, "-m", "govdash", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**clean, **env},
    )


def test_the_round_command_opens_reports_locks_and_exports(
    tmp_path: Path, config: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOVDASH_HASH_KEY", KEY)
    monkeypatch.delenv("GOVDASH_ROUNDS", raising=False)
    db = _load(tmp_path, False, config)
    accounts = AccountStore(db.parent / "accounts.json")
    for name in ("王一", "李二"):
        accounts.add(name, "a long password", "evaluator", Scope.district())
    env = {"GOVDASH_HASH_KEY": KEY}
    refused = _govdash("round", "open", "--year", "2025", "--deadline", "2026-01-15",
                       "--evaluator", "张三", "--db", str(db), env=env)  # fmt: skip
    assert refused.returncode == 1 and "govdash users add 张三 --role evaluator" in refused.stderr
    opened = _govdash("round", "open", "--year", "2025", "--deadline", "2026-01-15",
                      "--evaluator", "王一@东社区", "--evaluator", "李二", "--db", str(db), env=env)  # fmt: skip
    assert opened.returncode == 0, opened.stderr
    assert "4 个单位" in opened.stdout and "回避 东一小区、东二小区" in opened.stdout
    store = RoundStore(rounds_path(db))
    for name in ("王一", "李二"):
        for unit in store.my_units(evaluator(name), 1)["unit"]:
            for indicator in indicators(config):
                store.save_score(
                    evaluator(name), 1, unit, indicator.name, score(unit, name, indicator.points)
                )
            store.submit(evaluator(name), 1, unit)
    status = _govdash("round", "status", "--round", "1", "--db", str(db), env=env)
    assert status.returncode == 0, status.stderr
    assert "王一\t2\t2\t0\t0\t0\t否" in status.stdout
    assert "李二\t4\t4\t0\t0\t0\t否" in status.stdout
    assert "东一小区（1）" in status.stdout  # fewer than 5 evaluators
    early = _govdash("round", "export", "--round", "1", "--db", str(db), env=env)
    assert early.returncode == 1 and "尚未锁定" in early.stderr
    locked = _govdash("round", "lock", "--round", "1", "--db", str(db), env=env)
    assert locked.returncode == 0, locked.stderr
    assert f"{6 * 10} 个评分" in locked.stdout
    exported = _govdash("round", "export", "--round", "1", "--db", str(db), env=env)
    assert exported.returncode == 0, exported.stderr
    frame = pd.read_csv(pd.io.common.StringIO(exported.stdout))
    assert len(frame) == 60 and set(frame["evaluator"]) == {
        evaluator_pseudonym(name, KEY) for name in ("王一", "李二")
    }
    workbook = tmp_path / "round.xlsx"
    assert (
        _govdash(
            "round", "export", "--round", "1", "--out", str(workbook), "--db", str(db), env=env
        ).returncode
        == 0
    )
    sheet = openpyxl.load_workbook(workbook)["评分"]
    header = [cell.value for cell in sheet[1]]
    assert header[:4] == ["年度", "被考评单位", "单位类型", "评委"]
    assert sheet.max_row == 1 + 6  # 王一 two units, 李二 four
    events = AuditLog(db.parent / "audit.sqlite3").events()
    assert {"round_opened", "round_locked", "export"} <= set(events["action"])
