"""Load spreadsheet files into the warehouse: read, recognise, clean, upsert, publish."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import itertools
import json
import secrets
import shutil
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from importlib import resources
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from govdash import __version__
from govdash.core.audit import AuditLog, audit_path, os_user
from govdash.core.config import Config
from govdash.core.lake import ALIAS
from govdash.core.profiles import Profile, ProfileError, ProfileStore, profiles_path
from govdash.core.warehouse import (
    check_not_legacy,
    connect_readonly,
    current_snapshot,
    hash_key,
    lake_of,
    raw_dir,
    warehouse_location,
    writer_lock,
)
from govdash.etl import aggregates, derive
from govdash.etl.clean import (
    CLOSED_STATUS_LIST,
    Cleaner,
    Duplicate,
    classifications_of,
    create_bad_rows,
    drop_cleaned,
    install_macros,
    literal,
    refresh_unit_levels,
)
from govdash.etl.errors import LoadError
from govdash.etl.fields import EVALUATION, FIELDS, KIND_LABELS, REGISTER, SURVEY, TICKETS
from govdash.etl.fixup import (
    ROW_HEADER,
    FixupMeta,
    fixup_workbook,
    original_path,
    read_meta,
    restore_personal,
)
from govdash.etl.locate import (
    LEADING_COLUMNS,
    HeaderLocator,
    LocatedSheet,
    kind_fields,
    staged_table,
)
from govdash.etl.mapping import (
    Proposal,
    apply_profile,
    columns_by_header,
    header_candidates,
    located_from_columns,
    propose,
    sheet_rows,
    signature,
)
from govdash.etl.readers import (
    SPREADSHEET_SUFFIXES,
    RawSheet,
    ReadLimits,
    SheetParts,
    constant_text,
    read_file,
    read_parts,
)
from govdash.etl.sla import prepare_working_days, sla_case

Progress = Callable[[str], None]


@dataclass
class StagedRows:
    """One kind's rows of a file, staged part by part as Parquet files in a folder of the
    load's scratch folder and read through a view of that name on `scratch`: a cursor of the
    load's connection, with its own transaction, OUTSIDE the load's lake transaction, rolled
    back to drop the view (the files are removed with it).

    Nothing of their size is created in a DuckDB database: a table created and dropped inside
    the lake transaction stays (in memory, then spilled) until its COMMIT, as every dropped or
    replaced version does. And writing the parts as Parquet costs a fifth of inserting them
    into a DuckDB table (1M rows of 22 text columns: 1.8 against 9.1 CPU s, DuckDB 1.5.5 and
    pyarrow, measured here), which copies and compresses every string once more. The cleaning
    reads the view on the same cursor and writes the parsed rows to a Parquet file in the
    scratch folder, which the lake transaction reads (Cleaner.clean).

    A part is written on a thread of its own while the reader parses the next (pyarrow's
    writer and DuckDB's reader both leave Python's lock: the two cores work at once, 1M rows
    of a CSV staged ~0.9 s sooner); at most one write is in flight, so memory holds at most
    one part more. `ready` waits for the writes and creates the view.
    """

    table: str
    scratch: duckdb.DuckDBPyConnection
    num_rows: int = 0
    # every column of the parts, in order, with its Arrow type (text, the markers' integers)
    columns: dict[str, pa.DataType] = field(default_factory=dict)
    parsed: Path = Path()  # the Parquet file of its cleaned rows, in the load's scratch folder
    folder: Path = Path()  # the staged parts, in the load's scratch folder
    parts: int = 0
    writing: Future[None] | None = None  # the last part's write, while it runs
    writer: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="govdash-stage")
    )

    def write(self, part: pa.Table) -> None:
        """Write `part` as the next Parquet file, beside the caller's reading of the next;
        waits for the previous part's write first (its error is raised here)."""
        self.wait()
        self.writing = self.writer.submit(
            pq.write_table, part, self.folder / f"{self.parts:06d}.parquet"
        )
        self.parts += 1

    def wait(self) -> None:
        """Wait for the part being written (raising its error, if it failed)."""
        writing, self.writing = self.writing, None
        if writing is not None:
            writing.result()

    def ready(self) -> None:
        """Every part written, and the view over them created on `scratch`."""
        self.wait()
        files = literal(str(self.folder / "*.parquet"))
        self.scratch.execute(
            f"""CREATE OR REPLACE TEMP VIEW {self.table} AS
            SELECT * FROM read_parquet({files}, union_by_name = true)"""
        )

    def places(self) -> list[tuple[str, int]]:
        """(sheet, row number) of every staged row, in file order."""
        found = self.scratch.execute(
            f"SELECT _sheet, _row FROM {self.table} ORDER BY _seq"
        ).fetchall()
        return [(str(sheet), int(row)) for sheet, row in found]

    def drop(self) -> None:
        """Drop the view and the parts now."""
        with contextlib.suppress(Exception):  # a failed write was reported where it failed
            self.wait()
        self.writer.shutdown()
        with contextlib.suppress(duckdb.Error):
            self.scratch.execute("ROLLBACK")
        self.scratch.close()
        shutil.rmtree(self.folder, ignore_errors=True)


_STAGE_PREFIX = "gd_stage_"


# Per kind: the union of a file's staged sheets, the fields present, (sheet, field, header).
Staged = dict[str, tuple[StagedRows, set[str], list[tuple[str, str, str]]]]
_STAGE_NAMES = itertools.count(1)
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
    # (column as written, value as written, what was done) → rows: rows that loaded without a
    # value (an unknown classification word, a time out of order …)
    notes: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    duplicates: list[Duplicate] = field(default_factory=list)
    profiles: list[str] = field(default_factory=list)  # mapping profiles applied
    value_maps: dict[str, dict[str, str]] = field(default_factory=dict)  # from those profiles
    # (field, word as written) → rows: classification words not known, which a profile can map
    unknown_values: Counter[tuple[str, str]] = field(default_factory=Counter)
    fixup: FixupMeta | None = None  # a corrected fix-up workbook: its rows join this batch
    error: str | None = None
    already_loaded_as: int | None = None
    seconds: float = 0.0

    @property
    def kinds(self) -> list[str]:
        return sorted({s.kind for s in self.sheets if s.kind}, key=KIND_ORDER.index)


@dataclass
class LoadReport:
    files: list[FileReport]
    snapshot: int | None = None  # the warehouse snapshot after the load (None: nothing published)
    skipped_files: list[SkippedFile] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(f.error is None for f in self.files)


# In a folder only spreadsheets count (a 说明.txt beside them is not data); a .txt named
# explicitly is read as CSV.
FOLDER_SUFFIXES = tuple(s for s in SPREADSHEET_SUFFIXES if s != ".txt")


EMPTY_SHEET = "空工作表"


class _NothingWritten(Exception):
    """Every file was refused or known already: the copy is dropped, nothing is published."""


