"""The deploy role's IAM policy for an env, derived from what the env synthesizes.

``python -m shared.deploy_role ENV [--read-only] [--role NAME] [--json] [--out DIR] [--keep DIR]``
(``nox -s roles -- ENV ...``) prints the managed policies to attach to ``messaging.deploy_runner.deploy_role_name``
(``--read-only``: to the read-only role of the previews and promotion gates, ``--role``, besides AWS's
``ReadOnlyAccess``): a stack cannot create the role it deploys with (README, "A fresh account, in order"), and "the
permissions of a full ``up``" cannot be derived by hand.

How the document is made (each part checked by ``tests/test_deploy_role.py``):

- **Services.** Every resource type the env's synth declares maps, in :data:`TYPE_SERVICES`, to the IAM service
  prefixes the AWS provider calls for it (the type's own service, and the services AWS checks the *caller* for on
  its behalf: Amazon MQ's CreateBroker the EC2 network-interface actions, Cloud Map's DNS namespaces Route 53).
  Those are granted service-wide (``ec2:*`` ...) on ``*``, all but the services below (IAM, KMS, ECS, ...): a
  provider's read, create, update, tag and delete of one type touch dozens of actions that no offline source lists
  per version, and an action left out stops ``up``, ``refresh`` or ``destroy`` midway. A type with no entry fails
  the generator (and the test), naming it.
- **EC2, Cloud Map, Application Auto Scaling** stay service-wide, but explicit denials (:func:`tag_held_denials`) hold
  their deletes and changes of a VPC resource, namespace, Cloud Map service or scalable target to one carrying the
  env's default tags ``env`` (or that of an env sharing its account and role, :func:`role_sharing_envs`),
  ``managed-by`` and a platform ``layer`` (:data:`TAG_HELD_ACTIONS`; the actions the
  provider also calls on an untagged resource only where a key has another value, :data:`TAG_HELD_IF_TAGGED_ACTIONS`),
  and deny the EC2 writes no resource of the stacks makes (:data:`EC2_NEVER_CALLED`).
- **IAM** is never service-wide: the role actions only on the roles the synth creates (a role the stacks name
  exactly, ``ml-platform-<env>-...``, by its name, the network layer's flow-log role too (an auto-name would match
  every env's of the account); the compute layer's auto-named ones, a pair per catalog service, by that shape and
  the env's default tags, :func:`tagged_role_statements`, so a service added needs no policy change),
  ``iam:PassRole`` only on those roles and only to the service each role trusts
  (``iam:PassedToService``), a role created or given a policy only with the env's permissions boundary
  (:mod:`shared.role_boundary`, ``iam:PermissionsBoundary``; explicitly denied: removing a boundary, changing the
  boundary policy), ``iam:CreateServiceLinkedRole`` only for the account preflight's services
  (``iam:AWSServiceName``) and ``iam:GetRole`` on service-linked roles for its reads.
- **KMS** never service-wide (:data:`KMS_KEY_ACTIONS`): the actions the stacks' key policies delegate to IAM on the
  keys of the env's account and region (a key's id is random, and a tag or alias condition would deny the provider's
  first calls on a new key), the alias actions on ``alias/ml-platform/<env>/*``, CreateKey and ListAliases on ``*``.
- **ECS** never service-wide either (:data:`ECS_IN_CLUSTER`): every action on the env's cluster and what is in it and
  on its task definition families, the ``*``-only reads, RegisterTaskDefinition and DeregisterTaskDefinition on
  ``*``, and Application Auto Scaling's checks of the caller (DescribeServices, UpdateService) on ``*`` where the
  synth has a scaling policy (:data:`ECS_AUTOSCALING_ACTIONS`).
- **Secrets Manager** only on the env's secrets (``platform/<env>/*``), GetRandomPassword and ListSecrets on ``*``.
- **CodeBuild, Lambda, ECR, SNS, SQS, EventBridge** only on the resources the stacks name (:data:`NAMED_STAR_ACTIONS`,
  :func:`named_resource_arns`): the deploy runner's project, the env's functions, the ``ml-platform/*`` repositories,
  the alarm topic, the layers' dead-letter queues, the env's rules; the ``*``-only actions a run calls on ``*``; on a
  ``lambda`` alarm subscriber's function only the permission actions (:func:`alarm_subscriber_functions`).
- **CloudWatch Logs** only on the env's log groups (:func:`log_group_arns`), the broker log-group provider's actions on
  Amazon MQ's groups, the ``*``-only actions on ``*`` (:data:`LOGS_STAR_ACTIONS`); **CloudWatch** only on the env's
  alarms, the ``*``-only reads and Application Auto Scaling's checks of the caller on ``*``
  (:data:`AUTOSCALING_ALARM_ACTIONS`), PutMetricData only in the queue metrics' namespace; **Amazon MQ** only on the
  env's broker and the configurations of its account and region, the create and list actions on ``*``; **Elastic Load
  Balancing**'s load balancers and target groups by the env's tag (:data:`ELB_TAGGED_WRITES`).
- **Route 53** only what Cloud Map needs of the caller for the synth's Cloud Map types (:data:`ROUTE53_FOR_CLOUD_MAP`):
  a private DNS namespace's hosted zone create, read and delete on ``*`` (its id is random), the health-check actions
  only where the synth has Cloud Map services (App Mesh envs), ChangeResourceRecordSets only of records named as a
  namespace of the synth or below it (``route53:ChangeResourceRecordSetsNormalizedRecordNames``).
- **S3** only on the buckets the synth names (and the state bucket).
- **Dynamic resources** (Pulumi dynamic providers running boto3 with the deployer's credentials) by provider class
  in :data:`DYNAMIC_ACTIONS`, the actions their code calls.
- **The account preflight's reads** (README, "First ``up`` in a new account") and **the state backend**:
  ``state.backend_url``'s bucket (objects under its prefix, and the lock files there) and ``state.secrets_provider``'s
  KMS key.

IAM quotas (IAM user guide, "IAM and AWS STS quotas"): a managed policy holds at most 6,144 characters, white space
not counted, and a role takes 10 managed policies by default; the statements are split over as many policies as they
need, in a fixed order, and more than 10 is an error.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from shared.components.compute_iam import KEY_ADMINISTRATION_ACTIONS
from shared.errors import PlatformError, UsageError
from shared.gateway_names import s3_bucket_arn
from shared.kms_url import KmsKey, kms_key

#: IAM user guide, "IAM and AWS STS quotas": managed policy size, white space not counted
MANAGED_POLICY_MAX_CHARS = 6144
#: same page: managed policies attached to a role (default quota; 20 on request)
MANAGED_POLICIES_PER_ROLE = 10

#: Pulumi type token -> the IAM service prefixes its create/read/update/delete call (prefixes, not API names:
#: ``elasticloadbalancing`` for elbv2, ``servicediscovery`` for Cloud Map, ``application-autoscaling``, ``logs``,
#: ``events``; each checked against botocore's signingName by the tests).
TYPE_SERVICES: dict[str, tuple[str, ...]] = {
    "aws:appautoscaling/policy:Policy": ("application-autoscaling", "cloudwatch"),
    "aws:appautoscaling/target:Target": ("application-autoscaling",),
    "aws:appmesh/mesh:Mesh": ("appmesh",),
    "aws:appmesh/route:Route": ("appmesh",),
    "aws:appmesh/virtualNode:VirtualNode": ("appmesh",),
    "aws:appmesh/virtualRouter:VirtualRouter": ("appmesh",),
    "aws:appmesh/virtualService:VirtualService": ("appmesh",),
    "aws:budgets/budget:Budget": ("budgets",),
    "aws:cloudwatch/eventRule:EventRule": ("events",),
    "aws:cloudwatch/eventTarget:EventTarget": ("events",),
    "aws:cloudwatch/logGroup:LogGroup": ("logs",),
    "aws:cloudwatch/logMetricFilter:LogMetricFilter": ("logs",),
    "aws:cloudwatch/logResourcePolicy:LogResourcePolicy": ("logs",),
    "aws:cloudwatch/metricAlarm:MetricAlarm": ("cloudwatch",),
    "aws:codebuild/project:Project": ("codebuild",),
    "aws:codebuild/webhook:Webhook": ("codebuild",),
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": ("ec2",),
    "aws:ec2/eip:Eip": ("ec2",),
    "aws:ec2/flowLog:FlowLog": ("ec2", "logs"),
    "aws:ec2/internetGateway:InternetGateway": ("ec2",),
    "aws:ec2/natGateway:NatGateway": ("ec2",),
    "aws:ec2/route:Route": ("ec2",),
    "aws:ec2/routeTable:RouteTable": ("ec2",),
    "aws:ec2/routeTableAssociation:RouteTableAssociation": ("ec2",),
    "aws:ec2/securityGroup:SecurityGroup": ("ec2",),
    "aws:ec2/subnet:Subnet": ("ec2",),
    "aws:ec2/vpc:Vpc": ("ec2",),
    "aws:ec2/vpcEndpoint:VpcEndpoint": ("ec2",),
    "aws:ecr/lifecyclePolicy:LifecyclePolicy": ("ecr",),
    "aws:ecr/registryPolicy:RegistryPolicy": ("ecr",),
    "aws:ecr/replicationConfiguration:ReplicationConfiguration": ("ecr",),
    "aws:ecr/repository:Repository": ("ecr", "kms"),
    "aws:ecs/cluster:Cluster": ("ecs", "servicediscovery"),
    "aws:ecs/clusterCapacityProviders:ClusterCapacityProviders": ("ecs",),
    "aws:ecs/service:Service": ("ecs",),
    "aws:ecs/taskDefinition:TaskDefinition": ("ecs",),
    "aws:iam/role:Role": ("iam",),
    "aws:iam/rolePolicy:RolePolicy": ("iam",),
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": ("iam",),
    "aws:kms/alias:Alias": ("kms",),
    "aws:kms/key:Key": ("kms",),
    # a function in a VPC: Lambda checks the caller's ec2:DescribeSecurityGroups/Subnets/Vpcs
    "aws:lambda/function:Function": ("lambda", "ec2"),
    "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig": ("lambda",),
    "aws:lambda/permission:Permission": ("lambda",),
    "aws:lb/listener:Listener": ("elasticloadbalancing",),
    "aws:lb/loadBalancer:LoadBalancer": ("elasticloadbalancing", "ec2"),
    "aws:lb/targetGroup:TargetGroup": ("elasticloadbalancing",),
    # Amazon MQ developer guide, "IAM permissions required to create an Amazon MQ broker": the caller's EC2
    # network-interface actions; logs:CreateLogGroup for its general log group (broker_logs.py)
    "aws:mq/broker:Broker": ("mq", "ec2", "logs"),
    "aws:mq/configuration:Configuration": ("mq",),
    "aws:s3/bucket:Bucket": ("s3",),
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": ("s3",),
    "aws:s3/bucketLogging:BucketLogging": ("s3",),
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": ("s3",),
    "aws:s3/bucketPolicy:BucketPolicy": ("s3",),
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": ("s3",),
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": ("s3",),
    "aws:s3/bucketVersioning:BucketVersioning": ("s3",),
    "aws:secretsmanager/secret:Secret": ("secretsmanager",),
    # Secrets Manager invokes the rotation function at once (RotateSecret)
    "aws:secretsmanager/secretRotation:SecretRotation": ("secretsmanager", "lambda"),
    "aws:secretsmanager/secretVersion:SecretVersion": ("secretsmanager",),
    "aws:servicediscovery/httpNamespace:HttpNamespace": ("servicediscovery",),
    # AWS Cloud Map developer guide, "API permissions reference": a private DNS namespace is a Route 53 hosted
    # zone (route53 and ec2:DescribeVpcs), its services' records and health checks Route 53's
    "aws:servicediscovery/privateDnsNamespace:PrivateDnsNamespace": ("servicediscovery", "route53", "ec2"),
    "aws:servicediscovery/service:Service": ("servicediscovery", "route53"),
    "aws:servicediscovery/instance:Instance": ("servicediscovery", "route53", "ec2"),
    "aws:sns/topic:Topic": ("sns",),
    "aws:ssm/parameter:Parameter": ("ssm",),
    "aws:sns/topicPolicy:TopicPolicy": ("sns",),
    "aws:sns/topicSubscription:TopicSubscription": ("sns",),
    "aws:sqs/queue:Queue": ("sqs",),
    "aws:sqs/queuePolicy:QueuePolicy": ("sqs",),
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": ("ec2",),
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": ("ec2",),
}

#: Data sources (invokes) the programs call -> their IAM prefix
INVOKE_SERVICES: dict[str, tuple[str, ...]] = {
    "aws:secretsmanager/getSecretVersion:getSecretVersion": ("secretsmanager",),
}

#: Type-token prefixes that call no AWS API: components, the engine's own, other providers (RabbitMQ's management
#: API, random). ``pulumi-python:dynamic:Resource`` is handled by :data:`DYNAMIC_ACTIONS`.
NO_AWS_TYPES = ("mlplatform:", "pulumi:", "rabbitmq:", "random:")
DYNAMIC_TYPE = "pulumi-python:dynamic:Resource"

#: Dynamic providers (``module:Class``) -> the IAM actions their boto3 calls need (tests read the calls from the code)
DYNAMIC_ACTIONS: dict[str, tuple[str, ...]] = {
    # logs:TagResource also for CreateLogGroup with tags (botocore logs CreateLogGroupRequest.tags)
    "shared.components.broker_logs:BrokerLogGroupProvider": (
        "logs:AssociateKmsKey", "logs:CreateLogGroup", "logs:DisassociateKmsKey", "logs:PutRetentionPolicy",
        "logs:TagResource", "logs:UntagResource", "sts:GetCallerIdentity"),
    "shared.components.service_connect_drain:ServiceConnectDrainProvider": ("servicediscovery:ListServices",),
    "shared.components.lambda_eni_drain:LambdaEniDrainProvider": ("ec2:DescribeNetworkInterfaces",),
}

#: Route 53 actions Cloud Map needs of the caller (it makes them with the caller's credentials, forward access
#: sessions) for the provider's calls on each Cloud Map type (AWS Cloud Map developer guide, "API permissions
#: reference"): a private DNS namespace's CreatePrivateDnsNamespace (CreateHostedZone, GetHostedZone,
#: ListHostedZonesByName), UpdatePrivateDnsNamespace (ChangeResourceRecordSets) and DeleteNamespace (DeleteHostedZone,
#: the guide's earlier versions); a service's UpdateService and its force_destroy's DeregisterInstance, an instance's
#: Register/DeregisterInstance (the health checks; ChangeResourceRecordSets too, as the AWS managed policy
#: AWSCloudMapRegisterInstanceAccess grants a registrant, the guide not listing it). No other type calls Route 53, so an
#: env without Cloud Map services (every Service Connect env) gets no health-check action: another team's Route 53
#: health checks stay out of reach. The hosted zone and health checks are Cloud Map's, their ids random, so ``*``;
#: ChangeResourceRecordSets is held to the namespaces' names (:data:`ROUTE53_RECORD_NAMES_KEY`).
ROUTE53_FOR_CLOUD_MAP: dict[str, tuple[str, ...]] = {
    "aws:servicediscovery/privateDnsNamespace:PrivateDnsNamespace": (
        "route53:ChangeResourceRecordSets", "route53:CreateHostedZone", "route53:DeleteHostedZone",
        "route53:GetHostedZone", "route53:ListHostedZonesByName"),
    **{type_: ("route53:ChangeResourceRecordSets", "route53:CreateHealthCheck", "route53:DeleteHealthCheck",
               "route53:GetHealthCheck", "route53:UpdateHealthCheck")
       for type_ in ("aws:servicediscovery/service:Service", "aws:servicediscovery/instance:Instance")},
}
PRIVATE_DNS_NAMESPACE_TYPE = "aws:servicediscovery/privateDnsNamespace:PrivateDnsNamespace"
#: ChangeResourceRecordSets only of records named as one of the synth's private DNS namespaces or below it: Cloud Map
#: writes only in the namespace's own hosted zone (the zone's apex SOA, ``<service>.<namespace>``, an A+SRV service's
#: ``<instance-id>.<service>.<namespace>``), and Route 53 puts no record of another name in that zone, so every
#: change batch Cloud Map can send there matches. Route 53 developer guide, "Using IAM policy conditions for
#: fine-grained access control": the key holds every name of the change batch, lower case, no trailing dot, other
#: characters than a-z, 0-9, -, _ and the dots escaped (the loader's namespace pattern, shared.envs _DNS_NAME, needs
#: no escape and is lower case already); ForAllValues, so each name must match
ROUTE53_RECORD_NAMES_KEY = "route53:ChangeResourceRecordSetsNormalizedRecordNames"

#: The writes of the service-wide grants (``ec2:*``, ``servicediscovery:*``, ``application-autoscaling:*``) that
#: change or delete a resource, denied unless the resource carries the env's default tags (:func:`tag_held_denials`):
#: each action -> the resource types it authorizes that the denials name, every one of which takes
#: ``aws:ResourceTag/${TagKey}`` (Service Authorization Reference: "Actions, resources, and condition keys for Amazon
#: EC2", "... for AWS Cloud Map", "... for AWS Application Auto Scaling"; resource types vpc, subnet, security-group,
#: route-table, internet-gateway, natgateway, elastic-ip, vpc-endpoint, vpc-flow-log; namespace, service;
#: scalable-target. The Application Auto Scaling user guide's "Tags for security" denies DeregisterScalableTarget,
#: DeleteScalingPolicy and DeleteScheduledAction by the target's aws:ResourceTag). Each resource of these types the
#: stacks create is tagged at its create (the provider's default tags in TagSpecifications or Tags;
#: tests/test_tag_on_create.py). Left out, so still service-wide: the network-interface actions (Amazon MQ's,
#: Lambda's, ECS's and the endpoints' interfaces are made by AWS untagged, and the provider deletes a function's
#: interfaces before its security group), and Cloud Map's TagResource and UntagResource (no resource type: "*" only).
TAG_HELD_ACTIONS: dict[str, tuple[str, ...]] = {
    **{f"ec2:{action}": ("vpc",) for action in ("DeleteVpc", "ModifyVpcAttribute", "DisassociateVpcCidrBlock")},
    **{f"ec2:{action}": ("internet-gateway", "vpc") for action in ("AttachInternetGateway", "DetachInternetGateway")},
    "ec2:DeleteInternetGateway": ("internet-gateway",),
    **{f"ec2:{action}": ("subnet",) for action in ("DeleteSubnet", "ModifySubnetAttribute")},
    **{f"ec2:{action}": ("security-group",) for action in (
        "AuthorizeSecurityGroupEgress", "AuthorizeSecurityGroupIngress", "DeleteSecurityGroup",
        "ModifySecurityGroupRules", "UpdateSecurityGroupRuleDescriptionsEgress",
        "UpdateSecurityGroupRuleDescriptionsIngress")},
    **{f"ec2:{action}": ("route-table",) for action in ("CreateRoute", "DeleteRoute", "DeleteRouteTable",
                                                         "ReplaceRoute")},
    **{f"ec2:{action}": ("internet-gateway", "route-table", "subnet") for action in (
        "AssociateRouteTable", "DisassociateRouteTable", "ReplaceRouteTableAssociation")},
    "ec2:DeleteNatGateway": ("natgateway",),
    **{f"ec2:{action}": ("elastic-ip",) for action in ("DisassociateAddress", "ReleaseAddress")},
    "ec2:DeleteVpcEndpoints": ("vpc-endpoint",),
    "ec2:ModifyVpcEndpoint": ("route-table", "security-group", "subnet", "vpc-endpoint"),
    "ec2:DeleteFlowLogs": ("vpc-flow-log",),
    **{f"servicediscovery:{action}": ("namespace",) for action in (
        "DeleteNamespace", "DeleteResourcePolicy", "PutResourcePolicy", "UpdateHttpNamespace",
        "UpdatePrivateDnsNamespace", "UpdatePublicDnsNamespace")},
    **{f"servicediscovery:{action}": ("service",) for action in (
        "DeleteService", "DeleteServiceAttributes", "DeregisterInstance", "RegisterInstance",
        "UpdateInstanceCustomHealthStatus", "UpdateService", "UpdateServiceAttributes")},
    **{f"application-autoscaling:{action}": ("scalable-target",) for action in (
        "DeleteScalingPolicy", "DeleteScheduledAction", "DeregisterScalableTarget", "PutScalingPolicy",
        "PutScheduledAction", "UntagResource")},
}
#: Held only where the resource carries the key (``Null`` false): actions the provider also calls on a resource that
#: has no tag yet. RevokeSecurityGroupIngress/Egress: the network layer's default security group (made by CreateVpc,
#: untagged) gets the env's tags by a CreateTags without ec2:CreateAction and its rules revoked right after, in one
#: create (terraform-provider-aws vpc_default_security_group.go resourceDefaultSecurityGroupCreate: updateTags, then
#: forceRevokeSecurityGroupRules), and no source says EC2 authorizes that revoke on the tags just written. CreateTags
#: and DeleteTags: no resource carrying another env's or team's value is retagged into this env, while a create's
#: tagging (and that adoption's) meets no tag. RegisterScalableTarget and its TagResource: a target's register is its
#: create (its tags in the request). Cloud Map's CreateService: the new service has no tag (the namespace has).
TAG_HELD_IF_TAGGED_ACTIONS: dict[str, tuple[str, ...]] = {
    **{f"ec2:{action}": ("security-group",) for action in ("RevokeSecurityGroupEgress",
                                                            "RevokeSecurityGroupIngress")},
    **{f"ec2:{action}": ("elastic-ip", "internet-gateway", "natgateway", "route-table", "security-group", "subnet",
                         "vpc", "vpc-endpoint", "vpc-flow-log") for action in ("CreateTags", "DeleteTags")},
    **{f"application-autoscaling:{action}": ("scalable-target",) for action in ("RegisterScalableTarget",
                                                                                "TagResource")},
    "servicediscovery:CreateService": ("namespace", "service"),
}
#: GuardDuty Runtime Monitoring's own clean-up: where it watches ECS Fargate (often turned on for every account by the
#: organization's GuardDuty administrator), GuardDuty puts an interface endpoint (``guardduty-data``) with a security
#: group of its own into the subnets of the VPC the tasks run in, tagged ``GuardDutyManaged=true`` and none of the
#: env's tags. A subnet's or the VPC's delete then fails (DependencyViolation) unless the provider removes them: on that
#: error it dissociates the subnet from that endpoint, and for the VPC deletes the endpoint and its group (pulumi_aws
#: ec2 Subnet and Vpc docstrings; hashicorp/terraform-provider-aws#46747, #46953). Held by the env's tags alone, these
#: three would be refused for GuardDuty's resources (destroy, and the AZ drop's second up, stopped), so they are also
#: allowed on a resource tagged ``GuardDutyManaged=true``.
GUARDDUTY_CLEANUP_ACTIONS = ("ec2:DeleteSecurityGroup", "ec2:DeleteVpcEndpoints", "ec2:ModifyVpcEndpoint")
GUARDDUTY_MANAGED = {"aws:ResourceTag/GuardDutyManaged": "true"}
#: EC2 writes no resource type of the stacks calls (:data:`TYPE_SERVICES`' ``ec2`` types: the VPC, its subnets, route
#: tables, gateways, Elastic IPs, endpoints, flow logs and security groups; and what Amazon MQ, Lambda, Elastic Load
#: Balancing and Cloud Map check on the caller: network-interface actions and reads), so denied on every resource:
#: another team's instances, volumes, snapshots and images (ending, detaching or sharing them), network ACLs, peering,
#: transit and VPN gateways, DHCP options, prefix lists and traffic mirroring, which no tag condition need guess for;
#: and the calls that copy, read or launch a workload (snapshot or image another team's volume or instance, a volume
#: from it, a key pair and an instance to attach it to, console output and Windows passwords, Spot/Fleet/Reserved
#: capacity): ``ec2:*`` would otherwise let the deploy role read every disk of the account (security review S1)
EC2_NEVER_CALLED = tuple(f"ec2:{name}" for name in (
    "AllocateHosts", "AttachVolume", "CopyImage", "CopySnapshot", "CreateCapacityReservation", "CreateFleet",
    "CreateImage", "CreateInstanceExportTask", "CreateKeyPair", "CreateLaunchTemplate", "CreateLaunchTemplateVersion",
    "CreateReplaceRootVolumeTask", "CreateRestoreImageTask", "CreateSnapshot", "CreateSnapshots",
    "CreateStoreImageTask", "CreateVolume", "EnableSerialConsoleAccess", "ExportImage", "GetConsoleOutput",
    "GetConsoleScreenshot", "GetLaunchTemplateData", "GetPasswordData", "ImportImage", "ImportInstance",
    "ImportKeyPair", "ImportSnapshot", "ImportVolume", "PurchaseHostReservation", "PurchaseReservedInstancesOffering",
    "PurchaseScheduledInstances", "RegisterImage", "RequestSpotFleet", "RequestSpotInstances", "RunInstances",
    "RunScheduledInstances", "StartInstances",
    "AcceptVpcPeeringConnection", "AssociateDhcpOptions", "AssociateIamInstanceProfile", "CreateNetworkAclEntry",
    "CreateTrafficMirrorSession", "CreateVpcPeeringConnection", "DeleteCustomerGateway", "DeleteDhcpOptions",
    "DeleteEgressOnlyInternetGateway", "DeleteKeyPair", "DeleteLaunchTemplate", "DeleteManagedPrefixList",
    "DeleteNetworkAcl", "DeleteNetworkAclEntry", "DeleteSnapshot", "DeleteTransitGateway",
    "DeleteTransitGatewayVpcAttachment", "DeleteVolume", "DeleteVpcEndpointServiceConfigurations",
    "DeleteVpcPeeringConnection", "DeleteVpnConnection", "DeleteVpnGateway", "DeregisterImage", "DetachVolume",
    "DetachVpnGateway", "DisassociateIamInstanceProfile", "ModifyImageAttribute", "ModifyInstanceAttribute",
    "ModifyInstanceMetadataOptions", "ModifyLaunchTemplate", "ModifyManagedPrefixList", "ModifySnapshotAttribute",
    "ModifyVolume", "ModifyVpcEndpointServicePermissions", "ModifyVpcPeeringConnectionOptions", "RebootInstances",
    "ReplaceIamInstanceProfileAssociation", "ReplaceNetworkAclAssociation", "ReplaceNetworkAclEntry",
    "StopInstances", "TerminateInstances"))
#: EC2 resource types of which the stacks tag an existing untagged one outside a create: the VPC's default security
#: group (aws:ec2/defaultSecurityGroup:DefaultSecurityGroup)
UNTAGGED_ADOPTED = frozenset({"security-group"})
#: IAM prefix -> the ARN resource part of each tag-held resource type (same reference, "Resource types")
TAG_HELD_RESOURCE_ARNS: dict[str, dict[str, str]] = {
    "ec2": {kind: f"{kind}/*" for kind in ("elastic-ip", "internet-gateway", "natgateway", "route-table",
                                           "security-group", "subnet", "vpc", "vpc-endpoint", "vpc-flow-log")},
    "servicediscovery": {"namespace": "namespace/*", "service": "service/*"},
    "application-autoscaling": {"scalable-target": "scalable-target/*"},
}

#: KMS is granted by resource, not service-wide (:func:`kms_statements`). A key's id is random, so no policy can name
#: the keys the stacks will create, and a condition on their tags or aliases would deny the provider's first calls
#: (KMS developer guide, "ABAC for AWS KMS": "It might take up to five minutes for tag and alias changes to affect KMS
#: key authorization"; resourceKeyCreate calls EnableKeyRotation, GetKeyPolicy and ListResourceTags at once). So the
#: key actions go on every key of the env's account and region, and only the actions every key of the stacks
#: delegates to IAM in its policy (``customer_key_policy``): on those keys no other action is allowed anyway. They
#: hold the provider's create, read, update, tag and delete of aws_kms_key (CreateKey's Tags need kms:TagResource
#: "in an IAM policy ... [covering] all KMS keys in the account and Region", KMS guide, "Controlling access to tags")
#: and aws_kms_alias, and what ECR, Secrets Manager, Amazon MQ, SNS and Lambda do with the caller's permissions.
KMS_KEY_ACTIONS = KEY_ADMINISTRATION_ACTIONS
#: Service Authorization Reference, KMS: an alias action takes the alias (required) and the key (required); the
#: stacks' aliases are all ``alias/ml-platform/<env>/...`` (shared.components.building_blocks.customer_key)
KMS_ALIAS_ACTIONS = ("kms:CreateAlias", "kms:DeleteAlias", "kms:UpdateAlias")
#: The KMS actions the provider calls that take only ``*`` (Service Authorization Reference, KMS: no resource type):
#: CreateKey, and ListAliases (resourceAliasRead finds an alias by listing them)
KMS_STAR_ACTIONS = ("kms:CreateKey", "kms:ListAliases")

#: ECS is granted by resource, not service-wide (:func:`ecs_statements`): ``ecs:*`` on the env's cluster
#: (``<env>-ml-platform``), on what the Service Authorization Reference names inside it (``service/<cluster>/<name>``,
#: the long ARN every service created since 2021 has and the only one ECS tags; tasks, task sets, deployments,
#: revisions, container instances) and on the task definition families ``<env>-*``. So whatever the provider calls on
#: aws_ecs_cluster, aws_ecs_service (CreateService ... DescribeServices, the steady-state waits' deployment reads) and
#: aws_ecs_task_definition (tagging takes the task-definition ARN; RegisterTaskDefinition is in ECS_STAR_ACTIONS),
#: and the orchestrator's DescribeServices stay allowed; no other cluster's tasks (ExecuteCommand, StopTask) or
#: services (CreateService, DeleteService) are.
ECS_IN_CLUSTER = ("container-instance", "service", "service-deployment", "service-revision", "task", "task-set")
#: Application Auto Scaling's RegisterScalableTarget checks the caller's ECS permissions with calls of its own (ECS
#: developer guide, "IAM permissions required for Amazon ECS service auto scaling": DescribeServices and UpdateService;
#: Application Auto Scaling user guide, "Permissions validation for API calls on target resources": its checks send
#: requests with no parameters or made-up ARNs in account 12345, and no source says which service its ECS checks
#: name): a grant held to the env's cluster that the check's request does not name fails every compute up with
#: ValidationException "User is missing the following permissions: [ecs:UpdateService]", so these two on ``*`` where
#: the synth has a scaling policy (:data:`SCALING_POLICY_TYPE`); nothing else of ECS leaves the env's cluster.
ECS_AUTOSCALING_ACTIONS = ("ecs:DescribeServices", "ecs:UpdateService")
#: The ECS actions that take only ``*`` (Service Authorization Reference, Amazon ECS: no resource type) that a run
#: calls (aws_ecs_task_definition's read and delete; the orchestrator's image check) or may read; not the account
#: settings writes (PutAccountSetting, PutAccountSettingDefault, DeleteAccountSetting) nor the agent's
#: DiscoverPollEndpoint. RegisterTaskDefinition is here too: the reference's copies disagree on whether ECS
#: authorizes it against the family's ARN or ``*``, and a guess that is wrong fails every compute ``up``; a
#: registered revision runs only through RunTask/CreateService/UpdateService, which stay in the env's cluster.
ECS_STAR_ACTIONS = ("ecs:DeregisterTaskDefinition", "ecs:DescribeTaskDefinition", "ecs:ListAccountSettings",
                    "ecs:RegisterTaskDefinition",
                    "ecs:ListClusters", "ecs:ListServices", "ecs:ListServicesByNamespace",
                    "ecs:ListTaskDefinitionFamilies", "ecs:ListTaskDefinitions")

#: Secrets Manager is granted by resource, not service-wide (:func:`secret_statements`): ``secretsmanager:*`` on the
#: env's secrets, ``arn:...:secret:platform/<env>/*`` (the Service Authorization Reference names the ``Secret`` resource
#: for every action but these two; a secret's ARN is its name, ``-`` and 6 random characters). So whatever the provider
#: calls on aws_secretsmanager_secret, _secret_version and _secret_rotation and the program's getSecretVersion of the
#: broker admin secret stay allowed; no other secret of the account may be read, rewritten or deleted. The account
#: preflight's DescribeSecret keeps ``*`` (:data:`PREFLIGHT_ACTIONS`).
SECRET_STAR_ACTIONS = ("secretsmanager:GetRandomPassword", "secretsmanager:ListSecrets")

#: CodeBuild, Lambda, ECR, SNS, SQS and EventBridge are granted by resource, not service-wide
#: (:func:`named_statements`): every action on the resources the stacks name (the deploy runner's project
#: ``ml-platform-<env>-deploy``, the functions ``ml-platform-<env>-broker-admin-rotation`` and ``-queue-metrics`` with
#: their versions and aliases, the repositories ``ml-platform/*`` of the env's account and region (one env per account
#: and region owns them: shared.envs), the alarm topic ``<env>-ml-alarms``, the dead-letter queues
#: ``<env>-ml-*-undelivered-events``, the rules ``<env>-ml-*`` and ``ml-platform-<env>-queue-metrics`` on the default
#: bus), so no other project of the account can be rewritten or started (the runner's role is trusted by the deploy
#: role), no other function invoked or updated, no image pushed to another team's repository, no other
#: topic or rule deleted. Service Authorization Reference: each action the provider calls on aws_codebuild_project/
#: _webhook (``project``), aws_lambda_function/_permission/_function_event_invoke_config (``function``),
#: aws_ecr_repository/_lifecycle_policy and the orchestrator's image reads and release tags (``repository``),
#: aws_sns_topic/_topic_policy and Subscribe (``topic``), aws_cloudwatch_event_rule/_target (``rule``) takes that
#: resource. Left on ``*``: the actions that take only ``*`` (:data:`NAMED_STAR_ACTIONS`), and the preflight's reads
#: (:data:`PREFLIGHT_ACTIONS`: ecr:DescribeRepositories and ListTagsForResource of every repository, to find another
#: env's or team's ``ml-platform/*``; sns:ListSubscriptionsByTopic).
#: The actions of those services that take only ``*`` (Service Authorization Reference: no resource type) that a run
#: calls or may read: the lists, ECR's registry-wide settings compute writes whole (aws_ecr_registry_policy,
#: aws_ecr_replication_configuration: Put/Get/DeleteRegistryPolicy, PutReplicationConfiguration, DescribeRegistry) and
#: the execution roles' GetAuthorizationToken (the role boundary grants it), and SNS's subscription reads and writes
#: (aws_sns_topic_subscription's GetSubscriptionAttributes, SetSubscriptionAttributes, Unsubscribe). Not CodeBuild's
#: source credential writes (ImportSourceCredentials, DeleteSourceCredentials), Lambda's CreateEventSourceMapping,
#: ECR's account settings, scanning configuration or pull-through cache rules, or SNS's SMS and platform application
#: writes: no stack calls them.
NAMED_STAR_ACTIONS: dict[str, tuple[str, ...]] = {
    "codebuild": ("codebuild:ListCuratedEnvironmentImages", "codebuild:ListProjects",
                  "codebuild:ListSourceCredentials"),
    "lambda": ("lambda:GetAccountSettings", "lambda:ListFunctions"),
    "ecr": ("ecr:DeleteRegistryPolicy", "ecr:DescribeRegistry", "ecr:GetAuthorizationToken", "ecr:GetRegistryPolicy",
            "ecr:PutRegistryPolicy", "ecr:PutReplicationConfiguration"),
    "sns": ("sns:GetSubscriptionAttributes", "sns:ListSubscriptions", "sns:ListTopics",
            "sns:SetSubscriptionAttributes", "sns:Unsubscribe"),
    "events": ("events:ListRules",),
    # aws_sqs_queue and aws_sqs_queue_policy call only actions on the queue's ARN (terraform-provider-aws sqs/queue.go,
    # queue_policy.go: CreateQueue, Get/SetQueueAttributes, ListQueueTags, Tag/UntagQueue, DeleteQueue)
    "sqs": (),
    # AWS Budgets' actions each take the budget (Service Authorization Reference, AWS Budgets): the provider's reads and
    # writes (CreateBudget, DescribeBudget, the notification and tag calls) are ModifyBudget, ViewBudget and the tag
    # actions on it; only the account-wide list of budget actions takes "*", and no stack calls it
    "budgets": (),
    # the provider's read of aws_ssm_parameter filters DescribeParameters by name (Service Authorization Reference,
    # Systems Manager: DescribeParameters has no resource type)
    "ssm": ("ssm:DescribeParameters",),
}

#: CloudWatch Logs is granted by resource, not service-wide (:func:`logs_statements`): ``logs:*`` on the env's log
#: groups (``/platform/<env>/...``: the services', the task stops' and the flow logs' groups; the two functions' and the
#: deploy runner's ``/aws/lambda/<function>``, ``/aws/codebuild/<project>``), as a group's ARN and with ``:*`` (its
#: streams; the form several actions authorize), so no other group of the account can be read, deleted, subscribed
#: to or have its retention cut. Amazon MQ's broker groups (``/aws/amazonmq/broker/<broker-id>/general``, the id
#: random) only get what the broker's log-group provider calls (:data:`DYNAMIC_ACTIONS`, no delete), on
#: ``/aws/amazonmq/*``, the scope of Amazon MQ's own CreateLogGroup check of the caller (Amazon MQ developer guide,
#: "Add the CreateLogGroup permission to your Amazon MQ user").
#: The CloudWatch Logs actions that stay on ``*``: DescribeLogGroups (IAM authorizes it on ``log-group:*``, never one
#: group's ARN: CloudWatch Logs user guide, shared.components.network) and the other metadata reads a run or a role of
#: the stacks (the role boundary's flow-log role) calls; the account's resource policies (task stops' policy, the
#: preflight's count: a policy without ``resourceArn`` names no log group, CloudWatch Logs API reference,
#: PutResourcePolicy); and the vended-log deliveries (Service Authorization Reference, CloudWatch Logs: no resource
#: type), left wide since neither EC2 flow logs nor Amazon MQ document whether they check them on the caller.
LOGS_STAR_ACTIONS = (
    "logs:DescribeLogGroups", "logs:DescribeLogStreams", "logs:DescribeMetricFilters",
    "logs:DeleteResourcePolicy", "logs:DescribeResourcePolicies", "logs:PutResourcePolicy",
    "logs:CreateLogDelivery", "logs:DeleteLogDelivery", "logs:GetLogDelivery", "logs:ListLogDeliveries",
    "logs:UpdateLogDelivery")
#: Amazon MQ's broker log groups (shared.components.broker_logs)
BROKER_LOG_GROUPS = "/aws/amazonmq/*"
#: The broker log's metric filter (shared.components.broker, resource alarms): terraform-provider-aws
#: aws_cloudwatch_log_metric_filter creates and updates with PutMetricFilter, reads with DescribeMetricFilters (on
#: ``*``, :data:`LOGS_STAR_ACTIONS`), deletes with DeleteMetricFilter, each on the group
BROKER_LOG_FILTER_ACTIONS = ("logs:DeleteMetricFilter", "logs:PutMetricFilter")

#: CloudWatch is granted by resource, not service-wide (:func:`cloudwatch_statements`): ``cloudwatch:*`` on the env's
#: alarms (``<env>-ml-*``, shared.components.alarms.name_prefix; the Service Authorization Reference names the
#: ``alarm`` resource for PutMetricAlarm, DeleteAlarms, TagResource, SetAlarmState, Enable/DisableAlarmActions), so
#: no other alarm of the account can be silenced (SetAlarmState, DisableAlarmActions), and no dashboard, metric
#: stream or insight rule written. On ``*``: the reads that take only ``*`` (same reference: GetMetricData,
#: GetMetricStatistics, ListMetrics, DescribeAlarmsForMetric) and DescribeAlarms (CloudWatch user guide, "CloudWatch
#: permissions reference": composite alarms are described only with a ``*`` scope); PutMetricData only in the queue
#: metrics' namespace (the role boundary's grant to the publisher: the deploy role holds what it hands out).
CLOUDWATCH_STAR_ACTIONS = ("cloudwatch:DescribeAlarms", "cloudwatch:DescribeAlarmsForMetric",
                           "cloudwatch:GetMetricData", "cloudwatch:GetMetricStatistics", "cloudwatch:ListMetrics")
#: Application Auto Scaling checks the caller's CloudWatch permissions with calls of its own (Application Auto Scaling
#: user guide, "Permissions validation for API calls on target resources": PutMetricAlarm and DeleteAlarms "without
#: any parameters", no alarm name at all, DescribeAlarms with MaxRecords 1; ECS developer guide, "IAM permissions
#: required for Amazon ECS service auto scaling": these on ``*``) and creates a target-tracking policy's alarms under
#: names it picks (``TargetTracking-...``): no alarm-name pattern can match a request that names no alarm, so on ``*``
#: where the synth has a scaling policy (each scalable target has one, shared.components.compute_service.autoscaling)
AUTOSCALING_ALARM_ACTIONS = ("cloudwatch:DeleteAlarms", "cloudwatch:DescribeAlarms", "cloudwatch:PutMetricAlarm")
SCALING_POLICY_TYPE = "aws:appautoscaling/policy:Policy"

#: Amazon MQ is granted by resource, not service-wide (:func:`mq_statements`): ``mq:*`` on the env's broker
#: (Service Authorization Reference, Amazon MQ: ``broker:${BrokerName}:${BrokerId}``, the name ``ml-<env>``,
#: shared.broker_names.broker_name; the id random) and on the configurations of the env's account and region (their
#: ARN is ``configuration:${ConfigurationId}``, a random id and no name). So no other broker of the account can be
#: updated, rebooted, deleted or given a user. On ``*`` the actions with no resource type (same reference):
#: CreateBroker and CreateConfiguration (their Tags authorize mq:CreateTags on the new broker or configuration), the
#: engine and instance option reads, the lists; and the preflight's DescribeBroker of every broker
#: (:data:`PREFLIGHT_ACTIONS`).
MQ_STAR_ACTIONS = ("mq:CreateBroker", "mq:CreateConfiguration", "mq:DescribeBrokerEngineTypes",
                   "mq:DescribeBrokerInstanceOptions", "mq:ListBrokers", "mq:ListConfigurations")

#: Elastic Load Balancing is granted by the env's tag, not service-wide (:func:`elb_statements`): the public gateway's
#: load balancers and target groups are auto-named ``<service>-alb-???????``/``<service>-tasks-???????``
#: (shared.gateway_names, no env in the name), so they are told apart by the compute provider's default tags
#: ``env``, ``layer``, ``managed-by`` (:data:`SCOPE_TAG_KEYS`, as the compute roles; ``env`` alone is a value another
#: team of the account may use too), as the
#: AWS Load Balancer Controller's published IAM policy does with its cluster tag: CreateLoadBalancer and
#: CreateTargetGroup only with the env's tag in the request (``aws:RequestTag``), their tagging only under the create
#: (``elasticloadbalancing:CreateAction``), every later write of a load balancer or target group only on one carrying
#: the env's tag (``aws:ResourceTag``; Service Authorization Reference, Elastic Load Balancing V2: both resource
#: types take it). The listener and rule actions stay unscoped, on listeners and rules only (the controller's policy
#: does the same; a listener's tag condition is not something a wrong guess may cost a gateway ``up`` for).
#: The reads (every Describe and Get of botocore's elbv2 model) on ``*``.
ELB_READ_ACTIONS = tuple(f"elasticloadbalancing:{name}" for name in (
    "DescribeAccountLimits", "DescribeCapacityReservation", "DescribeListenerAttributes",
    "DescribeListenerCertificates", "DescribeListeners", "DescribeLoadBalancerAttributes", "DescribeLoadBalancers",
    "DescribeRules", "DescribeSSLPolicies", "DescribeTags", "DescribeTargetGroupAttributes", "DescribeTargetGroups",
    "DescribeTargetHealth", "DescribeTrustStoreAssociations", "DescribeTrustStoreRevocations", "DescribeTrustStores",
    "GetResourcePolicy", "GetTrustStoreCaCertificatesBundle", "GetTrustStoreRevocationContent"))
ELB_TAGGED_CREATES = ("elasticloadbalancing:CreateLoadBalancer", "elasticloadbalancing:CreateTargetGroup")
ELB_CREATE_ACTIONS = ("CreateListener", "CreateLoadBalancer", "CreateTargetGroup")
ELB_TAGGED_WRITES = tuple(f"elasticloadbalancing:{name}" for name in (
    "AddTags", "DeleteLoadBalancer", "DeleteTargetGroup", "DeregisterTargets", "ModifyCapacityReservation",
    "ModifyIpPools", "ModifyLoadBalancerAttributes", "ModifyTargetGroup", "ModifyTargetGroupAttributes",
    "RegisterTargets", "RemoveTags", "SetIpAddressType", "SetSecurityGroups", "SetSubnets"))
ELB_LISTENER_ACTIONS = tuple(f"elasticloadbalancing:{name}" for name in (
    "AddListenerCertificates", "CreateListener", "CreateRule", "DeleteListener", "DeleteRule", "ModifyListener",
    "ModifyListenerAttributes", "ModifyRule", "RemoveListenerCertificates", "SetRulePriorities"))

#: What the provider calls on a role and its inline policies (create, read, update, tag, delete: the delete lists
#: and removes inline and attached policies and instance profiles first)
ROLE_ACTIONS = (
    "iam:AttachRolePolicy", "iam:CreateRole", "iam:DeleteRole", "iam:DeleteRolePolicy", "iam:DetachRolePolicy",
    "iam:GetRole", "iam:GetRolePolicy", "iam:ListAttachedRolePolicies", "iam:ListInstanceProfilesForRole",
    "iam:ListRolePolicies", "iam:ListRoleTags", "iam:PutRolePermissionsBoundary", "iam:PutRolePolicy", "iam:TagRole",
    "iam:UntagRole", "iam:UpdateAssumeRolePolicy", "iam:UpdateRole", "iam:UpdateRoleDescription")

#: The role actions that give a role permissions (or set its cap): allowed only with the env's boundary
#: (:mod:`shared.role_boundary`) as ``iam:PermissionsBoundary``, the request's on CreateRole and
#: PutRolePermissionsBoundary, the role's on the policy writes (IAM user guide, "Permissions boundaries for IAM
#: entities", delegating responsibility: a role without that boundary takes no policy from the deploy role)
BOUNDED_ROLE_ACTIONS = ("iam:AttachRolePolicy", "iam:CreateRole", "iam:PutRolePermissionsBoundary",
                        "iam:PutRolePolicy")
#: What the deploy role may never do to the boundary (same example): remove it from a role, or create, rewrite or
#: delete the boundary policy (a change of the cap is made by whoever made the deploy role)
BOUNDARY_REMOVAL_ACTIONS = ("iam:DeleteRolePermissionsBoundary",)
BOUNDARY_POLICY_ACTIONS = ("iam:CreatePolicy", "iam:CreatePolicyVersion", "iam:DeletePolicy",
                           "iam:DeletePolicyVersion", "iam:SetDefaultPolicyVersion")

#: The role actions that only read (the provider's refresh of a role deleted out of band must get NoSuchEntity, not
#: AccessDenied: a tag condition on a role that does not exist fails, so these go by name only)
ROLE_READ_ACTIONS = (
    "iam:GetRole", "iam:GetRolePolicy", "iam:ListAttachedRolePolicies", "iam:ListInstanceProfilesForRole",
    "iam:ListRolePolicies", "iam:ListRoleTags")

#: Service Authorization Reference, "Actions, resources, and condition keys for AWS Identity and Access Management
#: (IAM)": the condition keys of each role action the deploy role's tag-scoped statements use. The ``role`` resource
#: type adds ``aws:ResourceTag/${TagKey}`` and ``iam:ResourceTag/${TagKey}`` (:data:`ROLE_RESOURCE_KEYS`) to every
#: action on an existing role; CreateRole has no role yet, so only its request's tags (IAM user guide, "Controlling
#: access to and for IAM users and roles using tags": aws:RequestTag for what a request adds, aws:ResourceTag for
#: what the role carries).
IAM_ACTION_CONDITION_KEYS: dict[str, tuple[str, ...]] = {
    "iam:AttachRolePolicy": ("iam:PolicyARN", "iam:PermissionsBoundary"),
    "iam:CreateRole": ("aws:RequestTag/${TagKey}", "aws:TagKeys", "iam:PermissionsBoundary"),
    "iam:DeleteRole": (),
    "iam:DeleteRolePolicy": ("iam:PermissionsBoundary",),
    "iam:DetachRolePolicy": ("iam:PolicyARN", "iam:PermissionsBoundary"),
    "iam:PassRole": ("iam:AssociatedResourceArn", "iam:PassedToService"),
    "iam:PutRolePermissionsBoundary": ("iam:PermissionsBoundary",),
    "iam:PutRolePolicy": ("iam:PermissionsBoundary",),
    "iam:TagRole": ("aws:RequestTag/${TagKey}", "aws:TagKeys"),
    "iam:UntagRole": ("aws:TagKeys",),
    "iam:UpdateAssumeRolePolicy": (),
    "iam:UpdateRole": (),
    "iam:UpdateRoleDescription": (),
}
ROLE_RESOURCE_KEYS = ("aws:ResourceTag/${TagKey}", "iam:ResourceTag/${TagKey}")
#: actions whose role does not exist when IAM authorizes them: no resource tag to see
NO_RESOURCE_YET = frozenset({"iam:CreateRole"})

#: The provider's default tags (:meth:`shared.envs.EnvConfig.common_tags`, ``shared/layer.py``) that scope the compute
#: layer's auto-named roles: a role the compute stack of this env created carries all three
SCOPE_TAG_KEYS = ("env", "layer", "managed-by")
#: The layer whose auto-named roles (one execution and one task role per catalog service and canary version) are
#: scoped by tag, so that a catalog service added or removed needs no policy change
TAGGED_ROLE_LAYER = "compute"


def condition_keys_allowed(action: str) -> set[str]:
    """The condition keys IAM evaluates for ``action`` (``${TagKey}`` as written in the reference)."""
    keys = set(IAM_ACTION_CONDITION_KEYS[action])
    if action not in NO_RESOURCE_YET:
        keys.update(ROLE_RESOURCE_KEYS)
    return keys


def key_template(key: str) -> str:
    """``aws:RequestTag/env`` -> ``aws:RequestTag/${TagKey}`` (as the reference lists it)."""
    return re.sub(r"^((?:aws|iam):(?:Request|Resource)Tag)/.+$", r"\1/${TagKey}", key)


#: The account preflight's reads (README, "First `up` in a new account"; shared/orchestrate/account.py) besides
#: iam:GetRole, its EC2 DryRun probes of network's first creates, and the orchestrator's own (images gate:
#: shared/images.py, shared/release_tags.py; a network destroy's look for interfaces no layer deletes:
#: shared/orchestrate/interfaces.py)
PREFLIGHT_ACTIONS = (
    "acm:DescribeCertificate", "ec2:AllocateAddress", "ec2:CreateInternetGateway", "ec2:CreateVpc",
    "ec2:DescribeAddresses", "ec2:DescribeAvailabilityZones", "ec2:DescribeInternetGateways",
    "ec2:DescribeNatGateways", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSecurityGroups",
    "ec2:DescribeVpcBlockPublicAccessExclusions", "ec2:DescribeVpcBlockPublicAccessOptions",
    "ec2:DescribeVpcEndpointServices", "ec2:DescribeVpcs", "ecr:DescribeRegistry", "ecr:DescribeRepositories",
    "ecr:GetRegistryPolicy", "ecr:ListTagsForResource", "iam:GetAccountSummary", "logs:DescribeResourcePolicies",
    "mq:DescribeBroker", "mq:DescribeBrokerInstanceOptions", "mq:ListBrokers", "secretsmanager:DescribeSecret",
    "servicequotas:GetAWSDefaultServiceQuota", "servicequotas:GetServiceQuota", "sns:GetSMSAttributes",
    "sms-voice:DescribePhoneNumbers", "sns:GetSMSSandboxAccountStatus", "sns:ListSMSSandboxPhoneNumbers",
    "sns:ListSubscriptionsByTopic", "sts:GetCallerIdentity")

#: IAM reads of :data:`PREFLIGHT_ACTIONS` that name no resource (Service Authorization Reference, IAM: GetAccountSummary
#: has no resource type, so only ``*`` grants it): the account's count and quota of roles, no entity's content.
STAR_ONLY_IAM_READS = ("iam:GetAccountSummary",)

#: Pulumi's auto-naming suffix: "-" and 7 random hex characters (shared.gateway_names.AUTONAME_SUFFIX)
AUTONAME_PATTERN = "-???????"


class UnmappedTypeError(PlatformError):
    """A synthesized resource type the generator does not know (a code change, not bad input)."""


@dataclass(frozen=True)
class ManagedPolicy:
    name: str
    document: dict[str, Any]

    @property
    def size(self) -> int:
        return policy_size(self.document)


def policy_size(document: Mapping[str, Any]) -> int:
    """Characters IAM counts against a policy's quota: the JSON without white space outside strings."""
    return len(json.dumps(document, separators=(",", ":")))


