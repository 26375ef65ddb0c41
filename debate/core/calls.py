"""What a model call is, independent of any endpoint: messages, usage, attempts, completions.

These are the records every backend produces (the model client for each HTTP call, the offline
agents for each computation) and the transcript stores; :class:`ChatClient` is the protocol the
engine's model-backed agents call. No I/O here: the OpenAI-compatible implementation lives in
:mod:`debate.llm.client`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, Literal, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from debate.core.errors import ModelEndpointError

T = TypeVar("T", bound=BaseModel)


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


class Attempt(BaseModel):
    """One HTTP call (or one offline computation) made while answering a request."""

    model_config = ConfigDict(extra="forbid")

    n: int
    kind: Literal["first", "transport_retry", "reask"]
    started_at: datetime
    latency_ms: float
    outcome: Literal["ok", "invalid_reply", "http_error", "timeout", "connection_error"]
    http_status: int | None = None
    error: str | None = None
    raw_reply: str | None = None
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float | None = None
    model: str
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
        self, messages: list[ChatMessage], schema: type[T], *, model: str | None = None
    ) -> Completion[T]:
        """Ask the model and return its reply parsed as ``schema``; raise CompletionFailed."""
        ...


def sum_usage(usages: Iterable[Usage]) -> Usage:
    """Token counts summed field by field; a field is None if any usage lacks it."""
    totals: dict[str, int | None] = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    for u in usages:
        for key, so_far in totals.items():
            value = getattr(u, key)
            totals[key] = None if value is None or so_far is None else so_far + value
    return Usage(**totals)


def sum_cost(attempts: Iterable[Attempt]) -> float | None:
    """Cost summed over attempts; None if any attempt's cost is unknown."""
    total = 0.0
    for a in attempts:
        if a.cost_usd is None:
            return None
        total += a.cost_usd
    return total
