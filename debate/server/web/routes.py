"""The reviewer UI: server-rendered pages under ``/`` (no scripts, no front-end build).

Pages: the hypothesis list (``/``, sortable and filterable through links and a GET form), a
hypothesis (``/hypotheses/{id}``: score, withheld flag, history chart, runs), a run's transcript
(``/runs/{id}``: rounds side by side, evidence, judges, attempts, review form), the KB text
screened as instructions to a model (``/kb/suspect``) and sign-in.
Form posts must come from this site (``Origin``), carry the form token bound to the signed-in
reviewer's session, and are urlencoded; a rejected one gets an HTML page saying why. Each post
route declares its body cap and, where it needs one, a live session: the request guard
(:mod:`debate.server.guard`) enforces both before a byte of the body is read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, FastAPI, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from debate.core.errors import StorageError
from debate.core.rubric import DIMENSIONS
from debate.engine.transcript import INVALID_MARK, WITHHELD_MARK, agents_line, load_transcript
from debate.kb.audit import suspect_chunks, suspect_hypotheses
from debate.server.controls import NO_CONTROL
from debate.server.guard import Authorize, takes_body
from debate.server.web import queries as q
from debate.server.web.auth import COOKIE, LEGACY_COOKIE, LOGIN_COOKIE, new_login_nonce, same_origin
from debate.server.web.render import STATIC, error_page, history_chart, page
from debate.server.web.reviews import REVIEW_ACTIONS, REVIEW_REQUEST, record_review
from debate.server.web.sessions import signed_in
from debate.store.db import session_scope

ui = APIRouter(include_in_schema=False)
# Body caps. A review form's 4,000-character note, percent-encoded, is 48 KB at worst (12 bytes
# for a 4-byte UTF-8 character); sign-in carries a nonce, a path (500 at most) and a token.
REVIEW_FORM_MAX = 64 * 1024
LOGIN_MAX = 4 * 1024
LOGOUT_MAX = 4 * 1024
LIST_PAGE = 100
IdPath = Annotated[str, Path(max_length=200, pattern=NO_CONTROL)]
SORTS = {
    "id": "id",
    "title": "title",
    "score": "-score",
    "agreement": "-agreement",
    "status": "status",
    "flagged": "-flagged",
}


def safe_next(target: str | None) -> str:
    """A same-site path to go back to after signing in (anything else goes home)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


async def read_form(request: Request) -> dict[str, str]:
    """A urlencoded form from this site; refuses other origins and other encodings.

    The body is already bounded by the route's cap (the request guard read it).
    """
    if not same_origin(request.headers.get("origin"), request.headers.get("host")):
        raise HTTPException(403, "this form must be posted from this site")
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        raise HTTPException(415, "forms must be sent as application/x-www-form-urlencoded")
    body = await request.body()
    return dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))


def require_session(refused: Callable[[Request], str]) -> Authorize:
    """A request-guard check: a live reviewer session, else a redirect to ``refused(request)``."""

    async def check(request: Request) -> Response | None:
        try:
            me = await run_in_threadpool(signed_in, request)
        except StorageError as e:
            return error_page(request, 503, str(e))
        if me is not None:
            return None
        resp = _see_other(refused(request))
        if COOKIE in request.cookies:
            resp.delete_cookie(COOKIE, path="/")  # expired or revoked: stop sending it
        return resp

    return check


def _sign_in_first(request: Request) -> str:
    """Where an anonymous review post goes: sign in, then back to the run."""
    run_id = request.path_params.get("run_id", "")
    return "/login?" + urlencode({"next": f"/runs/{run_id}"})


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
def hypothesis_page(request: Request, hyp_id: IdPath) -> Response:
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
def run_page(request: Request, run_id: IdPath) -> Response:
    return _transcript_page(request, run_id)


