"""The list as written: wiki markdown lines, an HTML section, JSON (pure).

Titles and labels are untrusted (pages, import files, the CLI): in Markdown they are escaped
(:mod:`debate.kb.escape`), in HTML entity-escaped, and a link target is only ever the
``/hypothesis/ID`` or ``/analysis/ID`` path built here from an id of the right shape.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from debate.core.scoring import score_span
from debate.core.text import terminal_safe
from debate.kb.escape import escape_md
from debate.kb.related import related_path
from debate.wiki.related.models import HEADER, RelatedItem, RelatedList


def _one_line(text: str) -> str:
    # A line break inside a title would end the list line early and corrupt the page; a
    # control character (stored before input was checked) has no place in a page either.
    return " ".join(terminal_safe(text).split())


def item_path(item: RelatedItem) -> str:
    """The item's link path, rebuilt from its kind and id; ValueError when the id is malformed."""
    path = related_path(item.kind, item.id)
    if path is None:
        raise ValueError(f"not a linkable {item.kind} id: {item.id!r}")
    return path


def render_line(item: RelatedItem) -> str:
    """One list line in the wiki's format, ending with a newline."""
    link = f"- [{escape_md(_one_line(item.title))}]({item_path(item)})"
    if item.in_progress or item.score is None:
        return f"{link} 🔄\n"
    target = f" · Target: {escape_md(_one_line(item.target_label))}" if item.target_label else ""
    return f"{link} — {score_span(item.score)}{target}\n"


def render_markdown(items: Sequence[RelatedItem]) -> str:
    """The whole section: heading, the ``From the ...`` line, then one line per item."""
    return HEADER + "".join(render_line(i) for i in items)


def render_html(rl: RelatedList) -> str:
    """A small ``<section>`` with the same lines, every text escaped."""
    esc = html.escape
    lines = [
        '<section class="related-hypotheses">',
        "<h2>Related Hypotheses</h2>",
        '<p>From the <a href="/exchange">SciDEX Exchange</a> — scored by multi-agent debate</p>',
        "<ul>",
    ]
    for i in rl.items:
        link = f'<a href="{esc(item_path(i))}">{esc(_one_line(i.title))}</a>'
        if i.in_progress or i.score is None:
            lines.append(f"<li>{link} 🔄</li>")
            continue
        target = f" · Target: {esc(_one_line(i.target_label))}" if i.target_label else ""
        lines.append(f"<li>{link} — {score_span(i.score)}{target}</li>")
    lines += ["</ul>", "</section>"]
    return "\n".join(lines) + "\n"


def related_json(rl: RelatedList) -> str:
    """The exact text of ``debate related --format json`` and of an export's ``related/SLUG.json``."""
    return rl.model_dump_json(indent=2) + "\n"
