"""The other three kinds: compound register, satisfaction survey, evaluation scores (wide, long)."""

from __future__ import annotations

import re
from datetime import date

from tests.conftest import only_file, rejections, rows, text_hits, write_csv, write_xlsx

REGISTER_HEADER = [
    "区", "街道", "社区", "小区名称", "小区类型", "网格", "户数", "楼栋数", "物业企业",
    "是否红色物业", "是否签订党建联建协议", "党建联建签约日期", "红色物业认定日期",
]  # fmt: skip


def test_compound_register(tmp_path, load):
    sheet = [
        ["锦绣社区小区（院落）台账"],
        REGISTER_HEADER,
        [
            "武侯区",
            "玉林街道",
            "锦绣社区",
            "锦绣花园",
            "商品房物管小区",
            "第一网格",
            1200,
            12,
            "蓉城物业",
            "是",
            "√",
            date(2023, 5, 1),
            "2023年6月1日",
        ],
        [
            "武侯区",
            "玉林街道",
            "锦绣社区",
            "翠竹苑",
            "单位院落",
            "第二网格",
            "150户",
            "5栋",
            None,
            "否",
            "×",
            None,
            None,
        ],
        [
            "武侯区",
            "玉林街道",
            "锦绣社区",
            "老街院落",
            "老旧自治院落",
            "第二网格",
            "1,050",
            8,
            None,
            None,
            None,
            None,
            "2024-01-15",
        ],
        [
            "武侯区",
            "玉林街道",
            "锦绣社区",
            "新村",
            "三无院落",
            "第三网格",
            "-3",
            2,
            None,
            "否",
            "否",
            None,
            None,
        ],
        ["合计", None, None, None, None, None, 2400],
    ]
    path = write_xlsx(
        tmp_path / "in" / "小区台账.xlsx", {"台账": sheet}, merges={"台账": ["A1:M1"]}
    )

    report, db = load(path)

    file = only_file(report)
    assert file.kinds == ["register"]
    assert (file.rows_read, file.rows_loaded, file.rows_rejected, file.rows_skipped) == (5, 3, 1, 1)
    assert rows(
        db,
        "SELECT district, street, community, compound, compound_type, grid, households, buildings, "
        "property_company, is_red_pm, has_joint_agreement, agreement_signed_on, red_pm_certified_on, "
        "source_row FROM compounds ORDER BY source_row",
    ) == [
        (
            "武侯区",
            "玉林街道",
            "锦绣社区",
            "锦绣花园",
            "商品房物管小区",
            "第一网格",
            1200,
            12,
            "蓉城物业",
            True,
            True,
            date(2023, 5, 1),
            date(2023, 6, 1),
            3,
        ),
        (
            "武侯区",
            "玉林街道",
            "锦绣社区",
            "翠竹苑",
            "单位院落",
            "第二网格",
            150,
            5,
            None,
            False,
            False,
            None,
            None,
            4,
        ),
        # A certification date without the yes/no column still marks the compound red.
        (
            "武侯区",
            "玉林街道",
            "锦绣社区",
            "老街院落",
            "老旧自治院落",
            "第二网格",
            1050,
            8,
            None,
            True,
            None,
            None,
            date(2024, 1, 15),
            5,
        ),
    ]
    assert rejections(db) == [("小区台账.xlsx", "台账", 6, "户数", "-3", "户数应为非负整数")]


SURVEY_ITEMS = ["客户服务", "秩序维护", "环境卫生", "绿化养护", "设施设备维修", "停车管理", "信息公开", "党建引领与共治", "总体满意度"]  # fmt: skip
SURVEY_HEADER = [
    "问卷编号",
    "调查批次",
    "调查方式",
    "小区",
    "楼栋",
    "身份",
    *SURVEY_ITEMS,
    "意见建议",
]


