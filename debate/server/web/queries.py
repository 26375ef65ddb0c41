"""Read models of the HTTP API and the reviewer UI, and the queries that fill them.

Scores always come from :func:`debate.wiki.scores.score_rows` (the shape of ``debate scores --json``),
history from :func:`debate.wiki.scores.score_history` and target links from
:mod:`debate.wiki.targets`; this module only filters, sorts, pages and links them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlmodel import Session

from debate.core.errors import NotFoundError
from debate.core.genes import gene_key
from debate.core.models import HypothesisOut
from debate.engine.leases import PENDING, interrupted_ids, status_condition, without_interrupted
from debate.kb.hypotheses import get as get_hypothesis
from debate.kb.hypotheses import to_out
from debate.server.controls import NO_CONTROL
from debate.store import tables as t
from debate.wiki.related import disease_key
from debate.wiki.scores import HistoryRow, ScoreRow, ScoreStatus, score_history, score_rows
from debate.wiki.targets import TargetLink, hypothesis_links

# As shown: "interrupted" is a queued or running run whose process died (derived, never stored;
# see debate.engine.leases), and "queued"/"running" then mean live ones only.
RunStatus = Literal["queued", "running", "interrupted", "done", "failed", "cancelled"]
# needs_review: set by the engine when a judge's verdict contradicted the debate's verification.
ReviewStatus = Literal["unreviewed", "approved", "flagged", "needs_review"]
HypothesisSort = Literal[
    "id",
    "-id",
    "title",
    "-title",
    "score",
    "-score",
    "agreement",
    "-agreement",
    "status",
    "-status",
    "flagged",
    "-flagged",
]
MAX_PAGE = 200
MAX_OFFSET = 1_000_000


class ErrorBody(BaseModel):
    """Every error response: a message for people, and details for programs where there are any."""

    message: str = Field(description="What went wrong, in one line.")
    errors: list[dict[str, object]] | None = Field(None, description="Field errors of a 422, when any.")


# ---------------------------------------------------------------- links


class HypothesisLinks(BaseModel):
    """Where to read more about a hypothesis."""

    api: str = Field(description="This hypothesis in the API.")
    page: str = Field(description="Its page in the reviewer UI.")


class RunLinks(BaseModel):
    """Where to read more about a run."""

    api: str = Field(description="This run in the API.")
    transcript: str = Field(description="Its transcript as JSON.")
    page: str = Field(description="Its transcript page in the reviewer UI.")


def hypothesis_links_for(hyp_id: str) -> HypothesisLinks:
    return HypothesisLinks(api=f"/api/hypotheses/{hyp_id}", page=f"/hypotheses/{hyp_id}")


def run_links_for(run_id: str) -> RunLinks:
    return RunLinks(api=f"/api/runs/{run_id}", transcript=f"/api/runs/{run_id}/transcript", page=f"/runs/{run_id}")


# ---------------------------------------------------------------- hypotheses


class HypothesisItem(ScoreRow):
    """A score row (exactly as ``scores.json`` has it) with the hypothesis's diseases and links."""

    diseases: list[str] = Field(description="Diseases, as written.")
    links: HypothesisLinks


class HypothesisPage(BaseModel):
    """One page of the hypothesis list."""

    items: list[HypothesisItem]
    total: int = Field(description="Hypotheses matching the filters, over all pages.")
    limit: int
    offset: int


class HypothesisFilters(BaseModel):
    """Filters and order of the hypothesis list (the API's query and the UI's form)."""

    target: str | None = Field(None, max_length=100, pattern=NO_CONTROL, description="A target gene, any casing.")
    disease: str | None = Field(
        None, max_length=200, pattern=NO_CONTROL, description="A disease; abbreviations match (ALS)."
    )
    status: ScoreStatus | None = None
    flagged: bool | None = Field(None, description="Only hypotheses whose latest run is (not) flagged.")
    review: ReviewStatus | None = Field(None, description="Only hypotheses whose shown run has this review status.")
    q: str | None = Field(None, max_length=200, pattern=NO_CONTROL, description="Words the title must contain.")
    sort: HypothesisSort = "id"


