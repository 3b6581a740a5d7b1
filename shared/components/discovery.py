"""Service discovery of one environment: AWS Cloud Map namespaces, and in App Mesh envs one Cloud Map
service per catalog service.

Two namespaces, because they serve different clients:

* the **private DNS namespace** (``<env>.ml.internal``, a Route 53 private hosted zone in the VPC). In
  App Mesh envs it holds one Cloud Map service per catalog service; ECS registers each task there
  (``serviceRegistries``), so anything in the VPC resolves ``<service>.<namespace>`` to healthy task
  IPs, and the virtual nodes find their endpoints through it. In Service Connect envs it holds no
  service: ECS registers Service Connect tasks only in the Service Connect namespace, and the ECS API
  documents no use of ``serviceRegistries`` beside ``serviceConnectConfiguration``, so such services
  would stay empty and their names would resolve to nothing. There, ``<service>.<namespace>`` is a
  Service Connect client alias: it resolves inside the env's ECS tasks only (their Service Connect
  proxy answers it);
* the **HTTP namespace** (``<env>-ml-api``) is API-only discovery (``DiscoverInstances``, no DNS). It is
  the namespace ECS Service Connect uses: Service Connect creates and owns its own Cloud Map services,
  named after each service's discovery name, in the namespace it is given. Keeping those out of the DNS
  namespace means they never collide with the services this layer creates there. ECS removes them
  some time after the ECS services are deleted, so the namespace's destroy waits for that
  (:mod:`shared.components.service_connect_drain`).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from shared.catalog import Catalog, ServiceSpec
from shared.components.service_connect_drain import ServiceConnectDrain
from shared.envs import EnvConfig, StaticInstance, env_path, static_instances_problem
from shared.errors import ConfigError
from shared.mesh_names import service_dns_name

#: Cloud Map always uses 1 for custom health checks; sent so the provider keeps the block (see below).
CUSTOM_HEALTH_FAILURE_THRESHOLD = 1


@dataclass(frozen=True)
class ServiceDiscoveryArgs:
    env_name: str
    region: str
    namespace: str
    http_namespace: str
    services: tuple[ServiceSpec, ...]
    dns_ttl_seconds: int
    static_instances: tuple[StaticInstance, ...]
    protect: bool

    @classmethod
    def from_env(cls, env: EnvConfig, catalog: Catalog) -> ServiceDiscoveryArgs:
        dns_services = env.mesh.provider == "appmesh"
        problem = static_instances_problem(env)
        if problem:  # refused rather than ignored (defensive: the env loader refuses it first)
            raise ConfigError(str(env_path(env.name)), "discovery.static_instances", problem)
        return cls(
            env_name=env.name,
            region=env.region,
            namespace=env.namespace,
            http_namespace=http_namespace_name(env.name),
            # Only App Mesh envs register tasks in the DNS namespace (see the module docstring).
            services=tuple(catalog) if dns_services else (),
            dns_ttl_seconds=env.discovery.dns_ttl_seconds,
            static_instances=env.discovery.static_instances,
            protect=env.protect,
        )


def http_namespace_name(env_name: str) -> str:
    """The API-only (HTTP) namespace of an env; ECS Service Connect's namespace."""
    return f"{env_name}-ml-api"


