"""The network rules of the ``aws`` pack (VPC, subnets, security groups, Cloud Map, App Mesh).

Every case goes through the real pack process (``policy_findings``) and asserts on one rule id for
one resource: present for the non-compliant resource, absent for the compliant one.
"""

from __future__ import annotations

from typing import Any

import pytest

from shared.policy.engine import evaluate_documents_result
from shared.policy.stages import deployed_outputs
from tests.policies.resources import UNKNOWN_STRING, aws_provider, document, messages, res
from tests.policies.tokens import (
    CLOUDMAP_INSTANCE,
    CLOUDMAP_SERVICE,
    DEFAULT_SG,
    EGRESS_RULE,
    FLOW_LOG,
    INGRESS_RULE,
    MESH,
    SG,
    SG_RULE,
    SUBNET,
    VIRTUAL_NODE,
    VPC,
)


def vpc(name: str = "main") -> dict[str, Any]:
    return res(VPC, name, {"cidrBlock": "10.20.0.0/16", "enableDnsHostnames": True})


def flow_log(name: str, target: dict[str, Any], vpc_id: str = "vpc-0a1b2c3d4e5f60718") -> dict[str, Any]:
    return res(FLOW_LOG, name, {"vpcId": vpc_id, "trafficType": "ALL", "logDestinationType": "cloud-watch-logs"},
               dependencies=[target])


# --- vpc-flow-logs-enabled (stack rule) -----------------------------------------------------------


def test_vpc_with_a_flow_log_attributed_through_its_dependencies_passes(policy_findings):
    main = vpc()
    findings = policy_findings([main, flow_log("main-flow-log", main)])
    assert not [f for f in findings if f["rule"] == "vpc-flow-logs-enabled"]


def test_vpc_without_a_flow_log_fails_with_the_fix(policy_findings):
    found = messages(policy_findings([vpc()]), "vpc-flow-logs-enabled", "main")
    assert len(found) == 1
    assert "VPC 'main' has no flow log" in found[0] and "aws.ec2.FlowLog" in found[0]


def test_a_flow_log_of_one_vpc_does_not_cover_another(policy_findings):
    main, other = vpc("main"), vpc("other")
    findings = policy_findings([main, other, flow_log("main-flow-log", main)])
    assert not messages(findings, "vpc-flow-logs-enabled", "main")
    assert messages(findings, "vpc-flow-logs-enabled", "other")


def test_subnet_flow_logs_do_not_count_as_vpc_flow_logs(policy_findings):
    main = vpc()
    subnet_log = res(FLOW_LOG, "subnet-log", {"subnetId": "subnet-0123", "trafficType": "ALL"}, dependencies=[main])
    assert messages(policy_findings([main, subnet_log]), "vpc-flow-logs-enabled", "main")


@pytest.mark.parametrize(("traffic", "covers"), [("ALL", True), ("REJECT", True), ("ACCEPT", False)])
def test_a_flow_log_must_record_rejected_traffic(policy_findings, traffic, covers):
    # Security Hub EC2.6 (trafficType REJECT) and CIS ask for rejected packets; an ACCEPT-only log has none
    main = vpc()
    log = res(FLOW_LOG, "main-flow-log", {"vpcId": "vpc-0a1b2c3d4e5f60718", "trafficType": traffic},
              dependencies=[main])
    found = messages(policy_findings([main, log]), "vpc-flow-logs-enabled", "main")
    assert bool(found) is not covers
    if found:
        assert "records only accepted traffic" in found[0]


def test_flow_log_matched_by_value_when_the_vpc_reports_its_id(policy_engine):
    # In an up the engine sends the VPC's outputs, its id among them: a flow log naming it (here with no recorded
    # dependency) is attributed by value; offline, where the VPC has no id, the rule cannot tell.
    main = res(VPC, "main", {"cidrBlock": "10.20.0.0/16"})
    vpc_id = deployed_outputs(document([main]))[document([main])["resources"][0]["urn"]]["id"]
    log = res(FLOW_LOG, "log", {"vpcId": vpc_id, "trafficType": "ALL"})
    up = evaluate_documents_result([document([main, log])], engine=policy_engine, stage="up")
    assert not messages([finding.to_json() for finding in up.findings], "vpc-flow-logs-enabled", "main")
    offline = evaluate_documents_result([document([main, log])], engine=policy_engine)
    assert messages([finding.to_json() for finding in offline.findings], "vpc-flow-logs-enabled", "main")


