"""Ingest KB pages: read files, parse, and store every extracted part (the I/O edge of the KB).

A page is keyed by its slug. Re-ingesting unchanged bytes changes nothing (content hash); a
changed page has its rows replaced in one transaction and ``changed_at`` set, which rescoring
reads. Hypotheses listed in a page's Related Hypotheses section are imported with their listed
score as a prior (marked as imported, never as computed here). Chunks and imported hypotheses
holding instruction-like text are marked suspect (``debate.kb.screen``).

Pages are stored in batches: one insert per table per batch, handed to SQLite's
``executemany`` as plain tuples (Core ``insert()`` on other databases), several times faster
than ORM ``add_all`` or statements per page.
"""

from __future__ import annotations

import gc
import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy import JSON, Table, delete, select, update
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session

from debate.core.config import KbSettings
from debate.core.errors import NotFoundError, PageParseError, UserInputError
from debate.core.genes import gene_key, is_gene_symbol
from debate.core.models import HypothesisIn
from debate.kb.guard import check_file_name, check_page_size, check_page_text
from debate.kb.page import Chunk
from debate.kb.parse import ParsedPage, decode_page, parse_page
from debate.kb.screen import reason_text, screen_chunk
from debate.kb.terms import slug_term, text_genes
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


def page_paths(paths: Sequence[Path]) -> list[tuple[Path, str]]:
    """(path, name relative to the ingested root) of files named directly, and of pages
    (.txt/.md) found recursively in folders, sorted; nothing is read. A missing path, or a
    folder holding no pages, is a :class:`UserInputError`."""
    found: list[tuple[Path, str]] = []
    for root in paths:
        if root.is_dir():
            pages = [
                (p, p.relative_to(root).as_posix())
                for p in sorted(root.rglob("*"))
                if p.is_file() and p.suffix.lower() in PAGE_SUFFIXES
            ]
            if not pages:  # a mistyped folder would otherwise "ingest" nothing and succeed
                raise UserInputError("no pages (.txt or .md files) in this folder", where=str(root))
            found += pages
        elif root.is_file():
            found.append((root, root.name))
        else:
            raise UserInputError("no such file or folder", where=str(root))
    return found


def collect_files(paths: Sequence[Path], *, max_bytes: int | None = None) -> list[PageFile]:
    """The files of :func:`page_paths`, read. With ``max_bytes`` at most one byte more is read
    of each: enough to refuse an oversized page without holding all of it."""
    size = -1 if max_bytes is None else max_bytes + 1
    found: list[PageFile] = []
    for path, name in page_paths(paths):
        with path.open("rb") as fh:
            found.append(PageFile(path, name, fh.read(size)))
    return found


def read_page(f: PageFile, limits: KbSettings) -> tuple[str, ParsedPage]:
    """Check, decode and parse one page file; a :class:`PageParseError` names file and line."""
    check_file_name(f.source_name)
    check_page_size(f.data, f.source_name, limits)
    text = decode_page(f.data, source_name=f.source_name)
    check_page_text(text, f.source_name)
    page = parse_page(text, source_name=f.source_name, chunk_bytes=limits.max_chunk_bytes)
    listed_hypotheses(page, f.source_name)  # refused now, not half-way through storing
    return text, page


def parse_files(
    files: Sequence[PageFile],
    *,
    skip_bad: bool = False,
    errors: list[str] | None = None,
    limits: KbSettings | None = None,
) -> list[tuple[PageFile, str, ParsedPage]]:
    """Check, decode and parse every file before anything is written (all-or-nothing by default)."""
    limits = limits or KbSettings()
    parsed: list[tuple[PageFile, str, ParsedPage]] = []
    slugs: dict[str, str] = {}
    for f in files:
        try:
            text, page = read_page(f, limits)
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
    limits: KbSettings | None = None,
) -> IngestReport:
    """Ingest files and folders; raises on the first bad page unless ``skip_bad``.

    ``limits`` (default: the ``[kb]`` defaults) bound page size, line length and chunk size.
    """
    report = IngestReport()
    limits = limits or KbSettings()
    with _cyclic_gc_paused():
        files = collect_files(paths, max_bytes=limits.max_page_bytes)
        parsed = parse_files(files, skip_bad=skip_bad, errors=report.skipped, limits=limits)
        for start in range(0, len(parsed), batch_size):
            chunk = parsed[start : start + batch_size]
            with session_scope(engine, immediate=True) as s:
                store_pages(s, chunk, report)
            if progress:
                progress(len(chunk))
    return report


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Pause the cycle collector while a KB is parsed and stored.

    Every parsed page stays in memory until it is written (all-or-nothing), so each full
    collection walks millions of live objects, again and again as they accumulate: with 6,000
    pages that was 60 % of the parse time. Parsed pages hold no reference cycles, so reference
    counting frees them as usual.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def store_page(s: Session, f: PageFile, text: str, page: ParsedPage, report: IngestReport) -> None:
    """Insert or replace one page and its parts inside the caller's transaction."""
    store_pages(s, [(f, text, page)], report)


