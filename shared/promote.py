"""Gated promotion of a release: ``python -m shared.promote FROM TO [--services a,b] [--check] [--allow-skip]``.

A release is ``release.images`` of an env file: which image each service runs. Promotion copies the
images of FROM into TO's file, and only through gates, cheapest first, the first refusal wins:

1. **order** -- FROM -> TO follows :data:`PROMOTION_ORDER`; skipping an env needs ``--allow-skip``
   and is recorded in TO's file (``release.skipped``); checked before anything else, also by
   ``--check``, so a backwards request is refused even when the images match;
2. **digest** -- every promoted image is pinned by digest (``sha256:<64 hex>``), never a tag: a tag
   can point at other bytes tomorrow, so what was tested in FROM would not be what runs in TO;
3. **deployed** -- FROM's ECS services really run those digests, as ECS reports them
   (:func:`shared.images.running_images`: the PRIMARY deployment, completed, its task definition's
   image), so nothing untested -- or rolled back -- is promoted; a promoted digest of a service resting at 0 tasks
   in FROM (``min_count`` 0, no backlog: a deployment of 0 tasks completes without starting one) is refused while
   no task of FROM runs it;
4. **images** -- every promoted digest is in TO's own registry (TO's account and region, ECR
   ``DescribeImages``), so TO's tasks can pull it (:func:`shared.images.missing_images`), an image index with the
   linux/amd64 manifest it names (``BatchGetImage``: :func:`shared.images.lost_platform_manifests`);
5. **policy** -- TO, synthesized with the candidate file, has no unsuppressed mandatory finding
   under TO's own enforcement (the offline policy engine over a scratch copy of the env folder).

``--allow-skip`` is refused (exit 2) for a target that follows the prod baseline: a release reaches
prod only through the env before it. The AWS gates run with each env's own credentials
(:mod:`shared.images`); credentials of another account than the env's ``account_id`` exit 2.

Before any gate, FROM's and TO's env files must equal git's HEAD (no staged, unstaged, untracked or ignored change;
exit 2 otherwise): the gates vouch for the committed release, and the promotion's commit holds nothing else.
A refused promotion writes nothing. A passed one rewrites the ``release:`` entry of TO's file with
ruamel.yaml's round trip (comments, key order and quoting kept; every other line as it was), records
``release.promoted_from``/``promoted_at`` and prints the unified diff. ``--check`` is a dry run through
every gate: it prints the diff it would write and writes nothing (0: every gate passed or nothing to
promote; 1: a gate refused). One promotion runs at a time per env folder (a lock), and TO's file is
compared with what the gates judged right before it is replaced: an edit made meanwhile stops the
promotion (exit 1, nothing written).

**Rollback**: FROM ``TO@REV`` (e.g. ``prod@HEAD~1 prod``) takes the release TO's own file pinned at git
revision REV, a commit in the history of HEAD, and runs it through the digest, images and policy gates
(the images gate answers whether TO's registry still holds those digests: the release tags keep every
image TO has run, ``shared.components.ecr.lifecycle_policy``). No order applies and ECS is not asked:
it runs the release being replaced. ``release.promoted_from`` records ``TO@<commit>``.
"""

from __future__ import annotations

import contextlib
import difflib
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import yaml as pyyaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from shared import REPO_ROOT
from shared.catalog import catalog_path
from shared.cli import UsageParser, write_atomically
from shared.envs import ENV_DIR_VAR, EnvConfig, active_env_dir, env_dir, env_path, is_digest, load_env
from shared.errors import ConfigError, ConfigErrors, PlatformError, UsageError, display_path
from shared.images import (
    ClientFactory,
    MissingImage,
    RunningImage,
    SessionClients,
    lost_platform_manifests,
    rollout_mismatches,
)
from shared.orchestrate.images import AwsImageChecks
from shared.yamlio import safe_load

PROMOTION_ORDER: tuple[str, ...] = ("dev", "staging", "prod")
"""The one declaration of the path a release takes."""

PolicyCheck = Callable[[str, Path], list[str]]
"""(TO env name, env folder holding the candidate TO file) -> the blocking findings, described."""

DeployedImages = Callable[[EnvConfig, Sequence[str]], list[RunningImage]]
"""(FROM env, services) -> what each of their ECS services runs in FROM."""

RegistryImages = Callable[[EnvConfig, Mapping[str, str]], list[MissingImage]]
"""(TO env, service -> digest) -> the images TO's registry cannot serve."""


class GateRefused(PlatformError):
    """A promotion gate said no (exit 1); nothing was written."""

    exit_code = 1

    def __init__(self, gate: str, reason: str) -> None:
        self.gate = gate
        self.reason = reason
        super().__init__(f"promotion refused by the {gate!r} gate: {reason}")


@dataclass(frozen=True)
class Promotion:
    source: EnvConfig
    target: EnvConfig
    images: dict[str, str]
    """service -> image reference being promoted (FROM's), in FROM's order."""
    pending: dict[str, tuple[str | None, str]]
    """service -> (TO's current reference or None, FROM's) for the services that differ."""


