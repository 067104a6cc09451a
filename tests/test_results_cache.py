"""The pages' results kept on this machine's disk (govdash/web/cache.py) and computed ahead
after a load (`govdash warm`, govdash/web/warm.py).

`govdash warm` runs in a process of its own, as `govdash load` starts it; the visits are new
sessions of this process with its memory caches empty, so a result they do not compute came
from the disk. What they show is checked against counts made here with pandas from the
generated rows (tests/analytics/warehouse_data.py), not with the product's SQL.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import diskcache
import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from govdash.analytics.queries.evaluation import evaluation_result
from govdash.core.access import Scope
from govdash.core.accounts import AccountStore, accounts_path
from govdash.core.config import load_config
from govdash.core.sessions import SessionStore, sessions_path
from govdash.core.warehouse import lake_of
from govdash.etl.load import load_paths
from govdash.web import cache
from govdash.web.warm import PAGES, visitors, warmed_marker, worth_warming
from tests.analytics.test_report import UNITS, build_evaluation_warehouse
from tests.analytics.warehouse_data import (
    REGISTER,
    REGISTER_HEADER,
    SURVEY_HEADER,
    TICKET_HEADER,
    build_main,
    clean_environment,
    expected_tickets,
    generate_tickets,
    open_db,
    shipped_config,
    survey_rows,
)
from tests.browser.conftest import running_server
from tests.conftest import write_csv, write_xlsx

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "govdash" / "web" / "app.py"
PASSWORD = "correct horse battery"

pytestmark = pytest.mark.usefixtures("fresh_streamlit_caches")


def _warm(db: Path, config: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`govdash warm` in a child process, as `govdash load` runs it. The child keeps every
    result however quick (the shipped threshold leaves out a small warehouse's queries)."""
    script = (
        "from govdash.web import cache; cache._STORE_SECONDS = 0.0\n"
        "from govdash.cli import main\n"
        f"raise SystemExit(main(['warm', '--db', {str(db)!r}]))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVDASH_")}
    if config is not None:
        env["GOVDASH_CONFIG"] = str(config)
    return subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )


