"""数据管理 in AppTest (issue 13, items 1–3): a workbook with its own headers is mapped on the
page (one proposed choice changed), loads, and the next file with those headers loads with the
saved profile and no questions; unknown words are mapped to known ones for loaded rows too."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from govdash.core.audit import AuditLog
from govdash.core.profiles import ProfileStore, profiles_path
from tests.conftest import rows
from tests.etl.test_mapping import own_workbook

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.usefixtures("fresh_streamlit_caches")


def _data_page(db: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("GOVDASH_DB", str(db))
    for name in ("GOVDASH_CONFIG", "GOVDASH_HASH_KEY", "GOVDASH_ACCOUNTS", "GOVDASH_AUDIT"):
        monkeypatch.delenv(name, raising=False)
    app = AppTest.from_file(str(ROOT / "govdash" / "web" / "app.py"), default_timeout=90)
    app.run()
    app.switch_page("views/data.py").run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def _table_with(app: AppTest, column: str):
    """The first table on the page with this column (AppTest does not expose a table's key)."""
    return next(d.value for d in app.dataframe if column in d.value.columns)


def _selectbox(app: AppTest, suffix: str):
    return next(s for s in app.selectbox if str(s.key).endswith(suffix))


def test_map_the_columns_once_and_the_next_file_loads_without_questions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "data" / "warehouse.duckdb"
    march = own_workbook(tmp_path / "in" / "3月登记表.xlsx")
    app = _data_page(db, monkeypatch)

    app.get("file_uploader")[0].upload("3月登记表.xlsx", march.read_bytes()).run()
    assert not app.exception, [e.value for e in app.exception]

    # The mapping form: the headers, a proposal for each, a preview of the rows.
    chosen = {s.label: s.value for s in app.selectbox if "_tickets_" in str(s.key)}
    assert chosen == {
        "序号": "", "办件编号": "ticket_id", "办件时间": "accepted_at", "来电群众": "contact_name",
        "联络方式": "phone", "诉求详情": "description", "事项种类": "category",
        "所在院落": "compound", "结束日期": "closed_at", "处理情况": "status",
    }  # fmt: skip
    preview = _table_with(app, "工单编号")
    assert preview["工单编号"].tolist()[:2] == ["BJ-2025-0000", "BJ-2025-0001"]
    # One change: this street's 处理情况 is not the ticket status; leave it unused.
    _selectbox(app, "_9").set_value("").run()
    app.text_input(
        key=next(t.key for t in app.text_input if str(t.key).startswith("profile_"))
    ).input("东社区登记表").run()
    app.button(key="load_button").click().run()
    assert not app.exception, [e.value for e in app.exception]

    summary = app.code[0].value
    assert "使用对照方案：东社区登记表" in summary
    assert "加载 8 行，拒收 0 行" in summary
    assert "未使用的列：处理情况、序号" in summary
    assert rows(db, "SELECT count(*), count(status) FROM tickets") == [(8, 0)]
    profile = ProfileStore(profiles_path(db)).get("东社区登记表")
    assert profile is not None and "处理情况" not in profile.columns
    saved = AuditLog(db.parent / "audit.sqlite3").events(action="profile_saved")
    assert saved.iloc[0]["method"] == "web"
    counts = {m.label: m.value for m in app.metric}
    assert counts["工单"] == "8"

    # The unknown word 物业服务 (事项种类) is offered for mapping; map it and update loaded rows.
    value = next(s for s in app.selectbox if str(s.key).startswith("value_"))
    assert "事项种类" not in value.label and value.options[0] == "（暂不对照）"
    value.set_value("公共设施").run()
    app.button(key="values_button").click().run()
    assert not app.exception, [e.value for e in app.exception]
    assert rows(db, "SELECT count(*) FROM tickets WHERE category = '未归类'") == [(0,)]
    assert ProfileStore(profiles_path(db)).get("东社区登记表").values == {
        "category": {"物业服务": "公共设施"}
    }

    # Next month: same headers. No mapping form, the profile applies, the word is mapped.
    app.get("file_uploader")[0].clear().run()
    april = own_workbook(tmp_path / "in" / "4月登记表.xlsx", count=4, start=30)
    app.get("file_uploader")[0].upload("4月登记表.xlsx", april.read_bytes()).run()
    assert not [s for s in app.selectbox if str(s.key).startswith("map_")]
    app.button(key="load_button").click().run()
    assert not app.exception, [e.value for e in app.exception]
    summary = app.code[0].value
    assert "4月登记表.xlsx" in summary and "使用对照方案：东社区登记表" in summary
    assert "未识别" not in summary
    assert rows(db, "SELECT count(*) FROM tickets WHERE category = '未归类'") == [(0,)]
    assert rows(db, "SELECT count(*) FROM tickets") == [(12,)]


def test_a_mapping_without_a_required_field_cannot_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "data" / "warehouse.duckdb"
    march = own_workbook(tmp_path / "in" / "3月登记表.xlsx")
    app = _data_page(db, monkeypatch)
    app.get("file_uploader")[0].upload("3月登记表.xlsx", march.read_bytes()).run()

    _selectbox(app, "_2").set_value("").run()  # 办件时间: 受理时间 is required

    assert any("受理时间" in e.value for e in app.error)
    assert app.button(key="load_button").disabled
    app.toggle(key=next(t.key for t in app.toggle if str(t.key).startswith("use_"))).set_value(
        False
    ).run()
    assert not app.button(key="load_button").disabled


def test_profiles_tab_lists_renames_and_deletes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from govdash.core.profiles import Profile

    db = tmp_path / "data" / "warehouse.duckdb"
    ProfileStore(profiles_path(db)).save(
        Profile("热线导出", "tickets", "sig", ("受理编号",), {"受理编号": "ticket_id"}), "王芳"
    )
    app = _data_page(db, monkeypatch)
    table = _table_with(app, "名称")
    assert table["名称"].tolist() == ["热线导出"] and table["表格类别"].tolist() == ["工单"]

    app.text_input(key="profile_new_name").input("12345平台导出").run()
    app.button(key="profile_rename_button").click().run()
    assert [p.name for p in ProfileStore(profiles_path(db)).profiles()] == ["12345平台导出"]

    exported = ProfileStore(profiles_path(db)).export()
    app.checkbox(key="profile_delete_confirm").check().run()
    app.button(key="profile_delete_button").click().run()
    assert ProfileStore(profiles_path(db)).profiles() == []

    # An exported file handed back in: the import sits behind a switch.
    assert len(app.get("file_uploader")) == 1
    app.toggle(key="profile_import_open").set_value(True).run()
    uploader = next(u for u in app.get("file_uploader") if u.key == "profile_import")
    uploader.upload("对照方案.json", exported, "application/json").run()
    app.button(key="profile_import_button").click().run()
    assert not app.exception, [e.value for e in app.exception]
    assert [p.name for p in ProfileStore(profiles_path(db)).profiles()] == ["12345平台导出"]
    actions = set(AuditLog(db.parent / "audit.sqlite3").events()["action"])
    assert {"profile_renamed", "profile_deleted", "profile_imported"} <= actions


def test_the_rows_to_fix_download_and_come_back_into_their_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, config
) -> None:
    import io

    import openpyxl

    from govdash.etl.load import fixup_for_batch, load_paths
    from tests.etl.test_fixup import _original

    db = tmp_path / "data" / "warehouse.duckdb"
    assert load_paths([_original(tmp_path / "in")], db, config).files[0].rows_rejected == 4
    app = _data_page(db, monkeypatch)
    assert not [b for b in app.get("download_button") if b.proto.id.endswith("fixup_download")]
    batch = next(s for s in app.selectbox if s.key == "rejected_batch")
    batch.set_value(1).run()
    assert not app.exception, [e.value for e in app.exception]
    buttons = [b for b in app.get("download_button") if "fixup_download" in b.proto.id]
    assert [b.proto.label for b in buttons] == ["下载待改正的行（Excel）"]

    _, data = fixup_for_batch(db, config, 1)
    workbook = openpyxl.load_workbook(io.BytesIO(data))
    workbook["3月"]["B2"] = "2025-02-28 09:00"
    workbook["3月"]["C3"] = "2025-03-03 18:00"
    buffer = io.BytesIO()
    workbook.save(buffer)
    app.get("file_uploader")[0].upload("3-4月工单_待改正.xlsx", buffer.getvalue()).run()
    assert not [s for s in app.selectbox if str(s.key).startswith("map_")]
    app.button(key="load_button").click().run()
    assert not app.exception, [e.value for e in app.exception]
    assert "改正的行并入批次 1“3-4月工单.xlsx”" in app.code[0].value
    assert rows(db, "SELECT rows_loaded, rows_rejected FROM load_batches") == [(5, 2)]


