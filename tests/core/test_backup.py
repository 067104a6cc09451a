"""govdash.core.backup: an archive of a real installation (real loader, real files) restores to
the same figures, accounts and phone-hash matching; a bad archive or target changes nothing."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import sqlite3
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from govdash.analytics.queries.filters import Filters
from govdash.analytics.queries.tickets import ticket_kpis
from govdash.core.access import Scope
from govdash.core.accounts import AccountStore, accounts_path
from govdash.core.audit import AuditLog, audit_path
from govdash.core.backup import MAGIC, BackupError, backup, restore
from govdash.core.config import load_config
from govdash.core.profiles import Profile, ProfileStore, profiles_path
from govdash.core.warehouse import (
    connect_readonly,
    current_snapshot,
    hash_key_path,
    lake_of,
    raw_dir,
)
from govdash.etl.load import load_paths
from tests.analytics.warehouse_data import (
    REGISTER,
    REGISTER_HEADER,
    SURVEY_HEADER,
    TICKET_HEADER,
    Ticket,
    expected_tickets,
    generate_tickets,
    select,
    survey_rows,
)
from tests.conftest import TABLES, rows, snapshot, write_csv, write_xlsx

PASSPHRASE = "十二月的备份口令 2026"
ENVIRONMENT = (
    "GOVDASH_DB",
    "GOVDASH_CONFIG",
    "GOVDASH_HASH_KEY",
    "GOVDASH_ACCOUNTS",
    "GOVDASH_AUDIT",
    "GOVDASH_PROFILES",
    "GOVDASH_ROUNDS",
    "GOVDASH_SESSIONS",
)
Q1 = Filters(date(2025, 1, 1), date(2025, 3, 31))


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)


@dataclasses.dataclass
class Installation:
    db: Path
    tickets: list[Ticket]


def _install(folder: Path) -> Installation:
    """A real installation: the main test data loaded, an account, a profile, audit events."""
    tickets = generate_tickets()
    files = [
        write_xlsx(folder / "in" / "台账.xlsx", {"台账": [REGISTER_HEADER, *map(list, REGISTER)]}),
        write_csv(
            folder / "in" / "工单.csv", [TICKET_HEADER, *[t.row() for t in tickets]], "utf-8-sig"
        ),
        write_xlsx(folder / "in" / "问卷.xlsx", {"问卷": [SURVEY_HEADER, *survey_rows()]}),
    ]
    db = folder / "data" / "warehouse.duckdb"
    report = load_paths(files, db, load_config())
    assert [f.error for f in report.files if f.error] == []
    AccountStore(accounts_path(db)).add(
        "王芳", "王芳的密码 123", "viewer", Scope("community", "东社区")
    )
    AccountStore(accounts_path(db)).add("li.ping", "admin password 9", "admin", Scope.district())
    ProfileStore(profiles_path(db)).save(
        Profile(
            "区工单",
            "tickets",
            "sig-1",
            ("单号", "小区"),
            {"单号": "ticket_id", "小区": "compound"},
        ),
        actor="li.ping",
    )
    return Installation(db, tickets)


@pytest.fixture(scope="module")
def installation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installation]:
    with pytest.MonkeyPatch.context() as patch:
        for name in ENVIRONMENT:
            patch.delenv(name, raising=False)
        yield _install(tmp_path_factory.mktemp("installation"))


@pytest.fixture(scope="module")
def encrypted(installation: Installation, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("archives") / "govdash.gdbk"
    backup(installation.db, out, PASSPHRASE, load_config())
    return out


def _sqlite_rows(path: Path, table: str) -> list[tuple]:
    with sqlite3.connect(path) as con:
        return con.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()


def _tree(folder: Path) -> dict[str, bytes | str]:
    """Every entry under `folder` (a file's bytes, a link's target), to see that nothing changed."""
    if not folder.exists():
        return {}
    entries: dict[str, bytes | str] = {}
    for path in sorted(folder.rglob("*")):
        name = str(path.relative_to(folder))
        if path.is_symlink():
            entries[name] = "-> " + os.readlink(path)
        elif path.is_file():
            entries[name] = path.read_bytes()
        else:
            entries[name] = "dir"
    return entries


def _repeat_of(ticket: Ticket, ticket_id: str) -> Ticket:
    """The same caller about the same thing a day later (a repeat by DOMAIN.md §4)."""
    later = ticket.accepted_at + timedelta(days=1)
    return dataclasses.replace(
        ticket,
        ticket_id=ticket_id,
        accepted_at=later,
        responded_at=later + timedelta(minutes=10),
        closed_at=later + timedelta(hours=3),
        status="已办结",
    )


def test_a_restore_has_the_same_figures_accounts_and_phone_matching(
    installation: Installation, encrypted: Path, tmp_path: Path
) -> None:
    assert encrypted.read_bytes().startswith(MAGIC)
    new_db = tmp_path / "new" / "data" / "warehouse.duckdb"
    result = restore(encrypted, new_db, PASSPHRASE)
    assert result.db_path == new_db and result.data_dir == new_db.parent

    # The same figures: the whole warehouse, and a page's KPIs against pandas' own count.
    assert snapshot(new_db) == snapshot(installation.db)
    assert current_snapshot(new_db) == current_snapshot(installation.db)
    assert lake_of(new_db).target == str(new_db.parent / "warehouse.sqlite")
    expected = select(expected_tickets(installation.tickets), Q1.start, Q1.end)
    config = load_config()
    for db in (installation.db, new_db):
        con = connect_readonly(db)
        try:
            kpis = ticket_kpis(con, Q1, config)
        finally:
            con.close()
        assert kpis.tickets == len(expected)
        on_time = int((expected.response_status == "on_time").sum())
        late = int((expected.response_status == "late").sum())
        assert kpis.response_on_time_rate == pytest.approx(on_time / (on_time + late))
        assert kpis.repeat_tickets == int(expected.is_repeat.sum()) > 0

    # The same accounts sign in, through the product's own verification; a wrong one does not.
    accounts = AccountStore(accounts_path(new_db))
    assert accounts.verify("王芳", "王芳的密码 123") is not None
    assert accounts.verify("li.ping", "admin password 9") is not None
    assert accounts.verify("王芳", "admin password 9") is None
    assert ProfileStore(profiles_path(new_db)).get("区工单") is not None
    # The audit log came along whole (restore adds nothing when no actor is given).
    assert _sqlite_rows(audit_path(new_db), "audit_events") == _sqlite_rows(
        audit_path(installation.db), "audit_events"
    )
    assert hash_key_path(new_db).read_bytes() == hash_key_path(installation.db).read_bytes()
    assert sorted(p.name for p in raw_dir(new_db).iterdir()) == sorted(
        p.name for p in raw_dir(installation.db).iterdir()
    )
    for path in (new_db.parent, raw_dir(new_db), accounts_path(new_db), hash_key_path(new_db)):
        assert path.stat().st_mode & 0o077 == 0, path

    # The same phone-hash matching: a caller seen before the backup calls again after it.
    seen = max((t for t in installation.tickets if t.phone), key=lambda t: t.accepted_at)
    again = _repeat_of(seen, "N0001")
    follow_up = write_csv(tmp_path / "追加工单.csv", [TICKET_HEADER, again.row()], "utf-8-sig")
    report = load_paths([follow_up], new_db, config)
    assert report.files[0].error is None and report.files[0].rows_loaded == 1
    assert rows(new_db, "SELECT is_repeat FROM tickets WHERE ticket_id = 'N0001'") == [(True,)]

    # Without the key from the archive the same ticket is not matched: the key is what did it.
    control = tmp_path / "control" / "warehouse.duckdb"
    restore(encrypted, control, PASSPHRASE)
    hash_key_path(control).unlink()
    load_paths([follow_up], control, config)
    assert rows(control, "SELECT is_repeat FROM tickets WHERE ticket_id = 'N0001'") == [(False,)]


def test_the_manifest_lists_every_member_with_size_and_checksum(
    installation: Installation, tmp_path: Path
) -> None:
    out = tmp_path / "plain.tar"
    result = backup(installation.db, out, None, load_config())
    with tarfile.open(out) as archive:
        names = archive.getnames()
        manifest = json.loads(archive.extractfile("manifest.json").read())  # type: ignore[union-attr]
        for member in manifest["members"]:
            data = archive.extractfile(member["name"]).read()  # type: ignore[union-attr]
            assert (len(data), hashlib.sha256(data).hexdigest()) == (
                member["size"],
                member["sha256"],
            )
    assert names[-1] == "manifest.json"
    assert manifest == result.manifest
    assert manifest["format_version"] == 1 and manifest["encrypted"] is False
    assert manifest["warehouse"]["snapshot"] == current_snapshot(installation.db)
    assert manifest["warehouse"]["kind"] == "ducklake-sqlite"
    roles = {m["name"]: m["role"] for m in manifest["members"]}
    raw_files = {p.name for p in raw_dir(installation.db).iterdir()} - {"manifest.jsonl"}
    files = installation.db.parent / "warehouse.files"
    assert roles == {
        "warehouse/catalog.sqlite": "warehouse",
        **{
            f"warehouse/files/{p.relative_to(files).as_posix()}": "warehouse"
            for p in files.rglob("*")
            if p.is_file()
        },
        "audit.sqlite3": "audit",
        "accounts.json": "accounts",
        "profiles.json": "profiles",
        "hash.key": "hash_key",
        "raw/manifest.jsonl": "raw_manifest",
        **{f"raw/{name}": "raw" for name in raw_files},
    }
    assert len(raw_files) == 3
    assert out.stat().st_mode & 0o077 == 0


def test_loads_during_a_backup_leave_the_snapshot_it_started_with(
    installation: Installation, tmp_path: Path
) -> None:
    """The backup holds the snapshot it started with: two loads that publish newer snapshots in
    the middle of the backup change nothing in the archive."""
    db = tmp_path / "data" / "warehouse.duckdb"
    restore(_plain_backup(installation, tmp_path), db, None)
    before = snapshot(db)
    held = current_snapshot(db)
    assert held is not None
    config = load_config()
    extra = [
        write_csv(
            tmp_path / f"extra{n}.csv",
            [TICKET_HEADER, _repeat_of(installation.tickets[n], f"X{n}").row()],
            "utf-8-sig",
        )
        for n in range(2)
    ]
    loads_done: list[str] = []

    def meanwhile(message: str) -> None:
        if not loads_done:  # the first message comes once the warehouse is held
            for path in extra:
                loads_done.append(load_paths([path], db, config).files[0].name)

    out = tmp_path / "during.tar"
    backup(db, out, None, config, progress=meanwhile)
    assert loads_done == ["extra0.csv", "extra1.csv"]
    assert current_snapshot(db) == held + 2  # both published while the backup held its copy
    assert rows(db, "SELECT count(*) FROM tickets WHERE ticket_id LIKE 'X%'") == [(2,)]
    restored = tmp_path / "restored" / "warehouse.duckdb"
    restore(out, restored, None)
    assert snapshot(restored) == before
    assert current_snapshot(restored) == held


def _plain_backup(installation: Installation, tmp_path: Path) -> Path:
    out = tmp_path / "base.tar"
    backup(installation.db, out, None, load_config())
    return out


LOADER = """
import sys
from pathlib import Path
from govdash.core.config import load_config
from govdash.etl.load import load_paths
for name in sys.argv[2:]:
    report = load_paths([Path(name)], Path(sys.argv[1]), load_config())
    assert report.files[0].error is None, report.files[0].error
