"""Judge scoring: dimensions as linear functions of features, weighted by each seat's persona."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from debate.core.protocol import DebateView, JudgeSeat
from debate.core.quotes import QuoteRule, mark_claims
from debate.offline.case import _Case, _frac
from debate.offline.rules import (
    CONFIDENCE_MODEL,
    CONFIDENCE_RANGE,
    DIMENSION_MODEL,
    EMPHASIS_BONUS,
    EMPHASIS_PENALTY,
)


@dataclass(frozen=True, slots=True)
class _JudgeInputs:
    values: dict[str, float]
    ids: dict[str, tuple[str, ...]]  # feature -> the evidence ids behind it, for the rationale


def _judge_inputs(case: _Case, view: DebateView) -> _JudgeInputs:
    known = case.by_id
    p_cited: set[str] = set()
    c_cited: set[str] = set()
    invalid: set[str] = set()
    for t in view.turns:
        # Unverified claims count for nothing: only a claim whose quote was found in the item
        # it cites lends that item to a side. (Marked here when the view came unmarked.)
        marks = t.marks or tuple(mark_claims(t.reply.claims, view.evidence, QuoteRule()))
        verified = {m.claim for m in marks if m.mark == "verified"}
        for i, claim in enumerate(t.reply.claims):
            for eid in claim.evidence_ids:
                if eid not in known:
                    invalid.add(eid)
                elif i not in verified:
                    continue
                elif t.role == "proposer":
                    p_cited.add(eid)
                else:
                    c_cited.add(eid)
    # Sets in evidence order: neither turn order nor the order the sides are shown in matters.
    p = [known[e] for e in sorted(p_cited, key=case.order.__getitem__)]
    c = [known[e] for e in sorted(c_cited, key=case.order.__getitem__)]
    on_ids = {f.eid for f in case.on_target}
    cited = {
        "cited_support": [f.eid for f in p if f.relevant],
        "approved_cited": [f.eid for f in p if "approved" in f.flags and f.eid in on_ids],
        "late_cited": [f.eid for f in p if "late_trial" in f.flags and not f.bad_news and f.eid in on_ids],
        "failed_cited_by_critic": [f.eid for f in c if "failed" in f.flags and f.relevant],
        "halted_cited_by_critic": [f.eid for f in c if "halted" in f.flags and f.relevant],
        "safety_cited_by_critic": [f.eid for f in c if "safety_signal" in f.flags and f.relevant],
        "invalid_citations": sorted(invalid),
    }
    values = {
        "cited_support": _frac(len(cited["cited_support"]), 4),
        "approved_cited": float(bool(cited["approved_cited"])),
        "late_cited": float(bool(cited["late_cited"])),
        "failed_cited_by_critic": _frac(len(cited["failed_cited_by_critic"]), 2),
        "halted_cited_by_critic": _frac(len(cited["halted_cited_by_critic"]), 2),
        "safety_cited_by_critic": _frac(len(cited["safety_cited_by_critic"]), 2),
        "invalid_citations": _frac(len(invalid), 3),
        **case.values,
    }
    return _JudgeInputs(values, {**case.ids, **{k: tuple(v) for k, v in cited.items()}})


@lru_cache(maxsize=64)
def _seat_model(emphasis: frozenset[str]) -> tuple[tuple[str, float, tuple[tuple[str, float], ...]], ...]:
    """:data:`DIMENSION_MODEL` with a persona's emphasis applied to the weights."""
    return tuple(
        (
            d,
            base,
            tuple((f, w * (EMPHASIS_PENALTY if w < 0 else EMPHASIS_BONUS) if d in emphasis else w) for f, w in terms),
        )
        for d, (base, terms) in DIMENSION_MODEL.items()
    )


def judge_scores(
    values: dict[str, float], seat: JudgeSeat
) -> tuple[dict[str, float], dict[str, list[tuple[str, float]]]]:
    """One seat's dimension scores from judge feature values, and each dimension's terms.

    ``score = clip(base + sum(w' * feature))``, rounded to 4 decimals, where ``w' = w`` except
    on the seat's emphasised dimensions: ``w * EMPHASIS_PENALTY`` for penalties and
    ``w * EMPHASIS_BONUS`` for bonuses. Nothing else differs between seats (no hash, no random
    offset): two seats disagree on a dimension only where one emphasises it and a feature it
    weighs is non-zero.
    """
    scores: dict[str, float] = {}
    terms: dict[str, list[tuple[str, float]]] = {}
    for d, base, model in _seat_model(frozenset(seat.emphasis)):
        contrib = [(f, w * values[f]) for f, w in model]
        total = base
        for _, c in contrib:
            total += c
        scores[d] = round(min(1.0, max(0.0, total)), 4)
        terms[d] = contrib
    return scores, terms


def _confidence(values: dict[str, float]) -> float:
    base, model = CONFIDENCE_MODEL
    lo, hi = CONFIDENCE_RANGE
    return round(min(hi, max(lo, base + sum(w * values[f] for f, w in model))), 4)
