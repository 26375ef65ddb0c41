"""Verdicts bounded by the evidence: a judge cannot score evidence the debate did not verify.

For the rubric dimensions tied to evidence (``[debate] evidence_dimensions``, default
``evidence_strength``, ``data_availability``, ``reproducibility``) a judge's score is capped at

    cap = min(1, base + slope × verified_rate)        (defaults: base 0.3, slope 0.7)

where ``verified_rate`` is the debate's verified claims over its claims citing evidence (0 when
none cites). A verdict *contradicts* the verification when, before the cap,

- it scores an evidence dimension at least ``contradiction_score`` (0.8) and no claim was
  verified; or
- its rationale cites an evidence id (``E9``) that was not retrieved, or a trial registration
  (``NCT01234567``) that no evidence item mentions.

A contradicted verdict is kept in the transcript but counts as a missing seat in the consensus
(the quorum applies), and the run is marked ``needs_review``. Pure functions, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from pydantic import BaseModel, Field

from debate.core.models import EvidenceItem

EVIDENCE_DIMENSIONS = ("evidence_strength", "data_availability", "reproducibility")

_EID = re.compile(r"\bE\d{1,4}\b")
_TRIAL = re.compile(r"\bNCT\d{8}\b", re.IGNORECASE)


class VerdictBound(BaseModel):
    """How evidence bounds a verdict (recorded with each run's configuration)."""

    dimensions: tuple[str, ...] = Field(EVIDENCE_DIMENSIONS, description="Rubric dimensions capped by evidence.")
    base: float = Field(0.3, ge=0, le=1, description="c: the cap when no claim is verified.")
    slope: float = Field(0.7, ge=0, le=1, description="k: what a fully verified debate adds to the cap.")
    contradiction_score: float = Field(
        0.8, ge=0, le=1, description="An evidence dimension this high with no verified claim contradicts."
    )


class BoundedVerdict(BaseModel):
    """A verdict after the bound: the scores the engine counts and what the bound found."""

    scores: dict[str, float] = Field(description="Dimension scores after the cap (what the overall is made of).")
    cap: float = Field(description="The cap on the evidence dimensions for this debate.")
    capped: dict[str, float] = Field(default_factory=dict, description="Dimension -> the judge's score the cap cut.")
    contradictions: list[str] = Field(
        default_factory=list, description="Why the judge's verdict contradicts the verification (empty: it does not)."
    )


def bound_verdict(
    scores: Mapping[str, float],
    rationale: str,
    *,
    verified: int,
    cited: int,
    evidence: Sequence[EvidenceItem],
    rule: VerdictBound,
) -> BoundedVerdict:
    """``scores`` capped by the debate's verification, and any contradiction of the raw verdict."""
    rate = verified / cited if cited else 0.0
    cap = round(min(1.0, rule.base + rule.slope * rate), 6)
    contradictions: list[str] = []
    if verified == 0:
        high = [d for d in rule.dimensions if scores.get(d, 0.0) >= rule.contradiction_score]
        if high:
            shown = ", ".join(f"{d} {scores[d]:.2f}" for d in high)
            contradictions.append(f"{shown} with no verified claim")
    known = {e.eid for e in evidence}
    ghosts = sorted(set(_EID.findall(rationale)) - known, key=lambda e: int(e[1:]))
    if ghosts:
        contradictions.append(f"rationale cites {', '.join(ghosts)}, not retrieved")
    texts = " ".join(e.text for e in evidence).upper()
    trials = sorted({m.upper() for m in _TRIAL.findall(rationale)} - set(_TRIAL.findall(texts)))
    if trials:
        contradictions.append(f"rationale cites {', '.join(trials)}, which no evidence item mentions")
    bounded = dict(scores)
    capped: dict[str, float] = {}
    for d in rule.dimensions:
        if d in bounded and bounded[d] > cap:
            capped[d] = bounded[d]
            bounded[d] = cap
    return BoundedVerdict(scores=bounded, cap=cap, capped=capped, contradictions=contradictions)
