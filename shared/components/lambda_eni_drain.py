"""A VPC Lambda function's role outlives the network interfaces Lambda made for it.

Lambda deletes a function's network interfaces itself, asynchronously (minutes after the function, up to about 20;
the provider allows 45 for the Lambda service team's P99 of about 35: terraform-provider-aws
``internal/service/ec2/vpc_network_interface.go``, ``deleteLingeringLambdaENI``), and it does so with the function's
execution role: "Lambda uses the IAM role associated with the VPC function to delete ENIs. If the IAM role is deleted
before Lambda can delete the ENI, ENI deletion by Lambda will not be possible" (awslabs/aws-support-tools#174; the
same failure in terraform-aws-modules/terraform-aws-lambda#310, "VPC permissions are deleted too early"). Pulumi
deletes the role and its policy seconds after the function, so Lambda's deletions would fail: the interfaces stay,
detached at best (aws/aws-cdk#34400 saw them left ``available``), holding subnet addresses where the function was
only turned off (its security group stays), until the network layer's destroy waits for them and deletes them
itself (the provider's deleteLingeringLambdaENI, which can only wait where Lambda left one attached).

:class:`LambdaEniDrain` is a Pulumi dynamic resource between the two: the function depends on it and it depends on
the role's policy, so Pulumi deletes it after the function and before the role. Its creation does nothing; its
deletion waits, polling ``DescribeNetworkInterfaces`` on the function's own security group, until Lambda has deleted
the interfaces it made there, and fails after :data:`DRAIN_TIMEOUT_SECONDS` naming them. It deletes nothing itself.
It needs the package importable where the provider runs, as the other dynamic resources do.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pulumi
import pulumi.dynamic

from shared.components.delete_wait import DeleteWaitProvider

#: the provider's own wait for a Lambda interface (its minimum, above the Lambda service team's P99), and the poll
DRAIN_TIMEOUT_SECONDS = 45 * 60
POLL_SECONDS = 30
#: how Lambda describes the interfaces it makes (the provider's test for one, deleteLingeringLambdaENI)
LAMBDA_DESCRIPTION = "AWS Lambda VPC ENI"


def _client(service: str, region: str) -> Any:
    import boto3  # imported where the provider runs, not when the program only declares the resource

    return boto3.client(service, region_name=region)


def lambda_interfaces(client: Any, security_group_id: str) -> list[dict[str, Any]]:
    """The network interfaces Lambda made in ``security_group_id`` (its type ``lambda``, or its description)."""
    paginator = client.get_paginator("describe_network_interfaces")
    pages = paginator.paginate(Filters=[{"Name": "group-id", "Values": [security_group_id]}])
    return [interface for page in pages for interface in page.get("NetworkInterfaces", [])
            if interface.get("InterfaceType") == "lambda"
            or str(interface.get("Description", "")).startswith(LAMBDA_DESCRIPTION)]


def wait_until_released(props: dict[str, Any], *, timeout: float = DRAIN_TIMEOUT_SECONDS,
                        interval: float = POLL_SECONDS, sleep: Callable[[float], None] = time.sleep,
                        clock: Callable[[], float] = time.monotonic) -> None:
    """Return once the function's security group holds no interface of Lambda's; RuntimeError after ``timeout``."""
    group, region, function = str(props["security_group_id"]), str(props["region"]), str(props["function_name"])
    client = _client("ec2", region)
    deadline = clock() + timeout
    while True:
        left = lambda_interfaces(client, group)
        if not left:
            return
        if clock() >= deadline:
            listed = ", ".join(f"{interface['NetworkInterfaceId']} ({interface.get('Status', '?')})"
                               for interface in left)
            raise RuntimeError(
                f"Lambda has not deleted the network interfaces it made for the function {function} in its security "
                f"group {group} after {int(timeout)} s: {listed}. The function's role is kept until they are gone "
                "(Lambda deletes them with it). Run the same command again to wait longer; if they stay, see `aws "
                f"ec2 describe-network-interfaces --region {region} --filters Name=group-id,Values={group}` and AWS "
                "Support")
        sleep(interval)


class LambdaEniDrainProvider(DeleteWaitProvider):
    replace_keys = ("region",)  # another region is another function (its old one deleted, and waited for, there)
    update_keys = ("security_group_id", "function_name")

    def resource_id(self, props: dict[str, Any]) -> str:
        return f"{props['function_name']}:{props['security_group_id']}"

    def wait(self, props: dict[str, Any]) -> None:
        wait_until_released(props)


class LambdaEniDrain(pulumi.dynamic.Resource):
    """Deleted after the VPC function that depends on it and before the role it depends on; its deletion waits until
    Lambda has deleted the function's network interfaces in ``security_group_id``."""

    def __init__(self, name: str, *, security_group_id: pulumi.Input[str], region: str, function_name: str,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        props: dict[str, Any] = {"security_group_id": security_group_id, "region": region,
                                 "function_name": function_name}
        super().__init__(LambdaEniDrainProvider(), name, props, opts)
