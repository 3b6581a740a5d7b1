"""Manually registered Cloud Map instances carry a valid IPv4 address and a port 1-65535.

Checks the ``attributes`` of ``aws:servicediscovery/instance:Instance``: ``AWS_INSTANCE_IPV4`` must be
a unicast IPv4 address (not 0.0.0.0, loopback, multicast or broadcast) and ``AWS_INSTANCE_PORT`` an
integer 1-65535. Alias (``AWS_ALIAS_DNS_NAME``) and CNAME (``AWS_INSTANCE_CNAME``) registrations have
no address/port and are not applicable.

Why: Cloud Map accepts any string in these attributes and hands it to every caller; a typo becomes
an outage that only shows up at resolution time. No cdk-nag/checkov equivalent.
"""

import ipaddress

from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from policies.aws.support import UNKNOWN, applies_to, plain, undecidable
from shared.policy_support import rule_description, rule_id


def _ipv4_problem(value: object) -> str | None:
    if value is None or value == "":
        return "has no AWS_INSTANCE_IPV4"
    try:
        address = ipaddress.IPv4Address(str(value).strip())
    except ValueError:
        return f"has AWS_INSTANCE_IPV4={value!r}, which is not an IPv4 address"
    if address.is_unspecified or address.is_loopback or address.is_multicast or str(address) == "255.255.255.255":
        return f"has AWS_INSTANCE_IPV4={value!r}, which no client can reach"
    return None


def _port_problem(value: object) -> str | None:
    if value is None or value == "":
        return "has no AWS_INSTANCE_PORT"
    text = str(value).strip()
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        return f"has AWS_INSTANCE_PORT={value!r}, which is not a port 1-65535"
    return None


@applies_to("aws:servicediscovery/instance:Instance")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    attributes = plain(args.props).get("attributes")
    if attributes is UNKNOWN:
        undecidable(args, f"Cloud Map instance '{args.name}': attributes")
    attributes = attributes if isinstance(attributes, dict) else {}
    if attributes.get("AWS_ALIAS_DNS_NAME") is not None or attributes.get("AWS_INSTANCE_CNAME") is not None:
        args.not_applicable(f"Cloud Map instance '{args.name}' is an alias/CNAME registration (no IPv4/port)")
    ipv4, port = attributes.get("AWS_INSTANCE_IPV4"), attributes.get("AWS_INSTANCE_PORT")
    problems = []
    if ipv4 is not UNKNOWN and (problem := _ipv4_problem(ipv4)):
        problems.append(problem)
    if port is not UNKNOWN and (problem := _port_problem(port)):
        problems.append(problem)
    if problems:
        report_violation(
            f"Cloud Map instance '{args.name}' {' and '.join(problems)}; set attributes AWS_INSTANCE_IPV4 to the "
            "instance's private IPv4 and AWS_INSTANCE_PORT to its listening port (1-65535)."
        )
    if ipv4 is UNKNOWN or port is UNKNOWN:
        undecidable(args, f"Cloud Map instance '{args.name}': AWS_INSTANCE_IPV4/AWS_INSTANCE_PORT")


POLICY = ResourceValidationPolicy(name=rule_id(__file__), description=rule_description(__file__), validate=_validate)
