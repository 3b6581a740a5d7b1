"""No literal secret in a container's ``command`` or ``entryPoint``.

Checks every container of ``aws:ecs/taskDefinition:TaskDefinition``: an argument that is a credential
option followed by a value (``--requirepass x``, ``--password=x``, ``--token x``, ``--api-key x``,
``--auth x``...; short options such as ``-p`` mean too many things to judge), an argument
carrying a URL with ``user:password@``, an AWS access key id, or a PEM private key. A value that is
a shell reference (``$VAR``, ``${VAR}``) -- a secret injected through ``secrets`` and expanded by a
shell at start -- passes.

Why: ``command`` and ``entryPoint`` are stored in clear in every revision of the task definition and
shown by ``ecs:DescribeTaskDefinition`` and in ``ps`` inside the task; moving the secret to
``environment`` would not help either. Extends what Security Hub ECS.8 and cdk-nag AwsSolutions-ECS2
check in ``environment``; no checkov equivalent.
"""

import re

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import (
    applies_to,
    as_list,
    rule_policy,
    task_containers,
)
from shared.policy_typing import ReportViolation

OPTION = re.compile(
    r"^--?(?:require-?pass|pass(?:word|wd|phrase)?|pwd|secret|token|api-?key|access-?key|secret-?key|auth(?:-?token)?"
    r"|credentials?|private-?key)$",
    re.IGNORECASE,
)
OPTION_WITH_VALUE = re.compile(
    r"^(--?(?:require-?pass|pass(?:word|wd|phrase)?|pwd|secret|token|api-?key|access-?key|secret-?key"
    r"|auth(?:-?token)?|credentials?|private-?key))=(.+)$",
    re.IGNORECASE,
)
VALUES = (
    ("a URL with an embedded password", re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@", re.IGNORECASE)),
    ("an AWS access key id", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("a PEM private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
)


def _reference(value: str) -> bool:
    text = value.strip().strip("\"'")  # a quoted shell reference: "$PASSWORD"
    return text.startswith("$") or not text


def _findings(arguments: list[str]) -> list[str]:
    findings: list[str] = []
    for index, argument in enumerate(arguments):
        # A shell string ("sh -c 'redis-server --requirepass x'") is split the same way.
        words = argument.split()
        for position, word in enumerate(words):
            if match := OPTION_WITH_VALUE.match(word):
                if not _reference(match.group(2)):
                    findings.append(f"{match.group(1)}=<literal>")
            elif OPTION.match(word):
                following = words[position + 1] if position + 1 < len(words) else (
                    arguments[index + 1] if index + 1 < len(arguments) else None)
                if following is not None and not following.startswith("-") and not _reference(following):
                    findings.append(f"{word} <literal>")
        for what, pattern in VALUES:
            if pattern.search(argument):
                findings.append(what)
    return findings


@applies_to("aws:ecs/taskDefinition:TaskDefinition")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    for label, container in task_containers(args):
        for field in ("entryPoint", "command"):
            arguments = [str(a) for a in as_list(container.get(field)) if a is not None]
            findings = _findings(arguments)
            if findings:
                report_violation(
                    f"task definition '{args.name}', container {label} has a secret in "
                    f"{field}: {', '.join(dict.fromkeys(findings))}; pass it through secrets=[{{'name': 'X', "
                    "'valueFrom': <Secrets Manager ARN>}] and read $X in a shell (sh -c '... \"$X\"').")


POLICY = rule_policy(__file__, _validate)
