"""The scoring rubric and how a judge panel's scores become one consensus score.

A judge gives a score in [0, 1] for each of the ten rubric dimensions; the engine (never the
model) turns those into the judge's overall score with :func:`weighted_score`. The panel's
overall scores and dimension scores are then summarised by :func:`consensus`: a median, an
uncertainty interval, and Krippendorff's alpha as the panel's agreement.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Literal

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, field_validator

if TYPE_CHECKING:  # numpy and krippendorff load on first use: the CLI starts faster
    import numpy as np

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
# Up to this many judges the interval is the plain min–max range; above it, a bootstrap.
RANGE_MAX_JUDGES = 5


def _check_unit_value(value: float, what: str) -> float:
    """Return ``value`` as a float, or raise ValueError unless it is finite and in [0, 1]."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(v) or not 0.0 <= v <= 1.0:
        raise ValueError(f"{what} must be in [0, 1], got {value!r}")
    return v


def _check_dimension_scores(scores: Mapping[str, float], what: str) -> list[float]:
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
    return [_check_unit_value(scores[d], f"{what}: score for {d!r}") for d in DIMENSIONS]


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
    values = _check_dimension_scores(dimension_scores, "dimension scores")
    total = math.fsum(rubric.weights[d] * v for d, v in zip(DIMENSIONS, values, strict=True))
    # Weights may sum to 1 ± 1e-6, so keep the overall inside the score range.
    return min(1.0, max(0.0, total))


class Consensus(BaseModel):
    """A judge panel's combined verdict on one hypothesis."""

    model_config = ConfigDict(frozen=True)

    score: float
    """Median of the judges' overall scores, unrounded."""
    interval: tuple[float, float]
    """Min–max of the judges for up to 5 judges; bootstrap 90% percentile interval of the median above that."""
    interval_method: Literal["range", "bootstrap90"]
    agreement: float | None
    """Krippendorff's alpha (interval metric) over judges × dimensions; None when undefined."""
    n_judges: int


def _bootstrap_median_interval(values: np.ndarray, *, seed: int, n_boot: int) -> tuple[float, float]:
    """5th and 95th percentiles of the medians of ``n_boot`` resamples (with replacement) of ``values``."""
    import numpy as np

    rng = np.random.default_rng(seed)
    idx = rng.integers(0, values.size, size=(n_boot, values.size))
    medians = np.median(values[idx], axis=1)
    lo, hi = np.percentile(medians, [5.0, 95.0])
    return float(lo), float(hi)


def agreement_alpha(matrix: np.ndarray) -> float | None:
    """Krippendorff's alpha (interval metric) for a complete judges × dimensions matrix.

    Degenerate cases, handled here because krippendorff 0.9 raises on them:

    * fewer than two judges: agreement is undefined -> ``None`` (the library raises
      "at least one unit with values assigned by at least two coders");
    * every value identical (no variance at all): the judges cannot disagree -> ``1.0``
      (the library raises "more than one value in the domain");
    * any non-finite result from the library (0/0 expected disagreement) -> ``None``.
    """
    import krippendorff
    import numpy as np

    if matrix.ndim != 2 or matrix.shape[0] < 2 or matrix.shape[1] < 1:
        return None
    if np.all(matrix == matrix.flat[0]):
        return 1.0
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        value = float(krippendorff.alpha(reliability_data=matrix, level_of_measurement="interval"))
    return value if math.isfinite(value) else None


def consensus(
    judge_overall: Sequence[float],
    judge_dimensions: Sequence[Mapping[str, float]],
    *,
    seed: int = 0,
    n_boot: int = 2000,
) -> Consensus:
    """Combine a judge panel's scores into a :class:`Consensus`.

    ``judge_overall[i]`` is judge *i*'s overall score (from :func:`weighted_score`) and
    ``judge_dimensions[i]`` its ten dimension scores; both lists must have one entry per judge,
    at least one judge, and every score in [0, 1] (ValueError otherwise).

    * ``score``: the median of the overall scores (mean of the two middle ones for an even panel).
    * ``interval``: for up to 5 judges the min–max range; above that the 5th–95th percentile of
      ``n_boot`` bootstrap medians, resampling judges with a NumPy generator seeded by ``seed``
      (same inputs and seed -> same interval). The bootstrap interval is widened, if ever needed,
      to contain ``score``.
    * ``agreement``: Krippendorff's alpha, see :func:`agreement_alpha` for the degenerate cases.
    """
    import numpy as np

    n = len(judge_overall)
    if n < 1:
        raise ValueError("consensus needs at least one judge")
    if len(judge_dimensions) != n:
        raise ValueError(f"got {n} overall scores but {len(judge_dimensions)} sets of dimension scores")
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")

    overall = np.array(
        [_check_unit_value(x, f"judge {i} overall score") for i, x in enumerate(judge_overall)], dtype=float
    )
    matrix = np.array(
        [_check_dimension_scores(dims, f"judge {i}") for i, dims in enumerate(judge_dimensions)], dtype=float
    )

    score = float(np.median(overall))
    method: Literal["range", "bootstrap90"]
    if n <= RANGE_MAX_JUDGES:
        interval = (float(overall.min()), float(overall.max()))
        method = "range"
    else:
        lo, hi = _bootstrap_median_interval(overall, seed=seed, n_boot=n_boot)
        # A percentile interval can in principle miss the point estimate; a shown score outside
        # its own interval would read as a bug.
        interval = (min(lo, score), max(hi, score))
        method = "bootstrap90"

    return Consensus(
        score=score,
        interval=interval,
        interval_method=method,
        agreement=agreement_alpha(matrix),
        n_judges=n,
    )
