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

Chunks: the text of each section, split at about 120 words on line boundaries (a longer line
stays whole up to the byte limit, see ``chunks.py``), plus one chunk for the infobox
(``Target SOD1: ASO (tofersen)`` lines) under the heading it sits in. Chunk text is plain:
links reduced to their text, HTML tags and ``[@key]`` citation markers removed; what those held
in words (a comment, a tag attribute, a marker with a note) is kept beside the text as
``Chunk.hidden``, screened with it (``debate.kb.screen``) and never quoted. Related Hypotheses
and External Links give no chunks.

Text glued after ``▸Metadata`` on its line is ignored (it repeats a metadata row).
"""

from __future__ import annotations

import re

from debate.core.errors import PageParseError
from debate.kb.chunks import MAX_CHUNK_BYTES, ChunkBuilder
from debate.kb.infobox import (
    TABLE_CLASS_RE,
    TABLE_CLOSE_RE,
    TABLE_OPEN_RE,
    TableRow,
    chunk_line,
    label_rows,
    read_table,
)
from debate.kb.markup import (
    BULLET_RE,
    CITE_BLOCK_RE,
    CITE_KEY_RE,
    LINK_RE,
    TRAILER_RE,
    heading_text,
    hidden_markup,
    is_banner,
    plain,
    split_fact,
)
from debate.kb.page import (
    Chunk,
    ExternalLink,
    Fact,
    InfoboxRow,
    Link,
    ParsedPage,
    RelatedEntry,
    Section,
)
from debate.kb.related import parse_related_line
from debate.kb.slugs import link_slug, slug_from_name, slug_problem

# The models and link_slug are re-exported: callers import them from here, the entry point.
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

_META_ROW_RE = re.compile(r"^\|\s*([^|]*?)\s*\|\s*(.*?)\s*\|\s*$")
_META_SEP_RE = re.compile(r"^:?-{2,}:?$")
_TOP_LEVEL = frozenset({"overview", "see also", "external links", "references", "related hypotheses"})
_NO_CHUNK = frozenset({"related hypotheses", "external links"})
_RELATED_HEADING = "related hypotheses"


def decode_page(data: bytes, *, source_name: str) -> str:
    """Decode page bytes as UTF-8 (a BOM is allowed and dropped); line endings are kept.

    Raises :class:`PageParseError` for binary data (NUL bytes), text that is not UTF-8, and
    empty or whitespace-only pages.
    """
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise PageParseError("binary file (NUL byte), not a wiki page", where=f"{source_name}:{line}")
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


class _Sec:
    __slots__ = ("heading", "path", "line", "lines")

    def __init__(self, heading: str, path: list[str], line: int) -> None:
        self.heading = heading
        self.path = path
        self.line = line
        self.lines: list[str] = []


class _PageParser:
    """Single pass over the lines; state lives here so helpers stay small."""

    def __init__(self, text: str, source_name: str, chunk_bytes: int) -> None:
        self.text = text
        self.src = source_name
        self.lines = text.split("\n")
        # "head" until the title, then "body"; "related" while in its list; "meta" to the end.
        self.phase = "head"
        self.banner_done = False
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
        self.chunker = ChunkBuilder(chunk_bytes)
        self.infobox: list[InfoboxRow] = []
        self.infobox_seen: set[tuple[str, str, str]] = set()
        self.table_class: str | None = None
        self.metadata: dict[str, str] = {}
        self.slug_line = 0  # line of the metadata slug row, for errors
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
        while idx + 1 < n:
            idx += 1
            raw = lines[idx]
            start = pos
            pos += len(raw) + 1
            if raw.endswith("\r"):
                raw = raw[:-1]
            s = raw.strip()
            if idx == 0 and s.startswith("\ufeff"):
                s = s.lstrip("\ufeff").strip()
            phase = self.phase
            if phase == "head":
                self._head_line(s, idx + 1)
                continue
            if phase == "meta":
                self._meta_line(s, idx + 1)
                continue
            end = min(pos, text_len)
            if phase == "related" and self._related_line(raw, s, idx + 1, end):
                continue
            table_end = self._body_line(raw, s, idx, start, end)
            if table_end is not None:
                # The whole table was read at once; the loop resumes after its last line.
                idx += text.count("\n", start, table_end)
                nl = text.find("\n", table_end)
                pos = nl + 1 if nl >= 0 else text_len + 1

        if self.title is None:
            raise self.fail("no page title (only banner or blank lines)", max(1, n))
        if not (self.banner_done or self.sections or self.facts or self.infobox or self.phase == "meta"):
            # A stray text file ("hello") must not become a page that debates then cite.
            raise self.fail(
                "not a wiki page: no banner, heading, '- Key: value' fact or metadata table after the title", 1
            )
        self.chunker.flush()
        return self._result()

    def _head_line(self, s: str, lineno: int) -> None:
        """Before the title: skip blank lines and the banner; the next line is the title."""
        if not s:
            return
        if not self.banner_done and is_banner(s):
            self.banner_done = True
            return
        if s[0] in "<|▸-*•" or TRAILER_RE.match(s):
            raise self.fail("no page title before this line", lineno)
        title = plain(s)
        if not title:
            raise self.fail("no page title before this line", lineno)
        self.title, self.title_raw = title, s
        self.phase = "body"

    def _meta_line(self, s: str, lineno: int) -> None:
        """After ``▸Metadata``: keep the first value of each ``| key | value |`` row."""
        if s.startswith("|"):
            m = _META_ROW_RE.match(s)
            if m and m.group(1) and not _META_SEP_RE.match(m.group(1)):
                if m.group(1) == "slug" and "slug" not in self.metadata:
                    self.slug_line = lineno
                self.metadata.setdefault(m.group(1), m.group(2))

    def _related_line(self, raw: str, s: str, lineno: int, end: int) -> bool:
        """Take a line of the Related Hypotheses list; False when the list has ended."""
        if not s:
            return True
        if BULLET_RE.match(s):
            self.related.append(parse_related_line(s, lineno, self.fail))
        elif self.related or not s.startswith("From the"):
            self.phase = "body"  # the list ended: this line is ordinary body text
            return False
        # a list line, or the "From the ..." line that introduces the list
        self.related_end = end
        self._section_line(raw)
        return True

    def _body_line(self, raw: str, s: str, idx: int, start: int, end: int) -> int | None:
        """Take a body line; return the offset after ``</table>`` when it opened the infobox.

        ``start``/``end`` are the line's character offsets in the text.
        """
        if not s or s == self.title_raw or is_banner(s):
            return None
        c = s[0]
        if c == "▸":
            if s[1:].lstrip().startswith("Metadata"):
                self.chunker.flush()
                self.insert_at = start
                self.phase = "meta"
            return None
        if c in "NnUu<hH[" and TRAILER_RE.match(s):
            return None
        if c == "<":
            m = TABLE_OPEN_RE.match(self.text, start + len(raw) - len(raw.lstrip()))
            if m:
                return self._table(m, idx + 1)
        cache = self.heading_cache
        heading = cache.pop(idx) if idx in cache else heading_text(s)
        if heading is None:
            self._content(raw, s, idx + 1)
        else:
            self._heading_line(heading, idx, start, end)
        return None

    # -- headings and grouping -------------------------------------------------------------

    def _heading_line(self, heading: str, idx: int, start: int, end: int) -> None:
        lineno = idx + 1
        if heading.lower() == _RELATED_HEADING:
            if self.related_start is not None:
                raise self.fail("second Related Hypotheses section", lineno)
            self._open_heading(heading, lineno, idx)
            self.related_start = start
            self.related_end = end
            self.phase = "related"
            return
        cur = self.cur
        if cur is not None and not cur.lines and cur.heading == heading:
            return  # repeated heading of a duplicated export block
        self._open_heading(heading, lineno, idx)

    def _next_is_heading(self, idx: int) -> bool:
        lines = self.lines
        for j in range(idx + 1, len(lines)):
            t = lines[j].strip()
            if not t or t == self.title_raw or is_banner(t) or TRAILER_RE.match(t):
                continue
            heading = heading_text(t)
            self.heading_cache[j] = heading  # the main loop reuses it for line j
            return heading is not None
        return False

    def _open_heading(self, heading: str, lineno: int, idx: int) -> None:
        self.chunker.flush()
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
        bullet = BULLET_RE.match(s) if s[0] in "-*•" else None
        if bullet:
            body = s[bullet.end() :]
            fact = self._fact(body, path, lineno)
            text = f"{fact.key}: {fact.value}" if fact is not None else plain(body)
            if text:
                text = "- " + text
        else:
            text = plain(s)
        if text and (not path or path[0].lower() not in _NO_CHUNK):
            self.chunker.add_line(text, path, lineno, hidden_markup(s))

    def _collect_refs(self, s: str, path: list[str], lineno: int) -> None:
        if "[@" in s:
            for block in CITE_BLOCK_RE.findall(s):
                for key in CITE_KEY_RE.findall(block):
                    self.citations.setdefault(key, None)
        for m in LINK_RE.finditer(s):
            target = m.group(3)
            label = plain(m.group(2))
            if target.startswith("/") and not target.startswith("//"):
                link = Link(text=label, path=target, slug=link_slug(target), heading_path=path, line=lineno)
                self.links.append(link)
            elif target.startswith(("http://", "https://", "//")):
                self.external.append(ExternalLink(text=label, url=target, line=lineno))

    def _fact(self, body: str, path: list[str], lineno: int) -> Fact | None:
        """Record a ``Key: value`` bullet body as a fact; return it (None when not a fact)."""
        key_value = split_fact(body)
        if key_value is None:
            return None
        key, value = key_value
        fact = Fact(heading_path=path, key=key, value=value, line=lineno)
        self.facts.append(fact)
        return fact

    # -- infobox ---------------------------------------------------------------------------

    def _table(self, open_tag: re.Match[str], table_line: int) -> int:
        """Read the table ``open_tag`` opens; return the offset after its ``</table>``."""
        cm = TABLE_CLASS_RE.search(open_tag.group(0))
        if cm and self.table_class is None:
            self.table_class = cm.group(1).lower()
        self.chunker.flush()
        self.prev_content = True
        offset = open_tag.end()
        close = TABLE_CLOSE_RE.search(self.text, offset)
        block = self.text[offset : close.start()] if close is not None else None
        if close is not None and block in self.table_blocks:
            return close.end()  # a duplicated export block: every row is already kept
        rows, end = read_table(self.text, offset, table_line, self.fail)
        self._finish_table(rows, table_line)
        if block is not None:
            self.table_blocks.add(block)
        return end

    def _finish_table(self, rows: list[TableRow], table_line: int) -> None:
        path = self.cur.path if self.cur is not None else []
        out: list[str] = []
        hidden: list[str] = []
        for row, cells in label_rows(rows):
            key = (row.table, row.label, row.value)
            if key in self.infobox_seen:
                continue  # duplicated infobox block
            self.infobox_seen.add(key)
            self.infobox.append(row)
            for cell, line in ((cells.label, cells.label_line), (cells.value, cells.value_line)):
                if "[" in cell:
                    self._collect_refs(cell, path, line)
                if "[@" in cell or "<" in cell:
                    hidden.append(hidden_markup(cell))
            out.append(chunk_line(row))
        if out:
            self.chunker.emit("\n".join(out), path, table_line, "\n".join(h for h in hidden if h))

    # -- result ----------------------------------------------------------------------------

    def _slug(self) -> str:
        slug = self.metadata.get("slug", "").strip()
        where = f"{self.src}:{self.slug_line}"
        if not slug or slug == "None":
            slug, where = slug_from_name(self.src), self.src
            if not slug:
                raise PageParseError("cannot derive a page slug from the file name", where=self.src)
        # The slug keys the page and names its export file: a path in it must not get that far.
        problem = slug_problem(slug)
        if problem is not None:
            raise PageParseError(problem, where=where)
        return slug

    def _entity_type(self) -> str | None:
        entity_type: str | None = self.metadata.get("entity_type", "").strip() or None
        if entity_type == "None":
            entity_type = None
        return entity_type if entity_type is not None else self.table_class

    def _result(self) -> ParsedPage:
        assert self.title is not None
        span = (self.related_start, self.related_end) if self.related_start is not None else None
        return ParsedPage(
            slug=self._slug(),
            title=self.title,
            entity_type=self._entity_type(),
            metadata=self.metadata,
            sections=[
                Section(heading=s.heading, heading_path=s.path, line=s.line, lines=s.lines) for s in self.sections
            ],
            facts=self.facts,
            infobox=self.infobox,
            links=self.links,
            external_links=self.external,
            citations=list(self.citations),
            chunks=self.chunker.chunks,
            related=self.related,
            has_related_section=self.related_start is not None,
            related_span=span,
            insert_at=self.insert_at if self.insert_at is not None else len(self.text),
        )


def parse_page(text: str, *, source_name: str, chunk_bytes: int = MAX_CHUNK_BYTES) -> ParsedPage:
    """Parse one exported wiki page.

    ``source_name`` is the page's file name: it gives the slug when the page has no metadata
    ``slug`` row, and names the file in errors (``where="name:line"``). Raises
    :class:`PageParseError` for an empty page, a page without a title, an infobox ``<table>``
    that is never closed, an infobox row without a value cell, and an unreadable Related
    Hypotheses list line, and a slug that could not name a file (``../x``). Chunks longer than
    ``chunk_bytes`` (UTF-8) are split. Character offsets in the result index ``text`` as given.
    """
    if not text.strip():
        raise PageParseError("empty page", where=f"{source_name}:1")
    return _PageParser(text, source_name, chunk_bytes).run()
