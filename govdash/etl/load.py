"""Load spreadsheet files into the warehouse: read, recognise, clean, upsert, publish."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from pathlib import Path

import duckdb
import pyarrow as pa

from govdash import __version__
from govdash.core.audit import AuditLog, audit_path, os_user
from govdash.core.config import Config
from govdash.core.warehouse import (
    current_version,
    hash_key,
    new_version,
    raw_dir,
    warehouse_location,
)
from govdash.etl.clean import (
    CLOSED_STATUS_LIST,
    Cleaner,
    create_bad_rows,
    install_macros,
    refresh_unit_levels,
)
from govdash.etl.errors import LoadError
from govdash.etl.fields import EVALUATION, FIELDS, KIND_LABELS, REGISTER, SURVEY, TICKETS
from govdash.etl.locate import HeaderLocator, LocatedSheet, kind_fields, staged_table
from govdash.etl.readers import SPREADSHEET_SUFFIXES, RawSheet, ReadLimits, constant_text, read_file
from govdash.etl.sla import prepare_working_days, sla_case

Progress = Callable[[str], None]
# Per kind: the union of a file's staged sheets, the fields present, (sheet, field, header).
Staged = dict[str, tuple[pa.Table, set[str], list[tuple[str, str, str]]]]
KIND_ORDER = (REGISTER, TICKETS, SURVEY, EVALUATION)  # the register first: others look it up


@dataclass
class SheetReport:
    name: str
    kind: str | None
    rows_read: int = 0
    rows_skipped: int = 0
    skipped_reason: str = ""
    unused_columns: list[str] = field(default_factory=list)
    header_hint: tuple[int, str] | None = None  # (Excel row, its cells) of a sheet not recognised


@dataclass
class FileReport:
    path: Path
    name: str = ""  # the name the clerk knows (uploads and rebuilds load copies)
    sha256: str = ""
    batch_id: int | None = None
    sheets: list[SheetReport] = field(default_factory=list)
    rows_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    rows_skipped: int = 0
    rows_inserted: int = 0
    rows_updated: int = 0
    rows_unchanged: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    error: str | None = None
    already_loaded_as: int | None = None
    seconds: float = 0.0

    @property
    def kinds(self) -> list[str]:
        return sorted({s.kind for s in self.sheets if s.kind}, key=KIND_ORDER.index)


@dataclass
class LoadReport:
    files: list[FileReport]
    version: Path | None = None

    @property
    def ok(self) -> bool:
        return all(f.error is None for f in self.files)


# In a folder only spreadsheets count (a 说明.txt beside them is not data); a .txt named
# explicitly is read as CSV.
FOLDER_SUFFIXES = tuple(s for s in SPREADSHEET_SUFFIXES if s != ".txt")


WORK_MEMORY_LIMIT = "768MB"
EMPTY_SHEET = "空工作表"


class _NothingWritten(Exception):
    """Every file was refused or known already: the copy is dropped, nothing is published."""


def expand_paths(paths: Iterable[Path]) -> list[Path]:
    """Files as given, and the spreadsheets inside folders (Excel's ~$ lock files left out)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                sorted(
                    p
                    for p in path.rglob("*")
                    if p.is_file()
                    and p.suffix.lower() in FOLDER_SUFFIXES
                    and not p.name.startswith(("~$", "."))
                )
            )
        else:
            found.append(path)
    return found


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(resources.files("govdash.etl").joinpath("schema.sql").read_text(encoding="utf-8"))
    # Versions written before load_batches.loaded_by existed gain the column (NULL = unknown).
    con.execute("ALTER TABLE load_batches ADD COLUMN IF NOT EXISTS loaded_by VARCHAR")


