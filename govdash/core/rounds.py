"""Online scoring rounds (评委在线打分): rounds, evaluators, recusals, drafts, submissions, locks.

A round is not a warehouse load: scores are typed one at a time by several evaluators over
days, and copying the warehouse for every keystroke would be absurd. So rounds live beside the
warehouse like the accounts and the audit log — `rounds.sqlite3` in the warehouse's folder
(govdash.core.warehouse.data_dir), or $GOVDASH_ROUNDS — a SQLite file in WAL mode, mode 0600,
safe for several app processes and the CLI at once. When a round is locked its submitted scores
are frozen, under the evaluators' pseudonyms (评委-XXXXXX, the loader's keyed hash, so an
evaluator who also scored in a workbook is the same evaluator), in `final_scores`; the read side
(govdash.analytics.queries.evaluation) merges those with the workbook scores of the warehouse.

Every operation takes the acting Principal and checks it here, whatever page or command calls
it: opening, assigning, recusing, reminding, locking and reopening need the admin role (and a
round opened in the admin's scope); reading or saving a form needs the evaluator assigned to
the round, the unit offered to them (not recused, inside their data scope) and an open round.
Nobody reads another evaluator's scores before the lock: before it, progress says who has
submitted what, never the values. Every change is recorded in the audit log (govdash.core.audit;
the score values themselves are not written there).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from govdash.core.access import Principal, Scope
from govdash.core.accounts import AccountStore
from govdash.core.audit import AuditLog
from govdash.core.files import state_database
from govdash.core.warehouse import data_dir

if TYPE_CHECKING:  # pandas costs half a second to import; the CLI imports this module early
    import pandas as pd

ROUNDS_ENV = "GOVDASH_ROUNDS"
LEVELS = ("compound", "community", "property_company")
OPEN, LOCKED = "open", "locked"
NOT_STARTED, DRAFT, SUBMITTED = "not_started", "draft", "submitted"
STATUS_LABELS = {NOT_STARTED: "未开始", DRAFT: "草稿", SUBMITTED: "已提交"}
MAX_COMMENT = 2000
MAX_REASON = 200

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rounds (
    round_id     INTEGER PRIMARY KEY AUTOINCREMENT,
    year         INTEGER NOT NULL,
    level        TEXT NOT NULL,
    title        TEXT NOT NULL,
    scope        TEXT NOT NULL,           -- the opening admin's scope: district, street:…, community:…
    indicators   TEXT NOT NULL,           -- JSON: the evaluator indicators of the config at opening
    score_step   REAL NOT NULL,
    deadline     TEXT NOT NULL,           -- ISO date; scores stay editable after it until the lock
    status       TEXT NOT NULL,           -- open | locked
    opened_by    TEXT NOT NULL,
    opened_at    TEXT NOT NULL,
    locked_by    TEXT,
    locked_at    TEXT
);
CREATE TABLE IF NOT EXISTS round_units (
    round_id     INTEGER NOT NULL,
    unit         TEXT NOT NULL,
    parent       TEXT,
    communities  TEXT NOT NULL,           -- JSON list: the communities the unit lies in
    streets      TEXT NOT NULL,           -- JSON list: the streets it lies in
    PRIMARY KEY (round_id, unit)
);
CREATE TABLE IF NOT EXISTS assignments (
    round_id     INTEGER NOT NULL,
    evaluator    TEXT NOT NULL,           -- account name (local) or OIDC identity
    affiliation  TEXT,                    -- the community the evaluator belongs to, if any
    assigned_by  TEXT NOT NULL,
    assigned_at  TEXT NOT NULL,
    PRIMARY KEY (round_id, evaluator)
);
CREATE TABLE IF NOT EXISTS recusals (
    round_id     INTEGER NOT NULL,
    evaluator    TEXT NOT NULL,
    unit         TEXT NOT NULL,
    reason       TEXT NOT NULL,
    recused_by   TEXT NOT NULL,
    recused_at   TEXT NOT NULL,
    PRIMARY KEY (round_id, evaluator, unit)
);
CREATE TABLE IF NOT EXISTS scores (
    round_id     INTEGER NOT NULL,
    evaluator    TEXT NOT NULL,
    unit         TEXT NOT NULL,
    indicator    TEXT NOT NULL,
    score        REAL NOT NULL,
    saved_at     TEXT NOT NULL,
    PRIMARY KEY (round_id, evaluator, unit, indicator)
);
CREATE TABLE IF NOT EXISTS forms (
    round_id     INTEGER NOT NULL,
    evaluator    TEXT NOT NULL,
    unit         TEXT NOT NULL,
    comment      TEXT NOT NULL DEFAULT '',
    saved_at     TEXT,
    submitted_at TEXT,
    PRIMARY KEY (round_id, evaluator, unit)
);
CREATE TABLE IF NOT EXISTS reminders (
    reminder_id  INTEGER PRIMARY KEY AUTOINCREMENT,
    round_id     INTEGER NOT NULL,
    evaluator    TEXT NOT NULL,
    reminded_by  TEXT NOT NULL,
    reminded_at  TEXT NOT NULL,
    message      TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS final_scores (
    round_id     INTEGER NOT NULL,
    year         INTEGER NOT NULL,
    level        TEXT NOT NULL,
    unit         TEXT NOT NULL,
    evaluator    TEXT NOT NULL,           -- pseudonym 评委-XXXXXX
    indicator    TEXT NOT NULL,
    score        REAL NOT NULL,
    PRIMARY KEY (round_id, unit, evaluator, indicator)
);
"""


