"""Write a city-shaped world as the files a city's office would bring, for city-scale benches.

`govdash demo --tickets N` scales only the ticket count inside the demo's one street of 125
compounds (80,000 tickets a compound at 10M: not a city). This script lays many demo streets
side by side, each drawn by govdash/etl/demo.py's own generators (register, agreements,
tickets, surveys, evaluations), and writes:

- ``小区台账.xlsx``: the compound register of the whole city (one workbook, title row, footer,
  the spellings clerks use), with 区, 街道, 社区, 物业企业 and the agreement dates;
- ``工单_<year>.csv``: one UTF-8 CSV of tickets per year, streamed in ten-day windows, so memory
  stays flat whatever the count (about 1 GB at 10M tickets a year);
- ``满意度调查_<year>.csv``: the year's two survey waves (June, December), UTF-8 with BOM;
- ``年度考评评分_<year>.csv``: the December evaluation of every compound, community and
  property company: the first year wide (a column per indicator), later years long (指标/得分).

The shape (choose with the options; these are the defaults):

- Compounds: 2,000 per 1M tickets, in streets of 125 compounds (the demo street's size,
  7 communities each), up to 20,000 compounds (160 streets): what a city of ~10M tickets a year
  has. So 1M → 2,000 compounds (16 streets), 10M and 50M → 20,000 compounds (160 streets,
  1,120 communities); ~10 streets a district (16 districts at 20,000 compounds).
- Years: 2023–2025 (the demo's span) up to 10M tickets; above it five years, 2021–2025 (50M:
  the same city's five years, ~10M tickets a year). The as-of time is the demo's, 2025-12-31.
- Property companies: each district has the demo's 12 companies as district branches
  (``蜀安物业服务有限公司青羊分公司(模拟)``), with the demo's speeds and qualities (the last two
  weak) give or take a little; a branch manages compounds in every street of its district.
- Agreements (党建联建) as the demo draws them: ~28% of managed compounds before the first
  year, ~30% during the years (from two months after the start to three months before as-of),
  with the demo's planted effect after signing, so 治理成效 has an effect to estimate.
- Names are unique city-wide (the loader fills places by compound name): each street has a
  two-character prefix (锦江, 玉林, …) put before its communities' and compounds' names.
- No planted defects: every row loads (zero rejected rows); the demo's messy spellings remain
  (full-width digits, 是/√/Y/1, text dates in the register, score words in surveys).

Deterministic by seed: the same arguments give the same bytes (the register workbook's zip
entries carry the writing time, its cells do not).

    .venv/bin/python bench/make_city.py --tickets 10000000 --out /tmp/s11-city10M/files
    .venv/bin/python bench/make_city.py --tickets 50000000 --out /tmp/s11-city50M/files

It prints the files in load order (register, tickets, surveys, scores) and writes them to
``load-order.txt`` in the output folder.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import numpy as np

from govdash.etl import demo

STREET_COMPOUNDS = demo.COMPOUND_COUNT  # 125 compounds, 7 communities: the demo's street
COMPOUNDS_PER_MILLION = 2_000
CITY_COMPOUNDS = 20_000  # a city of ~10M tickets a year
STREETS_PER_DISTRICT = 10
FIVE_YEARS_ABOVE = 10_000_000  # more tickets than this: five years instead of the demo's three
WINDOW_DAYS = (1, 11, 21)  # ticket windows start on these days of each month

# Two characters make a street's prefix (锦江, 玉林, 桂溪, …): 16 × 12 = 192 streets.
_PREFIX_FIRST = "锦玉芙望桂红东西南北金银青紫华安"
_PREFIX_SECOND = "江林蓉城溪星湖桥苑山河源"
_DISTRICTS = (
    "锦江",
    "青羊",
    "金牛",
    "武侯",
    "成华",
    "高新",
    "天府",
    "龙泉",
    "新都",
    "温江",
    "双流",
    "郫都",
    "新津",
    "简阳",
    "彭州",
    "邛崃",
    "崇州",
    "金堂",
    "大邑",
    "蒲江",
)
_COMMUNITY_WORDS = (
    "锦绣",
    "玉林",
    "芙蓉",
    "望江",
    "桂溪",
    "红星",
    "东湖",
    "和平",
    "新华",
    "光明",
    "双桥",
    "永丰",
    "长春",
    "建设",
    "文化",
    "育才",
    "幸福",
    "民主",
    "团结",
    "春晓",
)
SUFFIX = "(模拟)"


def default_compounds(tickets: int) -> int:
    return min(max(round(tickets * COMPOUNDS_PER_MILLION / 1_000_000), 1), CITY_COMPOUNDS)


def default_years(tickets: int) -> int:
    return 5 if tickets > FIVE_YEARS_ABOVE else 3


def street_prefixes(count: int) -> list[str]:
    """Unique two-character prefixes; past 192 streets a number keeps them unique."""
    pairs = [a + b for b in _PREFIX_SECOND for a in _PREFIX_FIRST]
    return [
        pairs[i % len(pairs)] + (str(i // len(pairs)) if i >= len(pairs) else "")
        for i in range(count)
    ]


def district_name(index: int) -> str:
    base = _DISTRICTS[index % len(_DISTRICTS)]
    return f"{base}{index // len(_DISTRICTS) or ''}区{SUFFIX}"


def district_companies(
    rng: np.random.Generator, district: str
) -> tuple[tuple[str, float, float], ...]:
    """The demo's twelve companies as this district's branches, a little better or worse."""
    short = district.removesuffix(SUFFIX).removesuffix("区")
    speed = rng.lognormal(0.0, 0.05, len(demo.COMPANIES))
    quality = rng.normal(0.0, 0.05, len(demo.COMPANIES))
    return tuple(
        (f"{name.removesuffix(SUFFIX)}{short}分公司{SUFFIX}", s * ds, q + dq)
        for (name, s, q), ds, dq in zip(demo.COMPANIES, speed, quality, strict=True)
    )


def make_areas(rng: np.random.Generator, compounds: int) -> list[demo.Area]:
    """Streets of the demo's size, ~10 to a district; the last street takes the remainder."""
    streets = max(1, round(compounds / STREET_COMPOUNDS))
    sizes = [STREET_COMPOUNDS] * streets
    sizes[-1] = max(compounds - STREET_COMPOUNDS * (streets - 1), 1)
    districts = max(1, round(streets / STREETS_PER_DISTRICT))
    companies = [district_companies(rng, district_name(d)) for d in range(districts)]
    communities_per_street = len(demo.COMMUNITIES)
    areas = []
    for s, prefix in enumerate(street_prefixes(streets)):
        d = s * districts // streets
        words = rng.choice(len(_COMMUNITY_WORDS), communities_per_street, replace=False)
        areas.append(
            demo.Area(
                district=district_name(d),
                street=f"{prefix}街道{SUFFIX}",
                communities=tuple(f"{prefix}{_COMMUNITY_WORDS[w]}社区{SUFFIX}" for w in words),
                companies=companies[d],
                compound_count=sizes[s],
                name_prefix=prefix,
            )
        )
    return areas


