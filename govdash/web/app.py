"""The dashboard's entry point: page config, sign-in, the shared sidebar filters and navigation."""

import plotly.io as pio
import streamlit as st

from govdash.analytics.charts.style import TEMPLATE_NAME
from govdash.core.access import ADMIN, EVALUATION, VIEW, can
from govdash.i18n import t
from govdash.web.auth import authenticate
from govdash.web.ui import language_picker, sidebar

st.set_page_config(page_title="红色物业治理效能看板", page_icon="🏘️", layout="wide")
# Importing streamlit set a template only browsers can read. Assigning validates the whole
# template (5% of a page run, bench/profile_page.py): only when it is not ours already.
if pio.templates.default != TEMPLATE_NAME:
    pio.templates.default = TEMPLATE_NAME

# (file, title key, icon, permission): a role sees only the pages it may use.
PAGES = (
    ("views/overview.py", "page.overview", ":material/dashboard:", VIEW),
    ("views/response.py", "page.response", ":material/timer:", VIEW),
    ("views/satisfaction.py", "page.satisfaction", ":material/sentiment_satisfied:", VIEW),
    ("views/effect.py", "page.governance_effect", ":material/trending_up:", VIEW),
    ("views/evaluation.py", "page.evaluation", ":material/military_tech:", EVALUATION),
    ("views/scoring.py", "page.scoring", ":material/edit_note:", EVALUATION),
    ("views/rounds.py", "page.rounds", ":material/how_to_vote:", ADMIN),
    ("views/data.py", "page.data", ":material/folder_open:", ADMIN),
    ("views/admin.py", "page.admin", ":material/admin_panel_settings:", ADMIN),
)


def pages(lang: str, permitted: set[str] | None = None) -> list[st.Page]:
    return [
        st.Page(path, title=t(title, lang), icon=icon, default=index == 0)
        for index, (path, title, icon, permission) in enumerate(PAGES)
        if permitted is None or permission in permitted
    ]


def requested_page() -> str:
    """The URL path of the page the browser's address names (before anyone is signed in)."""
    return st.navigation(pages(lang), position="hidden").url_path


lang = language_picker()
principal = authenticate(lang, requested_page)  # the sign-in page, and a stop, until signed in
sidebar(principal)
allowed = {permission for *_, permission in PAGES if can(principal, permission)}
st.navigation(pages(lang, allowed)).run()
