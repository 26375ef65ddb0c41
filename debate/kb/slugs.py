"""KB page slugs: from an internal link path, or from a page's file name."""

from __future__ import annotations

import re
import unicodedata
from pathlib import PurePath

__all__ = ["link_slug", "slug_problem", "slug_from_name"]

_SLUG_JUNK_RE = re.compile(r"[^a-z0-9-]+")
# A page's key, also a file name on export (related/SLUG.json): no "/", no "..", not hidden.
_VALID_SLUG_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,199}")
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


def slug_problem(slug: str) -> str | None:
    """Why ``slug`` cannot key a page (and name its export file), or None when it can."""
    if not _VALID_SLUG_RE.fullmatch(slug) or ".." in slug:
        return (
            f"invalid page slug {slug[:80]!r}: expected 1 to 200 of a-z, 0-9, '.', '_', '-', "
            "starting with a letter or digit, without '..'"
        )
    return None
