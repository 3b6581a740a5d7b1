"""One run of an env at a time: the run lease in the state backend (shared/orchestrate/run_lease.py).

Pulumi locks a stack only while a command runs on it; between an orchestrator run's checks, previews and levels
another run of the env would pass every check and the two would take turns layer by layer. The lease is held for the
whole run: a second `up`, `refresh` or `destroy` of the env is refused before anything (exit 2), a lease its holder
stopped renewing (a killed job) is taken over, and a run whose lease was taken over starts no further layer.
"""

from __future__ import annotations

import io
import json
import os
import socket
from collections.abc import Callable
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from shared import REPO_ROOT
from shared.orchestrate.automation import AutomationRunner
from shared.orchestrate.cli import main
from shared.orchestrate.run_lease import (
    LEASE_DIR,
    STALE_AFTER_SECONDS,
    EnvBusy,
    FileLeaseStore,
    Found,
    Holder,
    RunLease,
    S3LeaseStore,
    lease_note,
    lease_store,
)
from tests.aws_helpers import ReleasedEverywhere
from tests.test_orchestrate_automation import FakeCli, fake_cli, management_api  # noqa: F401

NOW = 1_780_000_000.0  # 2026-05-28T20:26:40Z
ENVIRON = {"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "acme/ml-platform",
           "GITHUB_RUN_ID": "42", "GITHUB_ACTOR": "deploy-bot"}


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def lease(store: Any, clock: Callable[[], float] | None = None, environ: dict[str, str] | None = None) -> RunLease:
    # renewals only when a test asks (renew_seconds: longer than any test)
    return RunLease(store, "dev", "up", ("network", "compute"), environ=environ or {}, clock=clock or Clock(),
                    renew_seconds=3600)


def other_holder(renewed: float = NOW, host: str = "ci-runner-7", pid: int = 4242) -> bytes:
    return Holder("other", "alice", host, pid, "up", ("network",), renewed - 60, renewed,
                  "https://github.com/acme/ml-platform/actions/runs/41").to_bytes()


def test_a_run_takes_the_lease_and_gives_it_back(tmp_path: Path) -> None:
    store = FileLeaseStore(tmp_path / "dev.json")
    held = lease(store, environ=ENVIRON)
    assert held.acquire() == []
    holder = Holder.parse(store.path.read_bytes())
    assert holder is not None and holder.user == "deploy-bot" and holder.layers == ("network", "compute")
    assert holder.ci == "https://github.com/acme/ml-platform/actions/runs/42" and holder.pid == os.getpid()
    held.release()
    assert not store.path.exists()


def test_a_second_run_is_refused_naming_the_first(tmp_path: Path) -> None:
    store = FileLeaseStore(tmp_path / "dev.json")
    first = lease(store, environ=ENVIRON)
    first.acquire()
    with pytest.raises(EnvBusy) as refused:
        lease(store).acquire()  # a process of its own: a run on a laptop
    assert refused.value.exit_code == 2
    message = str(refused.value)
    assert message.startswith("up dev refused, nothing was run: another run of dev is under way: up of network, "
                              "compute by deploy-bot@")
    assert "actions/runs/42" in message and "5 minutes after its last renewal" in message
    first.release()
    second = lease(store)
    assert second.acquire() == []  # free again once the first ended
    second.release()


def test_a_lease_its_holder_stopped_renewing_is_taken_over(tmp_path: Path) -> None:
    store = FileLeaseStore(tmp_path / "dev.json")
    store.path.write_bytes(other_holder(renewed=NOW - STALE_AFTER_SECONDS - 60))
    taker = lease(store)
    (note,) = taker.acquire()
    assert "took over the env's run lease" in note and "alice@ci-runner-7" in note
    assert "not renewed for 6 minutes" in note
    assert Holder.parse(store.path.read_bytes()).run == taker.run_id  # type: ignore[union-attr]
    taker.release()


def test_a_live_holder_on_another_machine_is_waited_for_however_old_the_run(tmp_path: Path) -> None:
    store = FileLeaseStore(tmp_path / "dev.json")
    store.path.write_bytes(other_holder(renewed=NOW - STALE_AFTER_SECONDS + 60))
    with pytest.raises(EnvBusy):
        lease(store).acquire()


