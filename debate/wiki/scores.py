"""The score table: one row per hypothesis with the score the wiki shows, and score history.

Every shown score is labelled with how it was made (``method``, :data:`SCORE_METHODS`): ``model``
(a debate of language models: the run's backend is ``openai`` or ``local``), ``offline`` (the
deterministic heuristic agents, backend ``offline``) or ``prior`` (imported, not computed here);
``null`` when nothing is shown. ``models`` names what produced it: the distinct model names the
run recorded for its proposer, critic and judges, in that order (``offline-heuristic-v1`` for an
offline run, as recorded), and ``[]`` for a prior or nothing. ``verified_rate`` says how much of
that run's argument stood on evidence: the share of its claims whose quote was found in the
evidence they cite (``claims_verified`` of ``claims_cited``; ``null`` for a prior, nothing, or a
run finished before quotes were checked).

Rules for the score shown (``shown_score``):

* the latest unflagged consensus computed here (a ``done`` run with a score, not flagged) wins;
* an imported prior is used only until a debate here scores the hypothesis;
* a flagged run's score is withheld: the previous unflagged score stands if every page it drew
  evidence from is unchanged since (same content hash); else the prior; else nothing, and the
  hypothesis stays out of lists until a debate scores it again (``rescore --changed`` picks it
  up, as its evidence changed). A score computed before its evidence changed is not brought
  back by a flag.

"Latest" orders runs by ``finished_at`` (falling back to ``created_at``), then by run id, so the
order is total. :func:`score_rows` reads two set-based statements (per 5,000 ids) whatever the
number of hypotheses, and picks each hypothesis's latest runs in one pass over them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from sqlalchemy import String, bindparam, func, or_, select, type_coerce
from sqlalchemy.engine import Connection
from sqlmodel import Session

from debate.core.quotes import verified_rate
from debate.engine.leases import without_interrupted
from debate.store import tables as t

__all__ = [
    "SCORE_METHODS",
    "HistoryRow",
    "ScoreMethod",
    "ScoreRow",
    "ScoreStatus",
    "changed_hypotheses",
    "score_history",
    "score_rows",
    "score_rows_queued",
    "scores_json",
    "method_of_backend",
    "models_of_run",
    "run_scores",
    "run_scores_labelled",
    "shown_scores",
    "verified_rate",
]

ScoreStatus = Literal["queued", "running", "scored", "prior", "unscored"]
ScoreMethod = Literal["model", "offline", "prior"]
SCORE_METHODS: tuple[ScoreMethod, ...] = ("model", "offline", "prior")
ACTIVE = ("queued", "running")
# Below SQLite's (32,766) and PostgreSQL's (65,535) bound-parameter limits.
_IN_CHUNK = 5000


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
    judges: int | None = Field(None, description="Judges seated on the panel of the run whose score is shown.")
    judges_counted: int | None = Field(
        None,
        description="Of those, the judges whose verdicts the score counts: fewer when a judge failed and the "
        "panel's quorum still held (its seat stays empty).",
    )
    method: ScoreMethod | None = Field(
        None,
        description="How the shown score was made: model (a debate of language models), offline (the "
        "deterministic heuristic agents), prior (imported, not computed here); null when nothing is shown.",
    )
    models: list[str] = Field(
        default_factory=list,
        description="Distinct model names of the run whose score is shown (proposer, critic, judges; "
        "offline-heuristic-v1 for an offline run); empty for a prior or nothing.",
    )
    claims_verified: int | None = Field(
        None,
        description="Claims of the run whose score is shown (proposer and critic) whose quote was found in "
        "the evidence they cite; null for a prior or nothing, and for a run finished before quotes were checked.",
    )
    claims_cited: int | None = Field(
        None, description="Claims of that run that cite evidence, counted when claims_verified is."
    )
    verified_rate: float | None = Field(
        None,
        description="claims_verified / claims_cited in [0, 1]; null when not counted or no claim of the run cited evidence.",
    )
    review_status: str | None = Field(
        None,
        description="Review status of the run whose score is shown: unreviewed, approved, flagged or needs_review "
        "(a judge's verdict contradicted the debate; the score is still shown); null for a prior or nothing.",
    )


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


def method_of_backend(backend: str) -> ScoreMethod:
    """A run's scoring method from its backend: ``offline`` for the heuristic agents, else ``model``."""
    return "offline" if backend == "offline" else "model"


