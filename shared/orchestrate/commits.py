"""An ``up`` never deploys code older than what a stack was last updated from.

Why: the Pulumi CLI records the git commit of every update it runs (``git.head`` in the update's metadata,
pulumi/pulumi ``pkg/backend/updates.go``; ``pulumi stack history --json`` lists it per update), but deploys whatever
tree it is run from. Two ways an ``up`` then quietly undoes newer changes:

* GitHub's "Re-run failed jobs" runs the *original* commit ("Re-running a workflow or jobs in a workflow uses the
  same GITHUB_SHA", docs.github.com, "Re-running workflows and jobs"): an older failed run re-run after a newer one
  succeeded deploys the older code over it;
* a laptop's checkout that lacks what CI (or a colleague) deployed since.

So before an ``up`` each existing stack's newest update is read, and the run is refused (exit 2, before any layer)
when this checkout's ``HEAD`` does not contain that update's commit and that commit is in main's history (a commit off
main, a feature branch deployed to dev by hand or a commit amended since, is let through: main never contains it).
A commit this checkout does not know (an
unpushed commit someone deployed from a laptop, a shallow clone) cannot be judged: a note says so and the run goes
on. Going back is done forward: a ``git revert`` on main, or a rollback through ``nox -s promote`` (README,
Promotion), each a new commit that contains the one deployed.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.errors import PlatformError

#: the metadata key of an update's commit (pulumi/pulumi pkg/backend/updates.go: GitHead)
GIT_HEAD = "git.head"
#: how many updates back ``stack history`` is read for the newest ``update`` (refreshes and destroys come between)
HISTORY_PAGE = 20


class OlderCommit(PlatformError):
    """This checkout does not contain the commit a stack was last updated from (exit 2, nothing run)."""

    exit_code = 2


@dataclass(frozen=True)
class DeployedCommit:
    commit: str
    when: str
    """The update's start time, as the backend reports it."""
    result: str
    """``succeeded``, ``failed``...: a failed update may have applied part of its commit, so it counts too."""


def last_update_commit(history: Any) -> DeployedCommit | None:
    """The commit of the newest ``update`` in ``stack history --json`` output (newest first), None when no update
    records one (a stack never updated, or updated from outside a git checkout)."""
    if not isinstance(history, list):
        return None
    for entry in history:
        if not isinstance(entry, Mapping) or entry.get("kind") != "update":
            continue
        environment = entry.get("environment")
        commit = environment.get(GIT_HEAD) if isinstance(environment, Mapping) else None
        if isinstance(commit, str) and commit:
            return DeployedCommit(commit=commit, when=str(entry.get("startTime") or "?"),
                                  result=str(entry.get("result") or "?"))
    return None


def parse_history(text: str) -> DeployedCommit | None:
    """:func:`last_update_commit` of the CLI's printed JSON; None for text that is not JSON."""
    try:
        return last_update_commit(json.loads(text or "[]"))
    except ValueError:
        return None


class Checkout:
    """The git checkout the layers' programs run from."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _git(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", "-C", str(self.root), *args], capture_output=True, text=True, check=False)

    def head(self) -> str | None:
        """The commit checked out; None outside a git checkout."""
        found = self._git("rev-parse", "--verify", "HEAD")
        return found.stdout.strip() if found.returncode == 0 else None

    def contains(self, commit: str) -> bool | None:
        """Whether ``HEAD`` is ``commit`` or descends from it; None when this checkout does not have ``commit``."""
        if self._git("cat-file", "-e", f"{commit}^{{commit}}").returncode != 0:
            return None
        return self._is_ancestor(commit, "HEAD")

    def _is_ancestor(self, commit: str, of: str) -> bool:
        # exit 0: an ancestor (or the same commit), 1: not one
        return self._git("merge-base", "--is-ancestor", commit, of).returncode == 0

    def on_main(self, commit: str) -> bool | None:
        """Whether ``commit`` is in main's history (``origin/main``, else the local ``main``); None without either.
        Only such a commit is one an ``up`` must not take back: a feature branch deployed to dev by hand, squash-merged
        later, or a commit amended since, is never in main's history, and refusing for it would stop every deploy."""
        for ref in ("refs/remotes/origin/main", "refs/heads/main"):
            if self._git("rev-parse", "--verify", "--quiet", ref).returncode == 0:
                return self._is_ancestor(commit, ref)
        return None


def check_commits(env_name: str, label: str, deployed: Mapping[str, DeployedCommit], checkout: Checkout) -> list[str]:
    """OlderCommit when ``HEAD`` lacks the commit a stack of ``deployed`` ({stack name: its newest update}) was last
    updated from; notes for the stacks whose commit this checkout cannot judge."""
    head = checkout.head()
    if head is None or not deployed:
        return []
    older: dict[str, DeployedCommit] = {}
    unknown: dict[str, DeployedCommit] = {}
    for stack, found in sorted(deployed.items()):
        contained = checkout.contains(found.commit)
        if contained is None:
            unknown[stack] = found
        elif not contained and checkout.on_main(found.commit) is not False:
            older[stack] = found
    if older:
        lines = "\n".join(f"  - {stack}: last updated from {found.commit[:12]} ({found.result}, {found.when})"
                          for stack, found in older.items())
        raise OlderCommit(
            f"{label} of {env_name} refused before any layer ran: this checkout ({head[:12]}) does not contain the "
            f"commit these stacks were last updated from, so it would undo what that commit deployed:\n{lines}\n"
            "  A re-run of an older CI run deploys that run's commit: start a new run from main instead. From a "
            "laptop: `git pull` (or rebase onto that commit) and run again. To go back on purpose, revert on main "
            "(`git revert`) or roll back through `nox -s promote` (README, Promotion): a new commit that contains the "
            "deployed one.")
    if not unknown:
        return []
    listed = ", ".join(f"{stack} ({found.commit[:12]})" for stack, found in unknown.items())
    return [f"not checked whether this checkout contains the commit each stack was last updated from: {listed} "
            "not in this checkout (a shallow clone, or an unpushed commit deployed from elsewhere); "
            "`git fetch` it to have older code refused"]
