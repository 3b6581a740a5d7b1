"""``python -m shared.rehearse ENV``: the messaging layer of ENV on a real local RabbitMQ.

Exit codes: 0 every route delivered and every refusal held; 1 something broke (or no broker could be
started: the message says why); 2 bad input (unknown env, invalid env file or catalog).
"""

from __future__ import annotations

import argparse
import signal
import sys
from types import FrameType

from shared.cli import console as shared_console
from shared.errors import PlatformError, display_path


class Interrupted(KeyboardInterrupt):
    """SIGTERM (how CI cancels a job) or SIGHUP (a closed terminal), raised where the program is so
    every ``with`` block -- the broker's above all -- cleans up as on Ctrl-C."""


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m shared.rehearse",
        description="Synthesize ENV's messaging layer, load it into a throwaway RabbitMQ on loopback and check "
                    "every route and every refusal with each service's own credentials.")
    parser.add_argument("env", help="environment name (environments/<env>.yaml)")
    args = parser.parse_args(argv)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_interrupted)
    console = shared_console()  # logs and CI: do not squeeze the matrix into 80 columns
    try:
        from shared.catalog import load_catalog
        from shared.envs import load_env
        from shared.rehearse import rehearse, synthesized_topology, write_artifacts
        from shared.rehearse.report import print_report

        env = load_env(args.env)
        catalog = load_catalog()
        topology = synthesized_topology(env.name)
        path = write_artifacts(env.name, topology)
        console.print(f"definitions: {display_path(str(path))}")
        console.print("starting a throwaway RabbitMQ on loopback...")
        report = rehearse(env.name, topology=topology, catalog=catalog)
    except PlatformError as error:
        print(f"rehearse: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt as interrupt:
        # The broker, its epmd and its temporary folder are gone by now (LocalBroker's __exit__).
        print(f"rehearse: interrupted ({interrupt or 'SIGINT'}); the local broker was stopped", file=sys.stderr)
        return 130
    print_report(report, console)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
