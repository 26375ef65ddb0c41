"""`python -m debate` runs the CLI."""

from debate.cli import main

main()
