"""Column mapping: a sheet whose headers the loader does not know, matched to the template's
fields by name and by what its values look like, and the mapping profiles that remember it.

Header names alone cannot decide: rapidfuzz scores Chinese by shared characters, so 受理编号 is
as close to 工单编号 as to 受理时间 (both 50). The values settle it — a column of codes is an
ID, a column of dates a time — so each proposal adds what the values look like to the name's
score (STACK.md). The clerk confirms or changes every choice; the confirmed mapping becomes a
profile (govdash/core/profiles.py) keyed by the header row's signature.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from rapidfuzz import fuzz

from govdash.core.config import Config
from govdash.core.profiles import Profile
from govdash.etl.fields import (
    BOOLEAN,
    DATE,
    EVALUATION,
    INTEGER,
    KIND_LABELS,
    NUMBER,
    REGISTER,
    SCORE,
    SURVEY,
    TICKETS,
    TIMESTAMP,
    Field,
    build_alias_index,
    header_keys,
    normalize_text,
)
from govdash.etl.locate import (
    HEADER_SEARCH_ROWS,
    KIND_ORDER,
    LocatedSheet,
    kind_fields,
    signature_met,
)
from govdash.etl.readers import RawSheet
from govdash.etl.vocab import FALSE_WORDS, SCORE_WORDS, TRUE_WORDS


class MappingError(ValueError):
    """A mapping that cannot be used; the message says why, in Chinese."""


# --- the header row and its signature ------------------------------------------------------


def sheet_rows(sheet: RawSheet, count: int = HEADER_SEARCH_ROWS + 1) -> list[list[str]]:
    """The first rows of a sheet as cleaned text cells ('' for empty)."""
    head = sheet.table.slice(0, count).to_pylist()
    width = sheet.table.num_columns
    return [
        [
            normalize_text(str(row.get(f"c{j}"))) if row.get(f"c{j}") is not None else ""
            for j in range(width)
        ]
        for row in head
    ]


def flat_headers(rows: list[list[str]], header_row: int, height: int) -> list[str]:
    """One name per column: the lower row where a two-row header has one, else the upper."""
    top = rows[header_row]
    if height == 1 or header_row + 1 >= len(rows):
        return list(top)
    bottom = rows[header_row + 1]
    return [b or t for t, b in zip(top, bottom, strict=False)]


def signature(headers: Iterable[str]) -> str:
    """What identifies a file's header row: its non-empty names, normalised, in order."""
    keys = [header_keys(h)[0] for h in headers if h and header_keys(h)[0]]
    return hashlib.sha256("|".join(keys).encode("utf-8")).hexdigest()[:16]


def header_candidates(rows: list[list[str]]) -> Iterable[tuple[int, int, list[str]]]:
    """(row, height, names) for every row that could be a one- or two-row header."""
    for r in range(min(HEADER_SEARCH_ROWS, len(rows))):
        if sum(1 for cell in rows[r] if cell) < 2:
            continue
        yield r, 1, list(rows[r])
        if r + 1 < len(rows):
            yield r, 2, flat_headers(rows, r, 2)


def header_row_of(rows: list[list[str]]) -> int | None:
    """The row that most likely holds a sheet's header: the first with nearly as many filled
    cells as the fullest of the first rows (title rows above it have one or two)."""
    counts = [sum(1 for cell in row if cell) for row in rows[:HEADER_SEARCH_ROWS]]
    if not counts or max(counts) < 2:
        return None
    fullest = max(counts)
    return next(r for r, n in enumerate(counts) if n >= max(2, 0.8 * fullest))


# --- what a column's values look like ------------------------------------------------------