# --- vpc-default-security-group-closed (stack rule) ----------------------------------------------


def test_vpc_with_a_managed_empty_default_sg_passes(policy_findings):
    main = vpc()
    closed = res(DEFAULT_SG, "main-default", {"vpcId": "vpc-0a1b2c3d4e5f60718"}, dependencies=[main])
    findings = policy_findings([main, closed])
    assert not [f for f in findings if f["rule"] == "vpc-default-security-group-closed"]


def test_vpc_with_an_unmanaged_default_sg_fails(policy_findings):
    found = messages(policy_findings([vpc()]), "vpc-default-security-group-closed", "main")
    assert found and "aws.ec2.DefaultSecurityGroup" in found[0]


def test_default_sg_with_rules_fails(policy_findings):
    main = vpc()
    open_default = res(DEFAULT_SG, "main-default", {
        "vpcId": "vpc-0a1b2c3d4e5f60718",
        "egress": [{"protocol": "-1", "fromPort": 0, "toPort": 0, "cidrBlocks": ["0.0.0.0/0"]}],
    }, dependencies=[main])
    findings = policy_findings([main, open_default])
    assert "1 egress rule(s)" in messages(findings, "vpc-default-security-group-closed", "main-default")[0]
    assert not messages(findings, "vpc-default-security-group-closed", "main")


def test_standalone_rule_on_the_default_sg_fails(policy_findings):
    main = vpc()
    closed = res(DEFAULT_SG, "main-default", {"vpcId": "vpc-0a1b2c3d4e5f60718"}, dependencies=[main])
    rule = res(INGRESS_RULE, "sneaky", {"securityGroupId": "sg-0default", "ipProtocol": "tcp", "fromPort": 22,
                                        "toPort": 22, "cidrIpv4": "10.0.0.0/8"}, dependencies=[closed])
    assert messages(policy_findings([main, closed, rule]), "vpc-default-security-group-closed", "sneaky")


# --- subnet-no-public-ip-on-launch --------------------------------------------------------------


@pytest.mark.parametrize(("inputs", "provider_tags", "violates"), [
    ({"cidrBlock": "10.20.0.0/20"}, None, False),
    ({"cidrBlock": "10.20.0.0/20", "mapPublicIpOnLaunch": False}, None, False),
    ({"cidrBlock": "10.20.0.0/20", "mapPublicIpOnLaunch": True, "tags": {"tier": "public"}}, None, False),
    ({"cidrBlock": "10.20.0.0/20", "mapPublicIpOnLaunch": True}, {"tier": "public"}, False),
    ({"cidrBlock": "10.20.0.0/20", "mapPublicIpOnLaunch": True}, None, True),
    ({"cidrBlock": "10.20.0.0/20", "mapPublicIpOnLaunch": True, "tags": {"tier": "private"}}, None, True),
], ids=["default", "explicit-false", "tagged-public", "public-by-default-tags", "untagged", "tagged-private"])
def test_subnet_public_ip_on_launch(policy_findings, inputs, provider_tags, violates):
    provider = aws_provider(tags=provider_tags or {"team": "ml-platform"})
    subnet = res(SUBNET, "app-a", {"vpcId": "vpc-0a1b2c3d4e5f60718", **inputs}, provider=provider)
    found = messages(policy_findings([subnet]), "subnet-no-public-ip-on-launch", "app-a")
    assert bool(found) is violates
    if violates:
        assert "map_public_ip_on_launch=False" in found[0]


