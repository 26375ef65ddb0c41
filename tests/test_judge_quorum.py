"""A judge quorum: a panel still reaches a consensus when a judge fails, as long as enough
verdicts came back; below the quorum the run fails, keeping every turn and every call."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from sqlalchemy import select
from test_debate_openai import _debate, _settings

from debate.core.config import load_settings
from debate.engine.runs import Executor, create_runs
from debate.engine.transcript import load_transcript, render
from debate.llm.fake import FakeOpenAIServer, schema_responder
from debate.store import tables as t
from debate.store.db import session_scope
from debate.wiki.scores import score_rows, scores_json

SOD1 = "h-9878fd9b"


def _failing_seats(*seats: int):  # type: ignore[no-untyped-def]
    """A responder whose judges on ``seats`` always answer with broken JSON."""

    def respond(body: dict[str, Any]) -> str:
        system = body["messages"][0]["content"]
        if any(f"You are judge {seat} on a panel" in system for seat in seats):
            return '{"scores": {"novelty": '
        return schema_responder(body)

    return respond


def _run_debate(engine, db_url: str, server: FakeOpenAIServer) -> str:  # type: ignore[no-untyped-def]
    """One round before a panel of three judges."""
    return _debate(engine, _settings(db_url, server.base_url, timeout_s=5.0, max_reasks=1), judges=3)


def _attempts(engine, run_id: str) -> list[t.Attempt]:  # type: ignore[no-untyped-def]
    with session_scope(engine) as s:
        return list(s.execute(select(t.Attempt).where(t.Attempt.run_id == run_id)).scalars())


def test_one_judge_of_three_failing_gives_a_consensus_of_two(sample_engine, db_url) -> None:  # type: ignore[no-untyped-def]
    with FakeOpenAIServer(_failing_seats(1)) as server:
        run_id = _run_debate(sample_engine, db_url, server)
        requests = server.request_count
    with session_scope(sample_engine) as s:
        run = s.get(t.Run, run_id)
        assert run is not None
        assert run.status == "done", run.error
        assert run.score is not None and run.n_judges == 2
        transcript = load_transcript(s, run_id)
        [row] = score_rows(s, ids=[SOD1])
    assert [j.seat for j in transcript.judges] == [0, 2]
    [empty] = transcript.empty_seats
    assert empty.seat == 1 and [a.outcome for a in empty.attempts] == ["invalid_reply", "invalid_reply"]
    assert transcript.consensus is not None
    assert (transcript.consensus.n_judges, transcript.consensus.judges_seated) == (2, 3)
    # The empty seat is named in every rendering.
    for fmt in ("text", "md", "html"):
        shown = render(transcript, fmt)  # type: ignore[arg-type]
        assert "Judge 1: empty seat" in shown and "2 of 3" in shown, fmt
    assert json.loads(render(transcript, "json"))["empty_seats"][0]["seat"] == 1
    # The scores list says how many judges sat and how many counted.
    assert (row.judges, row.judges_counted) == (3, 2)
    assert '"judges_counted": 2' in scores_json([row])
    assert requests == len(_attempts(sample_engine, run_id))


def test_two_judges_failing_fail_the_run_and_keep_every_call(sample_engine, db_url) -> None:  # type: ignore[no-untyped-def]
    with FakeOpenAIServer(_failing_seats(0, 2)) as server:
        run_id = _run_debate(sample_engine, db_url, server)
        requests = server.request_count
    attempts = _attempts(sample_engine, run_id)
    with session_scope(sample_engine) as s:
        run = s.get(t.Run, run_id)
        assert run is not None
        status, error = run.status, run.error or ""
        stored_usage = (run.prompt_tokens, run.completion_tokens)
        turns = s.execute(select(t.Turn.role, t.Turn.seat).where(t.Turn.run_id == run_id)).all()
        transcript = load_transcript(s, run_id)
    assert status == "failed"
    assert "only 1 of 3 judges returned a valid verdict (quorum 2)" in error
    assert "judge 0" in error and "judge 2" in error and "\n" not in error
    # Every turn that was taken and every call made is kept: the server saw no call that is not stored.
    assert sorted(turns) == [("critic", 0), ("judge", 1), ("proposer", 0)]
    assert requests == len(attempts) == 3 + 2 * 2
    assert {a.seat for a in attempts if a.role == "judge"} == {0, 1, 2}
    # The run's usage is the sum of all its calls', the failed judges' included.
    assert transcript.run.usage.prompt_tokens == sum(a.prompt_tokens or 0 for a in attempts) > 0
    assert transcript.run.usage.completion_tokens == sum(a.completion_tokens or 0 for a in attempts)
    # ...and so is the failed run's own row, which usage reports read.
    assert stored_usage == (transcript.run.usage.prompt_tokens, transcript.run.usage.completion_tokens)
    assert [e.seat for e in transcript.empty_seats] == [0, 2]


def test_a_quorum_can_be_set_higher_than_a_majority(sample_engine, db_url, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DEBATE_DEBATE__QUORUM", "3")
    with FakeOpenAIServer(_failing_seats(1)) as server:
        run_id = _run_debate(sample_engine, db_url, server)
    with session_scope(sample_engine) as s:
        run = s.get(t.Run, run_id)
        assert run is not None and run.status == "failed"
        assert "(quorum 3)" in (run.error or "") and run.config["quorum"] == 3


def test_a_call_cancelled_in_flight_is_kept_with_the_calls_before_it(sample_engine, db_url) -> None:  # type: ignore[no-untyped-def]
    from debate.llm.fake import Fault

    with FakeOpenAIServer() as server:
        settings = load_settings(
            database_url=db_url,
            openai={"base_url": server.base_url, "api_key": "k", "structured_output": "json_schema"},
        )
        [run_id] = create_runs(sample_engine, settings, [SOD1], backend="openai", rounds=1, judges=3)
        server.script([Fault.malformed(), Fault.delay(3)])  # the proposer's re-ask hangs

        async def go() -> None:
            async with Executor(sample_engine, settings, backend="openai") as ex:
                task = asyncio.create_task(ex.execute(run_id))
                while server.request_count < 2:
                    await asyncio.sleep(0.02)
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

        asyncio.run(go())
        requests = server.request_count
    attempts = sorted(_attempts(sample_engine, run_id), key=lambda a: a.n)
    assert requests == len(attempts) == 2
    assert [(a.kind, a.outcome) for a in attempts] == [("first", "invalid_reply"), ("reask", "cancelled")]
    assert attempts[0].prompt_tokens is not None  # what the first call spent is kept