_DATE = re.compile(r"^\d{4}\s*[-/.年]\s*\d{1,2}\s*[-/.月]\s*\d{1,2}|^\d{4}-\d{2}-\d{2}T")
_SERIAL = re.compile(r"^\d{5}(\.\d+)?$")
_MOBILE = re.compile(r"^(?:\+?86|0086)?1[3-9]\d{9}$")
_LANDLINE = re.compile(r"^0\d{9,11}$")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
_HAN_NAME = re.compile(r"^[\u4e00-\u9fff]{2,4}$")
_SCORE_WORDS = {w for words in SCORE_WORDS.values() for w in words}

TIME, PHONE, YESNO, SCORE_SHAPE, NUMBER_SHAPE, CODE, NAME, LONG, ENUM, TEXT = (
    "time", "phone", "yesno", "score", "number", "code", "name", "long", "enum", "text",
)  # fmt: skip
SHAPE_LABELS = {
    TIME: "日期时间",
    PHONE: "电话号码",
    YESNO: "是/否",
    SCORE_SHAPE: "1–5 分",
    NUMBER_SHAPE: "数字",
    CODE: "编号",
    NAME: "人名",
    LONG: "长文本",
    ENUM: "少数几种取值",
    TEXT: "文字",
    "": "（空列）",
}


def value_shape(values: Sequence[str]) -> str:
    """What most of a column's values look like ("" when it has none)."""
    cells = [v.strip() for v in values if v and v.strip()]
    if not cells:
        return ""

    def share(test: Callable[[str], object]) -> float:
        return sum(1 for v in cells if test(v)) / len(cells)

    distinct = len(set(cells)) / len(cells)
    digits = [re.sub(r"[\s-]", "", v) for v in cells]
    if share(lambda v: _DATE.match(v) or (_SERIAL.match(v) and 20000 <= float(v) <= 80000)) >= 0.8:
        return TIME
    if sum(1 for d in digits if _MOBILE.match(d) or _LANDLINE.match(d)) / len(cells) >= 0.8:
        return PHONE
    words = {*TRUE_WORDS, *FALSE_WORDS}
    if share(lambda v: v.lower() in words) >= 0.9 and len(set(cells)) <= 4:
        return YESNO
    if share(lambda v: v in {"1", "2", "3", "4", "5"} or v in _SCORE_WORDS) >= 0.9:
        return SCORE_SHAPE
    if (
        distinct >= 0.9
        and share(lambda v: bool(re.search(r"\d", v)) and " " not in v and len(v) >= 3) >= 0.9
        and (share(lambda v: not _NUMBER.match(v)) >= 0.5 or share(lambda v: len(v) >= 5) >= 0.9)
    ):
        return CODE
    if share(lambda v: _NUMBER.match(v)) >= 0.9:
        return NUMBER_SHAPE
    if share(lambda v: _HAN_NAME.match(v) and len(v) <= 3) >= 0.8 and distinct >= 0.5:
        return NAME
    if sum(len(v) for v in cells) / len(cells) >= 12:
        return LONG
    if len(set(cells)) <= max(3, 0.5 * len(cells)):
        return ENUM
    return TEXT


_ENUM_FIELDS = {
    "channel", "request_type", "category", "priority", "status", "callback_satisfaction",
    "compound_type", "unit_level", "wave", "method", "respondent_type", "indicator",
}  # fmt: skip
_PLACE_FIELDS = {
    "district", "street", "community", "compound", "grid", "building", "property_company",
    "handling_unit", "unit", "room",
}  # fmt: skip
# Shapes that say clearly what a column is not.
_TELLING = {TIME, PHONE, YESNO, CODE, LONG}