@pytest.mark.parametrize(("inputs", "violates"), [
    ({"availabilityZone": "eu-west-1a"}, True),  # a default subnet maps public IPs unless told otherwise
    ({"availabilityZone": "eu-west-1a", "mapPublicIpOnLaunch": False}, False),
    ({"availabilityZone": "eu-west-1a", "tags": {"tier": "public"}}, False),
])
def test_an_adopted_default_subnet_maps_public_ips_by_default(policy_findings, inputs, violates):
    # pulumi_aws ec2.DefaultSubnet: "The default value for map_public_ip_on_launch is true"
    subnet = res("aws:ec2/defaultSubnet:DefaultSubnet", "app-a", inputs)
    found = messages(policy_findings([subnet]), "subnet-no-public-ip-on-launch", "app-a")
    assert bool(found) is violates


# --- security-group-no-open-ingress -----------------------------------------------------------


def sg(name: str, ingress: list[dict[str, Any]], tags: dict[str, str] | None = None, **opts: Any) -> dict[str, Any]:
    inputs: dict[str, Any] = {"vpcId": "vpc-0a1b2c3d4e5f60718", "description": "test security group",
                              "ingress": ingress}
    if tags:
        inputs["tags"] = tags
    return res(SG, name, inputs, **opts)


def https(cidrs: list[str], port: int = 443, key: str = "cidrBlocks") -> dict[str, Any]:
    return {"protocol": "tcp", "fromPort": port, "toPort": port, key: cidrs, "description": "https from clients"}


@pytest.mark.parametrize(("ingress", "tags", "violates"), [
    ([https(["10.20.0.0/16"])], None, False),
    ([https(["0.0.0.0/0"])], {"exposure": "public"}, False),
    ([https(["::/0"], port=80, key="ipv6CidrBlocks")], {"exposure": "public"}, False),
    ([https(["0.0.0.0/0"])], None, True),
    ([https(["0.0.0.0/0"], port=22)], {"exposure": "public"}, True),
    ([{"protocol": "-1", "fromPort": 0, "toPort": 0, "cidrBlocks": ["0.0.0.0/0"]}], {"exposure": "public"}, True),
    ([{"protocol": "tcp", "fromPort": 80, "toPort": 443, "cidrBlocks": ["0.0.0.0/0"]}], {"exposure": "public"}, True),
    ([https(["::/0"], key="ipv6CidrBlocks")], None, True),
], ids=["private-cidr", "public-443", "public-80-v6", "untagged-443", "public-22", "public-all", "public-80-to-443",
        "untagged-v6"])
def test_security_group_inline_ingress(policy_findings, ingress, tags, violates):
    found = messages(policy_findings([sg("web", ingress, tags)]), "security-group-no-open-ingress", "web")
    assert bool(found) is violates


def test_open_ingress_message_names_source_port_and_fix(policy_findings):
    found = messages(policy_findings([sg("web", [https(["0.0.0.0/0"], port=22)])]), "security-group-no-open-ingress",
                     "web")
    assert found == ["security group 'web' allows ingress from 0.0.0.0/0 on tcp 22; restrict the source to known "
                     "CIDRs or reference a security group; only tcp 80/443 may be world-open, on a resource tagged "
                     "exposure=public."]


def test_exposure_tag_from_provider_default_tags_counts(policy_findings):
    provider = aws_provider(tags={"exposure": "public"})
    findings = policy_findings([sg("alb", [https(["0.0.0.0/0"])], provider=provider)])
    assert not messages(findings, "security-group-no-open-ingress", "alb")


@pytest.mark.parametrize(("inputs", "violates"), [
    ({"type": "ingress", "protocol": "tcp", "fromPort": 5432, "toPort": 5432, "cidrBlocks": ["10.0.0.0/8"]}, False),
    ({"type": "egress", "protocol": "-1", "fromPort": 0, "toPort": 0, "cidrBlocks": ["0.0.0.0/0"]}, False),
    ({"type": "ingress", "protocol": "tcp", "fromPort": 22, "toPort": 22, "cidrBlocks": ["0.0.0.0/0"]}, True),
    # No tags on aws.ec2.SecurityGroupRule: a world-open 443 cannot prove exposure=public.
    ({"type": "ingress", "protocol": "tcp", "fromPort": 443, "toPort": 443, "cidrBlocks": ["0.0.0.0/0"]}, True),
    ({"type": "ingress", "protocol": "tcp", "fromPort": 22, "toPort": 22, "ipv6CidrBlocks": ["::/0"]}, True),
], ids=["private", "egress", "ssh-world", "https-world", "ssh-world-v6"])
def test_security_group_rule_ingress(policy_findings, inputs, violates):
    rule = res(SG_RULE, "rule", {"securityGroupId": "sg-0123", "description": "a test rule", **inputs})
    assert bool(messages(policy_findings([rule]), "security-group-no-open-ingress", "rule")) is violates