@dataclass(frozen=True)
class SkippedFile:
    """A file inside a given folder that was not loaded, and why (said in the summary)."""

    path: Path
    reason: str


# Formats a clerk may have beside the data, with what to do about them.
_OTHER_FORMATS = {
    ".et": "WPS 表格格式（.et），请在 WPS 中“另存为”.xlsx 后再加载",
    ".ett": "WPS 表格模板（.ett），请在 WPS 中“另存为”.xlsx 后再加载",
    ".numbers": "Apple Numbers 格式，请导出为 .xlsx 后再加载",
    ".xlsb": "Excel 二进制工作簿（.xlsb），请在 Excel 中“另存为”.xlsx 后再加载",
    ".txt": "文本文件在文件夹中不作为数据读取；如果它是 CSV，请把扩展名改为 .csv，或在命令中单独指定它",
}


def skipped_reason(path: Path) -> str | None:
    """Why a file found in a folder is not loaded, or None when it is a spreadsheet."""
    if path.name.startswith("~$"):
        return "Excel 打开文件时生成的临时锁文件，不是数据"
    if path.name.startswith("."):
        return "隐藏文件"
    suffix = path.suffix.lower()
    if suffix in FOLDER_SUFFIXES:
        return None
    return _OTHER_FORMATS.get(
        suffix,
        f"不是表格文件（{suffix or '无扩展名'}）；可加载 .xlsx、.xlsm、.xls、.ods、.csv",
    )


def expand_paths(paths: Iterable[Path]) -> tuple[list[Path], list[SkippedFile]]:
    """Files as given, and the spreadsheets inside folders; the other files of a folder are
    returned with the reason they were left out (Excel's ~$ lock files, documents, …)."""
    found: list[Path] = []
    skipped: list[SkippedFile] = []
    for path in paths:
        if not path.is_dir():
            found.append(path)
            continue
        for inside in sorted(p for p in path.rglob("*") if p.is_file()):
            reason = skipped_reason(inside)
            if reason is None:
                found.append(inside)
            else:
                skipped.append(SkippedFile(inside, reason))
    return found, skipped


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """The warehouse's tables in the lake (`CREATE TABLE IF NOT EXISTS`: a no-op once there)."""
    con.execute(resources.files("govdash.etl").joinpath("schema.sql").read_text(encoding="utf-8"))


def _lake_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [
        str(name)
        for (name,) in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = $db ORDER BY 1",
            {"db": ALIAS},
        ).fetchall()
    ]


# Said the moment a load's snapshot is published: readers see its data from then on (what
# follows — stale periods, local copies, first views — only makes the pages quicker).
# bench/bench_load.py times a load to this line.
PUBLISHED = "已发布为快照 #{snapshot}，看板已可查看本次数据。"


def load_paths(
    paths: Sequence[Path],
    db_path: Path,
    config: Config,
    progress: Progress | None = None,
    keep_raw: bool = True,
    fresh: bool = False,
    names: dict[Path, str] | None = None,
    actor: str | None = None,
    mappings: Mapping[Path, Profile] | None = None,
) -> LoadReport:
    """Load files into a new warehouse version and publish it; bad files are reported, not half-written.

    `names` gives the original file names where the paths are copies (uploads, rebuilds).
    `actor` (default: the OS user) is written to load_batches.loaded_by in the published
    version and, with the outcome of every file, to the audit log beside the warehouse.
    Saved mapping profiles (beside the warehouse) apply to the sheets whose header row they
    were made from; `mappings` gives a file the profile the clerk chose for it.
    """
    say = progress or (lambda message: None)
    who = actor or os_user()
    db_path = warehouse_location(db_path)
    files, skipped = expand_paths(paths)
    reports = [FileReport(path, (names or {}).get(path, path.name)) for path in files]
    loaded_at = datetime.now().replace(microsecond=0)
    choice = ProfileChoice(forced=dict(mappings or {}))
    try:
        choice.saved = ProfileStore(profiles_path(db_path)).by_signature()
    except ProfileError as error:  # the data still loads; the clerk learns why no profile applied
        say(f"⚠ 对照方案未能读取，本次按内置表头识别：{error}")
    try:
        snapshot = _load_into_new_version(
            reports, db_path, config, say, loaded_at, fresh, who, choice
        )
    except _NothingWritten:
        _audit_load(db_path, reports, who, published=False, say=say)
        return LoadReport(reports, current_snapshot(db_path), skipped)
    except BaseException:
        _audit_load(db_path, reports, who, published=False, say=say)
        raise
    say(PUBLISHED.format(snapshot=snapshot))
    _audit_load(db_path, reports, who, published=True, say=say, snapshot=snapshot)
    if keep_raw:  # only once the snapshot that holds them is published
        for report in reports:
            _keep_original(db_path, report, report.name)
    return LoadReport(reports, snapshot, skipped)


def _audit_load(
    db_path: Path,
    reports: list[FileReport],
    actor: str,
    published: bool,
    say: Progress,
    snapshot: int | None = None,
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
                    "snapshot": snapshot if published else None,
                    "batch_id": report.batch_id,
                    "already_loaded_as": report.already_loaded_as,
                    "sha256": report.sha256,
                    "kinds": report.kinds,
                    "rows_loaded": report.rows_loaded,
                    "rows_rejected": report.rows_rejected,
                    "fixup_of": report.fixup.source_name if report.fixup else None,
                    "error": report.error,
                },
                method="loader",
            )
    except sqlite3.Error as error:  # the data is published either way; say the log failed
        say(f"⚠ 审计日志写入失败（{log.path}）：{error}")


@contextmanager
def work_connection(db_path: Path, config: Config) -> Iterator[duckdb.DuckDBPyConnection]:
    """The loader's DuckDB connection: the warehouse's lake attached read-write and in use.

    `[loader] memory_limit_mb` caps DuckDB's buffers: beyond it, DuckDB spills to a private
    scratch folder in the data folder (removed afterwards, also when the load fails).
    Insertion order is not kept (no query relies on it), which lets big inserts stream. The
    caller owns the transaction: nothing is published before its COMMIT.
    """
    lake = lake_of(db_path)
    # Called under the writer lock: a spill folder still there is a killed load's.
    for stale in lake.scratch.glob(".govdash-load-*"):
        shutil.rmtree(stale, ignore_errors=True)
    with lake.writer(config.memory_limit_mb) as con:
        yield con


