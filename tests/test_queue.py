"""The PostgreSQL task queue: one job per hypothesis however many clients enqueue it, and
worker processes that share a batch and finish the jobs of a worker killed mid-batch."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from conftest import ONE_MODE, SAMPLE_HYPOTHESES, SAMPLE_KB, run_cli
from pg import pg_url  # noqa: F401  (fixture)
from sqlalchemy import text

from debate.core.config import load_settings
from debate.llm.fake import FakeOpenAIServer, stop_processes, worker_process
from debate.store.db import ensure_schema, session_scope

pytestmark = pytest.mark.postgres
EXPECTED_TURNS = 7  # 2 rounds x (proposer, critic) + 3 judges; schema replies never concede
N_EXTRA = 185  # with the 15 samples: a batch of 200


@pytest.fixture(scope="module")
def queue_db(pg_url):  # type: ignore[no-untyped-def]  # noqa: F811
    """The sample KB, the sample hypotheses and N_EXTRA copies of them, and the queue tables."""
    from debate.jobs.queue import ensure_queue_schema
    from debate.kb import hypotheses as hyps
    from debate.kb.ingest import ingest_paths

    engine = ensure_schema(pg_url)
    hyps.import_file(engine, SAMPLE_HYPOTHESES)
    ingest_paths(engine, [SAMPLE_KB])
    samples = hyps.read_hypotheses_file(SAMPLE_HYPOTHESES)
    with session_scope(engine) as s:
        for i in range(N_EXTRA):
            base = samples[i % len(samples)]
            hyps.add(s, base.model_copy(update={"id": f"h-{0xA0000000 + i:08x}", "title": f"{base.title} #{i}"}))
    assert ensure_queue_schema(load_settings(database_url=pg_url))
    return pg_url


def _jobs(engine, where: str = "TRUE", **params):  # type: ignore[no-untyped-def]
    """Debate jobs (not the periodic tasks' jobs) matching ``where``."""
    with engine.connect() as conn:
        return (
            conn.execute(
                text(f"SELECT * FROM procrastinate_jobs WHERE task_name = 'debate_hypothesis' AND {where} ORDER BY id"),
                params,
            )
            .mappings()
            .all()
        )


def test_sqlite_says_a_queue_needs_postgres(cli_env):  # type: ignore[no-untyped-def]
    proc = run_cli("queue", "status", env=cli_env, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: a queue needs PostgreSQL (DEBATE_DATABASE_URL=postgresql+psycopg://...)"
    )


def test_fifty_concurrent_enqueues_of_one_hypothesis_make_one_job(queue_db):  # type: ignore[no-untyped-def]
    from debate.jobs.queue import build_app, enqueue

    settings = load_settings(database_url=queue_db)
    engine = ensure_schema(queue_db)
    hid = "h-9878fd9b"
    start = threading.Barrier(50)
    results: list[int] = []

    def client() -> None:
        async def go() -> int:
            qa = build_app(settings)
            async with qa.open_async():
                start.wait()
                r = await enqueue(qa, engine, settings, [hid], backend="offline")
                return len(r.queued)

        results.append(asyncio.run(go()))

    threads = [threading.Thread(target=client) for _ in range(50)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert len(results) == 50 and sum(results) == 1
    jobs = _jobs(engine, "queueing_lock = :k", k=f"hyp:{hid}")
    assert len(jobs) == 1 and jobs[0]["status"] == "todo"
    with engine.connect() as conn:
        # The 49 refused enqueues left no run behind.
        runs = conn.execute(text("SELECT id FROM runs WHERE hypothesis_id = :h"), {"h": hid}).scalars().all()
        assert runs == [jobs[0]["args"]["run_id"]]
        conn.execute(text("DELETE FROM procrastinate_jobs"))
        conn.execute(text("DELETE FROM runs"))
        conn.commit()


def test_rescore_enqueue_puts_a_batch_on_the_queue_and_status_counts_it(queue_db, cli_env, tmp_path):  # type: ignore[no-untyped-def]
    import json

    env = {**cli_env, "DEBATE_DATABASE_URL": queue_db}
    ids = tmp_path / "ids.txt"
    ids.write_text("h-9878fd9b\nh-1c05c34d\nh-42374479\n")
    out = json.loads(run_cli("rescore", "--ids", str(ids), "--enqueue", "--json", env=env).stdout)
    assert len(out["queued"]) == 3 and out["skipped"] == [] and out["batch_id"]
    status = json.loads(run_cli("queue", "status", "--json", env=env).stdout)
    assert (status["queued"], status["running"], status["failed"], status["stalled"]) == (3, 0, 0, 0)
    engine = ensure_schema(queue_db)
    with engine.connect() as conn:
        for stmt in (
            "DELETE FROM procrastinate_jobs",
            "DELETE FROM batch_items",
            "DELETE FROM batches",
            "DELETE FROM runs",
        ):
            conn.execute(text(stmt))
        conn.commit()


def _worker(env: dict[str, str], name: str, logs: Path) -> subprocess.Popen:  # type: ignore[type-arg]
    log = logs / f"{name}.err"
    proc = worker_process(env, name, log, concurrency=8)
    proc.log = log  # type: ignore[attr-defined]
    return proc


def _wait(what: str, cond, timeout: float, detail=None) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}{': ' + detail() if detail else ''}")
        time.sleep(0.1)


def _counts(engine) -> str:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return str(conn.execute(text("SELECT status, task_name, count(*) FROM procrastinate_jobs GROUP BY 1, 2")).all())


def _tail(proc) -> str:  # type: ignore[no-untyped-def]
    stop_processes([proc])
    return proc.log.read_text(errors="replace")[-3000:]


@pytest.mark.slow
def test_two_workers_finish_a_batch_despite_one_killed_mid_batch(queue_db, cli_env, tmp_path):  # type: ignore[no-untyped-def]
    from debate.jobs.batches import open_or_create_batch
    from debate.jobs.queue import build_app, enqueue_batch
    from debate.jobs.selection import normalize_options

    engine = ensure_schema(queue_db)
    with FakeOpenAIServer(latency_s=0.25) as server:
        env = {
            **cli_env,
            "DEBATE_DATABASE_URL": queue_db,
            "DEBATE_BACKEND": "openai",
            "DEBATE_OPENAI__BASE_URL": server.base_url,
            "DEBATE_OPENAI__API_KEY": "k",
            **ONE_MODE,
            "DEBATE_QUEUE__HEARTBEAT_S": "0.5",
            "DEBATE_QUEUE__STALLED_AFTER_S": "2",
            "DEBATE_QUEUE__STALLED_CHECK": "* * * * * */1",
            "DEBATE_QUEUE__SCHEDULE": "",
        }
        settings = load_settings(database_url=queue_db, backend="openai", openai={"base_url": server.base_url})
        opts = normalize_options(
            backend="openai",
            stale_after="1d",
        )
        batch, created = open_or_create_batch(engine, settings, opts)
        assert created and batch is not None and batch.total == N_EXTRA + 15

        async def put() -> int:
            qa = build_app(settings)
            async with qa.open_async():
                return len((await enqueue_batch(qa, engine, settings, batch.id)).queued)

        assert asyncio.run(put()) == batch.total
        victim = _worker(env, "victim", tmp_path)
        survivor = None
        try:
            # The victim alone takes the first jobs, so the jobs it holds when killed are known.
            _wait("the first worker's jobs", lambda: len(_jobs(engine, "status = 'doing'")) >= 8, 60)
            victim_id = _jobs(engine, "status = 'doing'")[0]["worker_id"]
            survivor = _worker(env, "survivor", tmp_path)
            _wait("some finished debates", lambda: len(_jobs(engine, "status = 'succeeded'")) >= 10, 60)
            held = {j["id"] for j in _jobs(engine, "status = 'doing' AND worker_id = :w", w=victim_id)}
            assert held, "the victim held no job when killed"
            os.kill(victim.pid, signal.SIGKILL)
            victim.wait(10)
            _wait(
                "the whole batch",
                lambda: len(_jobs(engine, "status = 'succeeded'")) == batch.total,
                240,
                lambda: f"{_counts(engine)}; survivor: {_tail(survivor)}",
            )
        finally:
            stop_processes(p for p in (victim, survivor) if p is not None)
    jobs = {j["id"]: j for j in _jobs(engine)}
    assert all(jobs[j]["status"] == "succeeded" and jobs[j]["worker_id"] != victim_id for j in held)
    assert not _jobs(engine, "status <> 'succeeded'")
    with engine.connect() as conn:
        per_hyp = conn.execute(
            text(
                "SELECT hypothesis_id, count(*) AS runs, bool_and(status = 'done') AS done FROM runs "
                "WHERE batch_id = :b GROUP BY hypothesis_id"
            ),
            {"b": batch.id},
        ).all()
        assert len(per_hyp) == batch.total and all(r.runs == 1 and r.done for r in per_hyp)
        turns = conn.execute(
            text(
                "SELECT r.id, count(t.id) FROM runs r LEFT JOIN turns t ON t.run_id = r.id "
                "WHERE r.batch_id = :b GROUP BY r.id"
            ),
            {"b": batch.id},
        ).all()
        assert {n for _, n in turns} == {EXPECTED_TURNS}
        status = conn.execute(text("SELECT status, done FROM batches WHERE id = :b"), {"b": batch.id}).one()
        assert status.status == "done" and status.done == batch.total


def test_api_on_postgres_puts_posted_runs_on_the_queue(queue_db):  # type: ignore[no-untyped-def]
    import json

    from fastapi.testclient import TestClient

    from debate.server.api import create_app

    alice = {"Authorization": "Bearer tok-alice-0123456789"}
    settings = load_settings(database_url=queue_db, reviewer_tokens=json.dumps({"alice": "tok-alice-0123456789"}))
    engine = ensure_schema(queue_db)
    sod1, bace1 = "h-9878fd9b", "h-1c05c34d"
    with TestClient(create_app(settings, backends=("offline",))) as c:
        r = c.post("/api/runs", json={"hypothesis_ids": [sod1]}, headers=alice)
        assert r.status_code == 202, r.text
        [run] = r.json()["runs"]
        [job] = _jobs(engine, "status = 'todo'")
        assert job["status"] == "todo" and job["args"] == {
            "hypothesis_id": sod1,
            "run_id": run["run_id"],
            "backend": "offline",
            "batch_id": None,
        }
        again = c.post("/api/runs", json={"hypothesis_ids": [sod1]}, headers=alice)
        assert again.status_code == 409 and sod1 in again.json()["message"]

        # Past the run check (as when another process queued it meanwhile), the queue's lock
        # refuses the hypothesis, and the request's other job and both new runs are withdrawn.
        with engine.begin() as conn:
            conn.execute(text("UPDATE runs SET status = 'cancelled' WHERE id = :r"), {"r": run["run_id"]})
        raced = c.post("/api/runs", json={"hypothesis_ids": [bace1, sod1]}, headers=alice)
        assert raced.status_code == 409 and "task queue" in raced.json()["message"]
    assert [j["id"] for j in _jobs(engine, "status = 'todo'")] == [job["id"]]
    with engine.begin() as conn:
        runs = conn.execute(text("SELECT id, trigger FROM runs WHERE trigger LIKE 'api:%'")).all()
        assert [tuple(x) for x in runs] == [(run["run_id"], "api:alice")]
        conn.execute(text("DELETE FROM procrastinate_jobs WHERE status = 'todo'"))
        conn.execute(text("DELETE FROM runs WHERE trigger LIKE 'api:%'"))


TICK_S = 3


@pytest.mark.slow
def test_periodic_rescoring_is_deferred_once_per_tick_across_three_workers(pg_url, cli_env, tmp_path):  # type: ignore[no-untyped-def]  # noqa: F811
    """Every worker runs procrastinate's periodic deferrer; each tick still makes one job."""
    from pg import ENV, drop_database, fresh_database

    from debate.jobs.queue import ensure_queue_schema
    from debate.kb import hypotheses as hyps
    from debate.kb.ingest import ingest_paths

    url = fresh_database(os.environ[ENV], "tick")
    try:
        engine = ensure_schema(url)
        hyps.import_file(engine, SAMPLE_HYPOTHESES)
        ingest_paths(engine, [SAMPLE_KB])
        ensure_queue_schema(load_settings(database_url=url))
        with engine.connect() as conn:
            n_hyps = conn.execute(text("SELECT count(*) FROM hypotheses")).scalar_one()
        env = {
            **cli_env,
            "DEBATE_DATABASE_URL": url,
            "DEBATE_BACKEND": "offline",
            "DEBATE_QUEUE__SCHEDULE": f"* * * * * */{TICK_S}",
            "DEBATE_QUEUE__HEARTBEAT_S": "0.5",
        }
        workers = [_worker(env, f"w{i}", tmp_path) for i in range(3)]
        try:
            _wait(
                "three workers", lambda: _alive_workers(engine) == 3, 60, lambda: " | ".join(_tail(w) for w in workers)
            )
            time.sleep(4 * TICK_S)
            assert _alive_workers(engine) == 3
        finally:
            stop_processes(workers)
        with engine.connect() as conn:
            ticks = (
                conn.execute(
                    text(
                        "SELECT id, (args->>'timestamp')::bigint AS ts, status::text AS status "
                        "FROM procrastinate_jobs WHERE task_name = 'rescore_tick' ORDER BY id"
                    )
                )
                .mappings()
                .all()
            )
            runs = conn.execute(text("SELECT hypothesis_id, batch_id, status FROM runs")).mappings().all()
            batches = conn.execute(text("SELECT id, total, status FROM batches")).mappings().all()
        stamps = [tk["ts"] for tk in ticks]
        # One job per tick, none skipped: consecutive schedule timestamps, each once.
        assert len(ticks) >= 3 and stamps == list(range(stamps[0], stamps[0] + TICK_S * len(stamps), TICK_S)), stamps
        assert {tk["status"] for tk in ticks[:-1]} == {"succeeded"}  # the last may have been cut short
        # The first tick queued every stale hypothesis as one batch; later ticks found them scored.
        debates = _jobs(engine)
        with engine.connect() as conn:
            first_done = conn.execute(
                text("SELECT at FROM procrastinate_events WHERE job_id = :j AND type = 'succeeded'"),
                {"j": ticks[0]["id"]},
            ).scalar_one()
            last_deferred = conn.execute(
                text(
                    "SELECT max(e.at) FROM procrastinate_events e JOIN procrastinate_jobs j ON j.id = e.job_id "
                    "WHERE j.task_name = 'debate_hypothesis' AND e.type = 'deferred'"
                )
            ).scalar_one()
        assert last_deferred < first_done
        assert sorted(j["args"]["hypothesis_id"] for j in debates) == sorted(r["hypothesis_id"] for r in runs)
        assert len(runs) == n_hyps and len({r["hypothesis_id"] for r in runs}) == n_hyps
        assert {(j["status"], j["attempts"]) for j in debates} == {("succeeded", 1)}  # each at the first try
        assert [(b["total"], b["status"]) for b in batches] == [(n_hyps, "done")]
        assert {r["batch_id"] for r in runs} == {batches[0]["id"]} and {r["status"] for r in runs} == {"done"}
    finally:
        drop_database(os.environ[ENV], url)


def _alive_workers(engine) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT count(*) FROM procrastinate_workers WHERE last_heartbeat > now() - interval '5 seconds'")
            ).scalar_one()
        )
