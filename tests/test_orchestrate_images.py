"""Compute's `up` with its images: the registry first when images are missing, then the services, then
what ECS runs. With a recording runner and moto, and end to end through the fake `pulumi` CLI."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.components.ecr import release_tag
from shared.envs import EnvConfig, load_env
from shared.images import HeldRepository
from shared.orchestrate.automation import AutomationRunner
from shared.orchestrate.cli import main
from shared.orchestrate.images import (
    AwsImageChecks,
    ImageGatedRunner,
    program_buckets,
    registry_targets,
    synth_registry_targets,
)
from shared.orchestrate.model import Action, LayerResult, Operation, OutputSink, Status
from shared.urns import engine_urn
from tests.aws_helpers import (
    CONFIGS,
    MANIFEST,
    SERVICE_DEPLOYMENTS,
    SERVICE_DEPLOYMENTS_ERROR,
    MotoAccounts,
    ReleasedEverywhere,
    archive_images,
    create_repositories,
    push_image,
    run_service,
)
from tests.layers.compute_helpers import platform
from tests.loopback import Listener
from tests.test_orchestrate_automation import ENDPOINT_LAYER, FakeCli, install_fake_cli, option_values

OLD = "sha256:" + "cd" * 32
COMPUTE_URN = "urn:pulumi:dev::compute::mlplatform:compute:ComputePlatform"


# -- which resources step 1 updates ------------------------------------------------------------------------


def test_engine_urns_carry_every_ancestor_type_below_the_root_stack() -> None:
    document = platform("dev")["compute"]
    by_urn = {r["urn"]: r for r in document["resources"]}
    (lifecycle,) = [r for r in document["resources"]
                    if r["type"] == "aws:ecr/lifecyclePolicy:LifecyclePolicy" and r["name"] == "gateway-repo"]
    assert engine_urn(lifecycle, by_urn) == (
        f"{COMPUTE_URN}$mlplatform:compute:ServiceRepository$aws:ecr/repository:Repository"
        "$aws:ecr/lifecyclePolicy:LifecyclePolicy::gateway-repo")
    (provider,) = [r for r in document["resources"] if r["type"] == "pulumi:providers:aws"]
    assert engine_urn(provider, by_urn) == "urn:pulumi:dev::compute::pulumi:providers:aws::aws-dev"


def test_engine_urns_use_the_bare_stack_name_and_stop_at_the_root_stack() -> None:
    root = "urn:pulumi:acme/compute/prod::compute::pulumi:pulumi:Stack::compute-prod"
    component = {"urn": "urn:pulumi:acme/compute/prod::compute::pulumi:pulumi:Stack$my:x:Comp::c",
                 "type": "my:x:Comp", "name": "c", "parent": root}
    bucket = {"urn": "urn:pulumi:acme/compute/prod::compute::my:x:Comp$aws:s3/bucket:Bucket::b",
              "type": "aws:s3/bucket:Bucket", "name": "b", "parent": component["urn"]}
    by_urn = {r["urn"]: r for r in (component, bucket)}
    assert engine_urn(bucket, by_urn) == "urn:pulumi:prod::compute::my:x:Comp$aws:s3/bucket:Bucket::b"
    assert engine_urn(component, by_urn) == "urn:pulumi:prod::compute::my:x:Comp::c"


@pytest.mark.parametrize("env", ["dev", "staging"])
def test_step_1_targets_the_registry_and_what_it_needs_and_nothing_of_the_services(env: str) -> None:
    targets = registry_targets(platform(env)["compute"])
    assert targets == sorted(set(targets))
    prefix = f"urn:pulumi:{env}::compute::mlplatform:compute:ComputePlatform"
    repo = f"{prefix}$mlplatform:compute:ServiceRepository"
    for service in load_env(env).release.images:
        assert f"{repo}::{service}-repo" in targets
        assert f"{repo}$aws:ecr/repository:Repository::{service}-repo" in targets
    assert f"{prefix}$aws:kms/key:Key::compute-ecr" in targets  # the repositories are encrypted with it
    assert f"{prefix}::compute" in targets and f"urn:pulumi:{env}::compute::pulumi:providers:aws::aws-{env}" in targets
    replication = "ReplicationConfiguration" if env == "dev" else "RegistryPolicy"
    assert any(replication in urn for urn in targets)
    for excluded in ("aws:ecs/", "aws:iam/", "aws:cloudwatch/", "aws:appautoscaling/", "FargateService",
                     "StackReference", "pulumi:pulumi:Stack"):
        assert not [urn for urn in targets if excluded in urn], excluded
    assert synth_registry_targets(load_env(env)) == targets  # what the orchestrator synthesizes itself


# -- the two steps with a recording runner and the real AWS readers on moto -------------------------------


@dataclass
class Recorder:
    """Runs nothing; records each run's operation. ``on_targeted`` plays the world between the steps."""

    on_targeted: Any = None
    runs: list[tuple[str, Operation]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def prepare(self, env: EnvConfig, layers: Sequence[str], operation: Operation) -> None:
        return None

    def stack_outputs(self, layer: str, env: EnvConfig) -> Mapping[str, Any] | None:
        return {"management_endpoint": "https://127.0.0.1:9"}  # probed with `reachable` below

    def stack_exists(self, layer: str, env: EnvConfig) -> bool:
        return self.stack_outputs(layer, env) is not None

    def interrupt(self, terminate: bool = False) -> None:
        return None

    def run(self, layer: str, env: EnvConfig, operation: Operation, on_output: OutputSink) -> LayerResult:
        with self.lock:
            self.runs.append((layer, operation))
        if operation.targets and self.on_targeted is not None:
            self.on_targeted(env)
        return LayerResult(layer, Status.SUCCEEDED, {"create": 2} if operation.targets else {"create": 5})

    def compute_runs(self) -> list[Operation]:
        return [operation for layer, operation in self.runs if layer == "compute"]


def reachable(host: str, port: int, timeout_s: float) -> str | None:
    return None  # the broker's management API answers (not what these tests are about)


def up(env: str, runner: Recorder, checks: Any) -> tuple[int, str]:
    out = io.StringIO()
    return main(["up", env, "--yes"], runner=runner, out=out, images=checks, probe=reachable), out.getvalue()


def destroy(env: str, runner: Recorder, checks: Any) -> tuple[int, str]:
    out = io.StringIO()
    return main(["destroy", env, "--yes"], runner=runner, out=out, images=checks, probe=reachable), out.getvalue()


def up_dev_in_one_update() -> str:
    """`up dev` on moto: it must succeed with one ordinary update of compute (no step 1); its output."""
    runner = Recorder()
    code, output = up("dev", runner, AwsImageChecks(MotoAccounts()))
    assert code == 0, output
    assert runner.compute_runs() == [Operation(Action.UP)]
    return output


def settle_release(env: EnvConfig, monkeypatch: pytest.MonkeyPatch, running: dict[str, str] | None = None) -> None:
    for service, digest in env.release.images.items():
        run_service(env, service, (running or {}).get(service, digest), monkeypatch=monkeypatch)


def test_a_first_deploy_creates_the_registry_then_stops_naming_each_missing_digest(
        moto_aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    staging = load_env("staging")
    runner = Recorder(on_targeted=lambda env: create_repositories(env, list(env.release.images)))
    code, output = up("staging", runner, AwsImageChecks(MotoAccounts()))
    assert code == 1
    (step1,) = runner.compute_runs()  # the services were never attempted
    assert step1.action is Action.UP and step1.targets == tuple(synth_registry_targets(staging))
    for service, digest in staging.release.images.items():
        assert f"{service}: {digest} is not in 222222222222.dkr.ecr.eu-west-1.amazonaws.com/ml-platform/{service}" \
               f" (no such image)" in output
        assert f"crane copy 111111111111.dkr.ecr.eu-west-1.amazonaws.com/ml-platform/{service}@{digest}" in output
    assert "stopped after the registry, before the services" in output
    for urn in step1.targets:
        assert f"images:   --target {urn}" in output  # what to run by hand


def test_once_the_images_arrive_step_2_runs_the_full_update_and_ecs_is_checked(
        moto_aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    staging = load_env("staging")

    def replicated(env: EnvConfig) -> None:  # replication from dev lands once the repositories exist
        for service, digest in env.release.images.items():
            push_image(env, service, digest)

    settle_release(staging, monkeypatch)
    runner = Recorder(on_targeted=replicated)
    code, output = up("staging", runner, AwsImageChecks(MotoAccounts()))
    assert code == 0, output
    step1, step2 = runner.compute_runs()
    assert step1.targets and step2 == Operation(Action.UP)
    assert "step 2 of 2: the full update" in output
    assert f"ecs: every service runs its released digest ({len(staging.release.images)} checked)" in output
    assert "create 7" in output  # both steps' changes in the summary
    # The replicated copies arrived untagged; before the services pin them they get their release tag,
    # which the lifecycle policy keeps (the untagged rule would expire them).
    ecr = MotoAccounts()(staging, "ecr")
    for service, digest in staging.release.images.items():
        (detail,) = ecr.describe_images(repositoryName=f"ml-platform/{service}",
                                        imageIds=[{"imageDigest": digest}])["imageDetails"]
        assert release_tag(digest, staging.name) in detail.get("imageTags", []), service


def test_with_every_image_in_place_compute_is_one_ordinary_update(moto_aws: None,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    dev = load_env("dev")
    for service, digest in dev.release.images.items():
        push_image(dev, service, digest)
    settle_release(dev, monkeypatch)
    output = up_dev_in_one_update()
    assert "step 1" not in output


def test_an_update_ecs_rolled_back_fails_compute(moto_aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    dev = load_env("dev")
    for service, digest in dev.release.images.items():
        push_image(dev, service, digest)
    settle_release(dev, monkeypatch, running={"inference": OLD})  # the circuit breaker went back to OLD
    code, output = up("dev", Recorder(), AwsImageChecks(MotoAccounts()))
    assert code == 1
    release = dev.release.images["inference"]
    assert f"inference runs {OLD}, not the release's {release}" in output
    assert "ECS does not run what compute's up applied (rolled back?)" in output


@dataclass
class AppliedRecorder(Recorder):
    """compute's stack outputs record the task definition its last ``up`` applied to each ECS service."""

    applied: dict[str, str] = field(default_factory=dict)

    def stack_outputs(self, layer: str, env: EnvConfig) -> Mapping[str, Any] | None:
        outputs = dict(super().stack_outputs(layer, env) or {})
        if layer == "compute":
            outputs["services"] = {service: {"ecs_service_name": service, "task_definition_arn": arn}
                                   for service, arn in self.applied.items()}
        return outputs


def settle_applied(env: EnvConfig, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Each service of the release running in ECS; its task definition's ARN."""
    for service, digest in env.release.images.items():
        push_image(env, service, digest)
    return {service: run_service(env, service, digest, monkeypatch=monkeypatch)
            for service, digest in env.release.images.items()}


def test_a_config_change_ecs_rolled_back_fails_compute_and_every_up_until_ecs_runs_it(
        moto_aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """A change of the task definition but not of the image (an env file's cpu/memory, a catalog change of the
    container's environment or health check) that the circuit breaker rolled back: ECS runs the previous revision,
    with the release's digest, while compute's outputs record the new one. The provider reports the update a success
    (a rollback ends steady too: pulumi/pulumi-awsx#1848, terraform-provider-aws #20858), and a digest comparison
    saw nothing: `up` said every service runs its release while the env ran the old configuration."""
    dev = load_env("dev")
    running = settle_applied(dev, monkeypatch)
    ecs = MotoAccounts()(dev, "ecs")
    image = ecs.describe_task_definition(taskDefinition=running["inference"])["taskDefinition"]["containerDefinitions"]
    applied = ecs.register_task_definition(  # what compute's up registered: more memory, the same image
        family="dev-inference", requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="1024",
        containerDefinitions=image)["taskDefinition"]["taskDefinitionArn"]
    runner = AppliedRecorder(applied={**running, "inference": applied})
    for attempt in ("the up", "the next up, rolled back again"):
        code, output = up("dev", runner, AwsImageChecks(MotoAccounts()))
        assert code == 1, (attempt, output)
        assert f"inference runs task definition {running['inference']}, not {applied}, which compute's up " \
               "applied" in output, attempt
        assert "ECS does not run what compute's up applied (rolled back?)" in output, attempt
        assert "deploys the release again, which ECS rolls back again until its cause is fixed" in output, attempt
        assert "undo the change: a release with `nox -s promote -- dev@<revision> dev`" in output, attempt
        assert "every service runs" not in output, attempt
    assert len(runner.compute_runs()) == 2


def test_a_rollback_of_a_service_released_by_tag_fails_compute_too(moto_aws: None, monkeypatch: pytest.MonkeyPatch,
                                                                    edit_env: Any) -> None:
    """A release entry may be a tag (the env schema takes one): no digest to compare, but its ECS service's task
    definition is compared all the same (it was not looked at: only digest-pinned services were read)."""
    edit_env("dev", lambda data: data["release"]["images"].update(inference="v1.4.2"))
    dev = load_env("dev")
    digest = load_env("staging").release.images["inference"]
    push_image(dev, "inference", digest, tag="v1.4.2")
    running: dict[str, str] = {}
    for service, ref in dev.release.images.items():
        if ref.startswith("sha256:"):
            push_image(dev, service, ref)
        running[service] = run_service(dev, service, digest if service == "inference" else ref,
                                       monkeypatch=monkeypatch)
    applied = running["inference"].rsplit(":", 1)[0] + ":2"  # the revision compute's up registered after it
    runner = AppliedRecorder(applied={**running, "inference": applied})
    code, output = up("dev", runner, AwsImageChecks(MotoAccounts()))
    assert code == 1, output
    assert f"inference runs task definition {running['inference']}, not {applied}" in output


def test_the_applied_task_definitions_name_each_ecs_service_canary_versions_included() -> None:
    from shared.images import applied_task_definitions

    td = "arn:aws:ecs:eu-west-1:111111111111:task-definition/dev-{}:7"
    outputs = {"services": {
        "inference": {"ecs_service_name": "inference-stable", "task_definition_arn": td.format("inference-stable"),
                      "versions": {v: {"ecs_service_name": f"inference-{v}", "ecs_service_arn": "arn",
                                       "task_definition_arn": td.format(f"inference-{v}")}
                                   for v in ("stable", "canary")}},
        "gateway": {"ecs_service_name": "gateway", "task_definition_arn": td.format("gateway"), "versions": {}},
        "training": {"ecs_service_name": "training"},  # deployed before the field: nothing to compare
    }}
    assert applied_task_definitions(outputs) == {name: td.format(name)
                                                 for name in ("inference-stable", "inference-canary", "gateway")}
    assert applied_task_definitions(None) == applied_task_definitions({}) == {}


def test_ecs_running_the_task_definitions_compute_applied_passes(moto_aws: None,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    dev = load_env("dev")
    runner = AppliedRecorder(applied=settle_applied(dev, monkeypatch))
    code, output = up("dev", runner, AwsImageChecks(MotoAccounts()))
    assert code == 0, output
    assert f"ecs: every service runs its released digest and the task definition compute applied " \
           f"({len(dev.release.images)} checked)" in output


def test_a_released_service_resting_at_0_tasks_is_a_note_not_a_failure(
        moto_aws: None, monkeypatch: pytest.MonkeyPatch, edit_env: Any) -> None:
    """A service at min_count 0 with no backlog: the provider leaves its desired count to the scalable target
    (ignore_changes), so the update's deployment of the new digest completes at 0 tasks without starting one. That is
    as configured (its backlog starts the first task), so compute passes, but it says no task runs the digest yet:
    promotion's deployed gate refuses it from dev until one does."""
    edit_env("dev", lambda data: data["services"]["training"].update(min_count=0))
    dev = load_env("dev")
    applied: dict[str, str] = {}
    for service, digest in dev.release.images.items():
        push_image(dev, service, digest)
        applied[service] = run_service(dev, service, digest, monkeypatch=monkeypatch,
                                       desired=0 if service == "training" else 1)
    code, output = up("dev", AppliedRecorder(applied=applied), AwsImageChecks(MotoAccounts()))
    assert code == 0, output
    training = dev.release.images["training"]
    assert (f"ecs: note: training rests at 0 tasks: no task runs {training} (its deployment completed without a "
            "task): it first starts when its queue's backlog wakes it; promoting it from dev is refused until a task "
            "runs it") in output
    assert output.count("ecs: note:") == 1, output  # the services that run a task are no note
    assert "ecs: every service runs its released digest" in output


def deployment(env: EnvConfig, service: str, status: str, created_at: datetime, reason: str = "") -> dict[str, Any]:
    """A ListServiceDeployments brief of ``service``'s deployment in the env's cluster."""
    base = f"arn:aws:ecs:{env.region}:{env.account_id}:"
    cluster = f"{env.name}-ml-platform"
    return {"serviceDeploymentArn": f"{base}service-deployment/{cluster}/{service}/{int(created_at.timestamp())}",
            "serviceArn": f"{base}service/{cluster}/{service}", "clusterArn": f"{base}cluster/{cluster}",
            "createdAt": created_at, "status": status, **({"statusReason": reason} if reason else {})}


def record_deployments(env: EnvConfig, monkeypatch: pytest.MonkeyPatch, service: str,
                       *deployments: dict[str, Any]) -> None:
    from shared.components.compute import cluster_name

    key = (env.account_id, env.region, cluster_name(env.name), service)
    monkeypatch.setitem(SERVICE_DEPLOYMENTS, key, [*SERVICE_DEPLOYMENTS.get(key, []), *deployments])


@dataclass
class DeployingRecorder(AppliedRecorder):
    """compute's update starts the deployments ``during_update`` records (ECS's record of them, as it keeps it)."""

    during_update: Any = None

    def run(self, layer: str, env: EnvConfig, operation: Operation, on_output: OutputSink) -> LayerResult:
        result = super().run(layer, env, operation, on_output)
        if layer == "compute" and not operation.targets and self.during_update is not None:
            self.during_update(env)
        return result


CIRCUIT_BREAKER = "ECS deployment circuit breaker: tasks failed to start."


def test_a_rollback_of_a_change_that_kept_the_task_definition_fails_compute(
        moto_aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """A change that starts a deployment without a new task definition (a Service Connect configuration from the mesh
    layer's namespace, the network configuration's subnets or security group, a load balancer) and that the circuit
    breaker rolled back: ECS runs the same revision and digest, so the comparisons saw nothing and `up` said every
    service runs its release while ECS ran the previous configuration. ECS's own record of the deployment says it."""
    dev = load_env("dev")
    runner = DeployingRecorder(applied=settle_applied(dev, monkeypatch), during_update=lambda env: record_deployments(
        env, monkeypatch, "inference",
        deployment(env, "inference", "ROLLBACK_SUCCESSFUL", datetime.now(UTC), CIRCUIT_BREAKER)))
    code, output = up("dev", runner, AwsImageChecks(MotoAccounts()))
    assert code == 1, output
    assert f"inference: ECS rolled its deployment back (ROLLBACK_SUCCESSFUL: {CIRCUIT_BREAKER}; " \
           "arn:aws:ecs:eu-west-1:111111111111:service-deployment/dev-ml-platform/inference/" in output
    assert "ECS does not run what compute's up applied (rolled back?)" in output
    assert "deploys the release again, which ECS rolls back again until its cause is fixed" in output
    assert "undo the change: a release with `nox -s promote -- dev@<revision> dev`" in output
    assert "every service runs" not in output


def test_services_without_a_rolled_back_deployment_since_the_update_pass(
        moto_aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing of a service changed: no deployment since the update started, and a rollback of an earlier `up` is
    not this one's. A rollback just before the update that a newer deployment superseded is not one either."""
    dev = load_env("dev")
    now = datetime.now(UTC)
    record_deployments(dev, monkeypatch, "inference",
                       deployment(dev, "inference", "ROLLBACK_SUCCESSFUL", now - timedelta(hours=2), CIRCUIT_BREAKER))
    runner = DeployingRecorder(applied=settle_applied(dev, monkeypatch), during_update=lambda env: record_deployments(
        env, monkeypatch, "training",
        deployment(env, "training", "ROLLBACK_SUCCESSFUL", now - timedelta(minutes=1), CIRCUIT_BREAKER),
        deployment(env, "training", "SUCCESSFUL", datetime.now(UTC))))
    code, output = up("dev", runner, AwsImageChecks(MotoAccounts()))
    assert code == 0, output
    assert "rolled its deployment back" not in output


def test_a_region_without_ecs_service_deployments_notes_it_and_passes(
        moto_aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    dev = load_env("dev")
    monkeypatch.setitem(SERVICE_DEPLOYMENTS_ERROR, "code", "UnsupportedFeatureException")
    code, output = up("dev", AppliedRecorder(applied=settle_applied(dev, monkeypatch)), AwsImageChecks(MotoAccounts()))
    assert code == 0, output
    assert "ecs: note: ECS ListServiceDeployments is not available in eu-west-1 (UnsupportedFeatureException): a " \
           "rollback of a change that kept the task definition (Service Connect, network configuration) is not " \
           "checked" in output


@pytest.mark.parametrize("action", ["up", "destroy"])  # destroy: the registry it reads first must be the env's
def test_credentials_of_another_account_stop_the_run_before_any_layer(
        moto_aws: None, capsys: pytest.CaptureFixture[str], action: str) -> None:
    runner = Recorder()
    code, _ = {"up": up, "destroy": destroy}[action](
        "prod", runner, AwsImageChecks(MotoAccounts(caller=load_env("dev").account_id)))
    assert code == 2
    assert runner.runs == []
    assert "prod: the AWS credentials belong to account 111111111111" in capsys.readouterr().err


def test_without_compute_or_for_other_actions_nothing_is_asked(moto_aws: None) -> None:
    class Refuses(ReleasedEverywhere):
        def verify(self, env: EnvConfig) -> None:
            raise AssertionError("asked AWS")

    runner = Recorder()
    out = io.StringIO()
    for argv in (["up", "dev", "--yes", "--layers", "network"], ["preview", "dev", "--layers", "broker"],
                 ["refresh", "dev", "--yes"], ["destroy", "dev", "--preview-only"]):
        assert main(argv, runner=runner, out=out, images=Refuses(), probe=reachable) == 0, out.getvalue()


# -- compute's preview: the registry read, nothing written -------------------------------------------------


def preview(env: str, runner: Recorder, checks: Any) -> tuple[int, str]:
    out = io.StringIO()
    return main(["preview", env], runner=runner, out=out, images=checks, probe=reachable), out.getvalue()


class WritesNothing(AwsImageChecks):
    """The real readers on moto; a preview must never tag a release (ECR PutImage) nor need ECS."""

    def tag_release(self, env: EnvConfig, stop: Any = None) -> list[Any]:
        raise AssertionError("a preview tagged images")

    def running(self, env: EnvConfig, services: Sequence[str]) -> list[Any]:
        raise AssertionError("a preview asked ECS")


def test_compute_preview_says_the_up_would_stop_on_a_released_image_missing_from_the_registry(
        moto_aws: None) -> None:
    """A pull request naming a digest nobody pushed: its preview succeeds (the plan is what it is) but says, in the
    output and compute's row of the table (the CI job summary), that the `up` would stop before the services."""
    dev = load_env("dev")
    for service, digest in dev.release.images.items():
        if service != "inference":
            push_image(dev, service, digest)
    runner = Recorder()
    code, output = preview("dev", runner, WritesNothing(MotoAccounts()))
    assert code == 0, output
    assert runner.compute_runs() == [Operation(Action.PREVIEW)]  # previewed as always, no targeted step
    digest = dev.release.images["inference"]
    assert f"inference: {digest} is not in 111111111111.dkr.ecr.eu-west-1.amazonaws.com/ml-platform/inference" in output
    table = " ".join(output[output.rindex("┏"):].replace("│", " ").split())  # the row may wrap
    assert "compute succeeded create 5; up stops before the services (after creating the registry)" in table
    assert "dev's registry: inference" in table


def test_compute_preview_says_the_up_would_stop_on_an_image_of_another_platform(
        moto_aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    dev = load_env("dev")
    arm = "sha256:" + "a" * 64
    monkeypatch.setitem(CONFIGS, arm, json.dumps({"os": "linux", "architecture": "arm64"}).encode())
    for service, digest in dev.release.images.items():
        push_image(dev, service, digest, manifest=MANIFEST.replace("0" * 64, "a" * 64) if service == "gateway"
                   else MANIFEST)
    code, output = preview("dev", Recorder(), WritesNothing(MotoAccounts()))
    assert code == 0, output
    assert "images: wrong platform: gateway:" in output and "linux/arm64" in output


def test_compute_preview_with_every_image_in_place_says_nothing_of_images(moto_aws: None) -> None:
    dev = load_env("dev")
    for service, digest in dev.release.images.items():
        push_image(dev, service, digest)
    code, output = preview("dev", Recorder(), WritesNothing(MotoAccounts()))
    assert code == 0, output
    assert "images:" not in output and "up stops" not in output


def test_compute_preview_with_credentials_that_cannot_read_the_registry_notes_it_and_previews(
        moto_aws: None) -> None:
    """Another account's credentials (or a role without ECR reads): the preview is not refused (exit 2 is up's),
    it says the images were not checked."""
    runner = Recorder()
    code, output = preview("prod", runner, WritesNothing(MotoAccounts(caller=load_env("dev").account_id)))
    assert code == 0, output
    assert runner.compute_runs() == [Operation(Action.PREVIEW)]
    assert "images: not checked: prod: the AWS credentials belong to account 111111111111" in output


# -- compute's destroy with its repositories ---------------------------------------------------------------


def test_a_repository_holding_images_stops_the_destroy_before_anything_is_deleted(moto_aws: None) -> None:
    dev = load_env("dev")
    create_repositories(dev, list(dev.release.images))
    # one manifest under two tags (moto digests the manifest): one image, listed twice by ListImages
    push_image(dev, "inference", OLD)
    push_image(dev, "inference", dev.release.images["inference"])
    runner = Recorder()
    code, output = destroy("dev", runner, AwsImageChecks(MotoAccounts()))
    assert code == 1
    # compute's destroy never started (ECR's DeleteRepository would refuse only after the services, roles and
    # the artifact bucket had gone), and nothing it reads was destroyed either
    assert runner.runs == []
    assert "nothing of compute was deleted" in output
    assert "ml-platform/inference holds 1 image(s)" in output
    assert (f"aws ecr delete-repository --region {dev.region} --repository-name ml-platform/inference --force"
            in output)
    assert "ml-platform/gateway" not in output  # empty: the destroy deletes it (and has no release of dev's to keep)
    # deleting them deletes the released digests the next up of dev.yaml asks for again: named, with the copy that
    # keeps each digest unchanged, and where replication holds them too
    flat = " ".join(output.replace("│", " ").split())
    assert ("First: the next `up` of environments/dev.yaml asks for its released images again, digest for digest"
            in flat), flat
    assert flat.index("First: the next `up`") < flat.index("Then empty or delete them")  # kept before deleting
    digest = dev.release.images["inference"]  # gateway's repository is empty: its release is not there to keep
    assert (f"(inference@{digest}), which a rebuild does not give: keep each first (where the repository holds it), "
            "digest unchanged: `crane copy "
            f"111111111111.dkr.ecr.eu-west-1.amazonaws.com/ml-platform/inference@{digest} <registry that outlives "
            f"dev>/ml-platform/inference:{release_tag(digest, 'dev')}`") in output
    assert "copy them back from prod, staging after" in " ".join(output.replace("│", " ").split())


def test_a_replica_env_s_destroy_names_no_released_images_to_keep(moto_aws: None) -> None:
    """staging's released images come from dev by replication: its next up copies them from there again."""
    staging = load_env("staging")
    create_repositories(staging, list(staging.release.images))
    push_image(staging, "inference", staging.release.images["inference"])
    code, output = destroy("staging", Recorder(), AwsImageChecks(MotoAccounts()))
    assert code == 1 and "ml-platform/inference holds 1 image(s)" in output
    assert "asks for its released images again" not in output


def test_dev_s_up_after_its_repositories_were_deleted_names_the_copy_back(moto_aws: None) -> None:
    """dev pushes its own images: a destroy deleted them with the repositories, and a rebuild gives other digests.
    The stop names the digest-preserving copy from each env dev replicates to, and what a rebuild means."""
    dev = load_env("dev")
    runner = Recorder(on_targeted=lambda env: create_repositories(env, list(env.release.images)))
    code, output = up("dev", runner, AwsImageChecks(MotoAccounts()))
    assert code == 1
    for service, digest in dev.release.images.items():
        tag = release_tag(digest, "dev")
        for replica in (load_env("staging"), load_env("prod")):
            assert (f"`crane copy {replica.account_id}.dkr.ecr.{replica.region}.amazonaws.com/ml-platform/{service}@"
                    f"{digest} 111111111111.dkr.ecr.eu-west-1.amazonaws.com/ml-platform/{service}:{tag}` (from "
                    f"{replica.name}, where dev's replication copied each push)") in output, output
    assert "a rebuild of a released image gives another digest: name the new one in environments/dev.yaml's " \
        "release.images instead); where a destroy deleted it with dev's repositories, copy it back" in output


def test_a_repository_holding_only_archived_images_stops_the_destroy_too(moto_aws: None) -> None:
    """ListImages answers ACTIVE images only unless asked for ANY (botocore ecr ListImagesFilter), and an archived
    image is still the repository's: DeleteRepository would refuse it after the services and roles had gone."""
    dev = load_env("dev")
    create_repositories(dev, list(dev.release.images))
    push_image(dev, "inference", OLD)
    (digest,) = {image["imageDigest"] for image in MotoAccounts()(dev, "ecr").list_images(
        repositoryName="ml-platform/inference")["imageIds"]}
    runner = Recorder()
    code, output = destroy("dev", runner, AwsImageChecks(ArchivedAccounts([digest], strict=True)))
    assert code == 1 and runner.runs == [], output
    assert "ml-platform/inference holds 1 image(s)" in output


def test_empty_repositories_let_the_destroy_run_every_layer(moto_aws: None) -> None:
    dev = load_env("dev")
    create_repositories(dev, list(dev.release.images))
    runner = Recorder()
    code, output = destroy("dev", runner, AwsImageChecks(MotoAccounts()))
    assert code == 0, output
    assert runner.runs[0][0] == "compute"
    assert len(runner.runs) == 6


def test_a_retired_service_s_repository_the_state_holds_with_images_stops_the_destroy(moto_aws: None) -> None:
    """A service removed from the catalog whose repository compute's state still holds (the up that deletes it was
    refused while it held images): the destroy deletes it too, and DeleteRepository refuses it after the services
    and the artifact bucket have gone. Asked of the registry with the catalog's."""
    dev = load_env("dev")
    create_repositories(dev, list(dev.release.images))
    push_image(dev, "retired", OLD)

    class Deployed(Recorder):
        def stack_outputs(self, layer: str, env: EnvConfig) -> Mapping[str, Any] | None:
            if layer != "compute":
                return super().stack_outputs(layer, env)
            urls = {service: f"{dev.account_id}.dkr.ecr.{dev.region}.amazonaws.com/ml-platform/{service}"
                    for service in [*dev.release.images, "retired"]}
            return {"repository_urls": urls}

    runner = Deployed()
    code, output = destroy("dev", runner, AwsImageChecks(MotoAccounts()))
    assert code == 1 and runner.runs == [], output
    assert "nothing of compute was deleted" in output and "ml-platform/retired holds 1 image(s)" in output


def test_a_load_balancer_with_aws_deletion_protection_stops_the_destroy_before_anything(
        moto_aws: None) -> None:
    """Prod's gateway ALB (its flag set where the env protects state) once its Pulumi protect was lifted, or any
    env's whose flag a remediation turned on: the destroy would delete the listener, target groups and services,
    then stop at DeleteLoadBalancer. ELB is asked first; off (or gone), the destroy runs."""
    from shared.orchestrate.automation import state_load_balancers

    dev = load_env("dev")
    create_repositories(dev, list(dev.release.images))
    for protected in (True, False):
        arn = aws_gateway_alb(dev, protected=protected)
        runner = ProtectedBalancerRecorder(balancers=state_load_balancers({"resources": [gateway_alb(
            dev, protected=protected, id=arn, outputs={"arn": arn})]}))
        code, output = destroy("dev", runner, AwsImageChecks(MotoAccounts()))
        if protected:
            assert code == 1 and runner.runs == [], output
            assert f"load balancers: AWS deletion protection on: gateway-alb ({arn})" in output
            assert ("nothing of compute was deleted: AWS's deletion protection on gateway-alb refuses "
                    "DeleteLoadBalancer (OperationNotPermitted)") in output
            assert f"--load-balancer-arn {arn} --attributes Key=deletion_protection.enabled,Value=false" in output
        else:
            assert code == 0, output
            assert runner.runs[0][0] == "compute"


def test_a_repository_compute_did_not_create_does_not_stop_its_destroy(moto_aws: None) -> None:
    dev = load_env("dev")
    ecr = MotoAccounts.client(dev.account_id, dev.region, "ecr")
    ecr.create_repository(repositoryName="ml-platform/gateway")  # AES256: not compute's, not in its state
    ecr.put_image(repositoryName="ml-platform/gateway", imageManifest=MANIFEST, imageTag="latest")
    code, output = destroy("dev", Recorder(), AwsImageChecks(MotoAccounts()))
    assert code == 0, output


def test_a_repository_of_a_name_compute_s_state_holds_stops_its_destroy_whoever_made_it(moto_aws: None) -> None:
    """A first destroy was refused, the repositories were deleted by hand, and same-account replication made one
    again (AES256) on dev's next push: compute's state still holds the name, so its destroy deletes that repository,
    and ECR refuses it with the image."""
    dev = load_env("dev")
    ecr = MotoAccounts.client(dev.account_id, dev.region, "ecr")
    ecr.create_repository(repositoryName="ml-platform/gateway")  # AES256: replication's, under compute's name
    ecr.put_image(repositoryName="ml-platform/gateway", imageManifest=MANIFEST, imageTag="latest")

    class Deployed(Recorder):
        def stack_outputs(self, layer: str, env: EnvConfig) -> Mapping[str, Any] | None:
            if layer != "compute":
                return super().stack_outputs(layer, env)
            return {"repository_urls": {"gateway": f"{dev.account_id}.dkr.ecr.{dev.region}.amazonaws.com/"
                                                   "ml-platform/gateway"}}

    runner = Deployed()
    code, output = destroy("dev", runner, AwsImageChecks(MotoAccounts()))
    assert code == 1 and runner.runs == [], output
    assert "ml-platform/gateway holds 1 image(s)" in output


def test_a_protected_compute_is_refused_for_its_protect_and_its_registry_is_not_asked(
        moto_aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    """prod: the state protects the repositories, and the destroy is refused for that before any layer runs; the
    registry is not asked (it would send the operator to delete prod's images before telling of the protect)."""
    prod = load_env("prod")
    push_image(prod, "inference", OLD)

    class Protected(Recorder):
        def protected_urns(self, layer: str, env: EnvConfig) -> list[str]:
            return [f"urn:pulumi:prod::{layer}::aws:ecr/repository:Repository::inference-repo"] \
                if layer == "compute" else []

    class NotAsked(AwsImageChecks):
        def held(self, env: EnvConfig, services: Sequence[str] | None = None) -> list[HeldRepository]:
            raise AssertionError("asked the registry")

    runner = Protected()
    code, output = destroy("prod", runner, NotAsked(MotoAccounts()))
    assert code == 1, output
    assert runner.runs == []
    assert "the state of compute marks resources protect" in capsys.readouterr().err


# -- compute's destroy and its buckets without force_destroy -----------------------------------------------------


def alb_log_bucket(env: EnvConfig, *, holding: bool) -> str:
    """The gateway's ALB access-log bucket in moto, ``holding`` an access log or empty; its name."""
    from shared.components.gateway import access_log_bucket_name

    name = access_log_bucket_name(env.name, "gateway", env.account_id)
    s3 = MotoAccounts()(env, "s3")
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": env.region})
    if holding:
        s3.put_object(Bucket=name, Key=f"alb/AWSLogs/{env.account_id}/elasticloadbalancing/x.log.gz", Body=b"log")
    return name


def test_the_state_s_buckets_without_force_destroy_are_read_from_the_export() -> None:
    """The provider's delete takes force_destroy from the state: a bucket deployed before its program set the flag
    (no forceDestroy recorded, or false) counts until an up stores it; an old copy marked delete does not, nor one
    marked pendingReplacement (a delete-before-replace deleted it already: there is nothing to empty)."""
    from shared.orchestrate.automation import unforced_buckets

    def bucket(name: str, **extra: Any) -> dict[str, Any]:
        return {"urn": f"urn:pulumi:dev::compute::aws:s3/bucket:Bucket::{name}", "type": "aws:s3/bucket:Bucket",
                "id": name, **extra}

    deployment = {"resources": [
        {"urn": "urn:pulumi:dev::compute::pulumi:pulumi:Stack::compute-dev", "type": "pulumi:pulumi:Stack"},
        bucket("forced", outputs={"bucket": "forced", "forceDestroy": True}),
        bucket("kept", outputs={"bucket": "kept", "forceDestroy": False}),
        bucket("older", inputs={"bucket": "older"}, outputs={"bucket": "older"}),
        bucket("replaced", outputs={"forceDestroy": False}, delete=True),
        bucket("deleted-before-replace", outputs={"forceDestroy": False}, pendingReplacement=True),
        {"urn": "urn:pulumi:dev::compute::aws:ecr/repository:Repository::r", "type": "aws:ecr/repository:Repository",
         "id": "r", "outputs": {"forceDelete": False}},
    ]}
    assert unforced_buckets(deployment) == ["kept", "older"]
    assert unforced_buckets(None) == []


@dataclass
class UnforcedRecorder(Recorder):
    """compute's state holds ``buckets`` without force_destroy (AutomationRunner.unforced_buckets)."""

    buckets: list[str] = field(default_factory=list)

    def unforced_buckets(self, layer: str, env: EnvConfig) -> list[str]:
        return list(self.buckets) if layer == "compute" else []


def test_a_bucket_the_state_keeps_without_force_destroy_holding_logs_stops_the_destroy_before_anything(
        moto_aws: None) -> None:
    """A dev stack deployed before the ALB's log bucket had force_destroy: its state still says no, and the provider
    reads the flag from the state. The ALB writes logs all along, so the destroy deleted the ALB, services and roles,
    then stopped at the bucket (BucketNotEmpty), half-way. Asked of S3 first; an `up` stores the flag."""
    dev = load_env("dev")
    name = alb_log_bucket(dev, holding=True)
    runner = UnforcedRecorder(buckets=[name])
    code, output = destroy("dev", runner, AwsImageChecks(MotoAccounts()))
    assert code == 1, output
    assert runner.runs == []  # nothing of compute, nothing it reads
    said = " ".join(output.replace("│", " ").split())
    assert f"buckets: without force_destroy, not empty: {name} holds objects; `aws s3 rm s3://{name} --recursive" \
        in said
    assert "nothing of compute was deleted: S3 refuses to delete a bucket that holds objects (BucketNotEmpty)" in said
    assert "`nox -s up -- dev --layers compute --exact` stores it" in said
    # emptied while the ALB runs, it would hold a new log by the time the destroy reaches it
    assert "Key=access_logs.s3.enabled,Value=false`, then 5 minutes for the last delivery" in said


def test_a_bucket_refusal_comes_before_the_repositories_one_whose_emptying_the_up_it_asks_for_would_fail(
        moto_aws: None) -> None:
    """Both would refuse: emptying the repositories first (the other refusal's advice) would leave the `up` that
    stores force_destroy without its released images."""
    dev = load_env("dev")
    create_repositories(dev, list(dev.release.images))
    push_image(dev, "inference", dev.release.images["inference"])
    code, output = destroy("dev", UnforcedRecorder(buckets=[alb_log_bucket(dev, holding=True)]),
                           AwsImageChecks(MotoAccounts()))
    assert code == 1
    said = " ".join(output.replace("│", " ").split())
    assert "`nox -s up -- dev --layers compute --exact` stores it" in said and "holds 1 image(s)" not in said


def test_an_unprotected_prod_s_buckets_holding_objects_stop_its_destroy_and_are_not_forced(moto_aws: None) -> None:
    """prod keeps its buckets without force_destroy (its logs and models): released from protect, its destroy still
    stops before anything is deleted while they hold objects, saying to empty them, never to force them."""
    prod = load_env("prod")
    name = alb_log_bucket(prod, holding=True)
    code, output = destroy("prod", UnforcedRecorder(buckets=[name]), AwsImageChecks(MotoAccounts()))
    assert code == 1, output
    said = " ".join(output.replace("│", " ").split())
    assert "prod protects state, so they keep their objects" in said and "nox -s up" not in said
    assert "access_logs.s3.enabled,Value=false" in said


@pytest.mark.parametrize("bucket", ["empty", "gone"])
def test_an_empty_or_deleted_bucket_without_force_destroy_lets_the_destroy_run(moto_aws: None, bucket: str) -> None:
    dev = load_env("dev")
    name = alb_log_bucket(dev, holding=False) if bucket == "empty" else "ml-dev-gateway-alb-logs-gone"
    runner = UnforcedRecorder(buckets=[name])
    code, output = destroy("dev", runner, AwsImageChecks(MotoAccounts()))
    assert code == 0, output
    assert runner.runs[0][0] == "compute" and len(runner.runs) == 6


def compute_alone(runner: Recorder, checks: Any, env_name: str = "dev") -> tuple[int, str]:
    out = io.StringIO()
    return main(["up", env_name, "--yes", "--layers", "compute", "--exact"], runner=runner, out=out, images=checks,
                probe=reachable), out.getvalue()


def released_compute_up(env: EnvConfig, runner: Recorder, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    """compute's `up` (alone) in ``env`` on moto, every released image in the registry and running: its exit code and
    output (on one line, the summary's table borders dropped)."""
    for service, digest in env.release.images.items():
        push_image(env, service, digest)
    settle_release(env, monkeypatch)
    code, output = compute_alone(runner, AwsImageChecks(MotoAccounts()), env.name)
    return code, " ".join(output.replace("│", " ").split())


def compute_up_with_unforced_bucket(env_name: str, monkeypatch: pytest.MonkeyPatch, *,
                                    holding: bool) -> tuple[UnforcedRecorder, int, str]:
    """compute's `up` (alone) in ``env_name``, every released image running, its state holding the ALB access-log bucket
    of a public gateway the env no longer declares (no shipped env has one), without force_destroy."""
    env = load_env(env_name)
    runner = UnforcedRecorder(buckets=[alb_log_bucket(env, holding=holding)])
    return runner, *released_compute_up(env, runner, monkeypatch)


def test_an_up_that_would_delete_a_bucket_its_state_keeps_without_force_destroy_stops_before_any_change(
        moto_aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """A public gateway turned off (or its service removed) on a stack deployed before its log bucket had force_destroy:
    the up deletes the bucket with the state's flag, none, and S3 refuses (BucketNotEmpty) after the load balancer and
    what came before it were deleted, on every later up again. Asked of S3 first; the program's own buckets (the
    model-artifact store's) are not in question."""
    runner, code, said = compute_up_with_unforced_bucket("dev", monkeypatch, holding=True)
    name = runner.buckets[0]
    assert code == 1, said
    assert runner.compute_runs() == []
    assert (f"buckets: no longer in compute's program, without force_destroy, not empty: {name} holds objects; "
            f"`aws s3 rm s3://{name} --recursive") in said
    assert (f"nothing of compute was changed: its up would delete {name} (no longer in its program), S3 refuses to "
            "delete a bucket that holds objects (BucketNotEmpty)") in said
    assert "Key=access_logs.s3.enabled,Value=false`, then 5 minutes for the last delivery" in said
    assert "put back what declared it for one `up`, which stores force_destroy, before removing it" in said


def test_an_up_removing_an_empty_unforced_bucket_or_keeping_its_buckets_goes_on(
        moto_aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    runner, code, said = compute_up_with_unforced_bucket("dev", monkeypatch, holding=False)
    assert code == 0 and runner.compute_runs() == [Operation(Action.UP)], said
    # the program's own buckets, unforced in an older state, are updated (the up stores the flag), not deleted
    dev = load_env("dev")
    kept = program_buckets(platform("dev")["compute"])
    assert kept and all(dev.account_id in name for name in kept)
    settle_release(dev, monkeypatch)  # its images are in the registry since the first up
    runner = UnforcedRecorder(buckets=kept)
    code, output = compute_alone(runner, AwsImageChecks(MotoAccounts()))
    assert code == 0 and runner.compute_runs() == [Operation(Action.UP)], output


def test_prod_s_refusal_says_to_keep_what_must_be_kept_first(moto_aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """prod's buckets are protected in the state as well: Pulumi's engine refuses to delete them until released."""
    _, code, said = compute_up_with_unforced_bucket("prod", monkeypatch, holding=True)
    assert code == 1, said
    assert ("prod protects state, so they keep their objects: copy what must be kept (access logs are audit evidence, "
            "models are trained data), then empty it") in said
    prod = load_env("prod")
    assert (f"release it from the state's protect for that up: `pulumi state unprotect --stack "
            f"{prod.pulumi_org}/compute/prod '<URN>'` in stacks/compute") in said
    assert "put back" not in said  # prod's program never sets force_destroy


def protected_prod_destroy_refusal(capsys: pytest.CaptureFixture[str]) -> str:
    """prod's destroy, compute's state protecting the ALB's log bucket: refused before any layer; what it says."""
    class Protected(Recorder):
        def protected_urns(self, layer: str, env: EnvConfig) -> list[str]:
            return [f"urn:pulumi:prod::{layer}::aws:s3/bucket:Bucket::gateway-alb-logs"] if layer == "compute" else []

    code, _ = destroy("prod", Protected(), AwsImageChecks(MotoAccounts()))
    assert code == 1
    return " ".join(capsys.readouterr().err.split())


def test_a_protected_compute_s_refusal_says_its_buckets_must_be_emptied_once_released(
        moto_aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    err = protected_prod_destroy_refusal(capsys)
    assert ("compute's S3 buckets (the ALB's access logs, the models) have no force_destroy there: once released, the "
            "destroy still stops before deleting anything while one holds objects") in err
    assert "deletion_protection.enabled" not in err  # prod has no public gateway


def test_a_protected_public_gateway_s_refusal_says_its_load_balancer_s_deletion_protection_must_be_lifted(
        moto_aws: None, capsys: pytest.CaptureFixture[str], edit_env: Any) -> None:
    """AWS's own deletion protection (enable_deletion_protection where the env protects state) survives releasing the
    state's protect: the destroy would delete the services, then stop at DeleteLoadBalancer (OperationNotPermitted)."""
    edit_env("prod", public_gateway_on)
    err = protected_prod_destroy_refusal(capsys)
    assert "load balancer has AWS deletion protection there: turn it off (`aws elbv2 modify-load-balancer-attributes" \
        in err and "Key=deletion_protection.enabled,Value=false" in err


# -- an up that would delete a load balancer AWS protects from deletion ------------------------------------------


def public_gateway_on(data: dict[str, Any]) -> None:
    data["compute"].update(public_gateway=True,
                           certificate_arn=f"arn:aws:acm:{data['region']}:{data['account_id']}:certificate/one")


def gateway_alb(env: EnvConfig, *, protected: bool = True, **extra: Any) -> dict[str, Any]:
    """The public gateway's load balancer of ``env`` as compute's exported state holds it."""
    arn = (f"arn:aws:elasticloadbalancing:{env.region}:{env.account_id}:loadbalancer/app/gateway-alb-1a2b3c4/"
           "50dc6c495c0c9188")
    return {"urn": f"urn:pulumi:{env.name}::compute::mlplatform:compute:ComputePlatform$mlplatform:compute:"
                   "PublicGateway$aws:lb/loadBalancer:LoadBalancer::gateway-alb",
            "type": "aws:lb/loadBalancer:LoadBalancer", "id": arn,
            "inputs": {"enableDeletionProtection": protected},
            "outputs": {"arn": arn, "enableDeletionProtection": protected}, **extra}


def test_the_state_s_load_balancers_are_read_from_the_export() -> None:
    """Every load balancer the state records, whatever its recorded flag (AWS's flag is the load balancer's own,
    turned on by remediation outside the platform too: ELB is asked), an old copy marked delete with it; the name is
    the resource's (its URN's last part), which the gateway keeps from one up to the next."""
    from shared.orchestrate.automation import StateLoadBalancer, state_load_balancers

    prod = load_env("prod")
    arn = gateway_alb(prod)["id"]
    deployment = {"resources": [
        {"urn": "urn:pulumi:prod::compute::pulumi:pulumi:Stack::compute-prod", "type": "pulumi:pulumi:Stack"},
        gateway_alb(prod),
        {**gateway_alb(prod, protected=False), "urn": "urn:pulumi:prod::compute::aws:lb/loadBalancer:LoadBalancer::x"},
        {**gateway_alb(prod, delete=True, id=f"{arn}-old")},
        {**gateway_alb(prod), "type": "aws:alb/loadBalancer:LoadBalancer",
         "urn": "urn:pulumi:prod::compute::aws:alb/loadBalancer:LoadBalancer::legacy-alb"},
    ]}
    assert state_load_balancers(deployment) == [StateLoadBalancer("gateway-alb", arn),
                                                StateLoadBalancer("gateway-alb", f"{arn}-old", old=True),
                                                StateLoadBalancer("legacy-alb", arn), StateLoadBalancer("x", arn)]
    assert state_load_balancers(None) == []


def test_the_program_s_load_balancers_are_named_as_the_state_names_them(edit_env: Any) -> None:
    from shared.gateway_names import load_balancer_resource_name
    from shared.orchestrate.images import program_load_balancers, synth_compute

    assert program_load_balancers(synth_compute(load_env("prod"))) == []  # no shipped env has a public gateway
    edit_env("prod", public_gateway_on)
    prod = load_env("prod")
    document = synth_compute(prod)
    assert program_load_balancers(document) == [load_balancer_resource_name("gateway")] == ["gateway-alb"]
    (balancer,) = [r for r in document["resources"] if r["type"] == "aws:lb/loadBalancer:LoadBalancer"]
    assert balancer["inputs"]["enableDeletionProtection"] is True  # prod protects state
    assert "name" not in balancer["inputs"]  # auto-named: the resource name is what stays


@dataclass
class ProtectedBalancerRecorder(Recorder):
    """compute's state holds ``balancers`` (AutomationRunner.state_load_balancers)."""

    balancers: list[Any] = field(default_factory=list)

    def state_load_balancers(self, layer: str, env: EnvConfig) -> list[Any]:
        return list(self.balancers) if layer == "compute" else []


def aws_gateway_alb(env: EnvConfig, *, protected: bool) -> str:
    """The public gateway's load balancer of ``env`` in moto's ELB, its deletion protection ``protected``: its ARN."""
    ec2 = MotoAccounts.client(env.account_id, env.region, "ec2")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.9.{i}.0/24", AvailabilityZone=f"{env.region}{zone}")
               ["Subnet"]["SubnetId"] for i, zone in enumerate("ab")]
    elb = MotoAccounts.client(env.account_id, env.region, "elbv2")
    arn = str(elb.create_load_balancer(Name="gateway-alb-1a2b3c4", Subnets=subnets)["LoadBalancers"][0]
              ["LoadBalancerArn"])
    elb.modify_load_balancer_attributes(LoadBalancerArn=arn, Attributes=[
        {"Key": "deletion_protection.enabled", "Value": str(protected).lower()}])
    return arn


def compute_up_with_protected_balancer(env_name: str, monkeypatch: pytest.MonkeyPatch, *, aws: bool | None = True,
                                       recorded: bool = True,
                                       **extra: Any) -> tuple[ProtectedBalancerRecorder, int, str, str]:
    """compute's `up` (alone) in ``env_name``, every released image running, its state holding the public gateway's
    load balancer (``extra``: more of its state entry), ``recorded`` as AWS's deletion protection; in ELB the load
    balancer has it ``aws`` (None: the load balancer is gone). Also the load balancer's ARN."""
    from shared.orchestrate.automation import state_load_balancers

    env = load_env(env_name)
    arn = gateway_alb(env)["id"] if aws is None else aws_gateway_alb(env, protected=aws)
    runner = ProtectedBalancerRecorder(balancers=state_load_balancers({"resources": [gateway_alb(
        env, protected=recorded, id=arn, outputs={"arn": arn, "enableDeletionProtection": recorded}, **extra)]}))
    return runner, *released_compute_up(env, runner, monkeypatch), arn


def test_an_up_that_would_delete_a_load_balancer_aws_protects_from_deletion_stops_before_any_change(
        moto_aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """prod's public gateway turned off (compute.public_gateway true to false, or its service no longer public or
    released): the gateway's ALB has enable_deletion_protection where the env protects state, so the up would delete
    its listener and target group, then stop at DeleteLoadBalancer (OperationNotPermitted), on every later up again.
    Refused before compute changes anything, naming the command that turns the protection off."""
    prod = load_env("prod")
    runner, code, said, arn = compute_up_with_protected_balancer("prod", monkeypatch)
    assert code == 1, said
    assert runner.compute_runs() == []
    assert f"load balancers: no longer in compute's program, AWS deletion protection on: gateway-alb ({arn})" in said
    assert ("nothing of compute was changed: its up would delete the load balancer gateway-alb (no longer in "
            "compute's program), and AWS's deletion protection on it (set where the env protects state, or turned on "
            "outside the platform) refuses DeleteLoadBalancer (OperationNotPermitted)") in said
    assert (f"`aws elbv2 modify-load-balancer-attributes --region {prod.region} --load-balancer-arn {arn} "
            "--attributes Key=deletion_protection.enabled,Value=false`), then run the up again") in said


def test_a_load_balancer_remediation_protected_outside_the_platform_is_asked_about_too(
        moto_aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """dev's program sets deletion protection off and its state records it so, but AWS Config or Security Hub ELB.6
    remediation turned it on: ELB says so, and the up that would remove the gateway is refused the same way."""
    runner, code, said, arn = compute_up_with_protected_balancer("dev", monkeypatch, recorded=False)
    assert code == 1 and runner.compute_runs() == [], said
    assert f"load balancers: no longer in compute's program, AWS deletion protection on: gateway-alb ({arn})" in said


def test_an_old_copy_marked_for_deletion_with_deletion_protection_stops_the_up(
        moto_aws: None, monkeypatch: pytest.MonkeyPatch, edit_env: Any) -> None:
    """The program keeps its gateway, but the state also records an old copy of its ALB marked delete (a
    replacement whose delete of it failed): Pulumi deletes it on the next up, which DeleteLoadBalancer refuses while
    its flag is on. Same name as the live one: refused by the mark, not the name."""
    edit_env("prod", public_gateway_on)
    runner, code, said, arn = compute_up_with_protected_balancer("prod", monkeypatch, delete=True)
    assert code == 1 and runner.compute_runs() == [], said
    assert (f"load balancers: an old copy compute's state marks for deletion (left by a replacement), AWS deletion "
            f"protection on: gateway-alb ({arn})") in said


@pytest.mark.parametrize("aws", [False, None], ids=["turned-off", "gone"])
def test_once_its_deletion_protection_is_off_or_the_load_balancer_gone_the_up_goes_on(
        moto_aws: None, monkeypatch: pytest.MonkeyPatch, aws: bool | None) -> None:
    """The state still records the flag on (what the last up set), but ELB is asked: turned off by hand since, or the
    load balancer deleted outside Pulumi, DeleteLoadBalancer goes through (it "succeeds" for a load balancer that is
    not there), so no refresh is needed first."""
    runner, code, said, _ = compute_up_with_protected_balancer("prod", monkeypatch, aws=aws)
    assert code == 0 and runner.compute_runs() == [Operation(Action.UP)], said
    assert "deletion protection" not in said


def test_a_state_entry_without_an_arn_is_not_asked_about(moto_aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """A load balancer the state records without an id names nothing ELB could answer for: never sent to it."""
    from shared.orchestrate.automation import state_load_balancers

    prod = load_env("prod")
    entry = {**gateway_alb(prod), "id": "", "outputs": {}}
    runner = ProtectedBalancerRecorder(balancers=state_load_balancers({"resources": [entry]}))
    assert [balancer.arn for balancer in runner.balancers] == ["<its ARN>"]

    class NotAsked(AwsImageChecks):
        def deletion_protected(self, env: EnvConfig, load_balancers: Sequence[str]) -> list[str]:
            raise AssertionError(f"ELB asked about {load_balancers}")

    for service, digest in prod.release.images.items():
        push_image(prod, service, digest)
    settle_release(prod, monkeypatch)
    code, said = compute_alone(runner, NotAsked(MotoAccounts()), "prod")
    assert code == 0 and runner.compute_runs() == [Operation(Action.UP)], said


def test_a_load_balancer_s_deletion_protection_that_cannot_be_read_stops_the_run() -> None:
    """Denied DescribeLoadBalancerAttributes: the run stops (exit 2) naming the permission, not a guess either way."""
    from botocore.exceptions import ClientError

    from shared.images import AwsAccessError, deletion_protected

    prod = load_env("prod")

    class Denied:
        def describe_load_balancer_attributes(self, **kwargs: Any) -> Any:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "DescribeLoadBalancerAttributes")

    with pytest.raises(AwsAccessError) as raised:
        deletion_protected(prod, ["arn:aws:elasticloadbalancing:x"], lambda env, service: Denied())
    assert raised.value.exit_code == 2
    assert "the caller needs elasticloadbalancing:DescribeLoadBalancerAttributes" in str(raised.value)


def test_an_up_keeping_its_protected_load_balancer_goes_on(moto_aws: None, monkeypatch: pytest.MonkeyPatch,
                                                            edit_env: Any) -> None:
    """The program still declares it (the public gateway stays): the up updates it, deletes nothing."""
    edit_env("prod", public_gateway_on)
    runner, code, said, _ = compute_up_with_protected_balancer("prod", monkeypatch)
    assert code == 0 and runner.compute_runs() == [Operation(Action.UP)], said
    assert "deletion protection" not in said


# -- end to end: the real runner, the fake `pulumi` CLI, moto ----------------------------------------------


@pytest.fixture
def broker_api() -> Iterator[Listener]:
    with Listener() as listener:
        yield listener


def compute_ups(cli: FakeCli) -> list[list[str]]:
    return [call["args"] for call in cli.operations("up") if call["layer"] == "compute"]


def compute_up_markers(cli: FakeCli) -> list[str | None]:
    """Per compute `up`, the targeted-update marker its program saw (shared.orchestrate.model.TARGETED_VARIABLE)."""
    return [call["targeted"] for call in cli.operations("up") if call["layer"] == "compute"]


def test_the_targeted_update_reaches_the_cli_as_target_urns_without_dependents(
        moto_aws: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, broker_api: Listener) -> None:
    fake_cli = install_fake_cli(tmp_path, monkeypatch)
    # the broker's stack names a management endpoint that answers, so the reach probe lets messaging run
    (fake_cli.state / f"{ENDPOINT_LAYER}.dev.outputs.json").write_text(
        json.dumps({"management_endpoint": broker_api.url}))
    dev = load_env("dev")
    argv = ["up", "dev", "--yes", "--local-state"]
    out = io.StringIO()
    code = main(argv, runner=AutomationRunner(policy_config_dir=tmp_path / "cfg"), out=out,
                images=AwsImageChecks(MotoAccounts()))
    assert code == 1, out.getvalue()
    (args,) = compute_ups(fake_cli)  # step 1 only: the fake CLI created no repository, so nothing arrived
    assert option_values(args, "--target") == synth_registry_targets(dev)
    assert "--target-dependents" not in args
    assert option_values(args, "--policy-pack")  # the policy packs run on the targeted update too
    assert compute_up_markers(fake_cli) == ["1"]  # its program exports its last record of what runs
    assert "training: " in out.getvalue() and "the repository does not exist yet" in out.getvalue()
    assert "docker push 111111111111.dkr.ecr.eu-west-1.amazonaws.com/ml-platform/training:<tag>" in out.getvalue()

    # the images are pushed; the next `up` finds them and compute is one ordinary update
    for service, digest in dev.release.images.items():
        push_image(dev, service, digest)
    settle_release(dev, monkeypatch)
    out = io.StringIO()
    code = main(argv, runner=AutomationRunner(policy_config_dir=tmp_path / "cfg"), out=out,
                images=AwsImageChecks(MotoAccounts()))
    assert code == 0, out.getvalue()
    assert len(compute_ups(fake_cli)) == 2 and "--target" not in compute_ups(fake_cli)[1]
    assert compute_up_markers(fake_cli) == ["1", "0"]  # "0" whatever the shell exports


def create_default_repository(env: EnvConfig, service: str) -> None:
    """``service``'s repository as ECR creates it itself (replication without a creation template): AES256, MUTABLE."""
    MotoAccounts.client(env.account_id, env.region, "ecr").create_repository(
        repositoryName=f"ml-platform/{service}")


def test_a_repository_compute_did_not_create_stops_compute_before_any_change(moto_aws: None) -> None:
    staging = load_env("staging")
    create_repositories(staging, ["gateway"])  # compute's own (KMS, IMMUTABLE): fine
    create_default_repository(staging, "inference")
    runner = Recorder()
    code, output = up("staging", runner, AwsImageChecks(MotoAccounts()))
    assert code == 1
    assert runner.compute_runs() == []  # not even step 1: its create of the repository could only fail
    assert ("inference: 222222222222.dkr.ecr.eu-west-1.amazonaws.com/ml-platform/inference already exists with "
            "encryption AES256, tags MUTABLE; it was created outside compute") in output
    assert "aws ecr delete-repository --region eu-west-1 --repository-name ml-platform/inference --force" in output
    assert [line for line in output.splitlines() if "not compute's:" in line] == [
        line for line in output.splitlines() if "not compute's: inference:" in line]  # gateway's is compute's
    assert "registry already holds inference repositories compute did not create" in output


def test_same_account_replication_is_named_as_the_likely_creator(moto_aws: None, edit_env: Any) -> None:
    # staging in dev's account, another region: replication needs no registry policy there, and its
    # service-linked role creates a missing repository itself, with ECR's defaults.
    edit_env("staging", lambda data: data.update(account_id="111111111111", region="eu-central-1"))
    staging = load_env("staging")
    create_default_repository(staging, "training")
    runner = Recorder()
    code, output = up("staging", runner, AwsImageChecks(MotoAccounts()))
    assert code == 1 and runner.compute_runs() == []
    assert ("training: 111111111111.dkr.ecr.eu-central-1.amazonaws.com/ml-platform/training already exists with "
            "encryption AES256, tags MUTABLE; most likely ECR replication from dev created it (same account "
            "111111111111, eu-west-1 -> eu-central-1") in output


def create_template_repository(env: EnvConfig, service: str) -> str:
    """``service``'s repository as ECR creates it from a repository creation template applied for REPLICATION or
    CREATE_ON_PUSH (botocore ecr ``RCTAppliedFor``) that asks for KMS: compute's encryption, none of compute's tags
    (the template's own ``resourceTags`` instead). Returns its ARN."""
    return str(MotoAccounts.client(env.account_id, env.region, "ecr").create_repository(
        repositoryName=f"ml-platform/{service}", imageTagMutability="IMMUTABLE",
        encryptionConfiguration={"encryptionType": "KMS"},
        tags=[{"Key": "created-by", "Value": "ecr-template"}])["repository"]["repositoryArn"])


def test_a_kms_repository_from_a_creation_template_stops_compute_before_any_change(
        moto_aws: None, edit_env: Any) -> None:
    # staging in dev's account, another region: the replication role creates a missing repository, and a creation
    # template for REPLICATION (prefix ml-platform or ROOT) with KMS gives it compute's encryption. Judged by the
    # encryption alone it passed as compute's, and compute's CreateRepository then failed in step 1 with
    # RepositoryAlreadyExistsException: only compute's tags (the provider's default tags) tell it apart.
    edit_env("staging", lambda data: data.update(account_id="111111111111", region="eu-central-1"))
    staging = load_env("staging")
    create_repositories(staging, ["gateway"])  # compute's own: KMS with compute's tags
    arn = create_template_repository(staging, "training")
    runner = Recorder()
    code, output = up("staging", runner, AwsImageChecks(MotoAccounts()))
    assert code == 1, output
    assert runner.compute_runs() == []
    assert ("training: 111111111111.dkr.ecr.eu-central-1.amazonaws.com/ml-platform/training already exists with "
            "encryption KMS without compute's tags (env=staging, layer=compute, managed-by=pulumi); most likely ECR "
            "created it from a repository creation template") in output
    assert ("aws ecr delete-repository --region eu-central-1 --repository-name ml-platform/training --force"
            in output)
    # compute's own repository whose tags someone removed: the message also says how to put them back
    assert (f"aws ecr tag-resource --region eu-central-1 --resource-arn {arn} --tags Key=env,Value=staging "
            "Key=layer,Value=compute Key=managed-by,Value=pulumi") in output
    assert [line for line in output.splitlines() if "not compute's:" in line] == [
        line for line in output.splitlines() if "not compute's: training:" in line]  # gateway's is compute's


def test_another_envs_repositories_in_the_account_and_region_stop_compute_before_any_change(moto_aws: None) -> None:
    # An env of another folder of env files (or of another user of the platform) deployed to staging's account and
    # region: the env loader cannot see it, and compute's repositories ml-platform/<service> exist once per account
    # and region. Its KMS repositories look like compute's own; their env tag (the provider's default tags) tells.
    staging = load_env("staging")
    create_repositories(staging, ["gateway", "inference"])
    ecr = MotoAccounts.client(staging.account_id, staging.region, "ecr")
    for service, env_tag in (("gateway", "staging"), ("inference", "sandbox")):
        arn = ecr.describe_repositories(repositoryNames=[f"ml-platform/{service}"])["repositories"][0]["repositoryArn"]
        ecr.tag_resource(resourceArn=arn, tags=[{"Key": "env", "Value": env_tag}, {"Key": "layer", "Value": "compute"},
                                                {"Key": "managed-by", "Value": "pulumi"}])
    runner = Recorder()
    code, output = up("staging", runner, AwsImageChecks(MotoAccounts()))
    assert code == 1
    assert runner.compute_runs() == []  # nothing of compute ran: the registry policy stays sandbox's
    assert ("inference: 222222222222.dkr.ecr.eu-west-1.amazonaws.com/ml-platform/inference already exists with the "
            "tag env=sandbox; env sandbox's compute created it: one env per account and region") in output
    assert "deploy staging to another account or region, or destroy sandbox there first" in output
    assert [line for line in output.splitlines() if "not compute's:" in line] == [
        line for line in output.splitlines() if "not compute's: inference:" in line]  # gateway's is staging's


@pytest.mark.parametrize("mutability", [
    {"imageTagMutability": "MUTABLE"},
    {"imageTagMutability": "IMMUTABLE_WITH_EXCLUSION",
     "imageTagMutabilityExclusionFilters": [{"filterType": "WILDCARD", "filter": "latest"}]},
    {"imageTagMutability": "MUTABLE_WITH_EXCLUSION",
     "imageTagMutabilityExclusionFilters": [{"filterType": "WILDCARD", "filter": "release-*"}]},
])
def test_compute_s_repository_whose_tag_mutability_was_changed_since_is_still_compute_s(
        moto_aws: None, monkeypatch: pytest.MonkeyPatch, mutability: dict[str, Any]) -> None:
    # Tag mutability is a setting any repository admin changes in place (PutImageTagMutability), e.g. to let
    # `latest` move; encryption is fixed when the repository is created. A compute-made (KMS) repository
    # with other tag settings is compute's: stopping here would block every `up` of a healthy env and tell
    # the operator to delete, with --force, the repository its services pull from.
    dev = load_env("dev")
    push_release(dev, {})
    ecr = MotoAccounts.client(dev.account_id, dev.region, "ecr")
    ecr.put_image_tag_mutability(repositoryName="ml-platform/inference", **mutability)
    settle_release(dev, monkeypatch)
    output = up_dev_in_one_update()
    assert "not compute's" not in output and "delete-repository" not in output


ARM64_CONFIG = "sha256:" + "a1" * 32


def single_manifest(config_digest: str) -> str:
    return json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2,
                                  "digest": config_digest}, "layers": []})


def index(*platforms: tuple[str, str]) -> str:
    return json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 2, "digest": "sha256:" + f"{n:02d}" * 32,
         "platform": {"os": os, "architecture": architecture}} for n, (os, architecture) in enumerate(platforms)]})


def push_release(env: EnvConfig, manifests: Mapping[str, str]) -> None:
    for service, digest in env.release.images.items():
        push_image(env, service, digest, manifest=manifests.get(service, MANIFEST))


def test_an_image_of_another_platform_stops_the_up_before_any_layer_runs(
        moto_aws: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """An arm64 build (Apple Silicon's default) already in the registry: refused before the first layer, as bad input
    naming the env file's key, not at compute's turn after every other layer of the `up` was updated."""
    monkeypatch.setitem(CONFIGS, ARM64_CONFIG, json.dumps({"os": "linux", "architecture": "arm64"}).encode())
    dev = load_env("dev")
    push_release(dev, {"inference": single_manifest(ARM64_CONFIG), "training": index(("linux", "arm64"))})
    runner = Recorder()
    code, _ = up("dev", runner, AwsImageChecks(MotoAccounts()))
    error = capsys.readouterr().err
    assert code == 2, error
    assert runner.runs == []  # no layer ran, network's and the broker's updates included
    digest = dev.release.images["inference"]
    assert (f"environments/dev.yaml: release.images.inference: 111111111111.dkr.ecr.eu-west-1.amazonaws.com/"
            f"ml-platform/inference@{digest} is linux/arm64, but the task definitions ask Fargate for LINUX/X86_64, "
            "which runs linux/amd64 images only") in error
    assert "release.images.training: " in error and "@" + dev.release.images["training"] + " is linux/arm64," in error
    assert "docker buildx build --platform linux/amd64" in error and "nothing was changed" in error


def test_an_image_of_another_platform_pushed_during_the_up_stops_compute_before_the_services_change(
        moto_aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Missing when the `up` started (nothing to judge then), pushed while step 1 created the registry: step 2 is
    refused at compute's turn."""
    monkeypatch.setitem(CONFIGS, ARM64_CONFIG, json.dumps({"os": "linux", "architecture": "arm64"}).encode())
    dev = load_env("dev")
    runner = Recorder(on_targeted=lambda env: push_release(
        env, {"inference": single_manifest(ARM64_CONFIG), "training": index(("linux", "arm64"))}))
    code, output = up("dev", runner, AwsImageChecks(MotoAccounts()))
    assert code == 1, output
    assert [bool(op.targets) for op in runner.compute_runs()] == [True]  # step 1 only: the full update never ran
    digest = dev.release.images["inference"]
    assert (f"inference: 111111111111.dkr.ecr.eu-west-1.amazonaws.com/ml-platform/inference@{digest} is "
            "linux/arm64, but the task definitions ask Fargate for LINUX/X86_64, which runs linux/amd64 images only"
            ) in output
    assert "training: " in output and "@" + dev.release.images["training"] + " is linux/arm64," in output
    assert "docker buildx build --platform linux/amd64" in output
    assert "inference, training: the released image is not linux/amd64" in output


def test_an_index_with_linux_amd64_among_its_platforms_runs(moto_aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    dev = load_env("dev")
    # buildx adds attestation manifests with platform unknown/unknown beside the images
    push_release(dev, {service: index(("linux", "arm64"), ("linux", "amd64"), ("unknown", "unknown"))
                       for service in dev.release.images})
    for service in dev.release.images:  # the linux/amd64 manifest a task pulls is in the registry beside its index
        push_image(dev, service, "sha256:" + "01" * 32, tag="amd64")
    settle_release(dev, monkeypatch)
    output = up_dev_in_one_update()
    assert "wrong platform" not in output
    # the index got its release tag; the other manifests it names are not in this (moto) repository: named
    assert f"images: warning: inference: ml-platform/inference has no image sha256:{'00' * 32}" in output


def test_an_index_whose_linux_amd64_manifest_is_gone_stops_the_up_before_any_layer(
        moto_aws: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The index is in the registry and names linux/amd64, but that manifest is not (expired while untagged in a
    replica, or left out by a copy): every task would stop with CannotPullContainerError after the services changed.
    Refused before any layer, like an image of another platform."""
    dev = load_env("dev")
    push_release(dev, {service: index(("linux", "arm64"), ("linux", "amd64")) for service in dev.release.images})
    runner = Recorder()
    code, _ = up("dev", runner, AwsImageChecks(MotoAccounts()))
    error = capsys.readouterr().err
    assert code == 2, error
    assert runner.runs == []
    assert f"whose linux/amd64 manifest sha256:{'01' * 32} is not in the registry" in error


@pytest.mark.parametrize(("architecture", "runs"), [("amd64", True), ("arm64", False)])
def test_an_index_entry_without_a_platform_is_judged_by_its_manifest_s_config(
        moto_aws: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], architecture: str,
        runs: bool) -> None:
    # `platform` is optional in an index entry; containerd (Fargate's runtime) keeps such an entry and matches
    # the platform its manifest's config names, so the check must read that config rather than stop.
    config = "sha256:" + "c7" * 32
    monkeypatch.setitem(CONFIGS, config, json.dumps({"os": "linux", "architecture": architecture}).encode())
    dev = load_env("dev")
    child = "sha256:" + "5e" * 32
    push_image(dev, "inference", child, tag="built-by-hand", manifest=single_manifest(config))
    unlabelled = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                             "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 2,
                                            "digest": child}]})
    push_release(dev, {"inference": unlabelled})
    settle_release(dev, monkeypatch)
    runner = Recorder()
    code, output = up("dev", runner, AwsImageChecks(MotoAccounts()))
    if runs:
        assert code == 0, output
        assert runner.compute_runs() == [Operation(Action.UP)]
    else:
        assert code == 2 and runner.runs == []
        assert f"ml-platform/inference@{dev.release.images['inference']} is linux/arm64, but" in capsys.readouterr().err


# -- an image larger than its tasks' ephemeral storage -------------------------------------------------------------

GIB = 1024 ** 3


def sized_manifest(*layers_gib: float) -> str:
    """A linux/amd64 image manifest whose compressed layers are ``layers_gib`` large (the blobs a task downloads)."""
    return json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2,
                                  "digest": "sha256:" + "0" * 64},
                       "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "size": int(gib * GIB),
                                   "digest": "sha256:" + f"{n + 10:02d}" * 32} for n, gib in enumerate(layers_gib)]})


def test_an_image_larger_than_its_tasks_storage_stops_the_up_before_any_layer_runs(
        moto_aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    """11 GiB of compressed layers (a model baked into the image): Fargate keeps the pulled layers and their unpacked
    contents on the task's 20 GiB, so every task's pull fails (no space left on device) and the circuit breaker rolls
    the service back. Refused as bad input before any layer runs, naming the env file's key and the catalog's."""
    dev = load_env("dev")
    push_release(dev, {"inference": sized_manifest(6, 5)})
    runner = Recorder()
    code, _ = up("dev", runner, AwsImageChecks(MotoAccounts()))
    error = capsys.readouterr().err
    assert code == 2, error
    assert runner.runs == []
    digest = dev.release.images["inference"]
    assert (f"environments/dev.yaml: release.images.inference: 111111111111.dkr.ecr.eu-west-1.amazonaws.com/"
            f"ml-platform/inference@{digest} has 11.0 GiB of compressed layers, and Fargate keeps the pulled layers "
            "and their unpacked contents on the task's ephemeral storage: at least 22.0 GiB, more than the task's 20 "
            "GiB (Fargate's default; tests/fixtures/catalog.yaml: services.inference.ephemeral_storage_gib is "
            "unset)") in error
    assert "CannotPullContainerError (no space left on device)" in error
    assert ("set tests/fixtures/catalog.yaml: services.inference.ephemeral_storage_gib to at least 22 (21 to 200; plus "
            "what the app writes to /tmp), or make the image smaller; nothing was changed") in error
    assert "release.images.training" not in error


def test_an_image_that_fits_its_tasks_storage_deploys(moto_aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """9.9 GiB compressed: at least 19.8 GiB pulled and unpacked, within Fargate's 20 GiB: not refused."""
    dev = load_env("dev")
    push_release(dev, {service: sized_manifest(4.9, 5) for service in dev.release.images})
    settle_release(dev, monkeypatch)
    assert "too large" not in up_dev_in_one_update()


def test_an_image_too_large_pushed_during_the_up_stops_compute_before_the_services_change(moto_aws: None) -> None:
    runner = Recorder(on_targeted=lambda env: push_release(env, {"training": sized_manifest(12)}))
    code, output = up("dev", runner, AwsImageChecks(MotoAccounts()))
    assert code == 1, output
    assert [bool(op.targets) for op in runner.compute_runs()] == [True]  # step 1 only: the full update never ran
    assert "images: too large for the task's storage: training: " in output
    assert "training: the released image does not fit its tasks' ephemeral storage" in output


def test_compute_preview_says_the_up_would_stop_on_an_image_too_large(moto_aws: None) -> None:
    dev = load_env("dev")
    push_release(dev, {"gateway": sized_manifest(15)})
    code, output = preview("dev", Recorder(), WritesNothing(MotoAccounts()))
    assert code == 0, output
    assert "images: too large for the task's storage: gateway: " in output
    table = " ".join(output[output.rindex("┏"):].replace("│", " ").split())  # the row may wrap
    assert "up stops before the services: images larger than their tasks' ephemeral" in table, table
    assert "storage: gateway" in table


SOCI_IMAGE = "sha256:" + "a6" * 32
SOCI_INDEX = "sha256:" + "5c" * 32


def push_soci_v2(env: EnvConfig, service: str, *layers_gib: float) -> None:
    """The release, ``service``'s image as ``soci convert`` pushes it (SOCI index manifest v2): an image index holding
    the linux/amd64 image manifest, annotated with its SOCI index's digest, and that SOCI index."""
    push_release(env.model_copy(update={"release": env.release.model_copy(update={"images": {
        other: digest for other, digest in env.release.images.items() if other != service}})}), {})
    image = json.loads(sized_manifest(*layers_gib))
    image["annotations"] = {"com.amazon.soci.index-digest": SOCI_INDEX}
    soci = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": "application/vnd.amazon.soci.index.v2+json",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "size": 2, "digest": "sha256:" + "e" * 64},
            "layers": []}
    push_image(env, service, SOCI_IMAGE, tag="soci-image", manifest=json.dumps(image))
    push_image(env, service, SOCI_INDEX, tag="soci-index", manifest=json.dumps(soci))
    push_image(env, service, env.release.images[service], manifest=json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 2, "digest": SOCI_IMAGE,
             "platform": {"os": "linux", "architecture": "amd64"},
             "annotations": {"com.amazon.soci.index-digest": SOCI_INDEX}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 2, "digest": SOCI_INDEX,
             "artifactType": "application/vnd.amazon.soci.index.v2+json",
             "platform": {"os": "linux", "architecture": "amd64"},
             "annotations": {"com.amazon.soci.image-manifest-digest": SOCI_IMAGE}}]}))


def test_an_image_too_large_to_pull_whole_but_with_a_soci_index_deploys_with_a_note(
        moto_aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fargate lazy-loads an image whose image index holds a SOCI index (AWS blog "Under the hood: Lazy Loading
    Container Images with Seekable OCI and AWS Fargate"): it does not pull the 11 GiB whole before the start, so the
    bound of a full pull is unproven for it: a note, before any layer and at compute's turn, never a refusal."""
    dev = load_env("dev")
    push_soci_v2(dev, "inference", 6, 5)
    settle_release(dev, monkeypatch)
    output = up_dev_in_one_update()
    assert ("note: tests/fixtures/environments/dev.yaml: release.images.inference: "
            "111111111111.dkr.ecr.eu-west-1.amazonaws.com/"
            f"ml-platform/inference@{dev.release.images['inference']} has 11.0 GiB of compressed layers") in output
    assert f"but it has a SOCI index ({SOCI_INDEX}): Fargate lazy-loads it" in output
    assert "images: lazy-loaded, too large to pull whole: inference: " in output


def test_preview_notes_an_image_with_a_soci_index_without_saying_up_stops(moto_aws: None) -> None:
    dev = load_env("dev")
    push_soci_v2(dev, "gateway", 15)
    code, output = preview("dev", Recorder(), WritesNothing(MotoAccounts()))
    assert code == 0, output
    assert "images: lazy-loaded, too large to pull whole: gateway: " in output
    assert "too large for the task's storage" not in output and "ephemeral storage: gateway" not in output


class ArchivedAccounts(MotoAccounts):
    """moto knows no archive storage class: DescribeImages says ``archived`` images are ARCHIVED, and BatchGetImage
    answers them as a failure (their manifest cannot be read), as ECR would. ``strict``: DescribeImages and ListImages
    answer them only where their filter asks for that status, as the API reference documents its default
    (tests.aws_helpers.archive_images); whether ECR applies it to a lookup by imageIds is not documented."""

    def __init__(self, archived: Sequence[str], strict: bool = False) -> None:
        super().__init__()
        self.archived = set(archived)
        self.strict = strict

    def __call__(self, env: EnvConfig, service: str) -> Any:
        client = super().__call__(env, service)
        if self.strict and service == "ecr":
            archive_images(client, dict.fromkeys(self.archived, "ARCHIVED"))

        def describe(parsed: dict[str, Any], **_: Any) -> None:
            for detail in parsed.get("imageDetails", []):
                if detail["imageDigest"] in self.archived:
                    detail["imageStatus"] = "ARCHIVED"

        def batch_get(parsed: dict[str, Any], **_: Any) -> None:
            images = parsed.get("images", [])
            kept = [image for image in images if image["imageId"]["imageDigest"] not in self.archived]
            parsed["failures"] = [{"imageId": image["imageId"], "failureCode": "ImageInaccessible",
                                   "failureReason": "archived"} for image in images if image not in kept]
            parsed["images"] = kept

        if not self.strict:
            client.meta.events.register("after-call.ecr.DescribeImages", describe)
        client.meta.events.register("after-call.ecr.BatchGetImage", batch_get)
        return client


@pytest.mark.parametrize("strict", [False, True], ids=["described", "listed-by-status"])
def test_an_archived_image_gets_its_restore_message_not_a_platform_refusal(moto_aws: None, strict: bool) -> None:
    """The platform check before the layers reads only the images the registry serves: an archived one (its manifest
    unreadable) is compute's to report, with the command that restores it, as before that check existed; whether
    DescribeImages answers it or only ListImages by its status does."""
    dev = load_env("dev")
    push_release(dev, {})
    archived = dev.release.images["inference"]
    runner = Recorder()
    code, output = up("dev", runner, AwsImageChecks(ArchivedAccounts([archived], strict=strict)))
    assert code == 1, output
    assert f"inference: {archived} is not in 111111111111.dkr.ecr.eu-west-1.amazonaws.com/ml-platform/inference " \
           "(the image is ARCHIVED); restore it: `aws ecr update-image-storage-class" in output
    assert "cannot tell the platform" not in output


def test_compute_preview_names_an_archived_image_and_still_checks_the_others_platform(
        moto_aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(CONFIGS, ARM64_CONFIG, json.dumps({"os": "linux", "architecture": "arm64"}).encode())
    dev = load_env("dev")
    push_release(dev, {"training": single_manifest(ARM64_CONFIG)})
    code, output = preview("dev", Recorder(), WritesNothing(ArchivedAccounts([dev.release.images["inference"]])))
    assert code == 0, output
    assert "images: missing: inference: " in output and "(the image is ARCHIVED)" in output
    assert "images: wrong platform: training: " in output and "images: not checked" not in output


def test_without_registry_targets_a_missing_image_never_falls_back_to_a_full_update(moto_aws: None) -> None:
    class NoTargets(AwsImageChecks):
        def registry_targets(self, env: EnvConfig) -> list[str]:
            return []

    runner = Recorder()
    code, output = up("dev", runner, NoTargets(MotoAccounts()))
    assert code == 1
    assert runner.compute_runs() == []
    assert "names no registry resource to create first" in output


def test_an_interrupt_after_step_1_starts_no_step_2(moto_aws: None) -> None:
    staging = load_env("staging")

    def push_the_release(env: EnvConfig) -> None:
        for service, digest in env.release.images.items():
            push_image(env, service, digest)

    gate = ImageGatedRunner(Recorder(on_targeted=push_the_release), AwsImageChecks(MotoAccounts()))
    gate.prepare(staging, ["compute"], Operation(Action.UP))
    gate.interrupt()  # arrives while step 1 runs
    result = gate.run("compute", staging, Operation(Action.UP), lambda line: None)
    assert result.status is Status.INTERRUPTED and "services were not started" in result.detail
    assert [op.targets != () for op in gate.inner.compute_runs()] == [True]  # type: ignore[attr-defined]


def release_tagged(env: EnvConfig) -> list[str]:
    """The services whose released image carries its release tag in the env's registry (moto)."""
    ecr = MotoAccounts()(env, "ecr")
    tagged = []
    for service, digest in sorted(env.release.images.items()):
        (detail,) = ecr.describe_images(repositoryName=f"ml-platform/{service}",
                                        imageIds=[{"imageDigest": digest}])["imageDetails"]
        if release_tag(digest, env.name) in detail.get("imageTags", []):
            tagged.append(service)
    return tagged


class InterruptedChecks(AwsImageChecks):
    """The real checks on moto; the gate is interrupted during compute's last read before the release tags (``during``
    "checks") or right after the first release tag is written (``during`` "tagging": ECR PutImage answered)."""

    def __init__(self, during: str) -> None:
        super().__init__(MotoAccounts())
        self.during = during
        self.gate: ImageGatedRunner | None = None
        self.armed = False  # set once prepare() (which reads the same) is done

    def _interrupt(self, **_: Any) -> None:
        assert self.gate is not None
        self.gate.interrupt()

    def oversized(self, env: EnvConfig, images: Mapping[str, str]) -> list[Any]:
        found = super().oversized(env, images)
        if self.during == "checks" and self.armed:
            self._interrupt()
        return found

    def tag_release(self, env: EnvConfig, stop: Any = None) -> list[Any]:
        if self.during == "tagging":
            ecr = self.clients(env, "ecr")
            ecr.meta.events.register("after-call.ecr.PutImage", self._interrupt)
            self.clients = lambda env, service: ecr if service == "ecr" else MotoAccounts()(env, service)
        return super().tag_release(env, stop)


def interrupted_dev_up(during: str) -> tuple[ImageGatedRunner, LayerResult]:
    """compute's `up` of dev, every released image in the registry without its release tag, interrupted ``during``."""
    dev = load_env("dev")
    for service, digest in dev.release.images.items():
        push_image(dev, service, digest)  # replicated or promoted copies: not release-tagged yet
    checks = InterruptedChecks(during)
    gate = checks.gate = ImageGatedRunner(Recorder(), checks)
    gate.prepare(dev, ["compute"], Operation(Action.UP))
    checks.armed = True
    return gate, gate.run("compute", dev, Operation(Action.UP), lambda line: None)


def test_an_interrupt_during_the_image_checks_writes_no_release_tag(moto_aws: None) -> None:
    """Before, compute wrote every release tag (ECR PutImage) after the interrupt and then reported itself not run."""
    gate, result = interrupted_dev_up("checks")
    assert result.status is Status.NOT_RUN and "before any release tag was written" in result.detail
    assert release_tagged(load_env("dev")) == []
    assert gate.inner.compute_runs() == []  # type: ignore[attr-defined]


def test_an_interrupt_during_the_tagging_writes_no_further_tag_and_says_which_it_wrote(moto_aws: None) -> None:
    gate, result = interrupted_dev_up("tagging")
    dev = load_env("dev")
    assert release_tagged(dev) == ["gateway"]  # the first (sorted) service's, written before the interrupt
    assert result.status is Status.INTERRUPTED, result
    assert result.detail.startswith("interrupted before the update: 1 release tag(s) were written to dev's registry "
                                    f"(ml-platform/gateway@{dev.release.images['gateway']} release_dev_")
    assert result.detail.endswith("; the services were not updated")
    assert gate.inner.compute_runs() == []  # type: ignore[attr-defined]


def test_an_interrupt_after_step_1_during_the_checks_says_step_1_ran(moto_aws: None) -> None:
    """Step 1 created the registry: the layer changed AWS, so it is not reported "not run"."""
    staging = load_env("staging")

    def push_the_release(env: EnvConfig) -> None:
        for service, digest in env.release.images.items():
            push_image(env, service, digest)

    checks = InterruptedChecks("checks")
    gate = checks.gate = ImageGatedRunner(Recorder(on_targeted=push_the_release), checks)
    gate.prepare(staging, ["compute"], Operation(Action.UP))
    checks.armed = True
    result = gate.run("compute", staging, Operation(Action.UP), lambda line: None)
    assert result.status is Status.INTERRUPTED, result
    assert result.detail == "interrupted before the update: step 1 (the registry) ran; the services were not updated"
    assert result.changes == {"create": 2}
    assert release_tagged(staging) == []
    assert [op.targets != () for op in gate.inner.compute_runs()] == [True]  # type: ignore[attr-defined]


# -- compute's up after a service left the catalog ---------------------------------------------------------------


@dataclass
class DeployedRecorder(Recorder):
    """compute's deployed stack holds the repositories of the shipped catalog's services."""

    def stack_outputs(self, layer: str, env: EnvConfig) -> Mapping[str, Any] | None:
        outputs = dict(super().stack_outputs(layer, env) or {})
        if layer == "compute":
            outputs["repository_urls"] = {svc: f"{env.account_id}.dkr.ecr.{env.region}.amazonaws.com/ml-platform/{svc}"
                                          for svc in ("gateway", "preprocess", "inference", "training")}
        return outputs


def _remove_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, edit_env: Any) -> EnvConfig:
    from tests.catalog_helpers import remove_service

    remove_service(tmp_path, monkeypatch, edit_env, "training")
    return load_env("dev")


def test_the_repository_of_a_removed_service_holding_images_stops_compute_before_any_change(
        moto_aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, edit_env: Any) -> None:
    """ECR refuses DeleteRepository of a repository with images (force_delete off): the update would fail there after
    deleting the service's ECS service, roles and log group, and fail again on every up."""
    dev = _remove_training(tmp_path, monkeypatch, edit_env)
    for service, digest in dev.release.images.items():
        push_image(dev, service, digest)
    push_image(dev, "training", OLD)
    runner = DeployedRecorder()
    code, output = compute_alone(runner, AwsImageChecks(MotoAccounts()))
    assert code == 1, output
    assert runner.compute_runs() == []
    assert "nothing of compute was changed" in output and "ml-platform/training (1)" in output
    assert ("aws ecr delete-repository --region eu-west-1 --repository-name ml-platform/training --force` deletes it "
            "with them (the up then finds it gone)") in output
    # emptied (deleted by hand): the up goes on, and its own preview asks --allow-replace for the repository
    MotoAccounts()(dev, "ecr").delete_repository(repositoryName="ml-platform/training", force=True)
    settle_release(dev, monkeypatch)
    code, output = compute_alone(runner, AwsImageChecks(MotoAccounts()))
    assert code == 0 and runner.compute_runs() == [Operation(Action.UP)], output


def test_compute_preview_says_the_up_would_stop_on_a_removed_service_s_images(
        moto_aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, edit_env: Any) -> None:
    dev = _remove_training(tmp_path, monkeypatch, edit_env)
    push_image(dev, "training", OLD)
    runner = DeployedRecorder()
    out = io.StringIO()
    code = main(["preview", "dev", "--layers", "compute", "--exact"], runner=runner, out=out,
                images=AwsImageChecks(MotoAccounts()), probe=reachable)
    assert code == 0 and runner.compute_runs() == [Operation(Action.PREVIEW)], out.getvalue()
    assert "images: removed from the catalog, still in the registry: training: ml-platform/training holds 1 image(s)" \
        in out.getvalue()
    assert "up stops before any change" in out.getvalue()  # compute's row


def test_compute_preview_goes_on_when_compute_s_outputs_cannot_be_read(
        moto_aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, edit_env: Any) -> None:
    """A preview's credentials may not decrypt compute's outputs: said, and the preview runs."""
    _remove_training(tmp_path, monkeypatch, edit_env)

    class Undecryptable(DeployedRecorder):
        def stack_outputs(self, layer: str, env: EnvConfig) -> Mapping[str, Any] | None:
            if layer == "compute":
                raise RuntimeError("AccessDeniedException: kms:Decrypt")
            return super().stack_outputs(layer, env)

    runner = Undecryptable()
    out = io.StringIO()
    code = main(["preview", "dev", "--layers", "compute", "--exact"], runner=runner, out=out,
                images=AwsImageChecks(MotoAccounts()), probe=reachable)
    assert code == 0 and runner.compute_runs() == [Operation(Action.PREVIEW)], out.getvalue()
    assert "which repositories compute's up deletes is unknown" in out.getvalue()


def test_a_removed_service_s_repository_made_again_by_replication_stops_compute_too(
        moto_aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, edit_env: Any) -> None:
    """ECR replication creates a destination repository that does not exist, with the registry's default settings
    (AES256) or a creation template's (ECR user guide, "Private repository creation templates": "repositories created
    by Amazon ECR on your behalf during pull through cache or replication actions"): after the user deleted a removed
    service's repository, a push to the source registry can make it again, images included. compute's state still
    holds the repository by its name, so its delete targets that one, whatever its encryption, and ECR refuses it
    (RepositoryNotEmptyException): the gate must count it as compute's delete sees it."""
    dev = _remove_training(tmp_path, monkeypatch, edit_env)
    for service, digest in dev.release.images.items():
        push_image(dev, service, digest)
    ecr = MotoAccounts()(dev, "ecr")
    ecr.create_repository(repositoryName="ml-platform/training")  # as replication makes it: AES256
    ecr.put_image(repositoryName="ml-platform/training", imageManifest=MANIFEST, imageDigest=OLD, imageTag="late")
    settle_release(dev, monkeypatch)
    runner = DeployedRecorder()
    code, output = compute_alone(runner, AwsImageChecks(MotoAccounts()))
    assert code == 1 and runner.compute_runs() == [], output
    assert "nothing of compute was changed" in output and "ml-platform/training (1)" in output


def test_a_service_released_by_tag_has_no_digest_to_keep(edit_env: Any) -> None:
    """A release by tag names no digest to copy back: the destroy's refusal leaves it out (release_tag refuses one)."""
    from shared.images import released_images_kept

    edit_env("dev", lambda data: data["release"]["images"].update(gateway="v1.2"))
    dev = load_env("dev")
    assert "gateway@" not in released_images_kept(dev, ["gateway", "preprocess"])
    assert f"preprocess@{dev.release.images['preprocess']}" in released_images_kept(dev, ["gateway", "preprocess"])
    assert released_images_kept(dev, ["gateway"]) == ""


def test_the_copy_back_names_the_kept_copy_and_each_replica_only_where_one_exists(edit_env: Any) -> None:
    """The destroy asks to keep each released image in a registry that outlives the env; the next `up` names that copy
    back (and each env that replicates from this one). With no env replicating from it, neither message names a
    replica that does not exist."""
    from shared.images import _how_to_provide, released_images_kept

    dev = load_env("dev")
    digest = dev.release.images["preprocess"]
    uri = f"{dev.account_id}.dkr.ecr.{dev.region}.amazonaws.com/ml-platform/preprocess"
    tag = release_tag(digest, "dev")
    provide = _how_to_provide(dev, "preprocess", digest, uri, lambda env, service: None)
    assert f"`crane copy <where you kept it>@{digest} {uri}:{tag}`" in provide
    assert "(from staging, where dev's replication copied each push)" in provide
    assert "copy them back from prod, staging after" in released_images_kept(dev, ["preprocess"])

    for other in ("staging", "prod"):
        edit_env(other, lambda data: data["compute"].pop("image_source", None))
    dev = load_env("dev")
    provide = _how_to_provide(dev, "preprocess", digest, uri, lambda env, service: None)
    assert provide.endswith(f"copy it back, digest unchanged: `crane copy <where you kept it>@{digest} {uri}:{tag}`")
    kept = released_images_kept(dev, ["preprocess"])
    assert "<registry that outlives dev>" in kept and "copy them back from" not in kept