# -- gates ------------------------------------------------------------------------------------------


def check_digests(images: Mapping[str, str], source: str, file: str | None = None) -> None:
    tags = {service: ref for service, ref in images.items() if not is_digest(ref)}
    if tags:
        listed = ", ".join(f"{service}={ref!r}" for service, ref in tags.items())
        raise GateRefused("digest", f"{source}'s release pins {listed} by tag, not by digest (sha256:<64 hex>); "
                                    "a tag can move after testing. Release the image by digest in "
                                    f"{file or f'environments/{source}.yaml'} first.")


def check_order(source: str, target: str, allow_skip: bool, skippable: bool = True) -> tuple[str, ...]:
    """The envs skipped on the way (empty for a normal step); GateRefused when the order forbids the step,
    UsageError (exit 2) when FROM or TO is an env outside the order. ``skippable`` False: TO follows the prod baseline,
    which no skip reaches, so the refusal names the next step instead of ``--allow-skip``."""
    path = " -> ".join(PROMOTION_ORDER)
    outside = [name for name in (source, target) if name not in PROMOTION_ORDER]
    if outside:
        # Bad input, not a gate's judgement: no release could ever move along this request (exit 2).
        raise UsageError(f"{', '.join(outside)} {'is' if len(outside) == 1 else 'are'} not in the promotion order "
                         f"{path} (shared/promote.py PROMOTION_ORDER); promote between those envs only")
    start, end = PROMOTION_ORDER.index(source), PROMOTION_ORDER.index(target)
    if end <= start:
        raise GateRefused("order", f"{source} -> {target} goes backwards; releases move {path}")
    skipped = PROMOTION_ORDER[start + 1:end]
    if skipped and not allow_skip:
        way = ("pass --allow-skip to do it anyway (it is recorded in release.skipped)" if skippable else
               f"{target} follows the prod baseline, which no skip reaches: promote {source} -> {skipped[0]} first")
        raise GateRefused("order", f"{source} -> {target} skips {', '.join(skipped)} (order {path}); {way}")
    return skipped


def check_deployed(images: Mapping[str, str], source: EnvConfig, running: Sequence[RunningImage],
                   out: TextIO, pending: Collection[str] = ()) -> None:
    """``pending``: the services whose digest TO does not run yet; one of them resting at 0 tasks in FROM is refused."""
    from shared.components.compute import cluster_name

    problems = rollout_mismatches(source, images, running)
    absent = [service for service in images if not any(entry.service == service for entry in running)]
    problems += [f"{service}: ECS reported nothing" for service in absent]
    if problems:
        raise GateRefused("deployed", f"ECS in {source.name} does not run the release: {'; '.join(problems)}; "
                                      f"deploy it (`nox -s up -- {source.name}`) and test it before promoting")
    # A service at min_count 0 with no backlog: the provider leaves its desired count to the scalable target after
    # create (ignore_changes), so an up that releases a new digest makes a deployment of 0 tasks that completes
    # without starting one. ECS reports that digest, but no task of FROM has run it.
    resting = [entry for entry in running if entry.resting and entry.service in pending]
    if resting:
        cluster = cluster_name(source.name)
        raise GateRefused("deployed", "; ".join(
            f"{source.name}'s {entry.where} rests at 0 tasks (desired count 0): no task runs "
            f"{images.get(entry.service, entry.digest)} there, so nothing shows it starts. Wake it: publish to its "
            f"queue, or raise its desired count (`aws ecs update-service --cluster {cluster} --service "
            f"{entry.ecs_service} --desired-count 1`); wait until its task runs the digest, then promote again"
            for entry in resting))
    # A Fargate Spot service Spot took its tasks back from: its digest ran, but no task runs it now to show it still
    # starts (and its next task starts only when Spot has capacity).
    waiting = [entry for entry in running if entry.awaiting_spot and entry.service in pending]
    if waiting:
        raise GateRefused("deployed", "; ".join(
            f"{source.name}'s {entry.describe()}: nothing shows it starts now. Promote again once a task runs it "
            f"(`aws ecs describe-services --cluster {cluster_name(source.name)} --services {entry.ecs_service}` "
            "shows its running count and events), or move it to on-demand Fargate in "
            f"{source.name} (services.{entry.service}.capacity: on_demand)" for entry in waiting))
    out.write(f"gate deployed: ok (ECS in {source.name} runs every promoted digest, rollouts completed)\n")


def check_registry(target: EnvConfig, missing: Sequence[MissingImage], out: TextIO) -> None:
    if missing:
        raise GateRefused("images", f"{target.name}'s registry cannot serve the release, so its tasks could not "
                                    f"pull it: {'; '.join(item.describe() for item in missing)}")
    out.write(f"gate images: ok (every promoted image is in {target.name}'s registry)\n")


