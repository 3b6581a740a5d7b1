"""The synthesized messaging layer as a RabbitMQ topology, and as a RabbitMQ definitions document.

Everything here is read from the synth JSON of the messaging layer (the resources the real program
registers), never recomputed from the catalog: the rehearsal must exercise what would be deployed.
The services' credentials are read the way a service gets them: from the ``secretString`` of its
Secrets Manager secret (the mock runtime's generated passwords stand in for the real ones).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import Any

VHOST = "rabbitmq:index/vHost:VHost"
EXCHANGE = "rabbitmq:index/exchange:Exchange"
QUEUE = "rabbitmq:index/queue:Queue"
BINDING = "rabbitmq:index/binding:Binding"
USER = "rabbitmq:index/user:User"
PERMISSIONS = "rabbitmq:index/permissions:Permissions"
TOPIC_PERMISSIONS = "rabbitmq:index/topicPermissions:TopicPermissions"
POLICY = "rabbitmq:index/policy:Policy"
OPERATOR_POLICY = "rabbitmq:index/operatorPolicy:OperatorPolicy"
SECRET = "aws:secretsmanager/secret:Secret"
SECRET_VERSION = "aws:secretsmanager/secretVersion:SecretVersion"

HASHING_ALGORITHM = "rabbit_password_hashing_sha256"


class TopologyError(ValueError):
    """The synth document does not describe a usable RabbitMQ topology."""


@dataclass(frozen=True)
class VHostDef:
    name: str
    description: str = ""
    default_queue_type: str | None = None


@dataclass(frozen=True)
class ExchangeDef:
    name: str
    vhost: str
    type: str
    durable: bool
    auto_delete: bool
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class QueueDef:
    name: str
    vhost: str
    durable: bool
    auto_delete: bool
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PolicyDef:
    """A policy (``operator=False``) or operator policy, its definition as the provider sends it."""

    name: str
    vhost: str
    pattern: str
    apply_to: str
    priority: int
    definition: dict[str, Any]
    operator: bool = False


@dataclass(frozen=True)
class BindingDef:
    source: str
    destination: str
    destination_type: str
    routing_key: str
    vhost: str


@dataclass(frozen=True)
class UserDef:
    name: str
    password: str
    tags: tuple[str, ...]


@dataclass(frozen=True)
class PermissionDef:
    user: str
    vhost: str
    configure: str
    write: str
    read: str


@dataclass(frozen=True)
class TopicPermissionDef:
    user: str
    vhost: str
    exchange: str
    write: str
    read: str


@dataclass(frozen=True)
class ServiceCredentials:
    """What a service finds in its Secrets Manager secret."""

    service: str
    username: str
    password: str
    vhost: str


@dataclass(frozen=True)
class Topology:
    vhosts: tuple[VHostDef, ...]
    exchanges: tuple[ExchangeDef, ...]
    queues: tuple[QueueDef, ...]
    bindings: tuple[BindingDef, ...]
    users: tuple[UserDef, ...]
    permissions: tuple[PermissionDef, ...]
    topic_permissions: tuple[TopicPermissionDef, ...]
    credentials: dict[str, ServiceCredentials]
    outputs: dict[str, Any]
    """The layer's contract outputs (exchange and queue names as compute sees them)."""
    policies: tuple[PolicyDef, ...] = ()

    @property
    def vhost(self) -> str:
        return str(self.outputs["vhost"])

    def exchange_for(self, exchange: str) -> str:
        """The deployed name of the catalog's ``requests`` / ``events`` exchange."""
        return str(self.outputs[f"{exchange}_exchange"])

    def queue_names(self) -> list[str]:
        return [queue.name for queue in self.queues if queue.vhost == self.vhost]

    def exchange_names(self) -> list[str]:
        return [exchange.name for exchange in self.exchanges if exchange.vhost == self.vhost]

    def with_vhost(self, vhost: str) -> Topology:
        """The same topology in another vhost (to load a variant next to the original on one broker)."""
        old = self.vhost

        def move(value: str) -> str:
            return vhost if value == old else value

        return replace(
            self,
            vhosts=tuple(replace(v, name=move(v.name)) for v in self.vhosts),
            exchanges=tuple(replace(e, vhost=move(e.vhost)) for e in self.exchanges),
            queues=tuple(replace(q, vhost=move(q.vhost)) for q in self.queues),
            bindings=tuple(replace(b, vhost=move(b.vhost)) for b in self.bindings),
            permissions=tuple(replace(p, vhost=move(p.vhost)) for p in self.permissions),
            topic_permissions=tuple(replace(p, vhost=move(p.vhost)) for p in self.topic_permissions),
            policies=tuple(replace(p, vhost=move(p.vhost)) for p in self.policies),
            credentials={k: replace(c, vhost=move(c.vhost)) for k, c in self.credentials.items()},
            outputs={**self.outputs, "vhost": vhost},
        )


