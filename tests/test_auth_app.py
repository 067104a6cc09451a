"""Sign-in, roles and scopes through Streamlit's AppTest, on a warehouse built by the real loader.

Accounts are made with govdash.core.accounts in a file of the test's own; sign-in goes through the
real form. Numbers are compared with pandas over the generated tickets
(tests/analytics/warehouse_data.py), limited to the account's scope in the test.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from govdash.analytics.queries.evaluation import evaluation_result
from govdash.core.access import Principal, Scope
from govdash.core.accounts import AccountStore
from govdash.core.audit import AuditLog
from govdash.core.warehouse import connect_readonly
from tests.analytics.test_report import build_evaluation_warehouse
from tests.analytics.warehouse_data import (
    REGISTER,
    build_main,
    expected_tickets,
    open_db,
    select,
    shipped_config,
)

ROOT = Path(__file__).resolve().parent.parent
MARCH = {"period": "month", "start": "2025-03-01", "end": "2025-03-31"}
MARCH_DAYS = (date(2025, 3, 1), date(2025, 3, 31))
PASSWORD = "correct horse battery"
PAGES = {
    "overview": "总览",
    "response": "响应时效",
    "satisfaction": "满意度",
    "effect": "治理成效",
    "evaluation": "年度考评",
    "data": "数据管理",
    "admin": "账号与审计",
}
ROLE_PAGES = {
    "viewer": {"overview", "response", "satisfaction", "effect"},
    "evaluator": {"overview", "response", "satisfaction", "effect", "evaluation"},
    "admin": set(PAGES),
}


pytestmark = pytest.mark.usefixtures("fresh_streamlit_caches")


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    folder = tmp_path_factory.mktemp("auth-app")
    db, tickets = build_main(folder)
    return db, expected_tickets(tickets)


@pytest.fixture
def accounts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AccountStore:
    """An accounts file and an audit log of this test's own (env overrides beside the db)."""
    monkeypatch.setenv("GOVDASH_ACCOUNTS", str(tmp_path / "accounts.json"))
    monkeypatch.setenv("GOVDASH_AUDIT", str(tmp_path / "audit.sqlite3"))
    monkeypatch.setenv("GOVDASH_SESSIONS", str(tmp_path / "sessions.sqlite3"))
    monkeypatch.delenv("GOVDASH_CONFIG", raising=False)
    return AccountStore(tmp_path / "accounts.json")


def _events(tmp_path: Path, action: str) -> pd.DataFrame:
    return AuditLog(tmp_path / "audit.sqlite3").events(action=action)


def _open(db: Path, monkeypatch: pytest.MonkeyPatch, params: dict[str, str]) -> AppTest:
    monkeypatch.setenv("GOVDASH_DB", str(db))
    app = AppTest.from_file(str(ROOT / "govdash" / "web" / "app.py"), default_timeout=90)
    for key, value in params.items():
        app.query_params[key] = value
    return app.run()


def _sign_in(app: AppTest, username: str, password: str) -> AppTest:
    app.text_input(key="auth_username").input(username)
    app.text_input(key="auth_password").input(password)
    app.button[0].click().run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def _signed_in(
    db: Path,
    monkeypatch: pytest.MonkeyPatch,
    store: AccountStore,
    role: str,
    scope: Scope,
    params: dict[str, str] | None = None,
) -> AppTest:
    name = f"{role}-{scope.name or 'all'}"
    store.add(name, PASSWORD, role, scope)
    app = _sign_in(_open(db, monkeypatch, params if params is not None else MARCH), name, PASSWORD)
    assert app.title and app.title[0].value == "总览", "signed in, the overview opens"
    return app


def _metrics(app: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in app.metric}


def _kpi_texts(frame: pd.DataFrame) -> dict[str, str]:
    """The overview's ticket count and on-time response rate, computed with pandas."""
    judged = frame[frame.response_status.isin(["on_time", "late"])]
    return {
        "工单量": f"{len(frame):,}",
        "及时响应率": f"{(judged.response_status == 'on_time').mean():.1%}",
    }


# --- before sign-in ------------------------------------------------------------------------------