def check_policy(target: str, candidate_text: str, policy_check: PolicyCheck, out: TextIO) -> None:
    real_folder = env_dir()
    with candidate_env_dir(target, candidate_text) as folder:
        try:
            load_env(target)  # the candidate must still be a valid env file (ConfigError otherwise)
        except ConfigError as error:
            # Named as the env file the user has, not the scratch copy that is gone when this is read.
            raise _candidate_error(error, folder, real_folder) from None
        blocking = policy_check(target, folder)
    if blocking:
        shown = "; ".join(blocking[:10]) + (f"; and {len(blocking) - 10} more" if len(blocking) > 10 else "")
        raise GateRefused("policy", f"{target} with this release has {len(blocking)} unsuppressed mandatory "
                                    f"finding(s) under its enforcement: {shown}")
    out.write(f"gate policy: ok ({target} with the candidate release has no unsuppressed mandatory finding)\n")


def _candidate_error(error: ConfigError, scratch: Path, real: Path) -> ConfigError:
    """``error`` of the candidate env folder, its files named by their place in the real env folder."""
    problems = error.problems if isinstance(error, ConfigErrors) else [error]
    scratch_root = str(scratch.resolve())
    mapped = []
    for problem in problems:
        file = str(Path(problem.file).resolve()) if Path(problem.file).is_absolute() else problem.file
        if file.startswith(scratch_root + os.sep):
            file = str(real / Path(file).relative_to(scratch_root))
        mapped.append(ConfigError(file, problem.key, f"with the promoted release: {problem.reason}"))
    return mapped[0] if len(mapped) == 1 else ConfigErrors(mapped)


# -- real implementations of the injected checks -----------------------------------------------------


def engine_policy_check(target: str, folder: Path) -> list[str]:
    """The offline policy engine over every layer of ``target`` (PLATFORM_ENV_DIR already points at ``folder``)."""
    from shared.policy.engine import evaluate_envs

    result = evaluate_envs([target])
    return [f"{finding.rule} on {finding.resource_name or finding.urn} ({finding.layer}): {finding.message}"
            for finding in result.blocking]


def ecs_deployed_images(clients: ClientFactory) -> DeployedImages:
    """The deployed gate's reader: ECS in FROM's account (refused when the credentials are another's)."""

    aws = AwsImageChecks(clients)

    def read(source: EnvConfig, services: Sequence[str]) -> list[RunningImage]:
        aws.verify(source)
        return aws.running(source, services)

    return read


def ecr_registry_images(clients: ClientFactory) -> RegistryImages:
    """The images gate's reader: ECR in TO's account and region."""

    aws = AwsImageChecks(clients)

    def read(target: EnvConfig, images: Mapping[str, str]) -> list[MissingImage]:
        aws.verify(target)
        missing = aws.missing(target, images)
        absent = {item.service for item in missing}
        # an index TO holds without the manifest a task pulls (expired while untagged in the replica) is missing too
        return [*missing, *lost_platform_manifests(
            target, {service: ref for service, ref in images.items() if service not in absent}, clients)]

    return read


# -- the env file -----------------------------------------------------------------------------------


def _yaml() -> YAML:
    yaml = YAML()  # round-trip: comments, key order, flow/block style and quotes survive
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a long line the author wrote on one line
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def render_candidate(text: str, images: Mapping[str, str], source: str, promoted_at: str,
                     skipped: Sequence[str]) -> str:
    """TO's file text with the promoted images and the promotion record; everything else untouched."""
    # Blank lines and column-0 comments between the release's last entry and the next top-level key introduce that
    # key: ruamel keeps them on the release's last item and adds a new entry after them (a promoted_from under
    # "# network"), so the release is rendered without them and they are put back after it.
    body, tail = _detach_tail(text)
    rendered = _render_release(body, images, source, promoted_at, skipped)
    spliced = _splice_release(body, rendered, tail)
    if spliced is not None and _same_data(spliced, rendered):
        return spliced
    # The full dump, comments where ruamel puts them: only for a layout this line-based splice does not understand.
    return _render_release(text, images, source, promoted_at, skipped).replace(
        "\n", _line_ending(text.splitlines(keepends=True)))


def _detach_tail(text: str) -> tuple[str, list[str]]:
    """``text`` without the blank and column-0 comment lines that end its ``release:`` entry, and those lines."""
    lines = text.splitlines(keepends=True)
    span = _release_span(lines)
    if span is None:
        return text, []
    cut = span[1]
    while cut > span[0] + 1 and (not lines[cut - 1].strip() or lines[cut - 1].startswith("#")):
        cut -= 1
    if cut == span[1]:
        return text, []
    return "".join(lines[:cut] + lines[span[1]:]), lines[cut:span[1]]


