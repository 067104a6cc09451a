"""The corpus of bad inputs (issue 5): one builder per case, and what the real loader makes of it.

Every file is built by code. `run_case` loads a case into a copy of a small good warehouse and
reports the clerk's message, whether the published warehouse is byte for byte unchanged, and
the row counts. `python -m tests.etl.corpus` prints the table for the issue note.
"""

from __future__ import annotations

import os
import random
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openpyxl
from msoffcrypto.format.ooxml import OOXMLFile

from govdash.core.config import Config, load_config
from govdash.core.warehouse import current_snapshot
from govdash.etl.load import FileReport, load_paths
from tests.conftest import (
    TICKET_HEADER,
    rows,
    snapshot,
    ticket_row,
    ticket_sheet,
    write_csv,
    write_xlsx,
)

# --- a workbook written from raw sheet XML ------------------------------------------------------

_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
    'package/2006/content-types"><Default Extension="rels" ContentType="application/'
    'vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType='
    '"application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/'
    'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName='
    '"/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.'
    'spreadsheetml.worksheet+xml"/></Types>'
)
_ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.'
    'org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.'
    'openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
    'Target="xl/workbook.xml"/></Relationships>'
)
_WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/'
    'spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships"><sheets><sheet name="{name}" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
_WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.'
    'org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.'
    'openxmlformats.org/officeDocument/2006/relationships/worksheet" '
    'Target="worksheets/sheet1.xml"/></Relationships>'
)
SHEET_START = (
    b'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/'
    b'spreadsheetml/2006/main"><sheetData>'
)
SHEET_END = b"</sheetData></worksheet>"


def xlsx_from_xml(path: Path, sheet_name: str, sheet_xml: Iterable[bytes]) -> Path:
    """A one-sheet .xlsx whose sheet XML is streamed from `sheet_xml` (cheap for huge sheets)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
        archive.writestr("_rels/.rels", _ROOT_RELS)
        archive.writestr("xl/workbook.xml", _WORKBOOK.format(name=sheet_name))
        archive.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as part:
            for piece in sheet_xml:
                part.write(piece)
    return path


def _text(ref: str, value: str) -> str:
    return f'<c r="{ref}" t="inlineStr"><is><t>{value}</t></is></c>'


def _header_xml(header: list[str], row: int = 1) -> str:
    cells = "".join(_text(f"{chr(65 + j)}{row}", name) for j, name in enumerate(header))
    return f'<row r="{row}">{cells}</row>'


# --- the builders -------------------------------------------------------------------------------

GOOD_ROWS = [ticket_row("OK-1"), ticket_row("OK-2")]


def _good_workbook(path: Path) -> Path:
    return write_xlsx(path, {"工单": ticket_sheet(*GOOD_ROWS)})


def build_truncated(path: Path) -> None:
    data = _good_workbook(path).read_bytes()
    path.write_bytes(data[: len(data) // 2])


def build_bad_zip(path: Path) -> None:
    path.write_bytes(b"PK\x03\x04" + random.Random(5).randbytes(8192))


def build_bad_xml(path: Path) -> None:
    body = _header_xml(["工单编号", "受理时间"]) + '<row r="2">' + _text("A2", "GD1") + '<c r="B2"'
    xlsx_from_xml(path, "工单", [SHEET_START, body.encode()])  # cut inside a tag, never closed


def build_zip_bomb(path: Path) -> None:
    """A valid sheet whose XML is 300 MB of whitespace: about 300 KB on disk."""

    def pieces() -> Iterator[bytes]:
        yield SHEET_START + _header_xml(["工单编号", "受理时间"]).encode()
        blank = b" " * (1 << 24)
        for _ in range(18):
            yield blank
        yield SHEET_END

    xlsx_from_xml(path, "工单", pieces())


def build_large_unpacked(path: Path) -> None:
    """An ordinary ticket sheet of 20,000 rows (a few MB unpacked) for a 1 MB unpacked limit."""
    data = [ticket_row(f"GD{i:05d}") for i in range(20_000)]
    xml = [SHEET_START, _header_xml(TICKET_HEADER).encode()]
    for i, row in enumerate(data, start=2):
        cells = "".join(_text(f"{chr(65 + j)}{i}", str(v)) for j, v in enumerate(row))
        xml.append(f'<row r="{i}">{cells}</row>'.encode())
    xml.append(SHEET_END)
    xlsx_from_xml(path, "工单", xml)


def build_png(path: Path) -> None:
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
        + random.Random(1).randbytes(2000)
        + b"IEND\xaeB`\x82"
    )


def build_random(path: Path) -> None:
    path.write_bytes(random.Random(2).randbytes(50_000))


def build_encrypted(path: Path) -> None:
    plain = _good_workbook(path.with_name("plain.xlsx"))
    with plain.open("rb") as source, path.open("wb") as target:
        OOXMLFile(source).encrypt("1234", target)
    plain.unlink()


def build_empty_workbook(path: Path) -> None:
    workbook = openpyxl.Workbook()
    workbook.active.title = "Sheet1"
    workbook.create_sheet("Sheet2")
    workbook.save(path)


def build_zero_bytes(path: Path) -> None:
    path.write_bytes(b"")


EXCEL_MAX_ROWS = 1_048_576


def build_million_rows(path: Path) -> None:
    """Excel's full 1,048,576 rows: a header and 1,048,575 tickets, the XML written directly."""

    def pieces() -> Iterator[bytes]:
        yield SHEET_START + _header_xml(["工单编号", "受理时间"]).encode()
        batch = []
        for r in range(2, EXCEL_MAX_ROWS + 1):
            batch.append(
                f'<row r="{r}"><c r="A{r}"><v>{r}</v></c><c r="B{r}"><v>45356</v></c></row>'
            )
            if len(batch) == 50_000:
                yield "".join(batch).encode()
                batch = []
        yield "".join(batch).encode() + SHEET_END

    xlsx_from_xml(path, "工单", pieces())


