"""`debate rescore`: scheduled rescoring in resumable batches."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from debate.cli.app import announce_db, app, console, emit_json, out, state
from debate.cli.batches import money, tokens
from debate.cli.safe import esc, lit
from debate.cli.tables import print_table
from debate.core.config import BackendName
from debate.core.errors import UserInputError
from debate.store import tables as t
from debate.store.db import session_scope

if TYPE_CHECKING:
    from debate.jobs.batches import Budget
    from debate.jobs.runner import BatchProgress, BatchSummary

Backend = BackendName
EXIT_STOPPED = 3  # the batch stopped before its end (budget): rerun to continue


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


# The command's options, named so its signature reads as a list of what it takes.
_StaleAfterOpt = Annotated[
    str | None,
    typer.Option(
        "--stale-after",
        help="Scores older than this (0s, 12h, 30d, 2w); default [rescore] stale_after "
        "when no other criterion is given.",
    ),
]
_ChangedOpt = Annotated[
    bool, typer.Option("--changed", help="Hypotheses whose cited or listing KB pages changed since their last run.")
]
_PromptChangedOpt = Annotated[
    bool, typer.Option("--prompt-changed", help="Hypotheses whose last run used other prompts than the backend's now.")
]
_IdsOpt = Annotated[Path | None, typer.Option("--ids", help="Only hypotheses listed in this file.")]
_LimitOpt = Annotated[int | None, typer.Option("--limit", min=1, help="At most N, most urgent first.")]
_ConcurrencyOpt = Annotated[
    int | None, typer.Option("--concurrency", min=1, max=1024, help="Debates at once (default [rescore] concurrency).")
]
_BackendOpt = Annotated[Backend | None, typer.Option("--backend", help="offline, openai or local (default: config).")]
_MaxTokensTotalOpt = Annotated[
    int | None,
    typer.Option(
        "--max-tokens-total", min=0, help="Stop starting debates once the batch spent this many tokens (0: none)."
    ),
]
_MaxCostOpt = Annotated[
    float | None,
    typer.Option("--max-cost", min=0, help="Stop starting debates once the batch spent this many USD (0: none)."),
]
_ProcessesOpt = Annotated[
    int,
    typer.Option("--processes", min=1, max=64, help="Processes debating the batch (each with --concurrency debates)."),
]
_ResumeOpt = Annotated[str | None, typer.Option("--resume", help="Resume this batch id (b-...).")]
_DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Show what would be debated; change nothing.")]
_EnqueueOpt = Annotated[
    bool,
    typer.Option(
        "--enqueue", help="Put the batch on the task queue for `debate worker`s instead of running it (PostgreSQL)."
    ),
]
_AsJsonOpt = Annotated[bool, typer.Option("--json", help="Print a JSON summary (no progress bar).")]
_QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]


@app.command("rescore")
def rescore(
    stale_after: _StaleAfterOpt = None,
    changed: _ChangedOpt = False,
    prompt_changed: _PromptChangedOpt = False,
    ids: _IdsOpt = None,
    limit: _LimitOpt = None,
    concurrency: _ConcurrencyOpt = None,
    backend: _BackendOpt = None,
    max_tokens_total: _MaxTokensTotalOpt = None,
    max_cost: _MaxCostOpt = None,
    processes: _ProcessesOpt = 1,
    resume: _ResumeOpt = None,
    dry_run: _DryRunOpt = False,
    enqueue: _EnqueueOpt = False,
    as_json: _AsJsonOpt = False,
    quiet: _QuietOpt = False,
) -> None:
    """Re-debate stale hypotheses in a stored batch that a rerun of the same command resumes.

    Criteria given together are OR-ed. Exit status: 0 all scored, 1 some debates failed,
    3 stopped by a budget (rerun with a larger one to continue).
    """
    from debate.jobs.batches import get_batch

    if enqueue and not dry_run:
        from debate.jobs.queue import require_postgres

        require_postgres(state.settings)
    announce_db()
    engine = state.engine()
    settings = state.settings
    override = _budget_override(settings, max_tokens_total, max_cost)

    if resume:
        if stale_after or changed or prompt_changed or ids or limit or backend:
            raise UserInputError("--resume takes no selection options (the batch keeps its own)")
        with session_scope(engine) as s:
            batch = get_batch(s, resume)
        batch_id, resumed = batch.id, True
        if dry_run:
            _show_open(batch_id, as_json)
            return
    else:
        opened = _select_and_open(
            engine,
            settings,
            backend=backend,
            stale_after=stale_after,
            changed=changed,
            prompt_changed=prompt_changed,
            ids=ids,
            limit=limit,
            concurrency=concurrency,
            budget=override,
            dry_run=dry_run,
            as_json=as_json,
        )
        if opened is None:
            return
        batch_id, resumed = opened
    if not as_json:
        console.print(f"{'resuming' if resumed else 'created'} batch [bold]{batch_id}[/bold]")

    if enqueue:
        _enqueue(engine, settings, batch_id, as_json)
        return
    summary = _run(
        engine, settings, batch_id, concurrency, override, processes=processes, show_progress=not (as_json or quiet)
    )
    _report(summary, as_json)


def _budget_override(settings: Any, max_tokens_total: int | None, max_cost: float | None) -> Budget | None:
    """--max-tokens-total / --max-cost as a budget (an omitted one from config); None if neither."""
    from debate.jobs.batches import Budget

    if max_tokens_total is None and max_cost is None:
        return None
    r = settings.rescore
    return Budget(
        max_tokens_total=r.max_tokens_total if max_tokens_total is None else max_tokens_total,
        max_cost=r.max_cost if max_cost is None else max_cost,
    )


def _select_and_open(
    engine: Any,
    settings: Any,
    *,
    backend: Backend | None,
    stale_after: str | None,
    changed: bool,
    prompt_changed: bool,
    ids: Path | None,
    limit: int | None,
    concurrency: int | None,
    budget: Budget | None,
    dry_run: bool,
    as_json: bool,
) -> tuple[str, bool] | None:
    """Select hypotheses and open (or reopen) their batch: ``(batch id, resumed)``.

    None when the command has nothing more to do: a dry run was shown, or nothing is stale.
    """
    from debate.jobs.batches import open_or_create_batch
    from debate.jobs.selection import normalize_options, read_ids_file

    chosen = backend or settings.backend
    id_list = read_ids_file(ids) if ids else None
    opts = normalize_options(
        backend=chosen,
        stale_after=stale_after,
        changed=changed,
        prompt_changed=prompt_changed,
        ids=id_list,
        limit=limit,
        default_stale_after=settings.rescore.stale_after,
    )
    if dry_run:
        _dry_run(opts, id_list, as_json)
        return None
    batch, created = open_or_create_batch(engine, settings, opts, ids=id_list, concurrency=concurrency, budget=budget)
    if batch is None:
        if as_json:
            emit_json({"batch_id": None, "status": "empty", "options": opts.model_dump(mode="json"), "total": 0})
        else:
            out.print(lit(f"nothing to rescore ({opts.describe()})"))
        return None
    if not as_json:
        console.print(f"[dim]{esc(opts.describe())}[/dim]")
    return batch.id, not created


def _report(summary: BatchSummary, as_json: bool) -> None:
    """Print the summary; exit 1 if debates failed, EXIT_STOPPED if the batch stopped early."""
    if as_json:
        emit_json(summary.model_dump(mode="json"))
    else:
        _print_summary(summary)
    if summary.failed:
        raise typer.Exit(1)
    if summary.status != "done":
        raise typer.Exit(EXIT_STOPPED)


def _enqueue(engine: Any, settings: Any, batch_id: str, as_json: bool) -> None:
    """Hand the batch's unclaimed hypotheses to the task queue, one job each."""
    import asyncio

    from debate.jobs.queue import build_app, enqueue_batch, ensure_queue_schema

    ensure_queue_schema(settings)

    async def go() -> Any:
        qa = build_app(settings)
        async with qa.open_async():
            return await enqueue_batch(qa, engine, settings, batch_id)

    result = asyncio.run(go())
    if as_json:
        emit_json(result.model_dump())
    else:
        out.print(
            f"batch {batch_id}: queued {len(result.queued)} debate(s), "
            f"{len(result.skipped)} already queued; run `debate worker` to debate them"
        )


