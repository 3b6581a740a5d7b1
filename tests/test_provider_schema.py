"""A provider bump (pulumi-aws, pulumi-rabbitmq, pulumi-random) is caught here before the `up` that would trip on it.

* Every property (and nested block, at any depth the SDK types it) the shipped envs set exists in the installed SDK
  and is not deprecated there, and every resource type the layers use still exists and is not deprecated
  (:mod:`shared.provider_schema`). The Python SDK refuses an unknown keyword, but a deprecated one passes silently:
  deprecations are how the provider announces next major's removals.
* The CLI installs the provider plugin the SDK wheel names (``pulumi-plugin.json``; the Python language host reports
  it to ``pulumi plugin install`` and to `up`): it is the version pyproject.toml pins, and no ``Pulumi.yaml`` pins
  another (``plugins:``/``packages:``).
* URNs and type tokens: ``tests/test_synth.py`` compares the synth byte for byte with the snapshots, so a bump
  that renames a type token (a replacement of every resource of that type unless aliased) shows there.
"""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared import REPO_ROOT
from shared.patch_guard import pinned_versions
from shared.provider_schema import ACKNOWLEDGED, PACKAGES, is_deprecated, resource_problems, schema_problems
from shared.synth.engine import synth_env

SNAPSHOTS = REPO_ROOT / "tests" / "snapshots"


@pytest.mark.parametrize("path", sorted(SNAPSHOTS.glob("*/*.json")), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_property_the_layers_set_exists_and_is_not_deprecated(path: Path) -> None:
    assert schema_problems(json.loads(path.read_text(encoding="utf-8"))) == []


#: The shapes the shipped envs do not take (tests/fixtures/env_key_changes.yaml has the same): their resources and
#: properties are the platform's too.
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "appmesh": ("dev", {"mesh": {"provider": "appmesh", "appmesh_end_of_support_acknowledged": True}}),
    "public gateway, unencrypted logs": ("staging", {"compute": {
        "public_gateway": True, "certificate_arn": "arn:aws:acm:eu-west-1:222222222222:certificate/one",
        "kms_encrypted_logs": False}}),
    "external broker on 3.13": ("prod", {"messaging": {
        "broker": "external", "engine_version": "3.13",
        "external": {"amqps_endpoint": "amqps://mq.example.com:5671", "management_endpoint": "https://mq.example.com"}}}),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_property_of_the_other_shapes_exists_and_is_not_deprecated(variant: str, edit_env: Any) -> None:
    env, change = VARIANTS[variant]

    def apply(data: dict[str, Any]) -> None:
        for section, values in change.items():
            data.setdefault(section, {}).update(values)

    edit_env(env, apply)
    documents = synth_env(env)
    assert [problem for document in documents.values() for problem in schema_problems(document)] == []


@pytest.mark.parametrize(("token", "path"), sorted(ACKNOWLEDGED))
def test_each_acknowledged_deprecation_is_still_one(token: str, path: str) -> None:
    """A bump that lifts a deprecation the platform works around makes its reason stale: drop the entry (and the
    workaround, where it only served the deprecation)."""
    assert is_deprecated(token, path)
    assert not is_deprecated(token, "inputs.name")  # and the reader tells a live property apart


BROKER = "aws:mq/broker:Broker"


@pytest.mark.parametrize(("token", "inputs", "expected"), [
    # a property the SDK does not have (renamed or removed by a bump)
    (BROKER, {"engineVersion": "4.2", "engineVersionX": "4.2"},
     [f"{BROKER}: inputs.engineVersionX: not a property of BrokerArgs in the installed SDK"]),
    # nested blocks, one and a list of
    (BROKER, {"logs": {"general": True, "generalX": True}},
     [f"{BROKER}: inputs.logs.generalX: not a property of BrokerLogsArgs in the installed SDK"]),
    (BROKER, {"users": [{"username": "a", "password": "b"}, {"username": "c", "groupsX": []}]},
     [f"{BROKER}: inputs.users[1].groupsX: not a property of BrokerUserArgs in the installed SDK"]),
    # a map's keys are data
    (BROKER, {"tags": {"anything": "x"}}, []),
    # deprecated in the installed SDK: the next major removes it
    ("aws:ec2/instance:Instance", {"securityGroups": ["default"]},
     ["aws:ec2/instance:Instance: inputs.securityGroups: deprecated in the installed SDK (InstanceArgs)"]),
    # a resource type deprecated, or gone
    ("aws:s3/bucketV2:BucketV2", {"bucket": "b"},
     ["aws:s3/bucketV2:BucketV2: the resource type is deprecated in the installed SDK"]),
    ("aws:mq/brokerX:BrokerX", {}, ["aws:mq/brokerX:BrokerX: no such resource type in the installed pulumi_aws "
                                    "(renamed or removed?)"]),
    # a resource whose args class shares its name with a nested block (the SDK's <Class>InitArgs)
    ("aws:s3/bucketVersioning:BucketVersioning", {"bucket": "b", "versioningConfiguration": {"status": "Enabled"}}, []),
    # other packages and engine types are not the SDKs' to judge
    ("pulumi-nodejs:dynamic:Resource", {"anything": 1}, []),
    ("pulumi:providers:aws", {"region": "eu-west-1"}, []),
])
def test_the_check_names_what_a_bump_breaks(token: str, inputs: dict[str, Any], expected: list[str]) -> None:
    assert resource_problems(token, inputs) == expected


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_the_cli_installs_the_plugin_of_the_pinned_sdk(package: str) -> None:
    """The plugin version the SDK wheel reports (pulumi-plugin.json, what `pulumi plugin install` and `up` fetch) is
    the version pyproject.toml pins."""
    module = PACKAGES[package]
    plugin = json.loads(Path(__import__(module).__file__ or "").with_name("pulumi-plugin.json").read_text())
    pin = pinned_versions()[module.replace("_", "-")]
    assert plugin["name"] == package and plugin["resource"] is True
    assert plugin["version"] == pin == metadata.version(module.replace("_", "-"))


@pytest.mark.parametrize("project", sorted((REPO_ROOT / "stacks").glob("*/Pulumi.yaml")), ids=lambda p: p.parent.name)
def test_no_project_pins_another_plugin(project: Path) -> None:
    """`plugins:` / `packages:` in Pulumi.yaml would make the CLI use another plugin than the SDK's own."""
    document = yaml.safe_load(project.read_text(encoding="utf-8"))
    assert not {"plugins", "packages"} & set(document)
    assert document["runtime"]["options"]["virtualenv"] == "../../.venv"  # the venv nox builds from the pins
