"""The offline backend: deterministic proposer, critic and judges that argue from KB evidence.

No model is involved. Every turn is labelled ``heuristic`` and computed from named evidence
features, so a fresh machine with no key and no network can run the engine end to end, and
every number in a transcript can be traced to the passages and rules that produced it.

Evidence features
-----------------

Each evidence item is split into *segments*: its lines (bullets, infobox rows) with prose
lines split further into sentences, plus any ``Key: value`` fact not already in the text. The
flags below are matched per segment, case-insensitively, on word boundaries:

==================  ===========================================================================
feature             matched when a segment says ...
==================  ===========================================================================
``approved``        FDA-approved, approved, approval, accelerated approval, licensed; not when
                    negated ("not approved", "no approved therapy", "without approval") and not
                    in a segment that reports the approval withdrawn or revoked
``late_trial``      Phase 3 / III, Phase 2/3, pivotal, registrational
``mid_trial``       Phase 2 / II (2a, 2b), Phase 1/2
``early``           Phase 1 / I, preclinical, in vitro, mouse/mice, rodent, animal or cell models
``failed``          failed/fails, (trial) failure(s) except organ failure ("respiratory
                    failure"), did not meet, not met, missed its endpoint, no benefit, no
                    (significant) difference, futility, did not confirm/show/slow/improve,
                    negative trial/results, lack of efficacy, ineffective
``halted``          halted, discontinued, terminated, withdrawn, stopped, suspended, abandoned,
                    shelved, paused
``safety_signal``   toxicity, hepato-/neuro-/cardiotoxic, adverse, ARIA, liver, transaminase,
                    death(s)/died/fatal (not "cell/neuron death"), serious, worsening, black
                    box/boxed warning, edema, hemorrhage, microbleeds, myelitis, meningitis,
                    seizures, suicidality, intracranial pressure; not when negated ("no serious
                    adverse events", "without toxicity")
``efficacy``        slows, reduces, lowers, extends survival, survival gain, improves, benefit,
                    efficacy, positive, protects, rescues, delays, "less ... decline"; not when
                    negated ("no benefit") and never in a segment that also reports a failure
``drug_modality``   antibody (incl. ``-mab``), antisense (ASO, oligonucleotide, siRNA, ``-rsen``),
                    small molecule, inhibitor (incl. ``-nib``), gene therapy (AAV), agonist or
                    antagonist
==================  ===========================================================================

Relative to the hypothesis, per item:

* ``target_hit``: the item names a target symbol (or a listed alias, e.g. TDP-43 for TARDBP),
  on symbol boundaries; case-insensitive except for all-letter symbols of four letters or fewer
  (``APP``, ``FUS``), which must be upper case so English words do not match; a symbol ending
  in a letter also matches with one allele digit (``APOE4``).
* ``mechanism_hit`` / ``disease_hit``: every content word of a mechanism (or disease, or one of
  its aliases: ALS = amyotrophic lateral sclerosis, AD = Alzheimer's, ...) occurs in the item,
  words compared on their first six letters ("aggregation" matches "aggregates").
* ``title_overlap``: the share of the title's content words found the same way.
* *Scope*: in an item that names a target, the stage and outcome flags above are read only from
  segments that name a target or name no gene at all; a segment that names only another gene
  (a letter+digit symbol, or the ``X`` of an infobox ``Target X:`` row) is about that gene and
  left out. In an item without a target hit, every segment counts.
* ``stage``: approved 4 > late_trial 3 > mid_trial 2 > early 1 > none 0, from scoped flags.

An item is *relevant* when it hits a target or a mechanism (when the hypothesis names no
targets, "on target" below reads as "relevant"). A relevant item is *supporting* unless its
only outcome news is bad (failed or halted with no approval, efficacy, modality or successful
stage), and *contrary* when it reports a failure, a halt or a safety signal. Aggregates:
target coverage (share of targets named in any item), mechanism coverage, best on-target stage.

The agents
----------

* Proposer: round 1 cites the :data:`OPENING_CITES` strongest supporting items, one claim
  each; later rounds answer each of the critic's latest objections with the strongest
  supporting item it has not cited yet, and say so (citing nothing) when none is left.
* Critic: objections, most severe first: contrary items, targets no item names (empty
  citation list), thin evidence (fewer than :data:`THIN_EVIDENCE` relevant items), no clinical
  stage on target, and proposer citations that are invalid or off-topic. It raises at most
  :data:`OBJECTIONS_PER_ROUND` objections it has not made before, and concedes when none is left.
* Judge: each dimension is a clipped linear function of named aggregate features (see
  :data:`DIMENSION_MODEL` and :data:`JUDGE_FEATURES`), some read from what each side cited.
  Persona: on the seat's emphasised dimensions penalties weigh :data:`EMPHASIS_PENALTY` times
  and bonuses :data:`EMPHASIS_BONUS` times (the expert is hardest to convince, so emphasised
  dimensions lean toward the critic's points). Each seat also adds a fixed perspective offset of
  at most :data:`PERSPECTIVE` per dimension, from a hash of seat, persona, hypothesis id and
  dimension, so judges differ a little but agree broadly. Scores ignore the order the sides are
  shown in (``critic_first``), which only position-biased models are sensitive to.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pydantic import BaseModel

from debate.agents import AgentResult, DebateView, JudgeSeat
from debate.consensus import DIMENSIONS, Rubric
from debate.llm import Attempt, ChatMessage, Usage
from debate.models import (
    Claim,
    CriticReply,
    DimensionScores,
    EvidenceItem,
    HypothesisOut,
    JudgeReply,
    ProposerReply,
)

__all__ = [
    "MODEL",
    "RULES_HASH",
    "RULES_VERSION",
    "EvidenceFeatures",
    "OfflineBackend",
    "evidence_features",
    "judge_scores",
]

MODEL = "offline-heuristic-v1"
RULES_VERSION = "offline-heuristic rules v1"

# ---------------------------------------------------------------- rule tables (hashed into RULES_HASH)

# Regex sources per flag; matched on lower-cased segments after the negations below are removed.
FLAG_PATTERNS: dict[str, str] = {
    "approved": r"\bapprov(?:ed|al)\b|\blicensed\b",
    "late_trial": r"\bphase\s*(?:3|iii|2/3|ii/iii)[ab]?\b|\bpivotal\b|\bregistrational\b",
    "mid_trial": r"\bphase\s*(?:2|ii|1/2|i/ii)[ab]?\b",
    "early": r"\bphase\s*(?:0|1|i)[ab]?\b|\bpre-?clinical\b|\bin vitro\b|\bmouse\b|\bmice\b|\brodents?\b"
             r"|\b(?:animal|cell|cellular) models?\b|\bfirst-in-human\b",
    "failed": r"\bfail(?:ed|s|ing)?\b"
              r"|(?<!respiratory )(?<!heart )(?<!cardiac )(?<!renal )(?<!kidney )(?<!liver )(?<!organ )"
              r"(?<!hepatic )\bfailures?\b"
              r"|\bdid not meet\b|\bnot met\b|\bmissed (?:its|the|their) (?:\w+ )?(?:end ?points?|goals?)\b"
              r"|\bno (?:clinical |significant |functional |survival )?benefit\b"
              r"|\bno (?:significant |meaningful )?difference\b|\bfutil(?:ity|e)\b"
              r"|\bdid not (?:confirm|show|slow|improve|replicate|reduce|change)\b"
              r"|\bnegative (?:trial|results?|outcomes?|study)\b|\black of efficacy\b|\bineffective\b",
    "halted": r"\bhalted\b|\bdiscontinu(?:ed|ation)\b|\bterminated\b|\bwithdrawn\b|\bwithdrew\b|\bstopped\b"
              r"|\bsuspended\b|\babandoned\b|\bshelved\b|\bpaused\b",
    "safety_signal": r"\btoxicit(?:y|ies)\b|\b(?:hepato|neuro|cardio|nephro)toxic\w*|\badverse\b|\baria(?:-[eh])?\b"
                     r"|\bliver\b|\btransaminases?\b|\bdeaths?\b|\bdied\b|\bfatal\w*|\bserious\b"
                     r"|\bworsen(?:ing|ed|s)?\b|\bblack[- ]box\b|\bboxed warning\b|\b(?:o)?edema\b"
                     r"|\b(?:micro)?(?:h)?a?emorrhag\w*|\bmicrobleeds?\b|\bmyelitis\b|\bmeningitis\b"
                     r"|\bseizures?\b|\bsuicid\w*|\bintracranial pressure\b",
    "efficacy": r"\bslow(?:s|ed|er|ing)?\b|\breduc(?:es|ed|ing|tions?)\b|\blower(?:s|ed|ing)\b"
                r"|\bextend(?:s|ed)? survival\b|\bsurvival (?:gain|benefit)\b|\bimprov(?:es|ed|ing|ements?)\b"
                r"|\bbenefi\w*|\befficac\w*|\bpositive\b|\bprotect(?:s|ed|ive)?\b|\brescu(?:es|ed)\b"
                r"|\bdelay(?:s|ed)?\b|\bless\b[^.;]{0,40}\bdecline\b",
}

# Phrases removed before matching the flag they would otherwise trigger.
NEGATIONS: dict[str, str] = {
    "approved": r"\b(?:not|no|never|nor|without|yet to be|awaiting)\s+(?:[\w-]+\s+){0,2}?(?:fda[- ])?approv\w*",
    "safety_signal": r"\b(?:no|without|not associated with)\s+(?:(?:new|serious|major|significant|unexpected"
                     r"|dose-limiting)\s+)*(?:safety (?:signals?|concerns?|issues?)|adverse (?:events?|effects?)"
                     r"|toxicit(?:y|ies))|\b(?:cell|neuronal|neuron|apoptotic|neuronal cell) death\b",
    "efficacy": r"\b(?:no|not|without|failed to|fails to|lack of|nor)\s+(?:[\w-]+\s+){0,3}?"
                r"(?:slow\w*|reduc\w*|lower\w*|improv\w*|benefi\w*|efficac\w*|protect\w*|delay\w*)",
}

# An approval in a segment that reports it withdrawn or revoked does not count.
APPROVAL_LOST = r"\bwithdrawn\b|\bwithdrew\b|\brevoked\b|\brescinded\b"

MODALITY_PATTERNS: dict[str, str] = {
    "antibody": r"\bantibod(?:y|ies)\b|\bmonoclonal\b|\b\w{3,}mab\b",
    "antisense": r"\bantisense\b|\basos?\b|\boligonucleotides?\b|\bsirnas?\b|\brnai\b|\b\w{3,}rsen\b",
    "small molecule": r"\bsmall[- ]molecules?\b",
    "inhibitor": r"\binhibitors?\b|\b\w{3,}tinib\b",
    "gene therapy": r"\bgene therapy\b|\baav\d*\b|\bviral vectors?\b",
    "agonist": r"\b(?:ant)?agonists?\b",
}

SAFETY_TERM = r"toxicit|toxic|adverse|aria|liver|transaminase|death|died|fatal|serious|worsen|black|boxed|edema|" \
              r"oedema|hemorrhag|haemorrhag|microbleed|myelitis|meningitis|seizure|suicid|intracranial"

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

# Each group: names of one disease; a hypothesis disease matching any name matches them all.
DISEASE_ALIASES: tuple[tuple[str, ...], ...] = (
    ("als", "amyotrophic lateral sclerosis", "motor neuron disease", "mnd"),
    ("alzheimer's disease", "alzheimer", "ad"),
    ("parkinson's disease", "parkinson", "pd"),
    ("frontotemporal dementia", "ftd"),
    ("huntington's disease", "huntington", "hd"),
)

STOPWORDS = frozenset(
    "a an and as at by for from in into of on or the to via with its their this that these those "
    "disease disorder syndrome".split()
)

STAGE_BY_FLAG: tuple[tuple[str, int], ...] = (("approved", 4), ("late_trial", 3), ("mid_trial", 2), ("early", 1))
STAGE_NAMES: dict[int, str] = {4: "approved", 3: "Phase 3", 2: "Phase 2", 1: "preclinical/Phase 1", 0: "none"}

OPENING_CITES = 3
OBJECTIONS_PER_ROUND = 3
THIN_EVIDENCE = 3

# Judge features: name -> what it measures (each in [0, 1]).
JUDGE_FEATURES: dict[str, str] = {
    "cited_support": "distinct relevant, valid evidence ids the proposer cited, out of 4",
    "approved_cited": "the proposer cited an item reporting an approval on target",
    "late_cited": "the proposer cited an on-target Phase 3 item that did not fail or halt",
    "failed_cited_by_critic": "on-target or mechanism items reporting a failure that the critic cited, out of 2",
    "halted_cited_by_critic": "items reporting a halt that the critic cited, out of 2",
    "safety_cited_by_critic": "items with safety signals that the critic cited, out of 2",
    "invalid_citations": "cited ids (either side) that name no retrieved evidence, out of 3",
    "approved": "some relevant item reports an approval on target",
    "late_active": "some on-target item reports a Phase 3 trial that did not fail or halt",
    "failed": "relevant items reporting a failure, out of 2",
    "halted": "relevant items reporting a halt, out of 2",
    "safety": "relevant items with safety signals, out of 3",
    "efficacy": "relevant items reporting efficacy, out of 2",
    "stage": "best stage reached on target, out of 4",
    "modality_on_target": "a drug modality is named in an on-target segment",
    "modality_any": "a drug modality is named in some relevant item",
    "coverage": "share of the targets named in some item (mechanism coverage when no targets)",
    "mechanism_coverage": "share of the mechanisms hit by some item",
    "disease_match": "share of relevant items that name one of the diseases",
    "evidence_amount": "relevant items, out of 6",
    "pages_supporting": "distinct pages among supporting items beyond the first, out of 2",
    "contested": "an on-target item reports both success (approval/efficacy) and a failure",
}

# dimension -> (bias, ((feature, weight), ...)); the score is clip(bias + sum(weight * feature)).
DIMENSION_MODEL: dict[str, tuple[float, tuple[tuple[str, float], ...]]] = {
    "mechanistic_plausibility": (0.25, (("mechanism_coverage", 0.25), ("coverage", 0.20), ("efficacy", 0.15),
                                        ("stage", 0.10), ("failed", -0.10))),
    "evidence_strength": (0.20, (("cited_support", 0.30), ("approved_cited", 0.20), ("late_cited", 0.10),
                                 ("efficacy", 0.10), ("failed_cited_by_critic", -0.25),
                                 ("halted_cited_by_critic", -0.10), ("invalid_citations", -0.15))),
    "novelty": (0.80, (("approved", -0.35), ("stage", -0.20))),
    "feasibility": (0.25, (("stage", 0.30), ("modality_on_target", 0.20), ("coverage", 0.10), ("halted", -0.10),
                           ("safety", -0.05))),
    "therapeutic_potential": (0.30, (("efficacy", 0.20), ("approved", 0.20), ("disease_match", 0.10),
                                     ("failed", -0.25), ("halted", -0.05))),
    "druggability": (0.20, (("modality_on_target", 0.40), ("approved", 0.15), ("stage", 0.15),
                            ("modality_any", 0.05))),
    "safety": (0.85, (("safety", -0.35), ("safety_cited_by_critic", -0.15), ("halted", -0.10))),
    "competitive_landscape": (0.80, (("approved", -0.40), ("late_active", -0.15), ("stage", -0.10))),
    "data_availability": (0.15, (("evidence_amount", 0.45), ("coverage", 0.30), ("pages_supporting", 0.10))),
    "reproducibility": (0.20, (("pages_supporting", 0.40), ("efficacy", 0.15), ("late_cited", 0.10),
                               ("contested", -0.15), ("failed", -0.10))),
}
assert tuple(DIMENSION_MODEL) == DIMENSIONS
assert all(f in JUDGE_FEATURES for _, terms in DIMENSION_MODEL.values() for f, _ in terms)

# confidence = clip(bias + sum(weight * feature), CONFIDENCE_RANGE)
CONFIDENCE_MODEL: tuple[float, tuple[tuple[str, float], ...]] = (
    0.25, (("evidence_amount", 0.45), ("coverage", 0.15), ("pages_supporting", 0.10), ("contested", -0.10)))
CONFIDENCE_RANGE = (0.05, 0.95)

EMPHASIS_PENALTY = 1.5
EMPHASIS_BONUS = 0.9
PERSPECTIVE = 0.04


def _rules_hash() -> str:
    tables = {
        "flags": FLAG_PATTERNS, "negations": NEGATIONS, "approval_lost": APPROVAL_LOST,
        "modalities": MODALITY_PATTERNS, "safety_term": SAFETY_TERM, "target_aliases": TARGET_ALIASES,
        "disease_aliases": DISEASE_ALIASES, "stopwords": sorted(STOPWORDS), "stages": STAGE_BY_FLAG,
        "opening": OPENING_CITES, "objections": OBJECTIONS_PER_ROUND, "thin": THIN_EVIDENCE,
        "features": JUDGE_FEATURES, "dimensions": DIMENSION_MODEL, "confidence": [CONFIDENCE_MODEL, CONFIDENCE_RANGE],
        "emphasis": [EMPHASIS_PENALTY, EMPHASIS_BONUS], "perspective": PERSPECTIVE,
    }
    blob = RULES_VERSION + json.dumps(tables, sort_keys=True, ensure_ascii=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


RULES_HASH = _rules_hash()
"""sha256[:16] of the rules version and every table above: changes exactly when the rules do."""

SYSTEM_PROMPTS: dict[str, str] = {
    "proposer": "Offline heuristic proposer (no model): argues from retrieved items that name the targets or "
                f"mechanisms, strongest first (approval, efficacy, trial stage, modality); opens with the top "
                f"{OPENING_CITES}, then answers each new objection with an item not yet cited.",
    "critic": "Offline heuristic critic (no model): objects with failed or halted trials, safety signals, targets "
              f"no item names and thin evidence; at most {OBJECTIONS_PER_ROUND} new objections a round; concedes "
              "when it has nothing new to say.",
    "judge": "Offline heuristic judge (no model): scores each rubric dimension as a fixed linear function of "
             f"named evidence features and of what each side cited; emphasised dimensions weigh penalties "
             f"x{EMPHASIS_PENALTY} and bonuses x{EMPHASIS_BONUS}; fixed per-seat perspective up to "
             f"±{PERSPECTIVE}; the order the sides are shown in is ignored.",
}

# ---------------------------------------------------------------- compiled patterns

_FLAGS_RE = {k: re.compile(v) for k, v in FLAG_PATTERNS.items()}
_NEG_RE = {k: re.compile(v) for k, v in NEGATIONS.items()}
_APPROVAL_LOST_RE = re.compile(APPROVAL_LOST)
_MODALITY_RE = tuple((k, re.compile(v)) for k, v in MODALITY_PATTERNS.items())
_SAFETY_TERM_RE = re.compile(rf"\b(?:{SAFETY_TERM})\w*")
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
_BULLET = re.compile(r"^\s*[-*•]\s+")
_WORD = re.compile(r"[a-z0-9]+")
# Gene-like tokens used only to tell which gene a segment is about: a letter then a digit somewhere.
_GENE_TOKEN = re.compile(r"(?<![A-Za-z0-9])([A-Za-z][A-Za-z0-9]*\d[A-Za-z0-9]*)(?![A-Za-z0-9])")
_INFOBOX_TARGET = re.compile(r"^target\s+([A-Za-z0-9-]+)\s*:", re.I)
_NOT_GENES = frozenset({"SOD1-ALS", "AAV9", "AAV2", "AAV", "PGC-1A", "CNM-AU8", "COVID-19", "MCI186"})

FLAG_ORDER = ("approved", "late_trial", "mid_trial", "early", "failed", "halted", "safety_signal", "efficacy")


# ---------------------------------------------------------------- per-text profile (hypothesis independent)


@dataclass(frozen=True, slots=True)
class _Segment:
    text: str
    flags: frozenset[str]
    modalities: tuple[str, ...]
    safety_terms: tuple[str, ...]
    genes: frozenset[str]


def _segment(text: str) -> _Segment:
    low = text.lower()
    flags: set[str] = set()
    for name, rx in _FLAGS_RE.items():
        probe = _NEG_RE[name].sub(" ", low) if name in _NEG_RE else low
        if rx.search(probe):
            flags.add(name)
    if "approved" in flags and _APPROVAL_LOST_RE.search(low):
        flags.discard("approved")
    # "did not confirm an early report of slower progression": efficacy words on a failure line are not efficacy.
    if "failed" in flags:
        flags.discard("efficacy")
    safety_terms: tuple[str, ...] = ()
    if "safety_signal" in flags:
        cleaned = _NEG_RE["safety_signal"].sub(" ", low)
        safety_terms = tuple(dict.fromkeys(m.group(0) for m in _SAFETY_TERM_RE.finditer(cleaned)))[:3]
    modalities = tuple(name for name, rx in _MODALITY_RE if rx.search(low))
    genes = {m.group(1).upper() for m in _GENE_TOKEN.finditer(text)}
    genes = {g for g in genes if not g.startswith("NCT") and g not in _NOT_GENES}
    row = _INFOBOX_TARGET.match(text)
    if row:
        genes.add(row.group(1).upper())
    return _Segment(text, frozenset(flags), modalities, safety_terms, frozenset(genes))


@dataclass(frozen=True, slots=True)
class _Profile:
    segments: tuple[_Segment, ...]
    words: frozenset[str]  # lower-case words plus their 4-, 5- and 6-letter prefixes


@lru_cache(maxsize=8192)
def _profile(text: str, facts: tuple[tuple[str, str], ...]) -> _Profile:
    pieces: list[str] = []
    for line in text.splitlines():
        line = _BULLET.sub("", line).strip()
        if line:
            pieces.extend(s for s in _SENTENCE_SPLIT.split(line) if s)
    present = {p.casefold() for p in pieces}
    for key, value in facts:
        fact = f"{key}: {value}".strip()
        if fact.casefold() not in present and value:
            pieces.append(fact)
            present.add(fact.casefold())
    words: set[str] = set()
    for w in _WORD.findall(" ".join(pieces).lower()):
        words.add(w)
        for k in (4, 5, 6):
            if len(w) > k:
                words.add(w[:k])
    return _Profile(tuple(_segment(p) for p in pieces), frozenset(words))


def _stems(phrase: str) -> tuple[str, ...]:
    """Content words of a phrase as match keys: whole words under 4 letters, else the first 6 letters."""
    words = [w for w in _WORD.findall(phrase.lower()) if w not in STOPWORDS and (len(w) > 1 or w.isdigit())]
    if not words:  # "disease" alone: keep what there is
        words = _WORD.findall(phrase.lower())
    return tuple(w if len(w) < 4 else w[:6] for w in words)


# ---------------------------------------------------------------- hypothesis terms


# Compared by identity: instances come from the cached _terms(), and serve as cache keys below.
@dataclass(frozen=True, slots=True, eq=False)
class _Terms:
    targets: tuple[str, ...]
    target_re: re.Pattern[str] | None
    target_lookup: dict[str, str]  # matched text (lower) -> target, for exact spellings
    target_keys: frozenset[str]
    mechanisms: tuple[tuple[str, tuple[str, ...]], ...]
    diseases: tuple[tuple[str, ...], ...]  # alternatives, each a stem tuple
    title: tuple[str, ...]


def _target_pattern(symbol: str) -> str:
    core = re.escape(symbol)
    case = "" if (symbol.isalpha() and len(symbol) <= 4) else "(?i:"
    allele = r"\d?" if symbol[-1:].isalpha() else ""
    body = f"{case}{core}{allele})" if case else f"{core}{allele}"
    return rf"(?<![A-Za-z0-9]){body}(?![A-Za-z0-9])"


@lru_cache(maxsize=1024)
def _terms(targets: tuple[str, ...], mechanisms: tuple[str, ...], diseases: tuple[str, ...], title: str) -> _Terms:
    alts: list[str] = []
    lookup: dict[str, str] = {}
    keys: set[str] = set()
    for t in targets:
        alts.append(f"(?P<t{len(lookup)}>{_target_pattern(t)})")
        lookup[f"t{len(lookup)}"] = t
        keys.add(t.upper())
        for alias in TARGET_ALIASES.get(t.upper(), ()):
            alts.append(rf"(?P<t{len(lookup)}>(?<![A-Za-z0-9])(?i:{re.escape(alias)})(?![A-Za-z0-9]))")
            lookup[f"t{len(lookup)}"] = t
            keys.add(alias.upper())
    target_re = re.compile("|".join(alts)) if alts else None
    disease_alts: list[tuple[str, ...]] = []
    for d in diseases:
        names = [d]
        key = " ".join(_WORD.findall(d.lower()))
        for group in DISEASE_ALIASES:
            if any(" ".join(_WORD.findall(g)) == key for g in group):
                names.extend(g for g in group if g != d)
        disease_alts.append(tuple(dict.fromkeys(_stems(n) for n in names)))  # type: ignore[arg-type]
    return _Terms(
        targets=targets, target_re=target_re, target_lookup=lookup, target_keys=frozenset(keys),
        mechanisms=tuple((m, _stems(m)) for m in mechanisms),
        diseases=tuple(disease_alts),  # type: ignore[arg-type]
        title=tuple(dict.fromkeys(s for s in _stems(title) if len(s) >= 4)),
    )


def _hyp_terms(h: HypothesisOut) -> _Terms:
    return _terms(tuple(h.targets), tuple(h.mechanisms), tuple(h.diseases), h.title)


# ---------------------------------------------------------------- per-item features


@dataclass(frozen=True, slots=True)
class EvidenceFeatures:
    """The named features of one evidence item relative to one hypothesis (see the module docstring)."""

    eid: str
    page_slug: str
    heading: str
    targets_hit: tuple[str, ...]
    mechanism_hits: tuple[str, ...]
    disease_hit: bool
    title_overlap: float
    flags: frozenset[str]
    modalities: tuple[str, ...]
    safety_terms: tuple[str, ...]
    stage: int

    @property
    def on_target(self) -> bool:
        return bool(self.targets_hit)

    @property
    def relevant(self) -> bool:
        return bool(self.targets_hit or self.mechanism_hits)

    @property
    def bad_news(self) -> bool:
        return "failed" in self.flags or "halted" in self.flags

    @property
    def good_news(self) -> bool:
        f = self.flags
        return bool("approved" in f or "efficacy" in f or self.modalities or (self.stage and not self.bad_news))

    @property
    def supporting(self) -> bool:
        return self.relevant and (self.good_news or not self.bad_news)

    @property
    def contrary(self) -> bool:
        return self.relevant and (self.bad_news or "safety_signal" in self.flags)

    @property
    def strength(self) -> int:
        """Ordering key for the proposer (integer, so ties break on evidence order only)."""
        f = self.flags
        return (4 * self.on_target + 2 * bool(self.mechanism_hits) + 4 * ("approved" in f)
                + 2 * ("late_trial" in f and not self.bad_news) + ("mid_trial" in f and not self.bad_news)
                + 2 * ("efficacy" in f) + bool(self.modalities) + self.disease_hit + round(2 * self.title_overlap)
                - 2 * self.bad_news)

    @property
    def severity(self) -> int:
        """Ordering key for the critic's objections."""
        f = self.flags
        return (4 * ("failed" in f) + 3 * ("halted" in f) + 2 * ("safety_signal" in f) + 2 * self.on_target
                + ("late_trial" in f))

    def where(self) -> str:
        return f"{self.page_slug} › {self.heading}" if self.heading else self.page_slug

    def summary(self) -> str:
        """One deterministic line: the features as the agents' user messages list them."""
        flags = ",".join(f for f in FLAG_ORDER if f in self.flags) or "-"
        return (
            f"{self.eid} [{self.where()}] targets={','.join(self.targets_hit) or '-'} "
            f"mechanisms={','.join(self.mechanism_hits) or '-'} disease={'yes' if self.disease_hit else 'no'} "
            f"title_overlap={self.title_overlap:.2f} stage={STAGE_NAMES[self.stage]} flags={flags} "
            f"modality={','.join(self.modalities) or '-'}"
        )


