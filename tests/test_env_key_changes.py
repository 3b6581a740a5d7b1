"""What a later change of each env key does to a deployed env: the change matrix, as a specification.

Each row changes one key of one shipped env file (from its value there, or from the shape ``given``
sets up on both sides) to another valid value, synthesizes the env with and without the change, and
runs the offline plan diff (:mod:`shared.plan_diff`) between the two. The row states the class of the
outcome, and the test fails when the code changes it:

* ``refused by the loader``: the env loader stops the change (exit 2) before any layer runs;
* ``no resource change``: nothing in any layer's synth changes (orchestration or policy settings);
* ``in place``: resources are only added or updated;
* ``replaces stateless only``: resources are replaced or deleted, none of a type in
  :data:`shared.protect.STATEFUL_TYPES` (nothing that holds data is lost);
* ``replaces stateful: gated``: a resource holding data would be replaced or deleted; ``nox -s up``
  refuses it unless the URN is named with ``--allow-replace`` (:mod:`shared.orchestrate.replacements`
  judges by the same type list), and where the env protects state (prod) the resource is ``protect``-ed
  as well (the diff marks it blocked). The row names the stateful types;
* ``identity: a new env``: the loader accepts the change (it cannot know the deployed value), but it
  points the env at other cloud resources or other stacks; README says not to change it.

Every row is also a line of README's "What a change of each key does" table (same key, same outcome),
so the table users read cannot drift from what the code does; and every leaf key of the env schema has a
row, so a key added later needs one.
"""

from __future__ import annotations

import copy
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args, get_origin

import pytest
import yaml
from pydantic import BaseModel

import shared.synth.engine as engine
from shared import REPO_ROOT
from shared.envs import ENV_DIR_VAR, EnvConfig, load_env
from shared.errors import ConfigError, ConfigErrors
from shared.plan_diff import Change, diff_layers
from shared.protect import is_stateful

Edit = Callable[[dict[str, Any]], None]

REFUSED = "refused by the loader"
NO_CHANGE = "no resource change"
IN_PLACE = "in place"
STATELESS = "replaces stateless only"
STATEFUL = "replaces stateful: gated"
IDENTITY = "identity: a new env"

#: Engine objects that are not cloud resources: a StackReference is a read, a provider a configuration (a
#: provider's changed default tags still update every resource in place).
NOT_CLOUD_RESOURCES = ("pulumi:pulumi:StackReference", "pulumi:providers:")

SHIPPED = ("dev", "staging", "prod")
README = REPO_ROOT / "README.md"
TABLE_START = "<!-- env-key-changes: start (tests/test_env_key_changes.py) -->"
TABLE_END = "<!-- env-key-changes: end -->"

ADMIN_CONFIG = {"messaging:adminUsername": {"secure": "v1:AAAA"}, "messaging:adminPassword": {"secure": "v1:BBBB"}}


