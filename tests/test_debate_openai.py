"""The `openai` backend drives real debates through the SDK against a fake endpoint over HTTP.

Every fault the endpoint can throw (a malformed reply, 429 with Retry-After, a 500, a timeout,
a dropped connection) is survived: the run completes, each attempt is recorded under its turn,
and the server saw exactly as many requests as the transcript records attempts.
"""

from __future__ import annotations

import asyncio
import re
import time

import pytest
from sqlalchemy import func, select

from debate.core.config import load_settings
from debate.engine.runs import Executor, create_runs
from debate.llm.fake import FakeOpenAIServer, Fault
from debate.store import tables as t
from debate.store.db import session_scope

SOD1 = "h-9878fd9b"


def _settings(db_url: str, base_url: str, **openai: object):  # type: ignore[no-untyped-def]
    return load_settings(
        database_url=db_url,
        openai={
            "base_url": base_url,
            "api_key": "test-key",
            "structured_output": "json_schema",
            "timeout_s": 2.0,
            "max_transport_attempts": 4,
            **openai,
        },
    )


def _debate(engine, settings, hyp=SOD1, *, rounds=1, judges=1) -> str:  # type: ignore[no-untyped-def]
    [run_id] = create_runs(engine, settings, [hyp], backend="openai", rounds=rounds, judges=judges)

    async def go() -> None:
        async with Executor(engine, settings, backend="openai") as ex:
            await ex.execute(run_id)

    asyncio.run(go())
    return run_id


def _attempts(engine, run_id: str) -> list[t.Attempt]:  # type: ignore[no-untyped-def]
    with session_scope(engine) as s:
        return list(
            s.execute(
                select(t.Attempt)
                .where(t.Attempt.run_id == run_id)
                .order_by(t.Attempt.round, t.Attempt.role, t.Attempt.seat, t.Attempt.n)
            ).scalars()
        )


def _run(engine, run_id: str) -> t.Run:  # type: ignore[no-untyped-def]
    with session_scope(engine) as s:
        run = s.get(t.Run, run_id)
        assert run is not None
        return run


def test_a_clean_debate_records_one_attempt_per_turn(sample_engine, db_url):
    with FakeOpenAIServer() as server:
        settings = _settings(db_url, server.base_url)
        run_id = _debate(sample_engine, settings, rounds=2, judges=3)
        run = _run(sample_engine, run_id)
        assert run.status == "done" and run.score is not None
        with session_scope(sample_engine) as s:
            turns = s.execute(select(t.Turn.round, t.Turn.role, t.Turn.seat).where(t.Turn.run_id == run_id)).all()
        # Never-conceding schema replies: 2 rounds x (proposer, critic) + 3 judges.
        assert sorted(turns) == [
            (1, "critic", 0),
            (1, "proposer", 0),
            (2, "critic", 0),
            (2, "judge", 0),
            (2, "judge", 1),
            (2, "judge", 2),
            (2, "proposer", 0),
        ]
        attempts = _attempts(sample_engine, run_id)
        assert server.request_count == len(attempts) == 7
        # The run's totals are its attempts' sums.
        assert run.prompt_tokens is not None and run.prompt_tokens > 0
        assert run.prompt_tokens == sum(a.prompt_tokens or 0 for a in attempts)
        assert run.completion_tokens == sum(a.completion_tokens or 0 for a in attempts)


@pytest.mark.parametrize(
    ("fault", "outcome"),
    [
        (Fault.malformed("{not json"), "invalid_reply"),
        (Fault.status(429, retry_after=0.3), "http_error"),
        (Fault.status(500), "http_error"),
        (Fault.delay(3.0), "timeout"),
        (Fault.drop(), "connection_error"),
    ],
    ids=["malformed-json", "429-retry-after", "500", "timeout", "dropped-connection"],
)
def test_each_fault_is_survived_and_recorded(sample_engine, db_url, fault, outcome):
    with FakeOpenAIServer() as server:
        settings = _settings(db_url, server.base_url, timeout_s=1.0)
        server.script([fault])
        started = time.monotonic()
        run_id = _debate(sample_engine, settings)
        elapsed = time.monotonic() - started
        run = _run(sample_engine, run_id)
        assert run.status == "done", run.error
        attempts = _attempts(sample_engine, run_id)
        proposer = [a for a in attempts if a.role == "proposer"]
        assert [a.outcome for a in proposer] == [outcome, "ok"]
        assert proposer[1].kind == ("reask" if outcome == "invalid_reply" else "transport_retry")
        assert server.request_count == len(attempts) == 4  # proposer x2, critic, judge
        if fault.kind == "status" and fault.retry_after:
            assert elapsed >= fault.retry_after
        with session_scope(sample_engine) as s:
            n_turns = s.execute(select(func.count()).where(t.Turn.run_id == run_id)).scalar_one()
        assert n_turns == 3


