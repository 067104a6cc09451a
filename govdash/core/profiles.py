"""Mapping profiles: how a kind of file's own column headers and words map to the template's.

A profile is saved once a clerk confirms a mapping (on the data page, or `govdash load
--columns`) under a name they choose ("12345平台导出"), keyed by the signature of the file's
header row, and applies by itself to the next file with the same headers. It holds:

- `columns`: header as written → template field (the English field name, e.g. ticket_id);
- `values`: field → {word as written → known value} (诉求类型 物业服务 → 求助).

The file (`data/profiles.json` beside the warehouse link, or $GOVDASH_PROFILES) lives outside
the versioned warehouse copies, like the accounts, and is written whole under a lock and
swapped in with os.replace. Who saved, renamed, deleted or imported a profile goes to the
audit log (the callers record it). A profile holds header names and classification words, no
personal data; an export is the same JSON, so a street can hand its profiles to another.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from govdash.core.files import exclusive, write_json
from govdash.core.warehouse import data_dir

PROFILES_ENV = "GOVDASH_PROFILES"
FILE_VERSION = 1
EXPORT_MARK = "govdash_profiles"
MAX_NAME = 60
_NAME = re.compile(r"[^\x00-\x1f/\\]{1,60}")


class ProfileError(ValueError):
    """A profile operation that cannot be done; the message says why, in Chinese."""


def profiles_path(db_path: Path) -> Path:
    """$GOVDASH_PROFILES, else `profiles.json` in the warehouse's folder (as the accounts)."""
    return Path(os.environ.get(PROFILES_ENV) or data_dir(db_path) / "profiles.json")


def check_name(name: str) -> str:
    cleaned = " ".join(str(name).split())
    if not _NAME.fullmatch(cleaned):
        raise ProfileError(f"对照方案名称应为 1–{MAX_NAME} 个字符，且不含斜杠或控制字符：{name!r}")
    return cleaned


