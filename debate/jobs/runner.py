"""Running a rescoring batch: concurrently in one event loop, optionally over several processes.

:class:`BatchRunner` takes the batch (refusing one a live process holds), resumes the runs its
items already have — from their checkpoints — and then claims the remaining items one at a time:
each claim creates the run and sets the item's run id in one transaction, just before the debate
starts, so an item is debated at most once and a stopped batch leaves no queued runs behind.
Before each start it checks the budget against the batch's running total (finished runs plus the
turns already written by debates in flight); once reached, no new debate starts and those in
flight finish. When it ends, however it ends, the batch is released with its counts and spend.

With ``processes=N`` it also starts N-1 helper processes that only claim new items (the resumed
runs stay with the first process, so no run executes twice at once); each process gets 1/N of the
endpoint's limits, as limiters are per process. Helpers die with their
parent (Linux ``PR_SET_PDEATHSIG``, and a parent check before every claim), so after a kill the
rerun is alone. On SQLite each helper keeps its own checkpoint file (one saver per file): a run
resumed elsewhere restarts its graph but reuses every turn already stored, asking no model twice.
"""

from __future__ import annotations

import asyncio
import collections
import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select, text, update
from sqlalchemy.engine import Engine

from debate.core.config import Settings
from debate.core.errors import UserInputError
from debate.engine.leases import RunBusy, me
from debate.jobs.batches import (
    TERMINAL,
    Budget,
    Spend,
    _me,
    batch_counts,
    batch_spend,
    check_budget,
    get_batch,
    owner_alive,
    runs_spend,
    spend_by_run,
    split_limits,
    sync_items,
)
from debate.store import tables as t
from debate.store.db import is_sqlite, session_scope, sqlite_path, write_tx
from debate.store.tables import utcnow

__all__ = ["BatchProgress", "BatchRunner", "BatchSummary"]

_RUN = t.Run.__table__  # type: ignore[attr-defined]


_CLAIM_CHUNK = 4


class _Lost(Exception):
    """Another process claimed the item between our read and our write."""


def _unclaimed(dialect: str) -> Any:
    """The next unclaimed items of a batch, in order. On SQLite the partial index is named: without
    table statistics the planner takes the run_id index for ``IS NULL`` and sorts every item."""
    using = " INDEXED BY ix_batch_items_unclaimed" if dialect == "sqlite" else ""
    return text(
        f"SELECT id, hypothesis_id FROM batch_items{using} "
        "WHERE batch_id = :batch AND run_id IS NULL ORDER BY ordinal LIMIT :k"
    )


class BatchProgress(BaseModel):
    """A progress snapshot, sent after every finished debate."""

    batch_id: str
    total: int
    done: int
    failed: int
    running: int
    remaining: int
    finished_now: int = Field(description="Debates finished since this command started.")
    elapsed_s: float
    per_minute: float
    eta_s: float | None
    spend: Spend
    stopping: str | None = None


class BatchSummary(BaseModel):
    """What a rescoring command did (``debate rescore --json``)."""

    batch_id: str
    status: str
    stop_reason: str | None
    options: dict[str, Any]
    total: int
    done: int
    failed: int
    cancelled: int
    remaining: int
    debated: int = Field(description="Debates this command finished (done or failed).")
    resumed: int = Field(description="Runs this command resumed from an earlier, interrupted one.")
    processes: int = 1
    elapsed_s: float
    per_minute: float
    prompt_tokens: int | None
    completion_tokens: int | None
    tokens: int | None
    cost_usd: float | None
    unknown_usage: int = Field(description="Calls whose endpoint reported no usage (not counted as 0).")
    errors: list[dict[str, str]] = Field(default_factory=list, description="The batch's first failures.")
    notes: list[str] = Field(default_factory=list, description="Anything else worth knowing (a helper that died).")