def test_a_recognised_sheet_with_columns_left_over_can_be_mapped_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import write_xlsx

    db = tmp_path / "data" / "warehouse.duckdb"
    sheet = [
        ["受理编号", "登记时间", "反映问题", "院落名称", "处理结果"],
        ["SL-1", "2025-03-01 09:00", "楼道灯不亮", "一号院", "已办结"],
        ["SL-2", "2025-03-02 09:00", "化粪池外溢", "二号院", "处理中"],
    ]
    path = write_xlsx(tmp_path / "in" / "台账.xlsx", {"3月": sheet})
    app = _data_page(db, monkeypatch)
    app.get("file_uploader")[0].upload("台账.xlsx", path.read_bytes()).run()
    assert [e.label for e in app.expander] == [
        "文件“台账.xlsx”的工作表“3月”已按模板表头识别，另有未使用的列：处理结果（可展开对照）"
    ]
    assert not [s for s in app.selectbox if str(s.key).startswith("map_")]

    app.toggle(key=next(t.key for t in app.toggle if str(t.key).startswith("adjust_"))).set_value(
        True
    ).run()
    assert _selectbox(app, "_4").value == ""  # 处理结果: not used yet
    _selectbox(app, "_4").set_value("status").run()
    app.button(key="load_button").click().run()

    assert not app.exception, [e.value for e in app.exception]
    assert rows(db, "SELECT ticket_id, status FROM tickets ORDER BY 1") == [
        ("SL-1", "已办结"),
        ("SL-2", "处理中"),
    ]
    assert "使用对照方案：台账" in app.code[0].value
