"""What every command-line entry point shares: exit codes and one-paragraph error messages."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from shared.errors import PlatformError, UsageError

if TYPE_CHECKING:
    from rich.console import Console


def run_main(main: Callable[[list[str]], int], argv: list[str] | None = None) -> int:
    """Run ``main`` and turn our errors into the documented exit codes (0 ok, 1 failure, 2 bad input)."""
    try:
        return main(sys.argv[1:] if argv is None else argv)
    except PlatformError as error:
        kind = "error" if error.exit_code == 2 else "failed"
        print(f"{kind}: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def exit_now(code: int) -> None:
    """End the process with ``code`` once output is flushed, skipping interpreter teardown.

    Tearing down the module graph of pulumi_aws, grpc and protobuf takes longer than a whole synth
    of one env (0.6 s here), and a command has nothing left to clean: files are closed and pack
    processes stopped by their context managers before ``main`` returns.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def console() -> Console:
    """A rich console; when output is not a terminal (CI logs, pipes) it is 160 columns wide instead
    of rich's 80, so tables of findings stay readable."""
    from rich.console import Console

    probe = Console()
    return probe if probe.is_terminal else Console(width=160)


class UsageParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are :class:`UsageError` (exit 2, one message) instead of argparse
    printing usage and exiting by itself. ``label`` prefixes the message (default: ``prog``)."""

    def __init__(self, *args: Any, label: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.label = label or self.prog

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.label}: {message}")


def check_output_path(path: Path, option: str, *, directory: bool = False) -> None:
    """Refuse, before any work, an output the command could not write at the end (exit 2 naming the
    path and the reason): a folder where a file goes, a file where a folder goes, an ancestor that is
    a file, or a folder this user may not write into."""
    if path.exists():
        if directory and not path.is_dir():
            raise UsageError(f"{option} {path}: is a file, not a folder")
        if not directory and path.is_dir():
            raise UsageError(f"{option} {path}: is a folder; give a file path")
    ancestor = path if directory and path.is_dir() else path.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UsageError(f"{option} {path}: {ancestor} is a file, so the output cannot be created there")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path}: {ancestor} is not writable by this user")


# Read once, at import (single-threaded then): os.umask can only be read by setting it.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def _target_mode(path: Path) -> int:
    """The mode the written file should have: the replaced file's, or for a new file what the umask
    gives (``mkstemp`` creates 0600, which would hide an env file from its group)."""
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        return 0o666 & ~_UMASK


def write_output(path: Path, text: str, option: str) -> None:
    """Write a command's output file ``path`` (given as ``option``): atomically where a plain file is or none yet
    (:func:`write_atomically`), straight through a symbolic link (``/dev/stdout`` redirected to a file is one: a
    rename would replace the link, and the shell's file would stay empty) and into whatever else stands there (a
    pipe, a device). A write the system refuses (a full disk, a read-only file system) is exit 2's error naming the
    option and the path, not a traceback."""
    try:
        if not path.is_symlink() and (not path.exists() or path.is_file()):
            write_atomically({path: text})
        else:
            with path.open("w", encoding="utf-8") as stream:
                stream.write(text)
    except OSError as error:
        raise UsageError(f"{option} {path}: could not be written ({error.strerror or error})") from None


def write_atomically(files: dict[Path, str]) -> None:
    """Write all files or none: each goes to a temp file beside it first, then all are renamed into
    place, so a failure or a crash never leaves a half-written file behind. A replaced file keeps its
    mode; a new one follows the umask. A path where something other than a file stands (a folder, a device) is
    refused before anything is written (:class:`UsageError`, exit 2): the rename would fail on a folder after the
    files before it were replaced, and would put a file in a device's place."""
    for path in files:
        if path.exists() and not path.is_file():
            what = "a folder" if path.is_dir() else "not a regular file"
            raise UsageError(f"{path}: {what} stands where the output file goes; nothing was written")
    staged: list[tuple[Path, str]] = []
    try:
        for path, text in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
            staged.append((path, temp))
            os.fchmod(handle, _target_mode(path))
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                stream.write(text)
        for path, temp in staged:
            os.replace(temp, path)
    finally:
        for _, temp in staged:
            if os.path.exists(temp):
                os.unlink(temp)


def login_name() -> str:
    """Who runs this: the login name, ``unknown`` where the system has none (a container whose uid has no passwd
    entry: getpass.getuser raises KeyError, OSError from Python 3.13)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
