"""HTTPS/TLS listeners use a modern TLS security policy (TLS 1.2 at least, forward secrecy).

Checks ``sslPolicy`` of ``aws:lb/listener:Listener`` / ``aws:alb/listener:Listener`` with protocol HTTPS
or TLS. Passes: the ``ELBSecurityPolicy-TLS13-1-2-*`` / ``-TLS13-1-3-*`` families and
``ELBSecurityPolicy-FS-1-2-*`` (ELB guide, "Security policies for your Application Load Balancer").
Unset means the provider/AWS default (``ELBSecurityPolicy-2016-08``, which still allows TLS 1.0), so
it fails; ``ELBSecurityPolicy-TLS-1-2-*`` (TLS 1.2 without TLS 1.3) fails too: the platform asks for
the current families. Other protocols are not applicable.

Why: TLS 1.0/1.1 and non-forward-secret ciphers are broken or deprecated; the load balancer is where
every client negotiates. Matches Security Hub ELB.17, checkov CKV_AWS_103 (TLS 1.2) and CKV2_AWS_74
(weak ciphers); no cdk-nag equivalent.
"""

import re

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import applies_to, known_input, plain, rule_policy
from shared.policy_typing import ReportViolation

MODERN = re.compile(r"^ELBSecurityPolicy-(TLS13-1-[23]-.+|FS-1-2-.+)$")


@applies_to("aws:lb/listener:Listener", "aws:alb/listener:Listener")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    props = plain(args.props)
    protocol = known_input(args, "listener", "protocol", props)
    if str(protocol or "HTTP").upper() not in ("HTTPS", "TLS"):
        args.not_applicable(f"listener '{args.name}' does not terminate TLS")
    policy = known_input(args, "listener", "sslPolicy", props)
    if not (isinstance(policy, str) and MODERN.match(policy.strip())):
        current = policy or "ELBSecurityPolicy-2016-08 (the default)"
        report_violation(f"listener '{args.name}' uses TLS policy {current}; "
                         "set ssl_policy='ELBSecurityPolicy-TLS13-1-2-2021-06' (or a newer TLS13 policy).")


POLICY = rule_policy(__file__, _validate)
