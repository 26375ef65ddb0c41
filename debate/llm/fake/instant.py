"""An in-process chat client answering like the fake server, to measure the engine on its own."""

from __future__ import annotations

import inspect
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from debate.llm.fake.schema import schema_responder
from debate.llm.fake.script import Responder
from debate.llm.fake.wire import completion_body

if TYPE_CHECKING:
    from pydantic import BaseModel

    from debate.core.calls import ChatMessage, Completion, PromptFit

    T = TypeVar("T", bound=BaseModel)


class InstantChatClient:
    """A :class:`debate.llm.client.ChatClient` that answers in-process, with no HTTP and no latency.

    It builds the request body an ``OpenAIChatClient`` with ``json_schema`` output would send
    and passes it to ``responder`` (default :func:`schema_responder`), so it measures what the
    engine costs without any model or transport. Usage is estimated as the fake server does;
    a reply that fails validation raises ``CompletionFailed`` (a responder is deterministic,
    so there is nothing to re-ask).
    """

    def __init__(self, responder: Responder | None = None, *, model: str = "instant") -> None:
        self.responder: Responder = responder or schema_responder
        self.model = model
        self.calls = 0
        # schema_responder's reply depends on the schema alone: build each one once.
        self._examples: dict[type[BaseModel], str] = {}

    async def complete(
        self,
        messages: list[ChatMessage],
        schema: type[T],
        *,
        model: str | None = None,
        sampling: Mapping[str, float | int] | None = None,
        role: str | None = None,
        fit: PromptFit | None = None,
    ) -> Completion[T]:
        """Answer ``messages`` with a reply validated as ``schema``."""
        # Imported here so the standalone server never loads the openai SDK.
        from datetime import UTC, datetime

        from pydantic import ValidationError

        from debate.core.calls import Attempt, Completion, CompletionFailed, Usage

        self.calls += 1
        model_name = model or self.model
        started_at = datetime.now(UTC)
        t0 = time.perf_counter()
        body = _request_body(model_name, messages, schema)
        content = await self._content(body, schema)
        counts = completion_body(body, content, usage=True)["usage"]
        attempt = Attempt(
            n=1,
            kind="first",
            started_at=started_at,
            latency_ms=(time.perf_counter() - t0) * 1000,
            outcome="ok",
            raw_reply=content,
            usage=Usage(**counts),
            cost_usd=None,
            model=model_name,
            messages_sent=len(messages),
        )
        try:
            parsed = schema.model_validate_json(content)
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            loc = ".".join(str(part) for part in err["loc"])
            first = f"{loc}: {err['msg']}" if loc else str(err["msg"])
            failed = attempt.model_copy(update={"outcome": "invalid_reply", "error": first})
            raise CompletionFailed(f"model reply failed validation after 0 re-asks: {first}", [failed]) from None
        return Completion(
            parsed=parsed,
            raw=content,
            attempts=[attempt],
            model=model_name,
            messages=list(messages),
        )

    async def _content(self, body: dict[str, Any], schema: type[BaseModel]) -> str:
        """The responder's reply to ``body`` (cached per schema for :func:`schema_responder`)."""
        if self.responder is schema_responder:
            if schema not in self._examples:
                self._examples[schema] = schema_responder(body)
            return self._examples[schema]
        produced = self.responder(body)
        return await produced if inspect.isawaitable(produced) else produced

    async def aclose(self) -> None:
        """Nothing to close; present for symmetry with ``OpenAIChatClient``."""


def _request_body(model: str, messages: list[ChatMessage], schema: type[BaseModel]) -> dict[str, Any]:
    """The body ``OpenAIChatClient`` would send for strict ``json_schema`` output."""
    from debate.llm.client import strict_json_schema  # lazily: it loads the openai SDK

    return {
        "model": model,
        "messages": [{"role": m.role, "content": m.content} for m in messages],
        "response_format": {
            "type": "json_schema",
            "json_schema": {
                "name": schema.__name__,
                "schema": strict_json_schema(schema),
                "strict": True,
            },
        },
    }
