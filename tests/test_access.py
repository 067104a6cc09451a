"""Roles, scopes, claim rules (govdash.core.access), local accounts (govdash.core.accounts) and the audit
log (govdash.core.audit): real files under tmp_path, values checked against what the test wrote."""

from __future__ import annotations

import json
import sqlite3
import stat
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from govdash.core.access import (
    ADMIN,
    EVALUATION,
    TICKET_ROWS,
    VIEW,
    AccessError,
    Principal,
    Scope,
    can,
    claim_rules,
    principal_from_claims,
    single_user,
)
from govdash.core.accounts import AccountError, AccountStore
from govdash.core.audit import AuditLog, SignInLimit, record_config_in_force
from govdash.core.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parent.parent

# --- roles and scopes --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        ("viewer", {VIEW}),
        ("evaluator", {VIEW, EVALUATION}),
        ("admin", {VIEW, EVALUATION, TICKET_ROWS, ADMIN}),
    ],
)
def test_each_role_has_exactly_its_permissions(role: str, allowed: set[str]) -> None:
    principal = Principal("someone", role)
    for permission in (VIEW, EVALUATION, TICKET_ROWS, ADMIN):
        assert can(principal, permission) is (permission in allowed), (role, permission)
    assert not can(None, VIEW)


def test_single_user_mode_may_do_everything_in_the_whole_district() -> None:
    principal = single_user()
    assert principal.method == "single_user"
    assert not principal.scope.is_restricted
    assert all(can(principal, p) for p in (VIEW, EVALUATION, TICKET_ROWS, ADMIN))


def test_scopes_parse_and_refuse_nonsense() -> None:
    assert Scope.parse("community:东社区") == Scope("community", "东社区")
    assert Scope.parse(" street : 甲街道 ") == Scope("street", "甲街道")
    assert Scope.parse("district") == Scope.district()
    assert Scope("community", "东社区").to_text() == "community:东社区"
    for bad in ("community", "street:", "compound:东一小区", "district:全区"):
        with pytest.raises(AccessError):
            Scope.parse(bad)
    with pytest.raises(AccessError):
        Principal("x", "superuser")


# --- OIDC claim rules ----------------------------------------------------------------------------

RULES = [
    {"claim": "groups", "value": "govdash-admins", "role": "admin", "scope": "district"},
    {"claim": "email", "value": "*@jia.example.gov.cn", "role": "viewer", "scope": "street:甲街道"},
    {"claim": "email", "value": "*@example.gov.cn", "role": "evaluator", "scope": "community:南社区"},
]


def test_claims_map_to_the_first_matching_rule() -> None:
    rules = claim_rules(RULES)
    admin = principal_from_claims(
        {"email": "a@jia.example.gov.cn", "groups": ["staff", "govdash-admins"]}, rules
    )
    assert admin == Principal("a@jia.example.gov.cn", "admin", Scope.district(), method="oidc")
    street = principal_from_claims({"email": "B@Jia.Example.gov.cn", "groups": ["staff"]}, rules)
    assert street is not None and (street.role, street.scope) == ("viewer", Scope("street", "甲街道"))
    other = principal_from_claims({"email": "c@example.gov.cn"}, rules)
    assert other is not None and other.scope == Scope("community", "南社区")
    # No rule: no access. A group name is matched whole, not as a glob or substring.
    assert principal_from_claims({"email": "d@gmail.com"}, rules) is None
    assert principal_from_claims({"email": "d@gmail.com", "groups": ["govdash-admins-x"]}, rules) is None
    assert principal_from_claims({"groups": ["govdash-admins"]}, rules) is None  # no identity


