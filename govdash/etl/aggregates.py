"""Per-period ticket aggregates (agg_units): built by the loader, read by the pages' default views.

One row per period (every calendar month, quarter and year with tickets) × grouping × unit,
holding the figures the raw queries compute over the period's tickets — counts, the 三率
numerators and denominators, on-time counts and EXACT medians and P90s. They are computed by
the very SQL text the raw queries use (TICKET_AGGREGATES over the `scope` CTE below, imported
by govdash.analytics.queries.tickets), in one GROUPING SETS pass per period, so the two
cannot drift apart.

Quantiles cannot be combined from parts, so a read takes one stored row per result row: a
grouping is kept for each combination of place columns the pages filter and group by (the
scope's column, a single selected unit, the unit column of a table). The read side takes a
stored row only where its grouping is exactly the query's (govdash.analytics.queries.aggregated).

A load refreshes the periods it touched (`refresh`, called by the loader's finalize after the
derived fields): the months of the rows it changed and of the rows those changes reached —
repeat flags within the repeat window, places filled from a changed register, statuses moved
by the as-of time, tickets of files whose callback columns the 三率 base depends on — and their
quarters and years; a quarter or year too big to recompute within a load (LOAD_ROW_GROUPINGS)
is marked stale instead and read raw until `refresh_stale`, and so is a month much bigger than
the load (MONTH_LOAD_FACTOR); a period already stale waits for that settle too. The periods
are written together, a few statements for all of them (at a city's size each DuckLake
statement on agg_units costs ~0.1 s of catalog reads, whatever it does). The code
combinations (category, priority, channel) of each street and community and the place
combinations are kept for the sidebar's lists (agg_ticket_codes, agg_ticket_places): a load
adds those of the rows it wrote and drops those only the rows it replaced had. The tickets
open at each month's end (agg_open) serve the backlog figures, which otherwise read every
ticket ever accepted before the period's end: a load rewrites the rows of the tickets it
changed and adds the month ends the as-of time passed. Survey
answers are counted per wave, compound, item and score (agg_survey_answers, and
agg_survey_items with one column per score) for the waves a load changed. Without a record
of the changes, or when the stored aggregates were made by another definition, everything is
built again, in statements of at most STATEMENT_ROW_GROUPINGS tickets × groupings, so that
memory holds a bounded share of the tickets at a time; within a load (a first load, a
rebuild) the quarters and years over the load's budget are left stale for the settle there
too, so a city's first file publishes once its months are stored. Plain tables written with
DELETE + INSERT (no keys or constraints), so the same SQL works in a DuckLake.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import TypeVar

import duckdb

from govdash.etl.derive import COMBINATION_COLUMNS, TICKET_PLACES

_Part = TypeVar("_Part")

# --- the figures: one definition for the raw queries and the stored aggregates ---------------

# The 三率 base, per DOMAIN.md §4: tickets with a valid callback; where a sheet has no
# callback columns at all, closed tickets that carry a 满意度 instead. Decided per loaded file
# (batch): a file none of whose tickets has a 是否有效回访 value had no such column. So a
# warehouse mixing 12345 exports with front-desk sheets treats each by its own columns.
# (Per file rather than per sheet: grouping a million tickets by sheet name costs ~50 ms a
# query, by batch ~10 ms, and one file is one export format in practice.)
CALLBACK_BATCHES = """SELECT DISTINCT batch_id FROM tickets WHERE is_valid_callback IS NOT NULL"""


def scope_cte(where: str, batches: str = CALLBACK_BATCHES) -> str:
    """CTEs `callback_batches` and `scope`: the tickets matching `where` (over alias t) plus
    in_callback_base (the ticket counts towards the 三率) and is_callback_fallback (its file
    had no callback columns, so the fallback rule applies)."""
    return f"""callback_batches AS ({batches}),
    scope AS (
        SELECT t.*,
            CASE WHEN cb.batch_id IS NOT NULL THEN coalesce(t.is_valid_callback, false)
                 ELSE NOT t.is_open AND t.callback_satisfaction IS NOT NULL
            END AS in_callback_base,
            cb.batch_id IS NULL AS is_callback_fallback
        FROM tickets AS t
        LEFT JOIN callback_batches AS cb ON cb.batch_id = t.batch_id
        WHERE {where})"""


# Aggregates over `scope` shared by the KPI, trend and unit queries. Counts of contacted and
# resolved are NULL (not measured) when no ticket of the base records them at all.
TICKET_AGGREGATES = """
    count(*) AS tickets,
    count_if(is_repeat) AS repeat_tickets,
    quantile_cont(response_minutes, [0.5, 0.9]) AS response_quantiles,
    quantile_cont(resolution_hours, [0.5, 0.9]) AS resolution_quantiles,
    count_if(response_status = 'on_time') AS response_on_time,
    count_if(response_status IN ('on_time', 'late')) AS response_on_time_n,
    count_if(resolution_status = 'on_time') AS resolution_on_time,
    count_if(resolution_status IN ('on_time', 'late')) AS resolution_on_time_n,
    count_if(in_callback_base) AS callback_n,
    count_if(in_callback_base AND is_callback_fallback) AS callback_fallback_n,
    count_if(in_callback_base AND NOT is_callback_fallback) AS callback_recorded_n,
    CASE WHEN count_if(in_callback_base AND is_contacted IS NOT NULL) > 0
         THEN count_if(in_callback_base AND is_contacted) END AS contacted,
    CASE WHEN count_if(in_callback_base AND is_resolved IS NOT NULL) > 0
         THEN count_if(in_callback_base AND is_resolved) END AS resolved,
    count_if(in_callback_base AND callback_satisfaction = '满意') AS satisfied,
    count_if(in_callback_base AND callback_satisfaction = '基本满意') AS basic_satisfied"""

# What the percentile trend and the callback 满意度 trend read besides (same expressions as
# those queries use), and a street of the unit (unit_table's parent of a community).
EXTRA_AGGREGATES = """
    count(response_minutes) AS response_n,
    count(resolution_hours) AS resolution_n,
    count_if(in_callback_base AND callback_satisfaction = '不满意') AS dissatisfied,
    min(street) AS parent_street"""

UNPACK_QUANTILES = """* EXCLUDE (response_quantiles, resolution_quantiles),
    response_quantiles[1] AS response_median_minutes,
    response_quantiles[2] AS response_p90_minutes,
    resolution_quantiles[1] AS resolution_median_hours,
    resolution_quantiles[2] AS resolution_p90_hours"""

# The response-time distributions (govdash.analytics.queries.tickets.response_distribution):
# page value → the warehouse column it groups by, and the quantiles of each group.
DISTRIBUTION_COLUMNS = {
    "category": "category",
    "priority": "priority",
    "property_company": "property_company",
    "community": "community",
    "compound": "compound",
}
DISTRIBUTION_QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)
DISTRIBUTION_NAMES = tuple(f"p{round(q * 100)}" for q in DISTRIBUTION_QUANTILES)
BLANK_GROUP = "（未填写）"


def distribution_sql(column: str, where: str) -> str:
    """Per value of `column` (blank: $blank_group) of the tickets matching `where` (alias t):
    group_name, tickets, response_n, resolution_n and the quantiles of response minutes and
    resolution hours (response_p10 … resolution_p90)."""
    quantiles = ", ".join(str(q) for q in DISTRIBUTION_QUANTILES)
    unpack = ", ".join(
        f"{source}[{i + 1}] AS {prefix}_{name}"
        for source, prefix in (("rq", "response"), ("hq", "resolution"))
        for i, name in enumerate(DISTRIBUTION_NAMES)
    )
    return f"""SELECT group_name, tickets, response_n, resolution_n, {unpack}
    FROM (
        SELECT coalesce(t.{column}, $blank_group) AS group_name,
               count(*) AS tickets,
               count(t.response_minutes) AS response_n,
               count(t.resolution_hours) AS resolution_n,
               quantile_cont(t.response_minutes, [{quantiles}]) AS rq,
               quantile_cont(t.resolution_hours, [{quantiles}]) AS hq
        FROM tickets AS t WHERE {where} GROUP BY 1)"""


# The stored figures, in the table's order (schema.sql lists the same columns).
FIGURE_COLUMNS = (
    "tickets",
    "repeat_tickets",
    "response_on_time",
    "response_on_time_n",
    "resolution_on_time",
    "resolution_on_time_n",
    "callback_n",
    "callback_fallback_n",
    "callback_recorded_n",
    "contacted",
    "resolved",
    "satisfied",
    "basic_satisfied",
    "response_n",
    "resolution_n",
    "dissatisfied",
    "parent_street",
    "response_median_minutes",
    "response_p90_minutes",
    "resolution_median_hours",
    "resolution_p90_hours",
)

# --- the groupings ------------------------------------------------------------------------------

PLACE_COLUMNS = ("street", "community", "compound", "property_company")
PERIOD_KINDS = ("month", "quarter", "year")
# Grouping name → the place columns it groups by. Which the pages need: the district's,
# a street's and a community's own figures (KPIs, trends: the scope or one selected unit);
# the unit tables by community, compound and property company, for the whole district, within
# a street and within a community (the scope is a grouping column, not a sum of rows); a
# street's communities and a community's compounds (the drill-down). Quantiles do not add up,
# so a query is served only by a grouping equal to its columns.
GROUPINGS: dict[str, tuple[str, ...]] = {
    "district": (),
    "street": ("street",),
    "community": ("community",),
    "property_company": ("property_company",),
    "street_community": ("street", "community"),
    "compound": ("community", "compound"),
    "street_compound": ("street", "community", "compound"),
    "street_property_company": ("street", "property_company"),
    "community_property_company": ("community", "property_company"),
    "property_company_compound": ("property_company", "community", "compound"),
}
GROUPING_BY_COLUMNS = {frozenset(columns): name for name, columns in GROUPINGS.items()}

# Bumped whenever the stored figures or groupings change: a warehouse whose aggregates carry
# another version is built again at its next load (or only what it lacks: UPGRADES), and read
# raw until then.
# 2: parent_street is min(street), not any_value; 3: agg_ticket_codes; 4: agg_survey_items;
# 5: agg_open; 6: agg_repeats, agg_distributions; 7: agg_ticket_places
AGGREGATES_VERSION = "7"
VERSION_KEY = "aggregates_version"
AS_OF_KEY = "aggregates_as_of"
WINDOW_KEY = "repeat_window_days"  # written by govdash.etl.derive
# Memory: a statement holds every value of its quantiles once per grouping (~70 bytes a ticket
# and grouping, measured). A period's groupings are split into statements of at most this many
# tickets × groupings, so a year of a 10M-ticket city stays within the loader's memory limit.
STATEMENT_ROW_GROUPINGS = 2_000_000
# What a load may spend on quarters and years (tickets × groupings). A bigger quarter or year
# — a city's year holds millions of tickets, ~1 CPU second per million and grouping — is
# marked stale instead (agg_stale_periods): pages read it raw until `refresh_stale` recomputes
# it, which the publisher runs after the load (govdash.etl.settle: a second snapshot).
LOAD_ROW_GROUPINGS = 4_000_000
# A month is recomputed within the load when it costs at most MONTH_ROW_GROUPINGS (~1 CPU s),
# or at most MONTH_LOAD_FACTOR times the load's own changed rows (× groupings): a monthly
# file's month is stored before its snapshot is published, while a few corrections to a
# city's month (280,000 tickets: 2–3 CPU s, most of a 1,000-row load) publish at once and
# leave the month stale for the settle, so what a load costs follows its rows.
MONTH_ROW_GROUPINGS = 1_000_000
MONTH_LOAD_FACTOR = 20
# The periods whose district distributions are stored: a month's are read from its tickets
# (a month of a city is ~1M tickets, read in its own row groups).
DISTRIBUTION_KINDS = ("quarter", "year")


def _grouping_sets(names: tuple[str, ...]) -> str:
    sets = ["(period_start" + "".join(f", {c}" for c in GROUPINGS[n]) + ")" for n in names]
    return ", ".join(sets)


def _level_case(names: tuple[str, ...]) -> str:
    """The grouping name of a GROUPING SETS row, from which place columns it grouped by (only
    columns some of the sets group by may be asked about)."""
    if len(names) == 1:
        return f"'{names[0]}'"
    used = [c for c in PLACE_COLUMNS if any(c in GROUPINGS[n] for n in names)]
    cases = []
    for name in names:
        bits = " AND ".join(f"GROUPING({c}) = {0 if c in GROUPINGS[name] else 1}" for c in used)
        cases.append(f"WHEN {bits} THEN '{name}'")
    return "CASE " + " ".join(cases) + " END"


def aggregate_sql(kind: str, where: str, groupings: tuple[str, ...] = tuple(GROUPINGS)) -> str:
    """SELECT of agg_units rows of period `kind` and the named groupings (all by default) for
    the tickets matching `where` (alias t)."""
    if kind not in PERIOD_KINDS:
        raise ValueError(f"period kind must be one of {PERIOD_KINDS}, got {kind!r}")
    places = ", ".join(
        c if any(c in GROUPINGS[n] for n in groupings) else f"CAST(NULL AS VARCHAR) AS {c}"
        for c in PLACE_COLUMNS
    )
    # The callback files as _store_callback_batches kept them for this refresh: the same set
    # CALLBACK_BATCHES gives, without scanning every ticket once per statement.
    return f"""WITH {scope_cte(where, "SELECT batch_id FROM agg_callback_batches")},
    grouped AS (
        SELECT '{kind}' AS period_kind, period_start, {_level_case(groupings)} AS level,
               {places},
               {TICKET_AGGREGATES}, {EXTRA_AGGREGATES}
        FROM (SELECT *, CAST(date_trunc('{kind}', accepted_at) AS DATE) AS period_start
              FROM scope)
        GROUP BY GROUPING SETS ({_grouping_sets(groupings)}))
    SELECT {UNPACK_QUANTILES} FROM grouped"""


# --- survey answers ----------------------------------------------------------------------------

# Survey answers counted per wave × compound (as the response names its street, community and
# compound) × item × score, and respondents per wave × compound: what the per-compound item
# counts of govdash.analytics.queries.surveys sum, whatever the config's satisfied score.
WAVE_KEY = "r.wave_year * 100 + r.wave_index"  # over survey_responses AS r
SURVEY_RESPONDENTS_SQL = f"""SELECT {WAVE_KEY} AS wave_key, r.street, r.community, r.compound,
        count(*) AS respondents
    FROM survey_responses AS r
    WHERE r.wave_year IS NOT NULL AND r.wave_index IS NOT NULL AND {{where}}
    GROUP BY ALL"""
SURVEY_ANSWERS_SQL = f"""SELECT {WAVE_KEY} AS wave_key, r.street, r.community, r.compound,
        a.item, a.score, count(*) AS answers
    FROM survey_responses AS r JOIN survey_answers AS a ON a.response_id = r.response_id
    WHERE r.wave_year IS NOT NULL AND r.wave_index IS NOT NULL AND {{where}}
    GROUP BY ALL"""
# Survey scores are 1–5 (the loader's gd_score): one column of agg_survey_items per score.
SURVEY_SCORES = (1, 2, 3, 4, 5)
# agg_survey_items from the rows just written to agg_survey_answers (the same counts, one row
# per wave × compound × item): what govdash.analytics.queries.surveys reads.
SURVEY_ITEMS_SQL = f"""SELECT wave_key, street, community, compound, item,
        {
    ", ".join(
        f"CAST(coalesce(sum(answers) FILTER (WHERE score = {s}), 0) AS BIGINT) AS score_{s}"
        for s in SURVEY_SCORES
    )
}
    FROM agg_survey_answers WHERE {{where}}
    GROUP BY wave_key, street, community, compound, item"""


def _write_waves(con: duckdb.DuckDBPyConnection, wave_keys: list[int] | None) -> None:
    """Replace the survey counts of these waves (all waves when None)."""
    if wave_keys is None:
        con.execute("DELETE FROM agg_survey_respondents")
        con.execute("DELETE FROM agg_survey_answers")
        con.execute("DELETE FROM agg_survey_items")
        where, params = "TRUE", {}
    elif not wave_keys:
        return
    else:
        params = {"waves": wave_keys}
        con.execute("DELETE FROM agg_survey_respondents WHERE wave_key = ANY($waves)", params)
        con.execute("DELETE FROM agg_survey_answers WHERE wave_key = ANY($waves)", params)
        con.execute("DELETE FROM agg_survey_items WHERE wave_key = ANY($waves)", params)
        where = f"{WAVE_KEY} = ANY($waves)"
    con.execute(
        "INSERT INTO agg_survey_respondents BY NAME " + SURVEY_RESPONDENTS_SQL.format(where=where),
        params,
    )
    con.execute(
        "INSERT INTO agg_survey_answers BY NAME " + SURVEY_ANSWERS_SQL.format(where=where),
        params,
    )
    items_where = "TRUE" if wave_keys is None else "wave_key = ANY($waves)"
    con.execute(
        "INSERT INTO agg_survey_items BY NAME " + SURVEY_ITEMS_SQL.format(where=items_where),
        params,
    )


def touched_waves(con: duckdb.DuckDBPyConnection) -> list[int]:
    """The waves of the survey responses this load wrote, and the waves whose stored
    respondents no longer add up (a response moved to another wave, or went)."""
    rows = con.execute(
        f"""SELECT {WAVE_KEY} FROM survey_responses AS r
            WHERE r.response_id IN (SELECT response_id FROM derive_surveys)
              AND r.wave_year IS NOT NULL AND r.wave_index IS NOT NULL
        UNION
        SELECT coalesce(now.wave_key, stored.wave_key) FROM (
            SELECT {WAVE_KEY} AS wave_key, count(*) AS respondents FROM survey_responses AS r
            WHERE r.wave_year IS NOT NULL AND r.wave_index IS NOT NULL GROUP BY 1) AS now
        FULL OUTER JOIN (
            SELECT wave_key, sum(respondents) AS respondents FROM agg_survey_respondents
            GROUP BY 1) AS stored ON stored.wave_key = now.wave_key
        WHERE now.respondents IS DISTINCT FROM stored.respondents
        ORDER BY 1"""
    ).fetchall()
    return [int(row[0]) for row in rows]


# --- building and refreshing -----------------------------------------------------------------


def _info(con: duckdb.DuckDBPyConnection, key: str) -> str | None:
    row = con.execute("SELECT value FROM warehouse_info WHERE key = $key", {"key": key}).fetchone()
    return None if row is None or row[0] is None else str(row[0])


def current(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the stored aggregates are of this definition and the warehouse's as-of time
    (what the read side checks before using them: analytics.queries.aggregated)."""
    made_at = _info(con, AS_OF_KEY)
    return _info(con, VERSION_KEY) == AGGREGATES_VERSION and made_at == _info(con, "as_of")