def test_a_security_group_rule_is_no_tagged_exception_even_where_the_provider_tags_exposure_public(policy_findings):
    # aws.ec2.SecurityGroupRule takes no tags: the provider's default tags say nothing about the rule itself
    rule = res(SG_RULE, "rule", {"securityGroupId": "sg-0123", "description": "a test rule", "type": "ingress",
                                 "protocol": "tcp", "fromPort": 443, "toPort": 443, "cidrBlocks": ["0.0.0.0/0"]},
               provider=aws_provider(tags={"exposure": "public"}))
    assert messages(policy_findings([rule]), "security-group-no-open-ingress", "rule")


@pytest.mark.parametrize(("inputs", "violates"), [
    ({"ipProtocol": "tcp", "fromPort": 443, "toPort": 443, "cidrIpv4": "0.0.0.0/0", "tags": {"exposure": "public"}},
     False),
    ({"ipProtocol": "tcp", "fromPort": 8080, "toPort": 8080, "referencedSecurityGroupId": "sg-0alb"}, False),
    ({"ipProtocol": "tcp", "fromPort": 443, "toPort": 443, "cidrIpv4": "0.0.0.0/0"}, True),
    ({"ipProtocol": "-1", "cidrIpv6": "::/0", "tags": {"exposure": "public"}}, True),
], ids=["tagged-https", "sg-reference", "untagged-https", "all-traffic-v6"])
def test_vpc_security_group_ingress_rule(policy_findings, inputs, violates):
    rule = res(INGRESS_RULE, "rule", {"securityGroupId": "sg-0123", "description": "a test rule", **inputs})
    assert bool(messages(policy_findings([rule]), "security-group-no-open-ingress", "rule")) is violates


# --- security-group-described -----------------------------------------------------------------


@pytest.mark.parametrize(("inputs", "violates"), [
    ({"description": "inference tasks: traffic from the gateway only",
      "ingress": [{"protocol": "tcp", "fromPort": 8080, "toPort": 8080, "securityGroups": ["sg-0gw"],
                   "description": "HTTP from the gateway"}]}, False),
    ({}, True),  # the provider default "Managed by Pulumi"
    ({"description": "Managed by Pulumi"}, True),
    ({"description": "sg"}, True),
    ({"description": "inference tasks", "ingress": [{"protocol": "tcp", "fromPort": 8080, "toPort": 8080,
                                                      "securityGroups": ["sg-0gw"]}]}, True),
    ({"description": "inference tasks", "egress": [{"protocol": "-1", "fromPort": 0, "toPort": 0,
                                                     "cidrBlocks": ["0.0.0.0/0"], "description": "egress"}]}, True),
], ids=["described", "unset", "pulumi-default", "placeholder", "inline-rule-undescribed", "inline-rule-placeholder"])
def test_security_group_description(policy_findings, inputs, violates):
    group = res(SG, "tasks", {"vpcId": "vpc-0a1b2c3d4e5f60718", **inputs})
    assert bool(messages(policy_findings([group]), "security-group-described", "tasks")) is violates


