"""Environments are validated before anything runs: a bad file stops everything with exit 2,
one message naming the file, the key path and the reason, and nothing written to build/."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from shared import REPO_ROOT
from shared.envs import load_env


def synth_cli(*args: str, build_dir: Path, env_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PLATFORM_ENV_DIR": str(env_dir), "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run([sys.executable, "-m", "shared.synth", *args, "--build-dir", str(build_dir)],
                          capture_output=True, text=True, env=env, cwd=REPO_ROOT, check=False)


class TestTheShippedEnvironments:
    def test_dev_has_two_azs_and_one_nat(self) -> None:
        env = load_env("dev")
        assert env.network.az_count == 2 and env.network.nat == "single"

    def test_staging_has_three_azs(self) -> None:
        assert load_env("staging").network.az_count == 3

    def test_prod_has_three_azs_and_a_nat_per_az(self) -> None:
        env = load_env("prod")
        assert env.network.az_count == 3 and env.network.nat == "per-az"
        assert env.protect, "prod protects its stateful resources"

    def test_cidrs_do_not_overlap(self) -> None:
        networks = [load_env(name).network.cidr for name in ("dev", "staging", "prod")]
        assert not any(a.overlaps(b) for i, a in enumerate(networks) for b in networks[i + 1:])

    def test_every_release_pins_every_catalog_service_by_digest(self) -> None:
        from shared.catalog import load_catalog
        from shared.envs import is_digest

        for name in ("dev", "staging", "prod"):
            images = load_env(name).release.images
            assert set(images) == set(load_catalog().names())
            assert all(is_digest(ref) for ref in images.values())


def _set(path: str, value: Any) -> Any:
    def change(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = data
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return change


def _delete(path: str) -> Any:
    def change(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = data
        for key in parents:
            node = node[key]
        del node[last]
    return change


MALFORMED = [
    # (what, change, key in the message, words of the reason)
    ("invalid CIDR", _set("network.cidr", "10.10.0.0/33"), "network.cidr", "not a valid IPv4 CIDR"),
    ("CIDR with host bits", _set("network.cidr", "10.10.1.0/16"), "network.cidr", "not a valid IPv4 CIDR"),
    ("overlapping CIDR", _set("network.cidr", "10.20.0.0/16"), "network.cidr", "overlaps 10.20.0.0/16"),
    ("zero AZs", _set("network.az_count", 0), "network.az_count", "greater than or equal to 1"),
    ("more AZs than the region has", _set("network.az_count", 4), "network.az_count", "offers 3 availability zones"),
    ("unknown key", _set("network.nat_gateways", 2), "network.nat_gateways", "unknown key"),
    ("wrong type", _set("network.az_count", "two"), "network.az_count", "valid integer"),
    ("missing required key", _delete("account_id"), "account_id", "required key is missing"),
    ("unknown mesh provider", _set("mesh.provider", "istio"), "mesh.provider", "'service-connect' or 'appmesh'"),
    ("unknown NAT strategy", _set("network.nat", "double"), "network.nat", "'none', 'single' or 'per-az'"),
    ("unknown service in release", _set("release.images.billing", "sha256:" + "a" * 64), "release.images.billing",
     "unknown service"),
    ("short suppression reason", _set("policy.suppressions", [{"rule": "ecr-kms-encryption", "resource": "x",
                                                                "reason": "because"}]),
     "policy.suppressions.0.reason", "at least 10 characters"),
    ("unknown rule id", _set("policy.enforcement", {"no-such-rule": "mandatory"}), "policy.enforcement.no-such-rule",
     "unknown rule id"),
]


@pytest.mark.parametrize(("what", "change", "key", "reason"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_env_exits_2_naming_file_key_and_reason(
    what: str, change: Any, key: str, reason: str, edit_env: Any, env_dir: Path, tmp_path: Path
) -> None:
    edit_env("dev", change)
    build = tmp_path / "build"
    result = synth_cli("dev", build_dir=build, env_dir=env_dir)
    assert result.returncode == 2, result.stderr
    message = result.stderr.strip()
    assert "dev.yaml" in message and key in message and reason in message, message
    assert len(message.splitlines()) == 1, "one message, not a traceback"
    assert not build.exists(), "nothing written to build/"


def test_prod_cannot_loosen_a_mandatory_rule(edit_env: Any, env_dir: Path, tmp_path: Path) -> None:
    edit_env("prod", _set("policy.enforcement", {"ecr-immutable-tags": "advisory"}))
    result = synth_cli("prod", build_dir=tmp_path / "build", env_dir=env_dir)
    assert result.returncode == 2
    assert "policy.enforcement.ecr-immutable-tags" in result.stderr and "suppression" in result.stderr


def test_yaml_syntax_error_names_the_line(env_dir: Path, tmp_path: Path) -> None:
    path = env_dir / "dev.yaml"
    path.write_text(path.read_text() + "\nnetwork: [unclosed\n")
    result = synth_cli("dev", build_dir=tmp_path / "build", env_dir=env_dir)
    assert result.returncode == 2
    assert "dev.yaml" in result.stderr and "line" in result.stderr and "YAML syntax error" in result.stderr
    assert not (tmp_path / "build").exists()


def test_unknown_env_name_lists_the_known_ones(env_dir: Path, tmp_path: Path) -> None:
    result = synth_cli("qa", build_dir=tmp_path / "build", env_dir=env_dir)
    assert result.returncode == 2
    assert "qa.yaml" in result.stderr and "unknown environment 'qa'" in result.stderr and "dev" in result.stderr
    assert not (tmp_path / "build").exists()


def test_a_top_level_list_is_refused(env_dir: Path, tmp_path: Path) -> None:
    (env_dir / "dev.yaml").write_text("- just\n- a list\n")
    result = synth_cli("dev", build_dir=tmp_path / "build", env_dir=env_dir)
    assert result.returncode == 2 and "must be a mapping" in result.stderr


def test_a_new_env_names_the_policy_column_it_follows(env_dir: Path, tmp_path: Path) -> None:
    """README, "Add an environment": copy staging, give it its own CIDR and a policy baseline."""
    text = (env_dir / "staging.yaml").read_text().replace("10.20.0.0/16", "10.40.0.0/16")
    (env_dir / "qa.yaml").write_text(text)
    refused = synth_cli("qa", build_dir=tmp_path / "refused", env_dir=env_dir)
    assert refused.returncode == 2 and "qa.yaml: policy.baseline: required" in refused.stderr
    (env_dir / "qa.yaml").write_text(text.replace("policy:\n", "policy:\n  baseline: staging\n", 1))
    accepted = synth_cli("qa", build_dir=tmp_path / "build", env_dir=env_dir)
    assert accepted.returncode == 0, accepted.stderr
    assert (tmp_path / "build" / "qa" / "compute.json").is_file()
