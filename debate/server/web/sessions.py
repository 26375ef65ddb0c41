"""Reviewer sessions of the UI: a random id in the cookie, only its hash in the database.

Signing in with a reviewer token creates a session (``secrets.token_urlsafe``); the cookie holds
its id, never the token. The ``reviewer_sessions`` table keeps the id's SHA-256, so every
``debate serve`` process over the database accepts it, and signing out deletes it: a copied
cookie stops working at once. A session ends at its expiry (``server.session_hours``) and as
soon as its reviewer's token is changed or removed from ``DEBATE_REVIEWER_TOKENS``: each row
carries an HMAC of the token keyed by the session id, which a reader of the table can neither
use nor test token guesses against (it lacks the id).

Forms carry a token derived from the session id, so any process can check it, and a page on
another site, which cannot read the HttpOnly cookie, cannot forge one.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.engine import Engine
from starlette.requests import Request

from debate.server.web.auth import COOKIE, ReviewerTokens
from debate.store import tables as t
from debate.store.db import session_scope

# secrets.token_urlsafe(32): 43 URL-safe characters. Anything else is not ours: no query needed.
_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{43}")
_STATE_KEY = "reviewer_session"


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def _keyed(session_id: str, purpose: bytes) -> str:
    return hmac.new(session_id.encode(), purpose, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class SignedIn:
    """A reviewer signed in to the UI, by the session in the request's cookie."""

    reviewer: str
    session_id: str

    @property
    def form_token(self) -> str:
        """The anti-forgery value this session's forms carry."""
        return _keyed(self.session_id, b"form")

    def check_form_token(self, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(self.form_token, given or "")


class SessionStore:
    """Creates, finds and revokes sessions in the database."""

    def __init__(self, engine: Engine, tokens: ReviewerTokens, lifetime: timedelta) -> None:
        self.engine = engine
        self.tokens = tokens
        self.lifetime = lifetime

    def create(self, reviewer: str) -> str:
        """A new session for a configured reviewer; returns its id (for the cookie only)."""
        session_id = secrets.token_urlsafe(32)
        now = t.utcnow()
        row = t.ReviewerSession(
            id_hash=_digest(session_id),
            reviewer=reviewer,
            token_check=_keyed(session_id, b"token:" + self.tokens.tokens[reviewer].encode()),
            created_at=now,
            expires_at=now + self.lifetime,
        )
        with session_scope(self.engine) as s:
            # Expired sessions are useless; signing in is a good moment to drop them.
            s.execute(delete(t.ReviewerSession).where(t.ReviewerSession.expires_at < now))  # type: ignore[arg-type]
            s.add(row)
        return session_id

    def lookup(self, session_id: str | None) -> SignedIn | None:
        """The live session ``session_id`` names, or None (unknown, expired, revoked, token gone)."""
        if not session_id or not _SESSION_ID.fullmatch(session_id):
            return None
        with session_scope(self.engine) as s:
            row = s.get(t.ReviewerSession, _digest(session_id))
        expires = t.as_utc(row.expires_at) if row is not None else None
        if row is None or expires is None or expires <= t.utcnow():
            return None
        token = self.tokens.tokens.get(row.reviewer)
        if token is None or not hmac.compare_digest(row.token_check, _keyed(session_id, b"token:" + token.encode())):
            return None
        return SignedIn(row.reviewer, session_id)

    def revoke(self, session_id: str) -> None:
        """End a session (signing out): its cookie no longer signs anyone in, anywhere."""
        with session_scope(self.engine) as s:
            s.execute(delete(t.ReviewerSession).where(t.ReviewerSession.id_hash == _digest(session_id)))  # type: ignore[arg-type]


def signed_in(request: Request) -> SignedIn | None:
    """The reviewer the request's session cookie signs in, looked up once per request (blocking)."""
    state = request.scope.setdefault("state", {})
    if _STATE_KEY not in state:
        store: SessionStore = request.app.state.sessions
        state[_STATE_KEY] = store.lookup(request.cookies.get(COOKIE))
    found: SignedIn | None = state[_STATE_KEY]
    return found


def known_signed_in(request: Request) -> SignedIn | None:
    """What :func:`signed_in` found earlier in this request, without a query (None if not asked)."""
    found: SignedIn | None = request.scope.get("state", {}).get(_STATE_KEY)
    return found
