"""Operations an earlier update started and never saw finish, as a stack's state records them.

An update killed mid-way (a CI job past its timeout, the deploy runner's build timing out, a laptop asleep, a second
Ctrl-C, an engine crash) leaves each resource operation in flight in the state's ``pending_operations``. A provider
error does not: the engine records the failed step and removes its operation. What the next update does with them
(pulumi/pulumi pkg/resource/deploy/deployment_executor.go printPendingOperationsWarning, pkg/backend/snapshot.go
and journal.go):

- ``updating``, ``deleting``, ``reading``: a warning, and the update goes on; the resource is still in the state (an
  update is diffed again from its old inputs, a delete scheduled again), and the next state written drops the
  operation. Nothing to do. (``importing``, a ``pulumi import`` killed mid-way or a record ``refresh
  --import-pending-creates`` relabelled, is dropped too, and its resource is then in neither list: noted.)
- ``creating``: the resource is not in the state, and the state written after every update keeps the operation
  ("we don't want to clear pending CREATE operations because these must require user intervention"). The program
  registers the resource again, so the update creates it again: where AWS did create it, a named resource fails on
  its name (EntityAlreadyExists for an IAM role, ResourceAlreadyExistsException for a log group,
  RepositoryAlreadyExistsException, a Lambda function or CodeBuild project of that name, a broker name taken) after
  the layers before it ran, and one AWS names itself (a KMS key, a security group id) is made twice, the first left
  behind unmanaged. A ``destroy`` passes it by, leaving it in the account.

Resolving it takes two steps. A create AWS did make is taken into the state by ``pulumi import TYPE NAME ID`` with
``--parent`` and ``--provider`` (the URNs the pending record holds: the import gives the resource
generateURN(parent, type, name), the URN the program registers, pkg/resource/deploy/import.go; an explicit provider
is found in the state by its URN, registerProviders); ``--protect=false`` (the program's ``protect`` applies from
the next ``up``), ``--generate-code=false``. The import keeps the pending record (the state written keeps every
pending create of its base). Then ``pulumi refresh --clear-pending-creates`` drops every pending-create record
(pkg/cmd/pulumi/operations/refresh.go). Not ``refresh --import-pending-creates URN ID``: it only relabels the record
``importing`` with the id (pendingCreatesToImports), and the refresh that follows reads the state's resources alone
(deployment_executor.go refresh) and writes only pending creates back (pkg/backend/snapshot.go, journal.go), so the
record is dropped and the resource never enters the state; the next ``up`` creates it again. Same in 3.207 and the
newest CLI.

So ``up`` and ``destroy`` are refused while a stack of the run records a pending create, before any layer runs,
naming each one and the command that resolves it (:func:`pending_creates_refusal`).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shared.errors import PlatformError
from shared.orchestrate.identity import is_live_entry

CREATING = "creating"

#: The input whose value is the id ``pulumi import`` takes, for the named
#: types the layers create where that id is the name the program gives (pulumi-aws, each type's "Import" section:
#: ``pulumi import aws:iam/role:Role example developer_name``, ``aws:cloudwatch/logGroup:LogGroup example yada``,
#: ``aws:ecr/repository:Repository service test-service``, ``aws:lambda/function:Function example example``,
#: ``aws:codebuild/project:Project name project-name``, ``aws:ecs/cluster:Cluster stateless stateless-app``,
#: ``aws:s3/bucket:Bucket example bucket-name``, ``aws:kms/alias:Alias a alias/my-key-alias``,
#: ``aws:cloudwatch/metricAlarm:MetricAlarm example alarm-12345``). Any other type's id is one AWS gives (an ARN,
#: ``sg-``, ``ns-``, ``b-``, a key id), read in the account.
IMPORT_ID_INPUT: Mapping[str, str] = {
    "aws:iam/role:Role": "name",
    "aws:cloudwatch/logGroup:LogGroup": "name",
    "aws:ecr/repository:Repository": "name",
    "aws:lambda/function:Function": "name",
    "aws:codebuild/project:Project": "name",
    "aws:ecs/cluster:Cluster": "name",
    "aws:s3/bucket:Bucket": "bucket",
    "aws:kms/alias:Alias": "name",
    "aws:cloudwatch/metricAlarm:MetricAlarm": "name",
}

ECS_SERVICE = "aws:ecs/service:Service"
"""Imported as ``<cluster name>/<service name>`` (pulumi-aws: ``pulumi import aws:ecs/service:Service imported
cluster-name/service-name``); the program gives both (its ``cluster`` input is the cluster's ARN, whose last part is
its name). The likeliest pending create of all: compute's ``up`` waits up to ``compute.steady_state_timeout_minutes``
inside each service's create (``wait_for_steady_state``), where a job's timeout finds it."""

#: What the type token of a Python dynamic resource starts with: ``pulumi-python:dynamic:Resource``, or
#: ``pulumi-python:dynamic/<module>:<name>`` for a subclass naming its own (pulumi.dynamic.Resource.__init_subclass__).
DYNAMIC_TYPE_PREFIX = "pulumi-python:dynamic"
#: The provider type of every Python dynamic resource, in its provider reference (``<provider URN>::<id>``).
DYNAMIC_PROVIDER_TYPE = "pulumi:providers:pulumi-python"

#: Inputs that name a resource, for finding one whose id the program does not give.
NAME_INPUTS = ("name", "bucket", "brokerName", "functionName", "roleName", "namePrefix")


class PendingCreates(PlatformError):
    """A stack of an ``up`` or ``destroy`` records creates an earlier update never saw finish (exit 2: nothing was
    run)."""

    exit_code = 2


@dataclass(frozen=True)
class PendingOperation:
    kind: str
    """``creating``, ``updating``, ``deleting``, ``reading`` or ``importing``."""
    urn: str
    type: str
    inputs: Mapping[str, Any]
    parent: str = ""
    """The parent's URN, as the state records it."""
    provider: str = ""
    """The provider reference, ``<provider URN>::<provider id>``, as the state records it."""
    replacing: bool = False
    """Its URN is in the state, marked ``pendingReplacement``: a delete-before-replace deleted the old one, then this
    create of the new one never finished (pulumi/pulumi pkg/resource/deploy/step.go DeleteStep.Apply keeps the old
    entry "throughout the replace operation"). ``pulumi import`` refuses that URN ("resource ... already exists":
    ImportStep.Apply), and the next ``up`` creates the replacement because of the mark."""
    replacing_live: bool = False
    """Its URN is in the state, unmarked: a create-before-delete replacement's create of the new one never finished,
    the old one still there and recorded. ``pulumi import`` refuses that URN too; the next ``up`` replaces it again."""

    @property
    def dynamic(self) -> bool:
        """One of the platform's dynamic resources (``pulumi.dynamic``), which ``pulumi import`` cannot take
        (pulumi/pulumi#16175) and whose create takes over what exists (shared.components.broker_logs adopts its log
        group; the drains, shared.components.delete_wait, hold nothing in AWS)."""
        return self.type.startswith(DYNAMIC_TYPE_PREFIX) or f"::{DYNAMIC_PROVIDER_TYPE}::" in self.provider

    @property
    def resource_name(self) -> str:
        """The name the program registered the resource under (the URN's last part)."""
        return self.urn.rsplit("::", 1)[-1]

    @property
    def import_id(self) -> str | None:
        """The id ``pulumi import`` takes, where the program gives it (:data:`IMPORT_ID_INPUT`)."""
        if self.type == ECS_SERVICE:
            cluster, name = self.inputs.get("cluster"), self.inputs.get("name")
            if isinstance(cluster, str) and cluster and isinstance(name, str) and name:
                return f"{cluster.rsplit('/', 1)[-1]}/{name}"
            return None
        value = self.inputs.get(IMPORT_ID_INPUT.get(self.type, ""))
        return value if isinstance(value, str) and value else None

    @property
    def name(self) -> str | None:
        """The name the program gave the resource (to find it in the account), if any."""
        for key in NAME_INPUTS:
            value = self.inputs.get(key)
            if isinstance(value, str) and value:
                return value
        return None


