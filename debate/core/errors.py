"""The engine's named errors, split by who must act.

The CLI and the HTTP API turn these into one-line messages and exit codes / status codes;
anything else that escapes is a bug and is shown as one.
"""

from __future__ import annotations


class DebateError(Exception):
    """Base class of every error the engine raises on purpose."""

    exit_code: int = 1


class UserInputError(DebateError):
    """Bad input from the user: a malformed page, an unknown id, an invalid gene symbol.

    ``where`` names the file, line or field at fault, so the one-line message points at it.
    """

    exit_code = 2

    def __init__(self, message: str, *, where: str | None = None) -> None:
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)


class NotFoundError(UserInputError):
    """An id or slug that names nothing stored."""


class PageParseError(UserInputError):
    """A KB page that cannot be read as the wiki export format."""


class ConfigError(DebateError):
    """A bad setting: an unknown key, a value out of range, an unknown backend or database URL."""

    exit_code = 2


class ModelEndpointError(DebateError):
    """The model endpoint failed for good: unreachable, refusing, or replying unusably after retries."""


class StorageError(DebateError):
    """The database cannot be reached or used (wrong URL, locked, schema too new)."""


class BudgetExceeded(DebateError):
    """A token or cost budget was reached; no new work is started."""
