"""Rendering the reviewer UI: the Jinja environment, its filters, the score chart, page responses.

Every value from a KB page or a model reply reaches the browser through Jinja2 autoescaping and
nothing is marked safe; pages are also served with a Content-Security-Policy that allows no
script at all, so even a value that slipped through escaping could not run.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from debate.core.scoring import GREEN, RED, YELLOW, display_score, score_color
from debate.engine.transcript import Usage
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


def f_score(x: float | None) -> str:
    """Two decimals, half up, as the wiki shows scores; a dash when there is none."""
    return "—" if x is None or not math.isfinite(x) else display_score(x)


def f_band(x: float | None) -> str:
    """CSS class of a score's colour band (classes, not inline styles: the CSP forbids those)."""
    return "none" if x is None or not math.isfinite(x) else _BANDS[score_color(display_score(x))]


def f_num(x: float | None, digits: int = 2) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def f_ts(dt: datetime | str | None) -> str:
    if dt is None:
        return "—"
    if isinstance(dt, str):
        dt = datetime.fromisoformat(dt)
    return dt.strftime("%Y-%m-%d %H:%M UTC")


def f_tokens(u: Usage) -> str:
    if u.total is None:
        return "—"
    return f"{u.prompt_tokens or 0} + {u.completion_tokens or 0} tokens"


def f_cost(x: float | None) -> str:
    return "—" if x is None else f"${x:.4f}"


def f_ms(x: float | None) -> str:
    return "—" if x is None else f"{x:.0f} ms"


def f_heading(path: list[str]) -> str:
    return " › ".join(path) if path else "(top)"


def f_pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        score=f_score,
        band=f_band,
        num=f_num,
        ts=f_ts,
        tokens=f_tokens,
        cost=f_cost,
        ms=f_ms,
        heading=f_heading,
        pretty=f_pretty,
    )
    return env


ENV = _env()


def page(
    request: Request, template: str, status: int = 200, headers: dict[str, str] | None = None, **ctx: Any
) -> HTMLResponse:
    """A rendered page with the security headers; ``ctx`` gets ``request`` and ``me`` added."""
    from debate.server.web.routes import signed_in  # routes import this module

    me = signed_in(request)
    html = ENV.get_template(template).render(
        request=request,
        me=me[0] if me else None,
        csrf=request.app.state.tokens.form_token(me[1]) if me else "",
        **ctx,
    )
    return HTMLResponse(html, status_code=status, headers={**SECURITY_HEADERS, **(headers or {})})


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
