"""The transcript as Markdown, safe to show in a viewer that renders inline HTML.

Untrusted text (KB chunks, model replies, reviewer notes) goes through :func:`_md`, which turns
``&``, ``<`` and ``>`` into entities so it shows as text; table cells also escape ``|`` and
fold line breaks so a value cannot end its row; claims and their quotes (:func:`_md_inline`) also
backslash-escape ``\\``, ``[`` and ``]`` so a model cannot make a link or load an image.
"""

from __future__ import annotations

import debate.engine.transcript.formatting as fmt
from debate.engine.transcript import model as m


def _md(text: str) -> str:
    """Untrusted text for Markdown: HTML-significant characters as entities."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _md_inline(text: str) -> str:
    """Untrusted text on one line of prose (a claim, its quote): :func:`_md`, line breaks folded,
    and ``\\`` ``[`` ``]`` backslash-escaped so it cannot make a link or load an image."""
    folded = _md(" ".join(text.split()))
    return folded.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]")


def _md_cell(text: str) -> str:
    return _md(text).replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _md_quote(text: str) -> str:
    return "\n".join(f"> {line}".rstrip() for line in _md(text).splitlines() or [""])


def _md_table(header: list[str], rows: list[list[str]], right_from: int = 1) -> list[str]:
    align = ["---" if i < right_from else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(_md_cell(h) for h in header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return lines


def _attempts(attempts: list[m.AttemptOut]) -> list[str]:
    if not attempts:
        return []
    return ["", "**Attempts**", ""] + [f"- {_md(fmt.attempt_line(a))}" for a in attempts]


def _hypothesis(h: m.HypothesisInfo | None) -> list[str]:
    out = ["## Hypothesis", ""]
    if h is None:
        return out + ["(no longer stored)"]
    out += [f"**{_md(h.title)}** (`{h.id}`)", ""]
    if h.statement:
        out += [_md_quote(h.statement), ""]
    rows = [
        ["Targets", fmt.listed(h.targets)],
        ["Diseases", fmt.listed(h.diseases)],
        ["Mechanisms", fmt.listed(h.mechanisms)],
    ]
    return out + _md_table(["", ""], rows, right_from=2)


def _run(r: m.RunInfo) -> list[str]:
    rows = [
        ["Status", r.status],
        ["Backend", r.backend],
        ["Trigger", r.trigger],
        ["Batch", r.batch_id or "—"],
        ["Rounds", str(r.rounds_done)],
        ["Created", fmt.ts(r.created_at)],
        ["Started", fmt.ts(r.started_at)],
        ["Evidence retrieved", fmt.ts(r.retrieved_at)],
        ["Finished", fmt.ts(r.finished_at)],
        ["Usage", fmt.tokens(r.usage)],
        ["Cost", fmt.cost(r.cost_usd)],
        ["KB hash", r.kb_hash or "—"],
        ["Verified claims", fmt.verified_claims(r)],
        ["Prompts", fmt.prompt_hashes(r) or "—"],
        ["Config", fmt.config_json(r) if r.config else "—"],
        *([["Error", r.error]] if r.error else []),
    ]
    return ["", "## Run", ""] + _md_table(["", ""], rows, right_from=2)


def _turn(turn: m.TurnOut) -> list[str]:
    out = [f"### {fmt.who(turn)}", "", f"*{_md(fmt.turn_header(turn))}*", ""]
    out.append(_md_quote(turn.argument if turn.argument is not None else turn.raw_reply))
    if turn.claims:
        out += ["", "**Claims**", ""]
        for i, claim in enumerate(turn.claims, 1):
            cites = " ".join(fmt.cite(c) for c in claim.citations)
            out.append(f"{i}. {_md_inline(claim.text)} {_md(cites)}".rstrip())
            if mark := fmt.claim_mark(claim):
                out.append(f"{' ' * len(f'{i}. ')}- {_md_inline(mark)}")  # nested under its claim
    if turn.concede is not None:
        out += ["", f"Concedes: **{'yes' if turn.concede else 'no'}**"]
    return out + _fit(turn) + _attempts(turn.attempts) + [""]


def _fit(turn: m.TurnOut) -> list[str]:
    return ["", f"Context: {_md(fmt.fit_line(turn.fit))}"] if turn.fit is not None else []


def _rounds(rounds: list[m.RoundOut]) -> list[str]:
    out: list[str] = []
    for rnd in rounds:
        out += ["", f"## Round {rnd.round}", ""]
        for turn in (rnd.proposer, rnd.critic):
            if turn is not None:
                out += _turn(turn)
    return out


def _judges(judges: list[m.JudgeOut], empty: list[m.EmptySeat]) -> list[str]:
    if not judges and not empty:
        return []
    out = ["", "## Judges", ""] + (_md_table(*fmt.judge_table(judges)) if judges else [])
    for j in judges:
        out += ["", f"### Judge {j.seat}", "", f"*{_md(fmt.turn_header(j))}*", ""]
        out.append(f"- Persona: {_md(j.persona or '—')}")
        if j.emphasis:
            out.append(f"- Emphasis: {_md(', '.join(j.emphasis))}")
        if j.critic_first is not None:
            out.append(f"- Saw {fmt.first_side(j)} first")
        out += ["", _md_quote(j.rationale or "(no rationale)")]
        out += [f"- **{_md(line)}**" for line in fmt.bound_lines(j)]
        out += _fit(j) + _attempts(j.attempts)
    for e in empty:
        out += ["", f"### Judge {e.seat}: empty seat", "", f"- Persona: {_md(e.persona or '—')}"]
        out += [f"- {_md(fmt.empty_seat_line(e))}"] + _attempts(e.attempts)
    return out


def _consensus(c: m.ConsensusOut | None) -> list[str]:
    if c is None:
        return ["", "## Consensus", "", "None (no judge verdicts recorded)."]
    line = _md(fmt.consensus_line(c))
    if c.withheld:
        line = line.replace(fmt.WITHHELD_MARK, f"**{fmt.WITHHELD_MARK}**")
    return ["", "## Consensus", "", line]


def _evidence(evidence: list[m.EvidenceOut]) -> list[str]:
    out = ["", "## Evidence", ""]
    if not evidence:
        out.append("(no evidence was retrieved)")
    for e in evidence:
        out += [
            f"### {e.eid} — `{e.page_slug}` › {_md(fmt.heading(e.heading_path))}",
            "",
            f"*rank {e.rank} · relevance {fmt.num(e.relevance)} · page hash `{e.page_hash[:12]}`*",
            "",
            _md_quote(e.text),
            "",
        ]
        if e.cited_by:
            out += [f"Cited by: {', '.join(e.cited_by)}", ""]
    return out


def _unmatched(attempts: list[m.AttemptOut]) -> list[str]:
    if not attempts:
        return []
    return ["", "## Calls without a recorded turn", ""] + [
        f"- round {a.round} {a.role} seat {a.seat}: {_md(fmt.attempt_line(a))}" for a in attempts
    ]


def _review(review: m.ReviewInfo) -> list[str]:
    out = ["", "## Review", "", f"Status: **{review.status}**{fmt.review_flag_note(review)}", ""]
    for rv in review.history:
        out.append(f"- {fmt.ts(rv.at)} **{_md(rv.action)}** by {_md(rv.by)}" + (f": {_md(rv.note)}" if rv.note else ""))
    return out


def render_markdown(t: m.Transcript) -> str:
    """The whole transcript as Markdown, sections in reading order."""
    out = [f"# Debate transcript — run `{t.run.id}`", ""]
    out += [f"**Agents:** {_md(fmt.agents_line(t))}  ", f"Transcript format v{t.version}", ""]
    out += _hypothesis(t.hypothesis)
    out += _run(t.run)
    out += _rounds(t.rounds)
    out += _judges(t.judges, t.empty_seats)
    out += _consensus(t.consensus)
    out += _evidence(t.evidence)
    out += _unmatched(t.unmatched_attempts)
    out += _review(t.review)
    return "\n".join(out).rstrip() + "\n"
