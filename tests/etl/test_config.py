"""The one config file: defaults load, bad values name their key, every key has help text."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from govdash.core.config import DEFAULT_CONFIG_PATH, ConfigError, load_config
from tests.conftest import TICKET_HEADER, rows, ticket_row, write_xlsx

# Tables whose keys are labels a user chooses (grade and award names), described by `help`.
LABEL_TABLES = {"evaluation.grades", "evaluation.awards"}


def _defaults() -> dict[str, Any]:
    with DEFAULT_CONFIG_PATH.open("rb") as handle:
        return tomllib.load(handle)


def test_the_default_config_loads_with_the_values_of_the_file(config):
    raw = _defaults()
    assert config.categories == tuple(raw["tickets"]["categories"])
    assert config.blank_priority == raw["tickets"]["blank_priority"] == "一般"
    assert len(config.sla) == len(raw["sla"]) == 5
    assert [
        (r.priority, r.request_type, r.respond_minutes, r.resolve_hours) for r in config.sla
    ] == [
        ("特急", None, 5, 24),
        ("紧急", None, 15, 24),
        (None, "投诉", 1440, 168),
        (None, "咨询", 30, 72),
        (None, None, 30, 72),
    ]
    assert config.three_rate_weights == {"response": 0.2, "resolution": 0.4, "satisfaction": 0.4}
    assert sum(i.points for i in config.indicators) == 100
    assert config.survey_items == tuple(raw["survey"]["items"])
    assert config.source_path == str(DEFAULT_CONFIG_PATH)
    assert config.effect_min_compounds == raw["effect"]["min_compounds"] == 10
    assert config.effect_window_months == raw["effect"]["window_months"] == 12
    assert config.effect_size_bands == tuple(raw["effect"]["size_bands"]) == (100, 300, 1000)


BAD_VALUES = {
    "three-rate-weights-not-summing-to-1": (
        "[three_rates]\nresponse_weight = 0.5\n",
        "three_rates",
    ),
    "negative-respond-minutes": (
        "[[sla]]\nrespond_minutes = -5\nresolve_hours = 24\n",
        "sla[1].respond_minutes",
    ),
    "unknown-indicator-source": (
        '[[evaluation.indicators]]\nblock = "党建引领"\nname = "党建"\npoints = 100\nsource = "expert"\n',
        "evaluation.indicators[1].source",
    ),
    "unknown-blank-priority": ('[tickets]\nblank_priority = "超急"\n', "tickets.blank_priority"),
    "weight-as-text": (
        '[three_rates]\nbasic_satisfied_weight = "0.9"\n',
        "three_rates.basic_satisfied_weight",
    ),
    "bad-earliest-date": ('[loader]\nearliest_date = "去年"\n', "loader.earliest_date"),
    "overall-item-not-an-item": ('[survey]\noverall_item = "满意度"\n', "survey.overall_item"),
    "awards-above-100-percent": ('[evaluation.awards]\n"一等奖" = 0.6\n', "evaluation.awards"),
    "zero-versions-kept": ("[loader]\nkeep_versions = 0\n", "loader.keep_versions"),
    "one-compound-per-side": ("[effect]\nmin_compounds = 1\n", "effect.min_compounds"),
    "window-of-ten-years": ("[effect]\nwindow_months = 120\n", "effect.window_months"),
    "size-bands-out-of-order": ("[effect]\nsize_bands = [300, 100]\n", "effect.size_bands"),
    "row-limit-as-text": ('[loader]\nmax_rows_per_file = "100万"\n', "loader.max_rows_per_file"),
    "row-limit-zero": ("[loader]\nmax_rows_per_file = 0\n", "loader.max_rows_per_file"),
    "upload-limit-negative": ("[loader]\nmax_upload_mb = -1\n", "loader.max_upload_mb"),
    "unzipped-limit-boolean": ("[loader]\nmax_unzipped_mb = true\n", "loader.max_unzipped_mb"),
    "compression-ratio-below-10": (
        "[loader]\nmax_compression_ratio = 2\n",
        "loader.max_compression_ratio",
    ),
    "no-catch-all-sla-rule": (
        '[[sla]]\npriority = "特急"\nrespond_minutes = 5\nresolve_hours = 24\n',
        "sla",
    ),
    "metric-target-below-floor": (
        '[[evaluation.indicators]]\nblock = "诉求办理"\nname = "响应率"\npoints = 100\n'
        'source = "tickets"\nmetric = "response_rate"\nfloor = 0.9\ntarget = 0.8\n',
        "evaluation.indicators[1].target",
    ),
}


@pytest.mark.parametrize("case", list(BAD_VALUES))
def test_an_invalid_value_names_its_key_and_file(tmp_path, monkeypatch, case):
    monkeypatch.delenv("GOVDASH_CONFIG", raising=False)
    text, key = BAD_VALUES[case]
    path = tmp_path / "my-config.toml"
    path.write_text(text, encoding="utf-8")

    with pytest.raises(ConfigError) as raised:
        load_config(path)

    assert key in str(raised.value)
    assert str(path) in str(raised.value)


def test_a_config_file_that_is_not_toml(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[tickets\nblank_priority = 一般\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="不是合法的 TOML"):
        load_config(path)


def test_a_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="找不到配置文件"):
        load_config(tmp_path / "nowhere.toml")


def test_the_config_from_the_environment(tmp_path, monkeypatch):
    path = tmp_path / "env.toml"
    path.write_text("[tickets]\nrepeat_window_days = 14\n", encoding="utf-8")
    monkeypatch.setenv("GOVDASH_CONFIG", str(path))
    config = load_config()
    assert config.repeat_window_days == 14
    assert config.source_path == str(path)


def _tables(node: dict[str, Any], prefix: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every table of the TOML with its dotted name; array-of-table entries as name[n]."""
    found = [(prefix, node)] if prefix else []
    for key, value in node.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            found.extend(_tables(value, name))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for index, entry in enumerate(value, start=1):
                found.extend(_tables(entry, f"{name}[{index}]"))
    return found


