"""Building a :class:`Transcript` from the database: one query per table, assembled in memory.

Stored JSON columns (messages, parsed replies, citations, judge metadata) are read defensively:
a value of the wrong shape is dropped or shown as text, never allowed to break the transcript.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlmodel import Session, col, select

from debate.core.calls import PromptFit
from debate.core.errors import NotFoundError
from debate.core.protocol import panel
from debate.core.quotes import ClaimMark, verified_rate
from debate.core.rubric import DIMENSIONS
from debate.core.scoring import display_score
from debate.engine.transcript.model import (
    AgentsLabel,
    AttemptOut,
    CitationOut,
    ClaimOut,
    ConsensusOut,
    EmptySeat,
    EvidenceOut,
    HypothesisInfo,
    JudgeOut,
    Message,
    ReviewEntry,
    ReviewInfo,
    RoundOut,
    RunInfo,
    Transcript,
    TurnOut,
    Usage,
)
from debate.store.tables import Attempt, Evidence, Hypothesis, Review, Run, Turn, as_utc

TurnKey = tuple[int, str, int]
"""(round, role, seat): what ties a turn to the calls made for it."""


@dataclass(frozen=True)
class _Rows:
    """Everything stored about one run, each table in reading order."""

    run: Run
    hypothesis: Hypothesis | None
    evidence: Sequence[Evidence]
    turns: Sequence[Turn]
    attempts: Sequence[Attempt]
    reviews: Sequence[Review]


def _read_rows(session: Session, run_id: str) -> _Rows:
    """One query per table, so the cost does not grow with the number of turns."""
    run = session.get(Run, run_id)
    if run is None:
        raise NotFoundError(f"unknown run id {run_id!r}")
    hyp = session.get(Hypothesis, run.hypothesis_id)
    evidence_rows = session.exec(
        select(Evidence).where(col(Evidence.run_id) == run_id).order_by(col(Evidence.rank), col(Evidence.eid))
    ).all()
    turn_rows = session.exec(
        select(Turn).where(col(Turn.run_id) == run_id).order_by(col(Turn.round), col(Turn.role), col(Turn.seat))
    ).all()
    attempt_rows = session.exec(
        select(Attempt)
        .where(col(Attempt.run_id) == run_id)
        .order_by(col(Attempt.round), col(Attempt.role), col(Attempt.seat), col(Attempt.n))
    ).all()
    review_rows = session.exec(
        select(Review).where(col(Review.run_id) == run_id).order_by(col(Review.at), col(Review.id))
    ).all()
    return _Rows(run, hyp, evidence_rows, turn_rows, attempt_rows, review_rows)


# ---------------------------------------------------------------- one row at a time


def _usage(prompt_tokens: int | None, completion_tokens: int | None, estimated: bool = False) -> Usage:
    return Usage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, estimated=estimated)


def _summed(attempts: Sequence[Attempt]) -> tuple[Usage, float | None]:
    """Tokens and cost over every call; a figure is unknown when any call's is."""
    if not attempts:
        return Usage(), None
    prompt = [a.prompt_tokens for a in attempts]
    completion = [a.completion_tokens for a in attempts]
    costs = [a.cost_usd for a in attempts]
    usage = Usage(
        prompt_tokens=None if None in prompt else sum(p or 0 for p in prompt),
        completion_tokens=None if None in completion else sum(c or 0 for c in completion),
    )
    return usage, None if None in costs else sum(c or 0.0 for c in costs)


def _fit(meta: Mapping[str, Any]) -> PromptFit | None:
    raw = meta.get("fit")
    if not isinstance(raw, Mapping):
        return None
    try:
        return PromptFit.model_validate(raw)
    except ValidationError:
        return None


def _attempt_out(a: Attempt) -> AttemptOut:
    return AttemptOut(
        round=a.round,
        role=a.role,
        seat=a.seat,
        n=a.n,
        kind=a.kind,
        outcome=a.outcome,
        http_status=a.http_status,
        error=a.error,
        raw_reply=a.raw_reply,
        model=a.model,
        served_model=a.served_model,
        usage=_usage(a.prompt_tokens, a.completion_tokens),
        cost_usd=a.cost_usd,
        latency_ms=a.latency_ms,
        started_at=as_utc(a.started_at),
    )


