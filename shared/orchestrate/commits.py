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

What this checkout knows of main can be behind: a laptop that has not fetched since CI deployed a newer commit lacks
that commit, and a shallow clone (the deploy runner's, a CI checkout without ``fetch-depth: 0``) lacks history, where
``merge-base --is-ancestor`` can answer "no" for an ancestor cut off by the clone. So when a deployed commit is
unknown here, or off main as far as this checkout knows, or the clone is shallow, main is fetched from ``origin`` (or
the remote ``PLATFORM_MAIN_REMOTE`` names: a fork's clone names the canonical repository's) into
``refs/remotes/<remote>/main`` first (and the clone made complete) and every stack judged again. A commit still
unknown after that is not on that remote's main (an unpushed commit deployed from a laptop, or one amended since): let
through with a note, as a commit off main. A fetch that fails (no such remote, no network, no credentials: git never
prompts here) leaves what it could not judge to a note naming git's error, and so does a git that cannot read this
checkout at all (one owned by another user, no ``git``). Going back is done forward: a ``git revert`` on main, or a
rollback through ``nox -s promote`` (README, Promotion), each a new commit that contains the one deployed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.errors import ConfigError, PlatformError
from shared.orchestrate.report import mask_url_credentials

#: the metadata key of an update's commit (pulumi/pulumi pkg/backend/updates.go: GitHead)
GIT_HEAD = "git.head"
#: how many updates back ``stack history`` is read for the newest ``update`` (refreshes and destroys come between)
HISTORY_PAGE = 20
#: seconds a git command reading this checkout may take
GIT_TIMEOUT = 60
#: seconds the fetch of main may take: a shallow clone's ``--unshallow`` downloads the whole history
FETCH_TIMEOUT = 300
#: the git remote of the repository CI deploys from, when not ``origin``: a fork's clone, whose ``origin`` is the fork
#: (its main stale, so a commit CI deployed would look unpushed and be let through), names the canonical one here
MAIN_REMOTE_VAR = "PLATFORM_MAIN_REMOTE"
DEFAULT_REMOTE = "origin"
#: a remote's name as git takes it; never one that reads as an option
REMOTE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._/-]*")
#: what the notes of stacks not judged start with
NOT_CHECKED = "not checked whether this checkout contains the commit each stack was last updated from"
#: a commit id as git prints it: anything else from a stack's history is never passed to git (an option's shape)
COMMIT_ID = re.compile(r"[0-9a-f]{7,64}")
#: no prompt for a username, password or passphrase (git(1) GIT_TERMINAL_PROMPT; Git Credential Manager:
#: GCM_INTERACTIVE); ssh finds no terminal either, as each git runs in a session of its own
NON_INTERACTIVE = {"GIT_TERMINAL_PROMPT": "0", "GCM_INTERACTIVE": "never"}


class OlderCommit(PlatformError):
    """This checkout does not contain the commit a stack was last updated from (exit 2, nothing run)."""

    exit_code = 2


class GitUnavailable(Exception):
    """git could not answer about this checkout (no ``git``, a checkout git refuses to read, a timeout): why."""


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


def why_no_commit(history: Any) -> str | None:
    """Why ``history`` (``stack history --json``, newest first, at most :data:`HISTORY_PAGE` entries), in which no
    update records a commit, leaves its stack unjudged; None when there is nothing to judge: a history shorter than a
    page without any update is a stack never updated (an ``up`` that created it records one)."""
    if not isinstance(history, list):
        return "its history is not a list of updates"
    updates = sum(1 for entry in history if isinstance(entry, Mapping) and entry.get("kind") == "update")
    if updates:
        which = "its update records no commit" if updates == 1 else f"none of its {updates} newest updates records one"
        return f"{which} ({GIT_HEAD}: run from outside a git checkout)"
    if len(history) >= HISTORY_PAGE:
        return (f"none of its newest {len(history)} history entries is an update (refreshes, destroys...), and the "
                "older ones are not read")
    return None


def parse_history(text: str) -> DeployedCommit | str | None:
    """:func:`last_update_commit` of the CLI's printed JSON; else why its stack cannot be judged
    (:func:`why_no_commit`, or text that is not JSON), or None when there is nothing to judge."""
    try:
        history = json.loads(text or "[]")
    except ValueError:
        return "its history is not JSON"
    return last_update_commit(history) or why_no_commit(history)


def _first_error(output: str) -> str:
    """git's first line of ``output`` (its ``fatal:``/``error:`` line), a URL's credentials masked (an ``origin`` with
    a token in it)."""
    line = next((line.strip() for line in output.splitlines() if line.strip()), "")
    return mask_url_credentials(line) or "no message"


