"""Database work for one executing run: evidence snapshot, turns, attempts, completion.

Every write is keyed so that running a node twice (LangGraph may re-execute a node after a
kill) writes nothing new: a turn is unique on (run, round, role, seat) and written once with
its attempts in the same transaction; a run's score is written in the same transaction that
marks it done, so no partial score is ever visible.

A fresh run's evidence snapshot is written with its first turn, in the same transaction: a
run killed before that turn has no turn argued from it, and retrieves again when resumed. A
fresh offline run (``defer=True``) keeps its turns and attempts in memory too and writes
everything in the transaction that marks it done: an offline run is cheap and deterministic,
and one killed before the end restarts from the beginning anyway (durability "exit"), so
writing it once saves nine write transactions per debate and changes nothing that can be seen
of a finished run.

The statements a fresh run makes go straight to the driver (:mod:`debate.store.driver`);
the rarer ones (resuming, failing, a duplicate execution) use Core.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from debate.core.calls import Attempt as AttemptRecord
from debate.core.errors import DebateError
from debate.core.models import (
    CitationCheck,
    CriticReply,
    EvidenceItem,
    HypothesisOut,
    ProposerReply,
)
from debate.core.protocol import AgentResult, TurnView
from debate.engine.agents import dump_reply
from debate.engine.consensus import Consensus
from debate.kb.hypotheses import to_out
from debate.store import tables as t
from debate.store.db import HeldConnections
from debate.store.driver import Sql, execute, executemany
from debate.store.tables import utcnow

TurnKey = tuple[int, str, int]  # (round, role, seat)
_TURN = t.Turn.__table__  # type: ignore[attr-defined]
_ATTEMPT = t.Attempt.__table__  # type: ignore[attr-defined]
_EVIDENCE = t.Evidence.__table__  # type: ignore[attr-defined]
_RUN = t.Run.__table__  # type: ignore[attr-defined]
_CITED = t.CitedPage.__table__  # type: ignore[attr-defined]
_INSERT_CITED = Sql.insert(_CITED, ("run_id", "page_slug", "verified", "unverified"))
_STORED_COLUMNS = [_TURN.c.round, _TURN.c.role, _TURN.c.seat, _TURN.c.parsed, _TURN.c.overall, _TURN.c.meta]
_STATUS = text("SELECT status FROM runs WHERE id = :id")
_TURN_COLUMNS = (
    "run_id",
    "round",
    "role",
    "seat",
    "backend",
    "label",
    "model",
    "prompt_name",
    "prompt_version",
    "prompt_hash",
    "messages",
    "raw_reply",
    "parsed",
    "citations",
    "overall",
    "meta",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "latency_ms",
    "created_at",
)
_ATTEMPT_COLUMNS = (
    "run_id",
    "round",
    "role",
    "seat",
    "n",
    "kind",
    "outcome",
    "http_status",
    "error",
    "raw_reply",
    "model",
    "served_model",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "latency_ms",
    "started_at",
)
_EVIDENCE_COLUMNS = (
    "run_id",
    "eid",
    "rank",
    "page_slug",
    "page_hash",
    "heading_path",
    "text",
    "score",
    "relevance",
    "facts",
    "suspect",
)
_INSERT_TURN = Sql.insert(_TURN, _TURN_COLUMNS)
_INSERT_ATTEMPT = Sql.insert(_ATTEMPT, _ATTEMPT_COLUMNS)
_INSERT_EVIDENCE = Sql.insert(_EVIDENCE, _EVIDENCE_COLUMNS)
_SET_RETRIEVED = Sql("UPDATE runs SET retrieved_at = :retrieved_at WHERE id = :id", tables=[_RUN])
_SET_ROUNDS_DONE = Sql(
    "UPDATE runs SET rounds_done = :rounds_done WHERE id = :id AND rounds_done < :rounds_done", tables=[_RUN]
)
_FINISH = Sql(
    "UPDATE runs SET prompt_tokens = :prompt_tokens, completion_tokens = :completion_tokens, cost_usd = :cost_usd, "
    "score = :score, interval_lo = :interval_lo, interval_hi = :interval_hi, interval_method = :interval_method, "
    "agreement = :agreement, n_judges = :n_judges, claims_verified = :claims_verified, claims_cited = :claims_cited, "
    "status = 'done', finished_at = :finished_at, error = NULL "
    "WHERE id = :id AND status <> 'done'",
    tables=[_RUN],
)
_NEEDS_REVIEW = Sql(
    "UPDATE runs SET review_status = 'needs_review' WHERE id = :id AND review_status = 'unreviewed'", tables=[_RUN]
)
_ATTEMPT_COUNTS = text(
    "SELECT round, role, seat, count(*) AS n FROM attempts WHERE run_id = :run GROUP BY round, role, seat"
)


class RunCancelled(DebateError):
    """The run was cancelled while it ran."""


@dataclass
class _Pending:
    """A fresh run's rows not yet written: its evidence, and a deferring store's turns."""

    evidence: list[dict[str, Any]] = field(default_factory=list)
    retrieved_at: Any = None
    turns: list[dict[str, Any]] = field(default_factory=list)
    attempts: list[dict[str, Any]] = field(default_factory=list)
    rounds_done: int = 0


@dataclass(frozen=True)
class StoredTurn:
    """What the graph reads back of a stored turn (a SQLModel instance costs ~0.1 ms to build)."""

    round: int
    role: str
    seat: int
    parsed: dict[str, Any]
    overall: float | None
    meta: dict[str, Any] = field(default_factory=dict)


class RunStore:
    """Reads and writes of one run, with the run's fixed inputs cached after first use."""

    def __init__(
        self,
        engine: Engine,
        run_id: str,
        *,
        fresh: bool = False,
        db: HeldConnections | None = None,
        defer: bool = False,
        hypothesis: HypothesisOut | None = None,
    ) -> None:
        """``fresh``: the run has never started, so nothing of it is stored yet (skip the reads).
        ``db``: connections shared with other runs of the same executor.
        ``defer``: write turns with the completion too (only for a fresh run).
        ``hypothesis``: the run's hypothesis, when the caller has read it already."""
        self.engine = engine
        self.db = db or HeldConnections(engine)
        self.run_id = run_id
        self._hypothesis = hypothesis
        self._evidence: list[EvidenceItem] | None = None
        self._retrieved = False if fresh else None
        self._turns: dict[TurnKey, StoredTurn] | None = {} if fresh else None
        self._attempts_before: dict[TurnKey, int] | None = {} if fresh else None
        # A fresh run's every attempt is written through this store, so its usage totals are
        # known here without summing the table (None: not fresh, sum the table).
        self._usage: list[tuple[int | None, int | None, float | None]] | None = [] if fresh else None
        # The executor has just checked a fresh run is not cancelled.
        self._cancel_checked = time.monotonic() if fresh else 0.0
        self.finished_score: float | None = None
        """The score :meth:`finish` wrote, once it has marked the run done."""
        # Rows waiting for the next write transaction (None: nothing can be pending).
        self._pending: _Pending | None = _Pending() if fresh else None
        self._defer_turns = defer and fresh

    # ------------------------------------------------------------ reads
    def hypothesis(self) -> HypothesisOut:
        if self._hypothesis is None:
            hyp = t.Hypothesis.__table__  # type: ignore[attr-defined]
            with self.db.tx() as conn:
                h = conn.execute(
                    select(hyp).join(t.Run, t.Run.hypothesis_id == hyp.c.id).where(t.Run.id == self.run_id)
                ).one()
            self._hypothesis = to_out(h)  # type: ignore[arg-type]
        return self._hypothesis

    def evidence(self) -> list[EvidenceItem] | None:
        """The stored snapshot, or None when retrieval has not run yet."""
        if self._evidence is None:
            if self._retrieved is False:
                return None
            with self.db.tx() as conn:
                if conn.execute(select(t.Run.retrieved_at).where(t.Run.id == self.run_id)).scalar_one() is None:
                    return None
                rows = conn.execute(
                    select(_EVIDENCE).where(_EVIDENCE.c.run_id == self.run_id).order_by(_EVIDENCE.c.rank)
                ).all()
            self._evidence = [
                EvidenceItem(
                    eid=r.eid,
                    rank=r.rank,
                    page_slug=r.page_slug,
                    page_hash=r.page_hash,
                    heading_path=list(r.heading_path),
                    text=r.text,
                    score=r.score,
                    relevance=r.relevance,
                    facts=list(r.facts),
                    suspect=bool(r.suspect),
                )
                for r in rows
            ]
        return self._evidence

    def turns(self) -> dict[TurnKey, StoredTurn]:
        if self._turns is None:
            with self.db.tx() as conn:
                rows = conn.execute(select(*_STORED_COLUMNS).where(_TURN.c.run_id == self.run_id)).all()
            self._turns = {(r.round, r.role, r.seat): _stored(r._mapping) for r in rows}
        return self._turns

    def turn(self, round_: int, role: str, seat: int = 0) -> StoredTurn | None:
        return self.turns().get((round_, role, seat))

    def debate_turns(self) -> list[TurnView]:
        views: list[TurnView] = []
        for (rnd, role, _seat), row in sorted(self.turns().items()):
            if role == "proposer":
                views.append(TurnView(rnd, "proposer", ProposerReply.model_validate(row.parsed)))
            elif role == "critic":
                views.append(TurnView(rnd, "critic", CriticReply.model_validate(row.parsed)))
        return views

    def check_not_cancelled(self, *, every_s: float = 1.0) -> None:
        """Raise :class:`RunCancelled` if the run was cancelled (looked up at most every ``every_s``)."""
        now = time.monotonic()
        if now - self._cancel_checked < every_s:
            return
        self._cancel_checked = now
        with self.db.tx() as conn:
            status = conn.execute(_STATUS, {"id": self.run_id}).scalar_one()
        if status == "cancelled":
            raise RunCancelled(f"run {self.run_id} was cancelled")

    # ------------------------------------------------------------ writes
    # Never the ORM here: its unit of work costs more than the SQL itself at this size. A fresh
    # run's statements go to the driver (see the module docstring); the rare paths use Core.
    def save_evidence(self, items: list[EvidenceItem]) -> None:
        """Store the evidence snapshot once (a second call after a re-run finds it there).

        A fresh run's snapshot waits for the run's next write transaction (its first turn)."""
        if self._pending is not None:
            self._pending.evidence = self._evidence_rows(items)
            self._pending.retrieved_at = utcnow()
            self._evidence, self._retrieved = items, True
            return
        with self.db.tx(write=True) as conn:
            # Evidence rows and retrieved_at are written together, so retrieved_at says it all.
            done = conn.execute(select(t.Run.retrieved_at).where(t.Run.id == self.run_id)).scalar_one()
            if done is None and items:
                conn.execute(_EVIDENCE.insert(), self._evidence_rows(items))
            if done is None:
                conn.execute(update(t.Run).where(t.Run.id == self.run_id).values(retrieved_at=utcnow()))
        if done is not None:
            self._evidence, self._retrieved = None, None  # keep the snapshot that was stored first
            return
        self._evidence, self._retrieved = items, True

    def _evidence_rows(self, items: list[EvidenceItem]) -> list[dict[str, Any]]:
        return [
            dict(
                run_id=self.run_id,
                eid=e.eid,
                rank=e.rank,
                page_slug=e.page_slug,
                page_hash=e.page_hash,
                heading_path=e.heading_path,
                text=e.text,
                score=e.score,
                relevance=e.relevance,
                facts=e.facts,
                suspect=e.suspect,
            )
            for e in items
        ]

    def write_turn(
        self,
        key: TurnKey,
        result: AgentResult,
        *,
        backend: str,
        citations: list[CitationCheck],
        overall: float | None = None,
        meta: dict[str, Any] | None = None,
        rounds_done: int | None = None,
    ) -> StoredTurn:
        """Write a turn and its attempts once; a duplicate execution keeps the first write.

        ``rounds_done`` (the critic's turn closes a round) is recorded in the same transaction.
        """
        existing = self.turn(*key)
        if existing is not None:
            return existing
        usage = _sum_usage(result.attempts)
        values = dict(
            run_id=self.run_id,
            round=key[0],
            role=key[1],
            seat=key[2],
            backend=backend,
            label=result.label,
            model=result.model,
            prompt_name=result.prompt.get("name", ""),
            prompt_version=result.prompt.get("version", ""),
            prompt_hash=result.prompt.get("hash", ""),
            messages=[m.model_dump() for m in result.messages],
            raw_reply=result.raw,
            parsed=dump_reply(result.reply),
            citations=[c.model_dump() for c in citations],
            overall=overall,
            meta=meta or {},
            prompt_tokens=usage[0],
            completion_tokens=usage[1],
            cost_usd=usage[2],
            latency_ms=sum(a.latency_ms for a in result.attempts),
            created_at=utcnow(),
        )
        if self._defer_turns and self._pending is not None:
            self._pending.turns.append(values)
            self._pending.attempts += self._attempt_rows(key, result.attempts)
            if rounds_done is not None:
                self._pending.rounds_done = max(rounds_done, self._pending.rounds_done)
            row = _stored(values)
            self.turns()[key] = row
            return row
        try:
            with self._write() as conn:
                execute(conn, _INSERT_TURN, values)
                self._insert_attempts(conn, key, result.attempts)
                if rounds_done is not None:
                    execute(conn, _SET_ROUNDS_DONE, {"id": self.run_id, "rounds_done": rounds_done})
        except IntegrityError:
            self._turns = None  # someone else wrote it: read theirs
            self._usage = None  # ... and their attempts: totals come from the table
            self._pending = None  # ... and the evidence they argued from
            self._evidence, self._retrieved = None, None
            found = self.turn(*key)
            assert found is not None
            return found
        row = _stored(values)
        self.turns()[key] = row
        return row

    def write_failed_attempts(self, key: TurnKey, attempts: list[AttemptRecord]) -> None:
        """Attempts of a call that failed for good: kept under the turn they were for."""
        with self._write() as conn:
            self._insert_attempts(conn, key, attempts)

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """A write transaction that first writes whatever is pending (then nothing more waits)."""
        with self.db.tx(write=True) as conn:
            self._write_pending(conn)
            yield conn
        self._pending, self._defer_turns = None, False

    def _insert_attempts(self, conn: Connection, key: TurnKey, attempts: list[AttemptRecord]) -> None:
        executemany(conn, _INSERT_ATTEMPT, self._attempt_rows(key, attempts, conn))

    def _attempt_rows(
        self, key: TurnKey, attempts: list[AttemptRecord], conn: Connection | None = None
    ) -> list[dict[str, Any]]:
        if not attempts:
            return []
        # Numbering continues after attempts recorded by an earlier, failed execution.
        if self._attempts_before is None:
            assert conn is not None, "a fresh store knows its attempts"
            self._attempts_before = {
                (r.round, r.role, r.seat): r.n for r in conn.execute(_ATTEMPT_COUNTS, {"run": self.run_id})
            }
        base = self._attempts_before.get(key, 0)
        self._attempts_before[key] = base + len(attempts)
        if self._usage is not None:
            self._usage += [(a.usage.prompt_tokens, a.usage.completion_tokens, a.cost_usd) for a in attempts]
        return [
            dict(
                run_id=self.run_id,
                round=key[0],
                role=key[1],
                seat=key[2],
                n=base + i + 1,
                kind=a.kind,
                outcome=a.outcome,
                http_status=a.http_status,
                error=a.error,
                raw_reply=a.raw_reply,
                model=a.model,
                served_model=a.served_model,
                prompt_tokens=a.usage.prompt_tokens,
                completion_tokens=a.usage.completion_tokens,
                cost_usd=a.cost_usd,
                latency_ms=a.latency_ms,
                started_at=a.started_at,
            )
            for i, a in enumerate(attempts)
        ]

    def finish(
        self, c: Consensus, *, claims: tuple[int, int] = (0, 0), cited: dict[str, tuple[int, int]] | None = None
    ) -> None:
        """Mark the run done with its consensus, totals, ``claims`` (verified, citing evidence) and the pages
        its claims ``cited`` (slug -> verified, unverified claims), in one transaction (once)."""
        with self._write() as conn:
            usage = _totals(self._usage) if self._usage is not None else attempt_usage(conn, self.run_id)
            marked = execute(
                conn,
                _FINISH,
                dict(
                    id=self.run_id,
                    **usage,
                    score=c.score,
                    interval_lo=c.interval[0],
                    interval_hi=c.interval[1],
                    interval_method=c.interval_method,
                    agreement=c.agreement,
                    n_judges=c.n_judges,
                    claims_verified=claims[0],
                    claims_cited=claims[1],
                    finished_at=utcnow(),
                ),
            )
            if marked and cited:
                executemany(
                    conn,
                    _INSERT_CITED,
                    [
                        dict(run_id=self.run_id, page_slug=slug, verified=v, unverified=u)
                        for slug, (v, u) in sorted(cited.items())
                    ],
                )
        if marked:
            self.finished_score = c.score

    def mark_needs_review(self) -> None:
        """Send the run to review (a verdict contradicted the debate); a reviewer's own status stays."""
        with self._write() as conn:
            execute(conn, _NEEDS_REVIEW, {"id": self.run_id})

    def flush_pending(self) -> None:
        """Write what is pending now (a run ending failed or cancelled keeps its transcript so
        far); later writes go straight to the database."""
        if self._pending is not None and (self._pending.retrieved_at or self._pending.turns or self._pending.attempts):
            with self._write():
                pass
        self._pending, self._defer_turns = None, False

    def _write_pending(self, conn: Connection) -> None:
        p = self._pending
        if p is None:
            return
        executemany(conn, _INSERT_EVIDENCE, p.evidence)
        executemany(conn, _INSERT_TURN, p.turns)
        executemany(conn, _INSERT_ATTEMPT, p.attempts)
        if p.retrieved_at is not None:
            execute(conn, _SET_RETRIEVED, {"id": self.run_id, "retrieved_at": p.retrieved_at})
        if p.rounds_done:
            execute(conn, _SET_ROUNDS_DONE, {"id": self.run_id, "rounds_done": p.rounds_done})


