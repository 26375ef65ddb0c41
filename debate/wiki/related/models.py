"""The Related Hypotheses list's types, relatedness weights and best-first order (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

HEADER = "Related Hypotheses\nFrom the [SciDEX Exchange](/exchange) — scored by multi-agent debate\n"

WEIGHTS: dict[str, float] = {
    "listed": 1.0,
    "gene": 0.6,
    "gene_cap": 1.2,
    "mechanism": 0.3,
    "mechanism_cap": 0.6,
    "disease": 0.2,
    "cited": 0.3,
    "cited_unverified": 0.1,
    "linked": 0.15,
}
# rank = relatedness × (SCORE_BASE + shown): the best a candidate can do is at shown = 1.0.
SCORE_BASE = 0.5
BEST_FACTOR = SCORE_BASE + 1.0
MAX_INCOMING = 50

# How a claim in a hypothesis's debates cited a page: by at least one claim whose quote was found
# in the cited item ("verified"), or only by claims without one ("unverified").
Cited = Literal["verified", "unverified"]
# The reason each names in a list's JSON, and its weight in WEIGHTS.
CITED_REASON: dict[Cited, str] = {"verified": "cited", "unverified": "cited-unverified"}
CITED_WEIGHT: dict[Cited, str] = {"verified": "cited", "unverified": "cited_unverified"}


def cited_weight(cited: Cited | None) -> float:
    """The relatedness a citation of the page adds (0.0 for none)."""
    return WEIGHTS[CITED_WEIGHT[cited]] if cited is not None else 0.0


def cited_kind(verified: int, unverified: int) -> Cited | None:
    """How claims cited a page, from counts of verified and unverified claims (None: no claim)."""
    return "verified" if verified > 0 else "unverified" if unverified > 0 else None


class RelatedItem(BaseModel):
    """One line of a Related Hypotheses list."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["hypothesis", "analysis"]
    id: str
    title: str
    path: str = Field(description="Link path, /hypothesis/h-... or /analysis/...")
    score: float | None = Field(description="Shown score, unrounded; null for in-progress lines.")
    shown: str | None = Field(description="The score as displayed (2 decimals, half up).")
    color: str | None = Field(description="Colour of the shown score.")
    target_label: str | None = Field(description="Text after 'Target: ', or null when none.")
    targets: list[str]
    in_progress: bool
    relatedness: float
    reasons: list[str] = Field(
        description="Why it is related: listed, gene:X, mechanism:x, disease:x, cited, cited-unverified, linked:slug."
    )
    method: Literal["model", "offline", "prior"] | None = Field(
        None, description="How the shown score was made (as in scores.json); null for in-progress lines."
    )
    models: list[str] = Field(default_factory=list, description="Model names that produced the shown score.")
    verified_rate: float | None = Field(
        None, description="Share of the shown run's claims whose quote was verified (as in scores.json)."
    )


class RelatedList(BaseModel):
    """A page's Related Hypotheses list: `debate related --format json`, export and API."""

    model_config = ConfigDict(extra="forbid")

    slug: str
    title: str
    limit: int
    items: list[RelatedItem]
    markdown: str = Field(description="The section as written into the page.")


@dataclass
class Candidate:
    """Why one hypothesis relates to a page (its features), before and after scores are read."""

    id: str
    listed: bool = False
    genes: dict[str, str] = field(default_factory=dict)  # gene key -> spelling
    mechanisms: list[str] = field(default_factory=list)
    diseases: list[str] = field(default_factory=list)
    cited: Cited | None = None  # how claims of its debates cited the page, if they did
    linked: set[str] = field(default_factory=set)

    def relatedness(self) -> float:
        """The weighted sum of this candidate's features (see the module docstring)."""
        w = WEIGHTS
        r = w["listed"] if self.listed else 0.0
        r += min(w["gene"] * len(self.genes), w["gene_cap"])
        r += min(w["mechanism"] * len(self.mechanisms), w["mechanism_cap"])
        r += w["disease"] if self.diseases else 0.0
        r += cited_weight(self.cited)
        r += w["linked"] if self.linked else 0.0
        return round(r, 6)

    def reasons(self) -> list[str]:
        """Readable features: ``listed``, ``gene:SOD1``, ``mechanism:autophagy``, ``cited``, ..."""
        out = ["listed"] if self.listed else []
        out += [f"gene:{g}" for g in self.genes.values()]
        out += [f"mechanism:{m}" for m in self.mechanisms]
        out += [f"disease:{d}" for d in self.diseases]
        out += [CITED_REASON[self.cited]] if self.cited is not None else []
        out += [f"linked:{s}" for s in sorted(self.linked)]
        return out


@dataclass(frozen=True)
class Analysis:
    """An in-progress analysis line as ingested."""

    id: str
    title: str
    path: str


def best_first_key(x: tuple[float, str]) -> tuple[float, str]:
    return -x[0], x[1]


def best_first(shown: dict[str, tuple[float | None, bool]]) -> tuple[list[tuple[float, str]], list[str]]:
    """Split id -> (shown score, pending) into scored ids best first and pending unscored ids."""
    scored = sorted(((score, h) for h, (score, _p) in shown.items() if score is not None), key=best_first_key)
    return scored, sorted(h for h, (score, pending) in shown.items() if score is None and pending)
