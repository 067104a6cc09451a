"""Backup and restore of a whole installation: one archive, encrypted, verified before use.

What an installation is comes from the same functions the product uses to find its files
(`warehouse_location`, `data_dir`, `accounts_path`, `audit_path`, …): the published warehouse
version, the accounts, the audit log, the evaluation rounds, the mapping profiles, the
phone-hash key, the originals under `raw/`, the config in use (and the bulletin template it
names) and Streamlit's `secrets.toml` in the data folder. Sign-in sessions are left out: after a
restore everyone signs in again, and a stolen backup holds no live session.

The archive is a POSIX tar whose last member is `manifest.json` (format version, product
version, warehouse version, time, and each member's role, size and sha256). With a passphrase
the tar is encrypted as it is written (`cryptography`): a key from the passphrase by scrypt
(fixed work factor, 128 MiB — a restore machine needs no more than the backup machine had), then
the STREAM construction age uses for its payload — 64 KiB chunks sealed with ChaCha20-Poly1305,
the nonce an 88-bit chunk counter and a last-chunk flag — so chunks cannot be dropped, reordered
or cut off unnoticed, and gigabytes of originals never sit in memory. The file starts with
`MAGIC`, the scrypt salt and parameters, the length of the encrypted stream (so truncation is
named as such) and a sealed check value (so a wrong passphrase is named as such).

Consistency while the app serves and loads run: the warehouse version is opened before anything
else and read through that open file, so pruning cannot take it away and, being immutable, it
cannot change; SQLite files go through sqlite3's online backup API; JSON files are replaced
atomically by their writers, so one read is whole; `raw/` is taken as its manifest lists it
(a file is listed only after it is complete).

Restore unpacks into a staging folder beside the target, checks the manifest and every checksum
(and, encrypted, the passphrase and the stream's authentication), opens the warehouse, and only
then moves the installation into place. Any failure leaves the target as it was.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import shutil
import sqlite3
import struct
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import IO, Any, BinaryIO

import duckdb

import govdash
from govdash.core.accounts import ACCOUNTS_ENV, accounts_path
from govdash.core.audit import AUDIT_ENV, AuditLog, audit_path
from govdash.core.config import DEFAULT_CONFIG_PATH, Config
from govdash.core.lake import Lake, LakeError
from govdash.core.profiles import PROFILES_ENV, profiles_path
from govdash.core.rounds import ROUNDS_ENV, rounds_path
from govdash.core.warehouse import (
    KEY_ENV,
    VERSIONS_SUFFIX,
    data_dir,
    hash_key_path,
    lake_of,
    raw_dir,
    warehouse_location,
    writer_lock,
)

FORMAT = "govdash-backup"
FORMAT_VERSION = 1
MAGIC = b"govdash-backup/1 scrypt-chacha20poly1305\n"
_PARAMETERS = struct.Struct(">16sBBB")  # scrypt salt, log2 n, r, p (authenticated)
_LENGTH = struct.Struct(">Q")  # bytes of the encrypted stream (written last)
SCRYPT_LOG_N, SCRYPT_R, SCRYPT_P = 17, 8, 1  # 2^17 × 8 × 128 B = 128 MiB, about a second
_MAX_LOG_N = 20  # a header asking more is damaged, not a backup of ours
_PLAIN_CHUNK = 64 * 1024
_TAG = 16
_CHECK_NONCE = b"\xff" * 12  # outside the chunks' nonces (their last byte is 0 or 1)
_CHECK_TEXT = b"govdash-backup"
MANIFEST = "manifest.json"
MIN_PASSPHRASE = 10
RAW_MANIFEST = "manifest.jsonl"
# A load publishes its version first and keeps its originals right after; a backup that holds
# such a fresh version waits this long for their lines in raw/manifest.jsonl.
RAW_WAIT = timedelta(seconds=60)
RAW_RECENT = timedelta(minutes=30)
_CHUNK = 1 << 20

Progress = Callable[[str], None]


class BackupError(RuntimeError):
    """A backup that cannot be written or an archive that cannot be restored; the message, in
    Chinese, names the file and what to do. Nothing was changed."""


@dataclass(frozen=True)
class Member:
    name: str  # path inside the archive (and, except the warehouse, inside the data folder)
    role: str
    size: int
    sha256: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "role": self.role, "size": self.size, "sha256": self.sha256}


@dataclass
class BackupResult:
    path: Path
    size: int
    encrypted: bool
    manifest: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


@dataclass
class RestoreResult:
    db_path: Path
    data_dir: Path
    manifest: dict[str, Any]
    notes: list[str] = field(default_factory=list)


# --- reading sources ------------------------------------------------------------------------


@dataclass
class _Source:
    """One member to write: an open file, or (raw originals, of which there may be thousands)
    a path opened only when its turn comes."""

    name: str
    role: str
    size: int
    handle: BinaryIO | None
    path: Path | None = None


class _HashingReader:
    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        self.digest = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.digest.update(data)
        return data


def _say(progress: Progress | None, message: str) -> None:
    if progress is not None:
        progress(message)


@dataclass
class WarehouseSnapshot:
    """The warehouse part of an archive: its members, open, and what the manifest says of it.

    The embedded DuckLake: a consistent copy of the SQLite catalog (`warehouse/catalog.sqlite`)
    and every data file (`warehouse/files/…`) it may reference, all opened at once.
    """

    sources: list[_Source]
    info: dict[str, Any] | None
    batch_hashes: dict[str, datetime]  # file_sha256 → loaded_at of the batches it holds


LAKE_CATALOG = "warehouse/catalog.sqlite"
LAKE_FILES = "warehouse/files"


@contextmanager
def hold_warehouse(db_path: Path) -> Iterator[WarehouseSnapshot]:
    """Copy the catalog and open every data file, under the loader's lock (a load waits a
    moment; readers do not). A load only adds Parquet files and nothing here deletes any, so
    the files open then are all the copied catalog's snapshot can reference; once open, the
    copy stays whole whatever happens to the folder afterwards."""
    lake = lake_of(db_path)
    if not lake.embedded:
        raise BackupError(
            f"数据仓库目录在 {lake.identity}（多副本部署）：govdash backup 只备份嵌入式仓库。"
            "请用 pg_dump 备份目录库、再复制数据文件目录（README“多副本部署”一节）。"
        )
    if lake.current_snapshot() is None:
        yield WarehouseSnapshot([], None, {})
        return
    with ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=".govdash-lake-")))
        sources: list[_Source] = []
        with writer_lock(db_path):
            # The copy is made by Python's sqlite3, another SQLite than DuckDB's: nothing of
            # DuckDB may hold the catalog open in this process meanwhile (lake._WATCHERS).
            lake.release()
            catalog = _sqlite_copy(Path(lake.target), scratch, "catalog.sqlite", "warehouse")
            if catalog is None:  # gone between the check and the copy
                yield WarehouseSnapshot([], None, {})
                return
            catalog.name = LAKE_CATALOG
            sources.append(catalog)
            root = Path(lake.data_path)
            for folder, _, names in os.walk(root):
                for name in sorted(names):
                    path = Path(folder) / name
                    handle = open(path, "rb")  # noqa: SIM115 - closed with the ExitStack
                    stack.callback(handle.close)
                    relative = path.relative_to(root).as_posix()
                    size = os.fstat(handle.fileno()).st_size
                    sources.append(_Source(f"{LAKE_FILES}/{relative}", "warehouse", size, handle))
        stack.callback(catalog.handle.close if catalog.handle else (lambda: None))
        copied = Lake("sqlite", str(scratch / "catalog.sqlite"), lake.data_path, scratch)
        try:
            info, batches = _describe_lake(copied)
        finally:
            copied.release()
        yield WarehouseSnapshot(sources, info, batches)


def _describe_lake(lake: Lake) -> tuple[dict[str, Any], dict[str, datetime]]:
    """Kind, snapshot, schema version, as-of time and batches of the copied catalog."""
    snapshot = lake.current_snapshot()
    con = lake.reader(snapshot)
    try:
        info = dict(con.execute("SELECT key, value FROM warehouse_info").fetchall())
        batches = {
            str(sha): loaded_at
            for sha, loaded_at in con.execute(
                "SELECT file_sha256, max(loaded_at) FROM load_batches GROUP BY ALL"
            ).fetchall()
        }
    finally:
        con.close()
    return {
        "kind": "ducklake-sqlite",
        "catalog_file": LAKE_CATALOG,
        "snapshot": snapshot,
        "schema_version": info.get("schema_version"),
        "as_of": info.get("as_of"),
    }, batches


def place_warehouse(
    unpacked: Path, installation: Path, link_name: str, info: dict[str, Any]
) -> None:
    """Put the archive's warehouse into the new installation: the catalog and the data files
    where the embedded lake of `link_name` keeps them; then open the backed-up snapshot."""
    if info.get("kind") != "ducklake-sqlite":  # an archive of an old release: its version file
        _place_version_file(unpacked, installation, link_name, info)
        return
    lake = Lake.from_location(installation / link_name, environ={})
    os.replace(unpacked / LAKE_CATALOG, lake.target)
    with closing(sqlite3.connect(lake.target)) as catalog:
        catalog.execute("PRAGMA journal_mode=WAL")
    files = unpacked / LAKE_FILES
    if files.is_dir():
        os.replace(files, lake.data_path.rstrip("/"))
    else:
        Path(lake.data_path).mkdir(mode=0o700)
    try:
        con = lake.reader(int(info["snapshot"]))
        try:
            con.execute("SELECT count(*) FROM warehouse_info").fetchall()
            con.execute("SELECT count(*) FROM tickets").fetchall()
        finally:
            con.close()
    except (duckdb.Error, LakeError, FileNotFoundError, KeyError, ValueError) as error:
        raise BackupError(f"备份中的数据仓库无法打开：{error}") from error


def _place_version_file(
    unpacked: Path, installation: Path, link_name: str, info: dict[str, Any]
) -> None:
    """An old release's archive: the version file and its link, as that release laid them out
    (`govdash migrate` then moves it into the lake, or rebuilds from the restored raw/)."""
    version_name = str(info["version_file"])
    folder = installation / (link_name + VERSIONS_SUFFIX)
    folder.mkdir(mode=0o700)
    os.replace(unpacked / "warehouse" / version_name, folder / version_name)
    os.symlink(os.path.relpath(folder / version_name, installation), installation / link_name)


def _sqlite_copy(source: Path, scratch: Path, name: str, role: str) -> _Source | None:
    """A consistent copy through SQLite's online backup API (writers may go on meanwhile)."""
    if not source.is_file():
        return None
    copy = scratch / name
    # A plain connection (not mode=ro): a read-only one cannot open a WAL file whose -shm is
    # missing; the backup API only reads the source.
    with (
        closing(sqlite3.connect(source, timeout=30)) as src,
        closing(sqlite3.connect(copy)) as dst,
    ):
        src.backup(dst)
    handle = open(copy, "rb")  # noqa: SIM115 - closed with the ExitStack of the backup
    return _Source(name, role, os.fstat(handle.fileno()).st_size, handle)


