"""Specification of the export wiki builds pull: pages, scores.json and related/*.json."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import run_cli
from pages import PageSpec
from rows import insert_run
from sqlalchemy.engine import Engine

from debate.core.models import HypothesisIn
from debate.kb import hypotheses as hyps
from debate.kb.ingest import ingest_paths
from debate.store import tables as t
from debate.store.db import ensure_schema, session_scope
from debate.store.tables import utcnow
from debate.wiki.export import ExportReport, export

GREEN, YELLOW = "color:#81c784", "color:#ffd54f"


@pytest.fixture
def ingested(engine: Engine, page_path: Path, tmp_path: Path) -> Engine:
    """The test database (``engine``, also the CLI's) holding the exported page as its one KB page."""
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / page_path.name).write_bytes(page_path.read_bytes())
    ingest_paths(engine, [kb])
    return engine


def add_done_run(engine: Engine, hyp_id: str, score: float, at: datetime | None = None) -> str:
    """Record a finished offline debate of ``hyp_id`` that scored ``score``; its run id."""
    at = at or utcnow()
    return insert_run(engine, hyp_id, at=at - timedelta(seconds=30), score=score, agreement=0.8)


def run_export(engine: Engine, out: Path, **kw) -> ExportReport:  # type: ignore[no-untyped-def]
    return export(engine, out, limit=10, **kw)


def test_the_page_with_its_priors_round_trips_byte_for_byte(page_path: Path, spec: PageSpec, tmp_path: Path) -> None:
    engine = ensure_schema(f"sqlite:///{tmp_path}/t.db")
    ingest_paths(engine, [page_path])
    out = tmp_path / "out"
    report = run_export(engine, out)
    assert (out / page_path.name).read_bytes() == page_path.read_bytes()
    assert (report.pages, report.written, report.unchanged) == (1, 3, 0)
    related = json.loads((out / "related" / f"{spec.slug}.json").read_text(encoding="utf-8"))
    kinds = ["hypothesis"] * len(spec.hypothesis_ids) + ["analysis"] * len(spec.analysis_ids)
    assert [i["kind"] for i in related["items"]] == kinds
    assert related["markdown"] in page_path.read_text(encoding="utf-8")
    colors = {i["id"]: i["color"] for i in related["items"] if i["kind"] == "hypothesis"}
    assert colors == {h: "#ffd54f" if h in spec.yellow else "#81c784" for h in spec.hypothesis_ids}


