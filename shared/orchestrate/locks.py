"""Before any layer of a run that takes stack locks: is a stack of the run locked by another run?

Two runs of one env at once (a CI job and someone's laptop, or a job re-run beside the first) meet at Pulumi's
stack lock. On a self-managed backend ``up``, ``refresh`` and ``destroy`` lock the stack for their whole run;
``preview`` and the ``--preview-only`` forms take none (pkg/backend/diy/backend.go: Update, Refresh, Destroy call
``b.Lock``; Preview does not, and Refresh and Destroy with PreviewOnly return before it).
Met layer by layer, the lock fails the run at that layer, after the layers before it
have changed: half an env. Read up front, a lock held on any stack of the run stops the run before anything.

A lock is one file ``.pulumi/locks/<org>/<project>/<stack>/<id>.json`` in the backend holding ``pid``,
``username``, ``hostname`` and ``timestamp`` of its run (pkg/backend/diy/lock.go: stackLockDir, lockContent). A
``file://`` backend is read here; an ``s3://`` one through boto3 with the URL's ``region``, ``profile`` and
``endpoint`` (the query parameters the CLI's gocloud s3blob opener reads) and, where the URL names no profile, the
env's credentials (``PLATFORM_AWS_PROFILE_<ENV>``, else the default chain), as the run's ``pulumi`` reads it.
Pulumi Cloud keeps its locks to itself: an update started there during another answers "[409] Conflict: Another
update is currently in progress." at its start (pkg/backend/httpstate/backend.go createAndStartUpdate), a preview runs
beside it (pulumi/pulumi #8642). It lists a stack being updated with ``updateInProgress: true`` (``pulumi stack ls
--json``: the service reports its last update time as 0 until the update ends, pulumi/pulumi #2109), which
:func:`cloud_locks` reads up front; a 409 met later is reported for its layer
(:func:`shared.orchestrate.report.locked_detail`).
"""

from __future__ import annotations

import json
import os
import shlex
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from shared.errors import PlatformError

LOCKS_DIR = ".pulumi/locks"


class StackLocked(PlatformError):
    """A stack of the run is locked by another run (exit 2: nothing was run)."""

    exit_code = 2


@dataclass(frozen=True)
class StackLock:
    """One lock a self-managed backend holds on a stack."""

    where: str
    """The lock file's URL."""
    holder: str
    """``user@host (pid N) since <time>``, as the lock file says."""
    stale: bool = False
    """Taken on this machine by a process that no longer runs (killed without releasing it)."""


def process_runs(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (another user's counts)."""
    try:
        os.kill(pid, 0)  # signal 0: existence check only
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def parse_lock(where: str, raw: bytes | str) -> StackLock:
    """A lock file's :class:`StackLock`; stale when its host is this machine and its pid no longer runs."""
    try:
        content = json.loads(raw)
    except ValueError:
        content = None
    holder = lock_holder(raw)
    stale = (isinstance(content, Mapping) and content.get("hostname") == socket.gethostname()
             and isinstance(content.get("pid"), int) and not process_runs(content["pid"]))
    return StackLock(where, holder, stale)


def lock_holder(raw: bytes | str) -> str:
    """Who holds a lock, from its file's JSON (pkg/backend/diy/lock.go lockContent)."""
    try:
        content = json.loads(raw)
    except ValueError:
        return "a run whose lock file is not JSON"
    if not isinstance(content, Mapping):
        return "a run whose lock file is not a JSON object"
    return (f"{content.get('username', '?')}@{content.get('hostname', '?')} (pid {content.get('pid', '?')}) "
            f"since {content.get('timestamp', '?')}")


def _base_url(url: str) -> str:
    return url.partition("?")[0].rstrip("/")


def file_locks(url: str, stack: str) -> list[StackLock]:
    """The locks of ``stack`` in the ``file://`` backend ``url``."""
    parts = urlsplit(url)
    root = Path(unquote(parts.netloc + parts.path)).expanduser()
    folder = root / LOCKS_DIR / stack
    found: list[StackLock] = []
    for path in sorted(folder.glob("*.json")):
        try:
            raw = path.read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            continue  # released (the other run's Unlock deleted it) since the listing, or not a lock file
        found.append(parse_lock(f"{_base_url(url)}/{LOCKS_DIR}/{stack}/{path.name}", raw))
    return found


S3Client = Any
"""A boto3 S3 client (boto3 is typed loosely here, as elsewhere in shared.orchestrate)."""


def backend_s3_client(url: str, profile: str | None = None) -> S3Client:
    """The URL's ``profile`` wins over ``profile`` (the env's, which every ``pulumi`` of the run has as
    ``AWS_PROFILE``: :func:`shared.images.pulumi_credentials`), as gocloud's s3blob opener takes the URL's over the
    environment's; neither: the default credential chain."""
    import boto3
    from botocore.config import Config

    query = {name: values[-1] for name, values in parse_qs(urlsplit(url).query).items()}
    session = boto3.Session(profile_name=query.get("profile") or profile, region_name=query.get("region"))
    # An S3-compatible store's endpoint, a scheme-less one https unless disableSSL/disable_https, and path-style
    # addressing, as the CLI opens the bucket (pkg/backend/diy/backend.go translateLegacyS3Params, gocloud s3blob).
    endpoint = query.get("endpoint")
    if endpoint and "://" not in endpoint:
        plain = any(query.get(name, "").lower() in ("true", "1") for name in ("disableSSL", "disable_https"))
        endpoint = f"{'http' if plain else 'https'}://{endpoint}"
    path_style = any(query.get(name, "").lower() in ("true", "1") for name in ("use_path_style", "s3ForcePathStyle"))
    config = Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 2},
                    s3={"addressing_style": "path"} if path_style else None)
    return session.client("s3", endpoint_url=endpoint or None, config=config)


