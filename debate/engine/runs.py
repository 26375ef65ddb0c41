"""Running debates: create runs, execute them through the graph with a checkpointer, resume.

Each run is a LangGraph thread keyed by its run id. Model-backed runs use durability "sync"
(each step is saved before the next, so a killed run resumes from its last finished step);
offline runs are cheap and deterministic and use "exit" (a killed one restarts from the
beginning, reusing any turns already stored). Run status is our own table's, never inferred
from LangGraph's ``next`` (see the package's technical notes).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from debate.core.bounds import VerdictBound
from debate.core.calls import speaking
from debate.core.config import Settings
from debate.core.errors import DebateError, NotFoundError, StorageError, UserInputError
from debate.core.models import HypothesisOut
from debate.core.protocol import panel
from debate.core.quotes import QuoteRule
from debate.engine.backends import backend_models, build_backend, check_endpoint, prompt_hashes
from debate.engine.graph import DebateContext, build_graph, initial_state
from debate.engine.heartbeat import Heartbeat
from debate.engine.leases import PENDING, RunBusy, db_now, live_job_runs, me, owner_live, release, take
from debate.engine.runstore import RunCancelled, RunStore, attempt_usage
from debate.kb.hypotheses import to_out
from debate.store import tables as t
from debate.store.db import HeldConnections, is_sqlite, session_scope, sqlite_path
from debate.store.driver import Sql, fetchall
from debate.store.tables import utcnow

TurnCallback = Callable[[str, int, str, int, str], None]
log = logging.getLogger("debate.engine")
_CHECKPOINT_LOCK = 0x64656262  # advisory lock key: one process sets the checkpoint tables up


_RUN_FIELDS = ("id", "hypothesis_id", "status", "backend", "config", "started_at", "score", "owner", "heartbeat_at")
_HYP_FIELDS = (
    "id",
    "title",
    "statement",
    "diseases",
    "targets",
    "target_label",
    "mechanisms",
    "source",
    "prior_score",
    "prior_source",
    "created_at",
    "updated_at",
)
# A run starts with one read of it and its hypothesis on the driver's cursor, and one update
# (the lease's compare-and-set, see debate.engine.leases).
_TAKE_TRIES = 3  # reads of a run's lease before a changing one counts as taken over
_START = Sql(
    f"SELECT {', '.join('r.' + f for f in _RUN_FIELDS)}, {', '.join('h.' + f for f in _HYP_FIELDS)} "
    "FROM runs r JOIN hypotheses h ON h.id = r.hypothesis_id WHERE r.id = :id",
    tables=[t.Run.__table__, t.Hypothesis.__table__],  # type: ignore[attr-defined]
    results=_RUN_FIELDS + _HYP_FIELDS,
)


@dataclass(frozen=True)
class _Started:
    """What executing a run needs of its row."""

    id: str
    hypothesis_id: str
    status: str
    backend: str
    config: dict[str, Any]
    started_at: Any
    score: float | None
    owner: str | None
    heartbeat_at: Any
    hypothesis: HypothesisOut


def new_run_id() -> str:
    return f"r-{secrets.token_hex(6)}"


@dataclass
class RunOutcome:
    run_id: str
    hypothesis_id: str
    status: str
    score: float | None
    error: str | None = None


def kb_hash(engine: Engine) -> str:
    """One hash over every page's content hash: which KB a run argued from."""
    with engine.connect() as conn:
        rows = conn.execute(select(t.Page.slug, t.Page.content_hash).order_by(t.Page.slug)).all()
    h = hashlib.sha256()
    for slug, digest in rows:
        h.update(f"{slug}:{digest}\n".encode())
    return h.hexdigest()[:16]


