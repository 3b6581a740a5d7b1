"""``preview --expect-no-changes``: does a layer settle, i.e. does an ``up`` right after an ``up`` change nothing?

What a provider reads back from AWS is not always what the program sent: a default AWS fills in, a list it drops or
adds, a JSON document it rewrites, a version it patches. Where the provider does not normalise such a difference,
every later ``up`` proposes the change again, and for a replace-on-change input a replacement: an ECS task
definition replaced on each ``up`` rolls every service each time. No offline synth can tell, since it never reads
anything back. Previewed right after an ``up`` (the deploy workflows do: dev's in a last job, the promoted envs' as the
last step of their job), a proposed change is such a difference, or drift made outside Pulumi in between (both want a
look), or a change in flight by design (:func:`converging`: a port network drops one ``up`` later, what Amazon MQ
applies in its maintenance window, a provider's own configuration such as a rotated password), which is noted
instead.

A :class:`ChangeRecorder` collects the preview's steps from the engine's events (``ResourcePreEvent``: its step's
``op``, ``urn``, ``type``, the changed keys ``diffs`` and the replace-causing ``keys``; pulumi.automation.events
StepEventMetadata). ``same``, ``read`` (a data source) and ``refresh`` (a layer previewed with ``--refresh``
reading what runs) change nothing; every other step does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pulumi import automation as auto

from shared.orchestrate.model import LayerResult
from shared.orchestrate.replacements import CollectedStep, ReplacementGuard
from shared.port_retirement import RETIRING_PORTS_OUTPUT

#: Steps an ``up`` would not take: the resource unchanged, a data source read, the state read anew (``--refresh``).
UNCHANGED_OPS: frozenset[str] = frozenset({
    auto.OpType.SAME.value, auto.OpType.READ.value, auto.OpType.REFRESH.value,
})
#: The most changes a layer's result lists by name (the rest are counted).
LISTED = 8


def describe_change(step: CollectedStep) -> str:
    """``<ops> <type> <name> (<properties>)`` of a step the preview would take."""
    what = f" ({', '.join(step.keys)})" if step.keys else ""
    return f"{'/'.join(step.ops)} {step.type} {step.urn.rsplit('::', 1)[-1]}{what}"


class ChangeRecorder(ReplacementGuard):
    """Collects every changing step of a preview's event stream (:meth:`collected`, by resource), and is the preview's
    replacement guard too (:meth:`destructions`): one pass over the events."""

    def __init__(self) -> None:
        super().__init__(lambda op: op not in UNCHANGED_OPS)


def sort_changes(changes: Sequence[CollectedStep], expected: Sequence[Converging]
                 ) -> tuple[list[CollectedStep], list[tuple[CollectedStep, Converging]]]:
    """The changes no entry of ``expected`` covers, and those in flight with the entry that covers each."""
    unexpected: list[CollectedStep] = []
    in_flight: list[tuple[CollectedStep, Converging]] = []
    for change in changes:
        covering = next((item for item in expected if item.covers(change)), None)
        if covering is None:
            unexpected.append(change)
        else:
            in_flight.append((change, covering))
    return unexpected, in_flight


#: An update of a provider's own configuration changes no resource: messaging's RabbitMQ provider takes the broker
#: admin's current password, which a rotation may change between messaging's ``up`` and the check
#: (shared.components.messaging); a resource it would change shows as a step of its own
PROVIDER_UPDATE = "a provider's configuration (as the broker admin's password after a rotation) changes no resource"

#: The range rules of the tasks' security group (shared.components.network, ``<name>-services-<in|out>-<port>``)
RANGE_RULE_TYPES = frozenset({"aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
                              "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"})
RANGE_RULE_NAME = r"-services-(in|out)-\d+$"
BROKER_TYPE = "aws:mq/broker:Broker"
#: What Amazon MQ has pending (:attr:`shared.orchestrate.account.AccountReport.broker_pending`) -> the broker's input
#: the provider reads back as what the broker runs until then (DescribeBroker ``EngineVersion``, ``HostInstanceType``,
#: ``Configurations.Current``)
PENDING_INPUTS = {"engine_version": "engineVersion", "instance_type": "hostInstanceType",
                  "configuration": "configuration"}


@dataclass(frozen=True)
class Converging:
    """A change in flight that a preview right after an ``up`` still shows, by design: the layer makes it over two
    ``up``s, or AWS applies it later. Its steps are noted, not failed; any other change of the layer still fails."""

    #: the resource types it covers (one ending in ``:``, e.g. ``pulumi:providers:``, covers every type it begins)
    types: frozenset[str]
    #: a pattern the resource's name must match ("" any)
    name: str
    #: the properties a step may change (empty: any); a step that names none is not covered
    keys: frozenset[str]
    #: the ops a step may take (empty: any)
    ops: frozenset[str]
    why: str

    def covers(self, step: CollectedStep) -> bool:
        if not any(step.type == kind or (kind.endswith(":") and step.type.startswith(kind)) for kind in self.types):
            return False
        if self.name and not re.search(self.name, step.urn.rsplit("::", 1)[-1]):
            return False
        if self.ops and not set(step.ops) <= self.ops:
            return False
        return not self.keys or (bool(step.keys) and set(step.keys) <= self.keys)


def converging(layers: Sequence[str], network_outputs: Mapping[str, Any] | None,
               broker_pending: Mapping[str, str]) -> dict[str, list[Converging]]:
    """The changes in flight of the run's layers, from the network stack's outputs and what the broker has pending:

    - network: the ports a catalog change moved the tasks off stay admitted for one more ``up``, which drops them
      (shared.port_retirement; its outputs' ``retiring_service_ports``): the preview right after proposes that drop;
    - broker: Amazon MQ applies a new engine version, instance type or configuration revision at a reboot or in the
      maintenance window; the provider's update keeps what it sent, but a refresh of the broker (``nox -s refresh``)
      reads back what the broker runs until then, and the preview after it proposes the same update again (an update
      of those inputs only; a replacement is never excused);
    - every layer: an update of a provider resource (``pulumi:providers:*``), which changes no resource itself."""
    result: dict[str, list[Converging]] = {
        layer: [Converging(frozenset({"pulumi:providers:"}), "", frozenset(), frozenset({"update"}), PROVIDER_UPDATE)]
        for layer in layers}
    retiring = (network_outputs or {}).get(RETIRING_PORTS_OUTPUT) or {}
    if "network" in layers and retiring:
        ports = ", ".join(f"{service} {port}" for service, port in sorted(dict(retiring).items()))
        result["network"].append(Converging(RANGE_RULE_TYPES, RANGE_RULE_NAME, frozenset(), frozenset(), (
            f"the ports the tasks were moved off ({ports}) stay admitted for one more up, which drops them once "
            "compute moved its tasks (README 'A called service's port')")))
    pending = {PENDING_INPUTS[key]: value for key, value in broker_pending.items() if key in PENDING_INPUTS}
    if "broker" in layers and pending:
        what = ", ".join(f"{key} {value}" for key, value in sorted(pending.items()))
        result["broker"].append(Converging(frozenset({BROKER_TYPE}), "", frozenset(pending), frozenset({"update"}), (
            f"Amazon MQ has {what} pending, applied at a reboot or in the maintenance window; until then a refresh "
            "reads back what the broker runs (README 'Maintenance window')")))
    return result


def unsettled_annotations(results: Sequence[LayerResult], env_name: str) -> list[str]:
    """A GitHub Actions ``::error`` workflow command for each layer that does not settle (its message escaped as the
    runner reads it: ``%``, CR and LF; its title's ``:`` and ``,`` too), shown on the run's page."""
    def escaped(text: str, title: bool = False) -> str:
        text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        return text.replace(":", "%3A").replace(",", "%2C") if title else text

    return [f"::error title={escaped(f'{env_name} {result.layer} does not settle', title=True)}::"
            f"{escaped(result.detail)}" for result in results if result.unsettled]


def unsettled_detail(layer: str, env_name: str, changes: Sequence[CollectedStep]) -> str:
    """Why ``layer``'s preview fails under ``--expect-no-changes``: what it would change, and what that means."""
    shown = "; ".join(describe_change(change) for change in changes[:LISTED])
    more = f"; and {len(changes) - LISTED} more" if len(changes) > LISTED else ""
    return (f"does not settle: its preview proposes {len(changes)} change(s) where none was expected: {shown}{more}. "
            f"Right after an up of {env_name}, such a change (not one in flight: a port network keeps one more up, "
            "what Amazon MQ has pending) is one every up repeats (what the provider reads back from AWS differs from "
            "what the program sends: send what AWS returns, or ignore the property) or drift made outside Pulumi "
            f"since; `pulumi preview --diff --stack <org>/{layer}/{env_name}` in stacks/{layer} shows each property")
