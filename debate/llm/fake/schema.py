"""Schema-driven replies: find the JSON schema a request asks for and build a valid instance."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from debate.llm.fake.wire import message_text

# The markers debate.llm.client puts around the schema for json_object/prompt endpoints. Mirrored
# rather than imported: importing debate.llm.client pulls in the openai SDK (~1 s), and the
# standalone server must start fast. tests/test_fake_server.py checks the two stay equal.
SCHEMA_MARKER_OPEN = "<json-schema>"
SCHEMA_MARKER_CLOSE = "</json-schema>"

_MARKER_RE = re.compile(re.escape(SCHEMA_MARKER_OPEN) + r"\s*(.*?)\s*" + re.escape(SCHEMA_MARKER_CLOSE), re.DOTALL)
_MAX_DEPTH = 12
# Returned by a partial builder that does not apply to the schema (None is a valid example).
_NOT_APPLICABLE = object()


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
        match = _MARKER_RE.search(message_text(message))
        if match:
            try:
                schema = json.loads(match.group(1))
            except json.JSONDecodeError:
                continue
            if isinstance(schema, dict):
                return schema
    return None


def schema_responder(body: dict[str, Any]) -> str:
    """Reply content for a chat request: a valid JSON instance of its requested schema.

    Returns ``"{}"`` when the request names no schema.
    """
    schema = schema_from_request(body)
    if schema is None:
        return "{}"
    return json.dumps(example_from_schema(schema))


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
    if "$ref" in schema:
        target = _resolve_ref(schema["$ref"], root)
        return example_from_schema(target, root, name=name, _depth=_depth + 1)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema and schema["enum"]:
        return schema["enum"][0]
    combined = _combinator_example(schema, root, name, _depth)
    if combined is not _NOT_APPLICABLE:
        return combined
    return _typed_example(schema, root, name, _depth)


def _resolve_ref(ref: str, root: dict[str, Any]) -> dict[str, Any]:
    if not ref.startswith("#"):
        raise ValueError(f"only local $ref supported, got {ref!r}")
    node: Any = root
    for part in ref.lstrip("#").strip("/").split("/"):
        if part:
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _child(schema: dict[str, Any], root: dict[str, Any], name: str | None, depth: int) -> Any:
    """The example for a subschema one level deeper."""
    return example_from_schema(schema, root, name=name, _depth=depth + 1)


def _combinator_example(schema: dict[str, Any], root: dict[str, Any], name: str | None, depth: int) -> Any:
    """The example for ``anyOf``/``oneOf``/``allOf``, or ``_NOT_APPLICABLE`` without them."""
    deep = depth > _MAX_DEPTH
    for key in ("anyOf", "oneOf"):
        if key in schema and schema[key]:
            variants = schema[key]
            non_null = [v for v in variants if v.get("type") != "null"]
            if deep and len(non_null) < len(variants):
                return None  # stop recursive structures at a nullable branch
            pick = non_null[0] if non_null else variants[0]
            return _child(pick, root, name, depth)
    if "allOf" in schema and schema["allOf"]:
        parts = [_child(p, root, name, depth) for p in schema["allOf"]]
        if all(isinstance(p, dict) for p in parts):
            merged: dict[str, Any] = {}
            for p in parts:
                merged.update(p)
            return merged
        return parts[0]
    return _NOT_APPLICABLE


def _schema_type(schema: dict[str, Any], deep: bool) -> Any:
    """The single type to build for ``schema`` (inferred from its keywords when it names none)."""
    typ = schema.get("type")
    if isinstance(typ, list):
        non_null_types = [t for t in typ if t != "null"]
        if deep and "null" in typ:
            return "null"  # stop recursive structures at a nullable type
        typ = non_null_types[0] if non_null_types else "null"
    if typ is None:
        if "properties" in schema:
            typ = "object"
        elif "items" in schema or "prefixItems" in schema:
            typ = "array"
    return typ


def _typed_example(schema: dict[str, Any], root: dict[str, Any], name: str | None, depth: int) -> Any:
    """The example for a schema by its ``type``."""
    typ = _schema_type(schema, depth > _MAX_DEPTH)
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
        return _array(schema, root, name, depth)
    if typ == "object":
        props = schema.get("properties") or {}
        return {key: _child(sub, root, key, depth) for key, sub in props.items()}
    return None  # an unconstrained schema ({}): null is valid for it


def _array(schema: dict[str, Any], root: dict[str, Any], name: str | None, depth: int) -> list[Any]:
    prefix = schema.get("prefixItems")
    if isinstance(prefix, list):
        return [_child(p, root, name, depth) for p in prefix]
    min_items = int(schema.get("minItems", 0))
    max_items = schema.get("maxItems")
    # Past the depth limit, only as many items as required: recursive lists end empty.
    count = max(min_items, 0 if depth > _MAX_DEPTH else 1)
    if max_items is not None:
        count = min(count, int(max_items))
    items = schema.get("items")
    if not isinstance(items, dict) or count == 0:
        return []
    if schema.get("uniqueItems") and "enum" in items and count > 1:
        return list(items["enum"][:count])
    item = _child(items, root, name, depth)
    return [item for _ in range(count)]


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
