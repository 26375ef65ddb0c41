"""Control characters: refused at every input, stripped from stored text on its way to a terminal.

C0 controls other than tab, line feed and carriage return, and DEL, have no place in page text,
titles, ids or notes: NUL breaks PostgreSQL text columns, and ESC drives terminals.
"""

from __future__ import annotations

import re

# C0 except \t \n \r, plus DEL.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Everything a terminal might act on: C0 (line breaks included), DEL and C1 controls.
_TERMINAL_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def first_control_char(text: str) -> int | None:
    """Index of the first refused control character in ``text``, or None when there is none."""
    match = _CONTROL.search(text)
    return match.start() if match else None


def describe_control_char(text: str) -> str | None:
    """``"control character U+001B at position 7"`` for the first refused one, else None."""
    at = first_control_char(text)
    if at is None:
        return None
    return f"control character U+{ord(text[at]):04X} at position {at + 1}"


def describe_undecodable(text: str) -> str | None:
    """``"not UTF-8 text (byte 0xFF at position 3)"`` when ``text`` holds a lone surrogate, else None.

    Python hands over command-line arguments and file names that are not UTF-8 with each bad
    byte as a surrogate (U+DC80-U+DCFF), which no encoder, database or terminal accepts.
    """
    bad = next((i for i, c in enumerate(text) if "\ud800" <= c <= "\udfff"), None)
    if bad is None:
        return None
    code = ord(text[bad])
    what = f"byte 0x{code - 0xDC00:02X}" if 0xDC80 <= code <= 0xDCFF else f"U+{code:04X}"
    return f"not UTF-8 text ({what} at position {bad + 1})"


def strip_control(text: str) -> str:
    """``text`` without refused control characters (tab, line feed and carriage return stay)."""
    return _CONTROL.sub("", text)


def terminal_safe(text: str) -> str:
    """One line a terminal will not act on: every C0/C1 control and DEL removed, line breaks and
    tabs turned into spaces."""
    return _TERMINAL_UNSAFE.sub(lambda m: " " if m.group() in "\t\n\r" else "", text)