def load_paths(
    paths: Sequence[Path],
    db_path: Path,
    config: Config,
    progress: Progress | None = None,
    keep_raw: bool = True,
    fresh: bool = False,
    names: dict[Path, str] | None = None,
    actor: str | None = None,
) -> LoadReport:
    """Load files into a new warehouse version and publish it; bad files are reported, not half-written.

    `names` gives the original file names where the paths are copies (uploads, rebuilds).
    `actor` (default: the OS user) is written to load_batches.loaded_by in the published
    version and, with the outcome of every file, to the audit log beside the warehouse.
    """
    say = progress or (lambda message: None)
    who = actor or os_user()
    db_path = warehouse_location(db_path)
    files = expand_paths(paths)
    reports = [FileReport(path, (names or {}).get(path, path.name)) for path in files]
    loaded_at = datetime.now().replace(microsecond=0)
    try:
        _load_into_new_version(reports, db_path, config, say, loaded_at, fresh, who)
    except _NothingWritten:
        _audit_load(db_path, reports, who, published=False, say=say)
        return LoadReport(reports, current_version(db_path))
    except BaseException:
        _audit_load(db_path, reports, who, published=False, say=say)
        raise
    _audit_load(db_path, reports, who, published=True, say=say)
    if keep_raw:  # only once the version that holds them is published
        for report in reports:
            _keep_original(db_path, report, report.name)
    return LoadReport(reports, current_version(db_path))


def _audit_load(
    db_path: Path, reports: list[FileReport], actor: str, published: bool, say: Progress
) -> None:
    log = AuditLog(audit_path(db_path))
    try:
        for report in reports:
            log.record(
                actor,
                "load",
                target=report.name,
                detail={
                    "published": published,
                    "batch_id": report.batch_id,
                    "already_loaded_as": report.already_loaded_as,
                    "sha256": report.sha256,
                    "kinds": report.kinds,
                    "rows_loaded": report.rows_loaded,
                    "rows_rejected": report.rows_rejected,
                    "error": report.error,
                },
                method="loader",
            )
    except sqlite3.Error as error:  # the data is published either way; say the log failed
        say(f"⚠ 审计日志写入失败（{log.path}）：{error}")


def _load_into_new_version(
    reports: list[FileReport],
    db_path: Path,
    config: Config,
    say: Progress,
    loaded_at: datetime,
    fresh: bool,
    actor: str,
) -> None:
    with new_version(db_path, keep=config.keep_versions, fresh=fresh) as work:
        # A cap makes DuckDB spill its work tables instead of adding to the spreadsheet
        # reader's peak (1M-row workbooks stay near 2 GB in all).
        con = duckdb.connect(str(work), config={"memory_limit": WORK_MEMORY_LIMIT})
        try:
            ensure_schema(con)
            install_macros(con, config, hash_key(db_path))
            locator = HeaderLocator(config)
            deferred: list[tuple[FileReport, str, Staged]] = []
            for report in reports:
                display = report.name
                started = time.perf_counter()
                staged = _stage_one(con, report, display, config, locator, say)
                report.seconds = time.perf_counter() - started
                if staged is None:
                    continue
                if EVALUATION in staged:  # after the others: it looks units up in the register
                    deferred.append((report, display, staged))
                    continue
                _write_one(con, report, display, staged, config, loaded_at, say)
            for report, display, staged in deferred:
                _write_one(con, report, display, staged, config, loaded_at, say)
            if not fresh and not any(r.batch_id is not None for r in reports):
                raise _NothingWritten
            batches = [r.batch_id for r in reports if r.batch_id is not None]
            con.execute(
                "UPDATE load_batches SET loaded_by = $actor WHERE batch_id = ANY($batches)",
                {"actor": actor, "batches": batches},
            )
            say("更新派生字段（时效状态、重复诉求）…")
            finalize(con, config)
            say("保存新版本 …")
            con.execute("CHECKPOINT")
        finally:
            con.close()


def _already_loaded(con: duckdb.DuckDBPyConnection, report: FileReport) -> bool:
    previous = con.execute(
        "SELECT batch_id FROM load_batches WHERE file_sha256 = $sha", {"sha": report.sha256}
    ).fetchone()
    if previous is not None:
        report.already_loaded_as = int(previous[0])
    return previous is not None


def _stage_one(
    con: duckdb.DuckDBPyConnection,
    report: FileReport,
    display: str,
    config: Config,
    locator: HeaderLocator,
    say: Progress,
) -> Staged | None:
    """Read and recognise one file; None when it is refused (report.error says why) or known."""
    path = report.path
    try:
        if not path.exists():
            raise LoadError(display, "文件不存在。")
        size_mb = path.stat().st_size / 1e6
        if size_mb > config.max_upload_mb:
            raise LoadError(
                display,
                f"文件有 {size_mb:,.3g} MB，超过上限 {config.max_upload_mb:g} MB（配置项 "
                "loader.max_upload_mb），未加载。请按月份或社区拆分成几个文件后分别加载。",
            )
        report.sha256 = file_sha256(path)
        if _already_loaded(con, report):
            say(f"{display}：内容与批次 {report.already_loaded_as} 相同，已加载过，跳过。")
            return None
        say(f"读取 {display} …")
        staged = _stage_file(path, display, config, locator, report, say)
    except LoadError as error:
        report.error = str(error)
        return None
    except Exception as error:  # an unreadable file must never take the whole load down
        report.error = str(LoadError(display, f"读取时出错：{error}"))
        return None
    if not staged:
        report.error = str(LoadError(display, _nothing_recognised(report)))
        return None
    return staged


