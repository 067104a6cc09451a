"""Every user-facing string of the dashboard, in Simplified Chinese first and English.

The texts live in one data file per language beside this module (zh.toml, en.toml) so a
translator edits them without touching code; this module reads them once and fills in
placeholders.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from importlib import resources

import pandas as pd

LANGUAGES: tuple[str, ...] = ("zh", "en")
DEFAULT_LANGUAGE = "zh"


def _read_catalog() -> dict[str, dict[str, str]]:
    """key -> {language: text}, from the language files. Placeholders use str.format names
    and must match across languages (a test holds that line)."""
    catalog: dict[str, dict[str, str]] = {}
    for language in LANGUAGES:
        text = resources.files(__name__).joinpath(f"{language}.toml").read_text(encoding="utf-8")
        for key, value in tomllib.loads(text).items():
            catalog.setdefault(key, {})[language] = value
    return catalog


CATALOG: dict[str, dict[str, str]] = _read_catalog()


class _KeepMissing(dict[str, object]):
    """format_map helper: a placeholder without a value stays visible instead of raising."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def column_label(name: str, lang: str = DEFAULT_LANGUAGE) -> str:
    """A table column's header in `lang` (catalog key ``column.<name>``), else the name."""
    key = f"column.{name}"
    return t(key, lang) if key in CATALOG else name


def localise_columns(
    frame: pd.DataFrame, lang: str = DEFAULT_LANGUAGE, labels: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """`frame` with its headers in `lang`: `labels` first, then the catalog, else unchanged."""
    chosen = dict(labels or {})
    return frame.rename(columns=lambda c: chosen.get(str(c)) or column_label(str(c), lang))


def t(key: str, lang: str = DEFAULT_LANGUAGE, **values: object) -> str:
    """The text for `key` in `lang`, with placeholders filled; an unknown key returns the key."""
    entry = CATALOG.get(key)
    if entry is None:
        return key
    template = entry.get(lang) or entry.get(DEFAULT_LANGUAGE) or key
    if not values:
        return template
    try:
        return template.format_map(_KeepMissing(values))
    except (ValueError, TypeError, IndexError, AttributeError):
        # A value that does not fit its format spec: show the text rather than fail the page.
        return template
