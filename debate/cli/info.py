"""`debate info` and `debate init`."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy import func, select

from debate import __version__
from debate.cli.app import app, emit_json, out, state
from debate.cli.safe import lit
from debate.core.redact import redact
from debate.store import tables as t
from debate.store.db import current_revision, get_engine, migrate, ping, session_scope


@app.command()
def init() -> None:
    """Create the database or bring its schema up to date."""
    engine = get_engine(state.settings.database_url)
    ping(engine)
    applied = migrate(engine)
    out.print(
        lit(
            f"{redact(state.settings.database_url)}: schema {'upgraded to' if applied else 'already at'} "
            f"{current_revision(engine)}"
        )
    )


@app.command()
def info(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Version, database in use, and counts of pages, hypotheses and runs."""
    engine = state.engine()
    with session_scope(engine) as s:

        def n(table) -> int:  # type: ignore[no-untyped-def]
            return s.execute(select(func.count()).select_from(table)).scalar_one()

        data = {
            "version": __version__,
            "database_url": redact(state.settings.database_url),
            "schema": current_revision(engine),
            "backend": state.settings.backend,
            "pages": n(t.Page),
            "hypotheses": n(t.Hypothesis),
            "runs": n(t.Run),
        }
    if as_json:
        emit_json(data)
        return
    for k, v in data.items():
        out.print(lit(f"{k:>12}: {v}"))
