"""Run leases: a killed `debate run` leaves its runs interrupted — listed, resumable to done with
the same debate, no reason for a 409, not "in progress" in the wiki — a live run is never taken
for interrupted, and of several processes taking an interrupted run over at once exactly one
wins (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import ONE_MODE, SAMPLE_HYPOTHESES, SAMPLE_KB, run_cli
from pg import pg_url  # noqa: F401  (fixture)
from sqlalchemy import select, text, update
from sqlalchemy.engine import Engine

from debate.core.config import load_settings
from debate.engine.leases import interrupted_ids, interrupted_runs, me, status_condition, take
from debate.engine.runs import create_runs
from debate.kb.hypotheses import import_file
from debate.kb.ingest import ingest_paths
from debate.llm.fake import FakeOpenAIServer, stop_processes, worker_process
from debate.store import tables as t
from debate.store.db import ensure_schema, session_scope, write_tx
from debate.store.tables import utcnow

SOD1, BACE1, H3, H4 = "h-9878fd9b", "h-1c05c34d", "h-42374479", "h-3893b013"
EXPECTED_TURNS = 7  # 2 rounds x (proposer, critic) + 3 judges; schema replies never concede


# ---------------------------------------------------------------- helpers


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database holding the sample hypotheses (PostgreSQL: one per module, shared)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/debate.db"
    else:
        url = request.getfixturevalue("pg_url")
    engine = ensure_schema(url)
    with session_scope(engine) as s:
        if s.get(t.Hypothesis, SOD1) is None:
            import_file(engine, SAMPLE_HYPOTHESES)
    return url


@pytest.fixture
def sample_url(url: str) -> str:
    """``url`` with the sample KB too (for debates)."""
    engine = ensure_schema(url)
    with session_scope(engine) as s:
        if s.execute(select(t.Page.id).limit(1)).first() is None:
            ingest_paths(engine, [SAMPLE_KB])
    return url


def _dead_owner(*, stamped: bool = True) -> str:
    """The owner string of a process of this machine that has exited."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    host, _pid, _start, machine = me().split(":")
    return f"{host}:{proc.pid}:1:{machine}" if stamped else f"{host}:{proc.pid}"


def _lease(engine: Engine, run_id: str, **values: Any) -> None:
    with session_scope(engine) as s:
        s.execute(update(t.Run).where(t.Run.id == run_id).values(**values))


def _run(engine: Engine, hyp: str = SOD1, backend: str = "offline") -> str:
    [run_id] = create_runs(engine, load_settings(database_url=str(engine.url)), [hyp], backend=backend)
    return run_id


def _stuck(engine: Engine, run_ids: list[str]) -> set[str]:
    with session_scope(engine) as s:
        return interrupted_ids(s, run_ids)


def _env(cli_env: dict[str, str], url: str, server: FakeOpenAIServer) -> dict[str, str]:
    return {
        **cli_env,
        "DEBATE_DATABASE_URL": url,
        "DEBATE_OPENAI__BASE_URL": server.base_url,
        "DEBATE_OPENAI__API_KEY": "k",
        **ONE_MODE,
    }


def _turns(engine: Engine, run_id: str) -> list[tuple[int, str, int]]:
    with session_scope(engine) as s:
        rows = s.execute(select(t.Turn.round, t.Turn.role, t.Turn.seat).where(t.Turn.run_id == run_id)).all()
    return sorted(tuple(r) for r in rows)  # type: ignore[misc]


