"""Benchmark the govdash ticket loader against a naive pandas + DuckDB baseline.

Generates realistic ticket spreadsheets (DOMAIN.md §3) of N rows as .xlsx (one sheet, or one
sheet per month) and CSV (UTF-8 with BOM, and GBK), then times, each in a fresh subprocess:

* govdash: ``python -m govdash load FILE --db fresh.duckdb``
* baseline: ``pandas.read_excel(engine="openpyxl", sheet_name=None, header=1)`` (or
  ``pandas.read_csv``) + ``CREATE TABLE t AS SELECT * FROM df`` into a fresh DuckDB file

and reports wall time, rows/s, peak RSS of the process tree and the speed-up over the baseline,
against the project's targets. This is a measuring script, not a test: it asserts nothing.

Run with the project's virtualenv, e.g.::

    .venv/bin/python bench/bench_load.py --rows 100000
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
import pandas as pd
import psutil

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"

# Bump when the generated data changes, so cached inputs are regenerated.
GENERATOR_VERSION = 1
SEED = 20240101
YEAR = 2024

INPUTS: tuple[str, ...] = ("xlsx-single", "xlsx-monthly", "csv-utf8", "csv-gbk")
CSV_ENCODINGS = {"csv-utf8": "utf-8-sig", "csv-gbk": "gbk"}

# Project targets (see the brief / STACK.md).
TARGET_XLSX_ROWS_S = 100_000
TARGET_XLSX_SPEEDUP = 8.0
TARGET_CSV_ROWS_S = 500_000
# Issue 15, item 6: a CSV's data published sooner than the baseline's table is written, and at
# ≥ 0.8× the floor's speed (both at 1M rows).
TARGET_CSV_FLOOR_SHARE = 0.8
TARGET_PEAK_MB = 2048
TARGET_PEAK_ROWS = 1_000_000

COLUMNS: tuple[str, ...] = (
    "工单编号",
    "来源渠道",
    "诉求类型",
    "问题类别",
    "紧急程度",
    "社区",
    "小区",
    "楼栋",
    "物业企业",
    "受理时间",
    "首次响应时间",
    "到场时间",
    "办结时间",
    "状态",
    "是否有效回访",
    "是否联系",
    "是否解决",
    "满意度",
    "联系人",
    "联系电话",
    "房号",
    "问题描述",
)
DATE_COLUMNS: tuple[str, ...] = ("受理时间", "首次响应时间", "到场时间", "办结时间")

# Value sets exactly as DOMAIN.md §3 lists them, with plausible frequencies.
CHANNELS = {
    "物业前台/电话": 0.45,
    "小程序/APP": 0.25,
    "12345转办": 0.15,
    "网格员上报": 0.10,
    "环物委/业委会转办": 0.05,
}
REQUEST_TYPES = {"求助": 0.45, "咨询": 0.20, "投诉": 0.20, "建议": 0.10, "举报": 0.05}
CATEGORIES = {
    "水电维修": 0.20,
    "房屋渗漏": 0.08,
    "电梯": 0.07,
    "公共设施": 0.10,
    "环境卫生": 0.12,
    "绿化养护": 0.05,
    "安全秩序": 0.06,
    "停车管理": 0.10,
    "噪音扰民": 0.06,
    "装修管理": 0.04,
    "物业收费": 0.06,
    "其他": 0.06,
}
PRIORITIES = {"特急": 0.03, "紧急": 0.17, "一般": 0.80}
STATUSES = {
    "已办结": 0.85,
    "待回访": 0.04,
    "处理中": 0.04,
    "已派单": 0.02,
    "已延期": 0.015,
    "已退回": 0.005,
    "待受理": 0.03,
}
SATISFACTION = ("满意", "基本满意", "不满意")

DESCRIPTIONS = {
    "水电维修": (
        "卫生间水龙头漏水，需要上门维修",
        "家中突然停电，总闸跳闸合不上",
        "厨房下水道堵塞, 请尽快疏通",
        "楼道灯不亮已有三天",
    ),
    "房屋渗漏": (
        "卫生间顶部渗水，怀疑楼上防水层破损",
        "外墙渗水导致卧室墙面发霉",
        "下雨后阳台漏水严重",
    ),
    "电梯": ("电梯运行时有异响", "电梯困人，请立即处理", "电梯按键失灵, 无法到达本层"),
    "公共设施": ("单元门门禁损坏", "楼道扶手松动存在安全隐患", "小区健身器材损坏"),
    "环境卫生": ("垃圾桶满溢无人清运", "楼道内堆放杂物", "化粪池外溢气味难闻"),
    "绿化养护": ("树枝遮挡窗户影响采光", "草坪长期无人修剪", "枯树存在倒伏风险"),
    "安全秩序": ("小区门岗无人值守", "夜间有陌生人进出单元", "消防通道被占用"),
    "停车管理": ("车位被他人占用", "地下车库照明不足", "电动车在楼道充电"),
    "噪音扰民": ("楼上深夜噪音扰民", "广场舞音响声音过大", "施工噪音影响休息"),
    "装修管理": ("邻居装修时间超出规定", "装修垃圾乱堆乱放", "装修拆改承重墙"),
    "物业收费": ("物业费收费标准咨询", "对公摊水电费有异议", "停车费发票开具"),
    "其他": ("咨询快递柜使用方法", "建议增设充电桩", "宠物粪便无人清理"),
}

SURNAMES = list(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董"
    "袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江"
)
GIVEN = list(
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚华玉萍红建国志海燕文斌丹晨浩宇涵欣怡轩桐远琪"
)
COMMUNITIES = ("锦绣社区", "和平社区", "新华社区", "光华社区", "金沙社区", "玉林社区", "望江社区")
# fmt: off
COMPOUND_PREFIX = [
    "锦江", "金色", "阳光", "翠竹", "蓝天", "滨江", "丽景", "华府", "东方", "紫荆", "天府", "芙蓉",
    "银杏", "清水", "桂湖", "百花", "南湖", "北辰", "西城", "东篱", "望月", "听涛", "长青", "星河",
    "明珠", "凤凰", "龙泉", "瑞园", "怡和", "康桥",
]
# fmt: on
COMPOUND_SUFFIX = ("花园", "小区", "苑", "家园", "雅居", "名城", "公寓", "新村", "院落", "华庭")
COMPANY_STEM = (
    "万科",
    "保利",
    "龙湖",
    "蓝光",
    "华润",
    "中海",
    "金科",
    "嘉宝",
    "新希望",
    "招商",
    "绿城",
    "世纪城",
    "锦江",
    "青羊",
    "天府",
    "蜀都",
    "华西",
    "川投",
    "安居",
    "恒信",
    "鑫苑",
    "德商",
)

BASELINE_CODE = r"""
import json, sys, time
import duckdb
import pandas as pd
kind, path, db, encoding = sys.argv[1:5]
if kind.startswith("xlsx"):
    sheets = pd.read_excel(path, engine="openpyxl", sheet_name=None, header=1)
    df = pd.concat(list(sheets.values()), ignore_index=True)
