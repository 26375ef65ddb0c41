"""Debates on a PostgreSQL task queue (procrastinate): enqueue, work, recover, schedule.

* A job debates one hypothesis in one run. The run row is created before the job is deferred,
  so a job retried after its worker died executes the *same* run and resumes it from its
  checkpoint (and the turns already stored): a hypothesis is scored once per job.
* ``queueing_lock="hyp:<id>"``: a hypothesis is never queued twice. A refused enqueue deletes
  the run it had created (that run never started).
* Workers heartbeat; a periodic task retries the jobs of workers without a heartbeat for
  ``[queue] stalled_after_s``. Failed debates and lost connections are retried with a
  ``RetryStrategy`` up to ``[queue] max_attempts`` tries.
* The same periodic task puts every interrupted run (its process was killed: ``debate run``,
  ``debate rescore``, a server; see :mod:`debate.engine.leases`) on the queue, so a worker
  resumes it from its checkpoint. A job takes its run's lease by compare-and-set, so a run
  resumed elsewhere meanwhile is left to that process.
* A run put on the queue is handed over: the job, not the process that created it, keeps it
  live (``hand_over``).
* A periodic task (``[queue] schedule``) enqueues stale and evidence-changed hypotheses as a
  rescoring batch; procrastinate defers each tick once across all workers.

The queue's own tables and LangGraph's checkpoint tables are created on first use, under an
advisory lock (many workers may start at once).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from sqlalchemy import delete, select, update
from sqlalchemy.engine import Engine
from sqlmodel import col

from debate.core.config import Settings
from debate.core.errors import DebateError, StorageError, UserInputError
from debate.engine.leases import Lease, RunBusy, hand_over, interrupted_runs
from debate.engine.runs import Executor, create_runs
from debate.store import tables as t
from debate.store.db import ensure_schema, is_sqlite, session_scope

if TYPE_CHECKING:
    from debate.jobs.selection import BackendName

QUEUE_NEEDS_POSTGRES = "a queue needs PostgreSQL (DEBATE_DATABASE_URL=postgresql+psycopg://...)"
TASK = "debate_hypothesis"
_SCHEMA_LOCK = 0x64656261  # advisory lock key: one process creates the queue tables


class QueueNeedsPostgres(UserInputError):
    """The database is SQLite: the task queue lives in PostgreSQL."""


class RunFailed(DebateError):
    """A debate ended failed; raised inside the job so the retry strategy sees it."""


class Enqueued(BaseModel):
    """What an enqueue did: jobs deferred, and hypotheses already on the queue."""

    queued: list[dict[str, Any]]
    skipped: list[str]
    batch_id: str | None = None


class QueueStatus(BaseModel):
    queue: str
    queued: int
    running: int
    failed: int
    succeeded: int
    cancelled: int
    stalled: int


def require_postgres(settings: Settings) -> None:
    if is_sqlite(settings.database_url):
        raise QueueNeedsPostgres(QUEUE_NEEDS_POSTGRES)


def conninfo(settings: Settings) -> str:
    return settings.database_url.replace("postgresql+psycopg://", "postgresql://", 1)


def ensure_queue_schema(settings: Settings) -> bool:
    """Create procrastinate's tables when missing. Returns True when it created them."""
    import psycopg
    from procrastinate.schema import SchemaManager

    require_postgres(settings)
    try:
        with psycopg.connect(conninfo(settings), autocommit=True) as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (_SCHEMA_LOCK,))
            try:
                row = conn.execute("SELECT to_regclass('procrastinate_jobs')").fetchone()
                if row is not None and row[0] is not None:
                    return False
                conn.execute(SchemaManager.get_schema())
                return True
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (_SCHEMA_LOCK,))
    except psycopg.OperationalError as e:
        raise StorageError(f"cannot reach the queue database: {e}") from None


# ---------------------------------------------------------------- the worker side


