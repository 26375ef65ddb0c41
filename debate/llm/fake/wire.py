"""OpenAI wire format as the fake server speaks it: message text, token estimates, reply bodies."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

# Characters per streamed chunk (about a token).
CHUNK_CHARS = 4


def message_text(message: dict[str, Any]) -> str:
    """The text of a chat message, whether its content is a string or a list of parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def estimate_tokens(text: str) -> int:
    """A rough token count (~4 characters a token): enough for usage blocks and cost tests."""
    return max(1, len(text) // 4)


def error_body(status: int, message: str) -> dict[str, Any]:
    """An OpenAI-style error body whose ``type`` matches the HTTP status."""
    kind = {
        400: "invalid_request_error",
        401: "authentication_error",
        403: "permission_error",
        404: "not_found_error",
        429: "rate_limit_error",
    }.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def models_body() -> dict[str, Any]:
    """The ``GET /v1/models`` reply: a single fake model."""
    return {
        "object": "list",
        "data": [{"id": "fake-model", "object": "model", "created": 0, "owned_by": "debate"}],
    }


def usage_body(body: dict[str, Any], content: str) -> dict[str, int]:
    """The usage block answering ``body`` with ``content`` (estimated as :func:`estimate_tokens`)."""
    prompt = sum(estimate_tokens(message_text(m)) + 4 for m in body.get("messages") or [] if isinstance(m, dict))
    completion = estimate_tokens(content)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def completion_body(body: dict[str, Any], content: str, usage: bool, finish_reason: str = "stop") -> dict[str, Any]:
    """A non-streaming chat completion answering ``body`` with ``content`` (usage estimated)."""
    reply: dict[str, Any] = {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model") or "fake-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "finish_reason": finish_reason,
                "logprobs": None,
            }
        ],
    }
    if usage:
        reply["usage"] = usage_body(body, content)
    return reply


def stream_events(
    body: dict[str, Any], content: str, usage: bool, finish_reason: str = "stop", chunk_chars: int = CHUNK_CHARS
) -> Iterator[str]:
    """The server-sent events of a streamed completion, as llama.cpp and OpenAI send them: a role
    chunk, content chunks, a finish chunk, the usage chunk when asked for, ``[DONE]``."""
    head = {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": body.get("model") or "fake-model",
    }

    def event(choices: list[dict[str, Any]], **extra: Any) -> str:
        return f"data: {json.dumps({**head, 'choices': choices, **extra})}\n\n"

    yield event([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
    for i in range(0, len(content), chunk_chars):
        yield event([{"index": 0, "delta": {"content": content[i : i + chunk_chars]}, "finish_reason": None}])
    yield event([{"index": 0, "delta": {}, "finish_reason": finish_reason}])
    if usage and (body.get("stream_options") or {}).get("include_usage"):
        yield event([], usage=usage_body(body, content))
    yield "data: [DONE]\n\n"
