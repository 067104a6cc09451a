"""Where the warehouse lives, and read-only connections to one snapshot of it.

The path users name (`data/warehouse.duckdb`, or $GOVDASH_DB) names the installation. The
warehouse itself is a DuckLake (govdash/core/lake.py): embedded, its catalog is
`data/warehouse.sqlite` and its Parquet files are in `data/warehouse.files/`; for replicas,
$GOVDASH_CATALOG and $GOVDASH_DATA_PATH name a shared one. A load is one lake transaction,
published as one snapshot; readers open one snapshot and never see a half load.

Everything an installation keeps beside the warehouse — the catalog, the originals (`raw/`),
the phone-hash key, accounts, the audit log, sign-in sessions — is found from ONE path, made
absolute by `warehouse_location`. A --db given relative or through a symlink of its own means
the same installation. An old release's `warehouse.duckdb` link into `warehouse.duckdb.versions/`
is still recognised (and its version file mapped back to it) so the migration can find it.
"""

from __future__ import annotations

import fcntl
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from govdash.core.lake import Lake

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


def lake_of(db_path: Path) -> Lake:
    """The DuckLake of the warehouse named by `db_path` (embedded beside it, or the shared one
    $GOVDASH_CATALOG / $GOVDASH_DATA_PATH name)."""
    return Lake.from_location(warehouse_location(db_path))


def current_snapshot(db_path: Path) -> int | None:
    """The snapshot readers should open now, or None when nothing was ever published."""
    return lake_of(db_path).current_snapshot()


def legacy_warehouse(db_path: Path) -> Path | None:
    """An old single-file warehouse (`warehouse.duckdb` → `.versions/…`) with no lake beside
    it yet: the version file it points to, for the migration message."""
    location = warehouse_location(db_path)
    if location.suffix != ".duckdb" or not (location.is_symlink() or location.is_file()):
        return None
    if lake_of(db_path).current_snapshot() is not None:
        return None
    resolved = location.resolve()
    return resolved if resolved.is_file() else None


class LegacyWarehouseError(FileNotFoundError):
    """The installation still has an old single-file warehouse; the message says what to do."""


def legacy_message(db_path: Path, version: Path) -> str:
    return (
        f"这里是旧版单文件数据仓库（{version}），新版本的数据仓库改为 DuckLake（目录 + Parquet 数据文件），"
        f"需要迁移一次：运行 govdash migrate --db {warehouse_location(db_path)}，"
        f"它尝试直接读取旧文件；旧文件若由 DuckDB 2.x 写成（本版本读不了），它会改为用 data/raw 中保存的原始文件"
        "重建（govdash rebuild 同样可行）。旧文件不会被删除。"
    )


def check_not_legacy(db_path: Path) -> None:
    """Raise LegacyWarehouseError when only an old single-file warehouse is there."""
    version = legacy_warehouse(db_path)
    if version is not None:
        raise LegacyWarehouseError(legacy_message(db_path, version))


def connect_readonly(db_path: Path, snapshot: int | None = None) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the warehouse at `snapshot` (default: the current one).

    Unqualified table names read the lake at that snapshot, from the connection and from its
    cursors; a later load does not change what it sees.
    """
    lake = lake_of(db_path)
    if snapshot is None:
        snapshot = lake.current_snapshot()
        if snapshot is None:
            check_not_legacy(db_path)
            raise FileNotFoundError(
                f"数据仓库不存在：{db_path}（请先运行 govdash load 或 govdash demo）"
            )
    elif snapshot <= 0 or lake.snapshot(snapshot) is None:
        latest = lake.current_snapshot()
        raise SnapshotNotFoundError(
            f"数据仓库中没有快照 #{snapshot}"
            + (f"（现有快照至 #{latest}；较早的快照可能已按保留期清理）" if latest else "（仓库为空）")
        )
    return lake.reader(snapshot)


class SnapshotNotFoundError(LookupError):
    """A snapshot id that the warehouse does not hold (never made, or expired)."""


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