def _queue_arguments(settings: dict[str, Any]) -> dict[str, Any]:
    arguments: dict[str, Any] = dict(settings.get("arguments") or {})
    if settings.get("argumentsJson"):
        arguments.update(json.loads(settings["argumentsJson"]))
    return arguments


def provider_value(value: Any) -> Any:
    """A policy definition value as the RabbitMQ provider sends it to the management API: the inputs are
    strings, and one that parses as an integer goes as an integer (terraform-provider-rabbitmq putPolicy /
    putOperatorPolicy, "special case for integers")."""
    if isinstance(value, str):
        try:
            return int(value, 10)
        except ValueError:
            return value
    return value


def _policy(inputs: dict[str, Any], operator: bool) -> PolicyDef:
    policy = inputs["policy"]
    return PolicyDef(name=inputs["name"], vhost=inputs["vhost"], pattern=policy["pattern"],
                     apply_to=policy["applyTo"], priority=int(policy.get("priority", 0)),
                     definition={k: provider_value(v) for k, v in sorted((policy.get("definition") or {}).items())},
                     operator=operator)


def topology_from_synth(document: dict[str, Any]) -> Topology:
    """Read the RabbitMQ objects, users and service credentials out of a messaging synth document."""
    resources = document.get("resources") or []
    by_type: dict[str, list[dict[str, Any]]] = {}
    by_urn = {resource["urn"]: resource for resource in resources}
    for resource in resources:
        by_type.setdefault(resource["type"], []).append(resource)

    def inputs(kind: str) -> list[dict[str, Any]]:
        return [r["inputs"] for r in by_type.get(kind, [])]

    vhosts = tuple(VHostDef(name=i["name"], description=i.get("description", ""),
                            default_queue_type=i.get("defaultQueueType")) for i in inputs(VHOST))
    exchanges = tuple(
        ExchangeDef(name=i["name"], vhost=i["vhost"], type=i["settings"]["type"],
                    durable=bool(i["settings"].get("durable", False)),
                    auto_delete=bool(i["settings"].get("autoDelete", False)),
                    arguments=dict(i["settings"].get("arguments") or {}))
        for i in inputs(EXCHANGE))
    queues = tuple(
        QueueDef(name=i["name"], vhost=i["vhost"], durable=bool(i.get("settings", {}).get("durable", False)),
                 auto_delete=bool(i.get("settings", {}).get("autoDelete", False)),
                 arguments=_queue_arguments(i.get("settings") or {}))
        for i in inputs(QUEUE))
    bindings = tuple(
        BindingDef(source=i["source"], destination=i["destination"], destination_type=i["destinationType"],
                   routing_key=i.get("routingKey", ""), vhost=i["vhost"])
        for i in inputs(BINDING))
    users = tuple(UserDef(name=i["name"], password=i["password"], tags=tuple(i.get("tags") or ()))
                  for i in inputs(USER))
    permissions = tuple(
        PermissionDef(user=i["user"], vhost=i["vhost"], configure=i["permissions"]["configure"],
                      write=i["permissions"]["write"], read=i["permissions"]["read"])
        for i in inputs(PERMISSIONS))
    topic_permissions = tuple(
        TopicPermissionDef(user=i["user"], vhost=i["vhost"], exchange=p["exchange"], write=p["write"], read=p["read"])
        for i in inputs(TOPIC_PERMISSIONS) for p in i["permissions"])
    policies = (*(_policy(i, operator=False) for i in inputs(POLICY)),
                *(_policy(i, operator=True) for i in inputs(OPERATOR_POLICY)))

    credentials: dict[str, ServiceCredentials] = {}
    for version in by_type.get(SECRET_VERSION, []):
        secret = by_urn.get(version.get("parent") or "")
        service = ((secret or {}).get("inputs", {}).get("tags") or {}).get("service")
        if secret is None or secret["type"] != SECRET or not service:
            continue
        value = json.loads(version["inputs"]["secretString"])
        credentials[service] = ServiceCredentials(service=service, username=value["username"],
                                                  password=value["password"], vhost=value["vhost"])
    outputs = dict(document.get("outputs") or {})
    for key in ("vhost", "requests_exchange", "events_exchange", "dead_letter_exchange", "queues"):
        if key not in outputs:
            raise TopologyError(f"the messaging synth document exports no {key!r}")
    if not vhosts:
        raise TopologyError("the messaging synth document declares no vhost")
    return Topology(vhosts=vhosts, exchanges=exchanges, queues=queues, bindings=bindings, users=users,
                    permissions=permissions, topic_permissions=topic_permissions, credentials=credentials,
                    outputs=outputs, policies=policies)


