"""preview --expect-no-changes (shared/orchestrate/settled.py): what a layer that does not settle is told.

The runner's path (events in, a failed layer out, the other layers still previewed) is specified in
tests/test_orchestrate_automation.py with the fake CLI; here, which steps count as changes and how many are named.
"""

from __future__ import annotations

from pulumi import automation as auto

from shared.orchestrate.model import LayerResult, Status
from shared.orchestrate.replacements import CollectedStep
from shared.orchestrate.settled import ChangeRecorder, converging, unsettled_annotations, unsettled_detail

ROLE = "aws:iam/role:Role"


def pre_event(op: str, name: str, diffs: list[str] | None = None, keys: list[str] | None = None) -> auto.EngineEvent:
    metadata: dict[str, object] = {"op": op, "urn": f"urn:pulumi:dev::compute::{ROLE}::{name}", "type": ROLE,
                                   "provider": ""}
    if diffs is not None:
        metadata["diffs"] = diffs
    if keys is not None:
        metadata["keys"] = keys
    return auto.EngineEvent.from_json({"sequence": 1, "timestamp": 0,
                                       "resourcePreEvent": {"metadata": metadata, "planning": True}})


def test_only_steps_an_up_would_take_are_changes() -> None:
    recorder = ChangeRecorder()
    for op in ("same", "read", "refresh"):
        recorder.on_event(pre_event(op, f"kept-{op}"))
    recorder.on_event(pre_event("update", "tagged", diffs=["tags", "assumeRolePolicy"]))
    for op in ("create-replacement", "replace", "delete-replaced"):
        recorder.on_event(pre_event(op, "renamed", keys=["name"]))
    recorder.on_event(pre_event("create", "new"))
    steps = {step.urn.rsplit("::", 1)[-1]: step for step in recorder.collected()}
    assert sorted(steps) == ["new", "renamed", "tagged"]
    assert steps["tagged"].keys == ("assumeRolePolicy", "tags")
    assert steps["renamed"].ops == ("create-replacement", "replace", "delete-replaced")
    assert steps["renamed"].keys == ("name",)  # no diffs given: the replace keys
    assert steps["new"].keys == ()


def test_a_layer_with_many_changes_names_eight_and_counts_the_rest() -> None:
    recorder = ChangeRecorder()
    for number in range(11):
        recorder.on_event(pre_event("update", f"role-{number:02}", diffs=["tags"]))
    detail = unsettled_detail("compute", "dev", recorder.collected())
    assert "proposes 11 change(s)" in detail
    assert "update aws:iam/role:Role role-07 (tags)" in detail and "role-08" not in detail
    assert "; and 3 more." in detail
    assert "pulumi preview --diff --stack <org>/compute/dev" in detail


# -- changes in flight: noted, not failed ---------------------------------------------------------------------------

INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
GROUP = "aws:ec2/securityGroup:SecurityGroup"
BROKER = "aws:mq/broker:Broker"


def step(type_: str, name: str, ops: tuple[str, ...] = ("update",), keys: tuple[str, ...] = ()) -> CollectedStep:
    return CollectedStep(f"urn:pulumi:dev::layer::{type_}::{name}", type_, ops, keys)


def test_a_port_the_tasks_were_moved_off_is_dropped_by_the_next_up_not_a_failure() -> None:
    """network admits a moved port for one more up (shared.port_retirement): right after that up its outputs name
    the port retiring, and the preview proposes the drop; its range rules' changes are in flight, nothing else."""
    _provider, network = converging(["network"], {"retiring_service_ports": {"inference": 8082}}, {})["network"]
    assert "inference 8082" in network.why
    assert network.covers(step(INGRESS, "network-services-in-8082", ("delete",)))
    assert network.covers(step(INGRESS, "network-services-in-8081", ("replace",), ("toPort",)))
    assert not network.covers(step(GROUP, "network-services", keys=("ingress",)))
    assert not network.covers(step(INGRESS, "network-endpoints-in-https", ("delete",)))
    # nothing retiring (or network not in the run): nothing in flight but a provider's own configuration
    assert [len(items) for items in converging(["network"], {"retiring_service_ports": {}}, {}).values()] == [1]
    assert list(converging(["compute"], {"retiring_service_ports": {"inference": 8082}}, {})) == ["compute"]


