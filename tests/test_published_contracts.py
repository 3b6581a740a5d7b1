"""Published contracts (shared.published): a pull request's preview of compute reads the broker's and messaging's
published contracts, SSM parameters the read-only role may read, instead of their states (which hold the broker admin
password): no secret is published, compute plans the same resources either way, an unpublished contract is refused
naming the parameter and what to run, and the roles' grants are those parameters only."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from shared import dag, deploy_role
from shared.contracts import CONTRACTS, MessagingContract, StackContractError, stack_reference_name
from shared.envs import load_env
from shared.errors import ConfigError
from shared.jsonwalk import string_leaves
from shared.published import (
    PUBLISHED_FIELDS,
    PUBLISHED_VARIABLE,
    STANDARD_VALUE_LIMIT,
    UNPUBLISHED_OPTIONAL,
    PublishedUpstream,
    decode_parts,
    encode_parts,
    parameter_arn,
    parameter_name,
    part_count,
    published_mode,
)
from shared.synth.engine import layer_dir, referenced_outputs, synth_program
from tests import iam_eval
from tests.synth_helpers import of_type, synth_layers

PARAMETER = "aws:ssm/parameter:Parameter"
STACK_REFERENCE = "pulumi:pulumi:StackReference"


def published_parameters(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The parameters of the layer's published contract, in part order."""
    parts = [r for r in of_type(document, PARAMETER) if "-published-contract-part-" in r["name"]]
    return sorted(parts, key=lambda r: int(r["name"].rsplit("-", 1)[1]))


def published_text(document: dict[str, Any]) -> str:
    return decode_parts([p["inputs"]["insecureValue"] for p in published_parameters(document)], "synth")


@pytest.mark.parametrize("env", ["dev", "prod"])
@pytest.mark.parametrize("layer", sorted(PUBLISHED_FIELDS))
def test_the_published_contract_holds_no_secret(env: str, layer: str) -> None:
    """The parameter holds exactly the published fields of the layer's contract, as the layer exports them, none of
    them a secret output, nothing the engine would keep encrypted (a value built from a secret is secret), and no
    secret input of the layer's state appears in it (the admin password, the services' passwords, the secret
    versions' values, the RabbitMQ provider's configuration)."""
    document = synth_layers(env, layer)[layer]
    parameters = published_parameters(document)
    assert len(parameters) == part_count(layer, 4) == 1, "the shipped catalog's 4 services fit one value"
    for index, parameter in enumerate(parameters):
        inputs = parameter["inputs"]
        assert (inputs["name"], inputs["type"], inputs["tier"]) == (parameter_name(env, layer, index), "String",
                                                                    "Standard")
        assert parameter["secret_inputs"] == [] and "value" not in inputs, "written as insecureValue, never a secret"
        assert len(inputs["insecureValue"].encode()) <= STANDARD_VALUE_LIMIT
    text = published_text(document)
    published = json.loads(text)
    assert sorted(published) == sorted(PUBLISHED_FIELDS[layer])
    assert set(published) <= set(CONTRACTS[layer].model_fields)
    assert not set(published) & set(document["secret_outputs"])
    assert published == {name: document["outputs"].get(name) for name in PUBLISHED_FIELDS[layer]}
    secrets = {value for resource in document["resources"] for key in resource["secret_inputs"]
               for value in string_leaves((resource["inputs"] or {}).get(key)) if len(value) >= 8}
    # a secret version's value is a JSON document: its password alone too (the rest, the user and host, is no secret)
    secrets |= {str(json.loads(value)["password"]) for value in list(secrets)
                if value.startswith("{") and "password" in json.loads(value)}
    assert secrets, f"{layer}'s state holds secrets (else this test proves nothing)"
    for secret in secrets:
        assert secret not in text


