"""Manually registered Cloud Map instances carry the attributes their service's records need, valid.

A stack rule over ``aws:servicediscovery/instance:Instance`` (``attributes``), read against the rules of
Cloud Map's ``RegisterInstance`` (botocore's model documents them):

* values given must be valid: ``AWS_INSTANCE_IPV4`` a unicast IPv4 address (not 0.0.0.0, loopback,
  multicast or broadcast), ``AWS_INSTANCE_PORT`` an integer 1-65535;
* what is required depends on the instance's service (``serviceId``, resolved to an
  ``aws:servicediscovery/service:Service`` of the stack through property dependencies, value or
  dependencies): an ``A`` record needs ``AWS_INSTANCE_IPV4``; an ``SRV`` record needs
  ``AWS_INSTANCE_PORT`` and an address (IPv4 or IPv6); a Route 53 ``healthCheckConfig`` needs the port.
  An A-record-only service needs no port. When the service is not in the stack (or cannot be told),
  only the given values are judged.
* ``AWS_EC2_INSTANCE_ID`` (HTTP namespaces): AWS fills ``AWS_INSTANCE_IPV4`` from the instance and
  accepts no other attribute than ``AWS_INIT_HEALTH_STATUS`` next to it, so giving an address or port
  as well is the finding, not leaving them out.
* Alias (``AWS_ALIAS_DNS_NAME``) and CNAME (``AWS_INSTANCE_CNAME``) registrations have no address/port
  of their own and are skipped.

Why: Cloud Map accepts any string in these attributes and hands it to every caller; a typo becomes
an outage that only shows up at resolution time. No cdk-nag/checkov equivalent.
"""

import ipaddress
from typing import Any

from pulumi_policy import PolicyResource, StackValidationArgs

from shared.policy_support import (
    UNKNOWN,
    as_list,
    contains_unknown,
    get,
    plain,
    referenced_targets,
    resource_input,
    stack_resources,
    stack_rule_policy,
)
from shared.policy_typing import ReportViolation

INSTANCE = "aws:servicediscovery/instance:Instance"
SERVICE = "aws:servicediscovery/service:Service"
ADDRESS_KEYS = ("AWS_INSTANCE_IPV4", "AWS_INSTANCE_IPV6", "AWS_INSTANCE_PORT")


def _ipv4_problem(value: object) -> str | None:
    try:
        address = ipaddress.IPv4Address(str(value).strip())
    except ValueError:
        return f"has AWS_INSTANCE_IPV4={value!r}, which is not an IPv4 address"
    if address.is_unspecified or address.is_loopback or address.is_multicast or str(address) == "255.255.255.255":
        return f"has AWS_INSTANCE_IPV4={value!r}, which no client can reach"
    return None


def _port_problem(value: object) -> str | None:
    text = str(value).strip()
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        return f"has AWS_INSTANCE_PORT={value!r}, which is not a port 1-65535"
    return None


def _needs(service: PolicyResource) -> tuple[set[str], bool] | None:
    """(DNS record types, Route 53 health check?) of a service; ``None`` when unknown."""
    props = plain(service.props)
    records, health = get(props, "dnsConfig", "dnsRecords"), props.get("healthCheckConfig")
    if contains_unknown(records) or health is UNKNOWN:
        return None
    return {str(get(r, "type") or "").upper() for r in as_list(records)}, health is not None


def _problems(attributes: dict[str, Any], needs: tuple[set[str], bool] | None) -> list[str]:
    ipv4, ipv6, port = (attributes.get(k) for k in ADDRESS_KEYS)
    if attributes.get("AWS_EC2_INSTANCE_ID") is not None:
        extra = [k for k in ADDRESS_KEYS if attributes.get(k) is not None]
        return [f"sets {', '.join(extra)} next to AWS_EC2_INSTANCE_ID, which AWS rejects (it fills the address "
                "from the instance)"] if extra else []
    problems = []  # an unknown value counts as given: only its validity waits for deployment
    if ipv4 not in (None, "", UNKNOWN) and (problem := _ipv4_problem(ipv4)):
        problems.append(problem)
    if port not in (None, "", UNKNOWN) and (problem := _port_problem(port)):
        problems.append(problem)
    if needs is not None:
        types, route53_health = needs
        if "A" in types and ipv4 in (None, ""):
            problems.append("has no AWS_INSTANCE_IPV4 (its service has an A record)")
        if "SRV" in types and ipv4 in (None, "") and ipv6 in (None, "") and "A" not in types:
            problems.append("has no AWS_INSTANCE_IPV4 or AWS_INSTANCE_IPV6 (its service has an SRV record)")
        if ("SRV" in types or route53_health) and port in (None, ""):
            why = "an SRV record" if "SRV" in types else "a Route 53 health check"
            problems.append(f"has no AWS_INSTANCE_PORT (its service has {why})")
    return problems


def _validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    instances = stack_resources(args, INSTANCE, none_reason="the stack has no manually registered Cloud Map instance")
    services = stack_resources(args, SERVICE)
    undecided: list[str] = []
    for instance in instances:
        attributes = resource_input(instance, "attributes")
        if attributes is UNKNOWN:
            undecided.append(f"Cloud Map instance '{instance.name}': attributes")
            continue
        attributes = attributes if isinstance(attributes, dict) else {}
        if attributes.get("AWS_ALIAS_DNS_NAME") is not None or attributes.get("AWS_INSTANCE_CNAME") is not None:
            continue
        unknown = sorted(k for k, v in attributes.items() if v is UNKNOWN)
        targets = referenced_targets(instance, "serviceId", services)
        needs = _needs(targets[0]) if targets else None
        if targets is None or (targets and needs is None):
            undecided.append(f"Cloud Map instance '{instance.name}': its service's records")
        problems = _problems(attributes, needs)
        if problems:
            report_violation(
                f"Cloud Map instance '{instance.name}' {' and '.join(problems)}; set AWS_INSTANCE_IPV4 to the "
                "instance's private IPv4 and, for SRV records or Route 53 health checks, AWS_INSTANCE_PORT to its "
                "listening port (1-65535).", instance.urn)
        if unknown:
            undecided.append(f"Cloud Map instance '{instance.name}': {'/'.join(unknown)}")
    if undecided:
        args.not_applicable(f"{', '.join(undecided)} unknown until deployment; the rule decides once it is known")


POLICY = stack_rule_policy(__file__, _validate)
