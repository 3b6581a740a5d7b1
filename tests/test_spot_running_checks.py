"""What runs on Fargate Spot, as the checks after compute's `up` and promotion's deployed gate read it. AWS takes a
Spot task back with two minutes' warning and starts none while Spot has no capacity (no fallback to on-demand), so a
Spot service whose completed deployment runs no task while its newest event says "Capacity is unavailable" is how Spot
runs: an `up` of anything else in the env still succeeds, with a note. Nothing then shows the release's digest starts,
so promoting it from there waits until a task runs it. Any other service running no task, and a Spot one whose tasks
stop for another reason (a pending replacement alone is no proof: a crashing task leaves one too), stays a failure."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from shared.envs import EnvConfig, load_env
from shared.images import RunningImage, rollout_mismatches, running_images
from shared.orchestrate.cli import main
from tests.aws_helpers import ReleasedEverywhere
from tests.test_orchestrate_images import Recorder, reachable
from tests.test_promote import NEW, deployed_with, promote, set_image

DIGEST = "sha256:" + "ab" * 32
UNPLACED = ("(service training) was unable to place a task. Reason: Capacity is unavailable at this time. Please try "
            "again later or in a different availability zone.")


class Ecs:
    """DescribeServices / DescribeTaskDefinition of one service whose PRIMARY deployment completed."""

    def __init__(self, provider: str, pending: int, events: list[str], running: int = 0, desired: int = 1) -> None:
        self.provider, self.pending, self.events = provider, pending, events
        self.running, self.desired = running, desired

    def describe_services(self, cluster: str, services: list[str]) -> dict[str, Any]:
        return {"services": [{
            "serviceName": name, "status": "ACTIVE",
            "capacityProviderStrategy": [{"capacityProvider": self.provider, "weight": 1, "base": 0}],
            "events": [{"createdAt": f"2026-12-07T10:0{index}:00Z", "message": message}
                       for index, message in enumerate(reversed(self.events))],
            "deployments": [{"status": "PRIMARY", "rolloutState": "COMPLETED", "taskDefinition": "arn:td/training:7",
                             "desiredCount": self.desired, "runningCount": self.running,
                             "pendingCount": self.pending}],
        } for name in services]}

    def describe_task_definition(self, taskDefinition: str, include: list[str]) -> dict[str, Any]:
        image = f"111111111111.dkr.ecr.eu-west-1.amazonaws.com/ml-platform/training@{DIGEST}"
        return {"taskDefinition": {"containerDefinitions": [{"name": "training", "image": image}]}}


def _read(provider: str, pending: int, events: list[str], running: int = 0, desired: int = 1) -> RunningImage:
    ecs = Ecs(provider, pending, events, running, desired)
    (entry,) = running_images(load_env("dev"), ["training"], lambda env, service: ecs)
    return entry


@pytest.mark.parametrize(("pending", "events"), [
    (0, [UNPLACED, "(service training) has reached a steady state."]),  # newest first: no capacity now
    (1, [UNPLACED]),
])
def test_a_spot_service_without_a_task_for_want_of_capacity_waits(pending: int, events: list[str]) -> None:
    entry = _read("FARGATE_SPOT", pending, events)
    assert entry.problem is None and entry.awaiting_spot and not entry.resting
    assert entry.describe() == f"training waits for Fargate Spot capacity: no task runs {DIGEST}"
    assert rollout_mismatches(load_env("dev"), {"training": DIGEST}, [entry]) == []


@pytest.mark.parametrize(("provider", "pending", "events"), [
    ("FARGATE", 1, [UNPLACED]),  # on-demand: running no task is a failure whatever ECS says
    ("FARGATE_SPOT", 0, ["(service training) has reached a steady state.", UNPLACED]),  # capacity came back since
    ("FARGATE_SPOT", 0, []),
    # a replacement pending after a crash, as after an interruption: no proof of Spot (review-mut7)
    ("FARGATE_SPOT", 1, ["(service training) has started 1 tasks: (task 1a2b)."]),
])
def test_anything_else_running_no_task_is_a_problem(provider: str, pending: int, events: list[str]) -> None:
    entry = _read(provider, pending, events)
    assert entry.problem is not None and entry.problem.startswith(f"its deployment of {DIGEST} runs no task")
    assert not entry.awaiting_spot
    # a Spot service's says where to look: its tasks may have just been taken back
    assert ("Spot may have taken its tasks back" in entry.problem) == (provider == "FARGATE_SPOT")


def test_a_spot_service_at_0_tasks_by_its_count_rests() -> None:
    entry = _read("FARGATE_SPOT", 0, [UNPLACED], desired=0)
    assert entry.problem is None and entry.resting and not entry.awaiting_spot


def test_a_spot_service_that_runs_a_task_is_as_any() -> None:
    entry = _read("FARGATE_SPOT", 0, [UNPLACED], running=1)
    assert entry.problem is None and not entry.awaiting_spot


class SpotWaits(ReleasedEverywhere):
    def running(self, env: EnvConfig, services: Sequence[str]) -> list[RunningImage]:
        return [RunningImage(service, service, env.release.images[service], awaiting_spot=service == "training")
                for service in services]


def test_compute_up_passes_with_a_note_while_spot_has_no_capacity() -> None:
    out = io.StringIO()
    code = main(["up", "dev", "--yes"], runner=Recorder(), out=out, images=SpotWaits(), probe=reachable)
    output = out.getvalue()
    assert code == 0, output
    training = load_env("dev").release.images["training"]
    assert (f"ecs: note: training waits for Fargate Spot capacity: no task runs {training} (its deployment "
            "completed; Spot has no capacity for it, and AWS starts none on on-demand Fargate): its queue waits; "
            "promoting it from dev is refused until a task runs it") in output
    assert "ecs: every service runs its released digest" in output


def test_promotion_waits_until_a_spot_task_runs_the_digest(env_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    set_image(env_dir, "dev", "training", NEW)
    staging = env_dir / "staging.yaml"
    before = staging.read_bytes()

    training_waits = deployed_with("training", awaiting_spot=True)
    assert promote(["dev", "staging"], deployed_images=training_waits)[0] == 1
    err = capsys.readouterr().err
    assert "'deployed' gate" in err
    assert (f"dev's training waits for Fargate Spot capacity: no task runs {NEW}: nothing shows it starts now. "
            "Promote again once a task runs it (`aws ecs describe-services --cluster dev-ml-platform --services "
            "training` shows its running count and events), or move it to on-demand Fargate in dev "
            "(services.training.capacity: on_demand)") in err
    assert staging.read_bytes() == before
    # once a task runs it, the gate passes
    code, output = promote(["dev", "staging"])
    assert code == 0 and "gate deployed: ok" in output


def test_prod_s_note_promises_no_promotion_from_it() -> None:
    out = io.StringIO()
    code = main(["up", "prod", "--yes"], runner=Recorder(), out=out, images=SpotWaits(), probe=reachable)
    output = out.getvalue()
    assert code == 0, output
    assert "ecs: note: training waits for Fargate Spot capacity" in output and "promoting it from prod" not in output


def test_a_waiting_spot_service_whose_digest_the_target_runs_stops_no_other_promotion(env_dir: Path) -> None:
    set_image(env_dir, "dev", "gateway", NEW)  # training's digest is staging's already

    training_waits = deployed_with("training", awaiting_spot=True)
    code, output = promote(["dev", "staging"], deployed_images=training_waits)
    assert code == 0 and "gate deployed: ok" in output, output
    assert load_env("staging").release.images["gateway"] == NEW
