"""The Amazon MQ broker's own log group, with the env's retention and (where asked) KMS.

Amazon MQ writes a RabbitMQ broker's general logs to ``/aws/amazonmq/broker/<broker-id>/general``
(Amazon MQ developer guide, logging; the id is ``b-<uuid>``). It creates that group itself, with no
retention, and writes to it with its service-linked role ``AWSServiceRoleForAmazonMQ`` (same guide, "Configuring
Amazon MQ for RabbitMQ logs"; AmazonMQServiceRolePolicy allows CreateLogGroup, CreateLogStream and PutLogEvents on
``/aws/amazonmq/*``): a RabbitMQ broker needs no CloudWatch Logs resource policy for ``mq.amazonaws.com`` (ActiveMQ
brokers do), so none takes one of the account's ten. The id exists only once CreateBroker has returned,
and Pulumi sees it only when the broker is RUNNING, by when Amazon MQ has already created the group:
an ``aws.cloudwatch.LogGroup`` registered after the broker fails with ResourceAlreadyExistsException on
the first ``up``, and one registered before cannot know the name. Amazon MQ offers no setting for
another group (terraform-provider-aws #39545).

What works is adoption: :class:`BrokerLogGroup` creates the group when it is absent and takes it over
when Amazon MQ already made it (either order of the race ends the same), then puts the retention
policy and associates the KMS key (CloudWatch Logs ``PutRetentionPolicy``/``AssociateKmsKey`` apply to
an existing group). It is a Pulumi dynamic resource (boto3, shipped in the platform's dependencies),
so it needs the package importable where the provider runs (the ``.pth`` every nox session puts in ``.venv``,
:func:`shared.venvcheck.link_repo`).
Deleting it leaves the group in place: its retention expires the logs (the empty group stays), and a
broker's last logs stay readable after the broker is gone, where encrypted only while the key is not
scheduled for deletion (KMS ScheduleKeyDeletion: a key pending deletion "can't be used in any cryptographic
operations"), which the same destroy does (README, what a destroy leaves behind). A re-created broker has a
new id, so a new group: nothing collides.

Tags: the AWS provider's ``default_tags`` reach only the provider's own resources, never a dynamic one, so the
group gets the layer's default tags (``tags``) itself: sent with CreateLogGroup (which then also needs
``logs:TagResource``, botocore logs ``CreateLogGroupRequest.tags``), put with TagResource on a group Amazon MQ
created untagged, and on a later change of the env's tags added, changed and removed in place (an organisation
policy requiring the env's tags on create, aws:RequestTag, and cost allocation by team and cost-center see them
like every other resource's).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi.dynamic

RETENTION_KEY = "retention_in_days"
KMS_KEY = "kms_key_arn"
TAGS_KEY = "tags"


def _client(service: str, region: str) -> Any:
    import boto3  # imported where the provider runs, not when the program only declares the resource

    return boto3.client(service, region_name=region)


def ensure_log_group(props: dict[str, Any], *, adopt: bool = True) -> dict[str, Any]:
    """Create the group or adopt the existing one, then apply retention and KMS; returns the outputs."""
    region, name, account = str(props["region"]), str(props["log_group_name"]), str(props["account_id"])
    # The same guard as the AWS provider's allowed_account_ids: never touch another account.
    caller = _client("sts", region).get_caller_identity()["Account"]
    if caller != account:
        raise RuntimeError(f"credentials are for account {caller}, but this env's account is {account}")
    logs = _client("logs", region)
    kms = props.get(KMS_KEY) or None
    tags = _tags(props)
    arn = group_arn(props)
    adopted = False
    try:
        logs.create_log_group(logGroupName=name, **({"kmsKeyId": kms} if kms else {}),
                              **({"tags": tags} if tags else {}))
    except logs.exceptions.ResourceAlreadyExistsException:
        if not adopt:
            raise
        adopted = True  # Amazon MQ created it first: take it over
    logs.put_retention_policy(logGroupName=name, retentionInDays=int(props[RETENTION_KEY]))
    if kms and adopted:
        logs.associate_kms_key(logGroupName=name, kmsKeyId=kms)
    if tags and adopted:
        logs.tag_resource(resourceArn=arn, tags=tags)  # Amazon MQ's create carries none
    return {**props, "arn": arn, "adopted": adopted}


def group_arn(props: dict[str, Any]) -> str:
    """The group's ARN, without ``:*`` (what TagResource takes: CloudWatch Logs API reference)."""
    return (f"arn:{props.get('partition') or 'aws'}:logs:{props['region']}:{props['account_id']}:log-group:"
            f"{props['log_group_name']}")


