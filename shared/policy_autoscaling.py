"""What the Application Auto Scaling rules (``appautoscaling-*``, ``ecs-service-autoscaled-count-ignored``) share:
the resource types they judge together, a step policy's adjustments, and the policies of a scalable target."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pulumi_policy import PolicyResource

from shared.policy_support import as_int, as_list, depended_on

#: Application Auto Scaling's resource types, which the scaling rules judge together
SCALABLE_TARGET = "aws:appautoscaling/target:Target"
SCALING_POLICY = "aws:appautoscaling/policy:Policy"


def step_adjustments(config: Any) -> list[int]:
    """The ``scalingAdjustment`` of each step of a step scaling configuration (0 for one that is not a number)."""
    steps = as_list(config.get("stepAdjustments")) if isinstance(config, dict) else []
    return [as_int(step.get("scalingAdjustment")) or 0 for step in steps if isinstance(step, dict)]


def scaling_policies_of(target: PolicyResource, policies: Sequence[PolicyResource]) -> list[PolicyResource]:
    """The ``policies`` of scalable ``target``: those created after it (:func:`depended_on`), as a policy's
    ``resourceId`` may be unknown at preview."""
    return [policy for policy in policies if target.urn in depended_on(policy)]
