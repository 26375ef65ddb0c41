"""The API under 200 concurrent clients over a real socket: no 5xx, identical reads, and a 503
with Retry-After (not a stall) once too many requests wait for the database."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
from pg import pg_url  # noqa: F401  (fixture)

from debate.bench.api import LoadResult, free_port, load, seed, wait_ready
from debate.core.config import load_settings
from debate.server.api import create_app

CLIENTS = 200


@contextmanager
def serving(url: str, **server: int) -> Iterator[str]:
    """The app over ``url`` under uvicorn in a thread, with ``[server]`` settings; its base URL."""
    app = create_app(load_settings(database_url=url, server=server or None))
    port = free_port()
    # Keep-alive past the longest wait: a connection the server closes while idle in the
    # client's pool would be a client-side ReadError, not what this measures.
    srv = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", backlog=4096, timeout_keep_alive=60)
    )
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    try:
        wait_ready(f"http://127.0.0.1:{port}", alive=thread.is_alive)
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=30)
        app.state.engine.dispose()


def _hammer(base: str, paths: list[str], clients: int, requests: int) -> LoadResult:
    return asyncio.run(load(base, paths, clients=clients, requests=requests, timeout_s=120))


def _assert_held(result: LoadResult) -> None:
    assert result.server_errors() == 0, result.outcomes
    assert set(result.outcomes) == {"200"}, result.outcomes
    # Nothing writes meanwhile: every reader of a path must have seen the same body.
    assert all(len(d) == 1 for d in result.bodies.values()), {p: len(d) for p, d in result.bodies.items()}


@pytest.fixture(scope="module")
def sqlite_seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[str]]:
    url = f"sqlite:///{Path(tmp_path_factory.mktemp('load')) / 'load.db'}"
    return url, seed(url)


@pytest.mark.slow
def test_200_clients_on_sqlite_get_no_5xx(sqlite_seeded: tuple[str, list[str]]) -> None:
    url, paths = sqlite_seeded
    with serving(url) as base:
        _assert_held(_hammer(base, paths, CLIENTS, 2 * CLIENTS))


@pytest.mark.slow
@pytest.mark.postgres
def test_200_clients_on_postgres_get_no_5xx(pg_url: str) -> None:  # noqa: F811
    paths = seed(pg_url)
    with serving(pg_url) as base:
        _assert_held(_hammer(base, paths, CLIENTS, 2 * CLIENTS))


@pytest.mark.slow
def test_overflow_gets_503_with_retry_after(sqlite_seeded: tuple[str, list[str]]) -> None:
    url, paths = sqlite_seeded
    with serving(url, db_connections=1, max_waiting=2, retry_after_s=7) as base:
        result = _hammer(base, paths, 60, 60)
    assert result.outcomes["503"] > 0, result.outcomes
    assert result.retry_after == {"7"}
    assert set(result.outcomes) <= {"200", "503"}, result.outcomes
    assert result.outcomes["200"] >= 3  # the one admitted and the two waiting at least
