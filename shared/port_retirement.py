"""A called service's port leaves the tasks' security group one `up` after it left the catalog.

The tasks share one security group, which admits itself only on the ports of the services another service calls
(shared.components.network). That group is the network layer's, which runs first; the tasks are compute's, which runs
last. A catalog change that stops calling a port (a called service moved to another ``port``, or no longer in any
service's ``calls``) would have network stop admitting it at the start of the `up`, while compute's running tasks still
listen and call there until compute rolls them at its end: every new connection between them refused for the whole run
(EC2 keeps only the connections already tracked: VPC guide, "Security group connection tracking"). So:

1. the network program keeps admitting the ports its last `up` admitted for the catalog of then
   (:data:`CALLED_PORTS_OUTPUT`, read back from its own stack) beside the catalog's of now, and exports those it keeps
   only for that as :data:`RETIRING_PORTS_OUTPUT`; compute's part of the same `up` moves the tasks off them and records
   the ports its tasks call (:data:`CALLED_PORTS_OUTPUT` too);
2. the next `up` of network stops admitting them.

:func:`port_drop_refusals` refuses step 2 before any layer runs where compute did not move in between (a
``--layers network`` run, a compute `up` that failed, or that ECS rolled back: compute's record keeps the old ports
then), and :func:`port_admission_refusals` an `up` of compute alone onto a port step 1 has not admitted yet. Standard
library and the catalog only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from shared.catalog import Catalog, catalog_path
from shared.errors import ConfigError

#: network's and compute's output: called service -> its port, as their last `up` wired the tasks' security group
#: (network) or the tasks (compute)
CALLED_PORTS_OUTPUT = "called_service_ports"
#: network's output: service -> a port its last `up` still admitted only for the tasks of the catalog before
RETIRING_PORTS_OUTPUT = "retiring_service_ports"

Outputs = Mapping[str, Any] | None


def called_service_ports(catalog: Catalog) -> dict[str, int]:
    """Service -> port, for every catalog service some other service calls (the service-to-service ports; a service
    nobody calls is reached only by its load balancer, if any)."""
    called = {callee for spec in catalog for callee in spec.calls}
    return {spec.name: spec.port for spec in sorted(catalog, key=lambda spec: spec.name) if spec.name in called}


def retiring_service_ports(called: Mapping[str, int], network: Outputs) -> dict[str, int]:
    """The ports the network's last `up` admitted for its catalog's called services (its deployed ``network``
    outputs) that the catalog's ``called`` ports no longer include, by the service that had them: admitted one more
    `up`, while compute moves the tasks off them. {} for a network never deployed, or deployed before the record."""
    kept = set(called.values())
    last = (network or {}).get(CALLED_PORTS_OUTPUT) or {}
    return {service: port for service, port in sorted(last.items()) if port not in kept}


def _what_changed(service: str, port: int, catalog: Catalog) -> tuple[str, str]:
    """The catalog key that stopped calling ``service``'s former ``port``, and what it did."""
    spec = catalog.services.get(service)
    if spec is None:
        return f"services.{service}", f"{service}'s, which left the catalog"
    if spec.port != port:
        return f"services.{service}.port", f"{service}'s before it moved to {spec.port}"
    return f"services.{service}", f"{service}'s, which no service calls any more"


