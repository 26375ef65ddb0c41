"""KB search: all terms first, any term when that finds too few.

SQLite: FTS5 with BM25 ranking. PostgreSQL: the ``tsv`` column (``to_tsvector('simple', text)``)
ranked with ``ts_rank_cd``. The same query shape on both: terms are words of the query minus
stopwords, AND-ed; fewer than ``min_hits`` results re-runs the query with the terms OR-ed and
appends the new hits after the all-terms ones. Ranking fetches ids and scores only; chunk text,
page fields and snippets are fetched for the winners. On a large KB the any-term pass ranks
only the chunks holding the query's rarer terms (``debate.kb.rare``), scored against the whole
query, so a common word does not make it score most of the corpus.

``exclude_suspect`` leaves out chunks screened as suspect at ingest (instruction-like text,
``debate.kb.screen``) inside the ranking statement, so they never take a place in the results.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection, Engine, Row

from debate.kb import fts5, rare
from debate.store import tables as t
from debate.store.driver import Sql, fetchall, in_list

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
    suspect: bool = Field(False, description="The chunk holds instruction-like text (screened at ingest).")


def query_terms(query: str, *, max_terms: int = 24) -> list[str]:
    """Lower-cased search terms of a query, stopwords dropped, each once, in order."""
    seen: dict[str, None] = {}
    for w in _WORD.findall(query.lower()):
        if w not in STOPWORDS and (len(w) > 1 or w.isdigit()):
            seen.setdefault(w, None)
    return list(seen)[:max_terms]


def search(
    db: Engine | Connection,
    query: str,
    *,
    limit: int = 10,
    min_hits: int = 3,
    terms: Sequence[str] | None = None,
    snippets: bool = True,
    exclude_suspect: bool = False,
) -> list[SearchHit]:
    """Rank chunks for ``query`` (or explicit ``terms``): all terms, then any term if too few.

    ``db``: an engine, or a connection already open (evidence retrieval runs several searches
    on one). ``snippets=False`` leaves ``snippet`` empty: a snippet costs more than ranking a
    small KB, and evidence retrieval quotes whole chunks. ``exclude_suspect`` never returns a
    chunk screened as suspect; otherwise each hit says whether it is.
    """
    words = list(terms) if terms is not None else query_terms(query)
    if not words:
        return []
    if isinstance(db, Connection):
        return _search(db, words, limit, min_hits, snippets, exclude_suspect)
    with db.connect() as conn:
        return _search(conn, words, limit, min_hits, snippets, exclude_suspect)


def _search(
    conn: Connection, words: list[str], limit: int, min_hits: int, snippets: bool, clean: bool
) -> list[SearchHit]:
    run = _sqlite if conn.dialect.name == "sqlite" else _postgres
    hits = run(conn, words, "all", limit, snippets, clean)
    if len(hits) < min(min_hits, limit) and len(words) > 1:
        seen = {h.chunk_id for h in hits}
        more = run(conn, words, "any", limit, snippets, clean)
        hits += [h for h in more if h.chunk_id not in seen][: limit - len(hits)]
    return hits


_CHUNK = t.Chunk.__table__  # type: ignore[attr-defined]
_CHUNK_FIELDS = ("id", "page_id", "slug", "title", "heading_path", "text", "suspect")


@lru_cache(maxsize=64)
def _chunk_rows_sql(n: int) -> Sql:
    return Sql(
        "SELECT c.id, c.page_id, p.slug, p.title, c.heading_path, c.text, c.suspect "
        f"FROM chunks c JOIN pages p ON p.id = c.page_id WHERE c.id IN ({in_list('id', n)})",
        tables=[_CHUNK, t.Page.__table__],
        results=_CHUNK_FIELDS,  # type: ignore[attr-defined]
    )


def _chunk_rows(conn: Connection, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    rows = fetchall(conn, _chunk_rows_sql(len(ids)), {f"id{i}": chunk_id for i, chunk_id in enumerate(ids)})
    return {r[0]: dict(zip(_CHUNK_FIELDS, r, strict=True)) for r in rows}


def _row_to_hit(row: dict[str, Any], mode: str, *, snippet: str, score: float) -> SearchHit:
    return SearchHit(
        chunk_id=row["id"],
        page_id=row["page_id"],
        slug=row["slug"],
        title=row["title"],
        heading_path=list(row["heading_path"] or []),
        text=row["text"],
        snippet=snippet,
        score=score,
        mode=mode,
        suspect=bool(row["suspect"]),
    )


def _sqlite(
    conn: Connection, words: Sequence[str], mode: str, limit: int, snippets: bool, clean: bool
) -> list[SearchHit]:
    ranked = fts5.rank(conn, words, mode, limit, exclude_suspect=clean)
    if not ranked:
        return []
    ids = [chunk_id for chunk_id, _ in ranked]
    rows = _chunk_rows(conn, ids)
    snips = fts5.snippets(conn, fts5.match_expression(words, mode), ids) if snippets else {}
    return [_row_to_hit(rows[i], mode, snippet=snips.get(i, ""), score=score) for i, score in ranked if i in rows]


def _postgres(
    conn: Connection, words: Sequence[str], mode: str, limit: int, snippets: bool, clean: bool
) -> list[SearchHit]:
    op = " & " if mode == "all" else " | "
    tsq = op.join(words)
    # The same bound on the any-term pass as on SQLite: match the rare terms, score the whole query.
    picked = None
    if mode == "any" and len(words) > 1 and len(set(words)) == len(words):
        picked = rare.rare_terms(words, _pg_doc_counts(conn, words, rare.FULL_OR_ROWS + 1))
    ranked = _pg_rank(conn, tsq, " | ".join(picked) if picked else tsq, limit, clean)
    if picked and len(ranked) < limit:  # too few chunks hold the rare terms: rank everything
        ranked = _pg_rank(conn, tsq, tsq, limit, clean)
    if not ranked:
        return []
    ids = [r.id for r in ranked]
    rows = _chunk_rows(conn, ids)
    # Headlines for the winners only: ts_headline re-parses the text.
    heads = (
        {}
        if not snippets
        else dict(
            conn.execute(
                text(
                    "SELECT c.id, ts_headline('simple', c.text, to_tsquery('simple', :q), "
                    "'StartSel=[,StopSel=],MaxWords=24,MinWords=8') FROM chunks c WHERE c.id IN :ids"
                ).bindparams(bindparam("ids", expanding=True)),
                {"q": tsq, "ids": ids},
            ).all()
        )
    )
    return [
        _row_to_hit(rows[r.id], mode, snippet=heads.get(r.id, ""), score=float(r.score)) for r in ranked if r.id in rows
    ]


_PG_RANK = (
    "SELECT c.id, ts_rank_cd(c.tsv, to_tsquery('simple', :q)) AS score FROM chunks c "
    "WHERE c.tsv @@ to_tsquery('simple', :match){clean} ORDER BY score DESC, c.id LIMIT :limit"
)
_PG_RANK_ALL = text(_PG_RANK.format(clean=""))
_PG_RANK_CLEAN = text(_PG_RANK.format(clean=" AND NOT c.suspect"))


def _pg_rank(conn: Connection, tsq: str, match: str, limit: int, clean: bool) -> list[Row]:
    stmt = _PG_RANK_CLEAN if clean else _PG_RANK_ALL
    return list(conn.execute(stmt, {"q": tsq, "match": match, "limit": limit}))


def _pg_doc_counts(conn: Connection, words: Sequence[str], cap: int) -> dict[str, int]:
    stmt = text("SELECT count(*) FROM (SELECT 1 FROM chunks WHERE tsv @@ to_tsquery('simple', :w) LIMIT :cap) AS m")
    return {w: int(conn.execute(stmt, {"w": w, "cap": cap}).scalar_one()) for w in words}