def _render_release(text: str, images: Mapping[str, str], source: str, promoted_at: str,
                    skipped: Sequence[str]) -> str:
    """ruamel's round trip of ``text`` with the release updated (every line re-rendered, LF line endings)."""
    yaml = _yaml()
    data = yaml.load(text)
    if data is None:
        data = CommentedMap()
    release = data.get("release")
    if release is None:
        release = data["release"] = CommentedMap()
    current = release.get("images")
    if current is None:
        current = release["images"] = CommentedMap()
    for service, ref in images.items():
        current[service] = ref
    release["promoted_from"] = source
    # Quoted: unquoted, YAML readers would turn the timestamp into a datetime, not the string the schema wants.
    release["promoted_at"] = DoubleQuotedScalarString(promoted_at)
    if skipped:
        record = CommentedSeq(skipped)
        record.fa.set_flow_style()
        release["skipped"] = record
    elif "skipped" in release:
        del release["skipped"]  # it described an earlier promotion
    buffer = io.StringIO()
    yaml.dump(data, buffer)
    # ruamel's dump re-indents every block sequence of the file to one style and normalises spacing, so the file
    # outside `release:` is taken from the original text as it was (render_candidate's splice).
    return buffer.getvalue()


def read_untranslated(path: Path) -> str:
    """The file's text with its line endings as they are: ``read_text`` turns CRLF into LF, and the rewrite would then
    change every line of a CRLF file, not only the release's."""
    return path.read_bytes().decode("utf-8")


def _line_ending(lines: Sequence[str]) -> str:
    """The line ending the file uses (its first line's), LF for a file of one unterminated line or none."""
    return "\r\n" if lines and lines[0].endswith("\r\n") else "\n"


def _same_data(text: str, reference: str) -> bool:
    try:
        return bool(safe_load(text) == safe_load(reference))
    except pyyaml.YAMLError:  # e.g. a second `release` key where the first was spelled "release"
        return False


def _starts_top_level_entry(line: str) -> bool:
    return bool(line.strip()) and line[0] not in " \t#" and not line.startswith(("---", "..."))


def _release_span(lines: Sequence[str]) -> tuple[int, int] | None:
    """The lines of the top-level ``release:`` entry: its key line up to the next top-level entry (or the end)."""
    start = next((index for index, line in enumerate(lines) if re.match(r"release\s*:", line)), None)
    if start is None:
        return None
    end = next((index for index in range(start + 1, len(lines)) if _starts_top_level_entry(lines[index])), len(lines))
    return start, end


def _splice_release(original: str, rendered: str, tail: Sequence[str] = ()) -> str | None:
    """``original`` with its ``release:`` entry replaced by ``rendered``'s (appended when it had none), followed by
    ``tail``."""
    new_lines = rendered.splitlines(keepends=True)
    new_span = _release_span(new_lines)
    if new_span is None:
        return None
    old_lines = original.splitlines(keepends=True)
    eol = _line_ending(old_lines)
    # ruamel writes LF; the block takes the file's own line ending (CRLF stays CRLF).
    block = [line.rstrip("\r\n") + eol if line.endswith("\n") else line for line in new_lines[new_span[0]:new_span[1]]]
    old_span = _release_span(old_lines)
    if old_span is None:
        if old_lines and not old_lines[-1].endswith("\n"):
            old_lines[-1] += eol
        return "".join(old_lines + block + list(tail))
    return "".join(old_lines[:old_span[0]] + block + list(tail) + old_lines[old_span[1]:])


def unified_diff(old: str, new: str, path: Path) -> str:
    try:
        relative = path.resolve().relative_to(REPO_ROOT)
        before, after = f"a/{relative}", f"b/{relative}"
    except ValueError:  # a PLATFORM_ENV_DIR outside the repo
        before = after = str(path)
    return "".join(difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                        fromfile=before, tofile=after))


@contextlib.contextmanager
def candidate_env_dir(target: str, candidate_text: str) -> Iterator[Path]:
    """A scratch copy of the env folder with TO's file replaced by the candidate, active via PLATFORM_ENV_DIR."""
    source_dir = env_dir()
    with tempfile.TemporaryDirectory(prefix="promote-") as scratch:
        folder = Path(scratch) / "environments"
        shutil.copytree(source_dir, folder)
        (folder / f"{target}.yaml").write_text(candidate_text, encoding="utf-8")
        with active_env_dir(folder):
            yield folder


# -- the git work tree --------------------------------------------------------------------------------


def _git(folder: Path, *args: str) -> subprocess.CompletedProcess[str] | None:
    """``git -C folder ARGS`` (None: git is not installed). Read-only, also for ``--check``: ``--no-optional-locks``
    keeps ``git status`` from refreshing and rewriting ``.git/index`` (git(1), GIT_OPTIONAL_LOCKS), which would also
    take ``index.lock`` from under a ``git commit`` running beside the promotion."""
    try:
        return subprocess.run(["git", "--no-optional-locks", "-C", str(folder), *args], capture_output=True, text=True,
                              check=False)
    except FileNotFoundError:
        return None


def in_git_work_tree(folder: Path) -> bool:
    answer = _git(folder, "rev-parse", "--is-inside-work-tree")
    return answer is not None and answer.returncode == 0 and answer.stdout.strip() == "true"


