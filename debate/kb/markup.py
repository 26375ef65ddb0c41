"""Reading the inline markup of an exported page line: links, citations, tags, headings, facts."""

from __future__ import annotations

import html
import re

# Compiled once: the bench ingests thousands of pages.
# One level of parentheses is allowed inside a target ("/wiki/Foo_(bar)").
LINK_RE = re.compile(r"(!?)\[([^\[\]]*)\]\(([^()\s]*(?:\([^()\s]*\)[^()\s]*)*)\)")
CITE_BLOCK_RE = re.compile(r"\[(@[^\[\]]+)\]")
CITE_KEY_RE = re.compile(r"@([^\s;,\]]+)")
BULLET_RE = re.compile(r"^[-*•]\s+")
TRAILER_RE = re.compile(
    r"^(?:No provenance edges found\.?"
    r"|Use \?embed=1\b.*"
    r"|<iframe\b.*"
    r"|https?://\S+"
    r"|\[[^\]]*\]\(https?://[^)\s]*/artifact/[^)\s]*\))$",
    re.I,
)
_CITE_STRIP_RE = re.compile(r"\s*\[@[^\[\]]+\]")
_TAG_RE = re.compile(r"<!--.*?-->|</?([A-Za-z][A-Za-z0-9]*)\b[^>]*>", re.S)
_WS_RE = re.compile(r"\s+")
_BOLD_RE = re.compile(r"\*\*(.+?)\*\*")
_LINK_ONLY_RE = re.compile(r"^!?\[[^\[\]]*\]\([^)]*\)$")
_CITE_ONLY_RE = re.compile(r"^\[@[^\[\]]+\]$")

_INLINE_TAGS = frozenset({"a", "b", "i", "em", "strong", "span", "sup", "sub", "code", "u", "small", "mark", "abbr"})
_MAX_HEADING_CHARS = 80
_MAX_HEADING_WORDS = 12
_MAX_FACT_KEY_WORDS = 12


def _tag_sub(m: re.Match[str]) -> str:
    # Inline tags vanish; block tags become a space so words on either side stay apart.
    name = m.group(1)
    return "" if name is not None and name.lower() in _INLINE_TAGS else " "


def plain(s: str) -> str:
    """Reduce markup to plain text: links to their text, no tags, no citation markers."""
    if "[" not in s and "<" not in s and "&" not in s and "**" not in s:
        # most lines carry no markup: skip the substitutions
        return " ".join(s.split()) if "  " in s or "\t" in s or "\n" in s else s.strip()
    if "[" in s:
        if "[@" in s:
            s = _CITE_STRIP_RE.sub("", s)
        s = LINK_RE.sub(r"\2", s)
    if "<" in s:
        s = _TAG_RE.sub(_tag_sub, s)
    if "&" in s:
        s = html.unescape(s)
    if "**" in s:
        s = _BOLD_RE.sub(r"\1", s)
    return _WS_RE.sub(" ", s).strip()


_HIDDEN_RE = re.compile(r"\[@[^\[\]]*\]|<!--.*?-->|<[A-Za-z][^<>]*>", re.S)


def hidden_markup(s: str) -> str:
    """What :func:`plain` drops from ``s`` that holds words: citation markers, HTML comments
    and tags with attributes (``[@doe2020; see note]``, ``<!-- ... -->``, ``<span title="...">``),
    one per line. A page's hidden text never reaches a prompt, but is screened with its chunk."""
    if "[@" not in s and "<" not in s:
        return ""
    return "\n".join(m for m in _HIDDEN_RE.findall(s) if " " in m.strip())


def heading_text(s: str) -> str | None:
    """Plain heading text when the stripped, non-empty line ``s`` stands alone as a heading."""
    c = s[0]
    if c == "#":  # markdown heading from another exporter
        t = plain(s.lstrip("#"))
        return t or None
    if c in "-*•<|▸>" or len(s) > _MAX_HEADING_CHARS:
        return None
    if s.endswith((".", ";", ",", ":")) or ". " in s:
        return None
    if len(s.split()) > _MAX_HEADING_WORDS:
        return None
    if "<" in s and _TAG_RE.search(s):
        return None
    if c == "[" and (_LINK_ONLY_RE.match(s) or _CITE_ONLY_RE.match(s)):
        return None
    t = plain(s)
    return t or None


def is_banner(s: str) -> bool:
    """True for the ``📗 Cite This Artifact`` banner line (stripped)."""
    return s.startswith("📗") or s == "Cite This Artifact"


def split_fact(body: str) -> tuple[str, str] | None:
    """Plain ``(key, value)`` of a ``Key: value`` bullet body; None when it is not a fact."""
    cut = body.find(": ")
    if cut < 0:
        return None
    if "[" in body:
        # a ': ' inside link text or a URL does not split key from value
        spans = [m.span() for m in LINK_RE.finditer(body)]
        spans += [m.span() for m in CITE_BLOCK_RE.finditer(body)]
        while cut >= 0 and any(a <= cut < b for a, b in spans):
            cut = body.find(": ", cut + 1)
        if cut < 0:
            return None
    key = plain(body[:cut])
    value = plain(body[cut + 2 :])
    if not key or not value or len(key.split()) > _MAX_FACT_KEY_WORDS:
        return None
    return key, value
