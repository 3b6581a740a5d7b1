"""``python -m shared.rehearse ENV``: the messaging layer of ENV on a real local RabbitMQ.

Exit codes: 0 every route delivered and every refusal held; 1 something broke (or no broker could be
started: the message says why); 2 bad input (unknown env, invalid env file or catalog).
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from shared.cli import UsageParser, check_output_path
from shared.cli import console as shared_console
from shared.errors import PlatformError, UsageError, display_path


class Interrupted(KeyboardInterrupt):
    """SIGTERM (how CI cancels a job) or SIGHUP (a closed terminal), raised where the program is so
    every ``with`` block -- the broker's above all -- cleans up as on Ctrl-C."""


_received: list[str] = []


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    # Also remembered: Python drops an exception raised inside a finalizer or a logging lock release
    # ("Exception ignored in ..."), and the run would then end as if nothing had happened.
    _received.append(signal.Signals(signum).name)
    raise Interrupted(signal.Signals(signum).name)


@contextmanager
def _interrupts_raise() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP raise :class:`Interrupted` while the run lasts; an interrupt Python would
    report as "Exception ignored" is kept quiet (it is remembered in ``_received``). The handlers and the hook
    found before are put back after, so a caller in the same process (a test) keeps its own."""
    signums = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {signum: signal.getsignal(signum) for signum in signums}
    default_hook = sys.unraisablehook

    def quiet_interrupts(unraisable: sys.UnraisableHookArgs) -> None:
        if not isinstance(unraisable.exc_value, KeyboardInterrupt):
            default_hook(unraisable)

    for signum in signums:
        signal.signal(signum, _raise_interrupted)
    sys.unraisablehook = quiet_interrupts
    try:
        yield
    finally:
        sys.unraisablehook = default_hook
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def main(argv: list[str] | None = None) -> int:
    parser = UsageParser(
        prog="python -m shared.rehearse", label="rehearse",
        description="Synthesize ENV's messaging layer, load it into a throwaway RabbitMQ on loopback and check "
                    "every route and every refusal with each service's own credentials.")
    parser.add_argument("env", help="environment name (environments/<env>.yaml)")
    try:
        args = parser.parse_args(argv)
    except UsageError as error:
        print(error, file=sys.stderr)
        return error.exit_code
    with _interrupts_raise():
        return _run(args.env)


def _run(env_name: str) -> int:
    console = shared_console()  # logs and CI: do not squeeze the matrix into 80 columns
    try:
        from shared.catalog import load_catalog
        from shared.envs import load_env
        from shared.rehearse import build_dir, rehearse, synthesized_topology, write_artifacts
        from shared.rehearse.report import print_report

        env = load_env(env_name)
        catalog = load_catalog()
        check_output_path(build_dir(env.name), "build folder", directory=True)  # exit 2 before any work
        topology = synthesized_topology(env.name)
        path = write_artifacts(env.name, topology)
        console.print(f"definitions: {display_path(str(path))}")
        console.print("starting a throwaway RabbitMQ on loopback...")
        report = rehearse(env.name, topology=topology, catalog=catalog)
    except PlatformError as error:
        if _received:
            # Stopping a node interrupted mid-boot can take a SIGKILL of processes it had started (the
            # "had to kill left-over broker processes" error of LocalBroker.stop): it is stopped all the same.
            print(f"rehearse: interrupted ({_received[0]}); the local broker was stopped ({error})", file=sys.stderr)
            return 130
        print(f"rehearse: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt as interrupt:
        # The broker, its epmd and its temporary folder are gone by now (LocalBroker's __exit__).
        print(f"rehearse: interrupted ({interrupt or 'SIGINT'}); the local broker was stopped", file=sys.stderr)
        return 130
    if _received:  # the interrupt was swallowed where Python ignores exceptions; the broker is stopped
        print(f"rehearse: interrupted ({_received[0]}); the local broker was stopped", file=sys.stderr)
        return 130
    print_report(report, console)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
