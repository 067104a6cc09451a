"""The annual evaluation report as files: an XLSX of every number and a print-ready A4 PDF.

Both are built from one EvaluationResult (govdash.analytics.metrics.evaluation) and the Config that produced
it. Nothing here reads the warehouse: callers pass the load batches (govdash.analytics.queries.loads
.load_history) for the 数据来源 part. The PDF is an HTML document, charts inlined as SVG, that
Debian's headless Chromium prints; no browser is ever downloaded.
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from copy import copy
from dataclasses import dataclass
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from govdash.analytics.charts.plots import bar_ranking, rank_bands
from govdash.analytics.charts.style import (
    PALETTE,
    TEXT_COLOUR,
    ChartContext,
    apply_print_style,
    format_value,
)
from govdash.analytics.metrics.evaluation import (
    METHOD_LABELS,
    TOTAL_DECIMALS,
    EvaluationResult,
    MethodComparison,
    RobustnessResult,
    YearRanking,
    block_column,
    block_names,
    compare_methods,
    robustness,
    rules_text,
    year_over_year,
)
from govdash.analytics.reports.export import (
    PersonalDataError,
    Provenance,
    assert_no_personal_data,
    figure_to_image,
    neutralise_cell,
)
from govdash.analytics.reports.pdf import (
    PDF_TIMEOUT_SECONDS,
    html_to_pdf,
)
from govdash.core.config import Config
from govdash.i18n import t

XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PDF_MIME = "application/pdf"
# The loader turns every evaluator's name into this (govdash/etl/clean.py); a report shows nothing else.
PSEUDONYM = re.compile(r"评委-[0-9A-F]{6}")
RANK_CSV_COLUMNS = ["rank", "unit", "total", "grade", "award", "eligible", "reason"]
CHART_WIDTH = 760  # px; A4 between 14 mm margins is ~690 px, so charts shrink only a little
RANKING_CHART_UNITS = 20
BREAKDOWN_CHART_UNITS = 10
BAND_CHART_UNITS = 20
METHOD_TABLE_UNITS = 15


@dataclass(frozen=True)
class _Analyses:
    """Everything the two files show beside the ranking, computed once."""

    methods: MethodComparison
    robust: RobustnessResult
    change: pd.DataFrame | None  # year_over_year, or None without a previous year


def _analyses(
    result: EvaluationResult, config: Config, previous: YearRanking | None
) -> _Analyses:
    return _Analyses(
        methods=compare_methods(result),
        robust=robustness(result, config),
        change=year_over_year(result, previous) if previous is not None else None,
    )


# --- guards --------------------------------------------------------------------------------------


def check_report_inputs(result: EvaluationResult, config: Config, lang: str = "zh") -> None:
    """Refuse a report whose config is not the one behind the numbers, or that would name an
    evaluator other than by pseudonym (PIPL: names never leave the loader)."""
    if result.config.fingerprint != config.fingerprint:
        raise ValueError(
            t(
                "report.config_mismatch",
                lang,
                used=result.config.fingerprint,
                given=config.fingerprint,
            )
        )
    names = {str(v) for v in result.evaluator_scores["evaluator"].dropna()}
    names |= {str(v) for v in result.inputs.adjustments["evaluator"].dropna()}
    named = sorted(name for name in names if not PSEUDONYM.fullmatch(name))
    if named:
        raise PersonalDataError(t("report.not_pseudonym", lang, count=len(named)))


# --- titles and the CSV of `govdash rank` --------------------------------------------------------


def report_title(result: EvaluationResult, lang: str = "zh") -> str:
    """E.g. "2025年度 小区 评优评先考评报告"."""
    return t("report.title", lang, year=result.year, level=t(f"level.{result.level}", lang))


def report_file_name(result: EvaluationResult, suffix: str, lang: str = "zh") -> str:
    """A download name such as "2025年度_小区_考评报告.pdf"."""
    name = t("report.file_name", lang, year=result.year, level=t(f"level.{result.level}", lang))
    return f"{name}.{suffix}"


def ranking_csv(result: EvaluationResult, lang: str = "zh") -> str:
    """The ranking as CSV in position order: RANK_CSV_COLUMNS with headers in `lang` (名次,
    单位, 总分 …), totals at full precision (a CSV is for computing; the XLSX report rounds),
    eligibility as 是/否 (yes/no)."""
    table = result.table
    frame = pd.DataFrame(
        {
            "rank": table["rank"].astype("int64"),
            "unit": table["unit"].astype(object),
            "total": table["total"].astype(float),
            "grade": table["grade"].astype(object),
            "award": table["award"].astype(object),
            "eligible": _yes_no(table["is_eligible"], lang),
            "reason": table["ineligible_reason"].astype(object),
        }
    )[RANK_CSV_COLUMNS]
    assert_no_personal_data(frame)
    for column in ("unit", "grade", "award", "reason"):
        frame[column] = frame[column].map(neutralise_cell)
    frame.columns = [t(f"column.{column}", lang) for column in RANK_CSV_COLUMNS]
    text: str = frame.to_csv(index=False, lineterminator="\n")
    return text


# --- the tables both files show --------------------------------------------------------------------


def ranking_frame(
    result: EvaluationResult, change: pd.DataFrame | None, lang: str = "zh"
) -> pd.DataFrame:
    """排名: one row per unit in position order, headers in `lang`."""
    table = result.table
    blocks = block_names(result.config)
    columns: dict[str, Any] = {
        t("column.rank", lang): table["rank"].astype("int64").to_numpy(),
        t("column.unit", lang): table["unit"].to_numpy(object),
        t("report.col_parent", lang): table["parent"].to_numpy(object),
        t("column.total", lang): table["total"].astype(float).to_numpy(),
        t("column.grade", lang): table["grade"].to_numpy(object),
        t("column.award", lang): table["award"].to_numpy(object),
        t("column.eligible", lang): _yes_no(table["is_eligible"], lang),
        t("column.reason", lang): table["ineligible_reason"].to_numpy(object),
    }
    if change is not None:
        by_unit = change.set_index("unit")
        units = table["unit"].tolist()
        columns[t("report.col_previous_rank", lang)] = (
            by_unit["previous_rank"].reindex(units).to_numpy()
        )
        columns[t("report.col_rank_change", lang)] = (
            by_unit["rank_change"].reindex(units).to_numpy()
        )
        columns[t("report.col_previous_total", lang)] = (
            by_unit["previous_total"].reindex(units).to_numpy()
        )
        columns[t("column.total_change", lang)] = by_unit["total_change"].reindex(units).to_numpy()
    else:
        for key in (
            "report.col_previous_rank",
            "report.col_rank_change",
            "report.col_previous_total",
            "column.total_change",
        ):
            columns[t(key, lang)] = [None] * len(table)
    for block in blocks:
        columns[block_column(block)] = table[block_column(block)].astype(float).to_numpy()
    columns[t("report.col_bonus", lang)] = table["bonus"].astype(float).to_numpy()
    columns[t("report.col_penalty", lang)] = table["penalty"].astype(float).to_numpy()
    columns[t("report.col_veto", lang)] = _yes_no(table["is_veto"], lang)
    columns[t("report.col_disputed", lang)] = table["disputed_indicators"].to_numpy(object)
    columns[t("report.col_tie_note", lang)] = table["tie_note"].to_numpy(object)
    columns[t("report.col_adjustment_note", lang)] = table["adjustment_note"].to_numpy(object)
    if not bool(table["parent"].notna().any()):  # property companies belong to no unit
        del columns[t("report.col_parent", lang)]
    return pd.DataFrame(columns).reset_index(drop=True)


def breakdown_frame(result: EvaluationResult, lang: str = "zh") -> pd.DataFrame:
    """得分构成: unit × indicator with points, maximum, the raw value and where it came from."""
    rank = dict(zip(result.table["unit"], result.table["rank"], strict=True))
    frame = result.breakdown
    return pd.DataFrame(
        {
            t("column.rank", lang): frame["unit"].map(rank).astype("int64").to_numpy(),
            t("column.unit", lang): frame["unit"].to_numpy(object),
            t("config.block", lang): frame["block"].to_numpy(object),
            t("config.indicator", lang): frame["indicator"].to_numpy(object),
            t("config.source", lang): [_source_label(s, lang) for s in frame["source"]],
            t("report.col_value", lang): frame["value"].astype(float).to_numpy(),
            t("report.col_n", lang): frame["n"].to_numpy(),
            t("report.col_points", lang): frame["points"].astype(float).to_numpy(),
            t("report.col_points_max", lang): frame["points_max"].astype(float).to_numpy(),
            t("report.col_share", lang): frame["share"].astype(float).to_numpy(),
            t("report.col_missing", lang): _yes_no(frame["is_missing"], lang),
            t("report.col_explanation", lang): frame["explanation"].to_numpy(object),
        }
    )


def evaluator_frame(result: EvaluationResult, lang: str = "zh") -> tuple[pd.DataFrame, list[bool]]:
    """评委评分: every score used, with its unit × indicator aggregate; and which were trimmed."""
    position = dict(zip(result.table["unit"], result.table["position"], strict=True))
    rank = dict(zip(result.table["unit"], result.table["rank"], strict=True))
    order = {indicator.name: i for i, indicator in enumerate(result.config.indicators)}
    detail = result.evaluator_detail[
        ["unit", "indicator", "block", "points_max", "method", "aggregate", "is_disputed"]
    ]
    frame = result.evaluator_scores.merge(detail, on=["unit", "indicator"], how="left")
    frame = frame.assign(
        _position=frame["unit"].map(position), _order=frame["indicator"].map(order)
    ).sort_values(["_position", "_order", "score", "evaluator"], kind="stable")
    trimmed = [bool(v) for v in frame["is_trimmed"].tolist()]
    shown = pd.DataFrame(
        {
            t("column.rank", lang): frame["unit"].map(rank).astype("int64").to_numpy(),
            t("column.unit", lang): frame["unit"].to_numpy(object),
            t("config.block", lang): frame["block"].to_numpy(object),
            t("config.indicator", lang): frame["indicator"].to_numpy(object),
            t("report.col_points_max", lang): frame["points_max"].astype(float).to_numpy(),
            t("report.col_evaluator", lang): frame["evaluator"].to_numpy(object),
            t("report.col_score", lang): frame["score"].astype(float).to_numpy(),
            t("report.col_trimmed", lang): _yes_no(trimmed, lang),
            t("report.col_method", lang): frame["method"].to_numpy(object),
            t("report.col_aggregate", lang): frame["aggregate"].astype(float).to_numpy(),
            t("report.col_disputed_flag", lang): [
                t("report.yes", lang) if bool(v) else "" for v in frame["is_disputed"].tolist()
            ],
        }
    )
    return shown, trimmed


def method_frames(analyses: _Analyses, lang: str = "zh") -> dict[str, pd.DataFrame]:
    """方法与稳健性: the three methods' ranks, their correlations, the weights, robustness."""
    methods = analyses.methods
    ranks = methods.ranks
    method_ranks = pd.DataFrame(
        {
            t("column.unit", lang): ranks["unit"].to_numpy(object),
            t("report.col_expert_rank", lang): ranks["expert_rank"].to_numpy(),
            t("report.col_entropy_score", lang): ranks["entropy_score"].to_numpy(float),
            t("report.col_entropy_rank", lang): ranks["entropy_rank"].to_numpy(),
            t("report.col_topsis_closeness", lang): ranks["topsis_closeness"].to_numpy(float),
            t("report.col_topsis_rank", lang): ranks["topsis_rank"].to_numpy(),
        }
    )
    correlations = methods.correlations
    correlation_table = pd.DataFrame(
        {
            t("report.col_method_a", lang): [METHOD_LABELS[m] for m in correlations["method_a"]],
            t("report.col_method_b", lang): [METHOD_LABELS[m] for m in correlations["method_b"]],
            "Spearman ρ": correlations["spearman"].astype(float).to_numpy(),
            "Kendall τ-b": correlations["kendall"].astype(float).to_numpy(),
        }
    )
    weights = pd.DataFrame(
        {
            t("config.indicator", lang): methods.expert_weights.index.to_numpy(object),
            t("report.col_expert_weight", lang): methods.expert_weights.to_numpy(float),
            t("report.col_entropy_weight", lang): methods.entropy_weights.reindex(
                methods.expert_weights.index
            ).to_numpy(float),
        }
    )
    robust = analyses.robust.table
    robust_table = pd.DataFrame(
        {
            t("column.unit", lang): robust["unit"].to_numpy(object),
            t("column.rank", lang): robust["rank"].to_numpy(),
            t("column.award", lang): robust["award"].to_numpy(object),
            t("report.col_median_rank", lang): robust["median_rank"].to_numpy(),
            t("report.col_rank_p05", lang): robust["rank_p05"].to_numpy(),
            t("report.col_rank_p95", lang): robust["rank_p95"].to_numpy(),
            t("report.col_best_award", lang): robust["best_award"].to_numpy(object),
            t("report.col_worst_award", lang): robust["worst_award"].to_numpy(object),
            t("report.col_same_award_share", lang): robust["same_award_share"].to_numpy(float),
            t("report.col_crosses_tier", lang): _yes_no(robust["crosses_tier"], lang),
        }
    )
    return {
        "method_ranks": method_ranks,
        "correlations": correlation_table,
        "weights": weights,
        "robustness": robust_table,
    }


