"""`govdash status [--check] [--format json]`: the installation's facts, and a non-zero exit
naming what is wrong when something the app needs is missing or unreadable (issue 18, item 5).

Each installation is made by the real loader and the real `govdash users add`, then broken the
way a server gets broken: a file lost in a restore, a file overwritten, a key deleted, a disk
that is (by the configured threshold) nearly full.
"""

from __future__ import annotations

import io
import json
import shutil
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from govdash.cli import main
from govdash.core.config import Config
from govdash.etl.load import LoadReport
from tests.conftest import TICKET_HEADER, ticket_row, write_xlsx

PHONES = ["13800138000", "13900139000", None, "13700137000"]
ADMIN = "街道管理员"
PASSWORD = "Jie-dao 2025 admin"


def _status(db_path: Path, *extra: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, Any]:
    capsys.readouterr()
    code = main(["status", "--check", "--format", "json", "--db", str(db_path), *extra])
    return code, json.loads(capsys.readouterr().out)


def _checks(document: dict[str, Any]) -> list[str]:
    return [finding["check"] for finding in document["problems"]]


def _tickets(folder: Path, phones: list[str | None]) -> Path:
    rows = [
        [*ticket_row(f"GD-{index}", accepted=f"2024-03-0{index + 1} 09:00"), phone]
        for index, phone in enumerate(phones)
    ]
    return write_xlsx(folder / "工单.xlsx", {"工单": [[*TICKET_HEADER, "联系电话"], *rows]})


def _add_admin(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(PASSWORD + "\n"))
    assert main(["users", "add", ADMIN, "--role", "admin", "--password-stdin",
                 "--db", str(db_path)]) == 0  # fmt: skip


