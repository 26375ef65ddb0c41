"""Reviewer sessions of the UI: a random id in the cookie, its hash in the database.

The cookie used to be the bearer token itself, so signing out could not revoke it and a stolen
cookie was the token. Now: the cookie holds a random session id and never the token; signing
out deletes the session (a replayed cookie signs nobody in); sessions expire; every server
process over the same database accepts them; a reviewer whose token is removed or changed is
signed out. On SQLite and on PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from conftest import seed_debated_sample
from fastapi.testclient import TestClient
from pg import any_db  # noqa: F401  (fixture)
from sqlalchemy import select, update
from sqlmodel import SQLModel

from debate.core.config import Settings, load_settings
from debate.server.api import create_app
from debate.server.web.auth import COOKIE, LEGACY_COOKIE
from debate.store import tables as t
from debate.store.db import _alembic_config, ensure_schema, session_scope

TOKEN = "tok-alice-sessions-0123456789"
BOB_TOKEN = "tok-bob-sessions-0123456789"


def _settings(url: str, tokens: dict[str, str] | None = None, **kw: object) -> Settings:
    tokens = {"alice": TOKEN, "bob": BOB_TOKEN} if tokens is None else tokens
    return load_settings(database_url=url, reviewer_tokens=json.dumps(tokens), **kw)


@pytest.fixture(scope="module")
def seeded(any_db: str) -> tuple[str, str]:  # noqa: F811
    """(database URL, a finished run's id), shared by the module's tests on one backend."""
    return any_db, seed_debated_sample(any_db, _settings(any_db))


def _app_client(url: str, **kw: object) -> TestClient:
    return TestClient(create_app(_settings(url, **kw), backends=("offline",)))  # type: ignore[arg-type]


def sign_in(c: TestClient, token: str = TOKEN) -> object:
    page = c.get("/login")
    nonce = re.search(r'name="nonce" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    return c.post("/login", data={"nonce": nonce, "next": "/", "token": token}, follow_redirects=False)


def form_token(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]


def is_signed_in(c: TestClient, who: str = "alice") -> bool:
    return f"Signed in as <strong>{who}</strong>" in c.get("/").text


def test_the_cookie_holds_a_random_session_id_never_the_token(seeded: tuple[str, str]) -> None:
    url = seeded[0]
    with _app_client(url) as c:
        r = sign_in(c)
        set_cookies = " ".join(r.headers.get_list("set-cookie"))  # type: ignore[attr-defined]
        assert TOKEN not in set_cookies
        session_id = c.cookies[COOKIE]
        assert len(session_id) == 43 and session_id != TOKEN
        cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith(f"{COOKIE}="))  # type: ignore[attr-defined]
        assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower() and "Max-Age=43200" in cookie
        assert is_signed_in(c)
    # Only the id's hash is stored: the table alone signs nobody in.
    with session_scope(ensure_schema(url)) as s:
        row = s.get(t.ReviewerSession, hashlib.sha256(session_id.encode()).hexdigest())
        assert row is not None and row.reviewer == "alice"
        assert session_id not in (row.id_hash, row.token_check) and TOKEN not in row.token_check
    # The old scheme's cookie (the token itself) signs nobody in any more.
    with _app_client(url) as c:
        c.cookies.set(COOKIE, TOKEN)
        c.cookies.set(LEGACY_COOKIE, TOKEN)
        assert not is_signed_in(c)


def test_signing_out_revokes_the_session_for_whoever_kept_the_cookie(seeded: tuple[str, str]) -> None:
    url, run_id = seeded
    with _app_client(url) as c, _app_client(url) as thief:
        sign_in(c)
        stolen = c.cookies[COOKIE]
        thief.cookies.set(COOKIE, stolen)
        assert is_signed_in(thief)
        r = c.post("/logout", data={"csrf": form_token(c.get("/").text)}, follow_redirects=False)
        assert r.status_code == 303 and COOKIE not in c.cookies
        assert not is_signed_in(thief)
        r = thief.post(f"/runs/{run_id}/review", data={"action": "flag", "csrf": "x"}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    with session_scope(ensure_schema(url)) as s:
        assert s.get(t.ReviewerSession, hashlib.sha256(stolen.encode()).hexdigest()) is None


def test_sessions_expire(seeded: tuple[str, str]) -> None:
    url = seeded[0]
    with _app_client(url, server={"session_hours": 2}) as c:
        r = sign_in(c)
        assert any("Max-Age=7200" in h for h in r.headers.get_list("set-cookie"))  # type: ignore[attr-defined]
        digest = hashlib.sha256(c.cookies[COOKIE].encode()).hexdigest()
        with session_scope(ensure_schema(url)) as s:
            row = s.get(t.ReviewerSession, digest)
            assert row is not None
            lifetime = t.as_utc(row.expires_at) - t.as_utc(row.created_at)  # type: ignore[operator]
            assert lifetime == timedelta(hours=2)
        assert is_signed_in(c)
        with session_scope(ensure_schema(url)) as s:
            past = t.utcnow() - timedelta(seconds=1)
            s.execute(update(t.ReviewerSession).where(t.ReviewerSession.id_hash == digest).values(expires_at=past))
        assert not is_signed_in(c)
        # The next sign-in sweeps expired sessions away.
        sign_in(c)
        with session_scope(ensure_schema(url)) as s:
            assert s.get(t.ReviewerSession, digest) is None


def test_a_second_server_over_the_same_database_shares_the_session(seeded: tuple[str, str]) -> None:
    url, run_id = seeded
    with _app_client(url) as one, _app_client(url) as two:
        assert one.app is not two.app
        sign_in(one)
        two.cookies.set(COOKIE, one.cookies[COOKIE])
        assert is_signed_in(two)
        # A form rendered by one process is accepted by the other.
        csrf = form_token(one.get(f"/runs/{run_id}").text)
        r = two.post(f"/runs/{run_id}/review", data={"action": "comment", "note": "seen", "csrf": csrf})
        assert r.status_code == 200 and "Recorded: comment." in r.text
        with session_scope(ensure_schema(url)) as s:
            review = s.execute(select(t.Review).where(t.Review.note == "seen")).scalar_one()
            assert review.by == "alice"
        # Signing out on one ends it on the other.
        two.post("/logout", data={"csrf": csrf})
        assert not is_signed_in(one)


def test_removing_or_changing_a_reviewers_token_ends_their_sessions(seeded: tuple[str, str]) -> None:
    url = seeded[0]
    with _app_client(url) as c:
        sign_in(c)
        sign_in(bob := TestClient(c.app), BOB_TOKEN)
        alice_cookie, bob_cookie = c.cookies[COOKIE], bob.cookies[COOKIE]
    for tokens in ({"bob": BOB_TOKEN}, {"alice": "tok-alice-rotated-0123456789", "bob": BOB_TOKEN}):
        with _app_client(url, tokens=tokens) as later:
            later.cookies.set(COOKIE, alice_cookie)
            assert not is_signed_in(later), tokens
            later.cookies.set(COOKIE, bob_cookie)
            assert is_signed_in(later, "bob"), tokens


def test_one_migration_head_and_the_sessions_table_matches_its_model(seeded: tuple[str, str]) -> None:
    heads = ScriptDirectory.from_config(_alembic_config(None)).get_heads()  # type: ignore[arg-type]
    assert len(heads) == 1, heads
    with ensure_schema(seeded[0]).connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert not [d for d in diffs if "reviewer_sessions" in str(d)]
