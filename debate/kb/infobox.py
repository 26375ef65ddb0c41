"""Reading a page's infobox ``<table>``: its rows, and which rows head a sub-table."""

from __future__ import annotations

import re
from collections.abc import Iterator

from debate.kb.markup import plain
from debate.kb.page import Fail, InfoboxRow

__all__ = [
    "TABLE_CLASS_RE",
    "TABLE_CLOSE_RE",
    "TABLE_OPEN_RE",
    "TableRow",
    "chunk_line",
    "label_rows",
    "read_table",
]

TABLE_OPEN_RE = re.compile(r"<table\b[^>]*>", re.I)
TABLE_CLOSE_RE = re.compile(r"</table\s*>", re.I)
TABLE_CLASS_RE = re.compile(r"\binfobox-([a-z][a-z0-9_-]*)", re.I)
_TABLE_TOKEN_RE = re.compile(
    r"<(t[dh])\b([^>]*)>(.*?)</t[dh]\s*>"
    r"|<caption\b.*?</caption\s*>"
    r"|</?[A-Za-z][^<>]*>",
    re.I | re.S,
)
_HEADER_WORD_RE = re.compile(r"^[A-Z][a-z]+$")

_KNOWN_HEADERS = frozenset({("Target", "Approach"), ("Agent", "Mechanism"), ("Trial", "Intervention")})
_COLUMN_WORDS = frozenset(
    {
        "Approach",
        "Mechanism",
        "Intervention",
        "Status",
        "Phase",
        "Role",
        "Function",
        "Type",
        "Description",
        "Details",
        "Value",
        "Effect",
        "Outcome",
        "Stage",
        "Sponsor",
        "Indication",
        "Result",
        "Results",
        "Evidence",
        "Notes",
        "Target",
        "Class",
        "Dose",
    }
)

# One <td>/<th> cell: tag name, attributes, inner markup, 1-based line of the cell.
_Cell = tuple[str, str, str, int]


class TableRow:
    """One ``<tr>`` as written: label and value markup (several values joined by ``; ``)."""

    __slots__ = ("label", "value", "label_line", "value_line", "th_pair")

    def __init__(self, label: str, value: str, label_line: int, value_line: int, th_pair: bool):
        self.label = label
        self.value = value
        self.label_line = label_line
        self.value_line = value_line
        self.th_pair = th_pair


def read_table(text: str, offset: int, table_line: int, fail: Fail) -> tuple[list[TableRow], int]:
    """Tokenise the table opened just before ``offset``; return its rows and the offset after
    ``</table>``.

    Text between tags means the table was never closed (the page's prose follows it).
    """
    rows: list[TableRow] = []
    cells: list[_Cell] = []
    cursor = offset
    line = table_line
    stray = ""
    for m in _TABLE_TOKEN_RE.finditer(text, offset):
        begin = m.start()
        if begin > cursor:
            if not text[cursor:begin].isspace():
                stray = _stray(text, cursor, begin, line)
                break
            line += text.count("\n", cursor, begin)
        cursor = m.end()
        tag = m.group(1)
        if tag is not None:
            cells.append((tag.lower(), m.group(2), m.group(3), line))
            line += m.group(0).count("\n")
            continue
        tok = m.group(0)[:6].lower()
        if tok.startswith(("<tr", "</tr")):
            _finish_row(cells, rows, fail)
        elif tok == "</tabl":
            _finish_row(cells, rows, fail)
            return rows, cursor
        elif tok == "<table":
            stray = f" (another <table> opens on line {line})"
            break
        # any other tag (tbody, thead, caption) carries no rows
    else:
        if text[cursor:].strip():
            stray = _stray(text, cursor, len(text), line)
    raise fail(f"infobox <table> is never closed with </table>{stray}", table_line)


def _stray(text: str, begin: int, end: int, line: int) -> str:
    """Name the line of the first non-blank text in ``text[begin:end]`` (``line`` at begin)."""
    gap = text[begin:end]
    at = line + gap[: len(gap) - len(gap.lstrip())].count("\n")
    return f" (text outside any cell on line {at})"


def _finish_row(cells: list[_Cell], rows: list[TableRow], fail: Fail) -> None:
    """Turn the cells of the row just closed into a :class:`TableRow`; clear ``cells``."""
    if not cells:
        return
    if len(cells) == 1:
        tag, attrs, _content, line = cells[0]
        cells.clear()
        if tag == "th" or "colspan" in attrs.lower():
            return  # the infobox title or a spanning caption
        raise fail("infobox row has a label cell but no value cell", line)
    label_idx = 0
    for i, (tag, attrs, _content, _line) in enumerate(cells):
        if tag == "td" and "label" in attrs:
            label_idx = i
            break
    label_cell = cells[label_idx]
    values = [cell for i, cell in enumerate(cells) if i != label_idx]
    value = "; ".join(cell[2] for cell in values)
    th_pair = all(cell[0] == "th" for cell in cells)
    rows.append(TableRow(label_cell[2], value, label_cell[3], values[0][3], th_pair))
    cells.clear()


def label_rows(rows: list[TableRow]) -> Iterator[tuple[InfoboxRow, TableRow]]:
    """Each data row as an :class:`InfoboxRow` named by the sub-table header above it."""
    table = column = ""
    plain_rows = [(plain(r.label), plain(r.value)) for r in rows]
    for k, r in enumerate(rows):
        label, value = plain_rows[k]
        if _is_header_row(k, r, label, value, plain_rows):
            table, column = label, value
            continue
        yield InfoboxRow(table=table, column=column, label=label, value=value, line=r.label_line), r


def chunk_line(row: InfoboxRow) -> str:
    """The row's line in the infobox chunk (``Target SOD1: ASO (tofersen)``)."""
    return f"{row.table} {row.label}: {row.value}" if row.table else f"{row.label}: {row.value}"


def _is_header_row(k: int, r: TableRow, label: str, value: str, plain_rows: list[tuple[str, str]]) -> bool:
    if r.th_pair or (label, value) in _KNOWN_HEADERS:
        return True
    if not (_HEADER_WORD_RE.match(label) and _HEADER_WORD_RE.match(value)):
        return False
    # The guard keeps data rows such as "Riluzole | Blocker" from being read as headers.
    if k + 1 >= len(plain_rows) or "[" in r.label or "[" in r.value:
        return False
    return k == 0 or value in _COLUMN_WORDS
