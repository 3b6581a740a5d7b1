"""The suite's two folders of env files.

``SPEC_ENV_DIR`` (tests/fixtures/environments/) holds the example envs as this repository ships them (accounts
111111111111, 222222222222, 333333333333, eu-west-1, their CIDRs and sizes). The suite specifies the code's behaviour
on these: conftest makes this folder the env folder in force (``PLATFORM_ENV_DIR``) for every test, so a fork whose
``environments/`` holds its own accounts, regions, CIDRs and sizes changes no expectation of a test.

``USER_ENV_DIR`` (environments/) holds the env files that deploy. The few tests that judge those files rather than
the code read them explicitly (:func:`user_envs`, ``env_names(USER_ENV_DIR)``): the synth snapshots, which are the
baseline of ``nox -s diff``; the plan diff's URN stability; the policy packs over every env.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shared.envs import ENV_DIR, active_env_dir

SPEC_ENV_DIR = Path(__file__).parent / "fixtures" / "environments"
USER_ENV_DIR = ENV_DIR


@contextmanager
def user_envs() -> Iterator[None]:
    """``environments/`` (the env files that deploy) is the env folder in force inside the block."""
    with active_env_dir(USER_ENV_DIR):
        yield
