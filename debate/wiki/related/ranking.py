"""Ranking a page's candidates: levels of relatedness read best first, with a bound."""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import chain

from sqlalchemy.engine import Engine
from sqlmodel import Session

from debate.core.diseases import term_key
from debate.wiki.related.index import TermIndex
from debate.wiki.related.listing import build_list
from debate.wiki.related.models import BEST_FACTOR, SCORE_BASE, WEIGHTS, Candidate, Cited, RelatedList, cited_weight
from debate.wiki.related.page import PageContext
from debate.wiki.related.source import DbSource, RelatedSource
from debate.wiki.scores import SCORE_METHODS, ScoreRow


@dataclass
class _Neighbourhood:
    """What the page's link-graph neighbours share, for the ``linked`` feature."""

    genes: dict[str, set[str]] = field(default_factory=dict)  # gene key -> neighbour slugs
    mechanisms: dict[str, set[str]] = field(default_factory=dict)  # hypothesis mechanism key -> slugs
    cited: dict[str, set[str]] = field(default_factory=dict)  # hyp id -> slugs

    def linked(self, hyp_id: str, idx: TermIndex) -> set[str]:
        """The neighbour slugs that relate ``hyp_id`` to the page."""
        out = set(self.cited.get(hyp_id, ()))
        for g in idx.genes_of.get(hyp_id, ()):
            out |= self.genes.get(g, set())
        for k in idx.mechs_of.get(hyp_id, ()):
            out |= self.mechanisms.get(k, set())
        return out

    def is_linked(self, hyp_id: str, idx: TermIndex) -> bool:
        """Whether any neighbour relates ``hyp_id`` to the page (the hot path of ranking)."""
        return (
            hyp_id in self.cited
            or not self.genes.keys().isdisjoint(idx.genes_of.get(hyp_id, ()))
            or not self.mechanisms.keys().isdisjoint(idx.mechs_of.get(hyp_id, ()))
        )


def _neighbourhood(src: RelatedSource, neighbours: dict[int, str], cited: dict[str, set[str]]) -> _Neighbourhood:
    nb = _Neighbourhood(cited=cited)
    mech_terms: dict[str, set[str]] = {}
    for page_id, kind, key in src.page_terms(list(neighbours)):
        if kind == "gene":
            nb.genes.setdefault(key, set()).add(neighbours[page_id])
        elif kind == "mechanism":
            mech_terms.setdefault(term_key(key), set()).add(neighbours[page_id])
    # Keyed by the hypotheses' own mechanism keys that match, so a lookup is one dict probe.
    for term, slugs in mech_terms.items():
        for k in src.index.mechanism_keys(term):
            nb.mechanisms.setdefault(k, set()).update(slugs)
    return nb


@dataclass(frozen=True)
class _KeywordLevels:
    """Hypotheses matching a set of page mechanism and disease keys, by relatedness level."""

    counts: dict[str, int]  # hypothesis id -> shared mechanisms
    diseased: frozenset[str]
    levels: tuple[tuple[float, frozenset[str]], ...]  # keyword-only relatedness -> ids


def _keyword_levels(idx: TermIndex, mech_keys: frozenset[str], dis_keys: frozenset[str]) -> _KeywordLevels:
    """Group keyword matches by level; memoized on the index (pages share keyword sets)."""
    key = ("levels", mech_keys, dis_keys)
    hit = idx.memo.get(key)
    if hit is not None:
        return hit  # type: ignore[return-value]
    counts = Counter(chain.from_iterable(idx.mech_ids.get(k, ()) for k in mech_keys))
    diseased = frozenset(chain.from_iterable(idx.dis_ids.get(k, ()) for k in dis_keys))
    w = WEIGHTS
    # The mechanism weight saturates at two shared mechanisms.
    two = frozenset(h for h, n in counts.items() if n >= 2)
    one = frozenset(counts) - two
    mech2 = min(2 * w["mechanism"], w["mechanism_cap"])
    levels = (
        (mech2 + w["disease"], two & diseased),
        (mech2, two - diseased),
        (w["mechanism"] + w["disease"], one & diseased),
        (w["mechanism"], one - diseased),
        (w["disease"], diseased - one - two),
    )
    hit = _KeywordLevels(dict(counts), diseased, tuple((round(r, 6), ids) for r, ids in levels))
    idx._remember(key, hit)
    return hit