def _whole_file(source: Path, name: str, role: str) -> _Source | None:
    """A file its writers replace atomically: one read of it is whole."""
    try:
        data = source.read_bytes()
    except FileNotFoundError:
        return None
    return _Source(name, role, len(data), io.BytesIO(data))


def _raw_sources(
    db_path: Path, batches: dict[str, datetime], progress: Progress | None, warnings: list[str]
) -> list[_Source]:
    """The originals raw/manifest.jsonl lists (complete lines only) and that manifest."""
    folder = raw_dir(db_path)
    manifest_path = folder / RAW_MANIFEST
    deadline = time.monotonic() + RAW_WAIT.total_seconds()
    now = datetime.now()
    while True:
        try:
            text = manifest_path.read_bytes()
        except FileNotFoundError:
            text = b""
        text = text[: text.rfind(b"\n") + 1]  # a line being appended is left for the next backup
        entries: list[dict[str, Any]] = []
        for line in text.decode("utf-8", errors="replace").splitlines():
            with suppress(ValueError):  # a damaged line names no file (the copy keeps it)
                entry = json.loads(line)
                if isinstance(entry, dict):
                    entries.append(entry)
        listed = {str(entry.get("sha256")) for entry in entries}
        waiting = [
            sha
            for sha, loaded_at in batches.items()
            if sha not in listed and loaded_at is not None and now - loaded_at < RAW_RECENT
        ]
        if not waiting or time.monotonic() > deadline:
            break
        _say(progress, f"等待刚发布的加载保存原始文件（{len(waiting)} 个）…")
        time.sleep(0.5)
    missing = sorted(set(batches) - listed)
    if missing:
        warnings.append(
            f"数据仓库中有 {len(missing)} 个文件的原始文件不在 raw/ 中（恢复后的数字不受影响，"
            "但 govdash rebuild 无法重放它们）"
        )
    sources: list[_Source] = []
    seen: set[str] = set()
    for entry in entries:
        stored = str(entry.get("stored_as") or "")
        if not stored or stored in seen or "/" in stored or stored.startswith("."):
            continue
        seen.add(stored)
        if not (folder / stored).is_file():
            warnings.append(f"原始文件清单列出的 raw/{stored} 不存在，未备份")
            continue
        sources.append(_Source(f"raw/{stored}", "raw", 0, None, folder / stored))
    if text:
        sources.append(_Source(f"raw/{RAW_MANIFEST}", "raw_manifest", len(text), io.BytesIO(text)))
    return sources


