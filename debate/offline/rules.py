"""The offline rule tables (all hashed into :data:`RULES_HASH`) and the system prompts."""

from __future__ import annotations

import hashlib
import json

from debate.core.diseases import EVIDENCE_GROUPS
from debate.core.rubric import DIMENSIONS

MODEL = "offline-heuristic-v1"
# Bump when the code that applies the tables changes; the tables themselves are hashed.
RULES_VERSION = "offline-heuristic rules v3"  # v3: claims quote; judges count verified claims only

# ---------------------------------------------------------------- rule tables (all in RULES_HASH)

# Regex sources per flag, matched on lower-cased text once the NEGATIONS of that flag are blanked.
FLAG_PATTERNS: dict[str, str] = {
    "approved": r"\bapprov(?:ed|al)\b|\blicensed\b",
    "late_trial": r"\bphase\s*(?:3|iii|2/3|ii/iii)[ab]?\b|\bpivotal\b|\bregistrational\b",
    "mid_trial": r"\bphase\s*(?:2|ii|1/2|i/ii)[ab]?\b",
    "early": r"\bphase\s*(?:0|1|i)[ab]?\b|\bpre-?clinical\b|\bin vitro\b|\bmouse\b|\bmice\b"
    r"|\brodents?\b|\b(?:animal|cell|cellular) models?\b|\bfirst-in-human\b",
    "failed": r"\bfail(?:ed|s|ing)?\b"
    r"|\b(?:trial|clinical|late-stage|treatment|drug|translational) failures?\b"
    r"|\bdid not meet\b|\bnot met\b"
    r"|\bmissed (?:its|the|their) (?:\w+ )?(?:end ?points?|goals?)\b"
    r"|\bno (?:clinical |significant |functional |survival )?benefit\b"
    r"|\bno (?:significant |meaningful )?difference\b|\bfutil(?:ity|e)\b"
    r"|\bdid not (?:confirm|show|slow|improve|replicate|reduce|change)\b"
    r"|\bnegative (?:trial|results?|outcomes?|study)\b|\black of efficacy\b"
    r"|\bineffective\b",
    "halted": r"\bhalted\b|\bdiscontinu(?:ed|ation)\b|\bterminated\b|\bwithdrawn\b|\bwithdrew\b"
    r"|\bstopped\b|\bsuspended\b|\babandoned\b|\bshelved\b|\bpaused\b",
    "safety_signal": r"\btoxicit(?:y|ies)\b|\b(?:hepato|neuro|cardio|nephro)toxic\w*|\badverse\b"
    r"|\baria(?:-[eh])?\b|\bliver\b|\btransaminases?\b|\bdeaths?\b|\bdied\b"
    r"|\bfatal\w*|\bserious\b|\bworsen(?:ing|ed|s)?\b|\bblack[- ]box\b"
    r"|\bboxed warning\b|\b(?:o)?edema\b|\b(?:micro)?(?:h)?a?emorrhag\w*"
    r"|\bmicrobleeds?\b|\bmyelitis\b|\bmeningitis\b|\bseizures?\b|\bsuicid\w*"
    r"|\bintracranial pressure\b",
    "efficacy": r"\bslow(?:s|ed|er|ing)?\b|\breduc(?:es|ed|ing|tions?)\b|\blower(?:s|ed)\b"
    r"|\bextend(?:s|ed)? survival\b|\bsurvival (?:gain|benefit)\b"
    r"|\bimprov(?:es|ed|ing|ements?)\b|\bbenefi\w*|\befficac\w*|\bpositive\b"
    r"|\bprotect(?:s|ed|ive)?\b|\brescu(?:es|ed)\b|\bdelay(?:s|ed)?\b"
    r"|\bless\b[^.;\n]{0,40}\bdecline\b",
}

# Phrases blanked before matching the flag they would otherwise set.
NEGATIONS: dict[str, str] = {
    "approved": r"\b(?:not|no|never|nor|without|yet to be|awaiting)[ \t]+(?:[\w-]+[ \t]+){0,2}?"
    r"(?:fda[- ])?approv\w*",
    "safety_signal": r"\b(?:no|without|not associated with)[ \t]+(?:(?:new|serious|major"
    r"|significant|unexpected|dose-limiting)[ \t]+)*(?:safety (?:signals?"
    r"|concerns?|issues?)|adverse (?:events?|effects?)|toxicit(?:y|ies))"
    r"|\b(?:cell|neuronal|neuron|apoptotic|neuronal cell) death\b",
    "efficacy": r"\b(?:no|not|without|failed to|fails to|lack of|nor)[ \t]+(?:[\w-]+[ \t]+){0,3}?"
    r"(?:slow\w*|reduc\w*|lower\w*|improv\w*|benefi\w*|efficac\w*|protect\w*|delay\w*)",
}

# An approval in a segment that reports it revoked does not count ("withdrawn"/"withdrew" are
# matched as halted and count the same way).
APPROVAL_LOST = r"\brevoked\b|\brescinded\b"

