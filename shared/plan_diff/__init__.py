"""Offline plan diff: a fresh synth of an env against the accepted baseline (``tests/snapshots``).

``nox -s diff -- ENV`` prints per layer the resources that a ``pulumi up`` would add, delete, update
or replace, and exits 1 when a ``protect``ed resource would be replaced or deleted -- the change a
2,000-line snapshot diff hides (a renamed component moves every child's URN: delete + create).

How a change is classified, resource by resource (matched by the URN the engine gives it, every ancestor's type in
it: :mod:`shared.urns`; the synth's own URNs name the parent's type only, and a component's new type token would
move its grandchildren's URNs unseen):

* URN only in the fresh synth: **add**; only in the baseline: **delete** (a rename shows as both);
* same URN, an input differs: **replace** when the input is one the provider cannot change in place
  (:data:`REPLACE_ON_CHANGE`, from the provider documentation: "Changing this forces a new
  resource"; the Python SDKs ship no schema to derive it from), else **update**;
* what reads a replaced resource (its id, ARN or generated name, in this layer or a later one) gets a
  new value for that input: **replace** again when the input is a replace-on-change one (a subnet's
  replacement replaces the broker in it), else **update**. The engine does the same: the replaced
  resource's outputs are unknown until it exists, and the provider plans an unknown replace-on-change
  input as a replacement;
* a resource replaced with ``delete_before_replace`` takes with it each resource whose replace-on-change input
  comes from it (its property dependencies: a binding naming a replaced exchange), as the engine does;
* a resource that answers to a baseline URN through an alias (``aliases`` in the synth document, or one its
  parent's alias gives it, as the engine multiplies them out) is that resource, compared input by input, not a
  delete and an add;
* an input the program names in ``ignore_changes`` (the synth document's ``ignore_changes``: an ECS service's
  ``desiredCount``, which autoscaling owns) keeps its deployed value on an update, as the engine keeps it (Pulumi
  docs, "ignoreChanges"): a change of it alone is no change, and a replaced resource's new id in it changes
  nothing. Top-level input names only; a nested path is compared in full (the diff then shows a change the
  engine may skip);
* a ``protect``ed resource in the baseline that would be replaced or deleted is **blocked**: the
  real ``up`` would stop there. So is one whose inputs turn on AWS's own deletion protection
  (:data:`DELETION_PROTECTION_INPUTS`: a gateway's load balancer where the env protects state), which Pulumi's
  ``protect`` does not cover: the replacement's create-before-delete would make the new copy, move its dependents
  to it, then fail at deleting the old one (ELB DeleteLoadBalancer: OperationNotPermitted), on every ``up``.

Inputs unknown at synth time are never compared (they are unknown in both).
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared import REPO_ROOT
from shared.errors import UsageError
from shared.synth.engine import UNKNOWN
from shared.urns import engine_document, make_urn, urn_parts

BASELINE_DIR = REPO_ROOT / "tests" / "snapshots"

# type -> inputs whose change forces a new resource (Pulumi Registry / upstream Terraform provider
# docs for each resource, "Forces new resource"; pulumi_rabbitmq: every queue/exchange/vhost argument).
REPLACE_ON_CHANGE: dict[str, frozenset[str]] = {
    "aws:ec2/vpc:Vpc": frozenset({"cidrBlock", "instanceTenancy", "ipv4IpamPoolId"}),
    "aws:ec2/subnet:Subnet": frozenset({"vpcId", "cidrBlock", "availabilityZone", "availabilityZoneId",
                                        "ipv6Native", "outpostArn"}),
    "aws:ec2/securityGroup:SecurityGroup": frozenset({"name", "namePrefix", "description", "vpcId"}),
    "aws:ec2/natGateway:NatGateway": frozenset({"subnetId", "allocationId", "connectivityType", "privateIp"}),
    "aws:ec2/eip:Eip": frozenset({"domain", "publicIpv4Pool", "networkBorderGroup", "address"}),
    "aws:ec2/route:Route": frozenset({"routeTableId", "destinationCidrBlock", "destinationIpv6CidrBlock",
                                      "destinationPrefixListId"}),
    "aws:ec2/routeTable:RouteTable": frozenset({"vpcId"}),
    "aws:ec2/routeTableAssociation:RouteTableAssociation": frozenset({"subnetId", "gatewayId"}),
    "aws:ec2/vpcEndpoint:VpcEndpoint": frozenset({"vpcId", "serviceName", "vpcEndpointType"}),
    "aws:ec2/flowLog:FlowLog": frozenset({"vpcId", "subnetId", "trafficType", "logDestination",
                                          "logDestinationType", "logFormat", "iamRoleArn",
                                          "maxAggregationInterval"}),
    # terraform-provider-aws mq/broker.go: ForceNew broker_name, deployment_mode, encryption_options, engine_type,
    # ldap_server_metadata, publicly_accessible, subnet_ids, data_replication_primary_broker_arn; storage_type is
    # not in botocore's UpdateBrokerRequest (no update exists); authentication_strategy is (changes in place).
    "aws:mq/broker:Broker": frozenset({"brokerName", "engineType", "deploymentMode", "publiclyAccessible",
                                       "subnetIds", "storageType", "encryptionOptions", "ldapServerMetadata",
                                       "dataReplicationPrimaryBrokerArn"}),
    # terraform-provider-aws mq/configuration.go: ForceNew engine_type, engine_version, name; data and description
    # make a new revision in place (UpdateConfiguration), which the broker's `configuration` follows in place.
    "aws:mq/configuration:Configuration": frozenset({"engineType", "engineVersion", "name"}),
    "aws:ecr/repository:Repository": frozenset({"name", "encryptionConfigurations"}),
    "aws:secretsmanager/secret:Secret": frozenset({"name", "namePrefix"}),
    # terraform-provider-aws secretsmanager/secret_version.go: secret_id, secret_string, secret_binary are ForceNew
    # (a new value is a new version: PutSecretValue); only version_stages changes in place.
    "aws:secretsmanager/secretVersion:SecretVersion": frozenset({"secretId", "secretString", "secretBinary",
                                                                "secretStringWoVersion"}),
    # terraform-provider-aws secretsmanager/secret_rotation.go: secret_id is ForceNew.
    "aws:secretsmanager/secretRotation:SecretRotation": frozenset({"secretId"}),
    # terraform-provider-aws lambda/permission.go: no update at all, every argument is ForceNew.
    "aws:lambda/permission:Permission": frozenset({"action", "eventSourceToken", "function", "functionUrlAuthType",
                                                   "invokedViaFunctionUrl", "principal", "principalOrgId",
                                                   "qualifier", "sourceAccount", "sourceArn", "statementId",
                                                   "statementIdPrefix"}),
    # terraform-provider-aws sns/topic_policy.go: arn is ForceNew (the policy itself is put in place).
    "aws:sns/topicPolicy:TopicPolicy": frozenset({"arn"}),
    # terraform-provider-aws ecr/lifecycle_policy.go: no update, policy and repository are ForceNew.
    "aws:ecr/lifecyclePolicy:LifecyclePolicy": frozenset({"policy", "repository"}),
    # pulumi_random: "keepers: Arbitrary map of values that, when changed, will trigger recreation".
    "random:index/randomPassword:RandomPassword": frozenset({"keepers", "length", "special", "minLower",
                                                            "minUpper", "minNumeric", "minSpecial"}),
    # terraform-provider-random resource_id.go: keepers, byte_length and prefix RequiresReplace.
    "random:index/randomId:RandomId": frozenset({"keepers", "byteLength", "prefix"}),
    "aws:kms/key:Key": frozenset({"customerMasterKeySpec", "keyUsage", "multiRegion", "xksKeyId"}),
    "aws:kms/alias:Alias": frozenset({"name", "namePrefix"}),
    "aws:cloudwatch/logGroup:LogGroup": frozenset({"name", "namePrefix", "logGroupClass"}),
    "aws:iam/role:Role": frozenset({"name", "namePrefix", "path"}),
    # terraform-provider-aws iam/role_policy.go: name, name_prefix and role are ForceNew (the policy is put in place).
    "aws:iam/rolePolicy:RolePolicy": frozenset({"name", "namePrefix", "role"}),
    # cloudwatch/metric_alarm.go: alarm_name is ForceNew (PutMetricAlarm updates everything else).
    "aws:cloudwatch/metricAlarm:MetricAlarm": frozenset({"name"}),
    # appautoscaling/target.go and policy.go: what the target scales (and the policy's name) is ForceNew.
    "aws:appautoscaling/target:Target": frozenset({"resourceId", "scalableDimension", "serviceNamespace"}),
    "aws:appautoscaling/policy:Policy": frozenset({"name", "resourceId", "scalableDimension", "serviceNamespace"}),
    "aws:servicediscovery/privateDnsNamespace:PrivateDnsNamespace": frozenset({"name", "vpc"}),
    # servicediscovery/http_namespace.go: the update handles tags alone (no UpdateHttpNamespace), so a description
    # set at create is ForceNew too
    "aws:servicediscovery/httpNamespace:HttpNamespace": frozenset({"name", "description"}),
    # terraform-provider-aws servicediscovery/service.go: also dns_config's namespace_id, routing_policy and each
    # record's type are ForceNew (a record's TTL is not); a dotted entry is an input nested in a block.
    "aws:servicediscovery/service:Service": frozenset({"name", "namespaceId", "healthCheckCustomConfig", "type",
                                                       "dnsConfig.namespaceId", "dnsConfig.routingPolicy",
                                                       "dnsConfig.dnsRecords.type"}),
    "aws:ecs/cluster:Cluster": frozenset({"name"}),
    # ecs/cluster_capacity_providers.go: cluster_name is ForceNew (the providers and default strategy: PutCluster-
    # CapacityProviders in place).
    "aws:ecs/clusterCapacityProviders:ClusterCapacityProviders": frozenset({"clusterName"}),
    # serviceRegistries and serviceConnectConfiguration change in place (ECS UpdateService takes both since
    # 2022; the provider's schema forces neither, and sends serviceRegistries: [] when the block goes).
    "aws:ecs/service:Service": frozenset({"name", "cluster", "launchType", "schedulingStrategy", "iamRole"}),
    # ecs/task_definition.go: a revision is immutable, every argument but tags, skip_destroy and track_latest is
    # ForceNew (also ipc_mode, pid_mode, placement_constraints, enable_fault_injection).
    "aws:ecs/taskDefinition:TaskDefinition": frozenset({"family", "containerDefinitions", "cpu", "memory",
                                                        "networkMode", "executionRoleArn", "taskRoleArn",
                                                        "volumes", "requiresCompatibilities", "ephemeralStorage",
                                                        "runtimePlatform", "proxyConfiguration", "ipcMode",
                                                        "pidMode", "placementConstraints",
                                                        "enableFaultInjection"}),
    "aws:appmesh/mesh:Mesh": frozenset({"name"}),
    "aws:appmesh/virtualNode:VirtualNode": frozenset({"name", "meshName"}),
    "aws:appmesh/virtualService:VirtualService": frozenset({"name", "meshName"}),
    "aws:appmesh/virtualRouter:VirtualRouter": frozenset({"name", "meshName"}),
    # terraform-provider-aws appmesh/route.go: name, mesh_name, mesh_owner and virtual_router_name are ForceNew (the
    # spec, a canary's weights included, is updated in place).
    "aws:appmesh/route:Route": frozenset({"name", "meshName", "meshOwner", "virtualRouterName"}),
    # events/rule.go: name, name_prefix and event_bus_name are ForceNew (pattern, schedule, description: PutRule);
    # events/target.go: rule, target_id and event_bus_name are ForceNew (the target's ARN and input: PutTargets).
    "aws:cloudwatch/eventRule:EventRule": frozenset({"name", "namePrefix", "eventBusName"}),
    "aws:cloudwatch/eventTarget:EventTarget": frozenset({"rule", "targetId", "eventBusName"}),
    # logs/metric_filter.go: name and log_group_name are ForceNew (pattern and transformation: PutMetricFilter);
    # logs/resource_policy.go: policy_name and resource_arn are ForceNew (the document: PutResourcePolicy).
    "aws:cloudwatch/logMetricFilter:LogMetricFilter": frozenset({"name", "logGroupName"}),
    "aws:cloudwatch/logResourcePolicy:LogResourcePolicy": frozenset({"policyName", "resourceArn"}),
    # codebuild/project.go: name is ForceNew; codebuild/webhook.go: project_name is ForceNew (filters update).
    "aws:codebuild/project:Project": frozenset({"name"}),
    "aws:codebuild/webhook:Webhook": frozenset({"projectName"}),
    # ec2/vpc_default_security_group.go: vpc_id is ForceNew (the group is the VPC's own); ec2/vpc_internet_gateway.go:
    # none (a new vpc_id detaches and attaches in place).
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": frozenset({"vpcId"}),
    "aws:ec2/internetGateway:InternetGateway": frozenset(),
    # ecr/registry_policy.go, ecr/replication_configuration.go: none (PutRegistryPolicy, PutReplicationConfiguration).
    "aws:ecr/registryPolicy:RegistryPolicy": frozenset(),
    "aws:ecr/replicationConfiguration:ReplicationConfiguration": frozenset(),
    # lambda/function.go: function_name and package_type are ForceNew (code and configuration update in place);
    # lambda/function_event_invoke_config.go: function_name and qualifier are ForceNew.
    "aws:lambda/function:Function": frozenset({"name", "packageType"}),
    "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig": frozenset({"functionName", "qualifier"}),
    # s3/bucket_logging.go: bucket and expected_bucket_owner are ForceNew (target bucket and prefix: PutBucketLogging).
    "aws:s3/bucketLogging:BucketLogging": frozenset({"bucket", "expectedBucketOwner"}),
    # sns/topic.go: name, name_prefix and fifo_topic are ForceNew; sns/topic_subscription.go: topic_arn (pulumi-aws's
    # `topic`), protocol and endpoint are ForceNew (a new subscription, to be confirmed again where the protocol asks).
    "aws:sns/topic:Topic": frozenset({"name", "namePrefix", "fifoTopic"}),
    # terraform-provider-aws budgets/budget.go: account_id, name and name_prefix ForceNew; the amount, filters and
    # notifications change in place (UpdateBudget, Create/Update/DeleteNotification)
    "aws:budgets/budget:Budget": frozenset({"accountId", "name", "namePrefix"}),
    "aws:sns/topicSubscription:TopicSubscription": frozenset({"topic", "protocol", "endpoint"}),
    # terraform-provider-aws sqs/queue.go: name, name_prefix and fifo_queue are ForceNew (the rest: SetQueueAttributes);
    # sqs/queue_policy.go: queue_url is ForceNew (the policy itself is put in place)
    "aws:sqs/queue:Queue": frozenset({"name", "namePrefix", "fifoQueue"}),
    "aws:sqs/queuePolicy:QueuePolicy": frozenset({"queueUrl"}),
    # ssm/parameter.go: name is ForceNew (value, type, description: PutParameter with Overwrite; a tier lowered from
    # Advanced to Standard is recreated by its CustomizeDiff, which no platform parameter does: Standard only).
    "aws:ssm/parameter:Parameter": frozenset({"name"}),
    # servicediscovery/instance.go: instance_id and service_id are ForceNew (attributes: RegisterInstance again).
    "aws:servicediscovery/instance:Instance": frozenset({"instanceId", "serviceId"}),
    # terraform-provider-aws ec2/vpc_security_group_{ingress,egress}_rule.go: security_group_id RequiresReplace
    # (a change of the rule's source kind is one too: ONE_OF_KIND below).
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": frozenset({"securityGroupId"}),
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": frozenset({"securityGroupId"}),
    # terraform-provider-aws elbv2/target_group.go: name, port, protocol (and its version), target type, VPC and
    # address type are ForceNew; the health check and deregistration delay are not.
    "aws:lb/targetGroup:TargetGroup": frozenset({"name", "namePrefix", "port", "protocol", "protocolVersion",
                                                 "targetType", "vpcId", "ipAddressType"}),
    # elbv2/load_balancer.go: name, name_prefix, internal, load_balancer_type and customer_owned_ipv4_pool are
    # ForceNew; an ALB's subnets, security groups, access logs and attributes change in place.
    "aws:lb/loadBalancer:LoadBalancer": frozenset({"name", "namePrefix", "internal", "loadBalancerType",
                                                   "customerOwnedIpv4Pool"}),
    # elbv2/listener.go: only load_balancer_arn is ForceNew (port, protocol, certificate, SSL policy, actions update).
    "aws:lb/listener:Listener": frozenset({"loadBalancerArn"}),
    # s3/bucket.go: bucket, bucket_prefix and object_lock_enabled are ForceNew; the namespace is set by CreateBucket
    # only (botocore s3 model: BucketNamespace is in no other operation).
    "aws:s3/bucket:Bucket": frozenset({"bucket", "bucketPrefix", "objectLockEnabled", "bucketNamespace"}),
    # s3/bucket_{public_access_block,ownership_controls,policy}.go: bucket is ForceNew, the settings are put in place.
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": frozenset({"bucket"}),
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": frozenset({"bucket"}),
    "aws:s3/bucketPolicy:BucketPolicy": frozenset({"bucket"}),
    # s3/bucket_{server_side_encryption,lifecycle}_configuration.go: bucket and expected_bucket_owner are ForceNew.
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration":
        frozenset({"bucket", "expectedBucketOwner"}),
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": frozenset({"bucket", "expectedBucketOwner"}),
    # s3/bucket_versioning.go: bucket and expected_bucket_owner are ForceNew; the status (and mfa) are put in place. Its
    # delete only suspends versioning: the versions already kept stay in the bucket.
    "aws:s3/bucketVersioning:BucketVersioning": frozenset({"bucket", "expectedBucketOwner"}),
    "rabbitmq:index/vHost:VHost": frozenset({"name"}),
    "rabbitmq:index/queue:Queue": frozenset({"name", "vhost", "settings"}),
    "rabbitmq:index/exchange:Exchange": frozenset({"name", "vhost", "settings"}),
    "rabbitmq:index/binding:Binding": frozenset({"source", "vhost", "destination", "destinationType",
                                                "routingKey", "arguments"}),
    "rabbitmq:index/user:User": frozenset({"name"}),
    "rabbitmq:index/permissions:Permissions": frozenset({"user", "vhost"}),
    "rabbitmq:index/topicPermissions:TopicPermissions": frozenset({"user", "vhost"}),
    "rabbitmq:index/policy:Policy": frozenset({"name", "vhost"}),
    "rabbitmq:index/operatorPolicy:OperatorPolicy": frozenset({"name", "vhost"}),
    # The platform's dynamic resources replace where their providers' diff() says so: the broker's log group on
    # log_group_name/region/account_id (shared/components/broker_logs.py), the Service Connect drain on
    # namespace_id/region (shared/components/service_connect_drain.py), the Lambda ENI drain on region
    # (shared/components/lambda_eni_drain.py). One type for all: the union.
    "pulumi-python:dynamic:Resource": frozenset({"log_group_name", "region", "account_id", "namespace_id"}),
}

#: type -> inputs of which a resource sets exactly one: switching to another forces a new resource, changing the
#: value of the same one does not (the SG rules' ModifyPlan: "you cannot change the rule's source type").
ONE_OF_KIND: dict[str, frozenset[str]] = {
    rule: frozenset({"cidrIpv4", "cidrIpv6", "prefixListId", "referencedSecurityGroupId"})
    for rule in ("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
                 "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
}


#: type -> inputs the provider's schema marks Optional and Computed: a program that stops setting one leaves the state's
#: value as it is (no diff, so no replace where it is replace-on-change). terraform-provider-aws ecs/service.go:
#: launch_type is Optional, Computed and ForceNew, so a service moved from a launch type to a capacity provider
#: strategy changes in place (the strategy; UpdateService with a forced new deployment).
KEPT_WHEN_UNSET: dict[str, frozenset[str]] = {"aws:ecs/service:Service": frozenset({"launchType"})}


def _kind_changes(type_: str, before: dict[str, Any], after: dict[str, Any]) -> bool:
    kinds = ONE_OF_KIND.get(type_, frozenset())
    return {k for k in kinds if before.get(k)} != {k for k in kinds if after.get(k)}


#: inputs that turn on a resource's deletion protection in AWS itself, by type (botocore elbv2
#: ModifyLoadBalancerAttributes ``deletion_protection.enabled``, which pulumi_aws's LoadBalancer sets from this input)
DELETION_PROTECTION_INPUTS: dict[str, str] = {"aws:lb/loadBalancer:LoadBalancer": "enableDeletionProtection"}


def guarded(resource: dict[str, Any]) -> bool:
    """Whether a synthesized ``resource`` cannot be deleted by an ``up``: Pulumi's ``protect``, or AWS's own
    deletion protection (:data:`DELETION_PROTECTION_INPUTS`)."""
    flag = DELETION_PROTECTION_INPUTS.get(resource.get("type", ""))
    return bool(resource.get("protect")) or (flag is not None and resource.get("inputs", {}).get(flag) is True)


@dataclass(frozen=True)
class Change:
    action: str  # add | delete | update | replace
    urn: str
    type: str
    inputs: tuple[str, ...] = ()  # the changed inputs (update/replace)
    protected: bool = False

    @property
    def blocked(self) -> bool:
        """A protected resource that the ``up`` would have to delete: it stops there."""
        return self.protected and self.action in ("delete", "replace")

    @property
    def name(self) -> str:
        return self.urn.rsplit("::", 1)[-1]


@dataclass
class LayerDiff:
    layer: str
    changes: list[Change] = field(default_factory=list)

    def count(self, action: str) -> int:
        return sum(1 for change in self.changes if change.action == action)


def _by_urn(document: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    return {resource["urn"]: resource for resource in (document or {}).get("resources", [])}


def _differs(old: Any, new: Any) -> bool:
    if old == new:
        return False
    return UNKNOWN not in json.dumps([old, new])  # unknown on either side: a preview cannot tell


def _at(value: Any, path: str) -> Any:
    """The value at ``path`` (dotted) inside an input; through a list, the list of each item's."""
    if not path:
        return value
    if isinstance(value, list):
        return [_at(item, path) for item in value]
    key, _, rest = path.partition(".")
    return _at(value.get(key), rest) if isinstance(value, dict) else None