def _messages(raw: Iterable[Any] | None) -> list[Message]:
    out: list[Message] = []
    for m in raw or []:
        if not isinstance(m, Mapping):
            continue
        content = m.get("content")
        # Some APIs send content as a list of parts; keep it readable rather than drop it.
        text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
        out.append(Message(role=str(m.get("role", "")), content=text))
    return out


def _citations(raw: Iterable[Any] | None) -> list[CitationOut]:
    out: list[CitationOut] = []
    for c in raw or []:
        if isinstance(c, Mapping) and "eid" in c:
            out.append(CitationOut(eid=str(c["eid"]), valid=bool(c.get("valid")), claim=int(c.get("claim", -1))))
    return out


def _claim_marks(meta: Mapping[str, Any]) -> dict[int, ClaimMark] | None:
    """Each claim's stored mark by claim index; None for a turn recorded before quotes were
    checked. A stored mark of the wrong shape is dropped (that claim shows as not checked)."""
    raw = meta.get("claim_marks")
    if not isinstance(raw, list):
        return None
    marks: dict[int, ClaimMark] = {}
    for m in raw:
        try:
            mark = ClaimMark.model_validate(m)
        except ValidationError:
            continue
        marks.setdefault(mark.claim, mark)
    return marks


def _claims(
    parsed: Mapping[str, Any], citations: list[CitationOut], known: set[str], marks: dict[int, ClaimMark] | None
) -> list[ClaimOut]:
    """Claims with each cited id marked valid or not, and their quote's mark.

    Validity comes from the citation check stored with the turn; an id missing from it is
    checked against this run's evidence ids directly. Marks come from the turn's metadata,
    as the engine checked each quote when it recorded the turn.
    """
    checked = {(c.claim, c.eid): c.valid for c in citations}
    claims = parsed.get("claims")
    out: list[ClaimOut] = []
    for i, claim in enumerate(claims if isinstance(claims, list) else []):
        if not isinstance(claim, Mapping):
            continue
        ids = claim.get("evidence_ids")
        cited = [
            CitationOut(eid=str(eid), valid=checked.get((i, str(eid)), str(eid) in known), claim=i)
            for eid in (ids if isinstance(ids, list) else [])
        ]
        quote = claim.get("quote")
        mark = marks.get(i) if marks is not None else None
        out.append(
            ClaimOut(
                text=str(claim.get("text", "")),
                citations=cited,
                quote=quote if isinstance(quote, str) else "",
                mark=mark.mark if mark is not None else None,
                found_in=mark.eid if mark is not None and mark.mark == "verified" else None,
            )
        )
    return out


def _float(x: Any) -> float | None:
    # bool is an int subclass, but True is no score.
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    return float(x)


def _turn_fields(t: Turn, attempts: list[AttemptOut], known: set[str]) -> dict[str, Any]:
    parsed = t.parsed if isinstance(t.parsed, dict) else {}
    meta = t.meta if isinstance(t.meta, Mapping) else {}
    citations = _citations(t.citations)
    argument = parsed.get("argument")
    concede = parsed.get("concede")
    return dict(
        round=t.round,
        role=t.role,
        seat=t.seat,
        backend=t.backend,
        label=t.label,
        model=t.model,
        prompt_name=t.prompt_name,
        prompt_version=t.prompt_version,
        prompt_hash=t.prompt_hash,
        messages=_messages(t.messages),
        raw_reply=t.raw_reply,
        parsed=parsed,
        argument=argument if isinstance(argument, str) else None,
        claims=_claims(parsed, citations, known, _claim_marks(meta)),
        concede=concede if isinstance(concede, bool) else None,
        citations=citations,
        usage=_usage(t.prompt_tokens, t.completion_tokens, meta.get("usage_estimated") is True),
        cost_usd=t.cost_usd,
        latency_ms=t.latency_ms,
        created_at=as_utc(t.created_at),
        attempts=attempts,
        fit=_fit(meta),
    )


