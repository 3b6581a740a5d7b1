"""Which AWS metrics exist, under which dimensions: the table behind the rule ``cloudwatch-alarm-metric-published``.

CloudWatch accepts an alarm on any namespace, metric name and dimensions, published or not: an alarm
on a series AWS never publishes deploys fine and never leaves INSUFFICIENT_DATA (or, with
``treat_missing_data=breaching``, alarms for ever). A series is the exact set of dimension *names*
the service publishes with, so ``RabbitMQMemUsed`` with ``{Broker, VirtualHost}`` or
``UnHealthyHostCount`` with ``{LoadBalancer}`` alone match nothing.

For each namespace below, each metric maps to the dimension-name sets AWS publishes it with, or to
``None`` where the metric exists but its sets are not pinned down here (then only its spelling is
judged). Sources, one per namespace:

- ``AWS/AmazonMQ``: Amazon MQ developer guide, "Available CloudWatch metrics for Amazon MQ for RabbitMQ
  brokers" (broker metrics: Broker; for a cluster the sum over its nodes. Node metrics: Broker, Node,
  the count metrics from RabbitMQ 4.2. Queue metrics: Broker, VirtualHost, Queue, RabbitMQ 3.x only)
  and "Available CloudWatch metrics for Amazon MQ for ActiveMQ brokers" (broker metrics: Broker;
  destination metrics: Broker with Queue or Topic).
- ``ECS/ContainerInsights``: CloudWatch user guide, "Amazon ECS Container Insights metrics" (the task
  counts of a service: ClusterName, ServiceName; ServiceCount: ClusterName).
- ``AWS/ECS``: Amazon ECS developer guide, "Amazon ECS CloudWatch metrics" (CPUUtilization and
  MemoryUtilization: ClusterName, or ClusterName + ServiceName) and "Service Connect metrics".
- ``AWS/ApplicationELB``: Elastic Load Balancing guide, "CloudWatch metrics for your Application Load
  Balancer" (each metric's dimension sets; LoadBalancer is ``app/<name>/<id>``, TargetGroup
  ``targetgroup/<name>/<id>``, the ARNs' final portions).
- ``AWS/Lambda``: Lambda developer guide, "Types of metrics for Lambda functions" (FunctionName,
  Resource, ExecutedVersion, or none for the account's aggregate; the sets as the AWS CDK's
  generated LambdaMetrics spell them).

- ``AWS/CertificateManager``: ACM user guide, "Supported CloudWatch metrics" (``DaysToExpiry`` with
  CertificateArn, once a day, until the certificate expires).
- ``AWS/Events``: EventBridge user guide, "Monitoring Amazon EventBridge" (a rule's delivery metrics: RuleName on
  the default bus, EventBusName and RuleName on another; FailedInvocations only when not zero).
- ``AWS/SNS``: Amazon SNS developer guide, "Monitoring Amazon SNS topics using CloudWatch" (a topic's metrics with
  TopicName, among other dimensions not pinned here: Application, Platform, Country, SMSType, PhoneNumber).

- ``MLPlatform/RabbitMQ``: the platform's own queue metrics publisher (``shared/rotation/queue_metrics.py``,
  ``METRICS`` with ``DIMENSIONS``): exactly what it writes, read from its source, so an alarm or scaling
  policy on a series it does not write is refused like one on a series AWS does not publish.
- ``MLPlatform/ECS``: the platform's metric filter of unexpected ECS task stops (``shared/components/task_stops.py``):
  ``UnexpectedTaskStops`` with ``Group``.
- ``MLPlatform/Broker``: the platform's metric filter of the broker's general log (``shared/components/broker.py``):
  ``ResourceAlarmsSet``, no dimension (one env per account and region: the env loader).

A namespace not listed (other custom metrics) is not judged, nor is a metric a listed namespace
does not name, unless it is a listed metric spelled in another case (CloudWatch names are
case-sensitive) or one that lives in another listed namespace (``RunningTaskCount`` is Container
Insights', not ``AWS/ECS``'s).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from shared.rotation import queue_metrics as publisher

DimensionSets = frozenset[frozenset[str]] | None

#: The namespaces the table judges; the platform's own alarms (shared.components.alarms) name them from here.
AMAZON_MQ_NAMESPACE = "AWS/AmazonMQ"
CONTAINER_INSIGHTS_NAMESPACE = "ECS/ContainerInsights"
ECS_NAMESPACE = "AWS/ECS"
APPLICATION_ELB_NAMESPACE = "AWS/ApplicationELB"
LAMBDA_NAMESPACE = "AWS/Lambda"
CERTIFICATE_MANAGER_NAMESPACE = "AWS/CertificateManager"
EVENTS_NAMESPACE = "AWS/Events"
SNS_NAMESPACE = "AWS/SNS"
#: messages SNS failed to deliver to a subscription (for https each failed attempt, retries included)
NOTIFICATIONS_FAILED_METRIC = "NumberOfNotificationsFailed"
#: a rule's deliveries that failed for good (after EventBridge's retries, or at once for a refused one)
FAILED_INVOCATIONS_METRIC = "FailedInvocations"
#: days until an ACM certificate expires (dimension CertificateArn): no longer published once it has
DAYS_TO_EXPIRY_METRIC = "DaysToExpiry"
SQS_NAMESPACE = "AWS/SQS"
#: messages a queue holds that a receiver could take now (dimension QueueName)
SQS_VISIBLE_METRIC = "ApproximateNumberOfMessagesVisible"
#: The platform's own: the queue metrics publisher's (shared/rotation/queue_metrics.py, PUBLISHED_METRICS)
QUEUE_METRICS_NAMESPACE = "MLPlatform/RabbitMQ"
#: The platform's own: the unexpected task stops metric filter's (shared/components/task_stops.py)
TASK_STOPS_NAMESPACE = "MLPlatform/ECS"
TASK_STOPS_METRIC = "UnexpectedTaskStops"
#: its one dimension: the stopped task's ``group``, ``service:<ECS service name>``
TASK_GROUP_DIMENSION = "Group"
#: The platform's own: the broker log's metric filter of RabbitMQ's resource alarms (shared/components/broker.py)
BROKER_LOGS_NAMESPACE = "MLPlatform/Broker"
#: a node's memory or disk alarm set, which blocks every publisher of the cluster until it clears
RESOURCE_ALARMS_METRIC = "ResourceAlarmsSet"


def _sets(*sets: Iterable[str]) -> frozenset[frozenset[str]]:
    return frozenset(frozenset(dimensions) for dimensions in sets)


def _same(names: str, dimensions: DimensionSets) -> dict[str, DimensionSets]:
    return dict.fromkeys(names.split(), dimensions)


def _merge(*tables: dict[str, DimensionSets]) -> dict[str, DimensionSets]:
    """Metrics named in several tables take the union of their dimension sets (None wins: unpinned)."""
    merged: dict[str, DimensionSets] = {}
    for table in tables:
        for metric, dimensions in table.items():
            if metric in merged:
                before = merged[metric]
                merged[metric] = None if before is None or dimensions is None else before | dimensions
            else:
                merged[metric] = dimensions
    return merged


AMAZON_MQ: dict[str, DimensionSets] = _merge(
    # RabbitMQ broker metrics (Broker); the node metrics (Broker, Node) are the same names
    _same("ExchangeCount QueueCount ConnectionCount ChannelCount ConsumerCount MessageCount MessageReadyCount "
          "MessageUnacknowledgedCount PublishRate ConfirmRate AckRate SystemCpuUtilization RabbitMQMemLimit "
          "RabbitMQMemUsed RabbitMQDiskFreeLimit RabbitMQDiskFree RabbitMQFdUsed RabbitMQIOReadAverageTime "
          "RabbitMQIOWriteAverageTime NetworkIn NetworkOut", _sets(("Broker",))),
    _same("SystemCpuUtilization RabbitMQMemLimit RabbitMQMemUsed RabbitMQDiskFreeLimit RabbitMQDiskFree "
          "RabbitMQFdUsed ExchangeCount QueueCount ConnectionCount ChannelCount ConsumerCount MessageCount "
          "MessageReadyCount MessageUnacknowledgedCount", _sets(("Broker", "Node"))),
    # RabbitMQ queue metrics (RabbitMQ 3.x brokers)
    _same("ConsumerCount MessageReadyCount MessageUnacknowledgedCount MessageCount",
          _sets(("Broker", "VirtualHost", "Queue"))),
    # ActiveMQ broker metrics (Broker, the name with -1 / -2)
    _same("AmqpMaximumConnections BurstBalance CpuCreditBalance CpuUtilization CurrentConnectionsCount "
          "EstablishedConnectionsCount HeapUsage InactiveDurableTopicSubscribersCount JobSchedulerStorePercentUsage "
          "JournalFilesForFastRecovery JournalFilesForFullRecovery MqttMaximumConnections "
          "NetworkConnectorConnectionCount OpenTransactionCount OpenwireMaximumConnections StompMaximumConnections "
          "StorePercentUsage TempPercentUsage TotalConsumerCount TotalMessageCount TotalProducerCount VolumeReadOps "
          "VolumeWriteOps WsMaximumConnections", _sets(("Broker",))),
    # ActiveMQ destination metrics (Broker with Queue or Topic); a duplex network connector's: not pinned
    _same("ConsumerCount EnqueueCount EnqueueTime ExpiredCount DispatchCount DequeueCount InFlightCount "
          "MemoryUsage ProducerCount QueueSize TotalEnqueueCount TotalDequeueCount",
          _sets(("Broker", "Queue"), ("Broker", "Topic"))),
    _same("ReceiveCount", None),
)

_SERVICE = ("ClusterName", "ServiceName")
CONTAINER_INSIGHTS: dict[str, DimensionSets] = _merge(
    _same("DesiredTaskCount RunningTaskCount PendingTaskCount DeploymentCount", _sets(_SERVICE)),
    _same("ServiceCount", _sets(("ClusterName",))),
    # per cluster, service, task family (and task / container with enhanced observability)
    _same("CpuUtilized CpuReserved MemoryUtilized MemoryReserved NetworkRxBytes NetworkTxBytes StorageReadBytes "
          "StorageWriteBytes EphemeralStorageReserved EphemeralStorageUtilized TaskCount TaskSetCount "
          "ContainerInstanceCount", None),
)

ECS: dict[str, DimensionSets] = _merge(
    _same("CPUUtilization MemoryUtilization", _sets(("ClusterName",), _SERVICE)),
    _same("CPUReservation MemoryReservation GPUReservation EBSFilesystemUtilization", None),
    # Service Connect's proxy metrics: by the callee's DiscoveryName or the caller's TargetDiscoveryName, alone or
    # with ClusterName and ServiceName (ECS developer guide, "Amazon ECS CloudWatch metrics", Service Connect
    # dimensions; under TargetDiscoveryName, ServiceName is the caller). Which metric is published under which of
    # the two names is not pinned here: either family passes, a set of neither is reported.
    _same("ActiveConnectionCount NewConnectionCount ProcessedBytes RequestCount GrpcRequestCount "
          "HTTPCode_Target_2XX_Count HTTPCode_Target_3XX_Count HTTPCode_Target_4XX_Count HTTPCode_Target_5XX_Count "
          "RequestCountPerTarget TargetProcessedBytes TargetResponseTime ClientTLSNegotiationErrorCount "
          "TargetTLSNegotiationErrorCount",
          _sets(("DiscoveryName",), ("ClusterName", "DiscoveryName", "ServiceName"), ("TargetDiscoveryName",),
                ("ClusterName", "ServiceName", "TargetDiscoveryName"))),
)

_LB = ("LoadBalancer",)
_LB_AZ = ("AvailabilityZone", "LoadBalancer")
_LB_TG = ("LoadBalancer", "TargetGroup")
_LB_TG_AZ = ("AvailabilityZone", "LoadBalancer", "TargetGroup")
APPLICATION_ELB: dict[str, DimensionSets] = _merge(
    _same("ActiveConnectionCount AppCookieNonStickinessCount ClientTLSNegotiationErrorCount "
          "DesyncMitigationMode_NonCompliant_Request_Count ExcessiveLowReputationPackets HTTP_Fixed_Response_Count "
          "HTTP_Redirect_Count HTTP_Redirect_Url_Limit_Exceeded_Count HTTPCode_ELB_3XX_Count HTTPCode_ELB_4XX_Count "
          "HTTPCode_ELB_5XX_Count HTTPCode_ELB_500_Count HTTPCode_ELB_502_Count HTTPCode_ELB_503_Count "
          "HTTPCode_ELB_504_Count IPv6ProcessedBytes IPv6RequestCount LowReputationPacketsDropped "
          "LowReputationRequestsDenied NewConnectionCount NonStickyRequestCount ProcessedBytes RejectedConnectionCount "
          "ELBAuthError ELBAuthFailure ELBAuthLatency ELBAuthRefreshTokenSuccess ELBAuthSuccess "
          "ELBAuthUserClaimsSizeExceeded TargetControlRequestCount TargetControlRequestRejectCount "
          "TargetControlActiveChannelCount TargetControlNewChannelCount TargetControlChannelErrorCount "
          "TargetControlWorkQueueLength TargetControlProcessedBytes", _sets(_LB, _LB_AZ)),
    _same("DroppedInvalidHeaderRequestCount ForwardedInvalidHeaderRequestCount", _sets(_LB_AZ)),
    _same("RuleEvaluations ConsumedLCUs PeakLCUs ReservedLCUs CapacityUtilization LambdaTargetProcessedBytes",
          _sets(_LB)),
    _same("BYoIPUtilPercentage AnomalousHostCount HealthyHostCount UnHealthyHostCount MitigatedHostCount "
          "ActiveZonalShiftHostCount HealthyStateDNS HealthyStateRouting UnhealthyRoutingRequestCount "
          "UnhealthyStateDNS UnhealthyStateRouting", _sets(_LB_TG, _LB_TG_AZ)),
    _same("HTTPCode_Target_2XX_Count HTTPCode_Target_3XX_Count HTTPCode_Target_4XX_Count HTTPCode_Target_5XX_Count "
          "TargetConnectionErrorCount TargetResponseTime TargetTLSNegotiationErrorCount",
          _sets(_LB, _LB_AZ, _LB_TG, _LB_TG_AZ)),
    _same("RequestCount", _sets(_LB, _LB_AZ, _LB_TG, _LB_TG_AZ)),
    _same("GrpcRequestCount", _sets(_LB_TG, _LB_TG_AZ, ("TargetGroup",), ("AvailabilityZone", "TargetGroup"))),
    _same("RequestCountPerTarget", _sets(("TargetGroup",), ("AvailabilityZone", "TargetGroup"), _LB_TG, _LB_TG_AZ)),
    _same("LambdaInternalError LambdaUserError", _sets(("TargetGroup",), _LB_TG)),
)

LAMBDA: dict[str, DimensionSets] = _merge(
    _same("Invocations Errors Throttles Duration DeadLetterErrors DestinationDeliveryFailures ConcurrentExecutions "
          "IteratorAge", _sets((), ("FunctionName",), ("FunctionName", "Resource"),
                               ("ExecutedVersion", "FunctionName", "Resource"))),
    _same("UnreservedConcurrentExecutions ProvisionedConcurrentExecutions ProvisionedConcurrencyInvocations "
          "ProvisionedConcurrencySpilloverInvocations ProvisionedConcurrencyUtilization PostRuntimeExtensionsDuration "
          "RecursiveInvocationsDropped ClaimedAccountConcurrency AsyncEventsReceived AsyncEventAge "
          "AsyncEventsDropped", None),
)

EVENTS: dict[str, DimensionSets] = _merge(
    _same(f"{FAILED_INVOCATIONS_METRIC} DeadLetterInvocations InvocationsFailedToBeSentToDlq InvocationsSentToDlq",
          _sets(("RuleName",), ("EventBusName", "RuleName"))),
    _same("Invocations TriggeredRules MatchedEvents ThrottledRules InvocationAttempts InvocationsCreated "
          "IngestionToInvocationStartLatency IngestionToInvocationCompleteLatency Events PutEventsApproximateCallCount "
          "PutEventsEntriesCount PutEventsFailedEntriesCount PutEventsRequestSize PutEventsLatency", None),
)

SNS: dict[str, DimensionSets] = _same(
    f"NumberOfMessagesPublished NumberOfNotificationsDelivered {NOTIFICATIONS_FAILED_METRIC} "
    "NumberOfNotificationsFilteredOut NumberOfNotificationsFilteredOut-MessageAttributes "
    "NumberOfNotificationsFilteredOut-MessageBody NumberOfNotificationsFilteredOut-InvalidAttributes "
    "NumberOfNotificationsFilteredOut-NoMessageAttributes NumberOfNotificationsFilteredOut-InvalidMessageBody "
    "NumberOfNotificationsRedrivenToDlq NumberOfNotificationsFailedToRedriveToDlq PublishSize "
    "SMSMonthToDateSpentUSD SMSSuccessRate", None)

#: Amazon SQS developer guide, "Available CloudWatch metrics for Amazon SQS": each with the one dimension QueueName
SQS: dict[str, DimensionSets] = _same(
    "ApproximateAgeOfOldestMessage ApproximateNumberOfMessagesDelayed ApproximateNumberOfMessagesNotVisible "
    f"{SQS_VISIBLE_METRIC} NumberOfEmptyReceives NumberOfMessagesDeleted NumberOfMessagesReceived "
    "NumberOfMessagesSent SentMessageSize", _sets(("QueueName",)))

QUEUE_METRICS: dict[str, DimensionSets] = dict.fromkeys(publisher.PUBLISHED_METRICS, _sets(publisher.DIMENSIONS))
#: The publisher's metric name for each queue field of RabbitMQ's management API it reads (its ``METRICS``,
#: inverted). The queue alarms and the backlog scaling name their series from here, so a metric renamed in the
#: publisher moves them with it instead of leaving them on a series nothing writes.
QUEUE_METRIC_OF_FIELD: dict[str, str] = {field: metric for metric, field in publisher.METRICS.items()}
#: messages waiting for a consumer: the backlog (``messages_ready``)
QUEUE_READY_METRIC = QUEUE_METRIC_OF_FIELD["messages_ready"]
#: messages ready or unacknowledged: 0 when the queue holds nothing, waiting or in progress (``messages``)
QUEUE_MESSAGES_METRIC = QUEUE_METRIC_OF_FIELD["messages"]
#: consumers attached to the queue (``consumers``): 0 while messages wait means nobody will take them
QUEUE_CONSUMERS_METRIC = QUEUE_METRIC_OF_FIELD["consumers"]
#: consumers holding no message while none is ready: the idle tasks of a consumer that runs one job at a time
QUEUE_IDLE_CONSUMERS_METRIC = publisher.IDLE_CONSUMERS
#: Consecutive one-minute samples of a work queue's ready messages that scale its consumer out (the backlog-out
#: alarm's evaluation periods and datapoints to alarm). Not 1: the management API's queue figures are refreshed
#: every collect_statistics_interval (5 s by default, RabbitMQ management docs), so the publisher's one sample a
#: minute can still count as ready a message a consumer has just taken, and for a 6-hour job the task it added
#: would idle for the whole job. Two samples a minute apart see a message that really waits.
BACKLOG_OUT_PERIODS = 2

PUBLISHED: dict[str, dict[str, DimensionSets]] = {
    AMAZON_MQ_NAMESPACE: AMAZON_MQ,
    CONTAINER_INSIGHTS_NAMESPACE: CONTAINER_INSIGHTS,
    ECS_NAMESPACE: ECS,
    APPLICATION_ELB_NAMESPACE: APPLICATION_ELB,
    LAMBDA_NAMESPACE: LAMBDA,
    CERTIFICATE_MANAGER_NAMESPACE: {DAYS_TO_EXPIRY_METRIC: _sets(("CertificateArn",))},
    EVENTS_NAMESPACE: EVENTS,
    SNS_NAMESPACE: SNS,
    SQS_NAMESPACE: SQS,
    QUEUE_METRICS_NAMESPACE: QUEUE_METRICS,
    TASK_STOPS_NAMESPACE: {TASK_STOPS_METRIC: _sets((TASK_GROUP_DIMENSION,))},
    BROKER_LOGS_NAMESPACE: {RESOURCE_ALARMS_METRIC: _sets(())},
}

#: Dimension values that must be the final portion of an ARN (ELB guide, metric dimensions).
VALUE_SHAPES: dict[tuple[str, str], tuple[re.Pattern[str], str]] = {
    (APPLICATION_ELB_NAMESPACE, "LoadBalancer"): (re.compile(r"^app/[^/]+/[0-9a-f]+$"),
                                                   "app/<name>/<id>, the load balancer's arn_suffix"),
    (APPLICATION_ELB_NAMESPACE, "TargetGroup"): (re.compile(r"^targetgroup/[^/]+/[0-9a-f]+$"),
                                                  "targetgroup/<name>/<id>, the target group's arn_suffix"),
}
#: Dimensions whose value is a name, never an ARN.
NAME_DIMENSIONS = frozenset({"Broker", "ClusterName", "ServiceName", "FunctionName", "Queue", "QueueName",
                             "VirtualHost"})
#: Amazon MQ publishes no metric of a RabbitMQ vhost or queue whose name holds a blank, a tab or another
#: non-ASCII character (Amazon MQ guide, "Dimensions for RabbitMQ queue metrics").
UNPUBLISHED_NAME = re.compile(r"[^\x21-\x7e]")
#: An Amazon MQ broker id (``b-<uuid>``): the Broker dimension is the broker's name (Amazon MQ guide).
BROKER_ID = re.compile(r"^b-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _shown(dimensions: Iterable[str]) -> str:
    return "{" + ", ".join(sorted(dimensions)) + "}"


def metric_problems(namespace: str, metric: str, dimensions: Mapping[str, object]) -> list[str]:
    """Why ``namespace``/``metric`` with ``dimensions`` (name -> value; a value that is not a ``str`` is
    not judged, e.g. unknown during preview) is a series AWS does not publish; empty when it is, or when
    the table cannot tell."""
    table = PUBLISHED.get(namespace)
    if table is None:
        return []
    problems: list[str] = []
    if metric not in table:
        spelled = [known for known in table if known.lower() == metric.lower()]
        elsewhere = sorted(ns for ns, other in PUBLISHED.items() if ns != namespace and metric in other)
        if spelled:
            problems.append(f"{namespace} publishes {spelled[0]!r}, not {metric!r} (metric names are case-sensitive)")
        elif elsewhere:
            problems.append(f"{metric!r} is published in {' and '.join(elsewhere)}, not in {namespace}")
        return problems
    allowed = table[metric]
    names = frozenset(dimensions)
    if allowed is not None and names not in allowed:
        sets = " or ".join(_shown(s) if s else "no dimension" for s in sorted(allowed, key=sorted))
        problems.append(f"{namespace} publishes {metric} with {sets}; {_shown(names) if names else 'no dimension'} "
                        "matches no series")
    for name, value in sorted(dimensions.items()):
        if not isinstance(value, str):
            continue
        shape = VALUE_SHAPES.get((namespace, name))
        if shape and not shape[0].match(value):
            problems.append(f"dimension {name}={value!r} is not {shape[1]}")
        elif name in NAME_DIMENSIONS and value.startswith("arn:"):
            problems.append(f"dimension {name}={value!r} is an ARN; {namespace} names the resource by its name")
        elif (namespace == AMAZON_MQ_NAMESPACE and name in ("Queue", "VirtualHost") and "VirtualHost" in dimensions
              and UNPUBLISHED_NAME.search(value)):
            # RabbitMQ's queue series only (they carry VirtualHost): the guide says it of RabbitMQ queues and
            # vhosts, not of an ActiveMQ destination (Broker with Queue or Topic)
            problems.append(f"dimension {name}={value!r} holds a blank or non-ASCII character; Amazon MQ publishes no "
                            "metric of such a queue or vhost")
        elif namespace == AMAZON_MQ_NAMESPACE and name == "Broker" and BROKER_ID.match(value):
            problems.append(f"dimension Broker={value!r} is the broker's id; Amazon MQ's Broker dimension is its name")
    return problems
