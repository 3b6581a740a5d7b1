"""Builders of synth-JSON resources for rule tests (the synth JSON of README, File formats).

``res(type, name, inputs, **opts)`` is one resource; URNs are filled in by :func:`document` (so the
same resource dicts work under any stack name) and references to other resources -- ``provider``,
``parent``, ``dependencies`` -- may be given as the other resource's dict or as a URN.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pytest

from shared.policy_support import REQUIRED_TAGS

# the engine's unknown sentinels, as the tests name them (re-exported)
from shared.policy_support import UNKNOWN_ARRAY as UNKNOWN_ARRAY
from shared.policy_support import UNKNOWN_BOOL as UNKNOWN_BOOL
from shared.policy_support import UNKNOWN_NUMBER as UNKNOWN_NUMBER
from shared.policy_support import UNKNOWN_OBJECT as UNKNOWN_OBJECT
from shared.policy_support import UNKNOWN_STRING as UNKNOWN_STRING

PROJECT = "test"

#: Tags that satisfy ``tags-required`` (one value per required key).
GOOD_TAGS: dict[str, str] = {"env": "dev", "layer": "test", "team": "ml-platform", "cost-center": "cc-1"}
assert set(GOOD_TAGS) == set(REQUIRED_TAGS)



def res(type_: str, name: str, inputs: dict[str, Any] | None = None, **opts: Any) -> dict[str, Any]:
    """A synth resource: ``opts`` may set urn, custom, parent, provider, dependencies, secret_inputs, protect,
    property_dependencies, ignore_changes."""
    unknown = set(opts) - {"urn", "custom", "parent", "provider", "dependencies", "secret_inputs", "protect",
                           "property_dependencies", "ignore_changes"}
    if unknown:
        raise TypeError(f"res(): unknown option(s) {sorted(unknown)}")
    resource: dict[str, Any] = {"type": type_, "name": name, "inputs": dict(inputs or {})}
    resource.update(opts)
    return resource


def aws_provider(name: str = "aws", tags: dict[str, str] | None = None, region: str = "eu-west-1") -> dict[str, Any]:
    """An explicit ``pulumi:providers:aws`` with ``defaultTags`` (JSON-encoded, as pulumi_aws sends them)."""
    inputs: dict[str, Any] = {"region": region, "skipCredentialsValidation": "true"}
    if tags is not None:
        inputs["defaultTags"] = json.dumps({"tags": tags})
    return res("pulumi:providers:aws", name, inputs, custom=True)


def rabbitmq_provider(name: str = "rabbitmq", password: str = "from-config", secret: bool = True) -> dict[str, Any]:
    return res("pulumi:providers:rabbitmq", name,
               {"endpoint": "https://broker.example:443", "username": "platform", "password": password},
               secret_inputs=["password"] if secret else [])


def policy_document(*statements: dict[str, Any]) -> str:
    """An IAM/KMS/SNS policy of ``statements``, JSON-encoded as a ``policy`` input."""
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def service_statement(sid: str, service: str, actions: list[str] | str,
                      condition: dict[str, Any] | None = None) -> dict[str, Any]:
    """An Allow statement for the service principal ``service``, on any resource, with ``condition`` if any."""
    statement = {"Sid": sid, "Effect": "Allow", "Principal": {"Service": service}, "Action": actions, "Resource": "*"}
    if condition:
        statement["Condition"] = condition
    return statement


#: The account of the rule tests' ARNs, and the statement by which it administers a key through IAM (the
#: platform's keys' first statement), as :func:`encrypted_topic_stack`'s key policies start.
ACCOUNT = "111111111111"
TOPIC_KEY_ADMIN = {"Sid": "AccountAdministersThroughIam", "Effect": "Allow",
                   "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                   "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": "*"}


def encrypted_topic_stack(publishers: Callable[[dict[str, Any]], list[dict[str, Any]]], key_policy: str | None,
                          topic_policy: str | None, *, key_id: str | None = None,
                          key_policy_resource: str | None = None,
                          own_topic_policy: str | None = None) -> list[dict[str, Any]]:
    """An SNS topic ``alarms-topic`` encrypted with a KMS key ``alarms-key`` of the stack, with an aws.sns.TopicPolicy
    ``topic_policy`` (the broker layer's shape), and what ``publishers(topic)`` adds to publish to it. ``key_id``
    replaces the reference to the stack's key by a value; ``key_policy_resource`` adds an aws.kms.KeyPolicy
    ``alarms-key-policy`` for the key, ``own_topic_policy`` the topic's policy input."""
    key = res("aws:kms/key:Key", "alarms-key", {"policy": key_policy} if key_policy is not None else {})
    topic = res("aws:sns/topic:Topic", "alarms-topic", {
        "name": "dev-ml-alarms", "kmsMasterKeyId": key_id or UNKNOWN_STRING,
        **({"policy": own_topic_policy} if own_topic_policy is not None else {})},
        dependencies=[] if key_id else [key], property_dependencies={} if key_id else {"kmsMasterKeyId": [key]})
    resources = [key, topic, *publishers(topic)]
    if key_policy_resource is not None:
        resources.append(res("aws:kms/keyPolicy:KeyPolicy", "alarms-key-policy",
                             {"keyId": UNKNOWN_STRING, "policy": key_policy_resource},
                             dependencies=[key], property_dependencies={"keyId": [key]}))
    if topic_policy is not None:
        resources.append(res("aws:sns/topicPolicy:TopicPolicy", "alarms-topic",
                             {"arn": UNKNOWN_STRING, "policy": topic_policy},
                             dependencies=[topic], property_dependencies={"arn": [topic], "policy": [topic]}))
    return resources



def source_condition(service: str, resource: str) -> dict[str, Any]:
    """The confused-deputy condition of a statement for an AWS service: calls for the account, for the ARN pattern
    ``arn:aws:<service>:eu-west-1:<account>:<resource>``."""
    return {"StringEquals": {"aws:SourceAccount": ACCOUNT},
            "ArnLike": {"aws:SourceArn": f"arn:aws:{service}:eu-west-1:{ACCOUNT}:{resource}"}}


#: A stack's key or topic policy unless the test gives one (None: no policy): :class:`TopicPublishing`'s.
PUBLISHING: Any = object()


@dataclass(frozen=True)
class TopicPublishing:
    """The AWS service a topic rule's tests let publish to :func:`encrypted_topic_stack`'s topic: its statements
    (an Allow for its principal), and the key policy and topic policy that let it publish, which its stacks get by
    default."""

    #: the rule the tests judge
    rule: str
    sid: str
    principal: str
    #: the conditions of its statement in the key policy and in the topic policy
    key_condition: dict[str, Any] | None
    topic_condition: dict[str, Any] | None
    #: whether SNS's default topic policy lets the service publish (CloudWatch alarms: yes; EventBridge: no)
    default_policy_admits: bool = True

    def statement(self, actions: list[str] | str, condition: dict[str, Any] | None = None) -> dict[str, Any]:
        return service_statement(self.sid, self.principal, actions, condition)

    def judged(self, findings: Iterable[dict[str, Any]]) -> list[str]:
        """The messages of the rule's findings."""
        return rule_messages(findings, self.rule)

    def not_applicable(self, records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """The rule's not-applicable records."""
        return of_rule(records, self.rule)

    @property
    def key_policy(self) -> str:
        """:data:`TOPIC_KEY_ADMIN` and the service's kms:Decrypt and kms:GenerateDataKey* (the SNS guide's)."""
        return policy_document(TOPIC_KEY_ADMIN, self.statement(["kms:Decrypt", "kms:GenerateDataKey*"],
                                                               self.key_condition))

    @property
    def topic_policy(self) -> str:
        return policy_document(self.statement("sns:Publish", self.topic_condition))

    def stack(self, publishers: Callable[[dict[str, Any]], list[dict[str, Any]]],
              key_policy: str | None = PUBLISHING, topic_policy: str | None = PUBLISHING,
              **topic: str | None) -> list[dict[str, Any]]:
        """:func:`encrypted_topic_stack` with the service's key and topic policies unless given."""
        return encrypted_topic_stack(publishers, self.key_policy if key_policy is PUBLISHING else key_policy,
                                     self.topic_policy if topic_policy is PUBLISHING else topic_policy, **topic)

    # The cases every topic rule decides alike (policy_support.topic_publish_problems), for ``stack``, the rule test's
    # builder of :meth:`stack` with its publishers (it takes the keywords of :meth:`stack`).

    def passing(self, stack: Callable[..., list[dict[str, Any]]]) -> list[Any]:
        """Stacks whose publisher may publish."""
        return [
            pytest.param(stack(), id="platform"),
            # SNS's default topic policy lets the account's services publish, CloudWatch's alarms among them
            *([pytest.param(stack(topic_policy=None), id="default-topic-policy")] if self.default_policy_admits
              else []),
            # a key of another stack (by ARN) cannot be read: not judged
            pytest.param(stack(key_policy=None, key_id=f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/"
                                                       "0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d"), id="other-stack-key"),
            # the key's policy written through aws.kms.KeyPolicy, the key's own input left unset
            pytest.param(stack(key_policy=None, key_policy_resource=self.key_policy), id="key-policy-resource"),
            # the topic's policy written as its own input rather than an aws.sns.TopicPolicy
            pytest.param(stack(topic_policy=None, own_topic_policy=self.topic_policy), id="own-topic-policy"),
        ]

    def refused(self, stack: Callable[..., list[dict[str, Any]]]) -> list[Any]:
        """Stacks whose publisher may not publish, each with what a finding says."""
        account_only = policy_document({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                                        "Action": "sns:Publish", "Resource": "*"})
        decrypt_only = policy_document(TOPIC_KEY_ADMIN, self.statement(["kms:Decrypt"], self.key_condition))
        return [
            # SNS's default topic policy names no service principal: EventBridge's deliveries are refused
            *([] if self.default_policy_admits else [pytest.param(
                stack(topic_policy=None), f"SNS's default topic policy, which does not let {self.principal}",
                id="default-topic-policy")]),
            pytest.param(stack(key_policy=policy_document(TOPIC_KEY_ADMIN)),
                         f"its KMS key 'alarms-key' does not let {self.principal}", id="no-service-statement"),
            # AWS's default key policy: IAM only
            pytest.param(stack(key_policy=None), "its KMS key 'alarms-key' does not let", id="default-key-policy"),
            pytest.param(stack(key_policy=decrypt_only), "kms:GenerateDataKey*", id="decrypt-only"),
            pytest.param(stack(key_policy=None, key_id="alias/aws/sns"), "the AWS managed key alias/aws/sns",
                         id="aws-managed-key"),
            pytest.param(stack(key_policy=None, key_id=f"arn:aws:kms:eu-west-1:{ACCOUNT}:alias/aws/sns"),
                         "alias/aws/sns", id="aws-managed-key-arn"),
            # an aws.kms.KeyPolicy replaces the key's own policy input
            pytest.param(stack(key_policy_resource=policy_document(TOPIC_KEY_ADMIN)),
                         "its KMS key 'alarms-key' (key policy 'alarms-key-policy') does not let",
                         id="key-policy-resource-without-service"),
            pytest.param(stack(topic_policy=None, own_topic_policy=account_only),
                         f"its policy input does not let {self.principal} call sns:Publish",
                         id="own-topic-policy-account-only"),
        ]

    def undecided(self, stack: Callable[..., list[dict[str, Any]]]) -> list[Any]:
        """Stacks with an unknown policy, each with what the not-applicable reason names."""
        return [
            pytest.param(stack(key_policy=UNKNOWN_STRING), "KMS key 'alarms-key': policy", id="key-policy"),
            pytest.param(stack(topic_policy=UNKNOWN_STRING), "topic policy 'alarms-topic': policy", id="topic-policy"),
            pytest.param(stack(key_policy_resource=UNKNOWN_STRING), "key policy 'alarms-key-policy': policy",
                         id="key-policy-resource"),
            pytest.param(stack(topic_policy=None, own_topic_policy=UNKNOWN_STRING), "topic 'alarms-topic': policy",
                         id="own-topic-policy"),
        ]

def rule_ids(findings: Iterable[dict[str, Any]]) -> set[str]:
    """The rule ids of some findings (a set: a rule may fire on several resources)."""
    return {finding["rule"] for finding in findings}


def of_rule(findings: Iterable[dict[str, Any]], rule: str) -> list[dict[str, Any]]:
    """The findings of ``rule``."""
    return [finding for finding in findings if finding["rule"] == rule]


def rule_messages(findings: Iterable[dict[str, Any]], rule: str) -> list[str]:
    """The messages of ``rule``'s findings."""
    return [finding["message"] for finding in of_rule(findings, rule)]


def messages(findings: Iterable[dict[str, Any]], rule: str, name: str) -> list[str]:
    """The messages of ``rule`` for the resource called ``name`` (stack findings point at a resource)."""
    return [f["message"] for f in of_rule(findings, rule) if f["urn"].endswith(f"::{name}")]


def document(resources: list[dict[str, Any]], env: str | None = "dev", stack: str = "test",
             project: str = PROJECT, layer: str | None = None) -> dict[str, Any]:
    """A synth document of ``resources`` with every default filled in.

    Provider dicts referenced by a resource but not listed are added (a program's providers are
    resources of its stack too).
    """
    listed = list(resources)
    seen = {id(r) for r in listed}
    for resource in resources:
        provider = resource.get("provider")
        if isinstance(provider, dict) and id(provider) not in seen:
            listed.insert(0, provider)
            seen.add(id(provider))

    # URNs first (parents before children), then references.
    urns: dict[int, str] = {}

    def urn_for(resource: dict[str, Any]) -> str:
        if id(resource) in urns:
            return urns[id(resource)]
        if resource.get("urn"):
            urn = str(resource["urn"])
        else:
            type_chain = resource["type"]
            parent = resource.get("parent")
            if isinstance(parent, dict):
                parent_urn = urn_for(parent)
                parent_types = parent_urn.split("::")[2]
                type_chain = f"{parent_types}${resource['type']}"
            urn = f"urn:pulumi:{stack}::{project}::{type_chain}::{resource['name']}"
        urns[id(resource)] = urn
        return urn

    filled = []
    for resource in listed:
        entry = {
            "urn": urn_for(resource),
            "type": resource["type"],
            "name": resource["name"],
            "custom": resource.get("custom", True),
            "parent": None,
            "provider": None,
            "dependencies": [],
            "inputs": resource.get("inputs") or {},
            "secret_inputs": list(resource.get("secret_inputs") or []),
            "protect": bool(resource.get("protect", False)),
        }
        parent = resource.get("parent")
        entry["parent"] = urn_for(parent) if isinstance(parent, dict) else parent
        provider = resource.get("provider")
        entry["provider"] = urn_for(provider) if isinstance(provider, dict) else provider
        entry["dependencies"] = [urn_for(d) if isinstance(d, dict) else d for d in resource.get("dependencies") or []]
        if "property_dependencies" in resource:
            entry["property_dependencies"] = {
                key: [urn_for(d) if isinstance(d, dict) else d for d in deps]
                for key, deps in resource["property_dependencies"].items()}
        if resource.get("ignore_changes"):
            entry["ignore_changes"] = list(resource["ignore_changes"])
        filled.append(entry)
    return {"project": project, "stack": stack, "layer": layer, "env": env, "resources": filled,
            "outputs": {}, "stack_references": []}


def snapshot_document(env: str, layer: str) -> dict[str, Any]:
    """The synth of ``layer`` in the example env ``env``, as its snapshot holds it, a fresh copy to change
    (tests/synth_helpers.py ``spec_document``)."""
    from tests.synth_helpers import spec_document

    return spec_document(env, layer)
