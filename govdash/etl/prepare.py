"""Before a load: the mapping profile each file is read with, from what the clerk gave — a
column mapping (`--columns`, the data page), a profile name (`--profile`), value mappings
(`--values`) — saved beside the warehouse with the audit log saying who saved it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from govdash.core.audit import AuditLog, audit_path, os_user
from govdash.core.config import Config
from govdash.core.profiles import (
    Profile,
    ProfileError,
    ProfileStore,
    profiles_path,
    read_export,
)
from govdash.etl.clean import classifications_of, known_values
from govdash.etl.errors import LoadError
from govdash.etl.fields import KIND_LABELS, build_alias_index, header_keys
from govdash.etl.load import LoadReport, SheetInspection, expand_paths, inspect_file
from govdash.etl.locate import LocatedSheet, kind_fields
from govdash.etl.mapping import (
    MappingError,
    Proposal,
    header_candidates,
    located_from_columns,
    missing_required,
    parse_columns,
    parse_values,
    profile_of,
    sheet_rows,
)


def store_of(db_path: Path) -> ProfileStore:
    return ProfileStore(profiles_path(db_path))


def save_profile(
    db_path: Path, profile: Profile, actor: str | None = None, method: str = "cli"
) -> Profile:
    """Save (or replace) a profile and record who did it."""
    who = actor or os_user()
    saved = store_of(db_path).save(profile, who)
    AuditLog(audit_path(db_path)).record(
        who,
        "profile_saved",
        target=saved.name,
        detail={
            "kind": saved.kind,
            "signature": saved.signature,
            "columns": dict(saved.columns),
            "values": {f: dict(m) for f, m in saved.values.items()},
        },
        method=method,
    )
    return saved


def rename_profile(
    db_path: Path, old: str, new: str, actor: str | None = None, method: str = "cli"
) -> Profile:
    who = actor or os_user()
    renamed = store_of(db_path).rename(old, new, who)
    AuditLog(audit_path(db_path)).record(
        who, "profile_renamed", target=renamed.name, detail={"from": old}, method=method
    )
    return renamed


def delete_profile(db_path: Path, name: str, actor: str | None = None, method: str = "cli") -> None:
    who = actor or os_user()
    store_of(db_path).delete(name)
    AuditLog(audit_path(db_path)).record(who, "profile_deleted", target=name, method=method)


def import_profiles(
    db_path: Path,
    data: bytes,
    config: Config,
    actor: str | None = None,
    overwrite: bool = False,
    method: str = "cli",
) -> list[Profile]:
    """Import an exported profiles file; each profile's kind and fields are checked first."""
    who = actor or os_user()
    for profile in read_export(data):
        check_profile(profile, config)
    store = store_of(db_path)
    imported = store.import_(data, who, overwrite=overwrite)
    AuditLog(audit_path(db_path)).record(
        who,
        "profile_imported",
        target="、".join(p.name for p in imported),
        detail={"profiles": [p.name for p in imported], "overwrite": overwrite},
        method=method,
    )
    return imported


def check_profile(profile: Profile, config: Config) -> None:
    """Refuse a profile naming a kind or field this version does not know."""
    if profile.kind not in KIND_LABELS:
        raise ProfileError(f"对照方案“{profile.name}”的表格类别“{profile.kind}”不存在")
    names = {spec.name for spec in kind_fields(profile.kind, config)}
    unknown = sorted(set(profile.columns.values()) - names)
    if unknown:
        raise ProfileError(f"对照方案“{profile.name}”含有不认识的字段：{'、'.join(unknown)}")
    mappable = {c.field for c in classifications_of(profile.kind, config)}
    for name, words in profile.values.items():
        if name not in mappable:
            raise ProfileError(f"对照方案“{profile.name}”的取值对照含有不可对照的字段：{name}")
        wrong = sorted(set(words.values()) - set(known_values(name, config)))
        if wrong:
            raise ProfileError(
                f"对照方案“{profile.name}”把取值对照到了不存在的规范值：{'、'.join(wrong)}"
            )


