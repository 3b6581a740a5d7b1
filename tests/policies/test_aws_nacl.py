"""``nacl-no-open-admin-ports``: network ACLs (inline entries and NetworkAclRule) through the real pack."""

from __future__ import annotations

from typing import Any

import pytest

from tests.policies.resources import UNKNOWN_NUMBER, UNKNOWN_STRING, res
from tests.policies.tokens import DEFAULT_NACL, NACL, NACL_RULE

RULE = "nacl-no-open-admin-ports"


def entry(rule_no: int, action: str, protocol: str, low: int, high: int, cidr: str = "0.0.0.0/0") -> dict[str, Any]:
    key = "ipv6CidrBlock" if ":" in cidr else "cidrBlock"
    return {"ruleNo": rule_no, "action": action, "protocol": protocol, "fromPort": low, "toPort": high, key: cidr}


def messages(findings: list[dict[str, Any]], name: str) -> list[str]:
    return [f["message"] for f in findings if f["rule"] == RULE and f["urn"].endswith(f"::{name}")]


# A public tier's NACL: HTTPS in, return traffic on the ephemeral ports, SSH from the office. The
# ephemeral range 1024-65535 covers 3389, so RDP is denied first (without rule 90 it is a finding).
COMPLIANT = [
    entry(90, "deny", "tcp", 3389, 3389),
    entry(100, "allow", "tcp", 443, 443),
    entry(110, "allow", "tcp", 1024, 65535),
    entry(120, "allow", "tcp", 22, 22, "203.0.113.0/24"),
    entry(130, "allow", "tcp", 443, 443, "::/0"),
]


@pytest.mark.parametrize("type_", [NACL, DEFAULT_NACL])
@pytest.mark.parametrize(("ingress", "violates"), [
    (COMPLIANT, False),
    (COMPLIANT[1:], True),
    ([entry(100, "allow", "tcp", 22, 22)], True),
    ([entry(100, "allow", "6", 3000, 4000)], True),  # 3389 inside the range, protocol by number
    ([entry(100, "allow", "-1", 0, 0)], True),  # all traffic: ports ignored
    ([entry(100, "allow", "all", 0, 0, "::/0")], True),
    ([entry(100, "allow", "udp", 3389, 3389)], True),  # RDP over UDP (EC2.21: TCP or UDP)
    ([entry(100, "allow", "tcp", 20, 21)], True),  # FTP (checkov CKV_AWS_229/230)
    ([entry(100, "deny", "-1", 0, 0)], False),
    ([entry(100, "allow", "icmp", 0, 0)], False),  # another protocol reaches no TCP/UDP port
    # the first match decides: a lower-numbered world deny of the same family makes a later allow harmless
    ([entry(200, "allow", "-1", 0, 0), entry(100, "deny", "tcp", 0, 65535), entry(110, "deny", "udp", 0, 65535)],
     False),
    # ... but an IPv4 deny does not stop IPv6 traffic, nor a deny placed after the allow
    ([entry(100, "deny", "tcp", 22, 22), entry(200, "allow", "tcp", 22, 22, "::/0")], True),
    ([entry(100, "allow", "tcp", 22, 22), entry(200, "deny", "tcp", 22, 22)], True),
], ids=["compliant", "ephemeral-without-rdp-deny", "ssh", "rdp-range", "all-traffic", "all-ipv6", "rdp-udp",
        "ftp", "deny", "icmp", "denied-first", "deny-other-family", "deny-after"])
def test_inline_ingress(policy_findings, type_, ingress, violates):
    inputs = {"ingress": ingress, "egress": [entry(100, "allow", "-1", 0, 0)]}
    inputs |= {"vpcId": "vpc-0123"} if type_ == NACL else {"defaultNetworkAclId": "acl-0123"}
    assert bool(messages(policy_findings([res(type_, "acl", inputs)]), "acl")) is violates


