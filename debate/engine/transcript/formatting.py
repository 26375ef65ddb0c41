"""How transcript values read in every rendering: scores, costs, times, turn headers, marks.

The text and Markdown renderings call these directly and the HTML template gets the cell
formatters as Jinja filters under the same names, so a value reads the same in all three.
None of these escape: each renderer escapes their output for its own medium.
"""

from __future__ import annotations

import json
import math
from datetime import datetime

from debate.core.calls import PromptFit
from debate.core.rubric import DIMENSIONS
from debate.core.scoring import display_score
from debate.engine.transcript.model import (
    AttemptOut,
    CitationOut,
    ClaimOut,
    ConsensusOut,
    EmptySeat,
    JudgeOut,
    ReviewInfo,
    RunInfo,
    Transcript,
    TurnOut,
    Usage,
)

HEURISTIC_LABEL = "offline heuristic agents — no model"
INVALID_MARK = "✗ not retrieved"
WITHHELD_MARK = "withheld (flagged)"


def agents_line(t: Transcript) -> str:
    """Who did the talking, in words (heuristic runs must never read as model output)."""
    models = ", ".join(f"{k}: {v}" for k, v in t.run.models.items() if v) or "default models"
    if t.agents == "heuristic":
        return HEURISTIC_LABEL
    if t.agents == "mixed":
        return f"model agents (backend {t.run.backend}; {models}) with some offline heuristic turns"
    if t.agents == "none":
        return f"no turns recorded yet (backend {t.run.backend})"
    return f"model agents (backend {t.run.backend}; {models})"


# ---------------------------------------------------------------- one value ("—" when unknown)


