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
      :data:`MAX_INCOMING` pages linking to it) shares a gene or mechanism with it, or one of its
      debates drew evidence from that page.

    Relatedness is therefore not a disease-word match: the seed's ALS page lists hypotheses that
    never name ALS, and a page keeps them because they are listed and share targets.

Relatedness (a sum of weights, :data:`WEIGHTS`)
    listed 1.0 · each shared gene 0.6 (at most 1.2) · each shared mechanism 0.3 (at most 0.6) ·
    a shared disease 0.2 · cited this page 0.3 · each connecting linked page 0.15 (at most 0.3).

Ranking and display
    ``rank = relatedness × (0.5 + shown_score)``: a strongly related hypothesis with a middling
    score outranks a loosely related one with a high score, and the score still decides among
    equally related ones. The top ``limit`` hypotheses that have a score to show, by rank (ties:
    higher score, then title), are listed and then *displayed* by shown score, highest first
    (unrounded; ties by title). After them come in-progress lines, never with a number: the
    page's in-progress analyses in their original order, then candidates with no score to show
    whose debate is queued or running, in queue order (the most related ``limit`` of them).

Loading
    :func:`load_related` reads only what it needs: indexed set queries for the page's terms,
    links and gene matches; mechanism and disease keywords of all hypotheses from a per-process
    :class:`TermIndex` (revalidated by a fingerprint of the hypotheses table on each use); and
    scores for candidates in batches by decreasing relatedness, stopping once no unread
    candidate could still enter the list (its best possible rank, at score 1.0, is below the
    ``limit``-th rank found). Hypotheses related *only* through linked pages are read only when
    that bound requires. The result equals the exhaustive ranking (``prune=False``).
"""

from __future__ import annotations

import heapq
import html
import json
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlmodel import Session

from debate.errors import NotFoundError
from debate.genes import gene_key, join_target_label
from debate.kb.terms import term_key
from debate.scores import ScoreRow, score_rows
from debate.scoring import display_score, score_color, score_span
from debate.store import tables as t

__all__ = [
    "DISEASE_ALIASES",
    "HEADER",
    "WEIGHTS",
    "Candidate",
    "PageContext",
    "RelatedItem",
    "RelatedList",
    "TermIndex",
    "build_list",
    "disease_key",
    "keyword_matches",
    "load_related",
    "related_json",
    "render_html",
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
    "linked": 0.15, "linked_cap": 0.3,
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
        r += min(w["linked"] * len(self.linked), w["linked_cap"])
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


def render_line(item: RelatedItem) -> str:
    """One list line in the wiki's format, ending with a newline."""
    link = f"- [{item.title}]({item.path})"
    if item.in_progress or item.score is None:
        return f"{link} 🔄\n"
    target = f" · Target: {item.target_label}" if item.target_label else ""
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
    return json.dumps(rl.model_dump(mode="json"), ensure_ascii=False, indent=2) + "\n"


# ---------------------------------------------------------------- mechanism/disease index


@dataclass
class TermIndex:
    """Mechanism and disease keywords of every hypothesis, inverted for lookup by page terms.

    Neither keyword list has an indexed table, and scanning 50,000 JSON rows per page costs
    more than a whole list should; the index is built once per process and rebuilt when the
    hypotheses table's fingerprint (row count, latest update) moves.
    """

    fingerprint: tuple
    mech_ids: dict[str, list[str]] = field(default_factory=dict)
    dis_ids: dict[str, list[str]] = field(default_factory=dict)
    mech_words: dict[str, set[str]] = field(default_factory=dict)
    dis_words: dict[str, set[str]] = field(default_factory=dict)
    mechs_of: dict[str, tuple[str, ...]] = field(default_factory=dict)
    spelling: dict[tuple[str, str], str] = field(default_factory=dict)  # (hyp id, key) -> as written

    def add(self, hyp_id: str, mechanisms: Iterable[str], diseases: Iterable[str]) -> None:
        mkeys: list[str] = []
        for m in mechanisms:
            k = term_key(m)
            if k and k not in mkeys:
                mkeys.append(k)
                self.spelling[(hyp_id, k)] = m
                self.mech_ids.setdefault(k, []).append(hyp_id)
                for w in k.split():
                    self.mech_words.setdefault(w, set()).add(k)
        if mkeys:
            self.mechs_of[hyp_id] = tuple(mkeys)
        seen: set[str] = set()
        for d in diseases:
            k = disease_key(d)
            if k and k not in seen:
                seen.add(k)
                self.spelling[(hyp_id, k)] = d
                self.dis_ids.setdefault(k, []).append(hyp_id)
                for w in k.split():
                    self.dis_words.setdefault(w, set()).add(k)

    @staticmethod
    def _keys(phrase: str, words: dict[str, set[str]], both_ways: bool) -> set[str]:
        pool: set[str] = set()
        for w in phrase.split():
            pool |= words.get(w, set())
        return {k for k in pool if keyword_matches(k, phrase, both_ways=both_ways)}

    def mechanism_keys(self, phrase: str, *, both_ways: bool = True) -> set[str]:
        """Hypothesis mechanism keys matching a page phrase."""
        return self._keys(phrase, self.mech_words, both_ways)

    def disease_keys(self, phrase: str, *, both_ways: bool = True) -> set[str]:
        """Hypothesis disease keys matching a page phrase."""
        return self._keys(phrase, self.dis_words, both_ways)


