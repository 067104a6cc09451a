"""Time travel for exports: `govdash rank/report --snapshot N` re-open the warehouse as it was
at snapshot N, and a report names the snapshot it was made from (数据快照 #n)."""

from __future__ import annotations

import io
from pathlib import Path

import openpyxl
import pytest

from govdash.cli import main as cli_main
from govdash.core.audit import AuditLog, audit_path
from govdash.core.warehouse import current_snapshot, lake_of
from govdash.etl.load import load_paths
from tests.analytics.test_evaluation_data import EVALUATION_HEADER
from tests.analytics.test_report import UNIT_SHARES, build_evaluation_warehouse, evaluation_rows
from tests.analytics.warehouse_data import shipped_config
from tests.conftest import write_xlsx


def _rank(db: Path, out: Path, *extra: str) -> bytes:
    assert cli_main(["rank", "--year", "2025", "--db", str(db), "--out", str(out), *extra]) == 0
    return out.read_bytes()


def test_an_export_reopened_at_its_snapshot_after_a_later_load_is_the_same(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = build_evaluation_warehouse(tmp_path / "in")
    first = current_snapshot(db)
    assert first is not None
    before = _rank(db, tmp_path / "before.csv")

    # The evaluators re-score 东一小区 far lower. A new load, a new snapshot.
    rescored = {**UNIT_SHARES, "东一小区": 0.2}
    again = write_xlsx(
        tmp_path / "in" / "考评2025-复核.xlsx",
        {"考评": [[*EVALUATION_HEADER], *evaluation_rows(2025, rescored)]},
    )
    assert load_paths([again], db, shipped_config(), keep_raw=False, actor="复核员").ok
    assert current_snapshot(db) == first + 1
    # the audit log and the snapshot's commit message name each other
    assert AuditLog(audit_path(db)).last_detail("load")["snapshot"] == first + 1  # type: ignore[index]
    made_by = lake_of(db).snapshot(first + 1)
    assert made_by is not None and made_by.message == "load"
    assert made_by.extra["actor"] == "复核员" and made_by.extra["files"] == ["考评2025-复核.xlsx"]
    now = _rank(db, tmp_path / "now.csv")
    assert now != before  # the ranking changed with the re-scoring

    assert _rank(db, tmp_path / "at-first.csv", "--snapshot", str(first)) == before

    report = tmp_path / "report.xlsx"
    assert cli_main(["report", "--year", "2025", "--db", str(db), "--out", str(report),
                     "--snapshot", str(first)]) == 0  # fmt: skip
    made = lake_of(db).snapshot(first)
    assert made is not None
    stamp = f"数据快照 #{first}（{made.time:%Y-%m-%d %H:%M}）"
    book = openpyxl.load_workbook(io.BytesIO(report.read_bytes()))
    cells = [str(c) for s in book.worksheets for row in s.iter_rows(values_only=True) for c in row]
    assert any(stamp in cell for cell in cells), stamp


def test_a_snapshot_the_warehouse_does_not_hold_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = build_evaluation_warehouse(tmp_path / "in")
    latest = current_snapshot(db)
    code = cli_main(["rank", "--year", "2025", "--db", str(db), "--snapshot", "99"])
    assert code == 1
    error = capsys.readouterr().err
    assert "没有快照 #99" in error and f"#{latest}" in error