class _FileFailed(Exception):
    """One file's write failed inside the load's transaction: the load starts again without it."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index
        self.message = message


def _load_into_new_version(
    reports: list[FileReport],
    db_path: Path,
    config: Config,
    say: Progress,
    loaded_at: datetime,
    fresh: bool,
    actor: str,
    profiles: ProfileChoice | None = None,
) -> int:
    """Write every file in ONE lake transaction and publish it as one snapshot (its id).

    A file whose write fails (its cleaning or upsert raised) must leave no trace while the
    others publish: the transaction is rolled back and the load runs again without that file
    (its report keeps the error). `fresh` empties every table first, in the same transaction
    (a rebuild): readers keep the previous snapshot until it commits.
    """
    if not fresh:
        check_not_legacy(db_path)
    pristine = [copy.deepcopy(report) for report in reports]
    failed: dict[int, str] = {}
    with writer_lock(db_path), work_connection(db_path, config) as con:
        install_macros(con, config, hash_key(db_path))
        while True:
            for index, report in enumerate(reports):  # a retry starts from the reports as given
                report.__dict__.update(copy.deepcopy(pristine[index]).__dict__)
                report.error = failed.get(index)
            con.execute("BEGIN TRANSACTION")
            try:
                _write_all(con, reports, failed, db_path, config, say, loaded_at, fresh, profiles)
                batches = [r.batch_id for r in reports if r.batch_id is not None]
                con.execute(
                    "UPDATE load_batches SET loaded_by = $actor WHERE batch_id = ANY($batches)",
                    {"actor": actor, "batches": batches},
                )
                say("更新派生字段（时效状态、重复诉求）…")
                finalize(con, config)
                say("发布新快照 …")
                return commit_snapshot(con, "rebuild" if fresh else "load", actor, reports)
            except _FileFailed as failure:
                con.execute("ROLLBACK")
                failed[failure.index] = failure.message
                say(failure.message)
            except BaseException:
                with contextlib.suppress(duckdb.Error):
                    con.execute("ROLLBACK")
                raise


def _write_all(
    con: duckdb.DuckDBPyConnection,
    reports: list[FileReport],
    failed: Mapping[int, str],
    db_path: Path,
    config: Config,
    say: Progress,
    loaded_at: datetime,
    fresh: bool,
    profiles: ProfileChoice | None,
) -> None:
    ensure_schema(con)
    if fresh:
        for table in _lake_tables(con):
            con.execute(f'DELETE FROM "{table}"')
    derive.begin(con)  # the upserts record what they change; finalize derives from it
    deferred: list[tuple[int, FileReport, Staged]] = []
    try:
        _write_files(con, reports, failed, db_path, config, say, loaded_at, profiles, deferred)
    finally:  # a failed attempt's staged files it did not reach (the written ones are gone)
        for _, _, staged in deferred:
            for rows, _, _ in staged.values():
                rows.drop()
    if not fresh and not any(r.batch_id is not None for r in reports):
        raise _NothingWritten


def _write_files(
    con: duckdb.DuckDBPyConnection,
    reports: list[FileReport],
    failed: Mapping[int, str],
    db_path: Path,
    config: Config,
    say: Progress,
    loaded_at: datetime,
    profiles: ProfileChoice | None,
    deferred: list[tuple[int, FileReport, Staged]],
) -> None:
    locator = HeaderLocator(config)
    key = hash_key(db_path)
    for index, report in enumerate(reports):
        if index in failed:
            continue
        started = time.perf_counter()
        staged = _stage_one(con, report, report.name, config, locator, say, profiles, db_path)
        report.seconds = time.perf_counter() - started
        if staged is None:
            continue
        if EVALUATION in staged:  # after the others: it looks units up in the register
            deferred.append((index, report, staged))
            continue
        _write_one(con, index, report, report.name, staged, config, loaded_at, say, key)
    for index, report, staged in deferred:
        _write_one(con, index, report, report.name, staged, config, loaded_at, say, key)


def commit_snapshot(
    con: duckdb.DuckDBPyConnection,
    what: str,
    actor: str,
    reports: Sequence[FileReport] = (),
    details: Mapping[str, object] | None = None,
) -> int:
    """COMMIT the writer's transaction with its commit message (`what`: load, rebuild,
    migrate, remap, refresh) and the files and `details` it wrote; the snapshot id it became."""
    token = secrets.token_hex(8)
    extra = {
        "load_id": token,
        "actor": actor,
        "batches": [r.batch_id for r in reports if r.batch_id is not None],
        "files": [r.name for r in reports if r.batch_id is not None],
        "loader_version": __version__,
        **(details or {}),
    }
    con.execute(
        f"CALL {ALIAS}.set_commit_message($author, $message, extra_info => $extra)",
        {"author": actor, "message": what, "extra": json.dumps(extra, ensure_ascii=False)},
    )
    con.execute("COMMIT")
    found = con.execute(
        f"""SELECT max(snapshot_id) FROM {ALIAS}.snapshots()
        WHERE json_extract_string(commit_extra_info, '$.load_id') = $token""",
        {"token": token},
    ).fetchone()
    if found is None or found[0] is None:  # committed, but the message did not come back
        row = con.execute(f"SELECT id FROM {ALIAS}.current_snapshot()").fetchone()
        return int(row[0]) if row else 0
    return int(found[0])


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
    profiles: ProfileChoice | None = None,
    db_path: Path | None = None,
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
        staged = _stage_file(con, path, display, config, locator, report, say, profiles, db_path)
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
        "（考评）或“小区、户数”（台账）。表头是本单位自己的写法时，在“数据管理”页上传后按提示"
        "对照各列（命令行：govdash load 文件 --columns '源表头=模板字段名,…'），对照会保存下来，"
        "下次同样表头的文件自动识别；也可下载各类表格的模板。"
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
    index: int,
    report: FileReport,
    display: str,
    staged: Staged,
    config: Config,
    loaded_at: datetime,
    say: Progress,
    key: str,
) -> None:
    """Clean and upsert one file inside the load's transaction; on any error it raises
    _FileFailed, and the load starts again without it (nothing of it stays). Its staged rows
    are dropped in any case (each kind's once it is cleaned), and its parsed rows' files."""
    try:
        _write_staged(con, index, report, display, staged, config, loaded_at, say, key)
    finally:
        for rows, _, _ in staged.values():
            rows.drop()
            rows.parsed.unlink(missing_ok=True)


def _write_staged(
    con: duckdb.DuckDBPyConnection,
    index: int,
    report: FileReport,
    display: str,
    staged: Staged,
    config: Config,
    loaded_at: datetime,
    say: Progress,
    key: str,
) -> None:
    if _already_loaded(con, report):  # the same content twice in one load
        return
    started = time.perf_counter()
    original: tuple[int, str] | None = None
    if report.fixup is not None:  # a corrected fix-up workbook joins the batch it came from
        found = con.execute(
            "SELECT batch_id, file_name FROM load_batches WHERE file_sha256 = $sha",
            {"sha": report.fixup.source_sha256},
        ).fetchone()
        if found is None:
            report.error = str(
                LoadError(
                    display,
                    f"这是“{report.fixup.source_name}”的待改正工作簿，但数据仓库中已没有该文件的加载"
                    "批次；请先加载原文件，或直接上传改正后的完整文件。",
                )
            )
            return
        original = (int(found[0]), str(found[1]))
    try:
        # A fix-up's rows replace their earlier rejections: their places, read before the
        # staged rows are dropped (each once it is cleaned).
        fixed = [p for rows, _, _ in staged.values() for p in rows.places()] if original else []
        batch_id = original[0] if original else _next_batch_id(con)
        create_bad_rows(con)
        refresh_unit_levels(con)
        cleaner = Cleaner(con, config, loaded_at, report.value_maps)
        header_rows = []
        for kind in KIND_ORDER:
            if kind not in staged:
                continue
            rows, present, headers = staged[kind]
            header_rows.extend(headers)
            say(f"清洗 {KIND_LABELS[kind]} {rows.num_rows:,} 行 …")
            _clean_staged(con, cleaner, kind, rows, present, key)
            report.duplicates.extend(cleaner.separate_duplicates(kind))
            report.unknown_values.update(cleaner.collect_notes(kind))
            say(f"写入 {KIND_LABELS[kind]}（新增或更新）…")
            inserted, updated, unchanged = UPSERTS[kind](con, config, batch_id)
            report.rows_inserted += inserted
            report.rows_updated += updated
            report.rows_unchanged += unchanged
            if kind == REGISTER:
                refresh_unit_levels(con)  # later kinds look units up in the new register
        say("记录拒收行与批次 …")
        if original is not None:
            # The rows of the fix-up replace their earlier rejections; those still wrong are
            # recorded again below, under the original file's name.
            con.execute(
                """DELETE FROM rejected_rows WHERE batch_id = $batch
                AND (sheet, row_number) IN (SELECT unnest($sheets), unnest($rows))""",
                {"batch": batch_id, "sheets": [f[0] for f in fixed], "rows": [f[1] for f in fixed]},
            )
            _record_rejections(con, report, original[1], batch_id, header_rows)
            _recount_batch(con, batch_id)
        else:
            _record_rejections(con, report, display, batch_id, header_rows)
            _record_batch(con, report, display, batch_id, config, loaded_at)
        report.batch_id = batch_id
    except Exception as error:
        message = str(LoadError(display, f"写入失败，本文件未写入任何数据：{error}"))
        raise _FileFailed(index, message) from error
    report.seconds += time.perf_counter() - started


def _clean_staged(
    con: duckdb.DuckDBPyConnection,
    cleaner: Cleaner,
    kind: str,
    rows: StagedRows,
    present: set[str],
    key: str,
) -> None:
    """Clean a kind's staged rows OUTSIDE the load's transaction, then drop them at once.

    The cleaning pass runs on the staged rows' own cursor (its never-committed transaction,
    given the macros and small lookups it needs) and writes the parsed rows to a Parquet file
    in the scratch folder; the load's transaction reads that file (parsed_<kind> is a view),
    so neither the staged nor the parsed rows are kept until its COMMIT. The file is deleted
    once the file's load is written (_write_one).
    """
    try:
        cleaner.prepare_source(rows.scratch, key)
        cleaner.clean(kind, rows.table, present, rows.scratch, rows.parsed)
    finally:
        rows.drop()


@dataclass
class ProfileChoice:
    """The mapping profiles a load applies: the one the clerk chose for a file (forced), and
    the saved ones, each to the sheets whose header row has its signature."""

    saved: dict[str, Profile] = field(default_factory=dict)  # signature → profile
    forced: dict[Path, Profile] = field(default_factory=dict)

    def locate(
        self, sheet: RawSheet, path: Path, config: Config
    ) -> tuple[LocatedSheet, Profile] | None:
        forced = self.forced.get(path)
        if forced is not None:
            located = apply_profile(sheet, forced, config) or apply_profile(
                sheet, forced, config, exact=False
            )
            return (located, forced) if located is not None else None
        if not self.saved:
            return None
        rows = sheet_rows(sheet)
        for r, height, names in header_candidates(rows):
            profile = self.saved.get(signature(names))
            if profile is not None:
                columns = columns_by_header(profile, names)
                located = located_from_columns(sheet, profile.kind, r, height, columns, config)
                return located, profile
        return None


def _stage_file(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    display: str,
    config: Config,
    locator: HeaderLocator,
    report: FileReport,
    say: Progress,
    profiles: ProfileChoice | None = None,
    db_path: Path | None = None,
    chunk_rows: int | None = None,
) -> Staged:
    """Read and locate every sheet, staging its rows part by part (a CSV in parts of
    `chunk_rows` rows, readers.CSV_CHUNK_ROWS by default) into one temp table per kind.

    The header is found in a sheet's first part; the later parts are read with the same
    columns, their rows numbered on from where the part starts in the file.
    """
    limits = ReadLimits(
        max_rows=config.max_rows_per_file,
        max_unzipped_bytes=config.max_unzipped_mb * 1e6,
        max_compression_ratio=config.max_compression_ratio,
    )
    staged: dict[str, StagedRows] = {}
    sheets: list[SheetParts] = []
    try:
        try:
            sheets = list(read_parts(path, limits, Path(display).stem, chunk_rows))
            meta = read_meta([parts.head for parts in sheets])
        except LoadError as error:
            raise LoadError(display, error.message, error.sheet) from error
        return _stage_sheets(
            con, sheets, meta, path, display, config, locator, report, say, profiles, db_path,
            staged,
        )  # fmt: skip
    except BaseException:
        for rows in staged.values():
            rows.drop()
        raise
    finally:
        for parts in sheets:
            parts.close()


def _stage_sheets(
    con: duckdb.DuckDBPyConnection,
    sheets: list[SheetParts],
    meta: FixupMeta | None,
    path: Path,
    display: str,
    config: Config,
    locator: HeaderLocator,
    report: FileReport,
    say: Progress,
    profiles: ProfileChoice | None,
    db_path: Path | None,
    staged: dict[str, StagedRows],
) -> Staged:
    present: dict[str, set[str]] = {}
    headers: dict[str, list[tuple[str, str, str]]] = {}
    sequence = 0
    fixed_rows: dict[str, list[int | None]] = {}
    if meta is not None:
        report.fixup = meta
        kept, fixed_rows = _fixup_sheets(
            [parts.head for parts in sheets], meta, display, config, profiles
        )
        sheets = [SheetParts(sheet) for sheet in kept]
    for parts in sheets:
        sheet = parts.head
        chosen = profiles.locate(sheet, path, config) if profiles else None
        located: LocatedSheet | None = None
        if chosen is not None:
            located, profile = chosen
            if profile.name not in report.profiles:
                report.profiles.append(profile.name)
            for name, words in profile.values.items():
                report.value_maps.setdefault(name, {}).update(words)
        else:
            located = locator.locate(sheet)
        if located is None:
            parts.close()
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
        if sheet.name in fixed_rows:
            located = _restored(located, fixed_rows[sheet.name], meta, config, db_path)
        table = _with_sheet_columns(staged_table(located, sequence), located)
        if sheet.name in fixed_rows:  # rows keep the numbers they have in the original file
            numbers = fixed_rows[sheet.name][located.data_start :]
            rows_at = [n if n is not None else located.sheet.first_row + located.data_start + i
                       for i, n in enumerate(numbers)]  # fmt: skip
            table = table.set_column(
                table.column_names.index("_row"), "_row", pa.array(rows_at, pa.int64())
            )
        rows = staged.get(located.kind)
        if rows is None:
            rows = staged[located.kind] = _stage_table(con, located.kind, config)
        count = _stage_part(con, rows, table)
        sequence += table.num_rows
        width = located.sheet.table.num_columns
        for part in parts.rest:  # the same columns, the rows after
            following = replace(located, sheet=_padded(part, width), data_start=0)
            table = _with_sheet_columns(staged_table(following, sequence), located)
            added = _stage_part(con, rows, table)
            count += added
            sequence += added
            if count // _PROGRESS_ROWS > (count - added) // _PROGRESS_ROWS:
                say(f"  工作表“{sheet.name}”：已读取 {count:,} 行 …")
        present.setdefault(located.kind, set()).update(located.field_names)
        headers.setdefault(located.kind, []).extend(
            (sheet.name, spec.name, located.headers[j]) for j, spec in located.columns.items()
        )
        report.sheets.append(
            SheetReport(sheet.name, located.kind, count, unused_columns=located.unused)
        )
        say(f"  工作表“{sheet.name}”：{KIND_LABELS[located.kind]}，{count:,} 行")
    for rows in staged.values():
        rows.ready()
    return {kind: (rows, present[kind], headers[kind]) for kind, rows in staged.items()}


_PROGRESS_ROWS = 1_000_000  # a long sheet's reading is reported every this many rows
_MARKERS = {"_row": "BIGINT", "_seq": "BIGINT", "_sheet": "VARCHAR", "_header_first": "VARCHAR"}


def _stage_table(con: duckdb.DuckDBPyConnection, kind: str, config: Config) -> StagedRows:
    """An empty staging of a kind's rows, in the scratch folder outside the load's transaction
    (StagedRows): every field of the kind as text (NULL where the file lacks it), the leading
    raw cells and the row markers."""
    columns = {spec.name: "VARCHAR" for spec in kind_fields(kind, config)}
    columns.update({f"_c{j}": "VARCHAR" for j in range(LEADING_COLUMNS)})
    columns.update(_MARKERS)
    types = {
        name: pa.int64() if kind_of == "BIGINT" else pa.string()
        for name, kind_of in columns.items()
    }
    rows = StagedRows(f"{_STAGE_PREFIX}{next(_STAGE_NAMES)}_{kind}", con.cursor(), 0, types)
    # Beside DuckDB's spill folder, in the load's scratch folder (removed with it).
    found = con.execute("SELECT current_setting('temp_directory')").fetchone()
    scratch = Path(str(found[0] if found else ".")).parent
    rows.parsed = scratch / f"{rows.table}.parquet"
    rows.folder = scratch / rows.table
    rows.folder.mkdir(parents=True)
    rows.scratch.execute("BEGIN TRANSACTION")
    return rows


def _stage_part(con: duckdb.DuckDBPyConnection, rows: StagedRows, table: pa.Table) -> int:
    """Write a staged part as the kind's next Parquet file, with every column known so far
    (NULL where this part has none; a column a later part adds reads NULL in the earlier
    ones), beside the reading of the next (StagedRows.write); its row count."""
    for name in table.column_names:
        rows.columns.setdefault(name, pa.string())
    given = set(table.column_names)
    part = pa.table(
        [
            table.column(name).cast(kind) if name in given else pa.nulls(table.num_rows, kind)
            for name, kind in rows.columns.items()
        ],
        names=list(rows.columns),
    )
    rows.write(part)
    rows.num_rows += table.num_rows
    return table.num_rows


def _padded(sheet: RawSheet, width: int) -> RawSheet:
    """A part with at least the head's columns (a short part of a ragged CSV lacks some)."""
    table = sheet.table
    for j in range(table.num_columns, width):
        table = table.append_column(f"c{j}", pa.nulls(table.num_rows, pa.string()))
    return replace(sheet, table=table)


