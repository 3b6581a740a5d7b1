"""The real runner: Pulumi Automation API over the projects in ``stacks/<layer>``.

Each layer is its own Pulumi project, named after the layer. Every stack is created and selected
fully qualified, ``<org>/<project>/<env>`` (org = the env's ``pulumi_org``): exactly the name the
consumers' StackReferences read (:func:`shared.contracts.stack_reference_name`). A bare ``<env>``
would land in the token's default org on Pulumi Cloud, where no StackReference looks.

The state backend is ``PULUMI_BACKEND_URL``, else the env file's ``state.backend_url``, else a
local file backend inside the repo (``.pulumi-state/``, git-ignored). A local file backend is lost
with the machine (an ephemeral CI runner), so runs that write state (``up``, ``destroy``,
``refresh``) need ``--local-state`` there, and staging and prod refuse it outright. Self-managed
(DIY) backends encrypt stack secrets with a passphrase unless the env names a KMS-style
``state.secrets_provider`` (passed to ``pulumi stack init``); Pulumi Cloud encrypts them itself.
Every command runs with ``PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER=true``, so a stack created on
another machine (whose ``Pulumi.<env>.yaml`` this checkout lacks) keeps the provider its state records. Before
any layer, the provider each stack's state records is compared with ``state.secrets_provider`` and with the stack's
settings file on this machine, and for ``up``, ``refresh`` and ``destroy`` the backend's stack locks are read
(:mod:`shared.orchestrate.locks`).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from pulumi import automation as auto

from shared import REPO_ROOT
from shared.contracts import stack_reference_name
from shared.envs import EnvConfig, env_path, load_env
from shared.errors import ConfigError, PlatformError, UsageError
from shared.images import AMBIENT_CREDENTIAL_VARS, AWS_FILE_VARS, pulumi_credentials
from shared.kms_url import kms_key
from shared.orchestrate import locks
from shared.orchestrate.commits import (
    HISTORY_PAGE,
    NOT_CHECKED,
    Checkout,
    DeployedCommit,
    check_commits,
    parse_history,
)
from shared.orchestrate.identity import (
    Deployed,
    IdentityError,
    UnreadableState,
    check_identity,
    deployed_from_state,
    deployed_secrets_provider,
    secrets_provider_refusal,
    settings_secrets_provider,
    stale_settings_refusal,
    state_resources,
    state_resources_of,
    wanted_secrets_provider,
)
from shared.orchestrate.locks import (
    LockReader,
    StackLock,
    StackLocked,
    cloud_locks,
    is_cloud_url,
    locked_refusal,
    read_locks,
)
from shared.orchestrate.model import (
    ENV_DIGEST_VARIABLE,
    TARGETED_VARIABLE,
    Action,
    LayerResult,
    Operation,
    OutputSink,
    Status,
    env_file_digest,
)
from shared.orchestrate.pending import (
    CREATING,
    PendingCreates,
    PendingOperation,
    pending_creates_refusal,
    pending_note,
    pending_operations,
)
from shared.orchestrate.policy_config import POLICIES_DIR, synth_documents, write_pack_configs
from shared.orchestrate.reach import endpoint_layer
from shared.orchestrate.replacements import Destruction, ReplacementGuard, judge
from shared.orchestrate.report import failure_detail, locked_detail
from shared.orchestrate.run_lease import RunLease, lease_note, lease_store
from shared.orchestrate.settled import ChangeRecorder, Converging, describe_change, sort_changes, unsettled_detail
from shared.policy_catalog import PACKS
from shared.workflows import pulumi_version

STACKS_DIR = REPO_ROOT / "stacks"
POLICY_CONFIG_DIR = REPO_ROOT / "build" / "policy-config"
INSTALL_URL = "https://www.pulumi.com/docs/install/"
PASSPHRASE_VARS = ("PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE")
#: GITHUB_EVENT_NAME of a job a pull request starts (GitHub docs, "Events that trigger workflows")
PULL_REQUEST_EVENTS = ("pull_request", "pull_request_target")


#: ``off``: an ``up``, ``refresh`` or ``destroy`` takes no run lease (a backend that cannot hold one: an S3-compatible
#: store without conditional writes); a lease that cannot be taken otherwise refuses the run
RUN_LEASE_VAR = "PLATFORM_RUN_LEASE"


class PreflightError(PlatformError):
    """Something a real run needs is missing from this machine (exit 2: nothing was run)."""

    exit_code = 2


def how_to_install_cli() -> str:
    """How to install the CLI version CI runs (the ``pulumi`` pin of pyproject.toml), as README's "On a laptop" says:
    the sha256-checked release tarball on Linux, Homebrew on macOS; never an installer script piped to a shell."""
    pin = pulumi_version()
    return (f"Install the version CI runs, {pin} (the `pulumi==` pin of pyproject.toml): on Linux "
            f"`bash .ci/install-pulumi {pin}` (the release tarball, checked against its sha256, into ~/.pulumi/bin: "
            f"add that to PATH), on macOS `brew install pulumi/tap/pulumi` (README, On a laptop; {INSTALL_URL})")


def require_cli(which: Callable[[str], str | None] = shutil.which) -> str:
    """The path of the ``pulumi`` CLI, or a PreflightError saying what to install."""
    path = which("pulumi")
    if path is None:
        raise PreflightError(
            "The Pulumi CLI (`pulumi`) is not on PATH. Real runs (preview, up, destroy, refresh) go "
            f"through the Pulumi Automation API, which drives that CLI. {how_to_install_cli()}, then try again. "
            "Without it, `nox -s synth -- ENV` (offline synth) "
            "and `nox -s policy -- ENV` (offline policy checks) work with nothing but Python."
        )
    return path


#: the file :meth:`AutomationRunner.interrupt` writes in the shim's root: a ``pulumi`` not yet started starts none
INTERRUPTED_MARKER = "interrupted"

#: what the shim's Python runs before it becomes the CLI (``sys.argv[1]``: the marker; ``[2]``: the CLI; the rest its
#: arguments). SIGINT takes its default action: the relay's SIGINT ends the shim at any instant up to the ``exec``,
#: where a Python handler's would be lost in the instant between the marker check and the ``exec`` (the CLI never
#: told). SIGTTOU ignored: a write to the terminal from this background group (``pulumi version``, whose stderr the
#: Automation API leaves on the terminal) is then let through where ``stty tostop`` would stop the process (and the
#: run) for good; the CLI does not handle it, so it stays ignored. Python ignores SIGPIPE and SIGXFSZ at start and
#: ``exec`` keeps ignored signals ignored: put back. The RabbitMQ provider's environment defaults go (a
#: ``RABBITMQ_CACERT`` left in a shell by a local broker would replace the trusted roots the broker's certificate is
#: checked against, a ``RABBITMQ_PROXY`` route the admin calls past the reach probe: terraform-provider-rabbitmq
#: provider.go EnvDefaultFunc, pulumi_rabbitmq Provider ``get_env``): only the env file's messaging.management says.
_SHIM_START = """\
import os, signal, sys
for name in [name for name in os.environ if name.startswith("RABBITMQ_")]:
    del os.environ[name]
signal.signal(signal.SIGINT, signal.SIG_DFL)
signal.signal(signal.SIGHUP, signal.SIG_IGN)
signal.signal(signal.SIGTTOU, signal.SIG_IGN)
for name in ("SIGPIPE", "SIGXFSZ"):
    signal.signal(getattr(signal, name), signal.SIG_DFL)
os.setpgid(0, 0)
os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
if os.path.exists(sys.argv[1]):
    sys.exit(130)
