"""What the layers send to AWS, checked against AWS's own API model (botocore's ``service-2.json``), offline.

Each Pulumi resource type the platform creates maps (:data:`CALLS`) to the botocore operation its provider calls
with the resource's inputs, and each input to the member of that operation's input it becomes: the mechanical
name (the member's own name, its wire ``locationName``, or camelCase -> PascalCase) unless the table renames it,
sends it through another operation of the same service, or names it the provider's own (``None``). The walk checks
every value against the member's shape: enum values, integer/long/double min and max, string length and pattern
(where Python ``re`` reads the Java pattern), list and map sizes, nested structures, lists and maps, and inputs that
are JSON text of an API structure (an ECS task definition's ``containerDefinitions``). Where the model states a
limit only in a member's documentation (CloudWatch Logs' retention days, an ECS container health check's interval),
:data:`DOCUMENTED` reads it from that text, so the figure still comes from the model and a model that stops saying
it fails the test that loads it.

Why: each refusal below passes ``pulumi preview`` (the provider validates little) and fails ``pulumi up`` halfway
through a layer, in an account, after other resources were created. A resource whose provider fills a name
(auto-naming: the logical name, ``-`` and 7 random hex digits; the synth's mocks know which types) is checked
with that name too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from botocore.loaders import Loader
from botocore.model import ListShape, MapShape, OperationModel, ServiceModel, Shape, StructureShape

from shared.provider_schema import input_names
from shared.synth.engine import UNKNOWN
from shared.synth.mocks import autonamed_property

#: What pulumi-aws appends to a logical name when it fills an omitted name (pulumi-terraform-bridge's AutoName: a
#: separator and 7 random hex digits); the check stands in this suffix.
AUTONAME_SUFFIX = "-0a1b2c3"
#: A member path: member names (or wire names) from the operation's input down, through lists and maps' values.
Target = str | tuple[str, str] | None


@dataclass(frozen=True)
class Call:
    """How a Pulumi resource type reaches AWS: ``service``'s ``operation`` takes its inputs.

    ``members``: Pulumi input path (dotted, list indexes dropped) -> the member path it becomes, relative to the
    structure its parent input became; ``(operation, path)`` where another operation of the service sends it (from
    that operation's input); ``None`` where no API member takes it as it is (the provider's own setting, or a value
    the provider reshapes; the comment says which). ``json``: inputs that are JSON text of the member at that
    path. ``sent_otherwise``: values of an input the provider sends as another flag, not as the member.
    ``policies``: inputs that are IAM JSON policy documents (the model types them as text) -> their kind
    (:data:`POLICY_KINDS`), checked against the policy grammar as well, or :data:`ECR_LIFECYCLE` for an ECR
    lifecycle policy's text. ``attributes``: inputs the provider sends as
    a key-value attribute (ELB's Modify*Attributes) -> (the attribute shape, its key), checked against the range
    that shape's ``Key`` documentation gives the key.
    ``case_insensitive``: member paths whose enum the service accepts in any case (the provider passes the value
    on as written).
    """

    service: str
    operation: str
    members: Mapping[str, Target] = field(default_factory=dict)
    json: Mapping[str, str] = field(default_factory=dict)
    sent_otherwise: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    policies: Mapping[str, str] = field(default_factory=dict)
    attributes: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    case_insensitive: frozenset[str] = frozenset()


#: The kind of :attr:`Call.policies` that is an ECR lifecycle policy, not an IAM one.
ECR_LIFECYCLE = "ecr-lifecycle"
_EC2_TAGS: dict[str, Target] = {"tags": None}  # TagSpecifications on create, a list per resource type: not checked
_SG_RULE: dict[str, Target] = {
    "securityGroupId": "GroupId", "ipProtocol": "IpPermissions.IpProtocol", "fromPort": "IpPermissions.FromPort",
    "toPort": "IpPermissions.ToPort", "cidrIpv4": "IpPermissions.IpRanges.CidrIp",
    "cidrIpv6": "IpPermissions.Ipv6Ranges.CidrIpv6", "description": "IpPermissions.IpRanges.Description",
    "referencedSecurityGroupId": "IpPermissions.UserIdGroupPairs.GroupId",
    "prefixListId": "IpPermissions.PrefixListIds.PrefixListId", **_EC2_TAGS}
_SG_INLINE: dict[str, Target] = {
    "protocol": "IpProtocol",
    # the provider turns each CIDR and group into an IpRange / UserIdGroupPair with the rule's description
    "cidrBlocks": None, "ipv6CidrBlocks": None, "securityGroups": None, "prefixListIds": None, "self": None,
    "description": None}

#: Pulumi type token -> the call that creates it. Sources: botocore's service-2.json (the operation and member
#: names), terraform-provider-aws's create and update functions (which input goes to which call).
CALLS: dict[str, Call] = {
    "aws:appmesh/mesh:Mesh": Call("appmesh", "CreateMesh", {"name": "meshName"}),
    "aws:appmesh/virtualNode:VirtualNode": Call("appmesh", "CreateVirtualNode", {"name": "virtualNodeName"}),
    "aws:appmesh/virtualService:VirtualService": Call("appmesh", "CreateVirtualService",
                                                      {"name": "virtualServiceName"}),
    "aws:appautoscaling/policy:Policy": Call("application-autoscaling", "PutScalingPolicy", {"name": "PolicyName"}),
    "aws:appautoscaling/target:Target": Call("application-autoscaling", "RegisterScalableTarget",
                                             {"roleArn": "RoleARN"}),
    "aws:budgets/budget:Budget": Call("budgets", "CreateBudget", {
        "name": "Budget.BudgetName", "budgetType": "Budget.BudgetType", "timeUnit": "Budget.TimeUnit",
        "limitAmount": "Budget.BudgetLimit.Amount", "limitUnit": "Budget.BudgetLimit.Unit",
        # a list of {name, values} the provider makes the CostFilters map of (name -> values)
        "costFilters": None,
        "notifications": "NotificationsWithSubscribers.Notification",
        # each topic becomes a Subscriber of the notification (SubscriptionType SNS, Address the topic's ARN)
        "notifications.subscriberSnsTopicArns": None,
        "tags": None}),  # ResourceTags, a list of Key/Value pairs the provider makes of the map
    "aws:cloudwatch/eventRule:EventRule": Call("events", "PutRule", {"isEnabled": None}),
    "aws:cloudwatch/eventTarget:EventTarget": Call("events", "PutTargets", {
        "arn": "Targets.Arn", "targetId": "Targets.Id", "inputTransformer": "Targets.InputTransformer",
        "retryPolicy": "Targets.RetryPolicy", "roleArn": "Targets.RoleArn", "input": "Targets.Input",
        "deadLetterConfig": "Targets.DeadLetterConfig", "ecsTarget": "Targets.EcsParameters"}),
    "aws:cloudwatch/logGroup:LogGroup": Call("logs", "CreateLogGroup", {
        "name": "logGroupName", "retentionInDays": ("PutRetentionPolicy", "retentionInDays"),
        "skipDestroy": None}),
    "aws:cloudwatch/logMetricFilter:LogMetricFilter": Call("logs", "PutMetricFilter", {
        "name": "filterName", "pattern": "filterPattern", "metricTransformation": "metricTransformations",
        "metricTransformation.name": "metricName", "metricTransformation.namespace": "metricNamespace",
        "metricTransformation.value": "metricValue"}),
    "aws:cloudwatch/logResourcePolicy:LogResourcePolicy": Call("logs", "PutResourcePolicy",
                                                               policies={"policyDocument": "resource"}),
    "aws:cloudwatch/metricAlarm:MetricAlarm": Call("cloudwatch", "PutMetricAlarm", {
        "name": "AlarmName", "metricQueries": "Metrics", "metricQueries.metric": "MetricStat",
        "metricQueries.metric.metricName": "Metric.MetricName", "metricQueries.metric.namespace": "Metric.Namespace",
        "metricQueries.metric.dimensions": "Metric.Dimensions", "okActions": "OKActions"}),
    "aws:codebuild/project:Project": Call("codebuild", "CreateProject", {
        "buildTimeout": "timeoutInMinutes", "logsConfig.cloudwatchLogs": "cloudWatchLogs"}),
    "aws:ec2/eip:Eip": Call("ec2", "AllocateAddress", _EC2_TAGS),
    "aws:ec2/flowLog:FlowLog": Call("ec2", "CreateFlowLogs", {
        "vpcId": "ResourceIds", "iamRoleArn": "DeliverLogsPermissionArn", **_EC2_TAGS}),
    "aws:ec2/internetGateway:InternetGateway": Call("ec2", "CreateInternetGateway", {
        "vpcId": ("AttachInternetGateway", "VpcId"), **_EC2_TAGS}),
    "aws:ec2/natGateway:NatGateway": Call("ec2", "CreateNatGateway", _EC2_TAGS),
    "aws:ec2/route:Route": Call("ec2", "CreateRoute"),
    "aws:ec2/routeTable:RouteTable": Call("ec2", "CreateRouteTable", _EC2_TAGS),
    "aws:ec2/routeTableAssociation:RouteTableAssociation": Call("ec2", "AssociateRouteTable"),
    "aws:ec2/securityGroup:SecurityGroup": Call("ec2", "CreateSecurityGroup", {
        "name": "GroupName", "ingress": ("AuthorizeSecurityGroupIngress", "IpPermissions"),
        "egress": ("AuthorizeSecurityGroupEgress", "IpPermissions"), "revokeRulesOnDelete": None,
        **{f"{way}.{key}": target for way in ("ingress", "egress") for key, target in _SG_INLINE.items()},
        **_EC2_TAGS}),
    "aws:ec2/subnet:Subnet": Call("ec2", "CreateSubnet", {
        "mapPublicIpOnLaunch": None, **_EC2_TAGS}),  # ModifySubnetAttribute's AttributeBooleanValue
    "aws:ec2/vpc:Vpc": Call("ec2", "CreateVpc", {
        "enableDnsHostnames": None, "enableDnsSupport": None, **_EC2_TAGS}),  # ModifyVpcAttribute's
    "aws:ec2/vpcEndpoint:VpcEndpoint": Call("ec2", "CreateVpcEndpoint", {"policy": "PolicyDocument", **_EC2_TAGS},
                                            policies={"policy": "resource"}),
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": Call("ec2", "AuthorizeSecurityGroupIngress",
                                                                      _SG_RULE),
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": Call("ec2", "AuthorizeSecurityGroupEgress", _SG_RULE),
    "aws:ecr/lifecyclePolicy:LifecyclePolicy": Call("ecr", "PutLifecyclePolicy", {
        "repository": "repositoryName", "policy": "lifecyclePolicyText"}, policies={"policy": ECR_LIFECYCLE}),
    "aws:ecr/registryPolicy:RegistryPolicy": Call("ecr", "PutRegistryPolicy", {"policy": "policyText"},
                                                  policies={"policy": "resource"}),
    "aws:ecr/replicationConfiguration:ReplicationConfiguration": Call("ecr", "PutReplicationConfiguration"),
    "aws:ecr/repository:Repository": Call("ecr", "CreateRepository", {
        "name": "repositoryName", "encryptionConfigurations": "encryptionConfiguration",
        "forceDelete": None}),  # the provider's: delete the images with the repository
    "aws:ecs/cluster:Cluster": Call("ecs", "CreateCluster", {"name": "clusterName"}),
    # the provider sends an empty default strategy when none is set (the member is required)
    "aws:ecs/clusterCapacityProviders:ClusterCapacityProviders": Call("ecs", "PutClusterCapacityProviders", {
        "clusterName": "cluster", "defaultCapacityProviderStrategies": "defaultCapacityProviderStrategy"}),
    "aws:ecs/service:Service": Call("ecs", "CreateService", {
        "name": "serviceName", "enableEcsManagedTags": "enableECSManagedTags",
        "capacityProviderStrategies": "capacityProviderStrategy",
        "deploymentMaximumPercent": "deploymentConfiguration.maximumPercent",
        "deploymentMinimumHealthyPercent": "deploymentConfiguration.minimumHealthyPercent",
        "deploymentCircuitBreaker": "deploymentConfiguration.deploymentCircuitBreaker",
        "networkConfiguration": "networkConfiguration.awsvpcConfiguration",
        "networkConfiguration.assignPublicIp": None,  # a bool the provider sends as ENABLED / DISABLED
        "serviceConnectConfiguration.services.clientAlias": "clientAliases",
        "waitForSteadyState": None, "forceNewDeployment": None, "triggers": None,  # the provider's own
        "loadBalancers.elbName": "loadBalancerName"}),
    "aws:ecs/taskDefinition:TaskDefinition": Call(
        "ecs", "RegisterTaskDefinition", {"skipDestroy": None, "trackLatest": None},
        json={"containerDefinitions": "containerDefinitions"}),
    "aws:iam/role:Role": Call("iam", "CreateRole", {
        "name": "RoleName", "assumeRolePolicy": "AssumeRolePolicyDocument",
        "forceDetachPolicies": None}, policies={"assumeRolePolicy": "trust"}),
    "aws:iam/rolePolicy:RolePolicy": Call("iam", "PutRolePolicy", {
        "role": "RoleName", "name": "PolicyName", "policy": "PolicyDocument"}, policies={"policy": "identity"}),
    "aws:kms/alias:Alias": Call("kms", "CreateAlias", {"name": "AliasName"}),
    "aws:kms/key:Key": Call("kms", "CreateKey", {
        "deletionWindowInDays": ("ScheduleKeyDeletion", "PendingWindowInDays"),
        "enableKeyRotation": None,  # EnableKeyRotation / DisableKeyRotation: the call, not a value
        "rotationPeriodInDays": ("EnableKeyRotation", "RotationPeriodInDays"),
        "isEnabled": None}, policies={"policy": "resource"}),
    "aws:lambda/function:Function": Call("lambda", "CreateFunction", {
        "name": "FunctionName", "code": None,  # an archive of the program's own files
        "reservedConcurrentExecutions": ("PutFunctionConcurrency", "ReservedConcurrentExecutions")}),
    "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig": Call("lambda",
                                                                           "PutFunctionEventInvokeConfig"),
    "aws:lambda/permission:Permission": Call("lambda", "AddPermission", {"function": "FunctionName"}),
    "aws:mq/broker:Broker": Call("mq", "CreateBroker", {"applyImmediately": None},
                                 # Amazon MQ takes the engine in any case (the provider's own example: "ActiveMQ")
                                 case_insensitive=frozenset({"EngineType"})),
    "aws:mq/configuration:Configuration": Call("mq", "CreateConfiguration", {
        "data": ("UpdateConfiguration", "Data"), "description": ("UpdateConfiguration", "Description")},
        case_insensitive=frozenset({"EngineType"})),
    "aws:s3/bucket:Bucket": Call("s3", "CreateBucket", {
        "forceDestroy": None, "tags": ("PutBucketTagging", "Tagging.TagSet")}),
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": Call(
        "s3", "PutBucketLifecycleConfiguration", {"rules": "LifecycleConfiguration.Rules", "rules.id": "ID"}),
    "aws:s3/bucketLogging:BucketLogging": Call("s3", "PutBucketLogging", {
        "targetBucket": "BucketLoggingStatus.LoggingEnabled.TargetBucket",
        "targetPrefix": "BucketLoggingStatus.LoggingEnabled.TargetPrefix"}),
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": Call("s3", "PutBucketOwnershipControls", {
        "rule": "OwnershipControls.Rules"}),
    "aws:s3/bucketPolicy:BucketPolicy": Call("s3", "PutBucketPolicy", policies={"policy": "resource"}),
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": Call("s3", "PutPublicAccessBlock", {
        key: f"PublicAccessBlockConfiguration.{key[0].upper()}{key[1:]}"
        for key in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")}),
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": Call(
        "s3", "PutBucketEncryption", {
            "rules": "ServerSideEncryptionConfiguration.Rules",
            "rules.applyServerSideEncryptionByDefault.kmsMasterKeyId": "KMSMasterKeyID",
            "rules.applyServerSideEncryptionByDefault.sseAlgorithm": "SSEAlgorithm"}),
    "aws:s3/bucketVersioning:BucketVersioning": Call("s3", "PutBucketVersioning"),
    "aws:secretsmanager/secret:Secret": Call("secretsmanager", "CreateSecret", {
        "recoveryWindowInDays": ("DeleteSecret", "RecoveryWindowInDays")},
        # pulumi_aws Secret.recovery_window_in_days: "0 to force deletion without recovery" (ForceDeleteWithoutRecovery)
        sent_otherwise={"recoveryWindowInDays": (0,)}),
    "aws:secretsmanager/secretRotation:SecretRotation": Call("secretsmanager", "RotateSecret", {
        "rotationLambdaArn": "RotationLambdaARN"}),
    "aws:secretsmanager/secretVersion:SecretVersion": Call("secretsmanager", "PutSecretValue"),
    "aws:servicediscovery/httpNamespace:HttpNamespace": Call("servicediscovery", "CreateHttpNamespace"),
    "aws:servicediscovery/privateDnsNamespace:PrivateDnsNamespace": Call("servicediscovery",
                                                                         "CreatePrivateDnsNamespace"),
    "aws:servicediscovery/service:Service": Call("servicediscovery", "CreateService", {
        "dnsConfig.dnsRecords.ttl": "TTL", "forceDestroy": None}),
    "aws:sns/topic:Topic": Call("sns", "CreateTopic", {
        "kmsMasterKeyId": None}),  # an entry of Attributes, a free-form map
    # pulumi_aws ssm.Parameter.insecure_value: the value, never marked secret (the published contracts)
    "aws:ssm/parameter:Parameter": Call("ssm", "PutParameter", {"insecureValue": "Value"}),
    # the provider sends both as entries of CreateQueue's Attributes, a map of strings (MessageRetentionPeriod,
    # SqsManagedSseEnabled): the retention is checked against the model's documented range in the queue's own test
    "aws:sqs/queue:Queue": Call("sqs", "CreateQueue", {
        "name": "QueueName", "messageRetentionSeconds": None, "sqsManagedSseEnabled": None}),
    "aws:sqs/queuePolicy:QueuePolicy": Call("sqs", "SetQueueAttributes", {
        "queueUrl": "QueueUrl", "policy": None}, policies={"policy": "resource"}),
    "aws:sns/topicPolicy:TopicPolicy": Call("sns", "SetTopicAttributes", {
        "arn": "TopicArn", "policy": "AttributeValue"}, policies={"policy": "resource"}),
    "aws:lb/loadBalancer:LoadBalancer": Call("elbv2", "CreateLoadBalancer", {
        "loadBalancerType": "Type", "internal": None,  # Scheme: internal / internet-facing
        # ModifyLoadBalancerAttributes' key-value attributes
        **{key: None for key in ("accessLogs", "dropInvalidHeaderFields", "enableDeletionProtection",
                                 "desyncMitigationMode", "enableHttp2", "connectionLogs")}},
        attributes={"idleTimeout": ("LoadBalancerAttribute", "idle_timeout.timeout_seconds")}),
    "aws:lb/targetGroup:TargetGroup": Call("elbv2", "CreateTargetGroup", {
        "healthCheck": "", "healthCheck.path": "HealthCheckPath", "healthCheck.protocol": "HealthCheckProtocol",
        "healthCheck.port": "HealthCheckPort", "healthCheck.enabled": "HealthCheckEnabled",
        "healthCheck.interval": "HealthCheckIntervalSeconds", "healthCheck.timeout": "HealthCheckTimeoutSeconds",
        "healthCheck.healthyThreshold": "HealthyThresholdCount",
        "healthCheck.unhealthyThreshold": "UnhealthyThresholdCount", "healthCheck.matcher": "Matcher.HttpCode",
        # ModifyTargetGroupAttributes' key-value attributes
        **{key: None for key in ("loadBalancingAlgorithmType", "stickiness")}},
        attributes={"deregistrationDelay": ("TargetGroupAttribute", "deregistration_delay.timeout_seconds"),
                    "slowStart": ("TargetGroupAttribute", "slow_start.duration_seconds")},
        # botocore elbv2 TargetGroupAttribute.Key: slow_start "The default is 0 seconds (disabled)"
        sent_otherwise={"slowStart": (0,)}),
    "aws:lb/listener:Listener": Call("elbv2", "CreateListener", {
        "certificateArn": "Certificates.CertificateArn", "defaultActions.targetGroupArn": "TargetGroupArn"}),
}


@dataclass(frozen=True)
class Documented:
    """A limit the model states only in a member's documentation: ``pattern`` finds it there (its groups: the
    lowest and highest value, or the admitted values)."""

    service: str
    shape: str
    member: str | None
    pattern: str
    values: bool = False  # the groups list the admitted values, not a range


_RANGE = r"between (\d+) and (\d+)"
#: (service, shape, member) -> the documented limit: checked like the model's own.
DOCUMENTED: tuple[Documented, ...] = (
    Documented("logs", "Days", None, r"Possible values are: ([\d, and]+)\.", values=True),
    Documented("ecs", "HealthCheck", "interval", _RANGE),
    Documented("ecs", "HealthCheck", "timeout", _RANGE),
    Documented("ecs", "HealthCheck", "retries", _RANGE),
    Documented("ecs", "HealthCheck", "startPeriod", _RANGE),
    Documented("kms", "ScheduleKeyDeletionRequest", "PendingWindowInDays", r"must be between (\d+) and (\d+)"),
    Documented("secretsmanager", "DeleteSecretRequest", "RecoveryWindowInDays", r"number of days from (\d+) to (\d+)"),
    Documented("lambda", "CreateFunctionRequest", "Timeout", r"()maximum allowed value is (\d+) seconds"),
    Documented("elbv2", "CreateLoadBalancerInput", "Name", r"()maximum of (\d+) characters"),
    Documented("ecs", "ServiceConnectService", "discoveryName", r"()can contain up to (\d+) characters"),
    Documented("ecs", "ServiceConnectClientAlias", "dnsName", r"()can include up to (\d+) characters"),
    Documented("mq", "CreateBrokerRequest", "BrokerName", r"(\d+)-(\d+) characters long"),
    Documented("mq", "CreateConfigurationRequest", "Name", r"(\d+)-(\d+) characters long"),
    Documented("mq", "User", "Username", r"(\d+)-(\d+) characters long"),
    Documented("mq", "User", "Password", r"at least (\d+) characters long()"),
    Documented("elbv2", "CreateTargetGroupInput", "Name", r"()maximum of (\d+) characters"),
)


@dataclass(frozen=True)
class Limits:
    """What a shape admits: the model's metadata and the documented limits, merged."""

    enum: tuple[str, ...] | None = None
    values: tuple[int, ...] | None = None
    low: float | None = None
    high: float | None = None