"""


def test_a_backup_taken_while_another_process_loads_restores_a_whole_version(
    installation: Installation, tmp_path: Path
) -> None:
    db = tmp_path / "data" / "warehouse.duckdb"
    restore(_plain_backup(installation, tmp_path), db, None)
    start = rows(db, "SELECT count(*) FROM tickets")[0][0]
    batches: list[Path] = []
    for batch in range(4):  # 4 loads of 3,000 tickets each, one after another
        tickets = [
            dataclasses.replace(t, ticket_id=f"L{batch}-{n:05d}", phone="")
            for n, t in enumerate(generate_tickets(3000, seed=batch))
        ]
        batches.append(
            write_csv(
                tmp_path / f"load{batch}.csv",
                [TICKET_HEADER, *[t.row() for t in tickets]],
                "utf-8-sig",
            )
        )
    whole_states = {start + 3002 * n for n in range(5)}  # generate_tickets adds two fixed ones
    loader = subprocess.Popen(
        [sys.executable, "-c", LOADER, str(db), *map(str, batches)],
        cwd=Path(__file__).resolve().parents[2],
        env={k: v for k, v in os.environ.items() if k not in ENVIRONMENT},
    )
    taken: list[tuple[Path, bool]] = []
    try:
        while True:
            running = loader.poll() is None
            out = tmp_path / f"during-{len(taken)}.tar"
            backup(db, out, None, load_config())
            taken.append((out, running))
            if not running:
                break
            time.sleep(0.3)  # pacing only: every backup taken is checked below
    finally:
        loader.wait(timeout=600)
    assert loader.returncode == 0
    assert any(running for _, running in taken), "no backup started while the load ran"
    seen: set[int] = set()
    for index, (archive, _) in enumerate(taken):
        restored = tmp_path / f"restored-{index}" / "warehouse.duckdb"
        restore(archive, restored, None)
        (count,) = rows(restored, "SELECT count(*) FROM tickets")[0]
        batches_loaded = rows(
            restored, "SELECT count(*) FROM load_batches WHERE file_name LIKE 'load%'"
        )[0][0]
        assert count in whole_states
        assert count == start + 3002 * batches_loaded  # the snapshot and its batches agree
        seen.add(count)
    assert max(seen) == start + 3002 * 4  # the last backup, after the loads, has them all


# --- archives and targets that are refused ------------------------------------------------


def _assert_refused(archive: Path, target: Path, passphrase: str | None, message: str) -> None:
    parent = target.parent.parent
    before = _tree(parent)
    with pytest.raises(BackupError) as refused:
        restore(archive, target, passphrase)
    assert message in str(refused.value)
    assert _tree(parent) == before  # no staging folder left, nothing moved in


def test_a_wrong_passphrase_is_named_and_changes_nothing(encrypted: Path, tmp_path: Path) -> None:
    target = tmp_path / "site" / "data" / "warehouse.duckdb"
    target.parent.parent.mkdir()
    _assert_refused(encrypted, target, "not the passphrase", "备份口令不正确")
    assert not target.parent.exists()
    _assert_refused(encrypted, target, None, "已加密：请用 --passphrase-stdin")


@pytest.mark.parametrize("keep", [0.5, 0.999])
def test_a_truncated_archive_is_named_and_changes_nothing(
    encrypted: Path, installation: Installation, tmp_path: Path, keep: float
) -> None:
    target = tmp_path / "site" / "data" / "warehouse.duckdb"
    target.parent.parent.mkdir()
    cut = tmp_path / "cut.gdbk"
    data = encrypted.read_bytes()
    cut.write_bytes(data[: int(len(data) * keep)])
    _assert_refused(cut, target, PASSPHRASE, "不完整（可能被截断）")
    # A plain tar cut inside a member (the tar's zero padding at the end holds nothing): in
    # the middle, or one byte short of the manifest's end.
    plain = _plain_backup(installation, tmp_path)
    with tarfile.open(plain) as archive:
        manifest = archive.getmember("manifest.json")
    end = manifest.offset_data + manifest.size
    data = plain.read_bytes()
    plain.write_bytes(data[: int(len(data) * 0.5) if keep == 0.5 else end - 1])
    _assert_refused(plain, target, None, "不完整（可能被截断）")
    assert not target.parent.exists()


def test_a_tampered_archive_is_named_and_changes_nothing(
    encrypted: Path, installation: Installation, tmp_path: Path
) -> None:
    target = tmp_path / "site" / "data" / "warehouse.duckdb"
    target.parent.parent.mkdir()
    changed = tmp_path / "changed.gdbk"
    data = bytearray(encrypted.read_bytes())
    data[len(data) // 2] ^= 0x01
    changed.write_bytes(bytes(data))
    _assert_refused(changed, target, PASSPHRASE, "已损坏或被改动")
    plain = _plain_backup(installation, tmp_path)
    data = bytearray(plain.read_bytes())
    data[2048] ^= 0x01  # inside the first member's data (the warehouse catalog)
    plain.write_bytes(bytes(data))
    _assert_refused(plain, target, None, "校验和与清单不符")


def test_a_target_that_holds_an_installation_is_left_alone(
    installation: Installation, tmp_path: Path
) -> None:
    archive = _plain_backup(installation, tmp_path)
    target = tmp_path / "site" / "data" / "warehouse.duckdb"
    restore(archive, target, None)
    AccountStore(accounts_path(target)).add(
        "新账号", "restored site pw", "viewer", Scope.district()
    )
    _assert_refused(archive, target, None, "已有一套安装")
    assert AccountStore(accounts_path(target)).verify("新账号", "restored site pw") is not None
    # A folder holding only the key is an installation too (its key must not be replaced).
    other = tmp_path / "other" / "data" / "warehouse.duckdb"
    other.parent.mkdir(parents=True)
    hash_key_path(other).write_text("0" * 64)
    _assert_refused(archive, other, None, "hash.key")


def test_an_empty_existing_folder_is_a_clean_target(
    installation: Installation, tmp_path: Path
) -> None:
    """As a server's state directory made by `install -d` before the restore."""
    target = tmp_path / "state" / "warehouse.duckdb"
    target.parent.mkdir(mode=0o700)
    (target.parent / ".streamlit").mkdir()
    (target.parent / ".streamlit" / "config.toml").write_text("[theme]\n")
    restore(_plain_backup(installation, tmp_path), target, None)
    assert snapshot(target, TABLES) == snapshot(installation.db, TABLES)
    assert (target.parent / ".streamlit" / "config.toml").read_text() == "[theme]\n"
    assert sorted(p.name for p in target.parent.iterdir() if p.name.startswith(".govdash")) == []


