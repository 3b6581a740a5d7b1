"""Errors that map to the documented exit codes (0 ok, 1 policy/gate failure, 2 bad input)."""

from __future__ import annotations

from pathlib import Path


def display_path(path: str) -> str:
    """``path`` relative to the working directory when it is inside it (shorter messages)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return path


class PlatformError(Exception):
    """Base class of every error this repo raises on purpose."""

    exit_code = 1


class ConfigError(PlatformError):
    """Bad input: an env file, a catalog, a command-line argument.

    The message always names the file, the key path and the reason, so that a user can fix the
    input without reading code.
    """

    exit_code = 2

    def __init__(self, file: str, key: str, reason: str) -> None:
        file = display_path(file)
        self.file = file
        self.key = key
        self.reason = reason
        super().__init__(f"{file}: {key}: {reason}")


class UsageError(PlatformError):
    """A wrong command-line argument."""

    exit_code = 2


class ContractError(PlatformError):
    """A layer read or exported something its typed contract does not declare."""

    exit_code = 2
