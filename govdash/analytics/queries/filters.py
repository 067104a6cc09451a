"""The shared page filters: a period and place/ticket selections, as URL params and SQL WHERE fragments."""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta

import duckdb
import pandas as pd

from govdash.core.access import Scope

PERIOD_KINDS = ("year", "quarter", "month", "range")
# Filter name → warehouse column. Identifiers in SQL come only from these constants.
PLACE_COLUMNS = ("street", "community", "compound", "property_company")
TICKET_ONLY_COLUMNS = ("category", "priority", "channel")
SELECTION_COLUMNS = PLACE_COLUMNS + TICKET_ONLY_COLUMNS

# Bounds on what a URL may ask for; anything outside falls back to the defaults.
EARLIEST_DATE = date(1900, 1, 1)
LATEST_DATE = date(2999, 12, 31)
MAX_VALUE_LENGTH = 200
MAX_VALUES_PER_FILTER = 500

# Trend charts (monthly series) show a window of months ending with the selected period, not
# the period alone: one month would be one dot. The rule (Filters.trend_months): 12 months when
# the selection covers fewer than 12, so a month or quarter is seen against the year before it;
# 24 when it covers 12 to 24 (a year is shown beside the year before it, as the KPI cards
# compare it); the selection's own months when it covers more, so no selected month is cut.
TREND_MONTHS = 12
LONG_TREND_MONTHS = 24

DISTRICT = Scope("district")  # immutable, so one shared default is safe
_ALIAS = re.compile(r"[a-z_][a-z0-9_]{0,30}")
_PARAMETER = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


def _selection(values: Iterable[object]) -> tuple[str, ...]:
    """Canonical form of a multi-select: trimmed, non-empty, bounded strings, sorted, unique."""
    kept: set[str] = set()
    for value in values:
        if not isinstance(value, str):
            continue
        text = value.strip()
        if text and len(text) <= MAX_VALUE_LENGTH:
            kept.add(text)
    return tuple(sorted(kept))[:MAX_VALUES_PER_FILTER]


def _quarter_of(day: date) -> int:
    return (day.month - 1) // 3 + 1


def month_start(day: date) -> date:
    """The first day of the month containing `day`."""
    return date(day.year, day.month, 1)


def add_months(day: date, months: int) -> date:
    """The first day of the month `months` calendar months after `day`'s (before if negative)."""
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def months_between(first: date, last: date) -> int:
    """Calendar months from `first`'s month to `last`'s, both counted (March to May is 3)."""
    return (last.year - first.year) * 12 + last.month - first.month + 1


def period_bounds(kind: str, day: date) -> tuple[date, date]:
    """First and last day of the calendar year, quarter or month containing `day`."""
    if kind == "year":
        return date(day.year, 1, 1), date(day.year, 12, 31)
    if kind == "quarter":
        first_month = (_quarter_of(day) - 1) * 3 + 1
        last_month = first_month + 2
        return (
            date(day.year, first_month, 1),
            date(day.year, last_month, calendar.monthrange(day.year, last_month)[1]),
        )
    if kind == "month":
        return (
            date(day.year, day.month, 1),
            date(day.year, day.month, calendar.monthrange(day.year, day.month)[1]),
        )
    raise ValueError(f"not a calendar period kind: {kind!r}")