def test_what_amazon_mq_has_pending_is_an_update_of_those_inputs_alone() -> None:
    """Until a reboot or the maintenance window the provider reads back what the broker runs, so the preview right
    after the up that asked proposes the same update; an update of anything else, or a replacement, still fails."""
    _provider, broker = converging(["broker"], None, {"configuration": "c-1 revision 3",
                                                       "instance_type": "mq.m7g.large"})["broker"]
    assert "configuration c-1 revision 3" in broker.why and "hostInstanceType mq.m7g.large" in broker.why
    assert broker.covers(step(BROKER, "broker", keys=("configuration",)))
    assert broker.covers(step(BROKER, "broker", keys=("configuration", "hostInstanceType")))
    assert not broker.covers(step(BROKER, "broker", keys=("engineVersion",)))  # not pending: a perpetual diff
    assert not broker.covers(step(BROKER, "broker", keys=("configuration", "tags")))
    assert not broker.covers(step(BROKER, "broker"))  # no properties named: nothing to judge by
    assert not broker.covers(step(BROKER, "broker", ("create-replacement", "replace", "delete-replaced"),
                                  ("hostInstanceType",)))
    assert len(converging(["broker"], None, {})["broker"]) == 1


def test_a_provider_s_own_configuration_changes_no_resource() -> None:
    """messaging's RabbitMQ provider takes the broker admin's current password: a rotation between messaging's up and
    the check is an update of the provider resource, which changes nothing on the broker or in AWS."""
    (provider,) = converging(["messaging"], None, {})["messaging"]
    assert provider.covers(step("pulumi:providers:rabbitmq", "messaging-rabbitmq", keys=("password",)))
    assert provider.covers(step("pulumi:providers:aws", "default_7_51_1", keys=("region",)))
    assert not provider.covers(step("pulumi:providers:rabbitmq", "messaging-rabbitmq", ("replace",), ("endpoint",)))
    assert not provider.covers(step("rabbitmq:index/user:User", "gateway", keys=("password",)))
    # every op of the step must be one the entry allows: an update with a delete beside it is no update alone
    assert not provider.covers(step("pulumi:providers:aws", "default_7_51_1", ("update", "delete"), ("region",)))


def test_the_replacement_gate_names_every_stateful_resource_a_preview_destroys() -> None:
    """Each stateful replacement or delete is refused on its own: allowing the broker's (--allow-replace) must not
    let a queue's delete in the same preview through unnamed."""
    from shared.orchestrate.replacements import ReplacementGuard, judge

    broker = "urn:pulumi:dev::broker::aws:mq/broker:Broker::broker"
    queue = "urn:pulumi:dev::messaging::rabbitmq:index/queue:Queue::queue-training.work"
    guard = ReplacementGuard()
    for urn, type_, ops in ((broker, BROKER, ("create-replacement", "replace", "delete-replaced")),
                            (queue, "rabbitmq:index/queue:Queue", ("delete",)),
                            ("urn:pulumi:dev::compute::aws:iam/role:Role::r", ROLE, ("replace",))):
        for op in ops:
            guard.on_event(auto.EngineEvent.from_json({"sequence": 1, "timestamp": 0, "resourcePreEvent": {
                "metadata": {"op": op, "urn": urn, "type": type_, "provider": ""}, "planning": True}}))
    assert [item.urn for item in guard.destructions()] == [broker, queue]  # the role holds no data
    verdict = judge(guard.destructions(), [broker], "messaging")
    assert [item.urn for item in verdict.refused] == [queue]


def test_in_github_actions_each_layer_that_does_not_settle_is_an_error_annotation_of_the_run() -> None:
    """deploy-promoted's settle step may not fail its job (the promotion's tried gate reads it): the run's page says
    it, one ::error per layer, its message escaped as the runner reads workflow commands (%, CR, LF)."""
    results = [LayerResult("network", Status.SUCCEEDED),
               LayerResult("compute", Status.FAILED, detail="does not settle: 100% of it\nagain", unsettled=True),
               LayerResult("broker", Status.FAILED, detail="pulumi exited with code 255")]
    assert unsettled_annotations(results, "prod") == [
        "::error title=prod compute does not settle::does not settle: 100%25 of it%0Aagain"]
