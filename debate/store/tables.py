"""Database tables (SQLModel). The schema is created and changed only by migrations.

Rows mirror the domain: KB pages and what was extracted from them, hypotheses, debate runs with
their evidence snapshot, turns and attempts (append-only), reviews, and batches.
JSON columns hold small lists and mappings; anything searched or joined has its own column.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    Text,
    UniqueConstraint,
    text,
)
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(dt: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    if dt is None:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _ts(nullable: bool = False) -> Any:
    return Field(default=None if nullable else None, sa_column=Column(DateTime(timezone=True), nullable=nullable))


def _json(nullable: bool = False) -> Any:
    return Field(default=None, sa_column=Column(JSON, nullable=nullable))


def _suspect(description: str, *, default: bool | None = False) -> Any:
    """A flag the database defaults to false (server side): a row written without it, by code
    or a test helper that predates it, reads not suspect. ``default=None`` leaves it out of an
    ORM insert unless set (see Hypothesis.suspect)."""
    return Field(
        default=default,
        sa_column=Column(Boolean, nullable=False, server_default=text("false")),
        description=description,
    )


# ---------------------------------------------------------------- knowledge base


class Page(SQLModel, table=True):
    __tablename__ = "pages"
    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(index=True, unique=True)
    title: str
    entity_type: str | None = None
    source_name: str = Field(description="File name relative to the ingested folder, for export.")
    raw_text: str = Field(sa_column=Column(Text, nullable=False))
    content_hash: str
    metadata_: dict[str, str] = Field(sa_column=Column("metadata", JSON, nullable=False))
    has_related_section: bool = False
    related_start: int | None = None
    related_end: int | None = None
    insert_at: int
    ingested_at: datetime = _ts()
    changed_at: datetime = _ts()


class Section(SQLModel, table=True):
    __tablename__ = "sections"
    id: int | None = Field(default=None, primary_key=True)
    page_id: int = Field(foreign_key="pages.id", index=True)
    ordinal: int
    heading: str
    heading_path: list[str] = _json()
    line: int


class Fact(SQLModel, table=True):
    __tablename__ = "facts"
    id: int | None = Field(default=None, primary_key=True)
    page_id: int = Field(foreign_key="pages.id", index=True)
    heading_path: list[str] = _json()
    key: str
    value: str
    line: int


class InfoboxRow(SQLModel, table=True):
    __tablename__ = "infobox_rows"
    id: int | None = Field(default=None, primary_key=True)
    page_id: int = Field(foreign_key="pages.id", index=True)
    table_name: str
    column_name: str
    label: str
    value: str
    line: int


class Link(SQLModel, table=True):
    __tablename__ = "links"
    id: int | None = Field(default=None, primary_key=True)
    page_id: int = Field(foreign_key="pages.id", index=True)
    text: str
    path: str
    target_slug: str | None = Field(default=None, index=True)
    external: bool = False
    heading_path: list[str] = _json()
    line: int


class Citation(SQLModel, table=True):
    __tablename__ = "citations"
    id: int | None = Field(default=None, primary_key=True)
    page_id: int = Field(foreign_key="pages.id", index=True)
    key: str


class Chunk(SQLModel, table=True):
    __tablename__ = "chunks"
    # Suspect chunks are few: retrieval leaves them out with this index, and `kb audit` lists them.
    __table_args__ = (Index("ix_chunks_suspect", "id", sqlite_where=text("suspect"), postgresql_where=text("suspect")),)
    id: int | None = Field(default=None, primary_key=True)
    page_id: int = Field(foreign_key="pages.id", index=True)
    ordinal: int
    heading_path: list[str] = _json()
    text: str = Field(sa_column=Column(Text, nullable=False))
    line: int
    suspect: bool = _suspect("Holds instruction-like text (debate/kb/screen.py), screened at ingest.")
    suspect_reason: str | None = Field(
        default=None,
        sa_column=Column(Text, nullable=True),
        description="The screening rules it matched, joined by ', ' (None when not suspect).",
    )


class PageTerm(SQLModel, table=True):
    """A gene-like symbol or a mechanism/disease term a page mentions (for links and relatedness)."""

    __tablename__ = "page_terms"
    __table_args__ = (Index("ix_page_terms_key", "kind", "key"),)
    id: int | None = Field(default=None, primary_key=True)
    page_id: int = Field(foreign_key="pages.id", index=True)
    kind: str = Field(description="gene | mechanism | disease")
    key: str = Field(description="Case-folded match key.")
    term: str = Field(description="As first written on the page.")
    source: str = Field(description="infobox | fact | text | related")


class RelatedEntry(SQLModel, table=True):
    """A line of a page's Related Hypotheses section as ingested, in its original order."""

    __tablename__ = "related_entries"
    id: int | None = Field(default=None, primary_key=True)
    page_id: int = Field(foreign_key="pages.id", index=True)
    ordinal: int
    kind: str
    ref_id: str = Field(index=True)
    path: str
    title: str
    score: float | None = None
    target_label: str | None = None
    genes: list[str] = _json()
    in_progress: bool = False


