"""`debate bench api`: the read API under many concurrent clients, on SQLite and PostgreSQL.

A database is seeded with the sample KB and hypotheses and a few finished offline debates; the
server (``debate serve``'s app under uvicorn) runs in its own process on a free loopback port, as
it would in production, so its request handling does not share a GIL with the clients. Then
``clients`` concurrent httpx clients make ``requests`` requests in all over a mix of read
endpoints (lists, details, transcripts, related lists, scores.json). Reported: latency p50, p95
and max, requests per second, and the count of each status (errors included: a refused
connection or a timeout counts under its exception's name).

``server_code`` runs the server from another copy of the package (its folder goes first on
``PYTHONPATH``), for a before/after comparison over the very same seeded database.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlmodel import col, select

from debate.core.config import load_settings
from debate.core.errors import StorageError

DATA = Path(__file__).resolve().parent.parent / "data"
DEBATED = 3  # finished offline runs to seed: transcripts and histories to read
_SERVE = """
import sys, uvicorn
from debate.core.config import load_settings
from debate.server.api import create_app
app = create_app(load_settings(database_url=sys.argv[1]))
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", backlog=4096, timeout_keep_alive=60)
"""


# ---------------------------------------------------------------- the database


def seed(url: str) -> list[str]:
    """Fill ``url`` with the sample KB, hypotheses and a few finished runs; the paths to read."""
    from debate.engine.runs import Executor, create_runs
    from debate.kb.hypotheses import import_file
    from debate.kb.ingest import ingest_paths
    from debate.store import tables as t
    from debate.store.db import ensure_schema, session_scope

    settings = load_settings(database_url=url)
    engine = ensure_schema(url)
    ingest_paths(engine, [DATA / "kb"])
    hyp_ids = sorted(import_file(engine, DATA / "hypotheses.yaml"))
    run_ids = create_runs(engine, settings, hyp_ids[:DEBATED], backend="offline")

    async def debate() -> None:
        async with Executor(engine, settings, backend="offline") as ex:
            for rid in run_ids:
                await ex.execute(rid)

    asyncio.run(debate())
    with session_scope(engine) as s:
        slugs = list(s.execute(select(col(t.Page.slug)).order_by(col(t.Page.slug)).limit(5)).scalars())
    engine.dispose()
    return read_paths(hyp_ids[:5], run_ids, slugs)


def read_paths(hyp_ids: Sequence[str], run_ids: Sequence[str], slugs: Sequence[str]) -> list[str]:
    """A mix of the API's read endpoints over these ids (lists weigh most, as in use)."""
    paths = ["/api/hypotheses", "/api/hypotheses?limit=10", "/api/runs", "/api/scores.json"] * 2
    paths += [f"/api/hypotheses/{h}" for h in hyp_ids]
    paths += [f"/api/runs/{r}" for r in run_ids] + [f"/api/runs/{r}/transcript" for r in run_ids]
    paths += [f"/api/pages/{p}/related" for p in slugs]
    return paths


@contextmanager
def _database(pg_url: str | None, root: Path) -> Iterator[str]:
    if pg_url is None:
        yield f"sqlite:///{root}/bench.db"
        return
    from debate.bench.rescore import _pg_database  # a fresh database beside pg_url, dropped after

    with _pg_database(pg_url) as url:
        yield url


# ---------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(base: str, timeout_s: float = 60.0, alive: Callable[[], bool] = lambda: True) -> None:
    """Poll the schema until the server answers (StorageError after ``timeout_s`` or if it died)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and alive():
        try:
            if httpx.get(f"{base}/api/openapi.json", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise StorageError(f"the server at {base} did not start")


@contextmanager
def server_process(url: str, log: Path, server_code: Path | None = None) -> Iterator[str]:
    """The app over ``url`` in a uvicorn subprocess on a free port (its output to ``log``); its base URL."""
    port = free_port()
    env = dict(os.environ)
    if server_code is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(server_code), env.get("PYTHONPATH")) if p)
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-c", _SERVE, url, str(port)], env=env, stdout=out, stderr=out)
    base = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_ready(base, alive=lambda: proc.poll() is None)
        except StorageError as e:
            tail = log.read_text(errors="replace").strip().splitlines()[-5:]
            raise StorageError("\n".join([str(e), *tail])) from None
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ---------------------------------------------------------------- the load


@dataclass
class LoadResult:
    """Latencies (seconds) and outcomes of one load."""

    latencies: list[float] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    wall_s: float = 0.0
    retry_after: set[str] = field(default_factory=set)
    bodies: dict[str, set[str]] = field(default_factory=dict)  # path -> digests of its 200 bodies

    def server_errors(self) -> int:
        return sum(n for k, n in self.outcomes.items() if k.startswith("5"))

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies)
        q = statistics.quantiles(lat, n=100, method="inclusive") if len(lat) > 1 else lat * 99
        return {
            "requests": len(lat),
            "p50_ms": round(q[49] * 1000, 1),
            "p95_ms": round(q[94] * 1000, 1),
            "max_ms": round(lat[-1] * 1000, 1) if lat else 0.0,
            "requests_per_s": round(len(lat) / self.wall_s, 1) if self.wall_s else 0.0,
            "outcomes": dict(sorted(self.outcomes.items())),
        }


async def load(base: str, paths: Sequence[str], *, clients: int, requests: int, timeout_s: float = 120.0) -> LoadResult:
    """``requests`` GETs of ``paths`` (in turn) by ``clients`` concurrent clients."""
    result = LoadResult()
    next_i = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=timeout_s) as http:

        async def client() -> None:
            nonlocal next_i
            while next_i < requests:
                path, next_i = paths[next_i % len(paths)], next_i + 1
                t0 = time.perf_counter()
                try:
                    r = await http.get(path)
                    outcome = str(r.status_code)
                    if r.status_code == 200:
                        result.bodies.setdefault(path, set()).add(hashlib.sha256(r.content).hexdigest())
                    if "retry-after" in r.headers:
                        result.retry_after.add(r.headers["retry-after"])
                except httpx.HTTPError as e:
                    outcome = type(e).__name__
                result.latencies.append(time.perf_counter() - t0)
                result.outcomes[outcome] += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        result.wall_s = time.perf_counter() - t0
    return result


def _one(label: str, pg_url: str | None, clients: int, requests: int, server_code: Path | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="debate-bench-api-") as tmp, _database(pg_url, Path(tmp)) as url:
        paths = seed(url)
        with server_process(url, Path(tmp) / "server.log", server_code) as base:
            asyncio.run(load(base, paths, clients=clients // 4 or 1, requests=min(requests, 200)))  # warm up
            return {
                "database": label,
                "clients": clients,
                **asyncio.run(load(base, paths, clients=clients, requests=requests)).summary(),
            }


def run(
    *,
    clients: int = 200,
    requests: int = 4000,
    pg_url: str | None = None,
    server_code: Path | None = None,
    echo: Callable[..., None] = print,
) -> dict[str, Any]:
    """The load on SQLite, and on PostgreSQL when ``pg_url`` names a server."""
    out: dict[str, Any] = {"clients": clients, "requests": requests}
    for label, url in (("sqlite", None), ("postgresql", pg_url)):
        if label == "postgresql" and url is None:
            continue
        r = _one(label, url, clients, requests, server_code)
        out[label] = r
        echo(
            f"{label:10} {r['requests']} requests, {clients} clients: p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms, "
            f"max {r['max_ms']} ms, {r['requests_per_s']} req/s; outcomes {r['outcomes']}"
        )
    return out
