"""Requests that fit any endpoint: bounded re-asks, replies cut at their cap, prompts trimmed to
the context window (and a clear failure when even the smallest prompt cannot fit)."""

from __future__ import annotations

import json
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field
from sqlalchemy import select
from test_debate_openai import _debate
from test_debate_openai import _settings as openai_settings

from debate.core.calls import ChatMessage, CompletionFailed, PromptVariant
from debate.engine.transcript import load_transcript, render
from debate.llm.client import EndpointConfig, OpenAIChatClient
from debate.llm.fake import FakeOpenAIServer, Fault, Reply
from debate.llm.structured import REASK_QUOTE_CHARS, reask_text
from debate.store import tables as t
from debate.store.db import session_scope

SOD1 = "h-9878fd9b"


class Critique(BaseModel):
    verdict: Literal["support", "oppose", "unsure"]
    confidence: float = Field(ge=0, le=1)
    points: list[str]


VALID = Critique(verdict="support", confidence=0.5, points=["a"]).model_dump_json()
MESSAGES = [ChatMessage(role="system", content="You are a critic."), ChatMessage(role="user", content="Go. " * 50)]


@pytest.fixture
def server():  # type: ignore[no-untyped-def]
    with FakeOpenAIServer() as s:
        yield s


def client_for(url: str, **config: Any) -> OpenAIChatClient:
    return OpenAIChatClient(EndpointConfig(base_url=url, model="m", api_key="k", timeout_s=5.0, **config))


def _chars(body: dict[str, Any]) -> int:
    return sum(len(m["content"]) for m in body["messages"])


# ---------------------------------------------------------------- replies cut at their cap


async def test_a_reply_cut_twice_fails_naming_the_cap_and_its_setting(server: FakeOpenAIServer) -> None:
    client = client_for(server.base_url, role_max_output_tokens={"critic": 50}, max_output_tokens=900, max_reasks=2)
    server.script(
        [
            Reply('{"verdict": "support", "points": ["a a a a', finish_reason="length"),
            Reply('{"ver', finish_reason="length"),
        ]
    )
    with pytest.raises(CompletionFailed) as info:
        await client.complete(MESSAGES, Critique, role="critic")
    await client.aclose()
    message = str(info.value)
    assert "reply cut at 50 output tokens" in message
    assert "[openai] role_max_output_tokens.critic" in message
    assert "\n" not in message
    # Re-asked once for brevity (not twice, though two re-asks were allowed), with the cap sent.
    assert len(server.requests) == 2
    assert server.requests[0].body["max_tokens"] == 50
    assert "cut off" in server.requests[1].body["messages"][-1]["content"]
    assert [a.error for a in info.value.attempts] == ["reply cut at 50 output tokens"] * 2


async def test_a_reply_cut_once_is_re_asked_for_brevity_and_then_used(server: FakeOpenAIServer) -> None:
    client = client_for(server.base_url, max_output_tokens=64)
    server.script([Reply('{"verdict": "support", "poi', finish_reason="length"), Reply(VALID)])
    result = await client.complete(MESSAGES, Critique, role="judge")
    await client.aclose()
    assert result.parsed.verdict == "support"
    assert [a.kind for a in result.attempts] == ["first", "reask"]


# ---------------------------------------------------------------- re-asks stay small


async def test_a_re_ask_is_no_longer_than_the_first_ask_plus_a_bounded_quote(server: FakeOpenAIServer) -> None:
    client = client_for(server.base_url, max_reasks=2)
    huge = '{"verdict": "support", "points": ["' + "the same words again " * 400  # 8,000 chars, unterminated
    server.script([Fault.malformed(huge), Fault.malformed(huge), Reply(VALID)])
    result = await client.complete(MESSAGES, Critique)
    await client.aclose()
    first, second, third = (_chars(r.body) for r in server.requests)
    # The quote (and its "[... more characters]" note) plus the re-ask's own words, at most.
    bound = REASK_QUOTE_CHARS + 40 + len(reask_text("e" * 160))
    assert first < second <= first + bound
    assert third <= first + bound  # the second re-ask replaces the first, it does not pile up
    assert len(server.requests[2].body["messages"]) == len(MESSAGES) + 2
    assert result.parsed.verdict == "support"


# ---------------------------------------------------------------- prompts fitted to the window


