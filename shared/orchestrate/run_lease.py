"""One run of an env at a time: a lease the orchestrator holds in the state backend for a whole ``up``, ``refresh`` or
``destroy``.

Pulumi locks a stack only while a command runs on it (pkg/backend/diy/backend.go: Update, Refresh and Destroy call
``b.Lock``, Preview does not). An orchestrator run holds none while it checks, previews a layer before its ``up``, or
moves from one level to the next, so a second run started then passes every up-front check and the two take turns
layer by layer, each from its own commit and env file. The lease closes that: one object per env in the backend,
created only where none exists, renewed while the run lives, deleted at its end.

- ``s3://`` backends: ``<prefix>/.platform/runs/<env>.json`` created with ``PutObject`` ``If-None-Match: *``, renewed
  with ``If-Match: <ETag>`` and deleted with ``If-Match`` (botocore s3 ``PutObject``/``DeleteObject``: "Uploads the
  object only if the object key name does not already exist", otherwise 412 Precondition Failed; a concurrent
  conditional write gets 409 ConditionalRequestConflict). The deploy role may already write there (its state
  statement covers the backend's prefix: :func:`shared.deploy_role.state_statements`).
- ``file://`` backends: the same path below the folder, created with ``O_CREAT | O_EXCL``.
- Pulumi Cloud keeps no object of ours: there only its per-stack locks apply (README, "Two runs at once").

A run killed without its ``finally`` (a cancelled CI job, a closed laptop) leaves its lease behind: its holder stops
renewing it, and once it is :data:`STALE_AFTER_SECONDS` old the next run takes it over (conditionally: of two runs
doing so at once one wins) and says whose it was. A run that was stalled that long itself (a suspended laptop) finds
its lease gone at its next renewal and starts no further layer.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from shared.errors import PlatformError
from shared.orchestrate.locks import process_runs

LEASE_DIR = ".platform/runs"
#: how often a live run renews its lease
RENEW_SECONDS = 120.0
#: a lease not renewed for this long belongs to a run that no longer lives (eight renewals missed)
STALE_AFTER_SECONDS = 900.0


class EnvBusy(PlatformError):
    """Another run of the env holds its lease (exit 2: nothing was run)."""

    exit_code = 2


class LeaseStore(Protocol):
    """Where one env's lease lives; every write is conditional. A token names the version written or read."""

    where: str

    def create(self, body: bytes) -> str | None:
        """Write the lease where none exists; its token, or None where one exists."""

    def read(self) -> tuple[bytes, str] | None:
        """The lease and its token; None where there is none."""

    def replace(self, body: bytes, token: str) -> str | None:
        """Overwrite the lease if it is still the version ``token``; the new token, or None where it is not."""

    def delete(self, token: str) -> None:
        """Delete the lease if it is still the version ``token`` (else leave it: another run's)."""


class FileLeaseStore:
    """The lease of a ``file://`` backend: a file, created exclusively; its token is its content."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = str(path)

    def create(self, body: bytes) -> str | None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return None
        with os.fdopen(fd, "wb") as handle:
            handle.write(body)
        return body.decode()

    def read(self) -> tuple[bytes, str] | None:
        try:
            body = self.path.read_bytes()
        except FileNotFoundError:
            return None
        return body, body.decode(errors="replace")

    def replace(self, body: bytes, token: str) -> str | None:
        found = self.read()
        if found is None or found[1] != token:
            return None
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        temporary.write_bytes(body)
        os.replace(temporary, self.path)  # whole: a reader never sees half a lease
        return body.decode()

    def delete(self, token: str) -> None:
        found = self.read()
        if found is not None and found[1] == token:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()


#: S3 answers a conditional write that does not hold with these (botocore s3 PutObject IfNoneMatch/IfMatch)
_LOST = ("PreconditionFailed", "ConditionalRequestConflict", "412", "409")


class S3LeaseStore:
    """The lease of an ``s3://`` backend: an object written with S3's conditional writes; its token is the ETag."""

    def __init__(self, client: Any, bucket: str, key: str) -> None:
        self.client, self.bucket, self.key = client, bucket, key
        self.where = f"s3://{bucket}/{key}"

    @staticmethod
    def _code(error: Any) -> str:
        return str(error.response.get("Error", {}).get("Code", ""))

    def create(self, body: bytes) -> str | None:
        from botocore.exceptions import ClientError

        try:
            answer = self.client.put_object(Bucket=self.bucket, Key=self.key, Body=body, IfNoneMatch="*",
                                            ContentType="application/json")
        except ClientError as error:
            if self._code(error) in _LOST:
                return None
            raise
        return str(answer["ETag"])

    def read(self) -> tuple[bytes, str] | None:
        from botocore.exceptions import ClientError

        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.key)
        except ClientError as error:
            if self._code(error) in ("NoSuchKey", "404"):
                return None
            raise
        return answer["Body"].read(), str(answer["ETag"])

    def replace(self, body: bytes, token: str) -> str | None:
        from botocore.exceptions import ClientError

        try:
            answer = self.client.put_object(Bucket=self.bucket, Key=self.key, Body=body, IfMatch=token,
                                            ContentType="application/json")
        except ClientError as error:
            if self._code(error) in (*_LOST, "NoSuchKey", "404"):
                return None
            raise
        return str(answer["ETag"])

    def delete(self, token: str) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.key, IfMatch=token)
        except ClientError as error:
            if self._code(error) in (*_LOST, "NoSuchKey", "404"):
                return
            # a store without conditional deletes (S3 has them since September 2025; an S3-compatible one may not):
            # delete it where it is still the version this run wrote
            found = self.read()
            if found is None or found[1] != token:
                return
            self.client.delete_object(Bucket=self.bucket, Key=self.key)


