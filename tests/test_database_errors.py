"""A database that cannot be used is one `error:` line and a non-zero exit, never a traceback."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import run_cli


def _error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def _info(env: dict[str, str], url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_cli("info", env={**env, "DEBATE_DATABASE_URL": url}, cwd=cwd, check=False)


def test_a_file_that_is_not_sqlite_is_named(cli_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "notes.db").write_text("these are my notes, not a database\n")
    proc = _info(cli_env, "sqlite:///notes.db", tmp_path)
    assert proc.returncode == 1
    assert _error_line(proc) == "error: cannot open database sqlite:///notes.db: file is not a database"


@pytest.mark.parametrize("url", ["sqlite:///", "sqlite:///:memory:", "sqlite:///file:x?mode=memory&uri=true"])
def test_an_in_memory_database_is_refused_before_anything_is_written(cli_env, tmp_path, url) -> None:  # type: ignore[no-untyped-def]
    proc = run_cli("kb", "ingest", str(tmp_path), env={**cli_env, "DEBATE_DATABASE_URL": url}, check=False)
    assert proc.returncode == 2
    assert "in-memory SQLite database vanishes" in _error_line(proc)


def test_a_missing_folder_is_an_error_naming_it(cli_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    proc = _info(cli_env, "sqlite:///no/such/folder/x.db", tmp_path)
    assert proc.returncode == 2
    assert "'no/such/folder' does not exist" in _error_line(proc)
    assert not (tmp_path / "no").exists()


def test_the_default_runs_folder_is_created(cli_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    proc = _info(cli_env, "sqlite:///runs/debate.db", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "runs" / "debate.db").is_file()


def test_a_schema_newer_than_the_code_says_to_upgrade(cli_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url = "sqlite:///new.db"
    assert _info(cli_env, url, tmp_path).returncode == 0
    with sqlite3.connect(tmp_path / "new.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    proc = _info(cli_env, url, tmp_path)
    assert proc.returncode == 1
    line = _error_line(proc)
    assert "(9999_from_the_future) is newer than this debate knows" in line and "upgrade debate" in line


def test_a_postgresql_url_without_the_driver_says_which_extra_to_install(cli_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # As on a base install: importing psycopg fails.
    code = (
        "import sys; sys.modules['psycopg'] = None; sys.argv = ['debate', 'info']; from debate.cli import main; main()"
    )
    env = {**cli_env, "DEBATE_DATABASE_URL": "postgresql+psycopg://reviewer:s3cret@127.0.0.1:5432/wiki"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    line = _error_line(proc)
    assert "pip install 'debate[postgres]'" in line and "s3cret" not in line


@pytest.mark.slow
def test_a_database_locked_by_another_writer_is_one_error_line(cli_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url = "sqlite:///busy.db"
    assert _info(cli_env, url, tmp_path).returncode == 0
    locked, release = threading.Event(), threading.Event()

    def hold_the_write_lock() -> None:
        conn = sqlite3.connect(tmp_path / "busy.db", isolation_level=None, check_same_thread=False)
        conn.execute("BEGIN EXCLUSIVE")
        locked.set()
        release.wait(60)
        conn.execute("ROLLBACK")
        conn.close()

    holder = threading.Thread(target=hold_the_write_lock)
    holder.start()
    try:
        assert locked.wait(10)
        started = time.monotonic()
        proc = run_cli(
            "hypotheses", "add", "--title", "A lock holds", "--target", "SOD1",
            env={**cli_env, "DEBATE_DATABASE_URL": url}, cwd=tmp_path, check=False,
        )  # fmt: skip
        assert time.monotonic() - started < 60
    finally:
        release.set()
        holder.join(10)
    assert proc.returncode == 1
    assert "database is locked" in _error_line(proc)