def test_a_lease_of_a_process_gone_from_this_machine_is_taken_over_at_once(tmp_path: Path) -> None:
    store = FileLeaseStore(tmp_path / "dev.json")
    gone = 2**22 + 12345  # above any pid_max a Linux kernel gives out
    store.path.write_bytes(other_holder(host=socket.gethostname(), pid=gone))
    taker = lease(store)
    (note,) = taker.acquire()
    assert f"its process (pid {gone}) no longer runs on this machine" in note
    taker.release()


def test_a_lease_this_version_cannot_read_is_refused_not_taken_over(tmp_path: Path) -> None:
    """Another version of the orchestrator may be running the env: a run refuses rather than guess."""
    store = FileLeaseStore(tmp_path / "dev.json")
    store.path.write_bytes(b"{not json")
    with pytest.raises(EnvBusy, match="holds what this version cannot read"):
        lease(store).acquire()
    assert store.path.read_bytes() == b"{not json"


def test_renewal_moves_the_time_and_a_lease_taken_over_meanwhile_is_lost(tmp_path: Path) -> None:
    store = FileLeaseStore(tmp_path / "dev.json")
    clock = Clock()
    held = lease(store, clock)
    held.acquire()
    clock.now += 120
    held.renew()
    assert Holder.parse(store.path.read_bytes()).renewed == NOW + 120  # type: ignore[union-attr]
    # the holder stalled (a suspended laptop); another run took the lease over
    store.path.write_bytes(other_holder(renewed=clock.now + 1000))
    clock.now += 1000
    held.renew()
    assert held.lost.startswith("up of network by alice@ci-runner-7")
    held.release()
    assert store.path.exists()  # the other run's lease stays


def test_a_preview_only_notes_a_live_lease(tmp_path: Path) -> None:
    store = FileLeaseStore(tmp_path / "dev.json")
    assert lease_note(store, "dev", Clock()) is None
    store.path.write_bytes(other_holder())
    assert "another run of dev is under way (up of network by alice@ci-runner-7" in str(
        lease_note(store, "dev", Clock()))
    store.path.write_bytes(other_holder(renewed=NOW - STALE_AFTER_SECONDS - 1))
    assert lease_note(store, "dev", Clock()) is None  # a dead run's: nothing under way


def test_where_the_lease_lives_on_each_backend(tmp_path: Path) -> None:
    local = lease_store((tmp_path / "state").as_uri(), "dev", lambda url: None)
    assert isinstance(local, FileLeaseStore) and local.path == tmp_path / "state" / LEASE_DIR / "dev.json"
    remote = lease_store("s3://acme-state/ml-platform?region=eu-west-1", "prod", lambda url: "client")
    assert isinstance(remote, S3LeaseStore)
    assert (remote.bucket, remote.key) == ("acme-state", f"ml-platform/{LEASE_DIR}/prod.json")
    assert lease_store("https://api.pulumi.com", "prod", lambda url: None) is None


