"""The per-process index of every hypothesis's keywords, genes and priors."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

from sqlalchemy import event, func, select, text
from sqlalchemy.engine import Connection
from sqlmodel import Session

from debate.core.diseases import disease_key, term_key
from debate.core.genes import gene_key
from debate.store import tables as t
from debate.wiki.related.matching import keyword_matches
from debate.wiki.related.models import best_first_key

_Q_FINGERPRINT = select(func.count(), func.max(t.Hypothesis.updated_at)).select_from(t.Hypothesis)
_Q_COUNT = select(func.count()).select_from(t.Hypothesis)
_Q_MAX_ROWID = text("SELECT max(rowid) FROM hypotheses")
_Q_TERM_LISTS = select(
    t.Hypothesis.id, t.Hypothesis.prior_score, t.Hypothesis.targets, t.Hypothesis.mechanisms, t.Hypothesis.diseases
)


@dataclass
class TermIndex:
    """What ranking needs to know of every hypothesis without reading it: mechanism and disease
    keywords (inverted for lookup by page terms), target gene keys and imported priors, so that
    thousands of candidates are ranked reading only their runs.

    Neither keyword list has an indexed table, and reading 50,000 JSON rows per page costs more
    than a whole list may; so the index is built once per process and database, and rebuilt
    when hypotheses change: a new row (the table's largest rowid on SQLite, its row count
    elsewhere: checked on every use), an edit committed in this process (a session hook), or an
    edit by another process (the latest ``updated_at``, checked at most every
    :data:`EXACT_CHECK_S` seconds, since that check reads the whole table).
    """

    fast: object
    exact: tuple
    checked_at: float
    priors: dict[str, float | None] = field(default_factory=dict)
    genes_of: dict[str, tuple[str, ...]] = field(default_factory=dict)  # id -> target gene keys
    gene_ids: dict[str, list[str]] = field(default_factory=dict)  # gene key -> ids targeting it
    gene_spelling: dict[tuple[str, str], str] = field(default_factory=dict)  # (id, gene key) -> as written
    mech_ids: dict[str, list[str]] = field(default_factory=dict)
    dis_ids: dict[str, list[str]] = field(default_factory=dict)
    mech_words: dict[str, set[str]] = field(default_factory=dict)
    dis_words: dict[str, set[str]] = field(default_factory=dict)
    mechs_of: dict[str, tuple[str, ...]] = field(default_factory=dict)
    dis_of: dict[str, tuple[str, ...]] = field(default_factory=dict)
    spelling: dict[tuple[str, str], str] = field(default_factory=dict)  # (hyp id, key) -> as written
    memo: dict[object, object] = field(default_factory=dict)  # derived lookups, see _remember

    def add(self, hyp_id: str, mechanisms: Iterable[str], diseases: Iterable[str]) -> None:
        """Index one hypothesis's keywords."""
        for kind, terms, keyf in (("m", mechanisms, term_key), ("d", diseases, disease_key)):
            ids, words = (self.mech_ids, self.mech_words) if kind == "m" else (self.dis_ids, self.dis_words)
            keys: list[str] = []
            for term in terms:
                k = keyf(term)
                if k and k not in keys:
                    keys.append(k)
                    self.spelling[(hyp_id, k)] = term
                    ids.setdefault(k, []).append(hyp_id)
                    for w in k.split():
                        words.setdefault(w, set()).add(k)
            if keys:
                (self.mechs_of if kind == "m" else self.dis_of)[hyp_id] = tuple(keys)

    def _keys(self, kind: str, phrase: str, both_ways: bool) -> frozenset[str]:
        memo_key = (kind, phrase, both_ways)
        hit = self.memo.get(memo_key)
        if hit is None:
            words = self.mech_words if kind == "m" else self.dis_words
            pool: set[str] = set()
            for w in phrase.split():
                pool |= words.get(w, set())
            hit = frozenset(k for k in pool if keyword_matches(k, phrase, both_ways=both_ways))
            self._remember(memo_key, hit)
        return hit  # type: ignore[return-value]

    def _remember(self, key: object, value: object) -> None:
        # Pages share terms, so matches repeat; the bound keeps a long-lived process small.
        if len(self.memo) > 20_000:
            self.memo.clear()
        self.memo[key] = value

    def prior_order(self, ids: AbstractSet[str]) -> list[tuple[float, str]]:
        """(prior, id) of those of ``ids`` with a prior, best first (ties by id); memoized for the
        shared keyword sets, which recur across pages."""
        shared = isinstance(ids, frozenset)
        hit = self.memo.get(("order", ids)) if shared else None
        if hit is None:
            priors = self.priors
            hit = sorted(((p, h) for h in ids if (p := priors.get(h)) is not None), key=best_first_key)
            if shared:
                self._remember(("order", ids), hit)
        return hit  # type: ignore[return-value]

    def mechanism_keys(self, phrase: str, *, both_ways: bool = True) -> frozenset[str]:
        """Hypothesis mechanism keys matching a page phrase."""
        return self._keys("m", phrase, both_ways)

    def disease_keys(self, phrase: str, *, both_ways: bool = True) -> frozenset[str]:
        """Hypothesis disease keys matching a page phrase."""
        return self._keys("d", phrase, both_ways)


