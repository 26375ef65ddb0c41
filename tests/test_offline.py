"""Specification of the offline backend: deterministic, evidence-driven agents with no model."""

from __future__ import annotations

import json
import re
import statistics
import time
from dataclasses import replace

import pytest

import debate.offline as offline
from debate.core.models import (
    Claim,
    CriticReply,
    EvidenceItem,
    HypothesisOut,
    JudgeReply,
    ProposerReply,
)
from debate.core.protocol import AgentResult, Backend, DebateView, JudgeSeat, TurnView, panel
from debate.core.rubric import DIMENSIONS, Rubric, weighted_score
from debate.offline import MODEL, RULES_HASH, OfflineBackend, evidence_features
from debate.offline.case import _case
from debate.offline.rules import _rules_hash

# --------------------------------------------------------------------------- builders


def hypothesis(**changes: object) -> HypothesisOut:
    """An ATXN2-lowering hypothesis for ALS; keyword arguments override fields."""
    fields: dict[str, object] = dict(
        id="h-0a1b2c3d",
        title="ATXN2 Antisense Lowering to Slow ALS Progression",
        statement="Lowering ataxin-2 with an antisense oligonucleotide should limit stress granule "
        "persistence and TDP-43 pathology in motor neurons.",
        diseases=["ALS"],
        targets=["ATXN2"],
        target_label="ATXN2",
        mechanisms=["antisense", "stress granules"],
        source="test",
        prior_score=None,
        prior_source=None,
        created_at="2025-01-01T00:00:00Z",
        updated_at="2025-01-01T00:00:00Z",
    )
    fields.update(changes)
    return HypothesisOut(**fields)  # type: ignore[arg-type]


def item(
    eid: str,
    text: str,
    *,
    page: str = "entities-atxn2",
    heading: str = "Therapy",
    facts: list[dict[str, str]] | None = None,
) -> EvidenceItem:
    return EvidenceItem(
        eid=eid,
        rank=int(eid[1:]),
        page_slug=page,
        page_hash="0" * 16,
        heading_path=["Overview", heading],
        text=text,
        score=1.0,
        facts=facts or [],
    )


MOUSE = item(
    "E1",
    "- Efficacy: An ATXN2 antisense oligonucleotide reduced TDP-43 aggregation and "
    "extended survival in mice\n- Status: Preclinical",
    heading="Preclinical Lowering",
)
GRANULES = item(
    "E2",
    "Stress granules gather RNA-binding proteins during cellular stress, and "
    "ATXN2 is one of their core scaffold proteins.",
    page="mechanisms-stress-granules",
    heading="Composition",
)
APPROVED = item(
    "E3",
    "- Trial: A Phase 3 study of the ATXN2 antisense drug slowed functional "
    "decline over 48 weeks\n- Status: FDA-approved (2024) for adults with ALS",
    page="therapeutics-als",
    heading="ATXN2 Antisense Drug",
)
FAILED = item(
    "E3",
    "- Trial: The Phase 3 study of the ATXN2 antisense drug did not meet its "
    "primary endpoint\n- Status: Discontinued after the pivotal trial failed",
    page="therapeutics-als",
    heading="ATXN2 Antisense Drug",
)
SAFETY = item(
    "E4",
    "- Safety: Serious adverse events with ATXN2 lowering included liver enzyme elevation in two participants",
    heading="Safety",
)
OFF_TOPIC = item("E5", "Riluzole lowers presynaptic glutamate release.", page="therapeutics-als", heading="Riluzole")
REGISTRY = item(
    "E6",
    "An ATXN2 registry follows intermediate-repeat carriers; its data are open to academic groups.",
    page="datasets-als",
    heading="Registries",
)
CLEAN = [MOUSE, GRANULES, APPROVED, REGISTRY]  # nothing for the critic to object to


