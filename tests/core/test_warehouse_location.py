"""One notion of where an installation lives: however --db names it, the same folder is used.

Real loads into tmp_path; the paths expected are spelled out by the test, not computed by the
function under test.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from govdash.cli import main as govdash
from govdash.core.accounts import accounts_path
from govdash.core.audit import audit_path
from govdash.core.sessions import sessions_path
from govdash.core.warehouse import (
    WarehouseLocationError,
    current_snapshot,
    hash_key_path,
    lake_of,
    raw_dir,
    warehouse_location,
)
from govdash.etl.load import LoadReport
from tests.conftest import ticket_row, ticket_sheet, write_xlsx

BESIDE = (
    "GOVDASH_ACCOUNTS",
    "GOVDASH_AUDIT",
    "GOVDASH_SESSIONS",
    "GOVDASH_HASH_KEY",
    "GOVDASH_DB",
    "GOVDASH_CATALOG",
    "GOVDASH_DATA_PATH",
)


@pytest.fixture(autouse=True)
def _nothing_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in BESIDE:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def published(tmp_path: Path, load: Callable[..., tuple[LoadReport, Path]]) -> Path:
    """A warehouse published by the real loader at tmp_path/data/warehouse.duckdb."""
    book = write_xlsx(tmp_path / "in" / "3月.xlsx", {"3月": ticket_sheet(ticket_row("GD001"))})
    _, db = load(book)
    return db


def test_every_spelling_of_the_warehouse_names_the_same_installation_and_lake(
    published: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    location = tmp_path / "data" / "warehouse.duckdb"
    assert published == location
    assert (tmp_path / "data" / "warehouse.sqlite").is_file()  # the catalog beside it
    assert (tmp_path / "data" / "warehouse.files").is_dir()  # and its data files
    elsewhere = tmp_path / "srv"
    elsewhere.mkdir()
    (elsewhere / "wh.duckdb").symlink_to(location)  # an admin's own link to the location
    (elsewhere / "chain.duckdb").symlink_to(elsewhere / "wh.duckdb")
    monkeypatch.chdir(tmp_path)
    for spelling in (
        location,
        Path("data/warehouse.duckdb"),
        Path("data/../data/warehouse.duckdb"),
        elsewhere / "wh.duckdb",
        elsewhere / "chain.duckdb",
        Path("data/warehouse.sqlite"),  # the catalog file itself
    ):
        assert raw_dir(spelling) == tmp_path / "data" / "raw"
        assert hash_key_path(spelling) == tmp_path / "data" / "hash.key"
        assert accounts_path(spelling) == tmp_path / "data" / "accounts.json"
        assert audit_path(spelling) == tmp_path / "data" / "audit.sqlite3"
        assert sessions_path(spelling) == tmp_path / "data" / "sessions.sqlite3"
        assert lake_of(spelling).target == str(tmp_path / "data" / "warehouse.sqlite")
        assert current_snapshot(spelling) == 1  # the one load
    for spelling in (Path("data/warehouse.duckdb"), elsewhere / "chain.duckdb"):
        assert warehouse_location(spelling) == location, spelling


def test_a_new_warehouse_is_named_by_its_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert warehouse_location("new/warehouse.duckdb") == tmp_path / "new" / "warehouse.duckdb"


def test_a_symlink_loop_is_an_error_with_the_path(tmp_path: Path) -> None:
    (tmp_path / "a.duckdb").symlink_to(tmp_path / "b.duckdb")
    (tmp_path / "b.duckdb").symlink_to(tmp_path / "a.duckdb")
    with pytest.raises(WarehouseLocationError, match="循环"):
        warehouse_location(tmp_path / "a.duckdb")


def test_loading_through_the_catalog_file_publishes_in_the_same_lake_and_keeps_one_key(
    published: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bug of issue 12 (a load given another spelling made a second hash.key and raw/
    elsewhere), with the lake: --db naming the catalog file is the same installation."""
    data = tmp_path / "data"
    key = (data / "hash.key").read_text()
    catalog = data / "warehouse.sqlite"
    book = write_xlsx(tmp_path / "in" / "4月.xlsx", {"4月": ticket_sheet(ticket_row("GD002"))})
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    add = ["users", "add", "li", "--role", "admin", "--password-stdin", "--db", str(catalog)]
    assert govdash(add) == 0
    assert govdash(["load", str(book), "--db", str(catalog)]) == 0
    assert current_snapshot(published) == 2, "a new snapshot of the same lake"
    assert sorted(p.name for p in data.glob("*.sqlite")) == ["warehouse.sqlite"]
    assert (data / "hash.key").read_text() == key
    assert sorted(p.name for p in data.rglob("hash.key")) == ["hash.key"]
    assert [p for p in data.rglob("raw") if p.is_dir()] == [data / "raw"]
    assert [p for p in data.rglob("audit.sqlite3")] == [data / "audit.sqlite3"]
    assert [p for p in data.rglob("accounts.json")] == [data / "accounts.json"]
    manifest = (data / "raw" / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    stored = {json.loads(line)["file_name"] for line in manifest}
    assert stored == {"3月.xlsx", "4月.xlsx"}
    assert os.stat(data / "hash.key").st_mode & 0o777 == 0o600
