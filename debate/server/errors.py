"""Every failure as one response: JSON with a ``message`` under ``/api``, an HTML page elsewhere.

Unknown ids are 404, bad input 422 (control characters included), missing credentials 401,
wrong ones 403, a body over its route's cap 413, a hypothesis already being debated 409, an
unreachable database or task queue 503. Anything else is a bug: 500, logged, never a traceback.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from debate.core.errors import DebateError, NotFoundError, StorageError, UserInputError
from debate.server.web.auth import AuthError
from debate.server.web.queries import ErrorBody
from debate.server.web.render import error_page
from debate.server.web.runner import QueueUnavailable, RunConflict

log = logging.getLogger("debate.server")


def is_api(request: Request) -> bool:
    return request.url.path.startswith("/api")


def error_response(
    request: Request,
    status: int,
    message: str,
    errors: list[dict[str, object]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """``message`` as the API's JSON error body, or as an HTML page outside ``/api``."""
    if not is_api(request):
        return error_page(request, status, message, headers=headers)
    body = ErrorBody(message=message, errors=errors).model_dump(exclude_none=True)
    return JSONResponse(body, status_code=status, headers=headers)


def auth_error(request: Request, exc: AuthError) -> Response:
    headers = {"WWW-Authenticate": 'Bearer realm="debate"'} if exc.status == 401 else None
    return error_response(request, exc.status, str(exc), headers=headers)


def status_of(exc: DebateError) -> int:
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, RunConflict):
        return 409
    if isinstance(exc, UserInputError):
        return 422
    if isinstance(exc, QueueUnavailable | StorageError):
        return 503
    return 500


def _validation_errors(exc: RequestValidationError) -> tuple[str, list[dict[str, object]]]:
    errors: list[dict[str, object]] = [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
        for e in exc.errors()
    ]
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    loc: list[str] = first["loc"]  # type: ignore[assignment]
    where = ".".join(p for p in loc if p not in ("body", "query", "path", "header"))
    msg = str(first["msg"]).removeprefix("Value error, ")
    return (f"{where}: {msg}" if where else msg), errors


def install_error_handlers(app: FastAPI) -> None:
    """Map every failure to a status and a JSON message (HTML under the UI)."""

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        message, errors = _validation_errors(exc)
        return error_response(request, 422, message, errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        # FastAPI's only 400 is a body it could not decode: bad input, like any other.
        status = 422 if exc.status_code == 400 else exc.status_code
        return error_response(request, status, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(AuthError)
    async def _auth(request: Request, exc: AuthError) -> Response:
        return auth_error(request, exc)

    @app.exception_handler(DebateError)
    async def _debate(request: Request, exc: DebateError) -> Response:
        text = str(exc).strip()
        return error_response(request, status_of(exc), text.splitlines()[0] if text else type(exc).__name__)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(request, 500, f"internal error ({type(exc).__name__}); see the server log")
