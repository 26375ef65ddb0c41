"""Term matching for mechanism and disease keywords (pure)."""

from __future__ import annotations

from debate.core.diseases import ABBREVIATIONS, disease_key, title_diseases

__all__ = ["DISEASE_ALIASES", "disease_key", "keyword_matches", "title_diseases"]

# Abbreviation -> full disease name; the table lives in debate.core.diseases.
DISEASE_ALIASES = ABBREVIATIONS

# Words too generic to relate anything on their own.
_GENERIC = frozenset({"disease", "diseases", "disorder", "disorders", "syndrome", "mechanism", "pathway"})


def _within(small: str, big: str) -> bool:
    return small == big or f" {small} " in f" {big} "


def keyword_matches(keyword: str, term: str, *, both_ways: bool = True) -> bool:
    """True when two match keys are equal or one holds the other on word boundaries.

    ``both_ways=False`` only lets ``keyword`` be inside ``term`` (for long free-text values).
    """
    if len(keyword) < 3 or len(term) < 3 or keyword in _GENERIC or term in _GENERIC:
        return False
    return _within(keyword, term) or (both_ways and _within(term, keyword))
