"""Build a backend from settings: ``offline`` (embedded) or ``openai`` (any compatible endpoint)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from debate.core.config import Settings
from debate.core.errors import ConfigError
from debate.core.protocol import Backend
from debate.engine.agents import ModelBackend
from debate.llm.client import EndpointConfig, OpenAIChatClient
from debate.llm.prompts import current_hashes, prompts_dir
from debate.llm.ratelimit import SharedWindow, shared_limiter
from debate.store.db import is_sqlite


def endpoint_config(settings: Settings) -> EndpointConfig:
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
        temperature=o.temperature,
        max_output_tokens=o.max_output_tokens,
    )


def build_backend(settings: Settings, name: str | None = None) -> tuple[Backend, Callable[[], Awaitable[None]]]:
    """(backend, async close) for ``name`` (default: ``settings.backend``)."""
    name = name or settings.backend
    if name == "offline":
        from debate.offline import OfflineBackend

        async def _noop() -> None:
            return None

        return OfflineBackend(settings.rubric_model), _noop
    if name == "openai":
        cfg = endpoint_config(settings)
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
        client = OpenAIChatClient(cfg, limiter=limiter)
        backend = ModelBackend(
            client, model=o.model, role_models=dict(o.role_models), prompts_dir=prompts_dir(settings.prompts_dir)
        )
        return backend, client.aclose
    raise ConfigError(f"unknown backend {name!r} (expected offline or openai)")


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