def _nothing_recognised(report: FileReport) -> str:
    if all(sheet.skipped_reason == EMPTY_SHEET for sheet in report.sheets):
        return "工作簿中没有任何数据（所有工作表都是空的）。请确认选对了文件。"
    seen = "；".join(
        f"工作表“{sheet.name}”第 {sheet.header_hint[0]} 行为：{sheet.header_hint[1]}"
        for sheet in report.sheets
        if sheet.header_hint is not None
    )
    return (
        "没有找到可识别的表头" + (f"（{seen}）" if seen else "") + "。请确认表头包含如"
        "“工单编号、受理时间”（工单）、“问卷编号”和评分题（问卷）、“年度、被考评单位、评委”"
        "（考评）或“小区、户数”（台账）；可在“数据管理”页下载各类表格的模板。"
    )


def _header_hint(sheet: RawSheet) -> tuple[int, str] | None:
    """The first row with two or more filled cells: what the clerk's header probably is."""
    head = sheet.table.slice(0, 30).to_pylist()
    for index, row in enumerate(head):
        cells = [str(v).strip() for v in row.values() if v is not None and str(v).strip()]
        if len(cells) >= 2:
            shown = "、".join(cell[:20] for cell in cells[:8]) + ("…" if len(cells) > 8 else "")
            return sheet.first_row + index, shown
    return None


def _write_one(
    con: duckdb.DuckDBPyConnection,
    report: FileReport,
    display: str,
    staged: Staged,
    config: Config,
    loaded_at: datetime,
    say: Progress,
) -> None:
    """Clean and upsert one file in its own transaction; on any error nothing of it stays."""
    if _already_loaded(con, report):  # the same content twice in one load
        return
    started = time.perf_counter()
    con.execute("BEGIN TRANSACTION")
    try:
        batch_id = _next_batch_id(con)
        create_bad_rows(con)
        refresh_unit_levels(con)
        cleaner = Cleaner(con, config, loaded_at)
        header_rows = []
        for kind in KIND_ORDER:
            if kind not in staged:
                continue
            table, present, headers = staged[kind]
            header_rows.extend(headers)
            say(f"清洗 {KIND_LABELS[kind]} {table.num_rows:,} 行 …")
            con.register(f"stage_{kind}", table)
            cleaner.clean(kind, f"stage_{kind}", present)
            con.unregister(f"stage_{kind}")
            say(f"写入 {KIND_LABELS[kind]}（新增或更新）…")
            inserted, updated, unchanged = UPSERTS[kind](con, config, batch_id)
            report.rows_inserted += inserted
            report.rows_updated += updated
            report.rows_unchanged += unchanged
            if kind == REGISTER:
                refresh_unit_levels(con)  # later kinds look units up in the new register
        say("记录拒收行与批次 …")
        _record_rejections(con, report, display, batch_id, header_rows)
        _record_batch(con, report, display, batch_id, config, loaded_at)
        con.execute("COMMIT")
        report.batch_id = batch_id
    except Exception as error:
        con.execute("ROLLBACK")
        report.error = str(LoadError(display, f"写入失败，本文件未写入任何数据：{error}"))
    report.seconds += time.perf_counter() - started