def _config_sources(config: Config | None) -> tuple[list[_Source], dict[str, Any]]:
    """The config file in use (unless it is the built-in one) and the bulletin template it names."""
    if config is None or not config.source_path:
        return [], {"source": None}
    source = Path(config.source_path)
    if source.resolve() == DEFAULT_CONFIG_PATH.resolve():
        return [], {"source": "built-in"}
    sources = [s for s in [_whole_file(source, f"config/{source.name}", "config")] if s]
    described: dict[str, Any] = {"source": str(source), "file": f"config/{source.name}"}
    if config.bulletin_template:
        template = Path(config.bulletin_template)
        try:
            inside = template.resolve().relative_to(source.resolve().parent)
            name = "config/" + inside.as_posix()
        except ValueError:
            name = f"config/{template.name}"
        found = _whole_file(template, name, "bulletin_template")
        if found is not None:
            sources.append(found)
            described["bulletin_template"] = {"source": str(template), "file": name}
    return sources, described


# --- writing the archive --------------------------------------------------------------------


def _write_tar(
    sink: IO[bytes], sources: Iterator[_Source], finish: Callable[[list[Member]], bytes]
) -> list[Member]:
    members: list[Member] = []
    with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as archive:
        for source in sources:
            with ExitStack() as stack:
                handle, size = source.handle, source.size
                if handle is None:  # opened now; a listed original is never written again
                    assert source.path is not None
                    handle = stack.enter_context(source.path.open("rb"))
                    size = os.fstat(handle.fileno()).st_size
                info = tarfile.TarInfo(source.name)
                info.size, info.mode, info.mtime = size, 0o600, int(time.time())
                reader = _HashingReader(handle)
                archive.addfile(info, reader)
                members.append(Member(source.name, source.role, size, reader.digest.hexdigest()))
        manifest = finish(members)
        info = tarfile.TarInfo(MANIFEST)
        info.size, info.mode, info.mtime = len(manifest), 0o600, int(time.time())
        archive.addfile(info, io.BytesIO(manifest))
    return members


