"""A fake OpenAI-compatible HTTP server for tests and benchmarks.

:class:`FakeOpenAIServer` is a real HTTP server (uvicorn + a small Starlette app) running in a
background thread with its own event loop, so clients talk to it exactly as they would to a
model endpoint: over TCP, through the openai SDK. It answers ``POST /v1/chat/completions``
(non-streaming) and ``GET /v1/models``.

Replies come from a *script* first — :class:`Reply` and :class:`Fault` items consumed one per
request in arrival order — and then from a *responder*, a function of the request body that
returns the reply content. :func:`schema_responder` (the default) answers with a deterministic
valid JSON instance of the schema the client asked for.

:class:`InstantChatClient` answers the same way in-process, without HTTP, to measure what the
engine costs on its own.

Run standalone (e.g. as a subprocess that a test kills)::

    python -m debate.llm.fake --port 0 --latency 1.0 --log requests.jsonl

prints ``READY http://127.0.0.1:PORT/v1`` once listening.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import hashlib
import inspect
import json
import logging
import math
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, TypeVar

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:
    from pydantic import BaseModel

    from debate.llm.client import ChatMessage, Completion

    T = TypeVar("T", bound=BaseModel)

# The markers debate.llm.client puts around the schema for json_object/prompt endpoints. Mirrored
# rather than imported: importing debate.llm.client pulls in the openai SDK (~1 s), and the standalone
# server must start fast. tests/test_fake_server.py checks the two stay equal.
SCHEMA_MARKER_OPEN = "<json-schema>"
SCHEMA_MARKER_CLOSE = "</json-schema>"

__all__ = [
    "Fault",
    "FakeOpenAIServer",
    "InstantChatClient",
    "LoggedRequest",
    "Reply",
    "Responder",
    "example_from_schema",
    "main",
    "schema_from_request",
    "schema_responder",
]

_logger = logging.getLogger(__name__)

Responder = Callable[[dict[str, Any]], "str | Awaitable[str]"]


# -- script items ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """Answer the next request with this content (``usage=False`` omits the usage block)."""

    content: str
    usage: bool = True


@dataclass(frozen=True)
class Fault:
    """A misbehaviour for the next request; build with the static constructors."""

    kind: Literal["status", "delay", "drop", "malformed", "raw"]
    status_code: int | None = None
    retry_after: float | None = None
    retry_after_ms: int | None = None
    seconds: float = 0.0
    text: str = ""
    content_type: str = "text/html"

    @staticmethod
    def status(
        code: int, retry_after: float | None = None, retry_after_ms: int | None = None
    ) -> Fault:
        """Reply with an OpenAI-style error body and this HTTP status (optionally Retry-After)."""
        return Fault(
            "status", status_code=code, retry_after=retry_after, retry_after_ms=retry_after_ms
        )

    @staticmethod
    def delay(seconds: float) -> Fault:
        """Sleep this long before answering normally (to trip client timeouts)."""
        return Fault("delay", seconds=seconds)

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
        if self.kind == "delay":
            return f"delay:{self.seconds:g}"
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


# -- schema-driven replies -------------------------------------------------------------------

_MARKER_RE = re.compile(
    re.escape(SCHEMA_MARKER_OPEN) + r"\s*(.*?)\s*" + re.escape(SCHEMA_MARKER_CLOSE), re.DOTALL
)
_MAX_DEPTH = 12


def _message_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def schema_from_request(body: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON schema a chat request asks for, or None.

    Looks at ``response_format.json_schema.schema`` first, then for a schema between the
    ``<json-schema>`` markers in the messages (system messages first, latest first).
    """
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema")
        if isinstance(schema, dict):
            return schema
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    ordered = [m for m in messages if m.get("role") in ("system", "developer")][::-1]
    ordered += [m for m in messages if m.get("role") not in ("system", "developer")][::-1]
    for message in ordered:
        match = _MARKER_RE.search(_message_text(message))
        if match:
            try:
                schema = json.loads(match.group(1))
            except json.JSONDecodeError:
                continue
            if isinstance(schema, dict):
                return schema
    return None


