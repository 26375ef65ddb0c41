"""The reviewer UI: server-rendered pages under ``/`` (no scripts, no front-end build).

Pages: the hypothesis list (``/``, sortable and filterable through links and a GET form), a
hypothesis (``/hypotheses/{id}``: score, withheld flag, history chart, runs), a run's transcript
(``/runs/{id}``: rounds side by side, evidence, judges, attempts, review form) and sign-in.
Form posts must come from this site (``Origin``), carry the form token bound to the signed-in
reviewer, and are urlencoded; a rejected one gets an HTML page saying why.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from debate.core.rubric import DIMENSIONS
from debate.engine.transcript import INVALID_MARK, WITHHELD_MARK, agents_line, load_transcript
from debate.server.web import queries as q
from debate.server.web.auth import (
    COOKIE,
    COOKIE_MAX_AGE,
    LOGIN_COOKIE,
    new_login_nonce,
    same_origin,
)
from debate.server.web.render import STATIC, history_chart, page
from debate.server.web.reviews import REVIEW_ACTIONS, REVIEW_REQUEST, record_review
from debate.store.db import session_scope

ui = APIRouter(include_in_schema=False)
MAX_FORM = 64 * 1024
LIST_PAGE = 100
SORTS = {
    "id": "id",
    "title": "title",
    "score": "-score",
    "agreement": "-agreement",
    "status": "status",
    "flagged": "-flagged",
}


def signed_in(request: Request) -> tuple[str, str] | None:
    """(reviewer, token) from the sign-in cookie, when it holds a token still configured."""
    token = request.cookies.get(COOKIE)
    name = request.app.state.tokens.reviewer(token) if token else None
    return (name, token) if name and token else None


def error_page(request: Request, status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """An error as an HTML page (the API's errors are JSON)."""
    return page(request, "error.html.j2", status=status, headers=headers, status_code=status, message=message)


def safe_next(target: str | None) -> str:
    """A same-site path to go back to after signing in (anything else goes home)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


async def read_form(request: Request) -> dict[str, str]:
    """A urlencoded form from this site; refuses other origins, other encodings and large bodies."""
    if not same_origin(request.headers.get("origin"), request.headers.get("host")):
        raise HTTPException(403, "this form must be posted from this site")
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        raise HTTPException(415, "forms must be sent as application/x-www-form-urlencoded")
    body = await request.body()
    if len(body) > MAX_FORM:
        raise HTTPException(413, "form too large")
    return dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


# ---------------------------------------------------------------- pages


@ui.get("/")
def hypotheses_page(
    request: Request,
    filters: Annotated[q.HypothesisFilters, Query()],
    offset: Annotated[int, Query(ge=0, le=q.MAX_OFFSET)] = 0,
) -> Response:
    with session_scope(request.app.state.engine) as s:
        result = q.list_hypotheses(s, filters, limit=LIST_PAGE, offset=offset)
    current = filters.model_dump(exclude_none=True)

    def link(**changes: Any) -> str:
        params = {**current, **changes}
        return "/?" + urlencode(
            {k: str(v).lower() if isinstance(v, bool) else v for k, v in params.items() if v not in (None, "")}
        )

    def sort_link(column: str) -> str:
        first = SORTS[column]
        flipped = first[1:] if first.startswith("-") else f"-{first}"
        return link(sort=flipped if filters.sort == first else first, offset=0)

    return page(
        request, "hypotheses.html.j2", result=result, filters=filters, link=link, sort_link=sort_link, sorts=SORTS
    )


@ui.get("/hypotheses/{hyp_id}")
def hypothesis_page(request: Request, hyp_id: str) -> Response:
    with session_scope(request.app.state.engine) as s:
        d = q.hypothesis_detail(s, hyp_id)
    flagged_run = next((r for r in d.runs if r.status == "done" and r.flagged), None) if d.withheld else None
    return page(request, "hypothesis.html.j2", d=d, chart=history_chart(d.history), flagged_run=flagged_run)


def _transcript_page(
    request: Request, run_id: str, *, status: int = 200, error: str | None = None, note: str = ""
) -> Response:
    with session_scope(request.app.state.engine) as s:
        tr = load_transcript(s, run_id)
    return page(
        request,
        "transcript.html.j2",
        status=status,
        t=tr,
        agents_line=agents_line(tr),
        invalid_mark=INVALID_MARK,
        withheld_mark=WITHHELD_MARK,
        error=error,
        note=note,
        done=request.query_params.get("reviewed"),
        dimensions=DIMENSIONS,
    )


@ui.get("/runs/{run_id}")
def run_page(request: Request, run_id: str) -> Response:
    return _transcript_page(request, run_id)


@ui.post("/runs/{run_id}/review")
async def review_form(request: Request, run_id: str) -> Response:
    form = await read_form(request)
    me = signed_in(request)
    if me is None:
        return _see_other(f"/login?{urlencode({'next': f'/runs/{run_id}'})}")
    tokens = request.app.state.tokens
    if not tokens.check_form_token(me[1], form.get("csrf")):
        return error_page(request, 403, "this form has expired or did not come from this site; reload the page")
    action, note = form.get("action", ""), form.get("note", "")
    try:
        req = REVIEW_REQUEST.validate_python({"action": action, "note": note.strip() or None})
    except ValidationError:
        msg = (
            "a comment needs a note"
            if action == "comment"
            else "choose approve, comment, flag or clear"
            if action not in REVIEW_ACTIONS
            else "the note is too long (4000 characters at most)"
        )
        return await run_in_threadpool(_transcript_page, request, run_id, status=422, error=msg, note=note)
    await run_in_threadpool(record_review, request.app.state.engine, run_id, req, by=me[0])
    return _see_other(f"/runs/{run_id}?{urlencode({'reviewed': req.action})}#review")


# ---------------------------------------------------------------- signing in


def _login_page(request: Request, next_url: str, *, status: int = 200, error: str | None = None) -> Response:
    nonce = new_login_nonce()
    resp = page(
        request,
        "login.html.j2",
        status=status,
        next_url=safe_next(next_url),
        nonce=nonce,
        error=error,
        enabled=request.app.state.tokens.enabled,
    )
    resp.set_cookie(
        LOGIN_COOKIE,
        nonce,
        max_age=900,
        path="/login",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return resp


@ui.get("/login")
def login_page(request: Request, next: Annotated[str, Query(max_length=500)] = "/") -> Response:
    return _login_page(request, next)


@ui.post("/login")
async def login(request: Request) -> Response:
    form = await read_form(request)
    next_url = safe_next(form.get("next"))
    nonce = request.cookies.get(LOGIN_COOKIE)
    if not nonce or form.get("nonce") != nonce:
        return _login_page(request, next_url, status=403, error="the sign-in form expired; try again")
    tokens = request.app.state.tokens
    token = form.get("token", "").strip()
    if not tokens.enabled:
        return _login_page(request, next_url, status=403, error="reviewing is disabled on this server")
    if tokens.reviewer(token) is None:
        return _login_page(request, next_url, status=403, error="unknown reviewer token")
    resp = _see_other(next_url)
    resp.set_cookie(
        COOKIE,
        token,
        max_age=COOKIE_MAX_AGE,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    resp.delete_cookie(LOGIN_COOKIE, path="/login")
    return resp


@ui.post("/logout")
async def logout(request: Request) -> Response:
    form = await read_form(request)
    me = signed_in(request)
    if me is not None and not request.app.state.tokens.check_form_token(me[1], form.get("csrf")):
        return error_page(request, 403, "this form has expired or did not come from this site; reload the page")
    resp = _see_other("/")
    resp.delete_cookie(COOKIE, path="/")
    return resp


_CSS = (STATIC / "style.css").read_bytes()


@ui.get("/static/style.css")
def stylesheet() -> Response:
    return Response(
        _CSS,
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


def install_ui(app: FastAPI) -> None:
    """Mount the reviewer pages on ``app``."""
    app.include_router(ui)
