"""The dashboard's pages (registered in app.py with st.navigation).

Not named pages/: Streamlit treats a pages/ folder beside the entry script as a legacy
multipage app on a process's first run, which would open a deep link without app.py's
shared sidebar (and makes AppTest reruns skip app.py).
"""
