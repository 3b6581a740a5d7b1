"""Pulumi Cloud login of a GitHub Actions job by OIDC token exchange, instead of a stored access token.

A job that runs ``pulumi`` against Pulumi Cloud needs an access token. A stored one (the secrets
``PULUMI_ACCESS_TOKEN`` and ``PULUMI_PREVIEW_ACCESS_TOKEN``) lives until someone revokes it, and the previews' is a
repository secret, which a workflow of any branch can read. With the variable this module reads set, the job asks
GitHub for its OIDC token (audience ``urn:pulumi:org:<pulumi_org>``) and ``pulumi login --oidc-token`` exchanges it
for a Pulumi token that expires with the job (Pulumi CLI 3.209 or later: pulumi/pulumi#20974; Pulumi Cloud docs,
"OIDC issuers", GitHub). Pulumi Cloud grants it only where an authorization policy of the org's GitHub issuer allows
the token's claims: ``sub`` ``<repo-subject>:environment:<env>`` for a deploy job (its GitHub environment),
``<repo-subject>:pull_request`` for a pull request's preview (``<repo-subject>``:
``repo:<owner>@<owner_id>/<repo>@<repo_id>`` on GitHub's immutable subject claims, the default of repositories created
from 2026-07-15, else ``repo:<owner>/<repo>``).

The variable names what to ask for: ``organization`` (an organization token), ``team:<name>`` (a team token:
Enterprise and Business Critical editions) or ``user:<login>`` (a personal token). Unset, the job logs in with the
stored token as before; on a self-managed backend (``s3://``) there is nothing to log in to.

``python -m shared.workflows pulumi-login ENV --minutes N [--variable NAME]`` (``nox -s workflows -- ...``) runs it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

from shared.errors import ConfigError, PlatformError

#: the deploy jobs' variable (a GitHub environment's, so each env may ask for its own token)
DEPLOY_VARIABLE = "PULUMI_OIDC_SCOPE"
#: the pull-request previews' variable (a repository variable: the preview job is in no GitHub environment)
PREVIEW_VARIABLE = "PULUMI_OIDC_PREVIEW_SCOPE"

#: Pulumi Cloud's token exchange takes the org as the OIDC token's audience (REST API, "OAuth Token Exchange")
AUDIENCE_PREFIX = "urn:pulumi:org:"
#: minutes the exchanged token outlives the job's timeout, so a step that starts just before the end still has it
MARGIN_MINUTES = 10

_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}"

#: GET an URL with headers, returning the body (the seam the tests replace)
Fetch = Callable[[str, Mapping[str, str]], bytes]
#: run an argv with an environment, returning (exit code, combined output)
Run = Callable[[Sequence[str], Mapping[str, str]], tuple[int, str]]


@dataclass(frozen=True)
class TokenScope:
    """What the job asks Pulumi Cloud for: an organization, team or personal token."""

    kind: str  # "organization", "team" or "user"
    name: str = ""

    def login_flags(self) -> list[str]:
        """``pulumi login``'s flag for the token type: none for an organization token."""
        if self.kind == "team":
            return ["--oidc-team", self.name]
        if self.kind == "user":
            return ["--oidc-user", self.name]
        return []

    def describe(self) -> str:
        return "an organization token" if self.kind == "organization" else f"a {self.kind} token of {self.name}"


def parse_scope(value: str, variable: str) -> TokenScope | None:
    """The scope a variable's value names, None when it is empty; ConfigError naming the variable otherwise."""
    if not value:
        return None
    if not value.strip():
        # GitHub's expressions take " " as set, so the job's stored token was withheld: refuse, do not log in with it
        raise ConfigError("GitHub variables", variable,
                          f"is {value!r}, only white space: give `organization`, `team:<team name>` or "
                          "`user:<Pulumi login>`, or delete the variable to log in with the stored access token")
    value = value.strip()
    if value == "organization":
        return TokenScope("organization")
    match = re.fullmatch(rf"(team|user):({_NAME})", value)
    if match is None:
        raise ConfigError("GitHub variables", variable,
                          f"is {value!r}: give `organization`, `team:<team name>` or `user:<Pulumi login>` (the "
                          "Pulumi token the job's OIDC token is exchanged for), or leave it unset to log in with "
                          "the stored access token")
    return TokenScope(match.group(1), match.group(2))


