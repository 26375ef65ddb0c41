"""KB page slugs: from an internal link path, or from a page's file name."""

from __future__ import annotations

import re
import unicodedata
from pathlib import PurePath

__all__ = ["link_slug", "slug_from_name"]

_SLUG_JUNK_RE = re.compile(r"[^a-z0-9-]+")
# The engine's own pages, linked from KB pages but never KB pages themselves.
_NOT_KB_PREFIXES = frozenset({"hypothesis", "hypotheses", "analysis", "analyses", "exchange"})


def link_slug(path: str) -> str | None:
    """The KB page slug an internal link path names, or None when it names no KB page.

    ``/therapeutics/riluzole`` -> ``therapeutics-riluzole``; deeper paths join every segment
    with ``-``; query, fragment and trailing slash are dropped. External URLs and the engine's
    own pages (``/hypothesis/...``, ``/analysis/...``, ``/exchange``) give None.
    """
    p = path.strip()
    if not p.startswith("/") or p.startswith("//"):
        return None
    for sep in ("?", "#"):
        cut = p.find(sep)
        if cut >= 0:
            p = p[:cut]
    segments = [seg for seg in p.split("/") if seg]
    if not segments or segments[0].lower() in _NOT_KB_PREFIXES:
        return None
    slug = _SLUG_JUNK_RE.sub("-", "-".join(segments).lower()).strip("-")
    return slug or None


def slug_from_name(source_name: str) -> str:
    """The slug a page's file name gives (``ALS Überblick.txt`` -> ``als-uberblick``); may be ''."""
    stem = PurePath(source_name.replace("\\", "/")).stem
    # fold accents ("ü" -> "u") so non-ASCII names still give a usable slug
    stem = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode("ascii")
    return _SLUG_JUNK_RE.sub("-", stem.lower()).strip("-")