def check_committed(paths: Sequence[Path]) -> None:
    """Refuse (exit 2) when an env file the promotion reads or writes differs from git's HEAD: staged, unstaged or
    never committed. FROM's release must be the committed one the gates can vouch for, and TO's file must hold only
    the promotion's change when it is committed. An env folder outside a git work tree (PLATFORM_ENV_DIR elsewhere)
    has nothing to compare with and is not checked."""
    folder = paths[0].parent
    if not in_git_work_tree(folder):
        return
    # --porcelain: one "XY path" line per changed path (git-status(1)); untracked files too, as "??", and with
    # --ignored a file .gitignore hides, as "!!": it is not in HEAD either, and its promotion could not be committed.
    answer = _git(folder, "status", "--porcelain=v1", "--untracked-files=all", "--ignored=matching", "--",
                  *(path.name for path in paths))
    if answer is None or answer.returncode != 0:
        reason = (answer.stderr if answer else "git is not installed").strip()
        raise UsageError(f"git status in {display_path(str(folder))} failed: {reason}")
    dirty = [line for line in answer.stdout.splitlines() if line.strip()]
    if dirty:
        kinds = {"??": "untracked", "!!": "ignored by git, never committed"}
        shown = "; ".join(f"{line[3:]} ({kinds.get(line[:2], 'uncommitted: ' + line[:2].strip())})" for line in dirty)
        raise UsageError(f"uncommitted changes in the env files of this promotion: {shown}. Commit them (or "
                         "`git checkout -- <file>`) first: the gates judge FROM's committed release, and TO's file "
                         "must hold nothing but the promotion when it is committed; nothing was written")


@dataclass(frozen=True)
class Rollback:
    """``ENV@REV`` as FROM: the release ``environments/ENV.yaml`` pinned at git commit ``commit``, rolled back into
    ENV itself."""

    env: str
    revision: str
    """As given (a commit, tag, ``HEAD~2``...)."""
    commit: str
    """The full commit id it names."""
    images: dict[str, str]

    @property
    def label(self) -> str:
        """What ``release.promoted_from`` records: the env and the commit its release comes from."""
        return f"{self.env}@{self.commit[:12]}"

    def file(self) -> str:
        return f"{display_path(str(env_path(self.env)))} at {self.revision} ({self.commit[:12]})"


def split_source(source: str) -> tuple[str, str | None]:
    """FROM as (env, git revision): ``staging`` -> ("staging", None); ``prod@HEAD~1`` -> ("prod", "HEAD~1")."""
    env, separator, revision = source.partition("@")
    if separator and (not revision or revision.startswith("-")):
        # A leading "-" would reach git as an option, not a revision (it comes from a person or a workflow input).
        raise UsageError(f"FROM {source!r}: name a git revision after '@' (e.g. {env}@HEAD~1 or {env}@<commit>)")
    return env, revision if separator else None


def _shallow_hint(folder: Path) -> str:
    """Why a revision of the history may be missing: a shallow clone (``git clone --depth``, CI's default checkout)
    holds the last commits only, so ``HEAD~1`` or an older commit is not there to be read."""
    answer = _git(folder, "rev-parse", "--is-shallow-repository")
    if answer is None or answer.returncode != 0 or answer.stdout.strip() != "true":
        return ""
    return ("; this clone is shallow and lacks the older history: `git fetch --unshallow` (in a workflow, "
            "actions/checkout with fetch-depth: 0), then roll back again")


#: ``TO@previous``: the release TO had before its current one (:func:`_previous_release_commit`)
PREVIOUS = "previous"


def _text_at(path: Path, commit: str) -> str | None:
    """The text of ``path`` at ``commit`` of its folder's git history (None: no such file there, or no answer).
    ``<commit>:./<file>`` is the file relative to the working directory (-C folder): gitrevisions(7)."""
    shown = _git(path.parent, "show", f"{commit}:./{path.name}")
    return shown.stdout if shown is not None and shown.returncode == 0 else None


def _mapping_at(path: Path, commit: str) -> dict[str, Any] | None:
    """``path`` at ``commit`` read as plain YAML (None: no such file there, unreadable, or not a mapping): for what
    only informs; :func:`read_rollback` reads the release it deploys with the env loader's checks."""
    text = _text_at(path, commit)
    try:
        data = pyyaml.safe_load(text) if text is not None else None
    except pyyaml.YAMLError:
        return None
    return data if isinstance(data, dict) else None


def _release_images_at(path: Path, commit: str) -> dict[str, str] | None:
    """``release.images`` of the env file at ``path`` at ``commit`` (None: no file or no such section)."""
    release = (_mapping_at(path, commit) or {}).get("release")
    images = release.get("images") if isinstance(release, dict) else None
    return {str(k): str(v) for k, v in images.items()} if isinstance(images, dict) else None


