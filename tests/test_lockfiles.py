"""The locks install on every machine the README promises (Python 3.11-3.13 on Linux x86_64/arm64 and macOS
arm64/x86_64): `uv pip install --require-hashes -r requirements.lock` takes only the hashed files, so a package whose
hashed wheels miss one machine builds its sdist there (a compiler; for cryptography a Rust toolchain) or stops."""

from __future__ import annotations

import pytest

from shared import REPO_ROOT, lockfiles, venvcheck

DIGESTS = iter(f"{n:064x}" for n in range(1, 1000))


def lock_with(files: list[str], marker: str = "") -> tuple[str, dict[str, str]]:
    """A one-package lock with a hash per file name, and the record naming them."""
    record = {next(DIGESTS): name for name in files}
    lines = "".join(f" \\\n    --hash=sha256:{digest}" for digest in record)
    return f"demo==1.0{' ; ' + marker if marker else ''}{lines}\n    # via x\n", record


def test_every_locked_package_has_a_wheel_for_every_promised_python_and_platform() -> None:
    """Read from the real locks and their record: cryptography 49+ ship no x86_64 macOS wheel, so an Intel Mac got its
    sdist (Rust, OpenSSL headers) until pyproject.toml held it at 48.0.1."""
    assert lockfiles.check(REPO_ROOT) == []


def test_the_record_is_the_lock_session_s_output_and_its_check_runs_after() -> None:
    commands = venvcheck.lock_command(REPO_ROOT, python="py", extra=["--upgrade"])
    assert commands[-2:] == [["py", "-m", "shared.lockfiles", "record"], ["py", "-m", "shared.lockfiles", "check"]]
    assert all("--upgrade" in command for command in commands[:-2])


@pytest.mark.parametrize(("files", "missing"), [
    (["demo-1.0-py3-none-any.whl"], []),
    (["demo-1.0-cp311-abi3-macosx_11_0_arm64.whl", "demo-1.0-cp311-abi3-manylinux_2_17_x86_64.whl",
      "demo-1.0-cp311-abi3-manylinux_2_28_aarch64.whl", "demo-1.0.tar.gz"], ["macOS x86_64"]),
    (["demo-1.0-cp311-abi3-macosx_10_9_universal2.whl", "demo-1.0-cp311-abi3-manylinux2014_x86_64.whl",
      "demo-1.0-cp311-abi3-manylinux_2_17_aarch64.manylinux2014_aarch64.whl"], []),
    # a wheel for a glibc newer than Ubuntu 22.04's (the oldest promised Linux machine) does not install there
    (["demo-1.0-py3-none-manylinux_2_39_x86_64.whl", "demo-1.0-py3-none-manylinux_2_17_aarch64.whl",
      "demo-1.0-py3-none-macosx_11_0_universal2.whl"], ["Linux x86_64"]),
    (["demo-1.0.tar.gz"], ["Linux x86_64", "Linux arm64", "macOS arm64", "macOS x86_64"]),
])
def test_a_package_without_a_wheel_for_a_promised_platform_is_named(files: list[str], missing: list[str]) -> None:
    lock, record = lock_with(files)
    problems = lockfiles.gaps(lock, record)
    for platform in missing:
        assert any(f"Python 3.13 on {platform}" in problem for problem in problems), problems
    assert len(problems) == (1 if missing else 0)


def test_a_wheel_per_cpython_version_must_include_each_supported_one() -> None:
    """No cp313 wheel: Python 3.13 is promised, the install would build the sdist."""
    lock, record = lock_with([f"demo-1.0-cp{minor}-cp{minor}-{platform}.whl" for minor in (311, 312)
                              for platform in ("manylinux_2_17_x86_64", "manylinux_2_17_aarch64",
                                               "macosx_10_9_universal2")])
    (problem,) = lockfiles.gaps(lock, record)
    assert "Python 3.13 on Linux x86_64" in problem and "3.12" not in problem


def test_a_marker_that_excludes_the_machine_needs_no_wheel_there() -> None:
    lock, record = lock_with(["demo-1.0-py3-none-win_amd64.whl"], marker="sys_platform == 'win32'")
    assert lockfiles.gaps(lock, record) == []
    lock, record = lock_with(["demo-1.0-cp311-abi3-macosx_10_9_universal2.whl"],
                             marker="sys_platform == 'darwin' and platform_machine == 'x86_64'")
    assert lockfiles.gaps(lock, record) == []


def test_a_hash_the_record_does_not_name_is_a_stale_record() -> None:
    lock, record = lock_with(["demo-1.0-py3-none-any.whl"])
    (problem,) = lockfiles.gaps(lock, {})
    assert "not in .ci/lock-wheels.txt" in problem and "nox -s lock" in problem
    assert lockfiles.gaps(lock, record) == []


def test_the_record_names_each_file_of_uv_s_pylock_and_marks_a_hash_it_leaves_out() -> None:
    """pylock.toml (PEP 751) names a file by `name` or by its URL's last part; a locked hash it leaves out (a wheel no
    Python >= 3.11 installs) is recorded as `-` and counts as no wheel."""
    pylock = {"packages": [{"name": "demo", "sdist": {"url": "https://index.invalid/d/demo-1.0.tar.gz",
                                                      "hashes": {"sha256": "a" * 64}},
                            "wheels": [{"name": "demo-1.0-py3-none-any.whl", "hashes": {"sha256": "b" * 64}}]}]}
    files = lockfiles.pylock_files(pylock)
    assert files == {"a" * 64: "demo-1.0.tar.gz", "b" * 64: "demo-1.0-py3-none-any.whl"}
    record = lockfiles.read_record(lockfiles.render_record({**files, "c" * 64: "-"}, ["a" * 64, "b" * 64, "c" * 64]))
    assert record == {**files, "c" * 64: "-"}
    lock = f"demo==1.0 \\\n    --hash=sha256:{'c' * 64}\n"
    (problem,) = lockfiles.gaps(lock, record)
    assert "no wheel for Python 3.11 on Linux x86_64" in problem
