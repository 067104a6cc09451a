"""What the two round pages share: the rounds file of this installation, evaluator accounts."""

from __future__ import annotations

from govdash.core.access import Scope
from govdash.core.rounds import RoundStore, evaluator_pseudonym, rounds_path
from govdash.core.warehouse import default_db_path, hash_key
from govdash.web.auth import account_store, audit_log


def round_store() -> RoundStore:
    """The rounds beside the warehouse (every change recorded in the audit log)."""
    return RoundStore(rounds_path(default_db_path()), audit_log())


def pseudonym(name: str) -> str:
    """The loader's pseudonym of an evaluator name, with this installation's key."""
    return evaluator_pseudonym(name, hash_key(default_db_path()))


def evaluator_accounts() -> dict[str, Scope]:
    """Local accounts with the evaluator role and their scopes."""
    return {
        account.username: account.scope
        for account in account_store().accounts()
        if account.role == "evaluator"
    }