def test_survey_with_digits_words_blanks_and_out_of_range_scores(tmp_path, load):
    sheet = [
        ["2024年度锦绣社区物业服务满意度调查"],
        SURVEY_HEADER,
        [
            "WJ001",
            "2024年度",
            "入户",
            "锦绣花园",
            "3栋",
            "业主",
            5,
            4,
            3,
            2,
            1,
            None,
            5,
            4.0,
            "5",
            "希望加强停车管理",
        ],
        [
            "WJ002",
            "2024年度",
            "线上",
            "锦绣花园",
            "5栋",
            "租户",
            "非常满意",
            "满意",
            "基本满意",
            "不满意",
            "非常不满意",
            None,
            "很满意",
            "较满意",
            "一般",
            None,
        ],
        [
            "WJ003",
            "2024年度",
            "电话",
            "翠竹苑",
            None,
            "业主",
            4,
            4,
            4,
            4,
            4,
            6,
            4,
            4,
            4,
            "停车位不够",
        ],
        [
            "WJ004",
            "2024年下半年",
            "入户",
            "翠竹苑",
            "1栋",
            "业主",
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            "满意",
            "  ",
        ],
        [
            "WJ005",
            "2024年度",
            "入户",
            "翠竹苑",
            "1栋",
            "业主",
            3,
            "还行",
            3,
            3,
            3,
            3,
            3,
            3,
            3,
            None,
        ],
    ]
    path = write_xlsx(tmp_path / "in" / "满意度问卷.xlsx", {"问卷": sheet})

    report, db = load(path)

    file = only_file(report)
    assert file.kinds == ["survey"]
    assert (file.rows_read, file.rows_loaded, file.rows_rejected) == (5, 3, 2)
    assert rows(
        db,
        "SELECT response_id, wave, wave_year, wave_index, method, compound, building, "
        "respondent_type, comment, source_row FROM survey_responses ORDER BY 1",
    ) == [
        ("WJ001", "2024年度", 2024, 1, "入户", "锦绣花园", "3栋", "业主", "希望加强停车管理", 3),
        ("WJ002", "2024年度", 2024, 1, "线上", "锦绣花园", "5栋", "租户", None, 4),
        ("WJ004", "2024年下半年", 2024, 2, "入户", "翠竹苑", "1栋", "业主", None, 6),
    ]
    expected = {
        ("WJ001", item, score)
        for item, score in zip(SURVEY_ITEMS, [5, 4, 3, 2, 1, None, 5, 4, 5], strict=True)
        if score is not None
    }
    expected |= {
        ("WJ002", item, score)
        for item, score in zip(SURVEY_ITEMS, [5, 4, 3, 2, 1, None, 5, 4, 3], strict=True)
        if score is not None
    }
    expected |= {("WJ004", "总体满意度", 4)}
    answers = rows(db, "SELECT response_id, item, score FROM survey_answers")
    assert len(answers) == len(expected) == 17  # blanks are not stored
    assert set(answers) == expected
    got = rejections(db)
    assert [r[:5] for r in got] == [
        ("满意度问卷.xlsx", "问卷", 5, "停车管理", "6"),
        ("满意度问卷.xlsx", "问卷", 7, "秩序维护", "还行"),
    ]
    assert all(
        r[5] == "评分应为 1–5 的整数，或“非常满意/满意/基本满意/不满意/非常不满意”" for r in got
    )


WIDE_INDICATORS = {
    "党组织与党建联建": 5,
    "党员亮身份与质量监督员": 4,
    "参与环物委议事": 3,
    "志愿服务": 3,
    "环境卫生": 5,
    "秩序维护": 5,
    "设施设备": 5,
    "绿化": 5,
    "收支公示": 5,
    "配合环物委与业委会": 5,
}
EVALUATORS = ("张伟", "李娜", "王芳")
PSEUDONYM = re.compile(r"评委-[0-9A-F]{6}")


def _assert_names_gone(db, names):
    assert text_hits(db, ["锦绣花园", "蓉城物业"]), "the scan must see stored values"
    assert text_hits(db, names) == []


