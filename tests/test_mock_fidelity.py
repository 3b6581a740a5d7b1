"""The synth's mock answers have the shapes AWS and pulumi-aws give: ids, ARNs and the computed outputs programs read.

Every offline proof (snapshots, policy packs, tests) runs on these values, so code that splits an ARN, builds an IAM
pattern or an alarm dimension from an output, or matches one with a regex, is proven only against their shape. Each
resource of the committed snapshots (what the platform's layers create, with the inputs they send) is answered again
by :class:`shared.synth.mocks.PlatformMocks` and checked against the format AWS documents for it. A type the layers
start to create whose pulumi-aws class has an ``arn`` output must get an entry in :data:`REAL_ARNS`.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

import pulumi
import pytest

import shared.components
from shared.envs import load_env
from shared.provider_schema import resource_classes
from shared.synth.mocks import PlatformMocks
from tests.conftest import SHIPPED_ENVS
from tests.synth_helpers import spec_documents

# the components register the mocks of the types they create beside themselves (shared.synth.mocks.register_mock), as
# the layers import them in a synth
for _module in pkgutil.iter_modules(shared.components.__path__):
    importlib.import_module(f"shared.components.{_module.name}")
REGION = r"[a-z]{2}(?:-[a-z]+)+-\d"
ACCOUNT = r"\d{12}"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
#: EC2 resource ids: a prefix and 17 hex digits (8 for resources made before 2018)
EC2_ID = r"[0-9a-f]{17}"


def _arn(service: str, resource: str, *, region: bool = True) -> re.Pattern[str]:
    return re.compile(rf"arn:aws:{service}:{REGION if region else ''}:{ACCOUNT}:{resource}")


#: type token -> the ARN AWS gives it (the Service Authorization Reference's ARN formats, with the sources named where
#: the shape is easy to get wrong).
REAL_ARNS: dict[str, re.Pattern[str]] = {
    # botocore application-autoscaling examples: PutScalingPolicy's PolicyARN, RegisterScalableTarget's
    # ScalableTargetARN
    "aws:appautoscaling/policy:Policy":
        _arn("autoscaling", rf"scalingPolicy:{UUID}:resource/ecs/service/[^/:]+/[^/:]+:policyName/[^/:]+"),
    "aws:appautoscaling/target:Target": _arn("application-autoscaling", r"scalable-target/[0-9a-z]{36}"),
    # a budget's ARN has no region (Service Authorization Reference, AWS Budgets: budget/${BudgetName})
    "aws:budgets/budget:Budget": _arn("budgets", r"budget/[^:\\]{1,100}", region=False),
    "aws:cloudwatch/eventRule:EventRule": _arn("events", r"rule/(?:[^/:]+/)?[.\-_A-Za-z0-9]{1,64}"),
    # pulumi_aws LogGroup.arn: "Any `:*` suffix added by the API ... is removed"
    "aws:cloudwatch/logGroup:LogGroup": _arn("logs", r"log-group:[^:*]+"),
    # botocore cloudwatch service-2 (AlarmArn): arn:aws:cloudwatch:<region>:<account>:alarm:<name>
    "aws:cloudwatch/metricAlarm:MetricAlarm": _arn("cloudwatch", r"alarm:[^:]+"),
    "aws:codebuild/project:Project": _arn("codebuild", r"project/[A-Za-z0-9][A-Za-z0-9\-_]{1,254}"),
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": _arn("ec2", rf"security-group/sg-{EC2_ID}"),
    "aws:ec2/securityGroup:SecurityGroup": _arn("ec2", rf"security-group/sg-{EC2_ID}"),
    "aws:ec2/eip:Eip": _arn("ec2", rf"elastic-ip/eipalloc-{EC2_ID}"),
    "aws:ec2/flowLog:FlowLog": _arn("ec2", rf"vpc-flow-log/fl-{EC2_ID}"),
    "aws:ec2/internetGateway:InternetGateway": _arn("ec2", rf"internet-gateway/igw-{EC2_ID}"),
    "aws:ec2/routeTable:RouteTable": _arn("ec2", rf"route-table/rtb-{EC2_ID}"),
    "aws:ec2/subnet:Subnet": _arn("ec2", rf"subnet/subnet-{EC2_ID}"),
    "aws:ec2/vpc:Vpc": _arn("ec2", rf"vpc/vpc-{EC2_ID}"),
    "aws:ec2/vpcEndpoint:VpcEndpoint": _arn("ec2", rf"vpc-endpoint/vpce-{EC2_ID}"),
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": _arn("ec2", rf"security-group-rule/sgr-{EC2_ID}"),
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": _arn("ec2", rf"security-group-rule/sgr-{EC2_ID}"),
    "aws:ecr/repository:Repository": _arn("ecr", r"repository/[a-z0-9][a-z0-9._/-]*"),
    "aws:ecs/cluster:Cluster": _arn("ecs", r"cluster/[A-Za-z0-9_-]+"),
    "aws:ecs/service:Service": _arn("ecs", r"service/[A-Za-z0-9_-]+/[A-Za-z0-9_-]+"),
    "aws:ecs/taskDefinition:TaskDefinition": _arn("ecs", r"task-definition/[A-Za-z0-9_-]+:\d+"),
    "aws:iam/role:Role": _arn("iam", r"role/(?:[^:]*/)?[\w+=,.@-]+", region=False),
    # botocore kms examples: key/<uuid>, alias/ExampleAlias (one "alias/")
    "aws:kms/alias:Alias": _arn("kms", r"alias/(?!alias/)[A-Za-z0-9/_-]+"),
    "aws:kms/key:Key": _arn("kms", rf"key/{UUID}"),
    "aws:lambda/function:Function": _arn("lambda", r"function:[A-Za-z0-9_-]+"),
    "aws:mq/broker:Broker": _arn("mq", rf"broker:[A-Za-z0-9_-]+:b-{UUID}"),
    "aws:mq/configuration:Configuration": _arn("mq", rf"configuration:c-{UUID}"),
    "aws:s3/bucket:Bucket": re.compile(r"arn:aws:s3:::[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"),
    # the random suffix: a hyphen and six characters (botocore secretsmanager CreateSecret Name)
    "aws:secretsmanager/secret:Secret": _arn("secretsmanager", r"secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}"),
    "aws:secretsmanager/secretVersion:SecretVersion":
        _arn("secretsmanager", r"secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}"),
    "aws:servicediscovery/httpNamespace:HttpNamespace": _arn("servicediscovery", r"namespace/ns-[a-z0-9]{16}"),
    "aws:servicediscovery/privateDnsNamespace:PrivateDnsNamespace":
        _arn("servicediscovery", r"namespace/ns-[a-z0-9]{16}"),
    # pulumi_aws sns Topic import example: arn:aws:sns:us-west-2:123456789012:my-topic (no "topic/")
    "aws:sns/topic:Topic": _arn("sns", r"[A-Za-z0-9_-]{1,256}"),
    # botocore sqs GetQueueAttributes QueueArn; SQS developer guide: arn:aws:sqs:<region>:<account>:<queue name>
    "aws:sqs/queue:Queue": _arn("sqs", r"[A-Za-z0-9_-]{1,80}"),
    # a name that starts with "/" loses it in the ARN (SSM user guide, "Working with parameter hierarchies"):
    # arn:aws:ssm:<region>:<account>:parameter/platform/dev/..., never parameter//platform
    "aws:ssm/parameter:Parameter": _arn("ssm", r"parameter/[a-zA-Z0-9_.-][a-zA-Z0-9_./-]*"),
}
#: Types whose ``arn`` is an input the program sets (the target's ARN, the topic's), not an answer of AWS.
ARN_IS_INPUT = {"aws:cloudwatch/eventTarget:EventTarget", "aws:sns/topicPolicy:TopicPolicy"}


def _arn_of(_inputs: dict[str, Any], state: dict[str, Any]) -> str:
    return str(state["arn"])


def _named(key: str) -> Callable[[dict[str, Any], dict[str, Any]], str]:
    return lambda inputs, state: re.escape(str(state[key]))


#: type token -> the physical id pulumi-aws keeps, as a pattern over the resource's inputs and answered state
#: (terraform-provider-aws's d.SetId in each create, the provider docs' import ids).
REAL_IDS: dict[str, Callable[[dict[str, Any], dict[str, Any]], str]] = {
    "aws:sns/topic:Topic": lambda inputs, state: re.escape(_arn_of(inputs, state)),
    "aws:secretsmanager/secret:Secret": lambda inputs, state: re.escape(_arn_of(inputs, state)),
    "aws:codebuild/project:Project": lambda inputs, state: re.escape(_arn_of(inputs, state)),
    "aws:ecs/cluster:Cluster": lambda inputs, state: re.escape(_arn_of(inputs, state)),
    "aws:ecs/service:Service": lambda inputs, state: re.escape(_arn_of(inputs, state)),
    "aws:kms/key:Key": lambda inputs, state: UUID,
    "aws:kms/alias:Alias": _named("name"),
    "aws:cloudwatch/metricAlarm:MetricAlarm": _named("name"),
    "aws:cloudwatch/logGroup:LogGroup": _named("name"),
    "aws:cloudwatch/eventRule:EventRule": _named("name"),
    "aws:lambda/function:Function": _named("name"),
    "aws:iam/role:Role": _named("name"),
    "aws:ecr/repository:Repository": _named("name"),
    "aws:ecs/taskDefinition:TaskDefinition": _named("family"),
    "aws:appautoscaling/target:Target": _named("resourceId"),
    "aws:appautoscaling/policy:Policy": _named("name"),
    "aws:iam/rolePolicy:RolePolicy": lambda inputs, state: re.escape(f"{state['role']}:{state['name']}"),
    "aws:s3/bucket:Bucket": _named("bucket"),
    "aws:mq/broker:Broker": lambda inputs, state: f"b-{UUID}",
    "aws:mq/configuration:Configuration": lambda inputs, state: f"c-{UUID}",
    # botocore servicediscovery examples: ns-ylexjili4cdxy3xm
    "aws:servicediscovery/httpNamespace:HttpNamespace": lambda inputs, state: r"ns-[a-z0-9]{16}",
    "aws:servicediscovery/privateDnsNamespace:PrivateDnsNamespace": lambda inputs, state: r"ns-[a-z0-9]{16}",
    "aws:ec2/vpc:Vpc": lambda inputs, state: f"vpc-{EC2_ID}",
    "aws:ec2/subnet:Subnet": lambda inputs, state: f"subnet-{EC2_ID}",
    "aws:ec2/securityGroup:SecurityGroup": lambda inputs, state: f"sg-{EC2_ID}",
    "aws:ec2/eip:Eip": lambda inputs, state: f"eipalloc-{EC2_ID}",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": lambda inputs, state: f"sgr-{EC2_ID}",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": lambda inputs, state: f"sgr-{EC2_ID}",
}


def _documents() -> Iterator[dict[str, Any]]:
    """The example envs' synth documents (tests/spec_envs.py), env by env."""
    for env in SHIPPED_ENVS:
        for _, document in sorted(spec_documents(env).items()):
            yield document


