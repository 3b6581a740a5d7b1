"""A deployed stack holds each dynamic resource's provider as a pickle that names its class by import path.

Pulumi serializes a dynamic provider with ``dill`` (``pulumi.dynamic.dynamic.serialize_provider``), which stores a
class of an importable module by reference: ``shared.components.broker_logs`` and the class name, not its code. Every
later operation on the resource (update, refresh, and the delete a ``destroy`` or a removal runs) loads that pickle
with the code of the day. A provider class moved or renamed leaves every deployed stack with a reference that no longer
imports: its next ``up`` that touches the resource, and its ``destroy``, fail. So the paths deployed stacks may hold
are listed here; a move keeps the old path importable (an alias), and a new provider is added to the list.
"""

from __future__ import annotations

import base64
import importlib
import pickletools

import pulumi.dynamic
import pytest
from pulumi.dynamic.dynamic import serialize_provider

from tests.test_deploy_role import _dynamic_providers

#: every provider class path a deployed stack may hold (module:class); only ever grows
DEPLOYED_PROVIDER_PATHS = (
    "shared.components.broker_logs:BrokerLogGroupProvider",
    "shared.components.lambda_eni_drain:LambdaEniDrainProvider",
    "shared.components.service_connect_drain:ServiceConnectDrainProvider",
)


def _path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


@pytest.mark.parametrize("path", DEPLOYED_PROVIDER_PATHS)
def test_each_provider_path_a_deployed_stack_holds_still_imports(path: str) -> None:
    module, name = path.split(":")
    cls = getattr(importlib.import_module(module), name, None)
    assert isinstance(cls, type) and issubclass(cls, pulumi.dynamic.ResourceProvider), (
        f"{path}: deployed stacks load their providers from this path; keep it importable (an alias) after a move")


def test_every_provider_of_the_components_is_listed() -> None:
    """A new provider is deployed with its path: list it, so that a later move is caught here."""
    unlisted = [_path(cls) for cls in _dynamic_providers() if _path(cls) not in DEPLOYED_PROVIDER_PATHS]
    assert not unlisted, f"add {unlisted} to DEPLOYED_PROVIDER_PATHS"


@pytest.mark.parametrize("cls", _dynamic_providers(), ids=_path)
def test_the_stored_provider_names_its_class_by_that_path(cls: type) -> None:
    """What the state holds: the pickle refers to the class by module and name (by reference, not by value)."""
    pickled = base64.b64decode(serialize_provider(cls()))
    strings = {str(arg) for op, arg, _ in pickletools.genops(pickled) if isinstance(arg, str)}
    assert {cls.__module__, cls.__qualname__} <= strings, sorted(strings)
