"""What a page offers for matching, built from its stored rows (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from debate.core.diseases import disease_key, term_key, title_diseases
from debate.wiki.related.models import Analysis


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
    title_key, expanded = title_diseases(title)
    listed: list[str] = []
    analyses: list[Analysis] = []
    for kind, ref, line_title, path, prog in entries:
        if kind == "hypothesis":
            listed.append(ref)
        elif prog:
            analyses.append(Analysis(id=ref, title=line_title, path=path))
    return PageContext(
        id=page_id,
        slug=slug,
        title=title,
        genes=genes,
        mechanisms=list(dict.fromkeys(mechs)),
        mechanism_text=list(dict.fromkeys(texts)),
        diseases=list(dict.fromkeys(diseases + expanded)),
        title_key=title_key,
        listed=listed,
        analyses=analyses,
        neighbours=neighbours,
    )
