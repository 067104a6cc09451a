"""Real office files as they come (issue 13, items 3 and 4): a 12345 hotline export and a street's
own ticket book load without a profile, and no row is lost for a classification word."""

from __future__ import annotations

from datetime import datetime

from govdash.etl.load import format_report
from tests.conftest import rejections, rows, write_xlsx

HOTLINE_HEADER = [
    "工单编号", "来电时间", "诉求人", "联系电话", "诉求内容", "诉求类型", "所属街道", "所属社区",
    "小区名称", "承办单位", "派单时间", "签收时间", "办结时间", "办理状态", "回访满意度",
]  # fmt: skip


def _hotline_row(n: int, **changes: object) -> list[object]:
    row: dict[str, object] = {
        "工单编号": f"12345-{n:03d}",
        "来电时间": datetime(2025, 3, n, 9, 0),
        "诉求人": "王秀英",
        "联系电话": "13912345678",
        "诉求内容": f"楼道灯坏了{n}天，请回电１３９１２３４５６７８",
        "诉求类型": "物业服务",
        "所属街道": "甲街道",
        "所属社区": "东社区",
        "小区名称": "锦绣花园",
        "承办单位": "蓝天物业",
        "派单时间": datetime(2025, 3, n, 9, 30),
        "签收时间": datetime(2025, 3, n, 10, 0),
        "办结时间": datetime(2025, 3, n, 18, 0),
        "办理状态": "已归档",
        "回访满意度": "满意",
    }
    row.update(changes)
    return [row[h] for h in HOTLINE_HEADER]


def test_a_hotline_export_loads_every_row_under_unclassified(tmp_path, load):
    sheet = [
        HOTLINE_HEADER,
        _hotline_row(1),
        _hotline_row(2, 签收时间=datetime(2025, 3, 2, 9, 50)),
        _hotline_row(3, 回访满意度="未回访"),
        _hotline_row(4, 签收时间=datetime(2025, 3, 4, 9, 0)),  # before dispatch: set aside
        _hotline_row(5, 诉求类型="投诉", 办理状态="办理中", 办结时间=None),
    ]
    report, db = load(write_xlsx(tmp_path / "in" / "12345导出.xlsx", {"工单": sheet}))

    file = report.files[0]
    assert file.error is None, file.error
    assert (file.rows_loaded, file.rows_rejected) == (5, 0)
    assert rejections(db) == []
    assert rows(
        db,
        """SELECT ticket_id, request_type, status, callback_satisfaction, handling_unit,
            CAST(dispatched_at AS VARCHAR), CAST(signed_at AS VARCHAR), takeup_minutes,
            unmapped_values, street, community, is_open
        FROM tickets ORDER BY 1""",
    ) == [
        ("12345-001", "未归类", "已办结", "满意", "蓝天物业", "2025-03-01 09:30:00",
         "2025-03-01 10:00:00", 30.0, {"request_type": "物业服务"}, "甲街道", "东社区", False),
        ("12345-002", "未归类", "已办结", "满意", "蓝天物业", "2025-03-02 09:30:00",
         "2025-03-02 09:50:00", 20.0, {"request_type": "物业服务"}, "甲街道", "东社区", False),
        ("12345-003", "未归类", "已办结", None, "蓝天物业", "2025-03-03 09:30:00",
         "2025-03-03 10:00:00", 30.0, {"request_type": "物业服务"}, "甲街道", "东社区", False),
        ("12345-004", "未归类", "已办结", "满意", "蓝天物业", "2025-03-04 09:30:00",
         None, None, {"request_type": "物业服务"}, "甲街道", "东社区", False),
        ("12345-005", "投诉", "处理中", "满意", "蓝天物业", "2025-03-05 09:30:00",
         "2025-03-05 10:00:00", 30.0, {}, "甲街道", "东社区", True),
    ]  # fmt: skip
    # 诉求人 is dropped, the phone hashed, the full-width phone in 诉求内容 masked.
    assert rows(db, "SELECT DISTINCT description FROM tickets WHERE ticket_id = '12345-001'") == [
        ("楼道灯坏了1天，请回电[电话]",)
    ]
    assert file.notes == {
        ("诉求类型", "物业服务", "未知的诉求类型，计入“未归类”"): 4,
        ("签收时间", "2025-03-04 09:00:00", "签收时间早于派单（或受理）时间，该值未采用"): 1,
    }
    summary = format_report(report)
    assert "加载 5 行，拒收 0 行" in summary
    assert "诉求类型“物业服务”：4 行，未知的诉求类型，计入“未归类”" in summary
    assert "未使用的列" not in summary  # 派单时间, 签收时间 and 承办单位 are used


def test_the_sla_of_an_unclassified_request_type_falls_back_to_the_priority_rules(tmp_path, load):
    """投诉 has its own rule (24 h to respond); 未归类 takes the priority rule (一般: 30 min)."""
    sheet = [HOTLINE_HEADER, _hotline_row(1), _hotline_row(2, 诉求类型="投诉")]
    _, db = load(write_xlsx(tmp_path / "in" / "12345导出.xlsx", {"工单": sheet}))
    assert rows(
        db,
        "SELECT request_type, response_limit_minutes, resolution_limit_hours FROM tickets "
        "ORDER BY ticket_id",
    ) == [("未归类", 30.0, 72.0), ("投诉", 1440.0, 168.0)]


def test_a_street_ticket_book_with_its_own_words_loads_as_it_is(tmp_path, load):
    header = ["序号", "受理编号", "登记时间", "反映人", "反映问题", "问题类别", "社区名称", "院落名称",
              "处理结果", "完结日期"]  # fmt: skip
    sheet = [
        header,
        [1, "SL-001", "2025-03-01 09:00", "陈静", "楼道灯不亮", "公共设施", "东社区", "一号院", "已修好", "2025-03-02"],
        [2, "SL-002", "2025-03-03 10:00", "李建国", "化粪池外溢", "市政管网", "东社区", "二号院", "已转交", None],
    ]  # fmt: skip
    report, db = load(write_xlsx(tmp_path / "in" / "台账.xlsx", {"3月": sheet}))

    file = report.files[0]
    assert file.kinds == ["tickets"]
    assert (file.rows_loaded, file.rows_rejected) == (2, 0)
    assert rows(
        db,
        "SELECT ticket_id, category, compound, CAST(closed_at AS VARCHAR) FROM tickets ORDER BY 1",
    ) == [
        ("SL-001", "公共设施", "一号院", "2025-03-02 00:00:00"),
        ("SL-002", "未归类", "二号院", None),
    ]
    assert "未使用的列：处理结果、序号" in format_report(report)
