"""The rehearsal's checks, run with each service's own credentials against a loaded broker.

Expectations come from the service catalog (who publishes and consumes what); the objects and
permissions come from the synthesized topology. So the checks fail when the deployed topology and
the catalog disagree, in either direction:

- **routes**: every route the catalog declares delivers, and into exactly the queues it names;
- **access**: every service can do what the catalog grants it (read its queue, write the exchanges
  it publishes to) and is refused (``ACCESS_REFUSED``) everything else: reading other queues,
  writing other exchanges (the default exchange included), on each exchange every routing key the
  service does not declare (another service's, or one nobody declares), declaring or deleting
  objects, binding its queue elsewhere;
- **dead-letters**: a message its consumer rejects lands in the queue's dead-letter queue (the
  dead-letter exchange and routing key come from the queue's policy, not from queue arguments);
- **consumer timeouts**: each work queue's policy carries the ``consumer-timeout`` of its consumer's
  ``max_job_seconds`` (Amazon MQ's 30 minutes without one), and the node applies it (its effective policy
  shows it) -- on a node that knows the key (RabbitMQ 3.12 on). An older node (Debian's 3.10) refuses it,
  so the key is left out there and the report lists it under what this node runs differently;
- **policy changes**: changing a work queue's TTL and length limit through the management API (what
  the Pulumi provider does on a later ``up``) takes effect on the existing queue: its effective policy
  shows the new values, publishes past the new limit are refused, and the messages it held are all
  still there. A redeclare with the new value as a queue argument is refused (406
  PRECONDITION_FAILED): that is why these settings are policies.
"""

from __future__ import annotations

import logging
import re
import time
import urllib.error
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import quote

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from shared.amazonmq import per_queue_consumer_timeout
from shared.catalog import EXCHANGES, Catalog
from shared.rehearse.broker import (
    ADMIN_USER,
    LocalBroker,
    apply_to_for_version,
    definition_for_version,
    unknown_policy_keys,
    version_divergences,
)
from shared.rehearse.definitions import PolicyDef, Topology, to_definitions

ACCESS_REFUSED = 403
PROBE_KEY = "rehearsal.probe"
DEFAULT_EXCHANGE = ""


@dataclass(frozen=True, kw_only=True)
class _ProblemOrOk:
    """A check's result that passed when it found no ``problem`` (a keyword, after each check's own fields)."""

    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


@dataclass(frozen=True)
class RouteResult(_ProblemOrOk):
    publisher: str
    exchange: str
    routing_key: str
    expected: tuple[str, ...]
    delivered: tuple[str, ...]

    def failure(self) -> str:
        return (f"route broke: {self.publisher} -> {self.exchange} '{self.routing_key}': the catalog says "
                f"{_names(self.expected)}, delivered to {_names(self.delivered)} ({self.problem})")


@dataclass(frozen=True)
class AccessResult:
    service: str
    row: str
    """The access matrix row, e.g. ``read gateway.work`` (the same for every service)."""
    action: str
    target: str
    expected_allowed: bool
    allowed: bool | None
    """None: the probe could not run (no credentials, no connection)."""
    code: int | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        if self.allowed is None or self.allowed != self.expected_allowed:
            return False
        return self.allowed or self.code == ACCESS_REFUSED

    def failure(self) -> str:
        what = f"{self.action} {_display(self.target)}"
        if self.allowed is None:
            kind = "access" if self.expected_allowed else "refusal"
            return f"{kind} not checked: {self.service} {what}: {self.detail}"
        if self.expected_allowed and not self.allowed:
            return (f"access broke: {self.service} could not {what} ({self.code} {self.detail}), "
                    "which the catalog grants")
        if self.allowed:
            return f"refusal broke: {self.service} could {what} (expected ACCESS_REFUSED)"
        return f"refusal broke: {self.service} {what}: failed with {self.code} {self.detail}, not ACCESS_REFUSED"