@lru_cache(maxsize=16384)
def _features(eid: str, page_slug: str, heading: str, text: str, facts: tuple[tuple[str, str], ...],
              terms: _Terms) -> EvidenceFeatures:
    prof = _profile(text, facts)
    hit: set[str] = set()
    seg_hits: list[bool] = []
    for seg in prof.segments:
        found = False
        if terms.target_re is not None:
            for m in terms.target_re.finditer(seg.text):
                hit.add(terms.target_lookup[m.lastgroup or ""])
                found = True
        seg_hits.append(found)
    if hit:
        # Segments about another gene (and none of ours) say nothing about our targets.
        scoped = [s for s, h in zip(prof.segments, seg_hits, strict=True)
                  if h or not (s.genes - terms.target_keys)]
    else:
        scoped = list(prof.segments)
    flags: set[str] = set()
    modalities: dict[str, None] = {}
    safety: dict[str, None] = {}
    for s in scoped:
        flags |= s.flags
        modalities.update(dict.fromkeys(s.modalities))
        safety.update(dict.fromkeys(s.safety_terms))
    words = prof.words
    mech = tuple(m for m, stems in terms.mechanisms if stems and all(s in words for s in stems))
    disease = any(stems and all(s in words for s in stems) for alts in terms.diseases for stems in alts)
    overlap = sum(s in words for s in terms.title) / len(terms.title) if terms.title else 0.0
    stage = next((n for flag, n in STAGE_BY_FLAG if flag in flags), 0)
    return EvidenceFeatures(
        eid=eid, page_slug=page_slug, heading=heading,
        targets_hit=tuple(t for t in terms.targets if t in hit), mechanism_hits=mech, disease_hit=disease,
        title_overlap=round(overlap, 2), flags=frozenset(flags), modalities=tuple(modalities),
        safety_terms=tuple(safety)[:3], stage=stage,
    )


