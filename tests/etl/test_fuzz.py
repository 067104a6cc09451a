"""Fuzzing: header spellings as clerks type them, and cells of every type under each kind's header.

Header recognition must find the right kind and map each column to the field it was spelled
from, whatever spaces, full-width characters, line breaks, bracketed notes and junk columns
surround the real names. Junk values must never crash a load, and every row must end loaded,
rejected or skipped.
"""

from __future__ import annotations

import unicodedata
import uuid
from datetime import datetime

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from govdash.etl.fields import EVALUATION, REGISTER, SURVEY, TICKETS, build_alias_index, header_keys
from govdash.etl.load import load_paths
from govdash.etl.locate import HeaderLocator, kind_fields
from govdash.etl.readers import RawSheet
from tests.conftest import rows, write_csv, write_xlsx

# The fields each kind cannot be recognised without (README: "Kinds from headers").
SIGNATURES = {
    TICKETS: ["ticket_id", "accepted_at"],
    SURVEY: ["response_id", "item:总体满意度"],
    EVALUATION: ["year", "unit", "evaluator", "indicator", "score"],
    REGISTER: ["compound", "households"],
}
# Optional fields that may join the signature, per kind.
EXTRAS = {
    TICKETS: ["category", "priority", "closed_at", "first_response_at", "compound", "phone"],
    SURVEY: ["wave", "compound", "item:环境卫生", "item:客户服务"],
    EVALUATION: ["unit_level", "bonus", "penalty"],
    REGISTER: ["community", "street", "property_company", "compound_type"],
}
JUNK = ["备注说明", "填报单位盖章", "附件", "Remark", "其它信息", "审核意见栏", "经办"]


def _spellings(kind: str, config) -> dict[str, list[str]]:
    """Per field, the names that mean it and only it within the kind (label, English, aliases)."""
    fields = {spec.name: spec for spec in kind_fields(kind, config)}
    index = build_alias_index(tuple(fields.values()))
    spellings: dict[str, list[str]] = {}
    for name, spec in fields.items():
        names = [n for n in (spec.label, spec.name, *spec.aliases) if n]
        spellings[name] = [
            n for n in names if all(index.get(k) is spec for k in header_keys(n))
        ] or [spec.label]
    return spellings


def _full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


@st.composite
def decorated(draw, name: str) -> str:
    """A header as typed: stray spaces, full width, a line break, a bracketed note, a star."""
    text = name
    if draw(st.booleans()):
        cut = draw(st.integers(0, len(text)))
        text = text[:cut] + draw(st.sampled_from([" ", "\n", "\u3000", "  ", "\r\n"])) + text[cut:]
    if draw(st.booleans()):
        text = _full_width(text)
    if draw(st.booleans()):
        text += draw(st.sampled_from(["（必填）", "(单位：户)", "【说明】", "[注]", "（YYYY-MM-DD）"]))
    if draw(st.booleans()):
        text = draw(st.sampled_from(["*", "＊", " ", "\n"])) + text
    if draw(st.booleans()):
        text += draw(st.sampled_from([" ", "：", ":", "\n"]))
    return text


@st.composite
def header_row(draw, kind: str, spellings: dict[str, list[str]]):
    extras = draw(st.lists(st.sampled_from(EXTRAS[kind]), unique=True, max_size=3))
    chosen = [f for f in SIGNATURES[kind] + extras]
    cells: list[tuple[str | None, str]] = []
    for name in chosen:
        spelling = draw(st.sampled_from(spellings[name]))
        cells.append((name, draw(decorated(spelling))))
    for junk in draw(st.lists(st.sampled_from(JUNK), unique=True, max_size=3)):
        cells.append((None, draw(decorated(junk))))
    return draw(st.permutations(cells))


def _sheet(header: list[str], title_rows: int) -> RawSheet:
    width = len(header)
    grid = [["2024年某某社区台账", *[None] * (width - 1)]] * title_rows + [header]
    grid.append(["x"] * width)  # one data row
    columns = {f"c{j}": pa.array([r[j] for r in grid], pa.string()) for j in range(width)}
    return RawSheet("Sheet1", pa.table(columns))


FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(data=st.data(), kind=st.sampled_from([TICKETS, SURVEY, EVALUATION, REGISTER]))
def test_headers_spelled_any_way_are_recognised_as_their_kind(config, data, kind):
    cells = data.draw(header_row(kind, _spellings(kind, config)))
    title_rows = data.draw(st.integers(0, 3))
    header = [text for _, text in cells]

    located = HeaderLocator(config).locate(_sheet(header, title_rows))

    assert located is not None, header
    assert located.kind == kind, header
    assert located.data_start == title_rows + 1
    expected = {j: name for j, (name, _) in enumerate(cells) if name is not None}
    assert {j: spec.name for j, spec in located.columns.items()} == expected, header


