"""数据管理: upload spreadsheets (mapping unknown headers), load history, rejected rows, mapping
profiles, templates and the active config."""

import functools
import math
import tempfile
from dataclasses import replace
from pathlib import Path

import pandas as pd
import streamlit as st

from govdash.analytics.queries.loads import load_history, rejected_rows, table_counts
from govdash.analytics.reports.export import export_file_name, localised_table
from govdash.core.access import ADMIN
from govdash.core.profiles import ProfileError, ProfileStore, profiles_path
from govdash.core.warehouse import default_db_path
from govdash.etl.clean import classifications_of, known_values
from govdash.etl.errors import LoadError
from govdash.etl.fields import KIND_LABELS, REGISTER, TICKETS
from govdash.etl.fixup import fixup_available
from govdash.etl.load import (
    SheetInspection,
    fixup_for_batch,
    format_report,
    inspect_file,
    load_paths,
    preview_rows,
    remap_loaded,
)
from govdash.etl.locate import KIND_ORDER, LocatedSheet, kind_fields
from govdash.etl.mapping import (
    SHAPE_LABELS,
    Proposal,
    located_from_columns,
    missing_required,
    profile_of,
    proposal_of,
    propose,
)
from govdash.etl.prepare import (
    delete_profile,
    field_labels,
    import_profiles,
    merge_values,
    rename_profile,
    save_profile,
)
from govdash.etl.rebuild import RebuildError, rebuild
from govdash.etl.settle import Settled, settle
from govdash.etl.templates import template_workbook
from govdash.etl.vocab import UNCLASSIFIED
from govdash.i18n import t
from govdash.web.auth import require
from govdash.web.cache import active_config, query, warehouse_version
from govdash.web.ui import Download, download_buttons, labelled, lang, show_table
from govdash.web.warm import warm_in_background

UPLOAD_TYPES = ["xlsx", "xlsm", "xls", "ods", "csv"]
PREVIEW_ROWS = 5
LAST_LOAD = "data_last_load"
INSPECTED = "data_inspected"

language = lang()
principal = require(ADMIN, language)
config = active_config()
db_path = default_db_path()
st.title(t("page.data", language))


def uploader_css(max_upload_mb: float) -> str:
    """Streamlit 1.67's file uploader has no option for its own words ("Upload", "Drag and drop
    files here", "… per file", "Error: …"): in the Chinese UI they are hidden and the Chinese
    put in their place with CSS, scoped to this page's uploader (its key's class) and to the
    uploader's test ids, which Streamlit keeps stable for its own tests."""
    mb = f"{max_upload_mb:,g}"
    types = "、".join(kind.upper() for kind in UPLOAD_TYPES)
    root = ".st-key-uploads"
    zone = f'{root} [data-testid="stFileUploaderDropzone"]'

    def words(selector: str, text: str, size: str = "0.875rem", extra: str = "") -> str:
        quoted = text.replace("\\", "\\\\").replace('"', '\\"')
        # The words sit in children with their own font size: every descendant is hidden.
        return (
            f"{selector}, {selector} * {{font-size: 0 !important;}}\n"
            f'{selector}::after {{content: "{quoted}"; font-size: {size}; white-space: nowrap; '
            f"{extra}}}\n"
        )

    return (
        "<style>\n"
        + "".join(
            [
                words(
                    f'{zone} [data-testid="stFileUploaderDropzoneInstructions"] > div',
                    t("data.uploader_limit", "zh", mb=mb, types=types),
                    extra="opacity: 0.6;",
                ),
                words(f"{zone} button:not([aria-label])", t("data.uploader_button", "zh")),
                f'{zone} button:not([aria-label]) [data-testid="stIconMaterial"] '
                "{font-size: 1.25rem !important;}\n",
                words(f'{zone} button[aria-label="Add files"]', t("data.uploader_add", "zh")),
                f'{zone} button[aria-label="Add files"] [data-testid="stIconMaterial"] '
                "{font-size: 1.25rem !important;}\n",
                words(f"{zone} > div > span:only-child", t("data.uploader_drop", "zh")),
                words(
                    f'{root} [data-testid="stFileChip"] [role="alert"]',
                    t("data.uploader_error", "zh", mb=mb),
                    size="0.75rem",
                ),
            ]
        )
        + "</style>"
    )


