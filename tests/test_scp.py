"""An AWS Organization's service control policies (and resource control policies) deny what no IAM policy of the
account can allow: an `up` they stop must say so, and what to ask the organization's administrator for."""

from __future__ import annotations

from typing import Any

import pytest

from shared.orchestrate.cli import DRY_RUN_JUDGES_THE_CALLER
from tests.test_orchestrate import management_api

__all__ = ["management_api"]  # its autouse fixture: the stacks' management endpoint answers on loopback

# What the AWS provider prints for a create an SCP denies (aws-sdk-go-v2's error form; IAM user guide, "Troubleshoot
# access denied error messages": "with an explicit deny in a service control policy", "because no service control
# policy allows the action").
SCP_IGW = (
    "Updating (organization/network/dev)\n\nDiagnostics:\n  aws:ec2:InternetGateway (network-igw):\n    error: "
    "sdk-v2/provider2.go:572: sdk.helper_schema: creating EC2 Internet Gateway: operation error EC2: "
    "CreateInternetGateway, https response error StatusCode: 403, RequestID: 3f1c2a9e-0b7d-4e55-9a61-2c8d5e4f7a10, "
    "api error UnauthorizedOperation: You are not authorized to perform this operation. User: "
    "arn:aws:sts::123456789012:assumed-role/ml-platform-deployer/GitHubActions is not authorized to perform: "
    "ec2:CreateInternetGateway on resource: arn:aws:ec2:eu-west-1:123456789012:internet-gateway/* with an explicit "
    "deny in a service control policy. Encoded authorization failure message: 4cU2x9Lq0vTnWm: provider=aws@7.12.0\n\n"
    "  pulumi:pulumi:Stack (network-dev):\n    error: update failed\n")
SCP_ALLOW_LIST = (
    "error: creating Secrets Manager Secret (platform/dev/messaging/api): operation error Secrets Manager: "
    "CreateSecret, https response error StatusCode: 400, RequestID: 9b1f, api error AccessDeniedException: User: "
    "arn:aws:sts::123456789012:assumed-role/ml-platform-deployer/run is not authorized to perform: "
    "secretsmanager:CreateSecret on resource: platform/dev/messaging/api because no service control policy allows "
    "the secretsmanager:CreateSecret action\n")
RCP_DENY = (
    "error: reading S3 Bucket (ml-platform-dev-artifacts): operation error S3: GetBucketPolicy, https response error "
    "StatusCode: 403, api error AccessDenied: User: arn:aws:sts::123456789012:assumed-role/ml-platform-deployer/run "
    "is not authorized to perform: s3:GetBucketPolicy on resource: \"arn:aws:s3:::ml-platform-dev-artifacts\" with an "
    "explicit deny in a resource control policy\n")


def _command_error(stdout: str, stderr: str) -> BaseException:
    from pulumi.automation import errors as auto_errors
    from pulumi.automation._cmd import CommandResult

    return auto_errors.create_command_error(CommandResult(stdout=stdout, stderr=stderr, code=255))


@pytest.mark.parametrize(("stdout", "stderr", "action", "kind"), [
    (SCP_IGW, "", "ec2:CreateInternetGateway", "service control policy"),
    ("", SCP_ALLOW_LIST, "secretsmanager:CreateSecret", "service control policy"),
    ("", RCP_DENY, "s3:GetBucketPolicy", "resource control policy"),
])
def test_a_layer_an_organization_policy_denied_names_the_action_and_whom_to_ask(
        stdout: str, stderr: str, action: str, kind: str) -> None:
    """The provider's line is longer than the summary keeps: the action and the policy type were cut off its end, and
    the summary read like a deploy role to update (`nox -s roles`), which no IAM policy of the account can fix."""
    from shared.orchestrate.report import DETAIL_LIMIT, failure_detail

    detail = failure_detail(_command_error(stdout, stderr), environ={}, midway=True)
    assert len(detail) <= DETAIL_LIMIT and not detail.endswith("\u2026"), detail
    assert action in detail and kind in detail, detail
    assert "AWS Organizations administrator" in detail, detail
    assert "README" in detail, detail


def test_other_access_denials_are_not_taken_for_an_organization_policy() -> None:
    from shared.orchestrate.report import failure_detail

    stderr = ("error: creating IAM Role (x): operation error IAM: CreateRole, api error AccessDenied: User: "
              "arn:aws:sts::123456789012:assumed-role/ml-platform-deployer/run is not authorized to perform: "
              "iam:CreateRole on resource: arn:aws:iam::123456789012:role/x because no identity-based policy allows "
              "the iam:CreateRole action\n")
    detail = failure_detail(_command_error("", stderr), environ={})
    assert "Organizations" not in detail and "iam:CreateRole" in detail


