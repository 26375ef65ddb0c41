"""Evidence features: per-text profiles, hypothesis terms and per-item features."""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property, lru_cache

from debate.core.models import EvidenceItem, HypothesisOut
from debate.offline.patterns import (
    _BULLET,
    _FLAG_RULES,
    _GENE_WORD,
    _INFOBOX_TARGET,
    _LABEL,
    _LOST_RULES,
    _MODALITY_RULES,
    _NEG_RULES,
    _NOT_GENES,
    _OUTCOME_FLAGS,
    _SENTENCE_SPLIT,
    _WORD,
)
from debate.offline.rules import (
    BIOLOGY_KEYS,
    DISEASE_ALIASES,
    FLAG_ORDER,
    NAVIGATION_HEADINGS,
    STAGE_BY_FLAG,
    STAGE_NAMES,
    STOPWORDS,
    TARGET_ALIASES,
)


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
        text="\n".join(pieces),
        starts=_offsets(pieces),
        flags=tuple(frozenset(f) for f in flags),
        modalities=tuple(tuple(m) for m in modalities),
        safety_terms=tuple(tuple(s)[:3] for s in safety),
        genes=tuple(frozenset(g) for g in genes),
        words=frozenset(words),
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
def _terms(targets: tuple[str, ...], mechanisms: tuple[str, ...], diseases: tuple[str, ...], title: str) -> _Terms:
    alts: list[str] = []
    group: dict[str, str] = {}
    keys: set[str] = set()
    for t in targets:
        patterns = [_target_pattern(t)] + [
            rf"(?<![A-Za-z0-9])(?i:{re.escape(a)})(?![A-Za-z0-9])" for a in TARGET_ALIASES.get(t.upper(), ())
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
        targets=targets,
        target_re=re.compile("|".join(alts)) if alts else None,
        target_group=group,
        target_keys=frozenset(keys),
        mechanisms=tuple((m, _stems(m)) for m in mechanisms),
        diseases=tuple(disease_alts),
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
        return self.relevant and (self.good_news or not (self.bad_news or "safety_signal" in self.flags))

    @cached_property
    def contrary(self) -> bool:
        return self.relevant and (self.bad_news or "safety_signal" in self.flags)

    @cached_property
    def strength(self) -> int:
        """The proposer's ordering key (an integer, so ties fall back to evidence order)."""
        f, bad = self.flags, self.bad_news
        return (
            4 * self.on_target
            + 2 * bool(self.mechanism_hits)
            + 4 * ("approved" in f)
            + 2 * ("late_trial" in f and not bad)
            + ("mid_trial" in f and not bad)
            + 2 * ("efficacy" in f)
            + bool(self.modalities)
            + self.disease_hit
            + round(2 * self.title_overlap)
            - 2 * bad
        )

    @cached_property
    def severity(self) -> int:
        """The critic's ordering key."""
        f = self.flags
        return (
            4 * ("failed" in f)
            + 3 * ("halted" in f)
            + 2 * ("safety_signal" in f)
            + 2 * self.on_target
            + ("late_trial" in f)
        )

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
def _features(
    eid: str, page_slug: str, heading: str, text: str, facts: tuple[tuple[str, str], ...], terms: _Terms
) -> EvidenceFeatures:
    navigation = heading.strip().casefold() in NAVIGATION_HEADINGS
    prof = _EMPTY if navigation else _profile(text, facts)
    hit: set[str] = set()
    hit_segments: set[int] = set()
    if terms.target_re is not None:
        for m in terms.target_re.finditer(prof.text):
            hit.add(terms.target_group[m.lastgroup or ""])
            hit_segments.add(bisect_right(prof.starts, m.start()) - 1)
    # A segment naming another gene, and none of ours, says nothing about our targets.
    scoped = [
        i for i in range(len(prof.starts)) if not hit or i in hit_segments or not (prof.genes[i] - terms.target_keys)
    ]
    flags: set[str] = set()
    modalities: dict[str, None] = {}
    safety: dict[str, None] = {}
    for i in scoped:
        flags |= prof.flags[i]
        modalities.update(dict.fromkeys(prof.modalities[i]))
        safety.update(dict.fromkeys(prof.safety_terms[i]))
    words = prof.words
    mech = tuple(m for m, stems in terms.mechanisms if stems and all(s in words for s in stems))
    disease = any(stems and all(s in words for s in stems) for names in terms.diseases for stems in names)
    overlap = sum(s in words for s in terms.title) / len(terms.title) if terms.title else 0.0
    return EvidenceFeatures(
        eid=eid,
        page_slug=page_slug,
        heading=heading,
        targets_hit=tuple(t for t in terms.targets if t in hit),
        mechanism_hits=mech,
        disease_hit=disease,
        title_overlap=round(overlap, 2),
        flags=frozenset(flags),
        modalities=tuple(modalities),
        safety_terms=tuple(safety)[:3],
        stage=next((n for flag, n in STAGE_BY_FLAG if flag in flags), 0),
        title_match=not terms.targets and not terms.mechanisms and overlap >= 0.5,
    )


# ---------------------------------------------------------------- quotes

QUOTE_MAX = 200
_GOOD = frozenset({"approved", "efficacy", "late_trial", "mid_trial", "early"})
_BAD = frozenset({"failed", "halted", "safety_signal"})


def _trim(segment: str) -> str:
    """A segment cut to :data:`QUOTE_MAX` characters at a word boundary (still verbatim)."""
    if len(segment) <= QUOTE_MAX:
        return segment
    cut = segment[:QUOTE_MAX]
    return cut[: cut.rfind(" ")] if " " in cut else cut


@lru_cache(maxsize=16384)
def _quotes(text: str, terms: _Terms, min_chars: int = 20) -> tuple[str, str]:
    """(supporting, contrary) passages to quote from ``text``: verbatim sentences of it.

    Supporting: the first sentence naming a target with good news, else naming a target, else
    with good news, else the first sentence. Contrary: the first sentence with bad news,
    preferring one naming a target. Sentences shorter than ``min_chars`` are passed over when a
    longer one qualifies (the engine never verifies a quote that short)."""
    prof = _profile(text, ())
    segments = prof.text.split("\n") if prof.text else []
    if not segments:
        return "", ""
    hit = [bool(terms.target_re and terms.target_re.search(seg)) for seg in segments]
    good = [bool(f & _GOOD) for f in prof.flags]
    bad = [bool(f & _BAD) for f in prof.flags]

    def pick(rank: Callable[[int], int]) -> str:
        best = min(range(len(segments)), key=lambda i: (rank(i), len(segments[i]) < min_chars, i))
        return _trim(segments[best])

    support = pick(lambda i: 0 if hit[i] and good[i] else 1 if hit[i] else 2 if good[i] else 3)
    contra = pick(lambda i: 0 if hit[i] and bad[i] else 1 if bad[i] else 2)
    return support, contra


def _facts_key(item: EvidenceItem) -> tuple[tuple[str, str], ...]:
    return tuple((f.get("key", ""), f.get("value", "")) for f in item.facts) if item.facts else ()


def evidence_features(item: EvidenceItem, hypothesis: HypothesisOut) -> EvidenceFeatures:
    """The features of ``item`` relative to ``hypothesis`` (pure; cached on the inputs)."""
    h = hypothesis
    terms = _terms(tuple(h.targets), tuple(h.mechanisms), tuple(h.diseases), h.title)
    heading = item.heading_path[-1] if item.heading_path else ""
    return _features(item.eid, item.page_slug, heading, item.text, _facts_key(item), terms)
