"""治理成效 from the warehouse: the register, the compound and compound-month panels, and the
report the page shows (estimators in metrics/effect.py)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date

import duckdb
import numpy as np
import pandas as pd

from govdash.analytics.metrics.effect import (
    EFFECT_METRICS,
    ESTIMATED,
    METRICS_BY_NAME,
    NEVER,
    NO_DATA,
    ROBUST,
    SURVEY_BIN_MONTHS,
    TOO_SMALL,
    Diagnostics,
    EffectMetric,
    Estimate,
    EventStudy,
    difference_in_differences,
    panel_sample,
    robust_effect,
    size_band,
    stratified_difference,
    twfe_event_study,
    window_rows,
)
from govdash.analytics.queries.aggregated import (
    AggregateRows,
    aggregate_rows,
    aggregates_ready,
)
from govdash.analytics.queries.filters import Filters, bound_parameters, run_query
from govdash.analytics.queries.surveys import wave_keys_in_period
from govdash.analytics.queries.tickets import (
    FIGURE_INPUTS,
    TICKET_AGGREGATES,
    UNPACK_QUANTILES,
    finish_ticket_stats,
    ticket_scope_cte,
)
from govdash.core.config import Config
from govdash.etl.aggregates import FIGURE_COLUMNS

# Page value → (flag column, date column) of `compounds`. Identifiers in SQL come only from here.
TREATMENTS: dict[str, tuple[str, str]] = {
    "agreement": ("has_joint_agreement", "agreement_signed_on"),
    "red_pm": ("is_red_pm", "red_pm_certified_on"),
}

# --- the warehouse side: register, panels ------------------------------------------------------


def treatment_columns(treatment: str) -> tuple[str, str]:
    if treatment not in TREATMENTS:
        raise ValueError(f"treatment must be one of {sorted(TREATMENTS)}, got {treatment!r}")
    return TREATMENTS[treatment]


def register_coverage(con: duckdb.DuckDBPyConnection, treatment: str) -> tuple[int, int, int]:
    """(compounds, with the yes/no column filled, with a date) over the whole register."""
    flag, day = treatment_columns(treatment)
    row = con.execute(
        f"SELECT count(*), count({flag}), count({day}) FROM compounds"  # constants only
    ).fetchone()
    return (0, 0, 0) if row is None else (int(row[0]), int(row[1]), int(row[2]))


def compound_register(
    con: duckdb.DuckDBPyConnection, filters: Filters, treatment: str
) -> pd.DataFrame:
    """Register compounds of the place selection: unit (community/compound), community,
    compound, compound_type, households, is_flagged (yes/no column), treated_on (date)."""
    flag, day = treatment_columns(treatment)
    where, params = filters.place_where("reg")
    sql = f"""SELECT reg.community || '/' || reg.compound AS unit, reg.community, reg.compound,
               reg.compound_type, reg.households, reg.{flag} AS is_flagged,
               reg.{day} AS treated_on
        FROM compounds AS reg WHERE {where}
        ORDER BY unit"""
    frame = run_query(con, sql, params)
    frame["is_flagged"] = frame["is_flagged"].astype("boolean")
    frame["treated_on"] = pd.to_datetime(frame["treated_on"])
    frame["households"] = frame["households"].astype("Float64").astype(float)
    return frame


# The register's compounds of a place selection with their row in compound_register's frame
# (`position`; the same order: by unit), for joins that tell compounds apart by a number.
def _register_positions(where: str) -> str:
    return f"""SELECT reg.community, reg.compound,
            row_number() OVER (ORDER BY reg.community || '/' || reg.compound) - 1 AS position
        FROM compounds AS reg WHERE {where}"""


# Tickets matched to the register: by compound name within the ticket's community (a ticket
# without a community matches by name alone).
_REGISTER_JOIN = """JOIN compounds AS reg ON reg.compound = scope.compound
        AND (scope.community IS NULL OR reg.community = scope.community)"""


def compound_ticket_figures(
    con: duckdb.DuckDBPyConnection, filters: Filters, config: Config, by_month: bool
) -> pd.DataFrame:
    """Ticket figures per register compound (× month when by_month) of the filters' tickets:
    unit, [month,] tickets and the ticket metrics of finish_ticket_stats.

    Read from the stored per-compound figures (agg_units) where they answer the filters
    exactly (each register compound taking exactly one stored row a month), else from the
    tickets."""
    frame = _stored_compound_figures(con, filters, by_month)
    if frame is None:
        frame = _raw_compound_figures(con, filters, by_month)
    return finish_ticket_stats(frame, config)


def _raw_compound_figures(
    con: duckdb.DuckDBPyConnection, filters: Filters, by_month: bool
) -> pd.DataFrame:
    scope, params = ticket_scope_cte(filters)
    place_where, place_params = filters.place_where("reg")
    month = "date_trunc('month', scope.accepted_at) AS month," if by_month else ""
    sql = f"""WITH {scope},
    stats AS (
        SELECT reg.community || '/' || reg.compound AS unit, {month} {TICKET_AGGREGATES}
        FROM scope {_REGISTER_JOIN}
        WHERE {place_where}
        GROUP BY ALL)
    SELECT {UNPACK_QUANTILES} FROM stats ORDER BY ALL"""
    return run_query(con, sql, params | place_params)


# The stored figures the raw query above selects, in its order (TICKET_AGGREGATES, then the
# unpacked quantiles).
_COMPOUND_FIGURES = tuple(
    column
    for column in FIGURE_COLUMNS
    if column not in ("response_n", "resolution_n", "dissatisfied", "parent_street")
)


def _stored_compound_figures(
    con: duckdb.DuckDBPyConnection, filters: Filters, by_month: bool
) -> pd.DataFrame | None:
    """The raw query's rows from agg_units, or None where the stored rows cannot give them
    exactly: filters they do not answer, or a register compound that two stored rows join
    (tickets without a community matched by name beside the compound's own): quantiles do
    not add up."""
    stored = _stored_compound_rows(con, filters, by_month)
    if stored is None:
        return None
    place_where, place_params = filters.place_where("reg")
    month = "CAST(a.period_start AS TIMESTAMP) AS month," if by_month else ""
    figures = ", ".join(f"a.{column}" for column in _COMPOUND_FIGURES)
    sql = f"""SELECT reg.community || '/' || reg.compound AS unit, {month} {figures}
        FROM agg_units AS a JOIN compounds AS reg ON reg.compound = a.compound
            AND (a.community IS NULL OR reg.community = a.community)
        WHERE {stored.where} AND {place_where}
        ORDER BY ALL"""
    return run_query(con, sql, stored.params | place_params)


def _stored_compound_rows(
    con: duckdb.DuckDBPyConnection, filters: Filters, by_month: bool, rows_checked: bool = False
) -> AggregateRows | None:
    """The agg_units rows that give each register compound's figures exactly (each register
    compound joining at most one stored row a period), or None. rows_checked: the caller
    finds a register compound with two rows in a period in what it reads (the monthly panel:
    its compounds and months strictly increasing), so the stored rows without a community
    that could meet one are not looked for here (a city's 1.2M compound-months read again)."""
    stored = aggregate_rows(con, filters, ("community", "compound"), per_month=by_month)
    if stored is None:
        return None
    # Two stored rows reach one register compound only where the register repeats a compound
    # or tickets without a community share a register compound's name (the filters fix every
    # other place column of the stored rows). Where the nameless tickets are a compound's only
    # ones in a period, their row is its figures, as the raw query counts them.
    nameless = (
        "0"
        if rows_checked
        else f"""(SELECT count(*) FROM agg_units AS a WHERE {stored.where}
                   AND a.community IS NULL AND a.compound IN (SELECT compound FROM compounds))"""
    )
    sql = f"""SELECT (SELECT count(*) FROM compounds)
                   - (SELECT count(*) FROM (SELECT DISTINCT community, compound FROM compounds)),
                   {nameless}"""
    meeting = con.execute(sql, bound_parameters(sql, stored.params)).fetchone()
    if meeting is None or any(meeting):
        return None
    return stored


def compound_survey_figures(
    con: duckdb.DuckDBPyConnection,
    filters: Filters,
    config: Config,
    wave_keys: list[int] | None,
    positions: bool = False,
) -> pd.DataFrame:
    """Overall-item survey satisfaction per register compound × wave: unit, wave_key,
    wave_start (first day surveyed, else the half-year's first day), n, satisfied,
    survey_satisfaction_rate. wave_keys None = every wave. positions: `position` (the
    compound's row in compound_register's frame) instead of `unit`, for a register whose
    units are all filled and distinct (one group per compound either way, in the same order)."""
    place_where, params = filters.place_where("reg")
    unit = "reg.community || '/' || reg.compound AS unit"
    register = "compounds AS reg"
    if positions:
        unit = "reg.position"
        register = f"({_register_positions(place_where)}) AS reg"
        place_where = "TRUE"
    wave_condition = "TRUE" if wave_keys is None else "w.wave_key = ANY($wave_keys)"
    if aggregates_ready(con):  # the answers counted per wave × compound × item × score
        counts = """CAST(sum(r.answers) AS BIGINT) AS n,
               CAST(coalesce(sum(r.answers) FILTER (WHERE r.score >= $satisfied_min_score), 0)
                    AS BIGINT) AS satisfied"""
        answers = """FROM agg_survey_answers AS r
        JOIN waves AS w ON w.wave_key = r.wave_key AND r.item = $overall_item"""
    else:
        counts = """count(*) AS n,
               count(*) FILTER (WHERE a.score >= $satisfied_min_score) AS satisfied"""
        answers = """FROM survey_responses AS r
        JOIN waves AS w ON w.wave_year = r.wave_year AND w.wave_index = r.wave_index
        JOIN survey_answers AS a ON a.response_id = r.response_id AND a.item = $overall_item"""
    sql = f"""WITH waves AS (
            SELECT wave_year, wave_index, wave_year * 100 + wave_index AS wave_key,
                   coalesce(min(surveyed_on), make_date(wave_year,
                            CASE WHEN wave_index >= 2 THEN 7 ELSE 1 END, 1)) AS wave_start
            FROM survey_responses
            WHERE wave_year IS NOT NULL AND wave_index IS NOT NULL
            GROUP BY wave_year, wave_index)
        SELECT {unit}, w.wave_key, w.wave_start,
               {counts}
        {answers}
        JOIN {register} ON reg.compound = r.compound
            AND (r.community IS NULL OR reg.community = r.community)
        WHERE {wave_condition} AND {place_where}
        GROUP BY ALL ORDER BY ALL"""
    params = params | {
        "satisfied_min_score": config.satisfied_min_score,
        "overall_item": config.overall_item,
    }
    if wave_keys is not None:
        params["wave_keys"] = list(wave_keys)
    frame = run_query(con, sql, params)
    frame["n"] = frame["n"].astype("int64")
    frame["satisfied"] = frame["satisfied"].astype("int64")
    frame["survey_satisfaction_rate"] = frame["satisfied"] / frame["n"].where(frame["n"] > 0)
    frame["wave_start"] = pd.to_datetime(frame["wave_start"])
    return frame


# --- putting it together -----------------------------------------------------------------------


def cross_section_groups(register: pd.DataFrame, filters: Filters) -> pd.Series:
    """Each compound's side in the period: treated (signed on or before the period's first
    day, or marked yes without a date), control (marked no, or signed after the period),
    during (signed inside the period: left out), unknown (neither column filled)."""
    signed = register["treated_on"]
    start = pd.Timestamp(filters.start)
    end = pd.Timestamp(filters.end)
    flagged = register["is_flagged"]
    group = pd.Series("unknown", index=register.index, dtype=object)
    group[flagged.eq(True).fillna(False).to_numpy() & signed.isna().to_numpy()] = "treated"
    group[flagged.eq(False).fillna(False).to_numpy() & signed.isna().to_numpy()] = "control"
    group[(signed <= start).to_numpy()] = "treated"
    group[(signed > end).to_numpy()] = "control"
    group[((signed > start) & (signed <= end)).to_numpy()] = "during"
    return group


def panel_onsets(register: pd.DataFrame) -> pd.DataFrame:
    """unit and onset (month number of the date; NaN for never signed) of the compounds that can
    enter a before/after comparison: signed with a known date, or marked as never signed."""
    signed = register["treated_on"].notna()
    never = register["is_flagged"].eq(False).fillna(False).to_numpy() & ~signed.to_numpy()
    usable = register.loc[signed.to_numpy() | never, ["unit", "treated_on"]]
    days = pd.to_datetime(usable["treated_on"])
    # month_number of each date, NaN for none (whole numbers: the same floats as one by one)
    onset = (days.dt.year * 12 + days.dt.month - 1).astype(float)
    return pd.DataFrame({"unit": usable["unit"], "onset": onset.where(days.notna(), math.nan)})


# Up to this many compound-month rows in the before/after panel, the page fits every metric's
# before/after figure for its summary table at once, in the same report as the shown metric's;
# beyond it the table waits for its switch. Rows, not compounds: a fit's cost follows the rows
# it reads, and a register with many years of data costs as much as a bigger one with few.
# Measured (CPU s, the seven fits beside the shown metric's): +0.25 on the 1M demo's 4,400 rows
# (~30 ms a fit whatever its size); at 10M, +0.25 for 1,000 compounds' 33,700 rows and +1.4
# for 2,000 compounds' 67,400; a city's 700,000 rows cost 0.6–0.9 s a metric. 40,000 rows:
# a district's 1,000 compounds over three years and more.
ALL_METRICS_AT_ONCE_ROWS = 40_000

ESTIMATE_COLUMNS = [
    "metric",
    "status",
    "estimate",
    "low",
    "high",
    "n_treated",
    "n_control",
    "n_observations",
]
CROSS_SECTION_COLUMNS = [*ESTIMATE_COLUMNS, "mean_treated", "mean_control"]
# The robust figure, the signed compounds' raw monthly means, and the plain TWFE comparison.
BEFORE_AFTER_COLUMNS = [
    *ESTIMATE_COLUMNS,
    "mean_before",
    "mean_after",
    "twfe_estimate",
    "twfe_low",
    "twfe_high",
]


@dataclass(frozen=True)
class EffectReport:
    """Everything the 治理成效 page shows. Estimates are in display units: rates in
    percentage points, times in minutes. Status per metric: estimated, too_small, no_data."""

    treatment: str
    register_compounds: int
    register_flags: int  # compounds whose yes/no column is filled (whole register)
    register_dates: int  # compounds with a date (whole register)
    min_compounds: int
    window_months: int
    cross_section: pd.DataFrame  # CROSS_SECTION_COLUMNS: means of the two sides in the period
    cross_excluded_during: int  # compounds signed inside the period, left out
    strata: dict[str, pd.DataFrame] = field(default_factory=dict)
    # BEFORE_AFTER_COLUMNS: the robust estimate; mean_before/mean_after are the signed
    # compounds' raw monthly means; twfe_* the plain two-way fixed-effects comparison
    before_after: pd.DataFrame = field(default_factory=pd.DataFrame)
    diagnostics: dict[str, Diagnostics] = field(default_factory=dict)
    control: str = NEVER
    panel_first: date | None = None
    panel_last: date | None = None
    # The event path (display units) of the metrics effect_report was asked to draw (path_for),
    # fitted on the report's own panels; any other metric's comes from `before_after`.
    paths: dict[str, EventStudy] = field(default_factory=dict)


def _status(estimate: Estimate, minimum: int) -> str:
    if estimate.n_treated == 0 or estimate.n_control == 0:
        return NO_DATA
    if min(estimate.n_treated, estimate.n_control) < minimum:
        return TOO_SMALL
    return ESTIMATED if estimate.is_estimated else NO_DATA


def _summary_row(
    metric: EffectMetric, status: str, shown: Estimate, means: dict[str, float]
) -> dict[str, object]:
    """One metric's row: `shown` in display units, `means` in the panel's units."""
    keep = status == ESTIMATED
    return {
        "metric": metric.name,
        "status": status,
        "estimate": shown.estimate if keep else math.nan,
        "low": shown.low if keep else math.nan,
        "high": shown.high if keep else math.nan,
        "n_treated": shown.n_treated,
        "n_control": shown.n_control,
        "n_observations": shown.n_observations,
        **{name: value * metric.scale for name, value in means.items()},
    }


def _mean(values: pd.Series) -> float:
    return float(values.mean()) if values.notna().any() else math.nan


def _scaled_events(study: EventStudy, scale: float) -> EventStudy:
    table = study.table.copy()
    for column in ("estimate", "low", "high"):
        table[column] = table[column].astype(float) * scale
    return EventStudy(table, study.pre_trend_p, study.pre_periods)


@dataclass(frozen=True)
class Panels:
    """The before/after panels of every month of the data: compound × month ticket figures
    and compound × wave survey figures, each with unit (a number per compound), period
    (month number) and onset."""

    monthly: pd.DataFrame
    waves: pd.DataFrame

    def for_metric(self, metric: EffectMetric) -> pd.DataFrame:
        return self.monthly if metric.source == "tickets" else self.waves


def _month_numbers(days: pd.Series) -> pd.Series:
    """month_number of every date, as whole columns (int64)."""
    stamps = pd.to_datetime(days)
    return (stamps.dt.year * 12 + stamps.dt.month - 1).astype("int64")


def before_after_panels(
    con: duckdb.DuckDBPyConnection,
    filters: Filters,
    config: Config,
    register: pd.DataFrame,
    with_survey: bool = True,
    ticket_figures: Sequence[str] | None = None,
    every_figure_up_to: int = 0,
) -> Panels:
    """Every month of the data (the period filter does not cut it; place and ticket filters do),
    joined to the onsets of the compounds that can enter a before/after comparison.
    with_survey=False leaves the survey panel empty (no survey metric to fit);
    ticket_figures: the ticket panel's figures (metrics and weights) to read where the stored
    rows serve it, every one for None; () its rows, months and onsets only, for the panel's
    size and span (no ticket metric to fit). A ticket panel of at most `every_figure_up_to`
    rows has every figure and the survey panel all the same (small enough to fit every
    metric: `before_after_report` then does); a bigger one only what was asked for (a city's
    survey waves are read only for a survey metric)."""
    onsets = panel_onsets(register)
    everything = every_month(filters)
    # A register whose units are filled and distinct is joined by its rows' positions (a
    # city's 700,000 compound-months fetched as numbers, not names); any other the old way.
    positioned = bool(register["unit"].notna().all() and register["unit"].is_unique)
    code_of = np.full(len(register), -1, dtype="int64")
    code_of[register.index.get_indexer(onsets.index)] = np.arange(len(onsets), dtype="int64")
    figures = PANEL_FIGURES if ticket_figures is None else tuple(ticket_figures)
    monthly = _stored_monthly_panel(con, everything, config, figures) if positioned else None
    if monthly is None:
        monthly = compound_ticket_figures(con, everything, config, by_month=True)
        monthly["period"] = _month_numbers(monthly["month"])
        monthly = _with_onsets(monthly, onsets)
    else:
        monthly = _with_codes(monthly, code_of, onsets)
        if len(monthly) <= every_figure_up_to and set(figures) != set(PANEL_FIGURES):
            every = _stored_monthly_panel(con, everything, config, PANEL_FIGURES)
            assert every is not None  # the same rows as the first read's
            monthly = _with_codes(every, code_of, onsets)
    if not with_survey and len(monthly) > every_figure_up_to:
        waves = pd.DataFrame(columns=["unit", "period", "onset", "n", "survey_satisfaction_rate"])
    elif positioned:
        waves = compound_survey_figures(con, everything, config, None, positions=True)
        waves["period"] = _month_numbers(waves["wave_start"])
        waves = _with_codes(waves, code_of, onsets)
    else:
        waves = compound_survey_figures(con, everything, config, None)
        waves["period"] = _month_numbers(waves["wave_start"])
        waves = _with_onsets(waves, onsets)
    return Panels(monthly, waves)


def _stored_monthly_panel(
    con: duckdb.DuckDBPyConnection,
    filters: Filters,
    config: Config,
    figures: Sequence[str] = (),
) -> pd.DataFrame | None:
    """compound_ticket_figures(by_month=True) from the stored rows with `position` (the
    compound's row in compound_register's frame) and `period` (month number) for unit and
    month, in the same order, and the ticket `figures` asked for (of PANEL_FIGURES: the
    metrics fitted and their weights); None where the stored rows do not answer, or where a
    compound would have two rows a month (then the names' order decides, as the old query had
    it). Only what those figures are computed from is read (a city's 1.2M compound-months of
    all thirteen cost a second to read and finish); no figures: the rows only."""
    unknown = sorted(set(figures) - set(PANEL_FIGURES))
    if unknown:
        raise ValueError(f"not a panel figure: {unknown}")
    stored = _stored_compound_rows(con, filters, by_month=True, rows_checked=True)
    if stored is None:
        return None
    place_where, place_params = filters.place_where("reg")
    inputs = dict.fromkeys(column for figure in figures for column in FIGURE_INPUTS[figure])
    read = "".join(f", a.{column}" for column in inputs)
    sql = f"""WITH reg AS ({_register_positions(place_where)})
        SELECT reg.position,
               CAST(year(a.period_start) * 12 + month(a.period_start) - 1 AS BIGINT) AS period
               {read}
        FROM agg_units AS a JOIN reg ON reg.compound = a.compound
            AND (a.community IS NULL OR reg.community = a.community)
        WHERE {stored.where}
        ORDER BY reg.position, a.period_start"""
    # Through Arrow: a third cheaper than .df() for a city's 700,000 rows of numbers (the
    # counts come back as floats where NULL; finish_ticket_stats fills and casts them).
    frame = con.execute(sql, bound_parameters(sql, stored.params | place_params))
    frame = frame.to_arrow_table().to_pandas()
    position = frame["position"].to_numpy("int64")
    period = frame["period"].to_numpy("int64")
    steps = np.diff(position)
    # A compound with two rows a month (its own tickets' and those without a community of
    # its name, whose quantiles do not combine): read from the tickets.
    if not bool(np.all((steps > 0) | ((steps == 0) & (np.diff(period) > 0)))):
        return None
    if not figures:
        return frame[["position", "period"]]
    finished = finish_ticket_stats(frame, config, figures)
    return finished[["position", "period", *dict.fromkeys(figures)]]


def ticket_figures(metrics: Iterable[EffectMetric]) -> tuple[str, ...]:
    """The ticket panel's figures the estimators read to fit `metrics`: each ticket metric's
    own and its weight, once each, in the metrics' order."""
    return tuple(
        dict.fromkeys(
            name
            for metric in metrics
            if metric.source == "tickets"
            for name in (metric.name, metric.weight)
        )
    )


# The figures the before/after estimators read of the ticket panel: EFFECT_METRICS' and their
# weights.
PANEL_FIGURES = ticket_figures(EFFECT_METRICS)


def _with_codes(panel: pd.DataFrame, code_of: np.ndarray, onsets: pd.DataFrame) -> pd.DataFrame:
    """_with_onsets for a panel keyed by register `position`: code_of maps a position to the
    compound's row in `onsets` (−1: not in it)."""
    codes = code_of[panel["position"].to_numpy("int64")]
    found = codes >= 0
    kept = panel[found].drop(columns="position").reset_index(drop=True)
    kept.insert(0, "unit", codes[found])
    kept["onset"] = onsets["onset"].to_numpy()[codes[found]]
    return kept


def _month_start(number: int) -> date:
    """The first day of a month_number."""
    return date(number // 12, number % 12 + 1, 1)


def _with_onsets(panel: pd.DataFrame, onsets: pd.DataFrame) -> pd.DataFrame:
    """The panel's rows of the onsets' compounds, in the panel's order, with their onset, each
    compound numbered by its row in `onsets`: the estimators only tell compounds apart, so a
    city's 700,000 compound-months are grouped and matched on integers, not on names. (What an
    inner merge on the names and numbering them after gives, without the merge.)"""
    codes = pd.Index(onsets["unit"]).get_indexer(panel["unit"])
    found = codes >= 0
    kept = panel[found].reset_index(drop=True)
    kept["unit"] = codes[found].astype("int64")
    kept["onset"] = onsets["onset"].to_numpy()[codes[found]]
    return kept


@dataclass(frozen=True)
class BeforeAfter:
    """One metric's before/after result in display units (minutes, percentage points)."""

    metric: str
    method: str  # robust | twfe
    control: str
    window: int
    status: str
    estimate: Estimate
    events: EventStudy
    diagnostics: Diagnostics | None  # robust only


def estimate_before_after(
    panels: Panels,
    metric: EffectMetric,
    method: str,
    window: int,
    minimum: int,
    control: str = NEVER,
    with_events: bool = True,
    rows: pd.DataFrame | None = None,
) -> BeforeAfter:
    """The robust (or, for comparison, the plain TWFE) before/after figure of one metric;
    with_events=False leaves out the event-time path (half the work of a robust fit). rows:
    the metric's window_rows of these panels and window, when already computed (robust)."""
    panel = panels.for_metric(metric)
    bin_months = 1 if metric.source == "tickets" else SURVEY_BIN_MONTHS
    diagnostics: Diagnostics | None = None
    if method == ROBUST:
        robust = robust_effect(
            panel,
            metric.name,
            window,
            metric.weight,
            control,
            bin_months,
            with_events=with_events,
            rows=rows,
        )
        estimate, study, diagnostics = robust.estimate, robust.events, robust.diagnostics
    else:
        estimate = difference_in_differences(panel, metric.name, window, metric.weight)
        study = EventStudy(pd.DataFrame(), math.nan, 0)
        if with_events and _status(estimate, minimum) == ESTIMATED:
            study = twfe_event_study(panel, metric.name, window, bin_months, metric.weight)
    status = _status(estimate, minimum)
    return BeforeAfter(
        metric=metric.name,
        method=method,
        control=control,
        window=window,
        status=status,
        estimate=estimate.scaled(metric.scale),
        events=_scaled_events(study, metric.scale) if status == ESTIMATED else study,
        diagnostics=diagnostics,
    )


def before_after(
    con: duckdb.DuckDBPyConnection,
    filters: Filters,
    config: Config,
    treatment: str,
    metric: str,
    method: str = ROBUST,
    window: int | None = None,
    control: str = NEVER,
) -> BeforeAfter:
    """One metric's before/after figure straight from the warehouse (the `govdash effect`
    command): the same panels and estimators as the page."""
    if metric not in METRICS_BY_NAME:
        raise ValueError(f"metric must be one of {sorted(METRICS_BY_NAME)}, got {metric!r}")
    register = compound_register(con, filters, treatment)
    with_survey = METRICS_BY_NAME[metric].source == "survey"
    panels = before_after_panels(con, filters, config, register, with_survey)
    return estimate_before_after(
        panels,
        METRICS_BY_NAME[metric],
        method,
        window or config.effect_window_months,
        config.effect_min_compounds,
        control,
    )


def effect_report(
    con: duckdb.DuckDBPyConnection,
    filters: Filters,
    config: Config,
    treatment: str,
    control: str = NEVER,
    path_for: tuple[str, ...] = (),
    before_after_for: tuple[str, ...] | None = None,
    every_metric_up_to: int = 0,
) -> EffectReport:
    """The with/without comparison over the filters' period (`with_without`) and the
    before/after comparison over every month of the data, same place and ticket selections
    (`before_after_report`, whose arguments this passes on)."""
    part = before_after_report(  # first: it refuses unknown metrics before any work
        con, filters, config, treatment, control, path_for, before_after_for, every_metric_up_to
    )
    return joined(with_without(con, filters, config, treatment), part)


def with_without(
    con: duckdb.DuckDBPyConnection, filters: Filters, config: Config, treatment: str
) -> EffectReport:
    """The with/without comparison of every metric over the filters' period: an EffectReport
    whose before/after fields are empty (`joined` adds them)."""
    compounds, flags, dates = register_coverage(con, treatment)
    minimum = config.effect_min_compounds
    register = compound_register(con, filters, treatment)
    register["size_band"] = size_band(register["households"], config.effect_size_bands)

    # With versus without, in the period.
    register["group"] = cross_section_groups(register, filters)
    period_tickets = compound_ticket_figures(con, filters, config, by_month=False)
    period_survey = compound_survey_figures(con, filters, config, wave_keys_in_period(con, filters))
    survey_totals = period_survey.groupby("unit")[["n", "satisfied"]].sum()
    survey_totals["survey_satisfaction_rate"] = survey_totals["satisfied"] / survey_totals["n"]
    units = register.merge(period_tickets, on="unit", how="left").merge(
        survey_totals[["survey_satisfaction_rate"]], left_on="unit", right_index=True, how="left"
    )
    # The columns the comparison reads, not the register's and the figures' every one.
    compared = ["compound_type", "size_band", *(metric.name for metric in EFFECT_METRICS)]
    sides = units.loc[units["group"].isin(["treated", "control"]).to_numpy(), compared].copy()
    sides["is_treated"] = (units["group"] == "treated")[sides.index]
    cross_rows = []
    strata: dict[str, pd.DataFrame] = {}
    for metric in EFFECT_METRICS:
        estimate, table = stratified_difference(sides, metric.name)
        for column in ("mean_treated", "mean_control", "difference", "low", "high"):
            table[column] = table[column] * metric.scale
        strata[metric.name] = table
        values = sides.dropna(subset=[metric.name])
        means = {
            "mean_treated": _mean(values.loc[values["is_treated"], metric.name]),
            "mean_control": _mean(values.loc[~values["is_treated"], metric.name]),
        }
        status = _status(estimate, minimum)
        cross_rows.append(_summary_row(metric, status, estimate.scaled(metric.scale), means))

    return EffectReport(
        treatment=treatment,
        register_compounds=compounds,
        register_flags=flags,
        register_dates=dates,
        min_compounds=minimum,
        window_months=config.effect_window_months,
        cross_section=pd.DataFrame(cross_rows, columns=CROSS_SECTION_COLUMNS),
        cross_excluded_during=int((register["group"] == "during").sum()),
        strata=strata,
    )


@dataclass(frozen=True)
class BeforeAfterReport:
    """The before/after half of an EffectReport (its fields of the same names)."""

    before_after: pd.DataFrame
    diagnostics: dict[str, Diagnostics]
    control: str
    panel_first: date | None
    panel_last: date | None
    paths: dict[str, EventStudy]


def every_month(filters: Filters) -> Filters:
    """The filters over every month of the data (their places and ticket selections kept): what
    the before/after comparison reads whatever the period, so the page keeps one
    `before_after_report` for every period it shows."""
    return replace(filters, start=date(1900, 1, 1), end=date(2999, 12, 31), period_kind="range")


def joined(report: EffectReport, part: BeforeAfterReport) -> EffectReport:
    """`report` (with_without's) with the before/after comparison of `part`."""
    return replace(
        report,
        before_after=part.before_after,
        diagnostics=part.diagnostics,
        control=part.control,
        panel_first=part.panel_first,
        panel_last=part.panel_last,
        paths=part.paths,
    )


def before_after_report(
    con: duckdb.DuckDBPyConnection,
    filters: Filters,
    config: Config,
    treatment: str,
    control: str = NEVER,
    path_for: tuple[str, ...] = (),
    before_after_for: tuple[str, ...] | None = None,
    every_metric_up_to: int = 0,
) -> BeforeAfterReport:
    """The before/after comparison over every month of the data (the filters' period does not
    cut it: the same for `every_month(filters)`). The event paths of the metrics in `path_for`
    (the page's chosen metric) are fitted on the same panels: the same figures as
    `before_after(…).events`, without building the panels twice.

    before_after_for: the metrics whose before/after figures are fitted, in EFFECT_METRICS'
    order whatever the order given (None: every metric). Each costs a city's whole panel, so
    the page fits the metric it shows and every metric only when the summary is asked for.

    every_metric_up_to: fit every metric after all when the monthly panel has at most this
    many rows (ALL_METRICS_AT_ONCE_ROWS: the eight fits are cheap there), so the page has its
    summary from the same panels and report; `before_after` then holds every metric."""
    unknown = sorted((set(path_for) | set(before_after_for or ())) - set(METRICS_BY_NAME))
    if unknown:
        raise ValueError(f"path_for/before_after_for name unknown metrics {unknown}")
    fitted = [
        metric
        for metric in EFFECT_METRICS
        if before_after_for is None or metric.name in before_after_for or metric.name in path_for
    ]
    minimum = config.effect_min_compounds
    window = config.effect_window_months
    register = compound_register(con, filters, treatment)

    # Before and after, on every month of the data.
    with_survey = any(metric.source == "survey" for metric in fitted)
    figures = ticket_figures(fitted)
    panels = before_after_panels(
        con, filters, config, register, with_survey, figures, every_metric_up_to
    )
    if len(panels.monthly) <= every_metric_up_to:  # with every figure: fit every metric
        fitted = list(EFFECT_METRICS)
    did_rows = []
    diagnostics: dict[str, Diagnostics] = {}
    paths: dict[str, EventStudy] = {}
    for metric in fitted:
        panel = panels.for_metric(metric)
        # The event path is drawn for one metric at a time: the page's first metric's here,
        # any other's from `before_after`.
        # The rows every estimator below starts from, computed once per metric.
        rows = window_rows(panel, metric.name, window, metric.weight)
        robust = estimate_before_after(
            panels,
            metric,
            ROBUST,
            window,
            minimum,
            control,
            with_events=metric.name in path_for,
            rows=rows,
        )
        if metric.name in path_for:
            paths[metric.name] = robust.events
        # The TWFE comparison and the signed compounds' means use the same sample.
        sample = panel_sample(panel, metric.name, window, False, metric.weight, rows=rows)
        twfe = difference_in_differences(panel, metric.name, window, metric.weight, sample)
        twfe_shown = twfe.scaled(metric.scale)
        twfe_kept = _status(twfe, minimum) == ESTIMATED
        treated = sample[sample["is_treated_unit"]]
        means = {
            "mean_before": _mean(treated.loc[treated["relative"] < 0, metric.name]),
            "mean_after": _mean(treated.loc[treated["relative"] > 0, metric.name]),
        }
        row = _summary_row(metric, robust.status, robust.estimate, means)
        row |= {
            "twfe_estimate": twfe_shown.estimate if twfe_kept else math.nan,
            "twfe_low": twfe_shown.low if twfe_kept else math.nan,
            "twfe_high": twfe_shown.high if twfe_kept else math.nan,
        }
        did_rows.append(row)
        if robust.diagnostics is not None:
            diagnostics[metric.name] = robust.diagnostics
    months = panels.monthly["period"]
    return BeforeAfterReport(
        before_after=pd.DataFrame(did_rows, columns=BEFORE_AFTER_COLUMNS),
        diagnostics=diagnostics,
        control=control,
        panel_first=_month_start(int(months.min())) if len(months) else None,
        panel_last=_month_start(int(months.max())) if len(months) else None,
        paths=paths,
    )
