"""What the installed provider SDKs (pulumi_aws, pulumi_rabbitmq, pulumi_random) say about the properties the
platform sets: each resource type, each input property and nested block, at any depth the SDK types it.

Why: a pulumi-aws bump renames, removes and deprecates properties (v6 to v7 removed several; a removal is announced
as a deprecation a major version before). The synth passes every keyword to the SDK, which refuses an unknown one,
but a *deprecated* property passed as a keyword raises no warning in the Python SDK (only its ``*Args`` classes
warn), so the platform would learn of it only from the `up` after the next major bump. :func:`schema_problems` reads
the SDK's own ``*Args`` classes (their ``pulumi.getter`` names and ``_utilities.deprecated`` marks) and the
resource registry each package registers, for the resources of a synthesized layer.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from pulumi import _types as pulumi_types  # the SDK's own reader of a type's getters (the engine's name table)

#: provider package -> its Python module
PACKAGES = {"aws": "pulumi_aws", "rabbitmq": "pulumi_rabbitmq", "random": "pulumi_random"}
#: Deprecated properties the platform sets on purpose: (type token, property path with list indexes dropped) -> why.
#: :func:`resource_problems` passes them; a bump that removes one still fails (not a property), and
#: tests/test_provider_schema.py fails once the SDK no longer marks one deprecated (the reason is then stale).
ACKNOWLEDGED: dict[tuple[str, str], str] = {
    # App Mesh envs' Cloud Map services (shared.components.discovery): without failure_threshold pulumi-aws drops the
    # empty block and the upstream provider plans a replacement on every run (pulumi/pulumi-aws#6289,
    # hashicorp/terraform-provider-aws#44285); AWS ignores the value (always 1).
    ("aws:servicediscovery/service:Service", "inputs.healthCheckCustomConfig.failureThreshold"):
        "sent so the custom health check block survives (pulumi/pulumi-aws#6289)",
}
_ARGS = re.compile(r"ForwardRef\('(\w+Args)'\)")
_MAPPING = re.compile(r"Mapping\[")


@cache
def resource_classes(package: str) -> dict[str, tuple[str, str]]:
    """type token -> (module, class) as ``package`` registers them (its ``_utilities.register(resource_modules=)``)."""
    module = importlib.import_module(PACKAGES[package])
    text = Path(module.__file__ or "").read_text(encoding="utf-8")  # the package's own __init__.py
    match = re.search(r'resource_modules="""(.*?)"""', text, re.S)
    if match is None:
        raise RuntimeError(f"{PACKAGES[package]} registers no resource modules: the SDK's layout changed")
    found: dict[str, tuple[str, str]] = {}
    for entry in json.loads(match.group(1)):
        for token, name in entry["classes"].items():
            found[token] = (entry["fqn"], name)
    return found


def _properties(args_class: type) -> dict[str, Any]:
    """Pulumi name -> the property of ``args_class``."""
    return {name: prop for _, name, prop in pulumi_types._py_properties(args_class)}


def _deprecation(prop: Any) -> str | None:
    getter = prop.fget
    if "_pulumi_deprecated_callable" not in getattr(getter, "__dict__", {}):
        return None
    return "deprecated"


def _nested_class(prop: Any) -> type | None:
    """The ``*Args`` class a property holds (or a list of), None for a scalar, a map or free-form value."""
    annotation = str(prop.fget.__annotations__.get("return", ""))
    if _MAPPING.search(annotation.split("ForwardRef")[0]):
        return None  # a map (tags, variables): its keys are data, not properties
    match = _ARGS.search(annotation)
    if match is None:
        return None
    module = importlib.import_module(prop.fget.__module__)
    found = getattr(module, match.group(1), None)
    return found if isinstance(found, type) else None


def _walk(token: str, args_class: type, value: dict[str, Any], path: str) -> Iterator[str]:
    props = _properties(args_class)
    for key in sorted(value):
        if key not in props:
            yield f"{path}.{key}: not a property of {args_class.__name__} in the installed SDK"
            continue
        if _deprecation(props[key]) and (token, re.sub(r"\[\d+\]", "", f"{path}.{key}")) not in ACKNOWLEDGED:
            yield f"{path}.{key}: deprecated in the installed SDK ({args_class.__name__})"
        nested = _nested_class(props[key])
        if nested is None:
            continue
        child = value[key]
        items = child if isinstance(child, list) else [child]
        for index, item in enumerate(items):
            if isinstance(item, dict):
                suffix = f"[{index}]" if isinstance(child, list) else ""
                yield from _walk(token, nested, item, f"{path}.{key}{suffix}")


def _args_class(token: str) -> type:
    """The SDK's ``*Args`` class of the resource type ``token`` (a type of :data:`PACKAGES`)."""
    module_name, class_name = resource_classes(token.split(":", 1)[0])[token]
    own = importlib.import_module(getattr(importlib.import_module(module_name), class_name).__module__)
    # the resource's own module: where a nested block has the same name, the SDK calls the resource's `<Class>InitArgs`
    found: type = getattr(own, f"{class_name}InitArgs", None) or getattr(own, f"{class_name}Args")
    return found


@cache
def input_names(token: str) -> frozenset[str]:
    """The input properties (engine names) a resource of type ``token`` takes in the installed SDK."""
    return frozenset(_properties(_args_class(token)))


def is_deprecated(token: str, path: str) -> bool:
    """Whether the installed SDK marks the property at ``path`` (``inputs.a.b``, no list indexes) of ``token``
    deprecated."""
    args_class: type | None = _args_class(token)
    prop = None
    for key in path.split(".")[1:]:
        if args_class is None:
            return False
        prop = _properties(args_class).get(key)
        if prop is None:
            return False
        args_class = _nested_class(prop)
    return prop is not None and _deprecation(prop) is not None


def resource_problems(token: str, inputs: dict[str, Any]) -> list[str]:
    """Why ``inputs`` of a resource of type ``token`` do not fit the installed SDK (empty: they do). Types of other
    packages (components, dynamic resources, providers) are not checked."""
    package = token.split(":", 1)[0]
    if package not in PACKAGES or token.startswith("pulumi:"):
        return []
    classes = resource_classes(package)
    if token not in classes:
        return [f"{token}: no such resource type in the installed {PACKAGES[package]} (renamed or removed?)"]
    module_name, class_name = classes[token]
    module = importlib.import_module(module_name)
    resource_class = getattr(module, class_name)
    problems: list[str] = []
    own = importlib.import_module(resource_class.__module__)
    if f'pulumi.log.warn("""{class_name} is deprecated:' in Path(own.__file__ or "").read_text(encoding="utf-8"):
        problems.append(f"{token}: the resource type is deprecated in the installed SDK")
    problems += [f"{token}: {line}" for line in _walk(token, _args_class(token), inputs, "inputs")]
    return problems


def schema_problems(document: dict[str, Any]) -> list[str]:
    """Every problem of every resource of one synthesized layer, each naming its URN."""
    problems: list[str] = []
    for resource in document["resources"]:
        if not resource["custom"]:
            continue
        problems += [f"{resource['urn']}: {line}" for line in resource_problems(resource["type"], resource["inputs"])]
    return problems
