"""Network ACLs do not let the whole internet reach the remote-administration ports (SSH 22, RDP 3389,
FTP 20/21).

Checks the inline ``ingress`` entries of ``aws:ec2/networkAcl:NetworkAcl`` and
``aws:ec2/defaultNetworkAcl:DefaultNetworkAcl``, and ``aws:ec2/networkAclRule:NetworkAclRule`` with
``egress`` false (the provider's default). A violation is an ``allow`` entry from ``0.0.0.0/0`` (``cidrBlock``)
or ``::/0`` (``ipv6CidrBlock``) whose protocol is TCP (``6``/``tcp``), UDP (``17``/``udp``) or all
(``-1``/``all``, every port whatever the port range) and whose port range covers one of those ports.
A NACL applies its entries in rule-number order and the first match decides (Amazon VPC user guide,
"Network ACL rules"), so inline, a ``deny`` entry from the whole internet (same address family,
protocol and port) with a lower ``ruleNo`` makes a later allow harmless. The usual allow of return
traffic on the ephemeral ports, TCP 1024-65535 from anywhere (what a NAT gateway, ELB or Lambda
needs), covers 3389: deny 3389 with a lower rule number, as the Amazon VPC user guide ("Ephemeral
ports") advises for unwanted ports inside that range. A standalone
``NetworkAclRule`` is judged alone: a resource rule cannot see the ACL's other entries. A
``DefaultNetworkAcl`` without ``ingress`` has no ingress entry (the provider removes the default
NACL's rules when it adopts it), which allows nothing. The platform itself declares no NACL (its
subnets keep the VPC's default NACL and rely on security groups); the rule is for the programs that do.

Why: a NACL applies to every instance of its subnets, so one world-open allow for SSH or RDP exposes
all of them at once, whatever their security groups allow next (only the security group stands
between the internet and the port). Matches Security Hub EC2.21 (AWS Config
``nacl-no-unrestricted-ssh-rdp``: TCP or UDP, 22 or 3389) and checkov CKV_AWS_229 (21),
CKV_AWS_230 (20), CKV_AWS_231 (3389), CKV_AWS_232 (22).
"""

from __future__ import annotations

from typing import Any

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import (
    UNKNOWN,
    as_int,
    as_list,
    contains_unknown,
    describe_ports,
    is_true,
    is_world,
    plain,
    protocol_name,
    resource_policy,
    undecidable,
)
from shared.policy_typing import ReportViolation

NETWORK_ACL = "aws:ec2/networkAcl:NetworkAcl"
DEFAULT_NETWORK_ACL = "aws:ec2/defaultNetworkAcl:DefaultNetworkAcl"
NETWORK_ACL_RULE = "aws:ec2/networkAclRule:NetworkAclRule"
#: FTP data and control, SSH, RDP: the ports of Security Hub EC2.21 and checkov CKV_AWS_229-232
ADMIN_PORTS = (20, 21, 22, 3389)
#: an entry's source, IPv4 or IPv6: each family is matched on its own (an IPv4 deny does not stop IPv6)
CIDR_KEYS = ("cidrBlock", "ipv6CidrBlock")


def _admits(protocol: Any, from_port: Any, to_port: Any, transport: str, port: int) -> bool:
    """Whether an entry matches ``transport`` (tcp/udp) traffic to ``port``. Protocol -1 matches every
    port; a TCP/UDP entry its port range (ports ignored for -1: pulumi_aws NetworkAclRule docs)."""
    name = protocol_name(protocol)
    if name == "-1":
        return True
    low, high = as_int(from_port), as_int(to_port)
    return name == transport and low is not None and high is not None and low <= port <= high


def _open_ports(entries: list[dict[str, Any]], action_key: str, number_key: str) -> list[str]:
    """Per allow entry that is the first world match (lowest rule number) of an admin port: what it
    admits. ``entries`` are known and in evaluation order."""
    reached: dict[int, list[str]] = {}
    for cidr_key in CIDR_KEYS:
        world = [(i, e) for i, e in enumerate(entries) if is_world(e.get(cidr_key))]
        for transport in ("tcp", "udp"):
            for port in ADMIN_PORTS:
                first = next((i for i, e in world if _admits(
                    e.get("protocol"), e.get("fromPort"), e.get("toPort"), transport, port)), None)
                if first is not None and str(entries[first].get(action_key, "")).strip().lower() == "allow":
                    reached.setdefault(first, []).append(f"{transport} {port}")
    found: list[str] = []
    for index, ports in sorted(reached.items()):
        entry = entries[index]
        number = as_int(entry.get(number_key))
        label = f"rule {number}" if number is not None else "the rule"
        sources = " and ".join(str(entry[key]) for key in CIDR_KEYS if is_world(entry.get(key)))
        found.append(f"{label} ({describe_ports(entry.get('protocol'), entry.get('fromPort'), entry.get('toPort'))} "
                     f"from {sources}) admits {', '.join(ports)}")
    return found


def _message(what: str, name: str, found: list[str]) -> str:
    return (f"{what} '{name}' lets the internet reach admin ports: {'; '.join(found)}. Restrict the source to "
            "the administrators' range, narrow the port range, or deny those ports from 0.0.0.0/0 and ::/0 with "
            "a lower rule number; reach hosts through SSM Session Manager rather than open admin ports.")


def _check_inline(args: ResourceValidationArgs, report: ReportViolation) -> None:
    what = "network ACL" if args.resource_type == NETWORK_ACL else "default network ACL"
    ingress = plain(args.props).get("ingress")
    if ingress is UNKNOWN:
        undecidable(args, f"{what} '{args.name}': ingress")
    entries = list(as_list(ingress))
    unknown = [f"ingress[{i}]" for i, entry in enumerate(entries) if contains_unknown(entry)]
    if unknown:
        # An unknown entry may be a deny with a lower rule number: the order decides, so nothing is judged.
        undecidable(args, f"{what} '{args.name}': {', '.join(unknown)}")
    known = sorted((e for e in entries if isinstance(e, dict)), key=lambda e: as_int(e.get("ruleNo")) or 0)
    found = _open_ports(known, "action", "ruleNo")
    if found:
        report(_message(what, args.name, found))


def _check_rule(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = plain(args.props)
    egress = props.get("egress")
    if egress is UNKNOWN:
        undecidable(args, f"network ACL rule '{args.name}': egress")
    if is_true(egress):
        args.not_applicable(f"network ACL rule '{args.name}' is an egress rule")
    relevant = {key: props.get(key) for key in ("ruleAction", "protocol", "fromPort", "toPort", "cidrBlock",
                                                "ipv6CidrBlock", "ruleNumber")}
    unknown = [key for key, value in relevant.items() if key != "ruleNumber" and contains_unknown(value)]
    if unknown:
        undecidable(args, f"network ACL rule '{args.name}': {', '.join(unknown)}")
    found = _open_ports([relevant], "ruleAction", "ruleNumber")
    if found:
        report(_message("network ACL rule", args.name, found))


def check(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type == NETWORK_ACL_RULE:
        _check_rule(args, report)
    else:
        _check_inline(args, report)


POLICY = resource_policy(__file__, check, types=[NETWORK_ACL, DEFAULT_NETWORK_ACL, NETWORK_ACL_RULE])