def _inspection(upload: object) -> list[SheetInspection] | str:
    """How the loader would read an uploaded file (kept for the session), or why it cannot."""
    cache: dict[str, list[SheetInspection] | str] = st.session_state.setdefault(INSPECTED, {})
    key = str(getattr(upload, "file_id", ""))
    if key not in cache:
        name = str(getattr(upload, "name", "upload"))
        with tempfile.TemporaryDirectory(prefix="govdash-inspect-") as folder:
            path = Path(folder) / f"file{Path(name).suffix.lower()}"
            path.write_bytes(upload.getvalue())  # type: ignore[attr-defined]
            try:
                cache[key] = inspect_file(path, name, db_path, config)
            except LoadError as error:
                cache[key] = error.message
    return cache[key]


def _proposal_for(inspection: SheetInspection, kind: str, key: str) -> Proposal | None:
    """The proposal of the kind the clerk chose (proposed again when it is not the first)."""
    proposal = inspection.proposal
    if proposal is not None and proposal.kind == kind:
        return proposal
    cache: dict[str, Proposal | None] = st.session_state.setdefault("data_proposals", {})
    if f"{key}::{kind}" not in cache:
        cache[f"{key}::{kind}"] = propose(inspection.sheet, config, kind)
    return cache[f"{key}::{kind}"]


def mapping_editor(
    file_name: str, inspection: SheetInspection, key: str, title: str = "data.mapping_title"
) -> tuple[bool, tuple[LocatedSheet, str] | None]:
    """The column mapping of one sheet: (ready, (located sheet, profile name)); ready is False
    while something required is missing, the mapping None when the clerk chose not to load it."""
    proposal = inspection.proposal
    assert proposal is not None
    with st.container(border=True, key=f"mapping_{key}"):
        st.markdown(
            "**"
            + t(
                title,
                language,
                file=file_name,
                sheet=inspection.name,
                row=proposal.excel_row,
            )
            + "**"
        )
        st.caption(t("data.mapping_help", language))
        if not st.toggle(t("data.mapping_use", language), value=True, key=f"use_{key}"):
            return True, None
        kind = st.selectbox(
            t("data.mapping_kind", language),
            list(KIND_ORDER),
            index=list(KIND_ORDER).index(proposal.kind),
            format_func=lambda k: KIND_LABELS[k],
            key=f"kind_{key}",
        )
        proposal = _proposal_for(inspection, kind, key)
        if proposal is None:
            return False, None
        labels = field_labels(kind, config)
        options = ["", *(spec.name for spec in kind_fields(kind, config))]
        head = st.columns([2, 3, 3])
        for column, title in zip(
            head, ("mapping_header", "mapping_samples", "mapping_field"), strict=True
        ):
            column.caption(t(f"data.{title}", language))
        chosen: dict[int, str] = {}
        for guess in proposal.columns:
            if not guess.header:
                continue
            left, middle, right = st.columns([2, 3, 3])
            left.markdown(f"**{guess.header}**")
            left.caption(t("data.mapping_shape", language, shape=SHAPE_LABELS[guess.shape]))
            middle.caption("、".join(guess.samples) or "—")
            choice = right.selectbox(
                guess.header,
                options,
                index=options.index(guess.field or ""),
                format_func=lambda name: labels.get(name) or t("data.mapping_unused", language),
                key=labelled(f"map_{key}_{kind}_{guess.index}"),
                label_visibility="collapsed",
            )
            if choice:
                chosen[guess.index] = choice
        by_field: dict[str, list[str]] = {}
        for index, name in chosen.items():
            by_field.setdefault(name, []).append(proposal.columns[index].header)
        twice = {name: headers for name, headers in by_field.items() if len(headers) > 1}
        for name, headers in twice.items():
            st.error(
                t("data.mapping_twice", language, field=labels[name], columns="、".join(headers))
            )
        lacking = missing_required(kind, set(chosen.values()))
        if lacking:
            st.error(t("data.mapping_missing", language, kind=KIND_LABELS[kind], fields=lacking))
        if twice or lacking:
            return False, None
        located = located_from_columns(
            inspection.sheet, kind, proposal.header_row, proposal.height, chosen, config
        )
        preview = preview_rows(located, config, PREVIEW_ROWS)
        st.caption(t("data.mapping_preview", language, n=PREVIEW_ROWS))
        if preview.rows:
            frame = pd.DataFrame(preview.rows).astype(object)
            shown = frame.where(frame.notna(), "")  # an empty cell shows empty, not "None"
            st.dataframe(shown, hide_index=True, key=f"preview_{key}")
        else:
            st.warning(t("data.mapping_preview_empty", language))
        for name, items in (
            ("mapping_problems", preview.problems),
            ("mapping_notes", preview.notes),
        ):
            if items:
                text = "；".join(
                    f"第 {row} 行 {column}“{value}”：{why}" for row, column, value, why in items
                )
                st.caption(t(f"data.{name}", language, items=text))
        if preview.personal:
            st.caption(t("data.mapping_personal", language, columns="、".join(preview.personal)))
        if located.unused:
            st.caption(
                t("data.mapping_unused_columns", language, columns="、".join(located.unused))
            )
        name = st.text_input(
            t("data.profile_name", language), value=Path(file_name).stem, key=f"profile_{key}"
        )
        return True, (located, name.strip() or Path(file_name).stem)


