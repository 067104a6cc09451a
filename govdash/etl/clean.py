"""Clean staged sheets in DuckDB: parse values, scrub personal data, and split good from bad rows.

Every staged row ends in exactly one place: skipped (blank, footer, repeated header), loaded
(`ok_<kind>`), or rejected (`bad_rows`, one record per problem, the row's number kept).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import duckdb

from govdash.core.config import Config
from govdash.etl.fields import REGISTER, SURVEY, TICKETS
from govdash.etl.locate import INDICATOR_PREFIX, ITEM_PREFIX
from govdash.etl.numbers import SCIENTIFIC
from govdash.etl.readers import EXCEL_ERRORS
from govdash.etl.scrub import scrub_sql
from govdash.etl.vocab import (
    CATEGORY_ALIASES,
    CHANNEL,
    CLOSED_STATUSES,
    FALSE_WORDS,
    FOOTER_PATTERN,
    NO_SATISFACTION_ANSWER,
    PRIORITY,
    REQUEST_TYPE,
    SATISFACTION,
    SCORE_WORDS,
    STATUS,
    TRUE_WORDS,
    UNCLASSIFIED,
    UNIT_LEVEL,
)

FREE_TEXT = ("description", "comment", "note")
# 物业企业 written as one of these: no property company (a self-governed compound).
NO_COMPANY = ("无", "暂无", "无物业", "自管", "自治", "/", "-", "—", "／")  # fmt: skip
MAX_COMMITTED_HOURS = 8760  # a sheet's own 承诺时限 beyond a year is a typing error
_FULL_WIDTH = "".join(chr(code) for code in range(0xFF01, 0xFF5F)) + "\u3000\u00a0"
_HALF_WIDTH = "".join(chr(code) for code in range(0x21, 0x7F)) + "  "


def literal(value: str) -> str:
    """A SQL string literal from a code constant or config value (never from a widget)."""
    return "'" + value.replace("'", "''") + "'"


def one_of(expression: str, words: Iterable[str]) -> str:
    """`expression IN (words…)` written as list_contains: DuckDB 1.5 plans every IN list of six
    or more constants as a MARK hash join of its own (the tickets statement had 131 of them,
    ~4 s CPU and ~750 MB of buffers for any file), a constant list as one expression (2.0 may
    still choose a small join for a few on a big table). NULL in gives NULL out, as IN does."""
    return f"list_contains([{', '.join(literal(w) for w in words)}], {expression})"


def _case_map(expression: str, table: Mapping[str, Iterable[str]], lower: bool = False) -> str:
    arms = []
    for canonical, spellings in table.items():
        keys = {s.lower() if lower else s for s in (canonical, *spellings)}
        arms.append(f"WHEN {one_of(expression, sorted(keys))} THEN {literal(canonical)}")
    return "CASE " + " ".join(arms) + " END"


# A cell gd_text must tidy: full-width ASCII or odd whitespace, or spaces doubled, leading or
# trailing. ODD_ROW is the same test over a row's cells joined by chr(1) (not whitespace): it
# holds wherever one cell's does, so a row it does not hold for (nearly every row of a clean
# export) skips the test cell by cell — one regular expression a row instead of one a cell.
_ODD_CHARACTERS = "[\uff01-\uff5e\u3000\u00a0\\t\\n\\r\\f\\v]"
ODD_CELL = f"{_ODD_CHARACTERS}|\\s\\s|^\\s|\\s$"
ODD_ROW = f"{_ODD_CHARACTERS}|\\s\\s|(^|\\x01)\\s|\\s(\\x01|$)"


def install_macros(con: duckdb.DuckDBPyConnection, config: Config, hash_key: str) -> None:
    """Per-connection helpers; the hashing key lives only in this connection's memory."""
    categories = {c: (c, *CATEGORY_ALIASES.get(c, ())) for c in config.categories}
    score_words = {str(score): words for score, words in SCORE_WORDS.items()}
    macros = {
        # translate() is slow, so one cheap regex sends only odd strings down the slow path.
        "gd_text(s)": f"""CASE
            WHEN regexp_matches(s, {literal(ODD_CELL)})
            THEN nullif(trim(regexp_replace(
                translate(s, {literal(_FULL_WIDTH)}, {literal(_HALF_WIDTH)}), '\\s+', ' ', 'g')), '')
            ELSE nullif(s, '') END""",
        # Free text keeps its Chinese punctuation; only stray whitespace is tidied.
        "gd_free_text(s)": """CASE
            WHEN regexp_matches(s, '[\u3000\u00a0\\t\\n\\r\\f\\v]|\\s\\s|^\\s|\\s$')
            THEN nullif(trim(regexp_replace(s, '[\\s\u3000\u00a0]+', ' ', 'g')), '')
            ELSE nullif(s, '') END""",
        # 2024年3月5日 14时30分, 2024/3/5 14:30, 2024.3.5, 2024-03-05T14:30 → 2024-3-5 14:30
        "gd_date_text(s)": """trim(regexp_replace(regexp_replace(regexp_replace(regexp_replace(
            regexp_replace(s, '(\\d{4})\\s*[年/.]\\s*(\\d{1,2})\\s*[月/.]\\s*(\\d{1,2})\\s*[日号]?',
                           '\\1-\\2-\\3 '),
            '(\\d{1,2})\\s*[时点:]\\s*(\\d{1,2})\\s*分?', '\\1:\\2'),
            '(:\\d{1,2})\\s*[:]?\\s*(\\d{1,2})\\s*秒', '\\1:\\2'),
            '(\\d)T(\\d)', '\\1 \\2'), '\\s+', ' ', 'g'))""",
        # Excel serial numbers (days since 1899-12-30) or text dates in the forms offices use.
        "gd_ts(s)": """CASE
            WHEN s IS NULL THEN NULL
            ELSE coalesce(
                TRY_CAST(s AS TIMESTAMP),  -- ISO text and Excel datetimes: the fast, common case
                CASE WHEN regexp_full_match(s, '\\d{1,6}(\\.\\d+)?') THEN
                    CASE WHEN TRY_CAST(s AS DOUBLE) BETWEEN 1 AND 2958465 THEN
                        TIMESTAMP '1899-12-30'
                        + to_seconds(CAST(round(CAST(s AS DOUBLE) * 86400) AS BIGINT)) END
                END,
                try_strptime(gd_date_text(s),
                    ['%Y-%m-%d %H:%M:%S', '%Y-%m-%d %H:%M', '%Y-%m-%d %H', '%Y-%m-%d',
                     '%Y-%m-%d %H:%M:%S.%f', '%Y%m%d %H:%M:%S', '%Y%m%d %H:%M', '%Y%m%d']))
        END""",
        "gd_bool(s)": f"""CASE
            WHEN s IS NULL THEN NULL
            WHEN {one_of("lower(s)", TRUE_WORDS)} THEN true
            WHEN {one_of("lower(s)", FALSE_WORDS)} THEN false END""",
        "gd_number(s)": "TRY_CAST(replace(regexp_replace(s, '[分户栋个人元\\s]', '', 'g'), ',', '') "
        "AS DOUBLE)",
        "gd_hours(s)": """CASE
            WHEN s IS NULL THEN NULL
            WHEN regexp_full_match(s, '\\d+(\\.\\d+)?\\s*(天|日|d)') THEN
                TRY_CAST(regexp_extract(s, '\\d+(\\.\\d+)?') AS DOUBLE) * 24
            WHEN regexp_full_match(s, '\\d+(\\.\\d+)?\\s*(个)?(小时|时|h|H)?') THEN
                TRY_CAST(regexp_extract(s, '\\d+(\\.\\d+)?') AS DOUBLE)
            WHEN regexp_full_match(s, '\\d+(\\.\\d+)?\\s*(分钟|分|min)') THEN
                TRY_CAST(regexp_extract(s, '\\d+(\\.\\d+)?') AS DOUBLE) / 60 END""",
        # 无 / 自管 / - mean "no property company" (self-governed compounds).
        "gd_company(s)": f"CASE WHEN {one_of('s', NO_COMPANY)} THEN NULL ELSE s END",
        "gd_priority(s)": _case_map("s", PRIORITY),
        "gd_request_type(s)": _case_map("s", REQUEST_TYPE),
        "gd_channel(s)": _case_map(
            "upper(s)", {k: [x.upper() for x in v] for k, v in CHANNEL.items()}
        ),
        # The file's profile maps its own words to known ones (value_map, one table per file).
        "gd_mapped(f, s)": "(SELECT canonical FROM value_map WHERE field = f AND raw = s)",
        "gd_status(s)": _case_map("s", STATUS),
        "gd_satisfaction(s)": _case_map("s", SATISFACTION),
        "gd_category(s)": _case_map("s", categories),
        "gd_unit_level(s)": _case_map("s", UNIT_LEVEL),
        "gd_score(s)": f"""CASE
            WHEN s IS NULL THEN NULL
            WHEN TRY_CAST(s AS DOUBLE) BETWEEN 1 AND 5
                AND TRY_CAST(s AS DOUBLE) = floor(TRY_CAST(s AS DOUBLE))
                THEN CAST(CAST(s AS DOUBLE) AS TINYINT)
            ELSE CAST({_case_map("s", score_words)} AS TINYINT) END""",
        "gd_keyed_hash(s)": f"sha256({literal(hash_key)} || '|' || s)",
        "gd_scrub(s)": scrub_sql("s"),
        # 3栋2单元501 / 3号楼… / 3-2-501 → the building only.
        "gd_building_of(s)": """CASE
            WHEN s IS NULL THEN NULL
            WHEN regexp_matches(s, '^[^\\d]*\\d+[A-Za-z]?(栋|幢|号楼|座|楼)') THEN
                regexp_extract(s, '^([^\\d]*\\d+[A-Za-z]?(栋|幢|号楼|座|楼))', 1)
            WHEN regexp_matches(s, '^\\d+-\\d+-\\d+') THEN regexp_extract(s, '^(\\d+)-', 1) || '栋'
            END""",
        "gd_skip(first, header, all_blank)": f"""CASE
            WHEN all_blank THEN 'blank'
            WHEN regexp_matches(first, {literal(FOOTER_PATTERN)}) THEN 'footer'
            WHEN first = header THEN 'header' END""",
    }
    con.execute(
        "CREATE OR REPLACE TEMP TABLE value_map (field VARCHAR, raw VARCHAR, canonical VARCHAR)"
    )
    for signature, body in macros.items():
        con.execute(f"CREATE OR REPLACE TEMP MACRO {signature} AS ({body})")


