"""The HTTP API in-process (TestClient): every route, auth refusals, bad input, ETags, the runner."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from conftest import run_cli, seed_debated_sample
from fastapi.testclient import TestClient
from sqlalchemy import select

from debate.core.config import Settings, load_settings
from debate.engine.runs import create_runs
from debate.server.api import create_app
from debate.server.web.runner import QueueUnavailable, RunRequest, queue_debates
from debate.store import tables as t
from debate.store.db import ensure_schema, session_scope
from debate.wiki.related import load_related
from debate.wiki.scores import score_rows, scores_json

TOKENS = {"alice": "tok-alice-0123456789", "bob": "tok-bob-0123456789"}
ALICE = {"Authorization": f"Bearer {TOKENS['alice']}"}
BOB = {"Authorization": f"Bearer {TOKENS['bob']}"}
SOD1 = "h-9878fd9b"
BACE1 = "h-1c05c34d"
PAGE = "therapeutics-als-therapy-landscape"


def settings_for(url: str, tokens: dict[str, str] | None = TOKENS) -> Settings:
    return load_settings(database_url=url, reviewer_tokens=json.dumps(tokens) if tokens is not None else None)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A database with the sample KB and hypotheses and one finished SOD1 run (built once)."""
    path = tmp_path_factory.mktemp("seed") / "debate.db"
    run_id = seed_debated_sample(f"sqlite:///{path}", settings_for(f"sqlite:///{path}"))
    return path, run_id


@pytest.fixture
def client(db: tuple[str, str]) -> Iterator[TestClient]:
    app = create_app(settings_for(db[0]), backends=("offline",))
    with TestClient(app) as c:
        yield c


@pytest.fixture
def run_id(db: tuple[str, str]) -> str:
    return db[1]


def _engine(c: TestClient):  # type: ignore[no-untyped-def]
    return c.app.state.engine  # type: ignore[attr-defined]


# ---------------------------------------------------------------- reads


def test_hypothesis_list_pages_filters_and_sorts(client: TestClient) -> None:
    body = client.get("/api/hypotheses", params={"limit": 5}).json()
    assert body["total"] == 12 + _page_only(client) and len(body["items"]) == 5 and body["offset"] == 0
    second = client.get("/api/hypotheses", params={"limit": 5, "offset": 5}).json()
    assert not {i["id"] for i in body["items"]} & {i["id"] for i in second["items"]}
    sod1 = client.get("/api/hypotheses", params={"target": "sod1"}).json()["items"]
    assert [i["id"] for i in sod1] == [SOD1] and sod1[0]["status"] == "scored" and sod1[0]["links"]["page"]
    als = {
        i["id"]
        for i in client.get("/api/hypotheses", params={"disease": "Amyotrophic lateral sclerosis"}).json()["items"]
    }
    assert SOD1 in als and BACE1 not in als
    scored = client.get("/api/hypotheses", params={"status": "scored"}).json()["items"]
    assert [i["id"] for i in scored] == [SOD1]
    items = client.get("/api/hypotheses", params={"sort": "-score", "limit": 200}).json()["items"]
    by_score = [i["shown_score"] for i in items]
    present = [s for s in by_score if s is not None]
    assert present == sorted(present, reverse=True) and by_score[: len(present)] == present
    assert client.get("/api/hypotheses", params={"q": "antisense sod1"}).json()["total"] == 1


def _page_only(client: TestClient) -> int:
    with session_scope(_engine(client)) as s:
        return len(list(s.execute(select(t.Hypothesis.id).where(t.Hypothesis.source.like("page:%"))).scalars()))


def test_hypothesis_detail_has_score_targets_history_and_run_links(client: TestClient, run_id: str) -> None:
    d = client.get(f"/api/hypotheses/{SOD1}").json()
    assert d["hypothesis"]["id"] == SOD1 and d["withheld"] is False
    assert d["score"]["score"] is not None and d["score"]["last_run"] == run_id
    assert d["score"]["agreement"] is not None and len(d["score"]["interval"]) == 2
    assert d["targets"][0]["gene"] == "SOD1" and any(p["slug"] == "entities-sod1" for p in d["targets"][0]["pages"])
    assert [h["run_id"] for h in d["history"]] == [run_id]
    assert d["runs"][0]["links"] == {
        "api": f"/api/runs/{run_id}",
        "transcript": f"/api/runs/{run_id}/transcript",
        "page": f"/runs/{run_id}",
    }