def config_frames(config: Config, result: EvaluationResult, lang: str = "zh") -> dict[str, Any]:
    """配置: the indicator system, grades, awards and every other setting behind the numbers."""
    indicators = pd.DataFrame(
        {
            t("config.block", lang): [i.block for i in config.indicators],
            t("config.indicator", lang): [i.name for i in config.indicators],
            t("config.points", lang): [float(i.points) for i in config.indicators],
            t("config.source", lang): [_source_label(i.source, lang) for i in config.indicators],
            t("report.col_metric", lang): [i.metric or "" for i in config.indicators],
            t("config.floor", lang): [i.floor for i in config.indicators],
            t("config.target", lang): [i.target for i in config.indicators],
            t("report.col_help", lang): [i.help for i in config.indicators],
        }
    )
    grades = pd.DataFrame(
        {
            t("column.grade", lang): list(config.grades),
            t("report.col_cut", lang): [float(v) for v in config.grades.values()],
            t("report.col_count", lang): [
                int((result.table["grade"] == name).sum()) for name in config.grades
            ],
        }
    )
    awards = pd.DataFrame(
        {
            t("column.award", lang): list(config.awards),
            t("report.col_award_share", lang): [float(v) for v in config.awards.values()],
            t("report.col_count", lang): [
                int((result.table["award"] == name).sum()) for name in config.awards
            ],
        }
    )
    settings = [
        (t("report.set_tie_break", lang), "、".join(config.tie_break)),
        (
            t("report.set_trim", lang),
            t("report.set_trim_value", lang, k=config.trim_from_evaluators),
        ),
        (t("report.set_disagreement", lang), f"{config.disagreement_share:.0%}"),
        (t("report.set_max_bonus", lang), f"{config.max_bonus:g}"),
        (t("report.set_min_sample", lang), str(config.min_sample)),
        (t("report.set_satisfied_min", lang), str(config.satisfied_min_score)),
        (t("report.set_k", lang), f"{config.basic_satisfied_weight:g}"),
        (
            t("report.set_robustness", lang),
            t(
                "report.set_robustness_value",
                lang,
                draws=config.robustness_draws,
                spread=f"{config.robustness_spread:.0%}",
                seed=config.robustness_seed,
            ),
        ),
        (t("report.set_red_black", lang), str(config.red_black_list_size)),
        (t("provenance.config", lang), config.fingerprint),
        (
            t("report.set_source_file", lang),
            config.source_path or t("provenance.not_recorded", lang),
        ),
    ]
    setting_table = pd.DataFrame(
        settings, columns=[t("report.col_setting", lang), t("report.col_value_text", lang)]
    )
    return {
        "indicators": indicators,
        "grades": grades,
        "awards": awards,
        "settings": setting_table,
        "rules": rules_text(config),
    }


