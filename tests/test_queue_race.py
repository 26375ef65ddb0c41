"""A batch put on the queue by two clients at the same moment still gets one run and one job
per item, and one debate per item once two workers have drained the queue."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import SAMPLE_HYPOTHESES, SAMPLE_KB
from pg import pg_url  # noqa: F401  (fixture)
from sqlalchemy import text

from debate.core.config import load_settings
from debate.llm.fake import stop_processes, worker_process
from debate.store import tables as t
from debate.store.db import ensure_schema, session_scope

pytestmark = pytest.mark.postgres

N_BATCHES = 20
ITEMS_PER_BATCH = 5
CLIENTS = 2


def _client(url: str, batch_ids: list[str], barrier: Any, out: Any) -> None:
    """One enqueuing process: for each batch, wait for the other client, then enqueue it."""
    from debate.jobs.queue import build_app, enqueue_batch

    settings = load_settings(database_url=url)
    engine = ensure_schema(url)

    async def go() -> list[tuple[str, int, int]]:
        results = []
        app = build_app(settings)
        async with app.open_async():
            for batch_id in batch_ids:
                await asyncio.to_thread(barrier.wait, 30)
                r = await enqueue_batch(app, engine, settings, batch_id)
                results.append((batch_id, len(r.queued), len(r.skipped)))
        return results

    out.put(asyncio.run(go()))


@pytest.fixture(scope="module")
def race_db(pg_url):  # type: ignore[no-untyped-def]  # noqa: F811
    """The sample KB and N_BATCHES pending batches of ITEMS_PER_BATCH distinct hypotheses each."""
    from debate.jobs.queue import ensure_queue_schema
    from debate.kb import hypotheses as hyps
    from debate.kb.ingest import ingest_paths

    engine = ensure_schema(pg_url)
    ingest_paths(engine, [SAMPLE_KB])
    samples = hyps.read_hypotheses_file(SAMPLE_HYPOTHESES)
    ids = [f"h-{0xB0000000 + i:08x}" for i in range(N_BATCHES * ITEMS_PER_BATCH)]
    now = t.utcnow()
    with session_scope(engine) as s:
        for i, hid in enumerate(ids):
            base = samples[i % len(samples)]
            hyps.add(s, base.model_copy(update={"id": hid, "title": f"{base.title} #{i}"}))
    for b in range(N_BATCHES):
        items = ids[b * ITEMS_PER_BATCH : (b + 1) * ITEMS_PER_BATCH]
        with session_scope(engine) as s:
            s.add(
                t.Batch(
                    id=f"b-race-{b:02d}",
                    options={},
                    options_key=f"race-{b}",
                    backend="offline",
                    hypothesis_ids=items,
                    settings={},
                    status="pending",
                    total=len(items),
                    created_at=now,
                    updated_at=now,
                )
            )
            s.flush()
            for ordinal, hid in enumerate(items):
                s.add(
                    t.BatchItem(
                        batch_id=f"b-race-{b:02d}", hypothesis_id=hid, ordinal=ordinal, reasons={}, updated_at=now
                    )
                )
    assert ensure_queue_schema(load_settings(database_url=pg_url))
    return pg_url


def _rows(engine, sql: str, **params):  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return conn.execute(text(sql), params).all()


def test_two_processes_enqueueing_each_batch_at_once_make_one_run_and_one_job_per_item(
    race_db, cli_env, tmp_path: Path
) -> None:
    batch_ids = [f"b-race-{b:02d}" for b in range(N_BATCHES)]
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(CLIENTS), ctx.Queue()
    procs = [ctx.Process(target=_client, args=(race_db, batch_ids, barrier, out)) for _ in range(CLIENTS)]
    for p in procs:
        p.start()
    try:
        results = [out.get(timeout=90) for _ in procs]
    finally:
        for p in procs:
            p.join(10)
            if p.is_alive():
                p.kill()
    assert all(p.exitcode == 0 for p in procs)

    # Per batch, the two clients queued the items between them exactly once. The other client
    # either saw the items pending and reports them skipped, or (arriving after every item was
    # claimed) found nothing left to enqueue.
    by_batch: dict[str, list[tuple[int, int]]] = {}
    for per_client in results:
        for batch_id, queued, skipped in per_client:
            by_batch.setdefault(batch_id, []).append((queued, skipped))
    assert sorted(by_batch) == batch_ids
    for batch_id, pair in by_batch.items():
        assert len(pair) == CLIENTS, batch_id
        assert sum(q for q, _ in pair) == ITEMS_PER_BATCH, (batch_id, pair)
        assert all(q + s in (0, ITEMS_PER_BATCH) for q, s in pair), (batch_id, pair)

    engine = ensure_schema(race_db)
    total = N_BATCHES * ITEMS_PER_BATCH
    runs = _rows(engine, "SELECT batch_id, hypothesis_id, count(*) FROM runs GROUP BY 1, 2")
    assert len(runs) == total and {n for *_, n in runs} == {1}
    jobs = _rows(
        engine,
        "SELECT args->>'batch_id', args->>'hypothesis_id', args->>'run_id' "
        "FROM procrastinate_jobs WHERE task_name = 'debate_hypothesis'",
    )
    assert len(jobs) == total
    items = _rows(engine, "SELECT batch_id, hypothesis_id, run_id FROM batch_items")
    # Each item's run is the run its one job debates.
    assert sorted(tuple(j) for j in jobs) == sorted(tuple(i) for i in items)

    # Two workers drain the queue: one finished debate per item, every batch done.
    env = {
        **cli_env,
        "DEBATE_DATABASE_URL": race_db,
        "DEBATE_BACKEND": "offline",
        "DEBATE_QUEUE__SCHEDULE": "",
        "DEBATE_QUEUE__HEARTBEAT_S": "0.5",
    }
    workers = [worker_process(env, f"drain{i}", tmp_path / f"drain{i}.err", concurrency=8) for i in range(2)]
    try:
        deadline = time.monotonic() + 90
        while _rows(
            engine,
            "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'debate_hypothesis' AND status <> 'succeeded'",
        )[0][0]:
            assert time.monotonic() < deadline, (tmp_path / "drain0.err").read_text(errors="replace")[-2000:]
            assert all(w.poll() is None for w in workers), "a worker exited"
            time.sleep(0.2)
    finally:
        stop_processes(workers)
    done = _rows(
        engine,
        "SELECT r.batch_id, r.hypothesis_id, r.status, count(tu.id) FROM runs r "
        "LEFT JOIN turns tu ON tu.run_id = r.id GROUP BY r.id",
    )
    assert len(done) == total
    assert {status for _, _, status, _ in done} == {"done"} and min(n for *_, n in done) > 0
    batches = _rows(engine, "SELECT status, done FROM batches")
    assert batches and all(tuple(b) == ("done", ITEMS_PER_BATCH) for b in batches)
