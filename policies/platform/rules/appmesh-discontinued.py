"""appmesh-discontinued: any App Mesh resource -- AWS ended App Mesh on 2026-09-30.

Why: AWS announced the end of support of AWS App Mesh on 2026-09-30: no new features, then no
service; existing meshes stop being supported. Anything still on App Mesh (``mesh.provider: appmesh``)
has to move to Amazon ECS Service Connect (``mesh.provider: service-connect``), which gives the same
service discovery, retries and traffic metrics without Envoy sidecars to operate.
Advisory in dev (a reminder), mandatory in staging and prod: an env there that still runs App Mesh
needs a suppression with a reason (besides the env file's ``mesh.appmesh_end_of_support_acknowledged``).
Resources: every ``aws:appmesh/*`` type. No cdk-nag/checkov id (an AWS lifecycle notice:
https://docs.aws.amazon.com/app-mesh/latest/userguide/what-is-app-mesh.html).
"""

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import platform_hint, resource_policy, type_label
from shared.policy_typing import ReportViolation


def check(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not args.resource_type.startswith("aws:appmesh/"):
        args.not_applicable(f"{args.resource_type} is not a resource type this rule checks")
    kind = type_label(args.resource_type)
    hint = platform_hint(args, " (set mesh.provider: service-connect in the env file)") or (
        " (the ECS service's service_connect_configuration)")
    report(f"{kind} '{args.name}': AWS ends App Mesh support on 2026-09-30; plan the move to ECS "
           f"Service Connect{hint}.")


POLICY = resource_policy(__file__, check)