_INDEX_LOCK = threading.Lock()
_INDEXES: dict[str, TermIndex] = {}


def _fingerprint(session: Session) -> tuple:
    H = t.Hypothesis
    n, latest = session.execute(select(func.count(), func.max(H.updated_at))).one()
    return (n, str(latest))


def term_index(session: Session) -> TermIndex:
    """The process's :class:`TermIndex` for this database, rebuilt when hypotheses changed."""
    key = str(session.get_bind().engine.url)
    fp = _fingerprint(session)
    with _INDEX_LOCK:
        idx = _INDEXES.get(key)
        if idx is not None and idx.fingerprint == fp:
            return idx
    H = t.Hypothesis
    idx = TermIndex(fingerprint=fp)
    for hyp_id, mechs, dis in session.execute(select(H.id, H.mechanisms, H.diseases)):
        if mechs or dis:
            idx.add(hyp_id, mechs or [], dis or [])
    with _INDEX_LOCK:
        _INDEXES[key] = idx
    return idx


# ---------------------------------------------------------------- loading (I/O)


@dataclass
class PageContext:
    """What a page offers for matching: its terms, list as ingested and link-graph neighbours."""

    id: int
    slug: str
    title: str
    genes: dict[str, str]  # gene key -> spelling on the page
    mechanisms: list[str]  # mechanism match keys (both-ways)
    mechanism_text: list[str]  # Mechanism fact/infobox values (keyword must be inside)
    diseases: list[str]  # disease match keys (both-ways)
    title_key: str
    listed: list[str]
    analyses: list[Analysis]
    out_links: dict[int, str]  # page id -> slug
    neighbours: dict[int, str] = field(default_factory=dict)


def _page_context(s: Session, slug: str) -> PageContext:
    P = t.Page
    page = s.execute(select(P.id, P.slug, P.title).where(P.slug == slug)).first()
    if page is None:
        raise NotFoundError(f"no KB page with slug {slug!r}")
    genes: dict[str, str] = {}
    mechs: list[str] = []
    diseases: list[str] = []
    T = t.PageTerm
    for kind, key, term in s.execute(select(T.kind, T.key, T.term).where(T.page_id == page.id)):
        if kind == "gene":
            genes.setdefault(key, term)
        elif kind == "mechanism":
            mechs.append(term_key(key))
        elif kind == "disease":
            diseases.append(disease_key(key))
    texts: list[str] = []
    F, I = t.Fact, t.InfoboxRow
    values = list(s.execute(select(F.value).where(F.page_id == page.id, func.lower(F.key) == "mechanism")).scalars())
    values += s.execute(select(I.value).where(I.page_id == page.id, I.column_name == "Mechanism")).scalars()
    for v in values:
        texts += [k for part in v.replace(",", ";").split(";") if (k := term_key(part))]
    title_key, expanded = _title_diseases(page.title)
    R = t.RelatedEntry
    listed: list[str] = []
    analyses: list[Analysis] = []
    for kind, ref, title, path, prog in s.execute(
        select(R.kind, R.ref_id, R.title, R.path, R.in_progress).where(R.page_id == page.id).order_by(R.ordinal)
    ):
        if kind == "hypothesis":
            listed.append(ref)
        elif prog:
            analyses.append(Analysis(id=ref, title=title, path=path))
    L = t.Link
    out_slugs = set(s.execute(
        select(L.target_slug).where(L.page_id == page.id, L.target_slug.is_not(None))
    ).scalars()) - {page.slug}
    out_links = dict(s.execute(select(P.id, P.slug).where(P.slug.in_(out_slugs))).all()) if out_slugs else {}
    return PageContext(
        id=page.id, slug=page.slug, title=page.title, genes=genes, mechanisms=list(dict.fromkeys(mechs)),
        mechanism_text=list(dict.fromkeys(texts)), diseases=list(dict.fromkeys(diseases + expanded)),
        title_key=title_key, listed=listed, analyses=analyses, out_links=out_links,
    )


