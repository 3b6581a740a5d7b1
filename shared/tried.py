"""The "tried" gate of a promoted env's deploy: ``python -m shared.workflows tried ENV --commit SHA``.

A promoted env (staging, prod) deploys main's code at the commit that changed its env file, but that code
reaches it untried unless the env it is promoted from (:data:`shared.promote.PROMOTION_ORDER`: dev for
staging, staging for prod) has deployed it. Before ``up``, ``deploy-promoted.yml`` asks GitHub for the runs of
the upstream env's deploy workflow and passes only when one of them deployed, successfully and completely (every
deploy job of that env succeeded), a commit whose platform code (:data:`shared.workflows.PLATFORM_CODE`) is the
same as this commit's: same git tree and blob hashes for each of those paths, so a commit that differs only in
env files, docs or tests counts as tried. Anything else refuses with exit 2, naming the commit, the upstream env
and what to do. ``--untried-reason TEXT`` (the workflow_dispatch input ``deploy_untried_reason``) deploys anyway
and logs a warning annotation with the reason, who started the run and what the gate would have said.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TextIO

from shared.errors import PlatformError, UsageError

#: Paths outside :data:`shared.workflows.PLATFORM_CODE`, each with why a deploy does not run it; a test fails on a
#: tracked path in neither list, so a new top-level folder is classified before the gate can miss it.
NOT_PLATFORM_CODE: dict[str, str] = {
    "environments/": "env files: each env's own, moved between envs by promotion (its image gates)",
    "tests/": "tests: run by pull-request.yml, never by a deploy",
    ".github/workflows/": "the workflows: each env's deploy jobs differ by design (generated per env)",
    "README.md": "docs",
    ".gitignore": "git only",
}

RUN_PAGES = 5
"""How many pages of 100 runs of the upstream workflow are read, newest first (500 deploys back)."""


class Untried(PlatformError):
    """The commit's platform code has not been deployed successfully to the upstream env (exit 2)."""

    exit_code = 2


class RunsApi(Protocol):
    """What the gate reads from the GitHub Actions REST API (injected in tests)."""

    def runs(self, workflow: str, page: int) -> list[dict[str, Any]]:
        """``GET /repos/{repo}/actions/workflows/{workflow}/runs`` page ``page`` (100 per page, newest first)."""
        ...

    def jobs(self, run_id: int) -> list[dict[str, Any]]:
        """``GET /repos/{repo}/actions/runs/{run_id}/jobs`` (the latest attempt's jobs)."""
        ...


class ApiUnreachable(Exception):
    """The GitHub API could not be asked or answered nonsense."""