@dataclass
class _Buckets:
    """Candidates grouped by known relatedness, best first.

    Hypotheses related by a listing, a gene or a claim citing the page are few and are scored one by one.
    Those related only by mechanism or disease keywords can number thousands: they come as
    shared id sets per level (set algebra, no per-hypothesis work) and get a
    :class:`Candidate` only when they make the list.
    """

    levels: dict[float, set[str]]  # strong candidates by relatedness
    keyword_levels: tuple[tuple[float, frozenset[str]], ...]  # shared sets; strong ids excluded when read
    listed: set[str]
    gene_counts: dict[str, int]  # hypothesis id -> genes shared with the page
    page_genes: tuple[str, ...]  # the page's gene keys, in page order
    cited: dict[str, Cited]  # hypothesis id -> how claims of its debates cited the page
    mech_keys: frozenset[str]
    dis_keys: frozenset[str]

    def ordered(self) -> list[tuple[float, AbstractSet[str], AbstractSet[str]]]:
        """(relatedness, ids, ids to skip) best first."""
        strong = set().union(*self.levels.values())
        levels = [(r, ids, frozenset()) for r, ids in self.levels.items()]
        levels += [(r, ids, strong) for r, ids in self.keyword_levels if ids]
        return sorted(levels, key=lambda x: -x[0])

    def candidate(self, hyp_id: str, idx: TermIndex) -> Candidate:
        return Candidate(
            id=hyp_id,
            listed=hyp_id in self.listed,
            genes={k: idx.gene_spelling[(hyp_id, k)] for k in self.page_genes if (hyp_id, k) in idx.gene_spelling},
            mechanisms=[idx.spelling[(hyp_id, k)] for k in idx.mechs_of.get(hyp_id, ()) if k in self.mech_keys],
            diseases=[idx.spelling[(hyp_id, k)] for k in idx.dis_of.get(hyp_id, ()) if k in self.dis_keys],
            cited=self.cited.get(hyp_id),
        )


@lru_cache(maxsize=4096)
def _level(listed: bool, genes: int, cited: Cited | None, mechanisms: int, disease: bool) -> float:
    """Relatedness from feature counts (the sum of :meth:`Candidate.relatedness`)."""
    w = WEIGHTS
    return round(
        (w["listed"] if listed else 0.0)
        + min(w["gene"] * genes, w["gene_cap"])
        + cited_weight(cited)
        + min(w["mechanism"] * mechanisms, w["mechanism_cap"])
        + (w["disease"] if disease else 0.0),
        6,
    )


def _direct_candidates(src: RelatedSource, ctx: PageContext, cited: dict[str, Cited]) -> _Buckets:
    idx = src.index
    genes = Counter(chain.from_iterable(idx.gene_ids.get(k, ()) for k in ctx.genes))
    mech_keys: set[str] = set()
    for m in ctx.mechanisms:
        mech_keys |= idx.mechanism_keys(m)
    for m in ctx.mechanism_text:
        mech_keys |= idx.mechanism_keys(m, both_ways=False)
    dis_keys: set[str] = set(idx.disease_keys(ctx.title_key, both_ways=False))
    for d in ctx.diseases:
        dis_keys |= idx.disease_keys(d)
    kw = _keyword_levels(idx, frozenset(mech_keys), frozenset(dis_keys))
    bk = _Buckets(
        levels={},
        keyword_levels=kw.levels,
        listed=set(ctx.listed),
        gene_counts=genes,
        page_genes=tuple(ctx.genes),
        cited=dict(cited),
        mech_keys=frozenset(mech_keys),
        dis_keys=frozenset(dis_keys),
    )
    strong = bk.listed | genes.keys() | bk.cited.keys()
    listed, cited_by, counts, diseased = bk.listed, bk.cited, kw.counts, kw.diseased
    levels = bk.levels
    for hyp_id in strong:
        # Same sum as Candidate.relatedness(), looked up by features: this loop runs per candidate.
        # Levels only order the reading; ranks are redone.
        r = _level(
            hyp_id in listed, genes.get(hyp_id, 0), cited_by.get(hyp_id), counts.get(hyp_id, 0), hyp_id in diseased
        )
        if r in levels:
            levels[r].add(hyp_id)
        else:
            levels[r] = {hyp_id}
    return bk


def _linked_only(src: RelatedSource, ctx: PageContext, nb: _Neighbourhood, known: set[str]) -> list[str]:
    """Hypotheses related to the page only through its neighbours (read when the bound needs them)."""
    found: set[str] = set(nb.cited)
    found.update(chain.from_iterable(src.index.gene_ids.get(g, ()) for g in nb.genes if g not in ctx.genes))
    for k in nb.mechanisms:
        found.update(src.index.mech_ids.get(k, ()))
    return sorted(found - known)


# ---------------------------------------------------------------- ranking a page


def load_related(
    session: Session,
    slug: str,
    *,
    limit: int = 10,
    index: TermIndex | None = None,
    prune: bool = True,
    methods: Sequence[str] = SCORE_METHODS,
) -> RelatedList:
    """Load, rank and render the Related Hypotheses list of the page ``slug``.

    Raises :class:`NotFoundError` for an unknown slug. ``index`` lets a caller that builds many
    lists reuse one :class:`TermIndex`; ``prune=False`` reads every candidate's score (for
    checking that pruning changes nothing); ``methods`` (``[related] methods``) the score
    methods the list may show.
    """
    return related_for(DbSource(session, index), slug, limit=limit, prune=prune, methods=methods)[0]


