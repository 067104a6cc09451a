"""The one configuration object: defaults from config.toml, overridden by a user's TOML file."""

from __future__ import annotations

import hashlib
import os
import re
import tomllib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from govdash.core.access import AccessError, ClaimRule, claim_rules
from govdash.core.workdays import StatedYear
from govdash.i18n import t

DEFAULT_CONFIG_PATH = Path(__file__).with_name("config.toml")
UNSCORED_SECTIONS = ("access", "server")
# How a load runs, not what it computes (with its help text).
UNSCORED_KEYS = ("loader.memory_limit_mb", "loader.memory_limit_mb_help")
CONFIG_ENV = "GOVDASH_CONFIG"


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class SlaRule:
    """One SLA rule. Each limit is in clock time (minutes, hours, calendar days — kept here as
    minutes and hours) or in working days on the official calendar (govdash.core.workdays),
    when the clock-time field is None."""

    respond_minutes: float | None
    resolve_hours: float | None
    priority: str | None = None
    request_type: str | None = None
    help: str = ""
    respond_working_days: int | None = None
    resolve_working_days: int | None = None
    resolve_days: float | None = None  # as written, when the limit was given in calendar days

    @property
    def uses_working_days(self) -> bool:
        return self.respond_working_days is not None or self.resolve_working_days is not None

    def describe(self, lang: str = "zh") -> str:
        """ "特急：响应 5 分钟，办结 24 小时"; "投诉：响应 24 小时，办结 5 个工作日"."""
        who = "、".join(x for x in (self.priority, self.request_type) if x) or t("sla.others", lang)
        if self.respond_working_days is not None:
            respond = t("sla.working_days", lang, n=self.respond_working_days)
        else:
            minutes = self.respond_minutes or 0.0
            respond = (
                t("sla.hours", lang, n=f"{minutes / 60:g}")
                if minutes >= 60
                else t("sla.minutes", lang, n=f"{minutes:g}")
            )
        if self.resolve_working_days is not None:
            resolve = t("sla.working_days", lang, n=self.resolve_working_days)
        elif self.resolve_days is not None:
            resolve = t("sla.calendar_days", lang, n=f"{self.resolve_days:g}")
        else:
            resolve = t("sla.hours", lang, n=f"{self.resolve_hours or 0.0:g}")
        return t("sla.rule", lang, who=who, respond=respond, resolve=resolve)


@dataclass(frozen=True)
class Indicator:
    block: str
    name: str
    points: float
    source: str  # evaluator | tickets | survey
    metric: str | None = None
    floor: float | None = None
    target: float | None = None
    help: str = ""


@dataclass(frozen=True)
class Config:
    categories: tuple[str, ...]
    blank_category: str
    blank_priority: str
    repeat_window_days: int
    sla: tuple[SlaRule, ...]
    basic_satisfied_weight: float
    three_rate_weights: dict[str, float]
    survey_items: tuple[str, ...]
    overall_item: str
    min_sample: int
    satisfied_min_score: int
    min_group_size: int
    trim_from_evaluators: int
    disagreement_share: float
    max_bonus: float
    tie_break: tuple[str, ...]
    red_black_list_size: int
    robustness_draws: int
    robustness_spread: float
    robustness_seed: int
    grades: dict[str, float]
    awards: dict[str, float]
    indicators: tuple[Indicator, ...]
    max_upload_mb: float
    max_rows_per_file: int
    max_unzipped_mb: float
    max_compression_ratio: float
    earliest_date: date
    keep_versions: int
    memory_limit_mb: int
    effect_min_compounds: int
    effect_window_months: int
    effect_size_bands: tuple[int, ...]
    oidc_provider: str
    identity_claim: str
    oidc_rules: tuple[ClaimRule, ...]
    require_sign_in: bool
    session_hours: float
    base_path: str
    forwarded_allow_ips: str
    min_free_disk_mb: float
    results_cache_mb: int  # 0: the pages' results are not kept on disk (govdash.web.cache)
    warm_scopes: int  # 0: no page is computed ahead after a load (govdash.web.warm)
    warm_min_tickets: int  # nor below this many tickets
    workers: int | None  # None: "auto" (one per core, see govdash.web.workers.auto_workers)
    bulletin_template: str  # "" = the template shipped in the package
    bulletin_issuer: str
    bulletin_hot_spots: int
    round_score_step: float
    calendar_years: dict[int, StatedYear]  # years stated in the config (win over the library)
    source_path: str = ""
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def settings(self) -> dict[str, str]:
        """Every effective setting as `dotted.key` → repr(value) (help texts left out)."""
        return {
            key: value
            for key, value in _flatten(self.raw).items()
            if not key.endswith("help")
            and key.split(".")[0] not in UNSCORED_SECTIONS
            and key not in UNSCORED_KEYS
        }

    @property
    def warming(self) -> bool:
        """Whether pages are computed ahead after a load (govdash.web.warm): it needs scopes to
        warm and the disk store the results are kept in."""
        return bool(self.warm_scopes and self.results_cache_mb)

    @property
    def fingerprint(self) -> str:
        """A short hash of the effective settings, shown next to numbers they produced.

        [access] (who may sign in), [server] (where it is served) and the loader's memory
        cap change no number, so they are left out.
        """
        settings = {key: value for key, value in self.raw.items() if key not in UNSCORED_SECTIONS}
        flat = {k: v for k, v in _flatten(settings).items() if k not in UNSCORED_KEYS}
        text = repr(sorted(flat.items()))
        return hashlib.sha256(text.encode()).hexdigest()[:12]


