"""A RabbitMQ user as quick-starts write it: tagged administrator, ``.*`` everywhere, a literal password."""

import pulumi_rabbitmq as rabbitmq

user = rabbitmq.User("app", name="app", password="Sup3rS3cret!", tags=["administrator"])

rabbitmq.Permissions(
    "app",
    user=user.name,
    vhost="/",
    permissions=rabbitmq.PermissionsPermissionsArgs(configure=".*", write=".*", read=".*"),
)