@dataclass(frozen=True)
class Check:
    """One way a row can be wrong: a SQL condition over the parsed row, and what to tell."""

    condition: str
    field: str
    raw: str
    reason: str
    field_sql: str | None = None  # where the column varies by row: SQL giving the field name


@dataclass(frozen=True)
class Note:
    """A value the row loads without: an unknown classification word (stored as the field's
    fallback, the word kept in unmapped_values) or a value that cannot be used (`nulls`, the
    parsed column, is emptied). The row is not rejected; the summary lists the note."""

    condition: str
    field: str
    raw: str
    note: str
    nulls: str | None = None


@dataclass(frozen=True)
class Classification:
    """A field whose values name a class (诉求类型, 问题类别 …): a word outside the vocabulary is
    no reason to drop the row. It is stored as `fallback` (SQL; NULL = left empty), the word as
    written is kept in the row's unmapped_values, and the summary counts it."""

    field: str
    label: str
    macro: str  # the SQL macro giving a cell's canonical value, NULL when not known
    blank: str = "NULL"  # SQL stored for an empty cell
    fallback: str = literal(UNCLASSIFIED)
    fallback_text: str = f"计入“{UNCLASSIFIED}”"
    no_answer: tuple[str, ...] = ()  # words meaning "no value": stored empty without a note

    @property
    def lookup(self) -> str:
        """The cell's known value (NULL when unknown), looked up once per row into the column
        `known` names, before parsing: the value, the note and unmapped_values all read it."""
        return f"{self.macro}({_quoted(self.field)}) AS {self.known}"

    @property
    def known(self) -> str:
        return _quoted("k:" + self.field)

    @property
    def parsed(self) -> str:
        column = _quoted(self.field)
        answers = f"WHEN {one_of(column, self.no_answer)} THEN NULL " if self.no_answer else ""
        return (
            f"CASE WHEN {column} IS NULL THEN {self.blank} {answers}"
            f"ELSE coalesce({self.known}, {self.fallback}) END AS v_{self.field}"
        )

    @property
    def unknown(self) -> str:
        column = _quoted(self.field)
        answers = f" AND NOT {one_of(column, self.no_answer)}" if self.no_answer else ""
        return f"{column} IS NOT NULL AND {self.known} IS NULL{answers}"

    @property
    def note(self) -> Note:
        return Note(
            self.unknown,
            self.field,
            _quoted(self.field),
            f"未知的{self.label}，{self.fallback_text}",
        )


