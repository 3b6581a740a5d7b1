"""A service's CPU architecture (catalog ``architecture``): ``amd64`` (the default) or ``arm64``, AWS Graviton. Its task
definition asks Fargate for that platform (X86_64 or ARM64), the image checks before `up` and promotion want that
platform of its released image (a single image of it, or an index holding it), and a change is a new task definition:
the service rolls, nothing else is replaced."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import botocore.session
import pytest

from shared.envs import load_env
from shared.errors import ConfigError, ConfigErrors
from shared.fargate import CPU_ARCHITECTURES
from shared.plan_diff import diff_documents
from tests.catalog_helpers import write_catalog
from tests.layers.compute_helpers import fresh
from tests.synth_helpers import by_name
from tests.test_images import wrong_of

TASK_DEFINITION = "aws:ecs/taskDefinition:TaskDefinition"
CONFIG = "sha256:" + "c1" * 32


def _arm64(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, service: str = "training") -> None:
    write_catalog(tmp_path, monkeypatch, lambda services: services[service].update(architecture="arm64"))


def _cpu(compute: dict[str, Any], service: str) -> str:
    return str(by_name(compute, TASK_DEFINITION, service)["inputs"]["runtimePlatform"]["cpuArchitecture"])


def test_the_task_definition_asks_for_the_catalogs_architecture_and_a_change_rolls_the_service(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_catalog(tmp_path, monkeypatch, lambda services: None)  # the same catalog, written as the change below is
    before = fresh("dev")["compute"]
    assert {_cpu(before, service) for service in ("gateway", "preprocess", "inference", "training")} == {"X86_64"}
    _arm64(tmp_path, monkeypatch)
    after = fresh("dev")["compute"]
    assert _cpu(after, "training") == "ARM64" and _cpu(after, "inference") == "X86_64"
    # a new revision of its task definition (runtimePlatform is replace-on-change), which the ECS service then rolls
    # to; nothing else changes
    changes = [(c.action, c.type, c.name, c.inputs) for c in diff_documents("compute", before, after).changes]
    assert changes == [("replace", TASK_DEFINITION, "training", ("runtimePlatform",))]


def test_the_architectures_are_the_ones_ecs_takes() -> None:
    """botocore ecs RuntimePlatform.cpuArchitecture: X86_64 | ARM64."""
    model = botocore.session.get_session().get_service_model("ecs")
    assert set(CPU_ARCHITECTURES.values()) == set(model.shape_for("CPUArchitecture").enum)


def test_an_unknown_architecture_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.catalog import load_catalog

    write_catalog(tmp_path, monkeypatch, lambda services: services["training"].update(architecture="aarch64"))
    with pytest.raises((ConfigError, ConfigErrors)) as raised:
        load_catalog()
    assert "services.training.architecture" in str(raised.value)


def test_an_app_mesh_env_refuses_an_arm64_service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   edit_env: Any) -> None:
    _arm64(tmp_path, monkeypatch)
    edit_env("dev", lambda data: data["mesh"].update(provider="appmesh", appmesh_end_of_support_acknowledged=True))
    with pytest.raises((ConfigError, ConfigErrors)) as raised:
        load_env("dev")
    message = str(raised.value)
    assert "mesh.provider" in message and "arm64 services (training" in message and "service-connect" in message


def _found(manifest: dict[str, Any], configs: dict[str, dict[str, str]], service: str = "training") -> list[Any]:
    """What the platform check finds of ``service``'s released image ``manifest`` (an index's children: _index's)."""
    return wrong_of(manifest, configs, service, children={digest: CONFIG for digest in _CHILDREN})


def _single() -> dict[str, Any]:
    return {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "layers": [],
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": CONFIG, "size": 2}}


_CHILDREN = ["sha256:" + f"{n:02d}" * 32 for n in range(10, 13)]


def _index(*platforms: dict[str, str]) -> dict[str, Any]:
    return {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 2, "digest": digest, "platform": platform}
        for digest, platform in zip(_CHILDREN, platforms, strict=False)]}


@pytest.mark.parametrize(("manifest", "config", "runs"), [
    (_single(), {"os": "linux", "architecture": "arm64"}, True),
    (_single(), {"os": "linux", "architecture": "aarch64"}, True),
    (_single(), {"os": "linux", "architecture": "amd64"}, False),
    (_index({"os": "linux", "architecture": "amd64"}, {"os": "linux", "architecture": "arm64"}), {}, True),
    # containerd normalizeArch: arm64's variant 8 / v8 is no variant
    (_index({"os": "linux", "architecture": "arm64", "variant": "v8"}), {}, True),
    (_index({"os": "linux", "architecture": "amd64"}), {}, False),
])
def test_an_arm64_service_wants_an_arm64_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              manifest: dict[str, Any], config: dict[str, str], runs: bool) -> None:
    _arm64(tmp_path, monkeypatch)
    found = _found(manifest, {CONFIG: config})
    if runs:
        assert found == []
    else:
        (wrong,) = found
        assert wrong.platform == ("linux", "arm64")
        reason = wrong.reason()
        assert "ask Fargate for LINUX/ARM64, which runs linux/arm64 images only" in reason, reason
        assert "docker buildx build --platform linux/arm64" in reason


def test_an_amd64_service_still_wants_an_amd64_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _arm64(tmp_path, monkeypatch)  # training only: inference stays amd64
    (wrong,) = _found(_single(), {CONFIG: {"os": "linux", "architecture": "arm64"}}, service="inference")
    assert wrong.platform == ("linux", "amd64") and "LINUX/X86_64" in wrong.reason()
    assert _found(_single(), {CONFIG: {"os": "linux", "architecture": "amd64"}}, service="inference") == []
