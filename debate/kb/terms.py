"""Terms a page is about: gene-like symbols, mechanisms and diseases (pure).

Gene detection in free text is a best-effort heuristic (there is no gene list to consult
offline): a token counts when it is gene-shaped (``debate.core.genes.is_gene_symbol``) and either
mixes letters and digits (``SOD1``, ``C9orf72``, ``HSP90AA1``) or is an all-capitals word of
3-8 letters (``FUS``, ``TREM2``), minus a stoplist of common clinical acronyms. Infobox target
rows and Related Hypotheses genes are taken as genes outright. Matching is case-insensitive
through ``gene_key``; a false positive costs little (it only widens relatedness candidates).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from functools import lru_cache

from debate.core.diseases import term_key
from debate.core.genes import gene_key, is_gene_symbol

# Candidates only: a capital letter then letters/digits/hyphens, containing a digit or being
# all capitals (3-8). One regex pass keeps ingest fast; the checks below are on few tokens.
_CANDIDATE = re.compile(r"(?<![A-Za-z0-9-])(?:[A-Z][A-Za-z0-9-]*\d[A-Za-z0-9-]*|[A-Z]{3,8})(?![A-Za-z0-9-])")

# Capitalised words that are not genes but look like them in treatment pages.
STOPLIST = frozenset(
    """ALS FDA ASO ASOS CSF MRI PET NIV TID BID QID EFNS AAN MSC MSCS IPSC FTD PD AD DNA RNA MRNA
    NFL USA EMA NIH NCT PHASE ALSFRS ALSFRS-R BIPAP GABA GABA-B IV CNS PNS ICU HTTP HTTPS WWW
    AND THE FOR WITH NOT ARIA APB CNM CNM-AU8 SOD NOS MCI ADAS-COG CDR CDR-SB UPDRS MDS KB LLM
    AAV AAV9 SMA HD MS PGC PGC-1A SDA OK USD""".split()
)


_DISEASE_SUFFIXES = frozenset({"ALS", "FTD", "PD", "AD", "HD"})


def text_genes(text: str) -> Iterator[str]:
    """Gene-like symbols in free text, in order of appearance (may repeat)."""
    for m in _CANDIDATE.finditer(text):
        gene = _gene_of(m.group(0))
        if gene is not None:
            yield gene


@lru_cache(maxsize=65536)
def _gene_of(candidate: str) -> str | None:
    # Cached: a KB repeats the same few thousand symbols on every page.
    tok = candidate.rstrip("-")
    head, _, tail = tok.partition("-")
    if tail.upper() in _DISEASE_SUFFIXES:  # "SOD1-ALS" names the gene SOD1
        tok = head
    if tok.upper() in STOPLIST or tok.startswith(("NCT", "SDA-")) or not is_gene_symbol(tok):
        return None
    return tok


def unique_terms(terms: Iterable[str], key=gene_key) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """(key, first spelling) for each distinct term."""
    seen: dict[str, str] = {}
    for t in terms:
        k = key(t)
        if k and k not in seen:
            seen[k] = t
    return list(seen.items())


def slug_term(slug: str) -> str:
    """``mechanisms-tdp-43-proteinopathy`` -> ``tdp 43 proteinopathy`` (the term a link names)."""
    _, _, name = slug.partition("-")
    return term_key(name or slug)