def list_hypotheses(s: Session, filters: HypothesisFilters, *, limit: int = 50, offset: int = 0) -> HypothesisPage:
    """Hypotheses with their score rows, filtered, sorted and paged."""
    H = t.Hypothesis
    q = select(H.id, H.diseases)
    if filters.target:
        HT = t.HypothesisTarget
        q = q.where(H.id.in_(select(HT.hypothesis_id).where(HT.gene_key == gene_key(filters.target))))
    diseases = dict(s.execute(q).all())
    if filters.disease:
        wanted = disease_key(filters.disease)
        diseases = {h: d for h, d in diseases.items() if any(disease_key(x) == wanted for x in d or [])}
    rows = score_rows(s, ids=list(diseases)) if diseases else []
    if filters.status:
        rows = [r for r in rows if r.status == filters.status]
    if filters.flagged is not None:
        rows = [r for r in rows if r.flagged is filters.flagged]
    if filters.review:
        rows = [r for r in rows if r.review_status == filters.review]
    if filters.q:
        words = filters.q.casefold().split()
        rows = [r for r in rows if all(w in r.title.casefold() for w in words)]
    rows = sort_rows(rows, filters.sort)
    page = rows[offset : offset + limit]
    items = [
        HypothesisItem(**r.model_dump(), diseases=list(diseases.get(r.id) or []), links=hypothesis_links_for(r.id))
        for r in page
    ]
    return HypothesisPage(items=items, total=len(rows), limit=limit, offset=offset)


_STATUS_ORDER = {"running": 0, "queued": 1, "scored": 2, "prior": 3, "unscored": 4}


def sort_rows(rows: list[ScoreRow], sort: HypothesisSort) -> list[ScoreRow]:
    """Rows in the order asked for; missing values last either way, ties by id."""
    key = sort.lstrip("-")
    desc = sort.startswith("-")

    def value(r: ScoreRow) -> object:
        if key == "title":
            return r.title.casefold()
        if key == "score":
            return r.shown_score
        if key == "agreement":
            return r.agreement
        if key == "status":
            return _STATUS_ORDER[r.status]
        if key == "flagged":
            return r.flagged
        return r.id

    present = [r for r in rows if value(r) is not None]
    missing = [r for r in rows if value(r) is None]
    present.sort(key=lambda r: r.id)
    present.sort(key=value, reverse=desc)  # type: ignore[arg-type]
    return present + sorted(missing, key=lambda r: r.id)


# ---------------------------------------------------------------- runs


class RunSummary(BaseModel):
    """A run as listed: state, score and review state."""

    id: str
    hypothesis_id: str
    status: RunStatus
    backend: str
    trigger: str = Field(description="What started it: cli, api:<reviewer>, batch, ...")
    batch_id: str | None
    score: float | None = Field(description="The run's consensus (unrounded); not published while flagged.")
    interval: tuple[float, float] | None
    agreement: float | None
    n_judges: int | None
    review_status: ReviewStatus
    flagged: bool = Field(description="Flagged runs' scores are withheld from every list.")
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    links: RunLinks


class ReviewOut(BaseModel):
    """One review action."""

    run_id: str
    action: Literal["approve", "flag", "clear", "comment"]
    by: str = Field(description="The reviewer whose token made it.")
    note: str | None
    at: datetime | None


class RunDetail(RunSummary):
    """A run with its settings, spend and review history."""

    models: dict[str, object]
    config: dict[str, object]
    kb_hash: str | None
    rounds_done: int
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float | None
    reviews: list[ReviewOut]


class RunPage(BaseModel):
    """One page of the run list, newest first."""

    items: list[RunSummary]
    total: int
    limit: int
    offset: int


def _stuck(s: Session, runs: list[t.Run]) -> set[str]:
    """Which of ``runs`` are interrupted (no query when none is queued or running)."""
    return interrupted_ids(s, [r.id for r in runs if r.status in PENDING])


def _summary_fields(r: t.Run, stuck: set[str]) -> dict[str, object]:
    has_interval = r.interval_lo is not None and r.interval_hi is not None
    return {
        "id": r.id,
        "hypothesis_id": r.hypothesis_id,
        "status": "interrupted" if r.id in stuck else r.status,
        "backend": r.backend,
        "trigger": r.trigger,
        "batch_id": r.batch_id,
        "score": r.score,
        "interval": (r.interval_lo, r.interval_hi) if has_interval else None,
        "agreement": r.agreement,
        "n_judges": r.n_judges,
        "review_status": r.review_status,
        "flagged": r.flagged,
        "created_at": t.as_utc(r.created_at),
        "started_at": t.as_utc(r.started_at),
        "finished_at": t.as_utc(r.finished_at),
        "error": r.error,
        "links": run_links_for(r.id),
    }


