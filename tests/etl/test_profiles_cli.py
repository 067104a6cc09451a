"""`govdash load --columns/--profile/--values` and `govdash profiles …` (issue 13, item 2)."""

from __future__ import annotations

import json
import re

from govdash.core.audit import AuditLog
from tests.conftest import TABLES, rows, snapshot, text_hits
from tests.etl.test_cli import run_cli
from tests.etl.test_mapping import own_workbook

COLUMNS = (
    "办件编号=工单编号,办件时间=受理时间,来电群众=联系人,联络方式=联系电话,诉求详情=问题描述,"
    "事项种类=问题类别,所在院落=小区,结束日期=办结时间,处理情况=状态"
)


def test_an_unknown_header_gets_a_suggestion_then_loads_with_columns_and_next_month_by_itself(
    tmp_path,
):
    db = tmp_path / "data" / "warehouse.duckdb"
    march = own_workbook(tmp_path / "in" / "3月.xlsx")

    refused = run_cli("load", march, "--db", db)
    assert refused.returncode == 1
    suggested = re.search(r"^  govdash load .* --columns '([^']+)'", refused.stdout, re.M)
    assert suggested is not None, refused.stdout
    assert suggested.group(1) == COLUMNS

    loaded = run_cli(
        "load", march, "--db", db, "--columns", COLUMNS, "--profile", "东社区登记表", "--as", "王芳"
    )
    assert loaded.returncode == 0, loaded.stderr
    assert "已保存对照方案“东社区登记表”（工单，9 列）" in loaded.stdout
    assert "使用对照方案：东社区登记表" in loaded.stdout
    assert "加载 8 行，拒收 0 行" in loaded.stdout
    assert text_hits(db, ["陈静", "李建国", "13900000001"]) == []  # 来电群众, 联络方式 not stored
    saved = AuditLog(db.parent / "audit.sqlite3").events(action="profile_saved")
    assert (saved.iloc[0]["actor"], saved.iloc[0]["method"]) == ("王芳", "cli")

    april = own_workbook(tmp_path / "in" / "4月.xlsx", count=4, start=30)
    next_month = run_cli("load", april, "--db", db)
    assert next_month.returncode == 0, next_month.stderr
    assert "使用对照方案：东社区登记表" in next_month.stdout
    assert rows(db, "SELECT count(*) FROM tickets") == [(12,)]
    # Words the vocabulary does not know get a ready --values line.
    assert "--values '问题类别:物业服务=规范值' --apply-to-loaded" in next_month.stdout


def test_values_map_the_words_of_rows_already_loaded(tmp_path):
    db = tmp_path / "data" / "warehouse.duckdb"
    march = own_workbook(tmp_path / "in" / "3月.xlsx")
    assert (
        run_cli("load", march, "--db", db, "--columns", COLUMNS, "--profile", "登记表").returncode
        == 0
    )
    assert rows(db, "SELECT count(*) FROM tickets WHERE category = '未归类'") == [(2,)]

    mapped = run_cli(
        "load", march, "--db", db, "--values", "事项种类:物业服务=公共设施", "--apply-to-loaded"
    )

    assert mapped.returncode == 0, mapped.stderr
    assert "已按对照方案“登记表”的取值对照更新已加载的数据：2 行。" in mapped.stdout
    assert rows(db, "SELECT count(*) FROM tickets WHERE category = '未归类'") == [(0,)]
    shown = run_cli("profiles", "show", "登记表", "--db", db)
    assert "问题类别：物业服务 → 公共设施" in shown.stdout
    assert "办件时间 → 受理时间（accepted_at）" in shown.stdout


def test_a_wrong_columns_argument_is_refused_before_anything_loads(tmp_path):
    db = tmp_path / "data" / "warehouse.duckdb"
    march = own_workbook(tmp_path / "in" / "3月.xlsx")
    for columns, message in (
        ("办件编号=工单编号", "仍缺少工单的必填字段：工单编号、受理时间"),
        ("没有这列=工单编号,办件时间=受理时间", "找不到 --columns 给出的表头：没有这列"),
        ("办件编号=工单号码啊", "不是模板中的字段名"),
    ):
        result = run_cli("load", march, "--db", db, "--columns", columns)
        assert result.returncode == 2
        assert message in result.stderr, result.stderr
    assert not db.exists()


def test_profiles_list_rename_export_import_delete(tmp_path):
    db = tmp_path / "a" / "warehouse.duckdb"
    march = own_workbook(tmp_path / "in" / "3月.xlsx")
    assert (
        run_cli("load", march, "--db", db, "--columns", COLUMNS, "--profile", "登记表").returncode
        == 0
    )

    listed = run_cli("profiles", "list", "--db", db)
    assert listed.stdout.startswith("登记表\t工单\t9 列\t0 个取值对照\t")
    assert run_cli("profiles", "rename", "登记表", "东社区登记表", "--db", db).returncode == 0
    exported = run_cli("profiles", "export", "--db", db, "--out", tmp_path / "方案.json")
    assert exported.returncode == 0
    document = json.loads((tmp_path / "方案.json").read_text(encoding="utf-8"))
    assert [p["name"] for p in document["profiles"]] == ["东社区登记表"]

    other = tmp_path / "b" / "warehouse.duckdb"
    imported = run_cli("profiles", "import", tmp_path / "方案.json", "--db", other, "--as", "李平")
    assert imported.returncode == 0 and "已导入对照方案：东社区登记表" in imported.stdout
    again = run_cli("profiles", "import", tmp_path / "方案.json", "--db", other)
    assert again.returncode == 1 and "已有同名" in again.stderr
    # The other street's first file with those headers loads without a question.
    loaded = run_cli("load", own_workbook(tmp_path / "in" / "别处.xlsx", 3, 50), "--db", other)
    assert "使用对照方案：东社区登记表" in loaded.stdout and loaded.returncode == 0

    assert run_cli("profiles", "delete", "东社区登记表", "--db", db).returncode == 0
    assert "还没有对照方案" in run_cli("profiles", "list", "--db", db).stdout
    missing = run_cli("profiles", "show", "东社区登记表", "--db", db)
    assert missing.returncode == 1 and "没有这个对照方案" in missing.stderr
    actions = set(AuditLog(db.parent / "audit.sqlite3").events()["action"])
    assert {"profile_saved", "profile_renamed", "profile_deleted"} <= actions
    assert "profile_imported" in set(AuditLog(other.parent / "audit.sqlite3").events()["action"])


def test_a_rebuild_reads_mapped_files_the_same_way(tmp_path):
    db = tmp_path / "data" / "warehouse.duckdb"
    march = own_workbook(tmp_path / "in" / "3月.xlsx")
    assert (
        run_cli("load", march, "--db", db, "--columns", COLUMNS, "--profile", "登记表").returncode
        == 0
    )
    before = snapshot(db, [t for t in TABLES if t not in ("load_batches", "warehouse_info")])

    rebuilt = run_cli("rebuild", "--db", db)

    assert rebuilt.returncode == 0, rebuilt.stderr
    assert (
        snapshot(db, [t for t in TABLES if t not in ("load_batches", "warehouse_info")]) == before
    )