def expected_shapes(spec: Field) -> set[str]:
    """The shapes a field's values take."""
    if spec.name in ("ticket_id", "response_id"):
        return {CODE, NUMBER_SHAPE}
    if spec.name == "id_number":
        return {CODE}
    if spec.parse in (TIMESTAMP, DATE):
        return {TIME}
    if spec.name == "phone":
        return {PHONE}
    if spec.parse == BOOLEAN:
        return {YESNO}
    if spec.parse == SCORE:
        return {SCORE_SHAPE, ENUM}
    if spec.name == "year":
        return {NUMBER_SHAPE, ENUM}
    if spec.parse in (INTEGER, NUMBER):
        return {NUMBER_SHAPE, SCORE_SHAPE}
    if spec.name in ("contact_name", "evaluator"):
        return {NAME, CODE, ENUM}
    if spec.name in ("description", "comment", "note"):
        return {LONG, TEXT}
    if spec.name in _ENUM_FIELDS:
        return {ENUM, SCORE_SHAPE} if spec.name == "callback_satisfaction" else {ENUM}
    if spec.name in _PLACE_FIELDS:
        return {ENUM, TEXT, NAME, CODE}
    if spec.name == "committed_hours":
        return {ENUM, NUMBER_SHAPE, TEXT}
    return {ENUM, TEXT, NUMBER_SHAPE, NAME}


# --- proposing a mapping -------------------------------------------------------------------

MIN_SCORE = 75.0
SAMPLE_ROWS = 200
SHOWN_SAMPLES = 3


@dataclass
class ColumnGuess:
    """One column of a sheet: its header, a few values, what they look like, and the field
    proposed for it (None: left unused)."""

    index: int
    header: str
    samples: list[str]
    shape: str
    field: str | None = None
    score: float = 0.0


@dataclass
class Proposal:
    """A sheet's header row, the kind it seems to be, and a field proposed for each column."""

    sheet: str
    kind: str
    header_row: int  # 0-based row of sheet.table
    excel_row: int  # as Excel numbers it
    columns: list[ColumnGuess]
    scores: dict[str, float] = field(default_factory=dict)  # kind → sum of assigned scores
    height: int = 1  # header rows (a two-row header keeps its lower names)

    def mapping(self) -> dict[int, str]:
        return {c.index: c.field for c in self.columns if c.field}


# Row counters, never data.
ROW_COUNTERS = {"序号", "行号", "no", "#", "序"}


def name_score(header: str, spec: Field, index: Mapping[str, Field]) -> float:
    """100 for a known spelling, else the best fuzzy score against the field's names."""
    keys = header_keys(header)
    if keys[0] in ROW_COUNTERS:
        return 0.0
    if any(index.get(k) is spec for k in keys):
        return 100.0
    names = [header_keys(n)[-1] for n in (spec.label, *spec.aliases)]
    return max((fuzz.WRatio(keys[-1], n) for n in names if n), default=0.0)


def column_score(header: str, shape: str, spec: Field, index: Mapping[str, Field]) -> float:
    score = name_score(header, spec, index)
    if not shape:
        return score
    wanted = expected_shapes(spec)
    if shape in wanted:
        return score + 30
    if shape in _TELLING or wanted <= _TELLING:
        return score - 40
    return score


def _assign(
    headers: list[str], shapes: list[str], fields: tuple[Field, ...]
) -> tuple[dict[int, tuple[str, float]], float]:
    """Each column its best field and each field at most one column, best pairs first."""
    index = build_alias_index(fields)
    pairs = sorted(
        (
            (column_score(header, shapes[j], spec, index), j, spec.name)
            for j, header in enumerate(headers)
            if header
            for spec in fields
        ),
        key=lambda item: -item[0],
    )
    chosen: dict[int, tuple[str, float]] = {}
    taken: set[str] = set()
    for score, j, name in pairs:
        if score < MIN_SCORE or j in chosen or name in taken:
            continue
        chosen[j] = (name, score)
        taken.add(name)
    return chosen, sum(score for _, score in chosen.values())


