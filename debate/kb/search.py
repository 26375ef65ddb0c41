"""KB search: all terms first, any term when that finds too few.

SQLite: FTS5 with BM25 ranking. PostgreSQL: the ``tsv`` column (``to_tsvector('simple', text)``)
ranked with ``ts_rank_cd``. The same query shape on both: terms are words of the query minus
stopwords, AND-ed; fewer than ``min_hits`` results re-runs the query with the terms OR-ed and
appends the new hits after the all-terms ones.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

_WORD = re.compile(r"[A-Za-z0-9]+")
STOPWORDS = frozenset(
    """a an and are as at be by can could do does for from has have in into is it its may might of on
    or our over such than that the their then there these this those through to via was were which
    while will with without would not no via both between""".split()
)


class SearchHit(BaseModel):
    chunk_id: int
    page_id: int
    slug: str
    title: str
    heading_path: list[str]
    text: str = Field(description="The whole chunk text.")
    snippet: str
    score: float = Field(description="Higher is better (negated BM25 on SQLite, ts_rank_cd on PostgreSQL).")
    mode: str = Field(description="all | any: which pass found it.")


def query_terms(query: str, *, max_terms: int = 24) -> list[str]:
    """Lower-cased search terms of a query, stopwords dropped, each once, in order."""
    seen: dict[str, None] = {}
    for w in _WORD.findall(query.lower()):
        if w not in STOPWORDS and (len(w) > 1 or w.isdigit()):
            seen.setdefault(w, None)
    return list(seen)[:max_terms]


def search(
    engine: Engine, query: str, *, limit: int = 10, min_hits: int = 3, terms: Sequence[str] | None = None
) -> list[SearchHit]:
    """Rank chunks for ``query`` (or explicit ``terms``): all terms, then any term if too few."""
    words = list(terms) if terms is not None else query_terms(query)
    if not words:
        return []
    with engine.connect() as conn:
        run = _sqlite if conn.dialect.name == "sqlite" else _postgres
        hits = run(conn, words, "all", limit)
        if len(hits) < min(min_hits, limit) and len(words) > 1:
            seen = {h.chunk_id for h in hits}
            hits += [h for h in run(conn, words, "any", limit) if h.chunk_id not in seen][: limit - len(hits)]
    return hits


def _row_to_hit(row, mode: str) -> SearchHit:  # type: ignore[no-untyped-def]
    import json

    hp = row.heading_path
    return SearchHit(
        chunk_id=row.id, page_id=row.page_id, slug=row.slug, title=row.title,
        heading_path=json.loads(hp) if isinstance(hp, str) else list(hp or []),
        text=row.text, snippet=row.snippet, score=float(row.score), mode=mode,
    )


def _sqlite(conn: Connection, words: Sequence[str], mode: str, limit: int) -> list[SearchHit]:
    quoted = [f'"{w}"' for w in words]
    match = " ".join(quoted) if mode == "all" else " OR ".join(quoted)
    rows = conn.execute(
        text(
            "SELECT c.id, c.page_id, p.slug, p.title, c.heading_path, c.text, "
            "snippet(chunks_fts, 0, '[', ']', '…', 16) AS snippet, -bm25(chunks_fts) AS score "
            "FROM chunks_fts JOIN chunks c ON c.id = chunks_fts.rowid JOIN pages p ON p.id = c.page_id "
            "WHERE chunks_fts MATCH :match ORDER BY bm25(chunks_fts), c.id LIMIT :limit"
        ),
        {"match": match, "limit": limit},
    )
    return [_row_to_hit(r, mode) for r in rows]


def _postgres(conn: Connection, words: Sequence[str], mode: str, limit: int) -> list[SearchHit]:
    op = " & " if mode == "all" else " | "
    tsq = op.join(words)
    rows = conn.execute(
        text(
            "SELECT c.id, c.page_id, p.slug, p.title, c.heading_path, c.text, "
            "ts_headline('simple', c.text, to_tsquery('simple', :q), "
            "'StartSel=[,StopSel=],MaxWords=24,MinWords=8') AS snippet, "
            "ts_rank_cd(c.tsv, to_tsquery('simple', :q)) AS score "
            "FROM chunks c JOIN pages p ON p.id = c.page_id "
            "WHERE c.tsv @@ to_tsquery('simple', :q) ORDER BY score DESC, c.id LIMIT :limit"
        ),
        {"q": tsq, "limit": limit},
    )
    return [_row_to_hit(r, mode) for r in rows]