# Segment labels ("Key: value") that describe disease biology rather than a drug's outcome.
BIOLOGY_KEYS = frozenset(
    "mechanism pathology genetics biology function protein gene allele ligand expression "
    "structure localization localisation role pathway variant variants risk".split()
)
NAVIGATION_HEADINGS = frozenset({"see also", "external links", "references", "related hypotheses"})

MODALITY_PATTERNS: dict[str, str] = {
    "antibody": r"\bantibod(?:y|ies)\b|\bmonoclonal\b|\b\w{3,}mab\b",
    "antisense": r"\bantisense\b|\basos?\b|\boligonucleotides?\b|\bsirnas?\b|\brnai\b"
    r"|\b\w{3,}rsen\b",
    "small molecule": r"\bsmall[- ]molecules?\b",
    "inhibitor": r"\binhibitors?\b|\b\w{3,}tinib\b",
    "gene therapy": r"\bgene therapy\b|\baav\d*\b|\bviral vectors?\b",
    "agonist": r"\b(?:ant)?agonists?\b",
}

# Protein or complex names that stand for a target symbol in KB prose.
TARGET_ALIASES: dict[str, tuple[str, ...]] = {
    "TARDBP": ("TDP-43",),
    "MTOR": ("mTORC1", "mTORC2"),
    "SNCA": ("alpha-synuclein", "α-synuclein"),
    "MAPT": ("tau",),
    "BACE1": ("beta-secretase", "β-secretase"),
    "SLC1A2": ("EAAT2", "GLT-1"),
    "PYCARD": ("ASC",),
    "CASP1": ("caspase-1",),
    "SIGMAR1": ("sigma-1 receptor",),
    "GBA1": ("GCase", "glucocerebrosidase"),
    "GBA": ("GCase", "glucocerebrosidase"),
    "IL1B": ("IL-1 beta", "IL-1β"),
    "APP": ("amyloid precursor protein",),
}

# Each group names one disease; a hypothesis disease matching any name matches them all.
# Derived from the one disease table, debate.core.diseases.
DISEASE_ALIASES: tuple[tuple[str, ...], ...] = EVIDENCE_GROUPS

STOPWORDS = frozenset(
    "a an and as at by for from in into of on or the to via with its their this that these those "
    "disease disorder syndrome".split()
)

STAGE_BY_FLAG: tuple[tuple[str, int], ...] = (("approved", 4), ("late_trial", 3), ("mid_trial", 2), ("early", 1))
STAGE_NAMES: dict[int, str] = {4: "approved", 3: "Phase 3", 2: "Phase 2", 1: "preclinical/Phase 1", 0: "none"}
FLAG_ORDER = ("approved", "late_trial", "mid_trial", "early", "failed", "halted", "safety_signal", "efficacy")

OPENING_CITES = 3
OBJECTIONS_PER_ROUND = 3
THIN_EVIDENCE = 3

# Judge features: name -> what it measures (each in [0, 1]).
JUDGE_FEATURES: dict[str, str] = {
    "cited_support": "distinct relevant, valid evidence ids the proposer cited, out of 4",
    "approved_cited": "the proposer cited an on-target item reporting an approval",
    "late_cited": "the proposer cited an on-target Phase 3 item that did not fail or halt",
    "failed_cited_by_critic": "relevant items reporting a failure that the critic cited, out of 2",
    "halted_cited_by_critic": "relevant items reporting a halt that the critic cited, out of 2",
    "safety_cited_by_critic": "relevant items with safety signals the critic cited, out of 2",
    "invalid_citations": "cited ids (either side) naming no retrieved evidence, out of 3",
    "approved": "some on-target item reports an approval",
    "late_active": "some on-target item reports a Phase 3 trial that did not fail or halt",
    "failed": "relevant items reporting a failure, out of 2",
    "halted": "relevant items reporting a halt, out of 2",
    "safety": "relevant items with safety signals (an approved drug's count half), out of 3",
    "efficacy": "relevant items reporting efficacy, out of 2",
    "stage": "best stage reached on target, out of 4",
    "modality_on_target": "a drug modality is named in an on-target segment",
    "modality_any": "a drug modality is named in some relevant item",
    "coverage": "share of the targets named by some item (mechanism coverage without targets)",
    "mechanism_coverage": "share of the mechanisms some item describes",
    "disease_match": "share of relevant items that name one of the diseases",
    "evidence_amount": "relevant items, out of 6",
    "pages_supporting": "distinct pages among supporting items beyond the first, out of 2",
    "contested": "an on-target item reports success (approval or efficacy) and a failure or halt",
}