def _tags(props: dict[str, Any]) -> dict[str, str]:
    return {str(key): str(value) for key, value in dict(props.get(TAGS_KEY) or {}).items()}


def retag(logs: Any, arn: str, olds: dict[str, Any], news: dict[str, Any]) -> None:
    """Put the keys ``news`` adds or changes, remove those it drops (TagResource only adds and overwrites). The ARN is
    the group's without ``:*`` (CloudWatch Logs API reference, TagResource)."""
    old, new = _tags(olds), _tags(news)
    changed = {key: value for key, value in new.items() if old.get(key) != value}
    if changed:
        logs.tag_resource(resourceArn=arn, tags=changed)
    gone = sorted(set(old) - set(new))
    if gone:
        logs.untag_resource(resourceArn=arn, tagKeys=gone)


class BrokerLogGroupProvider(pulumi.dynamic.ResourceProvider):
    serialize_as_secret_always = False  # it carries no credential: boto3 takes the deployer's own

    def create(self, props: dict[str, Any]) -> pulumi.dynamic.CreateResult:
        outs = ensure_log_group(props)
        return pulumi.dynamic.CreateResult(id_=str(props["log_group_name"]), outs=outs)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.DiffResult:
        replaces = [key for key in ("log_group_name", "region", "account_id") if olds.get(key) != news.get(key)]
        # a tag change is an update (TagResource/UntagResource): never a new group
        changed = [key for key in (RETENTION_KEY, KMS_KEY) if olds.get(key) != news.get(key)]
        if _tags(olds) != _tags(news):
            changed.append(TAGS_KEY)
        return pulumi.dynamic.DiffResult(changes=bool(replaces or changed), replaces=replaces,
                                         delete_before_replace=False)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.UpdateResult:
        logs = _client("logs", str(news["region"]))
        name = str(news["log_group_name"])
        logs.put_retention_policy(logGroupName=name, retentionInDays=int(news[RETENTION_KEY]))
        if news.get(KMS_KEY) and news.get(KMS_KEY) != olds.get(KMS_KEY):
            logs.associate_kms_key(logGroupName=name, kmsKeyId=news[KMS_KEY])
        elif olds.get(KMS_KEY) and not news.get(KMS_KEY):
            logs.disassociate_kms_key(logGroupName=name)
        arn = group_arn(news)
        retag(logs, arn, olds, news)
        return pulumi.dynamic.UpdateResult(outs={**olds, **news, "arn": arn})

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        return None  # kept: retention expires its events (see the module docstring)


class BrokerLogGroup(pulumi.dynamic.Resource):
    """``/aws/amazonmq/broker/<broker-id>/general`` with retention (and KMS), whoever created it."""

    arn: pulumi.Output[str]

    def __init__(self, name: str, *, log_group_name: pulumi.Input[str], region: str, account_id: str,
                 retention_in_days: int, kms_key_arn: pulumi.Input[str] | None = None,
                 tags: Mapping[str, str] | None = None, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(BrokerLogGroupProvider(), name, {
            "log_group_name": log_group_name, "region": region, "account_id": account_id,
            RETENTION_KEY: retention_in_days, KMS_KEY: kms_key_arn, TAGS_KEY: dict(tags or {}), "arn": None,
            "adopted": None,
        }, opts)