def related_markdown(engine: Engine, slug: str, *, limit: int = 10, methods: Sequence[str] = SCORE_METHODS) -> str:
    """The section text of one page's list, read in its own session (for scripts and the demo)."""
    from debate.store.db import (
        session_scope,  # local: keeps the pure parts free of the engine setup
    )

    with session_scope(engine) as s:
        return load_related(s, slug, limit=limit, methods=methods).markdown


def related_for(
    src: RelatedSource,
    slug: str,
    *,
    limit: int = 10,
    prune: bool = True,
    methods: Sequence[str] = SCORE_METHODS,
) -> tuple[RelatedList, set[str]]:
    """Rank and render a page's list from ``src``; also the ids of every candidate whose score
    was read (a hypothesis whose score change could move the list is among them, or is listed:
    what an incremental export needs to know).

    A hypothesis whose shown score was made by a method not in ``methods`` is left out (it is
    not replaced by another of its scores: the list shows what the score table shows, or nothing).
    """
    allowed = frozenset(methods)
    if not allowed:
        raise ValueError("methods: at least one of model, offline, prior")
    filtered = not allowed >= set(SCORE_METHODS)
    idx = src.index
    ctx = src.page(slug)
    # Only pages a claim cited count (retrieved evidence no claim cited relates nothing).
    cited = src.cited([ctx.slug])
    here = {h: pages[ctx.slug] for h, pages in cited.items() if ctx.slug in pages}
    buckets = _direct_candidates(src, ctx, here)
    # Through the link graph only shared genes and mechanisms count: evidence a debate drew
    # from a neighbour page (often a broad any-term search hit) is too weak a tie on its own.
    hood = _neighbourhood(src, ctx.neighbours, {})
    levels = buckets.ordered()
    src.prefetch(set().union(*buckets.levels.values()))  # the few strong candidates, read at once
    # Phase 1: rank whole levels, best first, from cached priors and keywords plus the runs of
    # their hypotheses; ranks here are exact. A level is skipped when even its best case
    # (score 1.0, linked) ranks below the `limit`-th rank found.
    best: list[float] = []  # min-heap of the top `limit` ranks
    ranked: list[tuple[float, float, str]] = []  # (rank, relatedness, id)
    waiting: list[tuple[float, str]] = []  # (relatedness, id): no score to show, debate pending
    considered: set[str] = set(ctx.listed)
    linked_w = WEIGHTS["linked"]

    def out_of_reach(r: float) -> bool:
        return prune and len(best) >= limit and (r + linked_w) * BEST_FACTOR < best[0]

    linked_read = False
    li = 0
    while True:
        if li >= len(levels):
            if linked_read or out_of_reach(0.0):
                break
            linked_read = True
            known: set[str] = set().union(*(ids for _r, ids, _skip in levels))
            more = _linked_only(src, ctx, hood, known)
            if not more:
                break
            levels.append((0.0, frozenset(more), frozenset()))
            continue
        r, ids, skip = levels[li]
        li += 1
        if out_of_reach(r):
            continue  # weaker levels follow, but linked-only candidates may still be read
        considered.update(ids)
        scored, pending = src.ranked(ids, skip)
        waiting += [(r + (linked_w if hood.is_linked(h, idx) else 0.0), h) for h in pending if h not in skip]
        for score, h in scored:
            if prune and len(best) >= limit and (r + linked_w) * (SCORE_BASE + score) < best[0]:
                break  # best first: no later one can make the list even if linked
            if h in skip or (filtered and src.method(h) not in allowed):
                continue
            full = r + (linked_w if hood.is_linked(h, idx) else 0.0)
            rank = full * (SCORE_BASE + score)
            ranked.append((rank, full, h))
            if len(best) < limit:
                heapq.heappush(best, rank)
            elif rank > best[0]:
                heapq.heapreplace(best, rank)
    # Phase 2: full score rows for the list (ties at the cut included: titles break them), and
    # for in-progress hypotheses at least as related as the least related of those (the exact
    # floor is applied by build_list); a skipped level is below that floor by construction.
    cut = best[0] if len(best) >= limit else float("-inf")
    chosen = [(full, h) for rank, full, h in ranked if rank >= cut - 1e-9]
    floor = min((full for full, _h in chosen), default=0.0) if len(best) >= limit else 0.0
    eligible = sorted((x for x in waiting if x[0] >= floor - 1e-9), key=lambda x: (-x[0], x[1]))[:limit]
    rows, queued_at = src.rows(sorted(h for _f, h in chosen) + [h for _f, h in eligible])
    evaluated: list[tuple[Candidate, ScoreRow]] = []
    for row in rows:
        c = buckets.candidate(row.id, idx)
        c.linked = hood.linked(row.id, idx)
        evaluated.append((c, row))
    rl = build_list(ctx.slug, ctx.title, limit, evaluated, ctx.analyses, queued_at)
    return rl, considered
