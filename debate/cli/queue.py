"""`debate worker` and `debate queue ...`: debates on the PostgreSQL task queue."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

import typer
from rich.table import Table

from debate.cli.app import announce_db, app, console, emit_json, out, state
from debate.cli.safe import lit
from debate.cli.tables import print_table

queue_app = typer.Typer(help="The task queue (PostgreSQL): add debates, show job counts.", no_args_is_help=True)
app.add_typer(queue_app, name="queue")


def _settings():  # type: ignore[no-untyped-def]
    from debate.jobs.queue import require_postgres

    settings = state.settings
    require_postgres(settings)
    return settings


@app.command("worker")
def worker(
    concurrency: Annotated[
        int | None,
        typer.Option("--concurrency", min=1, max=1024, help="Debates at once (default: [queue] concurrency)."),
    ] = None,
    queue: Annotated[
        list[str] | None, typer.Option("--queue", help="Queue to work (repeatable; default: [queue] name).")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Worker name in logs.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every job.")] = False,
) -> None:
    """Run debates from the queue until stopped (Ctrl-C finishes the debates in hand)."""
    from debate.jobs.queue import run_worker

    settings = _settings()
    announce_db()
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(run_worker(settings, concurrency=concurrency, queues=queue, name=name))


@queue_app.command("add")
def add(
    hypothesis_ids: Annotated[list[str], typer.Argument(help="Hypothesis ids to debate.")],
    backend: Annotated[
        str | None, typer.Option("--backend", help="offline, openai or local (default: config).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Put debates on the queue (a hypothesis already queued is skipped)."""
    from debate.jobs.queue import build_app, enqueue, ensure_queue_schema

    settings = _settings()
    engine = state.engine()
    ensure_queue_schema(settings)

    async def go():  # type: ignore[no-untyped-def]
        qa = build_app(settings)
        async with qa.open_async():
            return await enqueue(qa, engine, settings, hypothesis_ids, backend=backend or settings.backend)

    result = asyncio.run(go())
    if as_json:
        emit_json(result.model_dump())
        return
    out.print(f"queued {len(result.queued)} debate(s); {len(result.skipped)} already queued")


@queue_app.command("status")
def status(
    queue: Annotated[str | None, typer.Option("--queue", help="Queue name (default: [queue] name).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Jobs queued, running, failed and stalled (running on a worker without a heartbeat)."""
    from debate.jobs.queue import build_app, ensure_queue_schema, queue_status

    settings = _settings()
    ensure_queue_schema(settings)

    async def go():  # type: ignore[no-untyped-def]
        qa = build_app(settings)
        async with qa.open_async():
            return await queue_status(qa, settings, queue)

    st = asyncio.run(go())
    if as_json:
        emit_json(st.model_dump())
        return
    table = Table("queue", "queued", "running", "failed", "stalled", "succeeded", "cancelled")
    table.add_row(
        lit(st.queue), *(str(x) for x in (st.queued, st.running, st.failed, st.stalled, st.succeeded, st.cancelled))
    )
    print_table(out, table)
    if st.stalled:
        console.print(f"[yellow]{st.stalled} stalled job(s): a worker's stalled-job check will retry them[/yellow]")
