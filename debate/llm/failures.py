"""What went wrong with a call: one-line error details, which failures are transient, how
long the server asked us to wait, and the usage a reply reported."""

from __future__ import annotations

import email.utils
import math
import re
from datetime import UTC, datetime
from http import HTTPStatus

import httpx2
import openai
from openai.types.chat import ChatCompletion

from debate.core.calls import Usage

# Besides every 5xx: request timeout, conflict and rate limiting are worth retrying.
_RETRYABLE_STATUS = frozenset({408, 409, 429})


def one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def status_text(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def error_detail(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        message = inner.get("message") if isinstance(inner, dict) else inner
        if message:
            return one_line(str(message), 200)
    return ""


def retry_after_s(exc: BaseException) -> float | None:
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


class NotACompletion(Exception):
    """A 2xx reply that is not a chat completion."""


class StreamStalled(Exception):
    """A streamed reply that stopped coming: no token for ``idle_timeout_s``, or past ``total_timeout_s``."""

    def __init__(self, what: str, seconds: float) -> None:
        super().__init__(f"{what} after {seconds:g} s")
        self.what = what
        self.seconds = seconds


# What servers say when a prompt is longer than their context: llama.cpp (needed, window),
# then OpenAI and vLLM (window, needed).
_LLAMA_CONTEXT = re.compile(r"request \((\d+) tokens\) exceeds the available context size \((\d+) tokens\)")
_OPENAI_CONTEXT = re.compile(r"maximum context length is (\d+) tokens.*?(?:resulted in|requested) (\d+) tokens", re.S)


def context_overflow(exc: openai.APIStatusError) -> tuple[int, int] | None:
    """(tokens needed, window) when a 400 says the request exceeds the context, else None."""
    if exc.status_code != 400:
        return None
    body = exc.body if isinstance(exc.body, dict) else {}
    inner = body.get("error", body)
    if (
        isinstance(inner, dict)
        and isinstance(inner.get("n_prompt_tokens"), int)
        and isinstance(inner.get("n_ctx"), int)
    ):
        return inner["n_prompt_tokens"], inner["n_ctx"]
    text = error_detail(exc) or str(exc)
    if match := _LLAMA_CONTEXT.search(text):
        return int(match.group(1)), int(match.group(2))
    if match := _OPENAI_CONTEXT.search(text):
        return int(match.group(2)), int(match.group(1))
    return None


def usage_of(response: ChatCompletion) -> Usage:
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


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: timeouts, dropped connections, 408/409/429 and 5xx.

    Not: a refused connection or an unknown host (nothing is listening there; retrying only
    delays the error), a URL the HTTP client cannot use, and every other 4xx (401/403: the key).
    """
    if isinstance(exc, openai.APITimeoutError | StreamStalled):
        return True
    if isinstance(exc, openai.APIConnectionError):
        return not isinstance(
            exc.__cause__, httpx2.ConnectError | httpx2.UnsupportedProtocol | httpx2.LocalProtocolError
        )
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in _RETRYABLE_STATUS or exc.status_code >= 500
    return False
