"""The broker admin's rotation function, run the way Lambda runs it, against moto's Secrets Manager and a
real RabbitMQ (management plugin, plain http on loopback, allowed by the test-only variable).

The function is loaded from the source text the broker component ships (:func:`rotation_source`), as a
module of its own, so these tests also prove that text runs without the rest of the repository.
Secrets Manager's own part of a rotation (RotateSecret: enable rotation, attach ``AWSPENDING`` to an empty
version named by the token, then invoke the four steps) is played by :func:`start_rotation` and
:func:`rotate`; moto cannot run the function itself.
"""

from __future__ import annotations

import json
import threading
import time
import types
import urllib.error
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.secretsmanager.models import FakeSecret, secretsmanager_backends

from shared.components.broker import INITIAL_STAGE
from shared.components.broker_rotation import HANDLER_MODULE, TIMEOUT_SECONDS, rotation_source
from shared.rehearse.broker import LocalBroker
from tests.loopback import Listener, RedirectRecorder
from tests.rotation.imports import outside_the_runtime

REGION = "eu-west-1"
STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")


@pytest.fixture(scope="module")
def rotation() -> types.ModuleType:
    """The shipped source, executed as Lambda would import it (module ``broker_admin``, nothing of ``shared``)."""
    module = types.ModuleType(HANDLER_MODULE)
    exec(compile(rotation_source(), f"{HANDLER_MODULE}.py", "exec"), module.__dict__)
    return module


@pytest.fixture
def secrets(moto_aws: None) -> Any:
    return boto3.client("secretsmanager", region_name=REGION)


def new_secret(client: Any, username: str, password: str) -> str:
    """The admin secret as the broker component leaves it: one version, AWSCURRENT and INITIAL_STAGE."""
    created = client.create_secret(Name=f"platform/test/broker/{uuid.uuid4().hex[:8]}",
                                   SecretString=json.dumps({"password": password, "username": username}))
    client.update_secret_version_stage(SecretId=created["ARN"], VersionStage=INITIAL_STAGE,
                                       MoveToVersionId=created["VersionId"])
    return str(created["ARN"])


def start_rotation(arn: str) -> str:
    """What RotateSecret does before it invokes the function: rotation on, ``AWSPENDING`` on a new, empty
    version whose id is the token the function receives."""
    secret = secretsmanager_backends[DEFAULT_ACCOUNT_ID][REGION].secrets[arn]
    assert isinstance(secret, FakeSecret), "a primary secret, not a replica"
    secret.rotation_requested = secret.rotation_enabled = True
    secret.rotation_lambda_arn = f"arn:aws:lambda:{REGION}:{DEFAULT_ACCOUNT_ID}:function:rotation"
    secret.auto_rotate_after_days = 30
    token = str(uuid.uuid4())
    secret.remove_version_stages_from_old_versions(["AWSPENDING"])
    secret.versions[token] = {"createdate": int(time.time()), "version_id": token, "version_stages": ["AWSPENDING"]}
    return token


def invoke(rotation: types.ModuleType, client: Any, arn: str, token: str, step: str, environ: dict[str, str]) -> None:
    rotation.handler({"SecretId": arn, "ClientRequestToken": token, "Step": step}, None, client=client, environ=environ)


def value(client: Any, arn: str, stage: str) -> dict[str, str]:
    return dict(json.loads(client.get_secret_value(SecretId=arn, VersionStage=stage)["SecretString"]))


def stages(client: Any, arn: str) -> dict[str, list[str]]:
    return {v: sorted(s) for v, s in client.describe_secret(SecretId=arn)["VersionIdsToStages"].items()}


# -- without a broker --------------------------------------------------------------------------------
def test_the_shipped_source_imports_only_the_standard_library_and_boto3() -> None:
    assert outside_the_runtime(rotation_source()) == set()