@pytest.fixture
def computed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The query functions run on the warehouse (not read from memory or disk)."""
    names: list[str] = []
    original: Callable[..., Any] = cache._run

    def counting(version: Any, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        names.append(function.__qualname__)
        return original(version, function, *args, **kwargs)

    monkeypatch.setattr(cache, "_run", counting)
    monkeypatch.setattr(cache, "RESULTS_ON_DISK", True)
    return names


def _visit(
    db: Path, monkeypatch: pytest.MonkeyPatch, page: str, token: str | None = None
) -> AppTest:
    """A new visitor's first view of `page` (no filters in the address), with this process's
    memory of results and built figures empty."""
    cache.forget_results()
    monkeypatch.setenv("GOVDASH_DB", str(db))
    app = AppTest.from_file(str(APP), default_timeout=120)
    if token is not None:
        app.session_state["auth_session_token"] = token
    app.switch_page(page).run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def _monthly_volume(app: AppTest, tickets: pd.DataFrame) -> tuple[list[int], list[int]]:
    """The monthly volume 总览 draws, and the tickets accepted in each of its months."""
    chart = next(c for c in app.get("plotly_chart") if c.proto.id.endswith("-chart_monthly_volume"))
    trace = json.loads(chart.proto.spec)["data"][0]
    months = [str(x)[:7] for x in trace["x"]]
    per_month = tickets.groupby(tickets.accepted_at.dt.strftime("%Y-%m")).size()
    return list(trace["y"]), [int(per_month.get(month, 0)) for month in months]


def _results(db: Path) -> Path:
    local = lake_of(db).local
    assert local is not None
    return local / cache.RESULTS_FOLDER


def test_after_govdash_warm_a_first_visitor_computes_nothing_and_sees_the_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, computed: list[str]
) -> None:
    db, tickets = build_main(tmp_path)
    warmed = _warm(db)
    assert warmed.returncode == 0, warmed.stderr
    assert f"已预热 1 个数据范围的 {len(PAGES)} 个页面首屏（全区）" in warmed.stdout
    folder = _results(db)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700  # every scope's results: the service's

    for page, _ in PAGES:
        computed.clear()
        app = _visit(db, monkeypatch, page)
        assert computed == [], f"{page} computed {computed} after the warm-up"
        if page == "views/overview.py":
            drawn, counted = _monthly_volume(app, expected_tickets(tickets))
            assert drawn == counted and sum(counted) > 0

    # The same visit with nothing stored computes: what the warm-up saved.
    monkeypatch.setattr(cache, "RESULTS_ON_DISK", False)
    _visit(db, monkeypatch, "views/overview.py")
    assert "ticket_kpis" in computed and "monthly_trend" in computed


def test_a_load_after_the_warm_up_is_shown_with_its_own_figures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, computed: list[str]
) -> None:
    db, tickets = build_main(tmp_path)
    assert _warm(db).returncode == 0
    before, _ = _monthly_volume(
        _visit(db, monkeypatch, "views/overview.py"), expected_tickets(tickets)
    )
    assert computed == []

    more = [
        dataclasses.replace(t, ticket_id=f"N{t.ticket_id}") for t in generate_tickets(60, seed=7)
    ]
    csv = write_csv(tmp_path / "more.csv", [TICKET_HEADER, *[t.row() for t in more]], "utf-8")
    with clean_environment():
        report = load_paths([csv], db, load_config())
    assert report.ok and report.snapshot is not None

    app = _visit(db, monkeypatch, "views/overview.py")
    drawn, counted = _monthly_volume(app, expected_tickets([*tickets, *more]))
    assert drawn == counted
    assert sum(drawn) == sum(before) + len(more), "the visit was shown the earlier load's figures"
    assert "ticket_kpis" in computed  # a new snapshot's keys: nothing stored for it yet


def test_each_account_scope_is_warmed_signed_in_as_that_scopes_account(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, computed: list[str]
) -> None:
    db, tickets = build_main(tmp_path)
    accounts = AccountStore(accounts_path(db))
    accounts.add("jia_viewer", PASSWORD, "viewer", Scope.parse("street:甲街道"))
    accounts.add("district_admin", PASSWORD, "admin", Scope.district())
    accounts.add("jia_evaluator", PASSWORD, "evaluator", Scope.parse("street:甲街道"))
    accounts.add("yi_viewer", PASSWORD, "viewer", Scope.parse("street:乙街道"))
    config = tmp_path / "govdash.toml"
    config.write_text("[server]\nwarm_scopes = 2\n", encoding="utf-8")

    # The widest scope first, then the scope most accounts share; its most permitted account.
    chosen = visitors(db, load_config(config))
    assert [(v.username, v.principal.scope.to_text()) for v in chosen] == [
        ("district_admin", "district"),
        ("jia_evaluator", "street:甲街道"),
    ]

    warmed = _warm(db, config)
    assert warmed.returncode == 0, warmed.stderr
    assert (
        f"已预热 2 个数据范围的 {2 * len(PAGES)} 个页面首屏（全区、甲街道（街道））"
        in warmed.stdout
    )
    with sqlite3.connect(sessions_path(db)) as con:  # the warm-up's sign-ins are ended
        assert con.execute("SELECT count(*) FROM sessions").fetchone() == (0,)

    sessions = SessionStore(sessions_path(db))
    token, _ = sessions.start("jia_viewer")  # another account of a warmed scope
    app = _visit(db, monkeypatch, "views/overview.py", token)
    assert computed == []
    frame = expected_tickets(tickets)
    drawn, counted = _monthly_volume(app, frame[frame.street == "甲街道"])
    assert drawn == counted and 0 < sum(drawn) < len(frame)

    token, _ = sessions.start("yi_viewer")  # a scope left out of the warm-up computes its own
    app = _visit(db, monkeypatch, "views/overview.py", token)
    assert "ticket_kpis" in computed
    drawn, counted = _monthly_volume(app, frame[frame.street == "乙街道"])
    assert drawn == counted and sum(drawn) > 0


def test_a_store_that_cannot_be_used_only_costs_the_computing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, computed: list[str]
) -> None:
    db, tickets = build_main(tmp_path)
    frame = expected_tickets(tickets)
    assert _warm(db).returncode == 0
    with diskcache.Cache(str(_results(db))) as store:  # every stored result damaged
        keys = list(store)
        assert keys
        for key in keys:
            store.set(key, b"\x80\x05 not a pickle")
    monkeypatch.setattr(cache, "_STORE_SECONDS", 0.0)  # keep what is computed again, however quick
    app = _visit(db, monkeypatch, "views/overview.py")
    assert "ticket_kpis" in computed
    drawn, counted = _monthly_volume(app, frame)
    assert drawn == counted
    computed.clear()  # the damaged results were replaced by the ones computed: read from disk
    app = _visit(db, monkeypatch, "views/overview.py")
    assert computed == []
    assert _monthly_volume(app, frame)[0] == counted

    folder = _results(db)  # a file where the store's folder should be: nothing can be kept
    for path in sorted(folder.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    folder.rmdir()
    folder.write_text("not a folder", encoding="utf-8")
    st.cache_resource.clear()
    computed.clear()
    app = _visit(db, monkeypatch, "views/overview.py")
    assert "ticket_kpis" in computed
    assert _monthly_volume(app, frame)[0] == counted


def test_a_visitor_does_not_wait_for_the_result_to_be_written_to_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, computed: list[str]
) -> None:
    """What a visitor computes is shown while it is still being written to this machine's
    disk (the writes are held here until the page is drawn); once written, the next visitor
    reads it from there."""
    db, tickets = build_main(tmp_path)
    monkeypatch.setattr(cache, "_STORE_SECONDS", 0.0)
    release, written = threading.Event(), []
    write = cache._store_result

    def held(*args: Any) -> None:
        assert release.wait(20), "the page waited for its results to be written"
        write(*args)
        written.append(args[1])

    monkeypatch.setattr(cache, "_store_result", held)
    app = _visit(db, monkeypatch, "views/overview.py")
    assert "ticket_kpis" in computed and written == []
    drawn, counted = _monthly_volume(app, expected_tickets(tickets))
    assert drawn == counted and sum(counted) > 0
    release.set()
    cache.settle_stores()
    assert len(written) >= 2
    computed.clear()
    app = _visit(db, monkeypatch, "views/overview.py")
    assert computed == []
    assert _monthly_volume(app, expected_tickets(tickets))[0] == counted


def test_govdash_load_warms_only_a_warehouse_big_enough_to_need_it(tmp_path: Path) -> None:
    tickets = generate_tickets()
    csv = write_csv(tmp_path / "工单.csv", [TICKET_HEADER, *[t.row() for t in tickets]], "utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVDASH_")}
    for threshold, warmed in ((len(tickets) + 1, False), (len(tickets), True)):
        config = tmp_path / f"at-{threshold}.toml"
        config.write_text(f"[server]\nwarm_min_tickets = {threshold}\n", encoding="utf-8")
        db = tmp_path / f"at-{threshold}" / "warehouse.duckdb"
        assert worth_warming(db, load_config(config)) is False  # no warehouse yet
        command = [sys.executable, "-m", "govdash", "load", str(csv), "--db", str(db),
                   "--config", str(config)]  # fmt: skip
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert worth_warming(db, load_config(config)) is warmed
        assert ("已预热 1 个数据范围" in done.stdout) is warmed, done.stdout
        assert _results(db).is_dir() is warmed


def _warmed(db: Path, config: Path) -> int | None:
    """The current snapshot when this machine's store says it was warmed, else None."""
    lake = lake_of(db)
    snapshot = lake.current_snapshot()
    folder = _results(db)
    if snapshot is None or not folder.is_dir():
        return None
    marker = warmed_marker(f"{lake.identity}#{snapshot}", load_config(config).fingerprint)
    with diskcache.Cache(str(folder)) as store:  # stored with the snapshot's commit time after
        return snapshot if any(str(key).startswith(f"{marker} ") for key in store) else None


