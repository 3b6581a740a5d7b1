"""Fixtures shared by the whole suite."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from moto import mock_aws

from shared.envs import ENV_DIR_VAR
from tests.spec_envs import SPEC_ENV_DIR, SPEC_ENVIRON

SHIPPED_ENVS = ("dev", "staging", "prod")

# Every test, and every process a test starts, reads the example envs and catalog of tests/fixtures/ unless it points
# elsewhere itself (tests/spec_envs.py): a fork's own env files and services change no expectation. Set at import,
# before the test modules are collected (some parametrize over env_names()).
os.environ.update(SPEC_ENVIRON)


@pytest.fixture
def env_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A scratch copy of the example envs (dev, staging, prod of tests/fixtures/environments/), active through
    PLATFORM_ENV_DIR for this test: the tests specify them, and a user's own envs (another account, an env added,
    README "Add an environment") must not change what a test's edits mean (its CIDR, its image_source)."""
    target = tmp_path / "environments"
    target.mkdir()
    for name in SHIPPED_ENVS:
        shutil.copy2(SPEC_ENV_DIR / f"{name}.yaml", target)
    monkeypatch.setenv(ENV_DIR_VAR, str(target))
    yield target


@pytest.fixture
def own_tempdir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A temporary directory of this test's own for the rehearsal broker it starts (TMPDIR) and for what the
    test looks at (tempfile.gettempdir): a rehearsal another session runs on the machine at the same time
    makes folders in /tmp too, and its start sweeps a killed rehearsal's folder there."""
    base = Path(tempfile.mkdtemp(prefix="rh-"))  # short: the broker's paths live below it
    monkeypatch.setattr(tempfile, "tempdir", str(base))
    monkeypatch.setenv("TMPDIR", str(base))
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def own_event_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """A new current asyncio loop for a test that runs a program with the SDK's own mocks
    (``pulumi.runtime.set_mocks``), which run on the thread's loop. At the end, what asyncio.run does: what the
    program left is cancelled, then the loop closed."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield loop
    loop.run_until_complete(asyncio.sleep(0))  # what the program scheduled starts, then ends
    pending = asyncio.all_tasks(loop)
    for task in pending:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    asyncio.set_event_loop(None)
    loop.close()


EnvEditor = Callable[[str, Callable[[dict[str, Any]], None]], Path]


@pytest.fixture
def edit_env(env_dir: Path) -> EnvEditor:
    """``edit_env("dev", lambda data: data["mesh"].update(provider="service-connect"))`` edits the scratch copy."""

    def edit(name: str, change: Callable[[dict[str, Any]], None]) -> Path:
        path = env_dir / f"{name}.yaml"
        data = yaml.safe_load(path.read_text())
        change(data)
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    return edit


#: A case of the deploy role's tests: (label, env, the env's synth documents by layer, the role's policies for them).
RoleCase = tuple[str, Any, dict[str, Any], list[Any]]


def _role_case(label: str, name: str, documents: dict[str, Any]) -> RoleCase:
    from shared import deploy_role
    from shared.envs import load_env

    return label, load_env(name), documents, deploy_role.deploy_policies(name, environ={}, documents=documents)


@pytest.fixture(scope="module")
def shipped() -> list[RoleCase]:
    """The deploy role's cases of the shipped envs (tests/test_deploy_role.py has a shape of its own)."""
    from tests.synth_helpers import synth_layers

    return [_role_case(name, name, synth_layers(name)) for name in SHIPPED_ENVS]


@pytest.fixture
def everything(edit_env: EnvEditor) -> RoleCase:
    """The deploy role's case of dev with every optional feature on (tests/test_deploy_role.py ``_everything_on``)."""
    from shared.synth.engine import synth_env
    from tests.test_deploy_role import _everything_on

    edit_env("dev", _everything_on)
    return _role_case("dev with every feature", "dev", synth_env("dev"))


@pytest.fixture(autouse=True)
def account_ready_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """The orchestrator's account preflight (shared/orchestrate/account.py) would ask real AWS, and on `up`
    create IAM roles: every test that does not inject its own ``account=`` gets an account that is ready."""
    from tests.aws_helpers import AccountReady

    monkeypatch.setattr("shared.orchestrate.cli.default_account_check", AccountReady)


@pytest.fixture(autouse=True)
def images_unread_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """compute's image checks (shared/orchestrate/images.py) would ask real AWS, in `up` and in `preview`: every test
    that does not inject its own ``images=`` gets checks that cannot read a registry (as credentials that may not)."""
    from tests.aws_helpers import ImagesUnread

    monkeypatch.setattr("shared.orchestrate.cli.default_image_checks", ImagesUnread)


@pytest.fixture(autouse=True)
def state_bucket_unreachable_by_default(monkeypatch: pytest.MonkeyPatch,
                                        tmp_path_factory: pytest.TempPathFactory) -> None:
    """The runner reads an s3:// backend's stack locks with boto3 (shared/orchestrate/locks.py): no test reaches a
    real bucket; one that reads locks in S3 lends its own (moto) client."""
    from botocore.exceptions import NoCredentialsError

    def no_credentials(url: str, profile: str | None = None) -> object:
        raise NoCredentialsError()

    monkeypatch.setattr("shared.orchestrate.locks.backend_s3_client", no_credentials)

    # Such a bucket cannot hold the env's run lease either, which refuses a run (shared/orchestrate/automation.py):
    # the run takes it in a folder of the test's instead, as it would on a reachable backend.
    from shared.orchestrate import run_lease

    def lease_in_a_folder(backend_url: str, env_name: str, s3_client: Any) -> run_lease.LeaseStore | None:
        try:
            return run_lease.lease_store(backend_url, env_name, s3_client)
        except NoCredentialsError:
            return run_lease.FileLeaseStore(tmp_path_factory.mktemp("backend") / run_lease.LEASE_DIR /
                                            f"{env_name}.json")

    monkeypatch.setattr("shared.orchestrate.automation.lease_store", lease_in_a_folder)


@pytest.fixture
def moto_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto for one test: boto3 answers offline, no real credentials can leak in (tests/aws_helpers.py)."""
    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "MOTO_ECS_SERVICE_RUNNING"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    from tests.aws_helpers import create_role_boundaries, read_config_blob

    # An image config's download (a pre-signed S3 URL from GetDownloadUrlForLayer, which moto lacks).
    monkeypatch.setattr("shared.images.read_blob", read_config_blob)
    with mock_aws():
        create_role_boundaries()  # the shipped envs' accounts are prepared as README's fresh-account step 4 says
        yield


@pytest.fixture(autouse=True)
def _not_in_a_github_job(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests run as on a laptop, also in GitHub's `tests` job: its GITHUB_ACTIONS and GITHUB_EVENT_NAME
    (pull_request) would change what the orchestrator does (a pull request's preview gets no passphrase); a test of
    that behaviour sets them itself."""
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    monkeypatch.delenv("GITHUB_EVENT_NAME", raising=False)