@ui.get("/kb/suspect")
def suspect_page(request: Request) -> Response:
    """Chunks and imported hypotheses screened as instruction-like text (`debate kb audit`)."""
    with session_scope(request.app.state.engine) as s:
        chunks, hyps = suspect_chunks(s), suspect_hypotheses(s)
    return page(request, "suspect.html.j2", chunks=chunks, hyps=hyps, mode=request.app.state.settings.kb.suspect)


@ui.post("/runs/{run_id}/review")
@takes_body(REVIEW_FORM_MAX, require_session(_sign_in_first))
async def review_form(request: Request, run_id: IdPath) -> Response:
    form = await read_form(request)
    me = await run_in_threadpool(signed_in, request)  # found already by the guard's check
    if me is None:
        return _see_other(_sign_in_first(request))
    if not me.check_form_token(form.get("csrf")):
        return error_page(request, 403, "this form has expired or did not come from this site; reload the page")
    action, note = form.get("action", ""), form.get("note", "")
    try:
        req = REVIEW_REQUEST.validate_python({"action": action, "note": note.strip() or None})
    except ValidationError as e:
        msg = _review_refusal(action, e)
        return await run_in_threadpool(_transcript_page, request, run_id, status=422, error=msg, note=note)
    await run_in_threadpool(record_review, request.app.state.engine, run_id, req, by=me.reviewer)
    return _see_other(f"/runs/{run_id}?{urlencode({'reviewed': req.action})}#review")


def _review_refusal(action: str, e: ValidationError) -> str:
    if action not in REVIEW_ACTIONS:
        return "choose approve, comment, flag or clear"
    first = e.errors()[0]
    if first["type"] == "string_too_long":
        return "the note is too long (4000 characters at most)"
    if first["type"] == "value_error":  # the note's own checks: a control character, no text
        return str(first["msg"]).removeprefix("Value error, ")
    return "a comment needs a note"  # the form sends no note at all when it is blank


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
def login_page(request: Request, next: Annotated[str, Query(max_length=500, pattern=NO_CONTROL)] = "/") -> Response:
    return _login_page(request, next)


@ui.post("/login")
@takes_body(LOGIN_MAX)
async def login(request: Request) -> Response:
    form = await read_form(request)
    next_url = safe_next(form.get("next"))
    nonce = request.cookies.get(LOGIN_COOKIE)
    tokens = request.app.state.tokens
    name = tokens.reviewer(form.get("token", "").strip())
    if not nonce or form.get("nonce") != nonce:
        error = "the sign-in form expired; try again"
    elif not tokens.enabled:
        error = "reviewing is disabled on this server"
    elif name is None:
        error = "unknown reviewer token"
    else:
        sessions = request.app.state.sessions
        session_id = await run_in_threadpool(sessions.create, name)
        resp = _see_other(next_url)
        resp.set_cookie(
            COOKIE,
            session_id,
            max_age=int(sessions.lifetime.total_seconds()),
            path="/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        resp.delete_cookie(LOGIN_COOKIE, path="/login")
        resp.delete_cookie(LEGACY_COOKIE, path="/")
        return resp
    return await run_in_threadpool(_login_page, request, next_url, status=403, error=error)


@ui.post("/logout")
@takes_body(LOGOUT_MAX, require_session(lambda _request: "/"))
async def logout(request: Request) -> Response:
    form = await read_form(request)
    me = await run_in_threadpool(signed_in, request)
    if me is not None:
        if not me.check_form_token(form.get("csrf")):
            return error_page(request, 403, "this form has expired or did not come from this site; reload the page")
        await run_in_threadpool(request.app.state.sessions.revoke, me.session_id)
    resp = _see_other("/")
    resp.delete_cookie(COOKIE, path="/")
    resp.delete_cookie(LEGACY_COOKIE, path="/")
    return resp


_CSS = (STATIC / "style.css").read_bytes()


@ui.get("/static/style.css")
def stylesheet() -> Response:
    return Response(_CSS, media_type="text/css", headers={"Cache-Control": "public, max-age=3600"})


def install_ui(app: FastAPI) -> None:
    """Mount the reviewer pages on ``app``."""
    app.include_router(ui)
