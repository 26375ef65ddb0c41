"""What an endpoint can do, found by asking it: models, structured output, context, speed.

``debate model check`` prints this. Each structured-output mode is tried with a tiny schema,
strictest first (``json_schema``, then ``json_object``, then instructions in the prompt), so a
server that answers ``json_schema`` with an error (llama-cpp-python's) is found out here, not
in the middle of a debate.
"""

from __future__ import annotations

import time
from typing import Any

import openai
from pydantic import BaseModel, Field

from debate.core.calls import Completion, CompletionFailed
from debate.llm.client import EndpointConfig, OpenAIChatClient
from debate.llm.local import get_json
from debate.llm.modes import MODES, Mode, ModeResult, try_mode


class EndpointReport(BaseModel):
    """What ``debate model check`` found."""

    base_url: str
    reachable: bool
    models: list[str] = Field(default_factory=list)
    structured_output: Mode | None = Field(None, description="The strictest mode that produced a valid reply.")
    modes: list[ModeResult] = Field(default_factory=list)
    context_tokens: int | None = Field(None, description="Per request (llama.cpp /props), else the configured value.")
    served_model: str | None = Field(None, description="The model the server says answered.")
    prompt_tokens_per_s: float | None = None
    completion_tokens_per_s: float | None = None
    error: str | None = None


async def _list_models(cfg: EndpointConfig, client: OpenAIChatClient) -> list[str]:
    sdk = openai.AsyncOpenAI(api_key=client._api_key, base_url=client.base_url, timeout=cfg.timeout_s, max_retries=0)
    try:
        page = await sdk.models.list()
        return [m.id for m in page.data]
    finally:
        await sdk.close()


def _props_context(base_url: str) -> int | None:
    """llama.cpp's per-slot context from ``/props``; None for servers without it."""
    try:
        props = get_json(base_url.rstrip("/").removesuffix("/v1") + "/props")
        n_ctx = props["default_generation_settings"]["n_ctx"]
        return int(n_ctx) if n_ctx else None
    except Exception:  # any other server: no /props, or a different shape
        return None


async def _try_mode(cfg: EndpointConfig, mode: Mode, report: EndpointReport) -> bool:
    config = cfg.model_copy(update={"max_reasks": 0, "max_transport_attempts": 1})
    started = time.perf_counter()
    try:
        result, done = await try_mode(
            lambda m: OpenAIChatClient(config.model_copy(update={"structured_output": m})), mode
        )
    except CompletionFailed as e:  # the endpoint is down: no mode can work
        report.modes.append(ModeResult(mode=mode, ok=False, error=str(e)))
        return False
    seconds = time.perf_counter() - started
    report.modes.append(result)
    if not isinstance(done, Completion):
        return False
    attempt = done.attempts[-1]
    report.served_model = attempt.served_model
    if attempt.usage.completion_tokens and seconds > 0:
        report.completion_tokens_per_s = round(attempt.usage.completion_tokens / seconds, 1)
    return True


async def _speed(cfg: EndpointConfig, report: EndpointReport) -> None:
    """Prompt tokens per second from a longer prompt and a one-token reply."""
    client = OpenAIChatClient(cfg.model_copy(update={"max_output_tokens": 1, "max_transport_attempts": 1}))
    text = "Evidence is read before it is argued. " * 60
    started = time.perf_counter()
    try:
        response: Any = await client._post([{"role": "user", "content": text}], {"model": cfg.model, "max_tokens": 1})
    except openai.APIError:
        return
    finally:
        await client.aclose()
    seconds = time.perf_counter() - started
    usage = getattr(response, "usage", None)
    if usage is not None and usage.prompt_tokens and seconds > 0:
        report.prompt_tokens_per_s = round(usage.prompt_tokens / seconds, 1)


async def check_endpoint(cfg: EndpointConfig, *, context_tokens: int = 0) -> EndpointReport:
    """Probe ``cfg``'s endpoint: reachable, models, the structured-output mode that works, context, speed."""
    probe = OpenAIChatClient(cfg)
    report = EndpointReport(base_url=probe.base_url, reachable=False)
    try:
        report.models = await _list_models(cfg, probe)
        report.reachable = True
    except openai.APIConnectionError as e:
        report.error = f"model endpoint {probe.base_url} unreachable: {' '.join(str(e.__cause__ or e).split())}"
        return report
    except openai.APIError as e:  # some servers do not list models; the chat probe decides
        report.reachable = True
        report.error = f"model list unavailable: {' '.join(str(e).split())[:200]}"
    finally:
        await probe.aclose()
    for mode in MODES:
        if await _try_mode(cfg, mode, report):
            report.structured_output = mode
            break
    report.context_tokens = _props_context(report.base_url) or (context_tokens or None)
    if report.structured_output is not None:
        await _speed(cfg, report)
    return report
