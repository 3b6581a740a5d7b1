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
- ``file://`` backends: the same path below the folder, created whole with ``link()`` (which fails where one
  exists), each step under an ``flock``; where the file system has no hard links, ``O_CREAT | O_EXCL``.
- Pulumi Cloud keeps no object of ours: there only its per-stack locks apply (README, "Two runs at once").

A run is the process, or in GitHub Actions the workflow run (its id and attempt): the jobs of one run of dev's deploy
workflow, one per layer and two at once, share the lease: it lists the run's live jobs, each renews its own entry
(compare and swap), and the last to end deletes it (one whose lease was deleted under it creates it again).

A lease's age is the store's own measure where it has one: on S3, the object's ``Last-Modified`` against the ``Date``
of the answer that read it, both S3's clock, so a reader or holder whose clock is off (a laptop minutes fast would
otherwise take over a live CI run's lease) judges it alike; on a ``file://`` backend (one machine's folder), the
holder's ``renewed`` against the reader's clock. The sibling jobs' entries inside a lease are judged on the reader's
clock against theirs (a skewed sibling at worst has the lease deleted under it, and writes it again at its next
renewal). A run killed without its
``finally`` (a cancelled CI job: the runner kills the step's tree) leaves its lease behind: its holder stops renewing
it, and once it is :data:`STALE_AFTER_SECONDS` old the next run takes it over (conditionally: of two runs doing so
at once one wins) and says whose it was. A CI run waits that long for a lease rather than fail; elsewhere a run is
refused at once. A run stalled that long itself (a suspended laptop, a confirmation left unanswered: renewals pause
while the run waits for its user) finds its lease taken over before its next layer and starts no further layer.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, NamedTuple, Protocol
from urllib.parse import unquote, urlsplit

from shared.cli import login_name
from shared.errors import PlatformError
from shared.images import aws_error_code
from shared.orchestrate.locks import process_runs

LEASE_DIR = ".platform/runs"
#: how often a live run renews its lease
RENEW_SECONDS = 60.0
#: a lease not renewed for this long belongs to a run that no longer lives (five renewals missed)
STALE_AFTER_SECONDS = 300.0
#: how often a CI run waiting for the lease looks again
POLL_SECONDS = 20.0


class EnvBusy(PlatformError):
    """Another run of the env holds its lease (exit 2: nothing was run)."""

    exit_code = 2


class Found(NamedTuple):
    """The lease as read: its content, the token of that version, and how many seconds ago it was written as the store
    measures it (None where the store has no clock of its own: then the holder's ``renewed`` is judged)."""

    body: bytes
    token: str
    age: float | None = None


class LeaseStore(Protocol):
    """Where one env's lease lives; every write is conditional. A token names the version written or read."""

    where: str

    def create(self, body: bytes) -> str | None:
        """Write the lease where none exists; its token, or None where one exists."""

    def read(self) -> Found | None:
        """The lease, its token and its age; None where there is none."""

    def replace(self, body: bytes, token: str) -> str | None:
        """Overwrite the lease if it is still the version ``token``; the new token, or None where it is not."""

    def delete(self, token: str) -> None:
        """Delete the lease if it is still the version ``token`` (else leave it: another run's)."""


class FileLeaseStore:
    """The lease of a ``file://`` backend: a file, created whole (``link``: fails where one exists); its token is its
    content. Each step holds an exclusive ``flock`` on a side file, so that a read and the write it decides are one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = str(path)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(f".{self.path.name}.lock"), "a") as side:
            fcntl.flock(side, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(side, fcntl.LOCK_UN)

    def _write_whole(self, body: bytes) -> Path:
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}")
        temporary.write_bytes(body)
        return temporary

    def create(self, body: bytes) -> str | None:
        with self._locked():
            temporary = self._write_whole(body)
            try:
                os.link(temporary, self.path)  # whole or not at all: a reader never sees half a lease
            except FileExistsError:
                return None
            except OSError:  # no hard links here (some network and FUSE file systems): the flock keeps readers out
                try:
                    fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                except FileExistsError:
                    return None
                with os.fdopen(fd, "wb") as handle:
                    handle.write(body)
            finally:
                temporary.unlink()
        return body.decode()

    def _read(self) -> Found | None:
        try:
            body = self.path.read_bytes()
        except FileNotFoundError:
            return None
        return Found(body, body.decode(errors="replace"))

    def read(self) -> Found | None:
        with self._locked():
            return self._read()

    def replace(self, body: bytes, token: str) -> str | None:
        with self._locked():
            found = self._read()
            if found is None or found.token != token:
                return None
            os.replace(self._write_whole(body), self.path)
        return body.decode()

    def delete(self, token: str) -> None:
        with self._locked():
            found = self._read()
            if found is not None and found.token == token:
                self.path.unlink()


#: S3 answers a conditional write that does not hold with these (botocore s3 PutObject IfNoneMatch/IfMatch): 412, or
#: 409 where another conditional write was under way ("you should fetch the object's ETag and retry"): the caller
#: reads the object and judges again either way
_LOST = ("PreconditionFailed", "ConditionalRequestConflict", "412", "409")


class S3LeaseStore:
    """The lease of an ``s3://`` backend: an object written with S3's conditional writes; its token is the ETag."""

    def __init__(self, client: Any, bucket: str, key: str) -> None:
        self.client, self.bucket, self.key = client, bucket, key
        self.where = f"s3://{bucket}/{key}"

    def create(self, body: bytes) -> str | None:
        from botocore.exceptions import ClientError

        try:
            answer = self.client.put_object(Bucket=self.bucket, Key=self.key, Body=body, IfNoneMatch="*",
                                            ContentType="application/json")
        except ClientError as error:
            if aws_error_code(error) in _LOST:
                return None
            raise
        return str(answer["ETag"])

    def read(self) -> Found | None:
        from botocore.exceptions import ClientError

        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.key)
        except ClientError as error:
            if aws_error_code(error) in ("NoSuchKey", "404"):
                return None
            raise
        return Found(answer["Body"].read(), str(answer["ETag"]), _s3_age(answer))

    def replace(self, body: bytes, token: str) -> str | None:
        from botocore.exceptions import ClientError

        try:
            answer = self.client.put_object(Bucket=self.bucket, Key=self.key, Body=body, IfMatch=token,
                                            ContentType="application/json")
        except ClientError as error:
            if aws_error_code(error) in (*_LOST, "NoSuchKey", "404"):
                return None
            raise
        return str(answer["ETag"])

    def delete(self, token: str) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.key, IfMatch=token)
        except ClientError as error:
            if aws_error_code(error) in (*_LOST, "NoSuchKey", "404"):
                return
            if aws_error_code(error) not in ("NotImplemented", "InvalidArgument", "InvalidRequest", "501"):
                raise
            # a store without conditional deletes (S3 has them since September 2025; an S3-compatible one may not):
            # delete it where it is still the version this run wrote
            found = self.read()
            if found is None or found.token != token:
                return
            self.client.delete_object(Bucket=self.bucket, Key=self.key)


