"""Command-line interface. Importing this package registers every command on ``app``."""

from debate.cli import batches, bench, db, demo, hypotheses, info, kb, model, queue, rescore, runs, serve, wiki  # noqa: F401  (command registration)
from debate.cli.app import app, main

__all__ = ["app", "main"]
