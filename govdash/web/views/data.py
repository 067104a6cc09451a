"""数据管理: upload spreadsheets, load history, rejected rows, templates and the active config."""

import functools
import math
import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from govdash.analytics.queries.loads import load_history, rejected_rows, table_counts
from govdash.core.access import ADMIN
from govdash.core.warehouse import default_db_path
from govdash.etl.fields import KIND_LABELS
from govdash.etl.load import format_report, load_paths
from govdash.etl.rebuild import RebuildError, rebuild
from govdash.etl.templates import template_workbook
from govdash.i18n import t
from govdash.web.auth import require
from govdash.web.cache import active_config, query, warehouse_version
from govdash.web.ui import download_buttons, labelled, lang

language = lang()
principal = require(ADMIN, language)
config = active_config()
st.title(t("page.data", language))

upload_tab, history_tab, rejected_tab, template_tab, config_tab = st.tabs(
    [
        t(k, language)
        for k in ("data.upload", "data.history", "data.rejected", "data.templates", "data.config")
    ]
)

with upload_tab:
    st.write(t("data.upload_help", language))
    files = st.file_uploader(
        t("data.choose_files", language),
        type=["xlsx", "xlsm", "xls", "ods", "csv"],
        accept_multiple_files=True,
        key="uploads",
        # The browser refuses what the loader would refuse anyway (loader.max_upload_mb).
        max_upload_size=max(1, math.ceil(config.max_upload_mb)),
    )
    if files and st.button(t("data.load_button", language), type="primary", key="load_button"):
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
                    paths,
                    default_db_path(),
                    config,
                    progress=status.write,
                    names=names,
                    actor=principal.name,
                )
                status.update(
                    label=t("data.loaded" if report.ok else "data.load_failed", language),
                    state="complete" if report.ok else "error",
                )
        summary = format_report(report)
        for path, name in names.items():
            summary = summary.replace(path.name, name)
        for refused in report.files:
            if refused.error:  # named file, sheet and what to do, in Chinese
                st.error(refused.error, icon=":material/block:")
        st.code(summary, language=None)

    st.divider()
    st.subheader(t("data.rebuild", language))
    st.caption(t("data.rebuild_help", language))
    confirmed = st.checkbox(t("data.rebuild_confirm", language), key="rebuild_confirm")
    if st.button(t("data.rebuild_button", language), disabled=not confirmed, key="rebuild_button"):
        with st.status(t("data.loading", language), expanded=True) as status:
            try:
                rebuilt = rebuild(
                    default_db_path(), config, progress=status.write, actor=principal.name
                )
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
            st.dataframe(
                history.rename(columns=lambda c: t(f"history.{c}", language)),
                hide_index=True,
                width="stretch",
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
            shown = rejected.rename(columns=lambda c: t(f"rejected.{c}", language))
            st.dataframe(shown, hide_index=True, width="stretch", key="rejected_table")
            filters = st.session_state.get("filters")
            if filters is not None:
                download_buttons("rejected_rows", shown, filters)

with template_tab:
    st.write(t("data.templates_help", language))
    template_columns = st.columns(len(KIND_LABELS))
    for column, (kind, label) in zip(template_columns, KIND_LABELS.items(), strict=True):
        column.download_button(
            f"{label}.xlsx",
            data=functools.partial(template_workbook, kind, config),
            file_name=f"{label}模板.xlsx",
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
