"""What screening marked suspect: chunks and imported hypotheses holding instruction-like text.

Read by `debate kb audit`, `debate kb show` and the reviewer UI. A suspect chunk is shown with
the page line that matched: the first line of the page, from the chunk's first line up to the
next chunk's, that the screen flags on its own (markup included: a citation marker or an HTML
comment the chunk's text leaves out). When no single line does (a phrase broken over two lines,
a heading above the chunk), the chunk's first line and its flagged heading or text stand in.
Excerpts are one line with no control characters (safe for a terminal; HTML views still escape
them), cut to 200 characters.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlmodel import Session, col

from debate.core.text import terminal_safe
from debate.kb.screen import screen, screen_hypothesis
from debate.store import tables as t

__all__ = [
    "SuspectChunk",
    "SuspectHypothesis",
    "excerpt",
    "suspect_chunk_count",
    "suspect_chunks",
    "suspect_hypotheses",
]

EXCERPT_CHARS = 200


@dataclass(frozen=True)
class SuspectChunk:
    slug: str
    ordinal: int
    heading_path: list[str]
    line: int  # the page line that matched, else the chunk's first line
    reasons: list[str]
    excerpt: str

    def as_dict(self) -> dict[str, object]:
        return {
            "slug": self.slug,
            "ordinal": self.ordinal,
            "heading_path": self.heading_path,
            "line": self.line,
            "reasons": self.reasons,
            "excerpt": self.excerpt,
        }


@dataclass(frozen=True)
class SuspectHypothesis:
    id: str
    title: str
    source: str
    reasons: list[str]

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, "title": self.title, "source": self.source, "reasons": self.reasons}


def _cut(text: str, limit: int = EXCERPT_CHARS) -> str:
    one = " ".join(terminal_safe(text).split())
    return one if len(one) <= limit else one[: limit - 1] + "…"


def excerpt(text: str, heading_path: list[str] | None = None) -> str:
    """The first line of ``text`` that screening flags on its own, else a flagged heading, else
    the text's start: one terminal-safe line of at most 200 characters."""
    for line in text.split("\n"):
        if screen(line):
            return _cut(line)
    for heading in heading_path or []:
        if screen(heading):
            return _cut(heading)
    return _cut(text)


def _reasons(stored: str | None) -> list[str]:
    return [r for r in (stored or "").split(", ") if r]


def _matched_line(lines: list[str], first: int, end: int) -> tuple[int, str] | None:
    """(1-based number, text) of the first line in ``[first, end)`` the screen flags, or None."""
    for n in range(max(first, 1), min(end, len(lines) + 1)):
        if screen(lines[n - 1]):
            return n, lines[n - 1]
    return None


def suspect_chunks(s: Session, *, slug: str | None = None) -> list[SuspectChunk]:
    """Every suspect chunk (of the page ``slug`` only, if given), by page slug and position."""
    C, P = t.Chunk, t.Page
    stmt = (
        select(P.id, P.slug, C.ordinal, C.heading_path, C.line, C.suspect_reason, C.text)
        .join(P, P.id == C.page_id)
        .where(C.suspect)  # type: ignore[arg-type]
        .order_by(P.slug, C.ordinal)
    )
    if slug is not None:
        stmt = stmt.where(P.slug == slug)
    rows = s.execute(stmt).all()
    page_ids = sorted({r.id for r in rows})
    raw: dict[int, str] = {}
    starts: dict[int, list[int]] = {}  # page id -> first lines of its chunks, in order
    if page_ids:
        in_pages = col(P.id).in_(page_ids)
        raw = {page_id: text for page_id, text in s.execute(select(P.id, P.raw_text).where(in_pages))}
        for page_id, line in s.execute(
            select(C.page_id, C.line).where(col(C.page_id).in_(page_ids)).order_by(C.page_id, C.ordinal)
        ):
            starts.setdefault(page_id, []).append(line)
    out: list[SuspectChunk] = []
    for r in rows:
        path = list(r.heading_path or [])
        later = [n for n in starts.get(r.id, []) if n > r.line]
        found = _matched_line(raw.get(r.id, "").split("\n"), r.line, min(later, default=r.line + 10_000))
        line, shown = found if found is not None else (r.line, excerpt(r.text, path))
        out.append(
            SuspectChunk(
                slug=r.slug,
                ordinal=r.ordinal,
                heading_path=path,
                line=line,
                reasons=_reasons(r.suspect_reason),
                excerpt=_cut(shown),
            )
        )
    return out


def suspect_chunk_count(s: Session, page_id: int) -> int:
    """How many chunks of a page are suspect."""
    C = t.Chunk
    return s.execute(
        select(func.count()).select_from(C).where(C.page_id == page_id, C.suspect)  # type: ignore[arg-type]
    ).scalar_one()


def suspect_hypotheses(s: Session) -> list[SuspectHypothesis]:
    """Every hypothesis marked suspect (imported from instruction-like page text), by id, with
    the rules its text matches now."""
    H = t.Hypothesis
    rows = s.execute(select(H).where(H.suspect).order_by(H.id)).scalars()  # type: ignore[arg-type]
    return [
        SuspectHypothesis(
            id=h.id,
            title=h.title,
            source=h.source,
            reasons=screen_hypothesis(h.title, h.statement, h.target_label),
        )
        for h in rows
    ]