def evidence_features(item: EvidenceItem, hypothesis: HypothesisOut) -> EvidenceFeatures:
    """The features of ``item`` relative to ``hypothesis`` (pure; cached on the inputs)."""
    facts = tuple((f.get("key", ""), f.get("value", "")) for f in item.facts)
    heading = item.heading_path[-1] if item.heading_path else ""
    return _features(item.eid, item.page_slug, heading, item.text, facts, _hyp_terms(hypothesis))


# ---------------------------------------------------------------- the debate as the agents see it


def _fmt_ids(ids: list[str] | tuple[str, ...]) -> str:
    return ", ".join(ids) if ids else "none"


def _frac(n: float, d: float) -> float:
    return min(1.0, n / d) if d else 0.0


class _Case:
    """Features of every item plus the aggregates, computed once per agent call."""

    def __init__(self, view: DebateView) -> None:
        h = view.hypothesis
        self.h = h
        self.items = [evidence_features(e, h) for e in view.evidence]
        self.by_id = {f.eid: f for f in self.items}
        self.relevant = [f for f in self.items if f.relevant]
        # With no targets, "on target" means relevant.
        self.on_target = [f for f in self.items if f.on_target] if h.targets else self.relevant
        covered = {t for f in self.items for t in f.targets_hit}
        self.missing = [t for t in h.targets if t not in covered]
        mech_hit = {m for f in self.items for m in f.mechanism_hits}
        self.mechanism_coverage = _frac(len(mech_hit), len(h.mechanisms))
        self.coverage = _frac(len(covered), len(h.targets)) if h.targets else self.mechanism_coverage
        self.best_stage = max((f.stage for f in self.on_target), default=0)
        order = {f.eid: i for i, f in enumerate(self.items)}
        self.support = sorted((f for f in self.items if f.supporting), key=lambda f: (-f.strength, order[f.eid]))
        self.contra = sorted((f for f in self.items if f.contrary), key=lambda f: (-f.severity, order[f.eid]))

    def header(self, view: DebateView) -> list[str]:
        h = self.h
        return [
            f"Hypothesis {h.id}: {h.title}",
            f"Targets: {', '.join(h.targets) or '(none)'} | Diseases: {', '.join(h.diseases) or '(none)'} | "
            f"Mechanisms: {', '.join(h.mechanisms) or '(none)'}",
            f"Round {view.round} of {view.max_rounds}. Evidence: {len(self.items)} items, "
            f"{len(self.relevant)} relevant, {len({f.page_slug for f in self.items})} pages; "
            f"target coverage {self.coverage:.2f} (missing: {', '.join(self.missing) or 'none'}); "
            f"best stage on target: {STAGE_NAMES[self.best_stage]}.",
            *(f.summary() for f in self.items),
        ]


