"""The transcript as plain text for a terminal: wrapped prose, aligned tables, no markup.

Text is shown as stored: a terminal renders no HTML, so nothing is escaped here.
"""

from __future__ import annotations

import textwrap

import debate.engine.transcript.formatting as fmt
from debate.engine.transcript.model import (
    AttemptOut,
    EmptySeat,
    EvidenceOut,
    HypothesisInfo,
    JudgeOut,
    ReviewInfo,
    RoundOut,
    RunInfo,
    Transcript,
    TurnOut,
)


def _wrap(text: str, indent: str, width: int = 100) -> str:
    """Wrap each paragraph of ``text`` to ``width``, keeping the author's line breaks."""
    lines = []
    for para in text.splitlines() or [""]:
        lines.append(textwrap.fill(para, width=width, initial_indent=indent, subsequent_indent=indent) or indent)
    return "\n".join(line.rstrip() for line in lines)


def _attempts(attempts: list[AttemptOut]) -> list[str]:
    if not attempts:
        return []
    return ["  Attempts:"] + [f"    {fmt.attempt_line(a)}" for a in attempts]


def _hypothesis(h: HypothesisInfo | None) -> list[str]:
    if h is None:
        return ["Hypothesis: (no longer stored)"]
    out = [f"Hypothesis {h.id}: {h.title}"]
    if h.statement:
        out.append(_wrap(h.statement, "  "))
    out.append(f"  Targets: {fmt.listed(h.targets)}")
    out.append(f"  Diseases: {fmt.listed(h.diseases)}")
    out.append(f"  Mechanisms: {fmt.listed(h.mechanisms)}")
    return out


def _run(r: RunInfo) -> list[str]:
    out = [
        f"Run: status {r.status} · trigger {r.trigger} · batch {r.batch_id or '—'} · rounds {r.rounds_done}",
        f"  created {fmt.ts(r.created_at)} · started {fmt.ts(r.started_at)}",
        f"  evidence retrieved {fmt.ts(r.retrieved_at)} · finished {fmt.ts(r.finished_at)}",
        f"  usage {fmt.tokens(r.usage)} · cost {fmt.cost(r.cost_usd)} · KB {r.kb_hash or '—'}",
        f"  {fmt.verified_line(r)}",
    ]
    if r.prompt_hashes:
        out.append("  prompts: " + fmt.prompt_hashes(r))
    if r.config:
        out.append("  config: " + fmt.config_json(r))
    if r.error:
        out.append(f"  ERROR: {r.error}")
    return out


def _turn(turn: TurnOut) -> list[str]:
    out = [f"--- {fmt.who(turn)} ({fmt.turn_header(turn)})"]
    if turn.argument is not None:
        out.append(_wrap(turn.argument, "  "))
    else:
        out.append(_wrap(turn.raw_reply, "  "))
    if turn.claims:
        out.append("  Claims:")
        for i, claim in enumerate(turn.claims, 1):
            cites = " ".join(fmt.cite(c) for c in claim.citations)
            out.append(_wrap(f"{i}. {claim.text} {cites}".rstrip(), "    "))
            if mark := fmt.claim_mark(claim):
                out.append(_wrap(mark, "       "))
    if turn.concede is not None:
        out.append(f"  Concedes: {'yes' if turn.concede else 'no'}")
    return out + _fit(turn) + _attempts(turn.attempts)


def _fit(turn: TurnOut) -> list[str]:
    return [_wrap(f"Context: {fmt.fit_line(turn.fit)}", "  ")] if turn.fit is not None else []


def _rounds(rounds: list[RoundOut]) -> list[str]:
    out: list[str] = []
    for rnd in rounds:
        out += ["", f"=== Round {rnd.round} ==="]
        for turn in (rnd.proposer, rnd.critic):
            if turn is not None:
                out += _turn(turn)
    return out


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Columns padded to their widest cell: the first left-aligned, numbers right-aligned."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(row: list[str]) -> str:
        cells = enumerate(zip(row, widths, strict=True))
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in cells)

    return [line(header), "  ".join("-" * w for w in widths)] + [line(row) for row in rows]


def _judges(judges: list[JudgeOut], empty: list[EmptySeat]) -> list[str]:
    if not judges and not empty:
        return []
    out = ["", "=== Judges ==="] + (_table(*fmt.judge_table(judges)) if judges else [])
    for j in judges:
        order = f" · saw {fmt.first_side(j)} first" if j.critic_first is not None else ""
        out += ["", f"--- Judge {j.seat} ({fmt.turn_header(j)})"]
        out.append(f"  Persona: {j.persona or '—'}{order}")
        if j.emphasis:
            out.append(f"  Emphasis: {', '.join(j.emphasis)}")
        out.append(_wrap(j.rationale or "(no rationale)", "  "))
        out += [_wrap(line, "  ") for line in fmt.bound_lines(j)]
        out += _fit(j) + _attempts(j.attempts)
    for e in empty:
        out += ["", f"--- Judge {e.seat}: empty seat", f"  Persona: {e.persona or '—'}"]
        out.append(_wrap(fmt.empty_seat_line(e), "  "))
        out += _attempts(e.attempts)
    return out


def _evidence(evidence: list[EvidenceOut]) -> list[str]:
    out = ["", "=== Evidence ==="]
    if not evidence:
        out.append("(no evidence was retrieved)")
    for e in evidence:
        out.append(
            f"[{e.eid}] {e.page_slug} — {fmt.heading(e.heading_path)} (rank {e.rank}, relevance {fmt.num(e.relevance)})"
        )
        out.append(_wrap(e.text, "    "))
        if e.cited_by:
            out.append(f"    cited by: {', '.join(e.cited_by)}")
    return out


def _unmatched(attempts: list[AttemptOut]) -> list[str]:
    if not attempts:
        return []
    return ["", "=== Calls without a recorded turn ==="] + [
        f"round {a.round} {a.role} seat {a.seat}: {fmt.attempt_line(a)}" for a in attempts
    ]


def _review(review: ReviewInfo) -> list[str]:
    out = ["", "=== Review ===", f"Status: {review.status}{fmt.review_flag_note(review)}"]
    for rv in review.history:
        out.append(f"  {fmt.ts(rv.at)} {rv.action} by {rv.by}" + (f": {rv.note}" if rv.note else ""))
    return out


def render_text(t: Transcript) -> str:
    """The whole transcript as plain text, sections in reading order."""
    out = [f"DEBATE TRANSCRIPT — run {t.run.id} (transcript v{t.version})"]
    out += [f"Agents: {fmt.agents_line(t)}", ""]
    out += _hypothesis(t.hypothesis)
    out += [""] + _run(t.run)
    out += _rounds(t.rounds)
    out += _judges(t.judges, t.empty_seats)
    out += ["", "=== Consensus ==="]
    out.append(fmt.consensus_line(t.consensus) if t.consensus else "none (no judge verdicts recorded)")
    out += _evidence(t.evidence)
    out += _unmatched(t.unmatched_attempts)
    out += _review(t.review)
    return "\n".join(out) + "\n"