@dataclass
class _WorkerState:
    settings: Settings
    engine: Engine
    stack: AsyncExitStack
    executors: dict[str, Executor]
    lock: asyncio.Lock

    async def executor(self, backend: str) -> Executor:
        """One Executor per backend per worker process, opened on first use and kept."""
        async with self.lock:
            if backend not in self.executors:
                ex = Executor(self.engine, self.settings, backend=backend)
                self.executors[backend] = await self.stack.enter_async_context(ex)
            return self.executors[backend]


_worker: _WorkerState | None = None


def _state() -> _WorkerState:
    if _worker is None:
        raise DebateError("queue task called outside a worker (`debate worker`)")
    return _worker


async def _debate_hypothesis(
    hypothesis_id: str, run_id: str, backend: str, batch_id: str | None = None
) -> dict[str, Any]:
    w = _state()
    try:
        outcome = await (await w.executor(backend)).execute(run_id, from_queue=True)
    except RunBusy as e:  # another process resumed the run meanwhile: it finishes it
        return {"run_id": run_id, "status": "busy", "error": str(e)}
    if batch_id:
        await asyncio.to_thread(_sync_batch, w.engine, batch_id, run_id)
    if outcome.status == "failed":
        raise RunFailed(f"run {run_id} of {hypothesis_id} failed: {outcome.error}")
    return {"run_id": run_id, "status": outcome.status, "score": outcome.score}


async def _retry_stalled(context: Any, timestamp: int) -> int:
    """Give the running jobs of dead workers (no heartbeat) back to the queue, then queue the
    interrupted runs (see :func:`requeue_interrupted`). Returns how many jobs it queued."""
    w = _state()
    manager = context.app.job_manager
    from procrastinate.exceptions import ConnectorException

    stalled = list(await manager.get_stalled_jobs(seconds_since_heartbeat=w.settings.queue.stalled_after_s))
    retried = 0
    for job in stalled:
        try:
            await manager.retry_job(job)
            retried += 1
        except ConnectorException:
            pass  # an overlapping check (a slow previous tick) retried it first
    return retried + len(await requeue_interrupted(context.app, w.engine, w.settings))


async def requeue_interrupted(app: Any, engine: Engine, settings: Settings) -> list[dict[str, Any]]:
    """A job for each interrupted run, so a worker resumes it (after the stalled jobs are
    retried: their runs are live again). Returns the jobs deferred."""

    def find() -> list[Lease]:
        with session_scope(engine) as s:
            return interrupted_runs(s, heartbeat_s=settings.debate.heartbeat_s)

    queued, _ = await _defer_existing(app, await asyncio.to_thread(find))
    return queued


async def _defer_existing(app: Any, runs: Sequence[Lease]) -> tuple[list[dict[str, Any]], list[str]]:
    """Jobs for runs that exist already (their batch item, if any, is theirs). Returns (queued,
    hypotheses already on the queue: a waiting job of theirs goes first, this run on a later tick)."""
    from procrastinate.exceptions import AlreadyEnqueued

    queued: list[dict[str, Any]] = []
    skipped: list[str] = []
    for x in runs:
        try:
            job_id = await _job(app, x.hypothesis_id).defer_async(
                hypothesis_id=x.hypothesis_id, run_id=x.run_id, backend=x.backend, batch_id=x.batch_id
            )
        except AlreadyEnqueued:
            skipped.append(x.hypothesis_id)
            continue
        queued.append({"hypothesis_id": x.hypothesis_id, "run_id": x.run_id, "job_id": job_id})
    return queued, skipped


async def _rescore_tick(context: Any, timestamp: int) -> dict[str, Any]:
    """The scheduled rescoring: stale and evidence-changed hypotheses as one batch."""
    w = _state()
    result = await enqueue_selection(context.app, w.engine, w.settings, backend=w.settings.backend)
    return {"batch_id": result.batch_id, "queued": len(result.queued), "skipped": len(result.skipped)}


