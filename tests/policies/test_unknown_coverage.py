"""Every rule of the catalog has an unknown-at-preview case that runs through the real pack process:
a row of one of the shared case tables, or a named test for rules whose unknowns need their own setup.
A new rule without such a case fails here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shared.policy_catalog import load_rules
from tests.policies import (
    test_aws_alarm_topic,
    test_aws_api_model_valid,
    test_aws_appautoscaling_policies_not_opposed,
    test_aws_appautoscaling_scale_from_zero,
    test_aws_cloudwatch_alarms,
    test_aws_cloudwatch_metric_published,
    test_aws_coverage_rules,
    test_aws_ecs_service_after_listener,
    test_aws_ecs_service_autoscaled_count,
    test_aws_ecs_service_connect_callees_first,
    test_aws_ecs_service_grace_period,
    test_aws_eventbridge_topic,
    test_aws_iam_role_policy_before_use,
    test_aws_lb_certificate,
    test_aws_limits,
    test_aws_logs_group_declared,
    test_aws_logs_kms_key_usable,
    test_aws_nacl,
    test_aws_network,
    test_aws_s3_access_logging,
    test_aws_s3_acls_disabled,
    test_aws_s3_public_access_block,
    test_aws_s3_tls_only,
    test_aws_s3_versioned_bucket_lifecycle,
    test_aws_secret_recovery,
    test_aws_service_connect_timeout,
    test_aws_sns_alarm_topic_subscribed,
    test_aws_unknowns,
    test_platform_rules,
    test_rabbitmq_policy_keys,
    test_rabbitmq_rules,
)

#: rule -> the test that feeds it an unknown value (for rules outside the case tables)
NAMED: dict[str, Callable[..., Any]] = {
    "appmesh-mesh-quotas": test_aws_limits.test_an_unknown_mesh_name_leaves_the_mesh_quotas_undecided,
    "aws-api-model-valid": test_aws_api_model_valid.test_unknown_values_are_skipped_and_the_known_ones_still_judged,
    "appautoscaling-scale-from-zero":
        test_aws_appautoscaling_scale_from_zero.test_an_unknown_min_capacity_leaves_the_rule_undecided,
    "appautoscaling-policies-not-opposed":
        test_aws_appautoscaling_policies_not_opposed.test_an_unknown_configuration_leaves_the_rule_undecided,
    "ecs-service-connect-callees-first":
        test_aws_ecs_service_connect_callees_first.test_unknown_container_definitions_leave_the_rule_undecided,
    "cloudmap-instance-valid":
        test_aws_coverage_rules.test_an_unknown_cloudmap_address_is_not_applicable_and_a_known_bad_port_still_fails,
    "cloudwatch-alarm-metric-published":
        test_aws_cloudwatch_metric_published.test_unknown_values_still_decide_unknown_names_are_not_applicable,
    "cloudwatch-alarm-valid":
        test_aws_cloudwatch_alarms.test_unknown_dimensions_still_decide_unknown_structure_is_not_applicable,
    "cloudwatch-alarm-topic-publishable": test_aws_alarm_topic.test_unknown_policies_or_names_leave_the_rule_undecided,
    "eventbridge-topic-target-publishable":
        test_aws_eventbridge_topic.test_unknown_policies_or_names_leave_the_rule_undecided,
    "ecs-service-autoscaled-count-ignored":
        test_aws_ecs_service_autoscaled_count.test_an_unknown_resource_id_leaves_the_rule_undecided,
    "ecs-service-after-listener":
        test_aws_ecs_service_after_listener.test_unknown_load_balancers_leave_the_rule_undecided,
    "ecs-service-grace-covers-start-period":
        test_aws_ecs_service_grace_period.test_an_unknown_grace_period_or_container_definitions_leave_the_rule_undecided,
    "ecs-service-connect-timeout":
        test_aws_service_connect_timeout.test_a_timeout_unknown_at_preview_leaves_the_rule_undecided,
    "ecs-task-separate-roles":
        test_aws_coverage_rules.test_separate_roles_without_traceable_unknown_arns_is_not_applicable,
    "iam-policy-size": test_aws_limits.test_an_unknown_policy_is_not_measured,
    "iam-role-policy-before-use":
        test_aws_iam_role_policy_before_use.test_an_unknown_role_reference_leaves_the_rule_undecided,
    "lambda-environment-size": test_aws_limits.test_lambda_environment_size_waits_for_an_unknown_value,
    "logs-group-declared": test_aws_logs_group_declared.test_an_unknown_name_next_to_an_unknown_group_is_decided_at_up,
    "logs-kms-key-usable": test_aws_logs_kms_key_usable.test_unknown_policies_or_names_leave_the_rule_undecided,
    "lb-listener-acm-certificate": test_aws_lb_certificate.test_an_unknown_arn_from_elsewhere_is_not_applicable,
    "nacl-no-open-admin-ports": test_aws_nacl.test_unknown_entries_leave_the_nacl_rule_undecided,
    "s3-bucket-acls-disabled":
        test_aws_s3_acls_disabled.test_an_ownership_unknown_at_preview_leaves_that_bucket_undecided,
    "s3-bucket-access-logging":
        test_aws_s3_access_logging.test_a_logging_unknown_at_preview_leaves_the_bucket_undecided,
    "s3-bucket-public-access-block":
        test_aws_s3_public_access_block.test_settings_or_a_bucket_unknown_at_preview_leave_the_rule_undecided,
    "s3-bucket-tls-only": test_aws_s3_tls_only.test_a_policy_unknown_at_preview_leaves_the_rule_undecided,
    "s3-versioned-bucket-lifecycle":
        test_aws_s3_versioned_bucket_lifecycle.test_an_unknown_status_or_rule_leaves_the_bucket_undecided,
    "secretsmanager-recovery-window": test_aws_secret_recovery.test_an_unknown_window_is_decided_at_up,
    "no-plaintext-secrets": test_platform_rules.test_unknown_credential_value_is_still_decided_by_secretness,
    "sns-alarm-topic-subscribed":
        test_aws_sns_alarm_topic_subscribed.test_a_subscription_of_an_unknown_topic_leaves_the_rule_undecided,
    "tags-required": test_platform_rules.test_unknown_tags_are_not_applicable,
    "resource-policy-size": test_aws_limits.test_an_unknown_resource_policy_is_undecided,
    "rabbitmq-least-privilege": test_rabbitmq_rules.test_unknown_permission_is_not_applicable,
    "rabbitmq-no-admin-users": test_rabbitmq_rules.test_unknown_tags_are_not_applicable,
    "rabbitmq-policy-keys-supported": test_rabbitmq_policy_keys.test_an_unknown_value_is_not_applicable,
    "rabbitmq-publish-keys-enforced": test_rabbitmq_rules.test_an_unknown_exchange_type_is_not_applicable,
    "rabbitmq-queue-durable": test_rabbitmq_rules.test_unknown_durability_is_not_applicable,
    "rabbitmq-queue-length-limit":
        test_rabbitmq_rules.test_an_unknown_operator_policy_pattern_leaves_the_length_rule_undecided,
    "rabbitmq-queue-quorum": test_rabbitmq_rules.test_unknown_queue_arguments_are_not_applicable,
    "rabbitmq-queue-settings-by-policy":
        test_rabbitmq_rules.test_unknown_queue_arguments_leave_settings_by_policy_undecided,
    "security-group-rules-quota": test_aws_limits.test_an_unknown_group_or_range_leaves_the_quota_undecided,
    "security-group-no-all-ports-from-cidr":
        test_aws_network.test_an_unknown_range_or_protocol_leaves_the_all_ports_rule_undecided,
    "vpc-flow-logs-enabled": test_aws_unknowns.test_an_unattributable_flow_log_makes_the_vpc_rule_not_applicable,
}


def _parametrized_rules(test: Callable[..., Any]) -> set[str]:
    marks = [m for m in getattr(test, "pytestmark", []) if m.name == "parametrize"]
    return {row[0] if isinstance(row, tuple) else row for mark in marks for row in mark.args[1]}


def covered() -> set[str]:
    tables = [row[0] for table in (test_aws_unknowns.CASES, test_aws_coverage_rules.CASES,
                                   test_aws_coverage_rules.OLDER_UNKNOWN_CASES) for row in table]
    parametrized = [
        test_aws_unknowns.test_unknown_container_definitions_make_every_container_rule_not_applicable,
        test_aws_coverage_rules.test_rules_that_read_no_input_value_decide_even_when_every_input_is_unknown,
    ]
    return set(tables).union(*(_parametrized_rules(test) for test in parametrized)) | set(NAMED)


def test_every_catalog_rule_has_an_unknown_at_preview_case() -> None:
    rules = set(load_rules())
    assert sorted(rules - covered()) == [], "add an unknown-at-preview case for these rules"
    assert sorted(set(NAMED) - rules) == [], "NAMED lists rules the catalog does not have"


def test_the_named_tests_use_the_real_pack_fixtures() -> None:
    import inspect

    fixtures = {"policy_findings", "policy_not_applicable", "policy_result"}
    for rule, test in NAMED.items():
        assert fixtures & set(inspect.signature(test).parameters), rule