def _incoming(s: Session, ctx: PageContext) -> dict[int, str]:
    L, P = t.Link, t.Page
    rows = s.execute(
        select(P.id, P.slug).join(L, L.page_id == P.id).where(L.target_slug == ctx.slug, P.id != ctx.id)
        .distinct().order_by(P.slug).limit(MAX_INCOMING)
    ).all()
    return dict(rows)


def _cited(s: Session, slugs: Iterable[str]) -> dict[str, set[str]]:
    """Hypothesis id -> page slugs (of ``slugs``) its debates drew evidence from."""
    slugs = list(slugs)
    if not slugs:
        return {}
    E, R = t.Evidence, t.Run
    out: dict[str, set[str]] = {}
    for hyp, slug in s.execute(
        select(R.hypothesis_id, E.page_slug).join(R, R.id == E.run_id).where(E.page_slug.in_(slugs)).distinct()
    ):
        out.setdefault(hyp, set()).add(slug)
    return out


@dataclass
class _Neighbourhood:
    """Genes and mechanisms of the page's link-graph neighbours, for the ``linked`` feature."""

    genes: dict[str, set[str]] = field(default_factory=dict)  # gene key -> neighbour slugs
    mechanisms: dict[str, set[str]] = field(default_factory=dict)  # mechanism key -> slugs
    cited: dict[str, set[str]] = field(default_factory=dict)  # hyp id -> slugs

    def linked(self, targets: Iterable[str], mech_keys: Iterable[str]) -> set[str]:
        out: set[str] = set()
        for g in targets:
            out |= self.genes.get(gene_key(g), set())
        for k in mech_keys:
            for m, slugs in self.mechanisms.items():
                if keyword_matches(k, m):
                    out |= slugs
        return out


def _neighbourhood(s: Session, neighbours: dict[int, str]) -> _Neighbourhood:
    nb = _Neighbourhood()
    if not neighbours:
        return nb
    T = t.PageTerm
    for page_id, kind, key in s.execute(
        select(T.page_id, T.kind, T.key).where(T.page_id.in_(list(neighbours)), T.kind.in_(("gene", "mechanism")))
    ):
        target = nb.genes if kind == "gene" else nb.mechanisms
        target.setdefault(key if kind == "gene" else term_key(key), set()).add(neighbours[page_id])
    nb.cited = _cited(s, neighbours.values())
    return nb


def _direct_candidates(s: Session, ctx: PageContext, idx: TermIndex) -> dict[str, Candidate]:
    cands: dict[str, Candidate] = {}

    def get(hyp_id: str) -> Candidate:
        c = cands.get(hyp_id)
        if c is None:
            c = cands[hyp_id] = Candidate(id=hyp_id)
        return c

    for hyp_id in ctx.listed:
        get(hyp_id).listed = True
    if ctx.genes:
        HT = t.HypothesisTarget
        for hyp_id, key, gene in s.execute(
            select(HT.hypothesis_id, HT.gene_key, HT.gene).where(HT.gene_key.in_(list(ctx.genes)))
        ):
            get(hyp_id).genes.setdefault(key, gene)
    keys: set[str] = set()
    for m in ctx.mechanisms:
        keys |= idx.mechanism_keys(m)
    for m in ctx.mechanism_text:
        keys |= idx.mechanism_keys(m, both_ways=False)
    for k in sorted(keys):
        for hyp_id in idx.mech_ids.get(k, ()):
            get(hyp_id).mechanisms.append(idx.spelling[(hyp_id, k)])
    dkeys: set[str] = set()
    for d in ctx.diseases:
        dkeys |= idx.disease_keys(d)
    dkeys |= idx.disease_keys(ctx.title_key, both_ways=False)
    for k in sorted(dkeys):
        for hyp_id in idx.dis_ids.get(k, ()):
            c = get(hyp_id)
            c.diseases.append(idx.spelling[(hyp_id, k)])
    for hyp_id in _cited(s, [ctx.slug]):
        get(hyp_id).cited = True
    return cands


