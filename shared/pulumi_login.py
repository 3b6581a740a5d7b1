"""Pulumi Cloud login of a GitHub Actions job by OIDC token exchange, instead of a stored access token.

A job that runs ``pulumi`` against Pulumi Cloud needs an access token. A stored one (the secrets
``PULUMI_ACCESS_TOKEN`` and ``PULUMI_PREVIEW_ACCESS_TOKEN``) lives until someone revokes it, and the previews' is a
repository secret, which a workflow of any branch can read. With the variable this module reads set, the job asks
GitHub for its OIDC token (audience ``urn:pulumi:org:<pulumi_org>``) and ``pulumi login --oidc-token`` exchanges it
for a Pulumi token that expires with the job (Pulumi CLI 3.209 or later: pulumi/pulumi#20974; Pulumi Cloud docs,
"OIDC issuers", GitHub). Pulumi Cloud grants it only where an authorization policy of the org's GitHub issuer allows
the token's claims: ``sub`` ``repo:<owner>/<repo>:environment:<env>`` for a deploy job (its GitHub environment),
``repo:<owner>/<repo>:pull_request`` for a pull request's preview.

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
    value = value.strip()
    if not value:
        return None
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


def login(env_name: str, minutes: int, variable: str, environ: Mapping[str, str], out: TextIO, *,
          fetch: Fetch = _fetch, run: Run = _run) -> int:
    """Log the job's ``pulumi`` in to the env's Pulumi Cloud backend by OIDC when ``variable`` is set (0), or say why
    nothing was done (0); PlatformError when the exchange fails, before any ``pulumi`` step of the job runs."""
    from shared.envs import load_env
    from shared.orchestrate.locks import is_cloud_url

    env = load_env(env_name)
    scope = parse_scope(environ.get(variable, ""), variable)
    backend = environ.get("PULUMI_BACKEND_URL") or env.state.backend_url or ""
    if not is_cloud_url(backend):
        if scope is not None:
            out.write(f"{variable} is set, but {env_name}'s backend {backend or '(none)'} is not Pulumi Cloud: "
                      "nothing to log in to\n")
        return 0
    if scope is None:
        out.write(f"{variable} is not set: the job logs in to {backend} with the stored access token\n")
        return 0
    if minutes < 1:
        raise ConfigError("command line", "--minutes", f"is {minutes}: the job's timeout in minutes, at least 1")
    audience = AUDIENCE_PREFIX + env.pulumi_org
    token = github_oidc_token(audience, environ, fetch)
    child = {key: value for key, value in environ.items() if key != "PULUMI_ACCESS_TOKEN"}
    folder = environ.get("RUNNER_TEMP") or None
    with tempfile.TemporaryDirectory(dir=folder, prefix="pulumi-oidc-") as temporary:
        token_file = Path(temporary) / "token"
        descriptor = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(token)
        code, output = run(login_argv(backend, env.pulumi_org, scope, token_file, minutes + MARGIN_MINUTES), child)
    if code != 0:
        claims = "the job's `sub` claim (repo:<owner>/<repo>:environment:<env> for a deploy job, " \
                 "repo:<owner>/<repo>:pull_request for a pull request's preview)"
        raise PlatformError(
            f"pulumi login by OIDC to {backend} as {scope.describe()} of org {env.pulumi_org} failed (exit {code}): "
            f"{output or 'no output'}. Pulumi Cloud exchanges the token only where the org registers the issuer "
            f"https://token.actions.githubusercontent.com and a policy of it allows {scope.describe()} for "
            f"{claims}, with a maximum expiration of at least {minutes + MARGIN_MINUTES} minutes; or unset {variable} "
            "to log in with the stored access token (README, CI/CD)")
    out.write(f"logged in to {backend} as {scope.describe()} of org {env.pulumi_org}, by the job's OIDC token "
              f"(expires in {minutes + MARGIN_MINUTES} minutes)\n")
    return 0
