"""The list as written: wiki markdown lines, an HTML section, JSON (pure)."""

from __future__ import annotations

import html
from collections.abc import Sequence

from debate.core.scoring import score_span
from debate.wiki.related.models import HEADER, RelatedItem, RelatedList


def _one_line(text: str) -> str:
    # A line break inside a title would end the list line early and corrupt the page.
    return " ".join(text.split())


def render_line(item: RelatedItem) -> str:
    """One list line in the wiki's format, ending with a newline."""
    link = f"- [{_one_line(item.title)}]({item.path})"
    if item.in_progress or item.score is None:
        return f"{link} 🔄\n"
    target = f" · Target: {_one_line(item.target_label)}" if item.target_label else ""
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
        link = f'<a href="{esc(i.path)}">{esc(i.title)}</a>'
        if i.in_progress or i.score is None:
            lines.append(f"<li>{link} 🔄</li>")
            continue
        target = f" · Target: {esc(i.target_label)}" if i.target_label else ""
        lines.append(f"<li>{link} — {score_span(i.score)}{target}</li>")
    lines += ["</ul>", "</section>"]
    return "\n".join(lines) + "\n"


def related_json(rl: RelatedList) -> str:
    """The exact text of ``debate related --format json`` and of an export's ``related/SLUG.json``."""
    return rl.model_dump_json(indent=2) + "\n"
