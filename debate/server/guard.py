"""The request guard: checks, authenticates and bounds a request before the app reads its body.

A pure ASGI middleware, so it runs before FastAPI parses anything. In order:

1. control characters in the path or query: 422 (no handler, no database sees them);
2. the route's body policy, declared beside the route with :func:`takes_body`; a route without
   one takes no body at all (a new route is closed until it says otherwise);
3. the policy's authorization (a reviewer's bearer token, a UI session) before a byte of the
   body is read, so an anonymous client cannot make the server buffer anything;
4. a declared ``Content-Length`` over the route's cap: 413 at once, the body unread;
5. the body read while it streams (chunked bodies too), stopping at the cap: 413;
6. control characters in the body's strings: 422. The app then gets the body from memory.

Refusals of a request that carries a body close the connection, so the server does not go on
reading (and discarding) what the client is still sending.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from debate.server.controls import body_problem, url_problem

Authorize = Callable[[Request], Awaitable[Response | None]]
"""Returns a refusal, or None to let the request (and its body) through."""
ErrorRenderer = Callable[[Request, int, str], Response]
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class BodyPolicy:
    """How much body a route takes, and who must be known before any of it is read."""

    max_bytes: int
    authorize: Authorize | None = None


NO_BODY = BodyPolicy(0)
_POLICY_ATTR = "__debate_body_policy__"


def takes_body(max_bytes: int, authorize: Authorize | None = None) -> Callable[[F], F]:
    """Mark a route's endpoint as taking a body of at most ``max_bytes``, after ``authorize``.

    Put it under the route decorator: ``@api.post(...)`` then ``@takes_body(...)``.
    """

    def mark(endpoint: F) -> F:
        setattr(endpoint, _POLICY_ATTR, BodyPolicy(max_bytes, authorize))
        return endpoint

    return mark


def flat_routes(routes: Sequence[BaseRoute]) -> list[Any]:
    """Every route of an app with its full path (``path``, ``methods``, ``endpoint``, ``matches``).

    FastAPI 0.16x keeps an included router as one wrapper in ``app.routes``; older versions
    copied its routes there.
    """
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # pragma: no cover - older FastAPI
        return list(routes)
    return list(iter_route_contexts(routes))


def route_policy(routes: Sequence[BaseRoute], scope: Scope) -> tuple[BodyPolicy, dict[str, Any]]:
    """The body policy of the route that will handle ``scope``, and the path parameters it matched."""
    for route in flat_routes(routes):
        match, child = route.matches(scope)
        if match is Match.FULL:
            policy = getattr(getattr(route, "endpoint", None), _POLICY_ATTR, None)
            return policy or NO_BODY, dict(child.get("path_params", {}))
    return NO_BODY, {}


class _TooLarge(Exception):
    pass


class _Disconnected(Exception):
    pass


async def read_capped(receive: Receive, cap: int) -> bytes:
    """The whole body, or :class:`_TooLarge` as soon as more than ``cap`` bytes have arrived."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > cap:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the app the body already read, then defers to the server."""
    sent = False

    async def again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again


def _too_large(cap: int) -> str:
    if cap == 0:
        return "this endpoint takes no request body"
    return f"request body too large: this endpoint takes at most {cap:,} bytes"


class RequestGuard:
    """See the module docstring. ``on_error`` renders a refusal (JSON under /api, else HTML)."""

    def __init__(self, app: ASGIApp, on_error: ErrorRenderer) -> None:
        self.app = app
        self.on_error = on_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})  # shared by every Request made from this scope
        try:
            refusal, body = await self._check(scope, receive)
        except _Disconnected:
            return
        if refusal is not None:
            await refusal(scope, receive, send)
        else:
            await self.app(scope, receive if body is None else _replay(body, receive), send)

    async def _check(self, scope: Scope, receive: Receive) -> tuple[Response | None, bytes | None]:
        request = Request(scope)
        headers = Headers(scope=scope)
        raw_length = headers.get("content-length", "").strip()
        if raw_length and not (raw_length.isascii() and raw_length.isdigit()):
            return _hang_up(self.on_error(request, 400, "the Content-Length header is not a number")), None
        declared = int(raw_length) if raw_length else None
        # A body still to come: a refusal closes the connection rather than let it be read.
        unread = bool(declared) or "transfer-encoding" in headers
        problem = url_problem(scope["path"], scope.get("query_string", b""))
        if problem is not None:
            return _hang_up(self.on_error(request, 422, problem), unread), None
        policy, path_params = route_policy(scope["app"].router.routes, scope)
        if policy.authorize is not None:
            refusal = await policy.authorize(Request({**scope, "path_params": path_params}))
            if refusal is not None:
                return _hang_up(refusal, unread), None
        if not unread:
            return None, None
        if declared is not None and declared > policy.max_bytes:
            return _hang_up(self.on_error(request, 413, _too_large(policy.max_bytes))), None
        try:
            body = await read_capped(receive, policy.max_bytes)
        except _TooLarge:
            return _hang_up(self.on_error(request, 413, _too_large(policy.max_bytes))), None
        problem = body_problem(headers.get("content-type", ""), body)
        if problem is not None:
            return self.on_error(request, 422, problem), None
        return None, body


def _hang_up(response: Response, unread: bool = True) -> Response:
    if unread:
        response.headers["Connection"] = "close"
    return response
