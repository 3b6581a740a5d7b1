"""HTTPS/TLS listeners serve certificates from AWS Certificate Manager (ACM), not IAM server certificates.

A stack rule over ``aws:lb/listener:Listener`` / ``aws:alb/listener:Listener`` with protocol HTTPS or TLS
(``certificateArn``, the default certificate, which such a listener must have) and
``aws:lb/listenerCertificate:ListenerCertificate`` / ``aws:alb/listenerCertificate:ListenerCertificate``
(the extra SNI certificates). A known ARN passes when it is an ACM certificate
(``arn:<partition>:acm:<region>:<account>:certificate/...``) and fails otherwise, naming an IAM server
certificate (``arn:<partition>:iam::<account>:server-certificate/...``) as such. During preview the ARN of a
certificate created in the same run is unknown; the rule then looks at the resources the ARN is computed
from (the engine's property dependencies, which the real CLI sends too): an ``aws.acm.Certificate`` or
``aws.acm.CertificateValidation`` passes, an ``aws.iam.ServerCertificate`` fails, and an ARN traceable to
neither (a stack reference, a lookup) makes the rule not applicable for the stack, with the reason.
Other listener protocols (HTTP, TCP, UDP) carry no certificate and are not checked.

Why: ACM renews the certificates it issues before they expire and deploys the renewed one to the load
balancer by itself, and its private keys never leave the service; an IAM server certificate is a key
pair uploaded by hand that nobody renews, so the listener serves an expired certificate one day. The
ELB guide ("SSL certificates for your Application Load Balancer") recommends ACM. Matches cdk-nag
ELBv2ACMCertificateRequired; no Security Hub or checkov equivalent.
"""

import re

from pulumi_policy import PolicyResource, StackValidationArgs

from shared.policy_support import UNKNOWN, plain, stack_rule_policy
from shared.policy_typing import ReportViolation

LISTENERS = ("aws:lb/listener:Listener", "aws:alb/listener:Listener")
LISTENER_CERTIFICATES = ("aws:lb/listenerCertificate:ListenerCertificate",
                         "aws:alb/listenerCertificate:ListenerCertificate")
#: resources whose outputs are ACM certificate ARNs (Certificate.arn, CertificateValidation.certificate_arn)
ACM_SOURCES = frozenset({"aws:acm/certificate:Certificate", "aws:acm/certificateValidation:CertificateValidation"})
IAM_SOURCES = frozenset({"aws:iam/serverCertificate:ServerCertificate"})
SERVICE = re.compile(r"^arn:aws[a-z-]*:(?P<service>[a-z0-9-]+):")
FIX = ("request the certificate in ACM (aws.acm.Certificate with DNS validation) or import it into ACM, and "
       "set certificate_arn to that ARN")


def _what(resource: PolicyResource) -> str:
    kind = "listener certificate" if resource.resource_type in LISTENER_CERTIFICATES else "listener"
    return f"{kind} '{resource.name}'"


def _judge_known(resource: PolicyResource, arn: object, report_violation: ReportViolation) -> None:
    match = SERVICE.match(arn.strip()) if isinstance(arn, str) else None
    service = match["service"] if match else None
    if service == "acm":
        return
    kind = "an IAM server certificate" if service == "iam" else "not an ACM certificate ARN"
    report_violation(f"{_what(resource)} serves {arn!r}, {kind}; {FIX} (ACM renews it before it expires).",
                     resource.urn)


def _judge_computed(resource: PolicyResource, report_violation: ReportViolation) -> bool:
    """Whether the unknown ARN could be judged from the resources it is computed from."""
    sources = {d.resource_type for d in resource.property_dependencies.get("certificateArn") or []}
    if sources & IAM_SOURCES:
        report_violation(f"{_what(resource)} serves the ARN of an aws.iam.ServerCertificate, an IAM server "
                         f"certificate; {FIX} (ACM renews it before it expires).", resource.urn)
        return True
    return bool(sources) and sources <= ACM_SOURCES


def _validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    undecided: list[str] = []
    checked = 0
    for resource in args.resources:
        if resource.resource_type not in (*LISTENERS, *LISTENER_CERTIFICATES):
            continue
        props = plain(resource.props)
        if resource.resource_type in LISTENERS:
            protocol = props.get("protocol")
            if protocol is UNKNOWN:
                undecided.append(f"{_what(resource)}: protocol")
                continue
            if str(protocol or "HTTP").upper() not in ("HTTPS", "TLS"):
                continue
        checked += 1
        arn = props.get("certificateArn")
        if arn is UNKNOWN:
            if not _judge_computed(resource, report_violation):
                undecided.append(f"{_what(resource)}: certificateArn")
        elif arn is None or arn == "":
            report_violation(f"{_what(resource)} has no certificate_arn (an HTTPS/TLS listener needs one); {FIX}.",
                             resource.urn)
        else:
            _judge_known(resource, arn, report_violation)
    if undecided:
        args.not_applicable(f"{', '.join(undecided)} is unknown until deployment and not traceable to an ACM or "
                            "IAM certificate resource of this stack; the rule decides once it is known")
    if not checked:
        args.not_applicable("the stack has no HTTPS/TLS listener and no listener certificate")


POLICY = stack_rule_policy(__file__, _validate)
