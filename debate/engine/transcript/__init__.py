"""The transcript of one debate run: a versioned, documented model assembled from the database.

The transcript is what readers and reviewers audit, so it carries everything needed to judge a
run: the hypothesis, the evidence snapshot as it read when retrieved, every turn with the
messages sent, the raw reply, what was parsed from it and which citations were valid, every
attempt made for each turn (retries, re-asks), the judge panel, the consensus and the review
history. :func:`load_transcript` builds it with one query per table; :func:`render` shows it as
plain text, Markdown, JSON or a standalone HTML page.

Text from the KB and from model replies is untrusted: the HTML page escapes all of it (Jinja2
autoescaping) and forbids scripts through its Content-Security-Policy; the Markdown escapes
``&``, ``<`` and ``>`` so a Markdown viewer that renders inline HTML shows it as text.
"""

from __future__ import annotations

import json
import math
import textwrap
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from pydantic import BaseModel, Field
from sqlmodel import Session, select

from debate.engine.consensus import DIMENSIONS
from debate.core.errors import NotFoundError
from debate.core.scoring import display_score, score_color
from debate.store.tables import Attempt, Evidence, Hypothesis, Review, Run, Turn, as_utc

TRANSCRIPT_VERSION = 1
"""Bumped whenever a field of :class:`Transcript` changes meaning, is renamed or removed."""

Format = Literal["text", "md", "json", "html"]
AgentsLabel = Literal["model", "heuristic", "mixed", "none"]

HEURISTIC_LABEL = "offline heuristic agents — no model"
INVALID_MARK = "✗ not retrieved"
WITHHELD_MARK = "withheld (flagged)"


# ---------------------------------------------------------------- the model


class Usage(BaseModel):
    """Token counts reported for a call (None when the backend reported none)."""

    prompt_tokens: int | None = Field(None, description="Tokens sent.")
    completion_tokens: int | None = Field(None, description="Tokens generated.")

    @property
    def total(self) -> int | None:
        """Prompt plus completion tokens, or None when neither is known."""
        if self.prompt_tokens is None and self.completion_tokens is None:
            return None
        return (self.prompt_tokens or 0) + (self.completion_tokens or 0)


class AttemptOut(BaseModel):
    """One call made for a turn: the first try, a transport retry or a re-ask after a bad reply."""

    round: int = Field(description="Debate round of the turn this call was for.")
    role: str = Field(description="proposer | critic | judge.")
    seat: int = Field(description="Seat of the agent (judges: panel seat; others 0).")
    n: int = Field(description="1-based number of the call within its turn.")
    kind: str = Field(description="first | transport_retry | reask.")
    outcome: str = Field(description="ok | invalid_reply | http_error | timeout | connection_error.")
    http_status: int | None = Field(None, description="HTTP status of a failed call, when there was one.")
    error: str | None = Field(None, description="Why the call failed, as recorded.")
    raw_reply: str | None = Field(None, description="The reply text exactly as received, if any.")
    model: str = Field(description="Model the call was made to.")
    usage: Usage = Field(default_factory=Usage, description="Tokens of this call.")
    cost_usd: float | None = Field(None, description="Cost of this call in US dollars, when known.")
    latency_ms: float = Field(description="Wall time of the call in milliseconds.")
    started_at: datetime | None = Field(None, description="When the call was made (UTC).")


class Message(BaseModel):
    """One chat message sent to the model."""

    role: str = Field(description="system | user | assistant.")
    content: str = Field(description="The message text as sent.")


class CitationOut(BaseModel):
    """An evidence id cited by a claim, checked against the run's evidence."""

    eid: str = Field(description="The cited id, as the agent wrote it.")
    valid: bool = Field(description="True when it names evidence retrieved for this run.")
    claim: int = Field(description="0-based index of the claim that cited it.")


class ClaimOut(BaseModel):
    """A claim of a proposer or critic turn with its checked citations."""

    text: str = Field(description="The claim as written.")
    citations: list[CitationOut] = Field(default_factory=list, description="Cited evidence, in order.")


