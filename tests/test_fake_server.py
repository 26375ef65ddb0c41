"""The fake OpenAI-compatible server: concurrency, scripting, schema replies, standalone CLI."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import signal
import subprocess
import sys
import time
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field, TypeAdapter

import debate.llm.client
import debate.llm.fake
from debate.core.calls import ChatClient, ChatMessage, CompletionFailed
from debate.llm.client import EndpointConfig, OpenAIChatClient, strict_json_schema
from debate.llm.fake import (
    FakeOpenAIServer,
    Fault,
    InstantChatClient,
    Reply,
    example_from_schema,
    schema_from_request,
    schema_responder,
)

# -- schema_responder against pydantic models ----------------------------------------------------


class Stance(StrEnum):
    pro = "pro"
    con = "con"


class Evidence(BaseModel):
    source: str = Field(min_length=12, max_length=40)
    weight: float = Field(gt=1.0, lt=2.0)
    year: int = Field(ge=1990, le=2030)
    tags: list[str] = Field(min_length=3)


class Argument(BaseModel):
    claim: str
    stance: Stance
    evidence: list[Evidence]
    rebuttal: Argument | None = None


class JudgeVerdict(BaseModel):
    winner: Literal["proposer", "critic", "tie"]
    score: float = Field(ge=0, le=10)
    negative: float = Field(le=-3)
    confidence: float = Field(ge=0.6, le=0.9)
    rounds: int = Field(ge=1)
    concede: bool
    arguments: list[Argument]
    notes: str | None
    scores: dict[str, float]
    pair: tuple[int, str]
    when: datetime
    day: date
    maybe_list: list[int] | None = None


class Flat(BaseModel):
    name: str
    count: int
    ratio: float


MODELS: list[type[BaseModel]] = [JudgeVerdict, Argument, Evidence, Flat]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_schema_responder_validates_plain_and_strict(model: type[BaseModel]) -> None:
    for schema in (model.model_json_schema(), strict_json_schema(model)):
        instance = example_from_schema(schema)
        model.model_validate(instance)
        model.model_validate_json(json.dumps(instance))


def test_schema_responder_choices_are_deterministic_and_conservative() -> None:
    verdict = JudgeVerdict.model_validate(example_from_schema(strict_json_schema(JudgeVerdict)))
    assert verdict.winner == "proposer"  # first enum value
    assert verdict.concede is False
    assert verdict.score == 0.5 and verdict.confidence == pytest.approx(0.75)
    assert verdict.negative == -3 and verdict.rounds == 1
    assert verdict.notes is not None  # anyOf picks the first non-null branch
    assert len(verdict.arguments) == 1 and len(verdict.arguments[0].evidence[0].tags) == 3
    assert example_from_schema(strict_json_schema(JudgeVerdict)) == example_from_schema(
        strict_json_schema(JudgeVerdict)
    )


def test_schema_responder_for_type_adapter_list() -> None:
    schema = TypeAdapter(list[Flat]).json_schema()
    TypeAdapter(list[Flat]).validate_python(example_from_schema(schema))


def test_schema_markers_match_the_client() -> None:
    assert debate.llm.fake.SCHEMA_MARKER_OPEN == debate.llm.client.SCHEMA_MARKER_OPEN
    assert debate.llm.fake.SCHEMA_MARKER_CLOSE == debate.llm.client.SCHEMA_MARKER_CLOSE


def test_schema_from_request_sources() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    body = {"response_format": fmt}
    assert schema_from_request(body) == schema
    marked = {
        "messages": [
            {
                "role": "system",
                "content": f"Be terse.\n<json-schema>\n{json.dumps(schema)}\n</json-schema>",
            },
            {"role": "user", "content": "go"},
        ]
    }
    assert schema_from_request(marked) == schema
    assert json.loads(schema_responder(marked)) == {"a": 0}
    assert schema_from_request({"messages": [{"role": "user", "content": "hi"}]}) is None
    assert schema_responder({"messages": []}) == "{}"


# -- the HTTP server -----------------------------------------------------------------------------


class Ping(BaseModel):
    ok: bool


async def raw_post(port: int, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """A minimal HTTP/1.1 client, so the measurement is of the server, not of a client library."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    payload = json.dumps(body).encode()
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        f"connection: close\r\ncontent-length: {len(payload)}\r\n\r\n"
    )
    writer.write(head.encode() + payload)
    await writer.drain()
    raw = await reader.read()  # the server closes after answering
    writer.close()
    status_line, _, rest = raw.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), json.loads(rest)


