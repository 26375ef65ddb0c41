"""Rate limits hold across every process of an endpoint, counted in PostgreSQL.

Two windows on one endpoint key (as two processes hold) admit at most N requests in any sliding
window together, and still use the whole budget; two `debate worker` processes against one fake
endpoint with RPM = N send it at most N requests in any sliding window, where each alone would
send N. Windows are shrunk to two seconds so the tests are quick.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ONE_MODE, SAMPLE_HYPOTHESES, SAMPLE_KB, max_in_window
from pg import pg_url  # noqa: F401  (fixture)
from sqlalchemy import text

from debate.core.config import load_settings
from debate.llm.fake import fake_server_process, stop_processes, worker_process
from debate.llm.ratelimit import RateLimiter
from debate.llm.shared_window import DatabaseWindow, window_delay
from debate.store.db import ensure_schema

pytestmark = pytest.mark.postgres
WINDOW_S = 2.0
# A local start is stamped a moment after the database admitted it, and the fake server stamps
# a request when it has parsed its head: both lag the admission by a few ms (tens when loaded).
EDGE_S = 0.1


def full_window_counts(times: list[float], window: float) -> list[int]:
    """Requests in each whole window [first + k w, first + (k + 1) w) before the last time."""
    times = sorted(times)
    counts = []
    k = 0
    while times[0] + (k + 1) * window <= times[-1]:
        lo = times[0] + k * window
        counts.append(sum(1 for x in times if lo <= x < lo + window))
        k += 1
    return counts


@pytest.fixture(scope="module")
def db(pg_url: str) -> str:  # noqa: F811
    """The migrated database, with the sample KB and hypotheses."""
    from debate.kb import hypotheses as hyps
    from debate.kb.ingest import ingest_paths

    engine = ensure_schema(pg_url)
    hyps.import_file(engine, SAMPLE_HYPOTHESES)
    ingest_paths(engine, [SAMPLE_KB])
    return pg_url


def test_token_window_waits_for_enough_tokens_to_leave() -> None:
    entries = [(10.0, 300), (10.5, 300), (11.0, 300)]
    fits = dict(window_s=2.0, rpm=None, tpm=1000)
    assert window_delay(entries, 11.5, tokens=100, **fits) == 0.0
    # 1000 - 900 leaves room for 100; 400 more need the first two entries (600 tokens) gone.
    assert window_delay(entries, 11.5, tokens=500, **fits) == pytest.approx(1.0)
    # Bigger than the whole budget: it waits for an empty window, then runs alone.
    assert window_delay(entries, 11.5, tokens=5000, **fits) == pytest.approx(1.5)
    assert window_delay([], 11.5, tokens=5000, **fits) == 0.0
    assert window_delay(entries, 11.5, tokens=0, window_s=2.0, rpm=3, tpm=None) == pytest.approx(0.5)


def test_the_shared_window_is_used_on_postgres_with_a_rate_limit_unless_turned_off(db: str) -> None:
    from debate.engine.backends import shared_window

    def factory(url: str, **openai: object):  # type: ignore[no-untyped-def]
        return shared_window(load_settings(database_url=url, openai=openai), "http://endpoint.test/v1")

    build = factory(db, rpm=5, rate_window_s=3.0)
    assert build is not None
    window = build()
    assert isinstance(window, DatabaseWindow) and (window.rpm, window.tpm, window.window_s) == (5, None, 3.0)
    assert factory(db, tpm=1000) is not None
    assert factory(db) is None  # nothing to share
    assert factory(db, rpm=5, shared_limits="off") is None
    assert factory("sqlite:///unused.db", rpm=5) is None


def test_two_processes_windows_admit_at_most_n_together_and_use_the_budget(db: str) -> None:
    n = 8
    key = "http://endpoint.test/v1"
    windows = [DatabaseWindow(db, key, rpm=n, tpm=None, window_s=WINDOW_S, prune_every=0) for _ in range(2)]
    starts: list[list[float]] = [[], []]
    limiters = [
        RateLimiter(None, n, None, window_s=WINDOW_S, shared=w, on_start=s.append)
        for w, s in zip(windows, starts, strict=True)
    ]

    async def demand(limiter: RateLimiter, until: float) -> None:
        while time.monotonic() < until:
            async with limiter.slot(50):
                await asyncio.sleep(0.01)

    async def main() -> None:
        # Six callers per process want far more than n per window.
        until = time.monotonic() + 3.5 * WINDOW_S
        await asyncio.gather(*(demand(lim, until) for lim in limiters for _ in range(6)))

    try:
        asyncio.run(main())
    finally:
        for w in windows:
            w.close()
    together = sorted(starts[0] + starts[1])
    assert all(starts), "each process must have been admitted"
    assert max_in_window(together, WINDOW_S - EDGE_S) <= n
    counts = full_window_counts(together, WINDOW_S)
    assert len(counts) >= 3 and all(c >= 0.9 * n for c in counts), counts
    assert all(lim.stats().waits > 0 for lim in limiters)
    # The rows the processes counted: one per request, n at most in any window of the server clock.
    engine = ensure_schema(db)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT extract(epoch FROM t)::float8 AS start, tokens FROM rate_window WHERE endpoint = :k"),
            {"k": key},
        ).all()
    assert len(rows) == len(together)
    assert {r.tokens for r in rows} == {50}
    assert max_in_window([r.start for r in rows], WINDOW_S) <= n


@pytest.fixture
def server_process(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """(base URL, request log) of a fake endpoint in its own process."""
    log = tmp_path / "requests.jsonl"
    with fake_server_process(0.05, log=log) as base_url:
        yield base_url, log


@pytest.mark.slow
def test_two_workers_send_at_most_rpm_requests_together(
    db: str,
    cli_env: dict[str, str],
    server_process,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    from debate.jobs.batches import open_or_create_batch
    from debate.jobs.queue import build_app, enqueue_batch, ensure_queue_schema
    from debate.jobs.selection import normalize_options

    n = 10
    base_url, log = server_process
    settings = load_settings(
        database_url=db, backend="openai", openai={"base_url": base_url}, debate={"rounds": 1, "judges": 2}
    )
    ensure_queue_schema(settings)
    engine = ensure_schema(db)
    opts = normalize_options(
        backend="openai",
        stale_after="0s",
    )
    batch, created = open_or_create_batch(engine, settings, opts)
    assert created and batch is not None

    async def put() -> int:
        qa = build_app(settings)
        async with qa.open_async():
            return len((await enqueue_batch(qa, engine, settings, batch.id)).queued)

    assert asyncio.run(put()) == batch.total
    env = {
        **cli_env,
        "DEBATE_DATABASE_URL": db,
        "DEBATE_BACKEND": "openai",
        "DEBATE_OPENAI__BASE_URL": base_url,
        "DEBATE_OPENAI__API_KEY": "k",
        **ONE_MODE,
        "DEBATE_OPENAI__RPM": str(n),
        "DEBATE_OPENAI__RATE_WINDOW_S": str(WINDOW_S),
        "DEBATE_QUEUE__SCHEDULE": "",
    }
    names = ("left", "right")
    workers = [worker_process(env, name, tmp_path / f"{name}.err", concurrency=4) for name in names]

    def jobs() -> list:  # type: ignore[type-arg]
        with engine.connect() as conn:
            return conn.execute(
                text("SELECT status, worker_id FROM procrastinate_jobs WHERE task_name = 'debate_hypothesis'")
            ).all()

    busy: set[int] = set()  # workers seen holding a job (finished jobs lose their worker id on exit)
    try:
        deadline = time.monotonic() + 50
        while sum(j.status in ("succeeded", "failed") for j in jobs()) < batch.total:
            busy |= {j.worker_id for j in jobs() if j.status == "doing" and j.worker_id is not None}
            failed = [
                (tmp_path / f"{name}.err").read_text()[-2000:]
                for name, w in zip(names, workers, strict=True)
                if w.poll() is not None
            ]
            assert not failed, f"a worker exited: {failed}"
            assert time.monotonic() < deadline, f"batch not done in time: {jobs()}"
            time.sleep(0.2)
    finally:
        stop_processes(workers)
    with engine.connect() as conn:
        errors = (
            conn.execute(text("SELECT error FROM runs WHERE batch_id = :b AND status <> 'done'"), {"b": batch.id})
            .scalars()
            .all()
        )
    assert not errors and all(j.status == "succeeded" for j in jobs()), errors
    times = sorted(json.loads(line)["t"] for line in log.read_text().splitlines())
    per_debate = 1 * 2 + 2  # proposer and critic, two judges
    assert len(times) == batch.total * per_debate
    # Both workers debated, so both sent requests: each alone would have sent up to n per window.
    assert len(busy) == 2
    assert max_in_window(times, WINDOW_S - EDGE_S) <= n
    # The limit was reached, not merely unneeded.
    assert max_in_window(times, WINDOW_S + EDGE_S) >= n


def test_rows_that_left_the_window_are_pruned_now_and_then(db: str) -> None:
    key = "http://pruned.test/v1"
    window = DatabaseWindow(db, key, rpm=1000, tpm=None, window_s=0.2, prune_every=5)

    async def admit_slowly() -> None:
        for _ in range(12):
            await window.admit(1)
            await asyncio.sleep(0.05)

    try:
        asyncio.run(admit_slowly())
    finally:
        window.close()
    with ensure_schema(db).connect() as conn:
        left = conn.execute(text("SELECT count(*) FROM rate_window WHERE endpoint = :k"), {"k": key}).scalar_one()
    # The 10th admission pruned everything older than its window; the two after it remain.
    assert 2 <= left <= 7