@pytest.mark.parametrize(("environ", "reason"), [
    ({}, "must be the broker's management URL"),
    ({"MANAGEMENT_ENDPOINT": "http://127.0.0.1:15672"}, "plain http"),
    ({"MANAGEMENT_ENDPOINT": "http://b-1.mq.eu-west-1.on.aws", "ROTATION_TEST_ONLY_ALLOW_HTTP": "1"}, "plain http"),
    ({"MANAGEMENT_ENDPOINT": "ftp://b-1.mq.eu-west-1.on.aws"}, "not an https URL"),
])
def test_the_management_endpoint_must_be_https(rotation: types.ModuleType, environ: dict[str, str],
                                               reason: str) -> None:
    with pytest.raises(rotation.RotationError, match=reason):
        rotation.ManagementApi.from_environment(environ)


def test_https_verifies_the_certificate_with_the_default_trust_store(rotation: types.ModuleType) -> None:
    import ssl

    api = rotation.ManagementApi.from_environment({"MANAGEMENT_ENDPOINT": "https://b-1.mq.eu-west-1.on.aws/"})
    assert api.endpoint == "https://b-1.mq.eu-west-1.on.aws"
    assert api.context.verify_mode == ssl.CERT_REQUIRED and api.context.check_hostname


def test_the_administrator_s_password_never_follows_a_redirect(rotation: types.ModuleType) -> None:
    # urllib copies a request's headers to wherever a 3xx points (another host, plain http): the Authorization header
    # (the broker administrator's password, Basic) must stay with the broker's own management endpoint
    import base64

    with RedirectRecorder(b'{"name": "platform-admin"}') as servers:
        api = rotation.ManagementApi.from_environment(
            {"MANAGEMENT_ENDPOINT": servers.url, "ROTATION_TEST_ONLY_ALLOW_HTTP": "1"})
        assert api.whoami({"username": "platform-admin", "password": "initial-password-0"}) == {
            "name": "platform-admin"}
    token = base64.b64encode(b"platform-admin:initial-password-0").decode()
    assert servers.seen == {"first": [f"Basic {token}"], "second": [None]}


def test_create_secret_stores_one_pending_password_meeting_amazon_mqs_rule(
        rotation: types.ModuleType, secrets: Any) -> None:
    arn = new_secret(secrets, "platform-admin", "initial-password-0")
    token = start_rotation(arn)
    environ = {"MANAGEMENT_ENDPOINT": "https://b-1.mq.eu-west-1.on.aws"}
    invoke(rotation, secrets, arn, token, "createSecret", environ)
    pending = json.loads(secrets.get_secret_value(SecretId=arn, VersionId=token, VersionStage="AWSPENDING")
                         ["SecretString"])
    assert pending["username"] == "platform-admin"
    assert rotation.check_admin_password(pending["password"]) and pending["password"].isalnum()
    assert len(pending["password"]) == 32
    invoke(rotation, secrets, arn, token, "createSecret", environ)  # Secrets Manager retried the step
    again = json.loads(secrets.get_secret_value(SecretId=arn, VersionId=token)["SecretString"])
    assert again == pending
    assert value(secrets, arn, "AWSCURRENT")["password"] == "initial-password-0"


def test_a_token_that_is_not_pending_is_refused(rotation: types.ModuleType, secrets: Any) -> None:
    arn = new_secret(secrets, "platform-admin", "initial-password-0")
    start_rotation(arn)
    current = next(v for v, s in stages(secrets, arn).items() if "AWSCURRENT" in s)
    with pytest.raises(rotation.RotationError, match="no stage for rotation"):
        invoke(rotation, secrets, arn, str(uuid.uuid4()), "createSecret", {})
    invoke(rotation, secrets, arn, current, "setSecret", {})  # already AWSCURRENT: nothing to do


# -- Secrets Manager that does not answer ------------------------------------------------------------
#: botocore standard retry mode: the delay before retry n is random, at most 2^(n-1) s (botocore/retries/standard.py,
#: ExponentialBackoff), so under 1 s before the one retry.
STANDARD_FIRST_BACKOFF_S = 1.0


