"""RateLimiter: sliding-window request/token limits, concurrency, fairness.

Unit tests drive an injected clock; the end-to-end tests go through the fake OpenAI server and
check the limits on the timestamps the server saw.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
from conftest import max_in_window
from pydantic import BaseModel

from debate.core.calls import ChatMessage
from debate.core.errors import ConfigError
from debate.llm.client import EndpointConfig, OpenAIChatClient
from debate.llm.fake import FakeOpenAIServer
from debate.llm.ratelimit import RateLimiter, shared_limiter


class FakeTime:
    """A clock that only moves when the limiter sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


class ManualClock:
    """A clock that moves only when the test advances it; sleepers wake at their deadline."""

    def __init__(self) -> None:
        self.t = 0.0
        self.sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.sleepers.append((self.t + seconds, fut))
        await fut

    async def advance(self, seconds: float) -> None:
        self.t += seconds
        for deadline, fut in list(self.sleepers):
            if deadline <= self.t and not fut.done():
                fut.set_result(None)
        for _ in range(5):
            await asyncio.sleep(0)


def limiter_with(fake: FakeTime, **kwargs: object) -> RateLimiter:
    return RateLimiter(clock=fake.clock, sleep=fake.sleep, **kwargs)  # type: ignore[arg-type]


# -- unit tests with an injected clock ---------------------------------------------------------


async def test_rpm_sliding_window_with_fake_clock() -> None:
    fake = FakeTime()
    limiter = limiter_with(fake, rpm=3, window_s=10.0)
    starts: list[float] = []

    async def one() -> None:
        async with limiter.slot():
            starts.append(fake.now)

    await asyncio.gather(*(one() for _ in range(7)))
    assert starts == [0.0, 0.0, 0.0, 10.0, 10.0, 10.0, 20.0]
    # It slept until the oldest start left the window, once per blocked admission: no polling.
    assert fake.sleeps == [10.0, 10.0]
    stats = limiter.stats()
    assert stats.requests == 7 and stats.waits == 4 and stats.in_flight == 0


async def test_rpm_window_slides_rather_than_resetting() -> None:
    fake = FakeTime()
    limiter = limiter_with(fake, rpm=2, window_s=10.0)
    starts: list[float] = []
    for gap in (0.0, 4.0, 0.0, 0.0):
        fake.now += gap
        async with limiter.slot():
            starts.append(fake.now)
    # Starts at 0 and 4; the third may go at 10 (when 0 leaves), the fourth at 14 (when 4 leaves).
    assert starts == [0.0, 4.0, 10.0, 14.0]


async def test_tpm_counts_estimates_and_corrections() -> None:
    fake = FakeTime()
    limiter = limiter_with(fake, tpm=100, window_s=10.0)
    starts: list[float] = []

    async with limiter.slot(40):
        starts.append(fake.now)
    async with limiter.slot(40) as ticket:
        starts.append(fake.now)
        ticket.record_tokens(10)  # the model used far less than estimated
    async with limiter.slot(40):  # 40 + 10 + 40 fits in 100
        starts.append(fake.now)
    async with limiter.slot(40):  # 90 + 40 does not: wait for the first entry to leave
        starts.append(fake.now)
    assert starts == [0.0, 0.0, 0.0, 10.0]
    assert limiter.stats().tokens == 40 + 10 + 40 + 40


async def test_correction_wakes_the_waiting_head_early() -> None:
    clock = ManualClock()
    limiter = RateLimiter(tpm=100, window_s=10.0, clock=clock.now, sleep=clock.sleep)
    admitted: list[float] = []

    async def second() -> None:
        async with limiter.slot(60):
            admitted.append(clock.now())

    async with limiter.slot(60) as first:
        task = asyncio.create_task(second())
        await clock.advance(0)
        assert admitted == [] and len(clock.sleepers) == 1  # sleeping until t=10
        await clock.advance(1.0)
        first.record_tokens(20)  # 20 + 60 fits: no need to wait for t=10
        await asyncio.wait_for(task, 1)
    assert admitted == [1.0]