def _resolve_ref(ref: str, root: dict[str, Any]) -> dict[str, Any]:
    if not ref.startswith("#"):
        raise ValueError(f"only local $ref supported, got {ref!r}")
    node: Any = root
    for part in ref.lstrip("#").strip("/").split("/"):
        if part:
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _number(schema: dict[str, Any], integer: bool) -> float | int:
    lo = schema.get("minimum")
    hi = schema.get("maximum")
    xlo = schema.get("exclusiveMinimum")
    xhi = schema.get("exclusiveMaximum")
    if integer:
        low = None
        if lo is not None:
            low = math.ceil(lo)
        if xlo is not None:
            low = max(low if low is not None else -math.inf, math.floor(xlo) + 1)
        high = None
        if hi is not None:
            high = math.floor(hi)
        if xhi is not None:
            high = min(high if high is not None else math.inf, math.ceil(xhi) - 1)
        value = int(low) if low is not None else 0
        if high is not None and value > high:
            value = int(high)
        return value
    low_f = max(v for v in (lo, xlo, -math.inf) if v is not None)
    high_f = min(v for v in (hi, xhi, math.inf) if v is not None)

    def ok(v: float) -> bool:
        return (
            (lo is None or v >= lo)
            and (hi is None or v <= hi)
            and (xlo is None or v > xlo)
            and (xhi is None or v < xhi)
        )

    if ok(0.5):
        return 0.5
    if math.isfinite(low_f) and math.isfinite(high_f):
        return (low_f + high_f) / 2
    if math.isfinite(low_f):
        return float(low_f) if ok(float(low_f)) else float(low_f) + 1.0
    return float(high_f) if ok(float(high_f)) else float(high_f) - 1.0


def _string(schema: dict[str, Any], name: str | None) -> str:
    fmt = schema.get("format")
    if fmt == "date-time":
        return "2024-01-01T00:00:00Z"
    if fmt == "date":
        return "2024-01-01"
    if fmt == "time":
        return "00:00:00"
    if fmt == "uuid":
        return "00000000-0000-4000-8000-000000000000"
    if fmt == "email":
        return "someone@example.org"
    if fmt in ("uri", "url"):
        return "https://example.org/"
    text = f"example {name}" if name else "example text"
    min_len = int(schema.get("minLength", 0))
    max_len = schema.get("maxLength")
    if len(text) < min_len:
        text = text + "x" * (min_len - len(text))
    if max_len is not None:
        text = text[: int(max_len)]
    return text


def example_from_schema(
    schema: dict[str, Any],
    root: dict[str, Any] | None = None,
    *,
    name: str | None = None,
    _depth: int = 0,
) -> Any:
    """A deterministic instance of a JSON schema (as pydantic and the OpenAI strict format emit).

    Strings become short text, numbers 0.5 (or a value inside the bounds), integers their
    minimum or 0, booleans False, arrays one item (or ``minItems``), enums their first value,
    objects every property. Follows ``$ref``/``$defs``, takes the first non-null ``anyOf``.
    """
    root = schema if root is None else root
    deep = _depth > _MAX_DEPTH
    if "$ref" in schema:
        target = _resolve_ref(schema["$ref"], root)
        return example_from_schema(target, root, name=name, _depth=_depth + 1)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema and schema["enum"]:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if key in schema and schema[key]:
            variants = schema[key]
            non_null = [v for v in variants if v.get("type") != "null"]
            if deep and len(non_null) < len(variants):
                return None  # stop recursive structures at a nullable branch
            pick = non_null[0] if non_null else variants[0]
            return example_from_schema(pick, root, name=name, _depth=_depth + 1)
    if "allOf" in schema and schema["allOf"]:
        parts = [
            example_from_schema(p, root, name=name, _depth=_depth + 1) for p in schema["allOf"]
        ]
        if all(isinstance(p, dict) for p in parts):
            merged: dict[str, Any] = {}
            for p in parts:
                merged.update(p)
            return merged
        return parts[0]
    typ = schema.get("type")
    if isinstance(typ, list):
        non_null_types = [t for t in typ if t != "null"]
        if deep and "null" in typ:
            return None
        typ = non_null_types[0] if non_null_types else "null"
    if typ is None:
        if "properties" in schema:
            typ = "object"
        elif "items" in schema or "prefixItems" in schema:
            typ = "array"
    if typ == "string":
        return _string(schema, name)
    if typ == "integer":
        return _number(schema, integer=True)
    if typ == "number":
        return _number(schema, integer=False)
    if typ == "boolean":
        return False
    if typ == "null":
        return None
    if typ == "array":
        prefix = schema.get("prefixItems")
        if isinstance(prefix, list):
            return [example_from_schema(p, root, name=name, _depth=_depth + 1) for p in prefix]
        min_items = int(schema.get("minItems", 0))
        max_items = schema.get("maxItems")
        count = max(min_items, 0 if deep else 1)
        if max_items is not None:
            count = min(count, int(max_items))
        items = schema.get("items")
        if not isinstance(items, dict) or count == 0:
            return []
        if schema.get("uniqueItems") and "enum" in items and count > 1:
            return list(items["enum"][:count])
        item = example_from_schema(items, root, name=name, _depth=_depth + 1)
        return [item for _ in range(count)]
    if typ == "object":
        props = schema.get("properties") or {}
        return {
            key: example_from_schema(sub, root, name=key, _depth=_depth + 1)
            for key, sub in props.items()
        }
    return None  # an unconstrained schema ({}): null is valid for it


