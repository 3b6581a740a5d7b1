"""The test helpers' cached synth is the shipped env's, whatever scratch env a test has edited."""

from __future__ import annotations

from typing import Any

from tests.synth_helpers import of_type, synth_layers


def test_a_scratch_env_a_test_edits_never_reaches_the_cached_synth(edit_env: Any) -> None:
    """A test that edits its scratch copy (edit_env) and calls synth_layers would otherwise cache its edited env for
    every later test of the run: those then failed or passed by the order the files ran in."""
    edit_env("dev", lambda data: data.setdefault("compute", {}).update(
        public_gateway=True, certificate_arn="arn:aws:acm:eu-west-1:111111111111:certificate/abc"))
    synth_layers.cache_clear()  # what an earlier test cached must not decide this one
    compute = synth_layers("dev", "compute")["compute"]
    assert not of_type(compute, "aws:lb/loadBalancer:LoadBalancer"), "the edited dev, not the shipped one"
