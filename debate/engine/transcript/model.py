"""The transcript's pydantic types: a versioned, documented record of one debate run.

Every field carries a description because the JSON rendering and the HTTP API publish this
model as-is; :data:`TRANSCRIPT_VERSION` tells readers when a field's meaning changes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from debate.core.calls import PromptFit
from debate.core.quotes import Mark

TRANSCRIPT_VERSION = 2
"""Bumped whenever a field of :class:`Transcript` changes meaning, is renamed or removed.

2: each proposer/critic claim carries its ``quote``, its ``mark`` (the quote checked against the
evidence it cites) and ``found_in``; the run carries ``claims_verified``, ``claims_cited`` and
``verified_rate``. Version 1 JSON still validates, with those fields empty (not checked).
"""

Format = Literal["text", "md", "json", "html"]
AgentsLabel = Literal["model", "heuristic", "mixed", "none"]


class Usage(BaseModel):
    """Token counts reported for a call (None when the backend reported none)."""

    prompt_tokens: int | None = Field(None, description="Tokens sent.")
    completion_tokens: int | None = Field(None, description="Tokens generated.")
    estimated: bool = Field(False, description="True when the endpoint reported none and these are estimates.")

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
    outcome: str = Field(description="ok | invalid_reply | http_error | timeout | connection_error | cancelled.")
    http_status: int | None = Field(None, description="HTTP status of a failed call, when there was one.")
    error: str | None = Field(None, description="Why the call failed, as recorded.")
    raw_reply: str | None = Field(None, description="The reply text exactly as received, if any.")
    model: str = Field(description="Model the call was made to.")
    served_model: str | None = Field(None, description="Model the server said answered, when it said.")
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
    """A claim of a proposer or critic turn with its checked citations and quote."""

    text: str = Field(description="The claim as written.")
    citations: list[CitationOut] = Field(default_factory=list, description="Cited evidence, in order.")
    quote: str = Field(
        "", description="The passage the agent quoted from its cited evidence, as written; may be empty."
    )
    mark: Mark | None = Field(
        None,
        description="The quote checked against the cited evidence: verified (found in a cited item), "
        "quote-not-found, not-retrieved (it cites an id naming no retrieved evidence) or uncited (it cites "
        "nothing); None when the turn was recorded before quotes were checked.",
    )
    found_in: str | None = Field(None, description="verified: the evidence id whose text holds the quote; else None.")


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
    fit: PromptFit | None = Field(
        None, description="How the prompt was fitted to the context window (what was left out); None: not counted."
    )


class JudgeOut(TurnOut):
    """A judge's turn with its verdict pulled out of the parsed reply."""

    scores: dict[str, float] = Field(default_factory=dict, description="Dimension scores, rubric order.")
    overall: float | None = Field(None, description="Weighted rubric score, computed by the engine.")
    confidence: float | None = Field(None, description="The judge's stated confidence in [0, 1].")
    rationale: str = Field("", description="The judge's reasons.")
    persona: str | None = Field(None, description="Persona the judge was given.")
    emphasis: list[str] = Field(default_factory=list, description="Dimensions the persona weighs most.")
    critic_first: bool | None = Field(None, description="True when the judge saw the critic's side first.")
    cap: float | None = Field(
        None, description="Cap on the evidence dimensions from the debate's verified claims; None: not bounded."
    )
    capped: dict[str, float] = Field(
        default_factory=dict, description="Dimension -> the judge's own score that the cap cut (scores shows it too)."
    )
    contradictions: list[str] = Field(
        default_factory=list,
        description="Why the verdict contradicts the debate's verification; when any, it is left out of the consensus.",
    )


class EmptySeat(BaseModel):
    """A judge seat with no valid verdict: the judge failed for good, and the consensus went on without it."""

    seat: int = Field(description="Panel seat.")
    persona: str | None = Field(None, description="Persona the judge was given.")
    error: str | None = Field(None, description="Why its last call failed, as recorded.")
    attempts: list[AttemptOut] = Field(default_factory=list, description="Calls made for the seat, by n.")


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
    score: float = Field(description="Raw retrieval score (BM25 or ts_rank_cd; comparable only within one search).")
    relevance: float | None = Field(
        default=None,
        description="Score over the best score of the same search, in [0, 1]; 1 at rank 1. None before schema 0007.",
    )
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
    usage: Usage = Field(
        default_factory=Usage, description="Tokens of the whole run: every call it made, failed and cancelled ones too."
    )
    cost_usd: float | None = Field(None, description="Cost of the whole run in US dollars, when known.")
    config: dict[str, Any] = Field(default_factory=dict, description="Settings the run used.")
    prompt_hashes: dict[str, str] = Field(default_factory=dict, description="Prompt template hashes by name.")
    kb_hash: str | None = Field(None, description="Hash of the KB the evidence came from.")
    error: str | None = Field(None, description="Why the run failed, if it did.")
    claims_verified: int | None = Field(
        None,
        description="Proposer and critic claims whose quote was found in the evidence they cite; None until "
        "the run is done, and for runs finished before quotes were checked.",
    )
    claims_cited: int | None = Field(
        None,
        description="Their claims that cite evidence (uncited claims are never verified), counted when claims_verified is.",
    )
    verified_rate: float | None = Field(
        None, description="claims_verified / claims_cited in [0, 1]; None when not counted or no claim cited evidence."
    )


class ConsensusOut(BaseModel):
    """The judge panel's combined score."""

    score: float = Field(description="Median of the judges' overall scores, unrounded.")
    shown: str = Field(description="The score as displayed: two decimals, rounded half up.")
    interval: tuple[float, float] | None = Field(None, description="Uncertainty interval (lo, hi).")
    interval_method: str | None = Field(None, description="range | bootstrap90.")
    agreement: float | None = Field(None, description="Krippendorff's alpha; None when undefined.")
    n_judges: int | None = Field(None, description="Judges whose verdicts were counted.")
    judges_seated: int | None = Field(
        None, description="Judges on the panel (more than counted when seats stayed empty)."
    )
    withheld: bool = Field(False, description="True when the run is flagged: not published, shown for review.")


class ReviewEntry(BaseModel):
    """One review action on the run."""

    action: str = Field(description="approve | flag | clear | comment.")
    by: str = Field(description="Who acted.")
    note: str | None = Field(None, description="Their note.")
    at: datetime | None = Field(None, description="When (UTC).")


class ReviewInfo(BaseModel):
    """The run's review state and history."""

    status: str = Field(
        description="unreviewed | approved | flagged | needs_review (a verdict contradicted the debate)."
    )
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
    empty_seats: list[EmptySeat] = Field(
        default_factory=list, description="Judge seats without a valid verdict, by seat (their calls included)."
    )
    consensus: ConsensusOut | None = Field(None, description="Panel consensus (None before judging).")
    review: ReviewInfo = Field(description="Review state and history.")
    unmatched_attempts: list[AttemptOut] = Field(
        default_factory=list, description="Calls whose turn was never written (it failed for good)."
    )
