"""Reviewer authentication: bearer tokens for the API; the UI signs in with one to get a session.

Tokens come only from ``DEBATE_REVIEWER_TOKENS`` (a JSON object, reviewer name -> token); with
none configured every write is refused. A token identifies its reviewer, so each write records
who made it. The token itself never goes into a cookie: signing in to the UI creates a
server-side session (:mod:`debate.server.web.sessions`) whose random id the cookie holds.
"""

from __future__ import annotations

import hmac
import json
import secrets
from dataclasses import dataclass

from debate.core.config import Settings
from debate.core.errors import ConfigError

COOKIE = "debate_session"
LOGIN_COOKIE = "debate_login"
# Earlier versions kept the bearer token itself in this cookie; signing in or out clears it.
LEGACY_COOKIE = "debate_reviewer"


class AuthError(Exception):
    """A refused write: 401 when no credentials were given, 403 when they are wrong or writes are off."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


def parse_tokens(raw: str | None) -> dict[str, str]:
    """Reviewer name -> token from the ``DEBATE_REVIEWER_TOKENS`` JSON text (empty when unset)."""
    if raw is None or not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as e:
        raise ConfigError(f"DEBATE_REVIEWER_TOKENS is not JSON: {e.msg}") from None
    if not isinstance(data, dict):
        raise ConfigError("DEBATE_REVIEWER_TOKENS must be a JSON object of reviewer name -> token")
    out: dict[str, str] = {}
    seen: set[str] = set()
    for name, token in data.items():
        if not isinstance(token, str) or not token.strip() or not name.strip():
            raise ConfigError("DEBATE_REVIEWER_TOKENS: every reviewer needs a name and a non-empty token")
        if token in seen:
            # Two names for one token would make "who" ambiguous.
            raise ConfigError(f"DEBATE_REVIEWER_TOKENS: reviewer {name!r} shares a token with another")
        seen.add(token)
        out[name.strip()] = token
    return out


@dataclass
class ReviewerTokens:
    """The configured reviewers and how their credentials are checked."""

    tokens: dict[str, str]

    @classmethod
    def from_settings(cls, settings: Settings) -> ReviewerTokens:
        raw = settings.reviewer_tokens.get_secret_value() if settings.reviewer_tokens else None
        return cls(parse_tokens(raw))

    @property
    def enabled(self) -> bool:
        """False when no reviewer is configured: every write is refused."""
        return bool(self.tokens)

    def reviewer(self, token: str | None) -> str | None:
        """The reviewer a token belongs to, or None. Compares every token in constant time."""
        if not token:
            return None
        found = None
        given = token.encode()
        for name, expected in self.tokens.items():
            if hmac.compare_digest(given, expected.encode()):
                found = name
        return found

    def require_bearer(self, authorization: str | None) -> str:
        """The reviewer named by an ``Authorization: Bearer`` header, else :class:`AuthError`."""
        if not self.enabled:
            raise AuthError(403, "writes are disabled: no reviewer tokens are configured (DEBATE_REVIEWER_TOKENS)")
        if not authorization:
            raise AuthError(401, "a reviewer token is required: send Authorization: Bearer <token>")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError(401, "the Authorization header must be 'Bearer <token>'")
        name = self.reviewer(token.strip())
        if name is None:
            raise AuthError(403, "unknown reviewer token")
        return name


def new_login_nonce() -> str:
    """A one-off value for the sign-in form, echoed in a cookie (double submit)."""
    return secrets.token_urlsafe(24)


def same_origin(origin: str | None, host: str | None) -> bool:
    """True unless the browser says the request comes from another site (``Origin`` differs)."""
    if not origin or origin == "null":
        return origin is None
    netloc = origin.split("://", 1)[-1]
    return host is not None and netloc.lower() == host.lower()
