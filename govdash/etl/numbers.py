"""Number cells as the clerk saw them: zero-padding formats, and numbers too long to trust.

A spreadsheet stores a number as an IEEE double plus a display format kept in the cell's
style. Two things follow for IDs (工单编号, 问卷编号) that were typed as numbers:

- A format such as `000000` shows 124 as 000124, and a CSV saved from the same sheet holds
  "000124"; the workbook's value is 124. The reader puts the displayed text back, so the .xlsx
  and its CSV give one ID.
- A double holds 15–17 significant digits and Excel keeps only 15 of what was typed: a 19-digit
  ticket number typed as a number has lost its last digits in the file itself. Such a cell is
  handed on in scientific notation (as Excel shows it), which the cleaning step refuses for an
  ID with a message that says how to keep the column as text. Where the file still holds the
  exact digits (a program wrote an integer literal no double can represent), they are kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Numbers from this size on have 16 or more integer digits: more than Excel keeps.
UNTRUSTED_FROM = 1e15
INF = float("inf")
SCIENTIFIC = re.compile(r"-?\d+(?:\.\d+)?[eE][+-]?\d+")
_PLAIN_INTEGER = re.compile(r"-?\d+")
# A format's literal text: "quoted", \x escaped, or a bare character Excel shows as is.
_QUOTED = re.compile(r'"([^"]*)"|\\(.)')
_PLACEHOLDERS = re.compile(r"^[0#]+$")


@dataclass(frozen=True)
class PaddingFormat:
    """A number format that shows an integer padded with zeros, with fixed text around it."""

    prefix: str
    digits: int  # the number of `0` placeholders: the shortest the number is shown
    suffix: str

    def show(self, value: float) -> str | None:
        """The text the format shows for `value`, or None when it is not a non-negative integer
        (other values keep their plain reading)."""
        if value != value or value < 0 or value != int(value) or value >= UNTRUSTED_FROM:
            return None
        return f"{self.prefix}{int(value):0{self.digits}d}{self.suffix}"


def padding_format(code: str) -> PaddingFormat | None:
    """The padding format of an Excel/LibreOffice format code such as `000000` or `"GD"00000`.

    Only codes made of literal text and a run of `0`/`#` with at least two zeros qualify:
    they are what offices use to keep leading zeros of codes. Decimals, thousands separators,
    percentages, dates and conditional sections are left alone.
    """
    section = code.split(";", 1)[0]
    section = re.sub(r"\[[^\]]*\]", "", section)  # colours and locale tags: [Red], [$-804]
    parts: list[tuple[bool, str]] = []  # (is_literal, text)
    position = 0
    for match in _QUOTED.finditer(section):
        if match.start() > position:
            parts.append((False, section[position : match.start()]))
        parts.append((True, match.group(1) if match.group(1) is not None else match.group(2)))
        position = match.end()
    if position < len(section):
        parts.append((False, section[position:]))
    prefix, suffix, placeholders = "", "", ""
    for is_literal, text in parts:
        if is_literal:
            if placeholders:
                suffix += text
            else:
                prefix += text
            continue
        for piece in re.split(r"([0#]+)", text):
            if not piece:
                continue
            if _PLACEHOLDERS.match(piece):
                if placeholders and not suffix:
                    placeholders += piece
                elif not placeholders:
                    placeholders = piece
                else:
                    return None  # two separate numbers in one format
            elif set(piece) <= set(" -/_") or (piece.isalpha() and not _has_format_letters(piece)):
                if placeholders:
                    suffix += piece
                else:
                    prefix += piece
            else:
                return None
    zeros = placeholders.count("0")
    if zeros < 2:
        return None
    return PaddingFormat(prefix, zeros, suffix)


def _has_format_letters(text: str) -> bool:
    """Letters Excel reads as date, time or exponent codes, not as literal text."""
    return bool(set(text.lower()) & set("ymdhseabg"))


def untrusted_number_text(literal: str) -> str | None:
    """What to hand on instead of a number cell's value, or None to keep its plain reading.

    `literal` is the number as the file writes it (`2.025030100000123e+18`, `124`). Numbers of
    16 or more integer digits come back in scientific notation, unless the literal is an
    integer a double cannot hold: then the file still has the exact digits, and they are kept.
    """
    text = literal.strip()
    try:
        value = float(text)
    except ValueError:
        return None
    if value != value or abs(value) < UNTRUSTED_FROM:
        return None
    if _PLAIN_INTEGER.fullmatch(text) and (value in (INF, -INF) or int(text) != int(value)):
        return text.lstrip("+")
    if value in (INF, -INF):  # beyond a double (1.797693134862316E+308): the text as written
        return text.upper().lstrip("+")
    return scientific(value)


def scientific(value: float) -> str:
    """`2.025030100000123E+18`: the digits a double holds, as Excel writes them."""
    mantissa, exponent = f"{value:.15E}".split("E")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}E{exponent}"