def view(
    evidence: list[EvidenceItem],
    turns: list[TurnView] | None = None,
    *,
    round_: int = 1,
    max_rounds: int = 3,
    h: HypothesisOut | None = None,
) -> DebateView:
    return DebateView(
        hypothesis=h or hypothesis(), evidence=evidence, turns=list(turns or []), round=round_, max_rounds=max_rounds
    )


async def run_debate(
    backend: Backend, evidence: list[EvidenceItem], *, max_rounds: int = 3, h: HypothesisOut | None = None
) -> tuple[list[AgentResult], DebateView]:
    """Rounds of proposer then critic, stopping when the critic concedes; then the judges' view."""
    results: list[AgentResult] = []
    turns: list[TurnView] = []
    for rnd in range(1, max_rounds + 1):
        for role in ("proposer", "critic"):
            v = view(evidence, turns, round_=rnd, max_rounds=max_rounds, h=h)
            res = await (backend.propose(v) if role == "proposer" else backend.critique(v))
            results.append(res)
            turns.append(TurnView(round=rnd, role=role, reply=res.reply))  # type: ignore[arg-type]
        if results[-1].reply.concede:  # type: ignore[attr-defined]
            break
    return results, view(evidence, turns, round_=rnd, max_rounds=max_rounds, h=h)


async def panel_overall(evidence: list[EvidenceItem], *, h: HypothesisOut | None = None) -> list[float]:
    """Each judge's overall score (default rubric) after a full offline debate."""
    backend = OfflineBackend()
    _, final = await run_debate(backend, evidence, h=h)
    rubric = Rubric.default()
    out = []
    for seat in panel(3):
        reply = (await backend.judge(final, seat)).reply
        assert isinstance(reply, JudgeReply)
        out.append(weighted_score(reply.scores.model_dump(), rubric))
    return out


def cited(result: AgentResult) -> list[str]:
    return [e for c in result.reply.claims for e in c.evidence_ids]  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- determinism, labels


async def test_identical_inputs_give_identical_replies_raw_and_messages() -> None:
    evidence = [MOUSE, GRANULES, FAILED, SAFETY, OFF_TOPIC]
    first, final_a = await run_debate(OfflineBackend(), evidence)
    second, final_b = await run_debate(OfflineBackend(), evidence)
    assert [r.raw for r in first] == [r.raw for r in second]
    assert [r.messages for r in first] == [r.messages for r in second]
    for seat in panel(3):
        a = await OfflineBackend().judge(final_a, seat)
        b = await OfflineBackend().judge(final_b, seat)
        assert (a.raw, a.messages) == (b.raw, b.messages)


async def test_every_turn_is_labelled_heuristic_with_one_offline_attempt() -> None:
    backend = OfflineBackend()
    results, final = await run_debate(backend, [MOUSE, FAILED, SAFETY])
    results += [await backend.judge(final, seat) for seat in panel(3)]
    for res in results:
        assert res.label == "heuristic"
        assert res.model == MODEL == "offline-heuristic-v1"
        assert res.raw == res.reply.model_dump_json()
        assert res.prompt["version"] == "1" and res.prompt["hash"] == RULES_HASH
        assert res.prompt["name"] in {"offline-proposer", "offline-critic", "offline-judge"}
        system, user = res.messages
        assert system.role == "system" and system.content.startswith("Offline heuristic")
        assert "(no model)" in system.content
        assert user.role == "user" and "ATXN2" in user.content
        (attempt,) = res.attempts
        assert (attempt.n, attempt.kind, attempt.outcome) == (1, "first", "ok")
        assert attempt.model == MODEL and attempt.messages_sent == 2 and attempt.raw_reply == res.raw
        assert attempt.http_status is None and attempt.error is None and attempt.cost_usd is None
        assert attempt.usage.prompt_tokens is None and attempt.usage.total_tokens is None
        assert attempt.latency_ms >= 0