def store_pages(s: Session, items: Sequence[tuple[PageFile, str, ParsedPage]], report: IngestReport) -> None:
    """Insert or replace pages and their parts inside the caller's transaction.

    One statement per table for the whole batch: per-statement overhead, not SQLite, is what
    per-page inserts spend their time on.
    """
    conn = s.connection()
    pages = t.Page.__table__  # type: ignore[attr-defined]
    slugs = [page.slug for _, _, page in items]
    existing = {
        r.slug: (r.id, r.content_hash)
        for r in conn.execute(select(pages.c.slug, pages.c.id, pages.c.content_hash).where(pages.c.slug.in_(slugs)))
    }
    now = utcnow()
    added: list[tuple[dict, ParsedPage]] = []
    changed: list[tuple[int, dict, ParsedPage]] = []
    for f, text, page in items:
        values = _page_values(f, text, page, now)
        found = existing.get(page.slug)
        if found is not None and found[1] == values["content_hash"]:
            report.unchanged.append(page.slug)
        elif found is not None:
            changed.append((found[0], values, page))
            report.changed.append(page.slug)
        else:
            added.append((values, page))
            report.added.append(page.slug)
    if changed:
        changed_ids = [page_id for page_id, _, _ in changed]
        for table in _CHILD_TABLES:
            conn.execute(delete(table).where(table.page_id.in_(changed_ids)))  # type: ignore[attr-defined]
        for page_id, values, _ in changed:
            conn.execute(update(pages).where(pages.c.id == page_id).values(**values))
    added_ids: list[int] = []
    if added:
        insert = pages.insert().returning(pages.c.id, sort_by_parameter_order=True)
        added_ids = list(conn.execute(insert, [values for values, _ in added]).scalars())
    ids = {page.slug: page_id for page_id, _, page in changed}
    ids.update((page.slug, page_id) for page_id, (_, page) in zip(added_ids, added, strict=True))
    # Children in file order, as storing one page at a time would give.
    stored = [(ids[page.slug], page) for _, _, page in items if page.slug in ids]
    rows: dict[type, list[dict]] = {table: [] for table in _CHILD_TABLES}
    for page_id, page in stored:
        _part_rows(rows, page_id, page)
    for table, table_rows in rows.items():
        if table_rows:
            _bulk_insert(conn, table.__table__, table_rows)  # type: ignore[attr-defined]
    for _, page in stored:
        report.hypotheses_imported += import_listed_hypotheses(s, page)


def _bulk_insert(conn: Connection, table: Table, rows: list[dict]) -> None:
    """Insert many rows with one statement.

    On SQLite the rows go to the driver's ``executemany`` as plain tuples (JSON columns
    serialised as SQLAlchemy would): SQLAlchemy's per-row parameter processing costs as much as
    SQLite's own work here, triggers and FTS indexing included. Other databases take the Core
    ``insert()`` (still several times cheaper per row than the ORM).
    """
    columns = [c for c in table.columns if c.key in rows[0]]
    # Python-side column defaults are applied by Core only: let it insert when one is needed.
    needs_core = any(c.default is not None for c in table.columns if c.key not in rows[0])
    if conn.dialect.name != "sqlite" or needs_core:
        conn.execute(table.insert(), rows)
        return
    as_json = [isinstance(c.type, JSON) for c in columns]
    keys = [c.key for c in columns]
    names, marks = ", ".join(c.name for c in columns), ", ".join("?" * len(columns))
    conn.exec_driver_sql(
        f"INSERT INTO {table.name} ({names}) VALUES ({marks})",
        [tuple(json.dumps(r[k]) if j else r[k] for k, j in zip(keys, as_json, strict=True)) for r in rows],
    )


def _page_values(f: PageFile, text: str, page: ParsedPage, now: datetime) -> dict:
    span = page.related_span
    return dict(
        slug=page.slug,
        title=page.title,
        entity_type=page.entity_type,
        source_name=f.source_name,
        raw_text=text,
        content_hash=f.content_hash,
        metadata=dict(page.metadata),
        has_related_section=page.has_related_section,
        related_start=span[0] if span else None,
        related_end=span[1] if span else None,
        insert_at=page.insert_at,
        ingested_at=now,
        changed_at=now,
    )