def _support_text(f: EvidenceFeatures) -> str:
    parts: list[str] = []
    if f.targets_hit:
        parts.append(f"names {', '.join(f.targets_hit)}")
    if f.mechanism_hits:
        parts.append(f"describes {', '.join(f.mechanism_hits)}")
    news = []
    if "approved" in f.flags:
        news.append("an approval")
    if "efficacy" in f.flags:
        news.append("efficacy")
    if f.stage in (2, 3) and not f.bad_news:
        news.append(f"a {STAGE_NAMES[f.stage]} trial")
    elif f.stage == 1:
        news.append("preclinical or Phase 1 work")
    if news:
        parts.append(f"reports {', '.join(news)}")
    if f.modalities:
        parts.append(f"modality: {', '.join(f.modalities)}")
    return f"{f.eid} ({f.where()}) {'; '.join(parts)}."


def _contra_text(f: EvidenceFeatures) -> str:
    news = []
    if "failed" in f.flags:
        news.append("a failed Phase 3 trial" if "late_trial" in f.flags else "a failed trial")
    if "halted" in f.flags:
        news.append("a halted or withdrawn programme")
    if "safety_signal" in f.flags:
        news.append(f"safety signals ({', '.join(f.safety_terms)})" if f.safety_terms else "safety signals")
    about = f" for {', '.join(f.targets_hit)}" if f.targets_hit else ""
    return f"{f.eid} ({f.where()}) reports {', '.join(news)}{about}."