@dataclass(frozen=True)
class DeadLetterResult(_ProblemOrOk):
    service: str
    queue: str
    dead_letter_queue: str

    def failure(self) -> str:
        return f"dead-lettering broke: a message {self.service} rejected from {self.queue}: {self.problem}"


@dataclass(frozen=True)
class PolicyChangeResult(_ProblemOrOk):
    queue: str
    change: str
    """What was changed, e.g. ``message-ttl 3600000 -> 7200000, max-length 100000 -> 3``."""
    kept: int
    """Messages the queue held before the change and still holds after it."""

    def failure(self) -> str:
        return f"policy change broke: {self.queue} ({self.change}): {self.problem}"


@dataclass(frozen=True)
class ConsumerTimeoutResult(_ProblemOrOk):
    service: str
    queue: str
    expected: int | None
    """The catalog's timeout for the queue (ms); None: the env's engine takes none per queue."""
    declared: int | None
    """``consumer-timeout`` of the policy that applies to the queue."""
    applied: int | None
    """What the node applies (its effective policy); None where the node does not know the key."""

    def failure(self) -> str:
        return f"consumer timeout broke: {self.service}'s {self.queue}: {self.problem}"


@dataclass
class RehearsalReport:
    env: str
    vhost: str
    routes: list[RouteResult] = field(default_factory=list)
    access: list[AccessResult] = field(default_factory=list)
    dead_letters: list[DeadLetterResult] = field(default_factory=list)
    policy_changes: list[PolicyChangeResult] = field(default_factory=list)
    consumer_timeouts: list[ConsumerTimeoutResult] = field(default_factory=list)
    divergences: list[str] = field(default_factory=list)
    """What this node runs differently from the deployed broker (keys it refuses): not proven here."""
    problems: list[str] = field(default_factory=list)
    """Problems that are not one route or probe (missing credentials, failed logins...)."""
    rotation: str | None = None
    """The credentials rotation rehearsed after the checks (shared.rehearse.rotation), None when none was."""
    rotation_problems: list[str] = field(default_factory=list)
    #: whether the node was restarted as a maintenance window restarts it (shared.rehearse.restart)
    restarted: bool = False
    restart_problems: list[str] = field(default_factory=list)

    def failures(self) -> list[str]:
        return [
            *self.problems,
            *self.restart_problems,
            *self.rotation_problems,
            *(r.failure() for r in self.routes if not r.ok),
            *(a.failure() for a in self.access if not a.ok),
            *(d.failure() for d in self.dead_letters if not d.ok),
            *(c.failure() for c in self.policy_changes if not c.ok),
            *(t.failure() for t in self.consumer_timeouts if not t.ok),
        ]

    @property
    def ok(self) -> bool:
        return not self.failures()


def _names(queues: tuple[str, ...]) -> str:
    return ", ".join(queues) if queues else "no queue"


def _display(target: str) -> str:
    return "(default exchange)" if target == DEFAULT_EXCHANGE else target


@dataclass(frozen=True)
class _Outcome:
    allowed: bool
    code: int | None = None
    text: str = ""
    value: Any = None
    unavailable: str | None = None
    """Why the operation could not even be tried (the service has no credentials or cannot log in)."""


