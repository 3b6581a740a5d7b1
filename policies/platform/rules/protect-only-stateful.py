"""protect-only-stateful: only resources that hold data or identity are ``protect``ed.

Pulumi's children inherit ``protect`` from their parent, so protecting a VPC used to protect every
route, association, security group, endpoint, EIP and NAT gateway under it, and then any replacement
(a changed security-group description, a moved route) failed until someone lifted the protection by
hand. A protected resource whose deletion loses nothing only blocks changes. Any resource whose type
is not in ``shared.protect.STATEFUL_TYPES`` (the list ``prod-protect-stateful`` requires protected and
``shared.layer.Layer`` protects by) must not be protected. Mandatory in every env: a protected route
is wrong wherever it appears.
"""

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import platform_hint, resource_policy, type_label
from shared.policy_typing import ReportViolation
from shared.protect import is_stateful


def check(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.opts.protect and not is_stateful(args.resource_type):
        kind = type_label(args.resource_type)
        report(f"{kind} '{args.name}' is protected but holds no data or identity, so protect only blocks its "
               f"replacement; drop protect{platform_hint(args, PLATFORM_FIX)}.")


PLATFORM_FIX = (" (shared.layer.Layer sets it by type, see shared/protect.py), or add the type to "
                "shared.protect.STATEFUL_TYPES if deleting it loses data")


POLICY = resource_policy(__file__, check)
