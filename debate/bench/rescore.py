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
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import insert, select
from sqlalchemy.engine import Engine

from debate.store import tables as t
from debate.store.db import ensure_schema, session_scope
from debate.store.tables import utcnow

DATA = Path(__file__).resolve().parent.parent / "data"
SEQUENTIAL_CALLS = 5  # 2 rounds x (proposer, critic) + the judge panel, in parallel
Echo = Callable[..., object]


def _database(folder: Path, n: int) -> tuple[str, Engine]:
    """A database with the sample KB and ``n`` hypotheses cycled from the sample ones."""
    from debate.hypotheses import import_file
    from debate.kb.ingest import ingest_paths

    url = f"sqlite:///{folder}/bench.db"
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
        rows.append(dict(id=hid, title=f"{b.title} ({i})", title_key=f"{b.title_key} {i}", statement=b.statement,
                         diseases=b.diseases, targets=b.targets, target_label=None, mechanisms=b.mechanisms,
                         source="bench", prior_score=None, prior_source=None, created_at=now, updated_at=now))
        targets += [dict(hypothesis_id=hid, gene_key=g.casefold(), gene=g, ordinal=j) for j, g in enumerate(b.targets)]
    with session_scope(engine) as s:
        for i in range(0, n, 5000):
            s.execute(insert(t.Hypothesis), rows[i : i + 5000])
        for i in range(0, len(targets), 5000):
            s.execute(insert(t.HypothesisTarget), targets[i : i + 5000])
    return url, engine