def schema_responder(body: dict[str, Any]) -> str:
    """Reply content for a chat request: a valid JSON instance of its requested schema.

    Returns ``"{}"`` when the request names no schema.
    """
    schema = schema_from_request(body)
    if schema is None:
        return "{}"
    return json.dumps(example_from_schema(schema))


# -- the server ------------------------------------------------------------------------------


def _estimate_tokens(text: str) -> int:
    return max(1, len(text) // 4)


def _error_body(status: int, message: str) -> dict[str, Any]:
    kind = {
        400: "invalid_request_error",
        401: "authentication_error",
        403: "permission_error",
        404: "not_found_error",
        429: "rate_limit_error",
    }.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


class FakeOpenAIServer:
    """A local OpenAI-compatible chat endpoint with scriptable replies and faults.

    ``responder(body) -> content`` answers requests the script does not cover (it may also be
    async); ``latency_s`` delays every reply (without blocking other requests). Use as a
    context manager, or call :meth:`start` / :meth:`stop`.
    """

    def __init__(
        self,
        responder: Responder | None = None,
        *,
        latency_s: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
        log_file: IO[str] | None = None,
    ) -> None:
        self.responder: Responder = responder or schema_responder
        self.latency_s = latency_s
        self.host = host
        self._requested_port = port
        self._port: int | None = None
        self._log_file = log_file
        self._lock = threading.Lock()
        self._requests: list[LoggedRequest] = []
        self._script: collections.deque[ScriptItem] = collections.deque()
        self._in_flight = 0
        self._max_in_flight = 0
        self._thread: threading.Thread | None = None
        self._uvicorn: uvicorn.Server | None = None
        self._start_error: BaseException | None = None
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
            ]
        )

    @classmethod
    def from_function(cls, fn: Responder, **kwargs: Any) -> FakeOpenAIServer:
        """A server whose unscripted replies come from ``fn(body)``."""
        return cls(fn, **kwargs)

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port the server listens on (known once started)."""
        if self._port is None:
            raise RuntimeError("server not started")
        return self._port

    @property
    def base_url(self) -> str:
        """The OpenAI base URL to give clients, e.g. ``http://127.0.0.1:PORT/v1``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"

    def start(self, timeout_s: float = 10.0) -> FakeOpenAIServer:
        """Start listening in a background thread; returns once the socket accepts connections."""
        if self._thread is not None:
            return self
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets whose
        # proto says TCP, and without it Nagle + delayed ACK add ~40 ms to every reply.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._requested_port))
        sock.listen(2048)
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            _SendExposer(self.app),
            http="h11",  # the drop fault reaches into h11's transport
            lifespan="off",
            log_level="warning",
            access_log=False,
            backlog=2048,
            timeout_keep_alive=30,
        )
        self._uvicorn = uvicorn.Server(config)

        def run() -> None:
            try:
                assert self._uvicorn is not None
                asyncio.run(self._uvicorn.serve(sockets=[sock]))
            except BaseException as exc:  # noqa: BLE001 - reported to start()
                self._start_error = exc
            finally:
                sock.close()

        self._thread = threading.Thread(target=run, name=f"fake-openai-{self._port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._uvicorn.started:
            if self._start_error is not None or not self._thread.is_alive():
                raise RuntimeError(f"fake server failed to start: {self._start_error!r}")
            if time.monotonic() > deadline:
                raise RuntimeError("fake server did not start in time")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        """Stop the server; requests still in progress are abandoned."""
        if self._uvicorn is None or self._thread is None:
            return
        self._uvicorn.should_exit = True
        self._uvicorn.force_exit = True  # do not wait for slow (delayed) handlers
        self._thread.join(timeout=10)
        self._thread = None
        self._uvicorn = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- script and log -----------------------------------------------------------------------

    def script(self, items: Iterable[ScriptItem]) -> None:
        """Queue replies/faults, consumed one per chat request in arrival order."""
        with self._lock:
            self._script.extend(items)

    @property
    def pending_script(self) -> int:
        """How many scripted items are still unconsumed."""
        with self._lock:
            return len(self._script)

    @property
    def requests(self) -> list[LoggedRequest]:
        """A copy of the chat-request log, in arrival order."""
        with self._lock:
            return list(self._requests)

    @property
    def request_count(self) -> int:
        """How many chat requests arrived."""
        with self._lock:
            return len(self._requests)

    @property
    def max_in_flight(self) -> int:
        """The most chat requests that were being handled at the same time."""
        with self._lock:
            return self._max_in_flight

    def reset(self) -> None:
        """Forget logged requests, the in-flight maximum and any unconsumed script items."""
        with self._lock:
            self._requests.clear()
            self._script.clear()
            self._max_in_flight = self._in_flight

    # -- handlers ------------------------------------------------------------------------------

    async def _models(self, request: Request) -> Response:
        return JSONResponse(
            {
                "object": "list",
                "data": [
                    {"id": "fake-model", "object": "model", "created": 0, "owned_by": "debate"}
                ],
            }
        )

    def _amend(self, entry: LoggedRequest, status: int, fault: str) -> None:
        """Correct the in-memory log entry of a request whose reply failed after arrival."""
        with self._lock:
            for i, logged in enumerate(self._requests):
                if logged is entry:
                    self._requests[i] = LoggedRequest(entry.t, entry.body, status, fault)
                    return

    def _log(self, t: float, body: dict[str, Any], status: int, fault: str | None) -> LoggedRequest:
        entry = LoggedRequest(t, body, status, fault)
        with self._lock:
            self._requests.append(entry)
            if self._log_file is not None:
                messages = body.get("messages") or [{}]
                last = messages[-1] if isinstance(messages[-1], dict) else {}
                digest = hashlib.sha256(_message_text(last).encode()).hexdigest()
                line = {
                    "t": entry.t,
                    "status": status,
                    "fault": fault,
                    "last_message_sha256": digest,
                }
                self._log_file.write(json.dumps(line) + "\n")
                self._log_file.flush()
        return entry

    async def _chat(self, request: Request) -> Response:
        arrived = request.scope.get("extensions", {}).get("debate.arrived") or time.monotonic()
        raw = await request.body()
        try:
            body = json.loads(raw)
            if not isinstance(body, dict):
                raise ValueError("body is not an object")
        except ValueError as exc:
            self._log(arrived, {"_unparsed": raw.decode(errors="replace")}, 400, None)
            return JSONResponse(_error_body(400, f"invalid JSON body: {exc}"), status_code=400)
        with self._lock:
            item: ScriptItem | None = self._script.popleft() if self._script else None
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
        try:
            return await self._answer(request, arrived, body, item)
        except asyncio.CancelledError:
            # stop() abandons slow handlers; end quietly instead of logging a traceback.
            return Response(status_code=503)
        finally:
            with self._lock:
                self._in_flight -= 1

    async def _answer(
        self, request: Request, arrived: float, body: dict[str, Any], item: ScriptItem | None
    ) -> Response:
        fault = item.label() if isinstance(item, Fault) else None
        if isinstance(item, Fault) and item.kind == "status":
            status = int(item.status_code or 500)
            self._log(arrived, body, status, fault)
            headers: dict[str, str] = {}
            if item.retry_after is not None:
                headers["retry-after"] = f"{item.retry_after:g}"
            if item.retry_after_ms is not None:
                headers["retry-after-ms"] = str(item.retry_after_ms)
            if self.latency_s:
                await asyncio.sleep(self.latency_s)
            return JSONResponse(_error_body(status, f"scripted fault {status}"), status, headers)
        if isinstance(item, Fault) and item.kind == "raw":
            status = int(item.status_code or 200)
            self._log(arrived, body, status, fault)
            return Response(item.text, status, media_type=item.content_type)
        if isinstance(item, Fault) and item.kind == "drop":
            self._log(arrived, body, 0, fault)
            send = request.scope.get("extensions", {}).get("debate.send")
            cycle = getattr(send, "__self__", None)
            transport = getattr(cycle, "transport", None)
            if transport is None:
                raise RuntimeError("cannot drop the connection: transport not reachable")
            transport.abort()
            cycle.disconnected = True  # uvicorn then ignores our (unsent) response
            return Response(status_code=500)
        # Logged on arrival, before any latency, so a client killed mid-request still shows up.
        entry = self._log(arrived, body, 200, fault)
        usage = True
        if isinstance(item, Reply):
            content = item.content
            usage = item.usage
        elif isinstance(item, Fault) and item.kind == "malformed":
            content = item.text
        else:
            try:
                produced = self.responder(body)
                content = await produced if inspect.isawaitable(produced) else produced
            except Exception as exc:  # a broken responder is a 500, as from a real server
                _logger.exception("fake server responder failed")
                self._amend(entry, 500, "responder_error")
                return JSONResponse(_error_body(500, f"responder failed: {exc!r}"), 500)
        if isinstance(item, Fault) and item.kind == "delay":
            await asyncio.sleep(item.seconds)
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        return JSONResponse(self._completion(body, content, usage))

    @staticmethod
    def _completion(body: dict[str, Any], content: str, usage: bool) -> dict[str, Any]:
        reply: dict[str, Any] = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model") or "fake-model",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": None},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
        }
        if usage:
            prompt = sum(
                _estimate_tokens(_message_text(m)) + 4
                for m in body.get("messages") or []
                if isinstance(m, dict)
            )
            completion = _estimate_tokens(content)
            reply["usage"] = {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            }
        return reply


