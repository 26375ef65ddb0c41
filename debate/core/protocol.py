"""The contract between the debate graph and its backends: views in, agent results out.

A backend (model-backed in :mod:`debate.engine.agents`, deterministic in :mod:`debate.offline`)
implements :class:`Backend`: it sees a :class:`DebateView` and returns an :class:`AgentResult`.
The judge panel's seats (:func:`panel`) are part of the contract because both backends
argue from a seat's persona and emphasis.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from pydantic import BaseModel

from debate.core.calls import Attempt, ChatMessage, PromptFit
from debate.core.models import CriticReply, EvidenceItem, HypothesisOut, ProposerReply
from debate.core.quotes import ClaimMark


@dataclass(frozen=True)
class TurnView:
    """An earlier turn as later agents see it, each claim with its verification mark."""

    round: int
    role: Literal["proposer", "critic"]
    reply: ProposerReply | CriticReply
    marks: tuple[ClaimMark, ...] = ()
    """One per claim, in order (empty: not checked)."""

    def verified(self) -> list[int]:
        """Indexes of the claims whose quote was found in the evidence they cite."""
        return [m.claim for m in self.marks if m.mark == "verified"]


@dataclass(frozen=True)
class JudgeSeat:
    """A judge's place on the panel: persona, emphasis, model, and the order it sees the sides in."""

    seat: int
    persona: str
    emphasis: tuple[str, ...]
    critic_first: bool
    model: str | None = None


PERSONAS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "a clinical pharmacologist who has run neurology trials",
        ("safety", "feasibility", "druggability", "therapeutic_potential"),
    ),
    (
        "a molecular neurobiologist focused on disease mechanisms",
        ("mechanistic_plausibility", "novelty", "reproducibility"),
    ),
    (
        "a translational skeptic who reviews evidence for funders",
        ("evidence_strength", "data_availability", "competitive_landscape"),
    ),
)


def panel(n_judges: int, judge_models: list[str] | None = None) -> list[JudgeSeat]:
    """Seats cycle through the personas (and judge models); the side shown first alternates."""
    models = judge_models or []
    return [
        JudgeSeat(
            seat=i,
            persona=PERSONAS[i % len(PERSONAS)][0],
            emphasis=PERSONAS[i % len(PERSONAS)][1],
            critic_first=i % 2 == 1,
            model=models[i % len(models)] if models else None,
        )
        for i in range(n_judges)
    ]


@dataclass
class DebateView:
    """What an agent sees: the hypothesis, the evidence, the turns so far and where the debate is."""

    hypothesis: HypothesisOut
    evidence: list[EvidenceItem]
    turns: list[TurnView]
    round: int
    max_rounds: int


@dataclass
class AgentResult:
    """An agent's validated reply, its raw text, the messages sent and every attempt made."""

    reply: BaseModel
    raw: str
    messages: list[ChatMessage]
    attempts: list[Attempt]
    model: str
    label: Literal["model", "heuristic"]
    prompt: dict[str, str] = field(default_factory=dict)
    fit: PromptFit | None = None
    """How the prompt was fitted to the context window (None: not counted, nothing trimmed)."""


class Backend(Protocol):
    """What the graph needs from a backend: one coroutine per role."""

    name: str

    async def propose(self, view: DebateView) -> AgentResult: ...

    async def critique(self, view: DebateView) -> AgentResult: ...

    async def judge(self, view: DebateView, seat: JudgeSeat) -> AgentResult: ...
