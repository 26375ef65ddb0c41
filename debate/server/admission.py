"""Admission to the database: a bounded number of requests at once, a bounded queue, 503 beyond.

Every route but the static files and the OpenAPI schema reads or writes the database from a
worker thread. Unbounded, a burst of clients outnumbers the pool's connections: the surplus
threads wait on the pool, time out after 30 s and answer 500, and (FastAPI closing each
request's session on a thread of the same pool) even finished requests queue behind them.

So an ASGI middleware admits at most ``slots`` requests (the pool's size) into the app at once;
the rest wait here, on the event loop, costing no thread and no connection, in arrival order.
When ``max_waiting`` are already waiting, a new one is answered 503 with ``Retry-After`` at once
rather than stalling. A request leaves its slot when its response starts: every route builds its
whole body first, so a slow reader does not hold a slot while its response is sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ErrorRenderer = Callable[..., Response]
# Paths that never touch the database.
_FREE_PREFIXES = ("/static/",)
_FREE_PATHS = frozenset({"/api/openapi.json"})


class Overloaded(Exception):
    """Too many requests are already waiting for the database."""


class Gate:
    """At most ``slots`` holders at once; at most ``max_waiting`` queued for a slot."""

    def __init__(self, slots: int, max_waiting: int) -> None:
        self.slots = slots
        self.max_waiting = max_waiting
        self._free = asyncio.Semaphore(slots)
        self.waiting = 0

    async def acquire(self) -> None:
        """Take a slot, waiting in line for one; :class:`Overloaded` when the line is full."""
        if self._free.locked():
            if self.waiting >= self.max_waiting:
                raise Overloaded
            self.waiting += 1
            try:
                await self._free.acquire()
            finally:
                self.waiting -= 1
        else:
            await self._free.acquire()

    def release(self) -> None:
        self._free.release()


def uses_database(path: str) -> bool:
    return path not in _FREE_PATHS and not path.startswith(_FREE_PREFIXES)


class Admission:
    """The ASGI middleware putting each database-using request through a :class:`Gate`."""

    def __init__(self, app: ASGIApp, *, gate: Gate, retry_after_s: int, on_error: ErrorRenderer) -> None:
        self.app = app
        self.gate = gate
        self.retry_after = str(retry_after_s)
        self.on_error = on_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not uses_database(scope["path"]):
            await self.app(scope, receive, send)
            return
        try:
            await self.gate.acquire()
        except Overloaded:
            msg = f"the server is busy ({self.gate.waiting} requests waiting); retry in {self.retry_after} s"
            resp = self.on_error(Request(scope), 503, msg, headers={"Retry-After": self.retry_after})
            await resp(scope, receive, send)
            return
        held = True

        def leave() -> None:
            nonlocal held
            if held:
                held = False
                self.gate.release()

        async def send_leaving(message: Message) -> None:
            if message["type"] == "http.response.start":
                leave()  # the body is built: the database work is done
            await send(message)

        try:
            await self.app(scope, receive, send_leaving)
        finally:
            leave()
