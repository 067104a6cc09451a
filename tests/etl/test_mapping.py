"""Column mapping (issue 13, items 1–3): proposals from names and value shapes, profiles that
apply by themselves, value mappings at load and for rows already loaded."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from govdash.core.audit import AuditLog
from govdash.core.profiles import Profile, ProfileError, ProfileStore, profiles_path
from govdash.etl.load import format_report, inspect_file, load_paths, preview_rows, remap_loaded
from govdash.etl.mapping import (
    MappingError,
    located_from_columns,
    parse_columns,
    parse_values,
    profile_of,
    propose,
    signature,
    value_shape,
)
from govdash.etl.prepare import import_profiles, prepare_load, save_profile
from govdash.etl.readers import read_file
from tests.conftest import rows, write_xlsx

# A street's own register of requests: no header the loader knows for 受理时间, and 办件编号 /
# 办件时间, which name scoring alone cannot tell apart (rapidfuzz gives both the same score
# against 工单编号 and 受理时间).
OWN_HEADER = ["序号", "办件编号", "办件时间", "来电群众", "联络方式", "诉求详情", "事项种类",
              "所在院落", "结束日期", "处理情况"]  # fmt: skip
EXPECTED = {
    "序号": None,
    "办件编号": "ticket_id",
    "办件时间": "accepted_at",
    "来电群众": "contact_name",
    "联络方式": "phone",
    "诉求详情": "description",
    "事项种类": "category",
    "所在院落": "compound",
    "结束日期": "closed_at",
    "处理情况": "status",
}
CATEGORIES = ["公共设施", "环境卫生", "物业服务", "公共设施"]


def own_rows(count: int = 8, start: int = 0) -> list[list[object]]:
    names = ["陈静", "李建国", "王秀英", "赵敏"]
    data = []
    for i in range(start, start + count):
        accepted = datetime(2025, 3, 1, 9) + timedelta(days=i, minutes=i)
        data.append([
            i + 1, f"BJ-2025-{i:04d}", accepted, names[i % 4], f"139{i:08d}",
            "楼道灯坏了很久没人修理，请尽快处理" if i % 2 else "小区门口垃圾三天没有清运",
            CATEGORIES[i % 4], ["一号院", "二号院"][i % 2],
            accepted + timedelta(hours=30) if i % 3 else None, "已办结" if i % 3 else "处理中",
        ])  # fmt: skip
    return data


def own_workbook(path: Path, count: int = 8, start: int = 0) -> Path:
    title = ["东社区2025年群众诉求登记表"]
    return write_xlsx(path, {"登记表": [title, OWN_HEADER, *own_rows(count, start)]})


def _sheet(path: Path):
    (sheet,) = list(read_file(path, 1000))
    return sheet


def test_a_proposal_reads_names_and_what_the_values_look_like(tmp_path, config):
    proposal = propose(_sheet(own_workbook(tmp_path / "登记表.xlsx")), config)

    assert proposal is not None
    assert (proposal.kind, proposal.header_row, proposal.excel_row) == ("tickets", 1, 2)
    assert {c.header: c.field for c in proposal.columns} == EXPECTED
    shapes = {c.header: c.shape for c in proposal.columns}
    assert (shapes["办件编号"], shapes["办件时间"], shapes["联络方式"]) == ("code", "time", "phone")
    assert proposal.columns[1].samples == ["BJ-2025-0000", "BJ-2025-0001", "BJ-2025-0002"]


@pytest.mark.parametrize(
    ("values", "shape"),
    [
        (["2025-03-01 09:00", "2025/3/2", "45356.375"], "time"),
        (["13912345678", "139 1234 5679", "028-85551234"], "phone"),
        (["是", "否", "是", "√"], "yesno"),
        (["GD001", "GD002", "GD003"], "code"),
        (["000124", "000125", "000126"], "code"),
        (["320", "86", "1500"], "number"),
        (["电梯", "水电维修", "电梯", "电梯"], "enum"),
        (["楼道灯坏了很久没人修理，请尽快处理", "小区门口垃圾三天没有清运了"], "long"),
        ([], ""),
    ],
)
def test_value_shapes(values, shape):
    assert value_shape(values) == shape


def test_a_confirmed_mapping_previews_the_rows_as_they_will_load(tmp_path, config):
    sheet = _sheet(own_workbook(tmp_path / "登记表.xlsx"))
    proposal = propose(sheet, config)
    located = located_from_columns(sheet, "tickets", 1, 1, proposal.mapping(), config)

    preview = preview_rows(located, config, limit=3)

    assert [row["工单编号"] for row in preview.rows] == [
        "BJ-2025-0000",
        "BJ-2025-0001",
        "BJ-2025-0002",
    ]
    assert preview.rows[0]["受理时间"] == datetime(2025, 3, 1, 9)
    assert preview.rows[2]["问题类别"] == "未归类"  # 物业服务 is not a category
    assert preview.notes == [(5, "事项种类", "物业服务", "未知的问题类别，计入“未归类”")]
    assert preview.personal == ["联系人", "联系电话"]
    assert preview.problems == []
    assert all("陈静" not in str(row) for row in preview.rows)


def test_a_saved_profile_applies_by_itself_to_the_next_file_with_those_headers(tmp_path, config):
    db = tmp_path / "data" / "warehouse.duckdb"
    first = own_workbook(tmp_path / "in" / "3月.xlsx")
    refused = load_paths([first], db, config)
    assert "没有找到可识别的表头" in refused.files[0].error

    sheet = _sheet(first)
    located = located_from_columns(sheet, "tickets", 1, 1, propose(sheet, config).mapping(), config)
    profile = save_profile(db, profile_of(located, "东社区登记表"), actor="王芳", method="web")
    report = load_paths([first], db, config, mappings={first: profile})
    assert report.files[0].profiles == ["东社区登记表"]

    # Next month: same headers, no mapping given.
    april = own_workbook(tmp_path / "in" / "4月.xlsx", count=5, start=30)
    report = load_paths([april], db, config)

    file = report.files[0]
    assert file.error is None, file.error
    assert (file.rows_loaded, file.profiles) == (5, ["东社区登记表"])
    assert "使用对照方案：东社区登记表" in format_report(report)
    assert rows(db, "SELECT count(*), count(DISTINCT ticket_id) FROM tickets") == [(13, 13)]
    saved = AuditLog(db.parent / "audit.sqlite3").events(action="profile_saved")
    assert (saved.iloc[0]["actor"], saved.iloc[0]["target"]) == ("王芳", "东社区登记表")


def test_a_value_mapping_applies_at_load_and_to_rows_already_loaded(tmp_path, config):
    db = tmp_path / "data" / "warehouse.duckdb"
    march = own_workbook(tmp_path / "in" / "3月.xlsx")
    sheet = _sheet(march)
    located = located_from_columns(sheet, "tickets", 1, 1, propose(sheet, config).mapping(), config)
    profile = save_profile(db, profile_of(located, "登记表"))
    first = load_paths([march], db, config, mappings={march: profile})
    assert first.files[0].unknown_values == {("category", "物业服务"): 2}
    assert rows(db, "SELECT count(*) FROM tickets WHERE category = '未归类'") == [(2,)]

    mapped = save_profile(
        db, Profile(**{**profile.__dict__, "values": {"category": {"物业服务": "公共设施"}}})
    )
    changed = remap_loaded(db, config, "tickets", mapped.values, actor="王芳")

    assert changed == 2
    assert rows(
        db, "SELECT count(*) FILTER (WHERE category = '公共设施'), count(*) FILTER (WHERE "
        "category = '未归类'), count(*) FILTER (WHERE cardinality(unmapped_values) > 0) FROM tickets"
    ) == [(6, 0, 0)]  # fmt: skip
    april = own_workbook(tmp_path / "in" / "4月.xlsx", count=4, start=30)
    report = load_paths([april], db, config)
    assert report.files[0].unknown_values == {}
    assert rows(db, "SELECT category FROM tickets WHERE ticket_id = 'BJ-2025-0032'") == [
        ("公共设施",)
    ]
    events = AuditLog(db.parent / "audit.sqlite3").events(action="values_remapped")
    assert json.loads(events.iloc[0]["detail"])["rows"] == 2


def test_mapping_a_request_type_moves_the_sla_limit_of_loaded_rows(tmp_path, config, load):
    sheet = [["工单编号", "受理时间", "诉求类型"], ["GD1", "2025-03-01 09:00", "物业投诉"]]
    _, db = load(write_xlsx(tmp_path / "in" / "工单.xlsx", {"Sheet1": sheet}))
    assert rows(db, "SELECT request_type, response_limit_minutes FROM tickets") == [
        ("未归类", 30.0)
    ]

    remap_loaded(db, config, "tickets", {"request_type": {"物业投诉": "投诉"}})

    assert rows(
        db, "SELECT request_type, response_limit_minutes, resolution_limit_hours FROM tickets"
    ) == [("投诉", 1440.0, 168.0)]


def test_column_and_value_arguments(config):
    assert parse_columns("受理编号=工单编号，登记时间=受理时间,完结日期=办结时间", config) == (
        "tickets",
        {"受理编号": "ticket_id", "登记时间": "accepted_at", "完结日期": "closed_at"},
    )
    assert parse_columns("院落=小区,住户数=户数", config) == (
        "register",
        {"院落": "compound", "住户数": "households"},
    )
    assert parse_values("诉求类型:物业服务=求助,状态：已存档=已办结", "tickets", config) == {
        "request_type": {"物业服务": "求助"},
        "status": {"已存档": "已办结"},
    }
    with pytest.raises(MappingError, match="不是模板中的字段名"):
        parse_columns("受理编号=工单号码啊", config)
    with pytest.raises(MappingError, match="不是“诉求类型”的规范值"):
        parse_values("诉求类型:物业服务=物业", "tickets", config)
    with pytest.raises(MappingError, match="应写成"):
        parse_columns("受理编号", config)


def test_prepare_from_columns_saves_a_profile_and_refuses_a_mapping_without_required_fields(
    tmp_path, config
):
    db = tmp_path / "data" / "warehouse.duckdb"
    path = own_workbook(tmp_path / "in" / "3月.xlsx")
    with pytest.raises(MappingError, match="受理时间"):
        prepare_load([path], db, config, columns="办件编号=工单编号")
    prepared = prepare_load(
        [path], db, config, columns="办件编号=工单编号,办件时间=受理时间", profile_name="登记表"
    )
    profile = prepared.mappings[path]
    assert profile.name == "登记表"
    # The pairs given, and the row's other headers the loader knows by itself.
    assert profile.columns == {"办件编号": "ticket_id", "办件时间": "accepted_at"}
    assert profile.signature == signature(OWN_HEADER)
    assert ProfileStore(profiles_path(db)).get("登记表") == profile


def test_profiles_rename_delete_export_and_import(tmp_path, config):
    db = tmp_path / "a" / "warehouse.duckdb"
    store = ProfileStore(profiles_path(db))
    profile = Profile("12345平台导出", "tickets", "abc", ("受理编号", "来电时间"),
                      {"受理编号": "ticket_id", "来电时间": "accepted_at"},
                      {"request_type": {"物业服务": "求助"}})  # fmt: skip
    save_profile(db, profile, "王芳")
    renamed = store.rename("12345平台导出", "热线导出", "李平")
    assert (renamed.name, renamed.created_by, renamed.updated_by) == ("热线导出", "王芳", "李平")
    exported = store.export()

    other = tmp_path / "b" / "warehouse.duckdb"
    imported = import_profiles(other, exported, config, actor="赵敏")
    assert [p.name for p in imported] == ["热线导出"]
    again = ProfileStore(profiles_path(other)).get("热线导出")
    assert again.columns == profile.columns and again.values == profile.values
    with pytest.raises(ProfileError, match="已有同名"):
        import_profiles(other, exported, config)
    assert len(import_profiles(other, exported, config, overwrite=True)) == 1

    store.delete("热线导出")
    assert store.profiles() == []
    with pytest.raises(ProfileError, match="没有这个对照方案"):
        store.delete("热线导出")

    bad = json.loads(exported)
    bad["profiles"][0]["columns"]["受理编号"] = "no_such_field"
    with pytest.raises(ProfileError, match="不认识的字段"):
        import_profiles(other, json.dumps(bad).encode(), config, overwrite=True)
    bad = json.loads(exported)
    bad["profiles"][0]["values"] = {"request_type": {"物业服务": "物业"}}
    with pytest.raises(ProfileError, match="不存在的规范值：物业"):
        import_profiles(other, json.dumps(bad).encode(), config, overwrite=True)
    with pytest.raises(ProfileError, match="不是对照方案文件"):
        import_profiles(other, b'{"profiles": []}', config)


def test_an_inspection_says_which_sheets_need_a_mapping(tmp_path, config):
    db = tmp_path / "data" / "warehouse.duckdb"
    path = write_xlsx(
        tmp_path / "in" / "混合.xlsx",
        {
            "登记表": [OWN_HEADER, *own_rows(3)],
            "台账": [["社区", "小区名称", "户数"], ["东社区", "一号院", 120]],
            "说明": [["填表说明：每月 5 日前报送"]],
        },
    )
    found = {s.name: s for s in inspect_file(path, path.name, db, config)}
    assert found["登记表"].needs_mapping and found["登记表"].proposal.kind == "tickets"
    assert found["台账"].located.kind == "register" and not found["台账"].needs_mapping
    assert not found["说明"].needs_mapping and found["说明"].located is None