def build_understated_range(path: Path) -> None:
    """150 tickets under a <dimension> that claims the used range is A1:B2."""
    start = SHEET_START.replace(b"<sheetData>", b'<dimension ref="A1:B2"/><sheetData>')

    def pieces() -> Iterator[bytes]:
        yield start + _header_xml(["工单编号", "受理时间"]).encode()
        yield (
            "".join(
                f'<row r="{r}"><c r="A{r}"><v>{r}</v></c><c r="B{r}"><v>45356</v></c></row>'
                for r in range(2, 152)
            ).encode()
            + SHEET_END
        )

    xlsx_from_xml(path, "工单", pieces())


LONG_TEXT = ("楼道灯不亮，" * 6000)[:32_767]  # Excel's longest cell


def build_long_cells(path: Path) -> None:
    header = [*TICKET_HEADER, "问题描述"]
    write_xlsx(
        path,
        {
            "工单": [
                header,
                [*ticket_row("LONG-1"), LONG_TEXT],
                [*ticket_row("LONG-2"), LONG_TEXT[:100]],
            ]
        },
    )


def build_formulas_and_errors(path: Path) -> None:
    """Row 2 a formula with its cached date; rows 3–5 error values; row 6 plain."""
    header = ["工单编号", "小区", "受理时间", "办结时间", "问题类别"]
    body = [
        _header_xml(header),
        '<row r="2">' + _text("A2", "F-1") + _text("B2", "锦绣花园")
        + '<c r="C2"><f>DATE(2024,3,5)+0.375</f><v>45356.375</v></c>'
        + _text("D2", "2024-03-05 15:00") + _text("E2", "电梯") + "</row>",
        '<row r="3">' + _text("A3", "F-2") + _text("B3", "锦绣花园")
        + _text("C3", "2024-03-05 09:00") + '<c r="D3" t="e"><f>1/0</f><v>#DIV/0!</v></c>'
        + _text("E3", "电梯") + "</row>",
        '<row r="4">' + _text("A4", "F-3") + '<c r="B4" t="e"><f>VLOOKUP(A4,X:Y,2,0)</f><v>#N/A</v></c>'
        + _text("C4", "2024-03-05 09:00") + _text("D4", "2024-03-05 15:00") + _text("E4", "电梯")
        + "</row>",
        '<row r="5">' + _text("A5", "F-4") + _text("B5", "锦绣花园") + _text("C5", "2024-03-05 09:00")
        + _text("D5", "2024-03-05 15:00") + '<c r="E5" t="str"><f>A5+1</f><v>#VALUE!</v></c>'
        + "</row>",
        '<row r="6">' + _text("A6", "F-5") + _text("B6", "锦绣花园") + _text("C6", "2024-03-05 09:00")
        + _text("D6", "2024-03-05 15:00") + _text("E6", "电梯") + "</row>",
    ]  # fmt: skip
    xlsx_from_xml(path, "工单", [SHEET_START, "".join(body).encode(), SHEET_END])