def _kill_mid_debate(
    cmd: list[str], env: dict[str, str], engine: Engine, turns: int, during: Any = None
) -> dict[str, str]:
    """Start ``debate run ...``, SIGKILL it once ``turns`` turns are saved (calling ``during()``
    just before); returns hypothesis id → run id of every run in the database."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    try:
        while True:
            with session_scope(engine) as s:
                saved = s.execute(select(t.Turn.id)).all()
            if len(saved) >= turns:
                break
            assert proc.poll() is None, proc.stderr.read().decode()[-500:]  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "kill point never reached"
            time.sleep(0.02)
        if during is not None:
            during()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with session_scope(engine) as s:
        return dict(s.execute(select(t.Run.hypothesis_id, t.Run.id)).all())  # type: ignore[arg-type]


# ---------------------------------------------------------------- what is live, what is interrupted


def test_a_live_owner_or_job_keeps_a_run_and_anything_else_is_interrupted(url: str) -> None:
    engine = ensure_schema(url)
    fresh, gone, dead, far_fresh, far_silent, unstamped, slow_me, done = (_run(engine) for _ in range(8))
    now = utcnow()
    _lease(engine, gone, owner=None)  # e.g. a run a stopping process gave up
    _lease(engine, dead, status="running", owner=_dead_owner(), heartbeat_at=now)  # dead here: at once
    _lease(engine, far_fresh, status="running", owner="elsewhere:41:7:b", heartbeat_at=now)
    _lease(engine, far_silent, owner="elsewhere:41:7:b", heartbeat_at=now - timedelta(minutes=1))
    # Without a machine stamp a dead pid proves nothing (another container?): the heartbeat decides.
    _lease(engine, unstamped, owner=_dead_owner(stamped=False), heartbeat_at=now)
    _lease(engine, slow_me, heartbeat_at=now - timedelta(hours=1))  # alive, however late its beat
    _lease(engine, done, status="done", owner=None)
    ids = [fresh, gone, dead, far_fresh, far_silent, unstamped, slow_me, done]
    assert _stuck(engine, ids) == {gone, dead, far_silent}

    _lease(engine, unstamped, heartbeat_at=now - timedelta(minutes=1))
    assert _stuck(engine, ids) == {gone, dead, far_silent, unstamped}

    with session_scope(engine) as s:
        shown = lambda status: set(s.execute(select(t.Run.id).where(status_condition(s, status))).scalars())  # noqa: E731
        assert {gone, dead, far_silent, unstamped} <= shown("interrupted")
        assert not {fresh, far_fresh, slow_me, done} & shown("interrupted")
        assert far_fresh in shown("running") and dead not in shown("running")
        assert fresh in shown("queued") and gone not in shown("queued")
        assert shown("done") >= {done}


@pytest.mark.postgres
def test_a_queue_job_takes_its_run_though_the_creator_hands_it_over_mid_take(sample_url: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The process that queued a run hands it to its job (owner cleared) while a worker is taking
    it: the worker reads the lease again and runs it, instead of giving up and orphaning the run
    (once seen as a second job deferred for it by the next rescoring tick)."""
    from sqlalchemy import create_engine

    from debate.engine import runs as runs_module
    from debate.engine.runs import Executor

    if not sample_url.startswith("postgresql"):
        pytest.skip("SQLite serializes the take and the hand-over: they cannot interleave")
    engine = ensure_schema(sample_url)
    settings = load_settings(database_url=sample_url)
    run_id = _run(engine)
    _lease(engine, run_id, owner=me())  # as create_runs leaves it until the hand-over
    other = create_engine(sample_url)
    handed: list[bool] = []
    real_take = runs_module.take

    def take_after_a_hand_over(conn, *args: Any, **kw: Any) -> bool:  # type: ignore[no-untyped-def]
        # Between the worker's read of the lease and its compare-and-set, the creator commits
        # its hand-over on another connection (what the scheduler can do at any moment).
        if not handed:
            handed.append(True)
            with other.begin() as c:
                c.execute(update(t.Run).where(t.Run.id == run_id).values(owner=None))
        return real_take(conn, *args, **kw)

    async def go() -> str:
        async with Executor(engine, settings, backend="offline") as ex:
            return (await ex.execute(run_id, from_queue=True)).status

    monkeypatch.setattr(runs_module, "take", take_after_a_hand_over)
    try:
        status = asyncio.run(go())
    finally:
        other.dispose()
    assert handed and status == "done"


