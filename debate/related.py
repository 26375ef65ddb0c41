"""Related Hypotheses: which hypotheses a KB page lists, how they rank, how the list is written.

Candidates
    A hypothesis is a candidate for a page when any of these holds:

    * **listed** — the page listed it when ingested (a ``RelatedEntry`` row);
    * **gene** — one of its target genes is a gene the page mentions (``PageTerm`` kind gene),
      compared case-insensitively;
    * **mechanism** — one of its mechanism keywords matches a mechanism the page names: the
      page's mechanism terms (``/mechanisms/...`` links, a mechanism page's own slug) or the
      values of its ``Mechanism`` facts and infobox column. Both sides go through
      ``terms.term_key``; a keyword matches when it equals the term or is contained in it (on
      word boundaries), or — for mechanism terms, not for free-text values — contains it;
    * **disease** — one of its diseases matches a disease of the page (``/diseases/...`` links,
      a disease page's own slug) or appears in the page title. Abbreviations are expanded through
      :data:`DISEASE_ALIASES` (``ALS`` -> ``amyotrophic lateral sclerosis``) and possessives
      dropped (``Alzheimer's disease`` = ``Alzheimer disease``);
    * **cited** — one of its debates drew evidence from this page (``Evidence`` rows);
    * **linked** — a page in the page's link graph (pages it links to, and up to
      :data:`MAX_INCOMING` pages linking to it) shares a gene or mechanism with it. (Evidence a
      debate drew from a neighbour page does not count: broad any-term search hits made weak ties.)

    Relatedness is therefore not a disease-word match: the seed's ALS page lists hypotheses that
    never name ALS, and a page keeps them because they are listed and share targets.

Relatedness (a sum of weights, :data:`WEIGHTS`)
    listed 1.0 · each shared gene 0.6 (at most 1.2) · each shared mechanism 0.3 (at most 0.6) ·
    a shared disease 0.2 · cited this page 0.3 · related through linked pages 0.15 (once, however
    many linked pages connect; they are all named in the reasons).

Ranking and display
    ``rank = relatedness × (0.5 + shown_score)``: a strongly related hypothesis with a middling
    score outranks a loosely related one with a high score, and the score still decides among
    equally related ones. The top ``limit`` hypotheses that have a score to show, by rank (ties:
    higher score, then title), are listed and then *displayed* by shown score, highest first
    (unrounded; ties by title). After them come in-progress lines, never with a number: the
    page's in-progress analyses in their original order, then candidates with no score to show
    whose debate is queued or running, in queue order: the most related ``limit`` of them that
    are at least as related as the least related scored line (when ``limit`` scored lines are
    shown; otherwise any), so a pending debate of a loosely related idea does not clutter a page.

Loading
    Ranking reads through a :class:`RelatedSource`: :class:`DbSource` reads one page with
    indexed set queries (its terms, links, list as ingested, hypotheses sharing its genes via
    ``hypothesis_targets.gene_key``, debates citing it); the export's bulk source preloads the
    same rows once. Mechanism and disease keywords, target genes and priors of all hypotheses
    come from a per-process :class:`TermIndex`. Candidates are grouped into levels of known
    relatedness and read best level first, each level best score first (scores from the cached
    priors plus the runs of that level's hypotheses); reading stops as soon as even the best
    case (score 1.0 for a level, the next score within one, plus the linked weight) ranks below
    the ``limit``-th rank found. Hypotheses related *only* through linked pages are looked up
    only when that bound lets them in. Full score rows are read for the few lines shown. The
    result equals the exhaustive ranking (``prune=False``; tested).
"""

from __future__ import annotations

import heapq
import html
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import bindparam, event, func, select, text, union_all
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session

from debate.errors import NotFoundError
from debate.genes import gene_key, join_target_label
from debate.kb.terms import term_key
from debate.scores import ScoreRow, score_rows_queued, shown_scores
from debate.scoring import display_score, score_color, score_span
from debate.store import tables as t

