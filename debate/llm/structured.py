"""Structured output: the JSON schema a reply must match, and reading a reply against it.

Endpoints that cannot enforce a schema get it in the system prompt between
:data:`SCHEMA_MARKER_OPEN` and :data:`SCHEMA_MARKER_CLOSE`; a reply that does not validate is
summarised in one line and re-asked.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

from openai.lib._pydantic import to_strict_json_schema
from pydantic import BaseModel, ValidationError

from debate.core.calls import ChatMessage

SCHEMA_MARKER_OPEN = "<json-schema>"
SCHEMA_MARKER_CLOSE = "</json-schema>"
_FENCE_RE = re.compile(r"^\s*```[a-zA-Z0-9_-]*[ \t]*\n?(.*?)\n?[ \t]*```\s*$", re.DOTALL)


@functools.lru_cache(maxsize=256)
def strict_schema_json(schema: type[BaseModel]) -> str:
    return json.dumps(to_strict_json_schema(schema), separators=(",", ":"))


def strict_json_schema(schema: type[BaseModel]) -> dict[str, Any]:
    """The strict JSON schema (all fields required, no extra keys) sent for ``schema``."""
    return json.loads(strict_schema_json(schema))


def schema_instructions(schema: type[BaseModel]) -> str:
    """The text appended to the system prompt when the endpoint cannot enforce a schema."""
    return (
        "Reply with only a JSON object, with no prose and no code fences, "
        "that matches this JSON Schema:\n"
        f"{SCHEMA_MARKER_OPEN}\n{strict_schema_json(schema)}\n{SCHEMA_MARKER_CLOSE}"
    )


def with_schema_instructions(messages: list[ChatMessage], schema: type[BaseModel]) -> list[ChatMessage]:
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


def strip_fences(text: str) -> str:
    match = _FENCE_RE.match(text)
    return match.group(1) if match else text


def summarize_validation(exc: ValidationError, limit: int = 3) -> str:
    errors = exc.errors(include_url=False)
    parts = []
    for err in errors[:limit]:
        loc = ".".join(str(p) for p in err.get("loc", ()))
        msg = str(err.get("msg", "")).replace("\n", " ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    if len(errors) > limit:
        parts.append(f"and {len(errors) - limit} more error(s)")
    return "; ".join(parts) or str(exc).splitlines()[0]


def reask_message(summary: str) -> ChatMessage:
    return ChatMessage(
        role="user",
        content=(
            f"Your previous reply could not be used: {summary}. "
            "Reply again with only a JSON object that matches the required schema, "
            "with no prose and no code fences."
        ),
    )
