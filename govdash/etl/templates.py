"""Blank workbooks with the right headers and drop-down lists, one per kind of spreadsheet."""

from __future__ import annotations

import io

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

from govdash.core.config import Config
from govdash.etl.fields import EVALUATION, FIELDS, KIND_LABELS, PERSONAL, REGISTER, SURVEY, TICKETS
from govdash.etl.vocab import CHANNEL, PRIORITY, REQUEST_TYPE, SATISFACTION, STATUS

_YES_NO = ("是", "否")
_LEVELS = ("小区", "社区", "物业企业")
# Personal columns a template still carries because offices need them to work (the loader
# hashes the phone and keeps the building of the room); names and ID numbers are left out.
_KEPT_PERSONAL = {"phone", "room"}
_NOTES = {
    TICKETS: "时间请填写为 2024-03-05 14:30 或 Excel 日期时间格式；联系电话仅以不可逆方式用于识别重复来电，姓名、身份证号不要填写。",
    SURVEY: "每题填写 1–5 分（5 非常满意 … 1 非常不满意），未使用该项服务请留空。",
    EVALUATION: "每位评委一行；每个指标的得分不得超过该指标分值。",
    REGISTER: "每个小区（院落）一行；户数、楼栋数填整数；日期填写为 2024-03-05。",
}


def _choices(kind: str, config: Config) -> dict[str, tuple[str, ...]]:
    common: dict[str, tuple[str, ...]] = {"is_red_pm": _YES_NO, "has_joint_agreement": _YES_NO}
    if kind == TICKETS:
        return {
            "channel": tuple(CHANNEL),
            "request_type": tuple(REQUEST_TYPE),
            "category": config.categories,
            "priority": tuple(PRIORITY),
            "status": tuple(STATUS),
            "is_valid_callback": _YES_NO,
            "is_contacted": _YES_NO,
            "is_resolved": _YES_NO,
            "callback_satisfaction": tuple(SATISFACTION),
        }
    if kind == SURVEY:
        return {"method": ("入户", "线上", "电话"), "respondent_type": ("业主", "租户")}
    if kind == EVALUATION:
        return {"unit_level": _LEVELS, "veto": _YES_NO}
    return common


def template_headers(kind: str, config: Config) -> list[str]:
    """The canonical headers of a kind, with the config's survey items and indicators."""
    headers = [
        field.label
        for field in FIELDS[kind]
        if field.parse != PERSONAL or field.name in _KEPT_PERSONAL or field.name == "evaluator"
    ]
    if kind == SURVEY:
        at = headers.index("意见建议")
        headers[at:at] = list(config.survey_items)
    if kind == EVALUATION:
        headers = [h for h in headers if h not in ("指标", "得分")]
        at = headers.index("加分")
        headers[at:at] = [i.name for i in config.indicators if i.source == "evaluator"]
    return headers


def template_workbook(kind: str, config: Config) -> bytes:
    """An .xlsx with a title, the headers, drop-down lists for enumerations and a note."""
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = KIND_LABELS[kind]
    headers = template_headers(kind, config)
    sheet.append([f"{KIND_LABELS[kind]}（模板）"])
    sheet.append(headers)
    sheet["A1"].font = Font(bold=True, size=14)
    fill = PatternFill("solid", fgColor="DDE4EE")
    for column, header in enumerate(headers, start=1):
        cell = sheet.cell(row=2, column=column)
        cell.font = Font(bold=True)
        cell.fill = fill
        cell.alignment = Alignment(horizontal="center", wrap_text=True)
        sheet.column_dimensions[get_column_letter(column)].width = max(10, 2 * len(header) + 2)
    sheet.freeze_panes = "A3"
    labels = {field.name: field.label for field in FIELDS[kind]}
    lists = workbook.create_sheet("选项")
    for index, (name, values) in enumerate(_choices(kind, config).items(), start=1):
        label = labels.get(name)
        if label not in headers:
            continue
        letter = get_column_letter(index)
        lists.cell(row=1, column=index, value=label)
        for row, value in enumerate(values, start=2):
            lists.cell(row=row, column=index, value=value)
        validation = DataValidation(
            type="list",
            formula1=f"=选项!${letter}$2:${letter}${len(values) + 1}",
            allow_blank=True,
            showErrorMessage=True,
            errorTitle="取值不在列表中",
            error=f"“{label}”请从下拉列表中选择。",
        )
        target = get_column_letter(headers.index(label) + 1)
        validation.add(f"{target}3:{target}5000")
        sheet.add_data_validation(validation)
    lists.sheet_state = "hidden"
    notes = workbook.create_sheet("填写说明")
    notes.append(["填写说明"])
    notes.append([_NOTES[kind]])
    notes.append(["标题行、合计行可以保留，加载时会自动跳过。"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