__all__ = [
    "DISEASE_ALIASES",
    "HEADER",
    "WEIGHTS",
    "Candidate",
    "DbSource",
    "PageContext",
    "RelatedItem",
    "RelatedList",
    "RelatedSource",
    "TermIndex",
    "build_list",
    "disease_key",
    "invalidate_term_index",
    "keyword_matches",
    "load_related",
    "page_context",
    "related_for",
    "related_json",
    "related_markdown",
    "render_html",
    "render_line",
    "render_markdown",
    "term_index",
]

HEADER = (
    "Related Hypotheses\n"
    "From the [SciDEX Exchange](/exchange) — scored by multi-agent debate\n"
)

WEIGHTS: dict[str, float] = {
    "listed": 1.0,
    "gene": 0.6, "gene_cap": 1.2,
    "mechanism": 0.3, "mechanism_cap": 0.6,
    "disease": 0.2,
    "cited": 0.3,
    "linked": 0.15,
}
# rank = relatedness × (SCORE_BASE + shown): the best a candidate can do is at shown = 1.0.
SCORE_BASE = 0.5
BEST_FACTOR = SCORE_BASE + 1.0
MAX_INCOMING = 50

DISEASE_ALIASES: dict[str, str] = {
    "als": "amyotrophic lateral sclerosis",
    "mnd": "motor neuron disease",
    "ad": "alzheimer disease",
    "pd": "parkinson disease",
    "hd": "huntington disease",
    "ftd": "frontotemporal dementia",
    "ftld": "frontotemporal lobar degeneration",
    "ms": "multiple sclerosis",
    "sma": "spinal muscular atrophy",
    "dlb": "dementia with lewy bodies",
    "msa": "multiple system atrophy",
    "psp": "progressive supranuclear palsy",
}
_POSSESSIVE = {"alzheimers": "alzheimer", "parkinsons": "parkinson", "huntingtons": "huntington"}
# Words too generic to relate anything on their own.
_GENERIC = frozenset({"disease", "diseases", "disorder", "disorders", "syndrome", "mechanism", "pathway"})


# ---------------------------------------------------------------- term matching (pure)


def disease_key(term: str) -> str:
    """Match key for a disease: ``term_key`` without possessives, abbreviations expanded."""
    words = [_POSSESSIVE.get(w, w) for w in term_key(term).split() if w != "s"]
    key = " ".join(words)
    return DISEASE_ALIASES.get(key, key)


def _within(small: str, big: str) -> bool:
    return small == big or f" {small} " in f" {big} "


def keyword_matches(keyword: str, term: str, *, both_ways: bool = True) -> bool:
    """True when two match keys are equal or one holds the other on word boundaries.

    ``both_ways=False`` only lets ``keyword`` be inside ``term`` (for long free-text values).
    """
    if len(keyword) < 3 or len(term) < 3 or keyword in _GENERIC or term in _GENERIC:
        return False
    return _within(keyword, term) or (both_ways and _within(term, keyword))


def _title_diseases(title: str) -> tuple[str, list[str]]:
    """The title as a disease match key, and the full names of abbreviations in it."""
    words = [_POSSESSIVE.get(w, w) for w in term_key(title).split() if w != "s"]
    return " ".join(words), [DISEASE_ALIASES[w] for w in words if w in DISEASE_ALIASES]


# ---------------------------------------------------------------- models


class RelatedItem(BaseModel):
    """One line of a Related Hypotheses list."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["hypothesis", "analysis"]
    id: str
    title: str
    path: str = Field(description="Link path, /hypothesis/h-... or /analysis/...")
    score: float | None = Field(description="Shown score, unrounded; null for in-progress lines.")
    shown: str | None = Field(description="The score as displayed (2 decimals, half up).")
    color: str | None = Field(description="Colour of the shown score.")
    target_label: str | None = Field(description="Text after 'Target: ', or null when none.")
    targets: list[str]
    in_progress: bool
    relatedness: float
    reasons: list[str] = Field(description="Why it is related: listed, gene:X, mechanism:x, ...")


class RelatedList(BaseModel):
    """A page's Related Hypotheses list: `debate related --format json`, export and API."""

    model_config = ConfigDict(extra="forbid")

    slug: str
    title: str
    limit: int
    items: list[RelatedItem]
    markdown: str = Field(description="The section as written into the page.")


