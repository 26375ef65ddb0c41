"""`debate bench ingest`: ingest speed over synthetic seed-sized pages, and search latency.

Targets on a 2-core machine: 10,000 pages in < 120 s; search p95 < 50 ms over 200 queries of
2-5 terms drawn from the pages' own vocabulary, through the same all-terms → any-term
fallback users get.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from debate.bench.pages import make_pages, vocabulary_queries
from debate.kb.ingest import ingest_paths
from debate.kb.search import search
from debate.store.db import ensure_schema


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def run(pages: int = 10_000, queries: int = 200, workdir: Path | None = None, echo=print) -> dict:  # type: ignore[no-untyped-def]
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        root = Path(tmp)
        kb = root / "kb"
        kb.mkdir()
        t0 = time.perf_counter()
        for name, text in make_pages(pages):
            (kb / name).write_text(text, encoding="utf-8")
        gen_s = time.perf_counter() - t0
        engine = ensure_schema(f"sqlite:///{root}/bench.db")
        t0, cpu0 = time.perf_counter(), time.process_time()
        report = ingest_paths(engine, [kb], batch_size=500)
        ingest_s, ingest_cpu_s = time.perf_counter() - t0, time.process_time() - cpu0
        assert len(report.added) == pages
        latencies: list[float] = []
        hits: list[int] = []
        for q in vocabulary_queries(queries):
            t1 = time.perf_counter()
            found = search(engine, q, limit=10, min_hits=3)
            latencies.append((time.perf_counter() - t1) * 1000)
            hits.append(len(found))
        engine.dispose()
    result = {
        "pages": pages,
        "generate_s": round(gen_s, 2),
        "ingest_s": round(ingest_s, 2),
        "ingest_pages_per_s": round(pages / ingest_s, 1),
        # CPU seconds of this process: on a shared machine, wall time minus this is waiting.
        "ingest_cpu_s": round(ingest_cpu_s, 2),
        "queries": queries,
        "search_p50_ms": round(percentile(latencies, 50), 2),
        "search_p95_ms": round(percentile(latencies, 95), 2),
        "search_mean_hits": round(statistics.mean(hits), 2),
    }
    echo(
        f"ingest: {pages} pages in {result['ingest_s']} s = {result['ingest_pages_per_s']} pages/s, "
        f"{result['ingest_cpu_s']} s CPU (target: 10k pages < 120 s)"
    )
    echo(
        f"search: p50 {result['search_p50_ms']} ms, p95 {result['search_p95_ms']} ms over {queries} queries "
        f"(target p95 < 50 ms); mean hits {result['search_mean_hits']}"
    )
    return result
