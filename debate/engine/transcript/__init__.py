"""The transcript of one debate run: a versioned, documented model assembled from the database.

The transcript is what readers and reviewers audit, so it carries everything needed to judge a
run: the hypothesis, the evidence snapshot as it read when retrieved, every turn with the
messages sent, the raw reply, what was parsed from it, which citations were valid and whether
each claim's quote was found in the evidence it cites (and the run's share of verified claims),
every attempt made for each turn (retries, re-asks), the judge panel, the consensus and the
review history. :func:`load_transcript` builds it with one query per table; :func:`render` shows
it as plain text, Markdown, JSON or a standalone HTML page.

Text from the KB and from model replies is untrusted: the HTML page escapes all of it (Jinja2
autoescaping) and forbids scripts through its Content-Security-Policy; the Markdown escapes
``&``, ``<`` and ``>`` so a Markdown viewer that renders inline HTML shows it as text (and a
claim's text and quote cannot make a link).

Modules: :mod:`.model` (the types), :mod:`.load` (from the database), :mod:`.formatting`
(values and lines shared by the renderings), :mod:`.text`, :mod:`.markdown`, :mod:`.html`
(one rendering each) and :mod:`.rendering` (:func:`render`, by format name).
"""

from __future__ import annotations

from debate.engine.transcript.formatting import (
    HEURISTIC_LABEL,
    INVALID_MARK,
    WITHHELD_MARK,
    agents_line,
)
from debate.engine.transcript.load import load_transcript
from debate.engine.transcript.model import TRANSCRIPT_VERSION, Format, JudgeOut, Transcript, Usage
from debate.engine.transcript.rendering import render

# The names callers import today; the other model types live in :mod:`.model`.
__all__ = [
    "HEURISTIC_LABEL",
    "INVALID_MARK",
    "TRANSCRIPT_VERSION",
    "WITHHELD_MARK",
    "Format",
    "JudgeOut",
    "Transcript",
    "Usage",
    "agents_line",
    "load_transcript",
    "render",
]