async def test_200_concurrent_requests_with_latency() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "ping"}]}
    with FakeOpenAIServer(latency_s=0.5) as server:
        started = time.perf_counter()
        replies = await asyncio.gather(*(raw_post(server.port, body) for _ in range(200)))
        elapsed = time.perf_counter() - started
        print(f"\n200 concurrent raw requests at 0.5 s latency: {elapsed:.2f} s")
        assert all(status == 200 for status, _ in replies)
        assert server.request_count == 200 and server.max_in_flight >= 150
        assert elapsed < 2.0


async def test_concurrent_completions_through_client() -> None:
    # Load through the real client is bounded by the SDK's per-call CPU (~4-6 ms), not by the
    # server, and here the server shares the process (and the GIL) with the client; 100 keeps
    # the test short.
    with FakeOpenAIServer(latency_s=0.5) as server:
        client = OpenAIChatClient(EndpointConfig(base_url=server.base_url, model="m"))
        messages = [ChatMessage(role="user", content="ping")]
        started = time.perf_counter()
        results = await asyncio.gather(*(client.complete(messages, Ping) for _ in range(100)))
        elapsed = time.perf_counter() - started
        await client.aclose()
        print(f"\n100 concurrent completions at 0.5 s latency: {elapsed:.2f} s")
        assert all(len(r.attempts) == 1 for r in results)
        assert server.request_count == 100 and server.max_in_flight >= 50
        assert elapsed < 5.0


async def test_responder_sees_whole_request() -> None:
    def by_role(body: dict[str, Any]) -> str:
        system = body["messages"][0]["content"]
        if system.startswith("You are the judge"):
            return json.dumps({"ok": True})
        return schema_responder(body)

    with FakeOpenAIServer.from_function(by_role) as server:
        client = OpenAIChatClient(EndpointConfig(base_url=server.base_url, model="m"))

        def conversation(system: str) -> list[ChatMessage]:
            return [
                ChatMessage(role="system", content=system),
                ChatMessage(role="user", content="x"),
            ]

        judge = await client.complete(conversation("You are the judge."), Ping)
        critic = await client.complete(conversation("You are the critic."), Ping)
        await client.aclose()
    assert judge.parsed.ok is True and critic.parsed.ok is False


async def test_async_responder() -> None:
    async def slow(body: dict[str, Any]) -> str:
        await asyncio.sleep(0.01)
        return '{"ok": true}'

    with FakeOpenAIServer(slow) as server:
        client = OpenAIChatClient(EndpointConfig(base_url=server.base_url, model="m"))
        result = await client.complete([ChatMessage(role="user", content="x")], Ping)
        await client.aclose()
    assert result.parsed.ok is True


JSON_HEADERS = {"content-type": "application/json"}