def pending_operations(deployment: Mapping[str, Any] | None) -> list[PendingOperation]:
    """The ``pending_operations`` of an exported ``deployment`` (``pulumi stack export``, apitype.DeploymentV3:
    ``[{"resource": {"urn", "type", "inputs", ...}, "type": "creating"}, ...]``); none without a state."""
    found = []
    resources = [resource for resource in (deployment or {}).get("resources") or [] if isinstance(resource, Mapping)]
    replacing = {str(resource.get("urn", "")) for resource in resources if resource.get("pendingReplacement")}
    live = {str(resource.get("urn", "")) for resource in resources if is_live_entry(resource)}
    for entry in (deployment or {}).get("pending_operations") or []:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("resource"), Mapping):
            continue
        resource = entry["resource"]
        inputs = resource.get("inputs")
        found.append(PendingOperation(str(entry.get("type", "")), str(resource.get("urn", "")),
                                      str(resource.get("type", "")), inputs if isinstance(inputs, Mapping) else {},
                                      str(resource.get("parent") or ""), str(resource.get("provider") or ""),
                                      str(resource.get("urn", "")) in replacing,
                                      str(resource.get("urn", "")) in live))
    return found


def _quote(word: str) -> str:
    return shlex.quote(word)


def env_words(backend_url: str) -> list[str]:
    """The variables every command runs with: the env's backend, and the secrets provider its state records (a
    checkout without ``stacks/<layer>/Pulumi.<env>.yaml``, a CI runner or the deploy runner, otherwise builds the
    backend's default one: a passphrase that fails, or re-encrypts; pkg/cmd/pulumi/stack/secrets.go
    GetSecretsManager), as the orchestrator's own runs do (:mod:`shared.orchestrate.automation`)."""
    return [f"PULUMI_BACKEND_URL={_quote(backend_url)}", "PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER=true"]


