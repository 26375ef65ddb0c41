"""SQLite FTS5 ranking for KB search: the top chunks by BM25 without scoring the whole corpus.

Ranking and presentation are separate statements. The ranking statement reads only the FTS
index (``rowid`` and ``bm25()``) and sorts inside SQLite; chunk text, page fields and
``snippet()`` are fetched for the few winners afterwards, because SQLite evaluates every result
column of every matching row before it sorts.

The any-term pass on a large KB ranks only the chunks holding the query's rarest terms
(``debate.kb.rare``), without a second index: chunks holding a rare term are split into those
holding a common word too and those that do not, and each part is ranked in SQL with a MATCH
expression that names every present term once, so its ``bm25()`` is the whole query's score.

``exclude_suspect`` ranks only chunks not screened as suspect (``chunks.suspect``): the filter
is in the ranking statement, a ``NOT IN`` over the few suspect ids (a partial index holds them).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection

from debate.kb import rare
from debate.store.driver import Sql, fetchall

Ranked = list[tuple[int, float]]
"""(chunk id, score) best first; the score is the negated ``bm25()``, so higher is better."""


def phrase(word: str) -> str:
    """``word`` as an FTS5 string (a phrase of its tokens, never query syntax)."""
    return '"' + word.replace('"', '""') + '"'


def match_expression(words: Sequence[str], mode: str) -> str:
    """The MATCH expression for all terms (``mode="all"``) or any term (``"any"``)."""
    return (" " if mode == "all" else " OR ").join(phrase(w) for w in words)


def rank(conn: Connection, words: Sequence[str], mode: str, limit: int, *, exclude_suspect: bool = False) -> Ranked:
    """The ``limit`` best chunks for the words, in BM25 order, ties by chunk id; with
    ``exclude_suspect`` none of the chunks screened as suspect."""
    stmt = _RANK_CLEAN if exclude_suspect else _RANK
    if mode == "any" and len(words) > 1 and len(set(words)) == len(words):
        return _rank_any_pruned(conn, list(words), limit, stmt)
    return _rank_match(conn, match_expression(words, mode), limit, stmt)


def snippets(conn: Connection, match: str, ids: Sequence[int]) -> dict[int, str]:
    """FTS5 ``snippet()`` of each chunk for the MATCH expression (one statement, rowid lookups)."""
    rows = conn.execute(
        text(
            "SELECT rowid, snippet(chunks_fts, 0, '[', ']', '…', 16) FROM chunks_fts "
            "WHERE chunks_fts MATCH :m AND rowid IN :ids"
        ).bindparams(bindparam("ids", expanding=True)),
        {"m": match, "ids": list(ids)},
    )
    return {int(r[0]): r[1] or "" for r in rows}


# Run on the driver's cursor: a query here costs less than SQLAlchemy's handling of it.
_RANK_SQL = (
    "SELECT rowid, bm25(chunks_fts) AS bm FROM chunks_fts WHERE chunks_fts MATCH :m{clean} "
    "ORDER BY bm, rowid LIMIT :limit"
)
_RANK = Sql(_RANK_SQL.format(clean=""))
_RANK_CLEAN = Sql(_RANK_SQL.format(clean=" AND rowid NOT IN (SELECT id FROM chunks WHERE suspect)"))
_MAX_CHUNK_ID = Sql("SELECT max(id) FROM chunks")


def _rank_match(conn: Connection, match: str, limit: int, stmt: Sql = _RANK) -> Ranked:
    return [(int(r[0]), -float(r[1])) for r in fetchall(conn, stmt, {"m": match, "limit": limit})]


def _doc_counts(conn: Connection, words: Sequence[str], cap: int) -> dict[str, int]:
    # Counting stops at ``cap``: past it only "too many to rank whole" matters.
    stmt = text("SELECT count(*) FROM (SELECT 1 FROM chunks_fts WHERE chunks_fts MATCH :m LIMIT :cap)")
    return {w: int(conn.execute(stmt, {"m": phrase(w), "cap": cap}).scalar_one()) for w in words}


def _rank_any_pruned(conn: Connection, words: list[str], limit: int, stmt: Sql) -> Ranked:
    full = match_expression(words, "any")
    # The highest chunk id bounds the chunk count: a small KB is always ranked whole, uncounted.
    if (fetchall(conn, _MAX_CHUNK_ID)[0][0] or 0) <= rare.FULL_OR_ROWS:
        return _rank_match(conn, full, limit, stmt)
    picked = rare.rare_terms(words, _doc_counts(conn, words, rare.FULL_OR_ROWS + 1))
    if picked is None:
        return _rank_match(conn, full, limit, stmt)
    common = [w for w in words if w not in picked]
    # A term a chunk lacks adds nothing to its bm25(), the NOT side's terms included.
    rare_or, common_or = match_expression(picked, "any"), match_expression(common, "any")
    found = _rank_match(conn, f"({rare_or}) NOT ({common_or})", limit, stmt)
    found += _rank_match(conn, f"({rare_or}) AND ({common_or})", limit, stmt)
    if len(found) < limit:  # too few chunks hold the rare terms: rank everything
        return _rank_match(conn, full, limit, stmt)
    return sorted(found, key=lambda hit: (-hit[1], hit[0]))[:limit]


__all__ = ["Ranked", "match_expression", "phrase", "rank", "snippets"]