def _stage_file(
    path: Path,
    display: str,
    config: Config,
    locator: HeaderLocator,
    report: FileReport,
    say: Progress,
) -> Staged:
    """Read and locate every sheet; return per kind the union of its staged sheets."""
    by_kind: dict[str, list[pa.Table]] = {}
    present: dict[str, set[str]] = {}
    headers: dict[str, list[tuple[str, str, str]]] = {}
    sequence = 0
    limits = ReadLimits(
        max_rows=config.max_rows_per_file,
        max_unzipped_bytes=config.max_unzipped_mb * 1e6,
        max_compression_ratio=config.max_compression_ratio,
    )
    try:
        sheets = list(read_file(path, limits, Path(display).stem))
    except LoadError as error:
        raise LoadError(display, error.message, error.sheet) from error
    for sheet in sheets:
        located = locator.locate(sheet)
        if located is None:
            empty = sheet.table.num_rows == 0 or sheet.table.num_columns == 0
            report.sheets.append(
                SheetReport(
                    sheet.name,
                    None,
                    skipped_reason=EMPTY_SHEET if empty else "未找到可识别的表头",
                    header_hint=None if empty else _header_hint(sheet),
                )
            )
            continue
        table = _with_sheet_columns(staged_table(located, sequence), located)
        sequence += table.num_rows
        by_kind.setdefault(located.kind, []).append(table)
        present.setdefault(located.kind, set()).update(located.field_names)
        headers.setdefault(located.kind, []).extend(
            (sheet.name, spec.name, located.headers[j]) for j, spec in located.columns.items()
        )
        report.sheets.append(
            SheetReport(sheet.name, located.kind, table.num_rows, unused_columns=located.unused)
        )
        say(f"  工作表“{sheet.name}”：{KIND_LABELS[located.kind]}，{table.num_rows:,} 行")
    staged = {}
    for kind, tables in by_kind.items():
        table = pa.concat_tables(tables, promote_options="default")
        for spec in kind_fields(kind, config):
            if spec.name not in table.column_names:
                table = table.append_column(spec.name, pa.nulls(table.num_rows, pa.string()))
        staged[kind] = (table, present[kind], headers[kind])
    return staged


def _with_sheet_columns(table: pa.Table, located: LocatedSheet) -> pa.Table:
    count = table.num_rows
    return table.append_column("_sheet", constant_text(located.sheet.name, count)).append_column(
        "_header_first", constant_text(located.first_header_text, count)
    )


def _next_batch_id(con: duckdb.DuckDBPyConnection) -> int:
    row = con.execute("SELECT coalesce(max(batch_id), 0) + 1 FROM load_batches").fetchone()
    return int(row[0]) if row else 1


# --- upserts --------------------------------------------------------------------------------


def _upsert(
    con: duckdb.DuckDBPyConnection,
    target: str,
    source_sql: str,
    keys: Sequence[str],
    values: Sequence[str],
    batch_id: int,
    extra: Sequence[str] = (),
    hashed_also: Sequence[str] = (),
) -> tuple[int, int, int]:
    """Insert new keys, replace changed rows, leave identical ones; count each.

    Within one file the last row of a key wins (a ticket re-listed in a later monthly sheet
    carries its later state). `extra` columns are derived, stored but not compared;
    `hashed_also` are compared but stored elsewhere. Leaves temp table `changed` (the keys
    inserted or updated) and `incoming` for callers that store child rows.
    """
    key_list = ", ".join(keys)
    hashed = f"hash({', '.join([*values, *hashed_also])}) AS row_hash"
    key_expression = keys[0] if len(keys) == 1 else f"struct_pack({key_list})"
    sizes = con.execute(
        f"SELECT count(*), count(DISTINCT {key_expression}) FROM ({source_sql})"
    ).fetchone()
    rows, total = (int(sizes[0]), int(sizes[1])) if sizes else (0, 0)  # total: distinct keys
    source = f"SELECT *, {hashed} FROM ({source_sql})"
    if rows != total:
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE incoming_rows AS {source}
            QUALIFY row_number() OVER (PARTITION BY {key_list} ORDER BY _seq DESC) = 1"""
        )
        source = "SELECT * FROM incoming_rows"
    # Usually no key appears twice in a file, and the rows need not be copied again.
    con.execute(f"CREATE OR REPLACE TEMP VIEW incoming AS {source}")
    columns = [*values, *extra, "batch_id", "source_sheet", "source_row", "row_hash"]
    insert = f"""INSERT INTO {target} ({", ".join(columns)})
        SELECT {", ".join(f"i.{c}" for c in [*values, *extra])}, {batch_id}, i._sheet, i._row,
            i.row_hash
        FROM incoming i"""
    empty = con.execute(f"SELECT NOT EXISTS (SELECT 1 FROM {target})").fetchone()
    if empty and empty[0]:
        # The first load into a table: every key is new, so no join and no comparison.
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE changed AS SELECT {key_list}, true AS is_new "
            "FROM incoming"
        )
        con.execute(insert)
        return total, 0, 0
    match = " AND ".join(f"t.{k} IS NOT DISTINCT FROM i.{k}" for k in keys)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE changed AS
        SELECT {", ".join(f"i.{k}" for k in keys)}, t.row_hash IS NULL AS is_new
        FROM incoming i LEFT JOIN {target} t ON {match}
        WHERE t.row_hash IS NULL OR t.row_hash != i.row_hash"""
    )
    counts = con.execute(
        "SELECT count(*) FILTER (WHERE is_new), count(*) FILTER (WHERE NOT is_new) FROM changed"
    ).fetchone()
    inserted, updated = (int(c) for c in counts) if counts else (0, 0)
    con.execute(
        f"DELETE FROM {target} t USING incoming i WHERE {match} AND t.row_hash != i.row_hash"
    )
    con.execute(f"{insert} SEMI JOIN changed t ON {match}")
    return inserted, updated, total - inserted - updated


