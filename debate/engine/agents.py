"""The agents: proposer, critic and judge, as plain async functions of a debate view.

An agent sees a :class:`DebateView` (hypothesis, evidence, earlier turns) and returns an
:class:`AgentResult` (the validated reply, the raw reply, the messages sent, every attempt).
Two backends implement the three roles behind one :class:`Backend` protocol: the model-backed
one here (prompts + the :mod:`debate.llm.client` seam) and the deterministic one in
:mod:`debate.offline`. Neither touches the database: the graph persists what they return.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from debate.core.calls import ChatClient, ChatMessage
from debate.core.models import CriticReply, EvidenceItem, HypothesisOut, JudgeReply, ProposerReply
from debate.core.protocol import AgentResult, DebateView, JudgeSeat, TurnView
from debate.core.rubric import DIMENSION_DESCRIPTIONS, DIMENSIONS
from debate.llm.prompts import BUNDLED_DIR, load

# ---------------------------------------------------------------- rendering for prompts


def escape_evidence(text: str) -> str:
    """Neutralise our delimiters inside KB text so a page cannot close its evidence block."""
    return text.replace("<evidence", "&lt;evidence").replace("</evidence", "&lt;/evidence")


def render_evidence(evidence: list[EvidenceItem]) -> str:
    if not evidence:
        return "(no evidence was retrieved)"
    return "\n".join(
        f'<evidence id="{e.eid}" page="{e.page_slug}" section="{escape_evidence(" > ".join(e.heading_path))}">\n'
        f"{escape_evidence(e.text)}\n</evidence>"
        for e in evidence
    )


def render_history(turns: list[TurnView], *, critic_first: bool = False) -> str:
    """Earlier turns, round by round; judges on odd seats see the critic's side first."""
    if not turns:
        return "(no turns yet)"
    lines: list[str] = []
    for rnd in sorted({t.round for t in turns}):
        in_round = [t for t in turns if t.round == rnd]
        in_round.sort(key=lambda t: (t.role == "proposer") if critic_first else (t.role != "proposer"))
        for t in in_round:
            claims = "; ".join(f"{c.text} [{', '.join(c.evidence_ids) or 'no citation'}]" for c in t.reply.claims)
            lines.append(f"Round {rnd} {t.role}: {t.reply.argument}\n  Claims: {claims or '(none)'}")
    return "\n".join(lines)


def hypothesis_vars(h: HypothesisOut) -> dict[str, str]:
    return {
        "hypothesis_id": h.id,
        "title": h.title,
        "statement": h.statement or "(none given)",
        "targets": ", ".join(h.targets) or "(none)",
        "diseases": ", ".join(h.diseases) or "(none)",
        "mechanisms": ", ".join(h.mechanisms) or "(none)",
    }


# ---------------------------------------------------------------- the model-backed backend


class ModelBackend:
    """Agents that ask a model through the :class:`~debate.llm.client.ChatClient` seam."""

    name = "openai"

    def __init__(
        self,
        client: ChatClient,
        *,
        model: str,
        role_models: dict[str, str] | None = None,
        prompts_dir: Path = BUNDLED_DIR,
    ) -> None:
        self.client = client
        self.model = model
        self.role_models = role_models or {}
        self.prompts_dir = prompts_dir

    async def _ask(self, name: str, schema: type[BaseModel], model: str, **values: Any) -> AgentResult:
        prompt = load(name, self.prompts_dir)
        system, user = prompt.render(**values)
        messages = [ChatMessage(role="system", content=system), ChatMessage(role="user", content=user)]
        done = await self.client.complete(messages, schema, model=model)
        return AgentResult(
            reply=done.parsed,
            raw=done.raw,
            messages=done.messages,
            attempts=done.attempts,
            model=done.model,
            label="model",
            prompt=prompt.ref,
        )

    async def propose(self, view: DebateView) -> AgentResult:
        return await self._ask(
            "proposer",
            ProposerReply,
            self.role_models.get("proposer", self.model),
            **hypothesis_vars(view.hypothesis),
            evidence=render_evidence(view.evidence),
            history=render_history(view.turns),
            round=str(view.round),
            max_rounds=str(view.max_rounds),
        )

    async def critique(self, view: DebateView) -> AgentResult:
        return await self._ask(
            "critic",
            CriticReply,
            self.role_models.get("critic", self.model),
            **hypothesis_vars(view.hypothesis),
            evidence=render_evidence(view.evidence),
            history=render_history(view.turns),
            round=str(view.round),
            max_rounds=str(view.max_rounds),
        )

    async def judge(self, view: DebateView, seat: JudgeSeat) -> AgentResult:
        h = hypothesis_vars(view.hypothesis)
        rubric = "\n".join(f"  - {d}: {DIMENSION_DESCRIPTIONS[d]}" for d in DIMENSIONS)
        return await self._ask(
            "judge",
            JudgeReply,
            seat.model or self.role_models.get("judge", self.model),
            seat=str(seat.seat),
            persona=seat.persona,
            emphasis=", ".join(seat.emphasis).replace("_", " "),
            rubric=rubric,
            hypothesis_id=h["hypothesis_id"],
            title=h["title"],
            statement=h["statement"],
            targets=h["targets"],
            evidence=render_evidence(view.evidence),
            order_note="critic shown first" if seat.critic_first else "proposer shown first",
            history=render_history(view.turns, critic_first=seat.critic_first),
        )


def dump_reply(reply: BaseModel) -> dict[str, Any]:
    return json.loads(reply.model_dump_json())