@dataclass
class Candidate:
    """Why one hypothesis relates to a page (its features), before and after scores are read."""

    id: str
    listed: bool = False
    genes: dict[str, str] = field(default_factory=dict)  # gene key -> spelling
    mechanisms: list[str] = field(default_factory=list)
    diseases: list[str] = field(default_factory=list)
    cited: bool = False
    linked: set[str] = field(default_factory=set)

    def relatedness(self) -> float:
        """The weighted sum of this candidate's features (see the module docstring)."""
        w = WEIGHTS
        r = w["listed"] if self.listed else 0.0
        r += min(w["gene"] * len(self.genes), w["gene_cap"])
        r += min(w["mechanism"] * len(self.mechanisms), w["mechanism_cap"])
        r += w["disease"] if self.diseases else 0.0
        r += w["cited"] if self.cited else 0.0
        r += w["linked"] if self.linked else 0.0
        return round(r, 6)

    def reasons(self) -> list[str]:
        """Readable features: ``listed``, ``gene:SOD1``, ``mechanism:autophagy``, ..."""
        out = ["listed"] if self.listed else []
        out += [f"gene:{g}" for g in self.genes.values()]
        out += [f"mechanism:{m}" for m in self.mechanisms]
        out += [f"disease:{d}" for d in self.diseases]
        out += ["cited"] if self.cited else []
        out += [f"linked:{s}" for s in sorted(self.linked)]
        return out


@dataclass(frozen=True)
class Analysis:
    """An in-progress analysis line as ingested."""

    id: str
    title: str
    path: str


# ---------------------------------------------------------------- ranking and rendering (pure)


def _label(row: ScoreRow) -> str | None:
    return row.target_label or join_target_label(row.targets) or None


def _rank_key(c: Candidate, row: ScoreRow) -> tuple:
    assert row.shown_score is not None
    rank = c.relatedness() * (SCORE_BASE + row.shown_score)
    return (-rank, -row.shown_score, row.title.casefold(), row.title, row.id)


def build_list(
    slug: str,
    title: str,
    limit: int,
    candidates: Iterable[tuple[Candidate, ScoreRow]],
    analyses: Sequence[Analysis] = (),
    queued_at: dict[str, datetime] | None = None,
) -> RelatedList:
    """Rank candidates and build the page's list (pure: every input is already loaded).

    ``queued_at`` gives, for hypotheses whose debate is queued or running, when it was queued.
    """
    queued_at = queued_at or {}
    scored: list[tuple[Candidate, ScoreRow]] = []
    waiting: list[tuple[Candidate, ScoreRow]] = []
    for c, row in candidates:
        if row.shown_score is not None:
            scored.append((c, row))
        elif row.status in ("queued", "running"):
            waiting.append((c, row))
    top = heapq.nsmallest(limit, scored, key=lambda cr: _rank_key(*cr))
    # A full list sets a relatedness floor for in-progress lines: a pending debate is shown
    # only when its hypothesis is at least as related as the least related line listed.
    floor = min(c.relatedness() for c, _row in top) if len(top) >= limit else 0.0
    waiting = [cr for cr in waiting if cr[0].relatedness() >= floor]
    top.sort(key=lambda cr: (-cr[1].shown_score, cr[1].title.casefold(), cr[1].title, cr[1].id))  # type: ignore[operator]
    items = [_hyp_item(c, row) for c, row in top]
    items += [
        RelatedItem(kind="analysis", id=a.id, title=a.title, path=a.path, score=None, shown=None,
                    color=None, target_label=None, targets=[], in_progress=True,
                    relatedness=WEIGHTS["listed"], reasons=["listed"])
        for a in analyses
    ]
    most_related = sorted(waiting, key=lambda cr: (-cr[0].relatedness(), cr[1].id))[:limit]
    far = datetime.max.replace(tzinfo=None)
    most_related.sort(key=lambda cr: (_naive(queued_at.get(cr[1].id)) or far, cr[1].id))
    items += [_hyp_item(c, row) for c, row in most_related]
    return RelatedList(slug=slug, title=title, limit=limit, items=items, markdown=render_markdown(items))


def _naive(dt: datetime | None) -> datetime | None:
    return dt.replace(tzinfo=None) if dt is not None and dt.tzinfo else dt