@dataclass
class KindSql:
    """The cleaning of one kind: normalise text, parse values, check, and shape the output."""

    texts: list[str]
    parsed: list[str]
    output: list[str]
    checks: list[Check]
    join: str = ""
    notes: list[Note] = field(default_factory=list)
    classifications: list[Classification] = field(default_factory=list)


def classifications_of(kind: str, config: Config) -> list[Classification]:
    """The fields of a kind whose values name a class, and what an unknown word becomes.

    They sort tickets into groups (filters, breakdowns, SLA rules); a word the vocabulary
    does not know still belongs to a real ticket whose times count in every figure, so it
    loads under 未归类. Yes/no answers and the callback's satisfaction are counted only
    where given: an unknown word there is stored as not given.
    """
    if kind == REGISTER:
        return [
            Classification(name, label, "gd_bool", fallback="NULL", fallback_text="按未填写处理")
            for name, label in (
                ("is_red_pm", "是否红色物业取值"),
                ("has_joint_agreement", "是否签订党建联建协议取值"),
            )
        ]
    if kind != TICKETS:
        return []
    unanswered = "按未填写处理（不计入相应比率）"
    return [
        Classification("channel", "来源渠道", "gd_channel"),
        Classification("request_type", "诉求类型", "gd_request_type"),
        Classification("category", "问题类别", "gd_category", literal(config.blank_category)),
        Classification("priority", "紧急程度", "gd_priority", literal(config.blank_priority)),
        Classification("status", "工单状态", "gd_status"),
        Classification(
            "callback_satisfaction",
            "满意度",
            "gd_satisfaction",
            fallback="NULL",
            fallback_text="按未评价处理（不计入满意率）",
            no_answer=NO_SATISFACTION_ANSWER,
        ),
        *(
            Classification(name, label, "gd_bool", fallback="NULL", fallback_text=unanswered)
            for name, label in (
                ("is_valid_callback", "是否有效回访取值"),
                ("is_contacted", "是否联系取值"),
                ("is_resolved", "是否解决取值"),
            )
        ),
    ]


BOOLEAN_WORDS = ("是", "否")


def known_values(field_name: str, config: Config) -> tuple[str, ...]:
    """The values a classification word can be mapped to (the canonical ones)."""
    tables: dict[str, Iterable[str]] = {
        "channel": CHANNEL,
        "request_type": REQUEST_TYPE,
        "category": config.categories,
        "priority": PRIORITY,
        "status": STATUS,
        "callback_satisfaction": SATISFACTION,
    }
    return tuple(tables.get(field_name, BOOLEAN_WORDS))


def unmapped_values(classifications: list[Classification]) -> str:
    """The output column keeping each unknown classification word as written (scrubbed)."""
    entries = ", ".join(
        f"{{'k': {literal(c.field)}, 'v': CASE WHEN {c.unknown} THEN gd_scrub({_quoted(c.field)}) END}}"
        for c in classifications
    )
    # Nearly every row knows all its words: the list is built only for the rows that do not.
    any_unknown = " OR ".join(f"coalesce({c.unknown}, false)" for c in classifications)
    return (
        f"CASE WHEN {any_unknown} "
        f"THEN map_from_entries(list_filter([{entries}], lambda e: e.v IS NOT NULL)) "
        "ELSE CAST(MAP {} AS MAP(VARCHAR, VARCHAR)) END AS unmapped_values"
    )


def long_number_id_reason(label: str) -> str:
    """Why an ID written in scientific notation is refused, and how to keep it exact."""
    return (
        f"{label}是以数字保存的超长编号（科学计数法）：Excel 只保留 15 位有效数字，末几位已经丢失，"
        "无法还原原编号，本行未加载。请从原系统重新导出，或在 Excel 中先把该列设为“文本”格式"
        "再粘贴编号（或在编号前加英文单引号 '），然后重新上传"
    )


def _id_checks(field: str, label: str) -> list[Check]:
    return [
        Check(f"{field} IS NULL", field, "NULL", f"缺少{label}"),
        Check(
            f"regexp_full_match({field}, {literal(SCIENTIFIC.pattern)})",
            field,
            field,
            long_number_id_reason(label),
        ),
    ]


# Rows of one file sharing an ID: the same record listed twice (a ticket re-listed in a later
# monthly sheet) agrees on these; rows that do not are different records under one ID.
DUPLICATE_KEYS = {
    TICKETS: ("ticket_id", "工单编号", "accepted_at", "受理时间不同（不是同一张工单）"),
    SURVEY: (
        "response_id",
        "问卷编号",
        "hash(wave, compound, building, surveyed_on, comment, CAST(answers AS VARCHAR))",
        "内容不同（不是同一份问卷）",
    ),
}


def duplicate_reason(kind: str) -> str:
    _, label, _, differs = DUPLICATE_KEYS[kind]
    return (
        f"{label}重复：同一编号在本文件中出现不止一次，且{differs}，无法判断哪一行正确，"
        "这些行都未加载。请核对编号，改正后重新上传"
    )


@dataclass(frozen=True)
class Duplicate:
    """An ID on more than one row of a file: `conflict` when the rows disagree (all rejected),
    else the same record listed again (the last row loads)."""

    kind: str
    key: str
    places: tuple[tuple[str, int], ...]  # (sheet, Excel row) in file order
    conflict: bool


def _date_checks(field: str, parsed: str, label: str, earliest: str, latest: str) -> list[Check]:
    return [
        Check(
            f"{field} IS NOT NULL AND {parsed} IS NULL",
            field,
            field,
            f"无法识别的{label}（应为日期时间，如 2024-03-05 14:30）",
        ),
        Check(f"{parsed} < {earliest}", field, field, f"{label}早于配置的最早日期，不合理"),
        Check(f"{parsed} > {latest}", field, field, f"{label}晚于当前时间，不合理"),
    ]


