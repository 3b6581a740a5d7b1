"""Container definitions validate against the ECS API's own model (botocore).

``containerDefinitions`` is a JSON string that neither Pulumi nor the provider checks before calling
``RegisterTaskDefinition``. This rule validates it with botocore's ``ParamValidator`` against the
``containerDefinitions`` member of the ECS service model's RegisterTaskDefinition input -- the same
model the AWS SDKs are generated from -- so a misspelt key (``readonlyRootFS``), a wrong type
(``"cpu": "256"``) or a malformed structure is found at preview. Keys are read as the provider reads
them: it decodes the JSON with Go's ``encoding/json`` into the SDK's ``ContainerDefinition``, which
matches a key to its member whatever its case, so ``readOnlyRootFilesystem`` is
``readonlyRootFilesystem`` (:func:`shared.policy_support.provider_container_keys`). On top of the model it
enforces the API's server-side rules the model does not encode: every container has a ``name`` and an
``image``, names are unique, at least one container is essential (``essential`` defaults to true).

Why: otherwise these errors surface halfway through ``pulumi up``, after other resources changed, or a
misspelt key is dropped without a word (the provider ignores what matches no member).
No cdk-nag/checkov equivalent.
"""

import difflib
import re
from functools import lru_cache
from typing import Any

from botocore.model import Shape
from pulumi_policy import ResourceValidationArgs

from shared.policy_support import (
    UNKNOWN,
    applies_to,
    as_sent,
    contains_unknown,
    parse_json,
    plain,
    provider_container_keys,
    rule_policy,
    undecidable,
)
from shared.policy_typing import ReportViolation

MAX_ERRORS_SHOWN = 5


@lru_cache(maxsize=1)
def _input_shape() -> Shape:
    import botocore.session  # imported lazily: loading the ECS model costs ~0.1 s, only when a task exists

    model = botocore.session.get_session().get_service_model("ecs")
    return model.operation_model("RegisterTaskDefinition").input_shape


def _model_errors(containers: Any) -> list[str]:
    from botocore.validate import ParamValidator

    report = ParamValidator().validate({"containerDefinitions": containers}, _input_shape()).generate_report()
    errors = []
    for line in report.splitlines():
        if "containerDefinitions" not in line:
            continue  # family etc.: required by the operation, not part of what is validated here
        message, _, valid = line.partition(", must be one of: ")
        unknown = re.search(r'"([^"]+)"$', message)
        if valid and unknown:
            close = difflib.get_close_matches(unknown.group(1), valid.split(", "), n=1)
            message += f" (did you mean {close[0]!r}?)" if close else ""
        errors.append(message.replace("Invalid type for parameter ", "wrong type of "))
    return errors


def _api_errors(containers: list[Any]) -> list[str]:
    errors: list[str] = []
    names: list[str] = []
    for index, container in enumerate(containers):
        if not isinstance(container, dict):
            continue
        for key in ("name", "image"):
            if not container.get(key):
                errors.append(f"containerDefinitions[{index}] has no {key}")
        if isinstance(container.get("name"), str):
            names.append(container["name"])
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        errors.append(f"container names are not unique: {', '.join(duplicates)}")
    if containers and all(isinstance(c, dict) and c.get("essential") is False for c in containers):
        errors.append("no container is essential")
    return errors


@applies_to("aws:ecs/taskDefinition:TaskDefinition")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    raw = plain(args.props).get("containerDefinitions")
    if raw is UNKNOWN or contains_unknown(raw):
        undecidable(args, f"task definition '{args.name}': containerDefinitions")
    if raw is None:
        report_violation(f"task definition '{args.name}' has no containerDefinitions; set container_definitions.")
        return
    try:
        containers = as_sent(parse_json(raw)) if not isinstance(raw, str) else parse_json(raw)
    except ValueError as error:
        report_violation(
            f"task definition '{args.name}': containerDefinitions is not valid JSON ({error}); "
            "build it with json.dumps / pulumi.Output.json_dumps."
        )
        return
    if not isinstance(containers, list) or not containers:
        report_violation(
            f"task definition '{args.name}': containerDefinitions must be a non-empty JSON list of container objects."
        )
        return
    containers = provider_container_keys(containers)  # a key's case does not matter to the provider
    errors = _model_errors(containers) + _api_errors(containers)
    if errors:
        shown = "; ".join(errors[:MAX_ERRORS_SHOWN])
        more = f" (and {len(errors) - MAX_ERRORS_SHOWN} more)" if len(errors) > MAX_ERRORS_SHOWN else ""
        report_violation(
            f"task definition '{args.name}' has container definitions ECS will reject: {shown}{more}; "
            "fix them to match the ECS ContainerDefinition API (camelCase keys, ints for numbers, bools for flags)."
        )


POLICY = rule_policy(__file__, _validate)
