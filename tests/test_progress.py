"""Progress of a turn under way: a streamed reply's tokens so far, retries, which turn is speaking;
the CLI's status line for it, and the one line a retry leaves in a log."""

from __future__ import annotations

import asyncio
import io
import re
import time
from typing import Any

import pytest
from conftest import SOD1, run_cli
from rich.console import Console
from rich.text import Text
from test_debate_openai import _settings as openai_settings

from debate.cli.runs import ProgressDisplay, progress_line, progress_text
from debate.core import calls
from debate.core.calls import ChatMessage, Progress, Speaker, progress_sink, speaking
from debate.core.models import CriticReply
from debate.engine.runs import Executor, create_runs
from debate.llm.client import EndpointConfig, OpenAIChatClient
from debate.llm.fake import FakeOpenAIServer, Fault, Reply


def _settings(db_url: str, base_url: str, **openai: object):  # type: ignore[no-untyped-def]
    return openai_settings(db_url, base_url, **{"idle_timeout_s": 5, **openai})


def _debate(engine, settings, *, judges: int = 1) -> tuple[str, list[Progress]]:  # type: ignore[no-untyped-def]
    """One SOD1 debate of one round, as the CLI runs it; (its run id, every progress event)."""
    [run_id] = create_runs(engine, settings, [SOD1], backend="openai", rounds=1, judges=judges)
    events: list[Progress] = []

    async def go() -> None:
        async with Executor(engine, settings, backend="openai") as ex:
            with progress_sink(events.append), speaking(run_id=run_id):
                outcome = await ex.execute(run_id)
        assert outcome.status == "done", outcome.error

    asyncio.run(go())
    return run_id, events


def _of(events: list[Progress], role: str, seat: int = 0) -> list[Progress]:
    return [e for e in events if e.speaker.role == role and e.speaker.seat == seat]


def test_a_streamed_turn_reports_rising_token_counts_under_its_own_name(sample_engine, db_url, monkeypatch):
    monkeypatch.setattr(calls, "PROGRESS_INTERVAL_S", 0.05)
    with FakeOpenAIServer(stream_delay_s=0.01) as server:
        run_id, events = _debate(sample_engine, _settings(db_url, server.base_url), judges=2)
    assert {e.speaker.run_id for e in events} == {run_id}
    assert {(e.speaker.round, e.speaker.role, e.speaker.seat) for e in events} == {
        (1, "proposer", 0),
        (1, "critic", 0),
        (1, "judge", 0),
        (1, "judge", 1),
    }
    for role, seat in (("proposer", 0), ("critic", 0), ("judge", 0), ("judge", 1)):
        mine = _of(events, role, seat)
        assert mine[0].phase == "started" and (mine[0].attempt, mine[0].kind) == (1, "first")
        assert mine[-1].phase == "ended"  # each turn's end is reported, once
        assert [e.phase for e in mine].count("ended") == 1
        counts = [e.tokens for e in mine if e.phase == "receiving"]
        assert len(counts) >= 3, (role, seat, counts)
        assert counts == sorted(counts) and len(set(counts)) == len(counts)  # rising
        assert all(e.attempt == 1 for e in mine if e.phase == "receiving")


async def test_a_stream_reports_its_tokens_at_most_every_interval() -> None:
    # 200 chunks over ~1 s: a handful of reports, not one a chunk.
    reply = CriticReply(argument="x" * 760, claims=[], concede=False).model_dump_json()
    events: list[Progress] = []
    with FakeOpenAIServer(stream_delay_s=0.005) as server:
        client = OpenAIChatClient(
            EndpointConfig(base_url=server.base_url, model="m", api_key="k", timeout_s=5, idle_timeout_s=5)
        )
        server.script([Reply(reply)])
        started = time.monotonic()
        with progress_sink(events.append), speaking(role="critic"):
            result = await client.complete([ChatMessage(role="user", content="Go.")], CriticReply)
        elapsed = time.monotonic() - started
        await client.aclose()
    counts = [e.tokens or 0 for e in events if e.phase == "receiving"]
    chunks = len(reply) // 4
    assert result.raw == reply and chunks >= 200
    assert 1 <= len(counts) <= elapsed / calls.PROGRESS_INTERVAL_S + 2
    assert counts[-1] <= chunks


@pytest.mark.parametrize(
    ("fault", "streamed", "outcome", "kind", "reason"),
    [
        (Fault.status(500), False, "http_error", "transport_retry", "HTTP 500"),
        (Fault.status(500), True, "http_error", "transport_retry", "HTTP 500"),
        (Fault.malformed("{not json"), True, "invalid_reply", "reask", "invalid reply"),
    ],
    ids=["500", "500-streamed", "malformed"],
)
def test_a_failed_attempt_is_reported_and_the_next_names_it(
    sample_engine, db_url, fault, streamed, outcome, kind, reason
):
    with FakeOpenAIServer() as server:
        settings = _settings(db_url, server.base_url, idle_timeout_s=5 if streamed else 0)
        server.script([fault])
        _, events = _debate(sample_engine, settings)
    proposer = [e for e in _of(events, "proposer") if e.phase != "receiving"]
    assert [(e.phase, e.attempt) for e in proposer] == [("started", 1), ("failed", 1), ("started", 2), ("ended", 0)]
    failed, again = proposer[1], proposer[2]
    assert (failed.outcome, failed.kind, failed.retrying, failed.reason) == (outcome, "first", True, reason)
    assert (again.kind, again.previous) == (kind, reason)
    # The other turns went through at the first attempt.
    assert not [e for e in events if e.phase == "failed" and e.speaker.role != "proposer"]