def env_prefix(backend_url: str | None) -> str:
    """:func:`env_words` as the start of a printed command line (nothing where the backend is unknown)."""
    return " ".join(env_words(backend_url)) + " " if backend_url else ""


def import_command(stack: str, op: PendingOperation, backend_url: str) -> str:
    """The ``pulumi import`` that takes ``op``'s resource into the state at its own URN (its id, where the program
    gives it, else ``<ID>``)."""
    words = [*env_words(backend_url), "pulumi", "import", "--stack", stack]
    if op.parent:
        words += ["--parent", _quote(f"parent={op.parent}")]
    if op.provider:  # a provider reference is <URN>::<id>; --provider takes the URN (pkg/resource/providers)
        words += ["--provider", _quote(f"provider={op.provider.rsplit('::', 1)[0]}")]
    words += ["--protect=false", "--generate-code=false", "--yes", _quote(op.type), _quote(op.resource_name),
              _quote(op.import_id or "<ID>")]
    return " ".join(words)


def refresh_command(stack: str, backend_url: str, run_program: bool) -> str:
    """The ``pulumi refresh`` that drops every pending-create record of ``stack`` (after the imports)."""
    words = [*env_words(backend_url), "pulumi", "refresh", "--stack", stack,
             *(["--run-program"] if run_program else []), "--clear-pending-creates", "--yes"]
    return " ".join(words)


AGAIN = ("create it again, failing on the name it holds (already exists) after the layers before it ran, or making a "
         "second one beside it")
PASSED_BY = "pass it by and leave it in the account"


