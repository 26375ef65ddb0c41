"""The run commands as a user meets them: progress and a score table, review flags that withhold
scores, cancel, and one-line errors for unknown ids."""

from __future__ import annotations

import json

from conftest import run_cli


def test_run_prints_progress_per_turn_and_a_score_table(sample_engine, cli_env):
    proc = run_cli("run", "h-9878fd9b", env=cli_env)
    assert "round 1 proposer" in proc.stderr and "round 1 critic" in proc.stderr
    assert "judge 2" in proc.stderr
    assert "h-9878fd9b" in proc.stdout and "done" in proc.stdout
    assert proc.stderr.splitlines()[0].startswith("database: ")


def test_unknown_ids_are_one_line_errors(sample_engine, cli_env):
    for args in (
        ("run", "h-deadbeef"),
        ("transcript", "r-nope"),
        ("runs", "show", "r-nope"),
        ("review", "r-nope", "--flag"),
        ("hypotheses", "show", "h-00000000"),
    ):
        proc = run_cli(*args, env=cli_env, check=False)
        assert proc.returncode == 2, args
        assert proc.stderr.strip().splitlines()[-1].startswith("error: "), args
        assert "Traceback" not in proc.stderr


def test_a_flagged_run_has_its_score_withheld_and_the_previous_one_stands(sample_engine, cli_env):
    first = json.loads(run_cli("run", "h-1c05c34d", "--json", env=cli_env).stdout)[0]
    second = json.loads(run_cli("run", "h-1c05c34d", "--rounds", "1", "--json", env=cli_env).stdout)[0]

    def shown() -> dict:  # type: ignore[type-arg]
        rows = json.loads(run_cli("scores", "--json", env=cli_env).stdout)
        return next(r for r in rows if r["id"] == "h-1c05c34d")

    assert shown()["last_run"] == second["run_id"]
    run_cli("review", second["run_id"], "--flag", "--note", "cites the wrong trial", "--by", "ana", env=cli_env)
    row = shown()
    assert row["last_run"] == first["run_id"] and row["score"] == first["score"]
    run_cli("review", second["run_id"], "--clear", "--by", "ana", env=cli_env)
    assert shown()["last_run"] == second["run_id"]
    transcript = run_cli("transcript", second["run_id"], "--format", "md", env=cli_env).stdout
    assert "ana" in transcript and "cites the wrong trial" in transcript


def test_a_queued_run_can_be_cancelled_and_is_then_refused(sample_engine, cli_env, db_url):
    from debate.core.config import load_settings
    from debate.engine.runs import create_runs

    [run_id] = create_runs(sample_engine, load_settings(database_url=db_url), ["h-9878fd9b"], backend="offline")
    assert "cancelled" in run_cli("runs", "cancel", run_id, env=cli_env).stdout
    proc = run_cli("run", "--resume", run_id, env=cli_env, check=False)
    assert proc.returncode == 2 and "cancelled" in proc.stderr
    listed = json.loads(run_cli("runs", "list", "--status", "cancelled", "--json", env=cli_env).stdout)
    assert [r["id"] for r in listed] == [run_id]


def test_every_transcript_format_renders(sample_engine, cli_env):
    run_id = json.loads(run_cli("run", "h-3893b013", "--json", env=cli_env).stdout)[0]["run_id"]
    for fmt in ("text", "md", "json", "html"):
        out = run_cli("transcript", run_id, "--format", fmt, env=cli_env).stdout
        assert "h-3893b013" in out
    data = json.loads(run_cli("transcript", run_id, "--format", "json", env=cli_env).stdout)
    assert data["run"]["id"] == run_id and len(data["judges"]) == 3
