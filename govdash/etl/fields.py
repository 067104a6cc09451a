"""The four kinds of spreadsheet, their canonical fields and the header names that mean them."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# How a field's cells are read. "personal" fields are read only to be dropped or hashed.
TEXT, INTEGER, NUMBER, TIMESTAMP, DATE, BOOLEAN, SCORE, PERSONAL = (
    "text",
    "integer",
    "number",
    "timestamp",
    "date",
    "boolean",
    "score",
    "personal",
)

REGISTER, TICKETS, SURVEY, EVALUATION = "register", "tickets", "survey", "evaluation"
# Record IDs: text, exactly as written (numbers.py explains the long-number refusal).
ID_FIELDS = ("ticket_id", "response_id")
KIND_LABELS = {
    REGISTER: "小区台账",
    TICKETS: "工单",
    SURVEY: "满意度问卷",
    EVALUATION: "年度考评评分",
}


@dataclass(frozen=True)
class Field:
    name: str  # English field name, the warehouse column
    label: str  # canonical Chinese header
    parse: str
    aliases: tuple[str, ...] = ()
    required: bool = False


def _f(name: str, label: str, parse: str, *aliases: str, required: bool = False) -> Field:
    return Field(name, label, parse, tuple(aliases), required)


_PLACE = (
    _f("district", "区", TEXT, "所属区", "区县", "所属区县", "区(县)"),
    _f("street", "街道", TEXT, "所属街道", "街道办", "镇街"),
    _f("community", "社区", TEXT, "所属社区", "社区名称"),
)
_COMPOUND = _f(
    "compound",
    "小区",
    TEXT,
    "小区名称",
    "院落",
    "院落名称",
    "项目",
    "项目名称",
    "所属小区",
    "小区(院落)",
    "小区/院落",
    "小区院落名称",
    "小区院落",
)
_BUILDING = _f("building", "楼栋", TEXT, "楼栋号", "栋号", "楼号", "楼宇", "所在楼栋")
_COMPANY = _f(
    "property_company",
    "物业企业",
    TEXT,
    "物业公司",
    "物业服务企业",
    "服务企业",
    "物业服务公司",
    "物业",
    "物业企业名称",
)
_NAME = _f(
    "contact_name",
    "联系人",
    PERSONAL,
    "报修人",
    "业主姓名",
    "姓名",
    "来电人",
    "诉求人",
    "反映人",
    "住户姓名",
    "受访人",
    "被访人",
)
_PHONE = _f(
    "phone",
    "联系电话",
    PERSONAL,
    "电话",
    "手机",
    "手机号",
    "联系方式",
    "来电号码",
    "手机号码",
    "电话号码",
    "联系号码",
)
_ID_NUMBER = _f("id_number", "身份证号", PERSONAL, "身份证", "证件号码", "身份证号码", "证件号")
_ROOM = _f("room", "房号", PERSONAL, "门牌号", "房间号", "住址", "地址", "详细地址", "房屋")

FIELDS: dict[str, tuple[Field, ...]] = {
    REGISTER: (
        *_PLACE,
        _COMPOUND,
        _f("compound_type", "小区类型", TEXT, "院落类型", "小区性质", "类型"),
        _f("grid", "网格", TEXT, "所属网格", "网格名称"),
        _f("households", "户数", INTEGER, "住户数", "总户数", "户数(户)", "居民户数"),
        _f("buildings", "楼栋数", INTEGER, "栋数", "楼栋数量", "楼栋数(栋)"),
        _COMPANY,
        _f("is_red_pm", "是否红色物业", BOOLEAN, "红色物业", "是否为红色物业"),
        _f(
            "has_joint_agreement",
            "是否签订党建联建协议",
            BOOLEAN,
            "党建联建",
            "是否党建联建",
            "党建联建协议",
            "是否签订党建联建",
            "签订党建联建协议",
        ),
        _f("agreement_signed_on", "党建联建签约日期", DATE, "签约日期", "联建日期", "协议签订日期"),
        _f("red_pm_certified_on", "红色物业认定日期", DATE, "认定日期", "红色物业认定时间"),
    ),
    TICKETS: (
        _f(
            "ticket_id",
            "工单编号",
            TEXT,
            "工单号",
            "单号",
            "编号",
            "序号+单号",
            "工单编码",
            "工单流水号",
            "流水号",
            "事件编号",
            "受理编号",
            "受理号",
            "诉求编号",
            "热线编号",
            "工单编码号",
            required=True,
        ),
        _f("channel", "来源渠道", TEXT, "渠道", "来源", "受理渠道", "诉求渠道", "工单来源"),
        _f(
            "request_type",
            "诉求类型",
            TEXT,
            "诉求性质",
            "工单性质",
            "事件性质",
            "来电类型",
            "诉求种类",
        ),
        _f(
            "category",
            "问题类别",
            TEXT,
            "工单类型",
            "报修类别",
            "类别",
            "事项类别",
            "问题类型",
            "报修类型",
            "诉求类别",
            "事件类别",
            "问题分类",
            "诉求分类",
            "事项分类",
        ),
        _f("priority", "紧急程度", TEXT, "紧急度", "优先级", "缓急程度", "紧急等级"),
        *_PLACE,
        _COMPOUND,
        _f("grid", "网格", TEXT, "所属网格"),
        _BUILDING,
        _COMPANY,
        _f(
            "accepted_at",
            "受理时间",
            TIMESTAMP,
            "报修时间",
            "登记时间",
            "接单时间",
            "创建时间",
            "诉求时间",
            "来电时间",
            "受理日期",
            "反映时间",
            "登记日期",
            "来电日期",
            required=True,
        ),
        _f("first_response_at", "首次响应时间", TIMESTAMP, "响应时间", "首次联系时间", "首响时间"),
        _f("arrived_at", "到场时间", TIMESTAMP, "上门时间", "到达时间", "到达现场时间"),
        _f(
            "closed_at",
            "办结时间",
            TIMESTAMP,
            "完成时间",
            "结单时间",
            "处理完成时间",
            "关闭时间",
            "办结日期",
            "完结时间",
            "完结日期",
            "结案时间",
            "办理完成时间",
        ),
        # The city hotline's own steps (DOMAIN.md §4): dispatched to the handling unit, taken
        # up by it. 派单 → 签收 is its own figure (takeup_minutes), never the first response.
        _f(
            "dispatched_at",
            "派单时间",
            TIMESTAMP,
            "派遣时间",
            "转派时间",
            "交办时间",
            "派发时间",
            "分派时间",
        ),
        _f("signed_at", "签收时间", TIMESTAMP, "签收日期", "接收时间", "单位签收时间"),
        _f(
            "handling_unit",
            "承办单位",
            TEXT,
            "承办部门",
            "办理单位",
            "处置单位",
            "责任单位",
            "主办单位",
            "承办单位名称",
        ),
        _f("status", "状态", TEXT, "工单状态", "处理状态", "办理状态", "办件状态", "当前状态"),
        _f("committed_hours", "承诺时限", TEXT, "办结时限", "承诺办结时限", "时限要求"),
        _f("is_valid_callback", "是否有效回访", BOOLEAN, "有效回访", "回访是否有效"),
        _f("is_contacted", "是否联系", BOOLEAN, "已联系", "是否已联系", "是否联系诉求人"),
        _f("is_resolved", "是否解决", BOOLEAN, "已解决", "是否已解决", "问题是否解决", "解决情况"),
        _f(
            "callback_satisfaction",
            "满意度",
            TEXT,
            "回访满意度",
            "回访结果",
            "评价",
            "满意程度",
            "满意情况",
            "回访评价",
        ),
        _NAME,
        _PHONE,
        _ID_NUMBER,
        _ROOM,
        _f(
            "description",
            "问题描述",
            TEXT,
            "诉求内容",
            "内容",
            "描述",
            "问题内容",
            "报修内容",
            "事项描述",
            "诉求描述",
            "反映问题",
        ),
    ),
    SURVEY: (
        _f("response_id", "问卷编号", TEXT, "问卷号", "编号", "问卷id", "答卷编号", required=True),
        _f("wave", "调查批次", TEXT, "批次", "调查期次", "调查年度", "期次"),
        _f("method", "调查方式", TEXT, "方式", "调查形式", "填写方式"),
        *_PLACE,
        _COMPOUND,
        _BUILDING,
        _f("respondent_type", "身份", TEXT, "住户身份", "受访者身份", "居住身份"),
        _f("surveyed_on", "调查日期", DATE, "填写日期", "调查时间", "填表日期", "提交时间"),
        _f("comment", "意见建议", TEXT, "意见", "建议", "其他意见", "意见和建议", "您的意见建议"),
        _NAME,
        _PHONE,
        _ID_NUMBER,
        _ROOM,
        _f("age", "年龄", PERSONAL, "年龄段", "出生年月"),
    ),
    EVALUATION: (
        _f("year", "年度", INTEGER, "考评年度", "年份", "评价年度", required=True),
        _f(
            "unit",
            "被考评单位",
            TEXT,
            "单位",
            "考评对象",
            "小区",
            "单位名称",
            "被评单位",
            required=True,
        ),
        _f("unit_level", "单位类型", TEXT, "单位级别", "考评类型", "对象类型"),
        _f(
            "evaluator",
            "评委",
            PERSONAL,
            "评分人",
            "评审人",
            "打分人",
            "评委姓名",
            "评委编号",
            required=True,
        ),
        _f("indicator", "指标", TEXT, "考评指标", "指标名称", "评分项目", "考评项目"),
        _f("score", "得分", NUMBER, "分数", "评分", "分值得分"),
        _f("bonus", "加分", NUMBER, "加分项", "加分值"),
        _f("penalty", "扣分", NUMBER, "扣分项", "扣分值"),
        _f("veto", "一票否决", BOOLEAN, "是否一票否决", "否决"),
        _f("note", "备注", TEXT, "说明", "加扣分说明"),
    ),
}

# Aliases for survey items and evaluator-scored indicators are added at run time from the
# config, so a renamed indicator in the config is recognised without code changes.
ITEM_ALIASES: dict[str, tuple[str, ...]] = {
    "客户服务": ("客服服务", "前台服务", "客户服务满意度"),
    "秩序维护": ("安全秩序", "秩序维护满意度", "安保服务"),
    "环境卫生": ("保洁服务", "环境卫生满意度", "清洁卫生"),
    "绿化养护": ("绿化", "绿化养护满意度"),
    "设施设备维修": ("设施设备", "维修服务", "设施设备维护", "工程维修"),
    "停车管理": ("车辆管理", "停车服务"),
    "信息公开": ("信息公示", "公开公示"),
    "党建引领与共治": ("党建引领", "党建共治", "党建引领共治"),
    "总体满意度": ("总体评价", "总体满意", "整体满意度"),
}

_PUNCTUATION = re.compile(r"[\s*＊:：#\"'“”‘’、，,。.·()（）\[\]【】<>《》]+")
_BRACKETED = re.compile(r"[(（\[【][^)）\]】]*[)）\]】]")


def normalize_text(value: str) -> str:
    """Full-width → half-width, line breaks and stray spaces collapsed, trimmed."""
    text = unicodedata.normalize("NFKC", value)
    return " ".join(text.split())


def header_keys(value: str) -> tuple[str, ...]:
    """Comparable forms of a header cell: exact-ish, then with bracketed notes removed."""
    text = unicodedata.normalize("NFKC", value).lower()
    first = _PUNCTUATION.sub("", text)
    second = _PUNCTUATION.sub("", _BRACKETED.sub("", text))
    return (first, second) if second and second != first else (first,)


def build_alias_index(fields: tuple[Field, ...]) -> dict[str, Field]:
    """Map every normalised name of every field (label, English name, aliases) to the field."""
    index: dict[str, Field] = {}
    for field in fields:
        for name in (field.label, field.name, *field.aliases):
            for key in header_keys(name):
                index.setdefault(key, field)
    return index
