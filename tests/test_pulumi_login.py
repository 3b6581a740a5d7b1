"""A CI job logs in to Pulumi Cloud by exchanging its GitHub OIDC token (shared.pulumi_login), where a variable names
the Pulumi token to ask for; otherwise it keeps the stored access token."""

from __future__ import annotations

import io
import json
import re
import stat
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared import workflows
from shared.errors import ConfigError, PlatformError
from shared.pulumi_login import (
    DEPLOY_VARIABLE,
    MARGIN_MINUTES,
    PREVIEW_VARIABLE,
    TokenScope,
    login,
    parse_scope,
)

CLOUD = "https://api.pulumi.com"
TOKEN_SERVICE = "https://pipelines.actions.githubusercontent.com/abc/idtoken?api-version=2.0"
JOB = {"ACTIONS_ID_TOKEN_REQUEST_URL": TOKEN_SERVICE, "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "runtime-bearer",
       "PULUMI_BACKEND_URL": CLOUD, "PULUMI_ACCESS_TOKEN": "", "PATH": "/usr/bin"}


def clock() -> datetime:
    return NOW


class GitHub:
    """The runner's OIDC token service: records each request, answers with a JWT-shaped token."""

    def __init__(self, body: bytes = json.dumps({"value": "eyJ.job-token.sig"}).encode()) -> None:
        self.body = body
        self.requests: list[tuple[str, dict[str, str]]] = []

    def __call__(self, url: str, headers: Mapping[str, str]) -> bytes:
        self.requests.append((url, dict(headers)))
        return self.body


NOW = datetime(2026, 12, 6, 4, 0, tzinfo=UTC)


