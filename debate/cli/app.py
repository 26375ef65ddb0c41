"""The Typer application, its shared options, and how errors reach the user.

Commands live in sibling modules by area; this module only wires them. A named engine error
(:mod:`debate.core.errors`) becomes one line on stderr and its exit code; anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape as rich_escape
from sqlalchemy.engine import Engine

from debate import __version__
from debate.core.config import Settings, load_settings
from debate.core.errors import DebateError
from debate.core.redact import redact
from debate.core.text import terminal_safe

console = Console(stderr=True, highlight=False)
out = Console(highlight=False)

app = typer.Typer(
    name="debate",
    help="Proposer, critic and judge agents debate therapeutic hypotheses against a treatment KB.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


@dataclass
class AppState:
    """Options given before the command, and the settings/engine they lead to (built lazily)."""

    overrides: dict[str, Any] = field(default_factory=dict)
    _settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(**self.overrides)
        return self._settings

    def engine(self) -> Engine:
        from debate.store.db import ensure_schema

        return ensure_schema(self.settings.database_url)


state = AppState()


def _version(value: bool) -> None:
    if value:
        print(f"debate {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    database_url: Annotated[
        str | None,
        typer.Option("--database-url", "--db", help="Database URL (default: DEBATE_DATABASE_URL or config)."),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Proposer, critic and judge agents debate therapeutic hypotheses against a treatment KB."""
    state.overrides = {"database_url": database_url}
    state._settings = None


def emit_json(data: Any) -> None:
    """Machine-readable output: JSON on stdout and nothing else there."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def announce_db() -> None:
    """First line of long commands: which database is in use (stderr, so --json stays clean)."""
    console.print(f"[dim]database: {rich_escape(redact(state.settings.database_url))}[/dim]")


def fail(message: str, code: int = 1) -> None:
    console.print(f"[red]error:[/red] {rich_escape(terminal_safe(redact(message)))}", markup=True, highlight=False)
    raise typer.Exit(code)


def main() -> None:
    """Console entry point."""
    import debate.cli  # noqa: F401  (registers the command modules)
    from debate.cli.safe import check_args

    try:
        check_args(sys.argv[1:])
        rc = app(standalone_mode=False)
    except DebateError as e:
        _print_error(str(e))
        sys.exit(e.exit_code)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        _print_error("aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        _print_error("interrupted")
        sys.exit(130)
    except Exception as e:
        # Usage errors (click's, vendored by typer) arrive here in non-standalone mode.
        if hasattr(e, "show") and isinstance(getattr(e, "exit_code", None), int):
            e.show()
            sys.exit(e.exit_code)
        raise
    sys.exit(rc if isinstance(rc, int) else 0)


def _print_error(message: str) -> None:
    first = message.strip().splitlines()[0] if message.strip() else "error"
    # A message may quote untrusted text (a file name, a page line): no control characters.
    sys.stderr.write(f"error: {terminal_safe(redact(first))}\n")
