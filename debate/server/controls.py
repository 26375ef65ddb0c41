"""Control characters in requests, found before any handler or database sees them.

The rule is :mod:`debate.core.text`'s: C0 controls other than tab, LF and CR, and DEL are
refused. PostgreSQL cannot store NUL, so one reaching a query used to be a 500; refused here, it
is a 422 saying where it was. Lone surrogates (JSON ``"\\ud800"``) cannot be encoded for either
database and are refused alike.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import parse_qsl

from debate.core.text import describe_control_char, strip_control

# The same characters as debate.core.text, as a JSON Schema pattern: the OpenAPI schema says
# which strings are accepted, so generated clients (and schemathesis) know.
_REFUSED = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f"
NO_CONTROL = f"^[^{_REFUSED}]*$"
# The same, with at least one character that is not a space (a comment must say something).
SOME_TEXT = f"^[^{_REFUSED}]*[^\\s{_REFUSED}][^{_REFUSED}]*$"
_SURROGATE = re.compile("[\ud800-\udfff]")
FORM = "application/x-www-form-urlencoded"


def text_problem(text: str) -> str | None:
    """What is wrong with ``text`` (a refused control character, a lone surrogate), or None."""
    problem = describe_control_char(text)
    if problem is not None:
        return f"{problem} is not allowed"
    bad = _SURROGATE.search(text)
    if bad is not None:
        return f"lone surrogate U+{ord(bad.group()):04X} at position {bad.start() + 1} is not valid text"
    return None


def _label(name: str) -> str:
    return strip_control(name)[:60] or "(unnamed)"


def _first(items: Iterable[tuple[str, str]]) -> str | None:
    for where, text in items:
        problem = text_problem(text)
        if problem is not None:
            return f"{where}: {problem}"
    return None


def _pairs(kind: str, pairs: list[tuple[str, str]]) -> Iterator[tuple[str, str]]:
    for name, value in pairs:
        yield f"{kind} name", name
        yield f"{kind} {_label(name)}", value


def url_problem(path: str, query_string: bytes) -> str | None:
    """The first refused character in a request's (decoded) path or query parameters, or None."""
    # Decoded as Starlette decodes them, so this sees exactly what the handlers would.
    query = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    return _first([("path", path), *_pairs("query parameter", query)])


def _json_strings(data: Any) -> Iterator[tuple[str, str]]:
    # Iterative: a body nested thousands deep must not exhaust the stack.
    stack: list[tuple[str, Any]] = [("body", data)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, str):
            yield where, value
        elif isinstance(value, dict):
            for key, item in reversed(list(value.items())):
                name = _label(str(key)) if where == "body" else f"{where}.{_label(str(key))}"
                stack.append((name, item))
                stack.append((f"{where} key", str(key)))
        elif isinstance(value, list):
            stack.extend((f"{where}[{i}]", item) for i, item in reversed(list(enumerate(value))))


def body_problem(content_type: str, body: bytes) -> str | None:
    """The first refused character in a form or JSON body's strings (names included), or None.

    A body that is neither is left to the route, which refuses what it cannot parse.
    """
    if not body:
        return None
    if content_type.split(";")[0].strip().lower() == FORM:
        return _first(_pairs("field", parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True)))
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return _first(_json_strings(data))
