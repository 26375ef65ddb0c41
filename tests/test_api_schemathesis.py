"""Schemathesis against the published OpenAPI schema: no 5xx, every reply as documented.

On SQLite and on PostgreSQL (whose text columns refuse NUL: the schema says which strings are
accepted, and the server refuses the rest with a 422 rather than a database error).

Every operation gets positive cases (valid per the schema) and negative ones (invalid), with a
fixed seed. Some positive cases use ids that exist (the sample hypotheses, a finished run, a KB
page) so the happy paths run too; writes mostly carry a valid reviewer token and sometimes
none or a wrong one. Accepted ``POST /api/runs`` debate in the background: offline, or through
the ``openai`` backend against a local fake endpoint. The counts are printed (``-s``) and the
total must reach 1,000.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import SAMPLE_HYPOTHESES, SAMPLE_KB
from fastapi.testclient import TestClient
from pg import any_db  # noqa: F401  (fixture)

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from debate.core.config import load_settings
from debate.engine.runs import Executor, create_runs
from debate.kb.hypotheses import import_file
from debate.kb.ingest import ingest_paths
from debate.llm.fake import FakeOpenAIServer
from debate.server.api import create_app
from debate.store.db import ensure_schema

pytestmark = pytest.mark.slow

TOKEN = "tok-schemathesis-0123456789"
PAGE = "therapeutics-als-therapy-landscape"
# Cases per operation and mode. Only GET /api/scores.json has nothing to make invalid, so:
# 110 + 8 x (110 + 40) = 1,310 on each database.
POSITIVE_CASES = 110
NEGATIVE_CASES = 40
WRITES = {"POST /api/runs", "POST /api/runs/{run_id}/reviews"}


async def _execute(engine: Any, cfg: Any, run_id: str) -> None:
    async with Executor(engine, cfg, backend="offline") as ex:
        await ex.execute(run_id)


@pytest.fixture(scope="module")
def database(any_db: str) -> str:  # noqa: F811
    """An empty database: a SQLite file, or a fresh PostgreSQL database (dropped afterwards)."""
    return any_db


@pytest.fixture(scope="module")
def served(database: str) -> Iterator[dict[str, Any]]:
    """The app over the sample KB with one finished run, and the ids that exist.

    Accepted runs debate in the background on SQLite; on PostgreSQL they become jobs on the
    task queue (no worker here), which the app's start-up opens.
    """
    engine = ensure_schema(database)
    hyp_ids = import_file(engine, SAMPLE_HYPOTHESES)
    ingest_paths(engine, [SAMPLE_KB])
    with FakeOpenAIServer() as fake:
        cfg = load_settings(
            database_url=database,
            reviewer_tokens=json.dumps({"schemathesis": TOKEN}),
            openai={
                "base_url": fake.base_url,
                "api_key": "test-key",
                "structured_output": "json_schema",
                "timeout_s": 2.0,
                "max_transport_attempts": 2,
            },
            debate={"rounds": 1, "judges": 2},
        )
        [run_id] = create_runs(engine, cfg, [hyp_ids[0]], backend="offline")
        asyncio.run(_execute(engine, cfg, run_id))
        app = create_app(cfg)
        with TestClient(app):
            yield {"app": app, "hyp_ids": hyp_ids, "run_id": run_id}
            if app.state.runner is not None:
                app.state.runner.wait_idle(120)


def _prepare(case: Any, i: int, served: dict[str, Any], positive: bool) -> dict[str, str]:
    """Point some positive cases at ids that exist; choose the credentials. Returns the headers."""
    label = f"{case.method.upper()} {case.path}"
    if positive and i % 3 == 0:
        params = case.path_parameters or {}
        if "hyp_id" in params:
            params["hyp_id"] = served["hyp_ids"][i % len(served["hyp_ids"])]
        if "run_id" in params:
            params["run_id"] = served["run_id"]
        if "slug" in params:
            params["slug"] = PAGE
        if label == "POST /api/runs" and isinstance(case.body, dict):
            case.body["hypothesis_ids"] = [served["hyp_ids"][(i // 3) % len(served["hyp_ids"])]]
    if label not in WRITES:
        return {}
    if positive and i % 10 == 1:
        return {}
    if positive and i % 10 == 2:
        return {"Authorization": "Bearer not-a-reviewer"}
    return {"Authorization": f"Bearer {TOKEN}"}


def _fuzz(
    op: Any,
    label: str,
    mode: GenerationMode,
    n: int,
    served: dict[str, Any],
    counter: Iterator[int],
    cases: Counter[str],
    statuses: Counter[int],
    failures: list[str],
) -> None:
    """Up to ``n`` generated cases of one operation in one mode; failures are collected, not raised."""
    positive = mode == GenerationMode.POSITIVE

    @settings(
        max_examples=n,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    @given(case=op.as_strategy(generation_mode=mode))
    def one(case: Any) -> None:
        headers = _prepare(case, next(counter), served, positive)
        try:
            response = case.call_and_validate(headers=headers)
            statuses[response.status_code] += 1
        except (Exception, BaseExceptionGroup) as e:  # noqa: BLE001 - collected, reported by the test
            failures.append(f"{label} [{mode.value}]: {str(e)[:800]}")
        cases[label] += 1

    try:
        one()
    except Unsatisfiable:
        # Nothing in the operation can be made invalid (say, one unconstrained string in the path).
        assert not positive, f"{label}: no valid case could be generated"


def test_generated_cases_find_no_server_error_and_no_schema_violation(served: dict[str, Any]) -> None:
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", served["app"])
    operations = [r.ok() for r in schema.get_all_operations()]
    labels = {f"{op.method.upper()} {op.path}" for op in operations}
    assert {"GET /api/scores.json", "POST /api/runs", "POST /api/runs/{run_id}/reviews"} <= labels
    counter = itertools.count()
    cases: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    failures: list[str] = []

    for op in operations:
        label = f"{op.method.upper()} {op.path}"
        for mode, n in ((GenerationMode.POSITIVE, POSITIVE_CASES), (GenerationMode.NEGATIVE, NEGATIVE_CASES)):
            _fuzz(op, label, mode, n, served, counter, cases, statuses, failures)

    total = sum(cases.values())
    print(f"\nschemathesis: {total} cases over {len(cases)} operations, {len(failures)} failures")
    print("  statuses:", dict(sorted(statuses.items())))
    for label, n in sorted(cases.items()):
        print(f"  {n:5d}  {label}")
    assert not failures, "\n\n".join(failures[:10])
    assert total >= 1000
    assert len(cases) == len(operations)
    # Writes were exercised both accepted and refused.
    assert statuses[202] > 0 and statuses[201] > 0 and statuses[401] > 0 and statuses[403] > 0
