"""The scoring rubric: ten dimensions, their weights, and a judge's weighted overall score.

A judge gives a score in [0, 1] for each of the ten rubric dimensions; the engine (never the
model) turns those into the judge's overall score with :func:`weighted_score`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, field_validator

DIMENSIONS: tuple[str, ...] = (
    "mechanistic_plausibility",
    "evidence_strength",
    "novelty",
    "feasibility",
    "therapeutic_potential",
    "druggability",
    "safety",
    "competitive_landscape",
    "data_availability",
    "reproducibility",
)

DEFAULT_WEIGHTS: dict[str, float] = {
    "mechanistic_plausibility": 0.15,
    "evidence_strength": 0.15,
    "novelty": 0.12,
    "feasibility": 0.12,
    "therapeutic_potential": 0.12,
    "druggability": 0.10,
    "safety": 0.08,
    "competitive_landscape": 0.06,
    "data_availability": 0.05,
    "reproducibility": 0.05,
}

# What a HIGH score means on each dimension (every dimension is oriented so that higher is better).
DIMENSION_DESCRIPTIONS: dict[str, str] = {
    "mechanistic_plausibility": "High = a coherent, biologically sound mechanism links the target to the disease.",
    "evidence_strength": "High = strong, consistent supporting evidence (human genetics, trials, replicated studies).",
    "novelty": "High = a new idea or target not already well explored for this disease.",
    "feasibility": "High = can realistically be tested and developed with current tools, models and resources.",
    "therapeutic_potential": "High = a large expected clinical benefit for patients if the hypothesis holds.",
    "druggability": "High = the target is tractable by known modalities (small molecule, antibody, oligonucleotide).",
    "safety": "High = few or manageable safety concerns (on-target toxicity, essential-gene effects).",
    "competitive_landscape": "High = open field / unmet need, with few competing programmes on this target.",
    "data_availability": "High = relevant datasets, models and assays are readily available.",
    "reproducibility": "High = key findings have been independently replicated and are robust.",
}

# Tolerance on the sum of rubric weights: config files write weights as short decimals.
WEIGHT_SUM_TOLERANCE = 1e-6


def check_unit_value(value: float, what: str) -> float:
    """Return ``value`` as a float, or raise ValueError unless it is finite and in [0, 1]."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(v) or not 0.0 <= v <= 1.0:
        raise ValueError(f"{what} must be in [0, 1], got {value!r}")
    return v


def check_dimension_scores(scores: Mapping[str, float], what: str) -> list[float]:
    """Validate one judge's dimension scores; return them in :data:`DIMENSIONS` order.

    Unknown keys (e.g. a model-supplied ``overall``) are rejected rather than silently ignored:
    the overall score is always computed here, never taken from the model.
    """
    missing = [d for d in DIMENSIONS if d not in scores]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise ValueError(f"{what}: missing dimension {missing[0]!r}{more}")
    unknown = [k for k in scores if k not in DIMENSIONS]
    if unknown:
        raise ValueError(f"{what}: unknown dimension {unknown[0]!r}")
    return [check_unit_value(scores[d], f"{what}: score for {d!r}") for d in DIMENSIONS]


class Rubric(BaseModel):
    """Weights of the ten rubric dimensions: exactly the ten keys, each in [0, 1], summing to 1."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    weights: dict[str, float]

    @field_validator("weights")
    @classmethod
    def _validate_weights(cls, weights: dict[str, float]) -> dict[str, float]:
        for key in weights:
            if key not in DIMENSIONS:
                raise ValueError(f"unknown rubric dimension {key!r} (expected one of: {', '.join(DIMENSIONS)})")
        for key in DIMENSIONS:
            if key not in weights:
                raise ValueError(f"rubric weight for dimension {key!r} is missing")
        for key in DIMENSIONS:
            w = weights[key]
            if not math.isfinite(w) or not 0.0 <= w <= 1.0:
                raise ValueError(f"rubric weight for {key!r} must be in [0, 1], got {w!r}")
        total = math.fsum(weights.values())
        if abs(total - 1.0) > WEIGHT_SUM_TOLERANCE:
            raise ValueError(f"rubric weights must sum to 1, got {total!r}")
        # Canonical order, so serialised rubrics compare and diff cleanly.
        return {key: weights[key] for key in DIMENSIONS}

    @classmethod
    def default(cls) -> Rubric:
        """The wiki's standard rubric (:data:`DEFAULT_WEIGHTS`)."""
        return cls(weights=dict(DEFAULT_WEIGHTS))


def weighted_score(dimension_scores: Mapping[str, float], rubric: Rubric) -> float:
    """A judge's overall score: the rubric-weighted sum of its ten dimension scores.

    Every dimension must be present with a finite score in [0, 1], and no other key may appear;
    otherwise ValueError names the offending dimension. The result is in [0, 1].
    """
    values = check_dimension_scores(dimension_scores, "dimension scores")
    total = math.fsum(rubric.weights[d] * v for d, v in zip(DIMENSIONS, values, strict=True))
    # Weights may sum to 1 ± 1e-6, so keep the overall inside the score range.
    return min(1.0, max(0.0, total))