class TurnOut(BaseModel):
    """One agent turn as it was recorded: what was sent, what came back, what was made of it."""

    round: int = Field(description="Debate round (1-based for proposer and critic).")
    role: str = Field(description="proposer | critic | judge.")
    seat: int = Field(description="Seat of the agent (judges: panel seat; others 0).")
    backend: str = Field(description="Backend that produced the turn.")
    label: str = Field(description="model (a model replied) | heuristic (offline agent, no model).")
    model: str = Field(description="Model name, or the heuristic agent's name.")
    prompt_name: str = Field(description="Prompt template used.")
    prompt_version: str = Field(description="Version of the prompt template.")
    prompt_hash: str = Field(description="Hash of the prompt template text.")
    messages: list[Message] = Field(default_factory=list, description="Messages sent, in order.")
    raw_reply: str = Field(description="The reply text exactly as received.")
    parsed: dict[str, Any] = Field(default_factory=dict, description="The reply as validated JSON.")
    argument: str | None = Field(None, description="Proposer/critic: the argument made.")
    claims: list[ClaimOut] = Field(default_factory=list, description="Proposer/critic: claims with citations.")
    concede: bool | None = Field(None, description="Critic: True when it conceded; None for others.")
    citations: list[CitationOut] = Field(default_factory=list, description="Every citation, checked.")
    usage: Usage = Field(default_factory=Usage, description="Tokens of the turn (all its calls).")
    cost_usd: float | None = Field(None, description="Cost of the turn in US dollars, when known.")
    latency_ms: float = Field(0.0, description="Wall time of the turn in milliseconds.")
    created_at: datetime | None = Field(None, description="When the turn was written (UTC).")
    attempts: list[AttemptOut] = Field(default_factory=list, description="Calls made for this turn, by n.")


class JudgeOut(TurnOut):
    """A judge's turn with its verdict pulled out of the parsed reply."""

    scores: dict[str, float] = Field(default_factory=dict, description="Dimension scores, rubric order.")
    overall: float | None = Field(None, description="Weighted rubric score, computed by the engine.")
    confidence: float | None = Field(None, description="The judge's stated confidence in [0, 1].")
    rationale: str = Field("", description="The judge's reasons.")
    persona: str | None = Field(None, description="Persona the judge was given.")
    emphasis: list[str] = Field(default_factory=list, description="Dimensions the persona weighs most.")
    critic_first: bool | None = Field(None, description="True when the judge saw the critic's side first.")


class RoundOut(BaseModel):
    """One debate round: the proposer's and the critic's turn (None when not taken)."""

    round: int = Field(description="Round number, 1-based.")
    proposer: TurnOut | None = Field(None, description="The proposer's turn.")
    critic: TurnOut | None = Field(None, description="The critic's turn.")


class EvidenceOut(BaseModel):
    """A retrieved KB chunk as it read when the run retrieved it."""

    eid: str = Field(description="Id agents cite it by (E1, E2, ...).")
    rank: int = Field(description="Retrieval rank, 1 = best.")
    page_slug: str = Field(description="Slug of the KB page it came from.")
    page_hash: str = Field(description="Content hash of that page at retrieval time.")
    heading_path: list[str] = Field(default_factory=list, description="Headings above the chunk.")
    text: str = Field(description="The chunk text.")
    score: float = Field(description="Retrieval score.")
    facts: list[dict[str, Any]] = Field(default_factory=list, description="Facts under the chunk's heading.")
    cited_by: list[str] = Field(default_factory=list, description="Turns citing it, e.g. 'round 1 proposer'.")


class HypothesisInfo(BaseModel):
    """The hypothesis debated."""

    id: str = Field(description="Hypothesis id (h-xxxxxxxx).")
    title: str = Field(description="Title.")
    statement: str = Field("", description="Full statement.")
    targets: list[str] = Field(default_factory=list, description="Target gene symbols.")
    diseases: list[str] = Field(default_factory=list, description="Diseases.")
    mechanisms: list[str] = Field(default_factory=list, description="Mechanism keywords.")