def _hyp_item(c: Candidate, row: ScoreRow) -> RelatedItem:
    shown = display_score(row.shown_score) if row.shown_score is not None else None
    return RelatedItem(
        kind="hypothesis", id=row.id, title=row.title, path=f"/hypothesis/{row.id}",
        score=row.shown_score, shown=shown, color=score_color(shown) if shown else None,
        target_label=_label(row), targets=list(row.targets), in_progress=row.shown_score is None,
        relatedness=c.relatedness(), reasons=c.reasons(),
    )


def _one_line(text: str) -> str:
    # A line break inside a title would end the list line early and corrupt the page.
    return " ".join(text.split())


def render_line(item: RelatedItem) -> str:
    """One list line in the wiki's format, ending with a newline."""
    link = f"- [{_one_line(item.title)}]({item.path})"
    if item.in_progress or item.score is None:
        return f"{link} 🔄\n"
    target = f" · Target: {_one_line(item.target_label)}" if item.target_label else ""
    return f"{link} — {score_span(item.score)}{target}\n"


def render_markdown(items: Sequence[RelatedItem]) -> str:
    """The whole section: heading, the ``From the ...`` line, then one line per item."""
    return HEADER + "".join(render_line(i) for i in items)


def render_html(rl: RelatedList) -> str:
    """A small ``<section>`` with the same lines, every text escaped."""
    esc = html.escape
    lines = [
        '<section class="related-hypotheses">',
        "<h2>Related Hypotheses</h2>",
        '<p>From the <a href="/exchange">SciDEX Exchange</a> — scored by multi-agent debate</p>',
        "<ul>",
    ]
    for i in rl.items:
        link = f'<a href="{esc(i.path)}">{esc(i.title)}</a>'
        if i.in_progress or i.score is None:
            lines.append(f"<li>{link} 🔄</li>")
            continue
        target = f" · Target: {esc(i.target_label)}" if i.target_label else ""
        lines.append(f"<li>{link} — {score_span(i.score)}{target}</li>")
    lines += ["</ul>", "</section>"]
    return "\n".join(lines) + "\n"


def related_json(rl: RelatedList) -> str:
    """The exact text of ``debate related --format json`` and of an export's ``related/SLUG.json``."""
    return rl.model_dump_json(indent=2) + "\n"


# ---------------------------------------------------------------- statements

# Built once with bound parameters: a list is read in a dozen small statements, and building
# and compiling them anew each time would cost more than running them.
_P, _T, _L, _R, _E = t.Page, t.PageTerm, t.Link, t.Run, t.Evidence
_ids = bindparam("ids", expanding=True)
_Q_PAGE = select(_P.id, _P.slug, _P.title).where(_P.slug == bindparam("slug"))
_Q_TERMS = select(_T.kind, _T.key, _T.term).where(_T.page_id == bindparam("pid")).order_by(_T.id)
_Q_MECH_VALUES = union_all(
    select(t.Fact.value).where(t.Fact.page_id == bindparam("pid"), func.lower(t.Fact.key) == "mechanism"),
    select(t.InfoboxRow.value).where(t.InfoboxRow.page_id == bindparam("pid"),
                                     t.InfoboxRow.column_name == "Mechanism"),
)
_Q_LISTED = (
    select(t.RelatedEntry.kind, t.RelatedEntry.ref_id, t.RelatedEntry.title, t.RelatedEntry.path,
           t.RelatedEntry.in_progress)
    .where(t.RelatedEntry.page_id == bindparam("pid")).order_by(t.RelatedEntry.ordinal)
)
_Q_OUT = (
    select(_P.id, _P.slug).join(_L, _L.target_slug == _P.slug)
    .where(_L.page_id == bindparam("pid"), _P.id != bindparam("pid")).distinct().order_by(_P.slug)
)
_Q_IN = (
    select(_P.id, _P.slug).join(_L, _L.page_id == _P.id)
    .where(_L.target_slug == bindparam("slug"), _P.id != bindparam("pid"))
    .distinct().order_by(_P.slug).limit(MAX_INCOMING)
)
# Filtered by page only: with a kind filter too, SQLite would walk the (kind, key) index instead.
_Q_NEIGHBOUR_TERMS = select(_T.page_id, _T.kind, _T.key).where(_T.page_id.in_(bindparam("pids", expanding=True)))
_Q_CITED = (
    select(_R.hypothesis_id, _E.page_slug).join(_R, _R.id == _E.run_id)
    .where(_E.page_slug.in_(bindparam("slugs", expanding=True))).distinct()
)
_Q_GENES = select(t.HypothesisTarget.hypothesis_id, t.HypothesisTarget.gene_key, t.HypothesisTarget.gene).where(
    t.HypothesisTarget.gene_key.in_(bindparam("keys", expanding=True))
)
_Q_FINGERPRINT = select(func.count(), func.max(t.Hypothesis.updated_at)).select_from(t.Hypothesis)
_Q_COUNT = select(func.count()).select_from(t.Hypothesis)
_Q_MAX_ROWID = text("SELECT max(rowid) FROM hypotheses")
_Q_TERM_LISTS = select(
    t.Hypothesis.id, t.Hypothesis.prior_score, t.Hypothesis.targets, t.Hypothesis.mechanisms, t.Hypothesis.diseases
)