class Checkout:
    """The git checkout the layers' programs run from."""

    def __init__(self, root: Path, remote: str | None = None) -> None:
        self.root = root
        #: the remote main is fetched from and read at (:data:`MAIN_REMOTE_VAR`, else ``origin``)
        self.remote = remote or os.environ.get(MAIN_REMOTE_VAR) or DEFAULT_REMOTE
        if not REMOTE_NAME.fullmatch(self.remote):
            raise ConfigError("environment variables", MAIN_REMOTE_VAR,
                              f"{self.remote!r} is not a git remote's name (e.g. upstream)")
        #: main as :attr:`remote` has it, once fetched
        self.main_ref = f"refs/remotes/{self.remote}/main"

    def _git(self, *args: str, timeout: float = GIT_TIMEOUT) -> subprocess.CompletedProcess[str]:
        """``git -C root args``, bounded by ``timeout`` and never waiting for input; GitUnavailable when it cannot be
        run or does not finish."""
        try:
            process = subprocess.Popen(["git", "-C", str(self.root), *args], stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
                                       env={**os.environ, **NON_INTERACTIVE},
                                       start_new_session=True)  # no controlling terminal: ssh cannot ask either
        except OSError as error:  # no git on PATH
            raise GitUnavailable(f"git could not be run: {error}") from error
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as error:
            # the whole session: a fetch's ssh or git-remote-https too, which would live on after git
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):  # a helper outside the session holding the pipes
                process.communicate(timeout=5)
            raise GitUnavailable(f"`git {args[0]}` did not finish within {timeout:g} s") from error
        return subprocess.CompletedProcess(process.args, process.returncode, out, err)

    def _answer(self, found: subprocess.CompletedProcess[str]) -> bool:
        """A yes/no git command's answer (exit 0: yes, 1: no); GitUnavailable with git's error for anything else."""
        if found.returncode > 1:
            raise GitUnavailable(_first_error(found.stderr))
        return found.returncode == 0

    def head(self) -> str | None:
        """The commit checked out; None outside a git checkout. GitUnavailable for any other failure: a checkout owned
        by another user (git's "dubious ownership", common in containers), no ``git``, no commit yet."""
        found = self._git("rev-parse", "--verify", "HEAD")
        if found.returncode == 0:
            return found.stdout.strip()
        error = _first_error(found.stderr)
        if "not a git repository" in error:
            return None
        if "dubious ownership" in error:
            # git's message: "detected dubious ownership in repository at '<path>'" (git setup.c)
            named = re.search(r"repository at '(.+)'", error)
            path = named.group(1) if named else str(self.root)
            raise GitUnavailable(f"{error}: if this checkout is yours, `git config --global --add safe.directory "
                                 f"{path}` and run again")
        raise GitUnavailable(error)

    def is_shallow(self) -> bool:
        """Whether this checkout is a shallow clone (git 2.15+), whose history is cut off at its shallow commits."""
        found = self._git("rev-parse", "--is-shallow-repository")
        if found.returncode != 0:
            raise GitUnavailable(_first_error(found.stderr))
        return found.stdout.strip() == "true"

    def contains(self, commit: str) -> bool | None:
        """Whether ``HEAD`` is ``commit`` or descends from it; None when this checkout does not have ``commit``."""
        if not COMMIT_ID.fullmatch(commit):
            return None
        # exit 1, quietly, for a commit this checkout lacks (--quiet: git rev-parse)
        if not self._answer(self._git("rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}")):
            return None
        return self._is_ancestor(commit, "HEAD")

    def main_is_fresh(self) -> bool:
        """Whether :attr:`main_ref` is as new as this checkout, given a complete clone: a GitHub Actions job's
        (``actions/checkout`` with ``fetch-depth: 0`` fetches every branch as the job starts), where a fetch for a
        commit off main would learn nothing, and fails in a private repository (``persist-credentials: false``)."""
        return (os.environ.get("GITHUB_ACTIONS") == "true"
                and self._answer(self._git("rev-parse", "--verify", "--quiet", self.main_ref)))

    def remotes(self) -> list[str]:
        """This checkout's remotes (``git remote``); none when git cannot list them."""
        found = self._git("remote")
        return found.stdout.split() if found.returncode == 0 else []

    def _is_ancestor(self, commit: str, of: str) -> bool:
        # exit 0: an ancestor (or the same commit), 1: not one, 128: an error
        return self._answer(self._git("merge-base", "--is-ancestor", commit, of))

    def on_main(self, commit: str) -> bool | None:
        """Whether ``commit`` is in main's history (``<remote>/main``, else the local ``main``); None without either.
        Only such a commit is one an ``up`` must not take back: a feature branch deployed to dev by hand, squash-merged
        later, or a commit amended since, is never in main's history, and refusing for it would stop every deploy."""
        for ref in (self.main_ref, "refs/heads/main"):
            if self._answer(self._git("rev-parse", "--verify", "--quiet", ref)):
                return self._is_ancestor(commit, ref)
        return None

    def fetch_main(self, *, unshallow: bool) -> str | None:
        """Brings :attr:`remote`'s main into :attr:`main_ref` (with ``unshallow``, the whole history too); None when
        done, else git's error (no such remote, no network, no credentials: nothing prompts)."""
        # a line first: the fetch may take minutes (a whole history), or wait on an SSH key's touch or an agent's
        # confirmation, which git's captured output would not show
        sys.stderr.write(f"fetching main from {self.remote} to judge the commits the stacks were last updated from "
                         f"(at most {FETCH_TIMEOUT} s)\n")
        sys.stderr.flush()
        try:
            found = self._git("fetch", "--quiet", "--no-tags", *(["--unshallow"] if unshallow else []), self.remote,
                              f"+refs/heads/main:{self.main_ref}", timeout=FETCH_TIMEOUT)
        except GitUnavailable as error:
            return str(error)
        return None if found.returncode == 0 else _first_error(found.stderr)


