"""The flag regexes compiled at import, split into alternatives gated by required literals."""

from __future__ import annotations

import re
import re._constants as _sre_constants
import re._parser as _sre_parser
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from debate.offline.rules import APPROVAL_LOST, FLAG_PATTERNS, MODALITY_PATTERNS, NEGATIONS


def _alternatives(pattern: str) -> list[str]:
    """The top-level ``|`` alternatives of a regex source."""
    out: list[str] = []
    depth, in_class, escaped, start = 0, False, False, 0
    for i, ch in enumerate(pattern):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            out.append(pattern[start:i])
            start = i + 1
    out.append(pattern[start:])
    return out


def _required(parsed: Any) -> frozenset[str] | None:
    """Strings one of which every match of a parsed regex contains (None when none is certain)."""
    c = _sre_constants
    candidates: list[frozenset[str]] = []
    run: list[str] = []
    for op, av in parsed:
        if op is c.LITERAL:
            run.append(chr(av))
            continue
        if run:
            candidates.append(frozenset({"".join(run)}))
            run = []
        req: frozenset[str] | None = None
        if op is c.SUBPATTERN:
            req = _required(av[-1])
        elif op is c.BRANCH:
            alts = [_required(b) for b in av[1]]
            if all(x is not None for x in alts):
                req = frozenset().union(*alts)  # type: ignore[arg-type]
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT) and av[0] >= 1:
            req = _required(av[2])
        if req:
            candidates.append(req)
    if run:
        candidates.append(frozenset({"".join(run)}))
    # The most selective requirement: the longest shortest string, then the fewest strings.
    return max(candidates, key=lambda r: (min(map(len, r)), -len(r))) if candidates else None


def _triggers(alternative: str) -> tuple[str, ...] | None:
    try:
        req = _required(_sre_parser.parse(alternative))
    except Exception:  # an unexpected regex shape only costs speed: the rule then always runs
        return None
    return tuple(sorted(req)) if req and all(req) else None


@dataclass(frozen=True, slots=True)
class _Rule:
    """One alternative of a table regex, tried only on text holding one of its trigger strings."""

    name: str  # a flag, "neg:<flag>", "lost" or "mod:<modality>"
    rx: re.Pattern[str]
    triggers: tuple[str, ...] | None
    boundary: bool  # the source began with \b, checked by hand so the engine can seek the prefix

    def fires(self, text: str) -> bool:
        return self.triggers is None or any(map(text.__contains__, self.triggers))

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        for m in self.rx.finditer(text):
            i = m.start()
            if self.boundary and i and (text[i - 1].isalnum() or text[i - 1] == "_"):
                continue
            yield m

    def blank(self, text: str) -> str:
        """``text`` with every match replaced by spaces (same length, so offsets stay valid)."""
        spans = [(m.start(), m.end()) for m in self.finditer(text)]
        if not spans:
            return text
        parts: list[str] = []
        last = 0
        for a, b in spans:
            parts += [text[last:a], " " * (b - a)]
            last = b
        parts.append(text[last:])
        return "".join(parts)


def _rules(name: str, pattern: str) -> list[_Rule]:
    out = []
    for alt in _alternatives(pattern):
        # A leading \b hides a literal prefix from the regex engine's fast scan: check it by hand.
        boundary = alt.startswith("\\b") and not alt.startswith(("\\b\\", "\\b["))
        out.append(_Rule(name, re.compile(alt[2:] if boundary else alt), _triggers(alt), boundary))
    return out


# Each table regex is split into its alternatives and each is tried only where a literal that it
# cannot match without occurs (found by parsing it): substring tests replace most regex scans.
_FLAG_RULES = [r for k, v in FLAG_PATTERNS.items() for r in _rules(k, v)]
_NEG_RULES = {k: _rules(f"neg:{k}", v) for k, v in NEGATIONS.items()}
_LOST_RULES = _rules("lost", APPROVAL_LOST)
_MODALITY_RULES = [r for k, v in MODALITY_PATTERNS.items() for r in _rules(f"mod:{k}", v)]

_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
_BULLET = re.compile(r"^\s*[-*•]\s+")
_WORD = re.compile(r"[a-z0-9]+")
# Gene-like words, used only to tell which gene a segment is about: a letter first, then a digit.
_GENE_WORD = re.compile(r"(?<![a-z0-9])[a-z][a-z0-9]*\d[a-z0-9]*")
_NOT_GENES = frozenset({"AAV1", "AAV2", "AAV5", "AAV9", "AU8", "MCI186"})
_LABEL = re.compile(r"^([a-z][a-z /-]{0,30}):\s")
_INFOBOX_TARGET = re.compile(r"^target[ \t]+([a-z0-9-]+)[ \t]*:")
_OUTCOME_FLAGS = frozenset({"failed", "halted", "safety_signal", "efficacy"})
