"""Run statuses as shown (``interrupted`` derived from leases) and the backends the API names."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import seed_debated_sample
from fastapi.testclient import TestClient
from sqlalchemy import update

from debate.core.config import load_settings
from debate.engine.runs import create_runs
from debate.server.api import create_app
from debate.store import tables as t
from debate.store.db import write_tx

BACE1 = "h-1c05c34d"
TOKENS = '{"alice": "tok-alice-0123456789"}'
ALICE = {"Authorization": "Bearer tok-alice-0123456789"}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    url = f"sqlite:///{tmp_path / 'debate.db'}"
    seed_debated_sample(url, load_settings(database_url=url))
    settings = load_settings(database_url=url, reviewer_tokens=TOKENS)
    with TestClient(create_app(settings, backends=("offline",))) as c:
        yield c


def _orphan_run(c: TestClient) -> str:
    """A running run whose owner is gone (made after the server's start-up recovery)."""
    engine = c.app.state.engine  # type: ignore[attr-defined]
    [run_id] = create_runs(engine, load_settings(database_url=str(engine.url)), [BACE1], backend="offline")
    with write_tx(engine) as conn:
        conn.execute(update(t.Run).where(t.Run.id == run_id).values(status="running", owner=None, heartbeat_at=None))
    return run_id


def test_interrupted_runs_are_shown_and_filtered(client: TestClient) -> None:
    run_id = _orphan_run(client)
    assert client.get(f"/api/runs/{run_id}").json()["status"] == "interrupted"
    listed = client.get("/api/runs", params={"status": "interrupted"}).json()
    assert [r["id"] for r in listed["items"]] == [run_id] and listed["total"] == 1
    assert client.get("/api/runs", params={"status": "running"}).json()["total"] == 0
    detail = client.get(f"/api/hypotheses/{BACE1}").json()
    assert [r["status"] for r in detail["runs"] if r["id"] == run_id] == ["interrupted"]
    assert "interrupted" in client.get(f"/hypotheses/{BACE1}").text


def test_schema_lists_interrupted_and_the_servers_backends(client: TestClient) -> None:
    schemas = client.get("/api/openapi.json").json()["components"]["schemas"]
    assert "interrupted" in schemas["RunSummary"]["properties"]["status"]["enum"]
    # The engine knows offline, openai and local; the schema names this server's backends only.
    assert schemas["RunRequest"]["properties"]["backend"]["anyOf"][0]["enum"] == ["offline"]
    # ...while the server still accepts only the backends it was configured with.
    r = client.post("/api/runs", json={"hypothesis_ids": [BACE1], "backend": "local"}, headers=ALICE)
    assert r.status_code == 422 and "not enabled" in r.json()["message"]
