"""An AWS Organization's service control policies (and resource control policies) deny what no IAM policy of the
account can allow: an `up` they stop must say so, and what to ask the organization's administrator for."""

from __future__ import annotations

import pytest

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
