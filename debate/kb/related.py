"""Reading one list line of a page's Related Hypotheses section into a :class:`RelatedEntry`."""

from __future__ import annotations

import re
from typing import Literal, cast

from debate.core.genes import split_target_label
from debate.kb.escape import unescape_md
from debate.kb.page import Fail, RelatedEntry

__all__ = ["parse_related_line", "related_path"]

_RELATED_RE = re.compile(
    r"^[-*•]\s+\[(?P<title>.*)\]"
    r"\((?P<path>/(?P<kind>hypothesis|analysis)/(?P<id>[^)\s]*))\)(?P<rest>.*)$"
)
_RELATED_REST_RE = re.compile(
    r"^\s*(?:[—–-]\s*(?:<span\b[^>]*>\s*)?(?P<score>[^<\s·🔄]+)\s*(?:</span>)?)?"
    r"\s*(?:·\s*Target:\s*(?P<target>[^🔄]*?))?"
    r"\s*(?P<prog>🔄)?\s*$"
)
_HYP_ID_RE = re.compile(r"^h-[0-9a-f]{8}$")
_ANALYSIS_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
_ID_RES = {"hypothesis": _HYP_ID_RE, "analysis": _ANALYSIS_ID_RE}


def related_path(kind: str, ident: str) -> str | None:
    """The link path of a list line (``/hypothesis/h-...``, ``/analysis/...``); None when the
    id does not have its kind's shape, so no other link target can reach a page."""
    pattern = _ID_RES.get(kind)
    return f"/{kind}/{ident}" if pattern is not None and pattern.fullmatch(ident) else None


def parse_related_line(s: str, lineno: int, fail: Fail) -> RelatedEntry:
    """Read the stripped list line ``s``; raise ``fail(...)`` when it is unreadable."""
    m = _RELATED_RE.match(s)
    if m is None:
        raise fail(f"unreadable Related Hypotheses line: {s[:80]!r}", lineno)
    # the pattern admits only these two kinds
    kind = cast(Literal["hypothesis", "analysis"], m.group("kind"))
    ident = m.group("id")
    if kind == "hypothesis" and not _HYP_ID_RE.match(ident):
        raise fail(f"bad hypothesis id {ident!r} (expected h- and 8 hex digits)", lineno)
    if kind == "analysis" and not _ANALYSIS_ID_RE.match(ident):
        raise fail(f"bad analysis id {ident!r}", lineno)
    rest = _RELATED_REST_RE.match(m.group("rest"))
    if rest is None:
        raise fail(f"unreadable Related Hypotheses line: {s[:80]!r}", lineno)
    # The engine escapes titles and labels when it writes them (debate.kb.escape): undo that.
    target = rest.group("target")
    target = unescape_md(target.strip()) if target is not None else None
    if not target:
        target = None
    return RelatedEntry(
        kind=kind,
        id=ident,
        path=m.group("path"),
        title=unescape_md(m.group("title").strip()),
        score=_score(rest.group("score"), lineno, fail),
        target_label=target,
        genes=split_target_label(target) if target else [],
        in_progress=rest.group("prog") is not None,
        line=lineno,
    )


def _score(raw_score: str | None, lineno: int, fail: Fail) -> float | None:
    """The consensus score as written after the link; None when the line has none."""
    if raw_score is None:
        return None
    try:
        score = float(raw_score)
    except ValueError:
        raise fail(f"score {raw_score!r} is not a number", lineno) from None
    if not 0.0 <= score <= 1.0:
        raise fail(f"score {raw_score!r} is outside [0, 1]", lineno)
    return score
