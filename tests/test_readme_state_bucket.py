"""README's S3 state bucket recipe ("Where state lives", option 2), run against moto's S3 through botocore's own
model of each ``aws s3api`` command: it is accepted, and the bucket it makes is bounded. A DIY backend rewrites the
stack's checkpoint many times per update and copies the previous one to ``.pulumi/backups/`` on each save (Pulumi's
``PULUMI_DISABLE_CHECKPOINT_BACKUPS`` turns that off); in a versioned bucket every rewrite also leaves a noncurrent
version. Without lifecycle rules all of it is kept, and billed, for ever."""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

import boto3
import pytest
from botocore import xform_name
from moto import mock_aws

from shared import REPO_ROOT

RECIPE_HEADING = "2. **S3, versioned and encrypted, with a KMS secrets provider**"
#: the AWS CLI's own options, not the operation's
GLOBAL_OPTIONS = {"--region", "--profile", "--output", "--query"}


def recipe_commands() -> list[list[str]]:
    """The ``aws s3api`` commands of the recipe's first code block, each as its words."""
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split(RECIPE_HEADING, 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    joined = re.sub(r"\\\n\s*", " ", block)
    return [shlex.split(line) for line in joined.splitlines() if line.strip().startswith("aws s3api ")]


def _shorthand(text: str, shape: Any) -> Any:
    """The AWS CLI's shorthand ``Key=Value,Key=Value`` for a flat structure (booleans as the shape says)."""
    value: dict[str, Any] = {}
    for pair in text.split(","):
        key, _, raw = pair.partition("=")
        member = shape.members[key]
        value[key] = raw.lower() == "true" if member.type_name == "boolean" else raw
    return value


def as_call(words: list[str], client: Any) -> tuple[str, dict[str, Any]]:
    """``aws s3api <command> --option value ...`` as the client method and its parameters (botocore's model)."""
    assert words[:2] == ["aws", "s3api"], words
    operation = client.meta.service_model.operation_model(
        next(name for name in client.meta.service_model.operation_names
             if xform_name(name).replace("_", "-") == words[2]))
    members = {"--" + xform_name(name).replace("_", "-"): (name, shape)
               for name, shape in operation.input_shape.members.items()}
    params: dict[str, Any] = {}
    options = iter(words[3:])
    for option in options:
        raw = next(options)
        if option in GLOBAL_OPTIONS:
            continue
        name, shape = members[option]
        if shape.type_name == "structure":
            params[name] = json.loads(raw) if raw.lstrip().startswith("{") else _shorthand(raw, shape)
        else:
            params[name] = raw
    return xform_name(operation.name), params


def _whole_bucket(rule: dict[str, Any]) -> bool:
    narrowing = {key: value for key, value in (rule.get("Filter") or {}).items() if value not in (None, "", {})}
    return rule.get("Status") == "Enabled" and not rule.get("Prefix") and not narrowing


@mock_aws
def test_the_readmes_state_bucket_recipe_runs_and_bounds_what_the_backend_leaves_behind() -> None:
    client = boto3.client("s3", region_name="eu-west-1")
    commands = recipe_commands()
    assert [words[2] for words in commands][:2] == ["create-bucket", "put-bucket-versioning"]
    for words in commands:
        method, params = as_call(words, client)
        getattr(client, method)(**params)
    bucket = as_call(commands[0], client)[1]["Bucket"]
    assert client.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    rules = client.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    whole = [rule for rule in rules if _whole_bucket(rule)]
    assert any(rule.get("NoncurrentVersionExpiration", {}).get("NoncurrentDays") for rule in whole), rules
    assert any(rule.get("AbortIncompleteMultipartUpload", {}).get("DaysAfterInitiation") for rule in whole), rules
    # the lock file each update writes and deletes leaves a delete marker; once its noncurrent version expires the
    # lone marker stays unless a rule removes it (S3 user guide, "Managing delete markers": a rule expiring current
    # versions does so in its own scope only, here backups/ and history/, not .pulumi/locks/ where the CLI lists)
    assert any(rule.get("Expiration", {}).get("ExpiredObjectDeleteMarker") is True for rule in whole), rules
    # the backups the backend writes on each save, under the backend URL's path
    assert any((rule.get("Filter") or {}).get("Prefix", "").endswith(".pulumi/backups/")
               and rule.get("Expiration", {}).get("Days") for rule in rules), rules


@pytest.mark.parametrize("words", recipe_commands(), ids=lambda words: words[2])
def test_every_recipe_command_is_an_s3api_operation_with_known_options(words: list[str]) -> None:
    as_call(words, boto3.client("s3", region_name="eu-west-1"))
