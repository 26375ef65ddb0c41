"""Build a backend from settings: ``offline`` (embedded), ``openai`` (any compatible endpoint) or
``local`` (a llama.cpp server on a GGUF file, spoken to as an openai endpoint)."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from pathlib import Path

from debate.core.config import Settings, check_http_url
from debate.core.errors import ConfigError
from debate.core.protocol import Backend
from debate.engine.agents import ModelBackend
from debate.llm.client import EndpointConfig, OpenAIChatClient
from debate.llm.prompts import current_hashes, prompts_dir
from debate.llm.ratelimit import SharedWindow, shared_limiter
from debate.store.db import get_engine, is_sqlite
from debate.store.modes import DatabaseModes


def check_endpoint(settings: Settings) -> None:
    """Refuse an ``openai`` endpoint that cannot work, before any run is created for it.

    Without ``[openai] base_url`` the client falls back to ``OPENAI_BASE_URL`` (checked like the
    setting), and then to OpenAI's own API, which needs a key.
    """
    o = settings.openai
    if o.base_url:
        return
    env_url = os.environ.get("OPENAI_BASE_URL")
    if env_url:
        try:
            check_http_url(env_url, "http://127.0.0.1:8080/v1")
        except ValueError as e:
            raise ConfigError(f"bad setting OPENAI_BASE_URL: {e}") from None
    elif not (o.api_key or os.environ.get("OPENAI_API_KEY")):
        raise ConfigError(
            "no API key for OpenAI's API: set DEBATE_OPENAI__API_KEY (or OPENAI_API_KEY), "
            "or DEBATE_OPENAI__BASE_URL for a server that needs none"
        )


def endpoint_config(settings: Settings) -> EndpointConfig:
    check_endpoint(settings)
    o = settings.openai
    return EndpointConfig(
        base_url=o.base_url or None,
        api_key=o.api_key.get_secret_value() if o.api_key else None,
        model=o.model,
        structured_output=o.structured_output,
        timeout_s=o.timeout_s,
        max_transport_attempts=o.max_transport_attempts,
        max_reasks=o.max_reasks,
        prices={m: (p[0], p[1]) for m, p in o.prices.items()},
        sampling=o.sampling(),
        max_output_tokens=o.max_output_tokens,
        role_max_output_tokens=dict(o.role_max_output_tokens),
        idle_timeout_s=o.idle_timeout_s,
        total_timeout_s=o.total_timeout_s,
        context_tokens=o.context_tokens,
    )


def build_backend(settings: Settings, name: str | None = None) -> tuple[Backend, Callable[[], Awaitable[None]]]:
    """(backend, async close) for ``name`` (default: ``settings.backend``)."""
    name = name or settings.backend
    if name == "offline":
        from debate.offline import OfflineBackend

        async def _noop() -> None:
            return None

        return OfflineBackend(settings.rubric_model), _noop
    if name == "local":
        return _local_backend(settings)
    if name == "openai":
        return _model_backend(settings)
    raise ConfigError(f"unknown backend {name!r} (expected offline, openai or local)")


def _model_backend(
    settings: Settings, *, grammar_bounds: bool = False, name: str = "openai"
) -> tuple[Backend, Callable[[], Awaitable[None]]]:
    cfg = endpoint_config(settings).model_copy(update={"grammar_bounds": grammar_bounds})
    o = settings.openai
    key = cfg.base_url or "default"
    limiter = shared_limiter(
        key,
        o.max_concurrency,
        o.rpm or None,
        o.tpm or None,
        window_s=o.rate_window_s,
        shared=shared_window(settings, key),
    )
    # structured_output = "auto": found once per endpoint and model, shared through the database.
    client = OpenAIChatClient(cfg, limiter=limiter, modes=DatabaseModes(get_engine(settings.database_url)))
    backend = ModelBackend(
        client,
        model=o.model,
        role_models=dict(o.role_models),
        role_sampling=o.role_sampling,
        prompts_dir=prompts_dir(settings.prompts_dir),
        name=name,
    )
    return backend, client.aclose


def local_settings(settings: Settings, base_url: str, model: str) -> Settings:
    """``settings`` with the openai endpoint pointed at a local llama.cpp server.

    Concurrency is capped at the server's slots (more requests would only queue there, holding
    a connection each), replies stream with ``[local] idle_timeout_s``, and the model costs
    nothing per token.
    """
    o = settings.openai
    local = o.model_copy(
        update={
            "base_url": base_url,
            "api_key": None,
            "model": model,
            "role_models": {},
            "judge_models": [],
            "max_concurrency": min(o.max_concurrency, settings.local.parallel),
            "idle_timeout_s": settings.local.idle_timeout_s,
            "rpm": 0,
            "tpm": 0,
            "prices": {model: [0.0, 0.0]},
        }
    )
    return settings.model_copy(update={"openai": local})


def _local_backend(settings: Settings) -> tuple[Backend, Callable[[], Awaitable[None]]]:
    """The openai backend on a llama.cpp server: ``[local] base_url``, or one started until close."""
    from debate.llm.local import local_server, served_model

    stack = ExitStack()
    if settings.local.base_url:
        base_url, model = settings.local.base_url, served_model(settings.local.base_url)
    else:
        server = stack.enter_context(local_server(settings.local))
        base_url, model = server.base_url, server.model
    try:
        backend, close_client = _model_backend(
            local_settings(settings, base_url, model), grammar_bounds=True, name="local"
        )
    except BaseException:
        stack.close()
        raise

    async def close() -> None:
        try:
            await close_client()
        finally:
            stack.close()

    return backend, close


def shared_window(settings: Settings, key: str) -> Callable[[], SharedWindow] | None:
    """The factory of endpoint ``key``'s cross-process rpm / tpm window, if one is wanted.

    Only on PostgreSQL: there queue workers and rescoring processes on any machine share the
    endpoint. With SQLite one machine does the work and the in-process limiter suffices.
    """
    o = settings.openai
    if o.shared_limits == "off" or is_sqlite(settings.database_url) or not (o.rpm or o.tpm):
        return None

    def build() -> SharedWindow:
        from debate.llm.shared_window import DatabaseWindow

        return DatabaseWindow(
            settings.database_url, key, rpm=o.rpm or None, tpm=o.tpm or None, window_s=o.rate_window_s
        )

    return build


def backend_models(settings: Settings, name: str, n_judges: int) -> dict[str, object]:
    """Which model plays each role, as recorded on the run."""
    if name == "offline":
        return {
            "proposer": "offline-heuristic-v1",
            "critic": "offline-heuristic-v1",
            "judges": ["offline-heuristic-v1"] * n_judges,
        }
    if name == "local":
        from debate.llm.local import local_model_name

        model = local_model_name(settings.local)
        return {"proposer": model, "critic": model, "judges": [model] * n_judges, "base_url": "local"}
    o = settings.openai
    judges = o.judge_models or [o.role_models.get("judge", o.model)]
    return {
        "proposer": o.role_models.get("proposer", o.model),
        "critic": o.role_models.get("critic", o.model),
        "judges": [judges[i % len(judges)] for i in range(n_judges)],
        "base_url": o.base_url,
    }


def prompt_hashes(settings: Settings, name: str) -> dict[str, str]:
    """Hashes of the prompts (or offline rules) a run uses; rescoring compares them."""
    if name == "offline":
        from debate.offline import RULES_HASH

        return {"offline": RULES_HASH}
    return current_hashes(Path(prompts_dir(settings.prompts_dir)))