def _fixup_sheets(
    sheets: list[RawSheet],
    meta: FixupMeta,
    display: str,
    config: Config,
    profiles: ProfileChoice | None,
) -> tuple[list[RawSheet], dict[str, list[int | None]]]:
    """A fix-up workbook's sheets without its 原行号/拒收原因 columns (read as the original's
    sheets are), and each sheet's row numbers in the original (None: not a data row)."""
    kept: list[RawSheet] = []
    numbers: dict[str, list[int | None]] = {}
    for sheet in sheets:
        width = meta.sheets.get(sheet.name)
        if width is None:
            continue  # the guide and the hidden sheet
        table = sheet.table
        if table.num_columns <= width:
            raise LoadError(
                display, f"待改正工作簿的“{ROW_HEADER}”列不见了，请重新下载后改正。", sheet.name
            )
        found: list[int | None] = []
        for value in table.column(f"c{width}").to_pylist():
            try:
                found.append(int(float(str(value))))
            except (TypeError, ValueError):
                found.append(None)
        numbers[sheet.name] = found
        columns = table.select([f"c{j}" for j in range(width)])
        kept.append(RawSheet(sheet.name, columns, sheet.first_row, sheet.merged, sheet.hidden))
    return kept, numbers


def _restored(
    located: LocatedSheet,
    numbers: list[int | None],
    meta: FixupMeta | None,
    config: Config,
    db_path: Path | None,
) -> LocatedSheet:
    """The fix-up sheet with its personal columns filled again from the original's rows."""
    assert meta is not None
    source = original_path(db_path, meta.source_sha256) if db_path else None
    if source is None:
        return located
    originals = {s.name: s for s in read_file(source, ReadLimits(max_rows=config.max_rows_per_file),
                                               Path(meta.source_name).stem)}  # fmt: skip
    original = originals.get(located.sheet.name)
    if original is None:
        return located
    restored = restore_personal(located.sheet, original, located, numbers)
    return replace(located, sheet=restored)


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
    before_write: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
    stored_from: Mapping[str, str] | None = None,
) -> tuple[int, int, int]:
    """Insert new keys, replace changed rows, leave identical ones; count each.

    Within one file the last row of a key wins (a ticket re-listed in a later monthly sheet
    carries its later state). `extra` columns are derived, stored but not compared;
    `hashed_also` are compared but stored elsewhere; `stored_from` maps a value column to the
    source column stored in its place (compared as the file has it, stored completed).
    `before_write` runs once `changed` is known, before the replaced rows are deleted. Leaves
    temp table `changed` (the keys inserted or updated, `is_new`) and `incoming` for callers
    that store child rows.
    """
    stored_from = stored_from or {}
    key_list = ", ".join(keys)
    hashed = f"hash({', '.join([*values, *hashed_also])}) AS row_hash"
    key_expression = keys[0] if len(keys) == 1 else f"struct_pack({key_list})"
    key_counts = ", ".join(f"count({k})" for k in keys)
    sizes = con.execute(
        f"SELECT count(*), count(DISTINCT {key_expression}), {key_counts} FROM ({source_sql})"
    ).fetchone() or (0, 0, *[0] * len(keys))
    rows, total = int(sizes[0]), int(sizes[1])  # total: distinct keys
    # A key column the file never leaves blank is matched with `=`, the same rows as IS NOT
    # DISTINCT FROM then; DuckDB then narrows the stored table's scan to the range of the
    # file's keys (its dynamic join filter skips the Parquet row groups outside it), so a
    # small file of recent tickets reads the recent part of a city's warehouse, not all of it.
    blank = {k for k, n in zip(keys, sizes[2:], strict=True) if int(n) != rows}
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
        SELECT {", ".join(f"i.{stored_from.get(c, c)}" for c in [*values, *extra])},
            {batch_id}, i._sheet, i._row,
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
    match = " AND ".join(
        f"t.{k} IS NOT DISTINCT FROM i.{k}" if k in blank else f"t.{k} = i.{k}" for k in keys
    )
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
    if before_write is not None:
        before_write(con)
    # A file of a new period (the usual case at a city's size) replaces nothing and writes
    # every row: each statement skipped here is one more pass over the file's rows.
    if updated:
        con.execute(
            f"DELETE FROM {target} t USING incoming i WHERE {match} AND t.row_hash != i.row_hash"
        )
    con.execute(
        insert if inserted + updated == total else f"{insert} SEMI JOIN changed t ON {match}"
    )
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
    "unmapped_values",
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
    "dispatched_at",
    "signed_at",
    "handling_unit",
    "unmapped_values",
]
TICKET_DERIVED = [
    "is_open",
    "response_minutes",
    "resolution_hours",
    "response_limit_minutes",
    "resolution_limit_hours",
    "takeup_minutes",
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
        date_diff('second', dispatched_at, signed_at) / 60.0 AS takeup_minutes,
        {sla_case(config, "respond")} AS response_limit_minutes,
        coalesce(committed_hours, {sla_case(config, "resolve")}) AS resolution_limit_hours
        FROM ok_tickets"""
    # Written with their statuses at the as-of time reached so far: finalize then rewrites
    # only the rows whose derived fields differ, not every new row a second time.
    source = f"SELECT *, {derive.initial_fields(con, 'ok_tickets')} FROM ({source})"
    counts = _upsert(
        con,
        "tickets",
        derive.places_at_write(source),  # and with its blank places filled from the register
        ["ticket_id"],
        TICKET_VALUES,
        batch_id,
        [*TICKET_DERIVED, *derive.INITIAL_FIELDS],
        before_write=derive.before_tickets_write,
        stored_from={c: f"filled_{c}" for c in derive.TICKET_PLACES},
    )
    derive.after_tickets_write(con, batch_id, every=counts[2] == 0)
    return counts


def _upsert_register(
    con: duckdb.DuckDBPyConnection, config: Config, batch_id: int
) -> tuple[int, int, int]:
    counts = _upsert(
        con,
        "compounds",
        "SELECT * FROM ok_register",
        ["community", "compound"],
        REGISTER_VALUES,
        batch_id,
    )
    derive.after_register_write(con)
    return counts


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
    derive.after_survey_write(con)
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
    names = {
        "sheets": [h[0] for h in headers],
        "fields": [h[1] for h in headers],
        "headers": [h[2] for h in headers],
        "label_fields": list(labels),
        "labels": list(labels.values()),
    }

    def named(table: str) -> str:
        """The rows of bad_rows or value_notes with their column named as the file names it."""
        return f"""WITH header_names AS (
                SELECT DISTINCT unnest($sheets) AS sheet, unnest($fields) AS field,
                    unnest($headers) AS header
            ), field_labels AS (
                SELECT unnest($label_fields) AS field, unnest($labels) AS label
            )
            SELECT b._sheet, b._row,
                coalesce(h.header, l.label, regexp_replace(b.field, '^(item|indicator):', ''))
                    AS column_name,
                gd_scrub(b.raw) AS raw, b.reason, b.kind
            FROM {table} b
            LEFT JOIN header_names h ON h.sheet = b._sheet AND h.field = b.field
            LEFT JOIN field_labels l ON l.field = b.field"""

    con.execute(
        f"""INSERT INTO rejected_rows
        SELECT $batch, $file, _sheet, _row, column_name, raw, reason, kind
        FROM ({named("bad_rows")})""",
        {"batch": batch_id, "file": display, **names},
    )
    for column, raw, note, count in con.execute(
        f"""SELECT column_name, raw, reason, count(*) FROM ({named("value_notes")})
        GROUP BY ALL ORDER BY count(*) DESC, column_name, raw""",
        names,
    ).fetchall():
        report.notes[(str(column), str(raw), str(note))] += int(count)
    for reason, count in con.execute(
        "SELECT reason, count(*) FROM bad_rows GROUP BY reason ORDER BY count(*) DESC"
    ).fetchall():
        report.reasons[str(reason)] += int(count)
    rejected = con.execute("SELECT count(*) FROM (SELECT DISTINCT _sheet, _row FROM bad_rows)")
    row = rejected.fetchone()
    report.rows_rejected = int(row[0]) if row else 0
    per_kind_ok = 0
    for kind in KIND_ORDER:
        if _temp_view_exists(con, f"ok_{kind}"):
            counted = con.execute(f"SELECT count(*) FROM ok_{kind}").fetchone()
            per_kind_ok += int(counted[0]) if counted else 0
    con.execute("DROP VIEW IF EXISTS incoming")
    con.execute("DROP TABLE IF EXISTS incoming_rows")
    for kind in KIND_ORDER:
        drop_cleaned(con, kind)
    report.rows_loaded = per_kind_ok
    report.rows_read = sum(s.rows_read for s in report.sheets)
    report.rows_skipped = report.rows_read - report.rows_loaded - report.rows_rejected
    for sheet in report.sheets:
        sheet.rows_skipped = 0


def _temp_view_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    found = con.execute(
        "SELECT count(*) FROM duckdb_views() WHERE temporary AND view_name = $name",
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


def _recount_batch(con: duckdb.DuckDBPyConnection, batch_id: int) -> None:
    """A batch's rejected and loaded rows counted from its rejections as they now stand."""
    con.execute(
        """UPDATE load_batches SET
            rows_rejected = r.rejected, rows_loaded = greatest(rows_read - r.rejected, 0)
        FROM (SELECT count(*) AS rejected FROM (
                SELECT DISTINCT sheet, row_number FROM rejected_rows WHERE batch_id = $batch)) r
        WHERE batch_id = $batch""",
        {"batch": batch_id},
    )


def fixup_for_batch(
    db_path: Path,
    config: Config,
    batch_id: int,
    actor: str | None = None,
    method: str = "web",
) -> tuple[str, bytes]:
    """(file name, workbook) of a batch's rejected rows for the clerk to correct, each sheet of
    the original read as its load read it (the mapping profile it was loaded with). With an
    `actor`, the download is recorded in the audit log as an export."""
    store = ProfileStore(profiles_path(db_path))
    try:
        saved = store.by_signature()
    except ProfileError:
        saved = {}
    forced: dict[Path, Profile] = {}
    manifest = raw_dir(db_path) / "manifest.jsonl"
    used: list[str] = []
    con = connect_readonly(db_path)
    try:
        row = con.execute(
            "SELECT file_sha256 FROM load_batches WHERE batch_id = $b", {"b": batch_id}
        ).fetchone()
    finally:
        con.close()
    if row is not None and manifest.is_file():
        for line in manifest.read_text(encoding="utf-8").splitlines():
            entry = json.loads(line) if line.strip() else {}
            if entry.get("sha256") == row[0]:
                used = [str(n) for n in entry.get("profiles") or []]
    choice = ProfileChoice(saved)
    locator = HeaderLocator(config)

    def locate(sheet: RawSheet, path: Path) -> LocatedSheet | None:
        if used and path not in forced:
            profile = store.get(used[0])
            if profile is not None:
                forced[path] = profile
                choice.forced = forced
        chosen = choice.locate(sheet, path, config)
        return chosen[0] if chosen is not None else locator.locate(sheet)

    name, data = fixup_workbook(db_path, config, batch_id, locate)
    if actor is not None:
        AuditLog(audit_path(db_path)).record(
            actor,
            "export",
            target=name,
            detail={
                "name": "fixup_workbook",
                "format": "xlsx",
                "batch_id": batch_id,
                "bytes": len(data),
            },
            method=method,
        )
    return name, data


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
            "profiles": report.profiles,  # so a rebuild reads the file the same way
        }
        if report.fixup is not None:
            entry["fixup_of"] = report.fixup.source_sha256
        manifest.write(json.dumps(entry, ensure_ascii=False) + "\n")
    manifest_path.chmod(0o600)


