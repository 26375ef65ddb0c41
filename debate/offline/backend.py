"""The offline backend: proposer, critic and judges as deterministic functions of the view."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from pydantic import BaseModel

from debate.core.calls import Attempt, ChatMessage, Usage
from debate.core.models import Claim, CriticReply, DimensionScores, JudgeReply, ProposerReply
from debate.core.protocol import AgentResult, DebateView, JudgeSeat
from debate.core.rubric import DIMENSIONS, Rubric
from debate.offline.case import _answers, _Case, _case, _fmt_ids, _support_text
from debate.offline.judge import _confidence, _judge_inputs, _JudgeInputs, judge_scores
from debate.offline.rules import (
    MODEL,
    OBJECTIONS_PER_ROUND,
    OPENING_CITES,
    RULES_HASH,
    STAGE_NAMES,
    SYSTEM_PROMPTS,
)


def _result(role: str, reply: BaseModel, user: str, started: datetime, t0: float) -> AgentResult:
    raw = reply.model_dump_json()
    messages = [ChatMessage(role="system", content=SYSTEM_PROMPTS[role]), ChatMessage(role="user", content=user)]
    attempt = Attempt(
        n=1,
        kind="first",
        started_at=started,
        latency_ms=(time.perf_counter() - t0) * 1000.0,
        outcome="ok",
        http_status=None,
        error=None,
        raw_reply=raw,
        usage=Usage(),
        cost_usd=None,
        model=MODEL,
        messages_sent=len(messages),
    )
    return AgentResult(
        reply=reply,
        raw=raw,
        messages=messages,
        attempts=[attempt],
        model=MODEL,
        label="heuristic",
        prompt={"name": f"offline-{role}", "version": "1", "hash": RULES_HASH},
    )


class OfflineBackend:
    """Deterministic proposer, critic and judges computed from evidence features (no model).

    Replies, raw replies and messages depend only on the view (and the seat); only the attempt's
    ``started_at`` and ``latency_ms`` vary between runs.
    """

    name = "offline"

    def __init__(self, rubric: Rubric | None = None) -> None:
        self.rubric = rubric or Rubric.default()

    # -- proposer

    async def propose(self, view: DebateView) -> AgentResult:
        """The case for the hypothesis; later rounds answer the critic's latest objections."""
        started, t0 = datetime.now(UTC), time.perf_counter()
        case = _case(view)
        # Only earlier rounds count: a re-run node must not take its own reply as history.
        mine = [t for t in view.turns if t.role == "proposer" and t.round < view.round]
        cited_before = list(dict.fromkeys(e for t in mine for c in t.reply.claims for e in c.evidence_ids))
        fresh = [f for f in case.support if f.eid not in cited_before]
        critic_turns = [t for t in view.turns if t.role == "critic" and t.round < view.round]
        latest = max(critic_turns, key=lambda t: t.round).reply.claims if critic_turns else None
        claims: list[Claim] = []
        if latest is None:
            claims = [case.claim(_support_text(f), [f.eid]) for f in fresh[:OPENING_CITES]]
            if not claims:
                claims.append(
                    Claim(
                        text="No retrieved item supports the hypothesis directly; it "
                        "rests on its stated mechanism alone.",
                        evidence_ids=[],
                    )
                )
            lead = "Opening case"
        else:
            for obj in latest:
                if not fresh:
                    break
                f = min(fresh, key=lambda x: (not _answers(x, obj, case), -x.strength, case.order[x.eid]))
                fresh.remove(f)
                claims.append(case.claim(f'Against "{obj.text}": {_support_text(f)}', [f.eid]))
            if len(claims) < len(latest) or not latest:
                # Stable wording, so a round that adds nothing reads the same as the last one.
                rests_on = [*cited_before, *(c.evidence_ids[0] for c in claims)]
                claims.append(
                    Claim(
                        text=f"No supporting evidence remains uncited; the case rests on {_fmt_ids(rests_on)}.",
                        evidence_ids=[],
                    )
                )
            lead = f"Answering the critic's {len(latest)} latest objection(s)"
        missing = f" (no item names {', '.join(case.missing)})" if case.missing else ""
        argument = (
            f'{lead} for "{case.title}": {len(case.support)} of {len(case.items)} retrieved items '
            f"support it; target coverage {case.coverage:.2f}{missing}; best stage on target "
            f"{STAGE_NAMES[case.best_stage]}; new citations this round: "
            f"{_fmt_ids([e for c in claims for e in c.evidence_ids])}."
        )
        objections = " | ".join(c.text for c in latest) if latest else "(none yet)"
        user = "\n".join(
            [
                *case.header(view),
                f"Previously cited by the proposer: {_fmt_ids(cited_before)}.",
                f"Critic's latest objections: {objections}",
            ]
        )
        return _result("proposer", ProposerReply(argument=argument, claims=claims), user, started, t0)

    # -- critic

    @staticmethod
    def _objections(case: _Case, view: DebateView) -> list[Claim]:
        """Every objection the critic could make now, most severe first."""
        out = [case.claim(text, ids, contrary=True) for text, ids in case.objections]
        p_cited = dict.fromkeys(
            e
            for t in view.turns
            if t.role == "proposer" and t.round <= view.round
            for c in t.reply.claims
            for e in c.evidence_ids
        )
        invalid = [e for e in p_cited if e not in case.by_id]
        if invalid:
            out.append(
                Claim(
                    text=f"The proposer cites {_fmt_ids(invalid)}, which name no retrieved evidence.", evidence_ids=[]
                )
            )
        off = [e for e in p_cited if e in case.by_id and not case.by_id[e].relevant]
        if off:
            out.append(
                case.claim(f"{_fmt_ids(off)}, cited by the proposer, name none of the targets or mechanisms.", off)
            )
        return out

    async def critique(self, view: DebateView) -> AgentResult:
        """Objections from contrary or missing evidence; concedes when nothing new is left."""
        started, t0 = datetime.now(UTC), time.perf_counter()
        case = _case(view)
        made = {c.text for t in view.turns if t.role == "critic" and t.round < view.round for c in t.reply.claims}
        pending = [c for c in self._objections(case, view) if c.text not in made]
        claims = pending[:OBJECTIONS_PER_ROUND]
        p_ids = [
            e
            for t in view.turns
            if t.role == "proposer" and t.round == view.round
            for c in t.reply.claims
            for e in c.evidence_ids
        ]
        stats = (
            f"{len(case.contra)} of {len(case.items)} items report failures, halts or safety "
            f"signals; {len(case.missing)} target(s) have no evidence; "
            f"{len(case.relevant)} items are relevant"
        )
        if claims:
            argument = (
                f'{len(claims)} new objection(s) to "{case.title}" '
                f"({len(pending) - len(claims)} more held back): {stats}. The proposer's "
                f"latest turn cites {_fmt_ids(p_ids)}."
            )
        else:
            argument = (
                f"No objection remains that has not already been made ({len(made)} "
                f"raised before); {stats}. The critic concedes."
            )
        user = "\n".join(
            [
                *case.header(view),
                f"Proposer's latest citations: {_fmt_ids(p_ids)}.",
                f"Objections already made: {len(made)}.",
            ]
        )
        reply = CriticReply(argument=argument, claims=claims, concede=not claims)
        return _result("critic", reply, user, started, t0)

    # -- judge

    async def judge(self, view: DebateView, seat: JudgeSeat) -> AgentResult:
        """Ten dimension scores from named features and the debate's citations, per persona."""
        started, t0 = datetime.now(UTC), time.perf_counter()
        case = _case(view)
        inputs = _judge_inputs(case, view)
        scores, terms = judge_scores(inputs.values, seat)
        reply = JudgeReply(
            scores=DimensionScores(**scores),
            confidence=_confidence(inputs.values),
            rationale=self._rationale(seat, scores, terms, inputs),
        )
        # The seat's side order is shown (as a model judge would see it) but scores ignore it.
        sides = ("critic", "proposer") if seat.critic_first else ("proposer", "critic")
        turns = sorted(view.turns, key=lambda t: (t.round, sides.index(t.role)))
        history = [
            f"Round {t.round} {t.role}: {len(t.reply.claims)} claim(s), cites "
            f"{_fmt_ids([e for c in t.reply.claims for e in c.evidence_ids])}"
            for t in turns
        ]
        feats = " ".join(f"{k}={v:.2f}" for k, v in inputs.values.items())
        user = "\n".join(
            [
                f"Seat {seat.seat}: {seat.persona}; emphasis: {', '.join(seat.emphasis)}; "
                f"{sides[0]} shown first (side order does not affect these scores).",
                *case.header(view),
                *history,
                f"Judge features: {feats}",
            ]
        )
        return _result("judge", reply, user, started, t0)

    def _rationale(
        self, seat: JudgeSeat, scores: dict[str, float], terms: dict[str, list[tuple[str, float]]], inputs: _JudgeInputs
    ) -> str:
        # The dimensions that move the weighted overall most: rubric weight x distance from 0.5.
        w = self.rubric.weights
        top = sorted(range(len(DIMENSIONS)), key=lambda i: (-w[DIMENSIONS[i]] * abs(scores[DIMENSIONS[i]] - 0.5), i))[
            :3
        ]
        parts = []
        for d in (DIMENSIONS[i] for i in top):
            drivers = sorted((t for t in terms[d] if t[1]), key=lambda t: (-abs(t[1]), t[0]))[:2]
            said = (
                "; ".join(
                    f"{feat} {'+' if c > 0 else '-'}{abs(c):.2f}"
                    + (f" ({_fmt_ids(inputs.ids[feat])})" if inputs.ids.get(feat) else "")
                    for feat, c in drivers
                )
                or "no feature moved it from its base"
            )
            parts.append(f"{d} {scores[d]:.2f}: {said}")
        emphasis = ", ".join(d for d in DIMENSIONS if d in seat.emphasis) or "no dimension"
        return f"Seat {seat.seat} ({seat.persona}) judges {emphasis} strictly. " + ". ".join(parts) + "."