def propose(sheet: RawSheet, config: Config, kind: str | None = None) -> Proposal | None:
    """A header row and a field for each of its columns, or None for a sheet without one."""
    rows = sheet_rows(sheet)
    header_row = header_row_of(rows)
    if header_row is None or sheet.table.num_rows <= header_row + 1:
        return None
    headers = rows[header_row]
    data = sheet.table.slice(header_row + 1, SAMPLE_ROWS).to_pylist()
    columns = []
    for j, header in enumerate(headers):
        values = [normalize_text(str(r.get(f"c{j}"))) for r in data if r.get(f"c{j}") is not None]
        values = [v for v in values if v]
        samples = list(dict.fromkeys(values))[:SHOWN_SAMPLES]
        columns.append(ColumnGuess(j, header, samples, value_shape(values)))
    shapes = [c.shape for c in columns]
    results = {k: _assign(headers, shapes, kind_fields(k, config)) for k in KIND_ORDER}
    if kind is None:
        usable = [
            k for k, (chosen, _) in results.items()
            if signature_met(k, {name for name, _ in chosen.values()})
        ]  # fmt: skip
        kind = max(usable or list(results), key=lambda k: results[k][1])
    chosen, _ = results[kind]
    _order_times(chosen, data, columns)
    for column in columns:
        if column.index in chosen:
            column.field, column.score = chosen[column.index]
    return Proposal(
        sheet.name,
        kind,
        header_row,
        sheet.first_row + header_row,
        columns,
        {k: total for k, (_, total) in results.items()},
    )


# Times a ticket passes in this order: where two time columns could be either (办件时间 is as
# close to 办结时间 as to 受理时间 by name), their values put them in order.
TIME_ORDER = ("accepted_at", "dispatched_at", "signed_at", "first_response_at", "arrived_at",
              "closed_at")  # fmt: skip


def time_value(text: str) -> float | None:
    """A cell as days since 1899-12-30 (Excel's serial), for ordering; None when not a time."""
    from datetime import datetime

    cleaned = re.sub(r"[年月/.]", "-", text.strip()).replace("日", " ").replace("T", " ")
    if _SERIAL.match(cleaned) or _NUMBER.match(cleaned):
        value = float(cleaned)
        return value if 20000 <= value <= 80000 else None
    match = re.match(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:\s+(\d{1,2}):(\d{1,2}))?", cleaned)
    if match is None:
        return None
    try:
        year, month, day, hour, minute = (int(g) if g else 0 for g in match.groups())
        moment = datetime(year, month, day, hour, minute)
    except ValueError:
        return None
    return (moment - datetime(1899, 12, 30)).total_seconds() / 86400


