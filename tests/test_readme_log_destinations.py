"""On call finds every log the stacks make somewhere: each destination an env's layers write to is named in the
README's on-call chapter.

The destinations are read from the synth of every layer of an env with a public gateway (log groups, the broker's
adopted group, Container Insights' own group, the load balancers' access-log buckets and their key prefix), with the
env's name, account, region, broker id and service names put back as the README's placeholders. A layer that starts
writing somewhere new fails here until the chapter says where it is.
"""

from __future__ import annotations

import re
from typing import Any

from shared.synth.engine import synth_env
from tests.readme_helpers import readme_section
from tests.synth_helpers import gateway_certificate, of_type

ON_CALL = "### On call: what each notification asks"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
BROKER_LOG_GROUP_COMPONENT = "shared.components.broker_logs"
SERVICE_COMPONENT = "mlplatform:compute:FargateService"
CLUSTER = "aws:ecs/cluster:Cluster"
LOAD_BALANCER = "aws:lb/loadBalancer:LoadBalancer"
BUCKET = "aws:s3/bucket:Bucket"


def on_call_chapter() -> str:
    return readme_section(ON_CALL)


def _placeholders(text: str, *, env: str, account_id: str, region: str) -> str:
    return text.replace(account_id, "<account_id>").replace(region, "<region>").replace(env, "<env>")


def _type_of(urn: str) -> str:
    """The type of the resource a URN names (``urn:pulumi:stack::project::parent$...$type::name``)."""
    return urn.split("::")[2].split("$")[-1]


def destinations(documents: dict[str, dict[str, Any]], *, env: str, account_id: str, region: str) -> set[str]:
    """What the README must name for these synth documents, as placeholders."""
    found: set[str] = set()
    broker_id = str(documents["broker"]["outputs"].get("broker_id") or "")
    for document in documents.values():
        for group in of_type(document, LOG_GROUP):
            name = str(group["inputs"]["name"])
            if _type_of(str(group.get("parent") or "")) == SERVICE_COMPONENT:
                # a service's (or canary version's) own group: the last part is the service
                name = name.rsplit("/", 1)[0] + "/<svc>"
            found.add(name)
        for resource in document["resources"]:
            inputs = resource.get("inputs") or {}
            if resource["type"].startswith("pulumi-python:dynamic") and "log_group_name" in inputs:
                assert broker_id and broker_id in inputs["log_group_name"], inputs
                found.add(str(inputs["log_group_name"]).replace(broker_id, "<broker-id>"))
        for cluster in of_type(document, CLUSTER):
            insights = {s["name"]: s["value"] for s in cluster["inputs"].get("settings") or []}
            if insights.get("containerInsights", "disabled") != "disabled":
                found.add(f"/aws/ecs/containerinsights/{cluster['inputs']['name']}/performance")
        buckets = {b["inputs"]["bucket"]: b for b in of_type(document, BUCKET)}
        for load_balancer in of_type(document, LOAD_BALANCER):
            logs = load_balancer["inputs"].get("accessLogs") or {}
            if not logs.get("enabled"):
                continue
            bucket = buckets[logs["bucket"]]
            service = bucket["inputs"]["tags"]["service"]
            found.add(str(logs["bucket"]).replace(service, "<svc>"))
            # where ELB writes under the prefix (ELB guide, "Access log files": bucket/prefix/AWSLogs/<account>/
            # elasticloadbalancing/<region>/yyyy/mm/dd/...)
            found.add(f"{logs['prefix']}/AWSLogs/{account_id}/elasticloadbalancing/{region}/")
    return {_placeholders(name, env=env, account_id=account_id, region=region) for name in found}


def test_every_log_destination_of_an_env_is_named_where_on_call_reads(edit_env: Any) -> None:
    from shared.envs import load_env

    edit_env("dev", lambda data: data.setdefault("compute", {}).update(
        public_gateway=True, certificate_arn=gateway_certificate("dev")))
    env = load_env("dev")
    documents = synth_env("dev")
    wanted = destinations(documents, env=env.name, account_id=env.account_id, region=env.region)
    # the kinds the slice covers are all there, so the check below cannot pass on an empty set
    assert {"/aws/amazonmq/broker/<broker-id>/general", "/platform/<env>/compute/<svc>",
            "/platform/<env>/vpc-flow-logs"} <= wanted, wanted
    assert any("alb-logs" in name for name in wanted), wanted
    chapter = on_call_chapter()
    missing = sorted(name for name in wanted if f"`{name}" not in chapter)
    assert not missing, f"README's on-call chapter does not say where these are: {missing}"


def test_the_broker_outputs_on_call_is_sent_to_exist() -> None:
    """The chapter sends on-call to the broker stack's outputs for the broker's id and log group: they are exported."""
    outputs = synth_env("dev", ["broker"])["broker"]["outputs"]
    chapter = on_call_chapter()
    for output in re.findall(r"output `(broker_[a-z_]+)`", chapter):
        assert output in outputs, f"the on-call chapter names the broker output {output!r}, which is not exported"
    assert re.findall(r"output `(broker_[a-z_]+)`", chapter), "the chapter names no broker output"
