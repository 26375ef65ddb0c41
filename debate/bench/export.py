"""Benchmark: a full export and `related` latency on a wiki-sized knowledge base.

Generates seed-shaped pages (banner, repeated title, target infobox, prose naming genes,
``- Key: value`` facts, internal links including hub disease pages, a Related Hypotheses
section on some, metadata) and hypotheses, deterministically. Pages go through the real ingest
path; hypotheses, runs, evidence and cited pages are bulk-inserted with Core ``insert()`` for speed.

Then it times one full export into a fresh folder, and ``related`` (load + rank + render, one
session each, as the CLI and API call it) for 200 pages, in wall-clock and CPU time (on a
shared machine the first includes waiting for a core). Targets: export < 60 s, ``related``
p95 < 20 ms.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from debate.core.genes import join_target_label
from debate.core.models import normalize_title
from debate.kb.ingest import ingest_paths
from debate.store import tables as t
from debate.store.db import ensure_schema, session_scope
from debate.store.tables import utcnow
from debate.wiki.export import export
from debate.wiki.related import load_related, term_index

STEMS = """ABCA ACTB ADAM AKT ALDH ANXA APOB ARF ATG ATP BCL BMP CACN CASP CCL CDK CHRN CLDN COL
CXCL CYP DNAJ EGF EPHA FGF FOXO GABR GJB GRIA GRIN HDAC HSPA ITGA KCNJ KIF KLF LAMP MAPK MMP MYO
NDUF NOTCH PARP PDE PIK3 PLIN PPAR PRKC PSMA RAB RPL SCN SEMA SLC SMAD SNAP SOX STAT TGFB TLR TNF
TRPM UBE USP VAMP WNT ZNF""".split()
MECHANISMS = [
    "autophagy",
    "excitotoxicity",
    "neuroinflammation",
    "protein aggregation",
    "oxidative stress",
    "mitochondrial dysfunction",
    "lysosomal function",
    "synaptic plasticity",
    "axonal transport",
    "RNA processing",
    "stress granule dynamics",
    "proteasome function",
    "calcium homeostasis",
    "lipid metabolism",
    "microglial activation",
    "astrocyte reactivity",
    "myelination",
    "neurotrophic signaling",
    "apoptosis",
    "DNA damage response",
    "ER stress",
    "gene silencing",
    "kinase inhibition",
    "chaperone activity",
    "blood-brain barrier integrity",
    "insulin signaling",
    "complement activation",
    "tau phosphorylation",
    "amyloid production",
    "iron homeostasis",
]
DISEASES = [
    "amyotrophic lateral sclerosis",
    "Alzheimer's disease",
    "Parkinson's disease",
    "frontotemporal dementia",
    "Huntington's disease",
    "multiple sclerosis",
    "spinal muscular atrophy",
    "multiple system atrophy",
    "progressive supranuclear palsy",
    "dementia with Lewy bodies",
    "motor neuron disease",
    "stroke",
]
ABBREV = {"amyotrophic lateral sclerosis": "ALS", "Alzheimer's disease": "AD", "Parkinson's disease": "PD"}
FILLER = [
    "Treatment strategies span symptomatic management, disease-modifying therapies, and emerging "
    "approaches targeting underlying molecular mechanisms.",
    "Several agents have entered phase 2 and phase 3 trials with mixed results on functional scales.",
    "Biomarkers such as neurofilament light chain help stratify patients and monitor progression.",
    "Preclinical models suggest that early intervention gives the largest benefit.",
    "Combination approaches aim to address several converging pathways at once.",
]


def _genes() -> list[str]:
    return [f"{s}{n}" for s in STEMS for n in range(1, 46)]


def _hyp_id(i: int) -> str:
    # An odd multiplier is a bijection mod 2**32: distinct, scattered ids.
    return f"h-{(i * 2654435761 + 12345) % 2**32:08x}"


def _slug(i: int, n_pages: int) -> str:
    if i < len(DISEASES):
        return "diseases-" + DISEASES[i].lower().replace("'", "").replace(" ", "-")
    if i % 20 == 0:
        return f"mechanisms-{MECHANISMS[i % len(MECHANISMS)].lower().replace(' ', '-')}-{i}"
    return f"therapeutics-strategy-{i}" if i % 2 else f"entities-target-{i}"


def _hypothesis(i: int, genes: list[str]) -> dict[str, Any]:
    k = 1 + (i * 7) % 4 if i % 3 else 1
    targets = list(dict.fromkeys(genes[(i * 37 + j * 911) % len(genes)] for j in range(k)))
    mech = MECHANISMS[(i * 13) % len(MECHANISMS)]
    imported = i % 2 == 0
    return dict(
        id=_hyp_id(i),
        title=f"{mech.capitalize()} via {targets[0]} modulation (variant {i})",
        title_key=normalize_title(f"{mech} via {targets[0]} modulation (variant {i})"),
        statement="",
        diseases=[DISEASES[(i * 5) % len(DISEASES)]] if i % 5 < 2 else [],
        targets=targets,
        target_label=(" and ".join(targets) if len(targets) == 2 else ", ".join(targets)) if imported else None,
        mechanisms=[mech, MECHANISMS[(i * 17 + 3) % len(MECHANISMS)]] if i % 5 in (1, 3) else [],
        source="page:bench" if imported else "bench",
        prior_score=round(0.3 + ((i * 7919) % 600) / 1000, 2) if i % 10 < 7 else None,
        prior_source="bench" if i % 10 < 7 else None,
    )


def _page_text(i: int, n_pages: int, genes: list[str], hyps: list[dict[str, Any]]) -> str:
    slug = _slug(i, n_pages)
    title = slug.split("-", 1)[1].replace("-", " ").title()
    if i < len(DISEASES):
        title = DISEASES[i].title()
    g = [genes[(i * 53 + j * 389) % len(genes)] for j in range(6)]
    mech = MECHANISMS[(i * 11) % len(MECHANISMS)]
    disease = DISEASES[(i * 3) % len(DISEASES)]
    links = [_slug((i * 31 + k * 977) % n_pages, n_pages) for k in range(1, 5)]
    hub = _slug((i * 7) % len(DISEASES), n_pages)
    infobox = "".join(
        f'<tr>\n<td class="label">{gene}</td>\n<td>ASO candidate {j}</td>\n</tr>\n' for j, gene in enumerate(g[:4])
    )
    filler = " ".join(FILLER[(i + j) % len(FILLER)] for j in range(3))
    lines = [
        "📗 Cite This Artifact",
        title,
        title,
        "Overview",
        '<table class="infobox infobox-therapeutic">',
        f'<tr>\n<th class="infobox-header" colspan="2">{title}</th>\n</tr>',
        '<tr>\n<td class="label">Target</td>\n<td>Approach</td>\n</tr>',
        infobox + "</table>",
        f"{title} concerns {ABBREV.get(disease, disease)} and related disorders; work centres on {g[4]} "
        f"and {g[5]} in [{mech}](/{links[0].replace('-', '/', 1)}). {filler} [@ref{i}]",
        "Mechanism of Action",
        f"- Mechanism: {mech}; downstream effects on {g[0]}",
        f"- Status: Phase {1 + i % 3} trial ongoing",
        f"- Efficacy: Slows decline in {ABBREV.get(disease, disease)} models by {10 + i % 30}%",
        "Clinical Trials Landscape",
        f"- NCT0{5000000 + i}: {g[1]} modulation in {disease}",
        "See Also",
        *[f"- [{s.split('-', 1)[1].replace('-', ' ').title()}](/{s.replace('-', '/', 1)})" for s in links[1:]],
        f"- [{DISEASES[(i * 7) % len(DISEASES)].title()}](/{hub.replace('-', '/', 1)})",
        f"- [Mechanism](/mechanisms/{mech.lower().replace(' ', '-')})",
        "External Links",
        f"- [PubMed: {title}](https://pubmed.ncbi.nlm.nih.gov/?term=bench+{i})",
    ]
    if i % 10 < 3:
        lines += ["Related Hypotheses", "From the [SciDEX Exchange](/exchange) — scored by multi-agent debate"]
        listed = [hyps[(i * 97 + j * 4099) % len(hyps)] for j in range(12)]
        listed = [h for h in listed if h["prior_score"] is not None][:8]
        listed.sort(key=lambda h: -h["prior_score"])
        for h in listed:
            label = h["target_label"] or join_target_label(h["targets"])
            lines.append(
                f"- [{h['title']}](/hypothesis/{h['id']}) — "
                f'<span style="color:#81c784;font-weight:600">{h["prior_score"]:.2f}</span> · Target: {label}'
            )
        lines += [f"- [Analysis {i}-{j}](/analysis/SDA-bench-{i}-{j}) 🔄" for j in range(2)]
    lines += [
        "▸Metadata",
        f"| slug | {slug} |",
        "| entity_type | therapeutic |",
        f"| wiki_page_id | wp-{i:012x} |",
        "No provenance edges found",
    ]
    return "\n".join(lines) + "\n"


def _bulk(engine, table: type, rows: list[dict[str, Any]], chunk: int = 5000) -> None:  # type: ignore[no-untyped-def]
    with session_scope(engine, immediate=True) as s:
        for i in range(0, len(rows), chunk):
            s.execute(insert(table), rows[i : i + chunk])


def generate(url: str, kb_dir: Path, pages: int, hypotheses: int) -> dict[str, float]:
    """Fill the database at ``url``: hypotheses, runs and evidence in bulk, pages via ingest."""
    engine = ensure_schema(url)
    genes = _genes()
    now = utcnow()
    t0 = time.perf_counter()
    hyps = [_hypothesis(i, genes) for i in range(hypotheses)]
    _bulk(engine, t.Hypothesis, [dict(h, created_at=now, updated_at=now) for h in hyps])
    _bulk(
        engine,
        t.HypothesisTarget,
        [
            dict(hypothesis_id=h["id"], gene_key=g.upper(), gene=g, ordinal=j)
            for h in hyps
            for j, g in enumerate(h["targets"])
        ],
    )
    hyp_s = time.perf_counter() - t0

    kb_dir.mkdir(parents=True, exist_ok=True)
    for i in range(pages):
        (kb_dir / f"{_slug(i, pages)}.txt").write_text(_page_text(i, pages, genes, hyps), encoding="utf-8")
    t0 = time.perf_counter()
    ingest_paths(engine, [kb_dir], batch_size=500)
    ingest_s = time.perf_counter() - t0

    runs: list[dict[str, Any]] = []
    evidence: list[dict[str, Any]] = []
    cited: list[dict[str, Any]] = []
    n_runs = hypotheses // 4
    for k in range(n_runs):
        h = hyps[(k * 7 + 1) % hypotheses]
        status = "queued" if k % 50 == 0 else "running" if k % 97 == 0 else "done"
        done = status == "done"
        at = now - timedelta(hours=n_runs - k)
        score = round(((k * 104729) % 1000) / 1000, 3) if done else None
        run_id = f"r-bench-{k:07d}"
        runs.append(
            dict(
                id=run_id,
                hypothesis_id=h["id"],
                status=status,
                backend="offline",
                models={},
                config={},
                prompt_hashes={},
                trigger="bench",
                created_at=at,
                started_at=at if status != "queued" else None,
                finished_at=at + timedelta(minutes=1) if done else None,
                score=score,
                interval_lo=max(0.0, score - 0.1) if done else None,
                interval_hi=min(1.0, score + 0.1) if done else None,
                agreement=0.7 if done else None,
                flagged=done and k % 40 == 3,
                review_status="flagged" if done and k % 40 == 3 else "unreviewed",
            )
        )
        if done:
            for e in range(4):
                evidence.append(
                    dict(
                        run_id=run_id,
                        eid=f"E{e + 1}",
                        rank=e + 1,
                        page_slug=_slug((k * 13 + e * 101) % pages, pages),
                        page_hash="bench",
                        heading_path=[],
                        text="bench evidence",
                        score=1.0,
                        facts=[],
                    )
                )
            # Claims cite three of the four items' pages (the fourth was only retrieved); every
            # third run's citations are unverified.
            for slug in dict.fromkeys(_slug((k * 13 + e * 101) % pages, pages) for e in range(3)):
                cited.append(dict(run_id=run_id, page_slug=slug, verified=int(k % 3 != 0), unverified=1))
    _bulk(engine, t.Run, runs)
    _bulk(engine, t.Evidence, evidence)
    _bulk(engine, t.CitedPage, cited)
    return {"insert_hypotheses_s": round(hyp_s, 2), "ingest_s": round(ingest_s, 2)}


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def run(pages: int = 10_000, hypotheses: int = 50_000, workdir: Path | None = None) -> dict[str, Any]:
    """Generate the KB, time a full export and 200 `related` calls; print and return the numbers."""
    with tempfile.TemporaryDirectory(prefix="debate-bench-export-") as tmp:
        root = Path(workdir) if workdir is not None else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        for p in root.glob("bench-*.db*"):
            p.unlink()
        shutil.rmtree(root / "kb", ignore_errors=True)
        # A fresh name: engines and schema checks are cached per URL for the process's life.
        url = f"sqlite:///{root / f'bench-{uuid.uuid4().hex[:8]}.db'}"
        setup = generate(url, root / "kb", pages, hypotheses)
        engine = ensure_schema(url)

        out = root / "export"
        shutil.rmtree(out, ignore_errors=True)  # a full export: every file written
        t0, c0 = time.perf_counter(), time.process_time()
        report = export(engine, out, limit=10)
        export_s, export_cpu_s = time.perf_counter() - t0, time.process_time() - c0

        slugs = [_slug((i * 7919) % pages, pages) for i in range(200)]
        with session_scope(engine) as s:
            term_index(s)  # the per-process index (already built by the export), as a warm API holds it
        times: list[float] = []
        cpu: list[float] = []  # CPU time too: on a shared machine wall time includes waiting
        for slug in slugs:
            t0, c0 = time.perf_counter(), time.process_time()
            with session_scope(engine) as s:
                load_related(s, slug, limit=10)
            times.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
        result = {
            "export_s": round(export_s, 2),
            "export_cpu_s": round(export_cpu_s, 2),
            "related_p50_ms": round(statistics.median(times), 2),
            "related_p95_ms": round(_pct(times, 0.95), 2),
            "related_max_ms": round(max(times), 2),
            "related_cpu_p50_ms": round(statistics.median(cpu), 2),
            "related_cpu_p95_ms": round(_pct(cpu, 0.95), 2),
            "pages": pages,
            "hypotheses": hypotheses,
            "files_written": report.written,
            **setup,
        }
    for k, v in result.items():
        print(f"{k:>20}: {v}", file=sys.stderr)  # stdout stays free for `debate bench --json`
    return result


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    run(*args)