os.execv(sys.argv[2], sys.argv[2:])
"""


def pulumi_shim(cli: str, root: Path) -> Path:
    """``root``, holding a ``bin/pulumi`` that starts ``cli`` in a process group of its own, with SIGHUP ignored and
    stdin from /dev/null; the runner's ``pulumi`` commands go through it (``auto.PulumiCommand(root=...)``).

    Why: a signal sent to the orchestrator's whole process group (a terminal's Ctrl-C, a closed terminal's or SSH
    session's SIGHUP, GNU ``timeout``'s SIGTERM) would reach each ``pulumi`` besides the orchestrator, which relays
    the interrupt too: two signals, and the CLI reads a second one as "terminate now" (pulumi/pulumi
    pkg/backend/cancellation_scope.go), mid-update, leaving the stack lock and pending creates. SIGHUP it does not
    handle at all and exits on. In a group of its own only the orchestrator's relay reaches it: one Ctrl-C, a clean
    cancel (:meth:`AutomationRunner.interrupt`). SIGHUP stays ignored as well (Go os/signal, "Default behavior": "If
    the program was started with SIGHUP or SIGINT ignored ... they will remain ignored"), in case a signal reaches the
    new group all the same. stdin: a process outside the terminal's foreground group that reads it is stopped
    (SIGTTIN); the Automation API's commands never read it.

    A ``pulumi`` started after the interrupt (its layer had checked just before) finds :data:`INTERRUPTED_MARKER` and
    exits 130 without starting. The chain (``sh``, then Python through ``bin/pulumi-start``, then the CLI) keeps one
    pid; on Linux it is named ``pulumi...`` at each step, so the relay finds it at any of them
    (:func:`pulumi_children`). On macOS ``ps`` names the first two steps after their interpreters: the relay finds the
    CLI alone and the marker stops a shim that had not checked it yet; one between its check and its ``exec`` in the
    instant the relay looks is missed there.
    """
    bin_dir = root / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    start = bin_dir / "pulumi-start"  # the interpreter under a name the relay matches (the kernel names a process
    with contextlib.suppress(FileNotFoundError):  # after the file it executes)
        start.unlink()
    start.symlink_to(sys.executable)
    (root / "start.py").write_text(_SHIM_START, encoding="utf-8")
    shim = bin_dir / "pulumi"
    shim.write_text("#!/bin/sh\n# shared.orchestrate.automation.pulumi_shim\ntrap '' HUP\n"
                    f"exec {shlex.quote(str(start))} -I -S {shlex.quote(str(root / 'start.py'))} "
                    f"{shlex.quote(str(root / INTERRUPTED_MARKER))} {shlex.quote(cli)} \"$@\"\n", encoding="utf-8")
    shim.chmod(0o755)
    return root


MIN_CLI_VERSION = (3, 207, 0)
"""The oldest ``pulumi`` CLI a run works with: messaging's ``up --refresh --run-program`` after a broker
replacement (CLI changelog: the flag came to preview/up in 3.169, but ``up`` ignored it until 3.172 "Fix
`up --refresh --run-program` to use the new program based refresh logic", and the engine panicked on a
refreshed resource found deleted until 3.186 and with dependent resources until 3.187; the program-based refresh
wrote the step generator's refresh maps from parallel goroutines, ``fatal error: concurrent map writes``, until 3.191:
pulumi/pulumi #20337, reported on 3.187 and 3.189 for ``preview --refresh --run-program``), messaging's
``destroy --run-program`` (3.204 "Fix a potential snapshot integrity error when a resources dependency fails to be
destroyed": the program registers every provider again, and when a delete failed the engine still deleted that
resource's explicit provider, pkg/resource/deploy/deployment_executor.go; every messaging resource has one), a
program-based refresh of a resource left pending replacement by a failed delete-before-replace (a queue's name is
set by the program, so the bridged provider deletes it before creating it again): it hung for good until 3.205
("Fix an issue where `refresh --run-program` could potentially run forever": RefreshStep.Apply never resolved its
completion source) and ``up --refresh --run-program`` then created the replacement beside the one pending until
3.206 ("Fix duplicate resource snapshot integrity issue ... when a resource `PendingReplacement` exists in the
snapshot"), the broker admin secret's ``replace_with`` resource option (3.207 "Add `ReplaceWith` resource option";
the Python SDK raises "The Pulumi CLI does not support the ReplaceWith option" when the engine lacks it, which would
stop the broker layer after network and discovery ran) and
``PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER`` (3.134; an older CLI ignores it)."""


def check_cli_version(path: str, run: Callable[[list[str]], str] | None = None) -> tuple[int, ...] | None:
    """PreflightError (exit 2) when ``pulumi version`` is older than :data:`MIN_CLI_VERSION`; with an older
    CLI the layers before messaging would be deployed and messaging would then fail on an unknown flag. Returns the
    version found (None: the CLI did not say)."""
    def version_of(command: list[str]) -> str:
        try:
            return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False).stdout
        except (OSError, subprocess.TimeoutExpired):
            return ""  # the Automation API runs `pulumi version` again and reports a CLI that cannot answer

    output = (run or version_of)([path, "version"]).strip()
    match = re.match(r"v?(\d+)\.(\d+)\.(\d+)", output)
    if match is None:
        return None  # a build that does not say: the Automation API checks what it needs itself
    found = tuple(int(part) for part in match.groups())
    if found < MIN_CLI_VERSION:
        needed = ".".join(map(str, MIN_CLI_VERSION))
        raise PreflightError(
            f"The Pulumi CLI at {path} is {'.'.join(map(str, found))}; real runs need {needed} or later (messaging's "
            f"preview and up refresh with --run-program, the broker's admin secret is replaced with its broker "
            f"(the replace_with option), and stacks created elsewhere keep their secrets provider "
            f"only with PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER). Nothing was run. {how_to_install_cli()}.")
    return found


#: The CLI release from which a self-managed backend's ``refresh --preview-only`` and ``destroy --preview-only`` take
#: no stack lock (pkg/backend/diy/backend.go; pulumi/pulumi #22385 in 3.229.0, #22561 in 3.231.0). The CLIs admitted
#: from :data:`MIN_CLI_VERSION` up to them lock the stack for those as for the real run.
PREVIEW_ONLY_UNLOCKED_SINCE: dict[Action, tuple[int, int, int]] = {Action.REFRESH: (3, 229, 0),
                                                                  Action.DESTROY: (3, 231, 0)}


def takes_lock(operation: Operation, cli_version: tuple[int, ...] | None, cloud: bool) -> bool:
    """Whether ``operation`` locks its stacks on the backend, so that another run's lock fails it at its layer: a
    preview never does, a ``--preview-only`` run only on a self-managed backend with a CLI older than
    :data:`PREVIEW_ONLY_UNLOCKED_SINCE` (or one that does not say its version)."""
    if operation.action is Action.PREVIEW:
        return False
    if not operation.preview_only:
        return True
    since = PREVIEW_ONLY_UNLOCKED_SINCE.get(operation.action)
    return not cloud and since is not None and (cli_version is None or cli_version < since)


DIY_ORG = "organization"
"""The only org a self-managed (DIY) backend accepts in ``<org>/<project>/<stack>``."""
LEGACY_LAYOUT_VARS = ("PULUMI_DIY_BACKEND_LEGACY_LAYOUT", "PULUMI_SELF_MANAGED_STATE_LEGACY_LAYOUT")
STATE_UPGRADE_HINT = ("`pulumi state upgrade` (run once with PULUMI_BACKEND_URL pointing at it) moves its stacks "
                      "to the project-scoped layout; older CLIs cannot read the upgraded backend")
STATE_WRITING_HINT = ("Use a durable backend instead: Pulumi Cloud (PULUMI_BACKEND_URL=https://api.pulumi.com "
                      "with PULUMI_ACCESS_TOKEN) or a versioned, encrypted S3 bucket (state.backend_url: "
                      "s3://<bucket>/<prefix> with state.secrets_provider: awskms://alias/<key>); see the README, "
                      "section \"Where state lives\"")


@dataclass(frozen=True)
class Backend:
    url: str
    source: str
    """Where the URL came from, for messages: an environment variable, an env-file key or the default."""

    @property
    def is_cloud(self) -> bool:
        """Pulumi Cloud (or a self-hosted Pulumi Cloud): it has orgs and encrypts secrets itself."""
        return backend_encrypts_secrets(self.url)

    @property
    def is_local_file(self) -> bool:
        return self.url.startswith("file://")


def absolute_file_url(url: str, base: Path) -> str:
    """A ``file://`` URL with a relative path made absolute against ``base``; any other URL unchanged.

    The CLI resolves a relative one against its own working directory (``massageBlobPath``:
    ``filepath.Abs``), which is each layer's ``stacks/<layer>``: every layer would keep its stacks in
    a folder of its own, where no other layer's StackReference looks."""
    if not url.startswith("file://"):
        return url
    path, separator, query = url.removeprefix("file://").partition("?")
    if not path or path.startswith(("/", "~")):
        return url
    return f"file://{os.path.abspath(base / path)}{separator}{query}"


def resolve_backend(env: EnvConfig, environ: Mapping[str, str], repo_root: Path = REPO_ROOT) -> Backend:
    """``PULUMI_BACKEND_URL`` (a relative ``file://`` path: from the current directory), else the env's
    ``state.backend_url`` (from the repo root), else ``<repo>/.pulumi-state``."""
    if environ.get("PULUMI_BACKEND_URL"):
        return Backend(absolute_file_url(environ["PULUMI_BACKEND_URL"], Path.cwd()), "PULUMI_BACKEND_URL")
    if env.state.backend_url:
        return Backend(absolute_file_url(env.state.backend_url, repo_root),
                       f"state.backend_url in {env_path(env.name)}")
    return Backend((repo_root / ".pulumi-state").as_uri(), "the default (no PULUMI_BACKEND_URL, no state.backend_url)")


def backend_encrypts_secrets(url: str) -> bool:
    """Whether the backend encrypts stack secrets itself (Pulumi Cloud) rather than with a passphrase."""
    return is_cloud_url(url)


def uses_passphrase(url: str, secrets_provider: str | None) -> bool:
    """Whether stacks on this backend encrypt secrets with a passphrase (DIY backend, no KMS-style provider)."""
    if secrets_provider not in (None, "default", "passphrase"):
        return False  # awskms://, gcpkms://, azurekeyvault://, hashivault://: the key service encrypts
    return secrets_provider == "passphrase" or not backend_encrypts_secrets(url)


def check_access_token(url: str, environ: Mapping[str, str]) -> None:
    """A GitHub Actions job on Pulumi Cloud needs its token; ConfigError naming the secret when it arrived empty (an
    unset secret reaches a step as ""). The CLI would stop at its first call with "PULUMI_ACCESS_TOKEN must be set
    for login during non-interactive CLI sessions", naming no secret: the deploys' is an environment secret, the
    previews' a repository secret of its own (README, CI/CD). A CLI logged in before (``pulumi login``, also with
    ``--oidc-token``) keeps its token in ``$PULUMI_HOME/credentials.json`` and takes it when the variable is empty
    (pkg/backend/httpstate/backend.go): nothing to say then."""
    if not backend_encrypts_secrets(url) or environ.get("GITHUB_ACTIONS") != "true":
        return
    if environ.get("PULUMI_ACCESS_TOKEN"):
        return
    from shared.pulumi_login import credentials_file

    if credentials_file(environ).is_file():
        return
    if environ.get("GITHUB_EVENT_NAME") in PULL_REQUEST_EVENTS:
        where = ("the repository secret PULUMI_PREVIEW_ACCESS_TOKEN, which a pull request's preview logs in with, is "
                 "not set: make it a team token with read on the previewed stacks only, or set the repository "
                 "variable PULUMI_OIDC_PREVIEW_SCOPE to log in by the job's OIDC token instead")
    else:
        where = ("the secret PULUMI_ACCESS_TOKEN is not set in the job's GitHub environment (a deploy's token is an "
                 "environment secret: a repository secret would reach a workflow of any branch), nor the "
                 "environment's variable PULUMI_OIDC_SCOPE, with which the job logs in by its OIDC token instead")
    raise ConfigError("environment variables", "PULUMI_ACCESS_TOKEN",
                      f"is empty in a GitHub Actions job on {url}: {where} (README, CI/CD)")


def check_passphrase(url: str, environ: Mapping[str, str], secrets_provider: str | None = None) -> None:
    """A passphrase-encrypted backend needs the passphrase of its stacks' secrets; ConfigError if unset."""
    if not uses_passphrase(url, secrets_provider):
        return
    passphrase_file = environ.get("PULUMI_CONFIG_PASSPHRASE_FILE")
    if (environ.get("GITHUB_EVENT_NAME") in PULL_REQUEST_EVENTS and not environ.get("PULUMI_CONFIG_PASSPHRASE")
            and not passphrase_file):
        # the platform's pull-request workflow gives its preview no passphrase on purpose: only a repository secret
        # could reach it, and GitHub hands those to a workflow of any branch (environment secrets are the ones
        # gated by deployment branches: GitHub docs, "Managing environments for deployment")
        raise ConfigError(
            "environment variables", "PULUMI_CONFIG_PASSPHRASE",
            f"the env file's state.secrets_provider names no KMS key, so the stacks on {url} are taken to keep their "
            "secrets encrypted with a passphrase, and a pull request's preview is given none: it would have to be a "
            "repository secret, which a workflow of any branch can read and which decrypts every stack's secrets. "
            "Set state.secrets_provider to a KMS key (awskms://...) that the read role may only decrypt with (nox -s "
            "roles grants it), move each stack to it with `pulumi stack change-secrets-provider`, and delete the "
            "repository secret PULUMI_CONFIG_PASSPHRASE (README, CI/CD). Where the stacks were moved already, this "
            "branch lacks the env file's change: merge main into it")
    if environ.get("PULUMI_CONFIG_PASSPHRASE") == "":
        # The CLI takes PULUMI_CONFIG_PASSPHRASE whenever it is set, even empty, before the file (its
        # readPassphrase), and a GitHub secret that was never created reaches a step as "": both would
        # silently encrypt (new stacks) or fail to decrypt (existing ones) with an empty passphrase.
        if passphrase_file:
            raise ConfigError("environment variables", "PULUMI_CONFIG_PASSPHRASE",
                              "is set but empty, and pulumi reads it before PULUMI_CONFIG_PASSPHRASE_FILE, so "
                              f"{passphrase_file} would be ignored; unset PULUMI_CONFIG_PASSPHRASE")
        if environ.get("GITHUB_ACTIONS") == "true":
            raise ConfigError("environment variables", "PULUMI_CONFIG_PASSPHRASE",
                              "is empty in a GitHub Actions job: the secret PULUMI_CONFIG_PASSPHRASE is not set "
                              "in the job's GitHub environment (an unset secret arrives as an empty string); "
                              f"set it to the passphrase of the stacks on {url}, or use a KMS secrets "
                              "provider")
    if "PULUMI_CONFIG_PASSPHRASE" in environ:  # set by hand, even empty, it is the user's (if weak) choice
        return
    if passphrase_file:
        if not Path(passphrase_file).is_file():
            raise ConfigError("environment variables", "PULUMI_CONFIG_PASSPHRASE_FILE",
                              f"{passphrase_file} is not a readable file (it must hold the stack passphrase)")
        return
    raise ConfigError(
        "environment variables", "PULUMI_CONFIG_PASSPHRASE",
        f"the state backend {url} keeps stack secrets encrypted with a passphrase, and neither "
        "PULUMI_CONFIG_PASSPHRASE nor PULUMI_CONFIG_PASSPHRASE_FILE (a file holding it) is set; set one, and "
        "keep the same passphrase for every run (it decrypts the secrets already stored). A Pulumi Cloud "
        "backend (PULUMI_BACKEND_URL=https://api.pulumi.com) or a KMS secrets provider (state.secrets_provider: "
        "awskms://...) needs no passphrase.",
    )


def check_org(env: EnvConfig, backend: Backend) -> None:
    """``pulumi_org`` must be one the backend accepts, or the stacks and their StackReferences disagree."""
    file = str(env_path(env.name))
    if backend.is_cloud:
        if env.pulumi_org == DIY_ORG:
            raise ConfigError(file, "pulumi_org", (
                f"is {DIY_ORG!r} (the default, which only self-managed backends use), but the state backend "
                f"{backend.url} (from {backend.source}) is Pulumi Cloud: stacks would go to an org named "
                f"{DIY_ORG!r} instead of yours. Set pulumi_org to your Pulumi Cloud org (or user name), the org "
                "every stack of this env is created in and every StackReference reads."))
        return
    if env.pulumi_org != DIY_ORG:
        # Pulumi's DIY backend accepts only "organization" as the org of <org>/<project>/<stack> (pulumi/pulumi
        # pkg/backend/diy/store.go ParseReference; docstring of pulumi.automation.fully_qualified_stack_name).
        raise ConfigError(file, "pulumi_org", (
            f"is {env.pulumi_org!r}, but the state backend {backend.url} (from {backend.source}) is self-managed, and "
            f"self-managed backends accept only the org {DIY_ORG!r} in <org>/<project>/<stack>. Remove pulumi_org "
            f"(it defaults to {DIY_ORG!r}) or use Pulumi Cloud (PULUMI_BACKEND_URL=https://api.pulumi.com)."))


def _file_backend_root(url: str) -> Path:
    parts = urlsplit(url)
    raw = unquote(parts.netloc + parts.path)
    return Path(raw).expanduser()


def check_layout(backend: Backend, environ: Mapping[str, str]) -> str | None:
    """Refuse a legacy-layout DIY backend (it has no ``<org>/<project>/<stack>`` names); a note when unknowable.

    Pulumi marks the layout in ``.pulumi/meta.yaml`` (``version: 1`` = project-scoped stacks); a backend
    without that file is legacy if it already holds stacks directly in ``.pulumi/stacks/``, else the CLI
    creates it as version 1 unless a legacy-layout variable asks otherwise (pkg/backend/diy/meta.go,
    ensurePulumiMeta).
    """
    if backend.is_cloud:
        return None
    legacy_vars = [name for name in LEGACY_LAYOUT_VARS
                   if environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")]
    where = f"the state backend {backend.url} (from {backend.source})"
    if not backend.is_local_file:
        if legacy_vars:
            raise ConfigError("environment variables", legacy_vars[0], (
                f"asks Pulumi to lay a new self-managed backend out in the legacy layout, which has no "
                f"<org>/<project>/<stack> stack names; unset it. If {where} is already legacy, {STATE_UPGRADE_HINT}."))
        return (f"{where} is cloud storage, whose layout cannot be read without its credentials: it must use "
                "Pulumi's project-scoped layout (.pulumi/meta.yaml says version: 1); a legacy backend fails at the "
                f"first `stack select` with a stack-name error. If it is legacy, {STATE_UPGRADE_HINT}.")
    root = _file_backend_root(backend.url)
    meta = root / ".pulumi" / "meta.yaml"
    if meta.is_file():
        from shared.yamlio import load_yaml_mapping

        version = load_yaml_mapping(meta).get("version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise ConfigError(str(meta), "version", f"is {version!r}; Pulumi needs an integer layout version here "
                                                    "(a damaged state backend: restore it from a backup)")
        if version < 1:
            raise ConfigError(str(meta), "version", (
                f"is {version}: {where} uses Pulumi's legacy layout, which does not support the "
                f"<org>/<project>/<stack> names every stack of this platform has. {STATE_UPGRADE_HINT}."))
        return None
    stacks = root / ".pulumi" / "stacks"
    legacy_stacks = sorted(path.name for path in stacks.glob("*") if path.is_file()
                           and path.name.removesuffix(".gz").removesuffix(".zst").endswith((".json", ".yaml", ".yml")))
    if legacy_stacks:
        raise ConfigError(str(stacks), "(layout)", (
            f"{where} holds stacks in Pulumi's legacy layout ({', '.join(legacy_stacks)} directly in .pulumi/stacks, "
            f"no .pulumi/meta.yaml), which does not support <org>/<project>/<stack> names. {STATE_UPGRADE_HINT}."))
    if legacy_vars:
        raise ConfigError("environment variables", legacy_vars[0], (
            f"asks Pulumi to create {where} in the legacy layout, which has no <org>/<project>/<stack> stack "
            "names; unset it."))
    return None


def check_local_state(env: EnvConfig, backend: Backend, operation: Operation) -> None:
    """A run that writes state to a local file backend needs ``--local-state``; staging and prod never get it."""
    if not backend.is_local_file:
        if operation.local_state:
            raise UsageError(f"--local-state: the state backend is {backend.url} (from {backend.source}), not a "
                             "local file backend; drop the flag")
        return
    if not operation.changes_infrastructure:
        return  # preview, refresh/destroy --preview-only: nothing is written to the state
    if env.baseline in ("staging", "prod"):
        raise ConfigError(str(env_path(env.name)), "state.backend_url", (
            f"{operation.label} of {env.name} (baseline {env.baseline}) would keep its state in the local file "
            f"backend {backend.url} (from {backend.source}), which disappears with this machine or CI runner; the "
            f"next run would then try to create every named resource again and orphan the existing ones. "
            f"{env.baseline} never runs on local state, not even with --local-state. {STATE_WRITING_HINT}."))
    if not operation.local_state:
        raise UsageError(
            f"{operation.label} of {env.name} would keep its state in the local file backend {backend.url} (from "
            f"{backend.source}), which is lost with this machine or CI runner, after which the next run collides "
            f"with the named resources it created. Pass --local-state if this machine's state is what you want "
            f"(a personal dev env), or configure a durable backend. {STATE_WRITING_HINT}.")


def backend_location(url: str) -> tuple[str, str, str, tuple[tuple[str, str], ...]]:
    """Where a backend URL keeps its stacks, for comparing two spellings of one backend: a bucket's path without its
    leading and trailing slashes (pkg/backend/diy/backend.go: TrimLeft "/", one "/" appended, blob.PrefixedBucket),
    a file path normalised (massageBlobPath: filepath.Abs), the query's parameters in any order."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "file":
        path = os.path.normpath(parts.netloc + parts.path) if parts.netloc + parts.path else ""
    else:
        path = parts.path.strip("/")
    return scheme, parts.netloc, path, tuple(sorted(parse_qsl(parts.query, keep_blank_values=True)))


def check_backend_override(env: EnvConfig, environ: Mapping[str, str], operation: Operation,
                           repo_root: Path = REPO_ROOT) -> str | None:
    """``PULUMI_BACKEND_URL`` naming another backend than the env file's ``state.backend_url``: refused (ConfigError,
    exit 2) for a run that writes state, a note for one that does not; None when they agree or either is unset.

    The variable wins (:func:`resolve_backend`), so a repository variable or a shell's export meant for another env
    would put this env's stacks on a backend where none of them are: each layer run there looks like a first ``up``
    (new stacks beside the deployed resources, colliding at their names) and the env's state is split in two."""
    if not environ.get("PULUMI_BACKEND_URL") or not env.state.backend_url:
        return None
    used = absolute_file_url(environ["PULUMI_BACKEND_URL"], Path.cwd())
    named = absolute_file_url(env.state.backend_url, repo_root)
    if backend_location(used) == backend_location(named):
        return None
    file = str(env_path(env.name))
    if operation.changes_infrastructure:
        raise ConfigError(file, "state.backend_url", (
            f"is {named}, but PULUMI_BACKEND_URL is {used}, which would win: {operation.label} of {env.name} would "
            "write its stacks to a backend other than the one the env file names, where each layer looks like a "
            "first up beside the deployed resources. Unset PULUMI_BACKEND_URL (the env file's backend is used), or "
            "move the stacks and name the new backend in the env file (README, \"Stack names\")."))
    return (f"PULUMI_BACKEND_URL ({used}) is used for this {operation.label}, not {file}'s state.backend_url "
            f"({named}); up, refresh and destroy refuse the difference")


def check_project(stacks_dir: Path, layer: str) -> Path:
    """``stacks/<layer>`` must be a Pulumi project named after the layer (StackReferences use that name)."""
    from shared.yamlio import load_yaml_mapping

    project_file = stacks_dir / layer / "Pulumi.yaml"
    if not project_file.is_file():
        raise ConfigError(str(project_file), "(file)", f"layer {layer!r} has no Pulumi project file")
    name = load_yaml_mapping(project_file).get("name")
    if name != layer:
        raise ConfigError(str(project_file), "name",
                          f"is {name!r}; it must be {layer!r}, the name other layers' StackReferences use")
    return project_file.parent


def _ops(changes: Mapping[Any, int] | None) -> dict[str, int]:
    # OpMap keys are OpType members or plain strings depending on the code path that built them.
    return {getattr(op, "value", str(op)): int(count) for op, count in (changes or {}).items()}


def _target_options(operation: Operation) -> dict[str, Any]:
    """``up --target URN ...`` without ``--target-dependents`` (Automation API ``up(target=...)``)."""
    return {"target": list(operation.targets), "target_dependents": False} if operation.targets else {}


#: Layers whose ``up`` (and the preview before it) refreshes first. messaging's resources (vhost,
#: exchanges, queues, users, policies) live on the broker, which the broker layer may replace: a new
#: broker is empty, but messaging's state still lists them, so without a refresh nothing would be
#: recreated. Refreshing on every up is simpler than detecting a new broker (its id would have to be
#: recorded by messaging and compared across stacks), also catches objects lost any other way (deleted
#: by hand), and costs one management-API read per object. ``run_program``: the refresh then uses the
#: provider the program builds now (the new broker's endpoint); the default reads through the provider
#: stored in the state, whose endpoint is the deleted broker's and no longer answers (``--run-program``
#: on preview/up: Pulumi CLI 3.169; ``up`` honours it from 3.172, survives deleted objects from 3.187,
#: refreshes in parallel without crashing from 3.191 and objects pending replacement from 3.206, see
#: :data:`MIN_CLI_VERSION`).
#: The preview before the up refreshes the same way, so a replacement that drift would cause is gated too.
REFRESHED_LAYERS = frozenset({"messaging"})
#: Layers whose ``up`` (and the preview before it) refreshes first: messaging (above), and compute, whose state can
#: record a task definition its ECS service does not run. ECS's circuit breaker rolls a failed deployment back; the
#: provider's wait then fails the update (it reads the deployment's status, and ROLLBACK_SUCCESSFUL is a failure:
#: terraform-provider-aws ecs/service.go, findDeploymentStatus) and the failed update records what it asked for, not
#: what ECS went back to, so the next `up` found nothing to change: the service stayed on the old revision while its
#: callers rolled onto the new release. The refresh reads what ECS runs, and that `up` deploys the release again.
REFRESHED_BEFORE_UP = REFRESHED_LAYERS | {"compute"}


def _refresh_options(layer: str) -> dict[str, Any]:
    return {"refresh": True, "run_program": True} if layer in REFRESHED_BEFORE_UP else {}


def holds_resources(deployment: Mapping[str, Any] | None) -> bool:
    """Whether an exported ``deployment`` holds a resource a refresh or destroy acts on: anything but the root
    stack and provider resources (what a stack keeps after ``destroy``, or holds after ``stack init``: nothing)."""
    return any(resource.get("type") != "pulumi:pulumi:Stack"
               and not str(resource.get("type", "")).startswith("pulumi:providers:")
               for resource in state_resources(deployment))


BROKER_TYPE = "aws:mq/broker:Broker"


def broker_ids(deployment: Mapping[str, Any] | None) -> list[str]:
    """The ids of the Amazon MQ brokers an exported ``deployment`` holds live (:func:`is_live_entry`: not one an
    interrupted replacement left marked ``delete`` or ``pendingReplacement``)."""
    return [str(resource["id"]) for resource in state_resources_of(deployment, BROKER_TYPE, live=True)
            if resource.get("id")]


LOG_GROUP_TYPE = "aws:cloudwatch/logGroup:LogGroup"


def log_group_names(deployment: Mapping[str, Any] | None) -> list[str]:
    """The names of the CloudWatch Logs groups an exported ``deployment`` holds (a group's id is its name), sorted:
    what a destroy of the stack deletes (one marked ``delete``, an old copy an interrupted replacement left, too)."""
    return sorted({str(resource["id"]) for resource in state_resources_of(deployment, LOG_GROUP_TYPE)
                   if resource.get("id")})


#: the type prefix of App Mesh resources, whose API AWS stopped serving at its end of support (shared.lifecycle)
APP_MESH_TYPE_PREFIX = "aws:appmesh/"


def droppable_urns(deployment: Mapping[str, Any] | None, type_prefix: str) -> list[str]:
    """The URNs of the resources of types starting ``type_prefix`` an exported ``deployment`` holds, in an order they
    can be dropped from it one by one: each before its parent and what it depends on (``pulumi state delete`` refuses
    a resource that still has a child or dependent in the state)."""
    from graphlib import TopologicalSorter

    found = {str(resource.get("urn")): resource for resource in state_resources(deployment)
             if str(resource.get("type", "")).startswith(type_prefix)}
    sorter: TopologicalSorter[str] = TopologicalSorter()
    for urn, resource in found.items():  # a node after its parent and dependencies
        sorter.add(urn, *(needed for needed in (resource.get("parent"), *(resource.get("dependencies") or []))
                          if needed in found))
    return list(reversed(list(sorter.static_order())))


def app_mesh_urns(deployment: Mapping[str, Any] | None) -> list[str]:
    """The App Mesh resources of ``deployment`` in :func:`droppable_urns`'s order."""
    return droppable_urns(deployment, APP_MESH_TYPE_PREFIX)


#: the type prefix of the objects pulumi-rabbitmq keeps on the broker (vhost, exchanges, queues, users, policies...);
#: its provider resource is ``pulumi:providers:rabbitmq``
RABBITMQ_TYPE_PREFIX = "rabbitmq:"


def rabbitmq_urns(deployment: Mapping[str, Any] | None) -> list[str]:
    """The RabbitMQ objects of ``deployment`` (what its refresh or destroy calls the management API for) in
    :func:`droppable_urns`'s order."""
    return droppable_urns(deployment, RABBITMQ_TYPE_PREFIX)


def protected_urns(deployment: Mapping[str, Any] | None) -> list[str]:
    """The URNs an exported ``deployment`` marks ``protect`` (what a destroy through the state's protect refuses)."""
    return [str(resource.get("urn")) for resource in state_resources(deployment) if resource.get("protect") is True]


BUCKET_TYPE = "aws:s3/bucket:Bucket"


def unforced_buckets(deployment: Mapping[str, Any] | None) -> list[str]:
    """The names of the S3 buckets an exported ``deployment`` holds whose state does not record ``force_destroy``
    (sorted). The provider's delete takes the flag from the state, not the program (terraform-provider-aws
    internal/service/s3/bucket.go, resourceBucketDelete: ``d.Get(force_destroy)``), so a destroy stops at such a
    bucket while it holds any object (BucketNotEmpty): one where the env protects state (prod), or one deployed before
    its program set the flag and not updated since. Only the live copies (:func:`is_live_entry`): one marked
    ``pendingReplacement`` is deleted already."""
    names = set()
    for resource in state_resources_of(deployment, BUCKET_TYPE, live=True):
        outputs, inputs = resource.get("outputs") or {}, resource.get("inputs") or {}
        if outputs.get("forceDestroy", inputs.get("forceDestroy")) is True:
            continue
        name = resource.get("id") or outputs.get("bucket") or inputs.get("bucket")
        if name:
            names.add(str(name))
    return sorted(names)


#: the load balancer types (``aws:alb/...`` is pulumi-aws's alias of ``aws:lb/...``; the gateway declares the latter)
LOAD_BALANCER_TYPES = ("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer")


@dataclass(frozen=True)
class StateLoadBalancer:
    """A load balancer a state records."""

    name: str  #: its resource name (the URN's last part): the gateway's ``<service>-alb``
    arn: str   #: its id (an ELBv2 load balancer's id is its ARN)
    old: bool = False  #: marked ``delete``: an old copy a replacement left, which the next ``up`` deletes


def state_load_balancers(deployment: Mapping[str, Any] | None) -> list[StateLoadBalancer]:
    """The load balancers an exported ``deployment`` records (sorted by name, then ARN), whatever its
    ``enableDeletionProtection`` says: AWS's flag is the load balancer's own, which the platform's program sets where
    the env protects state (shared.components.gateway, ``enable_deletion_protection``) and remediation outside it
    turns on too (AWS Config ``elb-deletion-protection-enabled``, Security Hub ELB.6), and Elastic Load Balancing
    refuses DeleteLoadBalancer while it is on (OperationNotPermitted); so only ELB says (:func:`shared.images.
    deletion_protected`). One marked ``delete`` (left by a create-before-delete replacement whose delete of the old
    copy failed) is deleted by the next ``up`` whatever the program declares (Pulumi deletes every prior resource
    marked so)."""
    found = [StateLoadBalancer(str(resource.get("urn", "")).rsplit("::", 1)[-1],
                               str(resource.get("id") or (resource.get("outputs") or {}).get("arn") or "<its ARN>"),
                               bool(resource.get("delete")))
             for resource in state_resources_of(deployment, *LOAD_BALANCER_TYPES)]
    return sorted(found, key=lambda balancer: (balancer.name, balancer.arn))


def deletion_protection_off_command(arn: str = "<its ARN>", region: str | None = None) -> str:
    """The command that turns a load balancer's AWS deletion protection off (botocore elbv2
    ModifyLoadBalancerAttributes, attribute ``deletion_protection.enabled``), as the refusals print it."""
    where = f" --region {region}" if region else ""
    return (f"`aws elbv2 modify-load-balancer-attributes{where} --load-balancer-arn {arn} --attributes "
            "Key=deletion_protection.enabled,Value=false`")


def replaced_protected_load_balancer_refusal(layer: str, env: EnvConfig,
                                             blocked: Sequence[tuple[Destruction, str]]) -> str:
    """Why an ``up`` whose preview replaces a load balancer with AWS's deletion protection on is refused: the
    replacement (a changed force-new input such as ``internal``) creates the new copy first, moves what points at it,
    then deletes the old one, which Elastic Load Balancing refuses (OperationNotPermitted), so the update fails there
    with two load balancers, and every later ``up`` retries that delete. Nothing of the layer has changed yet."""
    listed = ", ".join(f"{item.urn.rsplit('::', 1)[-1]} ({arn})" for item, arn in blocked)
    commands = "; ".join(deletion_protection_off_command(arn, env.region) for _, arn in blocked)
    return (f"nothing of {layer} was changed: its up would replace the load balancer(s) {listed}, whose AWS deletion "
            "protection is on (set where the env protects state, or turned on outside the platform): the new copy "
            "would be created and the old one's DeleteLoadBalancer refused (OperationNotPermitted), failing this up "
            "and every later one there. If the replacement is meant, turn the protection off on the old copy "
            f"({commands}) and run the up again: the new copy takes the program's setting")


def _program_options(layer: str, holds: bool = True) -> dict[str, Any]:
    """``refresh`` and ``destroy`` (and their previews) of a :data:`REFRESHED_LAYERS` layer run its program too,
    while its stack ``holds`` resources.

    Without it they act through the provider stored in the state (CLI docs, ``pulumi refresh``/``destroy``
    ``--run-program``: "Run the program to determine up-to-date state for providers"). messaging's provider holds
    the broker's admin password and endpoint as they were at the last ``up``: after a rotation of that password
    (``messaging.credentials_rotation``) or a broker replacement, the stored password is refused (401) or the
    endpoint is gone, so a refresh failed and a destroy could delete nothing of messaging until an ``up`` had run.
    The program reads the current password from Secrets Manager and the endpoint from the broker's stack
    (``--run-program`` on refresh and destroy: Pulumi CLI 3.160). An emptied stack (a second ``destroy``, a
    ``refresh`` after one) has nothing to act on, and its program could not run: the broker's stack, destroyed
    after it, has no outputs left for its StackReference."""
    return {"run_program": True} if layer in REFRESHED_LAYERS and holds else {}


def emptied_upstreams_refusal(layer: str, env: EnvConfig, emptied: Sequence[str], operation: Operation) -> str:
    """Why a :data:`REFRESHED_LAYERS` layer that still holds resources is not refreshed or destroyed when stacks its
    program reads were emptied first (``destroy --layers broker --exact``, or by hand)."""
    stacks = ", ".join(f"{up} ({stack_reference_name(env.pulumi_org, up, env.name)})" for up in emptied)
    done = "refreshed" if operation.action is Action.REFRESH else "deleted"
    return (f"nothing of {layer} was {done}: its stack still holds resources, but the stack of {stacks} holds none "
            f"(destroyed before {layer}). {layer}'s {operation.label} runs its program, which reads those stacks' "
            f"outputs, and the provider its state records calls the deleted broker, so neither can act. Deploy them "
            f"again and {layer} with them: `nox -s up -- {env.name} --layers {','.join([*emptied, layer])}` (its "
            f"refresh drops the objects the deleted broker took with it and creates them on the new one), then run "
            f"the {operation.label} again")


def updated_since_preview_refusal(stack: str, layer: str, newest: str) -> str:
    """Why a layer's ``up`` stopped before it started: another run updated the stack after the preview that the
    replacement check judged (an ``up`` recomputes its plan; run without a saved plan, it would apply to that newer
    state what nobody judged, e.g. delete what the other run just created)."""
    return (f"another run updated {stack} between this run's preview of it and its update (newest in its history "
            f"now: {newest}): the check of what the update replaces or deletes judged the state before, so nothing of "
            f"{layer} was changed and the layers reading it are skipped. Wait for the other run to end and run again "
            "(README, \"Two runs at once\")")


def _say_on_stderr(line: str) -> None:
    sys.stderr.write(f"note: {line}\n")


class AutomationRunner:
    """Runs layers with ``pulumi.automation``; every check that can fail happens in :meth:`prepare`."""

    def __init__(self, *, stacks_dir: Path = STACKS_DIR, policies_dir: Path = POLICIES_DIR,
                 policy_config_dir: Path = POLICY_CONFIG_DIR, repo_root: Path = REPO_ROOT,
                 environ: Mapping[str, str] | None = None,
                 which: Callable[[str], str | None] = shutil.which, lock_reader: LockReader | None = None,
                 checkout: Checkout | None = None,
                 synth: Callable[[str, Sequence[str]], Sequence[dict[str, Any]]] = synth_documents,
                 s3_client: Callable[[str, str | None], Any] | None = None) -> None:
        self.stacks_dir = stacks_dir
        #: (backend URL, profile) -> the boto3 S3 client the env's run lease is written with (default: as the locks
        #: are read, shared.orchestrate.locks)
        self._s3_client = s3_client
        #: the env's run lease while this run holds it (shared.orchestrate.run_lease): taken by prepare, released by
        #: finish
        self._lease: RunLease | None = None
        #: the env's layers synthesized offline, for the packs' config (shared.orchestrate.policy_config)
        self._synth = synth
        #: the git checkout the programs run from, whose HEAD an up must not take back (shared.orchestrate.commits)
        self.checkout = checkout or Checkout(repo_root)
        self._lock_reader = lock_reader
        self.policies_dir = policies_dir
        self.policy_config_dir = policy_config_dir
        self.repo_root = repo_root
        self._environ = environ
        self._which = which
        self._env_vars: dict[str, str] = {}
        self._secrets_provider: str | None = None
        self._backend_env: str | None = None  # the env whose backend _env_vars point at
        self._policy_packs: list[str] = []
        self._policy_configs: list[str] = []
        #: each CLI checked by check_cli_version -> the version it said (None: it did not say)
        self._cli_versions: dict[str, tuple[int, ...] | None] = {}
        self._cli_version: tuple[int, ...] | None = None  # of the CLI the last prepare_read found
        #: (env, layer) -> whether the stack's state holds resources (:func:`holds_resources`), from the identity
        #: check's `stack export` in :meth:`prepare` (False: no stack)
        self._holds: dict[tuple[str, str], bool] = {}
        #: (env, layer) -> the URNs its state marks protect, from the same export
        self._protected: dict[tuple[str, str], list[str]] = {}
        self._unforced: dict[tuple[str, str], list[str]] = {}
        self._load_balancers: dict[tuple[str, str], list[StateLoadBalancer]] = {}
        self._log_groups: dict[tuple[str, str], list[str]] = {}
        #: (env, layer) -> the load balancers its program keeps whose AWS deletion protection is on (name -> ARN), as
        #: the caller found them (:meth:`hold_deletion_protected`): its up may not replace them
        self._deletion_protected: dict[tuple[str, str], dict[str, str]] = {}
        #: (env, layer) -> its changes in flight, which a settle check notes (:meth:`expect_converging`)
        self._converging: dict[tuple[str, str], list[Converging]] = {}
        #: (env, layer) -> the operations its state records as pending (:mod:`shared.orchestrate.pending`), same export
        self._pending: dict[tuple[str, str], list[PendingOperation]] = {}
        #: (env, layer) -> the ids of the Amazon MQ brokers its state holds (:func:`broker_ids`), same export
        self._brokers: dict[tuple[str, str], list[str]] = {}
        self._app_mesh: dict[tuple[str, str], list[str]] = {}
        self._rabbitmq: dict[tuple[str, str], list[str]] = {}
        #: (env, layer) -> whether its stack exists, from the same export
        self._exists: dict[tuple[str, str], bool] = {}
        #: (env, layer) -> the secrets provider its state records (identity.deployed_secrets_provider), same export
        self._secrets_providers: dict[tuple[str, str], str | None] = {}
        self._backend: Backend | None = None  # the backend _env_vars point at
        #: what the orchestrator read for the layer programs (:meth:`program_environment`)
        self._program_environment: dict[str, str] = {}
        self._env_digest = ""  # set by prepare (ENV_DIGEST_VARIABLE); "" hands the programs nothing to compare
        self._judged_digest = ""  # the env file as the run's checks read it (judge_env_file)
        self._cli: auto.PulumiCommand | None = None  # for the commands run outside a workspace
        self._cli_lock = threading.Lock()
        self._shim_root: Path | None = None  # where _cli's shim lives (pulumi_shim)
        #: set by :meth:`interrupt`: a layer starts no further pulumi command
        self._interrupted = threading.Event()

    @property
    def environ(self) -> Mapping[str, str]:
        return os.environ if self._environ is None else self._environ

    def _prepare_backend(self, env: EnvConfig) -> str | None:
        """Resolve and check ``env``'s backend, org and layout; a note when something cannot be checked here."""
        backend = resolve_backend(env, self.environ, self.repo_root)
        check_org(env, backend)
        check_passphrase(backend.url, self.environ, env.state.secrets_provider)
        check_access_token(backend.url, self.environ)
        note = check_layout(backend, self.environ)
        if backend.source.startswith("the default"):
            # The file backend wants its folder to exist; only ever create our own default one.
            (self.repo_root / ".pulumi-state").mkdir(exist_ok=True)
        python_path = [str(self.repo_root), *filter(None, [self.environ.get("PYTHONPATH")])]
        self._env_vars = {
            "PULUMI_BACKEND_URL": backend.url,
            # A stack's secrets provider (its KMS data key, or its passphrase salt) is written to
            # stacks/<layer>/Pulumi.<env>.yaml on the machine that created the stack; a CI runner
            # loses it. Without this the CLI then builds the backend's default secrets manager (a
            # passphrase on S3), fails without PULUMI_CONFIG_PASSPHRASE, or re-encrypts the stack's
            # secrets with whatever passphrase is set (CLI docs, "Environment variables").
            "PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER": "true",
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            # Layer programs and policy packs import the `shared` package from the repo root.
            "PYTHONPATH": os.pathsep.join(python_path),
        }
        # The env's credentials as the orchestrator's own AWS calls take them (preflight, image gate): the profile of
        # PLATFORM_AWS_PROFILE_<ENV> for the provider and the CLI's S3/KMS backend too, else the shell's chain.
        self._env_vars.update(pulumi_credentials(env.name, self.environ))
        key = kms_key(env.state.secrets_provider)
        kms_region = key.cli_region(env.region) if key else None
        if kms_region:
            # an awskms:// URL without region= is opened in the SDK's default region (a laptop profile's may be
            # another, where the alias names no key or another key): the one the roles grant (shared.kms_url); the
            # layers' AWS provider pins its own region, so this steers only the CLI's KMS (and S3 backend) clients
            self._env_vars["AWS_REGION"] = kms_region
        for name in AWS_FILE_VARS:
            # boto3 opened a relative one from here; each `pulumi` runs in stacks/<layer>, where the Go SDK opens the
            # same path relative to that folder (aws-sdk-go-v2 config: os.Open of the variable's value) and would not
            # find the profile the checks used (botocore expands ~ too); one pulumi_credentials emptied stays empty
            if self.environ.get(name) and self._env_vars.get(name) != "":
                self._env_vars[name] = os.path.abspath(os.path.expanduser(self.environ[name]))
        passphrase_file = self.environ.get("PULUMI_CONFIG_PASSPHRASE_FILE")
        if passphrase_file:
            # check_passphrase found it from here; each `pulumi` runs in stacks/<layer> and resolves a
            # relative path from there (filepath.Abs in the CLI's readPassphrase).
            self._env_vars["PULUMI_CONFIG_PASSPHRASE_FILE"] = os.path.abspath(passphrase_file)
        self._secrets_provider = env.state.secrets_provider
        self._backend = backend
        self._backend_env = env.name
        return note

    def prepare_read(self, layers: Sequence[str], env: EnvConfig | None = None) -> list[str]:
        """What any command on these layers' stacks needs: the CLI, the projects and, given ``env``, its
        backend (passphrase, org, layout). Enough for :meth:`stack_outputs`. Returns notes for the user."""
        cli = self._checked_cli()
        for layer in layers:
            check_project(self.stacks_dir, layer)
        note = self._prepare_backend(env) if env is not None else None
        self._cli_version = self._cli_versions.get(cli)
        return [note] if note else []

    def _checked_cli(self) -> str:
        """The CLI on PATH (:func:`require_cli`), its version checked once (:func:`check_cli_version`): first, before
        the backend's and the passphrase's checks, so that a CLI to replace is not reported after settings to fix.
        ``pulumi version`` touches no stack, state or credential; every other `pulumi` call comes after those checks."""
        cli = require_cli(self._which)
        if cli not in self._cli_versions:
            self._cli_versions[cli] = check_cli_version(cli)
        return cli

    def prepare(self, env: EnvConfig, layers: Sequence[str], operation: Operation) -> list[str]:
        self._checked_cli()
        # Where state would go is decided before any `pulumi` call: a refused backend gets none.
        check_local_state(env, resolve_backend(env, self.environ, self.repo_root), operation)
        override = check_backend_override(env, self.environ, operation, self.repo_root)
        notes = [*([override] if override else []), *self.prepare_read(layers, env)]
        self._policy_packs, self._policy_configs = [], []
        # the env file this run's checks judged: every layer program of the run compares its own read with it
        now = env_file_digest(env_path(env.name))
        if self._judged_digest and now != self._judged_digest:
            raise ConfigError(str(env_path(env.name)), "(file)", (
                "changed after this run's checks judged it (a promote, an edit or a checkout in this clone while the "
                "run started): nothing was run. Run again, from a clone nothing else changes during the run"))
        self._env_digest = now
        # One run of the env at a time, from here (every check below judges what no other run of ours changes, and
        # the policy configs below are the env's) to the end of its last layer (finish); a preview takes none, and
        # says when another run holds it.
        notes.extend(self._take_lease(env, layers, operation))
        if operation.action in (Action.PREVIEW, Action.UP):
            for pack in PACKS:
                pack_file = self.policies_dir / pack / "PulumiPolicy.yaml"
                if not pack_file.is_file():
                    raise ConfigError(str(pack_file), "(file)", f"policy pack {pack!r} is missing")
            # no-plaintext-secrets sees secretness only through its config (CrossGuard unwraps secrets): the synth's
            # every layer's (a --layers run beside another run must not leave the env's files with fewer)
            pairs = write_pack_configs(env.name, self.policy_config_dir / env.name, self.policies_dir,
                                       self._synth(env.name, ()))
            self._policy_packs = [str(pack_dir) for pack_dir, _ in pairs]
            self._policy_configs = [str(config) for _, config in pairs]
        # Last, once the backend is known to be usable: the region and account each existing stack was deployed
        # with against the env file's (shared.orchestrate.identity), for every action, before any layer runs.
        check_identity(env, layers, self.deployed_identity, operation.label)
        notes.extend(self._check_secrets_provider(env, layers, operation))
        # up, refresh and destroy lock the stack; preview takes none, nor --preview-only with a CLI from
        # PREVIEW_ONLY_UNLOCKED_SINCE (pkg/backend/diy/backend.go: Refresh and Destroy with PreviewOnly apply as a
        # dry run without b.Lock), so those run beside another run.
        assert self._backend is not None  # set by _prepare_backend, which prepare_read ran
        if takes_lock(operation, self._cli_version, self._backend.is_cloud):
            notes.extend(self._check_locks(env, layers, operation))
        # After the locks: a live run's lock refuses first, since its own in-flight operations are pending too.
        notes.extend(self._check_pending(env, layers, operation))
        if operation.action is Action.UP and not operation.preview_only:
            notes.extend(self._check_commits(env, layers, operation))
        return notes

    def _take_lease(self, env: EnvConfig, layers: Sequence[str], operation: Operation) -> list[str]:
        """The env's run lease for a run that changes infrastructure (EnvBusy, exit 2, while another run holds it);
        for a preview, a note where another run holds it. A note where the backend keeps none (Pulumi Cloud) or it
        cannot be written from here."""
        assert self._backend is not None  # set by _prepare_backend, which prepare_read ran
        if self._lease is not None:
            return []
        if operation.changes_infrastructure and self.environ.get(RUN_LEASE_VAR) == "off":
            return [f"{operation.label} {env.name} runs without the env's run lease ({RUN_LEASE_VAR}=off): another run "
                    "of the env started while this one is between layers is not stopped"]
        profile = pulumi_credentials(env.name, self.environ).get("AWS_PROFILE")
        try:
            # looked up when called: the tests' conftest keeps every test off real buckets through that name
            client = self._s3_client or locks.backend_s3_client
            store = lease_store(self._backend.url, env.name, lambda url: client(url, profile))
            if not operation.changes_infrastructure:
                note = lease_note(store, env.name)
                return [note] if note else []
            if store is None:
                return [f"{operation.label} {env.name} holds no run lease on {self._backend.url} (Pulumi Cloud keeps "
                        "only its per-stack locks): another run of the env started while this one is between layers "
                        "is not stopped (README, \"Two runs at once\")"]
            # held here before it is taken: an interrupt between its write and this method's end still releases it
            self._lease = RunLease(store, env.name, operation.label, layers, environ=self.environ,
                                   say=_say_on_stderr)
            return self._lease.acquire()
        except PlatformError:
            raise
        except Exception as error:  # noqa: BLE001 - any failure to take it: refused, not run unguarded
            if not operation.changes_infrastructure:
                return [f"the env's run lease could not be read ({type(error).__name__}: {error})"]
            # Failing open would let a second run of the env interleave its layers with this one's unseen (review-conc
            # F2): the state is written to the same backend, so what cannot write the lease would fail there too.
            raise PreflightError(
                f"{operation.label} {env.name} refused, nothing was run: the env's run lease could not be taken on "
                f"{self._backend.url} ({type(error).__name__}: {error}). Run again once the backend answers (the "
                "deploy role's state permissions cover the lease); a store without S3's conditional writes takes "
                f"none: set {RUN_LEASE_VAR}=off to run without it (README, \"Two runs at once\")") from None

    def awaiting_user(self) -> contextlib.AbstractContextManager[None]:
        """While the run waits for its user's answer: the run lease is not renewed (an unanswered prompt does not keep
        other runs of the env out for ever: RunLease.paused)."""
        return self._lease.paused() if self._lease is not None else contextlib.nullcontext()

    def finish(self) -> None:
        """The run is over: release the env's run lease (where another run took it over, say so)."""
        lease, self._lease = self._lease, None
        if lease is None:
            return
        lease.release()
        if lease.lost:
            sys.stderr.write(f"warning: this run's lease of {lease.env_name} was taken over by {lease.lost} while "
                             "this run stalled (a suspended machine); layers after that were not started\n")

    def _check_commits(self, env: EnvConfig, layers: Sequence[str], operation: Operation) -> list[str]:
        """OlderCommit (exit 2) when this checkout lacks the commit an existing stack of ``layers`` was last updated
        from (:mod:`shared.orchestrate.commits`); notes for what cannot be judged."""
        deployed: dict[str, DeployedCommit] = {}
        unread: list[str] = []
        uncommitted: list[str] = []  # a history without a commit to judge, and why
        for layer in layers:
            if not self._exists.get((env.name, layer)):
                continue
            name = self.stack_name(layer, env)
            try:
                # --show-secrets off: the history's config stays blinded, nothing is decrypted
                listed = self._pulumi_cli().run(["stack", "history", "--json", "--page-size", str(HISTORY_PAGE),
                                                 "--stack", name], self._work_dir(layer), dict(self._env_vars))
            except auto.CommandError as error:
                unread.append(f"{name} ({failure_detail(error)})")
                continue
            found = parse_history(listed.stdout)
            if isinstance(found, DeployedCommit):
                deployed[name] = found
            elif found is not None:
                uncommitted.append(f"{name}: {found}")
        notes = check_commits(env.name, operation.label, deployed, self.checkout)
        if unread:
            notes.append(f"{NOT_CHECKED}: the update history of {', '.join(unread)} could not be read")
        if uncommitted:
            notes.append(f"{NOT_CHECKED}: no update in the history read names one ({'; '.join(uncommitted)})")
        return notes

    def _newest_update(self, layer: str, env: EnvConfig) -> str | None:
        """The newest entry of the stack's update history (``stack history --json --page-size 1``: updates, refreshes,
        destroys and imports, never previews, which Pulumi Cloud keeps apart, pkg/backend/httpstate/backend.go) as
        comparable text ("[]" for none yet); None when it cannot be read, which leaves the comparison out."""
        try:
            listed = self._pulumi_cli().run(["stack", "history", "--json", "--page-size", "1", "--stack",
                                             self.stack_name(layer, env)], self._work_dir(layer), dict(self._env_vars))
            entries = json.loads(listed.stdout or "[]")
        except (auto.CommandError, ValueError):
            return None
        if not isinstance(entries, list):
            return None
        return json.dumps([{key: entry.get(key) for key in ("version", "kind", "startTime", "endTime", "result")}
                           if isinstance(entry, dict) else entry for entry in entries[:1]], sort_keys=True)

    def _check_pending(self, env: EnvConfig, layers: Sequence[str], operation: Operation) -> list[str]:
        """PendingCreates (exit 2) when an ``up`` or ``destroy`` would run on a stack whose state (read by
        :meth:`deployed_identity`) records a create an earlier update never saw finish (:mod:`.pending`); a note for
        any other action, and for pending operations of other kinds."""
        assert self._backend is not None  # set by _prepare_backend, which prepare_read ran
        creates: dict[str, tuple[str, list[PendingOperation]]] = {}
        others: dict[str, list[PendingOperation]] = {}
        for layer in layers:
            found = self._pending.get((env.name, layer), [])
            if made := [op for op in found if op.kind == CREATING]:
                creates[layer] = (self.stack_name(layer, env), made)
            if rest := [op for op in found if op.kind != CREATING]:
                others[layer] = rest
        notes = [pending_note(env.name, others)] if others else []
        if not creates:
            return notes
        refused = operation.action in (Action.UP, Action.DESTROY) and not operation.preview_only
        message = pending_creates_refusal(env.name, operation.label, creates, self._backend.url,
                                          REFRESHED_LAYERS, refused=refused)
        if refused:
            raise PendingCreates(message)
        return [*notes, message]

    def _check_locks(self, env: EnvConfig, layers: Sequence[str], operation: Operation) -> list[str]:
        """StackLocked (exit 2) when another run holds the lock of a stack of ``layers`` (shared.orchestrate.locks);
        a note when the backend's locks cannot be read from here."""
        assert self._backend is not None  # set by _prepare_backend, which prepare_read ran
        # an s3:// backend as every `pulumi` of the run reads it: the env's profile (pulumi_credentials), if set
        profile = pulumi_credentials(env.name, self.environ).get("AWS_PROFILE")
        reader = self._lock_reader or (self._cloud_locks if self._backend.is_cloud
                                       else functools.partial(read_locks, profile=profile))
        locked: dict[str, list[StackLock]] = {}
        unread: dict[str, None] = {}  # why, once each
        for layer in layers:
            name = self.stack_name(layer, env)
            found = reader(self._backend.url, name)
            if isinstance(found, str):
                unread[found] = None
            elif found:
                locked[name] = found
        if locked:
            raise StackLocked(locked_refusal(env.name, operation.label, locked, self._backend.url))
        if unread:
            return [f"the stack locks on {self._backend.url} were not read ({'; '.join(unread)}): another run holding "
                    "one fails this run at that layer, after the layers before it"]
        return []

    def _cloud_locks(self, url: str, stack: str) -> list[StackLock] | str:
        """The update in progress on ``stack`` on the Pulumi Cloud backend ``url`` (:func:`locks.cloud_locks`): one
        ``pulumi stack ls --json`` in the project's folder, filtered to the stack's org and project (the service's
        list of stacks, no state read, nothing decrypted), or why it cannot be read."""
        org, project, _ = stack.split("/")
        try:
            listed = self._pulumi_cli().run(["stack", "ls", "--json", "--organization", org, "--project", project],
                                            self._work_dir(project), dict(self._env_vars))
        except auto.CommandError as error:
            return failure_detail(error)
        return cloud_locks(listed.stdout, stack)

    def _check_secrets_provider(self, env: EnvConfig, layers: Sequence[str], operation: Operation) -> list[str]:
        """The stacks of ``layers`` whose state records another secrets provider than ``state.secrets_provider``
        names (read by :meth:`deployed_identity`): ``up`` is refused (IdentityError, exit 2), since it would create
        new stacks with the one and keep the others on the other; any other action gets a note."""
        assert self._backend is not None  # set by _prepare_backend, which prepare_read ran
        wanted = wanted_secrets_provider(env, self._backend.is_cloud)
        deployed = {self.stack_name(layer, env): provider for layer in layers
                    if (provider := self._secrets_providers.get((env.name, layer))) not in (None, wanted)}
        notes = self._check_stack_settings(env, layers, operation)
        if not deployed:
            return notes
        refused = operation.action is Action.UP and not operation.preview_only
        # the variables the printed commands need to act as this run's own `pulumi` would: the backend, and what this
        # run sets otherwise than the shell (the env's profile with the shell's keys emptied, the key's region, file
        # paths made absolute for stacks/<layer>); change-secrets-provider builds the new key's manager from the
        # settings file alone: PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER plays no part there
        # (pkg/cmd/pulumi/stack/stack_change_secrets_provider.go)
        names = ("AWS_PROFILE", "AWS_REGION", *AMBIENT_CREDENTIAL_VARS, *AWS_FILE_VARS, "PULUMI_CONFIG_PASSPHRASE_FILE")
        variables = {"PULUMI_BACKEND_URL": self._env_vars["PULUMI_BACKEND_URL"],
                     **{name: self._env_vars[name] for name in dict.fromkeys(names)
                        if name in self._env_vars and self._env_vars[name] != self.environ.get(name)}}
        message = secrets_provider_refusal(env, wanted, {name: str(p) for name, p in deployed.items()},
                                           variables, operation.label, refused)
        if refused:
            raise IdentityError(message)
        return [*notes, message]

    def _check_stack_settings(self, env: EnvConfig, layers: Sequence[str], operation: Operation) -> list[str]:
        """Each layer's ``stacks/<layer>/Pulumi.<env>.yaml`` on this machine (the settings file of the stack,
        ``pulumi.automation``'s get_stack_settings_name: the last part of ``<org>/<layer>/<env>``) that names another
        secrets provider than the stack's state: refused (IdentityError, exit 2) for a run that writes state, a note
        for one that does not."""
        from shared.yamlio import load_yaml_mapping

        stale: dict[str, tuple[str, str, str]] = {}
        for layer in layers:
            deployed = self._secrets_providers.get((env.name, layer))
            settings = self.stacks_dir / layer / f"Pulumi.{env.name}.yaml"
            if deployed is None or not settings.is_file():
                continue
            local = settings_secrets_provider(load_yaml_mapping(settings))
            if local is not None and local != deployed:
                stale[str(settings)] = (self.stack_name(layer, env), local, deployed)
        if not stale:
            return []
        message = stale_settings_refusal(stale, operation.label, env.name, operation.changes_infrastructure)
        if operation.changes_infrastructure:
            raise IdentityError(message)
        return [message]

    def _options(self, targeted: bool = False) -> auto.LocalWorkspaceOptions:
        # secrets_provider only matters when a stack is created (`pulumi stack init --secrets-provider`);
        # an existing stack keeps the provider it was created with.
        # "0" for every other run, whatever the caller's shell exports
        marker = {TARGETED_VARIABLE: "1" if targeted else "0", ENV_DIGEST_VARIABLE: self._env_digest}
        return auto.LocalWorkspaceOptions(env_vars={**self._program_environment, **marker, **self._env_vars},
                                          secrets_provider=self._secrets_provider, pulumi_command=self._pulumi_cli())

    def judge_env_file(self, digest: str) -> None:
        """The SHA-256 of the env file as the run loaded it, before its checks: :meth:`prepare` refuses the run where
        the file reads otherwise by then, and hands the programs this digest."""
        self._judged_digest = digest

    def program_environment(self, values: Mapping[str, str]) -> None:
        """Variables the layer programs of the later operations read (the broker program: what the env's broker runs,
        :data:`shared.broker_capacity.RUNNING_BROKER_VARIABLE`)."""
        self._program_environment = dict(values)

    def expect_converging(self, env_name: str, changes: Mapping[str, Sequence[Converging]]) -> None:
        """The changes in flight of each layer (:func:`shared.orchestrate.settled.converging`) that a ``preview
        --expect-no-changes`` notes instead of failing the layer for."""
        for layer, converging in changes.items():
            self._converging[(env_name, layer)] = list(converging)

    def hold_deletion_protected(self, layer: str, env: EnvConfig, held: Mapping[str, str]) -> None:
        """The load balancers of ``layer`` (resource name -> ARN) whose AWS deletion protection the caller found on
        (:class:`shared.orchestrate.images.ImageGatedRunner` asks ELB): an ``up`` whose preview replaces one is
        refused before it starts (:func:`replaced_protected_load_balancer_refusal`)."""
        self._deletion_protected[(env.name, layer)] = dict(held)

    def _work_dir(self, layer: str) -> str:
        return str(self.stacks_dir / layer)

    @staticmethod
    def stack_name(layer: str, env: EnvConfig) -> str:
        """``<org>/<project>/<env>``; the project is named after the layer (:func:`check_project`)."""
        return stack_reference_name(env.pulumi_org, layer, env.name)

    def run(self, layer: str, env: EnvConfig, operation: Operation, on_output: OutputSink) -> LayerResult:
        try:
            return self._run(layer, env, operation, on_output)
        except auto.ConcurrentUpdateError as error:
            # Another run took the stack after the up-front check (prepare): which stack, on which backend, a
            # `pulumi cancel` would release, and what it does there, instead of the CLI's bare `pulumi cancel`.
            backend = self._backend.url if self._backend else None
            return LayerResult(layer, Status.FAILED,
                               detail=locked_detail(error, self.stack_name(layer, env), backend) or str(error))

    def _run(self, layer: str, env: EnvConfig, operation: Operation, on_output: OutputSink) -> LayerResult:
        streams: dict[str, Any] = {"on_output": on_output, "on_error": on_output, "color": "never",
                                   "suppress_progress": True}
        policies: dict[str, Any] = {"policy_packs": self._policy_packs,
                                    "policy_pack_configs": self._policy_configs}
        action = operation.action
        name = self.stack_name(layer, env)
        changes: Mapping[Any, int] | None
        if stopped := self._not_started(layer, "its stack was selected"):
            return stopped
        if self._lease is not None:
            with contextlib.suppress(Exception):  # renewed before each layer: a run that stalled finds out here
                self._lease.renew()
        if self._lease is not None and self._lease.lost:
            return LayerResult(layer, Status.FAILED, detail=(
                f"not started: this run's lease of {env.name} was taken over by {self._lease.lost} while this run "
                "stalled (a suspended machine); run again once that run has ended"))
        if action is Action.PREVIEW:
            try:
                stack = auto.select_stack(stack_name=name, work_dir=self._work_dir(layer), opts=self._options())
            except auto.StackNotFoundError:
                # A layer never deployed is previewed in a new, empty stack: `pulumi stack init` writes the stack's
                # file (and a self-managed backend's lock) to the backend, which a read-only role may not
                # (pkg/backend/diy/backend.go createStack); a deployed stack's preview writes nothing.
                try:
                    stack = auto.create_stack(stack_name=name, work_dir=self._work_dir(layer), opts=self._options())
                except auto.CommandError as error:
                    # On Pulumi Cloud the stack is created by the service for PULUMI_ACCESS_TOKEN, whose role may
                    # preview with Stack Read but needs the org's stack create permission (Pulumi Cloud RBAC,
                    # permission sets); the AWS read role plays no part there.
                    who = ("a Pulumi access token (PULUMI_ACCESS_TOKEN) whose role may read the org's stacks but "
                           "not create one" if self._backend is not None and self._backend.is_cloud else
                           "credentials that may only read the backend (the pull request's read role)")
                    return LayerResult(layer, Status.FAILED, detail=(
                        f"no stack {name} yet, and its preview could not create one ({failure_detail(error)}): a "
                        f"layer never deployed is previewed in a new, empty stack (`pulumi stack init`), which "
                        f"{who} cannot create; its first up creates it"))
            # What the up's own preview would refuse (shared.orchestrate.replacements), said here: the plan shows a
            # replace among its changes, but the up is refused (exit 1; CI deploys have no --allow-replace).
            recorder = ChangeRecorder()  # the replacement guard, and every change for a settle check
            changes = stack.preview(**streams, **policies, **_refresh_options(layer),
                                    on_event=recorder.on_event).change_summary
            destroyed = recorder.destructions()
            for item in destroyed:
                on_output(f"note: up refuses without --allow-replace: {item.describe()}")
            said = (f"up refuses: it destroys stateful {', '.join(sorted({item.type for item in destroyed}))} "
                    "(--allow-replace, above)") if destroyed else ""
            if operation.expect_no_changes and (proposed := recorder.collected()):
                unexpected, in_flight = sort_changes(proposed, self._converging.get((env.name, layer), []))
                for change in unexpected:
                    on_output(f"not settled: {describe_change(change)}")
                for change, covering in in_flight:
                    on_output(f"in flight: {describe_change(change)}: {covering.why}")
                reasons = dict.fromkeys(covering.why for _, covering in in_flight)
                flight = f"changes in flight: {'; '.join(reasons)}" if reasons else ""
                if unexpected:
                    return LayerResult(layer, Status.FAILED, _ops(changes), unsettled=True, detail="; ".join(
                        filter(None, (unsettled_detail(layer, env.name, unexpected), flight, said))))
                said = "; ".join(filter(None, (flight, said)))
            return LayerResult(layer, Status.SUCCEEDED, _ops(changes), detail=said)
        if action is Action.UP:
            stack = auto.create_or_select_stack(stack_name=name, work_dir=self._work_dir(layer),
                                                opts=self._options(targeted=bool(operation.targets)))
            # The same update previewed first: a stateful resource it would replace or delete stops it
            # here, before anything changed, unless the user named it (shared.orchestrate.replacements).
            guard = ReplacementGuard()
            if stopped := self._not_started(layer, "its preview"):
                return stopped
            judged = self._newest_update(layer, env)  # what the preview is of (a preview takes no lock)
            stack.preview(**streams, **policies, **_target_options(operation), **_refresh_options(layer),
                          on_event=guard.on_event)
            verdict = judge(guard.destructions(), operation.allow_replace, layer)
            for item in verdict.allowed:
                on_output(f"allowed by --allow-replace: {item.describe()}")
            for urn in verdict.unused:
                on_output(f"note: --allow-replace {urn}: the preview neither replaces nor deletes it")
            if verdict.refused:
                for item in verdict.refused:
                    on_output(f"refused: {item.describe()}")
                return LayerResult(layer, Status.FAILED, detail=verdict.refusal(layer, env.name))
            held = self._deletion_protected.get((env.name, layer), {})
            # a replacement only: a bare delete under the kept one's URN is the old copy a failed replacement left
            # (the same URN, marked delete), whose own flag the image gate asked ELB about before the up
            blocked = [(item, held[name]) for item in guard.destroyed()
                       if item.type in LOAD_BALANCER_TYPES and item.verb == "replace"
                       and (name := item.urn.rsplit("::", 1)[-1]) in held]
            if blocked:
                for item, arn in blocked:
                    on_output(f"refused: {item.describe()}: AWS deletion protection on ({arn})")
                return LayerResult(layer, Status.FAILED,
                                   detail=replaced_protected_load_balancer_refusal(layer, env, blocked))
            if stopped := self._not_started(layer, "its update"):
                return stopped
            if judged is not None and (newest := self._newest_update(layer, env)) not in (None, judged):
                return LayerResult(layer, Status.FAILED, detail=updated_since_preview_refusal(name, layer, newest))
            changes = stack.up(**streams, **policies, **_target_options(operation),
                               **_refresh_options(layer)).summary.resource_changes
            return LayerResult(layer, Status.SUCCEEDED, _ops(changes))
        # refresh and destroy act on what exists: creating an empty stack to refresh or destroy it
        # would only leave litter in the backend.
        try:
            stack = auto.select_stack(stack_name=name, work_dir=self._work_dir(layer), opts=self._options())
        except auto.StackNotFoundError:
            if action is Action.DESTROY:
                return LayerResult(layer, Status.SUCCEEDED, detail=f"no stack {name!r}: nothing to destroy")
            return LayerResult(layer, Status.FAILED,
                               detail=f"no stack {name!r} yet: run `nox -s up -- {env.name}` first")
        program = _program_options(layer, self._holds.get((env.name, layer), True))
        emptied = self._emptied_upstreams(layer, env) if program else []
        if emptied:
            return LayerResult(layer, Status.FAILED, detail=emptied_upstreams_refusal(layer, env, emptied, operation))
        if stopped := self._not_started(layer, f"its {action.value}"):
            return stopped
        if action is Action.REFRESH:
            if operation.preview_only:
                changes = stack.preview_refresh(**streams, **program).change_summary
            else:
                changes = stack.refresh(**streams, **program).summary.resource_changes
        elif program and self._protected.get((env.name, layer)):
            # With --run-program the engine deletes each resource as the program registers it now, protect included
            # (destroy mode same-steps the program's new state, whose protect DeleteStep.Apply checks): an env file
            # whose protect_stateful was turned off but never deployed would delete what the state still protects.
            # Every other layer's destroy goes by the state's protect, so this one does too.
            urns = self._protected[(env.name, layer)]
            more = f", and {len(urns) - 5} more (`pulumi stack export --stack {name}`)" if len(urns) > 5 else ""
            return LayerResult(layer, Status.FAILED, detail=(
                f"nothing of {layer} was deleted: its state marks {len(urns)} resource(s) protect: "
                + ", ".join(f"`pulumi state unprotect --stack {name} '{urn}'`" for urn in urns[:5])
                + f"{more}, run in stacks/{layer}, releases each one that is really meant to go"))
        elif operation.preview_only:
            changes = stack.preview_destroy(**streams, **program).change_summary
        else:
            # The engine refuses a protected resource's delete only when that step runs (DeleteStep.Apply),
            # and the Automation API's destroy passes --skip-preview: every delete scheduled before it (in
            # prod: the services, load balancer and roles around a protected repository) would already be
            # done. The preview runs the same check on every step and deletes nothing.
            try:
                stack.preview_destroy(**streams, **program)
            except auto.CommandError as error:
                return LayerResult(layer, Status.FAILED, detail=(
                    f"nothing of {layer} was deleted: its destroy preview failed ({failure_detail(error)}). A "
                    f"resource marked protect stops a destroy here; `pulumi state unprotect --stack {name} '<URN>'` "
                    f"in stacks/{layer} releases one that is really meant to go (without --stack the CLI acts on "
                    "the stack selected in that folder, and a non-interactive run has none)"))
            if stopped := self._not_started(layer, "its destroy"):
                return stopped
            changes = stack.destroy(**streams, **program).summary.resource_changes
        return LayerResult(layer, Status.SUCCEEDED, _ops(changes))

    def _not_started(self, layer: str, before: str) -> LayerResult | None:
        """NOT_RUN when the run was interrupted before ``layer``'s next pulumi command (:meth:`interrupt`): nobody
        would signal a ``pulumi`` started after the interrupt, and its update would run to its end."""
        if not self._interrupted.is_set():
            return None
        return LayerResult(layer, Status.NOT_RUN, detail=f"the run was interrupted before {before}; nothing of it "
                                                         "was started")

    def _emptied_upstreams(self, layer: str, env: EnvConfig) -> list[str]:
        """The layer whose stack names ``layer``'s management endpoint (the broker's), when that stack has no outputs
        (destroyed, or never deployed): the program's StackReference read would fail it (shared.contracts.Upstream)
        before it could refresh or delete anything, and the provider the state records calls the deleted broker."""
        source = endpoint_layer(layer)
        if source == layer:
            return []
        try:
            outputs = self.stack_outputs(source, env)
        except auto.CommandError:
            return []  # unreadable here: the layer's own run reports what the CLI says
        return [] if outputs else [source]

    def deployed_identity(self, layer: str, env: EnvConfig) -> Deployed | None:
        """The region and account ``layer``'s stack was deployed with (its AWS provider in the state), None when
        the stack does not exist (a first ``up``) or holds no AWS provider; IdentityError (exit 2) when its state
        cannot be read. Call :meth:`prepare_read` (or :meth:`prepare`) first."""
        if self._backend_env != env.name:
            self._prepare_backend(env)
        name = self.stack_name(layer, env)
        try:
            try:
                deployment = export_as_stored(self._pulumi_cli(), name, self._work_dir(layer), self._env_vars)
            except auto.StackNotFoundError:
                self._exists[(env.name, layer)] = False
                self._holds[(env.name, layer)] = False
                self._secrets_providers.pop((env.name, layer), None)
                self._pending.pop((env.name, layer), None)
                self._brokers[(env.name, layer)] = []
                self._app_mesh[(env.name, layer)] = []
                self._rabbitmq[(env.name, layer)] = []
                self._log_groups[(env.name, layer)] = []
                return None
            self._exists[(env.name, layer)] = True
            self._holds[(env.name, layer)] = holds_resources(deployment)
            self._protected[(env.name, layer)] = protected_urns(deployment)
            self._unforced[(env.name, layer)] = unforced_buckets(deployment)
            self._load_balancers[(env.name, layer)] = state_load_balancers(deployment)
            self._log_groups[(env.name, layer)] = log_group_names(deployment)
            self._pending[(env.name, layer)] = pending_operations(deployment)
            self._brokers[(env.name, layer)] = broker_ids(deployment)
            self._app_mesh[(env.name, layer)] = app_mesh_urns(deployment)
            self._rabbitmq[(env.name, layer)] = rabbitmq_urns(deployment)
            self._secrets_providers[(env.name, layer)] = deployed_secrets_provider(deployment)
            return deployed_from_state(deployment, layer, env, name)
        except (auto.CommandError, ValueError, KeyError, TypeError) as error:  # JSONDecodeError is a ValueError
            why = failure_detail(error) if isinstance(error, auto.CommandError) else str(error) or repr(error)
            kind = "has an unexpected shape" if isinstance(error, UnreadableState) else "could not be read"
            raise IdentityError(
                f"the state of stack {name} {kind} ({why}), so whether {env_path(env.name)} still names the region "
                f"and account it was deployed with cannot be checked; nothing was run. Check that the backend answers "
                f"(`pulumi stack export --stack {name}` in stacks/{layer}) and run again. Before a new env's first up, "
                f"its backend ({self._backend.url if self._backend else 'the state backend'}) must exist: no run "
                f"creates an S3 bucket or KMS key for state (README, \"Where state lives\").") from None

    def holds_resources(self, layer: str, env: EnvConfig) -> bool | None:
        """Whether ``layer``'s stack held resources when :meth:`prepare` read it (False: none, or no stack); None
        when it was not read."""
        return self._holds.get((env.name, layer))

    def state_log_groups(self, layer: str, env: EnvConfig) -> list[str] | None:
        """The log groups ``layer``'s state held when :meth:`prepare` read it (none: no stack); None when it was not
        read."""
        found = self._log_groups.get((env.name, layer))
        return None if found is None else list(found)

    def state_broker_ids(self, layer: str, env: EnvConfig) -> list[str] | None:
        """The ids of the Amazon MQ brokers ``layer``'s state held when :meth:`prepare` read it (none: no stack); None
        when it was not read."""
        found = self._brokers.get((env.name, layer))
        return None if found is None else list(found)

    def app_mesh_urns(self, layer: str, env: EnvConfig) -> list[str] | None:
        """The URNs of the App Mesh resources ``layer``'s state held when :meth:`prepare` read it, in the state's
        order; None when it was not read."""
        found = self._app_mesh.get((env.name, layer))
        return None if found is None else list(found)

    def state_backend_url(self, layer: str, env: EnvConfig) -> str | None:
        """The URL of the backend ``layer``'s stack of ``env`` lives on (one backend holds every layer of an env), once
        :meth:`prepare` resolved it; None before."""
        return self._backend.url if self._backend is not None and self._backend_env == env.name else None

    def rabbitmq_urns(self, layer: str, env: EnvConfig) -> list[str] | None:
        """The URNs of the RabbitMQ objects ``layer``'s state held when :meth:`prepare` read it, in the order they can
        be dropped from it; None when it was not read."""
        found = self._rabbitmq.get((env.name, layer))
        return None if found is None else list(found)

    def protected_urns(self, layer: str, env: EnvConfig) -> list[str] | None:
        """The URNs ``layer``'s state marked protect when :meth:`prepare` read it; None when it was not read."""
        if (env.name, layer) not in self._holds:
            return None
        return list(self._protected.get((env.name, layer), []))

    def unforced_buckets(self, layer: str, env: EnvConfig) -> list[str] | None:
        """The S3 buckets ``layer``'s state held without ``force_destroy`` when :meth:`prepare` read it
        (:func:`unforced_buckets`); None when it was not read."""
        if (env.name, layer) not in self._holds:
            return None
        return list(self._unforced.get((env.name, layer), []))

    def state_load_balancers(self, layer: str, env: EnvConfig) -> list[StateLoadBalancer] | None:
        """The load balancers ``layer``'s state held when :meth:`prepare` read it (:func:`state_load_balancers`);
        None when it was not read."""
        if (env.name, layer) not in self._holds:
            return None
        return list(self._load_balancers.get((env.name, layer), []))

    def _pulumi_cli(self) -> auto.PulumiCommand:
        """One ``pulumi`` for the runner's own reads (its creation runs ``pulumi version`` once), where each
        ``select_stack`` would build a workspace (``pulumi version``) and select the stack (``pulumi stack select``)
        before the one command needed. Every command goes through :func:`pulumi_shim`."""
        with self._cli_lock:
            if self._cli is None:
                root = Path(tempfile.mkdtemp(prefix="ml-platform-pulumi-"))
                weakref.finalize(self, shutil.rmtree, root, True)
                pulumi_shim(require_cli(self._which), root)
                self._shim_root = root
                if self._interrupted.is_set():
                    (root / INTERRUPTED_MARKER).touch()
                self._cli = auto.PulumiCommand(root=str(root))
            return self._cli

    def interrupt(self, terminate: bool = False) -> None:
        """No further ``pulumi`` command starts (:meth:`_not_started`, and the shim's marker for one whose layer had
        checked just before), and SIGINT goes to every ``pulumi`` process this one started: the CLI then cancels its
        update cleanly (finishes in-flight resource operations, writes state, releases the stack lock). Only this
        relay reaches them, whatever signal the run got and however often (each runs in a process group of its own:
        :func:`pulumi_shim`), so it is sent once, on the first interrupt; again only with ``terminate`` (the
        operator's second Ctrl-C), which the CLI reads as "terminate now", as in a terminal."""
        with self._cli_lock:
            first = not self._interrupted.is_set()
            self._interrupted.set()
            if self._shim_root is not None:  # before the relay looks: a pulumi it misses finds the marker
                (self._shim_root / INTERRUPTED_MARKER).touch()
        if not (first or terminate):
            return
        for pid in pulumi_children(os.getpid()):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGINT)

    def stack_exists(self, layer: str, env: EnvConfig) -> bool:
        """Whether ``layer``'s stack ``<org>/<layer>/<env>`` exists on the backend: ``pulumi stack select``, which
        looks the stack up and builds no secrets manager. :meth:`stack_outputs` (the Automation API's ``stack output
        --show-secrets``) decrypts the outputs with the stack's secrets provider, which an existence question does not
        need (a preview's read-only role may not decrypt). Call :meth:`prepare_read` (or :meth:`prepare`) first."""
        if self._backend_env != env.name:
            self._prepare_backend(env)
        try:
            auto.select_stack(stack_name=self.stack_name(layer, env), work_dir=self._work_dir(layer),
                              opts=self._options())
        except auto.StackNotFoundError:
            return False
        return True

    def stack_outputs(self, layer: str, env: EnvConfig | str) -> dict[str, Any] | None:
        """The outputs of ``layer``'s stack ``<org>/<layer>/<env>`` (None when that stack does not exist).

        Call :meth:`prepare_read` (or :meth:`prepare`) first.
        """
        env = load_env(env) if isinstance(env, str) else env
        if self._backend_env != env.name:
            self._prepare_backend(env)
        try:
            stack = auto.select_stack(stack_name=self.stack_name(layer, env), work_dir=self._work_dir(layer),
                                      opts=self._options())
        except auto.StackNotFoundError:
            return None
        return {name: output.value for name, output in stack.outputs().items()}


def export_as_stored(cli: auto.PulumiCommand, stack: str, work_dir: str, env_vars: Mapping[str, str]) -> Any:
    """The ``deployment`` of ``pulumi stack export`` without ``--show-secrets``: the state as the backend stores it,
    each secret as ciphertext. The Automation API's ``export_stack`` always passes ``--show-secrets``, with which the
    CLI decrypts every secret of the state with the stack's secrets provider (pkg/cmd/pulumi/stack/stack_export.go:
    DeserializeUntypedDeployment, then a secrets-decryption audit event): a reader of non-secret values would need
    the decrypt right and hold every plaintext secret of the stack. One command, run as a workspace runs its own
    (LocalWorkspace._run_pulumi_cmd_sync: the project's folder, the workspace's environment, ``--non-interactive``);
    a stack that does not exist is the CLI's "no stack named ... found", auto.StackNotFoundError."""
    result = cli.run(["stack", "export", "--stack", stack], work_dir, dict(env_vars))
    exported = json.loads(result.stdout)
    if not isinstance(exported, dict):
        raise UnreadableState(f"`pulumi stack export` printed a JSON {type(exported).__name__}, not an object")
    return exported.get("deployment")


def pulumi_children(parent: int) -> list[int]:
    """Pids of the live ``pulumi`` processes whose parent is ``parent``: Linux's /proc, else ``ps`` (macOS)."""
    proc = Path("/proc")
    if not proc.is_dir():
        return _pulumi_children_from_ps(parent)
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        if fields.get("PPid", "").strip() == str(parent) and fields.get("Name", "").strip().startswith("pulumi") \
                and not fields.get("State", "").startswith("Z"):
            found.append(int(entry.name))
    return sorted(found)


def _pulumi_children_from_ps(parent: int) -> list[int]:
    """:func:`pulumi_children` where there is no /proc. POSIX ``ps`` options only (macOS's BSD ps has no ``--ppid``
    nor ``-C``); its ``comm`` is the executable's path as started, a zombie's ``<defunct>``."""
    try:
        listing = subprocess.run(["ps", "-A", "-o", "pid=", "-o", "ppid=", "-o", "comm="], capture_output=True,
                                 text=True, timeout=30, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []  # nothing to relay to: the run still ends as interrupted, its layers waited for
    found = []
    for line in listing.splitlines():
        fields = line.split(None, 2)
        if len(fields) == 3 and fields[0].isdigit() and fields[1] == str(parent) \
                and os.path.basename(fields[2].strip()).startswith("pulumi"):
            found.append(int(fields[0]))
    return sorted(found)
