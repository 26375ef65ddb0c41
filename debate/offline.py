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
``failed``          failed/fails, trial/clinical/late-stage failure(s) (not "mitochondrial" or
                    "respiratory failure"), did not meet, not met, missed its endpoint, no
                    benefit, no (significant) difference, futility, did not
                    confirm/show/slow/improve, negative trial/results, lack of efficacy,
                    ineffective
``halted``          halted, discontinued, terminated, withdrawn, stopped, suspended, abandoned,
                    shelved, paused
``safety_signal``   toxicity, hepato-/neuro-/cardiotoxic, adverse, ARIA, liver, transaminase,
                    death(s)/died/fatal (not "cell/neuron death"), serious, worsening, black
                    box/boxed warning, edema, hemorrhage, microbleeds, myelitis, meningitis,
                    seizures, suicidality, intracranial pressure; not when negated ("no serious
                    adverse events", "without toxicity")
``efficacy``        slows, reduces, lowers/lowered (not "lowering", which names an approach),
                    extends survival, survival gain, improves, benefit, efficacy, positive,
                    protects, rescues, delays, "less ... decline"; not when negated ("no
                    benefit") and never in a segment that also reports a failure
``drug_modality``   antibody (incl. ``-mab``), antisense (ASO, oligonucleotide, siRNA, ``-rsen``),
                    small molecule, inhibitor (incl. ``-nib``), gene therapy (AAV), agonist or
                    antagonist
==================  ===========================================================================

Two guards keep disease biology from reading as drug outcomes: a segment labelled with a
biology key (``Mechanism:``, ``Pathology:``, ``Genetics:``, ... see :data:`BIOLOGY_KEYS`) sets no
``failed``, ``halted``, ``safety_signal`` or ``efficacy`` ("toxicity is a gain of function" is
not a safety finding), and items under navigation headings (See Also, External Links,
References) carry no features at all.

Relative to the hypothesis, per item:

* ``target_hit``: the item names a target symbol (or a listed alias, e.g. TDP-43 for TARDBP),
  on symbol boundaries, case-insensitively, except that an all-letter symbol of four letters or
  fewer (``APP``, ``FUS``) written all in lower case is taken for an English word ("app"); a
  symbol ending in a letter also matches with one allele digit (``APOE4``, ``ApoE4``).
* ``mechanism_hit`` / ``disease_hit``: every content word of a mechanism (or disease, or one of
  its aliases: ALS = amyotrophic lateral sclerosis, AD = Alzheimer's, ...) occurs in the item,
  words compared on their first six letters ("aggregation" matches "aggregates").
* ``title_overlap``: the share of the title's content words found the same way.
* *Scope*: in an item that names a target, the stage and outcome flags above are read only from
  segments that name a target or name no gene at all; a segment that names only another gene
  (a letter+digit symbol, or the ``X`` of an infobox ``Target X:`` row) is about that gene and
  left out. In an item without a target hit, every segment counts.
* ``stage``: approved 4 > late_trial 3 > mid_trial 2 > early 1 > none 0, from scoped flags.

An item is *relevant* when it hits a target or a mechanism (or, for a hypothesis naming
neither, when it holds at least half the title's words; with no targets, "on target" below
reads as "relevant"). A relevant item is *supporting* unless its only news is bad (a failure,
halt or safety signal, with no approval, efficacy or trial stage free of failure and halt), and
*contrary* when it reports a failure, a halt or a safety signal. Aggregates: target coverage
(share of targets named in any item), mechanism coverage, best stage reached on target.

Features are computed once per distinct text (an LRU cache keyed on the text and facts) and
once per (hypothesis, evidence set); the regexes are compiled at import, split into their
alternatives, and each alternative only runs on text holding a literal it requires.

The agents
----------

* Proposer: round 1 cites the :data:`OPENING_CITES` strongest supporting items, one claim
  each (strength: on target, approval, efficacy, trial progress, modality, mechanism, title
  words); later rounds answer each of the critic's latest objections with a supporting item not
  cited yet, preferring one that brings what the objection says is wanting (success against a
  failure, a clean on-target item against a safety signal), and say so, citing nothing, when
  none is left.
* Critic: objections, most severe first: contrary items (citing them), then, citing nothing,
  targets no item names ("No retrieved evidence mentions X."), thin evidence (fewer than
  :data:`THIN_EVIDENCE` relevant items, citing those), mechanisms no item describes, no
  clinical stage on target (or, past Phase 2, no approval or Phase 3 that held up), and proposer
  citations that are invalid or off-topic. Each round it raises at most
  :data:`OBJECTIONS_PER_ROUND` objections whose text it has not used before, and concedes
  (``concede=True``) when none is left, including when there never were any.
* Judge: see below. Its reply carries the ten dimension scores, a confidence and a rationale
  naming the features (and evidence ids) that moved the dimensions weighing most in the
  rubric; never an overall score, which the engine computes with ``weighted_score``.

Judge dimensions
----------------

Each dimension is ``clip(base + sum(weight * feature) + perspective)`` over the judge features
of :data:`JUDGE_FEATURES` (each in [0, 1]; the ``*_cited*`` ones read what each side cited, the
rest read the evidence), as :data:`DIMENSION_MODEL` lists them:

* ``mechanistic_plausibility`` = 0.25 + 0.25 mechanism_coverage + 0.20 coverage + 0.15 efficacy
  + 0.10 stage - 0.10 failed
* ``evidence_strength`` = 0.20 + 0.30 cited_support + 0.20 approved_cited + 0.10 late_cited
  + 0.10 efficacy - 0.25 failed_cited_by_critic - 0.10 halted_cited_by_critic
  - 0.15 invalid_citations
* ``novelty`` = 0.80 - 0.35 approved - 0.20 stage
* ``feasibility`` = 0.25 + 0.30 stage + 0.20 modality_on_target + 0.10 coverage - 0.10 halted
  - 0.05 safety
* ``therapeutic_potential`` = 0.30 + 0.20 efficacy + 0.20 approved + 0.10 disease_match
  - 0.25 failed - 0.05 halted
* ``druggability`` = 0.20 + 0.40 modality_on_target + 0.15 approved + 0.15 stage
  + 0.05 modality_any
* ``safety`` = 0.70 + 0.15 stage - 0.35 safety - 0.15 safety_cited_by_critic - 0.10 halted
* ``competitive_landscape`` = 0.80 - 0.40 approved - 0.15 late_active - 0.10 stage
* ``data_availability`` = 0.15 + 0.45 evidence_amount + 0.30 coverage + 0.10 pages_supporting
* ``reproducibility`` = 0.20 + 0.40 pages_supporting + 0.15 efficacy + 0.10 late_cited
  - 0.15 contested - 0.10 failed

``confidence`` = clip(0.25 + 0.45 evidence_amount + 0.15 coverage + 0.10 pages_supporting
- 0.10 contested) to [0.05, 0.95].

Persona: on the seat's emphasised dimensions every penalty weighs :data:`EMPHASIS_PENALTY` times
and every bonus :data:`EMPHASIS_BONUS` times (the expert is the hardest to convince in their own
field, so emphasised dimensions lean toward the critic's points). Each seat also adds a fixed
perspective offset of at most :data:`PERSPECTIVE` per dimension, from a hash of seat number,
persona, hypothesis id and dimension, so judges differ a little but agree broadly. Scores are
computed from sets of cited ids and never from the order the sides are shown in
(``critic_first``), which only position-biased models are sensitive to.
"""

from __future__ import annotations

import hashlib
import json
import re
import re._constants as _sre_constants
import re._parser as _sre_parser
import time
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property, lru_cache
from typing import Any

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
    "DIMENSION_MODEL",
    "JUDGE_FEATURES",
    "MODEL",
    "RULES_HASH",
    "RULES_VERSION",
    "EvidenceFeatures",
    "OfflineBackend",
    "describe_model",
    "evidence_features",
    "judge_scores",
]

MODEL = "offline-heuristic-v1"
# Bump when the code that applies the tables changes; the tables themselves are hashed.
RULES_VERSION = "offline-heuristic rules v1"

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

STAGE_BY_FLAG: tuple[tuple[str, int], ...] = (
    ("approved", 4), ("late_trial", 3), ("mid_trial", 2), ("early", 1))
STAGE_NAMES: dict[int, str] = {
    4: "approved", 3: "Phase 3", 2: "Phase 2", 1: "preclinical/Phase 1", 0: "none"}
FLAG_ORDER = ("approved", "late_trial", "mid_trial", "early", "failed", "halted", "safety_signal",
              "efficacy")

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
    "mechanistic_plausibility": (0.25, (
        ("mechanism_coverage", 0.25), ("coverage", 0.20), ("efficacy", 0.15), ("stage", 0.10),
        ("failed", -0.10))),
    "evidence_strength": (0.20, (
        ("cited_support", 0.30), ("approved_cited", 0.20), ("late_cited", 0.10), ("efficacy", 0.10),
        ("failed_cited_by_critic", -0.25), ("halted_cited_by_critic", -0.10),
        ("invalid_citations", -0.15))),
    "novelty": (0.80, (("approved", -0.35), ("stage", -0.20))),
    "feasibility": (0.25, (
        ("stage", 0.30), ("modality_on_target", 0.20), ("coverage", 0.10), ("halted", -0.10),
        ("safety", -0.05))),
    "therapeutic_potential": (0.30, (
        ("efficacy", 0.20), ("approved", 0.20), ("disease_match", 0.10), ("failed", -0.25),
        ("halted", -0.05))),
    "druggability": (0.20, (
        ("modality_on_target", 0.40), ("approved", 0.15), ("stage", 0.15), ("modality_any", 0.05))),
    "safety": (0.70, (
        ("stage", 0.15), ("safety", -0.35), ("safety_cited_by_critic", -0.15), ("halted", -0.10))),
    "competitive_landscape": (0.80, (
        ("approved", -0.40), ("late_active", -0.15), ("stage", -0.10))),
    "data_availability": (0.15, (
        ("evidence_amount", 0.45), ("coverage", 0.30), ("pages_supporting", 0.10))),
    "reproducibility": (0.20, (
        ("pages_supporting", 0.40), ("efficacy", 0.15), ("late_cited", 0.10), ("contested", -0.15),
        ("failed", -0.10))),
}
assert tuple(DIMENSION_MODEL) == DIMENSIONS
assert all(f in JUDGE_FEATURES for _, terms in DIMENSION_MODEL.values() for f, _ in terms)

# confidence = clip(base + sum(weight * feature), *CONFIDENCE_RANGE)
CONFIDENCE_MODEL: tuple[float, tuple[tuple[str, float], ...]] = (0.25, (
    ("evidence_amount", 0.45), ("coverage", 0.15), ("pages_supporting", 0.10),
    ("contested", -0.10)))
CONFIDENCE_RANGE = (0.05, 0.95)

EMPHASIS_PENALTY = 1.3
EMPHASIS_BONUS = 0.9
PERSPECTIVE = 0.04


def describe_model() -> list[str]:
    """:data:`DIMENSION_MODEL` as formulas, one line per dimension (the module docstring's list)."""
    return [
        f"{d} = {base:.2f} "
        + " ".join(f"{'+' if w >= 0 else '-'} {abs(w):.2f} {f}" for f, w in terms)
        for d, (base, terms) in DIMENSION_MODEL.items()
    ]


def _rules_hash() -> str:
    tables = {
        "flags": FLAG_PATTERNS, "negations": NEGATIONS, "approval_lost": APPROVAL_LOST,
        "biology_keys": sorted(BIOLOGY_KEYS), "navigation": sorted(NAVIGATION_HEADINGS),
        "modalities": MODALITY_PATTERNS, "target_aliases": TARGET_ALIASES,
        "disease_aliases": DISEASE_ALIASES, "stopwords": sorted(STOPWORDS), "stages": STAGE_BY_FLAG,
        "opening": OPENING_CITES, "objections": OBJECTIONS_PER_ROUND, "thin": THIN_EVIDENCE,
        "features": JUDGE_FEATURES, "dimensions": DIMENSION_MODEL,
        "confidence": [CONFIDENCE_MODEL, CONFIDENCE_RANGE],
        "emphasis": [EMPHASIS_PENALTY, EMPHASIS_BONUS], "perspective": PERSPECTIVE,
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
             f"dimensions weigh penalties x{EMPHASIS_PENALTY} and bonuses x{EMPHASIS_BONUS}; a "
             f"fixed per-seat perspective of at most ±{PERSPECTIVE}; side order is ignored.",
}

# ---------------------------------------------------------------- compiled rules


def _alternatives(pattern: str) -> list[str]:
    """The top-level ``|`` alternatives of a regex source."""
    out: list[str] = []
    depth, in_class, escaped, start = 0, False, False, 0
    for i, ch in enumerate(pattern):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            out.append(pattern[start:i])
            start = i + 1
    out.append(pattern[start:])
    return out


def _required(parsed: Any) -> frozenset[str] | None:
    """Strings one of which every match of a parsed regex contains (None when none is certain)."""
    c = _sre_constants
    candidates: list[frozenset[str]] = []
    run: list[str] = []
    for op, av in parsed:
        if op is c.LITERAL:
            run.append(chr(av))
            continue
        if run:
            candidates.append(frozenset({"".join(run)}))
            run = []
        req: frozenset[str] | None = None
        if op is c.SUBPATTERN:
            req = _required(av[-1])
        elif op is c.BRANCH:
            alts = [_required(b) for b in av[1]]
            if all(x is not None for x in alts):
                req = frozenset().union(*alts)  # type: ignore[arg-type]
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT) and av[0] >= 1:
            req = _required(av[2])
        if req:
            candidates.append(req)
    if run:
        candidates.append(frozenset({"".join(run)}))
    # The most selective requirement: the longest shortest string, then the fewest strings.
    return max(candidates, key=lambda r: (min(map(len, r)), -len(r))) if candidates else None


def _triggers(alternative: str) -> tuple[str, ...] | None:
    try:
        req = _required(_sre_parser.parse(alternative))
    except Exception:  # an unexpected regex shape only costs speed: the rule then always runs
        return None
    return tuple(sorted(req)) if req and all(req) else None


@dataclass(frozen=True, slots=True)
class _Rule:
    """One alternative of a table regex, tried only on text holding one of its trigger strings."""

    name: str  # a flag, "neg:<flag>", "lost" or "mod:<modality>"
    rx: re.Pattern[str]
    triggers: tuple[str, ...] | None
    boundary: bool  # the source began with \b, checked by hand so the engine can seek the prefix

    def fires(self, text: str) -> bool:
        return self.triggers is None or any(map(text.__contains__, self.triggers))

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        for m in self.rx.finditer(text):
            i = m.start()
            if self.boundary and i and (text[i - 1].isalnum() or text[i - 1] == "_"):
                continue
            yield m

    def blank(self, text: str) -> str:
        """``text`` with every match replaced by spaces (same length, so offsets stay valid)."""
        spans = [(m.start(), m.end()) for m in self.finditer(text)]
        if not spans:
            return text
        parts: list[str] = []
        last = 0
        for a, b in spans:
            parts += [text[last:a], " " * (b - a)]
            last = b
        parts.append(text[last:])
        return "".join(parts)


def _rules(name: str, pattern: str) -> list[_Rule]:
    out = []
    for alt in _alternatives(pattern):
        # A leading \b hides a literal prefix from the regex engine's fast scan: check it by hand.
        boundary = alt.startswith("\\b") and not alt.startswith(("\\b\\", "\\b["))
        out.append(_Rule(name, re.compile(alt[2:] if boundary else alt), _triggers(alt), boundary))
    return out


# Each table regex is split into its alternatives and each is tried only where a literal that it
# cannot match without occurs (found by parsing it): substring tests replace most regex scans.
_FLAG_RULES = [r for k, v in FLAG_PATTERNS.items() for r in _rules(k, v)]
_NEG_RULES = {k: _rules(f"neg:{k}", v) for k, v in NEGATIONS.items()}
_LOST_RULES = _rules("lost", APPROVAL_LOST)
_MODALITY_RULES = [r for k, v in MODALITY_PATTERNS.items() for r in _rules(f"mod:{k}", v)]

_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
_BULLET = re.compile(r"^\s*[-*•]\s+")
_WORD = re.compile(r"[a-z0-9]+")
# Gene-like words, used only to tell which gene a segment is about: a letter first, then a digit.
_GENE_WORD = re.compile(r"(?<![a-z0-9])[a-z][a-z0-9]*\d[a-z0-9]*")
_NOT_GENES = frozenset({"AAV1", "AAV2", "AAV5", "AAV9", "AU8", "MCI186"})
_LABEL = re.compile(r"^([a-z][a-z /-]{0,30}):\s")
_INFOBOX_TARGET = re.compile(r"^target[ \t]+([a-z0-9-]+)[ \t]*:")
_OUTCOME_FLAGS = frozenset({"failed", "halted", "safety_signal", "efficacy"})


# ---------------------------------------------------------------- per-text profile


@dataclass(frozen=True, slots=True)
class _Profile:
    """What an item's text says, segment by segment (segment i starts at ``starts[i]``)."""

    text: str  # the segments joined by newlines, original case (short symbols are case-sensitive)
    starts: tuple[int, ...]
    flags: tuple[frozenset[str], ...]
    modalities: tuple[tuple[str, ...], ...]
    safety_terms: tuple[tuple[str, ...], ...]
    genes: tuple[frozenset[str], ...]
    words: frozenset[str]  # lower-case words plus their 4-, 5- and 6-letter prefixes


_EMPTY = _Profile("", (), (), (), (), (), frozenset())


def _offsets(pieces: list[str]) -> tuple[int, ...]:
    out, pos = [], 0
    for p in pieces:
        out.append(pos)
        pos += len(p) + 1
    return tuple(out)


def _segments(text: str, facts: tuple[tuple[str, str], ...]) -> list[str]:
    pieces: list[str] = []
    for line in text.splitlines():
        line = _BULLET.sub("", line).strip()
        if line:
            pieces.extend(s for s in _SENTENCE_SPLIT.split(line) if s)
    present = {p.casefold() for p in pieces}
    for key, value in facts:
        fact = f"{key}: {value}".strip()
        if value and fact.casefold() not in present:
            pieces.append(fact)
            present.add(fact.casefold())
    return pieces


@lru_cache(maxsize=8192)
def _profile(text: str, facts: tuple[tuple[str, str], ...]) -> _Profile:
    """The hypothesis-independent reading of one item (cached on its text and facts)."""
    pieces = _segments(text, facts)
    if not pieces:
        return _EMPTY
    # Matches run over the whole item and are mapped back to segments by offset. lower() can
    # change a string's length, so the lower-case text keeps its own offsets.
    low_pieces = [p.lower() for p in pieces]
    low, low_starts = "\n".join(low_pieces), _offsets(low_pieces)
    n = len(pieces)

    def seg(pos: int) -> int:
        return bisect_right(low_starts, pos) - 1

    variants: dict[str, str] = {}
    for flag, rules in _NEG_RULES.items():
        variant = low
        for rule in rules:
            if rule.fires(variant):
                variant = rule.blank(variant)
        variants[flag] = variant
    flags: list[set[str]] = [set() for _ in range(n)]
    safety: list[dict[str, None]] = [{} for _ in range(n)]
    lost: set[int] = set()
    for rule in _FLAG_RULES:
        source = variants.get(rule.name, low)
        if not rule.fires(source):
            continue
        for m in rule.finditer(source):
            i = seg(m.start())
            flags[i].add(rule.name)
            if rule.name == "halted" and m.group(0).startswith("withdr"):
                lost.add(i)
            elif rule.name == "safety_signal":
                safety[i][m.group(0)] = None
    for rule in _LOST_RULES:
        if rule.fires(low):
            lost.update(seg(m.start()) for m in rule.finditer(low))
    modalities: list[dict[str, None]] = [{} for _ in range(n)]
    for rule in _MODALITY_RULES:
        if rule.fires(low):
            for m in rule.finditer(low):
                modalities[seg(m.start())][rule.name[4:]] = None
    genes: list[set[str]] = [set() for _ in range(n)]
    for m in _GENE_WORD.finditer(low):
        g = m.group(0).upper()
        if not g.startswith("NCT") and g not in _NOT_GENES:
            genes[seg(m.start())].add(g)
    for i, piece in enumerate(low_pieces):
        f = flags[i]
        if i in lost:
            f.discard("approved")
        # "did not confirm an early report of slower progression" reports no efficacy.
        if "failed" in f:
            f.discard("efficacy")
        label = _LABEL.match(piece)
        if label and label.group(1).strip() in BIOLOGY_KEYS:
            f -= _OUTCOME_FLAGS
        if "safety_signal" not in f:
            safety[i].clear()
        row = _INFOBOX_TARGET.match(piece)
        if row:
            genes[i].add(row.group(1).upper())
    words = set(_WORD.findall(low))
    words.update([w[:k] for w in words for k in (4, 5, 6) if len(w) > k])
    return _Profile(
        text="\n".join(pieces), starts=_offsets(pieces), flags=tuple(frozenset(f) for f in flags),
        modalities=tuple(tuple(m) for m in modalities),
        safety_terms=tuple(tuple(s)[:3] for s in safety),
        genes=tuple(frozenset(g) for g in genes), words=frozenset(words),
    )


def _stems(phrase: str) -> tuple[str, ...]:
    """Content words as match keys: whole words under 4 letters, else their first 6 letters."""
    low = phrase.lower()
    words = [w for w in _WORD.findall(low) if w not in STOPWORDS and (len(w) > 1 or w.isdigit())]
    if not words:  # "disease" alone: keep what there is
        words = _WORD.findall(low)
    return tuple(w if len(w) < 4 else w[:6] for w in words)


# ---------------------------------------------------------------- hypothesis terms


# Compared by identity: instances come from the cached _terms() and serve as cache keys.
@dataclass(frozen=True, slots=True, eq=False)
class _Terms:
    targets: tuple[str, ...]
    target_re: re.Pattern[str] | None
    target_group: dict[str, str]  # regex group name -> target symbol
    target_keys: frozenset[str]  # upper-case symbols and aliases: genes that are ours
    mechanisms: tuple[tuple[str, tuple[str, ...]], ...]
    diseases: tuple[tuple[tuple[str, ...], ...], ...]  # per disease: stem tuples of its names
    title: tuple[str, ...]


def _target_pattern(symbol: str) -> str:
    allele = r"\d?" if symbol[-1:].isalpha() else ""
    body = f"(?i:{re.escape(symbol)}{allele})"
    if symbol.isalpha() and len(symbol) <= 4:
        # A short all-letter symbol written all in lower case is an English word ("app", "rest").
        body = f"(?![a-z]+(?![A-Za-z0-9])){body}"
    return rf"(?<![A-Za-z0-9]){body}(?![A-Za-z0-9])"


@lru_cache(maxsize=1024)
def _terms(targets: tuple[str, ...], mechanisms: tuple[str, ...], diseases: tuple[str, ...],
           title: str) -> _Terms:
    alts: list[str] = []
    group: dict[str, str] = {}
    keys: set[str] = set()
    for t in targets:
        patterns = [_target_pattern(t)] + [
            rf"(?<![A-Za-z0-9])(?i:{re.escape(a)})(?![A-Za-z0-9])"
            for a in TARGET_ALIASES.get(t.upper(), ())
        ]
        for p in patterns:
            name = f"t{len(group)}"
            alts.append(f"(?P<{name}>{p})")
            group[name] = t
        keys.add(t.upper())
        keys.update(a.upper() for a in TARGET_ALIASES.get(t.upper(), ()))
    disease_alts: list[tuple[tuple[str, ...], ...]] = []
    for d in diseases:
        names = [d]
        key = " ".join(_WORD.findall(d.lower()))
        for names_of in DISEASE_ALIASES:
            if any(" ".join(_WORD.findall(g)) == key for g in names_of):
                names.extend(names_of)
        disease_alts.append(tuple(dict.fromkeys(_stems(x) for x in names)))
    return _Terms(
        targets=targets, target_re=re.compile("|".join(alts)) if alts else None,
        target_group=group, target_keys=frozenset(keys),
        mechanisms=tuple((m, _stems(m)) for m in mechanisms), diseases=tuple(disease_alts),
        title=tuple(dict.fromkeys(s for s in _stems(title) if len(s) >= 4)),
    )


# ---------------------------------------------------------------- per-item features


@dataclass(frozen=True)  # no slots: the derived properties are cached on the instance
class EvidenceFeatures:
    """The named features of one evidence item relative to one hypothesis (module docstring)."""

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
    title_match: bool = False  # title relevance, for hypotheses naming no targets or mechanisms

    @cached_property
    def on_target(self) -> bool:
        return bool(self.targets_hit)

    @cached_property
    def relevant(self) -> bool:
        return bool(self.targets_hit or self.mechanism_hits or self.title_match)

    @cached_property
    def bad_news(self) -> bool:
        return "failed" in self.flags or "halted" in self.flags

    @cached_property
    def good_news(self) -> bool:
        f = self.flags
        return bool("approved" in f or "efficacy" in f or (self.stage and not self.bad_news))

    @cached_property
    def supporting(self) -> bool:
        return self.relevant and (self.good_news
                                  or not (self.bad_news or "safety_signal" in self.flags))

    @cached_property
    def contrary(self) -> bool:
        return self.relevant and (self.bad_news or "safety_signal" in self.flags)

    @cached_property
    def strength(self) -> int:
        """The proposer's ordering key (an integer, so ties fall back to evidence order)."""
        f, bad = self.flags, self.bad_news
        return (4 * self.on_target + 2 * bool(self.mechanism_hits) + 4 * ("approved" in f)
                + 2 * ("late_trial" in f and not bad) + ("mid_trial" in f and not bad)
                + 2 * ("efficacy" in f) + bool(self.modalities) + self.disease_hit
                + round(2 * self.title_overlap) - 2 * bad)

    @cached_property
    def severity(self) -> int:
        """The critic's ordering key."""
        f = self.flags
        return (4 * ("failed" in f) + 3 * ("halted" in f) + 2 * ("safety_signal" in f)
                + 2 * self.on_target + ("late_trial" in f))

    def where(self) -> str:
        return f"{self.page_slug} › {self.heading}" if self.heading else self.page_slug

    def summary(self) -> str:
        """The features on one line, as the agents' user messages list them."""
        flags = ",".join(f for f in FLAG_ORDER if f in self.flags) or "-"
        return (
            f"{self.eid} [{self.where()}] targets={','.join(self.targets_hit) or '-'} "
            f"mechanisms={','.join(self.mechanism_hits) or '-'} "
            f"disease={'yes' if self.disease_hit else 'no'} title_overlap={self.title_overlap:.2f} "
            f"stage={STAGE_NAMES[self.stage]} flags={flags} "
            f"modality={','.join(self.modalities) or '-'}"
        )


@lru_cache(maxsize=16384)
def _features(eid: str, page_slug: str, heading: str, text: str,
              facts: tuple[tuple[str, str], ...], terms: _Terms) -> EvidenceFeatures:
    navigation = heading.strip().casefold() in NAVIGATION_HEADINGS
    prof = _EMPTY if navigation else _profile(text, facts)
    hit: set[str] = set()
    hit_segments: set[int] = set()
    if terms.target_re is not None:
        for m in terms.target_re.finditer(prof.text):
            hit.add(terms.target_group[m.lastgroup or ""])
            hit_segments.add(bisect_right(prof.starts, m.start()) - 1)
    # A segment naming another gene, and none of ours, says nothing about our targets.
    scoped = [i for i in range(len(prof.starts))
              if not hit or i in hit_segments or not (prof.genes[i] - terms.target_keys)]
    flags: set[str] = set()
    modalities: dict[str, None] = {}
    safety: dict[str, None] = {}
    for i in scoped:
        flags |= prof.flags[i]
        modalities.update(dict.fromkeys(prof.modalities[i]))
        safety.update(dict.fromkeys(prof.safety_terms[i]))
    words = prof.words
    mech = tuple(m for m, stems in terms.mechanisms if stems and all(s in words for s in stems))
    disease = any(stems and all(s in words for s in stems)
                  for names in terms.diseases for stems in names)
    overlap = sum(s in words for s in terms.title) / len(terms.title) if terms.title else 0.0
    return EvidenceFeatures(
        eid=eid, page_slug=page_slug, heading=heading,
        targets_hit=tuple(t for t in terms.targets if t in hit), mechanism_hits=mech,
        disease_hit=disease, title_overlap=round(overlap, 2), flags=frozenset(flags),
        modalities=tuple(modalities), safety_terms=tuple(safety)[:3],
        stage=next((n for flag, n in STAGE_BY_FLAG if flag in flags), 0),
        title_match=not terms.targets and not terms.mechanisms and overlap >= 0.5,
    )


def _facts_key(item: EvidenceItem) -> tuple[tuple[str, str], ...]:
    return tuple((f.get("key", ""), f.get("value", "")) for f in item.facts) if item.facts else ()


def evidence_features(item: EvidenceItem, hypothesis: HypothesisOut) -> EvidenceFeatures:
    """The features of ``item`` relative to ``hypothesis`` (pure; cached on the inputs)."""
    h = hypothesis
    terms = _terms(tuple(h.targets), tuple(h.mechanisms), tuple(h.diseases), h.title)
    heading = item.heading_path[-1] if item.heading_path else ""
    return _features(item.eid, item.page_slug, heading, item.text, _facts_key(item), terms)


# ---------------------------------------------------------------- the case both sides argue


def _fmt_ids(ids: list[str] | tuple[str, ...]) -> str:
    return ", ".join(ids) if ids else "none"


def _frac(n: float, d: float) -> float:
    return min(1.0, n / d) if d else 0.0


_Hyp = tuple[str, str, tuple[str, ...], tuple[str, ...], tuple[str, ...]]
_Evidence = tuple[tuple[str, str, str, str, tuple[tuple[str, str], ...]], ...]


class _Case:
    """Every item's features and the turn-independent aggregates for a hypothesis and its evidence.

    Built once per distinct pair (see :func:`_case`), then shared read-only by every agent call.
    """

    def __init__(self, hyp: _Hyp, evidence: _Evidence) -> None:
        self.hid, self.title, targets, mechanisms, diseases = hyp
        terms = _terms(targets, mechanisms, diseases, self.title)
        self.items = [_features(*e, terms) for e in evidence]
        self.by_id = {f.eid: f for f in self.items}
        self.order = {f.eid: i for i, f in enumerate(self.items)}
        self.relevant = [f for f in self.items if f.relevant]
        # Without targets, "on target" means relevant.
        self.on_target = [f for f in self.items if f.on_target] if targets else self.relevant
        covered = {t for f in self.items for t in f.targets_hit}
        described = {m for f in self.items for m in f.mechanism_hits}
        self.missing = [t for t in targets if t not in covered]
        self.missing_mechanisms = [m for m in mechanisms if m not in described]
        self.mechanism_coverage = _frac(len(described), len(mechanisms))
        self.coverage = _frac(len(covered), len(targets)) if targets else self.mechanism_coverage
        self.best_stage = max((f.stage for f in self.on_target), default=0)
        self.support = sorted((f for f in self.items if f.supporting),
                              key=lambda f: (-f.strength, self.order[f.eid]))
        self.contra = sorted((f for f in self.items if f.contrary),
                             key=lambda f: (-f.severity, self.order[f.eid]))
        self.lines = (
            f"Hypothesis {self.hid}: {self.title}",
            f"Targets: {', '.join(targets) or '(none)'} | "
            f"Diseases: {', '.join(diseases) or '(none)'} | "
            f"Mechanisms: {', '.join(mechanisms) or '(none)'}",
            f"Evidence: {len(self.items)} items, {len(self.relevant)} relevant, "
            f"{len({f.page_slug for f in self.items})} pages; target coverage {self.coverage:.2f} "
            f"(missing: {', '.join(self.missing) or 'none'}); "
            f"best stage on target: {STAGE_NAMES[self.best_stage]}.",
            *(f.summary() for f in self.items),
        )
        self.objections = self._standing_objections()
        self.values, self.ids = self._judge_features(bool(targets))

    def header(self, view: DebateView) -> list[str]:
        return [f"Round {view.round} of {view.max_rounds}.", *self.lines]

    def _standing_objections(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """(text, cited ids) of the objections the evidence alone supports, most severe first."""
        out = [(_contra_text(f), (f.eid,)) for f in self.contra]
        out += [(f"No retrieved evidence mentions {t}.", ()) for t in self.missing]
        if len(self.relevant) < THIN_EVIDENCE:
            rel = tuple(f.eid for f in self.relevant)
            out.append((f"Thin evidence: only {len(rel)} of {len(self.items)} retrieved items name "
                        "the targets or mechanisms.", rel))
        out += [(f"No retrieved evidence describes {m}.", ()) for m in self.missing_mechanisms]
        stage = STAGE_NAMES[self.best_stage]
        if self.best_stage < 2:
            out.append(("No retrieved evidence shows the targets tested in patients "
                        f"(best stage: {stage}).", ()))
        elif not any("approved" in f.flags or ("late_trial" in f.flags and not f.bad_news)
                     for f in self.on_target):
            out.append(("No retrieved evidence reports an approval or a Phase 3 trial that held up "
                        f"on the targets (best stage: {stage}).", ()))
        return tuple(out)

    def _judge_features(self, has_targets: bool
                        ) -> tuple[dict[str, float], dict[str, tuple[str, ...]]]:
        """The judge features read from the evidence alone (the cited ones are added per call)."""
        rel, on = self.relevant, self.on_target
        groups: dict[str, list[EvidenceFeatures]] = {
            "approved": [f for f in on if "approved" in f.flags],
            "late_active": [f for f in on if "late_trial" in f.flags and not f.bad_news],
            "failed": [f for f in rel if "failed" in f.flags],
            "halted": [f for f in rel if "halted" in f.flags],
            "safety": [f for f in rel if "safety_signal" in f.flags],
            "efficacy": [f for f in rel if "efficacy" in f.flags],
            "stage": [f for f in on if f.stage and f.stage == self.best_stage],
            "modality_on_target": [f for f in on if f.modalities],
            "modality_any": [f for f in rel if f.modalities],
            "coverage": on if has_targets else rel,
            "mechanism_coverage": [f for f in rel if f.mechanism_hits],
            "disease_match": [f for f in rel if f.disease_hit],
            "evidence_amount": rel,
            "pages_supporting": self.support,
            "contested": [f for f in on
                          if f.bad_news and ("approved" in f.flags or "efficacy" in f.flags)],
        }
        values = {
            "approved": float(bool(groups["approved"])),
            "late_active": float(bool(groups["late_active"])),
            "failed": _frac(len(groups["failed"]), 2),
            "halted": _frac(len(groups["halted"]), 2),
            # A signal on an approved drug is known and managed: it counts half.
            "safety": _frac(sum(0.5 if "approved" in f.flags else 1 for f in groups["safety"]), 3),
            "efficacy": _frac(len(groups["efficacy"]), 2),
            "stage": self.best_stage / 4,
            "modality_on_target": float(bool(groups["modality_on_target"])),
            "modality_any": float(bool(groups["modality_any"])),
            "coverage": self.coverage,
            "mechanism_coverage": self.mechanism_coverage,
            "disease_match": _frac(len(groups["disease_match"]), len(rel)),
            "evidence_amount": _frac(len(rel), 6),
            "pages_supporting": _frac(max(0, len({f.page_slug for f in self.support}) - 1), 2),
            "contested": float(bool(groups["contested"])),
        }
        return values, {k: tuple(f.eid for f in v) for k, v in groups.items()}


@lru_cache(maxsize=1024)
def _case_cached(hyp: _Hyp, evidence: _Evidence) -> _Case:
    return _Case(hyp, evidence)


def _case(view: DebateView) -> _Case:
    """The shared analysis of the view's hypothesis and evidence (cached on their content)."""
    h = view.hypothesis
    evidence = tuple(
        (e.eid, e.page_slug, e.heading_path[-1] if e.heading_path else "", e.text, _facts_key(e))
        for e in view.evidence
    )
    return _case_cached((h.id, h.title, tuple(h.targets), tuple(h.mechanisms), tuple(h.diseases)),
                        evidence)


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
    return f"{f.eid} ({f.where()}) {'; '.join(parts) or 'is on topic'}."


def _contra_text(f: EvidenceFeatures) -> str:
    news = []
    if "failed" in f.flags:
        news.append("a failed Phase 3 trial" if "late_trial" in f.flags else "a failed trial")
    if "halted" in f.flags:
        news.append("a halted or withdrawn programme")
    if "safety_signal" in f.flags:
        terms = f" ({', '.join(f.safety_terms)})" if f.safety_terms else ""
        news.append(f"safety signals{terms}")
    about = f" for {', '.join(f.targets_hit)}" if f.targets_hit else ""
    return f"{f.eid} ({f.where()}) reports {', '.join(news)}{about}."


def _answers(f: EvidenceFeatures, objection: Claim, case: _Case) -> bool:
    """Whether item ``f`` brings the kind of evidence an objection says is wanting."""
    cited = [case.by_id[e] for e in objection.evidence_ids if e in case.by_id]
    good_outcome = ("approved" in f.flags or "efficacy" in f.flags
                    or (f.stage >= 2 and not f.bad_news))
    if any(c.bad_news for c in cited):  # a failure or halt: success elsewhere answers it
        return good_outcome
    if any("safety_signal" in c.flags for c in cited):  # a safety signal: a clean on-target item
        return "safety_signal" not in f.flags and f.on_target
    if objection.text.startswith("No retrieved evidence mentions"):
        return f.on_target
    if objection.text.startswith("No retrieved evidence describes"):
        return bool(f.mechanism_hits)
    return good_outcome


# ---------------------------------------------------------------- judge scoring


@dataclass(frozen=True, slots=True)
class _JudgeInputs:
    values: dict[str, float]
    ids: dict[str, tuple[str, ...]]  # feature -> the evidence ids behind it, for the rationale


def _judge_inputs(case: _Case, view: DebateView) -> _JudgeInputs:
    known = case.by_id
    p_cited: set[str] = set()
    c_cited: set[str] = set()
    invalid: set[str] = set()
    for t in view.turns:
        for claim in t.reply.claims:
            for eid in claim.evidence_ids:
                if eid not in known:
                    invalid.add(eid)
                elif t.role == "proposer":
                    p_cited.add(eid)
                else:
                    c_cited.add(eid)
    # Sets in evidence order: neither turn order nor the order the sides are shown in matters.
    p = [known[e] for e in sorted(p_cited, key=case.order.__getitem__)]
    c = [known[e] for e in sorted(c_cited, key=case.order.__getitem__)]
    on_ids = {f.eid for f in case.on_target}
    cited = {
        "cited_support": [f.eid for f in p if f.relevant],
        "approved_cited": [f.eid for f in p if "approved" in f.flags and f.eid in on_ids],
        "late_cited": [f.eid for f in p
                       if "late_trial" in f.flags and not f.bad_news and f.eid in on_ids],
        "failed_cited_by_critic": [f.eid for f in c if "failed" in f.flags and f.relevant],
        "halted_cited_by_critic": [f.eid for f in c if "halted" in f.flags and f.relevant],
        "safety_cited_by_critic": [f.eid for f in c if "safety_signal" in f.flags and f.relevant],
        "invalid_citations": sorted(invalid),
    }
    values = {
        "cited_support": _frac(len(cited["cited_support"]), 4),
        "approved_cited": float(bool(cited["approved_cited"])),
        "late_cited": float(bool(cited["late_cited"])),
        "failed_cited_by_critic": _frac(len(cited["failed_cited_by_critic"]), 2),
        "halted_cited_by_critic": _frac(len(cited["halted_cited_by_critic"]), 2),
        "safety_cited_by_critic": _frac(len(cited["safety_cited_by_critic"]), 2),
        "invalid_citations": _frac(len(invalid), 3),
        **case.values,
    }
    return _JudgeInputs(values, {**case.ids, **{k: tuple(v) for k, v in cited.items()}})


@lru_cache(maxsize=4096)
def _perspective(seat: int, persona: str, hypothesis_id: str) -> tuple[float, ...]:
    """A fixed offset in [-PERSPECTIVE, PERSPECTIVE] per dimension, from a hash of the inputs."""
    out = []
    for d in DIMENSIONS:
        digest = hashlib.sha256(f"{seat}|{persona}|{hypothesis_id}|{d}".encode()).digest()
        out.append((int.from_bytes(digest[:4], "big") / 0xFFFFFFFF * 2 - 1) * PERSPECTIVE)
    return tuple(out)


@lru_cache(maxsize=64)
def _seat_model(emphasis: frozenset[str]
                ) -> tuple[tuple[str, float, tuple[tuple[str, float], ...]], ...]:
    """:data:`DIMENSION_MODEL` with a persona's emphasis applied to the weights."""
    return tuple(
        (d, base, tuple(
            (f, w * (EMPHASIS_PENALTY if w < 0 else EMPHASIS_BONUS) if d in emphasis else w)
            for f, w in terms))
        for d, (base, terms) in DIMENSION_MODEL.items()
    )


def judge_scores(values: dict[str, float], seat: JudgeSeat, hypothesis_id: str
                 ) -> tuple[dict[str, float], dict[str, list[tuple[str, float]]]]:
    """One seat's dimension scores from judge feature values, and each dimension's terms.

    ``score = clip(base + sum(w' * feature) + perspective)``, rounded to 4 decimals, where
    ``w' = w`` except on the seat's emphasised dimensions: ``w * EMPHASIS_PENALTY`` for
    penalties and ``w * EMPHASIS_BONUS`` for bonuses.
    """
    offsets = _perspective(seat.seat, seat.persona, hypothesis_id)
    scores: dict[str, float] = {}
    terms: dict[str, list[tuple[str, float]]] = {}
    for (d, base, model), off in zip(_seat_model(frozenset(seat.emphasis)), offsets, strict=True):
        contrib = [(f, w * values[f]) for f, w in model]
        total = base + off
        for _, c in contrib:
            total += c
        scores[d] = round(min(1.0, max(0.0, total)), 4)
        terms[d] = contrib
    return scores, terms


def _confidence(values: dict[str, float]) -> float:
    base, model = CONFIDENCE_MODEL
    lo, hi = CONFIDENCE_RANGE
    return round(min(hi, max(lo, base + sum(w * values[f] for f, w in model))), 4)


# ---------------------------------------------------------------- the backend


def _result(role: str, reply: BaseModel, user: str, started: datetime, t0: float) -> AgentResult:
    raw = reply.model_dump_json()
    messages = [ChatMessage(role="system", content=SYSTEM_PROMPTS[role]),
                ChatMessage(role="user", content=user)]
    attempt = Attempt(
        n=1, kind="first", started_at=started, latency_ms=(time.perf_counter() - t0) * 1000.0,
        outcome="ok", http_status=None, error=None, raw_reply=raw, usage=Usage(), cost_usd=None,
        model=MODEL, messages_sent=len(messages),
    )
    return AgentResult(
        reply=reply, raw=raw, messages=messages, attempts=[attempt], model=MODEL,
        label="heuristic", prompt={"name": f"offline-{role}", "version": "1", "hash": RULES_HASH},
    )


class OfflineBackend:
    """Deterministic proposer, critic and judges computed from evidence features (no model).

    Replies, raw replies and messages depend only on the view (and the seat); only the attempt's
    ``started_at`` and ``latency_ms`` vary between runs.
    """

    name = "offline"

    def __init__(self, rubric: Rubric | None = None) -> None:
        self.rubric = rubric or Rubric.default()

    # -- proposer

    async def propose(self, view: DebateView) -> AgentResult:
        """The case for the hypothesis; later rounds answer the critic's latest objections."""
        started, t0 = datetime.now(UTC), time.perf_counter()
        case = _case(view)
        # Only earlier rounds count: a re-run node must not take its own reply as history.
        mine = [t for t in view.turns if t.role == "proposer" and t.round < view.round]
        cited_before = list(dict.fromkeys(
            e for t in mine for c in t.reply.claims for e in c.evidence_ids))
        fresh = [f for f in case.support if f.eid not in cited_before]
        critic_turns = [t for t in view.turns if t.role == "critic" and t.round < view.round]
        latest = max(critic_turns, key=lambda t: t.round).reply.claims if critic_turns else None
        claims: list[Claim] = []
        if latest is None:
            claims = [Claim(text=_support_text(f), evidence_ids=[f.eid])
                      for f in fresh[:OPENING_CITES]]
            if not claims:
                claims.append(Claim(text="No retrieved item supports the hypothesis directly; it "
                                         "rests on its stated mechanism alone.", evidence_ids=[]))
            lead = "Opening case"
        else:
            for obj in latest:
                if not fresh:
                    break
                f = min(fresh, key=lambda x: (not _answers(x, obj, case), -x.strength,
                                              case.order[x.eid]))
                fresh.remove(f)
                claims.append(Claim(text=f'Against "{obj.text}": {_support_text(f)}',
                                    evidence_ids=[f.eid]))
            if len(claims) < len(latest) or not latest:
                # Stable wording, so a round that adds nothing reads the same as the last one.
                rests_on = [*cited_before, *(c.evidence_ids[0] for c in claims)]
                claims.append(Claim(text="No supporting evidence remains uncited; the case rests "
                                         f"on {_fmt_ids(rests_on)}.", evidence_ids=[]))
            lead = f"Answering the critic's {len(latest)} latest objection(s)"
        missing = f" (no item names {', '.join(case.missing)})" if case.missing else ""
        argument = (
            f'{lead} for "{case.title}": {len(case.support)} of {len(case.items)} retrieved items '
            f"support it; target coverage {case.coverage:.2f}{missing}; best stage on target "
            f"{STAGE_NAMES[case.best_stage]}; new citations this round: "
            f"{_fmt_ids([e for c in claims for e in c.evidence_ids])}."
        )
        objections = " | ".join(c.text for c in latest) if latest else "(none yet)"
        user = "\n".join([*case.header(view),
                          f"Previously cited by the proposer: {_fmt_ids(cited_before)}.",
                          f"Critic's latest objections: {objections}"])
        return _result("proposer", ProposerReply(argument=argument, claims=claims), user,
                       started, t0)

    # -- critic

    @staticmethod
    def _objections(case: _Case, view: DebateView) -> list[Claim]:
        """Every objection the critic could make now, most severe first."""
        out = [Claim(text=text, evidence_ids=list(ids)) for text, ids in case.objections]
        p_cited = dict.fromkeys(e for t in view.turns if t.role == "proposer"
                                and t.round <= view.round
                                for c in t.reply.claims for e in c.evidence_ids)
        invalid = [e for e in p_cited if e not in case.by_id]
        if invalid:
            out.append(Claim(text=f"The proposer cites {_fmt_ids(invalid)}, which name no "
                                  "retrieved evidence.", evidence_ids=[]))
        off = [e for e in p_cited if e in case.by_id and not case.by_id[e].relevant]
        if off:
            out.append(Claim(text=f"{_fmt_ids(off)}, cited by the proposer, name none of the "
                                  "targets or mechanisms.", evidence_ids=off))
        return out

    async def critique(self, view: DebateView) -> AgentResult:
        """Objections from contrary or missing evidence; concedes when nothing new is left."""
        started, t0 = datetime.now(UTC), time.perf_counter()
        case = _case(view)
        made = {c.text for t in view.turns if t.role == "critic" and t.round < view.round
                for c in t.reply.claims}
        pending = [c for c in self._objections(case, view) if c.text not in made]
        claims = pending[:OBJECTIONS_PER_ROUND]
        p_ids = [e for t in view.turns if t.role == "proposer" and t.round == view.round
                 for c in t.reply.claims for e in c.evidence_ids]
        stats = (f"{len(case.contra)} of {len(case.items)} items report failures, halts or safety "
                 f"signals; {len(case.missing)} target(s) have no evidence; "
                 f"{len(case.relevant)} items are relevant")
        if claims:
            argument = (f'{len(claims)} new objection(s) to "{case.title}" '
                        f"({len(pending) - len(claims)} more held back): {stats}. The proposer's "
                        f"latest turn cites {_fmt_ids(p_ids)}.")
        else:
            argument = (f"No objection remains that has not already been made ({len(made)} "
                        f"raised before); {stats}. The critic concedes.")
        user = "\n".join([*case.header(view), f"Proposer's latest citations: {_fmt_ids(p_ids)}.",
                          f"Objections already made: {len(made)}."])
        reply = CriticReply(argument=argument, claims=claims, concede=not claims)
        return _result("critic", reply, user, started, t0)

    # -- judge

    async def judge(self, view: DebateView, seat: JudgeSeat) -> AgentResult:
        """Ten dimension scores from named features and the debate's citations, per persona."""
        started, t0 = datetime.now(UTC), time.perf_counter()
        case = _case(view)
        inputs = _judge_inputs(case, view)
        scores, terms = judge_scores(inputs.values, seat, view.hypothesis.id)
        reply = JudgeReply(scores=DimensionScores(**scores), confidence=_confidence(inputs.values),
                           rationale=self._rationale(seat, scores, terms, inputs))
        # The seat's side order is shown (as a model judge would see it) but scores ignore it.
        sides = ("critic", "proposer") if seat.critic_first else ("proposer", "critic")
        turns = sorted(view.turns, key=lambda t: (t.round, sides.index(t.role)))
        history = [f"Round {t.round} {t.role}: {len(t.reply.claims)} claim(s), cites "
                   f"{_fmt_ids([e for c in t.reply.claims for e in c.evidence_ids])}"
                   for t in turns]
        feats = " ".join(f"{k}={v:.2f}" for k, v in inputs.values.items())
        user = "\n".join([
            f"Seat {seat.seat}: {seat.persona}; emphasis: {', '.join(seat.emphasis)}; "
            f"{sides[0]} shown first (side order does not affect these scores).",
            *case.header(view), *history, f"Judge features: {feats}",
        ])
        return _result("judge", reply, user, started, t0)

    def _rationale(self, seat: JudgeSeat, scores: dict[str, float],
                   terms: dict[str, list[tuple[str, float]]], inputs: _JudgeInputs) -> str:
        # The dimensions that move the weighted overall most: rubric weight x distance from 0.5.
        w = self.rubric.weights
        top = sorted(range(len(DIMENSIONS)),
                     key=lambda i: (-w[DIMENSIONS[i]] * abs(scores[DIMENSIONS[i]] - 0.5), i))[:3]
        parts = []
        for d in (DIMENSIONS[i] for i in top):
            drivers = sorted((t for t in terms[d] if t[1]), key=lambda t: (-abs(t[1]), t[0]))[:2]
            said = "; ".join(
                f"{feat} {'+' if c > 0 else '-'}{abs(c):.2f}"
                + (f" ({_fmt_ids(inputs.ids[feat])})" if inputs.ids.get(feat) else "")
                for feat, c in drivers
            ) or "no feature moved it from its base"
            parts.append(f"{d} {scores[d]:.2f}: {said}")
        emphasis = ", ".join(d for d in DIMENSIONS if d in seat.emphasis) or "no dimension"
        return (f"Seat {seat.seat} ({seat.persona}) judges {emphasis} strictly. "
                + ". ".join(parts) + ".")
