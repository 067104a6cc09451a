"""Where the warehouse lives and how a new version is published beside running readers.

The path users name (`data/warehouse.duckdb`) is a symlink to one immutable version file in
`data/warehouse.duckdb.versions/`. A load copies the current version, writes the copy in one
transaction, closes it, and swaps the symlink with os.replace: readers never see a half-written
file, never meet DuckDB's write lock, and pick up the new version by its resolved path.

Everything an installation keeps beside the warehouse — the versions, the originals (`raw/`),
the phone-hash key, accounts, the audit log, sign-in sessions — is found from ONE path, the
published link, made absolute by `warehouse_location`. A --db given relative, through a
symlink of its own, or as the version file the link points to means the same installation.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import duckdb

DB_ENV = "GOVDASH_DB"
KEY_ENV = "GOVDASH_HASH_KEY"
DEFAULT_DB = Path("data") / "warehouse.duckdb"
VERSIONS_SUFFIX = ".versions"
_MAX_LINKS = 40  # a longer chain of symlinks is a loop


class WarehouseLocationError(OSError):
    """The path cannot name a warehouse (a loop of symlinks); the message says which."""


def warehouse_location(path: Path | str) -> Path:
    """The warehouse as users name it: the published link, absolute — never a version file.

    Follows symlinks the user made (a link to the link), stops at the published link (a
    symlink into its own `.versions` folder), and maps a version file back to its link.
    Nothing else is resolved: a folder reached through a symlink keeps the spelling given.
    """
    location = Path(os.path.abspath(path))
    for _ in range(_MAX_LINKS):
        folder = location.parent
        if folder.name.endswith(VERSIONS_SUFFIX) and len(folder.name) > len(VERSIONS_SUFFIX):
            link = folder.parent / folder.name[: -len(VERSIONS_SUFFIX)]
            if link.is_symlink() or link.is_file():  # a version file: its link names the warehouse
                return link
        if not location.is_symlink():
            return location
        target = Path(os.path.abspath(folder / os.readlink(location)))
        if target.parent == _versions_folder(location):  # the published link itself
            return location
        location = target
    raise WarehouseLocationError(f"数据仓库路径 {path} 的符号链接形成了循环，无法确定仓库位置")


def default_db_path() -> Path:
    """$GOVDASH_DB, else data/warehouse.duckdb, as its canonical location."""
    return warehouse_location(os.environ.get(DB_ENV) or DEFAULT_DB)


def _versions_folder(location: Path) -> Path:
    return location.with_name(location.name + VERSIONS_SUFFIX)


def versions_dir(db_path: Path) -> Path:
    return _versions_folder(warehouse_location(db_path))


def data_dir(db_path: Path) -> Path:
    """The folder everything beside the warehouse lives in."""
    return warehouse_location(db_path).parent


def raw_dir(db_path: Path) -> Path:
    """Originals as loaded, by content hash (they hold personal data: keep the folder private)."""
    return data_dir(db_path) / "raw"


def hash_key_path(db_path: Path) -> Path:
    return data_dir(db_path) / "hash.key"


def current_version(db_path: Path) -> Path | None:
    """The version file readers should open now, or None when nothing was ever published."""
    location = warehouse_location(db_path)
    if location.is_symlink() or location.is_file():
        resolved = location.resolve()
        return resolved if resolved.is_file() else None
    return None


def connect_readonly(db_path: Path) -> duckdb.DuckDBPyConnection:
    version = current_version(db_path)
    if version is None:
        raise FileNotFoundError(
            f"数据仓库不存在：{db_path}（请先运行 govdash load 或 govdash demo）"
        )
    return duckdb.connect(str(version), read_only=True)


def hash_key(db_path: Path) -> str:
    """The key of the phone-number hash: $GOVDASH_HASH_KEY, else a private file beside the db.

    It is never written into the database, so the warehouse alone cannot be used to test
    whether a given phone number called.
    """
    from_env = os.environ.get(KEY_ENV)
    if from_env:
        return from_env
    key_file = hash_key_path(db_path)
    if not key_file.exists():
        key_file.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_hex(32))
    return key_file.read_text().strip()


@contextmanager
def writer_lock(db_path: Path) -> Iterator[None]:
    """One loader at a time per warehouse; a second one waits."""
    db_path = warehouse_location(db_path)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = db_path.with_name(db_path.name + ".lock")
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def new_version(db_path: Path, keep: int = 3, fresh: bool = False) -> Iterator[Path]:
    """Yield a private copy of the current version to write; publish it if the block succeeds.

    On any exception (or if the process dies) the copy is discarded and the published
    warehouse is exactly as it was. `fresh` starts from an empty file instead of a copy.
    """
    with writer_lock(db_path):
        folder = versions_dir(db_path)
        folder.mkdir(parents=True, exist_ok=True)
        _remove_stale_temporaries(folder)
        stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
        target = folder / f"v{stamp}-{secrets.token_hex(3)}.duckdb"
        work = target.with_suffix(".tmp")
        source = current_version(db_path)
        if source is not None and not fresh:
            shutil.copyfile(source, work)
        try:
            yield work
            shutil.rmtree(Path(str(work) + ".tmp"), ignore_errors=True)
            os.replace(work, target)
            _publish(db_path, target)
        except BaseException:
            for leftover in (work, Path(str(work) + ".wal")):
                leftover.unlink(missing_ok=True)
            shutil.rmtree(Path(str(work) + ".tmp"), ignore_errors=True)
            raise
        _prune(folder, keep=keep, current=target)


def _publish(db_path: Path, target: Path) -> None:
    if db_path.exists() and not db_path.is_symlink():
        # A plain database file from elsewhere: keep it as a version, then link.
        adopted = versions_dir(db_path) / f"adopted-{secrets.token_hex(3)}.duckdb"
        os.replace(db_path, adopted)
    link = db_path.with_name(f".{db_path.name}.{secrets.token_hex(4)}.link")
    os.symlink(os.path.relpath(target, db_path.parent), link)
    os.replace(link, db_path)


def _remove_stale_temporaries(folder: Path) -> None:
    """Work files of loads that died (and DuckDB's spill folders beside them)."""
    for leftover in folder.glob("*.tmp*"):
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)


def _prune(folder: Path, keep: int, current: Path) -> None:
    """Keep the newest versions; readers holding an older file keep their open handle."""
    versions = sorted(folder.glob("*.duckdb"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in versions[keep + 1 :]:
        if old != current:
            old.unlink(missing_ok=True)
