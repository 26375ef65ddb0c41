"""The one seam between the engine and chat models.

Everything that talks to a model goes through a :class:`ChatClient`: give it messages and a
pydantic model, get back a validated instance of that model plus a record of every HTTP call
made to get it (:class:`Attempt`). :class:`OpenAIChatClient` implements it for any
OpenAI-compatible endpoint and is the only place in the project that imports ``openai``.

Two kinds of failure are handled here, and only here:

* transport failures (connection errors, timeouts, 408/409/429/5xx) are retried with
  exponential backoff and jitter, honouring ``Retry-After``; the SDK's own retries are off;
* replies that do not validate against the schema are re-asked: the bad reply and the
  validation error are appended to the conversation and the model is asked again.

Endpoints differ in how they constrain output (``EndpointConfig.structured_output``):
``json_schema`` sends a strict schema as ``response_format``; ``json_object`` and ``prompt``
put the schema in the last system message between :data:`SCHEMA_MARKER_OPEN` and
:data:`SCHEMA_MARKER_CLOSE` (``json_object`` also asks for JSON mode).
"""

from __future__ import annotations

import email.utils
import functools
import json
import math
import os
import random
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any, Generic, Literal, Protocol, TypeVar, runtime_checkable

import httpx2
import openai
from openai.lib._pydantic import to_strict_json_schema
from openai.types.chat import ChatCompletion
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from debate.core.errors import ModelEndpointError
from debate.llm.ratelimit import RateLimiter, SlotTicket

__all__ = [
    "SCHEMA_MARKER_CLOSE",
    "SCHEMA_MARKER_OPEN",
    "Attempt",
    "ChatClient",
    "ChatMessage",
    "Completion",
    "CompletionFailed",
    "EndpointConfig",
    "OpenAIChatClient",
    "Usage",
    "estimate_tokens",
    "schema_instructions",
    "strict_json_schema",
]

T = TypeVar("T", bound=BaseModel)

SCHEMA_MARKER_OPEN = "<json-schema>"
SCHEMA_MARKER_CLOSE = "</json-schema>"

# Tokens assumed for a reply when no max_output_tokens is configured (rate-limit estimate only;
# the actual count replaces it once the endpoint reports usage).
_DEFAULT_REPLY_TOKEN_ESTIMATE = 512
_RETRYABLE_STATUS = frozenset({408, 409, 429})
# The rate-limit ticket of the call the current task is making; the HTTP trace hook stamps it
# when the request headers go out.
_SENDING: ContextVar[SlotTicket | None] = ContextVar("debate_llm_sending", default=None)
# Connection pools: see OpenAIChatClient.__init__.
_CALLS_PER_POOL = 16
_MAX_POOLS = 32
_FENCE_RE = re.compile(r"^\s*```[a-zA-Z0-9_-]*[ \t]*\n?(.*?)\n?[ \t]*```\s*$", re.DOTALL)


# -- boundary types --------------------------------------------------------------------------


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
        return _sum_usage(a.usage for a in self.attempts)

    @property
    def cost_usd(self) -> float | None:
        """Cost summed over all attempts; None if any attempt's cost is unknown."""
        return _sum_cost(self.attempts)


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


class EndpointConfig(BaseModel):
    """Plain settings for one OpenAI-compatible endpoint."""

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = None
    api_key: str | None = None
    model: str
    structured_output: Literal["json_schema", "json_object", "prompt"] = "json_schema"
    timeout_s: float = Field(default=60.0, gt=0)
    # Calls per message list (the first ask, and each re-ask) for transport failures.
    max_transport_attempts: int = Field(default=5, ge=1)
    max_reasks: int = Field(default=2, ge=0)
    backoff_initial_s: float = Field(default=0.5, ge=0)
    backoff_max_s: float = Field(default=20.0, ge=0)
    max_retry_after_s: float = Field(default=120.0, ge=0)
    # model -> (USD per 1M prompt tokens, USD per 1M completion tokens)
    prices: dict[str, tuple[float, float]] = Field(default_factory=dict)
    temperature: float | None = 0.0
    max_output_tokens: int | None = Field(default=None, ge=1)
    # OpenAI's reasoning models only accept max_completion_tokens; most other servers max_tokens.
    max_tokens_param: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"


