"""The deploy role's Route 53 grants (shared/deploy_role.py ``route53_statements``): Cloud Map makes them with the
caller's credentials for the provider's calls on a private DNS namespace, a Cloud Map service and an instance (AWS
Cloud Map developer guide, "API permissions reference"), so each passes for the env's own namespace on the first
``up``, later ``up``s, ``refresh`` and ``destroy``; no record of another zone's names can be changed, and an env
without Cloud Map services (every Service Connect env) holds no Route 53 health-check action.

The provider's Cloud Map calls per type are terraform-provider-aws's (internal/service/servicediscovery:
private_dns_namespace.go Create/Get/Update/DeleteNamespace; service.go Create/Get/Update/DeleteService, its
force_destroy deregistering each instance first; instance.go RegisterInstance for create and update,
DeregisterInstance)."""

from __future__ import annotations

import re
from typing import Any

import botocore.session
import pytest

from shared import deploy_role
from shared.envs import load_env
from tests import iam_eval
from tests.deploy_role_helpers import statements_of

CRRS = "route53:ChangeResourceRecordSets"
NAMES_KEY = "route53:ChangeResourceRecordSetsNormalizedRecordNames"
HEALTH_CHECKS = ("route53:CreateHealthCheck", "route53:DeleteHealthCheck", "route53:GetHealthCheck",
                 "route53:UpdateHealthCheck")

#: Cloud Map type -> the Cloud Map APIs the provider calls on it -> the Route 53 actions Cloud Map needs of the caller
#: for each (the guide's table, written out here, not read from the code under test)
CLOUD_MAP_CALLS: dict[str, dict[str, tuple[str, ...]]] = {
    "aws:servicediscovery/privateDnsNamespace:PrivateDnsNamespace": {
        "CreatePrivateDnsNamespace": ("route53:CreateHostedZone", "route53:GetHostedZone",
                                      "route53:ListHostedZonesByName"),
        "UpdatePrivateDnsNamespace": (CRRS,),
        "DeleteNamespace": ("route53:DeleteHostedZone",)},
    "aws:servicediscovery/service:Service": {
        "UpdateService": ("route53:GetHealthCheck", "route53:CreateHealthCheck", "route53:DeleteHealthCheck",
                          "route53:UpdateHealthCheck", CRRS),
        "DeregisterInstance": ("route53:GetHealthCheck", "route53:DeleteHealthCheck", "route53:UpdateHealthCheck",
                               CRRS)},
    "aws:servicediscovery/instance:Instance": {
        "RegisterInstance": ("route53:GetHealthCheck", "route53:CreateHealthCheck", "route53:UpdateHealthCheck",
                             CRRS),
        "DeregisterInstance": ("route53:GetHealthCheck", "route53:DeleteHealthCheck", "route53:UpdateHealthCheck",
                               CRRS)},
}

ZONE = "arn:aws:route53:::hostedzone/Z0123456789ABCDEFGHIJ"
HEALTH_CHECK = "arn:aws:route53:::healthcheck/0f0e0d0c-0b0a-0908-0706-050403020100"


def _resource_arn(action: str) -> str:
    """The ARN IAM authorizes the action on (Service Authorization Reference, Amazon Route 53: ``hostedzone`` for the
    zone and record actions, ``healthcheck`` for the health-check ones, none for CreateHostedZone and the lists)."""
    if action in ("route53:CreateHostedZone", "route53:ListHostedZonesByName", "route53:CreateHealthCheck"):
        return "*"
    return HEALTH_CHECK if "HealthCheck" in action else ZONE


def _resources(documents: dict[str, Any]) -> list[dict[str, Any]]:
    return [resource for document in documents.values() for resource in document["resources"]]


def _normalized(name: str) -> str:
    """A record name as Route 53 puts it in route53:ChangeResourceRecordSetsNormalizedRecordNames (Route 53 developer
    guide, "Using IAM policy conditions for fine-grained access control": lower case, no trailing dot, any character
    but a-z, 0-9, ``-``, ``_`` and the label dots as ``\\`` and its three-digit octal code)."""
    return "".join(char if re.fullmatch(r"[a-z0-9_.-]", char) else f"\\{ord(char):03o}"
                   for char in name.lower().rstrip("."))