class ServiceDiscovery(pulumi.ComponentResource):
    """The private DNS namespace in the VPC, the HTTP namespace and, in App Mesh envs, one Cloud Map
    service per catalog service and the statically registered instances the env declares."""

    def __init__(
        self,
        name: str,
        args: ServiceDiscoveryArgs,
        vpc_id: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mlplatform:discovery:ServiceDiscovery", name, None, opts)
        env = args.env_name
        # Namespaces are stateful: deleting one deletes every service and registration in it, which
        # takes every consumer's discovery down at once. Protected wherever the env protects state.
        namespace_opts = pulumi.ResourceOptions(parent=self, protect=args.protect)

        self.private_namespace = aws.servicediscovery.PrivateDnsNamespace(
            f"{name}-private",
            name=args.namespace,
            vpc=vpc_id,
            description=f"Private DNS discovery of the {env} ML services (A/SRV records of healthy tasks)",
            tags={"Name": args.namespace},
            opts=namespace_opts,
        )
        self.http_namespace = aws.servicediscovery.HttpNamespace(
            f"{name}-http",
            name=args.http_namespace,
            description=f"API-only discovery of the {env} ML services; the ECS Service Connect namespace",
            tags={"Name": args.http_namespace},
            opts=namespace_opts,
        )
        # ECS removes its Service Connect services from the namespace some time after compute's destroy;
        # this is deleted first and waits for that (shared.components.service_connect_drain).
        self.service_connect_drain = ServiceConnectDrain(
            f"{name}-http-drain", namespace_id=self.http_namespace.id, namespace_name=self.http_namespace.name,
            region=args.region, opts=pulumi.ResourceOptions(parent=self.http_namespace))

        self.services: dict[str, aws.servicediscovery.Service] = {}
        for spec in args.services:
            self.services[spec.name] = aws.servicediscovery.Service(
                f"{name}-{spec.name}",
                name=spec.name,
                description=spec.description or f"{spec.name} tasks of {env}",
                dns_config=aws.servicediscovery.ServiceDnsConfigArgs(
                    namespace_id=self.private_namespace.id,
                    # A for clients that know the port, SRV for clients (and Envoy) that discover it.
                    # A short TTL so a replaced task drops out of resolvers within seconds.
                    dns_records=[
                        aws.servicediscovery.ServiceDnsConfigDnsRecordArgs(ttl=args.dns_ttl_seconds, type="A"),
                        aws.servicediscovery.ServiceDnsConfigDnsRecordArgs(ttl=args.dns_ttl_seconds, type="SRV"),
                    ],
                    # Every healthy task answers (up to 8 records), so clients spread load themselves.
                    routing_policy="MULTIVALUE",
                ),
                # Custom health checks: ECS reports each task's container health to Cloud Map, so an
                # unhealthy task stops being returned. (Route 53 health checks cannot reach private IPs.)
                # failure_threshold=1 (the only value AWS uses) must be sent: pulumi-aws drops an empty
                # block, so no check would exist, and the upstream provider then plans a replacement on
                # every run (pulumi/pulumi-aws#6289, hashicorp/terraform-provider-aws#44285). A plain
                # dict, not the Args class, so its deprecation warning does not fire once per service.
                health_check_custom_config={"failure_threshold": CUSTOM_HEALTH_FAILURE_THRESHOLD},
                # Lets `destroy` remove a service ECS still has instances registered in.
                force_destroy=not args.protect,
                tags={"Name": service_dns_name(spec.name, args.namespace), "service": spec.name},
                opts=pulumi.ResourceOptions(parent=self.private_namespace),
            )

        self.static_instances: list[aws.servicediscovery.Instance] = []
        for instance in args.static_instances:
            service = self.services[instance.service]
            self.static_instances.append(aws.servicediscovery.Instance(
                f"{name}-{instance.service}-{instance.instance_id}",
                instance_id=instance.instance_id,
                service_id=service.id,
                attributes={
                    "AWS_INSTANCE_IPV4": str(instance.ipv4),
                    "AWS_INSTANCE_PORT": str(instance.port),
                    # Nothing outside ECS reports health for a static instance: it starts (and stays)
                    # healthy rather than being hidden until someone calls UpdateInstanceCustomHealthStatus.
                    "AWS_INIT_HEALTH_STATUS": "HEALTHY",
                },
                opts=pulumi.ResourceOptions(parent=service),
            ))

        self.register_outputs({
            "private_namespace_id": self.private_namespace.id,
            "http_namespace_id": self.http_namespace.id,
            "service_ids": {svc: resource.id for svc, resource in self.services.items()},
        })

    def contract_services(self) -> pulumi.Output[dict[str, dict[str, str]]]:
        """``DiscoveryContract.services``: per catalog service its Cloud Map service id, ARN and name."""
        if not self.services:
            return pulumi.Output.from_input({})
        return pulumi.Output.all(**{
            svc: pulumi.Output.all(id=resource.id, arn=resource.arn, name=resource.name)
            for svc, resource in self.services.items()
        })
