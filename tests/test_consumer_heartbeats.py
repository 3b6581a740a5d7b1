"""On a real RabbitMQ: a long job must not stop its consumer's connection from answering heartbeats.

`max_job_seconds` lets a job hold its delivery for hours (the shipped training: 6), but the connection it came on
must keep exchanging AMQP heartbeats meanwhile: Amazon MQ negotiates a 60 s heartbeat timeout (at most 3600 s, its
"heartbeat" configurable value), and RabbitMQ closes a connection that sent nothing for about two timeouts ("Detecting
Dead TCP Connections with Heartbeats"), requeueing its unacked deliveries. Turning heartbeats off is no way out: the
broker sits behind a Network Load Balancer, which drops a TCP flow idle for 350 s (ELB guide, "Update the TCP idle
timeout"). A client that runs the job in its delivery callback (pika's BlockingConnection, the usual first
try) sends nothing while the job runs: every job longer than a couple of minutes starts over on another task, and at
the queue's delivery limit lands in its DLQ. Running the job off the connection's I/O loop keeps the delivery.
The README's image contract says so ("What a service's image must provide").
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pika
import pika.exceptions
import pytest

from shared.rehearse.broker import ADMIN_USER, ADMIN_VHOST, LocalBroker
from tests.broker_helpers import until
from tests.readme_helpers import readme_section

pytestmark = pytest.mark.broker

#: The heartbeat timeout the test's consumers ask for (the lower of the client's and the broker's applies), in place of
#: Amazon MQ's 60 s, so that a job "longer than the timeout" takes seconds.
HEARTBEAT = 2
#: A job that holds the delivery for several heartbeat timeouts.
JOB_SECONDS = 5 * HEARTBEAT
QUEUE = "heartbeat-jobs"


@pytest.fixture(scope="module")
def broker() -> Iterator[LocalBroker]:
    with LocalBroker() as started:
        yield started


def _consumer(broker: LocalBroker) -> pika.BlockingConnection:
    parameters = broker.parameters(ADMIN_USER, broker.admin_password, ADMIN_VHOST)
    parameters.heartbeat = HEARTBEAT
    return pika.BlockingConnection(parameters)


def _ready(broker: LocalBroker) -> int:
    connection = broker.admin_connection()
    try:
        return connection.channel().queue_declare(QUEUE, passive=True).method.message_count
    finally:
        connection.close()


def _one_job(broker: LocalBroker, jobs: int = 1) -> None:
    connection = broker.admin_connection()
    try:
        channel = connection.channel()
        channel.queue_declare(QUEUE, durable=True)
        channel.queue_purge(QUEUE)
        channel.confirm_delivery()
        for _ in range(jobs):
            channel.basic_publish("", QUEUE, b"train", pika.BasicProperties(delivery_mode=2))
    finally:
        connection.close()



def test_a_job_run_in_the_delivery_callback_loses_its_delivery_to_missed_heartbeats(broker: LocalBroker) -> None:
    _one_job(broker)
    connection = _consumer(broker)
    channel = connection.channel()
    method, _, _ = channel.basic_get(QUEUE, auto_ack=False)
    assert method is not None and _ready(broker) == 0
    time.sleep(JOB_SECONDS)  # the job, on the thread that would have answered the heartbeats
    assert until(lambda: _ready(broker) == 1), "the broker still counts the job as held"
    with pytest.raises(pika.exceptions.AMQPError):  # the connection is gone: the job's ack goes nowhere
        channel.basic_ack(method.delivery_tag)
        connection.process_data_events(time_limit=1)


def test_a_job_run_off_the_io_loop_keeps_its_delivery_and_acks_it(broker: LocalBroker) -> None:
    _one_job(broker)
    connection = _consumer(broker)
    try:
        channel = connection.channel()
        method, _, _ = channel.basic_get(QUEUE, auto_ack=False)
        assert method is not None
        job = threading.Thread(target=time.sleep, args=(JOB_SECONDS,))
        job.start()
        while job.is_alive():  # the connection's own thread keeps exchanging heartbeats
            connection.process_data_events(time_limit=0.5)
        assert _ready(broker) == 0
        channel.basic_ack(method.delivery_tag)
        connection.process_data_events(time_limit=0.5)
    finally:
        connection.close()
    assert _ready(broker) == 0


def test_the_image_contract_tells_a_long_job_to_keep_its_heartbeats() -> None:
    section = " ".join(readme_section("### What a service's image must provide", stop="\n### ").split())
    assert "heartbeat" in section
    assert "off the connection's I/O loop" in section and "60 s" in section
    # and the task is not replaced meanwhile for a health check the job starved
    assert "`health_path` keeps answering" in section and "scale-in protection or not" in section


def test_the_maintenance_window_says_a_running_job_starts_over() -> None:
    """A broker restart closes the connections it holds (in prod, the restarted node's): the job's delivery is
    requeued as in the first test above, whatever the client's reconnect does."""
    section = " ".join(readme_section("### Maintenance window", stop="\n### ").split())
    assert "the job starts over" in section and "delivery limit" in section


@pytest.mark.parametrize("prefetch", [1, 2])
def test_a_job_prefetched_behind_a_running_one_is_not_ready_so_it_scales_nothing_out(broker: LocalBroker,
                                                                                         prefetch: int) -> None:
    """A consumer no HTTP request reaches scales out on its queue's ready messages alone (backlog-out alarm on
    MessagesReady, shared.components.compute_service.autoscaling): with a prefetch above 1 the task running a job
    also holds the next one unacknowledged, MessagesReady stays 0, and that job waits for the running one to end
    while max_count allows another task."""
    _one_job(broker, jobs=2)
    connection = _consumer(broker)
    try:
        channel = connection.channel()
        channel.basic_qos(prefetch_count=prefetch)  # per consumer (global=false), as the contract asks
        delivered: list[int] = []
        channel.basic_consume(QUEUE, lambda _ch, method, _props, _body: delivered.append(method.delivery_tag))
        assert until(lambda: connection.process_data_events(time_limit=0.2) or len(delivered) >= prefetch)
        connection.process_data_events(time_limit=1)  # nothing more arrives while nothing is acknowledged
        assert len(delivered) == prefetch
        assert _ready(broker) == 2 - prefetch  # the scale-out alarm sees the second job only at prefetch 1
    finally:
        connection.close()


def test_the_image_contract_asks_a_consumer_no_request_reaches_for_prefetch_1() -> None:
    section = " ".join(readme_section("### What a service's image must provide", stop="\n### ").split())
    assert "no HTTP request reaches" in section and "sets a prefetch of 1" in section
    assert "unacknowledged, not ready" in section
