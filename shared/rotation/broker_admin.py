"""Secrets Manager rotation of the Amazon MQ for RabbitMQ administrator (a Lambda function's source).

Amazon MQ takes the RabbitMQ administrator only when it creates the broker and never changes its password
afterwards, so Secrets Manager cannot rotate it alone: this function does it through the broker's
RabbitMQ management HTTP API, in the four steps of a Secrets Manager rotation function (Secrets Manager
user guide, "Rotation by Lambda function"), each safe to run again (Secrets Manager retries a failed step):

- ``createSecret``: a new password meeting Amazon MQ's rule, stored as the ``AWSPENDING`` version (the
  version the event's token names), unless that version already holds one;
- ``setSecret``: ``PUT /api/users/<admin>`` with the new password and the user's own tags
  (``administrator`` kept), authenticated with the current password (or the previous one, if an
  interrupted rotation got that far); nothing to do when the pending password already works;
- ``testSecret``: ``GET /api/whoami`` with the pending password must answer as the administrator;
- ``finishSecret``: ``AWSCURRENT`` moves to the pending version (Secrets Manager moves ``AWSPREVIOUS``
  to the old one).

Standard library and boto3 only: the file ships as the function's code as is (no packaging step), and the
broker component imports :func:`check_admin_password` from it, so the broker's first password and every
rotated one obey the same rule. Configuration comes from the function's environment (set by the broker
component): ``MANAGEMENT_ENDPOINT`` (the broker's console URL, ``https://...``) and, optionally,
``MANAGEMENT_CA_FILE`` (a PEM bundle; unset: the runtime's trust store, which verifies Amazon MQ's public
certificate). ``http://`` is refused unless ``ROTATION_TEST_ONLY_ALLOW_HTTP=1`` is set and the host is a
loopback address: that is for the tests against a local broker only, and the component never sets it.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

ENDPOINT_VAR = "MANAGEMENT_ENDPOINT"
CA_FILE_VAR = "MANAGEMENT_CA_FILE"
ALLOW_HTTP_VAR = "ROTATION_TEST_ONLY_ALLOW_HTTP"
ADMIN_TAG = "administrator"
PASSWORD_LENGTH = 32
#: Amazon MQ's password rule (botocore mq model, ``User.Password``): 12+ characters, 4+ distinct ones,
#: none of these.
FORBIDDEN_CHARACTERS = ",:="
HTTP_TIMEOUT_SECONDS = 10
#: The Secrets Manager client's bounds. botocore's defaults (60 s to connect, 60 s to read, legacy retries: 5
#: attempts) outlast the function's 60 s (shared/components/broker_rotation.py, TIMEOUT_SECONDS), so a blocked route
#: to Secrets Manager -- the most common cause of a rotation timeout (Secrets Manager user guide, "Troubleshoot
#: rotation") -- would end as Lambda's bare "Task timed out" with no word of which call hung. Each step is an
#: invocation of its own and Secrets Manager retries the whole rotation when a step fails (user guide, "Rotation
#: by Lambda function"), so a step gives up quickly, with the call's error: one call takes at most
#: AWS_MAX_ATTEMPTS * (connect + read) plus the standard mode's jittered backoff (under 1 s before the one retry),
#: 17 s, which leaves a step that waited out one broker call (HTTP_TIMEOUT_SECONDS) more than half its time.
#: Secrets Manager answers these calls in well under a second when it is reachable.
AWS_CONNECT_TIMEOUT_SECONDS = 3
AWS_READ_TIMEOUT_SECONDS = 5
#: every attempt, the first included (botocore ``total_max_attempts``): one retry of a dropped connection or a 5xx
AWS_MAX_ATTEMPTS = 2
_GENERATE_ATTEMPTS = 5
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)


class RotationError(Exception):
    """A step cannot complete; Secrets Manager records the failure and retries the rotation."""


def check_admin_password(password: str) -> str:
    """Amazon MQ's rule for broker passwords (botocore mq model, ``User.Password``): at least 12
    characters, at least 4 distinct ones, none of ``,:=``."""
    if len(password) < 12 or len(set(password)) < 4 or set(password) & set(FORBIDDEN_CHARACTERS):
        raise ValueError("an Amazon MQ password needs 12+ characters, 4+ distinct ones and none of ',:='")
    return password


# -- the broker's management API ----------------------------------------------------------------------
class ManagementApi:
    """The RabbitMQ management HTTP API at ``endpoint`` (scheme and host checked by :meth:`from_environment`)."""

    def __init__(self, endpoint: str, context: ssl.SSLContext | None) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.context = context

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> ManagementApi:
        env = dict(os.environ if environ is None else environ)
        endpoint = env.get(ENDPOINT_VAR, "").strip()
        parts = urllib.parse.urlsplit(endpoint)
        if not parts.hostname:
            raise RotationError(f"{ENDPOINT_VAR} must be the broker's management URL (https://<host>), "
                                f"got {endpoint!r}")
        if parts.scheme == "http":
            if env.get(ALLOW_HTTP_VAR) != "1" or parts.hostname not in _LOOPBACK_HOSTS:
                raise RotationError(f"{ENDPOINT_VAR} {endpoint} is plain http: the administrator's password "
                                    "would cross the network in clear; use the broker's https URL")
            return cls(endpoint, None)
        if parts.scheme != "https":
            raise RotationError(f"{ENDPOINT_VAR} {endpoint} is not an https URL")
        ca_file = env.get(CA_FILE_VAR) or None
        return cls(endpoint, ssl.create_default_context(cafile=ca_file))

    def _call(self, method: str, path: str, credentials: dict[str, str], body: Any = None) -> tuple[int, Any]:
        token = base64.b64encode(f"{credentials['username']}:{credentials['password']}".encode()).decode()
        request = urllib.request.Request(
            self.endpoint + path, method=method, data=json.dumps(body).encode() if body is not None else None,
            headers={"Content-Type": "application/json"})
        # Unredirected: urllib's redirect handler copies every other header to wherever a 3xx points (any host, or
        # plain http), and this one carries the administrator's password.
        request.add_unredirected_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_SECONDS, context=self.context) as response:
                payload = response.read()
                return response.status, json.loads(payload) if payload else None
        except urllib.error.HTTPError as error:
            return error.code, None

    def whoami(self, credentials: dict[str, str]) -> dict[str, Any] | None:
        """The user the credentials authenticate as; None when the broker refuses them (401). Any other
        failure (network, TLS, 5xx) raises: it says nothing about the password."""
        status, body = self._call("GET", "/api/whoami", credentials)
        if status == 401:
            return None
        if status != 200 or not isinstance(body, dict):
            raise RotationError(f"GET /api/whoami answered {status}")
        return body

    def set_password(self, acting: dict[str, str], username: str, password: str) -> None:
        """Give ``username`` a new password, keeping its tags (``administrator`` included)."""
        path = "/api/users/" + urllib.parse.quote(username, safe="")
        status, user = self._call("GET", path, acting)
        if status != 200 or not isinstance(user, dict):
            raise RotationError(f"GET /api/users/{username} answered {status}")
        tags = sorted(set(user_tags(user)) | {ADMIN_TAG})
        # PUT replaces the user: without `tags` it would drop them (RabbitMQ management HTTP API, users).
        status, _ = self._call("PUT", path, acting, {"password": password, "tags": ",".join(tags)})
        if status not in (201, 204):
            raise RotationError(f"PUT /api/users/{username} answered {status}")


def user_tags(user: dict[str, Any]) -> list[str]:
    """A user's tags as the management API reports them: a list (RabbitMQ 3.9+) or a comma-separated string."""
    tags = user.get("tags") or []
    if isinstance(tags, str):
        tags = tags.split(",")
    return [str(tag).strip() for tag in tags if str(tag).strip()]


