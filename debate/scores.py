"""The score table: one row per hypothesis with the score the wiki shows, and score history.

Rules for the score shown (``shown_score``):

* the latest unflagged consensus computed here (a ``done`` run with a score, not flagged) wins;
* an imported prior is used only until a debate here scores the hypothesis;
* a flagged run's score is withheld: the previous unflagged score stands, else the prior,
  else nothing.

"Latest" orders runs by ``finished_at`` (falling back to ``created_at``), then by run id, so the
order is total. :func:`score_rows` uses three set-based queries whatever the number of
hypotheses (window functions pick each hypothesis's latest runs in the database).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import and_, case, func, or_, select
from sqlmodel import Session

from debate.store import tables as t

__all__ = [
    "HistoryRow",
    "ScoreRow",
    "changed_hypotheses",
    "score_history",
    "score_rows",
    "scores_json",
]

ScoreStatus = Literal["queued", "running", "scored", "prior", "unscored"]
ACTIVE = ("queued", "running")
# SQLite's default bound-parameter limit is far above this; it keeps IN lists cheap to plan.
_IN_CHUNK = 900


class ScoreRow(BaseModel):
    """One hypothesis and the score the wiki shows for it (``debate scores --json``, ``scores.json``)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="Hypothesis id, h- + 8 hex digits.")
    title: str
    score: float | None = Field(description="Latest unflagged consensus computed here (unrounded).")
    prior: float | None = Field(description="Imported score, not computed here.")
    agreement: float | None = Field(description="Judge agreement of the run whose score is shown.")
    interval: tuple[float, float] | None = Field(description="[lo, hi] of the run whose score is shown.")
    targets: list[str] = Field(description="Target genes in HGNC casing.")
    target_label: str | None = Field(description="Imported target label, kept as written; else None.")
    status: ScoreStatus = Field(
        description="queued/running while a debate of it is pending, else scored, prior or unscored."
    )
    last_run: str | None = Field(description="Id of the run whose score is shown.")
    flagged: bool = Field(description="Its latest done run is flagged (that score is withheld).")
    shown_score: float | None = Field(description="score when computed here, else prior: what lists show.")
    scored_at: str | None = Field(description="ISO time the shown score was computed here.")


class HistoryRow(BaseModel):
    """One finished run of a hypothesis (``debate scores --history ID``)."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    status: str
    finished_at: str | None
    score: float | None
    agreement: float | None
    flagged: bool
    trigger: str
    batch: str | None


def _iso(dt: datetime | None) -> str | None:
    dt = t.as_utc(dt)
    return dt.isoformat() if dt is not None else None


def _chunks(ids: Sequence[str] | None) -> Iterable[Sequence[str] | None]:
    if ids is None:
        yield None
        return
    for i in range(0, len(ids), _IN_CHUNK):
        yield ids[i : i + _IN_CHUNK]


def score_rows(session: Session, *, ids: Iterable[str] | None = None) -> list[ScoreRow]:
    """Score rows for every hypothesis (or only ``ids``; unknown ids are skipped), sorted by id."""
    wanted = None if ids is None else sorted(set(ids))
    if wanted is not None and not wanted:
        return []
    H, R = t.Hypothesis, t.Run
    hyps: list = []
    shown: dict[str, tuple] = {}
    last_flagged: set[str] = set()
    active: dict[str, str] = {}
    for part in _chunks(wanted):
        q = select(H.id, H.title, H.prior_score, H.targets, H.target_label)
        if part is not None:
            q = q.where(H.id.in_(part))
        hyps.extend(session.execute(q).all())

        usable = and_(R.flagged.is_(False), R.score.is_not(None))
        recency = (func.coalesce(R.finished_at, R.created_at).desc(), R.id.desc())
        inner = select(
            R.hypothesis_id, R.id, R.score, R.agreement, R.interval_lo, R.interval_hi,
            R.finished_at, R.flagged,
            func.row_number().over(partition_by=R.hypothesis_id, order_by=recency).label("rn_all"),
            # Usable runs ranked among themselves; others get a separate partition.
            func.row_number().over(
                partition_by=(R.hypothesis_id, case((usable, 1), else_=0)), order_by=recency
            ).label("rn_use"),
            case((usable, 1), else_=0).label("use"),
        ).where(R.status == "done")
        if part is not None:
            inner = inner.where(R.hypothesis_id.in_(part))
        sub = inner.subquery()
        for row in session.execute(
            select(sub).where(or_(sub.c.rn_all == 1, and_(sub.c.use == 1, sub.c.rn_use == 1)))
        ):
            if row.rn_all == 1 and row.flagged:
                last_flagged.add(row.hypothesis_id)
            if row.use == 1 and row.rn_use == 1:
                shown[row.hypothesis_id] = (
                    row.id, row.score, row.agreement, row.interval_lo, row.interval_hi, row.finished_at
                )

        aq = select(R.hypothesis_id, R.status).where(R.status.in_(ACTIVE))
        if part is not None:
            aq = aq.where(R.hypothesis_id.in_(part))
        for hyp_id, status in session.execute(aq):
            # A running debate says more than a queued one.
            if active.get(hyp_id) != "running":
                active[hyp_id] = status

    out: list[ScoreRow] = []
    for h in hyps:
        run = shown.get(h.id)
        score = run[1] if run else None
        lo, hi = (run[3], run[4]) if run else (None, None)
        if h.id in active:
            status: ScoreStatus = active[h.id]  # type: ignore[assignment]
        elif score is not None:
            status = "scored"
        elif h.prior_score is not None:
            status = "prior"
        else:
            status = "unscored"
        out.append(ScoreRow(
            id=h.id,
            title=h.title,
            score=score,
            prior=h.prior_score,
            agreement=run[2] if run else None,
            interval=(lo, hi) if lo is not None and hi is not None else None,
            targets=list(h.targets or []),
            target_label=h.target_label,
            status=status,
            last_run=run[0] if run else None,
            flagged=h.id in last_flagged,
            shown_score=score if score is not None else h.prior_score,
            scored_at=_iso(run[5]) if run else None,
        ))
    out.sort(key=lambda r: r.id)
    return out


def scores_json(rows: Sequence[ScoreRow]) -> str:
    """The exact text of ``debate scores --json`` and of an export's ``scores.json``."""
    return json.dumps([r.model_dump(mode="json") for r in rows], ensure_ascii=False, indent=2) + "\n"


def score_history(session: Session, hyp_id: str) -> list[HistoryRow]:
    """Every finished run of a hypothesis, oldest first (raises NotFoundError for an unknown id)."""
    from debate.hypotheses import get  # local: keeps this module importable without the KB stack

    get(session, hyp_id)
    R = t.Run
    rows = session.execute(
        select(R).where(R.hypothesis_id == hyp_id, R.finished_at.is_not(None))
        .order_by(R.finished_at, R.id)
    ).scalars()
    return [
        HistoryRow(run_id=r.id, status=r.status, finished_at=_iso(r.finished_at), score=r.score,
                   agreement=r.agreement, flagged=r.flagged, trigger=r.trigger, batch=r.batch_id)
        for r in rows
    ]


def changed_hypotheses(session: Session, since: datetime) -> set[str]:
    """Hypotheses whose shown score may have moved since ``since``: a run finished or was reviewed."""
    R, V = t.Run, t.Review
    finished = select(R.hypothesis_id).where(R.finished_at >= since)
    reviewed = select(R.hypothesis_id).join(V, V.run_id == R.id).where(V.at >= since)
    return set(session.execute(finished.union(reviewed)).scalars())