def test_bad_rules_in_a_config_file_name_the_rule(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '[[access.oidc_rules]]\nclaim = "email"\nvalue = "*@x.cn"\nrole = "boss"\nscope = "district"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"access.oidc_rules\[1\]"):
        load_config(path)
    path.write_text(
        '[[access.oidc_rules]]\nclaim = "email"\nvalue = "*@x.cn"\nrole = "viewer"\nscope = "street:甲街道"\n',
        encoding="utf-8",
    )
    config = load_config(path)
    assert [(r.claim, r.role, r.scope.name) for r in config.oidc_rules] == [("email", "viewer", "甲街道")]
    # Who may sign in changes no number: the fingerprint stays that of the defaults.
    assert config.fingerprint == load_config().fingerprint


# --- local accounts ------------------------------------------------------------------------------


def test_password_hash_round_trip_and_wrong_password(tmp_path: Path) -> None:
    store = AccountStore(tmp_path / "accounts.json")
    store.add("王芳", "correct horse", "viewer", Scope("community", "东社区"))
    store.add("li.ping", "correct horse", "admin", Scope.district())
    account = store.verify("王芳", "correct horse")
    assert account is not None
    assert (account.username, account.role, account.scope) == ("王芳", "viewer", Scope("community", "东社区"))
    assert store.verify("王芳", "correct horsE") is None
    assert store.verify("王芳", "") is None
    assert store.verify("nobody", "correct horse") is None
    document = json.loads((tmp_path / "accounts.json").read_text(encoding="utf-8"))
    hashes = [entry["password_hash"] for entry in document["accounts"]]
    assert all(h.startswith("$argon2id$") for h in hashes)
    assert hashes[0] != hashes[1], "the same password must hash differently (salt)"
    assert "correct horse" not in (tmp_path / "accounts.json").read_text(encoding="utf-8")
    assert "password_hash" not in repr(account) and hashes[0] not in repr(account)


def test_the_accounts_file_is_private_and_changes_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "accounts.json"
    store = AccountStore(path)
    assert store.accounts() == [] and not store.has_accounts()
    store.add("admin1", "long enough", "admin", Scope.district())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(AccountError, match="已存在"):
        store.add("admin1", "another one", "viewer", Scope.district())
    with pytest.raises(AccountError, match="至少"):
        store.add("short", "1234567", "viewer", Scope.district())
    with pytest.raises(AccountError, match="用户名"):
        store.add("has space", "long enough", "viewer", Scope.district())
    with pytest.raises(AccessError):
        store.add("someone", "long enough", "owner", Scope.district())
    store.set_password("admin1", "a new password")
    assert store.verify("admin1", "long enough") is None
    assert store.verify("admin1", "a new password") is not None
    store.remove("admin1")
    assert not store.has_accounts()
    with pytest.raises(AccountError, match="没有这个账号"):
        store.remove("admin1")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_hash_with_old_parameters_is_upgraded_at_sign_in(tmp_path: Path) -> None:
    path = tmp_path / "accounts.json"
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash("old password")
    path.write_text(
        json.dumps(
            {"version": 1, "accounts": [{"username": "old", "role": "viewer", "scope": "district", "password_hash": weak}]}
        ),
        encoding="utf-8",
    )
    store = AccountStore(path)
    assert store.verify("old", "old password") is not None
    upgraded = store.accounts()[0].password_hash
    assert upgraded != weak and "m=65536" in upgraded
    assert store.verify("old", "old password") is not None


def test_a_corrupt_accounts_file_refuses_rather_than_opening_up(tmp_path: Path) -> None:
    path = tmp_path / "accounts.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(AccountError):
        AccountStore(path).has_accounts()


# --- the audit log -------------------------------------------------------------------------------


def test_events_are_appended_read_back_and_never_changed(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.sqlite3")
    log.record("王芳", "sign_in", detail={"role": "viewer"}, method="local")
    log.record("王芳", "export", target="monthly_volume.csv", detail={"rows": 3}, method="local")
    events = log.events()
    assert events["action"].tolist() == ["export", "sign_in"]  # newest first
    assert json.loads(events["detail"].iloc[0]) == {"rows": 3}
    assert log.events(action="sign_in")["actor"].tolist() == ["王芳"]
    assert stat.S_IMODE((tmp_path / "audit.sqlite3").stat().st_mode) == 0o600
    with sqlite3.connect(tmp_path / "audit.sqlite3") as con:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            con.execute("UPDATE audit_events SET actor = 'x'")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            con.execute("DELETE FROM audit_events")
    with pytest.raises(ValueError):
        log.record("x", "made_up_action")


_WRITER = """
import sys
from pathlib import Path
from govdash.core.audit import AuditLog
log = AuditLog(Path(sys.argv[1]))
for index in range(int(sys.argv[3])):
    log.record(f"writer-{sys.argv[2]}", "export", target=str(index))
"""


def test_several_processes_append_at_once_without_losing_events(tmp_path: Path) -> None:
    # Plain interpreters, not multiprocessing: a spawned child re-runs the parent's __main__,
    # which AppTest tests earlier in the session may have left pointing at a generated script.
    path = str(tmp_path / "audit.sqlite3")
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, path, str(n), "40"],
            cwd=ROOT,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    for worker in workers:
        _, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
    events = AuditLog(Path(path)).events()
    assert len(events) == 160
    assert events["event_id"].is_unique
    assert events.groupby("actor").size().to_dict() == {f"writer-{n}": 40 for n in range(4)}


def test_processes_opening_a_new_state_file_at_once_all_get_it(tmp_path: Path) -> None:
    """Several openers of a new state file each switch it to WAL, and SQLite answers one of two
    such switches "database is locked" at once, without waiting (seen in CI: a worker of the
    test above failed). Eight threads open each of 200 new files at the same moment (without
    the retry about 5 of 100 rounds fail): every one opens and writes its row."""
    import threading

    from govdash.core.files import state_database

    schema = "CREATE TABLE IF NOT EXISTS events (opener INTEGER);"
    failures: list[str] = []
    for round_number in range(200):
        path = tmp_path / f"state-{round_number}.sqlite3"
        barrier = threading.Barrier(8)

        def open_and_write(
            opener: int, path: Path = path, barrier: threading.Barrier = barrier
        ) -> None:
            barrier.wait()
            try:
                with state_database(path, schema) as con:
                    con.execute("INSERT INTO events VALUES (?)", (opener,))
            except sqlite3.OperationalError as error:
                failures.append(str(error))

        threads = [threading.Thread(target=open_and_write, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with sqlite3.connect(path) as con:
            assert con.execute("SELECT count(*) FROM events").fetchone() == (8 - len(failures),)
            assert con.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert failures == [], failures


def test_failed_sign_ins_lock_a_name_for_the_window(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.sqlite3")
    limit = SignInLimit(attempts=3, window=timedelta(minutes=10))
    start = datetime(2026, 1, 5, 9, 0, 0)
    for minute in (0, 1, 2):
        log.record("王芳", "sign_in_failed", at=start + timedelta(minutes=minute))
    log.record("别人", "sign_in_failed", at=start)
    assert log.locked_until("王芳", limit, now=start + timedelta(minutes=3)) == start + timedelta(minutes=10)
    assert log.locked_until("别人", limit, now=start + timedelta(minutes=3)) is None
    # Once the window has passed the oldest failures no longer count.
    assert log.locked_until("王芳", limit, now=start + timedelta(minutes=11)) is None
    # A success clears the count.
    log.record("王芳", "sign_in", at=start + timedelta(minutes=4))
    assert log.locked_until("王芳", limit, now=start + timedelta(minutes=5)) is None


def test_a_config_change_is_recorded_once_with_the_keys_that_moved(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.sqlite3")
    config_path = tmp_path / "my.toml"
    config_path.write_text("[privacy]\nmin_group_size = 7\n", encoding="utf-8")
    defaults, mine = load_config(), load_config(config_path)
    assert record_config_in_force(log, defaults.source_path, defaults.fingerprint, defaults.settings())
    assert not record_config_in_force(log, defaults.source_path, defaults.fingerprint, defaults.settings())
    assert record_config_in_force(log, mine.source_path, mine.fingerprint, mine.settings())
    events = log.events(action="config_changed")
    assert len(events) == 2
    detail = json.loads(events["detail"].iloc[0])
    assert detail["changed"] == ["privacy.min_group_size"]
    assert (detail["previous"], detail["fingerprint"]) == (defaults.fingerprint, mine.fingerprint)
    assert events["target"].iloc[0] == str(config_path)
