"""Removing a catalog service whose ECS service runs (README, "Remove a service"): ``up`` runs compute last, so the
layers before it would delete the service's broker user, secret and queues (App Mesh envs: its Cloud Map service and
virtual node) while its tasks still run. ``up`` is refused before any layer (exit 2) with the runs that remove it
compute first; ``preview`` notes it; compute alone goes on."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from shared import lifecycle
from shared.envs import EnvConfig
from tests.catalog_helpers import remove_service, stop_consuming
from tests.conftest import EnvEditor
from tests.test_orchestrate import RecordingRunner, management_api, run

__all__ = ["management_api"]  # its autouse fixture: the stacks' management endpoint answers on loopback


EVERYONE = ("gateway", "preprocess", "inference", "training")


class DeployedRunner(RecordingRunner):
    """The recording runner whose stacks are those of an env deployed with every service of the shipped catalog
    (``running``: the services compute's stack runs as ECS services), on Service Connect or App Mesh."""

    def __init__(self, running: tuple[str, ...] = ("gateway", "preprocess", "inference", "training"),
                 provider: str = "service-connect", consumers: tuple[str, ...] | None = EVERYONE) -> None:
        super().__init__()
        self.running = running
        self.provider = provider
        #: the services whose running tasks consume their work queue (compute's amqp_queue); None: a compute stack
        #: deployed before amqp_queue and amqp_credentials
        self.consumers = consumers

    def stack_outputs(self, layer: str, env: EnvConfig) -> Mapping[str, Any] | None:
        outputs = dict(super().stack_outputs(layer, env) or {})
        everyone = ("gateway", "preprocess", "inference", "training")
        if layer == "compute":
            outputs["services"] = {svc: {"ecs_service_name": svc} for svc in self.running}
            if self.consumers is not None:
                for svc in self.running:
                    outputs["services"][svc].update(amqp_queue=f"{svc}.work" if svc in self.consumers else "",
                                                    amqp_credentials=True)
        elif layer == "messaging":
            outputs["service_secret_arns"] = {svc: f"arn:secret:{svc}" for svc in everyone}
            outputs["queues"] = {svc: f"{svc}.work" for svc in everyone}
        elif layer == "discovery":
            outputs["services"] = {svc: {"id": f"srv-{svc}"} for svc in everyone} if self.provider == "appmesh" else {}
        elif layer == "mesh":
            outputs.update(provider=self.provider, services={svc: {"port_name": f"{svc}-http"} for svc in everyone})
        return outputs


@pytest.fixture
def without_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, edit_env: EnvEditor) -> None:
    """training removed from the catalog and from the env files (its settings and its release), as a user removes it."""
    remove_service(tmp_path, monkeypatch, edit_env, "training")