def _set_info(con: duckdb.DuckDBPyConnection, key: str, value: str | None) -> None:
    con.execute("DELETE FROM warehouse_info WHERE key = $key", {"key": key})
    con.execute("INSERT INTO warehouse_info VALUES ($key, $value)", {"key": key, "value": value})


def _period_end(kind: str, start: date) -> date:
    months = {"month": 1, "quarter": 3, "year": 12}[kind]
    index = start.year * 12 + start.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _period_start(kind: str, day: date) -> date:
    if kind == "year":
        return date(day.year, 1, 1)
    if kind == "quarter":
        return date(day.year, (day.month - 1) // 3 * 3 + 1, 1)
    return date(day.year, day.month, 1)


def _bounds(kind: str, start: date) -> tuple[datetime, datetime]:
    return (
        datetime(start.year, start.month, 1),
        datetime.combine(_period_end(kind, start), datetime.min.time()),
    )


def _stored_sizes(
    con: duckdb.DuckDBPyConnection, periods: list[tuple[str, date]]
) -> dict[tuple[str, date], int]:
    """The periods' tickets before this load by their stored district rows (absent: a new or
    stale period). A load only adds what it changed, and the budget is a cost, not a figure."""
    starts = sorted({start for _, start in periods})
    rows = con.execute(
        """SELECT period_kind, period_start, max(tickets) FROM agg_units
        WHERE level = 'district' AND period_start BETWEEN $first AND $last
          AND period_start = ANY($starts)
        GROUP BY ALL""",
        {"first": starts[0], "last": starts[-1], "starts": starts},
    ).fetchall()
    return {(str(kind), start): int(size) for kind, start, size in rows if size is not None}


def _counted(
    con: duckdb.DuckDBPyConnection, periods: list[tuple[str, date]]
) -> dict[tuple[str, date], int]:
    """The periods' tickets now, in one statement (each count reads its own row groups)."""
    if not periods:
        return {}
    params: dict[str, object] = {}
    counts = []
    for index, (kind, start) in enumerate(periods):
        params[f"start{index}"], params[f"end{index}"] = _bounds(kind, start)
        counts.append(
            f"""(SELECT count(*) FROM tickets AS t
            WHERE t.accepted_at >= $start{index} AND t.accepted_at < $end{index})"""
        )
    found = con.execute("SELECT " + ", ".join(counts), params).fetchone()
    return {period: int(n) for period, n in zip(periods, found or (), strict=True)}


def _matching(periods: list[tuple[str, date]], params: dict[str, object]) -> str:
    """A WHERE condition on period_kind and period_start naming exactly these periods."""
    terms = []
    for kind, start in periods:
        index = len(params)
        params[f"kind{index}"], params[f"day{index}"] = kind, start
        terms.append(f"(period_kind = $kind{index} AND period_start = $day{index})")
    return " OR ".join(terms)


def _packed(parts: list[tuple[_Part, int]]) -> list[list[_Part]]:
    """The parts, each with its tickets × groupings, in order, in statements of at most
    STATEMENT_ROW_GROUPINGS of them (a bigger part in a statement of its own)."""
    statements: list[list[_Part]] = [[]]
    held = 0
    for part, weight in parts:
        if statements[-1] and held + weight > STATEMENT_ROW_GROUPINGS:
            statements.append([])
            held = 0
        statements[-1].append(part)
        held += weight
    return [statement for statement in statements if statement]


def _period_where(index: int, kind: str, start: date, params: dict[str, object]) -> str:
    """The condition on alias t's acceptance time for part `index` of a statement (the
    period's bounds added to `params`)."""
    params[f"start{index}"], params[f"end{index}"] = _bounds(kind, start)
    return f"t.accepted_at >= $start{index} AND t.accepted_at < $end{index}"


def _write_periods(
    con: duckdb.DuckDBPyConnection,
    periods: list[tuple[str, date]],
    budgets: dict[str, int] | None = None,
) -> None:
    """Replace the stored rows of these (kind, start) periods by their figures now.

    Within a load (`budgets`: tickets × groupings per kind) a period over its kind's budget is
    marked stale instead, and a period already stale is left for the settle. Each step is one
    statement for all the periods (a DuckLake statement on agg_units costs ~0.1 s of catalog
    reads at a city's size, whatever it does), and the periods' figures are computed in as
    few statements as the memory budget allows (STATEMENT_ROW_GROUPINGS)."""
    periods = sorted(set(periods))
    if not periods:
        return
    names = tuple(GROUPINGS)
    stale_now = {
        (str(kind), start)
        for kind, start in con.execute(
            "SELECT period_kind, period_start FROM agg_stale_periods"
        ).fetchall()
    }
    if budgets is not None:
        periods = [period for period in periods if period not in stale_now]
        if not periods:
            return
        # Known to be too big from the stored figures, without counting the tickets again.
        sizes = _stored_sizes(con, periods)
        sizes |= _counted(con, [period for period in periods if period not in sizes])
    else:
        sizes = _counted(con, periods)
    stale = [
        (kind, start)
        for kind, start in periods
        if budgets is not None and sizes[(kind, start)] * len(names) > budgets[kind]
    ]
    params: dict[str, object] = {}
    con.execute(f"DELETE FROM agg_units WHERE {_matching(periods, params)}", params)
    settled = [period for period in periods if period in stale_now]
    if settled:
        params = {}
        con.execute(f"DELETE FROM agg_stale_periods WHERE {_matching(settled, params)}", params)
    if stale:
        con.execute(
            "INSERT INTO agg_stale_periods SELECT unnest($kinds), unnest($starts)",
            {"kinds": [kind for kind, _ in stale], "starts": [start for _, start in stale]},
        )
    # (kind, start, groupings) parts of tickets × groupings each (a period over the statement
    # budget: its groupings split).
    parts: list[tuple[tuple[str, date, tuple[str, ...]], int]] = []
    for kind, start in periods:
        rows = sizes[(kind, start)]
        if rows == 0 or (kind, start) in stale:
            continue
        step = max(1, min(len(names), STATEMENT_ROW_GROUPINGS // rows))
        for first in range(0, len(names), step):
            part = names[first : first + step]
            parts.append(((kind, start, part), rows * len(part)))
    for statement in _packed(parts):
        params = {}
        selects = [
            f"SELECT * FROM ({aggregate_sql(kind, _period_where(i, kind, start, params), part)})"
            for i, (kind, start, part) in enumerate(statement)
        ]
        con.execute("INSERT INTO agg_units BY NAME " + " UNION ALL BY NAME ".join(selects), params)
    computed = {period: sizes[period] for period in periods if period not in stale}
    months = [start for kind, start in periods if kind == "month"]
    _write_repeats(con, months, [start for start in months if computed.get(("month", start))])
    _write_distributions(con, periods, computed)


def _write_distributions(
    con: duckdb.DuckDBPyConnection,
    periods: list[tuple[str, date]],
    sizes: dict[tuple[str, date], int],
) -> None:
    """Replace the district's response-time distributions of these periods' quarters and years
    (DISTRIBUTION_KINDS) by those of the ones in `sizes` (their tickets now; the others are
    stale), in statements of at most STATEMENT_ROW_GROUPINGS tickets × columns."""
    held = [period for period in periods if period[0] in DISTRIBUTION_KINDS]
    if not held:
        return
    params: dict[str, object] = {}
    con.execute(f"DELETE FROM agg_distributions WHERE {_matching(held, params)}", params)
    parts = [
        ((kind, start, by), sizes[(kind, start)])
        for kind, start in held
        if sizes.get((kind, start))
        for by in DISTRIBUTION_COLUMNS
    ]
    for statement in _packed(parts):
        params = {"blank_group": BLANK_GROUP}
        selects = []
        for index, (kind, start, by) in enumerate(statement):
            where = _period_where(index, kind, start, params)
            params[f"kind{index}"], params[f"day{index}"] = kind, start
            params[f"by{index}"] = by
            selects.append(
                f"""SELECT $kind{index} AS period_kind, $day{index} AS period_start,
                    $by{index} AS by_column, *
                FROM ({distribution_sql(DISTRIBUTION_COLUMNS[by], where)})"""
            )
        con.execute(
            "INSERT INTO agg_distributions BY NAME " + " UNION ALL BY NAME ".join(selects), params
        )


def build_distributions(con: duckdb.DuckDBPyConnection) -> None:
    """Every quarter's and year's distributions from all tickets (an upgrade's step; the
    periods waiting for the settle are left to it)."""
    rows = con.execute(
        """SELECT CAST(date_trunc('quarter', accepted_at) AS DATE), count(*) FROM tickets
        WHERE accepted_at IS NOT NULL GROUP BY 1"""
    ).fetchall()
    quarters = {start: int(n) for start, n in rows}
    sizes: dict[tuple[str, date], int] = {("quarter", s): n for s, n in quarters.items()}
    for start, n in quarters.items():
        year = ("year", date(start.year, 1, 1))
        sizes[year] = sizes.get(year, 0) + n
    stale = {
        (str(kind), start)
        for kind, start in con.execute("SELECT * FROM agg_stale_periods").fetchall()
    }
    con.execute("DELETE FROM agg_distributions")
    periods = sorted(sizes)
    _write_distributions(con, periods, {p: n for p, n in sizes.items() if p not in stale})


def refresh_stale(con: duckdb.DuckDBPyConnection) -> int:
    """Compute the periods a load left stale; returns how many there were."""
    stale = [
        (str(kind), start)
        for kind, start in con.execute(
            "SELECT period_kind, period_start FROM agg_stale_periods ORDER BY ALL"
        ).fetchall()
    ]
    _write_periods(con, stale)
    return len(stale)


def build_all(con: duckdb.DuckDBPyConnection, budgets: dict[str, int] | None = None) -> None:
    """Every period's aggregates from all tickets (a fresh warehouse, a rebuild, or no record
    of what a load changed). Within a load (`budgets`, as `refresh` gives them) a quarter or
    year over its budget is marked stale for the settle, as any load's is: a city's first
    file publishes without computing its years twice over in the load's transaction."""
    con.execute("DELETE FROM agg_units")
    con.execute("DELETE FROM agg_repeats")
    con.execute("DELETE FROM agg_distributions")
    con.execute("DELETE FROM agg_stale_periods")
    months = [
        row[0]
        for row in con.execute(
            "SELECT DISTINCT CAST(date_trunc('month', accepted_at) AS DATE) FROM tickets"
        ).fetchall()
    ]
    _store_callback_batches(con)
    _write_all(con, months, budgets)
    _write_combinations(con, None)
    _write_waves(con, None)
    build_open(con)
    _remember(con)


# The sidebar's lists, without a scan of every ticket: the code combinations (category,
# priority, channel) seen in each place the accounts' scopes name, and the place combinations.
# Their columns are among derive's COMBINATION_COLUMNS (what the record of replaced versions
# keeps, and what a load reads of the rows it wrote).
COMBINATIONS = {
    "agg_ticket_codes": ("street", "community", "category", "priority", "channel"),
    "agg_ticket_places": PLACE_COLUMNS,
}
assert all(set(columns) <= set(COMBINATION_COLUMNS) for columns in COMBINATIONS.values())


def _write_combinations(con: duckdb.DuckDBPyConnection, months: list[date] | None) -> None:
    """agg_ticket_codes and agg_ticket_places: the distinct combinations of their columns
    among the tickets — built anew from all tickets (None), or kept so after a load
    (`months`: the months it touched). Only the rows it wrote and the rows of compounds whose
    register rows it changed (places filled: derive's _fill_places) can hold a new
    combination, so only they are read, in those months. Only the versions it replaced
    (derive_old: a corrected place or code) and the rows whose blank places the register
    filled can have held a combination no ticket has any more: those combinations are looked
    for among the tickets holding their values, and dropped where none is found."""
    if months is None:
        _build_combinations(con, tuple(COMBINATIONS))
        return
    if not months:
        return
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE combinations_written AS
        SELECT DISTINCT {", ".join(COMBINATION_COLUMNS)} FROM tickets
        WHERE accepted_at >= $first AND accepted_at < $last + INTERVAL 1 MONTH
          AND (ticket_id IN (SELECT ticket_id FROM derive_changed)
               OR compound IN (SELECT compound FROM derive_compounds))""",
        {"first": min(months), "last": max(months)},
    )
    for table, columns in COMBINATIONS.items():
        names = ", ".join(columns)
        con.execute(
            f"""INSERT INTO {table}
            SELECT DISTINCT {names} FROM combinations_written
            EXCEPT SELECT {names} FROM {table}"""
        )
        # A stored combination with a blank the register fills, of a compound whose register
        # rows changed (any compound, for the codes: they do not name it).
        blank = " OR ".join(f"{c} IS NULL" for c in columns if c in TICKET_PLACES)
        compound = "compound IN (SELECT compound FROM derive_compounds)"
        filled = compound if "compound" in columns else "EXISTS (FROM derive_compounds)"
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE combinations_gone AS
            (SELECT {names} FROM derive_old
             UNION SELECT {names} FROM {table} WHERE ({blank}) AND {filled})
            EXCEPT SELECT {names} FROM combinations_written"""
        )
        gone = con.execute("SELECT count(*) FROM combinations_gone").fetchone()
        if not gone or not gone[0]:
            continue  # the usual load: replaced versions kept their places and codes
        same = " AND ".join(f"t.{c} IS NOT DISTINCT FROM g.{c}" for c in columns)
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE combinations_gone AS
            SELECT * FROM combinations_gone
            EXCEPT SELECT DISTINCT {", ".join(f"t.{c}" for c in columns)}
                FROM tickets t SEMI JOIN combinations_gone g ON {same}"""
        )
        same = " AND ".join(f"s.{c} IS NOT DISTINCT FROM g.{c}" for c in columns)
        con.execute(f"DELETE FROM {table} s USING combinations_gone g WHERE {same}")


def _build_combinations(con: duckdb.DuckDBPyConnection, tables: tuple[str, ...]) -> None:
    """These COMBINATIONS tables built anew from all tickets."""
    for table in tables:
        con.execute(f"DELETE FROM {table}")
        columns = ", ".join(COMBINATIONS[table])
        con.execute(f"INSERT INTO {table} SELECT DISTINCT {columns} FROM tickets")


def build_places(con: duckdb.DuckDBPyConnection) -> None:
    """agg_ticket_places from all tickets (what version 6 lacks)."""
    _build_combinations(con, ("agg_ticket_places",))


# --- the tickets open at each month's end -------------------------------------------------------

# What the backlog figures filter, count and list by (govdash.analytics.queries.aggregated).
OPEN_COLUMNS = (
    "ticket_id",
    "batch_id",
    "accepted_at",
    "closed_at",
    "is_open",
    "status",
    *COMBINATION_COLUMNS,  # the places and codes a page's selection filters by
    "resolution_limit_hours",
)
FIRST_END = "date_trunc('month', t.accepted_at) + INTERVAL 1 MONTH"


def open_until(as_of: str | None) -> datetime | None:
    """The last month end agg_open holds at this as-of time: the first after it. Every ticket
    is accepted and closed by the as-of time, so the tickets open at any later end are the
    ones open then."""
    if as_of is None:
        return None
    moment = datetime.fromisoformat(as_of)
    return _bounds("month", date(moment.year, moment.month, 1))[1]


def _open_sql(where: str, first: str = FIRST_END, source: str = "tickets") -> str:
    """SELECT of agg_open rows: each row of `source` (alias t) matching `where`, at every month
    end from `first` to $until at which it is open (Filters.backlog_where's definition: accepted
    before the end; closed at or after it, or not closed and open)."""
    columns = ", ".join(f"t.{column}" for column in OPEN_COLUMNS)
    return f"""SELECT unnest(range({first},
            CASE WHEN t.closed_at IS NULL THEN $until
                 ELSE least($until, date_trunc('month', t.closed_at)) END + INTERVAL 1 MONTH,
            INTERVAL 1 MONTH)) AS end_at, {columns}
        FROM {source} AS t
        WHERE ((t.closed_at IS NULL AND t.is_open) OR t.closed_at >= {FIRST_END})
          AND {where}"""


def build_open(con: duckdb.DuckDBPyConnection) -> None:
    """agg_open from all tickets (one pass: a ticket closed within its month has no row)."""
    con.execute("DELETE FROM agg_open")
    until = open_until(_info(con, "as_of"))
    if until is not None:
        con.execute("INSERT INTO agg_open BY NAME " + _open_sql("TRUE"), {"until": until})


def _refresh_open(con: duckdb.DuckDBPyConnection, previous: str | None) -> None:
    """agg_open after a load, from derive's record and the as-of time the stored figures were
    made at (`previous`): the rows of the tickets it changed (and of the compounds whose places
    it filled) are written anew, and when the as-of time moved into a later month the month
    ends it passed are added for the tickets still open at the last one stored (every other
    ticket was accepted after it: a changed one). What it reads is the load's rows and one
    month end's open tickets, never a city's history."""
    until = open_until(_info(con, "as_of"))
    before = open_until(previous)
    if until is None:
        con.execute("DELETE FROM agg_open")
        return
    found = con.execute("SELECT count(*) FROM derive_compounds").fetchone()
    compounds = "compound IN (SELECT compound FROM derive_compounds)"
    changed = "ticket_id IN (SELECT ticket_id FROM derive_changed)"
    gone = [changed, "end_at > $until"]
    if found and found[0]:
        gone.append(compounds)
    con.execute(f"DELETE FROM agg_open WHERE {' OR '.join(gone)}", {"until": until})
    if before is not None and before < until:
        con.execute(
            "INSERT INTO agg_open BY NAME "
            + _open_sql("t.end_at = $before", first="$first", source="agg_open"),
            {"until": until, "before": before, "first": _bounds("month", before.date())[1]},
        )
    first = con.execute("SELECT min(accepted_at) FROM derive_changed").fetchone()
    if first and first[0] is not None:
        con.execute(
            "INSERT INTO agg_open BY NAME " + _open_sql(f"t.accepted_at >= $first AND t.{changed}"),
            {"until": until, "first": first[0]},
        )
    if found and found[0]:
        con.execute(
            "INSERT INTO agg_open BY NAME " + _open_sql(f"t.{compounds} AND NOT t.{changed}"),
            {"until": until},
        )


# --- repeat requests per month ---------------------------------------------------------------

# The repeat-request counts (govdash.analytics.queries.tickets.repeat_requests) per month, by
# category and by compound, each within its street and community: counts add up, so a page
# sums the months of any whole-month period, for any street and community selection.
# The counts, over alias t: the raw query's (tickets.repeat_requests) and the stored ones.
REPEAT_COUNTS = """count(*) AS tickets, count(t.caller_hash) AS tickets_with_caller,
        count(*) FILTER (WHERE t.is_repeat) AS repeats"""
REPEATS_SQL = f"""SELECT t.month, grouping(t.category) = 1 AS is_compound_row,
        t.street, t.community, t.category, t.compound, {REPEAT_COUNTS}
    FROM (SELECT *, CAST(date_trunc('month', accepted_at) AS DATE) AS month
          FROM tickets WHERE {{where}}) AS t
    GROUP BY GROUPING SETS ((t.month, t.street, t.community, t.category),
                            (t.month, t.street, t.community, t.compound))"""


def _write_repeats(
    con: duckdb.DuckDBPyConnection, months: list[date] | None, computed: list[date] | None = None
) -> None:
    """Replace the repeat counts of these months (all months when None) by those of the
    `computed` ones (all of them by default): a month left stale waits for the settle, as its
    figures do (govdash.analytics.queries.aggregated reads its tickets meanwhile)."""
    if months is None:
        con.execute("DELETE FROM agg_repeats")
        con.execute("INSERT INTO agg_repeats BY NAME " + REPEATS_SQL.format(where="TRUE"))
        return
    if not months:
        return
    con.execute("DELETE FROM agg_repeats WHERE month = ANY($months)", {"months": months})
    months = months if computed is None else computed
    if not months:
        return
    params: dict[str, object] = {
        "months": months,
        "first": _bounds("month", min(months))[0],
        "end": _bounds("month", max(months))[1],
    }
    where = """accepted_at >= $first AND accepted_at < $end
        AND CAST(date_trunc('month', accepted_at) AS DATE) = ANY($months)"""
    con.execute("INSERT INTO agg_repeats BY NAME " + REPEATS_SQL.format(where=where), params)


def build_repeats(con: duckdb.DuckDBPyConnection) -> None:
    _write_repeats(con, None)


# Earlier versions whose stored figures are this version's but for some tables: what they
# lack, built from all tickets (an upgrade builds those, not a city's every period).
UPGRADES: dict[str, tuple[Callable[[duckdb.DuckDBPyConnection], None], ...]] = {
    "4": (build_open, build_repeats, build_distributions, build_places),
    "5": (build_repeats, build_distributions, build_places),
    "6": (build_places,),
}


def upgrade(con: duckdb.DuckDBPyConnection) -> None:
    """Stored figures of this definition: only what an earlier version lacks (UPGRADES) when
    its figures were made at the current as-of time, else all built anew."""
    version = _info(con, VERSION_KEY)
    if version in UPGRADES and _info(con, AS_OF_KEY) == _info(con, "as_of"):
        for step in UPGRADES[version]:
            step(con)
        _remember(con)
    else:
        build_all(con)


def _write_all(
    con: duckdb.DuckDBPyConnection, months: list[date], budgets: dict[str, int] | None = None
) -> None:
    """The months given, and their quarters and years (within a load, those over their
    kind's budget marked stale: `_write_periods`)."""
    periods = [("month", month) for month in months]
    for kind in ("quarter", "year"):
        periods += [(kind, start) for start in {_period_start(kind, m) for m in months}]
    _write_periods(con, periods, budgets)


def _callback_batches(con: duckdb.DuckDBPyConnection) -> list[int]:
    """The files whose callback columns decide the 三率 base now (one scan of the tickets)."""
    return sorted(int(row[0]) for row in con.execute(CALLBACK_BATCHES).fetchall())


# Above this many files reached by a load (a remap, another repeat window: every file), the
# tickets are scanned once rather than looked at file by file.
LOOKED_AT_FILES = 16


def _callback_batches_after_load(con: duckdb.DuckDBPyConnection, stored: list[int]) -> list[int]:
    """What _callback_batches gives, from the stored set of the previous snapshot and the files
    this load wrote tickets of or replaced tickets of (derive's record): only those can have
    gained or lost their callback values, and each is looked at in its own row groups (every
    file is written as files of its own), not by a scan of a city's tickets."""
    reached = [
        int(row[0])
        for row in con.execute(
            """SELECT DISTINCT batch_id FROM derive_changed WHERE batch_id IS NOT NULL
            UNION SELECT DISTINCT batch_id FROM derive_old WHERE batch_id IS NOT NULL"""
        ).fetchall()
    ]
    if len(reached) > LOOKED_AT_FILES:
        return _callback_batches(con)
    now = set(stored) - set(reached)
    for batch in reached:
        found = con.execute(
            """SELECT 1 FROM tickets WHERE batch_id = $batch AND is_valid_callback IS NOT NULL
            LIMIT 1""",
            {"batch": batch},
        ).fetchone()
        if found:
            now.add(batch)
    return sorted(now)


def _stored_callback_batches(con: duckdb.DuckDBPyConnection) -> list[int]:
    rows = con.execute("SELECT batch_id FROM agg_callback_batches").fetchall()
    return sorted(int(row[0]) for row in rows)


def _store_callback_batches(
    con: duckdb.DuckDBPyConnection, now: list[int] | None = None, stored: list[int] | None = None
) -> None:
    """The files whose callback columns decide the 三率 base now (read by aggregate_sql, and
    by the next refresh to see which files changed); rewritten only when they changed."""
    now = _callback_batches(con) if now is None else now
    if stored is not None and stored == now:
        return
    con.execute("DELETE FROM agg_callback_batches")
    if now:
        con.execute("INSERT INTO agg_callback_batches SELECT unnest($now)", {"now": now})


def _remember(con: duckdb.DuckDBPyConnection) -> None:
    """What the aggregates were made from: the definition and the as-of time (on which the
    statuses depend)."""
    _set_info(con, AS_OF_KEY, _info(con, "as_of"))
    _set_info(con, VERSION_KEY, AGGREGATES_VERSION)


def _recording(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether this connection holds govdash.etl.derive's record of the load's changes."""
    found = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name = 'derive_changed'"
    ).fetchone()
    return bool(found and found[0])


def touched_months(
    con: duckdb.DuckDBPyConnection,
    callback_now: list[int] | None = None,
    callback_stored: list[int] | None = None,
) -> list[date]:
    """The months whose tickets or derived fields this load may have changed (a superset of
    the months whose figures differ from the stored ones), from derive's record.

    `callback_now` and `callback_stored`: the files with callback columns now and as the
    stored figures were made (read here when not given). A source that cannot hold a row
    (no register change, no file whose callback columns moved) is not scanned at all: at a
    city's size each scan of the tickets is a cost that grows with the warehouse."""
    window = int(_info(con, WINDOW_KEY) or 0)
    previous = _info(con, AS_OF_KEY)
    current = _info(con, "as_of")
    now = _callback_batches(con) if callback_now is None else callback_now
    stored = _stored_callback_batches(con) if callback_stored is None else callback_stored
    sources = [
        # the changed rows, and the positions their old versions held
        "SELECT accepted_at FROM derive_changed",
        "SELECT accepted_at FROM derive_old",
        # a repeat flag changes within the window after a changed position: every month
        # from the position's to the window end's
        f"""SELECT unnest(range(first, last + INTERVAL 1 MONTH, INTERVAL 1 MONTH)) AS accepted_at
            FROM (SELECT DISTINCT date_trunc('month', accepted_at) AS first,
                         date_trunc('month', accepted_at + INTERVAL {window} DAY) AS last
                  FROM (SELECT accepted_at, caller_hash FROM derive_changed
                        UNION ALL SELECT accepted_at, caller_hash FROM derive_old)
                  WHERE caller_hash IS NOT NULL)""",
    ]
    params: dict[str, object] = {}
    compounds = con.execute("SELECT count(*) FROM derive_compounds").fetchone()
    if compounds and compounds[0]:
        # places filled from register rows this load changed
        sources.append(
            """SELECT accepted_at FROM tickets
            WHERE compound IN (SELECT compound FROM derive_compounds)"""
        )
    moved = sorted(set(now) ^ set(stored))
    if moved:
        # tickets of files whose callback columns appeared or went (their 三率 base moved)
        sources.append("SELECT accepted_at FROM tickets WHERE batch_id = ANY($moved)")
        params["moved"] = moved
    if previous != current and previous is not None and current is not None:
        # Statuses of rows not yet responded or closed whose limit falls between the as-of
        # time the aggregates were made at and the new one (late ⇄ not yet due). When it
        # advanced from there, only rows from derive's start on can have moved (a daily
        # load's case: a city's history is not read).
        found = con.execute(
            "SELECT min(since) FROM derive_advance WHERE previous = $previous",
            {"previous": previous},
        ).fetchone()
        bound = found[0] if found else None
        since = "" if bound is None else "accepted_at >= $since AND "
        sources.append(
            f"""SELECT accepted_at FROM tickets
            WHERE {since}((first_response_at IS NULL AND accepted_at
                       + to_seconds(CAST(response_limit_minutes * 60 AS BIGINT))
                   BETWEEN $low AND $high)
               OR (closed_at IS NULL AND accepted_at
                       + to_seconds(CAST(resolution_limit_hours * 3600 AS BIGINT))
                   BETWEEN $low AND $high))"""
        )
        low, high = sorted([datetime.fromisoformat(previous), datetime.fromisoformat(current)])
        params |= {"low": low, "high": high}
        if bound is not None:
            params["since"] = datetime.fromisoformat(str(bound))
    union = " UNION ALL ".join(f"({source})" for source in sources)
    rows = con.execute(
        f"""SELECT DISTINCT CAST(date_trunc('month', accepted_at) AS DATE) AS m
        FROM ({union}) WHERE accepted_at IS NOT NULL ORDER BY m""",
        params,
    ).fetchall()
    return [row[0] for row in rows]


def _load_budgets(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """What a load may spend on each kind of period (tickets × groupings): quarters and years
    LOAD_ROW_GROUPINGS; months MONTH_ROW_GROUPINGS, or MONTH_LOAD_FACTOR times the rows the
    load changed (derive's record), whichever is more."""
    changed = con.execute(
        "SELECT (SELECT count(*) FROM derive_changed) + (SELECT count(*) FROM derive_old)"
    ).fetchone()
    month_budget = max(
        MONTH_ROW_GROUPINGS, MONTH_LOAD_FACTOR * int(changed[0] if changed else 0) * len(GROUPINGS)
    )
    return {"month": month_budget, "quarter": LOAD_ROW_GROUPINGS, "year": LOAD_ROW_GROUPINGS}


def refresh(con: duckdb.DuckDBPyConnection) -> None:
    """Bring the stored figures up to date after a load's derived fields (govdash.etl.derive):
    the periods it touched and the open tickets of the rows it changed, or everything when
    there is no record of the changes or the stored aggregates were made by another definition
    (an earlier one of UPGRADES: what it lacks)."""
    version = _info(con, VERSION_KEY)
    if not _recording(con):
        build_all(con)
        return
    if version != AGGREGATES_VERSION and version not in UPGRADES:
        build_all(con, _load_budgets(con))  # a first load, a rebuild, an older definition
        return
    previous = _info(con, AS_OF_KEY)
    stored = _stored_callback_batches(con)
    now = _callback_batches_after_load(con, stored)
    months = touched_months(con, now, stored)  # before the callback files are stored anew
    _store_callback_batches(con, now, stored)
    _write_all(con, months, _load_budgets(con))
    _write_combinations(con, months)
    _write_waves(con, touched_waves(con))
    # An earlier version's figures: the tables it lacks are built from all tickets.
    lacking = UPGRADES.get(str(version), ())
    if build_open not in lacking:
        _refresh_open(con, previous)
    for step in lacking:
        step(con)
    _remember(con)