# ---------------------------------------------------------------- judge scoring


@dataclass(frozen=True, slots=True)
class _JudgeInputs:
    values: dict[str, float]
    ids: dict[str, tuple[str, ...]]  # feature -> evidence ids behind it, for the rationale


def _judge_inputs(case: _Case, view: DebateView) -> _JudgeInputs:
    known = case.by_id
    p_cited: dict[str, None] = {}
    c_cited: dict[str, None] = {}
    invalid: dict[str, None] = {}
    for t in view.turns:
        for claim in t.reply.claims:
            for eid in claim.evidence_ids:
                if eid not in known:
                    invalid[eid] = None
                elif t.role == "proposer":
                    p_cited[eid] = None
                else:
                    c_cited[eid] = None
    # Sorted so that neither the turn order nor the side order changes anything below.
    p = [known[e] for e in sorted(p_cited)]
    c = [known[e] for e in sorted(c_cited)]
    rel, on = case.relevant, case.on_target
    on_ids = {f.eid for f in on}

    def ids(fs: list[EvidenceFeatures]) -> tuple[str, ...]:
        return tuple(f.eid for f in fs)

    groups: dict[str, list[EvidenceFeatures]] = {
        "cited_support": [f for f in p if f.relevant],
        "approved_cited": [f for f in p if "approved" in f.flags and f.eid in on_ids],
        "late_cited": [f for f in p if "late_trial" in f.flags and not f.bad_news and f.eid in on_ids],
        "failed_cited_by_critic": [f for f in c if "failed" in f.flags and f.relevant],
        "halted_cited_by_critic": [f for f in c if "halted" in f.flags and f.relevant],
        "safety_cited_by_critic": [f for f in c if "safety_signal" in f.flags and f.relevant],
        "approved": [f for f in on if "approved" in f.flags],
        "late_active": [f for f in on if "late_trial" in f.flags and not f.bad_news],
        "failed": [f for f in rel if "failed" in f.flags],
        "halted": [f for f in rel if "halted" in f.flags],
        "safety": [f for f in rel if "safety_signal" in f.flags],
        "efficacy": [f for f in rel if "efficacy" in f.flags],
        "modality_on_target": [f for f in on if f.modalities],
        "modality_any": [f for f in rel if f.modalities],
        "disease_match": [f for f in rel if f.disease_hit],
        "contested": [f for f in on if f.bad_news and ("approved" in f.flags or "efficacy" in f.flags)],
    }
    supporting_pages = {f.page_slug for f in case.support}
    staged = [f for f in on if f.stage == case.best_stage and f.stage]
    values = {
        "cited_support": _frac(len(groups["cited_support"]), 4),
        "approved_cited": float(bool(groups["approved_cited"])),
        "late_cited": float(bool(groups["late_cited"])),
        "failed_cited_by_critic": _frac(len(groups["failed_cited_by_critic"]), 2),
        "halted_cited_by_critic": _frac(len(groups["halted_cited_by_critic"]), 2),
        "safety_cited_by_critic": _frac(len(groups["safety_cited_by_critic"]), 2),
        "invalid_citations": _frac(len(invalid), 3),
        "approved": float(bool(groups["approved"])),
        "late_active": float(bool(groups["late_active"])),
        "failed": _frac(len(groups["failed"]), 2),
        "halted": _frac(len(groups["halted"]), 2),
        "safety": _frac(len(groups["safety"]), 3),
        "efficacy": _frac(len(groups["efficacy"]), 2),
        "stage": case.best_stage / 4,
        "modality_on_target": float(bool(groups["modality_on_target"])),
        "modality_any": float(bool(groups["modality_any"])),
        "coverage": case.coverage,
        "mechanism_coverage": case.mechanism_coverage,
        "disease_match": _frac(len(groups["disease_match"]), len(rel)),
        "evidence_amount": _frac(len(rel), 6),
        "pages_supporting": _frac(max(0, len(supporting_pages) - 1), 2),
        "contested": float(bool(groups["contested"])),
    }
    id_map = {k: ids(v) for k, v in groups.items()}
    id_map["stage"] = ids(staged)
    id_map["coverage"] = ids(on) if case.h.targets else ids(rel)
    id_map["mechanism_coverage"] = ids([f for f in rel if f.mechanism_hits])
    id_map["evidence_amount"] = ids(rel)
    id_map["pages_supporting"] = ids(case.support)
    id_map["invalid_citations"] = tuple(sorted(invalid))
    return _JudgeInputs(values, id_map)