def sources_frame(
    batches: pd.DataFrame | None, provenance: Provenance, lang: str = "zh"
) -> pd.DataFrame:
    """数据来源: the load batches (batch, file, kinds, loaded_at, rows); without them, the
    provenance's source lines."""
    if batches is None or batches.empty:
        sources = provenance.sources or [t("provenance.not_recorded", lang)]
        return pd.DataFrame({t("provenance.sources", lang): sources})
    frame = batches.sort_values("batch_id")
    columns: dict[str, Any] = {
        t("history.batch_id", lang): frame["batch_id"].to_numpy(),
        t("history.file_name", lang): frame["file_name"].to_numpy(object),
    }
    if "kinds" in frame.columns:
        columns[t("history.kinds", lang)] = [_kinds_text(v, lang) for v in frame["kinds"]]
    columns[t("history.loaded_at", lang)] = pd.to_datetime(frame["loaded_at"]).dt.strftime(
        "%Y-%m-%d %H:%M:%S"
    )
    for name in ("rows_loaded", "rows_rejected"):
        if name in frame.columns:
            columns[t(f"history.{name}", lang)] = frame[name].to_numpy()
    return pd.DataFrame(columns).reset_index(drop=True)


def _kinds_text(kinds: object, lang: str) -> str:
    """ "tickets,survey" → "工单、满意度问卷"."""
    codes = [code for code in str(kinds or "").split(",") if code]
    names = [_label_or(f"report.kind_{code}", code, lang) for code in codes]
    return t("report.name_separator", lang).join(names)


def _label_or(key: str, fallback: str, lang: str) -> str:
    text = t(key, lang)
    return fallback if text == key else text


def _yes_no(values: Iterable[Any], lang: str) -> list[str]:
    return [t("report.yes", lang) if bool(v) else t("report.no", lang) for v in values]


def _source_label(source: str, lang: str) -> str:
    return _label_or(f"report.source_{source}", source, lang)


# --- the workbook --------------------------------------------------------------------------------

_HEADER_FONT = Font(bold=True, color="FFFFFF")
_HEADER_FILL = PatternFill("solid", fgColor="1F4E79")
_TITLE_FONT = Font(bold=True, size=13)
_NOTE_FONT = Font(italic=True, color="595959")
_TRIMMED_FILL = PatternFill("solid", fgColor="D9D9D9")
_TRIMMED_FONT = Font(color="595959", strike=True)
_WRAP = Alignment(wrap_text=True, vertical="top")
_HEADER_ALIGNMENT = Alignment(horizontal="center", vertical="center", wrap_text=True)
_NUMBER_FORMATS = {
    "total": "0.00",
    "points": "0.00",
    "share": "0.0%",
    "rate": "0.000",
    "correlation": "0.000",
}


