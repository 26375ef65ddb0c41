"""The heartbeat of a process's run leases (see :mod:`debate.engine.leases`).

One background task per :class:`~debate.engine.runs.Executor`, not one per node: every
``[debate] heartbeat_s`` seconds a single UPDATE refreshes every queued or running run this
process owns (those it executes, and those it created and will execute next), and a read
finds the runs it executes that another process took over meanwhile (it had judged this one
dead: a stalled machine), so the executor can stop asking models for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Collection, Sequence

from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from debate.engine.leases import PENDING, me, now_value
from debate.store import tables as t
from debate.store.db import write_tx

log = logging.getLogger("debate.engine")
_R = t.Run.__table__  # type: ignore[attr-defined]


def beat(engine: Engine, watched: Sequence[str]) -> dict[str, str]:
    """Refresh this process's leases; returns those of ``watched`` another owner holds now (run → owner)."""
    with write_tx(engine) as conn:
        conn.execute(
            update(_R).where(_R.c.owner == me(), _R.c.status.in_(PENDING)).values(heartbeat_at=now_value(conn))
        )
        if not watched:
            return {}
        rows = conn.execute(
            select(_R.c.id, _R.c.owner).where(_R.c.id.in_(list(watched)), _R.c.status.in_(PENDING), _R.c.owner != me())
        ).all()
    return {run_id: owner for run_id, owner in rows}


class Heartbeat:
    """Beats every ``period_s`` until closed; ``on_lost`` hears of runs taken over from us."""

    def __init__(
        self,
        engine: Engine,
        period_s: float,
        *,
        watched: Callable[[], Collection[str]],
        on_lost: Callable[[dict[str, str]], None],
    ) -> None:
        self.engine = engine
        self.period_s = period_s
        self.watched = watched
        self.on_lost = on_lost
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Heartbeat:
        self._task = asyncio.create_task(self._loop(), name="lease-heartbeat")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.period_s)
            watched = sorted(self.watched())  # read on the loop's thread, not the worker's
            try:
                lost = await asyncio.to_thread(beat, self.engine, watched)
            except Exception as e:  # a missed beat is retried next period; never stop beating
                log.warning("lease heartbeat failed: %s", e)
                continue
            if lost:
                self.on_lost(lost)