@pytest.mark.postgres
def test_a_run_its_queue_job_carries_is_live_whoever_created_it(pg_url: str) -> None:  # noqa: F811
    from debate.jobs.queue import ensure_queue_schema

    engine = ensure_schema(pg_url)
    with session_scope(engine) as s:
        if s.get(t.Hypothesis, SOD1) is None:
            import_file(engine, SAMPLE_HYPOTHESES)
    ensure_queue_schema(load_settings(database_url=pg_url))
    run_id = _run(engine)
    _lease(engine, run_id, owner=None)
    assert _stuck(engine, [run_id]) == {run_id}
    with engine.begin() as conn:
        job = conn.execute(
            text(
                "INSERT INTO procrastinate_jobs (queue_name, task_name, args) "
                "VALUES ('debates', 'debate_hypothesis', CAST(:args AS jsonb)) RETURNING id"
            ),
            {"args": json.dumps({"hypothesis_id": SOD1, "run_id": run_id, "backend": "offline"})},
        ).scalar_one()
    assert _stuck(engine, [run_id]) == set()  # todo
    for status, stuck in (("doing", set()), ("failed", {run_id})):
        with engine.begin() as conn:
            conn.execute(text(f"UPDATE procrastinate_jobs SET status = '{status}' WHERE id = :id"), {"id": job})
        assert _stuck(engine, [run_id]) == stuck


# ---------------------------------------------------------------- taking a run over