def _order_times(
    chosen: dict[int, tuple[str, float]], data: list[dict[str, object]], columns: list[ColumnGuess]
) -> None:
    """Give the time fields chosen to the columns in the order their values run."""
    timed = [j for j, (name, _) in chosen.items() if name in TIME_ORDER]
    if len(timed) < 2:
        return

    def median(j: int) -> float:
        values = sorted(
            v for r in data if r.get(f"c{j}") is not None
            if (v := time_value(str(r.get(f"c{j}")))) is not None
        )  # fmt: skip
        return values[len(values) // 2] if values else float("inf")

    fields = sorted((chosen[j] for j in timed), key=lambda item: TIME_ORDER.index(item[0]))
    for j, assigned in zip(sorted(timed, key=median), fields, strict=True):
        chosen[j] = assigned


def proposal_of(located: LocatedSheet) -> Proposal:
    """How the loader reads a recognised sheet, as a proposal the clerk may adjust."""
    sheet = located.sheet
    data = sheet.table.slice(located.data_start, SAMPLE_ROWS).to_pylist()
    columns = []
    for j, header in enumerate(located.flat_headers):
        values = [normalize_text(str(r.get(f"c{j}"))) for r in data if r.get(f"c{j}") is not None]
        values = [v for v in values if v]
        spec = located.columns.get(j)
        columns.append(
            ColumnGuess(
                j,
                header,
                list(dict.fromkeys(values))[:SHOWN_SAMPLES],
                value_shape(values),
                spec.name if spec else None,
                100.0 if spec else 0.0,
            )
        )
    header_row = located.data_start - located.header_rows
    return Proposal(
        sheet.name,
        located.kind,
        header_row,
        sheet.first_row + header_row,
        columns,
        height=located.header_rows,
    )


# --- what a mapping must hold --------------------------------------------------------------

REQUIRED_TEXT = {
    TICKETS: "工单编号、受理时间",
    SURVEY: "问卷编号和至少一道评分题",
    EVALUATION: "年度、被考评单位、评委，以及“指标+得分”或各指标得分列",
    REGISTER: "小区，以及户数或小区类型",
}


def missing_required(kind: str, names: Iterable[str]) -> str | None:
    """What a mapping lacks to load rows of its kind (None when nothing)."""
    return None if signature_met(kind, set(names)) else REQUIRED_TEXT[kind]


def field_options(kind: str, config: Config) -> list[Field]:
    """The fields a column of this kind can be mapped to, in template order."""
    return list(kind_fields(kind, config))


# --- applying a mapping --------------------------------------------------------------------


def located_from_columns(
    sheet: RawSheet,
    kind: str,
    header_row: int,
    height: int,
    columns: Mapping[int, str],
    config: Config,
) -> LocatedSheet:
    """A LocatedSheet from an explicit column → field mapping (a profile or the clerk's)."""
    by_name = {spec.name: spec for spec in kind_fields(kind, config)}
    rows = sheet_rows(sheet, header_row + height)
    flat = flat_headers(rows, header_row, height)
    mapped = {j: by_name[name] for j, name in columns.items() if name in by_name and j < len(flat)}
    unused = [text for j, text in enumerate(flat) if text and j not in mapped]
    return LocatedSheet(
        sheet,
        kind,
        height,
        header_row + height,
        mapped,
        {j: flat[j] for j in mapped},
        unused,
        flat,
    )


def columns_by_header(profile: Profile, headers: Sequence[str]) -> dict[int, str]:
    """Which column of this header row each of the profile's headers names."""
    wanted = {header_keys(h)[0]: name for h, name in profile.columns.items()}
    found: dict[int, str] = {}
    for j, header in enumerate(headers):
        if header:
            name = profile.columns.get(header) or wanted.get(header_keys(header)[0])
            if name and name not in found.values():
                found[j] = name
    return found


def apply_profile(
    sheet: RawSheet, profile: Profile, config: Config, exact: bool = True
) -> LocatedSheet | None:
    """The sheet located by a profile: at the header row whose signature is the profile's,
    or (`exact=False`, a profile the clerk named) the row holding most of its headers."""
    rows = sheet_rows(sheet)
    best: tuple[int, int, int, dict[int, str]] | None = None
    for r, height, names in header_candidates(rows):
        if exact:
            if signature(names) == profile.signature:
                return located_from_columns(
                    sheet, profile.kind, r, height, columns_by_header(profile, names), config
                )
            continue
        columns = columns_by_header(profile, names)
        if not signature_met(profile.kind, set(columns.values())):
            continue  # another table of the file (its register, a notes sheet)
        if best is None or len(columns) > len(best[3]):
            best = (r, height, len(columns), columns)
    if best is None:
        return None
    r, height, _, columns = best
    return located_from_columns(sheet, profile.kind, r, height, columns, config)


def profile_of(
    located: LocatedSheet,
    name: str,
    values: Mapping[str, Mapping[str, str]] | None = None,
) -> Profile:
    """A profile remembering how this sheet was read (its header row and each column's field)."""
    return Profile(
        name=name,
        kind=located.kind,
        signature=signature(located.flat_headers),
        headers=tuple(located.flat_headers),
        columns={located.flat_headers[j]: spec.name for j, spec in located.columns.items()},
        values={f: dict(m) for f, m in (values or {}).items()},
        header_row=located.data_start - located.header_rows,
    )


# --- the command line's --columns and --values -----------------------------------------------


def field_by_label(label: str, config: Config, kind: str | None = None) -> tuple[str, Field]:
    """(kind, field) named by a template header, an English field name or an alias."""
    wanted = header_keys(label)
    found: list[tuple[str, Field]] = []
    for candidate in (kind,) if kind else KIND_ORDER:
        index = build_alias_index(kind_fields(candidate, config))
        for key in wanted:
            if key in index:
                found.append((candidate, index[key]))
                break
    if not found:
        known = "、".join(KIND_LABELS[k] for k in KIND_ORDER)
        raise MappingError(
            f"“{label}”不是模板中的字段名（{known}模板的表头，如 工单编号、受理时间）"
        )
    exact = [f for f in found if f[1].label == label or f[1].name == label]
    return (exact or found)[0]


def parse_columns(text: str, config: Config) -> tuple[str, dict[str, str]]:
    """`受理编号=工单编号,登记时间=受理时间` → (kind, {source header: field name}): the kind of
    table whose template has every field named (the one naming most of them exactly)."""
    pairs: list[tuple[str, str]] = []
    for pair in (p for p in re.split(r"[,，;；\n]", text) if p.strip()):
        if "=" not in pair and "＝" not in pair:
            raise MappingError(f"“{pair.strip()}”应写成“源表头=模板字段名”，如 受理编号=工单编号")
        source, target = (s.strip() for s in re.split(r"[=＝]", pair, maxsplit=1))
        if not source or not target:
            raise MappingError(f"“{pair.strip()}”缺少源表头或模板字段名")
        pairs.append((normalize_text(source), target))
    if not pairs:
        raise MappingError("--columns 为空：应写成“源表头=模板字段名”，多个用逗号分隔")
    for _, target in pairs:
        field_by_label(target, config)  # a name no template has: say which
    candidates: list[tuple[int, str, dict[str, str]]] = []
    for kind in KIND_ORDER:
        try:
            specs = [(source, field_by_label(target, config, kind)[1]) for source, target in pairs]
        except MappingError:
            continue
        exact = sum(
            1 for (_, target), (_, spec) in zip(pairs, specs, strict=True) if spec.label == target
        )
        candidates.append((exact, kind, {source: spec.name for source, spec in specs}))
    if not candidates:
        raise MappingError(
            "--columns 中的模板字段不属于同一类表格（工单、满意度问卷、年度考评评分、小区台账），"
            "请分开加载"
        )
    _, kind, columns = max(candidates, key=lambda c: c[0])
    return kind, columns


def parse_values(
    text: str, kind: str, config: Config, headers: Mapping[str, str] | None = None
) -> dict[str, dict[str, str]]:
    """`诉求类型:物业服务=求助,办理状态:已归档=已办结` → {field: {word: known value}}; a field
    may be named by its template header, an alias, or the file's own header (`headers`)."""
    from govdash.etl.clean import classifications_of, known_values

    mappable = {c.field for c in classifications_of(kind, config)}
    by_name = {spec.name: spec for spec in kind_fields(kind, config)}
    own = {
        header_keys(h)[0]: by_name[name] for h, name in (headers or {}).items() if name in by_name
    }
    found: dict[str, dict[str, str]] = {}
    for pair in (p for p in re.split(r"[,，;；\n]", text) if p.strip()):
        match = re.fullmatch(r"\s*([^:：=＝]+)[:：]([^=＝]+)[=＝](.+?)\s*", pair)
        if match is None:
            raise MappingError(
                f"“{pair.strip()}”应写成“字段:原值=规范值”，如 诉求类型:物业服务=求助"
            )
        label, raw, canonical = (g.strip() for g in match.groups())
        spec = own.get(header_keys(label)[0]) or field_by_label(label, config, kind)[1]
        if spec.name not in mappable:
            raise MappingError(f"“{label}”不是可对照取值的字段（可对照：分类字段与是/否字段）")
        allowed = known_values(spec.name, config)
        if canonical not in allowed:
            raise MappingError(
                f"“{canonical}”不是“{spec.label}”的规范值（应为 {'、'.join(allowed)}）"
            )
        found.setdefault(spec.name, {})[normalize_text(raw)] = canonical
    return found
