"""CloudWatch metric alarms are requests PutMetricAlarm accepts.

What CloudWatch refuses at deploy time (botocore ``cloudwatch`` service-2.json, ``PutMetricAlarm``):
a metric-math alarm (``metric_queries``) that also names a metric, namespace, statistic, period or
dimensions of its own; metric math where not exactly one query returns data (the provider sends
``return_data = false`` for a query that omits it) -- an anomaly-detection alarm
(``threshold_metric_id``) returns exactly two, the band its threshold id names and the metric the
band models; query ids that are not unique or do not start with a lower-case letter
(``^[a-z][a-zA-Z0-9_]*$``); a query with both or neither of ``metric`` and ``expression``; a period
other than 10, 20, 30 or a multiple of 60; more than 5 actions per state; ``datapoints_to_alarm``
above ``evaluation_periods``; period x evaluation periods over one day (below a one-hour period) or
seven days; a ``treat_missing_data`` other than breaching / notBreaching / ignore / missing.

Why: each of these passes ``pulumi preview`` and fails ``pulumi up`` halfway through a layer. No
cdk-nag/checkov equivalent.
"""

import re
from typing import Any

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import (
    ALARM_ACTION_INPUTS,
    UNKNOWN,
    applies_to,
    as_int,
    as_list,
    contains_unknown,
    is_true,
    plain,
    rule_policy,
    undecidable,
)
from shared.policy_typing import ReportViolation

QUERY_ID = re.compile(r"^[a-z][a-zA-Z0-9_]*$")
MISSING_DATA = ("breaching", "notBreaching", "ignore", "missing")
OWN_METRIC = ("metricName", "namespace", "statistic", "extendedStatistic", "period", "dimensions")


def _period_problem(period: Any, where: str) -> str | None:
    value = as_int(period)
    if value is None or (value not in (10, 20, 30) and value % 60):
        shown = value if value is not None else repr(period)
        return f"{where} period {shown} is not 10, 20, 30 or a multiple of 60"
    return None


def problems(props: dict[str, Any]) -> list[str]:
    found: list[str] = []
    queries = [plain(q) for q in as_list(props.get("metricQueries"))]
    if queries:
        own = [key for key in OWN_METRIC if props.get(key) not in (None, {}, "")]
        if own:
            found.append(f"a metric-math alarm cannot also set {', '.join(own)}")
        returning = [q.get("id") for q in queries if is_true(q.get("returnData"))]
        band = props.get("thresholdMetricId")
        if band:
            # anomaly detection: PutMetricAlarm wants the band and the metric it models to return data
            # ("Exactly two elements of the metrics list should return data"; terraform-provider-aws's
            # anomaly-detection acceptance test sets return_data on both)
            if band not in returning:
                found.append(f"threshold_metric_id {band!r} must name a metric query with return_data=True (the "
                             "ANOMALY_DETECTION_BAND expression)")
            elif len(returning) != 2:
                found.append("an anomaly-detection alarm needs exactly two metric queries with return_data=True "
                             f"(the band and the metric it models), not {len(returning)}")
        elif len(returning) != 1:
            found.append(f"exactly one metric query must have return_data=True, not {len(returning)}")
        ids = [q.get("id") for q in queries]
        bad = [i for i in ids if not isinstance(i, str) or not QUERY_ID.match(i)]
        if bad or len(set(ids)) != len(ids):
            found.append(f"metric query ids must be unique and match {QUERY_ID.pattern} (got {ids})")
        for query in queries:
            has_metric, has_expression = bool(query.get("metric")), bool(query.get("expression"))
            if has_metric == has_expression:
                found.append(f"metric query {query.get('id')!r} needs exactly one of metric and expression")
            elif has_metric and (problem := _period_problem(plain(query["metric"]).get("period"),
                                                             f"metric query {query.get('id')!r}")):
                found.append(problem)
    elif props.get("metricName"):
        if problem := _period_problem(props.get("period"), "the alarm's"):
            found.append(problem)
    for key in ALARM_ACTION_INPUTS:
        if len(as_list(props.get(key))) > 5:
            found.append(f"{key} has more than 5 actions")
    evaluation, datapoints = as_int(props.get("evaluationPeriods")), as_int(props.get("datapointsToAlarm"))
    periods = [as_int(plain(q.get("metric") or {}).get("period")) for q in queries if q.get("metric")] \
        if queries else [as_int(props.get("period"))]
    period = max((p for p in periods if p), default=None)
    if period and evaluation:
        window = period * evaluation
        if window > 604_800 or (period < 3600 and window > 86_400):
            found.append(f"period x evaluation_periods = {window} s is longer than one day (seven days from a "
                         "one-hour period on)")
    if evaluation is not None and datapoints is not None and datapoints > evaluation:
        found.append(f"datapoints_to_alarm={datapoints} is above evaluation_periods={evaluation}")
    missing = props.get("treatMissingData")
    if missing is not None and missing not in MISSING_DATA:
        found.append(f"treat_missing_data={missing!r} is not one of {', '.join(MISSING_DATA)}")
    return found


@applies_to("aws:cloudwatch/metricAlarm:MetricAlarm")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    props = plain(args.props)
    checked = {key: props.get(key) for key in ("metricQueries", *OWN_METRIC, *ALARM_ACTION_INPUTS, "evaluationPeriods",
                                               "datapointsToAlarm", "treatMissingData", "thresholdMetricId")}
    # Dimension values and action ARNs may be unknown during preview; their shape still decides.
    structural = {k: v for k, v in checked.items() if k not in ("dimensions", *ALARM_ACTION_INPUTS)}
    for query in as_list(structural.get("metricQueries")):
        query = plain(query)
        if query is UNKNOWN or contains_unknown({k: v for k, v in query.items() if k != "metric"}) \
                or plain(query.get("metric") or {}).get("period") is UNKNOWN:
            undecidable(args, f"alarm '{args.name}': metricQueries")
    if any(v is UNKNOWN for k, v in structural.items() if k != "metricQueries"):
        undecidable(args, f"alarm '{args.name}': {next(k for k, v in structural.items() if v is UNKNOWN)}")
    for problem in problems(checked):
        report_violation(f"CloudWatch alarm '{args.name}': {problem}; PutMetricAlarm refuses it, so `up` would fail.")


POLICY = rule_policy(__file__, _validate)
