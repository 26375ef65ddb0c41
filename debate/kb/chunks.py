"""Grouping a page's plain-text lines into retrieval :class:`Chunk` s of about 120 words.

A chunk also has a size limit in UTF-8 bytes (``[kb] max_chunk_bytes``): a page is untrusted,
and one runaway line must not become one huge chunk (stored twice, with its search index). A
chunk over the limit is split at line breaks, a line over it between words, and a word over it
anywhere (on a character boundary).
"""

from __future__ import annotations

from debate.kb.page import Chunk

__all__ = ["MAX_CHUNK_BYTES", "ChunkBuilder", "split_text"]

_CHUNK_WORDS = 120
MAX_CHUNK_BYTES = 4_000  # the default of [kb] max_chunk_bytes


def _size(text: str) -> int:
    # Most lines are ASCII: their length is their size, without encoding them.
    return len(text) if text.isascii() else len(text.encode("utf-8"))


class ChunkBuilder:
    """Collects lines of one section until the word budget or the section ends.

    Lines are split only on line boundaries, so a single longer line stays whole unless it is
    over ``max_bytes``.
    """

    def __init__(self, max_bytes: int = MAX_CHUNK_BYTES) -> None:
        self.max_bytes = max_bytes
        self.chunks: list[Chunk] = []
        self._acc: list[str] = []
        self._acc_words = 0
        self._acc_bytes = 0
        self._acc_line = 0
        self._acc_path: list[str] = []
        self._acc_hidden: list[str] = []

    def add_line(self, text: str, path: list[str], lineno: int, hidden: str = "") -> None:
        """Add a plain line of the section whose heading path is ``path``; ``hidden`` is the
        markup its plain text left out (see :attr:`Chunk.hidden`)."""
        words = len(text.split())
        size = _size(text) + 1  # with the line break that joins it
        # Identity, not equality: two sections with the same path are still separate chunks.
        if self._acc and (
            self._acc_path is not path
            or self._acc_words + words > _CHUNK_WORDS
            or self._acc_bytes + size > self.max_bytes + 1
        ):
            self.flush()
        if not self._acc:
            self._acc_line = lineno
            self._acc_path = path
        self._acc.append(text)
        self._acc_words += words
        self._acc_bytes += size
        if hidden:
            self._acc_hidden.append(hidden)

    def flush(self) -> None:
        """Emit the lines collected so far as one chunk (a section or the page ended)."""
        if self._acc:
            self.emit("\n".join(self._acc), self._acc_path, self._acc_line, "\n".join(self._acc_hidden))
            self._acc = []
            self._acc_words = 0
            self._acc_bytes = 0
            self._acc_hidden = []

    def emit(self, text: str, path: list[str], line: int, hidden: str = "") -> None:
        """Add a whole chunk at once (the infobox's lines), split when over the size limit (each
        piece keeps all of ``hidden``)."""
        for piece in split_text(text, self.max_bytes):
            self.chunks.append(Chunk(ordinal=len(self.chunks), heading_path=path, text=piece, line=line, hidden=hidden))


def split_text(text: str, max_bytes: int) -> list[str]:
    """``text`` in pieces of at most ``max_bytes`` UTF-8 bytes: whole lines where they fit."""
    if _size(text) <= max_bytes:
        return [text]
    pieces: list[str] = []
    for line in text.split("\n"):
        parts = [line] if _size(line) <= max_bytes else _split_line(line, max_bytes)
        for part in parts:
            if pieces and _size(pieces[-1]) + 1 + _size(part) <= max_bytes:
                pieces[-1] += "\n" + part
            else:
                pieces.append(part)
    return [p for p in pieces if p.strip()]


def _split_line(line: str, max_bytes: int) -> list[str]:
    """One long line in pieces between words; a word longer than the limit is cut."""
    pieces: list[str] = []
    cur: list[str] = []
    cur_size = 0
    for word in line.split():
        size = _size(word)
        if cur and cur_size + 1 + size > max_bytes:
            pieces.append(" ".join(cur))
            cur, cur_size = [], 0
        if size > max_bytes:
            *whole, word = _cut(word, max_bytes)
            pieces += whole
            size = _size(word)
        cur.append(word)
        cur_size += size + (1 if len(cur) > 1 else 0)
    if cur:
        pieces.append(" ".join(cur))
    return pieces


def _cut(word: str, max_bytes: int) -> list[str]:
    """``word`` cut into pieces of at most ``max_bytes`` bytes, never inside a character."""
    data = word.encode("utf-8")
    out: list[str] = []
    while data:
        cut = min(max_bytes, len(data))
        while cut < len(data) and data[cut] & 0xC0 == 0x80:  # a UTF-8 continuation byte
            cut -= 1
        out.append(data[:cut].decode("utf-8"))
        data = data[cut:]
    return out
