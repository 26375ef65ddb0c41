"""Specification of the score table: which score a hypothesis shows, and its history."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from conftest import run_cli
from rows import T0, add_hyp, insert_evidence, insert_run
from sqlalchemy import select

from debate.store import tables as t
from debate.store.db import session_scope
from debate.wiki.scores import (
    ScoreRow,
    changed_hypotheses,
    run_scores,
    score_history,
    score_rows,
    scores_json,
    shown_scores,
)


def add_run(
    engine,  # type: ignore[no-untyped-def]
    hyp_id: str,
    *,
    status: str = "done",
    score: float | None = None,
    flagged: bool = False,
    at: datetime = T0,
    batch: str | None = None,
) -> str:
    return insert_run(
        engine, hyp_id, at=at, spread=0.1, status=status, score=score, flagged=flagged, trigger="test", batch_id=batch
    )


def rows(engine, **kw) -> dict[str, ScoreRow]:  # type: ignore[no-untyped-def]
    with session_scope(engine) as s:
        return {r.id: r for r in score_rows(s, **kw)}


def test_prior_until_a_debate_here_scores_it(engine) -> None:
    h = add_hyp(engine, "Prior only", prior_score=0.69)
    r = rows(engine)[h]
    assert (r.status, r.score, r.prior, r.shown_score, r.last_run, r.scored_at) == (
        "prior",
        None,
        0.69,
        0.69,
        None,
        None,
    )
    run = add_run(engine, h, score=0.9)
    r = rows(engine)[h]
    assert (r.status, r.score, r.shown_score, r.last_run, r.flagged) == ("scored", 0.9, 0.9, run, False)
    assert r.agreement == 0.8 and r.interval == (0.8, 1.0)
    assert r.scored_at == (T0 + timedelta(seconds=30)).isoformat()


def test_latest_unflagged_score_stands(engine) -> None:
    h = add_hyp(engine, "Rescored", prior_score=0.3)
    first = add_run(engine, h, score=0.5, at=T0)
    add_run(engine, h, score=0.95, flagged=True, at=T0 + timedelta(hours=1))
    r = rows(engine)[h]
    assert (r.shown_score, r.last_run, r.flagged, r.status) == (0.5, first, True, "scored")
    later = add_run(engine, h, score=0.6, at=T0 + timedelta(hours=2))
    r = rows(engine)[h]
    assert (r.shown_score, r.last_run, r.flagged) == (0.6, later, False)


def test_flagged_only_falls_back_to_prior_or_nothing(engine) -> None:
    with_prior = add_hyp(engine, "Flagged with prior", prior_score=0.4)
    without = add_hyp(engine, "Flagged without prior")
    for h in (with_prior, without):
        add_run(engine, h, score=0.9, flagged=True)
    r = rows(engine)
    assert (r[with_prior].shown_score, r[with_prior].status, r[with_prior].flagged) == (0.4, "prior", True)
    assert (r[without].shown_score, r[without].status, r[without].flagged) == (None, "unscored", True)


NOTE_PAGE = """Wren Kinase Notes
Overview
Wren kinase is an invented enzyme used to test how scores follow their evidence.
- Status: {status}
▸Metadata
| slug | notes-wren-kinase |
"""


def _page(engine, tmp_path, status: str) -> str:  # type: ignore[no-untyped-def]
    """Ingest the note page with ``status``; its content hash."""
    from debate.kb.ingest import ingest_paths

    path = tmp_path / "notes-wren-kinase.txt"
    path.write_text(NOTE_PAGE.format(status=status), encoding="utf-8")
    ingest_paths(engine, [path])
    with session_scope(engine) as s:
        return s.execute(select(t.Page.content_hash).where(t.Page.slug == "notes-wren-kinase")).scalar_one()


def _cite(engine, run_id: str, page_hash: str) -> None:  # type: ignore[no-untyped-def]
    """Record that ``run_id`` drew its evidence from the note page as it read with ``page_hash``."""
    insert_evidence(engine, run_id, ["notes-wren-kinase"], page_hash)


def _flag_over_earlier_score(engine, tmp_path, *, edit: bool, prior: float | None) -> ScoreRow:  # type: ignore[no-untyped-def]
    """An earlier unflagged score drawn from the note page, a newer flagged one, and the page
    edited (or not) in between; the row the wiki gets."""
    h = add_hyp(engine, f"Wren inhibition {edit} {prior}", prior_score=prior)
    earlier = add_run(engine, h, score=0.55, at=T0)
    _cite(engine, earlier, _page(engine, tmp_path, "preclinical"))
    if edit:
        _page(engine, tmp_path, "phase 2 trial halted")
    add_run(engine, h, score=0.9, flagged=True, at=T0 + timedelta(hours=1))
    r = rows(engine)[h]
    with session_scope(engine) as s:
        assert shown_scores(s, [h])[h][0] == r.shown_score  # the cheap path follows the same rule
        assert run_scores(s, [h])[h][0] == r.score
    return r


def test_a_flag_brings_back_the_earlier_score_while_its_evidence_is_unchanged(engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    r = _flag_over_earlier_score(engine, tmp_path, edit=False, prior=0.3)
    assert (r.shown_score, r.status, r.flagged) == (0.55, "scored", True)


def test_a_flag_over_a_score_whose_evidence_changed_falls_back_to_the_prior(engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    r = _flag_over_earlier_score(engine, tmp_path, edit=True, prior=0.3)
    assert (r.shown_score, r.score, r.status, r.flagged) == (0.3, None, "prior", True)


def test_a_flag_over_a_score_whose_evidence_changed_and_no_prior_shows_nothing(engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    r = _flag_over_earlier_score(engine, tmp_path, edit=True, prior=None)
    assert (r.shown_score, r.score, r.status) == (None, None, "unscored")


def test_rescore_changed_picks_a_hypothesis_whose_shown_fallback_went_stale(engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from debate.jobs.selection import normalize_options, select_hypotheses

    h = add_hyp(engine, "Wren stale fallback")
    earlier = add_run(engine, h, score=0.55, at=T0)
    _cite(engine, earlier, _page(engine, tmp_path, "preclinical"))
    edited = _page(engine, tmp_path, "phase 2 trial halted")
    # The flagged run was argued from the page as it reads now: only the fallback is stale.
    flagged = add_run(engine, h, score=0.9, flagged=True, at=t.utcnow())
    _cite(engine, flagged, edited)
    opts = normalize_options(
        backend="offline",
        changed=True,
    )
    with session_scope(engine) as s:
        picked = select_hypotheses(s, opts, now=t.utcnow(), current_prompts={})
    assert [(p.id, p.reasons.pages) for p in picked] == [(h, ["notes-wren-kinase"])]
    assert rows(engine)[h].shown_score is None


def test_an_unflagged_latest_score_stands_though_its_evidence_changed(engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    # Stale scores are rescoring's business (rescore --changed), not withheld by this rule.
    h = add_hyp(engine, "Wren activation")
    run = add_run(engine, h, score=0.6, at=T0)
    _cite(engine, run, _page(engine, tmp_path, "preclinical"))
    _page(engine, tmp_path, "approved")
    assert rows(engine)[h].shown_score == 0.6


def test_pending_debates_set_the_status_but_keep_the_score(engine) -> None:
    queued = add_hyp(engine, "Queued", prior_score=0.7)
    running = add_hyp(engine, "Running")
    add_run(engine, queued, status="queued")
    add_run(engine, running, status="queued", at=T0)
    add_run(engine, running, status="running", at=T0 + timedelta(minutes=1))
    add_run(engine, running, status="failed", at=T0 - timedelta(minutes=1))
    r = rows(engine)
    assert (r[queued].status, r[queued].shown_score) == ("queued", 0.7)
    assert (r[running].status, r[running].shown_score) == ("running", None)


def test_subset_sorted_and_unknown_ids_skipped(engine) -> None:
    a = add_hyp(engine, "A", prior_score=0.1)
    b = add_hyp(engine, "B", prior_score=0.2)
    add_hyp(engine, "C")
    with session_scope(engine) as s:
        assert [r.id for r in score_rows(s, ids=[b, "h-00000000", a])] == sorted([a, b])
        assert score_rows(s, ids=[]) == []
        assert [r.id for r in score_rows(s)] == sorted(r.id for r in score_rows(s))


def test_cheap_shown_scores_follow_the_same_rule(engine) -> None:
    ids = [add_hyp(engine, f"H{i}", prior_score=None if i % 2 else 0.3 + i / 20) for i in range(8)]
    add_run(engine, ids[0], score=0.8)
    add_run(engine, ids[1], score=0.7, flagged=True)
    add_run(engine, ids[2], score=0.2, at=T0)
    add_run(engine, ids[2], score=0.9, flagged=True, at=T0 + timedelta(hours=1))
    add_run(engine, ids[3], status="queued")
    add_run(engine, ids[4], status="running")
    # A failed or cancelled run (even one carrying a score) shows nothing and is not pending.
    add_run(engine, ids[5], status="failed", score=0.95, at=T0 + timedelta(days=1))
    add_run(engine, ids[6], score=0.4)
    add_run(engine, ids[6], status="cancelled", at=T0 + timedelta(days=1))
    with session_scope(engine) as s:
        full = {r.id: r for r in score_rows(s, ids=ids)}
        cheap = shown_scores(s, ids)
        from_runs = run_scores(s, ids)
    assert cheap == {h: (r.shown_score, r.status in ("queued", "running")) for h, r in full.items()}
    assert full[ids[5]].shown_score is None and full[ids[6]].shown_score == 0.4
    # Only hypotheses with a done or pending run appear; the rest show their prior.
    assert from_runs == {
        ids[0]: (0.8, False),
        ids[1]: (None, False),
        ids[2]: (0.2, False),
        ids[3]: (None, True),
        ids[4]: (None, True),
        ids[6]: (0.4, False),
    }


def test_history_and_changed_since(engine) -> None:
    h = add_hyp(engine, "Historic", prior_score=0.5)
    old = add_run(engine, h, score=0.4, at=T0, batch="b-1")
    new = add_run(engine, h, score=0.6, flagged=True, at=T0 + timedelta(days=1))
    add_run(engine, h, status="queued", at=T0 + timedelta(days=2))
    with session_scope(engine) as s:
        hist = score_history(s, h)
        assert [(x.run_id, x.score, x.flagged, x.batch) for x in hist] == [
            (old, 0.4, False, "b-1"),
            (new, 0.6, True, None),
        ]
        assert changed_hypotheses(s, T0 + timedelta(days=3)) == set()
        assert changed_hypotheses(s, T0 + timedelta(hours=12)) == {h}


def test_cli_scores_json_and_history(engine, cli_env: dict[str, str]) -> None:
    h = add_hyp(engine, "CLI", targets=["SOD1"], prior_score=0.5)
    run = add_run(engine, h, score=0.75)
    out = run_cli("scores", "--json", env=cli_env).stdout
    with session_scope(engine) as s:
        assert out == scores_json(score_rows(s))
    data = json.loads(out)
    assert isinstance(data, list) and data[0]["id"] == h and data[0]["interval"] == [0.65, 0.85]
    assert set(data[0]) == set(ScoreRow.model_fields)
    hist = json.loads(run_cli("scores", "--history", h, "--json", env=cli_env).stdout)
    assert [x["run_id"] for x in hist] == [run]
    assert run in run_cli("scores", "--history", h, env=cli_env).stdout
    bad = run_cli("scores", "--history", "h-00000000", env=cli_env, check=False)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
