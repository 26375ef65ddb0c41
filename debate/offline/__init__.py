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
* Quotes: every claim that cites an item quotes a sentence of it, verbatim (cut to 200
  characters at a word boundary): for the case, the first sentence naming a target with good
  news, else naming a target, else with good news; for an objection, the first with bad news
  (failed, halted, safety), preferring one naming a target. The engine checks these quotes as
  it checks a model's (:mod:`debate.core.quotes`).
* Judge: see below. It counts only verified claims: an item cited by a claim whose quote was
  not found in it lends that side nothing (``*_cited*`` features), exactly as if uncited; an id
  naming no retrieved evidence still counts in ``invalid_citations``. Its reply carries the ten dimension scores, a confidence and a rationale
  naming the features (and evidence ids) that moved the dimensions weighing most in the
  rubric; never an overall score, which the engine computes with ``weighted_score``.

Judge dimensions
----------------

Each dimension is ``clip(base + sum(weight * feature))`` over the judge features
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
field, so emphasised dimensions lean toward the critic's points). That is the only difference
between seats: no hash-derived or random offset. Two judges differ on a dimension only when one
emphasises it and the other does not and a feature it weighs is non-zero; where none do, they
cannot disagree, and the panel's agreement is reported as not applicable (None) rather than as
a number (:func:`debate.engine.consensus.consensus`, ``deterministic``). Scores are
computed from sets of cited ids and never from the order the sides are shown in
(``critic_first``), which only position-biased models are sensitive to.

Modules: ``rules`` (the tables and :data:`RULES_HASH`), ``patterns`` (compiled regexes),
``features`` (evidence features), ``case`` (what both sides argue from), ``judge`` (dimension
scores) and ``backend`` (:class:`OfflineBackend`).
"""

from __future__ import annotations

from debate.offline.backend import OfflineBackend
from debate.offline.features import EvidenceFeatures, evidence_features
from debate.offline.judge import judge_scores
from debate.offline.rules import (
    DIMENSION_MODEL,
    DISEASE_ALIASES,
    JUDGE_FEATURES,
    MODEL,
    RULES_HASH,
    RULES_VERSION,
    describe_model,
)

__all__ = [
    "DIMENSION_MODEL",
    "DISEASE_ALIASES",
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
