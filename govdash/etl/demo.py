"""Write a deterministic demo data set as the messy spreadsheets a street office really keeps."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zipfile import ZIP_DEFLATED, ZipFile

import numpy as np
import numpy.typing as npt
from openpyxl import Workbook
from openpyxl.utils import get_column_letter
from openpyxl.writer.excel import ExcelWriter

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
StrArray = npt.NDArray[np.str_]
Row = list[Any]

# ---------------------------------------------------------------------------------------------
# The demo street

DISTRICT = "示范区(模拟)"
STREET = "锦江街道(模拟)"
COMMUNITIES = (
    "锦绣社区(模拟)",
    "玉林社区(模拟)",
    "芙蓉社区(模拟)",
    "望江社区(模拟)",
    "桂溪社区(模拟)",
    "红星社区(模拟)",
    "东湖社区(模拟)",
)
COMPOUND_COUNT = 125
# Type, share of compounds, median households, chance of having a property company,
# households per building (low, high).
COMPOUND_TYPES = (
    ("商品房物管小区", 0.55, 210.0, 1.00, (40, 110)),
    ("单位院落", 0.20, 120.0, 0.60, (12, 36)),
    ("老旧自治院落", 0.17, 75.0, 0.10, (8, 30)),
    ("三无院落", 0.08, 45.0, 0.00, (6, 20)),
)
SELF_GOVERNED_TYPES = (2, 3)  # indexes into COMPOUND_TYPES
# Property companies: name, response-time factor (1 = typical, above 1 = slower), service
# quality on a logit scale. The last two are the weak companies that are regularly late.
COMPANIES = (
    ("蜀安物业服务有限公司(模拟)", 0.70, 0.50),
    ("锦城物业管理有限公司(模拟)", 0.80, 0.40),
    ("天府和居物业服务有限公司(模拟)", 0.90, 0.30),
    ("芙蓉里物业服务有限公司(模拟)", 0.95, 0.20),
    ("青羊宜居物业管理有限公司(模拟)", 1.00, 0.10),
    ("华信物业服务有限公司(模拟)", 1.00, 0.00),
    ("安泰物业管理有限公司(模拟)", 1.05, 0.00),
    ("合众物业服务有限公司(模拟)", 1.10, -0.10),
    ("金沙物业服务有限公司(模拟)", 1.15, -0.15),
    ("嘉禾物业管理有限公司(模拟)", 1.20, -0.20),
    ("速达物业服务有限公司(模拟)", 1.90, -0.60),
    ("宏远物业管理有限公司(模拟)", 2.20, -0.70),
)
COMPANY_NAMES = tuple(name for name, _, _ in COMPANIES)
SELF_GOVERNED_SPEED, SELF_GOVERNED_QUALITY = 1.40, -0.30
# Compounds that already had a joint agreement before 2023 are somewhat better run.
PRE_SIGNED_QUALITY, PRE_SIGNED_SPEED, RED_PM_QUALITY = 0.15, 0.92, 0.10
# The planted effect: after a compound signs during the demo period, responses get faster and
# callbacks more satisfied (a few minutes, about 4 points), with plenty of noise around it.
POST_SIGN_QUALITY, POST_SIGN_SPEED, POST_SIGN_SURVEY = 0.12, 0.80, 0.15

START = datetime(2023, 1, 1)
DEFAULT_AS_OF = datetime(2025, 12, 31, 18, 0)
FILE_TIMESTAMP = datetime(2026, 1, 1, 9, 0)  # workbook created/modified, for stable files
EPOCH = datetime(1970, 1, 1)
EXCEL_EPOCH = datetime(1899, 12, 30)
MISSING = np.iinfo(np.int64).min  # epoch minutes of a blank time; viewed as datetime64 it is NaT
BIG_TICKETS = 200_000  # above this many tickets, tickets are streamed to plain CSV files
CSV_BATCH_ROWS = 50_000

# ---------------------------------------------------------------------------------------------
# Tickets: value sets (DOMAIN.md §3) and the shape of demand

CHANNELS = ("物业前台/电话", "小程序/APP", "12345转办", "网格员上报", "环物委/业委会转办")
REQUEST_TYPES = ("咨询", "求助", "投诉", "举报", "建议")
CONSULT, HELP, COMPLAINT = 0, 1, 2
PRIORITIES = ("一般", "紧急", "特急")
NORMAL, URGENT, TOP_URGENT = 0, 1, 2
STATUSES = ("待受理", "已派单", "处理中", "已延期", "已退回", "待回访", "已办结")
WAITING, DISPATCHED, IN_PROGRESS, EXTENDED, RETURNED, AWAITING_CALLBACK, DONE = range(7)
SATISFACTION = ("满意", "基本满意", "不满意")
CATEGORIES = (
    "水电维修",
    "房屋渗漏",
    "电梯",
    "公共设施",
    "环境卫生",
    "绿化养护",
    "安全秩序",
    "停车管理",
    "噪音扰民",
    "装修管理",
    "物业收费",
    "其他",
)
CATEGORY_MIX = np.array([0.24, 0.09, 0.06, 0.10, 0.11, 0.04, 0.06, 0.08, 0.06, 0.05, 0.05, 0.06])
ELEVATOR, PUBLIC_FACILITY, NOISE = 2, 3, 8
# Month-of-year demand by category: rainy-season plumbing and leaks, summer noise, spring
# and summer greenery; the rest flat.
_RAINY = (0.80, 0.80, 0.90, 1.00, 1.20, 1.50, 1.75, 1.65, 1.20, 0.90, 0.80, 0.80)
_SUMMER = (0.70, 0.70, 0.90, 1.00, 1.20, 1.50, 1.65, 1.55, 1.10, 0.90, 0.80, 0.70)
_GREEN = (0.60, 0.70, 1.20, 1.40, 1.40, 1.20, 1.10, 1.00, 1.00, 0.90, 0.80, 0.60)
_FLAT = (1.0,) * 12
SEASON = np.array(
    [
        _RAINY,
        _RAINY,
        _FLAT,
        _FLAT,
        _FLAT,
        _GREEN,
        _FLAT,
        _FLAT,
        _SUMMER,
        _FLAT,
        _FLAT,
        _FLAT,
    ]
)  # rows follow CATEGORIES
SPRING_FESTIVALS = (
    date(2021, 2, 12),
    date(2022, 2, 1),
    date(2023, 1, 22),
    date(2024, 2, 10),
    date(2025, 1, 29),
    date(2026, 2, 17),
)
SPRING_FESTIVAL_DAYS, SPRING_FESTIVAL_FACTOR = (-2, 6), 0.45
WEEKDAY_FACTOR = np.array([1.10, 1.05, 1.00, 1.00, 1.00, 0.90, 0.85])  # Monday first
# Hour-of-day weights: morning peak 9–11, evening peak 19–21; noise complaints lean late.
HOUR_WEIGHT = np.array(
    [
        0.20,
        0.10,
        0.08,
        0.06,
        0.06,
        0.10,
        0.30,
        0.80,
        1.50,
        2.20,
        2.40,
        2.00,
        1.30,
        1.20,
        1.60,
        1.70,
        1.60,
        1.40,
        1.40,
        1.90,
        2.20,
        1.90,
        1.00,
        0.50,
    ]
)
EVENING_BOOST = np.where(np.arange(24) >= 19, 2.5, np.where(np.arange(24) <= 1, 2.0, 1.0))
HOUR_CDF = np.cumsum(np.vstack([HOUR_WEIGHT, HOUR_WEIGHT * EVENING_BOOST]), axis=1)
HOUR_CDF /= HOUR_CDF[:, -1:]
# 诉求类型 given 问题类别 (columns follow REQUEST_TYPES).
_TYPES_DEFAULT = (0.12, 0.71, 0.10, 0.02, 0.05)
REQUEST_TYPE_BY_CATEGORY = np.array(
    [
        _TYPES_DEFAULT,
        _TYPES_DEFAULT,
        _TYPES_DEFAULT,
        _TYPES_DEFAULT,
        (0.05, 0.61, 0.22, 0.04, 0.08),  # 环境卫生
        _TYPES_DEFAULT,
        (0.05, 0.55, 0.20, 0.15, 0.05),  # 安全秩序
        (0.15, 0.45, 0.25, 0.08, 0.07),  # 停车管理
        (0.05, 0.40, 0.40, 0.12, 0.03),  # 噪音扰民
        (0.30, 0.30, 0.20, 0.15, 0.05),  # 装修管理
        (0.45, 0.15, 0.30, 0.02, 0.08),  # 物业收费
        (0.30, 0.40, 0.12, 0.03, 0.15),  # 其他
    ]
)
# 紧急程度 given 问题类别 (columns follow PRIORITIES).
_PRIORITY_DEFAULT = (0.90, 0.09, 0.01)
PRIORITY_BY_CATEGORY = np.array(
    [
        (0.78, 0.17, 0.05),
        (0.80, 0.16, 0.04),
        (0.68, 0.19, 0.13),
        _PRIORITY_DEFAULT,
        _PRIORITY_DEFAULT,
        _PRIORITY_DEFAULT,
        (0.74, 0.17, 0.09),
        _PRIORITY_DEFAULT,
        _PRIORITY_DEFAULT,
        _PRIORITY_DEFAULT,
        _PRIORITY_DEFAULT,
        _PRIORITY_DEFAULT,
    ]
)
# 来源渠道 given 诉求类型: complaints and reports come through 12345 far more often.
_CHANNELS_DEFAULT = (0.47, 0.26, 0.12, 0.10, 0.05)
_CHANNELS_COMPLAINT = (0.25, 0.20, 0.40, 0.08, 0.07)
CHANNEL_BY_TYPE = np.array(
    [
        _CHANNELS_DEFAULT,
        _CHANNELS_DEFAULT,
        _CHANNELS_COMPLAINT,
        _CHANNELS_COMPLAINT,
        _CHANNELS_DEFAULT,
    ]
)
FOLLOW_UP_SHARE = 0.05  # tickets that are the same resident calling again about the same thing
FOLLOW_UP_MEAN_MINUTES = 6 * 1440
# Service times. Median close time by category in hours; multipliers by priority and type.
CLOSE_MEDIAN_HOURS = np.array([5, 40, 3, 20, 4, 30, 2, 6, 3, 24, 24, 12], dtype=float)
CLOSE_BY_PRIORITY = np.array([1.0, 0.5, 0.25])
CLOSE_BY_TYPE = np.array([0.3, 1.0, 1.6, 1.2, 2.0])
MAX_CLOSE_MINUTES = 60 * 1440
# A few tickets stall (parts, maintenance-fund approval, an absent owner) and take far longer;
# near the as-of date they make the overdue backlog.
STALLED_SHARE, STALLED_DAYS = 0.03, (7, 45)
ON_SITE_CATEGORIES = np.array([1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 0, 0], dtype=bool)
DESCRIPTIONS = (
    (
        "厨房水龙头漏水，请派人维修",
        "卫生间下水道堵塞，返味严重",
        "家里突然停电，总闸合不上",
        "楼道灯不亮，晚上看不清路",
        "水管爆裂，屋里进水了",
        "热水器进水阀漏水",
    ),
    (
        "下大雨后卧室天花板渗水",
        "外墙渗漏，墙面发霉",
        "楼上卫生间漏水到我家",
        "顶楼屋面防水层破损漏雨",
        "阳台窗边渗水",
    ),
    (
        "电梯困人，请尽快处理",
        "电梯异响，运行不稳",
        "电梯按键失灵",
        "电梯门关不上",
        "电梯停运，老人上下楼不便",
    ),
    (
        "单元门禁坏了，门关不上",
        "小区健身器材损坏",
        "楼道扶手松动",
        "消防指示灯不亮",
        "雨棚破损",
        "路面破损有积水",
    ),
    (
        "垃圾桶满了没人清运",
        "楼道有人堆放杂物",
        "化粪池冒溢，气味很大",
        "小区有老鼠，请消杀",
        "楼道地面长期没有打扫",
    ),
    ("树枝挡住窗户，请修剪", "草坪长期无人修剪", "绿化带被占用种菜", "大树有倒伏风险"),
    (
        "小区门岗无人值守",
        "陌生人随意进出小区",
        "电动车在楼道充电，有安全隐患",
        "夜间有人翻越围墙",
        "监控摄像头坏了",
    ),
    (
        "车位被人长期占用",
        "消防通道有车乱停",
        "外来车辆进小区乱停放",
        "地下车库照明不足",
        "充电桩不能用",
    ),
    (
        "楼上夜里噪音很大",
        "广场舞音响声音太大",
        "夜间施工噪音扰民",
        "临街商铺音响声音大",
        "空调外机噪音大",
    ),
    ("邻居装修周末施工", "装修垃圾乱堆放", "装修拆改墙体，请核查", "装修噪音超时"),
    (
        "物业费收费标准有疑问",
        "公摊水电费不明白，请解释",
        "停车费上涨没有公示",
        "咨询物业费缴纳方式",
        "多收了物业费",
    ),
    (
        "咨询业委会选举事宜",
        "建议增设快递柜",
        "反映宠物狗不拴绳",
        "询问社区活动报名",
        "建议增加休闲座椅",
    ),
)
PHONE_IN_TEXT_SHARE, ID_IN_TEXT_SHARE = 0.004, 0.002
ID_REGIONS = ("510104", "510105", "510106", "510107", "510108", "510112")
SURNAMES = tuple(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
    "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛段雷侯龙史陶黎贺顾毛郝"
)
GIVEN_NAMES = (
    "伟",
    "芳",
    "娜",
    "秀英",
    "敏",
    "静",
    "丽",
    "强",
    "磊",
    "军",
    "洋",
    "勇",
    "艳",
    "杰",
    "娟",
    "涛",
    "明",
    "超",
    "秀兰",
    "霞",
    "平",
    "刚",
    "桂英",
    "建华",
    "文",
    "华",
    "红",
    "玉兰",
    "志强",
    "建国",
    "晓燕",
    "海燕",
    "俊",
    "欣怡",
    "子涵",
    "浩然",
    "宇轩",
    "雨桐",
    "梓萱",
    "思远",
    "德明",
    "淑珍",
    "玉珍",
    "秀珍",
    "国平",
    "建平",
    "小红",
    "丹",
    "鹏",
    "琳",
)

# ---------------------------------------------------------------------------------------------
# Surveys and evaluations

SURVEY_ITEMS = (
    "客户服务",
    "秩序维护",
    "环境卫生",
    "绿化养护",
    "设施设备维修",
    "停车管理",
    "信息公开",
    "党建引领与共治",
    "总体满意度",
)
SURVEY_ITEM_OFFSET = np.array([0.10, 0.00, 0.00, 0.10, -0.20, -0.40, -0.20, 0.10])
SURVEY_THRESHOLDS = np.array([-1.3, -0.5, 0.35, 1.4])  # latent cut points for scores 2..5
SCORE_WORDS = ("", "非常不满意", "不满意", "基本满意", "满意", "非常满意")
SURVEY_METHODS = ("入户", "线上", "电话")
SURVEY_METHOD_SHARE = np.array([0.5, 0.3, 0.2])
SURVEY_COMMENTS = {
    "客户服务": "前台服务态度有待改进",
    "秩序维护": "门岗值守要加强",
    "环境卫生": "保洁要更及时",
    "绿化养护": "绿化需要定期修剪",
    "设施设备维修": "报修后维修太慢",
    "停车管理": "希望规范停车秩序",
    "信息公开": "希望及时公开物业收支",
    "党建引领与共治": "希望多组织居民议事活动",
}
SURVEY_PRAISE = ("总体满意，继续保持", "物业服务很好，感谢", "希望多组织社区活动", "电梯维保要到位")
# (name, points) of the evaluator-scored indicators, DOMAIN.md §5, in the config's order.
EVALUATION_INDICATORS = (
    ("党组织与党建联建", 5),
    ("党员亮身份与质量监督员", 4),
    ("参与环物委议事", 3),
    ("志愿服务", 3),
    ("环境卫生", 5),
    ("秩序维护", 5),
    ("设施设备", 5),
    ("绿化", 5),
    ("收支公示", 5),
    ("配合环物委与业委会", 5),
)
UNIT_LEVELS = ("小区", "社区", "物业企业")

# ---------------------------------------------------------------------------------------------
# Files and headers

REGISTER_FILE = "小区台账.xlsx"
REGISTER_HEADER = (
    "序号",
    "区",
    "街道",
    "社区",
    "小区名称",
    "小区类型",
    "网格",
    "户数",
    "楼栋数",
    "物业企业",
    "是否红色物业",
    "是否签订党建联建协议",
    "党建联建签约日期",
    "红色物业认定日期",
    "备注",
)
TICKET_COLUMNS = (
    "工单编号",
    "来源渠道",
    "诉求类型",
    "问题类别",
    "紧急程度",
    "社区",
    "小区",
    "楼栋",
    "房号",
    "物业企业",
    "联系人",
    "联系电话",
    "问题描述",
    "受理时间",
    "首次响应时间",
    "到场时间",
    "办结时间",
    "状态",
    "是否有效回访",
    "是否联系",
    "是否解决",
    "满意度",
)
TICKET_TIME_COLUMNS = ("受理时间", "首次响应时间", "到场时间", "办结时间")
TICKET_FLAG_COLUMNS = ("是否有效回访", "是否联系", "是否解决")
# Two-row header of the monthly workbook: parent cells merged over their children.
TICKET_GROUPS = {"时间节点": TICKET_TIME_COLUMNS, "回访情况": (*TICKET_FLAG_COLUMNS, "满意度")}
# The GBK CSV uses the other names real exports carry.
TICKET_ALIASES = {
    "工单编号": "工单号",
    "问题类别": "报修类别",
    "小区": "项目名称",
    "物业企业": "物业公司",
    "联系人": "报修人",
    "联系电话": "电话",
    "受理时间": "报修时间",
    "首次响应时间": "响应时间",
    "办结时间": "完成时间",
    "满意度": "回访满意度",
}
# The quarterly workbook's headers, with the stray spaces and line breaks of a hand-made sheet.
TICKET_MESSY_HEADERS = {
    "工单编号": " 工单编号 ",
    "问题类别": "问题类别 ",
    "小区": " 小区",
    "受理时间": "受理\n时间",
    "首次响应时间": "首次响应\n时间",
    "到场时间": "到场\n时间",
    "办结时间": "办结\n时间",
    "是否有效回访": "是否有效\n回访",
    "满意度": "满意度 ",
}
QUARTERS = ("第一季度", "第二季度", "第三季度", "第四季度")
SURVEY_HEADER = (
    "问卷编号",
    "调查批次",
    "调查方式",
    "小区",
    "楼栋",
    "身份",
    *SURVEY_ITEMS,
    "意见建议",
    "调查日期",
)
EVALUATION_SHEET = "考评评分"
EVALUATION_KEYS = ("年度", "被考评单位", "单位类型", "评委")
EVALUATION_ADJUSTMENTS = ("加分", "扣分", "一票否决")


@dataclass(frozen=True)
class PlantedDefect:
    """A bad row (or a word the vocabulary does not know, which loads under 未归类) the demo
    writes on purpose, so loader tests can count rejections and notes exactly."""

    file: str
    sheet: str  # "" for a CSV file
    row: int  # Excel row number; for a CSV the line number, header = line 1
    column: str  # canonical field (the file's header may be an alias of it)
    kind: str
    value: str  # what the cell holds ("" = blank)


# Positions are fixed, whatever the seed; they sit in the first rows of a sheet so they exist
# for small `tickets` counts too (a defect whose row does not exist is not written).
PLANTED_DEFECTS = (
    PlantedDefect("工单_2023.xlsx", "2月", 8, "受理时间", "impossible_date", "2023年2月30日 09:15"),
    PlantedDefect(
        "工单_2023.xlsx", "3月", 10, "办结时间", "closed_before_accepted", "受理时间前3小时"
    ),
    PlantedDefect("工单_2023.xlsx", "4月", 6, "工单编号", "missing_id", ""),
    PlantedDefect("工单_2023.xlsx", "5月", 12, "问题类别", "unknown_category", "违章搭建"),
    PlantedDefect("工单_2023.xlsx", "6月", 14, "紧急程度", "unknown_priority", "较急"),
    PlantedDefect("工单_2024.csv", "", 21, "受理时间", "impossible_date", "2024/2/30 10:20"),
    PlantedDefect("工单_2024.csv", "", 41, "办结时间", "closed_before_accepted", "受理时间前3小时"),
    PlantedDefect("工单_2024.csv", "", 61, "工单编号", "missing_id", ""),
    PlantedDefect("工单_2024.csv", "", 81, "问题类别", "unknown_category", "快递代收"),
    PlantedDefect("工单_2024.csv", "", 101, "紧急程度", "unknown_priority", "中等"),
    PlantedDefect(
        "工单_2025.xlsx", "第一季度", 16, "受理时间", "impossible_date", "2025-02-30 14:30"
    ),
    PlantedDefect(
        "工单_2025.xlsx", "第二季度", 9, "办结时间", "closed_before_accepted", "受理时间前3小时"
    ),
    PlantedDefect("工单_2025.xlsx", "第三季度", 7, "工单编号", "missing_id", ""),
    PlantedDefect("工单_2025.xlsx", "第三季度", 13, "问题类别", "unknown_category", "违章搭建"),
    PlantedDefect("工单_2025.xlsx", "第四季度", 11, "紧急程度", "unknown_priority", "较急"),
    PlantedDefect(
        "满意度调查_2023-2024.xlsx", "2023年下半年", 14, "总体满意度", "score_out_of_range", "6"
    ),
    PlantedDefect("满意度调查_2023-2024.xlsx", "2024年上半年", 22, "问卷编号", "missing_id", ""),
    PlantedDefect("满意度调查_2025.csv", "", 31, "环境卫生", "score_out_of_range", "6"),
    PlantedDefect("满意度调查_2025.csv", "", 46, "问卷编号", "missing_id", ""),
    PlantedDefect(
        "年度考评评分_2023.xlsx", EVALUATION_SHEET, 12, "环境卫生", "score_out_of_range", "7.5"
    ),
    PlantedDefect(
        "年度考评评分_2024.xlsx", EVALUATION_SHEET, 27, "得分", "score_out_of_range", "8"
    ),
    PlantedDefect(
        "年度考评评分_2025.xlsx", EVALUATION_SHEET, 39, "得分", "score_out_of_range", "-1.5"
    ),
)


@dataclass(frozen=True)
class Area:
    """One street's share of the world: its place names, its property companies (name, speed,
    quality, as COMPANIES) and how many compounds it has. The demo is one such street;
    bench/make_city.py lays many side by side to make a city."""

    district: str
    street: str
    communities: tuple[str, ...]
    companies: tuple[tuple[str, float, float], ...]
    compound_count: int
    name_prefix: str = ""  # put before each compound's name, to keep names unique in a city


DEMO_AREA = Area(DISTRICT, STREET, COMMUNITIES, COMPANIES, COMPOUND_COUNT)


# ---------------------------------------------------------------------------------------------
# Public entry point


def write_demo(
    out_dir: Path,
    seed: int = 2026,
    tickets: int | None = None,
    as_of: datetime | None = None,
) -> list[Path]:
    """Write the demo spreadsheets under out_dir (created if missing, existing demo files
    replaced) and return their paths in a sensible load order (register first).

    With more than 200,000 tickets the tickets go to plain per-year CSV files, streamed a month
    at a time; otherwise they go to the three messy files described in the module constants.
    """
    as_of = as_of or DEFAULT_AS_OF
    if as_of < START + timedelta(days=2):
        raise ValueError(f"as_of 须晚于 {START + timedelta(days=2):%Y-%m-%d}")
    if tickets is not None and tickets < 0:
        raise ValueError("tickets 不能为负数")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _remove_demo_files(out_dir)
    world_rng, ticket_rng, survey_rng, evaluation_rng, mess_rng = np.random.default_rng(seed).spawn(
        5
    )
    world = _make_register(world_rng, as_of)
    windows = _month_windows(as_of)
    total = tickets if tickets is not None else _default_ticket_count(world)
    counts = _split_tickets(ticket_rng, windows, total)

    paths = [_write_register(out_dir / REGISTER_FILE, world, mess_rng)]
    if total > BIG_TICKETS:
        paths += _write_tickets_streamed(out_dir, ticket_rng, world, windows, counts)
    else:
        paths += _write_ticket_files(out_dir, ticket_rng, mess_rng, world, windows, counts)
    paths += _write_surveys(out_dir, _make_surveys(survey_rng, world))
    paths += _write_evaluations(out_dir, _make_evaluations(evaluation_rng, world))
    return paths


def _remove_demo_files(out_dir: Path) -> None:
    year = "20[0-9][0-9]"
    patterns = (
        REGISTER_FILE,
        f"工单_{year}.xlsx",
        f"工单_{year}.csv",
        f"满意度调查_{year}.xlsx",
        f"满意度调查_{year}-{year}.xlsx",
        f"满意度调查_{year}.csv",
        f"年度考评评分_{year}.xlsx",
    )
    for pattern in patterns:
        for path in out_dir.glob(pattern):
            path.unlink()


# ---------------------------------------------------------------------------------------------
# The register: compounds and how well they are run


@dataclass(frozen=True)
class _World:
    as_of: datetime
    names: list[str]
    places: tuple[tuple[str, str, str], ...]  # (district, street, community) by community index
    company_names: tuple[str, ...]  # by company index
    community: IntArray
    compound_type: IntArray
    grid: IntArray
    households: IntArray
    buildings: IntArray
    units: IntArray
    rooms_per_floor: IntArray
    has_elevator: BoolArray
    company: IntArray  # index into company_names, -1 = no company
    speed: FloatArray  # response-time factor, 1 = typical
    quality: FloatArray  # service quality, logit scale
    ticket_weight: FloatArray  # share of all tickets
    signed_on: list[date | None]  # joint agreement, as far as the register knows it
    red_on: list[date | None]
    has_agreement: BoolArray
    is_red: BoolArray
    signed_minute: IntArray  # epoch minute of a signing during the demo period, else MISSING
    key_offset: IntArray  # first resident key of each compound
    salts: IntArray  # scramble phone numbers and names per seed
    start: datetime = START  # first day of the tickets, surveys and evaluations


def _make_register(
    rng: np.random.Generator, as_of: datetime, area: Area = DEMO_AREA, start: datetime = START
) -> _World:
    n = area.compound_count
    n_communities = len(area.communities)
    type_share = np.array([share for _, share, _, _, _ in COMPOUND_TYPES])
    compound_type = rng.choice(len(COMPOUND_TYPES), n, p=type_share)
    community = rng.choice(n_communities, n, p=rng.dirichlet(np.full(n_communities, 40.0)))
    order = np.lexsort((compound_type, community))
    compound_type, community = compound_type[order], community[order]

    median = np.array([m for _, _, m, _, _ in COMPOUND_TYPES])[compound_type]
    households = np.clip(np.round(median * rng.lognormal(0.0, 0.65, n)), 30, 2000).astype(np.int64)
    low = np.array([b[0] for *_, b in COMPOUND_TYPES])[compound_type]
    high = np.array([b[1] for *_, b in COMPOUND_TYPES])[compound_type]
    per_building = rng.uniform(low, high)
    buildings = np.clip(np.ceil(households / per_building), 1, 60).astype(np.int64)
    units = rng.integers(1, 4, n)
    is_commercial = compound_type == 0
    rooms_per_floor = np.where(is_commercial, 4, 2)
    has_elevator = np.where(is_commercial, rng.random(n) < 0.9, rng.random(n) < 0.15)
    grid = rng.integers(1, 7, n)

    company = _assign_companies(rng, community, compound_type, n_communities, len(area.companies))
    managed = company >= 0
    companies = area.companies
    speed = np.where(managed, np.array([s for _, s, _ in companies])[company], SELF_GOVERNED_SPEED)
    quality = np.where(
        managed, np.array([q for _, _, q in companies])[company], SELF_GOVERNED_QUALITY
    )
    speed = speed * rng.lognormal(0.0, 0.15, n)
    quality = quality + rng.normal(0.0, 0.25, n)

    agreements = _make_agreements(rng, managed, as_of, start)
    pre, is_red = agreements.pre, agreements.is_red
    quality = (
        quality
        + np.where(pre, PRE_SIGNED_QUALITY, 0.0)
        + np.where(pre & is_red, RED_PM_QUALITY, 0.0)
    )
    speed = speed * np.where(pre, PRE_SIGNED_SPEED, 1.0)

    rate = rng.lognormal(0.0, 0.2, n) * np.where(
        np.isin(compound_type, SELF_GOVERNED_TYPES), 1.15, 1.0
    )
    weight = households * rate
    return _World(
        as_of=as_of,
        names=_compound_names(rng, compound_type, area.name_prefix),
        places=tuple((area.district, area.street, c) for c in area.communities),
        company_names=tuple(name for name, _, _ in companies),
        community=community.astype(np.int64),
        compound_type=compound_type.astype(np.int64),
        grid=grid.astype(np.int64),
        households=households,
        buildings=buildings,
        units=units.astype(np.int64),
        rooms_per_floor=rooms_per_floor.astype(np.int64),
        has_elevator=has_elevator,
        company=company,
        speed=speed,
        quality=quality,
        ticket_weight=weight / weight.sum(),
        signed_on=agreements.signed_on,
        red_on=agreements.red_on,
        has_agreement=pre | agreements.during,
        is_red=is_red,
        signed_minute=agreements.signed_minute,
        key_offset=np.concatenate([[0], np.cumsum(households)[:-1]]).astype(np.int64),
        salts=rng.integers(1, 10**6, 6),
        start=start,
    )


@dataclass(frozen=True)
class _Agreements:
    pre: BoolArray  # signed before the demo period
    during: BoolArray  # signed during it, on or before as_of
    is_red: BoolArray  # certified 红色物业 by as_of
    signed_on: list[date | None]  # as the register shows them: some old dates are unknown
    red_on: list[date | None]
    signed_minute: IntArray  # epoch minute of a signing during the period, else MISSING


def _make_agreements(
    rng: np.random.Generator, managed: BoolArray, as_of: datetime, start: datetime = START
) -> _Agreements:
    """Joint agreements: some before 2023, about 30% during the demo years, the rest never.

    The register knows an agreement only once it is signed, and the dates of some old ones not
    at all. Compounds without a property company sign less often and are never 红色物业.
    """
    n = managed.size
    pre = rng.random(n) < np.where(managed, 0.28, 0.05)
    during_first = start.date() + timedelta(days=60)
    during_last = max(as_of.date() - timedelta(days=90), during_first + timedelta(days=1))
    signed_day = np.where(
        pre,
        _random_days(rng, date(start.year - 5, 1, 1), start.date() - timedelta(days=17), n),
        _random_days(rng, during_first, during_last, n),
    )
    during = ~pre & (rng.random(n) < np.where(managed, 0.55, 0.15))
    during &= signed_day <= as_of.date()
    red_day = signed_day + np.array([timedelta(days=int(k)) for k in rng.integers(30, 300, n)])
    is_red = managed & (pre | during) & (rng.random(n) < 0.75) & (red_day <= as_of.date())
    date_known = during | (rng.random(n) < 0.75)
    return _Agreements(
        pre=pre,
        during=during,
        is_red=is_red,
        signed_on=[
            d if known and (p or s) else None
            for d, known, p, s in zip(signed_day, date_known, pre, during, strict=True)
        ],
        red_on=[
            d if known and red else None
            for d, known, red in zip(red_day, date_known, is_red, strict=True)
        ],
        signed_minute=np.array(
            [
                _minutes(datetime.combine(d, datetime.min.time())) if s else MISSING
                for d, s in zip(signed_day, during, strict=True)
            ],
            dtype=np.int64,
        ),
    )


def _assign_companies(
    rng: np.random.Generator,
    community: IntArray,
    compound_type: IntArray,
    n_communities: int,
    n_companies: int,
) -> IntArray:
    """Each company works in three communities; compounds with a company pick among them."""
    serves = np.zeros((n_companies, n_communities), dtype=bool)
    for k in range(n_companies):
        first = (k * 3 + int(rng.integers(0, n_communities))) % n_communities
        serves[k, [first, (first + 2) % n_communities, (first + 4) % n_communities]] = True
    size = rng.uniform(0.5, 1.5, n_companies)
    has_company_share = np.array([p for _, _, _, p, _ in COMPOUND_TYPES])[compound_type]
    has_company = rng.random(community.size) < has_company_share
    company = np.full(community.size, -1, dtype=np.int64)
    for i in np.flatnonzero(has_company):
        weights = size * serves[:, community[i]]
        if not weights.any():
            weights = size
        company[i] = rng.choice(n_companies, p=weights / weights.sum())
    return company


_NAME_PARTS = {
    "prefix": (
        "翠竹",
        "锦华",
        "金桂",
        "银杏",
        "玉泉",
        "天顺",
        "和美",
        "紫荆",
        "芙蓉",
        "锦江",
        "南苑",
        "东方",
        "华润",
        "碧水",
        "蓝湾",
        "清风",
        "明月",
        "星河",
        "朝阳",
        "长乐",
        "安居",
        "福林",
        "嘉和",
        "瑞祥",
        "春熙",
        "望江",
        "桂花",
        "丽景",
        "龙湾",
        "凤凰",
        "海棠",
        "书香",
        "雅居",
        "盛世",
        "康乐",
        "青松",
        "梧桐",
        "秀水",
        "映月",
        "华府",
    ),
    "suffix": ("花园", "苑", "小区", "家园", "华庭", "公寓", "名苑", "雅居", "新城", "府"),
    "employer": (
        "电力局",
        "自来水公司",
        "邮电局",
        "纺织厂",
        "机械厂",
        "供销社",
        "粮食局",
        "税务局",
        "第一人民医院",
        "建工集团",
        "铁路局",
        "文化馆",
        "交通局",
        "气象局",
        "卷烟厂",
        "电子研究所",
        "印刷厂",
        "钢管厂",
    ),
    "staff": ("宿舍", "家属院", "职工宿舍"),
    "street": (
        "东街",
        "西巷",
        "南路",
        "北街",
        "红星路",
        "玉林路",
        "芙蓉街",
        "盐市口",
        "书院街",
        "水井坊",
        "督院街",
        "青石桥",
        "暑袜街",
        "总府路",
        "科甲巷",
        "棉花街",
    ),
}


def _compound_names(
    rng: np.random.Generator, compound_type: IntArray, prefix: str = ""
) -> list[str]:
    names: list[str] = []
    seen: set[str] = set()
    parts = _NAME_PARTS
    for kind in compound_type.tolist():
        while True:
            if kind == 0:
                base = _pick(rng, parts["prefix"]) + _pick(rng, parts["suffix"])
            elif kind == 1:
                base = _pick(rng, parts["employer"]) + _pick(rng, parts["staff"])
            elif kind == 2:
                base = f"{_pick(rng, parts['street'])}{int(rng.integers(1, 200))}号院"
            else:
                number, annex = int(rng.integers(1, 200)), int(rng.integers(1, 9))
                base = f"{_pick(rng, parts['street'])}{number}号附{annex}号院"
            name = f"{prefix}{base}(模拟)"
            if name not in seen:
                break
        seen.add(name)
        names.append(name)
    return names


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(0, len(options)))]


def _random_days(
    rng: np.random.Generator, first: date, last: date, n: int
) -> npt.NDArray[np.object_]:
    offsets = rng.integers(0, (last - first).days + 1, n)
    return np.array([first + timedelta(days=int(k)) for k in offsets], dtype=object)


def _minutes(moment: datetime) -> int:
    return int((moment - EPOCH).total_seconds()) // 60


def _default_ticket_count(world: _World) -> int:
    """About one ticket per household per year over the demo period."""
    years = (world.as_of - world.start).total_seconds() / (365.25 * 86400)
    return round(float(world.households.sum()) * years)


# ---------------------------------------------------------------------------------------------
# Tickets: generated one calendar month at a time, fully vectorised


Window = tuple[int, int, int, int]  # year, month, first minute, end minute (exclusive)


def _month_windows(as_of: datetime, start: datetime = START) -> list[Window]:
    windows: list[Window] = []
    year, month = start.year, start.month
    while datetime(year, month, 1) < as_of:
        following = datetime(year + month // 12, month % 12 + 1, 1)
        end = min(following, as_of)
        windows.append((year, month, _minutes(datetime(year, month, 1)), _minutes(end)))
        year, month = following.year, following.month
    return windows


def _window_days(window: Window) -> tuple[IntArray, FloatArray, IntArray]:
    """Start minute, demand weight and number of usable hours of each day in the window."""
    _, _, first, end = window
    starts = np.arange(first, end, 1440, dtype=np.int64)
    hours = np.minimum(1440, end - starts) // 60
    starts, hours = starts[hours > 0], hours[hours > 0]
    days = starts // 1440
    weight = WEEKDAY_FACTOR[(days + 3) % 7]  # 1970-01-01 was a Thursday
    for festival in SPRING_FESTIVALS:
        offset = days - (festival - EPOCH.date()).days
        near = (offset >= SPRING_FESTIVAL_DAYS[0]) & (offset <= SPRING_FESTIVAL_DAYS[1])
        weight = np.where(near, weight * SPRING_FESTIVAL_FACTOR, weight)
    return starts, weight * HOUR_CDF[0, hours - 1], hours.astype(np.int64)


def _category_share(month: int) -> FloatArray:
    share = CATEGORY_MIX * SEASON[:, month - 1]
    return np.asarray(share / share.sum(), dtype=np.float64)


def _split_tickets(rng: np.random.Generator, windows: list[Window], total: int) -> IntArray:
    weights = np.array(
        [
            _window_days(w)[1].sum() * float((CATEGORY_MIX * SEASON[:, w[1] - 1]).sum())
            for w in windows
        ]
    )
    return rng.multinomial(total, weights / weights.sum()).astype(np.int64)


def _draw(rng: np.random.Generator, table: FloatArray, given: IntArray) -> IntArray:
    """One draw per row from the distribution in row `given` of a probability table."""
    cdf = np.cumsum(table / table.sum(axis=1, keepdims=True), axis=1)
    u = rng.random(given.size)
    picked = (cdf[given] <= u[:, None]).sum(axis=1)
    return np.minimum(picked, table.shape[1] - 1).astype(np.int64)


def _sigmoid(x: FloatArray) -> FloatArray:
    return np.asarray(1.0 / (1.0 + np.exp(-x)), dtype=np.float64)


def _make_tickets(
    rng: np.random.Generator, world: _World, window: Window, count: int
) -> dict[str, IntArray]:
    """Tickets accepted in one month window, sorted by acceptance, as integer-coded columns."""
    _, month, first, end = window
    day_start, day_weight, day_hours = _window_days(window)
    follow_ups = int(rng.binomial(count, FOLLOW_UP_SHARE)) if count > 1 else 0
    n_base = count - follow_ups

    compound = rng.choice(len(world.names), n_base, p=world.ticket_weight).astype(np.int64)
    category = rng.choice(len(CATEGORIES), n_base, p=_category_share(month)).astype(np.int64)
    no_lift = (category == ELEVATOR) & ~world.has_elevator[compound]
    category = np.where(no_lift, PUBLIC_FACILITY, category)
    day = rng.choice(day_start.size, n_base, p=day_weight / day_weight.sum())
    profile = (category == NOISE).astype(np.int64)
    usable = HOUR_CDF[profile, day_hours[day] - 1]  # last day of the period ends at as_of
    u = rng.random(n_base) * usable
    hour = (HOUR_CDF[profile] <= u[:, None]).sum(axis=1)
    accepted = day_start[day] + hour * 60 + rng.integers(0, 60, n_base)
    resident = (rng.random(n_base) * world.households[compound]).astype(np.int64)

    # Repeat callers: same resident and category again within days of the first ticket.
    source = rng.integers(0, max(n_base, 1), follow_ups)
    gap = np.clip(rng.exponential(FOLLOW_UP_MEAN_MINUTES, follow_ups), 60, 29 * 1440)
    again = accepted[source] + gap.astype(np.int64)
    again = np.where(again >= end, accepted[source] - gap.astype(np.int64), again)
    anywhere = first + rng.integers(0, end - first, follow_ups)
    again = np.where(again < first, anywhere, again)
    compound = np.concatenate([compound, compound[source]])
    category = np.concatenate([category, category[source]])
    resident = np.concatenate([resident, resident[source]])
    accepted = np.concatenate([accepted, again])

    order = np.argsort(accepted, kind="stable")
    compound, category, resident, accepted = (
        compound[order],
        category[order],
        resident[order],
        accepted[order],
    )
    columns = {
        "compound": compound,
        "category": category,
        "resident": resident,
        "accepted": accepted,
    }
    columns.update(_serve_tickets(rng, world, columns))
    columns.update(_ticket_extras(rng, columns))
    return columns


def _serve_tickets(
    rng: np.random.Generator, world: _World, tickets: dict[str, IntArray]
) -> dict[str, IntArray]:
    """Request type, priority, channel, service times, status and callback of each ticket."""
    compound, category, accepted = tickets["compound"], tickets["category"], tickets["accepted"]
    n = compound.size
    request_type = _draw(rng, REQUEST_TYPE_BY_CATEGORY, category)
    priority = _draw(rng, PRIORITY_BY_CATEGORY, category)
    channel = _draw(rng, CHANNEL_BY_TYPE, request_type)

    signed = world.signed_minute[compound]
    after_signing = (signed != MISSING) & (accepted >= signed)
    quality = world.quality[compound] + np.where(after_signing, POST_SIGN_QUALITY, 0.0)
    speed = world.speed[compound] * np.where(after_signing, POST_SIGN_SPEED, 1.0)

    complaint = request_type == COMPLAINT
    respond_limit = np.where(
        priority == TOP_URGENT, 5, np.where(priority == URGENT, 15, np.where(complaint, 1440, 30))
    )
    close_limit = 60 * np.where(priority != NORMAL, 24, np.where(complaint, 168, 72))
    typical = np.where(complaint & (priority == NORMAL), 0.15, 0.4)
    response = np.maximum(
        1, np.ceil(respond_limit * typical * speed * rng.lognormal(0.0, 0.75, n))
    ).astype(np.int64)
    stalled = rng.random(n) < STALLED_SHARE * speed
    close_hours = np.where(
        stalled,
        24 * rng.uniform(*STALLED_DAYS, n),
        CLOSE_MEDIAN_HOURS[category]
        * CLOSE_BY_PRIORITY[priority]
        * CLOSE_BY_TYPE[request_type]
        * speed**0.7
        * rng.lognormal(0.0, 0.9, n),
    )
    close = np.clip(np.round(close_hours * 60), response + 5, MAX_CLOSE_MINUTES).astype(np.int64)
    on_site = ON_SITE_CATEGORIES[category] & (rng.random(n) < 0.6)
    travel = np.ceil(rng.lognormal(np.log(25.0), 0.6, n) * np.sqrt(speed)).astype(np.int64)
    arrival = response + np.minimum(travel, (close - response) // 2)  # minutes after acceptance

    times = _ticket_status(
        rng,
        _minutes(world.as_of),
        accepted,
        response,
        close,
        np.where(on_site, arrival, MISSING),
        close_limit,
    )
    late_response = (response > respond_limit).astype(np.float64)
    late_close = (close > close_limit).astype(np.float64)
    return {
        "request_type": request_type,
        "priority": priority,
        "channel": channel,
        **times,
        **_callbacks(rng, times["status"] == DONE, quality, late_response, late_close),
    }


def _ticket_status(
    rng: np.random.Generator,
    now: int,
    accepted: IntArray,
    response: IntArray,
    close: IntArray,
    arrival: IntArray,
    close_limit: IntArray,
) -> dict[str, IntArray]:
    """Status as of `now` (epoch minutes), and the times that have happened by then."""
    n = accepted.size
    responded_at, closed_at = accepted + response, accepted + close
    arrived_at = np.where(arrival == MISSING, MISSING, accepted + arrival)
    waiting = responded_at > now
    is_open = ~waiting & (closed_at > now)
    is_closed = closed_at <= now
    overdue = now - accepted > close_limit
    u_open, u_closed = rng.random(n), rng.random(n)
    status = np.select(
        [
            waiting,
            is_open & overdue & (u_open < 0.6),
            is_open & ((arrived_at == MISSING) | (arrived_at > now)) & (u_open < 0.8),
            is_open,
            is_closed & (u_closed < 0.01),
            is_closed & (((closed_at > now - 3 * 1440) & (u_closed < 0.7)) | (u_closed < 0.02)),
        ],
        [WAITING, EXTENDED, DISPATCHED, IN_PROGRESS, RETURNED, AWAITING_CALLBACK],
        DONE,
    ).astype(np.int64)
    return {
        "responded_at": np.where(waiting, MISSING, responded_at),
        "arrived_at": np.where(waiting | (arrived_at > now), MISSING, arrived_at),
        "closed_at": np.where(is_closed, closed_at, MISSING),
        "status": status,
    }


def _callbacks(
    rng: np.random.Generator,
    done: BoolArray,
    quality: FloatArray,
    late_response: FloatArray,
    late_close: FloatArray,
) -> dict[str, IntArray]:
    """Callback answers (1 是, 0 否, -1 blank): only fully done tickets get a callback, and
    service quality and lateness drive what residents say."""
    n = done.size
    valid = done & (rng.random(n) < 0.85)
    contacted = valid & (rng.random(n) < _sigmoid(3.0 + 0.8 * quality))
    resolved = contacted & (rng.random(n) < _sigmoid(2.2 + 0.9 * quality - 0.6 * late_close))
    mood = (
        1.0
        + quality
        + 1.3 * resolved
        - 0.6 * late_response
        - 0.5 * late_close
        + rng.logistic(0.0, 1.0, n)
    )
    satisfaction = np.where(mood > 1.2, 0, np.where(mood > -0.2, 1, 2))
    return {
        "valid_callback": np.where(done, valid, -1).astype(np.int64),
        "contacted": np.where(done, contacted, -1).astype(np.int64),
        "resolved": np.where(contacted, resolved, -1).astype(np.int64),
        "satisfaction": np.where(contacted, satisfaction, -1).astype(np.int64),
    }


def _ticket_extras(rng: np.random.Generator, tickets: dict[str, IntArray]) -> dict[str, IntArray]:
    """Which description, whether personal data slipped into it, and the ticket's day number."""
    n = tickets["category"].size
    description_count = np.array([len(d) for d in DESCRIPTIONS])[tickets["category"]]
    description = (rng.random(n) * description_count).astype(np.int64)
    u = rng.random(n)
    personal = np.where(
        u < PHONE_IN_TEXT_SHARE, 1, np.where(u < PHONE_IN_TEXT_SHARE + ID_IN_TEXT_SHARE, 2, 0)
    )
    day = tickets["accepted"] // 1440
    first_of_day = np.searchsorted(day, day, side="left")
    return {
        "description": description,
        "personal": personal.astype(np.int64),
        "id_birth_day": rng.integers(-7300, 11000, n),  # days since 1970: born 1950–2000
        "id_tail": rng.integers(0, 11000, n),
        "sequence": np.arange(n, dtype=np.int64) - first_of_day + 1,
    }