def run_config(
    settings: Settings, *, backend: str, rounds: int | None = None, judges: int | None = None
) -> dict[str, Any]:
    """The debate settings a run records and executes with (defaults from ``settings.debate``)."""
    d = settings.debate
    rounds = rounds or d.rounds
    judges = judges or d.judges
    if rounds < 1 or judges < 1:
        raise UserInputError("rounds and judges must be at least 1")
    return {
        "rounds": rounds,
        "judges": judges,
        "evidence_limit": d.evidence_limit,
        "min_hits": settings.search.min_hits,
        # Chunks screened as suspect: left out of the evidence, or quoted marked ("exclude" | "label").
        "suspect": settings.kb.suspect,
        "stop_on_concede": d.stop_on_concede,
        "stop_on_repeat": d.stop_on_repeat,
        "rubric": settings.rubric,
        "quotes": {"threshold": d.quote_threshold, "min_chars": d.min_quote_chars},
        "bound": {
            "dimensions": d.evidence_dimensions,
            "base": d.evidence_cap_base,
            "slope": d.evidence_cap_slope,
            "contradiction_score": d.contradiction_score,
        },
        "backend": backend,
        # Recorded only when set, so runs with the default (a majority) keep their config as before.
        **({"quorum": d.quorum} if d.quorum else {}),
    }


def create_runs(
    engine: Engine,
    settings: Settings,
    hypothesis_ids: Sequence[str],
    *,
    backend: str,
    rounds: int | None = None,
    judges: int | None = None,
    trigger: str = "cli",
    batch_id: str | None = None,
) -> list[str]:
    """Queue one run per hypothesis (all ids checked first; an unknown id names itself).

    This process holds the runs' leases (it executes them, or hands them to the task queue,
    :func:`debate.engine.leases.hand_over`), so they are live, not interrupted, meanwhile."""
    config = run_config(settings, backend=backend, rounds=rounds, judges=judges)
    judges = config["judges"]
    if backend == "openai":
        check_endpoint(settings)  # a run for an endpoint that cannot work is not even queued
    models = backend_models(settings, backend, judges)
    hashes = prompt_hashes(settings, backend)
    kb = kb_hash(engine)
    now = utcnow()
    ids: list[str] = []
    with session_scope(engine, immediate=True) as s:
        known = set(s.execute(select(t.Hypothesis.id).where(t.Hypothesis.id.in_(list(hypothesis_ids)))).scalars())
        for hid in hypothesis_ids:
            if hid not in known:
                raise NotFoundError(f"unknown hypothesis id {hid!r}")
        for hid in hypothesis_ids:
            run_id = new_run_id()
            s.add(
                t.Run(
                    id=run_id,
                    hypothesis_id=hid,
                    status="queued",
                    backend=backend,
                    models=models,
                    config=config,
                    prompt_hashes=hashes,
                    kb_hash=kb,
                    trigger=trigger,
                    batch_id=batch_id,
                    created_at=now,
                    owner=me(),
                    heartbeat_at=now,
                )
            )
            ids.append(run_id)
    return ids


def checkpoint_target(settings: Settings) -> str:
    """Where LangGraph checkpoints go: a SQLite file beside the database, or the same PostgreSQL."""
    if settings.checkpoint_url:
        return settings.checkpoint_url
    url = settings.database_url
    if is_sqlite(url):
        path = sqlite_path(url)
        return str(path.with_suffix(".checkpoints.sqlite")) if path else ":memory:"
    return url.replace("postgresql+psycopg://", "postgresql://")


def setup_postgres_checkpoints(settings: Settings) -> None:
    """Set LangGraph's PostgreSQL checkpoint tables up once, under an advisory lock.

    Each process's saver runs its migrations on first use; savers of processes (workers,
    rescoring processes) starting together on a fresh database race on the migration table (a
    duplicate key that fails their first runs). Run first under a lock, every later setup finds nothing left to do. The lock is
    polled, not waited for: the migrations create indexes concurrently, which waits for every
    statement in flight, a blocked ``pg_advisory_lock`` call included.
    """
    import psycopg
    from langgraph.checkpoint.postgres import PostgresSaver

    target = checkpoint_target(settings)
    if not target.startswith("postgresql"):
        return
    try:
        with psycopg.connect(target, autocommit=True) as conn:
            while not conn.execute("SELECT pg_try_advisory_lock(%s)", (_CHECKPOINT_LOCK,)).fetchone()[0]:  # type: ignore[index]
                time.sleep(0.1)
            try:
                with PostgresSaver.from_conn_string(target) as saver:
                    saver.setup()
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (_CHECKPOINT_LOCK,))
    except psycopg.OperationalError as e:
        raise StorageError(f"cannot reach the checkpoint database: {e}") from None