class _Sheet:
    """Writes tables one below another on a sheet, every text cell neutralised."""

    def __init__(self, sheet: Worksheet, lang: str) -> None:
        self.sheet = sheet
        self.lang = lang
        self.row = 1
        self.widths: dict[int, float] = {}
        self.styles: dict[tuple[str, bool], Any] = {}

    def title(self, text: str) -> None:
        cell = self.sheet.cell(row=self.row, column=1, value=neutralise_cell(text))
        cell.font = _TITLE_FONT
        self.row += 1

    def lines(self, texts: Sequence[str], font: Font | None = None) -> None:
        for text in texts:
            cell = self.sheet.cell(row=self.row, column=1, value=neutralise_cell(text))
            if font is not None:
                cell.font = font
            self.row += 1

    def blank(self) -> None:
        self.row += 1

    def table(
        self,
        frame: pd.DataFrame,
        formats: dict[str, str] | None = None,
        grey_rows: Sequence[bool] | None = None,
        filter_and_freeze: bool = False,
    ) -> None:
        assert_no_personal_data(frame, self.lang)
        formats = formats or {}
        header_row = self.row
        for column, name in enumerate(frame.columns, start=1):
            cell = self.sheet.cell(row=header_row, column=column, value=neutralise_cell(str(name)))
            cell.font = _HEADER_FONT
            cell.fill = _HEADER_FILL
            cell.alignment = _HEADER_ALIGNMENT
            self._fit(column, str(name))
        column_formats = [formats.get(str(name), "") for name in frame.columns]
        for offset, values in enumerate(frame.itertuples(index=False, name=None), start=1):
            row = header_row + offset
            grey = bool(grey_rows[offset - 1]) if grey_rows is not None else False
            for column, (number_format, value) in enumerate(
                zip(column_formats, values, strict=True), start=1
            ):
                cell = self.sheet.cell(row=row, column=column, value=_cell_value(value))
                if number_format or grey:
                    self._style(cell, number_format, grey)
                if offset <= 300:  # enough rows to size a column
                    self._fit(column, _width_text(value))
        last_row = header_row + len(frame)
        if filter_and_freeze and len(frame.columns):
            self.sheet.freeze_panes = self.sheet.cell(row=header_row + 1, column=3)
            last_column = get_column_letter(len(frame.columns))
            self.sheet.auto_filter.ref = f"A{header_row}:{last_column}{last_row}"
        self.row = last_row + 1

    def _style(self, cell: Any, number_format: str, grey: bool) -> None:
        # Setting a style on a cell hashes it against the workbook's style list, which costs
        # more than writing the cell; cells that look alike copy the first one's style array.
        key = (number_format, grey)
        cached = self.styles.get(key)
        if cached is not None:
            cell._style = copy(cached)
            return
        if number_format:
            cell.number_format = number_format
        if grey:
            cell.fill = _TRIMMED_FILL
            cell.font = _TRIMMED_FONT
        self.styles[key] = copy(cell._style)

    def provenance(self, provenance: Provenance) -> None:
        self.blank()
        self.lines(provenance.lines(self.lang), _NOTE_FONT)

    def finish(self) -> None:
        for column, width in self.widths.items():
            self.sheet.column_dimensions[get_column_letter(column)].width = width

    def _fit(self, column: int, text: str) -> None:
        width = float(min(60, max(8, _display_width(text) + 2)))
        self.widths[column] = max(self.widths.get(column, 8.0), width)


def _cell_value(value: object) -> object:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, str):
        return neutralise_cell(value)
    if hasattr(value, "item"):  # numpy scalars
        return _cell_value(value.item())
    if isinstance(value, float):
        # openpyxl writes 16 significant digits, which can change the last bit of a double;
        # the engine compares totals at TOTAL_DECIMALS, so that is what the file keeps exactly.
        return round(value, TOTAL_DECIMALS)
    if isinstance(value, (bool, int)):
        return value
    return neutralise_cell(str(value))


def _width_text(value: object) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.2f}"
    return "" if value is None or value is pd.NA else str(value)


def _display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def report_workbook(
    result: EvaluationResult,
    config: Config,
    provenance: Provenance,
    lang: str = "zh",
    previous: YearRanking | None = None,
    *,
    batches: pd.DataFrame | None = None,
) -> bytes:
    """The evaluation as an XLSX: 排名, 得分构成, 评委评分, 方法与稳健性, 配置, 数据来源, 说明.

    Numbers are written to TOTAL_DECIMALS decimals, the precision the engine ranks at (shown
    with two); trimmed evaluator scores
    are grey and struck through; every text cell is neutralised (no formulas). `previous` is
    last year's ranking at the same level (rank and total change); `batches` the load history
    (batch_id, file_name, kinds, loaded_at, rows_loaded, rows_rejected).
    """
    check_report_inputs(result, config, lang)
    analyses = _analyses(result, config, previous)
    workbook = Workbook()
    workbook.remove(workbook.active)

    def sheet(key: str) -> _Sheet:
        return _Sheet(workbook.create_sheet(t(key, lang)), lang)

    total, points, share = (
        _NUMBER_FORMATS["total"],
        _NUMBER_FORMATS["points"],
        _NUMBER_FORMATS["share"],
    )
    ranking = sheet("report.sheet_ranking")
    ranking_table = ranking_frame(result, analyses.change, lang)
    two_decimals = {
        t(key, lang): total
        for key in ("column.total", "report.col_previous_total", "column.total_change")
    }
    two_decimals |= {block_column(b): points for b in block_names(config)}
    two_decimals |= {t("report.col_bonus", lang): points, t("report.col_penalty", lang): points}
    ranking.table(ranking_table, two_decimals, filter_and_freeze=True)
    ranking.provenance(provenance)

    parts = sheet("report.sheet_breakdown")
    parts.table(
        breakdown_frame(result, lang),
        {
            t("report.col_value", lang): _NUMBER_FORMATS["rate"],
            t("report.col_points", lang): points,
            t("report.col_share", lang): share,
        },
        filter_and_freeze=True,
    )
    parts.provenance(provenance)

    scores = sheet("report.sheet_evaluators")
    scores_table, trimmed = evaluator_frame(result, lang)
    scores.lines([t("report.trimmed_note", lang)], _NOTE_FONT)
    scores.table(
        scores_table,
        {t("report.col_aggregate", lang): points},
        grey_rows=trimmed,
        filter_and_freeze=True,
    )
    scores.provenance(provenance)

    methods = sheet("report.sheet_methods")
    frames = method_frames(analyses, lang)
    correlation = _NUMBER_FORMATS["correlation"]
    methods.title(t("report.methods_ranks", lang))
    methods.table(
        frames["method_ranks"],
        {
            t("report.col_entropy_score", lang): correlation,
            t("report.col_topsis_closeness", lang): correlation,
        },
    )
    methods.blank()
    methods.title(t("report.methods_correlations", lang))
    methods.table(frames["correlations"], {"Spearman ρ": correlation, "Kendall τ-b": correlation})
    methods.blank()
    methods.title(t("report.methods_weights", lang))
    methods.table(
        frames["weights"],
        {
            t("report.col_expert_weight", lang): share,
            t("report.col_entropy_weight", lang): share,
        },
    )
    methods.blank()
    robust = analyses.robust
    methods.title(
        t(
            "report.robustness_title",
            lang,
            draws=robust.draws,
            spread=f"{robust.spread:.0%}",
            seed=robust.seed,
        )
    )
    methods.table(frames["robustness"], {t("report.col_same_award_share", lang): share})
    methods.provenance(provenance)

    settings = sheet("report.sheet_config")
    config_tables = config_frames(config, result, lang)
    settings.title(t("report.config_indicators", lang))
    settings.table(config_tables["indicators"])
    settings.blank()
    settings.title(t("report.config_grades", lang))
    settings.table(config_tables["grades"])
    settings.blank()
    settings.title(t("report.config_awards", lang))
    settings.table(config_tables["awards"], {t("report.col_award_share", lang): "0%"})
    settings.blank()
    settings.title(t("report.config_settings", lang))
    settings.table(config_tables["settings"])
    settings.blank()
    settings.title(t("evaluation.rules", lang))
    settings.lines(config_tables["rules"])
    settings.provenance(provenance)

    sources = sheet("report.sheet_sources")
    sources.table(sources_frame(batches, provenance, lang))
    sources.provenance(provenance)

    about = sheet("export.about_sheet")
    about.title(report_title(result, lang))
    about.lines(_about_lines(result, config, previous, lang))
    about.blank()
    about.title(t("export.about_heading", lang))
    about.lines(provenance.lines(lang))
    if result.warnings:
        about.blank()
        about.title(t("report.warnings", lang))
        about.lines(list(result.warnings))
    about.widths[1] = 100.0

    for part in (ranking, parts, scores, methods, settings, sources):
        part.finish()
    about.finish()
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _about_lines(
    result: EvaluationResult, config: Config, previous: YearRanking | None, lang: str
) -> list[str]:
    table = result.table
    lines = [
        t(
            "report.summary_units",
            lang,
            n=len(table),
            eligible=int(table["is_eligible"].sum()),
        ),
        t("report.summary_grades", lang, grades=_count_text(table["grade"], config.grades, lang)),
        t("report.summary_awards", lang, awards=_count_text(table["award"], config.awards, lang)),
        t("report.previous_year", lang, year=previous.year)
        if previous is not None
        else t("report.no_previous_year", lang),
        t("report.sheets_guide", lang),
    ]
    return lines