@pytest.mark.parametrize(("type_", "description", "violates"), [
    (INGRESS_RULE, "HTTPS from the public ALB", False),
    (EGRESS_RULE, "to the broker on 5671", False),
    (SG_RULE, "gateway to inference", False),
    (INGRESS_RULE, None, True),
    (EGRESS_RULE, "  ", True),
    (SG_RULE, "todo", True),
], ids=["ingress-ok", "egress-ok", "sgrule-ok", "ingress-none", "egress-blank", "sgrule-todo"])
def test_security_group_rule_description(policy_findings, type_, description, violates):
    inputs: dict[str, Any] = {"securityGroupId": "sg-0123", "ipProtocol": "tcp", "protocol": "tcp", "fromPort": 443,
                              "toPort": 443, "type": "ingress", "cidrBlocks": ["10.0.0.0/8"]}
    if type_ != SG_RULE:
        inputs = {k: v for k, v in inputs.items() if k not in ("protocol", "type", "cidrBlocks")}
        inputs["cidrIpv4"] = "10.0.0.0/8"
    else:
        inputs.pop("ipProtocol")
    if description is not None:
        inputs["description"] = description
    found = messages(policy_findings([res(type_, "rule", inputs)]), "security-group-described", "rule")
    assert bool(found) is violates


# --- security-group-description-valid ---------------------------------------------------------


@pytest.mark.parametrize(("inputs", "violates"), [
    ({"description": "inference tasks: traffic from the gateway only (8080) & health checks",
      "ingress": [{"protocol": "tcp", "fromPort": 8080, "toPort": 8080, "cidrBlocks": ["10.0.0.0/8"],
                   "description": "HTTP from the VPC: [gateway] {probes} = ok; #1 @ 100 !$*+,"}]}, False),
    ({"description": "AMQPS (TLS) from the platform's services"}, True),  # what the broker once shipped
    ({"description": "tasks", "egress": [{"protocol": "tcp", "fromPort": 443, "toPort": 443,
                                          "cidrBlocks": ["0.0.0.0/0"],
                                          "description": "HTTPS to the \"world\""}]}, True),
    ({"description": "tasks", "ingress": [{"protocol": "tcp", "fromPort": 80, "toPort": 80,
                                           "securityGroups": ["sg-0gw"], "description": "ALB & gateway"}]}, True),
    ({"description": "tasks", "ingress": [{"protocol": "tcp", "fromPort": 80, "toPort": 80,
                                           "cidrBlocks": ["10.0.0.0/8"], "description": "ALB & gateway"}]}, False),
    ({"description": "x" * 256}, True),
    ({"description": "Ünicode tasks"}, True),
    ({}, False),  # no description: security-group-described's concern, EC2 accepts it
], ids=["all-allowed-characters", "apostrophe", "quotes", "ampersand-with-group-reference",
        "ampersand-with-cidr", "too-long", "accent", "none"])
def test_security_group_description_characters(policy_findings, inputs, violates):
    group = res(SG, "tasks", {"vpcId": "vpc-0a1b2c3d4e5f60718", **inputs})
    assert bool(messages(policy_findings([group]), "security-group-description-valid", "tasks")) is violates


@pytest.mark.parametrize(("type_", "extra", "description", "violates"), [
    (INGRESS_RULE, {"cidrIpv4": "10.0.0.0/8"}, "HTTPS from the public ALB", False),
    (EGRESS_RULE, {"referencedSecurityGroupId": "sg-0b"}, "AMQPS (TLS) to the env's Amazon MQ broker", True),
    (EGRESS_RULE, {"prefixListId": "pl-0123"}, "S3 & ECR layers", True),
    (INGRESS_RULE, {"cidrIpv4": "10.0.0.0/8"}, "line one\nline two", True),
], ids=["ok", "apostrophe", "ampersand-prefix-list", "newline"])
def test_security_group_rule_description_characters(policy_findings, type_, extra, description, violates):
    inputs = {"securityGroupId": "sg-0123", "ipProtocol": "tcp", "fromPort": 443, "toPort": 443,
              "description": description, **extra}
    found = messages(policy_findings([res(type_, "rule", inputs)]), "security-group-description-valid", "rule")
    assert bool(found) is violates
    if violates:
        assert "which EC2 refuses" in found[0] and "use only letters, digits, spaces" in found[0]


# --- cloudmap-service-health-check -------------------------------------------------------------


