"""Rescoring batches: a frozen selection that survives crashes, run within a budget.

A batch stores its options, the hypotheses chosen, a settings snapshot and one item per
hypothesis. An item gets its run id exactly once, in the transaction that creates the run, so a
hypothesis is debated at most once per batch; after a crash an item that has a run resumes that
run (from its checkpoint), and an item without one is claimed as usual. The run's score is
written in the same transaction that marks it done (see :mod:`debate.engine.runstore`), so no partial
score is ever visible.

This module is the store (batches, items, spend, ownership) and the budget; running a batch is
:mod:`debate.jobs.runner`. Spend is read from the attempts recorded under the batch's runs, failed
ones included; a call that reached a model but reported no usage is counted as unknown, never 0.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import case, func, select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from debate.core.config import Settings
from debate.core.errors import ConfigError, NotFoundError, UserInputError
from debate.engine.leases import OwnerState, me, owner_state
from debate.jobs.selection import Selected, SelectionOptions
from debate.store import tables as t
from debate.store.db import session_scope
from debate.store.tables import utcnow

__all__ = [
    "OPEN",
    "Budget",
    "Spend",
    "batch_counts",
    "batch_spend",
    "check_budget",
    "create_batch",
    "find_open_batch",
    "get_batch",
    "list_batches",
    "open_or_create_batch",
    "owner_alive",
    "settings_snapshot",
]

OPEN = ("pending", "running", "stopped")
BATCH_STATUSES = (*OPEN, "done")
TERMINAL = ("done", "failed", "cancelled")
# Outcomes of calls that never reached a model: they spent nothing, so no usage is missing.
_UNSENT = ("http_error", "connection_error")


class Budget(BaseModel):
    """Spend limits of a batch; 0 means no limit."""

    model_config = ConfigDict(extra="forbid")

    max_tokens_total: int = Field(0, ge=0)
    max_cost: float = Field(0.0, ge=0)

    @property
    def limited(self) -> bool:
        return bool(self.max_tokens_total or self.max_cost)

    def reached(self, spend: Spend) -> str | None:
        """Why no new debate may start, or None while under budget."""
        if self.max_tokens_total and spend.tokens >= self.max_tokens_total:
            return f"token budget of {self.max_tokens_total:,} reached"
        if self.max_cost and spend.cost_usd >= self.max_cost:
            return f"cost budget of ${self.max_cost:,.4f} reached"
        return None


class Spend(BaseModel):
    """What a batch's runs spent so far; calls without reported usage are counted, not guessed."""

    model_config = ConfigDict(extra="forbid")

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    calls: int = 0
    unknown_tokens: int = Field(0, description="Calls that reached a model but reported no usage.")
    unknown_cost: int = Field(0, description="Calls with no price or no usage: their cost is unknown.")

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Spend) -> Spend:
        return Spend(**{k: getattr(self, k) + getattr(other, k) for k in Spend.model_fields})

    def __sub__(self, other: Spend) -> Spend:
        return Spend(**{k: getattr(self, k) - getattr(other, k) for k in Spend.model_fields})


# ---------------------------------------------------------------- store


def new_batch_id() -> str:
    return f"b-{secrets.token_hex(6)}"


def settings_snapshot(settings: Settings, *, backend: str, concurrency: int, budget: Budget) -> dict[str, Any]:
    """What a batch records about how it runs: run config, models, prompts, limits, budget."""
    from debate.engine.backends import backend_models, prompt_hashes
    from debate.engine.runs import run_config

    cfg = run_config(settings, backend=backend)
    o = settings.openai
    snap: dict[str, Any] = {
        "run_config": cfg,
        "models": backend_models(settings, backend, cfg["judges"]),
        "prompt_hashes": prompt_hashes(settings, backend),
        "concurrency": concurrency,
        "budget": budget.model_dump(),
    }
    if backend == "openai":
        snap["limits"] = {"max_concurrency": o.max_concurrency, "rpm": o.rpm, "tpm": o.tpm}
        snap["prices"] = {m: list(p) for m, p in o.prices.items()}
    return snap


