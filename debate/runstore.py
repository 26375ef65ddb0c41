"""Database work for one executing run: evidence snapshot, turns, attempts, completion.

Every write is keyed so that running a node twice (LangGraph may re-execute a node after a
kill) writes nothing new: a turn is unique on (run, round, role, seat) and written once with
its attempts in the same transaction; a run's score is written in the same transaction that
marks it done, so no partial score is ever visible.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from debate.agents import AgentResult, TurnView, dump_reply
from debate.consensus import Consensus
from debate.errors import DebateError
from debate.hypotheses import to_out
from debate.llm import Attempt as AttemptRecord
from debate.models import CitationCheck, CriticReply, EvidenceItem, HypothesisOut, ProposerReply
from debate.store import tables as t
from debate.store.db import session_scope
from debate.store.tables import utcnow

TurnKey = tuple[int, str, int]  # (round, role, seat)


class RunCancelled(DebateError):
    """The run was cancelled while it ran."""


class RunStore:
    """Reads and writes of one run, with the run's fixed inputs cached after first use."""

    def __init__(self, engine: Engine, run_id: str) -> None:
        self.engine = engine
        self.run_id = run_id
        self._hypothesis: HypothesisOut | None = None
        self._evidence: list[EvidenceItem] | None = None
        self._turns: dict[TurnKey, t.Turn] | None = None

    # ------------------------------------------------------------ reads
    def hypothesis(self) -> HypothesisOut:
        if self._hypothesis is None:
            with session_scope(self.engine) as s:
                run = s.get(t.Run, self.run_id)
                assert run is not None
                h = s.get(t.Hypothesis, run.hypothesis_id)
                assert h is not None
                self._hypothesis = to_out(h)
        return self._hypothesis

    def evidence(self) -> list[EvidenceItem] | None:
        """The stored snapshot, or None when retrieval has not run yet."""
        if self._evidence is None:
            with session_scope(self.engine) as s:
                if s.execute(select(t.Run.retrieved_at).where(t.Run.id == self.run_id)).scalar_one() is None:
                    return None
                rows = s.execute(
                    select(t.Evidence).where(t.Evidence.run_id == self.run_id).order_by(t.Evidence.rank)
                ).scalars().all()
            self._evidence = [
                EvidenceItem(eid=r.eid, rank=r.rank, page_slug=r.page_slug, page_hash=r.page_hash,
                             heading_path=list(r.heading_path), text=r.text, score=r.score, facts=list(r.facts))
                for r in rows
            ]
        return self._evidence

    def turns(self) -> dict[TurnKey, t.Turn]:
        if self._turns is None:
            with session_scope(self.engine) as s:
                rows = s.execute(select(t.Turn).where(t.Turn.run_id == self.run_id)).scalars().all()
            self._turns = {(r.round, r.role, r.seat): r for r in rows}
        return self._turns

    def turn(self, round_: int, role: str, seat: int = 0) -> t.Turn | None:
        return self.turns().get((round_, role, seat))

    def debate_turns(self) -> list[TurnView]:
        views: list[TurnView] = []
        for (rnd, role, _seat), row in sorted(self.turns().items()):
            if role == "proposer":
                views.append(TurnView(rnd, "proposer", ProposerReply.model_validate(row.parsed)))
            elif role == "critic":
                views.append(TurnView(rnd, "critic", CriticReply.model_validate(row.parsed)))
        return views

    def check_not_cancelled(self) -> None:
        with self.engine.connect() as conn:
            status = conn.execute(select(t.Run.status).where(t.Run.id == self.run_id)).scalar_one()
        if status == "cancelled":
            raise RunCancelled(f"run {self.run_id} was cancelled")

    # ------------------------------------------------------------ writes
    def save_evidence(self, items: list[EvidenceItem]) -> None:
        """Store the evidence snapshot once (a second call after a re-run finds it there)."""
        with session_scope(self.engine, immediate=True) as s:
            n = s.execute(select(func.count()).where(t.Evidence.run_id == self.run_id)).scalar_one()
            if n == 0 and items:
                s.execute(insert(t.Evidence), [
                    dict(run_id=self.run_id, eid=e.eid, rank=e.rank, page_slug=e.page_slug, page_hash=e.page_hash,
                         heading_path=e.heading_path, text=e.text, score=e.score, facts=e.facts)
                    for e in items
                ])
            s.execute(update(t.Run).where(t.Run.id == self.run_id).values(retrieved_at=utcnow()))
        self._evidence = items

    def write_turn(
        self, key: TurnKey, result: AgentResult, *, backend: str, citations: list[CitationCheck],
        overall: float | None = None, meta: dict[str, Any] | None = None,
    ) -> t.Turn:
        """Write a turn and its attempts once; a duplicate execution keeps the first write."""
        existing = self.turn(*key)
        if existing is not None:
            return existing
        usage = _sum_usage(result.attempts)
        row = t.Turn(
            run_id=self.run_id, round=key[0], role=key[1], seat=key[2], backend=backend, label=result.label,
            model=result.model, prompt_name=result.prompt.get("name", ""),
            prompt_version=result.prompt.get("version", ""), prompt_hash=result.prompt.get("hash", ""),
            messages=[m.model_dump() for m in result.messages], raw_reply=result.raw,
            parsed=dump_reply(result.reply), citations=[c.model_dump() for c in citations],
            overall=overall, meta=meta or {}, prompt_tokens=usage[0], completion_tokens=usage[1],
            cost_usd=usage[2], latency_ms=sum(a.latency_ms for a in result.attempts), created_at=utcnow(),
        )
        try:
            with session_scope(self.engine, immediate=True) as s:
                s.add(row)
                self._insert_attempts(s, key, result.attempts)
        except IntegrityError:
            self._turns = None  # someone else wrote it: read theirs
            found = self.turn(*key)
            assert found is not None
            return found
        self.turns()[key] = row
        return row

    def write_failed_attempts(self, key: TurnKey, attempts: list[AttemptRecord]) -> None:
        """Attempts of a call that failed for good: kept under the turn they were for."""
        with session_scope(self.engine, immediate=True) as s:
            self._insert_attempts(s, key, attempts)

    def _insert_attempts(self, s, key: TurnKey, attempts: list[AttemptRecord]) -> None:  # type: ignore[no-untyped-def]
        if not attempts:
            return
        base = s.execute(
            select(func.count()).where(t.Attempt.run_id == self.run_id, t.Attempt.round == key[0],
                                       t.Attempt.role == key[1], t.Attempt.seat == key[2])
        ).scalar_one()
        s.execute(insert(t.Attempt), [
            dict(run_id=self.run_id, round=key[0], role=key[1], seat=key[2], n=base + i + 1, kind=a.kind,
                 outcome=a.outcome, http_status=a.http_status, error=a.error, raw_reply=a.raw_reply, model=a.model,
                 prompt_tokens=a.usage.prompt_tokens, completion_tokens=a.usage.completion_tokens,
                 cost_usd=a.cost_usd, latency_ms=a.latency_ms, started_at=a.started_at)
            for i, a in enumerate(attempts)
        ])

    def set_rounds_done(self, n: int) -> None:
        with session_scope(self.engine) as s:
            s.execute(update(t.Run).where(t.Run.id == self.run_id, t.Run.rounds_done < n).values(rounds_done=n))

    def finish(self, c: Consensus) -> None:
        """Mark the run done with its consensus and totals, in one transaction."""
        with session_scope(self.engine, immediate=True) as s:
            run = s.get(t.Run, self.run_id)
            assert run is not None
            if run.status == "done":
                return
            totals = s.execute(
                select(func.sum(t.Attempt.prompt_tokens), func.sum(t.Attempt.completion_tokens),
                       func.sum(t.Attempt.cost_usd), func.count(t.Attempt.id),
                       func.count(t.Attempt.prompt_tokens), func.count(t.Attempt.cost_usd))
                .where(t.Attempt.run_id == self.run_id)
            ).one()
            n_attempts = totals[3]
            # Unknown usage on any attempt makes the total unknown, not an undercount.
            run.prompt_tokens = totals[0] if n_attempts and totals[4] == n_attempts else None
            run.completion_tokens = totals[1] if n_attempts and totals[4] == n_attempts else None
            run.cost_usd = totals[2] if n_attempts and totals[5] == n_attempts else None
            run.score, run.interval_lo, run.interval_hi = c.score, c.interval[0], c.interval[1]
            run.interval_method, run.agreement, run.n_judges = c.interval_method, c.agreement, c.n_judges
            run.status, run.finished_at, run.error = "done", utcnow(), None
            s.add(run)


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
