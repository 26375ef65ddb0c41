"""The debate as a LangGraph graph. Routing, at a glance:

    START → retrieve → proposer → critic ─┬─ (more rounds) → next_round → proposer
                                          └─ (rounds done, conceded, or nothing new)
                                               → judge × N (Send, one per seat) → consensus → persist → END

A judge that fails for good leaves its seat empty instead of failing the run: the consensus
needs ``quorum`` verdicts (default a majority of the panel), and below that the run fails.
Either way every call made is kept, a cancelled one's too (:func:`~debate.core.calls.attempt_log`).

Graph state is small (ids and numbers); evidence and turns live in the database, written by
:class:`~debate.engine.runstore.RunStore`. Every node is idempotent: a node that finds its turn already
stored reuses it, so LangGraph re-running a node after a kill asks no model twice.
"""

from __future__ import annotations

import operator
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Send

from debate.core.bounds import BoundedVerdict, VerdictBound, bound_verdict
from debate.core.calls import CompletionFailed, attempt_log
from debate.core.errors import DebateError
from debate.core.models import CitationCheck, CriticReply, EvidenceItem, JudgeReply, ProposerReply
from debate.core.protocol import AgentResult, Backend, DebateView, JudgeSeat, TurnView
from debate.core.quotes import QuoteRule, evidence_texts, mark_claims, verified_count
from debate.core.rubric import Rubric, weighted_score
from debate.engine.consensus import Consensus, consensus, quorum_needed
from debate.engine.retrieval import retrieve
from debate.engine.runstore import RunStore, StoredTurn, TurnKey


class DebateState(TypedDict):
    run_id: str
    round: int
    conceded: bool
    stale: bool
    judged: Annotated[list[int], operator.add]
    # Seats whose judge failed for good: {"seat": n, "error": "..."} (small: one line each).
    unseated: Annotated[list[dict[str, Any]], operator.add]
    consensus: dict[str, Any] | None


class JudgeInput(TypedDict):
    run_id: str
    round: int
    seat: int


@dataclass
class DebateContext:
    """What nodes need besides state: the run's store, the backend and the debate settings."""

    store: RunStore
    backend: Backend
    seats: list[JudgeSeat]
    rubric: Rubric
    max_rounds: int = 2
    evidence_limit: int = 8
    min_hits: int = 3
    suspect: str = "exclude"
    """Suspect (instruction-like) KB chunks: "exclude" them from evidence or "label" them."""
    stop_on_concede: bool = True
    stop_on_repeat: bool = True
    quorum: int = 0
    """Valid verdicts a consensus needs; 0 = a majority of the panel."""
    quotes: QuoteRule = field(default_factory=QuoteRule)
    bound: VerdictBound | None = field(default_factory=VerdictBound)
    """How evidence bounds a verdict; None: not bounded (runs recorded before bounds existed)."""
    on_turn: Callable[[str, int, str, int, str], None] | None = field(default=None)


class QuorumNotMet(DebateError):
    """Fewer judges than the quorum returned a valid verdict."""


def check_citations(reply: ProposerReply | CriticReply, evidence: list[EvidenceItem]) -> list[CitationCheck]:
    """Each cited id, valid only when it names evidence retrieved for this run."""
    known = {e.eid for e in evidence}
    return [
        CitationCheck(eid=eid, valid=eid in known, claim=i)
        for i, claim in enumerate(reply.claims)
        for eid in claim.evidence_ids
    ]


def cited_pages(turns: list[TurnView], evidence: list[EvidenceItem]) -> dict[str, tuple[int, int]]:
    """Page slug -> (verified, unverified) claims that cited a retrieved item of that page.

    A verified claim counts for the page holding its quote; an unverified one for every page
    it cites. Retrieved evidence no claim cited relates the hypothesis to no page."""
    page = {e.eid: e.page_slug for e in evidence}
    counts: dict[str, list[int]] = {}
    for t in turns:
        marks = {m.claim: m for m in t.marks}
        for i, claim in enumerate(t.reply.claims):
            m = marks.get(i)
            if m is not None and m.mark == "verified" and m.eid in page:
                counts.setdefault(page[m.eid], [0, 0])[0] += 1
                continue
            for slug in dict.fromkeys(page[e] for e in claim.evidence_ids if e in page):
                counts.setdefault(slug, [0, 0])[1] += 1
    return {slug: (v, u) for slug, (v, u) in counts.items()}


