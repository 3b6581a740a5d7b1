"""What every command-line entry point shares: exit codes and one-paragraph error messages."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from shared.errors import PlatformError

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
