"""Print the README's tables of header spellings and enumeration fallbacks from the code.

    .venv/bin/python scripts/readme_vocabulary.py

tests/etl/test_readme_vocabulary.py checks that the README lists every spelling this prints.
"""

from __future__ import annotations

from govdash.core.config import load_config
from govdash.etl.fields import FIELDS, ITEM_ALIASES, KIND_LABELS, PERSONAL
from govdash.etl.vocab import (
    CATEGORY_ALIASES,
    CHANNEL,
    NO_SATISFACTION_ANSWER,
    PRIORITY,
    REQUEST_TYPE,
    SATISFACTION,
    STATUS,
    UNCLASSIFIED,
)


def header_tables() -> str:
    lines: list[str] = []
    for kind, fields in FIELDS.items():
        lines += [f"**{KIND_LABELS[kind]}**", "", "| 模板表头 | field | 也认作 |", "|---|---|---|"]
        for field in fields:
            note = (
                "（个人信息：不入库）" if field.parse == PERSONAL and field.name != "phone" else ""
            )
            if field.name == "phone":
                note = "（只存带密钥的哈希）"
            aliases = "、".join(field.aliases) or "—"
            lines.append(f"| {field.label}{note} | `{field.name}` | {aliases} |")
        lines.append("")
    items = "；".join(f"{item}：{'、'.join(aliases)}" for item, aliases in ITEM_ALIASES.items())
    lines.append(f"满意度问卷的评分题另认：{items}。")
    return "\n".join(lines)


def _spellings(table: dict[str, tuple[str, ...]]) -> str:
    return "；".join(
        f"{canonical} ← {'、'.join(s for s in spellings if s != canonical)}"
        if any(s != canonical for s in spellings)
        else canonical
        for canonical, spellings in table.items()
    )


def enumeration_table() -> str:
    config = load_config()
    categories = {c: CATEGORY_ALIASES.get(c, ()) for c in config.categories}
    rows = [
        ("来源渠道", _spellings(CHANNEL), "空白", f"“{UNCLASSIFIED}”"),
        (
            "诉求类型",
            _spellings(REQUEST_TYPE),
            "空白",
            f"“{UNCLASSIFIED}”（SLA 按紧急程度或兜底规则）",
        ),
        (
            "问题类别",
            "配置 `tickets.categories`：" + _spellings(categories),
            f"`blank_category`（默认“{config.blank_category}”）",
            f"“{UNCLASSIFIED}”",
        ),
        (
            "紧急程度",
            _spellings(PRIORITY),
            f"`blank_priority`（默认“{config.blank_priority}”）",
            f"“{UNCLASSIFIED}”（SLA 按诉求类型或兜底规则）",
        ),
        ("工单状态", _spellings(STATUS), "空白", f"“{UNCLASSIFIED}”（是否未结只看办结时间）"),
        (
            "满意度",
            _spellings(SATISFACTION) + f"；{'、'.join(NO_SATISFACTION_ANSWER)} = 未评价",
            "空白",
            "空白（未评价，不计入满意率）",
        ),
        (
            "是/否（回访、联系、解决、红色物业、党建联建）",
            "是/否、√/×、Y/N、1/0 等",
            "空白",
            "空白（未填写）",
        ),
    ]
    lines = [
        "| field | 认得的取值（规范值 ← 其他写法） | 空白时 | 不认得的词 |",
        "|---|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    print(header_tables())
    print()
    print(enumeration_table())
