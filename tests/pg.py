"""PostgreSQL test databases: one fresh, uniquely named database per test module.

``DEBATE_TEST_POSTGRES_URL`` names a reachable database (e.g.
``postgresql+psycopg://postgres@127.0.0.1:5432/test``) on a server where the role may create
databases. Unset: the tests skip with that reason. Set but unreachable: they fail, so a broken
server is never mistaken for "nothing to test".
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import make_url

ENV = "DEBATE_TEST_POSTGRES_URL"


def _libpq(url: str) -> str:
    """A SQLAlchemy URL as psycopg's conninfo."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def _admin_connect(base: str):  # type: ignore[no-untyped-def]
    import psycopg

    return psycopg.connect(_libpq(base), autocommit=True, connect_timeout=5)


@pytest.fixture(scope="module")
def pg_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """URL of a fresh, empty database for this test module (dropped afterwards)."""
    base = os.environ.get(ENV)
    if not base:
        pytest.skip(f"{ENV} is not set (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)")
    try:
        import psycopg
    except ImportError:
        pytest.fail("DEBATE_TEST_POSTGRES_URL is set but psycopg is missing: pip install -e '.[test,postgres]'")
    module = request.module.__name__.rsplit(".", 1)[-1].replace("test_", "")[:20]
    name = f"debate_t_{module}_{secrets.token_hex(4)}".lower()
    try:
        with _admin_connect(base) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as e:
        pytest.fail(f"{ENV}={base} is not usable: {e}")
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        from debate.store.db import get_engine

        # Close this process's pooled connections first, then evict any other (worker) sessions.
        get_engine(url).dispose()
        with _admin_connect(base) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def fresh_database(base_url: str, tag: str) -> str:
    """Create one more empty database beside ``base_url``; the caller drops it with :func:`drop_database`."""
    name = f"debate_t_{tag}_{secrets.token_hex(4)}".lower()
    with _admin_connect(base_url) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return make_url(base_url).set(database=name).render_as_string(hide_password=False)


def drop_database(base_url: str, url: str) -> None:
    from debate.store.db import get_engine

    get_engine(url).dispose()
    name = make_url(url).database
    with _admin_connect(base_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_db(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An empty database for the module's tests: a SQLite file, then a fresh PostgreSQL database."""
    module = request.module.__name__.rsplit(".", 1)[-1].replace("test_", "")[:20]
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp(module)}/debate.db"
        return
    base = os.environ.get(ENV)
    if not base:
        pytest.skip(f"{ENV} is not set")
    url = fresh_database(base, module)
    try:
        yield url
    finally:
        drop_database(base, url)
