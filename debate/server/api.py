"""The HTTP API and the reviewer UI in one FastAPI app: :func:`create_app`.

Reads need no credentials. Writes (queueing debates, reviewing runs) need a reviewer's bearer
token from ``DEBATE_REVIEWER_TOKENS``, so each one records who made it; the token is checked,
and the body bounded, before a byte of the body is read (:mod:`debate.server.guard`). Every
error is JSON with a ``message`` (pages under ``/`` get an HTML page instead; see
:mod:`debate.server.errors`). ``/api/scores.json`` and the related lists carry an ETag, so a
poll that finds nothing changed gets an empty 304. The OpenAPI schema is ``/api/openapi.json``;
no interactive docs are served (they would load scripts from a CDN on the reviewer UI's origin).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Header, Path, Query, Request, Security
from fastapi.responses import Response
from fastapi.security import HTTPBearer
from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.types import ASGIApp

from debate import __version__
from debate.core.config import Settings
from debate.engine.transcript import Transcript, load_transcript, render
from debate.server.admission import Admission, Gate
from debate.server.controls import NO_CONTROL
from debate.server.errors import auth_error, error_response, install_error_handlers
from debate.server.guard import RequestGuard, takes_body
from debate.server.nosniff import NoSniff
from debate.server.web import queries as q
from debate.server.web.auth import AuthError, ReviewerTokens
from debate.server.web.reviews import ReviewRequest, ReviewResult, record_review
from debate.server.web.routes import install_ui
from debate.server.web.runner import (
    Dispatcher,
    InProcessRunner,
    QueueDispatcher,
    QueuedRuns,
    RunRequest,
    queue_debates,
)
from debate.server.web.sessions import SessionStore
from debate.store.db import PoolOptions, ensure_schema, is_sqlite, session_scope
from debate.wiki.related import RelatedList, load_related, related_json
from debate.wiki.scores import ScoreRow, score_rows, scores_json

log = logging.getLogger("debate.server")

# ---------------------------------------------------------------- dependencies


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def _session(request: Request) -> Iterator[Session]:
    with session_scope(request.app.state.engine) as s:
        yield s


EngineDep = Annotated[Engine, Depends(_engine)]
# Closed before the response is sent: its connection goes back to the pool with its slot.
SessionDep = Annotated[Session, Depends(_session, scope="function")]

_bearer = HTTPBearer(
    auto_error=False, scheme_name="reviewerToken", description="A reviewer token from DEBATE_REVIEWER_TOKENS."
)


def _reviewer(request: Request, _creds: Annotated[Any, Security(_bearer)]) -> str:
    # The raw header, not the parsed credentials: a malformed one deserves its own message.
    tokens: ReviewerTokens = request.app.state.tokens
    return tokens.require_bearer(request.headers.get("authorization"))


async def _bearer_first(request: Request) -> Response | None:
    """The request guard's check of API writes: a known reviewer's token before the body is read."""
    try:
        request.app.state.tokens.require_bearer(request.headers.get("authorization"))
    except AuthError as e:
        return auth_error(request, e)
    return None


ReviewerDep = Annotated[str, Depends(_reviewer)]
Limit = Annotated[int, Query(ge=1, le=q.MAX_PAGE, description="Items per page.")]
Offset = Annotated[int, Query(ge=0, le=q.MAX_OFFSET, description="Items to skip.")]
IfNoneMatch = Annotated[str | None, Header(description="An ETag from an earlier reply; 304 when unchanged.")]
HypId = Annotated[str, Path(max_length=200, pattern=NO_CONTROL, description="A hypothesis id.")]
RunId = Annotated[str, Path(max_length=200, pattern=NO_CONTROL, description="A run id.")]
Slug = Annotated[str, Path(max_length=200, pattern=NO_CONTROL, description="A KB page's slug.")]
# Body caps. Runs: 100 ids at most, about 1.5 KB of JSON. Reviews: a 4,000-character note is
# 48 KB at worst (\ud83d\ude00 escapes: 12 bytes per character).
RUNS_MAX = 16 * 1024
REVIEW_MAX = 64 * 1024


Responses = dict[int | str, dict[str, Any]]


def _err(description: str) -> dict[str, Any]:
    return {"model": q.ErrorBody, "description": description}


BAD_INPUT: Responses = {422: _err("Bad input.")}
NOT_FOUND: Responses = {404: _err("Unknown id."), **BAD_INPUT}
AUTH: Responses = {
    401: _err("No reviewer token given."),
    403: _err("Wrong token, or writes are disabled."),
    413: _err("Request body too large."),
}
NOT_MODIFIED: Responses = {304: {"description": "Unchanged since the ETag given in If-None-Match."}}


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
def get_hypothesis(s: SessionDep, hyp_id: HypId) -> q.HypothesisDetail:
    """One hypothesis: score, prior, agreement, interval, targets, history and runs."""
    return q.hypothesis_detail(s, hyp_id)


@api.get("/runs", response_model=q.RunPage, responses=BAD_INPUT)
def list_runs(
    s: SessionDep,
    hypothesis: Annotated[
        str | None, Query(max_length=100, pattern=NO_CONTROL, description="Only runs of this hypothesis.")
    ] = None,
    status: q.RunStatus | None = None,
    flagged: bool | None = None,
    review: Annotated[
        q.ReviewStatus | None,
        Query(description="Only runs with this review status (needs_review: a verdict contradicted the debate)."),
    ] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> q.RunPage:
    """Runs, newest first."""
    return q.list_runs(
        s, hypothesis=hypothesis, status=status, flagged=flagged, review=review, limit=limit, offset=offset
    )


@api.get("/runs/{run_id}", response_model=q.RunDetail, responses=NOT_FOUND)
def get_run(s: SessionDep, run_id: RunId) -> q.RunDetail:
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
    run_id: RunId,
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
    slug: Slug,
    format: Annotated[Literal["json", "md"], Query(description="json, or md for the exact wiki lines.")] = "json",
    limit: Annotated[int | None, Query(ge=1, le=200, description="Scored lines at most.")] = None,
    if_none_match: IfNoneMatch = None,
) -> Any:
    """A KB page's Related Hypotheses list (the shared JSON, or the wiki's Markdown lines)."""
    settings = request.app.state.settings.related
    rl = load_related(s, slug, limit=limit or settings.limit, methods=settings.methods)
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
@takes_body(RUNS_MAX, _bearer_first)
def post_runs(request: Request, engine: EngineDep, by: ReviewerDep, body: RunRequest) -> QueuedRuns:
    """Queue debates of hypotheses (one queued or running run per hypothesis at a time)."""
    st = request.app.state
    return queue_debates(engine, st.settings, st.dispatcher, body, by=by, backends=st.backends)


@api.post("/runs/{run_id}/reviews", status_code=201, response_model=ReviewResult, responses={**AUTH, **NOT_FOUND})
@takes_body(REVIEW_MAX, _bearer_first)
def post_review(engine: EngineDep, by: ReviewerDep, run_id: RunId, body: ReviewRequest) -> ReviewResult:
    """Approve, comment on, flag (withhold its score) or clear a run, as the token's reviewer."""
    return record_review(engine, run_id, body, by=by)


