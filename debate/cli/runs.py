"""`debate run`, `debate runs ...`, `debate transcript`, `debate review`."""

from __future__ import annotations

import asyncio
import getpass
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text
from sqlalchemy import select

from debate.cli.app import announce_db, app, console, emit_json, out, state
from debate.cli.safe import esc, lit, safe_lines
from debate.cli.tables import print_table
from debate.core.calls import Progress, progress_sink
from debate.core.config import BackendName
from debate.core.errors import DebateError, NotFoundError, UserInputError
from debate.core.scoring import display_score
from debate.store import tables as t
from debate.store.db import session_scope

if TYPE_CHECKING:
    from debate.engine.runs import RunOutcome

runs_app = typer.Typer(help="Debate runs: list, show, cancel.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")

Backend = BackendName


def _who(run_id: str | None, rnd: int | None, role: str | None, seat: int) -> str:
    """A turn's name as rich markup: ``r-… round 1 judge 2``."""
    parts = [f"[dim]{esc(run_id)}[/dim]"] if run_id else []
    if rnd is not None:
        parts.append(f"round {rnd}")
    parts.append(f"[bold]{esc(f'judge {seat}' if role == 'judge' else role or 'model')}[/bold]")
    return " ".join(parts)


def _turn_printer(quiet: bool):  # type: ignore[no-untyped-def]
    def show(run_id: str, rnd: int, role: str, seat: int, summary: str) -> None:
        if quiet:
            return
        text = summary if len(summary) <= 90 else summary[:87] + "..."
        # The summary is a model's reply, which quotes KB text: never markup, never controls.
        console.print(f"{_who(run_id, rnd, role, seat)}: {esc(text)}", highlight=False)

    return show


def progress_text(event: Progress) -> str:
    """What a turn's model call is doing, in words: ``~240 tokens, attempt 2 (retry after HTTP 500)``.

    Token counts are streamed chunks (about a token each), hence the ``~``."""
    if event.phase == "failed":
        then = ", re-asking" if event.outcome == "invalid_reply" else ", retrying"
        return f"attempt {event.attempt} failed ({event.reason}){then if event.retrying else ''}"
    if event.phase == "receiving":
        parts = [f"~{event.tokens} token{'' if event.tokens == 1 else 's'}"]
    else:
        parts = ["waiting for the model"]
    if event.attempt > 1:
        again = "re-ask" if event.kind == "reask" else "retry"
        parts.append(f"attempt {event.attempt}" + (f" ({again} after {event.previous})" if event.previous else ""))
    return ", ".join(parts)


def progress_line(event: Progress) -> str:
    """``event`` as one line of rich markup naming its turn; stored text escaped."""
    sp = event.speaker
    return f"{_who(sp.run_id, sp.round, sp.role, sp.seat)}: {esc(progress_text(event))}"