def test_runs_list_detail_and_transcript(client: TestClient, run_id: str) -> None:
    runs = client.get("/api/runs", params={"hypothesis": SOD1, "status": "done"}).json()
    assert runs["total"] == 1 and runs["items"][0]["id"] == run_id
    assert client.get("/api/runs", params={"flagged": True}).json()["total"] == 0
    detail = client.get(f"/api/runs/{run_id}").json()
    assert detail["status"] == "done" and detail["reviews"] == [] and detail["config"]["judges"] == 3
    tr = client.get(f"/api/runs/{run_id}/transcript").json()
    assert tr["run"]["id"] == run_id and tr["agents"] == "heuristic" and tr["judges"]
    md = client.get(f"/api/runs/{run_id}/transcript", params={"format": "md"})
    assert md.headers["content-type"].startswith("text/markdown") and md.text.startswith("# Debate transcript")
    html = client.get(f"/api/runs/{run_id}/transcript", params={"format": "html"})
    assert html.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in html.headers["content-security-policy"]


def test_related_is_the_shared_json_and_the_exact_wiki_lines(client: TestClient) -> None:
    with session_scope(_engine(client)) as s:
        expected = load_related(s, PAGE, limit=10)
    got = client.get(f"/api/pages/{PAGE}/related").json()
    assert got == expected.model_dump(mode="json")
    md = client.get(f"/api/pages/{PAGE}/related", params={"format": "md"})
    assert md.headers["content-type"].startswith("text/markdown") and md.text == expected.markdown
    assert len(client.get(f"/api/pages/{PAGE}/related", params={"limit": 1}).json()["items"]) >= 1


def test_scores_json_is_the_cli_text_with_an_etag_round_trip(client: TestClient, run_id: str) -> None:
    first = client.get("/api/scores.json")
    with session_scope(_engine(client)) as s:
        assert first.text == scores_json(score_rows(s))
    tag = first.headers["etag"]
    assert tag.startswith('"') and first.headers["cache-control"] == "no-cache"
    for header in (tag, f"W/{tag}", f'"other", {tag}', "*"):
        again = client.get("/api/scores.json", headers={"If-None-Match": header})
        assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == tag
    assert client.get("/api/scores.json", headers={"If-None-Match": '"stale"'}).status_code == 200
    # A flag changes what the wiki shows, so the next poll gets a new body.
    assert client.post(f"/api/runs/{run_id}/reviews", json={"action": "flag"}, headers=ALICE).status_code == 201
    changed = client.get("/api/scores.json", headers={"If-None-Match": tag})
    assert changed.status_code == 200 and changed.headers["etag"] != tag
    assert next(r for r in changed.json() if r["id"] == SOD1)["flagged"] is True
    md = client.get(f"/api/pages/{PAGE}/related", params={"format": "md"})
    assert (
        client.get(
            f"/api/pages/{PAGE}/related", params={"format": "md"}, headers={"If-None-Match": md.headers["etag"]}
        ).status_code
        == 304
    )


def test_unknown_ids_are_404_with_a_message(client: TestClient) -> None:
    for path in (
        "/api/hypotheses/h-00000000",
        "/api/runs/r-nope",
        "/api/runs/r-nope/transcript",
        "/api/pages/no-such-page/related",
    ):
        r = client.get(path)
        assert r.status_code == 404 and r.json()["message"], path
    r = client.post("/api/runs/r-nope/reviews", json={"action": "approve"}, headers=ALICE)
    assert r.status_code == 404 and "r-nope" in r.json()["message"]
    r = client.post("/api/runs", json={"hypothesis_ids": ["h-00000000"]}, headers=ALICE)
    assert r.status_code == 404 and "h-00000000" in r.json()["message"]


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("get", "/api/hypotheses", {"params": {"limit": 0}}),
        ("get", "/api/hypotheses", {"params": {"status": "bogus"}}),
        ("get", "/api/hypotheses", {"params": {"offset": -1}}),
        ("get", "/api/runs", {"params": {"status": "bogus"}}),
        ("get", "/api/runs/r-x/transcript", {"params": {"format": "pdf"}}),
        ("get", f"/api/pages/{PAGE}/related", {"params": {"limit": 500}}),
        ("post", "/api/runs", {"json": {"hypothesis_ids": []}}),
        ("post", "/api/runs", {"json": {"hypothesis_ids": ["not-an-id"]}}),
        ("post", "/api/runs", {"json": {"hypothesis_ids": [SOD1, SOD1]}}),
        ("post", "/api/runs", {"json": {"hypothesis_ids": [SOD1], "rounds": 0}}),
        ("post", "/api/runs", {"json": {"hypothesis_ids": [SOD1], "extra": 1}}),
        ("post", "/api/runs", {"json": {"hypothesis_ids": [SOD1], "backend": "openai"}}),  # not enabled here
        ("post", "/api/runs", {"content": b"{not json", "headers": {"Content-Type": "application/json"}}),
        ("post", "/api/runs", {"content": b"\xff\xfe", "headers": {"Content-Type": "application/json"}}),
        ("post", "/api/runs/RUN/reviews", {"json": {"action": "bogus"}}),
        ("post", "/api/runs/RUN/reviews", {"json": {"action": "comment"}}),
        ("post", "/api/runs/RUN/reviews", {"json": {"action": "comment", "note": "   "}}),
        ("post", "/api/runs/RUN/reviews", {"json": {"action": "flag", "note": "x" * 5000}}),
    ],
)
def test_bad_input_is_422_with_a_message(client: TestClient, run_id: str, method: str, path: str, kwargs: dict) -> None:
    headers = {**ALICE, **kwargs.pop("headers", {})}
    r = getattr(client, method)(path.replace("RUN", run_id), headers=headers, **kwargs)
    assert r.status_code == 422, r.text
    assert r.json()["message"]


