"""After a load publishes: the work that makes its snapshot quick to read, done once by the
loader instead of by the pages' first reader.

1. The periods the load left stale. A load recomputes the stored figures of the periods it
   touched, but a quarter or year over its budget (aggregates.LOAD_ROW_GROUPINGS: at a city's
   size, every quarter and year), or a month far bigger than the load (MONTH_LOAD_FACTOR: a
   few corrections to a city's month), is only marked stale, so that a 1,000-row load stays
   quick; the pages then read those periods from the raw tickets (correct, but 2–10× the
   work at 10M tickets). They are computed here in a second lake transaction, published as
   its own snapshot (`refresh`): the load's snapshot is already served meanwhile, and a
   refresh that fails or is killed leaves both the load and the stale marks as they were
   (the next load's settle tries again).
   Stored figures of another release's definition (after an upgrade, read raw until then)
   are built anew the same way, every period (`govdash migrate` runs this on a lake).
2. This machine's local copies of the newest snapshot (govdash.core.lake, `_localise`).

Each step is optional to the data's correctness, so a failure is reported, never raised.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb

from govdash.core.audit import AuditLog, audit_path, os_user
from govdash.core.config import Config
from govdash.core.lake import LakeError
from govdash.core.warehouse import lake_of, writer_lock
from govdash.etl import aggregates
from govdash.etl.load import commit_snapshot, ensure_schema, work_connection

Progress = Callable[[str], None]


@dataclass
class Settled:
    """What `settle` did: the refresh's snapshot and periods, the local copies' line, and the
    warnings of a step that failed."""

    snapshot: int | None = None
    periods: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


ALL_PERIODS = "全部时段"


def period_name(kind: str, start: date) -> str:
    """2025年, 2025年第4季度 (the names the loader's messages use)."""
    if kind == "quarter":
        return f"{start.year}年第{(start.month - 1) // 3 + 1}季度"
    if kind == "year":
        return f"{start.year}年"
    return f"{start.year}年{start.month}月"


def refresh_stale(
    db_path: Path, config: Config, say: Progress, actor: str | None = None
) -> tuple[int | None, list[str]]:
    """Compute the stale periods and publish them as one snapshot: (its id, the
    periods' names), or (None, []) when nothing was stale. Waits for a load in progress (the
    writer lock), and reads the stale marks under it, so it never undoes a later load's."""
    who = actor or os_user()
    with writer_lock(db_path), work_connection(db_path, config) as con:
        if not aggregates.current(con):
            # Figures of another release's definition (an upgrade): read raw until built anew.
            names = [ALL_PERIODS]
            work: Callable[[duckdb.DuckDBPyConnection], object] = aggregates.build_all
            say("按本版本的定义重算全部汇总 …")
        else:
            stale = con.execute(
                "SELECT period_kind, period_start FROM agg_stale_periods ORDER BY ALL"
            ).fetchall()
            if not stale:
                return None, []
            names = [period_name(str(kind), start) for kind, start in stale]
            work = aggregates.refresh_stale
            say(f"补算汇总（{'、'.join(names)}）…")
        con.execute("BEGIN TRANSACTION")
        try:
            ensure_schema(con)  # the tables a newer release keeps its figures in
            work(con)
            snapshot = commit_snapshot(con, "refresh", who, details={"periods": names})
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            raise
    try:
        AuditLog(audit_path(db_path)).record(
            who,
            "figures_refreshed",
            target="agg_units",
            detail={"snapshot": snapshot, "periods": names},
            method="loader",
        )
    except sqlite3.Error as error:
        say(f"⚠ 审计日志写入失败：{error}")
    return snapshot, names


def settle(
    db_path: Path,
    config: Config,
    say: Progress,
    actor: str | None = None,
    local_copies: bool = True,
) -> Settled:
    """Both steps after a published load (the CLI's `govdash load`, the data page's upload)."""
    done = Settled()
    try:
        done.snapshot, done.periods = refresh_stale(db_path, config, say, actor)
    except (duckdb.Error, LakeError, OSError) as error:
        done.warnings.append(
            f"⚠ 汇总未能补算（页面照常显示，这些时段改为直接统计工单，较慢；"
            f"下次加载时再补算）：{error}"
        )
    else:
        if done.snapshot is not None:
            done.lines.append(
                f"已补算{'、'.join(done.periods)}的汇总，发布为快照 #{done.snapshot}。"
            )
    if local_copies:
        try:
            lake = lake_of(db_path)
            snapshot = lake.current_snapshot()
            say("生成本机的本地副本 …")
            copies = lake.prepare_local_copies(snapshot)
        except (LakeError, OSError, duckdb.Error) as error:
            done.warnings.append(
                f"⚠ 本机的本地副本未能生成（服务器首次打开新数据时再生成）：{error}"
            )
        else:
            reused = len(copies.copied) - len(copies.built)
            done.lines.append(
                f"本地副本（快照 #{snapshot}，{lake.local}）：新建 {len(copies.built)} 张表、"
                f"沿用 {reused} 张，{len(copies.views)} 张直接读取数据仓库。"
            )
    return done
