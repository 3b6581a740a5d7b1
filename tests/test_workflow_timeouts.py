"""The generated deploy jobs last as long as the `up` they run may: GitHub ending a job midway leaves the stack
locked with an operation half done. The compute layer waits up to ``compute.steady_state_timeout_minutes`` for each
ECS service, and each service is deployed after the services it calls."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from shared import workflows
from shared.dag import LAYERS
from shared.errors import ConfigError

#: the shipped catalog's longest chain of calls: gateway -> preprocess -> inference
SHIPPED_CHAIN = 3


def jobs(rendered: str) -> dict[str, Any]:
    jobs_: dict[str, Any] = yaml.safe_load(rendered)["jobs"]
    return jobs_


def test_the_shipped_catalogs_services_deploy_three_after_one_another() -> None:
    from shared.catalog import load_catalog

    catalog = load_catalog()
    assert catalog.services["gateway"].calls and "inference" in catalog.services["preprocess"].calls
    assert workflows.ecs_wait_chain(catalog) == SHIPPED_CHAIN


@pytest.mark.parametrize("minutes", [30, 100])
def test_the_dev_compute_job_outlasts_every_ecs_wait_of_its_up(minutes: int, edit_env: Any, env_dir: Path) -> None:
    """A slow-starting public service's deployment can need about two hours (shared.envs.deployment_seconds), which
    the env rules admit with a steady-state timeout that long; the job had 90 minutes whatever the env said."""
    edit_env("dev", lambda data: data["compute"].update(steady_state_timeout_minutes=minutes))
    rendered = jobs(workflows.render_deploy_dev())
    compute = rendered["up-compute"]["timeout-minutes"]
    assert compute >= minutes * SHIPPED_CHAIN + workflows.COMPUTE_OTHER_MINUTES
    assert compute <= workflows.GITHUB_HOSTED_JOB_MINUTES
    # the layers without an ECS wait keep their budget, and so does the settle check after them (a preview)
    assert {job: spec["timeout-minutes"] for job, spec in rendered.items() if job != "up-compute"} == dict.fromkeys(
        [*(f"up-{layer}" for layer in LAYERS if layer != "compute"), workflows.SETTLED_JOB],
        workflows.LAYER_MINUTES)  # a layer added too


def test_a_promoted_env_s_job_outlasts_its_compute_wait_and_the_other_layers(
        edit_env: Any, env_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the shipped order, as env_dir holds the shipped envs only (an env a user adds to it: README, "Add an environment")
    monkeypatch.setattr("shared.promote.PROMOTION_ORDER", ("dev", "staging", "prod"))
    edit_env("prod", lambda data: data["compute"].update(steady_state_timeout_minutes=100))
    rendered = jobs(workflows.render_deploy_promoted())
    assert rendered["deploy-prod"]["timeout-minutes"] >= (
        100 * SHIPPED_CHAIN + workflows.COMPUTE_OTHER_MINUTES + workflows.LAYER_MINUTES)
    assert rendered["deploy-staging"]["timeout-minutes"] >= workflows.LAYER_MINUTES * 2  # the earlier 180 at least


def test_a_dev_compute_wait_past_githubs_hosted_job_limit_is_refused_naming_the_key(
        edit_env: Any, env_dir: Path) -> None:
    edit_env("dev", lambda data: data["compute"].update(steady_state_timeout_minutes=240))
    with pytest.raises(ConfigError) as raised:
        workflows.render_deploy_dev()
    assert raised.value.key == "compute.steady_state_timeout_minutes" and raised.value.exit_code == 2
    assert "dev.yaml" in raised.value.file and "360" in str(raised.value)


def test_the_deploy_runners_build_limit_covers_a_deploy_of_the_whole_env() -> None:
    """CodeBuild stops a build (and a CodeBuild-hosted GitHub Actions job) at its project's timeout: unset, the
    runner gets the figure of the env's deploy job; it was a fixed 120 minutes under staging's 210-minute job."""
    from shared.catalog import load_catalog
    from shared.components.deploy_runner import DeployRunnerArgs
    from shared.envs import load_env

    for name in ("dev", "staging", "prod"):
        env = load_env(name)
        assert DeployRunnerArgs.from_env(env).timeout_minutes > workflows.env_job_minutes(env, load_catalog())
        assert DeployRunnerArgs.from_env(env).timeout_minutes >= 210


def test_the_runners_build_outlasts_the_promoted_job_it_hosts() -> None:
    """The build's timeout counts from its provisioning in the VPC, the job's timeout-minutes from when GitHub hands
    the started runner the job: a build limit equal to the job's ended the job minutes before GitHub would have."""
    from shared.components.deploy_runner import DeployRunnerArgs
    from shared.envs import load_env

    rendered = jobs(workflows.render_deploy_promoted())
    for name in ("staging", "prod"):
        job = rendered[f"deploy-{name}"]["timeout-minutes"]
        assert DeployRunnerArgs.from_env(load_env(name)).timeout_minutes >= job + workflows.RUNNER_START_MINUTES