async def test_user_message_lists_each_evidence_id_with_its_features() -> None:
    res = await OfflineBackend().propose(view([APPROVED, OFF_TOPIC]))
    user = res.messages[1].content
    assert "Hypothesis h-0a1b2c3d: ATXN2 Antisense Lowering to Slow ALS Progression" in user
    assert re.search(r"^E3 .*targets=ATXN2 .*stage=approved flags=approved,late_trial.*efficacy", user, re.M)
    assert re.search(r"^E5 .*targets=- mechanisms=- ", user, re.M)


def test_rules_hash_is_a_stable_function_of_the_tables() -> None:
    assert re.fullmatch(r"[0-9a-f]{16}", RULES_HASH)
    assert _rules_hash() == RULES_HASH


def test_disease_groups_come_from_the_one_disease_table() -> None:
    from debate.core import diseases

    assert offline.DISEASE_ALIASES is diseases.EVIDENCE_GROUPS
    # Spelled out: these groups are rules (in RULES_HASH), so deriving them must not move them.
    assert offline.DISEASE_ALIASES == (
        ("als", "amyotrophic lateral sclerosis", "motor neuron disease", "mnd"),
        ("alzheimer's disease", "alzheimer", "ad"),
        ("parkinson's disease", "parkinson", "pd"),
        ("frontotemporal dementia", "ftd"),
        ("huntington's disease", "huntington", "hd"),
    )


def test_module_docstring_documents_every_dimension_formula() -> None:
    doc = " ".join((offline.__doc__ or "").replace("``", "").split())
    for formula in offline.describe_model():
        assert formula in doc


# --------------------------------------------------------------------------- evidence features


@pytest.mark.parametrize(
    ("text", "present", "absent"),
    [
        ("Status: FDA-approved (2019)", {"approved"}, set()),
        ("Received accelerated approval for ATXN2 carriers", {"approved"}, set()),
        ("ATXN2 lowering is not approved anywhere", set(), {"approved"}),
        ("There is no approved therapy for this ATXN2 form", set(), {"approved"}),
        ("Approval was withdrawn after the confirmatory trial", {"halted"}, {"approved"}),
        ("A Phase 3 trial enrolled ATXN2 carriers", {"late_trial"}, set()),
        ("A Phase 2b study is recruiting", {"mid_trial"}, {"late_trial"}),
        ("Preclinical work in mice", {"early"}, {"mid_trial"}),
        ("The trial did not meet its primary endpoint", {"failed"}, set()),
        ("Stopped for futility at the interim analysis", {"failed", "halted"}, set()),
        ("Most patients die of respiratory failure", set(), {"failed"}),
        ("Calcium overload sets off mitochondrial failure", set(), {"failed"}),
        ("The programme was terminated in 2021", {"halted"}, set()),
        ("Serious liver injury was reported", {"safety_signal"}, set()),
        ("No serious adverse events occurred", set(), {"safety_signal"}),
        ("Excitotoxicity drives motor neuron death", set(), {"safety_signal"}),
        ("Mechanism: toxicity is a gain of function of the misfolded protein", set(), {"safety_signal"}),
        ("Treatment slowed decline and extended survival", {"efficacy"}, set()),
        ("It showed no benefit on survival", {"failed"}, {"efficacy"}),
        ("A later study did not confirm the slower progression", {"failed"}, {"efficacy"}),
    ],
)
def test_flags_read_from_text(text: str, present: set[str], absent: set[str]) -> None:
    f = evidence_features(item("E1", f"{text} (ATXN2)"), hypothesis())
    assert present <= f.flags
    assert not (absent & f.flags)


@pytest.mark.parametrize(
    ("text", "modality"),
    [
        ("an antisense oligonucleotide", "antisense"),
        ("tofersen, given intrathecally", "antisense"),
        ("a monoclonal antibody", "antibody"),
        ("lecanemab infusions", "antibody"),
        ("a brain-penetrant small molecule", "small molecule"),
        ("a selective kinase inhibitor", "inhibitor"),
        ("AAV9 gene therapy", "gene therapy"),
        ("a sigma-1 receptor agonist", "agonist"),
    ],
)
def test_drug_modalities(text: str, modality: str) -> None:
    assert modality in evidence_features(item("E1", f"ATXN2 is targeted by {text}."), hypothesis()).modalities


