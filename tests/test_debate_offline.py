"""Offline debates through the whole engine: deterministic, labelled heuristic, and scores that
move with the evidence the transcript shows."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from sqlalchemy import select

from debate.core.config import load_settings
from debate.core.models import HypothesisIn
from debate.engine.runs import Executor, create_runs
from debate.engine.transcript import load_transcript, render
from debate.kb.hypotheses import add
from debate.kb.ingest import ingest_paths, remove_page
from debate.store import tables as t
from debate.store.db import ensure_schema, session_scope

PAGE = """📗 Cite This Artifact
{title}
{title}
Overview
{title} collects what is known about {drug}, a {modality} aimed at {gene} in {disease}. [@ref{n}]
{drug} Program
- Mechanism: {modality} lowering {gene} activity in motor neurons
- Status: {status}
- Efficacy: {efficacy}
- Trial: A randomized placebo-controlled study in {disease}
See Also
- [{gene}](/entities/{slug_gene})
▸Metadata
| slug | therapeutics-{slug} |
| entity_type | therapeutic |
"""


def _page(folder: Path, slug: str, **kw: str) -> Path:
    path = folder / f"{slug}.txt"
    path.write_text(PAGE.format(slug=slug, slug_gene=kw["gene"].lower(), n=len(slug), **kw), encoding="utf-8")
    return path


def _debate(db_url: str, hyp_ids: list[str]) -> dict[str, float]:
    settings = load_settings(database_url=db_url)
    engine = ensure_schema(db_url)
    run_ids = create_runs(engine, settings, hyp_ids, backend="offline")

    async def go() -> None:
        async with Executor(engine, settings, backend="offline") as ex:
            await ex.execute_many(run_ids, concurrency=2)

    asyncio.run(go())
    with session_scope(engine) as s:
        rows = s.execute(select(t.Run.hypothesis_id, t.Run.score, t.Run.status).where(t.Run.id.in_(run_ids))).all()
    assert all(r.status == "done" for r in rows)
    return {r.hypothesis_id: r.score for r in rows}


def _twin_kb(tmp_path: Path, engine) -> None:  # type: ignore[no-untyped-def]
    kb = tmp_path / "kb"
    kb.mkdir()
    common = dict(modality="antisense oligonucleotide", disease="ALS")
    _page(
        kb,
        "alpha-program",
        title="Alpha Program",
        drug="Alphasen",
        gene="GENA1",
        status="FDA-approved (2021) after a positive Phase 3 trial",
        efficacy="Slowed functional decline and reduced neurofilament light chain",
        **common,
    )
    _page(
        kb,
        "beta-program",
        title="Beta Program",
        drug="Betasen",
        gene="GENB1",
        status="Phase 3 failed (2021); development discontinued",
        efficacy="Did not meet its primary endpoint",
        **common,
    )
    ingest_paths(engine, [kb])
    with session_scope(engine, immediate=True) as s:
        for hid, gene in (("h-000000a1", "GENA1"), ("h-000000b1", "GENB1")):
            add(
                s,
                HypothesisIn(
                    id=hid,
                    title=f"{gene} antisense knockdown in ALS",
                    statement=f"Lowering {gene} with an antisense oligonucleotide slows ALS.",
                    targets=[gene],
                    diseases=["ALS"],
                    mechanisms=["antisense"],
                ),
            )


def test_approval_evidence_scores_above_a_failed_pivotal_trial(tmp_path, db_url, engine):
    _twin_kb(tmp_path, engine)
    scores = _debate(db_url, ["h-000000a1", "h-000000b1"])
    assert scores["h-000000a1"] > scores["h-000000b1"]


def test_removing_the_supporting_page_lowers_the_score(tmp_path, db_url, engine):
    _twin_kb(tmp_path, engine)
    before = _debate(db_url, ["h-000000a1"])["h-000000a1"]
    remove_page(engine, "therapeutics-alpha-program")
    after = _debate(db_url, ["h-000000a1"])["h-000000a1"]
    assert after < before


def _normalized_transcript(db_url: str, run_id: str) -> dict:  # type: ignore[type-arg]
    with session_scope(ensure_schema(db_url)) as s:
        data = json.loads(render(load_transcript(s, run_id), "json"))
    volatile = {"id", "run_id", "created_at", "started_at", "finished_at", "retrieved_at", "latency_ms", "at"}

    def scrub(x):  # type: ignore[no-untyped-def]
        if isinstance(x, dict):
            return {k: scrub(v) for k, v in x.items() if k not in volatile and not k.endswith("_at")}
        if isinstance(x, list):
            return [scrub(v) for v in x]
        return x

    return scrub(data)


def test_same_inputs_give_the_same_transcript_and_score(tmp_path, sample_engine, db_url):
    other_url = f"sqlite:///{tmp_path}/other.db"
    from conftest import SAMPLE_HYPOTHESES, SAMPLE_KB

    from debate.kb.hypotheses import import_file

    other = ensure_schema(other_url)
    import_file(other, SAMPLE_HYPOTHESES)
    ingest_paths(other, [SAMPLE_KB])
    hyp = "h-3893b013"
    first, second = _debate(db_url, [hyp]), _debate(other_url, [hyp])
    assert first == second
    runs = []
    for url in (db_url, other_url):
        with session_scope(ensure_schema(url)) as s:
            runs.append(s.execute(select(t.Run.id)).scalar_one())
    assert _normalized_transcript(db_url, runs[0]) == _normalized_transcript(other_url, runs[1])


def test_every_offline_turn_is_labelled_heuristic(sample_engine, db_url):
    _debate(db_url, ["h-9878fd9b"])
    with session_scope(sample_engine) as s:
        turns = s.execute(select(t.Turn)).scalars().all()
        run_id = s.execute(select(t.Run.id)).scalar_one()
        assert turns and {x.label for x in turns} == {"heuristic"}
        assert {x.model for x in turns} == {"offline-heuristic-v1"}
        text = render(load_transcript(s, run_id), "text")
    assert "offline heuristic agents — no model" in text


def test_evidence_relevance_is_in_0_1_and_highest_at_rank_1(sample_engine, db_url):
    _debate(db_url, ["h-9878fd9b"])
    with session_scope(sample_engine) as s:
        run_id = s.execute(select(t.Run.id)).scalar_one()
        tr = load_transcript(s, run_id)
    rel = [e.relevance for e in tr.evidence]
    assert len(rel) >= 3 and all(r is not None and 0.0 <= r <= 1.0 for r in rel)
    assert rel[0] == 1.0 and max(rel) == rel[0]  # type: ignore[type-var]
    assert min(rel) < 1.0  # a ratio, not a constant  # type: ignore[type-var]
    assert f"(rank 1, relevance {rel[0]:.2f})" in render(tr, "text")
    assert f"rank 2 · relevance {rel[1]:.2f}" in render(tr, "md")


def test_a_fresh_offline_run_stores_its_transcript_with_its_score_in_one_transaction(sample_engine, db_url):
    """Nothing of a fresh offline run is visible until it is done; then all of it is."""
    settings = load_settings(database_url=db_url)
    [run_id] = create_runs(sample_engine, settings, ["h-9878fd9b"], backend="offline")
    seen_while_running: list[tuple[int, int, str | None]] = []

    def on_turn(rid: str, round_: int, role: str, seat: int, text: str) -> None:
        with session_scope(sample_engine) as s:
            n_turns = len(s.execute(select(t.Turn.id).where(t.Turn.run_id == rid)).all())
            n_evidence = len(s.execute(select(t.Evidence.id).where(t.Evidence.run_id == rid)).all())
            seen_while_running.append((n_turns, n_evidence, s.get(t.Run, rid).status))

    async def go() -> None:
        async with Executor(sample_engine, settings, backend="offline", on_turn=on_turn) as ex:
            await ex.execute(run_id)

    asyncio.run(go())
    assert len(seen_while_running) == 7  # 2 rounds x (proposer, critic) + 3 judges
    assert set(seen_while_running) == {(0, 0, "running")}
    with session_scope(sample_engine) as s:
        run = s.get(t.Run, run_id)
        turns = s.execute(select(t.Turn).where(t.Turn.run_id == run_id)).scalars().all()
        attempts = s.execute(select(t.Attempt).where(t.Attempt.run_id == run_id)).scalars().all()
        evidence = s.execute(select(t.Evidence).where(t.Evidence.run_id == run_id)).scalars().all()
        assert run.status == "done" and run.score is not None and run.retrieved_at is not None
        assert run.rounds_done == 2 and len(turns) == 7 and len(attempts) == 7 and evidence


def test_an_offline_run_that_fails_midway_keeps_its_transcript_so_far(sample_engine, db_url):
    from debate.core.errors import DebateError

    settings = load_settings(database_url=db_url)
    [run_id] = create_runs(sample_engine, settings, ["h-9878fd9b"], backend="offline")

    async def go() -> str:
        async with Executor(sample_engine, settings, backend="offline") as ex:
            backend = ex.backend

            class CriticFails:
                def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
                    return getattr(backend, name)

                async def critique(self, view):  # type: ignore[no-untyped-def]
                    raise DebateError("the critic broke")

            ex.backend = CriticFails()
            return (await ex.execute(run_id)).status

    assert asyncio.run(go()) == "failed"
    with session_scope(sample_engine) as s:
        run = s.get(t.Run, run_id)
        turns = s.execute(select(t.Turn.round, t.Turn.role).where(t.Turn.run_id == run_id)).all()
        evidence = s.execute(select(t.Evidence.id).where(t.Evidence.run_id == run_id)).all()
        assert run.status == "failed" and run.error == "the critic broke" and run.score is None
        assert turns == [(1, "proposer")] and evidence and run.retrieved_at is not None


def test_offline_judges_that_cannot_disagree_report_no_agreement(tmp_path, db_url, engine):
    """Evidence that names nothing of the hypothesis leaves every feature a persona reweighs at
    zero: the three judges give one verdict, and agreement is not applicable (None), not 1.0."""
    _twin_kb(tmp_path, engine)
    with session_scope(engine, immediate=True) as s:
        add(
            s,
            HypothesisIn(
                id="h-000000c1",
                title="Zorblin restoration in the quiet nucleus",
                statement="Restoring zorblin in the quiet nucleus slows decline.",
                targets=["ZRB9"],
                diseases=["Zorbl syndrome"],
                mechanisms=["zorblin restoration"],
            ),
        )
    _debate(db_url, ["h-000000c1"])
    with session_scope(engine) as s:
        run = s.execute(select(t.Run)).scalar_one()
        judges = s.execute(select(t.Turn).where(t.Turn.role == "judge")).scalars().all()
        assert len(judges) == 3 and len({json.dumps(j.parsed["scores"], sort_keys=True) for j in judges}) == 1
        assert run.score is not None and run.agreement is None
        text = render(load_transcript(s, run.id), "text")
    assert "agreement α = —" in text