def test_cli_ingest_then_export_reproduces_the_page_byte_for_byte(
    page_path: Path, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    run_cli("kb", "ingest", str(page_path), env=cli_env)
    out = tmp_path / "out"
    run_cli("export", "--out", str(out), env=cli_env)
    assert (out / page_path.name).read_bytes() == page_path.read_bytes()


def test_a_new_score_moves_exactly_that_line(ingested: Engine, page_path: Path, spec: PageSpec, tmp_path: Path) -> None:
    add_done_run(ingested, spec.moved, 0.9)
    out = tmp_path / "out"
    run_export(ingested, out)
    before = page_path.read_text(encoding="utf-8").split("\n")
    after = (out / page_path.name).read_text(encoding="utf-8").split("\n")
    assert len(before) == len(after)
    first = before.index("Related Hypotheses") + 2
    old = next(i for i, line in enumerate(before) if spec.moved in line)
    moved = before[old].replace(f">{spec.prior(spec.moved):.2f}</span>", ">0.90</span>")
    assert moved != before[old] and GREEN in moved
    expected = before[:old] + before[old + 1 :]
    expected.insert(first, moved)
    assert after == expected
    changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
    assert changed == list(range(first, old + 1))  # only the lines between its old and new place


@pytest.mark.parametrize("spec", ["own"], indirect=True)  # the page with a yellow score
def test_a_score_crossing_into_green_recolours_only_its_line(
    ingested: Engine, page_path: Path, spec: PageSpec, tmp_path: Path
) -> None:
    (yellow,) = spec.yellow
    assert spec.prior(yellow) == 0.61
    add_done_run(ingested, yellow, 0.66)  # ties the line above it; titles break the tie
    out = tmp_path / "out"
    run_export(ingested, out)
    before = page_path.read_text(encoding="utf-8").split("\n")
    after = (out / page_path.name).read_text(encoding="utf-8").split("\n")
    (at,) = [i for i, line in enumerate(before) if yellow in line]
    assert YELLOW in before[at]
    assert after[at] == before[at].replace(YELLOW, GREEN).replace(">0.61</span>", ">0.66</span>")
    assert after[:at] + after[at + 1 :] == before[:at] + before[at + 1 :]


def test_scores_json_is_what_the_cli_prints(
    ingested: Engine, spec: PageSpec, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    add_done_run(ingested, spec.moved, 0.9)
    out = tmp_path / "out"
    run_export(ingested, out)
    printed = run_cli("scores", "--json", env=cli_env).stdout
    assert printed == (out / "scores.json").read_text(encoding="utf-8")
    rows = json.loads(printed)
    assert {r["id"]: r["shown_score"] for r in rows}[spec.moved] == 0.9
    assert {r["id"]: r["status"] for r in rows}[spec.hypothesis_ids[-1]] == "prior"
    listed = run_cli("related", spec.slug, "--format", "json", env=cli_env).stdout
    assert listed == (out / "related" / f"{spec.slug}.json").read_text(encoding="utf-8")


def test_second_export_rewrites_nothing(ingested: Engine, tmp_path: Path, cli_env: dict[str, str]) -> None:
    out = tmp_path / "out"
    run_export(ingested, out)
    files = sorted(p for p in out.rglob("*") if p.is_file())
    mtimes = {p: p.stat().st_mtime_ns for p in files}
    again = run_export(ingested, out)
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


def test_changed_since_selects_changed_pages_and_moved_scores(ingested: Engine, spec: PageSpec, tmp_path: Path) -> None:
    kb = tmp_path / "kb2"
    kb.mkdir()
    (kb / "care.txt").write_text(PLAIN_PAGE, encoding="utf-8")
    ingest_paths(ingested, [kb])
    out = tmp_path / "out"
    assert run_export(ingested, out).pages == 2
    since = utcnow()
    quiet = run_export(ingested, out, changed_since=since)
    assert (quiet.pages, quiet.pages_total, quiet.written) == (0, 2, 0)

    add_done_run(ingested, spec.moved, 0.9, at=since)
    moved = run_export(ingested, out, changed_since=since)
    assert moved.pages == 1
    assert sorted(moved.written_files) == sorted([spec.name, f"related/{spec.slug}.json", "scores.json"])

    later = utcnow()
    (kb / "care.txt").write_text(PLAIN_PAGE.replace("monthly", "weekly"), encoding="utf-8")
    ingest_paths(ingested, [kb])
    edited = run_export(ingested, out, changed_since=later)
    assert edited.pages == 1 and "care.txt" in edited.written_files
    naive = run_export(ingested, out, changed_since=datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=1))
    assert naive.pages == 0


def test_bad_out_and_bad_time_are_one_line_errors(ingested: Engine, tmp_path: Path, cli_env: dict[str, str]) -> None:
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


# ---------------------------------------------------------------- untrusted pages and titles

HERON_PAGE = """Heron Kinase Notes
Overview
- Target: SOD1 in motor neurons
▸Metadata
| slug | entities-heron-kinase |
"""


def _set_slug(engine, slug: str, new_slug: str) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import update

    # As a page stored before slugs were checked would be.
    with session_scope(engine) as s:
        s.execute(update(t.Page).where(t.Page.slug == slug).values(slug=new_slug))


def test_a_stored_traversal_slug_is_skipped_with_a_warning(engine, tmp_path: Path, cli_env: dict[str, str]) -> None:
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "heron.txt").write_text(HERON_PAGE, encoding="utf-8")
    (kb / "care.txt").write_text(PLAIN_PAGE, encoding="utf-8")
    ingest_paths(engine, [kb])
    _set_slug(engine, "entities-heron-kinase", "../../../../ESCAPED")
    out = tmp_path / "a" / "b" / "c" / "out"
    proc = run_cli("export", "--out", str(out), env=cli_env)
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1
    assert warnings[0].startswith("warning: skipped page '../../../../ESCAPED' (heron.txt): invalid page slug")
    assert not list(tmp_path.rglob("ESCAPED*"))
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "care.txt",
        "related/therapeutics-care-logistics.json",
        "scores.json",
    ]
    report = json.loads(run_cli("export", "--out", str(out), "--json", env=cli_env).stdout)
    assert report["pages"] == 1 and len(report["skipped"]) == 1