class Cli:
    """`pulumi login`: records argv, environment and the token file's content and mode while it runs, and stores the
    account as the CLI does (``$PULUMI_HOME/credentials.json``, keyed by the URL it was given), with the lifetime
    Pulumi Cloud granted (what was asked for unless ``granted_minutes`` says less)."""

    def __init__(self, code: int = 0, output: str = "Logged in to pulumi.com as acme",
                 granted_minutes: int | None = None, expiry: str | None = "asked") -> None:
        self.code, self.output, self.granted_minutes, self.expiry = code, output, granted_minutes, expiry
        self.calls: list[tuple[list[str], dict[str, str]]] = []
        self.token_file: Path | None = None
        self.seen: tuple[str, int] | None = None

    def __call__(self, argv: Sequence[str], environ: Mapping[str, str]) -> tuple[int, str]:
        self.calls.append((list(argv), dict(environ)))
        path = Path(argv[argv.index("--oidc-token") + 1].removeprefix("file://"))
        self.token_file = path
        self.seen = (path.read_text(encoding="utf-8"), stat.S_IMODE(path.stat().st_mode))
        if self.code == 0 and "PULUMI_HOME" in environ:
            asked = int(argv[argv.index("--oidc-expiration") + 1].removesuffix("m"))
            minutes = asked if self.granted_minutes is None else self.granted_minutes
            information: dict[str, str] = {"name": "oidc", "team": "deployers"}
            if self.expiry == "asked":  # Go's time.Time in JSON: RFC 3339 with nanoseconds
                information["expiresAt"] = (NOW + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.123456789Z")
            account = {"accessToken": "pul-exchanged", "username": "pulumi-team-deployers",
                       "tokenInformation": information}
            (Path(environ["PULUMI_HOME"]) / "credentials.json").write_text(json.dumps(
                {"current": argv[-1], "accessTokens": {argv[-1]: "pul-exchanged"}, "accounts": {argv[-1]: account}}))
        return self.code, self.output


@pytest.fixture(autouse=True)
def pulumi_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The job's `~/.pulumi`, where `pulumi login` stores the account."""
    home = tmp_path / "pulumi-home"
    home.mkdir()
    monkeypatch.setitem(JOB, "PULUMI_HOME", str(home))
    return home


@pytest.fixture
def acme(env_dir: Path) -> Path:
    """dev's stacks live in the Pulumi Cloud org `acme`."""
    path = env_dir / "dev.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "pulumi_org: acme\n", encoding="utf-8")
    return env_dir


@pytest.mark.parametrize("value, scope", [
    ("organization", TokenScope("organization")),
    ("team:platform-previews", TokenScope("team", "platform-previews")),
    ("user:ci-bot", TokenScope("user", "ci-bot")),
    (" team:deployers ", TokenScope("team", "deployers")),
    ("", None),
])
def test_the_variable_names_an_organization_team_or_personal_token(value: str, scope: TokenScope | None) -> None:
    assert parse_scope(value, DEPLOY_VARIABLE) == scope


@pytest.mark.parametrize("value", ["org", "team:", "team:a b", "admin", "user:x:y", "personal:me", " ", "\t"])
def test_a_variable_naming_no_token_type_is_refused_naming_it(value: str) -> None:
    # white space alone is "set" to GitHub's expressions, which then withhold the stored token
    with pytest.raises(ConfigError, match=re.escape(f"{DEPLOY_VARIABLE}: is {value!r}") + ".*give `organization`"):
        parse_scope(value, DEPLOY_VARIABLE)


def test_a_team_token_is_asked_for_with_the_jobs_oidc_token_for_the_env_org(acme: Path, tmp_path: Path) -> None:
    github, cli, out = GitHub(), Cli(), io.StringIO()
    environ = {**JOB, DEPLOY_VARIABLE: "team:deployers", "RUNNER_TEMP": str(tmp_path)}
    assert login("dev", 90, DEPLOY_VARIABLE, environ, out, fetch=github, run=cli, clock=clock) == 0
    # GitHub: the token for Pulumi Cloud's audience, the org the env's stacks are in
    [(url, headers)] = github.requests
    assert url == TOKEN_SERVICE + "&audience=urn%3Apulumi%3Aorg%3Aacme"
    assert headers["Authorization"] == "bearer runtime-bearer"
    # the CLI: the token from a file only the job's user reads (never on the command line), team, expiry past the job
    [(argv, child)] = cli.calls
    assert cli.token_file is not None
    assert argv == ["pulumi", "login", "--oidc-token", f"file://{cli.token_file}", "--oidc-org", "acme",
                    "--oidc-team", "deployers", "--oidc-expiration", f"{90 + MARGIN_MINUTES}m", CLOUD]
    assert cli.seen == ("eyJ.job-token.sig", 0o600)
    assert cli.token_file.is_relative_to(tmp_path) and not cli.token_file.exists()  # removed once exchanged
    assert "PULUMI_ACCESS_TOKEN" not in child  # an empty stored token never competes with the exchange
    assert "eyJ" not in out.getvalue() and "as a team token of deployers of org acme" in out.getvalue()


def test_an_organization_token_takes_no_scope_flag_and_a_personal_one_names_the_user(acme: Path) -> None:
    for value, flags in [("organization", []), ("user:ci-bot", ["--oidc-user", "ci-bot"])]:
        cli = Cli()
        login("dev", 60, PREVIEW_VARIABLE, {**JOB, PREVIEW_VARIABLE: value}, io.StringIO(), fetch=GitHub(), run=cli,
              clock=clock)
        argv = cli.calls[0][0]
        assert argv[argv.index("acme") + 1:-3] == flags


def test_without_the_variable_the_job_keeps_its_stored_token_and_asks_nothing(acme: Path) -> None:
    github, cli, out = GitHub(), Cli(), io.StringIO()
    assert login("dev", 90, DEPLOY_VARIABLE, {**JOB, DEPLOY_VARIABLE: ""}, out, fetch=github, run=cli, clock=clock) == 0
    assert not github.requests and not cli.calls
    assert "PULUMI_OIDC_SCOPE is not set: the job logs in to https://api.pulumi.com with the stored" in out.getvalue()


@pytest.mark.parametrize("environ", [{DEPLOY_VARIABLE: ""}, {"PULUMI_BACKEND_URL": "s3://state-bucket/platform"}],
                         ids=["variable-unset", "self-managed"])
def test_a_job_timeout_under_a_minute_is_refused_whatever_the_backend(acme: Path, environ: dict[str, str]) -> None:
    """The workflow's argument is wrong on the day it is written, not only once the variable is set."""
    with pytest.raises(ConfigError, match="--minutes: is 0: the job's timeout in minutes, at least 1"):
        login("dev", 0, DEPLOY_VARIABLE, {**JOB, **environ}, io.StringIO(), fetch=GitHub(), run=Cli(), clock=clock)


def test_a_self_managed_backend_has_nothing_to_log_in_to(acme: Path) -> None:
    github, cli, out = GitHub(), Cli(), io.StringIO()
    environ = {**JOB, "PULUMI_BACKEND_URL": "s3://state-bucket/platform", DEPLOY_VARIABLE: "organization"}
    assert login("dev", 90, DEPLOY_VARIABLE, environ, out, fetch=github, run=cli, clock=clock) == 0
    assert not github.requests and not cli.calls
    assert "is not Pulumi Cloud: nothing to log in to" in out.getvalue()


def test_a_job_without_id_token_write_is_refused_before_any_call(acme: Path) -> None:
    github, cli = GitHub(), Cli()
    environ = {key: value for key, value in JOB.items() if not key.startswith("ACTIONS_ID_TOKEN")}
    with pytest.raises(ConfigError, match=r"permissions.id-token: .*`permissions: id-token: write`"):
        login("dev", 90, DEPLOY_VARIABLE, {**environ, DEPLOY_VARIABLE: "organization"}, io.StringIO(),
              fetch=github, run=cli, clock=clock)
    assert not github.requests and not cli.calls


@pytest.mark.parametrize("answer", [b"<html>rate limited</html>", b"{}", json.dumps({"value": ""}).encode()])
def test_a_token_service_that_gives_no_token_fails_the_step(acme: Path, answer: bytes) -> None:
    cli = Cli()
    with pytest.raises(PlatformError, match="OIDC token service"):
        login("dev", 90, DEPLOY_VARIABLE, {**JOB, DEPLOY_VARIABLE: "organization"}, io.StringIO(),
              fetch=GitHub(answer), run=cli, clock=clock)
    assert not cli.calls


def test_a_refused_exchange_fails_the_step_naming_the_policy_pulumi_cloud_needs(acme: Path, tmp_path: Path) -> None:
    cli = Cli(code=255, output="error: problem logging in: unauthorized: no policy matched")
    environ = {**JOB, DEPLOY_VARIABLE: "team:deployers", "RUNNER_TEMP": str(tmp_path)}
    with pytest.raises(PlatformError) as failure:
        login("dev", 90, DEPLOY_VARIABLE, environ, io.StringIO(), fetch=GitHub(), run=cli, clock=clock)
    message = str(failure.value)
    assert "(exit 255): error: problem logging in: unauthorized: no policy matched" in message
    assert "https://token.actions.githubusercontent.com" in message
    assert "<repo-subject>:environment:<env>" in message and "<repo-subject>:pull_request" in message
    # GitHub's immutable subject claims, the default of repositories created from 2026-07-15, and the older form
    assert "repo:<owner>@<owner_id>/<repo>@<repo_id>" in message and "else repo:<owner>/<repo>)" in message
    assert f"maximum expiration of at least {90 + MARGIN_MINUTES} minutes" in message
    assert f"unset {DEPLOY_VARIABLE}" in message
    assert cli.token_file is not None and not cli.token_file.exists()  # removed on failure too


def test_a_bad_variable_value_is_refused_before_github_is_asked(acme: Path) -> None:
    github = GitHub()
    with pytest.raises(ConfigError, match=PREVIEW_VARIABLE):
        login("dev", 60, PREVIEW_VARIABLE, {**JOB, PREVIEW_VARIABLE: "everything"}, io.StringIO(), fetch=github,
              run=Cli(), clock=clock)
    assert not github.requests


def test_the_workflows_command_logs_in_through_the_same_code(acme: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`nox -s workflows -- pulumi-login ENV --minutes N --variable V` (the jobs' step) reaches :func:`login`."""
    seen: list[tuple[str, int, str]] = []

    def fake_login(env: str, minutes: int, variable: str, environ: Mapping[str, str], out: object) -> int:
        seen.append((env, minutes, variable))
        return 0

    monkeypatch.setattr(workflows.pulumi_login, "login", fake_login)
    assert workflows.main(["pulumi-login", "dev", "--minutes", "60", "--variable", PREVIEW_VARIABLE]) == 0
    assert workflows.main(["pulumi-login", "prod", "--minutes", "210"]) == 0
    assert seen == [("dev", 60, PREVIEW_VARIABLE), ("prod", 210, DEPLOY_VARIABLE)]


def test_a_token_granted_for_less_than_the_job_may_run_fails_the_step(acme: Path) -> None:
    """Pulumi Cloud may grant less than asked (the issuer's maximum expiration): the CLI stores what it got, and a
    run still going when it ends stops part-way (the next layer, a stack read). The step reads the stored expiry."""
    cli = Cli(granted_minutes=120)  # the org's issuer caps tokens at 2 hours; staging's deploy job may run 210
    with pytest.raises(PlatformError) as failure:
        login("dev", 210, DEPLOY_VARIABLE, {**JOB, DEPLOY_VARIABLE: "team:deployers"}, io.StringIO(),
              fetch=GitHub(), run=cli, clock=clock)
    message = str(failure.value)
    assert "granted the job's token for 120 minutes (until 2026-12-06 06:00 UTC), less than the job's 210-minute" \
        in message
    assert f"maximum expiration of the org's OIDC issuer https://token.actions.githubusercontent.com to at least " \
           f"{210 + MARGIN_MINUTES} minutes" in message


def test_the_step_says_until_when_the_token_holds(acme: Path) -> None:
    out = io.StringIO()
    login("dev", 90, DEPLOY_VARIABLE, {**JOB, DEPLOY_VARIABLE: "organization"}, out, fetch=GitHub(), run=Cli(),
          clock=clock)
    assert "(until 2026-12-06 05:40 UTC)" in out.getvalue()
    out = io.StringIO()  # a CLI that records no expiry: nothing to compare, said so
    login("dev", 90, DEPLOY_VARIABLE, {**JOB, DEPLOY_VARIABLE: "organization"}, out, fetch=GitHub(),
          run=Cli(expiry=None), clock=clock)
    assert "(no expiry recorded by the CLI)" in out.getvalue()


def test_a_backend_url_with_a_trailing_slash_is_logged_in_under_the_key_later_calls_read(acme: Path) -> None:
    """The CLI stores the account under the URL as given, and every later call looks it up without the slash."""
    cli = Cli()
    environ = {**JOB, "PULUMI_BACKEND_URL": CLOUD + "/", DEPLOY_VARIABLE: "organization"}
    assert login("dev", 90, DEPLOY_VARIABLE, environ, io.StringIO(), fetch=GitHub(), run=cli, clock=clock) == 0
    assert cli.calls[0][0][-1] == CLOUD
    accounts = json.loads((Path(JOB["PULUMI_HOME"]) / "credentials.json").read_text())["accounts"]
    assert list(accounts) == [CLOUD]


def test_a_login_stored_under_no_key_the_job_reads_fails_the_step(acme: Path) -> None:
    class Elsewhere(Cli):
        def __call__(self, argv: Sequence[str], environ: Mapping[str, str]) -> tuple[int, str]:
            return super().__call__([*argv[:-1], "https://api.pulumi.example"], environ)

    with pytest.raises(PlatformError, match=re.escape("holds no login for https://api.pulumi.com, where every later")):
        login("dev", 90, DEPLOY_VARIABLE, {**JOB, DEPLOY_VARIABLE: "organization"}, io.StringIO(), fetch=GitHub(),
              run=Elsewhere(), clock=clock)


def test_in_a_github_job_the_oidc_token_is_masked_before_the_cli_runs(acme: Path) -> None:
    """GitHub masks a value once told (`::add-mask::`, as @actions/core's getIDToken does), so no later line of the
    log shows it, whatever prints it; outside GitHub Actions the token is never printed at all."""
    out = io.StringIO()
    login("dev", 90, DEPLOY_VARIABLE, {**JOB, DEPLOY_VARIABLE: "organization", "GITHUB_ACTIONS": "true"}, out,
          fetch=GitHub(), run=Cli(), clock=clock)
    assert out.getvalue().splitlines()[0] == "::add-mask::eyJ.job-token.sig"


def test_an_env_without_its_pulumi_cloud_org_is_refused_before_github_is_asked(env_dir: Path) -> None:
    """The token's audience names the env's org: with the default `organization` (self-managed backends') Pulumi
    Cloud would refuse the exchange as if a policy were missing; the step names the key instead, as `up` does."""
    github, cli = GitHub(), Cli()
    with pytest.raises(ConfigError, match=r"dev.yaml: pulumi_org: is 'organization' \(the default"):
        login("dev", 90, DEPLOY_VARIABLE, {**JOB, DEPLOY_VARIABLE: "organization"}, io.StringIO(), fetch=github,
              run=cli, clock=clock)
    assert not github.requests and not cli.calls