# ---------------------------------------------------------------- the app


# Connections beside the requests' own: the in-process runner's two, sign-in checks, lifespan.
BACKGROUND_CONNECTIONS = 4


def server_pool(settings: Settings) -> PoolOptions:
    """One connection per admitted request plus the background's; a checkout waits its turn
    (admission keeps requests within the pool, so the wait is short) rather than failing at 30 s."""
    return PoolOptions(size=settings.server.db_connections, overflow=BACKGROUND_CONNECTIONS, timeout_s=120.0)


class _App(FastAPI):
    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            # Requests may name only this server's backends: the schema says so (the model
            # accepts every backend the engine knows; queue_debates refuses the others).
            backend = super().openapi()["components"]["schemas"]["RunRequest"]["properties"]["backend"]
            backend["anyOf"][0]["enum"] = list(self.state.backends)
        return self.openapi_schema  # type: ignore[return-value]

    def build_middleware_stack(self) -> ASGIApp:
        # Outside Starlette's last-resort error handler, so even its 500 says nosniff.
        return NoSniff(super().build_middleware_stack())


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
    engine = ensure_schema(settings.database_url, server_pool(settings))
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

    app = _App(
        title="debate",
        version=__version__,
        lifespan=lifespan,
        summary="Multi-agent debate scores of therapeutic hypotheses; reviewer audit and flags.",
        openapi_url="/api/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.tokens = tokens = ReviewerTokens.from_settings(settings)
    app.state.sessions = SessionStore(engine, tokens, timedelta(hours=settings.server.session_hours))
    app.state.dispatcher = dispatcher
    app.state.runner = runner
    app.state.backends = tuple(backends or ("offline", "openai"))
    install_error_handlers(app)
    # Outermost last: the guard refuses bad requests before they queue for the database.
    gate = Gate(settings.server.db_connections, settings.server.max_waiting)
    app.add_middleware(Admission, gate=gate, retry_after_s=settings.server.retry_after_s, on_error=error_response)
    app.add_middleware(RequestGuard, on_error=error_response)
    app.include_router(api)
    install_ui(app)
    return app