# ---------------------------------------------------------------- mechanism/disease index


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
            idx.genes_of[hyp_id] = tuple(gene_key(g) for g in targets)
        if mechs or dis:
            idx.add(hyp_id, mechs or [], dis or [])
    with _INDEX_LOCK:
        _INDEXES[key] = idx
    return idx


# ---------------------------------------------------------------- what a page offers


@dataclass
class PageContext:
    """What a page offers for matching: its terms, list as ingested and link-graph neighbours."""

    id: int
    slug: str
    title: str
    genes: dict[str, str]  # gene key -> spelling on the page
    mechanisms: list[str]  # mechanism match keys (both ways)
    mechanism_text: list[str]  # Mechanism fact/infobox values (a keyword must be inside)
    diseases: list[str]  # disease match keys (both ways)
    title_key: str
    listed: list[str]
    analyses: list[Analysis]
    neighbours: dict[int, str]  # page id -> slug


def page_context(
    page_id: int,
    slug: str,
    title: str,
    terms: Iterable[tuple[str, str, str]],
    mechanism_values: Iterable[str],
    entries: Iterable[tuple[str, str, str, str, bool]],
    neighbours: dict[int, str],
) -> PageContext:
    """Build a :class:`PageContext` from a page's stored rows (pure).

    ``terms`` are (kind, key, term) page terms in order; ``entries`` are its ingested Related
    Hypotheses lines as (kind, id, title, path, in_progress) in order.
    """
    genes: dict[str, str] = {}
    mechs: list[str] = []
    diseases: list[str] = []
    for kind, key, term in terms:
        if kind == "gene":
            genes.setdefault(key, term)
        elif kind == "mechanism":
            mechs.append(term_key(key))
        elif kind == "disease":
            diseases.append(disease_key(key))
    texts = [k for v in mechanism_values for part in v.replace(",", ";").split(";") if (k := term_key(part))]
    title_key, expanded = _title_diseases(title)
    listed: list[str] = []
    analyses: list[Analysis] = []
    for kind, ref, line_title, path, prog in entries:
        if kind == "hypothesis":
            listed.append(ref)
        elif prog:
            analyses.append(Analysis(id=ref, title=line_title, path=path))
    return PageContext(
        id=page_id, slug=slug, title=title, genes=genes, mechanisms=list(dict.fromkeys(mechs)),
        mechanism_text=list(dict.fromkeys(texts)), diseases=list(dict.fromkeys(diseases + expanded)),
        title_key=title_key, listed=listed, analyses=analyses, neighbours=neighbours,
    )


