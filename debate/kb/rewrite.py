"""Write the engine's Related Hypotheses section back into a page, touching nothing else.

Pure text surgery on offsets computed by :func:`debate.kb.parse.parse_page`: every byte outside
the replaced block stays as it was, so a page round-trips exactly when the section is unchanged.
"""

from __future__ import annotations

from debate.kb.parse import ParsedPage

__all__ = ["replace_related_section"]

_RELATED_HEADING = "related hypotheses"


def _uses_crlf(text: str) -> bool:
    """True when the page's first line break is CRLF (its line ending style)."""
    nl = text.find("\n")
    return nl > 0 and text[nl - 1] == "\r"


def replace_related_section(text: str, page: ParsedPage, section: str) -> str:
    """Return ``text`` with its Related Hypotheses block replaced by ``section``.

    ``page`` must be the result of parsing ``text``. ``section`` is the complete rendered block
    (heading line, ``From the ...`` line, list lines), each line ending in ``"\\n"``; it is
    converted to CRLF when the page uses CRLF. A page without the section gets it inserted at
    ``page.insert_at`` (before ``▸Metadata``, else at the end). An empty ``section`` leaves the
    text unchanged.

    Raises ``ValueError`` when ``page`` does not describe ``text`` (offsets out of range or not
    at the Related Hypotheses heading).
    """
    if not section:
        return text
    section = section.replace("\r\n", "\n")
    if _uses_crlf(text):
        section = section.replace("\n", "\r\n")
    if page.related_span is not None:
        start, end = page.related_span
        if not (0 <= start <= end <= len(text)) or not (text[start:end].lstrip().lower().startswith(_RELATED_HEADING)):
            raise ValueError("page offsets do not match the text (parse the same text first)")
        if end == len(text) and not text.endswith("\n"):
            # the old block ended the file without a line break: keep it that way
            section = section.rstrip("\r\n")
        return text[:start] + section + text[end:]
    at = page.insert_at
    if not 0 <= at <= len(text):
        raise ValueError("page offsets do not match the text (parse the same text first)")
    head = text[:at]
    if at == len(text) and head and not head.endswith("\n"):
        head += "\r\n" if _uses_crlf(text) else "\n"
    return head + section + text[at:]
