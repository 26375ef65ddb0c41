"""A rescoring batch keeps within the endpoint's limits, seen from both sides.

Many debates at once share the process-wide limiter of their endpoint. With RPM set to N and far
more demand than N, the fake server sees at most N requests in any sliding window and at least
0.9 N in every full window (the window is shrunk to one second so the test is quick); with a
concurrency cap below the debates' demand, the server never has more requests in flight.

The RPM test runs the server in its own process: in this one it would share the GIL with the
engine's database work and stamp arrivals late, in bunches, so it would measure itself.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import max_in_window

from debate.core.config import load_settings
from debate.jobs.batches import open_or_create_batch
from debate.jobs.runner import BatchRunner
from debate.jobs.selection import normalize_options
from debate.llm.fake import FakeOpenAIServer, fake_server_process
from debate.llm.ratelimit import shared_limiter

WINDOW_S = 1.0
# The limiter stamps a request when its headers leave the client; the server stamps it when it
# has parsed them. That gap varies by a few ms on a quiet machine and by tens of ms on a loaded
# one, so the server-side check allows 100 ms of it (the limiter's own stamps are exact).
EDGE_S = 0.1


def _rescore(engine, db_url: str, base_url: str, *, concurrency: int, **openai: object):  # type: ignore[no-untyped-def]
    settings = load_settings(
        database_url=db_url,
        debate={"rounds": 1, "judges": 2},
        openai={"base_url": base_url, "api_key": "k", "structured_output": "json_schema", "timeout_s": 10.0, **openai},
    )
    opts = normalize_options(
        backend="openai",
        stale_after="0s",
        limit=12,
    )
    batch, _ = open_or_create_batch(engine, settings, opts, concurrency=concurrency)
    assert batch is not None
    return asyncio.run(BatchRunner(engine, settings, batch.id, concurrency=concurrency).run())


@pytest.fixture
def server_process(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """(base URL, request log) of a fake server in its own process (arrival times: monotonic clock)."""
    log = tmp_path / "requests.jsonl"
    with fake_server_process(0.05, log=log) as base_url:
        yield base_url, log


def test_rpm_is_never_exceeded_and_every_full_window_is_used(sample_engine, db_url, server_process):  # type: ignore
    n = 10
    base_url, log = server_process
    # The endpoint's process-wide limiter, registered first with a one-second window.
    limiter = shared_limiter(base_url, 64, n, None, window_s=WINDOW_S)
    summary = _rescore(sample_engine, db_url, base_url, concurrency=8, rpm=n, max_concurrency=64)
    times = sorted(json.loads(line)["t"] for line in log.read_text().splitlines())
    assert summary.status == "done" and summary.done == 12
    assert len(times) == 12 * 4 == limiter.stats().requests  # 8 debates at once want far more than n/s
    assert max_in_window(times, WINDOW_S - EDGE_S) <= n
    full = 0
    while times[0] + (full + 1) * WINDOW_S <= times[-1]:
        lo = times[0] + full * WINDOW_S
        count = sum(1 for x in times if lo <= x < lo + WINDOW_S)
        assert count >= 0.9 * n, (full, count)
        full += 1
    assert full >= 3
    assert limiter.stats().waits > 0


def test_concurrent_requests_stay_under_the_cap_across_debates(sample_engine, db_url):  # type: ignore[no-untyped-def]
    with FakeOpenAIServer(latency_s=0.2) as server:
        limiter = shared_limiter(server.base_url, 3, None, None)
        summary = _rescore(sample_engine, db_url, server.base_url, concurrency=8, max_concurrency=3)
    assert summary.done == 12
    assert server.max_in_flight == limiter.stats().max_in_flight == 3
