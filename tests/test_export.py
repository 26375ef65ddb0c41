"""Specification of the export wiki builds pull: pages, scores.json and related/*.json."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest
from conftest import run_cli
from sqlalchemy import insert

from debate.core.models import HypothesisIn
from debate.kb import hypotheses as hyps
from debate.kb.ingest import ingest_paths
from debate.store import tables as t
from debate.store.db import ensure_schema, session_scope
from debate.store.tables import utcnow
from debate.wiki.export import ExportReport, export

SEED_SLUG = "therapeutics-als-treatment-strategies"
PERFORANT = "h-76888762"  # imported at 0.69


@pytest.fixture
def seeded(engine, seed_path: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / seed_path.name).write_bytes(seed_path.read_bytes())
    ingest_paths(engine, [kb])
    return engine


def add_done_run(engine, hyp_id: str, score: float, at: datetime | None = None) -> str:  # type: ignore[no-untyped-def]
    run_id = f"r-{uuid4().hex[:12]}"
    at = at or utcnow()
    with session_scope(engine) as s:
        s.execute(
            insert(t.Run).values(
                id=run_id,
                hypothesis_id=hyp_id,
                status="done",
                backend="offline",
                models={},
                config={},
                prompt_hashes={},
                created_at=at - timedelta(seconds=30),
                finished_at=at,
                score=score,
                agreement=0.8,
            )
        )
    return run_id


def run_export(engine, out: Path, **kw) -> ExportReport:  # type: ignore[no-untyped-def]
    return export(engine, out, limit=10, **kw)


def test_seed_with_its_priors_round_trips_byte_for_byte(seed_path: Path, tmp_path: Path) -> None:
    engine = ensure_schema(f"sqlite:///{tmp_path}/t.db")
    ingest_paths(engine, [seed_path])
    out = tmp_path / "out"
    report = run_export(engine, out)
    assert (out / seed_path.name).read_bytes() == seed_path.read_bytes()
    assert (report.pages, report.written, report.unchanged) == (1, 3, 0)
    related = json.loads((out / "related" / f"{SEED_SLUG}.json").read_text(encoding="utf-8"))
    assert [i["kind"] for i in related["items"]] == ["hypothesis"] * 8 + ["analysis"] * 4
    assert related["markdown"] in seed_path.read_text(encoding="utf-8")


def test_a_new_score_moves_exactly_that_line(seeded, seed_path: Path, tmp_path: Path) -> None:
    add_done_run(seeded, PERFORANT, 0.9)
    out = tmp_path / "out"
    run_export(seeded, out)
    before = seed_path.read_text(encoding="utf-8").split("\n")
    after = (out / seed_path.name).read_text(encoding="utf-8").split("\n")
    assert len(before) == len(after)
    first = before.index("Related Hypotheses") + 2
    old = next(i for i, line in enumerate(before) if PERFORANT in line)
    moved = before[old].replace(">0.69</span>", ">0.90</span>")
    assert moved != before[old] and "color:#81c784" in moved
    expected = before[:old] + before[old + 1 :]
    expected.insert(first, moved)
    assert after == expected
    changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
    assert changed == list(range(first, old + 1))  # only the lines between its old and new place


def test_scores_json_is_what_the_cli_prints(seeded, tmp_path: Path, cli_env: dict[str, str]) -> None:
    add_done_run(seeded, PERFORANT, 0.9)
    out = tmp_path / "out"
    run_export(seeded, out)
    printed = run_cli("scores", "--json", env=cli_env).stdout
    assert printed == (out / "scores.json").read_text(encoding="utf-8")
    rows = json.loads(printed)
    assert {r["id"]: r["shown_score"] for r in rows}[PERFORANT] == 0.9
    listed = run_cli("related", SEED_SLUG, "--format", "json", env=cli_env).stdout
    assert listed == (out / "related" / f"{SEED_SLUG}.json").read_text(encoding="utf-8")


def test_second_export_rewrites_nothing(seeded, tmp_path: Path, cli_env: dict[str, str]) -> None:
    out = tmp_path / "out"
    run_export(seeded, out)
    files = sorted(p for p in out.rglob("*") if p.is_file())
    mtimes = {p: p.stat().st_mtime_ns for p in files}
    again = run_export(seeded, out)
    assert (again.written, again.unchanged, again.written_files) == (0, 3, [])
    assert {p: p.stat().st_mtime_ns for p in files} == mtimes
    assert sorted(p for p in out.rglob("*") if p.is_file()) == files  # no temporary files left
    summary = run_cli("export", "--out", str(out), env=cli_env).stdout
    assert "0 files written, 3 unchanged" in summary
    report = json.loads(run_cli("export", "--out", str(out), "--json", env=cli_env).stdout)
    assert (report["written"], report["unchanged"]) == (0, 3)


OTHER_PAGE = """Tofersen Notes
Overview
- Status: approved for SOD1 carriers
▸Metadata
| slug | therapeutics-tofersen-notes |
"""
PLAIN_PAGE = """Care Logistics
Overview
- Clinic: monthly visits
▸Metadata
| slug | therapeutics-care-logistics |
"""


def test_sections_are_added_only_where_something_is_related(engine, tmp_path: Path) -> None:
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "tofersen.txt").write_text(OTHER_PAGE, encoding="utf-8")
    (kb / "sub").mkdir()
    (kb / "sub" / "care.txt").write_text(PLAIN_PAGE, encoding="utf-8")
    ingest_paths(engine, [kb])
    with session_scope(engine) as s:
        row, _ = hyps.add(s, HypothesisIn(title="SOD1 knockdown", targets=["SOD1"], prior_score=0.7, source="test"))
    out = tmp_path / "out"
    run_export(engine, out)
    assert (out / "sub" / "care.txt").read_text(encoding="utf-8") == PLAIN_PAGE
    section = (
        "Related Hypotheses\n"
        "From the [SciDEX Exchange](/exchange) — scored by multi-agent debate\n"
        f'- [SOD1 knockdown](/hypothesis/{row.id}) — <span style="color:#81c784;font-weight:600">0.70</span>'
        " · Target: SOD1\n"
    )
    assert (out / "tofersen.txt").read_text(encoding="utf-8") == OTHER_PAGE.replace("▸Metadata", section + "▸Metadata")
    assert json.loads((out / "related" / "therapeutics-care-logistics.json").read_text())["items"] == []


def test_changed_since_selects_changed_pages_and_moved_scores(seeded, tmp_path: Path) -> None:
    kb = tmp_path / "kb2"
    kb.mkdir()
    (kb / "care.txt").write_text(PLAIN_PAGE, encoding="utf-8")
    ingest_paths(seeded, [kb])
    out = tmp_path / "out"
    assert run_export(seeded, out).pages == 2
    since = utcnow()
    quiet = run_export(seeded, out, changed_since=since)
    assert (quiet.pages, quiet.pages_total, quiet.written) == (0, 2, 0)

    add_done_run(seeded, PERFORANT, 0.9, at=since)
    moved = run_export(seeded, out, changed_since=since)
    assert moved.pages == 1
    assert sorted(moved.written_files) == sorted(
        ["als-treatment-strategies.txt", f"related/{SEED_SLUG}.json", "scores.json"]
    )

    later = utcnow()
    (kb / "care.txt").write_text(PLAIN_PAGE.replace("monthly", "weekly"), encoding="utf-8")
    ingest_paths(seeded, [kb])
    edited = run_export(seeded, out, changed_since=later)
    assert edited.pages == 1 and "care.txt" in edited.written_files
    naive = run_export(seeded, out, changed_since=datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=1))
    assert naive.pages == 0


def test_bad_out_and_bad_time(seeded, tmp_path: Path, cli_env: dict[str, str]) -> None:
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    bad = run_cli("export", "--out", str(a_file), env=cli_env, check=False)
    assert bad.returncode == 2
    assert [x for x in bad.stderr.splitlines() if x.startswith("error")] == [f"error: {a_file}: not a folder"]
    worse = run_cli("export", "--out", str(tmp_path / "o"), "--changed-since", "yesterday", env=cli_env, check=False)
    assert worse.returncode == 2 and "ISO 8601" in worse.stderr


def test_bulk_export_lists_equal_per_page_lists(tmp_path: Path) -> None:
    from debate.bench.export import generate
    from debate.wiki.export import BulkSource
    from debate.wiki.related import load_related, related_for

    url = f"sqlite:///{tmp_path}/bench.db"
    generate(url, tmp_path / "kb", pages=40, hypotheses=400)
    engine = ensure_schema(url)
    with session_scope(engine) as s:
        src = BulkSource(s)
        slugs = sorted(src.pages)
        for slug in slugs:
            assert related_for(src, slug, limit=5)[0] == load_related(s, slug, limit=5), slug
        assert any(len(related_for(src, slug)[0].items) >= 10 for slug in slugs)