def run_load(files: list, confirmed: dict[str, list[tuple[LocatedSheet, str]]]) -> None:
    """Save the confirmed mappings as profiles (they then apply by their header signature) and
    load every file; the outcome is kept for the value mapping below."""
    saved: list[str] = []
    for mappings in confirmed.values():
        for located, name in mappings:
            try:
                profile = save_profile(db_path, profile_of(located, name), principal.name, "web")
            except ProfileError as error:
                st.error(str(error))
                return
            saved.append(profile.name)
    with tempfile.TemporaryDirectory(prefix="govdash-upload-") as folder:
        paths: list[Path] = []
        names: dict[Path, str] = {}
        for index, upload in enumerate(files):
            path = Path(folder) / f"{index:03d}{Path(upload.name).suffix.lower()}"
            path.write_bytes(upload.getvalue())
            paths.append(path)
            names[path] = upload.name
        with st.status(t("data.loading", language), expanded=True) as status:
            report = load_paths(
                paths, db_path, config, progress=status.write, names=names, actor=principal.name
            )
            settled = Settled()
            if report.snapshot is not None:
                settled = settle(db_path, config, status.write, principal.name)
                if warm_in_background(db_path, config):
                    settled.lines.append(t("data.warming", language))
            status.update(
                label=t("data.loaded" if report.ok else "data.load_failed", language),
                state="complete" if report.ok else "error",
            )
    summary = "\n".join([format_report(report), *settled.lines, *settled.warnings])
    for path, name in names.items():
        summary = summary.replace(path.name, name)
    st.session_state[LAST_LOAD] = {
        "summary": summary,
        "saved": saved,
        "errors": [f.error for f in report.files if f.error],
        "unknown": [
            (f.name, f.profiles[0] if f.profiles else None, field, raw, count, upload.file_id)
            for f, upload in zip(report.files, files, strict=False)
            for (field, raw), count in sorted(f.unknown_values.items())
        ],
    }


def fixup_bytes(batch_id: int) -> bytes:
    """The workbook of a batch's rows to fix, built when the clerk clicks (and audited)."""
    return fixup_for_batch(db_path, config, batch_id, principal.name)[1]


