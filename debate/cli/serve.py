"""`debate serve`: the HTTP API and the reviewer UI."""

from __future__ import annotations

from typing import Annotated

import typer

from debate.cli.app import announce_db, app, console, state


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")] = 8000,
) -> None:
    """Serve the read API, review writes and the reviewer web UI (OpenAPI schema at /api/openapi.json)."""
    import uvicorn

    from debate.server.api import create_app

    announce_db()
    application = create_app(state.settings)
    reviewers = sorted(application.state.tokens.tokens)
    if reviewers:
        console.print(f"[dim]reviewers: {', '.join(reviewers)}[/dim]")
    else:
        console.print(
            "[yellow]writes disabled:[/yellow] set DEBATE_REVIEWER_TOKENS to a JSON object of reviewer name -> token"
        )
    console.print(f"reviewer UI: http://{host}:{port}/  ·  API schema: http://{host}:{port}/api/openapi.json")
    uvicorn.run(application, host=host, port=port, log_level="info")
