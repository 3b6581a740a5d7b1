"""Secrets in the synth as a real engine keeps them: which inputs and outputs are secret, through StackReference
reads between layers too, so the synth JSON (``secret_inputs``, ``secret_outputs``) and what reads it (the
no-plaintext-secrets rule, ``nox -s diff``) see what the engine would store encrypted."""

from __future__ import annotations

from pathlib import Path

import pulumi
import pytest

PROGRAMS = Path(__file__).parent / "fixtures" / "programs"


def test_an_upstream_layers_secret_output_stays_secret_in_the_layers_that_read_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The engine serves a StackReference the stack's secret outputs as secrets (and their names in
    # secretOutputNames), so a downstream layer's input or export built from one is stored encrypted. synth_env hands
    # each layer its upstreams' synthesized outputs: their secretness goes with them.
    from shared.synth import engine

    programs = {"network": PROGRAMS / "secret_producer", "discovery": PROGRAMS / "secret_reader"}
    monkeypatch.setattr(engine, "layer_dir", programs.__getitem__)
    documents = engine.synth_env("dev", ["discovery"])
    assert documents["network"]["secret_outputs"] == ["vpc_cidr"]
    reader = documents["discovery"]
    assert reader["outputs"] == {"cidr_seen": "10.0.0.0/16", "vpc_seen": "vpc-0123456789abcdef0"}
    assert reader["secret_outputs"] == ["cidr_seen"]
    (group,) = [r for r in reader["resources"] if r["type"] == "aws:ec2/securityGroup:SecurityGroup"]
    assert group["secret_inputs"] == ["description"]


def _secrets_as_the_engine_keeps_them() -> None:
    import pulumi_aws as aws
    import pulumi_rabbitmq as rabbitmq
    import pulumi_random as random

    # provider-declared secret outputs (the SDKs' additional_secret_outputs): what is built from them is secret
    generated = random.RandomPassword("generated", length=24, special=False)
    pulumi.export("built_from_generated", generated.result.apply(lambda text: f"amqps://app:{text}@broker"))
    # inputs the provider SDK makes secret even when written in clear
    rabbitmq.User("app", name="app", password="written-in-clear", tags=[])
    version = aws.secretsmanager.SecretVersion("credentials", secret_id="arn:aws:secretsmanager:eu-west-1:1:secret:x",
                                               secret_string='{"password": "in-clear"}')
    pulumi.export("version_string", version.secret_string)
    # a program's own additional_secret_outputs, on an output that is no input
    topic = aws.sns.Topic("topic", opts=pulumi.ResourceOptions(additional_secret_outputs=["arn"]))
    pulumi.export("topic_arn", topic.arn)
    pulumi.export("topic_name", topic.name)
    # Output.secret into an input and an export; a plain export next to them
    pulumi.export("wrapped", pulumi.Output.secret("value"))
    aws.sns.Topic("wrapped", display_name=pulumi.Output.secret("secret-input"))
    pulumi.export("plain", "not-a-secret")


def test_secret_outputs_and_inputs_are_the_ones_the_engine_would_encrypt() -> None:
    from shared.synth.engine import synth_function

    document = synth_function(_secrets_as_the_engine_keeps_them)
    assert document["secret_outputs"] == ["built_from_generated", "topic_arn", "version_string", "wrapped"]
    secret_inputs = {r["name"]: r["secret_inputs"] for r in document["resources"]
                     if r["custom"] and not r["type"].startswith("pulumi:providers:")}
    assert secret_inputs == {"generated": [], "app": ["password"], "credentials": ["secretString"], "topic": [],
                             "wrapped": ["displayName"]}


def test_the_analyzers_see_the_secret_outputs_each_resource_declares_as_the_cli_sends_them() -> None:
    # The CLI passes each resource's additional_secret_outputs to the policy packs (AnalyzerResourceOptions); the
    # offline engine builds them from the synth JSON, which lists them where the options name any.
    from shared.policy.engine import _options
    from shared.synth.engine import synth_function

    document = synth_function(_secrets_as_the_engine_keeps_them)
    declared = {r["name"]: r.get("additional_secret_outputs") for r in document["resources"]}
    assert declared["generated"] == ["bcryptHash", "result"]
    assert declared["app"] == ["password"]
    assert declared["credentials"] == ["secretBinary", "secretString", "secretStringWo"]
    assert declared["topic"] == ["arn"]
    assert declared["wrapped"] is None
    (version,) = [r for r in document["resources"] if r["name"] == "credentials"]
    assert list(_options(version).additionalSecretOutputs) == ["secretBinary", "secretString", "secretStringWo"]