# -- Secrets Manager ----------------------------------------------------------------------------------
def _credentials(client: Any, arn: str, stage: str, token: str | None = None) -> dict[str, Any]:
    """The secret's JSON at ``stage`` (and version ``token``); it must hold ``username`` and ``password``."""
    request: dict[str, str] = {"SecretId": arn, "VersionStage": stage}
    if token:
        request["VersionId"] = token
    value = json.loads(client.get_secret_value(**request)["SecretString"])
    if not isinstance(value, dict) or not value.get("username") or not value.get("password"):
        raise RotationError(f"the {stage} version of {arn} is not JSON with 'username' and 'password'")
    return value


def _optional_credentials(client: Any, arn: str, stage: str) -> dict[str, Any] | None:
    try:
        return _credentials(client, arn, stage)
    except client.exceptions.ResourceNotFoundException:
        return None


def generate_password(client: Any) -> str:
    """Letters and digits (never one of ``,:=``, nothing to escape in a URL), every class present."""
    for _ in range(_GENERATE_ATTEMPTS):
        password = client.get_random_password(
            PasswordLength=PASSWORD_LENGTH, ExcludePunctuation=True, RequireEachIncludedType=True)["RandomPassword"]
        try:
            return check_admin_password(password)
        except ValueError:
            continue
    raise RotationError(f"no password meeting Amazon MQ's rule in {_GENERATE_ATTEMPTS} attempts")


def step_create(client: Any, arn: str, token: str, api: ManagementApi) -> None:
    current = _credentials(client, arn, "AWSCURRENT")
    try:
        _credentials(client, arn, "AWSPENDING", token)
        logger.info("createSecret: version %s already holds a pending password", token)
        return
    except client.exceptions.ResourceNotFoundException:
        pass
    pending = {**current, "password": generate_password(client)}
    client.put_secret_value(SecretId=arn, ClientRequestToken=token, SecretString=json.dumps(pending, sort_keys=True),
                            VersionStages=["AWSPENDING"])
    logger.info("createSecret: stored a new pending password as version %s", token)


