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

import itertools
import re

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import (
    applies_to,
    as_list,
    rule_policy,
    task_containers,
)
from shared.policy_typing import ReportViolation

CREDENTIAL_WORDS = {
    "PASSWORD", "PASSWD", "PASS", "PASSPHRASE", "SECRET", "SECRETS", "TOKEN", "CREDENTIAL", "CREDENTIALS", "APIKEY",
    "PRIVATEKEY", "ACCESSKEY", "SECRETKEY", "PWD", "AUTH",
}  # fmt: skip
#: A name ending in KEY is a credential unless the word before says what kind of non-secret key it is.
NON_SECRET_KEYS = {"ROUTING", "PARTITION", "SORT", "CACHE", "PRIMARY", "FOREIGN", "HASH", "RANGE", "IDEMPOTENCY",
                   "OBJECT", "S3", "MAP", "LOOKUP", "DEDUP", "DEDUPLICATION", "GROUP", "SHARD", "CURSOR", "PUBLIC"}
CREDENTIAL_PAIRS = {("API", "KEY"), ("ACCESS", "KEY"), ("SECRET", "KEY"), ("PRIVATE", "KEY"), ("CLIENT", "SECRET")}
METADATA_SUFFIXES = {
    "ARN", "ID", "NAME", "FILE", "PATH", "URL", "URI", "ENDPOINT", "TTL", "SECONDS", "EXPIRY", "LENGTH", "HEADER",
    "REGION", "ENABLED",
    # which kind of authentication, not a credential: AUTH_MODE=oauth, AUTH_TYPE=oidc, TOKEN_METHOD=jwt
    "MODE", "TYPE", "METHOD", "SCHEME", "PROVIDER", "STRATEGY",
}  # fmt: skip
VALUE_PATTERNS = (
    ("a URL with an embedded password", re.compile(r"^[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@", re.IGNORECASE)),
    ("an AWS access key id", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("a PEM private key or certificate", re.compile(r"-----BEGIN [A-Z ]+-----")),
    ("a GitHub token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})")),
    ("a Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("a Stripe live key", re.compile(r"\b[sr]k_live_[A-Za-z0-9]{16,}")),
)


def _credential_name(name: str) -> bool:
    # camelCase counts as separate words too: dbPassword is DB + PASSWORD.
    words = [w for w in re.split(r"[^A-Za-z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).upper()) if w]
    if not words or words[-1] in METADATA_SUFFIXES:
        return False
    if any(w in CREDENTIAL_WORDS for w in words):
        return True
    if words[-1] == "KEY" and (len(words) == 1 or words[-2] not in NON_SECRET_KEYS):
        return True
    return any(pair in CREDENTIAL_PAIRS for pair in itertools.pairwise(words))


def _is_reference(value: str) -> bool:
    return not value.strip() or value.startswith("arn:") or value.startswith("/")


def _credential_value(value: str) -> str | None:
    for what, pattern in VALUE_PATTERNS:
        if pattern.search(value):
            return what
    return None


@applies_to("aws:ecs/taskDefinition:TaskDefinition")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    for label, container in task_containers(args):
        findings: list[str] = []
        for variable in as_list(container.get("environment")):
            if not isinstance(variable, dict):
                continue
            name, value = str(variable.get("name") or ""), variable.get("value")
            text = value if isinstance(value, str) else "" if value is None else str(value)
            if what := _credential_value(text):
                findings.append(f"{name} (value is {what})")
            elif _credential_name(name) and not _is_reference(text):
                findings.append(f"{name} (credential-like name)")
        if findings:
            report_violation(
                f"task definition '{args.name}', container {label} has credentials in "
                f"plain environment variables: {', '.join(findings)}; move them to "
                "secrets=[{'name': ..., 'valueFrom': <Secrets Manager or SSM parameter ARN>}]."
            )


POLICY = rule_policy(__file__, _validate)