def _evidence(ctx: DebateContext) -> list[EvidenceItem]:
    """The run's evidence snapshot, retrieved and saved first if there is none yet (a fresh
    run's is written with its first turn, so a run killed before that retrieves again)."""
    store = ctx.store
    items = store.evidence()
    if items is None:
        store.check_not_cancelled()
        with store.db.tx() as conn:
            items = retrieve(
                conn, store.hypothesis(), limit=ctx.evidence_limit, min_hits=ctx.min_hits, suspect=ctx.suspect
            )
        store.save_evidence(items)
        items = store.evidence() or []  # a duplicate execution keeps the snapshot stored first
    return items


def _marked_turns(ctx: DebateContext, evidence: list[EvidenceItem]) -> list[TurnView]:
    """The debate so far, each claim marked by checking its quote against the evidence.

    Marks are recomputed from the stored replies and evidence (pure and cheap), so a resumed
    run, and a run written before quotes existed, are marked the same way as a fresh one."""
    texts = evidence_texts(evidence)
    return [replace(t, marks=tuple(mark_claims(t.reply.claims, texts, ctx.quotes))) for t in ctx.store.debate_turns()]


def _view(ctx: DebateContext, round_: int) -> DebateView:
    evidence = _evidence(ctx)
    return DebateView(
        hypothesis=ctx.store.hypothesis(),
        evidence=evidence,
        turns=_marked_turns(ctx, evidence),
        round=round_,
        max_rounds=ctx.max_rounds,
    )


async def _asked(store: RunStore, key: TurnKey, call: Awaitable[AgentResult]) -> AgentResult:
    """``call``'s result; the attempts of a call that fails or is cancelled are stored first."""
    with attempt_log() as log:
        try:
            return await call
        except CompletionFailed as e:
            store.write_failed_attempts(key, e.attempts)
            raise
        except BaseException:
            # Cancelled (the run was, or the graph ended this branch): keep what it spent.
            if log:
                store.write_failed_attempts(key, log)
            raise


def _turn_meta(result: AgentResult, **extra: Any) -> dict[str, Any]:
    """A turn's meta: ``extra``, how its prompt was fitted, whether its usage is estimated."""
    meta = dict(extra)
    if result.fit is not None:
        meta["fit"] = result.fit.model_dump(mode="json")
    if any(a.usage.estimated for a in result.attempts):
        meta["usage_estimated"] = True
    return meta


async def _debater_turn(ctx: DebateContext, round_: int, role: str) -> ProposerReply | CriticReply:
    store = ctx.store
    existing = store.turn(round_, role)
    model = ProposerReply if role == "proposer" else CriticReply
    if existing is not None:
        return model.model_validate(existing.parsed)
    if role == "proposer":  # once per round is enough to notice a cancel
        store.check_not_cancelled()
    view = _view(ctx, round_)
    call = ctx.backend.propose if role == "proposer" else ctx.backend.critique
    result = await _asked(store, (round_, role, 0), call(view))
    reply = result.reply
    assert isinstance(reply, model)
    marks = mark_claims(reply.claims, view.evidence, ctx.quotes)
    store.write_turn(
        (round_, role, 0),
        result,
        backend=ctx.backend.name,
        citations=check_citations(reply, view.evidence),
        meta=_turn_meta(result, claim_marks=[m.model_dump(mode="json") for m in marks]),
        rounds_done=round_ if role == "critic" else None,
    )
    if ctx.on_turn:
        ctx.on_turn(store.run_id, round_, role, 0, reply.argument)
    return reply


# ---------------------------------------------------------------- nodes


async def retrieve_node(state: DebateState, runtime: Runtime[DebateContext]) -> dict[str, Any]:
    _evidence(runtime.context)
    return {}


