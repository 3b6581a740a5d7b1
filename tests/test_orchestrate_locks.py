"""Two runs of one env at once: another run's stack lock stops a run before any layer, not half-way
(shared/orchestrate/locks.py), and a lock met mid-run says who holds it and not to `pulumi cancel` a live run.

The runner is the real one over the fake `pulumi` of test_orchestrate_automation.py, which, as a self-managed
backend does, refuses up, refresh and destroy of a stack while another run's lock file is in the backend
(pkg/backend/diy/lock.go). The S3 reader runs against moto.
"""

from __future__ import annotations

import io
import json
import os
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from shared.orchestrate.automation import AutomationRunner
from shared.orchestrate.cli import main
from shared.orchestrate.locks import (
    StackLock,
    backend_s3_client,
    cancel_command,
    file_locks,
    lock_holder,
    read_locks,
    s3_locks,
)
from tests.aws_helpers import ReleasedEverywhere
from tests.test_orchestrate_automation import FakeCli, fake_cli, management_api, option_values, run

__all__ = ["fake_cli", "management_api"]  # fixtures

HOLDER = {"pid": 4242, "username": "runner", "hostname": "ci-job-17", "timestamp": "2026-12-01T15:00:00Z"}
STATE_WRITES = (["up"], ["refresh"], ["destroy"])


def hold_lock(tmp_path: Path, layer: str, env: str, org: str = "organization") -> Path:
    """Another run's lock on ``<org>/<layer>/<env>`` in the tests' file:// backend (tmp_path/backend)."""
    folder = tmp_path / "backend" / ".pulumi" / "locks" / org / layer / env
    folder.mkdir(parents=True)
    lock = folder / "0b8c6f2e-5a7d-4c1e-9f3a-2d6b8e1c4a70.json"
    lock.write_text(json.dumps(HOLDER))
    return lock


def engine_runs(cli: FakeCli) -> list[list[str]]:
    return [c["args"] for c in cli.calls() if c["event"] == "call" and c["args"][:1] in STATE_WRITES]


