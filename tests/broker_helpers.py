"""Helpers of the tests that run a real RabbitMQ (``pytest.mark.broker``)."""

from __future__ import annotations

import time
from collections.abc import Callable


def until(condition: Callable[[], bool], timeout: float = 20.0) -> bool:
    """Whether ``condition`` turns true within ``timeout`` seconds (polled every 0.2 s): the broker settles a queue's
    figures asynchronously."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True
