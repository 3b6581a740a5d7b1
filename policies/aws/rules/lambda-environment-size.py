"""A Lambda function's environment variables fit Lambda's 4 KB: it refuses the function otherwise.

Lambda measures the variables as one JSON object, ``{"NAME":"value",...}`` without spaces, and refuses a
CreateFunction or UpdateFunctionConfiguration whose object is longer than 4 KB (Lambda developer guide,
"Lambda quotas": environment variables 4 KB, not adjustable, Service Quotas L-6581F036; the error,
``InvalidParameterValueException: ... exceeded the 4KB limit. String measured: {...}``, shows the measured
object). Checks ``aws:lambda/function:Function`` ``environment.variables``, counted in UTF-8 bytes.

Why: nothing in a preview measures it, so a function whose variables grow with the platform -- a list of
every queue, every service -- deploys while the list is short and fails ``up`` half-way once it is not;
the update that crosses the limit leaves the function on its old configuration. Put long lists in the
code package or in a parameter the function reads.

A variable whose value is unknown at preview makes the rule undecidable, unless the known ones alone
already cross the limit.
"""

import json

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import UNKNOWN, applies_to, known_input, plain, rule_policy, undecidable
from shared.policy_typing import ReportViolation

#: Lambda quotas: "Environment variables: 4 KB" (all of a function's variables together, not adjustable).
MAX_BYTES = 4096
LABEL = "Lambda function"


def measured_bytes(variables: dict[str, object]) -> int:
    """The size Lambda measures: the variables as compact JSON (names and values, quotes, commas), in bytes."""
    return len(json.dumps(variables, separators=(",", ":"), ensure_ascii=False).encode())


@applies_to("aws:lambda/function:Function")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    props = plain(args.props)
    variables = known_input(args, LABEL, "environment.variables", props)
    if not isinstance(variables, dict) or not variables:
        return
    unknown = sorted(name for name, value in variables.items() if value is UNKNOWN)
    known = {name: value for name, value in variables.items() if value is not UNKNOWN}
    size = measured_bytes(known)
    if size > MAX_BYTES:
        largest = max(known, key=lambda name: len(str(known[name])))
        report_violation(
            f"Lambda function '{args.name}': its environment variables measure {size} bytes as Lambda counts them "
            f"(compact JSON of names and values), more than the {MAX_BYTES} Lambda takes (InvalidParameterValue on "
            f"up); the largest is {largest} ({len(str(known[largest]))} characters). Move long values into the "
            "code package or a parameter the function reads.")
    elif unknown:
        undecidable(args, f"{LABEL} '{args.name}': environment.variables {', '.join(unknown)}")


POLICY = rule_policy(__file__, _validate)
