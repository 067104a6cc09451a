"""Test warehouses for the read side: spreadsheets written here, loaded by the real loader.

Besides the sheets, this module computes what the warehouse should say about the tickets it
wrote, straight from the generated rows with pandas (the loader's and the read side's SQL are
not used), so the tests compare two independent computations.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

from govdash.core.config import Config, load_config
from govdash.core.warehouse import connect_readonly
from govdash.etl.load import load_paths
from tests.conftest import write_csv, write_xlsx

# --- the place register ---------------------------------------------------------------------

# street, community, compound, households, property company ("" = self-governed)
REGISTER = [
    ("甲街道", "东社区", "东一小区", 100, "安居物业"),
    ("甲街道", "东社区", "东二小区", 300, ""),
    ("甲街道", "西社区", "西一小区", 200, "安居物业"),
    ("甲街道", "西社区", "西二小区", 400, "乐家物业"),
    ("乙街道", "南社区", "南一小区", 500, "乐家物业"),
]
REGISTER_HEADER = ["街道", "社区", "小区名称", "户数", "物业企业"]


def register_frame() -> pd.DataFrame:
    return pd.DataFrame(
        REGISTER, columns=["street", "community", "compound", "households", "company"]
    )


# --- tickets ----------------------------------------------------------------------------------

TICKET_HEADER = [
    "工单编号",
    "来源渠道",
    "诉求类型",
    "问题类别",
    "紧急程度",
    "社区",
    "小区",
    "物业企业",
    "受理时间",
    "首次响应时间",
    "办结时间",
    "状态",
    "是否有效回访",
    "是否联系",
    "是否解决",
    "满意度",
    "联系电话",
    "问题描述",
]
CATEGORIES = ("水电维修", "电梯", "环境卫生", "停车管理", "噪音扰民", "物业收费")
CLOSED_STATUSES = ("待回访", "已办结", "已退回")
LAST_MOMENT = datetime(2025, 3, 31, 23, 0)  # the as-of time of the main warehouse
FIRST_MOMENT = datetime(2024, 12, 1, 0, 0)


@dataclass
class Ticket:
    ticket_id: str
    channel: str
    request_type: str
    category: str
    priority: str
    community: str
    compound: str
    company: str
    accepted_at: datetime
    responded_at: datetime | None
    closed_at: datetime | None
    status: str
    valid_callback: str  # 是 / 否 / ""
    contacted: str
    resolved: str
    satisfaction: str
    phone: str

    def row(self) -> list[Any]:
        def stamp(moment: datetime | None) -> str:
            return moment.strftime("%Y-%m-%d %H:%M") if moment else ""

        return [
            self.ticket_id,
            self.channel,
            self.request_type,
            self.category,
            self.priority,
            self.community,
            self.compound,
            self.company,
            stamp(self.accepted_at),
            stamp(self.responded_at),
            stamp(self.closed_at),
            self.status,
            self.valid_callback,
            self.contacted,
            self.resolved,
            self.satisfaction,
            self.phone,
            f"{self.category}问题，联系{self.phone}" if self.phone else f"{self.category}问题",
        ]


def generate_tickets(count: int = 420, seed: int = 20250101) -> list[Ticket]:
    """Random but reproducible tickets from December 2024 to March 2025."""
    rng = random.Random(seed)
    places = [(c, p, h, company) for _, c, p, h, company in REGISTER]
    weights = [h for _, _, h, _ in places]
    phones = [f"139{n:08d}" for n in range(40)]
    span_minutes = int((LAST_MOMENT - FIRST_MOMENT).total_seconds() // 60) - 600
    tickets: list[Ticket] = []
    for index in range(count):
        community, compound, _, company = rng.choices(places, weights)[0]
        accepted = FIRST_MOMENT + timedelta(minutes=rng.randrange(span_minutes))
        priority = rng.choices(("特急", "紧急", "一般"), (1, 2, 7))[0]
        request_type = rng.choices(("求助", "投诉", "咨询", "建议"), (6, 2, 1, 1))[0]
        responded: datetime | None = None
        if rng.random() < 0.85:
            delay = rng.choice((2, 4, 8, 12, 14, 20, 25, 29, 31, 45, 90, 300, 1500, 3000))
            responded = accepted + timedelta(minutes=delay)
        closed: datetime | None = None
        status = rng.choice(("处理中", "已派单", "已延期", "待受理"))
        if responded is not None and rng.random() < 0.75:
            closed = responded + timedelta(hours=rng.choice((1, 5, 20, 23, 30, 60, 71, 100, 200)))
            status = rng.choice(("已办结", "已办结", "待回访"))
        elif responded is not None and rng.random() < 0.1:
            status = "已办结"  # closed in the sheet, but no close time written
        cutoff = LAST_MOMENT - timedelta(hours=1)  # nothing happens after the last ticket
        if closed is not None and closed > cutoff:
            closed, status = None, "处理中"
        if responded is not None and responded > cutoff:
            responded, closed, status = None, None, "处理中"
        valid = contacted = resolved = satisfaction = ""
        if closed is not None:
            valid = rng.choices(("是", "否"), (8, 2))[0]
            contacted = rng.choices(("是", "否"), (9, 1))[0]
            resolved = rng.choices(("是", "否", ""), (7, 2, 1))[0]
            satisfaction = rng.choices(("满意", "基本满意", "不满意", ""), (6, 2, 1, 1))[0]
        tickets.append(
            Ticket(
                ticket_id=f"T{index:04d}",
                channel=rng.choice(("物业前台/电话", "小程序/APP", "12345转办", "网格员上报")),
                request_type=request_type,
                category=rng.choice(CATEGORIES),
                priority=priority,
                community=community,
                compound=compound,
                company=company,
                accepted_at=accepted,
                responded_at=responded,
                closed_at=closed,
                status=status,
                valid_callback=valid,
                contacted=contacted,
                resolved=resolved,
                satisfaction=satisfaction,
                phone=rng.choice(phones) if rng.random() < 0.9 else "",
            )
        )
    # Accepted just before the end and not answered yet: not yet due.
    tickets.append(
        Ticket(
            "T9998",
            "12345转办",
            "求助",
            "电梯",
            "一般",
            "西社区",
            "西一小区",
            "安居物业",
            LAST_MOMENT - timedelta(minutes=10),
            None,
            None,
            "已派单",
            "",
            "",
            "",
            "",
            "13900000001",
        )
    )
    # The last event of the data set, so the as-of time is known exactly.
    tickets.append(
        Ticket(
            "T9999",
            "小程序/APP",
            "求助",
            "水电维修",
            "一般",
            "南社区",
            "南一小区",
            "乐家物业",
            LAST_MOMENT - timedelta(minutes=50),
            LAST_MOMENT - timedelta(minutes=40),
            LAST_MOMENT,
            "已办结",
            "是",
            "是",
            "是",
            "满意",
            "",
        )
    )
    return tickets


def history_tickets(
    first: date = date(2024, 1, 1), last: date = date(2024, 11, 30)
) -> list[Ticket]:
    """A quiet year before generate_tickets(): a few closed, answered tickets every month from
    `first` to `last`, none open, none with a phone (so they change no backlog or repeat of
    the main months), for trends that need more than four months. Month m of the year gets
    3 + m % 4 tickets, so neighbouring months differ."""
    places = [(c, p, company) for _, c, p, _, company in REGISTER]
    tickets: list[Ticket] = []
    month = date(first.year, first.month, 1)
    while month <= last:
        for index in range(3 + month.month % 4):
            community, compound, company = places[(month.month + index) % len(places)]
            accepted = datetime(month.year, month.month, 3 + 5 * index, 9, 0)
            tickets.append(
                Ticket(
                    ticket_id=f"H{month:%Y%m}{index:02d}",
                    channel="物业前台/电话",
                    request_type="求助",
                    category=CATEGORIES[(month.month + index) % len(CATEGORIES)],
                    priority="一般",
                    community=community,
                    compound=compound,
                    company=company,
                    accepted_at=accepted,
                    responded_at=accepted + timedelta(minutes=10 + 15 * (index % 3)),
                    closed_at=accepted + timedelta(hours=5),
                    status="已办结",
                    valid_callback="是",
                    contacted="是",
                    resolved="是",
                    satisfaction=("满意", "基本满意", "不满意")[index % 3],
                    phone="",
                )
            )
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return tickets


def _limits(priority: str, request_type: str) -> tuple[float, float]:
    """The shipped SLA table (config.toml), first match wins: (respond minutes, close hours)."""
    if priority == "特急":
        return 5, 24
    if priority == "紧急":
        return 15, 24
    if request_type == "投诉":
        return 1440, 168
    return 30, 72  # 咨询 and the catch-all rule have the same limits


def expected_tickets(tickets: list[Ticket]) -> pd.DataFrame:
    """The generated tickets with every derived field, computed here from DOMAIN.md §4."""
    frame = pd.DataFrame([t.__dict__ for t in tickets])
    as_of = max(
        max(t.accepted_at, t.responded_at or t.accepted_at, t.closed_at or t.accepted_at)
        for t in tickets
    )
    registry = register_frame().set_index(["community", "compound"])
    frame["street"] = [
        registry.loc[(c, p), "street"] for c, p in zip(frame.community, frame.compound, strict=True)
    ]
    limits = [_limits(p, r) for p, r in zip(frame.priority, frame.request_type, strict=True)]
    frame["respond_limit"] = [limit[0] for limit in limits]
    frame["close_limit"] = [limit[1] for limit in limits]
    frame["response_minutes"] = (frame.responded_at - frame.accepted_at).dt.total_seconds() / 60
    frame["resolution_hours"] = (frame.closed_at - frame.accepted_at).dt.total_seconds() / 3600
    frame["is_open"] = frame.closed_at.isna() & ~frame.status.isin(CLOSED_STATUSES)

    def response_status(row: pd.Series) -> str | None:
        if pd.notna(row.responded_at):
            return "on_time" if row.response_minutes <= row.respond_limit else "late"
        due = row.accepted_at + timedelta(minutes=row.respond_limit)
        return "late" if due < as_of else "not_yet_due"

    def resolution_status(row: pd.Series) -> str | None:
        if pd.notna(row.closed_at):
            return "on_time" if row.resolution_hours <= row.close_limit else "late"
        if not row.is_open:
            return None
        due = row.accepted_at + timedelta(hours=row.close_limit)
        return "late" if due < as_of else "not_yet_due"

    frame["response_status"] = frame.apply(response_status, axis=1)
    frame["resolution_status"] = frame.apply(resolution_status, axis=1)
    # Repeats: the same phone and category within 30 days of that caller's previous ticket.
    frame = frame.sort_values(["accepted_at", "ticket_id"]).reset_index(drop=True)
    frame["is_repeat"] = False
    with_phone = frame[frame.phone != ""]
    gaps = with_phone.groupby(["phone", "category"])["accepted_at"].diff()
    frame.loc[with_phone.index, "is_repeat"] = (gaps <= timedelta(days=30)).to_numpy()
    frame.attrs["as_of"] = as_of
    return frame


def select(frame: pd.DataFrame, start: date, end: date, **places: list[str]) -> pd.DataFrame:
    """Rows accepted from `start` to `end` (inclusive) in the given places or categories."""
    chosen = frame[
        (frame.accepted_at >= datetime.combine(start, datetime.min.time()))
        & (frame.accepted_at < datetime.combine(end + timedelta(days=1), datetime.min.time()))
    ]
    for column, values in places.items():
        chosen = chosen[chosen[column].isin(values)]
    return chosen


# --- surveys ----------------------------------------------------------------------------------

SURVEY_HEADER = [
    "问卷编号",
    "调查批次",
    "社区",
    "小区",
    "调查日期",
    "客户服务",
    "总体满意度",
    "意见建议",
]


def survey_rows() -> list[list[Any]]:
    """Answers chosen for hand arithmetic (see test_surveys.py for the sums)."""
    rows: list[list[Any]] = []

    def add(
        wave: str,
        community: str,
        compound: str,
        day: str,
        service: Any,
        overall: Any,
        comment: str = "",
    ) -> None:
        rows.append(
            [f"Q{len(rows) + 1:04d}", wave, community, compound, day, service, overall, comment]
        )

    # 2024年下半年 (surveyed in November 2024): 东一小区, 总体 3 of 5 satisfied.
    for overall in (5, 4, 4, 2, 3):
        add("2024年下半年", "东社区", "东一小区", "2024-11-10", None, overall, "电梯维修太慢")
    # 2025年上半年 (surveyed 20 May – 10 June 2025).
    east_one = (5, 5, 4, 4, 4, 4, 5, 4, 2, 3)  # 8 of 10 satisfied, mean 4.0
    east_one_service = (5, 4, 3, 3, 2, 4, None, None, None, None)  # 3 of 6 satisfied
    comments = ["电梯维修太慢"] * 6 + ["绿化很好"] * 2 + ["停车位不够 13812345678", ""]
    for index, (overall, service) in enumerate(zip(east_one, east_one_service, strict=True)):
        day = "2025-05-20" if index < 5 else "2025-06-10"
        add("2025年上半年", "东社区", "东一小区", day, service, overall, comments[index])
    for overall in (4, 2, 2, 1):  # 东二小区: 1 of 4, mean 2.25
        add("2025年上半年", "东社区", "东二小区", "2025-05-21", 3, overall)
    west = [5] * 10 + [4] * 20 + [3] * 5 + [2] * 5  # 西一小区: 30 of 40, mean 3.875
    for index, overall in enumerate(west):
        add(
            "2025年上半年",
            "西社区",
            "西一小区",
            "2025-05-22",
            4,
            overall,
            "电梯故障多" if index < 5 else "",
        )
    # 2023年下半年, undated: it spans July–December 2023 by the half-year rule.
    for overall in ("满意", "非常满意"):
        add("2023年下半年", "南社区", "南一小区", "", None, overall)
    return rows


# --- building warehouses --------------------------------------------------------------------


@contextmanager
def clean_environment() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        for name in ("GOVDASH_CONFIG", "GOVDASH_HASH_KEY", "GOVDASH_DB"):
            patch.delenv(name, raising=False)
        yield


def shipped_config() -> Config:
    with clean_environment():
        return load_config()


def build(folder: Path, files: list[Path]) -> Path:
    """Load files with the real loader into folder/w.duckdb; every file must load."""
    db = folder / "w.duckdb"
    with clean_environment():
        report = load_paths(files, db, load_config())
    errors = [f.error for f in report.files if f.error]
    assert not errors, errors
    assert all(f.rows_rejected == 0 for f in report.files), [f.reasons for f in report.files]
    return db


def build_main(folder: Path) -> tuple[Path, list[Ticket]]:
    tickets = generate_tickets()
    files = [
        write_xlsx(folder / "台账.xlsx", {"台账": [REGISTER_HEADER, *[list(r) for r in REGISTER]]}),
        write_csv(folder / "工单.csv", [TICKET_HEADER, *[t.row() for t in tickets]], "utf-8-sig"),
        write_xlsx(folder / "问卷.xlsx", {"问卷": [SURVEY_HEADER, *survey_rows()]}),
    ]
    return build(folder, files), tickets


def open_db(db: Path) -> duckdb.DuckDBPyConnection:
    return connect_readonly(db)