def score(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "—"
    return display_score(x)


def num(x: float | None, digits: int = 2) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def cost(x: float | None) -> str:
    return "—" if x is None else f"${x:.4f}"


def ms(x: float | None) -> str:
    return "—" if x is None else f"{x:.0f} ms"


def tokens(u: Usage) -> str:
    if u.total is None:
        return "—"
    if u.estimated:
        return f"~{u.prompt_tokens or 0} + {u.completion_tokens or 0} tokens (estimated)"
    return f"{u.prompt_tokens or 0} + {u.completion_tokens or 0} tokens"


def ts(dt: datetime | None) -> str:
    return "—" if dt is None else dt.strftime("%Y-%m-%d %H:%M:%S UTC")


def heading(path: list[str]) -> str:
    return " › ".join(path) if path else "(top)"


def listed(items: list[str]) -> str:
    return ", ".join(items) or "—"


def cite(c: CitationOut) -> str:
    return f"[{c.eid}]" if c.valid else f"[{c.eid} {INVALID_MARK}]"


def percent(x: float | None) -> str:
    """A share in [0, 1] as a whole percentage; never 100% or 0% unless it is exactly that."""
    if x is None:
        return "—"
    shown = f"{x:.0%}"
    if shown == "100%" and x < 1:
        return ">99%"
    if shown == "0%" and x > 0:
        return "<1%"
    return shown


def claim_mark(c: ClaimOut) -> str:
    """How a claim's quote check reads: ``✓ E3 "quote"``, ``✗ quote not in E3: "quote"``,
    ``✗ E9 not retrieved`` or ``no citation``; "" for a claim recorded before quotes were checked.

    The quote is model output, shown as written (whitespace runs folded to one space): each
    renderer escapes this line as it escapes the claim's text.
    """
    quote = " ".join(c.quote.split())
    cited = ", ".join(dict.fromkeys(x.eid for x in c.citations)) or "?"
    if c.mark == "verified":
        return f'✓ {c.found_in or cited} "{quote}"'
    if c.mark == "quote-not-found":
        return f'✗ quote not in {cited}: "{quote}"' if quote else f"✗ no quote from {cited}"
    if c.mark == "not-retrieved":
        missing = next((x.eid for x in c.citations if not x.valid), None)
        return f"✗ {missing} not retrieved" if missing else "✗ cites evidence not retrieved"
    if c.mark == "uncited":
        return "no citation"
    return ""


def verified_claims(r: RunInfo) -> str:
    """The run's verified claims, ``7 of 9 citing evidence (78%)``, or why there is no count."""
    if r.claims_verified is None or r.claims_cited is None:
        return "counted when the run is done" if r.status in ("queued", "running") else "not checked"
    if not r.claims_cited:
        return "none (no claim cited evidence)"
    return f"{r.claims_verified} of {r.claims_cited} citing evidence ({percent(r.verified_rate)})"


def verified_line(r: RunInfo) -> str:
    """``verified claims: 7 of 9 citing evidence (78%)`` (``verified claims: not checked`` for older runs)."""
    return f"verified claims: {verified_claims(r)}"


# ---------------------------------------------------------------- lines shared by text and Markdown


def who(turn: TurnOut) -> str:
    if turn.role == "judge":
        return f"Judge {turn.seat}"
    return turn.role.capitalize()


def turn_header(turn: TurnOut) -> str:
    return (
        f"{turn.label} · {turn.model} · prompt {turn.prompt_name} v{turn.prompt_version} "
        f"({turn.prompt_hash[:12]}) · {tokens(turn.usage)} · {cost(turn.cost_usd)} · {ms(turn.latency_ms)}"
    )


def attempt_line(a: AttemptOut) -> str:
    bits = [f"#{a.n} {a.kind}: {a.outcome}"]
    if a.http_status is not None:
        bits.append(f"HTTP {a.http_status}")
    if a.error:
        bits.append(a.error)
    bits += [a.model, tokens(a.usage), cost(a.cost_usd), ms(a.latency_ms)]
    return " · ".join(bits)


def fit_line(f: PromptFit) -> str:
    """How a prompt was fitted to the context: its size, the window, what was left out."""
    line = (
        f"prompt {f.prompt_tokens:,} tokens ({'counted' if f.counted == 'tokenizer' else 'estimated'}) "
        f"+ {f.reply_tokens:,} kept for the reply, of a {f.window:,}-token window"
    )
    if not f.trimmed:
        return f"{line}; nothing left out"
    left = []
    if f.evidence_dropped:
        left.append(f"evidence {', '.join(f.evidence_dropped)} dropped (lowest ranked first)")
    if f.rounds_shortened:
        left.append(f"round {', '.join(map(str, f.rounds_shortened))} cut to its claims")
    return f"{line}; trimmed from {f.full_prompt_tokens:,} tokens: {'; '.join(left)}"


def empty_seat_line(e: EmptySeat) -> str:
    return f"judge {e.seat}: no valid verdict — {e.error or 'no reply'}"


def consensus_line(c: ConsensusOut) -> str:
    parts = [f"score {c.shown} (unrounded {c.score!r})"]
    if c.interval is not None:
        parts.append(f"interval {score(c.interval[0])}–{score(c.interval[1])} ({c.interval_method or '?'})")
    parts.append(f"agreement α = {num(c.agreement)}")
    if c.n_judges is not None and c.judges_seated is not None and c.judges_seated != c.n_judges:
        parts.append(f"{c.n_judges} of {c.judges_seated} judges")
    elif c.n_judges is not None:
        parts.append(f"{c.n_judges} judges")
    line = " · ".join(parts)
    return f"{line} — {WITHHELD_MARK}" if c.withheld else line


def first_side(j: JudgeOut) -> str:
    """Which side the judge was shown first (only meaningful when ``critic_first`` is known)."""
    return "critic" if j.critic_first else "proposer"


def prompt_hashes(r: RunInfo) -> str:
    """Prompt template hashes, shortened, by name ("" when none were recorded)."""
    return ", ".join(f"{k}={v[:12]}" for k, v in sorted(r.prompt_hashes.items()))


def config_json(r: RunInfo) -> str:
    return json.dumps(r.config, sort_keys=True, ensure_ascii=False)


def review_flag_note(review: ReviewInfo) -> str:
    # Status and flag are stored apart; should they ever disagree, the flag must still show.
    return " (flagged)" if review.flagged and review.status != "flagged" else ""


def bound_lines(j: JudgeOut) -> list[str]:
    """What the evidence bound did to a verdict: contradicted (left out), capped, or nothing."""
    out: list[str] = []
    if j.contradictions:
        out.append(f"CONTRADICTED, left out of the consensus: {'; '.join(j.contradictions)}")
    if j.capped and j.cap is not None:
        cut = ", ".join(f"{d} {score(v)} → {score(j.cap)}" for d, v in j.capped.items())
        out.append(f"Capped by the verified claims (cap {score(j.cap)}): {cut}")
    return out


def judge_table(judges: list[JudgeOut]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the judge table: one row per dimension, one column per judge."""
    header = ["dimension"] + [f"judge {j.seat}" for j in judges]
    rows = [[d] + [score(j.scores.get(d)) for j in judges] for d in DIMENSIONS]
    rows.append(["overall"] + [score(j.overall) for j in judges])
    rows.append(["confidence"] + [score(j.confidence) for j in judges])
    return header, rows