async def proposer_node(state: DebateState, runtime: Runtime[DebateContext]) -> dict[str, Any]:
    await _debater_turn(runtime.context, state["round"], "proposer")
    return {}


async def critic_node(state: DebateState, runtime: Runtime[DebateContext]) -> dict[str, Any]:
    ctx = runtime.context
    rnd = state["round"]
    reply = await _debater_turn(ctx, rnd, "critic")
    assert isinstance(reply, CriticReply)
    return {"conceded": reply.concede, "stale": rnd > 1 and _nothing_new(ctx.store, rnd)}


def _nothing_new(store: RunStore, rnd: int) -> bool:
    """True when neither side's claims or citations in this round add to earlier rounds."""
    earlier: set[str] = set()
    now: set[str] = set()
    for (r, role, _), turn in store.turns().items():
        if role not in ("proposer", "critic"):
            continue
        said = {f"{role}:{c['text']}" for c in turn.parsed.get("claims", [])}
        cited = {f"{role}#{eid}" for c in turn.parsed.get("claims", []) for eid in c.get("evidence_ids", [])}
        (now if r == rnd else earlier if r < rnd else set()).update(said | cited)
    return now <= earlier


async def next_round_node(state: DebateState) -> dict[str, Any]:
    return {"round": state["round"] + 1}


def route_after_critic(state: DebateState, runtime: Runtime[DebateContext]) -> str | list[Send]:
    ctx = runtime.context
    done = (
        state["round"] >= ctx.max_rounds
        or (ctx.stop_on_concede and state["conceded"])
        or (ctx.stop_on_repeat and state["stale"])
    )
    if not done:
        return "next_round"
    return [Send("judge", JudgeInput(run_id=state["run_id"], round=state["round"], seat=s.seat)) for s in ctx.seats]


async def judge_node(state: JudgeInput, runtime: Runtime[DebateContext]) -> dict[str, Any]:
    ctx = runtime.context
    store = ctx.store
    seat = ctx.seats[state["seat"]]
    key = (state["round"], "judge", seat.seat)
    if store.turn(*key) is None:
        if seat.seat == 0:
            store.check_not_cancelled()
        view = _view(ctx, state["round"])
        try:
            result = await _asked(store, key, ctx.backend.judge(view, seat))
        except CompletionFailed as e:
            # An empty seat, not a failed run: the consensus node checks the quorum.
            if ctx.on_turn:
                ctx.on_turn(store.run_id, state["round"], "judge", seat.seat, f"no verdict: {e}")
            return {"judged": [], "unseated": [{"seat": seat.seat, "error": str(e)[:300]}]}
        reply = result.reply
        assert isinstance(reply, JudgeReply)
        bounded = _bounded(ctx, reply, view)
        overall = weighted_score(bounded.scores if bounded else reply.scores.model_dump(), ctx.rubric)
        persona = {"persona": seat.persona, "emphasis": list(seat.emphasis), "critic_first": seat.critic_first}
        extra = {"bound": bounded.model_dump(mode="json")} if bounded else {}
        store.write_turn(
            key,
            result,
            backend=ctx.backend.name,
            citations=[],
            overall=overall,
            meta=_turn_meta(result, **persona, **extra),
        )
        if ctx.on_turn:
            said = f"overall {overall:.3f}"
            if bounded and bounded.contradictions:
                said = f"contradicted ({'; '.join(bounded.contradictions)}): left out of the consensus"
            ctx.on_turn(store.run_id, state["round"], "judge", seat.seat, said)
    return {"judged": [seat.seat]}


def _bounded(ctx: DebateContext, reply: JudgeReply, view: DebateView) -> BoundedVerdict | None:
    """The verdict capped by the debate's verified claims (None when the run is not bounded)."""
    if ctx.bound is None:
        return None
    verified, cited = verified_count(m for t in view.turns for m in t.marks)
    return bound_verdict(
        reply.scores.model_dump(),
        reply.rationale,
        verified=verified,
        cited=cited,
        evidence=view.evidence,
        rule=ctx.bound,
    )