@dataclass(frozen=True)
class Filters:
    """What every page filters on. Empty selections mean "all"; `end` is inclusive."""

    start: date
    end: date
    period_kind: str = "range"
    street: tuple[str, ...] = ()
    community: tuple[str, ...] = ()
    compound: tuple[str, ...] = ()
    property_company: tuple[str, ...] = ()
    category: tuple[str, ...] = ()
    priority: tuple[str, ...] = ()
    channel: tuple[str, ...] = ()
    # The places the signed-in account may see. Every SQL fragment includes it; URL params
    # never carry it, and once restricted it cannot be changed (see `within`).
    scope: Scope = DISTRICT

    def __post_init__(self) -> None:
        if not isinstance(self.scope, Scope):
            raise ValueError("scope must be a govdash.core.access.Scope")
        if self.period_kind not in PERIOD_KINDS:
            raise ValueError(f"period_kind must be one of {PERIOD_KINDS}, got {self.period_kind!r}")
        if not isinstance(self.start, date) or not isinstance(self.end, date):
            raise ValueError("start and end must be dates")
        # datetime is a date subclass; keep only the day so equality and SQL bounds are exact.
        for name in ("start", "end"):
            value = getattr(self, name)
            if isinstance(value, datetime):
                object.__setattr__(self, name, value.date())
        if self.start > self.end:
            raise ValueError(f"start {self.start} is after end {self.end}")
        if self.period_kind != "range" and period_bounds(self.period_kind, self.start) != (
            self.start,
            self.end,
        ):
            raise ValueError(
                f"{self.period_kind} filters must span one whole {self.period_kind}: "
                f"{self.start}..{self.end}"
            )
        for name in SELECTION_COLUMNS:
            object.__setattr__(self, name, _selection(getattr(self, name)))

    # --- constructors ------------------------------------------------------------------------
    @classmethod
    def for_year(cls, year: int) -> Filters:
        start, end = period_bounds("year", date(year, 1, 1))
        return cls(start, end, "year")

    @classmethod
    def for_quarter(cls, year: int, quarter: int) -> Filters:
        start, end = period_bounds("quarter", date(year, (quarter - 1) * 3 + 1, 1))
        return cls(start, end, "quarter")

    @classmethod
    def for_month(cls, year: int, month: int) -> Filters:
        start, end = period_bounds("month", date(year, month, 1))
        return cls(start, end, "month")

    @classmethod
    def for_range(cls, start: date, end: date) -> Filters:
        return cls(start, end, "range")

    @classmethod
    def for_period(cls, kind: str, day: date) -> Filters:
        """The year, quarter or month containing `day`; for "range", that single day."""
        if kind == "range":
            return cls(day, day, "range")
        start, end = period_bounds(kind, day)
        return cls(start, end, kind)

    def with_selection(self, **selections: Iterable[str]) -> Filters:
        """A copy with some selections replaced, e.g. `f.with_selection(community=["锦绣社区"])`."""
        unknown = set(selections) - set(SELECTION_COLUMNS)
        if unknown:
            raise ValueError(f"unknown filter names: {sorted(unknown)}")
        return self._with({name: tuple(values) for name, values in selections.items()})

    def _with(self, selections: Mapping[str, tuple[str, ...]]) -> Filters:
        chosen = {name: selections.get(name, getattr(self, name)) for name in SELECTION_COLUMNS}
        return Filters(
            self.start,
            self.end,
            self.period_kind,
            street=chosen["street"],
            community=chosen["community"],
            compound=chosen["compound"],
            property_company=chosen["property_company"],
            category=chosen["category"],
            priority=chosen["priority"],
            channel=chosen["channel"],
            scope=self.scope,
        )

    def within(self, scope: Scope) -> Filters:
        """A copy limited to `scope`. A restricted scope is never widened or swapped."""
        if scope == self.scope:
            return self
        if self.scope.is_restricted:
            raise PermissionError(
                f"filters limited to {self.scope.to_text()} cannot be moved to {scope.to_text()}"
            )
        return replace(self, scope=scope)

    # --- period arithmetic ---------------------------------------------------------------------
    @property
    def end_exclusive(self) -> date:
        return self.end + timedelta(days=1)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def label(self, lang: str = "zh") -> str:
        english = lang.lower().startswith("en")
        start = self.start
        if self.period_kind == "year":
            return str(start.year) if english else f"{start.year}年"
        if self.period_kind == "quarter":
            quarter = _quarter_of(start)
            return f"{start.year} Q{quarter}" if english else f"{start.year}年第{quarter}季度"
        if self.period_kind == "month":
            return (
                f"{start.year}-{start.month:02d}" if english else f"{start.year}年{start.month}月"
            )
        joiner = " to " if english else " 至 "
        return f"{start.isoformat()}{joiner}{self.end.isoformat()}"

    @property
    def month_count(self) -> int:
        """Calendar months the period touches (a range from 15 January to 3 February: 2)."""
        return months_between(self.start, self.end)

    def span_label(self) -> str:
        """The period as months, e.g. "2024-04 – 2025-03", the same in every language (as
        the charts' month axes label them); ISO days where it starts or ends inside a month."""
        whole = self.start.day == 1 and self.end == period_bounds("month", self.end)[1]
        if whole:
            first, last = f"{self.start:%Y-%m}", f"{self.end:%Y-%m}"
            return first if first == last else f"{first} – {last}"
        return f"{self.start.isoformat()} – {self.end.isoformat()}"

    def trend_months(self) -> int:
        """How many months a trend chart of this period shows (the rule at TREND_MONTHS)."""
        covered = self.month_count
        if covered < TREND_MONTHS:
            return TREND_MONTHS
        return LONG_TREND_MONTHS if covered <= LONG_TREND_MONTHS else covered

    def trend_window(self, months: int | None = None, earliest: date | None = None) -> Filters:
        """The filters a trend chart uses: `months` calendar months (default: trend_months())
        ending with this period's end, with the same scope and selections, as a range.

        The window always holds the whole selected period (so its months are highlighted,
        never cut). `earliest` (the first day with data) moves the start up to that month:
        months before any data was loaded would read as months without requests. It never
        moves the start past the selected period's own start.
        """
        count = self.trend_months() if months is None else max(int(months), self.month_count)
        start = add_months(self.end, -(count - 1))
        if earliest is not None and earliest > start:
            start = min(month_start(earliest), month_start(self.start))
        return replace(self, start=start, period_kind="range")

    def previous(self) -> Filters:
        """The previous year, quarter or month; for a range, the same number of days before it."""
        if self.period_kind == "range":
            end = self.start - timedelta(days=1)
            return replace(self, start=end - timedelta(days=self.days - 1), end=end)
        start, end = period_bounds(self.period_kind, self.start - timedelta(days=1))
        return replace(self, start=start, end=end)

    # --- URL query parameters ------------------------------------------------------------------
    def to_query_params(self) -> dict[str, str | list[str]]:
        params: dict[str, str | list[str]] = {
            "period": self.period_kind,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
        }
        for name in SELECTION_COLUMNS:
            values = getattr(self, name)
            if values:
                params[name] = list(values)
        return params

    @classmethod
    def default(cls, default_end: date) -> Filters:
        """The calendar month containing `default_end` (usually the data's as-of date)."""
        if not EARLIEST_DATE <= default_end <= LATEST_DATE:
            default_end = date.today()
        return cls.for_period("month", default_end)

    @classmethod
    def from_query_params(
        cls,
        params: Mapping[str, str | list[str]],
        default_end: date,
        scope: Scope | None = None,
    ) -> Filters:
        """Filters from URL params, limited to `scope` (which no URL param can change).

        Never raises: anything unusable falls back to the defaults.
        """
        try:
            parsed = cls._parse(params, default_end)
        except Exception:  # hostile input must never take a page down
            parsed = cls.default(default_end)
        return parsed.within(scope or Scope.district())

    @classmethod
    def _parse(cls, params: Mapping[str, str | list[str]], default_end: date) -> Filters:
        fallback = cls.default(default_end)
        if not isinstance(params, Mapping):
            return fallback
        kind = _scalar(params.get("period"))
        start = _parse_date(_scalar(params.get("start")))
        end = _parse_date(_scalar(params.get("end")))
        if kind not in PERIOD_KINDS:
            kind = fallback.period_kind
        if kind == "range":
            if start is None and end is None:
                base = fallback
            else:
                first = start or end or fallback.start
                last = end or start or fallback.end
                first, last = min(first, last), max(first, last)
                base = cls(first, last, "range")
        else:
            base = cls.for_period(kind, start or end or fallback.start)
        selections = {name: _values(params.get(name)) for name in SELECTION_COLUMNS}
        return base._with(selections)

    # --- SQL -----------------------------------------------------------------------------------
    def ticket_where(self, alias: str) -> tuple[str, dict[str, object]]:
        """WHERE fragment for tickets accepted in the period and matching every selection."""
        column = _alias(alias)
        conditions = [f"{column}accepted_at >= $start", f"{column}accepted_at < $end_exclusive"]
        params: dict[str, object] = {
            "start": datetime.combine(self.start, time()),
            "end_exclusive": datetime.combine(self.end_exclusive, time()),
        }
        selection_sql, selection_params = self._selection_where(column, SELECTION_COLUMNS)
        return " AND ".join(conditions + selection_sql), params | selection_params

    def backlog_where(self, alias: str) -> tuple[str, dict[str, object]]:
        """WHERE fragment for tickets open at the period's end (accepted at any earlier time).

        Open at end: accepted before the end, and closed after it or not closed at all; a
        ticket in a closing status (已办结, 待回访, 已退回) without a close time is not open, as
        the loader's is_open says.
        """
        column = _alias(alias)
        conditions = [
            f"{column}accepted_at < $end_exclusive",
            f"({column}closed_at >= $end_exclusive OR ({column}closed_at IS NULL AND {column}is_open))",
        ]
        params: dict[str, object] = {"end_exclusive": datetime.combine(self.end_exclusive, time())}
        selection_sql, selection_params = self._selection_where(column, SELECTION_COLUMNS)
        return " AND ".join(conditions + selection_sql), params | selection_params

    def selection_where(self, alias: str) -> tuple[str, dict[str, object]]:
        """WHERE fragment of the scope and every selection (no period)."""
        selection_sql, params = self._selection_where(_alias(alias), SELECTION_COLUMNS)
        return " AND ".join(selection_sql) or "TRUE", params

    def place_where(self, alias: str) -> tuple[str, dict[str, object]]:
        """WHERE fragment on street/community/compound/property_company only (no period)."""
        column = _alias(alias)
        selection_sql, params = self._selection_where(column, PLACE_COLUMNS)
        return " AND ".join(selection_sql) or "TRUE", params

    def scope_where(self, alias: str) -> tuple[str, dict[str, object]]:
        """WHERE fragment of the scope alone (TRUE for the whole district)."""
        conditions, params = self._scope_condition(_alias(alias))
        return " AND ".join(conditions) or "TRUE", params

    def _scope_condition(self, column_prefix: str) -> tuple[list[str], dict[str, object]]:
        if not self.scope.is_restricted:
            return [], {}
        # The level is one of Scope's constants (street, community), never user text.
        return [f"{column_prefix}{self.scope.level} = $scope_name"], {"scope_name": self.scope.name}

    def _selection_where(
        self, column_prefix: str, names: tuple[str, ...]
    ) -> tuple[list[str], dict[str, object]]:
        conditions, params = self._scope_condition(column_prefix)
        for name in names:
            values = getattr(self, name)
            if values:  # empty = all: no condition at all, so DuckDB scans nothing extra
                conditions.append(f"{column_prefix}{name} = ANY(${name})")
                params[name] = list(values)
        return conditions, params

    def narrowed(self, level: str, unit: str) -> Filters:
        """A copy restricted to one street, community, compound or property company."""
        if level not in PLACE_COLUMNS:
            raise ValueError(f"level must be one of {PLACE_COLUMNS}, got {level!r}")
        return self._with({level: (unit,)})

    def without_places(self) -> Filters:
        return self._with({name: () for name in PLACE_COLUMNS})