def _sync_batch(engine: Engine, batch_id: str, run_id: str) -> None:
    """The item's status from its run; the batch is done once no item is left to run.

    Only this job's item is written while others run: updating every item after each job
    made concurrent jobs queue on the items' row locks. That write commits on its own, and
    the finishers (two last jobs may both see the batch complete) take the batch row's lock
    before touching every item, so no two transactions hold item locks the other wants.
    """
    from debate.jobs.batches import batch_counts, sync_items

    with session_scope(engine) as s:
        run_status = select(col(t.Run.status)).where(col(t.Run.id) == run_id).scalar_subquery()
        s.execute(
            update(t.BatchItem)
            .where(col(t.BatchItem.batch_id) == batch_id, col(t.BatchItem.run_id) == run_id)
            .values(status=run_status, updated_at=t.utcnow())
        )
    with session_scope(engine) as s:
        if not _complete(batch_counts(s, batch_id)):
            return
        s.execute(select(col(t.Batch.id)).where(col(t.Batch.id) == batch_id).with_for_update())
        counts = batch_counts(s, batch_id)
        if _complete(counts):
            sync_items(s, batch_id)
            s.execute(
                update(t.Batch)
                .where(col(t.Batch.id) == batch_id, col(t.Batch.status) != "done")
                .values(
                    status="done",
                    done=counts.get("done", 0),
                    failed=counts.get("failed", 0),
                    finished_at=t.utcnow(),
                    updated_at=t.utcnow(),
                )
            )


def _complete(counts: dict[str, int]) -> bool:
    return not any(counts.get(k) for k in ("pending", "queued", "running"))


def build_app(settings: Settings) -> Any:
    """A procrastinate App on the settings' PostgreSQL database, with the debate tasks."""
    import procrastinate
    import psycopg

    require_postgres(settings)
    q = settings.queue
    app = procrastinate.App(
        connector=procrastinate.PsycopgConnector(conninfo=conninfo(settings), min_size=1, max_size=10)
    )
    retry = procrastinate.RetryStrategy(
        max_attempts=q.max_attempts,
        exponential_wait=2,
        retry_exceptions={RunFailed, StorageError, OSError, psycopg.OperationalError},
    )
    app.task(name=TASK, queue=q.name, retry=retry)(_debate_hypothesis)
    stalled = app.task(name="retry_stalled", queue=q.name, pass_context=True)(_retry_stalled)
    app.periodic(cron=q.stalled_check, periodic_id="stalled")(stalled)
    if q.schedule:
        # One tick at a time: a tick that outlasts the interval would otherwise race the next
        # one to create the batch, and a second batch re-debates what the first finished.
        tick = app.task(name="rescore_tick", queue=q.name, pass_context=True, lock="rescore_tick")(_rescore_tick)
        app.periodic(cron=q.schedule, periodic_id="rescore")(tick)
    return app


async def run_worker(
    settings: Settings, *, concurrency: int | None = None, queues: Sequence[str] | None = None, name: str | None = None
) -> None:
    """Work jobs until stopped (SIGINT/SIGTERM finish the jobs in hand first)."""
    global _worker
    require_postgres(settings)
    engine = ensure_schema(settings.database_url)
    await asyncio.to_thread(ensure_queue_schema, settings)
    app = build_app(settings)
    q = settings.queue
    async with AsyncExitStack() as stack:
        _worker = _WorkerState(settings, engine, stack, {}, asyncio.Lock())
        try:
            async with app.open_async():
                await app.run_worker_async(
                    concurrency=concurrency or q.concurrency,
                    queues=list(queues or [q.name]),
                    name=name,
                    update_heartbeat_interval=q.heartbeat_s,
                    stalled_worker_timeout=q.stalled_after_s,
                )
        finally:
            _worker = None


# ---------------------------------------------------------------- the client side


