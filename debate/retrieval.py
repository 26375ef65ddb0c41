"""Evidence retrieval for a debate: KB search on the hypothesis's targets, title, statement,
mechanisms and diseases, merged so every angle is represented.

Queries run separately (one per target gene, then one on the idea: mechanisms, diseases, title
and statement) and their hits are interleaved by rank, deduplicated by chunk, up to ``limit``. Each item carries
the facts (``- Key: value`` bullets) stated under the chunk's heading, and its page's content
hash, so the run's evidence snapshot stays readable after the KB changes.
"""

from __future__ import annotations

from itertools import zip_longest

from sqlalchemy import select
from sqlalchemy.engine import Engine

from debate.kb.search import SearchHit, query_terms, search
from debate.models import EvidenceItem, HypothesisOut
from debate.store import tables as t


def evidence_queries(h: HypothesisOut) -> list[list[str]]:
    """The term lists searched for a hypothesis, most specific first."""
    queries = [query_terms(gene) for gene in h.targets]
    # Mechanisms and diseases lead the idea query so the term cap never drops them.
    idea = " ".join([*h.mechanisms, *h.diseases, h.title, h.statement])
    queries.append(query_terms(idea, max_terms=16))
    return [q for q in queries if q]


def retrieve(engine: Engine, h: HypothesisOut, *, limit: int = 8, min_hits: int = 3) -> list[EvidenceItem]:
    """Evidence items E1..En for a hypothesis (empty when the KB has nothing on it)."""
    per_query = [
        search(engine, "", terms=q, limit=limit, min_hits=min_hits, snippets=False)
        for q in evidence_queries(h)
    ]
    picked: list[SearchHit] = []
    seen: set[int] = set()
    for tier in zip_longest(*per_query):
        for hit in tier:
            if hit is not None and hit.chunk_id not in seen and len(picked) < limit:
                seen.add(hit.chunk_id)
                picked.append(hit)
    if not picked:
        return []
    page_ids = {p.page_id for p in picked}
    with engine.connect() as conn:
        hashes = dict(conn.execute(select(t.Page.id, t.Page.content_hash).where(t.Page.id.in_(page_ids))).all())
        facts = conn.execute(
            select(t.Fact.page_id, t.Fact.heading_path, t.Fact.key, t.Fact.value)
            .where(t.Fact.page_id.in_(page_ids)).order_by(t.Fact.id)
        ).all()
    by_heading: dict[tuple[int, tuple[str, ...]], list[dict[str, str]]] = {}
    for f in facts:
        by_heading.setdefault((f.page_id, tuple(f.heading_path or [])), []).append({"key": f.key, "value": f.value})
    return [
        EvidenceItem(
            eid=f"E{i}", rank=i, page_slug=hit.slug, page_hash=hashes[hit.page_id],
            heading_path=hit.heading_path, text=hit.text, score=round(hit.score, 6),
            facts=by_heading.get((hit.page_id, tuple(hit.heading_path)), []),
        )
        for i, hit in enumerate(picked, start=1)
    ]
