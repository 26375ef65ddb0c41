"""The case both sides argue: relevant, supporting and contrary items, and objections."""

from __future__ import annotations

from functools import lru_cache

from debate.core.models import Claim
from debate.core.protocol import DebateView
from debate.offline.features import EvidenceFeatures, _facts_key, _features, _quotes, _terms
from debate.offline.rules import STAGE_NAMES, THIN_EVIDENCE


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
        # (supporting, contrary) verbatim passages per item: every cited claim quotes one.
        self.quotes = {e[0]: _quotes(e[3], terms) for e in evidence}
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
        self.support = sorted((f for f in self.items if f.supporting), key=lambda f: (-f.strength, self.order[f.eid]))
        self.contra = sorted((f for f in self.items if f.contrary), key=lambda f: (-f.severity, self.order[f.eid]))
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

    def claim(self, text: str, ids: list[str] | tuple[str, ...], *, contrary: bool = False) -> Claim:
        """A claim citing ``ids``, quoting the first one's supporting (or contrary) passage."""
        quote = self.quotes.get(ids[0], ("", ""))[contrary] if ids else ""
        return Claim(text=text, evidence_ids=list(ids), quote=quote)

    def header(self, view: DebateView) -> list[str]:
        return [f"Round {view.round} of {view.max_rounds}.", *self.lines]

    def _standing_objections(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """(text, cited ids) of the objections the evidence alone supports, most severe first."""
        out = [(_contra_text(f), (f.eid,)) for f in self.contra]
        out += [(f"No retrieved evidence mentions {t}.", ()) for t in self.missing]
        if len(self.relevant) < THIN_EVIDENCE:
            rel = tuple(f.eid for f in self.relevant)
            out.append(
                (
                    f"Thin evidence: only {len(rel)} of {len(self.items)} retrieved items name "
                    "the targets or mechanisms.",
                    rel,
                )
            )
        out += [(f"No retrieved evidence describes {m}.", ()) for m in self.missing_mechanisms]
        stage = STAGE_NAMES[self.best_stage]
        if self.best_stage < 2:
            out.append((f"No retrieved evidence shows the targets tested in patients (best stage: {stage}).", ()))
        elif not any("approved" in f.flags or ("late_trial" in f.flags and not f.bad_news) for f in self.on_target):
            out.append(
                (
                    "No retrieved evidence reports an approval or a Phase 3 trial that held up "
                    f"on the targets (best stage: {stage}).",
                    (),
                )
            )
        return tuple(out)

    def _judge_features(self, has_targets: bool) -> tuple[dict[str, float], dict[str, tuple[str, ...]]]:
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
            "contested": [f for f in on if f.bad_news and ("approved" in f.flags or "efficacy" in f.flags)],
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
        (e.eid, e.page_slug, e.heading_path[-1] if e.heading_path else "", e.text, _facts_key(e)) for e in view.evidence
    )
    return _case_cached((h.id, h.title, tuple(h.targets), tuple(h.mechanisms), tuple(h.diseases)), evidence)


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
    good_outcome = "approved" in f.flags or "efficacy" in f.flags or (f.stage >= 2 and not f.bad_news)
    if any(c.bad_news for c in cited):  # a failure or halt: success elsewhere answers it
        return good_outcome
    if any("safety_signal" in c.flags for c in cited):  # a safety signal: a clean on-target item
        return "safety_signal" not in f.flags and f.on_target
    if objection.text.startswith("No retrieved evidence mentions"):
        return f.on_target
    if objection.text.startswith("No retrieved evidence describes"):
        return bool(f.mechanism_hits)
    return good_outcome
