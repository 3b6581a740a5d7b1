"""What the in-VPC deploy runner and CI download and run before a deploy: the Pulumi CLI checked against its release's
sha256 (no installer script fetched and run), nox and uv and every package of .venv at a locked version and hash."""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml

from shared import REPO_ROOT
from shared.components import deploy_runner

INSTALL = yaml.safe_load(deploy_runner.BUILDSPEC)["phases"]["install"]["commands"]


def cli_step() -> str:
    [step] = [command for command in INSTALL if deploy_runner.CLI_TARBALL in command]
    return str(step)


def test_the_runner_runs_no_script_it_downloads() -> None:
    """get.pulumi.com's install.sh is unversioned and verifies nothing: piped to a shell, whatever it says on the day
    runs in the build, whose credentials may assume the deploy role."""
    for command in INSTALL:
        assert not re.search(r"\|\s*(ba|z)?sh\b", command), command
        assert "get.pulumi.com |" not in command and "get.pulumi.com/ |" not in command


def test_the_runner_installs_nox_and_uv_hash_checked_from_the_bootstrap_file() -> None:
    pips = [command for command in INSTALL if "pip install" in command]
    assert pips == [pip for pip in pips if "--require-hashes -r .ci/bootstrap-requirements.txt" in pip] and pips
    action = (REPO_ROOT / ".github" / "actions" / "setup-platform" / "action.yml").read_text()
    assert "--require-hashes -r .ci/bootstrap-requirements.txt" in action
    assert "'requirements.lock'" in action  # the download cache follows the lock
    assert "--require-hashes -r .ci/bootstrap-requirements.txt" in (REPO_ROOT / ".ci" / "run").read_text()


def fake_release(tmp_path: Path, *, tamper: bool) -> Path:
    """A release folder as get.pulumi.com serves it: the tarball (top folder ``pulumi/``) and the checksums file."""
    releases = tmp_path / "releases"
    releases.mkdir()
    payload = b"#!/bin/sh\necho v3.272.0\n"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("pulumi/pulumi")
        info.size, info.mode = len(payload), 0o755
        archive.addfile(info, io.BytesIO(payload))
    tarball = buffer.getvalue()
    (releases / deploy_runner.CLI_TARBALL).write_bytes(tarball + (b"\0" if tamper else b""))
    version = deploy_runner._pin("pulumi")
    (releases / f"pulumi-{version}-checksums.txt").write_text(
        f"{hashlib.sha256(b'other').hexdigest()}  pulumi-v{version}-darwin-arm64.tar.gz\n"
        f"{hashlib.sha256(tarball).hexdigest()}  {deploy_runner.CLI_TARBALL}\n")
    return releases


@pytest.mark.skipif(shutil.which("curl") is None or shutil.which("sha256sum") is None, reason="needs curl, sha256sum")
@pytest.mark.parametrize("tamper", [False, True])
def test_the_cli_is_installed_only_when_its_sha256_is_the_releases(tmp_path: Path, tamper: bool) -> None:
    releases = fake_release(tmp_path, tamper=tamper)
    step = cli_step().replace(deploy_runner.CLI_RELEASES, releases.as_uri())
    home = tmp_path / "home"
    home.mkdir()
    result = subprocess.run(["bash", "-c", step], env={**os.environ, "HOME": str(home)}, capture_output=True,
                            text=True, timeout=60)
    installed = home / ".pulumi" / "bin" / "pulumi"
    if tamper:
        assert result.returncode != 0 and not installed.exists(), result.stdout + result.stderr
    else:
        assert result.returncode == 0, result.stderr
        assert subprocess.run([str(installed)], capture_output=True, text=True).stdout == "v3.272.0\n"
