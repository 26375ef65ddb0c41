"""What a page file must be before it is parsed: not too large, no runaway line, no control
characters. Anyone who edits the wiki writes pages, so each refusal names file and line.

The limits are ``[kb]`` settings (:class:`debate.core.config.KbSettings`): a 50 MB single-line
page was once stored as one chunk and doubled the database.
"""

from __future__ import annotations

from debate.core.config import KbSettings
from debate.core.errors import PageParseError
from debate.core.text import describe_control_char, describe_undecodable, first_control_char, terminal_safe

__all__ = ["check_file_name", "check_page_size", "check_page_text"]


def check_file_name(source_name: str) -> None:
    """Refuse a file name holding a control character, or bytes that are not UTF-8 (it is
    stored, printed and exported)."""
    problem = describe_control_char(source_name)
    if problem is not None:
        raise PageParseError(f"file name holds a {problem}", where=terminal_safe(source_name))
    problem = describe_undecodable(source_name)
    if problem is not None:  # the name is stored: a surrogate would fail the insert
        try:  # the bytes as they are on disk, escaped: wren-\xff.txt
            shown = source_name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        except UnicodeEncodeError:
            shown = source_name.encode("utf-8", "backslashreplace").decode()
        raise PageParseError(f"file name is {problem}", where=terminal_safe(shown))


def check_page_size(data: bytes, source_name: str, limits: KbSettings) -> None:
    """Refuse a page file over ``max_page_bytes``, or with a line over ``max_line_bytes``."""
    if len(data) > limits.max_page_bytes:
        crossing = data.count(b"\n", 0, limits.max_page_bytes) + 1
        raise PageParseError(
            f"page is larger than {limits.max_page_bytes} bytes (kb.max_page_bytes); it crosses the limit here",
            where=f"{source_name}:{crossing}",
        )
    if len(data) <= limits.max_line_bytes:
        return  # no line can be longer than the page
    for lineno, line in enumerate(data.split(b"\n"), 1):
        if len(line) > limits.max_line_bytes:
            raise PageParseError(
                f"line of {len(line)} bytes is longer than {limits.max_line_bytes} (kb.max_line_bytes)",
                where=f"{source_name}:{lineno}",
            )


def check_page_text(text: str, source_name: str) -> None:
    """Refuse decoded page text holding a control character other than tab, LF and CR."""
    at = first_control_char(text)
    if at is None:
        return
    line_start = text.rfind("\n", 0, at) + 1
    line_end = text.find("\n", at)
    line = text[line_start : line_end if line_end >= 0 else len(text)]
    problem = describe_control_char(line) or "control character"
    raise PageParseError(f"{problem} (not page text)", where=f"{source_name}:{text.count(chr(10), 0, at) + 1}")