def _s3_age(answer: Mapping[str, Any]) -> float | None:
    """Seconds between the object's last write and the answer that read it, both on S3's clock (GetObject's
    ``LastModified`` and the HTTP ``Date`` header, one-second resolution); None where the answer lacks either."""
    date = (answer.get("ResponseMetadata") or {}).get("HTTPHeaders", {}).get("date")
    written = answer.get("LastModified")
    if not date or not isinstance(written, datetime):
        return None
    try:
        answered = parsedate_to_datetime(str(date))
    except (TypeError, ValueError):
        return None
    if answered.tzinfo is None or written.tzinfo is None:
        return None
    return max(0.0, (answered - written).total_seconds())


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
    jobs: tuple[tuple[str, float], ...] = ()
    """The run's jobs that hold the lease now (one; two where two jobs of one CI run overlap) and when each last
    renewed it: the lease is deleted once the last of them ends."""

    def to_bytes(self) -> bytes:
        return json.dumps({"run": self.run, "user": self.user, "host": self.host, "pid": self.pid,
                           "action": self.action, "layers": list(self.layers), "started": _iso(self.started),
                           "renewed": _iso(self.renewed), "ci": self.ci,
                           "jobs": {job: _iso(renewed) for job, renewed in self.jobs}},
                          indent=1, sort_keys=True).encode()

    @classmethod
    def parse(cls, body: bytes) -> Holder | None:
        """The holder a lease object names; None where it is not one (then it is judged by nothing but its age)."""
        try:
            data = json.loads(body)
            jobs = data.get("jobs") or {}
            return cls(str(data["run"]), str(data["user"]), str(data["host"]), int(data["pid"]), str(data["action"]),
                       tuple(str(layer) for layer in data["layers"]), _epoch(data["started"]),
                       _epoch(data["renewed"]), str(data.get("ci") or ""),
                       tuple(sorted((str(job), _epoch(renewed)) for job, renewed in dict(jobs).items())))
        except (ValueError, KeyError, TypeError, AttributeError):
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


def run_identity(environ: Mapping[str, str]) -> str:
    """What one run is: a GitHub Actions workflow run and attempt (its jobs share the lease), else this process."""
    if environ.get("GITHUB_ACTIONS") == "true" and environ.get("GITHUB_RUN_ID"):
        return (f"github:{environ.get('GITHUB_REPOSITORY', '')}:{environ['GITHUB_RUN_ID']}:"
                f"{environ.get('GITHUB_RUN_ATTEMPT', '1')}")
    return uuid.uuid4().hex