def build_xls_errors(path: Path) -> None:
    """A legacy .xls: row 2 plain, rows 3 and 4 hold error values (#DIV/0!, #N/A)."""
    import xlwt

    workbook = xlwt.Workbook(encoding="utf-8")
    sheet = workbook.add_sheet("工单")
    rows = [
        ["工单编号", "小区", "受理时间", "办结时间", "问题类别"],
        ["X-1", "锦绣花园", "2024-03-05 09:00", "2024-03-05 15:00", "电梯"],
        ["X-2", "锦绣花园", "2024-03-05 09:00", None, "电梯"],
        ["X-3", None, "2024-03-05 09:00", "2024-03-05 15:00", "电梯"],
    ]
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            if value is not None:
                sheet.write(r, c, value)
    sheet.row(2).set_cell_error(3, "#DIV/0!")
    sheet.row(3).set_cell_error(1, 0x2A)  # #N/A (xlwt has no name for it)
    workbook.save(str(path))


def build_merged_data(path: Path) -> None:
    """小区 merged over rows 2–4 and 受理时间 over rows 2–3, as clerks format a report."""
    data = [
        ticket_row("M-1", compound="翠竹苑"),
        ticket_row("M-2", accepted=None, compound=None),
        ticket_row("M-3", compound=None),
        ticket_row("M-4", compound="锦绣花园"),
    ]
    write_xlsx(path, {"工单": ticket_sheet(*data)}, merges={"工单": ["D2:D4", "E2:E3"]})


def build_wrong_kind(path: Path) -> None:
    write_xlsx(
        path, {"名单": [["姓名", "年龄", "爱好"], ["张三", 30, "篮球"], ["李四", 41, "书法"]]}
    )


REGISTER_HEADER = ["社区", "小区名称", "小区类型", "户数", "物业企业"]


def build_register(path: Path) -> None:
    write_xlsx(
        path,
        {
            "台账": [
                REGISTER_HEADER,
                ["东升社区", "锦绣花园", "商品房物管小区", 320, "蓝天物业"],
                ["东升社区", "翠竹苑", "老旧自治院落", 86, "无"],
            ]
        },
    )


MIXED_NAMES = ["锦绣花园", "翠竹苑", "金色家园", "幸福里"]


def build_mixed_encodings(path: Path) -> None:
    """Two exports pasted together: the header and two rows in GBK, two rows in UTF-8."""
    lines = [",".join(TICKET_HEADER)] + [
        ",".join(str(v) for v in ticket_row(f"MIX-{i}", compound=name))
        for i, name in enumerate(MIXED_NAMES, start=1)
    ]
    encoded = [line.encode("gbk") for line in lines[:3]] + [
        line.encode("utf-8") for line in lines[3:]
    ]
    path.write_bytes(b"\r\n".join(encoded) + b"\r\n")


def build_undecodable(path: Path) -> None:
    lines = [",".join(TICKET_HEADER).encode("utf-8")]
    lines += [",".join(str(v) for v in ticket_row(f"BAD-{i}")).encode("utf-8") for i in (1, 2, 3)]
    lines[2] = lines[2].replace("锦绣花园".encode(), b"\xff\xfe\xfa\xff")  # row 3: no encoding
    path.write_bytes(b"\n".join(lines) + b"\n")


