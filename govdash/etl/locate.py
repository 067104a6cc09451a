"""Find a sheet's header (title rows, two-row merged headers), its kind and its data rows."""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from govdash.core.config import Config
from govdash.etl.fields import (
    EVALUATION,
    FIELDS,
    ID_FIELDS,
    ITEM_ALIASES,
    NUMBER,
    REGISTER,
    SCORE,
    SURVEY,
    TICKETS,
    Field,
    build_alias_index,
    header_keys,
    normalize_text,
)
from govdash.etl.readers import RawSheet, int_range

HEADER_SEARCH_ROWS = 30
LEADING_COLUMNS = 3  # footers (合计, 制表人…) and repeated headers show in the first columns
ITEM_PREFIX = "item:"
INDICATOR_PREFIX = "indicator:"


@dataclass
class LocatedSheet:
    """A sheet whose header was found: which column holds which field, and where data starts."""

    sheet: RawSheet
    kind: str
    header_rows: int  # 1 or 2
    data_start: int  # index into sheet.table of the first row below the header
    columns: dict[int, Field]  # table column index → field
    headers: dict[int, str]  # table column index → header text as written
    unused: list[str] = field(default_factory=list)
    flat_headers: list[str] = field(default_factory=list)

    @property
    def field_names(self) -> set[str]:
        return {f.name for f in self.columns.values()}

    @property
    def first_header_text(self) -> str:
        """The header over the first non-empty of the leading columns, to spot repeated headers."""
        return next((text for text in self.flat_headers[:LEADING_COLUMNS] if text), "")


def kind_fields(kind: str, config: Config) -> tuple[Field, ...]:
    """A kind's fields, with the survey items and evaluator indicators of the config added."""
    fields = FIELDS[kind]
    if kind == SURVEY:
        fields = fields + tuple(
            Field(ITEM_PREFIX + item, item, SCORE, ITEM_ALIASES.get(item, ()))
            for item in config.survey_items
        )
    if kind == EVALUATION:
        fields = fields + tuple(
            Field(INDICATOR_PREFIX + ind.name, ind.name, NUMBER)
            for ind in config.indicators
            if ind.source == "evaluator"
        )
    return fields


def signature_met(kind: str, names: set[str]) -> bool:
    if kind == TICKETS:
        return {"ticket_id", "accepted_at"} <= names
    if kind == SURVEY:
        return "response_id" in names and any(n.startswith(ITEM_PREFIX) for n in names)
    if kind == EVALUATION:
        long_form = {"indicator", "score"} <= names
        wide_form = any(n.startswith(INDICATOR_PREFIX) for n in names)
        return {"year", "unit", "evaluator"} <= names and (long_form or wide_form)
    if kind == REGISTER:
        return "compound" in names and ("households" in names or "compound_type" in names)
    return False


KIND_ORDER = (TICKETS, SURVEY, EVALUATION, REGISTER)


class HeaderLocator:
    """Scores candidate header rows against every kind's alias table."""

    def __init__(self, config: Config) -> None:
        self.indexes = {kind: build_alias_index(kind_fields(kind, config)) for kind in KIND_ORDER}

    def locate(self, sheet: RawSheet) -> LocatedSheet | None:
        table = sheet.table
        if table.num_rows == 0 or table.num_columns == 0:
            return None
        head = table.slice(0, HEADER_SEARCH_ROWS + 1).to_pylist()
        rows = [[_cell(row.get(f"c{j}")) for j in range(table.num_columns)] for row in head]
        best: tuple[int, int, str, dict[int, Field], dict[int, str]] | None = None
        for r in range(min(HEADER_SEARCH_ROWS, len(rows))):
            if sum(1 for cell in rows[r] if cell) < 2:
                continue
            candidates = [(1, [[c] if c else [] for c in rows[r]])]
            if r + 1 < len(rows):
                candidates.append((2, self._two_row_names(sheet, rows, r)))
            for height, names in candidates:
                for kind in KIND_ORDER:
                    mapping, texts, child_hits = self._match(kind, names)
                    if height == 2 and child_hits < 2:
                        continue
                    if not signature_met(kind, {f.name for f in mapping.values()}):
                        continue
                    score = len(mapping)
                    if best is None or score > best[0]:
                        best = (score, r * 2 + height, kind, mapping, texts)
        if best is None:
            return None
        _, position, kind, mapping, texts = best
        header_row, height = divmod(position - 1, 2)
        height += 1
        flat = _flat_headers(rows, header_row, height)
        unused = [text for j, text in enumerate(flat) if text and j not in mapping]
        return LocatedSheet(sheet, kind, height, header_row + height, mapping, texts, unused, flat)

    def _match(
        self, kind: str, names: list[list[str]]
    ) -> tuple[dict[int, Field], dict[int, str], int]:
        index = self.indexes[kind]
        mapping: dict[int, Field] = {}
        texts: dict[int, str] = {}
        taken: set[str] = set()
        child_hits = 0
        for j, options in enumerate(names):
            for position, option in enumerate(options):
                found = next((index[k] for k in header_keys(option) if k in index), None)
                if found is not None and found.name not in taken:
                    mapping[j] = found
                    texts[j] = option
                    taken.add(found.name)
                    if position == 0 and len(options) > 1:
                        child_hits += 1
                    break
        return mapping, texts, child_hits

    @staticmethod
    def _two_row_names(sheet: RawSheet, rows: list[list[str]], r: int) -> list[list[str]]:
        """Per column: [child, parent+child, parent], the parent spread over its merged span."""
        parent = list(rows[r])
        child = rows[r + 1]
        for r0, c0, r1, c1 in sheet.merged:
            if r0 == r and r1 == r and c0 < len(parent):
                for j in range(c0, min(c1 + 1, len(parent))):
                    parent[j] = parent[c0]
        if not sheet.merged:  # no merge information (CSV): a group parent has a child below it
            current = ""
            for j in range(len(parent)):
                if parent[j]:
                    current = parent[j] if child[j] else ""
                elif child[j] and current:
                    parent[j] = current
        names: list[list[str]] = []
        for j in range(len(parent)):
            if child[j] and parent[j]:
                names.append([child[j], parent[j] + child[j], parent[j]])
            elif child[j]:
                names.append([child[j]])
            elif parent[j]:
                names.append([parent[j]])
            else:
                names.append([])
        return names


