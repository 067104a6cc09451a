"""Errors a clerk can meet, each naming the file (and where known the sheet, row and column)."""

from __future__ import annotations


class LoadError(Exception):
    """A file that cannot be loaded at all; nothing of it is written."""

    def __init__(self, file_name: str, message: str, sheet: str | None = None) -> None:
        self.file_name = file_name
        self.sheet = sheet
        self.message = message
        where = f"文件“{file_name}”" + (f"，工作表“{sheet}”" if sheet else "")
        super().__init__(f"{where}：{message}")
