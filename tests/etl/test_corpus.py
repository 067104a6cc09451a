"""Every bad input of the corpus through the real loader into a real warehouse.

A refused file leaves the published warehouse byte for byte as it was and keeps nothing of it;
a partly loadable file accounts for every data row (loaded, rejected with a reason, skipped).
"""

from __future__ import annotations

import re
import unicodedata

import pytest

from govdash.core.config import load_config
from tests.conftest import CHINESE_REASON, rows
from tests.etl.corpus import (
    CASES,
    LONG_TEXT,
    MIXED_NAMES,
    PII_VARIANTS,
    Case,
    Outcome,
    build_baseline,
    run_case,
)


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        for name in ("GOVDASH_CONFIG", "GOVDASH_HASH_KEY", "GOVDASH_DB"):
            patch.delenv(name, raising=False)
        return build_baseline(tmp_path_factory.mktemp("baseline"), load_config())


@pytest.fixture
def outcome(request, baseline, tmp_path, config) -> Outcome:
    return run_case(request.param, baseline, tmp_path)


def _ids(cases: list[Case]) -> list[str]:
    return [case.name for case in cases]


REFUSED = [case for case in CASES if case.refused]
LOADED = [case for case in CASES if not case.refused]


@pytest.mark.parametrize("outcome", REFUSED, ids=_ids(REFUSED), indirect=True)
def test_a_refused_file_says_why_in_chinese_and_changes_nothing(outcome):
    case, file = outcome.case, outcome.file
    assert file.error is not None
    assert file.error.startswith(f"文件“{case.file_name}”")
    assert CHINESE_REASON.search(file.error.split("：", 1)[1])
    for part in case.message_parts:
        assert part in file.error, (part, file.error)
    assert "Traceback" not in file.error
    assert outcome.unchanged  # same version file, same bytes, same rows
    assert file.batch_id is None
    assert not outcome.raw_kept


@pytest.mark.parametrize("outcome", LOADED, ids=_ids(LOADED), indirect=True)
def test_a_partly_loadable_file_accounts_for_every_row(outcome):
    case, file = outcome.case, outcome.file
    assert file.error is None, file.error
    assert tuple(file.kinds) == case.kinds
    assert (file.rows_loaded, file.rows_rejected, file.rows_skipped) == (
        case.loaded,
        case.rejected,
        case.skipped,
    )
    assert file.rows_loaded + file.rows_rejected + file.rows_skipped == case.data_rows
    assert not outcome.unchanged and outcome.raw_kept
    rejected_rows = {row for _, row, *_ in outcome.rejections}
    assert len(rejected_rows) == case.rejected
    for sheet, row, column, _, reason in outcome.rejections:
        assert sheet and column and row >= 2 and CHINESE_REASON.search(reason)
    for part in case.message_parts:
        assert part in outcome.message, (part, outcome.message)


def _loaded(case_name: str, baseline, tmp_path) -> Outcome:
    outcome = run_case(next(c for c in CASES if c.name == case_name), baseline, tmp_path)
    assert outcome.file.error is None, outcome.file.error
    return outcome


def _db(tmp_path):
    return tmp_path / "data" / "warehouse.duckdb"


def test_a_cell_of_32767_characters_is_kept_whole(baseline, tmp_path, config):
    _loaded("long-cells", baseline, tmp_path)
    found = rows(_db(tmp_path), "SELECT ticket_id, length(description) FROM tickets "
                 "WHERE ticket_id LIKE 'LONG%' ORDER BY 1")  # fmt: skip
    assert found == [("LONG-1", len(LONG_TEXT)), ("LONG-2", 100)]
    assert len(LONG_TEXT) == 32_767


def _error_value_cells(outcome) -> set[tuple[int, str, str]]:
    """(row, column, raw value) of the rejections for an Excel error value."""
    return {
        (row, column, raw)
        for _, row, column, raw, reason in outcome.rejections
        if reason.startswith("单元格是 Excel 错误值")
    }


