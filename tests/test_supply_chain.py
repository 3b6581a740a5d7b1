"""What the in-VPC deploy runner and CI download and run before a deploy: the Pulumi CLI checked against its release's
sha256 (no installer script fetched and run), nox and uv and every package of .venv at a locked version and hash."""

from __future__ import annotations

import hashlib
import io
import os
import platform
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


def test_the_runner_runs_no_script_it_downloads_and_installs_the_pinned_cli_sha256_checked() -> None:
    """get.pulumi.com's install.sh is unversioned and verifies nothing: piped to a shell, whatever it says on the day
    runs in the build, whose credentials may assume the deploy role."""
    for command in INSTALL:
        assert not re.search(r"\|\s*(ba|z)?sh\b", command), command
    assert f"bash .ci/install-pulumi {deploy_runner._pin('pulumi')}" in INSTALL


def test_the_runner_installs_nox_and_uv_hash_checked_from_the_bootstrap_file() -> None:
    pips = [command for command in INSTALL if "pip install" in command]
    assert pips == [pip for pip in pips if "--require-hashes -r .ci/bootstrap-requirements.txt" in pip] and pips
    action = (REPO_ROOT / ".github" / "actions" / "setup-platform" / "action.yml").read_text()
    assert "--require-hashes -r .ci/bootstrap-requirements.txt" in action
    assert "'requirements.lock'" in action  # the download cache follows the lock
    assert "--require-hashes -r .ci/bootstrap-requirements.txt" in (REPO_ROOT / ".ci" / "run").read_text()


TARBALL = "pulumi-v3.272.0-linux-x64.tar.gz"


def fake_release(tmp_path: Path, *, tamper: bool, tarball_name: str = TARBALL) -> Path:
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
    (releases / tarball_name).write_bytes(tarball + (b"\0" if tamper else b""))
    (releases / "pulumi-3.272.0-checksums.txt").write_text(
        f"{hashlib.sha256(b'other').hexdigest()}  pulumi-v3.272.0-darwin-arm64.tar.gz\n"
        f"{hashlib.sha256(tarball).hexdigest()}  {tarball_name}\n")
    return releases


