"""Secrets out of anything printed or logged: passwords in URLs become ``***``.

Database URLs carry passwords (``postgresql+psycopg://user:pw@host/db``), and they reach users
through status lines, ``debate info`` and error messages (a driver's error may quote the URL).
Everything shown goes through :func:`redact` on its way out.
"""

from __future__ import annotations

import re

# scheme://user:password@  — the password is everything between the first ':' after the user
# and the last '@' before the host (a password may itself contain '@' or ':').
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/?#@\s]*:)(?P<pw>[^\s/?#]*)@")
# key=value conninfo (libpq): password=...
_CONNINFO_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)(?P<pw>'(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` with every URL password and conninfo ``password=`` value replaced by ``***``."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['head']}***@", text)
    return _CONNINFO_PASSWORD.sub(lambda m: f"{m['head']}***", text)