def password_hash(password: str, salt: bytes) -> str:
    """RabbitMQ's ``rabbit_password_hashing_sha256``: base64(salt + sha256(salt + password))."""
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def _salt(user: str) -> bytes:
    # Derived from the name so the definitions file is byte-stable between runs (the passwords are
    # the synthesized stand-ins, which are deterministic too); only ever loaded into local brokers.
    return hashlib.sha256(f"rehearsal-salt:{user}".encode()).digest()[:4]


def user_definition(name: str, password: str, tags: tuple[str, ...] | list[str]) -> dict[str, Any]:
    return {"name": name, "password_hash": password_hash(password, _salt(name)),
            "hashing_algorithm": HASHING_ALGORITHM, "tags": list(tags), "limits": {}}


def _vhost_definition(vhost: VHostDef) -> dict[str, Any]:
    definition: dict[str, Any] = {"name": vhost.name}
    if vhost.description:
        definition["description"] = vhost.description
    if vhost.default_queue_type:
        definition["default_queue_type"] = vhost.default_queue_type
    return definition


def to_definitions(topology: Topology) -> dict[str, Any]:
    """A RabbitMQ definitions document (``rabbitmqctl import_definitions`` / ``load_definitions``)."""
    return {
        "users": [user_definition(u.name, u.password, u.tags) for u in topology.users],
        "vhosts": [_vhost_definition(vhost) for vhost in topology.vhosts],
        "permissions": [
            {"user": p.user, "vhost": p.vhost, "configure": p.configure, "write": p.write, "read": p.read}
            for p in topology.permissions],
        "topic_permissions": [
            {"user": p.user, "vhost": p.vhost, "exchange": p.exchange, "write": p.write, "read": p.read}
            for p in topology.topic_permissions],
        "exchanges": [
            {"name": e.name, "vhost": e.vhost, "type": e.type, "durable": e.durable, "auto_delete": e.auto_delete,
             "internal": False, "arguments": e.arguments}
            for e in topology.exchanges],
        "queues": [
            {"name": q.name, "vhost": q.vhost, "durable": q.durable, "auto_delete": q.auto_delete,
             "arguments": q.arguments}
            for q in topology.queues],
        "bindings": [
            {"source": b.source, "vhost": b.vhost, "destination": b.destination,
             "destination_type": b.destination_type, "routing_key": b.routing_key, "arguments": {}}
            for b in topology.bindings],
        "policies": [_policy_value(p) | {"vhost": p.vhost, "name": p.name}
                     for p in topology.policies if not p.operator],
        # RabbitMQ keeps (and exports) operator policies as runtime parameters of this component.
        "parameters": [{"vhost": p.vhost, "component": "operator_policy", "name": p.name, "value": _policy_value(p)}
                       for p in topology.policies if p.operator],
    }


def _policy_value(policy: PolicyDef) -> dict[str, Any]:
    return {"pattern": policy.pattern, "apply-to": policy.apply_to, "priority": policy.priority,
            "definition": dict(policy.definition)}


def dumps_definitions(definitions: dict[str, Any]) -> str:
    return json.dumps(definitions, indent=2, sort_keys=True) + "\n"