# ---------------------------------------------------------------- hypotheses


class Hypothesis(SQLModel, table=True):
    __tablename__ = "hypotheses"
    # updated_at: related lists check max(updated_at) every few seconds to see an edit.
    __table_args__ = (Index("ix_hypotheses_updated_at", "updated_at"),)
    id: str = Field(primary_key=True)
    title: str
    title_key: str = Field(unique=True, index=True)
    statement: str = Field(default="", sa_column=Column(Text, nullable=False))
    diseases: list[str] = _json()
    targets: list[str] = _json()
    target_label: str | None = Field(default=None, description="Imported label, kept as written.")
    mechanisms: list[str] = _json()
    source: str
    prior_score: float | None = Field(default=None, description="Imported score, not computed here.")
    prior_source: str | None = None
    # None on a new row means "not set": the database stores false (so inserting a hypothesis
    # needs no column that older schemas lack); a stored row reads True or False.
    suspect: bool | None = _suspect(
        "Imported from a page's instruction-like text (title, statement or target label).", default=None
    )
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class HypothesisTarget(SQLModel, table=True):
    __tablename__ = "hypothesis_targets"
    __table_args__ = (UniqueConstraint("hypothesis_id", "gene_key"),)
    id: int | None = Field(default=None, primary_key=True)
    hypothesis_id: str = Field(foreign_key="hypotheses.id", index=True)
    gene_key: str = Field(index=True)
    gene: str
    ordinal: int


# ---------------------------------------------------------------- debates


class Run(SQLModel, table=True):
    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_hyp_status", "hypothesis_id", "status"),)
    id: str = Field(primary_key=True)
    hypothesis_id: str = Field(foreign_key="hypotheses.id", index=True)
    status: str = Field(index=True, description="queued | running | done | failed | cancelled")
    backend: str
    models: dict[str, Any] = _json()
    config: dict[str, Any] = _json()
    prompt_hashes: dict[str, str] = _json()
    kb_hash: str | None = None
    trigger: str = "cli"
    batch_id: str | None = Field(default=None, index=True)
    rounds_done: int = 0
    created_at: datetime = _ts()
    started_at: datetime | None = _ts(nullable=True)
    retrieved_at: datetime | None = _ts(nullable=True)
    finished_at: datetime | None = _ts(nullable=True)
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None
    score: float | None = None
    interval_lo: float | None = None
    interval_hi: float | None = None
    interval_method: str | None = None
    agreement: float | None = None
    n_judges: int | None = None
    # Claims of the proposer and critic whose quote was found in the evidence they cite, and all
    # their claims (None: finished before claims quoted evidence).
    claims_verified: int | None = None
    claims_cited: int | None = None
    error: str | None = None
    review_status: str = Field(
        default="unreviewed",
        description="unreviewed | approved | flagged | needs_review (a judge's verdict contradicted the debate)",
    )
    flagged: bool = Field(default=False, index=True)
    # The lease (debate/engine/leases.py): who executes a queued or running run, and when it
    # last said so. Taken over by compare-and-set on both.
    owner: str | None = Field(default=None, description="host:pid:start:machine of the process holding the run.")
    heartbeat_at: datetime | None = _ts(nullable=True)