def finalize(con: duckdb.DuckDBPyConnection, config: Config) -> None:
    """Derived state after the upserts: places, as-of time, SLA statuses, repeat requests.

    Computed for the rows this load changed and the rows those changes reach (see
    govdash.etl.derive), with the same result as a recompute over all history; without a
    record of the changes (remapped words, another repeat window) all history is recomputed,
    month by month.
    """
    derive.derive(con, config)
    aggregates.refresh(con)


# --- looking at a file before loading it (the column mapping of the data page) ----------------


@dataclass
class SheetInspection:
    """How the loader would read one sheet: by a saved profile or the built-in header names
    (`located`), or not at all — then `proposal` holds a mapping for the clerk to confirm."""

    sheet: RawSheet
    located: LocatedSheet | None = None
    profile: str | None = None
    proposal: Proposal | None = None

    @property
    def name(self) -> str:
        return self.sheet.name

    @property
    def needs_mapping(self) -> bool:
        return self.located is None and self.proposal is not None


def inspect_file(path: Path, display: str, db_path: Path, config: Config) -> list[SheetInspection]:
    """Each sheet of a file as the next load would read it; raises LoadError for a file that
    cannot be read at all (the same refusal a load gives)."""
    limits = ReadLimits(
        max_rows=config.max_rows_per_file,
        max_unzipped_bytes=config.max_unzipped_mb * 1e6,
        max_compression_ratio=config.max_compression_ratio,
    )
    try:
        sheets = list(read_file(path, limits, Path(display).stem))
    except LoadError as error:
        raise LoadError(display, error.message, error.sheet) from error
    try:
        choice = ProfileChoice(ProfileStore(profiles_path(db_path)).by_signature())
    except ProfileError:
        choice = ProfileChoice()
    locator = HeaderLocator(config)
    found: list[SheetInspection] = []
    for sheet in sheets:
        chosen = choice.locate(sheet, path, config)
        if chosen is not None:
            found.append(SheetInspection(sheet, chosen[0], chosen[1].name))
            continue
        located = locator.locate(sheet)
        proposal = None if located is not None else propose(sheet, config)
        found.append(SheetInspection(sheet, located, None, proposal))
    return found


