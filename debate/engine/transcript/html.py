"""The transcript as a standalone HTML page, rendered from ``templates/transcript.html.j2``.

Every value from the KB or a model is escaped by Jinja2's autoescaping (nothing is marked safe),
and the page's Content-Security-Policy forbids scripts.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from debate.core.rubric import DIMENSIONS
from debate.core.scoring import score_color
from debate.engine.transcript.formatting import (
    INVALID_MARK,
    WITHHELD_MARK,
    agents_line,
    bound_lines,
    claim_mark,
    cost,
    empty_seat_line,
    fit_line,
    heading,
    ms,
    num,
    score,
    tokens,
    ts,
    verified_claims,
    verified_line,
)
from debate.engine.transcript.model import Transcript

# Package data: the templates ship inside the package, next to this module.
TEMPLATES_DIR = Path(__file__).parent / "templates"


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def html_env(templates: Path, **filters: Callable[..., Any]) -> Environment:
    """A Jinja environment for pages built from untrusted values, with the transcript's formatters.

    autoescape=True: every value from a page or a model is escaped; nothing is marked safe.
    ``filters`` add to or replace the formatters (the reviewer UI has its own ``ts`` and ``band``).
    """
    env = Environment(
        loader=FileSystemLoader(templates),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        score=score,
        num=num,
        cost=cost,
        ms=ms,
        tokens=tokens,
        ts=ts,
        heading=heading,
        pretty=_pretty,
        color=score_color,
        fit=fit_line,
        empty_seat=empty_seat_line,
        claim_mark=claim_mark,
        bound_lines=bound_lines,
        verified_claims=verified_claims,
        verified_line=verified_line,
    )
    env.filters.update(filters)
    return env


_ENV = html_env(TEMPLATES_DIR)


def render_html(t: Transcript) -> str:
    """The whole transcript as one HTML page."""
    return _ENV.get_template("transcript.html.j2").render(
        t=t,
        agents_line=agents_line(t),
        dimensions=DIMENSIONS,
        invalid_mark=INVALID_MARK,
        withheld_mark=WITHHELD_MARK,
    )