def step_set(client: Any, arn: str, token: str, api: ManagementApi) -> None:
    pending = _credentials(client, arn, "AWSPENDING", token)
    check_admin_password(pending["password"])
    if api.whoami(pending) is not None:
        logger.info("setSecret: the broker already accepts the pending password")
        return
    for stage in ("AWSCURRENT", "AWSPREVIOUS"):
        acting = _optional_credentials(client, arn, stage)
        if acting is None or acting["username"] != pending["username"] or api.whoami(acting) is None:
            continue
        api.set_password(acting, pending["username"], pending["password"])
        logger.info("setSecret: changed the password of %s with the %s one", pending["username"], stage)
        return
    raise RotationError(f"the broker accepts neither the current nor the previous password of "
                        f"{pending['username']}; nothing was changed (README, \"Broker admin rotation\": break-glass)")


def step_test(client: Any, arn: str, token: str, api: ManagementApi) -> None:
    pending = _credentials(client, arn, "AWSPENDING", token)
    user = api.whoami(pending)
    if user is None:
        raise RotationError(f"the broker refuses the pending password of {pending['username']}")
    if user.get("name") != pending["username"] or ADMIN_TAG not in user_tags(user):
        raise RotationError(f"the pending credentials authenticate as {user.get('name')!r} with tags "
                            f"{user_tags(user)}, not as the administrator {pending['username']!r}")
    logger.info("testSecret: the broker accepts the pending password of %s as administrator", pending["username"])


def step_finish(client: Any, arn: str, token: str, api: ManagementApi) -> None:
    versions = client.describe_secret(SecretId=arn)["VersionIdsToStages"]
    current = next((version for version, stages in versions.items() if "AWSCURRENT" in stages), None)
    if current == token:
        logger.info("finishSecret: version %s is already AWSCURRENT", token)
        return
    client.update_secret_version_stage(SecretId=arn, VersionStage="AWSCURRENT", MoveToVersionId=token,
                                       RemoveFromVersionId=current)
    logger.info("finishSecret: version %s is AWSCURRENT (was %s)", token, current)


STEPS = {"createSecret": step_create, "setSecret": step_set, "testSecret": step_test,
         "finishSecret": step_finish}


def handler(event: dict[str, Any], context: Any, *, client: Any = None, environ: dict[str, str] | None = None) -> None:
    """The function's entry point: ``{"SecretId", "ClientRequestToken", "Step"}`` from Secrets Manager."""
    arn, token, step = event["SecretId"], event["ClientRequestToken"], event["Step"]
    if step not in STEPS:
        raise RotationError(f"unknown rotation step {step!r}")
    if client is None:
        client = secrets_manager_client()
    from botocore.exceptions import ConnectionError as AwsConnectionError
    from botocore.exceptions import HTTPClientError

    try:
        _run_step(client, arn, token, step, environ)
    except (AwsConnectionError, HTTPClientError) as error:  # connect or read timeouts, refused connections
        raise RotationError(
            f"{step}: Secrets Manager did not answer ({error}) within {AWS_MAX_ATTEMPTS} attempts of "
            f"{AWS_CONNECT_TIMEOUT_SECONDS} s to connect and {AWS_READ_TIMEOUT_SECONDS} s to read; the function "
            "reaches it from its private subnets through the VPC's secretsmanager endpoint or the NAT gateway "
            "(network layer). Secrets Manager retries the rotation") from error


def secrets_manager_client() -> Any:
    """The function's Secrets Manager client, bounded as :data:`AWS_CONNECT_TIMEOUT_SECONDS` says."""
    import boto3  # the Lambda runtime ships boto3 and botocore; imported here so the broker component need not
    from botocore.config import Config

    return boto3.client("secretsmanager", config=Config(
        connect_timeout=AWS_CONNECT_TIMEOUT_SECONDS, read_timeout=AWS_READ_TIMEOUT_SECONDS,
        retries={"mode": "standard", "total_max_attempts": AWS_MAX_ATTEMPTS}))


def _run_step(client: Any, arn: str, token: str, step: str, environ: dict[str, str] | None) -> None:
    metadata = client.describe_secret(SecretId=arn)
    if not metadata.get("RotationEnabled"):
        raise RotationError(f"rotation is not enabled on {arn}")
    versions = metadata.get("VersionIdsToStages", {})
    if token not in versions:
        raise RotationError(f"version {token} of {arn} has no stage for rotation")
    if "AWSCURRENT" in versions[token]:
        logger.info("%s: version %s is already AWSCURRENT", step, token)
        return
    if "AWSPENDING" not in versions[token]:
        raise RotationError(f"version {token} of {arn} is not AWSPENDING")
    STEPS[step](client, arn, token, ManagementApi.from_environment(environ))
