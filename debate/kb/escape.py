"""Escaping the text of a Related Hypotheses line (titles, target labels) and undoing it.

Titles and labels come from untrusted places (wiki pages, import files, the CLI) and end up in
Markdown that the wiki renders. Escaped, they can neither open HTML (``<img ...>``,
``<script>``) nor close the link text early to forge a link (``X](javascript:...)``):

* ``<`` and ``>`` become ``&lt;`` and ``&gt;``; ``&`` becomes ``&amp;`` unless it already
  starts an entity (``&amp;``, ``&#39;``), so a page written that way keeps its bytes;
* ``[``, ``]`` and backticks are backslash-escaped;
* a backslash is doubled only where it would otherwise escape what follows it (before a
  backslash, bracket or backtick, or at the end of the text, where the link's ``]`` follows):
  ``x\\]`` must not turn the ``]`` of ``\\]`` back into markup. Any other backslash stays.

Nothing else changes (quotes and apostrophes stay), so pages the wiki wrote round-trip byte for
byte. :func:`unescape_md` is the parser's inverse: ``escape_md(unescape_md(escape_md(s)))``
equals ``escape_md(s)``, which makes export → ingest → export byte-identical.
"""

from __future__ import annotations

import re

__all__ = ["escape_md", "unescape_md"]

_ENTITY = r"&(?:[A-Za-z][A-Za-z0-9]{0,31}|#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6});"
# One alternative per thing to escape; a lone "&" is one that starts no entity.
_ESCAPE_RE = re.compile(r"[<>\[\]`]|\\(?=[\\\[\]`]|\Z)|&(?!" + _ENTITY[1:] + ")")
_ESCAPES = {"<": "&lt;", ">": "&gt;", "&": "&amp;", "[": r"\[", "]": r"\]", "`": r"\`", "\\": "\\\\"}
_UNESCAPE_RE = re.compile(r"\\([\\\[\]`])|&(lt|gt|amp);")
_UNESCAPES = {"lt": "<", "gt": ">", "amp": "&"}


def escape_md(text: str) -> str:
    """``text`` safe inside a Markdown list line's link text or after ``Target:``."""
    return _ESCAPE_RE.sub(lambda m: _ESCAPES[m.group()], text)


def unescape_md(text: str) -> str:
    """The text :func:`escape_md` was given: escapes and the three entities it writes undone."""
    if "\\" not in text and "&" not in text:
        return text
    return _UNESCAPE_RE.sub(lambda m: m.group(1) or _UNESCAPES[m.group(2)], text)