def models_of_run(models: Mapping[str, object] | None) -> list[str]:
    """The distinct model names a run recorded (``models`` column: role -> name, ``judges`` a list),
    proposer, critic, then judges; other keys (``base_url``) are not model names."""
    out: list[str] = []
    models = models or {}
    judges = models.get("judges")
    names = [models.get("proposer"), models.get("critic"), models.get("judge")]
    names += list(judges) if isinstance(judges, list | tuple) else []
    for name in names:
        if isinstance(name, str) and name and name not in out:
            out.append(name)
    return out


def _iso(dt: datetime | None) -> str | None:
    dt = t.as_utc(dt)
    return dt.isoformat() if dt is not None else None


def _chunks(ids: Sequence[str] | None) -> Iterable[Sequence[str] | None]:
    if ids is None:
        yield None
        return
    for i in range(0, len(ids), _IN_CHUNK):
        yield ids[i : i + _IN_CHUNK]


_H, _R = t.Hypothesis, t.Run
# Built once with bound parameters: scores are read for every Related Hypotheses list.
_Q_HYPS = select(_H.id, _H.title, _H.prior_score, _H.targets, _H.target_label)
_Q_RUNS = select(
    _R.hypothesis_id,
    _R.id,
    _R.status,
    _R.flagged,
    _R.score,
    _R.agreement,
    _R.interval_lo,
    _R.interval_hi,
    _R.n_judges,
    _R.config["judges"].as_integer().label("judges_seated"),
    _R.backend,
    _R.models,
    _R.claims_verified,
    _R.claims_cited,
    _R.review_status,
    _R.finished_at,
    _R.created_at,
).where(_R.status.in_(("done", *ACTIVE)))
_Q_HYPS_IN = _Q_HYPS.where(_H.id.in_(bindparam("ids", expanding=True)))
_Q_RUNS_IN = _Q_RUNS.where(_R.hypothesis_id.in_(bindparam("ids", expanding=True)))
_Q_PRIORS_IN = select(_H.id, _H.prior_score).where(_H.id.in_(bindparam("ids", expanding=True)))
# Ranking needs only the order of runs: times as stored text skip datetime parsing (SQLite stores
# them fixed-width, so text order is time order; PostgreSQL returns datetimes either way). No
# status filter: one index probe per id instead of one per (id, status); the few failed or
# cancelled runs are skipped when read.
_Q_RUN_ORDER_IN = select(
    _R.hypothesis_id,
    _R.id,
    _R.status,
    _R.flagged,
    _R.score,
    type_coerce(func.coalesce(_R.finished_at, _R.created_at), String).label("finished_at"),
    type_coerce(_R.created_at, String).label("created_at"),
    _R.backend,
).where(_R.hypothesis_id.in_(bindparam("ids", expanding=True)))


_E, _P = t.Evidence, t.Page
# Runs whose evidence came from a page that changed (or went) since they retrieved it.
_Q_STALE_IN = (
    select(_E.run_id)
    .distinct()
    .select_from(_E.__table__.outerjoin(_P.__table__, _P.slug == _E.page_slug))  # type: ignore[attr-defined]
    .where(_E.run_id.in_(bindparam("ids", expanding=True)))
    .where(or_(_P.content_hash.is_(None), _P.content_hash != _E.page_hash))
)


def _stale(conn: Connection, run_ids: Iterable[str]) -> set[str]:
    """Of ``run_ids``, those whose evidence no longer reads as the KB does."""
    out: set[str] = set()
    for part in _chunks(sorted(set(run_ids))):
        if part:
            out.update(conn.execute(_Q_STALE_IN, {"ids": list(part)}).scalars())
    return out


@dataclass
class _Runs:
    """Per hypothesis: its latest done run, latest usable (unflagged, scored) run, pending debate."""

    done: dict[str, tuple] = field(default_factory=dict)  # id -> (recency key, row)
    usable: dict[str, tuple] = field(default_factory=dict)
    active: dict[str, str] = field(default_factory=dict)  # id -> queued | running
    queued_at: dict[str, datetime] = field(default_factory=dict)

    def add(self, rows: Iterable) -> None:  # type: ignore[type-arg]
        for r in rows:
            h = r.hypothesis_id
            if r.status != "done":
                if self.active.get(h) != "running":  # a running debate says more than a queued one
                    self.active[h] = r.status
                if h not in self.queued_at or r.created_at < self.queued_at[h]:
                    self.queued_at[h] = r.created_at
                continue
            key = (r.finished_at or r.created_at, r.id)
            if h not in self.done or key > self.done[h][0]:
                self.done[h] = (key, r)
            if not r.flagged and r.score is not None and (h not in self.usable or key > self.usable[h][0]):
                self.usable[h] = (key, r)

    def drop_stale_fallbacks(self, conn: Connection) -> None:
        """Where the latest done run is flagged, keep the earlier usable one only if its
        evidence is unchanged since."""
        fallback = {
            self.usable[h][1].id: h
            for h, (_, latest) in self.done.items()
            if latest.flagged and h in self.usable and self.usable[h][1].id != latest.id
        }
        for run_id in _stale(conn, fallback):
            del self.usable[fallback[run_id]]

    def shown(self, hyp_id: str, prior: float | None) -> float | None:
        """The rule: the latest usable score computed here, else the imported prior."""
        run = self.usable.get(hyp_id)
        return run[1].score if run is not None else prior