class RoundError(ValueError):
    """A round operation that cannot be done; the message says why, in Chinese."""


def rounds_path(db_path: Path) -> Path:
    """$GOVDASH_ROUNDS, else `rounds.sqlite3` in the warehouse's folder."""
    return rounds_path_in(data_dir(db_path))


def rounds_path_in(folder: Path) -> Path:
    """$GOVDASH_ROUNDS, else `rounds.sqlite3` in the installation folder `folder`."""
    return Path(os.environ.get(ROUNDS_ENV) or folder / "rounds.sqlite3")


def evaluator_pseudonym(name: str, key: str) -> str:
    """The loader's pseudonym of an evaluator name (govdash/etl/clean.py): 评委- and the first six
    hex digits of SHA-256 over "<key>|evaluator|<name>", upper case."""
    digest = hashlib.sha256(f"{key}|evaluator|{name.strip()}".encode()).hexdigest()
    return "评委-" + digest[:6].upper()


def evaluator_scope(accounts: AccountStore, name: str, oidc_configured: bool) -> Scope | None:
    """Whether `name` can be assigned as an evaluator: a local account with the evaluator role
    (its scope is returned), or — where OIDC is configured and no local account has the name —
    an OIDC identity (None: its role and scope are known only when it signs in)."""
    account = accounts.get(name)
    if account is not None:
        if account.role != "evaluator":
            raise RoundError(
                f"账号 {name} 的角色是 {account.role}，不是评委（evaluator）：评委账号请用 "
                f"govdash users add {name} --role evaluator 建立"
            )
        return account.scope
    if not oidc_configured:
        raise RoundError(
            f"没有名为 {name} 的本地账号。请先用 govdash users add {name} --role evaluator 建立评委账号"
            "（使用统一身份认证时，填写其身份标识，如邮箱）"
        )
    return None


def _now() -> str:
    return datetime.now().replace(microsecond=0).isoformat(sep=" ")


@dataclass(frozen=True)
class RoundIndicator:
    name: str
    block: str
    points: float
    help: str = ""


@dataclass(frozen=True)
class Round:
    round_id: int
    year: int
    level: str
    title: str
    scope: Scope
    indicators: tuple[RoundIndicator, ...]
    score_step: float
    deadline: date
    status: str
    opened_by: str
    opened_at: str
    locked_by: str | None
    locked_at: str | None

    @property
    def is_locked(self) -> bool:
        return self.status == LOCKED

    def is_past_deadline(self, now: datetime | None = None) -> bool:
        return (now or datetime.now()) > datetime.combine(self.deadline, time.max)

    def label(self) -> str:
        return f"第{self.round_id}轮：{self.title}"

    def indicator(self, name: str) -> RoundIndicator:
        for indicator in self.indicators:
            if indicator.name == name:
                return indicator
        raise RoundError(f"第{self.round_id}轮没有“{name}”这个评分指标")


@dataclass(frozen=True)
class Form:
    """One evaluator's form for one unit: scores by indicator (None = not yet scored)."""

    unit: str
    scores: dict[str, float | None]
    comment: str
    saved_at: str | None
    submitted_at: str | None

    @property
    def is_complete(self) -> bool:
        return all(value is not None for value in self.scores.values())

    @property
    def status(self) -> str:
        if self.submitted_at and self.is_complete:
            return SUBMITTED
        if any(value is not None for value in self.scores.values()) or self.comment:
            return DRAFT
        return NOT_STARTED


@dataclass(frozen=True)
class Reminder:
    reminded_by: str
    reminded_at: str
    message: str


def check_score(indicator: RoundIndicator, value: float, step: float) -> float:
    """`value` if it is a number from 0 to the indicator's points in steps of `step`."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RoundError(f"“{indicator.name}”的得分应为数字")
    if value < 0 or value > indicator.points + 1e-9:
        raise RoundError(
            f"“{indicator.name}”的得分应在 0 到 {indicator.points:g} 分之间，实际为 {value:g}"
        )
    steps = value / step
    if abs(steps - round(steps)) > 1e-6:
        raise RoundError(
            f"“{indicator.name}”的得分应以 {step:g} 分为单位（如 0、{step:g}、{2 * step:g}），"
            f"实际为 {value:g}"
        )
    return round(round(steps) * step, 6)


def _text_or_none(value: Any) -> str | None:
    """A parent name, or None for a missing one (None or NaN)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value)


