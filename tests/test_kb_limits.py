"""Untrusted pages at ingest: a slug that could name a path, control characters, oversized pages
and lines are refused naming file and line, with nothing of the ingest stored; a runaway line
that is allowed is split into chunks of bounded size."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_cli
from sqlalchemy import func, select

from debate.core.config import KbSettings
from debate.core.errors import PageParseError
from debate.kb.ingest import ingest_paths
from debate.store import tables as t
from debate.store.db import session_scope

SCORE = '<span style="color:#81c784;font-weight:600">0.70</span>'


def page(
    slug: str = "entities-kestrel", *, body: str = "Kestrel proteins fold quickly in cold cells.", extra: str = ""
) -> str:
    """A small page in the wiki export format (lines: title 1, heading 2, body 3, ...)."""
    return (
        "Kestrel Protein\n"
        "Overview\n"
        f"{body}\n"
        f"{extra}"
        "Related Hypotheses\n"
        "From the [SciDEX Exchange](/exchange) — scored by multi-agent debate\n"
        f"- [Cold Shock Rescue](/hypothesis/h-0c0ffee1) — {SCORE} · Target: SOD1\n"
        "▸Metadata\n"
        f"| slug | {slug} |\n"
    )


def count(engine, table) -> int:  # type: ignore[no-untyped-def]
    with session_scope(engine) as s:
        return s.execute(select(func.count()).select_from(table)).scalar_one()


def assert_nothing_stored(engine) -> None:  # type: ignore[no-untyped-def]
    assert (count(engine, t.Page), count(engine, t.Chunk), count(engine, t.Hypothesis)) == (0, 0, 0)


def kb_with(tmp_path: Path, bad_name: str, bad: str | bytes) -> Path:
    """A folder holding one good page and the bad one: the bad one must stop both."""
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "a-good.txt").write_text(page("entities-good-one"), encoding="utf-8")
    target = kb / bad_name
    target.write_bytes(bad if isinstance(bad, bytes) else bad.encode("utf-8"))
    return kb


@pytest.mark.parametrize("slug", ["../../../../ESCAPED", "..", "a/b", "Upper-Case", ".hidden", "x" * 201, "a..b"])
def test_a_slug_that_is_not_a_safe_name_is_refused_at_its_line(engine, tmp_path: Path, slug: str) -> None:
    kb = kb_with(tmp_path, "b-evil.txt", page(slug))
    with pytest.raises(PageParseError) as err:
        ingest_paths(engine, [kb])
    assert str(err.value).startswith("b-evil.txt:8: invalid page slug")
    assert_nothing_stored(engine)


def test_a_traversal_slug_is_a_one_line_cli_error(tmp_path: Path, cli_env: dict[str, str], engine) -> None:  # type: ignore[no-untyped-def]
    kb = kb_with(tmp_path, "b-evil.txt", page("../../../../ESCAPED"))
    proc = run_cli("kb", "ingest", str(kb), env=cli_env, check=False)
    assert proc.returncode == 2
    assert (
        proc.stderr.strip().splitlines()[-1].startswith("error: b-evil.txt:8: invalid page slug '../../../../ESCAPED'")
    )
    assert "Traceback" not in proc.stderr
    assert_nothing_stored(engine)


@pytest.mark.parametrize(
    ("char", "code"), [("\x1b", "U+001B"), ("\x00", "U+0000"), ("\x7f", "U+007F"), ("\x08", "U+0008")]
)
def test_control_characters_in_page_text_are_refused_at_their_line(
    engine, tmp_path: Path, char: str, code: str
) -> None:
    kb = kb_with(tmp_path, "b-ctl.txt", page(extra=f"Second line with a {char}[31m colour trick.\n"))
    with pytest.raises(PageParseError) as err:
        ingest_paths(engine, [kb])
    assert str(err.value).startswith("b-ctl.txt:4: ")
    assert code in str(err.value) or "NUL" in str(err.value)
    assert_nothing_stored(engine)


def test_tabs_and_crlf_line_ends_are_page_text(engine, tmp_path: Path) -> None:
    text = page(body="Kestrel\tproteins fold quickly.").replace("\n", "\r\n")
    (tmp_path / "p.txt").write_bytes(text.encode("utf-8"))
    assert ingest_paths(engine, [tmp_path / "p.txt"]).added == ["entities-kestrel"]


def test_a_page_over_the_size_limit_is_refused_at_the_line_crossing_it(engine, tmp_path: Path) -> None:
    filler = "".join(f"Filler sentence number {i} about cold proteins.\n" for i in range(130_000))
    assert len(filler) > 5_000_000
    kb = kb_with(tmp_path, "b-huge.txt", page(extra=filler))
    with pytest.raises(PageParseError) as err:
        ingest_paths(engine, [kb])
    where, message = str(err.value).split(": ", 1)
    assert where.startswith("b-huge.txt:") and int(where.split(":")[1]) > 100_000
    assert message.startswith("page is larger than 5000000 bytes (kb.max_page_bytes)")
    assert_nothing_stored(engine)


def test_a_line_over_the_length_limit_is_refused_at_its_line(engine, tmp_path: Path) -> None:
    runaway = "cold " * 30_000  # 150 KB on one line, under the page limit
    kb = kb_with(tmp_path, "b-line.txt", page(extra=f"{runaway}\n"))
    with pytest.raises(PageParseError) as err:
        ingest_paths(engine, [kb])
    assert str(err.value).startswith("b-line.txt:4: line of 150000 bytes is longer than 100000 (kb.max_line_bytes)")
    assert_nothing_stored(engine)


def test_a_long_line_is_split_into_chunks_within_the_limit(engine, tmp_path: Path) -> None:
    words = [f"w{i}é" for i in range(6_000)]  # about 40 KB of plain text on one line
    (tmp_path / "p.txt").write_text(page(body=" ".join(words)), encoding="utf-8")
    ingest_paths(engine, [tmp_path / "p.txt"])
    with session_scope(engine) as s:
        chunks = list(s.execute(select(t.Chunk.text, t.Chunk.line).order_by(t.Chunk.ordinal)).all())
    assert len(chunks) >= 10
    assert all(len(text.encode("utf-8")) <= 4_000 for text, _ in chunks)
    assert {line for _, line in chunks} == {3}
    assert " ".join(text for text, _ in chunks).split() == words


def test_the_limits_are_settings(engine, tmp_path: Path, cli_env: dict[str, str]) -> None:
    (tmp_path / "p.txt").write_text(page(extra="x" * 600 + "\n"), encoding="utf-8")
    env = cli_env | {"DEBATE_KB__MAX_LINE_BYTES": "500"}
    proc = run_cli("kb", "ingest", str(tmp_path / "p.txt"), env=env, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: p.txt:4: line of 600 bytes is longer than 500 (kb.max_line_bytes)"
    )
    limits = KbSettings(max_chunk_bytes=200)
    (tmp_path / "p.txt").write_text(page(body="cold " * 100), encoding="utf-8")
    ingest_paths(engine, [tmp_path / "p.txt"], limits=limits)
    assert count(engine, t.Chunk) == 3


def test_a_listed_hypothesis_that_cannot_be_stored_is_refused_at_its_line(engine, tmp_path: Path) -> None:
    title = "Very " * 70  # 350 characters: over the 300 a title may have
    bad = page().replace("[Cold Shock Rescue]", f"[{title}]")
    kb = kb_with(tmp_path, "b-long-title.txt", bad)
    with pytest.raises(PageParseError) as err:
        ingest_paths(engine, [kb])
    assert str(err.value).startswith("b-long-title.txt:6: listed hypothesis h-0c0ffee1: title:")
    assert_nothing_stored(engine)
