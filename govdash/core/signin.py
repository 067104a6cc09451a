"""Which sign-in is in force for an installation — and refusing to serve when it cannot tell.

Security fails closed: single-user mode (no sign-in) is only for an installation that never had
local accounts, has none configured elsewhere and does not require sign-in. If accounts are
configured ($GOVDASH_ACCOUNTS) or expected (the audit log shows accounts were made here) and
the accounts file cannot be read, or sign-in is required by the config and nothing provides it,
`local_accounts` raises SignInUnavailable: `govdash serve` refuses to start and the app refuses
every page, naming the file and what to do.
"""

from __future__ import annotations

import os
from pathlib import Path

from govdash.core.accounts import ACCOUNTS_ENV, AccountError, AccountStore, accounts_path
from govdash.core.audit import AuditLog, audit_path
from govdash.core.warehouse import data_dir


class SignInUnavailable(RuntimeError):
    """Sign-in is configured, expected or required but cannot work; the message says why."""


def local_accounts(
    db_path: Path, require_sign_in: bool = False, oidc_configured: bool = False
) -> AccountStore | None:
    """The account store when local accounts are in force; None when there are none and none
    are expected (single-user mode unless OIDC is configured)."""
    folder = data_dir(db_path)
    if folder.exists() and not os.access(folder, os.R_OK | os.X_OK):
        raise SignInUnavailable(
            f"无法读取数据目录 {folder}（权限不足），因而无法确认账号；看板拒绝提供服务。"
            "请以拥有该目录的系统用户运行 govdash serve。"
        )
    path = accounts_path(db_path)
    store = AccountStore(path)
    if path.exists():
        try:
            accounts = store.accounts()
        except AccountError as error:
            raise SignInUnavailable(
                f"{error}。看板拒绝提供服务，以免无人登录即可访问；请从备份恢复该文件，"
                "或用 govdash users add 重新建立账号。"
            ) from error
        if accounts:
            return store
    elif os.environ.get(ACCOUNTS_ENV):
        raise SignInUnavailable(
            f"已配置账号文件 ${ACCOUNTS_ENV}={path}，但该文件不存在。看板拒绝提供服务，"
            "以免无人登录即可访问；请检查路径，或从备份恢复该文件。"
        )
    elif AuditLog(audit_path(db_path)).has_event("account_added"):
        raise SignInUnavailable(
            f"审计日志显示本数据仓库曾建立本地账号，但账号文件 {path} 不存在。看板拒绝提供服务，"
            "以免无人登录即可访问；请从备份恢复该文件，或用 govdash users add 重新建立账号。"
        )
    if require_sign_in and not oidc_configured:
        raise SignInUnavailable(
            "配置要求必须登录（access.require_sign_in = true），但没有本地账号，"
            "也没有配置统一身份认证。请先用 govdash users add 建立账号。"
        )
    return None
