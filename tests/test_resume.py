"""A model-backed debate killed with SIGKILL resumes with `debate run --resume` and finishes
with exactly one turn per (round, role, seat); finished turns are never asked again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from sqlalchemy import select

from conftest import run_cli
from debate.store import tables as t
from debate.store.db import ensure_schema, session_scope
from debate.testing import FakeOpenAIServer

SOD1 = "h-9878fd9b"
EXPECTED_TURNS = 7  # 2 rounds x (proposer, critic) + 3 judges; schema replies never concede


def _turn_of(body: dict) -> str:  # type: ignore[type-arg]
    system = body["messages"][0]["content"]
    if "You are the proposer" in system:
        return "proposer"
    if "You are the critic" in system:
        return "critic"
    return "judge " + system.split("You are judge ", 1)[1].split(" ", 1)[0]


async def _staggered(body: dict) -> str:  # type: ignore[type-arg]
    """Judges answer one after another (seat 0 first), so a kill can land between them."""
    import asyncio

    from debate.testing import schema_responder

    turn = _turn_of(body)
    await asyncio.sleep(0.3 + (1.2 * int(turn.split()[1]) if turn.startswith("judge") else 0))
    return schema_responder(body)


def _saved_turns(db_url: str) -> list[tuple[int, str, int]]:
    with session_scope(ensure_schema(db_url)) as s:
        return sorted(tuple(r) for r in s.execute(select(t.Turn.round, t.Turn.role, t.Turn.seat)))


def _run_ids(db_url: str) -> list[str]:
    with session_scope(ensure_schema(db_url)) as s:
        return list(s.execute(select(t.Run.id)).scalars())


@pytest.mark.slow
@pytest.mark.parametrize("kill_after_turns", [1, 3, 5], ids=["after-first-turn", "mid-debate", "between-judges-before-consensus"])
def test_killed_run_resumes_without_repeating_finished_turns(sample_engine, db_url, cli_env, kill_after_turns):
    with FakeOpenAIServer(_staggered) as server:
        env = {**cli_env, "DEBATE_OPENAI__BASE_URL": server.base_url, "DEBATE_OPENAI__API_KEY": "k"}
        proc = subprocess.Popen([sys.executable, "-m", "debate", "run", SOD1, "--backend", "openai", "-q"],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while len(_saved_turns(db_url)) < kill_after_turns:
            assert proc.poll() is None, "the debate ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        saved_at_kill = _saved_turns(db_url)
        asked_before = Counter(_turn_of(r.body) for r in server.requests)
        requests_before = server.request_count
        assert 0 < len(saved_at_kill) < EXPECTED_TURNS

        [run_id] = _run_ids(db_url)
        run_cli("run", "--resume", run_id, "-q", env=env)

        turns = _saved_turns(db_url)
        assert len(turns) == len(set(turns)) == EXPECTED_TURNS
        # Only turns that were not saved at the kill are asked after it.
        assert server.request_count - requests_before == EXPECTED_TURNS - len(saved_at_kill)
        asked = Counter(_turn_of(r.body) for r in server.requests)
        for key in ("proposer", "critic"):
            assert asked[key] <= 2 + (asked_before[key] - sum(1 for x in saved_at_kill if x[1] == key))
        with session_scope(ensure_schema(db_url)) as s:
            run = s.get(t.Run, run_id)
            assert run is not None and run.status == "done" and run.score is not None