def contradicted(turn: StoredTurn) -> list[str]:
    """Why a stored judge turn's verdict contradicts the debate's verification (empty: it does not)."""
    bound = turn.meta.get("bound") or {}
    return list(bound.get("contradictions") or [])


def counted_scores(turn: StoredTurn) -> dict[str, float]:
    """A judge turn's dimension scores as the consensus counts them: after the bound, if any."""
    bound = turn.meta.get("bound") or {}
    return dict(bound.get("scores") or turn.parsed["scores"])


async def consensus_node(state: DebateState, runtime: Runtime[DebateContext]) -> dict[str, Any]:
    ctx = runtime.context
    verdicts = sorted(
        (turn for (_, role, _), turn in ctx.store.turns().items() if role == "judge"), key=lambda t: t.seat
    )
    # A verdict that contradicts the verification is kept in the transcript, counted as a
    # missing seat, and sends the run to review (before the quorum can fail it).
    against = {j.seat: why for j in verdicts if (why := contradicted(j))}
    if against:
        ctx.store.mark_needs_review()
    judges = [j for j in verdicts if j.seat not in against]
    needed = quorum_needed(ctx.quorum, len(ctx.seats))
    if len(judges) < needed:
        seated = {j.seat for j in judges}
        reasons = {u["seat"]: u["error"] for u in state.get("unseated") or []}
        reasons |= {seat: "contradicted: " + "; ".join(why) for seat, why in against.items()}
        missing = "; ".join(
            f"judge {s.seat}: {reasons.get(s.seat, 'no verdict')}" for s in ctx.seats if s.seat not in seated
        )
        raise QuorumNotMet(
            f"only {len(judges)} of {len(ctx.seats)} judges returned a valid verdict (quorum {needed}): {missing}"
        )
    # Offline judges are fixed functions of the same inputs: identical verdicts are no agreement.
    c = consensus(
        [j.overall for j in judges],  # type: ignore[misc]
        [counted_scores(j) for j in judges],
        deterministic=ctx.backend.name == "offline",
    )
    return {"consensus": c.model_dump(mode="json")}


async def persist_node(state: DebateState, runtime: Runtime[DebateContext]) -> dict[str, Any]:
    # Score, totals and status "done" in one transaction: no partial score is ever visible.
    assert state["consensus"] is not None
    ctx = runtime.context
    evidence = _evidence(ctx)
    turns = _marked_turns(ctx, evidence)
    claims = verified_count(m for t in turns for m in t.marks)
    ctx.store.finish(Consensus.model_validate(state["consensus"]), claims=claims, cited=cited_pages(turns, evidence))
    return {}


def build_graph() -> StateGraph:
    """The uncompiled debate graph (compile it with a checkpointer)."""
    g = StateGraph(DebateState, context_schema=DebateContext)
    g.add_node("retrieve", retrieve_node)
    g.add_node("proposer", proposer_node)
    g.add_node("critic", critic_node)
    g.add_node("next_round", next_round_node)
    g.add_node("judge", judge_node, input_schema=JudgeInput)
    g.add_node("consensus", consensus_node)
    g.add_node("persist", persist_node)
    add_debate_edges(g, route_after_critic)
    return g


def add_debate_edges(g: StateGraph, route: Callable[..., Any]) -> None:
    """The debate's shape: retrieve → (proposer → critic)+ → judges → consensus → persist.

    ``route`` decides after each critic turn: another round, or the judge panel (a fan-out).
    The bench's overhead floor wires its empty nodes with this too, so it measures this shape.
    """
    g.add_edge(START, "retrieve")
    g.add_edge("retrieve", "proposer")
    g.add_edge("proposer", "critic")
    g.add_conditional_edges("critic", route, ["next_round", "judge"])
    g.add_edge("next_round", "proposer")
    g.add_edge("judge", "consensus")
    g.add_edge("consensus", "persist")
    g.add_edge("persist", END)


def initial_state(run_id: str) -> DebateState:
    return DebateState(run_id=run_id, round=1, conceded=False, stale=False, judged=[], unseated=[], consensus=None)