def test_targets_match_on_symbol_boundaries_and_known_aliases() -> None:
    h = hypothesis(targets=["SOD1", "APP", "TARDBP", "APOE"])
    hits = lambda text: evidence_features(item("E1", text), h).targets_hit  # noqa: E731
    assert hits("sod1 variants and SOD1-ALS") == ("SOD1",)
    assert hits("SOD10 is a different symbol") == ()
    assert hits("An app for symptom tracking") == ()  # short all-letter symbols need capitals
    assert hits("APP processing") == ("APP",)
    assert hits("Cytoplasmic TDP-43 aggregates") == ("TARDBP",)
    assert hits("ApoE4 is poorly lipidated") == ("APOE",)


def test_outcomes_are_scoped_to_segments_about_the_targets() -> None:
    # Infobox rows about other genes do not lend their status to ours.
    text = (
        "Target ATXN2: Antisense (investigational), Phase 1\n"
        "Target C9orf72: Antisense, discontinued\n"
        "Target SOD1: Antisense (tofersen), approved"
    )
    f = evidence_features(item("E1", text), hypothesis())
    assert f.targets_hit == ("ATXN2",)
    assert "early" in f.flags
    assert not {"halted", "approved"} & f.flags
    # A line that names no gene belongs to the passage's subject.
    f = evidence_features(item("E1", "- Mechanism: Lowers ATXN2\n- Status: Approved (2024)"), hypothesis())
    assert "approved" in f.flags


def test_mechanisms_diseases_and_navigation_sections() -> None:
    h = hypothesis(mechanisms=["protein aggregation"], diseases=["amyotrophic lateral sclerosis"])
    f = evidence_features(item("E1", "In ALS, aggregated proteins accumulate in neurons."), h)
    assert f.mechanism_hits == ("protein aggregation",) and f.disease_hit
    nav = evidence_features(item("E2", "- ATXN2\n- Stress granules", heading="See Also"), h)
    assert not nav.relevant and not nav.targets_hit and not nav.flags


def test_facts_not_in_the_text_are_read_too() -> None:
    it = item("E1", "ATXN2 antisense programme.", facts=[{"key": "Status", "value": "Phase 3 halted for futility"}])
    f = evidence_features(it, hypothesis())
    assert {"late_trial", "halted", "failed"} <= f.flags


# --------------------------------------------------------------------------- proposer


async def test_proposer_cites_only_retrieved_evidence_strongest_first() -> None:
    res = await OfflineBackend().propose(view([MOUSE, GRANULES, APPROVED, OFF_TOPIC]))
    reply = res.reply
    assert isinstance(reply, ProposerReply)
    ids = cited(res)
    assert ids and set(ids) <= {"E1", "E2", "E3"}  # never the off-topic E5, never an invented id
    assert ids[0] == "E3"  # the approval leads
    assert all(len(c.evidence_ids) == 1 for c in reply.claims)


def objection(text: str, *ids: str) -> CriticReply:
    return CriticReply(argument="objections", claims=[Claim(text=text, evidence_ids=list(ids))], concede=False)


