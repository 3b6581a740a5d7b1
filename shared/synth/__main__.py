"""``python -m shared.synth ENV [ENV ...]`` / ``python -m shared.synth --program DIR [--env ENV] [--out DIR2]``.

Writes ``build/ENV/<layer>.json`` (or ``DIR2/<project>.json``) only after every layer synthesized,
so a bad env file or a failing program leaves ``build/`` untouched.
"""

from __future__ import annotations

import argparse
import gc
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from shared import REPO_ROOT
from shared.cli import UsageParser, check_output_path, exit_now, run_main, write_atomically
from shared.cli import console as shared_console
from shared.errors import UsageError, display_path
from shared.synth.engine import dumps, synth_env, synth_program


def declares_resources(document: dict[str, Any]) -> bool:
    """Whether a synthesized program created any cloud (custom) resource."""
    return any(resource["custom"] for resource in document["resources"])


def no_resources_warning(program: Path) -> str:
    return (f"{program} declared no cloud resources; is this the right program "
            "(and does its __main__.py create them at import)?")


def _parser() -> argparse.ArgumentParser:
    parser = UsageParser(prog="nox -s synth --", label="synth", description="Offline synth of the platform's layers.")
    parser.add_argument("envs", nargs="*", help="environments to synthesize (all layers of each)")
    parser.add_argument("--program", type=Path, help="synthesize any Pulumi Python program directory instead")
    parser.add_argument("--env", help="with --program: use this env's account, region and stack name")
    parser.add_argument("--out", type=Path, help="with --program: output folder (default build/programs)")
    parser.add_argument("--build-dir", type=Path, default=REPO_ROOT / "build", help=argparse.SUPPRESS)
    return parser


def _summary(title: str, documents: dict[str, dict[str, Any]]) -> Table:
    table = Table(title=title)
    for column in ("layer", "resources", "custom", "outputs", "reads"):
        table.add_column(column)
    for key, document in documents.items():
        resources = document["resources"]
        # its own stack (messaging reads its last outputs) is not a read of another layer
        reads = ", ".join(ref.split("/")[1] for ref in document["stack_references"]
                          if ref.split("/")[1] != document["project"]) or "-"
        table.add_row(key, str(len(resources)), str(sum(1 for r in resources if r["custom"])),
                      str(len(document["outputs"])), reads)
    return table


def warn_about_catalog(console: Console) -> None:
    """Print the catalog's warnings (valid, but almost surely a mistake), naming the file."""
    from shared.catalog import catalog_path, load_catalog

    for warning in load_catalog().warnings():
        console.print(Text(f"warning: {display_path(str(catalog_path()))}: {warning}", style="yellow"))


def note_about_broker_capacity(console: Console, env_names: list[str]) -> None:
    """Print each env's broker capacity notes (a peak close to its broker's limits: shared.broker_capacity),
    naming the env file."""
    from shared.broker_capacity import capacity_notes
    from shared.catalog import load_catalog
    from shared.envs import env_path, load_env

    for name in env_names:
        for note in capacity_notes(load_env(name), load_catalog()):
            console.print(Text(f"note: {display_path(str(env_path(name)))}: {note}", style="yellow"))


def _shown(path: Path) -> str:
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    console = shared_console()
    if args.program is not None:
        if args.envs:
            raise UsageError("synth: give either ENV names or --program DIR, not both")
        from shared.envs import load_env

        kwargs: dict[str, Any] = {}
        if args.env is not None:  # an empty --env "$ENV" is an unknown env, not none
            env = load_env(args.env)
            kwargs = {"stack": env.name, "env": None, "account_id": env.account_id, "region": env.region,
                      "organization": env.pulumi_org}
        out_dir = args.out or args.build_dir / "programs"
        check_output_path(out_dir, "--out" if args.out else "build folder", directory=True)
        document = synth_program(args.program, preview=True, **kwargs)
        for line in document.get("warnings", []):
            console.print(Text(f"warning: {line}", style="yellow"))
        path = out_dir / f"{document['project']}.json"
        if not declares_resources(document):
            console.print(Text(f"warning: {no_resources_warning(args.program)}", style="yellow"))
        write_atomically({path: dumps(document)})
        console.print(_summary(f"synth of {args.program}", {document["project"]: document}))
        console.print(f"wrote {_shown(path)}")
        return 0
    if not args.envs:
        raise UsageError("synth: name an environment (e.g. `nox -s synth -- dev`) or use --program DIR")
    for option, value in (("--out", args.out), ("--env", args.env)):
        if value is not None:
            raise UsageError(f"synth: {option} only applies with --program; env runs write build/<ENV>/<layer>.json")
    from shared.envs import load_envs

    load_envs(args.envs)  # validate every env before any work (all problems at once): nothing half-written
    for name in args.envs:
        check_output_path(args.build_dir / name, "build folder", directory=True)
    warn_about_catalog(console)
    note_about_broker_capacity(console, args.envs)
    for name in args.envs:
        documents = synth_env(name)
        paths = {layer: args.build_dir / name / f"{layer}.json" for layer in documents}
        write_atomically({paths[layer]: dumps(doc) for layer, doc in documents.items()})
        console.print(_summary(f"synth of {name}", documents))
        console.print(f"wrote {', '.join(_shown(p) for p in paths.values())}")
    return 0


if __name__ == "__main__":
    # A one-shot command whose heap only grows (the synth keeps every resource alive) and that ends
    # with exit_now: the cyclic collector would only re-scan live objects, so it stays off.
    gc.disable()
    exit_now(run_main(main))
