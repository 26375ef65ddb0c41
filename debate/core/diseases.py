"""Disease names: the one table of what each disease is called, and the matching built on it.

Each row of :data:`DISEASES` is one disease and every name it goes by, abbreviations included.
Two readers use it:

* Related Hypotheses (:func:`disease_key`): a hypothesis disease and a page disease match on a
  key where abbreviations are expanded to the full name (``ALS`` -> ``amyotrophic lateral
  sclerosis``) and possessives dropped (``Alzheimer's disease`` = ``Alzheimers disease`` =
  ``Alzheimer disease``). Only abbreviations are expanded: ``Alzheimer`` alone stays a shorter
  name that matches inside ``alzheimer disease`` on word boundaries.
* The offline backend (:data:`EVIDENCE_GROUPS`): an evidence item names a hypothesis's disease
  when it names any name of the disease's group. There motor neuron disease, the umbrella term,
  counts as ALS and back, since KB prose uses them interchangeably.
"""

from __future__ import annotations

import re

__all__ = ["ABBREVIATIONS", "DISEASES", "EVIDENCE_GROUPS", "disease_key", "term_key", "title_diseases"]


def term_key(term: str) -> str:
    """Match key for mechanism and disease terms: case-folded words joined by single spaces."""
    return " ".join(re.sub(r"[^a-z0-9]+", " ", term.casefold()).split())


# One disease per row: its names as written in lower case, full name and abbreviations.
# An abbreviation is a one-word name of at most four letters.
DISEASES: tuple[tuple[str, ...], ...] = (
    ("als", "amyotrophic lateral sclerosis"),
    ("motor neuron disease", "mnd"),
    ("alzheimer's disease", "alzheimer", "ad"),
    ("parkinson's disease", "parkinson", "pd"),
    ("frontotemporal dementia", "ftd"),
    ("huntington's disease", "huntington", "hd"),
    ("frontotemporal lobar degeneration", "ftld"),
    ("multiple sclerosis", "ms"),
    ("spinal muscular atrophy", "sma"),
    ("dementia with lewy bodies", "dlb"),
    ("multiple system atrophy", "msa"),
    ("progressive supranuclear palsy", "psp"),
)

# The diseases the offline backend recognises in evidence, by their first names in DISEASES,
# and those merged into one group (ALS with motor neuron disease).
_EVIDENCE: tuple[tuple[str, ...], ...] = (
    ("als", "motor neuron disease"),
    ("alzheimer's disease",),
    ("parkinson's disease",),
    ("frontotemporal dementia",),
    ("huntington's disease",),
)


def _is_abbreviation(name: str) -> bool:
    return " " not in name and len(name) <= 4


def _words(text: str) -> list[str]:
    # "Alzheimer's" reads as "alzheimer s" (dropped) or "alzheimers" (mapped back).
    return [_POSSESSIVE.get(w, w) for w in term_key(text).split() if w != "s"]


_POSSESSIVE: dict[str, str] = {
    n.split("'s ", 1)[0] + "s": n.split("'s ", 1)[0] for names in DISEASES for n in names if "'s " in n
}
# Abbreviation -> the disease's full name as a match key ("ad" -> "alzheimer disease").
ABBREVIATIONS: dict[str, str] = {
    a: " ".join(_words(next(n for n in names if not _is_abbreviation(n))))
    for names in DISEASES
    for a in names
    if _is_abbreviation(a)
}
_BY_FIRST = {names[0]: names for names in DISEASES}
EVIDENCE_GROUPS: tuple[tuple[str, ...], ...] = tuple(
    tuple(n for first in group for n in _BY_FIRST[first]) for group in _EVIDENCE
)


def disease_key(term: str) -> str:
    """Match key for a disease: ``term_key`` without possessives, an abbreviation expanded."""
    key = " ".join(_words(term))
    return ABBREVIATIONS.get(key, key)


def title_diseases(title: str) -> tuple[str, list[str]]:
    """A page title as a disease match key, and the full names of the abbreviations in it."""
    words = _words(title)
    return " ".join(words), [ABBREVIATIONS[w] for w in words if w in ABBREVIATIONS]
