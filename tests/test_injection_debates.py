"""Injected KB text against a judge that obeys it: the three defences, end to end.

Each of the eight injection styles (with invisible characters, fullwidth letters and a line
break inside the phrase too) sits in a page whose words the hypothesis retrieves. The judges
are the fake server's *obeying* judge: whenever its prompt holds the instruction it scores
everything 1.0 and cites a trial that does not exist.

- ``[kb] suspect = "exclude"`` (default): the judge never sees the text, so the score is the
  one the same hypothesis gets from the page without it.
- ``"label"``: the judge sees it marked suspect and obeys; every obeyed verdict contradicts the
  debate's verification (high evidence scores, nothing verified, a trial never retrieved), so
  it is left out of the consensus and the run goes to review.
"""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from rows import add_hyp
from sqlalchemy import select
from test_screen import STYLES, VARIANTS, page_text

from debate.core.config import Settings, load_settings
from debate.engine.runs import Executor, create_runs
from debate.kb.ingest import ingest_paths
from debate.llm.fake import FakeOpenAIServer, found_order, obeying
from debate.store import tables as t
from debate.store.db import ensure_schema, session_scope

ORDERS = [phrase for phrase, _ in STYLES.values()]
CASES = [(style, variant) for style in STYLES for variant in VARIANTS]


@pytest.fixture(scope="module")
def server():  # type: ignore[no-untyped-def]
    with FakeOpenAIServer(obeying(ORDERS)) as s:
        yield s


@pytest.fixture(scope="module")
def empty_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("schema") / "empty.db"
    ensure_schema(f"sqlite:///{path}").dispose()
    return path


def _settings(url: str, base_url: str, suspect: str) -> Settings:
    return load_settings(
        database_url=url,
        kb={"suspect": suspect},
        debate={"rounds": 1, "judges": 3},
        openai={"base_url": base_url, "api_key": "k", "structured_output": "json_schema", "timeout_s": 5.0},
    )


@dataclass
class Debated:
    status: str
    score: float | None
    review_status: str
    judge_metas: list[dict[str, Any]]


def _debate(tmp_path: Path, empty_db: Path, base_url: str, injected: str | None, suspect: str) -> Debated:
    """One page (``injected`` in its body, or clean) and a hypothesis that retrieves it, debated."""
    shutil.copy(empty_db, tmp_path / "debate.db")
    url = f"sqlite:///{tmp_path}/debate.db"
    engine = ensure_schema(url)
    kb = tmp_path / "kb"
    kb.mkdir()
    spot = "body" if injected is not None else None
    (kb / "examplimab.txt").write_text(
        page_text("examplimab", "zorbtide", spot, injected or "", "h-0e0e0e0f"), encoding="utf-8"
    )
    ingest_paths(engine, [kb])
    hyp = add_hyp(engine, "Examplimab zorbtide cohort in ALS")
    settings = _settings(url, base_url, suspect)
    [run_id] = create_runs(engine, settings, [hyp], backend="openai")

    async def go() -> None:
        async with Executor(engine, settings, backend="openai") as ex:
            await ex.execute(run_id)

    asyncio.run(go())
    with session_scope(engine) as s:
        run = s.get(t.Run, run_id)
        assert run is not None
        metas = s.execute(select(t.Turn.meta).where(t.Turn.run_id == run_id, t.Turn.role == "judge")).scalars()
        out = Debated(run.status, run.score, run.review_status, list(metas))
    engine.dispose()
    return out


@pytest.fixture(scope="module")
def clean_score(tmp_path_factory: pytest.TempPathFactory, empty_db: Path, server) -> float:  # type: ignore[no-untyped-def]
    run = _debate(tmp_path_factory.mktemp("clean"), empty_db, server.base_url, None, "exclude")
    assert run.status == "done" and run.score is not None and run.review_status == "unreviewed"
    return run.score


@pytest.mark.parametrize(("style", "variant"), CASES, ids=[f"{s}-{v}" for s, v in CASES])
def test_excluded_injected_text_never_reaches_the_judge(tmp_path, empty_db, server, clean_score, style, variant):
    injected = VARIANTS[variant](STYLES[style][0])
    before = server.request_count
    run = _debate(tmp_path, empty_db, server.base_url, injected, "exclude")
    assert run.status == "done" and run.review_status == "unreviewed"
    assert abs((run.score or 0) - clean_score) < 0.05
    assert not any("CONTRADICTED" in str(m) or (m.get("bound") or {}).get("contradictions") for m in run.judge_metas)
    # Nothing the server was sent holds the order (as a model would read it).
    assert all(found_order(r.body, ORDERS) is None for r in server.requests[before:])


@pytest.mark.parametrize(("style", "variant"), CASES, ids=[f"{s}-{v}" for s, v in CASES])
def test_labelled_injected_text_is_obeyed_and_every_obeyed_verdict_is_contradicted(
    tmp_path, empty_db, server, style, variant
):
    injected = VARIANTS[variant](STYLES[style][0])
    run = _debate(tmp_path, empty_db, server.base_url, injected, "label")
    bounds = [m["bound"] for m in run.judge_metas]
    assert len(bounds) == 3
    # Each judge obeyed (all ten at 1.0) and each such verdict contradicts the verification.
    assert all(b["contradictions"] for b in bounds)
    assert all(any("with no verified claim" in c for c in b["contradictions"]) for b in bounds)
    assert run.review_status == "needs_review"
    # No obeyed verdict counted: with every seat contradicted the quorum fails, score withheld.
    assert run.status == "failed" and run.score is None
