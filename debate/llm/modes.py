"""Which structured-output mode an endpoint takes, found by asking it, and remembered.

With ``structured_output = "auto"`` the first call for a model asks a tiny yes/no question in
each mode, strictest first: ``json_schema`` (a strict schema in ``response_format``), then
``json_object``, then ``prompt`` (the schema in the instructions). The first mode that returns
a valid reply is used and remembered per endpoint and model in a :class:`ModeCache` (the
database, in the engine), so later runs ask nothing. A call that fails in a remembered mode
forgets it, so the next run asks again: a server swapped behind the same URL is found out.

llama-cpp-python's server, for one, answers ``json_schema`` with HTTP 500; it settles on
``json_object`` without any configuration.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, Protocol

import openai
from pydantic import BaseModel, Field

from debate.core.calls import ChatMessage, CompletionFailed

Mode = Literal["json_schema", "json_object", "prompt"]
MODES: tuple[Mode, ...] = ("json_schema", "json_object", "prompt")


class ModeCache(Protocol):
    """Where the mode found for an (endpoint, model) is kept between runs."""

    def get(self, base_url: str, model: str) -> str | None: ...

    def put(self, base_url: str, model: str, mode: str) -> None: ...

    def forget(self, base_url: str, model: str) -> None: ...


class MemoryModes:
    """A :class:`ModeCache` for one process (the engine keeps its answers in the database)."""

    def __init__(self) -> None:
        self._modes: dict[tuple[str, str], str] = {}

    def get(self, base_url: str, model: str) -> str | None:
        return self._modes.get((base_url, model))

    def put(self, base_url: str, model: str, mode: str) -> None:
        self._modes[(base_url, model)] = mode

    def forget(self, base_url: str, model: str) -> None:
        self._modes.pop((base_url, model), None)


class ModeProbe(BaseModel):
    answer: Literal["yes", "no"] = Field(description="yes or no")


QUESTION = [
    ChatMessage(role="system", content="You answer with a JSON object only."),
    ChatMessage(role="user", content='Is the sky blue on a clear day? Reply {"answer": "yes"} or {"answer": "no"}.'),
]


class ModeResult(BaseModel):
    mode: Mode
    ok: bool
    error: str | None = None


class _Asker(Protocol):
    async def complete(self, messages: list[ChatMessage], schema: type[ModeProbe]) -> object: ...

    async def aclose(self) -> None: ...


def endpoint_is_down(exc: CompletionFailed) -> bool:
    """True when no mode could work: unreachable, or the key or model refused."""
    cause = exc.__cause__
    if isinstance(cause, openai.APIConnectionError):
        return True
    return isinstance(cause, openai.APIStatusError) and cause.status_code in (401, 403, 404)


async def try_mode(client_for: Callable[[Mode], _Asker], mode: Mode) -> tuple[ModeResult, object | None]:
    """Ask :data:`QUESTION` in ``mode``: (the result, the completion when it worked).

    Raises :class:`CompletionFailed` when the endpoint itself is down (no other mode would work).
    """
    client = client_for(mode)
    try:
        done = await client.complete(QUESTION, ModeProbe)
    except CompletionFailed as e:
        if endpoint_is_down(e):
            raise
        return ModeResult(mode=mode, ok=False, error=str(e)), None
    finally:
        await client.aclose()
    return ModeResult(mode=mode, ok=True), done


async def detect_mode(client_for: Callable[[Mode], _Asker], *, where: str) -> Mode:
    """The strictest mode that answers ``where``; :class:`CompletionFailed` when none does."""
    errors: list[str] = []
    for mode in MODES:
        result, _ = await try_mode(client_for, mode)
        if result.ok:
            return mode
        errors.append(f"{mode}: {result.error}")
    raise CompletionFailed(
        f"model endpoint {where} gave no valid reply in any structured-output mode ({errors[0]})", []
    )
