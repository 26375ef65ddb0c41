"""Command-line interface. Importing this package registers every command on ``app``."""

from debate.cli import demo, hypotheses, info, kb, runs  # noqa: F401  (command registration)
from debate.cli.app import app, main

__all__ = ["app", "main"]