def test_of_concurrent_takers_exactly_one_wins(url: str) -> None:
    engine = ensure_schema(url)
    run_id = _run(engine)
    _lease(engine, run_id, status="running", owner=_dead_owner(), started_at=utcnow())
    takers = 8
    seen = threading.Barrier(takers)
    wins: list[bool] = []

    def taker() -> None:
        # Each reads the lease, judges the run interrupted, then tries to take it: all of them
        # have seen the same (owner, heartbeat) before any writes.
        with session_scope(engine) as s:
            [lease] = interrupted_runs(s, run_ids=[run_id])
        seen.wait()
        with write_tx(engine) as conn:
            wins.append(take(conn, run_id, lease.owner, lease.heartbeat_at, status="running"))

    threads = [threading.Thread(target=taker) for _ in range(takers)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert sorted(wins) == [False] * (takers - 1) + [True]
    with session_scope(engine) as s:
        assert s.get(t.Run, run_id).owner == me()  # type: ignore[union-attr]
    assert _stuck(engine, [run_id]) == set()


@pytest.mark.slow
def test_two_resumes_of_one_interrupted_run_at_once_debate_it_once(sample_url: str, cli_env: dict[str, str]) -> None:
    engine = ensure_schema(sample_url)
    with FakeOpenAIServer(latency_s=0.4) as server:
        env = _env(cli_env, sample_url, server)
        cmd = [sys.executable, "-m", "debate", "run", BACE1, "--backend", "openai", "-q"]
        # The PostgreSQL database is shared by the module's tests: only this hypothesis's run counts.
        with session_scope(engine) as s:
            assert s.execute(select(t.Run.id).where(t.Run.hypothesis_id == BACE1)).first() is None
        run_id = _kill_mid_debate(cmd, env, engine, len(_all_turns(engine)) + 2)[BACE1]
        saved = _turns(engine, run_id)
        asked = server.request_count
        assert _stuck(engine, [run_id]) == {run_id}

        resume = [sys.executable, "-m", "debate", "run", "--resume", run_id, "-q"]
        procs = [subprocess.Popen(resume, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
        results = [(p.wait(120), p.stderr.read().decode()) for p in procs]  # type: ignore[union-attr]

    codes = sorted(code for code, _err in results)
    refused = [err for code, err in results if code == 2]
    assert codes == [0, 2], results
    assert "is being run by process" in refused[0] or "taken over" in refused[0], refused
    # The winner asked only for the turns not saved at the kill; the loser asked nothing.
    assert server.request_count - asked == EXPECTED_TURNS - len(saved)
    turns = _turns(engine, run_id)
    assert len(turns) == len(set(turns)) == EXPECTED_TURNS
    with session_scope(engine) as s:
        run = s.get(t.Run, run_id)
        assert run is not None and run.status == "done" and run.score is not None


def _all_turns(engine: Engine) -> list[Any]:
    with session_scope(engine) as s:
        return list(s.execute(select(t.Turn.id)).all())


# ---------------------------------------------------------------- a killed `debate run`


@pytest.mark.slow
def test_a_killed_debate_run_leaves_interrupted_runs_that_resume_and_block_nothing(
    sample_engine: Engine, db_url: str, cli_env: dict[str, str]
) -> None:
    from debate.server.web.runner import RunConflict, RunRequest, queue_debates
    from debate.wiki.scores import score_rows

    settings = load_settings(database_url=db_url)

    class Recorder:
        def submit(self, run_ids: Any, backend: str) -> None:
            pass

    def post(hyp: str) -> Any:
        request = RunRequest(hypothesis_ids=[hyp])
        return queue_debates(sample_engine, settings, Recorder(), request, by="t", backends=("offline",))

    def statuses() -> dict[str, str]:
        with session_scope(sample_engine) as s:
            return {r.id: r.status for r in score_rows(s, ids=[SOD1, BACE1])}

    def while_live() -> None:
        # The process is alive: its runs are live, in progress, and refuse a second one (409).
        with session_scope(sample_engine) as s:
            ids = list(s.execute(select(t.Run.id)).scalars())
        assert len(ids) == 2 and _stuck(sample_engine, ids) == set()
        assert statuses() == {SOD1: "running", BACE1: "queued"}
        for hyp in (SOD1, BACE1):
            with pytest.raises(RunConflict):
                post(hyp)

    with FakeOpenAIServer(latency_s=0.4) as server:
        env = _env(cli_env, db_url, server)
        cmd = [sys.executable, "-m", "debate", "run", SOD1, BACE1, "--backend", "openai", "-q"]
        runs = _kill_mid_debate(cmd, env, sample_engine, 3, during=while_live)
        running, queued = runs[SOD1], runs[BACE1]  # run one after the other (concurrency 1)
        saved = _turns(sample_engine, running)
        asked = server.request_count
        assert 0 < len(saved) < EXPECTED_TURNS and _turns(sample_engine, queued) == []

        # Interrupted: listed as such (and not as running or queued), and not in progress.
        listed = json.loads(run_cli("runs", "list", "--status", "interrupted", "--json", env=env).stdout)
        assert {r["id"] for r in listed} == {running, queued} and {r["status"] for r in listed} == {"interrupted"}
        for status in ("running", "queued"):
            assert json.loads(run_cli("runs", "list", "--status", status, "--json", env=env).stdout) == []
        assert set(statuses().values()) <= {"prior", "unscored", "scored"}

        # A new debate of either hypothesis is not refused.
        fresh = [post(h).runs[0].run_id for h in (SOD1, BACE1)]

        # Each resumes to done; the one killed mid-debate asks only for what was not saved.
        run_cli("run", "--resume", running, "-q", env=env)
        assert server.request_count - asked == EXPECTED_TURNS - len(saved)
        run_cli("run", "--resume", queued, "-q", env=env)
        assert server.request_count - asked == 2 * EXPECTED_TURNS - len(saved)

    with session_scope(sample_engine) as s:
        for run_id in (running, queued):
            run = s.get(t.Run, run_id)
            assert run is not None and run.status == "done" and run.score is not None
            turns = _turns(sample_engine, run_id)
            assert len(turns) == len(set(turns)) == EXPECTED_TURNS
        assert {s.get(t.Run, r).status for r in fresh} == {"queued"}  # type: ignore[union-attr]
    # Each attempt says which model the server said answered (the fake echoes the one asked).
    transcript = json.loads(run_cli("transcript", running, "--format", "json", env=env).stdout)
    turns = [r[k] for r in transcript["rounds"] for k in ("proposer", "critic") if r[k]] + transcript["judges"]
    attempts = [a for turn in turns for a in turn["attempts"]]
    assert attempts and all(a["served_model"] == a["model"] for a in attempts)


# ---------------------------------------------------------------- who else picks them up


def test_rescore_adopts_an_interrupted_run_and_resumes_it(sample_engine: Engine, db_url: str, cli_env) -> None:  # type: ignore[no-untyped-def]
    run_id = _run(sample_engine, SOD1)
    _lease(sample_engine, run_id, status="running", owner=_dead_owner(), started_at=utcnow())
    # --changed alone selects nothing here (nothing was ever scored): only the interrupted run.
    summary = json.loads(run_cli("rescore", "--changed", "--json", env=cli_env).stdout)
    assert (summary["total"], summary["done"], summary["resumed"]) == (1, 1, 1)
    with session_scope(sample_engine) as s:
        runs = s.execute(select(t.Run).where(t.Run.hypothesis_id == SOD1)).scalars().all()
        item = s.execute(select(t.BatchItem).where(t.BatchItem.batch_id == summary["batch_id"])).scalar_one()
    assert [r.id for r in runs] == [run_id] and runs[0].status == "done" and runs[0].batch_id == summary["batch_id"]
    assert item.run_id == run_id and item.reasons["interrupted"] == run_id


@pytest.mark.postgres
@pytest.mark.slow
def test_a_queue_worker_resumes_an_interrupted_run(pg_url: str, cli_env: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    from debate.jobs.queue import ensure_queue_schema

    engine = ensure_schema(pg_url)
    with session_scope(engine) as s:
        if s.get(t.Hypothesis, SOD1) is None:
            import_file(engine, SAMPLE_HYPOTHESES)
        if s.execute(select(t.Page.id).limit(1)).first() is None:
            ingest_paths(engine, [SAMPLE_KB])
    ensure_queue_schema(load_settings(database_url=pg_url))
    run_id = _run(engine, H4)
    _lease(engine, run_id, status="running", owner="elsewhere:41:7:b", heartbeat_at=utcnow() - timedelta(hours=1))
    env = {
        **cli_env,
        "DEBATE_DATABASE_URL": pg_url,
        "DEBATE_QUEUE__STALLED_CHECK": "* * * * * */1",  # the recovery task every second
        "DEBATE_QUEUE__SCHEDULE": "",
    }
    worker = worker_process(env, "resumer", tmp_path / "worker.log", concurrency=2)
    try:
        deadline = time.monotonic() + 90
        while _status(engine, run_id) != "done":
            assert worker.poll() is None and time.monotonic() < deadline, (tmp_path / "worker.log").read_text()[-800:]
            time.sleep(0.2)
    finally:
        stop_processes([worker])
    with engine.connect() as conn:
        jobs = conn.execute(
            text("SELECT status::text FROM procrastinate_jobs WHERE args->>'run_id' = :r"), {"r": run_id}
        ).scalars()
        assert list(jobs) == ["succeeded"]


def _status(engine: Engine, run_id: str) -> str:
    with session_scope(engine) as s:
        return s.execute(select(t.Run.status).where(t.Run.id == run_id)).scalar_one()


# ---------------------------------------------------------------- the owner's side


def test_an_executing_process_heartbeats_and_stops_a_run_taken_over(sample_url: str) -> None:
    from debate.engine.runs import Executor

    engine = ensure_schema(sample_url)
    with FakeOpenAIServer(latency_s=0.3) as server:
        settings = load_settings(
            database_url=sample_url,
            backend="openai",
            openai={"base_url": server.base_url, "api_key": "k"},
            debate={"heartbeat_s": 0.1},
        )
        [run_id] = create_runs(engine, settings, [H3], backend="openai")
        beats: list[datetime] = []

        async def go() -> Any:
            async with Executor(engine, settings, backend="openai") as ex:
                task = asyncio.create_task(ex.execute(run_id))
                while len(_turns(engine, run_id)) < 1:
                    await asyncio.sleep(0.05)
                for _ in range(3):  # a live run's heartbeat moves on while it executes
                    await asyncio.sleep(0.25)
                    with session_scope(engine) as s:
                        beats.append(s.get(t.Run, run_id).heartbeat_at)  # type: ignore[union-attr, arg-type]
                # Another process (it judged us dead) takes the run over.
                _lease(engine, run_id, owner="elsewhere:41:7:b", heartbeat_at=utcnow())
                outcome = await asyncio.wait_for(task, 5)
                asked = server.request_count
                await asyncio.sleep(1)
                return outcome, server.request_count - asked

        outcome, asked_after = asyncio.run(go())
    assert beats == sorted(set(beats)) and len(beats) == 3
    assert outcome.status == "running" and "taken over by elsewhere:41:7:b" in (outcome.error or "")
    assert asked_after == 0 and len(_turns(engine, run_id)) < EXPECTED_TURNS
    with session_scope(engine) as s:
        assert s.get(t.Run, run_id).owner == "elsewhere:41:7:b"  # type: ignore[union-attr]


def test_the_owner_string_names_this_machine() -> None:
    host, pid, start, machine = me().split(":")
    assert (host, pid) == (socket.gethostname(), str(os.getpid())) and start.isdigit() and machine
