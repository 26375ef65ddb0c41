"""The engine on PostgreSQL: migrations, KB full-text search, a debate with the Postgres
checkpointer, and its transcript."""

from __future__ import annotations

import json

import pytest
from conftest import SAMPLE_HYPOTHESES, SAMPLE_KB, run_cli
from pg import pg_url  # noqa: F401  (fixture)
from sqlalchemy import func, select, text

from debate.store import tables as t
from debate.store.db import current_revision, ensure_schema, head_revision, session_scope

pytestmark = pytest.mark.postgres
SOD1 = "h-9878fd9b"


@pytest.fixture(scope="module")
def pg_engine(pg_url):  # type: ignore[no-untyped-def]  # noqa: F811
    from debate.kb.hypotheses import import_file
    from debate.kb.ingest import ingest_paths

    engine = ensure_schema(pg_url)
    import_file(engine, SAMPLE_HYPOTHESES)
    ingest_paths(engine, [SAMPLE_KB])
    return engine


@pytest.fixture
def pg_env(pg_url, cli_env):  # type: ignore[no-untyped-def]  # noqa: F811
    return {**cli_env, "DEBATE_DATABASE_URL": pg_url}


def test_migrations_reach_head_on_postgres(pg_engine):  # type: ignore[no-untyped-def]
    assert pg_engine.dialect.name == "postgresql"
    assert current_revision(pg_engine) == head_revision()
    with pg_engine.connect() as conn:
        cols = {
            r[0]
            for r in conn.execute(
                text("SELECT column_name FROM information_schema.columns WHERE table_name = 'chunks'")
            )
        }
    assert "tsv" in cols


def test_sample_kb_search_all_terms_then_any_term(pg_engine):  # type: ignore[no-untyped-def]
    from debate.kb.search import search

    with session_scope(pg_engine) as s:
        assert s.execute(select(func.count()).select_from(t.Page)).scalar_one() > 0
    hits = search(pg_engine, "SOD1 antisense", limit=5, min_hits=1)
    assert hits and all(h.mode == "all" for h in hits)
    assert all("sod1" in h.text.lower() and "antisense" in h.text.lower() for h in hits)
    # A nonsense term defeats the all-terms pass; the any-term pass still finds SOD1.
    fallback = search(pg_engine, "SOD1 zzqqxx", limit=5, min_hits=3)
    assert fallback and {h.mode for h in fallback} == {"any"}
    assert search(pg_engine, "zzqqxx", limit=5) == []


def test_offline_debate_end_to_end_with_postgres_checkpoints(pg_engine, pg_env):  # type: ignore[no-untyped-def]
    proc = run_cli("run", SOD1, "-q", "--json", env=pg_env)
    outcome = json.loads(proc.stdout)[0]
    assert outcome["status"] == "done" and outcome["score"] is not None
    with pg_engine.connect() as conn:
        # The LangGraph Postgres saver's tables live in the same database.
        assert conn.execute(text("SELECT count(*) FROM checkpoints")).scalar_one() >= 1
        turns = conn.execute(
            text("SELECT count(*) FROM turns WHERE run_id = :r"), {"r": outcome["run_id"]}
        ).scalar_one()
    assert turns >= 4
    shown = run_cli("transcript", outcome["run_id"], env=pg_env).stdout
    assert outcome["run_id"] in shown and "judge" in shown.lower()
    scores = json.loads(run_cli("scores", "--json", env=pg_env).stdout)
    assert any(row.get("hypothesis_id", row.get("id")) == SOD1 for row in scores)
