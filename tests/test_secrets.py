"""A database password never reaches the screen: not in status lines, `info`, or error lines."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import pytest
from conftest import run_cli
from pg import pg_url  # noqa: F401  (fixture)
from sqlalchemy.engine import make_url

from debate.core.redact import redact

PASSWORD = "hunter2-Sekret"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("postgresql+psycopg://bob:hunter2@db:5432/x", "postgresql+psycopg://bob:***@db:5432/x"),
        ("postgresql://bob:p@ss:w0rd@db/x?sslmode=require", "postgresql://bob:***@db/x?sslmode=require"),
        ("connect failed: host=db password=hunter2 user=bob", "connect failed: host=db password=*** user=bob"),
        ("sqlite:///runs/debate.db", "sqlite:///runs/debate.db"),
        ("postgresql://bob@db/x", "postgresql://bob@db/x"),
        ("see https://example.org/a:b@c", "see https://example.org/a:b@c"),
    ],
)
def test_redact_hides_url_and_conninfo_passwords_and_nothing_else(text: str, shown: str) -> None:
    assert redact(text) == shown


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _with_password(url: str) -> str:
    return make_url(url).set(password=PASSWORD).render_as_string(hide_password=False)


def test_an_unreachable_database_error_line_hides_the_password(cli_env) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("psycopg")
    env = {**cli_env, "DEBATE_DATABASE_URL": f"postgresql+psycopg://bob:{PASSWORD}@127.0.0.1:9/nothing"}
    proc = run_cli("info", env=env, check=False)
    assert proc.returncode != 0
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
    assert PASSWORD not in proc.stderr + proc.stdout


@pytest.mark.postgres
def test_info_and_long_commands_show_the_url_without_its_password(pg_url, cli_env, tmp_path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    # The test server trusts local connections, so any password connects.
    env = {**cli_env, "DEBATE_DATABASE_URL": _with_password(pg_url)}
    text = run_cli("info", env=env)
    as_json = run_cli("info", "--json", env=env)
    assert json.loads(as_json.stdout)["database_url"] == redact(_with_password(pg_url))
    assert ":***@" in text.stdout
    init = run_cli("init", env=env)
    ingest = run_cli("kb", "ingest", str(tmp_path), env=env, check=False)
    for proc in (text, as_json, init, ingest):
        assert PASSWORD not in proc.stdout + proc.stderr
    assert "database: " in ingest.stderr and ":***@" in ingest.stderr


@pytest.mark.postgres
def test_serve_start_up_output_hides_the_password(pg_url, cli_env, tmp_path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    env = {**cli_env, "DEBATE_DATABASE_URL": _with_password(pg_url)}
    log = tmp_path / "serve.err"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "debate", "serve", "--port", str(_free_port())],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        deadline = time.monotonic() + 30
        while "reviewer UI" not in log.read_text(errors="replace") and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text(errors="replace")
            time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(10)
    shown = log.read_text(errors="replace")
    assert "database: " in shown and ":***@" in shown
    assert PASSWORD not in shown