def test_every_key_of_the_default_config_has_help_text():
    raw = _defaults()
    tables = _tables(raw)
    assert len(tables) >= 8 + 5 + 14  # sections, SLA rules, indicators
    missing = []
    for name, table in tables:
        if not str(table.get("help", "")).strip():
            missing.append(f"{name}.help")
        if "[" in name or name in LABEL_TABLES:
            continue  # entries of a list, or user-chosen labels: the table's help covers them
        for key, value in table.items():
            if key == "help" or key.endswith("_help") or isinstance(value, dict):
                continue
            if isinstance(value, list) and value and isinstance(value[0], dict):
                continue
            if not str(table.get(f"{key}_help", "")).strip():
                missing.append(f"{name}.{key}_help")
        for key in table:
            if key.endswith("_help") and key.removesuffix("_help") not in table:
                missing.append(f"{name}.{key} (help for a key that does not exist)")
    assert missing == []
    assert [k for k in raw if not isinstance(raw[k], dict | list)] == []  # no key outside a table


def test_categories_come_from_the_config_not_the_code(tmp_path, load):
    path = write_xlsx(
        tmp_path / "in" / "工单.xlsx",
        {"Sheet1": [TICKET_HEADER, ticket_row("GD001", category="电动车充电")]},
    )
    custom = tmp_path / "custom.toml"
    categories = ", ".join(f'"{c}"' for c in [*_defaults()["tickets"]["categories"], "电动车充电"])
    custom.write_text(f"[tickets]\ncategories = [{categories}]\n", encoding="utf-8")

    default_report, db = load(path)
    # Unknown to the default list: loaded under 未归类, the word kept beside it.
    assert default_report.files[0].rows_rejected == 0
    assert rows(db, "SELECT category, unmapped_values FROM tickets") == [
        ("未归类", {"category": "电动车充电"})
    ]

    # Other bytes (another sheet name): identical content would be skipped as already loaded.
    path_again = write_xlsx(
        tmp_path / "in" / "工单-补录.xlsx",
        {"补录": [TICKET_HEADER, ticket_row("GD001", category="电动车充电")]},
    )
    custom_report, _ = load(path_again, config=load_config(custom))

    assert custom_report.files[0].rows_loaded == 1
    assert rows(db, "SELECT ticket_id, category, unmapped_values FROM tickets") == [
        ("GD001", "电动车充电", {})
    ]
    fingerprints = rows(db, "SELECT config_fingerprint FROM load_batches ORDER BY batch_id")
    assert fingerprints[0] != fingerprints[1]
