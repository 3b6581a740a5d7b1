"""What EventBridge could not deliver is kept, not dropped (shared.components.undelivered_events): every event-pattern
rule's target of every env names a dead-letter queue of its own stack, which lets that rule (and no other account's)
send to it, exists before the target, keeps a message as long as SQS can, and notifies while it holds one."""

from __future__ import annotations

import json
import re
from typing import Any

import botocore.session
import pytest

from shared.components.undelivered_events import UNDELIVERED_RETENTION_SECONDS, undelivered_queue_name
from shared.envs import load_env
from tests import iam_eval
from tests.synth_helpers import of_type, synth_layers

ENVS = ("dev", "staging", "prod")
RULE = "aws:cloudwatch/eventRule:EventRule"
TARGET = "aws:cloudwatch/eventTarget:EventTarget"
QUEUE = "aws:sqs/queue:Queue"
QUEUE_POLICY = "aws:sqs/queuePolicy:QueuePolicy"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"


def _pattern_targets(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The targets of the rules that match events (not a schedule's: the queue metrics publisher's minute tick is
    worthless a minute later, and its silent-publisher alarm covers a refused one)."""
    on_events = {rule["inputs"]["name"] for rule in of_type(document, RULE) if rule["inputs"].get("eventPattern")}
    return [target for target in of_type(document, TARGET) if target["inputs"]["rule"] in on_events]


@pytest.mark.parametrize("env", ENVS)
def test_every_event_rules_target_keeps_what_it_could_not_deliver(env: str) -> None:
    loaded = load_env(env)
    documents = synth_layers(env)
    found = 0
    for layer, document in documents.items():
        queues = {f"arn:aws:sqs:{loaded.region}:{loaded.account_id}:{queue['inputs']['name']}": queue
                  for queue in of_type(document, QUEUE)}
        for target in _pattern_targets(document):
            found += 1
            where = f"{layer}: target of {target['inputs']['rule']}"
            dead_letters = (target["inputs"].get("deadLetterConfig") or {}).get("arn")
            assert dead_letters in queues, f"{where} has no dead-letter queue of its stack"
            queue = queues[dead_letters]
            assert queue["inputs"]["name"] == undelivered_queue_name(env, layer)
            (policy,) = [p for p in of_type(document, QUEUE_POLICY) if p["parent"] == queue["urn"]]
            assert policy["urn"] in target["dependencies"], f"{where}: created before the policy that admits it"
            statements = json.loads(policy["inputs"]["policy"])["Statement"]
            events = [{k: v for k, v in s.items() if k != "Principal"} for s in statements
                      if s.get("Principal") == {"Service": "events.amazonaws.com"}]
            rule_arn = f"arn:aws:events:{loaded.region}:{loaded.account_id}:rule/{target['inputs']['rule']}"
            own = {"aws:SourceArn": rule_arn, "aws:SourceAccount": loaded.account_id}
            assert iam_eval.allows(events, "sqs:SendMessage", dead_letters, own), where
            other = {"aws:SourceArn": rule_arn.replace(loaded.account_id, "999999999999"),
                     "aws:SourceAccount": "999999999999"}
            assert not iam_eval.allows(events, "sqs:SendMessage", dead_letters, other), where
            assert not iam_eval.allows(events, "sqs:ReceiveMessage", dead_letters, own), "EventBridge only sends"
            # SSE-SQS: EventBridge needs no key grant to send (a customer managed key would need one)
            assert queue["inputs"]["sqsManagedSseEnabled"] is True and "kmsMasterKeyId" not in queue["inputs"]
    assert found >= 2, "the broker's notifications and compute's task stops"


@pytest.mark.parametrize("env", ENVS)
def test_each_dead_letter_queue_notifies_while_it_holds_an_event(env: str) -> None:
    documents = synth_layers(env)
    topic = documents["broker"]["outputs"]["alarm_topic_arn"]
    for layer, document in documents.items():
        for queue in of_type(document, QUEUE):
            name = queue["inputs"]["name"]
            (alarm,) = [a["inputs"] for a in of_type(document, ALARM)
                        if a["inputs"].get("dimensions") == {"QueueName": name}]
            assert (alarm["namespace"], alarm["metricName"], alarm["comparisonOperator"], alarm["threshold"]) == (
                "AWS/SQS", "ApproximateNumberOfMessagesVisible", "GreaterThanOrEqualToThreshold", 1), layer
            assert alarm["alarmActions"] == [topic] and alarm["treatMissingData"] == "notBreaching"


def test_the_queue_keeps_a_message_as_long_as_sqs_allows() -> None:
    """14 days: the upper end of MessageRetentionPeriod as botocore's sqs model documents it (CreateQueue's
    Attributes); a larger value is refused by CreateQueue, a smaller one loses what on call reads after a holiday."""
    model = botocore.session.get_session().get_service_model("sqs")
    documentation = model.operation_model("CreateQueue").input_shape.members["Attributes"].documentation
    text = re.sub(r"<[^>]+>", " ", documentation)
    limits = re.search(r"MessageRetentionPeriod\s*.{0,200}?from\s+([\d,]+)\s+seconds.{0,40}?to\s+([\d,]+)\s+seconds",
                       text, re.DOTALL)
    assert limits, "botocore no longer documents MessageRetentionPeriod's range"
    assert UNDELIVERED_RETENTION_SECONDS == int(limits.group(2).replace(",", ""))