REGISTER_VALUES = [
    "district",
    "street",
    "community",
    "compound",
    "compound_type",
    "grid",
    "households",
    "buildings",
    "property_company",
    "is_red_pm",
    "has_joint_agreement",
    "agreement_signed_on",
    "red_pm_certified_on",
]
TICKET_VALUES = [
    "ticket_id",
    "channel",
    "request_type",
    "category",
    "priority",
    "district",
    "street",
    "community",
    "compound",
    "grid",
    "building",
    "property_company",
    "accepted_at",
    "first_response_at",
    "arrived_at",
    "closed_at",
    "status",
    "is_valid_callback",
    "is_contacted",
    "is_resolved",
    "callback_satisfaction",
    "caller_hash",
    "description",
    "committed_hours",
    "has_response_column",
]
TICKET_DERIVED = [
    "is_open",
    "response_minutes",
    "resolution_hours",
    "response_limit_minutes",
    "resolution_limit_hours",
]
SURVEY_VALUES = [
    "response_id",
    "wave",
    "wave_year",
    "wave_index",
    "method",
    "district",
    "street",
    "community",
    "compound",
    "building",
    "respondent_type",
    "surveyed_on",
    "comment",
]
EVALUATION_KEYS = ["year", "unit_level", "unit", "evaluator"]


def _upsert_tickets(
    con: duckdb.DuckDBPyConnection, config: Config, batch_id: int
) -> tuple[int, int, int]:
    prepare_working_days(con, config, "ok_tickets")  # limits in working days need the calendar
    source = f"""SELECT *,
        NOT (closed_at IS NOT NULL OR coalesce(status IN ({CLOSED_STATUS_LIST}), false))
            AS is_open,
        date_diff('second', accepted_at, first_response_at) / 60.0 AS response_minutes,
        date_diff('second', accepted_at, closed_at) / 3600.0 AS resolution_hours,
        {sla_case(config, "respond")} AS response_limit_minutes,
        coalesce(committed_hours, {sla_case(config, "resolve")}) AS resolution_limit_hours
        FROM ok_tickets"""
    return _upsert(con, "tickets", source, ["ticket_id"], TICKET_VALUES, batch_id, TICKET_DERIVED)


def _upsert_register(
    con: duckdb.DuckDBPyConnection, config: Config, batch_id: int
) -> tuple[int, int, int]:
    return _upsert(
        con,
        "compounds",
        "SELECT * FROM ok_register",
        ["community", "compound"],
        REGISTER_VALUES,
        batch_id,
    )


def _upsert_survey(
    con: duckdb.DuckDBPyConnection, config: Config, batch_id: int
) -> tuple[int, int, int]:
    counts = _upsert(
        con,
        "survey_responses",
        "SELECT *, CAST(answers AS VARCHAR) AS answers_text FROM ok_survey",
        ["response_id"],
        SURVEY_VALUES,
        batch_id,
        hashed_also=["answers_text"],
    )
    con.execute("DELETE FROM survey_answers WHERE response_id IN (SELECT response_id FROM changed)")
    con.execute(
        """INSERT INTO survey_answers
        SELECT response_id, unnest(map_keys(answers)), unnest(map_values(answers))
        FROM incoming WHERE response_id IN (SELECT response_id FROM changed)"""
    )
    return counts


