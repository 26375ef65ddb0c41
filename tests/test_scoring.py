"""Specification of how scores are displayed: half-up rounding and colour bands."""

from __future__ import annotations

from decimal import Decimal

import pytest

from debate.core.scoring import GREEN, RED, YELLOW, display_score, score_color, score_span


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (0.785, "0.79"),
        (0.0, "0.00"),
        (1.0, "1.00"),
        (0.5, "0.50"),
        (0.12345, "0.12"),
        (0.994, "0.99"),
        (0.995, "1.00"),
        (1, "1.00"),
        (-0.0, "0.00"),
    ],
)
def test_display_score_two_decimals(value: float, shown: str) -> None:
    assert display_score(value) == shown


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        # Display rounds the decimal text half up, whatever the binary float underneath:
        # 0.125 is an exact tie (round() would go to even, 0.12); 0.285 and 1.005 are stored
        # just below the written value (f"{x:.2f}" gives 0.28, 1.00); 0.665, 0.675, 0.645 just above.
        (0.665, "0.67"),
        (0.675, "0.68"),
        (0.125, "0.13"),
        (0.645, "0.65"),
        (0.285, "0.29"),
        (1.005, "1.01"),
    ],
)
def test_display_score_rounds_half_up_despite_binary_floats(value: float, shown: str) -> None:
    assert display_score(value) == shown


def test_binary_float_traps_are_real() -> None:
    # Guards the cases above: naive rounding really gets these wrong.
    assert round(0.125, 2) == 0.12
    assert f"{0.285:.2f}" == "0.28"
    assert f"{1.005:.2f}" == "1.00"


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_display_score_rejects_non_finite(bad: float) -> None:
    with pytest.raises(ValueError):
        display_score(bad)


@pytest.mark.parametrize(
    ("shown", "color"),
    [
        ("1.00", GREEN),
        ("0.65", GREEN),
        ("0.64", YELLOW),
        ("0.45", YELLOW),
        ("0.44", RED),
        ("0.00", RED),
        (Decimal("0.65"), GREEN),
        (Decimal("0.44"), RED),
    ],
)
def test_score_color_bands(shown: str | Decimal, color: str) -> None:
    assert score_color(shown) == color


def test_colors_are_the_wiki_palette() -> None:
    assert (GREEN, YELLOW, RED) == ("#81c784", "#ffd54f", "#e57373")


@pytest.mark.parametrize(
    ("value", "shown", "color"),
    [
        (0.645, "0.65", GREEN),  # shows 0.65, so green even though 0.645 < 0.65
        (0.6449, "0.64", YELLOW),
        (0.449, "0.45", YELLOW),  # shows 0.45, so yellow even though 0.449 < 0.45
        (0.4449, "0.44", RED),
        (0.445, "0.45", YELLOW),
    ],
)
def test_color_follows_the_shown_value(value: float, shown: str, color: str) -> None:
    assert display_score(value) == shown
    assert score_color(display_score(value)) == color


def test_score_color_rounds_an_unrounded_value_like_the_display() -> None:
    assert score_color("0.645") == GREEN
    assert score_color("0.4449") == RED


@pytest.mark.parametrize("bad", ["", "high", "nan", "inf"])
def test_score_color_rejects_non_scores(bad: str) -> None:
    with pytest.raises(ValueError):
        score_color(bad)


def test_score_span_exact_shape() -> None:
    assert score_span(0.785) == '<span style="color:#81c784;font-weight:600">0.79</span>'
    assert score_span(0.5) == '<span style="color:#ffd54f;font-weight:600">0.50</span>'
    assert score_span(0.1) == '<span style="color:#e57373;font-weight:600">0.10</span>'
    assert score_span(0.645) == '<span style="color:#81c784;font-weight:600">0.65</span>'