@contextmanager
def _server(latency_s: float, where: Literal["process", "thread"]) -> Iterator[str]:
    if where == "thread":
        from debate.testing import FakeOpenAIServer

        with FakeOpenAIServer(latency_s=latency_s) as srv:
            yield srv.base_url
        return
    proc = subprocess.Popen([sys.executable, "-m", "debate.testing", "--port", "0", "--latency", str(latency_s)],
                            stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        if not line.startswith("READY "):
            raise RuntimeError(f"fake server did not start: {line!r}")
        yield line.split()[1]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _rescore(engine: Engine, settings: Any, *, concurrency: int, processes: int = 1) -> tuple[float, Any]:
    from debate.batches import open_or_create_batch
    from debate.batchrun import BatchRunner
    from debate.rescore import normalize_options

    opts = normalize_options(backend=settings.backend, stale_after="0s", changed=False, prompt_changed=False,
                             ids=None, limit=None, default_stale_after="30d")
    batch, _ = open_or_create_batch(engine, settings, opts, concurrency=concurrency)
    assert batch is not None
    runner = BatchRunner(engine, settings, batch.id, concurrency=concurrency, processes=processes)
    started = time.perf_counter()
    summary = asyncio.run(runner.run())
    return time.perf_counter() - started, summary


def model_level(concurrency: int, *, latency_s: float, n: int, base_url: str, max_concurrency: int,
                processes: int = 1) -> dict[str, Any]:
    """One concurrency level (split over ``processes``): hypotheses per minute beside the ideal."""
    from debate.config import load_settings

    with tempfile.TemporaryDirectory(prefix="bench-rescore-") as tmp:
        url, engine = _database(Path(tmp), n)
        settings = load_settings(
            database_url=url, backend="openai",
            openai={"base_url": base_url, "api_key": "bench", "timeout_s": 120.0, "max_concurrency": max_concurrency,
                    "rpm": 0, "tpm": 0},
        )
        cpu0 = time.process_time()
        elapsed, summary = _rescore(engine, settings, concurrency=concurrency // processes, processes=processes)
        cpu = time.process_time() - cpu0
        engine.dispose()
    per_min = summary.done / elapsed * 60
    ideal = concurrency / (SEQUENTIAL_CALLS * latency_s) * 60
    return {"concurrency": concurrency, "processes": processes, "hypotheses": n, "done": summary.done,
            "failed": summary.failed, "elapsed_s": round(elapsed, 2), "per_minute": round(per_min, 1),
            "ideal_per_minute": round(ideal, 1), "pct_of_ideal": round(100 * per_min / ideal, 1),
            # This process only: with helpers, their CPU is not in it.
            "cpu_ms_per_debate": round(1000 * cpu / max(1, summary.done), 1) if processes == 1 else None}


def _warm_up(base_url: str, *, max_concurrency: int) -> None:
    """One tiny batch first, so imports and connection set-up are not charged to a level."""
    from debate.config import load_settings

    with tempfile.TemporaryDirectory(prefix="bench-rescore-warm-") as tmp:
        url, engine = _database(Path(tmp), 2)
        settings = load_settings(database_url=url, backend="openai",
                                 openai={"base_url": base_url, "api_key": "bench", "rpm": 0, "tpm": 0,
                                         "max_concurrency": max_concurrency})
        _rescore(engine, settings, concurrency=2)
        engine.dispose()


def offline_level(n: int, processes: int, concurrency: int = 8) -> dict[str, Any]:
    """``n`` hypotheses with the offline backend in ``processes`` processes: hypotheses per second."""
    from debate.config import load_settings

    with tempfile.TemporaryDirectory(prefix="bench-rescore-offline-") as tmp:
        url, engine = _database(Path(tmp), n)
        settings = load_settings(database_url=url, backend="offline")
        elapsed, summary = _rescore(engine, settings, concurrency=concurrency, processes=processes)
        engine.dispose()
    return {"hypotheses": n, "processes": processes, "done": summary.done, "failed": summary.failed,
            "elapsed_s": round(elapsed, 2), "per_second": round(summary.done / elapsed, 1)}


def run(
    concurrency: Sequence[int] = (1, 8, 32, 64), latency_s: float = 1.0, n_per_level: int | None = None,
    offline_n: int = 10_000, processes: Sequence[int] = (1, 2), *, model_processes: Sequence[int] = (1,),
    server: Literal["process", "thread"] = "process", echo: Echo = print,
) -> dict[str, Any]:
    """Measure and print; returns ``{"model": [...per level], "offline": [...per process count], ...}``.

    ``n_per_level`` defaults to 3 × concurrency. Each model level runs once per entry of
    ``model_processes`` (the concurrency split evenly over the processes; levels below 8 debates
    per process extra are skipped). ``offline_n=0`` or ``processes=()`` skips offline.
    """
    result: dict[str, Any] = {"latency_s": latency_s, "sequential_calls": SEQUENTIAL_CALLS, "server": server,
                              "cpus": os.cpu_count(), "model": [], "offline": []}
    if concurrency:
        echo(f"rescore with a {latency_s:g} s never-conceding fake model (server in a {server}); "
             f"ideal = concurrency / ({SEQUENTIAL_CALLS} x {latency_s:g} s)")
        echo(f"{'concurrency':>11} {'processes':>9} {'hypotheses':>10} {'elapsed s':>9} {'per min':>8} "
             f"{'ideal':>8} {'% ideal':>8} {'cpu ms/debate':>13}")
        with _server(latency_s, server) as base_url:
            # The endpoint's limiter is per process and made on first use: lift its cap here.
            _warm_up(base_url, max_concurrency=3 * max(concurrency))
            for c in concurrency:
                for p in model_processes:
                    if p > 1 and c < 8 * p:
                        continue
                    row = model_level(c, latency_s=latency_s, n=n_per_level or 3 * c, base_url=base_url,
                                      max_concurrency=3 * max(concurrency), processes=p)
                    result["model"].append(row)
                    cpu = row["cpu_ms_per_debate"]
                    echo(f"{c:>11} {p:>9} {row['hypotheses']:>10} {row['elapsed_s']:>9.1f} {row['per_minute']:>8.1f} "
                         f"{row['ideal_per_minute']:>8.1f} {row['pct_of_ideal']:>7.1f}% "
                         f"{'' if cpu is None else f'{cpu:.1f}':>13}")
    if offline_n and processes:
        echo(f"offline backend, {offline_n:,} hypotheses over the bundled sample KB")
        for p in processes:
            row = offline_level(offline_n, p)
            result["offline"].append(row)
            echo(f"  {p} process{'es' if p > 1 else ''}: {row['per_second']:.1f} hypotheses/s "
                 f"({row['elapsed_s']:.1f} s, {row['failed']} failed)")
    return result


if __name__ == "__main__":  # python -m debate.bench.rescore [offline_n]
    run(offline_n=int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