def test_the_last_failed_attempt_is_not_retrying(sample_engine, db_url):
    with FakeOpenAIServer() as server:
        settings = _settings(db_url, server.base_url, max_transport_attempts=2)
        server.script([Fault.status(500), Fault.status(500)])
        [run_id] = create_runs(sample_engine, settings, [SOD1], backend="openai", rounds=1, judges=1)
        events: list[Progress] = []

        async def go() -> str:
            async with Executor(sample_engine, settings, backend="openai") as ex:
                with progress_sink(events.append), speaking(run_id=run_id):
                    return (await ex.execute(run_id)).status

        assert asyncio.run(go()) == "failed"
    failed = [(e.attempt, e.retrying) for e in events if e.phase == "failed"]
    assert failed == [(1, True), (2, False)]
    assert events[-1].phase == "ended" and events[-1].speaker.role == "proposer"


def _event(**fields: Any) -> Progress:
    speaker = Speaker(run_id="r-abc123", round=1, role="critic")
    return Progress(**{"speaker": speaker, "phase": "started", "attempt": 1, "kind": "first", **fields})


@pytest.mark.parametrize(
    ("fields", "text"),
    [
        ({}, "waiting for the model"),
        ({"phase": "receiving", "tokens": 240}, "~240 tokens"),
        (
            {"phase": "receiving", "tokens": 1, "attempt": 2, "kind": "transport_retry", "previous": "HTTP 500"},
            "~1 token, attempt 2 (retry after HTTP 500)",
        ),
        (
            {"attempt": 3, "kind": "reask", "previous": "invalid reply"},
            "waiting for the model, attempt 3 (re-ask after invalid reply)",
        ),
        (
            {"phase": "failed", "outcome": "http_error", "http_status": 500, "retrying": True},
            "attempt 1 failed (HTTP 500), retrying",
        ),
        ({"phase": "failed", "outcome": "timeout", "attempt": 5}, "attempt 5 failed (timeout)"),
        (
            {"phase": "failed", "outcome": "invalid_reply", "error": "reply cut at 64 output tokens", "retrying": True},
            "attempt 1 failed (reply cut), re-asking",
        ),
    ],
)
def test_the_status_text_of_an_event(fields: dict[str, Any], text: str) -> None:
    event = _event(**fields)
    assert progress_text(event) == text
    assert Text.from_markup(progress_line(event)).plain == f"r-abc123 round 1 critic: {text}"


def test_the_status_line_is_never_markup_nor_control_characters() -> None:
    event = Progress(Speaker(run_id="r-[bold]x\x1b[2J", round=2, role="judge", seat=1), "receiving", 1, "first", 7)
    assert Text.from_markup(progress_line(event)).plain == "r-[bold]x[2J round 2 judge 1: ~7 tokens"


def test_on_a_terminal_each_turn_has_one_line_until_it_ends() -> None:
    screen = io.StringIO()
    display = ProgressDisplay(Console(file=screen, force_terminal=True, width=120))
    critic, judge = Speaker("r-1", 1, "critic"), Speaker("r-1", 1, "judge", 2)
    display(Progress(critic, "started", 1, "first"))
    display(Progress(judge, "receiving", 1, "first", 12))
    display(Progress(critic, "receiving", 1, "first", 30))
    assert [Text.from_markup(line).plain for line in display.lines.values()] == [
        "r-1 round 1 critic: ~30 tokens",
        "r-1 round 1 judge 2: ~12 tokens",
    ]
    display(Progress(critic, "ended"))
    assert len(display.lines) == 1
    display.close()
    assert "~30 tokens" in screen.getvalue()


def test_in_a_pipe_only_a_retry_prints_one_line() -> None:
    log = io.StringIO()
    display = ProgressDisplay(Console(file=log, width=40))  # narrow: the line must not wrap
    critic = Speaker("r-abc123", 1, "critic")
    display(Progress(critic, "started", 1, "first"))
    display(Progress(critic, "receiving", 1, "first", 30))
    display(Progress(critic, "failed", 1, "first", outcome="timeout", retrying=True))
    display(Progress(critic, "started", 2, "transport_retry", previous="timeout"))
    display(Progress(critic, "failed", 2, "transport_retry", outcome="timeout"))
    display(Progress(critic, "ended"))
    display.close()
    assert log.getvalue() == "r-abc123 round 1 critic: attempt 1 failed (timeout), retrying\n"


def test_debate_run_in_a_pipe_prints_one_line_per_retry(sample_engine, cli_env):
    with FakeOpenAIServer() as server:
        env = {
            **cli_env,
            "DEBATE_OPENAI__BASE_URL": server.base_url,
            "DEBATE_OPENAI__API_KEY": "k",
            "DEBATE_OPENAI__STRUCTURED_OUTPUT": "json_schema",
        }
        server.script([Fault.status(500)])
        proc = run_cli("run", SOD1, "--backend", "openai", "--rounds", "1", "--judges", "1", env=env)
    retries = [line for line in proc.stderr.splitlines() if "failed" in line]
    assert len(retries) == 1, proc.stderr
    assert re.fullmatch(r"r-[0-9a-f]+ round 1 proposer: attempt 1 failed \(HTTP 500\), retrying", retries[0])
    assert "tokens" not in proc.stderr and "waiting" not in proc.stderr and "\x1b" not in proc.stderr
    # The turn lines are still there, one each.
    assert len(re.findall(r"round 1 (proposer|critic|judge 0): ", proc.stderr)) == 4
