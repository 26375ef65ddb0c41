"""Markdown escaping of Related Hypotheses lines: untrusted titles and labels can neither open
HTML nor forge a link, the parser undoes the escaping, and pages the wiki wrote keep their bytes."""

from __future__ import annotations

import random

import pytest

from debate.core.errors import PageParseError
from debate.kb.escape import escape_md, unescape_md
from debate.kb.related import parse_related_line, related_path
from debate.wiki.related import RelatedItem, render_line


def item(title: str, *, kind: str = "hypothesis", ident: str = "h-0a1b2c3d", label: str | None = "SOD1") -> RelatedItem:
    return RelatedItem(
        kind=kind,  # type: ignore[arg-type]
        id=ident,
        title=title,
        path=f"/{kind}/{ident}",
        score=0.7 if kind == "hypothesis" else None,
        shown="0.70" if kind == "hypothesis" else None,
        color=None,
        target_label=label,
        targets=[],
        in_progress=kind != "hypothesis",
        relatedness=1.0,
        reasons=[],
    )


def fail(message: str, line: int) -> PageParseError:
    return PageParseError(message, where=f"t.txt:{line}")


@pytest.mark.parametrize(
    ("title", "escaped"),
    [
        ("Sneaky <img src=x onerror=alert(1)> idea", "Sneaky &lt;img src=x onerror=alert(1)&gt; idea"),
        ("<script>steal()</script> boost", "&lt;script&gt;steal()&lt;/script&gt; boost"),
        ("Y](javascript:alert(1)) [y", r"Y\](javascript:alert(1)) \[y"),
        ("R&D spend & more", "R&amp;D spend &amp; more"),
        ("already &amp; escaped &#39; kept", "already &amp; escaped &#39; kept"),
        ("`code` span", r"\`code\` span"),
        ("trailing slash\\", "trailing slash\\\\"),
        ("slash before bracket\\]", "slash before bracket\\\\\\]"),
        ('Parkinson\'s "quoted" C:\\path', 'Parkinson\'s "quoted" C:\\path'),
    ],
)
def test_titles_are_escaped_and_unescaped(title: str, escaped: str) -> None:
    assert escape_md(title) == escaped
    assert escape_md(unescape_md(escaped)) == escaped


@pytest.mark.parametrize(
    "title",
    [
        "Sneaky <img src=x onerror=alert(1)> idea",
        "<script>steal()</script> boost",
        "Y](javascript:alert(1)) [y",
        "Z\\](javascript:alert(1)) [z",  # a backslash must not undo the bracket's escape
    ],
)
def test_a_rendered_line_holds_no_html_and_no_other_link(title: str) -> None:
    line = render_line(item(title, label=title))
    assert "<img" not in line and "<script" not in line
    assert line.count("<span") == 1  # the score's, and nothing else opens a tag
    # The only link is the engine's own: the first unescaped "]" closes the link text there.
    text_end = next(i for i in range(3, len(line)) if line[i] == "]" and _unescaped(line, i))
    assert line[text_end:].startswith("](/hypothesis/h-0a1b2c3d)")
    assert "](javascript" not in line.replace("\\]", "")


def _unescaped(s: str, i: int) -> bool:
    n = 0
    while i - 1 - n >= 0 and s[i - 1 - n] == "\\":
        n += 1
    return n % 2 == 0


def test_the_parser_undoes_the_escaping_of_titles_and_labels() -> None:
    title, label = "Dual [GLP-1] & <GIP> agonism", "SOD1 & FUS"
    line = render_line(item(title, label=label)).strip()
    assert r"\[GLP-1\] &amp; &lt;GIP&gt;" in line
    entry = parse_related_line(line, 3, fail)
    assert (entry.title, entry.target_label) == (title, label)


def test_render_then_parse_then_render_is_stable_for_any_title() -> None:
    rng = random.Random(7)
    alphabet = "ab \\[]`<>&;#ltgmp'\""
    for _ in range(3000):
        title = "t" + "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
        first = render_line(item(title))
        entry = parse_related_line(first.strip(), 1, fail)
        assert render_line(item(entry.title)) == first, title


def test_link_paths_are_built_only_from_well_formed_ids() -> None:
    assert related_path("hypothesis", "h-0a1b2c3d") == "/hypothesis/h-0a1b2c3d"
    assert related_path("analysis", "SDA-2026-01-01-gap-x") == "/analysis/SDA-2026-01-01-gap-x"
    for kind, ident in [
        ("hypothesis", "h-0a1b2c3d\n"),
        ("hypothesis", "javascript:alert(1)"),
        ("analysis", "../x"),
        ("analysis", "x) [y](javascript:z"),
        ("page", "h-0a1b2c3d"),
    ]:
        assert related_path(kind, ident) is None
    with pytest.raises(ValueError):
        render_line(item("t", kind="analysis", ident="x)(javascript:alert(1)"))
