"""Specification of the ``cited`` relation: a page relates to a hypothesis when a claim cited it.

A hypothesis is related to a page by citation only when a proposer or critic claim in one of its
debates cited an item of that page (``cited_pages``, written when a run finishes). A verified
claim (its quote found in the cited item) weighs 0.3 and reads ``cited``; unverified claims only
weigh 0.1 and read ``cited-unverified``. Evidence a debate merely retrieved relates nothing. The
whole-KB export reads the same relation as the per-page lists, and migration 0009 fills
``cited_pages`` for runs finished before it existed, every claim counted as unverified.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from pg import pg_url  # noqa: F401  (fixture)
from rows import T0, add_hyp, insert_evidence, insert_run, insert_turn
from sqlalchemy import insert, select
from sqlalchemy.engine import Engine

from debate.core.genes import gene_key
from debate.core.models import normalize_title
from debate.kb.ingest import ingest_paths
from debate.store import tables as t
from debate.store.db import _alembic_config, current_revision, get_engine, head_revision, migrate, session_scope
from debate.wiki.export import BulkSource
from debate.wiki.related import WEIGHTS, RelatedList, load_related, related_for, related_json

# ---------------------------------------------------------------- helpers


def page(slug: str, title: str, *, targets: tuple[str, ...] = (), body: str = "Nothing gene-like here.") -> str:
    """A small page in the wiki export format, with an optional Target infobox."""
    lines = ["📗 Cite This Artifact", title, title, "Overview", body]
    if targets:
        lines += ['<table class="infobox infobox-therapeutic">', "<tr>", '<td class="label">Target</td>']
        lines += ["<td>Approach</td>", "</tr>"]
        for g in targets:
            lines += ["<tr>", f'<td class="label">{g}</td>', "<td>Small molecule</td>", "</tr>"]
        lines.append("</table>")
    lines += ["▸Metadata", f"| slug | {slug} |", "| entity_type | therapeutic |", "No provenance edges found"]
    return "\n".join(lines) + "\n"


def ingest(engine: Engine, tmp_path: Path, pages: dict[str, str]) -> None:
    kb = tmp_path / "kb"
    kb.mkdir(exist_ok=True)
    for slug, text in pages.items():
        (kb / f"{slug}.txt").write_text(text, encoding="utf-8")
    ingest_paths(engine, [kb])


def debated(engine: Engine, hyp_id: str, score: float, *, retrieved: tuple[str, ...] = (), at: datetime = T0) -> str:
    """A finished run of ``hyp_id`` scoring ``score`` that retrieved one chunk of each page in
    ``retrieved`` (E1, E2, ...); nothing cited yet. Its id."""
    run_id = insert_run(engine, hyp_id, at=at, score=score, spread=0.05)
    if retrieved:
        insert_evidence(engine, run_id, retrieved)
    return run_id


def cite(engine: Engine, run_id: str, slug: str, *, verified: int = 0, unverified: int = 0) -> None:
    """Record, as a finishing run does, how many of its claims cited ``slug`` with and without a
    verified quote."""
    with session_scope(engine) as s:
        s.execute(insert(t.CitedPage).values(run_id=run_id, page_slug=slug, verified=verified, unverified=unverified))


def per_page(engine: Engine, slug: str, **kw: Any) -> RelatedList:
    """The list as ``debate related`` builds it (one page, read from the database)."""
    with session_scope(engine) as s:
        return load_related(s, slug, **kw)


def exported(engine: Engine, slug: str, **kw: Any) -> RelatedList:
    """The list as ``debate export`` builds it (every row preloaded once)."""
    with session_scope(engine) as s:
        return related_for(BulkSource(s), slug, **kw)[0]


def reasons(rl: RelatedList) -> dict[str, tuple[list[str], float]]:
    """Hypothesis id -> (reasons, relatedness), as ``--format json`` prints them."""
    return {i["id"]: (i["reasons"], i["relatedness"]) for i in json.loads(related_json(rl))["items"]}


# ---------------------------------------------------------------- retrieval alone relates nothing

PD = "diseases-parkinsons-disease"
ALS_CARE = "therapeutics-als-care"


def test_evidence_only_retrieved_from_a_page_does_not_put_a_hypothesis_on_it(engine: Engine, tmp_path: Path) -> None:
    # The cross-disease leak: an ALS debate's search hit a Parkinson's page, but no claim cited it.
    ingest(
        engine,
        tmp_path,
        {
            PD: page(PD, "Parkinson's Disease", targets=("LRRK2",), body="Dopaminergic neurons degenerate."),
            ALS_CARE: page(ALS_CARE, "ALS Care"),
        },
    )
    sod1 = add_hyp(engine, "Tofersen knockdown of mutant SOD1", targets=["SOD1"], diseases=["ALS"], prior_score=0.5)
    lrrk2 = add_hyp(engine, "LRRK2 kinase inhibition", targets=["LRRK2"], prior_score=0.5)
    run = debated(engine, sod1, 0.9, retrieved=(PD, ALS_CARE))
    cite(engine, run, ALS_CARE, verified=2)  # its claims cited only the ALS page

    for build in (per_page, exported):
        assert [i.id for i in build(engine, PD).items] == [lrrk2], build.__name__
        (on_als,) = build(engine, ALS_CARE).items
        assert (on_als.id, on_als.reasons) == (sod1, ["disease:ALS", "cited"]), build.__name__


# ---------------------------------------------------------------- verified and unverified citations

PLAIN = "entities-plain"


@pytest.fixture
def cited_engine(engine: Engine, tmp_path: Path) -> tuple[Engine, dict[str, str]]:
    """One plain page (nothing else relates to it) and hypotheses whose debates cited it, or not:

    * ``verified``: one claim with a verified quote, two without (score 0.6);
    * ``mixed``: an older run cited it by unverified claims, a newer one by a verified claim (0.5);
    * ``unverified``: three claims, none verified (0.9);
    * ``retrieved``: its run retrieved a chunk of the page, no claim cited it (0.95).
    """
    ingest(engine, tmp_path, {PLAIN: page(PLAIN, "Plain Page")})
    h = {k: add_hyp(engine, f"{k.capitalize()} idea", prior_score=0.5) for k in ("verified", "mixed", "unverified")}
    h["retrieved"] = add_hyp(engine, "Retrieved idea", prior_score=0.5)
    cite(engine, debated(engine, h["verified"], 0.6, retrieved=(PLAIN,)), PLAIN, verified=1, unverified=2)
    cite(engine, debated(engine, h["mixed"], 0.3, retrieved=(PLAIN,)), PLAIN, unverified=1)
    later = debated(engine, h["mixed"], 0.5, retrieved=(PLAIN,), at=T0 + timedelta(hours=1))
    cite(engine, later, PLAIN, verified=1)
    cite(engine, debated(engine, h["unverified"], 0.9, retrieved=(PLAIN,)), PLAIN, unverified=3)
    debated(engine, h["retrieved"], 0.95, retrieved=(PLAIN,))
    return engine, h


def test_weights_of_a_verified_and_an_unverified_citation() -> None:
    assert (WEIGHTS["cited"], WEIGHTS["cited_unverified"]) == (0.3, 0.1)


def test_a_verified_claim_reads_cited_and_unverified_claims_only_read_cited_unverified(
    cited_engine: tuple[Engine, dict[str, str]],
) -> None:
    engine, h = cited_engine
    rl = per_page(engine, PLAIN)
    assert reasons(rl) == {
        h["unverified"]: (["cited-unverified"], 0.1),
        h["verified"]: (["cited"], 0.3),
        h["mixed"]: (["cited"], 0.3),  # one verified claim in any of its runs is enough
    }
    assert [i.id for i in rl.items] == [h["unverified"], h["verified"], h["mixed"]]  # displayed by score


def test_an_unverified_citation_ranks_below_a_verified_one_with_a_lower_score(
    cited_engine: tuple[Engine, dict[str, str]],
) -> None:
    # rank = relatedness × (0.5 + score): 0.3 × 1.1 and 0.3 × 1.0 beat 0.1 × 1.4.
    engine, h = cited_engine
    assert [i.id for i in per_page(engine, PLAIN, limit=1).items] == [h["verified"]]
    assert [i.id for i in per_page(engine, PLAIN, limit=2).items] == [h["verified"], h["mixed"]]


def test_the_export_reads_the_same_citations_as_the_per_page_list(
    cited_engine: tuple[Engine, dict[str, str]],
) -> None:
    engine, h = cited_engine
    for limit in (1, 2, 10):
        assert exported(engine, PLAIN, limit=limit) == per_page(engine, PLAIN, limit=limit)
    bulk = reasons(exported(engine, PLAIN))
    assert bulk[h["verified"]] == (["cited"], 0.3)
    assert bulk[h["unverified"]] == (["cited-unverified"], 0.1)
    assert h["retrieved"] not in bulk


# ---------------------------------------------------------------- migration 0009 fills cited_pages


def at_0008(url: str) -> Engine:
    """A database whose schema is at revision 0008, before ``cited_pages`` existed."""
    engine = get_engine(url)
    command.upgrade(_alembic_config(engine), "0008")
    assert current_revision(engine) == "0008"
    return engine


def old_hyp(engine: Engine, title: str, gene: str) -> str:
    """A hypothesis stored with the columns revision 0008 has (the ORM reads today's, some newer)."""
    hyp_id = "h-5d0d1f00"
    with session_scope(engine) as s:
        s.execute(
            insert(t.Hypothesis).values(
                id=hyp_id,
                title=title,
                title_key=normalize_title(title),
                statement="",
                diseases=[],
                targets=[gene],
                mechanisms=[],
                source="test",
                created_at=T0,
                updated_at=T0,
            )
        )
        s.execute(
            insert(t.HypothesisTarget).values(hypothesis_id=hyp_id, gene_key=gene_key(gene), gene=gene, ordinal=0)
        )
    return hyp_id


def insert_claims(engine: Engine, run_id: str, role: str, claims: list[list[str]]) -> None:
    """A stored turn of ``role`` whose claims cite these evidence ids (one list per claim)."""
    parsed = {"claims": [{"text": f"Claim {i}.", "evidence_ids": ids} for i, ids in enumerate(claims, 1)]}
    insert_turn(engine, run_id, role, parsed)


def cited_rows(engine: Engine) -> set[tuple[str, str, int, int]]:
    C = t.CitedPage
    with session_scope(engine) as s:
        return set(s.execute(select(C.run_id, C.page_slug, C.verified, C.unverified)).all())  # type: ignore[arg-type]


def _backfill_one_claim(url: str) -> None:
    engine = at_0008(url)
    hyp = old_hyp(engine, "Tofersen knockdown of mutant SOD1", "SOD1")
    run = insert_run(engine, hyp, score=0.7)
    insert_evidence(engine, run, ["page-a", "page-b"])  # E1 from page A, E2 from page B
    insert_claims(engine, run, "proposer", [["E1"]])  # E2 was retrieved, never cited
    assert migrate(engine)
    assert current_revision(engine) == head_revision()
    assert cited_rows(engine) == {(run, "page-a", 0, 1)}


def test_migration_counts_a_cited_page_as_unverified_and_skips_a_retrieved_one(db_url: str) -> None:
    _backfill_one_claim(db_url)


@pytest.mark.postgres
def test_migration_backfill_on_postgres(pg_url: str) -> None:  # noqa: F811
    _backfill_one_claim(pg_url)


def test_migration_counts_each_claim_once_per_page_for_finished_runs_only(db_url: str, tmp_path: Path) -> None:
    engine = at_0008(db_url)
    hyp = old_hyp(engine, "Tofersen knockdown of mutant SOD1", "SOD1")
    done = insert_run(engine, hyp, score=0.7)
    insert_evidence(engine, done, ["page-a", "page-a", "page-b", "page-c"])  # E1, E2: A; E3: B; E4: C
    insert_claims(engine, done, "proposer", [["E1", "E2"], ["E3", "E9"]])  # E9 names no evidence of the run
    insert_claims(engine, done, "critic", [["E1"]])
    insert_claims(engine, done, "judge", [["E4"]])  # judges' replies are not claims of the debate
    failed = insert_run(engine, hyp, status="failed", at=T0 + timedelta(hours=1))
    insert_evidence(engine, failed, ["page-c"])
    insert_claims(engine, failed, "proposer", [["E1"]])
    migrate(engine)
    assert cited_rows(engine) == {(done, "page-a", 0, 2), (done, "page-b", 0, 1)}

    # What the backfill wrote is what relatedness reads.
    ingest(engine, tmp_path, {s: page(s, s.replace("-", " ").title()) for s in ("page-a", "page-b", "page-c")})
    assert reasons(per_page(engine, "page-a")) == {hyp: (["cited-unverified"], 0.1)}
    assert reasons(per_page(engine, "page-b")) == {hyp: (["cited-unverified"], 0.1)}
    assert per_page(engine, "page-c").items == []
