"""The record of one call (:class:`~debate.core.calls.Attempt`): what came back, or why nothing
did, what it cost, and which price applies to the model that answered."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import openai

from debate.core.calls import Attempt, Usage
from debate.llm.failures import NotACompletion, StreamStalled, error_detail, one_line, status_text
from debate.llm.streaming import RawReply


def price_key(configured: str, served: str | None, prices: Mapping[str, object]) -> str | None:
    """Which price applies to a reply: the model the server says answered, not the one asked for.

    OpenAI answers ``gpt-4o-mini-2024-07-18`` for ``gpt-4o-mini`` (a dated snapshot of the same
    price); llama.cpp names the GGUF file it loaded. Anything else priced by the configured name
    would be a guess, so it is unknown.
    """
    if served is None or served == configured or served in prices:
        return served or configured
    if re.fullmatch(re.escape(configured) + r"-\d{4}-\d{2}-\d{2}", served):
        return configured
    if served.endswith(".gguf") and Path(served).stem in prices:
        return Path(served).stem
    return None


def cost_of(
    prices: Mapping[str, tuple[float, float]], model_name: str, usage: Usage, served: str | None = None
) -> float | None:
    """USD for ``usage`` at the price of the model that answered; None when unknown."""
    price = prices.get(price_key(model_name, served, prices) or "")
    if price is None or usage.prompt_tokens is None or usage.completion_tokens is None:
        return None
    prompt_price, completion_price = price
    return (usage.prompt_tokens * prompt_price + usage.completion_tokens * completion_price) / 1e6


def reply_attempt(
    reply: RawReply, base: dict[str, Any], started_at: datetime, latency_ms: float, cost_usd: float | None
) -> Attempt:
    """The record of a call that brought a reply back (validated later)."""
    error: str | None = None
    if not reply.has_choices:
        error = "reply had no choices"
    elif not reply.content:
        error = (
            f"refused: {one_line(reply.refusal, 200)}"
            if reply.refusal
            else f"empty reply (finish_reason={reply.finish_reason})"
        )
    return Attempt(
        **base,
        started_at=started_at,
        latency_ms=latency_ms,
        outcome="ok",
        error=error,
        raw_reply=reply.content,
        usage=reply.usage,
        cost_usd=cost_usd,
        served_model=reply.served_model,
    )


def failed_attempt(
    exc: BaseException, base: dict[str, Any], started_at: datetime, latency_ms: float, timeout_s: float
) -> Attempt:
    """The record of a call that brought no usable reply back (its usage is unknown)."""
    status: int | None = None
    outcome: Literal["http_error", "timeout", "connection_error", "cancelled"]
    if isinstance(exc, openai.APITimeoutError):
        outcome, error = "timeout", f"timed out after {timeout_s:g} s"
    elif isinstance(exc, StreamStalled):
        outcome, error = "timeout", f"stream stalled: {exc}"
    elif isinstance(exc, openai.APIConnectionError):
        outcome, error = "connection_error", one_line(str(exc.__cause__ or exc), 200)
    elif isinstance(exc, openai.APIStatusError):
        outcome, status = "http_error", exc.status_code
        detail = error_detail(exc)
        error = status_text(status) + (f": {detail}" if detail else "")
    elif isinstance(exc, NotACompletion | ValueError):
        outcome, status = "http_error", 200
        error = f"not a chat completion: {one_line(str(exc), 200)}"
    else:  # cancelled: the run was cancelled, or a sibling's failure ended this call
        outcome, error = "cancelled", "cancelled before the reply came"
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