def test_its_secrets_manager_calls_give_up_well_within_the_function_s_timeout(
        rotation: types.ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """With botocore's defaults (60 s to connect, 60 s to read, 5 legacy attempts) one hung call outlasted the
    function's 60 s, and the step ended as a bare "Task timed out". Bound: a step that waited out one broker call
    and then meets a Secrets Manager that does not answer still ends with that call's error, in half its time."""
    configs: dict[str, Any] = {}

    def client(service: str, config: Any = None, **_: Any) -> Any:
        configs[service] = config
        raise RuntimeError("no AWS here")

    monkeypatch.setattr(boto3, "client", client)
    event = {"SecretId": "arn:aws:secretsmanager:eu-west-1:1:secret:x", "ClientRequestToken": "t", "Step": "setSecret"}
    with pytest.raises(RuntimeError, match="no AWS here"):
        rotation.handler(event, None, environ={})
    config = configs["secretsmanager"]
    assert config is not None, "the Secrets Manager client runs on botocore's 60 s defaults"
    attempts = config.retries["total_max_attempts"]
    assert config.retries["mode"] == "standard"
    one_call = attempts * (config.connect_timeout + config.read_timeout) + (attempts - 1) * STANDARD_FIRST_BACKOFF_S
    assert one_call + rotation.HTTP_TIMEOUT_SECONDS <= TIMEOUT_SECONDS / 2, (
        f"a Secrets Manager call may take {one_call} s after a broker call of {rotation.HTTP_TIMEOUT_SECONDS} s; "
        f"the function has {TIMEOUT_SECONDS} s")


def test_a_secrets_manager_that_does_not_answer_fails_the_step_with_its_error_in_time(
        rotation: types.ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real client of the shipped code against an endpoint that accepts and stays silent: the step fails with
    Secrets Manager's read timeout named, within the bound above, not at Lambda's timeout."""
    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    silent = Listener(silent=True)
    # botocore's per-service endpoint variable; plain http: the read timeout, not a TLS handshake, is what ends it
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", f"http://127.0.0.1:{silent.port}")
    outcome: list[BaseException] = []

    def step() -> None:
        try:
            rotation.handler({"SecretId": "arn:aws:secretsmanager:eu-west-1:1:secret:x", "ClientRequestToken": "t",
                              "Step": "createSecret"}, None, environ={})
        except BaseException as error:  # noqa: BLE001 - handed to the test thread
            outcome.append(error)

    started = time.monotonic()
    worker = threading.Thread(target=step, daemon=True)
    worker.start()
    worker.join(timeout=TIMEOUT_SECONDS / 2)
    elapsed = time.monotonic() - started
    silent.close()
    assert not worker.is_alive(), f"the step still waits for Secrets Manager after {elapsed:.0f} s"
    assert len(outcome) == 1 and isinstance(outcome[0], rotation.RotationError), outcome
    message = str(outcome[0])
    assert message.startswith("createSecret: Secrets Manager did not answer") and "Read timeout" in message
    assert "secretsmanager endpoint or the NAT gateway" in message
    assert len(silent.held) == rotation.AWS_MAX_ATTEMPTS  # one retry, then the error


# -- on a real RabbitMQ ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def broker() -> Iterator[LocalBroker]:
    with LocalBroker() as started:
        yield started


@pytest.fixture
def admin(broker: LocalBroker) -> Iterator[tuple[str, str]]:
    """A fresh administrator on the broker (the Amazon MQ admin's stand-in): (name, password)."""
    name, password = f"platform-admin-{uuid.uuid4().hex[:6]}", "Initial-Password-0"
    broker.management_api("PUT", f"/api/users/{name}", {"password": password, "tags": "administrator"})
    yield name, password
    broker.management_api("DELETE", f"/api/users/{name}")


def local_environ(broker: LocalBroker) -> dict[str, str]:
    return {"MANAGEMENT_ENDPOINT": f"http://127.0.0.1:{broker.management_port}", "ROTATION_TEST_ONLY_ALLOW_HTTP": "1"}


def accepted(broker: LocalBroker, username: str, password: str) -> bool:
    """Whether the broker's management API authenticates the user with this password."""
    import base64
    import urllib.request

    request = urllib.request.Request(f"http://127.0.0.1:{broker.management_port}/api/whoami", headers={
        "Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()})
    try:
        with urllib.request.urlopen(request, timeout=10):
            return True
    except urllib.error.HTTPError as error:
        assert error.code == 401
        return False


def rotate(rotation: types.ModuleType, client: Any, arn: str, environ: dict[str, str]) -> str:
    token = start_rotation(arn)
    for step in STEPS:
        invoke(rotation, client, arn, token, step, environ)
    return token


@dataclass(frozen=True)
class Rotating:
    """A fresh admin on the local broker, its secret as the broker component leaves it, and the function's
    environment that reaches this broker."""

    rotation: types.ModuleType
    client: Any
    broker: LocalBroker
    name: str
    old: str
    arn: str
    environ: dict[str, str]

    def run(self, token: str, *steps: str, environ: dict[str, str] | None = None) -> None:
        """Invoke the function for each step in turn (``environ``: another one than the broker's)."""
        for step in steps:
            invoke(self.rotation, self.client, self.arn, token, step, self.environ if environ is None else environ)

    def rotate(self) -> str:
        return rotate(self.rotation, self.client, self.arn, self.environ)

    def password(self, stage: str = "AWSCURRENT") -> str:
        return value(self.client, self.arn, stage)["password"]

    def pending(self, token: str) -> str:
        """The password the version ``token`` holds (before it is AWSCURRENT)."""
        return str(json.loads(self.client.get_secret_value(SecretId=self.arn, VersionId=token)["SecretString"])
                   ["password"])

    def accepts(self, password: str) -> bool:
        return accepted(self.broker, self.name, password)


@pytest.fixture
def rotating(rotation: types.ModuleType, secrets: Any, broker: LocalBroker, admin: tuple[str, str]) -> Rotating:
    name, old = admin
    return Rotating(rotation, secrets, broker, name, old, new_secret(secrets, name, old), local_environ(broker))


@pytest.mark.broker
def test_a_rotation_changes_the_admins_password_on_the_broker(rotating: Rotating) -> None:
    r = rotating
    before = next(v for v, s in stages(r.client, r.arn).items() if "AWSCURRENT" in s)
    token = r.rotate()
    new = r.password()
    assert new != r.old and value(r.client, r.arn, "AWSCURRENT")["username"] == r.name
    assert r.accepts(new) and not r.accepts(r.old)
    assert "AWSCURRENT" in stages(r.client, r.arn)[token]
    assert stages(r.client, r.arn)[before] == sorted(["AWSPREVIOUS", INITIAL_STAGE])
    assert r.password("AWSPREVIOUS") == r.old
    user = r.broker.management_api("GET", f"/api/users/{r.name}")
    assert r.rotation.user_tags(user) == ["administrator"]


@pytest.mark.broker
def test_every_step_can_run_again(rotating: Rotating) -> None:
    r = rotating
    token = start_rotation(r.arn)
    for step in STEPS:  # Secrets Manager retries a step it saw fail even when the step had done its work
        r.run(token, step, step)
    new = r.password()
    assert new != r.old and r.accepts(new) and not r.accepts(r.old)
    assert r.password("AWSPREVIOUS") == r.old
    r.run(token, *STEPS)  # a late retry of the finished rotation changes nothing
    assert r.password() == new and r.accepts(new)


@pytest.mark.broker
def test_a_retried_rotation_whose_set_step_already_ran_finishes(rotating: Rotating) -> None:
    """setSecret changed the broker, then the invocation died: the retry from createSecret completes it."""
    r = rotating
    token = start_rotation(r.arn)
    r.run(token, "createSecret", "setSecret")
    pending = r.pending(token)
    assert r.accepts(pending) and r.password() == r.old
    r.run(token, *STEPS)
    assert r.password() == pending


@pytest.mark.broker
def test_a_failing_set_step_leaves_the_current_version_and_the_broker_alone(rotating: Rotating) -> None:
    r = rotating
    # Someone changed the password on the broker without the secret: neither stored password works.
    r.broker.management_api("PUT", f"/api/users/{r.name}", {"password": "Changed-Out-Of-Band-1",
                                                            "tags": "administrator"})
    token = start_rotation(r.arn)
    r.run(token, "createSecret")
    with pytest.raises(r.rotation.RotationError, match="accepts neither the current nor the previous"):
        r.run(token, "setSecret")
    assert r.password() == r.old
    assert "AWSCURRENT" not in stages(r.client, r.arn)[token]
    assert r.accepts("Changed-Out-Of-Band-1")
    with pytest.raises(r.rotation.RotationError, match="refuses the pending password"):
        r.run(token, "testSecret")


@pytest.mark.broker
def test_an_unreachable_broker_fails_the_set_step_and_changes_nothing(rotating: Rotating) -> None:
    from shared.rehearse.broker import free_port

    r = rotating
    token = start_rotation(r.arn)
    unreachable = {"MANAGEMENT_ENDPOINT": f"http://127.0.0.1:{free_port()}", "ROTATION_TEST_ONLY_ALLOW_HTTP": "1"}
    r.run(token, "createSecret", environ=unreachable)
    with pytest.raises(urllib.error.URLError):
        r.run(token, "setSecret", environ=unreachable)
    assert r.password() == r.old and r.accepts(r.old)


@pytest.mark.broker
def test_the_previous_password_still_sets_the_new_one(rotating: Rotating) -> None:
    """The broker holds the AWSPREVIOUS password (e.g. restored from before the last rotation)."""
    r = rotating
    r.rotate()
    r.broker.management_api("PUT", f"/api/users/{r.name}", {"password": r.old, "tags": "administrator"})
    r.rotate()
    newest = r.password()
    assert r.accepts(newest) and not r.accepts(r.old)


@pytest.mark.broker
def test_a_pending_user_without_the_administrator_tag_fails_the_test_step(rotating: Rotating) -> None:
    r = rotating
    token = start_rotation(r.arn)
    r.run(token, *STEPS[:2])
    r.broker.management_api("PUT", f"/api/users/{r.name}", {"password": r.pending(token), "tags": "management"})
    with pytest.raises(r.rotation.RotationError, match="not as the administrator"):
        r.run(token, "testSecret")
    assert r.password() == r.old


@pytest.mark.broker
def test_the_configuration_test_at_creation_passes_and_changes_nothing(
        rotation: types.ModuleType, broker: LocalBroker, admin: tuple[str, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The component creates the schedule with rotate_immediately off: Secrets Manager then only runs the
    testSecret step on a pending copy of the current version (moto's RotateSecret does the same)."""
    import io
    import zipfile

    from moto import mock_aws

    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    name, old = admin
    with mock_aws(config={"lambda": {"use_docker": False}}):  # moto only records the invocation
        role = boto3.client("iam", region_name=REGION).create_role(
            RoleName="rotation", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as zipped:
            zipped.writestr(f"{HANDLER_MODULE}.py", rotation_source())
        function = boto3.client("lambda", region_name=REGION).create_function(
            FunctionName="rotation", Runtime="python3.13", Role=role, Handler=f"{HANDLER_MODULE}.handler",
            Code={"ZipFile": archive.getvalue()})["FunctionArn"]
        client = boto3.client("secretsmanager", region_name=REGION)
        arn = new_secret(client, name, old)
        client.rotate_secret(SecretId=arn, RotationLambdaARN=function, RotationRules={"AutomaticallyAfterDays": 90},
                             RotateImmediately=False)
        (token,) = [v for v, s in stages(client, arn).items() if s == ["AWSPENDING"]]
        invoke(rotation, client, arn, token, "testSecret", local_environ(broker))
        assert value(client, arn, "AWSCURRENT")["password"] == old and accepted(broker, name, old)
