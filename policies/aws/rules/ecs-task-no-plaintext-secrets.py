"""No credential in a container's plain ``environment``; credentials go in ``secrets``.

A variable is flagged when its *name* says credential (a word such as PASSWORD, PASSWD, PASS, PWD, SECRET,
TOKEN, CREDENTIAL(S), AUTH, APIKEY, a last word KEY -- except key kinds that are not secrets, such as
ROUTING_KEY, PARTITION_KEY, CACHE_KEY --, the ECS agent's ECS_ENGINE_AUTH_DATA, or the pairs API_KEY,
ACCESS_KEY, SECRET_KEY, PRIVATE_KEY, CLIENT_SECRET --
matched on whole words split at ``_``/``-``/``.`` and camelCase humps, so ``dbPassword`` counts while
``BYPASS_CACHE`` and ``TOKENIZER_MODEL`` do not), unless its value is a reference
rather than the secret (an ARN, an absolute file path, or empty) or the last word marks metadata
(``..._ARN``, ``..._ID``, ``..._FILE``, ``..._PATH``, ``..._URL``, ``..._TTL``...) or a kind of
authentication (``AUTH_MODE``, ``AUTH_TYPE``, ``..._METHOD``, ``..._PROVIDER``...). It is flagged
regardless of name when its *value* looks like a credential: a URL with ``user:password@`` (e.g.
``amqps://app:hunter2@broker``), an AWS access key id (``AKIA``/``ASIA`` + 16), a PEM block
(``-----BEGIN``), a GitHub/Slack/Stripe token.

Why: ``environment`` values are stored in clear in the task definition, readable by anyone with
``ecs:DescribeTaskDefinition`` and kept forever in every revision; ``secrets`` are resolved from
Secrets Manager/SSM at start. Matches Security Hub ECS.8 (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
ECS_ENGINE_AUTH_DATA: the key id is caught by its value) and cdk-nag AwsSolutions-ECS2 (which flags
every env var).
"""

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import (
    applies_to,
    as_list,
    plaintext_credential,
    rule_policy,
    task_containers,
)
from shared.policy_typing import ReportViolation


@applies_to("aws:ecs/taskDefinition:TaskDefinition")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    for label, container in task_containers(args):
        findings: list[str] = []
        for variable in as_list(container.get("environment")):
            if not isinstance(variable, dict):
                continue
            name, value = str(variable.get("name") or ""), variable.get("value")
            if finding := plaintext_credential(name, value):
                findings.append(finding)
        if findings:
            report_violation(
                f"task definition '{args.name}', container {label} has credentials in "
                f"plain environment variables: {', '.join(findings)}; move them to "
                "secrets=[{'name': ..., 'valueFrom': <Secrets Manager or SSM parameter ARN>}]."
            )


POLICY = rule_policy(__file__, _validate)