def _covered(scope: Scope, communities: Sequence[str], streets: Sequence[str]) -> bool:
    """Whether an account of `scope` may see a unit lying in these communities and streets."""
    if scope.level == "district":
        return True
    return scope.name in (communities if scope.level == "community" else streets)


class RoundStore:
    """The rounds file. Every public method takes the acting principal and checks it."""

    def __init__(self, path: Path, audit: AuditLog | None = None) -> None:
        self.path = Path(path)
        self.audit = audit

    # --- plumbing -------------------------------------------------------------------------------
    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        with state_database(self.path, _SCHEMA) as con:
            yield con

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def _record(self, actor: Principal, action: str, round_id: int, **detail: Any) -> None:
        if self.audit is not None:
            self.audit.record(
                actor.name,
                action,
                target=f"round:{round_id}",
                detail={"round": round_id, **detail},
                method=actor.method,
            )

    @staticmethod
    def _round_from_row(row: Sequence[Any]) -> Round:
        indicators = tuple(
            RoundIndicator(
                str(i["name"]), str(i["block"]), float(i["points"]), str(i.get("help", ""))
            )
            for i in json.loads(row[5])
        )
        return Round(
            round_id=int(row[0]),
            year=int(row[1]),
            level=str(row[2]),
            title=str(row[3]),
            scope=Scope.parse(str(row[4])),
            indicators=indicators,
            score_step=float(row[6]),
            deadline=date.fromisoformat(str(row[7])),
            status=str(row[8]),
            opened_by=str(row[9]),
            opened_at=str(row[10]),
            locked_by=row[11],
            locked_at=row[12],
        )

    _ROUND_COLUMNS = (
        "round_id, year, level, title, scope, indicators, score_step, deadline, status, "
        "opened_by, opened_at, locked_by, locked_at"
    )

    def _round(self, con: sqlite3.Connection, round_id: int) -> Round:
        row = con.execute(
            f"SELECT {self._ROUND_COLUMNS} FROM rounds WHERE round_id = ?", (int(round_id),)
        ).fetchone()
        if row is None:
            raise RoundError(f"没有第{round_id}轮评分")
        return self._round_from_row(row)

    # --- checks ---------------------------------------------------------------------------------
    @staticmethod
    def _admin(actor: Principal, round_: Round | None = None) -> None:
        if actor.role != "admin":
            raise PermissionError(f"{actor.name} 不是管理员，不能管理评分轮次")
        if round_ is not None and actor.scope != round_.scope and actor.scope.is_restricted:
            raise PermissionError(
                f"第{round_.round_id}轮由{round_.scope.label()}的管理员开启，"
                f"{actor.scope.label()}的管理员不能管理"
            )

    def _offered_units(
        self, con: sqlite3.Connection, round_id: int, evaluator: str, scope: Scope
    ) -> list[tuple[str, str | None]]:
        """(unit, parent) the evaluator scores: assigned, not recused, inside their scope."""
        rows = con.execute(
            """SELECT u.unit, u.parent, u.communities, u.streets FROM round_units AS u
               WHERE u.round_id = ? AND NOT EXISTS (
                   SELECT 1 FROM recusals AS r
                   WHERE r.round_id = u.round_id AND r.evaluator = ? AND r.unit = u.unit)
               ORDER BY u.unit""",
            (round_id, evaluator),
        ).fetchall()
        return [
            (str(unit), parent)
            for unit, parent, communities, streets in rows
            if _covered(scope, json.loads(communities), json.loads(streets))
        ]

    def _evaluator(self, con: sqlite3.Connection, actor: Principal, round_id: int) -> Round:
        round_ = self._round(con, round_id)
        if actor.role != "evaluator":
            raise PermissionError(f"{actor.name} 不是评委账号，不能打分")
        found = con.execute(
            "SELECT 1 FROM assignments WHERE round_id = ? AND evaluator = ?",
            (round_.round_id, actor.name),
        ).fetchone()
        if found is None:
            raise PermissionError(f"{actor.name} 没有被指派参加第{round_id}轮评分")
        return round_

    def _form_unit(
        self, con: sqlite3.Connection, actor: Principal, round_id: int, unit: str
    ) -> Round:
        round_ = self._evaluator(con, actor, round_id)
        offered = {name for name, _ in self._offered_units(con, round_id, actor.name, actor.scope)}
        if unit not in offered:
            raise PermissionError(
                f"第{round_id}轮没有请 {actor.name} 为“{unit}”打分（已回避或不在其范围内）"
            )
        return round_

    @staticmethod
    def _open(round_: Round) -> None:
        if round_.is_locked:
            raise RoundError(f"第{round_.round_id}轮已于 {round_.locked_at} 锁定，评分不能再修改")

    # --- admin: rounds --------------------------------------------------------------------------
    def open_round(
        self,
        actor: Principal,
        year: int,
        level: str,
        indicators: Sequence[RoundIndicator],
        units: pd.DataFrame,
        deadline: date,
        score_step: float,
        title: str = "",
    ) -> Round:
        """Open a round for `year` and `level`; `units` (unit, parent, communities, streets —
        lists) are the units to score, `indicators` the evaluator-scored ones of the config."""
        self._admin(actor)
        if level not in LEVELS:
            raise RoundError(f"考评层级应为 {'/'.join(LEVELS)} 之一，实际为 {level!r}")
        if not indicators:
            raise RoundError('配置中没有评委打分的指标（source = "evaluator"），无法开启在线打分')
        if units.empty:
            raise RoundError(f"{year}年在{actor.scope.label()}没有可考评的单位（小区台账中没有）")
        if not 0 < score_step <= min(i.points for i in indicators):
            raise RoundError(f"打分分度 {score_step:g} 不合理")
        names = {"compound": "小区", "community": "社区", "property_company": "物业企业"}
        text = title.strip() or f"{year}年度{names[level]}评优评先"
        document = json.dumps(
            [
                {"name": i.name, "block": i.block, "points": i.points, "help": i.help}
                for i in indicators
            ],
            ensure_ascii=False,
        )
        with self._transaction() as con:
            existing = con.execute(
                "SELECT round_id FROM rounds WHERE year = ? AND level = ? AND scope = ?",
                (int(year), level, actor.scope.to_text()),
            ).fetchone()
            if existing is not None:
                raise RoundError(
                    f"{year}年{names[level]}层级在{actor.scope.label()}已有第{existing[0]}轮评分；"
                    "要修改请重新开放该轮，而不是另开一轮"
                )
            cursor = con.execute(
                """INSERT INTO rounds (year, level, title, scope, indicators, score_step, deadline,
                       status, opened_by, opened_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    int(year),
                    level,
                    text[:MAX_REASON],
                    actor.scope.to_text(),
                    document,
                    float(score_step),
                    deadline.isoformat(),
                    OPEN,
                    actor.name,
                    _now(),
                ),
            )
            round_id = int(cursor.lastrowid or 0)
            con.executemany(
                "INSERT INTO round_units VALUES (?, ?, ?, ?, ?)",
                [
                    (
                        round_id,
                        str(row["unit"]),
                        _text_or_none(row["parent"]),
                        json.dumps(sorted(str(c) for c in row["communities"]), ensure_ascii=False),
                        json.dumps(sorted(str(s) for s in row["streets"]), ensure_ascii=False),
                    )
                    for row in units.to_dict("records")
                ],
            )
            round_ = self._round(con, round_id)
        self._record(
            actor,
            "round_opened",
            round_id,
            year=year,
            level=level,
            units=len(units),
            indicators=[i.name for i in indicators],
            deadline=deadline.isoformat(),
        )
        return round_

    def rounds(self, actor: Principal) -> list[Round]:
        """Rounds an admin may manage (those of the admin's scope; all for the district)."""
        self._admin(actor)
        with self._connect() as con:
            rows = con.execute(
                f"SELECT {self._ROUND_COLUMNS} FROM rounds ORDER BY round_id DESC"
            ).fetchall()
        found = [self._round_from_row(row) for row in rows]
        if actor.scope.is_restricted:
            found = [r for r in found if r.scope == actor.scope]
        return found

    def get(self, actor: Principal, round_id: int) -> Round:
        with self._connect() as con:
            round_ = self._round(con, round_id)
            if actor.role == "admin":
                self._admin(actor, round_)
            else:
                self._evaluator(con, actor, round_id)
        return round_

    def units(self, actor: Principal, round_id: int) -> pd.DataFrame:
        """unit, parent, communities, streets of a round (admin)."""
        import pandas as pd

        with self._connect() as con:
            self._admin(actor, self._round(con, round_id))
            rows = con.execute(
                "SELECT unit, parent, communities, streets FROM round_units WHERE round_id = ? "
                "ORDER BY unit",
                (round_id,),
            ).fetchall()
        return pd.DataFrame(
            [(u, p, json.loads(c), json.loads(s)) for u, p, c, s in rows],
            columns=["unit", "parent", "communities", "streets"],
        )

    def set_deadline(self, actor: Principal, round_id: int, deadline: date) -> None:
        with self._transaction() as con:
            round_ = self._round(con, round_id)
            self._admin(actor, round_)
            self._open(round_)
            con.execute(
                "UPDATE rounds SET deadline = ? WHERE round_id = ?",
                (deadline.isoformat(), round_id),
            )
        self._record(actor, "round_changed", round_id, deadline=deadline.isoformat())

    # --- admin: evaluators and recusals ---------------------------------------------------------
    def assign(
        self, actor: Principal, round_id: int, evaluator: str, affiliation: str | None = None
    ) -> list[str]:
        """Assign an evaluator (account name or OIDC identity). With an `affiliation` (the
        community the evaluator belongs to), the units in that community are recused with that
        reason. Returns the units recused for it."""
        name = evaluator.strip()
        if not name:
            raise RoundError("评委名称不能为空")
        community = (affiliation or "").strip() or None
        with self._transaction() as con:
            round_ = self._round(con, round_id)
            self._admin(actor, round_)
            self._open(round_)
            con.execute(
                "INSERT OR REPLACE INTO assignments VALUES (?, ?, ?, ?, ?)",
                (round_id, name, community, actor.name, _now()),
            )
            recused: list[str] = []
            if community is not None:
                reason = f"评委所属社区：{community}"
                for unit, communities in con.execute(
                    "SELECT unit, communities FROM round_units WHERE round_id = ?", (round_id,)
                ).fetchall():
                    if community in json.loads(communities) or unit == community:
                        recused.append(str(unit))
                con.executemany(
                    "INSERT OR IGNORE INTO recusals VALUES (?, ?, ?, ?, ?, ?)",
                    [(round_id, name, unit, reason, actor.name, _now()) for unit in recused],
                )
        self._record(
            actor, "round_changed", round_id, assigned=name, affiliation=community, recused=recused
        )
        return recused

    def unassign(self, actor: Principal, round_id: int, evaluator: str) -> None:
        with self._transaction() as con:
            round_ = self._round(con, round_id)
            self._admin(actor, round_)
            self._open(round_)
            for table in ("assignments", "recusals"):
                con.execute(
                    f"DELETE FROM {table} WHERE round_id = ? AND evaluator = ?",
                    (round_id, evaluator),
                )
        self._record(actor, "round_changed", round_id, unassigned=evaluator)

    def recuse(
        self, actor: Principal, round_id: int, evaluator: str, units: Iterable[str], reason: str
    ) -> None:
        """The evaluator does not score these units, for the reason given (required)."""
        text = reason.strip()
        if not text:
            raise RoundError("请写明回避理由")
        chosen = sorted({str(u) for u in units})
        with self._transaction() as con:
            round_ = self._round(con, round_id)
            self._admin(actor, round_)
            self._open(round_)
            if (
                con.execute(
                    "SELECT 1 FROM assignments WHERE round_id = ? AND evaluator = ?",
                    (round_id, evaluator),
                ).fetchone()
                is None
            ):
                raise RoundError(f"{evaluator} 没有被指派参加第{round_id}轮")
            known = {
                str(u)
                for (u,) in con.execute(
                    "SELECT unit FROM round_units WHERE round_id = ?", (round_id,)
                ).fetchall()
            }
            unknown = [u for u in chosen if u not in known]
            if unknown:
                raise RoundError(f"第{round_id}轮没有这些单位：{'、'.join(unknown)}")
            con.executemany(
                "INSERT OR REPLACE INTO recusals VALUES (?, ?, ?, ?, ?, ?)",
                [(round_id, evaluator, u, text[:MAX_REASON], actor.name, _now()) for u in chosen],
            )
        self._record(
            actor, "round_changed", round_id, recused=chosen, evaluator=evaluator, reason=text
        )

    def withdraw_recusal(self, actor: Principal, round_id: int, evaluator: str, unit: str) -> None:
        with self._transaction() as con:
            round_ = self._round(con, round_id)
            self._admin(actor, round_)
            self._open(round_)
            con.execute(
                "DELETE FROM recusals WHERE round_id = ? AND evaluator = ? AND unit = ?",
                (round_id, evaluator, unit),
            )
        self._record(actor, "round_changed", round_id, recusal_withdrawn=unit, evaluator=evaluator)

    def assignments(
        self, actor: Principal, round_id: int, scopes: dict[str, Scope] | None = None
    ) -> pd.DataFrame:
        """Per evaluator: affiliation, units to score, recused units with reasons, units outside
        the evaluator's data scope (from `scopes`, the local accounts' scopes; an evaluator not
        in it — an OIDC identity — is taken as seeing the whole district until they sign in)."""
        import pandas as pd

        with self._connect() as con:
            self._admin(actor, self._round(con, round_id))
            evaluators = con.execute(
                "SELECT evaluator, affiliation FROM assignments WHERE round_id = ? ORDER BY evaluator",
                (round_id,),
            ).fetchall()
            all_units = {
                str(u)
                for (u,) in con.execute(
                    "SELECT unit FROM round_units WHERE round_id = ?", (round_id,)
                ).fetchall()
            }
            rows = []
            for evaluator, affiliation in evaluators:
                scope = (scopes or {}).get(evaluator, Scope.district())
                offered = [u for u, _ in self._offered_units(con, round_id, evaluator, scope)]
                recused = con.execute(
                    "SELECT unit, reason FROM recusals WHERE round_id = ? AND evaluator = ? ORDER BY unit",
                    (round_id, evaluator),
                ).fetchall()
                outside = sorted(all_units - set(offered) - {u for u, _ in recused})
                rows.append(
                    {
                        "evaluator": evaluator,
                        "affiliation": affiliation or "",
                        "units": len(offered),
                        "recused": "；".join(f"{u}（{r}）" for u, r in recused),
                        "recused_units": [u for u, _ in recused],
                        "outside_scope": "、".join(outside),
                    }
                )
        return pd.DataFrame(
            rows,
            columns=[
                "evaluator",
                "affiliation",
                "units",
                "recused",
                "recused_units",
                "outside_scope",
            ],
        )

    # --- admin: progress, reminders, lock ---------------------------------------------------------
    def progress(
        self,
        actor: Principal,
        round_id: int,
        trim_from_evaluators: int,
        scopes: dict[str, Scope] | None = None,
        now: datetime | None = None,
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(per evaluator, per unit) progress — counts and states, never score values.

        Per evaluator: units, submitted, drafts, not_started, last_saved_at, reminders,
        is_late (past the deadline with units not submitted). Per unit: evaluators (assigned,
        not recused, able to see it), submitted, is_short (fewer submitted than
        `trim_from_evaluators`, so the trimmed mean cannot be used: the plain mean is)."""
        import pandas as pd

        with self._connect() as con:
            round_ = self._round(con, round_id)
            self._admin(actor, round_)
            past = round_.is_past_deadline(now)
            evaluators = [
                str(e)
                for (e,) in con.execute(
                    "SELECT evaluator FROM assignments WHERE round_id = ? ORDER BY evaluator",
                    (round_id,),
                ).fetchall()
            ]
            per_unit: dict[str, list[int]] = {
                str(u): [0, 0]
                for (u,) in con.execute(
                    "SELECT unit FROM round_units WHERE round_id = ? ORDER BY unit", (round_id,)
                ).fetchall()
            }
            rows = []
            for evaluator in evaluators:
                scope = (scopes or {}).get(evaluator, Scope.district())
                offered = [u for u, _ in self._offered_units(con, round_id, evaluator, scope)]
                states = [self._form(con, round_, evaluator, unit).status for unit in offered]
                last = con.execute(
                    "SELECT max(saved_at) FROM forms WHERE round_id = ? AND evaluator = ?",
                    (round_id, evaluator),
                ).fetchone()
                reminded = con.execute(
                    "SELECT count(*) FROM reminders WHERE round_id = ? AND evaluator = ?",
                    (round_id, evaluator),
                ).fetchone()
                submitted = states.count(SUBMITTED)
                for unit, state in zip(offered, states, strict=True):
                    per_unit[unit][0] += 1
                    per_unit[unit][1] += state == SUBMITTED
                rows.append(
                    {
                        "evaluator": evaluator,
                        "units": len(offered),
                        "submitted": submitted,
                        "drafts": states.count(DRAFT),
                        "not_started": states.count(NOT_STARTED),
                        "last_saved_at": (last[0] if last else None) or "",
                        "reminders": int(reminded[0]) if reminded else 0,
                        "is_late": past and submitted < len(offered),
                    }
                )
        evaluator_frame = pd.DataFrame(
            rows,
            columns=[
                "evaluator",
                "units",
                "submitted",
                "drafts",
                "not_started",
                "last_saved_at",
                "reminders",
                "is_late",
            ],
        )
        unit_frame = pd.DataFrame(
            [
                {
                    "unit": unit,
                    "evaluators": counts[0],
                    "submitted": counts[1],
                    "is_short": counts[1] < trim_from_evaluators,
                }
                for unit, counts in per_unit.items()
            ],
            columns=["unit", "evaluators", "submitted", "is_short"],
        )
        return evaluator_frame, unit_frame

    def remind(
        self, actor: Principal, round_id: int, evaluators: Iterable[str], message: str
    ) -> list[str]:
        """Record a reminder for each evaluator: there is no mail server, so the reminder is
        shown to the evaluator at the top of their scoring page until the round is locked, and
        the admin is given the text to send by hand (WeChat, SMS). Returns who was reminded."""
        chosen = sorted({e.strip() for e in evaluators if e.strip()})
        text = message.strip()
        if not chosen:
            raise RoundError("请选择要提醒的评委")
        if not text:
            raise RoundError("提醒内容不能为空")
        with self._transaction() as con:
            round_ = self._round(con, round_id)
            self._admin(actor, round_)
            self._open(round_)
            assigned = {
                str(e)
                for (e,) in con.execute(
                    "SELECT evaluator FROM assignments WHERE round_id = ?", (round_id,)
                ).fetchall()
            }
            unknown = [e for e in chosen if e not in assigned]
            if unknown:
                raise RoundError(f"这些人没有被指派参加第{round_id}轮：{'、'.join(unknown)}")
            con.executemany(
                "INSERT INTO reminders (round_id, evaluator, reminded_by, reminded_at, message) "
                "VALUES (?, ?, ?, ?, ?)",
                [(round_id, e, actor.name, _now(), text[:MAX_COMMENT]) for e in chosen],
            )
        self._record(actor, "round_reminded", round_id, evaluators=chosen)
        return chosen

    def lock(self, actor: Principal, round_id: int, pseudonym: Callable[[str], str]) -> int:
        """Make the submitted scores final: copy them, under pseudonyms, into final_scores.
        Drafts never submitted are left out. Returns the number of scores made final."""
        with self._transaction() as con:
            round_ = self._round(con, round_id)
            self._admin(actor, round_)
            self._open(round_)
            final: list[tuple[Any, ...]] = []
            forms = 0
            for evaluator, unit in con.execute(
                "SELECT evaluator, unit FROM forms WHERE round_id = ? AND submitted_at IS NOT NULL "
                "ORDER BY evaluator, unit",
                (round_id,),
            ).fetchall():
                form = self._form(con, round_, evaluator, unit)
                if form.status != SUBMITTED:
                    continue
                forms += 1
                alias = pseudonym(evaluator)
                final.extend(
                    (round_id, round_.year, round_.level, unit, alias, name, value)
                    for name, value in form.scores.items()
                )
            if not final:
                raise RoundError(f"第{round_id}轮还没有已提交的评分，不能锁定")
            con.execute("DELETE FROM final_scores WHERE round_id = ?", (round_id,))
            con.executemany("INSERT INTO final_scores VALUES (?, ?, ?, ?, ?, ?, ?)", final)
            con.execute(
                "UPDATE rounds SET status = ?, locked_by = ?, locked_at = ? WHERE round_id = ?",
                (LOCKED, actor.name, _now(), round_id),
            )
        self._record(actor, "round_locked", round_id, forms=forms, scores=len(final))
        return len(final)

    def reopen(self, actor: Principal, round_id: int, reason: str) -> None:
        """Open a locked round again (its final scores leave the evaluation until the next lock)."""
        text = reason.strip()
        if not text:
            raise RoundError("重新开放需要写明理由")
        with self._transaction() as con:
            round_ = self._round(con, round_id)
            self._admin(actor, round_)
            if not round_.is_locked:
                raise RoundError(f"第{round_id}轮没有锁定，无需重新开放")
            con.execute("DELETE FROM final_scores WHERE round_id = ?", (round_id,))
            con.execute(
                "UPDATE rounds SET status = ?, locked_by = NULL, locked_at = NULL WHERE round_id = ?",
                (OPEN, round_id),
            )
        self._record(actor, "round_reopened", round_id, reason=text[:MAX_REASON])

    # --- evaluators -------------------------------------------------------------------------------
    def my_rounds(self, actor: Principal) -> list[Round]:
        """The rounds an evaluator is assigned to, newest first."""
        if actor.role != "evaluator":
            return []
        with self._connect() as con:
            rows = con.execute(
                f"""SELECT {self._ROUND_COLUMNS} FROM rounds WHERE round_id IN (
                        SELECT round_id FROM assignments WHERE evaluator = ?)
                    ORDER BY round_id DESC""",
                (actor.name,),
            ).fetchall()
        return [self._round_from_row(row) for row in rows]

    def my_units(self, actor: Principal, round_id: int) -> pd.DataFrame:
        """unit, parent, status, submitted_at of the units offered to the evaluator."""
        import pandas as pd

        with self._connect() as con:
            round_ = self._evaluator(con, actor, round_id)
            rows = []
            for unit, parent in self._offered_units(con, round_id, actor.name, actor.scope):
                form = self._form(con, round_, actor.name, unit)
                rows.append((unit, parent, form.status, form.submitted_at))
        return pd.DataFrame(rows, columns=["unit", "parent", "status", "submitted_at"])

    def _form(self, con: sqlite3.Connection, round_: Round, evaluator: str, unit: str) -> Form:
        saved = dict(
            con.execute(
                "SELECT indicator, score FROM scores WHERE round_id = ? AND evaluator = ? AND unit = ?",
                (round_.round_id, evaluator, unit),
            ).fetchall()
        )
        row = con.execute(
            "SELECT comment, saved_at, submitted_at FROM forms "
            "WHERE round_id = ? AND evaluator = ? AND unit = ?",
            (round_.round_id, evaluator, unit),
        ).fetchone()
        comment, saved_at, submitted_at = row if row else ("", None, None)
        return Form(
            unit=unit,
            scores={
                i.name: (float(saved[i.name]) if i.name in saved else None)
                for i in round_.indicators
            },
            comment=str(comment or ""),
            saved_at=saved_at,
            submitted_at=submitted_at,
        )

    def my_form(self, actor: Principal, round_id: int, unit: str) -> Form:
        """The evaluator's own form for a unit (never anybody else's)."""
        with self._connect() as con:
            round_ = self._form_unit(con, actor, round_id, unit)
            return self._form(con, round_, actor.name, unit)

    def _touch(self, con: sqlite3.Connection, round_id: int, evaluator: str, unit: str) -> None:
        con.execute(
            """INSERT INTO forms (round_id, evaluator, unit, saved_at) VALUES (?, ?, ?, ?)
               ON CONFLICT (round_id, evaluator, unit) DO UPDATE SET saved_at = excluded.saved_at""",
            (round_id, evaluator, unit, _now()),
        )

    def save_score(
        self, actor: Principal, round_id: int, unit: str, indicator: str, value: float | None
    ) -> Form:
        """Save one score as the evaluator types it (None clears it). A submitted form stays
        submitted while it is complete; clearing a score makes it a draft again."""
        with self._transaction() as con:
            round_ = self._form_unit(con, actor, round_id, unit)
            self._open(round_)
            chosen = round_.indicator(indicator)
            if value is None:
                con.execute(
                    "DELETE FROM scores WHERE round_id = ? AND evaluator = ? AND unit = ? AND indicator = ?",
                    (round_id, actor.name, unit, indicator),
                )
            else:
                score = check_score(chosen, value, round_.score_step)
                con.execute(
                    "INSERT OR REPLACE INTO scores VALUES (?, ?, ?, ?, ?, ?)",
                    (round_id, actor.name, unit, indicator, score, _now()),
                )
            self._touch(con, round_id, actor.name, unit)
            form = self._form(con, round_, actor.name, unit)
            if form.submitted_at and not form.is_complete:
                con.execute(
                    "UPDATE forms SET submitted_at = NULL WHERE round_id = ? AND evaluator = ? AND unit = ?",
                    (round_id, actor.name, unit),
                )
                form = self._form(con, round_, actor.name, unit)
        self._record(
            actor, "round_saved", round_id, unit=unit, indicator=indicator, cleared=value is None
        )
        return form

    def save_comment(self, actor: Principal, round_id: int, unit: str, comment: str) -> None:
        text = comment.strip()[:MAX_COMMENT]
        with self._transaction() as con:
            round_ = self._form_unit(con, actor, round_id, unit)
            self._open(round_)
            self._touch(con, round_id, actor.name, unit)
            con.execute(
                "UPDATE forms SET comment = ? WHERE round_id = ? AND evaluator = ? AND unit = ?",
                (text, round_id, actor.name, unit),
            )
        self._record(actor, "round_saved", round_id, unit=unit, comment=True)

    def submit(self, actor: Principal, round_id: int, unit: str) -> Form:
        """Submit a complete form (it stays editable until the round is locked)."""
        with self._transaction() as con:
            round_ = self._form_unit(con, actor, round_id, unit)
            self._open(round_)
            form = self._form(con, round_, actor.name, unit)
            missing = [name for name, value in form.scores.items() if value is None]
            if missing:
                raise RoundError(f"“{unit}”还有指标没有打分：{'、'.join(missing)}")
            self._touch(con, round_id, actor.name, unit)
            con.execute(
                "UPDATE forms SET submitted_at = ? WHERE round_id = ? AND evaluator = ? AND unit = ?",
                (_now(), round_id, actor.name, unit),
            )
            form = self._form(con, round_, actor.name, unit)
        self._record(actor, "round_submitted", round_id, unit=unit)
        return form

    def my_reminders(self, actor: Principal, round_id: int) -> list[Reminder]:
        with self._connect() as con:
            self._evaluator(con, actor, round_id)
            rows = con.execute(
                "SELECT reminded_by, reminded_at, message FROM reminders "
                "WHERE round_id = ? AND evaluator = ? ORDER BY reminder_id DESC",
                (round_id, actor.name),
            ).fetchall()
        return [Reminder(*row) for row in rows]

    # --- the read side ------------------------------------------------------------------------------
    def final_scores(self, year: int | None = None, level: str | None = None) -> pd.DataFrame:
        """Locked rounds' scores: round_id, year, level, unit, evaluator (pseudonym), indicator,
        score, locked_at. Only what a lock made final, so no permission is needed beyond the
        evaluation page's own."""
        import pandas as pd

        columns = [
            "round_id",
            "year",
            "level",
            "unit",
            "evaluator",
            "indicator",
            "score",
            "locked_at",
        ]
        if not self.path.exists():
            return pd.DataFrame(columns=columns)
        with self._connect() as con:
            rows = con.execute(
                """SELECT f.round_id, f.year, f.level, f.unit, f.evaluator, f.indicator, f.score,
                          r.locked_at
                   FROM final_scores AS f JOIN rounds AS r ON r.round_id = f.round_id
                   WHERE r.status = 'locked' AND (? IS NULL OR f.year = ?) AND (? IS NULL OR f.level = ?)
                   ORDER BY f.round_id, f.unit, f.indicator, f.evaluator""",
                (year, year, level, level),
            ).fetchall()
        frame = pd.DataFrame(rows, columns=columns)
        frame["score"] = frame["score"].astype(float)
        return frame

    def final_comments(
        self, actor: Principal, round_id: int, pseudonym: Callable[[str], str]
    ) -> pd.DataFrame:
        """unit, evaluator (pseudonym), comment of a locked round's submitted forms (admin)."""
        import pandas as pd

        with self._connect() as con:
            round_ = self._round(con, round_id)
            self._admin(actor, round_)
            if not round_.is_locked:
                raise RoundError(f"第{round_id}轮尚未锁定，评语不能导出")
            rows = con.execute(
                "SELECT unit, evaluator, comment FROM forms WHERE round_id = ? "
                "AND submitted_at IS NOT NULL AND comment <> '' ORDER BY unit, evaluator",
                (round_id,),
            ).fetchall()
        return pd.DataFrame(
            [(unit, pseudonym(evaluator), comment) for unit, evaluator, comment in rows],
            columns=["unit", "evaluator", "comment"],
        )
