"""Destroying the HTTP namespace waits until ECS has removed its Service Connect services from it.

ECS Service Connect creates one Cloud Map service per ECS service in the namespace it is given (botocore
ecs ``ServiceConnectService.discoveryName``: "the name of the new Cloud Map service that Amazon ECS
creates"); the platform does not own them. Cloud Map refuses to delete a namespace that still holds a
service (botocore servicediscovery ``DeleteNamespace``: "If the namespace still contains one or more
services, the request fails", ``ResourceInUse``). ECS removes those services itself, asynchronously:
AWS's own Service Connect sample (aws-samples/ecs-service-connect-yelb-sample-app,
``scripts/remove-service-connect.sh``) turns Service Connect off on its ECS services, then polls
``ListServices`` on the namespace every 15 s until it is empty, and only then deletes the stack that holds
the namespace. No AWS document says the clean-up is done when DeleteService returns, and ``destroy`` runs
compute before discovery seconds apart, so the namespace's deletion would race ECS's clean-up.

:class:`ServiceConnectDrain` is a Pulumi dynamic resource that depends on the HTTP namespace, so Pulumi
deletes it first. Its creation does nothing; its deletion waits, polling the same way, until the namespace
holds no service, and fails after :data:`DRAIN_TIMEOUT_SECONDS` naming what is left and the command that
deletes it. It deletes nothing itself: a service still there may belong to an ECS service that still runs.
It needs the package importable where the provider runs (the ``.pth`` every nox session puts in ``.venv``:
:func:`shared.venvcheck.link_repo`).

The compute layer holds one per ECS service, naming that service's discovery name (``service_names``), which the
ECS service depends on: deleted after it, it waits only until that name is gone. A discovery name "must be unique
within the Cloud Map namespace" (same botocore field), and the namespace outlives the ECS service (an `up` that drops
the service from the release or the catalog, ``nox -s destroy -- ENV --layers compute``), so an ``up`` that creates
it again would otherwise race ECS's clean-up and fail while ECS still holds the old Cloud Map service.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pulumi
import pulumi.dynamic

from shared.components.delete_wait import DeleteWaitProvider

#: how long the destroy waits for ECS to empty the namespace, and how often it looks (as AWS's sample does)
DRAIN_TIMEOUT_SECONDS = 600
POLL_SECONDS = 15


def _client(service: str, region: str) -> Any:
    import boto3  # imported where the provider runs, not when the program only declares the resource

    return boto3.client(service, region_name=region)


def namespace_services(client: Any, namespace_id: str) -> list[dict[str, Any]]:
    """The Cloud Map services in the namespace ``namespace_id``."""
    paginator = client.get_paginator("list_services")
    pages = paginator.paginate(Filters=[{"Name": "NAMESPACE_ID", "Values": [namespace_id], "Condition": "EQ"}])
    return [service for page in pages for service in page.get("Services", [])]


def wait_until_empty(props: dict[str, Any], *, timeout: float = DRAIN_TIMEOUT_SECONDS,
                     interval: float = POLL_SECONDS, sleep: Callable[[float], None] = time.sleep,
                     clock: Callable[[], float] = time.monotonic) -> None:
    """Return once the namespace holds no Cloud Map service (with ``service_names`` in ``props``: none of
    those names); RuntimeError after ``timeout`` seconds."""
    namespace_id, region = str(props["namespace_id"]), str(props["region"])
    names = props.get("service_names")
    wanted = None if names is None else {str(name) for name in names}
    client = _client("servicediscovery", region)
    deadline = clock() + timeout
    while True:
        left = [service for service in namespace_services(client, namespace_id)
                if wanted is None or service.get("Name") in wanted]
        if not left:
            return
        if clock() >= deadline:
            listed = ", ".join(f"{service.get('Name')} ({service['Id']})" for service in left)
            first = "" if wanted is not None else "destroy compute first (nox -s destroy does). "
            raise RuntimeError(
                f"the Service Connect namespace {props.get('namespace_name', namespace_id)} ({namespace_id}) still "
                f"holds Cloud Map services after {int(timeout)} s: {listed}. ECS removes the one it created for "
                f"an ECS service once that service is gone: {first}If its "
                "ECS services are gone, delete what is left with `aws servicediscovery delete-service --region "
                f"{region} --id <id>` (with an administrator's credentials where the deploy role is refused: it may "
                "delete only Cloud Map services carrying the env's tags, and ECS creates these itself) and run the "
                "same command (the `up` that removed the service, or the destroy) again")
        sleep(interval)


class ServiceConnectDrainProvider(DeleteWaitProvider):
    replace_keys = ("namespace_id", "region")
    update_keys = ("namespace_name", "service_names")

    def resource_id(self, props: dict[str, Any]) -> str:
        return str(props["namespace_id"])

    def wait(self, props: dict[str, Any]) -> None:
        wait_until_empty(props)


class ServiceConnectDrain(pulumi.dynamic.Resource):
    """Deleted before the namespace it names (in compute: after its ECS services); its deletion waits until
    ECS has emptied that namespace (of ``service_names``, where given)."""

    def __init__(self, name: str, *, namespace_id: pulumi.Input[str], namespace_name: pulumi.Input[str],
                 region: str, service_names: pulumi.Input[list[str]] | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        props: dict[str, Any] = {"namespace_id": namespace_id, "namespace_name": namespace_name, "region": region}
        if service_names is not None:  # absent: the whole namespace (the discovery layer's drain)
            props["service_names"] = service_names
        super().__init__(ServiceConnectDrainProvider(), name, props, opts)