def run_scores(session: Session, ids: Iterable[str]) -> dict[str, tuple[float | None, bool]]:
    """id -> (latest usable score computed here, has a queued or running debate), for those of
    ``ids`` with a done or pending run; a hypothesis missing here shows its prior.

    Only the candidates' runs are read (an index probe each) and no score rows are built: the
    cheap form that ranks thousands of Related Hypotheses candidates.
    """
    return {h: (score, pending) for h, (score, pending, _m) in run_scores_labelled(session, ids).items()}


def run_scores_labelled(
    session: Session, ids: Iterable[str]
) -> dict[str, tuple[float | None, bool, ScoreMethod | None]]:
    """:func:`run_scores` with the method of each score (None where no score is computed here)."""
    wanted = list(set(ids))
    conn = session.connection()
    seen: set[str] = set()
    active: set[str] = set()
    usable: dict[str, tuple[tuple, float, str, str]] = {}  # type: ignore[type-arg]  # id -> (key, score, run, backend)
    latest: dict[str, tuple[tuple, bool]] = {}  # type: ignore[type-arg]  # id -> (recency key, flagged)
    for part in _chunks(wanted):
        # An interrupted run (its process was killed) is no debate in progress.
        rows = without_interrupted(conn, conn.execute(_Q_RUN_ORDER_IN, {"ids": part}).all())
        for h, run_id, status, flagged, score, finished, created, backend in rows:
            if status in ACTIVE:
                active.add(h)
            elif status != "done":
                continue
            seen.add(h)
            if status != "done":
                continue
            key = (finished or created, run_id)
            if h not in latest or key > latest[h][0]:
                latest[h] = (key, bool(flagged))
            if not flagged and score is not None and (h not in usable or key > usable[h][0]):
                usable[h] = (key, score, run_id, backend)
    # Behind a flagged latest run, an earlier score stands only while its evidence is unchanged.
    fallback = {usable[h][2]: h for h, (_, flagged) in latest.items() if flagged and h in usable}
    for run_id in _stale(conn, fallback):
        del usable[fallback[run_id]]
    return {
        h: (usable[h][1], h in active, method_of_backend(usable[h][3])) if h in usable else (None, h in active, None)
        for h in seen
    }


def shown_scores(
    session: Session, ids: Iterable[str], *, priors: Mapping[str, float | None] | None = None
) -> dict[str, tuple[float | None, bool]]:
    """id -> (shown score, has a queued or running debate), without building score rows.

    :func:`run_scores` with the rule applied: ``priors`` (id -> imported prior) may come from
    the caller's cache, else they are read too. Unknown ids are left out.
    """
    wanted = sorted(set(ids))
    if priors is None:
        conn = session.connection()
        priors = {}
        for part in _chunks(wanted):
            priors.update(conn.execute(_Q_PRIORS_IN, {"ids": list(part)}).all())  # type: ignore[arg-type,union-attr]
    runs = run_scores(session, wanted)
    out: dict[str, tuple[float | None, bool]] = {}
    for h in wanted:
        if h in priors:
            score, pending = runs.get(h, (None, False))
            out[h] = (score if score is not None else priors[h], pending)
    return out


def score_rows(session: Session, *, ids: Iterable[str] | None = None) -> list[ScoreRow]:
    """Score rows for every hypothesis (or only ``ids``; unknown ids are skipped), sorted by id."""
    return score_rows_queued(session, ids=ids)[0]


