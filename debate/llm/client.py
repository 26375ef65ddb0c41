"""The one seam between the engine and chat models.

Everything that talks to a model goes through a :class:`~debate.core.calls.ChatClient`: give it messages and a
pydantic model, get back a validated instance of that model plus a record of every HTTP call
made to get it (:class:`~debate.core.calls.Attempt`). :class:`OpenAIChatClient` implements it for any
OpenAI-compatible endpoint; with :mod:`~debate.llm.structured`, :mod:`~debate.llm.failures`,
:mod:`~debate.llm.transport`, :mod:`~debate.llm.streaming` and :mod:`~debate.llm.attempts` it is
the only code that imports ``openai`` (an import-linter contract keeps it so).

Three kinds of trouble are handled here, and only here:

* transport failures (connection errors, timeouts, a stalled stream, 408/409/429/5xx) are
  retried with exponential backoff and jitter, honouring ``Retry-After``; the SDK's own
  retries are off;
* replies that do not validate against the schema are re-asked: the first ask's messages plus
  a bounded quote of the bad reply and the validation error (never the whole reply, so a
  re-ask is never much longer than the first ask);
* replies cut at the output cap (``finish_reason == "length"``) are re-asked once for
  brevity; cut again, the error names the cap and the setting it came from.

Requests are fitted to the endpoint's context before they are sent (:meth:`OpenAIChatClient.fit`,
:mod:`~debate.llm.budget`). Endpoints differ in how they constrain output
(``EndpointConfig.structured_output``): ``json_schema`` sends a strict schema as
``response_format``; ``json_object`` and ``prompt`` put the schema in the last system message
between :data:`SCHEMA_MARKER_OPEN` and :data:`SCHEMA_MARKER_CLOSE` (``json_object`` also asks
for JSON mode).
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

import openai
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from debate.core.calls import (
    Attempt,
    ChatMessage,
    Completion,
    CompletionFailed,
    PromptFit,
    PromptVariant,
    T,
    attempt_progress,
    log_attempt,
    report_failure,
)
from debate.llm.attempts import cost_of, failed_attempt, price_key, reply_attempt
from debate.llm.budget import ESTIMATE_CHARS_PER_TOKEN, ContextBudget, estimate_prompt_tokens
from debate.llm.failures import (
    NotACompletion,
    StreamStalled,
    context_overflow,
    error_detail,
    is_transient,
    one_line,
    retry_after_s,
    status_text,
)
from debate.llm.modes import MODES, MemoryModes, Mode, ModeCache, detect_mode
from debate.llm.ratelimit import RateLimiter
from debate.llm.streaming import RawReply
from debate.llm.structured import (
    REASK_ERROR_CHARS,
    REASK_QUOTE_CHARS,
    SCHEMA_MARKER_CLOSE,
    SCHEMA_MARKER_OPEN,
    bounded_json_schema,
    estimate_tokens,
    reask_messages,
    reask_text,
    schema_instructions,
    strict_json_schema,
    strip_fences,
    summarize_validation,
    with_schema_instructions,
)
from debate.llm.transport import Pools, limiter_slot

__all__ = [
    "SCHEMA_MARKER_CLOSE",
    "SCHEMA_MARKER_OPEN",
    "EndpointConfig",
    "OpenAIChatClient",
    "estimate_tokens",
    "price_key",
    "schema_instructions",
    "strict_json_schema",
]

# Reply tokens assumed where no cap is configured (for fitting and the rate-limit estimate;
# the actual count replaces it once the endpoint reports usage).
_DEFAULT_REPLY_TOKEN_ESTIMATE = 512
# Room kept for a re-ask's own words (its quote of the bad reply gets what else is spare).
_REASK_RESERVE_TOKENS = estimate_prompt_tokens([ChatMessage(role="user", content=reask_text("x" * REASK_ERROR_CHARS))])


def _default_sampling() -> dict[str, float | int | None]:
    return {"temperature": 0.0}


class EndpointConfig(BaseModel):
    """Plain settings for one OpenAI-compatible endpoint."""

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = None
    api_key: str | None = None
    model: str
    # "auto": the first call for a model probes the endpoint (see :mod:`debate.llm.modes`).
    structured_output: Literal["auto", "json_schema", "json_object", "prompt"] = "json_schema"
    # Without streaming, the whole request; with it, connecting and sending.
    timeout_s: float = Field(default=60.0, gt=0)
    # > 0: requests stream, and fail when no token arrives for this long (or after
    # total_timeout_s, when set), however long a steadily writing model takes.
    idle_timeout_s: float = Field(default=0.0, ge=0)
    total_timeout_s: float = Field(default=0.0, ge=0)
    # Calls per message list (the first ask, and each re-ask) for transport failures.
    max_transport_attempts: int = Field(default=5, ge=1)
    max_reasks: int = Field(default=2, ge=0)
    backoff_initial_s: float = Field(default=0.5, ge=0)
    backoff_max_s: float = Field(default=20.0, ge=0)
    max_retry_after_s: float = Field(default=120.0, ge=0)
    # model -> (USD per 1M prompt tokens, USD per 1M completion tokens)
    prices: dict[str, tuple[float, float]] = Field(default_factory=dict)
    # Sent with every request; None leaves a parameter to the server. Per-call overrides
    # (a role's) go to complete(sampling=...).
    sampling: dict[str, float | int | None] = Field(default_factory=_default_sampling)
    # Reply caps: a role's own, else the default; None sends none.
    max_output_tokens: int | None = Field(default=None, ge=1)
    role_max_output_tokens: dict[str, int] = Field(default_factory=dict)
    # OpenAI's reasoning models only accept max_completion_tokens; most other servers max_tokens.
    max_tokens_param: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    # A llama.cpp server decodes under a grammar built from the schema: cap strings and lists there.
    grammar_bounds: bool = False
    # The context window where the server cannot say (llama.cpp's /props can); 0 = unknown.
    context_tokens: int = Field(default=0, ge=0)

    def output_cap(self, role: str | None) -> tuple[int | None, str]:
        """(the reply cap for ``role``, the setting it comes from)."""
        if role is not None and role in self.role_max_output_tokens:
            return self.role_max_output_tokens[role], f"[openai] role_max_output_tokens.{role}"
        return self.max_output_tokens, "[openai] max_output_tokens"


class OpenAIChatClient:
    """A :class:`ChatClient` for any OpenAI-compatible chat completions endpoint.

    ``api_key`` falls back to ``OPENAI_API_KEY`` and then to a placeholder so key-less local
    servers work; ``base_url`` falls back to ``OPENAI_BASE_URL`` and then to OpenAI's API.
    """

    def __init__(
        self, config: EndpointConfig, *, limiter: RateLimiter | None = None, modes: ModeCache | None = None
    ) -> None:
        self.config = config
        self.limiter = limiter
        self.modes: ModeCache = modes if modes is not None else MemoryModes()
        self._mode_of: dict[str, Mode] = {}
        self._mode_lock = asyncio.Lock()
        self._api_key = config.api_key or os.environ.get("OPENAI_API_KEY") or "not-needed"
        self._transport = Pools(api_key=self._api_key, base_url=config.base_url, timeout_s=config.timeout_s)
        self.base_url = self._transport.base_url
        self.budget = ContextBudget(
            self.base_url, configured=config.context_tokens, headers={"Authorization": f"Bearer {self._api_key}"}
        )

    @property
    def _pools(self) -> list[openai.AsyncOpenAI]:
        return self._transport.clients

    @property
    def _in_flight(self) -> list[int]:
        return self._transport.in_flight

    async def _post(self, wire: list[dict[str, str]], request: dict[str, Any]) -> Any:
        """One plain (unstreamed) request, parsed as the SDK's ``ChatCompletion``."""
        return await self._transport.post({"messages": wire, **request})

    async def aclose(self) -> None:
        """Close the underlying HTTP connection pools."""
        await self._transport.aclose()
        await self.budget.aclose()

    async def __aenter__(self) -> OpenAIChatClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- structured-output mode --------------------------------------------------------------

    async def mode(self, model: str | None = None) -> Mode:
        """The structured-output mode for ``model``: configured, or with "auto" found once."""
        configured = self.config.structured_output
        if configured != "auto":
            return configured
        model = model or self.config.model
        if model not in self._mode_of:
            async with self._mode_lock:  # concurrent judges ask once, not three times
                if model not in self._mode_of:
                    self._mode_of[model] = await self._find_mode(model)
        return self._mode_of[model]

    async def _find_mode(self, model: str) -> Mode:
        known = self.modes.get(self.base_url, model)
        if known in MODES:
            return known  # type: ignore[return-value]
        # Two tries a mode: a server that refuses a mode (HTTP 500 from llama-cpp-python) is not
        # waited out through every retry, and a lone transient error does not rule a mode out.
        config = self.config.model_copy(
            update={
                "model": model,
                "max_reasks": 0,
                "max_transport_attempts": min(2, self.config.max_transport_attempts),
            }
        )
        found = await detect_mode(
            # The probe's requests count against the endpoint's rate limits like any other.
            lambda mode: OpenAIChatClient(config.model_copy(update={"structured_output": mode}), limiter=self.limiter),
            where=self.base_url,
        )
        self.modes.put(self.base_url, model, found)
        return found

    def _forget_mode(self, model: str) -> None:
        """After a failed call in a found mode: the next run asks the endpoint again."""
        if self.config.structured_output == "auto" and self._mode_of.pop(model, None) is not None:
            self.modes.forget(self.base_url, model)

    # -- fitting the prompt ------------------------------------------------------------------

    @staticmethod
    def _prepare(messages: list[ChatMessage], schema: type[BaseModel], mode: Mode) -> list[ChatMessage]:
        """The messages as sent: with the schema in the system prompt where the mode needs it."""
        if mode == "json_schema":
            return list(messages)
        return with_schema_instructions(messages, schema)

    def _reply_room(self, role: str | None) -> int:
        cap = self.config.output_cap(role)[0] or _DEFAULT_REPLY_TOKEN_ESTIMATE
        return cap + (_REASK_RESERVE_TOKENS if self.config.max_reasks else 0)

    async def fit(
        self,
        variants: Iterable[PromptVariant],
        schema: type[BaseModel],
        *,
        role: str | None = None,
        model: str | None = None,
    ) -> tuple[PromptVariant, PromptFit | None]:
        """The largest variant whose prompt, reply cap and a re-ask's room fit the context."""
        mode = await self.mode(model)
        return await self.budget.fit(
            variants,
            prepare=lambda messages: self._prepare(messages, schema, mode),
            reply_tokens=self._reply_room(role),
            what=role or "request",
        )

    def _quote_chars(self, fit: PromptFit | None) -> int:
        """How much of a bad reply a re-ask may quote and still fit the window."""
        if fit is None:
            return REASK_QUOTE_CHARS
        spare = fit.window - fit.prompt_tokens - fit.reply_tokens
        return max(0, min(REASK_QUOTE_CHARS, int(spare * ESTIMATE_CHARS_PER_TOKEN)))

    # -- one request -------------------------------------------------------------------------

    def _request(
        self,
        schema: type[BaseModel],
        model_name: str,
        mode: Mode,
        sampling: Mapping[str, float | int] | None,
        cap: int | None,
    ) -> dict[str, Any]:
        request: dict[str, Any] = {"model": model_name}
        if mode == "json_schema":
            name = re.sub(r"[^a-zA-Z0-9_-]", "_", schema.__name__)[:64]
            request["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": name, "schema": self._schema(schema), "strict": True},
            }
        elif mode == "json_object":
            request["response_format"] = {"type": "json_object"}
        for key, value in {**self.config.sampling, **(sampling or {})}.items():
            if value is not None:
                request[key] = value
        if cap is not None:
            request[self.config.max_tokens_param] = cap
        return request

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
        """Ask the model and return its reply validated as ``schema``.

        ``sampling`` (temperature, top_p, frequency_penalty, presence_penalty, seed) overrides
        the endpoint's defaults for this call; ``role`` picks its reply cap; ``fit`` (from
        :meth:`fit`) bounds what a re-ask may add.

        Transport failures are retried (see module docs); an invalid reply is re-asked up to
        ``max_reasks`` times. Raises :class:`CompletionFailed`, carrying every attempt, when
        the endpoint refuses, stays unreachable, or keeps replying invalid JSON.
        """
        model_name = model or self.config.model
        mode = await self.mode(model_name)
        try:
            return await self._complete(messages, schema, model_name, mode, sampling, role, fit)
        except CompletionFailed:
            self._forget_mode(model_name)
            raise

    async def _complete(
        self,
        messages: list[ChatMessage],
        schema: type[T],
        model_name: str,
        mode: Mode,
        sampling: Mapping[str, float | int] | None,
        role: str | None,
        fit: PromptFit | None,
    ) -> Completion[T]:
        cap, setting = self.config.output_cap(role)
        request = self._request(schema, model_name, mode, sampling, cap)
        first = self._prepare(messages, schema, mode)
        first_tokens = fit.prompt_tokens if fit is not None else estimate_tokens(first)
        attempts: list[Attempt] = []
        ask, kind, reasks, cuts = first, "first", 0, 0
        while True:
            prompt_tokens = first_tokens + estimate_tokens(ask[len(first) :]) if reasks else first_tokens
            reply = await self._exchange(ask, request, attempts, kind, (prompt_tokens, cap))
            try:
                parsed = schema.model_validate_json(strip_fences(reply.content))
            except ValidationError as exc:
                cut_at = (cap or reply.usage.completion_tokens or 0) if reply.finish_reason == "length" else None
                cuts += cut_at is not None
                # An empty, refused or cut reply says why better than a JSON parse error.
                summary = (
                    f"reply cut at {cut_at} output tokens"
                    if cut_at is not None
                    else attempts[-1].error or summarize_validation(exc)
                )
                self._amend_last(attempts, outcome="invalid_reply", error=summary)
                report_failure(attempts[-1], retrying=reasks < self.config.max_reasks and cuts <= 1)
                if cut_at is not None and (cuts > 1 or reasks >= self.config.max_reasks):
                    source = setting if cap is not None else "the server's own limit; no cap was set"
                    raise CompletionFailed(
                        f"model reply cut at {cut_at} output tokens after {reasks} re-ask(s) ({source}): "
                        "raise the cap or ask for less",
                        attempts,
                    ) from None
                if reasks >= self.config.max_reasks:
                    raise CompletionFailed(
                        f"model reply failed validation after {reasks} re-asks: {summary.split('; ')[0]}", attempts
                    ) from None
                quoted = reask_messages(reply.content, summary, cut_at=cut_at, quote_chars=self._quote_chars(fit))
                ask, kind, reasks = [*first, *quoted], "reask", reasks + 1
                continue
            return Completion(parsed=parsed, raw=reply.content, attempts=attempts, model=model_name, messages=ask)

    @staticmethod
    def _amend_last(attempts: list[Attempt], **update: Any) -> None:
        old = attempts[-1]
        attempts[-1] = old.model_copy(update=update)
        log_attempt(attempts[-1], replaces=old)

    # -- one message list: first call plus transport retries ----------------------------------

    async def _exchange(
        self,
        convo: list[ChatMessage],
        request: dict[str, Any],
        attempts: list[Attempt],
        kind: str,
        tokens: tuple[int, int | None],
    ) -> RawReply:
        """``tokens``: (the prompt's, the reply cap) for the rate limiter and unreported usage."""
        cfg = self.config
        retrying = AsyncRetrying(
            stop=stop_after_attempt(cfg.max_transport_attempts),
            wait=self._backoff,
            retry=retry_if_exception(self._should_retry),
            reraise=True,
        )
        body = {"messages": [{"role": m.role, "content": m.content} for m in convo], **request}
        calls = 0
        try:
            async for attempt in retrying:
                with attempt:
                    calls += 1
                    this_kind = kind if calls == 1 else "transport_retry"
                    last = calls >= cfg.max_transport_attempts
                    return await self._call_once(body, tokens, attempts, this_kind, last)
        except openai.APIStatusError as exc:
            raise CompletionFailed(self._status_failure(exc, calls), attempts) from exc
        except (openai.APITimeoutError, StreamStalled) as exc:
            what = f"stalled ({exc})" if isinstance(exc, StreamStalled) else f"timed out (timeout {cfg.timeout_s:g} s)"
            raise CompletionFailed(f"model endpoint {self.base_url} {what} after {calls} attempt(s)", attempts) from exc
        except openai.APIConnectionError as exc:
            cause = one_line(str(exc.__cause__ or exc), 200)
            tries = f" after {calls} attempt(s)" if calls > 1 else ""
            raise CompletionFailed(f"model endpoint {self.base_url} unreachable{tries}: {cause}", attempts) from exc
        except openai.APIError as exc:
            raise CompletionFailed(
                f"model endpoint {self.base_url} failed: {one_line(str(exc), 200)}", attempts
            ) from exc
        except NotACompletion as exc:
            raise CompletionFailed(str(exc), attempts) from exc.__cause__
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _schema(self, schema: type[BaseModel]) -> dict[str, Any]:
        return bounded_json_schema(schema) if self.config.grammar_bounds else strict_json_schema(schema)

    def _status_failure(self, exc: openai.APIStatusError, calls: int) -> str:
        status = exc.status_code
        detail = error_detail(exc)
        suffix = f" ({detail})" if detail else ""
        overflow = context_overflow(exc)
        if overflow is not None:
            needed, window = overflow
            hint = "" if self.config.context_tokens else " (set [openai] context_tokens so prompts are trimmed to fit)"
            return (
                f"model endpoint {self.base_url} refused the request: it needs {needed:,} tokens "
                f"but the context window is {window:,} tokens{hint}"
            )
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

    async def _call_once(
        self, body: dict[str, Any], tokens: tuple[int, int | None], attempts: list[Attempt], kind: str, last: bool
    ) -> RawReply:
        """One call; ``last``: no transport retry follows a failure (for the progress report)."""
        model_name: str = body["model"]
        prompt_tokens, cap = tokens
        estimate = prompt_tokens + (cap or _DEFAULT_REPLY_TOKEN_ESTIMATE)
        base = {"n": len(attempts) + 1, "kind": kind, "model": model_name, "messages_sent": len(body["messages"])}
        cfg = self.config
        async with limiter_slot(self.limiter, estimate) as ticket:
            started_at = datetime.now(UTC)
            t0 = time.perf_counter()
            try:
                with attempt_progress(base["n"], base["kind"], attempts[-1] if attempts else None):
                    reply = await self._transport.call(
                        body,
                        idle_s=cfg.idle_timeout_s,
                        total_s=cfg.total_timeout_s,
                        prompt_estimate=prompt_tokens,
                    )
            except (openai.APIError, NotACompletion, StreamStalled, ValueError, asyncio.CancelledError) as exc:
                if ticket is not None and not isinstance(
                    exc, openai.APITimeoutError | StreamStalled | asyncio.CancelledError
                ):
                    ticket.record_tokens(0)  # refused or never delivered: nothing was spent
                latency_ms = (time.perf_counter() - t0) * 1000
                self._record(attempts, failed_attempt(exc, base, started_at, latency_ms, cfg.timeout_s))
                if not isinstance(exc, asyncio.CancelledError):  # cancelled: the turn's end says so
                    report_failure(attempts[-1], retrying=not last and self._should_retry(exc))
                if isinstance(exc, openai.APIError | StreamStalled | asyncio.CancelledError):
                    raise
                # A 200 that is not a chat completion (an HTML page, a JSON error, bad JSON)
                # usually means a wrong base URL: retrying will not help.
                raise NotACompletion(
                    f"model endpoint {self.base_url} did not return a chat completion: {one_line(str(exc), 160)}"
                ) from exc
            latency_ms = (time.perf_counter() - t0) * 1000
            if ticket is not None and reply.usage.total_tokens is not None:
                ticket.record_tokens(reply.usage.total_tokens)
        cost = cost_of(cfg.prices, model_name, reply.usage, reply.served_model)
        self._record(attempts, reply_attempt(reply, base, started_at, latency_ms, cost))
        return reply

    @staticmethod
    def _record(attempts: list[Attempt], attempt: Attempt) -> None:
        attempts.append(attempt)
        log_attempt(attempt)
