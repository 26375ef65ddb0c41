"""Ingest KB pages: read files, parse, and store every extracted part (the I/O edge of the KB).

A page is keyed by its slug. Re-ingesting unchanged bytes changes nothing (content hash); a
changed page has its rows replaced in one transaction and ``changed_at`` set, which rescoring
reads. Hypotheses listed in a page's Related Hypotheses section are imported with their listed
score as a prior (marked as imported, never as computed here).

Bulk rows go through SQLAlchemy Core ``insert()`` (several times faster than ORM ``add_all``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from debate.errors import NotFoundError, PageParseError, UserInputError
from debate.genes import gene_key, is_gene_symbol
from debate.kb.parse import ParsedPage, decode_page, parse_page
from debate.kb.terms import slug_term, text_genes
from debate.models import HypothesisIn
from debate.store import tables as t
from debate.store.db import session_scope
from debate.store.tables import utcnow

PAGE_SUFFIXES = (".txt", ".md")
_CHILD_TABLES = (
    t.Section,
    t.Fact,
    t.InfoboxRow,
    t.Link,
    t.Citation,
    t.Chunk,
    t.PageTerm,
    t.RelatedEntry,
)


@dataclass
class PageFile:
    """A page read from disk: its name relative to the ingested root, bytes and hash."""

    path: Path
    source_name: str
    data: bytes

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list, metadata={"doc": "bad pages, with --skip-bad"})
    hypotheses_imported: int = 0

    @property
    def pages_seen(self) -> int:
        return len(self.added) + len(self.changed) + len(self.unchanged)


def collect_files(paths: Sequence[Path]) -> list[PageFile]:
    """Files named directly, and pages (.txt/.md) found recursively in folders, sorted."""
    found: list[PageFile] = []
    for root in paths:
        if root.is_dir():
            for p in sorted(root.rglob("*")):
                if p.is_file() and p.suffix.lower() in PAGE_SUFFIXES:
                    found.append(PageFile(p, p.relative_to(root).as_posix(), p.read_bytes()))
        elif root.is_file():
            found.append(PageFile(root, root.name, root.read_bytes()))
        else:
            raise UserInputError("no such file or folder", where=str(root))
    return found


def parse_files(
    files: Sequence[PageFile], *, skip_bad: bool = False, errors: list[str] | None = None
) -> list[tuple[PageFile, str, ParsedPage]]:
    """Decode and parse every file before anything is written (all-or-nothing by default)."""
    parsed: list[tuple[PageFile, str, ParsedPage]] = []
    slugs: dict[str, str] = {}
    for f in files:
        try:
            text = decode_page(f.data, source_name=f.source_name)
            page = parse_page(text, source_name=f.source_name)
            if page.slug in slugs:
                raise PageParseError(f"slug {page.slug!r} also used by {slugs[page.slug]}", where=f.source_name)
        except PageParseError as e:
            if not skip_bad:
                raise
            if errors is not None:
                errors.append(str(e))
            continue
        slugs[page.slug] = f.source_name
        parsed.append((f, text, page))
    return parsed


def ingest_paths(
    engine: Engine,
    paths: Sequence[Path],
    *,
    skip_bad: bool = False,
    progress: Callable[[int], None] | None = None,
    batch_size: int = 200,
) -> IngestReport:
    """Ingest files and folders; raises on the first bad page unless ``skip_bad``."""
    report = IngestReport()
    files = collect_files(paths)
    parsed = parse_files(files, skip_bad=skip_bad, errors=report.skipped)
    for start in range(0, len(parsed), batch_size):
        chunk = parsed[start : start + batch_size]
        with session_scope(engine, immediate=True) as s:
            for f, text, page in chunk:
                store_page(s, f, text, page, report)
        if progress:
            progress(len(chunk))
    return report


def store_page(s: Session, f: PageFile, text: str, page: ParsedPage, report: IngestReport) -> None:
    """Insert or replace one page and its parts inside the caller's transaction."""
    digest = f.content_hash
    existing = s.execute(
        select(t.Page.id, t.Page.content_hash).where(t.Page.slug == page.slug)
    ).first()
    now = utcnow()
    span = page.related_span
    values = dict(
        slug=page.slug,
        title=page.title,
        entity_type=page.entity_type,
        source_name=f.source_name,
        raw_text=text,
        content_hash=digest,
        metadata_=dict(page.metadata),
        has_related_section=page.has_related_section,
        related_start=span[0] if span else None,
        related_end=span[1] if span else None,
        insert_at=page.insert_at,
        ingested_at=now,
    )
    if existing is not None and existing.content_hash == digest:
        report.unchanged.append(page.slug)
        return
    if existing is not None:
        page_id = existing.id
        for table in _CHILD_TABLES:
            s.execute(delete(table).where(table.page_id == page_id))  # type: ignore[attr-defined]
        s.execute(update(t.Page).where(t.Page.id == page_id).values(**values, changed_at=now))
        report.changed.append(page.slug)
    else:
        page_id = s.execute(insert(t.Page).values(**values, changed_at=now).returning(t.Page.id)).scalar_one()
        report.added.append(page.slug)
    _insert_parts(s, page_id, page)
    report.hypotheses_imported += import_listed_hypotheses(s, page)