PRIORITIES = ("特急", "紧急", "一般")
REQUEST_TYPES = ("咨询", "求助", "投诉", "举报", "建议")
INDICATOR_SOURCES = ("evaluator", "tickets", "survey")
TICKET_METRICS = ("response_rate", "resolution_rate", "satisfaction_rate")
SURVEY_METRICS = ("satisfaction_rate",)


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read the defaults, then the user's file (argument, else $GOVDASH_CONFIG) over them."""
    raw = _read_toml(DEFAULT_CONFIG_PATH)
    chosen = path if path is not None else os.environ.get(CONFIG_ENV) or None
    source = str(DEFAULT_CONFIG_PATH)
    if chosen is not None:
        user_path = Path(chosen)
        if not user_path.is_file():
            raise ConfigError(f"找不到配置文件：{user_path}")
        raw = _merge(raw, _read_toml(user_path))
        source = str(user_path)
    return _build(raw, source)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"配置文件 {path} 不是合法的 TOML：{error}") from error


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _flatten(raw: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in raw.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = repr(value)
    return flat


class _Reader:
    """Typed access to the raw TOML that names the offending key in every error."""

    def __init__(self, raw: dict[str, Any], source: str) -> None:
        self.raw = raw
        self.source = source

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"配置文件 {self.source} 中的 {key} {problem}")

    def get(self, key: str) -> Any:
        node: Any = self.raw
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                raise self.fail(key, "缺失")
            node = node[part]
        return node

    def number(self, key: str, low: float | None = None, high: float | None = None) -> float:
        value = self.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(key, f"应为数字，实际为 {value!r}")
        if (low is not None and value < low) or (high is not None and value > high):
            raise self.fail(key, f"应在 {low} 到 {high} 之间，实际为 {value}")
        return float(value)

    def integer(self, key: str, low: int = 0) -> int:
        value = self.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise self.fail(key, f"应为不小于 {low} 的整数，实际为 {value!r}")
        return value

    def text(self, key: str) -> str:
        value = self.get(key)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"应为非空文字，实际为 {value!r}")
        return value

    def boolean(self, key: str) -> bool:
        value = self.get(key)
        if not isinstance(value, bool):
            raise self.fail(key, f"应为 true 或 false，实际为 {value!r}")
        return value

    def texts(self, key: str) -> tuple[str, ...]:
        value = self.get(key)
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(key, "应为文字列表")
        return tuple(value)

    def table(self, key: str) -> dict[str, Any]:
        value = self.get(key)
        if not isinstance(value, dict):
            raise self.fail(key, "应为表（[section]）")
        return {k: v for k, v in value.items() if k != "help"}


