"""Hostile values in every route's path parameters, queries and bodies: never a 5xx.

Every route of the app is found by enumerating ``app.routes`` (so a new route is covered without
touching this file) and is sent NUL, other control characters, a 10 KB value and traversal
strings in each path parameter, each query parameter (declared or not) and its body. Control
characters get a 422 saying what and where: JSON under ``/api``, an HTML page elsewhere. On
SQLite and on PostgreSQL, whose text columns cannot hold NUL (once a 500 on seven endpoints).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from conftest import seed_debated_sample
from fastapi.testclient import TestClient
from pg import any_db  # noqa: F401  (fixture)
from sqlalchemy import func, select

from debate.core.config import Settings, load_settings
from debate.server.api import create_app
from debate.server.guard import flat_routes
from debate.server.web.auth import COOKIE
from debate.store import tables as t
from debate.store.db import session_scope

TOKEN = "tok-alice-controls-0123456789"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
SOD1 = "h-9878fd9b"
PAGE = "therapeutics-als-therapy-landscape"

# Refused wherever they appear (C0 but tab, LF and CR; and DEL).
CONTROL = {
    "nul": "\x00",
    "nul-inside": "h-98\x0078fd9b",
    "bell": "\x07",
    "backspace": "\x08",
    "vertical-tab": "\x0b",
    "escape": "\x1b[31mred",
    "unit-separator": "\x1f",
    "del": "\x7f",
}
# Merely odd: any 4xx or a 2xx/3xx will do, never a 5xx.
ODD = {
    "10-KB": "a" * 10_000,
    "traversal": "../../etc/passwd",
    "encoded-traversal": "..%2f..%2fetc%2fpasswd",
    "windows-traversal": "..\\..\\boot.ini",
    "tab-newline": "a\tb\nc\r",
}


class Recorder:
    """A dispatcher that executes nothing (queued runs must not start debates here)."""

    def submit(self, run_ids: Any, backend: str) -> None:
        pass


def _settings(url: str) -> Settings:
    return load_settings(database_url=url, reviewer_tokens=json.dumps({"alice": TOKEN}))


@pytest.fixture(scope="module")
def seeded(any_db: str) -> tuple[str, str]:  # noqa: F811
    """(database URL, a finished run's id) on SQLite, or on a fresh PostgreSQL database."""
    return any_db, seed_debated_sample(any_db, _settings(any_db))


@dataclass
class Target:
    """The app under test, a signed-in client, its form token and a finished run."""

    client: TestClient
    csrf: str
    run_id: str


@pytest.fixture(scope="module")
def target(seeded: tuple[str, str]) -> Iterator[Target]:
    app = create_app(_settings(seeded[0]), dispatcher=Recorder(), backends=("offline",))
    with TestClient(app, raise_server_exceptions=False) as c:
        session_id = app.state.sessions.create("alice")
        c.cookies.set(COOKIE, session_id)
        yield Target(c, app.state.sessions.lookup(session_id).form_token, seeded[1])


# ---------------------------------------------------------------- what each route takes


def _query_names(route: Any) -> list[str]:
    """Declared query parameters (a query model's fields one by one), plus one nobody declared."""
    names: list[str] = []
    stack = [route.dependant] if getattr(route, "dependant", None) is not None else []
    while stack:
        dependant = stack.pop()
        stack.extend(dependant.dependencies)
        for field in dependant.query_params:
            model_fields = getattr(field.field_info.annotation, "model_fields", None)
            names.extend(model_fields or [field.alias])
    return [*names, "undeclared"]


def _valid_path(path_params: list[str], run_id: str) -> dict[str, str]:
    known = {"hyp_id": SOD1, "run_id": run_id, "slug": PAGE}
    return {name: known.get(name, "x") for name in path_params}


def _body(method: str, path: str, value: str, csrf: str) -> dict[str, Any]:
    """A request body for a write route, carrying ``value`` in its free-text fields."""
    if method != "POST":
        return {}
    bodies: dict[str, dict[str, Any]] = {
        "/api/runs": {"json": {"hypothesis_ids": [value]}},
        "/api/runs/{run_id}/reviews": {"json": {"action": "comment", "note": value}},
        "/runs/{run_id}/review": {"data": {"csrf": csrf, "action": "comment", "note": value}},
        "/login": {"data": {"nonce": value, "next": value, "token": value}},
        # Never the real form token: signing out would end the session the other cases use.
        "/logout": {"data": {"csrf": value}},
    }
    assert path in bodies, f"a new write route, {method} {path}: give it a body here so it is fuzzed too"
    return bodies[path]


def _cases(app: Any, run_id: str, csrf: str) -> Iterator[tuple[str, str, str, dict[str, Any], str]]:
    """(label, method, url, request kwargs, value) for every route, slot and hostile value."""
    for route in flat_routes(app.routes):
        path: str = route.path
        path_params = re.findall(r"\{(\w+)(?::\w+)?\}", path)
        for method in sorted(set(route.methods or ()) - {"HEAD"}):
            slots = [*path_params, *(f"?{q}" for q in _query_names(route)), *(["body"] if method == "POST" else [])]
            for value in {**CONTROL, **ODD}.values():
                for slot in slots:
                    params = _valid_path(path_params, run_id)
                    query: dict[str, str] = {}
                    body = _body(method, path, value if slot == "body" else "ok", csrf)
                    if slot in path_params:
                        params[slot] = value
                    elif slot.startswith("?"):
                        query[slot[1:]] = value
                    url = path.format(**{k: quote(v, safe="") for k, v in params.items()})
                    yield f"{method} {path} [{slot}]", method, url, {"params": query, **body}, value


# ---------------------------------------------------------------- tests


def test_every_route_refuses_control_characters_and_survives_odd_values(target: Target) -> None:
    app: Any = target.client.app
    cases = list(_cases(app, target.run_id, target.csrf))
    routes = {label.split(" [")[0] for label, *_ in cases}
    assert {"GET /api/hypotheses", "POST /api/runs/{run_id}/reviews", "GET /", "POST /login"} <= routes
    failures: list[str] = []
    for label, method, url, kwargs, value in cases:
        headers = BEARER if url.startswith("/api") else {}
        r = target.client.request(method, url, headers=headers, follow_redirects=False, **kwargs)
        if r.status_code >= 500:
            failures.append(f"{label} {value[:20]!r}: {r.status_code} {r.text[:200]}")
        elif value in CONTROL.values():
            api = url.startswith("/api")
            message = r.json()["message"] if api else r.text
            kind = "application/json" if api else "text/html"
            if r.status_code != 422 or "control character U+" not in message or kind not in r.headers["content-type"]:
                failures.append(f"{label} {value[:20]!r}: {r.status_code} {message[:200]}")
    assert not failures, f"{len(failures)} of {len(cases)} requests:\n" + "\n".join(failures[:20])
    assert len(cases) > 300


def test_a_nul_in_a_review_note_is_a_clear_422_and_nothing_is_stored(target: Target) -> None:
    client, run_id = target.client, target.run_id
    engine = client.app.state.engine  # type: ignore[attr-defined]
    with session_scope(engine) as s:
        before = s.execute(select(func.count()).select_from(t.Review)).scalar_one()
    r = client.post(f"/api/runs/{run_id}/reviews", json={"action": "flag", "note": "see\x00 here"}, headers=BEARER)
    assert r.status_code == 422
    assert r.json()["message"] == "note: control character U+0000 at position 4 is not allowed"
    # JSON's own escape, and a lone surrogate (which neither database can store), alike.
    raw = b'{"action": "comment", "note": "a\\u0000b"}'
    r = client.post(f"/api/runs/{run_id}/reviews", content=raw, headers={**BEARER, "Content-Type": "application/json"})
    assert r.status_code == 422 and "U+0000" in r.json()["message"]
    raw = b'{"action": "comment", "note": "a\\ud800b"}'
    r = client.post(f"/api/runs/{run_id}/reviews", content=raw, headers={**BEARER, "Content-Type": "application/json"})
    assert r.status_code == 422 and "lone surrogate U+D800" in r.json()["message"]
    form = {"csrf": target.csrf, "action": "comment", "note": "bell\x07"}
    r = client.post(f"/runs/{run_id}/review", data=form, follow_redirects=False)
    assert r.status_code == 422 and r.headers["content-type"].startswith("text/html")
    assert "note: control character U+0007 at position 5 is not allowed" in r.text
    with session_scope(engine) as s:
        assert s.execute(select(func.count()).select_from(t.Review)).scalar_one() == before


@pytest.mark.parametrize(
    "url",
    [
        "/api/hypotheses?target=%00",
        "/api/hypotheses/h-%00",
        "/api/runs/r-%00",
        "/api/runs?hypothesis=%00",
        "/api/pages/x%00/related",
        "/?target=%00",
        "/hypotheses/h-%00",
    ],
)
def test_the_reported_nul_urls_are_422_not_500(target: Target, url: str) -> None:
    r = target.client.get(url)
    assert r.status_code == 422, r.text
    text = r.json()["message"] if url.startswith("/api") else r.text
    assert "control character U+0000" in text
