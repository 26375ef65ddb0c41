"""Benchmark: rescoring throughput against a slow fake model, and offline.

Model-backed: for each concurrency level, a fresh database holding the bundled sample KB and
``3 × concurrency`` hypotheses (copies of the sample ones), rescored as one batch with the openai
backend pointed at the fake OpenAI-compatible server, whose every reply takes ``latency_s`` and
never concedes (2 rounds, then the judge panel in parallel: 5 sequential calls per debate).
Reported beside the ideal, ``concurrency ÷ (5 × latency)`` debates per second.

The fake server runs in its own process by default: in the engine's process it would compete for
the GIL with the engine it measures (``server="thread"`` runs it in-process, for comparison).
The endpoint limiter's concurrency cap is lifted (3 requests per debate at once, for the judge
panel), so the engine, not the limiter, is measured.

Offline: ``offline_n`` hypotheses rescored with the offline backend, in 1 and 2 processes.

Queue workers (:func:`run_workers`, PostgreSQL): the same batch put on the task queue and
worked by 1, 2, ... ``debate worker`` processes sharing the concurrency, each level in a fresh
database. Beside the rate it reports the mean debate time and debates in flight, which tell
per-debate overhead from jobs not handed out fast enough.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import insert, select, text
from sqlalchemy.engine import Engine, Row

from debate.core.errors import StorageError
from debate.store import tables as t
from debate.store.db import ensure_schema, session_scope
from debate.store.tables import utcnow

DATA = Path(__file__).resolve().parent.parent / "data"
SEQUENTIAL_CALLS = 5  # 2 rounds x (proposer, critic) + the judge panel, in parallel
Echo = Callable[..., object]


def _database(folder: Path, n: int) -> tuple[str, Engine]:
    """A SQLite database with the sample KB and ``n`` hypotheses cycled from the sample ones."""
    url = f"sqlite:///{folder}/bench.db"
    return url, _populate(url, n)


def _populate(url: str, n: int) -> Engine:
    """The sample KB and ``n`` never-scored hypotheses cycled from the sample ones."""
    from debate.kb.hypotheses import import_file
    from debate.kb.ingest import ingest_paths

    engine = ensure_schema(url)
    import_file(engine, DATA / "hypotheses.yaml")
    ingest_paths(engine, [DATA / "kb"])
    with session_scope(engine) as s:
        base = list(s.execute(select(t.Hypothesis).order_by(t.Hypothesis.id)).scalars())
        s.execute(t.HypothesisTarget.__table__.delete())
        s.execute(t.Hypothesis.__table__.delete())
    now = utcnow()
    rows, targets = [], []
    for i in range(n):
        b = base[i % len(base)]
        hid = f"h-{i:08x}"
        rows.append(
            dict(
                id=hid,
                title=f"{b.title} ({i})",
                title_key=f"{b.title_key} {i}",
                statement=b.statement,
                diseases=b.diseases,
                targets=b.targets,
                target_label=None,
                mechanisms=b.mechanisms,
                source="bench",
                prior_score=None,
                prior_source=None,
                created_at=now,
                updated_at=now,
            )
        )
        targets += [dict(hypothesis_id=hid, gene_key=g.casefold(), gene=g, ordinal=j) for j, g in enumerate(b.targets)]
    with session_scope(engine) as s:
        for i in range(0, n, 5000):
            s.execute(insert(t.Hypothesis), rows[i : i + 5000])
        for i in range(0, len(targets), 5000):
            s.execute(insert(t.HypothesisTarget), targets[i : i + 5000])
    return engine


@contextmanager
def _server(latency_s: float, where: Literal["process", "thread"]) -> Iterator[str]:
    if where == "thread":
        from debate.llm.fake import FakeOpenAIServer

        with FakeOpenAIServer(latency_s=latency_s) as srv:
            yield srv.base_url
        return
    from debate.llm.fake import fake_server_process

    with fake_server_process(latency_s) as base_url:
        yield base_url


def _rescore(engine: Engine, settings: Any, *, concurrency: int, processes: int = 1) -> tuple[float, Any]:
    from debate.jobs.batches import open_or_create_batch
    from debate.jobs.runner import BatchRunner
    from debate.jobs.selection import normalize_options

    opts = normalize_options(
        backend=settings.backend,
        stale_after="0s",
    )
    batch, _ = open_or_create_batch(engine, settings, opts, concurrency=concurrency)
    assert batch is not None
    runner = BatchRunner(engine, settings, batch.id, concurrency=concurrency, processes=processes)
    started = time.perf_counter()
    summary = asyncio.run(runner.run())
    return time.perf_counter() - started, summary


def model_level(
    concurrency: int, *, latency_s: float, n: int, base_url: str, max_concurrency: int, processes: int = 1
) -> dict[str, Any]:
    """One concurrency level (split over ``processes``): hypotheses per minute beside the ideal."""
    from debate.core.config import load_settings

    with tempfile.TemporaryDirectory(prefix="bench-rescore-") as tmp:
        url, engine = _database(Path(tmp), n)
        settings = load_settings(
            database_url=url,
            backend="openai",
            openai={
                "base_url": base_url,
                "api_key": "bench",
                "timeout_s": 120.0,
                "max_concurrency": max_concurrency,
                "rpm": 0,
                "tpm": 0,
            },
        )
        cpu0 = time.process_time()
        elapsed, summary = _rescore(engine, settings, concurrency=concurrency // processes, processes=processes)
        cpu = time.process_time() - cpu0
        engine.dispose()
    per_min = summary.done / elapsed * 60
    ideal = concurrency / (SEQUENTIAL_CALLS * latency_s) * 60
    return {
        "concurrency": concurrency,
        "processes": processes,
        "hypotheses": n,
        "done": summary.done,
        "failed": summary.failed,
        "elapsed_s": round(elapsed, 2),
        "per_minute": round(per_min, 1),
        "ideal_per_minute": round(ideal, 1),
        "pct_of_ideal": round(100 * per_min / ideal, 1),
        # This process only: with helpers, their CPU is not in it.
        "cpu_ms_per_debate": round(1000 * cpu / max(1, summary.done), 1) if processes == 1 else None,
    }


def _warm_up(base_url: str, *, max_concurrency: int) -> None:
    """One tiny batch first, so imports and connection set-up are not charged to a level."""
    from debate.core.config import load_settings

    with tempfile.TemporaryDirectory(prefix="bench-rescore-warm-") as tmp:
        url, engine = _database(Path(tmp), 2)
        settings = load_settings(
            database_url=url,
            backend="openai",
            openai={"base_url": base_url, "api_key": "bench", "rpm": 0, "tpm": 0, "max_concurrency": max_concurrency},
        )
        _rescore(engine, settings, concurrency=2)
        engine.dispose()


def offline_level(n: int, processes: int, concurrency: int = 8) -> dict[str, Any]:
    """``n`` hypotheses with the offline backend in ``processes`` processes: hypotheses per second."""
    from debate.core.config import load_settings

    with tempfile.TemporaryDirectory(prefix="bench-rescore-offline-") as tmp:
        url, engine = _database(Path(tmp), n)
        settings = load_settings(database_url=url, backend="offline")
        elapsed, summary = _rescore(engine, settings, concurrency=concurrency, processes=processes)
        engine.dispose()
    return {
        "hypotheses": n,
        "processes": processes,
        "done": summary.done,
        "failed": summary.failed,
        "elapsed_s": round(elapsed, 2),
        "per_second": round(summary.done / elapsed, 1),
    }


# ---------------------------------------------------------------- queue workers on PostgreSQL


@contextmanager
def _pg_database(base_url: str) -> Iterator[str]:
    """A fresh, uniquely named database beside ``base_url``; dropped afterwards (sessions evicted)."""
    import psycopg
    from sqlalchemy.engine import make_url

    from debate.store.db import get_engine

    admin = base_url.replace("postgresql+psycopg://", "postgresql://", 1)
    name = f"debate_bench_{secrets.token_hex(4)}"
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    except psycopg.Error as e:
        raise StorageError(f"cannot create a bench database beside {base_url}: {e}".strip()) from None
    url = make_url(base_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        get_engine(url).dispose()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a live process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _poll(what: str, cond: Callable[[], bool], timeout_s: float, procs: Sequence[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if any(p.poll() is not None for p in procs):
            raise RuntimeError(f"a worker exited while waiting for {what}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.2)


_BATCH_JOBS = (
    "FROM procrastinate_jobs j WHERE j.task_name = 'debate_hypothesis' AND j.args->>'batch_id' IS NOT DISTINCT FROM :b"
)


def _finished(engine: Engine, batch_id: str | None) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text(f"SELECT count(*) {_BATCH_JOBS} AND j.status IN ('succeeded', 'failed')"), {"b": batch_id}
            ).scalar_one()
        )


def _worker_env(url: str, base_url: str, per_worker: int) -> dict[str, str]:
    """The environment of a bench ``debate worker``: this database, the fake model, no limits."""
    return {
        **os.environ,
        "DEBATE_DATABASE_URL": url,
        "DEBATE_BACKEND": "openai",
        "DEBATE_OPENAI__BASE_URL": base_url,
        "DEBATE_OPENAI__API_KEY": "bench",
        "DEBATE_OPENAI__TIMEOUT_S": "120",
        "DEBATE_OPENAI__RPM": "0",
        "DEBATE_OPENAI__TPM": "0",
        "DEBATE_QUEUE__SCHEDULE": "",
        # Each worker's limiter is its own: lift its cap (a debate sends up to 3 requests at once).
        "DEBATE_OPENAI__MAX_CONCURRENCY": str(3 * per_worker),
    }


def _job_spans(engine: Engine, batch_id: str) -> tuple[Row[Any], Any]:
    """The batch's job timings (first, last, done, failed, busy_s) and its mean call ms.

    The mean comes back as the database's numeric (None without calls): callers convert it.
    """
    with engine.connect() as conn:
        # Per job: its first start and its end (a retried job counts once, start to finish).
        row = conn.execute(
            text(
                "WITH span AS (SELECT j.id, j.status, "
                "min(e.at) FILTER (WHERE e.type = 'started') AS started, "
                "max(e.at) FILTER (WHERE e.type IN ('succeeded', 'failed')) AS ended "
                f"{_BATCH_JOBS.replace('j WHERE', 'j JOIN procrastinate_events e ON e.job_id = j.id WHERE')} "
                "GROUP BY j.id, j.status) "
                "SELECT min(started) AS first, max(ended) AS last, "
                "count(*) FILTER (WHERE status = 'succeeded') AS done, "
                "count(*) FILTER (WHERE status = 'failed') AS failed, "
                "sum(extract(epoch FROM ended - started)) AS busy_s FROM span"
            ),
            {"b": batch_id},
        ).one()
        call_ms = conn.execute(
            text("SELECT avg(a.latency_ms) FROM attempts a JOIN runs r ON r.id = a.run_id WHERE r.batch_id = :b"),
            {"b": batch_id},
        ).scalar_one()
    return row, call_ms


def queue_level(
    concurrency: int, workers: int, *, latency_s: float, n: int, base_url: str, pg_url: str, timeout_s: float = 900.0
) -> dict[str, Any]:
    """``n`` hypotheses as one batch on the queue, worked by ``workers`` ``debate worker`` processes
    of ``concurrency ÷ workers`` debates each; timed from the first job's start to the last job's end."""
    from debate.core.config import load_settings
    from debate.jobs.batches import open_or_create_batch
    from debate.jobs.queue import build_app, enqueue, enqueue_batch, ensure_queue_schema
    from debate.jobs.selection import normalize_options
    from debate.llm.fake import stop_processes, worker_process

    per_worker = max(1, concurrency // workers)
    warm = [f"h-{i:08x}" for i in range(n, n + 2 * workers)]
    ids = [f"h-{i:08x}" for i in range(n)]
    with _pg_database(pg_url) as url, tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp:
        engine = _populate(url, n + len(warm))
        settings = load_settings(database_url=url, backend="openai", openai={"base_url": base_url, "api_key": "bench"})
        ensure_queue_schema(settings)
        env = _worker_env(url, base_url, per_worker)
        logs = [Path(tmp) / f"worker{i}.log" for i in range(workers)]
        procs = [worker_process(env, f"bench{i}", logs[i], concurrency=per_worker) for i in range(workers)]

        async def put(hypotheses: list[str] | None, batch_id: str | None) -> None:
            qa = build_app(settings)
            async with qa.open_async():
                if batch_id:
                    await enqueue_batch(qa, engine, settings, batch_id)
                else:
                    await enqueue(qa, engine, settings, hypotheses or [], backend="openai")

        try:
            alive = text("SELECT count(*) FROM procrastinate_workers WHERE last_heartbeat > now() - interval '30 s'")
            with engine.connect() as conn:
                _poll("the workers", lambda: conn.execute(alive).scalar_one() == workers, 180, procs)
            # A few debates first, so the workers' first-job set-up (clients, saver) is not charged.
            asyncio.run(put(warm, None))
            _poll("the warm-up debates", lambda: _finished(engine, None) == len(warm), timeout_s, procs)
            opts = normalize_options(
                backend="openai",
                stale_after="0s",
                ids=ids,
            )
            batch, _ = open_or_create_batch(engine, settings, opts, ids=ids)
            assert batch is not None and batch.total == n
            cpu0 = sum(_cpu_s(p.pid) for p in procs)
            asyncio.run(put(None, batch.id))
            _poll("the batch", lambda: _finished(engine, batch.id) == n, timeout_s, procs)
            cpu = sum(_cpu_s(p.pid) for p in procs) - cpu0
        except RuntimeError as e:
            tails = " | ".join(log.read_text(errors="replace")[-1500:] for log in logs)
            raise RuntimeError(f"{e}; worker logs: {tails}") from None
        finally:
            stop_processes(procs, timeout_s=60)
        row, call_ms = _job_spans(engine, batch.id)
        engine.dispose()
    elapsed = (row.last - row.first).total_seconds()
    per_min = row.done / elapsed * 60
    busy = float(row.busy_s)
    ideal = concurrency / (SEQUENTIAL_CALLS * latency_s) * 60
    return {
        "concurrency": concurrency,
        "workers": workers,
        "hypotheses": n,
        "done": row.done,
        "failed": row.failed,
        "elapsed_s": round(elapsed, 2),
        "per_minute": round(per_min, 1),
        "ideal_per_minute": round(ideal, 1),
        "pct_of_ideal": round(100 * per_min / ideal, 1),
        # Where a shortfall comes from: debates slower than 5 calls (per-debate overhead), or
        # fewer in flight than the concurrency (jobs not handed out fast enough).
        "mean_debate_s": round(busy / max(1, row.done + row.failed), 2),
        "mean_call_s": round(float(call_ms or 0) / 1000, 3),  # as the client saw it
        "mean_in_flight": round(busy / elapsed, 1),
        "worker_cpu_ms_per_debate": round(1000 * cpu / max(1, row.done), 1),
    }


def run_workers(
    concurrency: Sequence[int] = (64, 256),
    workers: Sequence[int] = (1, 2),
    *,
    pg_url: str,
    latency_s: float = 1.0,
    n_per_level: int | None = None,
    echo: Echo = print,
) -> list[dict[str, Any]]:
    """Each concurrency level worked by each number of ``debate worker`` processes, on PostgreSQL.

    Each (level, workers) gets a fresh database beside ``pg_url`` holding ``n_per_level``
    (default 3 × concurrency) hypotheses; the fake model server runs in its own process.
    """
    echo(
        f"rescore on the PostgreSQL queue with a {latency_s:g} s never-conceding fake model (server in a process); "
        f"ideal = concurrency / ({SEQUENTIAL_CALLS} x {latency_s:g} s)"
    )
    echo(
        f"{'concurrency':>11} {'workers':>7} {'hypotheses':>10} {'elapsed s':>9} {'per min':>8} {'ideal':>8} "
        f"{'% ideal':>8} {'debate s':>8} {'call s':>6} {'in flight':>9} {'worker cpu ms/debate':>20}"
    )
    rows: list[dict[str, Any]] = []
    with _server(latency_s, "process") as base_url:
        for c in concurrency:
            for w in workers:
                row = queue_level(c, w, latency_s=latency_s, n=n_per_level or 3 * c, base_url=base_url, pg_url=pg_url)
                rows.append(row)
                echo(
                    f"{c:>11} {w:>7} {row['hypotheses']:>10} {row['elapsed_s']:>9.1f} {row['per_minute']:>8.1f} "
                    f"{row['ideal_per_minute']:>8.1f} {row['pct_of_ideal']:>7.1f}% "
                    f"{row['mean_debate_s']:>8.2f} {row['mean_call_s']:>6.2f} "
                    f"{row['mean_in_flight']:>9.1f} {row['worker_cpu_ms_per_debate']:>20.1f}"
                    + (f"  ({row['failed']} failed)" if row["failed"] else "")
                )
    return rows


def run(
    concurrency: Sequence[int] = (1, 8, 32, 64),
    latency_s: float = 1.0,
    n_per_level: int | None = None,
    offline_n: int = 10_000,
    processes: Sequence[int] = (1, 2),
    *,
    model_processes: Sequence[int] = (1,),
    server: Literal["process", "thread"] = "process",
    echo: Echo = print,
) -> dict[str, Any]:
    """Measure and print; returns ``{"model": [...per level], "offline": [...per process count], ...}``.

    ``n_per_level`` defaults to 3 × concurrency. Each model level runs once per entry of
    ``model_processes`` (the concurrency split evenly over the processes; levels below 8 debates
    per process extra are skipped). ``offline_n=0`` or ``processes=()`` skips offline.
    """
    result: dict[str, Any] = {
        "latency_s": latency_s,
        "sequential_calls": SEQUENTIAL_CALLS,
        "server": server,
        "cpus": os.cpu_count(),
        "model": [],
        "offline": [],
    }
    if concurrency:
        echo(
            f"rescore with a {latency_s:g} s never-conceding fake model (server in a {server}); "
            f"ideal = concurrency / ({SEQUENTIAL_CALLS} x {latency_s:g} s)"
        )
        echo(
            f"{'concurrency':>11} {'processes':>9} {'hypotheses':>10} {'elapsed s':>9} {'per min':>8} "
            f"{'ideal':>8} {'% ideal':>8} {'cpu ms/debate':>13}"
        )
        with _server(latency_s, server) as base_url:
            # The endpoint's limiter is per process and made on first use: lift its cap here.
            _warm_up(base_url, max_concurrency=3 * max(concurrency))
            for c in concurrency:
                for p in model_processes:
                    if p > 1 and c < 8 * p:
                        continue
                    row = model_level(
                        c,
                        latency_s=latency_s,
                        n=n_per_level or 3 * c,
                        base_url=base_url,
                        max_concurrency=3 * max(concurrency),
                        processes=p,
                    )
                    result["model"].append(row)
                    cpu = row["cpu_ms_per_debate"]
                    echo(
                        f"{c:>11} {p:>9} {row['hypotheses']:>10} {row['elapsed_s']:>9.1f} {row['per_minute']:>8.1f} "
                        f"{row['ideal_per_minute']:>8.1f} {row['pct_of_ideal']:>7.1f}% "
                        f"{'' if cpu is None else f'{cpu:.1f}':>13}"
                    )
    if offline_n and processes:
        echo(f"offline backend, {offline_n:,} hypotheses over the bundled sample KB")
        for p in processes:
            row = offline_level(offline_n, p)
            result["offline"].append(row)
            echo(
                f"  {p} process{'es' if p > 1 else ''}: {row['per_second']:.1f} hypotheses/s "
                f"({row['elapsed_s']:.1f} s, {row['failed']} failed)"
            )
    return result


if __name__ == "__main__":  # python -m debate.bench.rescore [offline_n]
    run(offline_n=int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
