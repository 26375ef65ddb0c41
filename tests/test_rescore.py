"""Rescoring: selection criteria, stored batches that a rerun resumes, the budget guard, the CLI.

Selection rules are tested on plain facts; `--changed` and `--prompt-changed` end to end on the
bundled sample KB (an edited page picks only its hypotheses; an edited prompt only the runs that
used the old one); the budget guard against the fake OpenAI server.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import SAMPLE_HYPOTHESES, SAMPLE_KB, run_cli
from pg import pg_url  # noqa: F401  (fixture)
from sqlalchemy import func, select

from debate.core.config import load_settings
from debate.core.errors import ConfigError, NotFoundError, UserInputError
from debate.jobs.batches import Budget, get_batch, open_or_create_batch
from debate.jobs.runner import BatchRunner, BatchSummary
from debate.jobs.selection import (
    HypothesisFacts,
    LastRun,
    PageFact,
    choose,
    explain_history,
    normalize_options,
    read_ids_file,
    select_hypotheses,
)
from debate.llm.fake import FakeOpenAIServer
from debate.store import tables as t
from debate.store.db import session_scope

NOW = datetime(2026, 6, 1, tzinfo=UTC)
PROMPTS = Path(__file__).resolve().parents[1] / "prompts"


def _opts(**kw):  # type: ignore[no-untyped-def]
    base = dict(
        backend="offline",
        stale_after=None,
        changed=False,
        prompt_changed=False,
        ids=None,
        limit=None,
        default_stale_after="30d",
    )
    return normalize_options(**(base | kw))


def _facts(
    hid: str,
    *,
    age_days: float | None,
    prior: bool = False,  # type: ignore[no-untyped-def]
    pages=(),
    hashes=None,
) -> HypothesisFacts:
    last = (
        None
        if age_days is None
        else LastRun(f"r-{hid}", NOW - timedelta(days=age_days), "offline", hashes or {"offline": "v1"})
    )
    return HypothesisFacts(hid, prior, last, tuple(pages))


# ---------------------------------------------------------------- pure selection


def test_stale_selects_old_scores_priors_and_unscored_most_urgent_first() -> None:
    facts = [
        _facts("h-fresh", age_days=2),
        _facts("h-old", age_days=40),
        _facts("h-older", age_days=90),
        _facts("h-prior", age_days=None, prior=True),
        _facts("h-new", age_days=None),
    ]
    picked = choose(facts, _opts(), NOW, {"offline": "v1"})
    assert [p.id for p in picked] == ["h-new", "h-prior", "h-older", "h-old"]
    assert [p.reasons.stale for p in picked] == ["never scored", "prior only", "90d", "40d"]
    assert [p.id for p in choose(facts, _opts(stale_after="0s"), NOW, {})][-1] == "h-fresh"
    assert [p.id for p in choose(facts, _opts(limit=2), NOW, {})] == ["h-new", "h-prior"]


def test_criteria_are_ored_and_the_default_staleness_only_applies_alone() -> None:
    page = PageFact("entities-sod1", "cited", NOW - timedelta(days=1))
    facts = [
        _facts("h-a", age_days=5, pages=[page]),
        _facts("h-b", age_days=40),
        _facts("h-c", age_days=5, hashes={"offline": "v0"}),
    ]
    assert _opts(changed=True).stale_after_s is None
    assert [p.id for p in choose(facts, _opts(changed=True), NOW, {"offline": "v1"})] == ["h-a"]
    both = choose(facts, _opts(changed=True, prompt_changed=True), NOW, {"offline": "v1"})
    assert sorted(p.id for p in both) == ["h-a", "h-c"]
    assert both[[p.id for p in both].index("h-c")].reasons.prompts == ["offline"]
    three = choose(facts, _opts(changed=True, prompt_changed=True, stale_after="30d"), NOW, {"offline": "v1"})
    assert sorted(p.id for p in three) == ["h-a", "h-b", "h-c"]


def test_changed_pages_are_those_edited_after_the_last_run_or_gone_or_different() -> None:
    pages = [
        PageFact("edited", "cited", NOW - timedelta(days=1)),
        PageFact("untouched", "cited", NOW - timedelta(days=30)),
        PageFact("gone", "cited", None),
        PageFact("snapshot-differs", "cited", NOW - timedelta(days=30), snapshot_differs=True),
        PageFact("lists-it", "listed", NOW - timedelta(days=2)),
    ]
    [picked] = choose([_facts("h-a", age_days=10, pages=pages)], _opts(changed=True), NOW, {})
    assert picked.reasons.pages == ["edited", "gone", "lists-it", "snapshot-differs"]
    # Without a finished run there is nothing to have changed since.
    assert choose([_facts("h-b", age_days=None, pages=pages)], _opts(changed=True), NOW, {}) == []


def test_options_key_is_the_normalized_selection() -> None:
    assert _opts().key() == _opts(stale_after="30d").key() == _opts(stale_after="720h").key()
    assert _opts().key() != _opts(stale_after="29d").key()
    assert _opts(ids=["h-1", "h-2"]).key() == _opts(ids=["h-2", "h-1", "h-2"]).key()
    assert _opts(ids=["h-1"]).key() != _opts().key()
    assert _opts(backend="openai").key() != _opts().key()
    assert "stale > 30d" in _opts().describe()
    with pytest.raises(UserInputError, match="--stale-after"):
        _opts(stale_after="30 days")


def test_ids_file(tmp_path: Path) -> None:
    f = tmp_path / "ids.txt"
    f.write_text("# hot list\nh-9878fd9b h-1c05c34d\nh-9878fd9b, h-42374479  # again\n\n")
    assert read_ids_file(f) == ["h-9878fd9b", "h-1c05c34d", "h-42374479"]
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(UserInputError, match="no hypothesis ids"):
        read_ids_file(tmp_path / "empty.txt")


# ---------------------------------------------------------------- against the database


@pytest.fixture
def kb_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "kb"
    shutil.copytree(SAMPLE_KB, folder)
    return folder


@pytest.fixture
def kb_engine(engine, kb_copy):  # type: ignore[no-untyped-def]
    """The sample KB ingested from a copy that a test may edit."""
    from debate.kb.hypotheses import import_file
    from debate.kb.ingest import ingest_paths

    import_file(engine, SAMPLE_HYPOTHESES)
    ingest_paths(engine, [kb_copy])
    return engine


def _batch(engine, settings, *, concurrency=4, budget=None, **kw) -> BatchSummary:  # type: ignore[no-untyped-def]
    batch, _ = open_or_create_batch(engine, settings, _opts(**kw), concurrency=concurrency, budget=budget)
    assert batch is not None
    return asyncio.run(BatchRunner(engine, settings, batch.id, concurrency=concurrency, budget=budget).run())


def _runs_per_hypothesis(engine, batch_id: str) -> dict[str, int]:  # type: ignore[no-untyped-def]
    with session_scope(engine) as s:
        return dict(
            s.execute(
                select(t.Run.hypothesis_id, func.count())
                .where(t.Run.batch_id == batch_id)
                .group_by(t.Run.hypothesis_id)
            ).all()
        )


def test_changed_picks_only_hypotheses_of_the_edited_page(kb_engine, kb_copy, db_url):  # type: ignore[no-untyped-def]
    from debate.kb.ingest import ingest_paths

    settings = load_settings(database_url=db_url)
    first = _batch(kb_engine, settings)
    assert first.status == "done" and first.done == first.total == 15
    with session_scope(kb_engine) as s:
        assert select_hypotheses(s, _opts(changed=True), now=t.utcnow(), current_prompts={}) == []
        cited = s.execute(select(t.Evidence.page_slug, t.Run.hypothesis_id).join(t.Run)).all()
        listed = s.execute(select(t.Page.slug, t.RelatedEntry.ref_id).join(t.Page)).all()
    by_page: dict[str, set[str]] = {}
    for slug, hid in [*cited, *listed]:
        by_page.setdefault(slug, set()).add(hid)
    # The page fewest hypotheses depend on, so the selection is visibly narrow.
    slug = min((p for p in by_page if 0 < len(by_page[p])), key=lambda p: (len(by_page[p]), p))
    path = kb_copy / f"{slug}.txt"
    path.write_text(
        path.read_text(encoding="utf-8").replace("\n", "\nA sentence added in an edit.\n", 1), encoding="utf-8"
    )
    report = ingest_paths(kb_engine, [kb_copy])
    assert report.changed == [slug]

    with session_scope(kb_engine) as s:
        picked = select_hypotheses(s, _opts(changed=True), now=t.utcnow(), current_prompts={})
    assert {p.id for p in picked} == by_page[slug] & _hypothesis_ids(kb_engine)
    assert 0 < len(picked) < 15
    assert all(p.reasons.pages == [slug] and p.reasons.stale is None for p in picked)

    second = _batch(kb_engine, settings, changed=True)
    assert second.done == len(picked) and second.batch_id != first.batch_id
    with session_scope(kb_engine) as s:
        history = explain_history(s, picked[0].id)
    assert [h.batch for h in history] == [first.batch_id, second.batch_id]
    assert history[1].reasons is not None and history[1].reasons.pages == [slug]
    assert history[1].prompts == [] and history[1].models == {}


def _hypothesis_ids(engine) -> set[str]:  # type: ignore[no-untyped-def]
    with session_scope(engine) as s:
        return set(s.execute(select(t.Hypothesis.id)).scalars())


def _openai_settings(
    db_url: str,
    base_url: str,
    prompts_dir: Path | None = None,  # type: ignore[no-untyped-def]
    **rescore: object,
):
    return load_settings(
        database_url=db_url,
        prompts_dir=str(prompts_dir) if prompts_dir else "",
        debate={"rounds": 1, "judges": 1},
        openai={
            "base_url": base_url,
            "api_key": "k",
            "structured_output": "json_schema",
            "timeout_s": 5.0,
            "max_concurrency": 64,
        },
        rescore=rescore,
    )


def test_prompt_changed_picks_runs_made_with_other_prompts(sample_engine, db_url, tmp_path):  # type: ignore
    old_dir, new_dir = tmp_path / "old", tmp_path / "new"
    shutil.copytree(PROMPTS, old_dir)
    shutil.copytree(PROMPTS, new_dir)
    # The newest judge prompt, the one a run uses.
    judge = max(new_dir.glob("judge.v*.md"), key=lambda p: int(p.stem.rsplit(".v", 1)[1]))
    judge.write_text(judge.read_text(encoding="utf-8") + "\nBe brief.\n", encoding="utf-8")
    ids = ["h-9878fd9b", "h-1c05c34d", "h-42374479", "h-3893b013"]
    with FakeOpenAIServer() as server:
        old = _openai_settings(db_url, server.base_url, old_dir)
        new = _openai_settings(db_url, server.base_url, new_dir)
        _scored(sample_engine, old, ids[:3])  # with the old judge prompt
        _scored(sample_engine, new, ids[3:])  # with the edited one
    with session_scope(sample_engine) as s:
        from debate.engine.backends import prompt_hashes

        picked = select_hypotheses(
            s,
            _opts(backend="openai", prompt_changed=True),
            now=t.utcnow(),
            current_prompts=prompt_hashes(new, "openai"),
        )
        assert sorted(p.id for p in picked) == sorted(ids[:3])
        assert all(p.reasons.prompts == ["judge"] for p in picked)
        # Judged by the offline rules, every model-scored hypothesis used other "prompts".
        offline = select_hypotheses(
            s, _opts(prompt_changed=True), now=t.utcnow(), current_prompts=prompt_hashes(new, "offline")
        )
        assert sorted(p.id for p in offline) == sorted(ids)


def _scored(engine, settings, ids: list[str]) -> None:  # type: ignore[no-untyped-def]
    opts = _opts(backend="openai", stale_after="0s", ids=ids)
    batch, _ = open_or_create_batch(engine, settings, opts, ids=ids)
    assert batch is not None
    summary = asyncio.run(BatchRunner(engine, settings, batch.id, concurrency=4).run())
    assert summary.done == len(ids)


def _spent_in_order(engine, batch_id: str) -> list[tuple[int, float]]:  # type: ignore[no-untyped-def]
    with session_scope(engine) as s:
        rows = s.execute(
            select(t.Run.prompt_tokens, t.Run.completion_tokens, t.Run.cost_usd)
            .where(t.Run.batch_id == batch_id)
            .order_by(t.Run.finished_at)
        ).all()
    return [(p + c, cost) for p, c, cost in rows]


def test_budget_stops_new_debates_and_a_rerun_with_more_resumes_the_batch(sample_engine, db_url):  # type: ignore
    with FakeOpenAIServer() as server:
        settings = _openai_settings(db_url, server.base_url)
        opts = dict(backend="openai", stale_after="0s")
        probe = _batch(sample_engine, settings, concurrency=1, limit=1, **opts)
        assert probe.tokens and probe.cost_usd and probe.unknown_usage == 0

        budget = Budget(max_tokens_total=int(probe.tokens * 2.5))
        stopped = _batch(sample_engine, settings, concurrency=1, budget=budget, limit=8, **opts)
        assert stopped.status == "stopped" and stopped.stop_reason == (
            f"token budget of {budget.max_tokens_total:,} reached"
        )
        assert 0 < stopped.done < 8 and stopped.remaining == 8 - stopped.done
        # One at a time: each debate started under budget, and the last one reached it.
        spent = [tok for tok, _ in _spent_in_order(sample_engine, stopped.batch_id)]
        assert sum(spent[:-1]) < budget.max_tokens_total <= sum(spent) == stopped.tokens
        with session_scope(sample_engine) as s:
            b = get_batch(s, stopped.batch_id)
            assert b.status == "stopped" and b.owner is None
            # Unstarted items got no run: nothing shows as queued.
            assert s.execute(select(func.count()).where(t.Run.batch_id == b.id)).scalar_one() == stopped.done

        again = _batch(sample_engine, settings, concurrency=1, budget=budget, limit=8, **opts)
        assert again.batch_id == stopped.batch_id and again.status == "stopped" and again.debated == 0

        more = _batch(sample_engine, settings, concurrency=4, budget=Budget(max_tokens_total=10**9), limit=8, **opts)
        assert more.batch_id == stopped.batch_id and more.status == "done" and more.done == 8
        assert set(_runs_per_hypothesis(sample_engine, more.batch_id).values()) == {1}

        # A cost budget, priced from [openai.prices] (the fake server answers as gpt-4o-mini).
        max_cost = probe.cost_usd * 2.5
        cost = _batch(
            sample_engine,
            settings,
            concurrency=1,
            budget=Budget(max_cost=max_cost),
            limit=8,
            backend="openai",
            stale_after="1s",
        )
        assert cost.status == "stopped" and cost.stop_reason and "cost budget" in cost.stop_reason
        costs = [c for _, c in _spent_in_order(sample_engine, cost.batch_id)]
        assert sum(costs[:-1]) < max_cost <= sum(costs)


def test_budgets_that_cannot_be_enforced_are_refused(sample_engine, db_url):  # type: ignore[no-untyped-def]
    settings = load_settings(database_url=db_url, openai={"model": "unpriced-model"})
    with pytest.raises(UserInputError, match="openai backend"):
        open_or_create_batch(sample_engine, settings, _opts(stale_after="0s"), budget=Budget(max_tokens_total=10))
    with pytest.raises(ConfigError, match="unpriced-model"):
        open_or_create_batch(sample_engine, settings, _opts(backend="openai"), budget=Budget(max_cost=1.0))


def test_unknown_ids_are_named(sample_engine):  # type: ignore[no-untyped-def]
    with session_scope(sample_engine) as s, pytest.raises(NotFoundError, match="h-00000000"):
        select_hypotheses(
            s,
            _opts(ids=["h-9878fd9b", "h-00000000"]),
            now=t.utcnow(),
            current_prompts={},
            ids=["h-9878fd9b", "h-00000000"],
        )


def _cli(*args: str, db_url: str) -> dict:  # type: ignore[type-arg]
    """Run a command in this process (a subprocess per command costs seconds) and parse its JSON."""
    from typer.testing import CliRunner

    import debate.cli  # noqa: F401  (registers the commands)
    from debate.cli.app import app

    result = CliRunner().invoke(app, ["--db", db_url, *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_cli_dry_run_run_rerun_and_batches(sample_engine, db_url, tmp_path):  # type: ignore[no-untyped-def]
    ids = tmp_path / "ids.txt"
    ids.write_text("h-9878fd9b\nh-1c05c34d\nh-42374479\n")
    plan = _cli("rescore", "--ids", str(ids), "--dry-run", "--json", db_url=db_url)
    assert plan["batch_id"] is None and plan["total"] == 3
    assert {h["id"] for h in plan["hypotheses"]} == {"h-9878fd9b", "h-1c05c34d", "h-42374479"}

    done = _cli("rescore", "--ids", str(ids), "--json", db_url=db_url)
    assert done["status"] == "done" and done["done"] == 3 and done["debated"] == 3

    # Fresh scores now: the same command finds nothing stale; the stored batch is listed.
    assert _cli("rescore", "--ids", str(ids), "--json", db_url=db_url)["status"] == "empty"
    listed = _cli("batches", "list", "--json", db_url=db_url)
    assert [b["id"] for b in listed] == [done["batch_id"]]
    shown = _cli("batches", "show", done["batch_id"], "--items", "--json", db_url=db_url)
    assert shown["counts"] == {"done": 3} and all(i["run_id"] for i in shown["items"])
    assert {i["reasons"]["stale"] for i in shown["items"]} == {"prior only", "never scored"}


def test_cli_errors_are_one_line(sample_engine, cli_env):  # type: ignore[no-untyped-def]
    bad = run_cli("rescore", "--stale-after", "soon", env=cli_env, check=False)
    assert bad.returncode == 2 and "--stale-after 'soon' is not a duration" in bad.stderr


@pytest.mark.postgres
def test_two_processes_on_postgres_score_each_hypothesis_once(pg_url):  # type: ignore[no-untyped-def]  # noqa: F811
    from debate.kb.hypotheses import import_file
    from debate.kb.ingest import ingest_paths
    from debate.store.db import ensure_schema

    engine = ensure_schema(pg_url)
    import_file(engine, SAMPLE_HYPOTHESES)
    ingest_paths(engine, [SAMPLE_KB])
    settings = load_settings(database_url=pg_url, debate={"rounds": 1, "judges": 2})
    batch, _ = open_or_create_batch(engine, settings, _opts(stale_after="0s"))
    assert batch is not None
    summary = asyncio.run(BatchRunner(engine, settings, batch.id, concurrency=3, processes=2).run())
    assert summary is not None and summary.status == "done" and summary.done == 15 and not summary.notes
    assert set(_runs_per_hypothesis(engine, batch.id).values()) == {1}
    assert len(_runs_per_hypothesis(engine, batch.id)) == 15
