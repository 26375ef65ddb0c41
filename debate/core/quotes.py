"""Quote verification: does a claim's quote appear in the evidence it cites?

A claim cites evidence ids and quotes a short verbatim passage from one of them. The engine
checks the quote against the cited items' stored text and gives the claim one mark:

- ``verified``: the quote is found in a cited item (``eid`` names it);
- ``quote-not-found``: no cited item holds it, or it is shorter than ``min_chars``;
- ``not-retrieved``: the claim cites an id that names no evidence retrieved for the run;
- ``uncited``: the claim cites nothing (it can be argued, never verified).

Matching ignores case, Unicode compatibility forms and runs of whitespace. An exact match
after that scores 100; otherwise rapidfuzz's ``partial_ratio`` compares the quote with every
window of the item of the quote's length (0-100), and ``threshold`` decides. A quote longer
than the item is never fuzzy-matched: it would have to add words the item does not hold.

Judges see the marks, and only verified claims count as evidence (see the judge prompt and
:mod:`debate.offline.judge`). Pure functions: no I/O, deterministic.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Literal

from pydantic import BaseModel, Field
from rapidfuzz import fuzz

from debate.core.models import Claim, EvidenceItem

Mark = Literal["verified", "quote-not-found", "not-retrieved", "uncited"]
MARKS: tuple[Mark, ...] = ("verified", "quote-not-found", "not-retrieved", "uncited")

DEFAULT_THRESHOLD = 90.0
DEFAULT_MIN_CHARS = 20

_SPACE = re.compile(r"\s+")
# Quote marks and ellipses a writer puts around a quotation are not part of it.
_WRAP = " \t\r\n\"'`“”‘’«»….,;:"


class QuoteRule(BaseModel):
    """How strictly quotes are checked (recorded with each run's configuration)."""

    threshold: float = Field(DEFAULT_THRESHOLD, ge=50, le=100, description="Fuzzy match score (0-100) a quote needs.")
    min_chars: int = Field(DEFAULT_MIN_CHARS, ge=1, le=500, description="Shorter quotes are never verified.")


class ClaimMark(BaseModel):
    """The verification mark of one claim."""

    claim: int = Field(description="0-based index of the claim in its turn.")
    mark: Mark = Field(description="verified | quote-not-found | not-retrieved | uncited.")
    eid: str | None = Field(
        None, description="verified: the item holding the quote; not-retrieved: the first unknown id."
    )
    score: float | None = Field(None, description="Best match score (0-100) among the cited items, when checked.")


def normalize(text: str) -> str:
    """Case-folded NFKC text with whitespace runs collapsed to one space."""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text)).strip().casefold()


def clean_quote(quote: str) -> str:
    """The quote as matched: normalized, without the quotation marks or ellipses around it."""
    return normalize(quote).strip(_WRAP)


def match_score(quote: str, text: str) -> float:
    """How well cleaned ``quote`` matches some window of normalized ``text``, 0-100."""
    if not quote:
        return 0.0
    if quote in text:
        return 100.0
    if len(quote) > len(text):
        return 0.0
    return float(fuzz.partial_ratio(quote, text))


def mark_claim(index: int, claim: Claim, texts: dict[str, str], rule: QuoteRule) -> ClaimMark:
    """``claim``'s mark, given each retrieved item's normalized text by id."""
    if not claim.evidence_ids:
        return ClaimMark(claim=index, mark="uncited")
    unknown = next((e for e in claim.evidence_ids if e not in texts), None)
    if unknown is not None:
        return ClaimMark(claim=index, mark="not-retrieved", eid=unknown)
    quote = clean_quote(claim.quote)
    best, where = 0.0, None
    for eid in dict.fromkeys(claim.evidence_ids):
        s = match_score(quote, texts[eid])
        if s > best:
            best, where = s, eid
    if len(quote) < rule.min_chars or best < rule.threshold:
        return ClaimMark(claim=index, mark="quote-not-found", score=round(best, 1))
    return ClaimMark(claim=index, mark="verified", eid=where, score=round(best, 1))


def evidence_texts(evidence: Iterable[EvidenceItem]) -> dict[str, str]:
    return {e.eid: normalize(e.text) for e in evidence}


def mark_claims(
    claims: Sequence[Claim], evidence: Iterable[EvidenceItem] | dict[str, str], rule: QuoteRule
) -> list[ClaimMark]:
    """Every claim's mark against the run's evidence (or its :func:`evidence_texts`)."""
    texts = evidence if isinstance(evidence, dict) else evidence_texts(evidence)
    return [mark_claim(i, c, texts, rule) for i, c in enumerate(claims)]


def verified_count(marks: Iterable[ClaimMark]) -> tuple[int, int]:
    """(verified claims, claims citing evidence): an uncited claim ("no item names X") asserts
    no support, so it is neither verified nor counted against the rate."""
    ms = [m for m in marks if m.mark != "uncited"]
    return sum(m.mark == "verified" for m in ms), len(ms)


def verified_rate(verified: int | None, total: int | None) -> float | None:
    """The share of a run's claims verified; None when not counted or there were none."""
    if verified is None or not total:
        return None
    return verified / total
