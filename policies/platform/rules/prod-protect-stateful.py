"""prod-protect-stateful: in prod, stateful resources are ``protect``ed.

Why: ``pulumi destroy``, a renamed resource or a refactor that changes a URN would otherwise delete a
VPC or its subnets, the image history of an ECR repository, a broker with its queued messages, a
RabbitMQ vhost/queue with its messages, a secret or KMS key (and with the key everything it
encrypted), a log group's history, or a Cloud Map namespace every service resolves through.
``protect`` makes the engine refuse the delete until someone lifts it deliberately. Disabled in dev,
advisory in staging, mandatory in prod (the levels say "in prod"; the layers protect by type, see
``shared/protect.py``). Resources: the types of ``shared.protect.STATEFUL_TYPES`` (the list the layers
protect by). No cdk-nag/checkov id: their deletion-protection checks cover individual data stores;
Pulumi's ``protect`` is the IaC-level equivalent for any resource. Its counterpart
``protect-only-stateful`` keeps everything else unprotected.
"""

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import platform_hint, resource_policy, type_label
from shared.policy_typing import ReportViolation
from shared.protect import STATEFUL_TYPES


def check(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not args.opts.protect:
        kind = type_label(args.resource_type)
        fix = platform_hint(args, PLATFORM_FIX) or "set opts=pulumi.ResourceOptions(protect=True)"
        report(f"{kind} '{args.name}' holds state but is not protected; {fix} so a destroy or URN change cannot "
               "delete it.")


PLATFORM_FIX = ("create it in a layer program (shared.layer.Layer protects the types of "
                "shared.protect.STATEFUL_TYPES where the env protects state)")


POLICY = resource_policy(__file__, check, types=sorted(STATEFUL_TYPES))
