"""Rules held to what AWS and RabbitMQ really do, case by case: inputs a rule once misjudged (a review of the rules
against IAM's, VPC endpoints', SNS's and RabbitMQ's documented behaviour), each with the behaviour it rests on."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.policies.resources import messages, res, rule_messages
from tests.policies.tokens import EVENT_RULE, EVENT_TARGET, QUEUE, RABBITMQ_POLICY, ROLE_POLICY, TOPIC

Findings = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]
ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"


def doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def role_policy(statement: dict[str, Any]) -> dict[str, Any]:
    return res(ROLE_POLICY, "p", {"role": "r", "policy": doc(statement)})


# -- iam-no-star-resource-write: IAM's action wildcard is a glob over the whole name ("iam:*Role" is PassRole too),
# and "every resource" is also an ARN open to any account or bucket, or Allow with NotResource (IAM user guide,
# "IAM JSON policy elements: Action", "NotResource")

@pytest.mark.parametrize(("action", "resource"), [
    ("iam:*Role", "*"), ("s3:Put*Acl", "*"), ("ecs:*Service", "*"), ("logs:*LogEvents", "*"),
    ("s3:DeleteObject", "arn:aws:s3:::*"), ("s3:DeleteObject", "arn:aws:s3:::*/*"),
    ("iam:PassRole", "arn:aws:iam::*:role/*"), ("secretsmanager:GetSecretValue", "arn:aws:secretsmanager:*:*:secret:*"),
    ("logs:PutLogEvents", "arn:aws:logs:*:*:*"),
])
def test_a_write_on_every_resource_is_found_however_spelt(policy_findings: Findings, action: str,
                                                          resource: str) -> None:
    found = messages(policy_findings([role_policy({"Effect": "Allow", "Action": action, "Resource": resource})]),
                     "iam-no-star-resource-write", "p")
    assert found and repr(action) in found[0], (action, resource)


def test_allow_with_not_resource_is_every_resource_but_some(policy_findings: Findings) -> None:
    found = messages(policy_findings([role_policy({"Effect": "Allow", "Action": "s3:DeleteObject",
                                                   "NotResource": "arn:aws:s3:::mine/*"})]),
                     "iam-no-star-resource-write", "p")
    assert found and "everything but its NotResource list" in found[0]


@pytest.mark.parametrize(("action", "resource"), [
    ("ec2:DeleteNetworkInterface", "arn:aws:ec2:eu-west-1:111111111111:network-interface/*"),  # a VPC function's
    ("kms:Decrypt", "arn:aws:kms:eu-west-1:111111111111:key/*"),  # in the account (narrowed by its conditions)
    ("s3:GetObject", "arn:aws:s3:::ml-artifacts-dev/*"),
    ("logs:CreateLogStream", "arn:aws:logs:*:*:log-group:/aws/lambda/fn:*"),  # one named group, any region
    ("iam:PassRole", "arn:aws:iam::*:role/ml-dev-task"),
    ("logs:Describe*", "*"), ("ec2:Describe*", "*"), ("ecr:GetAuthorizationToken", "*"),
    # wildcards whose every match takes no resource but "*" (or only reads)
    ("logs:*LogDelivery", "*"), ("ecs:*egisterTaskDefinition", "*"), ("xray:PutTrace*", "*"),
    ("cloudwatch:PutMetricData*", "*"),
    ("sqs:SendMessage", "arn:aws:sqs:*:*:dev-ml-jobs"), ("ssm:GetParameter", "arn:aws:ssm:*:*:parameter/dev/ml/x"),
    ("kms:Decrypt", "arn:aws:kms:eu-west-1:*:key/0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d"),
])
def test_what_stays_in_the_account_or_only_reads_passes(policy_findings: Findings, action: str,
                                                         resource: str) -> None:
    assert not messages(policy_findings([role_policy({"Effect": "Allow", "Action": action, "Resource": resource})]),
                        "iam-no-star-resource-write", "p"), (action, resource)


# -- iam-no-wildcard-actions: '?' is one character, '*' any run: "iam:?*" is every IAM action

@pytest.mark.parametrize("action", ["iam:?*", "iam:*?", "iam:**", "?*"])
def test_every_action_of_a_service_is_found_however_spelt(policy_findings: Findings, action: str) -> None:
    statement = {"Effect": "Allow", "Action": action, "Resource": "arn:aws:iam::111111111111:role/x"}
    assert messages(policy_findings([role_policy(statement)]), "iam-no-wildcard-actions", "p"), action


def test_a_verb_prefix_wildcard_is_not_every_action(policy_findings: Findings) -> None:
    statement = {"Effect": "Allow", "Action": "s3:Get*", "Resource": "arn:aws:s3:::ml-artifacts-dev/*"}
    assert not messages(policy_findings([role_policy(statement)]), "iam-no-wildcard-actions", "p")


# -- vpc-endpoint-policy: through an endpoint only its service's actions can be called ("s3:*" is full access),
# statements add up (one full-access Allow is full access), and only a condition naming the callers or the
# resources' account narrows (Amazon VPC guide, "Control access to VPC endpoints using endpoint policies")

def endpoint(statements: list[dict[str, Any]]) -> dict[str, Any]:
    return res(ENDPOINT, "ep", {"vpcId": "vpc-1", "serviceName": "com.amazonaws.eu-west-1.s3",
                                "vpcEndpointType": "Gateway", "policy": doc(*statements)})


@pytest.mark.parametrize("statement", [
    {"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*"},
    {"Effect": "Allow", "Principal": "*", "Action": ["S3:*"], "Resource": "arn:aws:s3:::*/*"},
    {"Effect": "Allow", "Principal": {"AWS": "*"}, "NotAction": "s3:PutBucketPolicy", "Resource": "*"},
    {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*",
     "Condition": {"Bool": {"aws:SecureTransport": "true"}}},  # always true on an endpoint: narrows nothing
    # every request through the endpoint comes from its VPC and through itself: these narrow nothing either
    {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*",
     "Condition": {"StringEquals": {"aws:SourceVpc": "vpc-1"}}},
    {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*",
     "Condition": {"StringEquals": {"aws:SourceVpce": "vpce-1"}}},
])
def test_full_access_through_an_endpoint_is_found_however_spelt(policy_findings: Findings,
                                                                 statement: dict[str, Any]) -> None:
    narrow = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
              "Resource": "arn:aws:s3:::prod-eu-west-1-starport-layer-bucket/*"}
    assert messages(policy_findings([endpoint([narrow, statement])]), "vpc-endpoint-policy", "ep"), statement


@pytest.mark.parametrize("condition", [
    {"StringEquals": {"aws:PrincipalAccount": "111111111111"}},
    {"StringEquals": {"aws:ResourceAccount": "111111111111"}},
    # the IAM guide's form for an OU and everything under it
    {"ForAnyValue:StringLike": {"aws:PrincipalOrgPaths": ["o-a1b2c3d4e5/r-ab12/ou-ab12-11111111/*"]}},
])
def test_a_service_wide_statement_pinned_to_the_account_passes(policy_findings: Findings,
                                                               condition: dict[str, Any]) -> None:
    statement = {"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*", "Condition": condition}
    assert not messages(policy_findings([endpoint([statement])]), "vpc-endpoint-policy", "ep")


# -- rabbitmq-queue-dead-letter: "" is the default exchange, which routes to the queue the routing key names
# (RabbitMQ "Dead Letter Exchanges"); with no key, or the queue's own name, the message cycles and is dropped

def _dead_lettering(definition: dict[str, Any]) -> list[dict[str, Any]]:
    queue = res(QUEUE, "inference.work", {"name": "inference.work", "vhost": "ml", "durable": True,
                                          "settings": {"durable": True, "arguments": {"x-queue-type": "quorum"}}})
    policy = res(RABBITMQ_POLICY, "dl", {"name": "dl", "vhost": "ml", "policy": {
        "pattern": "^inference\\.work$", "applyTo": "quorum_queues", "priority": 10, "definition": definition}})
    return [queue, policy]


def test_the_default_exchange_with_a_dead_letter_queue_key_dead_letters(policy_findings: Findings) -> None:
    resources = _dead_lettering({"dead-letter-exchange": "", "dead-letter-routing-key": "inference.dlq"})
    assert not messages(policy_findings(resources), "rabbitmq-queue-dead-letter", "inference.work")


@pytest.mark.parametrize("definition", [
    {"dead-letter-exchange": ""}, {"dead-letter-exchange": "", "dead-letter-routing-key": "inference.work"},
    {"max-length": 1000},
])
def test_dead_letters_that_cycle_back_or_go_nowhere_are_found(policy_findings: Findings,
                                                              definition: dict[str, Any]) -> None:
    assert messages(policy_findings(_dead_lettering(definition)), "rabbitmq-queue-dead-letter", "inference.work")


# -- eventbridge-topic-target-publishable: SNS's default topic policy names no service principal, so EventBridge's
# deliveries to a topic without a policy of its own are refused (AWS knowledge center, "Why isn't my Amazon SNS topic
# receiving EventBridge notifications?")

def test_a_topic_with_sns_default_policy_refuses_eventbridge(policy_findings: Findings) -> None:
    topic = res(TOPIC, "alarms-topic", {"name": "alarms"})
    rule = res(EVENT_RULE, "rule", {"name": "dev-ml-x", "eventPattern": "{}"})
    target = res(EVENT_TARGET, "target", {"rule": "dev-ml-x", "arn": "arn:aws:sns:eu-west-1:111111111111:alarms"},
                 dependencies=[rule, topic], property_dependencies={"rule": [rule], "arn": [topic]})
    found = rule_messages(policy_findings([topic, rule, target]), "eventbridge-topic-target-publishable")
    assert found and "SNS's default topic policy, which does not let events.amazonaws.com" in found[0]



def test_a_dead_letter_argument_wins_over_the_policy(policy_findings: Findings) -> None:
    """An x-dead-letter-exchange queue argument takes precedence over a policy's (RabbitMQ "Policies"): the default
    exchange there without a key cycles, whatever the policy says."""
    queue, policy = _dead_lettering({"dead-letter-exchange": "ml.dlx", "dead-letter-routing-key": "inference.dlq"})
    queue["inputs"]["settings"]["arguments"]["x-dead-letter-exchange"] = ""
    found = messages(policy_findings([queue, policy]), "rabbitmq-queue-dead-letter", "inference.work")
    assert found and "x-dead-letter-exchange argument is the default exchange" in found[0]
