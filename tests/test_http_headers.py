"""Response headers: ``nosniff`` on every response, and no interactive API docs.

A JSON or Markdown reply carrying KB text or a model's reply must never be sniffed as HTML, so
every response says ``X-Content-Type-Options: nosniff``: pages, JSON, Markdown, static files,
304s, redirects and every error, down to Starlette's last-resort 500. ``/api/docs`` used to load
Swagger's script from a CDN on the reviewer UI's origin, without a CSP: it is gone, and the
OpenAPI schema stays at ``/api/openapi.json``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import seed_debated_sample
from fastapi.testclient import TestClient

from debate.core.config import Settings, load_settings
from debate.server.api import create_app

TOKEN = "tok-alice-headers-0123456789"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
SOD1 = "h-9878fd9b"
PAGE = "therapeutics-als-therapy-landscape"


def _settings(url: str) -> Settings:
    return load_settings(database_url=url, reviewer_tokens=json.dumps({"alice": TOKEN}))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, str]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('headers')}/debate.db"
    run_id = seed_debated_sample(url, _settings(url))
    app = create_app(_settings(url), backends=("offline",))

    @app.get("/api/boom", include_in_schema=False)
    def boom() -> None:  # a bug, to see the last-resort 500
        raise RuntimeError("boom")

    with TestClient(app, raise_server_exceptions=False) as c:
        yield c, run_id


def _responses(c: TestClient, run_id: str) -> dict[str, Any]:
    etag = c.get("/api/scores.json").headers["etag"]
    return {
        "json": c.get("/api/scores.json"),
        "304": c.get("/api/scores.json", headers={"If-None-Match": etag}),
        "markdown transcript": c.get(f"/api/runs/{run_id}/transcript", params={"format": "md"}),
        "text transcript": c.get(f"/api/runs/{run_id}/transcript", params={"format": "text"}),
        "html transcript": c.get(f"/api/runs/{run_id}/transcript", params={"format": "html"}),
        "markdown related": c.get(f"/api/pages/{PAGE}/related", params={"format": "md"}),
        "openapi": c.get("/api/openapi.json"),
        "page": c.get(f"/hypotheses/{SOD1}"),
        "static file": c.get("/static/style.css"),
        "redirect": c.post(f"/runs/{run_id}/review", data={"action": "flag"}, follow_redirects=False),
        "api 404": c.get("/api/runs/r-nope"),
        "ui 404": c.get("/hypotheses/h-00000000"),
        "no such path": c.get("/nowhere"),
        "405": c.delete("/api/runs"),
        "401": c.post(f"/api/runs/{run_id}/reviews", json={"action": "flag"}),
        "403": c.post(f"/api/runs/{run_id}/reviews", json={"action": "flag"}, headers={"Authorization": "Bearer x"}),
        "413": c.post("/login", data={"token": "t" * 5000}),
        "415": c.post("/login", content=b"{}", headers={"Content-Type": "application/json"}),
        "422": c.get("/api/hypotheses", params={"limit": 0}),
        "422 control character": c.get("/api/hypotheses", params={"q": "\x00"}),
        "500": c.get("/api/boom"),
    }


def test_every_kind_of_response_says_nosniff(served: tuple[TestClient, str]) -> None:
    c, run_id = served
    responses = _responses(c, run_id)
    assert responses["500"].status_code == 500 and responses["413"].status_code == 413
    assert responses["304"].status_code == 304 and responses["redirect"].status_code == 303
    missing = [name for name, r in responses.items() if r.headers.get("x-content-type-options") != "nosniff"]
    assert not missing, f"no nosniff on: {', '.join(missing)}"
    # Once, not twice, where a route set it itself.
    assert responses["static file"].headers.get_list("x-content-type-options") == ["nosniff"]


def test_no_interactive_docs_only_the_schema(served: tuple[TestClient, str]) -> None:
    c, _ = served
    for path in ("/api/docs", "/api/redoc", "/docs", "/redoc", "/api/docs/oauth2-redirect"):
        assert c.get(path).status_code == 404, path
    schema = c.get("/api/openapi.json")
    assert schema.status_code == 200 and schema.json()["openapi"].startswith("3.")
    page = c.get("/").text
    assert "/api/docs" not in page and 'href="/api/openapi.json"' in page
