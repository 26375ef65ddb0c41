"""Grouping a page's plain-text lines into retrieval :class:`Chunk` s of about 120 words."""

from __future__ import annotations

from debate.kb.page import Chunk

__all__ = ["ChunkBuilder"]

_CHUNK_WORDS = 120


class ChunkBuilder:
    """Collects lines of one section until the word budget or the section ends.

    Lines are split only on line boundaries, so a single longer line stays whole.
    """

    def __init__(self) -> None:
        self.chunks: list[Chunk] = []
        self._acc: list[str] = []
        self._acc_words = 0
        self._acc_line = 0
        self._acc_path: list[str] = []

    def add_line(self, text: str, path: list[str], lineno: int) -> None:
        """Add a plain line of the section whose heading path is ``path``."""
        words = len(text.split())
        # Identity, not equality: two sections with the same path are still separate chunks.
        if self._acc and (self._acc_path is not path or self._acc_words + words > _CHUNK_WORDS):
            self.flush()
        if not self._acc:
            self._acc_line = lineno
            self._acc_path = path
        self._acc.append(text)
        self._acc_words += words

    def flush(self) -> None:
        """Emit the lines collected so far as one chunk (a section or the page ended)."""
        if self._acc:
            self.emit("\n".join(self._acc), self._acc_path, self._acc_line)
            self._acc = []
            self._acc_words = 0

    def emit(self, text: str, path: list[str], line: int) -> None:
        """Add a whole chunk at once (the infobox's lines)."""
        self.chunks.append(Chunk(ordinal=len(self.chunks), heading_path=path, text=text, line=line))
