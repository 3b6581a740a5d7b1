"""The suite's two sets of env files and service catalogs.

``SPEC_ENV_DIR`` (tests/fixtures/environments/) and ``SPEC_CATALOG`` (tests/fixtures/catalog.yaml) hold the example
envs and services as this repository ships them (accounts 111111111111, 222222222222, 333333333333, eu-west-1, their
CIDRs and sizes; gateway, preprocess, inference, training). The suite specifies the code's behaviour on these:
conftest makes them the env folder and catalog in force (``PLATFORM_ENV_DIR``, ``PLATFORM_CATALOG``) for every test,
so a fork whose ``environments/`` and ``shared/catalog.yaml`` hold its own accounts, regions, sizes and services
changes no expectation of a test.

``USER_ENV_DIR`` (environments/) and ``USER_CATALOG`` (shared/catalog.yaml) are what deploys. The tests that judge
them rather than the code read them explicitly (inside :func:`user_envs`, over ``env_names(USER_ENV_DIR)``): the
synth snapshots (the baseline of ``nox -s diff``) and what is checked on them (the AWS API models, the URN stability
of protected resources, no plain-text URL, the provider schemas), the generated workflows, the AWS end-of-support
dates, the policy packs' stages, the catalog's warnings. README, "Quick start", lists them for users.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

from shared.catalog import CATALOG_ENV_VAR, CATALOG_FILE
from shared.envs import ENV_DIR, ENV_DIR_VAR

SPEC_ENV_DIR = Path(__file__).parent / "fixtures" / "environments"
SPEC_CATALOG = Path(__file__).parent / "fixtures" / "catalog.yaml"
USER_ENV_DIR = ENV_DIR
USER_CATALOG = CATALOG_FILE
#: the variables that make the examples, or what deploys, the env folder and catalog in force
SPEC_ENVIRON = {ENV_DIR_VAR: str(SPEC_ENV_DIR), CATALOG_ENV_VAR: str(SPEC_CATALOG)}
USER_ENVIRON = {ENV_DIR_VAR: str(USER_ENV_DIR), CATALOG_ENV_VAR: str(USER_CATALOG)}


@contextmanager
def user_envs() -> Iterator[None]:
    """``environments/`` and ``shared/catalog.yaml`` (what deploys) are the env folder and catalog in force inside the
    block (os.environ as it was before the block after it)."""
    with mock.patch.dict(os.environ, USER_ENVIRON):
        yield
