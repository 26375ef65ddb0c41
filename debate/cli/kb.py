"""`debate kb ...`: ingest, list, show, search, audit and remove KB pages."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from sqlalchemy import func, select

from debate.cli.app import announce_db, app, console, emit_json, out, state
from debate.cli.safe import esc, lit
from debate.cli.tables import print_table
from debate.core.errors import NotFoundError
from debate.kb import audit as kb_audit
from debate.kb import ingest as kb_ingest
from debate.kb.search import search as kb_search
from debate.store import tables as t
from debate.store.db import session_scope

kb_app = typer.Typer(
    help="The treatment knowledge base: ingest, list, show, search, audit, remove pages.", no_args_is_help=True
)
app.add_typer(kb_app, name="kb")


@kb_app.command("ingest")
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Page files or folders (searched recursively for .txt/.md).")],
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Ingest the good pages and list the bad ones.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Parse pages in the wiki export format and store them (unchanged pages are left alone)."""
    announce_db()
    engine = state.engine()
    files_total = len(kb_ingest.page_paths(paths))
    with Progress(
        TextColumn("ingest"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=files_total < 50,
    ) as bar:
        task = bar.add_task("pages", total=files_total)
        report = kb_ingest.ingest_paths(
            engine, paths, skip_bad=skip_bad, progress=lambda n: bar.advance(task, n), limits=state.settings.kb
        )
    summary = {
        "added": report.added,
        "changed": report.changed,
        "unchanged": report.unchanged,
        "skipped": report.skipped,
        "hypotheses_imported": report.hypotheses_imported,
    }
    if as_json:
        emit_json(summary)
    else:
        out.print(
            f"pages: {len(report.added)} added, {len(report.changed)} changed, "
            f"{len(report.unchanged)} unchanged; hypotheses imported: {report.hypotheses_imported}"
        )
        for line in report.skipped:
            console.print(f"[yellow]skipped[/yellow] {esc(line)}", soft_wrap=True)
    if report.skipped:
        raise typer.Exit(1)


@kb_app.command("list")
def list_pages(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List ingested pages."""
    with session_scope(state.engine()) as s:
        rows = s.execute(
            select(
                t.Page.slug,
                t.Page.title,
                t.Page.entity_type,
                t.Page.source_name,
                t.Page.changed_at,
                select(func.count()).where(t.Chunk.page_id == t.Page.id).scalar_subquery().label("chunks"),
            ).order_by(t.Page.slug)
        ).all()
    items = [
        {
            "slug": r.slug,
            "title": r.title,
            "entity_type": r.entity_type,
            "source_name": r.source_name,
            "chunks": r.chunks,
            "changed_at": t.as_utc(r.changed_at).isoformat(),
        }  # type: ignore[union-attr]
        for r in rows
    ]
    if as_json:
        emit_json(items)
        return
    table = Table("slug", "title", "type", "chunks")
    for i in items:
        table.add_row(lit(i["slug"]), lit(i["title"]), lit(i["entity_type"]), str(i["chunks"]))
    print_table(out, table, flex=("slug", "title"))


def page_detail(slug: str) -> dict:
    """Every part extracted from a page, as `kb show --json` prints it."""
    with session_scope(state.engine()) as s:
        page = s.execute(select(t.Page).where(t.Page.slug == slug)).scalar_one_or_none()
        if page is None:
            raise NotFoundError(f"no KB page with slug {slug!r}")

        def rows(table, *order):  # type: ignore[no-untyped-def]
            return s.execute(select(table).where(table.page_id == page.id).order_by(*order)).scalars().all()

        return {
            "slug": page.slug,
            "title": page.title,
            "entity_type": page.entity_type,
            "source_name": page.source_name,
            "content_hash": page.content_hash,
            "metadata": page.metadata_,
            "changed_at": t.as_utc(page.changed_at).isoformat(),  # type: ignore[union-attr]
            "has_related_section": page.has_related_section,
            "sections": [
                {"heading": x.heading, "heading_path": x.heading_path, "line": x.line}
                for x in rows(t.Section, t.Section.ordinal)
            ],
            "facts": [
                {"heading_path": x.heading_path, "key": x.key, "value": x.value, "line": x.line}
                for x in rows(t.Fact, t.Fact.id)
            ],
            "infobox": [
                {"table": x.table_name, "column": x.column_name, "label": x.label, "value": x.value}
                for x in rows(t.InfoboxRow, t.InfoboxRow.id)
            ],
            "links": [
                {
                    "text": x.text,
                    "path": x.path,
                    "slug": x.target_slug,
                    "external": x.external,
                    "heading_path": x.heading_path,
                }
                for x in rows(t.Link, t.Link.id)
            ],
            "citations": [x.key for x in rows(t.Citation, t.Citation.id)],
            "terms": [{"kind": x.kind, "term": x.term, "source": x.source} for x in rows(t.PageTerm, t.PageTerm.id)],
            "chunks": [
                {
                    "ordinal": x.ordinal,
                    "heading_path": x.heading_path,
                    "text": x.text,
                    "suspect": x.suspect,
                    "suspect_reason": x.suspect_reason,
                }
                for x in rows(t.Chunk, t.Chunk.ordinal)
            ],
            "related": [
                {
                    "kind": x.kind,
                    "id": x.ref_id,
                    "path": x.path,
                    "title": x.title,
                    "score": x.score,
                    "target_label": x.target_label,
                    "genes": x.genes,
                    "in_progress": x.in_progress,
                }
                for x in rows(t.RelatedEntry, t.RelatedEntry.ordinal)
            ],
        }


@kb_app.command("show")
def show(
    slug: Annotated[str, typer.Argument(help="Page slug, e.g. therapeutics-als-treatment-strategies.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print every extracted part as JSON.")] = False,
) -> None:
    """Show one page and what was extracted from it."""
    d = page_detail(slug)
    if as_json:
        emit_json(d)
        return
    out.print(f"[bold]{esc(d['title'])}[/bold]  ({esc(d['slug'])}, {esc(d['entity_type'] or 'no type')})")
    suspect = [c for c in d["chunks"] if c["suspect"]]
    out.print(
        f"sections {len(d['sections'])} · facts {len(d['facts'])} · infobox rows {len(d['infobox'])} · "
        f"links {len(d['links'])} · citations {len(d['citations'])} · chunks {len(d['chunks'])} · "
        f"suspect chunks {len(suspect)} · related {len(d['related'])}"
    )
    for c in suspect:
        where = " › ".join(c["heading_path"]) or "(top)"
        out.print(
            f"  [yellow]suspect[/yellow] chunk {c['ordinal']} [dim]{esc(where)}[/dim]  {esc(c['suspect_reason'])}"
            "  (debate kb audit)"
        )
    genes = [x["term"] for x in d["terms"] if x["kind"] == "gene"]
    if genes:
        out.print(lit("genes: " + ", ".join(genes)))
    for f in d["facts"]:
        out.print(f"  [dim]{esc(' › '.join(f['heading_path']))}[/dim]  {esc(f['key'])}: {esc(f['value'])}")


@kb_app.command("search")
def search(
    query: Annotated[str, typer.Argument(help="Words to search for.")],
    limit: Annotated[int | None, typer.Option("--limit", "-n", min=1, max=200, help="Results at most.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Rank KB chunks by BM25: all terms first, any term when too few match."""
    cfg = state.settings.search
    hits = kb_search(state.engine(), query, limit=limit or cfg.default_limit, min_hits=cfg.min_hits)
    if as_json:
        emit_json(
            [
                {
                    "slug": h.slug,
                    "heading_path": h.heading_path,
                    "snippet": h.snippet,
                    "score": round(h.score, 4),
                    "mode": h.mode,
                }
                for h in hits
            ]
        )
        return
    if not hits:
        out.print("no matches")
    for h in hits:
        flag = "  [yellow]suspect[/yellow]" if h.suspect else ""
        out.print(
            f"[bold]{esc(h.slug)}[/bold] [dim]{esc(' › '.join(h.heading_path))}  ({h.score:.2f}, {h.mode})[/dim]{flag}"
        )
        out.print(lit(f"  {h.snippet}"))


@kb_app.command("audit")
def audit(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List the text screened as instructions to a model: suspect chunks and imported hypotheses.

    Ingest marks a chunk suspect when its text (or heading, or page slug) asks a model, judge or
    reviewer to ignore its instructions, take a role, give a score or cite something; `[kb]
    suspect` says whether debates leave such chunks out ("exclude") or quote them marked
    ("label"). Excerpts are one line with control characters removed.
    """
    with session_scope(state.engine()) as s:
        chunks = kb_audit.suspect_chunks(s)
        hyps = kb_audit.suspect_hypotheses(s)
    if as_json:
        emit_json({"chunks": [c.as_dict() for c in chunks], "hypotheses": [h.as_dict() for h in hyps]})
        return
    if chunks:
        table = Table("page", "chunk", "line", "section", "rules", "excerpt")
        for c in chunks:
            table.add_row(
                lit(c.slug),
                str(c.ordinal),
                str(c.line),
                lit(" › ".join(c.heading_path)),
                lit(", ".join(c.reasons)),
                lit(c.excerpt),
            )
        print_table(out, table, flex=("page", "section", "rules", "excerpt"))
    else:
        out.print("no suspect chunks")
    if hyps:
        table = Table("hypothesis", "title", "source", "rules")
        for h in hyps:
            table.add_row(lit(h.id), lit(h.title), lit(h.source), lit(", ".join(h.reasons)))
        print_table(out, table, flex=("title", "source", "rules"))
    else:
        out.print("no suspect hypotheses")


@kb_app.command("remove")
def remove(slug: Annotated[str, typer.Argument(help="Slug of the page to remove.")]) -> None:
    """Remove a page and everything extracted from it."""
    kb_ingest.remove_page(state.engine(), slug)
    out.print(lit(f"removed {slug}"))
