"""Types of the policy rules' callbacks, as pulumi_policy calls them (rules import them from here)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, cast

from pulumi_policy import ReportViolation as SdkReportViolation
from pulumi_policy import ResourceValidationArgs, StackValidationArgs

__all__ = ["ReportViolation", "ResourceCheck", "SdkReportViolation", "SdkResourceValidation", "SdkStackValidation",
           "StackCheck", "as_report", "stack_check"]


class ReportViolation(Protocol):
    """How pulumi_policy's report callback is called: ``(message)`` or ``(message, urn)``.

    pulumi_policy's own ``ReportViolation`` alias makes the URN a required argument, but the callback
    it passes (``PolicyPack._create_report_violation``) defaults it to None; rules take this type, so
    their one-argument calls type-check.
    """

    def __call__(self, message: str, urn: str | None = None) -> None: ...


ResourceCheck = Callable[[ResourceValidationArgs, ReportViolation], None]
StackCheck = Callable[[StackValidationArgs, ReportViolation], None]
SdkStackValidation = Callable[[StackValidationArgs, SdkReportViolation], None]
#: a resource check as ``ResourceValidationPolicy(validate=...)`` declares it
SdkResourceValidation = Callable[[ResourceValidationArgs, SdkReportViolation], None]


def as_report(report: SdkReportViolation) -> ReportViolation:
    return cast(ReportViolation, report)  # the same callback, typed as it is called (see ReportViolation)


def stack_check(check: StackCheck) -> SdkStackValidation:
    """``check`` (the same function) typed the way ``StackValidationPolicy(validate=...)`` declares it."""
    return cast(SdkStackValidation, check)
