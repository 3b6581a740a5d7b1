"""The names discovery, mesh and compute derive from the env and the catalog fit AWS's limits, or the env
loader refuses the env (exit 2, naming the file and the key) before any layer runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.catalog import load_catalog
from shared.envs import load_env
from shared.errors import ConfigError, ConfigErrors
from shared.mesh_names import SERVICE_CONNECT_DNS_NAME_MAX, SERVICE_CONNECT_NAME_MAX, port_name
from tests.test_envs import synth_cli

#: botocore's models, read rather than copied: the limits shared.mesh_names states
BOTOCORE = Path(str(__import__("botocore").__file__)).parent / "data"


def _shape(service: str, name: str) -> dict[str, Any]:
    import gzip

    (model,) = (BOTOCORE / service).glob("*/service-2.json*")
    opener = gzip.open if model.suffix == ".gz" else open
    with opener(model, "rt") as handle:
        shapes: dict[str, Any] = json.load(handle)["shapes"]
    return shapes[name]


def _namespace(length: int) -> str:
    """A valid DNS name of ``length`` characters, labels of at most 50."""
    labels: list[str] = []
    left = length
    while left > 0:
        size = min(50, left if len(labels) == 0 or left > 1 else 2)
        labels.append("n" * size)
        left -= size + 1
    name = ".".join(labels)[:length]
    assert len(name) == length and not name.endswith("."), name
    return name


def _problems(error: BaseException) -> list[ConfigError]:
    return error.problems if isinstance(error, ConfigErrors) else [error]  # type: ignore[list-item]


def _longest_service() -> str:
    return max(load_catalog().names(), key=len)


def test_the_limits_are_botocores() -> None:
    assert _shape("servicediscovery", "NamespaceNamePrivate")["max"] == 253
    documented = _shape("ecs", "ServiceConnectClientAlias")["members"]["dnsName"]["documentation"]
    assert f"up to {SERVICE_CONNECT_DNS_NAME_MAX} characters" in documented
    for shape, member in (("ServiceConnectService", "discoveryName"), ("PortMapping", "name")):
        documented = _shape("ecs", shape)["members"][member]["documentation"]
        assert f"up to {SERVICE_CONNECT_NAME_MAX} characters" in documented


def test_the_catalog_names_always_fit_the_discovery_and_port_name_limits() -> None:
    # The catalog allows lower-case DNS labels of 2-32 characters: the discovery name (the service name)
    # and the port name ("<service>-http") are then within ECS's 64 characters and character set.
    from shared.catalog import _NAME

    assert _NAME.pattern == r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$"
    assert len(port_name("s" * 32)) <= SERVICE_CONNECT_NAME_MAX


def test_a_service_connect_namespace_whose_client_alias_is_too_long_exits_2(
        edit_env: Any, env_dir: Path, tmp_path: Path) -> None:
    longest = _longest_service()
    namespace = _namespace(SERVICE_CONNECT_DNS_NAME_MAX - len(longest))  # one character too many
    assert len(f"{longest}.{namespace}") == SERVICE_CONNECT_DNS_NAME_MAX + 1
    edit_env("dev", lambda data: data.setdefault("discovery", {}).update(namespace=namespace))
    result = synth_cli("dev", build_dir=tmp_path / "build", env_dir=env_dir)
    assert result.returncode == 2, result.stderr
    assert "dev.yaml: discovery.namespace:" in result.stderr
    assert "Service Connect client alias" in result.stderr
    assert f"at most {SERVICE_CONNECT_DNS_NAME_MAX}" in result.stderr
    assert not (tmp_path / "build").exists()


def test_the_longest_namespace_service_connect_accepts_loads(edit_env: Any) -> None:
    namespace = _namespace(SERVICE_CONNECT_DNS_NAME_MAX - len(_longest_service()) - 1)
    edit_env("dev", lambda data: data.setdefault("discovery", {}).update(namespace=namespace))
    assert load_env("dev").namespace == namespace


def test_app_mesh_names_are_held_to_dns_not_to_service_connect(edit_env: Any) -> None:
    namespace = _namespace(SERVICE_CONNECT_DNS_NAME_MAX)  # too long for Service Connect, fine for DNS
    edit_env("dev", lambda data: (data.setdefault("discovery", {}).update(namespace=namespace),
                                  data["mesh"].update(provider="appmesh", appmesh_end_of_support_acknowledged=True)))
    assert load_env("dev").namespace == namespace
    edit_env("dev", lambda data: data["discovery"].update(namespace=_namespace(253 - len(_longest_service()))))
    with pytest.raises((ConfigError, ConfigErrors)) as raised:
        load_env("dev")
    assert [(p.key, "more than DNS allows (253)" in p.reason) for p in _problems(raised.value)] == [
        ("discovery.namespace", True)]


def test_a_namespace_label_longer_than_63_characters_is_refused(edit_env: Any) -> None:
    edit_env("dev", lambda data: data.setdefault("discovery", {}).update(namespace="a" * 64 + ".internal"))
    with pytest.raises((ConfigError, ConfigErrors)) as raised:
        load_env("dev")
    found = _problems(raised.value)
    assert [(Path(p.file).name, p.key) for p in found] == [("dev.yaml", "discovery.namespace")]
    assert "label of 64 characters" in found[0].reason and "at most 63" in found[0].reason


def test_the_default_namespace_of_a_long_env_name_is_refused_naming_the_key_to_set(env_dir: Path) -> None:
    name = "e" * 64
    data = yaml.safe_load((env_dir / "dev.yaml").read_text())
    data.update(name=name, network={**data["network"], "cidr": "10.99.0.0/16"},
                policy={**data.get("policy", {}), "baseline": "dev"})
    (env_dir / f"{name}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises((ConfigError, ConfigErrors)) as raised:
        load_env(name)
    found = [p for p in _problems(raised.value) if p.key == "discovery.namespace"]
    assert len(found) == 1 and "the default, made from the env name" in found[0].reason


# -- canary versions: their ECS services' IAM roles must fit IAM's 64 characters -----------------------------

LONG_SERVICE = "feature-store-online-embeddings1"  # 32 characters, the longest the catalog allows
DIGEST = "sha256:" + "c" * 64


@pytest.fixture
def long_service_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    from shared.catalog import CATALOG_ENV_VAR
    from tests.spec_envs import SPEC_CATALOG

    catalog = yaml.safe_load(SPEC_CATALOG.read_text())
    catalog["services"][LONG_SERVICE] = {"port": 8099, "health_path": "/healthz"}
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(catalog))
    monkeypatch.setenv(CATALOG_ENV_VAR, str(path))
    assert len(LONG_SERVICE) == 32
    return LONG_SERVICE


def _canary(edit_env: Any, service: str, *versions: str) -> None:
    weights = [100 - 10 * (len(versions) - 1)] + [10] * (len(versions) - 1)
    edit_env("dev", lambda data: (
        data["mesh"].update(provider="appmesh", appmesh_end_of_support_acknowledged=True, canaries={
            service: [{"version": version, "weight": weight} for version, weight in zip(versions, weights)]}),
        data["release"]["images"].update({service: DIGEST})))


def test_a_canary_whose_execution_role_name_iam_would_refuse_exits_2_naming_the_canary(
        edit_env: Any, env_dir: Path, tmp_path: Path, long_service_catalog: str) -> None:
    # 32 + "-" + 16 + "-execution" + "-" and 7 random characters: 67 > 64.
    _canary(edit_env, long_service_catalog, "stable-version-1", "s")
    result = synth_cli("dev", build_dir=tmp_path / "build", env_dir=env_dir)
    assert result.returncode == 2, result.stderr
    assert f"dev.yaml: mesh.canaries.{long_service_catalog}:" in result.stderr
    assert f"'{long_service_catalog}-stable-version-1-execution' plus 8 characters, 67 in all" in result.stderr
    assert "at most 45 characters" in result.stderr
    assert "'s-execution'" not in result.stderr and not (tmp_path / "build").exists()


def test_canary_roles_at_iams_limit_are_synthesized_with_names_of_64_characters(
        edit_env: Any, long_service_catalog: str) -> None:
    from shared.mesh_names import AUTONAME_SUFFIX, IAM_ROLE_NAME_MAX
    from shared.synth.engine import synth_env
    from tests.synth_helpers import of_type

    _canary(edit_env, long_service_catalog, "stable-000001", "canary-000002")  # 32 + 13 = 45
    load_env("dev")
    # The synth document holds each role's resource name; Pulumi auto-names the role from it plus 8 characters.
    roles = [role["name"] for role in of_type(synth_env("dev")["compute"], "aws:iam/role:Role")]
    assert f"{long_service_catalog}-canary-000002-execution" in roles
    assert max(len(role) + AUTONAME_SUFFIX for role in roles) == IAM_ROLE_NAME_MAX