def _run(
    engine: Any,
    settings: Any,
    batch_id: str,
    concurrency: int | None,
    budget: Any,
    *,
    processes: int,
    show_progress: bool,
) -> BatchSummary:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from debate.jobs.runner import BatchRunner

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[done]} done · {task.fields[failed]} failed · {task.fields[left]} left"),
        TextColumn("{task.fields[rate]}/min · ETA {task.fields[eta]}"),
        TextColumn("{task.fields[tokens]} tok · {task.fields[cost]}"),
        TimeElapsedColumn(),
        console=console,
        disable=not show_progress,
        transient=False,
    )
    task = progress.add_task(
        batch_id, total=None, done=0, failed=0, left="?", rate="0.0", eta="—", tokens="0", cost="—"
    )

    def update(p: BatchProgress) -> None:
        sp = p.spend
        known_calls = sp.calls - sp.unknown_tokens
        progress.update(
            task,
            total=p.total,
            completed=p.done + p.failed,
            done=p.done,
            failed=p.failed,
            left=p.remaining,
            rate=f"{p.per_minute:.1f}",
            eta=_eta(p.eta_s),
            tokens=tokens(sp.tokens) + ("" if not sp.unknown_tokens else f" (+{sp.unknown_tokens} calls unknown)")
            if known_calls or not sp.calls
            else "—",
            cost=money(sp.cost_usd) if sp.calls - sp.unknown_cost else "—",
            description=f"{batch_id} (stopping: budget)" if p.stopping else batch_id,
        )

    runner = BatchRunner(
        engine, settings, batch_id, concurrency=concurrency, budget=budget, on_progress=update, processes=processes
    )
    with progress:
        summary = asyncio.run(runner.run())
    assert summary is not None
    return summary