def located_with_columns(
    inspection: SheetInspection, kind: str, columns: Mapping[str, str], config: Config
) -> LocatedSheet | None:
    """The sheet read with the clerk's `source header → field` pairs at the header row that
    holds them; the row's other headers are read by the built-in names (the pairs win)."""
    rows = sheet_rows(inspection.sheet)
    wanted = {header_keys(source)[0]: name for source, name in columns.items()}
    best: tuple[int, int, int, list[str]] | None = None
    for r, height, names in header_candidates(rows):
        hits = sum(1 for h in names if h and header_keys(h)[0] in wanted)
        if hits and (best is None or hits > best[2]):
            best = (r, height, hits, names)
    if best is None:
        return None
    r, height, _, names = best
    present = {header_keys(h)[0] for h in names if h}
    absent = [source for source in columns if header_keys(source)[0] not in present]
    if absent:
        raise MappingError(
            f"工作表“{inspection.name}”第 {inspection.sheet.first_row + r} 行的表头中找不到 "
            f"--columns 给出的表头：{'、'.join(absent)}。请核对写法（与文件中一致）。"
        )
    index = build_alias_index(kind_fields(kind, config))
    chosen: dict[int, str] = {}
    explicit = {
        j: wanted[header_keys(h)[0]]
        for j, h in enumerate(names)
        if h and header_keys(h)[0] in wanted
    }
    taken = set(explicit.values())
    for j, header in enumerate(names):
        if not header or j in explicit:
            continue
        spec = next((index[k] for k in header_keys(header) if k in index), None)
        if spec is not None and spec.name not in taken:
            chosen[j] = spec.name
            taken.add(spec.name)
    chosen.update(explicit)
    return located_from_columns(inspection.sheet, kind, r, height, chosen, config)


@dataclass
class Prepared:
    """What a load is given: a profile per file, and what to tell the clerk before it runs."""

    mappings: dict[Path, Profile] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)
    proposals: dict[Path, list[Proposal]] = field(default_factory=dict)  # files not readable


def prepare_load(
    paths: Sequence[Path],
    db_path: Path,
    config: Config,
    columns: str | None = None,
    profile_name: str | None = None,
    values: str | None = None,
    actor: str | None = None,
) -> Prepared:
    """Work out and save the profiles a `govdash load` with --columns/--profile/--values uses.

    Raises MappingError or ProfileError for something the clerk must correct first.
    """
    prepared = Prepared()
    store = store_of(db_path)
    named = store.get(profile_name) if profile_name else None
    kind_columns = parse_columns(columns, config) if columns else None
    files, _ = expand_paths(paths)
    for index, path in enumerate(files):
        try:
            sheets = inspect_file(path, path.name, db_path, config)
        except LoadError:
            continue  # the load itself says why the file cannot be read
        profile: Profile | None = None
        if kind_columns is not None:
            kind, pairs = kind_columns
            located = next(
                (found for s in sheets if (found := located_with_columns(s, kind, pairs, config))),
                None,
            )
            if located is None:
                raise MappingError(
                    f"文件“{path.name}”中找不到 --columns 给出的表头："
                    + "、".join(pairs)
                    + "。请核对表头写法（与文件中一致）。"
                )
            lacking = missing_required(kind, {s.name for s in located.columns.values()})
            if lacking:
                raise MappingError(
                    f"按 --columns 对照后，文件“{path.name}”仍缺少{KIND_LABELS[kind]}的必填字段："
                    f"{lacking}。请在 --columns 中补上。"
                )
            name = profile_name or path.stem
            if index and profile_name:
                name = f"{profile_name}（{path.stem}）"
            profile = profile_of(located, name, named.values if named else None)
        elif named is not None:
            profile = named
        else:
            readable = [s for s in sheets if s.located is not None]
            unreadable = [s.proposal for s in sheets if s.needs_mapping and s.proposal]
            if unreadable and not readable:
                prepared.proposals[path] = unreadable
            if profile_name or values:
                first = readable[0] if readable else None
                if first is None or first.located is None:
                    continue
                existing = store.get(first.profile) if first.profile else None
                profile = existing or profile_of(first.located, profile_name or path.stem)
                if profile_name and existing and existing.name != profile_name:
                    profile = replace(existing, name=profile_name)
        if profile is None:
            continue
        if values:
            profile = replace(
                profile,
                values=merge_values(
                    profile.values, parse_values(values, profile.kind, config, profile.columns)
                ),
            )
        if kind_columns is not None or values or (profile_name and named is None):
            profile = save_profile(db_path, profile, actor)
            prepared.messages.append(
                f"已保存对照方案“{profile.name}”（{KIND_LABELS[profile.kind]}，"
                f"{len(profile.columns)} 列"
                + (
                    f"，{sum(len(m) for m in profile.values.values())} 个取值对照"
                    if profile.values
                    else ""
                )
                + f"）→ {store.path}"
            )
        prepared.mappings[path] = profile
    return prepared


