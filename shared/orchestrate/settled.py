"""``preview --expect-no-changes``: does a layer settle, i.e. does an ``up`` right after an ``up`` change nothing?

What a provider reads back from AWS is not always what the program sent: a default AWS fills in, a list it drops or
adds, a JSON document it rewrites, a version it patches. Where the provider does not normalise such a difference,
every later ``up`` proposes the change again, and for a replace-on-change input a replacement: an ECS task
definition replaced on each ``up`` rolls every service each time. No offline synth can tell, since it never reads
anything back. Previewed right after an ``up`` (the deploy workflows do, in the same job), each proposed change is
such a difference or drift made outside Pulumi in between; both want a look.

A :class:`ChangeRecorder` collects the preview's steps from the engine's events (``ResourcePreEvent``: its step's
``op``, ``urn``, ``type``, the changed keys ``diffs`` and the replace-causing ``keys``; pulumi.automation.events
StepEventMetadata). ``same``, ``read`` (a data source) and ``refresh`` (a layer previewed with ``--refresh``
reading what runs) change nothing; every other step does.
"""

from __future__ import annotations

from collections.abc import Sequence

from pulumi import automation as auto

from shared.orchestrate.replacements import CollectedStep, StepCollector

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


class ChangeRecorder(StepCollector):
    """Collects the changing steps of a preview's event stream: :meth:`collected` lists them by resource."""

    def __init__(self) -> None:
        super().__init__(lambda op: op not in UNCHANGED_OPS)


def unsettled_detail(layer: str, env_name: str, changes: Sequence[CollectedStep]) -> str:
    """Why ``layer``'s preview fails under ``--expect-no-changes``: what it would change, and what that means."""
    shown = "; ".join(describe_change(change) for change in changes[:LISTED])
    more = f"; and {len(changes) - LISTED} more" if len(changes) > LISTED else ""
    return (f"does not settle: its preview proposes {len(changes)} change(s) where none was expected: {shown}{more}. "
            f"Right after an up of {env_name}, such a change is one every up repeats (what the provider reads back "
            f"from AWS differs from what the program sends: send what AWS returns, or ignore the property) or drift "
            f"made outside Pulumi since; `pulumi preview --diff --stack <org>/{layer}/{env_name}` in stacks/{layer} "
            "shows each property")
