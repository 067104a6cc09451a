"""The app's first page on a warehouse built by the real loader."""

from pathlib import Path

import openpyxl
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from etl.load import load_paths
from govdash.config import load_config

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _clear_caches() -> None:
    st.cache_data.clear()
    st.cache_resource.clear()


def _ticket_workbook(path: Path, count: int) -> Path:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["工单编号", "小区", "受理时间", "办结时间"])
    for index in range(count):
        sheet.append([f"GD{index:04d}", "锦绣苑", f"2024-03-{index % 28 + 1:02d} 10:00", None])
    workbook.save(path)
    return path


def test_first_page_shows_counts_and_load_history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "w.duckdb"
    load_paths([_ticket_workbook(tmp_path / "工单.xlsx", 7)], db, load_config())
    monkeypatch.setenv("GOVDASH_DB", str(db))
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30).run()
    assert not app.exception
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["工单"] == "7"
    assert metrics["加载批次"] == "1"
    history = app.dataframe[0].value
    assert list(history["文件"]) == ["工单.xlsx"]
    assert list(history["加载行数"]) == [7]


def test_first_page_without_a_warehouse_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOVDASH_DB", str(tmp_path / "none.duckdb"))
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30).run()
    assert not app.exception
    assert "govdash demo" in app.info[0].value