async def test_fit_takes_the_largest_variant_inside_the_window() -> None:
    client = client_for("http://127.0.0.1:9/v1", context_tokens=400, max_output_tokens=100, max_reasks=0)
    big = PromptVariant([ChatMessage(role="user", content="word " * 400)])
    small = PromptVariant([ChatMessage(role="user", content="word " * 100)], evidence_dropped=("E3", "E2"))
    chosen, fit = await client.fit(iter([big, small]), Critique, role="critic")
    await client.aclose()
    assert chosen is small and fit is not None
    assert fit.window == 400 and fit.window_source == "configured" and fit.counted == "estimate"
    assert fit.prompt_tokens + fit.reply_tokens <= 400 < fit.full_prompt_tokens + fit.reply_tokens
    assert fit.evidence_dropped == ["E3", "E2"]


async def test_the_window_and_the_counts_come_from_a_llama_cpp_server() -> None:
    # /props says 900 (the smaller of it and the configured 4,000 counts); /tokenize counts.
    with FakeOpenAIServer(n_ctx=900) as server:
        client = client_for(server.base_url, context_tokens=4000, max_output_tokens=100, max_reasks=0)
        big = PromptVariant([ChatMessage(role="user", content="word " * 1000)])
        small = PromptVariant([ChatMessage(role="user", content="word " * 400)], evidence_dropped=("E2",))
        chosen, fit = await client.fit(iter([big, small]), Critique, role="judge")
        await client.aclose()
    assert chosen is small and fit is not None
    assert (fit.window, fit.window_source, fit.counted) == (900, "server", "tokenizer")
    assert fit.prompt_tokens == 2000 // 4 + 2 * 8  # the server's count plus the chat template's overhead


def _settings(db_url: str, base_url: str, **openai: object):  # type: ignore[no-untyped-def]
    return openai_settings(db_url, base_url, **{"timeout_s": 5.0, "max_reasks": 1, **openai})


def test_a_prompt_over_the_window_drops_its_lowest_ranked_evidence(sample_engine, db_url) -> None:  # type: ignore[no-untyped-def]
    caps = {"proposer": 200, "critic": 200, "judge": 200}
    with FakeOpenAIServer() as server:
        run_id = _debate(
            sample_engine, _settings(db_url, server.base_url, context_tokens=1800, role_max_output_tokens=caps)
        )
        sent = [r.body["messages"][-1]["content"] for r in server.requests]
    with session_scope(sample_engine) as s:
        run = s.get(t.Run, run_id)
        assert run is not None and run.status == "done", run.error
        transcript = load_transcript(s, run_id)
        n_evidence = len(s.execute(select(t.Evidence.eid).where(t.Evidence.run_id == run_id)).all())
    lowest = f"E{n_evidence}"
    proposer = transcript.rounds[0].proposer
    assert proposer is not None and proposer.fit is not None
    fit = proposer.fit
    assert fit.evidence_dropped and fit.evidence_dropped[0] == lowest  # the lowest-ranked goes first
    assert fit.prompt_tokens + fit.reply_tokens <= fit.window == 1800 < fit.full_prompt_tokens + fit.reply_tokens
    assert f'<evidence id="{lowest}"' not in sent[0] and '<evidence id="E1"' in sent[0]
    # Every rendering says what was left out.
    for fmt in ("text", "md", "html", "json"):
        shown = render(transcript, fmt)  # type: ignore[arg-type]
        assert lowest in shown and ("dropped" in shown or "evidence_dropped" in shown), fmt


def test_a_prompt_that_cannot_fit_fails_with_one_line_naming_the_window(sample_engine, db_url) -> None:  # type: ignore[no-untyped-def]
    with FakeOpenAIServer() as server:
        run_id = _debate(sample_engine, _settings(db_url, server.base_url, context_tokens=900))
        assert server.request_count == 0  # refused here, before anything was sent
    with session_scope(sample_engine) as s:
        run = s.get(t.Run, run_id)
        assert run is not None
        status, error = run.status, run.error or ""
    assert status == "failed"
    assert "\n" not in error
    assert "does not fit the context window" in error and "900 tokens" in error and "needs" in error


async def test_a_context_overflow_from_the_server_is_one_clear_line(server: FakeOpenAIServer) -> None:
    # The window is unknown here (no /props, nothing configured): the server's 400 says it.
    llama = {
        "error": {
            "code": 400,
            "message": "request (3031 tokens) exceeds the available context size (2048 tokens), try increasing it",
            "type": "exceed_context_size_error",
            "n_prompt_tokens": 3031,
            "n_ctx": 2048,
        }
    }
    client = client_for(server.base_url)
    server.script([Fault.raw(json.dumps(llama), status=400, content_type="application/json")])
    with pytest.raises(CompletionFailed) as info:
        await client.complete(MESSAGES, Critique)
    await client.aclose()
    message = str(info.value)
    assert "\n" not in message and len(server.requests) == 1
    assert "needs 3,031 tokens but the context window is 2,048 tokens" in message
    assert "[openai] context_tokens" in message
