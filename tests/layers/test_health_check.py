"""An app container's health check fails when its app does not answer, whatever the catalog's health path holds.

ECS runs the check's CMD-SHELL command in the container's shell (botocore ecs HealthCheck.command). Unquoted, a
query's `&` put curl in the background and the rest (`verbose=1 || exit 1`, an assignment) exited 0: the app was
HEALTHY with nothing listening, its serve gate opened at once and the circuit breaker never saw a failure. And a
curl with no time limit, against an app that takes the connection and never answers, outlived its check.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from pydantic import ValidationError

from shared.catalog import HEALTH_CURL_MAX_SECONDS, HEALTH_TIMEOUT, ServiceSpec
from shared.components.compute_containers import ContainerWiring, app_container

#: paths of the characters RFC 3986 allows, several of them special to the shell
PATHS = ["/healthz", "/health?deep=1&verbose=1", "/h;true", "/h$(true)", "/it's", "/ready?x=(1)*2+3,4:5@6!"]


def check_command(path: str, port: int) -> str:
    spec = ServiceSpec(name="svc", port=port, health_path=path)
    wiring = ContainerWiring(service="svc", port=port, health_path=spec.health_path, image="img",
                             region="eu-west-1", log_group="/g", port_name="svc-http", environment={}, secrets={})
    command = app_container(wiring)["healthCheck"]["command"]
    assert command[0] == "CMD-SHELL"
    return str(command[1])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def silent_listener() -> Iterator[int]:
    """A port that takes connections and never answers (an app whose one worker is busy)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield int(server.getsockname()[1])


@pytest.mark.parametrize("path", PATHS)
def test_the_check_fails_when_nothing_listens_whatever_the_path_holds(path: str) -> None:
    command = check_command(path, free_port())
    assert subprocess.run(["/bin/sh", "-c", command], capture_output=True, timeout=30).returncode != 0, command


@pytest.mark.parametrize("path", PATHS)
def test_the_check_asks_for_exactly_the_catalog_s_path(path: str) -> None:
    """The shell hands curl the URL unchanged: `sh -c` with curl replaced by a printer."""
    command = check_command(path, 8080).replace("curl ", "printf '%s\\n' ", 1)
    printed = subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True, timeout=30).stdout
    assert printed.splitlines()[-1] == f"http://127.0.0.1:8080{path}"


def test_the_check_s_curl_gives_up_before_the_check_s_timeout() -> None:
    assert 0 < HEALTH_CURL_MAX_SECONDS < HEALTH_TIMEOUT
    with silent_listener() as port:
        command = check_command("/healthz", port)
        run = subprocess.run(["/bin/sh", "-c", command], capture_output=True, timeout=HEALTH_TIMEOUT + 10)
    assert run.returncode != 0
    assert f"--max-time {HEALTH_CURL_MAX_SECONDS} " in command


@pytest.mark.parametrize("path", ["healthz", "/h a", "/h#frag", '/h"', "/h`id`", "/h\\x", "/h\n", "/a|b",
                                  "/" + "a" * 1024])
def test_a_health_path_a_url_or_a_load_balancer_cannot_carry_is_refused(path: str) -> None:
    with pytest.raises(ValidationError, match="health_path"):
        ServiceSpec(name="svc", port=8080, health_path=path)


@pytest.mark.parametrize(("path", "said"), [
    ("healthz", "'healthz' must start with '/' (e.g. /healthz)"),
    ("/h a", "'/h a' holds ' ': a path and an optional ?query of letters, digits and -._~%!$&'()*+,;=:@/ only"),
    ("/" + "a" * 1024, "1025 characters is longer than a target group's health check path takes (1024)"),
])
def test_a_refused_health_path_is_told_in_words_not_as_a_pattern(path: str, said: str) -> None:
    with pytest.raises(ValidationError) as raised:
        ServiceSpec(name="svc", port=8080, health_path=path)
    assert said in str(raised.value) and "[A-Za-z" not in str(raised.value)