def test_with_accounts_nothing_shows_before_sign_in(
    warehouse: tuple[Path, pd.DataFrame], accounts: AccountStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    accounts.add("someone", PASSWORD, "admin", Scope.district())
    app = _open(warehouse[0], monkeypatch, MARCH)
    assert not app.exception
    assert [s.value for s in app.subheader] == ["登录"]
    assert not app.metric and not app.dataframe and not app.multiselect
    assert not any("本地单用户模式" in w.value for w in app.warning)
    app.switch_page("views/data.py").run()  # a deep link: still only the sign-in form
    assert not app.exception
    assert [s.value for s in app.subheader] == ["登录"]
    assert not app.title or app.title[0].value != "数据管理"
    assert not app.get("file_uploader") and not app.metric


def test_a_wrong_password_is_refused_then_the_name_is_locked(
    warehouse: tuple[Path, pd.DataFrame],
    accounts: AccountStore,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    accounts.add("王芳", PASSWORD, "viewer", Scope.district())
    app = _open(warehouse[0], monkeypatch, MARCH)
    for _ in range(5):
        _sign_in(app, "王芳", "wrong password")
        assert any("用户名或密码不正确" in e.value for e in app.error)
        assert not app.metric
    _sign_in(app, "nobody", "whatever1")  # an unknown name gets the same message
    assert any("用户名或密码不正确" in e.value for e in app.error)
    # The sixth try for 王芳 within the window is refused even with the right password.
    _sign_in(app, "王芳", PASSWORD)
    assert any("登录失败次数过多" in e.value for e in app.error)
    assert not app.metric
    failed = _events(tmp_path, "sign_in_failed")
    assert failed["actor"].value_counts().to_dict() == {"王芳": 5, "nobody": 1}
    assert _events(tmp_path, "sign_in_refused")["actor"].tolist() == ["王芳"]
    assert _events(tmp_path, "sign_in").empty


# --- roles: navigation, refusals, ticket-level rows --------------------------------------------


@pytest.mark.parametrize("role", ["viewer", "evaluator", "admin"])
def test_navigation_holds_only_the_pages_a_role_may_use(
    warehouse: tuple[Path, pd.DataFrame],
    accounts: AccountStore,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    role: str,
) -> None:
    app = _signed_in(warehouse[0], monkeypatch, accounts, role, Scope.district())
    signed = _events(tmp_path, "sign_in")
    assert signed["actor"].tolist() == [f"{role}-all"]
    assert json.loads(signed["detail"].iloc[0]) == {"role": role, "scope": "district"}
    for page, title in PAGES.items():
        if page in ROLE_PAGES[role]:
            if page in ("evaluation", "data", "admin"):
                app.switch_page(f"views/{page}.py").run()
                assert not app.exception, [e.value for e in app.exception]
                assert app.title[0].value == title
        else:
            with pytest.raises(ValueError, match="Could not find a navigation page"):
                app.switch_page(f"views/{page}.py")
    if role == "admin":
        app.switch_page("views/data.py").run()
        assert len(app.get("file_uploader")) == 1, "admins may upload"


@pytest.mark.parametrize(
    ("page", "role"),
    [("data", "viewer"), ("data", "evaluator"), ("admin", "evaluator"), ("evaluation", "viewer")],
)
def test_a_page_reached_without_its_role_refuses_to_render(
    warehouse: tuple[Path, pd.DataFrame],
    accounts: AccountStore,
    monkeypatch: pytest.MonkeyPatch,
    page: str,
    role: str,
) -> None:
    monkeypatch.setenv("GOVDASH_DB", str(warehouse[0]))
    app = AppTest.from_file(
        str(ROOT / "govdash" / "web" / "views" / f"{page}.py"), default_timeout=90
    )
    app.session_state["principal"] = Principal("x", role, Scope.district())
    app.run()
    assert any("无权使用此页面" in e.value for e in app.error)
    assert not app.title, "nothing of the page is drawn"
    assert not app.get("file_uploader") and not app.dataframe and not app.tabs


def test_a_page_without_a_signed_in_principal_refuses(
    warehouse: tuple[Path, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOVDASH_DB", str(warehouse[0]))
    app = AppTest.from_file(
        str(ROOT / "govdash" / "web" / "views" / "overview.py"), default_timeout=90
    ).run()
    assert any("无权使用此页面" in e.value for e in app.error)
    assert not app.metric


def _drill_to_a_compound(app: AppTest) -> str:
    app.radio(key="overview_level").set_value("compound").run()
    compound = "东一小区"
    app.selectbox(key="drill_compound").select(compound).run()
    assert not app.exception, [e.value for e in app.exception]
    return compound


@pytest.mark.parametrize("role", ["viewer", "evaluator", "admin"])
def test_only_admins_see_ticket_level_rows(
    warehouse: tuple[Path, pd.DataFrame],
    accounts: AccountStore,
    monkeypatch: pytest.MonkeyPatch,
    role: str,
) -> None:
    db, frame = warehouse
    app = _signed_in(db, monkeypatch, accounts, role, Scope.district())
    app.radio(key="overview_level").set_value("compound").run()
    app.selectbox(key="drill_compound").select("东一小区").run()
    assert not app.exception, [e.value for e in app.exception]
    # Ticket-level tables are told apart by their columns (plain st.dataframe keys are not
    # readable in AppTest): the drill-down has 工单编号, the longest-open list 已挂起天数.
    drilled = [d.value for d in app.dataframe if "工单编号" in d.value.columns]
    hidden_on_overview = any("工单明细仅管理员可见" in c.value for c in app.caption)
    app.switch_page("views/response.py").run()
    assert not app.exception, [e.value for e in app.exception]
    longest = [d.value for d in app.dataframe if "已挂起天数" in d.value.columns]
    charts_shown = len(app.dataframe)
    if role == "admin":
        expected = select(frame, *MARCH_DAYS, compound=["东一小区"])
        assert len(expected) > 0
        assert sorted(drilled[0]["工单编号"]) == sorted(expected["ticket_id"])
        assert len(longest) == 1 and not hidden_on_overview
    else:
        assert drilled == [] and longest == []
        assert charts_shown > 0, "the aggregates are still there"
        assert hidden_on_overview
        assert any("工单明细仅管理员可见" in c.value for c in app.caption)


# --- scopes --------------------------------------------------------------------------------------


def _places(scope_level: str, name: str) -> dict[str, list[str]]:
    """Streets, communities and compounds of a scope, from the register the test wrote."""
    column = {"street": 0, "community": 1}[scope_level]
    rows = [r for r in REGISTER if r[column] == name]
    return {
        "street": sorted({r[0] for r in rows}),
        "community": sorted({r[1] for r in rows}),
        "compound": sorted({r[2] for r in rows}),
    }


@pytest.mark.parametrize(
    ("level", "name"), [("community", "东社区"), ("community", "南社区"), ("street", "甲街道")]
)
def test_a_scoped_account_sees_only_its_places(
    warehouse: tuple[Path, pd.DataFrame],
    accounts: AccountStore,
    monkeypatch: pytest.MonkeyPatch,
    level: str,
    name: str,
) -> None:
    db, frame = warehouse
    app = _signed_in(db, monkeypatch, accounts, "viewer", Scope(level, name))
    places = _places(level, name)
    expected = select(frame, *MARCH_DAYS, community=places["community"])
    assert 0 < len(expected) < len(select(frame, *MARCH_DAYS))
    metrics = _metrics(app)
    for label, value in _kpi_texts(expected).items():
        assert metrics[label] == value, label
    for picker in ("street", "community", "compound"):
        assert sorted(app.multiselect(key=f"f_{picker}").options) == places[picker], picker
    units = next(d.value for d in app.dataframe if d.key == "unit_table")
    assert sorted(units["unit"]) == places["community"], "the unit table lists in-scope units only"


def test_a_url_naming_another_community_cannot_widen_the_scope(
    warehouse: tuple[Path, pd.DataFrame], accounts: AccountStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, frame = warehouse
    app = _signed_in(
        db,
        monkeypatch,
        accounts,
        "viewer",
        Scope("community", "东社区"),
        params={**MARCH, "community": "西社区", "street": "乙街道"},
    )
    assert any("不在您的数据范围" in w.value and "西社区" in w.value for w in app.warning)
    east = select(frame, *MARCH_DAYS, community=["东社区"])
    west = select(frame, *MARCH_DAYS, community=["西社区"])
    assert len(east) != len(west)
    assert _metrics(app)["工单量"] == f"{len(east):,}"
    assert "community" not in app.query_params and "street" not in app.query_params
    # Nor can the sidebar: 西社区 is not an option to pick.
    assert "西社区" not in app.multiselect(key="f_community").options
    # Every page keeps to the scope.
    app.switch_page("views/response.py").run()
    app.switch_page("views/satisfaction.py").run()
    assert not app.exception, [e.value for e in app.exception]


def test_an_evaluator_ranks_only_the_units_in_scope(
    accounts: AccountStore,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    db = build_evaluation_warehouse(tmp_path_factory.mktemp("auth-evaluation"))
    scope = Scope("community", "西社区")
    app = _signed_in(db, monkeypatch, accounts, "evaluator", scope, params={})
    app.switch_page("views/evaluation.py").run()
    assert not app.exception, [e.value for e in app.exception]
    ranking = next(d.value for d in app.dataframe if "不可参评原因" in d.value.columns)
    assert sorted(ranking["单位"]) == _places("community", "西社区")["compound"]
    con = open_db(db)
    try:
        expected = evaluation_result(con, shipped_config(), 2025, "compound", scope).table
        district = evaluation_result(con, shipped_config(), 2025, "compound").table
    finally:
        con.close()
    assert ranking["单位"].tolist() == expected["unit"].tolist()
    assert ranking["总分"].tolist() == expected["total"].tolist()
    assert ranking["名次"].tolist() == list(range(1, len(expected) + 1))
    assert len(district) > len(expected)


# --- single-user mode and OIDC -----------------------------------------------------------------


def test_without_accounts_the_app_runs_in_single_user_mode(
    warehouse: tuple[Path, pd.DataFrame], accounts: AccountStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GOVDASH_ACCOUNTS")  # none configured, none beside the warehouse
    app = _open(warehouse[0], monkeypatch, MARCH)
    assert any("本地单用户模式" in w.value for w in app.sidebar.warning)
    assert app.title[0].value == "总览"
    for page in ("evaluation", "data", "admin"):
        app.switch_page(f"views/{page}.py").run()
        assert not app.exception, [e.value for e in app.exception]
        assert app.title[0].value == PAGES[page]


def _refused(app: AppTest) -> str:
    """The refusal text of a page that serves nothing: no data, no single-user banner."""
    assert not app.exception, [e.value for e in app.exception]
    assert not app.metric and not app.dataframe and not app.text_input
    assert not any("本地单用户模式" in w.value for w in app.sidebar.warning)
    return " ".join(e.value for e in app.error)


def test_a_configured_accounts_file_that_is_missing_refuses_every_page(
    warehouse: tuple[Path, pd.DataFrame],
    accounts: AccountStore,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    # $GOVDASH_ACCOUNTS names a file that is not there (an unmounted disk, a typo).
    app = _open(warehouse[0], monkeypatch, MARCH)
    assert "看板暂停服务" in _refused(app) and str(tmp_path / "accounts.json") in _refused(app)
    app.switch_page("views/data.py").run()
    assert "看板暂停服务" in _refused(app)


def test_accounts_the_audit_log_remembers_but_the_file_lost_refuse_every_page(
    warehouse: tuple[Path, pd.DataFrame],
    accounts: AccountStore,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.delenv("GOVDASH_ACCOUNTS")  # the default place beside the warehouse: absent
    AuditLog(tmp_path / "audit.sqlite3").record("root", "account_added", target="li", method="cli")
    app = _open(warehouse[0], monkeypatch, MARCH)
    refusal = _refused(app)
    assert "曾建立本地账号" in refusal and "accounts.json" in refusal


def test_an_unreadable_accounts_file_refuses_every_page(
    warehouse: tuple[Path, pd.DataFrame],
    accounts: AccountStore,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    accounts.add("li", PASSWORD, "admin", Scope.district())
    (tmp_path / "accounts.json").write_text('{"accounts": [{"username": ', encoding="utf-8")
    assert "无法读取" in _refused(_open(warehouse[0], monkeypatch, MARCH))


def test_a_config_that_requires_sign_in_refuses_to_serve_without_accounts(
    warehouse: tuple[Path, pd.DataFrame],
    accounts: AccountStore,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.delenv("GOVDASH_ACCOUNTS")
    config = tmp_path / "govdash.toml"
    config.write_text("[access]\nrequire_sign_in = true\n", encoding="utf-8")
    monkeypatch.setenv("GOVDASH_CONFIG", str(config))
    assert "require_sign_in" in _refused(_open(warehouse[0], monkeypatch, MARCH))


def test_a_sign_in_is_a_server_side_session_that_a_password_change_ends(
    warehouse: tuple[Path, pd.DataFrame],
    accounts: AccountStore,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    from govdash.cli import main as govdash
    from govdash.core.sessions import SessionStore

    app = _signed_in(warehouse[0], monkeypatch, accounts, "viewer", Scope.district())
    # The browser is sent to the cookie route with a one-time ticket (a meta refresh).
    refresh = [m.value for m in app.markdown if "http-equiv" in m.value]
    assert len(refresh) == 1 and "/_govdash/session?ticket=" in refresh[0]
    assert "next=%2F%3Fperiod%3Dmonth%26start%3D2025-03-01" in refresh[0]  # the page it named
    sessions = SessionStore(tmp_path / "sessions.sqlite3")
    import sqlite3

    with sqlite3.connect(tmp_path / "sessions.sqlite3") as con:
        rows = con.execute("SELECT username, token_hash FROM sessions").fetchall()
    assert [name for name, _ in rows] == ["viewer-all"]
    assert all(len(token_hash) == 64 for _, token_hash in rows)  # only hashes are kept
    app.run()
    assert app.title[0].value == "总览", "the session survives a rerun"

    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("another long password\n"))
    assert (
        govdash(["users", "password", "viewer-all", "--password-stdin", "--db", str(warehouse[0])])
        == 0
    )
    assert sessions.end_all("viewer-all") == 0, "the command already ended every session"
    app.run()
    assert [s.value for s in app.subheader] == ["登录"], "a password change signs out at once"
    assert not app.metric


OIDC_CONFIG = """
[access]
identity_claim = "email"

[[access.oidc_rules]]
claim = "groups"
value = "govdash-admins"
role = "admin"
scope = "district"

[[access.oidc_rules]]
claim = "email"
value = "*@jia.example.gov.cn"
role = "viewer"
scope = "street:甲街道"
"""


def test_oidc_claims_map_to_a_role_and_scope(
    warehouse: tuple[Path, pd.DataFrame],
    accounts: AccountStore,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    db, frame = warehouse
    config = tmp_path / "govdash.toml"
    config.write_text(OIDC_CONFIG, encoding="utf-8")
    monkeypatch.setenv("GOVDASH_CONFIG", str(config))
    monkeypatch.setenv("GOVDASH_DB", str(db))
    app = AppTest.from_file(str(ROOT / "govdash" / "web" / "app.py"), default_timeout=90)
    app.user = {"is_logged_in": True, "email": "wang@jia.example.gov.cn", "groups": ["staff"]}
    for key, value in MARCH.items():
        app.query_params[key] = value
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    street = select(frame, *MARCH_DAYS, community=_places("street", "甲街道")["community"])
    assert _metrics(app)["工单量"] == f"{len(street):,}"
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        app.switch_page("views/data.py")
    signed = _events(tmp_path, "sign_in")
    assert signed["actor"].tolist() == ["wang@jia.example.gov.cn"]
    assert signed["method"].tolist() == ["oidc"]


def test_oidc_without_a_matching_rule_is_refused(
    warehouse: tuple[Path, pd.DataFrame],
    accounts: AccountStore,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    config = tmp_path / "govdash.toml"
    config.write_text(OIDC_CONFIG, encoding="utf-8")
    monkeypatch.setenv("GOVDASH_CONFIG", str(config))
    monkeypatch.setenv("GOVDASH_DB", str(warehouse[0]))
    app = AppTest.from_file(str(ROOT / "govdash" / "web" / "app.py"), default_timeout=90)
    app.user = {"is_logged_in": True, "email": "someone@gmail.com"}
    app.run()
    assert not app.exception
    assert any("尚未获得本看板的访问授权" in e.value for e in app.error)
    assert not app.metric and not app.multiselect
    assert _events(tmp_path, "sign_in_refused")["actor"].tolist() == ["someone@gmail.com"]


# --- loads from the data page record who loaded --------------------------------------------------


def test_an_admins_upload_and_rebuild_record_the_admin(
    accounts: AccountStore,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
) -> None:

    from tests.conftest import ticket_row, ticket_sheet, write_xlsx

    folder = tmp_path_factory.mktemp("auth-upload")
    db, _ = build_main(folder)
    upload = write_xlsx(folder / "新工单.xlsx", {"3月": ticket_sheet(ticket_row("NEW-1"))})
    app = _signed_in(db, monkeypatch, accounts, "admin", Scope.district(), params={})
    app.switch_page("views/data.py").run()
    app.get("file_uploader")[0].upload("4月工单.xlsx", upload.read_bytes()).run()
    app.button(key="load_button").click().run()
    assert not app.exception, [e.value for e in app.exception]

    def batches() -> list[tuple[str, str]]:
        con = connect_readonly(db)
        try:
            return con.execute(
                "SELECT file_name, loaded_by FROM load_batches ORDER BY batch_id"
            ).fetchall()
        finally:
            con.close()

    loaded = batches()
    assert loaded[-1] == ("4月工单.xlsx", "admin-all")
    assert all(who != "admin-all" for _, who in loaded[:-1]), "earlier batches keep their loader"
    loads = AuditLog(tmp_path / "audit.sqlite3").events(action="load")
    newest = loads.iloc[0]  # build_main's own loads, by the OS user, come before
    assert (newest["actor"], newest["target"]) == ("admin-all", "4月工单.xlsx")
    assert json.loads(newest["detail"])["published"] is True

    assert app.button(key="rebuild_button").disabled
    app.checkbox(key="rebuild_confirm").check().run()
    app.button(key="rebuild_button").click().run()
    assert not app.exception, [e.value for e in app.exception]
    rebuilt = batches()
    assert [name for name, _ in rebuilt] == [name for name, _ in loaded]
    assert {who for _, who in rebuilt} == {"admin-all"}


def test_the_admin_page_shows_the_audit_log_and_sign_out_ends_the_session(
    warehouse: tuple[Path, pd.DataFrame],
    accounts: AccountStore,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    accounts.add("viewer-x", PASSWORD, "viewer", Scope("street", "乙街道"))
    app = _signed_in(warehouse[0], monkeypatch, accounts, "admin", Scope.district())
    app.switch_page("views/admin.py").run()
    assert not app.exception, [e.value for e in app.exception]
    audit = next(d.value for d in app.dataframe if "操作人" in d.value.columns)
    assert audit["事件"].tolist() == ["sign_in", "config_changed"]  # newest first
    assert audit["操作人"].tolist()[0] == "admin-all"
    assert audit["详情"].iloc[0] == "role: admin；scope: district"
    listed = next(d.value for d in app.dataframe if "数据范围" in d.value.columns)
    assert listed[["用户名", "角色", "数据范围"]].values.tolist() == [
        ["viewer-x", "查看者", "乙街道（街道）"],
        ["admin-all", "管理员", "全区"],
    ]
    assert "password_hash" not in " ".join(listed.columns) and not any(
        "$argon2" in str(v) for v in listed.to_numpy().ravel()
    )
    loads = next(d.value for d in app.dataframe if "加载人" in d.value.columns)
    assert len(loads) == 3  # the register, tickets and survey files build_main loaded

    app.button(key="auth_sign_out").click().run()
    assert not app.exception, [e.value for e in app.exception]
    assert [s.value for s in app.subheader] == ["登录"]
    assert not app.metric and not app.dataframe
    assert _events(tmp_path, "sign_out")["actor"].tolist() == ["admin-all"]