@dataclass(frozen=True)
class GitHubApi:
    """The REST API with the job's ``GITHUB_TOKEN`` (``actions: read``)."""

    repository: str
    token: str
    base_url: str = "https://api.github.com"
    timeout_s: float = 30.0

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> GitHubApi:
        missing = [name for name in ("GITHUB_REPOSITORY", "GITHUB_TOKEN") if not environ.get(name)]
        if missing:
            raise ApiUnreachable(f"{' and '.join(missing)} not set (the step's env must pass github.token)")
        return cls(environ["GITHUB_REPOSITORY"], environ["GITHUB_TOKEN"],
                   environ.get("GITHUB_API_URL") or "https://api.github.com")

    def _get(self, path: str, query: Mapping[str, str]) -> dict[str, Any]:
        url = f"{self.base_url.rstrip('/')}/repos/{self.repository}/{path}?{urllib.parse.urlencode(query)}"
        request = urllib.request.Request(url, headers={
            "Authorization": f"Bearer {self.token}", "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                data = json.load(response)
        # http.client.HTTPException: an answer cut short (IncompleteRead) or garbled (BadStatusLine), no OSError
        except (urllib.error.URLError, http.client.HTTPException, TimeoutError, OSError, ValueError) as error:
            raise ApiUnreachable(f"GET {url}: {error}") from error
        if not isinstance(data, dict):
            raise ApiUnreachable(f"GET {url}: not a JSON object")
        return data

    # REST "List workflow runs for a workflow" (workflow_id may be the file name) and "List jobs for a workflow
    # run" (filter=latest by default: the last attempt's jobs); both need actions: read (docs.github.com/rest/actions).
    def runs(self, workflow: str, page: int) -> list[dict[str, Any]]:
        data = self._get(f"actions/workflows/{urllib.parse.quote(workflow)}/runs",
                         {"per_page": "100", "page": str(page)})
        return list(data.get("workflow_runs") or [])

    def jobs(self, run_id: int) -> list[dict[str, Any]]:
        return list(self._get(f"actions/runs/{int(run_id)}/jobs", {"per_page": "100"}).get("jobs") or [])


def code_paths() -> tuple[str, ...]:
    from shared.workflows import PLATFORM_CODE

    return tuple(path.rstrip("/") for path in PLATFORM_CODE)


def code_fingerprint(repo: Path, commit: str) -> str | None:
    """sha256 of ``git ls-tree COMMIT -- <platform code paths>`` (each path's tree or blob hash); None when the
    commit is not in ``repo`` (a shallow clone, a rewritten history) or not a full commit hash."""
    if not re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", commit):
        return None
    result = subprocess.run(["git", "ls-tree", "--full-tree", f"{commit}^{{commit}}", "--", *code_paths()],
                            cwd=repo, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        return None
    return hashlib.sha256(result.stdout.encode()).hexdigest()


def upstream_of(env: str) -> str:
    from shared.promote import PROMOTION_ORDER

    if env not in PROMOTION_ORDER[1:]:
        raise UsageError(f"tried: {env!r} is not a promoted env ({', '.join(PROMOTION_ORDER[1:])}; "
                         "shared/promote.py PROMOTION_ORDER)")
    return PROMOTION_ORDER[PROMOTION_ORDER.index(env) - 1]


def workflow_of(env: str) -> str:
    """The workflow that deploys ``env``: deploy-dev.yml for the first env of the promotion order (every merge to
    main), deploy-promoted.yml for the others."""
    from shared.promote import PROMOTION_ORDER
    from shared.workflows import DEPLOY_DEV, DEPLOY_PROMOTED

    return DEPLOY_DEV if env == PROMOTION_ORDER[0] else DEPLOY_PROMOTED


def _succeeded(jobs: Sequence[Mapping[str, Any]], expected: Sequence[str]) -> bool:
    by_name = {job.get("name"): job for job in jobs}
    return all(name in by_name and by_name[name].get("status") == "completed"
               and by_name[name].get("conclusion") == "success" for name in expected)


def _short(sha: str) -> str:
    return sha[:12]


def find_tried_run(env: str, commit: str, api: RunsApi, repo: Path) -> tuple[dict[str, Any] | None, str]:
    """(the upstream run that deployed this commit's code, '') or (None, why none did)."""
    from shared.workflows import deploy_job_names

    upstream = upstream_of(env)
    workflow = workflow_of(upstream)
    expected = deploy_job_names(upstream)
    wanted = code_fingerprint(repo, commit)
    if wanted is None:
        raise UsageError(f"tried: --commit {commit!r} is not a commit of {repo} (check out with fetch-depth: 0)")
    fingerprints: dict[str, str | None] = {}
    seen: list[str] = []
    try:
        for page in range(1, RUN_PAGES + 1):
            runs = api.runs(workflow, page)
            for run in runs:
                sha = str(run.get("head_sha") or "")
                if sha not in fingerprints:
                    fingerprints[sha] = code_fingerprint(repo, sha) if sha else None
                if fingerprints[sha] != wanted:
                    continue
                if _succeeded(api.jobs(int(run["id"])), expected):
                    return run, ""
                state = run.get("conclusion") or run.get("status") or "unknown"
                seen.append(f"run {run.get('html_url') or run.get('id')} (commit {_short(sha)}): {state}")
            if len(runs) < 100:
                break
    except (ApiUnreachable, KeyError, TypeError, ValueError) as error:
        raise Untried(
            f"commit {_short(commit)}: cannot tell whether {upstream} has deployed its platform code, the GitHub "
            f"API did not answer ({error}). Re-run this job when GitHub answers; in an emergency, run "
            f"{workflow_hint(env)}") from error
    if seen:
        return None, (f"{upstream}'s deploys of this code did not all succeed ({', '.join(expected)}): "
                      + "; ".join(seen[:3]))
    return None, f"no run of {workflow} (the last {RUN_PAGES * 100}) deployed this code to {upstream}"


def workflow_hint(env: str) -> str:
    return (f"deploy-promoted.yml by hand for {env} with the input deploy_untried_reason (it deploys the code "
            "untried and logs who did it and why)")


def check(env: str, commit: str, api: RunsApi, repo: Path, untried_reason: str, actor: str, out: TextIO) -> int:
    """0 when the upstream env deployed this commit's platform code (or the override is given, logged); Untried
    (exit 2) otherwise."""
    from shared.promote import PROMOTION_ORDER

    upstream = upstream_of(env)
    upstream_workflow = workflow_of(upstream)
    try:
        run, why = find_tried_run(env, commit, api, repo)
        if run is None:
            if upstream == PROMOTION_ORDER[0]:  # deploy-dev.yml runs on every merge to main
                how = (f"Wait for {upstream}'s deploy ({upstream_workflow}) of this commit, or re-run it if it failed "
                       f"(a fix is a new commit on main, which {upstream} deploys first)")
            else:
                # a promoted env deploys when its env file changes or by hand, never because code merged: code merged
                # after its last promotion reaches it only by a run started by hand (README, Promotion)
                how = (f"Deploy this code to {upstream} first: run {upstream_workflow} by hand for {upstream} on main "
                       f"(its own gate asks that {upstream_of(upstream)} ran it), or "
                       f"re-run {upstream}'s deploy if it failed")
            raise Untried(
                f"commit {_short(commit)}: its platform code ({', '.join(code_paths())}) has not been deployed "
                f"successfully to {upstream}, the env {env} is promoted from: {why}. {how}, then re-run this job; "
                f"in an emergency, run {workflow_hint(env)}")
    except Untried as refusal:
        reason = untried_reason.strip()
        if not reason:
            raise
        message = (f"{env} deploys commit {_short(commit)} UNTRIED in {upstream}, override by {actor or 'unknown'}: "
                   f"{reason!r}. The gate said: {refusal}")
        out.write(f"::warning title=untried code deployed to {env}::{message.replace(chr(10), ' ')}\n")
        return 0
    out.write(f"{upstream} deployed this code: run {run.get('html_url') or run.get('id')} "
              f"(commit {_short(str(run.get('head_sha')))}); {env} may deploy commit {_short(commit)}\n")
    if untried_reason.strip():
        out.write("deploy_untried_reason given but not needed: the code was tried\n")
    return 0


def main(env: str, commit: str, untried_reason: str, environ: Mapping[str, str], out: TextIO,
         repo: Path | None = None, api: RunsApi | None = None) -> int:
    from shared import REPO_ROOT

    if api is None:
        try:
            api = GitHubApi.from_environ(environ)
        except ApiUnreachable as error:
            api = _Broken(str(error))
    return check(env, commit, api, repo or REPO_ROOT, untried_reason, actor_of(environ), out)


def actor_of(environ: Mapping[str, str]) -> str:
    """Who started this attempt of the run. A re-run keeps the dispatch's inputs (the override too) and its
    GITHUB_ACTOR, the user of the first attempt; GITHUB_TRIGGERING_ACTOR is who re-ran it (GitHub changelog
    2022-07-19, "Differentiating triggering actor from executing actor"; absent before GHES 3.7)."""
    started, triggered = environ.get("GITHUB_ACTOR", ""), environ.get("GITHUB_TRIGGERING_ACTOR", "")
    if triggered and started and triggered != started:
        return f"{triggered} (re-running a run {started} started)"
    return triggered or started


@dataclass(frozen=True)
class _Broken:
    reason: str

    def runs(self, workflow: str, page: int) -> list[dict[str, Any]]:
        raise ApiUnreachable(self.reason)

    def jobs(self, run_id: int) -> list[dict[str, Any]]:
        raise ApiUnreachable(self.reason)

