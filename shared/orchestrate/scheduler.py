"""Run a plan level by level: a level's layers concurrently, stop dependents when a layer fails.

Why levels and not "start each layer as soon as its upstreams finish": a level is a checkpoint a
person can read in the log (network done, then discovery and messaging together, ...), and the
layers here are few, so the little parallelism lost does not matter.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import replace
from typing import TextIO

from shared.envs import EnvConfig
from shared.orchestrate.model import LayerResult, LayerRunner, Operation, RunInterrupted, Status
from shared.orchestrate.plan import Plan, blocked_by_failure
from shared.orchestrate.report import describe_changes, failure_detail, redact_stream


class Progress:
    """Live, line-oriented progress; each line carries its layer so concurrent runs stay readable."""

    def __init__(self, stream: TextIO, layers: list[str]) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self._width = max((len(layer) for layer in layers), default=0)
        self.lost: OSError | ValueError | None = None
        """Why the lines stopped reaching the stream (a terminal that hung up: EIO), None while they do."""

    def line(self, layer: str, text: str) -> None:
        # Called from the Automation API's threads that drain pulumi's output: one that raised would stop draining,
        # and pulumi would block on a full pipe mid-update. A stream that fails (a closed terminal after its SIGHUP,
        # which the run outlives to cancel pulumi cleanly) loses the lines, never the run.
        with self._lock:
            if self.lost is not None:
                return
            try:
                self._stream.write(f"[{layer.ljust(self._width)}] {text}\n")
                self._stream.flush()
            except (OSError, ValueError) as error:  # EIO/EPIPE; ValueError: a closed stream
                self.lost = error

    def sink(self, layer: str) -> Callable[[str], None]:
        """Where a layer's live output goes: its lines, certain secrets redacted (report.redact_stream)."""
        return lambda text: self.line(layer, redact_stream(text))


def _run_one(runner: LayerRunner, layer: str, env: EnvConfig, operation: Operation, progress: Progress,
             clock: Callable[[], float]) -> LayerResult:
    progress.line(layer, f"{operation.label} {env.name}: started")
    started = clock()
    try:
        result = runner.run(layer, env, operation, progress.sink(layer))
    except Exception as error:  # noqa: BLE001 - any failure of one layer is reported, never fatal to the run
        result = LayerResult(layer, Status.FAILED, detail=failure_detail(error, midway=True))
    result = replace(result, layer=layer, duration_s=clock() - started)
    if result.status is Status.SUCCEEDED:
        progress.line(layer, f"succeeded in {result.duration_s:.1f}s ({describe_changes(result.changes, operation)})")
    elif result.status is Status.NOT_RUN:  # stopped by an interrupt before its next pulumi command
        progress.line(layer, f"not run: {result.detail}")
    elif result.status is Status.INTERRUPTED:  # stopped by an interrupt after it changed something (the detail says)
        progress.line(layer, f"interrupted after {result.duration_s:.1f}s: {result.detail}")
    else:
        progress.line(layer, f"FAILED after {result.duration_s:.1f}s: {result.detail}")
    return result


LevelGate = Callable[[list[str]], Mapping[str, str]]
"""Asked before a level starts, with the layers about to run: layer -> why it must not run."""


class Interruption:
    """Whether the run was interrupted; the first interrupt asks the runner to cancel what runs."""

    def __init__(self, runner: LayerRunner, progress: Progress) -> None:
        self.interrupted = False
        self.results: dict[str, LayerResult] = {}
        """What finished so far (kept here so an interrupt outside the wait loses none of it)."""
        self._runner = runner
        self._progress = progress

    def record(self, error: KeyboardInterrupt, running: list[str]) -> None:
        first = not self.interrupted
        self.interrupted = True
        # The runner first, before anything slower: a layer between two pulumi commands (compute's image checks, a
        # preview before its up) starts no further one, and the runner relays the first interrupt to the running
        # pulumi processes, which get no signal themselves (a process group of their own). A second Ctrl-C is the
        # operator's "stop now", which the CLI takes a second SIGINT for (pkg/backend/cancellation_scope.go), as in a
        # terminal; a second SIGTERM/SIGHUP is not (nox passes on what it gets: one group-wide signal arrives twice).
        self._runner.interrupt(terminate=not first and not isinstance(error, RunInterrupted))
        if first:
            for layer in running:
                self._progress.line(layer, "interrupted: waiting for pulumi to cancel cleanly (state stays consistent; "
                                           "Ctrl-C again stops it at once, leaving its stack to repair)")