class RunInfo(BaseModel):
    """How the run was made: backend, models, settings, timing and spend."""

    id: str = Field(description="Run id.")
    status: str = Field(description="queued | running | done | failed | cancelled.")
    backend: str = Field(description="Backend the run used.")
    models: dict[str, Any] = Field(default_factory=dict, description="Models per role.")
    trigger: str = Field(description="What started the run (cli, api, batch, ...).")
    batch_id: str | None = Field(None, description="Batch the run belongs to, if any.")
    rounds_done: int = Field(0, description="Debate rounds completed.")
    created_at: datetime | None = Field(None, description="When the run was queued (UTC).")
    started_at: datetime | None = Field(None, description="When it started (UTC).")
    retrieved_at: datetime | None = Field(None, description="When its evidence was retrieved (UTC).")
    finished_at: datetime | None = Field(None, description="When it finished (UTC).")
    usage: Usage = Field(default_factory=Usage, description="Tokens of the whole run.")
    cost_usd: float | None = Field(None, description="Cost of the whole run in US dollars, when known.")
    config: dict[str, Any] = Field(default_factory=dict, description="Settings the run used.")
    prompt_hashes: dict[str, str] = Field(default_factory=dict, description="Prompt template hashes by name.")
    kb_hash: str | None = Field(None, description="Hash of the KB the evidence came from.")
    error: str | None = Field(None, description="Why the run failed, if it did.")


class ConsensusOut(BaseModel):
    """The judge panel's combined score."""

    score: float = Field(description="Median of the judges' overall scores, unrounded.")
    shown: str = Field(description="The score as displayed: two decimals, rounded half up.")
    interval: tuple[float, float] | None = Field(None, description="Uncertainty interval (lo, hi).")
    interval_method: str | None = Field(None, description="range | bootstrap90.")
    agreement: float | None = Field(None, description="Krippendorff's alpha; None when undefined.")
    n_judges: int | None = Field(None, description="Judges on the panel.")
    withheld: bool = Field(False, description="True when the run is flagged: not published, shown for review.")


class ReviewEntry(BaseModel):
    """One review action on the run."""

    action: str = Field(description="approve | flag | clear | comment.")
    by: str = Field(description="Who acted.")
    note: str | None = Field(None, description="Their note.")
    at: datetime | None = Field(None, description="When (UTC).")


class ReviewInfo(BaseModel):
    """The run's review state and history."""

    status: str = Field(description="unreviewed | approved | flagged.")
    flagged: bool = Field(description="True when the run is flagged (its score is withheld).")
    history: list[ReviewEntry] = Field(default_factory=list, description="Review actions, oldest first.")


class Transcript(BaseModel):
    """Everything recorded about one debate run, in reading order."""

    version: int = Field(TRANSCRIPT_VERSION, description="Transcript format version.")
    agents: AgentsLabel = Field(
        description="model | heuristic (offline agents, no model) | mixed | none (no turns yet)."
    )
    run: RunInfo = Field(description="The run: backend, models, settings, times, spend.")
    hypothesis: HypothesisInfo | None = Field(description="The hypothesis debated (None if gone).")
    evidence: list[EvidenceOut] = Field(default_factory=list, description="Evidence snapshot, by rank.")
    rounds: list[RoundOut] = Field(default_factory=list, description="Debate rounds, in order.")
    judges: list[JudgeOut] = Field(default_factory=list, description="Judge turns, by seat.")
    consensus: ConsensusOut | None = Field(None, description="Panel consensus (None before judging).")
    review: ReviewInfo = Field(description="Review state and history.")
    unmatched_attempts: list[AttemptOut] = Field(
        default_factory=list, description="Calls whose turn was never written (it failed for good)."
    )


# ---------------------------------------------------------------- assembling from the database


def _usage(prompt_tokens: int | None, completion_tokens: int | None) -> Usage:
    return Usage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)