def test_up_is_refused_while_the_removed_service_runs(without_training: None,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    runner = DeployedRunner()
    code, out = run(["up", "dev", "--yes"], runner)
    assert code == 2 and runner.started() == [], out
    error = capsys.readouterr().err
    assert "services.training" in error and "still runs its ECS service training" in error
    assert "messaging deletes its RabbitMQ user" in error and "its work queue and DLQ" in error
    assert "`nox -s up -- dev --layers compute --exact`" in error and "Nothing was run" in error
    assert "release.images.training" in error


def test_a_messaging_only_up_is_refused_too(without_training: None) -> None:
    runner = DeployedRunner()
    code, out = run(["up", "dev", "--yes", "--layers", "messaging", "--exact"], runner)
    assert code == 2 and runner.started() == [], out


def compute_alone_then_the_whole_up(after_compute: DeployedRunner) -> None:
    """``up --layers compute --exact`` goes on, then the whole up, with the stacks as ``after_compute`` holds them."""
    code, out = run(["up", "dev", "--yes", "--layers", "compute", "--exact"], DeployedRunner())
    assert code == 0, out
    code, out = run(["up", "dev", "--yes"], after_compute)
    assert code == 0 and after_compute.started()[-1] == "compute", out


def test_compute_alone_goes_on_and_then_the_whole_up(without_training: None) -> None:
    # compute deleted its ECS service: the next up deletes the rest in DAG order
    compute_alone_then_the_whole_up(DeployedRunner(running=("gateway", "preprocess", "inference")))


def test_a_preview_notes_it_and_goes_on(without_training: None) -> None:
    runner = DeployedRunner()
    code, out = run(["preview", "dev"], runner)
    assert code == 0 and "compute" in runner.started(), out
    assert "note: up would be refused" in out and "services.training" in out


def test_app_mesh_discovery_and_mesh_are_named(without_training: None, edit_env: EnvEditor,
                                               capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # before App Mesh's end of support: from 2026-10-01 up refuses an appmesh env outright (tests/test_lifecycle.py)
    monkeypatch.setattr(lifecycle, "today", lambda: date(2026, 9, 1))
    edit_env("dev", lambda data: data["mesh"].update(provider="appmesh", appmesh_end_of_support_acknowledged=True))
    code, out = run(["up", "dev", "--yes", "--layers", "mesh"], DeployedRunner(provider="appmesh"))
    assert code == 2, out
    error = capsys.readouterr().err
    assert "discovery deletes its Cloud Map service" in error and "mesh deletes its App Mesh virtual node" in error


def test_nothing_is_refused_without_a_removal(capsys: pytest.CaptureFixture[str]) -> None:
    runner = DeployedRunner()
    code, out = run(["up", "dev", "--yes"], runner)
    assert code == 0 and runner.started()[-1] == "compute", out


def test_outputs_that_cannot_be_read_stop_an_up_and_are_a_note_for_a_preview(
        without_training: None, capsys: pytest.CaptureFixture[str]) -> None:
    class Unreadable(DeployedRunner):
        def stack_outputs(self, layer: str, env: EnvConfig) -> Mapping[str, Any] | None:
            if layer == "compute":
                raise RuntimeError("AccessDenied: kms:Decrypt")
            return super().stack_outputs(layer, env)

    code, out = run(["up", "dev", "--yes", "--layers", "messaging"], Unreadable())
    assert code == 2 and "AccessDenied" in capsys.readouterr().err, out
    runner = Unreadable()
    code, out = run(["preview", "dev", "--layers", "messaging"], runner)
    assert code == 0 and "note: whether a service removed" in out and runner.started(), out


# -- a service that stays but stops consuming -----------------------------------------------------------------------


@pytest.fixture
def gateway_stops_consuming(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stop_consuming(tmp_path, monkeypatch, "gateway")


def test_up_is_refused_while_running_tasks_consume_the_queue_messaging_deletes(
        gateway_stops_consuming: None, capsys: pytest.CaptureFixture[str]) -> None:
    """messaging runs before compute: it would delete gateway.work and its DLQ while gateway's tasks, whose task
    definition names the queue, still consume it."""
    for argv in (["up", "dev", "--yes"], ["up", "dev", "--yes", "--layers", "messaging", "--exact"]):
        runner = DeployedRunner()
        code, out = run(argv, runner)
        assert code == 2 and runner.started() == [], out
        error = capsys.readouterr().err
        assert "services.gateway" in error and "its work queue gateway.work and DLQ" in error, error
        assert "`nox -s up -- dev --layers compute --exact`" in error and "Nothing was run" in error
    runner = DeployedRunner()
    code, out = run(["preview", "dev"], runner)
    assert code == 0 and "note: up would be refused" in out and "services.gateway" in out, out


def test_compute_first_rolls_the_tasks_off_then_the_whole_up_goes_on(gateway_stops_consuming: None) -> None:
    # compute's new task definition names no queue (tests/layers/test_compute.py): the next up deletes it
    compute_alone_then_the_whole_up(DeployedRunner(consumers=("preprocess", "inference", "training")))


def test_a_compute_stack_from_before_the_fields_is_a_note(gateway_stops_consuming: None) -> None:
    runner = DeployedRunner(consumers=None)
    code, out = run(["up", "dev", "--yes"], runner)
    assert code == 0 and runner.started()[-1] == "compute", out
    assert "note: " in out and "cannot be told" in out and "gateway" in out and "--layers compute --exact" in out


def test_a_service_that_stops_using_the_broker_keeps_its_user_until_compute_ran() -> None:
    from shared.envs import load_env
    from shared.service_removal import check_consumers

    compute = {"services": {"gateway": {"ecs_service_name": "gateway", "amqp_queue": "", "amqp_credentials": True}}}
    messaging = {"queues": {}, "service_secret_arns": {"gateway": "arn:secret:gateway"}}
    outputs: dict[str, Mapping[str, Any]] = {"compute": compute, "messaging": messaging}
    read = outputs.get
    refusals, notes = check_consumers(load_env("dev"), {"gateway": (False, False)}, "catalog.yaml",
                                      ["messaging", "compute"], "organization/compute/dev", read)
    assert len(refusals) == 1 and not notes and "its RabbitMQ user and credentials secret" in str(refusals[0])
    compute["services"]["gateway"]["amqp_credentials"] = False  # compute ran first
    assert check_consumers(load_env("dev"), {"gateway": (False, False)}, "catalog.yaml", ["messaging", "compute"],
                           "organization/compute/dev", read) == ([], [])


def up_prod(layers: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str], str, str]:
    """``up prod --layers LAYERS --exact`` with the account preflight asking moto (quotas roomy): the exit code, the
    layers it started, what it printed and its error stream."""
    from tests.test_orchestrate_account import Clients, checker, roomy, up

    code, out, runner = up(["up", "prod", "--yes", "--layers", layers, "--exact"], checker(Clients(roomy())),
                           DeployedRunner())
    return code, runner.started(), out, capsys.readouterr().err


# -- a service of a removed one's name, within prod's recovery window ----------------------------------------------


def test_a_secret_scheduled_for_deletion_refuses_up_before_messaging(moto_aws: None,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """prod deletes a removed service's secret with a 30-day recovery window; a service of that name again (re-added,
    or a rename back) within it would fail at messaging's CreateSecret ("already scheduled for deletion"), after its
    RabbitMQ user."""
    from shared.envs import load_env
    from tests.aws_helpers import MotoAccounts

    prod = load_env("prod")
    secrets = MotoAccounts.client(prod.account_id, prod.region, "secretsmanager")
    secrets.create_secret(Name="platform/prod/messaging/training", SecretString="{}")
    secrets.create_secret(Name="platform/prod/messaging/inference", SecretString="{}")  # a live one: fine
    secrets.delete_secret(SecretId="platform/prod/messaging/training", RecoveryWindowInDays=30)
    code, started, out, error = up_prod("messaging", capsys)
    assert code == 2 and started == [], out
    assert "services.training" in error and "platform/prod/messaging/training" in error
    assert "scheduled for deletion since" in error and "inference" not in error
    assert ("aws secretsmanager delete-secret --region eu-west-1 --secret-id platform/prod/messaging/training "
            "--force-delete-without-recovery") in error
    secrets.delete_secret(SecretId="platform/prod/messaging/training", ForceDeleteWithoutRecovery=True)
    code, started, out, _ = up_prod("messaging", capsys)
    assert code == 0 and started == ["messaging"], out


@pytest.mark.parametrize("failure", ["access", "unreachable"])
def test_a_secrets_manager_that_does_not_answer_is_asked_once(failure: str) -> None:
    """One DescribeSecret per catalog service that uses the broker (200 in the bench's catalog), each with the
    preflight's 5 s connect timeout and 2 attempts: where Secrets Manager answers none of them (unreachable, or the
    caller may not describe the env's secrets), the next ones cannot answer either. The check stops at the first such
    failure with one note instead of waiting for each (minutes) and noting each."""
    from botocore.exceptions import ClientError, EndpointConnectionError

    from shared.catalog import load_catalog
    from shared.envs import load_env
    from shared.orchestrate.account import AccountReport, AwsAccountCheck

    assert sum(spec.uses_messaging for spec in load_catalog()) >= 2  # the shipped catalog: more than one to ask
    calls: list[str] = []

    class Silent:
        def describe_secret(self, SecretId: str) -> dict[str, Any]:
            calls.append(SecretId)
            if failure == "access":
                raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not authorized"}},
                                  "DescribeSecret")
            raise EndpointConnectionError(endpoint_url="https://secretsmanager.eu-west-1.amazonaws.com/")

    prod = load_env("prod")
    report = AccountReport()
    AwsAccountCheck(lambda env, service: Silent())._find_secrets_pending_deletion(prod, ["broker", "messaging"], report)
    assert len(calls) == 1 and report.refusals == [], calls
    assert len(report.notes) == 1 and "scheduled for deletion" in report.notes[0], report.notes


class NoSuchSecret:
    """A Secrets Manager client that holds no secret (ResourceNotFoundException); records the names asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def describe_secret(self, SecretId: str) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        self.asked.append(SecretId)
        raise ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": "not found"}}, "DescribeSecret")


def test_a_secret_not_found_goes_on_to_the_next() -> None:
    """ResourceNotFoundException is the usual answer (no such secret): every service's secret is still asked."""
    from shared.catalog import load_catalog
    from shared.envs import load_env
    from shared.orchestrate.account import AccountReport, AwsAccountCheck

    missing = NoSuchSecret()
    calls = missing.asked

    report = AccountReport()
    AwsAccountCheck(lambda env, service: missing)._find_secrets_pending_deletion(load_env("prod"), ["messaging"],
                                                                                    report)
    # prod (amazon-mq) publishes queue metrics: the publisher's secret too
    assert len(calls) == 1 + sum(spec.uses_messaging for spec in load_catalog()) and report.notes == [], calls
    assert report.refusals == []


# -- the broker admin's and the queue metrics publisher's, after messaging.broker external and back ---------------


def test_the_broker_admin_and_queue_metrics_secrets_scheduled_for_deletion_refuse_up(
        moto_aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    """prod moved to messaging.broker external deletes the broker admin's secret (broker layer) and the queue metrics
    publisher's (messaging), each with a 30-day recovery window; moved back to amazon-mq within it, the broker layer's
    CreateSecret would fail alongside its new broker (20 minutes or more), messaging's after it. Each is refused
    before any layer, where the layer that creates it is in the run."""
    from shared.envs import load_env
    from tests.aws_helpers import MotoAccounts

    prod = load_env("prod")
    admin, monitor = "platform/prod/broker/admin", "platform/prod/messaging-monitor/queue-metrics"
    secrets = MotoAccounts.client(prod.account_id, prod.region, "secretsmanager")
    for name in (admin, monitor):
        secrets.create_secret(Name=name, SecretString="{}")
        secrets.delete_secret(SecretId=name, RecoveryWindowInDays=30)

    code, started, out, error = up_prod("broker", capsys)
    assert code == 2 and started == [], out
    assert f"the secret {admin}, which Secrets Manager holds scheduled for deletion since" in error, error
    assert monitor not in error  # messaging, which creates it, is not in the run
    assert "midway through broker, alongside the new broker" in error
    assert (f"aws secretsmanager delete-secret --region eu-west-1 --secret-id {admin} "
            "--force-delete-without-recovery") in error
    assert f"aws secretsmanager restore-secret --region eu-west-1 --secret-id {admin}" in error
    assert "`pulumi import` it into broker" in error and "Nothing was run" in error

    code, started, out, error = up_prod("messaging", capsys)
    assert code == 2 and started == [], out
    assert f"the secret {monitor}, which Secrets Manager holds scheduled for deletion since" in error, error
    assert f"the secret {admin}," not in error and "midway through messaging" in error
    assert f"aws secretsmanager restore-secret --region eu-west-1 --secret-id {monitor}" in error

    for name in (admin, monitor):
        secrets.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    code, started, out, _ = up_prod("broker,messaging", capsys)
    assert code == 0 and started == ["broker", "messaging"], out


def test_an_external_broker_s_env_asks_for_neither_the_admin_nor_the_queue_metrics_secret() -> None:
    """Neither exists for messaging.broker external (no Amazon MQ broker, no queue metrics publisher): a secret of
    that name left scheduled for deletion concerns no layer of the run."""
    from shared.envs import load_env
    from shared.orchestrate.account import AccountReport, AwsAccountCheck

    missing = NoSuchSecret()
    calls = missing.asked

    prod = load_env("prod")
    check = AwsAccountCheck(lambda env, service: missing)
    check._find_secrets_pending_deletion(prod, ["broker"], AccountReport())
    assert calls == ["platform/prod/broker/admin"]
    external = prod.model_copy(update={"messaging": prod.messaging.model_copy(update={"broker": "external"})})
    calls.clear()
    check._find_secrets_pending_deletion(external, ["broker"], AccountReport())
    assert calls == []
    check._find_secrets_pending_deletion(external, ["messaging"], AccountReport())
    assert calls and all(name.startswith("platform/prod/messaging/") for name in calls), calls


def test_an_external_broker_s_admin_secret_must_exist_before_messaging_runs(
        moto_aws: None, edit_env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """messaging reads an external broker's admin credentials from the secret its operator keeps: absent, or
    scheduled for deletion, its program would fail after the layers before it ran. Refused before any layer, with
    the command that creates (or restores) it; once it is there, up runs."""
    from shared.envs import load_env
    from tests.aws_helpers import MotoAccounts

    edit_env("prod", lambda data: data["messaging"].update(
        broker="external", external={"amqps_endpoint": "amqps://mq.example.com:5671",
                                     "management_endpoint": "https://mq.example.com"}))
    prod, name = load_env("prod"), "platform/prod/broker/external-admin"
    code, started, out, error = up_prod("messaging", capsys)
    assert code == 2 and started == [], out
    assert (f"messaging.broker external: messaging signs in to the broker with the admin credentials in the Secrets "
            f"Manager secret {name} of account {prod.account_id} (eu-west-1), which does not exist") in error, error
    assert f"aws secretsmanager create-secret --region eu-west-1 --name {name} --secret-string file://admin.json" \
        in error and "Nothing was run" in error

    secrets = MotoAccounts.client(prod.account_id, prod.region, "secretsmanager")
    secrets.create_secret(Name=name, SecretString='{"username": "admin", "password": "p"}')
    secrets.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    code, started, out, error = up_prod("messaging", capsys)
    assert code == 2 and started == [], out
    assert f"the Secrets Manager secret {name} with the broker admin's credentials is scheduled for deletion" in error
    assert f"aws secretsmanager restore-secret --region eu-west-1 --secret-id {name}" in error

    secrets.restore_secret(SecretId=name)
    code, started, out, error = up_prod("messaging", capsys)
    assert f"account prod: {name}: present (the external broker's admin)" in out
    # what stops it now is that mq.example.com is no broker (the reach probe)
    assert name not in error and "messaging cannot run from here" in error
    # broker and compute read no admin credentials: the secret is not asked for where messaging is not in the run
    secrets.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    code, started, out, _ = up_prod("broker", capsys)
    assert code == 0 and started == ["broker"], out


@pytest.mark.parametrize("action", ["destroy", "refresh"])
def test_a_destroy_or_refresh_of_messaging_needs_the_external_admin_secret_too(
        moto_aws: None, edit_env: Any, capsys: pytest.CaptureFixture[str], action: str) -> None:
    """Both run messaging's program (--run-program), which reads the secret: without it a destroy would stop at
    messaging after compute was gone, its vhost, users and queues left."""
    from tests.test_orchestrate_account import Clients, checker, roomy, up

    edit_env("prod", lambda data: data["messaging"].update(
        broker="external", external={"amqps_endpoint": "amqps://mq.example.com:5671",
                                     "management_endpoint": "https://mq.example.com"}))
    exact = ["--exact"] if action == "refresh" else []  # a destroy of messaging takes compute, which reads it, first
    code, out, runner = up([action, "prod", "--yes", "--layers", "messaging", *exact], checker(Clients(roomy())),
                           DeployedRunner())
    assert code == 2 and runner.started() == [], out  # not even compute's destroy
    assert "platform/prod/broker/external-admin of account" in capsys.readouterr().err
    code, out, runner = up([action, "prod", "--yes", "--layers", "compute", "--exact"], checker(Clients(roomy())),
                           DeployedRunner())
    assert "external-admin" not in out + capsys.readouterr().err  # compute's program reads no admin credentials


def test_an_external_admin_secret_without_a_value_is_refused_too(moto_aws: None, edit_env: Any,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    # created without --secret-string: DescribeSecret finds it, GetSecretValue of its current version would not
    from shared.envs import load_env
    from tests.aws_helpers import MotoAccounts

    edit_env("prod", lambda data: data["messaging"].update(
        broker="external", external={"amqps_endpoint": "amqps://mq.example.com:5671",
                                     "management_endpoint": "https://mq.example.com"}))
    prod, name = load_env("prod"), "platform/prod/broker/external-admin"
    MotoAccounts.client(prod.account_id, prod.region, "secretsmanager").create_secret(Name=name)
    code, started, out, error = up_prod("messaging", capsys)
    assert code == 2 and started == [], out
    assert f"the Secrets Manager secret {name} holds no value yet (no AWSCURRENT version)" in error
    assert f"aws secretsmanager put-secret-value --region eu-west-1 --secret-id {name}" in error


def test_only_services_that_use_the_broker_have_their_secret_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """A service that no longer uses the broker had its secret deleted (30 days' recovery in prod): asking for it would
    refuse every prod up for 30 days."""
    from types import SimpleNamespace

    import shared.catalog
    from shared.envs import load_env
    from shared.orchestrate.account import AccountReport, AwsAccountCheck

    prod = load_env("prod")  # loaded before the catalog is swapped
    specs = [SimpleNamespace(name=s.name, uses_messaging=s.name != "training") for s in shared.catalog.load_catalog()]
    monkeypatch.setattr(shared.catalog, "load_catalog", lambda: specs)
    missing = NoSuchSecret()
    AwsAccountCheck(lambda env, service: missing)._find_secrets_pending_deletion(prod, ["messaging"], AccountReport())
    assert "platform/prod/messaging/inference" in missing.asked
    assert "platform/prod/messaging/training" not in missing.asked


def test_an_external_admin_secret_with_only_a_pending_version_is_refused() -> None:
    from shared.envs import load_env
    from shared.orchestrate.account import AccountReport, AwsAccountCheck

    class PendingOnly:
        def describe_secret(self, SecretId: str) -> dict[str, Any]:
            return {"Name": SecretId, "VersionIdsToStages": {"v1": ["AWSPENDING"]}}

    report = AccountReport()
    AwsAccountCheck(lambda env, service: PendingOnly())._check_external_admin_secret(load_env("dev"), report)
    assert len(report.refusals) == 1 and "no AWSCURRENT version" in report.refusals[0]


def test_an_external_admin_secret_on_a_key_that_cannot_decrypt_is_refused(moto_aws: None) -> None:
    """GetSecretValue decrypts with the secret's customer managed key as the deploy role: a disabled key, or one
    scheduled for deletion, fails messaging's read after the layers before it ran. Refused first, naming the command
    that makes the key usable again; an enabled key of the env's account passes."""
    from shared.envs import load_env
    from shared.orchestrate.account import AccountReport, AwsAccountCheck
    from tests.aws_helpers import MotoAccounts

    dev, name = load_env("dev"), "platform/dev/broker/external-admin"
    kms = MotoAccounts.client(dev.account_id, dev.region, "kms")
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    MotoAccounts.client(dev.account_id, dev.region, "secretsmanager").create_secret(
        Name=name, KmsKeyId=key, SecretString='{"username": "admin", "password": "p"}')

    def check() -> AccountReport:
        report = AccountReport()
        AwsAccountCheck(MotoAccounts())._check_external_admin_secret(dev, report)
        return report

    report = check()
    assert report.refusals == [] and report.notes == [] and f"{name}: present (the external broker's admin)" \
        in report.lines
    kms.disable_key(KeyId=key)
    report = check()
    assert len(report.refusals) == 1 and report.lines == [], report
    assert f"is encrypted with the KMS key {key}, which is Disabled" in report.refusals[0]
    assert f"`aws kms enable-key --region {dev.region} --key-id {key}`" in report.refusals[0]
    kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
    (refusal,) = check().refusals
    assert "which is PendingDeletion" in refusal and f"aws kms cancel-key-deletion --region {dev.region} --key-id " \
        f"{key}`, then `aws kms enable-key" in refusal
    kms.cancel_key_deletion(KeyId=key)
    kms.enable_key(KeyId=key)
    assert check().refusals == []


def test_an_external_admin_secret_on_another_account_s_key_or_a_deleted_one_is_refused() -> None:
    """The deploy role decrypts with the keys of the env's account and region only (shared.deploy_role), so a key of
    another account or region is refused without asking KMS; a deleted key leaves a value no one can decrypt. A key
    KMS does not describe to the caller is a note, not a refusal."""
    from botocore.exceptions import ClientError

    from shared.envs import load_env
    from shared.orchestrate.account import AccountReport, AwsAccountCheck

    dev = load_env("dev")

    class Clients:
        def __init__(self, key: str, error: str | None = None) -> None:
            self.key, self.error, self.described = key, error, False

        def __call__(self, env: Any, service: str) -> Any:
            return self

        def describe_secret(self, SecretId: str) -> dict[str, Any]:
            return {"Name": SecretId, "KmsKeyId": self.key, "VersionIdsToStages": {"v1": ["AWSCURRENT"]}}

        def describe_key(self, KeyId: str) -> dict[str, Any]:
            self.described = True
            assert KeyId == self.key
            if self.error:
                raise ClientError({"Error": {"Code": self.error, "Message": "no"}}, "DescribeKey")
            return {"KeyMetadata": {"KeyId": KeyId, "KeyState": "Enabled"}}

    def check(clients: Clients) -> AccountReport:
        report = AccountReport()
        AwsAccountCheck(clients)._check_external_admin_secret(dev, report)
        return report

    for key in (f"arn:aws:kms:{dev.region}:210987654321:key/k1", f"arn:aws:kms:us-east-1:{dev.account_id}:alias/x"):
        clients = Clients(key)
        (refusal,) = check(clients).refusals
        assert f"the KMS key {key} of another account or region, which the deploy role may not use" in refusal
        assert "--kms-key-id alias/aws/secretsmanager" in refusal and not clients.described
    own = f"arn:aws:kms:{dev.region}:{dev.account_id}:key/k1"
    assert check(Clients(own)).refusals == []
    (refusal,) = check(Clients(own, "NotFoundException")).refusals
    assert "which does not exist" in refusal and "--force-delete-without-recovery" in refusal
    report = check(Clients("k1", "AccessDeniedException"))
    assert report.refusals == [] and len(report.notes) == 1 and "DescribeKey" in report.notes[0]
    # an alias (DescribeSecret's KmsKeyId may be one) names whatever key it points at now: deleted or moved since,
    # the key that encrypted the secret may still decrypt it, so never a refusal, and never the advice to delete it
    alias = f"arn:aws:kms:{dev.region}:{dev.account_id}:alias/broker-admin"
    report = check(Clients(alias, "NotFoundException"))
    assert report.refusals == [] and "by the alias" in report.notes[0] and "unknown" in report.notes[0]
    assert "force-delete" not in " ".join(report.notes)
    report = check(Clients(alias))  # its key Enabled: nothing to say
    assert report.refusals == [] and report.notes == []


def test_a_key_being_updated_decrypts_and_one_whose_replica_deletion_is_scheduled_does_not() -> None:
    """KMS KeyState: Updating (a multi-Region key changing its primary) can still be used; PendingReplicaDeletion
    (a primary scheduled for deletion with its replicas) cannot, and is taken back as PendingDeletion is."""
    from shared.envs import load_env
    from shared.orchestrate.account import AccountReport, AwsAccountCheck

    dev = load_env("dev")
    key = f"arn:aws:kms:{dev.region}:{dev.account_id}:key/mrk-1"

    class Keyed:
        def __init__(self, state: str) -> None:
            self.state = state

        def __call__(self, env: Any, service: str) -> Any:
            return self

        def describe_secret(self, SecretId: str) -> dict[str, Any]:
            return {"Name": SecretId, "KmsKeyId": key, "VersionIdsToStages": {"v1": ["AWSCURRENT"]}}

        def describe_key(self, KeyId: str) -> dict[str, Any]:
            return {"KeyMetadata": {"KeyId": KeyId, "KeyState": self.state}}

    def check(state: str) -> AccountReport:
        report = AccountReport()
        AwsAccountCheck(Keyed(state))._check_external_admin_secret(dev, report)
        return report

    assert check("Updating").refusals == [] and check("Updating").notes == []
    (refusal,) = check("PendingReplicaDeletion").refusals
    assert f"aws kms cancel-key-deletion --region {dev.region} --key-id {key}" in refusal
    assert check("Creating").refusals == [] and check("Creating").notes


class ProtectedLogGroups:
    """CloudWatch Logs answering DescribeLogGroups by prefix (moto keeps no deletion protection): ``groups`` maps a
    log group's name to whether its deletion protection is on."""

    def __init__(self, groups: Mapping[str, bool]) -> None:
        self.groups = dict(groups)
        self.prefixes: list[str] = []

    def get_paginator(self, operation: str) -> Any:
        logs = self
        if operation != "describe_log_groups":  # an up's preflight reads the account's resource policies: none

            class Nothing:
                def paginate(self, **kwargs: Any) -> Any:
                    yield {}

            return Nothing()

        class Pages:
            def paginate(self, logGroupNamePrefix: str) -> Any:
                logs.prefixes.append(logGroupNamePrefix)
                for name, on in sorted(logs.groups.items()):
                    if name.startswith(logGroupNamePrefix):
                        yield {"logGroups": [{"logGroupName": name, "deletionProtectionEnabled": on}]}

        return Pages()


def test_every_log_group_a_layer_creates_is_known_as_that_layer_s() -> None:
    """The destroy's deletion-protection check finds each layer's log groups by name: every log group of each
    shipped env's synth, layer by layer."""
    from shared.envs import load_env
    from shared.orchestrate.account import log_group_layer, log_group_prefixes

    snapshots = Path(__file__).parent / "snapshots"
    found = 0
    for env_name in ("dev", "staging", "prod"):
        env = load_env(env_name)
        for snapshot in sorted((snapshots / env_name).glob("*.json")):
            layer = snapshot.stem
            for resource in json.loads(snapshot.read_text()).get("resources", []):
                if resource["type"] == "aws:cloudwatch/logGroup:LogGroup":
                    name = resource["inputs"]["name"]
                    found += 1
                    assert log_group_layer(env, name) == layer, (env_name, layer, name)
                    assert any(name.startswith(prefix) for prefix in log_group_prefixes(env, layer)), name
        assert log_group_layer(env, f"/aws/lambda/ml-platform-{env_name}-other") is None
        assert log_group_layer(env, "/platform/other/compute/gateway") is None
        assert log_group_layer(env, f"/platform/{env_name}/made-by-hand") is None
        # a group whose name only starts with a layer's own (made by hand beside it) is no layer's: its deletion
        # protection must not stop that layer's destroy
        assert log_group_layer(env, f"/platform/{env_name}/vpc-flow-logs-archive") is None
        assert log_group_layer(env, f"/aws/lambda/ml-platform-{env_name}-broker-admin-rotation-old") is None
    assert found == 27


def test_a_log_group_with_deletion_protection_refuses_the_destroy_before_any_layer(
        moto_aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    """CloudWatch Logs deletion protection, turned on outside the stacks, refuses DeleteLogGroup: the destroy would
    delete the services writing to the group, then stop. Refused first, naming the command that turns it off;
    --preview-only notes it; a group of a layer not in the run, or another env's, is not asked about."""
    from tests.test_orchestrate_account import Clients, checker, up

    groups = ProtectedLogGroups({"/platform/dev/compute/gateway": True, "/platform/dev/compute/training": False,
                                 "/platform/dev/vpc-flow-logs": True, "/platform/devx/compute/gateway": True})
    logs = Clients(replace={"logs": groups})
    code, out, runner = up(["destroy", "dev", "--yes", "--layers", "compute", "--exact"], checker(logs),
                           DeployedRunner())
    error = capsys.readouterr().err
    assert code == 2 and runner.started() == [], out
    assert ("destroy dev: compute's log group /platform/dev/compute/gateway has CloudWatch Logs deletion protection "
            "on") in error, error
    assert ("`aws logs put-log-group-deletion-protection --region eu-west-1 --log-group-identifier "
            "/platform/dev/compute/gateway --no-deletion-protection-enabled`") in error
    assert "vpc-flow-logs" not in error and "training" not in error and "devx" not in error
    assert groups.prefixes == ["/platform/dev/compute/"]

    code, out, runner = up(["destroy", "dev", "--yes", "--layers", "compute", "--exact", "--preview-only"],
                           checker(logs), DeployedRunner())
    assert code == 0 and "note: destroy would be refused: destroy dev: compute's log group" in out, out

    # an up, preview or refresh deletes no log group: not asked, whatever their protection
    for action in (["up", "dev", "--yes"], ["preview", "dev"], ["refresh", "dev", "--yes"]):
        groups.prefixes.clear()
        code, out, runner = up([*action, "--layers", "compute", "--exact"], checker(logs), DeployedRunner())
        assert code == 0 and "deletion protection" not in out + capsys.readouterr().err, (action, out)
        assert groups.prefixes == [], action

    groups.groups["/platform/dev/compute/gateway"] = False
    code, out, runner = up(["destroy", "dev", "--yes", "--layers", "compute", "--exact"], checker(logs),
                           DeployedRunner())
    assert code == 0 and runner.started() == ["compute"], out
    # a role that may not list the groups: a note, and the destroy runs (the delete itself would say so)
    from tests.test_orchestrate_account import Denied

    code, out, runner = up(["destroy", "dev", "--yes", "--layers", "compute", "--exact"],
                           checker(Clients(replace={"logs": Denied("AccessDeniedException")})), DeployedRunner())
    assert code == 0 and runner.started() == ["compute"], out
    assert "note: whether a log group under /platform/dev/compute/ has deletion protection on is unknown" in out, out


class LogGroupsInState(DeployedRunner):
    """The deployed stacks, with the log groups each layer's state holds (AutomationRunner.state_log_groups)."""

    def __init__(self, groups: Mapping[str, list[str]]) -> None:
        super().__init__()
        self.groups = groups

    def state_log_groups(self, layer: str, env: EnvConfig) -> list[str] | None:
        return list(self.groups.get(layer, []))


def test_only_a_protected_log_group_the_destroyed_layers_hold_refuses_the_destroy(
        moto_aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    """The destroy deletes what the run's layers' states hold, no more: broker's protected group does not stop a
    destroy of messaging alone (the two share the /aws/lambda/ml-platform-<env>- prefix), nor does a protected group
    under compute's prefix that no state holds (made by hand), which no destroy deletes."""
    from tests.test_orchestrate_account import Clients, checker, up

    rotation, metrics = "/aws/lambda/ml-platform-dev-broker-admin-rotation", "/aws/lambda/ml-platform-dev-queue-metrics"
    groups = ProtectedLogGroups({rotation: True, metrics: False, "/platform/dev/compute/archive": True,
                                 "/platform/dev/compute/gateway": False})
    state = LogGroupsInState({"broker": [rotation], "messaging": [metrics],
                              "compute": ["/platform/dev/compute/gateway"]})
    logs = checker(Clients(replace={"logs": groups}))
    # messaging's destroy takes compute, which reads it, first (--exact would refuse to leave it deployed)
    code, out, runner = up(["destroy", "dev", "--yes", "--layers", "messaging"], logs, state)
    assert code == 0 and runner.started() == ["compute", "messaging"], (out, capsys.readouterr().err)
    code, out, runner = up(["destroy", "dev", "--yes", "--layers", "broker"], logs, LogGroupsInState(state.groups))
    assert code == 2 and runner.started() == [], out
    assert f"broker's log group {rotation} has CloudWatch Logs deletion protection on" in capsys.readouterr().err


def test_the_runner_reads_the_log_groups_of_the_state_as_exported() -> None:
    from shared.orchestrate.automation import log_group_names

    deployment = {"resources": [
        {"urn": "urn:a", "type": "aws:cloudwatch/logGroup:LogGroup", "id": "/platform/dev/compute/gateway"},
        {"urn": "urn:b", "type": "aws:cloudwatch/logGroup:LogGroup", "id": "/platform/dev/compute/old", "delete": True},
        {"urn": "urn:c", "type": "aws:cloudwatch/logGroup:LogGroup", "id": ""},
        {"urn": "urn:d", "type": "aws:iam/role:Role", "id": "/platform/dev/compute/role"}]}
    assert log_group_names(deployment) == ["/platform/dev/compute/gateway", "/platform/dev/compute/old"]
    assert log_group_names(None) == []


@pytest.mark.parametrize("action", ["destroy", "refresh"])
def test_a_destroy_or_refresh_with_another_account_s_credentials_stops_before_the_admin_secret_is_read(
        moto_aws: None, edit_env: Any, capsys: pytest.CaptureFixture[str], action: str) -> None:
    """A destroy or refresh runs no full preflight, so the external admin secret's read is its first AWS call: in
    another account it finds no secret, and its refusal would have the on-call create prod's broker admin
    credentials there. The account is checked first, and only that is said."""
    from tests.test_orchestrate_account import Clients, checker, roomy, up

    edit_env("prod", lambda data: data["messaging"].update(
        broker="external", external={"amqps_endpoint": "amqps://mq.example.com:5671",
                                     "management_endpoint": "https://mq.example.com"}))
    exact = ["--exact"] if action == "refresh" else []
    code, out, runner = up([action, "prod", "--yes", "--layers", "messaging", *exact],
                           checker(Clients(roomy(), caller="999999999999")), DeployedRunner())
    error = capsys.readouterr().err
    assert code == 2 and runner.started() == [], out
    assert "prod: the AWS credentials belong to account 999999999999" in out + error
    assert "create-secret" not in out + error


def test_a_destroy_s_log_group_check_asks_which_account_before_reading_any_group(moto_aws: None) -> None:
    """With another account's credentials DescribeLogGroups finds none of the env's groups, and a protected one would
    pass unseen: the account is checked first."""
    from shared.envs import load_env
    from shared.images import AwsAccessError
    from tests.test_orchestrate_account import Clients, checker, roomy

    logs_asked: list[str] = []

    class RecordingLogs:
        def get_paginator(self, name: str) -> Any:
            logs_asked.append(name)
            raise AssertionError("a log group was read before the account was checked")

    check = checker(Clients(roomy(), caller="999999999999", replace={"logs": RecordingLogs()}))
    with pytest.raises(AwsAccessError, match="the AWS credentials belong to account 999999999999"):
        check.destroy_blockers(load_env("dev"), ["compute"], {"compute": None})
    assert logs_asked == []
