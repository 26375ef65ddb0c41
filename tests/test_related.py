"""Specification of Related Hypotheses: who is related, how lines rank, and how they read."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from conftest import run_cli
from rows import T0, add_hyp, insert_run
from sqlalchemy import insert

from debate.core.models import HypothesisIn
from debate.core.scoring import GREEN, RED, YELLOW
from debate.kb import hypotheses as hyps
from debate.kb.ingest import ingest_paths
from debate.store import tables as t
from debate.store.db import session_scope
from debate.wiki.related import (
    RelatedList,
    disease_key,
    keyword_matches,
    load_related,
    render_html,
)

HEADER = "Related Hypotheses\nFrom the [SciDEX Exchange](/exchange) — scored by multi-agent debate\n"


def wiki_page(
    slug: str,
    title: str,
    *,
    targets: tuple[str, ...] = (),
    body: tuple[str, ...] = (),
    links: tuple[tuple[str, str], ...] = (),
    related: tuple[str, ...] = (),
) -> str:
    """A small page in the wiki export format."""
    lines = ["📗 Cite This Artifact", title, title, "Overview"]
    if targets:
        lines += [
            '<table class="infobox infobox-therapeutic">',
            "<tr>",
            '<td class="label">Target</td>',
            "<td>Approach</td>",
            "</tr>",
        ]
        for g in targets:
            lines += ["<tr>", f'<td class="label">{g}</td>', "<td>Small molecule</td>", "</tr>"]
        lines.append("</table>")
    lines += list(body)
    if links:
        lines.append("See Also")
        lines += [f"- [{text}]({path})" for text, path in links]
    if related:
        lines += HEADER.splitlines() + list(related)
    lines += ["▸Metadata", f"| slug | {slug} |", "| entity_type | therapeutic |", "No provenance edges found"]
    return "\n".join(lines) + "\n"


def ingest(engine, tmp_path: Path, pages: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    kb = tmp_path / "kb"
    kb.mkdir(exist_ok=True)
    for name, text in pages.items():
        (kb / name).write_text(text, encoding="utf-8")
    ingest_paths(engine, [kb])


def add_run(
    engine,  # type: ignore[no-untyped-def]
    hyp_id: str,
    *,
    status: str = "done",
    score: float | None = None,
    flagged: bool = False,
    at: datetime = T0,
) -> str:
    return insert_run(engine, hyp_id, at=at, spread=0.05, status=status, score=score, flagged=flagged)


def related(engine, slug: str, **kw) -> RelatedList:  # type: ignore[no-untyped-def]
    with session_scope(engine) as s:
        return load_related(s, slug, **kw)


def ids(rl: RelatedList) -> list[str]:
    return [i.id for i in rl.items]


def span(shown: str, color: str) -> str:
    return f'<span style="color:{color};font-weight:600">{shown}</span>'


# ---------------------------------------------------------------- who is related


def test_shared_gene_and_linked_page_count_but_nothing_shared_does_not(engine, tmp_path: Path) -> None:
    ingest(
        engine,
        tmp_path,
        {
            "alpha.txt": wiki_page(
                "therapeutics-alpha",
                "Alpha Kinase Strategies",
                targets=("LRRK2",),
                body=("Kinase inhibitors are studied in several trials.",),
                links=(("Beta page", "/entities/beta"),),
            ),
            "beta.txt": wiki_page("entities-beta", "Beta Enzyme", targets=("GBA1",)),
            "gamma.txt": wiki_page("entities-gamma", "Gamma Protein", targets=("SNCA",)),
        },
    )
    gene = add_hyp(engine, "Kinase brake", targets=["LRRK2"], prior_score=0.6)
    via_link = add_hyp(engine, "Enzyme boost", targets=["GBA1"], prior_score=0.55)
    unrelated = add_hyp(engine, "Amyloid sweep", targets=["APP"], prior_score=0.9)

    rl = related(engine, "therapeutics-alpha")
    assert ids(rl) == [gene, via_link]
    reasons = {i.id: i.reasons for i in rl.items}
    assert reasons[gene] == ["gene:LRRK2"]
    assert reasons[via_link] == ["linked:entities-beta"]
    assert unrelated not in ids(related(engine, "entities-gamma"))
    # Links count both ways: the linked page lists the hypothesis sharing a gene with its linker.
    assert gene in ids(related(engine, "entities-beta"))


def test_mechanism_and_disease_abbreviation_relate(engine, tmp_path: Path) -> None:
    ingest(
        engine,
        tmp_path,
        {
            "als.txt": wiki_page(
                "therapeutics-als-care",
                "ALS Care Overview",
                body=("- Mechanism: Sodium channel blocker; reduces glutamate release",),
                links=(("Excitotoxicity", "/mechanisms/excitotoxicity"),),
            ),
        },
    )
    mech = add_hyp(engine, "Glutamate shield", mechanisms=["glutamate excitotoxicity"], prior_score=0.5)
    fact = add_hyp(engine, "Channel calm", mechanisms=["sodium channel blocker"], prior_score=0.5)
    disease = add_hyp(engine, "Motor rescue", diseases=["amyotrophic lateral sclerosis"], prior_score=0.5)
    other = add_hyp(engine, "Dopamine lift", diseases=["Parkinson's disease"], mechanisms=["dopamine"], prior_score=0.9)
    rl = related(engine, "therapeutics-als-care")
    by_id = {i.id: i for i in rl.items}
    assert set(by_id) == {mech, fact, disease}
    assert by_id[mech].reasons == ["mechanism:glutamate excitotoxicity"]
    assert by_id[fact].reasons == ["mechanism:sodium channel blocker"]
    assert by_id[disease].reasons == ["disease:amyotrophic lateral sclerosis"]
    assert other not in by_id


def test_term_matching_rules() -> None:
    assert disease_key("ALS") == "amyotrophic lateral sclerosis"
    assert disease_key("Alzheimer's disease") == disease_key("alzheimers disease") == disease_key("AD")
    assert keyword_matches("autophagy", "autophagy lysosome pathway")
    assert keyword_matches("autophagy lysosome pathway", "autophagy")
    assert not keyword_matches("autophagy lysosome pathway", "autophagy", both_ways=False)
    assert not keyword_matches("ad", "adrenergic signaling")  # too short, and not a whole word
    assert not keyword_matches("disease", "motor neuron disease")  # too generic alone


def test_one_disease_table_expands_abbreviations_only() -> None:
    from debate.core.diseases import ABBREVIATIONS

    assert ABBREVIATIONS["ad"] == "alzheimer disease" and ABBREVIATIONS["mnd"] == "motor neuron disease"
    assert disease_key("Parkinsons disease") == disease_key("PD") == "parkinson disease"
    assert disease_key("Alzheimer") == "alzheimer"  # a short name, not an abbreviation: matched as words
    # Lists keep ALS and motor neuron disease apart (the offline evidence matcher merges them).
    assert disease_key("MND") != disease_key("ALS")


def test_a_debate_citing_the_page_relates_a_hypothesis(engine, tmp_path: Path) -> None:
    ingest(engine, tmp_path, {"a.txt": wiki_page("entities-a", "Plain Page", body=("Nothing gene-like here.",))})
    h = add_hyp(engine, "Cited idea", prior_score=0.5)
    run_id = add_run(engine, h, score=0.7)
    with session_scope(engine) as s:
        s.execute(
            insert(t.Evidence).values(
                run_id=run_id,
                eid="E1",
                rank=1,
                page_slug="entities-a",
                page_hash="x",
                heading_path=[],
                text="...",
                score=1.0,
                facts=[],
            )
        )
        # A verified claim cited it (tests/test_related_cited.py: retrieval alone relates nothing).
        s.execute(insert(t.CitedPage).values(run_id=run_id, page_slug="entities-a", verified=1, unverified=0))
    (item,) = related(engine, "entities-a").items
    assert (item.id, item.reasons, item.score) == (h, ["cited"], 0.7)


def test_index_follows_new_and_edited_hypotheses(engine, tmp_path: Path) -> None:
    ingest(
        engine,
        tmp_path,
        {"m.txt": wiki_page("entities-m", "Mito Page", links=(("Mitophagy", "/mechanisms/mitophagy"),))},
    )
    assert related(engine, "entities-m").items == []
    h = add_hyp(engine, "Mito clean", mechanisms=["mitophagy"], prior_score=0.5)
    assert ids(related(engine, "entities-m")) == [h]
    with session_scope(engine) as s:
        hyps.add(
            s,
            HypothesisIn(id=h, title="Mito clean", mechanisms=["glycolysis"], prior_score=0.5, source="test"),
            update=True,
        )
    assert related(engine, "entities-m").items == []


def test_index_follows_edited_target_genes(engine, tmp_path: Path) -> None:
    ingest(engine, tmp_path, {"g.txt": wiki_page("entities-g", "Gene Page", targets=("GRN",))})
    h = add_hyp(engine, "Progranulin up", targets=["grn"], prior_score=0.5)
    [item] = related(engine, "entities-g").items
    assert item.id == h and item.reasons == ["gene:grn"]  # matched case-insensitively, named as written
    with session_scope(engine) as s:
        hyps.add(
            s,
            HypothesisIn(id=h, title="Progranulin up", targets=["TARDBP"], prior_score=0.5, source="test"),
            update=True,
        )
    assert related(engine, "entities-g").items == []


# ---------------------------------------------------------------- lines


def test_rounding_colours_and_ties(engine, tmp_path: Path) -> None:
    ingest(engine, tmp_path, {"p.txt": wiki_page("entities-p", "Target Page", targets=("SOD1",))})
    a = add_hyp(engine, "Half up", targets=["SOD1"], prior_score=0.645)
    b = add_hyp(engine, "Just under", targets=["SOD1"], prior_score=0.449)
    c = add_hyp(engine, "Low", targets=["SOD1"], prior_score=0.30)
    d = add_hyp(engine, "Beta tie", targets=["SOD1"], prior_score=0.7)
    e = add_hyp(engine, "Alpha tie", targets=["SOD1"], prior_score=0.7)
    rl = related(engine, "entities-p")
    assert rl.markdown == HEADER + "".join(
        [
            f"- [Alpha tie](/hypothesis/{e}) — {span('0.70', GREEN)} · Target: SOD1\n",
            f"- [Beta tie](/hypothesis/{d}) — {span('0.70', GREEN)} · Target: SOD1\n",
            f"- [Half up](/hypothesis/{a}) — {span('0.65', GREEN)} · Target: SOD1\n",
            f"- [Just under](/hypothesis/{b}) — {span('0.45', YELLOW)} · Target: SOD1\n",
            f"- [Low](/hypothesis/{c}) — {span('0.30', RED)} · Target: SOD1\n",
        ]
    )
    assert [(i.shown, i.color) for i in rl.items][2:] == [("0.65", GREEN), ("0.45", YELLOW), ("0.30", RED)]


def test_target_labels(engine, tmp_path: Path) -> None:
    listed = (
        "- [Purinergic Control](/hypothesis/h-0758b337) — "
        '<span style="color:#81c784;font-weight:600">0.74</span> · Target: P2RY1 and P2RX7',
        "- [Synuclein Pair](/hypothesis/h-1234abcd) — "
        '<span style="color:#81c784;font-weight:600">0.72</span> · Target: SNCA, LAG3',
    )
    ingest(
        engine,
        tmp_path,
        {
            "p.txt": wiki_page(
                "entities-p",
                "Label Page",
                targets=("FUS",),
                links=(("Autophagy", "/mechanisms/autophagy"),),
                related=listed,
            )
        },
    )
    one = add_hyp(engine, "One gene", targets=["FUS"], prior_score=0.6)
    two = add_hyp(engine, "Two genes", targets=["FUS", "TARDBP"], prior_score=0.59)
    three = add_hyp(engine, "Three genes", targets=["FUS", "TARDBP", "C9orf72"], prior_score=0.58)
    none = add_hyp(engine, "No genes", mechanisms=["autophagy"], prior_score=0.57)
    lines = related(engine, "entities-p").markdown.splitlines()[2:]
    assert lines == [
        f"- [Purinergic Control](/hypothesis/h-0758b337) — {span('0.74', GREEN)} · Target: P2RY1 and P2RX7",
        f"- [Synuclein Pair](/hypothesis/h-1234abcd) — {span('0.72', GREEN)} · Target: SNCA, LAG3",
        f"- [One gene](/hypothesis/{one}) — {span('0.60', YELLOW)} · Target: FUS",
        f"- [Two genes](/hypothesis/{two}) — {span('0.59', YELLOW)} · Target: FUS and TARDBP",
        f"- [Three genes](/hypothesis/{three}) — {span('0.58', YELLOW)} · Target: FUS, TARDBP, C9orf72",
        f"- [No genes](/hypothesis/{none}) — {span('0.57', YELLOW)}",
    ]


def test_in_progress_lines_and_flags(engine, tmp_path: Path) -> None:
    listed = (
        "- [Second analysis](/analysis/SDA-2) 🔄",
        "- [First analysis](/analysis/SDA-1) 🔄",
    )
    ingest(engine, tmp_path, {"p.txt": wiki_page("entities-p", "Queue Page", targets=("TREM2",), related=listed)})
    late = add_hyp(engine, "Queued late", targets=["TREM2"])
    early = add_hyp(engine, "Queued early", targets=["TREM2"])
    with_prior = add_hyp(engine, "Queued with prior", targets=["TREM2"], prior_score=0.61)
    flagged_only = add_hyp(engine, "Flagged only", targets=["TREM2"])
    rescored = add_hyp(engine, "Flag keeps old", targets=["TREM2"], prior_score=0.2)
    add_run(engine, late, status="queued", at=T0 + timedelta(minutes=5))
    add_run(engine, early, status="running", at=T0 + timedelta(minutes=1))
    add_run(engine, with_prior, status="queued", at=T0)
    add_run(engine, flagged_only, score=0.95, flagged=True)
    add_run(engine, rescored, score=0.55, at=T0)
    add_run(engine, rescored, score=0.99, flagged=True, at=T0 + timedelta(hours=1))

    rl = related(engine, "entities-p")
    assert rl.markdown == HEADER + "".join(
        [
            f"- [Queued with prior](/hypothesis/{with_prior}) — {span('0.61', YELLOW)} · Target: TREM2\n",
            f"- [Flag keeps old](/hypothesis/{rescored}) — {span('0.55', YELLOW)} · Target: TREM2\n",
            "- [Second analysis](/analysis/SDA-2) 🔄\n",
            "- [First analysis](/analysis/SDA-1) 🔄\n",
            f"- [Queued early](/hypothesis/{early}) 🔄\n",
            f"- [Queued late](/hypothesis/{late}) 🔄\n",
        ]
    )
    waiting = [i for i in rl.items if i.in_progress]
    assert all(i.score is None and i.shown is None and i.color is None for i in waiting)


def test_limit_and_rank_then_display_by_score(engine, tmp_path: Path) -> None:
    ingest(
        engine,
        tmp_path,
        {
            "p.txt": wiki_page(
                "entities-p", "Rank Page", targets=("MAPT", "GRN"), links=(("Autophagy", "/mechanisms/autophagy"),)
            )
        },
    )
    both = add_hyp(engine, "Both genes", targets=["MAPT", "GRN"], prior_score=0.40)  # 1.2 × 0.9 = 1.08
    one = add_hyp(engine, "One gene", targets=["MAPT"], prior_score=0.50)  # 0.6 × 1.0 = 0.60
    weak = add_hyp(engine, "Weak but high", mechanisms=["autophagy"], prior_score=0.95)  # 0.3 × 1.45 = 0.435
    rl = related(engine, "entities-p", limit=2)
    assert ids(rl) == [one, both]  # chosen by rank, shown by score
    assert weak not in ids(rl)
    assert ids(related(engine, "entities-p", limit=3)) == [weak, one, both]


def test_pruned_ranking_equals_exhaustive(engine, tmp_path: Path) -> None:
    ingest(
        engine,
        tmp_path,
        {
            "p.txt": wiki_page(
                "entities-p",
                "Busy Page",
                targets=("APOE", "CLU"),
                links=(("Neuroinflammation", "/mechanisms/neuroinflammation"), ("Q", "/entities/q")),
            ),
            "q.txt": wiki_page("entities-q", "Neighbour", targets=("BIN1",)),
        },
    )
    genes = ["APOE", "CLU", "BIN1", "PICALM"]
    for i in range(80):
        add_hyp(
            engine,
            f"Idea {i:02d}",
            targets=[genes[i % 4]] if i % 5 else [],
            mechanisms=["neuroinflammation"] if i % 3 == 0 else [],
            diseases=["Alzheimer's disease"] if i % 7 == 0 else [],
            prior_score=None if i % 11 == 0 else round((i * 37 % 100) / 100, 2),
        )
    for limit in (3, 10):
        pruned, full = (
            related(engine, "entities-p", limit=limit),
            related(engine, "entities-p", limit=limit, prune=False),
        )
        assert pruned == full


# ---------------------------------------------------------------- formats


def test_json_model_and_html(engine, tmp_path: Path) -> None:
    ingest(engine, tmp_path, {"p.txt": wiki_page("entities-p", "Escape Page", targets=("SOD1",))})
    h = add_hyp(engine, "Odd <b>title</b> & more", targets=["SOD1"], prior_score=0.66)
    rl = related(engine, "entities-p")
    data = json.loads(rl.model_dump_json())
    assert set(data) == {"slug", "title", "limit", "items", "markdown"}
    assert data["items"][0] == {
        "kind": "hypothesis",
        "id": h,
        "title": "Odd <b>title</b> & more",
        "path": f"/hypothesis/{h}",
        "score": 0.66,
        "shown": "0.66",
        "color": GREEN,
        "target_label": "SOD1",
        "targets": ["SOD1"],
        "in_progress": False,
        "relatedness": 0.6,
        "reasons": ["gene:SOD1"],
        "method": "prior",
        "models": [],
        "verified_rate": None,
    }
    page = render_html(rl)
    assert page.startswith('<section class="related-hypotheses">')
    assert "Odd &lt;b&gt;title&lt;/b&gt; &amp; more" in page and "<b>" not in page
    assert span("0.66", GREEN) in page


def test_cli_related(engine, tmp_path: Path, cli_env: dict[str, str]) -> None:
    ingest(engine, tmp_path, {"p.txt": wiki_page("entities-p", "CLI Page", targets=("SOD1",))})
    for i in range(3):
        add_hyp(engine, f"Idea {i}", targets=["SOD1"], prior_score=0.5 + i / 10)
    md = run_cli("related", "entities-p", env=cli_env).stdout
    assert md == related(engine, "entities-p").markdown
    assert md.count("\n- [") == 3
    assert run_cli("related", "entities-p", "--limit", "1", env=cli_env).stdout.count("\n- [") == 1
    data = json.loads(run_cli("related", "entities-p", "--format", "json", env=cli_env).stdout)
    assert data["slug"] == "entities-p" and data["limit"] == 10 and len(data["items"]) == 3
    assert run_cli("related", "entities-p", "-f", "html", env=cli_env).stdout.startswith("<section")
    bad = run_cli("related", "entities-nope", env=cli_env, check=False)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == ["error: no KB page with slug 'entities-nope'"]


@pytest.mark.parametrize("text", ["ALS Treatment Strategies"])
def test_title_abbreviation_expands(text: str) -> None:
    from debate.core.diseases import title_diseases

    key, expanded = title_diseases(text)
    assert key == "als treatment strategies"
    assert expanded == ["amyotrophic lateral sclerosis"]


def test_a_full_list_shows_only_pending_debates_as_related_as_its_lines(engine, tmp_path: Path) -> None:
    ingest(
        engine,
        tmp_path,
        {
            "p.txt": wiki_page(
                "entities-p", "Floor Page", targets=("GRN",), links=(("Diseases", "/diseases/frontotemporal-dementia"),)
            )
        },
    )
    for i in range(2):
        add_hyp(engine, f"Scored {i}", targets=["GRN"], prior_score=0.5 + i / 10)
    close = add_hyp(engine, "Pending close", targets=["GRN"])
    loose = add_hyp(engine, "Pending loose", diseases=["FTD"])
    add_run(engine, close, status="queued", at=T0)
    add_run(engine, loose, status="queued", at=T0 - timedelta(minutes=1))
    full = related(engine, "entities-p", limit=2)
    assert [i.id for i in full.items if i.in_progress] == [close]
    roomy = related(engine, "entities-p", limit=3)
    assert [i.id for i in roomy.items if i.in_progress] == [loose, close]  # queue order


ATTACKS = {
    "img": ("Marsh idea <img src=x onerror=alert(1)>", "Marsh idea &lt;img src=x onerror=alert(1)&gt;"),
    "script": ("Marsh <script>alert(1)</script> plan", "Marsh &lt;script&gt;alert(1)&lt;/script&gt; plan"),
    "javascript": ("M](javascript:alert(1)) [m", r"M\](javascript:alert(1)) \[m"),
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_md_lines_escape_titles_and_labels(engine, tmp_path: Path, cli_env: dict[str, str], attack: str) -> None:
    title, escaped = ATTACKS[attack]
    ingest(engine, tmp_path, {"p.txt": wiki_page("entities-marsh", "Marsh Page", targets=("SOD1",))})
    h = add_hyp(engine, title, targets=["SOD1"], prior_score=0.7)
    with session_scope(engine) as s:  # a label as imported, as hostile as the title
        s.get(t.Hypothesis, h).target_label = title  # type: ignore[union-attr]
    md = run_cli("related", "entities-marsh", "--format", "md", env=cli_env).stdout
    line = md.splitlines()[2]
    assert line == f"- [{escaped}](/hypothesis/{h}) — {span('0.70', GREEN)} · Target: {escaped}"
    assert "<img" not in md and "<script" not in md


def test_the_api_md_format_is_the_same_escaped_renderer(engine, tmp_path: Path, db_url: str) -> None:
    from fastapi.testclient import TestClient

    from debate.core.config import load_settings
    from debate.server.api import create_app

    ingest(engine, tmp_path, {"p.txt": wiki_page("entities-marsh", "Marsh Page", targets=("SOD1",))})
    for title, _escaped in ATTACKS.values():
        add_hyp(engine, title, targets=["SOD1"], prior_score=0.7)
    with TestClient(create_app(load_settings(database_url=db_url), backends=("offline",))) as client:
        md = client.get("/api/pages/entities-marsh/related", params={"format": "md"}).text
    assert md == related(engine, "entities-marsh").markdown
    for _title, escaped in ATTACKS.values():
        assert f"- [{escaped}](/hypothesis/" in md
