"""A locked scoring round as files: CSV of the final scores, or a workbook the loader can read.

The workbook's first sheet is the wide 年度考评评分 layout the loader recognises (年度, 被考评单位,
单位类型, 评委, one column per indicator), so a round can be archived or moved to another
installation as the workbooks were; evaluators appear under their pseudonyms only (PIPL), and
loading the sheet again hashes those pseudonyms once more — the same evaluators, other labels.
"""

from __future__ import annotations

import io
from datetime import datetime

import pandas as pd
from openpyxl import Workbook

from govdash.core.rounds import Round

LEVEL_WORDS = {"compound": "小区", "community": "社区", "property_company": "物业企业"}
CSV_COLUMNS = ["round_id", "year", "level", "unit", "evaluator", "indicator", "score"]


def round_csv(scores: pd.DataFrame) -> bytes:
    """The final scores, long: round_id, year, level, unit, evaluator, indicator, score (UTF-8)."""
    return scores[CSV_COLUMNS].to_csv(index=False, lineterminator="\n").encode("utf-8")


def round_workbook(
    round_: Round, scores: pd.DataFrame, comments: pd.DataFrame, generated_at: datetime
) -> bytes:
    """评分 (the loader's wide layout), 评语 (unit, evaluator, comment), 说明 (what this is)."""
    names = [indicator.name for indicator in round_.indicators]
    wide = scores.pivot_table(
        index=["unit", "evaluator"], columns="indicator", values="score", aggfunc="first"
    ).reindex(columns=names)
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "评分"
    sheet.append(["年度", "被考评单位", "单位类型", "评委", *names])
    for (unit, evaluator), values in zip(
        wide.index.tolist(), wide.to_numpy().tolist(), strict=True
    ):
        cells = [None if pd.isna(v) else float(v) for v in values]
        sheet.append([round_.year, unit, LEVEL_WORDS[round_.level], evaluator, *cells])
    notes = workbook.create_sheet("评语")
    notes.append(["被考评单位", "评委", "评语"])
    for unit, evaluator, comment in comments[["unit", "evaluator", "comment"]].to_numpy().tolist():
        notes.append([str(unit), str(evaluator), str(comment)])
    about = workbook.create_sheet("说明")
    for line in (
        f"{round_.label()}（{round_.year}年 · {LEVEL_WORDS[round_.level]}）",
        f"开启：{round_.opened_by} {round_.opened_at}；锁定：{round_.locked_by} {round_.locked_at}",
        f"截止日期：{round_.deadline.isoformat()}；打分分度：{round_.score_step:g} 分",
        "评委以化名（评委-XXXXXX）记录；只含锁定时已提交的评分。",
        f"导出时间：{generated_at:%Y-%m-%d %H:%M}",
    ):
        about.append([line])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