def value_mapping_form(unknown: list[tuple[str, str | None, str, str, int, str]]) -> None:
    """Map the classification words a load did not know to known values (saved in the file's
    profile; optionally applied to the rows already loaded)."""
    st.subheader(t("data.values_title", language))
    st.caption(t("data.values_help", language, fallback=UNCLASSIFIED))
    ticket_fields = {c.field for c in classifications_of(TICKETS, config)}
    labels = {**field_labels(REGISTER, config), **field_labels(TICKETS, config)}
    chosen: dict[tuple[str, str | None, str], dict[str, dict[str, str]]] = {}
    for index, (file_name, profile_name, name, raw, count, file_id) in enumerate(unknown):
        left, right = st.columns([3, 2])
        left.markdown(
            t(
                "data.values_row",
                language,
                field=labels.get(name, name),
                value=raw,
                file=file_name,
                n=count,
            )
        )
        options = ["", *known_values(name, config)]
        value = right.selectbox(
            raw,
            options,
            format_func=lambda v: v or t("data.values_keep", language),
            key=labelled(f"value_{index}"),
            label_visibility="collapsed",
        )
        if value:
            kind = TICKETS if name in ticket_fields else REGISTER
            chosen.setdefault((file_id, profile_name, kind), {}).setdefault(name, {})[raw] = value
    apply = st.checkbox(t("data.values_apply", language), value=True, key="values_apply")
    if not st.button(t("data.values_button", language), key="values_button"):
        return
    if not chosen:
        st.warning(t("data.values_none", language))
        return
    store = ProfileStore(profiles_path(db_path))
    for (file_id, used, kind), values in chosen.items():
        profile = store.get(used) if used else None
        if profile is None:  # the file loaded by the built-in header names: remember its own
            inspection = st.session_state.get(INSPECTED, {}).get(file_id)
            located = next(
                (
                    s.located
                    for s in inspection or []
                    if isinstance(s, SheetInspection) and s.located and s.located.kind == kind
                ),
                None,
            )
            file_name = next(u[0] for u in unknown if u[5] == file_id)
            if located is None:
                continue
            profile = profile_of(located, Path(file_name).stem)
        merged = replace(profile, values=merge_values(profile.values, values))
        saved = save_profile(db_path, merged, principal.name, "web")
        st.success(t("data.values_saved", language, name=saved.name))
        if apply:
            changed = remap_loaded(db_path, config, kind, values, principal.name)
            st.success(t("data.values_applied", language, n=changed))
            with st.spinner(t("data.settling", language)):
                settled = settle(db_path, config, lambda message: None, principal.name)
            for warning in settled.warnings:
                st.warning(warning)
    st.session_state[LAST_LOAD]["unknown"] = []


upload_tab, history_tab, rejected_tab, profiles_tab, template_tab, config_tab = st.tabs(
    [
        t(k, language)
        for k in (
            "data.upload",
            "data.history",
            "data.rejected",
            "data.profiles",
            "data.templates",
            "data.config",
        )
    ]
)

with upload_tab:
    st.write(t("data.upload_help", language))
    if language == "zh":
        st.html(uploader_css(config.max_upload_mb))
    files = st.file_uploader(
        t("data.choose_files", language),
        type=UPLOAD_TYPES,
        accept_multiple_files=True,
        key="uploads",
        # The browser refuses what the loader would refuse anyway (loader.max_upload_mb).
        max_upload_size=max(1, math.ceil(config.max_upload_mb)),
    )
    confirmed: dict[str, list[tuple[LocatedSheet, str]]] = {}
    blocked = False
    for upload in files or []:
        inspected = _inspection(upload)
        if isinstance(inspected, str):
            st.error(t("data.unreadable", language, file=upload.name, error=inspected))
            continue
        for number, inspection in enumerate(inspected):
            key = f"{upload.file_id}_{number}"
            located = inspection.located
            if located is not None and located.unused and inspection.profile is None:
                # Read by the built-in names, with columns left over: the clerk may map them.
                label = t(
                    "data.mapping_unused_title",
                    language,
                    file=upload.name,
                    sheet=inspection.name,
                    columns="、".join(located.unused),
                )
                with st.expander(label):
                    if st.toggle(t("data.mapping_adjust", language), key=f"adjust_{key}"):
                        adjusted = replace(inspection, proposal=proposal_of(located))
                        ready, mapping = mapping_editor(
                            upload.name, adjusted, key, "data.mapping_adjust_title"
                        )
                        blocked = blocked or not ready
                        if mapping is not None:
                            confirmed.setdefault(upload.file_id, []).append(mapping)
                continue
            if not inspection.needs_mapping:
                continue
            ready, mapping = mapping_editor(upload.name, inspection, key)
            blocked = blocked or not ready
            if mapping is not None:
                confirmed.setdefault(upload.file_id, []).append(mapping)
    if blocked:
        st.warning(t("data.mapping_blocked", language))
    if files and st.button(
        t("data.load_button", language), type="primary", key="load_button", disabled=blocked
    ):
        run_load(files, confirmed)
    last = st.session_state.get(LAST_LOAD)
    if last:
        for name in last["saved"]:
            st.success(t("data.profile_saved", language, name=name))
        for error in last["errors"]:  # named file, sheet and what to do, in Chinese
            st.error(error, icon=":material/block:")
        st.code(last["summary"], language=None)
        if last["unknown"]:
            value_mapping_form(last["unknown"])

    st.divider()
    st.subheader(t("data.rebuild", language))
    st.caption(t("data.rebuild_help", language))
    confirmed_rebuild = st.checkbox(t("data.rebuild_confirm", language), key="rebuild_confirm")
    if st.button(
        t("data.rebuild_button", language), disabled=not confirmed_rebuild, key="rebuild_button"
    ):
        with st.status(t("data.loading", language), expanded=True) as status:
            try:
                rebuilt = rebuild(db_path, config, progress=status.write, actor=principal.name)
            except RebuildError as error:
                status.update(label=str(error), state="error")
            else:
                status.update(
                    label=t("data.loaded" if rebuilt.ok else "data.load_failed", language),
                    state="complete" if rebuilt.ok else "error",
                )
                st.code(format_report(rebuilt), language=None)