#: a stack's commit, judged against this checkout (NO_MAIN: not contained, and no main here to tell whether it is in
#: main's history: refused as OLDER unless a fetch brings main)
CONTAINED, OLDER, NO_MAIN, OFF_MAIN, UNKNOWN = "contained", "older", "no main", "off main", "unknown"


def _judge(checkout: Checkout, commit: str) -> str:
    contained = checkout.contains(commit)
    if contained is None:
        return UNKNOWN
    if contained:
        return CONTAINED
    return {True: OLDER, False: OFF_MAIN, None: NO_MAIN}[checkout.on_main(commit)]


def check_commits(env_name: str, label: str, deployed: Mapping[str, DeployedCommit], checkout: Checkout) -> list[str]:
    """OlderCommit when ``HEAD`` lacks the commit a stack of ``deployed`` ({stack name: its newest update}) was last
    updated from and that commit is in main's history (fetched from ``origin`` first where this checkout may not know
    it); notes for the stacks whose commit cannot be judged, and for a checkout git cannot read."""
    if not deployed:
        return []
    try:
        return _check_commits(env_name, label, deployed, checkout)
    except GitUnavailable as error:
        return [f"{NOT_CHECKED} ({', '.join(sorted(deployed))}), git in {checkout.root}: {error}"]


def _check_commits(env_name: str, label: str, deployed: Mapping[str, DeployedCommit], checkout: Checkout) -> list[str]:
    head = checkout.head()
    if head is None:
        return [f"{NOT_CHECKED} ({', '.join(sorted(deployed))}): {checkout.root} is not a git checkout"]
    shallow = checkout.is_shallow()
    commits = {found.commit for found in deployed.values()}
    verdicts = {commit: _judge(checkout, commit) for commit in commits}
    fetch_error: str | None = None
    fetched = False
    # an unknown commit may be on origin's main since, one off main as this checkout knows it (or with no main here)
    # may have been merged since, and a shallow clone's "not an ancestor" may be its cut-off history's: ask origin
    # (a CI job's main is as of its start: a commit off it is off main)
    fresh_main = not shallow and OFF_MAIN in verdicts.values() and checkout.main_is_fresh()
    if shallow or {UNKNOWN, NO_MAIN} & set(verdicts.values()) or (OFF_MAIN in verdicts.values() and not fresh_main):
        fetch_error = checkout.fetch_main(unshallow=shallow)
        if fetch_error is None:
            fetched = True
            shallow = checkout.is_shallow()
            verdicts = {commit: _judge(checkout, commit) for commit in commits}
    older: dict[str, DeployedCommit] = {}
    unjudged: dict[str, tuple[DeployedCommit, str]] = {}  # {stack: (its update, why)}, with fetch_error
    unpushed: dict[str, DeployedCommit] = {}
    for stack, found in sorted(deployed.items()):
        verdict = verdicts[found.commit]
        if verdict == CONTAINED:
            continue
        if shallow:  # still (the fetch failed): a "not an ancestor" may be the cut-off history's
            unjudged[stack] = (found, "not in this shallow clone's history as far as it reaches")
        elif verdict in (OLDER, NO_MAIN):
            older[stack] = found
        elif verdict == UNKNOWN and fetched:
            unpushed[stack] = found
        elif verdict == UNKNOWN:
            unjudged[stack] = (found, "not in this checkout")
        elif not fetched and not fresh_main:  # off main as far as this checkout knows
            unjudged[stack] = (found, f"not in this checkout's main, which may be behind {checkout.remote}'s")
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
    notes = []
    if unjudged:
        listed = "; ".join(f"{stack} ({found.commit[:12]}) {why}" for stack, (found, why) in unjudged.items())
        # fetched and still shallow: a fetch that did not complete the history (git should not leave one so)
        remote = checkout.remote
        because = (f"main could not be fetched from {remote} to judge them ({fetch_error})" if fetch_error
                   else f"still a shallow clone after fetching main from {remote}")
        notes.append(f"{NOT_CHECKED}: {listed}; {because}: `git fetch {remote} main` (`--unshallow` in a shallow "
                     "clone) to have older code refused")
    if unpushed:
        listed = ", ".join(f"{stack} ({found.commit[:12]})" for stack, found in unpushed.items())
        others = [name for name in checkout.remotes() if name != checkout.remote]
        fork = (f"; if {checkout.remote} is your fork, name the remote of the repository CI deploys from in "
                f"{MAIN_REMOTE_VAR} (this checkout also has {', '.join(others)}), or its main may be behind"
                if others else "")
        notes.append(f"let through, as commits off main: {listed} last updated from a commit neither in this "
                     f"checkout nor on {checkout.remote}'s main, fetched just now (an unpushed commit deployed from "
                     f"elsewhere, or one amended since{fork})")
    return notes