@asynccontextmanager
async def open_checkpointer(settings: Settings) -> AsyncIterator[Any]:
    """One saver per process per store (several savers on one SQLite file lock each other).

    On SQLite the saver batches concurrent runs' writes into shared commits (see
    :mod:`debate.engine.checkpoints`); on PostgreSQL they go through a connection pool.
    """
    target = checkpoint_target(settings)
    if target.startswith("postgresql"):
        try:
            from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
            from psycopg.rows import dict_row
            from psycopg_pool import AsyncConnectionPool
        except ImportError as e:  # pragma: no cover - depends on the install
            raise DebateError("PostgreSQL checkpoints need the 'postgres' extra: pip install 'debate[postgres]'") from e
        await asyncio.to_thread(setup_postgres_checkpoints, settings)
        # A pool, not one connection: concurrent runs' checkpoint writes queued on a single
        # connection cost ~0.3 s each at 64 debates in flight (measured), more than the model.
        async with AsyncConnectionPool(
            target,
            min_size=1,
            max_size=8,
            open=False,
            kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
        ) as pool:
            saver = AsyncPostgresSaver(pool)  # type: ignore[arg-type]
            await saver.setup()
            yield saver
        return
    import aiosqlite

    from debate.engine.checkpoints import GroupCommitSqliteSaver

    if target != ":memory:":
        Path(target).parent.mkdir(parents=True, exist_ok=True)
    async with aiosqlite.connect(target) as conn:
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA synchronous=NORMAL")
        await conn.execute("PRAGMA busy_timeout=30000")
        saver = GroupCommitSqliteSaver(conn)
        await saver.setup()
        yield saver


