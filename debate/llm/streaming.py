"""Streamed chat completions, failed by silence rather than by length.

With ``idle_timeout_s`` set, a request streams (server-sent events) and fails only when no
chunk arrives for that long, or when ``total_timeout_s`` (if set) has passed: a slow model that
keeps writing is not cut off by a timeout meant for a dead one. The first chunk may take
``timeout_s`` instead, when that is longer: a server says nothing while it reads the prompt,
and a CPU model reading 1,000 tokens on a busy machine took over 30 s here. The stream asks for usage
(``stream_options.include_usage``); a server that sends none gets our estimates, marked so.

Chunks are read as raw SSE lines and parsed with :func:`json.loads`, not into the SDK's
models: a reply is one chunk per token, and a pydantic object per token would cost more CPU
than the rest of the call. For the same reason a display following the call
(:func:`~debate.core.calls.progress_sink`) hears the count of content chunks so far once per
network read, throttled, never once per chunk.
"""

from __future__ import annotations

import asyncio
import json
import math
from dataclasses import dataclass
from typing import Any

import httpx2
import openai

from debate.core.calls import TokenTicker, Usage, token_ticker
from debate.llm.failures import NotACompletion, StreamStalled, one_line


@dataclass(frozen=True)
class RawReply:
    """What a call brought back, streamed or not, before any validation."""

    content: str
    finish_reason: str | None
    usage: Usage
    served_model: str | None
    refusal: str | None = None
    has_choices: bool = True


def _usage(block: Any, prompt_estimate: int, chunks: int) -> Usage:
    if isinstance(block, dict):

        def count(name: str) -> int | None:
            value = block.get(name)
            return value if isinstance(value, int) and not isinstance(value, bool) else None

        return Usage(
            prompt_tokens=count("prompt_tokens"),
            completion_tokens=count("completion_tokens"),
            total_tokens=count("total_tokens"),
        )
    # No usage chunk: a content chunk is about one token on every server we know.
    return Usage(
        prompt_tokens=prompt_estimate,
        completion_tokens=chunks,
        total_tokens=prompt_estimate + chunks,
        estimated=True,
    )


class _Collector:
    """Accumulates one stream's chunks."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.content_chunks = 0
        self.finish_reason: str | None = None
        self.model: str | None = None
        self.usage: Any = None
        self.refusal: list[str] = []
        self.has_choices = False

    def add(self, data: bytes) -> None:
        try:
            chunk = json.loads(data)
        except ValueError as exc:
            raise NotACompletion(
                f"a streamed chunk is not JSON: {one_line(data.decode(errors='replace'), 120)}"
            ) from exc
        if not isinstance(chunk, dict):
            raise NotACompletion(f"a streamed chunk is not an object: {one_line(data.decode(errors='replace'), 120)}")
        if "error" in chunk:  # an error after the headers went out (llama.cpp, vLLM)
            raise NotACompletion(f"the stream ended with an error: {one_line(json.dumps(chunk['error']), 200)}")
        self.model = chunk.get("model") or self.model
        if chunk.get("usage") is not None:
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            self.has_choices = True
            delta = choice.get("delta") or {}
            if delta.get("content"):
                self.parts.append(delta["content"])
                self.content_chunks += 1
            if delta.get("refusal"):
                self.refusal.append(delta["refusal"])
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]

    def reply(self, prompt_estimate: int) -> RawReply:
        return RawReply(
            content="".join(self.parts),
            finish_reason=self.finish_reason,
            usage=_usage(self.usage, prompt_estimate, self.content_chunks),
            served_model=self.model,
            refusal="".join(self.refusal) or None,
            has_choices=self.has_choices,
        )


class _Watchdog:
    """Cancels the calling task when nothing arrives for ``idle_s`` (``first_s`` before the first
    chunk) or at ``end``. Re-armed once per idle period, not per chunk: a reply is one chunk a
    token, and a timer per chunk cost more CPU than parsing it."""

    def __init__(self, idle_s: float, first_s: float, end: float) -> None:
        self.loop = asyncio.get_running_loop()
        self.task = asyncio.current_task()
        self.idle_s, self.first_s, self.end = idle_s, first_s, end
        self.last = self.loop.time()
        self.started = False
        self.expired: StreamStalled | None = None
        self.handle = self.loop.call_at(self._due(), self._check)

    def _due(self) -> float:
        return min(self.last + (self.idle_s if self.started else self.first_s), self.end)

    def seen(self) -> None:
        self.last = self.loop.time()
        if not self.started:  # from here on the (usually shorter) idle limit applies
            self.started = True
            self.handle.cancel()
            self.handle = self.loop.call_at(self._due(), self._check)

    def _check(self) -> None:
        due = self._due()
        if self.loop.time() < due:
            self.handle = self.loop.call_at(due, self._check)
            return
        if due >= self.end:
            self.expired = StreamStalled("stream still going at total_timeout_s", self.end - self.last)
        elif self.started:
            self.expired = StreamStalled("no token", self.idle_s)
        else:
            self.expired = StreamStalled("no first token", self.first_s)
        assert self.task is not None
        self.task.cancel()

    def close(self) -> None:
        self.handle.cancel()


async def stream_reply(
    pool: openai.AsyncOpenAI,
    body: dict[str, Any],
    *,
    connect_timeout_s: float,
    idle_s: float,
    total_s: float,
    prompt_estimate: int,
) -> RawReply:
    """One streamed chat completion on ``pool``; raises :class:`StreamStalled` on silence.

    The first bytes are awaited for ``max(connect_timeout_s, idle_s)``, each later ones for
    ``idle_s``, all within ``total_s`` when set.
    """
    loop = asyncio.get_running_loop()
    start = loop.time()
    dog = _Watchdog(idle_s, max(idle_s, connect_timeout_s), start + total_s if total_s else math.inf)
    collected = _Collector()
    # httpx's own read timeout stays off: the watchdog decides.
    options: Any = {"security": {"bearer_auth": True}, "timeout": httpx2.Timeout(connect_timeout_s, read=None)}
    try:
        response: httpx2.Response = await pool.post(
            "/chat/completions",
            cast_to=httpx2.Response,
            body={**body, "stream": True, "stream_options": {"include_usage": True}},
            options=options,
            stream=True,
        )
        try:
            await _read_events(response, collected, dog, token_ticker())
        except httpx2.TransportError as exc:  # the connection broke mid-stream
            message = one_line(str(exc) or type(exc).__name__, 200)
            raise openai.APIConnectionError(message=message, request=response.request) from exc
        finally:
            await response.aclose()
    except asyncio.CancelledError:
        if dog.expired is None:
            raise  # cancelled from outside
        if (task := asyncio.current_task()) is not None:
            task.uncancel()
        raise dog.expired from None
    finally:
        dog.close()
    return collected.reply(prompt_estimate)


async def _read_events(
    response: httpx2.Response, collected: _Collector, dog: _Watchdog, ticker: TokenTicker | None
) -> None:
    """Feed every ``data:`` line of the SSE body to ``collected``, reading the body to its end
    (so the connection goes back to the pool); ``ticker`` hears the content chunks so far."""
    pending = b""
    done = False
    async for chunk in response.aiter_bytes():
        dog.seen()
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            if done or not line.startswith(b"data:"):
                continue  # blank separators, comments, event names
            data = line[5:].strip()
            if data == b"[DONE]":
                done = True
            else:
                collected.add(data)
        if ticker is not None:
            ticker(collected.content_chunks)
