"""No plain-text URL leaves the VPC or reaches the broker: every URL in every shipped env's accepted synth
(``tests/snapshots``, which test_synth.py holds equal to the synth) is ``amqps://`` to the broker, ``https://``, or
``http://`` only to a loopback address (the containers' health checks, Envoy's admin port) or to a callee's Service
Connect / App Mesh name in the env's private namespace (README, "What is encrypted in transit")."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import pytest

from shared import REPO_ROOT
from shared.dag import LAYERS
from shared.envs import env_names, load_env
from shared.jsonwalk import string_leaves
from tests.conftest import SHIPPED_ENVS
from tests.spec_envs import USER_ENV_DIR, user_envs
from tests.synth_helpers import spec_documents

ENVS = env_names(USER_ENV_DIR)  # the env files that deploy, through their accepted snapshots
URL = re.compile(r"\b([a-z][a-z0-9+.-]*)://[^\s\"'\\]+")
LOOPBACK = {"127.0.0.1", "localhost"}


def urls(env: str) -> list[str]:
    """Every URL in the accepted snapshots of the env file ``env`` that deploys."""
    return urls_in(json.loads((REPO_ROOT / "tests" / "snapshots" / env / f"{layer}.json").read_text())
                   for layer in LAYERS)


def urls_in(documents: Iterable[dict[str, Any]]) -> list[str]:
    found: list[str] = []
    for document in documents:
        for text in string_leaves(document):
            found.extend(match.group(0) for match in URL.finditer(text))
    return found


def plain_text_problem(url: str, namespace: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme == "amqp":
        return "plain AMQP: Amazon MQ for RabbitMQ accepts AMQPS (5671) only"
    if parts.scheme == "http" and parts.hostname not in LOOPBACK and \
            not (parts.hostname or "").endswith(f".{namespace}"):
        return f"plain HTTP to {parts.hostname}, neither loopback nor a callee in {namespace}"
    return None


@pytest.mark.parametrize("env", SHIPPED_ENVS)
def test_the_scan_sees_the_broker_aws_and_the_callees_in_the_examples(env: str) -> None:
    schemes = {urlsplit(url).scheme for url in urls_in(spec_documents(env).values())}
    assert {"amqps", "https", "http"} <= schemes, sorted(schemes)


@pytest.mark.parametrize("env", ENVS)
def test_no_plain_text_url_but_loopback_and_the_callees_in_the_vpc(env: str) -> None:
    with user_envs():
        namespace = load_env(env).namespace
    found = urls(env)
    problems = {url: problem for url in found if (problem := plain_text_problem(url, namespace))}
    assert not problems, problems


@pytest.mark.parametrize(("url", "plain"), [
    ("amqp://user:pw@b-1.mq.eu-west-1.amazonaws.com:5672/ml-dev", True),
    ("http://b-1.mq.eu-west-1.amazonaws.com/api/users", True),
    ("http://inference.dev.ml.internal.example.com:8080", True),
    ("amqps://b-1.mq.eu-west-1.amazonaws.com:5671", False),
    ("https://b-1.mq.eu-west-1.amazonaws.com", False),
    ("http://127.0.0.1:8080/health", False),
    ("http://inference.dev.ml.internal:8080", False),
])
def test_the_scan_tells_plain_text_apart(url: str, plain: bool) -> None:
    assert (plain_text_problem(url, "dev.ml.internal") is not None) is plain
