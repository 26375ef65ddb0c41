"""Evidence retrieval for a debate: KB search on the hypothesis's targets, title, statement,
mechanisms and diseases, merged so every angle is represented.

Queries run separately (one per target gene, then one on the idea: mechanisms, diseases, title
and statement) and their hits are interleaved by rank, deduplicated by chunk, up to ``limit``. Each item carries
the facts (``- Key: value`` bullets) stated under the chunk's heading, and its page's content
hash, so the run's evidence snapshot stays readable after the KB changes.

Chunks screened as suspect at ingest (instruction-like text, ``debate.kb.screen``) are left out
by the search itself with ``suspect="exclude"`` (``[kb] suspect``, the default), or returned
marked ``suspect`` with ``"label"``, for the prompt to quote as such. A fact under a clean
chunk's heading that reads as instructions (its own chunk was the suspect one) is dropped with
``exclude``, and marks the item suspect with ``label``.
"""

from __future__ import annotations

from functools import lru_cache
from itertools import zip_longest

from sqlalchemy.engine import Connection

from debate.core.models import EvidenceItem, HypothesisOut
from debate.kb.screen import screen
from debate.kb.search import SearchHit, query_terms, search
from debate.store.driver import Sql, fetchall, in_list


def evidence_queries(h: HypothesisOut) -> list[list[str]]:
    """The term lists searched for a hypothesis, most specific first."""
    queries = [query_terms(gene) for gene in h.targets]
    # Mechanisms and diseases lead the idea query so the term cap never drops them.
    idea = " ".join([*h.mechanisms, *h.diseases, h.title, h.statement])
    queries.append(query_terms(idea, max_terms=16))
    return [q for q in queries if q]


SUSPECT_MODES = ("exclude", "label")


def retrieve(
    conn: Connection, h: HypothesisOut, *, limit: int = 8, min_hits: int = 3, suspect: str = "exclude"
) -> list[EvidenceItem]:
    """Evidence items E1..En for a hypothesis (empty when the KB has nothing on it).

    ``suspect``: ``"exclude"`` never returns a chunk screened as suspect, ``"label"`` returns it
    with ``suspect=True``."""
    if suspect not in SUSPECT_MODES:
        raise ValueError(f"suspect must be one of {', '.join(SUSPECT_MODES)}, not {suspect!r}")
    exclude = suspect == "exclude"
    per_query = [
        search(conn, "", terms=q, limit=limit, min_hits=min_hits, snippets=False, exclude_suspect=exclude)
        for q in evidence_queries(h)
    ]
    picked: list[SearchHit] = []
    relevance: dict[int, float] = {}
    seen: set[int] = set()
    for tier in zip_longest(*per_query):
        for q, hit in enumerate(tier):
            if hit is not None and hit.chunk_id not in seen and len(picked) < limit:
                seen.add(hit.chunk_id)
                picked.append(hit)
                relevance[hit.chunk_id] = _relevance(hit.score, per_query[q][0].score)
    if not picked:
        return []
    page_ids = {f"p{i}": page_id for i, page_id in enumerate({hit.page_id for hit in picked})}
    hashes = dict(fetchall(conn, _page_hashes_sql(len(page_ids)), page_ids))
    chunk_ids = {f"c{i}": hit.chunk_id for i, hit in enumerate(picked)}
    facts: dict[int, list[dict[str, str]]] = {}
    suspect_facts: set[int] = set()
    for chunk_id, key, value in fetchall(conn, _facts_sql(len(picked)), chunk_ids):
        if screen(f"{key}: {value}"):
            suspect_facts.add(chunk_id)
            if exclude:
                continue
        facts.setdefault(chunk_id, []).append({"key": key, "value": value})
    return [
        EvidenceItem(
            eid=f"E{i}",
            rank=i,
            page_slug=hit.slug,
            page_hash=hashes[hit.page_id],
            heading_path=hit.heading_path,
            text=hit.text,
            score=round(hit.score, 6),
            relevance=relevance[hit.chunk_id],
            facts=facts.get(hit.chunk_id, []),
            suspect=hit.suspect or (not exclude and hit.chunk_id in suspect_facts),
        )
        for i, hit in enumerate(picked, start=1)
    ]


def _relevance(score: float, best: float) -> float:
    """A hit's score over its search's best, in [0, 1]: raw scores of different searches (and of
    BM25 against ts_rank_cd) are not comparable, ratios within one search are."""
    return round(min(1.0, max(0.0, score / best)), 3) if best > 0 else 0.0


@lru_cache(maxsize=64)
def _page_hashes_sql(n: int) -> Sql:
    return Sql(f"SELECT id, content_hash FROM pages WHERE id IN ({in_list('p', n)})")


@lru_cache(maxsize=64)
def _facts_sql(n: int) -> Sql:
    # The facts stated under each chunk's heading. Both heading paths were written as JSON by
    # the same serializer, so equal paths are equal text (json has no = on PostgreSQL).
    return Sql(
        "SELECT c.id, f.key, f.value FROM chunks c JOIN facts f ON f.page_id = c.page_id "
        "AND CAST(f.heading_path AS TEXT) = CAST(c.heading_path AS TEXT) "
        f"WHERE c.id IN ({in_list('c', n)}) ORDER BY c.id, f.id"
    )
