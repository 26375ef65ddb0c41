"""Durations on the command line: 0s, 12h, 30d, 2w, 1d12h; anything else is a clear error."""

from __future__ import annotations

from datetime import timedelta

import pytest

from debate.core.durations import format_duration, parse_duration
from debate.core.errors import UserInputError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0s", 0),
        ("45s", 45),
        ("90m", 5400),
        ("12h", 43_200),
        ("30d", 2_592_000),
        ("2w", 1_209_600),
        ("1d12h", 129_600),
        (" 12H ", 43_200),
        ("1w 2d", 777_600),
    ],
)
def test_parses(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("30", "has no unit"),
        ("1.5d", "not a duration"),
        ("3y", "unknown unit 'y'"),
        ("-1d", "negative"),
        ("12h1d", "largest to smallest"),
        ("1d1d", "largest to smallest"),
        ("d", "not a duration"),
        ("soon", "not a duration"),
    ],
)
def test_refuses_with_a_clear_message(text: str, message: str) -> None:
    with pytest.raises(UserInputError) as e:
        parse_duration(text, what="--stale-after")
    assert message in str(e.value)
    assert "--stale-after" in str(e.value)
    assert "e.g. 0s, 12h, 30d" in str(e.value)


@pytest.mark.parametrize("text", ["0s", "30d", "2w", "1d12h", "12h", "90s", "45m"])
def test_format_round_trips(text: str) -> None:
    assert parse_duration(format_duration(parse_duration(text))) == parse_duration(text)


def test_format_prefers_days_to_odd_weeks() -> None:
    assert format_duration(timedelta(days=30)) == "30d"
    assert format_duration(timedelta(days=14)) == "2w"
    assert format_duration(timedelta(hours=36)) == "1d12h"
    assert format_duration(0) == "0s"
