"""Parse one exported wiki page (plain text) into structured, typed parts.

The parser is pure: it takes the page text and returns a :class:`ParsedPage`; it never reads
files or the network. Page text is untrusted data: nothing in it is interpreted beyond the
export format below.

Anatomy (top to bottom): a ``📗 Cite This Artifact`` banner, the title (often repeated), body
sections, the ``Related Hypotheses`` section, a ``▸Metadata`` line with ``| key | value |``
rows, and a trailer (``No provenance edges found``, embed hints, ``<iframe>``, artifact URLs).

Line kinds in the body:

* heading: a short line standing alone: no list marker, not HTML, not a ``|``/``▸`` row, not
  ending with ``.``/``;``/``,``/``:``, no ``". "`` inside, at most 80 characters and 12 words,
  and not a bare link or citation;
* infobox: an HTML ``<table>`` block up to ``</table>``;
* everything else is content: bullets (``- Key: value`` bullets are facts) and prose.

Heading path inference (nesting is not marked in the export, so this is best effort):

1. ``Overview``, ``See Also``, ``External Links``, ``References`` and ``Related Hypotheses``
   are always top level and close the current group.
2. A heading whose next line is another heading opens a top-level group when it follows
   content, or when no group is open (e.g. the first heading after the title).
3. Any other heading is a child of the open group (``[group, heading]``), or top level when
   no group is open.

The nearest heading is always the last element of a path. A heading that repeats the current
section's heading before any text (a duplicated export block) is not a new section.

Infobox sub-tables: a row whose cells are the known pairs ``Target``/``Approach``,
``Agent``/``Mechanism``, ``Trial``/``Intervention``, or two ``<th>`` cells, starts a sub-table.
Otherwise a row is taken as a sub-table header when both cells are single capitalised words
without digits, at least one row follows it, and it is either the table's first row or its
value is a common column word (``Status``, ``Phase``, ``Role``, ...). The guard keeps data rows
such as ``Riluzole | Blocker`` from being read as headers. Rows repeated by a duplicated
infobox are kept once; text after ``</table>`` on the same line is ignored.

Chunks: the text of each section, split at about 120 words on line boundaries (a single longer
line stays whole), plus one chunk for the infobox (``Target SOD1: ASO (tofersen)`` lines) under
the heading it sits in. Chunk text is plain: links reduced to their text, HTML tags and
``[@key]`` citation markers removed. Related Hypotheses and External Links give no chunks.

Text glued after ``▸Metadata`` on its line is ignored (it repeats a metadata row).
"""

from __future__ import annotations

import html
import re
import unicodedata
from pathlib import PurePath
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from debate.core.errors import PageParseError
from debate.core.genes import split_target_label

__all__ = [
    "Chunk",
    "ExternalLink",
    "Fact",
    "InfoboxRow",
    "Link",
    "ParsedPage",
    "RelatedEntry",
    "Section",
    "decode_page",
    "link_slug",
    "parse_page",
]

# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------


class InfoboxRow(BaseModel):
    """One label -> value row of the page's infobox."""

    model_config = ConfigDict(extra="forbid")

    table: str = Field(
        description="Label of the sub-table's header row (e.g. 'Target', 'Trial'); "
        "'' for rows before any header row"
    )
    column: str = Field(
        description="Value of the sub-table's header row (e.g. 'Approach', 'Intervention'); "
        "'' for rows before any header row"
    )
    label: str = Field(description="Label cell as plain text (links reduced to their text)")
    value: str = Field(description="Value cell as plain text")
    line: int = Field(description="1-based line number of the label cell")


class Fact(BaseModel):
    """A ``- Key: value`` bullet, keyed by the heading path it sits under."""

    model_config = ConfigDict(extra="forbid")

    heading_path: list[str] = Field(description="Inferred heading path, nearest heading last")
    key: str = Field(description="Text before the first ': ' outside links, as plain text")
    value: str = Field(description="Text after that ': ', as plain text (may contain ':')")
    line: int = Field(description="1-based line number of the bullet")


