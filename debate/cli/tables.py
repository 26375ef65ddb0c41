"""Tables that read in 80 columns, in pipes and in CI logs.

Left to itself, rich shrinks every column of a table wider than the terminal, so a score or a
status collapses to "…" while a title wraps five characters a line. Here the fixed columns
(ids, scores, intervals, statuses, counts) keep their full width on one line and the flexible
ones (titles, target lists, reasons) share what is left, cut with an ellipsis. Columns are
separated by two spaces with no box (a box costs three characters a column, and box-drawing
glyphs read badly in CI logs). When even the fixed columns do not fit, the table is printed
wider than the terminal rather than cut.
"""

from __future__ import annotations

from collections.abc import Collection

from rich.cells import cell_len
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

MIN_FLEX = 12  # narrowest a flexible column gets: a title's first words stay readable


def _width(cell: RenderableType) -> int:
    text = cell.plain if isinstance(cell, Text) else str(cell)
    return max((cell_len(line) for line in text.splitlines()), default=0)


def fit(table: Table, width: int, flex: Collection[str]) -> int:
    """Set every column's width for a ``width``-column screen; the width the table needs."""
    table.box, table.show_edge, table.pad_edge, table.padding = None, False, False, (0, 1)
    columns = table.columns
    natural = [max([_width(c.header), *(_width(cell) for cell in c.cells)]) for c in columns]
    # Borders and padding: rich's own accounting (no public API gives it).
    overhead = table._extra_width + sum(table._get_padding_width(i) for i in range(len(columns)))
    flexible = [i for i, c in enumerate(columns) if str(c.header) in flex]
    room = width - overhead - sum(w for i, w in enumerate(natural) if i not in flexible)
    wanted = sum(natural[i] for i in flexible)
    for i, column in enumerate(columns):
        column.no_wrap = True
        column.overflow = "ellipsis"
        column.width = natural[i]
        if i in flexible and wanted > room:
            column.width = max(MIN_FLEX, min(natural[i], room * natural[i] // max(wanted, 1)))
    return overhead + sum(c.width or 0 for c in columns)


def print_table(console: Console, table: Table, *, flex: Collection[str] = ()) -> None:
    """Print ``table`` with its ``flex`` columns (by header) cut to fit and the others whole."""
    width = console.width
    needed = fit(table, width, flex)
    if needed <= width:
        console.print(table)
        return
    console.width = needed  # rich never prints wider than the console: widen it for this table
    try:
        console.print(table)
    finally:
        console.width = width
