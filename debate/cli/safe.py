"""Untrusted text at the terminal: command-line arguments coming in, stored text going out.

Stored text (titles, page text, model replies, review notes, error messages) is written by
whoever edits the wiki or feeds an import file. Printed raw, an ESC drives the terminal, and
``[red]`` or ``[link=...]`` in it would be read as rich markup. So every renderer here prints
stored text as :func:`lit` (a literal rich ``Text``) or embeds it with :func:`esc`.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.markup import escape
from rich.text import Text

from debate.core.errors import UserInputError
from debate.core.text import describe_control_char, describe_undecodable, terminal_safe

__all__ = ["check_args", "esc", "lit", "safe_lines"]


def lit(value: object) -> Text:
    """Stored text as a literal rich ``Text``: no control characters, no markup, no emoji codes."""
    return Text("" if value is None else terminal_safe(str(value)))


def esc(value: object) -> str:
    """Stored text for a rich markup string: control characters removed, markup escaped."""
    return escape(terminal_safe("" if value is None else str(value)))


def safe_lines(text: str) -> str:
    """Multi-line stored text for a terminal: each line without control characters."""
    return "\n".join(terminal_safe(line) for line in text.split("\n"))


def check_args(args: Sequence[str]) -> None:
    """Refuse a control character, or bytes that are not UTF-8, in any command-line argument,
    naming the argument.

    Ids, titles, targets and notes given here are stored, printed and exported; refusing them
    at the door keeps every command from having to.
    """
    for i, arg in enumerate(args):
        problem = describe_control_char(arg) or describe_undecodable(arg)
        if problem is None:
            continue
        where = f"command-line argument {i + 1}"
        if arg.startswith("-") and "=" in arg:
            where += f" ({terminal_safe(arg.split('=', 1)[0])})"
        elif i > 0 and args[i - 1].startswith("-"):
            where += f" (after {terminal_safe(args[i - 1])})"
        raise UserInputError(problem, where=where)