async def enqueue(
    app: Any,
    engine: Engine,
    settings: Settings,
    hypothesis_ids: Sequence[str],
    *,
    backend: str,
    batch_id: str | None = None,
    trigger: str = "queue",
) -> Enqueued:
    """One run and one job per hypothesis; a hypothesis already queued is skipped."""
    from procrastinate.exceptions import AlreadyEnqueued

    run_ids = await asyncio.to_thread(
        create_runs, engine, settings, list(hypothesis_ids), backend=backend, trigger=trigger, batch_id=batch_id
    )
    pairs = dict(zip(hypothesis_ids, run_ids, strict=True))
    taken: list[str] = []
    if batch_id:
        # An item gets its run once: items another client claimed first keep theirs.
        taken = await asyncio.to_thread(_claim_items, engine, batch_id, pairs)
        if taken:
            await asyncio.to_thread(_drop_runs, engine, None, {h: pairs.pop(h) for h in taken})
    queued: list[dict[str, Any]] = []
    refused: dict[str, str] = {}
    for hid, rid in pairs.items():
        try:
            job_id = await _job(app, hid).defer_async(hypothesis_id=hid, run_id=rid, backend=backend, batch_id=batch_id)
        except AlreadyEnqueued:
            refused[hid] = rid
            continue
        queued.append({"hypothesis_id": hid, "run_id": rid, "job_id": job_id})
    if refused:
        await asyncio.to_thread(_drop_runs, engine, batch_id, refused)
    await asyncio.to_thread(_hand_over, engine, [q["run_id"] for q in queued])
    return Enqueued(queued=queued, skipped=[*taken, *refused], batch_id=batch_id)


def _hand_over(engine: Engine, run_ids: Sequence[str]) -> None:
    with session_scope(engine) as s:
        hand_over(s.connection(), run_ids)


def _job(app: Any, hypothesis_id: str) -> Any:
    """The debate task, locked so the queue holds at most one job per hypothesis."""
    return app.tasks[TASK].configure(queueing_lock=f"hyp:{hypothesis_id}")


def defer_runs(app: Any, engine: Engine, runs: dict[str, str], *, backend: str) -> Enqueued:
    """Put runs already created (hypothesis id → run id) on the queue, all or none.

    For callers without an event loop (the HTTP server's request threads), on an app opened
    with ``app.open()``. When a hypothesis is already queued, the jobs deferred so far are
    withdrawn and the runs left without a job deleted; ``skipped`` names the refused one.
    """
    from procrastinate.exceptions import AlreadyEnqueued

    queued: list[dict[str, Any]] = []
    for hid, rid in runs.items():
        try:
            job_id = _job(app, hid).defer(hypothesis_id=hid, run_id=rid, backend=backend, batch_id=None)
        except AlreadyEnqueued:
            # Withdraw the jobs deferred so far; one a worker already took keeps its run.
            kept = {
                q["hypothesis_id"] for q in queued if not app.job_manager.cancel_job_by_id(q["job_id"], delete_job=True)
            }
            _drop_runs(engine, None, {h: r for h, r in runs.items() if h not in kept})
            return Enqueued(queued=[], skipped=[hid])
        queued.append({"hypothesis_id": hid, "run_id": rid, "job_id": job_id})
    _hand_over(engine, [q["run_id"] for q in queued])
    return Enqueued(queued=queued, skipped=[])


def _claim_items(engine: Engine, batch_id: str, runs: dict[str, str]) -> list[str]:
    """Give each batch item its run, in one transaction; returns the items already claimed."""
    taken: list[str] = []
    with session_scope(engine, immediate=True) as s:
        for hid, rid in runs.items():
            done = s.execute(
                update(t.BatchItem)
                .where(
                    col(t.BatchItem.batch_id) == batch_id,
                    col(t.BatchItem.hypothesis_id) == hid,
                    col(t.BatchItem.run_id).is_(None),
                )
                .values(run_id=rid, status="queued", updated_at=t.utcnow())
            )
            if done.rowcount == 0:  # type: ignore[attr-defined]
                taken.append(hid)
        s.execute(
            update(t.Batch)
            .where(col(t.Batch.id) == batch_id)
            .values(status="running", owner="queue", started_at=t.utcnow(), updated_at=t.utcnow())
        )
    return taken


