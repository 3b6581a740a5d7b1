"""HTTPS/TLS listeners use a security policy Security Hub ELB.17 accepts: TLS 1.3, or TLS 1.2 restricted.

Checks ``sslPolicy`` of ``aws:lb/listener:Listener`` / ``aws:alb/listener:Listener`` with protocol HTTPS
or TLS. Passes: the ``ELBSecurityPolicy-TLS13-1-3-*`` family (TLS 1.3 only) and the
``ELBSecurityPolicy-TLS13-1-2-Res-*`` family (TLS 1.3, and TLS 1.2 with forward-secret AEAD ciphers only),
including their FIPS and post-quantum variants: the fixed ``sslPolicies`` list of Security Hub ELB.17 (control
parameter, not customizable). Unset means the provider/AWS default (``ELBSecurityPolicy-2016-08``, which still
allows TLS 1.0), so it fails; so do ``ELBSecurityPolicy-TLS13-1-2-2021-06`` and its ``-Ext*`` siblings and the
``ELBSecurityPolicy-FS-1-2-*`` family, which still offer TLS 1.2 CBC ciphers. Other protocols are not applicable.

Why: TLS 1.0/1.1, CBC-mode and non-forward-secret ciphers are broken or deprecated; the load balancer is where
every client negotiates. Matches Security Hub ELB.17, checkov CKV_AWS_103 (TLS 1.2) and CKV2_AWS_74
(weak ciphers); no cdk-nag equivalent.
"""

import re

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import applies_to, known_input, plain, rule_policy
from shared.policy_typing import ReportViolation

MODERN = re.compile(r"^ELBSecurityPolicy-TLS13-1-(3-.+|2-Res-.+)$")


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
                         "set ssl_policy='ELBSecurityPolicy-TLS13-1-2-Res-2021-06' (or a TLS13-1-3 policy).")


POLICY = rule_policy(__file__, _validate)