# -- helpers ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _strict_schema_json(schema: type[BaseModel]) -> str:
    return json.dumps(to_strict_json_schema(schema), separators=(",", ":"))


def strict_json_schema(schema: type[BaseModel]) -> dict[str, Any]:
    """The strict JSON schema (all fields required, no extra keys) sent for ``schema``."""
    return json.loads(_strict_schema_json(schema))


def schema_instructions(schema: type[BaseModel]) -> str:
    """The text appended to the system prompt when the endpoint cannot enforce a schema."""
    return (
        "Reply with only a JSON object, with no prose and no code fences, "
        "that matches this JSON Schema:\n"
        f"{SCHEMA_MARKER_OPEN}\n{_strict_schema_json(schema)}\n{SCHEMA_MARKER_CLOSE}"
    )


def _with_schema_instructions(
    messages: list[ChatMessage], schema: type[BaseModel]
) -> list[ChatMessage]:
    text = schema_instructions(schema)
    out = list(messages)
    for i in range(len(out) - 1, -1, -1):
        if out[i].role == "system":
            out[i] = ChatMessage(role="system", content=f"{out[i].content}\n\n{text}")
            return out
    return [ChatMessage(role="system", content=text), *out]


def estimate_tokens(messages: list[ChatMessage]) -> int:
    """A rough prompt-token count (4 characters a token plus per-message overhead)."""
    return sum(len(m.content) // 4 + 4 for m in messages)


def _strip_fences(text: str) -> str:
    match = _FENCE_RE.match(text)
    return match.group(1) if match else text


def _summarize_validation(exc: ValidationError, limit: int = 3) -> str:
    errors = exc.errors(include_url=False)
    parts = []
    for err in errors[:limit]:
        loc = ".".join(str(p) for p in err.get("loc", ()))
        msg = str(err.get("msg", "")).replace("\n", " ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    if len(errors) > limit:
        parts.append(f"and {len(errors) - limit} more error(s)")
    return "; ".join(parts) or str(exc).splitlines()[0]


def _reask_message(summary: str) -> ChatMessage:
    return ChatMessage(
        role="user",
        content=(
            f"Your previous reply could not be used: {summary}. "
            "Reply again with only a JSON object that matches the required schema, "
            "with no prose and no code fences."
        ),
    )


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _status_text(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def _error_detail(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        message = inner.get("message") if isinstance(inner, dict) else inner
        if message:
            return _one_line(str(message), 200)
    return ""


def _retry_after_s(exc: BaseException) -> float | None:
    """Seconds the server asked us to wait (``retry-after-ms`` or ``Retry-After``), if any."""
    response = getattr(exc, "response", None)
    if response is None:
        return None
    headers = response.headers
    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            ms = float(value)
            if math.isfinite(ms) and ms >= 0:
                return ms / 1000.0
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class _NotACompletion(Exception):
    """A 2xx reply that is not a chat completion."""


def _usage_of(response: ChatCompletion) -> Usage:
    usage = response.usage
    if usage is None:
        return Usage()

    def count(name: str) -> int | None:
        value = getattr(usage, name, None)
        return value if isinstance(value, int) else None

    return Usage(
        prompt_tokens=count("prompt_tokens"),
        completion_tokens=count("completion_tokens"),
        total_tokens=count("total_tokens"),
    )


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, openai.APIConnectionError):  # includes APITimeoutError
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in _RETRYABLE_STATUS or exc.status_code >= 500
    return False


def _sum_usage(usages: Any) -> Usage:
    totals: dict[str, int | None] = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    for u in usages:
        for key, so_far in totals.items():
            value = getattr(u, key)
            totals[key] = None if value is None or so_far is None else so_far + value
    return Usage(**totals)


def _sum_cost(attempts: list[Attempt]) -> float | None:
    total = 0.0
    for a in attempts:
        if a.cost_usd is None:
            return None
        total += a.cost_usd
    return total


async def _trace(event: str, info: dict[str, Any]) -> None:
    if event.endswith("send_request_headers.started"):
        ticket = _SENDING.get()
        if ticket is not None:
            ticket.mark_started()


async def _on_request(request: httpx2.Request) -> None:
    # Only rate-limited calls need the (small) cost of tracing.
    if _SENDING.get() is not None:
        request.extensions["trace"] = _trace


# -- the OpenAI-compatible client ------------------------------------------------------------


class OpenAIChatClient:
    """A :class:`ChatClient` for any OpenAI-compatible chat completions endpoint.

    Holds ``AsyncOpenAI`` clients, one per connection pool, opened as concurrency grows (SDK
    retries off: retries happen here). ``api_key`` falls back to ``OPENAI_API_KEY`` and then
    to a placeholder so key-less local servers work; ``base_url`` falls back to
    ``OPENAI_BASE_URL`` and then to OpenAI's API.
    """

    def __init__(self, config: EndpointConfig, *, limiter: RateLimiter | None = None) -> None:
        self.config = config
        self.limiter = limiter
        self._api_key = config.api_key or os.environ.get("OPENAI_API_KEY") or "not-needed"
        # Several SDK clients, each with its own connection pool: httpcore scans (and probes the
        # socket of) every pooled connection twice per request, so one pool holding a hundred
        # connections costs more CPU per call than the call itself. A new pool is opened only
        # when every open one already carries _CALLS_PER_POOL calls, so a client making a few
        # calls at a time keeps reusing one pool's connections.
        self._pools: list[openai.AsyncOpenAI] = [self._new_pool()]
        self._in_flight: list[int] = [0]
        self.base_url = str(self._pools[0].base_url).rstrip("/")

    def _new_pool(self) -> openai.AsyncOpenAI:
        http_client = openai.DefaultAsyncHttpx2Client(
            timeout=self.config.timeout_s, event_hooks={"request": [_on_request]}
        )
        return openai.AsyncOpenAI(
            api_key=self._api_key,
            base_url=self.config.base_url,
            timeout=self.config.timeout_s,
            max_retries=0,
            http_client=http_client,
        )

    def _pick_pool(self) -> int:
        """The index of the least busy pool, opening another when all are full."""
        i = min(range(len(self._pools)), key=self._in_flight.__getitem__)
        if self._in_flight[i] >= _CALLS_PER_POOL and len(self._pools) < _MAX_POOLS:
            self._pools.append(self._new_pool())
            self._in_flight.append(0)
            i = len(self._pools) - 1
        return i

    async def aclose(self) -> None:
        """Close the underlying HTTP connection pools."""
        for pool in self._pools:
            await pool.close()

    async def __aenter__(self) -> OpenAIChatClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def complete(
        self, messages: list[ChatMessage], schema: type[T], *, model: str | None = None
    ) -> Completion[T]:
        """Ask the model and return its reply validated as ``schema``.

        Transport failures are retried (see module docs); an invalid reply is re-asked up to
        ``max_reasks`` times. Raises :class:`CompletionFailed`, carrying every attempt, when
        the endpoint refuses, stays unreachable, or keeps replying invalid JSON.
        """
        model_name = model or self.config.model
        mode = self.config.structured_output
        request: dict[str, Any] = {"model": model_name}
        if mode == "json_schema":
            name = re.sub(r"[^a-zA-Z0-9_-]", "_", schema.__name__)[:64]
            request["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": name, "schema": strict_json_schema(schema), "strict": True},
            }
            convo = list(messages)
        else:
            if mode == "json_object":
                request["response_format"] = {"type": "json_object"}
            convo = _with_schema_instructions(messages, schema)
        if self.config.temperature is not None:
            request["temperature"] = self.config.temperature
        if self.config.max_output_tokens is not None:
            request[self.config.max_tokens_param] = self.config.max_output_tokens

        attempts: list[Attempt] = []
        kind: Literal["first", "reask"] = "first"
        reasks = 0
        while True:
            content = await self._exchange(convo, request, attempts, kind)
            try:
                parsed = schema.model_validate_json(_strip_fences(content))
            except ValidationError as exc:
                # An empty or refused reply already says why better than a JSON parse error.
                summary = attempts[-1].error or _summarize_validation(exc)
                attempts[-1] = attempts[-1].model_copy(
                    update={"outcome": "invalid_reply", "error": summary}
                )
                if reasks >= self.config.max_reasks:
                    first_line = summary.split("; ")[0]
                    raise CompletionFailed(
                        f"model reply failed validation after {reasks} re-asks: {first_line}",
                        attempts,
                    ) from None
                convo = [
                    *convo,
                    ChatMessage(role="assistant", content=content),
                    _reask_message(summary),
                ]
                reasks += 1
                kind = "reask"
                continue
            return Completion(
                parsed=parsed, raw=content, attempts=attempts, model=model_name, messages=convo
            )

    # -- one message list: first call plus transport retries ----------------------------------

    async def _exchange(
        self,
        convo: list[ChatMessage],
        request: dict[str, Any],
        attempts: list[Attempt],
        kind: Literal["first", "reask"],
    ) -> str:
        cfg = self.config
        retrying = AsyncRetrying(
            stop=stop_after_attempt(cfg.max_transport_attempts),
            wait=self._backoff,
            retry=retry_if_exception(self._should_retry),
            reraise=True,
        )
        wire = [{"role": m.role, "content": m.content} for m in convo]
        estimate = estimate_tokens(convo) + (cfg.max_output_tokens or _DEFAULT_REPLY_TOKEN_ESTIMATE)
        calls = 0
        try:
            async for attempt in retrying:
                with attempt:
                    calls += 1
                    this_kind = kind if calls == 1 else "transport_retry"
                    return await self._call_once(wire, request, estimate, attempts, this_kind)
        except openai.APIStatusError as exc:
            raise CompletionFailed(self._status_failure(exc, calls), attempts) from exc
        except openai.APITimeoutError as exc:
            raise CompletionFailed(
                f"model endpoint {self.base_url} timed out after {calls} attempt(s) "
                f"(timeout {cfg.timeout_s:g} s)",
                attempts,
            ) from exc
        except openai.APIConnectionError as exc:
            cause = _one_line(str(exc.__cause__ or exc), 200)
            raise CompletionFailed(
                f"model endpoint {self.base_url} unreachable after {calls} attempt(s): {cause}",
                attempts,
            ) from exc
        except openai.APIError as exc:
            raise CompletionFailed(
                f"model endpoint {self.base_url} failed: {_one_line(str(exc), 200)}", attempts
            ) from exc
        except _NotACompletion as exc:
            raise CompletionFailed(str(exc), attempts) from exc.__cause__
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _status_failure(self, exc: openai.APIStatusError, calls: int) -> str:
        status = exc.status_code
        detail = _error_detail(exc)
        suffix = f" ({detail})" if detail else ""
        if not _is_transient(exc):
            return (
                f"model endpoint {self.base_url} refused the request: "
                f"{_status_text(status)}{suffix}"
            )
        retry_after = _retry_after_s(exc)
        if retry_after is not None and retry_after > self.config.max_retry_after_s:
            return (
                f"model endpoint {self.base_url} asked to retry after {retry_after:g} s "
                f"(more than the {self.config.max_retry_after_s:g} s allowed): "
                f"{_status_text(status)}"
            )
        return (
            f"model endpoint {self.base_url} kept failing after {calls} attempt(s): "
            f"{_status_text(status)}{suffix}"
        )

    def _should_retry(self, exc: BaseException) -> bool:
        if not _is_transient(exc):
            return False
        retry_after = _retry_after_s(exc)
        return retry_after is None or retry_after <= self.config.max_retry_after_s

    def _backoff(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        retry_after = _retry_after_s(exc) if exc is not None else None
        if retry_after is not None:
            return retry_after  # the server said when; _should_retry already capped it
        # Exponential with "equal jitter": half fixed, half random, so retries spread out
        # without ever collapsing to zero.
        cap = min(
            self.config.backoff_max_s,
            self.config.backoff_initial_s * 2 ** (state.attempt_number - 1),
        )
        return cap / 2 + random.uniform(0, cap / 2)

    @asynccontextmanager
    async def _slot(self, estimate: int) -> AsyncIterator[SlotTicket | None]:
        if self.limiter is None:
            yield None
        else:
            # The start is stamped when the request leaves (see _trace), so connection set-up
            # and SDK overhead do not skew the window against the server's clock.
            async with self.limiter.slot(estimate, defer_start=True) as ticket:
                token = _SENDING.set(ticket)
                try:
                    yield ticket
                finally:
                    _SENDING.reset(token)

    async def _post(self, wire: list[dict[str, str]], request: dict[str, Any]) -> Any:
        """One chat completion request on the least busy pool.

        ``post`` is what ``chat.completions.create`` ends in, minus the SDK's TypedDict
        transform of the body, which walks the whole JSON schema on every call; our body is
        already plain JSON. The reply is still parsed into the SDK's ``ChatCompletion``.
        """
        i = self._pick_pool()
        self._in_flight[i] += 1
        try:
            return await self._pools[i].post(
                "/chat/completions",
                cast_to=ChatCompletion,
                body={"messages": wire, **request},
                options={"security": {"bearer_auth": True}},
            )
        finally:
            self._in_flight[i] -= 1

    async def _call_once(
        self,
        wire: list[dict[str, str]],
        request: dict[str, Any],
        estimate: int,
        attempts: list[Attempt],
        kind: Literal["first", "transport_retry", "reask"],
    ) -> str:
        model_name: str = request["model"]
        base = {
            "n": len(attempts) + 1,
            "kind": kind,
            "model": model_name,
            "messages_sent": len(wire),
        }
        async with self._slot(estimate) as ticket:
            started_at = datetime.now(UTC)
            t0 = time.perf_counter()
            try:
                response = await self._post(wire, request)
                if not isinstance(response, ChatCompletion) or response.choices is None:
                    raise _NotACompletion(_one_line(repr(response), 120))
            except (openai.APIError, _NotACompletion, ValueError) as exc:
                latency_ms = (time.perf_counter() - t0) * 1000
                if ticket is not None and not isinstance(exc, openai.APITimeoutError):
                    ticket.record_tokens(0)  # refused or never delivered: nothing was spent
                attempts.append(self._failed_attempt(exc, base, started_at, latency_ms))
                if isinstance(exc, openai.APIError):
                    raise
                # A 200 that is not a chat completion (an HTML page, a JSON error, bad JSON)
                # usually means a wrong base URL: retrying will not help.
                raise _NotACompletion(
                    f"model endpoint {self.base_url} did not return a chat completion: "
                    f"{_one_line(str(exc), 160)}"
                ) from exc
            latency_ms = (time.perf_counter() - t0) * 1000
            usage = _usage_of(response)
            if ticket is not None and usage.total_tokens is not None:
                ticket.record_tokens(usage.total_tokens)

        error: str | None = None
        content = ""
        if response.choices:
            choice = response.choices[0]
            content = choice.message.content or ""
            if not content:
                refusal = getattr(choice.message, "refusal", None)
                error = f"refused: {_one_line(refusal, 200)}" if refusal else (
                    f"empty reply (finish_reason={choice.finish_reason})"
                )
        else:
            error = "reply had no choices"
        attempts.append(
            Attempt(
                **base,
                started_at=started_at,
                latency_ms=latency_ms,
                outcome="ok",
                error=error,
                raw_reply=content,
                usage=usage,
                cost_usd=self._cost(model_name, usage),
            )
        )
        return content

    def _failed_attempt(
        self, exc: Exception, base: dict[str, Any], started_at: datetime, latency_ms: float
    ) -> Attempt:
        status: int | None = None
        if isinstance(exc, openai.APITimeoutError):
            outcome: Literal["http_error", "timeout", "connection_error"] = "timeout"
            error = f"timed out after {self.config.timeout_s:g} s"
        elif isinstance(exc, openai.APIConnectionError):
            outcome = "connection_error"
            error = _one_line(str(exc.__cause__ or exc), 200)
        elif isinstance(exc, openai.APIStatusError):
            outcome = "http_error"
            status = exc.status_code
            detail = _error_detail(exc)
            error = _status_text(status) + (f": {detail}" if detail else "")
        else:
            outcome = "http_error"
            status = 200 if isinstance(exc, (_NotACompletion, ValueError)) else None
            error = _one_line(str(exc), 200)
            if status is not None:
                error = f"not a chat completion: {error}"
        return Attempt(
            **base,
            started_at=started_at,
            latency_ms=latency_ms,
            outcome=outcome,
            http_status=status,
            error=error,
            raw_reply=None,
            usage=Usage(),
            cost_usd=None,
        )

    def _cost(self, model_name: str, usage: Usage) -> float | None:
        price = self.config.prices.get(model_name)
        if price is None or usage.prompt_tokens is None or usage.completion_tokens is None:
            return None
        prompt_price, completion_price = price
        prompt_cost = usage.prompt_tokens * prompt_price
        return (prompt_cost + usage.completion_tokens * completion_price) / 1e6
