"""Building a page's list from loaded candidates and score rows (pure)."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from datetime import datetime

from debate.core.genes import join_target_label
from debate.core.scoring import display_score, score_color
from debate.kb.related import related_path
from debate.wiki.related.models import (
    SCORE_BASE,
    WEIGHTS,
    Analysis,
    Candidate,
    RelatedItem,
    RelatedList,
)
from debate.wiki.related.render import render_markdown
from debate.wiki.scores import ScoreRow


def _label(row: ScoreRow) -> str | None:
    return row.target_label or join_target_label(row.targets) or None


def _rank_key(c: Candidate, row: ScoreRow) -> tuple:
    assert row.shown_score is not None
    rank = c.relatedness() * (SCORE_BASE + row.shown_score)
    return (-rank, -row.shown_score, row.title.casefold(), row.title, row.id)


def build_list(
    slug: str,
    title: str,
    limit: int,
    candidates: Iterable[tuple[Candidate, ScoreRow]],
    analyses: Sequence[Analysis] = (),
    queued_at: dict[str, datetime] | None = None,
) -> RelatedList:
    """Rank candidates and build the page's list (pure: every input is already loaded).

    ``queued_at`` gives, for hypotheses whose debate is queued or running, when it was queued.
    """
    queued_at = queued_at or {}
    scored: list[tuple[Candidate, ScoreRow]] = []
    waiting: list[tuple[Candidate, ScoreRow]] = []
    for c, row in candidates:
        if row.shown_score is not None:
            scored.append((c, row))
        elif row.status in ("queued", "running"):
            waiting.append((c, row))
    top = heapq.nsmallest(limit, scored, key=lambda cr: _rank_key(*cr))
    # A full list sets a relatedness floor for in-progress lines: a pending debate is shown
    # only when its hypothesis is at least as related as the least related line listed.
    floor = min(c.relatedness() for c, _row in top) if len(top) >= limit else 0.0
    waiting = [cr for cr in waiting if cr[0].relatedness() >= floor]
    top.sort(key=lambda cr: (-cr[1].shown_score, cr[1].title.casefold(), cr[1].title, cr[1].id))  # type: ignore[operator]
    items = [_hyp_item(c, row) for c, row in top]
    items += [
        RelatedItem(
            kind="analysis",
            id=a.id,
            title=a.title,
            path=path,
            score=None,
            shown=None,
            color=None,
            target_label=None,
            targets=[],
            in_progress=True,
            relatedness=WEIGHTS["listed"],
            reasons=["listed"],
        )
        for a in analyses
        if (path := related_path("analysis", a.id)) is not None
    ]
    most_related = sorted(waiting, key=lambda cr: (-cr[0].relatedness(), cr[1].id))[:limit]
    far = datetime.max.replace(tzinfo=None)
    most_related.sort(key=lambda cr: (_naive(queued_at.get(cr[1].id)) or far, cr[1].id))
    items += [_hyp_item(c, row) for c, row in most_related]
    # An id stored before ids were checked cannot be linked safely: such a line is left out.
    items = [i for i in items if i.path == related_path(i.kind, i.id)]
    return RelatedList(slug=slug, title=title, limit=limit, items=items, markdown=render_markdown(items))


def _naive(dt: datetime | None) -> datetime | None:
    return dt.replace(tzinfo=None) if dt is not None and dt.tzinfo else dt


def _hyp_item(c: Candidate, row: ScoreRow) -> RelatedItem:
    shown = display_score(row.shown_score) if row.shown_score is not None else None
    return RelatedItem(
        kind="hypothesis",
        id=row.id,
        title=row.title,
        path=f"/hypothesis/{row.id}",
        score=row.shown_score,
        shown=shown,
        color=score_color(shown) if shown else None,
        target_label=_label(row),
        targets=list(row.targets),
        in_progress=row.shown_score is None,
        relatedness=c.relatedness(),
        reasons=c.reasons(),
        method=row.method if row.shown_score is not None else None,
        models=list(row.models) if row.shown_score is not None else [],
        verified_rate=row.verified_rate if row.shown_score is not None else None,
    )
