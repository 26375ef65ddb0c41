"""Which terms bound an any-term search on a large KB (pure; shared by SQLite and PostgreSQL).

An OR holding a common word matches much of the corpus, and every match must be scored to rank
it. While the OR matches at most ``FULL_OR_ROWS`` chunks it is ranked whole. Beyond that only
chunks holding the query's rarest terms are ranked — those terms together matching at most
``RARE_ROWS`` chunks, and at least the rarest term — still scored against the whole query;
chunks that hold only common words are left out. Rare terms carry most of a query's weight,
so this mostly drops chunks that would rank low anyway, and it keeps a search's cost bounded
however large the KB grows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

FULL_OR_ROWS = 20_000
"""An any-term query matching at most this many chunks is ranked whole (~15 ms here)."""
RARE_ROWS = 10_000
"""Beyond that, the rarest terms are ranked while together they match at most this many."""


def rare_terms(words: Sequence[str], docs: Mapping[str, int]) -> list[str] | None:
    """The terms whose chunks to rank, rarest first; None to rank the whole OR.

    ``docs`` is each word's chunk count, which may stop counting past ``FULL_OR_ROWS``.
    """
    if sum(docs[w] for w in words) <= FULL_OR_ROWS:
        return None
    present = sorted((w for w in words if docs[w]), key=lambda w: (docs[w], words.index(w)))
    rare: list[str] = []
    for w in present:
        if rare and sum(docs[r] for r in rare) + docs[w] > RARE_ROWS:
            break
        rare.append(w)
    return rare if len(rare) < len(present) else None


__all__ = ["FULL_OR_ROWS", "RARE_ROWS", "rare_terms"]
