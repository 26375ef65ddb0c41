"""Claim marks and the verified-claim rate, wherever a reviewer or a wiki build looks.

Each proposer and critic claim quotes the evidence it cites, and the engine marks it: verified
(the quote is in a cited item), quote-not-found, not-retrieved (it cites an id the run never
retrieved) or uncited. A transcript shows every claim's mark and the run's "verified claims:
1 of 3 citing evidence (33%)" in text, Markdown, JSON and HTML, and on the reviewer's run page; the score rows
(`debate scores`, `scores.json`, the API) carry the shown run's `verified_rate`.

Quotes are model output: a quote carrying markup, a Markdown link or a terminal escape is shown
as text in every rendering. Runs recorded before quotes were checked still load and render, as
"not checked".
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from conftest import run_cli
from fastapi.testclient import TestClient
from markupsafe import escape
from rows import T0, add_hyp, insert_run, insert_turn
from sqlalchemy.engine import Engine

from debate.core.config import load_settings
from debate.core.models import Claim, EvidenceItem
from debate.core.quotes import QuoteRule, mark_claims
from debate.engine.transcript import TRANSCRIPT_VERSION, Transcript, load_transcript, render
from debate.engine.transcript.formatting import claim_mark, verified_claims
from debate.engine.transcript.model import ClaimOut, RunInfo
from debate.server.api import create_app
from debate.store import tables as t
from debate.store.db import session_scope
from debate.wiki.scores import ScoreRow, score_rows, scores_json

ESC = "\x1b"
SCRIPT = "<script>alert(1)</script>"
LINK = "[click here](https://evil.example/x)"
HOSTILE = f"{SCRIPT} {LINK} {ESC}[31mred{ESC}[0m and more words"

EVIDENCE = [
    EvidenceItem(
        eid="E1",
        rank=1,
        page_slug="entities-trem2",
        page_hash="ph1",
        heading_path=["TREM2"],
        text="TREM2 is a microglial receptor that senses lipids and damaged myelin.",
        score=1.0,
    ),
    EvidenceItem(
        eid="E2",
        rank=2,
        page_slug="mechanisms-amyloid",
        page_hash="ph2",
        heading_path=["Amyloid"],
        text="Microglia clear amyloid plaques in mouse models.",
        score=0.5,
    ),
]
VERIFIED_QUOTE = "TREM2 is a microglial receptor that senses lipids"

PROPOSER = [
    Claim(text="TREM2 senses lipids.", evidence_ids=["E1"], quote=VERIFIED_QUOTE),
    Claim(text="Microglia clear tau in people.", evidence_ids=["E2"], quote=HOSTILE),
]
CRITIC = [
    Claim(text="Agonism is unsafe.", evidence_ids=["E9"], quote="agonists were withdrawn for toxicity"),
    Claim(text="Trials disagree.", evidence_ids=[]),
]


def _debated(engine: Engine, *, checked: bool) -> str:
    """A done run of one round. ``checked``: recorded as the engine does now, each turn's claim
    marks in its meta and the run's counts stored; else as before quotes existed (no quotes, no
    marks, no counts)."""
    hyp = add_hyp(engine, "TREM2 agonism for Alzheimer's", targets=["TREM2"])
    counts = {"claims_verified": 1, "claims_cited": 3} if checked else {}
    run_id = insert_run(engine, hyp, score=0.6, backend="openai", **counts)
    with session_scope(engine) as s:
        s.add_all(t.Evidence(run_id=run_id, **e.model_dump()) for e in EVIDENCE)
    for role, claims in (("proposer", PROPOSER), ("critic", CRITIC)):
        if checked:
            parsed = {"argument": f"The {role} argues.", "claims": [c.model_dump() for c in claims]}
            marks = mark_claims(claims, EVIDENCE, QuoteRule())
            meta: dict[str, Any] = {"claim_marks": [m.model_dump(mode="json") for m in marks]}
        else:
            parsed = {
                "argument": f"The {role} argues.",
                "claims": [{"text": c.text, "evidence_ids": c.evidence_ids} for c in claims],
            }
            meta = {}
        insert_turn(
            engine,
            run_id,
            role,
            parsed,
            backend="openai",
            label="model",
            model="gpt-test",
            prompt_version="2",
            prompt_hash=f"hash-{role}-0123456789",
            messages=[{"role": "user", "content": "Debate."}],
            citations=[
                {"eid": eid, "valid": eid in {e.eid for e in EVIDENCE}, "claim": i}
                for i, c in enumerate(parsed["claims"])
                for eid in c.get("evidence_ids", [])
            ],
            meta=meta,
            latency_ms=10.0,
        )
    return run_id


def _transcript(engine: Engine, run_id: str) -> Transcript:
    with session_scope(engine) as s:
        return load_transcript(s, run_id)


@pytest.fixture
def checked(engine: Engine) -> str:
    return _debated(engine, checked=True)


@pytest.fixture
def old(engine: Engine) -> str:
    return _debated(engine, checked=False)


# --------------------------------------------------------------------------- the transcript model


def test_each_claim_carries_its_quote_mark_and_where_the_quote_was_found(engine: Engine, checked: str) -> None:
    tr = _transcript(engine, checked)
    assert tr.version == TRANSCRIPT_VERSION == 2
    proposer, critic = tr.rounds[0].proposer, tr.rounds[0].critic
    assert proposer is not None and critic is not None
    assert [(c.mark, c.found_in) for c in proposer.claims + critic.claims] == [
        ("verified", "E1"),
        ("quote-not-found", None),
        ("not-retrieved", None),
        ("uncited", None),
    ]
    assert proposer.claims[0].quote == VERIFIED_QUOTE
    assert proposer.claims[1].quote == HOSTILE  # kept exactly as the model wrote it
    assert critic.claims[1].quote == ""


def test_the_run_carries_its_verified_claims_and_their_rate(engine: Engine, checked: str) -> None:
    run = _transcript(engine, checked).run
    assert (run.claims_verified, run.claims_cited, run.verified_rate) == (1, 3, 1 / 3)


def test_the_verified_line_reads_as_a_count_and_a_rounded_percentage() -> None:
    def line(verified: int | None, total: int | None, status: str = "done") -> str:
        rate = verified / total if verified is not None and total else None
        info = RunInfo(
            id="r-1",
            status=status,
            backend="openai",
            trigger="cli",
            claims_verified=verified,
            claims_cited=total,
            verified_rate=rate,
        )
        return verified_claims(info)

    assert line(7, 9) == "7 of 9 citing evidence (78%)"
    assert line(199, 200) == "199 of 200 citing evidence (>99%)"  # never reads as all verified when one is not
    assert line(0, 3) == "0 of 3 citing evidence (0%)"
    assert line(0, 0) == "none (no claim cited evidence)"
    assert line(None, None) == "not checked"
    assert line(None, None, status="running") == "counted when the run is done"


def test_each_mark_reads_as_what_the_check_found() -> None:
    cited = [{"eid": "E3", "valid": True, "claim": 0}]
    assert claim_mark(ClaimOut(text="x", citations=cited, quote="a b\n c", mark="verified", found_in="E3")) == (
        '✓ E3 "a b c"'
    )
    assert claim_mark(ClaimOut(text="x", citations=cited, quote="q", mark="quote-not-found")) == (
        '✗ quote not in E3: "q"'
    )
    bad = [{"eid": "E9", "valid": False, "claim": 0}]
    assert claim_mark(ClaimOut(text="x", citations=bad, mark="not-retrieved")) == "✗ E9 not retrieved"
    assert claim_mark(ClaimOut(text="x", mark="uncited")) == "no citation"
    assert claim_mark(ClaimOut(text="x", citations=cited)) == ""  # recorded before quotes were checked


# --------------------------------------------------------------------------- every rendering shows the marks

MARKS = (
    f'✓ E1 "{VERIFIED_QUOTE}"',
    "✗ quote not in E2:",
    "✗ E9 not retrieved",
    "no citation",
)


def test_text_shows_each_claims_mark_under_it_and_the_verified_line(engine: Engine, checked: str) -> None:
    out = render(_transcript(engine, checked), "text")
    for needle in MARKS:
        assert needle in out, needle
    assert out.index("TREM2 senses lipids.") < out.index(MARKS[0]) < out.index("Microglia clear tau")
    assert "verified claims: 1 of 3 citing evidence (33%)" in out


def test_markdown_shows_each_claims_mark_under_it_and_the_verified_line(engine: Engine, checked: str) -> None:
    out = render(_transcript(engine, checked), "md")
    assert f'1. TREM2 senses lipids. [E1]\n   - ✓ E1 "{VERIFIED_QUOTE}"' in out
    for needle in MARKS[1:]:
        assert f"   - {needle}" in out, needle
    assert "| Verified claims | 1 of 3 citing evidence (33%) |" in out


def test_json_carries_the_quote_mark_and_rate(engine: Engine, checked: str) -> None:
    tr = _transcript(engine, checked)
    out = render(tr, "json")
    data = json.loads(out)
    assert data["version"] == 2
    assert data["rounds"][0]["proposer"]["claims"][0] | {"citations": None} == {
        "text": "TREM2 senses lipids.",
        "citations": None,
        "quote": VERIFIED_QUOTE,
        "mark": "verified",
        "found_in": "E1",
    }
    assert [c["mark"] for c in data["rounds"][0]["critic"]["claims"]] == ["not-retrieved", "uncited"]
    assert (data["run"]["claims_verified"], data["run"]["claims_cited"], data["run"]["verified_rate"]) == (1, 3, 1 / 3)
    assert Transcript.model_validate_json(out) == tr


def test_html_page_shows_each_claims_mark_and_the_verified_line(engine: Engine, checked: str) -> None:
    out = render(_transcript(engine, checked), "html")
    for needle in MARKS:
        assert str(escape(needle)) in out, needle
    assert '<span class="mark ok" title="quote check: verified">' in out
    assert 'id="verified-claims">1 of 3 citing evidence (33%)<' in out


@pytest.fixture
def client(db_url: str, engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(load_settings(database_url=db_url), backends=("offline",))) as c:
        yield c


def test_the_reviewer_run_page_and_the_api_show_marks_and_the_verified_line(client: TestClient, checked: str) -> None:
    page = client.get(f"/runs/{checked}")
    assert page.status_code == 200
    for needle in MARKS:
        assert str(escape(needle)) in page.text, needle
    assert 'id="verified-claims">verified claims: 1 of 3 citing evidence (33%)<' in page.text
    api = client.get(f"/api/runs/{checked}/transcript").json()
    assert api["run"]["verified_rate"] == 1 / 3
    assert api["rounds"][0]["proposer"]["claims"][0]["mark"] == "verified"


# --------------------------------------------------------------------------- a hostile quote is shown as text


def test_markdown_shows_a_hostile_quote_as_text(engine: Engine, checked: str) -> None:
    out = render(_transcript(engine, checked), "md")
    assert SCRIPT not in out and "&lt;script&gt;alert(1)&lt;/script&gt;" in out
    # No link a Markdown viewer would follow (nor image it would load): the brackets are escaped.
    assert LINK not in out and "\\[click here\\](https://evil.example/x)" in out


def test_html_shows_a_hostile_quote_as_text(engine: Engine, checked: str) -> None:
    out = render(_transcript(engine, checked), "html")
    assert SCRIPT not in out and "<script" not in out.lower()
    assert "✗ quote not in E2: &#34;&lt;script&gt;alert(1)&lt;/script&gt; [click here]" in out


def test_the_reviewer_run_page_shows_a_hostile_quote_as_text(client: TestClient, checked: str) -> None:
    page = client.get(f"/runs/{checked}").text
    assert SCRIPT not in page and "<script" not in page.lower()
    assert "✗ quote not in E2: &#34;&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_json_escapes_a_hostile_quote_and_keeps_it_exactly(engine: Engine, checked: str) -> None:
    out = render(_transcript(engine, checked), "json")
    assert ESC not in out and "\\u001b[31mred" in out
    assert json.loads(out)["rounds"][0]["proposer"]["claims"][1]["quote"] == HOSTILE


@pytest.mark.parametrize("fmt", ["text", "md"])
def test_a_terminal_gets_no_escape_sequence_from_a_quote(
    engine: Engine, checked: str, cli_env: dict[str, str], fmt: str
) -> None:
    printed = run_cli("transcript", checked, "--format", fmt, env=cli_env).stdout
    assert "✗ quote not in E2:" in printed
    assert ESC not in printed and "[31mred" in printed


# --------------------------------------------------------------------------- runs recorded before quotes


def test_a_run_recorded_before_quotes_were_checked_still_renders_as_not_checked(engine: Engine, old: str) -> None:
    tr = _transcript(engine, old)
    claims = [c for r in tr.rounds for turn in (r.proposer, r.critic) if turn for c in turn.claims]
    assert len(claims) == 4 and all(c.mark is None and c.quote == "" and c.found_in is None for c in claims)
    assert (tr.run.claims_verified, tr.run.claims_cited, tr.run.verified_rate) == (None, None, None)
    for fmt in ("text", "md", "html"):
        out = render(tr, fmt)  # type: ignore[arg-type]
        assert "TREM2 senses lipids." in out, fmt
        assert "not checked" in out, fmt
        assert "✓" not in out and "no citation" not in out, fmt
    assert json.loads(render(tr, "json"))["run"]["verified_rate"] is None


def test_a_version_1_transcript_still_validates(engine: Engine, old: str) -> None:
    data = json.loads(render(_transcript(engine, old), "json"))
    data["version"] = 1
    for key in ("claims_verified", "claims_cited", "verified_rate"):
        del data["run"][key]
    for rnd in data["rounds"]:
        for role in ("proposer", "critic"):
            for claim in rnd[role]["claims"]:
                del claim["quote"], claim["mark"], claim["found_in"]
    tr = Transcript.model_validate(data)
    assert tr.version == 1 and tr.run.verified_rate is None
    assert "verified claims: not checked" in render(tr, "text")


# --------------------------------------------------------------------------- score rows


def test_a_score_row_carries_the_verified_rate_of_the_run_whose_score_is_shown(
    engine: Engine, cli_env: dict[str, str]
) -> None:
    shown = add_hyp(engine, "Counted run")
    insert_run(engine, shown, score=0.7, claims_verified=7, claims_cited=9)
    # A later flagged run does not lend its rate: the earlier run's score (and rate) is shown.
    insert_run(engine, shown, at=T0 + timedelta(hours=1), score=0.2, flagged=True, claims_verified=0, claims_cited=5)
    before = add_hyp(engine, "Run from before quotes")
    insert_run(engine, before, score=0.5)
    prior = add_hyp(engine, "Prior only", prior_score=0.4)

    with session_scope(engine) as s:
        rows = {r.id: r for r in score_rows(s)}
        text = scores_json(list(rows.values()))
    assert (rows[shown].claims_verified, rows[shown].claims_cited) == (7, 9)
    assert rows[shown].verified_rate == pytest.approx(7 / 9)
    assert rows[before].verified_rate is None and rows[before].claims_cited is None
    assert rows[prior].verified_rate is None and rows[prior].last_run is None
    assert "verified_rate" in ScoreRow.model_json_schema()["properties"]

    printed = run_cli("scores", "--json", env=cli_env).stdout
    by_id = {r["id"]: r for r in json.loads(printed)}
    assert by_id[shown]["verified_rate"] == pytest.approx(7 / 9)
    assert by_id[before]["verified_rate"] is None and by_id[prior]["verified_rate"] is None
    assert json.loads(text) == sorted(by_id.values(), key=lambda r: r["id"])

    lines = run_cli("scores", env=cli_env).stdout.splitlines()
    assert "verified" in lines[0].split()

    def verified_cell(title: str) -> str:
        """The cell under the "verified" header (left-aligned) on the row of ``title``."""
        line = next(line for line in lines if title in line)
        cell = line[header_at:]
        return cell.split()[0] if cell.strip() else ""

    header_at = lines[0].index("verified")
    assert verified_cell("Counted run") == "78%"
    assert verified_cell("Run from before quotes") == "–"
    assert verified_cell("Prior only") == ""