def _count_text(values: pd.Series, names: Iterable[str], lang: str) -> str:
    separator = t("report.list_separator", lang)
    return separator.join(
        t("report.count_item", lang, name=name, n=int((values == name).sum())) for name in names
    )


# --- the PDF ---------------------------------------------------------------------------------------


def report_pdf(
    result: EvaluationResult,
    config: Config,
    provenance: Provenance,
    lang: str = "zh",
    previous: YearRanking | None = None,
    *,
    batches: pd.DataFrame | None = None,
    timeout: float = PDF_TIMEOUT_SECONDS,
) -> bytes:
    """A print-ready A4 PDF: title, summary and ranking, charts, methods and robustness, the
    rules and indicator system, the sources and the config fingerprint."""
    document = report_html(result, config, provenance, lang, previous, batches=batches)
    return html_to_pdf(document, lang, timeout=timeout)


def report_html(
    result: EvaluationResult,
    config: Config,
    provenance: Provenance,
    lang: str = "zh",
    previous: YearRanking | None = None,
    *,
    batches: pd.DataFrame | None = None,
    charts: bool = True,
) -> str:
    """The HTML the PDF is printed from (charts inlined as SVG unless `charts` is False)."""
    check_report_inputs(result, config, lang)
    analyses = _analyses(result, config, previous)
    title = report_title(result, lang)
    sections = [
        _ranking_section(result, config, provenance, analyses, lang, title),
        _charts_section(result, provenance, analyses, lang) if charts else "",
        _methods_section(result, analyses, lang),
        _rules_section(result, config, lang),
        _sources_section(result, config, provenance, batches, lang),
    ]
    fingerprint = t("report.fingerprint_short", lang, fingerprint=config.fingerprint)
    css = (
        _CSS.replace("__HEADER__", _css_string(title))
        .replace("__FINGERPRINT__", _css_string(fingerprint))
        .replace("__PAGE_NUMBER__", _page_number_content(lang))
    )
    html_lang = "zh-CN" if lang == "zh" else "en"
    return (
        f'<!doctype html><html lang="{html_lang}"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{css}</style></head><body>"
        + "".join(sections)
        + "</body></html>"
    )


_CSS = """
@page {
  size: A4;
  margin: 17mm 14mm 16mm 14mm;
  @top-left { content: __HEADER__; font: 7.5pt "Noto Sans CJK SC", sans-serif; color: #595959; }
  @top-right { content: __FINGERPRINT__; font: 7.5pt "Noto Sans CJK SC", sans-serif; color: #595959; }
  @bottom-center {
    content: __PAGE_NUMBER__;
    font: 7.5pt "Noto Sans CJK SC", sans-serif; color: #595959;
  }
}
@page :first { @top-left { content: none; } @top-right { content: none; } }
* { box-sizing: border-box; }
html { font-family: "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", sans-serif;
  font-size: 9.5pt; color: #222222; line-height: 1.45; }
body { margin: 0; }
h1 { font-size: 19pt; margin: 0 0 1.5mm; color: #1F4E79; letter-spacing: 0.02em; }
h2 { font-size: 13.5pt; margin: 0 0 3mm; padding-bottom: 1mm; border-bottom: 1.2pt solid #1F4E79;
  color: #1F4E79; break-after: avoid; }
h3 { font-size: 10.5pt; margin: 5mm 0 1.5mm; break-after: avoid; }
p { margin: 0 0 2mm; }
section { break-before: page; }
section.first { break-before: auto; }
.meta { color: #595959; font-size: 8.5pt; margin-bottom: 4mm; }
.meta span + span::before { content: " · "; }
.cards { display: grid; grid-template-columns: repeat(4, 1fr); gap: 2.5mm; margin: 0 0 5mm; }
.card { border: 0.8pt solid #BFBFBF; border-top: 2.2pt solid #1F4E79; padding: 1.8mm 2.2mm;
  break-inside: avoid; -webkit-print-color-adjust: exact; print-color-adjust: exact; }
.card .label { font-size: 8pt; color: #595959; }
.card .value { font-size: 15pt; font-weight: bold; line-height: 1.2; }
.card .detail { font-size: 7.5pt; color: #595959; }
table { border-collapse: collapse; width: 100%; font-size: 8.2pt; margin: 0 0 3mm; }
thead { display: table-header-group; }
th { background: #1F4E79; color: #FFFFFF; font-weight: bold; text-align: left;
  padding: 1.1mm 1.4mm; vertical-align: bottom;
  -webkit-print-color-adjust: exact; print-color-adjust: exact; }
td { padding: 0.75mm 1.4mm; border-bottom: 0.5pt solid #D9D9D9; vertical-align: top; }
tr { break-inside: avoid; }
th.num, td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.nowrap { white-space: nowrap; }
tr.muted td { color: #737373; }
td.award { font-weight: bold; white-space: nowrap; }
td.reason { font-size: 7.5pt; color: #595959; }
.mark { color: #B2182B; font-weight: bold; }
figure { margin: 0 0 4mm; break-inside: avoid; }
figure img { display: block; width: 100%; max-height: 225mm; object-fit: contain;
  object-position: left top; }
figcaption { font-size: 8pt; color: #595959; margin-top: 1mm; }
.note { font-size: 8pt; color: #595959; }
ol.rules, ul.plain { margin: 0 0 3mm; padding-left: 5mm; }
ol.rules li, ul.plain li { margin-bottom: 1.2mm; }
.two { display: grid; grid-template-columns: 1fr 1fr; gap: 5mm; }
.keep { break-inside: avoid; }
.page { break-before: page; }
"""