class RelatedSource(Protocol):
    """Where ranking reads stored data: per page from the database, or preloaded for an export."""

    index: TermIndex

    def page(self, slug: str) -> PageContext:
        """The page's context with its neighbours (NotFoundError for an unknown slug)."""

    def cited(self, slugs: Sequence[str]) -> dict[str, set[str]]:
        """Hypothesis id -> those of ``slugs`` its debates drew evidence from."""

    def gene_targets(self, keys: Sequence[str]) -> Iterable[tuple[str, str, str]]:
        """(hypothesis id, gene key, gene as written) of hypotheses targeting any of ``keys``."""

    def page_terms(self, page_ids: Sequence[int]) -> Iterable[tuple[int, str, str]]:
        """(page id, kind, key) of the terms of these pages."""

    def ranked(self, ids: AbstractSet[str], skip: AbstractSet[str]) -> tuple[list[tuple[float, str]], list[str]]:
        """Of ``ids`` (those in ``skip`` may be left out): (shown score, id) best first (ties by
        id), and the ids with no score to show but a pending debate, sorted. Shown scores follow
        :func:`debate.scores.shown_scores`."""

    def rows(self, ids: Sequence[str]) -> tuple[list[ScoreRow], dict[str, datetime]]:
        """Full score rows and queue times, as :func:`debate.scores.score_rows_queued`."""


def best_first(shown: dict[str, tuple[float | None, bool]]) -> tuple[list[tuple[float, str]], list[str]]:
    """Split id -> (shown score, pending) into scored ids best first and pending unscored ids."""
    scored = sorted(((score, h) for h, (score, _p) in shown.items() if score is not None), key=lambda x: (-x[0], x[1]))
    return scored, sorted(h for h, (score, pending) in shown.items() if score is None and pending)