#: an ECS task's Cloud Map instance id (the task id) that a service's force_destroy deregisters
TASK_INSTANCE_ID = "0123456789abcdef0123456789ABCDEF"


def _record_names(resource: dict[str, Any], by_urn: dict[str, dict[str, Any]], namespace: str) -> list[str]:
    """The names of the records Cloud Map changes for a call on ``resource``, as the request names them: the
    namespace's apex (its SOA) for the namespace; for a service and its instances ``<service>.<namespace>`` (the A and
    SRV records) and, a service having both, each instance's ``<instance-id>.<service>.<namespace>`` (the SRV
    record's target, whose A record Cloud Map makes too: Cloud Map API reference, DnsRecord), the instance id in the
    case it was registered with."""
    if resource["type"] == "aws:servicediscovery/privateDnsNamespace:PrivateDnsNamespace":
        return [f"{namespace}."]
    service = resource if resource["type"] == "aws:servicediscovery/service:Service" else by_urn[resource["parent"]]
    instance = (resource["inputs"]["instanceId"] if resource["type"] == "aws:servicediscovery/instance:Instance"
                else TASK_INSTANCE_ID)
    return [f"{service['inputs']['name']}.{namespace}.", f"{instance}.{service['inputs']['name']}.{namespace}."]


def test_every_route53_call_cloud_map_makes_for_the_stacks_passes(shipped: Any, everything: Any) -> None:
    """Each Route 53 action Cloud Map needs for each provider call on each Cloud Map resource of the synth is allowed:
    on the zone or health check it names, ChangeResourceRecordSets with the names Cloud Map writes (and with the key
    absent, should Cloud Map's forwarded request carry none)."""
    seen: set[str] = set()
    for label, env, documents, policies in [*shipped, everything]:
        statements = statements_of(policies)
        resources = _resources(documents)
        by_urn = {resource["urn"]: resource for resource in resources}
        for resource in resources:
            calls = CLOUD_MAP_CALLS.get(resource["type"])
            if calls is None:
                continue
            seen.add(resource["type"])
            names = _record_names(resource, by_urn, env.namespace)
            for api, actions in calls.items():
                for action in actions:
                    contexts = [{NAMES_KEY: [_normalized(name) for name in names]}, {}] if action == CRRS else [{}]
                    for context in contexts:
                        assert iam_eval.allows(statements, action, _resource_arn(action), context), (
                            label, resource["name"], api, action, context)
        # the namespace's delete and a change of its records also in another zone id (Cloud Map's zone is random)
        assert iam_eval.allows(statements, CRRS, "arn:aws:route53:::hostedzone/Z9", {NAMES_KEY: [env.namespace]})
    assert seen == set(CLOUD_MAP_CALLS), sorted(set(CLOUD_MAP_CALLS) - seen)


def test_no_record_outside_the_envs_namespaces_can_be_changed(shipped: Any, everything: Any) -> None:
    """A stolen deploy job cannot create, rewrite or delete another zone's records (another team's public DNS,
    another env's namespace), alone or slipped into a batch with one of the env's names. Fails on a grant of
    ChangeResourceRecordSets on every zone."""
    for label, env, _documents, policies in [*shipped, everything]:
        statements = statements_of(policies)
        ns = env.namespace
        others = {"staging.ml.internal" if env.name != "staging" else "dev.ml.internal"}
        for names in (["www.example.com"], ["example.com"], [f"evil-{ns}"], [f"{ns}.example.com"], [*others],
                      [f"inference.{next(iter(others))}"], [f"inference.{ns}", "www.example.com"]):
            assert not iam_eval.allows(statements, CRRS, ZONE, {NAMES_KEY: names}), (label, names)


def test_no_health_check_action_without_cloud_map_services(shipped: Any) -> None:
    """The shipped (Service Connect) envs make no Cloud Map service or instance, so no Route 53 health check of the
    account can be created, changed or deleted with the role (another team's failover checks). Fails on a Cloud Map
    grant that names the health-check actions for a namespace alone."""
    for label, _env, documents, policies in shipped:
        types = {resource["type"] for resource in _resources(documents)}
        assert not types & {"aws:servicediscovery/service:Service", "aws:servicediscovery/instance:Instance"}, label
        statements = statements_of(policies)
        for action in HEALTH_CHECKS:
            assert not iam_eval.grants_some_context(statements, action, _resource_arn(action)), (label, action)
        # and nothing of Route 53 beyond Cloud Map's namespace calls
        for action in ("route53:AssociateVPCWithHostedZone", "route53:ChangeTagsForResource",
                       "route53:DisassociateVPCFromHostedZone", "route53:UpdateHostedZoneComment"):
            assert not iam_eval.grants_some_context(statements, action, ZONE), (label, action)


