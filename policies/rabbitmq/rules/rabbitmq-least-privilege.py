"""rabbitmq-least-privilege: no permission (configure/write/read) is ``.*``; each names the user's own objects.

Why: RabbitMQ permissions are three regular expressions matched (unanchored) against queue and
exchange names of a vhost. ``.*`` -- what most examples use -- lets a service declare, delete, publish
to and consume from every queue of the vhost, so one compromised or buggy service can drain or purge
another service's work queue. Each pattern must instead name the user's own objects (e.g.
``^inference\\.(work|dlq)$`` for configure/read, the exchanges it publishes to for write); the empty
string (no access) is always fine.

How it decides: a pattern fails if it is not a valid regular expression, or if it matches names of
objects that belong to nobody in particular (probe names such as ``zz-unrelated.object``, ``amq.direct``
is excluded because the broker's default exchanges are readable by design). Resources:
``rabbitmq:index/permissions:Permissions`` (input ``permissions.{configure,write,read}``) and
``rabbitmq:index/topicPermissions:TopicPermissions`` (``permissions[].{exchange,write,read}``).
No cdk-nag/checkov equivalent (RabbitMQ access-control docs: https://www.rabbitmq.com/docs/access-control).
"""

import re
from typing import Any

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import as_list, get, known, resource_policy
from shared.policy_typing import ReportViolation

PERMISSIONS = "rabbitmq:index/permissions:Permissions"
TOPIC_PERMISSIONS = "rabbitmq:index/topicPermissions:TopicPermissions"

# Names no service's pattern should match: if a pattern matches one of them, it matches objects of
# other users too.
PROBES = ("zz-unrelated.object", "other-service.work", "x", "9f8e7d.queue.tmp")


def too_broad(pattern: str) -> str | None:
    """Why ``pattern`` grants more than named objects, or None if it is narrow enough."""
    if pattern == "":
        return None  # no access at all
    try:
        compiled = re.compile(pattern)
    except re.error as error:
        return f"is not a valid regular expression ({error})"
    matched = [probe for probe in PROBES if compiled.search(probe)]
    if matched:
        return f"matches any object name (e.g. {matched[0]!r})"
    return None


def _check_pattern(report: ReportViolation, who: str, vhost: str, field: str, value: Any) -> None:
    value = known(value, field)
    if value is None:
        return
    problem = too_broad(str(value))
    if problem:
        report(f"{who}: permission {field}={value!r} in vhost '{vhost}' {problem}; name only the user's own "
               "queues/exchanges, e.g. configure/read '^inference\\.(work|dlq)$' and write '^ml\\.requests$' "
               "(or '' for no access).")


def check(args: ResourceValidationArgs, report: ReportViolation) -> None:
    user = get(args.props, "user", default=args.name)
    vhost = get(args.props, "vhost", default="/")
    who = f"RabbitMQ user '{user}'"
    if args.resource_type == PERMISSIONS:
        permissions = get(args.props, "permissions")
        if permissions is None:
            args.not_applicable("permissions is not set")
        for field in ("configure", "write", "read"):
            _check_pattern(report, who, vhost, field, get(permissions, field))
        return
    for index, entry in enumerate(as_list(get(args.props, "permissions"))):
        exchange = get(entry, "exchange", default="")
        for field in ("write", "read"):
            _check_pattern(report, f"{who} (topic permissions on exchange '{exchange}')", vhost,
                           f"permissions[{index}].{field}", get(entry, field))


POLICY = resource_policy(__file__, check, types=[PERMISSIONS, TOPIC_PERMISSIONS])
