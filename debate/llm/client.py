"""The one seam between the engine and chat models.

Everything that talks to a model goes through a :class:`~debate.core.calls.ChatClient`: give it messages and a
pydantic model, get back a validated instance of that model plus a record of every HTTP call
made to get it (:class:`~debate.core.calls.Attempt`). :class:`OpenAIChatClient` implements it for any
OpenAI-compatible endpoint; with :mod:`~debate.llm.structured` and :mod:`~debate.llm.failures`
it is the only code that imports ``openai`` (an import-linter contract keeps it so).

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

import os
import random
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

import httpx2
import openai
from openai.types.chat import ChatCompletion
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from debate.core.calls import (
    Attempt,
    ChatMessage,
    Completion,
    CompletionFailed,
    T,
    Usage,
)
from debate.llm.failures import (
    NotACompletion,
    error_detail,
    is_transient,
    one_line,
    retry_after_s,
    status_text,
    usage_of,
)
from debate.llm.ratelimit import RateLimiter, SlotTicket
from debate.llm.structured import (
    SCHEMA_MARKER_CLOSE,
    SCHEMA_MARKER_OPEN,
    estimate_tokens,
    reask_message,
    schema_instructions,
    strict_json_schema,
    strip_fences,
    summarize_validation,
    with_schema_instructions,
)

__all__ = [
    "SCHEMA_MARKER_CLOSE",
    "SCHEMA_MARKER_OPEN",
    "EndpointConfig",
    "OpenAIChatClient",
    "estimate_tokens",
    "schema_instructions",
    "strict_json_schema",
]

# Tokens assumed for a reply when no max_output_tokens is configured (rate-limit estimate only;
# the actual count replaces it once the endpoint reports usage).
_DEFAULT_REPLY_TOKEN_ESTIMATE = 512
# The rate-limit ticket of the call the current task is making; the HTTP trace hook stamps it
# when the request headers go out.
_SENDING: ContextVar[SlotTicket | None] = ContextVar("debate_llm_sending", default=None)
# Connection pools: see OpenAIChatClient.__init__.
_CALLS_PER_POOL = 16
_MAX_POOLS = 32


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
            convo = with_schema_instructions(messages, schema)
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
                parsed = schema.model_validate_json(strip_fences(content))
            except ValidationError as exc:
                # An empty or refused reply already says why better than a JSON parse error.
                summary = attempts[-1].error or summarize_validation(exc)
                attempts[-1] = attempts[-1].model_copy(update={"outcome": "invalid_reply", "error": summary})
                if reasks >= self.config.max_reasks:
                    first_line = summary.split("; ")[0]
                    raise CompletionFailed(
                        f"model reply failed validation after {reasks} re-asks: {first_line}",
                        attempts,
                    ) from None
                convo = [
                    *convo,
                    ChatMessage(role="assistant", content=content),
                    reask_message(summary),
                ]
                reasks += 1
                kind = "reask"
                continue
            return Completion(parsed=parsed, raw=content, attempts=attempts, model=model_name, messages=convo)

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
                f"model endpoint {self.base_url} timed out after {calls} attempt(s) (timeout {cfg.timeout_s:g} s)",
                attempts,
            ) from exc
        except openai.APIConnectionError as exc:
            cause = one_line(str(exc.__cause__ or exc), 200)
            raise CompletionFailed(
                f"model endpoint {self.base_url} unreachable after {calls} attempt(s): {cause}",
                attempts,
            ) from exc
        except openai.APIError as exc:
            raise CompletionFailed(
                f"model endpoint {self.base_url} failed: {one_line(str(exc), 200)}", attempts
            ) from exc
        except NotACompletion as exc:
            raise CompletionFailed(str(exc), attempts) from exc.__cause__
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _status_failure(self, exc: openai.APIStatusError, calls: int) -> str:
        status = exc.status_code
        detail = error_detail(exc)
        suffix = f" ({detail})" if detail else ""
        if not is_transient(exc):
            return f"model endpoint {self.base_url} refused the request: {status_text(status)}{suffix}"
        retry_after = retry_after_s(exc)
        if retry_after is not None and retry_after > self.config.max_retry_after_s:
            return (
                f"model endpoint {self.base_url} asked to retry after {retry_after:g} s "
                f"(more than the {self.config.max_retry_after_s:g} s allowed): "
                f"{status_text(status)}"
            )
        return f"model endpoint {self.base_url} kept failing after {calls} attempt(s): {status_text(status)}{suffix}"

    def _should_retry(self, exc: BaseException) -> bool:
        if not is_transient(exc):
            return False
        retry_after = retry_after_s(exc)
        return retry_after is None or retry_after <= self.config.max_retry_after_s

    def _backoff(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        retry_after = retry_after_s(exc) if exc is not None else None
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
                    raise NotACompletion(one_line(repr(response), 120))
            except (openai.APIError, NotACompletion, ValueError) as exc:
                latency_ms = (time.perf_counter() - t0) * 1000
                if ticket is not None and not isinstance(exc, openai.APITimeoutError):
                    ticket.record_tokens(0)  # refused or never delivered: nothing was spent
                attempts.append(self._failed_attempt(exc, base, started_at, latency_ms))
                if isinstance(exc, openai.APIError):
                    raise
                # A 200 that is not a chat completion (an HTML page, a JSON error, bad JSON)
                # usually means a wrong base URL: retrying will not help.
                raise NotACompletion(
                    f"model endpoint {self.base_url} did not return a chat completion: {one_line(str(exc), 160)}"
                ) from exc
            latency_ms = (time.perf_counter() - t0) * 1000
            usage = usage_of(response)
            if ticket is not None and usage.total_tokens is not None:
                ticket.record_tokens(usage.total_tokens)

        error: str | None = None
        content = ""
        if response.choices:
            choice = response.choices[0]
            content = choice.message.content or ""
            if not content:
                refusal = getattr(choice.message, "refusal", None)
                error = (
                    f"refused: {one_line(refusal, 200)}"
                    if refusal
                    else (f"empty reply (finish_reason={choice.finish_reason})")
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

    def _failed_attempt(self, exc: Exception, base: dict[str, Any], started_at: datetime, latency_ms: float) -> Attempt:
        status: int | None = None
        if isinstance(exc, openai.APITimeoutError):
            outcome: Literal["http_error", "timeout", "connection_error"] = "timeout"
            error = f"timed out after {self.config.timeout_s:g} s"
        elif isinstance(exc, openai.APIConnectionError):
            outcome = "connection_error"
            error = one_line(str(exc.__cause__ or exc), 200)
        elif isinstance(exc, openai.APIStatusError):
            outcome = "http_error"
            status = exc.status_code
            detail = error_detail(exc)
            error = status_text(status) + (f": {detail}" if detail else "")
        else:
            outcome = "http_error"
            status = 200 if isinstance(exc, (NotACompletion, ValueError)) else None
            error = one_line(str(exc), 200)
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