@cache
def _answers(env: str) -> list[tuple[str, str, dict[str, Any], str, dict[str, Any]]]:
    """(type, name, inputs, id, state) of every AWS resource of the env's snapshots, answered by the mocks again."""
    config = load_env(env)
    found = []
    for document in _documents():
        if document["env"] != env:
            continue
        mocks = PlatformMocks(project=document["project"], stack=document["stack"], account_id=config.account_id,
                              region=config.region)
        for resource in document["resources"]:
            if not resource["custom"] or not resource["type"].startswith("aws:"):
                continue
            inputs = resource["inputs"]
            rid, state = mocks.new_resource(pulumi.runtime.MockResourceArgs(
                resource["type"], resource["name"], dict(inputs), custom=True))
            found.append((resource["type"], resource["name"], inputs, rid, state))
    return found


ENVS = sorted(SHIPPED_ENVS)


@pytest.mark.parametrize("env", ENVS)
def test_arns_have_the_shape_aws_gives(env: str) -> None:
    wrong = [f"{type_} {name}: {state['arn']}" for type_, name, _inputs, _rid, state in _answers(env)
             if type_ in REAL_ARNS and not REAL_ARNS[type_].fullmatch(str(state.get("arn")))]
    assert not wrong, "mock ARNs AWS never returns:\n" + "\n".join(wrong)


