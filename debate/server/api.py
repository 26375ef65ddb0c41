"""The HTTP API and the reviewer UI in one FastAPI app: :func:`create_app`.

Reads need no credentials. Writes (queueing debates, reviewing runs) need a reviewer's bearer
token from ``DEBATE_REVIEWER_TOKENS``, so each one records who made it. Every error is JSON
with a ``message`` (HTML pages under ``/`` get an HTML page instead): unknown ids are 404, bad
input 422, missing credentials 401, wrong ones 403, a hypothesis already being debated 409.
``/api/scores.json`` and the related lists carry an ETag, so a poll that finds nothing changed
gets an empty 304.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPBearer
from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.exceptions import HTTPException as StarletteHTTPException

from debate import __version__
from debate.core.config import Settings
from debate.core.errors import DebateError, NotFoundError, StorageError, UserInputError
from debate.engine.transcript import Transcript, load_transcript, render
from debate.server.web import queries as q
from debate.server.web.auth import AuthError, ReviewerTokens
from debate.server.web.reviews import ReviewRequest, ReviewResult, record_review
from debate.server.web.runner import (
    Dispatcher,
    InProcessRunner,
    QueueDispatcher,
    QueuedRuns,
    QueueUnavailable,
    RunConflict,
    RunRequest,
    queue_debates,
)
from debate.store.db import ensure_schema, is_sqlite, session_scope
from debate.wiki.related import RelatedList, load_related, related_json
from debate.wiki.scores import ScoreRow, score_rows, scores_json

log = logging.getLogger("debate.server")

# ---------------------------------------------------------------- dependencies


def _engine(request: Request) -> Engine:
    return request.app.state.engine  # type: ignore[no-any-return]


def _session(request: Request) -> Iterator[Session]:
    with session_scope(request.app.state.engine) as s:
        yield s


EngineDep = Annotated[Engine, Depends(_engine)]
SessionDep = Annotated[Session, Depends(_session)]

_bearer = HTTPBearer(
    auto_error=False, scheme_name="reviewerToken", description="A reviewer token from DEBATE_REVIEWER_TOKENS."
)


def _reviewer(request: Request, _creds: Annotated[Any, Security(_bearer)]) -> str:
    # The raw header, not the parsed credentials: a malformed one deserves its own message.
    tokens: ReviewerTokens = request.app.state.tokens
    return tokens.require_bearer(request.headers.get("authorization"))


ReviewerDep = Annotated[str, Depends(_reviewer)]
Limit = Annotated[int, Query(ge=1, le=q.MAX_PAGE, description="Items per page.")]
Offset = Annotated[int, Query(ge=0, le=q.MAX_OFFSET, description="Items to skip.")]
IfNoneMatch = Annotated[str | None, Header(description="An ETag from an earlier reply; 304 when unchanged.")]


def _err(description: str) -> dict[str, Any]:
    return {"model": q.ErrorBody, "description": description}


BAD_INPUT = {422: _err("Bad input.")}
NOT_FOUND = {404: _err("Unknown id."), **BAD_INPUT}
AUTH = {401: _err("No reviewer token given."), 403: _err("Wrong token, or writes are disabled.")}
NOT_MODIFIED = {304: {"description": "Unchanged since the ETag given in If-None-Match."}}


# ---------------------------------------------------------------- ETags


def _etag(body: str) -> str:
    return '"' + hashlib.sha256(body.encode()).hexdigest()[:32] + '"'


def _etag_matches(header: str | None, tag: str) -> bool:
    if not header:
        return False
    given = [p.strip().removeprefix("W/") for p in header.split(",")]
    return "*" in given or tag in given


def etag_response(body: str, media_type: str, if_none_match: str | None) -> Response:
    """``body`` with its ETag, or an empty 304 when ``If-None-Match`` already names it."""
    tag = _etag(body)
    headers = {"ETag": tag, "Cache-Control": "no-cache"}
    if _etag_matches(if_none_match, tag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


# ---------------------------------------------------------------- routes

api = APIRouter(prefix="/api", tags=["api"])


@api.get("/hypotheses", response_model=q.HypothesisPage, responses=BAD_INPUT)
def list_hypotheses(
    s: SessionDep, filters: Annotated[q.HypothesisFilters, Query()], limit: Limit = 50, offset: Offset = 0
) -> q.HypothesisPage:
    """Hypotheses with their scores, filtered by target, disease, status or flag, paged."""
    return q.list_hypotheses(s, filters, limit=limit, offset=offset)


@api.get("/hypotheses/{hyp_id}", response_model=q.HypothesisDetail, responses=NOT_FOUND)
def get_hypothesis(s: SessionDep, hyp_id: str) -> q.HypothesisDetail:
    """One hypothesis: score, prior, agreement, interval, targets, history and runs."""
    return q.hypothesis_detail(s, hyp_id)


@api.get("/runs", response_model=q.RunPage, responses=BAD_INPUT)
def list_runs(
    s: SessionDep,
    hypothesis: Annotated[str | None, Query(max_length=100, description="Only runs of this hypothesis.")] = None,
    status: q.RunStatus | None = None,
    flagged: bool | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> q.RunPage:
    """Runs, newest first."""
    return q.list_runs(s, hypothesis=hypothesis, status=status, flagged=flagged, limit=limit, offset=offset)


@api.get("/runs/{run_id}", response_model=q.RunDetail, responses=NOT_FOUND)
def get_run(s: SessionDep, run_id: str) -> q.RunDetail:
    """One run: state, score, spend and review history."""
    return q.run_detail(s, run_id)


_TRANSCRIPT_MEDIA = {
    "md": "text/markdown; charset=utf-8",
    "text": "text/plain; charset=utf-8",
    "html": "text/html; charset=utf-8",
}


@api.get(
    "/runs/{run_id}/transcript",
    response_model=Transcript,
    responses={
        200: {"content": {m.split(";")[0]: {"schema": {"type": "string"}} for m in _TRANSCRIPT_MEDIA.values()}},
        **NOT_FOUND,
    },
)
def get_transcript(
    s: SessionDep,
    run_id: str,
    format: Annotated[Literal["json", "md", "text", "html"], Query(description="Rendering.")] = "json",
) -> Any:
    """A run's whole debate: evidence, rounds, judges, consensus, attempts, reviews."""
    tr = load_transcript(s, run_id)
    if format == "json":
        return tr
    headers = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"} if format == "html" else {}
    return Response(render(tr, format), media_type=_TRANSCRIPT_MEDIA[format], headers=headers)


