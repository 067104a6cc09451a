"""A whole online scoring round through the pages (AppTest): an admin opens it and assigns
evaluators, two evaluators score (a draft survives a new session, a recused unit is not
offered), progress shows, the lock makes the scores final, and 年度考评 ranks the units as the
same scores loaded from a workbook do."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from govdash.analytics.queries.evaluation import evaluation_result
from govdash.core.access import Principal, Scope
from govdash.core.accounts import AccountStore
from govdash.core.audit import AuditLog
from govdash.core.rounds import RoundStore, rounds_path
from govdash.core.warehouse import connect_readonly
from tests.rounds_site import (
    ADMIN,
    DRAFT,
    EVALUATORS,
    INDICATORS,
    KEY,
    PASSWORD,
    RECUSED,
    RECUSED_COMMUNITY,
    SCORES,
    UNITS,
    build_site,
    site_config,
    site_environment,
)

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.usefixtures("fresh_streamlit_caches")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    db, config_path = build_site(tmp_path / "online", with_scores=False)
    accounts = AccountStore(db.parent / "accounts.json")
    accounts.add(ADMIN, PASSWORD, "admin", Scope.district())
    for name in (*EVALUATORS, RECUSED):
        accounts.add(name, PASSWORD, "evaluator", Scope.district())
    accounts.add("王查看", PASSWORD, "viewer", Scope.district())
    monkeypatch.setenv("GOVDASH_DB", str(db))
    monkeypatch.setenv("GOVDASH_CONFIG", str(config_path))
    monkeypatch.setenv("GOVDASH_HASH_KEY", KEY)
    for name in ("GOVDASH_ROUNDS", "GOVDASH_AUDIT", "GOVDASH_ACCOUNTS", "GOVDASH_SESSIONS"):
        monkeypatch.delenv(name, raising=False)
    return db, config_path


def signed_in(name: str, page: str | None = None) -> AppTest:
    app = AppTest.from_file(str(ROOT / "govdash" / "web" / "app.py"), default_timeout=120).run()
    app.text_input(key="auth_username").input(name)
    app.text_input(key="auth_password").input(PASSWORD)
    app.button[0].click().run()
    ok(app)
    if page is not None:
        app.switch_page(f"views/{page}.py").run()
        ok(app)
    return app


def ok(app: AppTest) -> None:
    assert not app.exception, [e.value for e in app.exception]
    assert not [e.value for e in app.error], "the page reported an error"


def frame(app: AppTest, *columns: str) -> pd.DataFrame:
    """The one dataframe on the page with all these columns."""
    found = [e.value for e in app.dataframe if set(columns) <= set(e.value.columns)]
    assert len(found) == 1, f"{len(found)} dataframes with {columns}"
    return found[0]


def score_unit(app: AppTest, unit: str, values: tuple[float, ...], submit: bool = True) -> None:
    app.selectbox(key="scoring_unit_1").set_value(unit).run()
    ok(app)
    for indicator, value in zip(INDICATORS, values, strict=True):
        app.number_input(key=f"score_1_{unit}_{indicator}").set_value(value).run()
        ok(app)
    if submit:
        app.button(key=f"scoring_submit_1_{unit}").click().run()
        ok(app)


def test_a_whole_round_in_the_pages(site: tuple[Path, Path], tmp_path: Path) -> None:
    db, config_path = site
    admin = signed_in(ADMIN, "rounds")
    assert admin.title[0].value == "评分轮次"
    admin.number_input(key="rounds_open_year").set_value(2025)
    admin.radio(key="rounds_open_level").set_value("compound")
    admin.date_input(key="rounds_open_deadline").set_value(date.today() + timedelta(days=7))
    admin.button(key="rounds_open_button").click().run()
    ok(admin)
    assert any("已开启第1轮" in s.value for s in admin.success)
    for name, community in ((EVALUATORS[0], ""), (EVALUATORS[1], ""), (RECUSED, RECUSED_COMMUNITY)):
        admin.selectbox(key="rounds_assign_evaluator").set_value(name)
        admin.selectbox(key="rounds_assign_affiliation").set_value(community)
        admin.button(key="rounds_assign_button").click().run()
        ok(admin)
    assignments = frame(admin, "评委", "回避（理由）").set_index("评委")
    assert assignments["应评单位数"].to_dict() == {"孙六": 2, "李二": 4, "王一": 4}
    assert "东一小区（评委所属社区：东社区）" in assignments.loc["孙六", "回避（理由）"]

    # Two evaluators score every unit; 孙六 is offered only the units outside 东社区.
    for name in EVALUATORS:
        scorer = signed_in(name, "scoring")
        assert scorer.selectbox(key="scoring_unit_1").options == sorted(UNITS)
        for unit in UNITS:
            score_unit(scorer, unit, SCORES[(name, unit)])
        assert any("已提交 4/4" in c.value for c in scorer.caption)
    recused = signed_in(RECUSED, "scoring")
    offered = recused.selectbox(key="scoring_unit_1").options
    assert offered == ["西一小区", "西二小区"]
    unit, indicator, value = DRAFT
    recused.selectbox(key="scoring_unit_1").set_value(unit).run()
    recused.number_input(key=f"score_1_{unit}_{indicator}").set_value(7.3).run()
    assert any("以 0.5 分为单位" in e.value for e in recused.error)  # validated on entry
    recused.number_input(key=f"score_1_{unit}_{indicator}").set_value(value).run()
    ok(recused)
    again = signed_in(RECUSED, "scoring")  # a new session: the draft is still there
    again.selectbox(key="scoring_unit_1").set_value(unit).run()
    assert again.number_input(key=f"score_1_{unit}_{indicator}").value == value
    statuses = frame(again, "打分单位", "状态").set_index("打分单位")["状态"].to_dict()
    assert statuses == {"西一小区": "草稿", "西二小区": "未开始"}

    # Progress, without any score values.
    admin = signed_in(ADMIN, "rounds")
    progress = frame(admin, "评委", "草稿").set_index("评委")
    assert progress.loc["王一", ["应评单位数", "已提交"]].tolist() == [4, 4]
    assert progress.loc["孙六", ["应评单位数", "已提交", "草稿"]].tolist() == [2, 0, 1]
    assert any("少于 5 位" in w.value for w in admin.warning)  # two evaluators: the plain mean
    admin.multiselect(key="rounds_remind_whom").set_value([RECUSED])
    admin.button(key="rounds_remind_button").click().run()
    ok(admin)
    reminded = signed_in(RECUSED, "scoring")
    assert any("李主任" in w.value and "在线打分" in w.value for w in reminded.warning)

    admin = signed_in(ADMIN, "rounds")
    admin.checkbox(key="rounds_lock_confirm").check().run()
    admin.button(key="rounds_lock_button").click().run()
    ok(admin)
    assert any("16 个评分成为最终结果" in s.value for s in admin.success)
    late = signed_in(EVALUATORS[0], "scoring")
    assert any("已于" in i.value and "锁定" in i.value for i in late.info)
    assert late.number_input(key=f"score_1_{UNITS[0]}_{INDICATORS[0]}").disabled

    # 年度考评 ranks as the same scores loaded from a workbook.
    workbook_db, _ = build_site(tmp_path / "workbook", with_scores=True)
    config = site_config(config_path)
    with site_environment(config_path):
        con = connect_readonly(workbook_db)
        try:
            expected = evaluation_result(con, config, 2025, "compound")
        finally:
            con.close()
    evaluation = signed_in(ADMIN, "evaluation")
    evaluation.radio(key="evaluation_level").set_value("compound").run()
    ok(evaluation)
    assert evaluation.selectbox(key="evaluation_year").value == 2025
    ranking = frame(evaluation, "不可参评原因")
    assert ranking["单位"].tolist() == expected.table["unit"].tolist()
    assert ranking["名次"].tolist() == expected.table["rank"].tolist()
    assert ranking["总分"].tolist() == pytest.approx(expected.table["total"].tolist(), abs=1e-9)
    sources = frame(evaluation, "评分来源", "评分指标数")
    assert set(sources["评分来源"]) == {"在线评分第1轮"} and len(sources) == 2

    events = AuditLog(db.parent / "audit.sqlite3").events()
    counts = events["action"].value_counts()
    assert counts["round_saved"] == 2 * 4 * 2 + 1  # every score typed (the refused one not)
    assert counts["round_submitted"] == 8 and counts["round_locked"] == 1
    assert RoundStore(rounds_path(db)).final_scores(2025, "compound")["score"].count() == 16


def _page_as(page: str, principal: Principal) -> AppTest:
    """A page script run on its own, as a URL reaching it outside the navigation would."""
    app = AppTest.from_file(
        str(ROOT / "govdash" / "web" / "views" / f"{page}.py"), default_timeout=60
    )
    app.session_state["principal"] = principal
    return app.run()


@pytest.mark.parametrize(
    ("page", "role", "refusal"),
    [
        ("rounds", "evaluator", "评委"),
        ("rounds", "viewer", "查看者"),
        ("scoring", "viewer", "查看者"),
    ],
)
def test_the_pages_refuse_the_wrong_roles(
    site: tuple[Path, Path], page: str, role: str, refusal: str
) -> None:
    app = _page_as(page, Principal("某人", role, Scope.district()))
    assert not app.exception, [e.value for e in app.exception]
    assert [e.value for e in app.error] == [f"您的角色（{refusal}）无权使用此页面。"]
    assert not app.number_input and not app.button  # nothing of the page was drawn


def test_an_admin_is_told_scoring_is_for_evaluators(site: tuple[Path, Path]) -> None:
    admin = signed_in(ADMIN, "scoring")
    assert any("只对评委账号开放" in i.value for i in admin.info)
    navigation = signed_in(EVALUATORS[0])
    navigation.switch_page("views/scoring.py").run()
    assert any("没有被指派" in i.value for i in navigation.info)
