"""A batch item gets its run once: a second client's claim names what it could not claim."""

from __future__ import annotations

from conftest import SAMPLE_HYPOTHESES
from sqlalchemy import select

from debate.core.config import load_settings
from debate.engine.runs import create_runs
from debate.jobs.queue import _claim_items
from debate.kb import hypotheses as hyps
from debate.store import tables as t
from debate.store.db import ensure_schema, session_scope


def test_a_second_claim_returns_the_items_the_first_one_took(tmp_path):  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'claim.db'}"
    engine = ensure_schema(url)
    hyps.import_file(engine, SAMPLE_HYPOTHESES)
    ids = [h.id for h in hyps.read_hypotheses_file(SAMPLE_HYPOTHESES)[:3]]
    with session_scope(engine) as s:
        s.add(
            t.Batch(
                id="b-1",
                options={},
                options_key="k",
                backend="offline",
                hypothesis_ids=ids,
                settings={},
                status="pending",
                total=len(ids),
                created_at=t.utcnow(),
                updated_at=t.utcnow(),
            )
        )
        s.flush()
        for i, hid in enumerate(ids):
            s.add(t.BatchItem(batch_id="b-1", hypothesis_id=hid, ordinal=i, reasons={}, updated_at=t.utcnow()))
    settings = load_settings(database_url=url)
    first = dict(zip(ids[:2], create_runs(engine, settings, ids[:2], backend="offline", batch_id="b-1"), strict=True))
    second = dict(zip(ids, create_runs(engine, settings, ids, backend="offline", batch_id="b-1"), strict=True))

    assert _claim_items(engine, "b-1", first) == []
    assert _claim_items(engine, "b-1", second) == ids[:2]
    with session_scope(engine) as s:
        claimed = dict(
            s.execute(select(t.BatchItem.hypothesis_id, t.BatchItem.run_id).where(t.BatchItem.batch_id == "b-1")).all()
        )
    assert claimed == {**first, ids[2]: second[ids[2]]}