@pytest.mark.parametrize(("health", "violates"), [
    # An empty block is dropped by the provider: no check exists and every run plans a replacement.
    ({"healthCheckCustomConfig": {}}, True),
    ({"healthCheckCustomConfig": {"failureThreshold": 1}}, False),
    ({"healthCheckConfig": {"type": "HTTP", "resourcePath": "/health"}}, False),
    ({}, True),
], ids=["custom-empty", "custom", "route53", "none"])
def test_cloudmap_service_health_check(policy_findings, health, violates):
    service = res(CLOUDMAP_SERVICE, "inference", {
        "name": "inference", "dnsConfig": {"namespaceId": "ns-0123", "dnsRecords": [{"ttl": 10, "type": "A"}]},
        **health})
    found = messages(policy_findings([service]), "cloudmap-service-health-check", "inference")
    assert bool(found) is violates
    if violates:
        assert "health_check_custom_config" in found[0]


# --- cloudmap-instance-valid -------------------------------------------------------------------


def cloudmap_service(*record_types: str, **inputs: Any) -> dict[str, Any]:
    return res("aws:servicediscovery/service:Service", "legacy-svc", {"name": "legacy", "dnsConfig": {
        "namespaceId": "ns-0123", "dnsRecords": [{"ttl": 10, "type": t} for t in record_types]}, **inputs})


@pytest.mark.parametrize(("attributes", "violates"), [
    ({"AWS_INSTANCE_IPV4": "10.20.1.15", "AWS_INSTANCE_PORT": "8080"}, False),
    ({"AWS_INSTANCE_IPV4": "10.20.1.256", "AWS_INSTANCE_PORT": "8080"}, True),
    ({"AWS_INSTANCE_IPV4": "10.20.1.15", "AWS_INSTANCE_PORT": "70000"}, True),
    ({"AWS_INSTANCE_IPV4": "10.20.1.15", "AWS_INSTANCE_PORT": "0"}, True),
    ({"AWS_INSTANCE_IPV4": "0.0.0.0", "AWS_INSTANCE_PORT": "8080"}, True),
    ({"AWS_INSTANCE_IPV4": "inference.local", "AWS_INSTANCE_PORT": "http"}, True),
    ({"AWS_INSTANCE_PORT": "8080"}, True),
    ({"AWS_INSTANCE_IPV4": "10.20.1.15"}, True),  # the service has an SRV record: the port is required
], ids=["valid", "octet-256", "port-too-big", "port-zero", "unspecified", "names", "no-ipv4", "no-port-srv"])
def test_cloudmap_instance(policy_findings, attributes, violates):
    service = cloudmap_service("A", "SRV")
    instance = res(CLOUDMAP_INSTANCE, "legacy", {"instanceId": "legacy-1", "serviceId": "srv-0123",
                                                 "attributes": attributes},
                   property_dependencies={"serviceId": [service]})
    assert bool(messages(policy_findings([service, instance]), "cloudmap-instance-valid", "legacy")) is violates


@pytest.mark.parametrize(("records", "attributes", "violates"), [
    (("A",), {"AWS_INSTANCE_IPV4": "10.20.1.15"}, False),  # an A-record-only service needs no port
    (("A",), {}, True),
    (("AAAA", "SRV"), {"AWS_INSTANCE_IPV6": "2001:db8::1", "AWS_INSTANCE_PORT": "8080"}, False),
    (("A",), {"AWS_EC2_INSTANCE_ID": "i-0123456789abcdef0"}, False),  # AWS fills the address
    (("A",), {"AWS_EC2_INSTANCE_ID": "i-0123456789abcdef0", "AWS_INSTANCE_IPV4": "10.20.1.15"}, True),
], ids=["a-only-no-port", "a-only-no-ipv4", "ipv6-srv", "ec2-instance-id", "ec2-id-and-ipv4"])
def test_cloudmap_instance_requirements_follow_the_services_records(policy_findings, records, attributes, violates):
    service = cloudmap_service(*records)
    instance = res(CLOUDMAP_INSTANCE, "legacy", {"instanceId": "legacy-1", "serviceId": "srv-0123",
                                                 "attributes": attributes},
                   property_dependencies={"serviceId": [service]})
    assert bool(messages(policy_findings([service, instance]), "cloudmap-instance-valid", "legacy")) is violates