def run_summaries(s: Session, runs: list[t.Run]) -> list[RunSummary]:
    stuck = _stuck(s, runs)
    return [RunSummary.model_validate(_summary_fields(r, stuck)) for r in runs]


def list_runs(
    s: Session,
    *,
    hypothesis: str | None = None,
    status: RunStatus | None = None,
    flagged: bool | None = None,
    review: ReviewStatus | None = None,
    limit: int = 50,
    offset: int = 0,
) -> RunPage:
    """Runs, newest first, optionally of one hypothesis, in one status or review status, or (not) flagged."""
    R = t.Run
    conds = []
    if hypothesis:
        conds.append(R.hypothesis_id == hypothesis)
    if status:
        conds.append(status_condition(s, status))
    if flagged is not None:
        conds.append(R.flagged.is_(flagged))
    if review is not None:
        conds.append(R.review_status == review)
    total = s.execute(select(func.count()).select_from(R).where(*conds)).scalar_one()
    newest = (R.created_at.desc(), R.id.desc())  # type: ignore[union-attr]
    rows = list(s.execute(select(R).where(*conds).order_by(*newest).limit(limit).offset(offset)).scalars())
    return RunPage(items=run_summaries(s, rows), total=total, limit=limit, offset=offset)


def reviews_of(s: Session, run_id: str) -> list[ReviewOut]:
    V = t.Review
    rows = s.execute(select(V).where(V.run_id == run_id).order_by(V.at, V.id)).scalars()
    return [
        ReviewOut.model_validate(
            {"run_id": v.run_id, "action": v.action, "by": v.by, "note": v.note, "at": t.as_utc(v.at)}
        )
        for v in rows
    ]


def run_detail(s: Session, run_id: str) -> RunDetail:
    """One run with everything but its turns (those are in the transcript)."""
    r = s.get(t.Run, run_id)
    if r is None:
        raise NotFoundError(f"unknown run id {run_id!r}")
    return RunDetail.model_validate(
        {
            **_summary_fields(r, _stuck(s, [r])),
            "models": r.models or {},
            "config": r.config or {},
            "kb_hash": r.kb_hash,
            "rounds_done": r.rounds_done,
            "prompt_tokens": r.prompt_tokens,
            "completion_tokens": r.completion_tokens,
            "cost_usd": r.cost_usd,
            "reviews": reviews_of(s, run_id),
        }
    )


# ---------------------------------------------------------------- one hypothesis


class HypothesisDetail(BaseModel):
    """A hypothesis with its shown score, target links, score history and runs."""

    hypothesis: HypothesisOut
    score: ScoreRow = Field(description="Its row of scores.json: score, prior, agreement, interval, status.")
    withheld: bool = Field(description="Its latest finished run is flagged, so that run's score is not shown.")
    targets: list[TargetLink] = Field(description="Each target gene with the KB pages mentioning it.")
    history: list[HistoryRow] = Field(description="Finished runs, oldest first.")
    runs: list[RunSummary] = Field(description="Every run, newest first.")
    links: HypothesisLinks


def hypothesis_detail(s: Session, hyp_id: str) -> HypothesisDetail:
    """Everything the hypothesis page shows (NotFoundError for an unknown id)."""
    h = get_hypothesis(s, hyp_id)
    row = score_rows(s, ids=[hyp_id])[0]
    R = t.Run
    runs = s.execute(
        select(R).where(R.hypothesis_id == hyp_id).order_by(R.created_at.desc(), R.id.desc())  # type: ignore[union-attr]
    ).scalars()
    return HypothesisDetail(
        hypothesis=to_out(h),
        score=row,
        withheld=row.flagged,
        targets=hypothesis_links(s, hyp_id),
        history=score_history(s, hyp_id),
        runs=run_summaries(s, list(runs)),
        links=hypothesis_links_for(hyp_id),
    )


def active_runs(s: Session, hyp_ids: list[str]) -> dict[str, str]:
    """Hypothesis id -> id of a live queued or running run of it, for those that have one
    (an interrupted run, whose process was killed, is no reason to refuse another)."""
    R = t.Run
    rows = s.execute(
        select(R.hypothesis_id, R.id, R.status)
        .where(R.hypothesis_id.in_(hyp_ids), R.status.in_(("queued", "running")))
        .order_by(R.created_at, R.id)
    ).all()
    out: dict[str, str] = {}
    for hyp_id, run_id, _status in without_interrupted(s, rows):
        out.setdefault(hyp_id, run_id)
    return out
