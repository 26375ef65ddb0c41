"""`debate scores`, `debate related`, `debate export`, `debate targets`: what wiki builds pull."""

from __future__ import annotations

import sys
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from debate.cli.app import announce_db, app, console, emit_json, out, state
from debate.cli.safe import esc, lit
from debate.cli.tables import print_table
from debate.core.errors import UserInputError
from debate.store.db import session_scope
from debate.wiki.export import export as run_export
from debate.wiki.related import load_related, related_json, render_html
from debate.wiki.scores import SCORE_METHODS, ScoreRow, score_history, score_rows, scores_json
from debate.wiki.targets import gene_links


def _fmt(x: float | None) -> str:
    return "" if x is None else f"{x:.2f}"


def _verified(r: ScoreRow) -> str:
    """The shown run's share of verified claims, "78%"; "–" for a run whose claims were not
    counted (finished before quotes were checked), "" when no run's score is shown."""
    from debate.engine.transcript.formatting import percent  # the transcript's wording; loaded on use

    if r.verified_rate is not None:
        return percent(r.verified_rate)
    return "–" if r.last_run is not None else ""


@app.command()
def scores(
    as_json: Annotated[bool, typer.Option("--json", help="Print every score row as JSON.")] = False,
    history: Annotated[
        str | None, typer.Option("--history", metavar="ID", help="List every finished run of one hypothesis.")
    ] = None,
) -> None:
    """The score each hypothesis shows: latest unflagged debate here, else its imported prior."""
    with session_scope(state.engine()) as s:
        if history is not None:
            runs = score_history(s, history)
        else:
            rows = score_rows(s)
    if history is not None:
        if as_json:
            emit_json([r.model_dump(mode="json") for r in runs])
            return
        table = Table("run", "finished", "status", "score", "agreement", "flagged", "trigger", "batch")
        for r in runs:
            table.add_row(
                lit(r.run_id),
                lit(r.finished_at),
                lit(r.status),
                _fmt(r.score),
                _fmt(r.agreement),
                "yes" if r.flagged else "",
                lit(r.trigger),
                lit(r.batch),
            )
        if runs:
            print_table(out, table, flex=("trigger", "batch"))
        else:
            out.print(lit(f"no finished runs for {history}"))
        return
    if as_json:
        sys.stdout.write(scores_json(rows))
        return
    table = Table(
        "id", "title", "shown", "method", "status", "score", "prior", "agreement", "interval", "verified", "targets"
    )
    for r in rows:
        interval = f"{r.interval[0]:.2f}–{r.interval[1]:.2f}" if r.interval else ""
        status = r.status + (" (flagged run)" if r.flagged else "")
        table.add_row(
            lit(r.id),
            lit(r.title),
            _fmt(r.shown_score),
            lit(r.method or ""),
            lit(status),
            _fmt(r.score),
            _fmt(r.prior),
            _fmt(r.agreement) or ("n/a" if r.score is not None else ""),
            interval,
            _verified(r),
            lit(r.target_label or ", ".join(r.targets)),
        )
    print_table(out, table, flex=("title", "targets"))


class RelatedFormat(StrEnum):
    md = "md"
    json = "json"
    html = "html"


@app.command()
def related(
    slug: Annotated[str, typer.Argument(help="Page slug, e.g. therapeutics-als-treatment-strategies.")],
    limit: Annotated[
        int | None, typer.Option("--limit", "-n", min=1, max=200, help="Scored lines at most (default: config).")
    ] = None,
    fmt: Annotated[RelatedFormat, typer.Option("--format", "-f", help="md (as in the page), json or html.")] = (
        RelatedFormat.md
    ),
) -> None:
    """A page's Related Hypotheses list, ranked from stored data."""
    with session_scope(state.engine()) as s:
        rl = load_related(s, slug, limit=limit or state.settings.related.limit, methods=state.settings.related.methods)
    if fmt is RelatedFormat.json:
        sys.stdout.write(related_json(rl))
    elif fmt is RelatedFormat.html:
        sys.stdout.write(render_html(rl))
    else:
        sys.stdout.write(rl.markdown)


def _parse_since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        raise UserInputError(f"not an ISO 8601 time: {value!r}", where="--changed-since") from None


@app.command()
def export(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write pages, scores.json and related/ into.")],
    changed_since: Annotated[
        str | None,
        typer.Option(
            "--changed-since",
            metavar="ISO8601",
            help="Only pages changed, or whose hypotheses' debates finished, since then.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Write every page with its Related Hypotheses regenerated, plus scores.json and related/*.json."""
    since = _parse_since(changed_since)
    if not as_json:
        announce_db()
    settings = state.settings.related
    report = run_export(state.engine(), out_dir, limit=settings.limit, changed_since=since, methods=settings.methods)
    for why in report.skipped:  # on stderr, so --json stays clean
        console.print(f"[yellow]warning:[/yellow] skipped {esc(why)}", soft_wrap=True)
    if as_json:
        emit_json(report.model_dump(mode="json"))
        return
    skipped = f", {len(report.skipped)} pages skipped" if report.skipped else ""
    by_method = ", ".join(f"{report.scores.get(m, 0)} {m}" for m in SCORE_METHODS)
    out.print(
        lit(
            f"exported {report.pages} of {report.pages_total} pages to {report.out}: "
            f"{report.written} files written, {report.unchanged} unchanged{skipped} ({report.seconds:.1f} s); "
            f"scores: {by_method}"
        )
    )


@app.command()
def targets(
    gene: Annotated[str, typer.Argument(help="Gene symbol, e.g. SOD1 (any casing).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Hypotheses targeting a gene, and the KB pages that mention it."""
    with session_scope(state.engine()) as s:
        links = gene_links(s, gene)
    if as_json:
        emit_json(links.model_dump(mode="json"))
        return
    out.print(f"[bold]{esc(links.gene)}[/bold]: {len(links.hypotheses)} hypotheses, {len(links.pages)} pages")
    for h in links.hypotheses:
        out.print(lit(f"  {h.id}  {_fmt(h.shown_score) or '—':>4}  {h.title}"))
    for p in links.pages:
        runs = f"  runs: {', '.join(p.runs)}" if p.runs else ""
        out.print(lit(f"  {p.slug} — {p.title} [{', '.join(p.sources)}]{runs}"))
