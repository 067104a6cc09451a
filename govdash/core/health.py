"""What `govdash status` reports about an installation, and what would stop it working.

`inspect` reads; it never creates or repairs anything (the hash key, the session key and the
stores are made on first use elsewhere — a check that made them would hide the loss it is
meant to report). Every check adds a `Finding` to `problems` (the app cannot work, or will
silently do harm: `--check` exits non-zero) or to `warnings` (worth a look, nothing breaks).
A new kind of state (backups, a DuckLake catalog) adds its facts to `Health` and one check
function to `CHECKS`; the warehouse is read in one place, `_read_warehouse`.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sqlite3
import stat
from collections.abc import Callable
from contextlib import closing, suppress
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import duckdb

from govdash.core.accounts import accounts_path
from govdash.core.audit import audit_path
from govdash.core.config import Config
from govdash.core.lake import Lake, LakeError
from govdash.core.sessions import sessions_path
from govdash.core.signin import SignInUnavailable, local_accounts
from govdash.core.warehouse import (
    KEY_ENV,
    data_dir,
    hash_key_path,
    lake_of,
    legacy_message,
    legacy_warehouse,
    warehouse_location,
)

PACKAGES = ("govdash", "streamlit", "duckdb", "pandas", "plotly")
TABLES = (
    "compounds",
    "tickets",
    "survey_responses",
    "survey_answers",
    "evaluation_scores",
    "evaluation_adjustments",
    "load_batches",
    "rejected_rows",
)
MB = 1024 * 1024
MIN_KEY_LENGTH = 32  # both keys are written as 64 hex characters


@dataclass(frozen=True)
class Finding:
    check: str  # data_dir, warehouse, accounts, hash_key, session_store, audit_log, disk
    message: str  # Chinese, saying what is wrong and what to do


@dataclass
class Health:
    db_path: str
    data_dir: str
    versions: dict[str, str]
    warehouse: dict[str, Any] | None = None  # version file, schema version, as-of, row counts
    last_load: dict[str, Any] | None = None
    last_backup: dict[str, Any] | None = None  # from the audit log: at, actor, target, bytes
    accounts: dict[str, Any] = field(default_factory=dict)  # mode, count
    hash_key: dict[str, Any] = field(default_factory=dict)  # source
    disk: dict[str, Any] = field(default_factory=dict)
    problems: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)
    # Read from the warehouse for the checks, not reported: tickets carrying a caller hash.
    _hashed_tickets: int = field(default=0, repr=False)

    @property
    def ok(self) -> bool:
        return not self.problems

    def problem(self, check: str, message: str) -> None:
        self.problems.append(Finding(check, message))

    def warn(self, check: str, message: str) -> None:
        self.warnings.append(Finding(check, message))

    def to_json(self) -> dict[str, Any]:
        document = asdict(self)
        document.pop("_hashed_tickets")
        return {"ok": self.ok, **document}


def package_versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "未安装"
    return found


def inspect(db_path: Path, config: Config, oidc_configured: bool = False) -> Health:
    """Everything `govdash status` prints, with the problems and warnings found."""
    location = warehouse_location(db_path)
    folder = data_dir(location)
    health = Health(str(location), str(folder), package_versions())
    for check in CHECKS:
        check(health, location, config, oidc_configured)
    return health


# --- the checks, in the order they are reported -----------------------------------------------


def _check_data_dir(health: Health, db: Path, config: Config, oidc: bool) -> None:
    folder = Path(health.data_dir)
    if not folder.is_dir():
        health.problem(
            "data_dir",
            f"数据目录不存在：{folder}。请检查 --db / $GOVDASH_DB，或先运行 govdash load。",
        )
    elif not os.access(folder, os.R_OK | os.W_OK | os.X_OK):
        health.problem(
            "data_dir",
            f"无法读写数据目录 {folder}（权限不足）。请以拥有该目录的系统用户运行（服务用户 govdash）。",
        )
    elif folder.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        health.warn(
            "data_dir",
            f"数据目录 {folder} 对其他系统用户开放（权限 {stat.filemode(folder.stat().st_mode)}）；"
            f"其中的 raw/ 原始文件含个人信息，建议 chmod 700 {folder}。",
        )


def _check_warehouse(health: Health, db: Path, config: Config, oidc: bool) -> None:
    try:
        lake = lake_of(db)
        snapshot = lake.current_snapshot()
    except LakeError as error:
        health.problem("warehouse", str(error))
        return
    if snapshot is None:
        legacy = legacy_warehouse(db)
        if legacy is not None:
            health.problem("warehouse", legacy_message(db, legacy))
        else:
            health.problem(
                "warehouse",
                f"数据仓库不存在：{db}（目录 {lake.describe()}）。"
                "请先运行 govdash load（或 govdash demo）加载数据。",
            )
        return
    try:
        health.warehouse, health.last_load, health._hashed_tickets = _read_warehouse(
            lake, snapshot
        )
    except (duckdb.Error, OSError, LakeError) as error:
        health.problem(
            "warehouse",
            f"无法读取数据仓库快照 #{snapshot}（{lake.describe()}）：{error}。"
            "请检查目录与数据文件的权限，或运行 govdash rebuild 从原始文件重建。",
        )
        return
    health.warehouse = {
        "path": str(db),
        "catalog": lake.identity,
        "data_path": lake.data_path,
        "snapshot": snapshot,
        **health.warehouse,
    }


def _lake_size(lake: Lake) -> int:
    """Bytes of the catalog (embedded) and the data files (a local data path)."""
    total = 0
    if lake.embedded:
        for suffix in ("", "-wal"):
            with suppress(OSError):
                total += Path(lake.target + suffix).stat().st_size
    if "://" not in lake.data_path:
        for folder, _, names in os.walk(lake.data_path):
            for name in names:
                with suppress(OSError):
                    total += (Path(folder) / name).stat().st_size
    return total


def _read_warehouse(lake: Lake, snapshot: int) -> tuple[dict[str, Any], dict[str, Any] | None, int]:
    """(facts, the last load, tickets with a caller hash) of one snapshot."""
    con = lake.reader(snapshot)
    try:
        info = dict(con.execute("SELECT key, value FROM warehouse_info").fetchall())
        counts = {}
        for table in TABLES:
            row = con.execute(f"SELECT count(*) FROM {table}").fetchone()
            counts[table] = int(row[0]) if row else 0
        hashed = con.execute("SELECT count(*) FROM tickets WHERE caller_hash IS NOT NULL")
        hashed_row = hashed.fetchone()
        last = con.execute(
            "SELECT * FROM load_batches ORDER BY loaded_at DESC, batch_id DESC LIMIT 1"
        )
        columns = [column[0] for column in last.description or []]
        last_row = last.fetchone()
        made = con.execute(
            "SELECT snapshot_time, commit_message FROM lake.snapshots() WHERE snapshot_id = $n",
            {"n": snapshot},
        ).fetchone()
    finally:
        con.close()
    last_load = None
    if last_row is not None:
        batch = dict(zip(columns, last_row, strict=True))
        last_load = {
            "batch_id": batch.get("batch_id"),
            "file_name": batch.get("file_name"),
            "loaded_at": str(batch.get("loaded_at")),
            "loaded_by": batch.get("loaded_by"),
            "rows_loaded": batch.get("rows_loaded"),
        }
    facts = {
        "schema_version": info.get("schema_version"),
        "updated_at": info.get("updated_at"),
        "as_of": info.get("as_of"),
        "size_bytes": _lake_size(lake),
        "snapshot_at": str(made[0].replace(tzinfo=None) if made else ""),
        "snapshot_message": made[1] if made else None,
        "tables": counts,
    }
    return facts, last_load, int(hashed_row[0]) if hashed_row else 0


def _check_accounts(health: Health, db: Path, config: Config, oidc: bool) -> None:
    try:
        store = local_accounts(db, config.require_sign_in, oidc)
    except (SignInUnavailable, sqlite3.Error) as error:
        health.accounts = {"mode": "unavailable", "count": None, "path": str(accounts_path(db))}
        if isinstance(error, sqlite3.Error):  # the audit log, consulted when no accounts exist
            message = (
                f"无法读取审计日志 {audit_path(db)}（{error}），因而无法确认是否曾建立本地账号；"
                "看板会拒绝提供服务。请从备份恢复该文件。"
            )
        else:
            message = str(error)
        health.problem("accounts", message)
        return
    count = len(store.accounts()) if store is not None else 0
    mode = "local" if store is not None else "oidc" if oidc else "single_user"
    health.accounts = {"mode": mode, "count": count, "oidc": oidc, "path": str(accounts_path(db))}
    if mode == "single_user":
        health.warn(
            "accounts",
            "没有本地账号，也没有配置统一身份认证：看板以本地单用户模式运行，能打开网址的人都能使用全部功能。"
            "服务器上请先用 govdash users add 建立管理员账号（或设置 access.require_sign_in = true）。",
        )


def _check_hash_key(health: Health, db: Path, config: Config, oidc: bool) -> None:
    if os.environ.get(KEY_ENV):
        health.hash_key = {"source": "environment", "variable": KEY_ENV}
        if len(os.environ[KEY_ENV].strip()) < MIN_KEY_LENGTH:
            health.problem("hash_key", f"${KEY_ENV} 太短（少于 {MIN_KEY_LENGTH} 个字符）。")
        return
    path = hash_key_path(db)
    health.hash_key = {"source": "file", "path": str(path), "exists": path.exists()}
    if not path.exists() and not path.is_symlink():
        if health._hashed_tickets:
            health.problem(
                "hash_key",
                f"电话号码散列密钥 {path} 不存在，而数据仓库中已有 {health._hashed_tickets:,} "
                "条带来电号码散列的工单：下一次加载会生成新密钥，此后同一居民的重复诉求再也无法与这些工单匹配。"
                f"请先从备份恢复 hash.key（或设置 ${KEY_ENV}），再加载数据。",
            )
        return
    try:
        key = path.read_text().strip()
    except (OSError, UnicodeDecodeError) as error:
        health.problem(
            "hash_key",
            f"无法读取电话号码散列密钥 {path}：{error}。请检查权限（应为服务用户所有、0600），"
            "或从备份恢复该文件。",
        )
        return
    if len(key) < MIN_KEY_LENGTH:
        health.problem(
            "hash_key",
            f"电话号码散列密钥 {path} 不完整（{len(key)} 个字符）。请从备份恢复该文件。",
        )


def _check_stores(health: Health, db: Path, config: Config, oidc: bool) -> None:
    """The audit log and the sign-in sessions: made on first use, so only a file that exists
    and cannot be read is a problem (every sign-in reads both)."""
    for check, path in (("audit_log", audit_path(db)), ("session_store", sessions_path(db))):
        if not path.exists():
            continue
        try:
            uri = f"{path.resolve().as_uri()}?mode=ro"
            with closing(sqlite3.connect(uri, uri=True, timeout=5)) as con:
                con.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.Error as error:
            health.problem(check, f"无法读取 {path}：{error}。请检查权限，或从备份恢复该文件。")
            continue
        if check == "audit_log":
            health.last_backup = _last_backup(path)
    key_path = sessions_path(db).with_name("session.key")
    if key_path.exists():
        try:
            usable = len(key_path.read_text().strip()) >= MIN_KEY_LENGTH
            reason = "不完整"
        except (OSError, UnicodeDecodeError) as error:
            usable, reason = False, str(error)
        if not usable:
            health.problem(
                "session_store",
                f"登录会话签名密钥 {key_path} 无法使用（{reason}），本地账号无法登录。"
                "删除该文件后重启看板会生成新密钥（所有人需重新登录）。",
            )


def _last_backup(path: Path) -> dict[str, Any] | None:
    """The newest `govdash backup` in the audit log (read-only; None when there is none)."""
    try:
        uri = f"{path.resolve().as_uri()}?mode=ro"
        with closing(sqlite3.connect(uri, uri=True, timeout=5)) as con:
            row = con.execute(
                "SELECT at, actor, target, detail FROM audit_events WHERE action = 'backup' "
                "ORDER BY event_id DESC LIMIT 1"
            ).fetchone()
    except sqlite3.Error:  # an older log without the table: no backup recorded
        return None
    if row is None:
        return None
    detail = json.loads(row[3] or "{}")
    return {"at": row[0], "actor": row[1], "target": row[2], "bytes": detail.get("bytes")}


def _check_disk(health: Health, db: Path, config: Config, oidc: bool) -> None:
    folder = Path(health.data_dir)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    usage = shutil.disk_usage(folder)
    threshold = int(config.min_free_disk_mb * MB)
    needed = threshold
    health.disk = {
        "path": str(folder),
        "free_bytes": usage.free,
        "total_bytes": usage.total,
        "threshold_bytes": threshold,
        "needed_bytes": needed,
    }
    if usage.free < needed:
        because = f"配置项 server.min_free_disk_mb = {config.min_free_disk_mb:g}"
        health.problem(
            "disk",
            f"数据目录所在磁盘 {folder} 只剩 {format_bytes(usage.free)}，少于 {format_bytes(needed)}"
            f"（{because}）。请清理磁盘或扩容，否则加载会失败。",
        )


CHECKS: tuple[Callable[[Health, Path, Config, bool], None], ...] = (
    _check_data_dir,
    _check_warehouse,
    _check_accounts,
    _check_hash_key,
    _check_stores,
    _check_disk,
)


# --- the text `govdash status` prints ---------------------------------------------------------


def format_bytes(count: int) -> str:
    value = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


def format_text(health: Health) -> str:
    versions = health.versions
    lines = [
        f"govdash {versions['govdash']}（Python {versions['python']}，"
        f"Streamlit {versions['streamlit']}，DuckDB {versions['duckdb']}）",
        f"数据目录：{health.data_dir}",
    ]
    warehouse = health.warehouse
    if warehouse is not None:
        lines.append(
            f"数据仓库：{warehouse['path']} → 数据快照 #{warehouse['snapshot']}"
            f"（{warehouse['snapshot_at'][:16]}；目录 {warehouse['catalog']}；结构版本 {warehouse['schema_version']}，更新于 {warehouse['updated_at']}，"
            f"数据截至 {warehouse['as_of']}，{format_bytes(warehouse['size_bytes'])}）"
        )
    else:
        lines.append(f"数据仓库：{health.db_path}（不可用）")
    last = health.last_load
    if last is not None:
        lines.append(
            f"最近一次加载：{last['loaded_at']}，{last['loaded_by'] or '（未记录操作人）'}，"
            f"{last['file_name']}（批次 {last['batch_id']}，{last['rows_loaded']:,} 行）"
        )
    backup = health.last_backup
    lines.append(
        f"最近一次备份：{backup['at']}，{backup['actor']}，{backup['target']}"
        if backup is not None
        else "最近一次备份：无记录（govdash backup）"
    )
    accounts = health.accounts
    mode = accounts.get("mode")
    lines.append(
        "账号："
        + {
            "local": f"{accounts.get('count')} 个本地账号"
            + ("，另有统一身份认证" if accounts.get("oidc") else ""),
            "oidc": "统一身份认证（无本地账号）",
            "single_user": "无（本地单用户模式）",
        }.get(str(mode), "无法确认")
    )
    key = health.hash_key
    if key:
        lines.append(
            "散列密钥："
            + (
                f"${key['variable']}"
                if key.get("source") == "environment"
                else key["path"] + ("" if key.get("exists") else "（尚未生成，首次加载时生成）")
            )
        )
    disk = health.disk
    lines.append(
        f"磁盘：剩余 {format_bytes(disk['free_bytes'])} / 共 {format_bytes(disk['total_bytes'])}"
        f"（至少需要 {format_bytes(disk['needed_bytes'])}）"
    )
    if warehouse is not None:
        for table, count in warehouse["tables"].items():
            lines.append(f"  {table:<24}{count:>12,}")
    for finding in health.problems:
        lines.append(f"✗ [{finding.check}] {finding.message}")
    for finding in health.warnings:
        lines.append(f"⚠ [{finding.check}] {finding.message}")
    lines.append(
        "检查通过。"
        if health.ok
        else f"发现 {len(health.problems)} 个问题，看板或加载无法正常工作。"
    )
    return "\n".join(lines)
