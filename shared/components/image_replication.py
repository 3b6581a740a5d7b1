"""How released images reach each env's registry: ECR replication from the env images are pushed to.

Images are built and pushed once, to the registry of the env that names no ``compute.image_source``
(dev). Every env that names it as ``compute.image_source`` receives each later push by ECR
replication, under the same repository name and digest:

- the source env's compute layer owns the registry's replication configuration (one per registry and
  region): one rule, repositories ``ml-platform/*``, one destination per env that reads from it;
- each destination env's compute layer owns its registry's permissions policy, allowing the source
  account to replicate into its ``ml-platform/*`` repositories (cross-account only: replication
  between regions of one account needs no policy).

AWS replicates only images pushed after replication to a destination was configured; an image pushed
earlier has to be copied once by hand (README, "Images"). Into another account it replicates only into
repositories that exist there (the destination's compute layer creates them, encrypted with its own KMS
key): the registry policy grants no ``ecr:CreateRepository``. Within one account ECR's replication role
creates a missing repository itself, with ECR's defaults or a repository creation template's settings,
which compute can neither create nor adopt: its `up` stops on one first
(:func:`shared.images.foreign_repositories`). The registry policy and the replication configuration are
each the registry's only one, written whole: the account preflight refuses one holding someone else's
statements or rules (:func:`shared.images.registry_settings`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from shared.components.ecr import REPOSITORY_PREFIX
from shared.envs import EnvConfig, env_names, load_env
from shared.errors import ConfigError, RelatedConfigError


@dataclass(frozen=True)
class Registry:
    """One env's private ECR registry: an account in a region."""

    env_name: str
    account_id: str
    region: str

    @property
    def host(self) -> str:
        suffix = ".amazonaws.com.cn" if self.region.startswith("cn-") else ".amazonaws.com"
        return f"{self.account_id}.dkr.ecr.{self.region}{suffix}"

    @classmethod
    def of(cls, env: EnvConfig) -> Registry:
        return cls(env.name, env.account_id, env.region)


def _load_related(name: str, why: str) -> EnvConfig:
    """:func:`load_env` of an env file read for another env's image replication: a problem of that file still stops
    the run (exit 2: the account and region read from it would be a guess), saying first ``why`` it was read."""
    try:
        return load_env(name)
    except ConfigError as error:
        raise RelatedConfigError(why, error) from None


def image_source(env: EnvConfig) -> Registry | None:
    """The registry ``env`` receives its images from by replication (None: they are pushed to it)."""
    source = env.compute.image_source
    if not source:
        return None
    return Registry.of(_load_related(source, f"{env.name} receives its images from {source} (its "
                                             "compute.image_source)"))


def replica_registries(env: EnvConfig) -> tuple[Registry, ...]:
    """The registries of every env naming ``env`` as its ``compute.image_source``, by env name. Every other env file
    is read (and must load) to know whether it does."""
    replicas = []
    for name in env_names():
        if name == env.name:
            continue
        other = _load_related(name, f"{env.name} replicates its images to each env whose compute.image_source is "
                                    f"{env.name}, so it reads every env file")
        if other.compute.image_source == env.name:
            replicas.append(Registry.of(other))
    return tuple(replicas)


def related_envs(env: EnvConfig) -> None:
    """Load the env files ``env``'s compute reads besides its own (its image source, every env that may replicate
    from it): the orchestrator's check before anything else of a run, as the env's own file is."""
    image_source(env)
    replica_registries(env)


def replication_configuration(replicas: tuple[Registry, ...]) -> dict[str, Any]:
    """PutReplicationConfiguration's ``replicationConfiguration`` (botocore ecr model): one rule for
    the platform's repositories, one destination per replica registry."""
    return {"rules": [{
        "destinations": [{"region": replica.region, "registryId": replica.account_id} for replica in replicas],
        # PREFIX_MATCH is the only filter type; the value must match RepositoryFilterValue's pattern.
        "repositoryFilters": [{"filter": f"{REPOSITORY_PREFIX}/", "filterType": "PREFIX_MATCH"}],
    }]}