def _build(raw: dict[str, Any], source: str) -> Config:
    read = _Reader(raw, source)
    sla = tuple(_sla_rule(read, index, rule) for index, rule in enumerate(read.get("sla")))
    if not sla or sla[-1].priority is not None or sla[-1].request_type is not None:
        raise read.fail("sla", "的最后一条规则必须不限紧急程度和诉求类型（兜底规则）")
    weights = {
        "response": read.number("three_rates.response_weight", 0, 1),
        "resolution": read.number("three_rates.resolution_weight", 0, 1),
        "satisfaction": read.number("three_rates.satisfaction_weight", 0, 1),
    }
    if abs(sum(weights.values()) - 1) > 1e-6:
        raise read.fail(
            "three_rates.*_weight", f"三个权重之和应为 1，实际为 {sum(weights.values())}"
        )
    items = read.texts("survey.items")
    overall = read.text("survey.overall_item")
    if overall not in items:
        raise read.fail("survey.overall_item", f"“{overall}”不在 survey.items 中")
    grades = {name: float(v) for name, v in read.table("evaluation.grades").items()}
    for name in grades:
        read.number(f"evaluation.grades.{name}", 0, 1000)
    awards = {name: float(v) for name, v in read.table("evaluation.awards").items()}
    for name in awards:
        read.number(f"evaluation.awards.{name}", 0, 1)
    if sum(awards.values()) > 1 + 1e-9:
        raise read.fail("evaluation.awards", "各奖项比例之和不能超过 1")
    indicators = tuple(
        _indicator(read, index, entry)
        for index, entry in enumerate(read.get("evaluation.indicators"))
    )
    names = [indicator.name for indicator in indicators]
    if len(set(names)) != len(names):
        raise read.fail("evaluation.indicators", "中有重名指标")
    blocks = {indicator.block for indicator in indicators}
    tie_break = read.texts("evaluation.tie_break")
    for block in tie_break:
        if block not in blocks:
            raise read.fail("evaluation.tie_break", f"中的“{block}”不是任何指标的板块")
    earliest_text = read.text("loader.earliest_date")
    try:
        earliest = date.fromisoformat(earliest_text)
    except ValueError as error:
        raise read.fail("loader.earliest_date", f"应为 YYYY-MM-DD 日期：{error}") from error
    return Config(
        categories=read.texts("tickets.categories"),
        blank_category=read.text("tickets.blank_category"),
        blank_priority=_choice(read, "tickets.blank_priority", PRIORITIES),
        repeat_window_days=read.integer("tickets.repeat_window_days", 1),
        sla=sla,
        basic_satisfied_weight=read.number("three_rates.basic_satisfied_weight", 0, 1),
        three_rate_weights=weights,
        survey_items=items,
        overall_item=overall,
        min_sample=read.integer("survey.min_sample", 1),
        satisfied_min_score=int(read.number("survey.satisfied_min_score", 1, 5)),
        min_group_size=read.integer("privacy.min_group_size", 1),
        trim_from_evaluators=read.integer("evaluation.trim_from_evaluators", 3),
        disagreement_share=read.number("evaluation.disagreement_share", 0, 1),
        max_bonus=read.number("evaluation.max_bonus", 0, 100),
        tie_break=tie_break,
        red_black_list_size=read.integer("evaluation.red_black_list_size", 1),
        robustness_draws=read.integer("evaluation.robustness_draws", 1),
        robustness_spread=read.number("evaluation.robustness_spread", 0, 0.99),
        robustness_seed=read.integer("evaluation.robustness_seed", 0),
        grades=dict(sorted(grades.items(), key=lambda item: -item[1])),
        awards=awards,
        indicators=indicators,
        max_upload_mb=read.number("loader.max_upload_mb", 0.001, 100_000),
        max_rows_per_file=read.integer("loader.max_rows_per_file", 1),
        max_unzipped_mb=read.number("loader.max_unzipped_mb", 1, 1_000_000),
        max_compression_ratio=read.number("loader.max_compression_ratio", 10, 100_000),
        earliest_date=earliest,
        keep_versions=read.integer("loader.keep_versions", 1),
        memory_limit_mb=read.integer("loader.memory_limit_mb", 128),
        effect_min_compounds=read.integer("effect.min_compounds", 2),
        effect_window_months=_window_months(read),
        effect_size_bands=_size_bands(read),
        oidc_provider=_optional_text(read, "access.oidc_provider"),
        identity_claim=read.text("access.identity_claim"),
        oidc_rules=_oidc_rules(read),
        require_sign_in=read.boolean("access.require_sign_in"),
        session_hours=read.number("access.session_hours", 0.1, 24 * 366),
        base_path=normalise_base_path(_optional_text(read, "server.base_path"), read),
        forwarded_allow_ips=read.text("server.forwarded_allow_ips"),
        min_free_disk_mb=read.number("server.min_free_disk_mb", 0, 100_000_000),
        results_cache_mb=read.integer("server.results_cache_mb", 0),
        warm_scopes=read.integer("server.warm_scopes", 0),
        warm_min_tickets=read.integer("server.warm_min_tickets", 0),
        workers=_workers(read),
        bulletin_template=_bulletin_template(read, source),
        bulletin_issuer=_optional_text(read, "bulletin.issuer"),
        bulletin_hot_spots=read.integer("bulletin.hot_spots", 1),
        round_score_step=read.number("rounds.score_step", 0.01, 100),
        calendar_years=_calendar_years(read),
        source_path=source,
        raw=raw,
    )


