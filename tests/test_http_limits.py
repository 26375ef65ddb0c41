"""Request bodies are bounded before they are read, and writes authenticated before any byte is.

An attacker once made the server grow from 149 to 857 MB with an unauthenticated 300 MB review
post (answered 401 only after reading it all), and ``/login`` read 550 MB before its 413. Here
bodies come from generators that count what the app consumed, or straight from an ASGI
``receive`` that counts chunks (a chunked upload has no Content-Length), or over a real socket
to uvicorn.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from conftest import seed_debated_sample
from fastapi.testclient import TestClient

from debate.core.config import Settings, load_settings
from debate.server.api import REVIEW_MAX, RUNS_MAX, create_app
from debate.server.web.auth import COOKIE
from debate.server.web.routes import LOGIN_MAX

TOKEN = "tok-alice-limits-0123456789"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
HUGE = 300 * 1024 * 1024


def _settings(url: str) -> Settings:
    return load_settings(database_url=url, reviewer_tokens=json.dumps({"alice": TOKEN}))


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    url = f"sqlite:///{tmp_path_factory.mktemp('limits')}/debate.db"
    return url, seed_debated_sample(url, _settings(url))


@pytest.fixture(scope="module")
def client(seeded: tuple[str, str]) -> Iterator[TestClient]:
    with TestClient(create_app(_settings(seeded[0]), backends=("offline",)), raise_server_exceptions=False) as c:
        yield c


class Upload:
    """A request body that records how much of it was read: at most ``limit`` bytes in 64 KB chunks."""

    def __init__(self, limit: int = 4 * 1024 * 1024) -> None:
        self.limit = limit
        self.read = 0

    def __iter__(self) -> Iterator[bytes]:
        while self.read < self.limit:
            self.read += 65536
            yield b"x" * 65536


# ---------------------------------------------------------------- through the test client


def test_an_anonymous_huge_review_post_is_refused_without_reading_it(client: TestClient, seeded: Any) -> None:
    body = Upload()
    r = client.post(
        f"/api/runs/{seeded[1]}/reviews",
        content=body,
        headers={"Content-Type": "application/json", "Content-Length": str(HUGE)},
    )
    assert r.status_code == 401 and r.json()["message"].startswith("a reviewer token is required")
    assert body.read == 0
    # Wrong token: refused the same way, before the body.
    body = Upload()
    r = client.post(
        f"/api/runs/{seeded[1]}/reviews",
        content=body,
        headers={"Authorization": "Bearer wrong", "Content-Length": str(HUGE)},
    )
    assert r.status_code == 403 and body.read == 0


@pytest.mark.parametrize(("path", "cap"), [("/api/runs", RUNS_MAX), ("/api/runs/RUN/reviews", REVIEW_MAX)])
def test_a_reviewers_oversized_post_is_413_on_its_declared_length(
    client: TestClient, seeded: Any, path: str, cap: int
) -> None:
    body = Upload()
    r = client.post(
        path.replace("RUN", seeded[1]),
        content=body,
        headers={**BEARER, "Content-Type": "application/json", "Content-Length": str(cap + 1)},
    )
    assert r.status_code == 413 and body.read == 0
    assert r.json()["message"] == f"request body too large: this endpoint takes at most {cap:,} bytes"
    assert r.headers["connection"] == "close"


def test_sign_in_takes_4_kb_at_most(client: TestClient) -> None:
    form = {"nonce": "n", "next": "/", "token": "t" * LOGIN_MAX}
    r = client.post("/login", data=form)
    assert r.status_code == 413 and "4,096 bytes" in r.text and r.headers["content-type"].startswith("text/html")
    body = Upload()
    r = client.post(
        "/login",
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded", "Content-Length": str(550 * 1024 * 1024)},
    )
    assert r.status_code == 413 and body.read == 0


def test_routes_without_a_body_take_none(client: TestClient) -> None:
    for method, path in (("GET", "/api/scores.json"), ("PUT", "/api/runs"), ("POST", "/nowhere"), ("GET", "/")):
        body = Upload()
        r = client.request(method, path, content=body, headers={"Content-Length": str(HUGE)})
        assert r.status_code == 413 and body.read == 0, (method, path)
        assert "takes no request body" in r.text


def test_ui_review_posts_need_a_session_before_the_body(client: TestClient, seeded: Any) -> None:
    body = Upload()
    r = client.post(
        f"/runs/{seeded[1]}/review",
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded", "Content-Length": str(HUGE)},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    assert body.read == 0


def test_bodies_within_the_caps_still_work(client: TestClient, seeded: Any) -> None:
    note = "\U0001f600" * 4000  # the longest note in its widest JSON form: 48 KB of escapes
    raw = json.dumps({"action": "comment", "note": note}).encode()
    assert len(raw) > 40_000
    r = client.post(
        f"/api/runs/{seeded[1]}/reviews", content=raw, headers={**BEARER, "Content-Type": "application/json"}
    )
    assert r.status_code == 201, r.text


# ---------------------------------------------------------------- chunked, at the ASGI level


async def _call(app: Any, path: str, headers: dict[str, str], chunk: int = 1024) -> tuple[int | None, int]:
    """POST ``path`` with a chunked body (no Content-Length) of up to 16 MB; (status, bytes consumed)."""
    consumed = 0
    status: int | None = None

    async def receive() -> dict[str, Any]:
        nonlocal consumed
        if consumed >= 16 * 1024 * 1024:
            return {"type": "http.request", "body": b"", "more_body": False}
        consumed += chunk
        return {"type": "http.request", "body": b"a" * chunk, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in {**headers, "transfer-encoding": "chunked"}.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }
    await app(scope, receive, send)
    return status, consumed


def test_chunked_bodies_are_capped_while_they_stream(client: TestClient, seeded: Any) -> None:
    app = client.app
    form = {"content-type": "application/x-www-form-urlencoded", "host": "testserver"}
    status, consumed = asyncio.run(_call(app, "/login", form))
    assert status == 413 and consumed <= LOGIN_MAX + 1024
    status, consumed = asyncio.run(_call(app, f"/api/runs/{seeded[1]}/reviews", {**BEARER, "host": "testserver"}))
    assert status == 413 and consumed <= REVIEW_MAX + 1024
    status, consumed = asyncio.run(_call(app, f"/api/runs/{seeded[1]}/reviews", {"host": "testserver"}))
    assert status == 401 and consumed == 0


# ---------------------------------------------------------------- a real server


@pytest.fixture
def served(seeded: tuple[str, str], tmp_path: Path) -> Iterator[int]:
    """uvicorn on a free loopback port, in a thread; yields the port."""
    app = create_app(_settings(seeded[0]), backends=("offline",))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield sock.getsockname()[1]
    server.should_exit = True
    thread.join(10)
    sock.close()


def _answer(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        piece = conn.recv(65536)
        if not piece:
            break
        data += piece
    return data


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        pytest.param(
            "POST /api/runs/r-x/reviews HTTP/1.1\r\nContent-Type: application/json\r\n", b" 401 ", id="review"
        ),
        pytest.param(
            "POST /login HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\n", b" 413 ", id="login"
        ),
    ],
)
def test_a_real_server_answers_a_300_mb_upload_at_once_and_hangs_up(served: int, head: str, expected: bytes) -> None:
    with socket.create_connection(("127.0.0.1", served), timeout=5) as conn:
        conn.sendall(f"{head}Host: 127.0.0.1\r\nContent-Length: {HUGE}\r\n\r\n".encode())
        conn.sendall(b"x" * 1024 * 1024)  # a first megabyte of the 300; the answer comes without the rest
        answer = _answer(conn)
        assert expected in answer.split(b"\r\n")[0], answer[:300]
        assert b"connection: close" in answer.lower()
        # The server hangs up rather than reading (and discarding) the other 299 MB.
        conn.settimeout(5)
        rest = b"x"
        while rest:
            try:
                rest = conn.recv(65536)
            except ConnectionResetError:
                break


def test_a_session_cookie_does_not_stand_in_for_a_bearer_token(client: TestClient, seeded: Any) -> None:
    # The API is for programs: accepting the UI's cookie would make its writes forgeable from other sites.
    browser = TestClient(client.app)
    browser.cookies.set(COOKIE, client.app.state.sessions.create("alice"))  # type: ignore[attr-defined]
    r = browser.post(f"/api/runs/{seeded[1]}/reviews", json={"action": "approve"})
    assert r.status_code == 401
