"""The exported KB pages the page specifications run on, and what each must yield.

The parse, ingest, export and rewrite specifications take the ``spec`` fixture (``conftest.py``),
which runs each of them once per page here:

``own``
    ``tests/fixtures/pages/huntingtons-disease-treatment-strategies.txt``, a page written for
    these tests in the wiki's export format (``../shared/kb-format.md``), so the specifications
    run in every clone. It has every structural feature of the seed page: banner, repeated title,
    a duplicated title/Overview/infobox block with Target, Agent and Trial sub-tables and a link
    in a cell, prose with a link and a citation, ``- Key: value`` facts (links in keys and values,
    a citation in a value), grouped headings, headings whose content was lost, link-only See Also
    bullets, external links, an empty References heading, a Related Hypotheses list (scored lines
    best first, one yellow score, single-gene and multi-gene target labels joined by ``, `` and
    `` and ``, in-progress analyses), a ``▸Metadata`` line with text glued to it, metadata rows
    and the trailer. Its trial numbers and figures are illustrative. The file has no final
    newline, as exported pages do not.

``seed``
    ``../shared/seeds/als-treatment-strategies.txt``, a real exported page kept beside the
    repository (CI has it). Where it is absent its cases skip.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

TESTS = Path(__file__).resolve().parent
SEED_MISSING = "seed page ../shared/seeds/als-treatment-strategies.txt not present"


@dataclass(frozen=True)
class PageSpec:
    """What one exported page must yield when parsed, ingested, exported and rewritten."""

    path: Path
    title: str
    slug: str
    wiki_page_id: str
    merged_at: str  # in the ``__merged_from`` metadata row
    # Infobox sub-tables, label -> value, in page order (Target, Agent, then Trial on both pages).
    targets: dict[str, str]
    agents: dict[str, str]
    trials: dict[str, str]
    cell_link: tuple[str, str, str]  # (path, slug, text) of the link in an infobox label cell
    # Facts, (*heading path, key) -> value: bullets without links, then bullets whose key or
    # value held a link or a citation (reduced to its text).
    facts: dict[tuple[str, ...], str]
    linked_facts: dict[tuple[str, ...], str]
    fact_count: int
    dose_edit: tuple[str, str]  # a ``- Dose:`` value on the page, and what a test changes it to
    link_paths: list[str]  # the internal links, in page order
    link_slugs: dict[str, str]
    placed_links: dict[str, tuple[str, list[str]]]  # path -> (text, heading path)
    citations: list[str]
    external_urls: list[str]
    first_external_text: str
    hypothesis_ids: list[str]  # the scored lines, best first
    scores: list[float]
    top_title: str
    top_target: str
    yellow: tuple[str, ...]  # scored lines shown in yellow; the others are green
    split_targets: dict[str, tuple[str, list[str]]]  # id -> (target label as written, genes)
    imported: tuple[str, str]  # (id, title) of a listed hypothesis
    moved: str  # a scored line below the top that a new score of 0.90 moves to the top
    analysis_ids: list[str]  # the in-progress analyses after the scored lines
    first_analysis_title: str
    related_lines: range
    heading_paths: dict[str, list[str]]  # inferred from the page's layout
    empty_headings: dict[str, list[str]]  # heading -> heading path, of headings with no lines
    prose_start: str  # how the Overview prose begins
    prose_link_text: str  # prose around a link reduced to its text
    related_only_target: str  # a target named only in the Related Hypotheses list
    kept_in_chunks: tuple[str, ...]
    gene_terms: frozenset[str]  # some of the page's gene terms
    search_all: tuple[str, list[str]]  # a query all of whose terms one chunk holds; its heading path
    cli_search: tuple[str, str]  # a ``kb search`` query; the top heading of its best hit

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def infobox_lines(self) -> list[str]:
        """The infobox as its chunk reads."""
        return [
            f"{table} {label}: {value}"
            for table, rows in (("Target", self.targets), ("Agent", self.agents), ("Trial", self.trials))
            for label, value in rows.items()
        ]

    def prior(self, hyp_id: str) -> float:
        return self.scores[self.hypothesis_ids.index(hyp_id)]


OWN = PageSpec(
    path=TESTS / "fixtures" / "pages" / "huntingtons-disease-treatment-strategies.txt",
    title="Huntington's Disease Treatment Strategies",
    slug="therapeutics-huntingtons-disease-treatment-strategies",
    wiki_page_id="wp-5e0b7d3c9a41",
    merged_at="2026-06-02",
    targets={
        "HTT": "ASO (tominersen)",
        "MSH3": "Repeat-instability modifiers",
        "PDE10A": "Enzyme inhibitors",
        "SLC18A2": "VMAT2 inhibitors",
    },
    agents={
        "Valbenazine": "Selective VMAT2 inhibitor",
        "Votoplam": "Oral HTT splicing modulator",
        "Laquinimod": "Immunomodulator",  # two capitalised words, yet not a sub-table header
        "Dalzanemdor": "NMDA receptor positive allosteric modulator",
    },
    trials={
        "NCT09900101": "Votoplam",
        "NCT09900102": "Dalzanemdor",
        "NCT09900103": "Intrastriatal gene therapy",
        "NCT09900104": "Supervised exercise",
    },
    cell_link=("/entities/msh3", "entities-msh3", "MSH3"),
    facts={
        ("Chorea Therapies", "Valbenazine (Ingrezza)", "Status"): "FDA-approved for HD chorea (2023)",
        ("Chorea Therapies", "Valbenazine (Ingrezza)", "Mechanism"): "Selective VMAT2 inhibitor taken once a day",
        ("Chorea Therapies", "Tetrabenazine (Xenazine)", "Mechanism"): (
            "Reversible VMAT2 inhibitor; lowers presynaptic dopamine release"
        ),
        ("Chorea Therapies", "Tetrabenazine (Xenazine)", "Status"): "First FDA-approved HD drug (2008)",
        ("Chorea Therapies", "Deutetrabenazine (Austedo)", "Status"): "Approved by the FDA for chorea (2017)",
        ("Chorea Therapies", "Antipsychotics (Off-Label)", "Status"): "Not FDA-approved for chorea; used off-label",
        # the value may hold ": " and ";" of its own
        ("Stratifying Patients", "Repeat Length Bands", "Intermediate alleles"): (
            "27 to 35 repeats; may expand in offspring"
        ),
    },
    linked_facts={
        ("Disease-Modifying Pipeline", "Protein Clearance Strategies", "Mitophagy inducers"): (
            "Urolithin A, nicotinamide riboside"
        ),
        ("Chorea Therapies", "Valbenazine (Ingrezza)", "Efficacy"): (
            "Reduces chorea; watch for somnolence and depression during titration"
        ),
        ("Trials and Outcome Measures", "Fluid and Imaging Biomarkers", "Blood neurofilament"): (
            "Plasma NfL climbs years before motor onset"
        ),
        ("Trials and Outcome Measures", "Fluid and Imaging Biomarkers", "Mutant huntingtin in CSF"): (
            "Falls with dose after intrathecal ASO"
        ),
    },
    fact_count=51,
    dose_edit=("Titrated weekly from 12.5 mg daily", "Started at 25 mg daily"),
    link_paths=[  # the duplicated infobox adds nothing
        "/entities/msh3",
        "/entities/medium-spiny-neurons",
        "/entities/depression",
        "/mechanisms/huntingtin-aggregation",
        "/entities/mitophagy",
        "/biomarkers/neurofilament-light-chain",
        "/diseases/huntingtons-disease",
        "/therapeutics/tetrabenazine",
        "/therapeutics/valbenazine",
        "/therapeutics/huntingtin-lowering-therapies",
        "/diseases/polyglutamine-disorders",
        "/mechanisms/excitotoxicity",
    ],
    link_slugs={
        "/entities/medium-spiny-neurons": "entities-medium-spiny-neurons",
        "/biomarkers/neurofilament-light-chain": "biomarkers-neurofilament-light-chain",
        "/diseases/huntingtons-disease": "diseases-huntingtons-disease",
        "/mechanisms/excitotoxicity": "mechanisms-excitotoxicity",
        "/mechanisms/huntingtin-aggregation": "mechanisms-huntingtin-aggregation",
        "/entities/mitophagy": "entities-mitophagy",
        "/therapeutics/tetrabenazine": "therapeutics-tetrabenazine",
        "/entities/msh3": "entities-msh3",
    },
    placed_links={
        "/entities/medium-spiny-neurons": ("medium spiny neurons", ["Overview"]),
        "/therapeutics/tetrabenazine": ("Tetrabenazine", ["See Also"]),
        "/mechanisms/excitotoxicity": ("Glutamate Excitotoxicity", ["See Also"]),
    },
    citations=["hdcrg1993", "tabrizi2019"],  # prose, then a fact value
    external_urls=[
        "https://pubmed.ncbi.nlm.nih.gov/?term=huntington+disease+therapy",
        "https://clinicaltrials.gov/search?cond=Huntington+Disease",
        "https://hdsa.org/",
        "https://enroll-hd.org/",
    ],
    first_external_text="PubMed: Huntington's Disease Therapy",
    hypothesis_ids=[
        "h-3b7e21c4",
        "h-9d04a6f1",
        "h-52c8e0b7",
        "h-e61f93a2",
        "h-07ad4c58",
        "h-c4a1b96e",
        "h-8f2d5a03",
        "h-2e9b7c15",
    ],
    scores=[0.81, 0.77, 0.75, 0.72, 0.70, 0.68, 0.66, 0.61],
    top_title="Somatic CAG Expansion Brake via MSH3 Knockdown",
    top_target="MSH3",
    yellow=("h-2e9b7c15",),  # listed last, at 0.61
    split_targets={
        "h-9d04a6f1": ("MLH1 and PMS1", ["MLH1", "PMS1"]),
        "h-c4a1b96e": ("HSPA1A, BAG3, SQSTM1, VCP", ["HSPA1A", "BAG3", "SQSTM1", "VCP"]),
        "h-2e9b7c15": ("PPARGC1A, TFAM and SIRT3", ["PPARGC1A", "TFAM", "SIRT3"]),  # both joiners
    },
    imported=("h-9d04a6f1", "Mismatch Repair Rebalancing in Striatal Neurons"),
    moved="h-07ad4c58",  # BDNF, listed fifth
    analysis_ids=[
        "SDA-2026-05-03-gap-somatic-instability-20260503091522",
        "SDA-2026-05-04-gap-011",
        "SDA-2026-05-04-gap-v2-1f7c3a9e",
        "SDA-2026-05-05-gap-base-editing-repeats-20260505",
    ],
    first_analysis_title="Somatic instability across polyglutamine disorders — shared drivers or coincidence",
    related_lines=range(229, 241),
    heading_paths={
        "Tetrabenazine (Xenazine)": ["Chorea Therapies", "Tetrabenazine (Xenazine)"],
        "Protein Clearance Strategies": ["Disease-Modifying Pipeline", "Protein Clearance Strategies"],
        "Repeat Length Bands": ["Stratifying Patients", "Repeat Length Bands"],
        "Sleep Disturbance": ["Managing Other Symptoms", "Sleep Disturbance"],
        "Practice Guidance": ["Care Organisation", "Practice Guidance"],
        "Chorea Therapies": ["Chorea Therapies"],
        "Managing Other Symptoms": ["Managing Other Symptoms"],
        "Disease-Modifying Pipeline": ["Disease-Modifying Pipeline"],
    },
    empty_headings={
        "Huntingtin Lowering": ["Disease-Modifying Pipeline", "Huntingtin Lowering"],
        "Repeat Instability Modifiers": ["Disease-Modifying Pipeline", "Repeat Instability Modifiers"],
        "Ongoing Pivotal Studies": ["Trials and Outcome Measures", "Ongoing Pivotal Studies"],
    },
    prose_start="Huntington's disease",
    prose_link_text="medium spiny neurons of the striatum",
    related_only_target="KMO",
    kept_in_chunks=("- Status: FDA-approved for HD chorea (2023)", "- Huntington's Disease"),
    # C9orf72 is named only as "C9orf72-FTD": a disease suffix does not hide the gene
    gene_terms=frozenset({"HTT", "MSH3", "PDE10A", "SLC18A2", "C9orf72"}),
    search_all=("tominersen HTT", ["Overview"]),  # the infobox chunk
    cli_search=("VMAT2 chorea", "Chorea Therapies"),
)

SEED = PageSpec(
    path=TESTS.parents[1] / "shared" / "seeds" / "als-treatment-strategies.txt",
    title="ALS Treatment Strategies",
    slug="therapeutics-als-treatment-strategies",
    wiki_page_id="wp-87cbd12852ba",
    merged_at="2026-05-13",
    targets={
        "SOD1": "ASO (tofersen)",
        "C9orf72": "ASO candidates",
        "FUS": "ASO candidates",
        "ATXN2": "ASO (APB-101)",
    },
    agents={
        "CNM-Au8": "Catalytic gold nanocrystals",
        "Reldesemtiv": "Fast skeletal muscle troponin activator",
        "Masitinib": "Tyrosine kinase inhibitor",
        "Pridopidine": "Dopamine stabilizer",
    },
    trials={
        "NCT05686534": "Reldesemtiv",
        "NCT03162211": "Masitinib",
        "NCT04482113": "CNM-Au8",
        "NCT05270330": "Combination therapy",
    },
    cell_link=("/entities/c9orf72", "entities-c9orf72", "C9orf72"),
    facts={
        ("FDA-Approved Disease-Modifying Therapies", "Tofersen (Qalsody)", "Status"): (
            "FDA-approved (2023) for SOD1-ALS"
        ),
        ("FDA-Approved Disease-Modifying Therapies", "Riluzole (Rilutek)", "Mechanism"): (
            "Sodium channel blocker; glutamate excitotoxicity reduction"
        ),
        ("FDA-Approved Disease-Modifying Therapies", "Riluzole (Rilutek)", "Status"): (
            "First FDA-approved ALS drug (1995)"
        ),
        ("FDA-Approved Disease-Modifying Therapies", "Edaravone (Radicava)", "Status"): "FDA-approved (2017)",
        ("FDA-Approved Disease-Modifying Therapies", "AMX0035 (Relyvrio)", "Efficacy"): (
            "Extended survival by 4.8 months; functional benefit"
        ),
        ("FDA-Approved Disease-Modifying Therapies", "AMX0035 (Relyvrio)", "Mechanism"): (
            "Combination of sodium phenylbutyrate and taurursodiol"
        ),
    },
    linked_facts={
        ("Emerging Disease-Modifying Therapies", "Anti-Aggregation Strategies", "Autophagy enhancers"): (
            "Rapamycin, trehalose"
        ),
        ("FDA-Approved Disease-Modifying Therapies", "Tofersen (Qalsody)", "Efficacy"): (
            "Reduces SOD1 protein and neurofilament light chain; functional benefit in SOD1 patients"
        ),
    },
    fact_count=50,
    dose_edit=("50 mg twice daily", "100 mg once daily"),
    link_paths=[
        "/entities/c9orf72",
        "/entities/neurons",
        "/biomarkers/neurofilament-light-chain-nfl",
        "/mechanisms/tdp-43-proteinopathy",
        "/entities/autophagy",
        "/diseases/amyotrophic-lateral-sclerosis",
        "/therapeutics/riluzole",
        "/therapeutics/edaravone",
        "/therapeutics/antisense-oligonucleotide-therapies",
        "/diseases/motor-neuron-disease",
        "/mechanisms/excitotoxicity",
    ],
    link_slugs={
        "/entities/neurons": "entities-neurons",
        "/biomarkers/neurofilament-light-chain-nfl": "biomarkers-neurofilament-light-chain-nfl",
        "/diseases/amyotrophic-lateral-sclerosis": "diseases-amyotrophic-lateral-sclerosis",
        "/mechanisms/excitotoxicity": "mechanisms-excitotoxicity",
        "/mechanisms/tdp-43-proteinopathy": "mechanisms-tdp-43-proteinopathy",
        "/therapeutics/riluzole": "therapeutics-riluzole",
        "/entities/c9orf72": "entities-c9orf72",
    },
    placed_links={
        "/entities/neurons": ("neurons", ["Overview"]),
        "/therapeutics/riluzole": ("Riluzole", ["See Also"]),
        "/mechanisms/excitotoxicity": ("Excitotoxicity", ["See Also"]),
    },
    citations=["bensimon1994"],
    external_urls=[
        "https://pubmed.ncbi.nlm.nih.gov/?term=amyotrophic+lateral+sclerosis+treatment",
        "https://clinicaltrials.gov",
        "https://www.als.org/",
        "https://www.als.net/",
    ],
    first_external_text="PubMed: ALS Treatment Strategies",
    hypothesis_ids=[
        "h-2600483e",
        "h-0758b337",
        "h-ae1b2beb",
        "h-5dbfd3aa",
        "h-76888762",
        "h-8ef34c4c",
        "h-637a53c9",
        "h-3d993b5d",
    ],
    scores=[0.79, 0.74, 0.72, 0.71, 0.69, 0.68, 0.67, 0.66],
    top_title="CYP46A1 Overexpression Gene Therapy",
    top_target="CYP46A1",
    yellow=(),
    split_targets={
        "h-0758b337": ("P2RY1 and P2RX7", ["P2RY1", "P2RX7"]),
        "h-637a53c9": ("HSPA1A, HSP90AA1, DNAJB1, FKBP5", ["HSPA1A", "HSP90AA1", "DNAJB1", "FKBP5"]),
    },
    imported=("h-0758b337", "Purinergic Signaling Polarization Control"),
    moved="h-76888762",  # Perforant path, listed fifth
    analysis_ids=[
        "SDA-2026-04-02-gap-microglial-subtypes-20260402004119",
        "SDA-2026-04-01-gap-006",
        "SDA-2026-04-01-gap-v2-68d9c9c1",
        "SDA-2026-04-02-gap-crispr-neurodegeneration-20260402",
    ],
    first_analysis_title="Microglial subtypes in neurodegeneration — friend vs foe",
    related_lines=range(228, 240),
    heading_paths={
        "Riluzole (Rilutek)": ["FDA-Approved Disease-Modifying Therapies", "Riluzole (Rilutek)"],
        "Anti-Aggregation Strategies": ["Emerging Disease-Modifying Therapies", "Anti-Aggregation Strategies"],
        "Genetic Subtypes": ["Patient Stratification", "Genetic Subtypes"],
        "Muscle Cramps": ["Symptomatic Treatments", "Muscle Cramps"],
        "FDA-Approved Disease-Modifying Therapies": ["FDA-Approved Disease-Modifying Therapies"],
        "Symptomatic Treatments": ["Symptomatic Treatments"],
        "Emerging Disease-Modifying Therapies": ["Emerging Disease-Modifying Therapies"],
    },
    empty_headings={
        "Gene Therapies": ["Emerging Disease-Modifying Therapies", "Gene Therapies"],
        "Neuroprotective Agents": ["Emerging Disease-Modifying Therapies", "Neuroprotective Agents"],
        "Active Phase 3 Trials": ["Clinical Trials Landscape", "Active Phase 3 Trials"],
    },
    prose_start="Amyotrophic lateral",
    prose_link_text="motor neurons, leading",
    related_only_target="CYP46A1",
    kept_in_chunks=("- Status: FDA-approved (2023) for SOD1-ALS", "- Amyotrophic Lateral Sclerosis"),
    gene_terms=frozenset({"SOD1", "C9orf72", "FUS", "ATXN2"}),
    search_all=("tofersen SOD1", ["Patient Stratification", "Genetic Subtypes"]),
    cli_search=("riluzole glutamate", "See Also"),
)

SPECS = {"own": OWN, "seed": SEED}