def check_passphrase(passphrase: str) -> None:
    if len(passphrase) < MIN_PASSPHRASE:
        raise BackupError(
            f"备份口令太短：至少 {MIN_PASSPHRASE} 个字符（口令是备份中密钥和账号的唯一保护）"
        )


def backup(
    db_path: Path,
    out: Path,
    passphrase: str | None,
    config: Config | None = None,
    progress: Progress | None = None,
    actor: str | None = None,
) -> BackupResult:
    """Write one archive of the installation at `db_path` to `out` (replaced only when whole).

    `passphrase` None writes a plain tar (the caller decides whether that is allowed). With an
    `actor`, the backup is recorded in the audit log (after the archive is written).
    """
    db_path = warehouse_location(db_path)
    folder = data_dir(db_path)
    if not folder.is_dir():
        raise BackupError(f"数据目录不存在：{folder}（请检查 --db 或 $GOVDASH_DB）")
    if passphrase is not None:
        check_passphrase(passphrase)
    out = Path(os.path.abspath(out))
    if out.is_dir():
        raise BackupError(f"--out 指向的是文件夹：{out}（请给出备份文件名）")
    if not out.parent.is_dir():
        raise BackupError(f"备份文件所在的文件夹不存在：{out.parent}")
    warnings: list[str] = []
    partial = out.with_name(f".{out.name}.{secrets.token_hex(4)}.partial")
    with ExitStack() as stack:
        snapshot = stack.enter_context(hold_warehouse(db_path))
        if snapshot.info is None:
            warnings.append("还没有发布过数据仓库：备份中没有数据，只有账号、密钥等")
        held = snapshot.info or {}
        _say(progress, f"数据仓库：数据快照 #{held['snapshot']}" if held else "数据仓库：（无）")
        scratch = Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix=".govdash-backup-", dir=folder))
        )
        sources: list[_Source] = list(snapshot.sources)
        for source_path, name, role in (
            (audit_path(db_path), "audit.sqlite3", "audit"),
            (rounds_path(db_path), "rounds.sqlite3", "rounds"),
        ):
            copied = _sqlite_copy(source_path, scratch, name, role)
            if copied is not None:
                sources.append(copied)
        for source_path, name, role in (
            (accounts_path(db_path), "accounts.json", "accounts"),
            (profiles_path(db_path), "profiles.json", "profiles"),
            (
                folder / ".streamlit" / "secrets.toml",
                ".streamlit/secrets.toml",
                "streamlit_secrets",
            ),
        ):
            found = _whole_file(source_path, name, role)
            if found is not None:
                sources.append(found)
        key_source = _hash_key_source(db_path, sources)
        if key_source is None and snapshot.info is not None:
            warnings.append(
                "没有手机号哈希密钥（hash.key）：恢复后的加载将生成新密钥，重复来电无法与以前的工单匹配"
            )
        config_sources, config_info = _config_sources(config)
        sources.extend(config_sources)
        sources.extend(_raw_sources(db_path, snapshot.batch_hashes, progress, warnings))
        for source in sources:
            if source.handle is not None:
                stack.callback(source.handle.close)

        written: dict[str, bytes] = {}

        def finish(members: list[Member]) -> bytes:
            for member in members:
                if member.role == "raw" and not member.name.split("/")[-1].startswith(
                    member.sha256
                ):
                    warnings.append(
                        f"原始文件 {member.name} 的内容与文件名中的哈希不符（磁盘可能损坏）"
                    )
            manifest = {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "product_version": govdash.__version__,
                "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "encrypted": passphrase is not None,
                "warehouse": snapshot.info,
                "hash_key_source": key_source,
                "config": config_info,
                "members": [member.to_json() for member in members],
                "warnings": warnings,
            }
            written["manifest"] = json.dumps(manifest, ensure_ascii=False, indent=2).encode()
            return written["manifest"]

        _say(progress, f"写入 {len(sources)} 个文件…")
        try:
            descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as handle:
                if passphrase is None:
                    _write_tar(handle, iter(sources), finish)
                else:
                    _write_encrypted(handle, sources, finish, passphrase)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(partial, out)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    manifest = json.loads(written["manifest"])
    if actor is not None:
        _record(db_path, actor, "backup", str(out), manifest, out.stat().st_size)
    return BackupResult(out, out.stat().st_size, passphrase is not None, manifest, warnings)


