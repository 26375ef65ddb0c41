"""Rows a test states directly: hypotheses, runs, their evidence and turns, inserted as stored.

Scores and lists are read from what the database holds; these put it there without running a
debate, so a test can say "a flagged run an hour later" in one line.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from sqlalchemy import insert
from sqlalchemy.engine import Engine

from debate.core.models import HypothesisIn
from debate.engine.leases import me
from debate.kb import hypotheses as hyps
from debate.store import tables as t
from debate.store.db import session_scope

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def add_hyp(engine: Engine, title: str, **kw: Any) -> str:
    """Store a hypothesis (source "test"); its id."""
    with session_scope(engine) as s:
        row, _ = hyps.add(s, HypothesisIn(title=title, source="test", **kw))
        return row.id


def insert_run(engine: Engine, hyp_id: str, *, at: datetime = T0, spread: float | None = None, **values: Any) -> str:
    """Store a run of ``hyp_id``: an offline run created at ``at``, finished 30 s later when done
    or failed, a queued or running one held live by this process; ``values`` override any
    column. ``spread`` gives a scored run agreement 0.8 and the interval score ± spread. Its id."""
    run_id = values.pop("id", f"r-{uuid4().hex[:12]}")
    status = values.get("status", "done")
    score = values.get("score")
    row: dict[str, Any] = {
        "id": run_id,
        "hypothesis_id": hyp_id,
        "status": "done",
        "backend": "offline",
        "models": {},
        "config": {},
        "prompt_hashes": {},
        "created_at": at,
        "finished_at": at + timedelta(seconds=30) if status in ("done", "failed") else None,
        "owner": me() if status in ("queued", "running") else None,
    }
    if spread is not None and score is not None:
        row |= {"agreement": 0.8, "interval_lo": score - spread, "interval_hi": score + spread}
    with session_scope(engine) as s:
        s.execute(insert(t.Run).values(**(row | values)))
    return run_id


def insert_evidence(engine: Engine, run_id: str, slugs: Sequence[str], page_hash: str = "x") -> None:
    """Record that ``run_id`` retrieved one chunk from each page in ``slugs``, as E1, E2, ..."""
    with session_scope(engine) as s:
        for i, slug in enumerate(slugs, start=1):
            s.execute(
                insert(t.Evidence).values(
                    run_id=run_id,
                    eid=f"E{i}",
                    rank=i,
                    page_slug=slug,
                    page_hash=page_hash,
                    heading_path=["Overview"],
                    text="Retrieved text.",
                    score=1.0,
                    relevance=1.0,
                    facts=[],
                )
            )


def insert_turn(
    engine: Engine, run_id: str, role: str, parsed: dict[str, Any], *, round_: int = 1, **values: Any
) -> None:
    """Store a turn of ``role`` (seat 0) whose reply was ``parsed``: an offline turn written
    ``round_`` minutes after :data:`T0`; ``values`` override any column."""
    row: dict[str, Any] = {
        "run_id": run_id,
        "round": round_,
        "role": role,
        "seat": 0,
        "backend": "offline",
        "label": "heuristic",
        "model": "offline-heuristic-v1",
        "prompt_name": role,
        "prompt_version": "1",
        "prompt_hash": "x",
        "messages": [],
        "raw_reply": json.dumps(parsed),
        "parsed": parsed,
        "citations": [],
        "meta": {},
        "latency_ms": 0.0,
        "created_at": T0 + timedelta(minutes=round_),
    }
    with session_scope(engine) as s:
        s.execute(insert(t.Turn).values(**(row | values)))
