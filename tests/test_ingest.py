"""KB ingest: the seed page stored with every extracted part; unchanged pages left alone;
changed pages replaced in one transaction with their change time; bad pages refused whole."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from conftest import SAMPLE_KB, run_cli
from debate.errors import PageParseError, UserInputError
from debate.kb.ingest import ingest_paths, remove_page
from debate.store import tables as t
from debate.store.db import session_scope


def _count(engine, table) -> int:  # type: ignore[no-untyped-def]
    with session_scope(engine) as s:
        return s.execute(select(func.count()).select_from(table)).scalar_one()


def test_the_seed_page_is_stored_with_everything_extracted(engine, seed_path, db_url, cli_env):
    ingest_paths(engine, [seed_path])
    shown = json.loads(run_cli("kb", "show", "therapeutics-als-treatment-strategies", "--json", env=cli_env).stdout)
    assert shown["title"] == "ALS Treatment Strategies"
    assert shown["entity_type"] == "therapeutic"
    assert shown["metadata"]["wiki_page_id"] == "wp-87cbd12852ba"
    targets = {r["label"]: r["value"] for r in shown["infobox"] if r["table"] == "Target"}
    assert targets == {"SOD1": "ASO (tofersen)", "C9orf72": "ASO candidates", "FUS": "ASO candidates",
                       "ATXN2": "ASO (APB-101)"}
    trials = {r["label"]: r["value"] for r in shown["infobox"] if r["table"] == "Trial"}
    assert trials == {"NCT05686534": "Reldesemtiv", "NCT03162211": "Masitinib", "NCT04482113": "CNM-Au8",
                      "NCT05270330": "Combination therapy"}
    facts = {(f["heading_path"][-1], f["key"]): f["value"] for f in shown["facts"]}
    assert facts[("Riluzole (Rilutek)", "Status")] == "First FDA-approved ALS drug (1995)"
    assert facts[("Edaravone (Radicava)", "Status")] == "FDA-approved (2017)"
    assert facts[("AMX0035 (Relyvrio)", "Mechanism")] == "Combination of sodium phenylbutyrate and taurursodiol"
    assert facts[("Tofersen (Qalsody)", "Status")] == "FDA-approved (2023) for SOD1-ALS"
    slugs = {link["path"]: link["slug"] for link in shown["links"] if not link["external"]}
    assert slugs["/therapeutics/riluzole"] == "therapeutics-riluzole"
    assert slugs["/entities/c9orf72"] == "entities-c9orf72"
    assert slugs["/mechanisms/tdp-43-proteinopathy"] == "mechanisms-tdp-43-proteinopathy"
    assert shown["citations"] == ["bensimon1994"]
    hyps = [r for r in shown["related"] if r["kind"] == "hypothesis"]
    assert len(hyps) == 8
    genes = {r["target_label"]: r["genes"] for r in hyps}
    assert genes["P2RY1 and P2RX7"] == ["P2RY1", "P2RX7"]
    assert genes["HSPA1A, HSP90AA1, DNAJB1, FKBP5"] == ["HSPA1A", "HSP90AA1", "DNAJB1", "FKBP5"]
    analyses = [r["id"] for r in shown["related"] if r["kind"] == "analysis"]
    assert analyses == ["SDA-2026-04-02-gap-microglial-subtypes-20260402004119", "SDA-2026-04-01-gap-006",
                        "SDA-2026-04-01-gap-v2-68d9c9c1", "SDA-2026-04-02-gap-crispr-neurodegeneration-20260402"]
    assert all(r["in_progress"] for r in shown["related"] if r["kind"] == "analysis")
    gene_terms = {x["term"] for x in shown["terms"] if x["kind"] == "gene"}
    assert {"SOD1", "C9orf72", "FUS", "ATXN2"} <= gene_terms


def test_raw_text_is_kept_byte_for_byte(engine, seed_path):
    ingest_paths(engine, [seed_path])
    with session_scope(engine) as s:
        raw = s.execute(select(t.Page.raw_text)).scalar_one()
    assert raw.encode("utf-8") == seed_path.read_bytes()


def test_listed_hypotheses_are_imported_with_their_prior_marked_as_imported(engine, seed_path):
    ingest_paths(engine, [seed_path])
    with session_scope(engine) as s:
        h = s.get(t.Hypothesis, "h-0758b337")
        assert h is not None
        assert h.title == "Purinergic Signaling Polarization Control"
        assert h.targets == ["P2RY1", "P2RX7"] and h.target_label == "P2RY1 and P2RX7"
        assert h.prior_score == pytest.approx(0.74)
        assert h.prior_source == "therapeutics-als-treatment-strategies"
        assert h.source == "page:therapeutics-als-treatment-strategies"
        assert s.execute(select(func.count()).where(t.Run.hypothesis_id == h.id)).scalar_one() == 0
    assert _count(engine, t.Hypothesis) == 8  # analyses are not hypotheses


def test_reingesting_an_unchanged_page_changes_nothing(engine, seed_path):
    first = ingest_paths(engine, [seed_path])
    with session_scope(engine) as s:
        before = s.execute(select(t.Page.changed_at, t.Page.id)).one()
        n_chunks = s.execute(select(func.count()).select_from(t.Chunk)).scalar_one()
    second = ingest_paths(engine, [seed_path])
    assert first.added == ["therapeutics-als-treatment-strategies"]
    assert second.unchanged == ["therapeutics-als-treatment-strategies"] and not second.changed
    with session_scope(engine) as s:
        assert s.execute(select(t.Page.changed_at, t.Page.id)).one() == before
        assert s.execute(select(func.count()).select_from(t.Chunk)).scalar_one() == n_chunks


def test_a_changed_page_replaces_its_rows_and_records_when(engine, tmp_path, seed_path):
    page = tmp_path / "als.txt"
    shutil.copy(seed_path, page)
    ingest_paths(engine, [page])
    with session_scope(engine) as s:
        before = t.as_utc(s.execute(select(t.Page.changed_at)).scalar_one())
    time.sleep(0.01)
    page.write_text(page.read_text().replace("- Dose: 50 mg twice daily", "- Dose: 100 mg once daily"))
    report = ingest_paths(engine, [page])
    assert report.changed == ["therapeutics-als-treatment-strategies"]
    with session_scope(engine) as s:
        after = t.as_utc(s.execute(select(t.Page.changed_at)).scalar_one())
        doses = s.execute(select(t.Fact.value).where(t.Fact.key == "Dose")).scalars().all()
    assert after > before
    assert "100 mg once daily" in doses and "50 mg twice daily" not in doses
    assert _count(engine, t.Page) == 1


def test_a_bad_page_refuses_the_whole_ingest_and_names_the_file(engine, tmp_path, seed_path):
    folder = tmp_path / "kb"
    folder.mkdir()
    shutil.copy(seed_path, folder / "good.txt")
    (folder / "bad.txt").write_text("📗 Cite This Artifact\n\n")
    with pytest.raises(PageParseError, match="bad.txt"):
        ingest_paths(engine, [folder])
    assert _count(engine, t.Page) == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"\x00\x01\x02binary", "binary"),
        ("Cite This Artifact\nCaf\u00e9 Therapies\n".encode("latin-1"), "UTF-8"),
        (b"\xf0\x9f\x93\x97 Cite This Artifact\nA Page\n<table class=\"infobox\">\n<tr>\n", "table"),
    ],
    ids=["empty", "binary", "wrong-encoding", "broken-table"],
)
def test_malformed_pages_are_one_line_errors_with_exit_code_2(tmp_path, cli_env, content, message):
    page = tmp_path / "page.txt"
    page.write_bytes(content)
    proc = run_cli("kb", "ingest", str(page), env=cli_env, check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and "page.txt" in lines[-1] and message.lower() in lines[-1].lower()
    assert "Traceback" not in proc.stderr


def test_skip_bad_ingests_the_good_pages_and_lists_the_bad(tmp_path, cli_env, seed_path):
    folder = tmp_path / "kb"
    folder.mkdir()
    shutil.copy(seed_path, folder / "good.txt")
    (folder / "empty.txt").write_text("")
    proc = run_cli("kb", "ingest", str(folder), "--skip-bad", "--json", env=cli_env, check=False)
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert report["added"] == ["therapeutics-als-treatment-strategies"]
    assert len(report["skipped"]) == 1 and "empty.txt" in report["skipped"][0]


def test_remove_deletes_a_page_and_its_parts(engine, seed_path):
    ingest_paths(engine, [seed_path])
    remove_page(engine, "therapeutics-als-treatment-strategies")
    for table in (t.Page, t.Chunk, t.Fact, t.Link, t.PageTerm, t.RelatedEntry):
        assert _count(engine, table) == 0
    with pytest.raises(UserInputError, match="no KB page"):
        remove_page(engine, "therapeutics-als-treatment-strategies")


def test_the_sample_kb_ingests_cleanly(engine):
    report = ingest_paths(engine, [SAMPLE_KB])
    assert len(report.added) == len(list(Path(SAMPLE_KB).glob("*.txt")))
    assert not report.skipped


def test_search_ranks_all_terms_first_then_falls_back_to_any_term(engine, seed_path, cli_env):
    from debate.kb.search import search

    ingest_paths(engine, [seed_path])
    both = search(engine, "tofersen SOD1", limit=5, min_hits=1)
    assert both and both[0].mode == "all"
    assert "Tofersen" in " ".join(both[0].heading_path) or "tofersen" in both[0].text.lower()
    widened = search(engine, "tofersen zebrafishology", limit=5, min_hits=3)
    assert widened and all(h.mode == "any" for h in widened)
    assert search(engine, "zebrafishology", limit=5) == []
    out = json.loads(run_cli("kb", "search", "riluzole glutamate", "--json", env=cli_env).stdout)
    assert out[0]["slug"] == "therapeutics-als-treatment-strategies"
    assert set(out[0]) == {"slug", "heading_path", "snippet", "score", "mode"}