def github_oidc_token(audience: str, environ: Mapping[str, str], fetch: Fetch) -> str:
    """The job's OIDC token for ``audience``, from the runner's token service (GitHub docs, "About security hardening
    with OpenID Connect": ACTIONS_ID_TOKEN_REQUEST_URL and _TOKEN, set only with ``permissions: id-token: write``)."""
    url, bearer = environ.get("ACTIONS_ID_TOKEN_REQUEST_URL"), environ.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
    if not url or not bearer:
        raise ConfigError("workflow", "permissions.id-token",
                          "the job has no OIDC token to exchange (ACTIONS_ID_TOKEN_REQUEST_URL is not set): give "
                          "it `permissions: id-token: write`; a fork's pull request never gets one")
    separator = "&" if "?" in url else "?"
    try:
        body = fetch(f"{url}{separator}audience={urllib.parse.quote(audience, safe='')}",
                     {"Authorization": f"bearer {bearer}", "Accept": "application/json"})
        token = json.loads(body)["value"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise PlatformError(f"GitHub's OIDC token service did not give the job a token for {audience}: "
                            f"{error}") from None
    if not isinstance(token, str) or not token:
        raise PlatformError(f"GitHub's OIDC token service answered without a token for {audience}")
    return token


def login_argv(backend_url: str, org: str, scope: TokenScope, token_file: Path, minutes: int) -> list[str]:
    """``pulumi login`` exchanging the token in ``token_file`` (a ``file://`` path keeps it out of the process
    list) for a Pulumi token of ``scope`` that expires ``minutes`` from now."""
    return ["pulumi", "login", "--oidc-token", f"file://{token_file}", "--oidc-org", org, *scope.login_flags(),
            "--oidc-expiration", f"{minutes}m", backend_url]


def _fetch(url: str, headers: Mapping[str, str]) -> bytes:
    request = urllib.request.Request(url, headers=dict(headers))  # the runner's https token service
    with urllib.request.urlopen(request, timeout=30) as response:
        body: bytes = response.read()
    return body


def _run(argv: Sequence[str], environ: Mapping[str, str]) -> tuple[int, str]:
    try:
        done = subprocess.run(list(argv), env=dict(environ), capture_output=True, text=True, timeout=120,
                              check=False)
    except FileNotFoundError:
        return 127, "the pulumi CLI is not on PATH (the job's `Pulumi CLI` step installs it)"
    except subprocess.TimeoutExpired:
        return 124, "pulumi login did not finish in 120 s"
    return done.returncode, (done.stdout + done.stderr).strip()


def _now() -> datetime:
    return datetime.now(UTC)


def login(env_name: str, minutes: int, variable: str, environ: Mapping[str, str], out: TextIO, *,
          fetch: Fetch = _fetch, run: Run = _run, clock: Callable[[], datetime] = _now) -> int:
    """Log the job's ``pulumi`` in to the env's Pulumi Cloud backend by OIDC when ``variable`` is set (0), or say why
    nothing was done (0); PlatformError when the exchange fails, or the token the CLI stored would expire before the
    job's ``minutes`` are up (Pulumi Cloud may grant less than asked: the issuer's maximum expiration), before any
    ``pulumi`` step of the job runs."""
    from shared.envs import load_env
    from shared.orchestrate.automation import check_org, resolve_backend

    if minutes < 1:  # the workflow's argument, wrong whatever the backend (not only once the variable is set)
        raise ConfigError("command line", "--minutes", f"is {minutes}: the job's timeout in minutes, at least 1")
    env = load_env(env_name)
    scope = parse_scope(environ.get(variable, ""), variable)
    resolved = resolve_backend(env, environ)
    backend = resolved.url
    if not resolved.is_cloud:
        if scope is not None:
            out.write(f"{variable} is set, but {env_name}'s backend {backend} is not Pulumi Cloud: nothing to log in "
                      "to\n")
        return 0
    if scope is None:
        out.write(f"{variable} is not set: the job logs in to {backend} with the stored access token\n")
        return 0
    # the token's audience is the env's org: the default org (self-managed backends') would be asked of Pulumi Cloud,
    # whose refusal would read as a policy problem; `up` refuses it the same way, after this step
    check_org(env, resolved)
    # the CLI keys the account by the URL as given, and every later call looks it up without a trailing slash
    # (pkg/backend/httpstate/backend.go ValueOrDefaultURL)
    backend = backend.rstrip("/")
    asked = minutes + MARGIN_MINUTES  # the token's lifetime: the job's timeout and a margin
    audience = AUDIENCE_PREFIX + env.pulumi_org
    token = github_oidc_token(audience, environ, fetch)
    if environ.get("GITHUB_ACTIONS") == "true":
        out.write(f"::add-mask::{token}\n")  # the runner hides it from every later line of the log
    child = {key: value for key, value in environ.items() if key != "PULUMI_ACCESS_TOKEN"}
    folder = environ.get("RUNNER_TEMP") or None
    with tempfile.TemporaryDirectory(dir=folder, prefix="pulumi-oidc-") as temporary:
        token_file = Path(temporary) / "token"
        descriptor = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(token)
        code, output = run(login_argv(backend, env.pulumi_org, scope, token_file, asked), child)
    if code != 0:
        claims = "the job's `sub` claim (<repo-subject>:environment:<env> for a deploy job, " \
                 "<repo-subject>:pull_request for a pull request's preview; <repo-subject> is " \
                 "repo:<owner>@<owner_id>/<repo>@<repo_id> on GitHub's immutable subject claims, else " \
                 "repo:<owner>/<repo>)"
        raise PlatformError(
            f"pulumi login by OIDC to {backend} as {scope.describe()} of org {env.pulumi_org} failed (exit {code}): "
            f"{output or 'no output'}. Pulumi Cloud exchanges the token only where the org registers the issuer "
            f"https://token.actions.githubusercontent.com and a policy of it allows {scope.describe()} for "
            f"{claims}, with a maximum expiration of at least {asked} minutes; or unset {variable} "
            "to log in with the stored access token (README, CI/CD)")
    expires = granted_until(backend, environ)
    now = clock()
    if expires is not None and expires < now + timedelta(minutes=minutes):
        granted = max(0, int((expires - now).total_seconds() // 60))
        raise PlatformError(
            f"Pulumi Cloud granted the job's token for {granted} minutes (until {expires:%Y-%m-%d %H:%M} UTC), less "
            f"than the job's {minutes}-minute timeout (asked for {asked}): a run still going then "
            "would stop part-way, its later layers and stack reads refused. Raise the maximum expiration of the org's "
            "OIDC issuer https://token.actions.githubusercontent.com to at least "
            f"{asked} minutes (README, CI/CD), or unset {variable}")
    until = f"until {expires:%Y-%m-%d %H:%M} UTC" if expires is not None else "no expiry recorded by the CLI"
    out.write(f"logged in to {backend} as {scope.describe()} of org {env.pulumi_org}, by the job's OIDC token "
              f"({until})\n")
    return 0


def credentials_file(environ: Mapping[str, str]) -> Path:
    """Where the CLI keeps its logins: ``$PULUMI_CREDENTIALS_PATH`` or ``$PULUMI_HOME`` (default ``~/.pulumi``),
    ``credentials.json`` (sdk/go/common/workspace/creds.go, getCredsFilePath)."""
    folder = environ.get("PULUMI_CREDENTIALS_PATH") or environ.get("PULUMI_HOME")
    if not folder:
        folder = str(Path(environ.get("HOME") or Path.home()) / ".pulumi")
    return Path(folder) / "credentials.json"


def granted_until(backend: str, environ: Mapping[str, str]) -> datetime | None:
    """When the token the CLI stored for ``backend`` expires (``accounts.<url>.tokenInformation.expiresAt``, set from
    the exchange's ``expires_in``: pkg/backend/httpstate/backend.go LoginWithOIDCToken); None when the CLI recorded
    none. PlatformError when it stored no account for ``backend``: every later ``pulumi`` call would find no login."""
    path = credentials_file(environ)
    try:
        accounts = json.loads(path.read_text(encoding="utf-8")).get("accounts") or {}
    except (OSError, ValueError, AttributeError) as error:
        raise PlatformError(f"pulumi login reported success, but its credentials file {path} cannot be read: "
                            f"{error}") from None
    account = accounts.get(backend) if isinstance(accounts, dict) else None
    if not isinstance(account, dict) or not account.get("accessToken"):
        raise PlatformError(f"pulumi login reported success, but {path} holds no login for {backend}, where every "
                            "later pulumi call of the job looks for it")
    expires = (account.get("tokenInformation") or {}).get("expiresAt")
    if not isinstance(expires, str):
        return None
    try:
        moment = datetime.fromisoformat(expires)
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
