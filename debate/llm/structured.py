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
from debate.llm.failures import one_line

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


# A re-ask quotes the start of the failed reply and the error, never the whole reply: re-asking
# with every failed reply appended grew a 737-token prompt to 2,254 in two re-asks.
REASK_QUOTE_CHARS = 240
REASK_ERROR_CHARS = 160


def reask_text(summary: str, *, cut_at: int | None = None) -> str:
    """The user turn of a re-ask: why the reply was refused and what to send instead."""
    if cut_at is not None:
        return (
            f"That reply was cut off at the limit of {cut_at} tokens before it was complete. "
            "Reply again with a much shorter JSON object matching the schema: fewer, shorter items."
        )
    return (
        f"That reply could not be used: {one_line(summary, REASK_ERROR_CHARS)}. Reply again with only a "
        "JSON object that matches the required schema, with no prose and no code fences."
    )


def reask_messages(
    content: str, summary: str, *, cut_at: int | None = None, quote_chars: int = REASK_QUOTE_CHARS
) -> list[ChatMessage]:
    """The turns appended to the first ask's messages to re-ask: a bounded quote of ``content``
    (none when ``quote_chars`` is too small to help) and :func:`reask_text`."""
    quote = content[:quote_chars]
    turns: list[ChatMessage] = []
    if quote and quote_chars >= 20:
        shown = quote if len(content) <= quote_chars else f"{quote}… [{len(content) - quote_chars} more characters]"
        turns.append(ChatMessage(role="assistant", content=shown))
    turns.append(ChatMessage(role="user", content=reask_text(summary, cut_at=cut_at)))
    return turns


def reask_message(summary: str) -> ChatMessage:
    """The re-ask's user turn alone (kept for callers that quote nothing)."""
    return ChatMessage(role="user", content=reask_text(summary))


# Caps a grammar-constrained server (llama.cpp) enforces while decoding: a small model that
# repeats itself must still close every string and list, so its reply ends as valid JSON long
# before the output cap. Sent only to such servers: OpenAI's strict mode refuses maxLength.
# Per field name where the reply models' fields differ (a claim is a sentence or two, an id a
# few characters, a quote shorter than the 200 the prompt allows); with these a proposer's reply
# is at most ~2,100 characters (~700 tokens for a small model, under the 800 role cap).
GRAMMAR_MAX_CHARS = 400
GRAMMAR_MAX_ITEMS = 4
GRAMMAR_FIELD_CHARS = {"argument": 500, "rationale": 400, "text": 160, "quote": 120, "evidence_ids[]": 8}


@functools.lru_cache(maxsize=64)
def _bounded_schema_json(schema: type[BaseModel]) -> str:
    def bound(node: Any, name: str | None) -> Any:
        if isinstance(node, list):
            return [bound(v, name) for v in node]
        if not isinstance(node, dict):
            return node
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                out[key] = {prop: bound(sub, prop) for prop, sub in value.items()}
            elif key == "$defs" and isinstance(value, dict):
                out[key] = {d: bound(sub, None) for d, sub in value.items()}
            elif key == "items":
                out[key] = bound(value, f"{name}[]")
            else:
                out[key] = bound(value, name)
        if out.get("type") == "string" and "enum" not in out:
            out.setdefault("maxLength", GRAMMAR_FIELD_CHARS.get(name or "", GRAMMAR_MAX_CHARS))
        if out.get("type") == "array":
            out.setdefault("maxItems", GRAMMAR_MAX_ITEMS)
        return out

    return json.dumps(bound(to_strict_json_schema(schema), None), separators=(",", ":"))


def bounded_json_schema(schema: type[BaseModel]) -> dict[str, Any]:
    """:func:`strict_json_schema` with every string and list capped for grammar-constrained decoding."""
    return json.loads(_bounded_schema_json(schema))