def test_the_route53_table_covers_each_type_that_calls_route53_and_names_real_actions() -> None:
    """Every type that maps to Route 53 has its actions in ROUTE53_FOR_CLOUD_MAP (and no other type does), and each
    is an operation of botocore's Route 53 model."""
    calling = {type_ for type_, prefixes in deploy_role.TYPE_SERVICES.items() if "route53" in prefixes}
    assert set(deploy_role.ROUTE53_FOR_CLOUD_MAP) == calling
    operations = set(botocore.session.get_session().get_service_model("route53").operation_names)
    for actions in deploy_role.ROUTE53_FOR_CLOUD_MAP.values():
        for action in actions:
            prefix, name = action.split(":", 1)
            assert prefix == "route53" and name in operations, action


def test_a_namespace_without_a_known_name_fails_the_generator() -> None:
    documents = {"discovery": {"resources": [{
        "type": "aws:servicediscovery/privateDnsNamespace:PrivateDnsNamespace", "name": "discovery-private",
        "urn": "u", "inputs": {"vpc": "vpc-1"}}]}}
    with pytest.raises(deploy_role.PlatformError, match="discovery-private has no known name"):
        deploy_role.deploy_statements(load_env("dev"), documents, backend_url="file:///tmp/state")


def test_kept_policies_hold_the_old_namespaces_records(everything: Any) -> None:
    """An App Mesh env's ``discovery.namespace`` change deletes the old namespace's Cloud Map services (force_destroy
    deregisters their instances: records named under the old namespace) with the policies printed with ``--keep``
    (README): the kept record grant joins under its own Sid, the new one stays held to the new names."""
    _label, env, documents, policies = everything
    old = [dict(statement) for statement in statements_of(policies)]
    moved = {layer: {**document, "resources": [
        {**resource, "inputs": {**resource["inputs"], "name": "dev.ml.example"}}
        if resource["type"] == deploy_role.PRIVATE_DNS_NAMESPACE_TYPE else resource
        for resource in document["resources"]]} for layer, document in documents.items()}
    new = deploy_role.deploy_statements(env, moved, backend_url="file:///tmp/state")
    for statements, allowed in ((new, False), (deploy_role.keep_statements(new, [old]), True)):
        assert iam_eval.allows(statements, CRRS, ZONE, {NAMES_KEY: [f"inference.{env.namespace}"]}) is allowed
        assert iam_eval.allows(statements, CRRS, ZONE, {NAMES_KEY: ["inference.dev.ml.example"]})
        assert not iam_eval.allows(statements, CRRS, ZONE, {NAMES_KEY: ["www.example.com"]})


def test_kept_policies_hold_the_health_checks_for_a_move_to_service_connect(shipped: Any, everything: Any) -> None:
    """The ``up`` that moves an App Mesh env to ``service-connect`` deletes its Cloud Map services (force_destroy
    deregisters each instance: Cloud Map's DeregisterInstance needs the health-check actions of the caller) with the
    policies printed with ``--keep`` (README): the new ones alone hold no health-check action, the union does."""
    (_label, _env, _documents, policies), = [case for case in shipped if case[1].name == "dev"]
    _old_label, env, _old_documents, old_policies = everything
    new = statements_of(policies)
    kept = deploy_role.keep_statements(new, [statements_of(old_policies)])
    names = {NAMES_KEY: [f"inference.{env.namespace}", f"{TASK_INSTANCE_ID.lower()}.inference.{env.namespace}"]}
    for action in CLOUD_MAP_CALLS["aws:servicediscovery/service:Service"]["DeregisterInstance"]:
        assert not iam_eval.grants_some_context(new, action, _resource_arn(action)) or action == CRRS, action
        assert iam_eval.allows(kept, action, _resource_arn(action), names if action == CRRS else {}), action