def build_far_dates(path: Path) -> None:
    data = [
        ticket_row("D-1900", accepted="1900-01-01 09:00", responded=None, closed=None),
        ticket_row("D-2200", accepted="2200-01-01 09:00", responded=None, closed=None),
        ticket_row("D-SERIAL", accepted=1, responded=None, closed=None),  # serial 1 = 1899-12-31
        ticket_row("D-CLOSE", closed="2200-03-05 15:00"),
        ticket_row("D-OK"),
    ]
    write_xlsx(path, {"工单": ticket_sheet(*data)})


def build_absurd_register(path: Path) -> None:
    write_xlsx(
        path,
        {
            "台账": [
                REGISTER_HEADER,
                ["东升社区", "负数小区", "商品房物管小区", -5, "蓝天物业"],
                ["东升社区", "万亿小区", "商品房物管小区", 10**12, "蓝天物业"],
                ["东升社区", "非数小区", "商品房物管小区", "NaN", "蓝天物业"],
                ["东升社区", "无穷小区", "商品房物管小区", "inf", "蓝天物业"],
                ["东升社区", "正常小区", "商品房物管小区", 150, "蓝天物业"],
            ]
        },
    )


def build_absurd_scores(path: Path) -> None:
    header = ["年度", "被考评单位", "单位类型", "评委", "指标", "得分", "扣分"]
    write_xlsx(
        path,
        {
            "评分": [
                header,
                [2024, "锦绣花园", "小区", "张伟", "绿化", 4, None],
                [2024, "锦绣花园", "小区", "李娜", "绿化", 1e9, None],
                [2024, "锦绣花园", "小区", "王芳", "绿化", "NaN", None],
                [2024, "锦绣花园", "小区", "刘洋", "绿化", "-inf", None],
                [2024, "锦绣花园", "小区", "赵磊", "绿化", 3, 1e12],
                [2024, "锦绣花园", "小区", "孙丽", "绿化", 3, "inf"],
            ]
        },
    )


def build_absurd_survey(path: Path) -> None:
    header = ["问卷编号", "调查批次", "小区", "总体满意度"]
    data = [["WJ-1", "2024年度", "锦绣花园", 1e9], ["WJ-2", "2024年度", "锦绣花园", "NaN"],
            ["WJ-3", "2024年度", "锦绣花园", "inf"], ["WJ-4", "2024年度", "锦绣花园", 5]]  # fmt: skip
    write_csv(path, [header, *data], "utf-8-sig")


def build_absurd_hours(path: Path) -> None:
    header = [*TICKET_HEADER, "承诺时限"]
    write_xlsx(
        path,
        {
            "工单": [
                header,
                [*ticket_row("H-1"), "99999999999小时"],
                [*ticket_row("H-2"), "-3天"],
                [*ticket_row("H-3"), "24小时"],
            ]
        },
    )


def build_long_csv(path: Path) -> None:
    write_csv(path, ticket_sheet(*(ticket_row(f"C{i:04d}") for i in range(150))), "utf-8")


# Personal data as offices type it into free text (issue 13, item 6): (as written, what must
# not survive — digits only for numbers, the name for names).
PII_VARIANTS = [
    ("请回电１３９１２３４５６７８", "13912345678"),  # full-width digits
    ("电话 138 1234 5678 谢谢", "13812345678"),
    ("手机137-0000-3333", "13700003333"),
    ("来电号码+86 136 0000 4444", "13600004444"),
    ("0086-13500005555转物业", "13500005555"),
    ("(+86)13400006666", "13400006666"),
    ("座机028-85551234", "02885551234"),
    ("（028）8555 1234找前台", "02885551234"),
    ("办公室02887654321", "02887654321"),
    ("身份证51010719851122567X", "51010719851122567"),
    ("身份证号51010719851122568ｘ", "51010719851122568"),  # full-width x
    ("证件 510105 19770606 0011", "510105197706060011"),
    ("联系人：张三丰，请尽快", "张三丰"),
    ("报修人李建国称漏水", "李建国"),
    ("业主王秀英反映楼道灯坏", "王秀英"),
    ("住户赵敏来电", "赵敏"),
    ("诉求人：钱多多", "钱多多"),
]


