"""The project's own error types: everything a user can cause ends in one of these, never a traceback."""

from __future__ import annotations


class InferplaneError(Exception):
    """Base of every error that the command line reports as a message rather than a traceback.

    `exit_code` is what the CLI returns: 1 for problems found in the user's input or environment,
    2 for usage errors.
    """

    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class UsageError(InferplaneError):
    exit_code = 2


class ConfigError(InferplaneError):
    """A configuration problem that is not tied to a file position (those are api.diagnostics errors)."""