@api.get(
    "/pages/{slug}/related",
    response_model=RelatedList,
    responses={200: {"content": {"text/markdown": {"schema": {"type": "string"}}}}, **NOT_MODIFIED, **NOT_FOUND},
)
def get_related(
    request: Request,
    s: SessionDep,
    slug: str,
    format: Annotated[Literal["json", "md"], Query(description="json, or md for the exact wiki lines.")] = "json",
    limit: Annotated[int | None, Query(ge=1, le=200, description="Scored lines at most.")] = None,
    if_none_match: IfNoneMatch = None,
) -> Any:
    """A KB page's Related Hypotheses list (the shared JSON, or the wiki's Markdown lines)."""
    rl = load_related(s, slug, limit=limit or request.app.state.settings.related.limit)
    if format == "md":
        return etag_response(rl.markdown, "text/markdown; charset=utf-8", if_none_match)
    return etag_response(related_json(rl), "application/json", if_none_match)


@api.get("/scores.json", response_model=list[ScoreRow], responses={**NOT_MODIFIED, **BAD_INPUT})
def get_scores(s: SessionDep, if_none_match: IfNoneMatch = None) -> Any:
    """Every hypothesis's shown score, exactly as ``debate scores --json``; ETag'd."""
    return etag_response(scores_json(score_rows(s)), "application/json", if_none_match)