def _workers(read: _Reader) -> int | None:
    """server.workers: 1–64, or "auto" (None: decided at start from the machine)."""
    if read.get("server.workers") == "auto":
        return None
    value = read.integer("server.workers", 1)
    if value > 64:
        raise read.fail("server.workers", '最多 64 个，或 "auto" / at most 64, or "auto"')
    return value


def _bulletin_template(read: _Reader, source: str) -> str:
    """The street's own bulletin template: "" (the shipped one), or a .docx path, relative
    paths taken from the config file's folder. It must exist when the config is read, so a
    typo is found at start, not when the committee clicks the button."""
    value = _optional_text(read, "bulletin.template")
    if not value:
        return ""
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = Path(source).parent / path
    if path.suffix.lower() != ".docx":
        raise read.fail("bulletin.template", f"应为 .docx 文件，实际为 {value!r}")
    if not path.is_file():
        raise read.fail("bulletin.template", f"指向的文件不存在：{path}")
    return str(path)


def _window_months(read: _Reader) -> int:
    months = read.integer("effect.window_months", 1)
    if months > 60:
        raise read.fail("effect.window_months", f"应在 1 到 60 之间，实际为 {months}")
    return months


def _size_bands(read: _Reader) -> tuple[int, ...]:
    value = read.get("effect.size_bands")
    if (
        not isinstance(value, list)
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
        or list(value) != sorted(set(value))
    ):
        raise read.fail("effect.size_bands", f"应为由小到大、不重复的正整数列表，实际为 {value!r}")
    return tuple(value)


_BASE_PATH = re.compile(r"[A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*")


def normalise_base_path(value: str, read: _Reader | None = None) -> str:
    """A URL sub-path as Streamlit's server.baseUrlPath wants it: no leading or trailing
    slash ("/dashboard/" → "dashboard"); empty for the root."""
    path = value.strip().strip("/")
    if path and not _BASE_PATH.fullmatch(path):
        problem = f"应为网址路径（字母、数字和 . _ ~ -，以 / 分段），实际为 {value!r}"
        if read is None:
            raise ConfigError(f"子路径 {problem}")
        raise read.fail("server.base_path", problem)
    return path


def _optional_text(read: _Reader, key: str) -> str:
    value = read.get(key)
    if not isinstance(value, str):
        raise read.fail(key, f"应为文字（可为空），实际为 {value!r}")
    return value.strip()


def _oidc_rules(read: _Reader) -> tuple[ClaimRule, ...]:
    raw = read.get("access.oidc_rules")
    if not isinstance(raw, list):
        raise read.fail("access.oidc_rules", "应为表的数组（[[access.oidc_rules]]）")
    try:
        return claim_rules(raw, f"配置文件 {read.source}")
    except AccessError as error:
        raise ConfigError(str(error)) from error


def _choice(read: _Reader, key: str, allowed: tuple[str, ...]) -> str:
    value = read.text(key)
    if value not in allowed:
        raise read.fail(key, f"应为 {'/'.join(allowed)} 之一，实际为 {value!r}")
    return value


def _sla_rule(read: _Reader, index: int, rule: Any) -> SlaRule:
    key = f"sla[{index + 1}]"
    if not isinstance(rule, dict):
        raise read.fail(key, "应为表")
    sub = _Reader(rule, read.source)
    try:
        priority = rule.get("priority")
        request_type = rule.get("request_type")
        if priority is not None and priority not in PRIORITIES:
            raise sub.fail("priority", f"应为 {'/'.join(PRIORITIES)} 之一")
        if request_type is not None and request_type not in REQUEST_TYPES:
            raise sub.fail("request_type", f"应为 {'/'.join(REQUEST_TYPES)} 之一")
        respond = _one_of(sub, rule, ("respond_minutes", "respond_working_days"))
        resolve = _one_of(sub, rule, ("resolve_hours", "resolve_days", "resolve_working_days"))
        respond_working = resolve_working = None
        respond_minutes = resolve_hours = resolve_days = None
        if respond == "respond_minutes":
            respond_minutes = sub.number("respond_minutes", 0.01, 1e6)
        else:
            respond_working = _working_days(sub, "respond_working_days")
        if resolve == "resolve_hours":
            resolve_hours = sub.number("resolve_hours", 0.01, 1e5)
        elif resolve == "resolve_days":
            resolve_days = sub.number("resolve_days", 0.01, 366)
            resolve_hours = resolve_days * 24
        else:
            resolve_working = _working_days(sub, "resolve_working_days")
        return SlaRule(
            respond_minutes=respond_minutes,
            resolve_hours=resolve_hours,
            priority=priority,
            request_type=request_type,
            help=str(rule.get("help", "")),
            respond_working_days=respond_working,
            resolve_working_days=resolve_working,
            resolve_days=resolve_days,
        )
    except ConfigError as error:
        raise ConfigError(str(error).replace("中的 ", f"中的 {key}.", 1)) from error