def split_limits(settings: Settings, processes: int) -> Settings:
    """Settings for one of ``processes`` processes sharing an endpoint: each gets an equal share of
    its limits (limiters are per process), so together they stay within them."""
    o = settings.openai
    share = o.model_copy(
        update={
            "max_concurrency": max(1, o.max_concurrency // processes),
            "rpm": max(1, o.rpm // processes) if o.rpm else 0,
            "tpm": max(1, o.tpm // processes) if o.tpm else 0,
        }
    )
    return settings.model_copy(update={"openai": share})


def check_budget(settings: Settings, backend: str, budget: Budget, judges: int) -> None:
    """Refuse a budget that cannot be enforced (offline runs spend no tokens; unpriced models)."""
    if not budget.limited:
        return
    if backend == "offline":
        raise UserInputError("--max-tokens-total / --max-cost need the openai backend (offline debates use no tokens)")
    if budget.max_cost:
        from debate.engine.backends import backend_models

        models = backend_models(settings, backend, judges)
        used = {models["proposer"], models["critic"], *models["judges"]}  # type: ignore[misc]
        unpriced = sorted(str(m) for m in used if m not in settings.openai.prices)
        if unpriced:
            raise ConfigError(f"--max-cost needs a price for {', '.join(unpriced)} in [openai.prices]")


def find_open_batch(session: Session, options_key: str) -> t.Batch | None:
    """The newest unfinished batch made with these options, if any."""
    return session.execute(
        select(t.Batch)
        .where(t.Batch.options_key == options_key, t.Batch.status.in_(OPEN))
        .order_by(t.Batch.created_at.desc())
        .limit(1)
    ).scalar_one_or_none()


def create_batch(
    engine: Engine,
    opts: SelectionOptions,
    selected: Sequence[Selected],
    snapshot: dict[str, Any],
) -> tuple[t.Batch, bool]:
    """Store a new batch with its items, or return the open one with the same options.

    Returns (batch, created). One transaction: a concurrent twin finds this one. An item
    selected for an interrupted run adopts it (see :func:`_adopt`).
    """
    now = utcnow()
    with session_scope(engine, immediate=True) as s:
        existing = find_open_batch(s, opts.key())
        if existing is not None:
            return existing, False
        batch = t.Batch(
            id=new_batch_id(),
            options=opts.model_dump(mode="json"),
            options_key=opts.key(),
            backend=opts.backend,
            hypothesis_ids=[x.id for x in selected],
            settings=snapshot,
            status="pending",
            total=len(selected),
            created_at=now,
            updated_at=now,
        )
        s.add(batch)
        s.flush()
        if selected:
            s.execute(
                t.BatchItem.__table__.insert(),
                [  # type: ignore[attr-defined]  (Core: bulk speed)
                    dict(
                        batch_id=batch.id,
                        hypothesis_id=x.id,
                        ordinal=i,
                        reasons=x.reasons.model_dump(),
                        run_id=None,
                        status="pending",
                        updated_at=now,
                    )
                    for i, x in enumerate(selected)
                ],
            )
            _adopt(s, batch.id, {x.id: x.reasons.interrupted for x in selected if x.reasons.interrupted})
        return batch, True


def _adopt(session: Session, batch_id: str, runs: dict[str, str]) -> None:
    """Give items their hypothesis's interrupted run (hypothesis id → run id), so the batch
    resumes it. A run is adopted once (``batch_id IS NULL``): one another batch adopted
    meanwhile leaves the item to get a new run as usual."""
    R, B = t.Run, t.BatchItem
    now = utcnow()
    for hyp_id, run_id in runs.items():
        adopted = session.execute(
            update(R).where(R.id == run_id, R.batch_id.is_(None)).values(batch_id=batch_id)
        ).rowcount  # type: ignore[attr-defined]
        if adopted:
            session.execute(
                update(B)
                .where(B.batch_id == batch_id, B.hypothesis_id == hyp_id)
                .values(run_id=run_id, status="queued", updated_at=now)
            )


def open_or_create_batch(
    engine: Engine,
    settings: Settings,
    opts: SelectionOptions,
    *,
    ids: Sequence[str] | None = None,
    concurrency: int | None = None,
    budget: Budget | None = None,
) -> tuple[t.Batch | None, bool]:
    """The unfinished batch made with ``opts``, else a new one holding today's selection.

    Returns (batch, created); (None, False) when nothing is selected. ``budget`` defaults to
    ``[rescore]`` settings, ``concurrency`` to ``rescore.concurrency``.
    """
    from debate.engine.backends import prompt_hashes
    from debate.jobs.selection import select_hypotheses

    with session_scope(engine) as s:
        existing = find_open_batch(s, opts.key())
        if existing is not None:
            return existing, False
        selected = select_hypotheses(
            s,
            opts,
            now=utcnow(),
            current_prompts=prompt_hashes(settings, opts.backend),
            ids=ids,
            heartbeat_s=settings.debate.heartbeat_s,
        )
    if not selected:
        return None, False
    r = settings.rescore
    budget = budget or Budget(max_tokens_total=r.max_tokens_total, max_cost=r.max_cost)
    check_budget(settings, opts.backend, budget, settings.debate.judges)
    snap = settings_snapshot(settings, backend=opts.backend, concurrency=concurrency or r.concurrency, budget=budget)
    return create_batch(engine, opts, selected, snap)


def get_batch(session: Session, batch_id: str) -> t.Batch:
    batch = session.get(t.Batch, batch_id)
    if batch is None:
        raise NotFoundError(f"unknown batch id {batch_id!r}")
    return batch


def list_batches(session: Session, *, status: str | None = None, limit: int = 50) -> list[t.Batch]:
    """Batches, newest first; an unknown ``status`` is refused rather than matching nothing."""
    if status and status not in BATCH_STATUSES:
        raise UserInputError(f"unknown batch status {status!r} (expected one of: {', '.join(BATCH_STATUSES)})")
    q = select(t.Batch).order_by(t.Batch.created_at.desc(), t.Batch.id).limit(limit)
    if status:
        q = q.where(t.Batch.status == status)
    return list(session.execute(q).scalars())


def sync_items(session: Session, batch_id: str) -> None:
    """Copy each claimed item's run status onto the item (the run's status is the truth)."""
    run_status = select(t.Run.status).where(t.Run.id == t.BatchItem.run_id).scalar_subquery()
    session.execute(
        update(t.BatchItem)
        .where(t.BatchItem.batch_id == batch_id, t.BatchItem.run_id.is_not(None))
        .values(status=run_status)
    )


def batch_counts(session: Session, batch_id: str) -> dict[str, int]:
    """Items by status (from their runs: queued, running, done, failed, cancelled; pending: no run yet)."""
    rows = session.execute(
        select(t.Run.status, func.count())
        .select_from(t.BatchItem)
        .outerjoin(t.Run, t.Run.id == t.BatchItem.run_id)
        .where(t.BatchItem.batch_id == batch_id)
        .group_by(t.Run.status)
    ).all()
    return {status or "pending": n for status, n in rows}


def _spend_query():  # type: ignore[no-untyped-def]
    A = t.Attempt
    reached = A.outcome.not_in(_UNSENT)
    return select(
        A.run_id,
        func.coalesce(func.sum(A.prompt_tokens), 0),
        func.coalesce(func.sum(A.completion_tokens), 0),
        func.coalesce(func.sum(A.cost_usd), 0.0),
        func.count(A.id),
        func.sum(case((reached & A.prompt_tokens.is_(None), 1), else_=0)),
        func.sum(case((reached & A.cost_usd.is_(None), 1), else_=0)),
    ).group_by(A.run_id)


def _spend(row: Any) -> Spend:
    return Spend(
        prompt_tokens=row[1],
        completion_tokens=row[2],
        cost_usd=row[3],
        calls=row[4],
        unknown_tokens=row[5] or 0,
        unknown_cost=row[6] or 0,
    )


def spend_by_run(session: Session, batch_id: str) -> dict[str, Spend]:
    """Spend of each run of a batch, from its recorded attempts (failed ones included)."""
    q = _spend_query().join(t.Run, t.Run.id == t.Attempt.run_id).where(t.Run.batch_id == batch_id)
    return {row[0]: _spend(row) for row in session.execute(q)}


def runs_spend(session: Session, run_ids: Sequence[str]) -> dict[str, Spend]:
    """Spend of each of these runs (runs without attempts are left out)."""
    q = _spend_query().where(t.Attempt.run_id.in_(list(run_ids)))
    return {row[0]: _spend(row) for row in session.execute(q)}


def batch_spend(session: Session, batch_id: str) -> Spend:
    """The batch's total spend."""
    total = Spend()
    for s in spend_by_run(session, batch_id).values():
        total = total + s
    return total


# ---------------------------------------------------------------- ownership


def _me() -> str:
    """This process as a batch owner (the same identity as a run lease's owner)."""
    return me()


def owner_alive(owner: str | None) -> bool:
    """Whether another live process on this machine runs the batch (a dead or foreign one does not)."""
    return bool(owner) and owner != me() and owner_state(owner) is OwnerState.ALIVE
