"""Export what wiki builds pull: pages with their Related Hypotheses regenerated, and scores.

Layout of the output folder::

    DIR/<source_name>        every KB page, as ingested except its Related Hypotheses section
    DIR/scores.json          exactly what ``debate scores --json`` prints
    DIR/related/<slug>.json  each page's list (:class:`debate.wiki.related.RelatedList`)

A page that has a Related Hypotheses section, or now has related hypotheses, gets the section
regenerated in place (a new section goes before its metadata block, else at the end); every
other byte is kept as ingested. A page with nothing related is written unchanged.

Writes are atomic (a temporary file in the same folder, then ``os.replace``) and skipped when
the bytes on disk are already the same, so a repeated export rewrites nothing. Every path is
resolved and must lie inside the output folder. A page stored before slugs were checked, whose
slug or file name could name a path elsewhere (``../../x``), is skipped with a warning.
``changed_since`` limits pages (and their ``related/*.json``) to those whose page changed, or
whose list may have moved because a debate of a hypothesis on it finished, was reviewed or was
queued since then; ``scores.json`` is always brought up to date.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from collections.abc import Set as AbstractSet
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from debate.core.errors import NotFoundError, UserInputError
from debate.core.text import describe_control_char, terminal_safe
from debate.kb.parse import ParsedPage
from debate.kb.rewrite import replace_related_section
from debate.kb.slugs import slug_problem
from debate.store import tables as t
from debate.store.db import session_scope
from debate.wiki.related import (
    MAX_INCOMING,
    Cited,
    PageContext,
    TermIndex,
    best_first,
    page_context,
    read_cited,
    related_for,
    related_json,
    term_index,
)
from debate.wiki.scores import (
    SCORE_METHODS,
    ScoreMethod,
    ScoreRow,
    changed_hypotheses,
    score_rows_queued,
    scores_json,
)

__all__ = ["BulkSource", "ExportReport", "export", "export_files", "page_with_section", "write_if_changed"]

_BATCH = 200


class ExportReport(BaseModel):
    """What an export did (``debate export --json``)."""

    out: str
    pages: int = Field(description="KB pages exported (after --changed-since).")
    pages_total: int = Field(description="KB pages stored.")
    written: int = Field(description="Files created or rewritten.")
    unchanged: int = Field(description="Files whose bytes were already up to date.")
    written_files: list[str] = Field(description="Paths written, relative to out.")
    skipped: list[str] = Field(default_factory=list, description="Pages not exported, each with why.")
    scores: dict[str, int] = Field(
        default_factory=dict,
        description="Rows of scores.json by the method of their shown score: model, offline, prior "
        "(rows showing nothing are not counted).",
    )
    seconds: float


def page_with_section(raw_text: str, page: t.Page, section: str, has_items: bool) -> str:
    """The page text to export: its Related Hypotheses section regenerated, or left as is (pure).

    The section is written when the page already had one or when it now lists anything.
    """
    if not (page.has_related_section or has_items):
        return raw_text
    span = (page.related_start, page.related_end) if page.related_start is not None else None
    # The stored offsets are what parsing this very text produced; only they are needed here.
    offsets = ParsedPage.model_construct(related_span=span, insert_at=page.insert_at)
    return replace_related_section(raw_text, offsets, section)


def inside(root: Path, rel: str) -> Path:
    """``root/rel`` resolved (symbolic links followed); UserInputError when it is not inside
    ``root``: whatever names ``rel``, nothing is written elsewhere."""
    base = root.resolve()
    path = base.joinpath(*PurePosixPath(rel).parts).resolve()
    if path == base or not path.is_relative_to(base):
        raise UserInputError(f"{terminal_safe(rel)!r} would be written outside the output folder", where=str(root))
    return path


def write_if_changed(root: Path, rel: str, data: bytes) -> bool:
    """Write ``root/rel`` atomically unless it already holds ``data``. True when written."""
    path = inside(root, rel)
    try:
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UserInputError("not a folder", where=str(out))
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserInputError(f"cannot create the folder: {e.strerror}", where=str(out)) from None


def _safe_rel(name: str) -> str:
    """A page's source name as a path inside the output folder (never outside it)."""
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if not parts or PurePosixPath(name).is_absolute() or any(p in ("..", "") for p in parts):
        raise UserInputError("page file name would leave the output folder", where=name)
    return "/".join(parts)


def _unsafe(page: t.Page) -> str | None:
    """Why a stored page cannot be exported (a slug or file name stored before they were
    checked that could name a path outside the output folder), or None."""
    where = f"page {terminal_safe(page.slug)[:80]!r} ({terminal_safe(page.source_name)[:120]})"
    problem = slug_problem(page.slug)
    if problem is not None:
        return f"{where}: {problem}"
    try:
        _safe_rel(page.source_name)
    except UserInputError:
        return f"{where}: its file name would leave the output folder"
    problem = describe_control_char(page.source_name)
    return f"{where}: its file name holds a {problem}" if problem is not None else None