def s3_locks(url: str, stack: str, client: Callable[[str], S3Client] | None = None,
             profile: str | None = None) -> list[StackLock] | str:
    """The locks of ``stack`` in the ``s3://`` backend ``url`` (under its key prefix, where the CLI keeps
    ``.pulumi``), read as ``profile`` (:func:`backend_s3_client`), or why they cannot be read from here."""
    from botocore.exceptions import BotoCoreError, ClientError

    parts = urlsplit(url)
    prefix = parts.path.strip("/")
    key_prefix = f"{prefix}/{LOCKS_DIR}/{stack}/" if prefix else f"{LOCKS_DIR}/{stack}/"
    try:
        s3 = client(url) if client is not None else backend_s3_client(url, profile)
        found: list[StackLock] = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=parts.netloc, Prefix=key_prefix):
            for item in page.get("Contents", []):
                key = str(item["Key"])
                if not key.endswith(".json"):
                    continue
                try:
                    body = s3.get_object(Bucket=parts.netloc, Key=key)["Body"].read()
                except ClientError as error:
                    if error.response.get("Error", {}).get("Code") == "NoSuchKey":
                        continue  # released since the listing: the other run ended
                    raise
                found.append(parse_lock(f"s3://{parts.netloc}/{key}", body))
        return found
    except (BotoCoreError, ClientError) as error:
        return f"{type(error).__name__}: {error}"


CLOUD_HOLDER = "an update in progress on Pulumi Cloud"


def cloud_locks(listing: str, stack: str) -> list[StackLock] | str:
    """The update in progress on ``stack`` (``<org>/<project>/<stack>``), from what ``pulumi stack ls --json
    --organization <org> --project <project>`` printed in the project's folder, or why that cannot be read.

    There the CLI names a stack ``<stack>`` where its org is the login's default org and ``<org>/<stack>`` otherwise
    (pkg/backend/httpstate/stack.go, cloudBackendReference.String; in full with PULUMI_FULLY_QUALIFY_STACK_NAMES); the
    listing holds only the org's stacks of the project. Who runs the update the listing does not say: the stack's
    Console page (the entry's ``url``) does."""
    try:
        entries = json.loads(listing)
    except ValueError:
        entries = None
    if not isinstance(entries, list):
        return f"`pulumi stack ls --json` printed no JSON list: {listing.strip()[:80]!r}"
    org, name = stack.split("/", 1)[0], stack.rsplit("/", 1)[-1]
    found: list[StackLock] = []
    for entry in entries:
        if not isinstance(entry, Mapping) or str(entry.get("name")) not in (name, f"{org}/{name}", stack):
            continue
        if entry.get("updateInProgress") is True:
            url = str(entry.get("url") or stack)
            found.append(StackLock(url, f"{CLOUD_HOLDER}, its Console page shows who runs it"))
    return found


