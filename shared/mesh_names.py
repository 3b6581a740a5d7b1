"""The names discovery, mesh and compute give a service, and the limits AWS puts on them: one place for the
components and the env rules (``shared.envs``), which check them without the Pulumi SDK.

Limits, from botocore's API models:

* ECS ``ServiceConnectClientAlias.dnsName``: up to 127 characters, lowercase letters, digits, ``_``, ``-``
  and ``.``, not starting with ``-`` ("must be a valid DNS name");
* ECS ``ServiceConnectService.discoveryName`` and ``PortMapping.name`` (the ``portName``): up to 64
  characters, lowercase letters, digits, ``_`` and ``-``, not starting with ``-``;
* Cloud Map ``CreatePrivateDnsNamespace.Name`` (``NamespaceNamePrivate``): 1-253 printable characters, not
  ``arn:``. The namespace is also a Route 53 private hosted zone: each label of it has at most 63
  characters and every name in it (``<service>.<namespace>``) at most 253 (RFC 1035 2.3.4, 255 octets);
* Cloud Map ``CreateHttpNamespace.Name`` (``NamespaceNameHttp``): 1-1024 printable characters, not ``arn:``
  (``<env>-ml-api`` fits for any env name the loader accepts);
* IAM ``CreateRole.RoleName`` (``roleNameType``): 1-64 characters. Pulumi auto-names each ECS service's
  roles ``<resource name>-`` plus 7 random characters and fails the ``up`` when that is longer ("... plus 7
  random chars is longer than maximum length 64"); the random part keeps the names unique in an account
  that holds several envs.
"""

from __future__ import annotations

from collections.abc import Iterable

from shared.gateway_names import AUTONAME_SUFFIX  # what Pulumi appends when it auto-names: "-" + 7 characters

SERVICE_CONNECT_DNS_NAME_MAX = 127
SERVICE_CONNECT_NAME_MAX = 64  # discoveryName and portName
PRIVATE_NAMESPACE_MAX = 253
DNS_NAME_MAX = 253
DNS_LABEL_MAX = 63
IAM_ROLE_NAME_MAX = 64


def port_name(service: str) -> str:
    """The container port mapping name (Service Connect refers to the port by this name)."""
    return f"{service}-http"


def discovery_name(service: str) -> str:
    """The Cloud Map service ECS Service Connect creates for the service in the HTTP namespace."""
    return service


def service_dns_name(service: str, namespace: str) -> str:
    """The name a service answers to inside the VPC, whatever the mesh provider (the Service Connect client
    alias, the App Mesh virtual service and the Cloud Map A/SRV record name)."""
    return f"{service}.{namespace}"


#: The tag keys each unit's ECS service carries and propagates to its tasks: the service, and a canary's version.
#: The consumers' scale-in protection grants read them (shared.components.compute_iam.task_protection_statement),
#: so the env loader refuses them as env-wide tags (shared.envs.PER_RESOURCE_TAG_KEYS).
SERVICE_TAG = "service"
VERSION_TAG = "version"


def unit_tags(service: str, version: str | None) -> dict[str, str]:
    """The tags of one unit (a service, or one canary version of it): :data:`SERVICE_TAG`, and :data:`VERSION_TAG`
    for a canary."""
    return {SERVICE_TAG: service, **({VERSION_TAG: version} if version else {})}


def unit_name(service: str, version: str | None) -> str:
    """What one ECS service (a service, or one canary version of it) is called in resource names."""
    return f"{service}-{version}" if version else service


def execution_role_resource_name(unit: str) -> str:
    return f"{unit}-execution"


def task_role_resource_name(unit: str) -> str:
    return f"{unit}-task"


def role_name_problems(unit: str) -> list[str]:
    """Why Pulumi cannot auto-name the IAM roles of the ECS service ``unit`` (empty: it can)."""
    problems = []
    for what, resource in (("execution", execution_role_resource_name(unit)), ("task", task_role_resource_name(unit))):
        length = len(resource) + AUTONAME_SUFFIX
        if length <= IAM_ROLE_NAME_MAX:
            continue
        room = IAM_ROLE_NAME_MAX - AUTONAME_SUFFIX - (len(resource) - len(unit)) - 1  # less the "-" between them
        problems.append(f"the IAM {what} role of {unit!r} is auto-named {resource!r} plus {AUTONAME_SUFFIX} "
                        f"characters, {length} in all, more than the {IAM_ROLE_NAME_MAX} IAM allows: the service and "
                        f"version names together have at most {room} characters")
    return problems


def namespace_problems(namespace: str, services: Iterable[str], provider: str) -> list[str]:
    """Why the private DNS namespace ``namespace`` (or a name below it) cannot be created (empty: it can)."""
    problems = []
    if len(namespace) > PRIVATE_NAMESPACE_MAX:
        problems.append(f"{namespace!r} has {len(namespace)} characters; Cloud Map accepts a private DNS namespace "
                        f"of at most {PRIVATE_NAMESPACE_MAX}")
    long_labels = [label for label in namespace.split(".") if len(label) > DNS_LABEL_MAX]
    if long_labels:
        problems.append(f"{namespace!r} has a label of {max(map(len, long_labels))} characters; the namespace is a "
                        f"Route 53 private hosted zone, whose labels have at most {DNS_LABEL_MAX}")
    names = sorted(services, key=lambda name: (-len(name), name))
    if not names:
        return problems
    longest = service_dns_name(names[0], namespace)
    if provider == "service-connect" and len(longest) > SERVICE_CONNECT_DNS_NAME_MAX:
        problems.append(
            f"the Service Connect client alias {longest!r} has {len(longest)} characters; ECS accepts at most "
            f"{SERVICE_CONNECT_DNS_NAME_MAX}, so with the catalog's longest service name ({names[0]!r}) the "
            f"namespace has at most {SERVICE_CONNECT_DNS_NAME_MAX - len(names[0]) - 1} characters")
    elif len(longest) > DNS_NAME_MAX:
        problems.append(f"the DNS name {longest!r} has {len(longest)} characters, more than DNS allows "
                        f"({DNS_NAME_MAX}); with the catalog's longest service name ({names[0]!r}) the namespace "
                        f"has at most {DNS_NAME_MAX - len(names[0]) - 1} characters")
    return problems