def _hash_key_source(db_path: Path, sources: list[_Source]) -> str | None:
    """Add the phone-hash key in effect; where it came from goes to the manifest."""
    key_file = _whole_file(hash_key_path(db_path), "hash.key", "hash_key")
    from_env = os.environ.get(KEY_ENV)
    if from_env:  # the key in effect is the one the loader uses
        data = (from_env + "\n").encode()
        sources.append(_Source("hash.key", "hash_key", len(data), io.BytesIO(data)))
        return "env"
    if key_file is not None:
        sources.append(key_file)
        return "file"
    return None


def _derive_key(passphrase: str, salt: bytes, log_n: int, r: int, p: int) -> bytes:
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    return Scrypt(salt=salt, length=32, n=2**log_n, r=r, p=p).derive(passphrase.encode())


class _EncryptingWriter:
    """STREAM over ChaCha20-Poly1305: every 64 KiB of plaintext sealed with the nonce
    (chunk counter, 11 bytes) + (1 for the last chunk, else 0); `close` seals the last one."""

    def __init__(self, sink: BinaryIO, key: bytes) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

        self.sink, self.aead = sink, ChaCha20Poly1305(key)
        self.counter, self.buffer = 0, bytearray()

    def write(self, data: bytes) -> int:
        self.buffer += data
        while len(self.buffer) > _PLAIN_CHUNK:  # the last chunk is left for close()
            self._seal(bytes(self.buffer[:_PLAIN_CHUNK]), last=False)
            del self.buffer[:_PLAIN_CHUNK]
        return len(data)

    def close(self) -> None:
        self._seal(bytes(self.buffer), last=True)
        self.buffer.clear()

    def _seal(self, chunk: bytes, last: bool) -> None:
        nonce = self.counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")
        self.sink.write(self.aead.encrypt(nonce, chunk, None))
        self.counter += 1


class _DecryptingReader:
    """The reverse of _EncryptingWriter, for tarfile's stream mode. A chunk whose tag fails, or
    a stream that ends without its last chunk, raises BackupError."""

    def __init__(self, source: BinaryIO, key: bytes, archive: Path) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

        self.source, self.aead, self.archive = source, ChaCha20Poly1305(key), archive
        self.counter, self.plain, self.position, self.done = 0, b"", 0, False
        self.pending = source.read(_PLAIN_CHUNK + _TAG)

    def read(self, size: int = -1) -> bytes:
        out = bytearray()
        while size < 0 or len(out) < size:
            if self.position >= len(self.plain):
                if self.done:
                    break
                self._open_next()
                continue
            end = len(self.plain) if size < 0 else self.position + size - len(out)
            piece = self.plain[self.position : end]
            out += piece
            self.position += len(piece)
        return bytes(out)

    def _open_next(self) -> None:
        from cryptography.exceptions import InvalidTag

        chunk, following = self.pending, self.source.read(_PLAIN_CHUNK + _TAG)
        last = not following
        nonce = self.counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")
        try:
            self.plain = self.aead.decrypt(nonce, chunk, None)
        except InvalidTag as error:
            raise BackupError(
                f"备份文件 {self.archive} 已损坏或被改动：第 {self.counter + 1} 段加密数据校验失败"
            ) from error
        self.position, self.counter, self.pending, self.done = 0, self.counter + 1, following, last