def build_pii_variants(path: Path) -> None:
    """One ticket per variant in 问题描述; the last row is rejected (受理时间 holds a phone)."""
    header = [*TICKET_HEADER, "问题描述"]
    data = [[*ticket_row(f"PII-{i:02d}"), text] for i, (text, _) in enumerate(PII_VARIANTS)]
    data.append([*ticket_row("PII-BAD", accepted="138 1234 5678"), PII_VARIANTS[0][0]])
    write_xlsx(path, {"工单": [header, *data]})


# --- the cases ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One bad input and what must come of it (figures counted by hand from the builder)."""

    name: str
    title: str
    file_name: str
    build: Callable[[Path], Any]
    refused: bool
    message_parts: tuple[str, ...] = ()  # the refusal, or the first rejection, names these
    loaded: int = 0
    rejected: int = 0
    skipped: int = 0
    data_rows: int = 0  # rows below the header; loaded + rejected + skipped must equal it
    kinds: tuple[str, ...] = ()
    loader: dict[str, Any] = field(default_factory=dict)  # [loader] keys of the case's config


CASES = [
    Case("truncated", "截断的 xlsx（下载中断）", "截断.xlsx", build_truncated, True,
         ("截断.xlsx", "损坏或不完整", "另存为")),
    Case("bad-zip", "损坏的 xlsx（压缩包内容是乱码）", "乱码.xlsx", build_bad_zip, True,
         ("乱码.xlsx", "损坏")),
    Case("bad-xml", "xlsx 内工作表 XML 不完整", "坏XML.xlsx", build_bad_xml, True,
         ("坏XML.xlsx", "工作表“工单”", "损坏")),
    Case("zip-bomb", "压缩炸弹（工作表 XML 解压后 300 MB）", "炸弹.xlsx", build_zip_bomb, True,
         ("炸弹.xlsx", "压缩炸弹", "loader.max_compression_ratio")),
    Case("unpacked-limit", "解压后超过 max_unzipped_mb（上限设为 1 MB）", "大表.xlsx",
         build_large_unpacked, True, ("大表.xlsx", "loader.max_unzipped_mb"),
         loader={"max_unzipped_mb": 1}),
    Case("png", "PNG 图片改名为 .xlsx", "照片.xlsx", build_png, True,
         ("照片.xlsx", "不是 Excel 工作簿", "另存为 .xlsx")),
    Case("random-bytes", "随机字节改名为 .xlsx", "随机.xlsx", build_random, True,
         ("随机.xlsx", "不是 Excel 工作簿")),
    Case("encrypted", "设有打开密码的工作簿（OLE 加密）", "加密.xlsx", build_encrypted, True,
         ("加密.xlsx", "打开密码", "取消密码")),
    Case("empty-workbook", "空工作簿（两个空工作表）", "空表.xlsx", build_empty_workbook, True,
         ("空表.xlsx", "没有任何数据")),
    Case("zero-bytes", "0 字节文件", "零字节.xlsx", build_zero_bytes, True, ("零字节.xlsx", "空的")),
    Case("million-rows", "1,048,576 行的工作表（每文件上限设为 1,000,000 行）", "百万行.xlsx",
         build_million_rows, True,
         ("百万行.xlsx", "1,048,576 行", "1,000,000 行", "loader.max_rows_per_file", "拆分"),
         loader={"max_rows_per_file": 1_000_000}),
    Case("understated-range", "声明的使用范围（A1:B2）少于实际行数（151 行，上限设为 100 行）",
         "范围不实.xlsx", build_understated_range, True,
         ("范围不实.xlsx", "151 行", "100 行", "loader.max_rows_per_file"),
         loader={"max_rows_per_file": 100}),
    Case("csv-row-limit", "151 行的 CSV（上限设为 100 行）", "长表.csv", build_long_csv, True,
         ("长表.csv", "100 行", "loader.max_rows_per_file", "拆分"),
         loader={"max_rows_per_file": 100}),
    Case("upload-size", "超过 max_upload_mb 的文件（上限设为 0.005 MB）", "超大.csv",
         build_long_csv, True, ("超大.csv", "loader.max_upload_mb", "拆分"),
         loader={"max_upload_mb": 0.005}),
    Case("long-cells", "32,767 字符的单元格", "长文本.xlsx", build_long_cells, False,
         loaded=2, data_rows=2, kinds=("tickets",)),
    Case("formulas-errors", "公式与错误值（#DIV/0!、#N/A、#VALUE!）", "公式.xlsx",
         build_formulas_and_errors, False, ("工作表“工单”", "第 3 行", "办结时间", "#DIV/0!"),
         loaded=2, rejected=3, data_rows=5, kinds=("tickets",)),
    Case("xls-errors", "旧版 .xls 中的错误值（#DIV/0!、#N/A）", "旧表.xls", build_xls_errors, False,
         ("工作表“工单”", "第 3 行", "办结时间", "#DIV/0!"),
         loaded=1, rejected=2, data_rows=3, kinds=("tickets",)),
    Case("merged-data", "数据区跨行合并的单元格（小区、受理时间）", "合并.xlsx", build_merged_data,
         False, loaded=4, data_rows=4, kinds=("tickets",)),
    Case("wrong-kind", "表头不属于任何类别（姓名、年龄、爱好）", "名单.xlsx", build_wrong_kind, True,
         ("名单.xlsx", "没有找到可识别的表头", "第 1 行", "姓名、年龄、爱好")),
    Case("register-as-tickets", "小区台账放在工单处上传（按表头识别为台账）", "工单_其实是台账.xlsx",
         build_register, False, loaded=2, data_rows=2, kinds=("register",)),
    Case("csv-mixed-encoding", "CSV 前半 GBK、后半 UTF-8", "混合编码.csv", build_mixed_encodings,
         False, loaded=4, data_rows=4, kinds=("tickets",)),
    Case("csv-undecodable", "CSV 含无法解码的字节", "坏字节.csv", build_undecodable, True,
         ("坏字节.csv", "第 3 行", "另存为“CSV UTF-8")),
    Case("far-dates", "1900 年、2200 年与序列号 1 的日期", "远日期.xlsx", build_far_dates, False,
         ("第 2 行", "受理时间", "早于"), loaded=1, rejected=4, data_rows=5, kinds=("tickets",)),
    Case("absurd-households", "户数 −5、10^12、NaN、inf", "台账.xlsx", build_absurd_register,
         False, ("第 2 行", "户数", "非负整数"), loaded=1, rejected=4, data_rows=5,
         kinds=("register",)),
    Case("absurd-scores", "得分 1e9、NaN、-inf，扣分 1e12、inf", "考评.xlsx", build_absurd_scores,
         False, ("第 3 行", "得分", "分值范围"), loaded=1, rejected=5, data_rows=6,
         kinds=("evaluation",)),
    Case("absurd-survey", "问卷评分 1e9、NaN、inf", "问卷.csv", build_absurd_survey, False,
         ("第 2 行", "总体满意度", "1–5"), loaded=1, rejected=3, data_rows=4, kinds=("survey",)),
    Case("pii-variants", "自由文本中的个人信息变体（全角数字、空格/短横线、+86、座机、身份证 x/X、标签后的姓名）",
         "个人信息.xlsx", build_pii_variants, False, ("第 19 行", "受理时间", "[电话]"),
         loaded=len(PII_VARIANTS), rejected=1, data_rows=len(PII_VARIANTS) + 1, kinds=("tickets",)),
    Case("absurd-hours", "承诺时限 99999999999 小时、−3 天（该值不用，按 SLA 规则；工单照常加载）",
         "时限.xlsx", build_absurd_hours, False, loaded=3, rejected=0, data_rows=3,
         kinds=("tickets",)),
]  # fmt: skip


