"""Tables in 80 columns and in pipes: key columns stay whole, titles are cut with an ellipsis,
every table command has ``--json``, and the ``database:`` line is a line of its own on stderr."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli
from rich.console import Console
from rich.table import Table

from debate.cli.tables import print_table

LONG = "Sigma-1 Receptor Agonism to Restore BDNF Trafficking in Huntington's Disease"


def _printed(width: int, *rows: tuple[str, ...]) -> list[str]:
    console = Console(width=width, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    table = Table("hypothesis", "score", "interval", "status", "title")
    for row in rows:
        table.add_row(*row)
    print_table(console, table, flex=("title",))
    return console.export_text().splitlines()


def test_in_80_columns_the_key_columns_stay_whole_and_the_title_is_cut_with_an_ellipsis() -> None:
    lines = _printed(80, ("h-1016d2d9", "0.49", "0.49–0.50", "interrupted", LONG * 2))
    assert all(len(line) <= 80 for line in lines)
    assert len(lines) == 2  # header and one row: nothing wraps
    row = lines[1]
    for whole in ("h-1016d2d9", "0.49", "0.49–0.50", "interrupted", "Sigma-1 Receptor"):
        assert whole in row
    assert row.rstrip().endswith("…")


def test_a_title_that_fits_is_not_cut() -> None:
    [_, row] = _printed(200, ("h-1016d2d9", "0.49", "0.49–0.50", "done", LONG))
    assert row.rstrip().endswith(LONG)


def test_when_even_the_key_columns_do_not_fit_the_table_is_wider_rather_than_collapsed() -> None:
    [header, row] = _printed(30, ("h-1016d2d9", "0.49", "0.49–0.50", "interrupted", LONG))
    assert header.split()[:4] == ["hypothesis", "score", "interval", "status"]
    assert row.split()[:4] == ["h-1016d2d9", "0.49", "0.49–0.50", "interrupted"]


def test_the_run_table_reads_in_80_columns_of_a_pipe(sample_engine, cli_env) -> None:  # type: ignore[no-untyped-def]
    env = {**cli_env, "COLUMNS": "80"}
    proc = run_cli("run", "h-9878fd9b", "h-3893b013", "--quiet", env=env)
    assert proc.stderr.startswith("database: ") and proc.stderr.split("\n", 1)[0].count("database:") == 1
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert lines[0].split()[:6] == ["hypothesis", "score", "interval", "agreement", "run", "status"]
    assert all(len(line) <= 80 for line in lines)
    for line in lines[1:]:
        hyp, score, interval, agreement, run_id, status = line.split()[:6]
        assert hyp.startswith("h-") and len(score) == 4 and "–" in interval and run_id.startswith("r-")
        assert status == "done"


TABLE_COMMANDS = [
    ("scores",),
    ("hypotheses", "list"),
    ("kb", "list"),
    ("runs", "list"),
    ("batches", "list"),
    ("targets", "SOD1"),
]


@pytest.mark.parametrize("command", TABLE_COMMANDS, ids=" ".join)
def test_every_table_command_prints_json_with_json(sample_engine, cli_env, command) -> None:  # type: ignore[no-untyped-def]
    proc = run_cli(*command, "--json", env=cli_env)
    json.loads(proc.stdout)  # stdout is JSON and nothing else
