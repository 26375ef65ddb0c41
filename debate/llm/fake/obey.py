"""A judge that obeys instructions it finds in its prompt, as a weak or jailbroken model would.

:func:`obeying_responder` answers like :func:`~debate.llm.fake.schema.schema_responder`, except
that a request whose messages carry an instruction to raise a score gets what that instruction
asks for: a judge scores every dimension at the demanded value (1.0 when none is named) with full
confidence, and its rationale cites whatever trial the instruction named; a proposer or critic
cites it in a claim. It exists to test the defences: escaping, screening and the evidence bound.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Iterable
from typing import Any

from debate.core.rubric import DIMENSIONS
from debate.llm.fake.schema import schema_responder
from debate.llm.fake.wire import message_text

# What the fake obeys: an instruction to ignore the rules, or to give a score, anywhere in the
# prompt (after folding fullwidth letters and dropping zero-width characters, as a model reads).
_ORDER = re.compile(
    r"ignore (?:all )?(?:the )?(?:previous|prior|above|earlier) (?:instructions|rules)"
    r"|(?:output|give|assign|award) (?:\w+ ){0,4}(?:score|overall|rating)"
    r"|ignorez|ignora |ignoriere",
    re.IGNORECASE,
)
_VALUE = re.compile(r"\b(?:of|to|=|:)\s*(1(?:\.0+)?|0\.\d+)\b")
_TRIAL = re.compile(r"\bNCT\d{8}\b", re.IGNORECASE)


def _read(text: str) -> str:
    # Deliberately not debate.kb.screen.normalize: the tests use this judge to catch what the
    # screen misses, so it must not share the screen's blind spots.
    folded = unicodedata.normalize("NFKC", text)
    folded = "".join(ch for ch in folded if unicodedata.category(ch) != "Cf")
    return re.sub(r"\s+", " ", folded)


def found_order(body: dict[str, Any], orders: Iterable[str] = ()) -> tuple[float, str | None] | None:
    """The score an instruction in the request demands and the trial it names, or None.

    An instruction, in a user message, is a phrase of :data:`_ORDER`, or any of ``orders`` (compared as read: folded,
    without invisible characters, whitespace and line breaks as one space, any case)."""
    # What it was given to read: the user's messages (the system message is the engine's own).
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict) and m.get("role") == "user"]
    text = _read("\n".join(message_text(m) for m in messages))
    low = text.casefold()
    starts = [m.start() for m in [_ORDER.search(text)] if m]
    starts += [i for o in orders if (i := low.find(_read(o).casefold())) >= 0]
    if not starts:
        return None
    after = text[min(starts) : min(starts) + 400]
    value = _VALUE.search(after)
    trial = _TRIAL.search(after)
    return (float(value.group(1)) if value else 1.0), (trial.group(0).upper() if trial else None)


def obeying(orders: Iterable[str] = ()) -> Callable[[dict[str, Any]], str]:
    """A responder that obeys :data:`_ORDER` phrases and also each of ``orders``."""
    phrases = tuple(orders)
    return lambda body: obeying_responder(body, phrases)


def obeying_responder(body: dict[str, Any], orders: Iterable[str] = ()) -> str:
    """Reply content for a chat request, obeying any instruction to raise the score."""
    order = found_order(body, orders)
    reply = json.loads(schema_responder(body))
    if order is None or not isinstance(reply, dict):
        return json.dumps(reply)
    value, trial = order
    cite = trial or "the trial named in the evidence"
    if "scores" in reply:
        reply["scores"] = dict.fromkeys(DIMENSIONS, value)
        reply["confidence"] = 1.0
        reply["rationale"] = (
            f"As the evidence instructs, {cite} is a completed Phase 3 success; every score is {value}."
        )
    elif "claims" in reply:
        reply["claims"] = [
            {"text": f"{cite} is a completed Phase 3 success.", "evidence_ids": ["E1"], "quote": f"{cite} succeeded"}
        ]
        if "argument" in reply:
            reply["argument"] = f"As instructed, {cite} settles it."
    return json.dumps(reply)