class Link(BaseModel):
    """An internal markdown link ``[text](/...)``."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(description="Link text as plain text")
    path: str = Field(description="Link target exactly as written")
    slug: str | None = Field(description="KB page slug the link names, or None when not a KB page")
    heading_path: list[str] = Field(description="Heading path of the line holding the link")
    line: int = Field(description="1-based line number")


class ExternalLink(BaseModel):
    """An external markdown link ``[text](https://...)``: kept as a reference, never fetched."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(description="Link text as plain text")
    url: str = Field(description="URL exactly as written")
    line: int = Field(description="1-based line number")


class Section(BaseModel):
    """A heading and the raw lines under it."""

    model_config = ConfigDict(extra="forbid")

    heading: str = Field(description="Heading as plain text; '' for content before any heading")
    heading_path: list[str] = Field(description="Inferred heading path, this heading last")
    line: int = Field(description="1-based line number of the heading (or first line)")
    lines: list[str] = Field(description="Raw non-blank content lines, without infobox HTML")


class Chunk(BaseModel):
    """A retrieval unit: plain text of (part of) one section, or of the infobox."""

    model_config = ConfigDict(extra="forbid")

    ordinal: int = Field(description="0-based position among the page's chunks")
    heading_path: list[str] = Field(description="Heading path of the chunk's section")
    text: str = Field(description="Plain text: links reduced, HTML and citation markers removed")
    line: int = Field(description="1-based line number of the chunk's first line")


class RelatedEntry(BaseModel):
    """One list line of the Related Hypotheses section."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["hypothesis", "analysis"] = Field(description="What the line links to")
    id: str = Field(description="Hypothesis id (h- + 8 hex digits) or analysis id")
    path: str = Field(description="Link path, e.g. /hypothesis/h-2600483e")
    title: str = Field(description="Link text as written")
    score: float | None = Field(description="Consensus score in [0, 1]; None when not scored")
    target_label: str | None = Field(description="Label after 'Target: ' exactly as written")
    genes: list[str] = Field(description="Gene symbols split from the target label")
    in_progress: bool = Field(description="True when the line ends with the 🔄 marker")
    line: int = Field(description="1-based line number")


class ParsedPage(BaseModel):
    """Everything the engine reads from one KB page."""

    model_config = ConfigDict(extra="forbid")

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
    insert_at: int = Field(
        description="Character offset where a new Related Hypotheses section would be inserted"
    )


# ---------------------------------------------------------------------------------------------
# Regexes and constants (compiled once: the bench ingests thousands of pages)
# ---------------------------------------------------------------------------------------------

# One level of parentheses is allowed inside a target ("/wiki/Foo_(bar)").
_LINK_RE = re.compile(r"(!?)\[([^\[\]]*)\]\(([^()\s]*(?:\([^()\s]*\)[^()\s]*)*)\)")
_CITE_BLOCK_RE = re.compile(r"\[(@[^\[\]]+)\]")
_CITE_STRIP_RE = re.compile(r"\s*\[@[^\[\]]+\]")
_CITE_KEY_RE = re.compile(r"@([^\s;,\]]+)")
_TAG_RE = re.compile(r"<!--.*?-->|</?([A-Za-z][A-Za-z0-9]*)\b[^>]*>", re.S)
_WS_RE = re.compile(r"\s+")
_BOLD_RE = re.compile(r"\*\*(.+?)\*\*")
_BULLET_RE = re.compile(r"^[-*•]\s+")
_LINK_ONLY_RE = re.compile(r"^!?\[[^\[\]]*\]\([^)]*\)$")
_CITE_ONLY_RE = re.compile(r"^\[@[^\[\]]+\]$")
_TRAILER_RE = re.compile(
    r"^(?:No provenance edges found\.?"
    r"|Use \?embed=1\b.*"
    r"|<iframe\b.*"
    r"|https?://\S+"
    r"|\[[^\]]*\]\(https?://[^)\s]*/artifact/[^)\s]*\))$",
    re.I,
)
_TABLE_OPEN_RE = re.compile(r"<table\b[^>]*>", re.I)
_TABLE_CLOSE_RE = re.compile(r"</table\s*>", re.I)
_TABLE_CLASS_RE = re.compile(r"\binfobox-([a-z][a-z0-9_-]*)", re.I)
_TABLE_TOKEN_RE = re.compile(
    r"<(t[dh])\b([^>]*)>(.*?)</t[dh]\s*>"
    r"|<caption\b.*?</caption\s*>"
    r"|</?[A-Za-z][^<>]*>",
    re.I | re.S,
)
_META_ROW_RE = re.compile(r"^\|\s*([^|]*?)\s*\|\s*(.*?)\s*\|\s*$")
_META_SEP_RE = re.compile(r"^:?-{2,}:?$")
_SLUG_JUNK_RE = re.compile(r"[^a-z0-9-]+")
_HEADER_WORD_RE = re.compile(r"^[A-Z][a-z]+$")

_RELATED_RE = re.compile(
    r"^[-*•]\s+\[(?P<title>.*)\]"
    r"\((?P<path>/(?P<kind>hypothesis|analysis)/(?P<id>[^)\s]*))\)(?P<rest>.*)$"
)
_RELATED_REST_RE = re.compile(
    r"^\s*(?:[—–-]\s*(?:<span\b[^>]*>\s*)?(?P<score>[^<\s·🔄]+)\s*(?:</span>)?)?"
    r"\s*(?:·\s*Target:\s*(?P<target>[^🔄]*?))?"
    r"\s*(?P<prog>🔄)?\s*$"
)
_HYP_ID_RE = re.compile(r"^h-[0-9a-f]{8}$")
_ANALYSIS_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")

_INLINE_TAGS = frozenset(
    {"a", "b", "i", "em", "strong", "span", "sup", "sub", "code", "u", "small", "mark", "abbr"}
)
_KNOWN_HEADERS = frozenset(
    {("Target", "Approach"), ("Agent", "Mechanism"), ("Trial", "Intervention")}
)
_COLUMN_WORDS = frozenset(
    {
        "Approach", "Mechanism", "Intervention", "Status", "Phase", "Role", "Function", "Type",
        "Description", "Details", "Value", "Effect", "Outcome", "Stage", "Sponsor",
        "Indication", "Result", "Results", "Evidence", "Notes", "Target", "Class", "Dose",
    }
)
_TOP_LEVEL = frozenset(
    {"overview", "see also", "external links", "references", "related hypotheses"}
)
_NO_CHUNK = frozenset({"related hypotheses", "external links"})
_NOT_KB_PREFIXES = frozenset({"hypothesis", "hypotheses", "analysis", "analyses", "exchange"})
_RELATED_HEADING = "related hypotheses"
_MAX_HEADING_CHARS = 80
_MAX_HEADING_WORDS = 12
_MAX_FACT_KEY_WORDS = 12
_CHUNK_WORDS = 120


# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------


def _tag_sub(m: re.Match[str]) -> str:
    # Inline tags vanish; block tags become a space so words on either side stay apart.
    name = m.group(1)
    return "" if name is not None and name.lower() in _INLINE_TAGS else " "


def _plain(s: str) -> str:
    """Reduce markup to plain text: links to their text, no tags, no citation markers."""
    if "[" not in s and "<" not in s and "&" not in s and "**" not in s:
        # most lines carry no markup: skip the substitutions
        return " ".join(s.split()) if "  " in s or "\t" in s or "\n" in s else s.strip()
    if "[" in s:
        if "[@" in s:
            s = _CITE_STRIP_RE.sub("", s)
        s = _LINK_RE.sub(r"\2", s)
    if "<" in s:
        s = _TAG_RE.sub(_tag_sub, s)
    if "&" in s:
        s = html.unescape(s)
    if "**" in s:
        s = _BOLD_RE.sub(r"\1", s)
    return _WS_RE.sub(" ", s).strip()


def _heading_text(s: str) -> str | None:
    """Plain heading text when the stripped, non-empty line ``s`` stands alone as a heading."""
    c = s[0]
    if c == "#":  # markdown heading from another exporter
        t = _plain(s.lstrip("#"))
        return t or None
    if c in "-*•<|▸>" or len(s) > _MAX_HEADING_CHARS:
        return None
    if s.endswith((".", ";", ",", ":")) or ". " in s:
        return None
    if len(s.split()) > _MAX_HEADING_WORDS:
        return None
    if "<" in s and _TAG_RE.search(s):
        return None
    if c == "[" and (_LINK_ONLY_RE.match(s) or _CITE_ONLY_RE.match(s)):
        return None
    t = _plain(s)
    return t or None


def _is_banner(s: str) -> bool:
    return s.startswith("📗") or s == "Cite This Artifact"


def link_slug(path: str) -> str | None:
    """The KB page slug an internal link path names, or None when it names no KB page.

    ``/therapeutics/riluzole`` -> ``therapeutics-riluzole``; deeper paths join every segment
    with ``-``; query, fragment and trailing slash are dropped. External URLs and the engine's
    own pages (``/hypothesis/...``, ``/analysis/...``, ``/exchange``) give None.
    """
    p = path.strip()
    if not p.startswith("/") or p.startswith("//"):
        return None
    for sep in ("?", "#"):
        cut = p.find(sep)
        if cut >= 0:
            p = p[:cut]
    segments = [seg for seg in p.split("/") if seg]
    if not segments or segments[0].lower() in _NOT_KB_PREFIXES:
        return None
    slug = _SLUG_JUNK_RE.sub("-", "-".join(segments).lower()).strip("-")
    return slug or None


def _slug_from_name(source_name: str) -> str:
    stem = PurePath(source_name.replace("\\", "/")).stem
    # fold accents ("ü" -> "u") so non-ASCII names still give a usable slug
    stem = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode("ascii")
    return _SLUG_JUNK_RE.sub("-", stem.lower()).strip("-")


def decode_page(data: bytes, *, source_name: str) -> str:
    """Decode page bytes as UTF-8 (a BOM is allowed and dropped); line endings are kept.

    Raises :class:`PageParseError` for binary data (NUL bytes), text that is not UTF-8, and
    empty or whitespace-only pages.
    """
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise PageParseError(
            "binary file (NUL byte), not a wiki page", where=f"{source_name}:{line}"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise PageParseError(
            f"not UTF-8 text (invalid byte at offset {exc.start})", where=f"{source_name}:{line}"
        ) from None
    if not text.strip():
        raise PageParseError("empty page", where=source_name)
    return text


# ---------------------------------------------------------------------------------------------
# The parser
# ---------------------------------------------------------------------------------------------


class _Row:
    __slots__ = ("label", "value", "label_line", "value_line", "th_pair")

    def __init__(self, label: str, value: str, label_line: int, value_line: int, th_pair: bool):
        self.label = label
        self.value = value
        self.label_line = label_line
        self.value_line = value_line
        self.th_pair = th_pair


class _Sec:
    __slots__ = ("heading", "path", "line", "lines")

    def __init__(self, heading: str, path: list[str], line: int) -> None:
        self.heading = heading
        self.path = path
        self.line = line
        self.lines: list[str] = []


class _PageParser:
    """Single pass over the lines; state lives here so helpers stay small."""

    def __init__(self, text: str, source_name: str) -> None:
        self.text = text
        self.src = source_name
        self.lines = text.split("\n")
        self.title: str | None = None
        self.title_raw: str | None = None
        self.sections: list[_Sec] = []
        self.cur: _Sec | None = None
        self.group: str | None = None
        self.prev_content = True  # the title counts as content for grouping
        self.facts: list[Fact] = []
        self.links: list[Link] = []
        self.external: list[ExternalLink] = []
        self.citations: dict[str, None] = {}
        self.chunks: list[Chunk] = []
        self.acc: list[str] = []
        self.acc_words = 0
        self.acc_line = 0
        self.acc_path: list[str] = []
        self.infobox: list[InfoboxRow] = []
        self.infobox_seen: set[tuple[str, str, str]] = set()
        self.table_class: str | None = None
        self.metadata: dict[str, str] = {}
        self.related: list[RelatedEntry] = []
        self.related_start: int | None = None
        self.related_end = 0
        self.insert_at: int | None = None
        self.heading_cache: dict[int, str | None] = {}
        self.table_blocks: set[str] = set()

    # -- errors ---------------------------------------------------------------------------

    def fail(self, message: str, line: int) -> PageParseError:
        return PageParseError(message, where=f"{self.src}:{line}")

    # -- main loop -------------------------------------------------------------------------

    def run(self) -> ParsedPage:
        text = self.text
        lines = self.lines
        n = len(lines)
        text_len = len(text)
        pos = 0
        idx = -1
        phase = "head"
        banner_done = False

        while idx + 1 < n:
            idx += 1
            raw = lines[idx]
            start = pos
            pos += len(raw) + 1
            lineno = idx + 1
            if raw.endswith("\r"):
                raw = raw[:-1]
            s = raw.strip()
            if idx == 0 and s.startswith("\ufeff"):
                s = s.lstrip("\ufeff").strip()

            if phase == "head":
                if not s:
                    continue
                if not banner_done and _is_banner(s):
                    banner_done = True
                    continue
                if s[0] in "<|▸-*•" or _TRAILER_RE.match(s):
                    raise self.fail("no page title before this line", lineno)
                title = _plain(s)
                if not title:
                    raise self.fail("no page title before this line", lineno)
                self.title, self.title_raw = title, s
                phase = "body"
                continue

            if phase == "meta":
                if s.startswith("|"):
                    m = _META_ROW_RE.match(s)
                    if m and m.group(1) and not _META_SEP_RE.match(m.group(1)):
                        self.metadata.setdefault(m.group(1), m.group(2))
                continue

            if phase == "related":
                if not s:
                    continue
                if _BULLET_RE.match(s):
                    self.related.append(self._related_entry(s, lineno))
                    self.related_end = min(pos, text_len)
                    self._section_line(raw)
                    continue
                if not self.related and s.startswith("From the"):
                    self.related_end = min(pos, text_len)
                    self._section_line(raw)
                    continue
                phase = "body"  # the list ended: this line is ordinary body text

            # -- body ---------------------------------------------------------------------
            if not s or s == self.title_raw or _is_banner(s):
                continue
            c = s[0]
            if c == "▸":
                if s[1:].lstrip().startswith("Metadata"):
                    self._flush()
                    self.insert_at = start
                    phase = "meta"
                continue
            if c in "NnUu<hH[" and _TRAILER_RE.match(s):
                continue
            if c == "<":
                m = _TABLE_OPEN_RE.match(text, start + len(raw) - len(raw.lstrip()))
                if m:
                    # The whole table is tokenised at once; the loop resumes after its last line.
                    cm = _TABLE_CLASS_RE.search(m.group(0))
                    if cm and self.table_class is None:
                        self.table_class = cm.group(1).lower()
                    self._flush()
                    end = self._table(m.end(), lineno)
                    idx += text.count("\n", start, end)
                    nl = text.find("\n", end)
                    pos = nl + 1 if nl >= 0 else text_len + 1
                    self.prev_content = True
                    continue
            cache = self.heading_cache
            heading = cache.pop(idx) if idx in cache else _heading_text(s)
            if heading is not None:
                if heading.lower() == _RELATED_HEADING:
                    if self.related_start is not None:
                        raise self.fail("second Related Hypotheses section", lineno)
                    self._open_heading(heading, lineno, idx)
                    self.related_start = start
                    self.related_end = min(pos, text_len)
                    phase = "related"
                    continue
                cur = self.cur
                if cur is not None and not cur.lines and cur.heading == heading:
                    continue  # repeated heading of a duplicated export block
                self._open_heading(heading, lineno, idx)
                continue
            self._content(raw, s, lineno)

        if self.title is None:
            raise self.fail("no page title (only banner or blank lines)", max(1, n))
        self._flush()
        return self._result()

    # -- headings and grouping -------------------------------------------------------------

    def _next_is_heading(self, idx: int) -> bool:
        lines = self.lines
        for j in range(idx + 1, len(lines)):
            t = lines[j].strip()
            if not t or t == self.title_raw or _is_banner(t) or _TRAILER_RE.match(t):
                continue
            heading = _heading_text(t)
            self.heading_cache[j] = heading  # the main loop reuses it for line j
            return heading is not None
        return False

    def _open_heading(self, heading: str, lineno: int, idx: int) -> None:
        self._flush()
        key = heading.lower()
        if key in _TOP_LEVEL:
            self.group = None
            path = [heading]
        elif (self.prev_content or self.group is None) and self._next_is_heading(idx):
            self.group = heading
            path = [heading]
        elif self.group is not None:
            path = [self.group, heading]
        else:
            path = [heading]
        sec = _Sec(heading, path, lineno)
        self.sections.append(sec)
        self.cur = sec
        self.prev_content = False

    def _section_line(self, raw: str) -> None:
        if self.cur is not None:
            self.cur.lines.append(raw.rstrip("\r"))

    # -- content lines ---------------------------------------------------------------------

    def _content(self, raw: str, s: str, lineno: int) -> None:
        cur = self.cur
        if cur is None:  # text between the title and the first heading
            cur = _Sec("", [], lineno)
            self.sections.append(cur)
            self.cur = cur
        cur.lines.append(raw)
        self.prev_content = True
        path = cur.path
        if "[" in s:
            self._collect_refs(s, path, lineno)
        bullet = _BULLET_RE.match(s) if s[0] in "-*•" else None
        if bullet:
            body = s[bullet.end():]
            fact = self._fact(body, path, lineno)
            text = f"{fact.key}: {fact.value}" if fact is not None else _plain(body)
            if text:
                text = "- " + text
        else:
            text = _plain(s)
        if text and (not path or path[0].lower() not in _NO_CHUNK):
            self._add_chunk_line(text, path, lineno)

    def _collect_refs(self, s: str, path: list[str], lineno: int) -> None:
        if "[@" in s:
            for block in _CITE_BLOCK_RE.findall(s):
                for key in _CITE_KEY_RE.findall(block):
                    self.citations.setdefault(key, None)
        for m in _LINK_RE.finditer(s):
            target = m.group(3)
            label = _plain(m.group(2))
            if target.startswith("/") and not target.startswith("//"):
                link = Link(
                    text=label, path=target, slug=link_slug(target), heading_path=path, line=lineno
                )
                self.links.append(link)
            elif target.startswith(("http://", "https://", "//")):
                self.external.append(ExternalLink(text=label, url=target, line=lineno))

    def _fact(self, body: str, path: list[str], lineno: int) -> Fact | None:
        """Record a ``Key: value`` bullet body as a fact; return it (None when not a fact)."""
        cut = body.find(": ")
        if cut < 0:
            return None
        if "[" in body:
            # a ': ' inside link text or a URL does not split key from value
            spans = [m.span() for m in _LINK_RE.finditer(body)]
            spans += [m.span() for m in _CITE_BLOCK_RE.finditer(body)]
            while cut >= 0 and any(a <= cut < b for a, b in spans):
                cut = body.find(": ", cut + 1)
            if cut < 0:
                return None
        key = _plain(body[:cut])
        value = _plain(body[cut + 2:])
        if not key or not value or len(key.split()) > _MAX_FACT_KEY_WORDS:
            return None
        fact = Fact(heading_path=path, key=key, value=value, line=lineno)
        self.facts.append(fact)
        return fact

    # -- chunks ----------------------------------------------------------------------------

    def _add_chunk_line(self, text: str, path: list[str], lineno: int) -> None:
        words = len(text.split())
        if self.acc and (self.acc_path is not path or self.acc_words + words > _CHUNK_WORDS):
            self._flush()
        if not self.acc:
            self.acc_line = lineno
            self.acc_path = path
        self.acc.append(text)
        self.acc_words += words

    def _flush(self) -> None:
        if self.acc:
            self._emit_chunk("\n".join(self.acc), self.acc_path, self.acc_line)
            self.acc = []
            self.acc_words = 0

    def _emit_chunk(self, text: str, path: list[str], line: int) -> None:
        self.chunks.append(Chunk(ordinal=len(self.chunks), heading_path=path, text=text, line=line))

    # -- infobox ---------------------------------------------------------------------------

    def _table(self, offset: int, table_line: int) -> int:
        """Tokenise the table opened just before ``offset``; return the offset after ``</table>``.

        Text between tags means the table was never closed (the page's prose follows it).
        """
        text = self.text
        close = _TABLE_CLOSE_RE.search(text, offset)
        block = text[offset:close.start()] if close else None
        if block is not None and block in self.table_blocks:
            return close.end()  # a duplicated export block: every row is already kept
        rows: list[_Row] = []
        cells: list[tuple[str, str, str, int]] = []
        cursor = offset
        line = table_line
        stray = ""
        for m in _TABLE_TOKEN_RE.finditer(text, offset):
            begin = m.start()
            if begin > cursor:
                if not text[cursor:begin].isspace():
                    stray = self._stray(cursor, begin, line)
                    break
                line += text.count("\n", cursor, begin)
            cursor = m.end()
            tag = m.group(1)
            if tag is not None:
                cells.append((tag.lower(), m.group(2), m.group(3), line))
                line += m.group(0).count("\n")
                continue
            tok = m.group(0)[:6].lower()
            if tok.startswith(("<tr", "</tr")):
                self._finish_row(cells, rows)
            elif tok == "</tabl":
                self._finish_row(cells, rows)
                self._finish_table(rows, table_line)
                if block is not None:
                    self.table_blocks.add(block)
                return cursor
            elif tok == "<table":
                stray = f" (another <table> opens on line {line})"
                break
            # any other tag (tbody, thead, caption) carries no rows
        else:
            if text[cursor:].strip():
                stray = self._stray(cursor, len(text), line)
        raise self.fail(f"infobox <table> is never closed with </table>{stray}", table_line)

    def _stray(self, begin: int, end: int, line: int) -> str:
        """Name the line of the first non-blank text in ``text[begin:end]`` (``line`` at begin)."""
        gap = self.text[begin:end]
        at = line + gap[: len(gap) - len(gap.lstrip())].count("\n")
        return f" (text outside any cell on line {at})"

    def _finish_row(self, cells: list[tuple[str, str, str, int]], rows: list[_Row]) -> None:
        if not cells:
            return
        if len(cells) == 1:
            tag, attrs, _content, line = cells[0]
            cells.clear()
            if tag == "th" or "colspan" in attrs.lower():
                return  # the infobox title or a spanning caption
            raise self.fail("infobox row has a label cell but no value cell", line)
        label_idx = 0
        for i, (tag, attrs, _content, _line) in enumerate(cells):
            if tag == "td" and "label" in attrs:
                label_idx = i
                break
        label_cell = cells[label_idx]
        values = [cell for i, cell in enumerate(cells) if i != label_idx]
        value = "; ".join(cell[2] for cell in values)
        th_pair = all(cell[0] == "th" for cell in cells)
        rows.append(_Row(label_cell[2], value, label_cell[3], values[0][3], th_pair))
        cells.clear()

    def _finish_table(self, rows: list[_Row], table_line: int) -> None:
        path = self.cur.path if self.cur is not None else []
        table = column = ""
        out: list[str] = []
        plain = [(_plain(r.label), _plain(r.value)) for r in rows]
        for k, r in enumerate(rows):
            label, value = plain[k]
            if self._is_header_row(k, r, label, value, plain):
                table, column = label, value
                continue
            key = (table, label, value)
            if key in self.infobox_seen:
                continue  # duplicated infobox block
            self.infobox_seen.add(key)
            self.infobox.append(
                InfoboxRow(table=table, column=column, label=label, value=value, line=r.label_line)
            )
            for cell, line in ((r.label, r.label_line), (r.value, r.value_line)):
                if "[" in cell:
                    self._collect_refs(cell, path, line)
            out.append(f"{table} {label}: {value}" if table else f"{label}: {value}")
        if out:
            self._emit_chunk("\n".join(out), path, table_line)

    @staticmethod
    def _is_header_row(
        k: int, r: _Row, label: str, value: str, plain: list[tuple[str, str]]
    ) -> bool:
        if r.th_pair or (label, value) in _KNOWN_HEADERS:
            return True
        if not (_HEADER_WORD_RE.match(label) and _HEADER_WORD_RE.match(value)):
            return False
        if k + 1 >= len(plain) or "[" in r.label or "[" in r.value:
            return False
        return k == 0 or value in _COLUMN_WORDS

    # -- related section -------------------------------------------------------------------

    def _related_entry(self, s: str, lineno: int) -> RelatedEntry:
        m = _RELATED_RE.match(s)
        if m is None:
            raise self.fail(f"unreadable Related Hypotheses line: {s[:80]!r}", lineno)
        kind = m.group("kind")
        ident = m.group("id")
        if kind == "hypothesis" and not _HYP_ID_RE.match(ident):
            raise self.fail(f"bad hypothesis id {ident!r} (expected h- and 8 hex digits)", lineno)
        if kind == "analysis" and not _ANALYSIS_ID_RE.match(ident):
            raise self.fail(f"bad analysis id {ident!r}", lineno)
        rest = _RELATED_REST_RE.match(m.group("rest"))
        if rest is None:
            raise self.fail(f"unreadable Related Hypotheses line: {s[:80]!r}", lineno)
        score: float | None = None
        raw_score = rest.group("score")
        if raw_score is not None:
            try:
                score = float(raw_score)
            except ValueError:
                raise self.fail(f"score {raw_score!r} is not a number", lineno) from None
            if not 0.0 <= score <= 1.0:
                raise self.fail(f"score {raw_score!r} is outside [0, 1]", lineno)
        target = rest.group("target")
        target = target.strip() if target is not None else None
        if not target:
            target = None
        return RelatedEntry(
            kind=kind,
            id=ident,
            path=m.group("path"),
            title=m.group("title").strip(),
            score=score,
            target_label=target,
            genes=split_target_label(target) if target else [],
            in_progress=rest.group("prog") is not None,
            line=lineno,
        )

    # -- result ----------------------------------------------------------------------------

    def _result(self) -> ParsedPage:
        meta = self.metadata
        slug = meta.get("slug", "").strip()
        if not slug or slug == "None":
            slug = _slug_from_name(self.src)
            if not slug:
                raise PageParseError("cannot derive a page slug from the file name", where=self.src)
        entity_type: str | None = meta.get("entity_type", "").strip() or None
        if entity_type == "None":
            entity_type = None
        if entity_type is None:
            entity_type = self.table_class
        assert self.title is not None
        span = (
            (self.related_start, self.related_end) if self.related_start is not None else None
        )
        return ParsedPage(
            slug=slug,
            title=self.title,
            entity_type=entity_type,
            metadata=meta,
            sections=[
                Section(heading=s.heading, heading_path=s.path, line=s.line, lines=s.lines)
                for s in self.sections
            ],
            facts=self.facts,
            infobox=self.infobox,
            links=self.links,
            external_links=self.external,
            citations=list(self.citations),
            chunks=self.chunks,
            related=self.related,
            has_related_section=self.related_start is not None,
            related_span=span,
            insert_at=self.insert_at if self.insert_at is not None else len(self.text),
        )


def parse_page(text: str, *, source_name: str) -> ParsedPage:
    """Parse one exported wiki page.

    ``source_name`` is the page's file name: it gives the slug when the page has no metadata
    ``slug`` row, and names the file in errors (``where="name:line"``). Raises
    :class:`PageParseError` for an empty page, a page without a title, an infobox ``<table>``
    that is never closed, an infobox row without a value cell, and an unreadable Related
    Hypotheses list line. Character offsets in the result index ``text`` as given (CRLF kept).
    """
    if not text.strip():
        raise PageParseError("empty page", where=f"{source_name}:1")
    return _PageParser(text, source_name).run()