def _page_number_content(lang: str) -> str:
    """The CSS `content` of the page footer, e.g. "第 " counter(page) " 页，共 " …"""
    parts = re.split(r"(\{page\}|\{pages\})", t("report.page_number", lang))
    counters = {"{page}": "counter(page)", "{pages}": "counter(pages)"}
    return " ".join(counters.get(part) or _css_string(part) for part in parts if part)


def _css_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in row.items()} for row in frame.to_dict("records")]


def _cell(frame: pd.DataFrame, index: object, column: str) -> Any:
    return frame.at[index, column]


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _number(value: object, decimals: int = 2) -> str:
    if value is None or value is pd.NA:
        return ""
    number = float(value)  # type: ignore[arg-type]
    if math.isnan(number):
        return ""
    return f"{number:,.{decimals}f}"


def _percent(value: object) -> str:
    if value is None or value is pd.NA:
        return ""
    number = float(value)  # type: ignore[arg-type]
    return "" if math.isnan(number) else f"{number:.0%}"


def _signed(value: object, decimals: int = 0) -> str:
    if value is None or value is pd.NA:
        return ""
    number = float(value)  # type: ignore[arg-type]
    if math.isnan(number):
        return ""
    if round(number, decimals) == 0:
        return "—" if decimals == 0 else f"{0:.{decimals}f}"
    arrow = "↑" if number > 0 else "↓"
    return f"{arrow}{abs(number):,.{decimals}f}" if decimals == 0 else f"{number:+,.{decimals}f}"


def _html_table(
    headers: Sequence[tuple[str, str]],
    rows: Iterable[Sequence[str]],
    row_classes: Sequence[str] | None = None,
    widths: Sequence[str] | None = None,
) -> str:
    """headers: (text, css class); rows: cells already escaped (HTML)."""
    colgroup = ""
    if widths:
        colgroup = (
            "<colgroup>" + "".join(f'<col style="width:{w}">' for w in widths) + "</colgroup>"
        )
    head = "".join(f'<th class="{cls}">{_e(text)}</th>' for text, cls in headers)
    body = []
    for index, row in enumerate(rows):
        row_class = row_classes[index] if row_classes else ""
        cells = "".join(
            f'<td class="{cls}">{cell}</td>' for (_, cls), cell in zip(headers, row, strict=True)
        )
        body.append(f'<tr class="{row_class}">{cells}</tr>')
    return f"<table>{colgroup}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _ranking_section(
    result: EvaluationResult,
    config: Config,
    provenance: Provenance,
    analyses: _Analyses,
    lang: str,
    title: str,
) -> str:
    table = result.table
    change = analyses.change.set_index("unit") if analyses.change is not None else None
    unstable = set(analyses.robust.table.loc[analyses.robust.table["crosses_tier"], "unit"])
    has_parent = bool(table["parent"].notna().any())
    meta = [
        t("report.generated_on", lang, at=provenance.generated_at.strftime("%Y-%m-%d %H:%M")),
        t("report.fingerprint_short", lang, fingerprint=config.fingerprint),
        t("report.sources_count", lang, n=len(provenance.sources)),
    ]
    cards = [
        (
            t("report.card_units", lang),
            str(len(table)),
            t("report.card_eligible", lang, n=int(table["is_eligible"].sum())),
        ),
        (
            t("report.card_grades", lang),
            str(int(table["grade"].isin(list(config.grades)[:2]).sum())),
            _count_text(table["grade"], config.grades, lang),
        ),
        (
            t("report.card_awards", lang),
            str(int((table["award"] != "").sum())),
            _count_text(table["award"], config.awards, lang),
        ),
        (
            t("report.card_unstable", lang),
            str(len(unstable)),
            t(
                "report.card_unstable_detail",
                lang,
                draws=analyses.robust.draws,
                spread=f"{analyses.robust.spread:.0%}",
            ),
        ),
    ]
    card_html = "".join(
        f'<div class="card"><div class="label">{_e(label)}</div>'
        f'<div class="value">{_e(value)}</div><div class="detail">{_e(detail)}</div></div>'
        for label, value, detail in cards
    )
    headers: list[tuple[str, str]] = [
        (t("column.rank", lang), "num"),
        (t("column.unit", lang), ""),
    ]
    widths = ["6%", "21%"]
    if has_parent:
        headers.append((t("report.col_parent", lang), ""))
        widths.append("14%")
    headers += [
        (t("column.total", lang), "num"),
        (t("column.grade", lang), "nowrap"),
        (t("column.award", lang), "award"),
    ]
    widths += ["8%", "6%", "9%"]
    if change is not None:
        headers += [
            (t("report.col_rank_change_short", lang), "num"),
            (t("report.col_total_change_short", lang), "num"),
        ]
        widths += ["8%", "9%"]
    headers.append((t("report.col_remark", lang), "reason"))
    rows: list[list[str]] = []
    classes: list[str] = []
    for row in _records(table):
        unit = str(row["unit"])
        award = _e(row["award"])
        if unit in unstable:
            award += ' <span class="mark">◇</span>'
        cells = [str(int(row["rank"])), _e(unit)]
        if has_parent:
            cells.append(_e(row["parent"] if isinstance(row["parent"], str) else ""))
        cells += [_number(row["total"]), _e(row["grade"]), award]
        if change is not None:
            if unit in change.index and not pd.isna(_cell(change, unit, "previous_rank")):
                cells += [
                    _signed(_cell(change, unit, "rank_change")),
                    _signed(_cell(change, unit, "total_change"), 2),
                ]
            else:
                cells += [_e(t("report.new_unit", lang)), ""]
        remarks = [str(row["ineligible_reason"])] if row["ineligible_reason"] else []
        if row["disputed_indicators"]:
            remarks.append(t("report.disputed_remark", lang, indicators=row["disputed_indicators"]))
        cells.append(_e("；".join(remarks)))
        rows.append(cells)
        classes.append("" if row["is_eligible"] else "muted")
    widths.append("auto")
    notes = [t("report.ranking_note", lang)]
    if unstable:
        notes.append(t("report.unstable_note", lang))
    if change is not None and analyses.change is not None:
        notes.append(t("report.change_note", lang, year=int(result.year or 0) - 1))
    return (
        '<section class="first">'
        f"<h1>{_e(title)}</h1>"
        f'<div class="meta">{"".join(f"<span>{_e(m)}</span>" for m in meta)}</div>'
        f'<div class="cards">{card_html}</div>'
        f"<h2>{_e(t('report.section_ranking', lang))}</h2>"
        + "".join(f'<p class="note">{_e(n)}</p>' for n in notes)
        + _html_table(headers, rows, classes, widths)
        + "</section>"
    )