@dataclass
class Preview:
    """The first rows of a sheet as they would load, and what the loader would say of them."""

    rows: list[dict[str, object]]  # template header → value as it would be stored
    problems: list[tuple[int, str, str, str]]  # Excel row, column, value, reason (rejected)
    notes: list[tuple[int, str, str, str]]  # Excel row, column, value, what was done (loaded)
    personal: list[str]  # mapped columns that are personal data: read, never stored


def preview_rows(
    located: LocatedSheet,
    config: Config,
    limit: int = 5,
    value_maps: Mapping[str, Mapping[str, str]] | None = None,
) -> Preview:
    """Run the real cleaning on the first `limit` data rows, in memory (nothing is written)."""
    sheet = located.sheet
    short = RawSheet(
        sheet.name,
        sheet.table.slice(0, located.data_start + limit),
        sheet.first_row,
        sheet.merged,
        sheet.hidden,
        sheet.find_long_numbers,
    )
    shown = LocatedSheet(
        short,
        located.kind,
        located.header_rows,
        located.data_start,
        located.columns,
        located.headers,
        located.unused,
        located.flat_headers,
    )
    table = _with_sheet_columns(staged_table(shown, 0), shown)
    for spec in kind_fields(located.kind, config):
        if spec.name not in table.column_names:
            table = table.append_column(spec.name, pa.nulls(table.num_rows, pa.string()))
    con = duckdb.connect()
    try:
        ensure_schema(con)
        install_macros(con, config, secrets.token_hex(16))
        create_bad_rows(con)
        refresh_unit_levels(con)
        cleaner = Cleaner(con, config, datetime.now().replace(microsecond=0), value_maps)
        con.register("stage_preview", table)
        cleaner.clean(located.kind, "stage_preview", located.field_names)
        output = con.sql(f"SELECT * FROM ok_{located.kind} ORDER BY _row").to_arrow_table()
        headers = {spec.name: located.headers[j] for j, spec in located.columns.items()}

        def named(table_name: str) -> list[tuple[int, str, str, str]]:
            found = con.execute(
                f"SELECT _row, field, coalesce(gd_scrub(raw), ''), reason FROM {table_name} "
                "ORDER BY _row, field"
            ).fetchall()
            return [
                (int(r), headers.get(str(f), str(f)), str(v), str(reason))
                for r, f, v, reason in found
            ]

        cleaner.collect_notes(located.kind)
        problems, notes = named("bad_rows"), named("value_notes")
    finally:
        con.close()
    labels = {spec.name: spec.label for spec in kind_fields(located.kind, config)}
    mapped = [spec.name for spec in located.columns.values()]
    kept = [name for name in mapped if name in output.column_names]
    rows = [
        {"行号": record["_row"], **{labels[name]: record[name] for name in kept}}
        for record in output.to_pylist()
    ]
    personal = [labels[name] for name in mapped if name not in output.column_names]
    return Preview(rows, problems, notes, personal)