@cache
def service_model(service: str) -> ServiceModel:
    """botocore's model of ``service``, loaded once per process."""
    loader = Loader()
    return ServiceModel(loader.load_service_model(service, "service-2"), service_name=service)


def _documented(entry: Documented) -> Limits:
    shape = service_model(entry.service).shape_for(entry.shape)
    if entry.member is not None:
        assert isinstance(shape, StructureShape)
        shape = shape.members[entry.member]
    text = re.sub(r"<[^>]+>", "", shape.documentation)
    match = re.search(entry.pattern, text)
    if match is None:
        raise LookupError(f"botocore {entry.service} {entry.shape}.{entry.member} no longer documents "
                          f"{entry.pattern!r}: read its documentation again")
    if entry.values:
        return Limits(values=tuple(int(v) for v in re.findall(r"\d+", match.group(1))))
    low, high = match.groups()
    return Limits(low=int(low) if low else None, high=int(high) if high else None)


@cache
def documented_limits() -> dict[tuple[str, str, str | None], Limits]:
    return {(entry.service, entry.shape, entry.member): _documented(entry) for entry in DOCUMENTED}


def limits(service: str, shape: Shape, owner: str | None = None, member: str | None = None) -> Limits:
    """What ``shape`` (``member`` of the structure ``owner``, where it is one) admits."""
    meta = shape.metadata
    enum = tuple(meta["enum"]) if "enum" in meta else None
    low, high = meta.get("min"), meta.get("max")
    docs = documented_limits()
    extra = docs.get((service, owner or "", member)) or docs.get((service, shape.name, None))
    if extra is None:
        return Limits(enum, None, low, high)
    return Limits(enum, extra.values,
                  max(v for v in (low, extra.low) if v is not None) if low is not None or extra.low is not None
                  else None,
                  min(v for v in (high, extra.high) if v is not None) if high is not None or extra.high is not None
                  else None)


