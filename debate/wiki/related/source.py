"""Where ranking reads stored data: the protocol, and one page at a time from the database."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Sequence
from collections.abc import Set as AbstractSet
from datetime import datetime
from typing import Protocol

from sqlalchemy import bindparam, func, select, union_all
from sqlalchemy.engine import Connection
from sqlmodel import Session

from debate.core.errors import NotFoundError
from debate.store import tables as t
from debate.wiki.related.index import TermIndex, term_index
from debate.wiki.related.models import MAX_INCOMING, Cited, best_first, best_first_key, cited_kind
from debate.wiki.related.page import PageContext, page_context
from debate.wiki.scores import ScoreMethod, ScoreRow, run_scores_labelled, score_rows_queued

# Built once with bound parameters: a list is read in a dozen small statements, and building
# and compiling them anew each time would cost more than running them.
_P, _T, _L, _R = t.Page, t.PageTerm, t.Link, t.Run
_ids = bindparam("ids", expanding=True)
_Q_PAGE = select(_P.id, _P.slug, _P.title).where(_P.slug == bindparam("slug"))
_Q_TERMS = select(_T.kind, _T.key, _T.term).where(_T.page_id == bindparam("pid")).order_by(_T.id)
_Q_MECH_VALUES = union_all(
    select(t.Fact.value).where(t.Fact.page_id == bindparam("pid"), func.lower(t.Fact.key) == "mechanism"),
    select(t.InfoboxRow.value).where(t.InfoboxRow.page_id == bindparam("pid"), t.InfoboxRow.column_name == "Mechanism"),
)
_Q_LISTED = (
    select(
        t.RelatedEntry.kind,
        t.RelatedEntry.ref_id,
        t.RelatedEntry.title,
        t.RelatedEntry.path,
        t.RelatedEntry.in_progress,
    )
    .where(t.RelatedEntry.page_id == bindparam("pid"))
    .order_by(t.RelatedEntry.ordinal)
)
_Q_OUT = (
    select(_P.id, _P.slug)
    .join(_L, _L.target_slug == _P.slug)
    .where(_L.page_id == bindparam("pid"), _P.id != bindparam("pid"))
    .distinct()
    .order_by(_P.slug)
)
_Q_IN = (
    select(_P.id, _P.slug)
    .join(_L, _L.page_id == _P.id)
    .where(_L.target_slug == bindparam("slug"), _P.id != bindparam("pid"))
    .distinct()
    .order_by(_P.slug)
    .limit(MAX_INCOMING)
)
# Filtered by page only: with a kind filter too, SQLite would walk the (kind, key) index instead.
_Q_NEIGHBOUR_TERMS = select(_T.page_id, _T.kind, _T.key).where(_T.page_id.in_(bindparam("pids", expanding=True)))
# Pages claims cited (``cited_pages``, written when a run finishes), per hypothesis over all its
# runs: evidence a run only retrieved relates nothing.
_C = t.CitedPage
_Q_CITED_ALL = (
    select(_R.hypothesis_id, _C.page_slug, func.sum(_C.verified), func.sum(_C.unverified))
    .join(_R, _R.id == _C.run_id)
    .group_by(_R.hypothesis_id, _C.page_slug)
)
_Q_CITED = _Q_CITED_ALL.where(_C.page_slug.in_(bindparam("slugs", expanding=True)))


def read_cited(conn: Connection, slugs: Sequence[str] | None = None) -> Iterator[tuple[str, str, Cited]]:
    """(hypothesis id, page slug, how claims cited it) for the pages ``slugs`` (None: every page)
    that a claim in any run of the hypothesis cited."""
    rows = conn.execute(_Q_CITED_ALL) if slugs is None else conn.execute(_Q_CITED, {"slugs": list(slugs)})
    for hyp, slug, verified, unverified in rows:
        kind = cited_kind(verified or 0, unverified or 0)
        if kind is not None:
            yield hyp, slug, kind


class RelatedSource(Protocol):
    """Where ranking reads stored data: per page from the database, or preloaded for an export."""

    index: TermIndex

    def page(self, slug: str) -> PageContext:
        """The page's context with its neighbours (NotFoundError for an unknown slug)."""

    def cited(self, slugs: Sequence[str]) -> dict[str, dict[str, Cited]]:
        """Hypothesis id -> those of ``slugs`` a claim in its debates cited, each with how: by a
        verified claim, or by unverified claims only. Evidence only retrieved does not count."""

    def page_terms(self, page_ids: Sequence[int]) -> Iterable[tuple[int, str, str]]:
        """(page id, kind, key) of the terms of these pages."""

    def prefetch(self, ids: AbstractSet[str]) -> None:
        """Read ahead what :meth:`ranked` will need for these ids (one query instead of several)."""

    def ranked(self, ids: AbstractSet[str], skip: AbstractSet[str]) -> tuple[Iterable[tuple[float, str]], list[str]]:
        """Of ``ids`` (those in ``skip`` may be left out): (shown score, id) best first (ties by
        id), and the ids with no score to show but a pending debate, sorted. Shown scores follow
        :func:`debate.wiki.scores.shown_scores`."""

    def rows(self, ids: Sequence[str]) -> tuple[list[ScoreRow], dict[str, datetime]]:
        """Full score rows and queue times, as :func:`debate.wiki.scores.score_rows_queued`."""

    def method(self, hyp_id: str) -> ScoreMethod | None:
        """How the score :meth:`ranked` gave for ``hyp_id`` was made (model, offline, prior)."""