# --- mapping words in rows already loaded ------------------------------------------------------

REMAP_TABLES = {TICKETS: ("tickets", "ticket_id"), REGISTER: ("compounds", "compound")}


def remap_loaded(
    db_path: Path,
    config: Config,
    kind: str,
    values: Mapping[str, Mapping[str, str]],
    actor: str | None = None,
    progress: Progress | None = None,
) -> int:
    """Give the rows already loaded with an unknown word (kept in unmapped_values) the known
    value it is now mapped to, in one new snapshot; returns the rows changed.

    Limits, open state and repeat flags that depend on the field are derived again.
    """
    say = progress or (lambda message: None)
    who = actor or os_user()
    if kind not in REMAP_TABLES:
        raise ValueError(f"{kind} has no classification words to map")
    table, _ = REMAP_TABLES[kind]
    macros = {c.field: c.macro for c in classifications_of(kind, config)}
    changed = 0
    check_not_legacy(db_path)
    with writer_lock(db_path), work_connection(db_path, config) as con:
        install_macros(con, config, hash_key(db_path))
        # One lake transaction: the marker column, the updates and the derived tables are one
        # snapshot, and readers never see _remapped. (The single-file warehouse's 1.5 refusal
        # to commit updates of a table altered in the same transaction does not apply here.)
        con.execute("BEGIN TRANSACTION")
        ensure_schema(con)
        con.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS _remapped BOOLEAN")
        for name, words in values.items():
            if name not in macros:
                raise ValueError(f"{name} is not a classification field of {kind}")
            for raw, canonical in words.items():
                # Field names come from code (classifications_of), never from a widget.
                con.execute(
                    f"""UPDATE {table} SET {name} = {macros[name]}($canonical),
                        unmapped_values = map_from_entries(list_filter(
                            map_entries(unmapped_values), lambda e: e.key != $field)),
                        _remapped = true
                    WHERE unmapped_values[$field] = $raw""",
                    {"canonical": canonical, "field": name, "raw": raw},
                )
        found = con.execute(f"SELECT count(*) FROM {table} WHERE _remapped").fetchone()
        changed = int(found[0]) if found else 0
        if kind == TICKETS:
            con.execute(
                f"""UPDATE tickets SET
                    is_open = NOT (closed_at IS NOT NULL
                        OR coalesce(status IN ({CLOSED_STATUS_LIST}), false)),
                    response_limit_minutes = {sla_case(config, "respond")},
                    resolution_limit_hours = coalesce(committed_hours,
                        {sla_case(config, "resolve")})
                WHERE _remapped"""
            )
        con.execute(f"ALTER TABLE {table} DROP COLUMN _remapped")
        say(f"已按对照更新 {changed:,} 行已加载的数据，正在更新派生字段 …")
        finalize(con, config)
        commit_snapshot(con, "remap", who)
    AuditLog(audit_path(db_path)).record(
        who,
        "values_remapped",
        target=table,
        detail={"kind": kind, "values": {f: dict(m) for f, m in values.items()}, "rows": changed},
        method="loader",
    )
    return changed