@api.post(
    "/runs",
    status_code=202,
    response_model=QueuedRuns,
    responses={
        **AUTH,
        **NOT_FOUND,
        409: _err("A hypothesis is already being debated."),
        503: _err("Nothing can execute runs on this database, or it is unreachable."),
    },
)
def post_runs(request: Request, engine: EngineDep, by: ReviewerDep, body: RunRequest) -> QueuedRuns:
    """Queue debates of hypotheses (one queued or running run per hypothesis at a time)."""
    st = request.app.state
    return queue_debates(engine, st.settings, st.dispatcher, body, by=by, backends=st.backends)


@api.post("/runs/{run_id}/reviews", status_code=201, response_model=ReviewResult, responses={**AUTH, **NOT_FOUND})
def post_review(engine: EngineDep, by: ReviewerDep, run_id: str, body: ReviewRequest) -> ReviewResult:
    """Approve, comment on, flag (withhold its score) or clear a run, as the token's reviewer."""
    return record_review(engine, run_id, body, by=by)


# ---------------------------------------------------------------- errors


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api")


def _error(
    request: Request,
    status: int,
    message: str,
    errors: list[dict[str, object]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    if not _is_api(request):
        from debate.server.web.routes import error_page

        return error_page(request, status, message, headers=headers)
    body = q.ErrorBody(message=message, errors=errors).model_dump(exclude_none=True)
    return JSONResponse(body, status_code=status, headers=headers)


def _validation_errors(exc: RequestValidationError) -> tuple[str, list[dict[str, object]]]:
    errors = [
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
        return _error(request, 422, message, errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        # FastAPI's only 400 is a body it could not decode: bad input, like any other.
        status = 422 if exc.status_code == 400 else exc.status_code
        return _error(request, status, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(AuthError)
    async def _auth(request: Request, exc: AuthError) -> Response:
        headers = {"WWW-Authenticate": 'Bearer realm="debate"'} if exc.status == 401 else None
        return _error(request, exc.status, str(exc), headers=headers)

    @app.exception_handler(DebateError)
    async def _debate(request: Request, exc: DebateError) -> Response:
        if isinstance(exc, NotFoundError):
            status = 404
        elif isinstance(exc, RunConflict):
            status = 409
        elif isinstance(exc, UserInputError):
            status = 422
        elif isinstance(exc, QueueUnavailable | StorageError):
            status = 503
        else:
            status = 500
        return _error(request, status, str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _error(request, 500, f"internal error ({type(exc).__name__}); see the server log")


# ---------------------------------------------------------------- the app


def create_app(
    settings: Settings,
    *,
    dispatcher: Dispatcher | None = None,
    backends: Sequence[str] | None = None,
    run_concurrency: int = 2,
) -> FastAPI:
    """The API under ``/api`` and the reviewer UI under ``/``, over ``settings.database_url``.

    ``dispatcher`` executes queued runs; by default an in-process runner on SQLite and the
    task queue on PostgreSQL (jobs for ``debate worker``; the server runs no debate itself).
    ``backends`` limits which backends requests may choose (default: offline and openai).
    """
    engine = ensure_schema(settings.database_url)
    runner: InProcessRunner | None = None
    queue: QueueDispatcher | None = None
    if dispatcher is None:
        if is_sqlite(settings.database_url):
            dispatcher = runner = InProcessRunner(engine, settings, concurrency=run_concurrency)
        else:
            dispatcher = queue = QueueDispatcher(engine, settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if queue is not None:
            await asyncio.to_thread(queue.open)
        if runner is not None:
            n = await asyncio.to_thread(runner.recover)
            if n:
                log.info("resuming %d run(s) queued before the last stop", n)
        yield
        if runner is not None:
            await asyncio.to_thread(runner.close)
        if queue is not None:
            await asyncio.to_thread(queue.close)

    app = FastAPI(
        title="debate",
        version=__version__,
        lifespan=lifespan,
        summary="Multi-agent debate scores of therapeutic hypotheses; reviewer audit and flags.",
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.tokens = ReviewerTokens.from_settings(settings)
    app.state.dispatcher = dispatcher
    app.state.runner = runner
    app.state.backends = tuple(backends or ("offline", "openai"))
    install_error_handlers(app)
    app.include_router(api)

    from debate.server.web.routes import install_ui

    install_ui(app)
    return app