LockReader = Callable[[str, str], "list[StackLock] | str | None"]
"""(backend URL, stack) -> its locks, why they cannot be read, or None where the backend keeps them itself."""


def is_cloud_url(url: str) -> bool:
    """Whether the backend ``url`` is Pulumi Cloud (or a self-hosted one): it keeps its locks (and secrets) itself."""
    return url.startswith(("https://", "http://"))


def read_locks(url: str, stack: str, profile: str | None = None) -> list[StackLock] | str | None:
    """The locks the backend ``url`` holds on ``stack`` (:data:`LockReader`); an ``s3://`` one read as ``profile``
    (the env's ``PLATFORM_AWS_PROFILE_<ENV>``, as the run's ``pulumi`` reads it) unless the URL names one."""
    if url.startswith("file://"):
        return file_locks(url, stack)
    if url.startswith("s3://"):
        return s3_locks(url, stack, profile=profile)
    if is_cloud_url(url):
        return None  # Pulumi Cloud: read through the CLI (cloud_locks), which this function does not run
    return "locks are read here on file://, s3:// and Pulumi Cloud backends only"


def locked_refusal(env_name: str, action: str, locked: Mapping[str, Sequence[StackLock]],
                   backend_url: str | None = None) -> str:
    """Why a run is refused: ``locked`` maps each locked stack (``<org>/<layer>/<env>``) to its locks on the backend
    ``backend_url``, which the ``pulumi cancel`` it names is pointed at: run against the CLI's login instead (not the
    env file's backend) it finds no such stack, or a same-named one there (a personal ``~/.pulumi``) whose locks it
    deletes (pkg/backend/diy/backend.go CancelCurrentUpdate) while this lock stays."""
    lines = [f"{action} {env_name} refused, nothing was run: another run holds the lock of "
             f"{len(locked)} of its stacks:"]
    for stack, locks in locked.items():
        for lock in locks:
            stale = ": its process no longer runs on this machine, a stale lock `pulumi cancel` may release" \
                if lock.stale else ""
            lines.append(f"  {stack}: {lock.holder} ({lock.where}){stale}")
    first = next(iter(locked))
    lines.append(
        "Met layer by layer, the lock would fail the run at that layer after the layers before it had changed. Wait "
        "for that run to end (a CI job of this env, or someone's up, refresh or destroy) and run again. Only if it is "
        f"dead (its job cancelled or machine gone) release it: {cancel_command(first, backend_url)}; "
        f"{cancel_effect(backend_url)}.")
    return "\n".join(lines)


def cancel_command(stack: str, backend_url: str | None) -> str:
    """The ``pulumi cancel`` that releases ``stack`` (``<org>/<layer>/<env>``) on ``backend_url``, and where to run it.

    With ``--stack`` and the backend named: a bare ``pulumi cancel`` acts on the folder's selected stack through the
    CLI's own login (another backend, or none in a non-interactive run)."""
    # quoted: an s3:// URL's `&` between query parameters would end the command pasted into a shell
    backend = f"PULUMI_BACKEND_URL={shlex.quote(backend_url)} " if backend_url else ""
    return f"`{backend}pulumi cancel --stack {stack} --yes` in stacks/{stack.split('/')[1]}"


def cancel_effect(backend_url: str | None) -> str:
    """What that cancel does, to a run that still lives too: a self-managed backend's deletes every lock file of the
    stack (pkg/backend/diy/backend.go CancelCurrentUpdate); Pulumi Cloud's cancels the stack's active update
    (pkg/backend/httpstate/backend.go CancelCurrentUpdate), whose run can then no longer write the state."""
    if backend_url and is_cloud_url(backend_url):
        return ("it ends that update on Pulumi Cloud, and a run still alive then can no longer record what it changes "
                "in the state")
    return ("it deletes every lock of the stack (a self-managed backend's cancel removes all its lock files), and a "
            "run still alive then writes one state with this one")