#: Java's Unicode classes as Python ``re`` spells them (Python's ``\\w`` is letters, numbers and ``_``):
#: letters, decimal digits, separators (white space but the control characters), printable characters.
_JAVA_CLASSES = {"L": r"[^\W\d_]", "N": r"\d", "Z": r"[^\S\t\n\r\f\v\x1c-\x1f\x85]",
                 "Print": r"[^\x00-\x1f\x7f-\x9f]"}
_JAVA_CLASS_SET = re.compile(r"\[(?!\^)((?:\\.|[^\]\\])*?\\p\{\w+\}(?:\\.|[^\]\\])*)\]")


def _python_pattern(pattern: str) -> str:
    """A Java pattern with ``\\p{L}``-style classes (tag keys and values) and UTF-16 surrogate pairs made Python's:
    a set holding such classes becomes an alternation of them and the rest of the set."""

    def alternation(match: re.Match[str]) -> str:
        inner = match.group(1)
        names = re.findall(r"\\p\{(\w+)\}", inner)
        rest = re.sub(r"\\p\{\w+\}", "", inner)
        parts = [_JAVA_CLASSES[name] for name in names] + ([f"[{rest}]"] if rest else [])
        return f"(?:{'|'.join(parts)})"

    pattern = pattern.replace("\\uD800\\uDC00-\\uDBFF\\uDFFF", "\\U00010000-\\U0010FFFF")
    pattern = _JAVA_CLASS_SET.sub(alternation, pattern)
    return re.sub(r"\\p\{(\w+)\}", lambda m: _JAVA_CLASSES.get(m.group(1), m.group(0)), pattern)