def _write_encrypted(
    handle: BinaryIO,
    sources: list[_Source],
    finish: Callable[[list[Member]], bytes],
    passphrase: str,
) -> list[Member]:
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    parameters = _PARAMETERS.pack(os.urandom(16), SCRYPT_LOG_N, SCRYPT_R, SCRYPT_P)
    key = _derive_key(passphrase, parameters[:16], SCRYPT_LOG_N, SCRYPT_R, SCRYPT_P)
    check = ChaCha20Poly1305(key).encrypt(_CHECK_NONCE, _CHECK_TEXT, MAGIC + parameters)
    handle.write(MAGIC + parameters + _LENGTH.pack(0) + check)
    start = handle.tell()
    writer = _EncryptingWriter(handle, key)
    members = _write_tar(writer, iter(sources), finish)  # type: ignore[arg-type]
    writer.close()
    end = handle.tell()
    handle.seek(len(MAGIC) + _PARAMETERS.size)
    handle.write(_LENGTH.pack(end - start))
    handle.seek(end)
    return members


# --- restoring ------------------------------------------------------------------------------

_TOP_LEVEL = ("accounts.json", "audit.sqlite3", "rounds.sqlite3", "profiles.json", "hash.key")


def _installation_paths(location: Path) -> list[Path]:
    """What in the target folder would mean an installation is already there."""
    folder = location.parent
    lake = Lake.from_location(location, environ={})
    return [
        location,
        folder / (location.name + VERSIONS_SUFFIX),
        Path(lake.target),
        Path(lake.data_path.rstrip("/")),
        *(folder / name for name in _TOP_LEVEL),
        folder / "sessions.sqlite3",
        folder / "session.key",
        folder / "raw",
    ]


def _safe_name(name: str) -> bool:
    path = PurePosixPath(name)
    return (
        bool(name)
        and "\\" not in name
        and not path.is_absolute()
        and all(part not in ("", ".", "..") for part in path.parts)
        and (
            name in (*_TOP_LEVEL, MANIFEST, ".streamlit/secrets.toml")
            or (len(path.parts) == 2 and path.parts[0] in ("warehouse", "raw"))
            or (len(path.parts) >= 3 and path.parts[:2] == ("warehouse", "files"))
            or (len(path.parts) >= 2 and path.parts[0] == "config")
        )
    )


def restore(
    archive: Path,
    db_path: Path,
    passphrase: str | None,
    progress: Progress | None = None,
    actor: str | None = None,
) -> RestoreResult:
    """Restore `archive` as a new installation whose warehouse is `db_path`.

    The target must hold no installation. Everything is unpacked and checked in a staging
    folder beside it first; on any problem the staging folder goes and the target is untouched.
    """
    location = warehouse_location(db_path)
    folder = location.parent
    archive = Path(os.path.abspath(archive))
    if not archive.is_file():
        raise BackupError(f"找不到备份文件：{archive}")
    if folder.exists() and not folder.is_dir():
        raise BackupError(f"恢复目标 {folder} 已存在且不是文件夹")
    present = [p for p in _installation_paths(location) if p.exists() or p.is_symlink()]
    if present:
        listed = "、".join(str(p) for p in present[:5])
        raise BackupError(
            f"恢复目标 {folder} 中已有一套安装（{listed}）：恢复只写入空的位置，未做任何改动。"
            "请用 --db 指定一个新的路径，或先把现有数据移走。"
        )
    folder_existed = folder.exists()
    if folder_existed:
        staging = Path(tempfile.mkdtemp(prefix=".govdash-restore-", dir=folder))
    else:
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.restore-", dir=folder.parent))
    try:
        unpacked = staging / "unpacked"
        unpacked.mkdir(mode=0o700)
        with archive.open("rb") as handle:
            encrypted = handle.read(len(MAGIC)) == MAGIC
            handle.seek(0)
            _say(progress, "解密并校验备份…" if encrypted else "校验备份…")
            if encrypted:
                found = _unpack_encrypted(handle, archive, unpacked, passphrase)
            else:
                found = _unpack_tar(handle, archive, unpacked)
        manifest = _verify(unpacked, archive, found)
        installation = staging / "installation"
        installation.mkdir(mode=0o700)
        notes = _lay_out(unpacked, installation, location.name, manifest)
        _say(progress, f"校验通过：{len(manifest['members'])} 个文件；放入 {folder}")
        _move_into_place(installation, folder, folder_existed)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if actor is not None:
        _record(location, actor, "restore", str(archive), manifest, archive.stat().st_size)
    return RestoreResult(location, folder, manifest, notes)