async def test_tpm_oversized_request_runs_alone() -> None:
    fake = FakeTime()
    limiter = limiter_with(fake, tpm=100, window_s=10.0)
    starts: list[float] = []
    for est in (30, 500, 30):
        async with limiter.slot(est):
            starts.append(fake.now)
    # The 500-token request cannot ever fit; it goes once the window is empty, then blocks.
    assert starts == [0.0, 10.0, 20.0]


async def test_fifo_no_overtaking() -> None:
    fake = FakeTime()
    limiter = limiter_with(fake, tpm=100, window_s=10.0)
    order: list[str] = []

    async def one(name: str, est: int) -> None:
        async with limiter.slot(est):
            order.append(name)

    # "big" cannot fit until t=10; "small" arrives later and would fit now, but must not overtake.
    tasks = [asyncio.create_task(one("a", 80))]
    await asyncio.sleep(0)
    tasks.append(asyncio.create_task(one("big", 90)))
    await asyncio.sleep(0)
    tasks.append(asyncio.create_task(one("small", 10)))
    await asyncio.gather(*tasks)
    assert order == ["a", "big", "small"]


async def test_max_concurrency_and_fair_order() -> None:
    limiter = RateLimiter(max_concurrency=2)
    release = asyncio.Event()
    in_flight = 0
    peak = 0
    order: list[int] = []

    async def one(i: int) -> None:
        nonlocal in_flight, peak
        async with limiter.slot():
            order.append(i)
            in_flight += 1
            peak = max(peak, in_flight)
            await release.wait()
            in_flight -= 1

    tasks = []
    for i in range(6):
        tasks.append(asyncio.create_task(one(i)))
        await asyncio.sleep(0)
    await asyncio.sleep(0.01)
    assert order == [0, 1] and limiter.stats().queued == 3  # one more waits as head for a permit
    release.set()
    await asyncio.gather(*tasks)
    assert order == list(range(6)) and peak == 2
    assert limiter.stats().max_in_flight == 2 and limiter.stats().in_flight == 0


async def test_cancelled_waiter_does_not_block_the_queue() -> None:
    limiter = RateLimiter(max_concurrency=1)
    hold = asyncio.Event()
    done: list[str] = []

    async def one(name: str, wait: bool) -> None:
        async with limiter.slot():
            if wait:
                await hold.wait()
            done.append(name)

    first = asyncio.create_task(one("first", True))
    await asyncio.sleep(0)
    head = asyncio.create_task(one("head", False))
    queued = asyncio.create_task(one("queued", False))
    last = asyncio.create_task(one("last", False))
    await asyncio.sleep(0.01)
    head.cancel()
    queued.cancel()
    await asyncio.sleep(0)
    hold.set()
    await asyncio.wait_for(asyncio.gather(first, last), 2)
    assert done == ["first", "last"]
    assert limiter.stats().in_flight == 0


async def test_exception_in_block_releases_permit() -> None:
    limiter = RateLimiter(max_concurrency=1)
    with pytest.raises(RuntimeError):
        async with limiter.slot():
            raise RuntimeError("boom")
    async with asyncio.timeout(1):
        async with limiter.slot():
            pass


def test_invalid_limits_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        RateLimiter(rpm=0)
    with pytest.raises(ConfigError):
        RateLimiter(window_s=0)


def test_shared_limiter_is_process_wide() -> None:
    a = shared_limiter("http://test-endpoint/v1", max_concurrency=3)
    b = shared_limiter("http://test-endpoint/v1", max_concurrency=99)
    assert a is b and a.max_concurrency == 3


# -- end to end through the fake server ----------------------------------------------------------


class Ping(BaseModel):
    ok: bool


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as srv:
        yield srv


def make_client(server: FakeOpenAIServer, limiter: RateLimiter, **kwargs: object) -> OpenAIChatClient:
    return OpenAIChatClient(
        EndpointConfig(base_url=server.base_url, model="fake", **kwargs),  # type: ignore[arg-type]
        limiter=limiter,
    )


MESSAGES = [ChatMessage(role="user", content="ping")]


def full_window_counts(times: list[float], window: float) -> list[int]:
    """Counts in consecutive windows [t0 + k·w, t0 + (k+1)·w) that end before the last time."""
    times = sorted(times)
    counts = []
    k = 0
    while times[0] + (k + 1) * window <= times[-1]:
        lo, hi = times[0] + k * window, times[0] + (k + 1) * window
        counts.append(sum(1 for t in times if lo <= t < hi))
        k += 1
    return counts


