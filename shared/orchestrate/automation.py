"""The real runner: Pulumi Automation API over the projects in ``stacks/<layer>``.

Each layer is its own Pulumi project; its stack for an environment is named after the environment
(``dev``, ``staging``, ``prod``), so StackReferences read ``<org>/<layer>/<env>``.

State lives in a self-managed file backend inside the repo (``.pulumi-state/``, git-ignored) unless
``PULUMI_BACKEND_URL`` names another backend. Self-managed backends (``file://``, ``s3://``,
``gs://``, ``azblob://``) encrypt stack secrets with a passphrase, so one is required for them; the
Pulumi Cloud backend (``https://...``) encrypts secrets itself and needs none.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pulumi import automation as auto

from shared import REPO_ROOT
from shared.envs import EnvConfig
from shared.errors import ConfigError, PlatformError
from shared.orchestrate.model import Action, LayerResult, Operation, OutputSink, Status
from shared.orchestrate.policy_config import POLICIES_DIR, write_pack_configs
from shared.policy_catalog import PACKS

STACKS_DIR = REPO_ROOT / "stacks"
POLICY_CONFIG_DIR = REPO_ROOT / "build" / "policy-config"
INSTALL_URL = "https://www.pulumi.com/docs/install/"
PASSPHRASE_VARS = ("PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE")


class PreflightError(PlatformError):
    """Something a real run needs is missing from this machine (exit 2: nothing was run)."""

    exit_code = 2


def require_cli(which: Callable[[str], str | None] = shutil.which) -> str:
    """The path of the ``pulumi`` CLI, or a PreflightError saying what to install."""
    path = which("pulumi")
    if path is None:
        raise PreflightError(
            "The Pulumi CLI (`pulumi`) is not on PATH. Real runs (preview, up, destroy, refresh) go "
            "through the Pulumi Automation API, which drives that CLI. Install it from "
            f"{INSTALL_URL} (for example `curl -fsSL https://get.pulumi.com | sh`, then add "
            "~/.pulumi/bin to PATH) and try again. Without it, `nox -s synth -- ENV` (offline synth) "
            "and `nox -s policy -- ENV` (offline policy checks) work with nothing but Python."
        )
    return path


def backend_url(environ: Mapping[str, str], repo_root: Path = REPO_ROOT) -> str:
    """``PULUMI_BACKEND_URL`` if set, else the file backend in ``<repo>/.pulumi-state``."""
    return environ.get("PULUMI_BACKEND_URL") or (repo_root / ".pulumi-state").as_uri()


def backend_encrypts_secrets(url: str) -> bool:
    """Whether the backend encrypts stack secrets itself (Pulumi Cloud) rather than with a passphrase."""
    return url.startswith(("https://", "http://"))


def check_passphrase(url: str, environ: Mapping[str, str]) -> None:
    """A self-managed backend needs the passphrase that encrypts its stacks' secrets; ConfigError if unset."""
    if backend_encrypts_secrets(url):
        return
    if "PULUMI_CONFIG_PASSPHRASE" in environ:  # an empty passphrase is a valid (if weak) choice
        return
    passphrase_file = environ.get("PULUMI_CONFIG_PASSPHRASE_FILE")
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
        "backend (PULUMI_BACKEND_URL=https://api.pulumi.com) needs no passphrase.",
    )


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