def _upsert_evaluation(
    con: duckdb.DuckDBPyConnection, config: Config, batch_id: int
) -> tuple[int, int, int]:
    keys = ", ".join(EVALUATION_KEYS)
    scores = _upsert(
        con,
        "evaluation_scores",
        f"""SELECT {keys}, s.indicator AS indicator, s.score AS score, _sheet, _row, _seq
        FROM (SELECT *, unnest(scores) AS s FROM ok_evaluation)""",
        [*EVALUATION_KEYS, "indicator"],
        [*EVALUATION_KEYS, "indicator", "score"],
        batch_id,
    )
    adjustments = _upsert(
        con,
        "evaluation_adjustments",
        # 加分/扣分 rows of their own add up; a 加分/扣分 column repeated on every row of a
        # unit is one value, copied.
        f"""SELECT {keys},
            CASE WHEN count(bonus) > 0 THEN
                coalesce(sum(bonus) FILTER (WHERE is_adjustment_row), 0)
                + coalesce(max(bonus) FILTER (WHERE NOT is_adjustment_row), 0) END AS bonus,
            CASE WHEN count(penalty) > 0 THEN
                coalesce(sum(penalty) FILTER (WHERE is_adjustment_row), 0)
                + coalesce(max(penalty) FILTER (WHERE NOT is_adjustment_row), 0) END AS penalty,
            bool_or(is_veto) AS is_veto, string_agg(DISTINCT note, '；') AS note,
            any_value(_sheet) AS _sheet, min(_row) AS _row, max(_seq) AS _seq
        FROM ok_evaluation
        WHERE bonus IS NOT NULL OR penalty IS NOT NULL OR is_veto IS NOT NULL OR note IS NOT NULL
        GROUP BY ALL""",
        EVALUATION_KEYS,
        [*EVALUATION_KEYS, "bonus", "penalty", "is_veto", "note"],
        batch_id,
    )
    return tuple(a + b for a, b in zip(scores, adjustments, strict=True))  # type: ignore[return-value]


UPSERTS: dict[str, Callable[[duckdb.DuckDBPyConnection, Config, int], tuple[int, int, int]]] = {
    TICKETS: _upsert_tickets,
    REGISTER: _upsert_register,
    SURVEY: _upsert_survey,
    EVALUATION: _upsert_evaluation,
}


# --- bookkeeping ------------------------------------------------------------------------------


def _record_rejections(
    con: duckdb.DuckDBPyConnection,
    report: FileReport,
    display: str,
    batch_id: int,
    headers: list[tuple[str, str, str]],
) -> None:
    """Copy bad_rows into rejected_rows with the column named as the file names it."""
    # A field the file has no column for is named by its canonical Chinese header.
    labels = {f.name: f.label for fields in FIELDS.values() for f in fields}
    con.execute(
        """INSERT INTO rejected_rows
        WITH header_names AS (
            SELECT DISTINCT unnest($sheets) AS sheet, unnest($fields) AS field,
                unnest($headers) AS header
        ), field_labels AS (
            SELECT unnest($label_fields) AS field, unnest($labels) AS label
        )
        SELECT $batch, $file, b._sheet, b._row,
            coalesce(h.header, l.label, regexp_replace(b.field, '^(item|indicator):', '')),
            gd_scrub(b.raw), b.reason, b.kind
        FROM bad_rows b
        LEFT JOIN header_names h ON h.sheet = b._sheet AND h.field = b.field
        LEFT JOIN field_labels l ON l.field = b.field""",
        {
            "batch": batch_id,
            "file": display,
            "sheets": [h[0] for h in headers],
            "fields": [h[1] for h in headers],
            "headers": [h[2] for h in headers],
            "label_fields": list(labels),
            "labels": list(labels.values()),
        },
    )
    for reason, count in con.execute(
        "SELECT reason, count(*) FROM bad_rows GROUP BY reason ORDER BY count(*) DESC"
    ).fetchall():
        report.reasons[str(reason)] += int(count)
    rejected = con.execute("SELECT count(*) FROM (SELECT DISTINCT _sheet, _row FROM bad_rows)")
    row = rejected.fetchone()
    report.rows_rejected = int(row[0]) if row else 0
    per_kind_ok = 0
    for kind in KIND_ORDER:
        if _temp_exists(con, f"parsed_{kind}"):
            counted = con.execute(f"SELECT count(*) FROM ok_{kind}").fetchone()
            per_kind_ok += int(counted[0]) if counted else 0
    con.execute("DROP VIEW IF EXISTS incoming")
    con.execute("DROP TABLE IF EXISTS incoming_rows")
    for kind in KIND_ORDER:
        if _temp_exists(con, f"parsed_{kind}"):
            con.execute(f"DROP VIEW ok_{kind}")
            con.execute(f"DROP TABLE parsed_{kind}")
    report.rows_loaded = per_kind_ok
    report.rows_read = sum(s.rows_read for s in report.sheets)
    report.rows_skipped = report.rows_read - report.rows_loaded - report.rows_rejected
    for sheet in report.sheets:
        sheet.rows_skipped = 0


