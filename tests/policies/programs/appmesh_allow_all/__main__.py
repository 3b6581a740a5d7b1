"""An App Mesh mesh with ``ALLOW_ALL`` egress, as the App Mesh getting-started guide shows it."""

import pulumi
import pulumi_aws as aws

mesh = aws.appmesh.Mesh(
    "apps",
    spec=aws.appmesh.MeshSpecArgs(
        egress_filter=aws.appmesh.MeshSpecEgressFilterArgs(type="ALLOW_ALL"),
    ),
)

pulumi.export("mesh", mesh.name)
