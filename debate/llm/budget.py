"""Fitting a request into its endpoint's context window.

A request fits when its prompt plus the reply it may produce (the role's output cap, and room
for one re-ask) stays inside the window. The window is llama.cpp's per-slot ``n_ctx`` from
``/props``, probed once per endpoint, or ``[openai] context_tokens`` (the smaller when both are
known); with neither, nothing is counted and nothing trimmed. Prompts are counted by the
server's own ``/tokenize`` where it has one, else estimated on the high side, so a prompt
judged to fit does fit.

:meth:`ContextBudget.fit` walks the prompt's variants from the full one down (the engine makes
them: lowest-ranked evidence dropped first, then earlier rounds cut to their claims) and takes
the first that fits; when even the smallest does not, the request fails with one line naming
the window and the size needed, before anything is sent.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

import httpx2

from debate.core.calls import ChatMessage, CompletionFailed, PromptFit, PromptVariant

# Characters per token assumed when the server cannot count: low on purpose (SmolLM2 cuts gene
# symbols and ids into ~2.5-character pieces, English prose runs 4+), so estimates run high.
ESTIMATE_CHARS_PER_TOKEN = 2.7
# Tokens a chat template adds around each message (role markers, separators) and before the
# reply; llama.cpp's ChatML adds 5 per message and 3 for the reply, OpenAI's 3 to 4.
MESSAGE_OVERHEAD_TOKENS = 8
_PROBE_TIMEOUT_S = 5.0


def estimate_prompt_tokens(messages: list[ChatMessage]) -> int:
    """A high estimate of a prompt's tokens, for when the server has no tokenizer to ask."""
    chars = sum(len(m.content) for m in messages)
    return math.ceil(chars / ESTIMATE_CHARS_PER_TOKEN) + MESSAGE_OVERHEAD_TOKENS * (len(messages) + 1)


def server_root(base_url: str) -> str:
    """Where llama.cpp's own routes (``/props``, ``/tokenize``) live: the base URL without ``/v1``."""
    return base_url.rstrip("/").removesuffix("/v1")


@dataclass(frozen=True)
class Window:
    """An endpoint's context window as found: tokens per request, and whether it can count."""

    tokens: int | None
    source: Literal["server", "configured"] | None
    tokenizer: bool


class ContextBudget:
    """One endpoint's window and token counter; probes the server once, on first use."""

    def __init__(self, base_url: str, *, configured: int = 0, headers: dict[str, str] | None = None) -> None:
        self.base_url = base_url
        self.configured = configured
        self._headers = headers or {}
        self._window: Window | None = None
        self._lock = asyncio.Lock()
        self._http: httpx2.AsyncClient | None = None

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def _client(self) -> httpx2.AsyncClient:
        if self._http is None:
            self._http = httpx2.AsyncClient(timeout=_PROBE_TIMEOUT_S, headers=self._headers)
        return self._http

    async def window(self) -> Window:
        """The window, probed once: ``/props`` for the size, ``/tokenize`` for counting."""
        if self._window is None:
            async with self._lock:
                if self._window is None:
                    self._window = await self._probe()
        return self._window

    async def _probe(self) -> Window:
        root = server_root(self.base_url)
        served: int | None = None
        try:
            response = await self._client().get(f"{root}/props")
            if response.status_code == 200:
                n_ctx = response.json()["default_generation_settings"]["n_ctx"]
                served = int(n_ctx) if n_ctx else None
        except (httpx2.HTTPError, ValueError, KeyError, TypeError):
            served = None  # not llama.cpp: no /props, or another shape
        known = [n for n in (served, self.configured or None) if n]
        if not known:
            return Window(None, None, False)
        source: Literal["server", "configured"] = "server" if served and served == min(known) else "configured"
        return Window(min(known), source, await self._count_remote("probe") is not None)

    async def _count_remote(self, text: str) -> int | None:
        try:
            response = await self._client().post(f"{server_root(self.base_url)}/tokenize", json={"content": text})
            if response.status_code != 200:
                return None
            tokens = response.json()["tokens"]
            return len(tokens) if isinstance(tokens, list) else None
        except (httpx2.HTTPError, ValueError, KeyError, TypeError):
            return None

    async def count(self, messages: list[ChatMessage]) -> tuple[int, bool]:
        """(prompt tokens, counted by the server's tokenizer) for ``messages``."""
        window = await self.window()
        if window.tokenizer:
            counted = await self._count_remote("\n".join(m.content for m in messages))
            if counted is not None:
                return counted + MESSAGE_OVERHEAD_TOKENS * (len(messages) + 1), True
        return estimate_prompt_tokens(messages), False

    async def fit(
        self,
        variants: Iterable[PromptVariant],
        *,
        prepare: Callable[[list[ChatMessage]], list[ChatMessage]],
        reply_tokens: int,
        what: str,
    ) -> tuple[PromptVariant, PromptFit | None]:
        """The first variant whose prompt (as ``prepare`` makes it) plus ``reply_tokens`` fits.

        Variants are made lazily and counted largest first, so an untrimmed prompt that fits
        costs one count. Raises :class:`CompletionFailed` (no attempts: nothing was sent) when
        the smallest does not fit.
        """
        window = await self.window()
        items = iter(variants)
        first = next(items)
        if window.tokens is None or window.source is None:
            return first, None
        full: int | None = None
        needed = 0
        for variant in itertools.chain([first], items):
            tokens, exact = await self.count(prepare(variant.messages))
            full = tokens if full is None else full
            needed = tokens + reply_tokens
            if needed <= window.tokens:
                return variant, PromptFit(
                    window=window.tokens,
                    window_source=window.source,
                    prompt_tokens=tokens,
                    full_prompt_tokens=full,
                    reply_tokens=reply_tokens,
                    counted="tokenizer" if exact else "estimate",
                    evidence_dropped=list(variant.evidence_dropped),
                    rounds_shortened=list(variant.rounds_shortened),
                )
        setting = "set by the server" if window.source == "server" else "[openai] context_tokens"
        raise CompletionFailed(
            f"the {what} prompt does not fit the context window of {self.base_url}: even trimmed it needs "
            f"{needed:,} tokens ({needed - reply_tokens:,} prompt + {reply_tokens:,} reply) but the window is "
            f"{window.tokens:,} tokens ({setting})"
        )