def _wait_until_warmed(db: Path, config: Path, timeout_s: float = 180.0) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        snapshot = _warmed(db, config)
        if snapshot is not None:
            return snapshot
        time.sleep(1.0)
    raise AssertionError(f"snapshot #{lake_of(db).current_snapshot()} not warmed in {timeout_s} s")


def test_govdash_serve_warms_every_new_snapshot_on_its_own_machine(tmp_path: Path) -> None:
    """A replica serves loads made elsewhere: the server itself warms each new snapshot (the
    loader's own warm-up covers only the loader's machine)."""
    db, _ = build_main(tmp_path)
    config = tmp_path / "govdash.toml"
    config.write_text("[server]\nwarm_min_tickets = 0\n", encoding="utf-8")
    with running_server(db, tmp_path, GOVDASH_CONFIG=str(config)):
        first = _wait_until_warmed(db, config)
        more = [
            dataclasses.replace(t, ticket_id=f"N{t.ticket_id}")
            for t in generate_tickets(30, seed=5)
        ]
        csv = write_csv(tmp_path / "more.csv", [TICKET_HEADER, *[t.row() for t in more]], "utf-8")
        with clean_environment():
            assert load_paths([csv], db, load_config()).snapshot is not None  # no warm-up here
        assert _warmed(db, config) is None
        assert _wait_until_warmed(db, config) > first


