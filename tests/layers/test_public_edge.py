"""The public gateway's edge says what it runs: IPv4 only on both the load balancer and its security group, and the
HTTP desync mode stated rather than left to AWS's default.

A security group that admits IPv6 in front of an IPv4-only load balancer is a dead rule that goes live unreviewed
the day someone makes the load balancer dual-stack; an unset desync mode is whatever AWS's default is then, which
the state does not record (Security Hub ELB.12 wants defensive or strictest).
"""

from __future__ import annotations

from typing import Any

import pytest

from shared.envs import load_env
from tests.layers.compute_helpers import ENVS, fresh
from tests.layers.test_request_timeouts import CERTIFICATE
from tests.synth_helpers import by_name, of_type


@pytest.mark.parametrize("env", ENVS)
def test_the_public_load_balancer_and_its_group_are_ipv4_only_with_a_stated_desync_mode(env: str,
                                                                                       edit_env: Any) -> None:
    certificate = CERTIFICATE.replace("111111111111", str(load_env(env).account_id))
    edit_env(env, lambda data: data["compute"].update(public_gateway=True, certificate_arn=certificate))
    doc = fresh(env)["compute"]
    (alb,) = of_type(doc, "aws:lb/loadBalancer:LoadBalancer")
    assert alb["inputs"]["ipAddressType"] == "ipv4"
    assert alb["inputs"]["desyncMitigationMode"] in ("defensive", "strictest")
    assert alb["inputs"]["dropInvalidHeaderFields"] is True
    group = by_name(doc, "aws:ec2/securityGroup:SecurityGroup", "gateway-alb")["inputs"]
    for rule in [*group["ingress"], *group["egress"]]:
        assert not rule.get("ipv6CidrBlocks"), rule
    assert [(rule["fromPort"], rule["cidrBlocks"]) for rule in group["ingress"]] == [(443, ["0.0.0.0/0"])]