def port_drop_refusals(catalog: Catalog, env_name: str, read: Callable[[str], Outputs]) -> list[ConfigError]:
    """Why the network layer's `up` must not stop admitting the ports it kept for the tasks of an earlier catalog
    (its ``retiring_service_ports``, which this `up` drops): compute's last `up` still wired its tasks to call one
    (or predates the record of the ports it calls). ``read(layer)``: that layer's deployed outputs (None: no stack).
    [] where nothing is dropped, or no compute is deployed."""
    network = read("network")
    if not network:
        return []
    now = called_service_ports(catalog)
    admitted = {*now.values(), *(network.get(CALLED_PORTS_OUTPUT) or {}).values()}  # what this `up` admits
    dropped = {service: port for service, port in sorted((network.get(RETIRING_PORTS_OUTPUT) or {}).items())
               if port not in admitted}
    if not dropped:
        return []
    compute = read("compute")
    if not compute:
        return []  # no tasks to call anything
    used = compute.get(CALLED_PORTS_OUTPUT)
    if used is None:
        still = dropped
        reason = "its last `up` predates the record of the ports its tasks call, so they may still call any"
    else:
        in_use = set(used.values())
        still = {service: port for service, port in dropped.items() if port in in_use}
        if not still:
            return []
        reason = "its last `up` left its tasks calling " + ", ".join(
            f"{service} on {port}" for service, port in sorted(used.items()) if port in set(still.values()))
    changes = {port: _what_changed(service, port, catalog) for service, port in still.items()}
    ports = ", ".join(f"{port} ({what})" for port, (_, what) in changes.items())
    unadmitted = sorted(set(_not_admitted(now, network).values()))
    if unadmitted:  # compute alone would move the tasks to ports no rule admits yet
        way = (f"The catalog changed again since: compute alone would now move the tasks to {_listed(unadmitted)}, "
               f"which the group does not admit yet. {_way_back(env_name, network)}")
    else:
        way = f"Run compute once first (`nox -s up -- {env_name} --layers compute --exact`), then this `up`"
    return [ConfigError(str(catalog_path()), next(iter(changes.values()))[0], (
        f"the network layer would stop admitting {'ports' if len(still) > 1 else 'port'} {ports} between the "
        f"services' tasks, but the compute layer has not moved off since the catalog changed ({reason}): new "
        f"connections between the tasks would be refused until compute rolls them, after every other layer. {way}. "
        "Nothing was run"))]


def admitted_by(network: Mapping[str, Any]) -> set[int]:
    """The ports the tasks' group admits after the network's last `up` (its deployed outputs)."""
    return {*(network.get(CALLED_PORTS_OUTPUT) or {}).values(), *(network.get(RETIRING_PORTS_OUTPUT) or {}).values()}


def _not_admitted(now: Mapping[str, int], network: Mapping[str, Any]) -> dict[str, int]:
    """The called services of ``now`` whose port the network's last `up` does not admit."""
    admitted = admitted_by(network)
    return {service: port for service, port in now.items() if port not in admitted}


def _listed(ports: list[int]) -> str:
    return ", ".join(map(str, ports))


def _way_back(env_name: str, network: Mapping[str, Any]) -> str:
    """The way out where neither a full `up` (network would drop a port compute still calls) nor compute alone (onto a
    port network does not admit) is safe."""
    admitted = _listed(sorted(admitted_by(network)))
    return (f"Set the catalog's called ports back to ones the network admits ({admitted}), run compute alone "
            f"(`nox -s up -- {env_name} --layers compute --exact`), then `up` of every layer, then make the change "
            "again")


def port_admission_refusals(catalog: Catalog, env_name: str, read: Callable[[str], Outputs]) -> list[ConfigError]:
    """Why an `up` of compute without network must not roll the tasks onto the catalog's called ports: one the tasks'
    group does not admit yet (a catalog change whose network `up` has not run), so the callers' calls to the new tasks
    would be refused once the old ones stopped. [] where the network's last `up` admits them all, or predates the
    record of what it admits, or no network is deployed."""
    network = read("network")
    if not network or network.get(CALLED_PORTS_OUTPUT) is None:
        return []
    now = called_service_ports(catalog)
    missing = _not_admitted(now, network)
    if not missing:
        return []
    first = next(iter(missing))
    way = (f"A full `up` is refused too (the network would stop admitting a port compute's tasks still call). "
           f"{_way_back(env_name, network)}" if port_drop_refusals(catalog, env_name, read)
           else f"Run the network layer first: `nox -s up -- {env_name}` (every layer)")
    return [ConfigError(str(catalog_path()), f"services.{first}.port", (
        "compute would roll the tasks onto " + ", ".join(f"{service}'s port {port}" for service, port in
                                                         missing.items())
        + ", which the services' security group does not admit yet (the network layer's last `up` admits "
        f"{_listed(sorted(admitted_by(network)))}): the callers' calls would be refused once the old tasks stopped. "
        f"{way}. Nothing was run"))]