def _previous_release_commit(env_name: str, path: Path) -> str:
    """The newest commit on HEAD's first-parent line whose ``release.images`` of ``env_name`` differ from HEAD's: the
    release before the current one, however many other commits came since (``HEAD~1`` is that only while the
    promotion is main's newest commit; after any other it names the current release again, nothing to promote)."""
    folder = path.parent
    current = _release_images_at(path, "HEAD")
    listed = _git(folder, "log", "--first-parent", "--format=%H", "HEAD", "--", f"./{path.name}")
    if current is None or listed is None or listed.returncode != 0:
        raise UsageError(f"FROM {env_name}@{PREVIOUS}: {display_path(str(path))} at HEAD holds no release.images to "
                         f"go back from{_shallow_hint(folder)}")
    for commit in listed.stdout.split():
        images = _release_images_at(path, commit)
        if images and images != current:
            return commit
    raise UsageError(f"FROM {env_name}@{PREVIOUS}: {env_name} has had no other release on this branch than its "
                     f"current one{_shallow_hint(folder)}")


#: What an image depends on in its service's catalog entry: a change of one since a release may take away what that
#: release's image uses (shared.image_readiness: expand, then contract)
IMAGE_FACING_KEYS = ("calls", "publishes", "artifacts", "protects_jobs")


def _unordered(value: Any) -> Any:
    """A catalog value with its lists' order left out (``calls: [a, b]`` is ``[b, a]``)."""
    if isinstance(value, list):
        return sorted(map(repr, value))
    if isinstance(value, dict):
        return {key: _unordered(item) for key, item in value.items()}
    return value


def catalog_changes_since(commit: str, services: Sequence[str]) -> dict[str, list[str]]:
    """service -> the keys of :data:`IMAGE_FACING_KEYS` whose value in the catalog file differs between ``commit``
    and now, for each of ``services`` in both (empty where the catalog cannot be read at that commit)."""
    path = catalog_path()
    then = _mapping_at(path, commit)
    try:
        now = pyyaml.safe_load(path.read_text(encoding="utf-8"))
    except (pyyaml.YAMLError, OSError):
        return {}
    old_services = then.get("services") if then is not None else None
    new_services = now.get("services") if isinstance(now, dict) else None
    if not isinstance(old_services, dict) or not isinstance(new_services, dict):
        return {}
    changed: dict[str, list[str]] = {}
    for service in services:
        old, new = old_services.get(service), new_services.get(service)
        if isinstance(old, dict) and isinstance(new, dict):
            keys = [key for key in IMAGE_FACING_KEYS if _unordered(old.get(key)) != _unordered(new.get(key))]
            if keys:
                changed[service] = keys
    return changed


def read_rollback(env_name: str, revision: str) -> Rollback:
    """The release ``env_name``'s file pinned at ``revision`` of the env folder's git history (exit 2 on bad input)."""
    from shared.envs import Release
    from shared.yamlio import load_yaml_mapping

    path = env_path(env_name)
    folder = path.parent
    if not in_git_work_tree(folder):
        raise UsageError(f"FROM {env_name}@{revision}: a rollback reads {env_name}'s release from git history, but "
                         f"{display_path(str(folder))} is not in a git work tree")
    wanted = _previous_release_commit(env_name, path) if revision == PREVIOUS else revision
    resolved = _git(folder, "rev-parse", "--verify", "--quiet", f"{wanted}^{{commit}}")
    if resolved is None or resolved.returncode != 0:
        raise UsageError(f"FROM {env_name}@{revision}: {revision!r} names no commit of this repository"
                         f"{_shallow_hint(folder)}")
    commit = resolved.stdout.strip()
    # Only a release TO's own history ran on this branch: not one of a branch that was never merged.
    ancestor = _git(folder, "merge-base", "--is-ancestor", commit, "HEAD")
    if ancestor is None or ancestor.returncode != 0:
        raise UsageError(f"FROM {env_name}@{revision}: commit {commit[:12]} is not in the history of HEAD; roll "
                         f"back only to a release {env_name} had on this branch{_shallow_hint(folder)}")
    shown = _text_at(path, commit)
    label = f"{display_path(str(path))} at {revision} ({commit[:12]})"
    if shown is None:
        raise ConfigError(label, "(file)", f"the file did not exist at that commit, so {env_name} had no release "
                                           "there to roll back to")
    with tempfile.TemporaryDirectory(prefix="rollback-") as scratch:
        copy = Path(scratch) / path.name
        copy.write_text(shown, encoding="utf-8")
        try:
            data = load_yaml_mapping(copy)
        except ConfigError as error:
            raise ConfigError(label, error.key, error.reason) from None
    section = data.get("release") or {}
    try:
        release = Release.model_validate(section if isinstance(section, dict) else {"images": section})
    except ValueError as error:  # pydantic's ValidationError
        raise ConfigError(label, "release", str(error).splitlines()[-1].strip()) from None
    if not release.images:
        raise ConfigError(label, "release.images", "is empty: there is no release to roll back to")
    return Rollback(env=env_name, revision=revision, commit=commit, images=dict(release.images))


# -- the command ------------------------------------------------------------------------------------


