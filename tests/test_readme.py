"""The README documents what the code declares: every warehouse column and config section."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def schema_columns() -> dict[str, list[str]]:
    sql = (ROOT / "govdash" / "etl" / "schema.sql").read_text(encoding="utf-8")
    tables: dict[str, list[str]] = {}
    for match in re.finditer(r"CREATE TABLE IF NOT EXISTS (\w+) \((.*?)\n\);", sql, re.S):
        columns = re.findall(r"^\s+(\w+)\s+[A-Z]", match.group(2), re.M)
        tables[match.group(1)] = columns
    return tables


def test_schema_has_the_tables_of_the_contract() -> None:
    assert set(schema_columns()) >= {
        "compounds",
        "tickets",
        "survey_responses",
        "survey_answers",
        "evaluation_scores",
        "evaluation_adjustments",
        "load_batches",
        "rejected_rows",
    }


def test_every_warehouse_column_is_documented() -> None:
    missing = [
        f"{table}.{column}"
        for table, columns in schema_columns().items()
        for column in columns
        if f"`{column}`" not in README
    ]
    assert missing == []


def test_every_config_section_is_documented() -> None:
    with (ROOT / "govdash" / "core" / "config.toml").open("rb") as handle:
        config = tomllib.load(handle)
    missing = [
        section
        for section in config
        if f"[{section}]" not in README and f"[[{section}]]" not in README
    ]
    assert missing == []


def test_readme_commands_match_the_makefile_and_ci() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^run:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    assert "make run" in README and "make test" in README
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_every_cli_subcommand_is_documented() -> None:
    from govdash.cli import build_parser

    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    for name in subparsers.choices:  # type: ignore[attr-defined]
        assert f"govdash {name}" in README
