"""An operator's hand rollback of a service stays until the rollback pull request pins its image.

The README's "Roll a service back now" registers the previous task definition again (``python -m shared.oneoff
--rollback``) and points the service at it. compute's ``up`` refreshes first and deploys what the env file names: the
bad release again. Dev deploys on every push to main and prod on any merged change of its env file (another service's
promotion), so before this gate any such run undid the rollback an hour before its pull request merged. The copy now
carries the tag ``platform:hand-rollback``, and compute's ``up`` refuses (exit 2, before any layer) to deploy another
image over a service that runs it.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from shared.components.compute import cluster_name
from shared.components.ecr import repository_name
from shared.envs import EnvConfig, load_env
from shared.errors import ConfigErrors
from shared.images import HAND_ROLLBACK_TAG, RunningImage
from shared.oneoff import rollback_definition
from shared.orchestrate.cli import main
from shared.orchestrate.images import AwsImageChecks, refuse_over_hand_rollbacks
from tests.aws_helpers import MANIFEST, MotoAccounts, push_image, run_service
from tests.test_orchestrate_images import Recorder, reachable

MARK = "2026-12-07T21:05:00Z by alice"
BAD = "sha256:" + "b" * 64


def up(env: str, runner: Recorder, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    out = io.StringIO()
    code = main(["up", env, "--yes"], runner=runner, out=out, images=AwsImageChecks(MotoAccounts()), probe=reachable)
    return code, out.getvalue(), capsys.readouterr().err


def rolled_back_by_hand(env: EnvConfig, service: str, to: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every service of ``env`` runs its release but ``service``, which an operator rolled back by hand as the README
    says, from ``BAD`` to the revision before it, of image ``to``; the ARN of the revision registered by hand. (moto's
    UpdateService keeps the deployment's task definition, so the service is created on the copy.)"""
    for name, digest in {**env.release.images, service: to}.items():
        push_image(env, name, digest)
        if name != service:
            run_service(env, name, digest, monkeypatch=monkeypatch)
    ecs = MotoAccounts()(env, "ecs")
    repository = f"{env.account_id}.dkr.ecr.{env.region}.amazonaws.com/{repository_name(service)}"
    revisions = [ecs.register_task_definition(
        family=f"{env.name}-{service}", requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256",
        memory="512", containerDefinitions=[{"name": service, "image": f"{repository}@{digest}", "essential": True}],
        tags=[{"key": "layer", "value": "compute"}])["taskDefinition"]["taskDefinitionArn"] for digest in (to, BAD)]
    previous = ecs.describe_task_definition(taskDefinition=revisions[0], include=["TAGS"])
    arn = str(ecs.register_task_definition(**rollback_definition(previous, mark=MARK))["taskDefinition"][
        "taskDefinitionArn"])
    ecs.create_service(cluster=cluster_name(env.name), serviceName=service, taskDefinition=arn, desiredCount=1)
    return arn


def test_an_up_that_would_deploy_another_image_over_a_hand_rollback_is_refused_before_any_layer(
        moto_aws: None, monkeypatch: pytest.MonkeyPatch, edit_env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    # the env file still names the bad release: its rollback pull request has not merged
    edit_env("dev", lambda data: data["release"]["images"].update(inference=BAD))
    dev = load_env("dev")
    good = load_env("staging").release.images["inference"]  # the release before BAD
    arn = rolled_back_by_hand(dev, "inference", good, monkeypatch)
    push_image(dev, "inference", BAD, manifest=json.dumps(json.loads(MANIFEST), indent=1))  # another image's
    runner = Recorder()
    code, out, err = up("dev", runner, capsys)
    assert code == 2, out + err
    assert runner.runs == []  # no layer ran
    assert "release.images.inference" in err
    assert f"inference runs task definition {arn}, rolled back by hand ({HAND_ROLLBACK_TAG}: {MARK}) to {good}; " \
           f"this up would deploy {BAD} over it" in err
    assert "Merge the rollback pull request" in err
    assert f"aws ecs untag-resource --resource-arn {arn} --tag-keys {HAND_ROLLBACK_TAG}" in err
    assert "nothing was changed" in err

    # the operator takes the mark off: the up deploys the env file's release over the rollback (the recording runner
    # deploys nothing, so its check after compute finds the rolled-back image still running)
    MotoAccounts()(dev, "ecs").untag_resource(resourceArn=arn, tagKeys=[HAND_ROLLBACK_TAG])
    code, out, err = up("dev", runner, capsys)
    assert "rolled back by hand" not in out + err
    assert [layer for layer, _ in runner.runs][-1] == "compute"
    assert code == 1 and f"inference runs {good}, not the release's {BAD}" in out


def test_the_rollback_pull_request_which_pins_the_rolled_back_image_deploys(
        moto_aws: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    dev = load_env("dev")
    rolled_back_by_hand(dev, "gateway", dev.release.images["gateway"], monkeypatch)
    runner = Recorder()
    code, out, err = up("dev", runner, capsys)
    assert code == 0, out + err
    assert [layer for layer, _ in runner.runs][-1] == "compute"


def entry(service: str, digest: str | None, mark: str | None, problem: str | None = None) -> RunningImage:
    return RunningImage(service, f"{service}-stable", digest, problem, f"arn:td/dev-{service}:9", hand_rollback=mark)


def test_every_service_rolled_back_by_hand_to_another_image_is_named_and_nothing_else() -> None:
    dev = load_env("dev")
    gateway, training = dev.release.images["gateway"], dev.release.images["training"]
    with pytest.raises(ConfigErrors) as raised:
        refuse_over_hand_rollbacks(dev, [
            entry("gateway", BAD, MARK),                                      # refused
            entry("inference", dev.release.images["inference"], MARK),       # its pull request merged: same image
            entry("training", training, None),                                # not rolled back by hand
            entry("preprocess", BAD, MARK, problem="no active ECS service"),  # runs nothing to undo
            entry("unknown", BAD, MARK),                                      # no release entry
            entry("training", None, MARK),                                    # an image not pinned by digest
        ])
    assert raised.value.exit_code == 2
    assert [problem.key for problem in raised.value.problems] == ["release.images.gateway", "release.images.training"]
    gateway_problem, training_problem = (problem.reason for problem in raised.value.problems)
    assert gateway_problem.startswith("gateway (gateway-stable) runs task definition arn:td/dev-gateway:9, rolled back "
                                      f"by hand ({HAND_ROLLBACK_TAG}: {MARK}) to {BAD}; this up would deploy "
                                      f"{gateway} over it")
    assert f"to an image not pinned by digest; this up would deploy {training} over it" in training_problem


def test_no_hand_rollback_no_refusal() -> None:
    dev = load_env("dev")
    refuse_over_hand_rollbacks(dev, [entry(name, digest, None) for name, digest in dev.release.images.items()])
    refuse_over_hand_rollbacks(dev, [])