def test_evaluation_wide_with_bonus_penalty_and_veto(tmp_path, load):
    header = [
        "年度",
        "被考评单位",
        "单位类型",
        "评委",
        *WIDE_INDICATORS,
        "加分",
        "扣分",
        "一票否决",
        "备注",
    ]
    full = list(WIDE_INDICATORS.values())
    sheet = [
        ["2024年度评优评先评分表"],
        header,
        [2024, "锦绣花园", "小区", "张伟", *full, 2, 0, "否", None],
        [
            2024,
            "锦绣花园",
            "小区",
            "李娜",
            4.5,
            3,
            2,
            2,
            4,
            4,
            4,
            4,
            4,
            4,
            None,
            1,
            None,
            "消防通道堵塞扣1分",
        ],
        [2024, "翠竹苑", "小区", "张伟", 5, 4, 3, 3, 6, 5, 5, 5, 5, 5, None, None, None, None],
        [
            2024,
            "翠竹苑",
            "院落",
            "王芳",
            3,
            3,
            3,
            3,
            3,
            3,
            3,
            3,
            3,
            3,
            None,
            None,
            "是",
            "发生安全责任事故",
        ],
    ]
    path = write_xlsx(tmp_path / "in" / "考评评分.xlsx", {"评分": sheet})

    report, db = load(path)

    file = only_file(report)
    assert file.kinds == ["evaluation"]
    assert (file.rows_read, file.rows_loaded, file.rows_rejected) == (4, 3, 1)
    scores = rows(
        db,
        "SELECT year, unit_level, unit, source_row, indicator, score FROM evaluation_scores",
    )
    expected = set()
    for row_number, values in ((3, full), (4, [4.5, 3, 2, 2, 4, 4, 4, 4, 4, 4]), (6, [3] * 10)):
        unit = "锦绣花园" if row_number < 5 else "翠竹苑"
        expected |= {
            (2024, "compound", unit, row_number, name, float(value))
            for name, value in zip(WIDE_INDICATORS, values, strict=True)
        }
    assert len(scores) == 30
    assert set(scores) == expected
    assert rows(
        db,
        "SELECT unit, source_row, bonus, penalty, is_veto, note FROM evaluation_adjustments "
        "ORDER BY source_row",
    ) == [
        ("锦绣花园", 3, 2.0, 0.0, False, None),
        ("锦绣花园", 4, None, 1.0, None, "消防通道堵塞扣1分"),
        ("翠竹苑", 6, None, None, True, "发生安全责任事故"),
    ]
    [rejected] = rejections(db)
    assert rejected[:3] == ("考评评分.xlsx", "评分", 5)
    assert rejected[4:] == ("6", "得分超出该指标的分值范围（0 到 5）")

    pseudonyms = dict(
        rows(db, "SELECT source_row, any_value(evaluator) FROM evaluation_scores GROUP BY 1")
    )
    assert all(PSEUDONYM.fullmatch(p) for p in pseudonyms.values())
    assert len({pseudonyms[3], pseudonyms[4], pseudonyms[6]}) == 3
    _assert_names_gone(db, EVALUATORS)


def test_evaluation_wide_rejection_names_the_indicator_column(tmp_path, load):
    header = ["年度", "被考评单位", "单位类型", "评委", *WIDE_INDICATORS]
    sheet = [header, [2024, "翠竹苑", "小区", "张伟", 5, 4, 3, 3, 6, 5, 5, 5, 5, 5]]
    path = write_xlsx(tmp_path / "in" / "考评评分.xlsx", {"评分": sheet})

    _, db = load(path)

    assert [r[2:5] for r in rejections(db)] == [(2, "环境卫生", "6")]