@lru_cache(maxsize=4096)
def _perspective(seat: int, persona: str, hypothesis_id: str) -> tuple[float, ...]:
    out = []
    for d in DIMENSIONS:
        digest = hashlib.sha256(f"{seat}|{persona}|{hypothesis_id}|{d}".encode()).digest()
        out.append((int.from_bytes(digest[:4], "big") / 0xFFFFFFFF * 2 - 1) * PERSPECTIVE)
    return tuple(out)


def _clip(x: float, lo: float = 0.0, hi: float = 1.0) -> float:
    return min(hi, max(lo, x))


def judge_scores(values: dict[str, float], seat: JudgeSeat, hypothesis_id: str
                 ) -> tuple[dict[str, float], dict[str, list[tuple[str, float]]]]:
    """Dimension scores from judge features for one seat, and each dimension's term contributions.

    ``score = clip(bias + sum(w * feature) * (EMPHASIS_PENALTY if w < 0 else EMPHASIS_BONUS, on emphasised
    dimensions only) + perspective)``, rounded to 4 decimals.
    """
    emphasis = set(seat.emphasis)
    offsets = _perspective(seat.seat, seat.persona, hypothesis_id)
    scores: dict[str, float] = {}
    terms: dict[str, list[tuple[str, float]]] = {}
    for d, off in zip(DIMENSIONS, offsets, strict=True):
        bias, model = DIMENSION_MODEL[d]
        contrib = []
        for feat, w in model:
            if d in emphasis:
                w *= EMPHASIS_PENALTY if w < 0 else EMPHASIS_BONUS
            contrib.append((feat, w * values[feat]))
        scores[d] = round(_clip(bias + sum(c for _, c in contrib) + off), 4)
        terms[d] = contrib
    return scores, terms


