"""Streaming with an idle timeout: a slow model that keeps writing is not cut off by ``timeout_s``,
a stalled one fails after ``idle_timeout_s``; usage and the rate limiter stay right."""

from __future__ import annotations

import time
from typing import Any

import pytest

from debate.core.calls import ChatMessage, CompletionFailed
from debate.core.models import CriticReply
from debate.llm.client import EndpointConfig, OpenAIChatClient
from debate.llm.fake import FakeOpenAIServer, Fault, Reply
from debate.llm.ratelimit import RateLimiter

MESSAGES = [ChatMessage(role="system", content="You are the critic."), ChatMessage(role="user", content="Go.")]
REPLY = CriticReply(argument="A steady case. " * 6, claims=[], concede=False).model_dump_json()


def client_for(url: str, **config: Any) -> OpenAIChatClient:
    defaults: dict[str, Any] = {"timeout_s": 0.5, "idle_timeout_s": 0.4, "max_transport_attempts": 1}
    return OpenAIChatClient(EndpointConfig(base_url=url, model="m", api_key="k", **{**defaults, **config}))


async def test_a_slow_but_steady_stream_outlasts_timeout_s() -> None:
    # ~30 chunks 0.05 s apart: ~1.5 s in all, three times timeout_s, never idle for 0.4 s.
    with FakeOpenAIServer(stream_delay_s=0.05) as server:
        client = client_for(server.base_url)
        server.script([Reply(REPLY)])
        started = time.monotonic()
        result = await client.complete(MESSAGES, CriticReply)
        elapsed = time.monotonic() - started
        await client.aclose()
        body = server.requests[0].body
    assert elapsed > 1.0
    assert result.raw == REPLY and [a.outcome for a in result.attempts] == ["ok"]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    usage = result.attempts[0].usage
    assert usage.completion_tokens and not usage.estimated


async def test_a_stalled_stream_fails_after_the_idle_timeout() -> None:
    with FakeOpenAIServer() as server:
        client = client_for(server.base_url, timeout_s=10.0, idle_timeout_s=0.4)
        server.script([Fault.stall(5.0)])
        started = time.monotonic()
        with pytest.raises(CompletionFailed) as info:
            await client.complete(MESSAGES, CriticReply)
        elapsed = time.monotonic() - started
        await client.aclose()
    assert 0.35 < elapsed < 2.0
    [attempt] = info.value.attempts
    assert attempt.outcome == "timeout" and "no token after 0.4 s" in (attempt.error or "")
    assert "stalled" in str(info.value)


async def test_a_stall_is_retried_like_a_timeout() -> None:
    with FakeOpenAIServer() as server:
        client = client_for(server.base_url, max_transport_attempts=2, backoff_initial_s=0.0)
        server.script([Fault.stall(5.0), Reply(REPLY)])
        result = await client.complete(MESSAGES, CriticReply)
        await client.aclose()
    assert [(a.kind, a.outcome) for a in result.attempts] == [("first", "timeout"), ("transport_retry", "ok")]


async def test_total_timeout_caps_a_stream_that_never_ends() -> None:
    with FakeOpenAIServer(stream_delay_s=0.05) as server:
        client = client_for(server.base_url, idle_timeout_s=0.4, total_timeout_s=0.6)
        server.script([Reply(REPLY)])
        with pytest.raises(CompletionFailed) as info:
            await client.complete(MESSAGES, CriticReply)
        await client.aclose()
    assert "total_timeout_s" in (info.value.attempts[0].error or "")


async def test_a_stream_without_usage_is_estimated_and_counted_by_the_limiter() -> None:
    limiter = RateLimiter(max_concurrency=4, tpm=1_000_000)
    with FakeOpenAIServer() as server:
        client = OpenAIChatClient(
            EndpointConfig(base_url=server.base_url, model="m", api_key="k", idle_timeout_s=5.0), limiter=limiter
        )
        server.script([Reply(REPLY, usage=False), Reply(REPLY)])
        first = await client.complete(MESSAGES, CriticReply)
        second = await client.complete(MESSAGES, CriticReply)
        await client.aclose()
    estimated, reported = first.attempts[0].usage, second.attempts[0].usage
    assert estimated.estimated and estimated.prompt_tokens and estimated.completion_tokens
    assert not reported.estimated and reported.total_tokens
    # The limiter holds what each call spent: the estimate where the server said nothing.
    assert limiter.stats().tokens == estimated.total_tokens + reported.total_tokens