if warehouse_version() is None:
    with history_tab:
        st.info(t("state.no_warehouse", language))
else:
    with history_tab:
        counts = query(table_counts)
        columns = st.columns(4)
        for index, row in enumerate(counts.itertuples()):
            columns[index % 4].metric(t(f"table.{row.table}", language), f"{row.rows:,}")
        history = query(load_history)
        if history.empty:
            st.info(t("state.empty", language))
        else:
            show_table(
                localised_table(
                    history, language, {c: t(f"history.{c}", language) for c in history}
                ),
                key="history_table",
            )

    with rejected_tab:
        history = query(load_history)
        choices = [0, *history["batch_id"].tolist()]  # 0 = every batch (not None: see labelled)
        labels = {int(r.batch_id): f"{r.batch_id} · {r.file_name}" for r in history.itertuples()}
        chosen = st.selectbox(
            t("data.batch", language),
            choices,
            format_func=lambda b: labels[int(b)] if b else t("filter.all", language),
            key=labelled("rejected_batch"),
        )
        rejected = query(rejected_rows, int(chosen) if chosen else None)
        if rejected.empty:
            st.success(t("data.no_rejections", language))
        else:
            st.caption(t("data.rejected_caption", language, n=len(rejected)))
            if not chosen:
                st.caption(t("data.fixup_pick", language))
            elif not fixup_available(db_path, int(chosen)):
                st.caption(t("data.fixup_unavailable", language))
            else:
                st.caption(t("data.fixup_help", language))
                name = str(history.set_index("batch_id").at[chosen, "file_name"])
                st.download_button(
                    t("data.fixup_button", language),
                    data=functools.partial(fixup_bytes, int(chosen)),
                    file_name=f"{Path(name).stem}_待改正.xlsx",
                    mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    on_click="ignore",
                    type="primary",
                    key="fixup_download",
                )
            shown = localised_table(
                rejected, language, {c: t(f"rejected.{c}", language) for c in rejected}
            )
            show_table(shown, key="rejected_table")
            filters = st.session_state.get("filters")
            if filters is not None:
                batches = tuple(int(b) for b in rejected["batch_id"].unique())
                download_buttons(
                    "rejected_rows",
                    shown,
                    filters,
                    download=Download(
                        t("file.rejected_rows", language),
                        batch_ids=batches,
                        period=t("file.batch", language, batch=chosen)
                        if chosen
                        else t("file.all_batches", language),
                    ),
                )