else:
    df = pd.read_csv(path, header=1, encoding=encoding)
con = duckdb.connect(db)
con.execute("CREATE TABLE t AS SELECT * FROM df")
n = con.execute("SELECT count(*) FROM t").fetchone()[0]
con.close()
print(json.dumps({"rows_in_table": n}))
"""

# The floor: the fastest reader on this machine (STACK.md) straight into a DuckDB table, with no
# header search, cleaning, personal-data scrubbing, upsert or derived fields. No loader can beat
# it; govdash÷floor says how much of the reader's speed the full load keeps.
FLOOR_CODE = r"""
import codecs, json, os, sys, tempfile
import duckdb
kind, path, db, encoding = sys.argv[1:5]
con = duckdb.connect(db)
if kind.startswith("xlsx"):
    import fastexcel
    import pyarrow as pa
    reader = fastexcel.read_excel(path)
    sheets = [pa.Table.from_batches([reader.load_sheet(name, header_row=None,
                                                      dtypes="string").to_arrow()])
              for name in reader.sheet_names]
    arrow = pa.concat_tables(
        [t.rename_columns([f"c{i}" for i in range(t.num_columns)]) for t in sheets],
        promote_options="default")
    con.execute("CREATE TABLE t AS SELECT * FROM arrow")
else:
    source = path
    if encoding.lower() not in ("utf-8", "utf-8-sig"):
        source = tempfile.mkstemp(suffix=".csv")[1]
        with open(path, "rb") as raw, open(source, "wb") as out:
            decoder = codecs.getincrementaldecoder(encoding)()
            while chunk := raw.read(1 << 22):
                out.write(decoder.decode(chunk).encode("utf-8"))
    con.execute("CREATE TABLE t AS SELECT * FROM read_csv($p, header=false, delim=',', all_varchar=true, "
                "null_padding=true, strict_mode=false)", {"p": source})
    if source != path:
        os.remove(source)
