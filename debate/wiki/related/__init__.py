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
      the one disease table, :mod:`debate.core.diseases` (``ALS`` -> ``amyotrophic lateral sclerosis``),
      and possessives dropped (``Alzheimer's disease`` = ``Alzheimer disease``);
    * **cited** — a claim in one of its debates cited this page's evidence (``CitedPage`` rows,
      written when a run finishes): ``cited`` when at least one such claim's quote was verified
      in the cited item, ``cited-unverified`` when only claims without a verified quote did.
      Evidence a debate only retrieved, that no claim cited, does not count;
    * **linked** — a page in the page's link graph (pages it links to, and up to
      :data:`MAX_INCOMING` pages linking to it) shares a gene or mechanism with it. (Evidence a
      debate drew from a neighbour page does not count: broad any-term search hits made weak ties.)

    Relatedness is therefore not a disease-word match: the seed's ALS page lists hypotheses that
    never name ALS, and a page keeps them because they are listed and share targets.

Relatedness (a sum of weights, :data:`WEIGHTS`)
    listed 1.0 · each shared gene 0.6 (at most 1.2) · each shared mechanism 0.3 (at most 0.6) ·
    a shared disease 0.2 · cited by a verified claim 0.3 (by unverified claims only 0.1) · related
    through linked pages 0.15 (once, however many linked pages connect; they are all named in the
    reasons).

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
    indexed set queries (its terms, links, list as ingested, claims citing it); the export's
    bulk source preloads the same rows once. Mechanism and disease keywords, target genes (and
    the hypotheses per gene) and priors of all hypotheses come from a per-process
    :class:`TermIndex`. Candidates are grouped into levels of known relatedness and read best
    level first, each level best score first: only runs are read (those of all strongly related
    candidates in one query, then those of each keyword level read), and the many candidates
    without a run show their cached prior, in an order memoized per keyword set. Reading stops
    as soon as even the best case (score 1.0 for a level, the next score within one, plus the
    linked weight) ranks below the ``limit``-th rank found. Hypotheses related *only* through
    linked pages are looked up only when that bound lets them in. Full score rows are read for
    the few lines shown. The result equals the exhaustive ranking (``prune=False``; tested).

Modules
    ``models`` (the list's types, weights, best-first order), ``matching`` (term matching),
    ``index`` (the per-process :class:`TermIndex`), ``page`` (what a page offers),
    ``source`` (where ranking reads: :class:`RelatedSource`, :class:`DbSource`), ``ranking``
    (candidates, levels, :func:`related_for`), ``listing`` (the pure list builder) and
    ``render`` (markdown, HTML, JSON).
"""

from debate.wiki.related.index import TermIndex, invalidate_term_index, term_index
from debate.wiki.related.listing import build_list
from debate.wiki.related.matching import DISEASE_ALIASES, disease_key, keyword_matches
from debate.wiki.related.models import (
    BEST_FACTOR,
    HEADER,
    MAX_INCOMING,
    SCORE_BASE,
    WEIGHTS,
    Analysis,
    Candidate,
    Cited,
    RelatedItem,
    RelatedList,
    best_first,
)
from debate.wiki.related.page import PageContext, page_context
from debate.wiki.related.ranking import load_related, related_for, related_markdown
from debate.wiki.related.render import related_json, render_html, render_line, render_markdown
from debate.wiki.related.source import DbSource, RelatedSource, read_cited

__all__ = [
    "BEST_FACTOR",
    "DISEASE_ALIASES",
    "HEADER",
    "MAX_INCOMING",
    "SCORE_BASE",
    "WEIGHTS",
    "Analysis",
    "Candidate",
    "Cited",
    "DbSource",
    "PageContext",
    "RelatedItem",
    "RelatedList",
    "RelatedSource",
    "TermIndex",
    "best_first",
    "build_list",
    "disease_key",
    "invalidate_term_index",
    "keyword_matches",
    "load_related",
    "page_context",
    "read_cited",
    "related_for",
    "related_json",
    "related_markdown",
    "render_html",
    "render_line",
    "render_markdown",
    "term_index",
]