def _judge_out(t: Turn, attempts: list[AttemptOut], known: set[str]) -> JudgeOut:
    fields = _turn_fields(t, attempts, known)
    parsed = fields["parsed"]
    raw_scores = parsed.get("scores") if isinstance(parsed.get("scores"), Mapping) else {}
    scores = {d: v for d in DIMENSIONS if (v := _float(raw_scores.get(d))) is not None}
    meta = t.meta if isinstance(t.meta, Mapping) else {}
    emphasis = meta.get("emphasis")
    critic_first = meta.get("critic_first")
    persona = meta.get("persona")
    rationale = parsed.get("rationale")
    bound = meta.get("bound") if isinstance(meta.get("bound"), Mapping) else {}
    capped = bound.get("capped") if isinstance(bound.get("capped"), Mapping) else {}
    against = bound.get("contradictions") if isinstance(bound.get("contradictions"), list) else []
    return JudgeOut(
        **fields,
        scores=scores,
        overall=t.overall,
        confidence=_float(parsed.get("confidence")),
        rationale=rationale if isinstance(rationale, str) else "",
        persona=persona if isinstance(persona, str) else None,
        emphasis=[str(e) for e in emphasis] if isinstance(emphasis, list | tuple) else [],
        critic_first=critic_first if isinstance(critic_first, bool) else None,
        cap=_float(bound.get("cap")),
        capped={d: v for d in DIMENSIONS if (v := _float(capped.get(d))) is not None},
        contradictions=[str(c) for c in against],
    )


def _run_info(run: Run, attempts: Sequence[Attempt]) -> RunInfo:
    # A done run stores its totals; one that failed or was cancelled keeps them in its calls.
    usage, cost = (
        (_usage(run.prompt_tokens, run.completion_tokens), run.cost_usd) if run.status == "done" else _summed(attempts)
    )
    return RunInfo(
        id=run.id,
        status=run.status,
        backend=run.backend,
        models=run.models or {},
        trigger=run.trigger,
        batch_id=run.batch_id,
        rounds_done=run.rounds_done,
        created_at=as_utc(run.created_at),
        started_at=as_utc(run.started_at),
        retrieved_at=as_utc(run.retrieved_at),
        finished_at=as_utc(run.finished_at),
        usage=usage,
        cost_usd=cost,
        config=run.config or {},
        prompt_hashes=run.prompt_hashes or {},
        kb_hash=run.kb_hash,
        error=run.error,
        claims_verified=run.claims_verified,
        claims_cited=run.claims_cited,
        verified_rate=verified_rate(run.claims_verified, run.claims_cited),
    )


def _hypothesis_info(hyp: Hypothesis | None) -> HypothesisInfo | None:
    # The hypothesis may have been deleted since the run; the transcript still stands.
    if hyp is None:
        return None
    return HypothesisInfo(
        id=hyp.id,
        title=hyp.title,
        statement=hyp.statement,
        targets=list(hyp.targets or []),
        diseases=list(hyp.diseases or []),
        mechanisms=list(hyp.mechanisms or []),
    )


def _evidence_out(e: Evidence, cited_by: list[str]) -> EvidenceOut:
    return EvidenceOut(
        eid=e.eid,
        rank=e.rank,
        page_slug=e.page_slug,
        page_hash=e.page_hash,
        heading_path=list(e.heading_path or []),
        text=e.text,
        score=e.score,
        relevance=e.relevance,
        facts=list(e.facts or []),
        cited_by=cited_by,
    )


def _consensus(run: Run) -> ConsensusOut | None:
    """The panel's verdict as stored on the run; None before any judge has scored."""
    if run.score is None:
        return None
    has_interval = run.interval_lo is not None and run.interval_hi is not None
    return ConsensusOut(
        score=run.score,
        shown=display_score(run.score),
        interval=(run.interval_lo, run.interval_hi) if has_interval else None,
        interval_method=run.interval_method,
        agreement=run.agreement,
        n_judges=run.n_judges,
        judges_seated=_seated(run),
        withheld=run.flagged,
    )


def _seated(run: Run) -> int | None:
    judges = (run.config or {}).get("judges")
    return judges if isinstance(judges, int) and not isinstance(judges, bool) else None


def _empty_seats(
    run: Run, judges: list[JudgeOut], attempts_by_turn: dict[TurnKey, list[AttemptOut]]
) -> list[EmptySeat]:
    """Judge seats that were asked (their calls are stored) or that a done run went without.

    Takes those seats' calls out of ``attempts_by_turn``: they are shown with their seat.
    """
    if run.status not in ("done", "failed", "cancelled"):
        return []  # judges may still be answering
    seated = _seated(run)
    judged = {j.seat for j in judges}
    asked = {key[2] for key in attempts_by_turn if key[1] == "judge"}
    candidates = (set(range(seated)) if seated else asked) if judges or asked else set()
    out: list[EmptySeat] = []
    for seat in sorted(candidates - judged):
        calls = [a for key in sorted(attempts_by_turn) if key[1:] == ("judge", seat) for a in attempts_by_turn.pop(key)]
        out.append(
            EmptySeat(
                seat=seat,
                persona=panel(seat + 1)[seat].persona,
                error=next((a.error for a in reversed(calls) if a.error), None),
                attempts=calls,
            )
        )
    return out