def registry_policy(source: Registry, destination: Registry, partition: str) -> dict[str, Any]:
    """The destination registry's permissions policy letting ``source`` replicate into it.

    Only ``ecr:ReplicateImage``, deliberately not ``ecr:CreateRepository``: the compute layer creates
    every repository itself (KMS-encrypted, immutable tags, scan on push). A repository created by
    replication would get ECR's defaults (replication copies no immutability, scanning or KMS setting:
    aws/containers-roadmap#1279), and compute's own create would then fail with
    RepositoryAlreadyExistsException. Without CreateRepository, AWS replicates into repositories of
    the same name that already exist ("Granting registry permissions for cross account replication
    in Amazon ECR", Amazon ECR user guide).
    """
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": f"ReplicationFrom{source.env_name.title().replace('-', '')}",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:{partition}:iam::{source.account_id}:root"},
        "Action": ["ecr:ReplicateImage"],
        "Resource": f"arn:{partition}:ecr:{destination.region}:{destination.account_id}:repository/"
                    f"{REPOSITORY_PREFIX}/*",
    }]}


def _as_set(value: Any) -> set[str]:
    return {str(item) for item in (value if isinstance(value, list) else [value])}


def is_platform_statement(statement: dict[str, Any], destination: Registry) -> bool:
    """Whether a statement of ``destination``'s registry policy is one :func:`registry_policy` writes (from any
    source account: an earlier image source's counts too)."""
    resource = f":ecr:{destination.region}:{destination.account_id}:repository/{REPOSITORY_PREFIX}/*"
    resources = _as_set(statement.get("Resource"))
    return (str(statement.get("Sid", "")).startswith("ReplicationFrom") and statement.get("Effect") == "Allow"
            and _as_set(statement.get("Action")) == {"ecr:ReplicateImage"} and len(resources) == 1
            and next(iter(resources)).startswith("arn:") and next(iter(resources)).endswith(resource))


def is_platform_rule(rule: dict[str, Any]) -> bool:
    """Whether a rule of a registry's replication configuration is the one :func:`replication_configuration`
    writes (to whichever destinations)."""
    def pairs(filters: Any) -> list[tuple[str, str]]:
        return [(str(item.get("filter")), str(item.get("filterType"))) for item in filters or []]

    return pairs(rule.get("repositoryFilters")) == pairs(replication_configuration(())["rules"][0]["repositoryFilters"])


@dataclass(frozen=True)
class ImageReplicationArgs:
    registry: Registry
    partition: str
    source: Registry | None
    replicas: tuple[Registry, ...]

    @classmethod
    def from_env(cls, env: EnvConfig, partition: str) -> ImageReplicationArgs:
        return cls(registry=Registry.of(env), partition=partition, source=image_source(env),
                   replicas=replica_registries(env))


class ImageReplication(pulumi.ComponentResource):
    """The registry-wide settings that move images between envs (either side, or neither)."""

    def __init__(self, name: str, args: ImageReplicationArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:compute:ImageReplication", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.replication: aws.ecr.ReplicationConfiguration | None = None
        self.registry_policy: aws.ecr.RegistryPolicy | None = None
        if args.replicas:
            config = replication_configuration(args.replicas)
            rule = config["rules"][0]
            self.replication = aws.ecr.ReplicationConfiguration(
                f"{name}-replication",
                replication_configuration=aws.ecr.ReplicationConfigurationReplicationConfigurationArgs(rules=[
                    aws.ecr.ReplicationConfigurationReplicationConfigurationRuleArgs(
                        destinations=[
                            aws.ecr.ReplicationConfigurationReplicationConfigurationRuleDestinationArgs(
                                region=destination["region"], registry_id=destination["registryId"])
                            for destination in rule["destinations"]],
                        repository_filters=[
                            aws.ecr.ReplicationConfigurationReplicationConfigurationRuleRepositoryFilterArgs(
                                filter=item["filter"], filter_type=item["filterType"])
                            for item in rule["repositoryFilters"]],
                    )]),
                opts=child,
            )
        if args.source is not None and args.source.account_id != args.registry.account_id:
            self.registry_policy = aws.ecr.RegistryPolicy(
                f"{name}-registry-policy",
                policy=json.dumps(registry_policy(args.source, args.registry, args.partition), sort_keys=True),
                opts=child,
            )
        self.register_outputs({})
