"""The AWS CLI's commands as botocore's service models define them (the CLI is generated from the same models: an
operation ``UpdateService`` is ``update-service``, a member ``ForceNewDeployment`` is ``--force-new-deployment``, a
boolean also ``--no-force-new-deployment``), for the tests that check the commands the README and the code's messages
tell an operator to run."""

from __future__ import annotations

import functools
from typing import Any

import botocore.loaders
from botocore import xform_name

#: CLI service names whose models have another name
MODEL_NAMES = {"s3api": "s3"}
#: the CLI's own commands (customizations, not operations of a model); their options are not checked
CUSTOM = {("s3", "*"), ("sso", "*"), ("configure", "*"), ("ecr", "get-login-password"), ("logs", "tail"),
          ("*", "wait")}
#: options of every command (the CLI's global options and pagination)
GLOBAL_OPTIONS = {"--query", "--output", "--region", "--profile", "--no-cli-pager", "--cli-input-json",
                  "--endpoint-url", "--debug", "--no-paginate", "--page-size", "--max-items", "--starting-token",
                  "--cli-binary-format", "--no-verify-ssl", "--color"}
#: options the CLI adds to an operation (customizations): awscli/customizations/ec2/secgroupsimplify.py
CUSTOM_OPTIONS = {("ec2", command): {"--protocol", "--port", "--cidr", "--source-group", "--group-owner"}
                  for command in ("authorize-security-group-ingress", "authorize-security-group-egress",
                                  "revoke-security-group-ingress", "revoke-security-group-egress")}


@functools.cache
def _model(service: str) -> dict[str, Any] | None:
    loader = botocore.loaders.create_loader()
    name = MODEL_NAMES.get(service, service)
    if name not in loader.list_available_services("service-2"):
        return None
    return dict(loader.load_service_model(name, "service-2"))


def _operation(model: dict[str, Any], command: str) -> dict[str, Any] | None:
    for name, operation in model["operations"].items():
        if xform_name(name, "-") == command:
            return dict(operation)
    return None


def _options(model: dict[str, Any], operation: dict[str, Any]) -> set[str]:
    """The options of an operation's input members (and ``--no-`` of its booleans) plus the global ones."""
    shape_name = (operation.get("input") or {}).get("shape")
    members = model["shapes"][shape_name]["members"] if shape_name else {}
    options = set(GLOBAL_OPTIONS)
    for member, reference in members.items():
        option = "--" + xform_name(member, "-")
        options.add(option)
        if model["shapes"][reference["shape"]]["type"] == "boolean":
            options.add("--no-" + option[2:])
    return options


def _custom(service: str, command: str) -> bool:
    return bool({(service, command), (service, "*"), ("*", command)} & CUSTOM)


@functools.cache
def cli_services() -> frozenset[str]:
    """The CLI's service names: botocore's models' and the CLI's own."""
    loader = botocore.loaders.create_loader()
    return frozenset(loader.list_available_services("service-2")) | set(MODEL_NAMES) | {
        service for service, _ in CUSTOM if service != "*"}


def cli_problem(service: str, command: str, options: tuple[str, ...]) -> str | None:
    """What is wrong with ``aws <service> <command> <options>`` (None: it names an operation and options of its
    input, or is one of the CLI's own commands, whose options are not checked)."""
    if _custom(service, command):
        return None
    model = _model(service)
    if model is None:
        return f"`aws {service} {command}`: botocore has no service model {service!r}"
    operation = _operation(model, command)
    if operation is None:
        return f"`aws {service} {command}`: {service} has no such operation (botocore model)"
    unknown = sorted(set(options) - _options(model, operation) - CUSTOM_OPTIONS.get((service, command), set()))
    if unknown:
        return f"`aws {service} {command}`: options its input (botocore model) lacks: {unknown}"
    return None