def _chart_svg(figure: go.Figure, provenance: Provenance, lang: str) -> str:
    image = figure_to_image(figure, "svg", provenance, lang, width=CHART_WIDTH)
    return "data:image/svg+xml;base64," + base64.b64encode(image).decode("ascii")


def breakdown_figure(
    result: EvaluationResult, units: int, context: ChartContext, lang: str = "zh"
) -> go.Figure:
    """Stacked horizontal bars of the block subtotals (and the bonus) of the top units."""
    config = result.config
    top = result.table.head(units)
    labels = top["unit"].astype(str).tolist()
    figure = go.Figure()
    for index, block in enumerate(block_names(config)):
        maximum = sum(result.weights[i.name] for i in config.indicators if i.block == block)
        values = top[block_column(block)].astype(float).tolist()
        figure.add_trace(
            go.Bar(
                x=values,
                y=labels,
                orientation="h",
                name=t("report.block_legend", lang, block=block, points=f"{maximum:g}"),
                marker={
                    "color": PALETTE[index % len(PALETTE)],
                    "line": {"color": "#FFFFFF", "width": 0.8},
                },
                text=[format_value(v, decimals=1) for v in values],
                textposition="inside",
                insidetextanchor="middle",
                textfont={"size": 11},
                hovertemplate=f"%{{y}} · {block}: %{{x:.2f}}<extra></extra>",
            )
        )
    bonus = (top["bonus"] - top["penalty"]).astype(float)
    if bool((bonus != 0).any()):
        figure.add_trace(
            go.Bar(
                x=bonus.tolist(),
                y=labels,
                orientation="h",
                name=t("report.bonus_legend", lang),
                marker={"color": "#FFFFFF", "line": {"color": TEXT_COLOUR, "width": 1}},
                hovertemplate="%{y}: %{x:+.2f}<extra></extra>",
            )
        )
    figure.add_trace(
        go.Scatter(
            x=top["total"].astype(float).tolist(),
            y=labels,
            mode="text",
            text=[f"  {v:.2f}" for v in top["total"].astype(float)],
            textposition="middle right",
            textfont={"size": 12, "color": TEXT_COLOUR},
            cliponaxis=False,
            showlegend=False,
            hoverinfo="skip",
        )
    )
    figure.update_layout(
        barmode="relative",
        height=len(labels) * 30 + 250,
        bargap=0.28,
        uniformtext_minsize=9,
        uniformtext_mode="hide",
        legend={"font": {"size": 11}},
        margin={"t": 150, "r": 60},
    )
    figure.update_xaxes(title_text=t("report.axis_points", lang), range=[0, 108])
    figure.update_yaxes(categoryorder="array", categoryarray=list(reversed(labels)), showgrid=False)
    return apply_print_style(
        figure, t("report.chart_breakdown", lang, n=len(labels)), context, lang
    )


def _charts_section(
    result: EvaluationResult, provenance: Provenance, analyses: _Analyses, lang: str
) -> str:
    table = result.table
    level = t(f"level.{result.level}", lang)
    period = t("report.period", lang, year=result.year)
    # Each chart carries a short footer; the full source list is in the last section.
    chart_source = Provenance(
        filters_text=t("report.chart_filters", lang, year=result.year, level=level),
        sources=[t("report.chart_sources", lang)],
        generated_at=provenance.generated_at,
        config_fingerprint=provenance.config_fingerprint or result.config.fingerprint,
    )
    top = table.head(RANKING_CHART_UNITS)
    ranking = bar_ranking(
        top,
        "unit",
        "total",
        title=t("report.chart_ranking", lang, n=len(top)),
        context=ChartContext(period, len(table)),
        lang=lang,
        value_title=t("column.total", lang),
        label_title=level,
        decimals=2,
    )
    ranking.update_xaxes(range=[0, 108])
    ranking.update_layout(height=len(top) * 24 + 210)
    breakdown = breakdown_figure(
        result, BREAKDOWN_CHART_UNITS, ChartContext(period, len(table)), lang
    )
    robust = analyses.robust.table.sort_values(["rank", "unit"]).head(BAND_CHART_UNITS)
    bands = rank_bands(
        robust,
        "unit",
        "median_rank",
        "rank_p05",
        "rank_p95",
        title=t("report.chart_bands", lang, n=len(robust)),
        context=ChartContext(period, len(table)),
        lang=lang,
        flag_col="crosses_tier",
    )
    # The template leaves room for a title and subtitle; a legend needs a little more.
    bands.update_layout(
        height=len(robust) * 26 + 250, margin={"t": 140}, legend={"font": {"size": 12}}
    )
    blocks = block_names(result.config)
    headers = [(t("column.unit", lang), "")]
    headers += [(block, "num") for block in blocks]
    headers += [
        (t("report.col_bonus_penalty", lang), "num"),
        (t("column.total", lang), "num"),
    ]
    rows = [
        [_e(row["unit"])]
        + [_number(row[block_column(block)]) for block in blocks]
        + [_signed(row["bonus"] - row["penalty"], 2), _number(row["total"])]
        for row in _records(table.head(BREAKDOWN_CHART_UNITS))
    ]
    block_table = f"<h3>{_e(t('report.breakdown_table', lang, n=len(rows)))}</h3>" + _html_table(
        headers, rows
    )
    band_caption = t(
        "report.caption_bands",
        lang,
        draws=analyses.robust.draws,
        spread=f"{analyses.robust.spread:.0%}",
    )
    # One page each: the ranking; the block breakdown with its numbers; the rank bands.
    pages = [
        (ranking, t("report.caption_ranking", lang), ""),
        (breakdown, t("report.caption_breakdown", lang), block_table),
        (bands, band_caption, ""),
    ]
    parts = [f"<section><h2>{_e(t('report.section_charts', lang))}</h2>"]
    for index, (figure, caption, after) in enumerate(pages):
        source = _chart_svg(figure, chart_source, lang)
        parts.append(
            f'<div class="{"keep" if index == 0 else "keep page"}">'
            f'<figure><img src="{source}" alt="{_e(figure.layout.title.text)}">'
            f"<figcaption>{_e(caption)}</figcaption></figure>{after}</div>"
        )
    parts.append("</section>")
    return "".join(parts)