class BatchRunner:
    """Runs one batch: resumes its unfinished runs, claims the rest one by one, within the budget.

    ``helper`` marks a runner in a helper process: it neither takes nor releases the batch and
    only claims new items.
    """

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        batch_id: str,
        *,
        concurrency: int | None = None,
        budget: Budget | None = None,
        on_progress: Callable[[BatchProgress], None] | None = None,
        processes: int = 1,
        helper: bool = False,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.batch_id = batch_id
        self.on_progress = on_progress
        with session_scope(engine) as s:
            batch = get_batch(s, batch_id)
        snap = batch.settings or {}
        self.backend = batch.backend
        self.concurrency = max(1, concurrency or snap.get("concurrency") or settings.rescore.concurrency)
        self.budget = budget if budget is not None else Budget.model_validate(snap.get("budget") or {})
        check_budget(settings, self.backend, self.budget, (snap.get("run_config") or {}).get("judges", 1))
        self.processes = max(1, processes)
        self.helper = helper
        if self.processes > 1 and not helper:
            self.settings = settings = split_limits(settings, self.processes)
        self._parent = os.getppid()
        # Offline calls report no usage: nothing to add up per run.
        self._track_spend = self.backend != "offline"
        self._stop: str | None = None
        self._resume: collections.deque[str] = collections.deque()
        self._claimed: collections.deque[str] = collections.deque()
        self._resumed = 0
        self._inflight: set[str] = set()
        self._spend: dict[str, Spend] = {}
        self._total_spend = Spend()
        self._counts: dict[str, int] = {}
        self._before: dict[str, str] = {}  # run id -> its status when this command took the batch
        self._terminal_at_start = 0
        self._finished_here = 0
        self._template: dict[str, Any] = {}
        self._notes: list[str] = []
        self._t0 = time.monotonic()

    # ------------------------------------------------------------ taking and releasing the batch
    def _take(self) -> t.Batch:
        with session_scope(self.engine, immediate=True) as s:
            batch = get_batch(s, self.batch_id)
            if owner_alive(batch.owner):
                raise UserInputError(f"batch {batch.id} is being run by process {batch.owner}")
            sync_items(s, batch.id)
            now = utcnow()
            snap = dict(batch.settings or {})
            snap.update(concurrency=self.concurrency, budget=self.budget.model_dump(), processes=self.processes)
            batch.settings = snap
            batch.owner, batch.status, batch.stop_reason = _me(), "running", None
            batch.started_at = batch.started_at or now
            batch.updated_at, batch.finished_at = now, None
            s.add(batch)
            self._resume = collections.deque(
                s.execute(
                    select(t.BatchItem.run_id)
                    .where(
                        t.BatchItem.batch_id == batch.id,
                        t.BatchItem.run_id.is_not(None),
                        t.BatchItem.status.not_in(("done", "cancelled")),
                    )
                    .order_by(t.BatchItem.ordinal)
                ).scalars()
            )
            if self._track_spend:
                self._spend = spend_by_run(s, batch.id)
                self._total_spend = sum(self._spend.values(), Spend())
            self._counts = batch_counts(s, batch.id)
            self._terminal_at_start = sum(self._counts.get(k, 0) for k in TERMINAL)
            self._before = dict(s.execute(select(t.Run.id, t.Run.status).where(t.Run.batch_id == batch.id)).all())
            return batch

    def _release(self) -> BatchSummary:
        with session_scope(self.engine, immediate=True) as s:
            batch = get_batch(s, self.batch_id)
            sync_items(s, batch.id)
            counts = batch_counts(s, batch.id)
            spend = batch_spend(s, batch.id)
            errors = s.execute(
                select(t.Run.hypothesis_id, t.Run.id, t.Run.status, t.Run.error)
                .where(t.Run.batch_id == batch.id, t.Run.status.in_(("failed", "cancelled")))
                .order_by(t.Run.finished_at)
                .limit(10)
            ).all()
            finished = sum(counts.get(k, 0) for k in TERMINAL)
            now = utcnow()
            if finished == batch.total:
                batch.status, batch.finished_at, batch.stop_reason = "done", now, None
            else:
                batch.status, batch.stop_reason = "stopped", self._stop or "interrupted"
            batch.done, batch.failed = counts.get("done", 0), counts.get("failed", 0)
            known = spend.calls - spend.unknown_tokens
            batch.prompt_tokens = spend.prompt_tokens if known or not spend.calls else None
            batch.completion_tokens = spend.completion_tokens if known or not spend.calls else None
            batch.cost_usd = spend.cost_usd if spend.calls - spend.unknown_cost else None
            batch.unknown_usage = spend.unknown_tokens
            if batch.owner == _me():
                batch.owner = None
            batch.updated_at = now
            s.add(batch)
        elapsed = time.monotonic() - self._t0
        debated = max(self._finished_here, finished - self._terminal_at_start)
        return BatchSummary(
            batch_id=batch.id,
            status=batch.status,
            stop_reason=batch.stop_reason,
            options=batch.options,
            total=batch.total,
            done=batch.done,
            failed=batch.failed,
            cancelled=counts.get("cancelled", 0),
            remaining=batch.total - finished,
            debated=debated,
            resumed=self._resumed,
            processes=self.processes,
            elapsed_s=round(elapsed, 3),
            per_minute=round(debated / elapsed * 60, 2) if elapsed else 0.0,
            prompt_tokens=batch.prompt_tokens,
            completion_tokens=batch.completion_tokens,
            tokens=None if batch.prompt_tokens is None else batch.prompt_tokens + (batch.completion_tokens or 0),
            cost_usd=batch.cost_usd,
            unknown_usage=batch.unknown_usage,
            errors=[
                {"hypothesis_id": h, "run_id": r, "status": st, "error": (e or "")[:500]} for h, r, st, e in errors
            ],
            notes=self._notes,
        )

    # ------------------------------------------------------------ claiming
    def _run_template(self, batch: t.Batch) -> dict[str, Any]:
        from debate.engine.backends import backend_models, prompt_hashes
        from debate.engine.runs import kb_hash, run_config

        cfg = (batch.settings or {}).get("run_config") or run_config(self.settings, backend=self.backend)
        return dict(
            status="queued",
            backend=self.backend,
            config=cfg,
            trigger="rescore",
            batch_id=batch.id,
            models=backend_models(self.settings, self.backend, cfg["judges"]),
            prompt_hashes=prompt_hashes(self.settings, self.backend),
            kb_hash=kb_hash(self.engine),
        )

    def _claim(self, k: int) -> list[str]:
        """Give the next ``k`` unclaimed items their runs, in one transaction; [] when none is left."""
        from debate.engine.runs import new_run_id

        B = t.BatchItem
        while True:
            try:
                with write_tx(self.engine) as conn:
                    rows = conn.execute(_unclaimed(conn.dialect.name), {"batch": self.batch_id, "k": k}).all()
                    if not rows:
                        return []
                    now = utcnow()
                    claims = [(item_id, hyp_id, new_run_id()) for item_id, hyp_id in rows]
                    conn.execute(
                        _RUN.insert(),
                        [
                            # Held by this process from the start: live, never taken for interrupted.
                            dict(id=run_id, hypothesis_id=hyp_id, created_at=now, owner=me(), heartbeat_at=now)
                            | self._template
                            for _, hyp_id, run_id in claims
                        ],
                    )
                    for item_id, _, run_id in claims:
                        claimed = conn.execute(
                            update(B)
                            .where(B.id == item_id, B.run_id.is_(None))
                            .values(run_id=run_id, status="queued", updated_at=now)
                        ).rowcount
                        if claimed != 1:
                            raise _Lost  # rolls back the runs: another process took an item
                    return [run_id for _, _, run_id in claims]
            except _Lost:
                continue

    # ------------------------------------------------------------ budget
    def _update_spend(self, run_ids: Sequence[str]) -> None:
        if not run_ids or not self._track_spend:
            return
        with session_scope(self.engine) as s:
            fresh = runs_spend(s, run_ids)
        for rid in run_ids:
            new = fresh.get(rid, Spend())
            self._total_spend = self._total_spend - self._spend.get(rid, Spend()) + new
            self._spend[rid] = new

    def _spent(self) -> Spend:
        if self.processes > 1 or self.helper:
            # Other processes spend too: read the batch's total (turns in flight included).
            with session_scope(self.engine) as s:
                return batch_spend(s, self.batch_id)
        # The running total includes turns already written by debates still in flight.
        self._update_spend(sorted(self._inflight))
        return self._total_spend

    def _next(self) -> str | None:
        if self._stop is None and self.helper and os.getppid() != self._parent:
            self._stop = "the first process ended"
        if self._stop is None and self.budget.limited:
            self._stop = self.budget.reached(self._spent())
        if self._stop is not None:
            return None
        if self._resume:
            self._resumed += 1
            return self._resume.popleft()
        if not self._claimed:
            # Claim a few at a time (one transaction); one at a time under a budget, so a stop
            # leaves no claimed-but-unstarted run behind.
            self._claimed.extend(self._claim(1 if self.budget.limited else _CLAIM_CHUNK))
        return self._claimed.popleft() if self._claimed else None

    # ------------------------------------------------------------ progress
    def progress(self) -> BatchProgress:
        """The current progress snapshot (counts from the database when helpers run too)."""
        if self.processes > 1:
            with session_scope(self.engine) as s:
                self._counts = batch_counts(s, self.batch_id)
        c = self._counts
        done, failed = c.get("done", 0), c.get("failed", 0) + c.get("cancelled", 0)
        total = sum(c.values())
        finished_now = max(self._finished_here, done + failed - self._terminal_at_start)
        elapsed = time.monotonic() - self._t0
        rate = finished_now / elapsed if elapsed > 0 else 0.0
        remaining = max(0, total - done - failed)
        return BatchProgress(
            batch_id=self.batch_id,
            total=total,
            done=done,
            failed=failed,
            running=len(self._inflight),
            remaining=remaining,
            finished_now=finished_now,
            elapsed_s=elapsed,
            per_minute=rate * 60,
            eta_s=remaining / rate if rate > 0 else None,
            spend=self._total_spend,
            stopping=self._stop,
        )

    def _progress(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self.progress())

    async def _ticker(self) -> None:
        while True:  # helpers finish debates this process does not see: poll the counts
            await asyncio.sleep(0.5)
            self._progress()

    # ------------------------------------------------------------ executing
    async def _worker(self, ex: Any) -> None:
        while True:
            run_id = self._next()
            if run_id is None:
                return
            self._inflight.add(run_id)
            try:
                outcome = await ex.execute(run_id)
                status = outcome.status
            except RunBusy:  # resumed by another process meanwhile: it finishes the run
                status = "running"
            except UserInputError:  # cancelled meanwhile, or a backend mismatch
                status = "cancelled"
            except Exception:  # a bug: the executor recorded it on the run; the batch goes on
                status = "failed"
            finally:
                self._inflight.discard(run_id)
            if status != "running":  # not taken over: this process finished it
                self._finished_here += 1
            self._update_spend([run_id])
            if not self.helper:
                # The run leaves the status it had when the batch was taken (pending if claimed now).
                prev = self._before.pop(run_id, "pending")
                self._counts[prev] = max(0, self._counts.get(prev, 0) - 1)
                self._counts[status] = self._counts.get(status, 0) + 1
                self._progress()

    async def _work(self) -> None:
        from debate.engine.runs import Executor

        async with Executor(self.engine, self.settings, backend=self.backend) as ex:
            # A task group: an unexpected error stops every worker before the executor closes.
            async with asyncio.TaskGroup() as tg:
                for _ in range(self.concurrency):
                    tg.create_task(self._worker(ex))

    async def run(self) -> BatchSummary | None:
        """Execute the batch to its end (or its budget); always leaves the batch released.

        Returns the summary (None in a helper process).
        """
        if self.helper:
            with session_scope(self.engine) as s:
                self._template = self._run_template(get_batch(s, self.batch_id))
            await self._work()
            return None
        batch = self._take()
        helpers: list[Any] = []
        ticker: asyncio.Task[None] | None = None
        try:
            self._template = self._run_template(batch)
            self._t0 = time.monotonic()
            self._progress()
            helpers = self._spawn_helpers()
            if helpers:
                ticker = asyncio.create_task(self._ticker())
            await self._work()
            for p in helpers:
                await asyncio.to_thread(p.join)
                if p.exitcode:
                    # Its claimed runs resume on the next run of the batch; say so, do not hide it.
                    self._notes.append(f"helper process {p.name} exited with code {p.exitcode}")
        finally:
            if ticker is not None:
                ticker.cancel()
            for p in helpers:
                if p.is_alive():
                    p.terminate()  # interrupted: their runs resume on the next run of the batch
                    p.join(10)
            summary = self._release()
        return summary

    def _spawn_helpers(self) -> list[Any]:
        ctx = multiprocessing.get_context("spawn")
        helpers = []
        for index in range(1, self.processes):
            p = ctx.Process(
                target=_helper_main,
                name=f"rescore-{self.batch_id}-{index}",
                args=(self.settings, self.batch_id, self.concurrency, self.budget, index, os.getpid()),
            )
            p.start()
            helpers.append(p)
        return helpers


def _helper_main(settings: Settings, batch_id: str, concurrency: int, budget: Budget, index: int, parent: int) -> None:
    """Entry point of a helper process: claim and debate items of the batch until none is left."""
    try:  # die with the parent, so a killed batch leaves no helper behind
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        return
    from debate.store.db import ensure_schema

    if not settings.checkpoint_url and is_sqlite(settings.database_url):
        db = sqlite_path(settings.database_url)
        if db is not None:  # one checkpoint saver per SQLite file
            target = Path(db).with_suffix(f".checkpoints-{index}.sqlite")
            settings = settings.model_copy(update={"checkpoint_url": str(target)})
    engine = ensure_schema(settings.database_url)
    runner = BatchRunner(engine, settings, batch_id, concurrency=concurrency, budget=budget, helper=True)
    asyncio.run(runner.run())