def _record(
    db_path: Path, actor: str, action: str, target: str, manifest: dict[str, Any], size: int
) -> None:
    """The backup or restore in the installation's audit log: who, which file, what it held."""
    AuditLog(audit_path(db_path)).record(
        actor,
        action,
        target=target,
        detail={
            "bytes": size,
            "encrypted": manifest.get("encrypted"),
            "created_at": manifest.get("created_at"),
            "warehouse_snapshot": (manifest.get("warehouse") or {}).get("snapshot"),
            "members": len(manifest.get("members", [])),
        },
        method="cli",
    )


def _unpack_tar(stream: IO[bytes], archive: Path, unpacked: Path) -> dict[str, tuple[int, str]]:
    """Write every member under `unpacked`, hashing as it goes; return name → (size, sha256)."""
    found: dict[str, tuple[int, str]] = {}
    try:
        reader = tarfile.open(fileobj=stream, mode="r|")  # noqa: SIM115 - the with below closes it
    except tarfile.ReadError as error:
        raise BackupError(f"{archive} 不是 govdash 备份文件（无法按归档读取）") from error
    try:
        with reader:
            for info in reader:
                if not info.isfile() or not _safe_name(info.name) or info.name in found:
                    raise BackupError(f"备份文件 {archive} 含有不应有的内容（{info.name}），已拒绝")
                source = reader.extractfile(info)
                assert source is not None  # a regular file always has one
                target = unpacked / info.name
                target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                digest, size = hashlib.sha256(), 0
                descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(descriptor, "wb") as out:
                    while chunk := source.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
                        size += len(chunk)
                if size != info.size:
                    raise BackupError(
                        f"备份文件 {archive} 不完整（可能被截断）：{info.name} 缺少数据"
                    )
                found[info.name] = (size, digest.hexdigest())
    except (tarfile.TarError, EOFError) as error:
        raise BackupError(f"备份文件 {archive} 不完整（可能被截断）：归档在中途结束") from error
    return found


def _unpack_encrypted(
    handle: BinaryIO, archive: Path, unpacked: Path, passphrase: str | None
) -> dict[str, tuple[int, str]]:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    if passphrase is None:
        raise BackupError(f"备份文件 {archive} 已加密：请用 --passphrase-stdin 从标准输入提供口令")
    handle.seek(len(MAGIC))
    check_size = len(_CHECK_TEXT) + _TAG
    header = handle.read(_PARAMETERS.size + _LENGTH.size + check_size)
    if len(header) < _PARAMETERS.size + _LENGTH.size + check_size:
        raise BackupError(f"备份文件 {archive} 不完整（可能被截断）：文件头不全")
    parameters = header[: _PARAMETERS.size]
    salt, log_n, r, p = _PARAMETERS.unpack(parameters)
    (stream_size,) = _LENGTH.unpack(header[_PARAMETERS.size : _PARAMETERS.size + _LENGTH.size])
    check = header[_PARAMETERS.size + _LENGTH.size :]
    start = len(MAGIC) + len(header)
    actual = os.fstat(handle.fileno()).st_size
    if actual < start + stream_size or stream_size == 0:
        expected = f"应有 {start + stream_size} 字节，" if stream_size else ""
        raise BackupError(f"备份文件 {archive} 不完整（可能被截断）：{expected}实际 {actual} 字节")
    if actual > start + stream_size:
        raise BackupError(f"备份文件 {archive} 已被改动：长度与文件头不符")
    if not (1 <= log_n <= _MAX_LOG_N and 1 <= r <= 32 and 1 <= p <= 16):
        raise BackupError(f"备份文件 {archive} 的文件头已损坏（加密参数不合理）")
    key = _derive_key(passphrase, salt, log_n, r, p)
    try:
        ChaCha20Poly1305(key).decrypt(_CHECK_NONCE, check, MAGIC + parameters)
    except InvalidTag as error:
        raise BackupError(
            f"备份口令不正确（或备份文件 {archive} 的文件头已损坏），无法解密"
        ) from error
    reader = _DecryptingReader(handle, key, archive)
    found = _unpack_tar(reader, archive, unpacked)  # type: ignore[arg-type]
    while reader.read(_CHUNK):  # the rest (tar padding): every chunk up to the last is checked
        pass
    return found


