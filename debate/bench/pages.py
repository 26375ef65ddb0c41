"""Seed-shaped synthetic KB pages for benchmarks: same export format, varied text and genes.

Deterministic for a given seed. Each page is about the size of the real seed page (~9 KB):
banner, repeated title, infobox with target/agent/trial sub-tables, an overview paragraph,
several headings with ``- Key: value`` facts and internal links, See Also, a Related
Hypotheses section on some pages, and the metadata table.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

WORDS = """amyloid tau synuclein huntingtin aggregation autophagy lysosome mitochondria microglia astrocyte
neuron synapse axon myelin oligodendrocyte inflammation cytokine complement interferon kinase phosphatase
receptor channel transporter antibody antisense oligonucleotide vector capsid promoter enhancer chaperone
proteasome ubiquitin endosome exosome membrane lipid cholesterol ceramide glucose insulin ketone oxidative
stress apoptosis necroptosis ferroptosis pyroptosis senescence telomere epigenetic methylation acetylation
splicing translation transcription phase separation granule stress-granule nucleolus nuclear pore export
import transport dynein kinesin microtubule actin cytoskeleton spine dendrite plasticity potentiation
depression excitotoxicity glutamate gaba dopamine serotonin acetylcholine noradrenaline biomarker plasma
cerebrospinal imaging cohort placebo randomized double-blind endpoint survival decline progression onset
familial sporadic variant carrier penetrance dose infusion intrathecal oral subcutaneous tolerability
efficacy safety adverse hepatotoxicity edema hemorrhage approval trial enrollment futility withdrawal""".split()

GENES = """SOD1 C9orf72 FUS TARDBP ATXN2 LRRK2 GBA1 SNCA APP PSEN1 PSEN2 MAPT APOE TREM2 CYP46A1 P2RY1 P2RX7
FOXO1 HSPA1A HSP90AA1 DNAJB1 FKBP5 PPARGC1A MCOLN1 PLIN2 TFEB MTOR NLRP3 PYCARD CASP1 SARM1 SIGMAR1 SLC1A2
GRN TMEM106B OPTN TBK1 VCP UBQLN2 SQSTM1 CHCHD10 KIF5A NEK1 ANXA11 MATR3 HNRNPA1 STMN2 UNC13A BDNF
GDNF PINK1 PRKN PARK7 VPS35 ATP13A2 SMPD1 CTSD CTSB LAMP1 LAMP2 ULK1 BECN1 ATG5 ATG7 SIRT1 SIRT3 NFE2L2
KEAP1 HMOX1 IL1B IL6 TNF CX3CR1 P2RY12 CSF1R TYROBP CD33 MS4A6A ABCA7 BIN1 CLU PICALM SORL1 ADAM10 BACE1""".split()

STATUSES = (
    "FDA-approved ({y})",
    "Phase 3 ongoing",
    "Phase 2 completed ({y})",
    "Phase 3 failed ({y})",
    "Discontinued ({y})",
    "Preclinical",
    "Phase 1 ({y})",
    "Halted for safety ({y})",
)
TYPES = ("entities", "mechanisms", "therapeutics", "diseases", "biomarkers")


def _sentence(rng: random.Random, n: int) -> str:
    words = [rng.choice(WORDS) for _ in range(n)]
    return " ".join(words).capitalize() + "."


def page_slug(i: int) -> str:
    return f"{TYPES[i % len(TYPES)]}-synthetic-page-{i:05d}"


def make_page(i: int, *, n_pages: int, seed: int = 7, related: list[tuple[str, str, float, str]] | None = None) -> str:
    """One synthetic page; ``related`` lines are (hypothesis id, title, score, target label)."""
    rng = random.Random(seed * 1_000_003 + i)
    slug = page_slug(i)
    kind = slug.split("-", 1)[0]
    title = f"{rng.choice(WORDS).capitalize()} {rng.choice(WORDS)} strategies {i}"
    genes = rng.sample(GENES, 4)
    lines = [
        "📗 Cite This Artifact",
        title,
        title,
        "Overview",
        f'<table class="infobox infobox-{kind[:-1]}">',
        "<tr>",
        f'<th class="infobox-header" colspan="2">{title}</th>',
        "</tr>",
        "<tr>",
        '<td class="label">Target</td>',
        "<td>Approach</td>",
        "</tr>",
    ]
    for g in genes:
        lines += ["<tr>", f'<td class="label">{g}</td>', f"<td>{rng.choice(WORDS)} {rng.choice(WORDS)}</td>", "</tr>"]
    lines += ["<tr>", '<td class="label">Trial</td>', "<td>Intervention</td>", "</tr>"]
    for _ in range(3):
        lines += [
            "<tr>",
            f'<td class="label">NCT0{rng.randrange(1000000, 9999999)}</td>',
            f"<td>{rng.choice(WORDS).capitalize()}</td>",
            "</tr>",
        ]
    lines.append("</table>")
    link = lambda: f"[{rng.choice(WORDS)}](/{page_slug(rng.randrange(n_pages)).replace('-', '/', 1)})"  # noqa: E731
    lines.append(
        " ".join(_sentence(rng, rng.randint(12, 20)) for _ in range(5)) + f" {link()} [@ref{rng.randrange(9999)}]"
    )
    for _ in range(8):
        lines.append(f"{rng.choice(WORDS).capitalize()} {rng.choice(WORDS)} approaches")
        for _ in range(2):
            lines.append(f"{rng.choice(WORDS).capitalize()} {rng.choice(genes)} program")
            lines.append(f"- Mechanism: {_sentence(rng, 8)[:-1]}; targets {rng.choice(genes)}")
            lines.append(f"- Status: {rng.choice(STATUSES).format(y=rng.randrange(1995, 2026))}")
            lines.append(f"- Efficacy: {_sentence(rng, 10)[:-1]} {link()}")
            lines.append(f"- Safety: {_sentence(rng, 7)[:-1]}")
    lines.append("See Also")
    for _ in range(5):
        lines.append(f"- {link()}")
    lines.append("References")
    if related:
        lines += ["Related Hypotheses", "From the [SciDEX Exchange](/exchange) — scored by multi-agent debate"]
        for hid, htitle, score, label in related:
            lines.append(
                f'- [{htitle}](/hypothesis/{hid}) — <span style="color:#81c784;font-weight:600">'
                f"{score:.2f}</span> · Target: {label}"
            )
    lines += [
        "▸Metadata",
        f"| slug | {slug} |",
        f"| entity_type | {kind[:-1]} |",
        f"| wiki_page_id | wp-{rng.getrandbits(48):012x} |",
        "| source_table | wiki_pages |",
        "| _schema_version | 1 |",
        "No provenance edges found",
    ]
    return "\n".join(lines) + "\n"


def make_pages(n: int, *, seed: int = 7) -> Iterator[tuple[str, str]]:
    """(file name, text) for ``n`` pages."""
    for i in range(n):
        yield f"{page_slug(i)}.txt", make_page(i, n_pages=n, seed=seed)


def vocabulary_queries(n: int, *, seed: int = 11) -> list[str]:
    """``n`` queries of 2-5 terms drawn from the pages' own vocabulary (words and genes)."""
    rng = random.Random(seed)
    vocab = WORDS + GENES
    return [" ".join(rng.sample(vocab, rng.randint(2, 5))) for _ in range(n)]
