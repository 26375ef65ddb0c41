"""The typed parts of a parsed KB page: the models :func:`debate.kb.parse.parse_page` returns."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from debate.core.errors import PageParseError

__all__ = [
    "Chunk",
    "ExternalLink",
    "Fact",
    "Fail",
    "InfoboxRow",
    "Link",
    "ParsedPage",
    "RelatedEntry",
    "Section",
]


# Builds the error for a message and a 1-based line number; the parser's carries the file name,
# so the readers of page parts report "name:line" without knowing the file.
Fail = Callable[[str, int], PageParseError]


class _PageModel(BaseModel):
    # Page parts are built only by the parser: an unknown field is a bug, not data to keep.
    model_config = ConfigDict(extra="forbid")


class InfoboxRow(_PageModel):
    """One label -> value row of the page's infobox."""

    table: str = Field(
        description="Label of the sub-table's header row (e.g. 'Target', 'Trial'); '' for rows before any header row"
    )
    column: str = Field(
        description="Value of the sub-table's header row (e.g. 'Approach', 'Intervention'); "
        "'' for rows before any header row"
    )
    label: str = Field(description="Label cell as plain text (links reduced to their text)")
    value: str = Field(description="Value cell as plain text")
    line: int = Field(description="1-based line number of the label cell")


class Fact(_PageModel):
    """A ``- Key: value`` bullet, keyed by the heading path it sits under."""

    heading_path: list[str] = Field(description="Inferred heading path, nearest heading last")
    key: str = Field(description="Text before the first ': ' outside links, as plain text")
    value: str = Field(description="Text after that ': ', as plain text (may contain ':')")
    line: int = Field(description="1-based line number of the bullet")


class Link(_PageModel):
    """An internal markdown link ``[text](/...)``."""

    text: str = Field(description="Link text as plain text")
    path: str = Field(description="Link target exactly as written")
    slug: str | None = Field(description="KB page slug the link names, or None when not a KB page")
    heading_path: list[str] = Field(description="Heading path of the line holding the link")
    line: int = Field(description="1-based line number")


class ExternalLink(_PageModel):
    """An external markdown link ``[text](https://...)``: kept as a reference, never fetched."""

    text: str = Field(description="Link text as plain text")
    url: str = Field(description="URL exactly as written")
    line: int = Field(description="1-based line number")


class Section(_PageModel):
    """A heading and the raw lines under it."""

    heading: str = Field(description="Heading as plain text; '' for content before any heading")
    heading_path: list[str] = Field(description="Inferred heading path, this heading last")
    line: int = Field(description="1-based line number of the heading (or first line)")
    lines: list[str] = Field(description="Raw non-blank content lines, without infobox HTML")


class Chunk(_PageModel):
    """A retrieval unit: plain text of (part of) one section, or of the infobox."""

    ordinal: int = Field(description="0-based position among the page's chunks")
    heading_path: list[str] = Field(description="Heading path of the chunk's section")
    text: str = Field(description="Plain text: links reduced, HTML and citation markers removed")
    line: int = Field(description="1-based line number of the chunk's first line")
    hidden: str = Field(
        default="",
        description="Markup removed from the text that holds words (citation markers, HTML comments, tag "
        "attributes), one per line: screened with the chunk, never quoted",
    )


class RelatedEntry(_PageModel):
    """One list line of the Related Hypotheses section."""

    kind: Literal["hypothesis", "analysis"] = Field(description="What the line links to")
    id: str = Field(description="Hypothesis id (h- + 8 hex digits) or analysis id")
    path: str = Field(description="Link path, e.g. /hypothesis/h-2600483e")
    title: str = Field(description="Link text as written")
    score: float | None = Field(description="Consensus score in [0, 1]; None when not scored")
    target_label: str | None = Field(description="Label after 'Target: ' exactly as written")
    genes: list[str] = Field(description="Gene symbols split from the target label")
    in_progress: bool = Field(description="True when the line ends with the 🔄 marker")
    line: int = Field(description="1-based line number")


class ParsedPage(_PageModel):
    """Everything the engine reads from one KB page."""

    slug: str = Field(description="Metadata 'slug' row, else derived from the file name")
    title: str = Field(description="Page title (first line after the banner)")
    entity_type: str | None = Field(description="Metadata 'entity_type', else the infobox class")
    metadata: dict[str, str] = Field(description="| key | value | rows after ▸Metadata, in order")
    sections: list[Section] = Field(description="Body sections in page order")
    facts: list[Fact] = Field(description="- Key: value bullets (outside Related Hypotheses)")
    infobox: list[InfoboxRow] = Field(description="Infobox rows, duplicates kept once")
    links: list[Link] = Field(description="Internal links (outside Related Hypotheses)")
    external_links: list[ExternalLink] = Field(description="External links")
    citations: list[str] = Field(description="Unique [@key] citation keys in order of appearance")
    chunks: list[Chunk] = Field(description="Plain-text retrieval chunks")
    related: list[RelatedEntry] = Field(description="Related Hypotheses list lines in order")
    has_related_section: bool = Field(description="True when a Related Hypotheses heading exists")
    related_span: tuple[int, int] | None = Field(
        description="[start, end) character offsets of the Related Hypotheses block in the text"
    )
    insert_at: int = Field(description="Character offset where a new Related Hypotheses section would be inserted")