def _part_rows(rows: dict[type, list[dict]], page_id: int, page: ParsedPage) -> None:
    rows[t.Section] += [
        dict(page_id=page_id, ordinal=i, heading=x.heading, heading_path=x.heading_path, line=x.line)
        for i, x in enumerate(page.sections)
    ]
    rows[t.Fact] += [
        dict(page_id=page_id, heading_path=x.heading_path, key=x.key, value=x.value, line=x.line) for x in page.facts
    ]
    rows[t.InfoboxRow] += [
        dict(page_id=page_id, table_name=x.table, column_name=x.column, label=x.label, value=x.value, line=x.line)
        for x in page.infobox
    ]
    rows[t.Link] += [
        dict(
            page_id=page_id,
            text=x.text,
            path=x.path,
            target_slug=x.slug,
            external=False,
            heading_path=x.heading_path,
            line=x.line,
        )
        for x in page.links
    ] + [
        dict(page_id=page_id, text=x.text, path=x.url, target_slug=None, external=True, heading_path=[], line=x.line)
        for x in page.external_links
    ]
    rows[t.Citation] += [dict(page_id=page_id, key=k) for k in page.citations]
    rows[t.Chunk] += [_chunk_row(page_id, page.slug, c) for c in page.chunks]
    rows[t.PageTerm] += [dict(page_id=page_id, **row) for row in page_terms(page)]
    rows[t.RelatedEntry] += [
        dict(
            page_id=page_id,
            ordinal=i,
            kind=r.kind,
            ref_id=r.id,
            path=r.path,
            title=r.title,
            score=r.score,
            target_label=r.target_label,
            genes=list(r.genes),
            in_progress=r.in_progress,
        )
        for i, r in enumerate(page.related)
    ]


def _chunk_row(page_id: int, slug: str, c: Chunk) -> dict:
    """A chunk's row, screened for instruction-like text over all a prompt quotes of it (the
    page's slug, the heading path, the text) and the markup its text left out."""
    reason = reason_text(screen_chunk(c.text, c.heading_path, slug=slug, hidden=c.hidden))
    return dict(
        page_id=page_id,
        ordinal=c.ordinal,
        heading_path=c.heading_path,
        text=c.text,
        line=c.line,
        suspect=reason is not None,
        suspect_reason=reason,
    )


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
    # One scan per source over the joined lines: a newline separates tokens like a line end,
    # and thousands of small scans per page cost more than the matching.
    for g in text_genes("\n".join(f"{fact.key} {fact.value}" for fact in page.facts)):
        add("gene", gene_key(g), g, "fact")
    for g in text_genes("\n".join(chunk.text for chunk in page.chunks)):
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


def listed_hypotheses(page: ParsedPage, source_name: str | None = None) -> list[HypothesisIn]:
    """The hypotheses the page's Related section lists; a line that does not make a valid
    hypothesis (a title over 300 characters, say) is a :class:`PageParseError` at its line."""
    out: list[HypothesisIn] = []
    for r in page.related:
        if r.kind != "hypothesis":
            continue
        try:
            hyp = HypothesisIn(
                id=r.id,
                title=r.title,
                targets=[g for g in r.genes if is_gene_symbol(g)],
                target_label=r.target_label,
                source=f"page:{page.slug}",
                prior_score=r.score,
                prior_source=page.slug if r.score is not None else None,
            )
        except ValidationError as e:
            err = e.errors()[0]
            field = ".".join(str(p) for p in err["loc"])
            msg = str(err["msg"]).removeprefix("Value error, ")
            where = f"{source_name or page.slug}:{r.line}"
            raise PageParseError(f"listed hypothesis {r.id}: {field}: {msg}", where=where) from None
        out.append(hyp)
    return out


def import_listed_hypotheses(s: Session, page: ParsedPage) -> int:
    """Create hypotheses named in the page's Related section, or refresh their imported prior."""
    from debate.kb.hypotheses import upsert_imported  # local: hypotheses imports kb modules too

    return sum(upsert_imported(s, hyp) for hyp in listed_hypotheses(page))


def remove_page(engine: Engine, slug: str) -> None:
    """Delete a page and every row extracted from it."""
    with session_scope(engine, immediate=True) as s:
        page_id = s.execute(select(t.Page.id).where(t.Page.slug == slug)).scalar_one_or_none()
        if page_id is None:
            raise NotFoundError(f"no KB page with slug {slug!r}")
        for table in _CHILD_TABLES:
            s.execute(delete(table).where(table.page_id == page_id))  # type: ignore[attr-defined]
        s.execute(delete(t.Page).where(t.Page.id == page_id))


__all__ = [
    "IngestReport",
    "PageFile",
    "collect_files",
    "ingest_paths",
    "listed_hypotheses",
    "page_paths",
    "read_page",
    "remove_page",
    "store_page",
    "store_pages",
]
