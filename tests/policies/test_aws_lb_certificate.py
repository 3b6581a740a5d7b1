"""``lb-listener-acm-certificate``: HTTPS/TLS listeners and listener certificates through the real pack:
synth resources (known and unknown ARNs), a Pulumi program, and the platform's public gateway."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shared.policy.engine import PolicyEngine, evaluate_documents_result
from shared.synth.engine import synth_program
from tests.layers.compute_helpers import ENVS, fresh
from tests.policies.resources import UNKNOWN_STRING, res
from tests.policies.tokens import ALB_LISTENER, LISTENER, LISTENER_CERTIFICATE
from tests.synth_helpers import gateway_certificate

RULE = "lb-listener-acm-certificate"
ACM = "arn:aws:acm:eu-west-1:111111111111:certificate/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
IAM = "arn:aws:iam::111111111111:server-certificate/web"
LB_ARN = "arn:aws:elasticloadbalancing:eu-west-1:111111111111:loadbalancer/app/web/50dc6c495c0c9188"


def listener(name: str, protocol: str = "HTTPS", arn: str | None = ACM, type_: str = LISTENER,
             **opts: Any) -> dict[str, Any]:
    not_found = {"type": "fixed-response", "fixedResponse": {"contentType": "text/plain", "statusCode": "404"}}
    inputs: dict[str, Any] = {"loadBalancerArn": LB_ARN, "port": 443, "protocol": protocol,
                              "sslPolicy": "ELBSecurityPolicy-TLS13-1-2-2021-06", "defaultActions": [not_found]}
    if arn is not None:
        inputs["certificateArn"] = arn
    return res(type_, name, inputs, **opts)


def messages(findings: list[dict[str, Any]], name: str) -> list[str]:
    return [f["message"] for f in findings if f["rule"] == RULE and f["urn"].endswith(f"::{name}")]


@pytest.mark.parametrize(("resource", "violates"), [
    (listener("web"), False),
    (listener("web", type_=ALB_LISTENER), False),
    (listener("web", protocol="TLS", arn="arn:aws-cn:acm:cn-north-1:111111111111:certificate/abc"), False),
    (listener("web", arn=IAM), True),
    (listener("web", protocol="TLS", arn=IAM), True),
    (listener("web", arn="arn:aws:acm-pca:eu-west-1:111111111111:certificate-authority/abc"), True),
    (listener("web", arn=None), True),
    (listener("web", protocol="HTTP", arn=None), False),
    (res(LISTENER_CERTIFICATE, "web", {"listenerArn": "arn:aws:elasticloadbalancing:x", "certificateArn": ACM}),
     False),
    (res(LISTENER_CERTIFICATE, "web", {"listenerArn": "arn:aws:elasticloadbalancing:x", "certificateArn": IAM}),
     True),
], ids=["acm", "alb-alias", "tls-acm-china", "iam", "tls-iam", "private-ca-arn", "missing", "http", "extra-acm",
        "extra-iam"])
def test_known_certificate_arns(policy_findings, resource, violates):
    found = messages(policy_findings([resource]), "web")
    assert bool(found) is violates
    if found and "iam" in str(resource["inputs"].get("certificateArn")):
        assert "an IAM server certificate" in found[0] and "aws.acm.Certificate" in found[0]


def test_an_unknown_arn_is_judged_by_the_resource_it_is_computed_from(policy_findings):
    certificate = res("aws:acm/certificate:Certificate", "cert", {"domainName": "api.example.com",
                                                                  "validationMethod": "DNS"})
    server_certificate = res("aws:iam/serverCertificate:ServerCertificate", "legacy",
                             {"certificateBody": "-----BEGIN CERTIFICATE-----", "privateKey": "key"})
    good = listener("good", arn=UNKNOWN_STRING, property_dependencies={"certificateArn": [certificate]})
    bad = listener("bad", arn=UNKNOWN_STRING, property_dependencies={"certificateArn": [server_certificate]})
    findings = policy_findings([certificate, server_certificate, good, bad])
    assert not messages(findings, "good")
    (message,) = messages(findings, "bad")
    assert "aws.iam.ServerCertificate" in message


def test_an_unknown_arn_from_elsewhere_is_not_applicable(policy_result):
    result = policy_result([listener("web", arn=UNKNOWN_STRING)])
    assert not [f for f in result.findings if f.rule == RULE]
    assert any(na.rule == RULE and "listener 'web': certificateArn is unknown until deployment" in na.reason
               for na in result.not_applicable), [na.reason for na in result.not_applicable]


PROGRAM = '''\
import pulumi_aws as aws

cert = aws.acm.Certificate("api", domain_name="api.example.com", validation_method="DNS")
validation = aws.acm.CertificateValidation("api", certificate_arn=cert.arn)
legacy = aws.iam.ServerCertificate("legacy", certificate_body="-----BEGIN CERTIFICATE-----",
                                   private_key="-----BEGIN PRIVATE KEY-----")
lb = aws.lb.LoadBalancer("web", load_balancer_type="application", subnets=["subnet-0a", "subnet-0b"])
listener = aws.lb.Listener("https", load_balancer_arn=lb.arn, port=443, protocol="HTTPS",
                           ssl_policy="ELBSecurityPolicy-TLS13-1-2-2021-06",
                           certificate_arn=validation.certificate_arn,
                           default_actions=[aws.lb.ListenerDefaultActionArgs(
                               type="fixed-response", fixed_response=aws.lb.ListenerDefaultActionFixedResponseArgs(
                                   content_type="text/plain", status_code="404"))])
aws.lb.ListenerCertificate("acm-extra", listener_arn=listener.arn, certificate_arn=cert.arn)
aws.lb.ListenerCertificate("iam-extra", listener_arn=listener.arn, certificate_arn=legacy.arn)
'''


def test_a_program_with_certificates_it_creates(tmp_path: Path, policy_engine: PolicyEngine) -> None:
    (tmp_path / "Pulumi.yaml").write_text("name: certs\nruntime: python\n")
    (tmp_path / "__main__.py").write_text(PROGRAM)
    document = synth_program(tmp_path, preview=True)
    arns = {r["name"]: r["inputs"].get("certificateArn") for r in document["resources"]
            if r["type"] in (LISTENER, LISTENER_CERTIFICATE)}
    assert set(arns) == {"https", "acm-extra", "iam-extra"}
    result = evaluate_documents_result([document], engine=policy_engine)
    flagged = {f.resource_name for f in result.findings if f.rule == RULE}
    assert flagged == {"iam-extra"}
    assert not [na for na in result.not_applicable if na.rule == RULE]


def test_the_public_gateways_listener_is_judged_and_passes(edit_env: Any, policy_engine: PolicyEngine) -> None:
    # compute.certificate_arn must be an ACM ARN (shared/envs.py); the gateway's listener serves it.
    certificates = {env: gateway_certificate(env) for env in ENVS}  # each env's own account
    for env, arn in certificates.items():
        edit_env(env, lambda data, arn=arn: data["compute"].update(public_gateway=True, certificate_arn=arn))
    for env in ENVS:
        doc = fresh(env)["compute"]
        assert [r for r in doc["resources"]
                if r["type"] == LISTENER and r["inputs"]["certificateArn"] == certificates[env]], env
        result = evaluate_documents_result([doc], env, engine=policy_engine)
        assert not [f for f in result.findings if f.rule == RULE], env
        assert not [na for na in result.not_applicable if na.rule == RULE], env