def _drop_runs(engine: Engine, batch_id: str | None, runs: dict[str, str]) -> None:
    """Delete the never-started runs of refused enqueues (their batch items go back to pending)."""
    with session_scope(engine) as s:
        if batch_id:
            s.execute(
                update(t.BatchItem)
                .where(col(t.BatchItem.run_id).in_(list(runs.values())))
                .values(run_id=None, status="pending", updated_at=t.utcnow())
            )
        s.execute(delete(t.Run).where(col(t.Run.id).in_(list(runs.values())), col(t.Run.started_at).is_(None)))


async def enqueue_batch(app: Any, engine: Engine, settings: Settings, batch_id: str) -> Enqueued:
    """Enqueue the items of a batch that have no run yet, and those whose run is interrupted
    (one the batch adopted, or whose job was lost)."""
    with session_scope(engine) as s:
        batch = s.get(t.Batch, batch_id)
        if batch is None:
            raise UserInputError(f"unknown batch {batch_id!r}")
        backend = batch.backend
        B = t.BatchItem
        ids = list(
            s.execute(
                select(col(B.hypothesis_id))
                .where(col(B.batch_id) == batch_id, col(B.run_id).is_(None), col(B.status) == "pending")
                .order_by(col(B.ordinal))
            ).scalars()
        )
        claimed = [r for r in s.execute(select(col(B.run_id)).where(col(B.batch_id) == batch_id)).scalars() if r]
        leases = interrupted_runs(s, run_ids=claimed, heartbeat_s=settings.debate.heartbeat_s) if claimed else []
    resumed, busy = await _defer_existing(app, leases)
    if not ids:
        return Enqueued(queued=resumed, skipped=busy, batch_id=batch_id)
    result = await enqueue(app, engine, settings, ids, backend=backend, batch_id=batch_id, trigger="rescore")
    return Enqueued(queued=resumed + result.queued, skipped=busy + result.skipped, batch_id=batch_id)


async def enqueue_selection(app: Any, engine: Engine, settings: Settings, *, backend: BackendName) -> Enqueued:
    """Select stale and evidence-changed hypotheses (as ``debate rescore --changed`` does) and enqueue them."""
    from debate.jobs.batches import open_or_create_batch
    from debate.jobs.selection import normalize_options

    opts = normalize_options(
        backend=backend,
        stale_after=settings.rescore.stale_after,
        changed=True,
        prompt_changed=False,
        ids=None,
        limit=None,
        default_stale_after=settings.rescore.stale_after,
    )
    batch, _ = await asyncio.to_thread(open_or_create_batch, engine, settings, opts)
    if batch is None:
        return Enqueued(queued=[], skipped=[])
    return await enqueue_batch(app, engine, settings, batch.id)


async def queue_status(app: Any, settings: Settings, queue: str | None = None) -> QueueStatus:
    """Job counts by state on one queue; stalled: running on a worker without a heartbeat."""
    name = queue or settings.queue.name
    rows = await app.connector.execute_query_all_async(
        "SELECT status::text AS status, count(*) AS n FROM procrastinate_jobs WHERE queue_name = %(q)s GROUP BY status",
        q=name,
    )
    counts = {r["status"]: int(r["n"]) for r in rows}
    stalled = list(
        await app.job_manager.get_stalled_jobs(queue=name, seconds_since_heartbeat=settings.queue.stalled_after_s)
    )
    return QueueStatus(
        queue=name,
        queued=counts.get("todo", 0),
        running=counts.get("doing", 0),
        failed=counts.get("failed", 0),
        succeeded=counts.get("succeeded", 0),
        cancelled=counts.get("cancelled", 0) + counts.get("aborted", 0),
        stalled=len(stalled),
    )