@pytest.mark.parametrize("env", ENVS)
def test_ids_are_what_pulumi_aws_keeps(env: str) -> None:
    wrong = [f"{type_} {name}: {rid}" for type_, name, inputs, rid, state in _answers(env)
             if type_ in REAL_IDS and not re.fullmatch(REAL_IDS[type_](inputs, state), rid)]
    assert not wrong, "mock ids pulumi-aws never keeps:\n" + "\n".join(wrong)


def test_every_created_type_with_an_arn_is_checked() -> None:
    """A new type in a layer gets the mocks' generic ARN (``<kind>/<id>``) unless the tables answer it: the check
    above must know its real shape."""
    classes = resource_classes("aws")
    created = {resource["type"] for document in _documents() for resource in document["resources"]
               if resource["custom"] and resource["type"].startswith("aws:")}
    unchecked = []
    for type_ in sorted(created - set(REAL_ARNS) - ARN_IS_INPUT):
        module, name = classes[type_]
        if isinstance(getattr(getattr(importlib.import_module(module), name), "arn", None), property):
            unchecked.append(type_)
    assert not unchecked, f"add the real ARN format of {unchecked} to REAL_ARNS (and to the mocks if they lack it)"


@pytest.mark.parametrize("env", ENVS)
def test_computed_outputs_have_the_shape_aws_gives(env: str) -> None:
    config = load_env(env)
    region, account = re.escape(config.region), config.account_id
    checked = set()
    for type_, _name, inputs, rid, state in _answers(env):
        if type_ == "aws:mq/broker:Broker":
            # Amazon MQ guide, "Connecting to Amazon MQ": broker endpoints <id>.mq.<region>.amazonaws.com (IPv4) or
            # .on.aws (dual-stack); a RabbitMQ broker's amqps listener is 5671, its console https on 443
            host = rf"{re.escape(rid)}\.mq\.{region}\.(?:amazonaws\.com|on\.aws)"
            instance = state["instances"][0]
            assert re.fullmatch(rf"https://{host}", instance["consoleUrl"]), instance
            assert [e for e in instance["endpoints"] if re.fullmatch(rf"amqps://{host}:5671", e)], instance
        elif type_ == "aws:ecr/repository:Repository":
            assert state["repositoryUrl"] == f"{account}.dkr.ecr.{config.region}.amazonaws.com/{state['name']}"
        elif type_ == "aws:ecs/taskDefinition:TaskDefinition":
            assert state["arn"] == f"{state['arnWithoutRevision']}:{state['revision']}", state
        elif type_ == "aws:kms/key:Key":
            assert state["keyId"] == rid and state["arn"].endswith(f":key/{rid}"), state
        elif type_ == "aws:servicediscovery/privateDnsNamespace:PrivateDnsNamespace":
            assert re.fullmatch(r"Z[A-Z0-9]{1,31}", state["hostedZone"]), state  # a Route 53 hosted zone id
        elif type_ == "aws:ec2/vpcEndpoint:VpcEndpoint" and inputs.get("vpcEndpointType") == "Gateway":
            # a gateway endpoint is a route to a prefix list: no DNS names (botocore ec2 VpcEndpoint.DnsEntries)
            assert state["dnsEntries"] == [] and re.fullmatch(r"pl-[0-9a-f]{8}", state["prefixListId"]), state
        else:
            continue
        checked.add(type_)
    assert {"aws:mq/broker:Broker", "aws:ecr/repository:Repository", "aws:kms/key:Key"} <= checked


def test_lookups_answer_the_shapes_aws_gives() -> None:
    """``aws.kms.get_key`` of an alias answers the key it targets (id and ``key/<id>`` ARN, botocore kms DescribeKey);
    ``get_secret_version`` of a secret's name answers the secret's ARN, with the random suffix, as its ``arn``."""
    mocks = PlatformMocks(project="program", stack="dev", account_id="111111111111", region="eu-west-1")
    key = mocks.call(pulumi.runtime.MockCallArgs("aws:kms/getKey:getKey", {"keyId": "alias/aws/ecr"}, ""))
    assert key is not None and re.fullmatch(UUID, key["keyId"]) and key["id"] == key["keyId"], key
    assert REAL_ARNS["aws:kms/key:Key"].fullmatch(key["arn"]) and key["arn"].endswith(key["keyId"]), key
    version = mocks.call(pulumi.runtime.MockCallArgs("aws:secretsmanager/getSecretVersion:getSecretVersion",
                                                     {"secretId": "platform/dev/broker/admin"}, ""))
    assert version is not None and version["secretId"] == "platform/dev/broker/admin", version
    assert REAL_ARNS["aws:secretsmanager/secret:Secret"].fullmatch(version["arn"]), version