def _print_summary(s: BatchSummary) -> None:
    line = (
        f"batch {s.batch_id}: {s.status} — {s.done} done, {s.failed} failed, {s.remaining} left "
        f"({s.debated} debated now in {s.elapsed_s:.1f} s, {s.per_minute:.1f}/min)"
    )
    out.print(line, markup=False)
    if s.tokens is not None or s.cost_usd is not None:
        out.print(
            f"spent {tokens(s.tokens)} tokens, {money(s.cost_usd)}"
            + (f"; {s.unknown_usage} calls reported no usage (not counted)" if s.unknown_usage else ""),
            markup=False,
        )
    if s.stop_reason:
        out.print(
            f"stopped: {s.stop_reason}; debates in flight finished, {s.remaining} not started. "
            f"Rerun the same command (or `debate rescore --resume {s.batch_id}`) to continue"
            + (" with a larger budget." if "budget" in s.stop_reason else "."),
            markup=False,
        )
    for note in s.notes:
        out.print(lit(f"note: {note}"))
    for e in s.errors[:5]:
        # An error may quote a model's reply: printed as plain, one-line text.
        out.print(lit(f"  {e['status']}: {e['hypothesis_id'] or e['run_id']}: {e['error'][:160]}"))


def _show_open(batch_id: str, as_json: bool) -> None:
    from debate.jobs.batches import batch_counts, get_batch

    with session_scope(state.engine()) as s:
        b = get_batch(s, batch_id)
        counts = batch_counts(s, batch_id)
    if as_json:
        emit_json({"batch_id": b.id, "resume": True, "options": b.options, "total": b.total, "counts": counts})
        return
    left = b.total - sum(counts.get(k, 0) for k in ("done", "failed", "cancelled"))
    out.print(f"would resume batch {b.id}: {left} of {b.total} hypotheses left", markup=False)


def _dry_run(opts: Any, ids: list[str] | None, as_json: bool) -> None:
    """--dry-run: the open batch a run would resume, or the hypotheses a new batch would hold."""
    from debate.engine.backends import prompt_hashes
    from debate.jobs.batches import find_open_batch
    from debate.jobs.selection import select_hypotheses

    with session_scope(state.engine()) as s:
        existing = find_open_batch(s, opts.key())
        if existing is None:
            selected = select_hypotheses(
                s, opts, now=t.utcnow(), ids=ids, current_prompts=prompt_hashes(state.settings, opts.backend)
            )
    if existing is not None:
        _show_open(existing.id, as_json)
        return
    if as_json:
        emit_json(
            {
                "batch_id": None,
                "resume": False,
                "options": opts.model_dump(mode="json"),
                "total": len(selected),
                "hypotheses": [x.model_dump() for x in selected],
            }
        )
        return
    out.print(lit(f"would debate {len(selected)} hypotheses: {opts.describe()}"))
    if selected:
        table = Table("hypothesis", "why")
        for x in selected[:200]:
            table.add_row(lit(x.id), lit(x.reasons.summary()))
        print_table(out, table, flex=("why",))
        if len(selected) > 200:
            out.print(f"... and {len(selected) - 200} more (--json lists all)", markup=False)
