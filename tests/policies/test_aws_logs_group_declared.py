"""``logs-group-declared`` (stack rule): a Lambda function or CodeBuild project writes to a log group its stack
declares. Without one, CloudWatch creates ``/aws/lambda/<name>`` or ``/aws/codebuild/<name>`` on the first write with
no retention, which ``logs-retention-set`` (it judges declared groups) never sees. Through the real pack process."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.policies.resources import UNKNOWN_STRING, res, snapshot_document
from tests.policies.tokens import FUNCTION, PROJECT, TASK
from tests.policies.tokens import LOG_GROUP as GROUP

RULE = "logs-group-declared"


def judged(findings: list[dict[str, Any]]) -> list[str]:
    return [f["message"] for f in findings if f["rule"] == RULE]


def function(name: str | None = "fn", **inputs: Any) -> dict[str, Any]:
    return res(FUNCTION, "fn", {**({"name": name} if name is not None else {}), "runtime": "python3.12",
                                "handler": "handler.main", "role": "arn:aws:iam::111111111111:role/fn", **inputs})


def group(name: str, **opts: Any) -> dict[str, Any]:
    return res(GROUP, "fn-logs", {"name": name, "retentionInDays": 30}, **opts)


def project(logs_config: dict[str, Any] | None = None) -> dict[str, Any]:
    inputs: dict[str, Any] = {"name": "deploy", "source": {"type": "NO_SOURCE", "buildspec": "version: 0.2"}}
    if logs_config is not None:
        inputs["logsConfig"] = logs_config
    return res(PROJECT, "deploy", inputs)


def test_a_function_without_a_log_group_of_its_stack_fails(policy_findings):
    # Lambda's default group /aws/lambda/fn is created on the first invocation, kept forever
    [message] = judged(policy_findings([function()]))
    assert "'fn' writes to log group /aws/lambda/fn, which the stack does not declare" in message
    assert "logging_config={'log_group': group.name}" in message


def test_an_auto_named_function_without_a_log_group_fails(policy_findings):
    assert judged(policy_findings([function(name=None)]))


def test_a_function_whose_group_is_declared_by_name_passes(policy_findings):
    assert judged(policy_findings([function(), group("/aws/lambda/fn")])) == []
    custom = function(loggingConfig={"logFormat": "Text", "logGroup": "/platform/dev/fn"})
    assert judged(policy_findings([custom, group("/platform/dev/fn")])) == []


def test_a_function_naming_another_group_than_the_declared_one_fails(policy_findings):
    custom = function(loggingConfig={"logFormat": "Text", "logGroup": "/platform/dev/typo"})
    [message] = judged(policy_findings([custom, group("/platform/dev/fn")]))
    assert "/platform/dev/typo" in message


def test_a_group_computed_from_the_function_counts(policy_findings):
    # name=fn.name.apply(lambda n: f"/aws/lambda/{n}"): the group depends on the function (tests/programs/lambda-fn)
    fn = function(name=None)
    assert judged(policy_findings([fn, group(UNKNOWN_STRING, dependencies=[fn])])) == []


def test_a_group_inside_a_component_that_waits_for_the_function_is_not_its_group(policy_findings):
    # Alarms("fn", opts=ResourceOptions(depends_on=[fn])) declaring some other group with parent=self: created after
    # the function (ordering rules count the parent), but not computed from it -- the function's own group is still
    # undeclared
    fn = function()
    component = res("acme:ml:Alarms", "fn", {}, custom=False, dependencies=[fn])
    [message] = judged(policy_findings([fn, component, group("/platform/dev/other", parent=component)]))
    assert "'fn' writes to log group /aws/lambda/fn, which the stack does not declare" in message


def test_a_function_whose_group_input_comes_from_a_declared_group_passes(policy_findings):
    logs = group(UNKNOWN_STRING)
    fn = function(loggingConfig={"logGroup": UNKNOWN_STRING}, dependencies=[logs],
                  property_dependencies={"loggingConfig": [logs]})
    assert judged(policy_findings([logs, fn])) == []


def test_an_unknown_name_next_to_an_unknown_group_is_decided_at_up(policy_findings, policy_not_applicable):
    resources = [function(name=UNKNOWN_STRING), group(UNKNOWN_STRING)]
    assert judged(policy_findings(resources)) == []
    [record] = [na for na in policy_not_applicable(resources) if na["rule"] == RULE]
    assert "'fn'" in record["reason"]


def test_a_codebuild_project_logs_to_its_default_group_unless_declared_or_disabled(policy_findings):
    [message] = judged(policy_findings([project()]))
    assert "CodeBuild project 'deploy' writes to log group /aws/codebuild/deploy" in message
    assert judged(policy_findings([project(), group("/aws/codebuild/deploy")])) == []
    named = project({"cloudwatchLogs": {"status": "ENABLED", "groupName": "/platform/dev/deploy"}})
    assert judged(policy_findings([named, group("/platform/dev/deploy")])) == []
    off = project({"cloudwatchLogs": {"status": "DISABLED"}, "s3Logs": {"status": "ENABLED", "location": "b/p"}})
    assert judged(policy_findings([off])) == []


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_the_platforms_functions_and_deploy_runner_write_to_their_own_groups(rule_outcome, env):
    """The rotation and queue-metrics functions and the deploy runner of each shipped env (the snapshots) are
    decided and pass; the queue-metrics function pointed at a group its stack lacks is reported."""
    docs = [snapshot_document(env, layer) for layer in ("broker", "messaging")]
    assert rule_outcome(RULE, env, *docs) == ([], [])
    fn = next(r for r in docs[1]["resources"] if r["type"] == FUNCTION)
    fn["inputs"]["loggingConfig"]["logGroup"] = "/aws/lambda/elsewhere"
    findings, _ = rule_outcome(RULE, env, *docs)
    assert [f["rule"] for f in findings] == [RULE]




def task(group_name: str, create: bool) -> dict[str, Any]:
    options = {"awslogs-group": group_name, "awslogs-region": "eu-west-1", "awslogs-stream-prefix": "app",
               **({"awslogs-create-group": "true"} if create else {})}
    containers = [{"name": "app", "image": "app@sha256:" + "a" * 64, "essential": True,
                   "logConfiguration": {"logDriver": "awslogs", "options": options}}]
    return res(TASK, "app", {"family": "app", "containerDefinitions": json.dumps(containers),
                             "requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc", "cpu": "256",
                             "memory": "512"})


def test_a_task_whose_awslogs_driver_may_create_an_undeclared_group_fails(policy_findings):
    [message] = judged(policy_findings([task("/ecs/app", create=True)]))
    assert "task definition 'app' lets the awslogs driver create log group /ecs/app" in message
    assert judged(policy_findings([task("/ecs/app", create=True), group("/ecs/app")])) == []
    # without awslogs-create-group a missing group stops the task instead: nothing grows
    assert judged(policy_findings([task("/ecs/app", create=False)])) == []


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_the_platforms_task_definitions_are_decided_and_pass(rule_outcome, env):
    assert rule_outcome(RULE, env, snapshot_document(env, "compute")) == ([], [])


def service(group_name: str, create: bool) -> dict[str, Any]:
    """An ECS service whose Service Connect proxy logs through ``serviceConnectConfiguration.logConfiguration`` (the
    same awslogs options as a container's: ECS API, ServiceConnectConfiguration.logConfiguration)."""
    options = {"awslogs-group": group_name, "awslogs-region": "eu-west-1", "awslogs-stream-prefix": "service-connect",
               **({"awslogs-create-group": "true"} if create else {})}
    return res("aws:ecs/service:Service", "app-svc", {
        "name": "app", "cluster": "arn:aws:ecs:eu-west-1:111111111111:cluster/c", "desiredCount": 1,
        "serviceConnectConfiguration": {"enabled": True, "namespace": "arn:aws:servicediscovery:eu-west-1:"
                                        "111111111111:namespace/ns-1",
                                        "logConfiguration": {"logDriver": "awslogs", "options": options}}})


def test_a_service_connect_proxy_whose_awslogs_driver_may_create_an_undeclared_group_fails(policy_findings):
    [message] = judged(policy_findings([service("/ecs/app/service-connect", create=True)]))
    assert "ECS service 'app-svc' lets the awslogs driver create log group /ecs/app/service-connect" in message
    assert judged(policy_findings([service("/ecs/app/service-connect", create=True),
                                   group("/ecs/app/service-connect")])) == []
    assert judged(policy_findings([service("/ecs/app/service-connect", create=False)])) == []
