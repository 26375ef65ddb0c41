"""How scores are shown on the wiki: two decimals, rounded half up, coloured by band.

Rounding goes through the decimal text of the float (``str(x)``), so a score that prints as
``0.665`` shows as ``0.67`` even though the nearest binary float is slightly below 0.665.
The colour is chosen from the value as shown, so a score and its colour never disagree.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

GREEN = "#81c784"
YELLOW = "#ffd54f"
RED = "#e57373"

_CENT = Decimal("0.01")
_GREEN_FROM = Decimal("0.65")
_YELLOW_FROM = Decimal("0.45")


def _shown_decimal(x: float) -> Decimal:
    """``x`` rounded half up to two decimals, on its decimal representation."""
    if not math.isfinite(x):
        raise ValueError(f"cannot display non-finite score {x!r}")
    shown = Decimal(str(x)).quantize(_CENT, rounding=ROUND_HALF_UP)
    # -0.0 (or a tiny negative) would otherwise show as "-0.00".
    return abs(shown) if shown.is_zero() else shown


def display_score(x: float) -> str:
    """A score as the wiki shows it: two decimals, half up (``0.785`` -> ``"0.79"``, ``1.0`` -> ``"1.00"``)."""
    return str(_shown_decimal(x))


def score_color(shown: str | Decimal) -> str:
    """The colour for a shown score: >= 0.65 green, 0.45–0.64 yellow, below 0.45 red.

    ``shown`` should be the displayed text (e.g. from :func:`display_score`); it is rounded to
    two decimals again, half up, so an unrounded value gets the colour its display would get.
    """
    try:
        value = Decimal(shown.strip() if isinstance(shown, str) else shown)
    except InvalidOperation:
        raise ValueError(f"not a score: {shown!r}") from None
    if not value.is_finite():
        raise ValueError(f"not a score: {shown!r}")
    value = value.quantize(_CENT, rounding=ROUND_HALF_UP)
    if value >= _GREEN_FROM:
        return GREEN
    if value >= _YELLOW_FROM:
        return YELLOW
    return RED


def score_span(x: float) -> str:
    """The score as an HTML span: ``<span style="color:#81c784;font-weight:600">0.79</span>``."""
    shown = display_score(x)
    return f'<span style="color:{score_color(shown)};font-weight:600">{shown}</span>'
