"""The catalog: both languages everywhere, matching placeholders, and a t() that never raises."""

from __future__ import annotations

import string

import pytest

from govdash.i18n import CATALOG, LANGUAGES, t


def placeholders(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field}


def test_every_key_has_both_languages_non_empty() -> None:
    wrong_languages = [key for key, entry in CATALOG.items() if list(entry) != list(LANGUAGES)]
    empty = [
        (key, lang) for key, entry in CATALOG.items() for lang in entry if not entry[lang].strip()
    ]
    assert wrong_languages == [], "each entry is Chinese first, then English, nothing else"
    assert empty == []


def test_placeholders_match_between_languages() -> None:
    mismatched = [
        key
        for key, entry in CATALOG.items()
        if placeholders(entry["zh"]) != placeholders(entry["en"])
    ]
    assert mismatched == []


def test_languages_are_chinese_then_english() -> None:
    assert LANGUAGES == ("zh", "en")


@pytest.mark.parametrize(
    ("key", "zh", "en"),
    [
        ("page.overview", "总览", "Overview"),
        ("page.response", "响应时效", "Response times"),
        ("page.satisfaction", "满意度", "Satisfaction"),
        ("page.evaluation", "年度考评", "Evaluation"),
        ("page.data", "数据管理", "Data"),
        ("page.governance_effect", "治理成效", "Governance effect"),
        ("kpi.response_p90", "首次响应P90", "First response P90"),
        ("kpi.three_rate_composite", "三率综合", "Three-rate composite"),
        ("state.empty", "当前筛选条件下没有数据。请放宽筛选条件。", None),
        ("state.small_sample", "样本不足", None),
        ("download.png", "下载 PNG", "Download PNG"),
        ("download.xlsx", "下载 XLSX", "Download XLSX"),
        ("provenance.filters", "筛选条件", "Filters"),
        ("provenance.sources", "数据来源", "Data sources"),
        ("provenance.generated_at", "生成时间", "Generated at"),
        ("level.property_company", "物业企业", "Property company"),
    ],
)
def test_seeded_texts(key: str, zh: str, en: str | None) -> None:
    assert t(key, "zh") == zh
    if en is not None:
        assert t(key, "en") == en


def test_seed_covers_the_pages_needs() -> None:
    needed = {
        "app.title",
        "filter.period.year",
        "filter.period.quarter",
        "filter.period.month",
        "filter.period.date_range",
        "filter.street",
        "filter.community",
        "filter.compound",
        "filter.property_company",
        "filter.category",
        "filter.priority",
        "filter.channel",
        "filter.language",
        "kpi.ticket_count",
        "kpi.tickets_per_100_households",
        "kpi.response_p50",
        "kpi.on_time_response_rate",
        "kpi.on_time_resolution_rate",
        "kpi.contact_rate",
        "kpi.resolution_rate",
        "kpi.satisfaction_rate",
        "kpi.survey_satisfaction_rate",
        "kpi.backlog",
        "kpi.overdue",
        "unit.minutes",
        "unit.hours",
        "unit.tickets",
        "unit.households",
        "unit.percent",
        "chart.monthly_trend",
        "chart.red_black_list",
        "chart.response_distribution",
        "chart.response_percentile_trend",
        "chart.backlog_aging",
        "chart.weekday_hour",
        "chart.repeat_requests",
        "chart.longest_open",
        "chart.survey_item_rates",
        "chart.profile_vs_average",
        "chart.wave_change",
        "chart.response_rate",
        "chart.callback_satisfaction",
        "chart.comment_words",
        "label.n",
        "label.period",
        "download.svg",
        "download.csv",
        "level.compound",
        "level.community",
        "level.street",
    }
    assert needed <= set(CATALOG), sorted(needed - set(CATALOG))


def test_t_formats_placeholders_in_each_language() -> None:
    assert t("label.n", "zh", n=42) == "n = 42"
    assert t("label.period", "zh", period="2024年") == "统计期：2024年"
    assert t("label.period", "en", period="2024") == "Period: 2024"
    assert t("chart.repeat_requests", "en", days=30).startswith("Repeat requests")
    assert "30 天内" in t("chart.repeat_requests", "zh", days=30)


def test_t_falls_back_without_raising() -> None:
    assert t("no.such.key") == "no.such.key"
    assert t("no.such.key", "en", n=1) == "no.such.key"
    # An unknown language falls back to Chinese.
    assert t("page.overview", "fr") == "总览"
    # A missing value leaves its placeholder visible instead of raising.
    assert t("label.period", "zh") == "统计期：{period}"
    assert t("chart.profile_vs_average", "zh", other=1) == "{unit}与街道平均对比"
    # A value that does not fit its format spec returns the template.
    assert t("filter.month_value", "en", year=2024, month="三") == "{year}-{month:02d}"
    assert t("filter.month_value", "en", year=2024, month=3) == "2024-03"