# ---------------------------------------------------------------- the backend


def _result(role: str, reply: BaseModel, user: str, started: datetime, t0: float) -> AgentResult:
    raw = reply.model_dump_json()
    messages = [ChatMessage(role="system", content=SYSTEM_PROMPTS[role]), ChatMessage(role="user", content=user)]
    attempt = Attempt(
        n=1, kind="first", started_at=started, latency_ms=(time.perf_counter() - t0) * 1000.0, outcome="ok",
        http_status=None, error=None, raw_reply=raw, usage=Usage(), cost_usd=None, model=MODEL,
        messages_sent=len(messages),
    )
    return AgentResult(reply=reply, raw=raw, messages=messages, attempts=[attempt], model=MODEL,
                       label="heuristic", prompt={"name": f"offline-{role}", "version": "1", "hash": RULES_HASH})


class OfflineBackend:
    """Deterministic proposer, critic and judges computed from evidence features (no model)."""

    name = "offline"

    def __init__(self, rubric: Rubric | None = None) -> None:
        self.rubric = rubric or Rubric.default()

    # -- proposer

    async def propose(self, view: DebateView) -> AgentResult:
        """The case for the hypothesis from supporting evidence; later rounds answer the critic's objections."""
        started, t0 = datetime.now(UTC), time.perf_counter()
        case = _Case(view)
        # Only earlier rounds count: a re-run node must not take its own round's reply as history.
        mine = [t for t in view.turns if t.role == "proposer" and t.round < view.round]
        cited_before = list(dict.fromkeys(e for t in mine for c in t.reply.claims for e in c.evidence_ids))
        fresh = [f for f in case.support if f.eid not in cited_before]
        critic_turns = [t for t in view.turns if t.role == "critic" and t.round < view.round]
        claims: list[Claim] = []
        if not critic_turns:
            for f in fresh[:OPENING_CITES]:
                claims.append(Claim(text=_support_text(f), evidence_ids=[f.eid]))
            if not claims:
                claims.append(Claim(text="No retrieved item supports the hypothesis directly; it rests on its "
                                         "stated mechanism alone.", evidence_ids=[]))
            lead = "Opening case"
        else:
            latest = max(critic_turns, key=lambda t: t.round)
            objections = latest.reply.claims
            for obj in objections:
                if not fresh:
                    break
                f = fresh.pop(0)
                claims.append(Claim(text=f"Against \"{obj.text}\": {_support_text(f)}", evidence_ids=[f.eid]))
            if len(claims) < len(objections) or not objections:
                # Stable text, so a round that adds nothing is recognisably the same as before.
                claims.append(Claim(
                    text="No supporting evidence remains uncited; the case rests on "
                         f"{_fmt_ids([*cited_before, *(c.evidence_ids[0] for c in claims)])}.",
                    evidence_ids=[]))
            lead = f"Answering the critic's {len(objections)} latest objection(s)"
        cited_now = [e for c in claims for e in c.evidence_ids]
        argument = (
            f"{lead} for \"{case.h.title}\": {len(case.support)} of {len(case.items)} retrieved items support it; "
            f"target coverage {case.coverage:.2f}"
            + (f" (no item names {', '.join(case.missing)})" if case.missing else "")
            + f"; best stage on target {STAGE_NAMES[case.best_stage]}; "
            f"new citations this round: {_fmt_ids(cited_now)}."
        )
        reply = ProposerReply(argument=argument, claims=claims)
        user = "\n".join([*case.header(view), f"Previously cited by the proposer: {_fmt_ids(cited_before)}.",
                          "Critic's latest objections: " + (
                              " | ".join(c.text for c in max(critic_turns, key=lambda t: t.round).reply.claims)
                              if critic_turns else "(none yet)")])
        return _result("proposer", reply, user, started, t0)

    # -- critic

    def _objections(self, case: _Case, view: DebateView) -> list[Claim]:
        out: list[Claim] = [Claim(text=_contra_text(f), evidence_ids=[f.eid]) for f in case.contra]
        for t in case.missing:
            out.append(Claim(text=f"No retrieved evidence mentions {t}.", evidence_ids=[]))
        if len(case.relevant) < THIN_EVIDENCE:
            rel = [f.eid for f in case.relevant]
            out.append(Claim(text=f"Thin evidence: only {len(rel)} of {len(case.items)} retrieved items name the "
                                  "targets or mechanisms.", evidence_ids=rel))
        if case.best_stage < 2:
            out.append(Claim(text="No retrieved evidence shows the targets tested in patients (best stage: "
                                  f"{STAGE_NAMES[case.best_stage]}).", evidence_ids=[]))
        p_cited = dict.fromkeys(e for t in view.turns if t.role == "proposer" and t.round <= view.round
                                for c in t.reply.claims for e in c.evidence_ids)
        invalid = [e for e in p_cited if e not in case.by_id]
        if invalid:
            out.append(Claim(text=f"The proposer cites {_fmt_ids(invalid)}, which name no retrieved evidence.",
                             evidence_ids=[]))
        off = [e for e in p_cited if e in case.by_id and not case.by_id[e].relevant]
        if off:
            out.append(Claim(text=f"{_fmt_ids(off)}, cited by the proposer, name none of the targets or "
                                  "mechanisms.", evidence_ids=off))
        return out

    async def critique(self, view: DebateView) -> AgentResult:
        """Objections from contrary or missing evidence; concedes when nothing new is left to say."""
        started, t0 = datetime.now(UTC), time.perf_counter()
        case = _Case(view)
        made = {c.text for t in view.turns if t.role == "critic" and t.round < view.round for c in t.reply.claims}
        pending = [c for c in self._objections(case, view) if c.text not in made]
        claims = pending[:OBJECTIONS_PER_ROUND]
        concede = not claims
        latest = [t for t in view.turns if t.role == "proposer" and t.round == view.round]
        p_ids = [e for t in latest for c in t.reply.claims for e in c.evidence_ids]
        stats = (f"{len(case.contra)} of {len(case.items)} items report failures, halts or safety signals; "
                 f"{len(case.missing)} target(s) have no evidence; {len(case.relevant)} items are relevant")
        if concede:
            argument = (f"No objection remains that has not already been made ({len(made)} raised before); "
                        f"{stats}. The critic concedes.")
        else:
            argument = (f"{len(claims)} new objection(s) to \"{case.h.title}\" "
                        f"({len(pending) - len(claims)} more held back): {stats}. The proposer's latest turn "
                        f"cites {_fmt_ids(p_ids)}.")
        reply = CriticReply(argument=argument, claims=claims, concede=concede)
        user = "\n".join([*case.header(view), f"Proposer's latest citations: {_fmt_ids(p_ids)}.",
                          f"Objections already made: {len(made)}."])
        return _result("critic", reply, user, started, t0)

    # -- judge

    async def judge(self, view: DebateView, seat: JudgeSeat) -> AgentResult:
        """Ten dimension scores from named features and the debate's citations, weighed by the seat's persona."""
        started, t0 = datetime.now(UTC), time.perf_counter()
        case = _Case(view)
        inputs = _judge_inputs(case, view)
        scores, terms = judge_scores(inputs.values, seat, view.hypothesis.id)
        cbias, cmodel = CONFIDENCE_MODEL
        confidence = round(_clip(cbias + sum(w * inputs.values[f] for f, w in cmodel), *CONFIDENCE_RANGE), 4)
        reply = JudgeReply(scores=DimensionScores(**scores), confidence=confidence,
                           rationale=self._rationale(seat, scores, terms, inputs))
        order = "critic shown first" if seat.critic_first else "proposer shown first"
        sides = ("critic", "proposer") if seat.critic_first else ("proposer", "critic")
        history = []
        for rnd in sorted({t.round for t in view.turns}):
            for role in sides:
                for t in view.turns:
                    if t.round == rnd and t.role == role:
                        ids = [e for c in t.reply.claims for e in c.evidence_ids]
                        history.append(f"Round {rnd} {role}: {len(t.reply.claims)} claim(s), cites {_fmt_ids(ids)}")
        feats = " ".join(f"{k}={v:.2f}" for k, v in inputs.values.items())
        user = "\n".join([
            f"Seat {seat.seat}: {seat.persona}; emphasis: {', '.join(seat.emphasis)}; {order} "
            "(order does not affect these scores).",
            *case.header(view), *history, f"Judge features: {feats}",
        ])
        return _result("judge", reply, user, started, t0)

    def _rationale(self, seat: JudgeSeat, scores: dict[str, float], terms: dict[str, list[tuple[str, float]]],
                   inputs: _JudgeInputs) -> str:
        # Discuss the dimensions that move the weighted overall most: weight x distance from the midpoint.
        w = self.rubric.weights
        top = sorted(DIMENSIONS, key=lambda d: (-w[d] * abs(scores[d] - 0.5), DIMENSIONS.index(d)))[:3]
        parts = []
        for d in top:
            drivers = sorted((t for t in terms[d] if t[1] != 0), key=lambda t: (-abs(t[1]), t[0]))[:2]
            said = "; ".join(
                f"{feat} {'+' if c > 0 else '-'}{abs(c):.2f}"
                + (f" ({_fmt_ids(inputs.ids.get(feat, ()))})" if inputs.ids.get(feat) else "")
                for feat, c in drivers
            ) or "no feature moved it from its base"
            parts.append(f"{d} {scores[d]:.2f}: {said}")
        emph = [d for d in DIMENSIONS if d in seat.emphasis]
        return (f"Seat {seat.seat} ({seat.persona}) judges {', '.join(emph) or 'no dimension'} strictly. "
                + ". ".join(parts) + ".")