def test_compute_reads_of_broker_are_the_published_fields() -> None:
    """What compute reads of broker and messaging is what they publish: the PR-mode synth below refuses any other
    field, so this pins the list and the messaging contract read whole, less the subnets its function is in, the
    grants it gave and the users it keeps (only the orchestrator reads them, from the state: shared.zone_retirement,
    shared.image_readiness, shared.rotation_continuity; published, they would break every pull request's preview
    until messaging's next `up` rewrote its parameters)."""
    assert PUBLISHED_FIELDS["broker"] == ("broker_security_group_id", "alarm_topic_arn")
    assert PUBLISHED_FIELDS["messaging"] == tuple(name for name in MessagingContract.model_fields
                                                  if name not in UNPUBLISHED_OPTIONAL["messaging"])
    assert UNPUBLISHED_OPTIONAL == {"messaging": ("subnet_ids", "publish_grants", "credentials_kept_epochs")}
    for layer, names in UNPUBLISHED_OPTIONAL.items():  # a whole read takes them as None: optional, never published
        for name in names:
            assert CONTRACTS[layer].model_fields[name].default is None and name not in PUBLISHED_FIELDS[layer]
    assert set(PUBLISHED_FIELDS) == dag.PUBLISHED_LAYERS == dag.SECRET_STATE_LAYERS


def _publish(env: str) -> dict[str, dict[str, Any]]:
    """The normal synth of ``env``, and its published parameters put in moto as the broker's and messaging's ups
    would."""
    documents = synth_layers(env, *dag.LAYERS)
    region = load_env(env).region
    client = boto3.client("ssm", region_name=region)
    for layer in sorted(PUBLISHED_FIELDS):
        for parameter in published_parameters(documents[layer]):
            inputs = parameter["inputs"]
            client.put_parameter(Name=inputs["name"], Value=inputs["insecureValue"], Type="String", Tier="Standard")
    return documents


def _compute(env: str, documents: dict[str, dict[str, Any]], *, published: bool,
             preview: bool = True) -> dict[str, Any]:
    """compute's synth as a preview (``pulumi preview``'s dry run); with the pull request's published mode its
    StackReferences are served only the stacks the read-only role may read (not broker's, not messaging's)."""
    loaded = load_env(env)
    readable = {stack_reference_name(loaded.pulumi_org, layer, env): referenced_outputs(documents[layer])
                for layer in dag.LAYERS if not published or layer not in dag.SECRET_STATE_LAYERS}
    return synth_program(layer_dir("compute"), stack=env, layer="compute", env=env, account_id=loaded.account_id,
                         region=loaded.region, stack_outputs=readable, organization=loaded.pulumi_org,
                         env_vars={PUBLISHED_VARIABLE: "1" if published else "", "PLATFORM_BROKER_RUNNING": ""},
                         preview=preview)