def plan_promotion(source_name: str, target_name: str, services: Sequence[str] | None,
                   rollback: Rollback | None = None) -> Promotion:
    """Validate the input (exit 2 on anything wrong) and say what would change.

    With ``rollback`` (FROM ``TO@REV``) the images come from TO's own file at that commit instead of FROM's."""
    if rollback is None and source_name == target_name:
        raise UsageError(f"FROM and TO are both {source_name!r}; promotion copies a release to another env (a "
                         f"rollback names the earlier release: {target_name}@<revision> {target_name})")
    source, target = load_env(source_name), load_env(target_name)
    available = rollback.images if rollback is not None else source.release.images
    source_file = rollback.file() if rollback is not None else str(env_path(source_name))
    if not available:
        raise ConfigError(source_file, "release.images", "is empty: there is nothing to promote")
    if rollback is not None and services is None:
        from shared.catalog import load_catalog

        # A service the catalog has lost since that commit cannot come back (TO's file would name an unknown service):
        # say which, and the command that rolls back the others.
        catalog = load_catalog()
        gone = [service for service in available if service not in catalog.services]
        kept = [service for service in available if service in catalog.services]
        if gone:
            raise ConfigError(source_file, f"release.images.{gone[0]}",
                              f"the catalog no longer has {', '.join(gone)}, so that release cannot come back whole; "
                              + (f"roll back the other services: `nox -s promote -- {rollback.env}@{rollback.revision} "
                                 f"{target_name} --services {','.join(kept)}`" if kept else
                                 "none of its services is in the catalog any more"))
    if services is None:
        chosen = list(available)
    else:
        from shared.catalog import load_catalog

        catalog = load_catalog()
        unknown = [service for service in services if service not in catalog.services]
        if unknown:
            raise UsageError(f"--services: unknown service(s) {', '.join(unknown)} "
                             f"(the catalog has: {', '.join(catalog.names())})")
        missing = [service for service in services if service not in available]
        if missing:
            raise ConfigError(source_file, f"release.images.{missing[0]}",
                              f"{source_name}'s release has no image for {', '.join(missing)}, so it cannot "
                              "be promoted")
        chosen = [service for service in available if service in services]  # FROM's order, deterministic
    images = {service: available[service] for service in chosen}
    pending = {service: (target.release.images.get(service), ref) for service, ref in images.items()
               if target.release.images.get(service) != ref}
    return Promotion(source=source, target=target, images=images, pending=pending)


LOCK_WAIT_S = 30.0


class PromotionRaced(GateRefused):
    """Another promotion holds the target, or the target file changed while the gates ran (exit 1)."""


@contextlib.contextmanager
def target_lock(folder: Path, target: str, wait_s: float = LOCK_WAIT_S) -> Iterator[None]:
    """One promotion at a time per env folder: an exclusive ``flock`` on the folder itself (no lock
    file to leave behind; the kernel drops it when the process ends, also on a crash)."""
    import fcntl

    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError as error:
        source = f"{ENV_DIR_VAR}={os.environ[ENV_DIR_VAR]}" if os.environ.get(ENV_DIR_VAR) else "the env folder"
        raise UsageError(f"{source}: cannot open {display_path(str(folder))} ({error.strerror}); it must be the "
                         "folder of the env files") from None
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise PromotionRaced("lock", f"another promotion into {folder} is running (waited "
                                                 f"{wait_s:.0f}s); run this one again when it has finished") from None
                time.sleep(0.1)
        yield
    finally:
        os.close(descriptor)  # releases the lock


def promote(source_name: str, target_name: str, *, services: Sequence[str] | None = None, check: bool = False,
            allow_skip: bool = False, out: TextIO | None = None,
            now: Callable[[], datetime] = lambda: datetime.now(UTC),
            policy_check: PolicyCheck = engine_policy_check, clients: ClientFactory | None = None,
            deployed_images: DeployedImages | None = None, registry_images: RegistryImages | None = None,
            lock_wait_s: float = LOCK_WAIT_S) -> int:
    """Run one promotion; returns the exit code (errors of bad input raise PlatformError subclasses).

    ``check``: a dry run through every gate; prints what would be written and writes nothing.
    """
    out = out or sys.stdout
    with target_lock(env_dir(), target_name, lock_wait_s):
        return _promote_locked(source_name, target_name, services=services, check=check, allow_skip=allow_skip,
                               out=out, now=now, policy_check=policy_check,
                               clients=clients if clients is not None else SessionClients(),
                               deployed_images=deployed_images, registry_images=registry_images)