def test_error_values_reject_their_row_and_name_the_cell(baseline, tmp_path, config):
    outcome = _loaded("formulas-errors", baseline, tmp_path)
    assert _error_value_cells(outcome) == {
        (3, "办结时间", "#DIV/0!"),
        (4, "小区", "#N/A"),
        (5, "问题类别", "#VALUE!"),
    }
    # The formula's cached value is what Excel showed: 2024-03-05 09:00.
    found = rows(_db(tmp_path), "SELECT ticket_id, CAST(accepted_at AS VARCHAR), compound "
                 "FROM tickets WHERE ticket_id LIKE 'F-%' ORDER BY 1")  # fmt: skip
    assert found == [
        ("F-1", "2024-03-05 09:00:00", "锦绣花园"),
        ("F-5", "2024-03-05 09:00:00", "锦绣花园"),
    ]


def test_error_values_in_a_legacy_xls_reject_their_row(baseline, tmp_path, config):
    outcome = _loaded("xls-errors", baseline, tmp_path)
    assert _error_value_cells(outcome) == {(3, "办结时间", "#DIV/0!"), (4, "小区", "#N/A")}
    assert rows(_db(tmp_path), "SELECT ticket_id FROM tickets WHERE ticket_id LIKE 'X-%'") == [
        ("X-1",)
    ]


def test_biff_formula_results_that_are_errors():
    """FORMULA records (what Excel writes for =1/0 or a failed VLOOKUP) carry the error as
    their cached result; a number result and a BOOLERR holding TRUE are not errors."""
    import struct

    from govdash.etl.readers import biff_error_cells

    def record(kind: int, body: bytes) -> bytes:
        return struct.pack("<HH", kind, len(body)) + body

    def formula(row: int, col: int, result: bytes) -> bytes:
        return record(0x0006, struct.pack("<HHH", row, col, 15) + result + b"\0" * 6)

    error = bytes([0x02, 0, 0x2A, 0, 0, 0]) + b"\xff\xff"  # #N/A
    number = struct.pack("<d", 45356.375)
    sheet = (
        record(0x0809, b"\0" * 16)
        + formula(4, 2, error)
        + formula(5, 2, number)
        + record(0x0205, struct.pack("<HHHBB", 6, 1, 15, 1, 0))  # TRUE
        + record(0x0205, struct.pack("<HHHBB", 7, 1, 15, 0x07, 1))  # #DIV/0!
        + record(0x000A, b"")
    )
    name = b"\x02\x01" + "工单".encode("utf-16-le")
    globals_size = 4 + 16 + 4 + 6 + len(name) + 4
    workbook = (
        record(0x0809, b"\0" * 16)
        + record(0x0085, struct.pack("<IH", globals_size, 0) + name)
        + record(0x000A, b"")
    )
    assert len(workbook) == globals_size
    assert biff_error_cells(workbook + sheet) == {0: [(4, 2, "#N/A"), (7, 1, "#DIV/0!")]}


def test_merged_cells_give_every_row_the_value(baseline, tmp_path, config):
    _loaded("merged-data", baseline, tmp_path)
    found = rows(_db(tmp_path), "SELECT ticket_id, compound, CAST(accepted_at AS VARCHAR) "
                 "FROM tickets WHERE ticket_id LIKE 'M-%' ORDER BY 1")  # fmt: skip
    assert found == [
        ("M-1", "翠竹苑", "2024-03-05 09:00:00"),
        ("M-2", "翠竹苑", "2024-03-05 09:00:00"),
        ("M-3", "翠竹苑", "2024-03-05 09:00:00"),
        ("M-4", "锦绣花园", "2024-03-05 09:00:00"),
    ]


def test_a_csv_of_two_encodings_reads_every_line_right(baseline, tmp_path, config):
    _loaded("csv-mixed-encoding", baseline, tmp_path)
    found = rows(_db(tmp_path), "SELECT compound FROM tickets WHERE ticket_id LIKE 'MIX-%' "
                 "ORDER BY ticket_id")  # fmt: skip
    assert [c for (c,) in found] == MIXED_NAMES


def test_absurd_numbers_are_rejected_not_stored(baseline, tmp_path, config):
    outcome = _loaded("absurd-households", baseline, tmp_path)
    assert rows(_db(tmp_path), "SELECT compound, households FROM compounds") == [("正常小区", 150)]
    assert {row for _, row, *_ in outcome.rejections} == {2, 3, 4, 5}


