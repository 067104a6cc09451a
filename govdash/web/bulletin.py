"""The 月度通报 block of 总览: the month's bulletin as Word or PDF, one click each.

The month's figures and the document are made only when a button is clicked (download
buttons with a callable): reading them costs more than the rest of 总览 (a city's month, every
unit, three months of KPIs), and most visits download nothing. The session's access and scope
are checked, and the warehouse version taken, when the page runs (`cache.deferred`); the
figures are cached per version like every query, and the click is recorded in the audit log
with the units it held.
"""

from __future__ import annotations

from datetime import date

import streamlit as st

from govdash.analytics.queries.bulletin import BULLETIN_LEVELS, bulletin_data, month_filters
from govdash.analytics.queries.filters import Filters
from govdash.analytics.queries.tickets import ticket_date_range
from govdash.analytics.reports.bulletin import (
    DOCX_MIME,
    PDF_MIME,
    bulletin_content,
    bulletin_docx,
    bulletin_file_name,
    bulletin_pdf,
    template_path,
)
from govdash.analytics.reports.pdf import pdf_export_available
from govdash.i18n import t
from govdash.web.cache import active_config, deferred, query
from govdash.web.ui import labelled, recorded


def bulletin_month(filters: Filters, last_ticket_day: date | None) -> Filters:
    """The month the bulletin reports: the one holding the period's end, or the last month
    with tickets when the period runs past the data (a year picked in March)."""
    end = min(filters.end, last_ticket_day) if last_ticket_day else filters.end
    return month_filters(end.year, end.month, filters.scope)


def bulletin_block(filters: Filters, language: str) -> None:
    """Level choice, a caption saying which month and scope, and the two downloads."""
    known = query(ticket_date_range)
    if known is None:
        return
    month = bulletin_month(filters, known[1])
    if month.end < known[0]:
        return
    st.subheader(t("bulletin.heading", language))
    left, right = st.columns([2, 3])
    level = left.radio(
        t("bulletin.level", language),
        BULLETIN_LEVELS,
        horizontal=True,
        key=labelled("bulletin_level"),
        format_func=lambda code: t(f"level.{code}", language),
    )
    right.caption(
        t(
            "bulletin.caption",
            language,
            month=month.label(language),
            scope=month.scope.label(language),
        )
    )
    fetch = deferred(bulletin_data, month, level=level)
    config = active_config()
    filters_text = f"{month.label(language)} · {month.scope.label(language)}"
    name = f"bulletin_{month.start:%Y-%m}_{level}"

    def units() -> int:
        return len(fetch().units)

    docx_column, pdf_column = st.columns(2)
    docx_column.download_button(
        t("bulletin.docx", language),
        data=recorded(
            lambda: bulletin_docx(bulletin_content(fetch(), config), template_path(config)),
            name,
            "docx",
            filters_text,
            units,
        ),
        file_name=bulletin_file_name(month, "docx"),
        mime=DOCX_MIME,
        on_click="ignore",
        key="bulletin_docx",
        type="primary",
    )
    if pdf_export_available():
        pdf_column.download_button(
            t("bulletin.pdf", language),
            data=recorded(
                lambda: bulletin_pdf(bulletin_content(fetch(), config)),
                name,
                "pdf",
                filters_text,
                units,
            ),
            file_name=bulletin_file_name(month, "pdf"),
            mime=PDF_MIME,
            on_click="ignore",
            key="bulletin_pdf",
        )
    else:
        pdf_column.caption(t("evaluation.report_pdf_unavailable", language))
