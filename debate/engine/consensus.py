"""How a judge panel's scores become one consensus score.

The panel's overall scores (each from :func:`debate.core.rubric.weighted_score`) and dimension
scores are summarised by :func:`consensus`: a median, an uncertainty interval, and
Krippendorff's alpha as the panel's agreement.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict

from debate.core.rubric import check_dimension_scores, check_unit_value

if TYPE_CHECKING:  # numpy and krippendorff load on first use: the CLI starts faster
    import numpy as np

# Up to this many judges the interval is the plain min–max range; above it, a bootstrap.
RANGE_MAX_JUDGES = 5


class Consensus(BaseModel):
    """A judge panel's combined verdict on one hypothesis."""

    model_config = ConfigDict(frozen=True)

    score: float
    """Median of the judges' overall scores, unrounded."""
    interval: tuple[float, float]
    """Min–max of the judges for up to 5 judges; bootstrap 90% percentile interval of the median above that."""
    interval_method: Literal["range", "bootstrap90"]
    agreement: float | None
    """Krippendorff's alpha (interval metric) over judges × dimensions; None when not applicable:
    one judge, no variance at all, or deterministic judges whose verdicts are identical (they
    cannot disagree, so their agreement measures nothing)."""
    n_judges: int
    """Judges whose verdicts were counted (a failed judge's seat stays empty)."""


def quorum_needed(quorum: int, seated: int) -> int:
    """Valid verdicts a panel of ``seated`` judges needs: ``quorum`` (at most the panel), or a
    majority when it is 0."""
    return min(quorum, seated) if quorum > 0 else seated // 2 + 1


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
    * every value identical (no variance at all): alpha is 0/0 and agreement is not applicable
      -> ``None`` (the library raises "more than one value in the domain");
    * any non-finite result from the library (0/0 expected disagreement) -> ``None``.
    """
    import krippendorff
    import numpy as np

    if matrix.ndim != 2 or matrix.shape[0] < 2 or matrix.shape[1] < 1:
        return None
    if np.all(matrix == matrix.flat[0]):
        return None
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
    deterministic: bool = False,
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
      With ``deterministic`` (judges that are fixed functions of the same inputs: the offline
      heuristic), identical verdicts from every judge mean they could not disagree, and the
      agreement is None (not applicable) rather than 1.0.
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
        [check_unit_value(x, f"judge {i} overall score") for i, x in enumerate(judge_overall)], dtype=float
    )
    matrix = np.array(
        [check_dimension_scores(dims, f"judge {i}") for i, dims in enumerate(judge_dimensions)], dtype=float
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

    cannot_disagree = deterministic and bool(np.all(matrix == matrix[0]))
    return Consensus(
        score=score,
        interval=interval,
        interval_method=method,
        agreement=None if cannot_disagree else agreement_alpha(matrix),
        n_judges=n,
    )
