"""``structured_output = "auto"``: an endpoint is asked once which structured-output mode works,
the answer is kept per endpoint and model in the database, and a failed call forgets it.

The fake server plays llama-cpp-python's server, which answers ``json_schema`` with HTTP 500.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import select
from test_debate_openai import _debate, _run

from debate.llm.client import EndpointConfig, OpenAIChatClient
from debate.llm.fake import FakeOpenAIServer
from debate.llm.modes import QUESTION, MemoryModes, ModeProbe
from debate.store import tables as t
from debate.store.db import session_scope
from debate.store.modes import DatabaseModes

PROBE_TEXT = QUESTION[-1].content


def _settings(db_url: str, base_url: str, **openai: object):  # type: ignore[no-untyped-def]
    from debate.core.config import load_settings

    return load_settings(
        database_url=db_url,
        openai={"base_url": base_url, "api_key": "test-key", "timeout_s": 5.0, **openai},
    )


def _formats(server: FakeOpenAIServer, *, probes: bool) -> list[str]:
    """The response_format type of each request (probes, or debate calls), in order."""
    return [
        (r.body.get("response_format") or {}).get("type", "none")
        for r in server.requests
        if (PROBE_TEXT in str(r.body.get("messages"))) == probes
    ]


def _stored_mode(engine) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    with session_scope(engine) as s:
        return [tuple(r) for r in s.execute(select(t.EndpointMode.base_url, t.EndpointMode.model, t.EndpointMode.mode))]


def test_auto_is_the_default() -> None:
    from debate.core.config import load_settings

    assert load_settings().openai.structured_output == "auto"


def test_a_server_that_refuses_json_schema_settles_on_json_object_and_the_debate_completes(
    sample_engine, db_url
) -> None:  # type: ignore[no-untyped-def]
    with FakeOpenAIServer(refuse_json_schema=True) as server:
        settings = _settings(db_url, server.base_url)
        run_id = _debate(sample_engine, settings)
        assert _run(sample_engine, run_id).status == "done"
        assert _stored_mode(sample_engine) == [(server.base_url, "gpt-4o-mini", "json_object")]
        # The probe tried json_schema (refused: one try and one retry), then json_object.
        assert _formats(server, probes=True) == ["json_schema", "json_schema", "json_object"]
        assert set(_formats(server, probes=False)) == {"json_object"}
        asked = len(server.requests)

        # The next run reuses the stored answer: no probe at all.
        second = _debate(sample_engine, settings)
        assert _run(sample_engine, second).status == "done"
        assert len(_formats(server, probes=True)) == 3
        assert len(server.requests) > asked


def test_a_server_that_takes_json_schema_is_asked_once_and_keeps_it(sample_engine, db_url) -> None:  # type: ignore[no-untyped-def]
    with FakeOpenAIServer() as server:
        run_id = _debate(sample_engine, _settings(db_url, server.base_url))
        assert _run(sample_engine, run_id).status == "done"
        assert _formats(server, probes=True) == ["json_schema"]
        assert set(_formats(server, probes=False)) == {"json_schema"}
        assert [m for *_, m in _stored_mode(sample_engine)] == ["json_schema"]


def test_a_named_mode_is_used_without_asking(sample_engine, db_url) -> None:  # type: ignore[no-untyped-def]
    with FakeOpenAIServer() as server:
        _debate(sample_engine, _settings(db_url, server.base_url, structured_output="prompt"))
        assert _formats(server, probes=True) == []
        assert set(_formats(server, probes=False)) == {"none"}
        assert _stored_mode(sample_engine) == []


def test_a_call_that_fails_in_the_stored_mode_forgets_it_and_the_next_run_asks_again(sample_engine, db_url) -> None:  # type: ignore[no-untyped-def]
    with FakeOpenAIServer(refuse_json_schema=True) as server:
        # Stored while the server behind this URL still took json_schema.
        DatabaseModes(sample_engine).put(server.base_url, "gpt-4o-mini", "json_schema")
        failed = _debate(sample_engine, _settings(db_url, server.base_url, max_transport_attempts=1))
        assert _run(sample_engine, failed).status == "failed"
        assert _stored_mode(sample_engine) == []

        again = _debate(sample_engine, _settings(db_url, server.base_url))
        assert _run(sample_engine, again).status == "done"
        assert [m for *_, m in _stored_mode(sample_engine)] == ["json_object"]


def test_concurrent_first_calls_probe_once() -> None:
    async def go(base_url: str) -> None:
        client = OpenAIChatClient(
            EndpointConfig(base_url=base_url, model="m", structured_output="auto", backoff_initial_s=0.01),
            modes=MemoryModes(),
        )
        async with client:
            await asyncio.gather(*(client.complete(QUESTION, ModeProbe) for _ in range(4)))
        assert client.modes.get(client.base_url, "m") == "json_object"

    with FakeOpenAIServer(refuse_json_schema=True) as server:
        asyncio.run(go(server.base_url))
        probes = _formats(server, probes=True)
    # Four calls with the probe's own question: the probe (2 refused, 1 answered) then the 4 calls.
    assert probes[:3] == ["json_schema", "json_schema", "json_object"]
    assert probes[3:] == ["json_object"] * 4


def test_an_unreachable_endpoint_fails_once_with_its_address(sample_engine, db_url) -> None:  # type: ignore[no-untyped-def]
    run_id = _debate(sample_engine, _settings(db_url, "http://127.0.0.1:9/v1"))
    run = _run(sample_engine, run_id)
    assert run.status == "failed" and "127.0.0.1:9" in (run.error or "") and "unreachable" in (run.error or "")
    assert _stored_mode(sample_engine) == []