# --- the summary a clerk reads -----------------------------------------------------------------


SHOWN_DUPLICATES = 10


def _places(places: Sequence[tuple[str, int]]) -> str:
    """工作表“3月”第 2、5 行、工作表“4月”第 3 行"""
    by_sheet: dict[str, list[int]] = {}
    for sheet, row in places:
        by_sheet.setdefault(sheet, []).append(row)
    return "、".join(
        f"工作表“{sheet}”第 {'、'.join(str(r) for r in rows)} 行"
        for sheet, rows in by_sheet.items()
    )


def _duplicate_lines(duplicates: Sequence[Duplicate]) -> list[str]:
    lines: list[str] = []
    for conflict, heading in (
        (True, "编号重复且内容不同，以下各行均已拒收"),
        (False, "同一编号出现多次（内容一致，按最后一行加载）"),
    ):
        chosen = [d for d in duplicates if d.conflict == conflict]
        if not chosen:
            continue
        lines.append(f"  {heading}：{len(chosen):,} 个编号")
        for duplicate in chosen[:SHOWN_DUPLICATES]:
            lines.append(f"    · {duplicate.key}：{_places(duplicate.places)}")
        if len(chosen) > SHOWN_DUPLICATES:
            lines.append(f"    · 另有 {len(chosen) - SHOWN_DUPLICATES:,} 个编号（见拒收行表）")
    return lines


SHOWN_NOTES = 20


def _note_lines(notes: Counter[tuple[str, str, str]]) -> list[str]:
    """Rows loaded without a value: each value as written, with its count and what was done."""
    if not notes:
        return []
    total = sum(notes.values())
    lines = [f"  已加载但有取值未采用或未识别：{total:,} 处（行已加载，未被拒收）"]
    ordered = sorted(notes.items(), key=lambda item: (-item[1], item[0]))
    for (column, raw, note), count in ordered[:SHOWN_NOTES]:
        lines.append(f"    - {column}“{raw}”：{count:,} 行，{note}")
    if len(ordered) > SHOWN_NOTES:
        lines.append(f"    - 另有 {len(ordered) - SHOWN_NOTES:,} 种取值")
    return lines


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
        if file.fixup is not None:
            lines.append(
                f"✓ {name}（待改正工作簿，{kinds}：改正的行并入批次 {file.batch_id}"
                f"“{file.fixup.source_name}”，{file.seconds:.1f} 秒）"
            )
        else:
            lines.append(f"✓ {name}（{kinds}，批次 {file.batch_id}，{file.seconds:.1f} 秒）")
        used = [s for s in file.sheets if s.kind]
        skipped = [s for s in file.sheets if not s.kind]
        lines.append(
            "  使用的工作表：" + "、".join(f"{s.name}（{s.rows_read:,} 行）" for s in used)
        )
        if file.profiles:
            lines.append("  使用对照方案：" + "、".join(file.profiles))
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
        lines.extend(_duplicate_lines(file.duplicates))
        lines.extend(_note_lines(file.notes))
    if report.skipped_files:
        lines.append(f"跳过的文件（{len(report.skipped_files)} 个）：")
        lines.extend(f"  - {s.path}：{s.reason}" for s in report.skipped_files)
    if not report.files:
        lines.append("没有找到可加载的文件（.xlsx、.xlsm、.xls、.ods、.csv）。")
        return "\n".join(lines)
    good = [f for f in report.files if f.error is None]
    lines.append(
        f"合计：{len(good)}/{len(report.files)} 个文件成功，"
        f"加载 {sum(f.rows_loaded for f in good):,} 行，拒收 {sum(f.rows_rejected for f in good):,} 行。"
    )
    if report.files and any(f.rows_rejected for f in good):
        lines.append("拒收的行及原因见数据仓库 rejected_rows 表（看板“数据管理”页可下载）。")
    return "\n".join(lines)
