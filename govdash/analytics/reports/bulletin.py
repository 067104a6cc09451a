"""The monthly bulletin (月度通报): a Word document filled from a template, and its PDF.

`bulletin_content` turns one month's figures (govdash.analytics.queries.bulletin.BulletinData)
into the bulletin's wording and tables — every number in it is formatted here from the data,
none is written by hand. `bulletin_docx` fills a .docx template with it (docxtpl: the shipped
templates/bulletin.docx, or a street's own copy named by `bulletin.template` in the config);
`bulletin_pdf` prints the same content through Debian's Chromium (govdash.analytics.reports.pdf),
so the PDF and the Word file say the same thing.

The ranking rule the bulletin publishes: units with at least config.min_group_size valid
callbacks take part (DOMAIN.md §6: no published figure rests on fewer records; the others are
listed with their counts and "—"); they are ranked on 三率综合 as printed (one decimal of a
percentage point), equal printed values sharing a rank (1, 2, 2, 4); the change of rank is
against last month's ranking made the same way.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import jinja2
import markupsafe
import pandas as pd

from govdash.analytics.charts.plots import bar_ranking, line_trend
from govdash.analytics.charts.style import ChartContext, Highlight
from govdash.analytics.metrics.rates import change, shown_difference
from govdash.analytics.queries.bulletin import BulletinData
from govdash.analytics.queries.filters import Filters
from govdash.analytics.queries.units import red_black_list
from govdash.analytics.reports.export import (
    ImageExportError,
    PersonalDataError,
    Provenance,
    assert_no_personal_data,
    figure_to_image,
)
from govdash.analytics.reports.pdf import PDF_TIMEOUT_SECONDS, html_to_pdf
from govdash.core.access import Scope
from govdash.core.config import Config

TEMPLATES = Path(__file__).with_name("templates")
SHIPPED_TEMPLATE = TEMPLATES / "bulletin.docx"
HTML_TEMPLATE = "bulletin.html"
DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
PDF_MIME = "application/pdf"
LEVEL_NAMES = {"community": "社区", "compound": "小区", "property_company": "物业企业"}
PARENT_LABELS = {"community": "所属街道", "compound": "所属社区", "property_company": "—"}
SALUTATIONS = {
    "community": "各社区党委、各物业服务企业：",
    "compound": "各社区党委、各小区、各物业服务企业：",
    "property_company": "各社区党委、各物业服务企业：",
}
DASH = "—"
MAX_NAMES = 20  # units named in one sentence; more are summed up as "等 N 个"
MAX_CHART_UNITS = 30  # bars in the ranking chart; with more, the best and worst 15
MAX_SOURCES = 30  # load batches listed; older ones are counted
CHART_WIDTH_MM = 150


class BulletinError(ValueError):
    """A bulletin that cannot be written; the message says what to do."""


# --- numbers as a bulletin writes them ----------------------------------------------------------


def _missing(value: float | None) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def percent(value: float | None) -> str:
    """0.8523 → "85.2%"; "—" when unknown."""
    return DASH if _missing(value) else f"{float(value) * 100:.1f}%"  # type: ignore[arg-type]


def number(value: float | None, decimals: int = 1) -> str:
    return DASH if _missing(value) else f"{float(value):.{decimals}f}"  # type: ignore[arg-type]


def count(value: float | None) -> str:
    return DASH if _missing(value) else str(round(float(value)))  # type: ignore[arg-type]


def count_change(now: float, before: float, against: str, unit: str = "件") -> str:
    """ "环比增加 12 件（增长 10.8%）", "环比持平"; the caller handles a period without data."""
    difference = round(now - before)
    if difference == 0:
        return f"{against}持平"
    relative = change(now, before)
    words = ("增加", "增长") if difference > 0 else ("减少", "下降")
    text = f"{against}{words[0]}{abs(difference)}{unit}"
    if relative is not None:
        text += f"（{words[1]}{abs(relative) * 100:.1f}%）"
    return text


def rate_change(now: float | None, before: float | None, against: str) -> str:
    """ "环比上升 1.3 个百分点" at the printed precision; "持平" when it rounds to zero."""
    moved = shown_difference(now, before, 1, 100)
    if moved is None:
        return f"{against}无可比数据"
    if moved == 0:
        return f"{against}持平"
    return f"{against}{'上升' if moved > 0 else '下降'}{abs(moved):.1f}个百分点"


def minutes_change(now: float | None, before: float | None, against: str) -> str:
    moved = shown_difference(now, before, 1)
    if moved is None:
        return f"{against}无可比数据"
    if moved == 0:
        return f"{against}持平"
    return f"{against}{'延长' if moved > 0 else '缩短'}{abs(moved):.1f}分钟"


def chinese_date(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def names_text(names: Sequence[str], unit_word: str) -> str:
    """ "东社区、西社区"; more than MAX_NAMES: the first ones "等 N 个社区"."""
    listed = [str(name) for name in names]
    if len(listed) <= MAX_NAMES:
        return "、".join(listed)
    return f"{'、'.join(listed[:MAX_NAMES])}等{len(listed)}个{unit_word}"


def place_text(scope: Scope) -> str:
    """Where the figures are from, as a sentence names it: 辖区, or the scope's street or
    community."""
    return "辖区" if scope.name is None else scope.name


# --- the ranking -----------------------------------------------------------------------------------

RANKING_COLUMNS = [
    "unit",
    "parent",
    "tickets",
    "callback_n",
    "response_rate",
    "resolution_rate",
    "satisfaction_rate",
    "three_rate_composite",
    "is_ranked",
    "rank",
    "previous_rank",
    "rank_change",
]


def _ranks(units: pd.DataFrame, min_records: int) -> pd.DataFrame:
    """unit, parent, is_ranked, rank: competition ranks (1, 2, 2, 4) on 三率综合 as printed."""
    frame = units[["unit", "parent", "three_rate_composite", "callback_n"]].copy()
    shown = (frame["three_rate_composite"].astype(float) * 100).round(1)
    frame["is_ranked"] = shown.notna() & (frame["callback_n"].fillna(0) >= max(min_records, 1))
    frame["rank"] = (
        shown.where(frame["is_ranked"]).rank(method="min", ascending=False).astype("Int64")
    )
    return frame[["unit", "parent", "is_ranked", "rank"]]


def _parent_key(frame: pd.DataFrame) -> pd.Series:
    return frame["parent"].astype(object).where(frame["parent"].notna(), "")


def three_rate_ranking(
    units: pd.DataFrame, previous_units: pd.DataFrame, min_records: int
) -> pd.DataFrame:
    """Every unit of the month with its 三率, rank and change of rank (RANKING_COLUMNS).

    rank_change = last month's rank − this month's (positive: moved up); NA when the unit was
    not ranked in either month. Ranked units first by rank then name, the rest by name.
    """
    now = units.copy()
    ranks = _ranks(now, min_records)
    now["is_ranked"] = ranks["is_ranked"].to_numpy(bool)
    now["rank"] = ranks["rank"].to_numpy()
    before = _ranks(previous_units, min_records)
    before = before[before["is_ranked"]].assign(_parent=_parent_key(before))
    now["_parent"] = _parent_key(now)
    merged = now.merge(
        before[["unit", "_parent", "rank"]].rename(columns={"rank": "previous_rank"}),
        on=["unit", "_parent"],
        how="left",
    )
    merged["previous_rank"] = merged["previous_rank"].astype("Int64")
    merged["rank_change"] = (merged["previous_rank"] - merged["rank"]).astype("Int64")
    merged["_order"] = merged["rank"].astype("Float64").fillna(math.inf)
    merged = merged.sort_values(["_order", "unit"], kind="stable")
    return merged[RANKING_COLUMNS].reset_index(drop=True)


def rank_change_text(row: pd.Series) -> str:
    if not row["is_ranked"]:
        return DASH
    if pd.isna(row["previous_rank"]):
        return "上月未排名"
    moved = int(row["rank_change"])
    if moved == 0:
        return "持平"
    return f"上升{moved}位" if moved > 0 else f"下降{-moved}位"


# --- the content --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Chart:
    png: bytes | None  # None when it could not be drawn (the caption says why)
    caption: str


@dataclass(frozen=True)
class BulletinContent:
    """Everything the template shows, as text (and chart images)."""

    fields: dict[str, Any]  # the template's variables (text, lists of text, table rows)
    charts: dict[str, Chart] = field(
        default_factory=dict
    )  # chart_trend, chart_ranking, chart_rates
    units: tuple[str, ...] = ()  # every unit in the 三率 table

    @property
    def title(self) -> str:
        return str(self.fields["title"])


def bulletin_title(data: BulletinData) -> str:
    month = data.filters.start
    prefix = "" if data.filters.scope.name is None else data.filters.scope.name
    return f"{prefix}{month.year}年{month.month}月物业服务诉求办理情况通报"


def bulletin_file_name(filters: Filters, suffix: str) -> str:
    """ "2025年3月通报.docx" for the month `filters` names (a bulletin's `data.filters`), with
    the scope's name in front for a street or community."""
    month = filters.start
    prefix = "" if filters.scope.name is None else filters.scope.name
    return f"{prefix}{month.year}年{month.month}月通报.{suffix.lstrip('.')}"


def bulletin_content(
    data: BulletinData,
    config: Config,
    *,
    generated_at: datetime | None = None,
    charts: bool = True,
) -> BulletinContent:
    """The bulletin's wording, tables and charts from one month's figures."""
    generated = (generated_at or datetime.now()).replace(microsecond=0)
    level_name = LEVEL_NAMES[data.level]
    place = place_text(data.filters.scope)
    month = data.filters.start
    month_label = f"{month.year}年{month.month}月"
    ranking = three_rate_ranking(data.units, data.previous_units, config.min_group_size)
    _check_private(ranking, data)
    red, black = red_black_list(
        data.units, "three_rate_composite", config.red_black_list_size, config.min_group_size
    )
    issuer = config.bulletin_issuer
    date_text = chinese_date(generated.date())
    fields: dict[str, Any] = {
        "title": bulletin_title(data),
        "issuer": issuer,
        "date_text": date_text,
        "byline": f"{issuer}　{date_text}" if issuer else date_text,
        "salutation": SALUTATIONS[data.level],
        "intro": f"现将{place}{month_label}物业服务诉求办理情况通报如下。",
        "month_label": month_label,
        "place": place,
        "level_name": level_name,
        "parent_label": PARENT_LABELS[data.level],
        "overview": _overview(data, month_label, place),
        "ranking_intro": _ranking_intro(ranking, level_name, config),
        "ranking_note": _ranking_note(data, config),
        "three_rates": [_ranking_row(row) for _, row in ranking.iterrows()],
        "red_black_intro": _red_black_intro(red, black, level_name),
        "red": [_list_row(row) for _, row in red.iterrows()],
        "black": [_list_row(row) for _, row in black.iterrows()],
        "overdue_intro": _overdue_intro(data, level_name),
        "overdue": [_overdue_row(row) for _, row in _overdue(data).iterrows()],
        "hot_spots_intro": _hot_spots_intro(data, config),
        "hot_spots": [_hot_spot_row(row) for _, row in data.repeats.top_compounds.iterrows()],
        "requirements": _requirements(data, black, level_name),
        "method": _method(data, ranking, config, level_name),
        "sources": _sources(data, config, generated),
    }
    drawn = _charts(data, ranking, config, level_name) if charts else {}
    return BulletinContent(fields, drawn, tuple(str(u) for u in ranking["unit"]))


def _check_private(ranking: pd.DataFrame, data: BulletinData) -> None:
    """Unit names are the only free text that reaches the bulletin: refuse a phone number or
    an ID number there as every export does (PIPL)."""
    try:
        assert_no_personal_data(ranking[["unit", "parent"]])
        assert_no_personal_data(data.repeats.top_compounds[["community", "compound"]])
    except PersonalDataError as error:
        raise BulletinError(str(error)) from error


def _overview(data: BulletinData, month_label: str, place: str) -> list[str]:
    now, before, year_ago = data.kpis, data.previous_kpis, data.last_year_kpis
    if now.tickets == 0:
        return [f"{month_label}，{place}未受理群众诉求工单。"]
    mom = (
        count_change(now.tickets, before.tickets, "环比")
        if before.tickets
        else "上月无工单数据，不作环比"
    )
    yoy = (
        count_change(now.tickets, year_ago.tickets, "同比")
        if year_ago.tickets
        else "去年同期无工单数据，不作同比"
    )
    volume = f"{month_label}，{place}共受理群众诉求工单{now.tickets}件，{mom}，{yoy}"
    if not _missing(now.tickets_per_100_households):
        volume += f"；每百户{number(now.tickets_per_100_households)}件"
    paragraphs = [volume + "。"]

    def both(now_value: float, before_value: float, year_value: float) -> str:
        return (
            f"{rate_change(now_value, before_value, '环比')}，"
            f"{rate_change(now_value, year_value, '同比')}"
        )

    timing = (
        f"首次响应时间中位数{number(now.response_median_minutes)}分钟"
        f"（{minutes_change(now.response_median_minutes, before.response_median_minutes, '环比')}），"
        f"P90为{number(now.response_p90_minutes)}分钟；"
        f"及时响应率{percent(now.response_on_time_rate)}"
        f"（{both(now.response_on_time_rate, before.response_on_time_rate, year_ago.response_on_time_rate)}），"
        f"按时办结率{percent(now.resolution_on_time_rate)}"
        f"（{both(now.resolution_on_time_rate, before.resolution_on_time_rate, year_ago.resolution_on_time_rate)}）。"
    )
    paragraphs.append(timing)
    if now.callback_n:
        paragraphs.append(
            f"“三率”方面，本月有效回访{now.callback_n}件，响应率{percent(now.response_rate)}、"
            f"解决率{percent(now.resolution_rate)}、满意率{percent(now.satisfaction_rate)}，"
            f"三率综合{percent(now.three_rate_composite)}，"
            f"{both(now.three_rate_composite, before.three_rate_composite, year_ago.three_rate_composite)}。"
        )
    else:
        paragraphs.append("“三率”方面，本月没有有效回访记录，三率无法计算。")
    paragraphs.append(
        f"截至月末，在办积压工单{now.backlog}件，其中超期{now.backlog_overdue}件"
        f"（上月末{before.backlog}件、超期{before.backlog_overdue}件）；"
        f"本月重复诉求{now.repeat_tickets}件。"
    )
    return paragraphs


def _ranking_intro(ranking: pd.DataFrame, level_name: str, config: Config) -> str:
    ranked = ranking[ranking["is_ranked"]]
    rest = ranking[~ranking["is_ranked"]]
    text = (
        f"本月参与“三率”排名的{level_name}共{len(ranked)}个"
        f"（有效回访不少于{config.min_group_size}件），按三率综合由高到低排列"
    )
    if not rest.empty:
        text += (
            f"；{names_text(rest['unit'].tolist(), level_name)}有效回访不足"
            f"{config.min_group_size}件，只列工单量，不公布比率、不参与排名"
        )
    return text + "。"


def _ranking_note(data: BulletinData, config: Config) -> str:
    weights = config.three_rate_weights
    return (
        f"注：三率综合 = {weights['response']:g}×响应率 + {weights['resolution']:g}×解决率 + "
        f"{weights['satisfaction']:g}×满意率；排名变化与上月（{data.filters.previous().label()}）相比。"
    )


def _ranking_row(row: pd.Series) -> dict[str, str]:
    ranked = bool(row["is_ranked"])

    def shown(column: str) -> str:
        return percent(row[column]) if ranked else DASH

    return {
        "rank": str(int(row["rank"])) if ranked else DASH,
        "unit": str(row["unit"]),
        "parent": DASH if pd.isna(row["parent"]) else str(row["parent"]),
        "tickets": count(row["tickets"]),
        "callback_n": count(row["callback_n"]),
        "response_rate": shown("response_rate"),
        "resolution_rate": shown("resolution_rate"),
        "satisfaction_rate": shown("satisfaction_rate"),
        "composite": shown("three_rate_composite"),
        "rank_change": rank_change_text(row),
    }


def _red_black_intro(red: pd.DataFrame, black: pd.DataFrame, level_name: str) -> str:
    if red.empty:
        return f"本月参与排名的{level_name}不足2个，不设红黑榜。"
    return (
        f"按三率综合，本月红榜{len(red)}个{level_name}：{names_text(red['unit'].tolist(), level_name)}；"
        f"黑榜{len(black)}个{level_name}：{names_text(black['unit'].tolist(), level_name)}。"
    )


def _list_row(row: pd.Series) -> dict[str, str]:
    return {
        "rank": str(int(row["rank"])),
        "unit": str(row["unit"]),
        "parent": DASH if pd.isna(row["parent"]) else str(row["parent"]),
        "composite": percent(row["three_rate_composite"]),
        "callback_n": count(row["callback_n"]),
    }


def _overdue(data: BulletinData) -> pd.DataFrame:
    return data.backlog[data.backlog["overdue"] > 0].reset_index(drop=True)


def _overdue_intro(data: BulletinData, level_name: str) -> str:
    overdue = _overdue(data)
    moment = f"{data.reference_at:%Y年%m月%d日%H时}".replace("年0", "年").replace("月0", "月")
    if overdue.empty:
        return f"截至{moment}，无超期未办结工单。"
    top = overdue.iloc[0]
    return (
        f"截至{moment}，共有{len(overdue)}个{level_name}存在超期未办结工单，"
        f"合计{int(overdue['overdue'].sum())}件，其中{top['unit']}最多（{int(top['overdue'])}件）。"
    )


def _overdue_row(row: pd.Series) -> dict[str, str]:
    return {
        "unit": str(row["unit"]),
        "parent": DASH if pd.isna(row["parent"]) else str(row["parent"]),
        "backlog": count(row["backlog"]),
        "overdue": count(row["overdue"]),
        "longest": number(row["longest_overdue_days"]),
    }


def _hot_spots_intro(data: BulletinData, config: Config) -> str:
    repeats = int(data.kpis.repeat_tickets)
    text = f"本月重复诉求{repeats}件（同一居民{config.repeat_window_days}天内就同一类别再次报事）"
    categories = data.repeats.by_category
    categories = categories[categories["repeats"] > 0].head(3)
    if not categories.empty:
        listed = "、".join(
            f"{category}（{repeats}件）"
            for category, repeats in zip(
                categories["category"].astype(str), categories["repeats"].astype(int), strict=True
            )
        )
        text += f"，较集中的问题类别为{listed}"
    if data.repeats.top_compounds.empty:
        return text + f"；工单不少于{config.min_group_size}件的小区中，没有需要列出的重复诉求热点。"
    return text + "；重复诉求较多的小区如下表。"


def _hot_spot_row(row: pd.Series) -> dict[str, str]:
    return {
        "community": DASH if pd.isna(row["community"]) else str(row["community"]),
        "compound": str(row["compound"]),
        "tickets": count(row["tickets"]),
        "repeats": count(row["repeats"]),
        "share": percent(row["repeat_share"]),
    }


def _requirements(data: BulletinData, black: pd.DataFrame, level_name: str) -> list[str]:
    lines = []
    if not black.empty:
        lines.append(
            f"请{names_text(black['unit'].tolist(), level_name)}对照本通报，逐项分析“三率”偏低的原因，"
            "制定整改措施，并于下月通报前报送整改情况。"
        )
    overdue = _overdue(data)
    if not overdue.empty:
        lines.append(
            f"请{names_text(overdue['unit'].tolist(), level_name)}抓紧办结超期工单，"
            "确需延期的及时向居民说明情况。"
        )
    hot = data.repeats.top_compounds
    hot = hot[hot["repeats"] > 0]
    if not hot.empty:
        lines.append(
            f"请{names_text(hot['compound'].tolist(), '小区')}所在社区会同物业服务企业，"
            "对重复诉求集中的问题开展专项排查，从源头减少重复报事。"
        )
    lines.append("各单位要落实首问负责和限时办结要求，提高一次办结率和回访满意率。")
    return lines


def _method(
    data: BulletinData, ranking: pd.DataFrame, config: Config, level_name: str
) -> list[str]:
    kpis = data.kpis
    month = data.filters
    k = config.basic_satisfied_weight
    weights = config.three_rate_weights
    lines = [
        f"统计期：{chinese_date(month.start)}至{chinese_date(month.end)}，按受理时间统计；"
        f"“月末”以{data.reference_at:%Y-%m-%d %H:%M}为准（统计期末与数据截止时间中较早者）。",
        f"工单量：统计期内受理的工单{kpis.tickets}件，同一工单编号只计一次。",
        f"及时响应率 = 按时响应 ÷（按时响应 + 超时响应），尚未响应且已过时限的工单计为超时，"
        f"本月计入{kpis.response_on_time_n}件；按时办结率同理，本月计入{kpis.resolution_on_time_n}件。"
        f"时限规则（按紧急程度和诉求类型取第一条相符的）：{'；'.join(rule.describe() for rule in config.sla)}"
        + (
            "；以工作日计的按国务院办公厅放假安排（含调休）计算，至第 N 个工作日结束"
            if any(rule.uses_working_days for rule in config.sla)
            else ""
        )
        + "；台账自带承诺时限的从其规定。",
        f"“三率”以有效回访工单为基数，本月{kpis.callback_n}件"
        + (
            f"（其中{kpis.callback_fallback_n}件来自无回访字段的台账，以已办结且有满意度评价的工单计）"
            if kpis.callback_fallback_n
            else ""
        )
        + f"：响应率 = 已联系 ÷ 基数；解决率 = 已解决 ÷ 基数；满意率 =（满意 + {k:g} × 基本满意）÷ 基数；"
        f"三率综合 = {weights['response']:g}×响应率 + {weights['resolution']:g}×解决率 + "
        f"{weights['satisfaction']:g}×满意率。",
        f"排名：有效回访不少于{config.min_group_size}件的{level_name}参与排名"
        f"（本月{int(ranking['is_ranked'].sum())}个，未参与{int((~ranking['is_ranked']).sum())}个），"
        "三率综合按通报所列精度（0.1个百分点）相同者名次并列；红黑榜各列"
        f"{config.red_black_list_size}个（参与排名的不足{2 * config.red_black_list_size}个时各列一半）。",
        "积压：月末仍未办结的工单；超期：月末已超过办结时限仍未办结。",
        f"重复诉求：同一来电人（电话号码经加密比对）{config.repeat_window_days}天内就同一类别再次报事；"
        f"工单少于{config.min_group_size}件的小区和类别不列出。",
    ]
    unassigned = kpis.tickets - int(data.units["tickets"].sum())
    if unassigned > 0:
        lines.append(
            f"另有{unassigned}件工单未能对应到{level_name}，计入总体数字，不计入分{level_name}统计。"
        )
    rejected = int(data.history["rows_rejected"].sum()) if not data.history.empty else 0
    if rejected:
        lines.append(
            f"历次数据加载中因格式或取值问题未入库的行共{rejected}行，明细见看板“数据管理”页。"
        )
    lines.append("本通报只含汇总数字，不含任何居民个人信息。")
    return lines


def _sources(data: BulletinData, config: Config, generated: datetime) -> list[str]:
    as_of = f"{data.as_of:%Y-%m-%d %H:%M}" if data.as_of else "未知"
    lines = [
        f"数据仓库版本：{data.version or '未知'}（数据截至{as_of}）；配置指纹 {config.fingerprint}；"
        f"生成时间 {generated:%Y-%m-%d %H:%M}。"
    ]
    history = data.history
    for _, row in history.head(MAX_SOURCES).iterrows():
        loaded_at = pd.Timestamp(row["loaded_at"])
        loaded = f"{loaded_at:%Y-%m-%d %H:%M}" if pd.notna(loaded_at) else ""
        lines.append(
            f"批次 {row['batch_id']}：{row['file_name']}（{loaded}，入库{int(row['rows_loaded'])}行）"
        )
    if len(history) > MAX_SOURCES:
        lines.append(
            f"另有更早的{len(history) - MAX_SOURCES}个批次，见看板“数据管理”页的加载记录。"
        )
    return lines


# --- charts ---------------------------------------------------------------------------------------


def _charts(
    data: BulletinData, ranking: pd.DataFrame, config: Config, level_name: str
) -> dict[str, Chart]:
    window = data.trend_window
    trend = data.trend
    month = data.filters
    highlight = Highlight(month.start, month.end, f"本月（{month.label()}）")
    trend_context = ChartContext(window.span_label(), int(trend["tickets"].sum()))
    ranked = ranking[ranking["is_ranked"]].copy()
    caption_ranked = f"图2 各{level_name}三率综合（参与排名的{len(ranked)}个）"
    if len(ranked) > MAX_CHART_UNITS:
        half = MAX_CHART_UNITS // 2
        ranked = pd.concat([ranked.head(half), ranked.tail(half)])
        caption_ranked = f"图2 三率综合前{half}名与后{half}名{level_name}（共{int(ranking['is_ranked'].sum())}个参与排名）"
    figures = {
        "chart_trend": (
            line_trend(
                trend,
                "month",
                {"tickets": "工单量"},
                title="近12个月工单量",
                context=trend_context,
                x_title="月份",
                y_title="工单量（件）",
                highlight=highlight,
            ),
            "图1 近12个月工单量走势",
        ),
        "chart_ranking": (
            bar_ranking(
                ranked,
                "unit",
                "three_rate_composite",
                title=f"各{level_name}三率综合",
                context=ChartContext(month.label(), int(ranked["callback_n"].sum())),
                value_title="三率综合",
                label_title=level_name,
                percent=True,
                decimals=1,
                red_black_size=config.red_black_list_size,
            ),
            caption_ranked,
        ),
        "chart_rates": (
            line_trend(
                trend,
                "month",
                {
                    "response_on_time_rate": "及时响应率",
                    "resolution_on_time_rate": "按时办结率",
                    "three_rate_composite": "三率综合",
                },
                title="近12个月及时率与三率综合",
                context=trend_context,
                x_title="月份",
                y_title="比率",
                percent=True,
                highlight=highlight,
            ),
            "图3 近12个月及时响应率、按时办结率与三率综合走势",
        ),
    }
    provenance = Provenance(
        filters_text=f"{month.label()} · {place_text(month.scope)}",
        sources=["见通报附件“数据来源”"],
        config_fingerprint=config.fingerprint,
    )
    charts: dict[str, Chart] = {}
    for name, (figure, caption) in figures.items():
        try:
            png = figure_to_image(figure, "png", provenance, "zh", width=1000)
        except ImageExportError as error:
            charts[name] = Chart(None, f"{caption}（图未能生成：{error}）")
            continue
        charts[name] = Chart(png, caption)
    return charts


# --- Word -----------------------------------------------------------------------------------------


def template_path(config: Config) -> Path:
    """The street's own template (config bulletin.template), else the shipped one."""
    return Path(config.bulletin_template) if config.bulletin_template else SHIPPED_TEMPLATE


def bulletin_docx(content: BulletinContent, template: Path | None = None) -> bytes:
    """The bulletin as a .docx: `template` (default: the shipped one) filled with `content`.

    Text is XML-escaped as it is filled in (autoescape), so a unit named "A&B" cannot break the
    document; a template whose tags are broken is refused with a message naming the file.
    """
    from docx.shared import Mm
    from docxtpl import DocxTemplate, InlineImage

    chosen = template or SHIPPED_TEMPLATE
    document = DocxTemplate(str(chosen))
    try:
        document.init_docx()
    except Exception as error:  # not a zip, not a Word document
        raise BulletinError(
            f"通报模板 {chosen} 无法打开（{type(error).__name__}）：请确认它是用 Word 或 WPS "
            "另存的 .docx 文件。"
        ) from error
    context = dict(content.fields)
    for name, chart in content.charts.items():
        context[name] = (
            InlineImage(document, io.BytesIO(chart.png), width=Mm(CHART_WIDTH_MM))
            if chart.png
            else ""
        )
        context[f"{name}_caption"] = chart.caption
    for name in ("chart_trend", "chart_ranking", "chart_rates"):
        context.setdefault(name, "")
        context.setdefault(f"{name}_caption", "")
    try:
        document.render(context, autoescape=True)
    except jinja2.TemplateError as error:
        raise BulletinError(
            f"通报模板 {chosen} 中的标记有误（{error}）：请对照内置模板检查 {{{{ }}}} 与 {{% %}} 标记。"
        ) from error
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


# --- PDF ------------------------------------------------------------------------------------------


def bulletin_html(content: BulletinContent) -> str:
    """The HTML the PDF is printed from: the same fields as the Word file, charts inlined."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    environment.filters["css_string"] = _css_string
    context = dict(content.fields)
    for name, chart in content.charts.items():
        context[name] = (
            "data:image/png;base64," + base64.b64encode(chart.png).decode("ascii")
            if chart.png
            else ""
        )
        context[f"{name}_caption"] = chart.caption
    for name in ("chart_trend", "chart_ranking", "chart_rates"):
        context.setdefault(name, "")
        context.setdefault(f"{name}_caption", "")
    return environment.get_template(HTML_TEMPLATE).render(context)


def _css_string(value: object) -> markupsafe.Markup:
    """A CSS string literal (inside <style>, HTML escapes are not decoded)."""
    text = str(value)
    escaped = "".join(ch if ch.isalnum() or ord(ch) > 127 else f"\\{ord(ch):X} " for ch in text)
    return markupsafe.Markup(f'"{escaped}"')


def bulletin_pdf(content: BulletinContent, timeout: float = PDF_TIMEOUT_SECONDS) -> bytes:
    """The bulletin as an A4 PDF, printed by Debian's Chromium."""
    return html_to_pdf(bulletin_html(content), "zh", timeout=timeout)