def _review_info(run: Run, reviews: Iterable[Review]) -> ReviewInfo:
    return ReviewInfo(
        status=run.review_status,
        flagged=run.flagged,
        history=[ReviewEntry(action=r.action, by=r.by, note=r.note, at=as_utc(r.at)) for r in reviews],
    )


# ---------------------------------------------------------------- putting the rows together


def _attempts_by_turn(rows: Iterable[Attempt]) -> dict[TurnKey, list[AttemptOut]]:
    by_turn: dict[TurnKey, list[AttemptOut]] = defaultdict(list)
    for a in rows:
        by_turn[(a.round, a.role, a.seat)].append(_attempt_out(a))
    return by_turn


def _place_turns(
    turns: Iterable[Turn], attempts_by_turn: dict[TurnKey, list[AttemptOut]], known: set[str]
) -> tuple[list[RoundOut], list[JudgeOut]]:
    """Debate rounds in order and judges by seat.

    Each turn takes its calls out of ``attempts_by_turn``, so what is left there afterwards
    are the calls whose turn was never written.
    """
    rounds: dict[int, RoundOut] = {}
    judges: list[JudgeOut] = []
    for t in turns:
        attempts = attempts_by_turn.pop((t.round, t.role, t.seat), [])
        if t.role == "judge":
            judges.append(_judge_out(t, attempts, known))
            continue
        turn = TurnOut(**_turn_fields(t, attempts, known))
        slot = rounds.setdefault(t.round, RoundOut(round=t.round))
        # One proposer and one critic per round; the lowest seat wins if ever more were written.
        if t.role == "proposer" and slot.proposer is None:
            slot.proposer = turn
        elif t.role == "critic" and slot.critic is None:
            slot.critic = turn
    judges.sort(key=lambda j: (j.seat, j.round))
    return [rounds[r] for r in sorted(rounds)], judges


def _cited_by(rounds: list[RoundOut], judges: list[JudgeOut]) -> dict[str, list[str]]:
    """Who cited each evidence item (valid citations only), in reading order."""
    cited_by: dict[str, list[str]] = defaultdict(list)
    readers = [(f"round {r.round} {x.role}", x) for r in rounds for x in (r.proposer, r.critic) if x]
    for who, turn in readers + [(f"judge {j.seat}", j) for j in judges]:
        for c in turn.citations:
            if c.valid and who not in cited_by[c.eid]:
                cited_by[c.eid].append(who)
    return cited_by


def _agents_label(labels: set[str]) -> AgentsLabel:
    if not labels:
        return "none"
    if labels == {"heuristic"}:
        return "heuristic"
    if "heuristic" in labels:
        return "mixed"
    return "model"


def load_transcript(session: Session, run_id: str) -> Transcript:
    """Assemble the transcript of run ``run_id`` (one query per table).

    Raises :class:`NotFoundError` when no such run is stored.
    """
    rows = _read_rows(session, run_id)
    known = {e.eid for e in rows.evidence}
    attempts_by_turn = _attempts_by_turn(rows.attempts)
    rounds, judges = _place_turns(rows.turns, attempts_by_turn, known)
    empty_seats = _empty_seats(rows.run, judges, attempts_by_turn)
    cited_by = _cited_by(rounds, judges)
    return Transcript(
        agents=_agents_label({t.label for t in rows.turns}),
        run=_run_info(rows.run, rows.attempts),
        hypothesis=_hypothesis_info(rows.hypothesis),
        evidence=[_evidence_out(e, cited_by.get(e.eid, [])) for e in rows.evidence],
        rounds=rounds,
        judges=judges,
        empty_seats=empty_seats,
        consensus=_consensus(rows.run),
        review=_review_info(rows.run, rows.reviews),
        unmatched_attempts=[a for key in sorted(attempts_by_turn) for a in attempts_by_turn[key]],
    )
