"""A security group rule that opens the port an Aurora cluster listens on, to the app's group only."""

import pulumi
import pulumi_aws as aws

vpc = aws.ec2.get_vpc(default=True)
app = aws.ec2.SecurityGroup("app", vpc_id=vpc.id, description="app tier")
db_sg = aws.ec2.SecurityGroup("db", vpc_id=vpc.id, description="database tier")
cluster = aws.rds.Cluster("db", engine="aurora-postgresql", master_username="app",
                          manage_master_user_password=True, skip_final_snapshot=True,
                          vpc_security_group_ids=[db_sg.id])
aws.vpc.SecurityGroupIngressRule("db-from-app", security_group_id=db_sg.id, ip_protocol="tcp",
                                 from_port=cluster.port, to_port=cluster.port,
                                 referenced_security_group_id=app.id, description="app to database")
pulumi.export("endpoint", cluster.endpoint.apply(lambda host: f"postgresql://{host}:5432/app"))