def _compute_in_pr_mode(env: str, documents: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return _compute(env, documents, published=True)


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_compute_plans_the_same_resources_from_the_published_contracts(env: str, moto_aws: None) -> None:
    documents = _publish(env)
    normal = _compute(env, documents, published=False)
    published = _compute_in_pr_mode(env, documents)
    loaded = load_env(env)
    secret_stacks = {stack_reference_name(loaded.pulumi_org, layer, env) for layer in dag.SECRET_STATE_LAYERS}
    assert set(normal["stack_references"]) - set(published["stack_references"]) == secret_stacks
    assert not set(published["stack_references"]) & secret_stacks, "no StackReference reads a secret state"
    references = {r["urn"] for r in normal["resources"] if r["type"] == STACK_REFERENCE
                  and r["inputs"]["name"] in secret_stacks}

    def planned(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
        # the same resources with the same inputs; a dependency on the broker's or messaging's StackReference (which
        # orders nothing: it is read before the program runs) is the only difference
        return {r["urn"]: {**r, "dependencies": sorted(set(r["dependencies"]) - references),
                           "property_dependencies": {k: sorted(set(v) - references)
                                                     for k, v in r["property_dependencies"].items()
                                                     if set(v) - references}}
                for r in document["resources"] if r["urn"] not in references}

    assert planned(published) == planned(normal)
    assert published["outputs"] == normal["outputs"]
    assert published["secret_outputs"] == normal["secret_outputs"]


def test_an_unpublished_contract_is_refused_naming_the_parameter_and_what_to_run(moto_aws: None) -> None:
    documents = synth_layers("dev", *dag.LAYERS)
    with pytest.raises(StackContractError) as raised:
        _compute_in_pr_mode("dev", documents)
    said = str(raised.value)
    assert "SSM parameter /platform/dev/contracts/broker/part-0 (eu-west-1) does not exist" in said, said
    assert "`nox -s up -- dev --layers broker`" in said, said
    (parameter,) = published_parameters(documents["broker"])
    boto3.client("ssm", region_name="eu-west-1").put_parameter(
        Name="/platform/dev/contracts/broker/part-0", Type="String", Value=parameter["inputs"]["insecureValue"])
    with pytest.raises(StackContractError,
                       match=r"/platform/dev/contracts/messaging/part-0 \(eu-west-1\) does not exist"):
        _compute_in_pr_mode("dev", documents)


def _reader(values: dict[str, str]) -> Any:
    return lambda name, region: values.get(name)


def test_a_field_not_published_or_a_wrong_document_is_refused() -> None:
    def one_part(text: str) -> str:
        import hashlib

        return f"0/1/{hashlib.sha256(text.encode()).hexdigest()[:16]}:{text}"

    good = one_part(json.dumps({"broker_security_group_id": "sg-1", "alarm_topic_arn": "arn:aws:sns:eu-west-1:1:t"}))
    name = "/platform/dev/contracts/broker/part-0"
    upstream = PublishedUpstream("compute", "broker", "dev", "eu-west-1", _reader({name: good}))
    with pytest.raises(StackContractError, match=r"broker\.admin_secret_arn, which the broker layer does not publish"):
        upstream["admin_secret_arn"]
    for bad, message in [(one_part("{"), "is not JSON"), (one_part('{"alarm_topic_arn": "x"}'),
                                                          "not broker's published fields"),
                         (one_part(json.dumps({"broker_security_group_id": 1, "alarm_topic_arn": "a"})),
                          "broker_security_group_id breaks BrokerContract"),
                         ("{}", "part 0 is malformed"), (good.replace("0/1/", "0/1/0"), "do not add up")]:
        with pytest.raises(StackContractError, match=message):
            PublishedUpstream("compute", "broker", "dev", "eu-west-1", _reader({name: bad}))
    with pytest.raises(StackContractError, match="publishes none"):
        PublishedUpstream("compute", "network", "dev", "eu-west-1", _reader({}))


def test_a_contract_of_200_services_with_the_longest_names_is_published_in_standard_parts() -> None:
    """An env may hold 200 services (README, "How many services an env holds"); messaging's contract grows with
    each, so it is split over as many Standard parameters as the catalog's size asks for, each within 4 KB, and read
    back whole; parts of two different publications are never joined."""
    services = [f"s{index:03d}{'x' * 28}" for index in range(200)]
    arn = "arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:platform/{}/messaging/{}-AbCdEf"
    document = {"broker_mode": "CLUSTER_MULTI_AZ", "amqps_endpoint": "amqps://b-" + "0" * 36 + ".mq.us-gov-west-1"
                ".amazonaws.com:5671", "vhost": "ml-" + "e" * 30, "requests_exchange": "requests",
                "events_exchange": "events", "dead_letter_exchange": "dead-letters", "credentials_epoch": "2026-12-03",
                "queues": {s: f"{s}.work" for s in services},
                "service_secret_arns": {s: arn.format("e" * 30, s) for s in services},
                "service_secret_versions": {s: "a1b2c3d4-e5f6-a7b8-c9d0-e1f2a3b4c5d6" for s in services}}
    count = part_count("messaging", len(services))
    parts = encode_parts(document, count)
    assert count == 20 and all(len(part.encode()) <= STANDARD_VALUE_LIMIT for part in parts)
    names = [parameter_name("dev", "messaging", index) for index in range(count)]
    upstream = PublishedUpstream("compute", "messaging", "dev", "eu-west-1", _reader(dict(zip(names, parts,
                                                                                              strict=True))))
    assert upstream.values == document
    other = encode_parts({**document, "vhost": "ml-other"}, count)
    with pytest.raises(StackContractError, match="not one publication"):
        PublishedUpstream("compute", "messaging", "dev", "eu-west-1",
                          _reader(dict(zip(names, [*parts[:5], *other[5:]], strict=True))))
    # a part added by an up still under way (the catalog grew past a multiple of 10): part 0 names the new count
    with pytest.raises(StackContractError, match="part 7 is missing: an up of the layer may be under way"):
        PublishedUpstream("compute", "messaging", "dev", "eu-west-1", _reader(dict(zip(names[:7], parts[:7],
                                                                                       strict=True))))
    with pytest.raises(StackContractError, match="above the SSM Standard tier"):
        encode_parts(document, 2)


def test_the_mode_is_set_explicitly() -> None:
    assert published_mode({PUBLISHED_VARIABLE: "1"}, preview=True) and not published_mode({}, preview=True)
    assert not published_mode({PUBLISHED_VARIABLE: ""}, preview=False)
    with pytest.raises(ConfigError, match=PUBLISHED_VARIABLE):
        published_mode({PUBLISHED_VARIABLE: "true"}, preview=True)


def test_an_up_never_reads_the_published_contracts(moto_aws: None) -> None:
    """The published parameters are what a pull request's preview reads; an ``up`` of compute deploys from the
    upstreams' states (StackReferences) only: with the variable set (a deploy job's env copied from the preview
    step, a shell that exported it), a parameter rewritten by an interrupted up of broker or messaging, or changed
    by hand, would be deployed. Refused, naming the variable."""
    documents = _publish("dev")
    with pytest.raises(ConfigError, match=rf"{PUBLISHED_VARIABLE}.*only a preview"):
        _compute("dev", documents, published=True, preview=False)


def test_compute_is_previewed_in_pull_requests_and_the_secret_layers_are_not() -> None:
    assert dag.pull_request_layers() == ["network", "discovery", "mesh", "compute"]


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_the_read_role_reads_exactly_the_published_parameters_and_the_deploy_role_writes_them(env: str) -> None:
    loaded = load_env(env)
    documents = synth_layers(env, *dag.LAYERS)
    backend = "s3://acme-pulumi-state"
    read = deploy_role.read_statements(loaded, documents, backend_url=backend)
    deploy = [s for p in deploy_role.deploy_policies(env, environ={}, documents=documents) for s in
              p.document["Statement"]]
    def arn(env_name: str, layer: str, part: int = 3) -> str:  # a part of a large catalog's contract
        return parameter_arn("aws", loaded.region, loaded.account_id, env_name, layer).replace("*", str(part))

    others = [arn(env, "compute"), arn(env, "network"), arn("other", "broker"),
              f"arn:aws:ssm:{loaded.region}:{loaded.account_id}:parameter/platform/{env}/contracts/broker/x",
              f"arn:aws:ssm:{loaded.region}:{loaded.account_id}:parameter/another-team/secret"]
    for layer in sorted(PUBLISHED_FIELDS):
        assert iam_eval.allows(read, "ssm:GetParameter", arn(env, layer))
        for action in ("ssm:PutParameter", "ssm:DeleteParameter", "ssm:AddTagsToResource", "ssm:GetParameter",
                       "ssm:ListTagsForResource", "ssm:RemoveTagsFromResource"):
            assert iam_eval.allows(deploy, action, arn(env, layer)), action
        assert not iam_eval.allows(read, "ssm:PutParameter", arn(env, layer))
        assert not iam_eval.allows(read, "ssm:DeleteParameter", arn(env, layer))
    assert iam_eval.allows(deploy, "ssm:DescribeParameters")  # takes only "*" (Service Authorization Reference)
    for other in others:
        assert not iam_eval.allows(read, "ssm:GetParameter", other), other
        assert not iam_eval.allows(deploy, "ssm:PutParameter", other), other
        assert not iam_eval.allows(deploy, "ssm:DeleteParameter", other), other


def test_a_part_holding_double_braces_is_refused() -> None:
    # botocore ssm PutParameterRequest.Value: a value may not include "{{}}" (a nested parameter reference), so such a
    # part would fail the up in AWS; compact JSON only holds "{{" inside a string value.
    with pytest.raises(StackContractError, match=r"holds '\{\{'"):
        encode_parts({"alarm_topic_arn": "{{ssm:/x}}"}, 1)
    assert all("{{" not in part for part in encode_parts({"a": {"b": {"c": 1}}}, 2))
