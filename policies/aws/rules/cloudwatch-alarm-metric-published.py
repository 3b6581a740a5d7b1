"""CloudWatch metric alarms watch series AWS publishes: the metric's name in its namespace, spelled as AWS
spells it, with a set of dimension names AWS publishes it with, and dimension values in the form AWS
uses (an ALB's LoadBalancer is ``app/<name>/<id>``, the ARN suffix; a name, never an ARN; Amazon MQ's
Broker is the broker's name, not its id; Amazon MQ publishes nothing for a queue or vhost whose name
holds a blank or a non-ASCII character).

Why: PutMetricAlarm accepts any namespace, metric and dimensions, published or not. Such an alarm
deploys, never receives a data point and never notifies (or, treating missing data as breaching,
alarms for ever) -- typically ``RunningTaskCount`` under ``AWS/ECS`` (it is Container Insights'),
``UnhealthyHostCount`` (``UnHealthyHostCount``), or an ALB metric keyed by the load balancer's ARN.
The table of published metrics and its sources (AWS service guides) is ``shared/cloudwatch_metrics.py``;
it also holds the platform's own namespace ``MLPlatform/RabbitMQ``, read from the queue metrics
publisher's source (its metric names with VirtualHost and Queue), so an alarm on a queue series the
publisher does not write is refused the same way. Other namespaces are not judged. Single-metric
alarms and each metric of a metric-math alarm are checked. No cdk-nag/checkov equivalent.
"""

from typing import Any

from pulumi_policy import ResourceValidationArgs

from shared.cloudwatch_metrics import metric_problems
from shared.policy_support import UNKNOWN, applies_to, as_list, plain, rule_policy, undecidable
from shared.policy_typing import ReportViolation


def _metrics(props: dict[str, Any]) -> list[tuple[str, Any, Any, Any]]:
    """(where, namespace, metric name, dimensions) of every metric the alarm reads."""
    if props.get("metricName") is not None or props.get("namespace") is not None:
        return [("the alarm", props.get("namespace"), props.get("metricName"), props.get("dimensions"))]
    found = []
    for query in as_list(props.get("metricQueries")):
        query = plain(query)
        metric = plain(query.get("metric")) if isinstance(query, dict) else UNKNOWN
        if metric is UNKNOWN or query is UNKNOWN:
            found.append(("a metric query", UNKNOWN, UNKNOWN, UNKNOWN))
        elif metric:
            found.append((f"metric query {query.get('id')!r}", metric.get("namespace"), metric.get("metricName"),
                          metric.get("dimensions")))
    return found


@applies_to("aws:cloudwatch/metricAlarm:MetricAlarm")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    props = plain(args.props)
    if props.get("metricQueries") is UNKNOWN:
        undecidable(args, f"alarm '{args.name}': metricQueries")
    checked = _metrics(props)
    for where, namespace, metric, dimensions in checked:
        if UNKNOWN in (namespace, metric, dimensions):
            undecidable(args, f"alarm '{args.name}': the namespace, name or dimensions of {where}")
    for where, namespace, metric, dimensions in checked:
        if not isinstance(namespace, str) or not isinstance(metric, str):
            continue  # a metric without both is cloudwatch-alarm-valid's business
        for problem in metric_problems(namespace, metric, dimensions if isinstance(dimensions, dict) else {}):
            report_violation(f"CloudWatch alarm '{args.name}', {where}: {problem}; the alarm would never receive a "
                             "data point. Use a metric and dimensions from the service's CloudWatch metrics page.")


POLICY = rule_policy(__file__, _validate)