def _one_of(sub: _Reader, rule: dict[str, Any], keys: tuple[str, ...]) -> str:
    """The one key of `keys` the rule gives (a limit is stated in exactly one unit)."""
    given = [key for key in keys if key in rule]
    if len(given) != 1:
        raise sub.fail("/".join(keys), f"应恰好写其中一项（实际写了 {len(given)} 项）")
    return given[0]


def _working_days(sub: _Reader, key: str) -> int:
    days = sub.integer(key, 1)
    if days > 60:
        raise sub.fail(key, f"应在 1 到 60 之间，实际为 {days}")
    return days


def _calendar_years(read: _Reader) -> dict[int, StatedYear]:
    """[[calendar.years]]: year, holidays (dates off), workdays (make-up working days)."""
    entries = read.get("calendar.years")
    if not isinstance(entries, list):
        raise read.fail("calendar.years", "应为表的数组（[[calendar.years]]）")
    stated: dict[int, StatedYear] = {}
    for index, entry in enumerate(entries, start=1):
        key = f"calendar.years[{index}]"
        if not isinstance(entry, dict):
            raise read.fail(key, "应为表")
        sub = _Reader(entry, read.source)
        try:
            year = sub.integer("year", 1900)
            days: dict[str, frozenset[date]] = {}
            for name in ("holidays", "workdays"):
                values = entry.get(name, [])
                if not isinstance(values, list):
                    raise sub.fail(name, "应为日期列表")
                parsed = set()
                for value in values:
                    day = value if isinstance(value, date) else _iso_date(sub, name, value)
                    if day.year != year:
                        raise sub.fail(name, f"中的 {day} 不在 {year} 年")
                    parsed.add(day)
                days[name] = frozenset(parsed)
            if days["holidays"] & days["workdays"]:
                raise sub.fail("workdays", "与 holidays 有相同的日期")
            if year in stated:
                raise sub.fail("year", f"{year} 年写了两次")
        except ConfigError as error:
            raise ConfigError(str(error).replace("中的 ", f"中的 {key}.", 1)) from error
        stated[year] = StatedYear(year, days["holidays"], days["workdays"])
    return stated


def _iso_date(sub: _Reader, key: str, value: Any) -> date:
    try:
        return date.fromisoformat(str(value))
    except ValueError as error:
        raise sub.fail(key, f"中的 {value!r} 应为 YYYY-MM-DD 日期") from error


def _indicator(read: _Reader, index: int, entry: Any) -> Indicator:
    key = f"evaluation.indicators[{index + 1}]"
    if not isinstance(entry, dict):
        raise read.fail(key, "应为表")
    sub = _Reader(entry, read.source)
    try:
        source = sub.text("source")
        if source not in INDICATOR_SOURCES:
            raise sub.fail("source", f"应为 {'/'.join(INDICATOR_SOURCES)} 之一，实际为 {source!r}")
        metric = entry.get("metric")
        floor = target = None
        if source != "evaluator":
            allowed = TICKET_METRICS if source == "tickets" else SURVEY_METRICS
            metric = sub.text("metric")
            if metric not in allowed:
                raise sub.fail("metric", f"应为 {'/'.join(allowed)} 之一，实际为 {metric!r}")
            floor = sub.number("floor", 0, 1)
            target = sub.number("target", 0, 1)
            if target <= floor:
                raise sub.fail("target", f"应大于 floor（{floor}），实际为 {target}")
        return Indicator(
            block=sub.text("block"),
            name=sub.text("name"),
            points=sub.number("points", 0.01, 100),
            source=source,
            metric=metric,
            floor=floor,
            target=target,
            help=str(entry.get("help", "")),
        )
    except ConfigError as error:
        raise ConfigError(str(error).replace("中的 ", f"中的 {key}.", 1)) from error
