"""Builds the shipped Word template of the monthly bulletin (templates/bulletin.docx).

The template is an ordinary .docx with Jinja tags (docxtpl): a street opens it in Word or WPS,
changes the header, the addressees, the closing lines or the seal line, keeps the tags, and
points `bulletin.template` in the config at its copy. This module is how the shipped file was
made; run `python -m govdash.analytics.reports.bulletin_template` to write it again after a
change here (a test checks the shipped file says what this module writes).

Layout after GB/T 9704-2012 (党政机关公文格式): A4, margins 37/35/28/26 mm, title in 小标宋
二号, body in 仿宋 三号, first-level headings in 黑体, second-level in 楷体; tables in 宋体
五号. Fonts a machine lacks are substituted by Word, WPS and LibreOffice alike.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from docx import Document
from docx.enum.section import WD_ORIENT
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Mm, Pt
from docx.table import Table
from docx.text.paragraph import Paragraph

TEMPLATE_PATH = Path(__file__).with_name("templates") / "bulletin.docx"

TITLE_FONT = "方正小标宋简体"
BODY_FONT = "仿宋_GB2312"
HEADING_FONT = "黑体"
SUBHEADING_FONT = "楷体_GB2312"
TABLE_FONT = "宋体"
LATIN_FONT = "Times New Roman"

# (header, cell tag) of each table; the tags name the keys of the rows the product fills.
THREE_RATE_COLUMNS = (
    ("排名", "{{ row.rank }}"),
    ("{{ level_name }}", "{{ row.unit }}"),
    ("{{ parent_label }}", "{{ row.parent }}"),
    ("工单量（件）", "{{ row.tickets }}"),
    ("有效回访（件）", "{{ row.callback_n }}"),
    ("响应率", "{{ row.response_rate }}"),
    ("解决率", "{{ row.resolution_rate }}"),
    ("满意率", "{{ row.satisfaction_rate }}"),
    ("三率综合", "{{ row.composite }}"),
    ("排名变化", "{{ row.rank_change }}"),
)
LIST_COLUMNS = (
    ("名次", "{{ row.rank }}"),
    ("{{ level_name }}", "{{ row.unit }}"),
    ("{{ parent_label }}", "{{ row.parent }}"),
    ("三率综合", "{{ row.composite }}"),
    ("有效回访（件）", "{{ row.callback_n }}"),
)
OVERDUE_COLUMNS = (
    ("{{ level_name }}", "{{ row.unit }}"),
    ("{{ parent_label }}", "{{ row.parent }}"),
    ("月末积压（件）", "{{ row.backlog }}"),
    ("其中超期（件）", "{{ row.overdue }}"),
    ("最长超期（天）", "{{ row.longest }}"),
)
HOT_SPOT_COLUMNS = (
    ("社区", "{{ row.community }}"),
    ("小区", "{{ row.compound }}"),
    ("工单量（件）", "{{ row.tickets }}"),
    ("重复诉求（件）", "{{ row.repeats }}"),
    ("重复诉求占比", "{{ row.share }}"),
)


def _fonts(run_properties: Any, east_asian: str) -> None:
    """Set the Latin and East Asian font of a w:rPr (python-docx sets only the Latin one)."""
    fonts = run_properties.get_or_add_rFonts()  # in its place in the schema's order
    for attribute in ("w:ascii", "w:hAnsi", "w:cs"):
        fonts.set(qn(attribute), LATIN_FONT)
    fonts.set(qn("w:eastAsia"), east_asian)


def _run(paragraph: Paragraph, text: str, font: str, size: float, bold: bool = False) -> Paragraph:
    run = paragraph.add_run(text)
    run.font.size = Pt(size)
    run.font.bold = bold
    _fonts(run._element.get_or_add_rPr(), font)
    return paragraph


def _paragraph(
    document: Any,
    text: str,
    font: str = BODY_FONT,
    size: float = 16,
    *,
    bold: bool = False,
    align: WD_ALIGN_PARAGRAPH | None = None,
    first_line_indent: bool = False,
    space_after: float = 0,
    line: float | None = 28,
) -> Paragraph:
    paragraph: Paragraph = document.add_paragraph()
    if align is not None:
        paragraph.alignment = align
    form = paragraph.paragraph_format
    form.space_after = Pt(space_after)
    form.space_before = Pt(0)
    if line is not None:
        form.line_spacing = Pt(line)
    if first_line_indent:
        form.first_line_indent = Pt(size * 2)
    return _run(paragraph, text, font, size, bold)


def _tag(document: Any, text: str) -> Paragraph:
    """A paragraph holding only a docxtpl tag ({%p …%}): docxtpl removes the paragraph."""
    return _paragraph(document, text, BODY_FONT, 10, line=None)


def _table(
    document: Any,
    columns: tuple[tuple[str, str], ...],
    rows_key: str,
    widths_mm: tuple[float, ...] | None = None,
) -> Table:
    """Header row, then the row docxtpl repeats for every item of `rows_key`; column widths in
    mm (names get the room, figures the rest) within the 156 mm between the margins."""
    table: Table = document.add_table(rows=4, cols=len(columns))
    table.style = "Table Grid"
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    if widths_mm is not None:
        table.autofit = False
        for index, width in enumerate(widths_mm):
            table.columns[index].width = Mm(width)
            for row in table.rows:
                row.cells[index].width = Mm(width)
    header, opening, body, closing = table.rows
    _repeat_header(header)
    for index, (title, tag) in enumerate(columns):
        for row, text, bold in ((header, title, True), (body, tag, False)):
            cell = row.cells[index]
            paragraph = cell.paragraphs[0]
            paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
            paragraph.paragraph_format.space_after = Pt(0)
            _run(paragraph, text, TABLE_FONT, 10.5, bold)
    # docxtpl: a row whose first cell holds {%tr …%} is replaced by the tag itself.
    _run(opening.cells[0].paragraphs[0], f"{{%tr for row in {rows_key} %}}", TABLE_FONT, 10.5)
    _run(closing.cells[0].paragraphs[0], "{%tr endfor %}", TABLE_FONT, 10.5)
    return table


def _repeat_header(row: Any) -> None:
    """The header row repeats on every page a long table runs onto."""
    properties = row._tr.get_or_add_trPr()
    header = OxmlElement("w:tblHeader")
    header.set(qn("w:val"), "true")
    properties.append(header)


def _page_number(paragraph: Paragraph) -> None:
    """— PAGE — centred in the footer (a PAGE field every word processor fills in)."""
    _run(paragraph, "— ", BODY_FONT, 14)
    field = OxmlElement("w:fldSimple")
    field.set(qn("w:instr"), "PAGE")
    run = OxmlElement("w:r")
    text = OxmlElement("w:t")
    text.text = "1"
    run.append(text)
    field.append(run)
    paragraph._p.append(field)
    _run(paragraph, " —", BODY_FONT, 14)


def _heading(document: Any, text: str) -> Paragraph:
    return _paragraph(document, text, HEADING_FONT, 16, first_line_indent=True)


def _caption(document: Any, text: str) -> Paragraph:
    return _paragraph(
        document, text, SUBHEADING_FONT, 12, align=WD_ALIGN_PARAGRAPH.CENTER, space_after=6
    )


def build_template(target: Path = TEMPLATE_PATH) -> Path:
    """Write the bulletin template to `target`."""
    document = Document()
    section = document.sections[0]
    section.orientation = WD_ORIENT.PORTRAIT
    section.page_width, section.page_height = Mm(210), Mm(297)
    section.top_margin, section.bottom_margin = Mm(37), Mm(35)
    section.left_margin, section.right_margin = Mm(28), Mm(26)
    normal = document.styles["Normal"]
    normal.font.size = Pt(16)
    _fonts(normal.element.get_or_add_rPr(), BODY_FONT)

    header = section.header.paragraphs[0]
    header.alignment = WD_ALIGN_PARAGRAPH.CENTER
    _run(header, "{{ issuer }}", SUBHEADING_FONT, 10.5)
    footer = section.footer.paragraphs[0]
    footer.alignment = WD_ALIGN_PARAGRAPH.CENTER
    _page_number(footer)

    center = WD_ALIGN_PARAGRAPH.CENTER
    _paragraph(document, "{{ title }}", TITLE_FONT, 22, align=center, line=36, space_after=6)
    _paragraph(document, "{{ byline }}", SUBHEADING_FONT, 16, align=center, space_after=12)
    _paragraph(document, "{{ salutation }}", BODY_FONT, 16)
    _paragraph(document, "{{ intro }}", first_line_indent=True)

    _heading(document, "一、总体情况")
    _tag(document, "{%p for paragraph in overview %}")
    _paragraph(document, "{{ paragraph }}", first_line_indent=True)
    _tag(document, "{%p endfor %}")
    _paragraph(document, "{{ chart_trend }}", align=center, line=None)
    _caption(document, "{{ chart_trend_caption }}")

    _heading(document, "二、各{{ level_name }}“三率”排名")
    _paragraph(document, "{{ ranking_intro }}", first_line_indent=True)
    _table(document, THREE_RATE_COLUMNS, "three_rates", (9, 26, 22, 13, 14, 14, 14, 14, 14, 16))
    _paragraph(document, "{{ ranking_note }}", SUBHEADING_FONT, 12, line=None, space_after=6)
    _paragraph(document, "{{ chart_ranking }}", align=center, line=None)
    _caption(document, "{{ chart_ranking_caption }}")

    _heading(document, "三、红黑榜")
    _paragraph(document, "{{ red_black_intro }}", first_line_indent=True)
    _tag(document, "{%p if red %}")
    _paragraph(document, "红榜", SUBHEADING_FONT, 14, align=center, bold=True, line=None)
    _table(document, LIST_COLUMNS, "red", (16, 44, 40, 28, 28))
    _paragraph(document, "黑榜", SUBHEADING_FONT, 14, align=center, bold=True, line=None)
    _table(document, LIST_COLUMNS, "black", (16, 44, 40, 28, 28))
    _tag(document, "{%p endif %}")

    _heading(document, "四、超期积压工单")
    _paragraph(document, "{{ overdue_intro }}", first_line_indent=True)
    _tag(document, "{%p if overdue %}")
    _table(document, OVERDUE_COLUMNS, "overdue", (42, 36, 26, 26, 26))
    _tag(document, "{%p endif %}")

    _heading(document, "五、重复诉求热点")
    _paragraph(document, "{{ hot_spots_intro }}", first_line_indent=True)
    _tag(document, "{%p if hot_spots %}")
    _table(document, HOT_SPOT_COLUMNS, "hot_spots", (36, 42, 26, 26, 26))
    _tag(document, "{%p endif %}")
    _paragraph(document, "{{ chart_rates }}", align=center, line=None)
    _caption(document, "{{ chart_rates_caption }}")

    _heading(document, "六、工作要求")
    _tag(document, "{%p for paragraph in requirements %}")
    _paragraph(document, "{{ paragraph }}", first_line_indent=True)
    _tag(document, "{%p endfor %}")

    right = WD_ALIGN_PARAGRAPH.RIGHT
    _paragraph(document, "", line=None, space_after=24)
    _paragraph(document, "{{ issuer }}", align=right)
    _paragraph(document, "{{ date_text }}", align=right, space_after=24)

    _paragraph(document, "附：统计口径与数据来源", HEADING_FONT, 14, line=None, space_after=6)
    _tag(document, "{%p for line in method %}")
    _paragraph(document, "{{ line }}", BODY_FONT, 12, line=20, first_line_indent=True)
    _tag(document, "{%p endfor %}")
    _paragraph(document, "数据来源", SUBHEADING_FONT, 12, bold=True, line=20)
    _tag(document, "{%p for line in sources %}")
    _paragraph(document, "{{ line }}", BODY_FONT, 10.5, line=18)
    _tag(document, "{%p endfor %}")

    target.parent.mkdir(parents=True, exist_ok=True)
    document.core_properties.title = "月度通报模板"
    document.core_properties.author = "govdash"
    document.save(str(target))
    return target


if __name__ == "__main__":
    print(build_template(Path(sys.argv[1]) if len(sys.argv) > 1 else TEMPLATE_PATH))
