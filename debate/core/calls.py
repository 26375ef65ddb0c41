"""What a model call is, independent of any endpoint: messages, usage, attempts, completions.

These are the records every backend produces (the model client for each HTTP call, the offline
agents for each computation) and the transcript stores; :class:`ChatClient` is the protocol the
engine's model-backed agents call; :func:`progress_sink` lets a display follow a call under way
(its attempts, a streamed reply's tokens so far). No I/O here: the OpenAI-compatible implementation lives in
:mod:`debate.llm.client`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Generic, Literal, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from debate.core.errors import ModelEndpointError

T = TypeVar("T", bound=BaseModel)
AttemptKind = Literal["first", "transport_retry", "reask"]
ProgressPhase = Literal["started", "receiving", "failed", "ended"]


class ChatMessage(BaseModel):
    """One chat turn."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Literal["system", "user", "assistant"]
    content: str


class Usage(BaseModel):
    """Token counts the endpoint reported; ``None`` means unknown (never 0 for missing)."""

    model_config = ConfigDict(extra="forbid")

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    estimated: bool = False
    """True when the endpoint reported nothing and these are our own estimates (a stream
    without its usage chunk); never set for counts the endpoint gave."""


class Attempt(BaseModel):
    """One HTTP call (or one offline computation) made while answering a request."""

    model_config = ConfigDict(extra="forbid")

    n: int
    kind: AttemptKind
    started_at: datetime
    latency_ms: float
    outcome: Literal["ok", "invalid_reply", "http_error", "timeout", "connection_error", "cancelled"]
    http_status: int | None = None
    error: str | None = None
    raw_reply: str | None = None
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float | None = None
    model: str
    """The model asked for (the configured name)."""
    served_model: str | None = None
    """The model the server says answered (its reply's ``model``); None when it did not say."""
    messages_sent: int


@dataclass
class Completion(Generic[T]):
    """A validated reply and how it was obtained.

    ``messages`` is the conversation as finally sent, including any schema instructions and
    re-ask turns; ``attempts`` lists every call in order.
    """

    parsed: T
    raw: str
    attempts: list[Attempt]
    model: str
    messages: list[ChatMessage] = field(default_factory=list)

    @property
    def usage(self) -> Usage:
        """Tokens summed over all attempts; a field is None if any attempt lacked it."""
        return sum_usage(a.usage for a in self.attempts)

    @property
    def cost_usd(self) -> float | None:
        """Cost summed over all attempts; None if any attempt's cost is unknown."""
        return sum_cost(self.attempts)


class CompletionFailed(ModelEndpointError):
    """The endpoint could not produce a valid reply; ``attempts`` records every call made."""

    def __init__(self, message: str, attempts: list[Attempt] | None = None) -> None:
        super().__init__(message)
        self.attempts: list[Attempt] = list(attempts or [])


@runtime_checkable
class ChatClient(Protocol):
    """Anything that turns messages into a validated instance of ``schema``."""

    async def complete(
        self,
        messages: list[ChatMessage],
        schema: type[T],
        *,
        model: str | None = None,
        sampling: Mapping[str, float | int] | None = None,
        role: str | None = None,
        fit: PromptFit | None = None,
    ) -> Completion[T]:
        """Ask the model and return its reply parsed as ``schema``; raise CompletionFailed.

        ``role`` (proposer, critic, judge) picks the role's output cap where one is set; ``fit``
        (from :meth:`PromptFitter.fit`) keeps a re-ask inside the context window."""
        ...


# ---------------------------------------------------------------- fitting a prompt to a context


@dataclass(frozen=True)
class PromptVariant:
    """One rendering of a prompt, and what was left out of it to make it smaller."""

    messages: list[ChatMessage]
    evidence_dropped: tuple[str, ...] = ()
    rounds_shortened: tuple[int, ...] = ()