class Executor:
    """Executes runs in this process: one checkpointer, one compiled graph, one backend.

    Each run executes under its lease (:mod:`debate.engine.leases`), which a heartbeat task
    refreshes while the executor is open; a run taken over by another process meanwhile stops.
    """

    def __init__(self, engine: Engine, settings: Settings, *, backend: str, on_turn: TurnCallback | None = None):
        self.engine = engine
        self.settings = settings
        self.backend_name = backend
        self.on_turn = on_turn
        self._stack = AsyncExitStack()
        self._graphs: dict[str, asyncio.Future[Any]] = {}  # run id -> its graph execution
        self._taken: dict[str, str] = {}  # run id -> the process that took it over from us

    async def __aenter__(self) -> Executor:
        self.db = HeldConnections(self.engine)
        self._stack.callback(self.db.close)
        saver = await self._stack.enter_async_context(open_checkpointer(self.settings))
        self.graph = build_graph().compile(checkpointer=saver)
        self.backend, close = build_backend(self.settings, self.backend_name)
        self._stack.push_async_callback(close)
        beat = Heartbeat(self.engine, self.settings.debate.heartbeat_s, watched=self._graphs.keys, on_lost=self._lost)
        await self._stack.enter_async_context(beat)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def execute(self, run_id: str, *, from_queue: bool = False) -> RunOutcome:
        """Run (or resume) one run to its end; failures are recorded on the run, not raised.

        Raises :class:`RunBusy` when another live process or queue job holds the run.
        ``from_queue``: the caller executes the run's queue job, so the process that created
        and queued the run does not hold it against us (a running run's executor still does).
        """
        with speaking(run_id=run_id):  # its model calls' progress names the run
            return await self._execute(run_id, from_queue)

    async def _execute(self, run_id: str, from_queue: bool) -> RunOutcome:
        if run_id in self._graphs:
            raise RunBusy(f"run {run_id} is being run by this process already")
        run, fresh = self._start(run_id, from_queue)
        if run.status == "done":
            return RunOutcome(run.id, run.hypothesis_id, "done", run.score)
        ctx = self._context(run, fresh)
        config = {"configurable": {"thread_id": run_id}}
        # Held from here (the checkpoint read below awaits): a second execute of it is refused.
        self._graphs[run_id] = asyncio.get_running_loop().create_future()
        try:
            # A run that never started has no checkpoint; anything else resumes from its last one.
            resumable = not fresh and (await self.graph.aget_state(config)).values
            graph_input = None if resumable else initial_state(run_id)
            durability = "exit" if run.backend == "offline" else "sync"
            # Its own task, so that losing the lease stops this run and nothing else.
            graph = self._graphs[run_id] = asyncio.ensure_future(
                self.graph.ainvoke(graph_input, config, context=ctx, durability=durability)
            )
            await graph
        except asyncio.CancelledError:
            taker = self._taken.pop(run_id, None)
            task = asyncio.current_task()
            if taker is None or (task is not None and task.cancelling()):
                self._release(run_id)  # we are stopping: the run is interrupted, resumable at once
                raise
            return RunOutcome(run.id, run.hypothesis_id, "running", None, f"taken over by {taker}")
        except RunCancelled as e:
            self._settle_usage(run_id)
            return RunOutcome(run.id, run.hypothesis_id, "cancelled", None, str(e))
        except DebateError as e:
            self._fail(run_id, str(e))
            return RunOutcome(run.id, run.hypothesis_id, "failed", None, str(e))
        except Exception as e:
            self._fail(run_id, f"internal error: {type(e).__name__}: {e}")
            raise
        finally:
            self._graphs.pop(run_id, None)
            # A deferring run that ended failed or cancelled keeps its transcript so far
            # (nothing is left to write once the run is done).
            ctx.store.flush_pending()
        if ctx.store.finished_score is not None:  # this execution marked it done
            return RunOutcome(run_id, run.hypothesis_id, "done", ctx.store.finished_score)
        runs = t.Run.__table__  # type: ignore[attr-defined]
        with self.db.tx() as conn:
            done = conn.execute(select(runs.c.status, runs.c.score, runs.c.error).where(runs.c.id == run_id)).one()
        return RunOutcome(run_id, run.hypothesis_id, done.status, done.score, done.error)

    def _context(self, run: _Started, fresh: bool) -> DebateContext:
        cfg_run = run.config
        return DebateContext(
            store=RunStore(
                self.engine, run.id, fresh=fresh, db=self.db, defer=run.backend == "offline", hypothesis=run.hypothesis
            ),
            backend=self.backend,
            seats=panel(
                cfg_run["judges"], list(self.settings.openai.judge_models) if run.backend == "openai" else None
            ),
            rubric=self.settings.rubric_model.model_validate({"weights": cfg_run["rubric"]}),
            max_rounds=cfg_run["rounds"],
            evidence_limit=cfg_run["evidence_limit"],
            min_hits=cfg_run["min_hits"],
            # Runs recorded before screening existed had every chunk as evidence: none was suspect.
            suspect=cfg_run.get("suspect", "exclude"),
            stop_on_concede=cfg_run["stop_on_concede"],
            stop_on_repeat=cfg_run["stop_on_repeat"],
            quorum=cfg_run.get("quorum", 0),
            quotes=QuoteRule.model_validate(cfg_run.get("quotes", {})),
            # Runs recorded before verdicts were bounded are resumed as they were configured.
            bound=VerdictBound.model_validate(cfg_run["bound"]) if "bound" in cfg_run else None,
            on_turn=self.on_turn,
        )

    def _start(self, run_id: str, from_queue: bool = False) -> tuple[_Started, bool]:
        """Take the run's lease and mark it running; returns (the run with its hypothesis,
        whether it had never started)."""
        with self.db.tx(write=True) as conn:
            # The lease may change between reading it and taking it (the process that queued
            # the run hands it over to its job meanwhile): read again, and decide again.
            for _ in range(_TAKE_TRIES):
                row = fetchall(conn, _START, {"id": run_id})
                if not row:
                    raise NotFoundError(f"unknown run id {run_id!r}")
                run = _Started(
                    *row[0][: len(_RUN_FIELDS)],
                    hypothesis=to_out(
                        SimpleNamespace(**dict(zip(_HYP_FIELDS, row[0][len(_RUN_FIELDS) :], strict=True)))
                    ),
                )
                if run.status == "cancelled":
                    raise UserInputError(f"run {run_id} was cancelled")
                if run.backend != self.backend_name:
                    raise UserInputError(f"run {run_id} uses backend {run.backend}, not {self.backend_name}")
                fresh = run.status == "queued" and run.started_at is None
                if run.status == "done":
                    return run, fresh
                if run.owner != me() and run.status in PENDING:
                    held = self._held(conn, run, from_queue)
                    if held:
                        raise RunBusy(f"run {run_id} {held}; wait for it or cancel it")
                started = run.started_at or utcnow()
                if take(conn, run_id, run.owner, run.heartbeat_at, status="running", error=None, started_at=started):
                    return run, fresh
            raise RunBusy(f"run {run_id} was taken over by another process a moment ago")

    def _held(self, conn: Any, run: _Started, from_queue: bool) -> str | None:
        """Why another process or a queue job holds ``run``, or None when it is free to take."""
        if not (from_queue and run.status == "queued") and owner_live(
            run.owner, run.heartbeat_at, db_now(conn), self.settings.debate.heartbeat_s
        ):
            return f"is being run by process {run.owner}"
        if not from_queue and live_job_runs(conn, [run.id]):
            return "is on the task queue, where a worker will run it"
        return None

    def _release(self, run_id: str) -> None:
        try:
            with self.db.tx(write=True) as conn:
                release(conn, run_id)
        except Exception as e:  # stopping anyway: its owner's death will tell the same
            log.warning("could not release run %s: %s", run_id, e)

    def _lost(self, taken: dict[str, str]) -> None:
        """The heartbeat found runs another process took over: stop executing them."""
        for run_id, owner in taken.items():
            graph = self._graphs.get(run_id)
            if graph is not None and not graph.done():
                log.warning("run %s was taken over by %s; stopping it here", run_id, owner)
                self._taken[run_id] = owner
                graph.cancel()

    def _settle_usage(self, run_id: str) -> None:
        """A cancelled run's usage: what its attempts spent, though it has no score."""
        with self.db.tx(write=True) as conn:
            conn.execute(update(t.Run).where(t.Run.id == run_id).values(**attempt_usage(conn, run_id)))

    def _fail(self, run_id: str, message: str) -> None:
        with self.db.tx(write=True) as conn:
            conn.execute(
                update(t.Run)
                .where(t.Run.id == run_id, t.Run.status != "done")
                .values(status="failed", error=message[:2000], finished_at=utcnow(), **attempt_usage(conn, run_id))
            )

    async def execute_many(
        self, run_ids: Sequence[str], *, concurrency: int = 1, on_done: Callable[[RunOutcome], None] | None = None
    ) -> list[RunOutcome]:
        """Execute runs concurrently (at most ``concurrency`` at once), in order of the result list."""
        gate = asyncio.Semaphore(max(1, concurrency))

        async def one(rid: str) -> RunOutcome:
            async with gate:
                outcome = await self.execute(rid)
            if on_done:
                on_done(outcome)
            return outcome

        return list(await asyncio.gather(*(one(r) for r in run_ids)))