def score_rows_queued(
    session: Session, *, ids: Iterable[str] | None = None
) -> tuple[list[ScoreRow], dict[str, datetime]]:
    """:func:`score_rows`, plus when each hypothesis with a queued or running debate was queued.

    Two set-based statements per chunk of ids (the hypotheses, and their done or pending runs
    through the ``(hypothesis_id, status)`` index); picking each one's latest runs is a pass
    over those rows.
    """
    wanted = None if ids is None else sorted(set(ids))
    if wanted is not None and not wanted:
        return [], {}
    conn = session.connection()
    hyps: list = []  # type: ignore[type-arg]
    runs = _Runs()
    for part in _chunks(wanted):
        if part is None:
            hyps.extend(conn.execute(_Q_HYPS))
            runs.add(without_interrupted(conn, conn.execute(_Q_RUNS)))  # interrupted: not in progress
        else:
            params = {"ids": list(part)}
            hyps.extend(conn.execute(_Q_HYPS_IN, params).all())
            runs.add(without_interrupted(conn, conn.execute(_Q_RUNS_IN, params).all()))
    runs.drop_stale_fallbacks(conn)
    out: list[ScoreRow] = []
    for h in hyps:
        run = runs.usable[h.id][1] if h.id in runs.usable else None
        score = run.score if run is not None else None
        if h.id in runs.active:
            status: ScoreStatus = runs.active[h.id]  # type: ignore[assignment]
        elif score is not None:
            status = "scored"
        elif h.prior_score is not None:
            status = "prior"
        else:
            status = "unscored"
        has_interval = run is not None and run.interval_lo is not None and run.interval_hi is not None
        method: ScoreMethod | None = None
        if run is not None:
            method = method_of_backend(run.backend)
        elif h.prior_score is not None:
            method = "prior"
        out.append(
            ScoreRow(
                id=h.id,
                title=h.title,
                score=score,
                prior=h.prior_score,
                agreement=run.agreement if run is not None else None,
                interval=(run.interval_lo, run.interval_hi) if has_interval else None,  # type: ignore[union-attr]
                targets=list(h.targets or []),
                target_label=h.target_label,
                status=status,
                last_run=run.id if run is not None else None,
                flagged=h.id in runs.done and bool(runs.done[h.id][1].flagged),
                shown_score=runs.shown(h.id, h.prior_score),
                scored_at=_iso(run.finished_at) if run is not None else None,
                judges=run.judges_seated if run is not None else None,
                judges_counted=run.n_judges if run is not None else None,
                method=method,
                models=models_of_run(run.models) if run is not None else [],
                claims_verified=run.claims_verified if run is not None else None,
                claims_cited=run.claims_cited if run is not None else None,
                verified_rate=verified_rate(run.claims_verified, run.claims_cited) if run is not None else None,
                review_status=run.review_status if run is not None else None,
            )
        )
    out.sort(key=lambda r: r.id)
    return out, {h: at for h, at in runs.queued_at.items() if h in runs.active}


_ROWS = TypeAdapter(list[ScoreRow])


def scores_json(rows: Sequence[ScoreRow]) -> str:
    """The exact text of ``debate scores --json`` and of an export's ``scores.json``.

    The JSON list of ``row.model_dump(mode="json")``, serialized by pydantic (50,000 rows in a
    fraction of the time ``json.dumps`` takes).
    """
    return _ROWS.dump_json(list(rows), indent=2).decode("utf-8") + "\n"


def score_history(session: Session, hyp_id: str) -> list[HistoryRow]:
    """Every finished run of a hypothesis, oldest first (raises NotFoundError for an unknown id)."""
    from debate.kb.hypotheses import get  # local: keeps this module importable without the KB stack

    get(session, hyp_id)
    R = t.Run
    rows = session.execute(
        select(R).where(R.hypothesis_id == hyp_id, R.finished_at.is_not(None)).order_by(R.finished_at, R.id)
    ).scalars()
    return [
        HistoryRow(
            run_id=r.id,
            status=r.status,
            finished_at=_iso(r.finished_at),
            score=r.score,
            agreement=r.agreement,
            flagged=r.flagged,
            trigger=r.trigger,
            batch=r.batch_id,
        )
        for r in rows
    ]


def changed_hypotheses(session: Session, since: datetime) -> set[str]:
    """Hypotheses whose list line may have moved since ``since``.

    A run of it finished (its score), was reviewed (a flag withholds a score) or was queued
    (an in-progress line).
    """
    R, V = t.Run, t.Review
    since = (since if since.tzinfo else since.replace(tzinfo=UTC)).astimezone(UTC)
    finished = select(R.hypothesis_id).where((R.finished_at >= since) | (R.created_at >= since))
    reviewed = select(R.hypothesis_id).join(V, V.run_id == R.id).where(V.at >= since)
    return set(session.execute(finished.union(reviewed)).scalars())
