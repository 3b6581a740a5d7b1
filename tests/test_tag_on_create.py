"""Tags passed at create time are authorized on their own: the deploy role must hold each taggable resource's
tagging action, with the request context its create sends (the env's default tags as ``aws:RequestTag``, the
service's create-action key), or the first ``up`` stops at that create with AccessDenied (the resource is not made).

Sources, per service (the tag-on-create rule and its condition key):

- EC2: ``ec2:CreateTags`` with ``ec2:CreateAction`` = the create API (EC2 user guide, "Grant permission to tag
  Amazon EC2 resources during creation");
- ECS: ``ecs:TagResource`` with ``ecs:CreateAction`` for CreateCluster, CreateService, RegisterTaskDefinition (ECS
  developer guide, "Grant permission to tag resources on creation");
- Elastic Load Balancing: ``elasticloadbalancing:AddTags`` with ``elasticloadbalancing:CreateAction`` (ELB user
  guide, "Identity-based policies ... Resource tagging");
- CloudWatch Logs (botocore logs ``CreateLogGroupRequest.tags``), CloudWatch (``PutMetricAlarmInput.Tags``), KMS
  (``CreateKeyRequest.Tags``), SNS (``CreateTopicInput.Tags``), S3 (``CreateBucketConfiguration.Tags``: s3:TagResource):
  the service's TagResource;
- IAM: ``iam:TagRole`` for CreateRole with Tags (IAM user guide, "Permissions required for tagging IAM resources");
- Amazon MQ: ``mq:CreateTags``; CodeBuild: no tagging action, CreateProject itself with ``aws:RequestTag``; the others
  (Lambda, Secrets Manager, ECR, Cloud Map, App Mesh, EventBridge, Application Auto Scaling) their TagResource
  (Service Authorization Reference, each service's TagResource "Dependent actions"/condition keys).

The roles the stacks create may tag nothing: the ABAC scopes keyed on tags (the deploy role's compute roles by
``env``/``layer``/``managed-by``, a task role's scale-in protection by its tasks' ``service``/``version``) would
otherwise be theirs to rewrite.
"""

from __future__ import annotations

from typing import Any

import botocore.session

from shared import deploy_role
from shared.api_model import CALLS
from shared.components.compute import cluster_name
from shared.policy.taggable import load_taggable
from shared.role_boundary import boundary_document
from tests import iam_eval
from tests.deploy_role_helpers import default_tags, each_resource, layer_provider, statements_of
from tests.test_deploy_role import _boto3_calls, _dynamic_providers

