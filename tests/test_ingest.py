"""KB ingest: an exported page (``pages.py``) stored with every extracted part; unchanged pages
left alone; changed pages replaced in one transaction with their change time; bad pages refused
whole."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from conftest import SAMPLE_KB, run_cli
from pages import PageSpec
from pg import pg_url  # noqa: F401  (fixture)
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from debate.core.errors import PageParseError, UserInputError
from debate.kb.ingest import ingest_paths, remove_page
from debate.store import tables as t
from debate.store.db import session_scope


def _count(engine, table) -> int:  # type: ignore[no-untyped-def]
    with session_scope(engine) as s:
        return s.execute(select(func.count()).select_from(table)).scalar_one()


def test_the_page_is_stored_with_everything_extracted(
    engine: Engine, page_path: Path, spec: PageSpec, cli_env: dict[str, str]
) -> None:
    ingest_paths(engine, [page_path])
    shown = json.loads(run_cli("kb", "show", spec.slug, "--json", env=cli_env).stdout)
    assert shown["title"] == spec.title
    assert shown["entity_type"] == "therapeutic"
    assert shown["metadata"]["wiki_page_id"] == spec.wiki_page_id
    targets = {r["label"]: r["value"] for r in shown["infobox"] if r["table"] == "Target"}
    assert targets == spec.targets
    trials = {r["label"]: r["value"] for r in shown["infobox"] if r["table"] == "Trial"}
    assert trials == spec.trials
    facts = {(*f["heading_path"], f["key"]): f["value"] for f in shown["facts"]}
    for path, value in spec.facts.items():
        assert facts[path] == value, path
    slugs = {link["path"]: link["slug"] for link in shown["links"] if not link["external"]}
    for path, slug in spec.link_slugs.items():
        assert slugs[path] == slug
    external = [link["path"] for link in shown["links"] if link["external"]]
    assert external == spec.external_urls
    assert shown["citations"] == spec.citations
    hyps = [r for r in shown["related"] if r["kind"] == "hypothesis"]
    assert len(hyps) == len(spec.hypothesis_ids)
    genes = {r["target_label"]: r["genes"] for r in hyps}
    for label, split in spec.split_targets.values():
        assert genes[label] == split
    analyses = [r["id"] for r in shown["related"] if r["kind"] == "analysis"]
    assert analyses == spec.analysis_ids
    assert all(r["in_progress"] for r in shown["related"] if r["kind"] == "analysis")
    gene_terms = {x["term"] for x in shown["terms"] if x["kind"] == "gene"}
    assert spec.gene_terms <= gene_terms
    assert not gene_terms & set(spec.trials)  # trial ids are not genes


def test_raw_text_is_kept_byte_for_byte(engine: Engine, page_path: Path) -> None:
    ingest_paths(engine, [page_path])
    with session_scope(engine) as s:
        raw = s.execute(select(t.Page.raw_text)).scalar_one()
    assert raw.encode("utf-8") == page_path.read_bytes()


def test_listed_hypotheses_are_imported_with_their_prior_marked_as_imported(
    engine: Engine, page_path: Path, spec: PageSpec
) -> None:
    ingest_paths(engine, [page_path])
    imported_id, title = spec.imported
    with session_scope(engine) as s:
        h = s.get(t.Hypothesis, imported_id)
        assert h is not None
        assert h.title == title
        assert h.prior_score == pytest.approx(spec.prior(imported_id))
        assert h.prior_source == spec.slug
        assert h.source == f"page:{spec.slug}"
        assert s.execute(select(func.count()).where(t.Run.hypothesis_id == h.id)).scalar_one() == 0
        for hyp_id, (label, genes) in spec.split_targets.items():  # multi-gene targets, kept as written
            h = s.get(t.Hypothesis, hyp_id)
            assert h is not None
            assert h.targets == genes and h.target_label == label
            assert h.prior_score == pytest.approx(spec.prior(hyp_id))
    assert _count(engine, t.Hypothesis) == len(spec.hypothesis_ids)  # analyses are not hypotheses


def test_reingesting_an_unchanged_page_changes_nothing(engine: Engine, page_path: Path, spec: PageSpec) -> None:
    first = ingest_paths(engine, [page_path])
    with session_scope(engine) as s:
        before = s.execute(select(t.Page.changed_at, t.Page.id)).one()
        n_chunks = s.execute(select(func.count()).select_from(t.Chunk)).scalar_one()
    second = ingest_paths(engine, [page_path])
    assert first.added == [spec.slug] and first.hypotheses_imported == len(spec.hypothesis_ids)
    assert second.unchanged == [spec.slug] and not second.changed
    with session_scope(engine) as s:
        assert s.execute(select(t.Page.changed_at, t.Page.id)).one() == before
        assert s.execute(select(func.count()).select_from(t.Chunk)).scalar_one() == n_chunks


def test_a_changed_page_replaces_its_rows_and_records_when(
    engine: Engine, tmp_path: Path, page_path: Path, spec: PageSpec
) -> None:
    page = tmp_path / spec.name
    shutil.copy(page_path, page)
    ingest_paths(engine, [page])
    with session_scope(engine) as s:
        before = t.as_utc(s.execute(select(t.Page.changed_at)).scalar_one())
    time.sleep(0.01)
    old, new = spec.dose_edit
    page.write_text(page.read_text(encoding="utf-8").replace(f"- Dose: {old}", f"- Dose: {new}"), encoding="utf-8")
    report = ingest_paths(engine, [page])
    assert report.changed == [spec.slug]
    with session_scope(engine) as s:
        after = t.as_utc(s.execute(select(t.Page.changed_at)).scalar_one())
        doses = s.execute(select(t.Fact.value).where(t.Fact.key == "Dose")).scalars().all()
    assert after > before
    assert new in doses and old not in doses
    assert _count(engine, t.Page) == 1


def test_a_bad_page_refuses_the_whole_ingest_and_names_the_file(
    engine: Engine, tmp_path: Path, page_path: Path
) -> None:
    folder = tmp_path / "kb"
    folder.mkdir()
    shutil.copy(page_path, folder / "good.txt")
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
        (b'\xf0\x9f\x93\x97 Cite This Artifact\nA Page\n<table class="infobox">\n<tr>\n', "table"),
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


def test_skip_bad_ingests_the_good_pages_and_lists_the_bad(
    tmp_path: Path, cli_env: dict[str, str], page_path: Path, spec: PageSpec
) -> None:
    folder = tmp_path / "kb"
    folder.mkdir()
    shutil.copy(page_path, folder / "good.txt")
    (folder / "empty.txt").write_text("")
    proc = run_cli("kb", "ingest", str(folder), "--skip-bad", "--json", env=cli_env, check=False)
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert report["added"] == [spec.slug]
    assert len(report["skipped"]) == 1 and "empty.txt" in report["skipped"][0]


def test_remove_deletes_a_page_and_its_parts(engine: Engine, page_path: Path, spec: PageSpec) -> None:
    ingest_paths(engine, [page_path])
    remove_page(engine, spec.slug)
    for table in (t.Page, t.Section, t.Fact, t.InfoboxRow, t.Link, t.Citation, t.Chunk, t.PageTerm, t.RelatedEntry):
        assert _count(engine, table) == 0, table
    with pytest.raises(UserInputError, match="no KB page"):
        remove_page(engine, spec.slug)


def test_the_sample_kb_ingests_cleanly(engine):
    report = ingest_paths(engine, [SAMPLE_KB])
    assert len(report.added) == len(list(Path(SAMPLE_KB).glob("*.txt")))
    assert not report.skipped


def test_search_ranks_all_terms_first_then_falls_back_to_any_term(
    engine: Engine, page_path: Path, spec: PageSpec, cli_env: dict[str, str]
) -> None:
    from debate.kb.search import search

    ingest_paths(engine, [page_path])
    query, heading_path = spec.search_all
    word = query.split()[0]
    both = search(engine, query, limit=5, min_hits=1)
    assert both and both[0].mode == "all"
    assert both[0].heading_path == heading_path and word in both[0].text.lower()
    widened = search(engine, f"{word} zebrafishology", limit=5, min_hits=3)
    assert widened and all(h.mode == "any" for h in widened)
    assert search(engine, "zebrafishology", limit=5) == []
    query, heading = spec.cli_search
    out = json.loads(run_cli("kb", "search", query, "--json", env=cli_env).stdout)
    assert out[0]["slug"] == spec.slug and out[0]["heading_path"][0] == heading
    assert set(out[0]) == {"slug", "heading_path", "snippet", "score", "mode"}


# -- search ranking on a larger KB ----------------------------------------------------------


@pytest.fixture
def synthetic_kb(engine, tmp_path):  # type: ignore[no-untyped-def]
    """60 benchmark-shaped pages (~1,100 chunks): common words everywhere, gene symbols rarer."""
    from debate.bench.pages import make_pages

    folder = tmp_path / "synthetic"
    folder.mkdir()
    for name, text in make_pages(60):
        (folder / name).write_text(text, encoding="utf-8")
    ingest_paths(engine, [folder])
    return engine


def _full_or(engine, words: list[str]) -> list[tuple[int, float]]:  # type: ignore[no-untyped-def]
    """The reference: BM25 of the plain OR query over every chunk, ties by id."""
    from sqlalchemy import text

    match = " OR ".join(f'"{w}"' for w in words)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT rowid, bm25(chunks_fts) AS b FROM chunks_fts WHERE chunks_fts MATCH :m ORDER BY b, rowid"),
            {"m": match},
        ).all()
    return [(r[0], -r[1]) for r in rows]


def _holding(engine, word: str) -> set[int]:  # type: ignore[no-untyped-def]
    from sqlalchemy import text

    with engine.connect() as conn:
        return {
            r[0]
            for r in conn.execute(text("SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH :w"), {"w": f'"{word}"'})
        }


def _ranked(engine, words: list[str], limit: int) -> list[tuple[int, float]]:  # type: ignore[no-untyped-def]
    from debate.kb import fts5

    with engine.connect() as conn:
        return fts5.rank(conn, words, "any", limit)


def _same(got: list[tuple[int, float]], want: list[tuple[int, float]]) -> None:
    assert [c for c, _ in got] == [c for c, _ in want]
    assert [s for _, s in got] == pytest.approx([s for _, s in want], rel=1e-12)


def test_the_rarest_terms_bound_an_any_term_query_only_past_the_budget(monkeypatch):
    from debate.kb import rare

    monkeypatch.setattr(rare, "FULL_OR_ROWS", 1000)
    monkeypatch.setattr(rare, "RARE_ROWS", 300)
    words = ["amyloid", "sod1", "tau", "mtor", "zebrafish"]
    assert rare.rare_terms(words, {"amyloid": 200, "sod1": 40, "tau": 300, "mtor": 90, "zebrafish": 0}) is None
    docs = {"amyloid": 900, "sod1": 40, "tau": 1001, "mtor": 90, "zebrafish": 0}
    assert rare.rare_terms(words, docs) == ["sod1", "mtor"]  # rarest first; absent terms never
    assert rare.rare_terms(words, {**docs, "sod1": 500, "mtor": 600}) == ["sod1"]  # at least one
    assert rare.rare_terms(["amyloid", "tau"], {"amyloid": 900, "tau": 900}) == ["amyloid"]
    assert rare.rare_terms(["sod1", "zebrafish"], {"sod1": 5000, "zebrafish": 0}) is None  # nothing to drop


def test_an_any_term_query_within_budget_is_ranked_over_every_chunk(synthetic_kb):
    words = ["sod1", "amyloid", "tau"]
    _same(_ranked(synthetic_kb, words, 10), _full_or(synthetic_kb, words)[:10])


def test_past_the_budget_the_any_term_pass_ranks_the_rare_terms_chunks_by_whole_query_bm25(synthetic_kb, monkeypatch):
    from debate.kb import rare

    words = ["amyloid", "mtor", "tau", "autophagy", "lysosome", "microglia"]
    holding_mtor = _holding(synthetic_kb, "mtor")
    assert 10 <= len(holding_mtor) < len(_holding(synthetic_kb, "amyloid"))
    monkeypatch.setattr(rare, "FULL_OR_ROWS", 100)
    monkeypatch.setattr(rare, "RARE_ROWS", len(holding_mtor))
    limit = len(holding_mtor)
    whole = _full_or(synthetic_kb, words)
    assert any(c not in holding_mtor for c, _ in whole[:limit]), "chunks with common words alone rank in the whole OR"

    # Same scores as the whole OR query gives those chunks, in its order, but only chunks
    # holding the rare term: every one of them, and no chunk with common words alone.
    _same(_ranked(synthetic_kb, words, limit), [hit for hit in whole if hit[0] in holding_mtor])


def test_when_the_rare_terms_hold_too_few_chunks_the_whole_or_is_ranked(synthetic_kb, monkeypatch):
    from debate.kb import rare

    words = ["sod1", "amyloid", "tau"]
    monkeypatch.setattr(rare, "FULL_OR_ROWS", 100)
    monkeypatch.setattr(rare, "RARE_ROWS", 100)
    limit = len(_holding(synthetic_kb, "sod1")) + 5
    _same(_ranked(synthetic_kb, words, limit), _full_or(synthetic_kb, words)[:limit])


def test_hits_carry_chunk_text_page_and_a_snippet_marking_the_terms(synthetic_kb):
    from debate.kb.search import search

    hits = search(synthetic_kb, "SOD1 zebrafishology", limit=4, min_hits=3)
    assert len(hits) == 4 and all(h.mode == "any" for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    with session_scope(synthetic_kb) as s:
        for h in hits:
            chunk = s.get(t.Chunk, h.chunk_id)
            page = s.get(t.Page, h.page_id)
            assert chunk is not None and page is not None and chunk.page_id == page.id
            assert (h.text, h.heading_path, h.slug, h.title) == (chunk.text, chunk.heading_path, page.slug, page.title)
            assert "sod1" in h.text.lower() and "[SOD1]" in h.snippet


@pytest.mark.postgres
def test_postgres_bounds_the_any_term_pass_the_same_way(pg_url, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]  # noqa: F811
    from sqlalchemy import text

    from debate.bench.pages import make_pages
    from debate.kb import rare
    from debate.kb.search import search
    from debate.store.db import ensure_schema

    engine = ensure_schema(pg_url)
    folder = tmp_path / "synthetic"
    folder.mkdir()
    for name, page_text in make_pages(60):
        (folder / name).write_text(page_text, encoding="utf-8")
    ingest_paths(engine, [folder])
    # No chunk holds every term ("zebrafishology" is nowhere), so every hit is an any-term hit.
    words = ["amyloid", "mtor", "tau", "autophagy", "lysosome", "microglia", "zebrafishology"]

    def ranked(match: str) -> list[int]:
        """Chunks matching ``match``, by ts_rank_cd against the whole query, ties by id."""
        with engine.connect() as conn:
            return [
                r[0]
                for r in conn.execute(
                    text(
                        "SELECT id FROM chunks WHERE tsv @@ to_tsquery('simple', :m) "
                        "ORDER BY ts_rank_cd(tsv, to_tsquery('simple', :q)) DESC, id"
                    ),
                    {"m": match, "q": " | ".join(words)},
                )
            ]

    holding_rare = ranked("mtor")
    limit = len(holding_rare)
    whole = ranked(" | ".join(words))[:limit]
    assert set(whole) != set(holding_rare), "chunks with common words alone rank in the whole OR"

    def hits() -> list[int]:
        found = search(engine, "", terms=words, limit=limit, min_hits=3)
        assert all(h.mode == "any" for h in found)
        return [h.chunk_id for h in found]

    assert hits() == whole
    monkeypatch.setattr(rare, "FULL_OR_ROWS", 100)
    monkeypatch.setattr(rare, "RARE_ROWS", limit)
    assert hits() == holding_rare
