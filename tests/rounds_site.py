"""An installation for the online-scoring tests (AppTest and browser): a small indicator system,
the register, tickets and surveys of tests/analytics/test_report.py, loaded by the real loader,
and the scores two evaluators give — typed online in the tests, or written as a workbook.

The config has two evaluator indicators so that a whole round can be typed through the pages;
both installations share one hash key, so evaluators get the same pseudonyms in both.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from govdash.core.config import Config, load_config
from govdash.etl.load import load_paths
from tests.analytics.test_report import REGISTER, survey_rows, ticket_rows
from tests.analytics.warehouse_data import REGISTER_HEADER, SURVEY_HEADER, TICKET_HEADER
from tests.conftest import write_xlsx

KEY = "rounds-site-shared-key"
CONFIG_TEXT = """
[[evaluation.indicators]]
block = "党建引领"
name = "党建引领"
points = 20
source = "evaluator"
help = "党组织建设、党建联建、党员亮身份"

[[evaluation.indicators]]
block = "服务质量巡查"
name = "服务质量巡查"
points = 20
source = "evaluator"
help = "环境卫生、秩序维护、设施设备、绿化"

[[evaluation.indicators]]
block = "诉求办理"
name = "解决率"
points = 30
source = "tickets"
metric = "resolution_rate"
floor = 0.6
target = 0.95

[[evaluation.indicators]]
block = "居民满意度"
name = "问卷满意率"
points = 30
source = "survey"
metric = "satisfaction_rate"
floor = 0.6
target = 0.95
"""
INDICATORS = ("党建引领", "服务质量巡查")
UNITS = tuple(row[2] for row in REGISTER)  # 东一小区, 东二小区, 西一小区, 西二小区
# (evaluator, unit) → (党建引领, 服务质量巡查), in steps of 0.5.
SCORES: dict[tuple[str, str], tuple[float, float]] = {
    ("王一", "东一小区"): (18, 16),
    ("王一", "东二小区"): (12, 10.5),
    ("王一", "西一小区"): (15, 17),
    ("王一", "西二小区"): (19.5, 18),
    ("李二", "东一小区"): (17, 15.5),
    ("李二", "东二小区"): (11, 12),
    ("李二", "西一小区"): (16, 14.5),
    ("李二", "西二小区"): (18, 19),
}
EVALUATORS = ("王一", "李二")
# Belongs to 东社区, so 东一小区 and 东二小区 are not offered; leaves a draft, never submits.
RECUSED = "孙六"
RECUSED_COMMUNITY = "东社区"
DRAFT = ("西一小区", "党建引领", 9.5)
ADMIN = "李主任"
PASSWORD = "a long password 2025"


def write_config(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "govdash.toml"
    path.write_text(CONFIG_TEXT, encoding="utf-8")
    return path


@contextmanager
def site_environment(config_path: Path) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GOVDASH_HASH_KEY", KEY)
        patch.setenv("GOVDASH_CONFIG", str(config_path))
        for name in ("GOVDASH_DB", "GOVDASH_ROUNDS", "GOVDASH_AUDIT", "GOVDASH_ACCOUNTS"):
            patch.delenv(name, raising=False)
        yield


def site_config(config_path: Path) -> Config:
    with site_environment(config_path):
        return load_config()


def workbook_rows() -> list[list[Any]]:
    return [
        [2025, unit, "小区", evaluator, *scores, None, None, None]
        for (evaluator, unit), scores in SCORES.items()
    ]


def build_site(folder: Path, with_scores: bool) -> tuple[Path, Path]:
    """(warehouse link, config file) of an installation in `folder`/data."""
    config_path = write_config(folder)
    files = [
        write_xlsx(folder / "台账.xlsx", {"台账": [REGISTER_HEADER, *REGISTER]}),
        write_xlsx(folder / "工单.xlsx", {"工单": [TICKET_HEADER, *ticket_rows()]}),
        write_xlsx(folder / "问卷.xlsx", {"问卷": [SURVEY_HEADER, *survey_rows()]}),
    ]
    if with_scores:
        header = ["年度", "被考评单位", "单位类型", "评委", *INDICATORS, "加分", "扣分", "一票否决"]
        files.append(write_xlsx(folder / "考评.xlsx", {"考评": [header, *workbook_rows()]}))
    db = folder / "data" / "warehouse.duckdb"
    with site_environment(config_path):
        report = load_paths(files, db, load_config())
    assert all(f.error is None and f.rows_rejected == 0 for f in report.files), [
        (f.error, f.reasons) for f in report.files
    ]
    return db, config_path