# -- the preflight asks EC2 (DryRun) whether the network layer's first creates would be allowed ------------------------

SCP_DENIED = ("You are not authorized to perform this operation. User: arn:aws:sts::111111111111:assumed-role/"
              "ml-platform-deployer/run is not authorized to perform: {action} on resource: arn:aws:ec2:eu-west-1:"
              "111111111111:{kind}/* with an explicit deny in a service control policy. Encoded authorization failure "
              "message: 4cU2x9Lq0vTnWm")


class DenyingEc2:
    """moto's EC2 (via the preflight tests' wrapper), except that the DryRun of ``denied`` (an EC2 operation's Python
    name) answers UnauthorizedOperation as EC2 does under an SCP that denies it; every DryRun call is recorded."""

    def __init__(self, inner: object, denied: str = "", message: str = SCP_DENIED) -> None:
        self.inner = inner
        self.denied = denied
        self.message = message
        self.dry_runs: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> object:
        attribute = getattr(self.inner, name)
        if not name.startswith(("create_", "allocate_")):
            return attribute

        def call(**kwargs: Any) -> Any:
            if kwargs.get("DryRun"):
                self.dry_runs.append((name, kwargs))
                if name == self.denied:
                    from botocore.exceptions import ClientError

                    operation = "".join(part.title() for part in name.split("_"))
                    raise ClientError({"Error": {"Code": "UnauthorizedOperation", "Message": self.message.format(
                        action=f"ec2:{operation}", kind="resource")}}, operation)
            return attribute(**kwargs)  # moto answers DryRunOperation (tests.aws_helpers.dry_run_answer: CreateVpc)
        return call


def _clients(ec2: dict[str, DenyingEc2], **kwargs: Any) -> Any:
    from tests.test_orchestrate_account import Clients, EndpointServicesEc2, roomy

    class WithEc2(Clients):
        def __call__(self, env: Any, service: str) -> Any:
            if service == "ec2":
                if "ec2" not in ec2:
                    ec2["ec2"] = DenyingEc2(EndpointServicesEc2(self.moto(env, service)), **kwargs)
                return ec2["ec2"]
            return super().__call__(env, service)

    return WithEc2(roomy())


@pytest.mark.parametrize(("denied", "action", "made_before"), [
    ("create_vpc", "ec2:CreateVpc", "nothing"),
    ("create_internet_gateway", "ec2:CreateInternetGateway", "the VPC"),
    ("allocate_address", "ec2:AllocateAddress", "the VPC"),
])
def test_an_scp_denying_a_network_create_stops_the_first_up_before_any_layer(
        moto_aws: None, capsys: pytest.CaptureFixture[str], denied: str, action: str, made_before: str) -> None:
    """An organization that denies internet gateways (AWS Organizations user guide, "Example SCPs for Amazon Virtual
    Private Cloud": "Prevent any VPC that doesn't already have internet access from getting it") stopped the network
    layer's first `up` at its internet gateway, after the VPC and its subnets were created."""
    from tests.test_orchestrate_account import checker, up

    ec2: dict[str, DenyingEc2] = {}
    code, out, runner = up(["up", "dev", "--yes"], checker(_clients(ec2, denied=denied)))
    assert code == 2 and runner.started() == [], out
    error = capsys.readouterr().err
    assert f"network: {action}" in error and "service control policy" in error, error
    assert "AWS Organizations administrator" in error and f"after creating {made_before}" in error, error
    assert "Nothing was run." in error

    code, out, runner = up(["preview", "dev"], checker(_clients({}, denied=denied)))
    assert code == 0 and runner.started(), out
    assert "up would be refused" not in out and f"note: {DRY_RUN_JUDGES_THE_CALLER}" in out and action in out, out


def test_a_preview_with_the_read_only_role_does_not_call_up_refused(moto_aws: None) -> None:
    """A pull request's preview runs with the env's read-only role (README, Workflows), which ReadOnlyAccess gives no
    EC2 create: the DryRun answers UnauthorizedOperation for it (EC2 API reference, "DryRun": "the required
    permissions"), and the preview said `up would be refused` and to run `up` with the deploy role, of an `up` the
    deploy role runs unrefused."""
    from tests.test_orchestrate_account import checker, up

    plain = ("You are not authorized to perform this operation. User: arn:aws:sts::111111111111:assumed-role/reader/run"
             " is not authorized to perform: {action} on resource: arn:aws:ec2:eu-west-1:111111111111:{kind}/* because "
             "no identity-based policy allows the {action} action.")
    code, out, runner = up(["preview", "dev"], checker(_clients({}, denied="create_vpc", message=plain)))
    assert code == 0 and runner.started(), out
    assert "up would be refused" not in out, out
    assert f"note: {DRY_RUN_JUDGES_THE_CALLER}" in out and "ec2:CreateVpc" in out, out