def test_a_warehouse_made_anew_at_the_same_path_is_not_shown_the_old_ones_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, computed: list[str]
) -> None:
    """`govdash rebuild`, a restore or a new demo numbers snapshots again from where it starts:
    the new snapshot #n is another warehouse than the #n whose results the disk holds."""
    db, _ = build_main(tmp_path / "first")
    assert _warm(db).returncode == 0
    lake = lake_of(db)
    numbers = [s.snapshot_id for s in lake.snapshots()]
    lake_files = [p for p in db.parent.iterdir() if p.name.startswith(db.stem + ".")]
    for path in lake_files:  # the lake gone; this machine's folder (and its results) kept
        if path != lake.local:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    other = [
        dataclasses.replace(t, ticket_id=f"R{t.ticket_id}") for t in generate_tickets(200, seed=3)
    ]
    files = [
        write_xlsx(
            tmp_path / "台账.xlsx", {"台账": [REGISTER_HEADER, *[list(r) for r in REGISTER]]}
        ),
        write_csv(tmp_path / "工单.csv", [TICKET_HEADER, *[t.row() for t in other]], "utf-8-sig"),
        write_xlsx(tmp_path / "问卷.xlsx", {"问卷": [SURVEY_HEADER, *survey_rows()]}),
    ]
    with clean_environment():  # one load, as the first warehouse was made
        assert load_paths(files, db, load_config()).ok
    assert [s.snapshot_id for s in lake.snapshots()] == numbers  # the same numbers again

    app = _visit(db, monkeypatch, "views/overview.py")
    assert "ticket_kpis" in computed
    drawn, counted = _monthly_volume(app, expected_tickets(other))
    assert drawn == counted and sum(drawn) == len(other)


def test_an_upload_on_the_data_page_warms_the_new_snapshot_in_the_background(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, _ = build_main(tmp_path)
    config = tmp_path / "govdash.toml"
    config.write_text("[server]\nwarm_min_tickets = 0\n", encoding="utf-8")
    monkeypatch.setenv("GOVDASH_CONFIG", str(config))
    monkeypatch.setenv("GOVDASH_DB", str(db))
    more = [
        dataclasses.replace(t, ticket_id=f"U{t.ticket_id}") for t in generate_tickets(20, seed=9)
    ]
    csv = write_csv(tmp_path / "4月工单.csv", [TICKET_HEADER, *[t.row() for t in more]], "utf-8")
    before = lake_of(db).current_snapshot()
    app = AppTest.from_file(str(APP), default_timeout=120)
    app.switch_page("views/data.py").run()
    app.get("file_uploader")[0].upload("4月工单.csv", csv.read_bytes()).run()
    app.button(key="load_button").click().run()
    assert not app.exception, [e.value for e in app.exception]
    assert "已在后台预先计算各页面首屏" in app.code[0].value
    assert _wait_until_warmed(db, config) > (before or 0)  # the clerk's page did not wait for it


def test_another_release_of_the_program_computes_its_own_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, computed: list[str]
) -> None:
    """The disk outlives an upgrade: the new code must not be shown what the old code stored
    for the same snapshot (its columns or definitions may have changed)."""
    db, tickets = build_main(tmp_path)
    assert _warm(db).returncode == 0
    _visit(db, monkeypatch, "views/overview.py")
    assert computed == []  # this release: the stored results
    monkeypatch.setattr(cache, "code_fingerprint", lambda: "another release")
    app = _visit(db, monkeypatch, "views/overview.py")
    assert "ticket_kpis" in computed
    drawn, counted = _monthly_volume(app, expected_tickets(tickets))
    assert drawn == counted


def test_the_evaluation_pages_other_levels_and_last_year_are_warmed_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, computed: list[str]
) -> None:
    """An evaluation meeting sets this year's ranking beside last year's and looks at each
    level: after the warm-up, choosing 2024 or another level computes nothing, and 2024's
    ranking is the one the engine gives for that year."""
    db = build_evaluation_warehouse(tmp_path)  # compound scores of 2024 and 2025
    warmed = _warm(db)
    assert warmed.returncode == 0, warmed.stderr
    # compound: 2025 is the first view, 2024 one more; 社区 and 物业企业 have no scores.
    assert "及年度考评的 1 个其他视图" in warmed.stdout, warmed.stdout

    app = _visit(db, monkeypatch, "views/evaluation.py")
    assert app.selectbox(key="evaluation_year").value == 2025 and computed == []
    app.selectbox(key="evaluation_year").set_value(2024).run()
    assert not app.exception and computed == [], computed
    ranking = next(f.value for f in app.dataframe if "不可参评原因" in f.value.columns)
    assert sorted(ranking["单位"]) == sorted(UNITS)  # 西一小区 unscored in 2024, still listed
    con = open_db(db)
    try:
        engine = evaluation_result(con, shipped_config(), 2024, "compound").table
    finally:
        con.close()
    assert ranking["单位"].tolist() == engine["unit"].tolist()
    assert ranking["总分"].tolist() == engine["total"].tolist()
    for level in ("community", "property_company"):
        app.radio(key="evaluation_level").set_value(level).run()
        assert not app.exception and computed == [], (level, computed)

    # Without what the warm-up stored, the same choice computes the year.
    monkeypatch.setattr(cache, "RESULTS_ON_DISK", False)
    app = _visit(db, monkeypatch, "views/evaluation.py")
    computed.clear()
    app.selectbox(key="evaluation_year").set_value(2024).run()
    assert "evaluation_page" in computed