def test_absurd_scores_and_penalties_are_rejected(baseline, tmp_path, config):
    outcome = _loaded("absurd-scores", baseline, tmp_path)
    by_row = {row: (column, reason) for _, row, column, _, reason in outcome.rejections}
    assert set(by_row) == {3, 4, 5, 6, 7}
    assert by_row[6][0] == by_row[7][0] == "扣分"
    assert rows(_db(tmp_path), "SELECT count(*) FROM evaluation_adjustments") == [(0,)]
    assert rows(_db(tmp_path), "SELECT score FROM evaluation_scores") == [(4.0,)]


def test_an_absurd_committed_limit_is_set_aside_not_the_ticket(baseline, tmp_path, config):
    outcome = _loaded("absurd-hours", baseline, tmp_path)
    found = rows(_db(tmp_path), "SELECT ticket_id, committed_hours, resolution_limit_hours "
                 "FROM tickets WHERE ticket_id LIKE 'H-%' ORDER BY 1")  # fmt: skip
    # 一般 priority: the SLA table's 72 hours where the sheet's own limit was not usable.
    assert found == [("H-1", None, 72.0), ("H-2", None, 72.0), ("H-3", 24.0, 24.0)]
    assert sorted(outcome.file.notes) == [
        (
            "承诺时限",
            "-3天",
            "无法识别的承诺时限（应为如 24小时、3天；工作日时限请改用配置的 SLA 规则），该值未采用，按配置的 SLA 规则计算",
        ),
        (
            "承诺时限",
            "99999999999小时",
            "承诺时限不合理（应大于 0 且不超过 8760 小时，即一年），该值未采用，按配置的 SLA 规则计算",
        ),
    ]


def test_the_corpus_table_has_one_line_per_case(baseline, tmp_path, config):
    from tests.etl.corpus import table

    outcomes = [run_case(case, baseline, tmp_path / case.name) for case in CASES[:2]]
    lines = table(outcomes).splitlines()
    assert len(lines) == 2 + 2
    assert re.match(r"\| 截断的 xlsx.*\| yes \| — \|$", lines[2])


def test_personal_data_variants_reach_no_table_and_no_export(baseline, tmp_path, config):
    """Every variant of issue 13 item 6 is masked in every text value of every table, in the
    rejected rows' CSV export and in the summary the clerk reads."""
    from govdash.analytics.queries.loads import rejected_rows
    from govdash.analytics.reports.export import Provenance, to_csv_bytes
    from govdash.core.warehouse import connect_readonly
    from govdash.etl.load import LoadReport, format_report
    from tests.conftest import text_hits, varchar_columns

    outcome = _loaded("pii-variants", baseline, tmp_path)
    db = _db(tmp_path)
    secrets = [secret for _, secret in PII_VARIANTS]
    numbers = [secret for secret in secrets if secret.isdigit()]
    names = [secret for secret in secrets if not secret.isdigit()]

    # The descriptions were stored (masked), so the scan below is looking at them.
    stored = dict(
        rows(db, "SELECT ticket_id, description FROM tickets WHERE ticket_id LIKE 'PII%'")
    )
    assert len(stored) == len(PII_VARIANTS)
    assert stored["PII-12"] == "联系人：[姓名]，请尽快"
    assert stored["PII-00"] == "请回电[电话]"
    assert text_hits(db, names) == []
    texts = []
    for table, column in varchar_columns(db):
        if (table, column) in {("tickets", "caller_hash"), ("load_batches", "file_sha256")}:
            continue
        texts += [str(v) for (v,) in rows(db, f'SELECT "{column}" FROM "{table}"') if v is not None]
    for text in texts:
        digits = re.sub(r"\D", "", unicodedata.normalize("NFKC", text))
        assert not any(number in digits for number in numbers), text

    con = connect_readonly(db)
    try:
        rejected = rejected_rows(con, None)
    finally:
        con.close()
    assert len(rejected) == 1
    provenance = Provenance(filters_text="")
    exported = to_csv_bytes(rejected, provenance).decode("utf-8-sig")
    summary = format_report(LoadReport([outcome.file]))
    for text in (exported, summary):
        digits = re.sub(r"\D", "", unicodedata.normalize("NFKC", text))
        assert not any(number in digits for number in numbers)
        assert not any(name in text for name in names)