def test_cloudmap_instance_of_a_service_outside_the_stack_is_judged_on_its_values_only(policy_findings):
    instance = res(CLOUDMAP_INSTANCE, "legacy", {"instanceId": "legacy-1", "serviceId": "srv-0123",
                                                 "attributes": {"AWS_INSTANCE_IPV4": "10.20.1.15"}})
    assert not messages(policy_findings([instance]), "cloudmap-instance-valid", "legacy")


def test_cloudmap_instance_message_names_both_problems(policy_findings):
    instance = res(CLOUDMAP_INSTANCE, "legacy", {"instanceId": "legacy-1", "serviceId": "srv-0123",
                                                 "attributes": {"AWS_INSTANCE_IPV4": "10.0.0.300",
                                                                "AWS_INSTANCE_PORT": "99999"}})
    (message,) = messages(policy_findings([instance]), "cloudmap-instance-valid", "legacy")
    assert "'10.0.0.300', which is not an IPv4 address" in message and "'99999'" in message


# --- appmesh-egress-filter-drop-all -------------------------------------------------------------


@pytest.mark.parametrize(("inputs", "violates"), [
    ({}, False),  # DROP_ALL is the default
    ({"spec": {"egressFilter": {"type": "DROP_ALL"}}}, False),
    ({"spec": {"egressFilter": {"type": "ALLOW_ALL"}}}, True),
], ids=["default", "drop-all", "allow-all"])
def test_appmesh_egress_filter(policy_findings, inputs, violates):
    mesh = res(MESH, "platform", {"name": "platform", **inputs})
    found = messages(policy_findings([mesh]), "appmesh-egress-filter-drop-all", "platform")
    assert bool(found) is violates
    if violates:
        assert "DROP_ALL" in found[0]


# --- appmesh-virtual-node-health-check ---------------------------------------------------------


def listener(port: int, health: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"portMapping": {"port": port, "protocol": "http"}}
    if health:
        entry["healthCheck"] = {"protocol": "http", "path": "/health", "healthyThreshold": 2,
                                "unhealthyThreshold": 2, "timeoutMillis": 2000, "intervalMillis": 5000}
    return entry


@pytest.mark.parametrize(("listeners", "violates"), [
    ([listener(8080, True)], False),
    ([listener(8080, True), listener(9090, True)], False),
    ([listener(8080, False)], True),
    ([listener(8080, True), listener(9090, False)], True),
], ids=["one-checked", "two-checked", "unchecked", "one-of-two-unchecked"])
def test_appmesh_virtual_node_health_check(policy_findings, listeners, violates):
    node = res(VIRTUAL_NODE, "inference", {"meshName": "platform", "name": "inference",
                                           "spec": {"listeners": listeners}})
    found = messages(policy_findings([node]), "appmesh-virtual-node-health-check", "inference")
    assert bool(found) is violates
    if violates:
        assert "port 9090" in found[0] or "port 8080" in found[0]


# --- security-group-no-all-ports-from-cidr -------------------------------------------------------


@pytest.mark.parametrize(("ingress", "violates"), [
    ([{"protocol": "tcp", "fromPort": 0, "toPort": 65535, "cidrBlocks": ["10.20.0.0/16"]}], True),
    ([{"protocol": "-1", "fromPort": 0, "toPort": 0, "cidrBlocks": ["10.0.0.0/8"]}], True),
    ([{"protocol": "udp", "fromPort": 1, "toPort": 65535, "ipv6CidrBlocks": ["2001:db8::/56"]}], True),
    ([{"protocol": "tcp", "fromPort": 8080, "toPort": 8083, "cidrBlocks": ["10.20.0.0/16"]}], False),
    ([{"protocol": "tcp", "fromPort": 0, "toPort": 65535, "cidrBlocks": ["10.20.1.0/24"]}], False),
    ([{"protocol": "tcp", "fromPort": 0, "toPort": 65535, "securityGroups": ["sg-0123"]}], False),
    ([{"protocol": "-1", "fromPort": 0, "toPort": 0, "self": True}], False),
], ids=["tcp-all-from-vpc", "all-traffic-from-10/8", "udp-all-v6-/56", "named-ports", "small-range", "sg-reference",
        "self"])
