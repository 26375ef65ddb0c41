"""A fake OpenAI-compatible HTTP server for tests and benchmarks.

:class:`FakeOpenAIServer` is a real HTTP server (uvicorn + a small Starlette app) running in a
background thread with its own event loop, so clients talk to it exactly as they would to a
model endpoint: over TCP, through the openai SDK. It answers ``POST /v1/chat/completions``
(streamed as server-sent events when the request asks, ``stream_delay_s`` between chunks) and
``GET /v1/models``; with ``n_ctx`` set it also plays llama.cpp's ``/props`` and ``/tokenize``
and refuses longer prompts as llama.cpp does.

Replies come from a *script* first — :class:`Reply` (content, usage, ``finish_reason``) and
:class:`Fault` (an error status, a delay, a stalled stream, a dropped connection, ...) items
consumed one per request in arrival order — and then from a *responder*, a function of the request body that
returns the reply content. :func:`schema_responder` (the default) answers with a deterministic
valid JSON instance of the schema the client asked for; :func:`obeying_responder` does the same
but obeys any instruction it finds in the prompt to raise the score (a weak or jailbroken model).

:class:`InstantChatClient` answers the same way in-process, without HTTP, to measure what the
engine costs on its own.

Run standalone (e.g. as a subprocess that a test kills)::

    python -m debate.llm.fake --port 0 --latency 1.0 --log requests.jsonl

prints ``READY http://127.0.0.1:PORT/v1`` once listening.

Modules: :mod:`.script` (replies, faults, request log), :mod:`.wire` (OpenAI bodies),
:mod:`.schema` (schema-driven replies), :mod:`.server` (the HTTP server), :mod:`.instant`
(in-process client), :mod:`.processes` (child processes), :mod:`.cli` (the command).
"""

from debate.llm.fake.cli import main
from debate.llm.fake.instant import InstantChatClient
from debate.llm.fake.obey import found_order, obeying, obeying_responder
from debate.llm.fake.processes import fake_server_process, stop_processes, worker_process
from debate.llm.fake.schema import (
    SCHEMA_MARKER_CLOSE,
    SCHEMA_MARKER_OPEN,
    example_from_schema,
    schema_from_request,
    schema_responder,
)
from debate.llm.fake.script import Fault, LoggedRequest, Reply, Responder, ScriptItem
from debate.llm.fake.server import FakeOpenAIServer

__all__ = [
    "SCHEMA_MARKER_CLOSE",
    "SCHEMA_MARKER_OPEN",
    "FakeOpenAIServer",
    "Fault",
    "InstantChatClient",
    "LoggedRequest",
    "Reply",
    "Responder",
    "ScriptItem",
    "example_from_schema",
    "fake_server_process",
    "found_order",
    "main",
    "obeying",
    "obeying_responder",
    "schema_from_request",
    "schema_responder",
    "stop_processes",
    "worker_process",
]