class _Busy(Exception):
    """The lease is another live run's (``holder``), or holds what this version cannot read (``holder`` None)."""

    def __init__(self, holder: Holder | None, body: bytes) -> None:
        super().__init__()
        self.holder, self.body = holder, body


class RunLease:
    """The env's lease for one run: :meth:`acquire` before the run's checks, :meth:`release` at its end."""

    def __init__(self, store: LeaseStore, env_name: str, action: str, layers: Sequence[str], *,
                 environ: Mapping[str, str], clock: Callable[[], float] = time.time,
                 renew_seconds: float = RENEW_SECONDS, wait_seconds: float | None = None,
                 sleep: Callable[[float], None] = time.sleep, say: Callable[[str], None] = lambda line: None) -> None:
        self.store = store
        self.env_name = env_name
        self.action = action
        self.layers = tuple(layers)
        self.environ = environ
        self.clock = clock
        self.renew_seconds = renew_seconds
        #: how long a run waits for another run's lease: a CI job (its next run queued behind a cancelled one, whose
        #: lease goes stale) waits until a dead run's would be taken over; a user at a terminal is told at once
        self.wait_seconds = (wait_seconds if wait_seconds is not None else
                             STALE_AFTER_SECONDS + 2 * POLL_SECONDS if environ.get("GITHUB_ACTIONS") == "true" else 0)
        self.sleep = sleep
        self.say = say
        self.run_id = run_identity(environ)
        #: this job of the run (a GitHub Actions job, else this process)
        self.job = f"{environ.get('GITHUB_JOB') or 'run'}@{socket.gethostname()}:{os.getpid()}"
        #: the other jobs of this run the lease named when last read
        self._others: dict[str, float] = {}
        self._token: str | None = None
        self._started = 0.0
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._thread: threading.Thread | None = None
        self._guard = threading.Lock()
        #: who took the lease over while this run held it (it stalled past STALE_AFTER_SECONDS); "" while it holds it
        self.lost = ""

    def _body(self, now: float, mine: bool = True) -> bytes:
        """The lease as this job writes it: the run's other live jobs, and this one (``mine``) renewed now."""
        user = self.environ.get("GITHUB_ACTOR") or login_name()
        jobs = {job: renewed for job, renewed in self._others.items()
                if job != self.job and now - renewed <= STALE_AFTER_SECONDS}
        if mine:
            jobs[self.job] = now
        return Holder(self.run_id, user, socket.gethostname(), os.getpid(), self.action, self.layers,
                      self._started, now, ci_run_page(self.environ), tuple(sorted(jobs.items()))).to_bytes()

    def _adopt(self, holder: Holder, token: str) -> None:
        """The lease read is this run's (a sibling job's write, or our own whose answer was lost): go on from it."""
        self._others = dict(holder.jobs)
        self._token = token

    def _stale_why(self, holder: Holder, age: float | None) -> str | None:
        """Why the lease found (its holder, its age as the store measures it) belongs to no live run, or None."""
        if holder.host == socket.gethostname() and not process_runs(holder.pid):
            return f"its process (pid {holder.pid}) no longer runs on this machine"
        idle = idle_seconds(holder, age, self.clock())
        if idle > STALE_AFTER_SECONDS:
            return f"not renewed for {int(idle // 60)} minutes"
        return None

    def _take(self) -> list[str]:
        """One attempt: the lease is this run's afterwards (notes: one taken over), or _Busy."""
        for _ in range(5):  # the lease changed between two steps (released, renewed, taken over, a 409): look again
            self._others = {}
            token = self.store.create(self._body(self.clock()))
            if token is not None:
                self._token = token
                return []
            found = self.store.read()
            if found is None:
                continue
            body, token, age = found
            holder = Holder.parse(body)
            if holder is None:
                raise _Busy(None, body)
            if holder.run == self.run_id:  # a job of this CI run holds it, or our own create whose answer was lost
                self._adopt(holder, token)
                self._write_locked()
                if self._token is not None:
                    return []
                self.lost = ""  # taken over by another run meanwhile: judge it again
                continue
            why = self._stale_why(holder, age)
            if why is None:
                raise _Busy(holder, body)
            self._others = {}
            taken = self.store.replace(self._body(self.clock()), token)
            if taken is not None:
                self._token = taken
                return [f"took over the env's run lease ({self.store.where}) from {holder.describe()}: {why}"]
        raise EnvBusy(f"{self.action} {self.env_name} refused, nothing was run: its run lease ({self.store.where}) "
                      "changed hands five times while this run tried to take it; run again")

    def acquire(self) -> list[str]:
        """Take the lease (EnvBusy where a live run holds it, after :attr:`wait_seconds`); notes for the user."""
        self._started = self.clock()
        deadline = self._started + self.wait_seconds
        told = ""
        while True:
            try:
                notes = self._take()
            except _Busy as busy:
                if busy.holder is None:
                    raise EnvBusy(unreadable_refusal(self.env_name, self.action, self.store.where, busy.body)) from None
                if self.clock() >= deadline:
                    raise EnvBusy(busy_refusal(self.env_name, self.action, busy.holder, self.store.where)) from None
                if told != busy.holder.run:
                    told = busy.holder.run
                    self.say(f"waiting for another run of {self.env_name} to end ({busy.holder.describe()}; its "
                             f"lease: {self.store.where}), at most until its lease goes stale")
                self.sleep(POLL_SECONDS)
                continue
            self._thread = threading.Thread(target=self._renew_loop, name=f"lease-{self.env_name}", daemon=True)
            self._thread.start()
            return notes

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.renew_seconds):
            if not self._paused.is_set():
                with contextlib.suppress(Exception):  # a renewal that fails (the network) is tried at the next one
                    self.renew()

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """No renewals while the run waits for its user: left unanswered, the lease goes stale and another run may
        take it over, which the renewal before this run's next layer finds."""
        self._paused.set()
        try:
            yield
        finally:
            self._paused.clear()

    def renew(self) -> None:
        """Write the lease again with the time now (re-created where a sibling job of this run deleted it); one held
        by another run now is :attr:`lost` (and never written again)."""
        with self._guard:
            if self._token is None or self.lost:
                return
            self._write_locked()

    def _write_locked(self) -> None:
        """Write this job's renewal over the version last read (compare and swap, merging the sibling jobs' entries
        read when it changed); the lease held by another run now is :attr:`lost`. The caller holds ``_guard`` or
        is the only thread."""
        for _ in range(5):
            assert self._token is not None
            token = self.store.replace(self._body(self.clock()), self._token)
            if token is not None:
                self._token = token
                return
            found = self.store.read()
            if found is None:  # deleted by a sibling job of this CI run at its end (no live job left in it then)
                self._others = {}
                token = self.store.create(self._body(self.clock()))
                if token is not None:
                    self._token = token
                    return
                continue
            holder = Holder.parse(found.body)
            if holder is not None and holder.run == self.run_id:
                self._adopt(holder, found.token)  # renewed by a sibling job, or our own write whose answer was lost
                continue
            self.lost = holder.describe() if holder is not None else "a lease this version cannot read"
            self._token = None
            return

    def release(self) -> None:
        """Stop renewing and delete the lease where it is still the version this run wrote last."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._guard:
            if self._token is not None:
                with contextlib.suppress(Exception):  # left behind, it goes stale and the next run takes it over
                    self._release_locked()
                self._token = None

    def _release_locked(self) -> None:
        """Take this job off the lease: delete it where no other job of the run is live, else write it without this
        job (both conditional on the version read)."""
        for _ in range(5):
            found = self.store.read()
            if found is None:
                return
            holder = Holder.parse(found.body)
            if holder is None or holder.run != self.run_id:
                return  # another run's now
            self._others = dict(holder.jobs)
            now = self.clock()
            if any(job != self.job and now - renewed <= STALE_AFTER_SECONDS for job, renewed in holder.jobs):
                if self.store.replace(self._body(now, mine=False), found.token) is not None:
                    return
                continue
            self.store.delete(found.token)
            if self.store.read() is None:
                return


def idle_seconds(holder: Holder, age: float | None, now: float) -> float:
    """How long the lease has gone unrenewed: the store's own age of it where it has one, else the holder's
    ``renewed`` against the reader's clock ``now``."""
    return age if age is not None else now - holder.renewed


def busy_refusal(env_name: str, action: str, holder: Holder, where: str) -> str:
    """Why a run is refused while another run of the env holds its lease."""
    return (f"{action} {env_name} refused, nothing was run: another run of {env_name} is under way: "
            f"{holder.describe()} (its lease: {where}). Two runs of one env would take turns layer by layer, each "
            f"from its own commit and env file. Wait for it to end and run again; a run that died without ending "
            f"(a cancelled job, a machine gone) stops renewing its lease, and {int(STALE_AFTER_SECONDS // 60)} "
            "minutes after its last renewal the next run takes it over")


def unreadable_refusal(env_name: str, action: str, where: str, body: bytes) -> str:
    """Why a run is refused where the env's lease holds what this version cannot read."""
    return (f"{action} {env_name} refused, nothing was run: its run lease {where} holds what this version cannot "
            f"read ({body[:60]!r}): another version of the orchestrator may be running {env_name}. Where no run of "
            "it is under way, delete that object and run again")


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
    holder = Holder.parse(found.body)
    if holder is None or idle_seconds(holder, found.age, clock()) > STALE_AFTER_SECONDS:
        return None
    return (f"another run of {env_name} is under way ({holder.describe()}): this preview may show its changes half "
            "made")
