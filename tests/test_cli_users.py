"""`govdash users add|remove|list|password` and the actor of `govdash load` (--as / OS user)."""

from __future__ import annotations

import getpass
import io
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from govdash.cli import main as cli_main
from govdash.core.access import Scope
from govdash.core.accounts import AccountStore
from govdash.core.audit import AuditLog
from govdash.core.warehouse import connect_readonly
from tests.conftest import ticket_row, ticket_sheet, write_xlsx

PROJECT = Path(__file__).resolve().parent.parent


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("GOVDASH_DB", "GOVDASH_CONFIG", "GOVDASH_ACCOUNTS", "GOVDASH_AUDIT", "GOVDASH_HASH_KEY"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "data" / "warehouse.duckdb"


def _stdin(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))


def test_add_list_password_and_remove(
    db: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _stdin(monkeypatch, "first password\n")
    assert cli_main(["users", "add", "王芳", "--role", "viewer", "--community", "东社区", "--password-stdin", "--db", str(db)]) == 0
    _stdin(monkeypatch, "admin password\n")
    assert cli_main(["users", "add", "li.ping", "--role", "admin", "--password-stdin", "--db", str(db)]) == 0
    store = AccountStore(db.parent / "accounts.json")
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    account = store.verify("王芳", "first password")
    assert account is not None and (account.role, account.scope) == ("viewer", Scope("community", "东社区"))
    assert store.verify("li.ping", "admin password") is not None
    capsys.readouterr()

    assert cli_main(["users", "list", "--db", str(db)]) == 0
    listed = [line.split("\t")[:3] for line in capsys.readouterr().out.splitlines()]
    assert listed == [["王芳", "viewer", "community:东社区"], ["li.ping", "admin", "district"]]

    _stdin(monkeypatch, "second password\n")
    assert cli_main(["users", "password", "王芳", "--password-stdin", "--db", str(db)]) == 0
    assert store.verify("王芳", "first password") is None
    assert store.verify("王芳", "second password") is not None

    assert cli_main(["users", "remove", "王芳", "--db", str(db)]) == 0
    assert [a.username for a in store.accounts()] == ["li.ping"]
    assert cli_main(["users", "remove", "王芳", "--db", str(db)]) == 1
    assert "没有这个账号" in capsys.readouterr().err

    events = AuditLog(db.parent / "audit.sqlite3").events()
    assert events["action"].tolist()[::-1] == [
        "account_added", "account_added", "password_changed", "account_removed",
    ]
    assert set(events["actor"]) == {getpass.getuser()}
    assert json.loads(events["detail"].iloc[-1]) == {"role": "viewer", "scope": "community:东社区"}
    assert "first password" not in (db.parent / "audit.sqlite3").read_bytes().decode("latin-1")


def test_bad_additions_are_refused_with_a_reason(
    db: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _stdin(monkeypatch, "short\n")
    assert cli_main(["users", "add", "a", "--role", "viewer", "--password-stdin", "--db", str(db)]) == 1
    assert "至少 8 个字符" in capsys.readouterr().err
    _stdin(monkeypatch, "long enough\n")
    assert cli_main(["users", "add", "a", "--role", "viewer", "--password-stdin", "--db", str(db)]) == 0
    _stdin(monkeypatch, "long enough\n")
    assert cli_main(["users", "add", "a", "--role", "admin", "--password-stdin", "--db", str(db)]) == 1
    assert "账号已存在" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main(["users", "add", "b", "--role", "owner", "--db", str(db)])
    with pytest.raises(SystemExit):
        cli_main(["users", "add", "b", "--role", "viewer", "--street", "甲街道", "--community", "东社区", "--db", str(db)])
    # Typed at a prompt: the two entries must agree.
    answers = iter(["typed password", "typed passwort"])
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": next(answers))
    assert cli_main(["users", "add", "c", "--role", "viewer", "--db", str(db)]) == 1
    assert "不一致" in capsys.readouterr().err
    assert [a.username for a in AccountStore(db.parent / "accounts.json").accounts()] == ["a"]


def test_the_installed_command_reads_the_password_from_stdin(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVDASH_")}
    db = tmp_path / "warehouse.duckdb"
    result = subprocess.run(
        [sys.executable, "-m", "govdash", "users", "add", "张三", "--role", "evaluator",
         "--street", "甲街道", "--password-stdin", "--db", str(db)],
        input="from stdin 123\n", cwd=PROJECT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    account = AccountStore(tmp_path / "accounts.json").verify("张三", "from stdin 123")
    assert account is not None and account.scope == Scope("street", "甲街道")


def _loaded_by(db: Path) -> list[tuple[str, str | None]]:
    con = connect_readonly(db)
    try:
        return con.execute("SELECT file_name, loaded_by FROM load_batches ORDER BY batch_id").fetchall()
    finally:
        con.close()


def test_load_records_its_actor_in_the_warehouse_and_the_audit_log(db: Path, tmp_path: Path) -> None:
    first = write_xlsx(tmp_path / "in" / "工单1.xlsx", {"3月": ticket_sheet(ticket_row("GD1"))})
    second = write_xlsx(tmp_path / "in" / "工单2.xlsx", {"3月": ticket_sheet(ticket_row("GD2"))})
    broken = tmp_path / "in" / "坏文件.xlsx"
    broken.write_bytes(b"not a workbook")
    assert cli_main(["load", str(first), "--db", str(db), "--as", "李四"]) == 0
    assert cli_main(["load", str(second), "--db", str(db)]) == 0
    assert cli_main(["load", str(broken), "--db", str(db), "--as", "李四"]) == 1
    assert _loaded_by(db) == [("工单1.xlsx", "李四"), ("工单2.xlsx", getpass.getuser())]
    loads = AuditLog(db.parent / "audit.sqlite3").events(action="load").iloc[::-1]
    assert loads[["actor", "target", "method"]].values.tolist() == [
        ["李四", "工单1.xlsx", "loader"],
        [getpass.getuser(), "工单2.xlsx", "loader"],
        ["李四", "坏文件.xlsx", "loader"],
    ]
    details = [json.loads(d) for d in loads["detail"]]
    assert [(d["published"], d["batch_id"], d["rows_loaded"]) for d in details] == [
        (True, 1, 1), (True, 2, 1), (False, None, 0),
    ]
    assert details[2]["error"]


def test_rebuild_keeps_accounts_and_records_its_actor(db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = write_xlsx(tmp_path / "in" / "工单.xlsx", {"3月": ticket_sheet(ticket_row("GD1"))})
    assert cli_main(["load", str(source), "--db", str(db), "--as", "王五"]) == 0
    _stdin(monkeypatch, "long enough\n")
    assert cli_main(["users", "add", "a", "--role", "viewer", "--password-stdin", "--db", str(db)]) == 0
    before = (db.parent / "accounts.json").read_bytes()
    assert cli_main(["rebuild", "--db", str(db), "--as", "赵六"]) == 0
    assert (db.parent / "accounts.json").read_bytes() == before
    assert _loaded_by(db) == [("工单.xlsx", "赵六")]


def test_rank_and_report_record_who_exported(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.analytics.test_report import UNITS, build_evaluation_warehouse

    warehouse = build_evaluation_warehouse(tmp_path / "evaluation")
    assert cli_main(["rank", "--year", "2025", "--db", str(warehouse)]) == 0
    out = tmp_path / "报告.xlsx"
    assert cli_main(["report", "--year", "2025", "--out", str(out), "--db", str(warehouse)]) == 0
    capsys.readouterr()
    exports = AuditLog(warehouse.parent / "audit.sqlite3").events(action="export").iloc[::-1]
    assert exports[["actor", "method", "target"]].values.tolist() == [
        [getpass.getuser(), "cli", "stdout"],
        [getpass.getuser(), "cli", str(out.resolve())],
    ]
    details = [json.loads(d) for d in exports["detail"]]
    assert [(d["name"], d["format"], d["rows"]) for d in details] == [
        ("evaluation_ranking_2025_compound", "csv", len(UNITS)),
        ("evaluation_report_2025_compound", "xlsx", len(UNITS)),
    ]
    assert details[1]["bytes"] == out.stat().st_size