async def test_proposer_answers_objections_with_evidence_not_yet_cited_then_says_none_is_left() -> None:
    backend = OfflineBackend()
    evidence = [MOUSE, GRANULES, APPROVED, REGISTRY, SAFETY, OFF_TOPIC]  # four supporting items
    turns: list[TurnView] = []
    seen: list[str] = []
    texts = []
    critic_says = [
        objection("E4 reports safety signals.", "E4"),
        objection("No retrieved evidence describes dosing."),
        objection("The effect size is small."),
    ]
    for rnd, critic in enumerate(critic_says, start=1):
        res = await backend.propose(view(evidence, turns, round_=rnd, max_rounds=4))
        new = cited(res)
        assert not set(new) & set(seen), "each round brings evidence not cited before"
        assert set(new) <= {"E1", "E2", "E3", "E6"}
        seen += new
        texts.append([c.text for c in res.reply.claims])  # type: ignore[attr-defined]
        turns += [
            TurnView(round=rnd, role="proposer", reply=res.reply),  # type: ignore[arg-type]
            TurnView(round=rnd, role="critic", reply=critic),
        ]
    assert len(seen) == 4  # three opening citations, then the last one against the safety point
    assert texts[1][0].startswith('Against "E4 reports safety signals."')
    # Nothing left: it says so, cites nothing new, and says it the same way each time.
    final = await backend.propose(view(evidence, turns, round_=4, max_rounds=4))
    assert cited(final) == []
    none_left = "No supporting evidence remains uncited; the case rests on E3, E1, E2, E6."
    assert texts[2] == [none_left]
    assert [c.text for c in final.reply.claims] == [none_left]  # type: ignore[attr-defined]


async def test_proposer_with_no_supporting_evidence_says_so() -> None:
    res = await OfflineBackend().propose(view([OFF_TOPIC]))
    assert cited(res) == []
    assert "No retrieved item supports" in res.reply.claims[0].text  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- critic


async def test_critic_cites_failed_halted_and_safety_evidence_and_flags_missing_targets() -> None:
    h = hypothesis(targets=["ATXN2", "STMN2"])
    backend = OfflineBackend()
    v = view([MOUSE, GRANULES, FAILED, SAFETY, OFF_TOPIC], h=h)
    proposal = await backend.propose(v)
    turns = [TurnView(round=1, role="proposer", reply=proposal.reply)]  # type: ignore[arg-type]
    res = await backend.critique(replace(v, turns=turns))
    reply = res.reply
    assert isinstance(reply, CriticReply) and not reply.concede
    by_text = {c.text: c.evidence_ids for c in reply.claims}
    # The failed-and-halted pivotal trial comes first, then the safety finding.
    assert reply.claims[0].evidence_ids == ["E3"]
    assert "failed Phase 3 trial" in reply.claims[0].text and "halted" in reply.claims[0].text
    assert reply.claims[1].evidence_ids == ["E4"] and "safety signals" in reply.claims[1].text
    assert by_text["No retrieved evidence mentions STMN2."] == []
    assert set(cited(res)) <= {e.eid for e in v.evidence}


async def test_critic_flags_thin_evidence_and_untested_targets() -> None:
    res = await OfflineBackend().critique(view([MOUSE, OFF_TOPIC]))
    assert [(c.text, c.evidence_ids) for c in res.reply.claims] == [  # type: ignore[attr-defined]
        ("Thin evidence: only 1 of 2 retrieved items name the targets or mechanisms.", ["E1"]),
        ("No retrieved evidence describes stress granules.", []),
        ("No retrieved evidence shows the targets tested in patients (best stage: preclinical/Phase 1).", []),
    ]


async def test_critic_concedes_when_it_has_nothing_new() -> None:
    backend = OfflineBackend()
    evidence = [MOUSE, GRANULES, FAILED, SAFETY]
    first = await backend.critique(view(evidence))
    assert not first.reply.concede  # type: ignore[attr-defined]
    # Every objection it can make, already made in round 1: round 2 has nothing new.
    everything = CriticReply(
        argument="all of it",
        concede=False,
        claims=[Claim(text=t, evidence_ids=list(ids)) for t, ids in _case(view(evidence)).objections],
    )
    turns = [TurnView(round=1, role="critic", reply=everything)]
    again = await backend.critique(view(evidence, turns, round_=2))
    assert again.reply.concede and again.reply.claims == []  # type: ignore[attr-defined]