@cache
def _pattern(pattern: str) -> re.Pattern[str] | None:
    """The model's (Java) pattern as Python reads it, None where Python cannot."""
    try:
        return re.compile(_python_pattern(pattern), re.DOTALL)
    except (re.error, KeyError):
        return None


def _member(shape: StructureShape, name: str) -> str | None:
    """The member of ``shape`` a Pulumi name becomes mechanically: the same name, its wire name, or PascalCase."""
    members = shape.members
    if name in members:
        return name
    for member, member_shape in members.items():
        if member_shape.serialization.get("name") == name:
            return member
    pascal = name[:1].upper() + name[1:]
    return pascal if pascal in members else None


def _descend(shape: Shape, path: str) -> tuple[Shape, str | None, str | None] | str:
    """The shape at ``path`` below ``shape`` (through list members and map values), with the structure and member
    it is, or why there is none."""
    owner: str | None = None
    member: str | None = None
    for part in path.split(".") if path else []:
        while isinstance(shape, ListShape):
            shape = shape.member
        if not isinstance(shape, StructureShape):
            return f"{shape.name} has no member {part}"
        name = _member(shape, part)
        if name is None:
            return f"{shape.name} has no member {part}"
        owner, member, shape = shape.name, name, shape.members[name]
    return shape, owner, member


