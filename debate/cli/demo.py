"""`debate demo`: the main job on the embedded default, against a fresh demo database."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from debate.cli.app import app, console, out, rich_escape, state
from debate.cli.tables import print_table
from debate.core.redact import redact

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
SAMPLE_KB = DATA_DIR / "kb"
SAMPLE_HYPOTHESES = DATA_DIR / "hypotheses.yaml"
DEMO_PAGE = "therapeutics-als-therapy-landscape"


@app.command()
def demo(
    database_url: Annotated[str, typer.Option("--db", help="Demo database (recreated).")] = "sqlite:///runs/demo.db",
) -> None:
    """Ingest the bundled sample KB and hypotheses into a fresh database, debate them offline,
    and print their scores and one page's Related Hypotheses lines."""
    from debate.cli.runs import run_and_report, score_table
    from debate.engine.runs import create_runs
    from debate.kb.hypotheses import import_file
    from debate.kb.ingest import ingest_paths
    from debate.store.db import get_engine, sqlite_path

    path = sqlite_path(database_url)
    if path is None:
        raise typer.BadParameter("the demo needs a SQLite file URL", param_hint="--db")
    get_engine.cache_clear()
    for p in (path, path.with_suffix(".checkpoints.sqlite")):
        for f in (p, Path(f"{p}-wal"), Path(f"{p}-shm")):
            f.unlink(missing_ok=True)
    state.overrides = {**state.overrides, "database_url": database_url, "backend": "offline"}
    state._settings = None
    console.print(f"[dim]database: {rich_escape(redact(database_url))} (recreated)[/dim]")
    engine = state.engine()
    report = ingest_paths(engine, [SAMPLE_KB])
    ids = import_file(engine, SAMPLE_HYPOTHESES)
    out.print(
        f"KB: {report.pages_seen} pages ingested ({report.hypotheses_imported} hypotheses imported from "
        f"their Related sections); {len(ids)} sample hypotheses loaded"
    )
    run_ids = create_runs(engine, state.settings, ids, backend="offline", trigger="demo")
    outcomes = run_and_report(run_ids, "offline", concurrency=4, quiet=True)
    out.print(f"Debated {len(outcomes)} hypotheses offline (deterministic heuristic agents, no model):")
    print_table(out, score_table(sorted(outcomes, key=lambda o: o.hypothesis_id)), flex=("title",))
    from debate.store.db import session_scope
    from debate.wiki.related import load_related

    with session_scope(engine) as s:
        related = load_related(s, DEMO_PAGE, limit=state.settings.related.limit, methods=state.settings.related.methods)
    out.print(f"\nRelated Hypotheses for {DEMO_PAGE}:\n")
    print(related.markdown, end="")