class AutomationRunner:
    """Runs layers with ``pulumi.automation``; every check that can fail happens in :meth:`prepare`."""

    def __init__(self, *, stacks_dir: Path = STACKS_DIR, policies_dir: Path = POLICIES_DIR,
                 policy_config_dir: Path = POLICY_CONFIG_DIR, repo_root: Path = REPO_ROOT,
                 environ: Mapping[str, str] | None = None,
                 which: Callable[[str], str | None] = shutil.which) -> None:
        self.stacks_dir = stacks_dir
        self.policies_dir = policies_dir
        self.policy_config_dir = policy_config_dir
        self.repo_root = repo_root
        self._environ = environ
        self._which = which
        self._env_vars: dict[str, str] = {}
        self._policy_packs: list[str] = []
        self._policy_configs: list[str] = []

    @property
    def environ(self) -> Mapping[str, str]:
        return os.environ if self._environ is None else self._environ

    def prepare_read(self, layers: Sequence[str]) -> None:
        """What any command on these layers' stacks needs: the CLI, the backend and its passphrase,
        the projects. Enough for :meth:`stack_outputs`."""
        require_cli(self._which)
        url = backend_url(self.environ, self.repo_root)
        check_passphrase(url, self.environ)
        for layer in layers:
            check_project(self.stacks_dir, layer)
        if not self.environ.get("PULUMI_BACKEND_URL"):
            # The file backend wants its folder to exist; only ever create our own default one.
            (self.repo_root / ".pulumi-state").mkdir(exist_ok=True)
        python_path = [str(self.repo_root), *filter(None, [self.environ.get("PYTHONPATH")])]
        self._env_vars = {
            "PULUMI_BACKEND_URL": url,
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            # Layer programs and policy packs import the `shared` package from the repo root.
            "PYTHONPATH": os.pathsep.join(python_path),
        }

    def prepare(self, env: EnvConfig, layers: Sequence[str], operation: Operation) -> None:
        self.prepare_read(layers)
        self._policy_packs, self._policy_configs = [], []
        if operation.action in (Action.PREVIEW, Action.UP):
            for pack in PACKS:
                pack_file = self.policies_dir / pack / "PulumiPolicy.yaml"
                if not pack_file.is_file():
                    raise ConfigError(str(pack_file), "(file)", f"policy pack {pack!r} is missing")
            pairs = write_pack_configs(env.name, self.policy_config_dir / env.name, self.policies_dir)
            self._policy_packs = [str(pack_dir) for pack_dir, _ in pairs]
            self._policy_configs = [str(config) for _, config in pairs]

    def _options(self) -> auto.LocalWorkspaceOptions:
        return auto.LocalWorkspaceOptions(env_vars=dict(self._env_vars))

    def _work_dir(self, layer: str) -> str:
        return str(self.stacks_dir / layer)

    def run(self, layer: str, env: EnvConfig, operation: Operation, on_output: OutputSink) -> LayerResult:
        streams: dict[str, Any] = {"on_output": on_output, "on_error": on_output, "color": "never",
                                   "suppress_progress": True}
        policies: dict[str, Any] = {"policy_packs": self._policy_packs,
                                    "policy_pack_configs": self._policy_configs}
        action = operation.action
        changes: Mapping[Any, int] | None
        if action in (Action.PREVIEW, Action.UP):
            stack = auto.create_or_select_stack(stack_name=env.name, work_dir=self._work_dir(layer),
                                                opts=self._options())
            if action is Action.PREVIEW:
                changes = stack.preview(**streams, **policies).change_summary
            else:
                changes = stack.up(**streams, **policies, **_target_options(operation)).summary.resource_changes
            return LayerResult(layer, Status.SUCCEEDED, _ops(changes))
        # refresh and destroy act on what exists: creating an empty stack to refresh or destroy it
        # would only leave litter in the backend.
        try:
            stack = auto.select_stack(stack_name=env.name, work_dir=self._work_dir(layer), opts=self._options())
        except auto.StackNotFoundError:
            if action is Action.DESTROY:
                return LayerResult(layer, Status.SUCCEEDED, detail=f"no stack {env.name!r}: nothing to destroy")
            return LayerResult(layer, Status.FAILED,
                               detail=f"no stack {env.name!r} yet: run `nox -s up -- {env.name}` first")
        if action is Action.REFRESH:
            if operation.preview_only:
                changes = stack.preview_refresh(**streams).change_summary
            else:
                changes = stack.refresh(**streams).summary.resource_changes
        elif operation.preview_only:
            changes = stack.preview_destroy(**streams).change_summary
        else:
            changes = stack.destroy(**streams).summary.resource_changes
        return LayerResult(layer, Status.SUCCEEDED, _ops(changes))

    def stack_outputs(self, layer: str, env_name: str) -> dict[str, Any] | None:
        """The outputs of ``layer``'s stack ``env_name`` (None when that stack does not exist).

        Call :meth:`prepare_read` (or :meth:`prepare`) first.
        """
        try:
            stack = auto.select_stack(stack_name=env_name, work_dir=self._work_dir(layer), opts=self._options())
        except auto.StackNotFoundError:
            return None
        return {name: output.value for name, output in stack.outputs().items()}