def _bool_checks(names: Iterable[str]) -> list[Check]:
    return [
        Check(
            f"{name} IS NOT NULL AND v_{name} IS NULL",
            name,
            name,
            "无法识别的是/否取值（应为 是/否、√/×、Y/N 或 1/0）",
        )
        for name in names
    ]


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class Cleaner:
    """Runs the per-kind cleaning SQL on the staged table of one file."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        config: Config,
        loaded_at: datetime,
        value_maps: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        self.con = con
        self.config = config
        self.earliest = f"TIMESTAMP '{config.earliest_date.isoformat()} 00:00:00'"
        latest = loaded_at + timedelta(days=1)
        self.latest = f"TIMESTAMP '{latest.isoformat(sep=' ', timespec='seconds')}'"
        # field → {word as written: known value}, from the file's mapping profile
        self.value_maps = {f: dict(m) for f, m in (value_maps or {}).items() if m}
        con.execute("DELETE FROM value_map")
        entries = [(f, raw, known) for f, m in self.value_maps.items() for raw, known in m.items()]
        if entries:
            con.execute(
                "INSERT INTO value_map SELECT unnest($fields), unnest($raws), unnest($known)",
                {
                    "fields": [e[0] for e in entries],
                    "raws": [normalize_cell(e[1]) for e in entries],
                    "known": [e[2] for e in entries],
                },
            )

    def clean(
        self,
        kind: str,
        stage: str,
        present: set[str],
        source: duckdb.DuckDBPyConnection | None = None,
        into: Path | None = None,
    ) -> None:
        """Create view ok_<kind> (clean rows) and append problems to bad_rows.

        By default the staged table `stage` is read and the parsed rows stored on this
        cleaner's connection (temp table parsed_<kind>). With `source` and `into`, `stage` is
        read on `source`, another connection of the same database (the load's scratch cursor,
        outside the load's lake transaction; see `prepare_source`), and the parsed rows are
        written to the Parquet file `into`, which parsed_<kind> then reads: nothing of their
        size is created inside this connection's transaction.
        """
        sql: KindSql = getattr(self, f"_{kind}_sql")(present)
        self._run(kind, stage, sql, source, into)

    def prepare_source(self, source: duckdb.DuckDBPyConnection, hash_key: str) -> None:
        """Give `source` what the cleaning reads besides the staged rows: the macros (with the
        hashing key), this file's value_map and the register's unit_levels, copied from this
        connection (small lookups; temp tables of `source`'s own transaction)."""
        install_macros(source, self.config, hash_key)
        for table in ("value_map", "unit_levels"):
            rows = self.con.execute(f"SELECT * FROM {table}").to_arrow_table()  # noqa: F841
            source.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT * FROM rows")

    def _run(
        self,
        kind: str,
        stage: str,
        sql: KindSql,
        source: duckdb.DuckDBPyConnection | None = None,
        into: Path | None = None,
    ) -> None:
        """One materialised pass: normalise → skip → parse → check → shape.

        Only the shaped output, a `_bad` flag and (for bad rows) the list of problems are
        stored; strings are copied once. Good rows are a view over them.
        """
        con = self.con
        # A formula that failed (#N/A, #DIV/0! …) in any column rejects the row: loading it
        # would turn a broken 办结时间 into an open ticket or a lookup error into a place name.
        error_field = " ".join(
            f"WHEN {one_of(f'normalized.{_quoted(c)}', EXCEL_ERRORS)} THEN {literal(c)}"
            for c in sql.texts
        )
        error_value = " ".join(
            f"WHEN {one_of(f'normalized.{_quoted(c)}', EXCEL_ERRORS)} THEN normalized.{_quoted(c)}"
            for c in sql.texts
        )
        # Every error value starts with "#": one cheap test per cell, the list only where it holds.
        any_hash = " OR ".join(f"starts_with(normalized.{_quoted(c)}, '#')" for c in sql.texts)
        sql = KindSql(
            sql.texts,
            [
                *sql.parsed,
                f"CASE WHEN {any_hash} THEN CASE {error_field} END END AS _error_field",
                f"CASE WHEN {any_hash} THEN CASE {error_value} END END AS _error_value",
            ],
            sql.output,
            [
                Check(
                    "_error_field IS NOT NULL",
                    "",
                    "_error_value",
                    "单元格是 Excel 错误值（公式出错，如 #N/A、#DIV/0!、#VALUE!）；"
                    "请在 Excel 中修正公式或改为实际数值后重新导出",
                    field_sql="_error_field",
                ),
                *sql.checks,
            ],
            sql.join,
            sql.notes,
            sql.classifications,
        )
        texts = ", ".join(f"{self._text_sql(c)} AS {_quoted(c)}" for c in sql.texts)
        tidied = [_quoted(c) for c in sql.texts if c not in FREE_TEXT]
        odd_row = (
            f"regexp_matches(concat_ws(chr(1), {', '.join(tidied)}), {literal(ODD_ROW)})"
            if tidied
            else "false"
        )
        lookups = "".join(f", {c.lookup}" for c in sql.classifications)
        all_blank = " AND ".join(f"{_quoted(c)} IS NULL" for c in sql.texts)
        any_problem = " OR ".join(f"coalesce({c.condition}, false)" for c in sql.checks)
        problems = ", ".join(
            f"CASE WHEN {c.condition} THEN {{'field': {c.field_sql or literal(c.field)}, 'raw': "
            f"CAST({c.raw} AS VARCHAR), 'reason': {literal(c.reason)}}} END"
            for c in sql.checks
        )
        notes = [*sql.notes, *(c.note for c in sql.classifications)]
        # Few rows have a note: the list is built only for those. The empty list is typed
        # (DuckDB 1.5 cannot read fields of an untyped [] when a kind has no notes at all).
        no_notes = "CAST([] AS STRUCT(field VARCHAR, raw VARCHAR, reason VARCHAR)[])"
        any_note = " OR ".join(f"coalesce({n.condition}, false)" for n in notes)
        note_list = (
            f"CASE WHEN {any_note} THEN list_filter(["
            + ", ".join(
                f"CASE WHEN {n.condition} THEN {{'field': {literal(n.field)}, 'raw': "
                f"CAST({n.raw} AS VARCHAR), 'reason': {literal(n.note)}}} END"
                for n in notes
            )
            + f"], lambda p: p IS NOT NULL) ELSE {no_notes} END"
            if notes
            else no_notes
        )
        # A value a note sets aside is emptied before the output is shaped.
        emptied: dict[str, list[str]] = {}
        for n in notes:
            if n.nulls:
                emptied.setdefault(n.nulls, []).append(f"coalesce({n.condition}, false)")
        unused = (
            "REPLACE ("
            + ", ".join(
                f"CASE WHEN {' OR '.join(conditions)} THEN NULL ELSE {column} END AS {column}"
                for column, conditions in emptied.items()
            )
            + ")"
            if emptied
            else ""
        )
        parsed = f"""SELECT _sheet, _row, _seq, {", ".join(sql.output)}, _bad, _problems, _notes
            FROM (
                SELECT * {unused} FROM (
                    SELECT *,
                        CASE WHEN _bad THEN list_filter([{problems}], lambda p: p IS NOT NULL) END
                            AS _problems,
                        CASE WHEN NOT _bad THEN {note_list} END AS _notes
                    FROM (
                        SELECT *, ({any_problem}) AS _bad
                        FROM (
                            SELECT *, {", ".join(sql.parsed)}
                            FROM (
                                SELECT *, gd_skip(_first, _header_first, {all_blank}) AS _skip
                                    {lookups}
                                FROM (
                                    SELECT _sheet, _row, _seq, _header_first,
                                        gd_text(coalesce(nullif(trim(_c0), ''),
                                            nullif(trim(_c1), ''), nullif(trim(_c2), ''))) AS _first,
                                        {texts}
                                    FROM (SELECT *, {odd_row} AS _odd_row FROM {stage})
                                )
                            ) AS normalized
                            {sql.join}
                            WHERE _skip IS NULL
                        )
                    )
                )
            )"""
        drop_cleaned(con, kind)
        if into is None or source is None:
            con.execute(f"CREATE TEMP TABLE parsed_{kind} AS {parsed}")
        else:
            source.execute(f"COPY ({parsed}) TO {literal(str(into))} (FORMAT parquet)")
            con.execute(
                f"CREATE TEMP VIEW parsed_{kind} AS SELECT * FROM read_parquet({literal(str(into))})"
            )
        con.execute(
            f"""INSERT INTO bad_rows
            SELECT {literal(kind)}, _sheet, _row, p.field, p.raw, p.reason
            FROM (SELECT _sheet, _row, unnest(_problems) AS p FROM parsed_{kind} WHERE _bad)"""
        )
        self._good_rows(kind, [])

    def _good_rows(self, kind: str, conflicts: Sequence[str]) -> None:
        """Views good_<kind> (the rows that load, with their notes) and ok_<kind> (their
        fields): the rows without problems, less those whose ID is in `conflicts` (rejected
        by separate_duplicates; parsed_<kind> is never changed, it may be a Parquet file)."""
        con = self.con
        con.execute(f"DROP TABLE IF EXISTS conflicts_{kind}")
        excluded = ""
        if conflicts:
            key = DUPLICATE_KEYS[kind][0]
            con.execute(
                f"CREATE TEMP TABLE conflicts_{kind} AS SELECT unnest($keys) AS conflict",
                {"keys": list(conflicts)},
            )
            excluded = f" AND NOT coalesce({key} IN (SELECT conflict FROM conflicts_{kind}), false)"
        con.execute(
            f"""CREATE OR REPLACE TEMP VIEW good_{kind} AS
            SELECT * FROM parsed_{kind} WHERE NOT _bad{excluded}"""
        )
        con.execute(
            f"""CREATE OR REPLACE TEMP VIEW ok_{kind} AS
            SELECT * EXCLUDE (_bad, _problems, _notes) FROM good_{kind}"""
        )

    def _text_sql(self, column: str) -> str:
        """A staged cell cleaned; where the file's profile maps its words, mapped. A cell of a
        row none of whose cells is odd (`_odd_row`, ODD_ROW) is as gd_text leaves it: itself,
        or NULL if empty."""
        name = _quoted(column)
        cleaned = (
            f"gd_free_text({name})"
            if column in FREE_TEXT
            else f"CASE WHEN _odd_row THEN gd_text({name}) ELSE nullif({name}, '') END"
        )
        if column in self.value_maps:
            return f"coalesce(gd_mapped({literal(column)}, {cleaned}), {cleaned})"
        return cleaned

    def collect_notes(self, kind: str) -> dict[tuple[str, str], int]:
        """The notes of the rows that load (after duplicates were separated) into value_notes;
        returns the unknown classification words: (field, word as written) → rows."""
        self.con.execute(
            f"""INSERT INTO value_notes
            SELECT {literal(kind)}, _sheet, _row, p.field, gd_scrub(p.raw), p.reason
            FROM (SELECT _sheet, _row, unnest(_notes) AS p FROM good_{kind})"""
        )
        reasons = [c.note.note for c in classifications_of(kind, self.config)]
        if not reasons:
            return {}
        found = self.con.execute(
            """SELECT field, raw, count(*) FROM value_notes
            WHERE kind = $kind AND reason IN (SELECT unnest($reasons)) GROUP BY ALL""",
            {"kind": kind, "reasons": reasons},
        ).fetchall()
        return {(str(name), str(raw)): int(count) for name, raw, count in found}

    def separate_duplicates(self, kind: str) -> list[Duplicate]:
        """IDs on more than one good row of the file: rows that disagree are all rejected (two
        records must never collapse into one ID silently); a record listed again is kept once
        (the last row wins) and reported."""
        if kind not in DUPLICATE_KEYS:
            return []
        key, _, identity, _ = DUPLICATE_KEYS[kind]
        con = self.con
        # The IDs on more than one row first (a count per ID, which DuckDB can spill), then
        # the details of those few: lists for every ID of a 10M-row file would not fit.
        found = con.execute(
            f"""WITH repeated AS (SELECT {key} FROM ok_{kind} GROUP BY {key} HAVING count(*) > 1)
            SELECT {key}, count(DISTINCT identity) > 1 AS conflict,
                list([_sheet, CAST(_row AS VARCHAR)] ORDER BY _seq) AS places
            FROM (SELECT {key}, {identity} AS identity, _sheet, _row, _seq FROM ok_{kind}
                  WHERE {key} IN (SELECT {key} FROM repeated))
            GROUP BY {key}
            ORDER BY min(_seq)"""
        ).fetchall()
        conflicts = [str(row[0]) for row in found if row[1]]
        if conflicts:
            con.execute(
                f"""INSERT INTO bad_rows
                SELECT {literal(kind)}, _sheet, _row, {literal(key)}, {key},
                    {literal(duplicate_reason(kind))}
                FROM parsed_{kind} WHERE NOT _bad AND {key} IN (SELECT unnest($keys))""",
                {"keys": conflicts},
            )
            self._good_rows(kind, conflicts)
        return [
            Duplicate(
                kind,
                str(value),
                tuple((str(sheet), int(row)) for sheet, row in places),
                bool(conflict),
            )
            for value, conflict, places in found
        ]

    # --- tickets ------------------------------------------------------------------------------
    def _tickets_sql(self, present: set[str]) -> KindSql:
        e, lt = self.earliest, self.latest
        texts = (
            "ticket_id channel request_type category priority district street community "
            "compound grid building property_company status committed_hours is_valid_callback "
            "is_contacted is_resolved callback_satisfaction phone room contact_name description "
            "accepted_at first_response_at arrived_at closed_at dispatched_at signed_at "
            "handling_unit"
        ).split()
        classifications = classifications_of(TICKETS, self.config)
        parsed = [
            "gd_ts(accepted_at) AS t_accepted",
            "gd_ts(first_response_at) AS t_response",
            "gd_ts(arrived_at) AS t_arrived",
            "gd_ts(closed_at) AS t_closed",
            "gd_ts(dispatched_at) AS t_dispatched",
            "gd_ts(signed_at) AS t_signed",
            *(c.parsed for c in classifications),
            "gd_hours(committed_hours) AS v_committed",
            # the row's own 联系人 is dropped, and so is its echo inside the description
            "CASE WHEN length(contact_name) >= 2 THEN replace(description, contact_name, '[姓名]') "
            "ELSE description END AS v_description",
            # digits only, without a +86 / 0086 country code
            "regexp_replace(regexp_replace(phone, '\\D', '', 'g'), '^(0086|86)(1[3-9]\\d{9})$', '\\2')"
            " AS v_phone_digits",
        ]
        checks = [
            *_id_checks("ticket_id", "工单编号"),
            Check("accepted_at IS NULL", "accepted_at", "NULL", "缺少受理时间"),
            *_date_checks("accepted_at", "t_accepted", "受理时间", e, lt),
            *_date_checks("first_response_at", "t_response", "首次响应时间", e, lt),
            *_date_checks("arrived_at", "t_arrived", "到场时间", e, lt),
            *_date_checks("closed_at", "t_closed", "办结时间", e, lt),
            Check(
                "t_response < t_accepted",
                "first_response_at",
                "first_response_at",
                "首次响应时间早于受理时间",
            ),
            Check("t_arrived < t_accepted", "arrived_at", "arrived_at", "到场时间早于受理时间"),
            Check("t_closed < t_accepted", "closed_at", "closed_at", "办结时间早于受理时间"),
        ]
        unused = "，该值未采用"
        notes = [
            # The hotline's steps feed their own figure (派单 → 签收), not the ticket's response
            # or close: a bad step time leaves that figure out for the ticket, nothing more.
            *(
                Note(check.condition, check.field, check.raw, check.reason + unused, parsed_name)
                for name, parsed_name, label in (
                    ("dispatched_at", "t_dispatched", "派单时间"),
                    ("signed_at", "t_signed", "签收时间"),
                )
                for check in _date_checks(name, parsed_name, label, e, lt)
            ),
            Note("t_dispatched < t_accepted", "dispatched_at", "dispatched_at",
                 "派单时间早于受理时间" + unused, "t_dispatched"),
            Note("t_signed < coalesce(t_dispatched, t_accepted)", "signed_at", "signed_at",
                 "签收时间早于派单（或受理）时间" + unused, "t_signed"),
            # A sheet's own 承诺时限 only overrides the SLA table: without it the table applies.
            Note(
                "committed_hours IS NOT NULL AND v_committed IS NULL",
                "committed_hours",
                "committed_hours",
                "无法识别的承诺时限（应为如 24小时、3天；工作日时限请改用配置的 SLA 规则）"
                "，该值未采用，按配置的 SLA 规则计算",
                "v_committed",
            ),
            Note(
                f"v_committed <= 0 OR v_committed > {MAX_COMMITTED_HOURS}",
                "committed_hours",
                "committed_hours",
                f"承诺时限不合理（应大于 0 且不超过 {MAX_COMMITTED_HOURS} 小时，即一年）"
                "，该值未采用，按配置的 SLA 规则计算",
                "v_committed",
            ),
        ]  # fmt: skip
        output = [
            "ticket_id",
            "v_channel AS channel",
            "v_request_type AS request_type",
            "v_category AS category",
            "v_priority AS priority",
            "district",
            "street",
            "community",
            "compound",
            "grid",
            "coalesce(building, gd_building_of(room)) AS building",
            "gd_company(property_company) AS property_company",
            "t_accepted AS accepted_at",
            "t_response AS first_response_at",
            "t_arrived AS arrived_at",
            "t_closed AS closed_at",
            "v_status AS status",
            "v_is_valid_callback AS is_valid_callback",
            "v_is_contacted AS is_contacted",
            "v_is_resolved AS is_resolved",
            "v_callback_satisfaction AS callback_satisfaction",
            "CASE WHEN length(v_phone_digits) >= 7 THEN gd_keyed_hash(v_phone_digits) END "
            "AS caller_hash",
            "gd_scrub(v_description) AS description",
            "v_committed AS committed_hours",
            f"{'TRUE' if 'first_response_at' in present else 'FALSE'} AS has_response_column",
            "t_dispatched AS dispatched_at",
            "t_signed AS signed_at",
            "handling_unit",
            unmapped_values(classifications),
        ]
        return KindSql(texts, parsed, output, checks, notes=notes, classifications=classifications)

    # --- register ---------------------------------------------------------------------------
    def _register_sql(self, present: set[str]) -> KindSql:
        e, lt = self.earliest, self.latest
        texts = (
            "district street community compound compound_type grid households buildings "
            "property_company is_red_pm has_joint_agreement agreement_signed_on "
            "red_pm_certified_on"
        ).split()
        classifications = classifications_of(REGISTER, self.config)
        parsed = [
            "gd_number(households) AS v_households",
            "gd_number(buildings) AS v_buildings",
            *(c.parsed for c in classifications),
            "gd_ts(agreement_signed_on) AS v_agreement_signed_on",
            "gd_ts(red_pm_certified_on) AS v_red_pm_certified_on",
        ]
        checks = [
            Check("compound IS NULL", "compound", "NULL", "缺少小区名称"),
            *[
                Check(
                    f"{name} IS NOT NULL AND (v_{name} IS NULL OR v_{name} < 0 "
                    f"OR v_{name} != floor(v_{name}) OR v_{name} > 100000)",
                    name,
                    name,
                    f"{label}应为非负整数",
                )
                for name, label in (("households", "户数"), ("buildings", "楼栋数"))
            ],
            *_date_checks(
                "agreement_signed_on", "v_agreement_signed_on", "党建联建签约日期", e, lt
            ),
            *_date_checks(
                "red_pm_certified_on", "v_red_pm_certified_on", "红色物业认定日期", e, lt
            ),
        ]
        output = [
            "district",
            "street",
            "community",
            "compound",
            "compound_type",
            "grid",
            # Rejected rows are shaped too before they are dropped: 10^12 must not fail the cast.
            "TRY_CAST(v_households AS INTEGER) AS households",
            "TRY_CAST(v_buildings AS INTEGER) AS buildings",
            "gd_company(property_company) AS property_company",
            "coalesce(v_is_red_pm, CASE WHEN v_red_pm_certified_on IS NOT NULL THEN true END) "
            "AS is_red_pm",
            "coalesce(v_has_joint_agreement, "
            "CASE WHEN v_agreement_signed_on IS NOT NULL THEN true END) AS has_joint_agreement",
            "CAST(v_agreement_signed_on AS DATE) AS agreement_signed_on",
            "CAST(v_red_pm_certified_on AS DATE) AS red_pm_certified_on",
            unmapped_values(classifications),
        ]
        return KindSql(texts, parsed, output, checks, classifications=classifications)

    # --- surveys ----------------------------------------------------------------------------
    def _survey_sql(self, present: set[str]) -> KindSql:
        e, lt = self.earliest, self.latest
        items = sorted(name for name in present if name.startswith(ITEM_PREFIX))
        texts = (
            "response_id wave method district street community compound building room contact_name "
            "respondent_type surveyed_on comment"
        ).split() + items
        parsed = [
            *(f"gd_score({_quoted(name)}) AS {_quoted('s:' + name)}" for name in items),
            "gd_ts(surveyed_on) AS v_surveyed_on",
            "CASE WHEN length(contact_name) >= 2 THEN replace(comment, contact_name, '[姓名]') "
            "ELSE comment END AS v_comment",
            "coalesce(TRY_CAST(regexp_extract(wave, '(20\\d\\d)', 1) AS INTEGER), "
            "year(gd_ts(surveyed_on))) AS v_wave_year",
            """CASE
                WHEN regexp_matches(wave, '下半年|第二|二期|秋|冬|第2|下期|二季度|三季度|四季度')
                    THEN 2
                WHEN wave IS NOT NULL THEN 1
                WHEN month(gd_ts(surveyed_on)) > 6 THEN 2
                ELSE 1 END AS v_wave_index""",
        ]
        checks = [
            *_id_checks("response_id", "问卷编号"),
            Check(
                "v_wave_year IS NULL",
                "wave",
                "wave",
                "无法确定调查批次的年份（请填写“调查批次”，如 2024年上半年）",
            ),
            *_date_checks("surveyed_on", "v_surveyed_on", "调查日期", e, lt),
            *(
                Check(
                    f"{_quoted(name)} IS NOT NULL AND {_quoted('s:' + name)} IS NULL",
                    name,
                    _quoted(name),
                    "评分应为 1–5 的整数，或“非常满意/满意/基本满意/不满意/非常不满意”",
                )
                for name in items
            ),
        ]
        entries = ", ".join(
            f"{{'k': {literal(name.removeprefix(ITEM_PREFIX))}, 'v': {_quoted('s:' + name)}}}"
            for name in items
        )
        answers = (
            f"map_from_entries(list_filter([{entries}], lambda x: x.v IS NOT NULL))"
            if items
            else "MAP {}"
        )
        output = [
            "response_id",
            "coalesce(wave, CAST(v_wave_year AS VARCHAR) || "
            "CASE v_wave_index WHEN 1 THEN '年上半年' ELSE '年下半年' END) AS wave",
            "v_wave_year AS wave_year",
            "v_wave_index AS wave_index",
            "method",
            "district",
            "street",
            "community",
            "compound",
            "coalesce(building, gd_building_of(room)) AS building",
            "respondent_type",
            "CAST(v_surveyed_on AS DATE) AS surveyed_on",
            "gd_scrub(v_comment) AS comment",
            f"{answers} AS answers",
        ]
        return KindSql(texts, parsed, output, checks)

    # --- evaluation scores --------------------------------------------------------------------
    def _evaluation_sql(self, present: set[str]) -> KindSql:
        """Wide sheets (one column per indicator) and long ones (指标/得分) end in one shape."""
        points = {i.name: i.points for i in self.config.indicators if i.source == "evaluator"}
        wide = sorted(name for name in present if name.startswith(INDICATOR_PREFIX))
        texts = "year unit unit_level evaluator bonus penalty veto note indicator score".split()
        texts += wide
        pairs = [
            f"{{'indicator': {literal(name.removeprefix(INDICATOR_PREFIX))}, "
            f"'raw': {_quoted(name)}}}"
            for name in wide
        ]
        pairs.append("{'indicator': indicator, 'raw': score}")
        points_map = "MAP {" + ", ".join(f"{literal(k)}: {v}" for k, v in points.items()) + "}"
        adjustments = one_of("indicator", ("加分", "加分项", "扣分", "扣分项", "一票否决"))
        max_bonus = self.config.max_bonus
        total_points = sum(indicator.points for indicator in self.config.indicators)
        parsed = [
            f"{points_map} AS pts",
            "TRY_CAST(regexp_extract(year, '(\\d{4})', 1) AS INTEGER) AS v_year",
            "coalesce(gd_unit_level(unit_level), ref.level) AS v_level",
            f"coalesce({adjustments}, false) AS is_adjustment_row",
            f"""CASE WHEN {adjustments} THEN []
                ELSE list_filter([{", ".join(pairs)}],
                                 lambda s: s.indicator IS NOT NULL OR s.raw IS NOT NULL) END
                AS scores""",
            "coalesce(gd_number(bonus), CASE WHEN indicator IN ('加分', '加分项') "
            "THEN gd_number(score) END) AS v_bonus",
            "coalesce(gd_number(penalty), CASE WHEN indicator IN ('扣分', '扣分项') "
            "THEN gd_number(score) END) AS v_penalty",
            "coalesce(gd_bool(veto), CASE WHEN indicator = '一票否决' THEN gd_bool(score) END) "
            "AS v_veto",
        ]
        # Long sheets: the 指标/得分 pair; wide sheets: one check per indicator column, so the
        # clerk is pointed at the column as written.
        long_score = "indicator IS NOT NULL AND NOT is_adjustment_row"
        score_checks = [
            Check(
                f"{long_score} AND score IS NOT NULL AND NOT contains(map_keys(pts), indicator)",
                "indicator",
                "indicator",
                "未知的考评指标（不在配置的指标体系中）",
            ),
            Check(
                "score IS NOT NULL AND gd_number(score) IS NULL AND NOT is_adjustment_row",
                "score",
                "score",
                "无法识别的得分（应为数字）",
            ),
            Check(
                f"{long_score} AND contains(map_keys(pts), indicator) AND "
                "(gd_number(score) < 0 OR gd_number(score) > pts[indicator])",
                "score",
                "score",
                "得分超出该指标的分值范围（0 到满分）",
            ),
        ]
        for name in wide:
            column = _quoted(name)
            points_max = points[name.removeprefix(INDICATOR_PREFIX)]
            score_checks += [
                Check(
                    f"{column} IS NOT NULL AND gd_number({column}) IS NULL",
                    name,
                    column,
                    "无法识别的得分（应为数字）",
                ),
                Check(
                    f"gd_number({column}) < 0 OR gd_number({column}) > {points_max}",
                    name,
                    column,
                    f"得分超出该指标的分值范围（0 到 {points_max:g}）",
                ),
            ]
        checks = [
            Check("year IS NULL", "year", "NULL", "缺少年度"),
            Check(
                "year IS NOT NULL AND (v_year IS NULL OR v_year NOT BETWEEN 2000 AND 2100)",
                "year",
                "year",
                "无法识别的年度（应为如 2024）",
            ),
            Check("unit IS NULL", "unit", "NULL", "缺少被考评单位"),
            Check("evaluator IS NULL", "evaluator", "NULL", "缺少评委"),
            Check(
                "unit IS NOT NULL AND v_level IS NULL",
                "unit_level",
                "unit_level",
                "无法判断单位类型（请填写“单位类型”：小区/社区/物业企业）",
            ),
            *score_checks,
            Check(
                "indicator IS NOT NULL AND score IS NULL AND NOT is_adjustment_row",
                "score",
                "NULL",
                "缺少得分",
            ),
            Check(
                f"v_bonus < 0 OR v_bonus > {max_bonus}",
                "bonus",
                "bonus",
                f"加分应在 0 到 {max_bonus:g} 之间",
            ),
            Check(
                "bonus IS NOT NULL AND v_bonus IS NULL",
                "bonus",
                "bonus",
                "无法识别的加分（应为数字）",
            ),
            Check(
                f"v_penalty < 0 OR v_penalty > {total_points:g}",
                "penalty",
                "penalty",
                f"扣分应在 0 到 {total_points:g} 之间（指标体系总分）",
            ),
            Check(
                "penalty IS NOT NULL AND v_penalty IS NULL",
                "penalty",
                "penalty",
                "无法识别的扣分（应为数字）",
            ),
            *_bool_checks(("veto",)),
        ]
        output = [
            "v_year AS year",
            "v_level AS unit_level",
            "unit",
            "'评委-' || upper(substr(gd_keyed_hash('evaluator|' || evaluator), 1, 6)) AS evaluator",
            "list_transform(list_filter(scores, lambda s: s.raw IS NOT NULL), "
            "lambda s: {'indicator': s.indicator, 'score': gd_number(s.raw)}) AS scores",
            "v_bonus AS bonus",
            "v_penalty AS penalty",
            "v_veto AS is_veto",
            "gd_scrub(note) AS note",
            "is_adjustment_row",
        ]
        join = "LEFT JOIN unit_levels AS ref ON ref.unit = normalized.unit"
        return KindSql(texts, parsed, output, checks, join)


def create_bad_rows(con: duckdb.DuckDBPyConnection) -> None:
    """The file's problems: bad_rows (rows rejected) and value_notes (rows loaded without a value)."""
    for table in ("bad_rows", "value_notes"):
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {table} (
                kind VARCHAR, _sheet VARCHAR, _row BIGINT, field VARCHAR, raw VARCHAR,
                reason VARCHAR)"""
        )


def drop_cleaned(con: duckdb.DuckDBPyConnection, kind: str) -> None:
    """Drop what Cleaner.clean made for `kind` on `con` (its views, parsed rows, conflicts)."""
    for view in (f"ok_{kind}", f"good_{kind}"):
        con.execute(f"DROP VIEW IF EXISTS {view}")
    for name, kind_of in con.execute(
        """SELECT table_name, 'TABLE' FROM duckdb_tables()
            WHERE temporary AND table_name IN ($parsed, $conflicts)
        UNION ALL SELECT view_name, 'VIEW' FROM duckdb_views()
            WHERE temporary AND view_name = $parsed""",
        {"parsed": f"parsed_{kind}", "conflicts": f"conflicts_{kind}"},
    ).fetchall():
        con.execute(f"DROP {kind_of} {name}")


def normalize_cell(value: str) -> str:
    """A word as gd_text cleans a cell: full-width ASCII to half width, spaces collapsed."""
    text = value.translate(str.maketrans(_FULL_WIDTH, _HALF_WIDTH))
    return " ".join(text.split())


def refresh_unit_levels(con: duckdb.DuckDBPyConnection) -> None:
    """Unit names the register makes unambiguous, so evaluation sheets may omit 单位类型."""
    con.execute(
        """CREATE OR REPLACE TEMP TABLE unit_levels AS
        WITH names AS (
            SELECT DISTINCT compound AS unit, 'compound' AS level FROM compounds
            UNION SELECT DISTINCT community, 'community' FROM compounds WHERE community IS NOT NULL
            UNION SELECT DISTINCT property_company, 'property_company' FROM compounds
                WHERE property_company IS NOT NULL
        )
        SELECT unit, any_value(level) AS level FROM names GROUP BY unit HAVING count(*) = 1"""
    )


CLOSED_STATUS_LIST = ", ".join(literal(s) for s in CLOSED_STATUSES)
