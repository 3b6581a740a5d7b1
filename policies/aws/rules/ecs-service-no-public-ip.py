"""ECS services do not assign public IPs to their tasks.

Why: a task with a public IP is reachable from the internet whenever its security group allows it,
bypassing the load balancer; tasks in private subnets reach AWS APIs through NAT or VPC endpoints.
Matches checkov CKV_AWS_333; no cdk-nag equivalent.
"""

from shared.policy_support import boolean_setting_rule

POLICY = boolean_setting_rule(
    __file__, "aws:ecs/service:Service",
    label="ECS service", setting="networkConfiguration.assignPublicIp", required=False,
    finding="assigns public IPs to its tasks; set network_configuration.assign_public_ip=False and run the tasks in "
            "private subnets (egress through NAT or VPC endpoints).",
)