n = con.execute("SELECT count(*) FROM t").fetchone()[0]
con.close()
print(json.dumps({"rows_in_table": n}))
"""


# --------------------------------------------------------------------------------------------
# Data generation
# --------------------------------------------------------------------------------------------


@dataclass
class TicketData:
    """Generated tickets, sorted by 受理时间.

    ``strings`` maps a column to an object array of str/None; ``dates`` maps a date column to a
    datetime64[m] array (NaT = blank) and ``date_text`` to an object array holding the text
    that replaces the real datetime in ~10% of the cells (None = write the real datetime).
    """

    n: int
    strings: dict[str, np.ndarray]
    dates: dict[str, np.ndarray]
    date_text: dict[str, np.ndarray]
    month: np.ndarray  # 1..12 per row, from 受理时间


def _pick(rng: np.random.Generator, choices: dict[str, float], n: int) -> np.ndarray:
    keys = np.array(list(choices), dtype=object)
    p = np.array(list(choices.values()), dtype=float)
    return keys[rng.choice(len(keys), size=n, p=p / p.sum())]


def _lognormal_minutes(rng: np.random.Generator, median: np.ndarray, sigma: float) -> np.ndarray:
    return np.maximum(1, np.ceil(median * rng.lognormal(0.0, sigma, size=median.shape)))


def _u(values: np.ndarray) -> np.ndarray:
    """Object/int array → numpy unicode array, for vectorised concatenation."""
    return np.asarray(values).astype(str)


def _build_registry(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Compounds with community, company (None for self-governed), households and buildings."""
    names = [p + s for p in COMPOUND_PREFIX for s in COMPOUND_SUFFIX]
    per_comm = rng.integers(5, 41, size=len(COMMUNITIES))
    total = int(per_comm.sum())
    chosen = rng.choice(len(names), size=total, replace=False)
    compound = np.array([names[i] for i in chosen], dtype=object)
    community = np.repeat(np.array(COMMUNITIES, dtype=object), per_comm)
    companies = np.array([f"成都{s}物业服务有限公司" for s in COMPANY_STEM], dtype=object)
    company = companies[rng.integers(0, len(companies), size=total)]
    company[rng.random(total) < 0.04] = None  # 老旧自治院落 without a property company
    households = np.clip(np.round(rng.lognormal(np.log(150), 0.9, size=total)), 30, 2000)
    buildings = np.clip(households // 40, 1, 40).astype(np.int64)
    return {
        "compound": compound,
        "community": community,
        "company": company,
        "households": households,
        "buildings": buildings,
    }


def _text_dates(values: np.ndarray, rng: np.random.Generator, share: float) -> np.ndarray:
    """Object array: for ~share of the non-blank cells, a text date in one of two styles."""
    out = np.full(values.shape, None, dtype=object)
    idx = np.flatnonzero(~np.isnat(values) & (rng.random(values.shape) < share))
    style = rng.random(idx.size) < 0.5
    for i, chinese, d in zip(idx, style, values[idx].astype("datetime64[s]").tolist(), strict=True):
        if chinese:
            out[i] = f"{d.year}年{d.month}月{d.day}日 {d.hour}:{d.minute:02d}"
        else:
            out[i] = f"{d.year}/{d.month}/{d.day} {d.hour}:{d.minute:02d}"
    return out


def generate_tickets(n: int, seed: int = SEED) -> TicketData:
    """Generate n tickets with values from the DOMAIN.md value sets, vectorised with numpy."""
    rng = np.random.default_rng(seed)
    reg = _build_registry(rng)

    # 受理时间: any day of the year, office hours more likely; sorted so IDs follow time.
    hour_w = np.array(
        [1, 0.5, 0.3, 0.3, 0.3, 0.5, 1, 3, 7, 9, 9, 8, 6, 6, 8, 8, 8, 7, 6, 5, 4, 3, 2, 1.5]
    )
    days = 366 if YEAR % 4 == 0 else 365
    minutes = (
        rng.integers(0, days, size=n) * 1440
        + rng.choice(24, size=n, p=hour_w / hour_w.sum()) * 60
        + rng.integers(0, 60, size=n)
    )
    minutes.sort()
    accepted = np.datetime64(f"{YEAR}-01-01T00:00", "m") + minutes.astype("timedelta64[m]")
    month = (accepted.astype("datetime64[M]").astype(np.int64) % 12 + 1).astype(np.int8)

    # 工单编号: GD + yyyymmdd + per-day sequence.
    day_idx = minutes // 1440
    first_of_day = np.searchsorted(day_idx, day_idx, side="left")
    seq = np.arange(n) - first_of_day + 1
    ymd = np.datetime_as_string(accepted.astype("datetime64[D]")).astype("U10")
    ids = np.char.add(np.char.add("GD", np.char.replace(ymd, "-", "")), np.char.zfill(_u(seq), 5))

    channel = _pick(rng, CHANNELS, n)
    rtype = _pick(rng, REQUEST_TYPES, n)
    category = _pick(rng, CATEGORIES, n)
    priority = _pick(rng, PRIORITIES, n)
    status = _pick(rng, STATUSES, n)

    hh = reg["households"]
    ci = rng.choice(len(hh), size=n, p=hh / hh.sum())
    building_no = (rng.random(n) * reg["buildings"][ci]).astype(np.int64) + 1
    unit_no = rng.integers(1, 4, size=n)
    floor_no = rng.integers(1, 33, size=n)
    room_no = rng.integers(1, 5, size=n)
    building = np.char.add(_u(building_no), "栋")
    room = np.char.add(
        np.char.add(np.char.add(_u(building_no), "-"), np.char.add(_u(unit_no), "-")),
        np.char.add(_u(floor_no), np.char.zfill(_u(room_no), 2)),
    )

    # Timing: response after acceptance, arrival after response, close after both.
    pri_resp = np.select([priority == "特急", priority == "紧急"], [3.0, 8.0], 15.0)
    response = accepted + _lognormal_minutes(rng, pri_resp, 0.9).astype("timedelta64[m]")
    arrival = response + _lognormal_minutes(rng, np.full(n, 25.0), 0.7).astype("timedelta64[m]")
    close_h = np.select([priority == "特急", priority == "紧急"], [3.0, 6.0], 20.0)
    close_h = np.where(rtype == "投诉", close_h * 2, close_h)
    close = accepted + _lognormal_minutes(rng, close_h * 60, 1.0).astype("timedelta64[m]")
    close = np.maximum(close, arrival + np.timedelta64(10, "m"))

    nat = np.datetime64("NaT", "m")
    closed = (status == "已办结") | (status == "待回访")
    response = np.where(status == "待受理", nat, response)
    no_visit = np.isin(status, ["待受理", "已派单", "已退回"]) | np.isin(rtype, ["咨询", "建议"])
    arrival = np.where(no_visit, nat, arrival)
    close = np.where(closed, close, nat)

    # Callback (回访) only for 已办结 tickets.
    valid_cb = (status == "已办结") & (rng.random(n) < 0.9)
    no_cb = (status == "已办结") & ~valid_cb
    yes_no = np.array(["是", "否"], dtype=object)
    cb_col = np.full(n, None, dtype=object)
    cb_col[valid_cb] = "是"
    cb_col[no_cb] = "否"
    contacted = np.full(n, None, dtype=object)
    contacted[valid_cb] = yes_no[(rng.random(n) >= 0.97)[valid_cb].astype(int)]
    contacted[no_cb] = "否"
    resolved_b = rng.random(n) < 0.88
    resolved = np.full(n, None, dtype=object)
    resolved[valid_cb] = yes_no[(~resolved_b[valid_cb]).astype(int)]
    sat_p_ok, sat_p_bad = np.array([0.80, 0.16, 0.04]), np.array([0.25, 0.30, 0.45])
    sat_idx = np.where(
        resolved_b, rng.choice(3, size=n, p=sat_p_ok), rng.choice(3, size=n, p=sat_p_bad)
    )
    satisfaction = np.full(n, None, dtype=object)
    satisfaction[valid_cb] = np.array(SATISFACTION, dtype=object)[sat_idx[valid_cb]]

    # 联系人: full name or 王先生/李女士 style.
    surname = np.array(SURNAMES)[rng.integers(0, len(SURNAMES), size=n)]
    given = np.char.add(
        np.array(GIVEN)[rng.integers(0, len(GIVEN), size=n)],
        np.where(rng.random(n) < 0.6, np.array(GIVEN)[rng.integers(0, len(GIVEN), size=n)], ""),
    )
    honorific = np.where(rng.random(n) < 0.5, "先生", "女士")
    contact = np.where(
        rng.random(n) < 0.3, np.char.add(surname, honorific), np.char.add(surname, given)
    )
    phone_num = (
        10_000_000_000
        + rng.integers(3, 10, size=n) * 1_000_000_000
        + rng.integers(0, 1_000_000_000, size=n)
    )
    phone = _u(phone_num)

    # 问题描述: a category template, sometimes prefixed with the room, rarely with a phone.
    desc = np.empty(n, dtype=object)
    for cat, texts in DESCRIPTIONS.items():
        sel = np.flatnonzero(category == cat)
        desc[sel] = np.array(texts, dtype=object)[rng.integers(0, len(texts), size=sel.size)]
    desc_u = _u(desc)
    with_room = rng.random(n) < 0.4
    desc_u = np.where(with_room, np.char.add(np.char.add(room, "："), desc_u), desc_u)
    with_phone = rng.random(n) < 0.03
    desc_u = np.where(with_phone, np.char.add(np.char.add(desc_u, "，回电"), phone), desc_u)

    strings: dict[str, np.ndarray] = {
        "工单编号": ids.astype(object),
        "来源渠道": channel,
        "诉求类型": rtype,
        "问题类别": category,
        "紧急程度": priority,
        "社区": reg["community"][ci],
        "小区": reg["compound"][ci],
        "楼栋": building.astype(object),
        "物业企业": reg["company"][ci],
        "状态": status,
        "是否有效回访": cb_col,
        "是否联系": contacted,
        "是否解决": resolved,
        "满意度": satisfaction,
        "联系人": contact.astype(object),
        "联系电话": phone.astype(object),
        "房号": room.astype(object),
        "问题描述": desc_u.astype(object),
    }
    dates = dict(zip(DATE_COLUMNS, (accepted, response, arrival, close), strict=True))
    date_text = {c: _text_dates(v, rng, 0.10) for c, v in dates.items()}
    return TicketData(n=n, strings=strings, dates=dates, date_text=date_text, month=month)


# --------------------------------------------------------------------------------------------
# Writers
# --------------------------------------------------------------------------------------------


def _col_letter(i: int) -> str:
    s = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        s = chr(65 + r) + s
    return s


_NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
_NS_R = 'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'
_XML_DECL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_CT = "application/vnd.openxmlformats-officedocument.spreadsheetml"


class _SharedStrings:
    """Shared-string table, as Excel writes it (every text cell is an index into it)."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.refs = 0

    def add(self, text: str) -> int:
        self.refs += 1
        i = self.index.get(text)
        if i is None:
            i = self.index[text] = len(self.index)
        return i

    def codes(self, values: np.ndarray) -> np.ndarray:
        """Indices for an object array of str/None (-1 = blank), vectorised via factorize."""
        codes, uniques = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=True)
        lookup = np.array(
            [self.index.setdefault(u, len(self.index)) for u in uniques] + [-1], dtype=np.int64
        )
        self.refs += int((codes >= 0).sum())
        return lookup[codes]  # code -1 picks the trailing -1

    def xml(self) -> Iterator[str]:
        yield f'{_XML_DECL}<sst {_NS} count="{self.refs}" uniqueCount="{len(self.index)}">'
        batch: list[str] = []
        for text in self.index:
            batch.append(f"<si><t>{escape(text)}</t></si>")
            if len(batch) >= 50_000:
                yield "".join(batch)
                batch.clear()
        yield "".join(batch) + "</sst>"


def _excel_serial(values: np.ndarray) -> np.ndarray:
    return (values - np.datetime64("1899-12-30T00:00", "m")) / np.timedelta64(1, "D")


def _column_cells(
    letter: str, rows: np.ndarray, sst_codes: np.ndarray, serials: np.ndarray | None
) -> list[str]:
    """One XML fragment per row for one column ('' for a blank cell)."""
    out: list[str] = []
    append = out.append
    if serials is None:
        for r, c in zip(rows.tolist(), sst_codes.tolist(), strict=True):
            append(f'<c r="{letter}{r}" t="s"><v>{c}</v></c>' if c >= 0 else "")
        return out
    for r, c, v in zip(rows.tolist(), sst_codes.tolist(), serials.tolist(), strict=True):
        if c >= 0:
            append(f'<c r="{letter}{r}" t="s"><v>{c}</v></c>')
        elif v == v:  # not NaN: a real datetime cell with the date style
            append(f'<c r="{letter}{r}" s="1"><v>{v!r}</v></c>')
        else:
            append("")
    return out


def _sheet_xml(
    data: TicketData, sel: slice, title: str, sst: _SharedStrings, chunk: int = 50_000
) -> Iterator[str]:
    ncol = len(COLUMNS)
    last_col = _col_letter(ncol - 1)
    nrows = sel.stop - sel.start
    last_row = nrows + 3  # title, header, data, footer
    yield (
        f'{_XML_DECL}<worksheet {_NS} {_NS_R}><dimension ref="A1:{last_col}{last_row}"/>'
        '<sheetViews><sheetView workbookViewId="0"><pane ySplit="2" topLeftCell="A3" '
        'activePane="bottomLeft" state="frozen"/></sheetView></sheetViews>'
        '<sheetFormatPr defaultRowHeight="15"/><sheetData>'
    )
    yield f'<row r="1"><c r="A1" t="s" s="2"><v>{sst.add(title)}</v></c></row>'
    yield (
        '<row r="2">'
        + "".join(
            f'<c r="{_col_letter(j)}2" t="s" s="2"><v>{sst.add(h)}</v></c>'
            for j, h in enumerate(COLUMNS)
        )
        + "</row>"
    )
    letters = [_col_letter(j) for j in range(ncol)]
    for start in range(sel.start, sel.stop, chunk):
        stop = min(start + chunk, sel.stop)
        rows = np.arange(start - sel.start + 3, stop - sel.start + 3)
        cols: list[list[str]] = []
        for j, name in enumerate(COLUMNS):
            if name in data.dates:
                codes = sst.codes(data.date_text[name][start:stop])
                serials = _excel_serial(data.dates[name][start:stop])
                cols.append(_column_cells(letters[j], rows, codes, serials))
            else:
                codes = sst.codes(data.strings[name][start:stop])
                cols.append(_column_cells(letters[j], rows, codes, None))
        yield "".join(
            f'<row r="{r}">{"".join(cells)}</row>'
            for r, cells in zip(rows.tolist(), zip(*cols, strict=True), strict=True)
        )
    f = last_row
    yield (
        f'<row r="{f}"><c r="A{f}" t="s"><v>{sst.add("合计")}</v></c>'
        f'<c r="B{f}" t="s"><v>{sst.add(f"共{nrows}条")}</v></c></row>'
        f'</sheetData><mergeCells count="1"><mergeCell ref="A1:{last_col}1"/></mergeCells>'
        '<pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" '
        'footer="0.3"/></worksheet>'
    )


_STYLES = (
    f"{_XML_DECL}<styleSheet {_NS}>"
    '<numFmts count="1"><numFmt numFmtId="164" formatCode="yyyy/m/d h:mm"/></numFmts>'
    '<fonts count="2"><font><sz val="11"/><name val="等线"/></font>'
    '<font><b/><sz val="11"/><name val="等线"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="3"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="常规" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
)


def write_xlsx(data: TicketData, path: Path, monthly: bool) -> None:
    """Write an Excel-like workbook: shared strings, date-styled serials, merged title row.

    openpyxl (3.1, no lxml here) writes ~2k rows/s of this data and only inline strings, so the
    workbook is written directly as Office Open XML, the way Excel itself lays it out.
    """
    if monthly:
        bounds = np.searchsorted(data.month, np.arange(1, 14), side="left")
        sheets = [
            (f"{m}月", f"{YEAR}年{m}月锦绣街道工单台账", slice(int(bounds[m - 1]), int(bounds[m])))
            for m in range(1, 13)
        ]
    else:
        sheets = [("工单台账", f"{YEAR}年锦绣街道工单台账", slice(0, data.n))]
    sst = _SharedStrings()
    tmp = path.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for k, (_, title, sel) in enumerate(sheets, start=1):
            with zf.open(f"xl/worksheets/sheet{k}.xml", "w", force_zip64=True) as fh:
                for part in _sheet_xml(data, sel, title, sst):
                    fh.write(part.encode("utf-8"))
        with zf.open("xl/sharedStrings.xml", "w", force_zip64=True) as fh:
            for part in sst.xml():
                fh.write(part.encode("utf-8"))
        zf.writestr("xl/styles.xml", _STYLES)
        sheet_entries = "".join(
            f'<sheet name="{name}" sheetId="{k}" r:id="rId{k}"/>'
            for k, (name, _, _) in enumerate(sheets, start=1)
        )
        zf.writestr(
            "xl/workbook.xml",
            f"{_XML_DECL}<workbook {_NS} {_NS_R}><bookViews><workbookView/></bookViews>"
            f"<sheets>{sheet_entries}</sheets></workbook>",
        )
        k = len(sheets)
        rels = "".join(
            f'<Relationship Id="rId{i}" Type="{_REL}/worksheet" Target="worksheets/sheet{i}.xml"/>'
            for i in range(1, k + 1)
        )
        rels += (
            f'<Relationship Id="rId{k + 1}" Type="{_REL}/styles" Target="styles.xml"/>'
            f'<Relationship Id="rId{k + 2}" Type="{_REL}/sharedStrings" '
            'Target="sharedStrings.xml"/>'
        )
        pkg = "http://schemas.openxmlformats.org/package/2006/relationships"
        zf.writestr(
            "xl/_rels/workbook.xml.rels",
            f'{_XML_DECL}<Relationships xmlns="{pkg}">{rels}</Relationships>',
        )
        zf.writestr(
            "_rels/.rels",
            f'{_XML_DECL}<Relationships xmlns="{pkg}"><Relationship Id="rId1" '
            f'Type="{_REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        )
        overrides = "".join(
            f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="{_CT}.worksheet+xml"/>'
            for i in range(1, k + 1)
        )
        zf.writestr(
            "[Content_Types].xml",
            f'{_XML_DECL}<Types xmlns="http://schemas.openxmlformats.org/package/2006/'
            'content-types"><Default Extension="rels" ContentType="application/'
            'vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" '
            'ContentType="application/xml"/><Override PartName="/xl/workbook.xml" '
            f'ContentType="{_CT}.sheet.main+xml"/>{overrides}'
            f'<Override PartName="/xl/styles.xml" ContentType="{_CT}.styles+xml"/>'
            '<Override PartName="/xl/sharedStrings.xml" '
            f'ContentType="{_CT}.sharedStrings+xml"/></Types>',
        )
    os.replace(tmp, path)


def write_csv(data: TicketData, path: Path, encoding: str) -> None:
    """Write a CSV the way Excel saves one: title line, header, rows, 合计 line, CRLF."""
    frame: dict[str, Any] = {}
    for name in COLUMNS:
        if name in data.dates:
            iso = pd.Series(data.dates[name]).dt.strftime("%Y-%m-%d %H:%M:%S")
            text = pd.Series(data.date_text[name], dtype=object)
            frame[name] = text.where(text.notna(), iso)
        else:
            frame[name] = data.strings[name]
    df = pd.DataFrame(frame, columns=list(COLUMNS))
    pad = "," * (len(COLUMNS) - 1)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding=encoding, newline="") as fh:
        fh.write(f"{YEAR}年锦绣街道工单台账{pad}\r\n")
        df.to_csv(fh, index=False, lineterminator="\r\n")
        fh.write(f"合计,共{data.n}条{pad[1:]}\r\n")
    os.replace(tmp, path)


def input_path(workdir: Path, rows: int, kind: str) -> Path:
    ext = "xlsx" if kind.startswith("xlsx") else "csv"
    return workdir / "inputs" / f"tickets-{rows}-{kind}-g{GENERATOR_VERSION}.{ext}"


def ensure_inputs(workdir: Path, rows: int, kinds: Sequence[str]) -> dict[str, float]:
    """Generate missing input files (cached by rows + layout); return seconds per generated kind."""
    missing = [k for k in kinds if not input_path(workdir, rows, k).exists()]
    times: dict[str, float] = {}
    if not missing:
        return times
    input_path(workdir, rows, missing[0]).parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    data = generate_tickets(rows)
    times["values"] = time.perf_counter() - t0
    print(f"  generated {rows:,} ticket values in {times['values']:.1f} s", flush=True)
    for kind in missing:
        path = input_path(workdir, rows, kind)
        t0 = time.perf_counter()
        if kind.startswith("xlsx"):
            write_xlsx(data, path, monthly=kind == "xlsx-monthly")
        else:
            write_csv(data, path, CSV_ENCODINGS[kind])
        times[kind] = time.perf_counter() - t0
        mb = path.stat().st_size / 2**20
        print(f"  wrote {path.name} ({mb:,.1f} MB) in {times[kind]:.1f} s", flush=True)
    return times


# --------------------------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------------------------


@dataclass
class Run:
    """One subprocess run."""

    seconds: float
    peak_tree_mb: float  # max over ~20 ms samples of the summed RSS of the process tree
    maxrss_mb: float  # kernel's ru_maxrss of the child (largest single process, exact)
    returncode: int
    timed_out: bool = False
    cpu_seconds: float = 0.0  # user + system CPU of the command (all its threads and children)
    stdout_tail: str = ""
    stderr_tail: str = ""
    published: float | None = None  # seconds to the marker line, when one was asked for

    @property
    def peak_mb(self) -> float:
        return max(self.peak_tree_mb, self.maxrss_mb)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


# Runs the measured command as its child and reports its wall time and ru_maxrss. A wrapper
# is needed because Linux carries a process's RSS high-water mark across fork + exec: a child
# forked straight from this (large) process would report at least this process's RSS.
# It also passes the command's progress (stderr) on line by line and notes when the first line
# holding `marker` came (govdash: its snapshot published), from the same start as the wall time.
WRAPPER_CODE = r"""
import json, resource, subprocess, sys, time
report, marker, cmd = sys.argv[1], sys.argv[2].encode(), sys.argv[3:]
t0 = time.perf_counter()
published = None
child = subprocess.Popen(cmd, stderr=subprocess.PIPE)
for line in child.stderr:
    if published is None and marker and marker in line:
        published = time.perf_counter() - t0
    sys.stderr.buffer.write(line)
rc = child.wait()
seconds = time.perf_counter() - t0
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(report, "w") as fh:
    json.dump({"seconds": seconds, "returncode": rc, "maxrss_kb": usage.ru_maxrss,
               "cpu_seconds": usage.ru_utime + usage.ru_stime, "published": published}, fh)
"""
# The line `govdash load` prints the moment its snapshot is published (govdash.etl.load's
# PUBLISHED): a reader sees the data from then on; what follows (the periods left for the
# settle, local copies, the pages' first views) only makes pages quicker. The baseline and the
# floor have nothing after their table is written, so their "published" is their end.
PUBLISHED_MARKER = "已发布为快照"


def _children_rss(proc: psutil.Process) -> int:
    """Summed RSS of all descendants of proc (the wrapper itself is left out)."""
    total = 0
    try:
        procs = proc.children(recursive=True)
    except psutil.Error:
        return 0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


def measure(cmd: Sequence[str], cwd: Path, log_dir: Path, timeout: float, marker: str = "") -> Run:
    """Run cmd in a fresh process: wall time, and peak RSS both from polling the process tree
    every 20 ms and from the kernel's ru_maxrss (via a small wrapper process); with `marker`,
    also the seconds until the first output line holding it."""
    log_dir.mkdir(parents=True, exist_ok=True)
    out_path, err_path = log_dir / "stdout.txt", log_dir / "stderr.txt"
    report_path = log_dir / "wrapper.json"
    report_path.unlink(missing_ok=True)
    peak = 0
    stop = threading.Event()
    timed_out = threading.Event()
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        t0 = time.perf_counter()
        popen = subprocess.Popen(
            [sys.executable, "-c", WRAPPER_CODE, str(report_path), marker, *cmd],
            cwd=cwd,
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        wrapper = psutil.Process(popen.pid)

        def poll() -> None:
            nonlocal peak
            while not stop.is_set():
                peak = max(peak, _children_rss(wrapper))
                stop.wait(0.02)

        def kill() -> None:
            timed_out.set()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(popen.pid, signal.SIGKILL)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        timer = threading.Timer(timeout, kill)
        timer.start()
        popen.wait()
        outer_seconds = time.perf_counter() - t0
        timer.cancel()
        stop.set()
        poller.join()
    try:
        report = json.loads(report_path.read_text())
    except (OSError, ValueError):  # killed, or the wrapper itself failed
        report = {"seconds": outer_seconds, "returncode": popen.returncode or -1, "maxrss_kb": 0}
    return Run(
        seconds=float(report["seconds"]),
        peak_tree_mb=peak / 2**20,
        maxrss_mb=int(report["maxrss_kb"]) / 1024,
        returncode=int(report["returncode"]),
        timed_out=timed_out.is_set(),
        cpu_seconds=float(report.get("cpu_seconds", 0.0)),
        published=report.get("published"),
        stdout_tail=_tail(out_path),
        stderr_tail=_tail(err_path),
    )


def resolve_db(db: Path) -> Path:
    """The real database file behind db (the loader may publish db as a symlink)."""
    return db.resolve(strict=False)


def count_tickets(db: Path) -> tuple[int | None, str]:
    """Row count of `tickets` in db opened read-only, or None and the reason: the lake the
    loader publishes beside `db` (its current snapshot), else an old single-file warehouse."""
    import duckdb

    from govdash.core.warehouse import connect_readonly, lake_of

    lake = lake_of(db)
    if lake.current_snapshot() is not None:
        con = connect_readonly(db)
        try:
            row = con.execute("SELECT count(*) FROM tickets").fetchone()
        finally:
            con.close()
        return (int(row[0]) if row else None), lake.describe()
    real = resolve_db(db)
    if not real.exists():
        return None, f"database file {db} (resolved {real}) does not exist"
    try:
        con = duckdb.connect(str(real), read_only=True)
        try:
            row = con.execute("SELECT count(*) FROM tickets").fetchone()
        finally:
            con.close()
    except Exception as exc:
        return None, f"cannot count tickets in {real}: {type(exc).__name__}: {exc}"
    return (int(row[0]) if row else None), str(real)


@dataclass
class Result:
    """Best-of-repeats result of one tool on one input."""

    input: str
    rows: int
    tool: str  # "govdash", "baseline" or "floor"
    status: str  # "ok", "failed", "skipped", "extrapolated"
    seconds: float | None = None
    rows_per_s: float | None = None
    peak_mb: float | None = None  # max over repeats (conservative)
    # least over repeats: on a shared machine CPU seconds say more than wall seconds
    cpu_seconds: float | None = None
    runs: list[dict[str, Any]] = field(default_factory=list)
    verified: bool | None = None
    note: str = ""
    # least over repeats: seconds until the data is published (govdash: its PUBLISHED_MARKER
    # line; the baseline and floor: their end, nothing comes after their table)
    published: float | None = None


def _warn(msg: str) -> None:
    bar = "!" * 78
    print(f"\n{bar}\n!!! {msg}\n{bar}\n", file=sys.stderr, flush=True)


def run_tool(
    tool: str, kind: str, rows: int, src: Path, workdir: Path, repeat: int, args: argparse.Namespace
) -> Result:
    """Run govdash or the baseline `repeat` times on src; keep the best time."""
    res = Result(input=kind, rows=rows, tool=tool, status="ok")
    best: Run | None = None
    for r in range(repeat):
        run_dir = workdir / "runs" / f"{tool}-{kind}-{rows}-{r}"
        shutil.rmtree(run_dir, ignore_errors=True)
        run_dir.mkdir(parents=True)
        db = run_dir / "fresh.duckdb"
        if tool == "govdash":
            cmd = [
                sys.executable,
                "-m",
                "govdash",
                "load",
                str(src),
                "--db",
                str(db),
                *args.loader_arg,
            ]
            marker = PUBLISHED_MARKER
        else:
            cmd = [
                sys.executable,
                "-c",
                BASELINE_CODE if tool == "baseline" else FLOOR_CODE,
                kind,
                str(src),
                str(db),
                CSV_ENCODINGS.get(kind, ""),
            ]
            marker = ""
        run = measure(cmd, PROJECT_ROOT, run_dir / "logs", args.timeout, marker)
        published = run.seconds if tool != "govdash" else run.published
        entry: dict[str, Any] = {
            "seconds": round(run.seconds, 3),
            "cpu_seconds": round(run.cpu_seconds, 3),
            "published_seconds": None if published is None else round(published, 3),
            "peak_tree_mb": round(run.peak_tree_mb, 1),
            "maxrss_mb": round(run.maxrss_mb, 1),
            "returncode": run.returncode,
            "timed_out": run.timed_out,
        }
        label = f"{tool:8} {kind:12} {rows:>9,} #{r + 1}"
        if not run.ok:
            why = "timed out" if run.timed_out else f"exit code {run.returncode}"
            entry["stderr_tail"] = run.stderr_tail
            res.runs.append(entry)
            res.status, res.note = "failed", why
            _warn(
                f"{label}: FAILED ({why}) after {run.seconds:.1f} s. stderr tail:\n"
                + (run.stderr_tail or "(empty)")
            )
            if not args.keep:
                shutil.rmtree(run_dir, ignore_errors=True)
            break
        if tool == "govdash":
            count, info = count_tickets(db)
            entry["tickets_in_db"] = count
            if count != rows:
                res.verified = False
                _warn(
                    f"{label}: loader exited 0 but tickets has {count} rows, expected "
                    f"{rows:,} ({info})"
                )
            elif res.verified is None:
                res.verified = True
        else:
            entry["stdout"] = run.stdout_tail
        res.runs.append(entry)
        print(
            f"  {label}: {run.seconds:8.2f} s  {rows / run.seconds:>10,.0f} rows/s  "
            f"CPU {run.cpu_seconds:7.2f} s  peak {run.peak_mb:7.0f} MB"
            + ("" if published is None else f"  published {published:.2f} s"),
            flush=True,
        )
        res.cpu_seconds = min(res.cpu_seconds or run.cpu_seconds, run.cpu_seconds)
        if published is not None:
            res.published = min(res.published or published, published)
        if best is None or run.seconds < best.seconds:
            best = run
        res.peak_mb = max(res.peak_mb or 0.0, run.peak_mb)
        if not args.keep:
            shutil.rmtree(run_dir, ignore_errors=True)
    if best is not None and res.status == "ok":
        res.seconds = best.seconds
        res.rows_per_s = rows / best.seconds
    return res


# --------------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------------


def _fmt(v: float | None, spec: str, width: int) -> str:
    return "-".rjust(width) if v is None else format(v, f">{width}{spec}")


def _counterpart(results: list[Result], g: Result, tool: str) -> Result | None:
    """`tool`'s result (baseline or floor) for g's input and size."""
    return next((b for b in results if (b.tool, b.input, b.rows) == (tool, g.input, g.rows)), None)


def speedup(
    results: list[Result], g: Result, against: str = "baseline"
) -> tuple[float | None, str]:
    """govdash rows/s ÷ baseline (or floor) rows/s for the same input and size, and its status."""
    b = _counterpart(results, g, against)
    if b is None or not b.rows_per_s or not g.rows_per_s:
        return None, ""
    return g.rows_per_s / b.rows_per_s, b.status


def published_ratio(results: list[Result], g: Result, against: str) -> float | None:
    """The other tool's seconds to its table ÷ govdash's to its published snapshot (above 1:
    govdash's data is readable sooner), for the same input and size."""
    b = _counterpart(results, g, against)
    if b is None or not b.published or not g.published:
        return None
    return b.published / g.published


def targets(results: list[Result]) -> list[dict[str, Any]]:
    """Each project target for each govdash measurement, met / not met / n/a."""
    out: list[dict[str, Any]] = []

    def add(g: Result, name: str, value: float | None, ok: bool | None, note: str = "") -> None:
        verdict = "n/a" if ok is None else ("met" if ok else "NOT MET")
        if g.status != "ok":
            verdict, note = "NOT MET", f"govdash run {g.status}"
        elif g.verified is False:
            note = (note + "; " if note else "") + "UNVERIFIED: tickets row count != rows"
        out.append(
            {
                "input": g.input,
                "rows": g.rows,
                "target": name,
                "value": value,
                "verdict": verdict,
                "note": note,
            }
        )

    for g in results:
        if g.tool != "govdash":
            continue
        rps = g.rows_per_s
        if g.input.startswith("xlsx"):
            add(
                g,
                f"xlsx ≥ {TARGET_XLSX_ROWS_S:,} rows/s end to end",
                rps,
                None if rps is None else rps >= TARGET_XLSX_ROWS_S,
            )
            ratio, bstatus = speedup(results, g)
            note = "baseline extrapolated" if bstatus == "extrapolated" else ""
            add(
                g,
                f"xlsx ≥ {TARGET_XLSX_SPEEDUP:g}× baseline",
                ratio,
                None if ratio is None else ratio >= TARGET_XLSX_SPEEDUP,
                note or ("no baseline" if ratio is None else ""),
            )
        else:
            add(
                g,
                f"CSV ≥ {TARGET_CSV_ROWS_S:,} rows/s end to end",
                rps,
                None if rps is None else rps >= TARGET_CSV_ROWS_S,
            )
            for against, share, name in (
                ("baseline", 1.0, "CSV published sooner than baseline"),
                (
                    "floor",
                    TARGET_CSV_FLOOR_SHARE,
                    f"CSV published ≥ {TARGET_CSV_FLOOR_SHARE:g}× floor",
                ),
            ):
                ratio = published_ratio(results, g, against)
                add(g, name, ratio, None if ratio is None else ratio >= share)
        if g.rows == TARGET_PEAK_ROWS:
            add(
                g,
                f"peak < {TARGET_PEAK_MB / 1024:g} GB at {TARGET_PEAK_ROWS:,} rows",
                g.peak_mb,
                None if g.peak_mb is None else g.peak_mb < TARGET_PEAK_MB,
            )
    return out


def print_report(results: list[Result], goals: list[dict[str, Any]], startup: float | None) -> None:
    print("\nResults (seconds: best of repeats, end to end incl. interpreter start-up;")
    print("published: least over repeats, from the start to the published snapshot, the others'")
    print("to their end; peak: max over repeats of the process tree's RSS)\n")
    head = (
        f"{'input':13} {'rows':>10} {'tool':9} {'seconds':>9} {'published':>9} {'rows/s':>11} "
        f"{'peak MB':>8} {'CPU s':>7} {'govdash÷baseline':>17} {'govdash÷floor':>14} "
        f"{'÷floor (CPU)':>12} {'publ.÷base':>10} {'publ.÷floor':>11}  note"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        ratio = floor = by_cpu = published_base = published_floor = ""
        if r.tool == "govdash":
            published_base, published_floor = (
                "-" if x is None else f"{x:.2f}×"
                for x in (published_ratio(results, r, t) for t in ("baseline", "floor"))
            )
            floor_run = _counterpart(results, r, "floor")
            if floor_run is not None and floor_run.cpu_seconds and r.cpu_seconds:
                by_cpu = f"{floor_run.cpu_seconds / r.cpu_seconds:.2f}×"
            x, bstatus = speedup(results, r)
            ratio = "-" if x is None else f"{x:.1f}×" + (" (extrap.)" if bstatus != "ok" else "")
            f, _ = speedup(results, r, "floor")
            floor = "-" if f is None else f"{f:.2f}×"
        notes = [r.status.upper()] if r.status != "ok" else []
        notes += [r.note] if r.note else []
        if r.tool == "govdash" and r.verified is False:
            notes.append("ROW COUNT MISMATCH in tickets")
        print(
            f"{r.input:13} {r.rows:>10,} {r.tool:9} {_fmt(r.seconds, '.2f', 9)} "
            f"{_fmt(r.published, '.2f', 9)} "
            f"{_fmt(r.rows_per_s, ',.0f', 11)} {_fmt(r.peak_mb, '.0f', 8)} "
            f"{_fmt(r.cpu_seconds, '.2f', 7)} {ratio:>17} {floor:>14} {by_cpu:>12} "
            f"{published_base:>10} {published_floor:>11}  " + ": ".join(notes)
        )
    if startup is not None:
        print(
            f"\n(fixed cost inside every figure: `python -c 'import pandas, duckdb'` takes "
            f"{startup:.2f} s)"
        )
    print("\nTargets\n")
    if not goals:
        print("  (none evaluated: govdash was not run)")
    for t in goals:
        v = t["value"]
        shown = "-" if v is None else (f"{v:.1f}" if v < 1000 else f"{v:,.0f}")
        note = f"  ({t['note']})" if t["note"] else ""
        print(
            f"  {t['verdict']:8} {t['target']:38} {t['input']:13} {t['rows']:>10,}  "
            f"value {shown}{note}"
        )


def write_json(payload: dict[str, Any], results_dir: Path) -> Path:
    results_dir.mkdir(parents=True, exist_ok=True)
    gi = results_dir / ".gitignore"
    if not gi.exists():
        gi.write_text("# benchmark outputs are machine-specific\n*.json\n!.gitignore\n")
    stem = f"load-{dt.date.today().isoformat()}"
    path = results_dir / f"{stem}.json"
    k = 2
    while path.exists():
        path = results_dir / f"{stem}-{k}.json"
        k += 1
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path


def environment() -> dict[str, Any]:
    import duckdb
    import openpyxl

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "pandas": pd.__version__,
        "numpy": np.__version__,
        "duckdb": duckdb.__version__,
        "openpyxl": openpyxl.__version__,
        "git_commit": commit or None,
    }


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument(
        "--rows",
        type=int,
        nargs="+",
        default=[100_000, 1_000_000],
        help="table sizes to benchmark (default: 100000 1000000)",
    )
    p.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "govdash-bench",
        help="where inputs are cached and databases built "
        "(default: <tmp>/govdash-bench, reused across runs)",
    )
    p.add_argument(
        "--keep", action="store_true", help="keep each run's database and logs under WORKDIR/runs"
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="runs per measurement, best kept (default: 3 below 1M rows, else 1)",
    )
    p.add_argument(
        "--skip-baseline-above",
        type=int,
        default=1_000_000,
        metavar="N",
        help="above N rows, do not run the slow baseline; extrapolate its rows/s "
        "from the largest measured size (default: 1000000)",
    )
    p.add_argument(
        "--inputs",
        nargs="+",
        choices=INPUTS,
        default=list(INPUTS),
        help="which inputs to benchmark (default: all)",
    )
    p.add_argument("--no-govdash", action="store_true", help="only generate + run the baseline")
    p.add_argument("--no-baseline", action="store_true", help="do not run the baseline")
    p.add_argument(
        "--no-floor",
        action="store_true",
        help="do not run the floor (the fastest reader alone, no cleaning)",
    )
    p.add_argument("--generate-only", action="store_true", help="only generate the inputs")
    p.add_argument(
        "--loader-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument appended to the govdash load command (repeatable)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=3600.0,
        help="seconds before a single run is killed (default: 3600)",
    )
    p.add_argument(
        "--results-dir",
        type=Path,
        default=RESULTS_DIR,
        help=f"where the JSON goes (default: {RESULTS_DIR})",
    )
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = dt.datetime.now().isoformat(timespec="seconds")
    sizes = sorted(set(args.rows))
    workdir: Path = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    import duckdb  # the loader's DuckDB is this interpreter's: say which, runs are per version

    print(f"workdir {workdir}; python {sys.executable}; duckdb {duckdb.__version__}")

    generation: dict[str, dict[str, float]] = {}
    for n in sizes:
        print(f"inputs for {n:,} rows", flush=True)
        generation[str(n)] = ensure_inputs(workdir, n, args.inputs)
    if args.generate_only:
        return 0

    startup_runs = [
        measure(
            [sys.executable, "-c", "import pandas, duckdb"],
            PROJECT_ROOT,
            workdir / "runs" / "startup",
            args.timeout,
        )
        for _ in range(3)
    ]
    ok_startup = [r.seconds for r in startup_runs if r.ok]
    startup = min(ok_startup) if ok_startup else None
    if not args.keep:
        shutil.rmtree(workdir / "runs" / "startup", ignore_errors=True)

    results: list[Result] = []
    for n in sizes:
        repeat = args.repeat or (3 if n < 1_000_000 else 1)
        print(f"\n== {n:,} rows, best of {repeat} ==", flush=True)
        for kind in args.inputs:
            src = input_path(workdir, n, kind)
            if not args.no_govdash:
                results.append(run_tool("govdash", kind, n, src, workdir, repeat, args))
            if not args.no_floor:
                results.append(run_tool("floor", kind, n, src, workdir, repeat, args))
            if args.no_baseline:
                continue
            if n <= args.skip_baseline_above:
                results.append(run_tool("baseline", kind, n, src, workdir, repeat, args))
                continue
            prior = [
                b
                for b in results
                if b.tool == "baseline" and b.input == kind and b.status == "ok" and b.rows_per_s
            ]
            if prior:
                ref = max(prior, key=lambda b: b.rows)
                assert ref.rows_per_s is not None
                results.append(
                    Result(
                        input=kind,
                        rows=n,
                        tool="baseline",
                        status="extrapolated",
                        seconds=n / ref.rows_per_s,
                        published=n / ref.rows_per_s,
                        rows_per_s=ref.rows_per_s,
                        note=f"not run: rows/s extrapolated from {ref.rows:,} rows",
                    )
                )
            else:
                results.append(
                    Result(
                        input=kind,
                        rows=n,
                        tool="baseline",
                        status="skipped",
                        note=f"not run (> --skip-baseline-above {args.skip_baseline_above:,})",
                    )
                )

    goals = targets(results)
    print_report(results, goals, startup)
    payload = {
        "benchmark": "load",
        "started": started,
        "environment": environment(),
        "generator_version": GENERATOR_VERSION,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "inputs": {
            str(n): {k: input_path(workdir, n, k).stat().st_size for k in args.inputs}
            for n in sizes
        },
        "generation_seconds": generation,
        "startup_seconds_import_pandas_duckdb": startup,
        "results": [asdict(r) for r in results],
        "targets": goals,
    }
    path = write_json(payload, args.results_dir)
    print(f"\nJSON written to {path}")
    if any(r.status == "failed" for r in results):
        print("some runs FAILED (see the warnings above)", file=sys.stderr)
    if any(r.verified is False for r in results):
        print("some govdash loads did NOT load every row (see the warnings above)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
