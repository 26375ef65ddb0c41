"""``X-Content-Type-Options: nosniff`` on every response: pages, JSON, Markdown, errors, 404s, 413s.

Without it a browser may sniff a JSON or Markdown reply holding KB text or a model's reply as
HTML and run what it finds. Wrapped around the whole app (outside Starlette's last-resort error
handler), so no response leaves without it.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_NAME = b"x-content-type-options"


class NoSniff:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_nosniff(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != _NAME]
                message["headers"] = [*headers, (_NAME, b"nosniff")]
            await send(message)

        await self.app(scope, receive, send_nosniff)
