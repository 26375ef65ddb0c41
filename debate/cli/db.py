"""`debate db ...`: move a database (e.g. a local SQLite file to PostgreSQL)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from debate.cli.app import app, console, emit_json, out
from debate.cli.safe import esc
from debate.cli.tables import print_table
from debate.core.redact import redact

db_app = typer.Typer(help="Database maintenance: copy a database to another one.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("copy")
def copy(
    source: Annotated[str, typer.Option("--from", help="Source URL, e.g. sqlite:///runs/debate.db.")],
    target: Annotated[str, typer.Option("--to", help="Target URL of an empty database, e.g. postgresql+psycopg://...")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the per-table counts as JSON.")] = False,
) -> None:
    """Copy pages, hypotheses, runs, turns, scores and reviews to an empty database; verify counts."""
    from debate.store.dbcopy import copy_database

    for url in (source, target):
        if not (url.startswith("sqlite:///") or url.startswith("postgresql")):
            from debate.core.errors import UserInputError

            raise UserInputError(f"{url!r}: must start with sqlite:/// or postgresql+psycopg://")
    console.print(f"[dim]copying {esc(redact(source))} -> {esc(redact(target))}[/dim]")
    counts = copy_database(source, target)
    if as_json:
        emit_json([c.model_dump() for c in counts])
        return
    table = Table("table", "source", "target")
    for c in counts:
        table.add_row(c.table, str(c.source), str(c.target))
    print_table(out, table)
    out.print(f"copied {sum(c.target for c in counts)} rows in {len(counts)} tables; counts match")