def _temp_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    found = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name = $name",
        {"name": name},
    ).fetchone()
    return bool(found and found[0])


def _record_batch(
    con: duckdb.DuckDBPyConnection,
    report: FileReport,
    display: str,
    batch_id: int,
    config: Config,
    loaded_at: datetime,
) -> None:
    con.execute(
        """INSERT INTO load_batches VALUES ($batch, $file, $sha, $bytes, $kinds, $used, $skipped,
            $read, $loaded, $rejected, $inserted, $updated, $unchanged, $skipped_rows, $at,
            $config, $version, NULL)""",
        {
            "batch": batch_id,
            "file": display,
            "sha": report.sha256,
            "bytes": report.path.stat().st_size,
            "kinds": ",".join(report.kinds),
            "used": [s.name for s in report.sheets if s.kind],
            "skipped": [s.name for s in report.sheets if not s.kind],
            "read": report.rows_read - report.rows_skipped,
            "loaded": report.rows_loaded,
            "rejected": report.rows_rejected,
            "inserted": report.rows_inserted,
            "updated": report.rows_updated,
            "unchanged": report.rows_unchanged,
            "skipped_rows": report.rows_skipped,
            "at": loaded_at,
            "config": config.fingerprint,
            "version": __version__,
        },
    )


def _keep_original(db_path: Path, report: FileReport, display: str) -> None:
    """Keep the file as loaded (by content hash) so `govdash rebuild` can replay it."""
    folder = raw_dir(db_path)
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    target = folder / f"{report.sha256}{report.path.suffix.lower()}"
    if report.batch_id is None:  # refused, or already loaded
        return
    if not target.exists():
        shutil.copyfile(report.path, target)
        target.chmod(0o600)
    manifest_path = folder / "manifest.jsonl"
    with manifest_path.open("a", encoding="utf-8") as manifest:
        entry = {
            "sha256": report.sha256,
            "file_name": display,
            "stored_as": target.name,
            "loaded_at": datetime.now().isoformat(timespec="seconds"),
        }
        manifest.write(json.dumps(entry, ensure_ascii=False) + "\n")
    manifest_path.chmod(0o600)


