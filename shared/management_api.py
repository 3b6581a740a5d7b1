"""The URL the RabbitMQ provider calls for an env's management API: one pure function, used by the messaging
layer's provider (:func:`shared.components.broker.provider_endpoint`) and by the orchestrator's reachability
probe (:mod:`shared.orchestrate.reach`), so the probe tests what the provider then calls."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from shared.envs import EnvConfig, env_path, management_endpoint_problem
from shared.errors import ConfigError


def management_url(env: EnvConfig, broker_endpoint: str | None) -> str | None:
    """The URL the RabbitMQ provider calls (and a reachability probe should try), TLS verification on.

    The provider (pulumi_rabbitmq, from terraform-provider-rabbitmq) has ``endpoint``, ``cacert_file``,
    ``proxy`` and ``insecure`` but no way to set the TLS server name: it checks the certificate against
    the endpoint's own hostname. So a tunnel works by name, not by overriding verification:

    - ``tls_server_name`` set: ``https://<tls_server_name>:<port of endpoint>``; the operator maps that
      name to 127.0.0.1 (``/etc/hosts``) while the tunnel listens on that port, and the broker's
      certificate matches because the name is the broker's own;
    - ``tls_server_name`` set without ``endpoint`` (with ``proxy``, or a tunnel on the broker's own port): the
      broker's management endpoint with only its host name replaced, so its port (and path) are kept: 443 for
      Amazon MQ (its console URL names none), an ``external`` broker's own (RabbitMQ's default for the
      management API over TLS is 15671);
    - ``proxy`` set (no endpoint): the broker's own endpoint, reached through the proxy (e.g. SOCKS over
      an SSM session), which needs no name mapping at all;
    - ``endpoint`` alone on a loopback address is refused (ConfigError): verification would fail on the name
      (the env loader's rule, :func:`shared.envs.management_endpoint_problem`, refuses it before any layer runs).

    ``broker_endpoint`` is the broker layer's ``management_endpoint`` (None when not known yet: the
    result is then None unless the env file decides it alone).
    """
    management = env.messaging.management
    if management.tls_server_name and management.endpoint:
        port = urlsplit(management.endpoint).port
        return f"https://{management.tls_server_name}" + (f":{port}" if port else "")
    if management.tls_server_name:
        external = env.messaging.external
        own = broker_endpoint or (external.management_endpoint if env.messaging.broker == "external" and external
                                  else None)  # an external broker's endpoint is the env file's (external_endpoints)
        return _renamed(own, management.tls_server_name) if own else None
    if management.endpoint:
        problem = management_endpoint_problem(management)  # the env loader's rule (refused there first)
        if problem:
            raise ConfigError(str(env_path(env.name)), "messaging.management.tls_server_name", problem)
        return management.endpoint
    return broker_endpoint


def _renamed(url: str, host: str) -> str:
    """``url`` with its host name replaced by ``host``; scheme, port and path kept."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=host + (f":{parts.port}" if parts.port else "")))
