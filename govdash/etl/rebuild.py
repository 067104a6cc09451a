"""Rebuild the warehouse from the originals kept in data/raw, in the order first loaded."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from govdash.core.config import Config
from govdash.core.profiles import Profile, ProfileStore, profiles_path
from govdash.core.warehouse import raw_dir
from govdash.etl.load import LoadReport, Progress, load_paths


class RebuildError(RuntimeError):
    """Nothing to rebuild from, or an original is missing; the message says which, in Chinese."""


def rebuild(
    db_path: Path, config: Config, progress: Progress | None = None, actor: str | None = None
) -> LoadReport:
    """Replay every original in data/raw into the warehouse, emptied first, in ONE lake
    transaction: readers keep the previous snapshot until the rebuilt one is published.

    `actor` (default: the OS user) is recorded as the loader of every batch.
    """
    manifest = raw_dir(db_path) / "manifest.jsonl"
    if not manifest.exists():
        raise RebuildError(f"没有可重建的原始文件：{manifest} 不存在。")
    entries: dict[str, dict[str, Any]] = {}
    for line in manifest.read_text(encoding="utf-8").splitlines():
        if line.strip():
            entry = json.loads(line)
            entries.setdefault(entry["sha256"], entry)
    store = ProfileStore(profiles_path(db_path))
    with tempfile.TemporaryDirectory(prefix="govdash-rebuild-") as folder:
        paths: list[Path] = []
        names: dict[Path, str] = {}
        mappings: dict[Path, Profile] = {}
        for index, entry in enumerate(entries.values()):
            source = raw_dir(db_path) / entry["stored_as"]
            if not source.exists():
                raise RebuildError(f"原始文件缺失：{source}（{entry['file_name']}）")
            # Keep the original name's suffix so the reader knows the format.
            copy = Path(folder) / f"{index:05d}{Path(entry['stored_as']).suffix}"
            shutil.copyfile(source, copy)
            paths.append(copy)
            names[copy] = entry["file_name"]
            # The profile the file was read with, if it is still there (the saved ones apply
            # by their header signature anyway; this keeps one the clerk chose by name).
            for name in entry.get("profiles") or []:
                profile = store.get(str(name))
                if profile is not None:
                    mappings[copy] = profile
                    break
        return load_paths(
            paths,
            db_path,
            config,
            progress=progress,
            keep_raw=False,
            fresh=True,
            names=names,
            actor=actor,
            mappings=mappings,
        )
