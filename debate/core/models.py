"""Domain types shared across the engine: hypotheses, evidence, agent replies, scores.

Every model reply is one of the ``*Reply`` models here: ``extra="forbid"``, every field
described and required (so the same class gives a strict JSON schema for endpoints that
enforce one). Nothing here does I/O.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from debate.core.genes import gene_key, validate_gene
from debate.core.rubric import DIMENSIONS

HYPOTHESIS_ID_RE = re.compile(r"^h-[0-9a-f]{8}$")
Role = Literal["proposer", "critic", "judge"]


def new_hypothesis_id() -> str:
    return f"h-{secrets.token_hex(4)}"


def normalize_title(title: str) -> str:
    """The key duplicate titles are detected by: case-folded, accents and punctuation dropped."""
    t = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    return " ".join(re.sub(r"[^a-z0-9]+", " ", t.casefold()).split())


class HypothesisIn(BaseModel):
    """A hypothesis as given by a user, a file or a page (validated, not yet stored)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: str | None = Field(None, description="h- + 8 lowercase hex digits; generated when absent.")
    title: str = Field(min_length=1, max_length=300)
    statement: str = Field("", max_length=20_000)
    diseases: list[str] = Field(default_factory=list)
    targets: list[str] = Field(default_factory=list, description="Gene symbols in HGNC casing.")
    mechanisms: list[str] = Field(default_factory=list, description="Mechanism keywords.")
    source: str = "cli"
    target_label: str | None = Field(None, description="Display label as imported, kept verbatim.")
    prior_score: float | None = Field(None, ge=0, le=1, description="Imported score, not computed here.")
    prior_source: str | None = None

    @field_validator("id")
    @classmethod
    def _id_shape(cls, v: str | None) -> str | None:
        if v is not None and not HYPOTHESIS_ID_RE.match(v):
            raise ValueError(f"hypothesis id {v!r} must be h- followed by 8 lowercase hex digits")
        return v

    @field_validator("targets")
    @classmethod
    def _genes(cls, v: list[str]) -> list[str]:
        out: list[str] = []
        seen: set[str] = set()
        for g in v:
            g = validate_gene(g)
            if gene_key(g) not in seen:
                seen.add(gene_key(g))
                out.append(g)
        return out

    @field_validator("diseases", "mechanisms")
    @classmethod
    def _clean_terms(cls, v: list[str]) -> list[str]:
        return [t.strip() for t in v if t and t.strip()]


class HypothesisOut(BaseModel):
    """A stored hypothesis as shown by `hypotheses show --json` and the API."""

    id: str
    title: str
    statement: str
    diseases: list[str]
    targets: list[str]
    target_label: str | None
    mechanisms: list[str]
    source: str
    prior_score: float | None
    prior_source: str | None
    created_at: str
    updated_at: str


class EvidenceItem(BaseModel):
    """One retrieved chunk of KB text, quoted to agents under its id (E1, E2, ...)."""

    eid: str
    rank: int
    page_slug: str
    page_hash: str
    heading_path: list[str]
    text: str
    score: float
    relevance: float | None = Field(
        default=None, description="Score over the best score of the same search, in [0, 1]; 1 at rank 1."
    )
    facts: list[dict[str, str]] = Field(default_factory=list, description="Facts under the chunk's heading.")
    suspect: bool = Field(
        default=False,
        description="The chunk holds instruction-like text (screened at ingest); quoted to agents marked as such.",
    )


# ---------------------------------------------------------------- agent replies


class _Reply(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Claim(_Reply):
    text: str = Field(description="One claim, in one or two sentences.")
    evidence_ids: list[str] = Field(description="Ids of this run's evidence items that support it, e.g. E2.")
    # Defaults to "" so replies and transcripts written before quotes existed still validate.
    quote: str = Field(
        default="",
        description="A short verbatim passage (at least 20 characters) copied from one of the cited items; "
        "empty when nothing is cited.",
    )


class ProposerReply(_Reply):
    """The proposer's turn: the case for the hypothesis."""

    argument: str = Field(description="The case for the hypothesis, grounded in the evidence.")
    claims: list[Claim] = Field(description="Claims made, each citing evidence ids.")


class CriticReply(_Reply):
    """The critic's turn: contrary evidence, missing mechanism, safety, feasibility."""

    argument: str = Field(description="The case against, or the gaps in, the proposer's argument.")
    claims: list[Claim] = Field(description="Objections made, each citing evidence ids.")
    concede: bool = Field(description="True only when no substantive objection remains.")


class DimensionScores(_Reply):
    """A judge's score in [0, 1] on each of the ten rubric dimensions."""

    mechanistic_plausibility: float = Field(ge=0, le=1, description="Is the mechanism sound?")
    evidence_strength: float = Field(ge=0, le=1, description="How strong is the cited evidence?")
    novelty: float = Field(ge=0, le=1, description="How new is the idea?")
    feasibility: float = Field(ge=0, le=1, description="Can it be done with today's tools?")
    therapeutic_potential: float = Field(ge=0, le=1, description="How much could patients gain?")
    druggability: float = Field(ge=0, le=1, description="Can the target be drugged?")
    safety: float = Field(ge=0, le=1, description="High = few or manageable safety concerns.")
    competitive_landscape: float = Field(ge=0, le=1, description="High = open field, unmet need.")
    data_availability: float = Field(ge=0, le=1, description="Is there data to act on?")
    reproducibility: float = Field(ge=0, le=1, description="Have findings been replicated?")


assert tuple(DimensionScores.model_fields) == DIMENSIONS, "rubric and reply schema must agree"


class JudgeReply(_Reply):
    """A judge's verdict. The overall score is computed by the engine from these."""

    scores: DimensionScores
    confidence: float = Field(ge=0, le=1, description="How sure the judge is of its scores.")
    rationale: str = Field(description="Why, in a few sentences, citing evidence ids where useful.")


class CitationCheck(BaseModel):
    """A cited evidence id and whether it names evidence retrieved for this run."""

    eid: str
    valid: bool
    claim: int = Field(description="Index of the claim that cited it.")
