"""Target links: hypothesis -> target gene -> KB pages that mention the gene.

A hypothesis names its target genes (``HypothesisTarget``); a page mentions a gene when
ingestion found it there (``PageTerm`` kind ``gene``, with where it was found: ``infobox``,
``fact``, ``text`` or ``related``). Genes match case-insensitively (``gene_key``) and are
shown in HGNC casing as a hypothesis writes them, else as first written on a page.

A debate adds links too: when a finished (``done``) run of a hypothesis targeting the gene drew
evidence from a page that mentions the gene, that page gets the source ``debate`` and the run
id. Links are read with a few set queries; nothing here writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlmodel import Session

from debate.core.genes import gene_key, validate_gene
from debate.store import tables as t
from debate.wiki.scores import score_rows

__all__ = [
    "GeneHypothesis",
    "GeneLinks",
    "PageLink",
    "TargetLink",
    "gene_links",
    "hypothesis_links",
    "target_links_text",
]


class PageLink(BaseModel):
    """A KB page that mentions a gene, and how the link was found."""

    model_config = ConfigDict(extra="forbid")

    slug: str
    title: str
    sources: list[str] = Field(description="infobox | fact | text | related (ingest), debate (a run).")
    runs: list[str] = Field(description="Ids of done runs whose evidence came from this page.")


class TargetLink(BaseModel):
    """One target gene of a hypothesis with the pages that mention it."""

    model_config = ConfigDict(extra="forbid")

    gene: str = Field(description="As the hypothesis writes it (HGNC casing).")
    pages: list[PageLink]


class GeneHypothesis(BaseModel):
    """A hypothesis that targets a gene."""

    model_config = ConfigDict(extra="forbid")

    id: str
    title: str
    gene: str = Field(description="The gene as this hypothesis writes it.")
    shown_score: float | None
    status: str


class GeneLinks(BaseModel):
    """Everything linked to one gene (``debate targets GENE --json``)."""

    model_config = ConfigDict(extra="forbid")

    gene: str
    hypotheses: list[GeneHypothesis]
    pages: list[PageLink]


def _pages_for(session: Session, keys: Sequence[str]) -> dict[str, list[tuple[str, str, str, str]]]:
    """gene key -> [(slug, title, source, term)] for pages mentioning it, by slug."""
    if not keys:
        return {}
    T, P = t.PageTerm, t.Page
    out: dict[str, list[tuple[str, str, str, str]]] = {}
    for key, slug, title, source, term in session.execute(
        select(T.key, P.slug, P.title, T.source, T.term)
        .join(P, P.id == T.page_id)
        .where(T.kind == "gene", T.key.in_(list(keys)))
        .order_by(P.slug, T.id)
    ):
        out.setdefault(key, []).append((slug, title, source, term))
    return out


def _page_links(rows: Iterable[tuple[str, str, str, str]], runs_by_slug: dict[str, list[str]]) -> list[PageLink]:
    pages: dict[str, PageLink] = {}
    for slug, title, source, _term in rows:
        link = pages.get(slug)
        if link is None:
            link = pages[slug] = PageLink(slug=slug, title=title, sources=[], runs=[])
        if source not in link.sources:
            link.sources.append(source)
    for slug, link in pages.items():
        runs = runs_by_slug.get(slug, [])
        if runs:
            link.sources.append("debate")
            link.runs = sorted(set(runs))
    return list(pages.values())


def gene_links(session: Session, gene: str) -> GeneLinks:
    """Hypotheses targeting ``gene`` and pages mentioning it (UserInputError for a bad symbol)."""
    symbol = validate_gene(gene, where="gene")
    key = gene_key(symbol)
    H, HT, R, E = t.Hypothesis, t.HypothesisTarget, t.Run, t.Evidence
    hyp_rows = session.execute(
        select(H.id, H.title, HT.gene).join(HT, HT.hypothesis_id == H.id).where(HT.gene_key == key).order_by(H.id)
    ).all()
    scores = {r.id: r for r in score_rows(session, ids=[h.id for h in hyp_rows])}
    pages = _pages_for(session, [key]).get(key, [])
    runs_by_slug: dict[str, list[str]] = {}
    if pages and hyp_rows:
        for slug, run_id in session.execute(
            select(E.page_slug, R.id)
            .join(R, R.id == E.run_id)
            .join(HT, HT.hypothesis_id == R.hypothesis_id)
            .where(HT.gene_key == key, R.status == "done", E.page_slug.in_([p[0] for p in pages]))
            .distinct()
        ):
            runs_by_slug.setdefault(slug, []).append(run_id)
    shown = hyp_rows[0].gene if hyp_rows else (pages[0][3] if pages else symbol)
    return GeneLinks(
        gene=shown,
        hypotheses=[
            GeneHypothesis(
                id=h.id, title=h.title, gene=h.gene, shown_score=scores[h.id].shown_score, status=scores[h.id].status
            )
            for h in hyp_rows
        ],
        pages=_page_links(pages, runs_by_slug),
    )


def hypothesis_links(session: Session, hyp_id: str) -> list[TargetLink]:
    """Each target gene of a hypothesis, in its order, with the pages that mention it."""
    from debate.kb.hypotheses import get  # local: hypotheses imports the KB stack

    get(session, hyp_id)
    HT, R, E = t.HypothesisTarget, t.Run, t.Evidence
    targets = session.execute(select(HT.gene_key, HT.gene).where(HT.hypothesis_id == hyp_id).order_by(HT.ordinal)).all()
    by_key = _pages_for(session, [k for k, _g in targets])
    runs_by_slug: dict[str, list[str]] = {}
    for slug, run_id in session.execute(
        select(E.page_slug, R.id)
        .join(R, R.id == E.run_id)
        .where(R.hypothesis_id == hyp_id, R.status == "done")
        .distinct()
    ):
        runs_by_slug.setdefault(slug, []).append(run_id)
    return [TargetLink(gene=g, pages=_page_links(by_key.get(k, []), runs_by_slug)) for k, g in targets]


def target_links_text(links: Sequence[TargetLink]) -> str:
    """Plain-text lines for a terminal: one line per gene, then one per page."""
    if not links:
        return "target links: —"
    lines = ["target links:"]
    for link in links:
        lines.append(f"  {link.gene}: {len(link.pages)} page{'s' if len(link.pages) != 1 else ''}")
        for p in link.pages:
            runs = f" (runs {', '.join(p.runs)})" if p.runs else ""
            lines.append(f"    {p.slug} — {p.title} [{', '.join(p.sources)}]{runs}")
    return "\n".join(lines)
