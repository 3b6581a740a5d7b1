"""tags-required: taggable AWS resources carry ``env``, ``layer``, ``team`` and ``cost-center``.

Why: cost allocation (Cost Explorer by ``cost-center``/``team``), ownership during incidents and
per-environment IAM conditions (``aws:ResourceTag/env``) all depend on these tags. Tags set as the
AWS provider's ``defaultTags`` count (the layers set them once there from ``env.common_tags(layer)``),
exactly as AWS applies them: the resource's own ``tags`` are merged over the provider's defaults.

Which types: every pulumi_aws resource with a computed ``tagsAll`` output -- those the provider's
default tags apply to (``policies/platform/data/taggable-aws-types.txt``, generated from the pinned
pulumi_aws) -- and a dynamic resource that creates or adopts a log group (one with a
``log_group_name``, e.g. Amazon MQ's broker group, ``shared.components.broker_logs``): the provider's
default tags never reach a dynamic resource, so only its own ``tags`` count. No cdk-nag or built-in
checkov id: both leave required tags to custom checks/Aspects.
"""

from pulumi_policy import ResourceValidationArgs

from shared.policy.taggable import load_taggable
from shared.policy_support import (
    ADOPTED_LOG_GROUP,
    REQUIRED_TAGS,
    effective_tags,
    known,
    not_applicable,
    platform_hint,
    resource_policy,
    type_label,
)
from shared.policy_typing import ReportViolation

TAGGABLE = load_taggable()


def check(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type == ADOPTED_LOG_GROUP:
        if "log_group_name" not in args.props:
            not_applicable(args, f"dynamic resource '{args.name}' manages no log group")
        tags = known(args.props.get("tags"), "tags") or {}
        where = "in its own tags (the provider's default_tags never reach a dynamic resource)"
    else:
        tags = effective_tags(args)
        where = (f"in the AWS provider's default_tags{platform_hint(args, ' (env.common_tags(layer))')} or in the "
                 "resource's tags")
    missing = [key for key in REQUIRED_TAGS
               if not (isinstance(known(tags.get(key), f"tags.{key}"), str) and tags[key].strip())]
    if missing:
        report(f"{type_label(args.resource_type)} '{args.name}' lacks the tag(s) {', '.join(missing)}; set them "
               f"{where}.")


POLICY = resource_policy(__file__, check, types=TAGGABLE | {ADOPTED_LOG_GROUP})
