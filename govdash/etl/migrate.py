"""An old release's single-file warehouse (`warehouse.duckdb` → a version file) into the lake.

Every table the lake has is copied from the old file — the columns both have; a column the old
file lacks stays NULL, as the old release read it — in ONE lake transaction, published as one
snapshot with the commit message `migrate`; stored aggregates (agg_*) of another definition
or as-of time are built anew in the same transaction. The old file is left where it is.

DuckDB 1.5.5 cannot read files written by DuckDB 2.x ("version number 999"): then the message
says so and `govdash migrate` rebuilds from the originals in data/raw instead.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from govdash.core.audit import os_user
from govdash.core.config import Config
from govdash.core.lake import ALIAS
from govdash.core.warehouse import writer_lock
from govdash.etl import aggregates
from govdash.etl.load import _lake_tables, commit_snapshot, ensure_schema, work_connection


class MigrationError(RuntimeError):
    """The old file cannot be copied; the message, in Chinese, says why and what happens next."""


def migrate(source: Path, db_path: Path, config: Config, actor: str | None = None) -> int:
    """Copy the old warehouse file `source` into the (empty) lake; the snapshot it became."""
    if not source.is_file():
        raise MigrationError(f"旧数据仓库文件不存在：{source}。")
    with writer_lock(db_path), work_connection(db_path, config) as con:
        try:
            quoted = str(source.resolve()).replace("'", "''")
            con.execute(f"ATTACH '{quoted}' AS old (READ_ONLY)")
        except duckdb.Error as error:
            if "version number" in str(error):
                raise MigrationError(
                    f"旧文件 {source} 由较新的 DuckDB（2.x）写成，本版本的 DuckDB 1.5.5 无法直接读取；"
                    "改为用 data/raw 中保存的原始文件重建（与 govdash rebuild 相同）。"
                    "若要保留旧文件中无原始文件的数据，请先在旧版本中把它另存为 1.5 可读的格式"
                    "（README“迁移”一节），再运行 govdash migrate --from 该文件。"
                ) from error
            raise MigrationError(f"无法读取旧文件 {source}：{error}") from error
        con.execute("BEGIN TRANSACTION")
        try:
            ensure_schema(con)
            for table in _lake_tables(con):
                old = {
                    str(name)
                    for (name,) in con.execute(
                        "SELECT column_name FROM duckdb_columns() WHERE database_name = 'old' "
                        "AND schema_name = 'main' AND table_name = $t",
                        {"t": table},
                    ).fetchall()
                }
                columns = [
                    str(name)
                    for (name,) in con.execute(
                        "SELECT column_name FROM duckdb_columns() WHERE database_name = $db "
                        "AND table_name = $t ORDER BY column_index",
                        {"db": ALIAS, "t": table},
                    ).fetchall()
                    if str(name) in old
                ]
                if columns:
                    names = ", ".join(f'"{c}"' for c in columns)
                    con.execute(
                        f'INSERT INTO {ALIAS}.main."{table}" ({names}) '
                        f'SELECT {names} FROM old.main."{table}"'
                    )
            if not aggregates.current(con):  # an older release's, or none: built here
                aggregates.upgrade(con)
            return commit_snapshot(con, "migrate", actor or os_user())
        except BaseException:
            con.execute("ROLLBACK")
            raise
