"""The HTTP side of a chat client: SDK connection pools, one request at a time, rate-limit slots.

Requests go through the openai SDK's ``post`` (retries off: :mod:`debate.llm.client` retries),
on the least busy of several small connection pools; a streamed request goes through
:mod:`debate.llm.streaming` on the same pools.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any

import httpx2
import openai
from openai.types.chat import ChatCompletion

from debate.core.calls import Usage
from debate.llm.failures import NotACompletion, one_line, usage_of
from debate.llm.ratelimit import RateLimiter, SlotTicket
from debate.llm.streaming import RawReply, stream_reply

# The rate-limit ticket of the call the current task is making; the HTTP trace hook stamps it
# when the request headers go out.
_SENDING: ContextVar[SlotTicket | None] = ContextVar("debate_llm_sending", default=None)
# Connection pools: see Pools.
_CALLS_PER_POOL = 16
_MAX_POOLS = 32


async def _trace(event: str, info: dict[str, Any]) -> None:
    if event.endswith("send_request_headers.started"):
        ticket = _SENDING.get()
        if ticket is not None:
            ticket.mark_started()


async def _on_request(request: httpx2.Request) -> None:
    # Only rate-limited calls need the (small) cost of tracing.
    if _SENDING.get() is not None:
        request.extensions["trace"] = _trace


def _reply_of(response: Any) -> RawReply:
    """A non-streamed reply as a :class:`RawReply`; NotACompletion for anything else."""
    if not isinstance(response, ChatCompletion) or response.choices is None:
        raise NotACompletion(one_line(repr(response), 120))
    usage: Usage = usage_of(response)
    if not response.choices:
        return RawReply("", None, usage, response.model or None, has_choices=False)
    choice = response.choices[0]
    return RawReply(
        content=choice.message.content or "",
        finish_reason=choice.finish_reason,
        usage=usage,
        served_model=response.model or None,
        refusal=getattr(choice.message, "refusal", None),
    )


class Pools:
    """``AsyncOpenAI`` clients, each with its own connection pool, opened as concurrency grows.

    httpcore scans (and probes the socket of) every pooled connection twice per request, so one
    pool holding a hundred connections costs more CPU per call than the call itself. A new pool
    is opened only when every open one already carries ``_CALLS_PER_POOL`` calls, so a client
    making a few calls at a time keeps reusing one pool's connections.
    """

    def __init__(self, *, api_key: str, base_url: str | None, timeout_s: float) -> None:
        self._api_key = api_key
        self._base_url = base_url
        self.timeout_s = timeout_s
        self.clients: list[openai.AsyncOpenAI] = [self._new()]
        self.in_flight: list[int] = [0]
        self.base_url = str(self.clients[0].base_url).rstrip("/")

    def _new(self) -> openai.AsyncOpenAI:
        http_client = openai.DefaultAsyncHttpx2Client(timeout=self.timeout_s, event_hooks={"request": [_on_request]})
        return openai.AsyncOpenAI(
            api_key=self._api_key,
            base_url=self._base_url,
            timeout=self.timeout_s,
            max_retries=0,
            http_client=http_client,
        )

    def _pick(self) -> int:
        """The index of the least busy pool, opening another when all are full."""
        i = min(range(len(self.clients)), key=self.in_flight.__getitem__)
        if self.in_flight[i] >= _CALLS_PER_POOL and len(self.clients) < _MAX_POOLS:
            self.clients.append(self._new())
            self.in_flight.append(0)
            i = len(self.clients) - 1
        return i

    async def aclose(self) -> None:
        for client in self.clients:
            await client.close()

    async def post(self, body: dict[str, Any]) -> Any:
        """One chat completion request on the least busy pool, parsed as ``ChatCompletion``.

        ``post`` is what ``chat.completions.create`` ends in, minus the SDK's TypedDict
        transform of the body, which walks the whole JSON schema on every call; our body is
        already plain JSON.
        """
        i = self._pick()
        self.in_flight[i] += 1
        try:
            return await self.clients[i].post(
                "/chat/completions",
                cast_to=ChatCompletion,
                body=body,
                options={"security": {"bearer_auth": True}},
            )
        finally:
            self.in_flight[i] -= 1

    async def call(self, body: dict[str, Any], *, idle_s: float, total_s: float, prompt_estimate: int) -> RawReply:
        """One call, streamed when ``idle_s`` is set (see :mod:`debate.llm.streaming`)."""
        if not idle_s:
            return _reply_of(await self.post(body))
        i = self._pick()
        self.in_flight[i] += 1
        try:
            return await stream_reply(
                self.clients[i],
                body,
                connect_timeout_s=self.timeout_s,
                idle_s=idle_s,
                total_s=total_s,
                prompt_estimate=prompt_estimate,
            )
        finally:
            self.in_flight[i] -= 1


@asynccontextmanager
async def limiter_slot(limiter: RateLimiter | None, estimate: int) -> AsyncIterator[SlotTicket | None]:
    """A rate-limit slot for one call (none without a limiter)."""
    if limiter is None:
        yield None
        return
    # The start is stamped when the request leaves (see _trace), so connection set-up and SDK
    # overhead do not skew the window against the server's clock.
    async with limiter.slot(estimate, defer_start=True) as ticket:
        token = _SENDING.set(ticket)
        try:
            yield ticket
        finally:
            _SENDING.reset(token)