def _stored(values: Any) -> StoredTurn:
    return StoredTurn(
        round=values["round"],
        role=values["role"],
        seat=values["seat"],
        parsed=values["parsed"],
        overall=values["overall"],
        meta=values["meta"] or {},
    )


def _sum_usage(attempts: list[AttemptRecord]) -> tuple[int | None, int | None, float | None]:
    """Totals over attempts; unknown (None) when any attempt's figure is unknown."""
    if not attempts:
        return None, None, None
    p = [a.usage.prompt_tokens for a in attempts]
    c = [a.usage.completion_tokens for a in attempts]
    cost = [a.cost_usd for a in attempts]
    return (
        None if None in p else sum(p),  # type: ignore[arg-type]
        None if None in c else sum(c),  # type: ignore[arg-type]
        None if None in cost else sum(cost),  # type: ignore[arg-type]
    )


def _totals(usage: list[tuple[int | None, int | None, float | None]]) -> dict[str, Any]:
    """Summed usage; unknown on any attempt makes that total unknown, not an undercount."""
    n = len(usage)
    names = ("prompt_tokens", "completion_tokens", "cost_usd")
    return {
        name: (sum(u[i] or 0 for u in usage) if n and all(u[i] is not None for u in usage) else None)
        for i, name in enumerate(names)
    }


def attempt_usage(conn: Connection, run_id: str) -> dict[str, Any]:
    """A run's prompt and completion tokens and cost: the sum over every attempt it recorded,
    failed ones and those of sibling judges included (so a failed run shows what it spent)."""
    a = t.Attempt
    rows = conn.execute(select(a.prompt_tokens, a.completion_tokens, a.cost_usd).where(a.run_id == run_id)).all()
    return _totals([tuple(r) for r in rows])
