"""Process-wide rate limiting for one model endpoint.

A :class:`RateLimiter` bounds, for every caller sharing it:

* concurrency — at most ``max_concurrency`` requests in flight;
* request rate — at most ``rpm`` request starts in any sliding window of ``window_s`` seconds;
* token rate — at most ``tpm`` tokens in any sliding window, counting each request's
  estimate when it starts and correcting it with the actual count once known.

Callers are admitted strictly first come, first served: one waiter at a time (the head of the
queue) checks the limits and sleeps until the oldest window entry expires (or until a permit
is released or a token estimate is corrected downwards), so the limiter never busy-loops and a
late arrival can never overtake an earlier one.

The limiter is meant to be used from one event loop at a time; it creates its futures on the
running loop lazily, so one instance can outlive several ``asyncio.run`` calls.

These limits hold within one process. When several processes (queue workers on several
machines) share an endpoint, a :class:`SharedWindow` (see :mod:`debate.llm.shared_window`) adds a
request and token window that all of them count in: the queue head asks it for admission after
the local limits pass, so callers stay first come, first served within the process.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol

from pydantic import BaseModel, ConfigDict

from debate.core.errors import ConfigError

__all__ = [
    "LimiterStats",
    "RateLimiter",
    "SharedWindow",
    "SlotTicket",
    "StartedWindow",
    "shared_limiter",
    "window_delay",
]

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[object]]


class SharedWindow(Protocol):
    """A request/token window shared with other processes using the same endpoint."""

    async def admit(self, tokens: int) -> tuple[int, bool]:
        """Wait until a request with this token estimate fits.

        Returns the admitted entry's id and whether it had to wait for room.
        """
        ...

    def stamp(self, entry_id: int) -> None:
        """Move the entry's start to now (the request is leaving); must not block."""
        ...

    def correct(self, entry_id: int, tokens: int) -> None:
        """Replace the entry's token estimate by the actual count; must not block."""
        ...


class StartedWindow(Protocol):
    """The (start, tokens) of the stamped requests still in a window, oldest first."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int, /) -> tuple[float, int]: ...

    def __iter__(self) -> Iterator[tuple[float, int]]: ...


def window_delay(
    entries: StartedWindow,
    now: float,
    *,
    window_s: float,
    rpm: int | None,
    tpm: int | None,
    tokens: int,
    used: int | None = None,
    pending: int = 0,
    pending_tokens: int = 0,
) -> float:
    """Seconds until a request with ``tokens`` fits the rpm and tpm windows; 0 if it fits now.

    ``entries`` are the requests still in the window; ``used`` is their token sum when the
    caller keeps one (else it is summed here). ``pending`` requests holding ``pending_tokens``
    are admitted but not yet stamped: they count, but have no start to leave at, so the result
    is ``inf`` when only they stand in the way. A request bigger than the whole token budget
    runs alone once the window is empty.
    """
    delay = 0.0
    if rpm is not None and pending + len(entries) >= rpm:
        # This many stamped entries must leave so that rpm - 1 remain.
        k = pending + len(entries) - rpm
        if k >= len(entries):
            return math.inf
        delay = entries[k][0] + window_s - now
    if tpm is not None:
        used = pending_tokens + (sum(n for _, n in entries) if used is None else used)
        excess = used + tokens - tpm
        if excess > 0 and used > 0:
            freed, leave_at = 0, now
            for start, n in entries:
                freed, leave_at = freed + n, start + window_s
                if freed >= excess:
                    break
            if freed < excess and pending_tokens > 0:
                return math.inf
            delay = max(delay, leave_at - now)
    return max(delay, 0.0)


class LimiterStats(BaseModel):
    """A snapshot of what a limiter has admitted so far."""

    model_config = ConfigDict(extra="forbid")

    requests: int
    tokens: int
    waits: int
    wait_s: float
    in_flight: int
    max_in_flight: int
    queued: int


@dataclass(eq=False)
class _Entry:
    """One admitted request in the sliding window."""

    tokens: int
    t: float | None = None  # None while pending: admitted, not yet on the wire
    live: bool = True  # False once it has left the window
    shared_id: int | None = None  # its entry in the shared window, if there is one


class _Started:
    """A limiter's stamped entries as a :class:`StartedWindow`.

    A view, not a copy: the window may hold ``rpm`` entries and is consulted on every admission.
    """

    __slots__ = ("_entries",)

    def __init__(self, entries: deque[_Entry]) -> None:
        self._entries = entries

    def __len__(self) -> int:
        return len(self._entries)

    def __getitem__(self, index: int, /) -> tuple[float, int]:
        entry = self._entries[index]
        return entry.t, entry.tokens  # type: ignore[return-value]  # stamped: t is set

    def __iter__(self) -> Iterator[tuple[float, int]]:
        return ((e.t, e.tokens) for e in self._entries)  # type: ignore[misc]  # stamped: t is set


@dataclass
class SlotTicket:
    """Handle on one admitted request, yielded by :meth:`RateLimiter.slot`."""

    limiter: RateLimiter
    estimated_tokens: int
    waited_s: float
    _entry: _Entry = field(repr=False)

    def mark_started(self) -> None:
        """Stamp the request's start now (for slots opened with ``defer_start=True``).

        Call it when the request actually goes out; later calls are ignored.
        """
        self.limiter._stamp(self._entry)

    def record_tokens(self, actual: int) -> None:
        """Replace this request's token estimate by the actual count the endpoint reported."""
        self.limiter._correct_tokens(self._entry, actual)