#: types tagged by their ARN's service's TagResource, with no create-action condition -> the new resource's ARN, from
#: (region, account, name)
TAG_RESOURCE: dict[str, str] = {
    "aws:appautoscaling/target:Target": "arn:aws:application-autoscaling:{region}:{account}:scalable-target/{name}",
    "aws:appmesh/mesh:Mesh": "arn:aws:appmesh:{region}:{account}:mesh/{name}",
    "aws:appmesh/route:Route": "arn:aws:appmesh:{region}:{account}:mesh/m/virtualRouter/r/route/{name}",
    "aws:appmesh/virtualNode:VirtualNode": "arn:aws:appmesh:{region}:{account}:mesh/m/virtualNode/{name}",
    "aws:appmesh/virtualRouter:VirtualRouter": "arn:aws:appmesh:{region}:{account}:mesh/m/virtualRouter/{name}",
    "aws:appmesh/virtualService:VirtualService": "arn:aws:appmesh:{region}:{account}:mesh/m/virtualService/{name}",
    # AWS Budgets: CreateBudget with ResourceTags also takes budgets:TagResource on the budget (Service Authorization
    # Reference, AWS Budgets), whose ARN has no region
    "aws:budgets/budget:Budget": "arn:aws:budgets::{account}:budget/{name}",
    "aws:cloudwatch/eventRule:EventRule": "arn:aws:events:{region}:{account}:rule/{name}",
    "aws:cloudwatch/logGroup:LogGroup": "arn:aws:logs:{region}:{account}:log-group:{name}",
    "aws:cloudwatch/metricAlarm:MetricAlarm": "arn:aws:cloudwatch:{region}:{account}:alarm:{name}",
    "aws:ecr/repository:Repository": "arn:aws:ecr:{region}:{account}:repository/{name}",
    "aws:kms/key:Key": "arn:aws:kms:{region}:{account}:key/00000000-0000-0000-0000-000000000000",
    "aws:lambda/function:Function": "arn:aws:lambda:{region}:{account}:function:{name}",
    "aws:s3/bucket:Bucket": "arn:aws:s3:::{name}",
    "aws:secretsmanager/secret:Secret": "arn:aws:secretsmanager:{region}:{account}:secret:{name}-AbCdEf",
    "aws:servicediscovery/httpNamespace:HttpNamespace": "arn:aws:servicediscovery:{region}:{account}:namespace/ns-0123",
    "aws:servicediscovery/privateDnsNamespace:PrivateDnsNamespace":
        "arn:aws:servicediscovery:{region}:{account}:namespace/ns-0123",
    "aws:servicediscovery/service:Service": "arn:aws:servicediscovery:{region}:{account}:service/srv-0123",
    "aws:sns/topic:Topic": "arn:aws:sns:{region}:{account}:{name}",
}
#: EC2 types (ec2:CreateTags, ec2:CreateAction) -> their ARN's resource type and id prefix
EC2_ARN_RESOURCES: dict[str, str] = {
    "aws:ec2/eip:Eip": "elastic-ip/eipalloc",
    "aws:ec2/flowLog:FlowLog": "vpc-flow-log/fl",
    "aws:ec2/internetGateway:InternetGateway": "internet-gateway/igw",
    "aws:ec2/natGateway:NatGateway": "natgateway/nat",
    "aws:ec2/routeTable:RouteTable": "route-table/rtb",
    "aws:ec2/securityGroup:SecurityGroup": "security-group/sg",
    "aws:ec2/subnet:Subnet": "subnet/subnet",
    "aws:ec2/vpc:Vpc": "vpc/vpc",
    "aws:ec2/vpcEndpoint:VpcEndpoint": "vpc-endpoint/vpce",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": "security-group-rule/sgr",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": "security-group-rule/sgr",
}
_ELB = "arn:aws:elasticloadbalancing:{region}:{account}"
#: types whose service names the create API in its condition key <service>:CreateAction (the type's call in
#: shared.api_model) -> (the tagging action, the new resource's ARN)
TAGGED_BY_CREATE_ACTION: dict[str, tuple[str, str]] = {
    **{type_: ("ec2:CreateTags", f"arn:aws:ec2:{{region}}:{{account}}:{resource}-0123456789abcdef0")
       for type_, resource in EC2_ARN_RESOURCES.items()},
    "aws:ecs/cluster:Cluster": ("ecs:TagResource", "arn:aws:ecs:{region}:{account}:cluster/{name}"),
    "aws:ecs/service:Service": ("ecs:TagResource", "arn:aws:ecs:{region}:{account}:service/{cluster}/{name}"),
    "aws:ecs/taskDefinition:TaskDefinition":
        ("ecs:TagResource", "arn:aws:ecs:{region}:{account}:task-definition/{name}:1"),
    "aws:lb/listener:Listener":
        ("elasticloadbalancing:AddTags", _ELB + ":listener/app/{name}/0123456789abcdef/0123456789abcdef"),
    "aws:lb/loadBalancer:LoadBalancer":
        ("elasticloadbalancing:AddTags", _ELB + ":loadbalancer/app/{name}/0123456789abcdef"),
    "aws:lb/targetGroup:TargetGroup": ("elasticloadbalancing:AddTags", _ELB + ":targetgroup/{name}/0123456789abcdef"),
}
#: type -> (the tagging action, the service's create-action condition key and the create API it names, or None;
#: the ARN of the new resource, from (region, account, name))
TAGGING: dict[str, tuple[str, tuple[str, str] | None, str]] = {
    **{type_: (f"{arn.split(':')[2]}:TagResource", None, arn) for type_, arn in TAG_RESOURCE.items()},
    **{type_: (action, (f"{action.split(':')[0]}:CreateAction", CALLS[type_].operation), arn)
       for type_, (action, arn) in TAGGED_BY_CREATE_ACTION.items()},
    "aws:codebuild/project:Project":
        ("codebuild:CreateProject", None, "arn:aws:codebuild:{region}:{account}:project/{name}"),
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup":
        ("ec2:CreateTags", None, "arn:aws:ec2:{region}:{account}:security-group/sg-0123456789abcdef0"),
    "aws:iam/role:Role": ("iam:TagRole", None, "arn:aws:iam::{account}:role/{name}"),
    "aws:mq/broker:Broker": ("mq:CreateTags", None, "arn:aws:mq:{region}:{account}:broker:{name}:b-0123"),
    "aws:mq/configuration:Configuration": ("mq:CreateTags", None, "arn:aws:mq:{region}:{account}:configuration:c-0123"),
    # PutParameter with Tags needs ssm:AddTagsToResource too (SSM user guide, "Tag Systems Manager parameters");
    # the name's leading "/" is the ARN's separator
    "aws:ssm/parameter:Parameter": ("ssm:AddTagsToResource", None, "arn:aws:ssm:{region}:{account}:parameter{name}"),
    # CreateQueue with tags needs sqs:TagQueue too (botocore sqs CreateQueue.tags: "To be able to tag a queue on
    # creation, you must have the sqs:CreateQueue and sqs:TagQueue permissions"; the ARN has no "queue/")
    "aws:sqs/queue:Queue": ("sqs:TagQueue", None, "arn:aws:sqs:{region}:{account}:{name}"),
}
#: IAM actions that are permissions only (no API of that name in botocore's model of the service): S3's tag-on-create
#: (botocore s3 CreateBucketConfiguration.Tags: "You must have the s3:TagResource permission")
PERMISSION_ONLY = {"s3:TagResource", "s3:UntagResource"}
#: the prefix's botocore service where their names differ (tests/test_deploy_role.py BOTOCORE_SERVICE)
BOTOCORE = {"elasticloadbalancing": "elbv2", "cloudwatch": "cloudwatch"}
#: the dynamic resources that create AWS resources the provider's default tags never reach, and their tagging action
DYNAMIC_TAGGING = {"shared.components.broker_logs:BrokerLogGroupProvider": "logs:TagResource"}