def test_an_archive_with_a_path_outside_the_folder_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo("../outside.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
    target = tmp_path / "site" / "data" / "warehouse.duckdb"
    target.parent.parent.mkdir()
    _assert_refused(archive, target, None, "不应有的内容")
    assert not (tmp_path / "site" / "outside.txt").exists()


def test_a_backup_and_a_restore_are_audited(installation: Installation, tmp_path: Path) -> None:
    db = tmp_path / "site" / "warehouse.duckdb"
    restore(_plain_backup(installation, tmp_path), db, None, actor="restorer")
    out = tmp_path / "again.tar"
    backup(db, out, None, load_config(), actor="nightly")
    events = AuditLog(audit_path(db)).events()
    recent = events[events.action.isin(["backup", "restore"])].sort_values("event_id")
    assert recent[["actor", "action", "target"]].values.tolist() == [
        ["restorer", "restore", str(tmp_path / "base.tar")],
        ["nightly", "backup", str(out)],
    ]
    assert json.loads(recent.detail.iloc[-1])["bytes"] == out.stat().st_size


def test_the_key_in_effect_and_the_oidc_secrets_are_carried(
    installation: Installation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key from $GOVDASH_HASH_KEY (the one loads use) goes into the archive as hash.key, and
    the admin is told where it went; Streamlit's secrets.toml in the data folder comes along."""
    db = tmp_path / "site" / "warehouse.duckdb"
    restore(_plain_backup(installation, tmp_path), db, None)
    secrets_file = db.parent / ".streamlit" / "secrets.toml"
    secrets_file.parent.mkdir()
    secrets_file.write_text('[auth]\nclient_secret = "s3cret"\n', encoding="utf-8")
    monkeypatch.setenv("GOVDASH_HASH_KEY", "key-from-the-environment-file")
    out = tmp_path / "env-key.tar"
    result = backup(db, out, None, load_config())
    assert result.manifest["hash_key_source"] == "env"
    monkeypatch.delenv("GOVDASH_HASH_KEY")
    target = tmp_path / "new" / "warehouse.duckdb"
    restored = restore(out, target, None)
    assert hash_key_path(target).read_text() == "key-from-the-environment-file\n"
    assert any("GOVDASH_HASH_KEY" in note for note in restored.notes)
    assert (target.parent / ".streamlit" / "secrets.toml").read_bytes() == secrets_file.read_bytes()


def test_a_clash_found_while_moving_in_is_undone(
    installation: Installation, tmp_path: Path
) -> None:
    """The target folder has its own config/ (not an installation, so the restore starts); the
    archive carries config/street.toml: the entries moved before the clash go back out."""
    street = tmp_path / "street.toml"
    street.write_text('[bulletin]\nissuer = "某某街道"\n', encoding="utf-8")
    out = tmp_path / "with-config.tar"
    result = backup(installation.db, out, None, load_config(street))
    assert "config/street.toml" in {m["name"] for m in result.manifest["members"]}
    target = tmp_path / "site" / "data" / "warehouse.duckdb"
    (target.parent / "config").mkdir(parents=True)
    (target.parent / "config" / "mine.toml").write_text("# the admin's own\n")
    _assert_refused(out, target, None, "重名")
    assert sorted(p.name for p in target.parent.iterdir()) == ["config"]


def test_encrypted_chunks_cannot_be_dropped_or_reordered(encrypted: Path, tmp_path: Path) -> None:
    """With the stated length made to fit, a stream missing its last chunk, or with two chunks
    swapped, is still refused: each chunk's nonce carries its place and the last-chunk flag."""
    data = encrypted.read_bytes()
    head = len(MAGIC) + 16 + 3  # salt, log2 n, r, p
    start = head + 8 + len(b"govdash-backup") + 16  # stream length, sealed check value
    sealed = 64 * 1024 + 16
    chunks = [data[i : i + sealed] for i in range(start, len(data), sealed)]
    assert len(chunks) > 3

    def archive(name: str, body: list[bytes]) -> Path:
        stream = b"".join(body)
        path = tmp_path / name
        path.write_bytes(
            data[:head] + len(stream).to_bytes(8, "big") + data[head + 8 : start] + stream
        )
        return path

    assert archive("same.gdbk", chunks).read_bytes() == data  # the layout is understood
    target = tmp_path / "site" / "data" / "warehouse.duckdb"
    target.parent.parent.mkdir()
    _assert_refused(archive("short.gdbk", chunks[:-1]), target, PASSPHRASE, "已损坏或被改动")
    swapped = [chunks[1], chunks[0], *chunks[2:]]
    _assert_refused(archive("swapped.gdbk", swapped), target, PASSPHRASE, "已损坏或被改动")