EXACT_CHECK_S = 2.0
_INDEX_LOCK = threading.Lock()
_INDEXES: dict[str, TermIndex] = {}


def invalidate_term_index() -> None:
    """Forget every cached :class:`TermIndex` (the next list rebuilds it)."""
    with _INDEX_LOCK:
        _INDEXES.clear()


@event.listens_for(Session, "after_flush")
def _note_hypothesis_edit(session: Session, _ctx: object) -> None:
    if any(isinstance(o, t.Hypothesis) for o in (*session.new, *session.dirty, *session.deleted)):
        session.info["hypotheses_edited"] = True


@event.listens_for(Session, "after_commit")
def _drop_index_after_edit(session: Session) -> None:
    if session.info.pop("hypotheses_edited", False):
        invalidate_term_index()


def _fast_fingerprint(conn: Connection) -> object:
    if conn.dialect.name == "sqlite":
        return conn.execute(_Q_MAX_ROWID).scalar()
    return conn.execute(_Q_COUNT).scalar()


def term_index(session: Session) -> TermIndex:
    """The process's :class:`TermIndex` for this database, rebuilt when hypotheses changed."""
    conn = session.connection()
    key = str(conn.engine.url)
    fast = _fast_fingerprint(conn)
    with _INDEX_LOCK:
        idx = _INDEXES.get(key)
    if idx is not None and idx.fast == fast:
        now = time.monotonic()
        if now - idx.checked_at < EXACT_CHECK_S:
            return idx
        if tuple(conn.execute(_Q_FINGERPRINT).one()) == idx.exact:
            idx.checked_at = now
            return idx
    exact = tuple(conn.execute(_Q_FINGERPRINT).one())
    idx = TermIndex(fast=fast, exact=exact, checked_at=time.monotonic())
    for hyp_id, prior, targets, mechs, dis in conn.execute(_Q_TERM_LISTS):
        idx.priors[hyp_id] = prior
        if targets:
            keys = tuple(gene_key(g) for g in targets)
            idx.genes_of[hyp_id] = keys
            for k, g in zip(keys, targets, strict=True):
                if (hyp_id, k) not in idx.gene_spelling:  # a gene listed twice is shared once
                    idx.gene_spelling[(hyp_id, k)] = g
                    idx.gene_ids.setdefault(k, []).append(hyp_id)
        if mechs or dis:
            idx.add(hyp_id, mechs or [], dis or [])
    with _INDEX_LOCK:
        _INDEXES[key] = idx
    return idx
