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
from conftest import ONE_MODE, run_cli
from sqlalchemy import select

from debate.llm.fake import FakeOpenAIServer
from debate.store import tables as t
from debate.store.db import ensure_schema, session_scope

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

    from debate.llm.fake import schema_responder

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
@pytest.mark.parametrize(
    "kill_after_turns", [1, 3, 5], ids=["after-first-turn", "mid-debate", "between-judges-before-consensus"]
)
def test_killed_run_resumes_without_repeating_finished_turns(sample_engine, db_url, cli_env, kill_after_turns):
    with FakeOpenAIServer(_staggered) as server:
        env = {**cli_env, "DEBATE_OPENAI__BASE_URL": server.base_url, "DEBATE_OPENAI__API_KEY": "k", **ONE_MODE}
        proc = subprocess.Popen(
            [sys.executable, "-m", "debate", "run", SOD1, "--backend", "openai", "-q"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
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


async def test_concurrent_checkpoint_writes_share_commits_and_are_committed_before_they_return(tmp_path):
    import asyncio
    import sqlite3

    import aiosqlite
    from langgraph.checkpoint.base import empty_checkpoint

    from debate.engine.checkpoints import GroupCommitSqliteSaver

    path = tmp_path / "c.sqlite"
    async with aiosqlite.connect(path) as conn:
        saver = GroupCommitSqliteSaver(conn)
        await saver.setup()
        commits = 0
        real_commit = conn.commit

        async def counting_commit() -> None:
            nonlocal commits
            commits += 1
            await real_commit()

        conn.commit = counting_commit  # type: ignore[method-assign]

        async def step(i: int) -> None:
            cfg = {"configurable": {"thread_id": f"t{i}", "checkpoint_ns": ""}}
            saved = await saver.aput(cfg, empty_checkpoint(), {"step": i}, {})
            await saver.aput_writes(saved, [("round", i), ("judged", [i])], task_id=f"task{i}")
            # Back from the write means committed: another connection already sees it.
            with sqlite3.connect(path) as other:
                assert other.execute("SELECT count(*) FROM writes WHERE thread_id = ?", (f"t{i}",)).fetchone() == (2,)

        await asyncio.gather(*(step(i) for i in range(40)))
        assert commits < 40  # 80 writes from 40 concurrent runs, far fewer transactions
        for i in (0, 39):
            tup = await saver.aget_tuple({"configurable": {"thread_id": f"t{i}", "checkpoint_ns": ""}})
            assert tup is not None and tup.metadata["step"] == i
            assert sorted(w[1] for w in tup.pending_writes) == ["judged", "round"]

        # A failed transaction fails every write in it, and the next writes go through again.
        await conn.execute("ALTER TABLE writes RENAME TO writes_away")
        cfg = {"configurable": {"thread_id": "bad", "checkpoint_ns": "", "checkpoint_id": "x"}}
        results = await asyncio.gather(
            *(saver.aput_writes(cfg, [("round", 1)], task_id=f"b{i}") for i in range(3)), return_exceptions=True
        )
        assert all(isinstance(r, sqlite3.OperationalError) for r in results)
        await conn.execute("ALTER TABLE writes_away RENAME TO writes")
        await saver.aput_writes(cfg, [("round", 1)], task_id="after")
        with sqlite3.connect(path) as other:
            assert other.execute("SELECT task_id FROM writes WHERE thread_id = 'bad'").fetchall() == [("after",)]


@pytest.mark.slow
def test_run_killed_during_its_first_model_call_retrieves_again_and_keeps_one_snapshot(sample_engine, db_url, cli_env):
    # A fresh run's evidence is written with its first turn: killed before that turn, nothing of
    # the run is stored but its status, and the resumed run retrieves and stores the snapshot.
    with FakeOpenAIServer(_staggered) as server:
        env = {**cli_env, "DEBATE_OPENAI__BASE_URL": server.base_url, "DEBATE_OPENAI__API_KEY": "k", **ONE_MODE}
        proc = subprocess.Popen(
            [sys.executable, "-m", "debate", "run", SOD1, "--backend", "openai", "-q"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while server.request_count < 1:  # the first proposer call is in flight (it answers after 0.3 s)
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        [run_id] = _run_ids(db_url)
        with session_scope(ensure_schema(db_url)) as s:
            assert s.execute(select(t.Evidence.id).where(t.Evidence.run_id == run_id)).first() is None
            run = s.get(t.Run, run_id)
            assert run is not None and run.status == "running" and run.retrieved_at is None
        assert _saved_turns(db_url) == []

        run_cli("run", "--resume", run_id, "-q", env=env)

        assert len(_saved_turns(db_url)) == EXPECTED_TURNS
        assert server.request_count == 1 + EXPECTED_TURNS  # the call in flight at the kill, asked again
        with session_scope(ensure_schema(db_url)) as s:
            eids = list(
                s.execute(select(t.Evidence.eid).where(t.Evidence.run_id == run_id).order_by(t.Evidence.rank)).scalars()
            )
            assert eids == [f"E{i}" for i in range(1, len(eids) + 1)] and len(eids) >= 3
            run = s.get(t.Run, run_id)
            assert run is not None and run.status == "done" and run.retrieved_at is not None
            first = s.execute(
                select(t.Evidence.text).where(t.Evidence.run_id == run_id, t.Evidence.eid == "E1")
            ).scalar_one()
        # The model was shown the snapshot that is stored.
        resumed_proposer = [r for r in server.requests if _turn_of(r.body) == "proposer"][1]
        assert first.split("\n")[0] in resumed_proposer.body["messages"][-1]["content"]
