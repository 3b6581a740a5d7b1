"""Compute's `up` with its images: the registry first when images are missing, ECS checked afterwards.

On a fresh account compute's repositories are empty, and an ECS service pinned to a digest nobody
pushed yet can only fail (CannotPullContainerError, then the circuit breaker stops the deployment,
and a later push changes nothing Pulumi sees). So :class:`ImageGatedRunner` wraps the real runner:

0. before anything it looks for repositories of the platform's names that compute did not create
   (:func:`shared.images.foreign_repositories`: ECR's default settings, e.g. made by same-account
   replication before compute ran): compute could not create them, so it stops, naming each and the fix;
1. before compute's update it asks the env's registry for every released image
   (:func:`shared.images.missing_images`); all there: one full update, as always;
2. otherwise **step 1**: a targeted update of the registry alone -- the ECR repositories, their
   lifecycle policies, the registry's replication settings, and what they need (KMS key, provider,
   parent components): URNs derived from the synthesized compute layer (:func:`registry_targets`),
   dependents not included;
3. then it asks again: an image still missing stops compute (exit 1) naming the service, the digest
   and how to push or replicate it; nothing else of compute was created. All there: **step 2**, the
   full update -- unless a released image is not of the platform the task definitions ask Fargate for
   (:func:`shared.images.wrong_platforms`: linux/amd64, or an index that has it), or is too large for its
   tasks' ephemeral storage (:func:`shared.images.oversized_images`), which stops compute before the services
   change (checked whether or not step 1 ran; the images already in the registry are checked before any layer
   runs too, :func:`refuse_unrunnable_images`, exit 2); then, right before the full update, every released image
   gets its release tag (ECR PutImage, :mod:`shared.release_tags`). An interrupt stops before that first write (the
   layer NOT_RUN: nothing of it changed), or during it before the next image (INTERRUPTED, naming the tags written);
4. after the full update it reads what ECS runs (:func:`shared.images.running_images`): a service
   that does not run its released digest with a completed rollout, or runs another task definition
   than compute's outputs say its ``up`` registered (a circuit-breaker rollback also ends "steady",
   and one of a change that kept the image keeps the digest), or whose newest deployment since the
   update started ECS rolled back (:func:`shared.images.rolled_back_deployments`: one of a change
   that kept the task definition too, a Service Connect or network configuration's), fails compute. A service
   resting at 0 tasks (``min_count`` 0, no backlog) is a note: no task runs its digest yet.

The AWS account of the credentials is checked in :meth:`ImageGatedRunner.prepare`, before any
layer runs (exit 2 when it is not the env's), and so is what ECS runs: a service an operator rolled back by hand
(:func:`refuse_over_hand_rollbacks`) gets no other image than the one it was rolled back to (exit 2).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from shared.envs import EnvConfig, env_path, is_digest
from shared.errors import ConfigError, PlatformError, display_path, raise_all
from shared.gateway_names import ALB_LOG_BUCKET_MARK
from shared.images import (
    HAND_ROLLBACK_TAG,
    ClientFactory,
    ForeignRepository,
    HeldBucket,
    HeldRepository,
    MissingImage,
    OversizedImage,
    RollbackReport,
    RunningImage,
    SessionClients,
    WrongPlatform,
    applied_task_definitions,
    deletion_protected,
    foreign_repositories,
    held_buckets,
    held_images,
    missing_images,
    oversized_images,
    released_images_kept,
    rolled_back_deployments,
    rollout_mismatches,
    running_images,
    verify_account,
    wrong_platforms,
)
from shared.orchestrate.automation import (
    BUCKET_TYPE,
    LOAD_BALANCER_TYPES,
    StateLoadBalancer,
    deletion_protection_off_command,
)
from shared.orchestrate.model import Action, LayerResult, LayerRunner, Operation, OutputSink, Status
from shared.orchestrate.report import failure_detail
from shared.urns import ROOT_STACK_TYPE, engine_urn

if TYPE_CHECKING:
    # shared.release_tags imports pulumi and pulumi_aws (through shared.components.ecr): imported when a
    # release is tagged, not by every importer of this module (promote reads ECS and ECR through it).
    from shared.orchestrate.settled import Converging
    from shared.release_tags import TagResult

LAYER = "compute"
REGISTRY_TYPES = (
    "aws:ecr/repository:Repository",
    "aws:ecr/lifecyclePolicy:LifecyclePolicy",
    "aws:ecr/registryPolicy:RegistryPolicy",
    "aws:ecr/replicationConfiguration:ReplicationConfiguration",
)


# -- which resources step 1 updates -------------------------------------------------------------------


def registry_targets(document: Mapping[str, Any]) -> list[str]:
    """Engine URNs of the registry resources of a synthesized compute layer and of everything they need.

    A targeted update fails when a target depends on (or is parented by) a resource that is neither
    targeted nor already in the stack (pulumi/pulumi#5869, #14531), so the set is closed over parents,
    providers, dependencies and property dependencies. Sorted: the same input gives the same list.
    """
    resources = list(document["resources"])
    by_urn = {str(r["urn"]): r for r in resources}
    wanted: set[str] = set()
    queue = [str(r["urn"]) for r in resources if r["type"] in REGISTRY_TYPES]
    while queue:
        urn = queue.pop()
        resource = by_urn.get(urn)
        if urn in wanted or resource is None or resource["type"] == ROOT_STACK_TYPE:
            continue
        wanted.add(urn)
        queue.extend(filter(None, [resource.get("parent"), resource.get("provider")]))
        queue.extend(resource.get("dependencies") or [])
        for urns in (resource.get("property_dependencies") or {}).values():
            queue.extend(urns)
    return sorted(engine_urn(by_urn[urn], by_urn) for urn in wanted)


def synth_compute(env: EnvConfig) -> Mapping[str, Any]:
    """``env``'s compute layer, synthesized offline now."""
    from shared.synth.engine import synth_env

    return synth_env(env.name, [LAYER])[LAYER]


def synth_registry_targets(env: EnvConfig) -> list[str]:
    """:func:`registry_targets` of ``env``'s compute layer, synthesized offline now."""
    return registry_targets(synth_compute(env))


def program_buckets(document: Mapping[str, Any]) -> list[str]:
    """The names of the S3 buckets a synthesized compute layer declares (each names its bucket: the ALB's access
    logs, the model-artifact store's), sorted."""
    return sorted({str(r["inputs"]["bucket"]) for r in document["resources"]
                   if r["type"] == BUCKET_TYPE and isinstance((r.get("inputs") or {}).get("bucket"), str)})


def program_load_balancers(document: Mapping[str, Any]) -> list[str]:
    """The resource names of the load balancers a synthesized compute layer declares (a public gateway's
    ``<service>-alb``, shared.gateway_names.load_balancer_resource_name: the last part of its URN), sorted. The
    gateway sets no ``name`` input (Pulumi auto-names it), so the resource name is what stays from one ``up`` to the
    next."""
    return sorted({str(r["name"]) for r in document["resources"] if r["type"] in LOAD_BALANCER_TYPES})


# -- the AWS side, injectable --------------------------------------------------------------------------


class ImageChecks(Protocol):
    """What the gate asks AWS (and the synth); :class:`AwsImageChecks` in real runs."""

    def verify(self, env: EnvConfig) -> None:
        """Refuse (exit 2) credentials that are not of the env's account."""

    def missing(self, env: EnvConfig, images: Mapping[str, str]) -> list[MissingImage]:
        """The released images the env's registry cannot serve."""

    def foreign(self, env: EnvConfig) -> list[ForeignRepository]:
        """The repositories of the catalog's services in the env's registry that compute did not create."""

    def wrong_platforms(self, env: EnvConfig, images: Mapping[str, str]) -> list[WrongPlatform]:
        """The released images Fargate's platform of the task definitions cannot run."""

    def oversized(self, env: EnvConfig, images: Mapping[str, str]) -> list[OversizedImage]:
        """The released images whose pull alone does not fit their tasks' ephemeral storage."""

    def held(self, env: EnvConfig, services: Sequence[str] | None = None) -> list[HeldRepository]:
        """compute's repositories in the env's registry that still hold images (compute cannot delete them): of every
        catalog service (None: compute's own, KMS-encrypted), or of ``services``, removed ones whose repositories
        compute's state holds by name (any repository of such a name: its delete targets the name)."""

    def held_buckets(self, env: EnvConfig, buckets: Sequence[str]) -> list[HeldBucket]:
        """The ``buckets`` (compute's state's, without force_destroy) that hold objects: its destroy cannot delete
        them."""

    def deletion_protected(self, env: EnvConfig, load_balancers: Sequence[str]) -> list[str]:
        """The ``load_balancers`` (ARNs) whose AWS deletion protection is on now: ELB refuses to delete them."""

    def running(self, env: EnvConfig, services: Sequence[str]) -> list[RunningImage]:
        """What ECS runs for ``services`` in the env."""

    def rollbacks(self, env: EnvConfig, services: Sequence[str], since: datetime) -> RollbackReport:
        """The ECS services of ``services`` whose newest deployment since ``since`` ECS rolled back."""

    def registry_targets(self, env: EnvConfig) -> list[str]:
        """The URNs step 1 updates."""

    def program_buckets(self, env: EnvConfig) -> list[str]:
        """The S3 buckets compute's program declares (:func:`program_buckets`): its ``up`` deletes any other its state
        holds."""

    def program_load_balancers(self, env: EnvConfig) -> list[str]:
        """The load balancers compute's program declares (:func:`program_load_balancers`): its ``up`` deletes any other
        its state holds."""

    def tag_release(self, env: EnvConfig, stop: Callable[[], bool] | None = None) -> list[TagResult]:
        """Give every released image its ``release_<env>_<digest>`` tag in the env's registry (idempotent); once
        ``stop`` answers True, no further image is tagged and the results so far come back."""


class AwsImageChecks:
    """boto3 with each env's credentials (:mod:`shared.images`) and the offline synth."""

    def __init__(self, clients: ClientFactory | None = None) -> None:
        self.clients: ClientFactory = clients if clients is not None else SessionClients()
        self._documents: dict[str, Mapping[str, Any]] = {}

    def _compute(self, env: EnvConfig) -> Mapping[str, Any]:
        """compute's synth for ``env``, once a run."""
        if env.name not in self._documents:
            self._documents[env.name] = synth_compute(env)
        return self._documents[env.name]

    def verify(self, env: EnvConfig) -> None:
        verify_account(env, self.clients)

    def missing(self, env: EnvConfig, images: Mapping[str, str]) -> list[MissingImage]:
        return missing_images(env, images, self.clients)

    def foreign(self, env: EnvConfig) -> list[ForeignRepository]:
        from shared.catalog import load_catalog

        return foreign_repositories(env, load_catalog().names(), self.clients)

    def wrong_platforms(self, env: EnvConfig, images: Mapping[str, str]) -> list[WrongPlatform]:
        return wrong_platforms(env, images, self.clients)

    def oversized(self, env: EnvConfig, images: Mapping[str, str]) -> list[OversizedImage]:
        from shared.catalog import load_catalog

        storage = {spec.name: spec.ephemeral_storage_gib for spec in load_catalog()}
        return oversized_images(env, images, storage, self.clients)

    def held(self, env: EnvConfig, services: Sequence[str] | None = None) -> list[HeldRepository]:
        from shared.catalog import load_catalog

        if services is None:
            return held_images(env, load_catalog().names(), self.clients)
        return held_images(env, services, self.clients, in_state=True)

    def held_buckets(self, env: EnvConfig, buckets: Sequence[str]) -> list[HeldBucket]:
        return held_buckets(env, buckets, self.clients)

    def deletion_protected(self, env: EnvConfig, load_balancers: Sequence[str]) -> list[str]:
        return deletion_protected(env, load_balancers, self.clients)

    def running(self, env: EnvConfig, services: Sequence[str]) -> list[RunningImage]:
        return running_images(env, services, self.clients)

    def rollbacks(self, env: EnvConfig, services: Sequence[str], since: datetime) -> RollbackReport:
        return rolled_back_deployments(env, services, self.clients, since)

    def registry_targets(self, env: EnvConfig) -> list[str]:
        return registry_targets(self._compute(env))

    def program_buckets(self, env: EnvConfig) -> list[str]:
        return program_buckets(self._compute(env))

    def program_load_balancers(self, env: EnvConfig) -> list[str]:
        return program_load_balancers(self._compute(env))

    def tag_release(self, env: EnvConfig, stop: Callable[[], bool] | None = None) -> list[TagResult]:
        from shared.release_tags import tag_release

        return tag_release(self.clients(env, "ecr"), env.release.images, env.name, stop=stop)


# -- the runner ------------------------------------------------------------------------------------------


def _merged(first: Mapping[str, int], second: Mapping[str, int]) -> dict[str, int]:
    merged = dict(first)
    for op, count in second.items():
        # "same" of step 2 counts resources step 1 already created: keep step 2's picture for it.
        merged[op] = count if op == "same" else merged.get(op, 0) + count
    return merged


class ImageGatedRunner:
    """A :class:`LayerRunner` that runs compute's `up` as described in the module docstring."""

    def __init__(self, inner: LayerRunner, checks: ImageChecks | None = None) -> None:
        self.inner = inner
        self.checks: ImageChecks = checks if checks is not None else AwsImageChecks()
        self._targets: list[str] = []
        self._buckets: list[str] = []
        self._load_balancers: list[str] = []
        self._interrupted = False

    @staticmethod
    def gates(layers: Sequence[str], operation: Operation) -> bool:
        return LAYER in layers and operation.action is Action.UP

    @staticmethod
    def _gates_destroy(layer: str, operation: Operation) -> bool:
        """compute's destroy (not its preview): its repositories are looked at first (:meth:`_held_refusal`)."""
        return layer == LAYER and operation.action is Action.DESTROY and not operation.preview_only

    def prepare(self, env: EnvConfig, layers: Sequence[str], operation: Operation) -> Sequence[str] | None:
        notes = self.inner.prepare(env, layers, operation)
        if self.gates(layers, operation):
            self.checks.verify(env)
            images = dict(env.release.images)
            # the images the registry serves now (a missing or archived one is compute's step 1, with its message)
            present = present_images(images, self.checks.missing(env, images))
            wrong = self.checks.wrong_platforms(env, present)
            oversized = self.checks.oversized(env, present)
            refuse_unrunnable_images(env, wrong, [image for image in oversized if image.refused])
            refuse_over_hand_rollbacks(env, self.checks.running(env, list(images)))
            notes = [*(notes or ()), *(f"{display_path(str(env_path(env.name)))}: release.images.{image.service}: "
                                       f"{image.reason(catalog_file())}" for image in oversized if not image.refused)]
            # Synthesized here, before any layer runs: a program that cannot synth stops everything.
            self._targets = self.checks.registry_targets(env)
            self._buckets = self.checks.program_buckets(env)
            self._load_balancers = self.checks.program_load_balancers(env)
        elif LAYER in layers and self._gates_destroy(LAYER, operation):
            self.checks.verify(env)  # the registry read before compute's destroy must be the env's own
        return notes

    def stack_outputs(self, layer: str, env: EnvConfig) -> Mapping[str, Any] | None:
        return self.inner.stack_outputs(layer, env)

    def awaiting_user(self) -> contextlib.AbstractContextManager[None]:
        """:meth:`AutomationRunner.awaiting_user`, where the inner runner has it."""
        found = getattr(self.inner, "awaiting_user", None)
        return found() if found is not None else contextlib.nullcontext()

    def finish(self) -> None:
        """:meth:`AutomationRunner.finish` (the run is over), where the inner runner has it."""
        if (finish := getattr(self.inner, "finish", None)) is not None:
            finish()

    def stack_exists(self, layer: str, env: EnvConfig) -> bool:
        return self.inner.stack_exists(layer, env)

    def _inner_answer(self, name: str, layer: str, env: EnvConfig) -> Any:
        """The inner runner's answer to its ``name`` question about ``layer``'s state (an :class:`AutomationRunner`
        method), None where the inner runner cannot tell (a test's runner without it)."""
        found = getattr(self.inner, name, None)
        return found(layer, env) if found is not None else None

    def holds_resources(self, layer: str, env: EnvConfig) -> bool | None:
        """:meth:`AutomationRunner.holds_resources` (None: cannot tell)."""
        return cast("bool | None", self._inner_answer("holds_resources", layer, env))

    def state_log_groups(self, layer: str, env: EnvConfig) -> list[str] | None:
        """:meth:`AutomationRunner.state_log_groups` (None: cannot tell)."""
        return cast("list[str] | None", self._inner_answer("state_log_groups", layer, env))

    def state_broker_ids(self, layer: str, env: EnvConfig) -> list[str] | None:
        """:meth:`AutomationRunner.state_broker_ids` (None: cannot tell)."""
        return cast("list[str] | None", self._inner_answer("state_broker_ids", layer, env))

    def program_environment(self, values: Mapping[str, str]) -> None:
        """Handed to the inner runner (:meth:`AutomationRunner.program_environment`), where it takes them."""
        hand_over = getattr(self.inner, "program_environment", None)
        if hand_over is not None:
            hand_over(values)

    def expect_converging(self, env_name: str, changes: Mapping[str, Sequence[Converging]]) -> None:
        """Handed to the inner runner (:meth:`AutomationRunner.expect_converging`), where it takes them."""
        hand_over = getattr(self.inner, "expect_converging", None)
        if hand_over is not None:
            hand_over(env_name, changes)

    def app_mesh_urns(self, layer: str, env: EnvConfig) -> list[str] | None:
        """:meth:`AutomationRunner.app_mesh_urns` (None: cannot tell)."""
        return cast("list[str] | None", self._inner_answer("app_mesh_urns", layer, env))

    def state_backend_url(self, layer: str, env: EnvConfig) -> str | None:
        """:meth:`AutomationRunner.state_backend_url` (None: cannot tell)."""
        return cast("str | None", self._inner_answer("state_backend_url", layer, env))

    def rabbitmq_urns(self, layer: str, env: EnvConfig) -> list[str] | None:
        """:meth:`AutomationRunner.rabbitmq_urns` (None: cannot tell)."""
        return cast("list[str] | None", self._inner_answer("rabbitmq_urns", layer, env))

    def protected_urns(self, layer: str, env: EnvConfig) -> list[str] | None:
        """:meth:`AutomationRunner.protected_urns` (None: cannot tell)."""
        return cast("list[str] | None", self._inner_answer("protected_urns", layer, env))

    def unforced_buckets(self, layer: str, env: EnvConfig) -> list[str] | None:
        """:meth:`AutomationRunner.unforced_buckets` (None: cannot tell)."""
        return cast("list[str] | None", self._inner_answer("unforced_buckets", layer, env))

    def state_load_balancers(self, layer: str, env: EnvConfig) -> list[StateLoadBalancer] | None:
        """:meth:`AutomationRunner.state_load_balancers` (None: cannot tell)."""
        return cast("list[StateLoadBalancer] | None", self._inner_answer("state_load_balancers", layer, env))

    def _bucket_refusal(self, env: EnvConfig, on_output: OutputSink) -> LayerResult | None:
        """FAILED, before anything of compute is deleted, when a bucket its state records without ``force_destroy``
        still holds objects.

        S3 refuses to delete such a bucket (BucketNotEmpty), and the provider empties one first only where the state
        says ``force_destroy`` (:func:`shared.orchestrate.automation.unforced_buckets`): the destroy would fail there
        after deleting what was scheduled before it (the ALB, services, roles), half-way. The ALB's access-log buckets
        and the model-artifact store's buckets have the flag exactly where the env does not protect state
        (shared.components.gateway, shared.components.artifacts); a stack deployed before its program set it records
        it only after an ``up``. Where the state protects them (prod) the destroy was refused before any layer ran
        (shared.orchestrate.cli.check_destroy_protect); this asks only once they were unprotected."""
        buckets = self.unforced_buckets(LAYER, env)
        if not buckets:
            return None
        held = self.checks.held_buckets(env, buckets)
        if not held:
            return None
        for bucket in held:
            on_output(f"buckets: without force_destroy, not empty: {bucket.describe(env)}")
        listed = ", ".join(bucket.bucket for bucket in held)
        stop_logs = _stop_logs_first(held)
        if env.protect:
            how = (f"{env.name} protects state, so they keep their objects (access logs are audit evidence, models "
                   f"are trained data): copy what must be kept, empty them (above){stop_logs}")
        else:
            how = (f"{env.name} does not protect state, so its program sets force_destroy on them, but compute's state "
                   f"was written before: `nox -s up -- {env.name} --layers compute --exact` stores it (the provider "
                   f"applies the flag only from the state), or empty them (above){stop_logs}")
        return LayerResult(LAYER, Status.FAILED, detail=(
            f"nothing of {LAYER} was deleted: S3 refuses to delete a bucket that holds objects (BucketNotEmpty) and "
            f"compute's state records no force_destroy for {listed}. {how}, then run `nox -s destroy -- {env.name}` "
            "again"))

    def _held_refusal(self, env: EnvConfig, on_output: OutputSink) -> LayerResult | None:
        """FAILED, before anything of compute is deleted, when one of its repositories still holds images.

        compute's repositories have ``force_delete`` off (shared.components.ecr), so the provider's DeleteRepository
        fails on one that is not empty (RepositoryNotEmptyException) -- in dev, where CI pushes, always -- but only
        after the destroy has deleted what was scheduled before it (the services, roles, the artifact bucket with its
        models): a half-deleted compute, and every layer it reads kept. Asked of the registry first instead. (Where
        compute's state protects resources, prod, the destroy was refused before any layer ran:
        shared.orchestrate.cli.check_destroy_protect, so the operator is never sent to delete a protected env's
        images first.)"""
        if self.holds_resources(LAYER, env) is False:
            return None
        held = self.checks.held(env)
        # and every repository compute's state holds, by name, whoever made the one there now: a retired service's
        # (its up, which deletes it, was refused while it held images), or one same-account replication made again
        # (AES256) after a first destroy's refusal had it deleted by hand: the destroy deletes that name as well
        others = [service for service in self._deployed_repositories(env)
                  if service not in {repository.service for repository in held}]
        if others:
            held = [*held, *self.checks.held(env, others)]
        return _refused(
            held, on_output,
            lambda repository: f"images: still in the registry: {repository.describe(env)}",
            lambda held: (
                f"nothing of {LAYER} was deleted: {ECR_REFUSES}, and {_with_images(held)} still hold(s) some. "
                + (f"First: {kept}. Then e" if (kept := released_images_kept(
                    env, (repository.service for repository in held))) else "E")
                + f"mpty or delete them (above; {env.name}'s are the images its services ran: keep what another env "
                f"still needs, e.g. what its replication has not copied yet), then run "
                f"`nox -s destroy -- {env.name}` again"))

    def _deployed_repositories(self, env: EnvConfig) -> list[str]:
        """The services whose repositories compute's deployed stack holds (its ``repository_urls``: every service of
        the catalog it was last deployed with), sorted; none where it has no such output."""
        deployed = (self.stack_outputs(LAYER, env) or {}).get("repository_urls")
        return sorted(deployed) if isinstance(deployed, Mapping) else []

    def _removed_repositories(self, env: EnvConfig) -> list[str]:
        """The services of :meth:`_deployed_repositories` that the catalog no longer has: compute's ``up`` deletes
        them."""
        from shared.catalog import load_catalog

        names = load_catalog().names()
        return [service for service in self._deployed_repositories(env) if service not in names]

    def _removed_held_refusal(self, env: EnvConfig, on_output: OutputSink) -> LayerResult | None:
        """FAILED, before anything of compute changes, when its ``up`` would delete the repository of a service removed
        from the catalog and that repository holds images: ECR's DeleteRepository refuses it (force_delete is off:
        RepositoryNotEmptyException, botocore ecr model), and the update fails there after it has deleted the service's
        ECS service, roles and log group, and again on every later ``up`` (the repository stays in the state)."""
        removed = self._removed_repositories(env)
        return _refused(
            self.checks.held(env, removed) if removed else [], on_output,
            lambda kept: f"images: removed from the catalog, still in the registry: {kept.describe(env, 'up')}",
            lambda held: (
                f"nothing of {LAYER} was changed: its up would delete the repositories of "
                f"{', '.join(r.service for r in held)} (no longer in the catalog), and {ECR_REFUSES}: "
                f"{_with_images(held)}. Keep "
                f"what another env still needs (what its replication or a promotion has not copied yet), delete "
                f"{'it' if len(held) == 1 else 'them'} with the images (above), then run the up again (it asks "
                f"--allow-replace for each repository's delete)"))

    def _removed_bucket_refusal(self, env: EnvConfig, on_output: OutputSink) -> LayerResult | None:
        """FAILED, before anything of compute changes, when its ``up`` would delete a bucket its state records without
        ``force_destroy`` (:func:`shared.orchestrate.automation.unforced_buckets`) and that bucket holds objects.

        A bucket compute's program no longer declares (a public service's gateway turned off or the service removed:
        its ALB's access-log bucket) is deleted with the flag its state holds, the program's is not read: for a stack
        deployed before the program set it, none. S3 refuses (BucketNotEmpty), and the update fails there after it
        has deleted the load balancer and whatever else was scheduled first, and again on every later ``up``."""
        unforced = self.unforced_buckets(LAYER, env) or []
        removed = [bucket for bucket in unforced if bucket not in self._buckets]
        return _refused(
            self.checks.held_buckets(env, removed) if removed else [], on_output,
            lambda bucket: f"buckets: no longer in compute's program, without force_destroy, not empty: "
                           f"{bucket.describe(env)}",
            lambda held: _removed_bucket_detail(env, held))

    def _deletion_protected_balancers(self, env: EnvConfig) -> tuple[list[StateLoadBalancer], set[str]]:
        """The load balancers compute's state records, and the ARNs of those whose AWS deletion protection ELB says
        is on (one ELB read each; a state entry without an id, ``<its ARN>``, names nothing ELB could answer for)."""
        recorded = self.state_load_balancers(LAYER, env) or []
        arns = [balancer.arn for balancer in recorded if balancer.arn.startswith("arn:")]
        return recorded, set(self.checks.deletion_protected(env, arns)) if arns else set()

    def _protected_load_balancer_destroy_refusal(self, env: EnvConfig,
                                                 on_output: OutputSink) -> LayerResult | None:
        """FAILED, before anything of compute is deleted, when a load balancer its state records has AWS's deletion
        protection on (the public gateway's where the env protects state, once its Pulumi ``protect`` was lifted; one
        a remediation outside the platform turned on): the destroy would delete the listener, target group and
        services, then stop at DeleteLoadBalancer (OperationNotPermitted), every layer it reads kept, on every run."""
        recorded, still_on = self._deletion_protected_balancers(env)
        return _refused(
            [balancer for balancer in recorded if balancer.arn in still_on], on_output,
            lambda balancer: f"load balancers: AWS deletion protection on: {balancer.name} ({balancer.arn})",
            lambda protected: (
                f"nothing of {LAYER} was deleted: AWS's deletion protection on "
                f"{', '.join(balancer.name for balancer in protected)} refuses DeleteLoadBalancer "
                "(OperationNotPermitted), which the destroy would reach after deleting the listeners, target groups "
                "and services. Turn it off ("
                + "; ".join(deletion_protection_off_command(balancer.arn, env.region) for balancer in protected)
                + f"), then run `nox -s destroy -- {env.name}` again"))

    def _removed_protected_load_balancer_refusal(self, env: EnvConfig,
                                                 on_output: OutputSink) -> LayerResult | None:
        """FAILED, before anything of compute changes, when its ``up`` would delete a load balancer with AWS's deletion
        protection on: the public gateway's ALB where the env protects state (``enable_deletion_protection``,
        shared.components.gateway) once ``compute.public_gateway`` is turned off, or its service is no longer public
        or no longer released; one whose flag remediation outside the platform turned on (AWS Config, Security Hub
        ELB.6); an old copy the state marks ``delete``, left by a replacement whose delete failed.

        Pulumi's ``protect`` is the state's and ``up`` deletes what the program no longer declares through it, but
        AWS's flag is the load balancer's own: Elastic Load Balancing refuses DeleteLoadBalancer while it is on
        (OperationNotPermitted), and the provider's delete only calls it. The update would fail there after deleting
        the listener and target group (the gateway no longer serving), and again on every later ``up``. The state
        names the load balancers the ``up`` deletes (:func:`shared.orchestrate.automation.state_load_balancers`),
        ELB says whether the flag is on (one ELB read per load balancer the state records). A kept one with the flag
        on is handed to the inner runner, whose ``up`` is refused when its own preview replaces it (a changed
        force-new input: ``internal``, its type; :func:`shared.orchestrate.automation.
        replaced_protected_load_balancer_refusal`), as a pull request's offline plan diff flags it
        (shared.plan_diff.guarded); an old copy a replacement left is refused here on the next ``up``."""
        # the kept ones are asked about too, whose replacement the up's own preview may show
        # (AutomationRunner.hold_deletion_protected)
        recorded, still_on = self._deletion_protected_balancers(env)
        deleted = [balancer for balancer in recorded if balancer.old or balancer.name not in self._load_balancers]
        hand_over = getattr(self.inner, "hold_deletion_protected", None)
        if hand_over is not None:
            hand_over(LAYER, env, {balancer.name: balancer.arn for balancer in recorded
                                   if balancer.arn in still_on and balancer not in deleted})
        return _refused(
            [balancer for balancer in deleted if balancer.arn in still_on], on_output,
            lambda balancer: f"load balancers: {_why_deleted(balancer)}, AWS deletion protection on: "
                             f"{balancer.name} ({balancer.arn})",
            lambda removed: _removed_protected_load_balancer_detail(env, removed))

    def interrupt(self, terminate: bool = False) -> None:
        # no step 2 after an interrupted step 1; no release tag and no update after interrupted checks; no further
        # release tag after an interrupt during the tagging
        self._interrupted = True
        self.inner.interrupt(terminate)

    @staticmethod
    def _interrupted_before_update(layer: str, env: EnvConfig, first: LayerResult | None,
                                   written: Sequence[TagResult]) -> LayerResult:
        """compute stopped by an interrupt after its image checks, before its (full) update: NOT_RUN only when
        nothing of it was written to AWS; INTERRUPTED, saying what was, when step 1 created the registry or
        release tags were written (ECR PutImage; harmless to leave: each tag keeps a released image from expiring,
        and the next ``up`` finds it in place)."""
        done = ["step 1 (the registry) ran"] if first is not None else []
        if written:
            tags = ", ".join(f"{t.repository}@{t.digest} {t.tag}" for t in written)
            done.append(f"{len(written)} release tag(s) were written to {env.name}'s registry ({tags})")
        if not done:
            return LayerResult(layer, Status.NOT_RUN, detail="the run was interrupted during the image checks, "
                                                             "before any release tag was written; the update did "
                                                             "not start")
        return LayerResult(layer, Status.INTERRUPTED, first.changes if first is not None else {},
                           detail=f"interrupted before the update: {' and '.join(done)}; the services were not "
                                  "updated")

    def _preview_notes(self, env: EnvConfig, on_output: OutputSink) -> str:
        """What compute's ``up`` would find in the registry, asked read-only for its preview (DescribeRepositories,
        DescribeImages, BatchGetImage, GetDownloadUrlForLayer: no release tag is written, ECS is not read); the
        preview's plan cannot show it (the services' task definitions name the digests either way). Each finding on
        the output, the whole in a few words for compute's row; credentials that cannot read the registry (another
        account's, a role without ECR reads) are a note, never a refusal: only ``up`` refuses them."""
        images = dict(env.release.images)
        try:
            self.checks.verify(env)
            foreign = self.checks.foreign(env)
            missing = self.checks.missing(env, images)
            present = present_images(images, missing)
            wrong = self.checks.wrong_platforms(env, present)
            oversized = self.checks.oversized(env, present)
            try:
                removed = self._removed_repositories(env)
            except Exception as error:  # noqa: BLE001 - a failed `pulumi stack output`: said, the preview goes on
                on_output(f"images: which repositories compute's up deletes is unknown ({failure_detail(error)})")
                removed = []
            held = self.checks.held(env, removed) if removed else []
        except PlatformError as error:  # AwsAccessError: credentials, permissions
            on_output(f"images: not checked: {error}")
            return "images not checked (above)"
        for kept in held:
            on_output(f"images: removed from the catalog, still in the registry: {kept.describe(env, 'up')}")
        for repository in foreign:
            on_output(f"images: not compute's: {repository.describe()}")
        for item in missing:
            on_output(f"images: missing: {item.describe()}")
        for image in wrong:
            on_output(f"images: wrong platform: {image.describe()}")
        for big in oversized:
            on_output(f"{_oversized_heading(big)}: {big.service}: {big.reason(catalog_file())}")
        refused = [o for o in oversized if o.refused]
        stops: list[tuple[Sequence[Any], str]] = [
            (held, "up stops before any change: the repositories of {} (no longer in the catalog) hold images"),
            (foreign, "up stops before any change: repositories compute did not create ({})"),
            (missing, f"up stops before the services (after creating the registry): not in {env.name}'s registry: "
                      "{}"),
            (wrong, "up stops before the services: not the platform their tasks run: {}"),
            (refused, "up stops before the services: images larger than their tasks' ephemeral storage: {}"),
        ]
        # each text's {} is its items' services
        return "; ".join(text.replace("{}", ", ".join(item.service for item in items))
                         for items, text in stops if items)

    def run(self, layer: str, env: EnvConfig, operation: Operation, on_output: OutputSink) -> LayerResult:
        if self._gates_destroy(layer, operation):
            # The buckets first: the `up` their refusal may ask for needs the images the other asks to delete.
            return (self._bucket_refusal(env, on_output) or self._held_refusal(env, on_output)
                    or self._protected_load_balancer_destroy_refusal(env, on_output)
                    or self.inner.run(layer, env, operation, on_output))
        if layer == LAYER and operation.action is Action.PREVIEW:
            said = self._preview_notes(env, on_output)
            result = self.inner.run(layer, env, operation, on_output)
            if said and result.status is Status.SUCCEEDED:
                result = replace(result, detail="; ".join(filter(None, (result.detail, said))))
            return result
        if not (layer == LAYER and operation.action is Action.UP):
            return self.inner.run(layer, env, operation, on_output)
        refused = (self._removed_held_refusal(env, on_output) or self._removed_bucket_refusal(env, on_output)
                   or self._removed_protected_load_balancer_refusal(env, on_output))
        if refused is not None:
            return refused
        foreign = self.checks.foreign(env)
        if foreign:
            # Compute's create of such a repository can only fail (RepositoryAlreadyExistsException), after
            # whatever came before it in the update: stop before anything changes, saying why and what to do.
            for repository in foreign:
                on_output(f"images: not compute's: {repository.describe()}")
            return LayerResult(layer, Status.FAILED,
                               detail=f"{env.name}'s registry already holds {', '.join(f.service for f in foreign)} "
                                      "repositories compute did not create (what to do: above); nothing was changed")
        images = dict(env.release.images)
        missing = self.checks.missing(env, images)
        first: LayerResult | None = None
        if missing and not self._targets:
            # Never fall back to a full update: that is exactly the deployment that cannot pull its images.
            return LayerResult(layer, Status.FAILED, detail="released images are missing and the synthesized "
                                                            "compute layer names no registry resource to create first")
        if missing:
            on_output(f"images: {len(missing)} released image(s) not in {env.name}'s registry yet "
                      f"({', '.join(m.service for m in missing)}); step 1 of 2: the registry alone "
                      f"({len(self._targets)} resources, dependents excluded):")
            for urn in self._targets:
                on_output(f"images:   --target {urn}")
            first = self.inner.run(layer, env, replace(operation, targets=tuple(self._targets)), on_output)
            if first.status is not Status.SUCCEEDED:
                return replace(first, detail=f"step 1 (registry): {first.detail}")
            missing = self.checks.missing(env, images)
            if missing:
                for item in missing:
                    on_output(f"images: missing: {item.describe()}")
                listed = "; ".join(f"{m.service} {m.reference}" for m in missing)
                return LayerResult(layer, Status.FAILED, first.changes,
                                   detail=f"stopped after the registry, before the services: not in "
                                          f"{env.name}'s registry: {listed} (how to push or replicate: above)")
            if self._interrupted:
                return LayerResult(layer, Status.INTERRUPTED, first.changes,
                                   detail="interrupted after step 1 (the registry); the services were not started")
            on_output("images: every released image is in the registry; step 2 of 2: the full update")
        # Fargate runs what the task definitions' runtime_platform names (the catalog's architecture: linux/amd64
        # unless it says arm64): an image of another platform would start, fail ("exec format error", or no matching
        # manifest in an index) and be rolled back by the circuit breaker only after the deployment's retries. A task
        # stores the pulled layers and their unpacked contents on its ephemeral storage: an image that does not fit
        # fails every task's pull (no space left on device).
        wrong = self.checks.wrong_platforms(env, images)
        oversized = self.checks.oversized(env, images)
        for image in wrong:
            on_output(f"images: wrong platform: {image.describe()}")
        for big in oversized:
            on_output(f"{_oversized_heading(big)}: {big.service}: {big.reason(catalog_file())}")
        too_large = [o for o in oversized if o.refused]
        if wrong or too_large:
            platforms = sorted({w.platform for w in wrong})
            why = [f"{', '.join(w.service for w in wrong if w.platform == platform)}: the released image is not "
                   f"{'/'.join(platform)}" for platform in platforms]
            why += [f"{', '.join(o.service for o in too_large)}: the released image does not fit its tasks' ephemeral "
                    "storage"] if too_large else []
            return LayerResult(layer, Status.FAILED, first.changes if first is not None else {},
                               detail=f"{'; '.join(why)} (what to do: above); the services were not updated")
        # The tags below are compute's first write to AWS when step 1 did not run: an interrupt during the checks
        # above (seconds per image) stops here, before it, so a layer reported "not run" changed nothing.
        if self._interrupted:
            return self._interrupted_before_update(layer, env, first, [])
        # Before the services pin them: the lifecycle policy keeps release-tagged images only, and a
        # replicated copy arrives untagged (it would expire with the untagged rule).
        written: list[TagResult] = []
        for tagged in self.checks.tag_release(env, stop=lambda: self._interrupted):
            if tagged.action == "tagged":
                written.append(tagged)
                on_output(f"images: {tagged.describe()}")
            elif tagged.action in ("missing", "incomplete"):  # an image an index names; the index that names it
                on_output(f"images: warning: {tagged.describe()}")
        if self._interrupted:  # during the tagging (it stops before its next image): the update has not started
            return self._interrupted_before_update(layer, env, first, written)
        started = datetime.now(UTC)
        result = self.inner.run(layer, env, operation, on_output)
        if first is not None:
            result = replace(result, changes=_merged(first.changes, result.changes))
        if result.status is not Status.SUCCEEDED:
            return result
        digests = {service: ref for service, ref in images.items() if is_digest(ref)}
        try:
            applied = applied_task_definitions(self.stack_outputs(LAYER, env))
        except Exception as error:  # noqa: BLE001 - outputs that cannot be read: the digests are still compared
            on_output(f"ecs: the task definitions compute applied are unknown ({failure_detail(error)})")
            applied = {}
        # Every released service, a tag's too: its digest cannot be compared, its rollout and task definition can.
        running = self.checks.running(env, list(images))
        problems = rollout_mismatches(env, digests, running, applied)
        # A deployment without a new task definition (Service Connect, network configuration, load balancers) that
        # ECS rolled back keeps both revision and digest: only ECS's record of the deployment says so.
        rollbacks = self.checks.rollbacks(env, list(images), started)
        if rollbacks.note:
            on_output(f"ecs: note: {rollbacks.note}")
        problems += [entry.describe() for entry in rollbacks.rolled_back]
        if problems:
            for problem in problems:
                on_output(f"ecs: {problem}")
            return replace(result, status=Status.FAILED, detail=rolled_back_detail(env, problems))
        # Not a failure: a service at min_count 0 with no backlog is as configured, and the provider leaves its desired
        # count to the scalable target (ignore_changes), so the deployment completed without a task. Its digest first
        # starts when its backlog wakes it; the promotion's deployed gate refuses it until then (shared.promote).
        from shared.promote import PROMOTION_ORDER  # shared.promote imports this module

        for entry in running:
            promoted = (f"; promoting it from {env.name} is refused until a task runs it"
                        if env.name in PROMOTION_ORDER[:-1] else "")
            if entry.resting:
                on_output(f"ecs: note: {entry.describe()} (its deployment completed without a task): it first "
                          f"starts when its queue's backlog wakes it{promoted}")
            elif entry.awaiting_spot:
                on_output(f"ecs: note: {entry.describe()} (its deployment completed; Spot has no capacity for it, "
                          f"and AWS starts none on on-demand Fargate): its queue waits{promoted}")
        compared = " and the task definition compute applied" if applied else ""
        on_output(f"ecs: every service runs its released digest{compared} ({len(images)} checked)")
        return result


_T = TypeVar("_T")

#: why compute's repositories block a delete (shared.components.ecr: force_delete off; botocore ecr
#: DeleteRepository: RepositoryNotEmptyException)
ECR_REFUSES = "ECR refuses to delete a repository that holds images (force_delete is off)"


def _refused(items: Sequence[_T], on_output: OutputSink, line: Callable[[_T], str],
             detail: Callable[[Sequence[_T]], str]) -> LayerResult | None:
    """compute FAILED for ``items`` (what stands in the way of its run: repositories holding images, buckets holding
    objects, protected load balancers), each printed (``line``'s text), with ``detail`` of them; None when there are
    none."""
    if not items:
        return None
    for item in items:
        on_output(line(item))
    return LayerResult(LAYER, Status.FAILED, detail=detail(items))


def _with_images(held: Sequence[HeldRepository]) -> str:
    """The "repository (images)" list of ``held``."""
    return ", ".join(f"{r.repository} ({r.images})" for r in held)


def _removed_bucket_detail(env: EnvConfig, held: Sequence[HeldBucket]) -> str:
    """Why compute's ``up`` is refused for the removed buckets ``held`` that hold objects, and the way on."""
    from shared.contracts import stack_reference_name

    listed = ", ".join(bucket.bucket for bucket in held)
    it = "it" if len(held) == 1 else "them"
    stop_logs = _stop_logs_first(held)
    if env.protect:  # its program never sets force_destroy: emptying is the only way
        stack = stack_reference_name(env.pulumi_org, LAYER, env.name)
        # the state marks them protect too (protect_stateful), which Pulumi's engine refuses to delete
        how = (f"{env.name} protects state, so they keep their objects: copy what must be kept (access logs are "
               f"audit evidence, models are trained data), then empty {it} (above){stop_logs}, and release {it} from "
               f"the state's protect for that up: `pulumi state unprotect --stack {stack} '<URN>'` in "
               f"stacks/{LAYER} (`pulumi stack --stack {stack} --show-urns` lists the URNs)")
    else:
        how = (f"Either empty {it} (above){stop_logs}, or put back what declared {it} for one `up`, which stores "
               "force_destroy, before removing it")
    return (f"nothing of {LAYER} was changed: its up would delete {listed} (no longer in its program), S3 refuses to "
            f"delete a bucket that holds objects (BucketNotEmpty), and compute's state records no force_destroy "
            f"for {it} (the provider reads the flag only from the state). {how}; then run the up again")


def _why_deleted(balancer: StateLoadBalancer) -> str:
    """Why compute's ``up`` deletes ``balancer``, as the refusal says it."""
    return ("an old copy compute's state marks for deletion (left by a replacement)" if balancer.old
            else "no longer in compute's program")


def _removed_protected_load_balancer_detail(env: EnvConfig, removed: Sequence[StateLoadBalancer]) -> str:
    """Why compute's ``up`` is refused for the load balancers it deletes with deletion protection on, and the way on."""
    listed = ", ".join(f"{balancer.name} ({_why_deleted(balancer)})" for balancer in removed)
    commands = "; ".join(deletion_protection_off_command(balancer.arn, env.region) for balancer in removed)
    one = len(removed) == 1
    return (f"nothing of {LAYER} was changed: its up would delete the load balancer{'' if one else 's'} {listed}, "
            f"and AWS's deletion protection on {'it' if one else 'them'} (set where the env protects state, or "
            "turned on outside the platform) refuses DeleteLoadBalancer (OperationNotPermitted): the up would fail "
            "there, after deleting what depends on it (a removed gateway's listener and target group). Turn "
            f"{'it' if one else 'them'} off ({commands}), then run the up again")


def _stop_logs_first(held: Sequence[HeldBucket]) -> str:
    """What emptying ``held`` needs first where one is an ALB's access-log bucket ("" where none is): ELB delivers
    access logs every 5 minutes for as long as the load balancer runs (ELB guide, "Access log files"), so a log
    bucket emptied while it runs holds objects again by the time the delete reaches it."""
    if not any(ALB_LOG_BUCKET_MARK in bucket.bucket for bucket in held):
        return ""
    return (" (an ALB's access-log bucket only once its load balancer stopped writing to it: `aws elbv2 "
            "modify-load-balancer-attributes --load-balancer-arn <its ARN> --attributes "
            "Key=access_logs.s3.enabled,Value=false`, then 5 minutes for the last delivery)")


def present_images(images: Mapping[str, str], missing: Sequence[MissingImage]) -> dict[str, str]:
    """``images`` without the ``missing`` ones: those the platform check reads (an archived image's manifest cannot be
    read, and it has its own message)."""
    absent = {item.service for item in missing}
    return {service: reference for service, reference in images.items() if service not in absent}


def _oversized_heading(image: OversizedImage) -> str:
    """How an output line names an image too large to pull whole: refused, or lazy-loaded (SOCI) and let through."""
    return "images: too large for the task's storage" if image.refused else \
        "images: lazy-loaded, too large to pull whole"


def catalog_file() -> str:
    """The catalog's file as messages name it."""
    from shared.catalog import catalog_path

    return display_path(str(catalog_path()))


def refuse_unrunnable_images(env: EnvConfig, wrong: Sequence[WrongPlatform],
                           oversized: Sequence[OversizedImage] = ()) -> None:
    """ConfigError (exit 2) naming each ``release.images`` entry of the env file whose image, already in the registry,
    Fargate cannot run on the task definitions' platform, or cannot pull into its tasks' ephemeral storage: asked in
    :meth:`ImageGatedRunner.prepare`, before any layer runs. compute runs last, so at its turn every other layer of the
    `up` has been updated (a broker change can take half an hour) and the run stops half-applied; an image pushed only
    while the `up` runs is still checked at compute's turn."""
    problems = [ConfigError(str(env_path(env.name)), f"release.images.{image.service}",
                            f"{image.reason()}; nothing was changed") for image in wrong]
    problems += [ConfigError(str(env_path(env.name)), f"release.images.{image.service}",
                             f"{image.reason(catalog_file())}; nothing was changed") for image in oversized]
    raise_all(problems)


def refuse_over_hand_rollbacks(env: EnvConfig, running: Iterable[RunningImage]) -> None:
    """ConfigError (exit 2) naming each ``release.images`` entry of the env file whose service runs a revision an
    operator registered by hand to roll it back (:data:`~shared.images.HAND_ROLLBACK_TAG`) with another image than the
    entry's: asked in :meth:`ImageGatedRunner.prepare`, before any layer runs. compute's ``up`` refreshes first and
    deploys what the env file names, so any run before the rollback pull request merges (dev on every push to main, a
    deploy of another service's promotion) would put the bad release back. The rollback pull request pins the
    revision's image and passes; so does a run whose operator took the tag off."""
    problems = []
    for entry in running:
        expected = env.release.images.get(entry.service)
        if entry.hand_rollback is None or entry.problem or expected is None or entry.digest == expected:
            continue
        problems.append(ConfigError(
            str(env_path(env.name)), f"release.images.{entry.service}",
            f"{entry.where} runs task definition {entry.task_definition}, rolled back by hand ({HAND_ROLLBACK_TAG}: "
            f"{entry.hand_rollback}) to {entry.digest or 'an image not pinned by digest'}; this up would deploy "
            f"{expected} over it. Merge the rollback pull request, which pins that image (README, Roll a service back "
            f"now), or, to deploy {expected} anyway, take the mark off first: `aws ecs untag-resource --resource-arn "
            f"{entry.task_definition} --tag-keys {HAND_ROLLBACK_TAG}`; nothing was changed"))
    raise_all(problems)


def rolled_back_detail(env: EnvConfig, problems: Sequence[str]) -> str:
    """Why compute failed although its update finished, and the ways on.

    The provider's wait fails an update whose new ECS deployment was rolled back, but where it counts tasks instead (no
    new ECS deployment recorded) a circuit-breaker rollback ends steady too, and the update is reported a success
    (pulumi/pulumi-awsx#1848, terraform-provider-aws #20858); a change that kept the task definition, too, is caught
    only here. compute's ``up`` refreshes first (shared.orchestrate.automation.REFRESHED_BEFORE_UP), so the next one
    reads what ECS runs and deploys the applied one again: a retry, which ECS rolls back again while its cause
    lasts."""
    return (f"the update finished but ECS does not run what compute's up applied (rolled back?): "
            f"{'; '.join(problems)}. compute's next up refreshes first, finds what ECS went back to and deploys the "
            f"release again, which ECS rolls back again until its cause is fixed (why the tasks stopped: the "
            f"task-stops log, see On call). To go back instead, undo the change: a release with "
            f"`nox -s promote -- {env.name}@<revision> {env.name}`, an env file or catalog change with a revert; then "
            f"`nox -s up -- {env.name}`")