def test_every_write_is_checked_to_stay_inside_out(ingested: Engine, tmp_path: Path) -> None:
    from debate.core.errors import UserInputError
    from debate.wiki.export import write_if_changed

    out = tmp_path / "out"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out.mkdir()
    (out / "related").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(UserInputError, match="outside the output folder"):
        run_export(ingested, out)
    assert not list(elsewhere.iterdir())
    for rel in ("../x.json", "related/../../x.json", "/abs.json"):
        with pytest.raises(UserInputError):
            write_if_changed(out, rel, b"{}")
    assert not (tmp_path / "x.json").exists()


ATTACK_TITLES = [
    "Heron boost <img src=x onerror=alert(1)>",
    "Heron <script>fetch('/steal')</script> switch",
    "H](javascript:alert(1)) [h",
]


def test_exported_pages_carry_no_html_or_links_from_titles(engine, tmp_path: Path) -> None:
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "heron.txt").write_text(HERON_PAGE, encoding="utf-8")
    ingest_paths(engine, [kb])
    with session_scope(engine) as s:
        for i, title in enumerate(ATTACK_TITLES):
            hyps.add(s, HypothesisIn(title=title, targets=["SOD1"], prior_score=0.6 + i / 100, source="test"))
    out = tmp_path / "out"
    run_export(engine, out)
    page = (out / "heron.txt").read_text(encoding="utf-8")
    assert "<img" not in page and "<script" not in page
    assert "](javascript:" not in page.replace("\\]", "")  # an escaped bracket closes no link
    assert "Heron boost &lt;img src=x onerror=alert(1)&gt;" in page
    assert "Heron &lt;script&gt;fetch('/steal')&lt;/script&gt; switch" in page
    assert r"H\](javascript:alert(1)) \[h" in page
    listed = json.loads((out / "related" / "entities-heron-kinase.json").read_text(encoding="utf-8"))
    assert sorted(i["title"] for i in listed["items"]) == sorted(ATTACK_TITLES)  # JSON keeps them as data


def test_export_ingest_export_is_byte_identical_for_bracket_angle_and_ampersand_titles(engine, tmp_path: Path) -> None:
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "heron.txt").write_text(HERON_PAGE, encoding="utf-8")
    ingest_paths(engine, [kb])
    titles = ["Heron [HK-2] <beta> agonism & reuse", "Heron R&amp;D <b>shim</b> ] [", "Heron `tick` \\ back"]
    with session_scope(engine) as s:
        for i, title in enumerate(titles):
            hyps.add(s, HypothesisIn(title=title, targets=["SOD1"], prior_score=0.7 - i / 10, source="test"))
    first = tmp_path / "first"
    run_export(engine, first)
    exported = (first / "heron.txt").read_bytes()
    assert rb"Heron \[HK-2\] &lt;beta&gt; agonism &amp; reuse" in exported

    again = ensure_schema(f"sqlite:///{tmp_path}/again.db")
    ingest_paths(again, [first / "heron.txt"])
    with session_scope(again) as s:
        stored = sorted(h.title for h in hyps.list_all(s))
    assert stored == sorted(["Heron [HK-2] <beta> agonism & reuse", "Heron R&D <b>shim</b> ] [", titles[2]])
    second = tmp_path / "second"
    run_export(again, second)
    assert (second / "heron.txt").read_bytes() == exported


def test_the_bundled_als_page_round_trips_byte_for_byte(tmp_path: Path) -> None:
    from conftest import SAMPLE_KB

    page = SAMPLE_KB / "therapeutics-als-therapy-landscape.txt"
    engine = ensure_schema(f"sqlite:///{tmp_path}/t.db")
    ingest_paths(engine, [page])
    out = tmp_path / "out"
    run_export(engine, out)
    assert (out / page.name).read_bytes() == page.read_bytes()