def cancel_run(engine: Engine, run_id: str) -> str:
    """Cancel a queued or running run; returns its previous status."""
    with session_scope(engine, immediate=True) as s:
        run = s.get(t.Run, run_id)
        if run is None:
            raise NotFoundError(f"unknown run id {run_id!r}")
        if run.status in ("done", "failed", "cancelled"):
            raise UserInputError(f"run {run_id} is already {run.status}")
        previous = run.status
        run.status, run.finished_at = "cancelled", utcnow()
        s.add(run)
        return previous


def review_run(engine: Engine, run_id: str, action: str, *, by: str, note: str | None = None) -> t.Run:
    """Record a review action (approve | flag | clear | comment) on a run, with who and why."""
    if action not in ("approve", "flag", "clear", "comment"):
        raise UserInputError(f"unknown review action {action!r}")
    with session_scope(engine, immediate=True) as s:
        run = s.get(t.Run, run_id)
        if run is None:
            raise NotFoundError(f"unknown run id {run_id!r}")
        s.add(t.Review(run_id=run_id, action=action, by=by, note=note, at=utcnow()))
        if action == "flag":
            run.review_status, run.flagged = "flagged", True
        elif action == "approve":
            run.review_status, run.flagged = "approved", False
        elif action == "clear":
            run.review_status, run.flagged = "unreviewed", False
        s.add(run)
        return run