def services_of_type(type_: str) -> tuple[str, ...]:
    """The IAM prefixes a resource type needs; () for a type that calls no AWS API; UnmappedTypeError otherwise."""
    if type_.startswith(NO_AWS_TYPES) or type_ == DYNAMIC_TYPE:
        return ()
    try:
        return TYPE_SERVICES[type_]
    except KeyError:
        raise UnmappedTypeError(
            f"resource type {type_} has no IAM mapping: add the IAM service prefixes the AWS provider calls for it "
            "to TYPE_SERVICES in shared/deploy_role.py") from None


def _arn(partition: str, service: str, region: str, account: str, resource: str) -> str:
    return f"arn:{partition}:{service}:{region}:{account}:{resource}"


def _env_arn(env: Any, service: str, resource: str) -> str:
    """The ARN (pattern) of ``resource`` of ``service`` in the env's partition, region and account."""
    from shared.components.compute_containers import partition_of

    return _arn(partition_of(env.region), service, env.region, env.account_id, resource)


def _resources(documents: Mapping[str, Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [resource for layer in sorted(documents) for resource in documents[layer]["resources"]]


def _name_pattern(resource: Mapping[str, Any], key: str, autoname: str) -> str:
    """The name a resource gets: its ``key`` input, else ``<key>Prefix`` and anything, else Pulumi's auto-name."""
    inputs = resource.get("inputs") or {}
    if inputs.get(key):
        return str(inputs[key])
    if inputs.get(f"{key}Prefix"):
        return f"{inputs[f'{key}Prefix']}*"
    return f"{resource['name']}{autoname}"


def role_name_pattern(resource: Mapping[str, Any]) -> str:
    """The name an ``aws:iam/role:Role`` gets: its ``name`` input, else Pulumi's auto-name ``<resource>-???????``."""
    return _name_pattern(resource, "name", AUTONAME_PATTERN)


def bucket_name_pattern(resource: Mapping[str, Any]) -> str:
    return _name_pattern(resource, "bucket", "-*")


def trusted_services(resource: Mapping[str, Any]) -> list[str]:
    """The AWS service principals a role's trust policy lets assume it (whom it may be passed to)."""
    trust = (resource.get("inputs") or {}).get("assumeRolePolicy")
    document = json.loads(trust) if isinstance(trust, str) else trust or {}
    statements = document.get("Statement", [])
    found: set[str] = set()
    for statement in statements if isinstance(statements, list) else [statements]:
        principal = statement.get("Principal", {})
        if statement.get("Effect") != "Allow" or not isinstance(principal, dict):
            continue
        service = principal.get("Service", [])
        found.update([service] if isinstance(service, str) else service)
    return sorted(found)


@dataclass(frozen=True)
class StateBackend:
    bucket: str | None
    prefix: str
    kms: KmsKey | None  # the key of an awskms:// secrets provider


def state_backend(backend_url: str, secrets_provider: str | None) -> StateBackend:
    """The S3 bucket and prefix of an ``s3://`` backend and the KMS key of an ``awskms://`` secrets provider."""
    bucket, prefix = None, ""
    parts = urlsplit(backend_url)
    if parts.scheme == "s3":
        bucket, prefix = parts.netloc, parts.path.strip("/")
    return StateBackend(bucket, prefix, kms_key(secrets_provider))


def _statement(sid: str, actions: Iterable[str], resources: Iterable[str],
               condition: dict[str, Any] | None = None) -> dict[str, Any]:
    statement: dict[str, Any] = {"Sid": sid, "Effect": "Allow", "Action": sorted(set(actions)),
                                 "Resource": sorted(set(resources))}
    if condition:
        statement["Condition"] = condition
    return statement


def _sid(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", text.title())


def deploy_statements(env: Any, documents: Mapping[str, Mapping[str, Any]], *, backend_url: str,
                      layers: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Every statement the deploy role needs for ``env``, whose synth is ``documents`` (layer -> document)."""
    from shared.components.compute_containers import partition_of
    from shared.dag import order
    from shared.orchestrate.account import ROLE_LAYERS, account_wide_roles, linked_roles

    partition, account, region = partition_of(env.region), env.account_id, env.region
    chosen = list(layers) if layers is not None else order()
    resources = _resources(documents)
    services: set[str] = set()
    dynamic = False
    for resource in resources:
        services.update(services_of_type(resource["type"]))
        dynamic = dynamic or resource["type"] == DYNAMIC_TYPE
    services.update(prefix for prefixes in INVOKE_SERVICES.values() for prefix in prefixes)
    # granted by resource, not service-wide: each by its own statements
    types = {str(resource["type"]) for resource in resources}
    scoped: dict[str, Any] = {
        "kms": kms_statements, "secretsmanager": secret_statements,
        "ecs": lambda env: ecs_statements(env, scaling=SCALING_POLICY_TYPE in types),
        "logs": lambda env: logs_statements(env, broker_groups=bool(types & BROKER_LOG_TYPES)),
        "cloudwatch": lambda env: cloudwatch_statements(env, scaling=SCALING_POLICY_TYPE in types),
        "mq": mq_statements, "elasticloadbalancing": elb_statements}
    present = [service for service in scoped if service in services]
    named = sorted(services & set(NAMED_STAR_ACTIONS))
    services -= {"iam", "s3", "route53", *scoped, *NAMED_STAR_ACTIONS}
    statements: list[dict[str, Any]] = []
    statements.append(_statement("Services", (f"{prefix}:*" for prefix in sorted(services)), ["*"]))
    for service in present:
        statements.extend(scoped[service](env))
    statements.extend(named_statements(env, named))
    statements.extend(route53_statements(partition, resources))
    extra = set(PREFLIGHT_ACTIONS)
    if dynamic:
        extra.update(action for actions in DYNAMIC_ACTIONS.values() for action in actions)
    # what the service-wide grant above already allows is not repeated (IAM counts every character), nor what the
    # logs statements hold (the broker log-group provider's actions only on the broker groups, not on "*")
    extra = {action for action in extra if action.split(":", 1)[0] not in services
             and not (action.startswith("logs:") and "logs" in present)}
    if extra:
        statements.append(_statement("PreflightAndDynamic", extra, ["*"]))

    # IAM: only the roles the stacks create; a role the stacks name by its name, the compute layer's auto-named roles
    # by name pattern and the env's default tags
    role_arn = lambda name: _arn(partition, "iam", "", account, f"role/{name}")  # noqa: E731
    roles = [resource for resource in resources if resource["type"] == "aws:iam/role:Role"]
    tagged = [role for role in (documents.get(TAGGED_ROLE_LAYER) or {}).get("resources", [])
              if role["type"] == "aws:iam/role:Role" and role_name_pattern(role).endswith(AUTONAME_PATTERN)]
    tagged_urns = {role["urn"] for role in tagged}
    names = {role_name_pattern(role) for role in roles if role["urn"] not in tagged_urns}
    names.update(role.role_name for role in account_wide_roles(env, chosen))
    bounded = {"iam:PermissionsBoundary": env_boundary_arn(env)}
    if names:
        statements.append(_statement("PlatformRoles", sorted(set(ROLE_ACTIONS) - set(BOUNDED_ROLE_ACTIONS)),
                                     (role_arn(name) for name in names)))
        statements.append(_statement("PlatformRolesBounded", BOUNDED_ROLE_ACTIONS, (role_arn(name) for name in names),
                                     {"StringEquals": bounded}))
    if tagged:
        statements.extend(tagged_role_statements(env, [role_arn(pattern) for pattern in tagged_role_patterns()]))
    by_service: dict[tuple[str, ...], set[str]] = {}
    tagged_services: set[tuple[str, ...]] = set()
    for role in roles:
        trusted = tuple(trusted_services(role))
        if trusted and role["urn"] in tagged_urns:
            tagged_services.add(trusted)
        elif trusted:
            by_service.setdefault(trusted, set()).add(role_name_pattern(role))
    for trusted, patterns in sorted(by_service.items()):
        statements.append(_statement(
            "PassRoleTo" + "".join(_sid(service.split(".")[0]) for service in trusted), ["iam:PassRole"],
            (role_arn(name) for name in patterns),
            {"StringEquals": {"iam:PassedToService": list(trusted) if len(trusted) > 1 else trusted[0]}}))
    for trusted in sorted(tagged_services):
        statements.append(_statement(
            "PassTaggedRoleTo" + "".join(_sid(service.split(".")[0]) for service in trusted), ["iam:PassRole"],
            [role_arn(pattern) for pattern in tagged_role_patterns()],
            {"StringEquals": {"iam:PassedToService": list(trusted) if len(trusted) > 1 else trusted[0],
                              **resource_tag_condition(env)}}))
    linked_list = linked_roles(env, chosen)
    linked = sorted({role.service for role in linked_list})
    if linked:
        statements.append(_statement(
            "ServiceLinkedRoles", ["iam:CreateServiceLinkedRole"], [role_arn("aws-service-role/*")],
            {"StringEquals": {"iam:AWSServiceName": linked}}))
        # GetRole carries no iam:AWSServiceName: under that condition the preflight's read would be denied. A role
        # that does not exist yet has no path IAM could put in the ARN it authorizes, so the path-less names too: a
        # denied read is only a note, and the preflight would then not create the missing role
        statements.append(_statement("ServiceLinkedRoleReads", ["iam:GetRole"], [
            role_arn("aws-service-role/*"), *(role_arn(role.role_name) for role in linked_list)]))

    # S3: the buckets the stacks name, and the state bucket
    buckets = sorted({bucket_name_pattern(resource) for resource in resources
                      if resource["type"] == "aws:s3/bucket:Bucket"})
    if buckets:
        statements.append(_statement(
            "PlatformBuckets", ["s3:*"],
            [f"{s3_bucket_arn(partition, name)}{suffix}" for name in buckets for suffix in ("", "/*")]))
    statements.extend(state_statements(partition, account, region, backend_url, env.state.secrets_provider))
    if env.messaging.deploy_runner.github_connection_arn and "broker" in chosen:
        connection = env.messaging.deploy_runner.github_connection_arn
        prefix = connection.split(":")[2]
        # a project and webhook that name the connection: CodeBuild uses it with the caller's permissions to reach
        # GitHub (CodeBuild user guide, "GitHub App connections"; the token and use actions are permission-only);
        # only that connection
        statements.append(_statement(
            "GitHubConnection", (f"{prefix}:{action}" for action in (
                "GetConnection", "GetConnectionToken", "PassConnection", "UseConnection")), [connection]))
    if set(chosen) & set(ROLE_LAYERS):
        # the account preflight reads it (shared.orchestrate.account: a missing boundary stops up before any layer)
        statements.append(_statement("RoleBoundaryRead", ["iam:GetPolicy", "iam:GetPolicyVersion"],
                                     [env_boundary_arn(env)]))
    statements.extend(boundary_denials(env))
    statements.extend(tag_held_denials(env))
    return statements


def kms_statements(env: Any) -> list[dict[str, Any]]:
    """KMS, not service-wide: the key actions on the keys of the env's account and region, the alias actions on the
    env's aliases, and the two actions that take only ``*`` (:data:`KMS_KEY_ACTIONS`)."""
    from shared.components.building_blocks import alias_prefix

    return [
        _statement("KmsKeys", KMS_KEY_ACTIONS, [_env_arn(env, "kms", "key/*")]),
        _statement("KmsAliases", KMS_ALIAS_ACTIONS, [_env_arn(env, "kms", f"{alias_prefix(env.name)}*")]),
        _statement("KmsCreateAndList", KMS_STAR_ACTIONS, ["*"]),
    ]


def ecs_statements(env: Any, *, scaling: bool) -> list[dict[str, Any]]:
    """ECS, not service-wide: every action on the env's cluster and what lives in it, on the env's task definition
    families (run only in its cluster), the actions that take only ``*`` (:data:`ECS_STAR_ACTIONS`), and Application
    Auto Scaling's checks of the caller where the synth has a scaling policy (``scaling``:
    :data:`ECS_AUTOSCALING_ACTIONS`)."""
    from shared.components.compute import cluster_name

    cluster = cluster_name(env.name)
    arn = lambda resource: _env_arn(env, "ecs", resource)  # noqa: E731
    statements = [
        _statement("EcsCluster", ["ecs:*"], [arn(f"cluster/{cluster}"),
                                              *(arn(f"{kind}/{cluster}/*") for kind in ECS_IN_CLUSTER)]),
        # RunTask and StartTask take the task definition, the cluster only as ecs:cluster (absent from every other
        # action on a task definition)
        _statement("EcsTaskDefinitions", ["ecs:*"], [arn(f"task-definition/{task_family_prefix(env.name)}*")],
                   {"ArnEqualsIfExists": {"ecs:cluster": arn(f"cluster/{cluster}")}}),
        _statement("EcsReadsAndDeregister", ECS_STAR_ACTIONS, ["*"]),
    ]
    if scaling:
        # ECS guide "IAM permissions required for Amazon ECS service auto scaling": checked on an unnamed resource
        statements.append(_statement("EcsForAutoScaling", ECS_AUTOSCALING_ACTIONS, ["*"]))
    return statements


def secret_statements(env: Any) -> list[dict[str, Any]]:
    """Secrets Manager, not service-wide: every action on the env's secrets (``platform/<env>/...``), the two
    ``*``-only actions a run may call on ``*`` (:data:`SECRET_STAR_ACTIONS`)."""
    statements = [
        _statement("EnvSecrets", ["secretsmanager:*"],
                   [_env_arn(env, "secretsmanager", f"secret:{secret_prefix(env.name)}*")]),
        _statement("SecretsListAndPasswords", SECRET_STAR_ACTIONS, ["*"]),
    ]
    runner = runner_secret_arns(env)
    if runner:
        # the Pulumi passphrase or access token the deploy runner's build reads as this role, after assuming it (the
        # runner's service roles read no secret: shared.components.deploy_runner.BUILDSPEC); a deploy holds them
        # anyway. A customer managed key of theirs is one of the env's account and region: kms_statements decrypts
        statements.append(_statement("DeployRunnerSecrets", ["secretsmanager:GetSecretValue"], runner))
    return statements


def runner_secret_arns(env: Any) -> list[str]:
    """The secrets the deploy runner's build reads the Pulumi passphrase and access token from
    (``messaging.deploy_runner.passphrase_secret``, ``access_token_secret``), as IAM matches them (name, ``-`` and 6
    characters)."""
    from shared.components.deploy_runner import DeployRunnerArgs

    args = DeployRunnerArgs.from_env(env)
    return sorted(args.secret_arn(name) for name in args.secret_variables.values())


def named_resource_arns(env: Any) -> dict[str, list[str]]:
    """IAM prefix -> the ARNs (patterns) of the env's resources of that service (:data:`NAMED_STAR_ACTIONS`)."""
    from shared.broker_names import deploy_project_name, rotation_function_name
    from shared.components.alarms import cost_budget_name, name_prefix, topic_name
    from shared.components.compute_containers import partition_of
    from shared.components.ecr import REPOSITORY_PREFIX
    from shared.components.queue_metrics import publisher_name

    arn = lambda service, resource: _env_arn(env, service, resource)  # noqa: E731
    functions = (rotation_function_name(env.name), publisher_name(env.name))
    return {
        "codebuild": [arn("codebuild", f"project/{deploy_project_name(env.name)}")],
        # a qualified ARN (":<version or alias>") is a function resource too
        "lambda": [arn("lambda", f"function:{name}{qualifier}") for name in functions for qualifier in ("", ":*")],
        "ecr": [arn("ecr", f"repository/{REPOSITORY_PREFIX}/*")],
        "sns": [arn("sns", topic_name(env.name))],
        # the layers' dead-letter queues of undelivered events (shared.components.undelivered_events)
        "sqs": [arn("sqs", f"{name_prefix(env.name)}*-undelivered-events")],
        # the default bus's rules: <env>-ml-<what> (shared.components.alarms.event_rule_name), the queue metrics one
        "events": [arn("events", f"rule/{name_prefix(env.name)}*"),
                   arn("events", f"rule/{publisher_name(env.name)}")],
        # the published contracts (shared.published), each by its name
        "ssm": published_parameter_arns(env),
        # the env's cost budget (a budget's ARN has no region)
        "budgets": [_arn(partition_of(env.region), "budgets", "", env.account_id,
                         f"budget/{cost_budget_name(env.name)}")],
    }


def published_parameter_arns(env: Any) -> list[str]:
    """The SSM parameters holding ``env``'s published contracts (:func:`shared.published.parameter_arn`)."""
    from shared.components.compute_containers import partition_of
    from shared.published import PUBLISHED_FIELDS, parameter_arn

    return [parameter_arn(partition_of(env.region), env.region, env.account_id, env.name, layer)
            for layer in sorted(PUBLISHED_FIELDS)]


#: What the provider calls on the resource policy of a function the env does not own (aws_lambda_permission,
#: terraform-provider-aws internal/service/lambda/permission.go: AddPermission, GetPolicy for the read and the delete's
#: wait, RemovePermission), authorized on the function as named (a qualified ARN: that version or alias)
FUNCTION_PERMISSION_ACTIONS = ("lambda:AddPermission", "lambda:GetPolicy", "lambda:RemovePermission")


def alarm_subscriber_functions(env: Any) -> list[str]:
    """The ``lambda`` alarm subscriptions' functions of the env's account and region, whose resource policy the broker
    layer adds SNS's invoke statement to (shared.components.alarms.AlarmTopic)."""
    from shared.components.alarms import lambda_in

    return sorted({subscription.endpoint for subscription in env.alarms.all_subscriptions()
                   if subscription.protocol == "lambda" and lambda_in(subscription.endpoint, env.account_id,
                                                                      env.region)})


def named_statements(env: Any, services: Iterable[str]) -> list[dict[str, Any]]:
    """CodeBuild, Lambda, ECR, SNS, SQS and EventBridge, not service-wide: every action on the env's resources of each
    of ``services``, and the actions that take only ``*`` (:data:`NAMED_STAR_ACTIONS`); on an alarm subscriber's
    function only its permission (:data:`FUNCTION_PERMISSION_ACTIONS`)."""
    arns = named_resource_arns(env)
    statements = []
    for service in sorted(services):
        label = {"codebuild": "CodeBuild"}.get(service, service.title())
        statements.append(_statement(f"{label}Env", [f"{service}:*"], arns[service]))
        if NAMED_STAR_ACTIONS[service]:
            statements.append(_statement(f"{label}Lists", NAMED_STAR_ACTIONS[service], ["*"]))
        if service == "lambda" and (subscribers := alarm_subscriber_functions(env)):
            statements.append(_statement("AlarmSubscriberPermissions", FUNCTION_PERMISSION_ACTIONS, subscribers))
    return statements


#: The types whose create makes Amazon MQ create a broker log group (shared.components.broker_logs adopts it)
BROKER_LOG_TYPES = frozenset({"aws:mq/broker:Broker"})


def platform_log_prefix(env_name: str) -> str:
    """Every log group the stacks name under ``/platform/`` is ``/platform/<env>/...`` (shared.components.network's
    flow logs, shared.components.compute_plan's service groups, shared.components.task_stops)."""
    return f"/platform/{env_name}/"


def log_group_arns(env: Any) -> list[str]:
    """The ARN patterns of the env's log groups and their streams (:data:`LOGS_STAR_ACTIONS`)."""
    from shared.broker_names import default_log_group_name, deploy_project_name, rotation_function_name
    from shared.components.queue_metrics import publisher_name

    groups = (default_log_group_name("lambda", rotation_function_name(env.name)),
              default_log_group_name("lambda", publisher_name(env.name)),
              default_log_group_name("codebuild", deploy_project_name(env.name)))
    return [_env_arn(env, "logs", f"log-group:{platform_log_prefix(env.name)}*"),
            *(_env_arn(env, "logs", f"log-group:{group}{streams}") for group in groups for streams in ("", ":*"))]


def broker_log_actions() -> list[str]:
    """What the broker's log-group provider calls in CloudWatch Logs (:data:`DYNAMIC_ACTIONS`)."""
    return sorted(action for action in DYNAMIC_ACTIONS["shared.components.broker_logs:BrokerLogGroupProvider"]
                  if action.startswith("logs:"))


def logs_statements(env: Any, *, broker_groups: bool) -> list[dict[str, Any]]:
    """CloudWatch Logs, not service-wide: every action on the env's log groups, the broker log-group provider's on
    Amazon MQ's groups (``broker_groups``), the ``*``-only actions on ``*`` (:data:`LOGS_STAR_ACTIONS`)."""
    statements = [_statement("LogsEnvGroups", ["logs:*"], log_group_arns(env))]
    if broker_groups:
        statements.append(_statement("LogsBrokerGroups", sorted({*broker_log_actions(), *BROKER_LOG_FILTER_ACTIONS}),
                                     [_env_arn(env, "logs", f"log-group:{BROKER_LOG_GROUPS}")]))
    statements.append(_statement("LogsAccountWide", LOGS_STAR_ACTIONS, ["*"]))
    return statements


def alarm_arns(env: Any) -> list[str]:
    """The ARN pattern of the env's alarms (:data:`CLOUDWATCH_STAR_ACTIONS`)."""
    from shared.components.alarms import name_prefix

    return [_env_arn(env, "cloudwatch", f"alarm:{name_prefix(env.name)}*")]


def cloudwatch_statements(env: Any, *, scaling: bool) -> list[dict[str, Any]]:
    """CloudWatch, not service-wide: every action on the env's alarms, the ``*``-only reads, Application Auto Scaling's
    checks of the caller where the synth has a scaling policy (``scaling``: :data:`AUTOSCALING_ALARM_ACTIONS`), and
    PutMetricData only in the queue metrics' namespace."""
    from shared.cloudwatch_metrics import QUEUE_METRICS_NAMESPACE

    statements = [
        _statement("CloudWatchEnvAlarms", ["cloudwatch:*"], alarm_arns(env)),
        _statement("CloudWatchReads", CLOUDWATCH_STAR_ACTIONS, ["*"]),
        _statement("CloudWatchQueueMetrics", ["cloudwatch:PutMetricData"], ["*"],
                   {"StringEquals": {"cloudwatch:namespace": QUEUE_METRICS_NAMESPACE}}),
    ]
    if scaling:
        statements.append(_statement("CloudWatchForAutoScaling", AUTOSCALING_ALARM_ACTIONS, ["*"]))
    return statements


def mq_arns(env: Any) -> list[str]:
    """The ARN patterns of the env's broker (any id) and of the configurations of its account and region."""
    from shared.broker_names import broker_name

    return [_env_arn(env, "mq", f"broker:{broker_name(env.name)}:*"), _env_arn(env, "mq", "configuration:*")]


def mq_statements(env: Any) -> list[dict[str, Any]]:
    """Amazon MQ, not service-wide: every action on the env's broker and the configurations of its account and
    region, the actions with no resource type on ``*`` (:data:`MQ_STAR_ACTIONS`)."""
    return [_statement("MqEnvBroker", ["mq:*"], mq_arns(env)),
            _statement("MqCreateAndList", MQ_STAR_ACTIONS, ["*"])]


def elb_statements(env: Any) -> list[dict[str, Any]]:
    """Elastic Load Balancing, not service-wide: load balancers and target groups by the env's tag, listeners and
    rules unscoped, the reads on ``*`` (:data:`ELB_TAGGED_WRITES`)."""
    arn = lambda resource: _env_arn(env, "elasticloadbalancing", resource)  # noqa: E731
    balancers = [arn("loadbalancer/app/*"), arn("targetgroup/*")]
    listeners = [arn("listener/app/*"), arn("listener-rule/app/*")]
    tags = scope_tags(env)  # the compute layer's, whose gateway they are (shared.components.gateway)
    request = {f"aws:RequestTag/{key}": value for key, value in tags.items()}
    return [
        _statement("ElbCreateTagged", ELB_TAGGED_CREATES, ["*"], {"StringEquals": request}),
        _statement("ElbTagOnCreate", ["elasticloadbalancing:AddTags"], [*balancers, arn("listener/app/*")],
                   {"StringEquals": {**request, "elasticloadbalancing:CreateAction": list(ELB_CREATE_ACTIONS)}}),
        _statement("ElbEnvTagged", ELB_TAGGED_WRITES, balancers,
                   {"StringEquals": {f"aws:ResourceTag/{key}": value for key, value in tags.items()}}),
        _statement("ElbListeners", ELB_LISTENER_ACTIONS, ["*"]),
        _statement("ElbListenerTags", ["elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"], listeners),
        _statement("ElbReads", ELB_READ_ACTIONS, ["*"]),
    ]


def route53_statements(partition: str, resources: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Route 53 for Cloud Map (:data:`ROUTE53_FOR_CLOUD_MAP`): the actions of the synth's Cloud Map types on ``*``,
    ChangeResourceRecordSets only of the private DNS namespaces' names and below (:data:`ROUTE53_RECORD_NAMES_KEY`)."""
    actions = {action for resource in resources for action in ROUTE53_FOR_CLOUD_MAP.get(str(resource["type"]), ())}
    statements = []
    if actions - {"route53:ChangeResourceRecordSets"}:
        statements.append(_statement("Route53ForCloudMap", actions - {"route53:ChangeResourceRecordSets"}, ["*"]))
    if "route53:ChangeResourceRecordSets" in actions:
        names = set()
        for resource in resources:
            if resource["type"] == PRIVATE_DNS_NAMESPACE_TYPE:
                name = (resource.get("inputs") or {}).get("name")
                if not isinstance(name, str) or not name:
                    raise PlatformError(f"the private DNS namespace {resource.get('name')} has no known name in the "
                                        "synth: the deploy role's Route 53 record names are made from it")
                names.add(name.lower().rstrip("."))
        if not names:
            raise PlatformError("Cloud Map services without a private DNS namespace in the synth: the deploy role's "
                                "Route 53 record names are made from the namespace's name")
        statements.append(_statement(
            "Route53CloudMapRecords", ["route53:ChangeResourceRecordSets"],
            [f"arn:{partition}:route53:::hostedzone/*"],
            {"ForAllValues:StringLike": {ROUTE53_RECORD_NAMES_KEY: sorted(
                {pattern for name in names for pattern in (name, f"*.{name}")})}}))
    return statements


def role_sharing_envs(env: Any) -> list[str]:
    """``env``'s name and those of the env files beside it that name the same ``account_id`` and
    ``messaging.deploy_runner.deploy_role_name``: their policies are attached to one role, and IAM lets an explicit
    Deny in any attached policy win (IAM user guide, "Policy evaluation logic"), so a denial held to one env's ``env``
    tag would refuse every other env's changes and deletes through that role. A file that does not load is left out
    (its own load reports it)."""
    from shared.envs import DeployRunnerConfig, env_path, other_env_files

    default_role = DeployRunnerConfig.model_fields["deploy_role_name"].default
    role = env.messaging.deploy_runner.deploy_role_name
    names = {env.name}
    for path, data in other_env_files(env_path(env.name)):
        try:
            runner = (data.get("messaging") or {}).get("deploy_runner") or {}
            if (str(data.get("account_id")) == env.account_id
                    and (runner.get("deploy_role_name") or default_role) == role):
                names.add(path.stem)
        except AttributeError:
            continue
    return sorted(names)


def tag_held_denials(env: Any) -> list[dict[str, Any]]:
    """Explicit denials that hold the service-wide grants' writes (:data:`TAG_HELD_ACTIONS`) to resources carrying the
    env's default tags ``env``, ``managed-by`` and one of the env's layers as ``layer`` (a Deny per key: the keys of one
    condition are ANDed, and any one differing must deny); :data:`TAG_HELD_IF_TAGGED_ACTIONS` only where the resource
    has the key. Each names only the ARNs of the resource types it is held on."""
    from shared.components.compute_containers import partition_of
    from shared.dag import order

    partition = partition_of(env.region)
    tags = scope_tags(env)
    sharing = role_sharing_envs(env)
    wanted: dict[str, str | list[str]] = {"env": sharing if len(sharing) > 1 else tags["env"],
                                          "managed-by": tags["managed-by"], "layer": order()}
    statements = []
    held = {action: kinds for action, kinds in TAG_HELD_ACTIONS.items() if action not in GUARDDUTY_CLEANUP_ACTIONS}
    cleanup = {action: TAG_HELD_ACTIONS[action] for action in GUARDDUTY_CLEANUP_ACTIONS}
    for label, table, tagged in (("", held, False), ("OrGuardDuty", cleanup, False),
                                 ("IfTagged", TAG_HELD_IF_TAGGED_ACTIONS, True)):
        # every region and account: a stolen job's reach is not the env's region (an account's RAM-shared subnets
        # and VPCs are another account's), and no call of a run goes there
        resources = sorted({f"arn:{partition}:{service}:*:*:{TAG_HELD_RESOURCE_ARNS[service][kind]}"
                            for action, kinds in table.items() for kind in kinds
                            for service in [action.split(":", 1)[0]]})
        for key, value in wanted.items():
            statements.append({"Sid": f"DenyUnlessEnvTagged{label}{_sid(key)}", "Effect": "Deny",
                               "Action": sorted(table), "Resource": resources,
                               # a key missing: StringNotEquals holds, so the Deny applies; where only a resource
                               # carrying the key is held, Null false holds only then (...IfExists would deny too)
                               "Condition": {"StringNotEquals": {f"aws:ResourceTag/{key}": value,
                                                                 **(GUARDDUTY_MANAGED if table is cleanup else {})},
                                             **({"Null": {f"aws:ResourceTag/{key}": "false"}} if tagged else {})}})
    # an untagged resource (another team's, no env key) is not tagged into the env outside a create (ec2:CreateAction:
    # EC2 user guide, "Grant permission to tag Amazon EC2 resources during creation"); security groups aside, whose
    # default one the network layer adopts untagged and tags so
    untagged = sorted(f"arn:{partition}:ec2:*:*:{arn}" for kind, arn in TAG_HELD_RESOURCE_ARNS["ec2"].items()
                      if kind not in UNTAGGED_ADOPTED)
    statements.append({"Sid": "DenyEc2NeverCalled", "Effect": "Deny", "Action": list(EC2_NEVER_CALLED),
                       "Resource": ["*"]})
    statements.append({"Sid": "DenyUnlessEnvTaggedUntaggedRetag", "Effect": "Deny", "Action": ["ec2:CreateTags"],
                       "Resource": untagged,
                       "Condition": {"Null": {"aws:ResourceTag/env": "true", "ec2:CreateAction": "true"}}})
    return statements


def secret_prefix(env_name: str) -> str:
    """Every secret the stacks create is named ``platform/<env>/...`` (shared.broker_names, shared.components.broker,
    shared.components.queue_metrics)."""
    return f"platform/{env_name}/"


def task_family_prefix(env_name: str) -> str:
    """The env's task definition families are ``<env>-<unit>`` (shared.components.compute_service)."""
    return f"{env_name}-"


def env_boundary_arn(env: Any) -> str:
    """The ARN of ``env``'s role boundary (:mod:`shared.role_boundary`)."""
    from shared.components.compute_containers import partition_of
    from shared.role_boundary import boundary_arn

    return boundary_arn(partition_of(env.region), env.account_id, env.name)


def boundary_denials(env: Any) -> list[dict[str, Any]]:
    """Explicit denials (they hold whatever else the role is granted): no boundary removed from any role of the
    account, no change to ``env``'s boundary policy (IAM user guide, "Permissions boundaries for IAM entities",
    delegating responsibility: DenyPermBoundaryIAMPolicyAlteration, DenyRemovalOfPermBoundaryFromAnyUserOrRole)."""
    from shared.components.compute_containers import partition_of

    roles = f"arn:{partition_of(env.region)}:iam::{env.account_id}:role/*"
    return [
        {"Sid": "DenyBoundaryRemoval", "Effect": "Deny", "Action": list(BOUNDARY_REMOVAL_ACTIONS), "Resource": [roles]},
        {"Sid": "DenyBoundaryPolicyChange", "Effect": "Deny", "Action": list(BOUNDARY_POLICY_ACTIONS),
         "Resource": [env_boundary_arn(env)]},
    ]


def tagged_role_patterns() -> list[str]:
    """The names the compute layer's auto-named roles take, for any catalog service or canary unit:
    ``*-execution-???????`` and ``*-task-???????``."""
    from shared.mesh_names import execution_role_resource_name, task_role_resource_name

    return [f"{name('*')}{AUTONAME_PATTERN}" for name in (execution_role_resource_name, task_role_resource_name)]


def scope_tags(env: Any) -> dict[str, str]:
    """The default tags (:data:`SCOPE_TAG_KEYS`) the compute stack of ``env`` puts on every role it creates."""
    tags = env.common_tags(TAGGED_ROLE_LAYER)
    return {key: tags[key] for key in SCOPE_TAG_KEYS}


def resource_tag_condition(env: Any) -> dict[str, str]:
    return {f"iam:ResourceTag/{key}": value for key, value in scope_tags(env).items()}


def tagged_role_statements(env: Any, arns: Sequence[str]) -> list[dict[str, Any]]:
    """The compute layer's auto-named roles, by name pattern and the env's default tags (``arns``: the patterns).

    - CreateRole only with the env's tags in the request (the provider sends its default tags in CreateRole's
      ``Tags``, terraform-provider-aws ``resourceRoleCreate``; IAM authorizes the tags of a create as iam:TagRole
      too, so TagRole under the same request-tag condition, and where the role carries a scope tag only if it is
      the env's: a TagRole with the env's tags never takes another env's role of the account into the scope);
    - every other write and PassRole only on a role that carries them (``iam:ResourceTag``);
    - CreateRole, and the writes that grant (:data:`BOUNDED_ROLE_ACTIONS`), only with the env's boundary;
    - TagRole and UntagRole on such a role (the provider's update sends only the changed keys) never of the scope
      keys themselves, so no role leaves or joins the scope by a later tag change;
    - the reads by name pattern alone (a refresh of a role deleted out of band gets NoSuchEntity, not AccessDenied).
    """
    tags = scope_tags(env)
    request = {f"aws:RequestTag/{key}": value for key, value in tags.items()}
    bounded = {"iam:PermissionsBoundary": env_boundary_arn(env)}
    writes = sorted(set(ROLE_ACTIONS) - set(ROLE_READ_ACTIONS) - set(BOUNDED_ROLE_ACTIONS)
                    - {"iam:TagRole", "iam:UntagRole"})
    bounded_writes = sorted(set(BOUNDED_ROLE_ACTIONS) - {"iam:CreateRole"})
    return [
        _statement("ServiceRolesCreate", ["iam:CreateRole"], arns, {"StringEquals": {**request, **bounded}}),
        # the create's tagging: no role carries a tag yet; one that does (another env's of the account, envs in
        # other regions share IAM, or another layer's) must carry these already, so this TagRole takes none over
        _statement("ServiceRolesTagOnCreate", ["iam:TagRole"], arns,
                   {"StringEquals": request, "StringEqualsIfExists": resource_tag_condition(env)}),
        _statement("ServiceRolesByTag", writes, arns, {"StringEquals": resource_tag_condition(env)}),
        _statement("ServiceRolesBoundedByTag", bounded_writes, arns,
                   {"StringEquals": {**resource_tag_condition(env), **bounded}}),
        _statement("ServiceRolesRetag", ["iam:TagRole", "iam:UntagRole"], arns,
                   {"StringEquals": resource_tag_condition(env),
                    # a role's tag keys are case-insensitive (IAM user guide, "Tagging IAM resources"): ENV is env
                    "ForAllValues:StringNotEqualsIgnoreCase": {"aws:TagKeys": list(SCOPE_TAG_KEYS)}}),
        _statement("ServiceRolesRead", ROLE_READ_ACTIONS, arns),
    ]


def state_statements(partition: str, account: str, region: str, backend_url: str, secrets_provider: str | None,
                     *, write: bool = True) -> list[dict[str, Any]]:
    """The state bucket's objects under the backend's prefix (``write``: and the stacks' writes and locks; else read
    only: a preview takes no lock, pkg/backend/diy/backend.go Preview, unlike Update, Refresh and Destroy, never calls
    b.Lock) and the secrets provider's KMS key."""
    state = state_backend(backend_url, secrets_provider)
    statements: list[dict[str, Any]] = []
    if state.bucket:
        under = f"{s3_bucket_arn(partition, state.bucket)}/{state.prefix + '/' if state.prefix else ''}"
        if write:
            statements.append(_statement("StateObjects", ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"],
                                         [f"{under}*"]))
        else:
            # no write, not even a lock file: the role any branch's job assumes could delete a running deploy's lock
            statements.append(_statement("StateObjects", ["s3:GetObject"], [f"{under}*"]))
        statements.append(_statement("StateBucket", ["s3:GetBucketLocation", "s3:ListBucket"],
                                     [s3_bucket_arn(partition, state.bucket)]))
        # The bucket's default encryption may use a KMS key other than the secrets provider's (a passphrase provider
        # with an SSE-KMS bucket, a bucket of another region or account), which S3 uses with the caller's permissions
        # for each checkpoint and lock (S3 user guide, SSE-KMS "Permissions": GenerateDataKey to upload, Decrypt to
        # download). Any key then, but only through S3 and for the state's objects: S3 gives the object's ARN as the
        # encryption context, or the bucket's with an S3 Bucket Key (S3 user guide, SSE-KMS "Encryption context").
        statements.append(_statement(
            "StateBucketEncryption", ["kms:Decrypt", *(["kms:GenerateDataKey"] if write else [])],
            [f"arn:{partition}:kms:*:*:key/*"],
            {"StringLike": {"kms:ViaService": "s3.*.amazonaws.com"},
             "ArnLike": {"kms:EncryptionContext:aws:s3:arn": [f"{under}*", s3_bucket_arn(partition, state.bucket)]}}))
    if state.kms:
        key_region = state.kms.key_region(region)
        # Pulumi wraps each stack's data key with kms:Encrypt (a new stack, change-secrets-provider) and unwraps it
        # with kms:Decrypt on every load; nothing else (gocloud secrets/awskms keeper: Encrypt and Decrypt only; no
        # DescribeKey or GenerateDataKey in pulumi's Go code). GenerateDataKey for the writes into a bucket that
        # encrypts with this key too (S3 user guide, SSE-KMS "Permissions"): the read role decrypts only.
        actions = ["kms:Decrypt"] + (["kms:GenerateDataKey", "kms:Encrypt"] if write else [])
        arn = state.kms.arn
        alias = state.kms.alias
        if alias:
            # an alias, by name or ARN, is no policy resource for Encrypt/Decrypt: the key it names is, matched by
            # kms:ResourceAliases (KMS developer guide, "Use aliases to control access to KMS keys")
            statements.append(_statement(
                "StateKey", actions,
                [_arn(arn["partition"] if arn else partition, "kms", key_region, arn["account"] if arn else account,
                      "key/*")],
                {"ForAnyValue:StringEquals": {"kms:ResourceAliases": alias}}))
        elif arn:
            statements.append(_statement("StateKey", actions, [state.kms.key]))
        else:
            statements.append(_statement("StateKey", actions,
                                         [_arn(partition, "kms", key_region, account, f"key/{state.kms.key}")]))
    return statements


def read_statements(env: Any, documents: Mapping[str, Mapping[str, Any]], *, backend_url: str) -> list[dict[str, Any]]:
    """What the read-only role needs besides AWS's ``ReadOnlyAccess``: the state (read) and the secrets provider's key
    (decrypt), less the states of :data:`shared.dag.SECRET_STATE_LAYERS` (:func:`secret_state_denials`), and the
    published contracts of those layers (:mod:`shared.published`), which compute's preview reads instead. No secret
    value: ``ReadOnlyAccess`` grants none, and the only preview that read any (messaging's: the broker admin secret,
    and its SecretVersions' values on its refresh) is no pull request's (:func:`shared.dag.pull_request_layers`)."""
    from shared.components.compute_containers import partition_of

    partition, account, region = partition_of(env.region), env.account_id, env.region
    statements = state_statements(partition, account, region, backend_url, env.state.secrets_provider, write=False)
    state = state_backend(backend_url, env.state.secrets_provider)
    statements += read_denials(env, _resources(documents), state.bucket)
    statements += secret_state_denials(partition, state)
    # what a pull request's preview of compute reads of broker and messaging instead of their states (shared.published)
    published = published_parameter_arns(env)
    statements.append(_statement("PublishedContracts", ["ssm:GetParameter"], published))
    # and no other parameter's value: ReadOnlyAccess grants ssm:Get* on *, and a SecureString under the AWS managed
    # aws/ssm key decrypts for any principal of the account that may call SSM (an AWS managed key's policy allows
    # its use through the service), so a team's own secrets there would be open to any branch's job
    statements.append({"Sid": "NoOtherParameterReads", "Effect": "Deny", "Action": list(READ_DENIED_PARAMETER_ACTIONS),
                       "NotResource": published})
    return statements


def secret_state_denials(partition: str, state: StateBackend) -> list[dict[str, Any]]:
    """Deny the read-only role every object of the self-managed backend that holds a state of the layers in
    :data:`shared.dag.SECRET_STATE_LAYERS`, in any env sharing the backend: the checkpoint (``<stack>.json``, or
    ``.json.gz``/``.json.zst`` when compressed, and its ``.bak``), the history's checkpoints, the backups and an
    update's journal (pkg/backend/diy/store.go, projectReferenceStore: StackBasePath, HistoryDir, BackupDir,
    JournalDir, each under ``.pulumi/<stacks|history|backups|journal>/<project>/``; the project is the layer, its
    Pulumi.yaml ``name``). A deny, since ``ReadOnlyAccess`` allows ``s3:Get*`` on ``*``, versions too. The legacy
    layout, which has no project directory, the orchestrator refuses. None for another backend (Pulumi Cloud: its
    stack permissions, README "CI/CD (GitHub Actions)")."""
    from shared.dag import SECRET_STATE_LAYERS

    if not state.bucket:
        return []
    root = f"{s3_bucket_arn(partition, state.bucket)}/{state.prefix + '/' if state.prefix else ''}.pulumi"
    resources = [f"{root}/{folder}/{layer}/*" for layer in sorted(SECRET_STATE_LAYERS)
                 for folder in ("stacks", "history", "backups", "journal")]
    return [{**_statement("NoSecretStateReads", READ_DENIED_OBJECT_ACTIONS, resources), "Effect": "Deny"}]


#: What ``ReadOnlyAccess`` reads beyond any preview's or gate's need: the objects of the platform's buckets (model
#: artifacts; ``s3:Get*`` on ``*``) and the events of its log groups (the services' container logs, the deploy
#: runner's build output; ``logs:Get*``, ``FilterLogEvents``, ``StartQuery``, ``StartLiveTail`` on ``*``). No preview
#: reads them (a program's reads are invokes and refreshes of its own resources; the orchestrator's own S3 reads are
#: the state's lock files) and no promotion gate does (ECS and ECR), yet the read role is assumed by a ``pull_request``
#: job of any branch.
READ_DENIED_OBJECT_ACTIONS = ("s3:GetObject", "s3:GetObjectAttributes", "s3:GetObjectVersion")
READ_DENIED_LOG_ACTIONS = ("logs:FilterLogEvents", "logs:GetLogEvents", "logs:StartLiveTail")
#: Logs Insights, on ``*``: results, whoever ran the query (an operator's over the container logs: README "Alarms"),
#: kept for days and listed by DescribeQueries, whose requests name a query id or a record pointer, no log group
#: (CloudWatch Logs API reference, GetQueryResults, GetLogRecord), and queries, which may name none either (a SOURCE
#: command in the query string selects groups by prefix: botocore logs StartQuery). No preview or gate queries.
READ_DENIED_QUERY_ACTIONS = ("logs:GetLogRecord", "logs:GetQueryResults", "logs:StartQuery")
#: An https alarm subscription's whole endpoint, basic-auth password included, on ``*``: ListSubscriptionsByTopic
#: lists the URL without user and password, GetSubscriptionAttributes returns it whole ("HTTPS URLs are only
#: retrievable from the Amazon SNS GetSubscriptionAttributes API action": SNS developer guide, "Fanout Amazon SNS
#: notifications to HTTPS endpoints"), and ``ReadOnlyAccess`` grants ``sns:Get*``. Only a refresh of broker's
#: subscriptions reads it, which no pull request previews; the account preflight lists (PREFLIGHT_ACTIONS).
READ_DENIED_SUBSCRIPTION_ACTIONS = ("sns:GetSubscriptionAttributes",)
#: SSM parameter value reads (botocore ssm: GetParameter, GetParameters, GetParametersByPath, GetParameterHistory),
#: denied to the read-only role on every parameter but the published contracts (:func:`read_statements`)
READ_DENIED_PARAMETER_ACTIONS = ("ssm:GetParameter", "ssm:GetParameterHistory", "ssm:GetParameters",
                                 "ssm:GetParametersByPath")


def read_denials(env: Any, resources: Sequence[Mapping[str, Any]], state_bucket: str | None) -> list[dict[str, Any]]:
    """Explicit denials for the read-only role (:data:`READ_DENIED_OBJECT_ACTIONS`, :data:`READ_DENIED_LOG_ACTIONS`,
    :data:`READ_DENIED_QUERY_ACTIONS`, :data:`READ_DENIED_SUBSCRIPTION_ACTIONS`): the objects of the buckets the synth
    names (never the state bucket: a preview reads the state), the env's log groups' events (:func:`log_group_arns`),
    any Logs Insights query's results and any SNS subscription's whole endpoint. A deny, since ``ReadOnlyAccess``
    allows them on ``*``."""
    from fnmatch import fnmatchcase

    from shared.components.compute_containers import partition_of

    partition = partition_of(env.region)
    patterns = {bucket_name_pattern(resource) for resource in resources if resource["type"] == "aws:s3/bucket:Bucket"}
    buckets = sorted(pattern for pattern in patterns if not (state_bucket and fnmatchcase(state_bucket, pattern)))
    # and Amazon MQ's broker logs: RabbitMQ's general log names users, client addresses and failed sign-ins
    broker_logs = [_env_arn(env, "logs", f"log-group:{BROKER_LOG_GROUPS}")]
    denials = [{**_statement("NoLogEventReads", READ_DENIED_LOG_ACTIONS, [*log_group_arns(env), *broker_logs]),
                "Effect": "Deny"},
               {**_statement("NoQueryResultReads", READ_DENIED_QUERY_ACTIONS, ["*"]), "Effect": "Deny"},
               {**_statement("NoSubscriptionEndpointReads", READ_DENIED_SUBSCRIPTION_ACTIONS, ["*"]), "Effect": "Deny"}]
    if buckets:
        denials.insert(0, {**_statement("NoPlatformObjectReads", READ_DENIED_OBJECT_ACTIONS,
                                        [f"{s3_bucket_arn(partition, name)}/*" for name in buckets]), "Effect": "Deny"})
    return denials


def split_policies(statements: Sequence[dict[str, Any]], base_name: str) -> list[ManagedPolicy]:
    """The statements in order over as few managed policies as fit IAM's size quota, named ``<base>-1`` ..."""
    groups: list[list[dict[str, Any]]] = [[]]
    for statement in statements:
        single = {"Version": "2012-10-17", "Statement": [statement]}
        if policy_size(single) > MANAGED_POLICY_MAX_CHARS:
            raise PlatformError(f"statement {statement['Sid']} alone exceeds IAM's {MANAGED_POLICY_MAX_CHARS} "
                                "characters of a managed policy")
        candidate = {"Version": "2012-10-17", "Statement": [*groups[-1], statement]}
        if groups[-1] and policy_size(candidate) > MANAGED_POLICY_MAX_CHARS:
            groups.append([])
        groups[-1].append(statement)
    policies = [ManagedPolicy(f"{base_name}-{index}", {"Version": "2012-10-17", "Statement": group})
                for index, group in enumerate(groups, start=1)]
    if len(policies) > MANAGED_POLICIES_PER_ROLE:
        raise PlatformError(f"{len(policies)} managed policies; a role takes {MANAGED_POLICIES_PER_ROLE} by default")
    return policies


def kept_documents(folder: Path, base_name: str) -> list[tuple[Path, list[dict[str, Any]]]]:
    """The statements of the policy files ``<base_name>-<n>.json`` in ``folder`` (as ``--out`` wrote them, or as
    ``aws iam get-policy-version`` prints them); a file that is not such a policy of Allow and Deny statements with
    ``Action`` and ``Resource`` is refused (exit 2, naming it)."""
    if not folder.is_dir():
        raise UsageError(f"--keep {folder}: not a folder (the policy files attached now, as --out wrote them)")
    found: list[tuple[Path, list[dict[str, Any]]]] = []
    for path in sorted(folder.glob(f"{base_name}-*.json")):
        if not re.fullmatch(rf"{re.escape(base_name)}-\d+\.json", path.name):
            continue
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise UsageError(f"--keep {path}: not a readable JSON policy ({error})") from None
        if isinstance(document, dict) and isinstance(document.get("PolicyVersion"), dict):
            document = document["PolicyVersion"].get("Document")  # aws iam get-policy-version
        listed = document.get("Statement") if isinstance(document, dict) else None
        listed = [listed] if isinstance(listed, dict) else listed
        if not isinstance(listed, list) or not all(
                isinstance(item, dict) and item.get("Effect") in ("Allow", "Deny") and "Action" in item
                and "Resource" in item
                and not {"NotAction", "NotResource", "NotPrincipal", "Principal"} & set(item) for item in listed):
            raise UsageError(f"--keep {path}: not a policy of Allow and Deny statements with Action and Resource (the "
                             "files nox -s roles --out writes)")
        found.append((path, listed))
    if not found:
        raise UsageError(f"--keep {folder}: holds no {base_name}-<n>.json (the files nox -s roles --out writes)")
    return found


def keep_statements(statements: Sequence[dict[str, Any]],
                    kept: Iterable[Sequence[Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """``statements`` with the grants of ``kept`` (the policies attached now) added: a kept statement joins the one
    of its Sid with the same condition (actions and resources united), else it is added under a Sid of its own.
    For the ``up`` of a change that removes resources (a catalog service, the public gateway, App Mesh, an
    Amazon MQ broker): the new synth no longer names them, but that ``up`` deletes them. A kept role create or policy
    write (:data:`BOUNDED_ROLE_ACTIONS`) not held to the role boundary is dropped; kept denials are made anew."""
    merged = [dict(statement) for statement in statements]
    sids = {statement["Sid"]: statement for statement in merged}
    for listed in kept:
        for old in listed:
            if old.get("Effect") == "Deny":
                continue  # the denials are made anew (boundary_denials, tag_held_denials); kept, one would be an Allow
            # a Sid is alphanumeric already (IAM's rule): taken as it is, or it never meets its own statement again
            sid = str(old.get("Sid") or "Kept")
            sid = sid if re.fullmatch(r"[A-Za-z0-9]+", sid) else _sid(sid) or "Kept"
            actions, resources = _as_list(old["Action"]), _as_list(old["Resource"])
            if "iam:PermissionsBoundary" not in json.dumps(old.get("Condition") or {}):
                # a grant of before the role boundary: a role's create or policy write without it is never kept (the
                # deletes of removed resources need none)
                actions = [action for action in actions if action not in BOUNDED_ROLE_ACTIONS]
                if not actions:
                    continue
            current = sids.get(sid)
            if current is not None and current.get("Condition") == old.get("Condition"):
                current["Action"] = sorted(set(current["Action"]) | set(actions))
                current["Resource"] = sorted(set(current["Resource"]) | set(resources))
                continue
            unique, index = f"Kept{sid}", 2
            while unique in sids:
                unique, index = f"Kept{sid}{index}", index + 1
            added = _statement(unique, actions, resources, old.get("Condition"))
            merged.append(added)
            sids[unique] = added
    return merged


def _as_list(value: Any) -> list[str]:
    return [str(item) for item in (value if isinstance(value, list) else [value])]


def policy_base_name(env_name: str, read_only: bool) -> str:
    """The managed policies' names are ``<base>-1`` ... (:func:`split_policies`)."""
    return f"ml-platform-{env_name}-{'read' if read_only else 'deploy'}"


def stale_policies(kept: Iterable[Path], policies: Sequence[ManagedPolicy]) -> list[str]:
    """The kept policy files' names (attached now) that the new split no longer fills: the statements fit in fewer
    policies, so ``<base>-N`` stays attached, with its old grants, until someone detaches and deletes it."""
    current = {policy.name for policy in policies}
    return sorted({path.stem for path in kept} - current, key=lambda name: (len(name), name))


def deploy_policies(env_name: str, *, environ: Mapping[str, str] | None = None,
                    documents: Mapping[str, Mapping[str, Any]] | None = None,
                    read_only: bool = False, keep: Path | None = None) -> list[ManagedPolicy]:
    """The deploy role's managed policies for ``env_name`` (``read_only``: the read-only role's, besides AWS's
    ``ReadOnlyAccess``); the env's synth is made here unless ``documents`` is given. ``keep``: a folder of the
    policy files attached now, whose grants are kept too (:func:`keep_statements`)."""
    from shared.envs import load_env
    from shared.orchestrate.automation import resolve_backend
    from shared.synth.engine import synth_env

    env = load_env(env_name)
    base_name = policy_base_name(env.name, read_only)
    kept = [listed for _path, listed in kept_documents(keep, base_name)] if keep is not None else []
    documents = documents if documents is not None else synth_env(env_name)
    backend = resolve_backend(env, os.environ if environ is None else environ)
    if read_only:
        statements = read_statements(env, documents, backend_url=backend.url)
    else:
        statements = deploy_statements(env, documents, backend_url=backend.url)
    return split_policies(keep_statements(statements, kept), base_name)


def boundary_policy(env: Any) -> ManagedPolicy:
    """``env``'s role boundary (:mod:`shared.role_boundary`) as one managed policy within IAM's size quota."""
    from shared.role_boundary import boundary_document, boundary_policy_name

    policy = ManagedPolicy(boundary_policy_name(env.name), boundary_document(env))
    if policy.size > MANAGED_POLICY_MAX_CHARS:
        raise PlatformError(f"the role boundary {policy.name} has {policy.size} characters; IAM takes "
                            f"{MANAGED_POLICY_MAX_CHARS}")
    return policy


def backend_note(env: Any, environ: Mapping[str, str]) -> str | None:
    """What the printed policies leave out of the state backend (None: an S3 backend, whose bucket they name)."""
    from shared.orchestrate.automation import resolve_backend

    backend = resolve_backend(env, environ)
    if backend.url.startswith("s3://"):
        return None
    if backend.url.startswith("file://"):
        return ("no shared state backend (neither PULUMI_BACKEND_URL nor state.backend_url): the policies name no "
                "state bucket; set the one the deploys use and run this again")
    return f"the state backend {backend.url} is not S3: the policies grant nothing on it"


def _parser() -> argparse.ArgumentParser:
    from shared.cli import UsageParser

    parser = UsageParser(prog="nox -s roles --", description=__doc__.split("\n\n")[0])
    parser.add_argument("env", metavar="ENV")
    parser.add_argument("--read-only", action="store_true",
                        help="the read-only role's policies (previews, promotion gates), besides ReadOnlyAccess")
    parser.add_argument("--json", action="store_true", help="one JSON object: role, policies and documents")
    parser.add_argument("--out", type=Path, help="write each policy to DIR/<policy name>.json")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="keep the grants of the policy files in DIR too (those attached now, as --out wrote "
                             "them): for the up of a change that removes resources, which deletes them")
    parser.add_argument("--role", metavar="NAME",
                        help="the role to attach them to in the printed commands (default: the env's "
                             "messaging.deploy_runner.deploy_role_name; with --read-only, the read-only role, which "
                             "no env key names)")
    return parser


def max_session_seconds(env: Any) -> int:
    """The deploy role's MaxSessionDuration, as long as the env's longest deploy job asks (IAM's default hour makes STS
    refuse the workflows' role-duration-seconds; shared.workflows.deploy_session_seconds)."""
    from shared.catalog import load_catalog
    from shared.workflows import deploy_session_seconds

    return deploy_session_seconds(env, load_catalog())


def deploy_runner_role_arn(env: Any, name: str) -> str:
    """The ARN of env ``name``'s deploy runner role (the one start-build runs as) in ``env``'s account."""
    from shared.broker_names import deploy_runner_role_name
    from shared.components.compute_containers import partition_of
    from shared.components.deploy_runner import role_arn

    return role_arn(partition_of(env.region), env.account_id, deploy_runner_role_name(name))


def shared_role_counts(env_name: str, count: int, sharing: Sequence[str],
                       counted: Callable[[str], int] | None = None) -> tuple[dict[str, int], list[str]]:
    """The managed policies each env sharing a deploy role attaches to it (``env_name``'s ``count``, each of
    ``sharing``'s by :func:`deploy_policies` unless ``counted`` says), and the envs that could not be counted, each
    with why."""
    count_of = counted or (lambda name: len(deploy_policies(name)))
    counts = {env_name: count}
    unknown = []
    for name in sharing:
        try:
            counts[name] = count_of(name)
        except PlatformError as error:  # its own `nox -s roles` says why
            unknown.append(f"{name} ({error})")
    return counts, unknown


def shared_role_count(role: str | None, env_name: str, count: int, sharing: Sequence[str],
                      counted: Callable[[str], int] | None = None) -> str:
    """How many managed policies the envs sharing ``role`` attach to it together (:func:`shared_role_counts`),
    against IAM's 10 per role by default: the attach past it fails with LimitExceeded, after the ones before it."""
    counts, unknown = shared_role_counts(env_name, count, sharing, counted)
    total = sum(counts.values())
    line = (f"# together they attach {total} managed policies to {role} "
            f"({', '.join(f'{name} {n}' for name, n in sorted(counts.items()))}"
            f"{'; not counted: ' + ', '.join(unknown) if unknown else ''}); IAM attaches "
            f"{MANAGED_POLICIES_PER_ROLE} to a role by default")
    if total > MANAGED_POLICIES_PER_ROLE:
        line += (": past that, attach-role-policy fails with LimitExceeded. Before attaching, raise the account's "
                 "quota \"Managed policies per role\" (Service Quotas, IAM), or give an env a deploy_role_name of "
                 "its own")
    return line


def session_line(env: Any, role: str) -> str:
    """The command that gives the deploy role ``role`` its :func:`max_session_seconds`."""
    return (f"# its sessions last as long as a deploy job may (credentials are not renewed midway): "
            f"aws iam update-role --role-name {role} --max-session-duration {max_session_seconds(env)}")


def main(argv: list[str]) -> int:
    from shared.cli import check_output_path, write_atomically
    from shared.components.compute_containers import partition_of
    from shared.envs import IAM_ROLE_NAME, load_env
    from shared.role_boundary import update_commands

    args = _parser().parse_args(argv)
    if args.role is not None and not re.fullmatch(IAM_ROLE_NAME, args.role):  # as envs.py's deploy_role_name
        # '' is no role: it would fall back to the default silently, and the printed commands name another role
        default = ("leave --role out to print no attach commands (no env key names the read-only role)"
                   if args.read_only else "leave --role out for the env's messaging.deploy_runner.deploy_role_name")
        raise UsageError(f"--role {args.role!r}: not an IAM role name (1 to 64 ASCII letters, digits and +=,.@_-; IAM "
                         f"roleNameType); name the role the policies are attached to, or {default}")
    if args.json and args.out is not None:  # --json prints the documents; the files would silently not be written
        raise UsageError("--out and --json do not go together: --json prints every document as one JSON object, "
                         "--out writes each policy to DIR/<policy name>.json")
    env = load_env(args.env)
    if args.out is not None:
        check_output_path(args.out, "--out", directory=True)
    policies = deploy_policies(env.name, read_only=args.read_only, keep=args.keep)
    kept = [path for path, _listed in kept_documents(args.keep, policy_base_name(env.name, args.read_only))] \
        if args.keep is not None else []
    stale = stale_policies(kept, policies)
    role: str | None = args.role or (None if args.read_only else env.messaging.deploy_runner.deploy_role_name)
    note = backend_note(env, os.environ)
    policy_arn = lambda name: f"arn:{partition_of(env.region)}:iam::{env.account_id}:policy/{name}"  # noqa: E731
    boundary = None if args.read_only else boundary_policy(env)
    sharing = [] if args.read_only else [name for name in role_sharing_envs(env) if name != env.name]
    if args.json:
        counts, unknown = shared_role_counts(env.name, len(policies), sharing) if sharing else ({}, [])
        print(json.dumps({"env": env.name, "account_id": env.account_id, "role": role, "note": note,
                          **({"shared_role": {"policies": counts, "total": sum(counts.values()),
                                              "not_counted": unknown}} if sharing else {}),
                          **({} if args.read_only else {"max_session_duration": max_session_seconds(env)}),
                          **({"boundary": {"name": boundary.name, "arn": policy_arn(boundary.name),
                                           "size": boundary.size, "document": boundary.document}}
                             if boundary else {}),
                          "policies": [{"name": policy.name, "size": policy.size, "document": policy.document}
                                       for policy in policies],
                          "detach": [{"name": name, "arn": policy_arn(name)} for name in stale]}, indent=2))
        return 0
    if args.out is not None:
        write_atomically({args.out / f"{policy.name}.json": json.dumps(policy.document, indent=2) + "\n"
                          for policy in [*([boundary] if boundary else []), *policies]})
        for name in stale:  # --keep and --out the same folder: a stale file there would be kept again next time
            (args.out / f"{name}.json").unlink(missing_ok=True)
    what = "The read-only role" if args.read_only else "The deploy role"
    print(f"# {what}{' ' + role if role else ''} of {env.name} (account {env.account_id}): {len(policies)} managed "
          f"{'policy' if len(policies) == 1 else 'policies'}, each within IAM's {MANAGED_POLICY_MAX_CHARS} characters")
    if note:
        print(f"# note: {note}")
    if sharing:
        print(f"# {role} also deploys {', '.join(sharing)} (same account_id and deploy_role_name): these policies' "
              "EC2, Cloud Map and Application Auto Scaling denials admit their resources too; when an env joins or "
              "leaves the role, print and update every one's policies")
        # One role, several GitHub environments: the OIDC token's sub names the job's environment, so a trust naming
        # one env's refuses the other's deploy jobs at their credential step (Not authorized to perform
        # sts:AssumeRoleWithWebIdentity); each env's deploy runner role assumes it too (README, CI/CD, "Set up once").
        every = sorted([env.name, *sharing])
        print(shared_role_count(role, env.name, len(policies), sharing))
        print(f"# its trust policy names every one of them: token.actions.githubusercontent.com:sub "
              f"{', '.join(f'<repo-subject>:environment:{name}' for name in every)} (<repo-subject>: "
              "repo:<org>@<org_id>/<repo>@<repo_id> on GitHub's immutable subject claims, else repo:<org>/<repo>: "
              "README, CI/CD, Set up once), and aws:PrincipalArn "
              f"{', '.join(deploy_runner_role_arn(env, name) for name in every)}")
    if role is not None and not args.read_only:
        print(session_line(env, role))
    if role is None:
        print("# the read-only role is named by no env key: run this again with --role NAME (the role the previews "
              "and promotion gates assume) for its attach commands")
    elif args.read_only:
        print(f"#   and AWS's: aws iam attach-role-policy --role-name {role} "
              f"--policy-arn arn:{partition_of(env.region)}:iam::aws:policy/ReadOnlyAccess")
    if boundary is not None:
        source = f"file://{args.out / (boundary.name + '.json')}" if args.out else f"file://{boundary.name}.json"
        arn = policy_arn(boundary.name)
        print(f"# {boundary.name} ({boundary.size} characters): the permissions boundary every role of {env.name}'s "
              "stacks carries; create it (and update it) with your administrator credentials, before the first up: "
              "the deploy role may not")
        print(f"#   aws iam create-policy --policy-name {boundary.name} --policy-document {source}")
        print(f"#   (to update it: {update_commands(arn, source)})")
        if args.out is None:
            print(json.dumps(boundary.document, indent=2))
    for policy in policies:
        source = f"file://{args.out / (policy.name + '.json')}" if args.out else f"file://{policy.name}.json"
        print(f"# {policy.name} ({policy.size} characters)")
        arn = policy_arn(policy.name)
        print(f"#   aws iam create-policy --policy-name {policy.name} --policy-document {source}")
        if role is not None:
            print(f"#   aws iam attach-role-policy --role-name {role} --policy-arn {arn}")
        # IAM user guide, "Versioning IAM policies": an existing policy takes a new default version (5 at most)
        print(f"#   (to update it: aws iam create-policy-version --policy-arn {arn} --policy-document {source} "
              "--set-as-default; IAM keeps 5 versions, delete the oldest with aws iam delete-policy-version first)")
        if args.out is None:
            print(json.dumps(policy.document, indent=2))
    for name in stale:
        # IAM user guide, "Deleting IAM policies": detach it from every identity, delete its non-default versions
        detach = (f"aws iam detach-role-policy --role-name {role} --policy-arn {policy_arn(name)}" if role
                  else "detach it from the read-only role (--role NAME prints the command)")
        print(f"# {name}: attached now and no longer needed (its grants are in the policies above): once they are "
              f"updated, {detach}; then delete its non-default versions (aws iam list-policy-versions) and "
              f"aws iam delete-policy --policy-arn {policy_arn(name)}")
    return 0


if __name__ == "__main__":
    from shared.cli import exit_now, run_main

    exit_now(run_main(main))
