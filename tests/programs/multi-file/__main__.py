"""The entry point only wires the modules together."""

import pulumi
from infra import network, service

net = network.Network("app", cidr="10.20.0.0/16")
svc = service.web_security_group(net)
pulumi.export("vpc_id", net.vpc.id)
pulumi.export("sg_id", svc.id)
