"""`debate db copy`: a SQLite database with the sample KB and finished runs moves to PostgreSQL
with every count and every score unchanged."""

from __future__ import annotations

import asyncio
import json

import pytest
from conftest import run_cli
from pg import pg_url  # noqa: F401  (fixture)
from sqlalchemy import text

from debate.core.config import load_settings
from debate.core.errors import UserInputError
from debate.engine.runs import Executor, create_runs, review_run
from debate.kb.search import search
from debate.store.db import ensure_schema
from debate.store.dbcopy import copy_database

pytestmark = pytest.mark.postgres


def _debate(url: str, hyp_ids: list[str]) -> list[str]:
    settings = load_settings(database_url=url)
    engine = ensure_schema(url)
    run_ids = create_runs(engine, settings, hyp_ids, backend="offline")

    async def go() -> None:
        async with Executor(engine, settings, backend="offline") as ex:
            outcomes = await ex.execute_many(run_ids)
        assert all(o.status == "done" for o in outcomes)

    asyncio.run(go())
    return run_ids


def test_copy_sqlite_to_postgres_keeps_counts_and_scores(sample_engine, db_url, cli_env, pg_url):  # noqa: F811
    first, _ = _debate(db_url, ["h-9878fd9b", "h-1c05c34d"])
    review_run(sample_engine, first, "flag", by="tester", note="check the dose")
    proc = run_cli("db", "copy", "--from", db_url, "--to", pg_url, "--json", env=cli_env)
    counts = {c["table"]: c for c in json.loads(proc.stdout)}
    for name in ("pages", "chunks", "hypotheses", "runs", "turns", "evidence", "attempts", "reviews"):
        assert counts[name]["source"] == counts[name]["target"]
    assert counts["pages"]["target"] > 0 and counts["runs"]["target"] == 2 and counts["turns"]["target"] > 0
    assert counts["reviews"]["target"] == 1
    pg_env = {**cli_env, "DEBATE_DATABASE_URL": pg_url}
    assert json.loads(run_cli("scores", "--json", env=pg_env).stdout) == json.loads(
        run_cli("scores", "--json", env=cli_env).stdout
    )
    # The copy is usable: new rows get ids past the copied ones (sequences moved), search works.
    _debate(pg_url, ["h-9878fd9b"])
    pg = ensure_schema(pg_url)
    with pg.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM turns")).scalar_one() > counts["turns"]["target"]
    assert search(pg, "SOD1", limit=3)
    # A second copy into the now non-empty target is refused.
    with pytest.raises(UserInputError, match="not empty"):
        copy_database(db_url, pg_url)