# dimension -> (base, ((feature, weight), ...)): score = clip(base + sum(weight * feature)).
DIMENSION_MODEL: dict[str, tuple[float, tuple[tuple[str, float], ...]]] = {
    "mechanistic_plausibility": (
        0.25,
        (("mechanism_coverage", 0.25), ("coverage", 0.20), ("efficacy", 0.15), ("stage", 0.10), ("failed", -0.10)),
    ),
    "evidence_strength": (
        0.20,
        (
            ("cited_support", 0.30),
            ("approved_cited", 0.20),
            ("late_cited", 0.10),
            ("efficacy", 0.10),
            ("failed_cited_by_critic", -0.25),
            ("halted_cited_by_critic", -0.10),
            ("invalid_citations", -0.15),
        ),
    ),
    "novelty": (0.80, (("approved", -0.35), ("stage", -0.20))),
    "feasibility": (
        0.25,
        (("stage", 0.30), ("modality_on_target", 0.20), ("coverage", 0.10), ("halted", -0.10), ("safety", -0.05)),
    ),
    "therapeutic_potential": (
        0.30,
        (("efficacy", 0.20), ("approved", 0.20), ("disease_match", 0.10), ("failed", -0.25), ("halted", -0.05)),
    ),
    "druggability": (0.20, (("modality_on_target", 0.40), ("approved", 0.15), ("stage", 0.15), ("modality_any", 0.05))),
    "safety": (0.70, (("stage", 0.15), ("safety", -0.35), ("safety_cited_by_critic", -0.15), ("halted", -0.10))),
    "competitive_landscape": (0.80, (("approved", -0.40), ("late_active", -0.15), ("stage", -0.10))),
    "data_availability": (0.15, (("evidence_amount", 0.45), ("coverage", 0.30), ("pages_supporting", 0.10))),
    "reproducibility": (
        0.20,
        (("pages_supporting", 0.40), ("efficacy", 0.15), ("late_cited", 0.10), ("contested", -0.15), ("failed", -0.10)),
    ),
}
assert tuple(DIMENSION_MODEL) == DIMENSIONS
assert all(f in JUDGE_FEATURES for _, terms in DIMENSION_MODEL.values() for f, _ in terms)

# confidence = clip(base + sum(weight * feature), *CONFIDENCE_RANGE)
CONFIDENCE_MODEL: tuple[float, tuple[tuple[str, float], ...]] = (
    0.25,
    (("evidence_amount", 0.45), ("coverage", 0.15), ("pages_supporting", 0.10), ("contested", -0.10)),
)
CONFIDENCE_RANGE = (0.05, 0.95)

EMPHASIS_PENALTY = 1.3
EMPHASIS_BONUS = 0.9


def describe_model() -> list[str]:
    """:data:`DIMENSION_MODEL` as formulas, one line per dimension (the module docstring's list)."""
    return [
        f"{d} = {base:.2f} " + " ".join(f"{'+' if w >= 0 else '-'} {abs(w):.2f} {f}" for f, w in terms)
        for d, (base, terms) in DIMENSION_MODEL.items()
    ]


def _rules_hash() -> str:
    tables = {
        "flags": FLAG_PATTERNS,
        "negations": NEGATIONS,
        "approval_lost": APPROVAL_LOST,
        "biology_keys": sorted(BIOLOGY_KEYS),
        "navigation": sorted(NAVIGATION_HEADINGS),
        "modalities": MODALITY_PATTERNS,
        "target_aliases": TARGET_ALIASES,
        "disease_aliases": DISEASE_ALIASES,
        "stopwords": sorted(STOPWORDS),
        "stages": STAGE_BY_FLAG,
        "opening": OPENING_CITES,
        "objections": OBJECTIONS_PER_ROUND,
        "thin": THIN_EVIDENCE,
        "features": JUDGE_FEATURES,
        "dimensions": DIMENSION_MODEL,
        "confidence": [CONFIDENCE_MODEL, CONFIDENCE_RANGE],
        "emphasis": [EMPHASIS_PENALTY, EMPHASIS_BONUS],
    }
    blob = RULES_VERSION + json.dumps(tables, sort_keys=True, ensure_ascii=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


RULES_HASH = _rules_hash()
"""sha256[:16] of :data:`RULES_VERSION` and every rule table: changes exactly when the rules do."""

SYSTEM_PROMPTS: dict[str, str] = {
    "proposer": "Offline heuristic proposer (no model): argues from retrieved items that name the "
    "targets or mechanisms, strongest first (approval, efficacy, trial stage, "
    f"modality); opens with the top {OPENING_CITES}, then answers each new objection "
    "with an item not yet cited.",
    "critic": "Offline heuristic critic (no model): objects with failed or halted trials, safety "
    "signals, targets and mechanisms no item names, and thin evidence; at most "
    f"{OBJECTIONS_PER_ROUND} new objections a round; concedes when it has nothing new.",
    "judge": "Offline heuristic judge (no model): scores each rubric dimension as a fixed linear "
    "function of named evidence features and of what each side cited; emphasised "
    f"dimensions weigh penalties x{EMPHASIS_PENALTY} and bonuses x{EMPHASIS_BONUS}, and "
    "nothing else differs between seats; side order is ignored.",
}
