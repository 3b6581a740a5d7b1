"""``python -m shared.plan_diff ENV [ENV ...]``: the offline plan diff (``nox -s diff``).

Exit codes: 0 nothing protected would be replaced or deleted (changes may exist); 1 a protected
resource would be replaced or deleted; 2 bad input.
"""

from __future__ import annotations

import gc
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from shared.cli import UsageParser, console, exit_now, run_main
from shared.errors import UsageError, display_path
from shared.plan_diff import BASELINE_DIR, LayerDiff, diff_env, read_baseline

ACTIONS = ("add", "delete", "update", "replace")


def baseline_label(baseline: Path) -> str:
    """What the diff compares with, as its header names it."""
    if baseline.resolve() == BASELINE_DIR.resolve():
        return "the accepted snapshots"
    return f"the baseline in {display_path(str(baseline))}"


def baseline_problem(env: str, baseline: Path) -> str | None:
    """Why ``baseline`` holds no baseline of ``env`` (None: it holds one). Without one every resource would show as
    added and nothing as replaced: a diff that checks nothing, and exits 0."""
    folder = baseline / env
    if folder.is_dir() and any(folder.glob("*.json")):
        from shared.dag import LAYERS

        broken = [problem for layer in LAYERS if (problem := read_baseline(folder / f"{layer}.json")[1])]
        return "\n".join(f"diff: {problem}" for problem in broken) or None
    where = display_path(str(folder))
    if baseline.resolve() == BASELINE_DIR.resolve():
        return (f"diff: {env}: no accepted snapshots ({where}/<layer>.json): a new env has none until they are "
                f"written (`UPDATE_SNAPSHOTS=1 nox -s tests -- tests/test_synth.py`, then commit them)")
    return (f"diff: --baseline {display_path(str(baseline))}: no baseline of {env} (expected {where}/<layer>.json; "
            "the folder holding <env>/<layer>.json, e.g. a checkout's tests/snapshots)")


def render(env: str, diffs: list[LayerDiff], out: Console, against: str = "the accepted snapshots") -> None:
    table = Table(title=f"plan diff of {env} against {against}", title_justify="left")
    for column in ("layer", *ACTIONS, "blocked"):
        table.add_column(column)
    for layer_diff in diffs:
        table.add_row(layer_diff.layer, *(str(layer_diff.count(action)) for action in ACTIONS),
                      str(sum(1 for change in layer_diff.changes if change.blocked)))
    out.print(table)
    for layer_diff in diffs:
        for change in layer_diff.changes:
            if change.action in ("delete", "replace") or change.blocked:
                detail = f" ({', '.join(change.inputs)})" if change.inputs else ""
                flag = "BLOCKED (protected) " if change.blocked else ""
                out.print(Text(f"  {flag}{change.action} {layer_diff.layer}: {change.name} [{change.type}]{detail}",
                               style="bold red" if change.blocked else ""))


def main(argv: list[str]) -> int:
    parser = UsageParser(prog="nox -s diff --", label="diff",
                         description="Fresh synth vs the accepted snapshots: what an up would add, delete, "
                                     "update or replace; exit 1 when a protected resource would be replaced.")
    parser.add_argument("envs", nargs="+", metavar="ENV")
    parser.add_argument("--baseline", type=Path, default=BASELINE_DIR, help="folder of <env>/<layer>.json")
    args = parser.parse_args(argv)
    if not args.baseline.is_dir():  # a mistyped folder would show every resource as added, exit 0
        raise UsageError(f"diff: --baseline {args.baseline}: not a folder (of <env>/<layer>.json snapshots)")
    from shared.envs import load_envs
    from shared.synth.engine import synth_env

    load_envs(list(dict.fromkeys(args.envs)))  # every env file's problems at once, as synth and policy list them
    problems = [problem for name in args.envs if (problem := baseline_problem(name, args.baseline))]
    if problems:
        raise UsageError("\n".join(problems))
    shown = console()
    blocked = 0
    for name in args.envs:
        diffs = diff_env(name, synth_env(name), args.baseline)
        render(name, diffs, shown, baseline_label(args.baseline))
        blocked += sum(1 for layer_diff in diffs for change in layer_diff.changes if change.blocked)
    if blocked:
        shown.print(f"[bold red]FAIL[/bold red]: {blocked} protected resource(s) would be replaced or deleted; "
                    "keep their URNs (aliases) and replace-on-change inputs, or unprotect them deliberately. It is "
                    "judged from the baseline's protect and deletion-protection inputs, so it stays until a change "
                    "that lifts the protection (protect_stateful off) has been deployed and the snapshots accepted; "
                    "`up` itself asks the state and ELB")
        return 1
    shown.print("[bold green]OK[/bold green]: no protected resource would be replaced or deleted")
    return 0


if __name__ == "__main__":
    gc.disable()
    exit_now(run_main(main))