@pytest.mark.parametrize(("minutes", "refused"), [(120, True), (210, True), (224, True), (225, False), (600, False)])
def test_a_build_limit_shorter_than_a_deploy_is_refused(edit_env: Any, env_dir: Path, minutes: int,
                                                        refused: bool) -> None:
    from shared.components.deploy_runner import DeployRunnerArgs
    from shared.envs import load_env

    edit_env("staging", lambda data: data["messaging"].setdefault("deploy_runner", {}).update(timeout_minutes=minutes))
    if not refused:
        assert DeployRunnerArgs.from_env(load_env("staging")).timeout_minutes == minutes
        return
    with pytest.raises(ConfigError) as raised:
        load_env("staging")
    assert raised.value.key == "messaging.deploy_runner.timeout_minutes" and raised.value.exit_code == 2
    assert "at least 225" in str(raised.value)


def test_the_deploy_runners_build_limit_stays_within_what_codebuild_runs(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A catalog whose calls chain 80 services asks a whole-env deploy for 30 x 80 + 120 minutes: past CodeBuild's
    longest build (botocore codebuild BuildTimeOut), which CreateProject refuses, stopping the env's up at its broker
    layer; the build gets CodeBuild's longest instead, and the env loader asks no longer one of an env file."""
    import gzip
    import json

    import botocore

    from shared.bench import _scenario_dir
    from shared.catalog import CATALOG_ENV_VAR, load_catalog
    from shared.components.deploy_runner import DeployRunnerArgs
    from shared.envs import ENV_DIR_VAR, load_env

    model_path = Path(botocore.__file__).parent / "data" / "codebuild" / "2016-10-06" / "service-2.json.gz"
    limits = json.loads(gzip.decompress(model_path.read_bytes()))["shapes"]["BuildTimeOut"]
    catalog, env_dir = _scenario_dir(80, tmp_path)
    monkeypatch.setenv(CATALOG_ENV_VAR, str(catalog))
    monkeypatch.setenv(ENV_DIR_VAR, str(env_dir))
    for name in ("dev", "staging", "prod"):
        env = load_env(name)
        assert workflows.env_job_minutes(env, load_catalog()) > limits["max"]
        assert limits["min"] <= DeployRunnerArgs.from_env(env).timeout_minutes <= limits["max"]
    # an env file giving CodeBuild's longest build is not asked for more
    path = env_dir / "staging.yaml"
    data = yaml.safe_load(path.read_text())
    data["messaging"].setdefault("deploy_runner", {})["timeout_minutes"] = limits["max"]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    assert DeployRunnerArgs.from_env(load_env("staging")).timeout_minutes == limits["max"]


@pytest.mark.parametrize("env_name", ["dev", "staging", "prod"])
def test_the_broker_waits_longer_than_the_providers_half_hour_and_its_job_outlasts_the_wait(env_name: str) -> None:
    """A RabbitMQ cluster's create, or an update that reboots it, can take more than the provider's 30-minute wait
    (terraform-provider-aws #27035): past it, broker's `up` failed midway with the broker still being created. The
    broker sets its own wait on create, update and delete, and the layer's job lasts longer than that wait."""
    from shared.amazonmq import BROKER_WAIT_MINUTES
    from shared.synth.engine import synth_env

    broker = synth_env(env_name, ["broker"])["broker"]["resources"]
    [options] = [resource.get("custom_timeouts") for resource in broker if resource["type"] == "aws:mq/broker:Broker"]
    assert BROKER_WAIT_MINUTES > 30
    assert options == dict.fromkeys(("create", "update", "delete"), f"{BROKER_WAIT_MINUTES}m")
    assert workflows.LAYER_MINUTES > BROKER_WAIT_MINUTES
    assert jobs(workflows.render_deploy_dev())["up-broker"]["timeout-minutes"] > BROKER_WAIT_MINUTES