class DbSource:
    """Reads one page's data with indexed set queries (``related`` command and API)."""

    def __init__(self, session: Session, index: TermIndex | None = None) -> None:
        self.session = session
        self.conn = session.connection()
        self.index = index if index is not None else term_index(session)

    def page(self, slug: str) -> PageContext:
        conn = self.conn
        page = conn.execute(_Q_PAGE, {"slug": slug}).first()
        if page is None:
            raise NotFoundError(f"no KB page with slug {slug!r}")
        pid = {"pid": page.id}
        neighbours = dict(conn.execute(_Q_OUT, pid).all())
        neighbours.update(conn.execute(_Q_IN, {"pid": page.id, "slug": page.slug}).all())
        return page_context(
            page.id, page.slug, page.title, conn.execute(_Q_TERMS, pid).all(),
            conn.execute(_Q_MECH_VALUES, pid).scalars(), conn.execute(_Q_LISTED, pid).all(), neighbours,
        )

    def cited(self, slugs: Sequence[str]) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for hyp, slug in self.conn.execute(_Q_CITED, {"slugs": list(slugs)}):
            out.setdefault(hyp, set()).add(slug)
        return out

    def gene_targets(self, keys: Sequence[str]) -> Iterable[tuple[str, str, str]]:
        keys = list(keys)
        for i in range(0, len(keys), 500):
            yield from self.conn.execute(_Q_GENES, {"keys": keys[i : i + 500]})

    def page_terms(self, page_ids: Sequence[int]) -> Iterable[tuple[int, str, str]]:
        return self.conn.execute(_Q_NEIGHBOUR_TERMS, {"pids": list(page_ids)}) if page_ids else []

    def ranked(self, ids: AbstractSet[str], skip: AbstractSet[str]) -> tuple[list[tuple[float, str]], list[str]]:
        return best_first(shown_scores(self.session, ids - skip, priors=self.index.priors))

    def rows(self, ids: Sequence[str]) -> tuple[list[ScoreRow], dict[str, datetime]]:
        return score_rows_queued(self.session, ids=ids)


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

    Hypotheses related by a listing, a gene or a citation are few and are scored one by one.
    Those related only by mechanism or disease keywords can number thousands: they come as
    shared id sets per level (set algebra, no per-hypothesis work) and get a
    :class:`Candidate` only when they make the list.
    """

    levels: dict[float, set[str]]  # strong candidates by relatedness
    keyword_levels: tuple[tuple[float, frozenset[str]], ...]  # shared sets; strong ids excluded when read
    listed: set[str]
    genes: dict[str, dict[str, str]]  # hypothesis id -> gene key -> spelling
    cited: set[str]
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
            genes=dict(self.genes.get(hyp_id, {})),
            mechanisms=[idx.spelling[(hyp_id, k)] for k in idx.mechs_of.get(hyp_id, ()) if k in self.mech_keys],
            diseases=[idx.spelling[(hyp_id, k)] for k in idx.dis_of.get(hyp_id, ()) if k in self.dis_keys],
            cited=hyp_id in self.cited,
        )


def _direct_candidates(src: RelatedSource, ctx: PageContext, cited: Iterable[str]) -> _Buckets:
    idx = src.index
    genes: dict[str, dict[str, str]] = {}
    for hyp_id, key, gene in src.gene_targets(list(ctx.genes)):
        genes.setdefault(hyp_id, {}).setdefault(key, gene)
    mech_keys: set[str] = set()
    for m in ctx.mechanisms:
        mech_keys |= idx.mechanism_keys(m)
    for m in ctx.mechanism_text:
        mech_keys |= idx.mechanism_keys(m, both_ways=False)
    dis_keys: set[str] = set(idx.disease_keys(ctx.title_key, both_ways=False))
    for d in ctx.diseases:
        dis_keys |= idx.disease_keys(d)
    kw = _keyword_levels(idx, frozenset(mech_keys), frozenset(dis_keys))
    bk = _Buckets(levels={}, keyword_levels=kw.levels, listed=set(ctx.listed), genes=genes, cited=set(cited),
                  mech_keys=frozenset(mech_keys), dis_keys=frozenset(dis_keys))
    strong = bk.listed | genes.keys() | bk.cited
    w = WEIGHTS
    listed, cited_set, counts, diseased = bk.listed, bk.cited, kw.counts, kw.diseased
    # Capped weights by count, looked up rather than computed: this loop runs per candidate.
    gene_r = [min(w["gene"] * n, w["gene_cap"]) for n in range(64)]
    mech_r = [min(w["mechanism"] * n, w["mechanism_cap"]) for n in range(64)]
    no_genes: dict[str, str] = {}
    for hyp_id in strong:
        # Same sum as Candidate.relatedness(); levels only order the reading, ranks are redone.
        r = round(
            (w["listed"] if hyp_id in listed else 0.0)
            + gene_r[min(len(genes.get(hyp_id, no_genes)), 63)]
            + (w["cited"] if hyp_id in cited_set else 0.0)
            + mech_r[min(counts.get(hyp_id, 0), 63)]
            + (w["disease"] if hyp_id in diseased else 0.0),
            6,
        )
        bk.levels.setdefault(r, set()).add(hyp_id)
    return bk


def _linked_only(src: RelatedSource, ctx: PageContext, nb: _Neighbourhood, known: set[str]) -> list[str]:
    """Hypotheses related to the page only through its neighbours (read when the bound needs them)."""
    found: set[str] = set(nb.cited)
    found.update(h for h, _k, _g in src.gene_targets([g for g in nb.genes if g not in ctx.genes]))
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
) -> RelatedList:
    """Load, rank and render the Related Hypotheses list of the page ``slug``.

    Raises :class:`NotFoundError` for an unknown slug. ``index`` lets a caller that builds many
    lists reuse one :class:`TermIndex`; ``prune=False`` reads every candidate's score (for
    checking that pruning changes nothing).
    """
    return related_for(DbSource(session, index), slug, limit=limit, prune=prune)[0]


def related_markdown(engine: Engine, slug: str, *, limit: int = 10) -> str:
    """The section text of one page's list, read in its own session (for scripts and the demo)."""
    from debate.store.db import session_scope  # local: keeps the pure parts free of the engine setup

    with session_scope(engine) as s:
        return load_related(s, slug, limit=limit).markdown


def related_for(
    src: RelatedSource, slug: str, *, limit: int = 10, prune: bool = True
) -> tuple[RelatedList, set[str]]:
    """Rank and render a page's list from ``src``; also the ids of every candidate whose score
    was read (a hypothesis whose score change could move the list is among them, or is listed:
    what an incremental export needs to know).
    """
    idx = src.index
    ctx = src.page(slug)
    cited = src.cited([ctx.slug])
    here = [h for h, slugs in cited.items() if ctx.slug in slugs]
    buckets = _direct_candidates(src, ctx, here)
    # Through the link graph only shared genes and mechanisms count: evidence a debate drew
    # from a neighbour page (often a broad any-term search hit) is too weak a tie on its own.
    hood = _neighbourhood(src, ctx.neighbours, {})
    levels = buckets.ordered()
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
            if h in skip:
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
