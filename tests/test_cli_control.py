"""Control characters and rich markup at the terminal: refused in arguments, import files and
page text with a one-line error (never a traceback), and stripped or shown literally when
stored text is printed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from conftest import run_cli
from sqlalchemy import func, select, update

from debate.core.models import HypothesisIn
from debate.kb import hypotheses as hyps
from debate.store import tables as t
from debate.store.db import session_scope

ESC = "\x1b"


def one_line_error(proc, start: str) -> None:  # type: ignore[no-untyped-def]
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(start), proc.stderr
    assert ESC not in proc.stderr


def hypothesis_count(engine) -> int:  # type: ignore[no-untyped-def]
    with session_scope(engine) as s:
        return s.execute(select(func.count()).select_from(t.Hypothesis)).scalar_one()


@pytest.mark.parametrize(
    ("args", "where"),
    [
        (["hypotheses", "add", "--title", f"Bright {ESC}[31mred idea"], "command-line argument 4 (after --title)"),
        (["hypotheses", "add", "--title", "Fine", f"--target=SOD1{ESC}"], "command-line argument 5 (--target)"),
        (
            ["review", "r-0000", "--flag", "--note", f"looks {ESC}]8;;x{ESC}\\ odd"],
            "command-line argument 5 (after --note)",
        ),
        (["kb", "search", f"sod1{ESC}[2J"], "command-line argument 3"),
    ],
)
def test_escape_in_an_argument_is_a_one_line_error(
    engine, cli_env: dict[str, str], args: list[str], where: str
) -> None:
    proc = run_cli(*args, env=cli_env, check=False)
    one_line_error(proc, f"error: {where}: control character U+001B at position ")
    assert hypothesis_count(engine) == 0


def test_nul_in_an_argument_is_a_one_line_error(engine, db_url: str, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    # A real process cannot receive a NUL in argv (C strings end there); the entry point is
    # called in-process with the argument list a wrapper could hand it.
    from debate.cli import main

    monkeypatch.setenv("DEBATE_DATABASE_URL", db_url)
    monkeypatch.setattr(sys, "argv", ["debate", "hypotheses", "add", "--title", "Nul\x00title"])
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err == "error: command-line argument 4 (after --title): control character U+0000 at position 4\n"
    assert hypothesis_count(engine) == 0


@pytest.mark.parametrize(
    ("name", "content", "where"),
    [
        ("h.yaml", '- title: "Nul \\0 title"\n  targets: [SOD1]\n', "h.yaml:1: title"),
        ("h.yaml", '- title: Fine one\n- title: "Esc \\e[31m title"\n', "h.yaml:2: title"),
        ("h.yaml", '- title: Fine one\n  mechanisms: ["auto\\x07phagy"]\n', "h.yaml:1: mechanisms"),
        ("h.json", '[{"title": "Fine"}, {"title": "Esc \\u001b title"}]', "h.json:1: title"),
        ("h.csv", "title,targets\nFine,SOD1\nEsc \x1b title,SOD1\n", "h.csv:3: title"),
    ],
)
def test_control_characters_in_import_files_are_one_line_errors(
    engine, tmp_path: Path, cli_env: dict[str, str], name: str, content: str, where: str
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    proc = run_cli("hypotheses", "import", str(path), env=cli_env, check=False)
    one_line_error(proc, f"error: {tmp_path}/{where}: control character U+00")
    assert hypothesis_count(engine) == 0  # all or nothing


def test_control_characters_in_page_text_are_a_one_line_cli_error(
    engine, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    (tmp_path / "p.txt").write_text(f"Wren Page\nOverview\nPlain words, then {ESC}[8m hidden ones.\n", encoding="utf-8")
    proc = run_cli("kb", "ingest", str(tmp_path / "p.txt"), env=cli_env, check=False)
    one_line_error(proc, "error: p.txt:3: control character U+001B at position 19")


def test_stored_escapes_and_markup_print_as_plain_text(engine, cli_env: dict[str, str]) -> None:
    titles = {
        f"Wren {ESC}[31mred{ESC}[0m {ESC}]0;pwned\x07title": "Wren [31mred[0m ]0;pwnedtitle",
        "Wren [red]x[/red] plain": "Wren [red]x[/red] plain",
        "Wren [link=https://example.org/x]click[/link] here": "Wren [link=https://example.org/x]click[/link] here",
    }
    with session_scope(engine) as s:
        for i, stored in enumerate(titles):
            row, _ = hyps.add(s, HypothesisIn(title=f"Placeholder {i}", targets=["SOD1"], source="test"))
            # As stored before input was checked (or by another writer).
            s.execute(update(t.Hypothesis).where(t.Hypothesis.id == row.id).values(title=stored))
    listed = run_cli("hypotheses", "list", env=cli_env).stdout
    assert ESC not in listed and "\x07" not in listed
    for shown in titles.values():
        assert shown in listed
    scores = run_cli("scores", env=cli_env).stdout
    assert ESC not in scores and "Wren [red]x[/red] plain" in scores
    as_json = json.loads(run_cli("hypotheses", "list", "--json", env=cli_env).stdout)
    assert set(titles) == {h["title"] for h in as_json}  # JSON keeps the data, escaped by JSON