def _name(resource: dict[str, Any]) -> str:
    inputs = resource.get("inputs") or {}
    for key in ("name", "bucket", "family", "brokerName"):
        if isinstance(inputs.get(key), str) and inputs[key]:
            return str(inputs[key])
    if resource["type"] == "aws:iam/role:Role":
        return deploy_role.role_name_pattern(resource).replace("?", "a")
    return str(resource["name"])


def create_context(tags: dict[str, str], create: tuple[str, str] | None) -> dict[str, Any]:
    """The request context of a create carrying ``tags`` (``create``: the service's create-action key and value)."""
    context: dict[str, Any] = {f"aws:RequestTag/{key}": value for key, value in tags.items()}
    context["aws:TagKeys"] = sorted(tags)
    if create is not None:
        context[create[0]] = create[1]
    return context


def test_every_taggable_resources_create_may_tag_it(shipped: Any, everything: Any) -> None:
    taggable = load_taggable()
    seen: set[str] = set()
    for label, env, statements, layer, document, resource in each_resource([*shipped, everything]):
        if resource["type"] not in taggable:
            continue
        assert resource["type"] in TAGGING, f"add {resource['type']}'s tag-on-create action to TAGGING"
        # the layer's provider, whose default tags are the env's (a default provider would carry none)
        assert resource.get("provider") == layer_provider(document)["urn"], (label, layer, resource["name"])
        seen.add(resource["type"])
        action, create, template = TAGGING[resource["type"]]
        tags = {**default_tags(document), **((resource.get("inputs") or {}).get("tags") or {})}
        # an organisation's SCP or tag policy requiring the env's tags on create (aws:RequestTag) and cost
        # allocation see every one of them, as the env sets it: no resource's own tags override one
        assert {key: tags.get(key) for key in env.common_tags(layer)} == env.common_tags(layer), (
            label, layer, resource["name"])
        arn = template.format(region=env.region, account=env.account_id, name=_name(resource),
                              cluster=cluster_name(env.name))
        # a role has no tag yet when it is created (IAM authorizes the create's TagRole on the new role)
        assert iam_eval.allows(statements, action, arn, create_context(tags, create)), (
            label, layer, resource["name"], action, arn)
    assert seen == set(TAGGING) & seen and len(seen) >= 30, sorted(set(TAGGING) - seen)


#: the tagging action -> the one that removes a key (a later `up` after a key left the env's tags)
UNTAGGING = {"ec2:CreateTags": "ec2:DeleteTags", "elasticloadbalancing:AddTags": "elasticloadbalancing:RemoveTags",
             "mq:CreateTags": "mq:DeleteTags", "iam:TagRole": "iam:UntagRole",
             "codebuild:CreateProject": "codebuild:UpdateProject"}


def test_a_later_tags_change_may_retag_every_resource(shipped: Any) -> None:
    """A change of the env's tags is an in-place update (README, env keys): the provider tags and untags the changed
    keys outside any create (no create-action key in the request), on a resource that carries the env's tags."""
    for label, env, documents, policies in shipped:
        statements = statements_of(policies)
        for layer, document in documents.items():
            default = default_tags(document)
            for resource in document["resources"]:
                if resource["type"] not in TAGGING:
                    continue
                action, _create, template = TAGGING[resource["type"]]
                if action == "codebuild:CreateProject":
                    action = "codebuild:UpdateProject"  # CodeBuild changes tags with UpdateProject
                untag = UNTAGGING.get(action, action.replace(":Tag", ":Untag"))
                tags = {**default, **((resource.get("inputs") or {}).get("tags") or {})}
                arn = template.format(region=env.region, account=env.account_id, name=_name(resource),
                                      cluster=cluster_name(env.name))
                carried = {f"{prefix}:ResourceTag/{key}": value for key, value in tags.items()
                           for prefix in ("aws", "iam")}
                changed = {**carried, "aws:RequestTag/team": "ml-infra", "aws:TagKeys": ["team"]}
                assert iam_eval.allows(statements, action, arn, changed), (label, layer, resource["name"], action)
                assert iam_eval.allows(statements, untag, arn, {**carried, "aws:TagKeys": ["owner"]}), (
                    label, layer, resource["name"], untag)


