"""What one orchestrated run is made of: an operation, per-layer results, and the runner interface.

The scheduler (:mod:`shared.orchestrate.scheduler`) only knows these types, so it runs the same
with the real Pulumi Automation API (:mod:`shared.orchestrate.automation`) and with a test double.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

from shared.envs import EnvConfig

#: Set to ``1`` in the layer program's environment for a targeted update (``up --target``: the image gate's registry
#: step, shared.orchestrate.images). The engine still sets the stack's outputs from what the program exports (pulumi
#: pkg/resource/deploy/step_executor.go, executeRegisterResourceOutputs: the root stack's outputs are not filtered by
#: target), while every resource not targeted keeps its state: a layer whose outputs record what runs (compute's
#: services, subnets and called ports) exports its last record instead (shared.layer.Layer.targeted).
TARGETED_VARIABLE = "PLATFORM_TARGETED_UPDATE"
#: The SHA-256 of the env file the orchestrator's checks judged, handed to every layer program of the run: a program
#: that finds the file changed since (a promote, an edit or a checkout in the same clone during a long run) stops
#: before it declares a resource (shared.layer.Layer), instead of deploying what nothing judged.
ENV_DIGEST_VARIABLE = "PLATFORM_ENV_SHA256"


def env_file_digest(path: os.PathLike[str] | str) -> str:
    """The SHA-256 of an env file's bytes, as :data:`ENV_DIGEST_VARIABLE` carries it."""
    import hashlib

    with open(path, "rb") as file:
        return hashlib.sha256(file.read()).hexdigest()


class Action(str, Enum):
    PREVIEW = "preview"
    UP = "up"
    DESTROY = "destroy"
    REFRESH = "refresh"


class Status(str, Enum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    """Not run because a layer it needs (or, for destroy, a layer that still uses it) failed."""
    NOT_RUN = "not-run"
    """Independent of the failure, but not started: the run stops scheduling work after a failure."""
    INTERRUPTED = "interrupted"
    """Running when the run was interrupted (Ctrl-C, SIGTERM, SIGHUP); its ``pulumi`` was told to cancel."""


@dataclass(frozen=True)
class Operation:
    action: Action
    preview_only: bool = False
    """``refresh``/``destroy`` only: report what would change (drift, deletions) and change nothing."""
    local_state: bool = False
    """``--local-state``: the operator accepts a local file state backend for a run that writes state."""
    targets: tuple[str, ...] = ()
    """``up`` only: update just these resource URNs, not their dependents (empty: everything)."""
    allow_replace: tuple[str, ...] = ()
    """``up`` only: stateful resources (URNs) the user accepts to see replaced or deleted
    (:mod:`shared.orchestrate.replacements`)."""
    expect_no_changes: bool = False
    """``preview`` only: a layer whose preview proposes any change fails (:mod:`shared.orchestrate.settled`)."""

    @property
    def changes_infrastructure(self) -> bool:
        return self.action is not Action.PREVIEW and not self.preview_only

    @property
    def reverse(self) -> bool:
        """Destroy runs against the DAG: a layer goes only once nothing reads it any more."""
        return self.action is Action.DESTROY

    @property
    def label(self) -> str:
        return f"{self.action.value} --preview-only" if self.preview_only else self.action.value


class RunInterrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP received. Unlike a Ctrl-C, a second one is no request to stop at once: nox passes on the
    SIGTERM/SIGHUP it gets, so one signal to the process group arrives twice."""


@dataclass(frozen=True)
class LayerResult:
    layer: str
    status: Status
    changes: Mapping[str, int] = field(default_factory=dict)
    """Pulumi's change summary: operation (create, update, delete, same, ...) -> resource count."""
    duration_s: float = 0.0
    detail: str = ""
    unsettled: bool = False
    """FAILED by ``preview --expect-no-changes`` alone: the preview ran and proposes changes. The run goes on with the
    other layers (their previews are as valid), where any other failure stops it."""


OutputSink = Callable[[str], None]
"""Receives one line of a layer's live output (the scheduler prefixes it with the layer)."""


class LayerRunner(Protocol):
    """Runs one Pulumi operation on one layer's stack; the seam between scheduling and Pulumi."""

    def prepare(self, env: EnvConfig, layers: Sequence[str], operation: Operation) -> Sequence[str] | None:
        """Check everything the runs need before the first one starts (bad setup: exit-2 errors); returns
        notes for the user about what could not be checked."""

    def run(self, layer: str, env: EnvConfig, operation: Operation, on_output: OutputSink) -> LayerResult:
        """Run ``operation`` on ``layer``'s stack for ``env``; raise or return FAILED on failure."""

    def stack_outputs(self, layer: str, env: EnvConfig) -> Mapping[str, Any] | None:
        """The outputs of ``layer``'s stack for ``env`` (None when that stack does not exist)."""

    def stack_exists(self, layer: str, env: EnvConfig) -> bool:
        """Whether ``layer``'s stack for ``env`` exists (without reading, or decrypting, its outputs)."""

    def interrupt(self, terminate: bool = False) -> None:
        """The run was interrupted: start no further ``pulumi`` command and, the first time, ask the running ones to
        cancel cleanly; with ``terminate`` (the operator's second Ctrl-C) ask them to stop at once. Must not block."""
