"""The dashboard's entry point: page config and navigation."""

import streamlit as st

st.set_page_config(page_title="红色物业治理效能看板", page_icon="🏘️", layout="wide")

navigation = st.navigation(
    [st.Page("pages/data_status.py", title="数据概况", icon="🗂️", default=True)]
)
navigation.run()