def finalize(con: duckdb.DuckDBPyConnection, config: Config) -> None:
    """Derived state that depends on the whole warehouse: places, as-of time, SLA status, repeats."""
    con.execute("BEGIN TRANSACTION")
    for table in ("tickets", "survey_responses"):
        # Places a row left blank, from the register where the compound name is unambiguous;
        # only rows the register can fill are written.
        places = ["community", "street", "district"]
        if table == "tickets":
            places.append("property_company")
        con.execute(
            f"""UPDATE {table} AS t SET
                {", ".join(f"{c} = coalesce(t.{c}, r.{c})" for c in places)}
            FROM (SELECT compound, any_value(community) AS community, any_value(street) AS street,
                         any_value(district) AS district,
                         any_value(property_company) AS property_company
                  FROM compounds GROUP BY compound HAVING count(*) = 1) AS r
            WHERE t.compound = r.compound
              AND ({" OR ".join(f"(t.{c} IS NULL AND r.{c} IS NOT NULL)" for c in places)})"""
        )
    con.execute(
        """INSERT OR REPLACE INTO warehouse_info
        SELECT 'as_of', CAST(max(greatest(accepted_at, coalesce(first_response_at, accepted_at),
               coalesce(arrived_at, accepted_at), coalesce(closed_at, accepted_at))) AS VARCHAR)
        FROM tickets"""
    )
    con.execute(
        """INSERT OR REPLACE INTO warehouse_info VALUES
            ('updated_at', CAST(current_localtimestamp() AS VARCHAR)),
            ('config_fingerprint', $fingerprint), ('schema_version', '1')""",
        {"fingerprint": config.fingerprint},
    )
    # On-time status per DOMAIN.md §4: open tickets past their limit at the as-of time are late.
    # Only rows whose status changes are written: a monthly load into a large warehouse then
    # rewrites its own rows and the open tickets the new as-of time makes late, not every row.
    response = """CASE
        WHEN NOT has_response_column THEN NULL
        WHEN first_response_at IS NOT NULL THEN
            CASE WHEN response_minutes <= response_limit_minutes THEN 'on_time' ELSE 'late' END
        WHEN accepted_at + to_seconds(CAST(response_limit_minutes * 60 AS BIGINT)) < a.as_of
            THEN 'late'
        ELSE 'not_yet_due' END"""
    resolution = """CASE
        WHEN closed_at IS NOT NULL THEN
            CASE WHEN resolution_hours <= resolution_limit_hours THEN 'on_time' ELSE 'late' END
        WHEN NOT is_open THEN NULL
        WHEN accepted_at + to_seconds(CAST(resolution_limit_hours * 3600 AS BIGINT))
            < a.as_of THEN 'late'
        ELSE 'not_yet_due' END"""
    con.execute(
        f"""UPDATE tickets SET response_status = {response}, resolution_status = {resolution}
        FROM (SELECT CAST(value AS TIMESTAMP) AS as_of FROM warehouse_info WHERE key = 'as_of') a
        WHERE response_status IS DISTINCT FROM {response}
           OR resolution_status IS DISTINCT FROM {resolution}"""
    )
    con.execute(
        f"""UPDATE tickets SET is_repeat = r.is_repeat
        FROM (
            SELECT ticket_id, coalesce(accepted_at - lag(accepted_at) OVER (
                PARTITION BY caller_hash, category ORDER BY accepted_at, ticket_id)
                <= INTERVAL {int(config.repeat_window_days)} DAY, false) AS is_repeat
            FROM tickets WHERE caller_hash IS NOT NULL
        ) r
        WHERE tickets.ticket_id = r.ticket_id AND tickets.is_repeat IS DISTINCT FROM r.is_repeat"""
    )
    con.execute(
        "UPDATE tickets SET is_repeat = false WHERE caller_hash IS NULL "
        "AND is_repeat IS DISTINCT FROM false"
    )
    con.execute("COMMIT")


# --- the summary a clerk reads -----------------------------------------------------------------


def format_report(report: LoadReport) -> str:
    lines: list[str] = []
    for file in report.files:
        name = file.name or file.path.name
        if file.error:
            lines.append(f"✗ {file.error}")
            continue
        if file.already_loaded_as is not None:
            lines.append(
                f"= {name}：与批次 {file.already_loaded_as} 内容相同，已加载过，未作改动。"
            )
            continue
        kinds = "、".join(KIND_LABELS[k] for k in file.kinds)
        lines.append(f"✓ {name}（{kinds}，批次 {file.batch_id}，{file.seconds:.1f} 秒）")
        used = [s for s in file.sheets if s.kind]
        skipped = [s for s in file.sheets if not s.kind]
        lines.append(
            "  使用的工作表：" + "、".join(f"{s.name}（{s.rows_read:,} 行）" for s in used)
        )
        if skipped:
            lines.append(
                "  跳过的工作表：" + "、".join(f"{s.name}（{s.skipped_reason}）" for s in skipped)
            )
        unused = sorted({c for s in used for c in s.unused_columns})
        if unused:
            lines.append("  未使用的列：" + "、".join(unused))
        lines.append(
            f"  加载 {file.rows_loaded:,} 行，拒收 {file.rows_rejected:,} 行，"
            f"跳过空行/合计/表头 {file.rows_skipped:,} 行"
            f"（新增 {file.rows_inserted:,}，更新 {file.rows_updated:,}，未变 {file.rows_unchanged:,} 条记录）"
        )
        for reason, count in file.reasons.most_common():
            lines.append(f"    - {reason}：{count:,} 处")
    good = [f for f in report.files if f.error is None]
    lines.append(
        f"合计：{len(good)}/{len(report.files)} 个文件成功，"
        f"加载 {sum(f.rows_loaded for f in good):,} 行，拒收 {sum(f.rows_rejected for f in good):,} 行。"
    )
    if report.files and any(f.rows_rejected for f in good):
        lines.append("拒收的行及原因见数据仓库 rejected_rows 表（看板“数据管理”页可下载）。")
    return "\n".join(lines)
