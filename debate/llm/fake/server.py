"""The fake server itself: a Starlette app under uvicorn in a background thread, with a script."""

from __future__ import annotations

import asyncio
import collections
import hashlib
import inspect
import json
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterable
from typing import IO, Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from debate.llm.fake.schema import schema_responder
from debate.llm.fake.script import Fault, LoggedRequest, Reply, Responder, ScriptItem
from debate.llm.fake.wire import (
    CHUNK_CHARS,
    completion_body,
    error_body,
    estimate_tokens,
    message_text,
    models_body,
    stream_events,
    usage_body,
)

_logger = logging.getLogger(__name__)


class FakeOpenAIServer:
    """A local OpenAI-compatible chat endpoint with scriptable replies and faults.

    ``responder(body) -> content`` answers requests the script does not cover (it may also be
    async); ``latency_s`` delays every reply (without blocking other requests). A request with
    ``"stream": true`` is answered with server-sent events, ``stream_delay_s`` between chunks.
    ``n_ctx`` makes it look like llama.cpp: ``/props`` reports that context, ``/tokenize``
    counts (about 4 characters a token), and a longer prompt gets llama.cpp's HTTP 400.
    ``refuse_json_schema`` answers every ``json_schema`` request with HTTP 500, as
    llama-cpp-python's server does. Use as a context manager, or call :meth:`start` / :meth:`stop`.
    """

    def __init__(
        self,
        responder: Responder | None = None,
        *,
        latency_s: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
        log_file: IO[str] | None = None,
        stream_delay_s: float = 0.0,
        n_ctx: int | None = None,
        refuse_json_schema: bool = False,
    ) -> None:
        self.responder: Responder = responder or schema_responder
        self.refuse_json_schema = refuse_json_schema
        self.latency_s = latency_s
        self.stream_delay_s = stream_delay_s
        self.n_ctx = n_ctx
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
                Route("/props", self._props, methods=["GET"]),
                Route("/tokenize", self._tokenize, methods=["POST"]),
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
        sock = self._listen()
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

    def _listen(self) -> socket.socket:
        """Bind and listen before uvicorn starts, so the port is known (and taken) up front."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets whose
        # proto says TCP, and without it Nagle + delayed ACK add ~40 ms to every reply.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._requested_port))
        sock.listen(2048)
        self._port = sock.getsockname()[1]
        return sock

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
                digest = hashlib.sha256(message_text(last).encode()).hexdigest()
                line = {
                    "t": entry.t,
                    "status": status,
                    "fault": fault,
                    "last_message_sha256": digest,
                }
                self._log_file.write(json.dumps(line) + "\n")
                self._log_file.flush()
        return entry

    # -- handlers ------------------------------------------------------------------------------

    async def _models(self, request: Request) -> Response:
        return JSONResponse(models_body())

    async def _props(self, request: Request) -> Response:
        if self.n_ctx is None:
            return JSONResponse(error_body(404, "File Not Found"), 404)
        return JSONResponse({"default_generation_settings": {"n_ctx": self.n_ctx}})

    async def _tokenize(self, request: Request) -> Response:
        if self.n_ctx is None:
            return JSONResponse(error_body(404, "File Not Found"), 404)
        body = json.loads(await request.body())
        return JSONResponse({"tokens": [0] * estimate_tokens(str(body.get("content", "")))})

    async def _chat(self, request: Request) -> Response:
        arrived = request.scope.get("extensions", {}).get("debate.arrived") or time.monotonic()
        raw = await request.body()
        try:
            body = json.loads(raw)
            if not isinstance(body, dict):
                raise ValueError("body is not an object")
        except ValueError as exc:
            self._log(arrived, {"_unparsed": raw.decode(errors="replace")}, 400, None)
            return JSONResponse(error_body(400, f"invalid JSON body: {exc}"), status_code=400)
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
        if isinstance(item, Fault) and item.kind in ("status", "raw", "drop"):
            return await self._answer_fault(request, arrived, body, item)
        fault = item.label() if isinstance(item, Fault) else None
        if self.refuse_json_schema and (body.get("response_format") or {}).get("type") == "json_schema":
            self._log(arrived, body, 500, "json_schema")
            return JSONResponse(error_body(500, "response_format json_schema is not supported"), 500)
        if self.n_ctx is not None and (prompt := usage_body(body, "")["prompt_tokens"]) > self.n_ctx:
            self._log(arrived, body, 400, "context")
            message = f"request ({prompt} tokens) exceeds the available context size ({self.n_ctx} tokens)"
            return JSONResponse(error_body(400, message), 400)
        # Logged on arrival, before any latency, so a client killed mid-request still shows up.
        entry = self._log(arrived, body, 200, fault)
        usage, finish, chunk_delay = True, "stop", self.stream_delay_s
        if isinstance(item, Reply):
            content, usage, finish = item.content, item.usage, item.finish_reason
            chunk_delay = item.chunk_delay_s if item.chunk_delay_s is not None else chunk_delay
        elif isinstance(item, Fault) and item.kind == "malformed":
            content = item.text
        else:
            try:
                produced = self.responder(body)
                content = await produced if inspect.isawaitable(produced) else produced
            except Exception as exc:  # a broken responder is a 500, as from a real server
                _logger.exception("fake server responder failed")
                self._amend(entry, 500, "responder_error")
                return JSONResponse(error_body(500, f"responder failed: {exc!r}"), 500)
        stall = item.seconds if isinstance(item, Fault) and item.kind == "stall" else 0.0
        if isinstance(item, Fault) and (item.kind == "delay" or (stall and not body.get("stream"))):
            await asyncio.sleep(item.seconds)
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        if not body.get("stream") and chunk_delay:
            # Generating takes as long whether or not the reply streams.
            await asyncio.sleep(chunk_delay * (len(content) // CHUNK_CHARS + 2))
        if body.get("stream"):
            return StreamingResponse(
                self._stream(body, content, usage, finish, chunk_delay, stall), media_type="text/event-stream"
            )
        return JSONResponse(completion_body(body, content, usage, finish))

    async def _stream(
        self, body: dict[str, Any], content: str, usage: bool, finish: str, delay_s: float, stall_s: float
    ) -> AsyncIterator[str]:
        for i, event in enumerate(stream_events(body, content, usage, finish)):
            if i == 1 and stall_s:
                await asyncio.sleep(stall_s)
            elif i and delay_s:
                await asyncio.sleep(delay_s)
            yield event

    async def _answer_fault(self, request: Request, arrived: float, body: dict[str, Any], item: Fault) -> Response:
        """Answer with a fault that replaces the completion: an error status, raw body or drop."""
        fault = item.label()
        if item.kind == "status":
            status = int(item.status_code or 500)
            self._log(arrived, body, status, fault)
            headers: dict[str, str] = {}
            if item.retry_after is not None:
                headers["retry-after"] = f"{item.retry_after:g}"
            if item.retry_after_ms is not None:
                headers["retry-after-ms"] = str(item.retry_after_ms)
            if self.latency_s:
                await asyncio.sleep(self.latency_s)
            return JSONResponse(error_body(status, f"scripted fault {status}"), status, headers)
        if item.kind == "raw":
            status = int(item.status_code or 200)
            self._log(arrived, body, status, fault)
            return Response(item.text, status, media_type=item.content_type)
        self._log(arrived, body, 0, fault)
        _drop_connection(request)
        return Response(status_code=500)


def _drop_connection(request: Request) -> None:
    """Abort the request's TCP connection without a response (the ``drop`` fault)."""
    send = request.scope.get("extensions", {}).get("debate.send")
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise RuntimeError("cannot drop the connection: transport not reachable")
    transport.abort()
    cycle.disconnected = True  # uvicorn then ignores our (unsent) response


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