async def test_critic_concedes_at_once_when_there_is_no_objection() -> None:
    res = await OfflineBackend().critique(view(CLEAN))
    assert res.reply.concede and res.reply.claims == []  # type: ignore[attr-defined]


async def test_debates_stop_once_the_critic_runs_out_of_new_objections() -> None:
    results, final = await run_debate(OfflineBackend(), [MOUSE, GRANULES, FAILED, SAFETY], max_rounds=10)
    critic = [r.reply for r in results if isinstance(r.reply, CriticReply)]
    assert critic[-1].concede and final.round < 10
    texts = [c.text for r in critic for c in r.claims]
    assert len(texts) == len(set(texts)), "no objection is made twice"


# --------------------------------------------------------------------------- judges


async def test_failed_pivotal_trial_scores_below_an_approval() -> None:
    approved = statistics.median(await panel_overall([MOUSE, GRANULES, APPROVED, OFF_TOPIC]))
    failed = statistics.median(await panel_overall([MOUSE, GRANULES, FAILED, OFF_TOPIC]))
    assert failed < approved - 0.05


async def test_removing_the_supporting_evidence_lowers_the_score() -> None:
    full = statistics.median(await panel_overall([MOUSE, GRANULES, APPROVED, REGISTRY, SAFETY]))
    without_support = statistics.median(await panel_overall([SAFETY, OFF_TOPIC]))
    assert without_support < full


async def test_panel_judges_differ_but_broadly_agree() -> None:
    for evidence in ([MOUSE, GRANULES, APPROVED], [MOUSE, FAILED, SAFETY, OFF_TOPIC]):
        overall = await panel_overall(evidence)
        assert len(set(overall)) == 3, "the personas' weights set the judges apart"
        assert max(overall) - min(overall) < 0.25
    # Off-topic evidence leaves every feature an emphasis reweighs at zero: nothing sets them apart.
    assert len(set(await panel_overall([OFF_TOPIC]))) == 1


async def test_judges_differ_only_through_persona_weights() -> None:
    """No hash or random offset: a seat's scores depend on its emphasis alone, and a seat
    differs from an unemphatic one only on the dimensions it emphasises."""
    backend = OfflineBackend()
    _, final = await run_debate(backend, [MOUSE, FAILED, SAFETY, GRANULES])
    plain_seat = JudgeSeat(seat=0, persona="p", emphasis=(), critic_first=False)
    plain = (await backend.judge(final, plain_seat)).reply.scores.model_dump()  # type: ignore[attr-defined]
    seats = panel(6)  # seats 3-5 repeat the personas of seats 0-2 (and show the other side first)
    scores = [(await backend.judge(final, s)).reply.scores.model_dump() for s in seats]  # type: ignore[attr-defined]
    for i in range(3):
        assert scores[i] == scores[i + 3], "same persona, another seat number and side order: same verdict"
    for seat, mine in zip(seats, scores, strict=True):
        for d in DIMENSIONS:
            if d not in seat.emphasis:
                assert mine[d] == plain[d], (seat.seat, d)
    assert len({tuple(sc.values()) for sc in scores[:3]}) == 3


async def test_persona_emphasis_judges_emphasised_dimensions_more_strictly() -> None:
    backend = OfflineBackend()
    _, final = await run_debate(backend, [MOUSE, FAILED, SAFETY])
    base = JudgeSeat(seat=0, persona="p", emphasis=(), critic_first=False)
    strict = replace(base, emphasis=("safety", "evidence_strength"))
    plain = (await backend.judge(final, base)).reply.scores  # type: ignore[attr-defined]
    harsh = (await backend.judge(final, strict)).reply.scores  # type: ignore[attr-defined]
    assert harsh.safety < plain.safety
    assert harsh.evidence_strength < plain.evidence_strength
    assert harsh.novelty == plain.novelty  # not emphasised: unchanged


