"""Shared page furniture: the sidebar filters (kept in the URL), language, chart blocks, export."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from govdash.analytics.charts.style import ChartContext, Highlight
from govdash.analytics.metrics.rates import shown_difference, without_negative_zeros
from govdash.analytics.queries.filters import (
    PLACE_COLUMNS,
    SELECTION_COLUMNS,
    Filters,
    available_periods,
)
from govdash.analytics.queries.loads import (
    DEFAULT_SOURCES,
    batches_used,
    data_period,
    load_history,
)
from govdash.analytics.queries.tickets import filter_options, ticket_date_range
from govdash.analytics.reports.export import (
    ColumnFormat,
    ExportRecord,
    Provenance,
    column_formats,
    export_file_name,
    figure_title,
    figure_to_image,
    header_label,
    localised_table,
    recorded_export,
    screen_values,
    to_csv_bytes,
    to_xlsx_bytes,
)
from govdash.core.access import Principal, Scope
from govdash.core.audit import AuditLog
from govdash.i18n import LANGUAGES, t
from govdash.web.auth import account_box, audit_log, current_principal
from govdash.web.cache import (
    config_fingerprint,
    deferred,
    query,
    shared,
    snapshot_stamp,
    warehouse_version,
)

PERIOD_KINDS = ("year", "quarter", "month", "range")
_PERIOD_LABEL = {
    "year": "filter.period.year",
    "quarter": "filter.period.quarter",
    "month": "filter.period.month",
    "range": "filter.period.date_range",
}


def lang() -> str:
    return str(st.session_state.get("lang", "zh"))


def current_filters() -> Filters | None:
    value = st.session_state.get("filters")
    return value if isinstance(value, Filters) else None


def _url_params() -> dict[str, str | list[str]]:
    params: dict[str, str | list[str]] = {}
    for key in st.query_params:
        values = st.query_params.get_all(key)
        params[key] = values if key in SELECTION_COLUMNS else (values[-1] if values else "")
    return params


_LABELLED = "_labelled_widgets"


def labelled(key: str) -> str:
    """Register `key` as a widget whose option labels depend on the language; returns it.

    Radios and select boxes send back their option's label, and the labels change with the
    language, so after a switch the old label would match no option and the widget would show
    nothing chosen. Every widget with a language-dependent format_func takes its key through
    here, and _keep_choices keeps its choice across the switch.
    """
    registered = st.session_state.setdefault(_LABELLED, set())
    registered.add(key)
    return key


def _keep_choices() -> None:
    """On a language switch, write each labelled widget's value back to session state, which
    makes Streamlit send the widget its value again, with the new label."""
    for key in st.session_state.get(_LABELLED, set()):
        # None means "nothing chosen": writing it back would clear a select box whose first
        # option is None; left alone, the widget falls back to that first option.
        if st.session_state.get(key) is not None:
            st.session_state[key] = st.session_state[key]


def language_picker() -> str:
    """The language switch at the top of the sidebar (also on the sign-in page)."""
    params = _url_params()
    if "lang" not in st.session_state:
        wanted = params.get("lang")
        st.session_state["lang"] = wanted if wanted in LANGUAGES else "zh"
    with st.sidebar:
        st.radio(
            t("filter.language", lang()),
            LANGUAGES,
            key="lang",
            horizontal=True,
            format_func=lambda code: t(f"language.{code}", code),  # each in its own language
            on_change=_keep_choices,
        )
    return lang()


def sidebar(principal: Principal) -> str:
    """Draw who is signed in and the shared filters, limited to the principal's scope; put the
    filters in session state and in the URL. Returns the language."""
    params = _url_params()
    with st.sidebar:
        account_box(principal, lang())
        if warehouse_version() is None:
            st.session_state["filters"] = None
            return lang()
        first, last = query(data_period)
        if first is None or last is None:
            st.session_state["filters"] = None
            return lang()
        filters = _filter_widgets(params, first, last, principal.scope)
    st.session_state["filters"] = filters
    st.query_params.from_dict({**filters.to_query_params(), "lang": lang()})
    return lang()


def _filter_widgets(
    params: dict[str, str | list[str]], first: date, last: date, scope: Scope
) -> Filters:
    language = lang()
    periods = available_periods(first, last)
    if "f_period_kind" not in st.session_state:  # first run of this session: from the URL
        initial = Filters.from_query_params(params, default_end=last, scope=scope)
        if scope.is_restricted:
            _warn_out_of_scope(initial, Filters.for_range(first, last).within(scope), language)
        st.session_state["f_period_kind"] = initial.period_kind
        for kind in ("year", "quarter", "month"):
            options = periods[kind]
            match = next((p for p in options if p.start == initial.start), options[0])
            st.session_state[f"f_period_{kind}"] = (
                match if initial.period_kind == kind else options[0]
            )
        st.session_state["f_range"] = (initial.start, initial.end)
        for name in SELECTION_COLUMNS:
            st.session_state[f"f_{name}"] = list(getattr(initial, name))
    st.header(t("filter.heading", language))
    kind = st.radio(
        t("filter.period_kind", language),
        PERIOD_KINDS,
        key=labelled("f_period_kind"),
        horizontal=True,
        format_func=lambda k: t(_PERIOD_LABEL[k], language),
    )
    if kind == "range":
        chosen = st.date_input(
            t("filter.period.date_range", language), key="f_range", min_value=first, max_value=last
        )
        start, end = chosen if isinstance(chosen, tuple) and len(chosen) == 2 else (first, last)
        base = Filters.for_range(start, end)
    else:
        base = st.selectbox(
            t(_PERIOD_LABEL[kind], language),
            periods[kind],
            key=labelled(f"f_period_{kind}"),
            format_func=lambda f: f.label(language),
        )
    # Communities narrow to the chosen streets, compounds to the chosen communities.
    chosen_places = (
        Filters.for_range(first, last)
        .within(scope)
        .with_selection(
            street=st.session_state.get("f_street", []),
            community=st.session_state.get("f_community", []),
        )
    )
    options = query(filter_options, chosen_places)
    selections: dict[str, list[str]] = {}
    for name in SELECTION_COLUMNS:
        key = f"f_{name}"
        st.session_state[key] = [v for v in st.session_state.get(key, []) if v in options[name]]
        selections[name] = st.multiselect(
            t(f"filter.{name}", language),
            options[name],
            key=key,
            placeholder=t("filter.all", language),
        )
    return base.within(scope).with_selection(**selections)


def _warn_out_of_scope(initial: Filters, everything: Filters, language: str) -> None:
    """Say which places a shared link asked for that this account may not see (then dropped)."""
    options = query(filter_options, everything)
    for name in PLACE_COLUMNS:
        outside = [value for value in getattr(initial, name) if value not in options[name]]
        if outside:
            st.warning(
                t(
                    "auth.out_of_scope",
                    language,
                    what=t(f"filter.{name}", language),
                    scope=initial.scope.label(language),
                    values="、".join(outside),
                ),
                icon=":material/block:",
            )


# --- rendering helpers ---------------------------------------------------------------------------


def require_data() -> Filters:
    """Stop the page with a helpful sentence when there is no warehouse yet."""
    filters = current_filters()
    if filters is None:
        st.info(t("state.no_warehouse", lang()))
        st.stop()
    return filters


def empty_state() -> None:
    st.info(t("state.empty", lang()))


@dataclass(frozen=True)
class Download:
    """What a table's downloads are called and which warehouse rows they were computed from.

    title: what the file holds, in the page language (default: the chart's title); the file
    is named "<title>_<period>.<suffix>". sources: the kinds of rows behind it
    (govdash.analytics.queries.loads.SOURCE_KINDS) and `level` for evaluation rows; `filters`
    when those rows were picked by other filters than the page's (a panel, two years);
    `batch_ids` when the page knows the batches itself. `period`: the file name's period
    part when the page's period does not describe the table.
    """

    title: str | None = None
    sources: tuple[str, ...] = DEFAULT_SOURCES
    level: str | None = None
    filters: Filters | None = None
    batch_ids: tuple[int, ...] | None = None
    period: str | None = None


def provenance(filters: Filters, download: Download | None = None) -> Provenance:
    """The stamp of an export: the filters, the load batches its rows came from (only those),
    the time and the config."""
    return provenance_later(filters, download, later=False)()


def provenance_later(
    filters: Filters, download: Download | None = None, *, later: bool = True
) -> Callable[[], Provenance]:
    """`provenance`, made when called: a download's file is built when its button is clicked,
    so the batches behind it (a scan of the period's rows) are looked up then, not on every
    page run. The page's snapshot, language, filters and config are taken now (`deferred`)."""
    spec = download or Download()
    language = lang()
    filters_text = describe_filters(filters)
    stamp = snapshot_stamp()
    fingerprint = config_fingerprint()
    run = deferred if later else _now
    if spec.batch_ids is not None:
        history = run(load_history)
        chosen = list(spec.batch_ids)

        def batches() -> pd.DataFrame | None:
            rows = history()
            return rows[rows["batch_id"].isin(chosen)] if rows is not None else None

    else:
        batches = run(batches_used, spec.filters or filters, spec.sources, spec.level)
    snapshot_line = (
        [t("provenance.snapshot", language, snapshot=stamp[0], at=stamp[1])] if stamp else []
    )

    def made() -> Provenance:
        return Provenance(
            filters_text=filters_text,
            sources=snapshot_line + list(batch_lines(batches(), language)),
            generated_at=datetime.now().replace(microsecond=0),
            config_fingerprint=fingerprint,
        )

    return made


def _now(function: Callable[..., Any], *args: Any) -> Callable[[], Any]:
    """`query` run now, its result handed back by the returned callable (`deferred`'s twin)."""
    result = query(function, *args)
    return lambda: result


def batch_lines(batches: pd.DataFrame | None, language: str) -> tuple[str, ...]:
    """One line per load batch: its number, file and load time, in `language`."""
    if batches is None:
        return ()
    return tuple(
        t(
            "provenance.batch",
            language,
            batch=row.batch_id,
            file=row.file_name,
            at=f"{row.loaded_at:%Y-%m-%d %H:%M}",
        )
        for row in batches.sort_values("batch_id").itertuples()
    )


def describe_filters(filters: Filters) -> str:
    language = lang()
    parts = [filters.label(language)]
    if filters.scope.is_restricted:
        parts.append(f"{t('account.scope', language)}：{filters.scope.label(language)}")
    for name in SELECTION_COLUMNS:
        values = getattr(filters, name)
        if values:
            parts.append(f"{t(f'filter.{name}', language)}：{'、'.join(values)}")
    return "；".join(parts)


def metric_card(
    container: DeltaGenerator,
    label: str,
    value: str,
    now: float | None,
    before: float | None,
    *,
    decimals: int = 0,
    scale: float = 1.0,
    suffix: str = "",
    lower_is_better: bool = False,
    note: str = "",
) -> None:
    """A KPI card: `value` and its change against the previous period.

    The change is (now − before) × `scale`, shown with `decimals` places and `suffix` (e.g.
    " pp"). A change that rounds to zero at that precision is shown grey, without an arrow,
    as 持平 / "no change" — never a red +0.0 or a green −0.0. Lower-is-better figures (times,
    backlog) colour a fall green.
    """
    language = lang()
    change = shown_difference(now, before, decimals, scale)
    colour: Literal["normal", "inverse", "off"] = "inverse" if lower_is_better else "normal"
    arrow: Literal["auto", "off"] = "auto"
    delta: str | None = None
    if change is not None and change == 0:
        delta, colour, arrow = t("kpi.no_change", language), "off", "off"
    elif change is not None:
        delta = f"{change:+,.{decimals}f}{suffix}"
    container.metric(
        label,
        value,
        delta=delta,
        delta_color=colour,
        delta_arrow=arrow,
        help=note or None,
        border=True,
    )
    if note:
        container.caption(note)


@dataclass(frozen=True)
class Trend:
    """What a trend chart of the page's period draws: its window of months (filters with the
    page's scope and selections), the chart stamp, and the selected period to highlight."""

    window: Filters
    highlight: Highlight

    def context(self, n: int) -> ChartContext:
        """The stamp: the window's months · n (records the chart shows)."""
        return ChartContext(self.window.span_label(), int(n), describe_filters(self.window))

    def download(self, title: str, sources: tuple[str, ...] = ("tickets",)) -> Download:
        """The downloads of a trend chart: they hold the window's months, so they are named
        after the window (月度工单量_2024-04–2025-03.xlsx) and their sources are the batches
        of the window's rows, not only the selected period's."""
        period = self.window.span_label().replace(" – ", "–")
        return Download(title, sources=sources, filters=self.window, period=period)


def trend(filters: Filters) -> Trend:
    """The trend window of `filters` (Filters.trend_window: 12 months, 24 for a selection of
    a year or more), starting no earlier than the month of the first ticket loaded."""
    language = lang()
    known = query(ticket_date_range)
    window = filters.trend_window(earliest=known[0] if known else None)
    label = t("label.selected_period", language, period=filters.label(language))
    return Trend(window, Highlight(filters.start, filters.end, label))


class SharedFigure(go.Figure):
    """A figure built once and shown to every session (chart_figure), never changed: its dict,
    which st.plotly_chart asks for on every run (a deep copy and a walk of every array, a
    tenth of a page's time), is made once."""

    def to_dict(self) -> dict[str, Any]:
        made: dict[str, Any] | None = self.__dict__.get("_made_dict")
        if made is None:
            made = super().to_dict()
            self._made_dict = made
        return made


def chart_figure(builder: Callable[..., go.Figure], *args: Any, **kwargs: Any) -> go.Figure:
    """`builder(*args, **kwargs)` — a chart builder of govdash.analytics.charts, a pure
    function of its arguments — built once per warehouse version and arguments and shared by
    every session (cache.shared): a second user with the same filters gets it without
    rebuilding. Never change the figure it returns."""
    figure: go.Figure = shared(_shared_figure, builder, *args, **kwargs)
    return figure


def _shared_figure(builder: Callable[..., go.Figure], *args: Any, **kwargs: Any) -> SharedFigure:
    figure = builder(*args, **kwargs)
    if type(figure) is go.Figure:
        # The built figure itself becomes the shared one (SharedFigure adds no state but its
        # cached dict): SharedFigure(figure) would deep-copy and validate every trace again,
        # ~15 % of a cold 满意度 page's CPU. Nothing else holds the builder's figure.
        figure.__class__ = SharedFigure
        return figure
    return SharedFigure(figure)


def chart_block(
    figure: go.Figure,
    table: pd.DataFrame,
    name: str,
    filters: Filters,
    columns: dict[str, str] | None = None,
    download: Download | None = None,
) -> None:
    """A chart, its numbers one click away, and downloads built only when clicked.

    The table's headers are put in the page language (`columns` first, then the catalog's
    ``column.<name>`` labels), so what is shown is what is downloaded; no value shows as −0;
    `download` names the files and the rows behind them (a trend chart's: Trend.download).
    The figure should come from chart_figure (built once for everyone with these inputs); the
    table's shown forms are shared the same way.
    """
    language = lang()
    st.plotly_chart(figure, theme=None, width="stretch", key=f"chart_{name}")
    shown, view, config = shared(table_forms, table, language, columns)
    with st.expander(t("label.numbers", language)):
        st.dataframe(
            view, key=f"table_{name}", column_config=config, hide_index=True, width="stretch"
        )
    download_buttons(name, shown, filters, figure, download)


def table_forms(
    table: pd.DataFrame, language: str, columns: Mapping[str, str] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """A chart's table as downloaded (headers in `language`, no −0, formats in its attrs) and
    as st.dataframe shows it (table_view): built once, shared, never changed."""
    shown = localised_table(without_negative_zeros(table), language, columns)
    view, config = table_view(shown, language)
    return shown, view, config


def show_table(
    frame: pd.DataFrame,
    key: str,
    labels: Mapping[str, str] | None = None,
    formats: Mapping[str, ColumnFormat] | None = None,
    **options: Any,
) -> Any:
    """st.dataframe of `frame`, rounded and formatted as its XLSX is: rates as 92.5%, times
    and scores to the places the page shows, months as 2025-03 (the values keep their
    precision; column_config rounds what is shown). A column named in code gets
    its header from `labels` or the catalog (through column_config); a localised_table keeps
    its own headers and formats. `options` go to st.dataframe (selection and the like)."""
    shown, config = shared(table_view, frame, lang(), labels, formats)
    options.setdefault("hide_index", True)
    options.setdefault("width", "stretch")
    return st.dataframe(shown, key=key, column_config=config, **options)


def table_view(
    frame: pd.DataFrame,
    language: str,
    labels: Mapping[str, str] | None = None,
    formats: Mapping[str, ColumnFormat] | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """What show_table hands st.dataframe: the values as shown and each column's config
    (a pure function of its arguments, so pages share it through cache.shared)."""
    found = column_formats(frame) | dict(formats or {})
    shown = frame.copy()
    shown.attrs = {}  # the formats are in column_config now; Arrow would try to serialise them
    config: dict[str, Any] = {}
    for position, column in enumerate(frame.columns):
        name = str(column)
        catalogued = header_label(name, language)
        label = (labels or {}).get(name) or (catalogued if catalogued != name else None)
        fmt = found.get(name)
        if label is not None or fmt is not None:
            # Only columns with something to say: a None in column_config hides the column.
            config[name] = _column_config(label, fmt)
        values = frame.iloc[:, position]
        if fmt is not None and fmt.kind in ("percent", "number"):
            shown.isetitem(position, screen_values(values, fmt).to_numpy())
        elif _is_text(values) and values.isna().any():
            # st.dataframe writes a missing text as "None": an unknown company reads "—"
            shown.isetitem(
                position, values.astype(object).where(values.notna(), NO_TEXT).to_numpy()
            )
    return shown, config


NO_TEXT = "—"  # a missing name or word as a table shows it


def _is_text(values: pd.Series) -> bool:
    """A column of texts (and missing values) only: what a "—" can stand in without mixing
    types in the column."""
    if not (pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)):
        return False
    return pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty")


def _column_config(label: str | None, fmt: ColumnFormat | None) -> Any:
    """One column's st.column_config: its header and how its values are written (never None,
    which would hide the column)."""
    if fmt is None:
        return label
    if fmt.kind == "percent":
        return st.column_config.NumberColumn(label, format=f"%.{fmt.decimals}f%%")
    if fmt.kind == "number":
        return st.column_config.NumberColumn(label, format=f"%.{fmt.decimals}f")
    if fmt.kind == "count":
        return st.column_config.NumberColumn(label, format="localized")
    if fmt.kind == "month":
        return st.column_config.DateColumn(label, format="YYYY-MM")
    if fmt.kind == "date":
        return st.column_config.DateColumn(label, format="YYYY-MM-DD")
    return st.column_config.DatetimeColumn(label, format="YYYY-MM-DD HH:mm")


def download_buttons(
    name: str,
    table: pd.DataFrame,
    filters: Filters,
    figure: go.Figure | None = None,
    download: Download | None = None,
) -> None:
    """PNG/SVG (with a figure), CSV and XLSX of `table`, named in the page language, e.g.
    月度工单量_2025年3月.xlsx, stamped with the batches `download` says the rows came from."""
    language = lang()
    spec = download or Download()
    source = provenance_later(filters, spec)  # the batches are looked up on a click
    title = spec.title or figure_title(figure) or name
    period = filters.label(language) if spec.period is None else spec.period
    formats = column_formats(table)
    columns = st.columns(4)
    builders: list[tuple[str, str, str, Callable[[], bytes]]] = [
        (
            "csv",
            "text/csv",
            "download.csv",
            lambda: to_csv_bytes(table, source(), language, formats),
        ),
        (
            "xlsx",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "download.xlsx",
            lambda: to_xlsx_bytes(table, source(), language, title, formats),
        ),
    ]
    if figure is not None:
        builders = [
            (
                "png",
                "image/png",
                "download.png",
                lambda: figure_to_image(figure, "png", source(), language),
            ),
            (
                "svg",
                "image/svg+xml",
                "download.svg",
                lambda: figure_to_image(figure, "svg", source(), language),
            ),
            *builders,
        ]
    log = audit_log()
    filters_text = describe_filters(filters)
    for column, (suffix, mime, label, build) in zip(columns, builders, strict=False):
        file_name = export_file_name(title, period, suffix)
        column.download_button(
            t(label, language),
            data=recorded(build, name, suffix, filters_text, len(table), file_name, audit=log),
            file_name=file_name,
            mime=mime,
            on_click="ignore",
            key=f"download_{name}_{suffix}",
        )


def recorded(
    build: Callable[[], bytes],
    name: str,
    file_format: str,
    filters_text: str,
    rows: int | Callable[[], int],
    file_name: str = "",
    *,
    audit: AuditLog | None = None,
) -> Callable[[], bytes]:
    """`build` that also writes who exported what to the audit log (`audit`, else the
    installation's) when the file is made.

    The principal is taken now: the file is built later, when the button is clicked.
    """
    principal = current_principal()
    record = ExportRecord(
        actor=principal.name if principal else "?",
        method=principal.method if principal else "?",
        name=name,
        file_format=file_format,
        filters_text=filters_text,
        rows=rows,
        scope=principal.scope.to_text() if principal else "?",
        file_name=file_name,
    )
    return recorded_export(build, record, audit or audit_log())
