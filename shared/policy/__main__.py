"""``python -m shared.policy [ENV ...] [--program DIR [--env ENV]] [--json FILE] [--sarif FILE]``
or ``python -m shared.policy --explain RULE``.

The command behind ``nox -s policy``: synthesizes every layer of each env (default: all envs), or one
program, evaluates every CrossGuard pack over the Analyzer protocol, prints the findings grouped by
env/layer/rule and exits 1 on any unsuppressed mandatory finding, 0 otherwise, 2 on bad input.
"""

from __future__ import annotations

import argparse
import gc
from pathlib import Path
from typing import Any

from shared.cli import UsageParser, check_output_path, console, exit_now, run_main
from shared.errors import UsageError, display_path
from shared.policy.engine import PolicyEngine, evaluate_documents_result, evaluate_envs
from shared.policy.findings import PolicyResult
from shared.policy.reporting import render_table, write_json, write_sarif


def _parser() -> argparse.ArgumentParser:
    parser = UsageParser(prog="nox -s policy --", label="policy",
                     description="Offline policy: synth + every CrossGuard pack over the Analyzer protocol.")
    parser.add_argument("envs", nargs="*", help="environments to evaluate (default: all)")
    parser.add_argument("--program", type=Path, help="evaluate any Pulumi Python program directory instead")
    parser.add_argument("--env", help="with --program: use this env's enforcement levels (default dev)")
    parser.add_argument("--json", type=Path, dest="json_file", metavar="FILE", help="write the findings as JSON")
    parser.add_argument("--sarif", type=Path, dest="sarif_file", metavar="FILE", help="write SARIF 2.1.0")
    parser.add_argument("--explain", metavar="RULE", help="print a rule's documentation and exit")
    return parser


def _program(program: Path, env_name: str | None, engine: PolicyEngine) -> PolicyResult:
    from shared.synth.__main__ import declares_resources, no_resources_warning
    from shared.synth.engine import synth_program

    if not program.is_dir():
        raise UsageError(f"policy: --program {program}: not a directory")
    kwargs: dict[str, Any] = {}
    if env_name:
        from shared.envs import load_env

        env = load_env(env_name)
        # As `nox -s synth -- --program DIR --env ENV`: the env's stack name, account and region; the
        # findings carry env/layer null (a program is not a layer of an env).
        kwargs = {"stack": env.name, "env": None, "account_id": env.account_id, "region": env.region,
                  "organization": env.pulumi_org}
    document = synth_program(program, preview=True, **kwargs)
    result = evaluate_documents_result([document], env_name=env_name, engine=engine)
    result.warnings = list(document.get("warnings") or [])
    if not declares_resources(document):  # a PASS over nothing must not read as a clean program
        result.warnings.append(no_resources_warning(program))
    return result


def _explain(args: argparse.Namespace) -> int:
    from shared.policy.reporting import explain
    from shared.policy_catalog import load_rules

    others = [flag for flag, given in (("ENV", args.envs), ("--program", args.program), ("--env", args.env),
                                       ("--json", args.json_file), ("--sarif", args.sarif_file))
              if given is not None and given != []]
    if others:
        raise UsageError(f"policy: --explain takes no other argument (got {', '.join(others)})")
    if args.explain not in load_rules():
        raise UsageError(f"policy: --explain {args.explain}: no such rule in policies/catalog.yaml "
                         "(`nox -s policy -- --explain RULE`, RULE as in policies/README.md)")
    console().print(explain(args.explain), markup=False, highlight=False, soft_wrap=True, end="")
    return 0


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.explain is not None:
        return _explain(args)
    from shared.envs import env_dir, env_names, load_env, load_envs

    if args.program is not None and args.envs:
        raise UsageError("policy: give either ENV names or --program DIR, not both")
    if args.env is not None and args.program is None:
        raise UsageError(f"policy: --env is for --program runs; evaluate an env with `nox -s policy -- {args.env}`")
    if args.program is None:
        names = list(dict.fromkeys(args.envs)) or env_names()
        if not names:
            raise UsageError(f"policy: no environments found ({display_path(str(env_dir()))}/*.yaml)")
        load_envs(names)  # every env file is valid before any work starts (all problems at once)
    elif args.env is not None:
        load_env(args.env)
    # Outputs are checked before any work: a PASS followed by a crash on --json would read as a failure.
    if args.json_file:
        check_output_path(args.json_file, "--json")
    if args.sarif_file:
        check_output_path(args.sarif_file, "--sarif")

    # A rule file without its catalog entry (or the reverse) stops here, named, not in a pack's traceback.
    from shared.policy import engine as policy_engine
    from shared.policy.packs import rule_files
    from shared.policy_catalog import PACKS, anchors_not_covered

    for pack in PACKS:
        rule_files(policy_engine.POLICIES_DIR / pack)
    anchors_not_covered()  # the rest of the catalog: each reason a string, no covered control listed
    if args.program is None:
        from shared.synth.__main__ import warn_about_catalog

        warn_about_catalog(console())
    # The packs boot while the synth runs; one process per pack for the whole run, forked from this
    # one (nothing has run yet but imports: shared.policy.packfork).
    with PolicyEngine(fork=True) as engine:
        if args.program is not None:
            from shared.synth.engine import SynthError

            try:
                result = _program(args.program, args.env, engine)
            except SynthError as error:
                # Exit 2 with the program's frames (run_main), and the requested files still say why.
                if args.json_file:
                    write_json(args.json_file, [], error=error, program_dir=args.program)
                if args.sarif_file:
                    write_sarif(args.sarif_file, [], program_dir=args.program, error=error)
                raise
        else:
            result = evaluate_envs(names, engine=engine)
    render_table(result, console())
    if args.json_file:
        write_json(args.json_file, result.findings)
    if args.sarif_file:
        write_sarif(args.sarif_file, result.findings, program_dir=args.program, warnings=result.warnings)
    return result.exit_code


if __name__ == "__main__":
    # A one-shot command whose heap only grows (the synth keeps every resource alive) and that ends
    # with exit_now: the cyclic collector would only re-scan live objects, so it stays off.
    gc.disable()
    exit_now(run_main(main))
