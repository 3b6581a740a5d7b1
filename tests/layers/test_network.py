"""Given an env, the synthesized network layer has..."""

from __future__ import annotations

import ipaddress
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from shared.components.network import nat_gateway_count, plan_subnets
from shared.envs import load_env
from shared.synth.engine import synth_env
from tests import iam_eval
from tests.synth_helpers import by_urn, of_type

SUBNET = "aws:ec2/subnet:Subnet"
NAT = "aws:ec2/natGateway:NatGateway"
ROUTE = "aws:ec2/route:Route"


@cache
def network(env: str) -> dict[str, Any]:
    return synth_env(env, ["network"])["network"]


def tier(document: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [s for s in of_type(document, SUBNET) if s["inputs"]["tags"]["tier"] == name]


@pytest.mark.parametrize(("env", "azs"), [("dev", 2), ("staging", 3), ("prod", 3)])
def test_private_and_public_subnets_spread_over_distinct_azs(env: str, azs: int) -> None:
    for subnets in (tier(network(env), "private"), tier(network(env), "public")):
        zones = [s["inputs"]["availabilityZone"] for s in subnets]
        assert len(zones) == azs and len(set(zones)) == azs
        assert zones == load_env(env).availability_zones


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_subnets_are_carved_from_the_env_cidr_without_overlap(env: str) -> None:
    vpc_cidr = load_env(env).network.cidr
    cidrs = [ipaddress.IPv4Network(s["inputs"]["cidrBlock"]) for s in of_type(network(env), SUBNET)]
    assert all(c.subnet_of(vpc_cidr) for c in cidrs)
    assert not any(a.overlaps(b) for i, a in enumerate(cidrs) for b in cidrs[i + 1:])


@pytest.mark.parametrize(("env", "nats"), [("dev", 1), ("staging", 1), ("prod", 3)])
def test_nat_gateways_follow_the_env_strategy(env: str, nats: int) -> None:
    gateways = of_type(network(env), NAT)
    assert len(gateways) == nats
    public_ids = set(network(env)["outputs"]["public_subnet_ids"])
    assert {g["inputs"]["subnetId"] for g in gateways} <= public_ids, "NAT gateways live in public subnets"


def test_prod_routes_each_private_subnet_through_its_own_azs_nat() -> None:
    doc = network("prod")
    resources = by_urn(doc)
    nat_by_id = {}
    for nat in of_type(doc, NAT):
        subnet_az = next(s["inputs"]["availabilityZone"] for s in of_type(doc, SUBNET)
                         if s["name"] == nat["name"].replace("nat", "public"))
        nat_by_id[nat["urn"]] = subnet_az
    private_defaults = [r for r in of_type(doc, ROUTE) if "natGatewayId" in r["inputs"]]
    assert len(private_defaults) == 3
    for route in private_defaults:
        nat_urn = next(d for d in route["dependencies"] if resources[d]["type"] == NAT)
        table = resources[route["parent"]]
        assert table["inputs"]["tags"]["Name"].endswith(nat_by_id[nat_urn]), "same-AZ NAT"


def test_dev_private_subnets_share_the_single_nat() -> None:
    routes = [r for r in of_type(network("dev"), ROUTE) if "natGatewayId" in r["inputs"]]
    assert len(routes) == 2 and len({r["inputs"]["natGatewayId"] for r in routes}) == 1


def test_public_subnets_route_to_the_internet_gateway() -> None:
    routes = [r for r in of_type(network("dev"), ROUTE) if "gatewayId" in r["inputs"]]
    assert len(routes) == 1 and routes[0]["inputs"]["destinationCidrBlock"] == "0.0.0.0/0"
    assert routes[0]["inputs"]["gatewayId"].startswith("igw-")


def test_vpc_has_dns_and_flow_logs_and_a_closed_default_sg() -> None:
    doc = network("dev")
    (vpc,) = of_type(doc, "aws:ec2/vpc:Vpc")
    assert vpc["inputs"]["enableDnsSupport"] and vpc["inputs"]["enableDnsHostnames"]
    (flow_log,) = of_type(doc, "aws:ec2/flowLog:FlowLog")
    assert flow_log["inputs"]["vpcId"] == doc["outputs"]["vpc_id"] and flow_log["inputs"]["trafficType"] == "ALL"
    (log_group,) = of_type(doc, "aws:cloudwatch/logGroup:LogGroup")
    assert log_group["inputs"]["retentionInDays"] == load_env("dev").network.flow_log_retention_days
    (default_sg,) = of_type(doc, "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    assert default_sg["inputs"].get("ingress", []) == [] and default_sg["inputs"].get("egress", []) == []


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_flow_log_group_is_kms_encrypted_where_the_env_asks_for_encrypted_logs(env: str) -> None:
    import json

    doc = network(env)
    config = load_env(env)
    (log_group,) = of_type(doc, "aws:cloudwatch/logGroup:LogGroup")
    keys = of_type(doc, "aws:kms/key:Key")
    assert ("kmsKeyId" in log_group["inputs"]) is config.compute.kms_encrypted_logs is True  # every env file
    if not config.compute.kms_encrypted_logs:
        assert keys == []
        return
    (key,) = keys
    assert key["inputs"]["enableKeyRotation"] is True
    assert key["urn"] in log_group["dependencies"]
    assert log_group["inputs"]["kmsKeyId"].startswith(f"arn:aws:kms:{config.region}:{config.account_id}:key/")
    statements = json.loads(key["inputs"]["policy"])["Statement"]
    (logs,) = [s for s in statements if s["Principal"] == {"Service": f"logs.{config.region}.amazonaws.com"}]
    group_arn = f"arn:aws:logs:{config.region}:{config.account_id}:log-group:{log_group['inputs']['name']}"
    assert logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"] == group_arn
    assert {"kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"} <= set(logs["Action"])


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_flow_log_role_trusts_only_this_accounts_flow_logs(env: str) -> None:
    import json

    config = load_env(env)
    (role,) = of_type(network(env), "aws:iam/role:Role")
    (statement,) = json.loads(role["inputs"]["assumeRolePolicy"])["Statement"]
    assert statement["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
    assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": config.account_id}
    assert statement["Condition"]["ArnLike"] == {
        "aws:SourceArn": f"arn:aws:ec2:{config.region}:{config.account_id}:vpc-flow-log/*"}


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_the_flow_log_is_created_after_its_role_may_write_the_group(env: str) -> None:
    """Flow Logs assumes the role for every delivery: the role's policy must exist before the flow log does."""
    import json

    doc = network(env)
    (flow_log,) = of_type(doc, "aws:ec2/flowLog:FlowLog")
    (role_policy,) = of_type(doc, "aws:iam/rolePolicy:RolePolicy")
    (log_group,) = of_type(doc, "aws:cloudwatch/logGroup:LogGroup")
    assert role_policy["urn"] in flow_log["dependencies"]
    statements = {s["Sid"]: s for s in json.loads(role_policy["inputs"]["policy"])["Statement"]}
    write = statements["WriteFlowLogGroup"]
    assert {"logs:CreateLogStream", "logs:PutLogEvents"} <= set(write["Action"])
    group_arn = flow_log["inputs"]["logDestination"]
    assert group_arn.endswith(f":log-group:{log_group['inputs']['name']}")
    assert write["Resource"] == [group_arn, f"{group_arn}:*"]


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_the_flow_log_role_may_make_every_call_the_vpc_guide_lists_on_the_resource_iam_checks(env: str) -> None:
    """IAM evaluates DescribeLogGroups on ``log-group:*`` (CloudWatch Logs guide: its Resource must be
    ``log-group:*``, not one group's name), the stream calls on the group's ``:*`` ARN: a grant on the group's
    ARN alone never allows DescribeLogGroups. Evaluated with moto's IAM policy engine."""
    import json

    from moto.iam.access_control import IAMPolicy, PermissionResult

    config = load_env(env)
    (role_policy,) = of_type(network(env), "aws:iam/rolePolicy:RolePolicy")
    (flow_log,) = of_type(network(env), "aws:ec2/flowLog:FlowLog")
    policy = IAMPolicy(json.dumps(json.loads(role_policy["inputs"]["policy"])))
    group = flow_log["inputs"]["logDestination"]
    calls = {"logs:DescribeLogGroups": f"arn:aws:logs:{config.region}:{config.account_id}:log-group:*",
             "logs:DescribeLogStreams": f"{group}:*", "logs:CreateLogStream": f"{group}:log-stream:eni-1-all",
             "logs:PutLogEvents": f"{group}:log-stream:eni-1-all"}
    for action, resource in calls.items():
        assert policy.is_action_permitted(action, resource) == PermissionResult.PERMITTED, (action, resource)
    # and nothing on another group
    other = f"arn:aws:logs:{config.region}:{config.account_id}:log-group:other:log-stream:x"
    assert policy.is_action_permitted("logs:PutLogEvents", other) != PermissionResult.PERMITTED


INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS_RULE = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"


def group(document: dict[str, Any], name: str) -> dict[str, Any]:
    (match,) = [r for r in of_type(document, SECURITY_GROUP) if r["inputs"]["tags"]["Name"] == name]
    return match


def rules_of(document: dict[str, Any], type_: str, group_id: str) -> list[dict[str, Any]]:
    return [r["inputs"] for r in of_type(document, type_) if r["inputs"]["securityGroupId"] == group_id]


def called_ports() -> set[int]:
    from shared.catalog import load_catalog

    catalog = load_catalog()
    return {catalog[callee].port for spec in catalog for callee in spec.calls}


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_services_admit_only_each_other_and_only_on_the_called_services_ports(env: str) -> None:
    doc = network(env)
    services = group(doc, f"{env}-services")
    sg_id = doc["outputs"]["service_security_group_id"]
    assert "ingress" not in services["inputs"] and "egress" not in services["inputs"], \
        "rule resources only: inline rules would fight them"
    ingress = rules_of(doc, INGRESS_RULE, sg_id)
    assert ingress and all(rule["referencedSecurityGroupId"] == sg_id and rule["ipProtocol"] == "tcp"
                           for rule in ingress)
    # consecutive ports in one range (the group is every task's: a rule per port isolated no caller); the shipped
    # catalog's called services are preprocess and inference, 8081-8082, and a service a user adds is one more port
    runs: list[tuple[int, int]] = []
    for port in sorted(called_ports()):
        runs = [*runs[:-1], (runs[-1][0], port)] if runs and runs[-1][1] == port - 1 else [*runs, (port, port)]
    assert [(rule["fromPort"], rule["toPort"]) for rule in ingress] == runs
    assert {8081, 8082} <= called_ports()
    assert all("cidrIpv4" not in rule and "cidrIpv6" not in rule for rule in ingress)


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_services_egress_is_named_ports_to_named_peers(env: str) -> None:
    doc = network(env)
    config = load_env(env)
    sg_id = doc["outputs"]["service_security_group_id"]
    egress = rules_of(doc, EGRESS_RULE, sg_id)
    assert all(rule["ipProtocol"] == "tcp" for rule in egress)
    assert all(rule["fromPort"] == rule["toPort"] for rule in egress if rule.get("referencedSecurityGroupId") != sg_id)
    to_services = {port for rule in egress if rule.get("referencedSecurityGroupId") == sg_id
                   for port in range(rule["fromPort"], rule["toPort"] + 1)}
    assert to_services == called_ports()
    endpoints = of_type(doc, "aws:ec2/vpcEndpoint:VpcEndpoint")
    (s3,) = [e for e in endpoints if e["inputs"]["vpcEndpointType"] == "Gateway"]
    (to_s3,) = [r for r in of_type(doc, EGRESS_RULE) if "prefixListId" in r["inputs"]]
    assert to_s3["inputs"]["prefixListId"].startswith("pl-") and to_s3["inputs"]["fromPort"] == 443
    assert to_s3["property_dependencies"]["prefixListId"] == [s3["urn"]], "the S3 gateway endpoint's prefix list"
    endpoint_groups = {g for e in endpoints if e["inputs"]["vpcEndpointType"] == "Interface"
                       for g in e["inputs"]["securityGroupIds"]}
    to_endpoints = [(rule["referencedSecurityGroupId"], rule["fromPort"]) for rule in egress
                    if rule.get("referencedSecurityGroupId") not in (None, sg_id)]
    assert to_endpoints == [(group_id, 443) for group_id in endpoint_groups]
    assert bool(endpoint_groups) is (env != "dev")
    world = [(rule["cidrIpv4"], rule["fromPort"]) for rule in egress if "cidrIpv4" in rule]
    assert world == ([("0.0.0.0/0", 443)] if config.network.nat != "none" else [])
    assert not any("cidrIpv6" in rule for rule in egress)


def test_an_env_without_a_nat_is_refused_naming_what_it_lacks(edit_env: Any) -> None:
    """Without a NAT gateway the deploy runner cannot download the CLI, and Fargate tasks start only if
    every AWS API they use has an endpoint: the env loader says so before anything runs."""
    from shared.envs import load_env
    from shared.errors import ConfigErrors

    edit_env("dev", lambda data: data["network"].update(nat="none"))
    with pytest.raises(ConfigErrors) as raised:
        load_env("dev")
    text = str(raised.value)
    assert "network.nat: 'none' leaves the private subnets without internet egress" in text
    assert "network.endpoints: with network.nat 'none'" in text
    assert "add ecr.api, ecr.dkr, logs, secretsmanager" in text  # dev has only the s3 gateway endpoint


def test_interface_endpoints_admit_only_the_services_the_deploy_runner_and_the_functions_on_https() -> None:
    """With private DNS on, AWS API names resolve to the endpoints for everything in the VPC: the deploy
    runner (secrets, logs, ECR, the broker's log group) must be let in, or every in-VPC deploy times out, and
    so must the broker admin's rotation function (Secrets Manager), or every rotation does, and the queue metrics
    publisher (Secrets Manager, CloudWatch), or consumers stop scaling on their backlog."""
    doc = network("prod")
    endpoints_sg = group(doc, "prod-endpoints")["inputs"]
    assert endpoints_sg["ingress"] == [{
        "description": "HTTPS to AWS APIs from the platform ECS tasks", "fromPort": 443, "protocol": "tcp",
        "securityGroups": [doc["outputs"]["service_security_group_id"]], "toPort": 443}, {
        "description": "HTTPS to AWS APIs from the deploy runner (CodeBuild)", "fromPort": 443, "protocol": "tcp",
        "securityGroups": [doc["outputs"]["deploy_runner_security_group_id"]], "toPort": 443}, {
        "description": "HTTPS to Secrets Manager from the broker admin rotation function (Lambda)", "fromPort": 443,
        "protocol": "tcp", "securityGroups": [doc["outputs"]["broker_rotation_security_group_id"]], "toPort": 443}, {
        "description": "HTTPS to Secrets Manager and CloudWatch from the queue metrics publisher (Lambda)",
        "fromPort": 443, "protocol": "tcp", "securityGroups": [doc["outputs"]["queue_metrics_security_group_id"]],
        "toPort": 443}]


@pytest.mark.parametrize(("env", "expected"), [
    ("dev", {"s3"}),
    ("prod", {"s3", "ecr.api", "ecr.dkr", "logs", "secretsmanager"}),
])
def test_vpc_endpoints_are_the_ones_the_env_asks_for(env: str, expected: set[str]) -> None:
    endpoints = of_type(network(env), "aws:ec2/vpcEndpoint:VpcEndpoint")
    services = {e["inputs"]["serviceName"].split(f"{load_env(env).region}.", 1)[1] for e in endpoints}
    assert services == expected


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_vpc_endpoints_admit_only_the_accounts_principals_and_ecr_layers(env: str) -> None:
    import json

    config = load_env(env)
    account = {"aws:PrincipalAccount": config.account_id}
    for endpoint in of_type(network(env), "aws:ec2/vpcEndpoint:VpcEndpoint"):
        service = endpoint["inputs"]["serviceName"].split(f"{config.region}.", 1)[1]
        statements = json.loads(endpoint["inputs"]["policy"])["Statement"]
        assert all(s["Effect"] == "Allow" for s in statements), service
        if service == "s3":
            # ECR user guide, VPC endpoints: Fargate's layer downloads need this AWS-owned bucket.
            (layers,) = [s for s in statements if "Condition" not in s]
            assert layers == {"Sid": "EcrImageLayers", "Effect": "Allow", "Principal": "*",
                              "Action": "s3:GetObject",
                              "Resource": f"arn:aws:s3:::prod-{config.region}-starport-layer-bucket/*"}
            (own,) = [s for s in statements if s["Sid"] == "OwnAccountBuckets"]
            assert own["Condition"] == {"StringEquals": {**account, "aws:ResourceAccount": config.account_id}}
            assert "s3:PutBucketPolicy" not in own["Action"] and all(not a.endswith("*") for a in own["Action"])
        else:
            (statement,) = statements
            assert statement["Condition"] == {"StringEquals": account}, service
            assert statement["Action"] == f"{service.split('.')[0]}:*", service


def test_every_aws_resource_gets_the_required_tags_from_the_provider() -> None:
    import json

    doc = network("dev")
    providers = [r for r in doc["resources"] if r["type"] == "pulumi:providers:aws"]
    assert len(providers) == 1
    tags = json.loads(providers[0]["inputs"]["defaultTags"])["tags"]
    required = {"env": "dev", "layer": "network", "team": "ml-platform", "cost-center": "cc-ml-1001"}
    assert required.items() <= tags.items()
    aws_resources = [r for r in doc["resources"] if r["type"].startswith("aws:")]
    assert aws_resources and all(r["provider"] == providers[0]["urn"] for r in aws_resources)


def test_prod_protects_the_vpc_and_dev_does_not() -> None:
    assert of_type(network("prod"), "aws:ec2/vpc:Vpc")[0]["protect"] is True
    assert of_type(network("dev"), "aws:ec2/vpc:Vpc")[0]["protect"] is False


def test_prod_protects_only_what_holds_data_or_identity() -> None:
    from shared.protect import STATEFUL_TYPES

    doc = network("prod")
    protected = {r["type"] for r in doc["resources"] if r["protect"]}
    assert protected == {"aws:ec2/vpc:Vpc", "aws:ec2/subnet:Subnet", "aws:cloudwatch/logGroup:LogGroup",
                         "aws:kms/key:Key"}
    for type_ in (ROUTE, "aws:ec2/routeTableAssociation:RouteTableAssociation", "aws:ec2/routeTable:RouteTable",
                  "aws:ec2/securityGroup:SecurityGroup", "aws:ec2/vpcEndpoint:VpcEndpoint", NAT, "aws:ec2/eip:Eip",
                  "aws:ec2/flowLog:FlowLog", "aws:iam/role:Role", "aws:kms/alias:Alias"):
        resources = of_type(doc, type_)
        assert resources and not any(r["protect"] for r in resources), type_
    assert all(r["protect"] is (r["type"] in STATEFUL_TYPES) for r in doc["resources"])


def test_exports_exactly_the_network_contract() -> None:
    from shared.contracts import contract_fields

    assert sorted(network("dev")["outputs"]) == sorted(contract_fields("network"))


class TestSubnetPlan:
    def test_blocks_do_not_move_when_an_az_is_added(self) -> None:
        two = plan_subnets(ipaddress.IPv4Network("10.0.0.0/16"), ["a", "b"])
        three = plan_subnets(ipaddress.IPv4Network("10.0.0.0/16"), ["a", "b", "c"])
        assert three[:2] == two

    def test_small_vpc_still_carves(self) -> None:
        plan = plan_subnets(ipaddress.IPv4Network("10.0.0.0/22"), ["a", "b", "c"])
        assert plan[0].private_cidr == "10.0.0.0/26" and plan[2].public_cidr == "10.0.2.128/26"

    @pytest.mark.parametrize(("strategy", "azs", "count"), [("none", 3, 0), ("single", 3, 1), ("per-az", 3, 3)])
    def test_nat_count(self, strategy: str, azs: int, count: int) -> None:
        assert nat_gateway_count(strategy, azs) == count  # type: ignore[arg-type]


def runner_egress(document: dict[str, Any]) -> list[dict[str, Any]]:
    (group,) = [g for g in of_type(document, SECURITY_GROUP) if g["name"] == "network-deploy-runner"]
    return list(group["inputs"]["egress"])


@pytest.mark.parametrize(("management", "cidr"), [
    ("https://rabbit.example.internal:15671", "0.0.0.0/0"),  # a DNS name: only the port is pinned
    ("https://10.99.0.10:15671/", "10.99.0.10/32"),
])
def test_the_deploy_runner_reaches_an_external_brokers_management_api_on_its_port(
        edit_env: Any, management: str, cidr: str) -> None:
    """staging's and prod's `up` runs messaging on the in-VPC runner, whose RabbitMQ provider calls
    messaging.external.management_endpoint: on 15671 (RabbitMQ's management API over TLS) the runner's HTTPS-only
    group dropped every packet, and the reach probe stopped messaging."""
    external = {"amqps_endpoint": "amqps://rabbit.example.internal:5671", "management_endpoint": management}
    edit_env("staging", lambda data: data.update(messaging={"broker": "external", "external": external}))
    egress = runner_egress(synth_env("staging", ["network"])["network"])
    assert [(rule["fromPort"], rule["toPort"], rule["cidrBlocks"]) for rule in egress] == [
        (443, 443, ["0.0.0.0/0"]), (15671, 15671, [cidr])]


@pytest.mark.parametrize("management", ["https://rabbit.example.internal", "https://rabbit.example.internal:443/"])
def test_an_external_management_api_on_443_needs_no_further_runner_rule(edit_env: Any, management: str) -> None:
    external = {"amqps_endpoint": "amqps://rabbit.example.internal:5671", "management_endpoint": management}
    edit_env("staging", lambda data: data.update(messaging={"broker": "external", "external": external}))
    assert [rule["fromPort"] for rule in runner_egress(synth_env("staging", ["network"])["network"])] == [443]
    assert [rule["fromPort"] for rule in runner_egress(network("prod"))] == [443]  # amazon-mq: 443 only


def deploy_role_may(document: dict[str, Any], action: str, bucket: str) -> bool:
    """Whether the S3 gateway endpoint's statement for the deploy role names ``action`` on ``bucket`` (its
    conditions aside: tests/layers/test_artifacts.py holds them)."""
    (statement,) = [s for s in s3_endpoint_policy(document) if s["Sid"] == "DeployRoleManagesPlatformBuckets"]
    return iam_eval.grants_some_context([statement], action, f"arn:aws:s3:::{bucket}")


@pytest.mark.parametrize("change", ["public_gateway off", "service no longer public"])
def test_the_deploy_role_may_still_delete_an_access_log_bucket_the_env_no_longer_has(
        edit_env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str) -> None:
    """The `up` that turns compute.public_gateway off (or a service's `public`) runs network before compute, which
    then deletes the service's access-log bucket (DeleteBucket, its policy and settings). On staging's in-VPC runner
    those calls pass the S3 gateway endpoint, whose deploy-role statement named only the buckets of the current
    catalog and env file: the calls were denied there, halfway through compute, with the statement already gone."""
    from tests.catalog_helpers import write_catalog

    certificate = "arn:aws:acm:eu-west-1:222222222222:certificate/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
    on = change == "service no longer public"
    edit_env("staging", lambda data: data["compute"].update(public_gateway=on, certificate_arn=certificate))
    if on:
        write_catalog(tmp_path, monkeypatch, lambda services: services["gateway"].update(public=False))
    document = synth_env("staging", ["network"])["network"]
    bucket = "ml-staging-gateway-alb-logs-222222222222"
    for action in ("s3:DeleteBucket", "s3:DeleteBucketPolicy", "s3:GetBucketPolicy", "s3:ListBucketVersions"):
        assert deploy_role_may(document, action, bucket), action
    assert not deploy_role_may(document, "s3:DeleteBucket", "ml-staging-gateway-alb-logs-999999999999")


def s3_endpoint_policy(document: dict[str, Any]) -> list[dict[str, Any]]:
    import json

    (endpoint,) = [e for e in of_type(document, "aws:ec2/vpcEndpoint:VpcEndpoint") if e["name"] == "network-s3"]
    return list(json.loads(endpoint["inputs"]["policy"])["Statement"])


@pytest.mark.parametrize("env_name", ["dev", "staging", "prod"])
def test_the_deploy_role_manages_every_bucket_any_layer_creates_through_the_s3_endpoint(env_name: str) -> None:
    """staging's and prod's `up` runs every layer on the in-VPC runner, whose bucket calls (CreateBucket, each
    Put/GetBucket* setting, a force_destroy's version deletes) pass the S3 gateway endpoint; its own-bucket statement
    admits object calls only, so a bucket a layer creates that the deploy role's statement does not name is refused
    there in a real account, though synth and policy pass (a new layer's: README, Add a layer)."""
    from tests.synth_helpers import spec_documents

    documents = spec_documents(env_name)
    network = documents["network"]
    for layer, document in documents.items():
        for bucket in of_type(document, "aws:s3/bucket:Bucket"):
            name = bucket["inputs"].get("bucket")
            assert isinstance(name, str), f"{layer}'s bucket {bucket['name']} has no name the endpoint could admit"
            for action in ("s3:CreateBucket", "s3:PutBucketPolicy", "s3:PutBucketVersioning", "s3:DeleteBucket"):
                assert deploy_role_may(network, action, name), (
                    f"{layer} creates bucket {name}, which the network's S3 endpoint admits for the deploy role "
                    "nowhere: add it to VpcNetworkArgs.from_env's platform_buckets (shared/components/network.py)")


def test_the_s3_endpoint_admits_the_env_files_state_bucket_of_another_account(edit_env: Any) -> None:
    """One S3 state bucket serves envs in several accounts (README, Where state lives): staging's in-VPC runner reads
    and writes it through the gateway endpoint, whose own-bucket statement admits only staging's own buckets
    (aws:ResourceAccount), so every up and preview there stopped at its first state read."""
    # without an S3 backend in the env file (Pulumi Cloud, or PULUMI_BACKEND_URL alone) there is nothing to name;
    # synthesized before the edit: network() is cached, and filled first in this test it would hold the edit
    unedited = s3_endpoint_policy(synth_env("staging", ["network"])["network"])
    assert "PulumiStateBucket" not in {s["Sid"] for s in unedited}
    edit_env("staging", lambda data: data.update(state={
        "backend_url": "s3://acme-pulumi-state/platform?region=eu-west-1",
        "secrets_provider": "awskms://alias/pulumi-state?region=eu-west-1"}))
    statements = s3_endpoint_policy(synth_env("staging", ["network"])["network"])
    (state,) = [s for s in statements if s["Sid"] == "PulumiStateBucket"]
    assert state["Condition"] == {"StringEquals": {"aws:PrincipalAccount": "222222222222"}}  # no ResourceAccount
    for action, resource in (("s3:GetObject", "acme-pulumi-state/platform/.pulumi/stacks/network/staging.json"),
                             ("s3:PutObject", "acme-pulumi-state/platform/.pulumi/locks/x.json"),
                             ("s3:DeleteObject", "acme-pulumi-state/platform/.pulumi/locks/x.json"),
                             ("s3:ListBucket", "acme-pulumi-state")):
        assert iam_eval.allows([state], action, f"arn:aws:s3:::{resource}",
                               {"aws:PrincipalAccount": "222222222222"}), (action, resource)
