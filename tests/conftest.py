"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from pages import SEED_MISSING, SPECS, PageSpec

if TYPE_CHECKING:
    from debate.kb.parse import ParsedPage


@pytest.fixture(params=list(SPECS))
def spec(request: pytest.FixtureRequest) -> PageSpec:
    """What an exported page must yield; a test taking it runs once per page in ``pages.py``.

    The seed page lives beside the repository (``../shared/seeds``); where it is absent its cases skip.
    """
    page = SPECS[request.param]
    if request.param == "seed" and not page.path.is_file():
        pytest.skip(SEED_MISSING)
    return page


@pytest.fixture
def page_path(spec: PageSpec) -> Path:
    """The exported page ``spec`` describes."""
    return spec.path


@pytest.fixture
def page_text(spec: PageSpec) -> str:
    """The page decoded as ingest decodes it."""
    from debate.kb.parse import decode_page

    return decode_page(spec.path.read_bytes(), source_name=spec.name)


@pytest.fixture
def parsed_page(spec: PageSpec, page_text: str) -> ParsedPage:
    """The page parsed."""
    from debate.kb.parse import parse_page

    return parse_page(page_text, source_name=spec.name)


REPO = Path(__file__).resolve().parents[1]
SAMPLE_KB = REPO / "debate" / "data" / "kb"
SAMPLE_HYPOTHESES = REPO / "debate" / "data" / "hypotheses.yaml"


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """A fresh SQLite database for one test."""
    return f"sqlite:///{tmp_path}/debate.db"


@pytest.fixture
def engine(db_url: str):  # type: ignore[no-untyped-def]
    from debate.store.db import ensure_schema

    return ensure_schema(db_url)


@pytest.fixture
def sample_engine(engine):  # type: ignore[no-untyped-def]
    """A database holding the bundled sample KB and sample hypotheses."""
    from debate.kb.hypotheses import import_file
    from debate.kb.ingest import ingest_paths

    import_file(engine, SAMPLE_HYPOTHESES)
    ingest_paths(engine, [SAMPLE_KB])
    return engine


@pytest.fixture
def cli_env(db_url: str, tmp_path: Path) -> dict[str, str]:
    """Environment for running the `debate` CLI in a subprocess against the test database."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEBATE_", "OPENAI_"))}
    env["DEBATE_DATABASE_URL"] = db_url
    env["COLUMNS"] = "200"
    return env


def run_cli(*args: str, env: dict[str, str], cwd: Path | None = None, check: bool = True, timeout: float = 300):  # type: ignore[no-untyped-def]
    """Run `debate ARGS...` as a user would; returns the CompletedProcess."""
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "debate", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"debate {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
    return proc


SOD1 = "h-9878fd9b"


def seed_debated_sample(url: str, settings) -> str:  # type: ignore[no-untyped-def]
    """Fill ``url`` with the sample KB and hypotheses and one finished offline SOD1 run; its id."""
    import asyncio

    from debate.engine.runs import Executor, create_runs
    from debate.kb.hypotheses import import_file
    from debate.kb.ingest import ingest_paths
    from debate.store.db import ensure_schema

    engine = ensure_schema(url)
    import_file(engine, SAMPLE_HYPOTHESES)
    ingest_paths(engine, [SAMPLE_KB])
    [run_id] = create_runs(engine, settings, [SOD1], backend="offline")

    async def go() -> None:
        async with Executor(engine, settings, backend="offline") as ex:
            await ex.execute(run_id)

    asyncio.run(go())
    return run_id


def max_in_window(times: list[float], window: float) -> int:
    """The most timestamps in any half-open window [t, t + window)."""
    times = sorted(times)
    best, j = 0, 0
    for i, start in enumerate(times):
        while j < len(times) and times[j] < start + window:
            j += 1
        best = max(best, j - i)
    return best


def private_copy(src: Path, dst: Path) -> str:
    """A copy of the SQLite database ``src`` at ``dst`` (its URL), for a test to change freely."""
    import sqlite3

    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)
    return f"sqlite:///{dst}"


@pytest.fixture
def db(seeded: tuple[Path, str], tmp_path: Path) -> tuple[str, str]:
    """A private copy of the module's ``seeded`` database: (url, id of its finished run)."""
    src, run_id = seeded
    return private_copy(src, tmp_path / "debate.db"), run_id


# Tests that script or count an endpoint's requests name the structured-output mode, so the
# "auto" probe (tests/test_modes.py) does not add requests of its own.
ONE_MODE = {"DEBATE_OPENAI__STRUCTURED_OUTPUT": "json_schema"}