def test_evaluation_long_form_with_adjustment_rows(tmp_path, load):
    header = ["年度", "被考评单位", "单位类型", "评委", "指标", "得分"]
    body = [
        [2024, "蓉城物业", "物业企业", "张伟", "党组织与党建联建", 4],
        [2024, "蓉城物业", "物业企业", "张伟", "志愿服务", "3分"],
        [2024, "蓉城物业", "物业企业", "张伟", "收支公示", 5],
        [2024, "蓉城物业", "物业企业", "张伟", "加分", 3],
        [2024, "蓉城物业", "物业企业", "张伟", "扣分", 1.5],
        [2024, "蓉城物业", "物业企业", "李娜", "志愿服务", 4],  # 3 points at most
        [2024, "蓉城物业", "物业企业", "李娜", "绿化", 4.5],
        [2024, "蓉城物业", "物业企业", "李娜", "一票否决", "否"],
        [2024, "锦绣社区", "社区", "王芳", "党建亮点", 5],  # not an indicator of the config
        [2024, "锦绣社区", "社区", "王芳", "收支公示", 4],
        [2024, "锦绣社区", "社区", "王芳", "一票否决", "√"],
    ]
    path = write_csv(tmp_path / "in" / "考评-长表.csv", [header, *body], "utf-8-sig")

    report, db = load(path)

    file = only_file(report)
    assert (file.rows_read, file.rows_loaded, file.rows_rejected) == (11, 9, 2)
    assert set(
        rows(db, "SELECT unit_level, unit, indicator, score, source_row FROM evaluation_scores")
    ) == {
        ("property_company", "蓉城物业", "党组织与党建联建", 4.0, 2),
        ("property_company", "蓉城物业", "志愿服务", 3.0, 3),
        ("property_company", "蓉城物业", "收支公示", 5.0, 4),
        ("property_company", "蓉城物业", "绿化", 4.5, 8),
        ("community", "锦绣社区", "收支公示", 4.0, 11),
    }
    adjustments = rows(
        db,
        "SELECT unit, bonus, penalty, is_veto FROM evaluation_adjustments ORDER BY unit, bonus NULLS LAST",
    )
    assert adjustments == [
        ("蓉城物业", 3.0, 1.5, None),
        ("蓉城物业", None, None, False),
        ("锦绣社区", None, None, True),
    ]
    assert [r[2:] for r in rejections(db)] == [
        (7, "得分", "4", "得分超出该指标的分值范围（0 到满分）"),
        (10, "指标", "党建亮点", "未知的考评指标（不在配置的指标体系中）"),
    ]
    _assert_names_gone(db, EVALUATORS)


def test_several_deduction_rows_add_up(tmp_path, load):
    header = ["年度", "被考评单位", "单位类型", "评委", "指标", "得分", "备注"]
    body = [
        [2024, "锦绣花园", "小区", "张伟", "绿化", 4, None],
        [2024, "锦绣花园", "小区", "张伟", "扣分", 1, "消防通道堵塞"],
        [2024, "锦绣花园", "小区", "张伟", "扣分", 2, "公示不及时"],
        [2024, "锦绣花园", "小区", "张伟", "加分", 1, "获市级表彰"],
        [2024, "锦绣花园", "小区", "张伟", "加分", 2, "志愿服务突出"],
    ]
    _, db = load(write_csv(tmp_path / "in" / "扣分.csv", [header, *body], "utf-8"))

    assert rows(db, "SELECT bonus, penalty FROM evaluation_adjustments") == [(3.0, 3.0)]


def test_evaluation_without_unit_type_looks_units_up_in_the_register(tmp_path, load):
    register = write_xlsx(
        tmp_path / "in" / "台账.xlsx",
        {
            "台账": [
                ["社区", "小区", "户数", "物业企业"],
                ["锦绣社区", "锦绣花园", 1200, "蓉城物业"],
            ]
        },
    )
    evaluation = write_xlsx(
        tmp_path / "in" / "评分.xlsx",
        {
            "评分": [
                ["年度", "单位", "评委", "指标", "得分"],
                ["2024年", "锦绣花园", "张伟", "绿化", 4],
                ["2024年", "蓉城物业", "张伟", "绿化", 3],
                ["2024年", "锦绣社区", "张伟", "绿化", 5],
                ["2024年", "不存在的单位", "张伟", "绿化", 5],
            ]
        },
    )

    # The evaluation comes first on the command line; it must still see the register.
    report, db = load(evaluation, register)

    assert report.ok
    assert [f.rows_loaded for f in report.files] == [3, 1]
    assert set(rows(db, "SELECT year, unit_level, unit, score FROM evaluation_scores")) == {
        (2024, "compound", "锦绣花园", 4.0),
        (2024, "property_company", "蓉城物业", 3.0),
        (2024, "community", "锦绣社区", 5.0),
    }
    [rejected] = rejections(db)
    assert (rejected[2], rejected[5]) == (
        5,
        "无法判断单位类型（请填写“单位类型”：小区/社区/物业企业）",
    )


def test_rejection_for_a_missing_column_names_it_in_chinese(tmp_path, load):
    path = write_xlsx(
        tmp_path / "in" / "评分.xlsx",
        {"评分": [["年度", "单位", "评委", "指标", "得分"], [2024, "某单位", "张伟", "绿化", 4]]},
    )

    _, db = load(path)

    assert [r[2:4] for r in rejections(db)] == [(2, "单位类型")]