def join_worlds(worlds: Sequence[demo._World], salts: np.ndarray) -> demo._World:
    """One world of many streets: indexes offset, ticket shares weighted by each street's
    households, company names shared by the streets of a district."""
    company_index: dict[str, int] = {}
    places: list[tuple[str, str, str]] = []
    community, company = [], []
    for world in worlds:
        community.append(world.community + len(places))
        places.extend(world.places)
        codes = np.array(
            [company_index.setdefault(n, len(company_index)) for n in world.company_names],
            dtype=np.int64,
        )
        company.append(np.where(world.company >= 0, codes[np.maximum(world.company, 0)], -1))
    company_names = list(company_index)
    households = np.concatenate([w.households for w in worlds])
    weight = np.concatenate([w.ticket_weight * w.households.sum() for w in worlds])

    def joined(name: str) -> np.ndarray:
        return np.concatenate([getattr(w, name) for w in worlds])

    first = worlds[0]
    return replace(
        first,
        names=[n for w in worlds for n in w.names],
        places=tuple(places),
        company_names=tuple(company_names),
        community=np.concatenate(community),
        company=np.concatenate(company).astype(np.int64),
        compound_type=joined("compound_type"),
        grid=joined("grid"),
        households=households,
        buildings=joined("buildings"),
        units=joined("units"),
        rooms_per_floor=joined("rooms_per_floor"),
        has_elevator=joined("has_elevator"),
        speed=joined("speed"),
        quality=joined("quality"),
        ticket_weight=weight / weight.sum(),
        signed_on=[d for w in worlds for d in w.signed_on],
        red_on=[d for w in worlds for d in w.red_on],
        has_agreement=joined("has_agreement"),
        is_red=joined("is_red"),
        signed_minute=joined("signed_minute"),
        key_offset=np.concatenate([[0], np.cumsum(households)[:-1]]).astype(np.int64),
        salts=salts,
    )


def ticket_windows(as_of: datetime, start: datetime) -> list[demo.Window]:
    """The demo's month windows cut at days 11 and 21: a third of a month's tickets at a time
    (ticket numbers run per day, so day-aligned windows keep them unique)."""
    windows: list[demo.Window] = []
    for year, month, first, end in demo._month_windows(as_of, start):
        cuts = [demo._minutes(datetime(year, month, day)) for day in WINDOW_DAYS] + [end]
        for begin, stop in itertools.pairwise(cuts):
            begin, stop = max(begin, first), min(stop, end)
            if stop > begin:
                windows.append((year, month, begin, stop))
    return windows


