"""Who may see what: roles and their permissions, the place scope of an account, OIDC claim rules.

Pure data and rules (no Streamlit, no I/O): the pages ask `can(principal, permission)`, the
read side limits every query to `principal.scope` (govdash.analytics.queries.filters.Filters carries it).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

# Permissions, one per thing a page or an export may do.
VIEW = "view"  # aggregates, charts and their exports
EVALUATION = "evaluation"  # the 年度考评 page: ranking, what-if, reports
TICKET_ROWS = "ticket_rows"  # ticket-level rows: drill-down to tickets, longest open, rejected rows
ADMIN = "admin"  # upload, config, accounts, the audit log

ROLES = ("viewer", "evaluator", "admin")
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "viewer": frozenset({VIEW}),
    "evaluator": frozenset({VIEW, EVALUATION}),
    "admin": frozenset({VIEW, EVALUATION, TICKET_ROWS, ADMIN}),
}
ROLE_LABELS = {"viewer": "查看者", "evaluator": "评委", "admin": "管理员"}

SCOPE_LEVELS = ("district", "street", "community")
SCOPE_LABELS = {"district": "全区", "street": "街道", "community": "社区"}
MAX_NAME_LENGTH = 64


class AccessError(ValueError):
    """A role, scope or rule that cannot be used; the message says which and why."""


@dataclass(frozen=True)
class Scope:
    """The places an account may see: the whole district, one street or one community."""

    level: str = "district"
    name: str | None = None

    def __post_init__(self) -> None:
        if self.level not in SCOPE_LEVELS:
            raise AccessError(f"范围层级应为 {'/'.join(SCOPE_LEVELS)} 之一，实际为 {self.level!r}")
        if self.level == "district":
            if self.name not in (None, ""):
                raise AccessError("全区范围不带名称")
            object.__setattr__(self, "name", None)
        elif not isinstance(self.name, str) or not self.name.strip():
            raise AccessError(
                f"{SCOPE_LABELS[self.level]}范围需要写明{SCOPE_LABELS[self.level]}名称"
            )
        else:
            object.__setattr__(self, "name", self.name.strip())

    @classmethod
    def district(cls) -> Scope:
        return cls("district", None)

    @classmethod
    def parse(cls, text: str) -> Scope:
        """`district`, `street:甲街道` or `community:东社区` (the form config and CLI use)."""
        level, _, name = text.strip().partition(":")
        return cls(level.strip(), name.strip() or None)

    @property
    def is_restricted(self) -> bool:
        return self.level != "district"

    def to_text(self) -> str:
        return self.level if self.name is None else f"{self.level}:{self.name}"

    def label(self, lang: str = "zh") -> str:
        if lang.startswith("en"):
            return "whole district" if self.name is None else f"{self.level} {self.name}"
        return "全区" if self.name is None else f"{self.name}（{SCOPE_LABELS[self.level]}）"


@dataclass(frozen=True)
class Principal:
    """The signed-in user of one session: a name for the audit log, a role and a scope."""

    name: str
    role: str
    scope: Scope = field(default_factory=Scope.district)
    method: str = "local"  # local (account file), oidc, single_user

    def __post_init__(self) -> None:
        check_role(self.role)

    @property
    def permissions(self) -> frozenset[str]:
        return ROLE_PERMISSIONS[self.role]


REQUIRED_PERMISSION = "required_permission"
_Function = TypeVar("_Function", bound=Callable[..., Any])


def requires(permission: str) -> Callable[[_Function], _Function]:
    """Mark a read-side query as needing `permission` (govdash.web.cache.query checks it)."""

    def mark(function: _Function) -> _Function:
        setattr(function, REQUIRED_PERMISSION, permission)
        return function

    return mark


def check_role(role: str) -> str:
    if role not in ROLES:
        raise AccessError(f"角色应为 {'/'.join(ROLES)} 之一，实际为 {role!r}")
    return role


def can(principal: Principal | None, permission: str) -> bool:
    return principal is not None and permission in principal.permissions


def single_user(os_user: str = "") -> Principal:
    """The embedded default with no accounts: one local user who may do everything; named
    after the OS user running the app, for the audit log."""
    name = f"本地用户（{os_user}）" if os_user else "本地用户"
    return Principal(name, "admin", Scope.district(), method="single_user")


# --- OIDC: claims of the identity token → role and scope ------------------------------------


@dataclass(frozen=True)
class ClaimRule:
    """If claim `claim` equals `value` (or, for text claims, matches it as a glob such as
    `*@jinjiang.gov.cn`; for list claims such as groups, contains it), the user gets `role`
    and `scope`. Rules are tried in order; the first match wins."""

    claim: str
    value: str
    role: str
    scope: Scope

    def matches(self, claims: Mapping[str, Any]) -> bool:
        found = claims.get(self.claim)
        if isinstance(found, str):
            return fnmatch.fnmatchcase(found.lower(), self.value.lower())
        if isinstance(found, list | tuple):
            return any(isinstance(item, str) and item == self.value for item in found)
        return False


def claim_rules(raw: Sequence[Any], source: str = "config") -> tuple[ClaimRule, ...]:
    """Validate `[[access.oidc_rules]]` tables; errors name the rule."""
    rules: list[ClaimRule] = []
    for index, entry in enumerate(raw, start=1):
        key = f"access.oidc_rules[{index}]"
        if not isinstance(entry, Mapping):
            raise AccessError(f"{source} 中的 {key} 应为表")
        try:
            claim = entry.get("claim")
            value = entry.get("value")
            if not isinstance(claim, str) or not claim or not isinstance(value, str) or not value:
                raise AccessError("claim 和 value 应为非空文字")
            role = check_role(str(entry.get("role", "")))
            scope = Scope.parse(str(entry.get("scope", "district")))
        except AccessError as error:
            raise AccessError(f"{source} 中的 {key}：{error}") from error
        rules.append(ClaimRule(claim, value, role, scope))
    return tuple(rules)


def principal_from_claims(
    claims: Mapping[str, Any], rules: Sequence[ClaimRule], identity_claim: str = "email"
) -> Principal | None:
    """The principal an identity token maps to, or None when no rule grants access."""
    identity = claims.get(identity_claim) or claims.get("sub")
    if not isinstance(identity, str) or not identity:
        return None
    for rule in rules:
        if rule.matches(claims):
            return Principal(identity[: MAX_NAME_LENGTH * 4], rule.role, rule.scope, method="oidc")
    return None