def test_an_up_meeting_another_runs_lock_is_refused_before_any_layer_naming_who_holds_it(
        fake_cli: FakeCli, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Layer by layer, network and broker would be updated and the run would stop at discovery: half an env."""
    fake_cli.create_stacks("dev")
    hold_lock(tmp_path, "discovery", "dev")
    code, output = run(["up", "dev", "--yes", "--local-state"], tmp_path)
    error = capsys.readouterr().err
    assert code == 2, output
    assert engine_runs(fake_cli) == []
    assert "up dev refused, nothing was run" in error
    assert "organization/discovery/dev: runner@ci-job-17 (pid 4242) since 2026-12-01T15:00:00Z" in error
    assert "/.pulumi/locks/organization/discovery/dev/0b8c6f2e" in error
    # A self-managed backend's cancel of a stack it does not hold deletes nothing and says nothing
    # (pkg/backend/diy/backend.go CancelCurrentUpdate): the command names the backend the lock is on.
    backend = (tmp_path / "backend").as_uri()
    assert (f"`PULUMI_BACKEND_URL={backend} pulumi cancel --stack organization/discovery/dev --yes` "
            "in stacks/discovery") in error
    assert "Only if it is dead" in error and "Traceback" not in error


def test_refresh_and_destroy_take_the_lock_too(fake_cli: FakeCli, tmp_path: Path) -> None:
    fake_cli.create_stacks("dev")
    hold_lock(tmp_path, "network", "dev")
    code, output = run(["refresh", "dev", "--yes", "--local-state"], tmp_path)
    assert code == 2, output
    assert engine_runs(fake_cli) == []


@pytest.mark.parametrize("argv", [["refresh", "dev", "--preview-only"], ["destroy", "dev", "--preview-only"]])
def test_a_preview_only_refresh_or_destroy_takes_no_lock_and_runs_beside_another_run(
        fake_cli: FakeCli, tmp_path: Path, argv: list[str]) -> None:
    """pkg/backend/diy/backend.go: Refresh and Destroy with PreviewOnly apply as a dry run before (without) b.Lock,
    so the CLI runs them beside another run's lock; refusing them would block a read-only run for nothing."""
    fake_cli.create_stacks("dev")
    hold_lock(tmp_path, "network", "dev")
    code, output = run(argv, tmp_path)
    assert code == 0, output
    assert [args[0] for args in engine_runs(fake_cli)] == [argv[0]] * 6


def test_a_preview_takes_no_lock_and_runs_beside_another_run(fake_cli: FakeCli, tmp_path: Path) -> None:
    hold_lock(tmp_path, "network", "dev")
    code, output = run(["preview", "dev"], tmp_path)
    assert code == 0, output


def test_a_lock_taken_after_the_check_fails_its_layer_saying_who_holds_it_and_skips_its_readers(
        fake_cli: FakeCli, tmp_path: Path) -> None:
    """A run that starts between the check and the layer (or a backend whose locks cannot be read here): the layer
    fails at its lock with nothing of it changed, what reads it is skipped, and the summary does not repeat the CLI's
    bare "delete the lock file with `pulumi cancel`", which would release the live run's lock."""
    fake_cli.create_stacks("dev")
    hold_lock(tmp_path, "discovery", "dev")
    out = io.StringIO()
    runner = AutomationRunner(policy_config_dir=tmp_path / "policy-config", lock_reader=lambda url, stack: [])
    code = main(["up", "dev", "--yes", "--local-state"], runner=runner, out=out, images=ReleasedEverywhere())
    output = out.getvalue()
    assert code == 1, output
    ran = {c["layer"] for c in fake_cli.operations("up")}
    assert "network" in ran and "mesh" not in ran and "compute" not in ran
    (row,) = [line for line in output.splitlines() if line.startswith("[discovery") and "FAILED" in line]
    assert "locked by another run (held by runner@ci-job-17 (pid 4242) at 2026-12-01T15:00:00Z)" in row
    backend = (tmp_path / "backend").as_uri()
    assert "changed nothing" in row and (f"`PULUMI_BACKEND_URL={backend} pulumi cancel --stack "
                                         "organization/discovery/dev --yes` in stacks/discovery only if it is dead "
                                         "(it deletes every lock of the stack") in row


def test_the_locks_of_a_file_backend_are_read_from_its_folder(tmp_path: Path) -> None:
    url = (tmp_path / "backend").as_uri()
    assert read_locks(url, "organization/network/dev") == []
    lock = hold_lock(tmp_path, "network", "dev")
    assert read_locks(url, "organization/network/dev") == [
        StackLock(f"{url}/.pulumi/locks/organization/network/dev/{lock.name}",
                  "runner@ci-job-17 (pid 4242) since 2026-12-01T15:00:00Z")]
    assert read_locks(url, "organization/network/staging") == []
    assert lock_holder(b"<html>") == "a run whose lock file is not JSON"


def test_pulumi_cloud_keeps_its_locks_and_other_storage_is_said_unread() -> None:
    assert read_locks("https://api.pulumi.com", "acme/network/dev") is None
    assert isinstance(read_locks("gs://bucket/state", "organization/network/dev"), str)


def test_the_locks_of_an_s3_backend_are_read_under_its_prefix(moto_aws: None) -> None:
    s3 = boto3.client("s3", region_name="eu-west-1")
    s3.create_bucket(Bucket="acme-pulumi-state", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    key = "platform/.pulumi/locks/organization/network/staging/7d1e.json"
    s3.put_object(Bucket="acme-pulumi-state", Key=key, Body=json.dumps(HOLDER).encode())
    s3.put_object(Bucket="acme-pulumi-state", Key="platform/.pulumi/stacks/organization/network/staging.json",
                  Body=b"{}")

    def client(url: str) -> object:
        return s3

    url = "s3://acme-pulumi-state/platform?region=eu-west-1"
    assert s3_locks(url, "organization/network/staging", client) == [
        StackLock(f"s3://acme-pulumi-state/{key}", "runner@ci-job-17 (pid 4242) since 2026-12-01T15:00:00Z")]
    assert s3_locks(url, "organization/compute/staging", client) == []
    assert s3_locks("s3://acme-pulumi-state?region=eu-west-1", "organization/network/staging", client) == []
    missing = s3_locks("s3://no-such-state-bucket/platform", "organization/network/staging", client)
    assert isinstance(missing, str) and "NoSuchBucket" in missing


def test_an_s3_backend_whose_locks_cannot_be_read_gets_a_note_and_the_run_goes_on(
        fake_cli: FakeCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULUMI_BACKEND_URL", "s3://acme-pulumi-state/platform?region=eu-west-1")
    code, output = run(["up", "staging", "--yes", "--layers", "network", "--exact"], tmp_path)
    assert code == 0, output
    assert "note: the stack locks on s3://acme-pulumi-state/platform?region=eu-west-1 were not read " \
           "(NoCredentialsError: Unable to locate credentials)" in output


def test_an_s3_backends_locks_are_read_with_the_env_profile_pulumi_reads_the_bucket_with(
        fake_cli: FakeCli, tmp_path: Path, moto_aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """With PLATFORM_AWS_PROFILE_<ENV> set, every `pulumi` of the run reads the S3 backend as that profile
    (shared.images.pulumi_credentials: AWS_PROFILE), so the locks are read as it too: the shell's default chain may
    hold no credentials, or another account's that cannot read the state bucket, and the check would become a note
    while another run's lock fails this one midway. A `profile` in the backend URL still wins, as it does for the CLI
    (gocloud s3blob's `profile` parameter)."""
    s3 = boto3.client("s3", region_name="eu-west-1")
    s3.create_bucket(Bucket="acme-pulumi-state", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_object(Bucket="acme-pulumi-state", Key="platform/.pulumi/locks/organization/network/staging/7d1e.json",
                  Body=json.dumps(HOLDER).encode())
    config = tmp_path / "aws-config"
    config.write_text("[profile staging-deploy]\naws_access_key_id = testing\naws_secret_access_key = testing\n",
                      encoding="utf-8")
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):  # the shell's default chain: no credentials
        monkeypatch.delenv(var)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("PLATFORM_AWS_PROFILE_STAGING", "staging-deploy")
    monkeypatch.setattr("shared.orchestrate.locks.backend_s3_client", backend_s3_client)  # the real one, on moto
    url = "s3://acme-pulumi-state/platform?region=eu-west-1"
    monkeypatch.setenv("PULUMI_BACKEND_URL", url)
    code, output = run(["up", "staging", "--yes", "--layers", "network", "--exact"], tmp_path)
    assert code == 2, output
    assert engine_runs(fake_cli) == []
    found = read_locks(url, "organization/network/staging", profile="staging-deploy")
    assert isinstance(found, list) and found[0].holder.startswith("runner@ci-job-17")
    unread = read_locks(f"{url}&profile=ci-missing", "organization/network/staging", profile="staging-deploy")
    assert isinstance(unread, str) and "ci-missing" in unread


def test_a_lock_left_on_this_machine_by_a_process_that_no_longer_runs_is_called_stale(
        fake_cli: FakeCli, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`kill -9` or a closed laptop lid ends a run without releasing its lock; on the same machine that is provable."""
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                              check=True)
    dead = int(finished.stdout)
    url = (tmp_path / "backend").as_uri()
    lock = hold_lock(tmp_path, "network", "dev")
    lock.write_text(json.dumps({**HOLDER, "hostname": socket.gethostname(), "pid": dead}))
    assert file_locks(url, "organization/network/dev")[0].stale
    lock.write_text(json.dumps({**HOLDER, "hostname": socket.gethostname(), "pid": os.getpid()}))
    assert not file_locks(url, "organization/network/dev")[0].stale
    lock.write_text(json.dumps({**HOLDER, "hostname": socket.gethostname(), "pid": dead}))
    code, output = run(["up", "dev", "--yes", "--local-state"], tmp_path)
    assert code == 2, output
    assert "its process no longer runs on this machine, a stale lock `pulumi cancel` may release" in \
        capsys.readouterr().err


def test_a_lock_released_between_listing_and_reading_is_no_lock(
        tmp_path: Path, moto_aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The other run ends (its Unlock deletes the file) while its lock is read: that stack is free, and the read
    neither crashes (file://) nor turns every stack's locks into 'not read' (s3://, NoSuchKey on GetObject)."""
    url = (tmp_path / "backend").as_uri()
    released = hold_lock(tmp_path, "network", "dev")
    read_bytes = Path.read_bytes

    def unlock_then_read(path: Path) -> bytes:
        if path == released:
            path.unlink()
        return read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", unlock_then_read)
    assert read_locks(url, "organization/network/dev") == []

    s3 = boto3.client("s3", region_name="eu-west-1")
    s3.create_bucket(Bucket="acme-pulumi-state", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    prefix = "platform/.pulumi/locks/organization/network/staging"
    for name in ("1ab2.json", "9ff0.json"):
        s3.put_object(Bucket="acme-pulumi-state", Key=f"{prefix}/{name}", Body=json.dumps(HOLDER).encode())

    class Releasing:
        """The S3 client, where the first lock's run ends between ListObjectsV2 and GetObject."""

        def get_paginator(self, name: str) -> object:
            return s3.get_paginator(name)

        def get_object(self, Bucket: str, Key: str) -> object:
            if Key.endswith("1ab2.json"):
                s3.delete_object(Bucket=Bucket, Key=Key)
            return s3.get_object(Bucket=Bucket, Key=Key)

    assert s3_locks("s3://acme-pulumi-state/platform?region=eu-west-1", "organization/network/staging",
                    lambda url: Releasing()) == [
        StackLock(f"s3://acme-pulumi-state/{prefix}/9ff0.json",
                  "runner@ci-job-17 (pid 4242) since 2026-12-01T15:00:00Z")]


@pytest.mark.parametrize(("url", "endpoint"), [
    ("s3://state?region=eu-west-1&endpoint=http://minio.internal:9000&use_path_style=true",
     "http://minio.internal:9000"),
    ("s3://state?region=eu-west-1&endpoint=minio.internal:9000&disableSSL=true&s3ForcePathStyle=true",
     "http://minio.internal:9000"),
    ("s3://state?region=eu-west-1&endpoint=minio.internal", "https://minio.internal")])
def test_an_s3_compatible_backend_is_read_at_its_endpoint(url: str, endpoint: str) -> None:
    """The CLI opens the bucket at the URL's endpoint (a scheme-less one https, http with disableSSL:
    pkg/backend/diy/backend.go translateLegacyS3Params); reading AWS's S3 instead would look in another bucket."""
    client = backend_s3_client(url)
    assert client.meta.endpoint_url == endpoint
    path_style = "path_style=true" in url or "PathStyle=true" in url
    assert (client.meta.config.s3 or {}).get("addressing_style") == ("path" if path_style else None)


# -- Pulumi Cloud: the service holds the lock, `pulumi stack ls` says whether an update is in progress ------------


def on_pulumi_cloud(monkeypatch: pytest.MonkeyPatch, edit_env, env: str = "dev", org: str = "acme") -> None:
    monkeypatch.setenv("PULUMI_BACKEND_URL", "https://api.pulumi.com")
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE")  # Pulumi Cloud encrypts stack secrets itself
    monkeypatch.setenv("PULUMI_ACCESS_TOKEN", "pul-0123456789abcdef")
    edit_env(env, lambda data: data.update(pulumi_org=org))


def test_an_up_meeting_an_update_in_progress_on_pulumi_cloud_is_refused_before_any_layer(
        fake_cli: FakeCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, edit_env,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Pulumi Cloud refuses an update of a stack while another runs ("[409] Conflict: Another update is currently in
    progress.", pkg/backend/httpstate/backend.go createAndStartUpdate). Met layer by layer, network and broker would be
    updated and the run would stop at discovery: half an env, as on a self-managed backend. The service lists a stack
    being updated with updateInProgress (`pulumi stack ls --json`: its last update time reads 0, pulumi/pulumi #2109),
    so the run is refused up front, naming the stack, where to see who runs it and the cancel for a dead run."""
    on_pulumi_cloud(monkeypatch, edit_env)
    fake_cli.create_stacks("dev", org="acme")
    (fake_cli.state / "discovery.dev.updating").write_text("")
    code, output = run(["up", "dev", "--yes"], tmp_path)
    error = capsys.readouterr().err
    assert code == 2, output
    assert engine_runs(fake_cli) == []
    assert "up dev refused, nothing was run" in error
    assert ("acme/discovery/dev: an update in progress on Pulumi Cloud, its Console page shows who runs it "
            "(https://app.pulumi.com/acme/discovery/dev)") in error
    assert ("`PULUMI_BACKEND_URL=https://api.pulumi.com pulumi cancel --stack acme/discovery/dev --yes` "
            "in stacks/discovery") in error
    assert "lock file" not in error and "Traceback" not in error
    # the listing is read per layer of the run, in its project's folder, filtered to the env's org and the project
    listings = [c for c in fake_cli.calls() if c["event"] == "call" and c["args"][:2] == ["stack", "ls"]]
    assert sorted(c["layer"] for c in listings) == sorted({c["layer"] for c in listings})
    assert all(option_values(c["args"], "--organization") == ["acme"]
               and option_values(c["args"], "--project") == [c["layer"]] for c in listings)


def test_on_pulumi_cloud_a_preview_runs_beside_an_update_in_progress(
        fake_cli: FakeCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, edit_env) -> None:
    """The service lets previews run while a stack is being updated (pulumi/pulumi #8642): no listing, no refusal."""
    on_pulumi_cloud(monkeypatch, edit_env)
    fake_cli.create_stacks("dev", org="acme")
    (fake_cli.state / "discovery.dev.updating").write_text("")
    code, output = run(["preview", "dev"], tmp_path)
    assert code == 0, output
    assert not [c for c in fake_cli.calls() if c["event"] == "call" and c["args"][:2] == ["stack", "ls"]]


def test_on_pulumi_cloud_stacks_of_other_envs_and_orgs_being_updated_are_no_lock(
        fake_cli: FakeCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, edit_env) -> None:
    on_pulumi_cloud(monkeypatch, edit_env)
    fake_cli.create_stacks("dev", org="acme")
    fake_cli.create_stacks("staging", layers=("discovery",), org="acme")
    (fake_cli.state / "discovery.staging.updating").write_text("")
    monkeypatch.setenv("FAKE_PULUMI_DEFAULT_ORG", "acme")  # listed as "dev" and "staging", not "acme/dev"
    code, output = run(["up", "dev", "--yes"], tmp_path)
    assert code == 0, output
    assert "not read" not in output


def test_an_update_started_on_pulumi_cloud_after_the_check_fails_its_layer_naming_the_cancel_for_a_dead_run(
        fake_cli: FakeCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, edit_env) -> None:
    """The 409 met mid-run: the layer changed nothing, its readers are skipped, and the row says which stack, on which
    backend, `pulumi cancel` would end (a bare `pulumi cancel` acts on the folder's selected stack through the CLI's own
    login, which a non-interactive run has not got), and what it does on Pulumi Cloud: it ends the live update."""
    on_pulumi_cloud(monkeypatch, edit_env)
    fake_cli.create_stacks("dev", org="acme")
    (fake_cli.state / "discovery.dev.updating").write_text("")
    out = io.StringIO()
    runner = AutomationRunner(policy_config_dir=tmp_path / "policy-config", lock_reader=lambda url, stack: [])
    code = main(["up", "dev", "--yes"], runner=runner, out=out, images=ReleasedEverywhere())
    output = out.getvalue()
    assert code == 1, output
    ran = {c["layer"] for c in fake_cli.operations("up")}
    assert "network" in ran and "mesh" not in ran and "compute" not in ran
    (row,) = [line for line in output.splitlines() if line.startswith("[discovery") and "FAILED" in line]
    assert "locked by another run (an update in progress)" in row and "changed nothing" in row
    assert ("`PULUMI_BACKEND_URL=https://api.pulumi.com pulumi cancel --stack acme/discovery/dev --yes` in "
            "stacks/discovery only if it is dead") in row
    assert "it ends that update" in row and "lock" not in row.split("only if it is dead", 1)[1]


def test_a_pulumi_cloud_listing_that_cannot_be_read_gets_a_note_and_the_run_goes_on(
        fake_cli: FakeCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, edit_env) -> None:
    on_pulumi_cloud(monkeypatch, edit_env)
    fake_cli.create_stacks("dev", org="acme")
    monkeypatch.setenv("FAKE_PULUMI_LS_FAIL", "1")
    code, output = run(["up", "dev", "--yes", "--layers", "network", "--exact"], tmp_path)
    assert code == 0, output
    assert "note: the stack locks on https://api.pulumi.com were not read (CommandError: error: [403] Forbidden" \
        in output
    assert "pul-0123456789abcdef" not in output


def test_the_pulumi_cloud_listing_names_a_stack_as_the_cli_shows_it_in_its_project() -> None:
    """In the project's folder the CLI elides the project, and the org where it is the default one
    (cloudBackendReference.String): "dev" and "acme/dev" are both acme/network/dev's entry there."""
    from shared.orchestrate.locks import cloud_locks

    unread = cloud_locks("not json", "acme/network/dev")
    assert isinstance(unread, str) and unread.startswith("`pulumi stack ls --json` printed no JSON list")
    assert cloud_locks(json.dumps([{"name": "dev", "updateInProgress": False}]), "acme/network/dev") == []
    for name in ("dev", "acme/dev"):
        assert cloud_locks(json.dumps([{"name": name, "updateInProgress": True, "url": "https://app/x"}]),
                           "acme/network/dev") == [
            StackLock("https://app/x", "an update in progress on Pulumi Cloud, its Console page shows who runs it")]
    assert cloud_locks(json.dumps([{"name": "other/dev", "updateInProgress": True},
                                   {"name": "devx", "updateInProgress": True}]), "acme/network/dev") == []


@pytest.mark.parametrize("url", ["s3://acme-pulumi-state/platform?region=eu-west-1&profile=ci",
                                 "file:///srv/pulumi state", "https://api.pulumi.com"])
def test_the_cancel_command_is_one_shell_command_with_the_backend_it_names(url: str) -> None:
    """Pasted unquoted, an s3:// URL with two query parameters splits at its `&`: the assignment runs in the
    background and `pulumi cancel` runs without the backend (the CLI's own login, where a same-named stack's locks
    are deleted or none is found)."""
    command = cancel_command("organization/broker/dev", url)
    lexer = shlex.shlex(command.split("`")[1], posix=True, punctuation_chars=True)  # `&`, `;`, `|` end a command
    lexer.whitespace_split = True
    assert list(lexer) == [f"PULUMI_BACKEND_URL={url}", "pulumi", "cancel", "--stack", "organization/broker/dev",
                           "--yes"]


@pytest.mark.parametrize(("argv", "locking"), [(["refresh", "dev", "--preview-only"], "v3.228.0"),
                                               (["destroy", "dev", "--preview-only"], "v3.230.0")])
def test_a_preview_only_refresh_or_destroy_of_a_cli_that_still_locks_it_is_refused_before_any_layer(
        fake_cli: FakeCli, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        argv: list[str], locking: str) -> None:
    """The CLIs the orchestrator admits from 3.207 lock a self-managed backend's stack for refresh --preview-only
    until 3.229 (pulumi/pulumi #22385) and destroy --preview-only until 3.231 (#22561): with one of them, another
    run's lock is met layer by layer (the layers before it have run), so it is read up front as for up."""
    fake_cli.create_stacks("dev")
    hold_lock(tmp_path, "discovery", "dev")
    monkeypatch.setenv("FAKE_PULUMI_VERSION", locking)
    code, output = run(argv, tmp_path)
    assert code == 2, output
    error = capsys.readouterr().err
    assert "organization/discovery/dev" in error and "runner@ci-job-17" in error
    assert engine_runs(fake_cli) == []