def _rows(table: type, rows: list[dict]) -> Iterable[tuple[type, list[dict]]]:
    return [(table, rows)] if rows else []


def _insert_parts(s: Session, page_id: int, page: ParsedPage) -> None:
    batches = [
        *_rows(t.Section, [
            dict(page_id=page_id, ordinal=i, heading=x.heading, heading_path=x.heading_path, line=x.line)
            for i, x in enumerate(page.sections)
        ]),
        *_rows(t.Fact, [
            dict(page_id=page_id, heading_path=x.heading_path, key=x.key, value=x.value, line=x.line)
            for x in page.facts
        ]),
        *_rows(t.InfoboxRow, [
            dict(page_id=page_id, table_name=x.table, column_name=x.column, label=x.label, value=x.value, line=x.line)
            for x in page.infobox
        ]),
        *_rows(t.Link, [
            dict(page_id=page_id, text=x.text, path=x.path, target_slug=x.slug, external=False,
                 heading_path=x.heading_path, line=x.line)
            for x in page.links
        ] + [
            dict(page_id=page_id, text=x.text, path=x.url, target_slug=None, external=True,
                 heading_path=[], line=x.line)
            for x in page.external_links
        ]),
        *_rows(t.Citation, [dict(page_id=page_id, key=k) for k in page.citations]),
        *_rows(t.Chunk, [
            dict(page_id=page_id, ordinal=c.ordinal, heading_path=c.heading_path, text=c.text, line=c.line)
            for c in page.chunks
        ]),
        *_rows(t.PageTerm, [dict(page_id=page_id, **row) for row in page_terms(page)]),
        *_rows(t.RelatedEntry, [
            dict(page_id=page_id, ordinal=i, kind=r.kind, ref_id=r.id, path=r.path, title=r.title,
                 score=r.score, target_label=r.target_label, genes=list(r.genes), in_progress=r.in_progress)
            for i, r in enumerate(page.related)
        ]),
    ]
    conn = s.connection()
    for table, rows in batches:
        # Core insert on the Table: the ORM bulk path costs several times more per row.
        conn.execute(table.__table__.insert(), rows)  # type: ignore[attr-defined]


def page_terms(page: ParsedPage) -> list[dict[str, str]]:
    """Genes, mechanisms and diseases the page is about, one row per (kind, key), first source wins."""
    out: list[dict[str, str]] = []
    seen: set[tuple[str, str]] = set()

    def add(kind: str, key: str, term: str, source: str) -> None:
        if key and (kind, key) not in seen:
            seen.add((kind, key))
            out.append(dict(kind=kind, key=key, term=term, source=source))

    for row in page.infobox:
        if row.table.casefold() == "target" and is_gene_symbol(row.label):
            add("gene", gene_key(row.label), row.label, "infobox")
    for fact in page.facts:
        for g in text_genes(f"{fact.key} {fact.value}"):
            add("gene", gene_key(g), g, "fact")
    for chunk in page.chunks:
        for g in text_genes(chunk.text):
            add("gene", gene_key(g), g, "text")
    for link in page.links:
        if link.slug and link.slug.startswith("mechanisms-"):
            add("mechanism", slug_term(link.slug), link.text, "link")
        elif link.slug and link.slug.startswith("diseases-"):
            add("disease", slug_term(link.slug), link.text, "link")
    if page.slug.startswith("mechanisms-"):
        add("mechanism", slug_term(page.slug), page.title, "page")
    if page.slug.startswith("diseases-"):
        add("disease", slug_term(page.slug), page.title, "page")
    return out


def import_listed_hypotheses(s: Session, page: ParsedPage) -> int:
    """Create hypotheses named in the page's Related section, or refresh their imported prior."""
    from debate.hypotheses import upsert_imported  # local: hypotheses imports kb modules too

    n = 0
    for r in page.related:
        if r.kind != "hypothesis":
            continue
        hyp = HypothesisIn(
            id=r.id,
            title=r.title,
            targets=[g for g in r.genes if is_gene_symbol(g)],
            target_label=r.target_label,
            source=f"page:{page.slug}",
            prior_score=r.score,
            prior_source=page.slug if r.score is not None else None,
        )
        n += upsert_imported(s, hyp)
    return n


def remove_page(engine: Engine, slug: str) -> None:
    """Delete a page and every row extracted from it."""
    with session_scope(engine, immediate=True) as s:
        page_id = s.execute(select(t.Page.id).where(t.Page.slug == slug)).scalar_one_or_none()
        if page_id is None:
            raise NotFoundError(f"no KB page with slug {slug!r}")
        for table in _CHILD_TABLES:
            s.execute(delete(table).where(table.page_id == page_id))  # type: ignore[attr-defined]
        s.execute(delete(t.Page).where(t.Page.id == page_id))


__all__ = ["IngestReport", "PageFile", "collect_files", "ingest_paths", "remove_page", "store_page"]