def test_inline_ingress_of_all_ports_from_a_wide_range(policy_findings, ingress, violates):
    found = messages(policy_findings([sg("services", ingress)]), "security-group-no-all-ports-from-cidr", "services")
    assert bool(found) is violates


def test_all_ports_message_names_the_range_ports_and_fix(policy_findings):
    ingress = [{"protocol": "tcp", "fromPort": 0, "toPort": 65535, "cidrBlocks": ["10.20.0.0/16"],
                "description": "everything from the vpc"}]
    found = messages(policy_findings([sg("services", ingress)]), "security-group-no-all-ports-from-cidr", "services")
    assert found == ["security group 'services' admits tcp 0-65535 from 10.20.0.0/16; name the ports the peers need "
                     "and, inside a VPC, reference the peer's security group (referenced_security_group_id) instead "
                     "of an address range."]
    [finding] = [f for f in policy_findings([sg("services", ingress)], env="dev")
                 if f["rule"] == "security-group-no-all-ports-from-cidr"]
    assert finding["enforcement"] == "mandatory"


@pytest.mark.parametrize(("type_", "inputs", "violates"), [
    (INGRESS_RULE, {"ipProtocol": "-1", "cidrIpv4": "10.20.0.0/16"}, True),
    (INGRESS_RULE, {"ipProtocol": "tcp", "fromPort": 0, "toPort": 65535, "cidrIpv4": "172.16.0.0/12"}, True),
    (INGRESS_RULE, {"ipProtocol": "tcp", "fromPort": 8081, "toPort": 8081, "referencedSecurityGroupId": "sg-0s"},
     False),
    (INGRESS_RULE, {"ipProtocol": "-1", "referencedSecurityGroupId": "sg-0s"}, False),
    (INGRESS_RULE, {"ipProtocol": "tcp", "fromPort": 0, "toPort": 65535, "prefixListId": "pl-0123"}, False),
    (INGRESS_RULE, {"ipProtocol": "tcp", "fromPort": 0, "toPort": 65535, "cidrIpv4": "10.20.3.4/32"}, False),
    (SG_RULE, {"type": "ingress", "protocol": "tcp", "fromPort": 0, "toPort": 65535, "cidrBlocks": ["10.20.0.0/16"]},
     True),
    (SG_RULE, {"type": "egress", "protocol": "-1", "fromPort": 0, "toPort": 0, "cidrBlocks": ["0.0.0.0/0"]}, False),
    (EGRESS_RULE, {"ipProtocol": "-1", "cidrIpv4": "0.0.0.0/0"}, False),
], ids=["vpc-rule-all-traffic", "vpc-rule-tcp-all-/12", "vpc-rule-port-sg", "vpc-rule-all-sg", "vpc-rule-prefix-list",
        "vpc-rule-host", "sg-rule-ingress", "sg-rule-egress", "egress-rule"])
def test_rule_resources_admitting_all_ports_from_a_wide_range(policy_findings, type_, inputs, violates):
    rule = res(type_, "rule", {"securityGroupId": "sg-0123", "description": "a test rule", **inputs})
    assert bool(messages(policy_findings([rule]), "security-group-no-all-ports-from-cidr", "rule")) is violates


@pytest.mark.parametrize(("type_", "inputs", "what"), [
    (INGRESS_RULE, {"ipProtocol": "-1", "cidrIpv4": UNKNOWN_STRING}, "cidrIpv4"),
    (INGRESS_RULE, {"ipProtocol": UNKNOWN_STRING, "cidrIpv4": "10.20.0.0/16"}, "ports"),
])
def test_an_unknown_range_or_protocol_leaves_the_all_ports_rule_undecided(policy_result, type_, inputs, what):
    rule = res(type_, "rule", {"securityGroupId": "sg-0123", "description": "a test rule", **inputs})
    result = policy_result([rule])
    assert not [f for f in result.findings if f.rule == "security-group-no-all-ports-from-cidr"]
    assert any(na.rule == "security-group-no-all-ports-from-cidr" and what in na.reason
               for na in result.not_applicable), [na.reason for na in result.not_applicable]