def test_the_probes_ask_with_the_tags_the_creates_send_and_only_before_the_network_exists(moto_aws: None) -> None:
    """An SCP that requires tags on create (aws:RequestTag) judges the DryRun by the tags it carries: the probe sends
    those the AWS provider sends (the layer's default tags and the resource's Name), or it would be refused falsely."""
    from shared.envs import load_env
    from tests.aws_helpers import MotoAccounts
    from tests.test_orchestrate_account import checker, up

    dev = load_env("dev")
    ec2: dict[str, DenyingEc2] = {}
    code, out, _ = up(["up", "dev", "--yes"], checker(_clients(ec2)))
    assert code == 0, out
    calls: dict[str, dict[str, Any]] = dict(ec2["ec2"].dry_runs)
    assert sorted(calls) == ["allocate_address", "create_internet_gateway", "create_vpc"]
    for name, kind, tag_name in (("create_vpc", "vpc", "dev-vpc"), ("create_internet_gateway", "internet-gateway",
                                                                      "dev-igw"), ("allocate_address", "elastic-ip",
                                                                                   f"dev-nat-{dev.availability_zones[0]}")):
        (spec,) = calls[name]["TagSpecifications"]
        assert spec["ResourceType"] == kind
        assert {tag["Key"]: tag["Value"] for tag in spec["Tags"]} == {**dev.common_tags("network"), "Name": tag_name}
    assert calls["create_vpc"]["CidrBlock"] == str(dev.network.cidr)
    assert "account dev: network's creates (EC2 DryRun): ec2:CreateVpc, ec2:CreateInternetGateway, " \
           "ec2:AllocateAddress allowed" in out

    # the env's VPC exists (the network layer's tags): nothing is probed again
    client = MotoAccounts.client(dev.account_id, dev.region, "ec2")
    client.create_vpc(CidrBlock=str(dev.network.cidr), TagSpecifications=[{"ResourceType": "vpc", "Tags": [
        {"Key": key, "Value": value} for key, value in dev.common_tags("network").items()]}])
    ec2.clear()
    code, out, _ = up(["up", "dev", "--yes"], checker(_clients(ec2)))
    assert code == 0, out
    assert ec2["ec2"].dry_runs == []


def test_credentials_of_their_own_too_narrow_are_named_as_such(moto_aws: None,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """Denied by no organization policy (a role without the deploy role's policies): the deploy role's policies are
    what is missing, not the organization's leave."""
    from tests.test_orchestrate_account import checker, up

    plain = ("You are not authorized to perform this operation. User: arn:aws:sts::111111111111:assumed-role/reader/run"
             " is not authorized to perform: {action} on resource: arn:aws:ec2:eu-west-1:111111111111:{kind}/* because "
             "no identity-based policy allows the {action} action.")
    code, out, runner = up(["up", "dev", "--yes"], checker(_clients({}, denied="create_vpc", message=plain)))
    assert code == 2 and runner.started() == [], out
    error = capsys.readouterr().err
    assert "network: ec2:CreateVpc" in error and "nox -s roles" in error and "Organizations" not in error, error


def test_an_scp_denying_service_linked_roles_sends_the_user_to_the_organization(moto_aws: None) -> None:
    """A common guardrail denies iam:CreateServiceLinkedRole to all but a pipeline role: "someone allowed to" is then
    nobody in the account's own IAM, and the preflight's words sent the user to the account's administrator."""
    from shared.envs import load_env
    from shared.orchestrate.account import AccountError, linked_roles
    from tests.aws_helpers import MotoAccounts
    from tests.test_orchestrate_account import Clients, DenyingIam, checker, roomy

    dev = load_env("dev")
    message = ("User: arn:aws:sts::111111111111:assumed-role/ml-platform-deployer/run is not authorized to perform: "
               "iam:CreateServiceLinkedRole on resource: arn:aws:iam::111111111111:role/aws-service-role/"
               "mq.amazonaws.com/AWSServiceRoleForAmazonMQ with an explicit deny in a service control policy")
    denying = DenyingIam(MotoAccounts.client(dev.account_id, dev.region, "iam"), "AccessDenied", message)
    with pytest.raises(AccountError) as raised:
        checker(Clients(roomy(), iam=denying)).create(dev, linked_roles(dev, ["broker"]))
    said = str(raised.value)
    assert "service control policy" in said and "AWS Organizations administrator" in said, said
    assert "iam:AWSServiceName mq.amazonaws.com" in said, said
    assert "`aws iam create-service-linked-role --aws-service-name mq.amazonaws.com`" in said
    assert "No layer has run." in said