class ProgressDisplay:
    """Model calls under way (a :data:`~debate.core.calls.ProgressSink`).

    On a terminal: one transient status line per turn in flight, gone when its call ends. In a
    pipe or a log: nothing but one line per failed attempt that is tried again (the turn lines
    already tell the rest)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.lines: dict[tuple[str | None, int | None, str | None, int], str] = {}
        # Started at the first event (it hides the cursor); stdout stays the caller's.
        self.live = (
            Live(Group(), console=console, transient=True, auto_refresh=False, redirect_stdout=False)
            if console.is_terminal
            else None
        )

    def __call__(self, event: Progress) -> None:
        if self.live is None:
            if event.phase == "failed" and event.retrying:
                self.console.print(progress_line(event), highlight=False, soft_wrap=True)
            return
        sp = event.speaker
        key = (sp.run_id, sp.round, sp.role, sp.seat)
        if event.phase == "ended":
            if self.lines.pop(key, None) is None:
                return
        else:
            self.lines[key] = progress_line(event)
        self.live.start()
        self.live.update(Group(*(Text.from_markup(line) for line in self.lines.values())), refresh=True)

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()


def run_and_report(run_ids: list[str], backend: str, *, concurrency: int = 1, quiet: bool = False) -> list[RunOutcome]:
    from debate.engine.runs import Executor  # the engine loads only for commands that debate

    engine = state.engine()
    display = None if quiet else ProgressDisplay(console)

    async def go() -> list[RunOutcome]:
        async with Executor(engine, state.settings, backend=backend, on_turn=_turn_printer(quiet)) as ex:
            with progress_sink(display):
                return await ex.execute_many(run_ids, concurrency=concurrency)

    try:
        return asyncio.run(go())
    finally:
        if display is not None:
            display.close()


def score_table(outcomes: list[RunOutcome]) -> Table:
    with session_scope(state.engine()) as s:
        runs = {r.id: r for r in s.execute(select(t.Run).where(t.Run.id.in_([o.run_id for o in outcomes]))).scalars()}
        titles = dict(
            s.execute(
                select(t.Hypothesis.id, t.Hypothesis.title).where(
                    t.Hypothesis.id.in_([o.hypothesis_id for o in outcomes])
                )
            ).all()
        )
    table = Table("hypothesis", "score", "interval", "agreement", "run", "status", "title")
    for o in outcomes:
        r = runs[o.run_id]
        table.add_row(
            lit(o.hypothesis_id),
            display_score(r.score) if r.score is not None else "—",
            f"{display_score(r.interval_lo)}–{display_score(r.interval_hi)}" if r.interval_lo is not None else "—",
            f"{r.agreement:.2f}" if r.agreement is not None else "—",
            lit(o.run_id),
            lit(o.status if not o.error else f"{o.status}: {o.error}"),
            lit(titles.get(o.hypothesis_id, "")),
        )
    return table


@app.command("run")
def run(
    hypothesis_ids: Annotated[list[str] | None, typer.Argument(help="Hypothesis ids to debate.")] = None,
    backend: Annotated[
        Backend | None, typer.Option("--backend", help="offline (default), openai or local (a GGUF on this machine).")
    ] = None,
    rounds: Annotated[
        int | None, typer.Option("--rounds", min=1, max=10, help="Proposer/critic rounds at most.")
    ] = None,
    judges: Annotated[int | None, typer.Option("--judges", min=1, max=15, help="Judges on the panel.")] = None,
    resume: Annotated[str | None, typer.Option("--resume", help="Resume an unfinished run by its id.")] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, max=256, help="Debates at once.")] = 1,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No per-turn progress lines.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcomes as JSON.")] = False,
) -> None:
    """Debate hypotheses (or resume a run) and print their consensus scores."""
    from debate.engine.runs import create_runs

    announce_db()
    engine = state.engine()
    if resume:
        if hypothesis_ids:
            raise UserInputError("give hypothesis ids or --resume, not both")
        with session_scope(engine) as s:
            r = s.get(t.Run, resume)
            if r is None:
                raise NotFoundError(f"unknown run id {resume!r}")
            run_ids, chosen = [resume], r.backend
    else:
        if not hypothesis_ids:
            raise UserInputError("name at least one hypothesis id (see `debate hypotheses list`)")
        chosen = backend or state.settings.backend
        run_ids = create_runs(engine, state.settings, hypothesis_ids, backend=chosen, rounds=rounds, judges=judges)
    outcomes = run_and_report(run_ids, chosen, concurrency=concurrency, quiet=quiet or as_json)
    if as_json:
        emit_json([o.__dict__ for o in outcomes])
    else:
        print_table(out, score_table(outcomes), flex=("title",))
    unfinished = [o for o in outcomes if o.status != "done"]
    if unfinished:  # the table shows each; one `error:` line says why, exit 1
        first = unfinished[0]
        why = f"{first.status}: {first.error}" if first.error else first.status
        raise DebateError(f"{len(unfinished)} of {len(outcomes)} debates did not finish ({first.hypothesis_id} {why})")


REVIEW_STATUSES = ("unreviewed", "approved", "flagged", "needs_review")


@runs_app.command("list")
def list_runs(
    status: Annotated[
        str | None, typer.Option("--status", help="queued, running, interrupted, done, failed or cancelled.")
    ] = None,
    hypothesis: Annotated[str | None, typer.Option("--hypothesis", help="Only runs of this hypothesis.")] = None,
    review: Annotated[
        str | None,
        typer.Option(
            "--review",
            help="Only runs with this review status (needs_review: a judge's verdict contradicted the debate).",
        ),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Newest runs at most.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List runs, newest first."""
    from debate.engine.leases import interrupted_ids, status_condition

    q = select(t.Run).order_by(t.Run.created_at.desc(), t.Run.id).limit(limit)  # type: ignore[union-attr]
    if hypothesis:
        q = q.where(t.Run.hypothesis_id == hypothesis)
    if review:
        if review not in REVIEW_STATUSES:
            raise UserInputError(f"unknown review status {review!r}; one of {', '.join(REVIEW_STATUSES)}")
        q = q.where(t.Run.review_status == review)
    beat = state.settings.debate.heartbeat_s
    with session_scope(state.engine()) as s:
        if status:  # interrupted: queued or running, but nothing executes it (see debate.engine.leases)
            q = q.where(status_condition(s, status, heartbeat_s=beat))
        rows = s.execute(q).scalars().all()
        stuck = interrupted_ids(s, [r.id for r in rows if r.status in ("queued", "running")], heartbeat_s=beat)
    items = [
        {
            "id": r.id,
            "hypothesis_id": r.hypothesis_id,
            "status": "interrupted" if r.id in stuck else r.status,
            "backend": r.backend,
            "score": r.score,
            "agreement": r.agreement,
            "flagged": r.flagged,
            "review_status": r.review_status,
            "trigger": r.trigger,
            "batch_id": r.batch_id,
            "created_at": t.as_utc(r.created_at).isoformat(),  # type: ignore[union-attr]
            "finished_at": t.as_utc(r.finished_at).isoformat() if r.finished_at else None,
            "error": r.error,
        }
        for r in rows
    ]
    if as_json:
        emit_json(items)
        return
    table = Table("run", "hypothesis", "status", "backend", "score", "review", "created")
    for i in items:
        table.add_row(
            lit(i["id"]),
            lit(i["hypothesis_id"]),
            lit(i["status"]),
            lit(i["backend"]),
            display_score(i["score"]) if i["score"] is not None else "—",
            lit(i["review_status"].replace("_", " ") if i["review_status"] != "unreviewed" else ""),
            i["created_at"][:19],
        )
    print_table(out, table)