class _SendExposer:
    """Outermost ASGI layer: puts the arrival time and the server's own ``send`` (for the
    drop fault) in the scope."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope = dict(scope)
            scope["extensions"] = {
                **(scope.get("extensions") or {}),
                "debate.send": send,
                # Taken as soon as uvicorn has parsed the request head: the closest this
                # server gets to the arrival time without reaching into the protocol.
                "debate.arrived": time.monotonic(),
            }
        await self.app(scope, receive, send)


class InstantChatClient:
    """A :class:`debate.llm.client.ChatClient` that answers in-process, with no HTTP and no latency.

    It builds the request body an ``OpenAIChatClient`` with ``json_schema`` output would send
    and passes it to ``responder`` (default :func:`schema_responder`), so it measures what the
    engine costs without any model or transport. Usage is estimated as the fake server does;
    a reply that fails validation raises ``CompletionFailed`` (a responder is deterministic,
    so there is nothing to re-ask).
    """

    def __init__(self, responder: Responder | None = None, *, model: str = "instant") -> None:
        self.responder: Responder = responder or schema_responder
        self.model = model
        self.calls = 0
        # schema_responder's reply depends on the schema alone: build each one once.
        self._examples: dict[type[BaseModel], str] = {}

    async def complete(
        self, messages: list[ChatMessage], schema: type[T], *, model: str | None = None
    ) -> Completion[T]:
        """Answer ``messages`` with a reply validated as ``schema``."""
        # Imported here so the standalone server never loads the openai SDK.
        from datetime import UTC, datetime

        from pydantic import ValidationError

        from debate.llm.client import Attempt, Completion, CompletionFailed, Usage, strict_json_schema

        self.calls += 1
        model_name = model or self.model
        started_at = datetime.now(UTC)
        t0 = time.perf_counter()
        body: dict[str, Any] = {
            "model": model_name,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "response_format": {
                "type": "json_schema",
                "json_schema": {
                    "name": schema.__name__,
                    "schema": strict_json_schema(schema),
                    "strict": True,
                },
            },
        }
        if self.responder is schema_responder:
            if schema not in self._examples:
                self._examples[schema] = schema_responder(body)
            content = self._examples[schema]
        else:
            produced = self.responder(body)
            content = await produced if inspect.isawaitable(produced) else produced
        counts = FakeOpenAIServer._completion(body, content, usage=True)["usage"]
        attempt = Attempt(
            n=1,
            kind="first",
            started_at=started_at,
            latency_ms=(time.perf_counter() - t0) * 1000,
            outcome="ok",
            raw_reply=content,
            usage=Usage(**counts),
            cost_usd=None,
            model=model_name,
            messages_sent=len(messages),
        )
        try:
            parsed = schema.model_validate_json(content)
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            loc = ".".join(str(part) for part in err["loc"])
            first = f"{loc}: {err['msg']}" if loc else str(err["msg"])
            failed = attempt.model_copy(update={"outcome": "invalid_reply", "error": first})
            raise CompletionFailed(
                f"model reply failed validation after 0 re-asks: {first}", [failed]
            ) from None
        return Completion(
            parsed=parsed,
            raw=content,
            attempts=[attempt],
            model=model_name,
            messages=list(messages),
        )

    async def aclose(self) -> None:
        """Nothing to close; present for symmetry with ``OpenAIChatClient``."""


@contextmanager
def fake_server_process(
    latency_s: float = 0.0, *, log: Path | None = None, start_timeout_s: float = 30.0
) -> Iterator[str]:
    """Run the fake server in a child process (``python -m debate.llm.fake``); yields its base URL.

    Benchmarks use this rather than :class:`FakeOpenAIServer`'s thread: a model endpoint never
    shares the engine's process, and in a thread the server's request handling would compete
    with the engine for the GIL and be counted as the engine's cost. ``log``: where the server
    appends one JSON line per request (with its arrival time), for tests that count requests
    from several processes.
    """
    args = [sys.executable, "-m", "debate.llm.fake", "--port", "0", "--latency", str(latency_s)]
    if log is not None:
        args += ["--log", str(log)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        ready = threading.Timer(start_timeout_s, proc.kill)  # a hung start ends in EOF, not a hang
        ready.start()
        try:
            line = proc.stdout.readline()
        finally:
            ready.cancel()
        if not line.startswith("READY "):
            raise RuntimeError(f"fake server did not start: {line.strip()!r}")
        yield line.split()[1]
    finally:
        stop_processes([proc], timeout_s=10)


def worker_process(env: dict[str, str], name: str, log: Path, *, concurrency: int) -> subprocess.Popen[bytes]:
    """``debate worker --name NAME`` in a child process, its stderr written to ``log``: a file,
    not a pipe (a pipe nobody reads fills up and stalls a busy worker)."""
    with log.open("wb") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "debate", "worker", "--concurrency", str(concurrency), "--name", name],
            env=env, stdout=subprocess.DEVNULL, stderr=err,
        )


def stop_processes(procs: Iterable[subprocess.Popen[Any]], *, timeout_s: float = 20.0) -> None:
    """SIGTERM every process still running, then wait for each (killed if not ended in ``timeout_s``)."""
    procs = list(procs)
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- CLI ----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Run the fake server in the foreground until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(
        prog="python -m debate.llm.fake", description="Run a fake OpenAI-compatible server."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every reply")
    parser.add_argument("--log", type=Path, default=None, help="append one JSON line per request")
    args = parser.parse_args(argv)

    log_file = args.log.open("a", encoding="utf-8") if args.log else None
    server = FakeOpenAIServer(
        latency_s=args.latency, host=args.host, port=args.port, log_file=log_file
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server.start()
    print(f"READY {server.base_url}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        if log_file is not None:
            log_file.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
