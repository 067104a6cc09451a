"""`together` (govdash/web/cache.py): a page's independent queries run side by side, each
with the script run's context, their results in order and their errors raised on the page."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest


def _page() -> None:
    import threading

    import streamlit as st

    from govdash.web.cache import together

    st.session_state["who"] = "街道甲"
    # Both calls wait for each other: run one after the other, the first would time out.
    meeting = threading.Barrier(2, timeout=20)

    def on_a_helper() -> str:
        meeting.wait()
        return f"{st.session_state['who']}@{threading.current_thread().name}"

    def on_the_script() -> str:
        meeting.wait()
        return f"{st.session_state['who']}@{threading.current_thread().name}"

    first, second = together(on_a_helper, on_the_script)
    st.write(first)
    st.write(second)
    if st.session_state.get("fail"):

        def failing() -> None:
            raise PermissionError("不在本账号的范围内")

        together(failing, lambda: "done")


def test_calls_run_side_by_side_with_the_sessions_state_and_in_order() -> None:
    app = AppTest.from_function(_page, default_timeout=60).run()
    assert not app.exception, [e.value for e in app.exception]
    shown = [element.value for element in app.markdown]
    assert shown[0] == "街道甲@govdash-together-0"
    assert shown[1].startswith("街道甲@") and "govdash-together" not in shown[1]


def test_an_error_in_a_helper_is_raised_on_the_page() -> None:
    app = AppTest.from_function(_page, default_timeout=60)
    app.session_state["fail"] = True
    app.run()
    assert len(app.exception) == 1
    assert "不在本账号的范围内" in app.exception[0].value