def post(server: FakeOpenAIServer, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        conn.request("POST", "/v1/chat/completions", json.dumps(body), JSON_HEADERS)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_script_order_log_and_reset() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hello there"}]}
    with FakeOpenAIServer() as server:
        server.script(
            [
                Fault.status(429, retry_after=2, retry_after_ms=1500),
                Reply("plain text", usage=False),
                Fault.malformed("{oops"),
            ]
        )
        status, headers, raw = post(server, body)
        assert status == 429
        assert headers["retry-after"] == "2" and headers["retry-after-ms"] == "1500"
        assert json.loads(raw)["error"]["type"] == "rate_limit_error"

        status, _, raw = post(server, body)
        reply = json.loads(raw)
        assert status == 200 and "usage" not in reply
        assert reply["choices"][0]["message"]["content"] == "plain text"
        assert reply["choices"][0]["finish_reason"] == "stop"
        assert reply["object"] == "chat.completion"

        status, _, raw = post(server, body)
        assert json.loads(raw)["choices"][0]["message"]["content"] == "{oops"

        status, _, raw = post(server, body)  # script used up: the responder answers
        reply = json.loads(raw)
        assert reply["choices"][0]["message"]["content"] == "{}"
        usage = reply["usage"]
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0

        log = server.requests
        assert [(r.status, r.fault) for r in log] == [
            (429, "status:429"),
            (200, None),
            (200, "malformed"),
            (200, None),
        ]
        assert all(r.body == body for r in log)
        assert [r.t for r in log] == sorted(r.t for r in log)
        server.script([Fault.drop()])
        server.reset()
        assert server.request_count == 0 and server.pending_script == 0


def test_drop_closes_without_response() -> None:
    with FakeOpenAIServer() as server:
        server.script([Fault.drop()])
        with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
            post(server, {"model": "m", "messages": []})
        assert server.requests[0].fault == "drop"
        status, _, _ = post(server, {"model": "m", "messages": []})  # the server is fine after it
        assert status == 200


def test_models_route() -> None:
    with FakeOpenAIServer() as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        conn.request("GET", "/v1/models")
        response = conn.getresponse()
        data = json.loads(response.read())
        conn.close()
    assert response.status == 200 and data["object"] == "list" and data["data"][0]["id"]


def test_stop_abandons_slow_requests_quickly() -> None:
    server = FakeOpenAIServer().start()
    server.script([Fault.delay(30)])
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("POST", "/v1/chat/completions", "{}", {"content-type": "application/json"})
    time.sleep(0.1)
    started = time.monotonic()
    server.stop()
    conn.close()
    assert time.monotonic() - started < 2.0


def test_standalone_cli(tmp_path: Path) -> None:
    log = tmp_path / "requests.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "debate.llm.fake", "--port", "0", "--log", str(log)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("READY http://127.0.0.1:") and line.endswith("/v1")
        port = int(line.split(":")[2].split("/")[0])
        for text in ("first", "second"):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            body = {"model": "m", "messages": [{"role": "user", "content": text}]}
            conn.request("POST", "/v1/chat/completions", json.dumps(body), JSON_HEADERS)
            assert conn.getresponse().status == 200
            conn.close()
        entries = [json.loads(x) for x in log.read_text().splitlines()]
        assert len(entries) == 2
        assert {"t", "status", "fault", "last_message_sha256"} <= set(entries[0])
        assert entries[0]["status"] == 200 and entries[0]["fault"] is None
        assert entries[0]["last_message_sha256"] != entries[1]["last_message_sha256"]
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
    assert code == 0


async def test_instant_client_answers_without_http() -> None:
    client = InstantChatClient()
    assert isinstance(client, ChatClient)
    messages = [ChatMessage(role="system", content="judge"), ChatMessage(role="user", content="x")]
    result = await client.complete(messages, JudgeVerdict, model="judge-model")
    assert isinstance(result.parsed, JudgeVerdict) and result.parsed.concede is False
    [attempt] = result.attempts
    assert attempt.outcome == "ok" and attempt.model == "judge-model"
    assert attempt.usage.total_tokens and attempt.messages_sent == 2
    assert result.messages == messages and client.calls == 1

    broken = InstantChatClient(lambda body: "{}")
    with pytest.raises(CompletionFailed) as info:
        await broken.complete(messages, JudgeVerdict)
    assert info.value.attempts[0].outcome == "invalid_reply"
    await client.aclose()