def test_s3_conditional_writes_hold_one_lease(moto_aws: None) -> None:
    """S3 PutObject with If-None-Match: * creates only where no object is (412 otherwise); If-Match overwrites and
    deletes only the version read (botocore s3 PutObject, DeleteObject)."""
    client = boto3.client("s3", region_name="eu-west-1")
    client.create_bucket(Bucket="acme-state", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    store = S3LeaseStore(client, "acme-state", f"ml-platform/{LEASE_DIR}/dev.json")
    token = store.create(b"first")
    assert token is not None and store.create(b"second") is None
    assert store.replace(b"stale", '"0123456789abcdef0123456789abcdef"') is None
    renewed = store.replace(b"renewed", token)
    assert renewed is not None and read_back(store) == (b"renewed", renewed)
    store.delete(token)  # a version no longer there: left alone
    assert read_back(store) == (b"renewed", renewed)
    store.delete(renewed)
    assert store.read() is None


def read_back(store: Any) -> tuple[bytes, str] | None:
    found = store.read()
    return None if found is None else (found.body, found.token)


def s3_answering_at(offset: Callable[[], float]) -> Any:
    """A moto S3 client whose GetObject answers carry an HTTP ``Date`` (as S3's do; moto's lack it): the object's
    ``LastModified`` plus ``offset()`` seconds, i.e. S3's clock that long after the object's last write."""
    from email.utils import format_datetime

    client = boto3.client("s3", region_name="eu-west-1")
    client.create_bucket(Bucket="acme-state", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    real_get = client.get_object

    def get_object(**kwargs: Any) -> Any:
        answer = real_get(**kwargs)
        answered = answer["LastModified"].astimezone(UTC) + timedelta(seconds=offset())
        answer["ResponseMetadata"]["HTTPHeaders"]["date"] = format_datetime(answered, usegmt=True)
        return answer

    client.get_object = get_object
    return client


def test_on_s3_a_lease_is_as_old_as_s3_says_whatever_the_holder_s_clock(moto_aws: None) -> None:
    """A holder's clock minutes slow (or the reader's fast) makes a live lease look stale by its ``renewed``, and a
    holder's clock fast makes a dead one look live: on S3 the age is the object's Last-Modified against the answer's
    Date, both S3's clock."""
    since_write = [30.0]
    client = s3_answering_at(lambda: since_write[0])
    store = S3LeaseStore(client, "acme-state", f"{LEASE_DIR}/dev.json")
    # written 30 s ago by S3's clock; its holder's clock says 20 minutes ago
    assert store.create(other_holder(renewed=NOW - 1200)) is not None
    found = store.read()
    assert found is not None and found.age == 30.0
    with pytest.raises(EnvBusy, match="another run of dev is under way"):
        lease(store).acquire()
    assert "another run of dev is under way" in str(lease_note(store, "dev", Clock()))
    # written 10 minutes ago by S3's clock; its holder's clock ran fast and says just now
    since_write[0] = 600.0
    store.replace(other_holder(renewed=NOW + 60), found.token)
    assert lease_note(store, "dev", Clock()) is None
    taker = lease(store)
    (note,) = taker.acquire()
    assert "took over the env's run lease" in note and "not renewed for 10 minutes" in note


def test_an_s3_answer_without_a_date_leaves_the_age_to_the_holder_s_clock(moto_aws: None) -> None:
    client = boto3.client("s3", region_name="eu-west-1")
    client.create_bucket(Bucket="acme-state", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    store = S3LeaseStore(client, "acme-state", f"{LEASE_DIR}/dev.json")
    store.create(other_holder(renewed=NOW - STALE_AFTER_SECONDS - 60))
    found = store.read()
    assert found is not None and found.age is None  # moto sends no Date header
    (note,) = lease(store).acquire()
    assert "not renewed for 6 minutes" in note


def test_s3_lease_through_a_run(moto_aws: None) -> None:
    client = boto3.client("s3", region_name="eu-west-1")
    client.create_bucket(Bucket="acme-state", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    store = S3LeaseStore(client, "acme-state", f"{LEASE_DIR}/dev.json")
    first = lease(store)
    first.acquire()
    with pytest.raises(EnvBusy):
        lease(store).acquire()
    first.release()
    assert store.read() is None


# -- through the orchestrator (the fake CLI on a file backend) --------------------------------------------------


def _run(argv: list[str], tmp_path: Path) -> tuple[int, str]:
    out = io.StringIO()
    runner = AutomationRunner(policy_config_dir=tmp_path / "policy-config")
    return main(argv, runner=runner, out=out, images=ReleasedEverywhere()), out.getvalue()


def _backend_lease(tmp_path: Path) -> Path:
    return tmp_path / "backend" / LEASE_DIR / "dev.json"


def test_an_up_while_another_run_of_the_env_holds_the_lease_runs_nothing(
        fake_cli: FakeCli, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    held = _backend_lease(tmp_path)
    held.parent.mkdir(parents=True)
    live = Holder("other", "alice", "ci-runner-7", 4242, "destroy", ("compute",), 0, 0).to_bytes()
    held.write_bytes(live.replace(b"1970-01-01T00:00:00Z", datetime_now()))
    code, output = _run(["up", "dev", "--yes", "--local-state"], tmp_path)
    assert code == 2, output
    assert fake_cli.operations("up") == [] and fake_cli.operations("preview") == []
    assert "another run of dev is under way: destroy of compute by alice@ci-runner-7" in capsys.readouterr().err
    assert held.read_bytes() != b"" and b'"alice"' in held.read_bytes()  # theirs, untouched


def test_a_run_leaves_no_lease_behind_and_a_preview_takes_none(
        fake_cli: FakeCli, tmp_path: Path) -> None:  # noqa: F811
    code, output = _run(["up", "dev", "--yes", "--local-state", "--layers", "network", "--exact"], tmp_path)
    assert code == 0, output
    assert not _backend_lease(tmp_path).exists()
    held = _backend_lease(tmp_path)
    held.write_bytes(Holder("other", "alice", "ci-runner-7", 4242, "up", ("compute",), 0, 0).to_bytes().replace(
        b"1970-01-01T00:00:00Z", datetime_now()))
    code, output = _run(["preview", "dev", "--layers", "network", "--exact"], tmp_path)
    assert code == 0, output
    assert "note: another run of dev is under way (up of compute by alice@ci-runner-7" in output


def test_a_failing_check_after_the_lease_still_gives_it_back(
        fake_cli: FakeCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    from shared.errors import ConfigError

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise ConfigError("environments/dev.yaml", "region", "is not where the stacks are")

    monkeypatch.setattr("shared.orchestrate.automation.check_identity", refuse)
    code, output = _run(["up", "dev", "--yes", "--local-state"], tmp_path)
    assert code == 2, output
    assert not _backend_lease(tmp_path).exists()


class _Unwritable:
    """A RunLease whose store fails as a backend that answers nothing may (a dropped connection, AccessDenied)."""

    lost = ""

    def __init__(self, store: Any, *args: Any, **kwargs: Any) -> None:
        if store is None:
            raise AssertionError("a file backend has a store")

    def acquire(self) -> list[str]:
        raise OSError("the backend did not answer")

    def release(self) -> None:
        return None


def test_an_up_whose_lease_cannot_be_taken_runs_nothing(
        fake_cli: FakeCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
        capsys: pytest.CaptureFixture[str]) -> None:
    """Run without the lease, a second run of the env could interleave its layers with this one's unseen (review-conc
    F2): refused, exit 2, nothing run, saying why and how to run without it on a store that takes none."""
    monkeypatch.setattr("shared.orchestrate.automation.RunLease", _Unwritable)
    code, output = _run(["up", "dev", "--yes", "--local-state"], tmp_path)
    assert code == 2, output
    assert fake_cli.operations("up") == [] and fake_cli.operations("preview") == []
    err = capsys.readouterr().err
    assert ("up dev refused, nothing was run: the env's run lease could not be taken on file://" in err
            and "(OSError: the backend did not answer)" in err and "set PLATFORM_RUN_LEASE=off" in err), err
    # a preview takes none: it reads the lease only, and runs
    code, output = _run(["preview", "dev", "--layers", "network", "--exact"], tmp_path)
    assert code == 0, output


def test_an_up_told_to_run_without_the_lease_takes_none_and_says_so(
        fake_cli: FakeCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setattr("shared.orchestrate.automation.RunLease", _Unwritable)
    monkeypatch.setenv("PLATFORM_RUN_LEASE", "off")
    code, output = _run(["up", "dev", "--yes", "--local-state", "--layers", "network", "--exact"], tmp_path)
    assert code == 0, output
    assert "up dev runs without the env's run lease (PLATFORM_RUN_LEASE=off)" in output
    assert not _backend_lease(tmp_path).exists()


def datetime_now() -> bytes:
    from datetime import UTC, datetime

    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ").encode()


def test_the_lease_file_is_plain_json(tmp_path: Path) -> None:
    store = FileLeaseStore(tmp_path / "dev.json")
    held = lease(store, environ=ENVIRON)
    held.acquire()
    content = json.loads(store.path.read_text())
    assert sorted(content) == ["action", "ci", "host", "jobs", "layers", "pid", "renewed", "run", "started", "user"]
    assert content["started"] == "2026-05-28T20:26:40Z"
    held.release()
    documented = (REPO_ROOT / "README.md").read_text().split("**Run lease JSON**", 1)[1].split("\n\n", 1)[0]
    assert all(f"`{key}`" in documented for key in content), documented


def test_a_store_without_conditional_deletes_still_gets_its_lease_back(moto_aws: None) -> None:
    from botocore.exceptions import ClientError

    client = boto3.client("s3", region_name="eu-west-1")
    client.create_bucket(Bucket="acme-state", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    real_delete = client.delete_object

    def no_if_match(**kwargs: Any) -> Any:
        if "IfMatch" in kwargs:
            raise ClientError({"Error": {"Code": "NotImplemented", "Message": "If-Match"}}, "DeleteObject")
        return real_delete(**kwargs)

    client.delete_object = no_if_match
    store = S3LeaseStore(client, "acme-state", f"{LEASE_DIR}/dev.json")
    token = store.create(b"ours")
    assert token is not None
    store.delete('"another version"')
    assert store.read() is not None  # not the version this run wrote: left
    store.delete(token)
    assert store.read() is None


def ci_environ(run: str = "42", attempt: str = "1", job: str = "up-network") -> dict[str, str]:
    return {**ENVIRON, "GITHUB_ACTIONS": "true", "GITHUB_RUN_ID": run, "GITHUB_RUN_ATTEMPT": attempt,
            "GITHUB_JOB": job}


def test_the_jobs_of_one_ci_run_share_the_lease_until_the_last_ends(tmp_path: Path) -> None:
    """Dev's deploy workflow runs discovery's and broker's jobs at once, each its own `nox -s up`: one run, whose
    lease stays while either job runs."""
    store = FileLeaseStore(tmp_path / "dev.json")
    discovery = lease(store, environ=ci_environ(job="up-discovery"))
    broker = lease(store, environ=ci_environ(job="up-broker"))
    assert discovery.acquire() == [] and broker.acquire() == []
    holder = Holder.parse(store.path.read_bytes())
    assert holder is not None and [job.split("@")[0] for job, _ in holder.jobs] == ["up-broker", "up-discovery"]
    discovery.release()  # broker's job still runs: the lease stays, without discovery's job
    holder = Holder.parse(store.path.read_bytes())
    assert holder is not None and [job.split("@")[0] for job, _ in holder.jobs] == ["up-broker"]
    other = lease(store, environ=ci_environ(run="43"))
    other.wait_seconds = 0
    with pytest.raises(EnvBusy):
        other.acquire()  # another workflow run: refused (after its wait) while broker's job runs
    broker.renew()
    assert not broker.lost
    broker.release()
    assert not store.path.exists()  # the last job of the run gave it back


def test_a_sibling_job_that_died_holding_the_lease_neither_keeps_it_nor_is_written_again(tmp_path: Path) -> None:
    """A cancelled matrix job is killed without its release: its entry goes stale. The last live job's release
    deletes the lease (the env's next run would otherwise wait for a run nobody runs), and a renewal drops the dead
    job from the entries it writes."""
    store, clock = FileLeaseStore(tmp_path / "dev.json"), Clock()
    discovery = lease(store, clock, environ=ci_environ(job="up-discovery"))
    broker = lease(store, clock, environ=ci_environ(job="up-broker"))
    assert discovery.acquire() == [] and broker.acquire() == []
    clock.now += STALE_AFTER_SECONDS + 100  # discovery's job died; broker's goes on and renews
    broker.renew()
    holder = Holder.parse(store.path.read_bytes())
    assert holder is not None and [job.split("@")[0] for job, _ in holder.jobs] == ["up-broker"]
    clock.now += 10
    broker.release()
    assert not store.path.exists()

    # the same without a renewal in between: the dead job's entry is still in the lease when the last one releases
    discovery = lease(store, clock, environ=ci_environ(run="44", job="up-discovery"))
    broker = lease(store, clock, environ=ci_environ(run="44", job="up-broker"))
    assert discovery.acquire() == [] and broker.acquire() == []
    clock.now += STALE_AFTER_SECONDS + 100
    broker.release()  # deleted, not written again without this job for a dead one
    assert not store.path.exists()


def test_a_job_whose_sibling_deleted_the_lease_holds_it_again(tmp_path: Path) -> None:
    store = FileLeaseStore(tmp_path / "dev.json")
    broker = lease(store, environ=ci_environ(job="up-broker"))
    broker.acquire()
    store.path.unlink()  # a sibling that did not know of it (an older version's release)
    broker.renew()
    assert not broker.lost and Holder.parse(store.path.read_bytes()).run == broker.run_id  # type: ignore[union-attr]
    broker.release()


def test_a_ci_run_waits_for_a_dead_runs_lease_to_go_stale_and_takes_it_over(tmp_path: Path) -> None:
    """A cancelled job is killed without its finally; the next run of the env's concurrency group starts at once."""
    store = FileLeaseStore(tmp_path / "dev.json")
    store.path.write_bytes(other_holder(renewed=NOW - 60))
    clock, said = Clock(), list[str]()

    def sleep(seconds: float) -> None:
        clock.now += seconds

    waiting = RunLease(store, "dev", "up", ("network",), environ=ci_environ(run="43"), clock=clock,
                       renew_seconds=3600, sleep=sleep, say=said.append)
    (note,) = waiting.acquire()
    assert "took over" in note and len(said) == 1 and "waiting for another run of dev to end" in said[0]
    assert NOW + STALE_AFTER_SECONDS - 60 < clock.now <= NOW + waiting.wait_seconds
    waiting.release()


def test_a_create_whose_answer_was_lost_is_this_runs_own_lease(tmp_path: Path) -> None:
    """botocore retries a PutObject whose answer was lost; the retry gets 412 against the object the first wrote."""
    store = FileLeaseStore(tmp_path / "dev.json")
    held = lease(store)

    class LostAnswer:
        where = store.where

        def __init__(self) -> None:
            self.first = True

        def create(self, body: bytes) -> str | None:
            token = store.create(body)
            if self.first:
                self.first = False
                return None  # written, but the answer never came
            return token

        def read(self) -> Found | None:
            return store.read()

        def replace(self, body: bytes, token: str) -> str | None:
            return store.replace(body, token)

        def delete(self, token: str) -> None:
            store.delete(token)

    held.store = LostAnswer()
    assert held.acquire() == []
    held.renew()
    assert not held.lost
    held.release()
    assert not store.path.exists()


def test_renewals_pause_while_the_run_waits_for_its_user(tmp_path: Path) -> None:
    store = FileLeaseStore(tmp_path / "dev.json")
    clock = Clock()
    held = RunLease(store, "dev", "up", ("network",), environ={}, clock=clock, renew_seconds=0.01)
    held.acquire()
    with held.paused():
        before = store.path.read_bytes()
        clock.now += 120
        import time

        time.sleep(0.1)
        assert store.path.read_bytes() == before
    held.release()


def test_a_run_whose_lease_was_taken_over_starts_no_further_layer(
        fake_cli: FakeCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """The run stalled past the lease's staleness (a suspended laptop) and another run took the lease over: the
    renewal before its next layer finds it."""
    prepare = AutomationRunner.prepare

    def prepared_then_taken_over(self: AutomationRunner, *args: Any) -> Any:
        notes = prepare(self, *args)
        live = Holder("other", "alice", "ci-runner-7", 4242, "up", ("compute",), 0, 0).to_bytes()
        _backend_lease(tmp_path).write_bytes(live.replace(b"1970-01-01T00:00:00Z", datetime_now()))
        return notes

    monkeypatch.setattr(AutomationRunner, "prepare", prepared_then_taken_over)
    code, output = _run(["up", "dev", "--yes", "--local-state"], tmp_path)
    assert code == 1, output
    assert fake_cli.operations("up") == []
    assert "was taken over by up of compute by alice@ci-runner-7" in output
    assert b'"alice"' in _backend_lease(tmp_path).read_bytes()  # theirs: not deleted at this run's end


def test_the_lease_is_released_while_the_signal_handlers_still_stand() -> None:
    """A SIGTERM sent to the process group arrives twice; the second, during the release, must not kill the process
    with the lease left behind (signals_interrupt is entered once, around the whole run, and nested uses share it)."""
    import signal

    from tests.test_orchestrate import RecordingRunner
    from tests.test_orchestrate import run as orchestrate

    seen: list[Any] = []
    before = signal.getsignal(signal.SIGTERM)  # another test's, or the default

    class Finishing(RecordingRunner):
        def finish(self) -> None:
            seen.append(signal.getsignal(signal.SIGTERM))

    code, output = orchestrate(["up", "dev", "--yes", "--layers", "network", "--exact"], Finishing())
    assert code == 0, output
    assert len(seen) == 1 and seen[0] not in (before, signal.SIG_DFL, signal.SIG_IGN, None)
    assert signal.getsignal(signal.SIGTERM) is before  # restored after the run
