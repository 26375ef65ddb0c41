"""The reviewer UI in-process: pages, sign-in, form tokens, reviews, and escaping of untrusted text."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import seed_debated_sample
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from debate.core.config import Settings, load_settings
from debate.server.api import create_app
from debate.server.web.auth import COOKIE, LOGIN_COOKIE
from debate.store import tables as t
from debate.store.db import ensure_schema, session_scope

TOKEN = "tok-alice-web-0123456789"
SOD1 = "h-9878fd9b"
EVIL = '<script>document.title="pwned"</script><img src=x onerror=alert(1)>'


def settings_for(url: str) -> Settings:
    return load_settings(database_url=url, reviewer_tokens=json.dumps({"alice": TOKEN}))


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """Sample KB and hypotheses, one finished SOD1 run whose stored text carries markup."""
    path = tmp_path_factory.mktemp("web") / "debate.db"
    url = f"sqlite:///{path}"
    run_id = seed_debated_sample(url, settings_for(url))
    engine = ensure_schema(url)
    with session_scope(engine) as s:
        # Untrusted text everywhere a reviewer reads: KB evidence, a model reply, a cited id.
        ev = s.execute(select(t.Evidence).where(t.Evidence.run_id == run_id, t.Evidence.eid == "E1")).scalar_one()
        ev.text = f"KB chunk {EVIL}"
        turn = s.execute(
            select(t.Turn).where(t.Turn.run_id == run_id, t.Turn.role == "proposer", t.Turn.round == 1)
        ).scalar_one()
        parsed = dict(turn.parsed)
        parsed["argument"] = f"Model says {EVIL}"
        claims = [dict(c) for c in parsed["claims"]]
        claims[0]["evidence_ids"] = [*claims[0]["evidence_ids"], "E99"]
        parsed["claims"] = claims
        turn.parsed = parsed
        turn.citations = [*turn.citations, {"eid": "E99", "valid": False, "claim": 0}]
        turn.raw_reply = json.dumps(parsed)
        s.add_all([ev, turn])
        s.execute(update(t.Hypothesis).where(t.Hypothesis.id == "h-1c05c34d").values(title=f"BACE1 {EVIL}"))
    return path, run_id


@pytest.fixture
def client(db: tuple[str, str]) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(db[0]), backends=("offline",))) as c:
        yield c


def sign_in(c: TestClient, token: str = TOKEN, next_url: str = "/") -> object:
    page = c.get("/login", params={"next": next_url})
    nonce = re.search(r'name="nonce" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    return c.post("/login", data={"nonce": nonce, "next": next_url, "token": token}, follow_redirects=False)


def form_token(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]


def test_pages_render_with_a_script_free_policy(client: TestClient, db: tuple[str, str]) -> None:
    for path in ("/", f"/hypotheses/{SOD1}", f"/runs/{db[1]}", "/login"):
        r = client.get(path)
        assert r.status_code == 200, path
        csp = r.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src" not in csp and "frame-ancestors 'none'" in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "<script" not in r.text.lower(), path
    assert client.get("/static/style.css").headers["content-type"].startswith("text/css")


def test_untrusted_text_is_escaped_everywhere(client: TestClient, db: tuple[str, str]) -> None:
    escaped = "&lt;script&gt;document.title=&#34;pwned&#34;&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"
    transcript = client.get(f"/runs/{db[1]}").text
    assert f"KB chunk {escaped}" in transcript and f"Model says {escaped}" in transcript
    assert "<img" not in transcript and "<script" not in transcript
    listing = client.get("/", params={"q": "bace1"}).text
    assert f"BACE1 {escaped}" in listing and "<img" not in listing
    assert f"BACE1 {escaped}" in client.get("/hypotheses/h-1c05c34d").text


def test_transcript_shows_rounds_judges_evidence_and_invalid_citations(client: TestClient, db: tuple[str, str]) -> None:
    html = client.get(f"/runs/{db[1]}").text
    assert "Round 1" in html and 'class="turn proposer"' in html and 'class="turn critic"' in html
    assert 'id="judge-scores"' in html and "mechanistic plausibility" in html and "Judge 0" in html
    assert 'class="cite bad"' in html and "E99 ✗ not retrieved" in html
    assert 'id="ev-E1"' in html and "Attempts (1)" in html and "offline heuristic agents — no model" in html
    assert 'id="review-sign-in"' in html and 'id="review-form"' not in html


def test_list_sorts_and_filters(client: TestClient) -> None:
    html = client.get("/", params={"sort": "-score"}).text
    assert html.index(SOD1) < html.index("h-1016d2d9")  # scored before unscored
    assert 'href="/?sort=score' in html  # the active column's link flips the order
    filtered = client.get("/", params={"target": "SOD1"}).text
    assert SOD1 in filtered and "h-1016d2d9" not in filtered and "1 hypothesis." in filtered
    assert client.get("/", params={"status": "bogus"}).status_code == 422
    assert "no hypothesis matches" in client.get("/", params={"q": "zzzz"}).text.lower()


def test_hypothesis_page_has_a_history_chart_and_runs(client: TestClient, db: tuple[str, str]) -> None:
    html = client.get(f"/hypotheses/{SOD1}").text
    assert '<svg class="chart"' in html and "<circle" in html and f'href="/runs/{db[1]}"' in html
    assert 'id="withheld"' not in html
    assert client.get("/hypotheses/h-00000000").status_code == 404
    assert "unknown hypothesis" in client.get("/hypotheses/h-00000000").text


def test_sign_in_sets_an_httponly_strict_cookie(client: TestClient) -> None:
    r = sign_in(client, next_url="/runs/x")
    assert r.status_code == 303 and r.headers["location"] == "/runs/x"  # type: ignore[attr-defined]
    cookies = r.headers.get_list("set-cookie")  # type: ignore[attr-defined]
    cookie = next(h for h in cookies if h.startswith(f"{COOKIE}="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    assert "Signed in as <strong>alice</strong>" in client.get("/").text


@pytest.mark.parametrize("next_url", ["https://evil.example/", "//evil.example/", "/\\evil"])
def test_sign_in_never_redirects_off_site(client: TestClient, next_url: str) -> None:
    assert sign_in(client, next_url=next_url).headers["location"] == "/"  # type: ignore[attr-defined]


def test_sign_in_refusals(client: TestClient) -> None:
    assert sign_in(client, token="wrong").status_code == 403  # type: ignore[attr-defined]
    # No nonce cookie (a form posted from elsewhere): refused even with the right token.
    client.cookies.delete(LOGIN_COOKIE, path="/login")
    r = client.post("/login", data={"nonce": "x", "token": TOKEN}, follow_redirects=False)
    assert r.status_code == 403 and COOKIE not in client.cookies
    assert client.post("/login", data={"token": TOKEN}, headers={"Origin": "https://evil.example"}).status_code == 403
    assert client.post("/login", content=b"{}", headers={"Content-Type": "application/json"}).status_code == 415


def test_review_form_records_the_signed_in_reviewer(client: TestClient, db: tuple[str, str]) -> None:
    run_id = db[1]
    sign_in(client)
    page = client.get(f"/runs/{run_id}").text
    assert 'id="review-form"' in page
    form = {"csrf": form_token(page), "action": "flag", "note": "wrong trial"}
    r = client.post(f"/runs/{run_id}/review", data=form, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith(f"/runs/{run_id}?reviewed=flag")
    after = client.get(r.headers["location"]).text
    assert 'id="review-done"' in after and "wrong trial" in after and 'id="run-withheld"' in after
    with session_scope(ensure_schema(db[0])) as s:
        review = s.execute(select(t.Review).where(t.Review.run_id == run_id)).scalar_one()
        assert (review.action, review.by) == ("flag", "alice")
    hyp = client.get(f"/hypotheses/{SOD1}").text
    assert 'id="withheld"' in hyp and "Score withheld" in hyp


def test_review_form_refusals(client: TestClient, db: tuple[str, str]) -> None:
    run_id = db[1]
    # Not signed in: sent to sign in first, nothing recorded.
    r = client.post(f"/runs/{run_id}/review", data={"action": "flag"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    sign_in(client)
    token = form_token(client.get(f"/runs/{run_id}").text)
    assert client.post(f"/runs/{run_id}/review", data={"action": "flag"}).status_code == 403  # no form token
    assert client.post(f"/runs/{run_id}/review", data={"action": "flag", "csrf": "forged"}).status_code == 403
    r = client.post(
        f"/runs/{run_id}/review", data={"action": "flag", "csrf": token}, headers={"Origin": "https://evil.example"}
    )
    assert r.status_code == 403
    r = client.post(f"/runs/{run_id}/review", data={"action": "comment", "note": " ", "csrf": token})
    assert r.status_code == 422 and "a comment needs a note" in r.text
    r = client.post(f"/runs/{run_id}/review", data={"action": "bogus", "csrf": token})
    assert r.status_code == 422
    assert client.post("/runs/r-nope/review", data={"action": "flag", "csrf": token}).status_code == 404
    with session_scope(ensure_schema(db[0])) as s:
        assert s.execute(select(t.Review)).first() is None


def test_sign_out(client: TestClient) -> None:
    sign_in(client)
    token = form_token(client.get("/").text)
    r = client.post("/logout", data={"csrf": token}, follow_redirects=False)
    assert r.status_code == 303
    assert 'id="sign-in"' in client.get("/").text