# --- running a case -----------------------------------------------------------------------------


@dataclass
class Outcome:
    case: Case
    file: FileReport
    message: str  # the refusal, or the first rejection as the clerk reads it
    unchanged: bool  # the published version file is the same file, byte for byte
    raw_kept: bool  # the original was stored for rebuilds
    rejections: list[tuple[Any, ...]]


def build_baseline(folder: Path, config: Config) -> Path:
    """A warehouse holding one good file: the state every case starts from."""
    db = folder / "data" / "warehouse.duckdb"
    report = load_paths([_good_workbook(folder / "base" / "基线.xlsx")], db, config)
    assert report.ok, report.files[0].error
    return db


def case_config(case: Case, folder: Path) -> Config:
    if not case.loader:
        return load_config()
    path = folder / "config.toml"
    lines = ["[loader]", *(f"{key} = {value!r}" for key, value in case.loader.items())]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return load_config(path)


def run_case(case: Case, baseline: Path, folder: Path) -> Outcome:
    """Load the case into a copy of the baseline warehouse (its folder copied whole)."""
    data = folder / "data"
    shutil.copytree(baseline.parent, data, symlinks=True)
    db = data / baseline.name
    # A DuckLake warehouse: a load that changes nothing commits no snapshot.
    before_snapshot, before_rows = current_snapshot(db), snapshot(db)
    path = folder / "in" / case.file_name
    path.parent.mkdir(parents=True, exist_ok=True)
    case.build(path)
    config = case_config(case, folder)

    report = load_paths([path], db, config)

    file = report.files[0]
    unchanged = current_snapshot(db) == before_snapshot and snapshot(db) == before_rows
    raw_kept = file.sha256 != "" and any((data / "raw").glob(f"{file.sha256}*"))
    rejections = []
    if file.batch_id is not None:
        rejections = rows(
            db,
            "SELECT sheet, row_number, column_name, raw_value, reason FROM rejected_rows "
            "WHERE batch_id = $b ORDER BY row_number, column_name",
            {"b": file.batch_id},
        )
    return Outcome(case, file, clerk_message(file, rejections), unchanged, raw_kept, rejections)