@dataclass
class _Walk:
    call: Call
    token: str
    problems: list[str]
    top: str = ""  # the operation's input shape
    #: report an input no member takes (a gap of :data:`CALLS`, or a misspelt key in JSON text of a structure)
    gaps: bool = True
    #: name no text value in a problem, only its length (where secret inputs cannot be told from the others)
    redact: bool = False

    def shown(self, value: Any, short: bool = False) -> str:
        """``value`` as a problem shows it: its repr (``short``: a text cut to 80 characters), or, redacted, a
        number or boolean as it is and anything else by its size alone."""
        if self.redact and isinstance(value, str):
            return f"a text of {len(value)} characters"
        if self.redact and isinstance(value, list | dict):
            return f"a {'list' if isinstance(value, list) else 'map'} of {len(value)} items"
        return repr(_short(value) if short and isinstance(value, str) else value)

    def structure(self, value: Any, shape: StructureShape, pulumi_path: str, where: str) -> None:
        if not isinstance(value, dict):
            self.problems.append(f"{where}: {self.shown(value)} is not a structure ({shape.name})")
            return
        sent: set[str] = set()
        for key in sorted(value):
            child = f"{pulumi_path}.{key}" if pulumi_path else key
            if value[key] in self.call.sent_otherwise.get(child, ()):
                continue
            target: Target = self.call.members.get(child, key)
            if child in self.call.attributes:
                self.attribute(value[key], *self.call.attributes[child], f"{where}.{key}")
                continue
            if target is None:
                continue
            root: Shape = shape
            if isinstance(target, tuple):
                operation, target = target
                root = self._input(operation)
            found = _descend(root, target)
            if isinstance(found, str):
                if self.gaps:
                    self.problems.append(f"{where}.{key}: not sent as any member ({found})")
                continue
            member_shape, owner, member = found
            if root is shape and target:
                sent.add(_member(shape, target.split(".")[0]) or "")
            self.value(value[key], member_shape, child, f"{where}.{key}", owner, member)
        missing = [name for name in shape.required_members if name not in sent]
        # the operation's own required members: the provider's or the URN's (a block flattened into it too)
        if pulumi_path and missing and shape.name != self.top:
            self.problems.append(f"{where}: no {', '.join(missing)} ({shape.name} requires it)")

    def attribute(self, value: Any, shape: str, key: str, where: str) -> None:
        low, high = attribute_range(self.call.service, shape, key)
        number = _number(value, integral=True)
        if number is None or not low <= number <= high:
            self.problems.append(f"{where}: {self.shown(value)} is not within {low}-{high}, the range of {shape} {key}")

    def _input(self, operation: str) -> StructureShape:
        shape = service_model(self.call.service).operation_model(operation).input_shape
        assert shape is not None
        return shape

    def value(self, value: Any, shape: Shape, pulumi_path: str, where: str, owner: str | None = None,
              member: str | None = None) -> None:
        if value is None or value == UNKNOWN or value == "<assets>":
            return
        if pulumi_path in self.call.policies and isinstance(value, str):
            kind = self.call.policies[pulumi_path]
            found = lifecycle_policy_problems(value) if kind == ECR_LIFECYCLE else policy_problems(value, kind)
            self.problems += [f"{where}: {problem}" for problem in found]
        if pulumi_path in self.call.json and isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError as error:
                self.problems.append(f"{where}: not JSON ({error})")
                return
        if isinstance(shape, StructureShape):
            if shape.metadata.get("document"):
                return  # free-form JSON
            for item in value if isinstance(value, list) else [value]:  # a Pulumi block list of one
                self.structure(item, shape, pulumi_path, where)
        elif isinstance(shape, ListShape):
            self.list(value, shape, pulumi_path, where, owner, member)
        elif isinstance(shape, MapShape):
            self.map(value, shape, pulumi_path, where)
        else:
            self.scalar(value, shape, where, owner, member)

    def list(self, value: Any, shape: ListShape, pulumi_path: str, where: str, owner: str | None,
             member: str | None) -> None:
        item_shape = shape.member
        if isinstance(value, dict) and isinstance(item_shape, StructureShape) and _pairs(item_shape):
            key_name, value_name = _pairs(item_shape) or ("", "")
            value = [{key_name: k, value_name: v} for k, v in value.items()]  # tags, dimensions: a map in Pulumi
            pulumi_path = f"{pulumi_path}[pair]"
        items = value if isinstance(value, list) else [value]
        bounds = limits(self.call.service, shape, owner, member)
        self._size(len(items), bounds, where, "items")
        for index, item in enumerate(items):
            self.value(item, item_shape, pulumi_path, f"{where}[{index}]")

    def map(self, value: Any, shape: MapShape, pulumi_path: str, where: str) -> None:
        if not isinstance(value, dict):
            self.problems.append(f"{where}: {self.shown(value)} is not a map ({shape.name})")
            return
        self._size(len(value), limits(self.call.service, shape), where, "entries")
        for key in sorted(value):
            self.scalar(key, shape.key, f"{where} key {key!r}", None, None)
            self.value(value[key], shape.value, f"{pulumi_path}.{key}", f"{where}.{key}")

    def _size(self, size: int, bounds: Limits, where: str, what: str) -> None:
        if bounds.low is not None and size < bounds.low:
            self.problems.append(f"{where}: {size} {what}, the model's minimum is {bounds.low}")
        if bounds.high is not None and size > bounds.high:
            self.problems.append(f"{where}: {size} {what}, the model's maximum is {bounds.high}")

    def scalar(self, value: Any, shape: Shape, where: str, owner: str | None, member: str | None) -> None:
        bounds = limits(self.call.service, shape, owner, member)
        kind = shape.type_name
        if kind == "string":
            text = _text(value)
            if text is None:
                self.problems.append(f"{where}: {self.shown(value)} is not a string ({shape.name})")
                return
            if bounds.enum is not None:
                admitted = bounds.enum
                seen = text
                if member in self.call.case_insensitive:
                    admitted, seen = tuple(v.upper() for v in admitted), text.upper()
                if seen not in admitted:
                    self.problems.append(f"{where}: {self.shown(text)} is not one of {shape.name}'s values "
                                         f"({', '.join(bounds.enum)})")
            self._size(len(text), bounds, where, "characters")
            pattern = shape.metadata.get("pattern")
            compiled = _pattern(pattern) if pattern else None
            if compiled is not None and not compiled.fullmatch(text):
                self.problems.append(f"{where}: {self.shown(text, short=True)} does not match {shape.name}'s pattern "
                                     f"{pattern}")
        elif kind in ("integer", "long", "double", "float"):
            number = _number(value, integral=kind in ("integer", "long"))
            if number is None:
                wanted = "n integer" if kind != "double" else " number"
                self.problems.append(f"{where}: {self.shown(value)} is not a{wanted} ({shape.name})")
                return
            if bounds.values is not None and number not in bounds.values:
                self.problems.append(f"{where}: {value} is not one of the values {shape.name} admits "
                                     f"({', '.join(map(str, bounds.values))})")
            if bounds.low is not None and number < bounds.low:
                self.problems.append(f"{where}: {value} is below {owner or shape.name}.{member or ''} minimum "
                                     f"{bounds.low}".replace(". minimum", " minimum"))
            if bounds.high is not None and number > bounds.high:
                self.problems.append(f"{where}: {value} is above {owner or shape.name}.{member or ''} maximum "
                                     f"{bounds.high}".replace(". maximum", " maximum"))
        elif kind == "boolean":
            if not isinstance(value, bool) and value not in ("true", "false"):
                self.problems.append(f"{where}: {self.shown(value)} is not a boolean ({shape.name})")


