"""OpenDocument spreadsheets (.ods) written by the tests with odfpy, as LibreOffice writes them:
each cell's value and, beside it, the text the cell displays."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from odf.number import Number, NumberStyle
from odf.opendocument import OpenDocumentSpreadsheet
from odf.style import Style
from odf.table import CoveredTableCell, Table, TableCell, TableRow
from odf.text import P


def write_ods(
    path: Path,
    sheets: dict[str, Sequence[Sequence[Any]]],
    padded: dict[str, set[tuple[int, int]]] | None = None,
    merges: dict[str, list[tuple[int, int, int, int]]] | None = None,
    digits: int = 6,
) -> Path:
    """One table per entry. `padded` cells (0-based row, column) get a number format showing
    `digits` digits with leading zeros; `merges` are (row, column, rows, columns) spans whose
    covered cells are left out, as LibreOffice does. Numbers are float cells, datetimes date
    cells, everything else text."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = OpenDocumentSpreadsheet()
    number_style = NumberStyle(name="padded")
    number_style.addElement(Number(minintegerdigits=digits, decimalplaces=0))
    document.automaticstyles.addElement(number_style)
    padded_style = Style(name="padded-cell", family="table-cell", datastylename="padded")
    document.automaticstyles.addElement(padded_style)
    for name, rows in sheets.items():
        table = Table(name=name)
        spans = {(r, c): (h, w) for r, c, h, w in (merges or {}).get(name, [])}
        covered = {
            (r + i, c + j)
            for (r, c), (h, w) in spans.items()
            for i in range(h)
            for j in range(w)
            if (i, j) != (0, 0)
        }
        for r, row in enumerate(rows):
            table_row = TableRow()
            for c, value in enumerate(row):
                if (r, c) in covered:
                    table_row.addElement(CoveredTableCell())
                    continue
                options: dict[str, Any] = {}
                if (r, c) in spans:
                    options["numberrowsspanned"], options["numbercolumnsspanned"] = spans[(r, c)]
                table_row.addElement(_cell(value, (r, c) in (padded or {}).get(name, set()),
                                           padded_style, digits, options))  # fmt: skip
            table.addElement(table_row)
        document.spreadsheet.addElement(table)
    document.save(str(path))
    return path


def _cell(value: Any, is_padded: bool, style: Style, digits: int, options: dict) -> TableCell:
    if value is None:
        return TableCell(**options)
    if isinstance(value, bool):
        cell = TableCell(valuetype="boolean", booleanvalue=str(value).lower(), **options)
        shown = "TRUE" if value else "FALSE"
    elif isinstance(value, (int, float)):
        if is_padded:
            cell = TableCell(valuetype="float", value=value, stylename=style, **options)
            shown = f"{int(value):0{digits}d}"
        else:
            cell = TableCell(valuetype="float", value=value, **options)
            shown = str(value)
    elif isinstance(value, datetime):
        cell = TableCell(valuetype="date", datevalue=value.isoformat(), **options)
        shown = value.strftime("%Y-%m-%d %H:%M")
    else:
        cell = TableCell(valuetype="string", **options)
        shown = str(value)
    cell.addElement(P(text=shown))
    return cell
