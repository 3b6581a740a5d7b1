"""VPC endpoints carry a policy that narrows them, not AWS's default "full access".

Checks ``policy`` of ``aws:ec2/vpcEndpoint:VpcEndpoint`` of type ``Interface`` or ``Gateway`` (the
default type is Gateway): unset means AWS's default policy, which allows every action on every
resource to every principal; an explicit policy with an ``Allow`` statement for ``*`` on every action (``*``, the
service's ``s3:*``, or ``NotAction``) and every resource (``*``, an any-account ARN, or ``NotResource``) is that same
default and fails too, unless a condition pins the callers (``aws:PrincipalAccount``/``aws:PrincipalOrgID``) or the
resources' account (``aws:ResourceAccount``/``aws:ResourceOrgID``) to fixed values. Statements that narrow the
principal, the actions or the resources pass. ``GatewayLoadBalancer`` endpoints do not support policies and are
not applicable, nor are endpoints of an endpoint service other than an AWS service
(``com.amazonaws.vpce.<region>.vpce-svc-...``): AWS gives them full access and refuses any other policy.

Why: the endpoint is a way out of the VPC that bypasses the NAT's egress controls; with the default
policy a compromised task can use it to write to any account's S3 bucket or read any account's ECR
repository. Related: Security Hub EC2.55-EC2.60 ask for endpoints to exist; no cdk-nag/checkov
equivalent for the endpoint policy.
"""

import re

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import (
    RESOURCE_CONDITION_KEYS,
    UNKNOWN,
    allow_statements,
    applies_to,
    as_list,
    contains_unknown,
    every_resource,
    narrows_to_fixed_callers,
    parse_json,
    principal_values,
    props_of_kind,
    rule_policy,
    undecidable,
)
from shared.policy_typing import ReportViolation

#: the service name of an endpoint service other than an AWS service (PrivateLink partners, other accounts):
#: AWS allows full access to its endpoints and refuses any other policy (EC2: "Service ... only supports the
#: full-access endpoint policy"; Amazon VPC guide, "Control access to VPC endpoints using endpoint policies")
ENDPOINT_SERVICE = re.compile(r"^com\.amazonaws\.vpce\.[a-z0-9-]+\.vpce-svc-[0-9a-f]+$")


#: every action, or every action of one service: through an endpoint only its service's actions can be called, so
#: "s3:*" on an S3 endpoint is full access (action names are case-insensitive)
EVERY_ACTION = re.compile(r"[*?]*\*[*?]*(:[*?]*\*[*?]*)?|[a-z0-9-]+:[*?]*\*[*?]*")


#: the condition keys that narrow an endpoint policy statement: who calls (the principal's account, organization or
#: ARN) and whose resources. Not aws:SourceVpc/aws:SourceVpce: every request through the endpoint comes from them
ENDPOINT_NARROWING_KEYS = frozenset({"aws:principalaccount", "aws:principalorgid", "aws:principalorgpaths",
                                     "aws:principalarn", *RESOURCE_CONDITION_KEYS})


#: an organization path pinned to one organization, with a wildcard only after it (the form the IAM guide gives for
#: an OU and everything under it: "o-a1b2c3d4e5/r-ab12/ou-ab12-11111111/*")
ORG_PATH = re.compile(r"o-[a-z0-9]{10,32}/[^*?$]*\*?")


def _in_one_organization(statement: dict[str, object]) -> bool:
    """Whether a condition holds the callers or the resources to paths of one organization (``aws:PrincipalOrgPaths``,
    ``aws:ResourceOrgPaths`` under ``ForAnyValue:StringLike`` or ``StringLike``)."""
    condition = statement.get("Condition")
    if not isinstance(condition, dict):
        return False
    for operator, entries in condition.items():
        if str(operator).lower() not in ("foranyvalue:stringlike", "stringlike", "foranyvalue:stringequals",
                                         "stringequals") or not isinstance(entries, dict):
            continue
        for key, values in entries.items():
            listed = as_list(values)
            if (str(key).lower() in ("aws:principalorgpaths", "aws:resourceorgpaths") and listed
                    and all(isinstance(v, str) and ORG_PATH.fullmatch(v) for v in listed)):
                return True
    return False


def _wide_open(statement: dict[str, object]) -> bool:
    """Whether an ``Allow`` statement (one of :func:`allow_statements`) is AWS's default full access: anyone, every
    action (or ``NotAction``), every resource (or ``NotResource``), no condition naming the callers or the
    resources' account (a condition on how, ``aws:SecureTransport``, narrows nothing)."""
    if narrows_to_fixed_callers(statement, ENDPOINT_NARROWING_KEYS) or _in_one_organization(statement):
        return False
    everyone = any(v == "*" for v in principal_values(statement)) or statement.get("Principal") is None
    every_action = statement.get("NotAction") is not None or any(
        EVERY_ACTION.fullmatch(a.strip().lower()) for a in as_list(statement.get("Action")) if isinstance(a, str))
    resources = [r for r in as_list(statement.get("Resource")) if isinstance(r, str)]
    every = statement.get("NotResource") is not None or any(every_resource(r) for r in resources)
    return everyone and every_action and every


@applies_to("aws:ec2/vpcEndpoint:VpcEndpoint")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    props = props_of_kind(args, "VPC endpoint", "vpcEndpointType", default="Gateway",
                          judged=lambda kind: kind != "gatewayloadbalancer",
                          otherwise=lambda _: "is a Gateway Load Balancer endpoint (no endpoint policy)")
    raw = props.get("policy")
    if raw is UNKNOWN or contains_unknown(raw):
        undecidable(args, f"VPC endpoint '{args.name}': policy")
    service = props.get("serviceName")
    if isinstance(service, str) and ENDPOINT_SERVICE.match(service.strip()):
        args.not_applicable(f"VPC endpoint '{args.name}' connects to an endpoint service ({service}), which takes "
                            "only the full-access policy")
    if service is UNKNOWN and (raw is None or raw == ""):
        undecidable(args, f"VPC endpoint '{args.name}': serviceName")
    fix = ("set policy= to a document that allows only the platform's principals (condition aws:PrincipalAccount) "
           "and the actions/resources it uses through this endpoint")
    if raw is None or raw == "":
        report_violation(f"VPC endpoint '{args.name}' has AWS's default full-access policy; {fix}.")
        return
    try:
        allows = [statement for _, statement in allow_statements(parse_json(raw))]
    except ValueError:
        report_violation(f"VPC endpoint '{args.name}': policy is not valid JSON; {fix}.")
        return
    if any(_wide_open(s) for s in allows):  # statements add up: one full-access Allow is full access
        report_violation(f"VPC endpoint '{args.name}' has a full-access policy statement (anyone, any action, any "
                         f"resource, no condition naming the callers or the resources' account); {fix}.")


POLICY = rule_policy(__file__, _validate)
