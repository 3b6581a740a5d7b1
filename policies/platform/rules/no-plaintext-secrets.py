"""no-plaintext-secrets: credential inputs are Pulumi secrets, never values written in clear.

Credential inputs: RabbitMQ user and provider passwords, Amazon MQ broker ``users`` (their passwords),
Secrets Manager ``SecretVersion.secretString``/``secretBinary`` and the AWS provider's static keys
(``CREDENTIAL_INPUTS`` in shared/policy_support.py). Why: a plain value is stored unencrypted in the
stack state and shown in previews and logs; a value written in the program or in plain stack config
is in source control, even where the SDK makes it secret afterwards (pulumi_rabbitmq's ``User`` and
pulumi_aws's ``SecretVersion`` wrap their input in ``Output.secret``). Use ``config.require_secret``
(``pulumi config set --secret``) or generate the value (``random.RandomPassword``) and pass it on as
an Output. Closest checkov ids: the hard-coded secret checks CKV_AWS_45 / CKV_AWS_46 and the
secrets scanner (CKV_SECRET_*); cdk-nag has none for IaC inputs.

Secretness: CrossGuard unwraps secrets before a rule sees the inputs, so secretness reaches this rule
through its policy config, which the offline engine (``nox -s policy``) fills from the synth JSON:
``secretInputs: {urn: [input names that were Pulumi secrets]}`` (from ``secret_inputs``) and
``literalInputs: {urn: [credential inputs written in clear]}`` (not a ``secure:`` config value and
not derived from another resource's output, e.g. a RandomPassword). Under the real ``pulumi`` CLI the
same config can be passed with ``--policy-pack-config`` (``shared.policy.engine.pack_config`` writes
it); without it the rule cannot see secretness and reports not-applicable with that reason -- it
never passes or fails blind.
"""

from typing import Any

from pulumi_policy import PolicyConfigSchema, ResourceValidationArgs

from shared.policy_support import CREDENTIAL_INPUTS, not_applicable, resource_policy, type_label
from shared.policy_typing import ReportViolation

NO_CONFIG = ("secretness is not visible to policies under the pulumi CLI (CrossGuard unwraps secrets); run "
             "`nox -s policy`, or pass secretInputs with --policy-pack-config (shared.policy.engine.pack_config)")


def check(args: ResourceValidationArgs, report: ReportViolation) -> None:
    # Only the input names are read: the values may be unknown and their secretness is in the config.
    present = [name for name in CREDENTIAL_INPUTS[args.resource_type] if name in set(args.props)]
    if not present:
        args.not_applicable("no credential input is set")
    config: dict[str, Any] = dict(args.get_config())
    secret_map = config.get("secretInputs")
    if not isinstance(secret_map, dict):
        not_applicable(args, NO_CONFIG)
    secret = secret_map.get(args.urn)
    if not isinstance(secret, list):
        not_applicable(args, f"the policy config carries no secretness for {args.urn}")
    literal = (config.get("literalInputs") or {}).get(args.urn) or []
    kind = type_label(args.resource_type)
    for name in present:
        if name not in secret:
            report(f"{kind} '{args.name}': input '{name}' is not a Pulumi secret, so it is stored and shown in "
                   "plain text; read it with config.require_secret(...) or generate it with random.RandomPassword, "
                   "or wrap it in pulumi.Output.secret(...).")
        elif name in literal:
            report(f"{kind} '{args.name}': input '{name}' is written in clear in the program or the stack config "
                   "(the SDK encrypts it in state, but the value is in source control); set it with "
                   "`pulumi config set --secret` and config.require_secret(...), or generate it with "
                   "random.RandomPassword.")


POLICY = resource_policy(
    __file__, check, types=list(CREDENTIAL_INPUTS),
    config_schema=PolicyConfigSchema(properties={
        "secretInputs": {"type": "object", "description": "URN -> top-level input names that were Pulumi secrets"},
        "literalInputs": {"type": "object", "description": "URN -> credential inputs written in clear"},
    }),
)
