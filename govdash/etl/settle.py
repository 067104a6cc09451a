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
2. Small files merged. Every load writes files of its own (a day's 1,000 tickets, the periods
   it refreshed), and DuckLake pays per file: the first statement of a process that touches a
   table reads each file's footer (at 50M tickets after a month of daily loads: 0.5 s of a
   1,000-row load's statement over the newest month, against 0.1 s once merged), and every
   statement reads each file's statistics from the catalog. When a table has gathered
   COMPACT_AT_FILES files under SMALL_FILE_BYTES they are merged (DuckLake's
   `ducklake_rewrite_data_files` for files whose rows later loads mostly replaced, then
   `ducklake_merge_adjacent_files`; files already big are left alone) as one snapshot
   (`compact`); the rows and every earlier snapshot read as before (time travel keeps the
   files the earlier snapshots name), so what a load costs does not drift with the number of
   loads. A failure leaves the files as they were.
3. This machine's local copies of the newest snapshot (govdash.core.lake, `_localise`).

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
from govdash.core.lake import ALIAS, LakeError
from govdash.core.warehouse import lake_of, writer_lock
from govdash.etl import aggregates
from govdash.etl.load import commit_snapshot, ensure_schema, work_connection

Progress = Callable[[str], None]


# A table's small files are merged once it has this many (each load adds one or two per table
# it writes), and a file under this size counts as small (a city's yearly files are bigger and
# are never rewritten here).
COMPACT_AT_FILES = 32
SMALL_FILE_BYTES = 16_000_000
# A file of which a later load replaced at least this share of rows is rewritten without them
# when its table is compacted (a file with deletions is never merged as it is).
REWRITE_DELETED_SHARE = 0.1


@dataclass
class Settled:
    """What `settle` did: the refresh's snapshot and periods, the tables whose small files were
    merged, the lines to show, and the warnings of a step that failed."""

    snapshot: int | None = None
    periods: list[str] = field(default_factory=list)
    compacted: list[str] = field(default_factory=list)
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
            work: Callable[[duckdb.DuckDBPyConnection], object] = aggregates.upgrade
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


def compact(
    db_path: Path, config: Config, say: Progress, actor: str | None = None
) -> tuple[int | None, list[str]]:
    """Merge the small files of every table that has gathered COMPACT_AT_FILES of them, as one
    snapshot: (its id, the tables), or (None, []) when no table needed it. Under the writer
    lock, like a load."""
    who = actor or os_user()
    with writer_lock(db_path), work_connection(db_path, config) as con:
        info = f"SELECT table_name FROM ducklake_table_info('{ALIAS}') ORDER BY table_name"
        names = [str(row[0]) for row in con.execute(info).fetchall()]
        tables = []
        for name in names:
            found = con.execute(
                f"""SELECT count(*) FROM ducklake_list_files('{ALIAS}', $table)
                WHERE data_file_size_bytes < $small""",
                {"table": name, "small": SMALL_FILE_BYTES},
            ).fetchone()
            if found and found[0] >= COMPACT_AT_FILES:
                tables.append(name)
        if not tables:
            return None, []
        say(f"合并小文件（{'、'.join(tables)}）…")
        con.execute("BEGIN TRANSACTION")
        try:
            merged = []
            for name in tables:
                # Files whose rows a later load mostly replaced (a day's tickets, closed the
                # next day), rewritten without them; then the small files left, merged.
                results = con.execute(
                    f"""CALL ducklake_rewrite_data_files('{ALIAS}', $table,
                        delete_threshold => $share)""",
                    {"table": name, "share": REWRITE_DELETED_SHARE},
                ).fetchall()
                results += con.execute(
                    f"""CALL ducklake_merge_adjacent_files('{ALIAS}', $table,
                        max_file_size => $small)""",
                    {"table": name, "small": SMALL_FILE_BYTES},
                ).fetchall()
                if results:
                    merged.append(name)
            if not merged:
                con.execute("ROLLBACK")
                return None, []
            snapshot = commit_snapshot(con, "compact", who, details={"tables": merged})
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            raise
    return snapshot, merged


def settle(
    db_path: Path,
    config: Config,
    say: Progress,
    actor: str | None = None,
    local_copies: bool = True,
) -> Settled:
    """The steps after a published load (the CLI's `govdash load`, the data page's upload)."""
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
    try:
        compacted, done.compacted = compact(db_path, config, say, actor)
    except (duckdb.Error, LakeError, OSError) as error:
        done.warnings.append(f"⚠ 小文件未能合并（数据不受影响，下次加载后再合并）：{error}")
    else:
        if compacted is not None:
            done.lines.append(
                f"已合并{'、'.join(done.compacted)}的小文件，发布为快照 #{compacted}（数据不变）。"
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