class Evidence(SQLModel, table=True):
    """The evidence snapshot of a run: what was retrieved, as it read then."""

    __tablename__ = "evidence"
    __table_args__ = (UniqueConstraint("run_id", "eid"),)
    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="runs.id", index=True)
    eid: str
    rank: int
    page_slug: str = Field(index=True)
    page_hash: str
    heading_path: list[str] = _json()
    text: str = Field(sa_column=Column(Text, nullable=False))
    score: float
    relevance: float | None = None
    facts: list[dict[str, Any]] = _json()
    suspect: bool = _suspect("The chunk was suspect when retrieved (quoted to the agents marked as such).")


class CitedPage(SQLModel, table=True):
    """A page whose evidence a finished run's claims cited, with how many of those claims were
    verified (their quote found in the cited item) and how many were not. Relatedness reads this:
    evidence that was only retrieved, never cited, does not relate a hypothesis to a page."""

    __tablename__ = "cited_pages"
    run_id: str = Field(foreign_key="runs.id", primary_key=True)
    page_slug: str = Field(primary_key=True, index=True)
    verified: int = 0
    unverified: int = 0


class Turn(SQLModel, table=True):
    """One agent turn, written once: keyed by (run, round, role, seat)."""

    __tablename__ = "turns"
    __table_args__ = (UniqueConstraint("run_id", "round", "role", "seat"),)
    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="runs.id", index=True)
    round: int
    role: str
    seat: int
    backend: str
    label: str = Field(description="model | heuristic")
    model: str
    prompt_name: str
    prompt_version: str
    prompt_hash: str
    messages: list[dict[str, Any]] = _json()
    raw_reply: str = Field(sa_column=Column(Text, nullable=False))
    parsed: dict[str, Any] = _json()
    citations: list[dict[str, Any]] = _json()
    overall: float | None = Field(default=None, description="Judges: weighted rubric sum, computed here.")
    meta: dict[str, Any] = _json()
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None
    latency_ms: float = 0.0
    created_at: datetime = _ts()


class Attempt(SQLModel, table=True):
    """One call made for a turn (first try, transport retry, re-ask). Kept even when the turn failed."""

    __tablename__ = "attempts"
    __table_args__ = (Index("ix_attempts_turn", "run_id", "round", "role", "seat"),)
    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="runs.id")
    round: int
    role: str
    seat: int
    n: int
    kind: str
    outcome: str
    http_status: int | None = None
    error: str | None = None
    raw_reply: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    model: str
    served_model: str | None = Field(default=None, description="The model the server said answered.")
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None
    latency_ms: float
    started_at: datetime = _ts()


class Review(SQLModel, table=True):
    __tablename__ = "reviews"
    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="runs.id", index=True)
    action: str = Field(description="approve | flag | clear | comment")
    by: str
    note: str | None = None
    at: datetime = _ts()


# ---------------------------------------------------------------- rescoring batches


