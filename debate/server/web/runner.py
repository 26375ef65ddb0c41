"""Debates queued over HTTP: :func:`queue_debates` and the in-process runner behind it on SQLite.

:func:`queue_debates` is the one seam between the API and whatever executes runs. It refuses
a hypothesis that already has a queued or running run (409), creates the runs and hands their
ids to a :class:`Dispatcher`. On SQLite the dispatcher is :class:`InProcessRunner`: a thread
with its own event loop that executes runs through one :class:`~debate.engine.runs.Executor` per
backend, so debates never stall request handling. On PostgreSQL it is :class:`QueueDispatcher`:
each run becomes a job on the task queue (:mod:`debate.jobs.queue`) for ``debate worker`` processes.
Without a dispatcher, queueing is refused with 503 rather than pretending.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from contextlib import AsyncExitStack
from typing import Annotated, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from sqlalchemy import select
from sqlalchemy.engine import Engine

from debate.core.config import BackendName, Settings
from debate.core.errors import DebateError, StorageError, UserInputError
from debate.core.models import HYPOTHESIS_ID_RE
from debate.engine.runs import Executor, create_runs
from debate.server.web.queries import RunLinks, active_runs, run_links_for
from debate.store import tables as t
from debate.store.db import session_scope

log = logging.getLogger("debate.server")

API_TRIGGER = "api"


class RunConflict(UserInputError):
    """A hypothesis already has a queued or running run (HTTP 409)."""


class QueueUnavailable(DebateError):
    """Nothing is there to execute queued runs (HTTP 503)."""


class RunRequest(BaseModel):
    """Debates to queue: one run per hypothesis."""

    model_config = ConfigDict(extra="forbid")

    hypothesis_ids: list[Annotated[str, StringConstraints(pattern=HYPOTHESIS_ID_RE.pattern)]] = Field(
        min_length=1,
        max_length=100,
        description="Hypotheses to debate, each at most once.",
        json_schema_extra={"uniqueItems": True},
    )
    backend: BackendName | None = Field(
        None, description="A backend enabled on this server (offline, openai, local); the server's default when absent."
    )
    rounds: int | None = Field(None, ge=1, le=10, description="Proposer/critic rounds at most.")
    judges: int | None = Field(None, ge=1, le=15, description="Judges on the panel.")

    @field_validator("hypothesis_ids")
    @classmethod
    def _once_each(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("each hypothesis may be named only once")
        return v


class QueuedRun(BaseModel):
    """A run created by a request."""

    run_id: str
    hypothesis_id: str
    status: Literal["queued"]
    links: RunLinks


class QueuedRuns(BaseModel):
    """What a run request queued, and for whom."""

    runs: list[QueuedRun]
    backend: BackendName
    by: str = Field(description="The reviewer whose token queued them.")


class Dispatcher(Protocol):
    """Executes queued runs somewhere: in this process, or through a task queue."""

    def submit(self, run_ids: Sequence[str], backend: str) -> None:
        """Take queued runs; return at once."""


# One server process serialises check-then-create so two requests cannot both pass the check.
_QUEUE_LOCK = threading.Lock()


def queue_debates(
    engine: Engine,
    settings: Settings,
    dispatcher: Dispatcher | None,
    request: RunRequest,
    *,
    by: str,
    backends: Sequence[str],
) -> QueuedRuns:
    """Create one run per hypothesis and hand them to ``dispatcher`` (the seam a task queue replaces)."""
    backend = request.backend or settings.backend
    if backend not in backends:
        raise UserInputError(
            f"backend {backend!r} is not enabled on this server (enabled: {', '.join(backends)})", where="backend"
        )
    if dispatcher is None:
        raise QueueUnavailable("queueing debates on this database needs the task queue, which is not configured")
    with _QUEUE_LOCK:
        with session_scope(engine) as s:
            busy = active_runs(s, request.hypothesis_ids)
        if busy:
            hyp_id, run_id = next(iter(busy.items()))
            raise RunConflict(
                f"hypothesis {hyp_id} already has run {run_id} queued or running; wait for it or cancel it first"
            )
        run_ids = create_runs(
            engine,
            settings,
            request.hypothesis_ids,
            backend=backend,
            rounds=request.rounds,
            judges=request.judges,
            trigger=f"{API_TRIGGER}:{by}",
        )
    dispatcher.submit(run_ids, backend)
    return QueuedRuns(
        runs=[
            QueuedRun(run_id=r, hypothesis_id=h, status="queued", links=run_links_for(r))
            for r, h in zip(run_ids, request.hypothesis_ids, strict=True)
        ],
        backend=backend,  # type: ignore[arg-type]
        by=by,
    )


class InProcessRunner:
    """Executes runs in a background thread with its own event loop.

    The thread starts on the first :meth:`submit` and stops on :meth:`close`; a later submit
    starts it again (a test client may run the app's startup and shutdown more than once).
    A run already in flight is never submitted twice.
    """

    def __init__(self, engine: Engine, settings: Settings, *, concurrency: int = 2) -> None:
        self.engine = engine
        self.settings = settings
        self.concurrency = max(1, concurrency)
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._inflight: set[str] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # -------------------------------------------------------- thread side

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        # Called with self._lock held.
        if self._loop is None:
            loop = asyncio.new_event_loop()
            ready = threading.Event()
            self._thread = threading.Thread(target=self._main, args=(loop, ready), name="debate-runner", daemon=True)
            self._loop = loop
            self._thread.start()
            ready.wait()
        return self._loop

    def _main(self, loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        self._gate = asyncio.Semaphore(self.concurrency)
        self._open = asyncio.Lock()
        self._executors: dict[str, Executor] = {}
        self._stack = AsyncExitStack()
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    async def _executor(self, backend: str) -> Executor:
        async with self._open:
            ex = self._executors.get(backend)
            if ex is None:
                ex = await self._stack.enter_async_context(Executor(self.engine, self.settings, backend=backend))
                self._executors[backend] = ex
            return ex

    async def _run(self, run_id: str, backend: str) -> None:
        try:
            async with self._gate:
                outcome = await (await self._executor(backend)).execute(run_id)
                log.info("run %s %s (score %s)", run_id, outcome.status, outcome.score)
        except DebateError as e:  # e.g. cancelled before it started: recorded already, nothing to do
            log.warning("run %s not executed: %s", run_id, e)
        except Exception:  # the Executor has marked the run failed; keep serving the others
            log.exception("run %s failed", run_id)

    def _finished(self, run_id: str) -> None:
        # Also called for a run cancelled before it started, which never reaches _run's body.
        with self._lock:
            self._inflight.discard(run_id)
            self._idle.notify_all()

    async def _shutdown(self) -> None:
        me = asyncio.current_task()
        tasks = [x for x in asyncio.all_tasks() if x is not me]
        for x in tasks:
            x.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._stack.aclose()

    # -------------------------------------------------------- caller side

    def submit(self, run_ids: Sequence[str], backend: str) -> None:
        """Queue runs for execution; returns at once."""
        with self._lock:
            new = [r for r in run_ids if r not in self._inflight]
            self._inflight.update(new)
            loop = self._ensure_loop()
        for run_id in new:
            fut = asyncio.run_coroutine_threadsafe(self._run(run_id, backend), loop)
            fut.add_done_callback(lambda _f, r=run_id: self._finished(r))  # type: ignore[misc]

    def recover(self) -> int:
        """Resubmit runs queued over HTTP that a stopped server left unfinished. Returns how many."""
        R = t.Run
        with session_scope(self.engine) as s:
            rows = s.execute(
                select(R.id, R.backend)
                .where(R.status.in_(("queued", "running")), R.trigger.like(f"{API_TRIGGER}:%"))
                .order_by(R.created_at, R.id)
            ).all()
        for run_id, backend in rows:
            self.submit([run_id], backend)
        return len(rows)

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Block until every submitted run has ended (True) or ``timeout`` passed (False)."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._inflight, timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Stop executing: unfinished runs stay queued/running and are resumed by :meth:`recover`."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout)
        except Exception:  # stopping regardless
            log.exception("runner shutdown")
        try:
            loop.call_soon_threadsafe(loop.stop)
        except RuntimeError:  # already closed
            pass
        thread.join(timeout)


class QueueDispatcher:
    """Runs queued over HTTP become jobs on the PostgreSQL task queue, one per hypothesis.

    The queue's ``queueing_lock`` backs the check in :func:`queue_debates` across processes:
    a hypothesis another server or ``debate queue add`` queued meanwhile is refused (409) and
    the request's runs are withdrawn. :meth:`open` before the first submit, :meth:`close` after.
    """

    def __init__(self, engine: Engine, settings: Settings) -> None:
        from debate.jobs.queue import build_app

        self.engine = engine
        self.settings = settings
        self.app = build_app(settings)

    def open(self) -> None:
        """Create the queue's tables when missing and connect (blocking)."""
        from debate.jobs.queue import ensure_queue_schema

        ensure_queue_schema(self.settings)
        self.app.open()

    def close(self) -> None:
        self.app.close()

    def submit(self, run_ids: Sequence[str], backend: str) -> None:
        """Defer one job per run; raises :class:`RunConflict` when a hypothesis is already queued."""
        from procrastinate.exceptions import ConnectorException

        from debate.jobs.queue import defer_runs

        with session_scope(self.engine) as s:
            hyp = dict(s.execute(select(t.Run.id, t.Run.hypothesis_id).where(t.Run.id.in_(list(run_ids)))).all())
        try:
            result = defer_runs(self.app, self.engine, {hyp[r]: r for r in run_ids}, backend=backend)
        except ConnectorException as e:
            raise StorageError(f"cannot reach the task queue: {e}") from None
        if result.skipped:
            raise RunConflict(
                f"hypothesis {result.skipped[0]} is already on the task queue; wait for its debate or cancel it first"
            )