def _entries(type_: str, inputs: Collection[str]) -> Iterator[tuple[str, str]]:
    """(input, path inside it, "" for the whole input) of each replace-on-change entry about ``inputs``; a
    dotted entry names something nested in a block."""
    for entry in sorted(REPLACE_ON_CHANGE.get(type_, frozenset())):
        head, _, rest = entry.partition(".")
        if head in inputs:
            yield head, rest


def _replaced_tokens(diffs: list[LayerDiff], fresh: dict[str, dict[str, Any] | None]) -> dict[str, str]:
    """Each generated token (:func:`shared.synth.mocks.generated_tokens`) of a resource the diffs replace -> its
    URN: what a reader of that resource holds in its inputs."""
    from shared.synth.mocks import generated_tokens

    tokens: dict[str, str] = {}
    for layer_diff in diffs:
        document = fresh.get(layer_diff.layer) or {}
        resources = _by_urn(document)
        for change in layer_diff.changes:
            if change.action == "replace" and change.urn in resources:
                resource = resources[change.urn]
                for token in generated_tokens(document["project"], document["stack"], resource["type"],
                                              resource["name"]):
                    tokens[token] = change.urn
    return tokens


def _inherited_aliases(new: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """Each fresh resource's aliases and those it takes from its parent's, as the engine multiplies them out (pulumi
    pkg/resource/deploy/step_generator.go, generateAliases: "multiply out any aliases our parent had"): for each alias
    of the parent, the child's URN under that alias's qualified type, its name's leading parent name renamed as the
    alias renames the parent. A component renamed with ``Alias(type_=...)`` or ``Alias(name=...)`` keeps every
    descendant. Engine URNs (:func:`shared.urns.engine_document`): the parent's qualified type is in its URN."""
    found: dict[str, list[str]] = {}

    def of(urn: str) -> list[str]:
        if urn in found:
            return found[urn]
        resource = new[urn]
        aliases = list(resource.get("aliases", ()))
        parent = resource.get("parent")
        own, above = urn_parts(urn), urn_parts(str(parent)) if parent in new else None
        if own is not None and above is not None:
            name, parent_name = own[3], above[3]
            for alias in of(str(parent)):
                parts = urn_parts(alias)
                if parts is None:
                    continue
                stack, project, qualified, alias_name = parts
                child = alias_name + name[len(parent_name):] if name.startswith(parent_name) else name
                aliases.append(make_urn(stack, project, f"{qualified}${resource['type']}", child))
        found[urn] = aliases
        return aliases

    for urn in new:
        of(urn)
    return found


def _aliased(old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``old`` keyed by the fresh URN of each resource that answers to its former URN through an alias, its own or one
    its parent's alias gives it (:func:`_inherited_aliases`): the engine carries its state over, no delete, no
    create."""
    moved = dict(old)
    aliases = _inherited_aliases(new)
    for urn in new:
        if urn in old:
            continue
        former = next((alias for alias in aliases[urn] if alias in moved and alias not in new), None)
        if former is not None:
            moved[urn] = moved.pop(former)
    return moved


def _delete_before_replace_dependents(resources: dict[str, dict[str, Any]], result: LayerDiff,
                                      deployed: dict[str, dict[str, Any]]) -> None:
    """Replace, in place, what the engine replaces with a resource replaced delete-first: each resource whose
    replace-on-change input takes a value from one of them (its property dependencies) is deleted before it and
    created again after it (pulumi/pulumi tests/integration/delete_before_create: "DeleteReplacement Dependent" comes
    before "DeleteReplacement Base"), transitively. Only a delete_before_replace root does this: a resource created
    before the old one goes keeps the value its readers hold (the name of a fixed-name resource), so they stay.
    ``resources``: the fresh synth's, by URN; ``deployed``: the baseline's, by the same URNs, whose protection is the
    deployed copy's (:func:`guarded`)."""
    replaced = {change.urn for change in result.changes if change.action == "replace"
                and resources.get(change.urn, {}).get("delete_before_replace")}
    known = {change.urn: index for index, change in enumerate(result.changes)}
    grown = bool(replaced)
    while grown:
        grown = False
        for urn, resource in resources.items():
            if urn in replaced or not resource.get("custom", True):
                continue
            depends = {key for key, urns in resource.get("property_dependencies", {}).items() if replaced & set(urns)}
            if not any(True for _ in _entries(resource["type"], depends)):
                continue
            existing = result.changes[known[urn]] if urn in known else None
            if existing is not None and existing.action in ("add", "delete"):
                continue
            inputs = tuple(sorted(set(existing.inputs if existing else ()) | depends))
            change = Change("replace", urn, resource["type"], inputs,
                            protected=guarded(deployed.get(urn) or resource))
            if existing is not None:
                result.changes[known[urn]] = change
            else:
                known[urn] = len(result.changes)
                result.changes.append(change)
            replaced.add(urn)
            grown = True
    result.changes.sort(key=lambda change: change.urn)


#: a program's read of a stack's outputs, which ``up`` reads and never creates, updates or deletes
STACK_REFERENCE = "pulumi:pulumi:StackReference"


def _in_engine_urns(document: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if document is None else engine_document(document)


def diff_documents(layer: str, baseline: dict[str, Any] | None, fresh: dict[str, Any] | None) -> LayerDiff:
    """What ``up`` would do to go from ``baseline`` to ``fresh`` (synth documents of one layer), by the URNs the engine
    gives their resources (:func:`shared.urns.engine_document`: a component's new type token or parent changes
    every descendant's, which the synth's own URNs show for its children only)."""
    return _diff_engine_documents(layer, _in_engine_urns(baseline), _in_engine_urns(fresh))


def _diff_engine_documents(layer: str, baseline: dict[str, Any] | None, fresh: dict[str, Any] | None) -> LayerDiff:
    """:func:`diff_documents` of documents in engine URNs already."""
    new = _by_urn(fresh)
    old = _aliased(_by_urn(baseline), new)
    result = LayerDiff(layer)
    for urn in sorted(set(old) | set(new)):
        before, after = old.get(urn), new.get(urn)
        if (after or before or {}).get("type") == STACK_REFERENCE:
            continue  # a read of another stack's outputs (the engine's `read` step): nothing in the cloud changes
        if before is None:
            assert after is not None
            result.changes.append(Change("add", urn, after["type"]))
            continue
        if after is None:
            result.changes.append(Change("delete", urn, before["type"], protected=guarded(before)))
            continue
        if not before.get("custom", True):
            continue  # a component has no inputs of its own in the cloud
        before_inputs, after_inputs = before.get("inputs", {}), after.get("inputs", {})
        ignored = set(after.get("ignore_changes", ())) & set(before_inputs)  # without an old value the new one goes
        ignored |= KEPT_WHEN_UNSET.get(after["type"], frozenset()) - set(after_inputs)
        changed = tuple(sorted(key for key in set(before_inputs) | set(after_inputs)
                               if key not in ignored and _differs(before_inputs.get(key), after_inputs.get(key))))
        if not changed:
            continue
        forced = _kind_changes(after["type"], before_inputs, after_inputs) or any(
            not path or _differs(_at(before_inputs.get(key), path), _at(after_inputs.get(key), path))
            for key, path in _entries(after["type"], changed))
        result.changes.append(Change("replace" if forced else "update", urn, after["type"], changed,
                                     protected=guarded(before)))
    _delete_before_replace_dependents(new, result, old)
    return result


def _cascade(diffs: list[LayerDiff], fresh: dict[str, dict[str, Any] | None],
             baseline: dict[str, dict[str, Any] | None]) -> None:
    """Add what reading a replaced resource does to its readers, in place, until nothing more changes. A reader's
    protection is its deployed copy's (the baseline's): the state's ``protect`` and the flag AWS holds decide whether
    the old copy can go, not what the fresh synth asks for (:func:`guarded`)."""
    deployed = {layer_diff.layer: _aliased(_by_urn(baseline.get(layer_diff.layer)),
                                           _by_urn(fresh.get(layer_diff.layer)))
                for layer_diff in diffs}
    texts: dict[tuple[str, str], str] = {}  # (urn, input) -> its JSON text, dumped once

    def text(urn: str, key: str, value: Any) -> str:
        if (urn, key) not in texts:
            texts[(urn, key)] = json.dumps(value)
        return texts[(urn, key)]

    while True:
        tokens = _replaced_tokens(diffs, fresh)
        if not tokens:
            return
        # one pattern for every reader: a replaced resource (the owner of its own tokens) is skipped below
        pattern = re.compile("|".join(tokens))
        grown = False
        for layer_diff in diffs:
            known = {change.urn: index for index, change in enumerate(layer_diff.changes)}
            for resource in (fresh.get(layer_diff.layer) or {}).get("resources", []):
                urn = resource["urn"]
                existing = layer_diff.changes[known[urn]] if urn in known else None
                if not resource.get("custom", True) or (existing and existing.action != "update"):
                    continue
                ignored = set(resource.get("ignore_changes", ()))
                hits = {key for key, value in resource.get("inputs", {}).items()
                        if key not in ignored and pattern.search(text(urn, key, value))}
                if not hits:
                    continue
                values = resource.get("inputs", {})
                forced = any(not path or pattern.search(json.dumps(_at(values.get(key), path)))
                             for key, path in _entries(resource["type"], hits))
                inputs = set(existing.inputs if existing else ()) | hits
                if existing and inputs == set(existing.inputs) and not forced:
                    continue
                change = Change("replace" if forced else "update", urn, resource["type"], tuple(sorted(inputs)),
                                protected=guarded(deployed[layer_diff.layer].get(urn) or resource))
                if existing:
                    layer_diff.changes[known[urn]] = change
                else:
                    layer_diff.changes.append(change)
                grown = True
            layer_diff.changes.sort(key=lambda change: change.urn)
        if not grown:
            return


def diff_layers(baseline: dict[str, dict[str, Any] | None], fresh: dict[str, dict[str, Any] | None],
                layers: list[str]) -> list[LayerDiff]:
    """What ``up`` would do to each of ``layers`` (in DAG order), replacements carried to their readers."""
    baseline = {layer: _in_engine_urns(document) for layer, document in baseline.items()}
    fresh = {layer: _in_engine_urns(document) for layer, document in fresh.items()}
    diffs = [_diff_engine_documents(layer, baseline.get(layer), fresh.get(layer)) for layer in layers]
    _cascade(diffs, fresh, baseline)
    return diffs


def read_baseline(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """A layer's baseline snapshot at ``path`` and why it is none (a problem is never taken for a layer that was
    never deployed, which would show its every resource as added and check nothing): (None, None) where no file
    is; otherwise the document, or None and the reason it is not a synth document."""
    if not path.exists():
        return None, None
    if not path.is_file():
        return None, f"{path}: not a file (a baseline layer is the JSON document `nox -s synth` writes)"
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        return None, f"{path}: not a synth document ({error})"
    if not isinstance(document, dict) or not isinstance(document.get("resources"), list):
        return None, f"{path}: not a synth document (an object with a `resources` list)"
    return document, None


def load_baseline(env: str, layer: str, baseline_dir: Path = BASELINE_DIR) -> dict[str, Any] | None:
    document, problem = read_baseline(baseline_dir / env / f"{layer}.json")
    if problem:
        raise UsageError(f"diff: {problem}")
    return document


def diff_env(env: str, fresh: dict[str, dict[str, Any]], baseline_dir: Path = BASELINE_DIR) -> list[LayerDiff]:
    """One :class:`LayerDiff` per layer of the fresh synth and of the baseline, in DAG order."""
    from shared.dag import LAYERS

    layers = [layer for layer in LAYERS if layer in fresh or (baseline_dir / env / f"{layer}.json").exists()]
    baseline = {layer: load_baseline(env, layer, baseline_dir) for layer in layers}
    return diff_layers(baseline, dict(fresh), layers)