class BulkSource:
    """Every row ranking reads, loaded once in a few bulk queries, for listing every page.

    The same data :class:`debate.wiki.related.DbSource` reads page by page, kept in memory (about a
    minute of indexed queries saved on 10,000 pages); results are identical.
    """

    def __init__(self, session: Session, index: TermIndex | None = None) -> None:
        P, T, L = t.Page, t.PageTerm, t.Link
        self.index = index if index is not None else term_index(session)
        self.pages = {slug: (pid, title) for pid, slug, title in session.execute(select(P.id, P.slug, P.title))}
        slug_of = {pid: slug for slug, (pid, _title) in self.pages.items()}
        self.terms: dict[int, list[tuple[str, str, str]]] = defaultdict(list)
        for pid, kind, key, term in session.execute(select(T.page_id, T.kind, T.key, T.term).order_by(T.id)):
            self.terms[pid].append((kind, key, term))
        self.mech_values: dict[int, list[str]] = defaultdict(list)
        F, Row = t.Fact, t.InfoboxRow
        for pid, value in session.execute(
            select(F.page_id, F.value).where(func.lower(F.key) == "mechanism").order_by(F.id)
        ):
            self.mech_values[pid].append(value)
        for pid, value in session.execute(
            select(Row.page_id, Row.value).where(Row.column_name == "Mechanism").order_by(Row.id)
        ):
            self.mech_values[pid].append(value)
        R = t.RelatedEntry
        self.entries: dict[int, list[tuple[str, str, str, str, bool]]] = defaultdict(list)
        for pid, *entry in session.execute(
            select(R.page_id, R.kind, R.ref_id, R.title, R.path, R.in_progress).order_by(R.page_id, R.ordinal)
        ):
            self.entries[pid].append(tuple(entry))  # type: ignore[arg-type]
        self.out_links: dict[int, set[int]] = defaultdict(set)
        self.in_links: dict[str, set[int]] = defaultdict(set)
        for pid, target in session.execute(select(L.page_id, L.target_slug).where(L.target_slug.is_not(None))):
            if target in self.pages and target != slug_of[pid]:
                self.out_links[pid].add(self.pages[target][0])
                self.in_links[target].add(pid)
        self.slug_of = slug_of
        # page slug -> hypothesis id -> how claims of its debates cited the page
        self.cited_by: dict[str, dict[str, Cited]] = defaultdict(dict)
        for hyp, slug, kind in read_cited(session.connection()):
            self.cited_by[slug][hyp] = kind
        rows, self.queued_at = score_rows_queued(session)
        self.score_rows = {r.id: r for r in rows}
        pending = {r.id for r in rows if r.status in ("queued", "running")}
        # Every score, best first, once: a set of candidates is ranked by sorting positions.
        self.order, self.waiting = best_first({r.id: (r.shown_score, r.id in pending) for r in rows})
        self.position = {h: i for i, (_score, h) in enumerate(self.order)}
        self.waiting_set = set(self.waiting)
        self._ranked: dict[frozenset[str], tuple[list[tuple[float, str]], list[str]]] = {}

    def page(self, slug: str) -> PageContext:
        if slug not in self.pages:
            raise NotFoundError(f"no KB page with slug {slug!r}")
        pid, title = self.pages[slug]
        slug_of = self.slug_of
        neighbours = {p: slug_of[p] for p in sorted(self.out_links.get(pid, ()), key=slug_of.__getitem__)}
        incoming = sorted(self.in_links.get(slug, ()), key=slug_of.__getitem__)[:MAX_INCOMING]
        neighbours.update((p, slug_of[p]) for p in incoming)
        return page_context(
            pid,
            slug,
            title,
            self.terms.get(pid, []),
            self.mech_values.get(pid, []),
            self.entries.get(pid, []),
            neighbours,
        )

    def cited(self, slugs: Sequence[str]) -> dict[str, dict[str, Cited]]:
        out: dict[str, dict[str, Cited]] = {}
        for slug in slugs:
            for hyp, kind in self.cited_by.get(slug, {}).items():
                out.setdefault(hyp, {})[slug] = kind
        return out

    def prefetch(self, ids: AbstractSet[str]) -> None:
        pass  # every score is loaded already

    def page_terms(self, page_ids: Sequence[int]) -> Iterable[tuple[int, str, str]]:
        for pid in page_ids:
            for kind, key, _term in self.terms.get(pid, ()):
                yield pid, kind, key

    def ranked(self, ids: AbstractSet[str], skip: AbstractSet[str]) -> tuple[list[tuple[float, str]], list[str]]:
        # Scores do not move during an export: the shared keyword sets are ranked once.
        hit = self._ranked.get(ids) if isinstance(ids, frozenset) else None
        if hit is None:
            pos, order = self.position, self.order
            scored = [order[i] for i in sorted(pos[h] for h in ids if h in pos)]
            if len(ids) < len(self.waiting):
                waiting = sorted(h for h in ids if h in self.waiting_set)
            else:
                waiting = [h for h in self.waiting if h in ids]
            hit = scored, waiting
            if isinstance(ids, frozenset):
                self._ranked[ids] = hit
        return hit

    def method(self, hyp_id: str) -> ScoreMethod | None:
        row = self.score_rows.get(hyp_id)
        return row.method if row is not None else None

    def rows(self, ids: Sequence[str]) -> tuple[list[ScoreRow], dict[str, datetime]]:
        wanted = sorted({h for h in ids if h in self.score_rows})
        return [self.score_rows[h] for h in wanted], {h: self.queued_at[h] for h in wanted if h in self.queued_at}