def _promote_locked(source_name: str, target_name: str, *, services: Sequence[str] | None, check: bool,
                    allow_skip: bool, out: TextIO, now: Callable[[], datetime], policy_check: PolicyCheck,
                    clients: ClientFactory, deployed_images: DeployedImages | None,
                    registry_images: RegistryImages | None) -> int:
    source_env, revision = split_source(source_name)
    rollback = None
    if revision is not None:
        if source_env != target_name:
            raise UsageError(f"FROM {source_name}: a release from git history is rolled back into its own env only; "
                             f"to return {target_name} to an earlier release of its own, use "
                             f"{target_name}@<revision> {target_name}")
        if allow_skip:
            raise UsageError("--allow-skip: a rollback takes no step along the promotion order, so nothing is skipped")
        load_env(target_name)  # an unknown env is named as such before any git question
        rollback = read_rollback(target_name, revision)
        source_name = rollback.label
    promotion = plan_promotion(source_env, target_name, services, rollback)
    check_committed(sorted({env_path(source_env), env_path(target_name)}))
    skippable = promotion.target.baseline != "prod"  # no skip reaches an env of the prod baseline
    if allow_skip and not skippable:
        raise UsageError(f"--allow-skip: {target_name} follows the prod baseline; a release reaches it only "
                         f"through every env before it in the order {' -> '.join(PROMOTION_ORDER)}, never by a skip")
    path = env_path(target_name)
    # What the gates judge is this text: the file is compared with it again right before the write.
    old_text = read_untranslated(path)
    # The direction is checked first: a backwards or skipping request is refused even when the
    # images happen to match (and --check answers for a promotion that could actually run).
    skipped = check_order(source_name, target_name, allow_skip, skippable) if rollback is None else ()
    for service, (current, ref) in promotion.pending.items():
        out.write(f"{service}: {target_name} {current or '(none)'} -> {ref}\n")
    if not promotion.pending:
        out.write(f"{target_name} already runs {source_name}'s images for "
                  f"{', '.join(promotion.images)}; nothing to promote\n")
        return 0

    if rollback is None:  # checked first (above), told first
        out.write(f"gate order: ok ({source_name} -> {target_name}"
                  f"{'; skipping ' + ', '.join(skipped) + ', recorded' if skipped else ''})\n")
    check_digests(promotion.images, source_name, rollback.file() if rollback else f"environments/{source_name}.yaml")
    out.write("gate digest: ok (every promoted image is pinned by digest)\n")
    if rollback is None:
        read_deployed = deployed_images or ecs_deployed_images(clients)
        check_deployed(promotion.images, promotion.source, read_deployed(promotion.source, list(promotion.images)),
                       out, pending=list(promotion.pending))
    else:
        # What ECS runs in TO is the release being replaced; what vouches for the earlier one is that it was TO's
        # committed release on this branch, which reached TO through the gates or a reviewed change.
        out.write(f"gate order, deployed: rollback of {target_name} to its release at {rollback.revision} "
                  f"({rollback.commit[:12]}, in the history of HEAD)\n")
        for service, keys in catalog_changes_since(rollback.commit, list(promotion.pending)).items():
            out.write(f"note: {service}: its catalog entry's {', '.join(keys)} changed since {rollback.commit[:12]}: "
                      f"the image coming back predates that change, and where it took away what that image uses (a "
                      "call, a routing key, artifact access) it fails anew (README, \"Catalog changes the running "
                      "image must be ready for\"): roll back to a release after the change, or check that image\n")
    read_registry = registry_images or ecr_registry_images(clients)
    check_registry(promotion.target, read_registry(promotion.target, promotion.images), out)
    promoted_at = now().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    new_text = render_candidate(old_text, promotion.images, source_name, promoted_at, skipped)
    check_policy(target_name, new_text, policy_check, out)

    if check:
        out.write(unified_diff(old_text, new_text, path))
        out.write(f"--check: every gate passed; would promote {', '.join(promotion.pending)} from {source_name} "
                  f"to {target_name}; nothing written\n")
        return 0
    if read_untranslated(path) != old_text:
        raise PromotionRaced("write", f"{display_path(str(path))} changed while the gates ran; nothing written. "
                                      "Review the change and promote again")
    write_atomically({path: new_text})  # never a half-written env file
    out.write(unified_diff(old_text, new_text, path))
    out.write(f"promoted {', '.join(promotion.pending)} from {source_name} to {target_name}\n")
    return 0


def main(argv: Sequence[str] | None = None, **injected: Any) -> int:
    parser = UsageParser(prog="python -m shared.promote", label="nox -s promote",
                         description=__doc__.split("\n\n")[0])
    parser.add_argument("source", metavar="FROM",
                        help="the env whose release is promoted, or TO@<git revision> to roll TO back to the release "
                             "its file pinned at that commit")
    parser.add_argument("target", metavar="TO")
    parser.add_argument("--services", help="comma-separated services to promote (default: all of FROM's release)")
    parser.add_argument("--check", action="store_true",
                        help="dry run through every gate: print what would be written, write nothing")
    parser.add_argument("--allow-skip", action="store_true", help="allow skipping an env of the order (recorded)")
    try:
        args = parser.parse_args(argv)
        services = None
        if args.services is not None:
            services = [part.strip() for part in args.services.split(",") if part.strip()]
            if not services:
                raise UsageError("--services: give at least one service name")
        return promote(args.source, args.target, services=services, check=args.check,
                       allow_skip=args.allow_skip, **injected)
    except PlatformError as error:
        sys.stderr.write(f"error: {error}\n")
        return error.exit_code


if __name__ == "__main__":
    sys.exit(main())