def _ticket_texts(world: _World, tickets: dict[str, IntArray]) -> dict[str, StrArray]:
    """The text columns, built without a Python loop so millions of rows stay cheap."""
    compound, resident = tickets["compound"], tickets["resident"]
    if compound.size == 0:  # numpy's string functions reject empty input
        empty = np.array([], dtype=str)
        return {
            key: empty for key in ("ticket_id", "phone", "name", "building", "room", "description")
        }
    key = world.key_offset[compound] + resident
    salt = world.salts
    second_digit = _digits(3 + (key * 5 + salt[0]) % 7)
    number = (key * 387_420_489 + salt[1]) % 10**9  # a bijection on keys below 10**9
    phone = _join("1", second_digit, _digits(number, 9))
    name = _join(
        np.array(SURNAMES)[(key * 7919 + salt[2]) % len(SURNAMES)],
        np.array(GIVEN_NAMES)[(key * 104_729 + salt[3]) % len(GIVEN_NAMES)],
    )

    buildings = world.buildings[compound]
    building = resident % buildings + 1
    within = resident // buildings
    units = world.units[compound]
    slot = within // units
    rooms = world.rooms_per_floor[compound]
    building_text = _join(_digits(building), "栋")
    room = _join(
        building_text,
        _digits(within % units + 1),
        "单元",
        _digits(slot // rooms + 1),
        _digits(slot % rooms + 1, 2),
    )

    width = max(len(d) for d in DESCRIPTIONS)
    table = np.array([list(d) + [""] * (width - len(d)) for d in DESCRIPTIONS])
    description = table[tickets["category"], tickets["description"]]
    birth = np.strings.replace(
        np.datetime_as_string(tickets["id_birth_day"].astype("datetime64[D]")), "-", ""
    )
    tail = tickets["id_tail"]
    id_number = _join(
        np.array(ID_REGIONS)[tail % len(ID_REGIONS)],
        birth,
        _digits(tail // 11 % 1000, 3),
        np.array(list("0123456789X"))[tail % 11],
    )
    personal = tickets["personal"]
    description = np.where(personal == 1, _join(description, "，请回电", phone), description)
    description = np.where(personal == 2, _join(description, "，身份证号", id_number), description)

    day = np.strings.replace(
        np.datetime_as_string((tickets["accepted"] // 1440).astype("datetime64[D]")), "-", ""
    )
    ticket_id = _join("GD", day, _digits(tickets["sequence"], 5))
    return {
        "ticket_id": ticket_id,
        "phone": phone,
        "name": name,
        "building": building_text,
        "room": room,
        "description": description,
    }


def _digits(numbers: IntArray, width: int = 1) -> StrArray:
    """Non-negative integers as zero-padded text in the narrowest string type that holds them
    (astype(str) would give 21 characters each, and every join after it would grow)."""
    longest = len(str(int(numbers.max()))) if numbers.size else 1
    return np.strings.zfill(numbers.astype(f"U{max(longest, width)}"), width)


def _join(*parts: StrArray | str) -> StrArray:
    joined: Any = parts[0]
    for part in parts[1:]:
        joined = np.strings.add(joined, part)
    return np.asarray(joined)


def _ticket_records(world: _World, tickets: dict[str, IntArray]) -> list[Row]:
    """Rows in TICKET_COLUMNS order with Python values: str, datetime, bool or None."""
    texts = _ticket_texts(world, tickets)
    compound = tickets["compound"]
    company = world.company[compound]
    columns: list[list[Any]] = [
        texts["ticket_id"].tolist(),
        _labels(CHANNELS, tickets["channel"]),
        _labels(REQUEST_TYPES, tickets["request_type"]),
        _labels(CATEGORIES, tickets["category"]),
        _labels(PRIORITIES, tickets["priority"]),
        _labels([c for _, _, c in world.places], world.community[compound]),
        [world.names[i] for i in compound.tolist()],
        texts["building"].tolist(),
        texts["room"].tolist(),
        [world.company_names[k] if k >= 0 else None for k in company.tolist()],
        texts["name"].tolist(),
        texts["phone"].tolist(),
        texts["description"].tolist(),
        *[
            tickets[key].view("datetime64[m]").tolist()
            for key in ("accepted", "responded_at", "arrived_at", "closed_at")
        ],
        _labels(STATUSES, tickets["status"]),
        *[
            [None if flag < 0 else bool(flag) for flag in tickets[key].tolist()]
            for key in ("valid_callback", "contacted", "resolved")
        ],
        [None if s < 0 else SATISFACTION[s] for s in tickets["satisfaction"].tolist()],
    ]
    return [list(row) for row in zip(*columns, strict=True)]


def _labels(labels: Sequence[str], codes: IntArray) -> list[str]:
    return [labels[i] for i in codes.tolist()]


def _ticket_strings(world: _World, tickets: dict[str, IntArray]) -> list[StrArray]:
    """Columns in TICKET_COLUMNS order as text, for the streamed CSV files."""
    texts = _ticket_texts(world, tickets)
    compound = tickets["compound"]
    flags = np.array(["", "否", "是"])
    return [
        texts["ticket_id"],
        np.array(CHANNELS)[tickets["channel"]],
        np.array(REQUEST_TYPES)[tickets["request_type"]],
        np.array(CATEGORIES)[tickets["category"]],
        np.array(PRIORITIES)[tickets["priority"]],
        np.array([c for _, _, c in world.places])[world.community[compound]],
        np.array(world.names)[compound],
        texts["building"],
        texts["room"],
        np.array([*world.company_names, ""])[world.company[compound]],  # -1 picks the blank
        texts["name"],
        texts["phone"],
        texts["description"],
        *[
            _format_minutes(tickets[key])
            for key in ("accepted", "responded_at", "arrived_at", "closed_at")
        ],
        np.array(STATUSES)[tickets["status"]],
        *[flags[tickets[key] + 1] for key in ("valid_callback", "contacted", "resolved")],
        np.array(["", *SATISFACTION])[tickets["satisfaction"] + 1],
    ]


def _format_minutes(minutes: IntArray) -> StrArray:
    if minutes.size == 0:
        return np.array([], dtype=str)
    text = np.strings.replace(
        np.datetime_as_string(minutes.view("datetime64[m]"), unit="m"), "T", " "
    )
    return np.asarray(np.where(minutes == MISSING, "", text))


# ---------------------------------------------------------------------------------------------
# Tickets: writing


def _year_files(years: list[int]) -> dict[int, str]:
    """First year: monthly workbook; second: GBK CSV; later years: quarterly workbooks."""
    return {
        year: f"工单_{year}.csv" if i == 1 else f"工单_{year}.xlsx" for i, year in enumerate(years)
    }


def _write_ticket_files(
    out_dir: Path,
    rng: np.random.Generator,
    mess: np.random.Generator,
    world: _World,
    windows: list[Window],
    counts: IntArray,
) -> list[Path]:
    by_month: dict[tuple[int, int], list[Row]] = {}
    for window, count in zip(windows, counts.tolist(), strict=True):
        by_month[window[:2]] = _ticket_records(world, _make_tickets(rng, world, window, count))
    years = sorted({year for year, _ in by_month})
    files = _year_files(years)
    paths: list[Path] = []
    carried: list[Row] = []  # a ticket exported again in the next year's file
    for i, year in enumerate(years):
        months = {m: rows for (y, m), rows in by_month.items() if y == year}
        path = out_dir / files[year]
        defects = _defects_in(path.name)
        if i == 0:
            _write_tickets_monthly(path, year, months, mess, defects)
        elif i == 1:
            _write_tickets_csv(path, months, carried, mess, defects)
        else:
            _write_tickets_quarterly(path, months, carried, mess, defects)
        paths.append(path)
        last = max(months)
        carried = [list(months[last][-1])] if months[last] else []
    return paths


def _defects_in(file: str) -> dict[tuple[str, int], PlantedDefect]:
    """The planted defects of one file, by (sheet, row)."""
    return {(d.sheet, d.row): d for d in PLANTED_DEFECTS if d.file == file}


def _ticket_defect(row: Row, defect: PlantedDefect | None) -> Row:
    if defect is None:
        return row
    row = list(row)
    index = TICKET_COLUMNS.index(defect.column)
    if defect.kind == "closed_before_accepted":
        row[index] = row[TICKET_COLUMNS.index("受理时间")] - timedelta(hours=3)
    else:
        row[index] = defect.value or None
    return row


def _messy_time(value: Any, mess: np.random.Generator) -> Any:
    """Mostly a real Excel datetime; sometimes text in an office format or a bare serial."""
    if not isinstance(value, datetime):
        return value
    u = mess.random()
    if u < 0.02:
        return (value - EXCEL_EPOCH).total_seconds() / 86400.0  # General-format serial
    if u < 0.04:
        return f"{value.year}年{value.month}月{value.day}日 {value:%H:%M}"
    if u < 0.06:
        return f"{value.year}/{value.month}/{value.day} {value:%H:%M}"
    if u < 0.08:
        return f"{value:%Y-%m-%dT%H:%M}"
    return value


def _flag_text(value: Any, yes: str = "是", no: str = "否") -> Any:
    if isinstance(value, bool):
        return yes if value else no
    return value


def _write_tickets_monthly(
    path: Path,
    year: int,
    months: dict[int, list[Row]],
    mess: np.random.Generator,
    defects: dict[tuple[str, int], PlantedDefect],
) -> None:
    """One sheet per month, a title, a two-row merged header, a 合计 footer, a 说明 sheet."""
    workbook = _new_workbook()
    notes = workbook.create_sheet("说明")
    for line in (
        "填表说明",
        "1. 本工作簿按月分表，每月一张工作表，第一行为标题，第二、三行为表头。",
        "2. 时间精确到分钟；尚未办结的工单办结时间为空。",
        "3. 本表为模拟演示数据。",
    ):
        notes.append([line])
    time_columns = {TICKET_COLUMNS.index(c) for c in TICKET_TIME_COLUMNS}
    flag_columns = {TICKET_COLUMNS.index(c) for c in TICKET_FLAG_COLUMNS}
    for month, rows in sorted(months.items()):
        sheet = workbook.create_sheet(f"{month}月")
        sheet.append([f"{STREET}{year}年{month}月物业服务工单台账"])
        _merge(sheet, 1, 1, 1, len(TICKET_COLUMNS))
        _write_two_row_header(sheet)
        for number, record in enumerate(rows, start=4):
            row = _ticket_defect(record, defects.get((sheet.title, number)))
            sheet.append(
                [
                    _messy_time(v, mess)
                    if i in time_columns
                    else _flag_text(v)
                    if i in flag_columns
                    else v
                    for i, v in enumerate(row)
                ]
            )
        sheet.append(["合计", f"共{len(rows)}条"])
    _save_workbook(workbook, path)


def _write_two_row_header(sheet: Any) -> None:
    """Rows 2–3: a parent over its children, other headers merged down over both rows."""
    parents = {child: parent for parent, children in TICKET_GROUPS.items() for child in children}
    top: Row = []
    bottom: Row = []
    column = 1
    while column <= len(TICKET_COLUMNS):
        name = TICKET_COLUMNS[column - 1]
        if name in parents:
            children = TICKET_GROUPS[parents[name]]
            top += [parents[name]] + [None] * (len(children) - 1)  # Excel keeps the first cell
            bottom += list(children)
            _merge(sheet, 2, column, 2, column + len(children) - 1)
            column += len(children)
        else:
            top.append(name)
            bottom.append(None)
            _merge(sheet, 2, column, 3, column)
            column += 1
    sheet.append(top)
    sheet.append(bottom)


def _merge(sheet: Any, first_row: int, first_column: int, last_row: int, last_column: int) -> None:
    """Merge a range on a write-only sheet (its merge_cells method needs a normal sheet)."""
    first = f"{get_column_letter(first_column)}{first_row}"
    sheet.merged_cells.add(f"{first}:{get_column_letter(last_column)}{last_row}")


def _write_tickets_csv(
    path: Path,
    months: dict[int, list[Row]],
    carried: list[Row],
    mess: np.random.Generator,
    defects: dict[tuple[str, int], PlantedDefect],
) -> None:
    """A GBK CSV as Excel saves it, with alias headers, Y/N in places, full-width digits."""
    rows = [row for _, month_rows in sorted(months.items()) for row in month_rows]
    with path.open("w", encoding="gbk", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([TICKET_ALIASES.get(c, c) for c in TICKET_COLUMNS])
        for line, record in enumerate(rows, start=2):
            writer.writerow(_csv_ticket_row(_ticket_defect(record, defects.get(("", line))), mess))
        for record in carried:  # re-exported: identical content, written plainly
            writer.writerow([_plain_csv_value(v) for v in record])


def _csv_ticket_row(row: Row, mess: np.random.Generator) -> list[str]:
    yes_no = mess.random() < 0.15
    wide_digits = mess.random() < 0.01
    cells: list[str] = []
    for column, value in zip(TICKET_COLUMNS, row, strict=True):
        if isinstance(value, datetime):
            text = (
                f"{value.year}/{value.month}/{value.day} {value:%H:%M}"
                if mess.random() < 0.7
                else f"{value:%Y-%m-%d %H:%M:%S}"
            )
        elif isinstance(value, bool):
            text = ("Y" if value else "N") if yes_no else ("是" if value else "否")
        else:
            text = "" if value is None else str(value)
        if column == "工单编号" and wide_digits:
            text = text.translate(_FULL_WIDTH_DIGITS)
        cells.append(text)
    return cells


_FULL_WIDTH_DIGITS = str.maketrans("0123456789", "０１２３４５６７８９")


def _plain_csv_value(value: Any) -> str:
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M}"
    if isinstance(value, bool):
        return "是" if value else "否"
    return "" if value is None else str(value)


def _write_tickets_quarterly(
    path: Path,
    months: dict[int, list[Row]],
    carried: list[Row],
    mess: np.random.Generator,
    defects: dict[tuple[str, int], PlantedDefect],
) -> None:
    """One sheet per quarter; headers with stray spaces and line breaks; blank rows inside."""
    workbook = _new_workbook()
    header = [TICKET_MESSY_HEADERS.get(c, c) for c in TICKET_COLUMNS]
    compound_column = TICKET_COLUMNS.index("小区")
    for quarter, title in enumerate(QUARTERS):
        rows = [r for m in range(quarter * 3 + 1, quarter * 3 + 4) for r in months.get(m, [])]
        if not rows:
            continue
        sheet = workbook.create_sheet(title)
        sheet.append(header)
        excel_row = 1
        for number, record in enumerate(rows, start=1):
            excel_row += 1
            row = [_flag_text(v) for v in _ticket_defect(record, defects.get((title, excel_row)))]
            if isinstance(row[compound_column], str) and mess.random() < 0.02:
                row[compound_column] = f"{row[compound_column]} "
            sheet.append(row)
            if number == 30 or number % 997 == 0:  # a pasted-in block left empty rows behind
                sheet.append([])
                sheet.append([])
                excel_row += 2
        if quarter == 0:
            for record in carried:
                sheet.append([_flag_text(v) for v in record])
    _save_workbook(workbook, path)


def _write_tickets_streamed(
    out_dir: Path,
    rng: np.random.Generator,
    world: _World,
    windows: list[Window],
    counts: IntArray,
) -> list[Path]:
    """Plain UTF-8 CSV per year, written a month at a time so memory stays flat."""
    paths: list[Path] = []
    for year in sorted({window[0] for window in windows}):
        path = out_dir / f"工单_{year}.csv"
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(TICKET_COLUMNS)
            for window, count in zip(windows, counts.tolist(), strict=True):
                if window[0] != year:
                    continue
                columns = _ticket_strings(world, _make_tickets(rng, world, window, count))
                for begin in range(0, count, CSV_BATCH_ROWS):
                    batch = [c[begin : begin + CSV_BATCH_ROWS].tolist() for c in columns]
                    writer.writerows(zip(*batch, strict=True))
        paths.append(path)
    return paths


# ---------------------------------------------------------------------------------------------
# Register: writing


def _write_register(
    path: Path, world: _World, mess: np.random.Generator, place: str = STREET
) -> Path:
    """Title, blank row, header, data, footer; booleans and dates in the spellings clerks use."""
    workbook = _new_workbook()
    sheet = workbook.create_sheet("小区台账")
    sheet.append([f"{place}小区台账 {world.as_of.year}年"])
    _merge(sheet, 1, 1, 1, len(REGISTER_HEADER))
    sheet.append([])
    sheet.append(list(REGISTER_HEADER))
    spellings = (("是", "否"), ("√", "×"), ("Y", "N"), (1, 0))
    for i, name in enumerate(world.names):
        yes, no = spellings[int(mess.choice(4, p=[0.55, 0.15, 0.15, 0.15]))]
        company = int(world.company[i])
        if company >= 0:
            company_cell: str | None = world.company_names[company]
        else:
            company_cell = "无" if mess.random() < 0.3 else None
        households: int | str = int(world.households[i])
        district, street, community = world.places[world.community[i]]
        if i in (6, 22):  # typed with a Chinese input method
            households = str(households).translate(_FULL_WIDTH_DIGITS)
        sheet.append(
            [
                i + 1,
                district,
                street,
                community,
                f" {name} " if i in (3, 41) else name,
                COMPOUND_TYPES[world.compound_type[i]][0],
                f"第{world.grid[i]}网格",
                households,
                int(world.buildings[i]),
                company_cell,
                yes if world.is_red[i] else no,
                yes if world.has_agreement[i] else no,
                _messy_date(world.signed_on[i], mess),
                _messy_date(world.red_on[i], mess),
                None,
            ]
        )
    sheet.append([])
    sheet.append(["制表人：周晓燕(模拟)", None, None, None, None, "审核人：吴建国(模拟)"])
    _save_workbook(workbook, path)
    return path


def _messy_date(value: date | None, mess: np.random.Generator) -> date | str | None:
    if value is None:
        return None
    u = mess.random()
    if u < 0.4:
        return value
    if u < 0.6:
        return f"{value.year}年{value.month}月{value.day}日"
    if u < 0.8:
        return f"{value.year}/{value.month}/{value.day}"
    return value.isoformat()


# ---------------------------------------------------------------------------------------------
# Surveys


@dataclass(frozen=True)
class _Wave:
    year: int
    half: int  # 0 = first half, 1 = second half
    label: str
    rows: list[Row]


def _make_surveys(rng: np.random.Generator, world: _World) -> list[_Wave]:
    waves: list[_Wave] = []
    for year in range(world.start.year, world.as_of.year + 1):
        for half, (first, last) in enumerate(
            ((date(year, 6, 1), date(year, 6, 28)), (date(year, 12, 1), date(year, 12, 20)))
        ):
            last = min(last, world.as_of.date())
            if last < first:
                continue
            label = f"{year}年{'上半年' if half == 0 else '下半年'}"
            waves.append(
                _Wave(year, half, label, _make_wave(rng, world, year, half, label, (first, last)))
            )
    return waves


def _make_wave(
    rng: np.random.Generator,
    world: _World,
    year: int,
    half: int,
    label: str,
    window: tuple[date, date],
) -> list[Row]:
    """One row per respondent; scores follow the compound's service quality."""
    households = world.households
    # 5–15% of households, at least 16 and at most about 45 a wave, so a year's two waves give
    # most compounds 30 or more; compounds under about 60 households reach only a quarter of
    # their households and fall short of 30 in a year (样本不足).
    target = np.clip(households * rng.uniform(0.05, 0.15, households.size), 16, 45)
    target = target * rng.uniform(1.0, 1.15, households.size)
    sample = np.round(np.minimum(target, households * 0.25)).astype(np.int64)
    compound = np.repeat(np.arange(households.size), sample)
    n = compound.size

    survey_start = _minutes(datetime.combine(window[0], datetime.min.time()))
    signed = world.signed_minute[compound]
    improved = (signed != MISSING) & (signed <= survey_start)
    quality = world.quality[compound] + np.where(improved, POST_SIGN_SURVEY, 0.0)
    person = rng.normal(0.0, 0.55, n)
    latent = (
        (1.05 + 0.9 * quality + person)[:, None]
        + SURVEY_ITEM_OFFSET[None, :]
        + rng.normal(0.0, 0.75, (n, SURVEY_ITEM_OFFSET.size))
    )
    overall = latent.mean(axis=1) + rng.normal(0.0, 0.3, n)
    scores = 1 + (np.column_stack([latent, overall])[:, :, None] > SURVEY_THRESHOLDS).sum(axis=2)

    old = np.isin(world.compound_type[compound], SELF_GOVERNED_TYPES)
    blank_share = np.full((n, len(SURVEY_ITEMS)), 0.02)
    blank_share[:, SURVEY_ITEMS.index("停车管理")] = np.where(old, 0.6, 0.12)
    blank_share[:, -1] = 0.005
    blank = rng.random(scores.shape) < blank_share
    as_words = rng.random(scores.shape) < 0.015
    buildings = (rng.random(n) * world.buildings[compound]).astype(np.int64) + 1
    owner = rng.random(n) < 0.8
    method = rng.choice(len(SURVEY_METHODS), n, p=SURVEY_METHOD_SHARE)
    commenting = rng.random(n) < 0.45
    praise = rng.integers(0, len(SURVEY_PRAISE), n)
    day = rng.integers(0, (window[1] - window[0]).days + 1, n)

    rows: list[Row] = []
    for i in range(n):
        cells: list[int | str | None] = []
        for j in range(len(SURVEY_ITEMS)):
            score = int(scores[i, j])
            cells.append(None if blank[i, j] else SCORE_WORDS[score] if as_words[i, j] else score)
        rows.append(
            [
                f"WJ{year}{'AB'[half]}{i + 1:05d}",
                label,
                SURVEY_METHODS[method[i]],
                world.names[compound[i]],
                f"{buildings[i]}栋",
                "业主" if owner[i] else "租户",
                *cells,
                _survey_comment(scores[i], blank[i], commenting[i], int(praise[i])),
                window[0] + timedelta(days=int(day[i])),
            ]
        )
    return rows


def _survey_comment(
    scores: IntArray, blank: BoolArray, commenting: bool, praise: int
) -> str | None:
    if not commenting:
        return None
    answered = [
        (int(s), item)
        for s, item, b in zip(scores[:-1], SURVEY_ITEMS[:-1], blank[:-1], strict=True)
        if not b
    ]
    if not answered:
        return None
    worst, item = min(answered)
    return SURVEY_COMMENTS[item] if worst <= 3 else SURVEY_PRAISE[praise]


def _write_surveys(out_dir: Path, waves: list[_Wave]) -> list[Path]:
    """The first two years as one workbook (a sheet per wave); later years as UTF-8 BOM CSV."""
    years = sorted({w.year for w in waves})
    paths: list[Path] = []
    book_years = years[:2]
    if book_years:
        span = "-".join(str(y) for y in book_years)
        path = out_dir / f"满意度调查_{span}.xlsx"
        workbook = _new_workbook()
        defects = _defects_in(path.name)
        for wave in (w for w in waves if w.year in book_years):
            sheet = workbook.create_sheet(wave.label)
            sheet.append([f"{STREET}{wave.label}物业服务满意度调查"])
            sheet.append(list(SURVEY_HEADER))
            for number, row in enumerate(wave.rows, start=3):
                sheet.append(_survey_defect(row, defects.get((wave.label, number))))
        _save_workbook(workbook, path)
        paths.append(path)
    for year in years[2:]:
        path = out_dir / f"满意度调查_{year}.csv"
        with path.open("w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(SURVEY_HEADER)
            rows = [row for w in waves if w.year == year for row in w.rows]
            defects = _defects_in(path.name)
            for number, row in enumerate(rows, start=2):
                cells = _survey_defect(row, defects.get(("", number)))
                writer.writerow(["" if v is None else str(v) for v in cells])
        paths.append(path)
    return paths


def _survey_defect(row: Row, defect: PlantedDefect | None) -> Row:
    if defect is None:
        return row
    row = list(row)
    row[SURVEY_HEADER.index(defect.column)] = int(defect.value) if defect.value else None
    return row


# ---------------------------------------------------------------------------------------------
# Evaluations


@dataclass(frozen=True)
class _Unit:
    name: str
    level: str
    quality: float


@dataclass(frozen=True)
class _Scores:
    year: int
    evaluators: list[str]
    units: list[_Unit]
    scores: FloatArray  # unit × evaluator × indicator
    bonus: FloatArray  # per unit, the same on every evaluator's rows
    penalty: FloatArray
    veto: BoolArray


def _evaluation_units(world: _World, year: int) -> list[_Unit]:
    year_end = _minutes(datetime(year + 1, 1, 1))
    signed = world.signed_minute != MISSING
    signed_minute = np.where(signed, world.signed_minute, year_end)
    share_of_year_after = np.clip((year_end - signed_minute) / (365.0 * 1440), 0.0, 1.0)
    quality = world.quality + POST_SIGN_QUALITY * share_of_year_after
    units = [_Unit(name, "小区", float(q)) for name, q in zip(world.names, quality, strict=True)]
    weights = world.households.astype(np.float64)
    for c, (_, _, name) in enumerate(world.places):
        members = world.community == c
        if members.any():
            units.append(
                _Unit(name, "社区", float(np.average(quality[members], weights=weights[members])))
            )
    for k, name in enumerate(world.company_names):
        members = world.company == k
        if members.any():
            units.append(_Unit(name, "物业企业", float(quality[members].mean())))
    return units


def _make_evaluations(rng: np.random.Generator, world: _World) -> list[_Scores]:
    results: list[_Scores] = []
    pool = sorted({s + g for s in SURNAMES[:40] for g in GIVEN_NAMES[:30]})
    for year in range(world.start.year, world.as_of.year + 1):
        if world.as_of < datetime(year, 12, 1):
            break  # the year's evaluation is held in December
        units = _evaluation_units(world, year)
        k = int(rng.integers(5, 10))
        evaluators = [pool[i] for i in rng.choice(len(pool), k, replace=False)]
        points = np.array([p for _, p in EVALUATION_INDICATORS], dtype=np.float64)
        quality = np.array([u.quality for u in units])
        n_units, n_items = len(units), points.size
        leniency = rng.normal(0.0, 0.15, k)
        unit_item = rng.normal(0.0, 0.25, (n_units, n_items))
        logit = (
            1.6
            + 1.2 * quality[:, None, None]
            + leniency[None, :, None]
            + unit_item[:, None, :]
            + rng.normal(0.0, 0.15, (n_units, k, n_items))
        )
        share = _sigmoid(logit)
        # Now and then one evaluator is far off the others, so disagreement flags fire.
        far_off = rng.random((n_units, n_items)) < 0.04
        who = rng.integers(0, k, (n_units, n_items))
        drop = rng.uniform(0.35, 0.6, (n_units, n_items))
        for u, j in zip(*np.nonzero(far_off), strict=True):
            share[u, who[u, j], j] = max(0.0, share[u, who[u, j], j] - drop[u, j])
        scores = np.round(share * points[None, None, :], 1)
        bonus = np.where(
            rng.random(n_units) < 0.06, rng.choice([0.5, 1.0, 1.5, 2.0, 3.0, 5.0], n_units), 0.0
        )
        penalty = np.where(
            rng.random(n_units) < 0.05, rng.choice([0.5, 1.0, 2.0, 3.0], n_units), 0.0
        )
        veto = np.zeros(n_units, dtype=bool)
        weakest = np.argsort(quality[: len(world.names)])[:10]
        veto[rng.choice(weakest, int(rng.integers(1, 3)), replace=False)] = True
        results.append(_Scores(year, evaluators, units, scores, bonus, penalty, veto))
    return results


def _write_evaluations(out_dir: Path, years: list[_Scores]) -> list[Path]:
    """The first year wide (a column per indicator); later years long (指标/得分)."""
    paths: list[Path] = []
    for i, result in enumerate(years):
        path = out_dir / f"年度考评评分_{result.year}.xlsx"
        workbook = _new_workbook()
        sheet = workbook.create_sheet(EVALUATION_SHEET)
        sheet.append([f"{result.year}年度红色物业评优评先考评评分表(模拟)"])
        defects = _defects_in(path.name)
        rows = _wide_rows(result) if i == 0 else _long_rows(result)
        header = (
            (*EVALUATION_KEYS, *[n for n, _ in EVALUATION_INDICATORS])
            if i == 0
            else (*EVALUATION_KEYS, "指标", "得分")
        )
        header = (*header, *EVALUATION_ADJUSTMENTS)
        sheet.append(list(header))
        for number, row in enumerate(rows, start=3):
            defect = defects.get((EVALUATION_SHEET, number))
            if defect is not None:
                row[header.index(defect.column)] = float(defect.value)
            sheet.append(row)
        _save_workbook(workbook, path)
        paths.append(path)
    return paths


def _adjustments(result: _Scores, unit: int) -> Row:
    """加分, 扣分, 一票否决 of a unit; blank when there is none, as a clerk leaves them."""
    return [
        float(result.bonus[unit]) or None,
        float(result.penalty[unit]) or None,
        "是" if result.veto[unit] else None,
    ]


def _wide_rows(result: _Scores) -> Iterable[Row]:
    for u, unit in enumerate(result.units):
        for e, evaluator in enumerate(result.evaluators):
            yield [
                result.year,
                unit.name,
                unit.level,
                evaluator,
                *[float(s) for s in result.scores[u, e]],
                *_adjustments(result, u),
            ]


def _long_rows(result: _Scores) -> Iterable[Row]:
    """A unit's adjustments are repeated on every one of its rows, for every evaluator."""
    for u, unit in enumerate(result.units):
        adjustments = _adjustments(result, u)
        for e, evaluator in enumerate(result.evaluators):
            for j, (indicator, _) in enumerate(EVALUATION_INDICATORS):
                yield [
                    result.year,
                    unit.name,
                    unit.level,
                    evaluator,
                    indicator,
                    float(result.scores[u, e, j]),
                    *adjustments,
                ]


# ---------------------------------------------------------------------------------------------
# Workbook helpers


def _new_workbook() -> Workbook:
    """A streaming (write-only) workbook: the demo writes rows once, top to bottom."""
    workbook = Workbook(write_only=True)
    workbook.properties.creator = "govdash demo"
    workbook.properties.created = FILE_TIMESTAMP
    workbook.properties.modified = FILE_TIMESTAMP
    return workbook


def _save_workbook(workbook: Workbook, path: Path) -> None:
    # Workbook.save stamps "modified" with the current time; the writer itself does not,
    # so calling it directly keeps the document properties identical between runs.
    with ZipFile(path, "w", ZIP_DEFLATED, allowZip64=True) as archive:
        ExcelWriter(workbook, archive).save()
