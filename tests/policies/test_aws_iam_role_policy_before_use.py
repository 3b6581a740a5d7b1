"""``iam-role-policy-before-use`` through the real pack: a resource that passes a role of its stack to a service is
created after that role's policies of the stack -- compliant, non-compliant, a role of another stack, unknown at
preview, and the platform's stacks in every env (and the same stacks with one dependency taken out)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from shared.policy.engine import PolicyEngine, evaluate_documents_result
from tests.layers.compute_helpers import ENVS, platform
from tests.policies.resources import ACCOUNT, UNKNOWN_STRING, res
from tests.policies.tokens import ATTACHMENT, FLOW_LOG, FUNCTION, POLICY_ATTACHMENT, ROLE, ROLE_POLICY, TASK

RULE = "iam-role-policy-before-use"
ROLE_LAYERS = ("network", "broker", "messaging", "compute")


def arn(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/{name}"


def role(name: str) -> dict[str, Any]:
    return res(ROLE, name, {"name": name, "assumeRolePolicy": "{}"})


def inline(of: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    return res(ROLE_POLICY, name or f"{of['name']}-policy", {"role": of["name"], "policy": "{}"},
               dependencies=[of], property_dependencies={"role": [of]})


def attached(of: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    return res(ATTACHMENT, name or f"{of['name']}-attach",
               {"role": of["name"], "policyArn": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"},
               dependencies=[of], property_dependencies={"role": [of]})


def function(of: dict[str, Any], after: tuple[dict[str, Any], ...] = (), name: str = "fn") -> dict[str, Any]:
    return res(FUNCTION, name, {"role": arn(of["name"]), "runtime": "python3.13", "handler": "h.main"},
               dependencies=[of, *after], property_dependencies={"role": [of]})


def messages(findings: list[dict[str, Any]]) -> list[str]:
    return [f["message"] for f in findings if f["rule"] == RULE]


def test_a_function_created_after_its_roles_policies_passes(policy_findings: Any) -> None:
    fn_role = role("fn")
    grants = (inline(fn_role), attached(fn_role))
    assert messages(policy_findings([fn_role, *grants, function(fn_role, after=grants)])) == []


def test_a_function_that_reads_only_its_roles_arn_fails(policy_findings: Any) -> None:
    # pulumi_aws's Lambda example shape: the role, its managed policy attached, the function on role.arn
    fn_role = role("fn")
    grant = attached(fn_role)
    (message,) = messages(policy_findings([fn_role, grant, function(fn_role)]))
    assert "aws.lambda.Function 'fn' passes role 'fn' (role) but is not created after its policy 'fn-attach'" in message
    assert "depends_on=[<fn-attach>]" in message


def test_each_role_of_a_task_definition_is_judged_and_a_dependency_through_another_resource_counts(
        policy_findings: Any) -> None:
    execution, task_role = role("web-exec"), role("web-task")
    execution_grant, task_grant = inline(execution), inline(task_role)
    # e.g. a component, or a log group that itself waits for the execution policy
    gate = res("aws:cloudwatch/logGroup:LogGroup", "web", {"retentionInDays": 30}, dependencies=[execution_grant])
    task = res(TASK, "web", {"family": "web", "executionRoleArn": arn("web-exec"), "taskRoleArn": arn("web-task")},
               dependencies=[execution, task_role, gate],
               property_dependencies={"executionRoleArn": [execution], "taskRoleArn": [task_role]})
    (message,) = messages(policy_findings([execution, task_role, execution_grant, task_grant, gate, task]))
    assert "passes role 'web-task' (taskRoleArn)" in message and "'web-task-policy'" in message


def test_the_role_is_found_by_its_arn_and_a_policy_attachment_by_its_roles(policy_findings: Any) -> None:
    flow = role("flow")
    grant = res(POLICY_ATTACHMENT, "flow-attach", {"roles": ["flow"], "policyArn": "arn:aws:iam::1:policy/p"})
    log = res(FLOW_LOG, "vpc", {"iamRoleArn": arn("flow"), "trafficType": "ALL"})
    (message,) = messages(policy_findings([flow, grant, log]))
    assert "aws.ec2.FlowLog 'vpc' passes role 'flow' (iamRoleArn)" in message
    after = res(FLOW_LOG, "vpc", {"iamRoleArn": arn("flow"), "trafficType": "ALL"}, dependencies=[grant])
    assert messages(policy_findings([flow, grant, after])) == []


def test_a_role_without_policies_of_the_stack_or_a_role_of_another_stack_is_not_judged(
        policy_findings: Any, policy_not_applicable: Any) -> None:
    bare, used = role("bare"), role("used")
    grant = inline(used)
    elsewhere = res(FUNCTION, "other", {"role": arn("shared-role"), "runtime": "python3.13", "handler": "h.main"})
    resources = [bare, used, grant, function(bare), elsewhere]
    assert messages(policy_findings(resources)) == []
    (reason,) = [na["reason"] for na in policy_not_applicable(resources) if na["rule"] == RULE]
    assert "no resource of the stack passes a role of the stack that has policies" in reason


def test_an_unknown_role_reference_leaves_the_rule_undecided(policy_findings: Any, policy_not_applicable: Any) -> None:
    # An ARN unknown at preview, no property dependency recorded, two candidate roles: which one cannot be told yet.
    first, second = role("first"), role("second")
    grants = [inline(first), inline(second)]
    unknown = res(FUNCTION, "fn", {"role": UNKNOWN_STRING, "runtime": "python3.13", "handler": "h.main"},
                  dependencies=[first, second])
    resources = [first, second, *grants, unknown]
    assert messages(policy_findings(resources)) == []
    (reason,) = [na["reason"] for na in policy_not_applicable(resources) if na["rule"] == RULE]
    assert "aws.lambda.Function 'fn': role unknown until deployment" in reason


def _judge(policy_engine: PolicyEngine, env: str, docs: list[dict[str, Any]]) -> list[str]:
    result = evaluate_documents_result(docs, env_name=env, engine=policy_engine)
    return [f.message for f in result.findings if f.rule == RULE]


@pytest.mark.parametrize("env", ENVS)
def test_the_platforms_stacks_pass_in_every_env(policy_engine: PolicyEngine, env: str) -> None:
    layers = platform(env)
    docs = [layers[layer] for layer in ROLE_LAYERS]
    users = [r for doc in docs for r in doc["resources"] if r["type"] in (FUNCTION, TASK, FLOW_LOG,
                                                                        "aws:codebuild/project:Project")]
    assert len(users) >= 5, "the rotation and queue metrics functions, the runner, the flow log, the task definitions"
    assert _judge(policy_engine, env, docs) == []


@pytest.mark.parametrize(("layer", "user_type"), [
    ("compute", TASK), ("broker", FUNCTION), ("messaging", FUNCTION), ("network", FLOW_LOG),
    ("broker", "aws:codebuild/project:Project"),
])
def test_each_layer_fails_without_the_dependency_its_component_declares(policy_engine: PolicyEngine, layer: str,
                                                                        user_type: str) -> None:
    """Taking the role policies out of one user's dependencies (as a component without its depends_on would
    record them) is found: the rule reads the platform's synth as the engine records it. What waits for a policy
    goes too (a VPC function's ENI drain, which depends on its role's policy: through it the function waits)."""
    doc = copy.deepcopy(platform("prod")[layer])
    policies = {r["urn"] for r in doc["resources"] if r["type"] == ROLE_POLICY}
    waiting = {r["urn"] for r in doc["resources"] if policies & set(r.get("dependencies") or [])}
    (user, *_) = [r for r in doc["resources"] if r["type"] == user_type]
    user["dependencies"] = [urn for urn in user["dependencies"] if urn not in policies | waiting]
    found = _judge(policy_engine, "prod", [doc])
    assert found and all(f"'{user['name']}' passes role" in message for message in found), found


def test_a_policy_that_is_built_from_the_resource_itself_is_not_required_before_it(policy_findings: Any) -> None:
    """A grant computed from the user (a Distributed Map state machine's ``states:StartExecution`` on its own ARN, a
    function's policy on its ``/aws/lambda/<name>`` log group) is created after it by construction: depends_on would
    be a cycle the engine refuses, so the rule must not ask for it -- but still asks for the role's other grants."""
    sfn_role = role("sfn")
    machine = res("aws:sfn/stateMachine:StateMachine", "batch", {"roleArn": arn("sfn"), "definition": "{}"},
                  dependencies=[sfn_role], property_dependencies={"roleArn": [sfn_role]})
    itself = res(ROLE_POLICY, "sfn-start-itself", {"role": "sfn", "policy": "{}"},
                 dependencies=[sfn_role, machine], property_dependencies={"role": [sfn_role], "policy": [machine]})
    assert messages(policy_findings([sfn_role, machine, itself])) == []
    fn_role = role("fn")
    fn = function(fn_role)
    log_group = res("aws:cloudwatch/logGroup:LogGroup", "fn-logs", {"name": "/aws/lambda/fn"},
                    dependencies=[fn], property_dependencies={"name": [fn]})
    logs_grant = res(ROLE_POLICY, "fn-logs", {"role": "fn", "policy": "{}"},
                     dependencies=[fn_role, log_group],
                     property_dependencies={"role": [fn_role], "policy": [log_group]})
    other = attached(fn_role)
    (message,) = messages(policy_findings([fn_role, fn, log_group, logs_grant, other]))
    assert "depends_on=[<fn-attach>]" in message and "fn-logs" not in message


def test_a_known_role_of_elsewhere_is_not_taken_for_the_one_role_the_resource_depends_on(policy_findings: Any) -> None:
    """A function whose execution role is an existing role (its ARN from config or ``aws.iam.get_role``: known, no
    recorded dependency) and that gets the ARN of a role of the stack to assume in its environment depends on that
    role only through the environment: the rule must not judge it as the function's role."""
    assumed = role("reports-reader")
    grant = inline(assumed)
    fn = res(FUNCTION, "reports", {"role": arn("org-lambda-basic"), "runtime": "python3.13", "handler": "h.main",
                                   "environment": {"variables": {"READER_ROLE": arn("reports-reader")}}},
             dependencies=[assumed], property_dependencies={"role": [], "environment": [assumed]})
    assert messages(policy_findings([assumed, grant, fn])) == []
    # the same reference unknown during preview, with the one role of the stack it depends on, is still judged
    unknown = res(FUNCTION, "reports", {"role": UNKNOWN_STRING, "runtime": "python3.13", "handler": "h.main"},
                  dependencies=[assumed])
    (message,) = messages(policy_findings([assumed, grant, unknown]))
    assert "passes role 'reports-reader' (role)" in message


def test_a_resource_inside_a_component_that_waits_for_the_policy_passes(policy_findings: Any) -> None:
    """``Service("web", opts=ResourceOptions(depends_on=[policy]))`` creating its task definition with
    ``parent=self``: the engine records the policy on the component only, yet the SDK registers a child only once its
    parent's URN resolves, after the parent's own dependencies exist (pulumi runtime/resource.py prepare_resource),
    and the engine deletes children before their parent."""
    execution = role("web-exec")
    grant = attached(execution)
    service = res("acme:ml:Service", "web", {}, custom=False, dependencies=[grant])
    inner = res("acme:ml:TaskFamily", "web", {}, custom=False, parent=service)
    task = res(TASK, "web", {"family": "web", "executionRoleArn": arn("web-exec")}, parent=inner,
               dependencies=[execution], property_dependencies={"executionRoleArn": [execution]})
    assert messages(policy_findings([execution, grant, service, inner, task])) == []
    # a component without that dependency is no gate
    bare = res("acme:ml:Service", "web", {}, custom=False)
    task = res(TASK, "web", {"family": "web", "executionRoleArn": arn("web-exec")}, parent=bare,
               dependencies=[execution], property_dependencies={"executionRoleArn": [execution]})
    (message,) = messages(policy_findings([execution, grant, bare, task]))
    assert "passes role 'web-exec' (executionRoleArn)" in message