def _alias(alias: str) -> str:
    if alias == "":
        return ""
    if not _ALIAS.fullmatch(alias):
        raise ValueError(f"table alias must be a plain identifier, got {alias!r}")
    return alias + "."


def _scalar(value: object) -> str | None:
    """One string from a URL param (a list gives its last element, as browsers repeat keys)."""
    if isinstance(value, list | tuple) and value:
        value = value[-1]
    if isinstance(value, str) and len(value) <= MAX_VALUE_LENGTH:
        return value.strip()
    return None


def _values(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return _selection([value])
    if isinstance(value, list | tuple):
        return _selection(value[: MAX_VALUES_PER_FILTER * 4])
    return ()


def _parse_date(text: str | None) -> date | None:
    if not text or len(text) > 10:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return None
    return day if EARLIEST_DATE <= day <= LATEST_DATE else None


def available_periods(min_date: date, max_date: date) -> dict[str, list[Filters]]:
    """The years, quarters and months that hold data between two dates, newest first.

    For the period picker: `f.label()` is the option text, `f` the value.
    """
    if min_date > max_date:
        min_date, max_date = max_date, min_date
    periods: dict[str, list[Filters]] = {}
    for kind in ("year", "quarter", "month"):
        found: list[Filters] = []
        day = max_date
        while True:
            period = Filters.for_period(kind, day)
            found.append(period)
            if period.start <= min_date:
                break
            day = period.start - timedelta(days=1)
        periods[kind] = found
    return periods


def bound_parameters(sql: str, params: Mapping[str, object]) -> dict[str, object]:
    """Only the parameters the SQL names: DuckDB refuses unused ones, and fragments compose."""
    used = set(_PARAMETER.findall(sql))
    missing = used - set(params)
    if missing:
        raise KeyError(f"SQL names parameters that were not given: {sorted(missing)}")
    return {name: _without_nul(value) for name, value in params.items() if name in used}


# DuckLake 1.5.5 writes a string constant of a filter into the SQL it sends to the catalog to
# prune data files, and DuckDB's parser stops reading at a NUL character: the catalog query is
# cut inside the quoted constant and the page's query fails ("unterminated quoted string").
# Quotes, backslashes and semicolons are escaped correctly (tests/analytics/test_lake_constants).
# A NUL is never part of a real name, code or word: such a value is sent with U+FFFD (the
# replacement character) in the NUL's place, so it still selects nothing real and never fails.
_NUL, _REPLACEMENT = "\x00", "\ufffd"


def _without_nul(value: object) -> object:
    if isinstance(value, str):
        return value.replace(_NUL, _REPLACEMENT) if _NUL in value else value
    if isinstance(value, list | tuple) and any(isinstance(v, str) and _NUL in v for v in value):
        return [_without_nul(v) for v in value]
    return value


def run_query(
    con: duckdb.DuckDBPyConnection, sql: str, params: Mapping[str, object]
) -> pd.DataFrame:
    """Run one statement with bound parameters and return a DataFrame."""
    return con.execute(sql, bound_parameters(sql, params)).df()