def _attempt_out(a: Attempt) -> AttemptOut:
    return AttemptOut(
        round=a.round, role=a.role, seat=a.seat, n=a.n, kind=a.kind, outcome=a.outcome,
        http_status=a.http_status, error=a.error, raw_reply=a.raw_reply, model=a.model,
        usage=_usage(a.prompt_tokens, a.completion_tokens), cost_usd=a.cost_usd,
        latency_ms=a.latency_ms, started_at=as_utc(a.started_at),
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


def _claims(parsed: Mapping[str, Any], citations: list[CitationOut], known: set[str]) -> list[ClaimOut]:
    """Claims with each cited id marked valid or not.

    Validity comes from the citation check stored with the turn; an id missing from it is
    checked against this run's evidence ids directly.
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
        out.append(ClaimOut(text=str(claim.get("text", "")), citations=cited))
    return out


def _float(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    return float(x)


def _turn_fields(t: Turn, attempts: list[AttemptOut], known: set[str]) -> dict[str, Any]:
    parsed = t.parsed if isinstance(t.parsed, dict) else {}
    citations = _citations(t.citations)
    argument = parsed.get("argument")
    concede = parsed.get("concede")
    return dict(
        round=t.round, role=t.role, seat=t.seat, backend=t.backend, label=t.label, model=t.model,
        prompt_name=t.prompt_name, prompt_version=t.prompt_version, prompt_hash=t.prompt_hash,
        messages=_messages(t.messages), raw_reply=t.raw_reply, parsed=parsed,
        argument=argument if isinstance(argument, str) else None,
        claims=_claims(parsed, citations, known),
        concede=concede if isinstance(concede, bool) else None,
        citations=citations, usage=_usage(t.prompt_tokens, t.completion_tokens), cost_usd=t.cost_usd,
        latency_ms=t.latency_ms, created_at=as_utc(t.created_at), attempts=attempts,
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
    return JudgeOut(
        **fields,
        scores=scores,
        overall=t.overall,
        confidence=_float(parsed.get("confidence")),
        rationale=rationale if isinstance(rationale, str) else "",
        persona=persona if isinstance(persona, str) else None,
        emphasis=[str(e) for e in emphasis] if isinstance(emphasis, list | tuple) else [],
        critic_first=critic_first if isinstance(critic_first, bool) else None,
    )


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
    run = session.get(Run, run_id)
    if run is None:
        raise NotFoundError(f"unknown run id {run_id!r}")
    hyp = session.get(Hypothesis, run.hypothesis_id)
    evidence_rows = session.exec(
        select(Evidence).where(Evidence.run_id == run_id).order_by(Evidence.rank, Evidence.eid)
    ).all()
    turn_rows = session.exec(
        select(Turn).where(Turn.run_id == run_id).order_by(Turn.round, Turn.role, Turn.seat)
    ).all()
    attempt_rows = session.exec(
        select(Attempt)
        .where(Attempt.run_id == run_id)
        .order_by(Attempt.round, Attempt.role, Attempt.seat, Attempt.n)
    ).all()
    review_rows = session.exec(
        select(Review).where(Review.run_id == run_id).order_by(Review.at, Review.id)
    ).all()

    known = {e.eid for e in evidence_rows}
    attempts_by_turn: dict[tuple[int, str, int], list[AttemptOut]] = defaultdict(list)
    for a in attempt_rows:
        attempts_by_turn[(a.round, a.role, a.seat)].append(_attempt_out(a))

    rounds: dict[int, RoundOut] = {}
    judges: list[JudgeOut] = []
    for t in turn_rows:
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
    ordered_rounds = [rounds[r] for r in sorted(rounds)]
    judges.sort(key=lambda j: (j.seat, j.round))

    # Who cited each evidence item, in reading order.
    cited_by: dict[str, list[str]] = defaultdict(list)
    readers = [(f"round {r.round} {x.role}", x) for r in ordered_rounds for x in (r.proposer, r.critic) if x]
    for who, turn in readers + [(f"judge {j.seat}", j) for j in judges]:
        for c in turn.citations:
            if c.valid and who not in cited_by[c.eid]:
                cited_by[c.eid].append(who)

    consensus: ConsensusOut | None = None
    if run.score is not None:
        has_interval = run.interval_lo is not None and run.interval_hi is not None
        consensus = ConsensusOut(
            score=run.score,
            shown=display_score(run.score),
            interval=(run.interval_lo, run.interval_hi) if has_interval else None,  # type: ignore[arg-type]
            interval_method=run.interval_method,
            agreement=run.agreement,
            n_judges=run.n_judges,
            withheld=run.flagged,
        )

    return Transcript(
        agents=_agents_label({t.label for t in turn_rows}),
        run=RunInfo(
            id=run.id, status=run.status, backend=run.backend, models=run.models or {}, trigger=run.trigger,
            batch_id=run.batch_id, rounds_done=run.rounds_done, created_at=as_utc(run.created_at),
            started_at=as_utc(run.started_at), retrieved_at=as_utc(run.retrieved_at),
            finished_at=as_utc(run.finished_at),
            usage=_usage(run.prompt_tokens, run.completion_tokens), cost_usd=run.cost_usd,
            config=run.config or {}, prompt_hashes=run.prompt_hashes or {}, kb_hash=run.kb_hash,
            error=run.error,
        ),
        hypothesis=HypothesisInfo(
            id=hyp.id, title=hyp.title, statement=hyp.statement, targets=list(hyp.targets or []),
            diseases=list(hyp.diseases or []), mechanisms=list(hyp.mechanisms or []),
        ) if hyp is not None else None,
        evidence=[
            EvidenceOut(
                eid=e.eid, rank=e.rank, page_slug=e.page_slug, page_hash=e.page_hash,
                heading_path=list(e.heading_path or []), text=e.text, score=e.score,
                facts=list(e.facts or []), cited_by=cited_by.get(e.eid, []),
            )
            for e in evidence_rows
        ],
        rounds=ordered_rounds,
        judges=judges,
        consensus=consensus,
        review=ReviewInfo(
            status=run.review_status,
            flagged=run.flagged,
            history=[ReviewEntry(action=r.action, by=r.by, note=r.note, at=as_utc(r.at)) for r in review_rows],
        ),
        unmatched_attempts=[a for key in sorted(attempts_by_turn) for a in attempts_by_turn[key]],
    )


# ---------------------------------------------------------------- shared formatting


def agents_line(t: Transcript) -> str:
    """Who did the talking, in words (heuristic runs must never read as model output)."""
    models = ", ".join(f"{k}: {v}" for k, v in t.run.models.items() if v) or "default models"
    if t.agents == "heuristic":
        return HEURISTIC_LABEL
    if t.agents == "mixed":
        return f"model agents (backend {t.run.backend}; {models}) with some offline heuristic turns"
    if t.agents == "none":
        return f"no turns recorded yet (backend {t.run.backend})"
    return f"model agents (backend {t.run.backend}; {models})"


def _score(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "—"
    return display_score(x)


def _num(x: float | None, digits: int = 2) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def _cost(x: float | None) -> str:
    return "—" if x is None else f"${x:.4f}"


def _ms(x: float | None) -> str:
    return "—" if x is None else f"{x:.0f} ms"


def _tokens(u: Usage) -> str:
    if u.total is None:
        return "—"
    return f"{u.prompt_tokens or 0} + {u.completion_tokens or 0} tokens"


def _ts(dt: datetime | None) -> str:
    return "—" if dt is None else dt.strftime("%Y-%m-%d %H:%M:%S UTC")


def _heading(path: list[str]) -> str:
    return " › ".join(path) if path else "(top)"


def _cite(c: CitationOut) -> str:
    return f"[{c.eid}]" if c.valid else f"[{c.eid} {INVALID_MARK}]"


def _who(turn: TurnOut) -> str:
    if turn.role == "judge":
        return f"Judge {turn.seat}"
    return turn.role.capitalize()


def _turn_header(turn: TurnOut) -> str:
    return (
        f"{turn.label} · {turn.model} · prompt {turn.prompt_name} v{turn.prompt_version} "
        f"({turn.prompt_hash[:12]}) · {_tokens(turn.usage)} · {_cost(turn.cost_usd)} · {_ms(turn.latency_ms)}"
    )


def _attempt_line(a: AttemptOut) -> str:
    bits = [f"#{a.n} {a.kind}: {a.outcome}"]
    if a.http_status is not None:
        bits.append(f"HTTP {a.http_status}")
    if a.error:
        bits.append(a.error)
    bits += [a.model, _tokens(a.usage), _cost(a.cost_usd), _ms(a.latency_ms)]
    return " · ".join(bits)


def _consensus_line(c: ConsensusOut) -> str:
    parts = [f"score {c.shown} (unrounded {c.score!r})"]
    if c.interval is not None:
        parts.append(f"interval {_score(c.interval[0])}–{_score(c.interval[1])} ({c.interval_method or '?'})")
    parts.append(f"agreement α = {_num(c.agreement)}")
    if c.n_judges is not None:
        parts.append(f"{c.n_judges} judges")
    line = " · ".join(parts)
    return f"{line} — {WITHHELD_MARK}" if c.withheld else line


def _wrap(text: str, indent: str, width: int = 100) -> str:
    """Wrap each paragraph of ``text`` to ``width``, keeping the author's line breaks."""
    lines = []
    for para in text.splitlines() or [""]:
        lines.append(textwrap.fill(para, width=width, initial_indent=indent, subsequent_indent=indent) or indent)
    return "\n".join(line.rstrip() for line in lines)


# ---------------------------------------------------------------- plain text


def _text_turn(turn: TurnOut) -> list[str]:
    out = [f"--- {_who(turn)} ({_turn_header(turn)})"]
    if turn.argument is not None:
        out.append(_wrap(turn.argument, "  "))
    else:
        out.append(_wrap(turn.raw_reply, "  "))
    if turn.claims:
        out.append("  Claims:")
        for i, claim in enumerate(turn.claims, 1):
            cites = " ".join(_cite(c) for c in claim.citations)
            out.append(_wrap(f"{i}. {claim.text} {cites}".rstrip(), "    "))
    if turn.concede is not None:
        out.append(f"  Concedes: {'yes' if turn.concede else 'no'}")
    if turn.attempts:
        out.append("  Attempts:")
        out += [f"    {_attempt_line(a)}" for a in turn.attempts]
    return out


def _judge_table(judges: list[JudgeOut]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the judge table: one row per dimension, one column per judge."""
    header = ["dimension"] + [f"judge {j.seat}" for j in judges]
    rows = [[d] + [_score(j.scores.get(d)) for j in judges] for d in DIMENSIONS]
    rows.append(["overall"] + [_score(j.overall) for j in judges])
    rows.append(["confidence"] + [_score(j.confidence) for j in judges])
    return header, rows


def _render_text(t: Transcript) -> str:
    out: list[str] = []
    out.append(f"DEBATE TRANSCRIPT — run {t.run.id} (transcript v{t.version})")
    out.append(f"Agents: {agents_line(t)}")
    out.append("")
    if t.hypothesis is not None:
        h = t.hypothesis
        out.append(f"Hypothesis {h.id}: {h.title}")
        if h.statement:
            out.append(_wrap(h.statement, "  "))
        out.append(f"  Targets: {', '.join(h.targets) or '—'}")
        out.append(f"  Diseases: {', '.join(h.diseases) or '—'}")
        out.append(f"  Mechanisms: {', '.join(h.mechanisms) or '—'}")
    else:
        out.append("Hypothesis: (no longer stored)")
    r = t.run
    out.append("")
    out.append(f"Run: status {r.status} · trigger {r.trigger} · batch {r.batch_id or '—'} · rounds {r.rounds_done}")
    out.append(f"  created {_ts(r.created_at)} · started {_ts(r.started_at)}")
    out.append(f"  evidence retrieved {_ts(r.retrieved_at)} · finished {_ts(r.finished_at)}")
    out.append(f"  usage {_tokens(r.usage)} · cost {_cost(r.cost_usd)} · KB {r.kb_hash or '—'}")
    if r.prompt_hashes:
        out.append("  prompts: " + ", ".join(f"{k}={v[:12]}" for k, v in sorted(r.prompt_hashes.items())))
    if r.config:
        out.append("  config: " + json.dumps(r.config, sort_keys=True, ensure_ascii=False))
    if r.error:
        out.append(f"  ERROR: {r.error}")

    for rnd in t.rounds:
        out += ["", f"=== Round {rnd.round} ==="]
        for turn in (rnd.proposer, rnd.critic):
            if turn is not None:
                out += _text_turn(turn)

    if t.judges:
        out += ["", "=== Judges ==="]
        header, rows = _judge_table(t.judges)
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

        def line(row: list[str]) -> str:
            return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))

        out.append(line(header))
        out.append("  ".join("-" * w for w in widths))
        out += [line(row) for row in rows]
        for j in t.judges:
            order = ""
            if j.critic_first is not None:
                order = f" · saw {'critic' if j.critic_first else 'proposer'} first"
            out += ["", f"--- Judge {j.seat} ({_turn_header(j)})"]
            out.append(f"  Persona: {j.persona or '—'}{order}")
            if j.emphasis:
                out.append(f"  Emphasis: {', '.join(j.emphasis)}")
            out.append(_wrap(j.rationale or "(no rationale)", "  "))
            if j.attempts:
                out.append("  Attempts:")
                out += [f"    {_attempt_line(a)}" for a in j.attempts]

    out += ["", "=== Consensus ==="]
    out.append(_consensus_line(t.consensus) if t.consensus else "none (no judge verdicts recorded)")

    out += ["", "=== Evidence ==="]
    if not t.evidence:
        out.append("(no evidence was retrieved)")
    for e in t.evidence:
        out.append(f"[{e.eid}] {e.page_slug} — {_heading(e.heading_path)} (rank {e.rank}, score {e.score:.3f})")
        out.append(_wrap(e.text, "    "))
        if e.cited_by:
            out.append(f"    cited by: {', '.join(e.cited_by)}")

    if t.unmatched_attempts:
        out += ["", "=== Calls without a recorded turn ==="]
        out += [f"round {a.round} {a.role} seat {a.seat}: {_attempt_line(a)}" for a in t.unmatched_attempts]

    out += ["", "=== Review ==="]
    flag_note = " (flagged)" if t.review.flagged and t.review.status != "flagged" else ""
    out.append(f"Status: {t.review.status}{flag_note}")
    for rv in t.review.history:
        out.append(f"  {_ts(rv.at)} {rv.action} by {rv.by}" + (f": {rv.note}" if rv.note else ""))
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- Markdown


def _md(text: str) -> str:
    """Untrusted text for Markdown: HTML-significant characters as entities."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _md_cell(text: str) -> str:
    return _md(text).replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _md_quote(text: str) -> str:
    return "\n".join(f"> {line}".rstrip() for line in _md(text).splitlines() or [""])


def _md_table(header: list[str], rows: list[list[str]], right_from: int = 1) -> list[str]:
    align = ["---" if i < right_from else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(_md_cell(h) for h in header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return lines


def _md_turn(turn: TurnOut) -> list[str]:
    out = [f"### {_who(turn)}", "", f"*{_md(_turn_header(turn))}*", ""]
    out.append(_md_quote(turn.argument if turn.argument is not None else turn.raw_reply))
    if turn.claims:
        out += ["", "**Claims**", ""]
        for i, claim in enumerate(turn.claims, 1):
            cites = " ".join(_cite(c) for c in claim.citations)
            out.append(f"{i}. {_md(' '.join(claim.text.split()))} {_md(cites)}".rstrip())
    if turn.concede is not None:
        out += ["", f"Concedes: **{'yes' if turn.concede else 'no'}**"]
    if turn.attempts:
        out += ["", "**Attempts**", ""]
        out += [f"- {_md(_attempt_line(a))}" for a in turn.attempts]
    out.append("")
    return out


def _render_md(t: Transcript) -> str:
    out: list[str] = [f"# Debate transcript — run `{t.run.id}`", ""]
    out += [f"**Agents:** {_md(agents_line(t))}  ", f"Transcript format v{t.version}", ""]
    out += ["## Hypothesis", ""]
    if t.hypothesis is not None:
        h = t.hypothesis
        out += [f"**{_md(h.title)}** (`{h.id}`)", ""]
        if h.statement:
            out += [_md_quote(h.statement), ""]
        out += _md_table(
            ["", ""],
            [["Targets", ", ".join(h.targets) or "—"], ["Diseases", ", ".join(h.diseases) or "—"],
             ["Mechanisms", ", ".join(h.mechanisms) or "—"]],
            right_from=2,
        )
    else:
        out.append("(no longer stored)")
    r = t.run
    out += ["", "## Run", ""]
    out += _md_table(
        ["", ""],
        [
            ["Status", r.status], ["Backend", r.backend], ["Trigger", r.trigger], ["Batch", r.batch_id or "—"],
            ["Rounds", str(r.rounds_done)], ["Created", _ts(r.created_at)], ["Started", _ts(r.started_at)],
            ["Evidence retrieved", _ts(r.retrieved_at)],
            ["Finished", _ts(r.finished_at)], ["Usage", _tokens(r.usage)], ["Cost", _cost(r.cost_usd)],
            ["KB hash", r.kb_hash or "—"],
            ["Prompts", ", ".join(f"{k}={v[:12]}" for k, v in sorted(r.prompt_hashes.items())) or "—"],
            ["Config", json.dumps(r.config, sort_keys=True, ensure_ascii=False) if r.config else "—"],
            *([["Error", r.error]] if r.error else []),
        ],
        right_from=2,
    )

    for rnd in t.rounds:
        out += ["", f"## Round {rnd.round}", ""]
        for turn in (rnd.proposer, rnd.critic):
            if turn is not None:
                out += _md_turn(turn)

    if t.judges:
        out += ["", "## Judges", ""]
        out += _md_table(*_judge_table(t.judges))
        for j in t.judges:
            out += ["", f"### Judge {j.seat}", "", f"*{_md(_turn_header(j))}*", ""]
            out.append(f"- Persona: {_md(j.persona or '—')}")
            if j.emphasis:
                out.append(f"- Emphasis: {_md(', '.join(j.emphasis))}")
            if j.critic_first is not None:
                out.append(f"- Saw {'critic' if j.critic_first else 'proposer'} first")
            out += ["", _md_quote(j.rationale or "(no rationale)")]
            if j.attempts:
                out += ["", "**Attempts**", ""]
                out += [f"- {_md(_attempt_line(a))}" for a in j.attempts]

    out += ["", "## Consensus", ""]
    out.append(_md(_consensus_line(t.consensus)) if t.consensus else "None (no judge verdicts recorded).")
    if t.consensus and t.consensus.withheld:
        out[-1] = out[-1].replace(WITHHELD_MARK, f"**{WITHHELD_MARK}**")

    out += ["", "## Evidence", ""]
    if not t.evidence:
        out.append("(no evidence was retrieved)")
    for e in t.evidence:
        out += [
            f"### {e.eid} — `{e.page_slug}` › {_md(_heading(e.heading_path))}", "",
            f"*rank {e.rank} · score {e.score:.3f} · page hash `{e.page_hash[:12]}`*", "",
            _md_quote(e.text), "",
        ]
        if e.cited_by:
            out += [f"Cited by: {', '.join(e.cited_by)}", ""]

    if t.unmatched_attempts:
        out += ["", "## Calls without a recorded turn", ""]
        out += [f"- round {a.round} {a.role} seat {a.seat}: {_md(_attempt_line(a))}" for a in t.unmatched_attempts]

    flag_note = " (flagged)" if t.review.flagged and t.review.status != "flagged" else ""
    out += ["", "## Review", "", f"Status: **{t.review.status}**{flag_note}", ""]
    for rv in t.review.history:
        out.append(f"- {_ts(rv.at)} **{_md(rv.action)}** by {_md(rv.by)}" + (f": {_md(rv.note)}" if rv.note else ""))
    return "\n".join(out).rstrip() + "\n"


# ---------------------------------------------------------------- HTML

TEMPLATES_DIR = Path(__file__).parent / "templates"


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _html_env() -> Environment:
    # autoescape=True: every value from a page or a model is escaped; nothing is marked safe.
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        score=_score, num=_num, cost=_cost, ms=_ms, tokens=_tokens, ts=_ts, heading=_heading,
        pretty=_pretty, color=score_color,
    )
    return env


_ENV = _html_env()


def _render_html(t: Transcript) -> str:
    return _ENV.get_template("transcript.html.j2").render(
        t=t, agents_line=agents_line(t), dimensions=DIMENSIONS,
        invalid_mark=INVALID_MARK, withheld_mark=WITHHELD_MARK,
    )


# ---------------------------------------------------------------- entry point


def render(t: Transcript, fmt: Format) -> str:
    """The transcript as ``text``, ``md`` (Markdown), ``json`` or ``html`` (a standalone page)."""
    if fmt == "text":
        return _render_text(t)
    if fmt == "md":
        return _render_md(t)
    if fmt == "json":
        return t.model_dump_json(indent=2)
    if fmt == "html":
        return _render_html(t)
    raise ValueError(f"unknown transcript format {fmt!r} (expected text, md, json or html)")