with profiles_tab:
    st.caption(t("data.profiles_help", language))
    store = ProfileStore(profiles_path(db_path))
    try:
        profiles = store.profiles()
    except ProfileError as error:
        st.error(str(error))
        profiles = []
    if not profiles:
        st.info(t("data.profiles_empty", language))
    else:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        t("profile.name", language): p.name,
                        t("profile.kind", language): KIND_LABELS.get(p.kind, p.kind),
                        t("profile.columns", language): len(p.columns),
                        t("profile.values", language): sum(len(m) for m in p.values.values()),
                        t("profile.updated_by", language): p.updated_by,
                        t("profile.updated_at", language): p.updated_at,
                    }
                    for p in profiles
                ]
            ),
            hide_index=True,
            key="profiles_table",
        )
        picked = st.selectbox(
            t("data.profile_pick", language), [p.name for p in profiles], key="profile_pick"
        )
        profile = next(p for p in profiles if p.name == picked)
        names = field_labels(profile.kind, config)
        left, right = st.columns(2)
        left.caption(t("data.profile_columns", language))
        left.dataframe(
            pd.DataFrame(
                [
                    {
                        t("profile.header", language): h,
                        t("profile.field", language): names.get(f, f),
                    }
                    for h, f in profile.columns.items()
                ]
            ),
            hide_index=True,
            key="profile_columns",
        )
        right.caption(t("data.profile_values", language))
        right.dataframe(
            pd.DataFrame(
                [
                    {
                        t("profile.field_name", language): names.get(f, f),
                        t("profile.raw", language): raw,
                        t("profile.canonical", language): known,
                    }
                    for f, words in profile.values.items()
                    for raw, known in words.items()
                ],
                columns=[t(f"profile.{c}", language) for c in ("field_name", "raw", "canonical")],
            ),
            hide_index=True,
            key="profile_values",
        )
        new_name = st.text_input(t("data.profile_rename", language), key="profile_new_name")
        if (
            st.button(t("data.profile_rename_button", language), key="profile_rename_button")
            and new_name
        ):
            try:
                renamed = rename_profile(db_path, profile.name, new_name, principal.name, "web")
                st.success(t("data.profile_renamed", language, name=renamed.name))
            except ProfileError as error:
                st.error(str(error))
        sure = st.checkbox(t("data.profile_delete_confirm", language), key="profile_delete_confirm")
        if st.button(
            t("data.profile_delete_button", language),
            disabled=not sure,
            key="profile_delete_button",
        ):
            delete_profile(db_path, profile.name, principal.name, "web")
            st.success(t("data.profile_deleted", language, name=profile.name))
        left, right = st.columns(2)
        left.download_button(
            t("data.profile_export_one", language),
            data=functools.partial(store.export, [profile.name]),
            file_name=f"对照方案_{profile.name}.json",
            mime="application/json",
            on_click="ignore",
            key="profile_export_one",
        )
        right.download_button(
            t("data.profile_export", language),
            data=store.export,
            file_name="对照方案.json",
            mime="application/json",
            on_click="ignore",
            key="profile_export_all",
        )
    st.divider()
    # Folded behind a switch: the page's one uploader in view stays the one for data.
    if st.toggle(t("data.profile_import", language), key="profile_import_open"):
        imported_file = st.file_uploader(
            t("data.profile_import", language), type=["json"], key="profile_import"
        )
        overwrite = st.checkbox(
            t("data.profile_import_overwrite", language), key="profile_overwrite"
        )
        if imported_file is not None and st.button(
            t("data.profile_import_button", language), key="profile_import_button"
        ):
            try:
                done = import_profiles(
                    db_path, imported_file.getvalue(), config, principal.name, overwrite, "web"
                )
                imported = "、".join(p.name for p in done)
                st.success(t("data.profile_imported", language, names=imported))
            except ProfileError as error:
                st.error(str(error))

with template_tab:
    st.write(t("data.templates_help", language))
    template_columns = st.columns(len(KIND_LABELS))
    for column, kind in zip(template_columns, KIND_LABELS, strict=True):
        name = t(f"template.{kind}", language)
        column.download_button(
            f"{name}.xlsx",
            data=functools.partial(template_workbook, kind, config),
            file_name=export_file_name(t("file.template", language, kind=name), "", "xlsx"),
            mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            on_click="ignore",
            key=f"template_{kind}",
        )

with config_tab:
    st.caption(
        t("data.config_source", language, path=config.source_path, fingerprint=config.fingerprint)
    )
    st.dataframe(
        pd.DataFrame(
            [
                {
                    t("config.block", language): i.block,
                    t("config.indicator", language): i.name,
                    t("config.points", language): i.points,
                    t("config.source", language): i.source,
                    t("config.floor", language): i.floor,
                    t("config.target", language): i.target,
                }
                for i in config.indicators
            ]
        ),
        hide_index=True,
        key="config_indicators",
    )
    st.json(config.raw, expanded=False)
