"""Where a release reaching staging or prod comes from: the check a pull request runs on the env files it changes.

``nox -s promote`` vouches for a release with its gates (FROM's ECS runs it, TO's registry holds it, TO's policies
pass), but what deploys is the env file merged to main, and a pull request may set ``release.images`` by hand, or a
push to a promotion branch may change it after the gates ran. Digests are opaque to a reviewer. So each digest a
change sets in the file of an env after the first of :data:`shared.promote.PROMOTION_ORDER` must have been the
release of that service in that env or the one just before it in the order, in a commit of the base branch's own
line (``git log --first-parent``: each merge's result, not the commits of a merged branch, which may hold a digest
the check refused): promoted from upstream (``promote`` refuses to skip into prod), or a rollback to the env's own
earlier release. A digest that never was is refused (exit 1), naming the promotion that would set it; so is one the
env before rolled back from on that line (and did not release again), unless the env itself released it before. It
reads git alone: no AWS, no network.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from shared import REPO_ROOT
from shared.errors import UsageError
from shared.images import is_digest
from shared.yamlio import safe_load

#: commits of an env file's history read, newest first: years of promotions
HISTORY_LIMIT = 2000


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=False)


def _images(text: str | None) -> dict[str, str]:
    """``release.images`` of an env file's text (empty where it has none, or is no mapping)."""
    if text is None:
        return {}
    try:
        data = safe_load(text)
    except Exception:  # noqa: BLE001 - an old commit's malformed file vouches for nothing
        return {}
    release = data.get("release") if isinstance(data, Mapping) else None
    images = release.get("images") if isinstance(release, Mapping) else None
    return {str(k): str(v) for k, v in images.items()} if isinstance(images, Mapping) else {}


def _file_at(repo: Path, revision: str, path: str) -> str | None:
    shown = _git(repo, "show", f"{revision}:{path}")
    return shown.stdout if shown.returncode == 0 else None


def _history(repo: Path, base: str, path: str) -> list[dict[str, str]]:
    """``release.images`` of the file at ``path`` in each commit of ``base``'s first-parent line that touched it,
    oldest first."""
    log = _git(repo, "log", "--first-parent", f"--max-count={HISTORY_LIMIT}", "--format=%H", base, "--", path)
    return [_images(_file_at(repo, commit, path)) for commit in reversed(log.stdout.split())]


def withdrawn(history: Iterable[Mapping[str, str]]) -> dict[tuple[str, str], str]:
    """The (service, reference) pairs an env rolled back from and has not released again since, each with the release
    it went back to: a change of a service's release to one the env had released before this one first appeared
    (``nox -s promote -- ENV@REV ENV`` writes such a change). Moving on to a newer release withdraws nothing."""
    first_seen: dict[tuple[str, str], int] = {}
    current: dict[str, str] = {}
    rolled_back: dict[tuple[str, str], str] = {}
    for index, images in enumerate(history):
        for service, reference in images.items():
            first_seen.setdefault((service, reference), index)
            previous = current.get(service)
            if previous is not None and previous != reference and \
                    first_seen[(service, reference)] < first_seen[(service, previous)]:
                rolled_back[(service, previous)] = reference
            rolled_back.pop((service, reference), None)  # released (again): vouched for as it runs now
            current[service] = reference
    return rolled_back


def unvetted(base: str, order: Iterable[str], env_dir: Path, repo: Path = REPO_ROOT) -> list[str]:
    """Why each digest that the env files of ``env_dir`` (as they are now) set, differently from ``base``, in an
    env after the first of ``order`` was never a release of its service in that env or the one before it on
    ``base``'s first-parent line: one message per (env, service); empty when every one was."""
    if _git(repo, "cat-file", "-e", f"{base}^{{commit}}").returncode != 0:
        raise UsageError(f"--base: {base!r} is no commit of this clone (fetch the base branch's history: "
                         "actions/checkout with fetch-depth 0)")
    envs = list(order)
    try:
        relative = env_dir.resolve().relative_to(repo.resolve())
    except ValueError:
        raise UsageError(f"the env files' folder {env_dir} is outside the repository {repo}, whose history the check "
                         "reads (unset PLATFORM_ENV_DIR)") from None
    problems = []
    for index, env in enumerate(envs[1:], start=1):
        path = env_dir / f"{env}.yaml"
        if not path.is_file():
            continue
        git_path = (relative / f"{env}.yaml").as_posix()
        before = _images(_file_at(repo, base, git_path))
        changed = {service: ref for service, ref in _images(path.read_text(encoding="utf-8")).items()
                   if before.get(service) != ref}
        if not changed:
            continue
        upstream = envs[index - 1]
        own = {pair for images in _history(repo, base, (relative / f"{env}.yaml").as_posix())
               for pair in images.items()}
        upstream_history = _history(repo, base, (relative / f"{upstream}.yaml").as_posix())
        # a release the env before rolled back from is no longer vouched for by it (its deployed gate ran once, when
        # the promotion's pull request was opened): only the env's own earlier release may bring it back
        pulled = {pair: back for pair, back in withdrawn(upstream_history).items() if pair not in own}
        known = own | {pair for images in upstream_history for pair in images.items() if pair not in pulled}
        for service, reference in sorted(changed.items()):
            if (service, reference) in pulled:
                problems.append(
                    f"{path.name}: release.images.{service}: {reference} was {service}'s release in {upstream}, which "
                    f"has since rolled back from it to {pulled[(service, reference)]} (on {base[:12]} or before), so "
                    f"it no longer vouches for it: promote what {upstream} runs with `nox -s promote -- {upstream} "
                    f"{env}`, or promote {reference} to {upstream} again first")
            elif not is_digest(reference):
                problems.append(f"{path.name}: release.images.{service}: {reference!r} is no digest (sha256:<64 "
                                f"hex>): a tag can name other bytes tomorrow; promote with `nox -s promote -- "
                                f"{upstream} {env}`, which pins the digest {upstream} runs")
            elif (service, reference) not in known:
                problems.append(
                    f"{path.name}: release.images.{service}: {reference} was never {service}'s release in "
                    f"{upstream} or {env} on {base[:12]} or before, so no gate vouched for it: set it with "
                    f"`nox -s promote -- {upstream} {env}` (its gates: {upstream}'s ECS runs it, {env}'s registry "
                    f"holds it), or roll back with `nox -s promote -- {env}@<revision> {env}`")
    return problems


def report(problems: Iterable[str], out: Any) -> int:
    """Print ``problems`` (exit 1) or that every changed digest came from a release before it (exit 0)."""
    listed = list(problems)
    for problem in listed:
        print(problem, file=out)
    if not listed:
        print("release provenance: every digest the change sets was a release of its env or one before it", file=out)
    return 1 if listed else 0
