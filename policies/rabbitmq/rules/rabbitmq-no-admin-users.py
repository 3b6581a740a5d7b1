"""rabbitmq-no-admin-users: no managed RabbitMQ user carries the ``administrator`` tag.

Why: the ``administrator`` tag grants the management UI/HTTP API over every vhost -- creating users,
changing permissions, deleting queues. An application credential with it turns any leak of that
credential into control of the whole broker. Services get plain users (no tags) with narrow
permissions; the platform's own admin credential is the broker's bootstrap user, not a managed one.
Resource: ``rabbitmq:index/user:User`` (input ``tags``). No cdk-nag/checkov equivalent (RabbitMQ's
own access-control guidance: https://www.rabbitmq.com/docs/access-control).
"""

from typing import Any

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import as_list, get, known, resource_policy
from shared.policy_typing import ReportViolation

USER = "rabbitmq:index/user:User"


def check(args: ResourceValidationArgs, report: ReportViolation) -> None:
    tags: list[Any] = [known(tag, "tags[]") for tag in as_list(get(args.props, "tags"))]
    if any(isinstance(tag, str) and tag.strip().lower() == "administrator" for tag in tags):
        user = get(args.props, "name", default=args.name)
        report(f"RabbitMQ user '{user}' is tagged 'administrator'; remove the tag (tags=[] for an application "
               "user) and grant only the permissions it needs in its own vhost.")


POLICY = resource_policy(__file__, check, types=[USER])
