"""Rendering the reviewer UI: the Jinja environment, its filters, the score chart, page responses.

Every value from a KB page or a model reply reaches the browser through Jinja2 autoescaping and
nothing is marked safe; pages are also served with a Content-Security-Policy that allows no
script at all, so even a value that slipped through escaping could not run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment

from debate.core.scoring import GREEN, RED, YELLOW, display_score, score_color
from debate.engine.transcript.html import html_env
from debate.server.web.sessions import known_signed_in, signed_in
from debate.wiki.scores import HistoryRow

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
_BANDS = {GREEN: "good", YELLOW: "fair", RED: "poor"}


def f_band(x: float | None) -> str:
    """CSS class of a score's colour band (classes, not inline styles: the CSP forbids those)."""
    return "none" if x is None or not math.isfinite(x) else _BANDS[score_color(display_score(x))]


def f_ts(dt: datetime | str | None) -> str:
    if dt is None:
        return "—"
    if isinstance(dt, str):
        dt = datetime.fromisoformat(dt)
    return dt.strftime("%Y-%m-%d %H:%M UTC")


def _env() -> Environment:
    # The transcript's value formatters, so a score or a cost reads the same on every page.
    return html_env(TEMPLATES, band=f_band, ts=f_ts)


ENV = _env()


def page(
    request: Request,
    template: str,
    status: int = 200,
    headers: dict[str, str] | None = None,
    *,
    lookup_session: bool = True,
    **ctx: Any,
) -> HTMLResponse:
    """A rendered page with the security headers; ``ctx`` gets ``request``, ``me`` and ``csrf`` added.

    ``lookup_session`` looks the reviewer's session up in the database (blocking: call from a
    worker thread); without it only what this request already found is shown.
    """
    me = signed_in(request) if lookup_session else known_signed_in(request)
    html = ENV.get_template(template).render(
        request=request,
        me=me.reviewer if me else None,
        csrf=me.form_token if me else "",
        **ctx,
    )
    return HTMLResponse(html, status_code=status, headers={**SECURITY_HEADERS, **(headers or {})})


def error_page(request: Request, status: int, message: str, headers: dict[str, str] | None = None) -> HTMLResponse:
    """An error as an HTML page (the API's errors are JSON). No database query: it may be the failure."""
    return page(
        request,
        "error.html.j2",
        status=status,
        headers=headers,
        lookup_session=False,
        status_code=status,
        message=message,
    )


# ---------------------------------------------------------------- score history chart


@dataclass(frozen=True)
class ChartPoint:
    x: float
    y: float
    run_id: str
    label: str
    flagged: bool


@dataclass(frozen=True)
class Chart:
    """An inline SVG line chart of a hypothesis's scores over its finished runs."""

    width: int
    height: int
    points: list[ChartPoint]
    line: str  # "x,y x,y ..." through the unflagged points
    gridlines: list[tuple[float, str]]  # (y, label)


def history_chart(history: list[HistoryRow], *, width: int = 520, height: int = 170) -> Chart | None:
    """Scores by run in finishing order (runs without a score skipped); None when nothing scored."""
    scored = [h for h in history if h.score is not None and math.isfinite(h.score)]
    if not scored:
        return None
    left, right, top, bottom = 36, 12, 10, 22
    inner_w, inner_h = width - left - right, height - top - bottom

    def y_of(v: float) -> float:
        return round(top + inner_h * (1 - min(max(v, 0.0), 1.0)), 1)

    n = len(scored)
    points = []
    for i, h in enumerate(scored):
        x = left + (inner_w * (i / (n - 1)) if n > 1 else inner_w / 2)
        when = f_ts(h.finished_at)
        mark = " (flagged: withheld)" if h.flagged else ""
        score: float = h.score  # type: ignore[assignment]  # scored rows only
        points.append(
            ChartPoint(
                x=round(x, 1),
                y=y_of(score),
                run_id=h.run_id,
                label=f"{display_score(score)} · {h.run_id} · {when}{mark}",
                flagged=h.flagged,
            )
        )
    line = " ".join(f"{p.x},{p.y}" for p in points if not p.flagged)
    grid = [(y_of(v), f"{v:.2f}") for v in (0.0, 0.45, 0.65, 1.0)]
    return Chart(width=width, height=height, points=points, line=line, gridlines=grid)
