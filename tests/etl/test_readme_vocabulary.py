"""The README lists every header spelling and classification word the loader knows."""

from __future__ import annotations

from pathlib import Path

from govdash.etl.fields import FIELDS, ITEM_ALIASES
from govdash.etl.vocab import CHANNEL, PRIORITY, REQUEST_TYPE, SATISFACTION, STATUS, UNCLASSIFIED

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def test_every_header_spelling_is_in_the_readme():
    missing = [
        f"{field.name}: {name}"
        for fields in FIELDS.values()
        for field in fields
        for name in (field.label, f"`{field.name}`", *field.aliases)
        if name not in README
    ]
    missing += [a for aliases in ITEM_ALIASES.values() for a in aliases if a not in README]
    assert missing == []


def test_every_classification_word_and_fallback_is_in_the_readme():
    section = README.split("取值与兜底", 1)[1].split("\n\n**", 1)[0]
    missing = [
        word
        for table in (CHANNEL, PRIORITY, REQUEST_TYPE, SATISFACTION, STATUS)
        for canonical, spellings in table.items()
        for word in (canonical, *spellings)
        if word not in section
    ]
    assert missing == []
    assert f"“{UNCLASSIFIED}”" in section
