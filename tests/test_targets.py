"""Specification of target links: hypothesis -> gene -> pages, and the links debates find."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import rows
from conftest import run_cli

from debate.core.errors import NotFoundError, UserInputError
from debate.kb.ingest import ingest_paths
from debate.store.db import session_scope
from debate.store.tables import utcnow
from debate.wiki.targets import gene_links, hypothesis_links, target_links_text

PAGE_A = """📗 Cite This Artifact
Motor Neuron Targets
Overview
<table class="infobox infobox-therapeutic">
<tr>
<td class="label">Target</td>
<td>Approach</td>
</tr>
<tr>
<td class="label">SOD1</td>
<td>Antisense</td>
</tr>
</table>
Several programmes aim at C9orf72 repeat expansions and at SOD1 misfolding.
▸Metadata
| slug | entities-motor-targets |
"""

PAGE_B = """Repeat Expansion Notes
Genetics
- Carriers: C9orf72 expansions are the most common familial cause
▸Metadata
| slug | entities-repeat-notes |
"""


@pytest.fixture
def kb(engine, tmp_path: Path):  # type: ignore[no-untyped-def]
    folder = tmp_path / "kb"
    folder.mkdir()
    (folder / "a.txt").write_text(PAGE_A, encoding="utf-8")
    (folder / "b.txt").write_text(PAGE_B, encoding="utf-8")
    ingest_paths(engine, [folder])
    return engine


def add_hyp(engine, title: str, targets: list[str]) -> str:  # type: ignore[no-untyped-def]
    return rows.add_hyp(engine, title, targets=targets, prior_score=0.5)


def add_run_with_evidence(engine, hyp_id: str, slugs: list[str], status: str = "done") -> str:  # type: ignore[no-untyped-def]
    run_id = rows.insert_run(engine, hyp_id, at=utcnow(), status=status, score=0.7)
    rows.insert_evidence(engine, run_id, slugs)
    return run_id


def test_gene_links_match_case_insensitively_and_keep_hgnc_casing(kb) -> None:  # type: ignore[no-untyped-def]
    h = add_hyp(kb, "Repeat silencing", ["C9orf72", "SOD1"])
    with session_scope(kb) as s:
        links = gene_links(s, "c9ORF72")
    assert links.gene == "C9orf72"
    assert [(x.id, x.gene, x.shown_score) for x in links.hypotheses] == [(h, "C9orf72", 0.5)]
    assert [(p.slug, p.sources, p.runs) for p in links.pages] == [
        ("entities-motor-targets", ["text"], []),
        ("entities-repeat-notes", ["fact"], []),
    ]


def test_page_spelling_when_no_hypothesis_names_the_gene(kb) -> None:  # type: ignore[no-untyped-def]
    with session_scope(kb) as s:
        links = gene_links(s, "sod1")
    assert links.gene == "SOD1" and links.hypotheses == []
    assert [(p.slug, p.sources) for p in links.pages] == [("entities-motor-targets", ["infobox"])]


def test_debate_evidence_adds_a_link_with_its_run(kb) -> None:  # type: ignore[no-untyped-def]
    h = add_hyp(kb, "Repeat silencing", ["C9orf72", "SOD1"])
    run = add_run_with_evidence(kb, h, ["entities-repeat-notes"])
    add_run_with_evidence(kb, h, ["entities-motor-targets"], status="failed")  # unfinished debates add nothing
    with session_scope(kb) as s:
        by_slug = {p.slug: p for p in gene_links(s, "C9orf72").pages}
        per_target = hypothesis_links(s, h)
    assert (by_slug["entities-repeat-notes"].sources, by_slug["entities-repeat-notes"].runs) == (
        ["fact", "debate"],
        [run],
    )
    assert by_slug["entities-motor-targets"].runs == []
    assert [x.gene for x in per_target] == ["C9orf72", "SOD1"]  # the hypothesis's order
    assert [p.slug for p in per_target[1].pages] == ["entities-motor-targets"]
    assert per_target[0].pages[1].runs == [run]
    text = target_links_text(per_target)
    assert "C9orf72: 2 pages" in text and f"runs {run}" in text


def test_unknown_hypothesis_and_bad_symbol(kb) -> None:  # type: ignore[no-untyped-def]
    with session_scope(kb) as s:
        with pytest.raises(NotFoundError):
            hypothesis_links(s, "h-00000000")
        with pytest.raises(UserInputError):
            gene_links(s, "not a gene")
        empty = gene_links(s, "ZZZ9")
    assert (empty.gene, empty.hypotheses, empty.pages) == ("ZZZ9", [], [])


def test_cli_targets(kb, cli_env: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    add_hyp(kb, "Repeat silencing", ["C9orf72"])
    data = json.loads(run_cli("targets", "c9orf72", "--json", env=cli_env).stdout)
    assert data["gene"] == "C9orf72" and len(data["hypotheses"]) == 1 and len(data["pages"]) == 2
    assert "entities-repeat-notes" in run_cli("targets", "C9ORF72", env=cli_env).stdout
    nothing = json.loads(run_cli("targets", "ZZZ9", "--json", env=cli_env).stdout)
    assert (nothing["hypotheses"], nothing["pages"]) == ([], [])
    bad = run_cli("targets", "no such gene", env=cli_env, check=False)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and bad.stderr.startswith("error:")
