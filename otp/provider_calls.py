"""Every provider call goes through here: circuit breaker, bulkhead, accounting.

Before the call, a pooled database connection goes back to the pool: a request
waiting on a slow upstream must not hold one of the few connections that
every other page (the health check, the admin) needs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from django.db import connections, router

from otp import circuit
from otp.conf import otp_settings
from otp.exceptions import PinNotFound, ProviderError, ProviderUnavailable
from otp.models import OtpAttempt

T = TypeVar("T")

_slots_lock = threading.Lock()
_slots: tuple[int, threading.BoundedSemaphore] | None = None


def _semaphore() -> threading.BoundedSemaphore | None:
    """One semaphore per process, rebuilt if the setting changes."""
    global _slots
    size = otp_settings.PROVIDER_MAX_CONCURRENCY
    if not size:
        return None
    with _slots_lock:
        if _slots is None or _slots[0] != size:
            _slots = (size, threading.BoundedSemaphore(size))
        return _slots[1]


def release_database_connection() -> None:
    """Return the request's connection to the pool, if it is pooled and no transaction is open.

    The next query takes one again. Without a pool this would reconnect, so
    it is left alone; inside a transaction it must stay.
    """
    connection = connections[router.db_for_write(OtpAttempt)]
    if connection.in_atomic_block or not connection.settings_dict.get("OPTIONS", {}).get("pool"):
        return
    connection.close()


def call_provider(call: Callable[[], T]) -> T:
    """Run ``call`` unless the circuit is open or every slot stays busy.

    A slow upstream then costs at most ``PROVIDER_MAX_CONCURRENCY`` worker
    threads per process; the rest answer 503 at once and stay free for other
    pages.
    """
    release_database_connection()
    snapshot = circuit.before_call()
    semaphore = _semaphore()
    if semaphore is not None and not semaphore.acquire(timeout=otp_settings.PROVIDER_QUEUE_TIMEOUT_SECONDS):
        raise ProviderUnavailable("every provider slot of this process is busy")
    try:
        result = call()
    except PinNotFound:
        circuit.record_success(snapshot)  # the provider answered; the PIN is just gone
        raise
    except ProviderError:
        circuit.record_failure()
        raise
    finally:
        if semaphore is not None:
            semaphore.release()
    circuit.record_success(snapshot)
    return result