@pytest.fixture
def installation(
    load: Callable[..., tuple[LoadReport, Path]],
    db_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    """A working installation: tickets with callers' phones, one admin, a private folder."""
    report, _ = load(_tickets(tmp_path / "in", PHONES))
    assert report.ok
    _add_admin(db_path, monkeypatch)
    db_path.parent.chmod(0o700)
    return db_path


def test_a_working_installation_passes_and_reports_its_facts(
    installation: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, document = _status(installation, capsys=capsys)
    assert code == 0 and document["ok"] is True
    assert document["problems"] == [] and document["warnings"] == []
    assert document["versions"]["govdash"] == metadata.version("govdash")
    assert document["versions"]["duckdb"] == metadata.version("duckdb")
    assert document["versions"]["python"] == ".".join(map(str, sys.version_info[:3]))
    warehouse = document["warehouse"]
    assert warehouse["path"] == str(installation)
    catalog = installation.parent / "warehouse.sqlite"
    assert warehouse["catalog"] == f"sqlite:{catalog}"
    assert warehouse["snapshot"] == 1  # the one load
    assert warehouse["snapshot_message"] == "load"
    assert warehouse["schema_version"] == "1"
    assert warehouse["tables"]["tickets"] == len(PHONES)
    assert warehouse["tables"]["load_batches"] == 1
    stored = [catalog, *(installation.parent / "warehouse.files").rglob("*")]
    assert warehouse["size_bytes"] == sum(p.stat().st_size for p in stored if p.is_file())
    assert document["last_load"]["file_name"] == "工单.xlsx"
    assert document["last_load"]["rows_loaded"] == len(PHONES)
    assert document["accounts"] == {
        "mode": "local",
        "count": 1,
        "oidc": False,
        "path": str(installation.parent / "accounts.json"),
    }
    assert document["hash_key"] == {
        "source": "file",
        "path": str(installation.parent / "hash.key"),
        "exists": True,
    }
    disk = document["disk"]
    assert disk["total_bytes"] == shutil.disk_usage(tmp_path).total
    assert 0 < disk["free_bytes"] <= disk["total_bytes"]
    assert disk["threshold_bytes"] == 2048 * 1024 * 1024  # the shipped server.min_free_disk_mb


def test_the_text_form_says_what_it_found(
    installation: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "--check", "--db", str(installation)]) == 0
    text = capsys.readouterr().out
    assert f"govdash {metadata.version('govdash')}" in text
    assert "→ 数据快照 #1" in text
    assert "1 个本地账号" in text and "工单.xlsx" in text and "检查通过" in text
    assert f"  tickets{len(PHONES):>29,}" in text


def test_unreadable_accounts_fail_the_check(
    installation: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    accounts = installation.parent / "accounts.json"
    accounts.write_text('{"accounts": [{"username": "x"', encoding="utf-8")  # cut short
    code, document = _status(installation, capsys=capsys)
    assert code == 1 and document["ok"] is False
    assert _checks(document) == ["accounts"]
    assert str(accounts) in document["problems"][0]["message"]
    assert document["accounts"]["mode"] == "unavailable"


def test_accounts_lost_in_a_restore_fail_the_check(
    installation: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (installation.parent / "accounts.json").unlink()  # the audit log says accounts were made
    code, document = _status(installation, capsys=capsys)
    assert code == 1 and _checks(document) == ["accounts"]
    assert "曾建立本地账号" in document["problems"][0]["message"]


def test_a_lost_hash_key_fails_when_tickets_carry_caller_hashes(
    installation: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = installation.parent / "hash.key"
    key.unlink()
    code, document = _status(installation, capsys=capsys)
    assert code == 1 and _checks(document) == ["hash_key"]
    message = document["problems"][0]["message"]
    with_phone = sum(phone is not None for phone in PHONES)
    assert str(key) in message and f"已有 {with_phone} 条带来电号码散列的工单" in message
    assert not key.exists(), "the check must not make a new key (that would hide the loss)"


def test_the_key_from_the_environment_is_enough(
    installation: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key = installation.parent / "hash.key"
    monkeypatch.setenv("GOVDASH_HASH_KEY", key.read_text())
    key.unlink()
    code, document = _status(installation, capsys=capsys)
    assert code == 0, document["problems"]
    assert document["hash_key"] == {"source": "environment", "variable": "GOVDASH_HASH_KEY"}


def test_no_key_is_fine_while_no_ticket_has_a_caller_hash(
    load: Callable[..., tuple[LoadReport, Path]],
    db_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    report, _ = load(_tickets(tmp_path / "in", [None, None]))
    assert report.ok
    _add_admin(db_path, monkeypatch)
    (db_path.parent / "hash.key").unlink(missing_ok=True)
    code, document = _status(db_path, capsys=capsys)
    assert "hash_key" not in _checks(document), document["problems"]
    assert code == 0 and not (db_path.parent / "hash.key").exists()


def test_an_unreadable_hash_key_fails_the_check(
    installation: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = installation.parent / "hash.key"
    key.unlink()
    key.mkdir()  # what a bad restore can leave; chmod 000 would not stop root reading it
    code, document = _status(installation, capsys=capsys)
    assert code == 1 and _checks(document) == ["hash_key"]
    assert "无法读取电话号码散列密钥" in document["problems"][0]["message"]


def test_a_damaged_warehouse_catalog_fails_the_check(
    installation: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    catalog = installation.parent / "warehouse.sqlite"
    for leftover in ("-wal", "-shm"):
        Path(f"{catalog}{leftover}").unlink(missing_ok=True)
    catalog.write_bytes(b"\0" * 4096)
    code, document = _status(installation, capsys=capsys)
    assert code == 1 and _checks(document) == ["warehouse"]
    assert str(catalog) in document["problems"][0]["message"]
    assert document["warehouse"] is None


def test_an_old_single_file_warehouse_fails_the_check_and_names_the_migration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "old"
    version = folder / "warehouse.duckdb.versions" / "v1.duckdb"
    version.parent.mkdir(parents=True, mode=0o700)
    folder.chmod(0o700)
    version.write_bytes(b"an old release's version file")
    (folder / "warehouse.duckdb").symlink_to(Path("warehouse.duckdb.versions") / "v1.duckdb")
    code, document = _status(folder / "warehouse.duckdb", capsys=capsys)
    assert code == 1 and "warehouse" in _checks(document)
    message = next(p["message"] for p in document["problems"] if p["check"] == "warehouse")
    assert "govdash migrate" in message and str(version) in message


def test_no_warehouse_at_all_fails_the_check(
    tmp_path: Path, config: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "empty"
    folder.mkdir(mode=0o700)
    code, document = _status(folder / "warehouse.duckdb", capsys=capsys)
    assert code == 1 and _checks(document) == ["warehouse"]
    assert "govdash load" in document["problems"][0]["message"]
    # Without accounts on a fresh folder: single-user mode is said, as a warning.
    assert [finding["check"] for finding in document["warnings"]] == ["accounts"]


def test_a_nearly_full_disk_fails_the_check(
    installation: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    free_mb = shutil.disk_usage(tmp_path).free // (1024 * 1024)
    settings = tmp_path / "govdash.toml"
    settings.write_text(f"[server]\nmin_free_disk_mb = {free_mb * 4 + 1024}\n", encoding="utf-8")
    code, document = _status(installation, "--config", str(settings), capsys=capsys)
    assert code == 1 and _checks(document) == ["disk"]
    assert "server.min_free_disk_mb" in document["problems"][0]["message"]
    assert document["disk"]["threshold_bytes"] == (free_mb * 4 + 1024) * 1024 * 1024


def test_damaged_sign_in_stores_fail_the_check(
    installation: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (installation.parent / "session.key").write_text("short")
    (installation.parent / "audit.sqlite3-wal").unlink(missing_ok=True)
    (installation.parent / "audit.sqlite3").write_bytes(b"not a database at all" * 100)
    code, document = _status(installation, capsys=capsys)
    assert code == 1
    assert sorted(_checks(document)) == ["audit_log", "session_store"]


def test_without_check_a_problem_does_not_change_the_exit_status(
    installation: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (installation.parent / "hash.key").unlink()
    assert main(["status", "--db", str(installation)]) == 0
    assert "✗ [hash_key]" in capsys.readouterr().out


def test_a_folder_others_can_read_is_a_warning_only(
    installation: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    installation.parent.chmod(0o755)
    code, document = _status(installation, capsys=capsys)
    assert code == 0
    assert [finding["check"] for finding in document["warnings"]] == ["data_dir"]
    assert "chmod 700" in document["warnings"][0]["message"]