async def test_rpm_through_server_fills_but_never_exceeds_windows(server: FakeOpenAIServer) -> None:
    n = 20
    stamps: list[float] = []
    limiter = RateLimiter(rpm=n, window_s=1.0, on_start=stamps.append)
    client = make_client(server, limiter)
    try:
        await asyncio.gather(*(client.complete(MESSAGES, Ping) for _ in range(3 * n)))
    finally:
        await client.aclose()
    arrivals = sorted(r.t for r in server.requests)
    stamps.sort()
    assert len(arrivals) == len(stamps) == 3 * n

    # The limiter's own starts (stamped as the request headers leave): exact bounds.
    assert max_in_window(stamps, 1.0) <= n
    counts = full_window_counts(stamps, 1.0)
    assert len(counts) >= 2 and min(counts) >= 0.9 * n, counts

    # The server sees each start a little later (network, parsing, here a GIL shared with the
    # client). With the i-th arrival matched to the i-th start, that delay varies by `spread`,
    # so the server's windows hold the same bounds once shrunk/grown by `spread`.
    delays = [a - s for a, s in zip(arrivals, stamps, strict=True)]
    spread = max(delays) - min(delays)
    print(f"\nstart-to-arrival delay spread: {spread * 1000:.1f} ms")
    assert spread < 0.2  # normally ~10-20 ms; this only fails on a badly overloaded machine
    assert max_in_window(arrivals, 1.0 - spread) <= n
    assert min(full_window_counts(arrivals, 1.0 + spread)) >= 0.9 * n
    assert limiter.stats().requests == 3 * n


async def test_max_concurrency_through_server() -> None:
    with FakeOpenAIServer(latency_s=0.1) as server:
        limiter = RateLimiter(max_concurrency=5)
        client = make_client(server, limiter)
        try:
            await asyncio.gather(*(client.complete(MESSAGES, Ping) for _ in range(30)))
        finally:
            await client.aclose()
        assert server.request_count == 30
        assert server.max_in_flight == 5
        assert limiter.stats().max_in_flight == 5


class Essay(BaseModel):
    text: str


async def test_tpm_through_server() -> None:
    # Every request is identical: prompt 5 tokens, reply 102 tokens, so 107 per request as
    # the server counts them, and tpm=600 fits 5 per window. The client estimates 115
    # (prompt + max_output_tokens) and corrects to 107 when the usage comes back.
    reply = json.dumps({"text": "x" * 396})
    stamps: list[float] = []
    limiter = RateLimiter(tpm=600, window_s=0.5, on_start=stamps.append)
    with FakeOpenAIServer(lambda body: reply) as server:
        client = make_client(server, limiter, max_output_tokens=110)
        try:
            results = await asyncio.gather(*(client.complete(MESSAGES, Essay) for _ in range(15)))
        finally:
            await client.aclose()
        arrivals = sorted(r.t for r in server.requests)
    per_request = {r.attempts[0].usage.total_tokens for r in results}
    assert per_request == {107}
    fits = 600 // 107
    stamps.sort()
    assert max_in_window(stamps, 0.5) <= fits
    counts = full_window_counts(stamps, 0.5)
    assert len(counts) >= 2 and min(counts) >= 0.9 * fits, counts
    spread = max(a - s for a, s in zip(arrivals, stamps, strict=True)) - min(
        a - s for a, s in zip(arrivals, stamps, strict=True)
    )
    assert spread < 0.2
    assert max_in_window(arrivals, 0.5 - spread) * 107 <= 600
    assert limiter.stats().tokens == 15 * 107


async def test_client_stamps_start_when_request_is_sent() -> None:
    # rpm=1 in a 0.5 s window, 0.3 s server latency. Stamped when sent, the second request
    # may go 0.5 s after the first one left; stamped on completion it would be 0.8 s.
    with FakeOpenAIServer(latency_s=0.3) as server:
        limiter = RateLimiter(rpm=1, window_s=0.5)
        client = make_client(server, limiter)
        try:
            await asyncio.gather(*(client.complete(MESSAGES, Ping) for _ in range(2)))
        finally:
            await client.aclose()
        first, second = server.requests
        assert 0.45 <= second.t - first.t < 0.7
