"""Secrets in the synth as a real engine keeps them: which inputs and outputs are secret, through StackReference
reads between layers too, so the synth JSON (``secret_inputs``, ``secret_outputs``) and what reads it (the
no-plaintext-secrets rule, ``nox -s diff``) see what the engine would store encrypted."""

from __future__ import annotations

from pathlib import Path

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