def test_the_message_names_the_entry_ports_and_fix(policy_findings):
    acl = res(NACL, "public", {"vpcId": "vpc-0123", "ingress": [entry(100, "allow", "tcp", 0, 65535)]})
    (message,) = messages(policy_findings([acl]), "public")
    assert "network ACL 'public'" in message
    assert "rule 100 (tcp 0-65535 from 0.0.0.0/0) admits tcp 20, tcp 21, tcp 22, tcp 3389" in message
    assert "udp" not in message.split(".")[0] and "lower rule number" in message


def test_egress_entries_and_an_empty_default_acl_pass(policy_findings):
    default = res(DEFAULT_NACL, "default", {"defaultNetworkAclId": "acl-0123",
                                            "egress": [entry(100, "allow", "-1", 0, 0)]})
    assert not messages(policy_findings([default]), "default")


@pytest.mark.parametrize(("inputs", "violates"), [
    ({"ruleAction": "allow", "protocol": "tcp", "fromPort": 22, "toPort": 22, "cidrBlock": "0.0.0.0/0"}, True),
    ({"ruleAction": "allow", "protocol": "tcp", "fromPort": 22, "toPort": 22, "cidrBlock": "0.0.0.0/0",
      "egress": False}, True),
    ({"ruleAction": "allow", "protocol": "-1", "ipv6CidrBlock": "::/0"}, True),
    ({"ruleAction": "allow", "protocol": "tcp", "fromPort": 22, "toPort": 22, "cidrBlock": "10.0.0.0/8"}, False),
    ({"ruleAction": "allow", "protocol": "tcp", "fromPort": 443, "toPort": 443, "cidrBlock": "0.0.0.0/0"}, False),
    ({"ruleAction": "deny", "protocol": "-1", "cidrBlock": "0.0.0.0/0"}, False),
    ({"ruleAction": "allow", "protocol": "-1", "cidrBlock": "0.0.0.0/0", "egress": True}, False),
], ids=["ssh", "ssh-explicit-ingress", "all-ipv6", "private-range", "https", "deny", "egress"])
def test_network_acl_rule(policy_findings, inputs, violates):
    rule = res(NACL_RULE, "rule", {"networkAclId": "acl-0123", "ruleNumber": 100, **inputs})
    found = messages(policy_findings([rule]), "rule")
    assert bool(found) is violates
    if violates:
        assert found[0].startswith("network ACL rule 'rule' lets the internet reach admin ports: rule 100 (")


@pytest.mark.parametrize(("type_", "inputs", "what"), [
    (NACL, {"vpcId": "vpc-0123", "ingress": UNKNOWN_STRING}, "ingress"),
    (NACL, {"vpcId": "vpc-0123", "ingress": [entry(200, "allow", "tcp", 22, 22),
                                             {**entry(100, "deny", "tcp", 22, 22), "cidrBlock": UNKNOWN_STRING}]},
     "ingress[1]"),
    (NACL_RULE, {"networkAclId": "acl-0123", "ruleNumber": 100, "ruleAction": "allow", "protocol": "tcp",
                 "fromPort": 22, "toPort": 22, "cidrBlock": UNKNOWN_STRING}, "cidrBlock"),
    (NACL_RULE, {"networkAclId": "acl-0123", "ruleNumber": 100, "ruleAction": "allow", "protocol": "tcp",
                 "fromPort": UNKNOWN_NUMBER, "toPort": 22, "cidrBlock": "0.0.0.0/0"}, "fromPort"),
], ids=["ingress", "entry", "rule-cidr", "rule-port"])
def test_unknown_entries_leave_the_nacl_rule_undecided(policy_result, type_, inputs, what):
    result = policy_result([res(type_, "acl", inputs)])
    assert not [f for f in result.findings if f.rule == RULE]
    assert any(na.rule == RULE and what in na.reason and "unknown until deployment" in na.reason
               for na in result.not_applicable), [na.reason for na in result.not_applicable]