def _linked_only(s: Session, ctx: PageContext, nb: _Neighbourhood, idx: TermIndex,
                 known: set[str]) -> list[str]:
    """Hypotheses related to the page only through its neighbours (read when the bound needs them)."""
    found: set[str] = {h for h in nb.cited if h not in known}
    genes = [g for g in nb.genes if g not in ctx.genes]
    HT = t.HypothesisTarget
    for i in range(0, len(genes), 500):
        found |= set(s.execute(
            select(HT.hypothesis_id).where(HT.gene_key.in_(genes[i : i + 500]))
        ).scalars())
    for m in nb.mechanisms:
        for k in idx.mechanism_keys(m):
            found.update(idx.mech_ids.get(k, ()))
    return sorted(found - known)


def _queued_at(s: Session, ids: Sequence[str]) -> dict[str, datetime]:
    if not ids:
        return {}
    R = t.Run
    rows = s.execute(
        select(R.hypothesis_id, func.min(R.created_at))
        .where(R.hypothesis_id.in_(list(ids)), R.status.in_(("queued", "running")))
        .group_by(R.hypothesis_id)
    ).all()
    return {h: at for h, at in rows}


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
    ctx = _page_context(session, slug)
    idx = index if index is not None else term_index(session)
    cands = _direct_candidates(session, ctx, idx)
    ctx.neighbours = {**ctx.out_links}
    nb: _Neighbourhood | None = None
    linked_slack = WEIGHTS["linked_cap"]

    def need_neighbours() -> _Neighbourhood:
        nonlocal nb
        if nb is None:
            ctx.neighbours.update(_incoming(session, ctx))
            nb = _neighbourhood(session, ctx.neighbours)
        return nb

    if not prune:
        need_neighbours()
    # Pending candidates, best possible relatedness first (a linked page may add up to the cap).
    pending = sorted(cands.values(), key=lambda c: (-c.relatedness(), c.id))
    evaluated: list[tuple[Candidate, ScoreRow]] = []
    best: list[float] = []  # min-heap of the top `limit` ranks so far
    tier2_done = False
    i = 0
    batch = max(4 * limit, 64)
    while True:
        if i >= len(pending):
            if tier2_done:
                break
            tier2_done = True
            bound = linked_slack * BEST_FACTOR
            if prune and len(best) >= limit and bound < best[0]:
                break
            more = _linked_only(session, ctx, need_neighbours(), idx, set(cands))
            if not more:
                break
            for h in more:
                cands[h] = Candidate(id=h)
            pending += [cands[h] for h in more]
            continue
        head = pending[i]
        if prune and len(best) >= limit and (head.relatedness() + linked_slack) * BEST_FACTOR < best[0]:
            break
        chunk = pending[i : i + batch]
        i += len(chunk)
        batch *= 2
        rows = score_rows(session, ids=[c.id for c in chunk])
        byid = {c.id: c for c in chunk}
        hood = need_neighbours()
        for row in rows:
            c = byid[row.id]
            c.linked = hood.linked(row.targets, idx.mechs_of.get(c.id, ())) | hood.cited.get(c.id, set())
            evaluated.append((c, row))
            if row.shown_score is not None:
                rank = c.relatedness() * (SCORE_BASE + row.shown_score)
                if len(best) < limit:
                    heapq.heappush(best, rank)
                elif rank > best[0]:
                    heapq.heapreplace(best, rank)
    waiting = [row.id for _c, row in evaluated if row.shown_score is None and row.status in ("queued", "running")]
    return build_list(ctx.slug, ctx.title, limit, evaluated, ctx.analyses, _queued_at(session, waiting))
