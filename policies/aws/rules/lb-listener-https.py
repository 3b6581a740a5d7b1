"""Load balancer listeners serve HTTPS/TLS, or redirect HTTP to HTTPS.

Checks ``aws:lb/listener:Listener`` / ``aws:alb/listener:Listener``: ``protocol`` HTTPS or TLS passes; an
HTTP listener passes only when its default action redirects to HTTPS (``defaultActions[*].type ==
redirect`` with ``redirect.protocol == HTTPS``). TCP/UDP listeners (NLB pass-through) are not
applicable: the target terminates TLS. Unset ``protocol`` is HTTP for an ALB listener; a listener with
neither ``protocol`` nor ``port`` is a Gateway Load Balancer's (both are "not valid" there) and is not
applicable.

Why: plain HTTP exposes tokens and payloads on the way; a redirect keeps old links working without
serving content in clear. Matches Security Hub ELB.1, cdk-nag ALBHttpToHttpsRedirection /
ELBTlsHttpsListenersOnly, checkov CKV_AWS_2 and CKV2_AWS_20.
"""

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import (
    applies_to,
    as_list,
    contains_unknown,
    get,
    known_input,
    plain,
    rule_policy,
    undecidable,
)
from shared.policy_typing import ReportViolation


@applies_to("aws:lb/listener:Listener", "aws:alb/listener:Listener")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    props = plain(args.props)
    protocol = known_input(args, "listener", "protocol", props)
    if protocol is None and known_input(args, "listener", "port", props) is None:
        # protocol and port are "Not valid for Gateway Load Balancers" (pulumi_aws lb.Listener)
        args.not_applicable(f"listener '{args.name}' has no protocol and no port: a Gateway Load Balancer listener "
                            "(GENEVE to appliances, no HTTP)")
    name = str(protocol or "HTTP").upper()
    if name in ("HTTPS", "TLS"):
        return
    if name != "HTTP":
        args.not_applicable(f"listener '{args.name}' is {name} (pass-through: the target terminates TLS)")
    actions = props.get("defaultActions")
    if contains_unknown(actions):
        undecidable(args, f"listener '{args.name}': defaultActions")
    redirects = [a for a in as_list(actions) if str(get(a, "type") or "").lower() == "redirect"
                 and str(get(a, "redirect", "protocol") or "").upper() == "HTTPS"]
    if not redirects:
        report_violation(f"listener '{args.name}' serves plain HTTP; use protocol='HTTPS' with a certificate, or "
                         "make its default action a redirect to HTTPS (status HTTP_301).")


POLICY = rule_policy(__file__, _validate)