def clerk_message(file: FileReport, rejections: list[tuple[Any, ...]]) -> str:
    if file.error:
        return file.error
    if not rejections:
        return f"✓ 加载 {file.rows_loaded} 行"
    first = [r for r in rejections if r[:2] == rejections[0][:2]]  # every problem of that row
    sheet, row = first[0][:2]
    problems = "；".join(
        f"“{column}”" + ("" if raw is None else f"（值：{str(raw)[:20]}）") + f"{reason}"
        for _, _, column, raw, reason in first
    )
    more = f"（共拒收 {file.rows_rejected} 行）" if file.rows_rejected > 1 else ""
    return f"工作表“{sheet}”第 {row} 行：{problems}{more}"


def table(outcomes: list[Outcome]) -> str:
    lines = [
        "| case | message the clerk gets | warehouse unchanged? | rows loaded/rejected/skipped |",
        "|---|---|---|---|",
    ]
    for outcome in outcomes:
        file = outcome.file
        counts = (
            "—" if file.error else f"{file.rows_loaded}/{file.rows_rejected}/{file.rows_skipped}"
        )
        message = outcome.message.replace("|", "\\|").replace("\n", " ")
        unchanged = "yes" if outcome.unchanged else "no (file loaded)"
        lines.append(f"| {outcome.case.title} | {message} | {unchanged} | {counts} |")
    return "\n".join(lines)


def main() -> int:
    for name in ("GOVDASH_CONFIG", "GOVDASH_HASH_KEY", "GOVDASH_DB"):
        os.environ.pop(name, None)
    with tempfile.TemporaryDirectory(prefix="govdash-corpus-") as root:
        baseline = build_baseline(Path(root) / "baseline", load_config())
        outcomes = [run_case(c, baseline, Path(root) / c.name) for c in CASES]
    sys.stdout.write(table(outcomes) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