def merge_values(
    old: Mapping[str, Mapping[str, str]], new: Mapping[str, Mapping[str, str]]
) -> dict[str, dict[str, str]]:
    merged = {f: dict(m) for f, m in old.items()}
    for name, words in new.items():
        merged.setdefault(name, {}).update(words)
    return merged


def columns_text(proposal: Proposal, config: Config) -> str:
    """A proposal as a --columns argument (source header=template field, …)."""
    labels = {spec.name: spec.label for spec in kind_fields(proposal.kind, config)}
    return ",".join(
        f"{c.header}={labels[c.field]}" for c in proposal.columns if c.field and c.header
    )


def mapping_suggestions(report: LoadReport, db_path: Path, config: Config) -> list[str]:
    """For each file refused for headers the loader does not know, the mapping it proposes,
    written as the --columns argument that loads it (the clerk checks it first)."""
    lines: list[str] = []
    for file in report.files:
        if file.unknown_values:
            words = ",".join(f"{_label(f, config)}:{raw}=规范值" for f, raw in file.unknown_values)
            lines.append(
                f"取值对照：“{file.name}”有未识别的分类取值（已计入“未归类”）。可把它们对照到规范值，"
                "保存到该文件的对照方案，并更新已加载的行：\n"
                f"  govdash load \"{file.name}\" --values '{words}' --apply-to-loaded"
            )
        if not file.error or "没有找到可识别的表头" not in file.error:
            continue
        try:
            sheets = inspect_file(file.path, file.name, db_path, config)
        except LoadError:
            continue
        for sheet in sheets:
            if sheet.proposal is None:
                continue
            proposal = sheet.proposal
            text = columns_text(proposal, config)
            lacking = missing_required(
                proposal.kind, {c.field for c in proposal.columns if c.field}
            )
            lines.append(
                f"建议：工作表“{sheet.name}”第 {proposal.excel_row} 行像{KIND_LABELS[proposal.kind]}的表头。"
                "核对下面的对照（源表头=模板字段名）后，用它加载并保存为对照方案：\n"
                f"  govdash load \"{file.name}\" --columns '{text}' --profile 方案名称"
                + (f"\n  （还缺少必填字段：{lacking}）" if lacking else "")
            )
    return lines


def _label(name: str, config: Config) -> str:
    """A field's template header (the first kind that has it)."""
    from govdash.etl.locate import KIND_ORDER

    for kind in KIND_ORDER:
        for spec in kind_fields(kind, config):
            if spec.name == name:
                return spec.label
    return name


def field_labels(kind: str, config: Config) -> dict[str, str]:
    """Field name → template header, for a kind."""
    return {spec.name: spec.label for spec in kind_fields(kind, config)}
