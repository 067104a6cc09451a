"""Local accounts: salted Argon2id password hashes, a role and a scope, in a private file.

The file (`data/accounts.json` beside the warehouse link, or $GOVDASH_ACCOUNTS) lives outside
the versioned warehouse copies, so a load or rebuild never touches it, and is written with mode
0600 by replacing it whole under a lock, so a reader never sees half a file. No page shows it:
the accounts tab of the admin page lists names, roles and scopes, never hashes.
"""

from __future__ import annotations

import functools
import json
import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from govdash.core.access import MAX_NAME_LENGTH, Principal, Scope, check_role
from govdash.core.files import exclusive, write_json
from govdash.core.warehouse import data_dir

ACCOUNTS_ENV = "GOVDASH_ACCOUNTS"
FILE_VERSION = 1
MIN_PASSWORD_LENGTH = 8
_USERNAME = re.compile(rf"[\w.@+-]{{1,{MAX_NAME_LENGTH}}}")

# Argon2id with the library's defaults (RFC 9106 "low memory" profile: t=3, 64 MiB, p=4).
_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the name is unknown, so a wrong name costs as long as a wrong
    password. Made on first use: hashing takes 0.2 s, which every CLI call would pay."""
    return _hasher.hash(secrets.token_hex(16))


class AccountError(ValueError):
    """An account operation that cannot be done; the message says why, in Chinese."""


@dataclass(frozen=True)
class Account:
    username: str
    role: str
    scope: Scope
    password_hash: str = field(repr=False)
    created_at: str
    updated_at: str

    def principal(self) -> Principal:
        return Principal(self.username, self.role, self.scope, method="local")

    def to_json(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "role": self.role,
            "scope": self.scope.to_text(),
            "password_hash": self.password_hash,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }

    @classmethod
    def from_json(cls, entry: dict[str, Any]) -> Account:
        return cls(
            username=str(entry["username"]),
            role=check_role(str(entry["role"])),
            scope=Scope.parse(str(entry.get("scope", "district"))),
            password_hash=str(entry["password_hash"]),
            created_at=str(entry.get("created_at", "")),
            updated_at=str(entry.get("updated_at", "")),
        )


def accounts_path(db_path: Path) -> Path:
    """$GOVDASH_ACCOUNTS, else `accounts.json` in the warehouse's folder."""
    return Path(os.environ.get(ACCOUNTS_ENV) or data_dir(db_path) / "accounts.json")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_username(username: str) -> str:
    name = username.strip()
    if not _USERNAME.fullmatch(name):
        raise AccountError(
            f"用户名只能含字母、数字、汉字和 . _ @ + -，长度 1–{MAX_NAME_LENGTH}：{username!r}"
        )
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"密码至少 {MIN_PASSWORD_LENGTH} 个字符")
    return password


class AccountStore:
    """The accounts file: read whole, changed under a lock, replaced atomically (mode 0600)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    # --- reading ---------------------------------------------------------------------------
    def accounts(self) -> list[Account]:
        if not self.path.is_file():
            return []
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
            return [Account.from_json(entry) for entry in document.get("accounts", [])]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise AccountError(f"账号文件 {self.path} 无法读取：{error}") from error

    def has_accounts(self) -> bool:
        return self.path.is_file() and bool(self.accounts())

    def get(self, username: str) -> Account | None:
        wanted = username.strip()
        return next((a for a in self.accounts() if a.username == wanted), None)

    def verify(self, username: str, password: str) -> Account | None:
        """The account when the password is right, else None (same work either way)."""
        account = self.get(username) if len(username) <= MAX_NAME_LENGTH * 4 else None
        try:
            _hasher.verify(account.password_hash if account else _dummy_hash(), password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if account is None:
            return None
        if _hasher.check_needs_rehash(account.password_hash):
            self._replace(account.username, hash_password(password))
        return account

    # --- changing --------------------------------------------------------------------------
    def add(self, username: str, password: str, role: str, scope: Scope) -> Account:
        name = check_username(username)
        check_role(role)
        now = datetime.now().replace(microsecond=0).isoformat()
        account = Account(name, role, scope, hash_password(check_password(password)), now, now)
        with self._locked() as accounts:
            if any(a.username == name for a in accounts):
                raise AccountError(f"账号已存在：{name}")
            accounts.append(account)
        return account

    def remove(self, username: str) -> None:
        name = username.strip()
        with self._locked() as accounts:
            kept = [a for a in accounts if a.username != name]
            if len(kept) == len(accounts):
                raise AccountError(f"没有这个账号：{name}")
            accounts[:] = kept

    def set_password(self, username: str, password: str) -> None:
        self._replace(username.strip(), hash_password(check_password(password)))

    def _replace(self, username: str, password_hash: str) -> None:
        now = datetime.now().replace(microsecond=0).isoformat()
        with self._locked() as accounts:
            for index, account in enumerate(accounts):
                if account.username == username:
                    accounts[index] = Account(
                        account.username,
                        account.role,
                        account.scope,
                        password_hash,
                        account.created_at,
                        now,
                    )
                    return
            raise AccountError(f"没有这个账号：{username}")

    @contextmanager
    def _locked(self) -> Iterator[list[Account]]:
        with exclusive(self.path):
            accounts = self.accounts()
            yield accounts
            self._write(accounts)

    def _write(self, accounts: list[Account]) -> None:
        document = {"version": FILE_VERSION, "accounts": [x.to_json() for x in accounts]}
        write_json(self.path, document, mode=0o600)