def _cell(value: object) -> str:
    return normalize_text(str(value)) if value is not None else ""


def _flat_headers(rows: list[list[str]], header_row: int, height: int) -> list[str]:
    top = rows[header_row]
    if height == 1:
        return top
    bottom = rows[header_row + 1]
    return [b or t for t, b in zip(top, bottom, strict=False)]


def staged_table(located: LocatedSheet, sequence_start: int) -> pa.Table:
    """The data rows as text columns named by field, with row numbers and layout markers.

    The leading raw columns `_c0.._c2` let the cleaning step recognise footers (合计, 制表人…)
    and repeated headers even where those columns hold no field, and count them as skipped.
    """
    sheet = located.sheet
    data = sheet.table.slice(located.data_start)
    count = data.num_rows
    columns: dict[str, pa.Array | pa.ChunkedArray] = {}
    fills = _merge_fills(located)
    for j, spec in located.columns.items():
        column = data.column(f"c{j}")
        if spec.name in ID_FIELDS:
            column = _exact_ids(sheet, j, located.data_start, column)
        if j in fills:
            values = column.to_pylist()
            for row_index, value in fills[j]:
                if 0 <= row_index < count:
                    values[row_index] = value
            column = pa.chunked_array([pa.array(values, pa.string())])
        columns[spec.name] = column
    for j in range(LEADING_COLUMNS):
        columns[f"_c{j}"] = (
            data.column(f"c{j}") if j < data.num_columns else pa.nulls(count, pa.string())
        )
    start_row = sheet.first_row + located.data_start
    columns["_row"] = int_range(start_row, count)
    columns["_seq"] = int_range(sequence_start, count)
    return pa.table(columns)


# A number cell of 16+ integer digits reaches the table as such digits ("2025030100000122880");
# a text ID may look the same. Only then is the file asked which cells were numbers.
_LONG_DIGITS = r"^-?\d{16,}$"


def _exact_ids(
    sheet: RawSheet, j: int, start: int, column: pa.ChunkedArray
) -> pa.Array | pa.ChunkedArray:
    """An ID column with its long-number cells as numbers.py hands them on."""
    if (
        sheet.find_long_numbers is None
        or not pc.any(pc.match_substring_regex(column, _LONG_DIGITS)).as_py()
    ):
        return column
    cells = [(row - start, text) for row, col, text in sheet.long_numbers() if col == j]
    if not cells:
        return column
    values = column.to_pylist()
    for row, text in cells:
        if 0 <= row < len(values):
            values[row] = text
    return pa.array(values, pa.string())


def _merge_fills(located: LocatedSheet) -> dict[int, list[tuple[int, object]]]:
    """Cells covered by a merged range in the data area take the range's top-left value."""
    fills: dict[int, list[tuple[int, object]]] = {}
    table = located.sheet.table
    start = located.data_start
    for r0, c0, r1, c1 in located.sheet.merged:
        if r1 < start or r0 >= table.num_rows or c0 >= table.num_columns:
            continue
        top_left = table.column(f"c{c0}")[r0].as_py()
        for j in range(c0, min(c1, table.num_columns - 1) + 1):
            if j not in located.columns:
                continue
            for r in range(max(r0, start), min(r1, table.num_rows - 1) + 1):
                if (r, j) != (r0, c0):
                    fills.setdefault(j, []).append((r - start, top_left))
    return fills
