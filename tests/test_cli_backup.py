"""`govdash backup` and `govdash restore` through the real command (a subprocess), and the
README's backup block run as written."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from govdash.cli import build_parser
from govdash.core.accounts import AccountStore
from tests.analytics.warehouse_data import (
    REGISTER,
    REGISTER_HEADER,
    TICKET_HEADER,
    generate_tickets,
)
from tests.conftest import rows, write_csv, write_xlsx

ROOT = Path(__file__).resolve().parent.parent
PASSPHRASE = "governance backup 2026"
ADMIN_PASSWORD = "admin password 123"


def _environment(db: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVDASH_")}
    env["GOVDASH_DB"] = str(db)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _govdash(
    db: Path, *args: str, stdin: str = "", cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "govdash", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=_environment(db),
        cwd=cwd or db.parent.parent,
        timeout=300,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A loaded installation made by the commands an office runs: load, users add."""
    folder = tmp_path_factory.mktemp("site")
    tickets = generate_tickets()
    register = write_xlsx(
        folder / "in" / "台账.xlsx", {"台账": [REGISTER_HEADER, *map(list, REGISTER)]}
    )
    sheet = write_csv(
        folder / "in" / "工单.csv", [TICKET_HEADER, *[t.row() for t in tickets]], "utf-8-sig"
    )
    db = folder / "data" / "warehouse.duckdb"
    loaded = _govdash(db, "load", str(register), str(sheet))
    assert loaded.returncode == 0, loaded.stderr
    added = _govdash(
        db,
        "users",
        "add",
        "管理员",
        "--role",
        "admin",
        "--password-stdin",
        stdin=ADMIN_PASSWORD + "\n",
    )
    assert added.returncode == 0, added.stderr
    evaluator = _govdash(
        db, "users", "add", "评委甲", "--role", "evaluator", "--password-stdin",
        stdin="evaluator password 1\n",
    )  # fmt: skip
    assert evaluator.returncode == 0, evaluator.stderr
    opened = _govdash(
        db, "round", "open", "--year", "2025", "--deadline", "2026-12-31", "--evaluator", "评委甲"
    )
    assert opened.returncode == 0, opened.stdout + opened.stderr
    return db


def test_an_unencrypted_backup_must_be_asked_for(site: Path, tmp_path: Path) -> None:
    out = tmp_path / "plain.tar"
    refused = _govdash(site, "backup", "--out", str(out))
    assert refused.returncode == 2
    assert "--passphrase-stdin" in refused.stderr and "--no-encrypt" in refused.stderr
    assert not out.exists()
    short = _govdash(site, "backup", "--out", str(out), "--passphrase-stdin", stdin="short\n")
    assert short.returncode == 1 and "口令太短" in short.stderr
    assert not out.exists()
    written = _govdash(site, "backup", "--out", str(out), "--no-encrypt")
    assert written.returncode == 0, written.stderr
    assert "未加密" in written.stdout
    assert out.read_bytes()[257:262] == b"ustar"  # a plain tar anyone's tools can read


def test_backup_then_restore_through_the_command(site: Path, tmp_path: Path) -> None:
    config = tmp_path / "street.toml"
    config.write_text('[bulletin]\nissuer = "某某街道党工委"\n', encoding="utf-8")
    archive = tmp_path / "nightly.gdbk"
    taken = _govdash(
        site, "backup", "--out", str(archive), "--passphrase-stdin", "--config", str(config),
        stdin=PASSPHRASE + "\n",
    )  # fmt: skip
    assert taken.returncode == 0, taken.stderr
    assert f"已备份到 {archive}" in taken.stdout and "已加密" in taken.stdout
    status = _govdash(site, "status", "--format", "json")
    last = json.loads(status.stdout)["last_backup"]
    assert (last["target"], last["bytes"]) == (str(archive), archive.stat().st_size)
    assert f"最近一次备份：{last['at']}" in _govdash(site, "status").stdout

    target = tmp_path / "new-server" / "warehouse.duckdb"
    wrong = _govdash(
        site, "restore", str(archive), "--db", str(target), "--passphrase-stdin",
        stdin="not the passphrase\n",
    )  # fmt: skip
    assert wrong.returncode == 1 and "备份口令不正确" in wrong.stderr
    assert not target.parent.exists()

    restored = _govdash(
        site, "restore", str(archive), "--db", str(target), "--passphrase-stdin",
        stdin=PASSPHRASE + "\n",
    )  # fmt: skip
    assert restored.returncode == 0, restored.stderr
    assert f"已恢复到 {target.parent}" in restored.stdout
    assert "config/street.toml" in restored.stdout  # the admin is told where the config went
    assert (target.parent / "config" / "street.toml").read_bytes() == config.read_bytes()
    assert rows(target, "SELECT count(*) FROM tickets") == rows(
        site, "SELECT count(*) FROM tickets"
    )
    assert (
        AccountStore(target.parent / "accounts.json").verify("管理员", ADMIN_PASSWORD) is not None
    )

    rounds = [_govdash(db, "round", "status", "--round", "1").stdout for db in (site, target)]
    assert "评委甲" in rounds[0] and rounds[1] == rounds[0]  # the scoring round came along

    status = _govdash(target, "status", "--check", "--db", str(target))
    assert status.returncode == 0, status.stdout + status.stderr

    again = _govdash(
        site, "restore", str(archive), "--db", str(target), "--passphrase-stdin",
        stdin=PASSPHRASE + "\n",
    )  # fmt: skip
    assert again.returncode == 1 and "已有一套安装" in again.stderr


def _backup_section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("## 备份与恢复 · Backup and restore")
    return text[start : text.index("\n## ", start + 1)]


def test_the_readme_block_runs_as_written(site: Path, tmp_path: Path) -> None:
    (block,) = re.findall(
        r"<!-- tested: backup-restore -->\n```bash\n(.*?)```", _backup_section(), re.S
    )
    env = _environment(site) | {"BACKUP_PASSPHRASE": PASSPHRASE}
    ran = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stdout + ran.stderr
    restored = tmp_path / "restored" / "warehouse.duckdb"
    assert rows(restored, "SELECT count(*) FROM tickets") == rows(
        site, "SELECT count(*) FROM tickets"
    )
    assert (
        (tmp_path / "govdash-backup.gdbk")
        .read_bytes()
        .startswith(b"govdash-backup/1 scrypt-chacha20poly1305\n")
    )


def test_every_command_in_the_backup_section_is_one_the_program_takes() -> None:
    section = _backup_section()
    commands = re.findall(r"govdash(?:-admin)? ((?:backup|restore|status) [^|<&`\n]*)", section)
    assert len(commands) >= 8
    parser = build_parser()
    for command in commands:
        words = shlex.split(re.sub(r"\$\([^)]*\)", "X", command).replace("\\", ""))
        parser.parse_args(words)  # argparse exits (SystemExit) on an option it does not know