class DbSource:
    """Reads one page's data with indexed set queries (``related`` command and API)."""

    def __init__(self, session: Session, index: TermIndex | None = None) -> None:
        self.session = session
        self.conn = session.connection()
        self.index = index if index is not None else term_index(session)
        # id -> (score, pending, method): see debate.wiki.scores.run_scores_labelled
        self._runs: dict[str, tuple[float | None, bool, ScoreMethod | None]] = {}
        self._asked: set[str] = set()

    def page(self, slug: str) -> PageContext:
        conn = self.conn
        page = conn.execute(_Q_PAGE, {"slug": slug}).first()
        if page is None:
            raise NotFoundError(f"no KB page with slug {slug!r}")
        pid = {"pid": page.id}
        neighbours = dict(conn.execute(_Q_OUT, pid).all())
        neighbours.update(conn.execute(_Q_IN, {"pid": page.id, "slug": page.slug}).all())
        return page_context(
            page.id,
            page.slug,
            page.title,
            conn.execute(_Q_TERMS, pid).all(),
            conn.execute(_Q_MECH_VALUES, pid).scalars(),
            conn.execute(_Q_LISTED, pid).all(),
            neighbours,
        )

    def cited(self, slugs: Sequence[str]) -> dict[str, dict[str, Cited]]:
        out: dict[str, dict[str, Cited]] = {}
        for hyp, slug, kind in read_cited(self.conn, slugs):
            out.setdefault(hyp, {})[slug] = kind
        return out

    def page_terms(self, page_ids: Sequence[int]) -> Iterable[tuple[int, str, str]]:
        return self.conn.execute(_Q_NEIGHBOUR_TERMS, {"pids": list(page_ids)}).all() if page_ids else []

    def prefetch(self, ids: AbstractSet[str]) -> None:
        new = ids - self._asked
        if new:
            self._runs.update(run_scores_labelled(self.session, new))
            self._asked |= new

    def ranked(self, ids: AbstractSet[str], skip: AbstractSet[str]) -> tuple[Iterable[tuple[float, str]], list[str]]:
        # Only the runs are read: most candidates have none and show their cached prior, whose
        # order is memoized per keyword set; merging lazily lets the caller stop early.
        want = ids - skip
        self.prefetch(want)
        runs = {h: self._runs[h] for h in want if h in self._runs}
        priors = self.index.priors
        shown: dict[str, tuple[float | None, bool]] = {}
        for h, (score, pending, _method) in runs.items():
            if h in priors:
                shown[h] = (score if score is not None else priors[h], pending)
        with_runs, pending = best_first(shown)
        prior_only = (x for x in self.index.prior_order(ids) if x[1] not in runs)
        return heapq.merge(with_runs, prior_only, key=best_first_key), pending

    def rows(self, ids: Sequence[str]) -> tuple[list[ScoreRow], dict[str, datetime]]:
        return score_rows_queued(self.session, ids=ids)

    def method(self, hyp_id: str) -> ScoreMethod | None:
        run = self._runs.get(hyp_id)
        if run is not None and run[0] is not None:
            return run[2]
        return "prior" if self.index.priors.get(hyp_id) is not None else None
