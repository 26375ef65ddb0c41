"""One entry point for every rendering of a transcript, chosen by format name."""

from __future__ import annotations

from debate.engine.transcript.html import render_html
from debate.engine.transcript.markdown import render_markdown
from debate.engine.transcript.model import Format, Transcript
from debate.engine.transcript.text import render_text


def render(t: Transcript, fmt: Format) -> str:
    """The transcript as ``text``, ``md`` (Markdown), ``json`` or ``html`` (a standalone page)."""
    if fmt == "text":
        return render_text(t)
    if fmt == "md":
        return render_markdown(t)
    if fmt == "json":
        return t.model_dump_json(indent=2)
    if fmt == "html":
        return render_html(t)
    raise ValueError(f"unknown transcript format {fmt!r} (expected text, md, json or html)")