class Batch(SQLModel, table=True):
    """A frozen rescoring selection: which hypotheses, chosen how, run with which settings."""

    __tablename__ = "batches"
    id: str = Field(primary_key=True)
    options: dict[str, Any] = _json()
    options_key: str = Field(index=True, description="Hash of the normalized selection options.")
    backend: str
    hypothesis_ids: list[str] = _json()
    settings: dict[str, Any] = _json()
    status: str = Field(index=True, description="pending | running | stopped | done")
    stop_reason: str | None = None
    total: int = 0
    done: int = 0
    failed: int = 0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None
    unknown_usage: int = Field(default=0, description="Calls whose endpoint reported no usage.")
    owner: str | None = Field(default=None, description="host:pid of the process running it.")
    created_at: datetime = _ts()
    started_at: datetime | None = _ts(nullable=True)
    updated_at: datetime = _ts()
    finished_at: datetime | None = _ts(nullable=True)


class BatchItem(SQLModel, table=True):
    """One hypothesis of a batch; its run id is set once, so it is debated at most once in the batch."""

    __tablename__ = "batch_items"
    __table_args__ = (
        UniqueConstraint("batch_id", "hypothesis_id"),
        # Unclaimed items in order: claiming the next one never scans the claimed ones.
        Index(
            "ix_batch_items_unclaimed",
            "batch_id",
            "ordinal",
            sqlite_where=text("run_id IS NULL"),
            postgresql_where=text("run_id IS NULL"),
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    batch_id: str = Field(foreign_key="batches.id", index=True)
    hypothesis_id: str = Field(foreign_key="hypotheses.id", index=True)
    ordinal: int
    reasons: dict[str, Any] = _json()
    run_id: str | None = Field(default=None, foreign_key="runs.id", unique=True, index=True)
    status: str = Field(default="pending", description="pending | queued | running | done | failed | cancelled")
    updated_at: datetime = _ts()


# ---------------------------------------------------------------- shared rate limits


class RateWindowEntry(SQLModel, table=True):
    """One request admitted to an endpoint, counted by every process sharing its rpm / tpm.

    Used on PostgreSQL only (debate/ratewindow.py): there several worker processes, possibly on
    several machines, share an endpoint. With SQLite one machine runs the debates and the
    in-process limiter is enough, so the table exists but stays empty.
    """

    __tablename__ = "rate_window"
    __table_args__ = (Index("ix_rate_window_endpoint_t", "endpoint", "t"),)
    # BIGINT on PostgreSQL (rows come and go at the request rate); SQLite needs INTEGER to autoincrement.
    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    )
    endpoint: str = Field(description="The endpoint key, e.g. its base URL.")
    t: datetime = Field(
        sa_column=Column(DateTime(timezone=True), nullable=False),
        description="Request start by the database server's clock, so machines agree.",
    )
    tokens: int = Field(description="Token estimate at admission, replaced by the actual count.")


# ---------------------------------------------------------------- reviewer sessions


class ReviewerSession(SQLModel, table=True):
    """A reviewer signed in to the web UI (debate/server/web/sessions.py).

    The cookie holds a random session id; only its SHA-256 is stored, so reading this table
    does not let anyone sign in. In the database, so every ``debate serve`` process shares it.
    """

    __tablename__ = "reviewer_sessions"
    # Expired sessions are purged by expiry time.
    __table_args__ = (Index("ix_reviewer_sessions_expires_at", "expires_at"),)
    id_hash: str = Field(primary_key=True, description="SHA-256 hex of the session id.")
    reviewer: str = Field(description="The reviewer's name in DEBATE_REVIEWER_TOKENS.")
    token_check: str = Field(
        description="HMAC of the reviewer's token keyed by the session id: a changed or removed token ends it."
    )
    created_at: datetime = _ts()
    expires_at: datetime = _ts()


class EndpointMode(SQLModel, table=True):
    """The structured-output mode an endpoint answered in, per model (debate/llm/modes.py).

    Written the first time ``structured_output = "auto"`` meets an (endpoint, model), deleted
    when a call in that mode fails, so the next run asks the endpoint again.
    """

    __tablename__ = "endpoint_modes"
    base_url: str = Field(primary_key=True)
    model: str = Field(primary_key=True)
    mode: str = Field(description="json_schema, json_object or prompt.")
    checked_at: datetime = _ts()