#: IAM User Guide, "Grammar of the IAM JSON policy language" and "IAM JSON policy elements reference": the kinds of
#: policy document and the statement elements each must (True) or must not (False) hold; a trust policy is the
#: role's resource-based policy, and names no Resource.
POLICY_KINDS: dict[str, dict[str, bool]] = {
    "identity": {"Principal": False, "NotPrincipal": False, "Resource|NotResource": True},
    "trust": {"Principal|NotPrincipal": True, "Resource": False, "NotResource": False},
    "resource": {"Principal|NotPrincipal": True},
}
POLICY_VERSIONS = ("2012-10-17", "2008-10-17")
POLICY_KEYS = frozenset({"Version", "Id", "Statement"})
STATEMENT_KEYS = frozenset({"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource",
                            "NotResource", "Condition"})
PRINCIPAL_KEYS = frozenset({"AWS", "Service", "Federated", "CanonicalUser"})
#: "service:Action" with wildcards, or "*" (the grammar's <action_string>)
ACTION = re.compile(r"\*|[a-z0-9-]+:[A-Za-z0-9*?]+")


def _strings(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def policy_problems(text: str, kind: str) -> list[str]:
    """Why an IAM JSON policy document of ``kind`` (:data:`POLICY_KINDS`) breaks the policy grammar."""
    try:
        policy = json.loads(text)
    except ValueError as error:
        return [f"not JSON ({error})"]
    if not isinstance(policy, dict):
        return ["a policy document is a JSON object"]
    problems = [f"{key!r} is not a policy element" for key in sorted(set(policy) - POLICY_KEYS)]
    if policy.get("Version") not in POLICY_VERSIONS:
        problems.append(f"Version {policy.get('Version')!r} is not one of {', '.join(POLICY_VERSIONS)}")
    statements = policy.get("Statement")
    if not statements:
        return [*problems, "no Statement"]
    for index, statement in enumerate(_strings(statements)):
        where = f"Statement[{index}]"
        if not isinstance(statement, dict):
            problems.append(f"{where} is not an object")
            continue
        problems += [f"{where}: {key!r} is not a statement element" for key in sorted(set(statement) - STATEMENT_KEYS)]
        if statement.get("Effect") not in ("Allow", "Deny"):
            problems.append(f"{where}: Effect {statement.get('Effect')!r} is not Allow or Deny")
        if ("Action" in statement) == ("NotAction" in statement):
            problems.append(f"{where}: needs exactly one of Action and NotAction")
        for action in _strings(statement.get("Action", statement.get("NotAction", []))):
            if not isinstance(action, str) or not ACTION.fullmatch(action):
                problems.append(f"{where}: action {action!r} is not service:Action or *")
        for principal in (statement.get("Principal"), statement.get("NotPrincipal")):
            if principal is not None and principal != "*" and (
                    not isinstance(principal, dict) or not principal or set(principal) - PRINCIPAL_KEYS):
                problems.append(f"{where}: principal {principal!r} is not \"*\" or a map of "
                                f"{', '.join(sorted(PRINCIPAL_KEYS))}")
        condition = statement.get("Condition", {})
        if not isinstance(condition, dict) or not all(isinstance(v, dict) for v in condition.values()):
            problems.append(f"{where}: Condition is not a map of operators to key-value maps")
        if "Sid" in statement and (kind == "identity" or kind == "trust") and \
                not re.fullmatch(r"[A-Za-z0-9]*", str(statement["Sid"])):
            problems.append(f"{where}: Sid {statement['Sid']!r} is not alphanumeric (IAM's policies)")
        for elements, wanted in POLICY_KINDS[kind].items():
            present = any(element in statement for element in elements.split("|"))
            if present != wanted:
                problems.append(f"{where}: a {kind} policy {'needs' if wanted else 'has no'} "
                                f"{' or '.join(elements.split('|'))}")
    return problems


@cache
def attribute_range(service: str, shape: str, key: str) -> tuple[int, int]:
    """The range a key-value attribute's documentation gives its ``key`` (botocore elbv2 TargetGroupAttribute.Key:
    "deregistration_delay.timeout_seconds - ... The range is 0-3600 seconds")."""
    owner = service_model(service).shape_for(shape)
    assert isinstance(owner, StructureShape)
    text = re.sub(r"<[^>]+>", "", owner.members["Key"].documentation)
    match = re.search(rf"{re.escape(key)} - [^-]*?(?:range is|between) (\d+)[- a-z]*?(\d+)", text)
    if match is None:
        raise LookupError(f"botocore {service} {shape}.Key no longer gives {key} a range: read it again")
    return int(match.group(1)), int(match.group(2))


#: ECR user guide, "Lifecycle policy properties in Amazon ECR" (lifecycle_policy_parameters): each property's values.
LIFECYCLE_TAG_STATUS = ("tagged", "untagged", "any")
LIFECYCLE_COUNT_TYPES = ("imageCountMoreThan", "sinceImagePushed", "sinceImagePulled", "sinceImageTransitioned")
LIFECYCLE_ACTIONS = ("expire", "transition")
#: same page: "There is a maximum limit of four wildcards (*) per string" of tagPatternList
LIFECYCLE_WILDCARDS_MAX = 4


def lifecycle_policy_problems(text: str) -> list[str]:
    """Why ECR refuses a lifecycle policy's text (PutLifecyclePolicy: InvalidParameterException)."""
    try:
        policy = json.loads(text)
    except ValueError as error:
        return [f"not JSON ({error})"]
    rules = policy.get("rules") if isinstance(policy, dict) else None
    if not isinstance(rules, list) or not rules:
        return ["a lifecycle policy is {\"rules\": [...]} with at least one rule"]
    problems: list[str] = []
    priorities = [rule.get("rulePriority") if isinstance(rule, dict) else None for rule in rules]
    if len(set(map(str, priorities))) != len(priorities):
        problems.append(f"rulePriority values {priorities} are not unique")
    for index, rule in enumerate(rules):
        where = f"rules[{index}]"
        if not isinstance(rule, dict):
            problems.append(f"{where} is not an object")
            continue
        priority, selection, action = rule.get("rulePriority"), rule.get("selection") or {}, rule.get("action") or {}
        if not isinstance(priority, int) or isinstance(priority, bool) or priority < 1:
            problems.append(f"{where}: rulePriority {priority!r} is not a positive integer")
        status, count_type = selection.get("tagStatus"), selection.get("countType")
        if status not in LIFECYCLE_TAG_STATUS:
            problems.append(f"{where}: tagStatus {status!r} is not one of {', '.join(LIFECYCLE_TAG_STATUS)}")
        listed = [key for key in ("tagPrefixList", "tagPatternList") if selection.get(key)]
        if status == "tagged" and not listed:
            problems.append(f"{where}: a tagged rule needs tagPrefixList or tagPatternList")
        if status == "untagged" and listed:
            problems.append(f"{where}: an untagged rule has no {' or '.join(listed)}")
        for pattern in selection.get("tagPatternList") or []:
            if str(pattern).count("*") > LIFECYCLE_WILDCARDS_MAX:
                problems.append(f"{where}: tag pattern {pattern!r} has more than {LIFECYCLE_WILDCARDS_MAX} wildcards")
        if count_type not in LIFECYCLE_COUNT_TYPES:
            problems.append(f"{where}: countType {count_type!r} is not one of {', '.join(LIFECYCLE_COUNT_TYPES)}")
        number = selection.get("countNumber")
        if not isinstance(number, int) or isinstance(number, bool) or number < 1:
            problems.append(f"{where}: countNumber {number!r} is not a positive integer")
        if (selection.get("countUnit") == "days") != (str(count_type).startswith("since")):
            problems.append(f"{where}: countUnit is \"days\" exactly for a since* countType (got "
                            f"{selection.get('countUnit')!r} with {count_type!r})")
        if action.get("type") not in LIFECYCLE_ACTIONS:
            problems.append(f"{where}: action type {action.get('type')!r} is not one of {', '.join(LIFECYCLE_ACTIONS)}")
        if status == "any" and isinstance(priority, int) and \
                any(isinstance(p, int) and p > priority for p in priorities):
            problems.append(f"{where}: a tagStatus any rule must have the highest rulePriority")
    return problems


def _pairs(shape: StructureShape) -> tuple[str, str] | None:
    """(key member, value member) of a name/value structure (a Tag, a Dimension), None for another."""
    names = list(shape.members)
    keys = [n for n in names if n.lower().endswith(("key", "name"))]  # KMS's TagKey
    values = [n for n in names if n.lower().endswith("value")]
    return (keys[0], values[0]) if len(names) == 2 and keys and values else None


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return None


def _number(value: Any, *, integral: bool) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value if not integral or float(value).is_integer() else None
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return number if not integral or number.is_integer() else None
    return None


def _short(text: str) -> str:
    return text if len(text) <= 80 else f"{text[:77]}..."


def operation(token: str) -> OperationModel:
    call = CALLS[token]
    return service_model(call.service).operation_model(call.operation)


def resource_problems(token: str, name: str, inputs: Mapping[str, Any], *, gaps: bool = True,
                      redact: bool = False) -> list[str]:
    """Why AWS refuses what a resource of type ``token`` named ``name`` sends it (empty: the model admits it).
    A type :data:`CALLS` does not hold is not checked (:func:`uncovered_types` names them); ``gaps=False`` leaves out
    the inputs no member takes (the table's own gaps), reporting only values the model refuses; ``redact`` names no
    text value, only its length (a secret input may be among them)."""
    call = CALLS.get(token)
    if call is None:
        return []
    values = dict(inputs)
    shape = operation(token).input_shape
    assert shape is not None
    autoname = autonamed_property(token)
    # the mocks' table names "name" for types whose name property is another (the broker's brokerName, always set)
    if autoname is not None and autoname not in values and f"{autoname}Prefix" not in values and \
            not isinstance(_descend(shape, str(call.members.get(autoname, autoname))), str):
        values[autoname] = f"{name}{AUTONAME_SUFFIX}"
    problems: list[str] = []
    _Walk(call, token, problems, shape.name, gaps, redact).structure(values, shape, "", "inputs")
    return [f"{token} {name}: {problem} ({call.service} {call.operation})" for problem in problems]


def _resources(document: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    for resource in document["resources"]:
        if resource["custom"] and resource["type"].startswith("aws:"):
            yield resource


def _default_tags(document: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """AWS provider URN -> the default tags it adds to each resource that takes tags."""
    found: dict[str, dict[str, Any]] = {}
    for resource in document["resources"]:
        if resource["type"] == "pulumi:providers:aws":
            tags = resource["inputs"].get("defaultTags") or "{}"
            tags = json.loads(tags) if isinstance(tags, str) else tags
            found[resource["urn"]] = dict(tags.get("tags") or {})
    return found


def sent_inputs(resource: Mapping[str, Any], default_tags: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """The inputs the provider sends for ``resource``: its own, and its provider's default tags under its own tags
    where the type takes tags (pulumi-aws merges them; the resource's own win)."""
    inputs = dict(resource["inputs"])
    provider = resource.get("provider") or ""  # the provider's URN (a reference "<urn>::<id>" elsewhere)
    defaults = default_tags.get(provider) or default_tags.get(provider.rsplit("::", 1)[0]) or {}
    if defaults and "tags" in input_names(resource["type"]):
        inputs["tags"] = {**defaults, **(inputs.get("tags") or {})}
    return inputs


def document_problems(document: Mapping[str, Any]) -> list[str]:
    """Every refusal of every AWS resource of one synthesized layer (its provider's default tags included)."""
    defaults = _default_tags(document)
    return [problem for resource in _resources(document)
            for problem in resource_problems(resource["type"], resource["name"], sent_inputs(resource, defaults))]


def uncovered_types(document: Mapping[str, Any]) -> set[str]:
    """The AWS resource types of ``document`` that :data:`CALLS` does not map."""
    return {resource["type"] for resource in _resources(document)} - set(CALLS)


def member_problems(service: str, owner: str, member: str | None, value: Any) -> list[str]:
    """Why ``service``'s model refuses ``value`` as ``member`` of the structure ``owner`` (or as the shape ``owner``
    itself, ``member`` None): what an env key that feeds that member may hold."""
    shape = service_model(service).shape_for(owner)
    problems: list[str] = []
    walk = _Walk(Call(service, ""), "", problems)
    if member is None:
        walk.value(value, shape, "", "value")
    else:
        assert isinstance(shape, StructureShape)
        walk.value(value, shape.members[member], "", "value", owner, member)
    return problems


def _mib(number: str, unit: str | None) -> int:
    return int(float(number) * 1024) if unit else int(number)


@cache
def documented_fargate_sizes() -> dict[int, tuple[int, ...]]:
    """Fargate's task cpu -> its memory sizes (MiB), as botocore ecs RegisterTaskDefinition ``memory`` documents
    them (one list item per cpu: the sizes listed, or "Between A and B in increments of C")."""
    shape = service_model("ecs").operation_model("RegisterTaskDefinition").input_shape
    assert isinstance(shape, StructureShape)
    sizes: dict[int, tuple[int, ...]] = {}
    amount = r"(\d+)\s*(GB)?(?: \([^)]*\))?"
    for item in re.findall(r"<li>(.*?)</li>", shape.members["memory"].documentation, re.S):
        text = re.sub(r"<[^>]+>", "", item)
        match = re.search(r"(.*?) - Available cpu values: (\d+)", text)
        if match is None:
            continue
        memory, cpu = match.group(1).strip(), int(match.group(2))
        between = re.fullmatch(rf"Between {amount} and {amount} in (?:increments of {amount}|{amount} increments)",
                               memory)
        if between is not None:
            low, low_unit, high, high_unit, *step = between.groups()
            step_number, step_unit = (step[0], step[1]) if step[0] else (step[2], step[3])
            sizes[cpu] = tuple(range(_mib(low, low_unit), _mib(high, high_unit) + 1, _mib(step_number, step_unit)))
        else:
            sizes[cpu] = tuple(int(value) for value in re.findall(r"(\d+) \(", memory))
    if not sizes:
        raise LookupError("botocore ecs RegisterTaskDefinition.memory no longer lists Fargate's sizes: read it again")
    return sizes