@runs_app.command("show")
def show_run(
    run_id: Annotated[str, typer.Argument(help="Run id, r-...")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show one run: status, score, tokens, review state."""
    with session_scope(state.engine()) as s:
        r = s.get(t.Run, run_id)
        if r is None:
            raise NotFoundError(f"unknown run id {run_id!r}")
        n_turns = len(s.execute(select(t.Turn.id).where(t.Turn.run_id == run_id)).all())
        data = r.model_dump(mode="json")
    data["turns"] = n_turns
    if as_json:
        emit_json(data)
        return
    for k in (
        "id",
        "hypothesis_id",
        "status",
        "backend",
        "trigger",
        "rounds_done",
        "turns",
        "score",
        "interval_lo",
        "interval_hi",
        "agreement",
        "prompt_tokens",
        "completion_tokens",
        "cost_usd",
        "review_status",
        "error",
        "created_at",
        "finished_at",
    ):
        out.print(lit(f"{k:>18}: {data.get(k)}"))


@runs_app.command("cancel")
def cancel(run_id: Annotated[str, typer.Argument(help="Run id, r-...")]) -> None:
    """Cancel a queued or running run."""
    from debate.engine.runs import cancel_run

    previous = cancel_run(state.engine(), run_id)
    out.print(lit(f"cancelled {run_id} (was {previous})"))


@app.command("transcript")
def transcript(
    run_id: Annotated[str, typer.Argument(help="Run id, r-...")],
    fmt: Annotated[Literal["text", "md", "json", "html"], typer.Option("--format", "-f", help="Rendering.")] = "text",
) -> None:
    """Render a run's whole debate with its evidence, judges and consensus."""
    from debate.engine.transcript import load_transcript, render

    with session_scope(state.engine()) as s:
        tr = load_transcript(s, run_id)
    text = render(tr, fmt)
    # Text and Markdown go to terminals and quote KB text and model replies: no control
    # characters (JSON escapes them, HTML is for a browser).
    print(safe_lines(text) if fmt in ("text", "md") else text)


@app.command("review")
def review(
    run_id: Annotated[str, typer.Argument(help="Run id, r-...")],
    approve: Annotated[bool, typer.Option("--approve", help="Approve the run.")] = False,
    flag: Annotated[bool, typer.Option("--flag", help="Flag the run: its score is withheld.")] = False,
    clear: Annotated[bool, typer.Option("--clear", help="Clear an earlier approval or flag.")] = False,
    note: Annotated[str | None, typer.Option("--note", help="Why.")] = None,
    by: Annotated[str | None, typer.Option("--by", help="Reviewer name (default: the OS user).")] = None,
) -> None:
    """Approve, flag or clear a run (a note alone records a comment)."""
    chosen = [name for name, on in (("approve", approve), ("flag", flag), ("clear", clear)) if on]
    if len(chosen) > 1:
        raise UserInputError("choose one of --approve, --flag, --clear")
    if not chosen and not note:
        raise UserInputError("give --approve, --flag, --clear or --note")
    action = chosen[0] if chosen else "comment"
    from debate.engine.runs import review_run

    r = review_run(state.engine(), run_id, action, by=by or getpass.getuser(), note=note)
    out.print(lit(f"{run_id}: {action} recorded (review status {r.review_status})"))