def lease_store(backend_url: str, env_name: str, s3_client: Callable[[str], Any]) -> LeaseStore | None:
    """The env's lease on the backend ``backend_url``; None on Pulumi Cloud (or another backend kind)."""
    parts = urlsplit(backend_url)
    if parts.scheme == "file":
        root = Path(unquote(parts.netloc + parts.path)).expanduser()
        return FileLeaseStore(root / LEASE_DIR / f"{env_name}.json")
    if parts.scheme == "s3":
        prefix = parts.path.strip("/")
        key = f"{prefix + '/' if prefix else ''}{LEASE_DIR}/{env_name}.json"
        return S3LeaseStore(s3_client(backend_url), parts.netloc, key)
    return None


@dataclass(frozen=True)
class Holder:
    """Who holds a lease, as its object says."""

    run: str
    user: str
    host: str
    pid: int
    action: str
    layers: tuple[str, ...]
    started: float
    renewed: float
    ci: str = ""
    """The CI run's page, where the run is a GitHub Actions job."""

    def to_bytes(self) -> bytes:
        return json.dumps({"run": self.run, "user": self.user, "host": self.host, "pid": self.pid,
                           "action": self.action, "layers": list(self.layers), "started": _iso(self.started),
                           "renewed": _iso(self.renewed), "ci": self.ci}, indent=1, sort_keys=True).encode()

    @classmethod
    def parse(cls, body: bytes) -> Holder | None:
        """The holder a lease object names; None where it is not one (then it is judged by nothing but its age)."""
        try:
            data = json.loads(body)
            return cls(str(data["run"]), str(data["user"]), str(data["host"]), int(data["pid"]), str(data["action"]),
                       tuple(str(layer) for layer in data["layers"]), _epoch(data["started"]),
                       _epoch(data["renewed"]), str(data.get("ci") or ""))
        except (ValueError, KeyError, TypeError):
            return None

    def describe(self) -> str:
        where = f", {self.ci}" if self.ci else ""
        return (f"{self.action} of {', '.join(self.layers)} by {self.user}@{self.host} (pid {self.pid}{where}) "
                f"since {_iso(self.started)}, last renewed {_iso(self.renewed)}")


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _epoch(text: Any) -> float:
    return datetime.strptime(str(text), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def ci_run_page(environ: Mapping[str, str]) -> str:
    """The GitHub Actions run page of this job (its default variables), or ""."""
    names = ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")
    if not all(environ.get(name) for name in names):
        return ""
    server, repository, run = (environ[name] for name in names)
    return f"{server}/{repository}/actions/runs/{run}"


class RunLease:
    """The env's lease for one run: :meth:`acquire` before the run's checks, :meth:`release` at its end."""

    def __init__(self, store: LeaseStore, env_name: str, action: str, layers: Sequence[str], *,
                 environ: Mapping[str, str], clock: Callable[[], float] = time.time,
                 renew_seconds: float = RENEW_SECONDS) -> None:
        self.store = store
        self.env_name = env_name
        self.action = action
        self.layers = tuple(layers)
        self.environ = environ
        self.clock = clock
        self.renew_seconds = renew_seconds
        self.run_id = uuid.uuid4().hex
        self._token: str | None = None
        self._started = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._guard = threading.Lock()
        #: who took the lease over while this run held it (it stalled past STALE_AFTER_SECONDS); "" while it holds it
        self.lost = ""

    def _holder(self, now: float) -> Holder:
        user = self.environ.get("GITHUB_ACTOR") or getpass.getuser()
        return Holder(self.run_id, user, socket.gethostname(), os.getpid(), self.action, self.layers,
                      self._started, now, ci_run_page(self.environ))

    def _stale_why(self, found: Holder | None, now: float) -> str | None:
        """Why the lease found belongs to no live run, or None where it may."""
        if found is None:
            return "its object names no run"
        if found.host == socket.gethostname() and not process_runs(found.pid):
            return f"its process (pid {found.pid}) no longer runs on this machine"
        if now - found.renewed > STALE_AFTER_SECONDS:
            return f"not renewed for {int((now - found.renewed) // 60)} minutes"
        return None

    def acquire(self) -> list[str]:
        """Take the lease (EnvBusy where a live run holds it); notes for the user (a stale lease taken over)."""
        self._started = self.clock()
        for _ in range(3):  # a lease released, or taken over by another run, between our create and our read
            token = self.store.create(self._holder(self._started).to_bytes())
            if token is not None:
                self._token = token
                self._start_renewing()
                return []
            found = self.store.read()
            if found is None:
                continue
            body, token = found
            holder = Holder.parse(body)
            why = self._stale_why(holder, self.clock())
            if why is None:
                assert holder is not None
                raise EnvBusy(busy_refusal(self.env_name, self.action, holder, self.store.where))
            taken = self.store.replace(self._holder(self._started).to_bytes(), token)
            if taken is None:
                continue  # another run took it over first, or its holder renewed it: judge it again
            self._token = taken
            self._start_renewing()
            whose = holder.describe() if holder is not None else "a lease"
            return [f"took over the env's run lease ({self.store.where}) from {whose}: {why}"]
        raise EnvBusy(f"{self.action} {self.env_name} refused, nothing was run: its run lease "
                      f"({self.store.where}) changed hands three times while this run tried to take it")

    def _start_renewing(self) -> None:
        self._thread = threading.Thread(target=self._renew_loop, name=f"lease-{self.env_name}", daemon=True)
        self._thread.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.renew_seconds):
            self.renew()

    def renew(self) -> None:
        """Write the lease again with the time now; one no longer ours is :attr:`lost` (and never written again)."""
        with self._guard:
            if self._token is None or self.lost:
                return
            try:
                token = self.store.replace(self._holder(self.clock()).to_bytes(), self._token)
            except Exception:  # noqa: BLE001 - a renewal that fails (the network) is tried again at the next one
                return
            if token is None:
                found = self.store.read()
                holder = Holder.parse(found[0]) if found else None
                self.lost = holder.describe() if holder is not None else "(deleted)"
                self._token = None
                return
            self._token = token

    def release(self) -> None:
        """Stop renewing and delete the lease, unless another run took it over."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with self._guard:
            if self._token is not None:
                with contextlib.suppress(Exception):  # left behind, it goes stale and the next run takes it over
                    self.store.delete(self._token)
                self._token = None


def busy_refusal(env_name: str, action: str, holder: Holder, where: str) -> str:
    """Why a run is refused while another run of the env holds its lease."""
    return (f"{action} {env_name} refused, nothing was run: another run of {env_name} is under way: "
            f"{holder.describe()} (its lease: {where}). Two runs of one env would take turns layer by layer, each "
            f"from its own commit and env file. Wait for it to end and run again; a run that died without ending "
            f"(a cancelled job, a machine gone) stops renewing its lease, and {int(STALE_AFTER_SECONDS // 60)} "
            "minutes after its last renewal the next run takes it over")


def lease_note(store: LeaseStore | None, env_name: str, clock: Callable[[], float] = time.time) -> str | None:
    """For a run that takes no lease (a preview): a note where another run of the env holds it."""
    if store is None:
        return None
    try:
        found = store.read()
    except Exception:  # noqa: BLE001 - a note only: a preview changes nothing
        return None
    if found is None:
        return None
    holder = Holder.parse(found[0])
    if holder is None or clock() - holder.renewed > STALE_AFTER_SECONDS:
        return None
    return (f"another run of {env_name} is under way ({holder.describe()}): this preview may show its changes half "
            "made")
