"""`debate batches list|show`: the stored rescoring batches and their items."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy import select

from debate.cli.app import app, emit_json, out, state
from debate.cli.safe import lit
from debate.cli.tables import print_table
from debate.store import tables as t
from debate.store.db import session_scope

batches_app = typer.Typer(help="Rescoring batches: list, show.", no_args_is_help=True)
app.add_typer(batches_app, name="batches")


def iso(dt: Any) -> str | None:
    dt = t.as_utc(dt)
    return dt.isoformat(timespec="seconds") if dt else None


def money(x: float | None) -> str:
    return "—" if x is None else f"${x:,.4f}"


def tokens(x: int | None) -> str:
    return "—" if x is None else f"{x:,}"


@batches_app.command("list")
def list_batches(
    status: Annotated[str | None, typer.Option("--status", help="pending, running, stopped or done.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Newest batches at most.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List rescoring batches, newest first."""
    from debate.jobs.batches import list_batches as query

    with session_scope(state.engine()) as s:
        rows = query(s, status=status, limit=limit)
    items = [_batch_dict(b) for b in rows]
    if as_json:
        emit_json(items)
        return
    table = Table("batch", "status", "created", "total", "done", "failed", "tokens", "cost", "options")
    for b, i in zip(rows, items, strict=True):
        table.add_row(
            lit(b.id),
            lit(b.status),
            (i["created_at"] or "")[:19],
            str(b.total),
            str(b.done),
            str(b.failed),
            tokens(i["tokens"]),
            money(b.cost_usd),
            lit(_describe(b.options)),
        )
    print_table(out, table, flex=("options",))


@batches_app.command("show")
def show_batch(
    batch_id: Annotated[str, typer.Argument(help="Batch id, b-...")],
    items: Annotated[bool, typer.Option("--items", help="Also list every hypothesis with its run.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show one batch: options, settings, progress by status, spend, and (--items) its hypotheses."""
    from debate.jobs.batches import batch_counts, batch_spend, get_batch
    from debate.jobs.selection import Reasons

    with session_scope(state.engine()) as s:
        b = get_batch(s, batch_id)
        counts = batch_counts(s, batch_id)
        spend = batch_spend(s, batch_id)
        rows = (
            s.execute(
                select(t.BatchItem.hypothesis_id, t.BatchItem.run_id, t.Run.status, t.Run.score, t.BatchItem.reasons)
                .outerjoin(t.Run, t.Run.id == t.BatchItem.run_id)
                .where(t.BatchItem.batch_id == batch_id)
                .order_by(t.BatchItem.ordinal)
            ).all()
            if items
            else []
        )
    data = _batch_dict(b) | {
        "settings": b.settings,
        "counts": counts,
        "spend": spend.model_dump(),
    }
    if items:
        data["items"] = [
            {
                "hypothesis_id": h,
                "run_id": r,
                "status": st or "pending",
                "score": sc,
                "reasons": Reasons.model_validate(re or {}).model_dump(),
            }
            for h, r, st, sc, re in rows
        ]
    if as_json:
        emit_json(data)
        return
    for k in ("id", "status", "stop_reason", "backend", "created_at", "started_at", "finished_at", "owner"):
        out.print(lit(f"{k:>12}: {data.get(k)}"))
    out.print(lit(f"{'options':>12}: {_describe(b.options)}"))
    out.print(lit(f"{'progress':>12}: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) + f" of {b.total}"))
    if spend.calls and spend.unknown_tokens == spend.calls:
        spent = f"{spend.calls} calls, none reported usage"
    else:
        cost = money(spend.cost_usd if spend.calls > spend.unknown_cost else None)
        spent = f"{spend.tokens:,} tokens, {cost} over {spend.calls} calls"
        if spend.unknown_tokens:
            spent += f" ({spend.unknown_tokens} without usage)"
    out.print(lit(f"{'spent':>12}: {spent}"))
    if items:
        table = Table("hypothesis", "run", "status", "score", "why")
        for i in data["items"]:
            table.add_row(
                lit(i["hypothesis_id"]),
                lit(i["run_id"] or "—"),
                lit(i["status"]),
                f"{i['score']:.3f}" if i["score"] is not None else "—",
                lit(Reasons.model_validate(i["reasons"]).summary()),
            )
        print_table(out, table, flex=("why",))


def _describe(options: dict) -> str:  # type: ignore[type-arg]
    from debate.jobs.selection import SelectionOptions

    try:
        return SelectionOptions.model_validate(options).describe()
    except ValueError:
        return str(options)


def _batch_dict(b: t.Batch) -> dict[str, Any]:
    tokens = None if b.prompt_tokens is None else b.prompt_tokens + (b.completion_tokens or 0)
    return {
        "id": b.id,
        "status": b.status,
        "stop_reason": b.stop_reason,
        "backend": b.backend,
        "options": b.options,
        "options_key": b.options_key,
        "total": b.total,
        "done": b.done,
        "failed": b.failed,
        "tokens": tokens,
        "cost_usd": b.cost_usd,
        "unknown_usage": b.unknown_usage,
        "owner": b.owner,
        "created_at": iso(b.created_at),
        "started_at": iso(b.started_at),
        "finished_at": iso(b.finished_at),
    }
