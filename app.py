"""The dashboard's entry point: page config, the shared sidebar filters and navigation."""

import plotly.io as pio
import streamlit as st

from analytics.charts import TEMPLATE_NAME
from analytics.i18n import t
from views._ui import sidebar

st.set_page_config(page_title="红色物业治理效能看板", page_icon="🏘️", layout="wide")
pio.templates.default = TEMPLATE_NAME  # importing streamlit set a template only browsers can read

lang = sidebar()
navigation = st.navigation(
    [
        st.Page(
            "views/overview.py",
            title=t("page.overview", lang),
            icon=":material/dashboard:",
            default=True,
        ),
        st.Page("views/response.py", title=t("page.response", lang), icon=":material/timer:"),
        st.Page(
            "views/satisfaction.py",
            title=t("page.satisfaction", lang),
            icon=":material/sentiment_satisfied:",
        ),
        st.Page(
            "views/effect.py",
            title=t("page.governance_effect", lang),
            icon=":material/trending_up:",
        ),
        st.Page(
            "views/evaluation.py", title=t("page.evaluation", lang), icon=":material/military_tech:"
        ),
        st.Page("views/data.py", title=t("page.data", lang), icon=":material/folder_open:"),
    ]
)
navigation.run()
