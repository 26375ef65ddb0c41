"""`debate bench model`: debates against a real local model (llama.cpp on a GGUF).

Per debate: wall seconds, prompt and completion tokens per turn, and the engine's own share of
the wall time: the wall time not spent waiting on model calls. With one slot the calls run one
after another, so that share is simply ``1 - sum(call latencies) / wall``. Target: under 5 %.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select

from debate.bench.debate import _prepare
from debate.engine.runs import Executor, create_runs
from debate.store import tables as t
from debate.store.db import session_scope


def _turn_stats(engine: Any, run_id: str) -> tuple[list[dict[str, Any]], float]:
    """Per turn: role, prompt and completion tokens; and the run's summed call latency (s)."""
    with session_scope(engine) as s:
        turns = s.execute(select(t.Turn).where(t.Turn.run_id == run_id).order_by(t.Turn.id)).scalars().all()
        attempts = s.execute(select(t.Attempt).where(t.Attempt.run_id == run_id)).scalars().all()
        rows = [
            {"role": x.role, "prompt_tokens": x.prompt_tokens, "completion_tokens": x.completion_tokens} for x in turns
        ]
        waited = sum(a.latency_ms for a in attempts) / 1000
    return rows, waited


def run(*, debates: int = 2, model_path: str = "", echo: Callable[..., None] = print) -> dict[str, Any]:
    """Run ``debates`` one-round, two-judge debates on the local model, one at a time."""
    with tempfile.TemporaryDirectory() as tmp:
        settings, engine, ids = _prepare(Path(tmp), debates)
        settings = settings.model_copy(
            update={
                "backend": "local",
                "debate": settings.debate.model_copy(update={"rounds": 1, "judges": 2, "evidence_limit": 3}),
                "openai": settings.openai.model_copy(update={"max_output_tokens": 800, "temperature": 0.0}),
                "local": settings.local.model_copy(update={"parallel": 1, "model_path": model_path}),
            }
        )
        results: list[dict[str, Any]] = []

        async def go() -> None:
            async with Executor(engine, settings, backend="local") as ex:
                for run_id in create_runs(engine, settings, ids, backend="local"):
                    started = time.perf_counter()
                    outcome = await ex.execute(run_id)
                    wall = time.perf_counter() - started
                    turns, waited = _turn_stats(engine, run_id)
                    share = max(0.0, 1 - waited / wall) if wall else 0.0
                    results.append(
                        {"status": outcome.status, "wall_s": round(wall, 2), "turns": turns, "engine_share": share}
                    )
                    echo(f"debate {len(results)}: {outcome.status} in {wall:.1f} s, engine share {share:.1%}")

        asyncio.run(go())
    done = [r for r in results if r["status"] == "done"]
    tokens = [turn for r in results for turn in r["turns"]]
    return {
        "debates": len(results),
        "done": len(done),
        "seconds_per_debate": round(statistics.mean(r["wall_s"] for r in results), 2) if results else None,
        "prompt_tokens_per_turn": round(statistics.mean(x["prompt_tokens"] or 0 for x in tokens), 1)
        if tokens
        else None,
        "completion_tokens_per_turn": round(statistics.mean(x["completion_tokens"] or 0 for x in tokens), 1)
        if tokens
        else None,
        "engine_share": round(statistics.mean(r["engine_share"] for r in results), 4) if results else None,
        "runs": results,
    }