def _signature_present(kind: str, names: set[str]) -> bool:
    """README's rule, written out again: which fields make a header a kind."""
    items = any(n.startswith("item:") for n in names)
    indicators = any(n.startswith("indicator:") for n in names)
    return {
        TICKETS: {"ticket_id", "accepted_at"} <= names,
        SURVEY: "response_id" in names and items,
        EVALUATION: {"year", "unit", "evaluator"} <= names
        and ({"indicator", "score"} <= names or indicators),
        REGISTER: "compound" in names and bool({"households", "compound_type"} & names),
    }[kind]


@settings(FUZZ, max_examples=30)
@given(junk=st.lists(st.text(min_size=1, max_size=12), min_size=2, max_size=8))
def test_a_header_is_never_taken_for_a_kind_whose_signature_it_lacks(config, junk):
    located = HeaderLocator(config).locate(_sheet(junk, 0))
    if located is not None:  # random text may spell real names: then they must be complete
        assert _signature_present(located.kind, {s.name for s in located.columns.values()})


# --- values of every type under each kind's header, through the real loader ------------------

PRINTABLE = st.characters(blacklist_categories=("Cc", "Cs", "Co", "Cn"))
CELL = st.one_of(
    st.none(),
    st.text(PRINTABLE, max_size=20),
    st.integers(min_value=-(10**15), max_value=10**15),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.datetimes(min_value=datetime(1900, 3, 1), max_value=datetime(2200, 1, 1)),
    st.sampled_from(["NaN", "inf", "-inf", "1e9", "-5", "#N/A", "#DIV/0!", "合计", "是", "否", "√",
                     "非常满意", "6", "0", "2024年度", "２０２４", "小区", "社区", "物业企业"]),
)  # fmt: skip

HEADERS = {
    REGISTER: ["社区", "小区名称", "小区类型", "户数", "楼栋数", "是否红色物业", "党建联建签约日期"],
    SURVEY: ["问卷编号", "调查批次", "小区", "总体满意度", "环境卫生", "调查日期", "意见建议"],
    EVALUATION: ["年度", "被考评单位", "单位类型", "评委", "绿化", "环境卫生", "加分", "扣分", "一票否决"],
}
VALID_LAST = {
    REGISTER: ["东升社区", "锦绣花园", "商品房物管小区", 320, 12, "是", "2023-05-01"],
    SURVEY: ["WJ-LAST", "2024年度", "锦绣花园", 5, 4, "2024-06-01", "很好"],
    EVALUATION: [2024, "锦绣花园", "小区", "张伟", 4, 4, 1, 0, "否"],
}


@settings(FUZZ, max_examples=10)
@given(
    kind=st.sampled_from([REGISTER, SURVEY, EVALUATION]),
    junk=st.lists(st.lists(CELL, min_size=9, max_size=9), min_size=1, max_size=6),
    as_csv=st.booleans(),
)
def test_cells_of_every_type_never_break_a_load(tmp_path, config, kind, junk, as_csv):
    folder = tmp_path / uuid.uuid4().hex
    header = HEADERS[kind]
    data = [row[: len(header)] for row in junk] + [VALID_LAST[kind]]
    if as_csv:
        path = write_csv(folder / "junk.csv", [header, *data], "utf-8-sig")
    else:
        path = write_xlsx(folder / "junk.xlsx", {"Sheet1": [header, *data]})
    db = folder / "warehouse.duckdb"

    report = load_paths([path], db, config)

    file = report.files[0]
    assert file.error is None, file.error
    assert file.kinds == [kind]
    assert file.rows_read == len(data)
    assert file.rows_loaded + file.rows_rejected + file.rows_skipped == len(data)
    rejected = {r for (r,) in rows(db, "SELECT DISTINCT row_number FROM rejected_rows")}
    assert len(rejected) == file.rows_rejected
    assert rejected <= set(range(2, len(data) + 2))
    assert file.rows_loaded >= 1  # the valid last row
    if kind == REGISTER:
        assert ("锦绣花园", 320) in rows(db, "SELECT compound, households FROM compounds")


def test_full_width_helper_is_what_nfkc_undoes():
    assert unicodedata.normalize("NFKC", _full_width("Ticket_ID(1)")) == "Ticket_ID(1)"