def set_(path: str, value: Any) -> Edit:
    """Set ``path`` (dotted) to ``value``, creating the sections on the way."""
    def edit(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = data
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = copy.deepcopy(value)  # never the row's own object: later edits change the copy
    return edit


def both(*edits: Edit) -> Edit:
    def edit(data: dict[str, Any]) -> None:
        for one in edits:
            one(data)
    return edit


APPMESH = both(set_("mesh.provider", "appmesh"), set_("mesh.appmesh_end_of_support_acknowledged", True))
EXTERNAL = set_("messaging.external", {"amqps_endpoint": "amqps://mq.example.com:5671",
                                       "management_endpoint": "https://mq.example.com"})
TO_EXTERNAL = both(set_("messaging.broker", "external"), EXTERNAL)
GATEWAY = both(set_("compute.public_gateway", True),
               set_("compute.certificate_arn", "arn:aws:acm:eu-west-1:222222222222:certificate/one"))
GPU_BOX = {"service": "inference", "instance_id": "gpu-1", "ipv4": "10.30.5.10", "port": 8080}
DIGEST = "sha256:" + "b" * 64


@dataclass(frozen=True)
class KeyChange:
    key: str                      #: the key's path in the env schema (``<service>`` for a service name)
    env: str                      #: the shipped env it is changed in
    change: Edit
    outcome: str
    effect: str                   #: what the change does, for README's table
    detail: str = ""              #: which change of the key, when the key has rows for several
    stateful: frozenset[str] = frozenset()  #: the stateful types a STATEFUL row replaces or deletes
    given: tuple[str, Edit] | None = None   #: (label, edit) applied to both sides first
    stack_config: bool = False    #: messaging needs the external broker's admin credentials (stack config)

    @property
    def label(self) -> str:
        return f"{self.key} ({self.detail})" if self.detail else self.key


def _types(*names: str) -> frozenset[str]:
    return frozenset(names)


VPC, SUBNET, BROKER = "aws:ec2/vpc:Vpc", "aws:ec2/subnet:Subnet", "aws:mq/broker:Broker"
LOG_GROUP, KEY, SECRET = "aws:cloudwatch/logGroup:LogGroup", "aws:kms/key:Key", "aws:secretsmanager/secret:Secret"
NAMESPACE = "aws:servicediscovery/privateDnsNamespace:PrivateDnsNamespace"

LOWER_RETENTION = ("lowering it makes CloudWatch Logs delete the events older than the new period at once (the "
                   "change itself is in place)")

MATRIX: tuple[KeyChange, ...] = (
    # -- identity -----------------------------------------------------------------------------------
    KeyChange("name", "prod", set_("name", "prod2"), REFUSED,
              "must equal the file's name; a renamed file is another env with its own stacks: deploy it, then "
              "destroy the old one"),
    KeyChange("account_id", "prod", set_("account_id", "444444444444"), IDENTITY,
              "the stacks' resources stay in the old account; `up` with the new account's credentials would "
              "update resources that are not there. Never change it on a deployed env: add an env for the new "
              "account, deploy it, destroy the old one"),
    KeyChange("region", "prod", set_("region", "eu-central-1"), IDENTITY,
              "every regional resource would have to move (new subnets in new AZs, a new broker): pulumi-aws "
              "does not move resources between regions. As for account_id: a new env, then destroy the old"),
    KeyChange("pulumi_org", "prod", set_("pulumi_org", "acme"), IDENTITY,
              "stacks are `<org>/<layer>/<env>`: another org means other, empty stacks, whose `up` would create "
              "every resource again next to the existing ones (named ones collide). Move the stacks first "
              "(`pulumi stack rename`)"),
    KeyChange("state.backend_url", "prod", set_("state.backend_url", "s3://acme-pulumi-state/platform"), IDENTITY,
              "another backend holds none of this env's state: as for pulumi_org. Move the state first "
              "(`pulumi stack export` / `import`)"),
    KeyChange("state.secrets_provider", "prod", set_("state.secrets_provider", "awskms://alias/pulumi-state"),
              NO_CHANGE, "used when a stack is created; existing stacks keep theirs "
              "(`pulumi stack change-secrets-provider` moves one)"),
    KeyChange("protect_stateful", "staging", set_("protect_stateful", True), IN_PLACE,
              "sets (or clears) `protect` on the stateful resources and the secrets' recovery window"),
    KeyChange("tags.team", "prod", set_("tags.team", "ml-infra"), IN_PLACE,
              "the providers' default tags: every taggable resource is re-tagged in place"),
    KeyChange("tags.cost-center", "prod", set_("tags.cost-center", "cc-ml-2002"), IN_PLACE,
              "as tags.team"),
    KeyChange("tags.<other>", "prod", set_("tags.owner", "alice"), IN_PLACE, "as tags.team"),
    # -- network ------------------------------------------------------------------------------------
    KeyChange("network.cidr", "prod", set_("network.cidr", "10.40.0.0/16"), STATEFUL,
              "a new VPC and new subnets, and with them everything placed in them (the broker, endpoints, "
              "tasks): in effect a new env", stateful=_types(VPC, SUBNET, BROKER, NAMESPACE)),
    KeyChange("network.az_count", "staging", set_("network.az_count", 2), STATEFUL,
              "deletes the dropped AZs' subnets (and their route tables); tasks move to the remaining AZs. A "
              "CLUSTER_MULTI_AZ broker needs 3 (the loader refuses fewer)", detail="fewer",
              stateful=_types(SUBNET)),
    KeyChange("network.az_count", "dev", set_("network.az_count", 3), IN_PLACE,
              "adds a private and a public subnet per new AZ; existing subnets never move (each is carved by "
              "its AZ's index)", detail="more"),
    KeyChange("network.az_count", "prod", set_("network.az_count", 4), IN_PLACE,
              "a cluster broker keeps the first three AZs' subnets (a new subnet would replace it)",
              detail="more, CLUSTER_MULTI_AZ broker in a region with more AZs",
              given=("us-east-1", set_("region", "us-east-1"))),
    KeyChange("network.nat", "staging", set_("network.nat", "per-az"), IN_PLACE,
              "adds a NAT gateway per AZ and repoints the private routes", detail="single to per-az"),
    KeyChange("network.nat", "prod", set_("network.nat", "single"), STATELESS,
              "deletes the other AZs' NAT gateways and EIPs after repointing their routes to the first; "
              "connections through them drop", detail="per-az to single"),
    KeyChange("network.endpoints", "dev", set_("network.endpoints", ["s3", "logs"]), IN_PLACE,
              "adds the endpoint (and the endpoints' security group)", detail="add one"),
    KeyChange("network.endpoints", "prod", set_("network.endpoints", ["s3", "ecr.api", "ecr.dkr", "secretsmanager"]),
              STATELESS, "deletes the endpoint; traffic falls back to the NAT (with `nat: none` the loader "
              "refuses a missing one)", detail="remove one"),
    KeyChange("network.flow_log_retention_days", "prod", set_("network.flow_log_retention_days", 400), IN_PLACE,
              LOWER_RETENTION),
    # -- discovery ----------------------------------------------------------------------------------
    KeyChange("discovery.namespace", "prod", set_("discovery.namespace", "prod.ml.example"), STATEFUL,
              "a new private DNS namespace; task definitions roll to the new names", stateful=_types(NAMESPACE)),
    KeyChange("discovery.dns_ttl_seconds", "prod", set_("discovery.dns_ttl_seconds", 30), NO_CHANGE,
              "used only by App Mesh envs", detail="service-connect"),
    KeyChange("discovery.dns_ttl_seconds", "prod", set_("discovery.dns_ttl_seconds", 30), IN_PLACE,
              "updates each Cloud Map service's records", detail="appmesh", given=("appmesh", APPMESH)),
    KeyChange("discovery.static_instances", "prod", set_("discovery.static_instances", [GPU_BOX]), REFUSED,
              "only App Mesh envs register instances outside ECS (also refused when moving such an env to "
              "service-connect)", detail="service-connect"),
    KeyChange("discovery.static_instances", "prod", set_("discovery.static_instances", [GPU_BOX]), IN_PLACE,
              "registers the instance in its service", detail="appmesh", given=("appmesh", APPMESH)),
    # -- mesh ---------------------------------------------------------------------------------------
    KeyChange("mesh.provider", "prod", set_("mesh.provider", "service-connect"), STATELESS,
              "deletes the mesh, its virtual nodes and services and the Cloud Map services; task definitions "
              "lose the Envoy sidecar (README, \"Moving an env from appmesh to service-connect\")",
              detail="appmesh to service-connect", given=("appmesh", APPMESH)),
    KeyChange("mesh.provider", "prod", APPMESH, STATELESS,
              "the reverse: a mesh, virtual nodes and Cloud Map services, new task definitions",
              detail="service-connect to appmesh"),
    KeyChange("mesh.appmesh_end_of_support_acknowledged", "prod",
              set_("mesh.appmesh_end_of_support_acknowledged", False), REFUSED,
              "required while the provider is appmesh", given=("appmesh", APPMESH)),
    KeyChange("mesh.egress_filter", "prod", set_("mesh.egress_filter", "ALLOW_ALL"), IN_PLACE,
              "updates the mesh (App Mesh envs only)", given=("appmesh", APPMESH)),
    KeyChange("mesh.envoy_image", "prod",
              set_("mesh.envoy_image", "public.ecr.aws/appmesh/aws-appmesh-envoy@sha256:" + "a" * 64), STATELESS,
              "new task definitions: a rolling deployment of every service (App Mesh envs only)",
              given=("appmesh", APPMESH)),
    KeyChange("mesh.canaries", "prod", set_("mesh.canaries", {"inference": [{"version": "v1", "weight": 90},
                                                                            {"version": "v2", "weight": 10}]}),
              STATEFUL, "the service becomes one ECS service per version: its ECS service and its log group "
              "(with its logs) are deleted, the versions' are created", stateful=_types(LOG_GROUP),
              given=("appmesh", APPMESH)),
    # -- messaging ----------------------------------------------------------------------------------
    KeyChange("messaging.broker", "prod", TO_EXTERNAL, STATEFUL,
              "deletes the Amazon MQ broker (its queues and messages), its secrets, keys and logs' groups; the "
              "services' connection secrets point at the external broker", detail="amazon-mq to external",
              stateful=_types(BROKER, SECRET, KEY, LOG_GROUP), stack_config=True),
    KeyChange("messaging.external.amqps_endpoint", "prod",
              set_("messaging.external.amqps_endpoint", "amqps://mq2.example.com:5671"), STATELESS,
              "new connection-secret versions and task definitions: services reconnect to the new endpoint",
              given=("external", TO_EXTERNAL), stack_config=True),
    KeyChange("messaging.external.management_endpoint", "prod",
              set_("messaging.external.management_endpoint", "https://mq2.example.com"), IN_PLACE,
              "the RabbitMQ provider manages the objects at the new endpoint (it does not move them)",
              given=("external", TO_EXTERNAL), stack_config=True),
    KeyChange("messaging.engine_version", "prod", set_("messaging.engine_version", "4.2"), STATELESS,
              "an in-place upgrade in the broker's maintenance window (README, \"Changing the broker\"); the "
              "queue alarms follow the version's metrics", detail="3.13 to 4.2",
              given=("3.13", set_("messaging.engine_version", "3.13"))),
    KeyChange("messaging.instance_type", "prod", set_("messaging.instance_type", "mq.m7g.xlarge"), IN_PLACE,
              "applied in the broker's maintenance window (a reboot)"),
    KeyChange("messaging.deployment_mode", "staging", set_("messaging.deployment_mode", "CLUSTER_MULTI_AZ"),
              STATEFUL, "a new broker: queues, messages, users and policies of the old one are lost (README, "
              "\"Changing the broker\")", stateful=_types(BROKER)),
    KeyChange("messaging.broker_log_retention_days", "prod", set_("messaging.broker_log_retention_days", 400),
              IN_PLACE, LOWER_RETENTION),
    KeyChange("messaging.message_ttl_ms", "prod", set_("messaging.message_ttl_ms", 3_600_000), IN_PLACE,
              "the work queues' policies; queued messages older than a lowered TTL expire into their DLQ"),
    KeyChange("messaging.max_length", "prod", set_("messaging.max_length", 5_000), IN_PLACE,
              "the work queues' operator policy; a queue over the new limit refuses publishes (reject-publish) "
              "until it drains"),
    KeyChange("messaging.dead_letter_max_length", "prod", set_("messaging.dead_letter_max_length", 5_000), IN_PLACE,
              "the DLQs' operator policy; a DLQ over a lowered limit loses its oldest dead letters (drop-head)"),
    KeyChange("messaging.delivery_limit", "prod", set_("messaging.delivery_limit", 10), IN_PLACE,
              "the work queues' policies; a message redelivered more often than a lowered limit is "
              "dead-lettered"),
    KeyChange("messaging.credentials_rotation.epoch", "prod",
              set_("messaging.credentials_rotation.epoch", "2026-12-01"), STATELESS,
              "new service passwords: users and secrets updated, new task definitions roll the services "
              "(README, \"Messaging credentials\")"),
    KeyChange("messaging.credentials_rotation.max_age_days", "prod",
              set_("messaging.credentials_rotation.max_age_days", 60), IN_PLACE,
              "the admin's rotation schedule and the secrets' rotation-due tags"),
    KeyChange("messaging.management.endpoint", "prod", set_("messaging.management.endpoint",
                                                            "https://rabbit-admin.vpn.example.com"), IN_PLACE,
              "where the RabbitMQ provider reaches the broker (the broker itself is untouched)"),
    KeyChange("messaging.management.tls_server_name", "prod",
              set_("messaging.management.tls_server_name", "b-1.mq.eu-west-1.on.aws"), IN_PLACE,
              "as management.endpoint"),
    KeyChange("messaging.management.ca_file", "prod", set_("messaging.management.ca_file", "/etc/ssl/broker.pem"),
              IN_PLACE, "as management.endpoint"),
    KeyChange("messaging.management.proxy", "prod", set_("messaging.management.proxy", "socks5h://localhost:1080"),
              IN_PLACE, "as management.endpoint"),
    KeyChange("messaging.deploy_runner.deploy_role_name", "prod",
              set_("messaging.deploy_runner.deploy_role_name", "other-deployer"), IN_PLACE,
              "the deploy runner's project and policy"),
    KeyChange("messaging.deploy_runner.github_repository", "prod",
              set_("messaging.deploy_runner.github_repository", "https://github.com/acme/platform"), IN_PLACE,
              "the project's source, and a webhook for GitHub Actions jobs"),
    KeyChange("messaging.deploy_runner.compute_type", "prod",
              set_("messaging.deploy_runner.compute_type", "BUILD_GENERAL1_MEDIUM"), IN_PLACE,
              "the deploy runner's project"),
    KeyChange("messaging.deploy_runner.timeout_minutes", "prod", set_("messaging.deploy_runner.timeout_minutes", 60),
              IN_PLACE, "the deploy runner's project"),
    KeyChange("messaging.deploy_runner.log_retention_days", "prod",
              set_("messaging.deploy_runner.log_retention_days", 400), IN_PLACE, LOWER_RETENTION),
    # -- compute ------------------------------------------------------------------------------------
    KeyChange("compute.container_insights", "dev", set_("compute.container_insights", False), IN_PLACE,
              "the cluster setting (and how the task alarms treat missing data)"),
    KeyChange("compute.log_retention_days", "prod", set_("compute.log_retention_days", 400), IN_PLACE,
              LOWER_RETENTION),
    KeyChange("compute.ecr_keep_last_images", "prod", set_("compute.ecr_keep_last_images", 30), STATELESS,
              "a new lifecycle policy (ECR has no update); lowering it expires the images beyond the new count"),
    KeyChange("compute.kms_encrypted_logs", "prod", set_("compute.kms_encrypted_logs", False), STATEFUL,
              "disassociates the log groups' keys and deletes the keys: events written while a key was "
              "associated become unreadable once it is deleted", detail="true to false", stateful=_types(KEY)),
    KeyChange("compute.kms_encrypted_logs", "dev", set_("compute.kms_encrypted_logs", False), STATEFUL,
              "as in prod (not protected there, still refused by `up`)", detail="true to false, unprotected",
              stateful=_types(KEY)),
    KeyChange("compute.kms_encrypted_logs", "dev", set_("compute.kms_encrypted_logs", True), IN_PLACE,
              "creates the keys and associates them with the log groups (events already written stay as they "
              "are)", detail="false to true", given=("without", set_("compute.kms_encrypted_logs", False))),
    KeyChange("compute.public_gateway", "staging", GATEWAY, IN_PLACE,
              "adds the load balancer, listener, target group and access-log bucket; the service registers "
              "with it"),
    KeyChange("compute.certificate_arn", "staging",
              set_("compute.certificate_arn", "arn:aws:acm:eu-west-1:222222222222:certificate/two"), IN_PLACE,
              "the HTTPS listener's certificate", given=("public gateway", GATEWAY)),
    KeyChange("compute.steady_state_timeout_minutes", "prod", set_("compute.steady_state_timeout_minutes", 60),
              NO_CHANGE, "how long `up` waits for the services"),
    KeyChange("compute.image_source", "staging", set_("compute.image_source", None), STATELESS,
              "the registry policy for replication goes; images are then pushed to this registry directly "
              "(and the source env's replication rule changes at its next `up`)"),
    # -- services -----------------------------------------------------------------------------------
    KeyChange("services.<service>.cpu", "prod", both(set_("services.inference.cpu", 4096),
                                                     set_("services.inference.memory", 8192)), STATELESS,
              "a new task definition: a rolling deployment of the service"),
    KeyChange("services.<service>.memory", "prod", set_("services.inference.memory", 8192), STATELESS,
              "as cpu"),
    KeyChange("services.<service>.desired_count", "prod", set_("services.gateway.desired_count", 4), IN_PLACE,
              "the ECS service's count"),
    KeyChange("services.<service>.min_count", "prod", set_("services.gateway.min_count", 2), IN_PLACE,
              "the scaling target"),
    KeyChange("services.<service>.max_count", "prod", set_("services.gateway.max_count", 12), IN_PLACE,
              "the scaling target"),
    KeyChange("services.<service>.cpu_target_percent", "prod", set_("services.gateway.cpu_target_percent", 70),
              IN_PLACE, "the scaling policy"),
    # -- alarms -------------------------------------------------------------------------------------
    KeyChange("alarms.email", "prod", set_("alarms.email", ["oncall@example.com"]), IN_PLACE,
              "a subscription per address (a removed one is deleted)"),
    KeyChange("alarms.subscriptions", "prod", set_("alarms.subscriptions", [
        {"protocol": "https", "endpoint": "https://hooks.example.com/alarms"}]), IN_PLACE, "as email"),
    KeyChange("alarms.period_seconds", "prod", set_("alarms.period_seconds", 120), IN_PLACE, "the alarms"),
    KeyChange("alarms.evaluation_periods", "prod", set_("alarms.evaluation_periods", 3), IN_PLACE, "the alarms"),
    KeyChange("alarms.queue_depth", "prod", set_("alarms.queue_depth", 500), IN_PLACE, "the alarms"),
    KeyChange("alarms.dead_letter_depth", "prod", set_("alarms.dead_letter_depth", 5), IN_PLACE,
              "the DLQ alarms (RabbitMQ 3.13 brokers have per-queue metrics)",
              given=("3.13", set_("messaging.engine_version", "3.13"))),
    KeyChange("alarms.broker_memory_percent", "prod", set_("alarms.broker_memory_percent", 70), IN_PLACE,
              "the alarms"),
    KeyChange("alarms.broker_disk_free_ratio", "prod", set_("alarms.broker_disk_free_ratio", 3.0), IN_PLACE,
              "the alarms"),
    KeyChange("alarms.gateway_5xx", "staging", set_("alarms.gateway_5xx", 20), IN_PLACE,
              "the gateway's alarm (envs with a public gateway)", given=("public gateway", GATEWAY)),
    # -- policy, release ----------------------------------------------------------------------------
    KeyChange("policy.baseline", "staging", set_("policy.baseline", "prod"), IN_PLACE,
              "the policy column, and with prod protection as protect_stateful"),
    KeyChange("policy.enforcement", "prod", set_("policy.enforcement", {"ecr-immutable-tags": "mandatory"}),
              NO_CHANGE, "what `nox -s policy` and `up` enforce"),
    KeyChange("policy.suppressions", "prod", set_("policy.suppressions", [
        {"rule": "ecr-immutable-tags", "resource": "gateway", "reason": "a reason of ten characters"}]),
              NO_CHANGE, "as enforcement"),
    KeyChange("release.images", "prod", set_("release.images.gateway", DIGEST), STATELESS,
              "a new task definition: a rolling deployment of the service"),
    KeyChange("release.promoted_from", "prod", set_("release.promoted_from", "staging"), NO_CHANGE,
              "a record of the promotion"),
    KeyChange("release.promoted_at", "prod", set_("release.promoted_at", "2026-12-01T00:00:00Z"), NO_CHANGE,
              "a record of the promotion"),
    KeyChange("release.skipped", "prod", set_("release.skipped", ["training"]), NO_CHANGE,
              "a record of the promotion"),
)


# -- the harness ------------------------------------------------------------------------------------
@contextmanager
def _env_files(*edits: Edit, env: str) -> Iterator[None]:
    """The shipped env files in a scratch folder with ``edits`` applied to ``env``, active for the block."""
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "environments"
        folder.mkdir()
        for name in SHIPPED:
            shutil.copy2(REPO_ROOT / "environments" / f"{name}.yaml", folder)
        path = folder / f"{env}.yaml"
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for edit in edits:
            edit(data)
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        saved = os.environ.get(ENV_DIR_VAR)
        os.environ[ENV_DIR_VAR] = str(folder)
        try:
            yield
        finally:
            if saved is None:
                os.environ.pop(ENV_DIR_VAR, None)
            else:
                os.environ[ENV_DIR_VAR] = saved


@contextmanager
def _messaging_stack_config(env: str, wanted: bool) -> Iterator[None]:
    """An external broker's messaging program reads its admin from stack config (README, Messaging): a scratch
    copy of the program with that config stands in for stacks/messaging."""
    if not wanted:
        yield
        return
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        program = Path(scratch) / "messaging"
        shutil.copytree(REPO_ROOT / "stacks" / "messaging", program, ignore=shutil.ignore_patterns("Pulumi.*.yaml"))
        (program / f"Pulumi.{env}.yaml").write_text(yaml.safe_dump({"config": ADMIN_CONFIG}), encoding="utf-8")
        original = engine.layer_dir
        engine.layer_dir = lambda layer: program if layer == "messaging" else original(layer)  # type: ignore[assignment]
        try:
            yield
        finally:
            engine.layer_dir = original  # type: ignore[assignment]


_BASELINES: dict[tuple[str, str, bool], dict[str, dict[str, Any]]] = {}


def _baseline(case: KeyChange) -> dict[str, dict[str, Any]]:
    """The env before the change (its ``given`` shape), synthesized once per shape."""
    given_label, given = case.given or ("", None)
    key = (case.env, given_label, case.stack_config)
    if key not in _BASELINES:
        with _env_files(*([given] if given else []), env=case.env), \
                _messaging_stack_config(case.env, case.stack_config):
            _BASELINES[key] = engine.synth_env(case.env)
    return _BASELINES[key]


@dataclass
class Result:
    refused: ConfigError | None = None
    changes: list[tuple[str, Change]] = field(default_factory=list)  # (layer, change) of cloud resources

    @property
    def destroyed(self) -> list[tuple[str, Change]]:
        return [(layer, c) for layer, c in self.changes
                if c.action in ("replace", "delete") and not c.type.startswith(NOT_CLOUD_RESOURCES)]

    @property
    def stateful(self) -> frozenset[str]:
        return frozenset(c.type for _, c in self.destroyed if is_stateful(c.type))


def _apply(case: KeyChange) -> Result:
    before = _baseline(case)
    edits = ([case.given[1]] if case.given else []) + [case.change]
    with _env_files(*edits, env=case.env), _messaging_stack_config(case.env, case.stack_config):
        try:
            load_env(case.env)
        except ConfigError as error:
            return Result(refused=error)
        after = engine.synth_env(case.env)
    components = {r["urn"] for document in (*before.values(), *after.values())
                  for r in document["resources"] if not r.get("custom", True)}
    result = Result()
    for layer_diff in diff_layers(dict(before), dict(after), list(after)):
        result.changes += [(layer_diff.layer, change) for change in layer_diff.changes if change.urn not in components]
    return result


def _outcome(result: Result) -> str:
    if result.refused is not None:
        return REFUSED
    if not result.changes:
        return NO_CHANGE
    if result.stateful:
        return STATEFUL
    return STATELESS if result.destroyed else IN_PLACE


def _describe(result: Result) -> str:
    if result.refused is not None:
        return str(result.refused)
    return "\n".join(f"  {layer}: {c.action} {c.type} {c.name} {', '.join(c.inputs)}" for layer, c in result.changes)


# -- the specification --------------------------------------------------------------------------------
@pytest.mark.parametrize("case", MATRIX, ids=[f"{case.label}@{case.env}" for case in MATRIX])
def test_what_a_change_of_the_key_does(case: KeyChange) -> None:
    result = _apply(case)
    if case.outcome == IDENTITY:
        # The loader accepts it (it cannot know what was deployed); README says what it means.
        assert result.refused is None, str(result.refused)
        return
    actual = _outcome(result)
    assert actual == case.outcome, (f"{case.label} in {case.env}: expected {case.outcome}, got {actual}\n"
                                    f"{_describe(result)}")
    if case.outcome == REFUSED:
        assert result.refused is not None
        keys = [p.key for p in result.refused.problems] if isinstance(result.refused, ConfigErrors) else \
            [result.refused.key]
        assert any(key.startswith(case.key.split(" ")[0]) for key in keys), keys
        assert Path(result.refused.file).name == f"{case.env}.yaml"
    if case.outcome == STATEFUL:
        assert result.stateful == case.stateful, _describe(result)
        protects = load_env(case.env).protect
        # Where the env protects state, each stateful loss is also blocked by `protect` (and by `nox -s diff`).
        assert all(c.blocked == protects for _, c in result.destroyed if is_stateful(c.type)), _describe(result)


def _leaf_keys(model: type[BaseModel], prefix: str = "") -> Iterator[str]:
    for name, info in model.model_fields.items():
        key = f"{prefix}{info.alias or name}"
        annotation = info.annotation
        candidates = [annotation, *get_args(annotation)]
        nested = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if get_origin(annotation) is dict:
            value = get_args(annotation)[1]
            if isinstance(value, type) and issubclass(value, BaseModel):
                yield from _leaf_keys(value, f"{key}.<service>.")
                continue
            yield key
        elif nested is not None and get_origin(annotation) is not tuple:
            yield from _leaf_keys(nested, f"{key}.")
        else:
            yield key


def test_every_key_of_the_env_schema_has_a_row() -> None:
    covered = {case.key for case in MATRIX}
    missing = sorted(key for key in _leaf_keys(EnvConfig) if key not in covered)
    assert missing == [], f"env keys without a row in the change matrix: {missing}"


def readme_table() -> str:
    """README's table, as the matrix writes it."""
    lines = ["| key (change) | env | outcome | what it does |", "|---|---|---|---|"]
    for case in MATRIX:
        given = f", {case.given[0]}" if case.given else ""
        stateful = f" ({', '.join(sorted(t.rsplit(':', 1)[-1] for t in case.stateful))})" if case.stateful else ""
        lines.append(f"| `{case.key}`{f' ({case.detail})' if case.detail else ''} | {case.env}{given} | "
                     f"{case.outcome}{stateful} | {case.effect} |")
    return "\n".join(lines)


def test_readme_tells_the_user_what_each_change_does() -> None:
    text = README.read_text(encoding="utf-8")
    assert TABLE_START in text and TABLE_END in text, f"README lacks the table markers {TABLE_START!r}"
    shown = text.split(TABLE_START, 1)[1].split(TABLE_END, 1)[0].strip()
    assert shown == readme_table(), ("README's env-key table differs from the matrix; replace it with:\n"
                                     + readme_table())