def pending_creates_refusal(env_name: str, action: str, creates: Mapping[str, tuple[str, Sequence[PendingOperation]]],
                            backend_url: str, run_program_layers: frozenset[str] = frozenset(), *,
                            refused: bool = True) -> str:
    """Why ``action`` is refused (``refused`` False: the note of an action that goes on): ``creates`` maps each layer
    to its stack name and its pending creates."""
    total = sum(len(ops) for _, ops in creates.values())
    creates_again = action in ("up", "preview")  # a preview is of the up that would
    verdict = " refused, nothing was run" if refused else ""
    lines = [
        f"{action} {env_name}{verdict}: the state records {total} create(s) an earlier update started "
        "and never saw finish (killed mid-way: a CI job or the deploy runner's build past its timeout, a machine "
        "asleep, a second Ctrl-C, a crash). If another run of this env is under way right now, these are its own: "
        "wait for it and run again. Otherwise whether AWS made each one is unknown to Pulumi: the "
        f"{'update' if creates_again else action} would {AGAIN if creates_again else PASSED_BY}, "
        "and the record stays until resolved. For each, look in the account (the console, or the CLI's "
        "describe/get of its type, by the name below):"]
    for layer, (stack, ops) in creates.items():
        lines.append(f"  {layer} ({stack}):")
        for op in ops:
            named = f" named {op.name!r}" if op.name else ""
            if op.dynamic:
                where = ("a platform dynamic resource: nothing to look up or import (`pulumi import` cannot take "
                         "one, pulumi/pulumi#16175); its next create takes over what exists")
            elif op.replacing:
                where = (f"the replacement of one a delete-before-replace already deleted: `pulumi import` refuses "
                         f"its URN, which the state still holds marked pendingReplacement, and the next `up` creates "
                         f"it. Where AWS made it, delete it there first (its name is taken, and the next create would "
                         f"fail on it), or take it into that entry: `pulumi stack export --stack {stack} --file "
                         "state.json`, in the entry of this URN set \"id\" to the new one's (a broker's b-..., an "
                         "ECS service's ARN, unchanged) and delete \"pendingReplacement\", then `pulumi stack import "
                         f"--stack {stack} --file state.json`")
            elif op.replacing_live:
                where = ("the replacement of one the state still holds at this URN (created before the old one is "
                         "deleted): `pulumi import` refuses its URN, and the next `up` replaces it again. Where AWS "
                         "made the new one, delete that one there first (the old one stays, in use)")
            else:
                where = (f"its id is {op.import_id!r}" if op.import_id else
                         "its id is the one its provider's `pulumi import` of the type takes (the type's Import "
                         "section: an ARN, sg-..., ns-..., b-..., a key id; a RabbitMQ queue's or exchange's "
                         "name@vhost)")
            lines.append(f"    {op.type}{named}: {op.urn} ({where})")
    lines.append(
        "Then, in each stack's folder, with the env's credentials: for each resource that exists, its `pulumi import` "
        "below (its id filled in where it says <ID>), which takes it into the state at its own URN; skip the import of "
        "each that does not. Last, the stack's `pulumi refresh --clear-pending-creates`, which drops every record "
        "(imported or not; in a terminal it asks first: confirm, and answer clear for each). Not `refresh "
        "--import-pending-creates`: it drops the record without taking the resource in, and the next update creates "
        "it again:")
    for layer, (stack, ops) in creates.items():
        for op in ops:
            if not (op.dynamic or op.replacing or op.replacing_live):  # none of them can be imported (above)
                lines.append(f"  in stacks/{layer}: `{import_command(stack, op, backend_url)}`")
        lines.append(f"  in stacks/{layer}: `{refresh_command(stack, backend_url, layer in run_program_layers)}`")
    lines.append("Then run again (README, \"An update killed mid-way\").")
    return "\n".join(lines)


def pending_note(env_name: str, others: Mapping[str, Sequence[PendingOperation]]) -> str:
    """A note on the pending operations of other kinds (the update goes on; the state written next drops them)."""
    listed = "; ".join(f"{layer}: " + ", ".join(f"{op.kind} {op.urn}" for op in ops) for layer, ops in others.items())
    return (f"the state of {env_name} records operations an earlier update never saw finish ({listed}): Pulumi warns "
            "and goes on, the resource is still in the state and its step runs again where needed, and the next state "
            "written drops the record (an `importing` one too, whose resource is then not in the state: an import "
            "killed mid-way, to be run again by hand)")