class _FifoGate:
    """A lock that hands itself to waiters strictly in arrival order."""

    def __init__(self) -> None:
        self._held = False
        self._waiters: deque[asyncio.Future[None]] = deque()

    def __len__(self) -> int:
        return len(self._waiters)

    async def acquire(self) -> bool:
        """Take the gate; returns True if it had to queue for it."""
        if not self._held and not self._waiters:
            self._held = True
            return False
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                # The gate was handed to us just as we were cancelled: pass it on.
                self.release()
            else:
                try:
                    self._waiters.remove(fut)
                except ValueError:
                    pass
            raise
        return True

    def release(self) -> None:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)  # hand-off: the gate stays held
                return
        self._held = False


def check_limits(window_s: float, **limits: int | None) -> None:
    """Raise ConfigError unless every limit is unset or at least 1 and the window is positive."""
    for name, value in limits.items():
        if value is not None and value < 1:
            raise ConfigError(f"rate limit {name} must be at least 1 (or unset), got {value}")
    if window_s <= 0:
        raise ConfigError(f"rate limit window must be positive, got {window_s}")


class RateLimiter:
    """Concurrency, request-rate and token-rate limits for one endpoint, shared process-wide.

    ``None`` disables a limit. ``window_s`` is the sliding window for ``rpm`` and ``tpm``
    (60 s in production; tests shrink it). ``clock`` and ``sleep`` are injectable so the
    window logic can be tested without waiting. ``on_start(t)``, if given, is called with the
    clock time of every stamped request start (for metrics and tests). ``shared``, if given, is
    a window counted by every process using the endpoint; the local ``rpm`` / ``tpm`` still
    apply, and spare it a round trip when this process alone fills them.
    """

    def __init__(
        self,
        max_concurrency: int | None = None,
        rpm: int | None = None,
        tpm: int | None = None,
        *,
        window_s: float = 60.0,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        on_start: Callable[[float], None] | None = None,
        shared: SharedWindow | None = None,
    ) -> None:
        check_limits(window_s, max_concurrency=max_concurrency, rpm=rpm, tpm=tpm)
        self.max_concurrency = max_concurrency
        self.rpm = rpm
        self.tpm = tpm
        self.window_s = window_s
        self._clock = clock
        self._sleep = sleep
        self._on_start = on_start
        self.shared = shared
        self._gate = _FifoGate()
        # Stamped entries in start order (every stamp is "now", so appending keeps them sorted).
        self._window: deque[_Entry] = deque()
        self._started = _Started(self._window)
        self._window_tokens = 0
        # Admitted but not yet stamped: they count in every window until stamped.
        self._pending = 0
        self._pending_tokens = 0
        self._in_flight = 0
        # The queue head waits on this for a released permit or a newly stamped entry.
        self._change: asyncio.Future[None] | None = None
        # Stats.
        self._requests = 0
        self._tokens = 0
        self._waits = 0
        self._wait_s = 0.0
        self._max_in_flight = 0

    # -- public -----------------------------------------------------------------------------

    @asynccontextmanager
    async def slot(self, estimated_tokens: int = 0, *, defer_start: bool = False) -> AsyncIterator[SlotTicket]:
        """Wait until one request may start, hold its concurrency permit for the block.

        Yields a :class:`SlotTicket`; call ``ticket.record_tokens(actual)`` once the endpoint
        reports usage so the token window counts what was really spent.

        The request's start is stamped at admission, or with ``defer_start=True`` when the
        caller calls ``ticket.mark_started()`` (at the latest when the block exits). Stamping
        when the bytes leave keeps connection set-up and client CPU time out of the gap
        between our window and the one the server measures.
        """
        estimated_tokens = max(0, int(estimated_tokens))
        ticket = await self._admit(estimated_tokens, defer_start)
        try:
            yield ticket
        finally:
            self._stamp(ticket._entry)
            self._in_flight -= 1
            self._notify()

    def stats(self) -> LimiterStats:
        """Counters since creation: requests, tokens, how often and how long callers waited."""
        return LimiterStats(
            requests=self._requests,
            tokens=self._tokens,
            waits=self._waits,
            wait_s=self._wait_s,
            in_flight=self._in_flight,
            max_in_flight=self._max_in_flight,
            queued=len(self._gate),
        )

    # -- admission ----------------------------------------------------------------------------

    async def _admit(self, estimated_tokens: int, defer_start: bool) -> SlotTicket:
        start = self._clock()
        waited = await self._gate.acquire()
        try:
            while True:
                if self.max_concurrency is not None and self._in_flight >= self.max_concurrency:
                    waited = True
                    await self._wait_change()
                    continue
                delay = self._window_delay(self._clock(), estimated_tokens)
                if delay <= 0:
                    break
                waited = True
                if math.isinf(delay):
                    await self._wait_change()  # blocked only by pending entries
                else:
                    await self._sleep_or_change(delay)
            shared_id: int | None = None
            if self.shared is not None:
                # Holding the gate: only the queue head waits on other processes. The local
                # limits cannot tighten meanwhile (only the head admits), so they still hold.
                shared_id, shared_waited = await self.shared.admit(estimated_tokens)
                waited = waited or shared_waited
            entry = _Entry(estimated_tokens, shared_id=shared_id)
            self._pending += 1
            self._pending_tokens += estimated_tokens
            if not defer_start:
                self._stamp(entry)
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            self._requests += 1
            self._tokens += estimated_tokens
            waited_s = self._clock() - start
            if waited:
                self._waits += 1
                self._wait_s += waited_s
            return SlotTicket(self, estimated_tokens, waited_s, entry)
        finally:
            self._gate.release()

    async def _wait_change(self) -> None:
        self._change = asyncio.get_running_loop().create_future()
        try:
            await self._change
        finally:
            self._change = None

    async def _sleep_or_change(self, delay: float) -> None:
        # Sleep until the oldest entry leaves, but wake early when something may have freed
        # room sooner (a token count corrected downwards, a permit released).
        self._change = asyncio.get_running_loop().create_future()
        sleeper = asyncio.ensure_future(self._sleep(delay))
        try:
            await asyncio.wait({sleeper, self._change}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._change = None
            if not sleeper.done():
                sleeper.cancel()

    def _notify(self) -> None:
        change = self._change
        if change is not None and not change.done():
            change.set_result(None)

    def _stamp(self, entry: _Entry) -> None:
        if entry.t is not None:
            return
        entry.t = self._clock()
        if self.shared is not None and entry.shared_id is not None:
            self.shared.stamp(entry.shared_id)
        self._pending -= 1
        self._pending_tokens -= entry.tokens
        self._window.append(entry)
        self._window_tokens += entry.tokens
        self._notify()
        if self._on_start is not None:
            self._on_start(entry.t)

    def _prune(self, now: float) -> None:
        horizon = now - self.window_s
        window = self._window
        while window and window[0].t is not None and window[0].t <= horizon:
            gone = window.popleft()
            gone.live = False
            self._window_tokens -= gone.tokens

    def _window_delay(self, now: float, estimated_tokens: int) -> float:
        """Seconds until a request with this estimate fits both windows.

        0 if it fits now; ``inf`` if only pending (unstamped) entries stand in the way.
        """
        self._prune(now)
        return window_delay(
            self._started,
            now,
            window_s=self.window_s,
            rpm=self.rpm,
            tpm=self.tpm,
            tokens=estimated_tokens,
            used=self._window_tokens,
            pending=self._pending,
            pending_tokens=self._pending_tokens,
        )

    def _correct_tokens(self, entry: _Entry, actual: int) -> None:
        actual = max(0, int(actual))
        diff = actual - entry.tokens
        entry.tokens = actual
        if self.shared is not None and entry.shared_id is not None:
            self.shared.correct(entry.shared_id, actual)
        self._tokens += diff
        if entry.t is None:
            self._pending_tokens += diff
        elif entry.live:
            self._window_tokens += diff
        if diff < 0:
            self._notify()


_SHARED: dict[str, RateLimiter] = {}


def shared_limiter(
    key: str,
    max_concurrency: int | None = None,
    rpm: int | None = None,
    tpm: int | None = None,
    *,
    window_s: float = 60.0,
    shared: Callable[[], SharedWindow] | None = None,
) -> RateLimiter:
    """The process-wide limiter for an endpoint ``key`` (e.g. its base URL), created on first use.

    ``shared`` builds the cross-process window, called only when the limiter is created.
    Later calls with the same key return the same instance; their limit arguments are ignored.
    """
    limiter = _SHARED.get(key)
    if limiter is None:
        limiter = RateLimiter(
            max_concurrency, rpm, tpm, window_s=window_s, shared=shared() if shared is not None else None
        )
        _SHARED[key] = limiter
    return limiter
