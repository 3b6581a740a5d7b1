"""rabbitmq-publish-keys-enforced: a user who may write an exchange of the stack is held to routing keys there.

A stack rule: it matches each user's write permission against the stack's exchanges and topic permissions.

Why: a write permission names exchanges, not routing keys. RabbitMQ restricts the routing keys a user may publish
with topic permissions, and checks them on topic exchanges only; a user with no topic permission on a topic
exchange may publish any key there (RabbitMQ Access Control guide, "Topic Authorisation"). So a service that may
write a direct (or fanout, headers) exchange, or a topic exchange without a topic permission of its own, can
publish every routing key: e.g. inject work into another service's queue bound to that exchange. A topic exchange
whose bindings hold no ``*`` or ``#`` routes exactly as a direct one does, so the fix costs no routing change.

How it decides: for each ``rabbitmq:index/permissions:Permissions`` (``user``, ``vhost``, ``permissions.write``, a
regular expression RabbitMQ matches unanchored) and each ``rabbitmq:index/exchange:Exchange`` of the same vhost whose
name the write pattern matches: the exchange's ``settings.type`` must be ``topic`` and a
``rabbitmq:index/topicPermissions:TopicPermissions`` of that user and vhost must have an entry for the exchange
(whether its pattern is narrow is ``rabbitmq-least-privilege``'s business). Exchanges outside the stack (the
broker's ``amq.*``) are not judged. Two ``TopicPermissions`` of one user and vhost are reported too (on each but the
first by URN): the provider's id is ``user@vhost``, its read returns all of the user's topic permissions there and its
delete and each update clear them all (terraform-provider-rabbitmq resource_topic_permissions.go,
``ClearTopicPermissionsIn``), so the resources undo each other and leave the user, for a while or until the next
``up``, no topic permission: any key allowed. A name, vhost, pattern or type unknown during preview makes the rule not
applicable when nothing else is reported. No cdk-nag/checkov equivalent
(https://www.rabbitmq.com/docs/access-control#topic-authorisation).
"""

import re

from pulumi_policy import PolicyResource, StackValidationArgs
from pulumi_policy.proxy import UnknownValueError

from shared.policy_support import Unknown, as_list, get, known, stack_resources, stack_rule_policy
from shared.policy_typing import ReportViolation

PERMISSIONS = "rabbitmq:index/permissions:Permissions"
TOPIC_PERMISSIONS = "rabbitmq:index/topicPermissions:TopicPermissions"
EXCHANGE = "rabbitmq:index/exchange:Exchange"


def _text(resource: PolicyResource, *path: str, default: str | None = None) -> str:
    value = known(get(resource.props, *path, default=default), f"{resource.resource_type.rsplit(':', 1)[-1]} "
                                                                f"'{resource.name}' {'.'.join(path)}")
    return "" if value is None else str(value)


def _user_vhost(resource: PolicyResource) -> tuple[str, str]:
    """The RabbitMQ user and vhost a Permissions or TopicPermissions grants in (the provider's id: user@vhost)."""
    return _text(resource, "user"), _text(resource, "vhost", default="/")


def _topic_exchanges(topic_permissions: list[PolicyResource]) -> dict[tuple[str, str], set[str]]:
    """(user, vhost) -> the exchanges its topic permissions name."""
    named: dict[tuple[str, str], set[str]] = {}
    for resource in topic_permissions:
        key = _user_vhost(resource)
        for index, entry in enumerate(as_list(get(resource.props, "permissions"))):
            exchange = known(get(entry, "exchange"),
                             f"TopicPermissions '{resource.name}' permissions[{index}].exchange")
            named.setdefault(key, set()).add(str(exchange))
    return named


def _shared_ids(topic_permissions: list[PolicyResource]) -> list[tuple[str, str]]:
    """(message, urn) for each TopicPermissions after the first (by URN) of a user and vhost: the provider's id."""
    first: dict[tuple[str, str], PolicyResource] = {}
    problems = []
    for resource in sorted(topic_permissions, key=lambda r: r.urn):
        key = _user_vhost(resource)
        if key not in first:
            first[key] = resource
            continue
        problems.append((
            f"TopicPermissions '{resource.name}' and '{first[key].name}' are both of RabbitMQ user '{key[0]}' in vhost "
            f"'{key[1]}': the provider's id is user@vhost and its delete and each update clear all of the user's topic "
            "permissions there, so one resource's change or delete removes the other's entries and the user may then "
            "publish any routing key; put every exchange in one TopicPermissions per user (an alias keeps the URN of "
            "the one that stays, so it is updated in place, not deleted after the other's create).", resource.urn))
    return problems


def _check(grant: PolicyResource, exchanges: list[PolicyResource],
           topic: dict[tuple[str, str], set[str]]) -> list[str]:
    user, vhost = _user_vhost(grant)
    write = _text(grant, "permissions", "write")
    try:
        pattern = re.compile(write)
    except re.error:
        return []  # an invalid pattern grants nothing (rabbitmq-least-privilege reports it)
    problems = []
    for exchange in exchanges:
        if _text(exchange, "vhost", default="/") != vhost:
            continue
        name = _text(exchange, "name")
        if write == "" or not pattern.search(name):
            continue
        kind = _text(exchange, "settings", "type")
        if kind != "topic":
            problems.append(
                f"RabbitMQ user '{user}' may write exchange '{name}' (vhost '{vhost}'), a {kind} exchange: RabbitMQ "
                "checks topic permissions on topic exchanges only, so the user may publish any routing key there "
                "and feed every queue bound to it; make it a topic exchange (bindings without '*' or '#' route as "
                "before; the name stays, so the replacement must be delete_before_replace) and give the user topic "
                "permissions naming its keys.")
        elif name not in topic.get((user, vhost), set()):
            problems.append(
                f"RabbitMQ user '{user}' may write topic exchange '{name}' (vhost '{vhost}') but has no topic "
                f"permission on it, so RabbitMQ lets it publish any routing key there; add rabbitmq.TopicPermissions("
                f"user='{user}', vhost='{vhost}', permissions=[{{'exchange': '{name}', 'write': "
                "'^(its\\\\.key|other\\\\.key)$', 'read': '^$'}]) -- one resource per user, every exchange in it.")
    return problems


def _validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    grants = stack_resources(args, PERMISSIONS, none_reason="the stack grants no RabbitMQ permission")
    exchanges = stack_resources(args, EXCHANGE)
    undecided: list[str] = []
    violations = 0
    try:
        topic_permissions = stack_resources(args, TOPIC_PERMISSIONS)
        topic = _topic_exchanges(topic_permissions)
        shared = _shared_ids(topic_permissions)
    except (Unknown, UnknownValueError) as error:
        args.not_applicable(f"cannot decide: {getattr(error, 'message', None) or error} is not known during preview")
        return
    for problem, urn in shared:
        violations += 1
        report_violation(problem, urn)
    for grant in grants:
        try:
            problems = _check(grant, exchanges, topic)
        except (Unknown, UnknownValueError) as error:
            undecided.append(str(getattr(error, "message", None) or error))
            continue
        for problem in problems:
            violations += 1
            report_violation(problem, grant.urn)
    if undecided and not violations:
        args.not_applicable(f"cannot decide: {undecided[0]} is not known during preview")


POLICY = stack_rule_policy(__file__, _validate)