@dataclass(frozen=True)
class Profile:
    name: str
    kind: str  # register, tickets, survey, evaluation
    signature: str  # of the header row the profile was made from
    headers: tuple[str, ...]  # that header row, as written
    columns: Mapping[str, str]  # header as written → field name
    values: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    header_row: int = 0  # 0-based row of the header in the sheet's table when saved (a hint)
    created_by: str = ""
    created_at: str = ""
    updated_by: str = ""
    updated_at: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "signature": self.signature,
            "headers": list(self.headers),
            "columns": dict(self.columns),
            "values": {f: dict(m) for f, m in self.values.items()},
            "header_row": self.header_row,
            "created_by": self.created_by,
            "created_at": self.created_at,
            "updated_by": self.updated_by,
            "updated_at": self.updated_at,
        }

    @classmethod
    def from_json(cls, entry: Mapping[str, Any]) -> Profile:
        try:
            columns = entry["columns"]
            values = entry.get("values") or {}
            if not isinstance(columns, dict) or not isinstance(values, dict):
                raise TypeError("columns/values")
            return cls(
                name=check_name(str(entry["name"])),
                kind=str(entry["kind"]),
                signature=str(entry.get("signature", "")),
                headers=tuple(str(h) for h in entry.get("headers", [])),
                columns={str(k): str(v) for k, v in columns.items()},
                values={
                    str(f): {str(k): str(v) for k, v in dict(m).items()} for f, m in values.items()
                },
                header_row=int(entry.get("header_row", 0) or 0),
                created_by=str(entry.get("created_by", "")),
                created_at=str(entry.get("created_at", "")),
                updated_by=str(entry.get("updated_by", "")),
                updated_at=str(entry.get("updated_at", "")),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ProfileError(f"对照方案的内容不完整或格式不对（{error}）") from error


def read_export(data: bytes) -> list[Profile]:
    """The profiles of an exported file; ProfileError when it is not one."""
    try:
        document = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as error:
        raise ProfileError(f"不是对照方案文件（应为导出的 JSON）：{error}") from error
    if not isinstance(document, dict) or EXPORT_MARK not in document:
        raise ProfileError("不是对照方案文件：缺少 govdash_profiles 标记（请使用导出的文件）")
    entries = document.get("profiles")
    if not isinstance(entries, list) or not entries:
        raise ProfileError("文件中没有对照方案")
    return [Profile.from_json(entry) for entry in entries]


def _now() -> str:
    return datetime.now().replace(microsecond=0).isoformat()


class ProfileStore:
    """The profiles file: read whole, changed under a lock, replaced atomically."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    # --- reading ---------------------------------------------------------------------------
    def profiles(self) -> list[Profile]:
        if not self.path.is_file():
            return []
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
            return [Profile.from_json(entry) for entry in document.get("profiles", [])]
        except (OSError, ValueError, AttributeError) as error:
            raise ProfileError(f"对照方案文件 {self.path} 无法读取：{error}") from error

    def get(self, name: str) -> Profile | None:
        wanted = " ".join(str(name).split())
        return next((p for p in self.profiles() if p.name == wanted), None)

    def by_signature(self) -> dict[str, Profile]:
        """Signature → the profile most recently saved for it."""
        found: dict[str, Profile] = {}
        for profile in sorted(self.profiles(), key=lambda p: p.updated_at):
            if profile.signature:
                found[profile.signature] = profile
        return found

    # --- changing --------------------------------------------------------------------------
    def save(self, profile: Profile, actor: str) -> Profile:
        """Add the profile, or replace the one of the same name (keeping when it was made)."""
        name = check_name(profile.name)
        now = _now()
        with self._locked() as profiles:
            previous = next((p for p in profiles if p.name == name), None)
            saved = replace(
                profile,
                name=name,
                created_by=previous.created_by if previous else actor,
                created_at=previous.created_at if previous else now,
                updated_by=actor,
                updated_at=now,
            )
            profiles[:] = [p for p in profiles if p.name != name] + [saved]
        return saved

    def rename(self, old: str, new: str, actor: str) -> Profile:
        new_name = check_name(new)
        with self._locked() as profiles:
            found = next((p for p in profiles if p.name == old), None)
            if found is None:
                raise ProfileError(f"没有这个对照方案：{old}")
            if new_name != old and any(p.name == new_name for p in profiles):
                raise ProfileError(f"已有同名的对照方案：{new_name}")
            renamed = replace(found, name=new_name, updated_by=actor, updated_at=_now())
            profiles[:] = [renamed if p.name == old else p for p in profiles]
        return renamed

    def delete(self, name: str) -> None:
        with self._locked() as profiles:
            kept = [p for p in profiles if p.name != name]
            if len(kept) == len(profiles):
                raise ProfileError(f"没有这个对照方案：{name}")
            profiles[:] = kept

    def export(self, names: list[str] | None = None) -> bytes:
        """The chosen profiles (all when `names` is None) as a JSON file another street imports."""
        chosen = [p for p in self.profiles() if names is None or p.name in names]
        missing = sorted(set(names or []) - {p.name for p in chosen})
        if missing:
            raise ProfileError("没有这些对照方案：" + "、".join(missing))
        document = {EXPORT_MARK: FILE_VERSION, "profiles": [p.to_json() for p in chosen]}
        return json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8")

    def import_(self, data: bytes, actor: str, overwrite: bool = False) -> list[Profile]:
        """Add the profiles of an exported file; a name already here is refused unless
        `overwrite`. Returns what was imported."""
        incoming = read_export(data)
        now = _now()
        with self._locked() as profiles:
            taken = {p.name for p in profiles}
            clashes = sorted(p.name for p in incoming if p.name in taken)
            if clashes and not overwrite:
                raise ProfileError(
                    "已有同名的对照方案：" + "、".join(clashes) + "（可先改名或删除，或选择覆盖）"
                )
            names = {p.name for p in incoming}
            imported = [replace(p, updated_by=actor, updated_at=now) for p in incoming]
            profiles[:] = [p for p in profiles if p.name not in names] + imported
        return imported

    @contextmanager
    def _locked(self) -> Iterator[list[Profile]]:
        with exclusive(self.path):
            profiles = self.profiles()
            yield profiles
            self._write(profiles)

    def _write(self, profiles: list[Profile]) -> None:
        document = {"version": FILE_VERSION, "profiles": [x.to_json() for x in profiles]}
        write_json(self.path, document, mode=0o644)
