"""Honest labels: every shown score says how it was made (model, offline, prior) and by which
models, in scores --json, scores.json, related JSON and the API; [related] methods filters lists."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import run_cli
from rows import add_hyp, insert_run
from test_related import HEADER, ingest, span, wiki_page

from debate.core.config import load_settings
from debate.core.scoring import GREEN, YELLOW
from debate.engine.backends import backend_models
from debate.store.db import session_scope
from debate.wiki.export import export
from debate.wiki.related import load_related, related_json
from debate.wiki.scores import ScoreRow, score_rows, scores_json

OPENAI_MODELS = {
    "proposer": "gpt-x",
    "critic": "gpt-x",
    "judges": ["gpt-x", "judge-y", "gpt-x"],
    "base_url": "https://api.example.test/v1",
}


def add_run(engine, hyp_id: str, *, score: float, backend: str, models: dict) -> str:  # type: ignore[type-arg,no-untyped-def]
    return insert_run(
        engine,
        hyp_id,
        score=score,
        backend=backend,
        models=models,
        config={"judges": 3},
        interval_lo=score,
        interval_hi=score,
        n_judges=3,
        trigger="test",
    )


def _four_kinds(engine) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """One hypothesis per label: a model run, an offline run, a prior, nothing."""
    offline_models = backend_models(load_settings(), "offline", 3)
    ids = {
        "model": add_hyp(engine, "Model scored", targets=["LRRK2"]),
        "offline": add_hyp(engine, "Offline scored", targets=["LRRK2"], prior_score=0.2),
        "prior": add_hyp(engine, "Prior only", targets=["LRRK2"], prior_score=0.6),
        "none": add_hyp(engine, "Nothing shown", targets=["LRRK2"]),
    }
    add_run(engine, ids["model"], score=0.8, backend="openai", models=OPENAI_MODELS)
    add_run(engine, ids["offline"], score=0.7, backend="offline", models=offline_models)
    return ids


def test_score_rows_carry_method_and_models(engine) -> None:
    ids = _four_kinds(engine)
    local = add_hyp(engine, "Local model scored")
    add_run(
        engine, local, score=0.5, backend="local", models={"proposer": "qwen", "critic": "qwen", "judges": ["qwen"]}
    )
    with session_scope(engine) as s:
        rows = {r.id: r for r in score_rows(s)}
    assert (rows[ids["model"]].method, rows[ids["model"]].models) == ("model", ["gpt-x", "judge-y"])
    assert (rows[ids["offline"]].method, rows[ids["offline"]].models) == ("offline", ["offline-heuristic-v1"])
    assert (rows[ids["prior"]].method, rows[ids["prior"]].models) == ("prior", [])
    assert (rows[ids["none"]].method, rows[ids["none"]].models) == (None, [])
    assert (rows[local].method, rows[local].models) == ("model", ["qwen"])
    # The prior of a hypothesis scored here is not what it shows: the run's method is.
    assert rows[ids["offline"]].shown_score == 0.7
    assert {"method", "models"} <= set(ScoreRow.model_json_schema()["properties"])


def test_scores_json_and_cli_carry_the_labels(engine, cli_env) -> None:
    ids = _four_kinds(engine)
    with session_scope(engine) as s:
        text = scores_json(score_rows(s))
    printed = run_cli("scores", "--json", env=cli_env).stdout
    assert printed == text
    by_id = {r["id"]: r for r in json.loads(printed)}
    assert by_id[ids["model"]]["method"] == "model" and by_id[ids["model"]]["models"] == ["gpt-x", "judge-y"]
    assert by_id[ids["offline"]]["method"] == "offline"
    assert by_id[ids["prior"]]["method"] == "prior" and by_id[ids["prior"]]["models"] == []
    assert by_id[ids["none"]]["method"] is None


def _page(engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ingest(engine, tmp_path, {"lrrk2.txt": wiki_page("therapeutics-lrrk2", "LRRK2 Strategies", targets=("LRRK2",))})


def test_related_json_carries_method_and_methods_filter_lists(engine, tmp_path: Path, cli_env) -> None:
    _page(engine, tmp_path)
    ids = _four_kinds(engine)
    with session_scope(engine) as s:
        default = load_related(s, "therapeutics-lrrk2")
        no_offline = load_related(s, "therapeutics-lrrk2", methods=["model", "prior"])
        model_only = load_related(s, "therapeutics-lrrk2", methods=["model"])
    assert [(i.id, i.method) for i in default.items] == [
        (ids["model"], "model"),
        (ids["offline"], "offline"),
        (ids["prior"], "prior"),
    ]
    assert default.items[0].models == ["gpt-x", "judge-y"]
    item = json.loads(related_json(default))["items"][1]
    assert item["method"] == "offline" and item["models"] == ["offline-heuristic-v1"]
    # The offline-scored hypothesis is left out (its prior is not shown instead).
    assert [i.id for i in no_offline.items] == [ids["model"], ids["prior"]]
    assert [i.id for i in model_only.items] == [ids["model"]]
    # The wiki lines for the default settings: the wiki's own header, no label on any line.
    assert default.markdown == HEADER + "".join(
        f"- [{title}](/hypothesis/{ids[k]}) — {span(shown, colour)} · Target: LRRK2\n"
        for k, title, shown, colour in (
            ("model", "Model scored", "0.80", GREEN),
            ("offline", "Offline scored", "0.70", GREEN),
            ("prior", "Prior only", "0.60", YELLOW),
        )
    )
    assert "offline" not in default.markdown and "model" not in default.markdown.replace("Model scored", "")
    # [related] methods from the configuration reaches the CLI.
    env = dict(cli_env, DEBATE_RELATED__METHODS='["model", "prior"]')
    printed = json.loads(run_cli("related", "therapeutics-lrrk2", "--format", "json", env=env).stdout)
    assert [i["id"] for i in printed["items"]] == [ids["model"], ids["prior"]]


def test_export_counts_scores_by_method(engine, tmp_path: Path, cli_env) -> None:
    _page(engine, tmp_path)
    _four_kinds(engine)
    report = export(engine, tmp_path / "out", limit=10, methods=["model", "prior"])
    assert report.scores == {"model": 1, "offline": 1, "prior": 1}
    listed = json.loads((tmp_path / "out" / "related" / "therapeutics-lrrk2.json").read_text())
    assert [i["method"] for i in listed["items"]] == ["model", "prior"]
    written = json.loads((tmp_path / "out" / "scores.json").read_text())
    assert sorted(str(r["method"]) for r in written) == ["None", "model", "offline", "prior"]
    printed = run_cli("export", "--out", str(tmp_path / "out2"), env=cli_env).stdout
    assert "scores: 1 model, 1 offline, 1 prior" in printed


def test_related_items_carry_the_shown_runs_verified_rate(engine, tmp_path: Path) -> None:
    _page(engine, tmp_path)
    checked = add_hyp(engine, "Checked quotes", targets=["LRRK2"])
    insert_run(engine, checked, score=0.8, claims_verified=3, claims_cited=4)
    unchecked = add_hyp(engine, "Before quotes", targets=["LRRK2"])
    insert_run(engine, unchecked, score=0.7)
    with session_scope(engine) as s:
        items = {i.id: i for i in load_related(s, "therapeutics-lrrk2").items}
    assert items[checked].verified_rate == 0.75
    assert items[unchecked].verified_rate is None