def export_files(
    session: Session,
    *,
    limit: int,
    changed_since: datetime | None = None,
    counts: dict[str, int] | None = None,
    skipped: list[str] | None = None,
    methods: Sequence[str] = SCORE_METHODS,
) -> Iterator[tuple[str, bytes]]:
    """Every (relative path, bytes) an export writes, page by page, then ``scores.json``.

    A page that cannot be exported safely is left out, and why is added to ``skipped``. Lists
    show only scores made by ``methods``; ``counts`` gets ``scores_<method>``: the rows of
    ``scores.json`` per method.
    """
    P = t.Page
    changed = changed_hypotheses(session, changed_since) if changed_since is not None else None
    src = BulkSource(session)
    ids = list(session.execute(select(P.id).order_by(P.slug)).scalars())
    if counts is not None:
        counts["pages_total"] = len(ids)
    for start in range(0, len(ids), _BATCH):
        pages = session.execute(select(P).where(P.id.in_(ids[start : start + _BATCH])).order_by(P.slug)).scalars()
        for page in pages:
            problem = _unsafe(page)
            if problem is not None:
                if skipped is not None:
                    skipped.append(problem)
                continue
            rl, considered = related_for(src, page.slug, limit=limit, methods=methods)
            if changed is not None:
                page_changed = t.as_utc(page.changed_at) >= changed_since  # type: ignore[operator]
                if not page_changed and not (considered & changed):
                    continue
            if counts is not None:
                counts["pages"] = counts.get("pages", 0) + 1
            text = page_with_section(page.raw_text, page, rl.markdown, bool(rl.items))
            yield _safe_rel(page.source_name), text.encode("utf-8")
            yield f"related/{page.slug}.json", related_json(rl).encode("utf-8")
    rows = sorted(src.score_rows.values(), key=lambda r: r.id)
    if counts is not None:
        for m in SCORE_METHODS:
            counts[f"scores_{m}"] = sum(1 for r in rows if r.method == m)
    yield "scores.json", scores_json(rows).encode("utf-8")


def export(
    engine: Engine,
    out: Path,
    *,
    limit: int,
    changed_since: datetime | None = None,
    progress: Callable[[str], None] | None = None,
    methods: Sequence[str] = SCORE_METHODS,
) -> ExportReport:
    """Export every page (or those changed since ``changed_since``) and the scores into ``out``;
    lists show only scores made by ``methods``."""
    _check_out(out)
    if changed_since is not None:
        # Stored times are UTC; a time without a zone is read as UTC too.
        changed_since = (changed_since if changed_since.tzinfo else changed_since.replace(tzinfo=UTC)).astimezone(UTC)
    started = time.perf_counter()
    counts: dict[str, int] = {}
    written: list[str] = []
    skipped: list[str] = []
    unchanged = 0
    with session_scope(engine) as s:
        files = export_files(
            s, limit=limit, changed_since=changed_since, counts=counts, skipped=skipped, methods=methods
        )
        for rel, data in files:
            try:
                changed = write_if_changed(out, rel, data)
            except OSError as e:
                raise UserInputError(f"cannot write {rel}: {e.strerror or e}", where=str(out)) from None
            if changed:
                written.append(rel)
            else:
                unchanged += 1
            if progress:
                progress(rel)
    return ExportReport(
        out=str(out),
        pages=counts.get("pages", 0),
        pages_total=counts.get("pages_total", 0),
        written=len(written),
        unchanged=unchanged,
        written_files=written,
        skipped=skipped,
        scores={m: counts.get(f"scores_{m}", 0) for m in SCORE_METHODS},
        seconds=round(time.perf_counter() - started, 3),
    )
