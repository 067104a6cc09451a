"""Personal data inside free text (问题描述, 意见建议, 备注, rejected cells): the patterns replaced
before anything is stored, as one SQL expression (DuckDB's regular expressions are RE2: no
look-around, so a pattern that must see what follows captures it and writes it back).

What offices actually type: mobiles with spaces or dashes (138 1234 5678, 138-1234-5678), with
+86 or 0086 in front; full-width digits (１３９１２３４５６７８); landlines with an area code
(028-85551234, (028)8555 1234, 02885551234); ID numbers with a trailing x or X in either width,
grouped or not; and a name after a label (联系人：张三, 报修人李建国, 业主王秀英反映…).
"""

from __future__ import annotations

SEPARATOR = r"[\s\x{3000}\-]"  # a space (ASCII or full-width) or a dash between digit groups

ID_NUMBER = rf"\d{{6}}{SEPARATOR}?\d{{8}}{SEPARATOR}?\d{{3}}[\dXx]"
MOBILE = (
    rf"(?:[(（]?(?:\+|00)\s*86[)）]?{SEPARATOR}*|86{SEPARATOR}?)?"
    rf"1[3-9]\d(?:{SEPARATOR}?\d){{8}}"
)
LANDLINE = rf"[(（]?0\d{{2,3}}[)）]?{SEPARATOR}?\d{{3,4}}{SEPARATOR}?\d{{4}}"
ROOM = r"(\d+)单元\d{3,4}(室|号)?"

# Labels always followed by a person's name, and nouns that often are (业主王秀英反映…) but also
# begin ordinary phrases (业主委员会, 住户家中); the second kind needs a name that ends visibly.
PERSON_LABELS = (
    "联系人", "报修人", "来电人", "反映人", "诉求人", "投诉人", "申请人", "当事人", "姓名", "户主",
)  # fmt: skip
ROLE_LABELS = ("业主", "住户", "租户", "居民", "房东", "住户代表")
# Common surnames, without those that mostly begin ordinary words after a label (业主和物业,
# 业主于昨日, 业主卫生间, 业主方面, 业主车位 …): a name starting with one of those is only
# caught when the row's own 联系人 column names it.
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏"
    "魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵"
    "钱严覃武戴莫孔汤温康施牛樊葛邢齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿兰焦俞左柳甘祝包宁尚符"
    "舒阮柯纪梅童凌毕季裴霍涂苗谷盛曲翁冉骆蓝游辛靳管柴蒙鲍华喻祁蒲滕屈饶牟艾尤阳穆卓缪褚娄"
    "窦戚岑费卜晏席柏宗瞿桂佟臧闵苟邬卞姬仇栾隋刁沙荣巫寇桑郎甄丛仲虞敖巩佘迟邝"
)
# What visibly ends a name: punctuation, a digit, the end, an honorific or a common next word.
NAME_ENDS = (
    r"[^\p{Han}]|$|先生|女士|小姐|师傅|阿姨|老师|同志|大爷|奶奶|本人|家|的|在|住|说|称|讲|"
    r"反映|反应|来电|致电|打电话|来访|投诉|报修|要求|表示|询问|咨询|电话|手机|联系|希望|需要|"
    r"发现|称其|于|已|又|再|多次|今天|昨天|今日|昨日|上午|下午|晚上|早上|和|与|及|等|因|对|向|"
    r"将|把|被|让|请|想|到|去|来|为|是|有|没|不|也|都|还|就|夫妇|一家|老人"
)


def name_after_label(labels: tuple[str, ...]) -> str:
    """label, separator, a name of 1–3 characters that ends visibly (captured: \\1 \\2 \\4)."""
    return rf"({'|'.join(labels)})([:：\s\x{{3000}}]*)([{SURNAMES}]\p{{Han}}{{0,2}}?)({NAME_ENDS})"


# After a person label (or any label with a colon), two characters are taken as a name even
# when nothing visibly ends it (联系人陈静女儿…): better a word too many than a name kept.
NAME_AFTER_COLON = rf"({'|'.join(PERSON_LABELS + ROLE_LABELS)})([:：]\s*)([{SURNAMES}]\p{{Han}})"
NAME_AFTER_PERSON_LABEL = rf"({'|'.join(PERSON_LABELS)})(\s*)([{SURNAMES}]\p{{Han}})"

# Full-width forms of what the patterns read (digits, +, -, x, X) → ASCII.
FULL_WIDTH = "０１２３４５６７８９＋－ｘＸ"
HALF_WIDTH = "0123456789+-xX"


def whole_number(pattern: str) -> str:
    """`pattern` only where it is a whole number: not inside a longer run of digits (a ticket
    number, 2.025030100000123E+18). The character before is captured (\\1) and written back;
    RE2 has no look-behind. The end is a word boundary, which takes no character, so a number
    right after another (028-85551234/028-85554321) still finds its own start."""
    return rf"(^|[^\d.])({pattern})\b"


# ID numbers before phones (an ID holds phone-like digits), mobiles before landlines.
NUMBER_STEPS = (
    (whole_number(ID_NUMBER), r"\1[证件号]"),
    (whole_number(MOBILE), r"\1[电话]"),
    (whole_number(LANDLINE), r"\1[电话]"),
)
NAME_STEPS = (
    (name_after_label(PERSON_LABELS + ROLE_LABELS), r"\1\2[姓名]\4"),
    (NAME_AFTER_COLON, r"\1\2[姓名]"),
    (NAME_AFTER_PERSON_LABEL, r"\1\2[姓名]"),
)
ROOM_STEPS = ((ROOM, r"\1单元[房号]"),)
STEPS = NUMBER_STEPS + NAME_STEPS + ROOM_STEPS
ANY_LABEL = "|".join(PERSON_LABELS + ROLE_LABELS)
# What every text the steps change holds: three digits in a row (a full-width one before
# translation), a label, or 单元.
GUARD = r"\d{3}|[０-９]|" + ANY_LABEL + "|单元"


def _literal(constant: str) -> str:
    return "'" + constant.replace("'", "''") + "'"


def scrub_sql(value: str) -> str:
    """The SQL expression scrubbing `value` (an SQL expression over one text; it appears several
    times, so pass a column). One cheap check — three digits in a row, a full-width digit, a
    label, 单元 — sends only the texts that can hold personal data through the patterns: a
    third of the time of running them on every text."""
    text = (
        f"CASE WHEN regexp_matches({value}, '[０-９ｘＸ＋－]') "
        f"THEN translate({value}, {_literal(FULL_WIDTH)}, {_literal(HALF_WIDTH)}) ELSE {value} END"
    )
    for pattern, replacement in STEPS:
        text = f"regexp_replace({text}, {_literal(pattern)}, {_literal(replacement)}, 'g')"
    return f"CASE WHEN regexp_matches({value}, {_literal(GUARD)}) THEN {text} ELSE {value} END"