class PromptFit(BaseModel):
    """How a turn's prompt was fitted to the endpoint's context window (stored with the turn)."""

    model_config = ConfigDict(extra="forbid")

    window: int = Field(description="Context tokens of the endpoint (per request).")
    window_source: Literal["server", "configured"]
    prompt_tokens: int = Field(description="Tokens of the prompt sent, as counted before sending.")
    full_prompt_tokens: int = Field(description="Tokens of the untrimmed prompt.")
    reply_tokens: int = Field(description="Output tokens reserved: the reply cap (and room for a re-ask).")
    counted: Literal["tokenizer", "estimate"] = Field(description="Counted by the server's tokenizer, or estimated.")
    evidence_dropped: list[str] = Field(default_factory=list, description="Evidence ids left out, lowest rank first.")
    rounds_shortened: list[int] = Field(default_factory=list, description="Earlier rounds shown by their claims only.")

    @property
    def trimmed(self) -> bool:
        return bool(self.evidence_dropped or self.rounds_shortened)


@runtime_checkable
class PromptFitter(Protocol):
    """A client that can count a prompt against its endpoint's context window."""

    async def fit(
        self,
        variants: Iterable[PromptVariant],
        schema: type[BaseModel],
        *,
        role: str | None = None,
        model: str | None = None,
    ) -> tuple[PromptVariant, PromptFit | None]:
        """The first (largest) variant that fits with the role's reply cap; None when the window
        is unknown (then the first variant, untrimmed). Raises CompletionFailed when none fits."""
        ...


# ---------------------------------------------------------------- every call, even a cancelled one

_ATTEMPT_LOG: ContextVar[list[Attempt] | None] = ContextVar("debate_attempt_log", default=None)


@contextmanager
def attempt_log() -> Iterator[list[Attempt]]:
    """Collect every :class:`Attempt` clients make in this context, as they are made.

    A caller whose call is cancelled (a sibling judge failed, the run was cancelled) gets no
    :class:`CompletionFailed` carrying the attempts; this list still has them, so their usage
    is kept.
    """
    log: list[Attempt] = []
    token = _ATTEMPT_LOG.set(log)
    try:
        yield log
    finally:
        _ATTEMPT_LOG.reset(token)


def log_attempt(attempt: Attempt, *, replaces: Attempt | None = None) -> None:
    """Report an attempt to the enclosing :func:`attempt_log`, if any (clients call this);
    ``replaces``: an attempt reported earlier that this one amends (a reply found invalid)."""
    log = _ATTEMPT_LOG.get()
    if log is None:
        return
    for i, logged in enumerate(log):
        if replaces is not None and logged is replaces:
            log[i] = attempt
            return
    log.append(attempt)


def sum_usage(usages: Iterable[Usage]) -> Usage:
    """Token counts summed field by field; a field is None if any usage lacks it."""
    totals: dict[str, int | None] = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    estimated = False
    for u in usages:
        estimated = estimated or u.estimated
        for key, so_far in totals.items():
            value = getattr(u, key)
            totals[key] = None if value is None or so_far is None else so_far + value
    return Usage(**totals, estimated=estimated)


def sum_cost(attempts: Iterable[Attempt]) -> float | None:
    """Cost summed over attempts; None if any attempt's cost is unknown."""
    total = 0.0
    for a in attempts:
        if a.cost_usd is None:
            return None
        total += a.cost_usd
    return total


# ---------------------------------------------------------------- progress of a call under way

PROGRESS_INTERVAL_S = 0.5
"""A streamed reply reports its token count at most this often (per reply)."""


@dataclass(frozen=True, slots=True)
class Speaker:
    """Which turn a call is for, as far as the layers around it have said (None: not said)."""

    run_id: str | None = None
    round: int | None = None
    role: str | None = None
    seat: int = 0


@dataclass(frozen=True, slots=True)
class Progress:
    """One step of a turn's model call, for a display (see :func:`progress_sink`).

    ``started``: an attempt went out (``previous`` says why the one before it failed);
    ``receiving``: a streamed reply has brought ``tokens`` content chunks so far (about a token
    each: an estimate, not the server's count); ``failed``: the attempt failed with ``outcome``,
    and ``retrying`` says whether another attempt follows; ``ended``: the turn's call is over,
    however it ended.
    """

    speaker: Speaker
    phase: ProgressPhase
    attempt: int = 0
    kind: AttemptKind | None = None
    tokens: int | None = None
    previous: str | None = None
    outcome: str | None = None
    http_status: int | None = None
    error: str | None = None
    retrying: bool = False

    @property
    def reason(self) -> str:
        """Why a ``failed`` attempt failed, in a few words (``HTTP 500``, ``timeout``)."""
        return failure_label(self.outcome, self.http_status, self.error)