def write_csv(path: Path, header: Sequence[str], rows: Iterable[demo.Row], bom: bool) -> int:
    count = 0
    with path.open("w", encoding="utf-8-sig" if bom else "utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for row in rows:
            writer.writerow(["" if v is None else str(v) for v in row])
            count += 1
    return count


def write_surveys(
    out: Path, rng: np.random.Generator, worlds: Sequence[demo._World]
) -> tuple[list[Path], int]:
    """Each street's waves, drawn by the demo, into one CSV per year; response numbers run
    over the city within a wave (WJ2025A0000001, …)."""
    years = range(worlds[0].start.year, worlds[0].as_of.year + 1)
    paths = {year: out / f"满意度调查_{year}.csv" for year in years}
    handles = {
        year: path.open("w", encoding="utf-8-sig", newline="") for year, path in paths.items()
    }
    writers = {year: csv.writer(handle) for year, handle in handles.items()}
    numbers: dict[tuple[int, int], int] = {}
    try:
        for writer in writers.values():
            writer.writerow(demo.SURVEY_HEADER)
        for world, street_rng in zip(worlds, rng.spawn(len(worlds)), strict=True):
            for wave in demo._make_surveys(street_rng, world):
                for row in wave.rows:
                    number = numbers.get((wave.year, wave.half), 0) + 1
                    numbers[(wave.year, wave.half)] = number
                    row[0] = f"WJ{wave.year}{'AB'[wave.half]}{number:07d}"
                    writers[wave.year].writerow(["" if v is None else str(v) for v in row])
    finally:
        for handle in handles.values():
            handle.close()
    return list(paths.values()), sum(numbers.values())


def write_evaluations(
    out: Path, rng: np.random.Generator, world: demo._World
) -> tuple[list[Path], int]:
    """The demo's evaluations of the whole city (compounds, communities, companies)."""
    paths, rows = [], 0
    for i, result in enumerate(demo._make_evaluations(rng, world)):
        indicators = [name for name, _ in demo.EVALUATION_INDICATORS]
        header = [
            *demo.EVALUATION_KEYS,
            *(indicators if i == 0 else ("指标", "得分")),
            *demo.EVALUATION_ADJUSTMENTS,
        ]
        path = out / f"年度考评评分_{result.year}.csv"
        body = demo._wide_rows(result) if i == 0 else demo._long_rows(result)
        rows += write_csv(path, header, body, bom=True)
        paths.append(path)
    return paths, rows


def write_city(
    out: Path,
    tickets: int,
    seed: int = 2026,
    compounds: int | None = None,
    years: int | None = None,
) -> list[Path]:
    """Write the city's files under `out` and return them in load order."""
    compounds = compounds or default_compounds(tickets)
    years = years or default_years(tickets)
    as_of = demo.DEFAULT_AS_OF
    start = datetime(as_of.year - years + 1, 1, 1)
    out.mkdir(parents=True, exist_ok=True)
    layout_rng, world_rng, ticket_rng, survey_rng, evaluation_rng, mess_rng = np.random.default_rng(
        seed
    ).spawn(6)
    areas = make_areas(layout_rng, compounds)
    worlds = [
        demo._make_register(rng, as_of, area, start)
        for area, rng in zip(areas, world_rng.spawn(len(areas)), strict=True)
    ]
    city = join_worlds(worlds, world_rng.integers(1, 10**6, 6))
    started = time.perf_counter()
    register = demo._write_register(out / demo.REGISTER_FILE, city, mess_rng, place="全市")
    _say(
        f"register: {len(city.names):,} compounds, {len(areas)} streets, "
        f"{len(city.places):,} communities, {len(city.company_names)} companies, "
        f"{int(city.households.sum()):,} households",
        started,
    )

    windows = ticket_windows(as_of, start)
    counts = demo._split_tickets(ticket_rng, windows, tickets)
    ticket_files = demo._write_tickets_streamed(out, ticket_rng, city, windows, counts)
    _say(f"tickets: {tickets:,} in {len(ticket_files)} yearly files", started)
    surveys, responses = write_surveys(out, survey_rng, worlds)
    _say(f"surveys: {responses:,} responses", started)
    scores, score_rows = write_evaluations(out, evaluation_rng, city)
    _say(f"evaluation scores: {score_rows:,} rows", started)

    paths = [register, *ticket_files, *surveys, *scores]
    (out / "load-order.txt").write_text("".join(f"{p}\n" for p in paths), encoding="utf-8")
    return paths


def _say(message: str, started: float) -> None:
    print(f"[{time.perf_counter() - started:7.1f} s] {message}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tickets", type=int, required=True, help="tickets in all years")
    parser.add_argument("--out", type=Path, required=True, help="folder for the files")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--compounds", type=int, help="default: 2,000 per 1M tickets, ≤ 20,000")
    parser.add_argument("--years", type=int, help="default: 3 (2023–2025), 5 above 10M tickets")
    args = parser.parse_args(argv)
    if args.tickets < 0 or (args.compounds is not None and args.compounds < 1):
        parser.error("tickets must be ≥ 0 and compounds ≥ 1")
    paths = write_city(args.out, args.tickets, args.seed, args.compounds, args.years)
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
