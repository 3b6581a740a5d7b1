"""Given an env, each consumer's ECS service scales on its work queue's backlog (the queue metrics publisher's
``MLPlatform/RabbitMQ`` ``MessagesReady``) with step scaling, which acts on its alarm alone and so scales out of
0 tasks; a consumer no HTTP request reaches scales on its backlog only (no CPU policy) and may rest at 0 tasks;
the others keep CPU target tracking and may not go to 0; where their queue's figures are published it only adds
tasks, and they lose one only while their queue holds nothing and their CPU is low (the quiet scale-in)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from botocore.validate import ParamValidator

from shared import REPO_ROOT
from shared.catalog import load_catalog
from shared.components.compute import plan_service
from shared.components.compute_service import BACKLOG_IDLE_PERIODS
from shared.envs import load_env
from shared.synth.engine import synth_env
from tests.layers.resource_types import ALARM, ENVS
from tests.layers.test_alarms import input_shape, put_metric_alarm_params, put_metric_alarm_shape
from tests.synth_helpers import by_name, by_urn, of_type, synth_layers

POLICY = "aws:appautoscaling/policy:Policy"
TARGET = "aws:appautoscaling/target:Target"
#: the catalog's consumer that no HTTP request reaches (no public flag, no caller)
BACKLOG_ONLY = "training"


def layers(env: str) -> dict[str, dict[str, Any]]:
    return synth_layers(env, "compute")


def scaling(document: dict[str, Any], unit: str) -> dict[str, dict[str, Any]]:
    """The unit's policies by name suffix (cpu, backlog-out, backlog-in, quiet-in) and their alarms
    (alarm-<suffix>)."""
    resources = by_urn(document)
    found = {r["name"].removeprefix(f"{unit}-"): r for r in of_type(document, POLICY)
             if r["name"].startswith(f"{unit}-")}
    for alarm in of_type(document, ALARM):
        parent = resources.get(alarm["parent"])
        if parent is not None and parent["type"] == POLICY and parent["name"].startswith(f"{unit}-"):
            found["alarm-" + parent["name"].removeprefix(f"{unit}-")] = alarm
    return found


def put_scaling_policy_shape() -> Any:
    return input_shape("application-autoscaling", "PutScalingPolicy")


def test_the_catalog_has_a_backlog_only_consumer_and_consumers_others_call() -> None:
    catalog = load_catalog()
    assert catalog[BACKLOG_ONLY].consumes and not catalog[BACKLOG_ONLY].public
    assert catalog.callers(BACKLOG_ONLY) == []
    assert catalog.callers("inference") and catalog["gateway"].public


@pytest.mark.parametrize("env", ENVS)
def test_every_consumer_scales_out_on_its_queues_ready_messages(env: str) -> None:
    compute, messaging = layers(env)["compute"], layers(env)["messaging"]["outputs"]
    for spec in load_catalog():
        if not spec.consumes:
            continue
        found = scaling(compute, spec.name)
        out, alarm = found["backlog-out"]["inputs"], found["alarm-backlog-out"]["inputs"]
        assert out["policyType"] == "StepScaling"
        config = out["stepScalingPolicyConfiguration"]
        # sized on what waited in every sample the alarm saw, not on one stale peak
        assert (config["adjustmentType"], config["metricAggregationType"]) == ("ChangeInCapacity", "Minimum")
        steps = config["stepAdjustments"]
        assert steps[0] == {"metricIntervalLowerBound": "0", "metricIntervalUpperBound": "9", "scalingAdjustment": 1}
        assert "metricIntervalUpperBound" not in steps[-1], "the last step is unbounded"
        # a task takes minutes to start while its message still waits: a one-minute cooldown would add a task a
        # minute up to max_count for a single message
        assert config["cooldown"] >= 300
        assert (alarm["namespace"], alarm["metricName"], alarm["statistic"]) == (
            "MLPlatform/RabbitMQ", "MessagesReady", "Maximum")
        assert alarm["dimensions"] == {"VirtualHost": messaging["vhost"], "Queue": messaging["queues"][spec.name]}
        assert (alarm["comparisonOperator"], alarm["threshold"]) == ("GreaterThanOrEqualToThreshold", 1)
        # one sample a minute, and a message a consumer has just taken may still count as ready in it: a single
        # sample never adds a task (for a 6-hour job it would idle the whole job); two consecutive ones do
        assert alarm["evaluationPeriods"] == alarm["datapointsToAlarm"] == 2
        assert alarm["period"] == 60
        (action,) = alarm["alarmActions"]
        assert ":scalingPolicy:" in action and found["backlog-out"]["urn"] in found["alarm-backlog-out"]["dependencies"]
        assert "okActions" not in alarm, "it scales; the queue alarms notify"
        # no data (the publisher down: its own alarms notify) neither grows nor shrinks the service
        assert alarm["treatMissingData"] == "notBreaching"


@pytest.mark.parametrize("env", ENVS)
def test_only_a_consumer_no_request_reaches_scales_in_on_its_backlog_and_not_on_cpu(env: str) -> None:
    compute = layers(env)["compute"]
    catalog = load_catalog()
    for spec in catalog:
        found = scaling(compute, spec.name)
        # BACKLOG_ONLY in the shipped catalog, and any consumer a user adds that no HTTP request reaches
        if spec.consumes and not spec.public and not catalog.callers(spec.name):
            assert_scales_in_on_its_queue(found, protects_jobs=spec.protects_jobs)
        else:
            assert "backlog-in" not in found
            assert "cpu" in found, f"{spec.name} serves HTTP: CPU scales it out"


@pytest.mark.parametrize("env", ENVS)
def test_no_scale_in_works_against_a_scale_out_or_cuts_a_job(env: str) -> None:
    """An HTTP consumer (gateway, preprocess, inference) scales out on its CPU and on its backlog, but CPU tracking
    removes none of its tasks: it knows nothing of the jobs they hold, and while messages wait with little CPU it
    would remove what the backlog scale-out adds back, again and again, each removal stopping a task that may hold a
    job (redelivered, towards the delivery limit; "caution ... when using target tracking scaling policies with step
    scaling policies", botocore application-autoscaling PutScalingPolicy). It loses one task per cooldown once its
    queue held nothing, ready or unacknowledged, and its CPU stayed under half the target (one task of N >= 2 fewer
    stays under the target) for 15 minutes."""
    compute = layers(env)["compute"]
    catalog = load_catalog()
    for target in of_type(compute, TARGET):
        found = scaling(compute, target["name"])
        policies = {suffix: found[suffix]["inputs"] for suffix in found if not suffix.startswith("alarm-")}
        tracking = [p["targetTrackingScalingPolicyConfiguration"] for p in policies.values()
                    if p["policyType"] == "TargetTrackingScaling"]
        step_out = [suffix for suffix, p in policies.items() if p["policyType"] == "StepScaling"
                    and all(step["scalingAdjustment"] > 0 for step in p["stepScalingPolicyConfiguration"]
                            ["stepAdjustments"])]
        if step_out:
            assert all(config.get("disableScaleIn") is True for config in tracking), (target["name"], step_out)
    for spec in catalog:
        if not spec.consumes or catalog.queue_only(spec.name):
            continue
        found = scaling(compute, spec.name)
        assert {suffix for suffix in found if not suffix.startswith("alarm-")} == {"cpu", "backlog-out", "quiet-in"}
        quiet = found["quiet-in"]["inputs"]["stepScalingPolicyConfiguration"]
        assert quiet["stepAdjustments"] == [{"metricIntervalLowerBound": "0", "scalingAdjustment": -1}]
        assert quiet["cooldown"] == 300
        alarm = found["alarm-quiet-in"]["inputs"]
        assert alarm["name"] == f"{env}-ml-quiet-in-{spec.name}"
        assert (alarm["comparisonOperator"], alarm["threshold"]) == ("GreaterThanOrEqualToThreshold", 1)
        assert alarm["evaluationPeriods"] == alarm["datapointsToAlarm"] == 15
        assert alarm["treatMissingData"] == "notBreaching", "no figures: no quiet minute, no scale-in"
        queries = {query["id"]: query for query in alarm["metricQueries"]}
        cpu, messages = queries["cpu"]["metric"], queries["messages"]["metric"]
        assert (cpu["namespace"], cpu["metricName"], cpu["stat"], set(cpu["dimensions"])) == (
            "AWS/ECS", "CPUUtilization", "Average", {"ClusterName", "ServiceName"})
        assert cpu["dimensions"]["ServiceName"] == by_name(compute, "aws:ecs/service:Service", spec.name)[
            "inputs"]["name"]
        # ready and unacknowledged together: no task holds a job a stop would cut
        assert (messages["namespace"], messages["metricName"], messages["stat"]) == (
            "MLPlatform/RabbitMQ", "Messages", "Maximum")
        assert messages["dimensions"] == found["alarm-backlog-out"]["inputs"]["dimensions"]
        target_percent = plan_service(load_env(env), catalog, spec.name).cpu_target_percent
        assert queries["quiet"]["expression"] == f"IF(messages == 0 AND cpu < {target_percent / 2:g}, 1, 0)"
        assert queries["quiet"]["returnData"] is True and not queries["cpu"].get("returnData")
        assert found["quiet-in"]["urn"] in found["alarm-quiet-in"]["dependencies"]


def assert_scales_in_on_its_queue(found: dict[str, dict[str, Any]], protects_jobs: bool) -> None:
    """One task per cooldown, on the work queue's figures over BACKLOG_IDLE_PERIODS minutes."""
    backlog_in = found["backlog-in"]["inputs"]["stepScalingPolicyConfiguration"]
    alarm = found["alarm-backlog-in"]["inputs"]
    if protects_jobs:
        # its app protects the task holding a job, so ECS stops only idle ones: in while nothing is ready and a
        # consumer holds nothing, each of the period's samples (Minimum) saying so
        assert backlog_in["stepAdjustments"] == [{"metricIntervalLowerBound": "0", "scalingAdjustment": -1}]
        assert backlog_in["metricAggregationType"] == "Minimum"
        assert (alarm["comparisonOperator"], alarm["threshold"]) == ("GreaterThanOrEqualToThreshold", 1)
        assert (alarm["namespace"], alarm["metricName"], alarm["statistic"]) == (
            "MLPlatform/RabbitMQ", "IdleConsumers", "Minimum")
    else:
        # ECS picks the task it stops: only once the queue holds nothing, ready or unacknowledged (with no message
        # waiting but a job in progress, MessagesReady 0 and MessagesUnacknowledged > 0, ECS could stop that one)
        assert backlog_in["stepAdjustments"] == [{"metricIntervalUpperBound": "0", "scalingAdjustment": -1}]
        assert (alarm["comparisonOperator"], alarm["threshold"]) == ("LessThanOrEqualToThreshold", 0)
        assert (alarm["namespace"], alarm["metricName"], alarm["statistic"]) == (
            "MLPlatform/RabbitMQ", "Messages", "Maximum")
    assert alarm["dimensions"] == found["alarm-backlog-out"]["inputs"]["dimensions"]
    assert alarm["evaluationPeriods"] == alarm["datapointsToAlarm"] == BACKLOG_IDLE_PERIODS
    assert alarm["treatMissingData"] == "notBreaching", "no figures: neither grow nor shrink"


def test_a_consumer_whose_app_protects_its_jobs_scales_in_on_its_idle_consumers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After a burst to N tasks the N - 1 idle ones leave while the last job runs (its task protected), instead of
    idling, billed, until the queue is empty; nothing else of the service changes."""
    from tests.catalog_helpers import write_catalog

    shipped = scaling(layers("dev")["compute"], BACKLOG_ONLY)
    assert not load_catalog()[BACKLOG_ONLY].protects_jobs, "the shipped image's behaviour is its team's to declare"
    write_catalog(tmp_path, monkeypatch, lambda services: services[BACKLOG_ONLY].update(protects_jobs=True))
    found = scaling(synth_env("dev", ["compute"])["compute"], BACKLOG_ONLY)
    assert_scales_in_on_its_queue(found, protects_jobs=True)
    assert found["backlog-out"]["inputs"] == shipped["backlog-out"]["inputs"]
    assert found["alarm-backlog-out"]["inputs"] == shipped["alarm-backlog-out"]["inputs"]
    assert found["alarm-backlog-in"]["name"] == shipped["alarm-backlog-in"]["name"], "updated in place, not replaced"


@pytest.mark.parametrize("env", ENVS)
def test_a_consumer_no_request_reaches_scales_on_its_queue_alone_never_on_its_cpu(env: str) -> None:
    """Its CPU says how hard the jobs its tasks hold work, not that work waits: a task takes only messages that are
    ready, so one added while none is ready idles. CPU target tracking would add one per CPU-bound job (a task at
    100 % against the 60 % target asks for 2: target tracking "scales out proportionally to the metric",
    Application Auto Scaling user guide), and with its scale-in off (low CPU is no sign of no work) only the queue
    emptying would remove it: prod's training billed an idle task for each 6-hour job. So every policy on its
    scalable target reads its queue: out on ready messages, in on none at all (or, where its app protects its
    working tasks, on idle consumers)."""
    compute = layers(env)["compute"]
    catalog = load_catalog()
    backlog_only = [spec.name for spec in catalog
                    if spec.consumes and not spec.public and not catalog.callers(spec.name)]
    assert BACKLOG_ONLY in backlog_only
    for name in backlog_only:
        found = scaling(compute, name)
        policies = {suffix for suffix in found if not suffix.startswith("alarm-")}
        assert policies == {"backlog-out", "backlog-in"}, f"{name}: {sorted(policies)}"
        assert all(found[p]["inputs"]["policyType"] == "StepScaling" for p in policies)
        scale_in = "IdleConsumers" if catalog[name].protects_jobs else "Messages"
        assert {found[f"alarm-{p}"]["inputs"]["metricName"] for p in policies} == {"MessagesReady", scale_in}


@pytest.mark.parametrize("env", ENVS)
def test_the_scaling_requests_are_valid_for_the_apis(env: str) -> None:
    compute = layers(env)["compute"]
    for policy in of_type(compute, POLICY):
        inputs = policy["inputs"]
        if inputs["policyType"] != "StepScaling":
            continue
        config = inputs["stepScalingPolicyConfiguration"]
        params = {"PolicyName": policy["name"], "ServiceNamespace": inputs["serviceNamespace"],
                  "ResourceId": inputs["resourceId"], "ScalableDimension": inputs["scalableDimension"],
                  "PolicyType": "StepScaling", "StepScalingPolicyConfiguration": {
                      "AdjustmentType": config["adjustmentType"], "Cooldown": config["cooldown"],
                      "MetricAggregationType": config["metricAggregationType"],
                      "StepAdjustments": [{**({"MetricIntervalLowerBound": float(s["metricIntervalLowerBound"])}
                                              if "metricIntervalLowerBound" in s else {}),
                                           **({"MetricIntervalUpperBound": float(s["metricIntervalUpperBound"])}
                                              if "metricIntervalUpperBound" in s else {}),
                                           "ScalingAdjustment": s["scalingAdjustment"]}
                                          for s in config["stepAdjustments"]]}}
        report = ParamValidator().validate(params, put_scaling_policy_shape())
        assert not report.has_errors(), report.generate_report()
    for alarm in of_type(compute, ALARM):
        if "-ml-backlog-" in alarm["inputs"]["name"] or "-ml-quiet-in-" in alarm["inputs"]["name"]:
            report = ParamValidator().validate(put_metric_alarm_params(alarm["inputs"]), put_metric_alarm_shape())
            assert not report.has_errors(), report.generate_report()


def test_a_backlog_only_consumer_may_rest_at_zero_tasks_and_does_not_page_there(edit_env: Any) -> None:
    edit_env("dev", lambda data: data["services"][BACKLOG_ONLY].update(desired_count=0, min_count=0, max_count=2))
    compute = synth_env("dev", ["compute"])["compute"]
    target = by_name(compute, TARGET, BACKLOG_ONLY)["inputs"]
    assert (target["minCapacity"], target["maxCapacity"]) == (0, 2)
    assert by_name(compute, "aws:ecs/service:Service", BACKLOG_ONLY)["inputs"]["desiredCount"] == 0
    assert "backlog-out" in scaling(compute, BACKLOG_ONLY), "what scales it out of zero"
    # Container Insights emits nothing for a service with no task: silence there is no alarm
    (tasks,) = [a["inputs"] for a in of_type(compute, ALARM)
                if a["inputs"]["name"] == f"dev-ml-tasks-below-desired-{BACKLOG_ONLY}"]
    assert tasks["treatMissingData"] == "notBreaching"


def test_without_published_queue_metrics_no_service_scales_on_its_backlog(tmp_path: Path, edit_env: Any) -> None:
    from shared.synth.engine import synth_program
    from tests.layers.test_messaging import external_program

    messaging = external_program(tmp_path, edit_env, None)
    env, catalog = load_env("dev"), load_catalog()
    plans = [plan_service(env, catalog, spec.name) for spec in catalog]
    assert not any(plan.backlog_scaling or plan.wakes_on_backlog for plan in plans)
    # Nor on its CPU where only its queue brings work: CPU tracking would add a task per CPU-bound job, then scale
    # in on the halved average, and ECS may stop the task holding the job (redelivered, started over). It runs
    # between min_count and max_count as set; those that serve HTTP keep CPU tracking.
    upstream = synth_env("dev", ["network", "discovery", "mesh", "broker"])
    outputs = {f"organization/{layer}/dev": document["outputs"] for layer, document in upstream.items()}
    outputs["organization/messaging/dev"] = messaging["outputs"]
    compute = synth_program(REPO_ROOT / "stacks" / "compute", stack="dev", layer="compute", env="dev",
                            account_id=env.account_id, region=env.region, stack_outputs=outputs)
    assert scaling(compute, BACKLOG_ONLY) == {}
    for spec in catalog:
        if spec.name != BACKLOG_ONLY:
            assert set(scaling(compute, spec.name)) == {"cpu"}, spec.name
            # no queue figures: CPU tracking is all that scales it, in too
            assert "disableScaleIn" not in scaling(compute, spec.name)["cpu"]["inputs"][
                "targetTrackingScalingPolicyConfiguration"], spec.name


@pytest.mark.parametrize("env", ENVS)
def test_a_second_up_leaves_the_running_count_to_autoscaling(env: str) -> None:
    """Every ECS service ignores desiredCount after its creation: the engine keeps the deployed value, so an `up`
    with no change (or a new desired_count in the env file) never sets a service back to the env's count while
    autoscaling has moved it, e.g. scales it in under load. The count moves through min_count/max_count, which
    Application Auto Scaling applies in place, moving the running count into the new range (botocore
    application-autoscaling RegisterScalableTarget)."""
    compute = layers(env)["compute"]
    services = of_type(compute, "aws:ecs/service:Service")
    assert services
    for service in services:
        assert service["ignore_changes"] == ["desiredCount"], service["name"]
    for target in of_type(compute, TARGET):
        assert "ignore_changes" not in target, "min/max are the env's to change"


def test_a_scale_out_waits_for_the_tasks_it_started_before_adding_more(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A new task serves only after placement, its image pull and start-up; until then the CPU or the backlog that
    scaled the service out says the same, and a cooldown that ends first adds tasks again for the same load (a
    slow starter's one waiting message would take it to max_count). Within a cooldown a larger need still scales
    out (Application Auto Scaling: only the difference is added), so the longer wait holds back no growth."""
    from shared.envs import DEPLOY_OVERHEAD_SECONDS
    from tests.catalog_helpers import write_catalog

    default = scaling(layers("dev")["compute"], "gateway")["cpu"]["inputs"]["targetTrackingScalingPolicyConfiguration"]
    assert default["scaleOutCooldown"] == load_catalog()["gateway"].startup_seconds + DEPLOY_OVERHEAD_SECONDS == 180
    write_catalog(tmp_path, monkeypatch, lambda services: services["inference"].update(startup_seconds=900))
    found = scaling(synth_env("dev", ["compute"])["compute"], "inference")
    assert found["cpu"]["inputs"]["targetTrackingScalingPolicyConfiguration"]["scaleOutCooldown"] == 1020
    assert found["backlog-out"]["inputs"]["stepScalingPolicyConfiguration"]["cooldown"] == 1020


def test_a_replaced_service_takes_its_scalable_target_and_policies_with_it() -> None:
    """ECS refuses a second service of the same name while the first is ACTIVE or DRAINING (ECS DeleteService), so a
    service whose replace-on-change input changes (cluster, name) is deleted before it is created again,
    and AWS drops its scalable target and policies with it. The target's resourceId (service/<cluster>/<name>) is the
    same string for the new service, so only the engine's delete-before-replace scan re-creates them: each dependent
    whose replace-on-change input takes a value from the replaced service (its property dependencies) is deleted
    first and created after it. Otherwise the state keeps a target and policies AWS no longer has, and the new
    service runs at desired_count without autoscaling until someone notices."""
    from shared.plan_diff import diff_documents

    baseline = layers("dev")["compute"]
    service = next(r for r in of_type(baseline, "aws:ecs/service:Service") if r["name"] == "gateway")
    assert service.get("delete_before_replace") is True, "the engine's dependent replacement needs it explicit"
    before = copy.deepcopy(baseline)
    next(r for r in before["resources"] if r["urn"] == service["urn"])["inputs"]["cluster"] = "arn:aws:ecs:old"
    changes = {c.name: c.action for c in diff_documents("compute", before, baseline).changes
               if c.type in (TARGET, POLICY, "aws:ecs/service:Service")}
    assert changes == {"gateway": "replace", "gateway-cpu": "replace", "gateway-backlog-out": "replace",
                       "gateway-quiet-in": "replace"}, changes
    # the links the scan follows: the target's resourceId reads the service, each policy's reads the target
    target = next(r for r in of_type(baseline, TARGET) if r["parent"] == service["urn"])
    assert service["urn"] in target["property_dependencies"]["resourceId"]
    for policy in of_type(baseline, POLICY):
        if policy["parent"] == target["urn"]:
            assert policy["property_dependencies"]["resourceId"] == [target["urn"]]


@pytest.mark.parametrize("env", ENVS)
def test_no_consumer_has_its_tasks_stopped_to_even_out_its_availability_zones(env: str) -> None:
    """Unsent, ECS enables AZ rebalancing on a service created since 2025-06-30 (botocore ecs CreateService
    availabilityZoneRebalancing) and stops tasks of the AZ that runs the most whenever the spread is uneven: a
    consumer's task holding a job (hours for training) would lose it, redelivered and counted towards the delivery
    limit. Every service sends the setting, so one created today behaves as one created before: off for consumers."""
    catalog = load_catalog()
    services = of_type(layers(env)["compute"], "aws:ecs/service:Service")
    assert services
    for service in services:
        assert service["inputs"]["availabilityZoneRebalancing"] == "DISABLED", service["name"]
        assert catalog[service["name"]].consumes, service["name"]


def test_a_service_without_a_queue_keeps_its_tasks_spread_across_availability_zones(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A service that consumes nothing holds no job a rebalancing stop could cut: ECS evens out its tasks after an AZ
    event (and the setting is sent, so its behaviour does not depend on when the service was created)."""
    from tests.catalog_helpers import write_catalog

    def no_queue(services: dict[str, Any]) -> None:
        for key in ("consumes", "max_job_seconds", "protects_jobs"):
            services["training"].pop(key, None)

    write_catalog(tmp_path, monkeypatch, no_queue)
    compute = synth_env("dev", ["compute"])["compute"]
    rebalancing = {service["name"]: service["inputs"]["availabilityZoneRebalancing"]
                   for service in of_type(compute, "aws:ecs/service:Service")}
    assert rebalancing == {"gateway": "DISABLED", "preprocess": "DISABLED", "inference": "DISABLED",
                           "training": "ENABLED"}
