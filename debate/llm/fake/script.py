"""The fake server's vocabulary: scripted replies and faults, the request log, responders."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

# Answers requests the script does not cover; may be sync or async.
Responder = Callable[[dict[str, Any]], "str | Awaitable[str]"]


@dataclass(frozen=True)
class Reply:
    """Answer the next request with this content (``usage=False`` omits the usage block).

    ``finish_reason="length"`` says the reply hit the output cap. A streamed request gets the
    content in chunks of ``chunk_chars`` characters, ``chunk_delay_s`` apart (default: the
    server's ``stream_delay_s``).
    """

    content: str
    usage: bool = True
    finish_reason: str = "stop"
    chunk_delay_s: float | None = None


@dataclass(frozen=True)
class Fault:
    """A misbehaviour for the next request; build with the static constructors."""

    kind: Literal["status", "delay", "drop", "malformed", "raw", "stall"]
    status_code: int | None = None
    retry_after: float | None = None
    retry_after_ms: int | None = None
    seconds: float = 0.0
    text: str = ""
    content_type: str = "text/html"

    @staticmethod
    def status(code: int, retry_after: float | None = None, retry_after_ms: int | None = None) -> Fault:
        """Reply with an OpenAI-style error body and this HTTP status (optionally Retry-After)."""
        return Fault("status", status_code=code, retry_after=retry_after, retry_after_ms=retry_after_ms)

    @staticmethod
    def delay(seconds: float) -> Fault:
        """Sleep this long before answering normally (to trip client timeouts)."""
        return Fault("delay", seconds=seconds)

    @staticmethod
    def stall(seconds: float) -> Fault:
        """Streamed: send the first chunk, then nothing for this long (a hung model).
        Not streamed: the same as :meth:`delay`."""
        return Fault("stall", seconds=seconds)

    @staticmethod
    def drop() -> Fault:
        """Close the connection without sending any response."""
        return Fault("drop")

    @staticmethod
    def malformed(text: str = "{not json") -> Fault:
        """A 200 reply whose content is not valid JSON for the schema."""
        return Fault("malformed", text=text)

    @staticmethod
    def raw(text: str, status: int = 200, content_type: str = "text/html") -> Fault:
        """Answer with this body verbatim instead of a chat completion (e.g. a proxy's page)."""
        return Fault("raw", status_code=status, text=text, content_type=content_type)

    def label(self) -> str:
        """Short name recorded in the request log, e.g. ``status:429``."""
        if self.kind == "status":
            return f"status:{self.status_code}"
        if self.kind in ("delay", "stall"):
            return f"{self.kind}:{self.seconds:g}"
        return self.kind


ScriptItem = Reply | Fault


@dataclass(frozen=True)
class LoggedRequest:
    """One request as the server saw it, logged on arrival.

    ``t`` is ``time.monotonic()`` when the request head was parsed; ``status`` is what the
    server answers (0 for a dropped connection; a failing responder turns it into 500).
    """

    t: float
    body: dict[str, Any]
    status: int
    fault: str | None