def _verify(unpacked: Path, archive: Path, found: dict[str, tuple[int, str]]) -> dict[str, Any]:
    if MANIFEST not in found:
        raise BackupError(f"备份文件 {archive} 不完整（可能被截断）：缺少清单 {MANIFEST}")
    try:
        manifest = json.loads((unpacked / MANIFEST).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise BackupError(f"备份文件 {archive} 的清单无法读取：{error}") from error
    if manifest.get("format") != FORMAT:
        raise BackupError(
            f"{archive} 不是 govdash 备份文件（清单格式为 {manifest.get('format')!r}）"
        )
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BackupError(
            f"备份文件 {archive} 的格式版本为 {manifest.get('format_version')}，"
            f"本程序（{govdash.__version__}）只能恢复版本 {FORMAT_VERSION}：请用较新的 govdash 恢复"
        )
    members = manifest.get("members")
    warehouse = manifest.get("warehouse")
    if (
        not isinstance(members, list)
        or not all(
            isinstance(m, dict)
            and isinstance(m.get("name"), str)
            and isinstance(m.get("role"), str)
            and isinstance(m.get("size"), int)
            and isinstance(m.get("sha256"), str)
            for m in members
        )
        or not (warehouse is None or isinstance(warehouse, dict))
        or not isinstance(manifest.get("config", {}), dict)
    ):
        raise BackupError(f"备份文件 {archive} 的清单内容不完整，无法恢复")
    listed = {str(m["name"]): m for m in members}
    held = None
    if warehouse is not None:
        held = warehouse.get("catalog_file") or f"warehouse/{warehouse.get('version_file')}"
    if held is not None and held not in listed:
        raise BackupError(f"备份文件 {archive} 的清单没有列出数据仓库文件，无法恢复")
    for name, member in listed.items():
        if name not in found:
            raise BackupError(f"备份文件 {archive} 不完整：清单中的 {name} 不在归档中")
        size, sha256 = found[name]
        if size != member["size"] or sha256 != member["sha256"]:
            raise BackupError(f"备份文件 {archive} 已损坏或被改动：{name} 的校验和与清单不符")
    extra = sorted(set(found) - set(listed) - {MANIFEST})
    if extra:
        raise BackupError(f"备份文件 {archive} 含有清单之外的文件：{'、'.join(extra[:5])}")
    return dict(manifest)


def _lay_out(
    unpacked: Path, installation: Path, link_name: str, manifest: dict[str, Any]
) -> list[str]:
    """Arrange the verified members as a data folder; return what the admin should know."""
    notes: list[str] = []
    for member in manifest["members"]:
        name, role = str(member["name"]), str(member["role"])
        if role == "warehouse":
            continue
        target = installation / name
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.replace(unpacked / name, target)
    if manifest.get("warehouse"):
        place_warehouse(unpacked, installation, link_name, manifest["warehouse"])
    config = manifest.get("config") or {}
    if config.get("file"):
        notes.append(
            f"备份时使用的配置文件（原在 {config['source']}）已恢复为数据目录下的 {config['file']}："
            "请让 $GOVDASH_CONFIG（或 --config）指向它，或把它放回原处"
        )
    if manifest.get("hash_key_source") == "env":
        notes.append(
            f"手机号哈希密钥备份时来自 ${KEY_ENV}，已恢复为数据目录下的 hash.key；"
            f"若规定密钥不得放在数据目录，请把它移入环境文件（${KEY_ENV}）并删除 hash.key"
        )
    for env, restored in (
        (ACCOUNTS_ENV, "accounts.json"),
        (AUDIT_ENV, "audit.sqlite3"),
        (PROFILES_ENV, "profiles.json"),
        (ROUNDS_ENV, "rounds.sqlite3"),
    ):
        if os.environ.get(env) and (installation / restored).exists():
            notes.append(
                f"${env} 已设置，指向 {os.environ[env]}：恢复的 {restored} 在数据目录中，只有取消该变量后才会被使用"
            )
    return notes


def _clash(path: Path) -> BackupError:
    return BackupError(f"恢复目标中已有 {path}，与备份中的文件重名：未做任何改动（请先把它移走）")


def _move_into_place(installation: Path, folder: Path, folder_existed: bool) -> None:
    """One rename when the folder is new; else entry by entry, undone if one fails."""
    if not folder_existed:
        os.rename(installation, folder)
        return
    moved: list[tuple[Path, Path]] = []
    try:
        for entry in sorted(installation.iterdir()):
            target = folder / entry.name
            if entry.name == ".streamlit" and target.is_dir():
                for inner in entry.iterdir():
                    if (target / inner.name).exists():
                        raise _clash(target / inner.name)
                    os.rename(inner, target / inner.name)
                    moved.append((target / inner.name, inner))
                continue
            if target.exists() or target.is_symlink():
                raise _clash(target)
            os.rename(entry, target)
            moved.append((target, entry))
    except BaseException:
        for target, entry in reversed(moved):
            os.rename(target, entry)
        raise