ProgressSink = Callable[[Progress], None]

_SINK: ContextVar[ProgressSink | None] = ContextVar("debate_progress_sink", default=None)
_NOBODY = Speaker()  # frozen: safe to share as the default
_SPEAKER: ContextVar[Speaker] = ContextVar("debate_speaker", default=_NOBODY)
_CURRENT: ContextVar[Progress | None] = ContextVar("debate_progress_attempt", default=None)
_log = logging.getLogger("debate.progress")


def failure_label(outcome: str | None, http_status: int | None = None, error: str | None = None) -> str:
    """A failed attempt's outcome in a few words, for a status line."""
    if outcome == "http_error":
        return "not a chat completion" if http_status in (None, 200) else f"HTTP {http_status}"
    if outcome == "invalid_reply":
        return "reply cut" if (error or "").startswith("reply cut") else "invalid reply"
    return (outcome or "failed").replace("_", " ")


def _emit(sink: ProgressSink, event: Progress) -> None:
    try:
        sink(event)
    except Exception:  # a display must never fail the call it shows
        _log.exception("progress display failed")


@contextmanager
def progress_sink(sink: ProgressSink | None) -> Iterator[None]:
    """Send the :class:`Progress` of every model call made in this context to ``sink``.

    The sink is called on the event loop, between chunks of a reply: it must return at once.
    """
    token = _SINK.set(sink)
    try:
        yield
    finally:
        _SINK.reset(token)


@contextmanager
def speaking(
    *, run_id: str | None = None, round: int | None = None, role: str | None = None, seat: int | None = None
) -> Iterator[Speaker]:
    """Say which turn calls made in this context are for (fields given here override the
    enclosing scope's). A scope naming a role is one turn's call: leaving it reports ``ended``."""
    outer = _SPEAKER.get()
    speaker = Speaker(
        run_id=outer.run_id if run_id is None else run_id,
        round=outer.round if round is None else round,
        role=outer.role if role is None else role,
        seat=outer.seat if seat is None else seat,
    )
    token = _SPEAKER.set(speaker)
    try:
        yield speaker
    finally:
        _SPEAKER.reset(token)
        sink = _SINK.get()
        if role is not None and sink is not None:
            _emit(sink, Progress(speaker, "ended"))


@contextmanager
def attempt_progress(n: int, kind: AttemptKind, previous: Attempt | None = None) -> Iterator[None]:
    """A client's attempt ``n`` is under way: reports ``started``; a streamed reply read in this
    context reports its tokens through :func:`token_ticker`. ``previous``: the failed attempt
    this one follows."""
    sink = _SINK.get()
    if sink is None:
        yield
        return
    why = failure_label(previous.outcome, previous.http_status, previous.error) if previous is not None else None
    event = Progress(_SPEAKER.get(), "started", n, kind, previous=why)
    token = _CURRENT.set(event)
    _emit(sink, event)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def report_failure(attempt: Attempt, *, retrying: bool) -> None:
    """A client's attempt failed (``retrying``: another attempt follows)."""
    sink = _SINK.get()
    if sink is None:
        return
    event = Progress(
        _SPEAKER.get(),
        "failed",
        attempt.n,
        attempt.kind,
        outcome=attempt.outcome,
        http_status=attempt.http_status,
        error=attempt.error,
        retrying=retrying,
    )
    _emit(sink, event)


class TokenTicker:
    """Reports a streamed reply's content chunks so far: the first at once, then at most every
    :data:`PROGRESS_INTERVAL_S` (a reply is a chunk a token; a report a chunk would cost more
    than reading it)."""

    __slots__ = ("_due", "_sink", "_started")

    def __init__(self, sink: ProgressSink, started: Progress) -> None:
        self._sink, self._started, self._due = sink, started, 0.0

    def __call__(self, chunks: int) -> None:
        if not chunks:
            return
        now = time.monotonic()
        if now < self._due:
            return
        self._due = now + PROGRESS_INTERVAL_S
        _emit(self._sink, replace(self._started, phase="receiving", tokens=chunks))


def token_ticker() -> TokenTicker | None:
    """A ticker for the streamed reply of the attempt under way; None when nobody listens."""
    sink, started = _SINK.get(), _CURRENT.get()
    return None if sink is None or started is None else TokenTicker(sink, started)