@pytest.mark.skipif(shutil.which("curl") is None or shutil.which("sha256sum") is None, reason="needs curl, sha256sum")
@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="the fake release is the linux-x64 tarball")
@pytest.mark.parametrize("tamper", [False, True])
def test_install_pulumi_installs_the_cli_only_when_its_sha256_is_the_releases(tmp_path: Path, tamper: bool) -> None:
    releases = fake_release(tmp_path, tamper=tamper)
    home = tmp_path / "home"
    (home / ".pulumi" / "bin").mkdir(parents=True)
    (home / ".pulumi" / "bin" / "pulumi").write_text("#!/bin/sh\necho before\n")
    result = subprocess.run(["bash", str(REPO_ROOT / ".ci" / "install-pulumi"), "3.272.0", releases.as_uri()],
                            env={**os.environ, "HOME": str(home)}, capture_output=True, text=True, timeout=60)
    installed = home / ".pulumi" / "bin" / "pulumi"
    if tamper:
        assert result.returncode != 0, result.stdout
        assert installed.read_text() == "#!/bin/sh\necho before\n"  # nothing of the tampered tarball was installed
    else:
        assert result.returncode == 0, result.stderr
        assert result.stdout == "v3.272.0\n"
        assert subprocess.run([str(installed)], capture_output=True, text=True).stdout == "v3.272.0\n"


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_install_pulumi_refuses_a_checksums_file_without_the_tarball(tmp_path: Path) -> None:
    releases = fake_release(tmp_path, tamper=False)
    (releases / "pulumi-3.272.0-checksums.txt").write_text("abc  pulumi-v3.272.0-darwin-arm64.tar.gz\n")
    result = subprocess.run(["bash", str(REPO_ROOT / ".ci" / "install-pulumi"), "3.272.0", releases.as_uri()],
                            env={**os.environ, "HOME": str(tmp_path)}, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "names no pulumi-v3.272.0-linux-" in result.stderr
    assert not (tmp_path / ".pulumi").exists()


def with_uname(tmp_path: Path, system: str, machine: str) -> dict[str, str]:
    """The environment of a machine whose ``uname -s`` and ``uname -m`` say ``system`` and ``machine``."""
    fake_bin = tmp_path / "fake-bin"
    fake_bin.mkdir()
    (fake_bin / "uname").write_text(f'#!/bin/sh\ncase "$1" in -m) echo {machine} ;; *) echo {system} ;; esac\n')
    (fake_bin / "uname").chmod(0o755)
    home = tmp_path / "home"
    (home / ".pulumi" / "bin").mkdir(parents=True)
    (home / ".pulumi" / "bin" / "pulumi").write_text("#!/bin/sh\necho before\n")
    return {**os.environ, "HOME": str(home), "PATH": f"{fake_bin}{os.pathsep}{os.environ['PATH']}"}


@pytest.mark.skipif(shutil.which("curl") is None or shutil.which("sha256sum") is None, reason="needs curl, sha256sum")
@pytest.mark.parametrize("machine, arch", [("x86_64", "x64"), ("aarch64", "arm64"), ("arm64", "arm64")])
def test_install_pulumi_takes_the_tarball_of_the_machines_architecture(tmp_path: Path, machine: str, arch: str) -> None:
    """Pulumi's release archives are pulumi-v<version>-linux-x64 and -linux-arm64 (pulumi/pulumi .goreleaser.yml
    archives name_template: amd64 is named x64), beside pulumi-<version>-checksums.txt (its checksum name_template)."""
    releases = fake_release(tmp_path, tamper=False, tarball_name=f"pulumi-v3.272.0-linux-{arch}.tar.gz")
    env = with_uname(tmp_path, "Linux", machine)
    result = subprocess.run(["bash", str(REPO_ROOT / ".ci" / "install-pulumi"), "3.272.0", releases.as_uri()],
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert (Path(env["HOME"]) / ".pulumi" / "bin" / "pulumi").read_text() == "#!/bin/sh\necho v3.272.0\n"


@pytest.mark.parametrize("system, machine", [("Linux", "riscv64"), ("Linux", "i686"), ("Darwin", "arm64"),
                                             ("Darwin", "x86_64")])
def test_install_pulumi_refuses_a_machine_without_a_linux_cli_before_touching_anything(
        tmp_path: Path, system: str, machine: str) -> None:
    """The script installs the Linux CLI (CI's runners, the deploy runner). On a Mac it would put the linux-arm64 or
    linux-x64 CLI in place of the one get.pulumi.com's installer put in ~/.pulumi/bin, which then no longer runs."""
    releases = fake_release(tmp_path, tamper=False)  # the release has both Linux tarballs, intact
    arm64 = "pulumi-v3.272.0-linux-arm64.tar.gz"
    shutil.copy(releases / TARBALL, releases / arm64)
    checksums = releases / "pulumi-3.272.0-checksums.txt"
    digest = hashlib.sha256((releases / arm64).read_bytes()).hexdigest()
    checksums.write_text(checksums.read_text() + f"{digest}  {arm64}\n")
    env = with_uname(tmp_path, system, machine)
    result = subprocess.run(["bash", str(REPO_ROOT / ".ci" / "install-pulumi"), "3.272.0", releases.as_uri()],
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and f"no Pulumi CLI for {system} {machine}" in result.stderr, result.stderr
    assert (Path(env["HOME"]) / ".pulumi" / "bin" / "pulumi").read_text() == "#!/bin/sh\necho before\n"
    # and says what to install instead (README, On a laptop), with the oldest version the orchestrator admits
    from shared.orchestrate.automation import INSTALL_URL, MIN_CLI_VERSION

    instead = "brew install pulumi/tap/pulumi" if system == "Darwin" else INSTALL_URL
    assert instead in result.stderr and ".".join(map(str, MIN_CLI_VERSION[:2])) in result.stderr, result.stderr


def test_the_bootstrap_file_is_compiled_from_the_pins_of_its_in_file() -> None:
    """`nox -s lock` compiles .ci/bootstrap-requirements.in into the hashed .txt that CI, the runner and a fresh
    machine install: a pin bumped in the .in without recompiling would install the old version without a word."""
    from shared.venvcheck import locked_versions

    wanted = locked_versions(REPO_ROOT / ".ci" / "bootstrap-requirements.in")
    compiled = locked_versions(REPO_ROOT / ".ci" / "bootstrap-requirements.txt")
    assert wanted, "the .in pins nothing"
    assert {name: compiled.get(name) for name in wanted} == wanted, "run `nox -s lock` after changing a pin"
