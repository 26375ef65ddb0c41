"""The transcript: assembled from the database and rendered as text, Markdown, JSON and HTML."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from debate.core.errors import NotFoundError
from debate.core.rubric import DIMENSIONS
from debate.engine.transcript import (
    HEURISTIC_LABEL,
    INVALID_MARK,
    TRANSCRIPT_VERSION,
    JudgeOut,
    Transcript,
    load_transcript,
    render,
)
from debate.store.db import ensure_schema, session_scope
from debate.store.tables import Attempt, Evidence, Hypothesis, Review, Run, Turn

RUN = "r-0001"
HYP = "h-0000abcd"
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
SCRIPT = "<script>alert(1)</script>"
SCRIPT_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"

PROPOSER_1 = "TREM2 agonism restores microglial phagocytosis of amyloid."
CRITIC_1 = "Loss-of-function variants raise risk, but agonism may worsen tau spread."
PROPOSER_2 = "Antibody AL002 engages TREM2 in humans at tolerable doses."
CRITIC_2 = f"The trial missed its endpoint. {SCRIPT}"


def _dims(value: float) -> dict[str, float]:
    return {d: value for d in DIMENSIONS}


def _turn(
    round_: int,
    role: str,
    seat: int,
    parsed: dict[str, Any],
    *,
    label: str = "model",
    citations: list[dict[str, Any]] | None = None,
    meta: dict[str, Any] | None = None,
    overall: float | None = None,
    raw: str | None = None,
) -> Turn:
    return Turn(
        run_id=RUN,
        round=round_,
        role=role,
        seat=seat,
        backend="openai",
        label=label,
        model="gpt-test" if label == "model" else "heuristic",
        prompt_name=role,
        prompt_version="1",
        prompt_hash=f"hash-{role}-0123456789",
        messages=[
            {"role": "system", "content": f"You are the {role}."},
            {"role": "user", "content": "Debate the hypothesis."},
        ],
        raw_reply=raw if raw is not None else str(parsed),
        parsed=parsed,
        citations=citations or [],
        overall=overall,
        meta=meta or {},
        prompt_tokens=100 + seat,
        completion_tokens=40,
        cost_usd=0.001,
        latency_ms=250.0,
        created_at=T0 + timedelta(minutes=round_),
    )


def _attempt(round_: int, role: str, seat: int, n: int, kind: str, outcome: str, **kw: Any) -> Attempt:
    return Attempt(
        run_id=RUN,
        round=round_,
        role=role,
        seat=seat,
        n=n,
        kind=kind,
        outcome=outcome,
        model="gpt-test",
        latency_ms=kw.pop("latency_ms", 100.0),
        started_at=T0,
        **kw,
    )


def _seed(url: str, *, label: str = "model", flagged: bool = False, score: float = 0.715) -> Engine:
    engine = ensure_schema(url)
    with session_scope(engine) as s:
        s.add(
            Hypothesis(
                id=HYP,
                title="TREM2 agonism for Alzheimer's",
                title_key="trem2 agonism for alzheimer s",
                statement="Activating TREM2 boosts microglial clearance.",
                diseases=["Alzheimer's disease"],
                targets=["TREM2"],
                mechanisms=["neuroinflammation"],
                source="test",
                created_at=T0,
                updated_at=T0,
            )
        )
        s.flush()
        s.add(
            Run(
                id=RUN,
                hypothesis_id=HYP,
                status="done",
                backend="openai",
                models={"proposer": "gpt-test", "critic": "gpt-test", "judge": "gpt-test"},
                config={"rounds": 2, "judges": 3},
                prompt_hashes={"proposer": "hash-proposer-0123456789"},
                kb_hash="kb-abc",
                trigger="cli",
                rounds_done=2,
                created_at=T0,
                started_at=T0,
                retrieved_at=T0 + timedelta(seconds=2),
                finished_at=T0 + timedelta(minutes=5),
                prompt_tokens=900,
                completion_tokens=300,
                cost_usd=0.012,
                score=score,
                interval_lo=0.6,
                interval_hi=0.8,
                interval_method="range",
                agreement=0.42,
                n_judges=3,
                review_status="flagged" if flagged else "approved",
                flagged=flagged,
            )
        )
        s.flush()
        s.add_all(
            [
                Evidence(
                    run_id=RUN,
                    eid="E1",
                    rank=1,
                    page_slug="entities-trem2",
                    page_hash="ph1",
                    heading_path=["TREM2", "Function"],
                    text="TREM2 is a microglial receptor.",
                    score=0.9,
                    facts=[{"key": "gene", "value": "TREM2"}],
                ),
                Evidence(
                    run_id=RUN,
                    eid="E2",
                    rank=2,
                    page_slug="mechanisms-neuroinflammation",
                    page_hash="ph2",
                    heading_path=["Neuroinflammation"],
                    text=f"Microglia respond to injury. {SCRIPT}",
                    score=0.7,
                    facts=[],
                ),
            ]
        )
        # Inserted out of order: the transcript must sort them.
        judge_seats = [2, 0, 1]
        for seat in judge_seats:
            s.add(
                _turn(
                    3,
                    "judge",
                    seat,
                    {
                        "scores": _dims(0.6 + 0.05 * seat),
                        "confidence": 0.8,
                        "rationale": f"Judge {seat} finds E1 persuasive.",
                    },
                    label=label,
                    overall=0.6 + 0.05 * seat,
                    meta={"persona": f"persona {seat}", "emphasis": ["safety"], "critic_first": seat % 2 == 1},
                )
            )
        s.add(
            _turn(
                2,
                "critic",
                0,
                {
                    "argument": CRITIC_2,
                    "claims": [{"text": "Endpoint missed.", "evidence_ids": ["E2"]}],
                    "concede": False,
                },
                label=label,
                citations=[{"eid": "E2", "valid": True, "claim": 0}],
                raw=f'{{"argument": "{CRITIC_2}"}}',
            )
        )
        s.add(
            _turn(
                1,
                "proposer",
                0,
                {"argument": PROPOSER_1, "claims": [{"text": "Phagocytosis improves.", "evidence_ids": ["E1"]}]},
                label=label,
                citations=[{"eid": "E1", "valid": True, "claim": 0}],
            )
        )
        s.add(
            _turn(
                1,
                "critic",
                0,
                {
                    "argument": CRITIC_1,
                    "claims": [{"text": "Tau may worsen.", "evidence_ids": ["E1", "E9"]}],
                    "concede": False,
                },
                label=label,
                citations=[{"eid": "E1", "valid": True, "claim": 0}, {"eid": "E9", "valid": False, "claim": 0}],
            )
        )
        s.add(
            _turn(
                2,
                "proposer",
                0,
                {"argument": PROPOSER_2, "claims": [{"text": "Target engaged.", "evidence_ids": ["E1", "E2"]}]},
                label=label,
                citations=[{"eid": "E1", "valid": True, "claim": 0}, {"eid": "E2", "valid": True, "claim": 0}],
            )
        )
        s.add_all(
            [
                # Round 1 proposer: a failed transport call, a re-ask after a bad reply, then success.
                _attempt(1, "proposer", 0, 1, "first", "http_error", http_status=503, error="service unavailable"),
                _attempt(
                    1,
                    "proposer",
                    0,
                    2,
                    "transport_retry",
                    "invalid_reply",
                    raw_reply="not json",
                    error="reply is not JSON",
                    prompt_tokens=100,
                    completion_tokens=5,
                ),
                _attempt(
                    1,
                    "proposer",
                    0,
                    3,
                    "reask",
                    "ok",
                    raw_reply="{}",
                    prompt_tokens=120,
                    completion_tokens=40,
                    cost_usd=0.001,
                ),
                _attempt(1, "critic", 0, 1, "first", "ok", prompt_tokens=110, completion_tokens=40),
                _attempt(3, "judge", 1, 1, "first", "timeout", error="read timed out"),
                _attempt(3, "judge", 1, 2, "transport_retry", "ok", prompt_tokens=101, completion_tokens=40),
                # A call whose turn was never written.
                _attempt(3, "judge", 7, 1, "first", "connection_error", error="refused"),
            ]
        )
        s.add(Review(run_id=RUN, action="comment", by="alice", note="looks fine", at=T0 + timedelta(hours=1)))
        s.add(
            Review(run_id=RUN, action="flag" if flagged else "approve", by="bob", note=None, at=T0 + timedelta(hours=2))
        )
    return engine


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return _seed(f"sqlite:///{tmp_path}/t.db")


@pytest.fixture
def transcript(engine: Engine) -> Transcript:
    with session_scope(engine) as s:
        return load_transcript(s, RUN)


# --------------------------------------------------------------------------- structure


def test_structure(transcript: Transcript) -> None:
    t = transcript
    assert t.version == TRANSCRIPT_VERSION == 2
    assert t.agents == "model"
    assert t.run.id == RUN and t.run.status == "done" and t.run.kb_hash == "kb-abc"
    assert t.run.usage.prompt_tokens == 900 and t.run.created_at == T0
    assert t.run.retrieved_at == T0 + timedelta(seconds=2)
    assert t.hypothesis is not None and t.hypothesis.targets == ["TREM2"]
    assert [e.eid for e in t.evidence] == ["E1", "E2"]
    assert t.evidence[0].cited_by == ["round 1 proposer", "round 1 critic", "round 2 proposer"]

    assert [r.round for r in t.rounds] == [1, 2]
    r1, r2 = t.rounds
    assert r1.proposer is not None and r1.proposer.argument == PROPOSER_1
    assert r1.critic is not None and r1.critic.argument == CRITIC_1 and r1.critic.concede is False
    assert r2.proposer is not None and r2.proposer.argument == PROPOSER_2
    assert r2.critic is not None and r2.critic.argument == CRITIC_2
    assert [m.role for m in r1.proposer.messages] == ["system", "user"]
    assert r1.proposer.prompt_hash.startswith("hash-proposer")

    cites = r1.critic.claims[0].citations
    assert [(c.eid, c.valid) for c in cites] == [("E1", True), ("E9", False)]

    assert [j.seat for j in t.judges] == [0, 1, 2]
    assert all(isinstance(j, JudgeOut) for j in t.judges)
    j1 = t.judges[1]
    assert j1.persona == "persona 1" and j1.critic_first is True and j1.emphasis == ["safety"]
    assert j1.scores == pytest.approx(_dims(0.65)) and list(j1.scores) == list(DIMENSIONS)
    assert j1.overall == pytest.approx(0.65) and j1.confidence == 0.8
    assert "E1 persuasive" in j1.rationale

    # Attempts hang off the turn they were made for, keyed by (round, role, seat).
    assert [(a.n, a.kind, a.outcome) for a in r1.proposer.attempts] == [
        (1, "first", "http_error"),
        (2, "transport_retry", "invalid_reply"),
        (3, "reask", "ok"),
    ]
    assert r1.proposer.attempts[0].http_status == 503
    assert r1.proposer.attempts[1].raw_reply == "not json"
    assert [a.outcome for a in r1.critic.attempts] == ["ok"]
    assert r2.proposer.attempts == [] and r2.critic.attempts == []
    assert [a.outcome for a in j1.attempts] == ["timeout", "ok"]
    assert t.judges[0].attempts == [] and t.judges[2].attempts == []
    assert [(a.seat, a.outcome) for a in t.unmatched_attempts] == [(7, "connection_error")]

    assert t.consensus is not None
    assert t.consensus.shown == "0.72" and t.consensus.interval == (0.6, 0.8) and not t.consensus.withheld
    assert t.review.status == "approved" and not t.review.flagged
    assert [r.action for r in t.review.history] == ["comment", "approve"]


def test_unknown_run(engine: Engine) -> None:
    with session_scope(engine) as s, pytest.raises(NotFoundError, match="unknown run id"):
        load_transcript(s, "r-nope")


def test_a_few_queries_not_one_per_turn(engine: Engine) -> None:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        with session_scope(engine) as s:
            load_transcript(s, RUN)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(statements) <= 6


# --------------------------------------------------------------------------- formats


def test_text(transcript: Transcript) -> None:
    out = render(transcript, "text")
    for needle in (
        PROPOSER_1,
        CRITIC_1,
        PROPOSER_2,
        "[E1]",
        f"[E9 {INVALID_MARK}]",
        "=== Round 1 ===",
        "=== Round 2 ===",
        "entities-trem2",
        "TREM2 › Function",
        "TREM2 is a microglial receptor.",
        "mechanistic_plausibility",
        "0.65",
        "0.70",
        "confidence",
        "score 0.72",
        "approved",
        "http_error",
        "HTTP 503",
        "reask",
        "persona 2",
    ):
        assert needle in out, needle
    assert out.index("Round 1") < out.index("Round 2")
    assert HEURISTIC_LABEL not in out
    assert "withheld" not in out


def test_markdown(transcript: Transcript) -> None:
    out = render(transcript, "md")
    for needle in (
        "## Round 1",
        "### Proposer",
        PROPOSER_1,
        "[E1]",
        f"[E9 {INVALID_MARK}]",
        "| dimension | judge 0 | judge 1 | judge 2 |",
        "| overall | 0.60 | 0.65 | 0.70 |",
        "## Consensus",
        "score 0.72",
        "## Evidence",
        "`entities-trem2`",
    ):
        assert needle in out, needle
    # Model and KB text cannot inject HTML into a Markdown viewer.
    assert SCRIPT not in out and SCRIPT_ESCAPED in out


def test_json_round_trip(transcript: Transcript) -> None:
    out = render(transcript, "json")
    back = Transcript.model_validate_json(out)
    assert back == transcript
    assert isinstance(back.judges[0], JudgeOut)
    assert '"shown": "0.72"' in out and '"E9"' in out


def test_html(transcript: Transcript) -> None:
    out = render(transcript, "html")
    assert out.startswith("<!DOCTYPE html>") and "</html>" in out
    assert "<style>" in out and "<link" not in out and "src=" not in out
    for needle in (
        PROPOSER_1,
        CRITIC_1,
        'href="#ev-E1"',
        f"E9 {INVALID_MARK}",
        'id="ev-E1"',
        "entities-trem2",
        "judge 2",
        "0.65",
        "0.72",
        "E1 persuasive",
        "http_error",
        "reask",
        "Attempts (3)",
        "Messages sent (2)",
        "You are the proposer.",
    ):
        assert needle in out, needle
    assert out.count('class="round"') == 2


def test_html_escapes_kb_and_model_text(transcript: Transcript) -> None:
    assert SCRIPT in transcript.evidence[1].text
    assert transcript.rounds[1].critic is not None and SCRIPT in transcript.rounds[1].critic.argument
    out = render(transcript, "html")
    assert SCRIPT not in out
    assert "<script" not in out.lower()
    # Once from the evidence text, and from the critic's argument, raw reply and parsed reply.
    assert out.count(SCRIPT_ESCAPED) >= 3


def test_unknown_format(transcript: Transcript) -> None:
    with pytest.raises(ValueError, match="unknown transcript format"):
        render(transcript, "pdf")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- labels and review state


def test_heuristic_runs_say_so(tmp_path: Path) -> None:
    engine = _seed(f"sqlite:///{tmp_path}/h.db", label="heuristic")
    with session_scope(engine) as s:
        t = load_transcript(s, RUN)
    assert t.agents == "heuristic"
    for fmt in ("text", "md", "html"):
        out = render(t, fmt)  # type: ignore[arg-type]
        assert HEURISTIC_LABEL in out
        # The label comes before the debate itself.
        assert out.index(HEURISTIC_LABEL) < out.index(PROPOSER_1)


def test_flagged_consensus_is_shown_but_withheld(tmp_path: Path) -> None:
    engine = _seed(f"sqlite:///{tmp_path}/f.db", flagged=True, score=0.665)
    with session_scope(engine) as s:
        t = load_transcript(s, RUN)
    assert t.consensus is not None and t.consensus.withheld and t.consensus.shown == "0.67"
    assert t.review.flagged and t.review.status == "flagged"
    for fmt in ("text", "md", "html"):
        out = render(t, fmt)  # type: ignore[arg-type]
        assert "0.67" in out and "withheld (flagged)" in out, fmt
    assert '"withheld": true' in render(t, "json")
