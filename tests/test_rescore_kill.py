"""A rescoring process killed with SIGKILL at any moment finishes its batch when the same command
is rerun: every selected hypothesis is scored exactly once in the batch, no turn is written or
asked twice, and no score is ever visible on a run that is not done."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
from conftest import ONE_MODE, run_cli
from sqlalchemy import func, select

from debate.llm.fake import FakeOpenAIServer
from debate.store import tables as t
from debate.store.db import ensure_schema, session_scope

LIMIT = 8
TURNS_PER_DEBATE = 4  # 1 round (proposer, critic) + 2 judges; schema replies never concede


def _state(db_url: str) -> dict[str, int]:
    with session_scope(ensure_schema(db_url)) as s:
        runs = dict(s.execute(select(t.Run.status, func.count()).group_by(t.Run.status)).all())
        turns = s.execute(select(func.count()).select_from(t.Turn)).scalar_one()
        # Runs mid-debate with at least two calls to go (only the proposer has answered), so
        # a kill decided now lands before they can finish.
        one_turn = (
            select(t.Turn.run_id)
            .join(t.Run, t.Run.id == t.Turn.run_id)
            .where(t.Run.status == "running")
            .group_by(t.Turn.run_id)
            .having(func.count() == 1)
            .subquery()
        )
        in_flight = s.execute(select(func.count()).select_from(one_turn)).scalar_one()
        # A score is only ever visible together with status done (one transaction).
        partial = s.execute(
            select(func.count()).where((t.Run.score.is_not(None)) != (t.Run.status == "done"))
        ).scalar_one()
    assert partial == 0, "a score is visible on a run that is not done"
    return {"runs": sum(runs.values()), "done": runs.get("done", 0), "turns": turns, "in_flight": in_flight}


def _kill_when(
    cmd: list[str], env: dict[str, str], db_url: str, ready: Callable[[dict[str, int]], bool]
) -> dict[str, int]:
    """Start ``cmd``, SIGKILL it once ``ready(state)`` holds, check nothing writes afterwards."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    try:
        while True:
            state = _state(db_url)
            if ready(state):
                break
            if proc.poll() is not None:
                err = proc.stderr.read().decode()[-500:]  # type: ignore[union-attr]
                raise AssertionError(f"ended before the kill point: {err}")
            assert time.monotonic() < deadline, "kill point never reached"
            time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGKILL)  # a no-op if it already ended
        proc.wait()  # reaped: the batch's owner is gone, not a zombie
    after = _state(db_url)
    time.sleep(0.5)
    assert _state(db_url) == after, "something still writes after the kill (a helper outlived its parent?)"
    return after


def _check_batch(db_url: str) -> str:
    with session_scope(ensure_schema(db_url)) as s:
        [batch] = s.execute(select(t.Batch)).scalars().all()
        items = s.execute(select(t.BatchItem).where(t.BatchItem.batch_id == batch.id)).scalars().all()
        runs = s.execute(select(t.Run)).scalars().all()
        turn_keys = s.execute(select(t.Turn.run_id, t.Turn.round, t.Turn.role, t.Turn.seat)).all()
    assert batch.status == "done" and batch.total == len(items) == LIMIT and batch.owner is None
    # Exactly one run per selected hypothesis, all done with a score; no other run was ever made.
    assert sorted(r.hypothesis_id for r in runs) == sorted(i.hypothesis_id for i in items)
    assert {i.run_id for i in items} == {r.id for r in runs}
    assert all(r.status == "done" and r.score is not None and r.batch_id == batch.id for r in runs)
    assert len(turn_keys) == len(set(turn_keys)) == LIMIT * TURNS_PER_DEBATE
    return batch.id


@pytest.mark.slow
def test_killed_model_batch_resumes_to_exactly_one_score_each(sample_engine, db_url, cli_env):  # type: ignore
    with FakeOpenAIServer(latency_s=0.25) as server:
        env = {
            **cli_env,
            "DEBATE_OPENAI__BASE_URL": server.base_url,
            "DEBATE_OPENAI__API_KEY": "k",
            **ONE_MODE,
            "DEBATE_DEBATE__ROUNDS": "1",
            "DEBATE_DEBATE__JUDGES": "2",
        }
        args = [
            "rescore",
            "--backend",
            "openai",
            "--stale-after",
            "0s",
            "--limit",
            str(LIMIT),
            "--concurrency",
            "4",
            "--json",
        ]
        cmd = [sys.executable, "-m", "debate", *args]
        # Kill points, in order: runs claimed but nothing answered yet; mid-debate with turns
        # of several runs written; half the batch done and a run of the rest mid-debate. Each
        # rerun is the same command.
        after_claim = _kill_when(cmd, env, db_url, lambda s: s["runs"] >= 1)
        requests = [server.request_count]
        mid = _kill_when(cmd, env, db_url, lambda s: s["turns"] >= after_claim["turns"] + 6)
        requests.append(server.request_count)
        late = _kill_when(cmd, env, db_url, lambda s: s["done"] >= LIMIT // 2 and s["in_flight"] >= 1)
        requests.append(server.request_count)
        assert after_claim["turns"] < mid["turns"] and mid["done"] < late["done"] < LIMIT

        summary = json.loads(run_cli(*args, env=env).stdout)
        assert summary["status"] == "done" and summary["done"] == LIMIT and summary["failed"] == 0
        assert summary["resumed"] >= 1  # runs interrupted by the last kill were resumed, not redone
        batch_id = _check_batch(db_url)
        assert summary["batch_id"] == batch_id
        # After the last kill only the turns not yet saved were asked for: none twice.
        assert server.request_count - requests[-1] == LIMIT * TURNS_PER_DEBATE - late["turns"]
        with session_scope(ensure_schema(db_url)) as s:
            attempts = s.execute(select(func.count()).select_from(t.Attempt)).scalar_one()
        assert attempts == LIMIT * TURNS_PER_DEBATE


@pytest.mark.slow
def test_killed_two_process_offline_batch_restarts_cleanly(sample_engine, db_url, cli_env):  # type: ignore
    """Offline runs keep no checkpoint: a killed one restarts and reuses the turns already stored.
    The helper process dies with the first one, so the rerun is alone with the batch."""
    env = {**cli_env, "DEBATE_DEBATE__ROUNDS": "1", "DEBATE_DEBATE__JUDGES": "2"}
    args = ["rescore", "--stale-after", "0s", "--limit", str(LIMIT), "--concurrency", "2", "--processes", "2", "--json"]
    _kill_when([sys.executable, "-m", "debate", *args], env, db_url, lambda s: s["done"] >= 3)
    summary = json.loads(run_cli(*args, env=env).stdout)
    assert summary["status"] == "done" and summary["done"] == LIMIT
    _check_batch(db_url)
