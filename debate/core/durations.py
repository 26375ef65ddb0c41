"""Durations as people write them on the command line: ``0s``, ``90m``, ``12h``, ``30d``, ``2w``.

A duration is one or more ``<integer><unit>`` parts, largest unit first (``1d12h``); units are
``s`` seconds, ``m`` minutes, ``h`` hours, ``d`` days and ``w`` weeks. Anything else is refused
with a message that says what was expected.
"""

from __future__ import annotations

import re
from datetime import timedelta

from debate.core.errors import UserInputError

__all__ = ["UNITS", "format_duration", "parse_duration"]

UNITS: dict[str, int] = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}
_PART = re.compile(r"(\d+)([a-z]+)")
_ORDER = list(UNITS)
_HINT = "expected a number and a unit (s, m, h, d, w), e.g. 0s, 12h, 30d or 1d12h"


def parse_duration(text: str, *, what: str = "duration") -> timedelta:
    """Parse ``text`` into a timedelta; raise :class:`UserInputError` naming ``what`` if it is malformed."""
    raw = text
    s = text.strip().lower().replace(" ", "")
    if not s:
        raise UserInputError(f"empty {what}: {_HINT}")
    if s.startswith("-"):
        raise UserInputError(f"{what} {raw!r} is negative: {_HINT}")
    pos = 0
    total = 0
    last_rank = -1
    for m in _PART.finditer(s):
        if m.start() != pos:
            break
        number, unit = m.groups()
        if unit not in UNITS:
            raise UserInputError(f"{what} {raw!r}: unknown unit {unit!r}; {_HINT}")
        rank = _ORDER.index(unit)
        if rank <= last_rank:
            raise UserInputError(f"{what} {raw!r}: units must go from largest to smallest, each once; {_HINT}")
        last_rank = rank
        total += int(number) * UNITS[unit]
        pos = m.end()
    if pos != len(s) or last_rank < 0:
        if re.fullmatch(r"\d+(\.\d+)?", s):
            raise UserInputError(f"{what} {raw!r} has no unit; {_HINT}")
        raise UserInputError(f"{what} {raw!r} is not a duration; {_HINT}")
    try:
        return timedelta(seconds=total)
    except OverflowError:
        raise UserInputError(f"{what} {raw!r} is too long") from None


def format_duration(value: timedelta | float) -> str:
    """A canonical spelling (``30d``, ``1d12h``, ``2w``, ``0s``) that parses back to the same value.

    Weeks are used only for whole weeks, so 30 days reads ``30d``, not ``4w2d``.
    """
    seconds = int(value.total_seconds() if isinstance(value, timedelta) else value)
    if seconds <= 0:
        return "0s"
    if seconds % UNITS["w"] == 0:
        return f"{seconds // UNITS['w']}w"
    parts = []
    for unit, size in UNITS.items():
        if unit == "w":
            continue
        n, seconds = divmod(seconds, size)
        if n:
            parts.append(f"{n}{unit}")
    return "".join(parts)
