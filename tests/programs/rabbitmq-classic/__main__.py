"""An exchange and a classic queue on a broker managed elsewhere."""

import pulumi
import pulumi_rabbitmq as rabbitmq

vhost = rabbitmq.VHost("orders", name="orders")
exchange = rabbitmq.Exchange("orders", name="orders", vhost=vhost.name,
                             settings=rabbitmq.ExchangeSettingsArgs(type="topic", durable=True))
queue = rabbitmq.Queue("orders", name="orders.created", vhost=vhost.name,
                       settings=rabbitmq.QueueSettingsArgs(durable=True))
rabbitmq.Binding("orders", source=exchange.name, vhost=vhost.name, destination=queue.name,
                 destination_type="queue", routing_key="order.created")
pulumi.export("queue", queue.name)
