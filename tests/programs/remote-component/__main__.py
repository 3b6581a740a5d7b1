"""Uses a multi-language component the way generated SDKs such as pulumi_awsx declare them."""

import pulumi
import pulumi_aws as aws


class FargateService(pulumi.ComponentResource):
    """What ``pulumi_awsx.ecs.FargateService`` is: a remote component its provider plugin builds."""

    def __init__(self, name: str, props: dict, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("awsx:ecs:FargateService", name, props, opts, remote=True)


cluster = aws.ecs.Cluster("cluster", settings=[aws.ecs.ClusterSettingArgs(name="containerInsights", value="enabled")])
service = FargateService("web", {"cluster": cluster.arn, "assignPublicIp": True,
                                 "taskDefinitionArgs": {"container": {"name": "web", "image": "nginx:latest"}}})
pulumi.export("cluster", cluster.name)