class Rehearsal:
    """One run of the checks: a broker with ``topology`` loaded, judged against ``catalog``."""

    def __init__(self, broker: LocalBroker, topology: Topology, catalog: Catalog, env: str) -> None:
        self.broker = broker
        self.topology = topology
        self.catalog = catalog
        self.report = RehearsalReport(env=env, vhost=topology.vhost)
        self._connections: dict[str, BlockingConnection] = {}
        self._admin: BlockingConnection | None = None

    # -- connections ------------------------------------------------------------------------
    def admin(self) -> BlockingChannel:
        if self._admin is None or not self._admin.is_open:
            self._admin = self.broker.connect(ADMIN_USER, self.broker.admin_password, self.topology.vhost)
        return self._admin.channel()

    def connection(self, service: str) -> BlockingConnection:
        """``service``'s own connection, with the credentials from its Secrets Manager secret."""
        existing = self._connections.get(service)
        if existing is not None and existing.is_open:
            return existing
        credentials = self.topology.credentials.get(service)
        if credentials is None:
            raise LookupError(f"no Secrets Manager secret with credentials for {service}")
        try:
            connection = self.broker.connect(credentials.username, credentials.password, credentials.vhost)
        except pika.exceptions.AMQPError as error:
            raise LookupError(f"{service} cannot log in as {credentials.username} to vhost "
                              f"{credentials.vhost}: {type(error).__name__} {error}") from None
        self._connections[service] = connection
        return connection

    def close(self) -> None:
        for connection in [*self._connections.values(), self._admin]:
            if connection is not None and connection.is_open:
                try:
                    connection.close()
                except pika.exceptions.AMQPError:
                    pass
        self._connections.clear()
        self._admin = None

    @contextmanager
    def _channel(self, service: str) -> Iterator[BlockingChannel]:
        channel = self.connection(service).channel()
        try:
            yield channel
        finally:
            if channel.is_open:
                channel.close()

    def attempt(self, service: str, operation: Callable[[BlockingChannel], Any]) -> _Outcome:
        """Run one AMQP operation as ``service`` on a fresh channel; a refusal closes only that channel."""
        try:
            self.connection(service)
        except LookupError as error:
            return _Outcome(allowed=False, unavailable=str(error))
        with self._channel(service) as channel:
            try:
                return _Outcome(allowed=True, value=operation(channel))
            except pika.exceptions.ChannelClosedByBroker as error:
                return _Outcome(allowed=False, code=error.reply_code, text=error.reply_text)

    # -- admin helpers ----------------------------------------------------------------------
    def purge_all(self) -> None:
        channel = self.admin()
        for queue in self.topology.queue_names():
            channel.queue_purge(queue)
        channel.close()

    def counts(self) -> dict[str, int]:
        channel = self.admin()
        result = {q: channel.queue_declare(q, passive=True).method.message_count for q in self.topology.queue_names()}
        channel.close()
        return result

    def wait_for(self, queues: tuple[str, ...], timeout: float = 1.0) -> dict[str, int]:
        """Queue depths once every queue in ``queues`` holds a message (or ``timeout`` passed)."""
        deadline = time.monotonic() + timeout
        counts = self.counts()
        while any(counts.get(q, 0) < 1 for q in queues) and time.monotonic() < deadline:
            time.sleep(0.05)
            counts = self.counts()
        return counts

    # -- checks -----------------------------------------------------------------------------
    def run(self) -> RehearsalReport:
        # Every refusal we provoke makes pika log a warning; the report says it better.
        pika_logger = logging.getLogger("pika")
        level = pika_logger.level
        pika_logger.setLevel(logging.CRITICAL)
        try:
            self._check_credentials()
            self.check_routes()
            self.check_dead_letters()
            self.check_consumer_timeouts()
            self.check_policy_change()
            self.check_access()
        finally:
            self.close()
            pika_logger.setLevel(level)
        return self.report

    def _check_credentials(self) -> None:
        for spec in self.catalog:
            if not spec.uses_messaging:
                continue
            try:
                self.connection(spec.name)
            except LookupError as error:
                self.report.problems.append(f"credentials broke: {error}")

    def _publish(self, service: str, exchange: str, routing_key: str) -> tuple[str, _Outcome]:
        """Publish as ``service`` with confirms and ``mandatory`` (an unroutable message comes back)."""
        message_id = uuid.uuid4().hex
        properties = pika.BasicProperties(message_id=message_id, delivery_mode=2, content_type="application/json")

        def publish(channel: BlockingChannel) -> str:
            channel.confirm_delivery()
            try:
                channel.basic_publish(exchange, routing_key, b'{"rehearsal": true}', properties, mandatory=True)
            except pika.exceptions.UnroutableError:
                return "unroutable"
            except pika.exceptions.NackError:
                return "nacked by the broker"
            return "confirmed"

        return message_id, self.attempt(service, publish)

    def _consume_own(self, service: str, queue: str, message_id: str, *, reject: bool = False) -> str | None:
        """``service`` takes the message from its queue with its own credentials; a problem or None."""

        def get(channel: BlockingChannel) -> str | None:
            method, properties, _ = channel.basic_get(queue, auto_ack=False)
            if method is None:
                return f"{service} found {queue} empty"
            if properties.message_id != message_id:
                channel.basic_nack(method.delivery_tag, requeue=True)
                return f"{service} got another message from {queue}"
            if reject:
                channel.basic_nack(method.delivery_tag, requeue=False)
            else:
                channel.basic_ack(method.delivery_tag)
            return None

        outcome = self.attempt(service, get)
        if outcome.unavailable:
            return outcome.unavailable
        if not outcome.allowed:
            return f"{service} was refused reading its own queue {queue} ({outcome.code} {outcome.text})"
        return outcome.value

    def _owner(self, queue: str) -> str | None:
        return next((spec.name for spec in self.catalog if spec.queue == queue), None)

    def check_routes(self) -> None:
        for publisher, exchange, key, expected_queues in self.catalog.routes():
            expected = tuple(sorted(expected_queues))
            exchange_name = self.topology.exchange_for(exchange)
            self.purge_all()
            message_id, outcome = self._publish(publisher, exchange_name, key)
            if outcome.unavailable:
                self.report.routes.append(RouteResult(publisher, exchange_name, key, expected, (),
                                                      problem=outcome.unavailable))
                continue
            if not outcome.allowed:
                self.report.routes.append(RouteResult(publisher, exchange_name, key, expected, (),
                                                      problem=f"publish refused: {outcome.code} {outcome.text}"))
                continue
            counts = self.wait_for(expected)
            delivered = tuple(sorted(q for q, n in counts.items() if n > 0))
            problems = []
            if outcome.value != "confirmed" and expected:
                problems.append(f"publish {outcome.value}")
            if delivered != expected:
                problems.append("delivered to other queues than the catalog says")
            duplicates = [q for q in expected if counts.get(q, 0) > 1]
            if duplicates:
                problems.append(f"more than one copy in {', '.join(duplicates)}")
            for queue in expected:
                if counts.get(queue, 0) < 1:
                    continue
                owner = self._owner(queue)
                problem = self._consume_own(owner, queue, message_id) if owner else f"no service owns {queue}"
                if problem:
                    problems.append(problem)
            self.report.routes.append(RouteResult(publisher, exchange_name, key, expected, delivered,
                                                  problem="; ".join(problems) or None))
        self.purge_all()

    def check_dead_letters(self) -> None:
        for spec in self.catalog:
            queue, dead_letter_queue = spec.queue, spec.dead_letter_queue
            if not queue or not dead_letter_queue:
                continue
            self.purge_all()
            # The administrator puts the message straight into the queue (default exchange), so this
            # check depends on dead-lettering alone, not on the routes checked above.
            message_id = uuid.uuid4().hex
            channel = self.admin()
            channel.basic_publish(DEFAULT_EXCHANGE, queue, b'{"rehearsal": "reject me"}',
                                  pika.BasicProperties(message_id=message_id, delivery_mode=2))
            channel.close()
            counts = self.wait_for((queue,))
            if counts.get(queue, 0) != 1:
                problem: str | None = f"the message for {queue} did not arrive"
            else:
                problem = self._consume_own(spec.name, queue, message_id, reject=True)
            if problem is None:
                problem = self._dead_lettered(queue, dead_letter_queue, message_id)
            self.report.dead_letters.append(DeadLetterResult(spec.name, queue, dead_letter_queue, problem=problem))
        self.purge_all()

    def _dead_lettered(self, queue: str, dead_letter_queue: str, message_id: str) -> str | None:
        counts = self.wait_for((dead_letter_queue,))
        if counts.get(dead_letter_queue, 0) != 1:
            others = [q for q, n in counts.items() if n]
            return f"it did not land in {dead_letter_queue} (messages are in: {', '.join(others) or 'no queue'})"
        channel = self.admin()
        method, properties, _ = channel.basic_get(dead_letter_queue, auto_ack=True)
        channel.close()
        if method is None or properties.message_id != message_id:
            return f"{dead_letter_queue} holds another message"
        deaths = (properties.headers or {}).get("x-death") or [{}]
        first = deaths[0]
        if first.get("reason") != "rejected" or first.get("queue") != queue:
            return f"x-death says {first.get('reason')!r} from {first.get('queue')!r}, not 'rejected' from {queue}"
        return None

    # -- policies ----------------------------------------------------------------------------
    def policy_for(self, queue: str, operator: bool) -> PolicyDef | None:
        """The policy RabbitMQ applies to ``queue``: the highest-priority match (one per kind)."""
        matches = [p for p in self.topology.policies
                   if p.operator == operator and p.vhost == self.topology.vhost
                   and p.apply_to in ("queues", "quorum_queues", "all") and re.search(p.pattern, queue)]
        return max(matches, key=lambda p: p.priority, default=None)

    @cached_property
    def _node_version(self) -> tuple[int, ...]:
        """The broker's RabbitMQ version, asked once (an error is not cached: the next use asks again)."""
        return self.broker.version()

    def _put_policy(self, policy: PolicyDef, definition: dict[str, Any]) -> None:
        """PUT the whole policy, as the provider's update does (management API)."""
        kind = "operator-policies" if policy.operator else "policies"
        self.broker.management_api(
            "PUT", f"/api/{kind}/{quote(policy.vhost, safe='')}/{quote(policy.name, safe='')}",
            {"pattern": policy.pattern, "apply-to": apply_to_for_version(policy.apply_to, self._node_version),
             "priority": policy.priority, "definition": definition_for_version(definition, self._node_version)})

    def _queue_info(self, queue: str) -> dict[str, Any]:
        return dict(self.broker.management_api(
            "GET", f"/api/queues/{quote(self.topology.vhost, safe='')}/{quote(queue, safe='')}"))

    def _wait_for_effective(self, queue: str, expected: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
        """The queue's management view once its effective policy shows ``expected`` (or at ``timeout``)."""
        deadline = time.monotonic() + timeout
        info = self._queue_info(queue)
        while time.monotonic() < deadline:
            effective = info.get("effective_policy_definition") or {}
            if all(effective.get(k) == v for k, v in expected.items()) and info.get("messages") is not None:
                break
            time.sleep(0.25)
            info = self._queue_info(queue)
        return info

    def check_consumer_timeouts(self) -> None:
        """Each work queue's policy carries its consumer's timeout, and the node applies it where it can."""
        from shared.envs import load_env

        per_queue = per_queue_consumer_timeout(load_env(self.report.env).messaging.engine_version)
        node_knows = "consumer-timeout" not in unknown_policy_keys(self._node_version)
        self.report.divergences = version_divergences(to_definitions(self.topology), self._node_version)
        for spec in self.catalog:
            if not spec.queue:
                continue
            expected = spec.queue_consumer_timeout_ms if per_queue else None
            policy = self.policy_for(spec.queue, operator=False)
            declared = policy.definition.get("consumer-timeout") if policy else None
            applied: int | None = None
            problem: str | None = None
            if declared != expected:
                problem = (f"the policy that applies to it ({policy.name if policy else 'none'}) declares "
                           f"consumer-timeout {declared}, the catalog says {expected} (max_job_seconds, or Amazon "
                           "MQ's 30 minutes without one)")
            elif node_knows and expected is not None:
                info = self._wait_for_effective(spec.queue, {"consumer-timeout": expected}, timeout=10.0)
                applied = (info.get("effective_policy_definition") or {}).get("consumer-timeout")
                if applied != expected:
                    problem = f"the node applies consumer-timeout {applied}, not the declared {expected}"
            self.report.consumer_timeouts.append(
                ConsumerTimeoutResult(spec.name, spec.queue, expected, declared, applied, problem=problem))

    def check_policy_change(self, messages: int = 3) -> None:
        """Change the first work queue's TTL and length limit in place; its messages must stay."""
        queue = next((spec.queue for spec in self.catalog if spec.queue), None)
        if queue is None:
            return
        user, operator = self.policy_for(queue, operator=False), self.policy_for(queue, operator=True)
        if user is None or operator is None:
            missing = "policy" if user is None else "operator policy"
            self.report.policy_changes.append(PolicyChangeResult(queue, "-", 0, problem=f"no {missing} applies to it"))
            return
        old_ttl, old_limit = user.definition.get("message-ttl"), operator.definition.get("max-length")
        new_ttl = 2 * int(old_ttl) if isinstance(old_ttl, int) else 600_000
        change = f"message-ttl {old_ttl} -> {new_ttl}, max-length {old_limit} -> {messages}"
        self.purge_all()
        declared = dict(next(q.arguments for q in self.topology.queues
                             if q.name == queue and q.vhost == self.topology.vhost))
        ids = [uuid.uuid4().hex for _ in range(messages)]
        channel = self.admin()
        channel.confirm_delivery()
        for message_id in ids:
            channel.basic_publish(DEFAULT_EXCHANGE, queue, b'{"rehearsal": "keep me"}',
                                  pika.BasicProperties(message_id=message_id, delivery_mode=2))
        channel.close()
        problem: str | None = None
        try:
            before = self._wait_for_effective(queue, {"message-ttl": old_ttl, "max-length": old_limit})
            self._put_policy(user, {**user.definition, "message-ttl": new_ttl})
            self._put_policy(operator, {**operator.definition, "max-length": messages})
            after = self._wait_for_effective(queue, {"message-ttl": new_ttl, "max-length": messages})
            problem = self._judge_change(queue, declared, before, after, ids, new_ttl)
        except (OSError, pika.exceptions.AMQPError) as error:  # urllib errors are OSErrors
            detail = error.read().decode(errors="replace") if isinstance(error, urllib.error.HTTPError) else ""
            problem = f"{type(error).__name__} {error} {detail}".strip()
        finally:
            try:  # put the deployed policies back for the checks that follow
                self._put_policy(user, dict(user.definition))
                self._put_policy(operator, dict(operator.definition))
            except OSError as error:
                problem = problem or f"could not restore the policies: {error}"
        self.report.policy_changes.append(PolicyChangeResult(queue, change, messages if problem is None else 0,
                                                             problem=problem))
        self.purge_all()

    def _judge_change(self, queue: str, declared: dict[str, Any], before: dict[str, Any], after: dict[str, Any],
                      ids: list[str], new_ttl: int) -> str | None:
        effective = after.get("effective_policy_definition") or {}
        if effective.get("message-ttl") != new_ttl or effective.get("max-length") != len(ids):
            return (f"its effective policy is {effective}, not message-ttl {new_ttl} and max-length {len(ids)} "
                    f"(policy {after.get('policy')!r}, operator policy {after.get('operator_policy')!r})")
        fixed = sorted(set(declared) & {"x-message-ttl", "x-max-length", "x-overflow", "x-delivery-limit",
                                        "x-dead-letter-exchange", "x-dead-letter-routing-key"})
        if fixed:
            return f"its arguments fix {', '.join(fixed)}, which no policy change can undo (only a redeclare)"
        if after.get("arguments") != declared or before.get("arguments") != declared:
            return f"its arguments changed from {declared} to {after.get('arguments')} (was it redeclared?)"
        if after.get("messages") != len(ids):
            return f"it held {before.get('messages')} messages before the change and {after.get('messages')} after"
        refused = self._publish_until_refused(queue, attempts=3)
        if not refused:
            return f"publishes past the new limit of {len(ids)} were all confirmed"
        redeclare = self.attempt_admin(lambda channel: channel.queue_declare(
            queue, durable=True, arguments={**declared, "x-message-ttl": new_ttl}))
        if redeclare is None or redeclare != 406:
            return f"a redeclare with x-message-ttl was not refused with 406 PRECONDITION_FAILED (got {redeclare})"
        kept = self._drain_ids(queue)
        missing = [message_id for message_id in ids if message_id not in kept]
        if missing:
            return f"{len(missing)} of the {len(ids)} messages it held before the change are gone"
        return None

    def _publish_until_refused(self, queue: str, attempts: int) -> bool:
        """Publish (confirmed) into ``queue`` until the broker nacks one; whether one was nacked."""
        channel = self.admin()
        channel.confirm_delivery()
        try:
            for _ in range(attempts):
                try:
                    channel.basic_publish(DEFAULT_EXCHANGE, queue, b'{"rehearsal": "over the limit"}',
                                          pika.BasicProperties(delivery_mode=2))
                except pika.exceptions.NackError:
                    return True
                time.sleep(0.2)  # a quorum queue notices it is over its limit after the enqueue
            return False
        finally:
            if channel.is_open:
                channel.close()

    def attempt_admin(self, operation: Callable[[BlockingChannel], Any]) -> int | None:
        """Run ``operation`` as the administrator; the reply code if the broker closed the channel."""
        channel = self.admin()
        try:
            operation(channel)
            return None
        except pika.exceptions.ChannelClosedByBroker as error:
            return int(error.reply_code)
        finally:
            if channel.is_open:
                channel.close()

    def _drain_ids(self, queue: str) -> set[str]:
        channel = self.admin()
        found: set[str] = set()
        while True:
            method, properties, _ = channel.basic_get(queue, auto_ack=True)
            if method is None:
                break
            if properties.message_id:
                found.add(properties.message_id)
        channel.close()
        return found

    def check_access(self) -> None:
        queues = self.topology.queue_names()
        exchanges = [*self.topology.exchange_names(), DEFAULT_EXCHANGE]
        events = self.topology.exchange_for("events")
        # Every routing key the catalog names on each exchange it publishes to, whatever type the topology gives the
        # exchange: a service must be refused each key it does not declare (RabbitMQ enforces keys by topic
        # permissions, on topic exchanges only, so a direct exchange lets any writer publish any key).
        catalog_keys = {
            self.topology.exchange_for(exchange): sorted({key for spec in self.catalog for key in (
                *getattr(spec.publishes, exchange), *getattr(spec.consumes, exchange))})
            for exchange in EXCHANGES}
        for spec in self.catalog:
            if not spec.uses_messaging:
                continue
            service = spec.name
            own_queue = spec.queue
            publishes = {self.topology.exchange_for(exchange): list(getattr(spec.publishes, exchange))
                         for exchange, _ in spec.publishes.items()}
            probe_name = f"rehearsal.{service}.probe"
            probes: list[tuple[str, str, str, bool, Callable[[BlockingChannel], Any]]] = []
            for queue in queues:
                probes.append((f"read {queue}", "read", queue, queue == own_queue, _basic_get(queue)))
            for exchange in exchanges:
                allowed = exchange in publishes
                key = publishes[exchange][0] if allowed else self._foreign_key(exchange, own_queue, queues)
                probes.append((f"write {_display(exchange)}", "write", exchange, allowed, _publish(exchange, key)))
            # Every service, publisher or not: non-publishers are refused by their write permission
            # already, publishers by their topic permission (the routing keys they declared).
            for exchange, keys in catalog_keys.items():
                probes.append((f"write an undeclared key to {exchange}", "write an undeclared key to", exchange,
                               False, _publish(exchange, PROBE_KEY)))
                for key in keys:  # the keys of the other services too: e.g. gateway injecting inference.request
                    probes.append((f"write '{key}' to {exchange}", f"write '{key}' to", exchange,
                                   key in publishes.get(exchange, []), _publish(exchange, key)))
            probes.append(("declare a queue", "declare the queue", probe_name, False, _declare_queue(probe_name)))
            probes.append(("declare an exchange", "declare the exchange", probe_name, False,
                           _declare_exchange(probe_name)))
            if own_queue:
                probes.append((f"bind its queue to {events} with '#'", f"bind to {events} with key '#' its queue",
                               own_queue, False, _bind(own_queue, events, "#")))
                probes.append(("delete its queue", "delete its queue", own_queue, False, _delete_queue(own_queue)))
            for row, action, target, expected_allowed, operation in probes:
                self.report.access.append(self._probe(service, row, action, target, expected_allowed, operation))
            self._clean_up(probe_name, own_queue, events)

    def _foreign_key(self, exchange: str, own_queue: str | None, queues: list[str]) -> str:
        # On the default exchange the routing key is a queue name: aim at someone else's queue.
        if exchange == DEFAULT_EXCHANGE:
            return next((q for q in queues if q != own_queue), PROBE_KEY)
        return PROBE_KEY

    def _probe(self, service: str, row: str, action: str, target: str, expected_allowed: bool,
               operation: Callable[[BlockingChannel], Any]) -> AccessResult:
        outcome = self.attempt(service, operation)
        if outcome.unavailable:
            return AccessResult(service, row, action, target, expected_allowed, None, detail=outcome.unavailable)
        return AccessResult(service, row, action, target, expected_allowed, outcome.allowed, outcome.code,
                            outcome.text)

    def _clean_up(self, probe_name: str, own_queue: str | None, events: str) -> None:
        """Undo what probes that should have been refused managed to do, and drop probe messages."""
        channel = self.admin()
        channel.queue_delete(probe_name)
        channel.exchange_delete(probe_name)
        if own_queue and own_queue in self.topology.queue_names():
            try:
                channel.queue_unbind(own_queue, events, "#")
            except pika.exceptions.ChannelClosedByBroker:
                channel = self.admin()  # the queue itself is gone (a failed 'delete' refusal)
        channel.close()
        self.purge_all()


def _basic_get(queue: str) -> Callable[[BlockingChannel], Any]:
    def get(channel: BlockingChannel) -> None:
        method, _, _ = channel.basic_get(queue, auto_ack=False)
        if method is not None:
            channel.basic_nack(method.delivery_tag, requeue=True)

    return get


def _publish(exchange: str, routing_key: str) -> Callable[[BlockingChannel], Any]:
    def publish(channel: BlockingChannel) -> None:
        channel.confirm_delivery()
        channel.basic_publish(exchange, routing_key, b'{"probe": true}', pika.BasicProperties(delivery_mode=2))

    return publish


def _declare_queue(queue: str) -> Callable[[BlockingChannel], Any]:
    return lambda channel: channel.queue_declare(queue, durable=True)


def _declare_exchange(exchange: str) -> Callable[[BlockingChannel], Any]:
    return lambda channel: channel.exchange_declare(exchange, "direct", durable=True)


def _bind(queue: str, exchange: str, routing_key: str) -> Callable[[BlockingChannel], Any]:
    return lambda channel: channel.queue_bind(queue, exchange, routing_key)


def _delete_queue(queue: str) -> Callable[[BlockingChannel], Any]:
    return lambda channel: channel.queue_delete(queue)


def run_checks(broker: LocalBroker, topology: Topology, catalog: Catalog, env: str) -> RehearsalReport:
    """Every route, access probe and dead-letter check of ``topology`` (loaded in ``broker``)."""
    return Rehearsal(broker, topology, catalog, env).run()
