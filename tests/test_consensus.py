"""Specification of the rubric, the weighted overall score and the panel consensus."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest

from debate.core.rubric import (
    DEFAULT_WEIGHTS,
    DIMENSION_DESCRIPTIONS,
    DIMENSIONS,
    Rubric,
    weighted_score,
)
from debate.engine.consensus import Consensus, consensus

# --------------------------------------------------------------------------- helpers


def uniform(value: float) -> dict[str, float]:
    """Dimension scores with every dimension at ``value``."""
    return {d: value for d in DIMENSIONS}


def from_list(values: list[float]) -> dict[str, float]:
    """Dimension scores from ten values in DIMENSIONS order."""
    return dict(zip(DIMENSIONS, values, strict=True))


def reference_interval_alpha(matrix: list[list[float]]) -> float:
    """Krippendorff's alpha, interval metric, complete data, straight from the definition.

    alpha = 1 - D_o / D_e with n = m * N pairable values (m coders, N units):
    D_o = 1/n * sum_u 1/(m - 1) * sum_{i != j} (v_iu - v_ju)^2   (within-unit disagreement)
    D_e = 1/(n (n - 1)) * sum_{c != k} (v_c - v_k)^2             (over all pooled values)
    """
    m, n_units = len(matrix), len(matrix[0])
    n = m * n_units
    d_o = 0.0
    for u in range(n_units):
        column = [row[u] for row in matrix]
        d_o += sum((a - b) ** 2 for a, b in itertools.permutations(column, 2)) / (m - 1)
    d_o /= n
    pooled = [v for row in matrix for v in row]
    d_e = sum((a - b) ** 2 for a, b in itertools.permutations(pooled, 2)) / (n * (n - 1))
    return 1.0 - d_o / d_e


# --------------------------------------------------------------------------- rubric


def test_dimensions_and_default_weights_match_the_wiki() -> None:
    assert DIMENSIONS == (
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
    assert DEFAULT_WEIGHTS == {
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
    assert tuple(DEFAULT_WEIGHTS) == DIMENSIONS
    assert math.fsum(DEFAULT_WEIGHTS.values()) == pytest.approx(1.0, abs=1e-12)


def test_every_dimension_has_a_one_line_description() -> None:
    assert tuple(DIMENSION_DESCRIPTIONS) == DIMENSIONS
    for text in DIMENSION_DESCRIPTIONS.values():
        assert text.startswith("High = ") and "\n" not in text
    assert "safety concerns" in DIMENSION_DESCRIPTIONS["safety"]
    assert "unmet need" in DIMENSION_DESCRIPTIONS["competitive_landscape"]


def test_default_rubric_uses_default_weights() -> None:
    assert Rubric.default().weights == DEFAULT_WEIGHTS


def test_rubric_missing_key_is_named() -> None:
    weights = dict(DEFAULT_WEIGHTS)
    del weights["safety"]
    with pytest.raises(ValueError, match="'safety'.*missing"):
        Rubric(weights=weights)


def test_rubric_extra_key_is_named() -> None:
    weights = dict(DEFAULT_WEIGHTS, cost=0.0)
    with pytest.raises(ValueError, match="unknown rubric dimension 'cost'"):
        Rubric(weights=weights)


def test_rubric_weight_out_of_range_is_named() -> None:
    weights = dict(DEFAULT_WEIGHTS, novelty=-0.12, feasibility=0.36)
    with pytest.raises(ValueError, match="'novelty' must be in \\[0, 1\\]"):
        Rubric(weights=weights)


def test_rubric_weight_nan_is_rejected() -> None:
    with pytest.raises(ValueError, match="'novelty'"):
        Rubric(weights=dict(DEFAULT_WEIGHTS, novelty=float("nan")))


def test_rubric_bad_sum_is_rejected() -> None:
    weights = dict(DEFAULT_WEIGHTS, reproducibility=0.06)  # sums to 1.01
    with pytest.raises(ValueError, match="must sum to 1"):
        Rubric(weights=weights)


def test_rubric_sum_tolerance_is_1e_6() -> None:
    Rubric(weights=dict(DEFAULT_WEIGHTS, reproducibility=0.05 + 5e-7))
    with pytest.raises(ValueError, match="must sum to 1"):
        Rubric(weights=dict(DEFAULT_WEIGHTS, reproducibility=0.05 + 5e-6))


def test_rubric_keeps_canonical_order() -> None:
    rubric = Rubric(weights=dict(reversed(list(DEFAULT_WEIGHTS.items()))))
    assert tuple(rubric.weights) == DIMENSIONS


# --------------------------------------------------------------------------- weighted score


def test_weighted_score_uniform_scores_give_that_score() -> None:
    rubric = Rubric.default()
    assert weighted_score(uniform(0.0), rubric) == 0.0
    assert weighted_score(uniform(1.0), rubric) == pytest.approx(1.0, abs=1e-15)
    assert weighted_score(uniform(0.5), rubric) == pytest.approx(0.5, abs=1e-15)


@pytest.mark.parametrize("dimension", DIMENSIONS)
def test_weighted_score_one_hot_gives_that_weight(dimension: str) -> None:
    scores = dict(uniform(0.0), **{dimension: 1.0})
    assert weighted_score(scores, Rubric.default()) == DEFAULT_WEIGHTS[dimension]


def test_weighted_score_hand_computed_mixed_case() -> None:
    # 0.15*0.9 + 0.15*0.8 + 0.12*0.3 + 0.12*0.7 + 0.12*0.6 + 0.10*0.5 + 0.08*0.4
    # + 0.06*1.0 + 0.05*0.2 + 0.05*0.0
    # = 0.135 + 0.12 + 0.036 + 0.084 + 0.072 + 0.05 + 0.032 + 0.06 + 0.01 + 0 = 0.599
    scores = from_list([0.9, 0.8, 0.3, 0.7, 0.6, 0.5, 0.4, 1.0, 0.2, 0.0])
    assert weighted_score(scores, Rubric.default()) == pytest.approx(0.599, abs=1e-12)


def test_weighted_score_matches_exact_rational_sum() -> None:
    # 0.1275 + 0.105 + 0.078 + 0.066 + 0.096 + 0.045 + 0.072 + 0.021 + 0.03 + 0.0375 = 0.678
    scores = from_list([0.85, 0.7, 0.65, 0.55, 0.8, 0.45, 0.9, 0.35, 0.6, 0.75])
    exact = sum(Fraction(str(DEFAULT_WEIGHTS[d])) * Fraction(str(scores[d])) for d in DIMENSIONS)
    assert exact == Fraction("0.678")
    assert weighted_score(scores, Rubric.default()) == pytest.approx(float(exact), abs=1e-12)


def test_weighted_score_with_custom_rubric() -> None:
    weights = dict.fromkeys(DIMENSIONS, 0.0) | {"safety": 0.5, "novelty": 0.5}
    scores = dict(uniform(0.0), safety=0.8, novelty=0.2)
    assert weighted_score(scores, Rubric(weights=weights)) == pytest.approx(0.5, abs=1e-15)


def test_weighted_score_missing_dimension_is_named() -> None:
    scores = uniform(0.5)
    del scores["druggability"]
    with pytest.raises(ValueError, match="missing dimension 'druggability'"):
        weighted_score(scores, Rubric.default())


def test_weighted_score_unknown_dimension_is_named() -> None:
    with pytest.raises(ValueError, match="unknown dimension 'overall'"):
        weighted_score(dict(uniform(0.5), overall=0.9), Rubric.default())


@pytest.mark.parametrize("bad", [-0.01, 1.01, float("nan"), float("inf")])
def test_weighted_score_out_of_range_is_named(bad: float) -> None:
    with pytest.raises(ValueError, match="'safety' must be in \\[0, 1\\]"):
        weighted_score(dict(uniform(0.5), safety=bad), Rubric.default())


def test_weighted_score_stays_in_range_when_weights_sum_slightly_above_one() -> None:
    rubric = Rubric(weights=dict(DEFAULT_WEIGHTS, reproducibility=0.05 + 9e-7))
    assert weighted_score(uniform(1.0), rubric) == 1.0


# --------------------------------------------------------------------------- median and interval


def test_median_of_odd_panel() -> None:
    overall = [0.9, 0.2, 0.6]
    result = consensus(overall, [uniform(x) for x in overall])
    assert result.score == 0.6
    assert result.n_judges == 3


def test_median_of_even_panel_is_mean_of_middle_two() -> None:
    overall = [0.8, 0.2, 0.4, 0.7]
    result = consensus(overall, [uniform(x) for x in overall])
    assert result.score == pytest.approx(0.55, abs=1e-15)


def test_single_judge() -> None:
    result = consensus([0.42], [uniform(0.42)])
    assert result == Consensus(score=0.42, interval=(0.42, 0.42), interval_method="range", agreement=None, n_judges=1)


def test_range_interval_for_three_judges() -> None:
    overall = [0.61, 0.35, 0.72]
    result = consensus(overall, [uniform(x) for x in overall])
    assert result.interval == (0.35, 0.72)
    assert result.interval_method == "range"


def test_range_interval_for_five_judges() -> None:
    overall = [0.5, 0.9, 0.1, 0.6, 0.55]
    result = consensus(overall, [uniform(x) for x in overall])
    assert result.score == 0.55
    assert result.interval == (0.1, 0.9)
    assert result.interval_method == "range"


SEVEN = [0.31, 0.55, 0.62, 0.48, 0.71, 0.59, 0.66]


def test_bootstrap_interval_for_seven_judges() -> None:
    result = consensus(SEVEN, [uniform(x) for x in SEVEN], seed=7)
    assert result.interval_method == "bootstrap90"
    assert result.score == 0.59
    lo, hi = result.interval
    assert min(SEVEN) <= lo <= result.score <= hi <= max(SEVEN)
    assert lo < hi


def test_bootstrap_interval_is_deterministic_for_a_seed() -> None:
    dims = [uniform(x) for x in SEVEN]
    first = consensus(SEVEN, dims, seed=123)
    assert consensus(SEVEN, dims, seed=123) == first
    assert consensus(list(SEVEN), dims, seed=123).interval == first.interval


def test_bootstrap_interval_is_the_percentile_interval_of_resampled_medians() -> None:
    rng = np.random.default_rng(5)
    values = np.array(SEVEN)
    medians = np.median(values[rng.integers(0, 7, size=(500, 7))], axis=1)
    expected = tuple(float(q) for q in np.percentile(medians, [5, 95]))
    assert consensus(SEVEN, [uniform(x) for x in SEVEN], seed=5, n_boot=500).interval == expected


def test_consensus_input_errors() -> None:
    with pytest.raises(ValueError, match="at least one judge"):
        consensus([], [])
    with pytest.raises(ValueError, match="2 overall scores but 1"):
        consensus([0.5, 0.6], [uniform(0.5)])
    with pytest.raises(ValueError, match="judge 1 overall score must be in \\[0, 1\\]"):
        consensus([0.5, 1.5], [uniform(0.5), uniform(0.5)])
    with pytest.raises(ValueError, match="judge 0: missing dimension 'novelty'"):
        consensus([0.5], [{d: 0.5 for d in DIMENSIONS if d != "novelty"}])
    with pytest.raises(ValueError, match="n_boot"):
        consensus([0.5], [uniform(0.5)], n_boot=0)


# --------------------------------------------------------------------------- agreement


def test_agreement_is_none_for_a_single_judge() -> None:
    assert consensus([0.5], [from_list([0.1 * i for i in range(10)])]).agreement is None


def test_agreement_is_not_applicable_when_all_values_are_identical() -> None:
    # No variance at all: the alpha formula is 0/0; a number would describe nothing.
    assert consensus([0.7, 0.7, 0.7], [uniform(0.7)] * 3).agreement is None


def test_deterministic_judges_with_identical_verdicts_have_no_agreement() -> None:
    dims = from_list([0.9, 0.8, 0.3, 0.7, 0.6, 0.5, 0.4, 1.0, 0.2, 0.0])
    # Model judges that happen to agree: alpha 1.0. Offline judges (fixed functions of the same
    # inputs) that give identical verdicts could not have disagreed: not applicable.
    assert consensus([0.6] * 3, [dims] * 3).agreement == pytest.approx(1.0)
    assert consensus([0.6] * 3, [dims] * 3, deterministic=True).agreement is None
    other = dict(dims, safety=0.5)
    agreement = consensus([0.6, 0.6, 0.6], [dims, dims, other], deterministic=True).agreement
    assert agreement is not None and 0.0 < agreement < 1.0


def test_agreement_is_one_when_judges_agree_on_every_dimension() -> None:
    dims = from_list([0.9, 0.8, 0.3, 0.7, 0.6, 0.5, 0.4, 1.0, 0.2, 0.0])
    assert consensus([0.6, 0.6, 0.6], [dims] * 3).agreement == pytest.approx(1.0, abs=1e-12)


def test_agreement_is_below_one_when_judges_disagree() -> None:
    a = from_list([0.9, 0.8, 0.3, 0.7, 0.6, 0.5, 0.4, 1.0, 0.2, 0.0])
    b = from_list([0.7, 0.9, 0.4, 0.5, 0.6, 0.3, 0.6, 0.8, 0.3, 0.2])
    agreement = consensus([0.6, 0.6], [a, b]).agreement
    assert agreement is not None and agreement < 1.0


def test_agreement_is_negative_for_systematic_disagreement() -> None:
    a = from_list([0.0, 1.0] * 5)
    b = from_list([1.0, 0.0] * 5)
    agreement = consensus([0.5, 0.5], [a, b]).agreement
    assert agreement is not None and agreement < 0.0


def test_reference_alpha_on_hand_computed_cases() -> None:
    # Two coders who swap two values: D_o = 1, D_e = 8/12, alpha = -1/2.
    assert reference_interval_alpha([[0.0, 1.0], [1.0, 0.0]]) == pytest.approx(-0.5, abs=1e-12)
    # Ten units, coder A five 0s and five 1s, coder B flips one 1 to 0:
    # D_o = 2/20 = 1/10, D_e = 2*11*9/(20*19) = 198/380, alpha = 1 - 19/99 = 80/99.
    a = [0.0] * 5 + [1.0] * 5
    b = [0.0] * 6 + [1.0] * 4
    assert reference_interval_alpha([a, b]) == pytest.approx(80 / 99, abs=1e-12)


def test_agreement_matches_textbook_value() -> None:
    a = [0.0] * 5 + [1.0] * 5
    b = [0.0] * 6 + [1.0] * 4
    agreement = consensus([0.5, 0.4], [from_list(a), from_list(b)]).agreement
    assert agreement == pytest.approx(80 / 99, abs=1e-9)


def test_agreement_matches_reference_on_a_realistic_panel() -> None:
    rows = [
        [0.80, 0.70, 0.55, 0.60, 0.75, 0.65, 0.70, 0.40, 0.60, 0.50],
        [0.75, 0.65, 0.60, 0.55, 0.80, 0.70, 0.60, 0.45, 0.55, 0.50],
        [0.85, 0.60, 0.50, 0.65, 0.70, 0.60, 0.75, 0.35, 0.65, 0.45],
        [0.70, 0.75, 0.45, 0.60, 0.85, 0.55, 0.65, 0.50, 0.60, 0.40],
    ]
    agreement = consensus([0.6] * 4, [from_list(r) for r in rows]).agreement
    assert agreement == pytest.approx(reference_interval_alpha(rows), abs=1e-9)
    assert 0.0 < agreement < 1.0


def test_consensus_is_a_frozen_pydantic_model() -> None:
    result = consensus([0.5, 0.6, 0.7], [uniform(0.5), uniform(0.6), uniform(0.7)])
    assert Consensus.model_validate(result.model_dump()) == result
    with pytest.raises(ValueError):
        result.score = 0.1  # type: ignore[misc]
