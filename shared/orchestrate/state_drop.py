"""Drop the resources of a service that is gone from a stack's exported state:
``python -m shared.orchestrate.state_drop KIND FILE`` (KIND: ``rabbitmq``).

Why: after an Amazon MQ broker was deleted outside Pulumi, messaging's state still holds the RabbitMQ objects that were
on it, and its refresh or destroy would call the deleted broker for each. ``pulumi state delete`` cannot drop them one
by one: it refuses a resource another one depends on (pulumi/pulumi pkg/resource/edit/operations.go, DeleteResource:
ResourceHasDependenciesError), and in messaging's state AWS resources depend on RabbitMQ objects (the queue metrics
rule's target on the queues, each connection secret's version on its user and the vhost, the published contract on
the vhost). ``--target-dependents`` would drop those AWS resources too, which the destroy would then leave in the
account. So the orchestrator prints ``pulumi stack export``, this edit, and ``pulumi stack import``
(:func:`shared.orchestrate.cli.check_lost_broker_teardown`): the objects of KIND leave the file, and every reference
to one (``dependencies``, ``propertyDependencies``, ``deletedWith``) leaves the resources that stay. Nothing changes
in AWS. The file is rewritten in place only when the whole edit holds; a resource that stays as the child of one that
leaves (which the import would refuse) stops it with exit 2, the file untouched.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shared.errors import ConfigError, PlatformError

#: KIND -> (the type-token prefix of its resources, what they are)
KINDS: dict[str, tuple[str, str]] = {
    "rabbitmq": ("rabbitmq:", "the RabbitMQ objects of a broker deleted outside Pulumi"),
}


def drop(exported: dict[str, Any], prefix: str) -> list[str]:
    """Remove from ``exported`` (what ``pulumi stack export`` wrote) every resource whose type starts with ``prefix``
    and every reference to one; the URNs dropped, in the state's order. ValueError (nothing changed) where the file
    is no exported state or a resource that stays is the child of one that leaves."""
    deployment = exported.get("deployment") if isinstance(exported, dict) else None
    if not isinstance(deployment, dict) or not isinstance(deployment.get("resources", []), list):
        raise ValueError("not the output of `pulumi stack export` (no deployment with a list of resources)")
    resources: list[dict[str, Any]] = deployment.get("resources") or []
    dropped = [str(r.get("urn")) for r in resources if str(r.get("type", "")).startswith(prefix)]
    gone = set(dropped)
    kept = [r for r in resources if str(r.get("urn")) not in gone]
    orphans = sorted(str(r.get("urn")) for r in kept if r.get("parent") in gone)
    if orphans:
        raise ValueError(f"{', '.join(orphans)} would stay as the child of a resource that leaves; nothing was changed")
    for resource in kept:
        if resource.get("dependencies"):
            resource["dependencies"] = [urn for urn in resource["dependencies"] if urn not in gone]
        if resource.get("propertyDependencies"):
            resource["propertyDependencies"] = {
                key: [urn for urn in urns if urn not in gone]
                for key, urns in resource["propertyDependencies"].items()}
        if resource.get("deletedWith") in gone:
            del resource["deletedWith"]
    deployment["resources"] = kept
    if deployment.get("pending_operations"):
        deployment["pending_operations"] = [
            entry for entry in deployment["pending_operations"]
            if str((entry.get("resource") or {}).get("urn")) not in gone]
    return dropped


def main(argv: Sequence[str] | None = None) -> int:
    from shared.cli import UsageParser

    parser = UsageParser(prog="python -m shared.orchestrate.state_drop",
                         description="Drop a gone service's resources, and every reference to them, from a file of "
                                     "`pulumi stack export`; then `pulumi stack import` it.")
    parser.add_argument("kind", choices=sorted(KINDS))
    parser.add_argument("file", type=Path)
    try:
        args = parser.parse_args(argv)
        prefix, what = KINDS[args.kind]
        try:
            exported = json.loads(args.file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise ConfigError(str(args.file), "(file)", f"cannot be read as JSON: {error}") from None
        try:
            dropped = drop(exported, prefix)
        except ValueError as error:
            raise ConfigError(str(args.file), "(file)", str(error)) from None
        args.file.write_text(json.dumps(exported, indent=4) + "\n", encoding="utf-8")
    except PlatformError as error:
        sys.stderr.write(f"error: {error}\n")
        return error.exit_code
    print(f"{args.file}: dropped {len(dropped)} resources, {what}" + "".join(f"\n  {urn}" for urn in dropped))
    print("nothing changed in AWS; take the file back with `pulumi stack import --file` (the command printed with this "
          "one)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