def _methods_section(result: EvaluationResult, analyses: _Analyses, lang: str) -> str:
    methods = analyses.methods
    correlations = methods.correlations
    correlation_rows = [
        [
            _e(METHOD_LABELS[a]),
            _e(METHOD_LABELS[b]),
            _number(rho, 3),
            _number(tau, 3),
        ]
        for a, b, rho, tau in correlations[
            ["method_a", "method_b", "spearman", "kendall"]
        ].itertuples(index=False, name=None)
    ]
    correlation_table = _html_table(
        [
            (t("report.col_method_a", lang), ""),
            (t("report.col_method_b", lang), ""),
            ("Spearman ρ", "num"),
            ("Kendall τ-b", "num"),
        ],
        correlation_rows,
    )
    weight_rows = [
        [_e(name), f"{expert:.1%}", f"{methods.entropy_weights.get(name, math.nan):.1%}"]
        for name, expert in methods.expert_weights.items()
    ]
    weight_table = _html_table(
        [
            (t("config.indicator", lang), ""),
            (t("report.col_expert_weight", lang), "num"),
            (t("report.col_entropy_weight", lang), "num"),
        ],
        weight_rows,
    )
    ranks = methods.ranks.head(METHOD_TABLE_UNITS)
    rank_rows = [
        [
            _e(row["unit"]),
            str(int(row["expert_rank"])),
            str(int(row["entropy_rank"])),
            str(int(row["topsis_rank"])),
        ]
        for row in _records(ranks)
    ]
    rank_table = _html_table(
        [
            (t("column.unit", lang), ""),
            (METHOD_LABELS["expert"], "num"),
            (METHOD_LABELS["entropy"], "num"),
            (METHOD_LABELS["topsis"], "num"),
        ],
        rank_rows,
    )
    robust = analyses.robust
    flagged = robust.table[robust.table["crosses_tier"]]
    if flagged.empty:
        flagged_html = f"<p>{_e(t('report.no_unstable', lang))}</p>"
    else:
        none = t("report.no_award", lang)
        flagged_rows = [
            [
                _e(row["unit"]),
                str(int(row["rank"])),
                _e(row["award"] or none),
                str(int(row["median_rank"])),
                f"{int(row['rank_p05'])}–{int(row['rank_p95'])}",
                _e(f"{row['best_award'] or none} – {row['worst_award'] or none}"),
                _percent(row["same_award_share"]),
            ]
            for row in _records(flagged)
        ]
        flagged_html = _html_table(
            [
                (t("column.unit", lang), ""),
                (t("column.rank", lang), "num"),
                (t("column.award", lang), "nowrap"),
                (t("report.col_median_rank", lang), "num"),
                (t("report.col_band", lang), "num"),
                (t("report.col_award_range", lang), "nowrap"),
                (t("report.col_same_award_share", lang), "num"),
            ],
            flagged_rows,
        )
    return (
        f"<section><h2>{_e(t('report.section_methods', lang))}</h2>"
        f"<p>{_e(t('report.methods_intro', lang))}</p>"
        f"<h3>{_e(t('report.methods_correlations', lang))}</h3>"
        + correlation_table
        + '<div class="two"><div>'
        f"<h3>{_e(t('report.methods_weights', lang))}</h3>" + weight_table + "</div><div>"
        f"<h3>{_e(t('report.methods_top_ranks', lang, n=len(rank_rows)))}</h3>"
        + rank_table
        + "</div></div>"
        + '<div class="keep">'
        f"<h3>{_e(t('report.robustness_title', lang, draws=robust.draws, spread=f'{robust.spread:.0%}', seed=robust.seed))}</h3>"
        f'<p class="note">{_e(t("report.robustness_intro", lang))}</p>'
        + flagged_html
        + "</div></section>"
    )


def _rules_section(result: EvaluationResult, config: Config, lang: str) -> str:
    rules = "".join(f"<li>{_e(line)}</li>" for line in rules_text(config))
    rows = [
        [
            _e(i.block),
            _e(i.name),
            _number(i.points, 0) if float(i.points).is_integer() else _number(i.points, 1),
            _e(_source_label(i.source, lang)),
            "" if i.floor is None else f"{i.floor:g}",
            "" if i.target is None else f"{i.target:g}",
            _e(i.help),
        ]
        for i in config.indicators
    ]
    indicator_table = _html_table(
        [
            (t("config.block", lang), "nowrap"),
            (t("config.indicator", lang), ""),
            (t("config.points", lang), "num"),
            (t("config.source", lang), "nowrap"),
            (t("config.floor", lang), "num"),
            (t("config.target", lang), "num"),
            (t("report.col_help", lang), "reason"),
        ],
        rows,
    )
    settings = config_frames(config, result, lang)["settings"]
    setting_rows = [[_e(a), _e(b)] for a, b in settings.itertuples(index=False, name=None)]
    setting_table = _html_table(
        [(t("report.col_setting", lang), "nowrap"), (t("report.col_value_text", lang), "")],
        setting_rows,
        widths=["30%", "70%"],
    )
    return (
        f"<section><h2>{_e(t('report.section_rules', lang))}</h2>"
        f'<ol class="rules">{rules}</ol>'
        f"<h3>{_e(t('report.config_indicators', lang))}</h3>"
        + indicator_table
        + '<div class="keep">'
        f"<h3>{_e(t('report.config_settings', lang))}</h3>" + setting_table + "</div></section>"
    )


def _sources_section(
    result: EvaluationResult,
    config: Config,
    provenance: Provenance,
    batches: pd.DataFrame | None,
    lang: str,
) -> str:
    frame = sources_frame(batches, provenance, lang)
    numeric = {
        t("history.batch_id", lang),
        t("history.rows_loaded", lang),
        t("history.rows_rejected", lang),
    }
    headers = [(str(c), "num" if c in numeric else "") for c in frame.columns]
    rows = [
        [
            f"{int(v):,}" if c in numeric and not pd.isna(v) else _e(v)
            for c, v in zip(frame.columns, values, strict=True)
        ]
        for values in frame.itertuples(index=False, name=None)
    ]
    listed = provenance.lines(lang)
    if batches is not None and not batches.empty:  # the table above lists the sources
        listed = [
            t("provenance.line", lang, label=t(label, lang), value=value)
            for label, value in (
                ("provenance.filters", provenance.filters_text or t("filter.none", lang)),
                ("provenance.generated_at", f"{provenance.generated_at:%Y-%m-%d %H:%M}"),
                ("provenance.config", provenance.config_fingerprint or config.fingerprint),
            )
        ]
    lines = "".join(f"<li>{_e(line)}</li>" for line in listed)
    warnings = ""
    if result.warnings:
        warnings = (
            f'<h3>{_e(t("report.warnings", lang))}</h3><ul class="plain">'
            + "".join(f"<li>{_e(w)}</li>" for w in result.warnings)
            + "</ul>"
        )
    return (
        f"<section><h2>{_e(t('report.section_sources', lang))}</h2>"
        f"<h3>{_e(t('report.sheet_sources', lang))}</h3>"
        + _html_table(headers, rows)
        + f"<h3>{_e(t('export.about_heading', lang))}</h3>"
        f'<ul class="plain">{lines}</ul>'
        f'<p class="note">{_e(t("report.config_line", lang, fingerprint=config.fingerprint, path=config.source_path or t("provenance.not_recorded", lang)))}</p>'
        + warnings
        + "</section>"
    )