def execute(plan: Plan, env: EnvConfig, operation: Operation, runner: LayerRunner, progress: Progress, *,
            parallel: int, clock: Callable[[], float] = time.monotonic,
            gate: LevelGate | None = None, interruption: Interruption | None = None) -> list[LayerResult]:
    """Run every layer of ``plan``; the results come back in plan order, one per layer.

    A layer ``gate`` refuses is not run (SKIPPED with the reason), and the run stops as after a failure.
    Interrupted (KeyboardInterrupt, or :class:`~shared.orchestrate.model.RunInterrupted` for
    SIGTERM/SIGHUP): nothing new starts, running layers are asked to cancel and are waited for (a
    Pulumi update killed mid-way leaves pending operations in its state), and they end INTERRUPTED.
    """
    interruption = interruption or Interruption(runner, progress)
    results = interruption.results
    blocked: dict[str, str] = {}  # layer -> why it must not run
    stopped = False
    stopped_by = ""  # the first layer the run stopped for, and how: "<layer> failed" or "<layer> was refused"
    for level in plan.levels:
        runnable = []
        for layer in level:
            if interruption.interrupted:
                results[layer] = LayerResult(layer, Status.NOT_RUN, detail="not started: the run was interrupted")
            elif layer in blocked:
                results[layer] = LayerResult(layer, Status.SKIPPED, detail=blocked[layer])
            elif stopped:
                results[layer] = LayerResult(layer, Status.NOT_RUN,
                                             detail=f"not started: the run stopped ({stopped_by})")
            else:
                runnable.append(layer)
        if runnable and gate is not None:
            refused = gate(list(runnable))
            for layer, why in refused.items():
                results[layer] = LayerResult(layer, Status.SKIPPED, detail=why)
                progress.line(layer, f"not run: {why}")
                stopped, stopped_by = True, stopped_by or f"{layer} was refused"
                for dependent in blocked_by_failure(layer, operation):
                    blocked.setdefault(dependent, f"needs {layer}, which was not run")
            runnable = [layer for layer in runnable if layer not in refused]
        if not runnable:
            continue
        queued = list(runnable)
        running: dict[Future[LayerResult], str] = {}
        with ThreadPoolExecutor(max_workers=min(parallel, len(runnable)),
                                thread_name_prefix=f"layer-{operation.action.value}") as pool:
            while queued or running:
                # Start work only while nothing has failed: siblings already running finish
                # (interrupting a Pulumi update mid-way leaves pending operations in the state),
                # those still queued never start.
                while queued and len(running) < parallel and not stopped and not interruption.interrupted:
                    layer = queued.pop(0)
                    try:
                        running[pool.submit(_run_one, runner, layer, env, operation, progress, clock)] = layer
                    except KeyboardInterrupt as error:
                        # Inside submit (its worker thread started, the future not yet returned): the runner, told
                        # below, starts no pulumi command for it; the layer counts as not started.
                        interruption.record(error, list(running.values()))
                        queued.insert(0, layer)
                if not running:
                    break
                try:
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                except KeyboardInterrupt as error:
                    interruption.record(error, list(running.values()))
                    continue
                for future in done:
                    layer = running.pop(future)
                    result = future.result()
                    if interruption.interrupted:
                        result = replace(result, status=Status.INTERRUPTED,
                                         detail=f"interrupted ({result.status.value}"
                                                + (f": {result.detail})" if result.detail else ")"))
                    results[layer] = result
                    if result.status is Status.FAILED and not result.unsettled:
                        stopped, stopped_by = True, stopped_by or f"{layer} failed"
                        why = (f"{layer} failed to destroy and still reads it" if operation.reverse
                               else f"needs {layer}, which failed")
                        for dependent in blocked_by_failure(layer, operation):
                            blocked.setdefault(dependent, why)
        for layer in queued:
            why = "the run was interrupted" if interruption.interrupted else f"{stopped_by} in its level"
            results[layer] = LayerResult(layer, Status.NOT_RUN, detail=f"not started: {why}")
    return [results[layer] for layer in plan.layers]