def test_the_buckets_tags_are_read_and_changed_where_the_provider_now_does(shipped: Any) -> None:
    """terraform-provider-aws v6 (pulumi-aws 7) sends a bucket's tags with CreateBucket and reads and changes them
    through S3 Control's ListTagsForResource/TagResource/UntagResource on the bucket's ARN (pulumi/pulumi-aws#6317,
    getmoto/moto#9504), not GetBucketTagging/PutBucketTagging alone."""
    for label, _env, documents, policies in shipped:
        for document in documents.values():
            for resource in document["resources"]:
                if resource["type"] != "aws:s3/bucket:Bucket":
                    continue
                arn = f"arn:aws:s3:::{_name(resource)}"
                for action in ("s3:ListTagsForResource", "s3:TagResource", "s3:UntagResource",
                               "s3:GetBucketTagging", "s3:PutBucketTagging"):
                    assert iam_eval.allows(statements_of(policies), action, arn, {}), (label, action, arn)


def test_the_tagging_actions_are_real(shipped: Any) -> None:
    session = botocore.session.get_session()
    tagging = {action for action, _create, _template in TAGGING.values()}
    for action in sorted(tagging | {UNTAGGING.get(a, a.replace(":Tag", ":Untag")) for a in tagging}):
        prefix, name = action.split(":")
        if action in PERMISSION_ONLY:
            continue
        model = session.get_service_model(BOTOCORE.get(prefix, prefix))
        assert name in model.operation_names, action
    ec2 = session.get_service_model("ec2")
    ecs = session.get_service_model("ecs")
    elbv2 = session.get_service_model("elbv2")
    for _action, create, _template in TAGGING.values():
        if create is None:
            continue
        model = {"ec2:CreateAction": ec2, "ecs:CreateAction": ecs,
                 "elasticloadbalancing:CreateAction": elbv2}[create[0]]
        assert create[1] in model.operation_names, create


def test_the_dynamic_resources_tag_what_they_create(shipped: Any) -> None:
    """The provider's default tags never reach a dynamic resource: one that creates an AWS resource passes the
    layer's tags itself, and the deploy role may tag with the create."""
    for provider, action in DYNAMIC_TAGGING.items():
        assert action in deploy_role.DYNAMIC_ACTIONS[provider], provider
    # a dynamic provider that creates anything in AWS must tag it itself (and be listed above)
    for cls in _dynamic_providers():
        key = f"{cls.__module__}:{cls.__name__}"
        creates = sorted(call for call in _boto3_calls(cls.__module__) if call.split(":")[1].startswith("Create"))
        assert not creates or key in DYNAMIC_TAGGING, f"{key} calls {creates}: pass the layer's tags and list it"
    for label, env, documents, policies in shipped:
        for layer, document in documents.items():
            for resource in document["resources"]:
                if resource["type"] != deploy_role.DYNAMIC_TYPE or "log_group_name" not in resource["inputs"]:
                    continue
                tags = resource["inputs"]["tags"]
                assert tags == default_tags(document), (label, layer, resource["name"])
                arn = f"arn:aws:logs:{env.region}:{env.account_id}:log-group:/aws/amazonmq/broker/b-1/general"
                assert iam_eval.allows(statements_of(policies), "logs:TagResource", arn, create_context(tags, None))


def test_the_roles_the_stacks_create_may_tag_nothing(shipped: Any) -> None:
    """Their boundary (the cap of every role the stacks create) names no tagging action, on any resource."""
    actions = {action for action, _create, _template in TAGGING.values()} - {"codebuild:CreateProject"}
    actions |= {"ecs:UntagResource", "iam:UntagRole", "tag:TagResources", "logs:TagLogGroup"}
    for label, env, _documents, _policies in shipped:
        for statement in boundary_document(env)["Statement"]:
            assert statement["Effect"] == "Allow" and "NotAction" not in statement, (label, statement["Sid"])
            for action in actions:
                assert not any(iam_eval.action_matches(pattern, action)
                               for pattern in iam_eval.as_list(statement["Action"])), (label, statement["Sid"], action)
