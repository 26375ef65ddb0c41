"""`debate hypotheses ...`: add, import, list, show, remove."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.table import Table

from debate.cli.app import app, emit_json, out, state
from debate.cli.safe import esc, lit
from debate.cli.tables import print_table
from debate.core.errors import UserInputError
from debate.core.models import HypothesisIn
from debate.kb import hypotheses as hyps
from debate.kb.screen import screen_hypothesis
from debate.store.db import session_scope
from debate.wiki.targets import hypothesis_links, target_links_text

hyp_app = typer.Typer(help="Candidate therapeutic hypotheses: add, import, list, show, remove.", no_args_is_help=True)
app.add_typer(hyp_app, name="hypotheses")


@hyp_app.command("add")
def add(
    title: Annotated[str, typer.Option("--title", help="Short title.")],
    statement: Annotated[str, typer.Option("--statement", help="The hypothesis in a few sentences.")] = "",
    target: Annotated[list[str] | None, typer.Option("--target", help="Target gene (HGNC symbol); repeatable.")] = None,
    disease: Annotated[list[str] | None, typer.Option("--disease", help="Disease; repeatable.")] = None,
    mechanism: Annotated[list[str] | None, typer.Option("--mechanism", help="Mechanism keyword; repeatable.")] = None,
    hyp_id: Annotated[str | None, typer.Option("--id", help="Id h-xxxxxxxx (default: a new random id).")] = None,
    update: Annotated[bool, typer.Option("--update", help="Change the hypothesis with this id or title.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole record as JSON.")] = False,
) -> None:
    """Add a hypothesis and print its id."""
    try:
        hin = HypothesisIn(
            id=hyp_id,
            title=title,
            statement=statement,
            targets=target or [],
            diseases=disease or [],
            mechanisms=mechanism or [],
            source="cli",
        )
    except ValidationError as e:
        raise UserInputError(hyps._first_error(e)) from None
    with session_scope(state.engine(), immediate=True) as s:
        row, _created = hyps.add(s, hin, update=update)
        record = hyps.to_out(row)
    if as_json:
        emit_json(record.model_dump())
    else:
        print(record.id)  # an id has a fixed shape (h- and 8 hex digits): nothing to clean


@hyp_app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="YAML, JSON or CSV file of hypotheses.")],
    update: Annotated[bool, typer.Option("--update", help="Change hypotheses that already exist.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the imported ids as JSON.")] = False,
) -> None:
    """Import hypotheses from a file, all or nothing."""
    ids = hyps.import_file(state.engine(), file, update=update)
    if as_json:
        emit_json(ids)
    else:
        out.print(f"imported {len(ids)} hypotheses", markup=False)


@hyp_app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List hypotheses."""
    with session_scope(state.engine()) as s:
        rows = hyps.list_all(s)
        records = [hyps.to_out(h) for h in rows]
        suspect = {h.id for h in rows if h.suspect}
    if as_json:
        emit_json([r.model_dump() | {"suspect": r.id in suspect} for r in records])
        return
    # A column only when there is something to show: imported from instruction-like page text.
    table = Table("id", "title", "targets", "prior", *(["suspect"] if suspect else []))
    for r in records:
        prior = "" if r.prior_score is None else f"{r.prior_score:.2f}"
        flag = ["yes" if r.id in suspect else ""] if suspect else []
        table.add_row(lit(r.id), lit(r.title), lit(", ".join(r.targets)), prior, *flag)
    print_table(out, table, flex=("title", "targets"))


@hyp_app.command("show")
def show(
    hyp_id: Annotated[str, typer.Argument(help="Hypothesis id, h-xxxxxxxx.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show one hypothesis."""
    with session_scope(state.engine()) as s:
        row = hyps.get(s, hyp_id)
        record = hyps.to_out(row)
        suspect = bool(row.suspect)
        links = hypothesis_links(s, hyp_id)
    if as_json:
        emit_json(
            record.model_dump() | {"suspect": suspect, "target_links": [x.model_dump(mode="json") for x in links]}
        )
        return
    out.print(f"[bold]{esc(record.title)}[/bold]  {esc(record.id)}")
    for line in record.statement.splitlines():
        out.print(lit(line))
    out.print(lit(f"targets: {', '.join(record.targets) or '—'}   diseases: {', '.join(record.diseases) or '—'}"))
    out.print(lit(f"mechanisms: {', '.join(record.mechanisms) or '—'}   source: {record.source}"))
    if record.prior_score is not None:
        out.print(lit(f"imported prior: {record.prior_score:.2f} (from {record.prior_source}; not computed here)"))
    if suspect:
        reasons = ", ".join(screen_hypothesis(record.title, record.statement, record.target_label))
        out.print(
            f"[yellow]suspect[/yellow]: imported from page text that reads as instructions to a model "
            f"({esc(reasons)}); see `debate kb audit`"
        )
    for line in target_links_text(links).splitlines():
        out.print(lit(line))


@hyp_app.command("remove")
def remove(hyp_id: Annotated[str, typer.Argument(help="Hypothesis id, h-xxxxxxxx.")]) -> None:
    """Remove a hypothesis with its runs."""
    n = hyps.remove(state.engine(), hyp_id)
    out.print(lit(f"removed {hyp_id}" + (f" and {n} runs" if n else "")))
