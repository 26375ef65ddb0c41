"""OpenAIChatClient against the fake OpenAI-compatible server, over real HTTP."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from types import SimpleNamespace
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field

from debate.core.calls import ChatClient, ChatMessage, CompletionFailed
from debate.core.errors import ModelEndpointError
from debate.llm.client import (
    SCHEMA_MARKER_CLOSE,
    SCHEMA_MARKER_OPEN,
    EndpointConfig,
    OpenAIChatClient,
)
from debate.llm.failures import retry_after_s
from debate.llm.fake import FakeOpenAIServer, Fault, Reply
from debate.llm.ratelimit import RateLimiter


class Critique(BaseModel):
    verdict: Literal["support", "oppose", "unsure"]
    confidence: float = Field(ge=0, le=1)
    points: list[str]
    concede: bool


VALID = json.dumps({"verdict": "oppose", "confidence": 0.8, "points": ["p"], "concede": True})
MESSAGES = [
    ChatMessage(role="system", content="You are a critic."),
    ChatMessage(role="user", content="Critique the hypothesis."),
]


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as srv:
        yield srv


def client_for(url: str, **overrides: Any) -> OpenAIChatClient:
    settings: dict[str, Any] = {
        "base_url": url,
        "model": "fake-model",
        "backoff_initial_s": 0.01,
        "backoff_max_s": 0.05,
    }
    settings.update(overrides)
    return OpenAIChatClient(EndpointConfig(**settings))


@pytest.fixture
async def client(server: FakeOpenAIServer) -> Any:
    c = client_for(server.base_url)
    yield c
    await c.aclose()


def test_client_satisfies_protocol(server: FakeOpenAIServer) -> None:
    assert isinstance(client_for(server.base_url), ChatClient)


async def test_valid_reply_parsed(server: FakeOpenAIServer, client: OpenAIChatClient) -> None:
    server.script([Reply(VALID)])
    result = await client.complete(MESSAGES, Critique)
    assert result.parsed == Critique.model_validate_json(VALID)
    assert result.raw == VALID and result.model == "fake-model"
    [attempt] = result.attempts
    assert attempt.outcome == "ok" and attempt.kind == "first" and attempt.n == 1
    assert attempt.messages_sent == 2 and attempt.raw_reply == VALID
    assert attempt.usage.total_tokens is not None and attempt.usage.total_tokens > 0
    assert attempt.latency_ms > 0 and attempt.http_status is None
    assert result.messages == MESSAGES
    body = server.requests[0].body
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["name"] == "Critique"
    assert fmt["json_schema"]["schema"]["additionalProperties"] is False
    assert body["temperature"] == 0.0 and body["model"] == "fake-model"
    assert server.request_count == len(result.attempts)


async def test_schema_responder_default_and_model_override(server: FakeOpenAIServer, client: OpenAIChatClient) -> None:
    result = await client.complete(MESSAGES, Critique, model="other-model")
    assert result.parsed.verdict == "support" and result.parsed.concede is False
    assert server.requests[0].body["model"] == "other-model"
    assert result.attempts[0].model == "other-model"


async def test_fenced_reply_is_accepted(server: FakeOpenAIServer, client: OpenAIChatClient) -> None:
    server.script([Reply(f"```json\n{VALID}\n```")])
    result = await client.complete(MESSAGES, Critique)
    assert result.parsed.verdict == "oppose" and len(result.attempts) == 1


async def test_malformed_reply_repaired_by_reask(server: FakeOpenAIServer, client: OpenAIChatClient) -> None:
    server.script([Fault.malformed("{not json"), Reply(VALID)])
    result = await client.complete(MESSAGES, Critique)
    assert result.parsed.verdict == "oppose"
    assert [a.outcome for a in result.attempts] == ["invalid_reply", "ok"]
    assert [a.kind for a in result.attempts] == ["first", "reask"]
    assert result.attempts[0].raw_reply == "{not json"
    assert "Invalid JSON" in (result.attempts[0].error or "")
    assert server.request_count == len(result.attempts) == 2
    # The re-ask carries the bad reply and quotes the validation error.
    sent = server.requests[1].body["messages"]
    assert sent[-2] == {"role": "assistant", "content": "{not json"}
    assert sent[-1]["role"] == "user" and "Invalid JSON" in sent[-1]["content"]
    assert result.attempts[1].messages_sent == 4
    assert [m.role for m in result.messages] == ["system", "user", "assistant", "user"]


async def test_schema_violation_reask_names_the_field(server: FakeOpenAIServer, client: OpenAIChatClient) -> None:
    bad = json.dumps({"verdict": "maybe", "confidence": 3, "points": [], "concede": False})
    server.script([Reply(bad), Reply(VALID)])
    result = await client.complete(MESSAGES, Critique)
    reask = server.requests[1].body["messages"][-1]["content"]
    assert "verdict" in reask and "confidence" in reask
    assert result.attempts[0].outcome == "invalid_reply"


async def test_reasks_exhausted(server: FakeOpenAIServer) -> None:
    client = client_for(server.base_url, max_reasks=2)
    server.script([Fault.malformed(), Fault.malformed(), Fault.malformed()])
    with pytest.raises(CompletionFailed) as info:
        await client.complete(MESSAGES, Critique)
    await client.aclose()
    err = info.value
    assert isinstance(err, ModelEndpointError)
    assert str(err).startswith("model reply failed validation after 2 re-asks: Invalid JSON")
    assert "\n" not in str(err)
    assert [a.outcome for a in err.attempts] == ["invalid_reply"] * 3
    assert [a.kind for a in err.attempts] == ["first", "reask", "reask"]
    assert server.request_count == len(err.attempts) == 3


async def test_429_retry_after_is_honoured(server: FakeOpenAIServer, client: OpenAIChatClient) -> None:
    server.script([Fault.status(429, retry_after=0.3)])
    result = await client.complete(MESSAGES, Critique)
    assert [a.outcome for a in result.attempts] == ["http_error", "ok"]
    assert result.attempts[0].http_status == 429
    assert [a.kind for a in result.attempts] == ["first", "transport_retry"]
    first, second = server.requests
    assert second.t - first.t >= 0.3
    assert server.request_count == len(result.attempts)


async def test_429_retry_after_ms_is_honoured(server: FakeOpenAIServer, client: OpenAIChatClient) -> None:
    server.script([Fault.status(429, retry_after_ms=250)])
    result = await client.complete(MESSAGES, Critique)
    first, second = server.requests
    assert second.t - first.t >= 0.25
    assert len(result.attempts) == 2


async def test_retry_after_above_limit_fails_without_waiting(server: FakeOpenAIServer) -> None:
    client = client_for(server.base_url, max_retry_after_s=1.0)
    server.script([Fault.status(429, retry_after=30)])
    started = time.monotonic()
    with pytest.raises(CompletionFailed) as info:
        await client.complete(MESSAGES, Critique)
    await client.aclose()
    assert time.monotonic() - started < 1.0
    assert "asked to retry after 30 s" in str(info.value)
    assert server.request_count == len(info.value.attempts) == 1


async def test_500_then_success(server: FakeOpenAIServer, client: OpenAIChatClient) -> None:
    server.script([Fault.status(500), Fault.status(503)])
    result = await client.complete(MESSAGES, Critique)
    assert [(a.outcome, a.http_status) for a in result.attempts] == [
        ("http_error", 500),
        ("http_error", 503),
        ("ok", None),
    ]
    assert server.request_count == len(result.attempts)


async def test_5xx_exhausts_transport_attempts(server: FakeOpenAIServer) -> None:
    client = client_for(server.base_url, max_transport_attempts=3)
    server.script([Fault.status(502)] * 5)
    with pytest.raises(CompletionFailed) as info:
        await client.complete(MESSAGES, Critique)
    await client.aclose()
    assert str(info.value).startswith(
        f"model endpoint {server.base_url} kept failing after 3 attempt(s): 502 Bad Gateway"
    )
    assert server.request_count == len(info.value.attempts) == 3


async def test_timeout_then_success(server: FakeOpenAIServer) -> None:
    client = client_for(server.base_url, timeout_s=0.3)
    server.script([Fault.delay(1.0)])
    result = await client.complete(MESSAGES, Critique)
    await client.aclose()
    assert [a.outcome for a in result.attempts] == ["timeout", "ok"]
    assert result.attempts[0].latency_ms >= 300
    assert server.request_count == len(result.attempts)


async def test_dropped_connection_then_success(server: FakeOpenAIServer, client: OpenAIChatClient) -> None:
    server.script([Fault.drop()])
    result = await client.complete(MESSAGES, Critique)
    assert [a.outcome for a in result.attempts] == ["connection_error", "ok"]
    assert server.request_count == len(result.attempts)


async def test_transport_retry_then_invalid_then_reask(server: FakeOpenAIServer, client: OpenAIChatClient) -> None:
    server.script([Fault.status(500), Fault.malformed(), Fault.drop(), Reply(VALID)])
    result = await client.complete(MESSAGES, Critique)
    assert [(a.kind, a.outcome) for a in result.attempts] == [
        ("first", "http_error"),
        ("transport_retry", "invalid_reply"),
        ("reask", "connection_error"),
        ("transport_retry", "ok"),
    ]
    assert [a.n for a in result.attempts] == [1, 2, 3, 4]
    assert server.request_count == len(result.attempts)


@pytest.mark.parametrize(
    ("status", "phrase"),
    [(400, "400 Bad Request"), (401, "401 Unauthorized"), (404, "404 Not Found")],
)
async def test_client_errors_not_retried(
    server: FakeOpenAIServer, client: OpenAIChatClient, status: int, phrase: str
) -> None:
    server.script([Fault.status(status)])
    with pytest.raises(CompletionFailed) as info:
        await client.complete(MESSAGES, Critique)
    message = str(info.value)
    assert message.startswith(f"model endpoint {server.base_url} refused the request: {phrase}")
    assert "\n" not in message
    assert server.request_count == len(info.value.attempts) == 1
    assert info.value.attempts[0].http_status == status


@pytest.mark.parametrize(
    "fault",
    [
        Fault.raw("<html>gateway page</html>"),
        Fault.raw('{"detail": "not here"}', content_type="application/json"),
        Fault.raw("{broken", content_type="application/json"),
    ],
)
async def test_reply_that_is_not_a_completion(server: FakeOpenAIServer, client: OpenAIChatClient, fault: Fault) -> None:
    server.script([fault])
    with pytest.raises(CompletionFailed) as info:
        await client.complete(MESSAGES, Critique)
    message = str(info.value)
    assert message.startswith(f"model endpoint {server.base_url} did not return a chat completion")
    assert "\n" not in message
    [attempt] = info.value.attempts
    assert attempt.outcome == "http_error" and attempt.http_status == 200
    assert server.request_count == 1


def test_retry_after_header_forms() -> None:
    def exc(headers: dict[str, str]) -> Any:
        return SimpleNamespace(response=SimpleNamespace(headers=headers))

    assert retry_after_s(exc({"retry-after": "2.5"})) == 2.5
    assert retry_after_s(exc({"retry-after-ms": "300", "retry-after": "9"})) == 0.3
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 < (retry_after_s(exc({"retry-after": later})) or 0) <= 30
    assert retry_after_s(exc({"retry-after": "soon"})) is None
    assert retry_after_s(exc({})) is None
    assert retry_after_s(RuntimeError()) is None


async def test_broken_responder_is_a_server_error(server: FakeOpenAIServer) -> None:
    def broken(body: dict[str, Any]) -> str:
        raise KeyError("oops")

    server.responder = broken
    client = client_for(server.base_url, max_transport_attempts=2)
    with pytest.raises(CompletionFailed) as info:
        await client.complete(MESSAGES, Critique)
    await client.aclose()
    assert "kept failing after 2 attempt(s): 500 Internal Server Error" in str(info.value)
    assert [r.fault for r in server.requests] == ["responder_error"] * 2


def closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


async def test_a_refused_connection_is_reported_at_once_not_retried() -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1"
    client = client_for(url, max_transport_attempts=3)
    started = time.monotonic()
    with pytest.raises(CompletionFailed) as info:
        await client.complete(MESSAGES, Critique)
    await client.aclose()
    elapsed = time.monotonic() - started
    message = str(info.value)
    assert message.startswith(f"model endpoint {url} unreachable: ")
    assert "\n" not in message
    assert [a.outcome for a in info.value.attempts] == ["connection_error"]
    assert elapsed < 1.0


async def test_an_unknown_host_is_reported_at_once_not_retried() -> None:
    url = "http://no-such-host.invalid/v1"
    client = client_for(url, max_transport_attempts=3)
    with pytest.raises(CompletionFailed) as info:
        await client.complete(MESSAGES, Critique)
    await client.aclose()
    assert str(info.value).startswith(f"model endpoint {url} unreachable: ")
    assert len(info.value.attempts) == 1


@pytest.mark.parametrize("status", [401, 403])
async def test_a_rejected_key_is_not_retried(server: FakeOpenAIServer, status: int) -> None:
    client = client_for(server.base_url, max_transport_attempts=3)
    server.script([Fault.status(status), Reply(VALID)])
    with pytest.raises(CompletionFailed) as info:
        await client.complete(MESSAGES, Critique)
    await client.aclose()
    assert f"refused the request: {status}" in str(info.value)
    assert len(server.requests) == 1


async def test_missing_usage_is_unknown_not_zero(server: FakeOpenAIServer) -> None:
    client = client_for(server.base_url, prices={"fake-model": (1.0, 2.0)})
    server.script([Reply(VALID, usage=False)])
    result = await client.complete(MESSAGES, Critique)
    await client.aclose()
    usage = result.attempts[0].usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (None, None, None)
    assert result.attempts[0].cost_usd is None
    assert result.cost_usd is None and result.usage.total_tokens is None


async def test_cost_from_prices(server: FakeOpenAIServer) -> None:
    client = client_for(server.base_url, prices={"fake-model": (3.0, 15.0)})
    server.script([Fault.malformed(), Reply(VALID)])
    result = await client.complete(MESSAGES, Critique)
    await client.aclose()
    for attempt in result.attempts:
        usage = attempt.usage
        assert usage.prompt_tokens and usage.completion_tokens
        expected = (usage.prompt_tokens * 3.0 + usage.completion_tokens * 15.0) / 1e6
        assert attempt.cost_usd == pytest.approx(expected)
    assert result.cost_usd == pytest.approx(sum(a.cost_usd or 0 for a in result.attempts))
    # A model without a price has unknown cost.
    other = client_for(server.base_url, prices={"fake-model": (3.0, 15.0)})
    result = await other.complete(MESSAGES, Critique, model="unpriced")
    await other.aclose()
    assert result.attempts[0].cost_usd is None


@pytest.mark.parametrize("mode", ["json_object", "prompt"])
async def test_schema_in_prompt_modes(server: FakeOpenAIServer, mode: str) -> None:
    client = client_for(server.base_url, structured_output=mode)
    result = await client.complete(MESSAGES, Critique)
    await client.aclose()
    assert isinstance(result.parsed, Critique)
    body = server.requests[0].body
    if mode == "json_object":
        assert body["response_format"] == {"type": "json_object"}
    else:
        assert "response_format" not in body
    system = body["messages"][0]
    assert system["role"] == "system" and system["content"].startswith("You are a critic.")
    assert SCHEMA_MARKER_OPEN in system["content"] and SCHEMA_MARKER_CLOSE in system["content"]
    assert len(body["messages"]) == 2  # appended to the system message, not a new one
    assert result.messages[0].content == system["content"]


async def test_prompt_mode_without_system_message_adds_one(server: FakeOpenAIServer) -> None:
    client = client_for(server.base_url, structured_output="prompt")
    result = await client.complete([ChatMessage(role="user", content="hi")], Critique)
    await client.aclose()
    roles = [m["role"] for m in server.requests[0].body["messages"]]
    assert roles == ["system", "user"] and isinstance(result.parsed, Critique)


async def test_max_output_tokens_sent(server: FakeOpenAIServer) -> None:
    client = client_for(server.base_url, max_output_tokens=123, sampling={})
    await client.complete(MESSAGES, Critique)
    await client.aclose()
    body = server.requests[0].body
    assert body["max_tokens"] == 123 and "temperature" not in body


async def test_limiter_sees_every_attempt(server: FakeOpenAIServer) -> None:
    limiter = RateLimiter(max_concurrency=2, rpm=1000, tpm=1_000_000, window_s=1.0)
    client = OpenAIChatClient(
        EndpointConfig(base_url=server.base_url, model="m", backoff_initial_s=0.01), limiter=limiter
    )
    server.script([Fault.status(500), Fault.malformed()])
    results = await asyncio.gather(*(client.complete(MESSAGES, Critique) for _ in range(5)))
    await client.aclose()
    attempts = sum(len(r.attempts) for r in results)
    stats = limiter.stats()
    assert stats.requests == attempts == server.request_count == 7
    assert stats.in_flight == 0 and stats.max_in_flight <= 2
    # Failed calls count no tokens; successful ones count what the server reported.
    reported = sum(a.usage.total_tokens or 0 for r in results for a in r.attempts)
    assert stats.tokens == reported


@pytest.mark.parametrize(
    ("configured", "served", "key"),
    [
        ("gpt-4o-mini", "gpt-4o-mini", "gpt-4o-mini"),
        ("gpt-4o-mini", None, "gpt-4o-mini"),
        ("gpt-4o-mini", "gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("gpt-4o-mini", "gpt-4o", "gpt-4o"),
        ("gpt-4o-mini", "llama-3-8b", None),
        ("smol", "/models/smol.gguf", "smol"),
    ],
)
def test_a_reply_is_priced_by_the_model_the_server_says_answered(configured, served, key) -> None:  # type: ignore[no-untyped-def]
    from debate.llm.client import price_key

    prices = {"gpt-4o-mini": (0.15, 0.6), "gpt-4o": (2.5, 10.0), "smol": (0.0, 0.0)}
    assert price_key(configured, served, prices) == key


async def test_attempts_record_the_served_model_and_its_price(server: FakeOpenAIServer) -> None:
    client = client_for(server.base_url, prices={"fake-model": (1.0, 2.0), "other-model": (10.0, 20.0)})
    server.script([Reply(VALID)])
    result = await client.complete(MESSAGES, Critique, model="other-model")
    await client.aclose()
    [attempt] = result.attempts
    assert (attempt.model, attempt.served_model) == ("other-model", "other-model")
    assert attempt.cost_usd is not None and attempt.cost_usd > 0


async def test_sampling_defaults_and_a_calls_overrides_reach_the_server(server: FakeOpenAIServer) -> None:
    client = client_for(server.base_url, sampling={"temperature": 0.0, "top_p": 0.9, "seed": None})
    server.script([Reply(VALID), Reply(VALID)])
    await client.complete(MESSAGES, Critique)
    await client.complete(MESSAGES, Critique, sampling={"temperature": 0.7, "seed": 11, "presence_penalty": 0.5})
    await client.aclose()
    first, second = (r.body for r in server.requests)
    assert (first["temperature"], first["top_p"], "seed" in first) == (0.0, 0.9, False)
    assert (second["temperature"], second["top_p"], second["seed"], second["presence_penalty"]) == (0.7, 0.9, 11, 0.5)