async def test_judge_scores_do_not_depend_on_the_order_the_sides_are_shown_in() -> None:
    backend = OfflineBackend()
    _, final = await run_debate(backend, [MOUSE, GRANULES, FAILED, SAFETY])
    for seat in panel(3):
        a = await backend.judge(final, replace(seat, critic_first=False))
        b = await backend.judge(final, replace(seat, critic_first=True))
        assert a.raw == b.raw
        assert "proposer shown first" in a.messages[1].content
        assert "critic shown first" in b.messages[1].content
    # Turn order inside the view does not matter either.
    shuffled = replace(final, turns=list(reversed(final.turns)))
    assert (await backend.judge(shuffled, panel(1)[0])).raw == (await backend.judge(final, panel(1)[0])).raw


async def test_judge_reply_has_scores_in_range_confidence_and_a_rationale_but_no_overall() -> None:
    backend = OfflineBackend()
    cases = [
        [],
        [OFF_TOPIC],
        CLEAN,
        [MOUSE, FAILED, SAFETY, OFF_TOPIC],
        [APPROVED, FAILED, SAFETY, GRANULES, MOUSE, REGISTRY],
    ]
    for evidence in cases:
        _, final = await run_debate(backend, evidence)
        for seat in panel(5):
            res = await backend.judge(final, seat)
            reply = JudgeReply.model_validate_json(res.raw)
            scores = reply.scores.model_dump()
            assert tuple(scores) == DIMENSIONS
            assert all(0.0 <= v <= 1.0 for v in scores.values())
            assert 0.0 <= reply.confidence <= 1.0
            assert "overall" not in json.loads(res.raw) and "overall" not in reply.rationale
            assert reply.rationale.startswith(f"Seat {seat.seat} (")


async def test_rationale_names_driving_features_and_evidence_ids() -> None:
    backend = OfflineBackend()
    _, final = await run_debate(backend, [MOUSE, GRANULES, APPROVED])
    rationale = (await backend.judge(final, panel(1)[0])).reply.rationale  # type: ignore[attr-defined]
    assert re.search(r"\b(?:" + "|".join(DIMENSIONS) + r") \d\.\d\d: ", rationale)
    assert any(f in rationale for f in offline.JUDGE_FEATURES)
    assert re.search(r"\(E\d(?:, E\d)*\)", rationale)


async def test_confidence_grows_with_the_amount_of_evidence() -> None:
    backend = OfflineBackend()
    seat = panel(1)[0]
    thin = (await backend.judge(view([MOUSE]), seat)).reply.confidence  # type: ignore[attr-defined]
    rich = (await backend.judge(view(CLEAN), seat)).reply.confidence  # type: ignore[attr-defined]
    assert thin < rich


async def test_replies_validate_against_their_models() -> None:
    backend = OfflineBackend()
    results, final = await run_debate(backend, [MOUSE, GRANULES, FAILED, SAFETY, OFF_TOPIC])
    for res in results:
        model = ProposerReply if res.prompt["name"] == "offline-proposer" else CriticReply
        assert model.model_validate_json(res.raw) == res.reply


# --------------------------------------------------------------------------- speed


async def test_agent_calls_are_fast() -> None:
    backend = OfflineBackend()
    evidence = [
        MOUSE,
        GRANULES,
        APPROVED,
        SAFETY,
        REGISTRY,
        OFF_TOPIC,
        FAILED.model_copy(update={"eid": "E7", "rank": 7}),
        item("E8", "ATXN2 repeat expansions modify ALS risk."),
    ]
    await run_debate(backend, evidence)  # warm the feature caches
    calls, start = 0, time.perf_counter()
    for _ in range(50):
        results, final = await run_debate(backend, evidence)
        for seat in panel(3):
            await backend.judge(final, seat)
        calls += len(results) + 3
    per_call_ms = (time.perf_counter() - start) * 1000 / calls
    assert per_call_ms < 5, f"{per_call_ms:.3f} ms per agent call"  # generous: shared CI machines