def test_a_reask_quotes_the_validation_error(sample_engine, db_url):
    with FakeOpenAIServer() as server:
        settings = _settings(db_url, server.base_url)
        server.script([Fault.malformed('{"argument": "only half"}')])
        run_id = _debate(sample_engine, settings)
        second = server.requests[1].body["messages"]
        assert second[-2]["role"] == "assistant" and "only half" in second[-2]["content"]
        assert "claims" in second[-1]["content"]  # the missing field is named in the re-ask
        assert _run(sample_engine, run_id).status == "done"


def test_an_endpoint_that_keeps_failing_fails_the_run_with_a_clear_error(sample_engine, db_url):
    with FakeOpenAIServer() as server:
        settings = _settings(db_url, server.base_url, max_transport_attempts=2)
        server.script([Fault.status(503), Fault.status(503)])
        run_id = _debate(sample_engine, settings)
        run = _run(sample_engine, run_id)
        assert run.status == "failed"
        assert "503" in (run.error or "")
        attempts = _attempts(sample_engine, run_id)
        assert [a.http_status for a in attempts] == [503, 503]
        assert server.request_count == 2


def test_evidence_reaches_the_model_inside_escaped_delimiters(sample_engine, db_url):
    seen: list[str] = []

    def responder(body: dict) -> str:  # type: ignore[type-arg]
        seen.append(body["messages"][-1]["content"])
        from debate.llm.fake import schema_responder

        return schema_responder(body)

    with FakeOpenAIServer(responder) as server:
        settings = _settings(db_url, server.base_url)
        tfeb = "h-3893b013"  # its evidence includes the TDP-43 page with an instruction-like line
        _debate(sample_engine, settings, hyp=tfeb)
    first = seen[0]
    assert '<evidence id="E1"' in first
    system = server.requests[0].body["messages"][0]["content"]
    assert "never instructions" in system
    # A page can neither close its own evidence block nor open another, in any case or spacing.
    opened = re.findall(r"<\s*evidence\b", first, re.IGNORECASE)
    closed = re.findall(r"<\s*/[\s/]*evidence\b", first, re.IGNORECASE)
    assert len(opened) == len(closed) == first.count('<evidence id="E')
    # The hypothesis is quoted as data too, in one block.
    assert len(re.findall(r"<\s*/?\s*hypothesis\b", first, re.IGNORECASE)) == 2
    assert f'<hypothesis id="{tfeb}">' in first


def test_usage_missing_from_the_server_is_stored_as_unknown(sample_engine, db_url):
    from debate.core.models import ProposerReply
    from debate.llm.fake import Reply

    reply = ProposerReply(argument="A short case.", claims=[]).model_dump_json()
    with FakeOpenAIServer() as server:
        settings = _settings(db_url, server.base_url)
        server.script([Reply(reply, usage=False)])  # the proposer's reply carries no usage
        run_id = _debate(sample_engine, settings)
    attempts = _attempts(sample_engine, run_id)
    proposer = [a for a in attempts if a.role == "proposer"]
    assert [(a.prompt_tokens, a.completion_tokens, a.cost_usd) for a in proposer] == [(None, None, None)]
    assert all(a.prompt_tokens is not None for a in attempts if a.role != "proposer")
    run = _run(sample_engine, run_id)
    # One unknown makes the total unknown rather than an undercount.
    assert run.status == "done" and run.prompt_tokens is None and run.cost_usd is None


async def test_many_concurrent_calls_are_spread_over_several_small_connection_pools():
    from debate.core.calls import ChatMessage
    from debate.core.models import CriticReply
    from debate.llm.client import EndpointConfig, OpenAIChatClient

    messages = [ChatMessage(role="system", content="You are the critic."), ChatMessage(role="user", content="Go.")]

    with FakeOpenAIServer(latency_s=0.5) as server:
        async with OpenAIChatClient(EndpointConfig(base_url=server.base_url, model="m")) as client:
            for _ in range(3):  # one at a time: one pool, its connection reused
                await client.complete(messages, CriticReply)
            assert len(client._pools) == 1
            replies = await asyncio.gather(*(client.complete(messages, CriticReply) for _ in range(40)))
            # 40 at once: no pool carries more than 16, so each request scans a small pool.
            assert len(client._pools) == 3
            assert sum(client._in_flight) == 0
        assert len(replies) == 40 and all(isinstance(r.parsed, CriticReply) for r in replies)
        # More in flight at once than two pools of 16 could carry (a loaded machine may finish
        # the first request before it starts the last, so not necessarily all 40).
        assert server.request_count == 43 and server.max_in_flight > 32