def test_writes_need_a_reviewer_token(client: TestClient, run_id: str) -> None:
    review = {"action": "flag", "note": "n"}
    r = client.post(f"/api/runs/{run_id}/reviews", json=review)
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer") and r.json()["message"]
    r = client.post(f"/api/runs/{run_id}/reviews", json=review, headers={"Authorization": "Basic YTpi"})
    assert r.status_code == 401
    r = client.post(f"/api/runs/{run_id}/reviews", json=review, headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 403 and r.json()["message"] == "unknown reviewer token"
    r = client.post("/api/runs", json={"hypothesis_ids": [BACE1]}, headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 403
    # Refused before the body is looked at: no token, no validation details.
    assert client.post("/api/runs", json={"bogus": True}).status_code == 401
    assert client.get(f"/api/runs/{run_id}").json()["reviews"] == []


def test_without_configured_tokens_writes_are_disabled(db: tuple[str, str]) -> None:
    with TestClient(create_app(settings_for(db[0], tokens=None))) as c:
        r = c.post(f"/api/runs/{db[1]}/reviews", json={"action": "approve"}, headers=ALICE)
        assert r.status_code == 403 and "disabled" in r.json()["message"]
        assert c.get("/api/hypotheses").status_code == 200


def test_reviews_record_who_and_a_flag_withholds_the_score(client: TestClient, run_id: str) -> None:
    before = client.get(f"/api/hypotheses/{SOD1}").json()["score"]
    r = client.post(
        f"/api/runs/{run_id}/reviews", json={"action": "flag", "note": "cites the wrong trial"}, headers=BOB
    )
    assert r.status_code == 201
    assert r.json()["review"]["by"] == "bob" and r.json()["run"]["flagged"] is True
    after = client.get(f"/api/hypotheses/{SOD1}").json()
    assert after["withheld"] is True and after["score"]["score"] is None and after["score"]["last_run"] is None
    assert after["score"]["shown_score"] == before["prior"]  # back to the imported prior
    assert (
        client.post(
            f"/api/runs/{run_id}/reviews", json={"action": "comment", "note": "checked"}, headers=ALICE
        ).status_code
        == 201
    )
    assert client.post(f"/api/runs/{run_id}/reviews", json={"action": "clear"}, headers=ALICE).status_code == 201
    detail = client.get(f"/api/runs/{run_id}").json()
    assert [(v["action"], v["by"]) for v in detail["reviews"]] == [
        ("flag", "bob"),
        ("comment", "alice"),
        ("clear", "alice"),
    ]
    assert client.get(f"/api/hypotheses/{SOD1}").json()["score"]["score"] == before["score"]


def test_post_runs_debates_in_the_background_and_refuses_a_second_one(client: TestClient) -> None:
    r = client.post("/api/runs", json={"hypothesis_ids": [BACE1], "rounds": 1, "judges": 2}, headers=ALICE)
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["by"] == "alice" and body["backend"] == "offline" and body["runs"][0]["status"] == "queued"
    new_id = body["runs"][0]["run_id"]
    again = client.post("/api/runs", json={"hypothesis_ids": [BACE1]}, headers=BOB)
    # Either still pending (409 naming the run) or already finished (then a new run is fine).
    if again.status_code == 409:
        assert new_id in again.json()["message"]
    else:
        assert again.status_code == 202
    assert client.app.state.runner.wait_idle(60)  # type: ignore[attr-defined]
    run = client.get(f"/api/runs/{new_id}").json()
    assert run["status"] == "done" and run["trigger"] == "api:alice" and run["config"]["judges"] == 2
    assert client.get(f"/api/hypotheses/{BACE1}").json()["score"]["last_run"] in {
        new_id,
        *(x["run_id"] for x in (again.json().get("runs") or [])),
    }


class Recorder:
    """A dispatcher that only records what it was given (the seam a task queue fills)."""

    def __init__(self) -> None:
        self.submitted: list[tuple[list[str], str]] = []

    def submit(self, run_ids: Sequence[str], backend: str) -> None:
        self.submitted.append((list(run_ids), backend))


def test_the_dispatcher_seam_and_one_pending_run_per_hypothesis(db: tuple[str, str]) -> None:
    rec = Recorder()
    with TestClient(create_app(settings_for(db[0]), dispatcher=rec, backends=("offline",))) as c:
        r = c.post("/api/runs", json={"hypothesis_ids": [BACE1, "h-42374479"]}, headers=ALICE)
        assert r.status_code == 202
        assert rec.submitted == [([x["run_id"] for x in r.json()["runs"]], "offline")]
        r2 = c.post("/api/runs", json={"hypothesis_ids": ["h-42374479"]}, headers=BOB)
        assert r2.status_code == 409 and "h-42374479" in r2.json()["message"]
        assert len(rec.submitted) == 1
        assert c.get("/api/hypotheses", params={"status": "queued"}).json()["total"] == 2
        c.app.state.dispatcher = None  # type: ignore[attr-defined]  # nothing to execute runs
        r3 = c.post("/api/runs", json={"hypothesis_ids": [SOD1]}, headers=ALICE)
        assert r3.status_code == 503 and "task queue" in r3.json()["message"]


def test_queue_debates_without_a_dispatcher_refuses(db: tuple[str, str]) -> None:
    cfg = settings_for(db[0])
    with pytest.raises(QueueUnavailable):
        queue_debates(
            ensure_schema(db[0]), cfg, None, RunRequest(hypothesis_ids=[SOD1]), by="alice", backends=("offline",)
        )


def test_runs_queued_before_a_stop_are_resumed_on_start(db: tuple[str, str]) -> None:
    cfg = settings_for(db[0])
    engine = ensure_schema(db[0])
    [left] = create_runs(engine, cfg, [BACE1], backend="offline", trigger="api:alice")
    app = create_app(cfg)
    with TestClient(app):
        assert app.state.runner.wait_idle(60)
    with session_scope(engine) as s:
        assert s.get(t.Run, left).status == "done"  # type: ignore[union-attr]


def test_openapi_schema_is_published_with_bearer_auth_on_writes(client: TestClient) -> None:
    schema = client.get("/api/openapi.json").json()
    paths = schema["paths"]
    for p in (
        "/api/hypotheses",
        "/api/hypotheses/{hyp_id}",
        "/api/runs",
        "/api/runs/{run_id}",
        "/api/runs/{run_id}/transcript",
        "/api/pages/{slug}/related",
        "/api/scores.json",
        "/api/runs/{run_id}/reviews",
    ):
        assert p in paths, p
    assert paths["/api/runs"]["post"]["security"] == [{"reviewerToken": []}]
    assert "security" not in paths["/api/runs"]["get"]
    assert schema["components"]["securitySchemes"]["reviewerToken"]["scheme"] == "bearer"
    assert not any(p.startswith("/runs") or p == "/" for p in paths)  # the UI is not part of the API


def test_debate_serve_answers_over_http(db: tuple[str, str], cli_env: dict[str, str]) -> None:
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**cli_env, "DEBATE_DATABASE_URL": db[0], "DEBATE_REVIEWER_TOKENS": json.dumps(TOKENS)}
    assert "--port" in run_cli("serve", "--help", env=env).stdout
    proc = subprocess.Popen(
        [sys.executable, "-m", "debate", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/scores.json", timeout=2) as r:
                    assert r.status == 200 and r.headers["ETag"]
                    assert any(row["id"] == SOD1 for row in json.loads(r.read()))
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "debate serve did not come up"
                time.sleep(0.2)
    finally:
        proc.terminate()
        _out, err = proc.communicate(timeout=20)
    assert "reviewers: alice, bob" in err
    assert f"http://127.0.0.1:{port}/api/openapi.json" in err and "/api/docs" not in err
