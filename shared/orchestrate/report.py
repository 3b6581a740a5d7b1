"""Words and tables for a run: change summaries, failure details, the final summary table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TextIO

from rich.console import Console
from rich.table import Table

from shared.orchestrate.model import Action, LayerResult, Operation, Status

# The order Pulumi's own summaries use; anything else (import, discard, ...) follows alphabetically.
_OP_ORDER = ("create", "update", "replace", "delete", "read", "refresh", "same")
_STATUS_STYLE = {Status.SUCCEEDED: "green", Status.FAILED: "bold red", Status.SKIPPED: "yellow",
                 Status.NOT_RUN: "dim", Status.INTERRUPTED: "bold magenta"}


def _sorted_ops(changes: Mapping[str, int]) -> list[tuple[str, int]]:
    def key(item: tuple[str, int]) -> tuple[int, str]:
        op = item[0]
        return (_OP_ORDER.index(op) if op in _OP_ORDER else len(_OP_ORDER), op)

    return sorted(((op, count) for op, count in changes.items() if count), key=key)


def describe_changes(changes: Mapping[str, int], operation: Operation) -> str:
    """``create 3, update 1, same 12`` -- or, for a refresh preview, the drift in those words."""
    ops = _sorted_ops(changes)
    if operation.action is Action.REFRESH and operation.preview_only:
        # A refresh preview's "update" is a resource whose real state differs from the state file,
        # its "delete" one that no longer exists: that is exactly drift. "refresh"/"read" only say a
        # resource was looked at.
        changed = [(op, count) for op, count in ops if op not in ("same", "refresh", "read")]
        if not changed:
            return "no drift"
        return "drift: " + ", ".join(f"{op} {count}" for op, count in changed)
    if not ops:
        return "no changes"
    return ", ".join(f"{op} {count}" for op, count in ops)


def failure_detail(error: BaseException) -> str:
    """One line saying why a layer failed (the full output was already streamed live)."""
    text = str(error).strip()
    if "stderr:" in text:  # an Automation API CommandError: "code: N\n stdout: ...\n stderr: ..."
        text = text.rsplit("stderr:", 1)[1]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    return f"{type(error).__name__}: {last}" if last else type(error).__name__


def print_summary(results: Sequence[LayerResult], operation: Operation, env_name: str, stream: TextIO) -> None:
    console = Console(file=stream, width=120, highlight=False, soft_wrap=False)
    table = Table(title=f"{operation.label} {env_name}", title_justify="left")
    table.add_column("layer")
    table.add_column("result")
    table.add_column("changes")
    table.add_column("duration", justify="right")
    for result in results:
        ran = result.status in (Status.SUCCEEDED, Status.FAILED, Status.INTERRUPTED)
        if result.status is Status.SUCCEEDED:
            changes = describe_changes(result.changes, operation)
            changes = f"{changes}; {result.detail}" if result.detail else changes
        else:
            changes = result.detail
        table.add_row(result.layer, f"[{_STATUS_STYLE[result.status]}]{result.status.value}[/]", changes,
                      f"{result.duration_s:.1f}s" if ran else "-")
    console.print(table)
    counts = [f"{sum(r.status is status for r in results)} {status.value}" for status in Status
              if any(r.status is status for r in results)]
    console.print(f"{operation.label} {env_name}: {', '.join(counts)}")
